"""Shared replay windows on a real redis-server (started here on a free
loopback port, killed by its pid): a replay is rejected across two Python
openers, and across a Python opener and `mqseal sub --replay-redis`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import redis

import broker
import mqseal
import mqseal.redis
from clients import tap
from test_examples import Proc, cli_pub, keygen, tcp

TOPIC = "fleet/dev1/up"


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    d = tempfile.mkdtemp(prefix="mqseal-py-redis-")
    proc = None
    try:
        for _attempt in range(5):
            port = broker.free_port()
            proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    if redis.Redis(host="127.0.0.1", port=port).ping():
                        break
                except (OSError, redis.exceptions.RedisError):
                    time.sleep(0.05)
            else:
                proc.kill()
                proc.wait()
                continue
            yield port
            return
        raise RuntimeError("redis-server did not start")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


def client(port: int) -> "redis.Redis":
    return redis.Redis(host="127.0.0.1", port=port)


def test_a_replay_is_rejected_across_two_openers(redis_port: int) -> None:
    key = mqseal.Key.generate(3)
    sealer = mqseal.Sealer.in_memory(key, 9, first_counter=1000)
    # Two receivers, each with its own opener and its own connection.
    a = (mqseal.Opener(mqseal.Keyring([key]), window=64),
         mqseal.redis.RedisReplayStore(client(redis_port), prefix="two:"))
    b = (mqseal.Opener(mqseal.Keyring([key]), window=64),
         mqseal.redis.RedisReplayStore(client(redis_port), prefix="two:"))
    envelopes = [sealer.seal(TOPIC, f"reading {i}".encode()) for i in range(100)]
    # Each envelope delivered to both: exactly one of them accepts it.
    accepted: List[bytes] = []
    rejected: List[str] = []
    for i, env in enumerate(envelopes):
        first, second = (a, b) if i % 2 else (b, a)
        for opener, store in (first, second):
            try:
                accepted.append(store.open(opener, TOPIC, env).payload)
            except mqseal.DuplicateError as e:
                rejected.append(e.code)
    assert accepted == [f"reading {i}".encode() for i in range(100)]
    assert rejected == ["duplicate"] * 100
    # Below the window: the store's verdict is the core's ReplayError.
    old = mqseal.Sealer.in_memory(key, 9, first_counter=10).seal(TOPIC, b"from long ago")
    with pytest.raises(mqseal.ReplayError):
        a[1].open(a[0], TOPIC, old)
    # Neither opener kept windows of its own: the store decided.
    assert a[0].tracked_senders == b[0].tracked_senders == 0
    # The window is where the core says (prefix, key id, sender id).
    q = a[0].open_pending(TOPIC, sealer.seal(TOPIC, b"x")).query
    assert q.redis_key("two:") == "two:w:3:9" and client(redis_port).exists("two:w:3:9")


def test_pending_messages_release_nothing_without_an_accept(redis_port: int) -> None:
    key = mqseal.Key.generate(1)
    sealer = mqseal.Sealer.in_memory(key, 2)
    opener = mqseal.Opener(mqseal.Keyring([key]))
    env = sealer.seal(TOPIC, b"held back")
    pending = opener.open_pending(TOPIC, env)
    assert (pending.query.key_id, pending.query.sender_id, pending.query.counter) == (1, 2, 0)
    assert pending.query.width == opener.config["window"]
    assert "held back" not in repr(pending)
    with pytest.raises(mqseal.DuplicateError):
        pending.resolve(1)
    with pytest.raises(RuntimeError):  # once only, even after a refusal
        pending.resolve(0)
    with pytest.raises(mqseal.InvalidSnapshotError):  # a code the core does not know: fail closed
        opener.open_pending(TOPIC, env).resolve(7)
    with pytest.raises(mqseal.AuthError):  # verified before any store is asked
        opener.open_pending("fleet/other/up", env)
    assert opener.open_pending(TOPIC, env).resolve(0).payload == b"held back"
    # The script is the core's: the store's hash is its SHA1.
    import hashlib

    store = mqseal.redis.RedisReplayStore(client(redis_port), prefix="held:")
    assert store.script_hash == hashlib.sha1(mqseal.WINDOW_SCRIPT.encode()).hexdigest()
    # After SCRIPT FLUSH (as after a Redis restart) it is loaded again.
    client(redis_port).script_flush()
    assert store.open(opener, TOPIC, env).payload == b"held back"
    with pytest.raises(mqseal.DuplicateError):
        store.open(opener, TOPIC, env)


def test_python_and_cli_share_the_window(redis_port: int, mosquitto: Any, cli: str, tmp_path: Path) -> None:
    key_file = keygen(cli, tmp_path, 5)
    key = mqseal.Key.from_text(key_file.read_text().strip())
    url = f"redis://127.0.0.1:{redis_port}/0"
    prefix = "mixed:"
    store = mqseal.redis.RedisReplayStore(client(redis_port), prefix=prefix)
    opener = mqseal.Opener(mqseal.Keyring([key]))
    sub_args = [cli, "sub", "-d", *tcp(mosquitto), "-t", "fleet/+/up", "-q", "1", "-C", "1", "-W", "60", "-F",
                "%S %C %p", "--key-file", str(key_file), "--replay-redis", url, "--replay-prefix", prefix]
    counter = tmp_path / "dev.counter"
    # A tap that records envelopes and republishes them raw.
    with tap(mosquitto, "fleet/+/up") as (wiretap, wire):
        # 1. The CLI accepts a reading; the same envelope is a duplicate for Python.
        sub = Proc(sub_args)
        try:
            sub.wait_line("SubAck")
            cli_pub(cli, tcp(mosquitto), TOPIC, "by the CLI", key_file, 8, counter)
            assert sub.finish(30) == 0, sub.report()
        finally:
            sub.stop()
        first = wire.get(timeout=10)
        assert sub.out == [f"8 {opener.open_pending(TOPIC, first).query.counter} by the CLI"], sub.report()
        with pytest.raises(mqseal.DuplicateError):
            store.open(opener, TOPIC, first)

        # 2. Python accepts a reading; replayed to the CLI it is rejected,
        # and the CLI still prints the next new one.
        cli_pub(cli, tcp(mosquitto), TOPIC, "by Python", key_file, 8, counter)
        second = wire.get(timeout=10)
        assert store.open(opener, TOPIC, second).payload == b"by Python"
        sub = Proc(sub_args)
        try:
            sub.wait_line("SubAck")
            wiretap.publish(TOPIC, second, qos=1).wait_for_publish(5)
            sub.wait_line(r"rejected message on fleet/dev1/up: .*\(duplicate\)")
            cli_pub(cli, tcp(mosquitto), TOPIC, "fresh", key_file, 8, counter)
            assert sub.finish(30) == 0, sub.report()
        finally:
            sub.stop()
        assert len(sub.out) == 1 and sub.out[0].endswith(" fresh"), sub.report()


def test_a_late_genuine_message_far_behind_is_accepted_once_by_the_store(redis_port: int) -> None:
    # The store keeps the core's gaps below the window (the budget comes from
    # the opener's query), so a message delayed far behind newer ones is
    # delivered exactly once, as by a local opener.
    key = mqseal.Key.generate(4)
    early, late, newest = (mqseal.Sealer.in_memory(key, 5, first_counter=c).seal(TOPIC, f"c{c}".encode())
                           for c in (5, 10, 1000))
    opener = mqseal.Opener(mqseal.Keyring([key]), window=64)
    store = mqseal.redis.RedisReplayStore(client(redis_port), prefix="late:")
    assert opener.open_pending(TOPIC, late).query.gaps > 0
    assert store.open(opener, TOPIC, early).payload == b"c5"
    assert store.open(opener, TOPIC, newest).payload == b"c1000"
    assert store.open(opener, TOPIC, late).payload == b"c10"
    with pytest.raises(mqseal.ReplayError):
        store.open(opener, TOPIC, late)
