"""The Python API: counter files, bad input, errors, snapshots, threads."""

from __future__ import annotations

import copy
import os
import pickle
import random
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Dict, List

import pytest

import mqseal

TOPIC = "factory/line1/temp"


def test_installed_wheel_is_tested_not_the_source_tree() -> None:
    here = Path(__file__).resolve().parents[1]
    assert not Path(mqseal.__file__).resolve().is_relative_to(here), mqseal.__file__
    assert Path(mqseal._mqseal.__file__).name.endswith(".abi3.so")


def _pair(suite: str = "chacha20poly1305") -> "tuple[mqseal.Sealer, mqseal.Opener]":
    key = mqseal.Key.generate(1)
    return mqseal.Sealer.in_memory(key, 7, suite), mqseal.Opener(mqseal.Keyring([key]))


@pytest.mark.parametrize("suite", ["chacha20poly1305", "hmac-sha256"])
def test_round_trip_both_suites(suite: str) -> None:
    sealer, opener = _pair(suite)
    env = sealer.seal(TOPIC, b"21.5")
    assert (b"21.5" in env) == (suite == "hmac-sha256")
    msg = opener.open(TOPIC, env)
    assert (msg.payload, msg.sender_id, msg.key_id, msg.counter, msg.timestamp, msg.suite) == (
        b"21.5", 7, 1, 0, None, suite)
    with pytest.raises(mqseal.AuthError) as info:
        opener.open("factory/line2/temp", sealer.seal(TOPIC, b"x"))
    assert info.value.code == "auth" and str(info.value) == "authentication failed"


def test_timestamps_and_policy() -> None:
    key = mqseal.Key.generate(3)
    sealer = mqseal.Sealer.in_memory(key, 1, timestamps=True)
    opener = mqseal.Opener(mqseal.Keyring([key]), max_age=60, require_timestamp=True)
    msg = opener.open(TOPIC, sealer.seal(TOPIC, b"a"))
    assert msg.timestamp is not None and abs(msg.timestamp - __import__("time").time()) < 5
    with pytest.raises(mqseal.ExpiredError):
        opener.open(TOPIC, sealer.seal(TOPIC, b"b", timestamp=1000))
    with pytest.raises(mqseal.TimestampRequiredError):
        opener.open(TOPIC, mqseal.Sealer.in_memory(key, 2).seal(TOPIC, b"c"))
    assert opener.config["max_age"] == 60 and opener.config["require_timestamp"] is True


def test_pairwise_directions() -> None:
    device, server = mqseal.StaticKeyPair.generate(), mqseal.StaticKeyPair.generate()
    on_device = device.pairwise(server.public_key, 100)
    on_server = server.pairwise(mqseal.PublicKey.from_text(device.public_key.to_text()), 100)
    env = mqseal.Sealer.in_memory(on_device.send, 9).seal("dev/9/up", b"hello")
    assert mqseal.Opener(mqseal.Keyring([on_server.recv])).open("dev/9/up", env).payload == b"hello"
    with pytest.raises(mqseal.AuthError):
        mqseal.Opener(mqseal.Keyring([on_device.recv])).open("dev/9/up", env)
    with pytest.raises(mqseal.SelfPairingError):
        device.pairwise(device.public_key, 1)


def test_key_text_round_trip_and_repr_hides_secret() -> None:
    key = mqseal.Key.generate(42)
    assert mqseal.Key.from_text(key.to_text()).to_text() == key.to_text()
    assert repr(key) == "Key(id=42)" and key.to_text() not in repr(key)
    with pytest.raises(mqseal.InvalidKeyError):
        mqseal.Key.from_bytes(1, b"short")


def test_keyring_rotation() -> None:
    k1, k2 = mqseal.Key.generate(1), mqseal.Key.generate(2)
    ring = mqseal.Keyring([k1])
    assert ring.primary_id == 1 and len(ring) == 1
    ring.insert(k2)
    with pytest.raises(mqseal.DuplicateKeyIdError) as info:
        ring.insert(k2)
    assert info.value.key_id == 2
    with pytest.raises(mqseal.KeyIsPrimaryError):
        ring.retire(1)
    ring.set_primary(2)
    ring.retire(1)
    assert ring.ids() == [2] and 1 not in ring
    opener = mqseal.Opener(ring)
    with pytest.raises(mqseal.UnknownKeyError) as unknown:
        opener.open(TOPIC, mqseal.Sealer.in_memory(k1, 1).seal(TOPIC, b"x"))
    assert unknown.value.key_id == 1


# ----- counter files -----

def test_missing_counter_file_is_refused_unless_create(tmp_path: Path) -> None:
    key = mqseal.Key.generate(1)
    path = tmp_path / "counter"
    with pytest.raises(mqseal.CounterStoreError) as info:
        mqseal.Sealer(key, 1, counter_file=path)
    assert info.value.code == "counterStore" and info.value.reason == "missing"
    assert not path.exists()
    sealer = mqseal.Sealer(key, 1, counter_file=path, create=True)
    assert path.stat().st_size > 0
    assert sealer.seal("t", b"x")
    del sealer
    # create=True refuses an existing file: its counters may have been used.
    with pytest.raises(mqseal.CounterStoreError) as again:
        mqseal.Sealer(key, 1, counter_file=str(path), create=True)
    assert again.value.reason == "conflict"


def test_counters_persist_across_sealers(tmp_path: Path) -> None:
    key = mqseal.Key.generate(1)
    path = tmp_path / "counter"
    opener = mqseal.Opener(mqseal.Keyring([key]))
    first = mqseal.Sealer(key, 5, counter_file=path, create=True, reservation_block=4)
    seen = [opener.open("t", first.seal("t", b"x")).counter for _ in range(6)]
    del first
    second = mqseal.Sealer(key, 5, counter_file=path)
    later = opener.open("t", second.seal("t", b"y")).counter
    assert seen == list(range(6)) and later > max(seen)


def test_a_held_counter_file_is_refused_in_process(tmp_path: Path) -> None:
    key = mqseal.Key.generate(1)
    path = tmp_path / "counter"
    held = mqseal.Sealer(key, 1, counter_file=path, create=True)
    with pytest.raises(mqseal.CounterStoreError) as info:
        mqseal.Sealer(key, 1, counter_file=path)
    assert info.value.reason == "locked"
    assert held.seal("t", b"still fine")


CHILD = textwrap.dedent("""
    import sys, mqseal
    key = mqseal.Key.from_text(sys.argv[1])
    try:
        sealer = mqseal.Sealer(key, 1, counter_file=sys.argv[2], reservation_block=3)
    except mqseal.CounterStoreError as e:
        print("refused", e.reason, flush=True)
        sys.exit(0)
    print("holding", flush=True)
    for _ in range(int(sys.argv[3])):
        print(sealer.seal("t", b"x").hex(), flush=True)
    sys.stdin.readline()
""")


def test_two_processes_never_share_a_counter(tmp_path: Path) -> None:
    key = mqseal.Key.generate(1)
    path = tmp_path / "counter"
    del_me = mqseal.Sealer(key, 1, counter_file=path, create=True)
    del del_me
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    def counter_of(envelope: bytes) -> int:
        # A fresh opener each: a reused counter shows up here, not as a replay.
        return mqseal.Opener(mqseal.Keyring([key])).open("t", envelope).counter

    counters: List[int] = []
    for _round in range(3):
        a = subprocess.Popen([sys.executable, str(script), key.to_text(), str(path), "5"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert a.stdout is not None and a.stdin is not None
        assert a.stdout.readline().strip() == "holding"
        envelopes = [a.stdout.readline().strip() for _ in range(5)]
        # While the first process holds the file, a second is refused.
        # (A second holder, were it let in, would seal and exit: its
        # counters are checked against the first's below.)
        b = subprocess.run([sys.executable, str(script), key.to_text(), str(path), "5"],
                           input="\n", capture_output=True, text=True, timeout=60)
        if b.stdout.startswith("holding"):
            counters += [counter_of(bytes.fromhex(e)) for e in b.stdout.split()[1:]]
        else:
            assert b.stdout.strip() == "refused locked", b.stdout + b.stderr
        a.stdin.write("\n")
        a.stdin.flush()
        assert a.wait(timeout=60) == 0
        counters += [counter_of(bytes.fromhex(e)) for e in envelopes]
    assert len(counters) == len(set(counters)) == 15, counters
    assert counters == sorted(counters)


# ----- bad input -----

def test_wrong_python_types_raise_cleanly() -> None:
    key = mqseal.Key.generate(1)
    sealer, opener = _pair()
    with pytest.raises(TypeError):
        sealer.seal(TOPIC, "a str")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sealer.seal(b"topic", b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        opener.open(TOPIC, "envelope")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        opener.open(TOPIC, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mqseal.Keyring([b"not a key"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        mqseal.Opener(key)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mqseal.Sealer(key, 1)  # type: ignore[call-arg]
    for bad in (-1, 2**32, 2**200):
        with pytest.raises(OverflowError):
            mqseal.Key.generate(bad)
        with pytest.raises(OverflowError):
            mqseal.Sealer.in_memory(key, bad)
    with pytest.raises(OverflowError):
        sealer.seal(TOPIC, b"x", timestamp=-5)
    with pytest.raises(OverflowError):
        opener.open(TOPIC, b"x" * 30, now=2**64)
    with pytest.raises(TypeError):
        mqseal.Key.generate(1.5)  # type: ignore[arg-type]
    with pytest.raises(mqseal.InvalidConfigError) as cfg:
        mqseal.Opener(mqseal.Keyring([key]), window=0)
    assert cfg.value.option == "window"
    with pytest.raises(mqseal.InvalidConfigError) as suite:
        mqseal.Sealer.in_memory(key, 1, "aes")
    assert suite.value.option == "suite"
    with pytest.raises(mqseal.InvalidConfigError):
        mqseal.Opener(mqseal.Keyring([key]), eviction="random")
    with pytest.raises(mqseal.InvalidTopicError):
        sealer.seal("a/+/b", b"x")


@pytest.mark.parametrize("options,field,words", [
    ({"window": 0}, "window", "must be an integer from 1 to 256, got 0"),
    ({"window": 257}, "window", "got 257"),
    ({"gaps": 5}, "gaps", "must be an integer from 0 to 4, got 5"),
    ({"gaps": -1}, "gaps", "must be an integer from 0 to 4, got -1"),
    ({"suites": []}, "suites", "must name at least one suite"),
    ({"suites": ["aes"]}, "suites", "unknown suite"),
    ({"eviction": "leastRecentlyUsed"}, "eviction", "needs a maximum age"),
    ({"eviction": "random"}, "eviction", "'rejectNew' or 'leastRecentlyUsed'"),
    # Checked in the core's order: the window first.
    ({"window": 0, "suites": [], "eviction": "leastRecentlyUsed"}, "window", "got 0"),
    ({"suites": [], "eviction": "leastRecentlyUsed"}, "suites", "at least one suite"),
])
def test_config_errors_name_the_core_field(options: Dict[str, Any], field: str, words: str) -> None:
    """The field at fault is the core's OpenerConfig::check verdict, under the
    name JS gives as err.option (ConfigField::name)."""
    with pytest.raises(mqseal.InvalidConfigError) as info:
        mqseal.Opener(mqseal.Keyring([mqseal.Key.generate(1)]), **options)
    assert info.value.code == "invalidConfig"
    assert info.value.option == field
    assert str(info.value).startswith(f"{field}: ") and words in str(info.value), str(info.value)


def test_gaps_accept_a_late_message_once_and_gaps_0_does_not() -> None:
    key = mqseal.Key.generate(1)
    sealer = mqseal.Sealer.in_memory(key, 1)
    envs = [sealer.seal("t", b"m%d" % i) for i in range(200)]
    assert mqseal.Opener(mqseal.Keyring([key])).config["gaps"] == 4
    for gaps in (None, 4, 0):
        opener = mqseal.Opener(mqseal.Keyring([key]), gaps=gaps, system_clock=False)
        opener.open("t", envs[0])
        opener.open("t", envs[199])
        # Counter 1: 198 behind, below the window of 128, never accepted.
        if gaps == 0:
            with pytest.raises(mqseal.ReplayError):
                opener.open("t", envs[1])
        else:
            assert opener.open("t", envs[1]).counter == 1
            with pytest.raises(mqseal.ReplayError):
                opener.open("t", envs[1])


def test_options_that_are_not_receiver_config_name_their_keyword() -> None:
    key = mqseal.Key.generate(1)
    with pytest.raises(mqseal.InvalidConfigError) as suite:
        mqseal.Sealer.in_memory(key, 1, "aes")
    assert suite.value.option == "suite"
    with pytest.raises(mqseal.InvalidConfigError) as senders:
        mqseal.Opener(mqseal.Keyring([key]), max_senders=0)
    assert senders.value.option == "max_senders"
    # Accepted with the maximum age that least-recently-used eviction needs.
    opener = mqseal.Opener(mqseal.Keyring([key]), eviction="leastRecentlyUsed", max_age=60)
    assert opener.config["eviction"] == "leastRecentlyUsed"


def test_random_bytes_and_truncations_never_crash() -> None:
    sealer, opener = _pair()
    rng = random.Random(1234)
    env = sealer.seal(TOPIC, b"some telemetry payload")
    for cut in range(len(env)):
        with pytest.raises(mqseal.Error) as info:
            opener.open(TOPIC, env[:cut])
        assert info.value.code in {"truncated", "badVarint", "auth", "unknownKey", "unknownSuite",
                                   "unsupportedVersion", "unknownFlags"}
    for _ in range(3000):
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80)))
        with pytest.raises(mqseal.Error):
            opener.open(TOPIC, junk)
    for i in range(len(env)):
        flipped = bytearray(env)
        flipped[i] ^= 0x01
        with pytest.raises(mqseal.Error):
            opener.open(TOPIC, bytes(flipped))
    assert opener.open(TOPIC, env).payload == b"some telemetry payload"


def test_sealer_is_not_copyable_or_picklable() -> None:
    sealer, opener = _pair()
    for attempt in (lambda: pickle.dumps(sealer), lambda: copy.copy(sealer), lambda: copy.deepcopy(sealer)):
        with pytest.raises(TypeError):
            attempt()


# ----- replay state -----

def test_snapshot_and_restore(tmp_path: Path) -> None:
    key = mqseal.Key.generate(1)
    sealer = mqseal.Sealer.in_memory(key, 3)
    envs = [sealer.seal("t", b"%d" % i) for i in range(4)]
    first = mqseal.Opener(mqseal.Keyring([key]))
    for e in envs[:3]:
        first.open("t", e)
    assert first.tracked_senders == 1 and first.sender_memory_bytes > 0
    assert first.sender_limit == mqseal.DEFAULT_MAX_SENDERS
    snap = first.snapshot()
    assert len(snap) == 52
    second = mqseal.Opener(mqseal.Keyring([key]))
    assert second.restore(snap) == {"restored": 1, "unknown_key": 0}
    with pytest.raises(mqseal.DuplicateError):
        second.open("t", envs[1])
    assert second.open("t", envs[3]).counter == 3
    with pytest.raises(mqseal.InvalidSnapshotError):
        second.restore(snap[:51])
    with pytest.raises(mqseal.InvalidSnapshotError):
        second.restore(bytes(52))

    path = tmp_path / "replay"
    f = mqseal.ReplayStateFile(path)
    f.save(second)
    with pytest.raises(mqseal.CounterStoreError) as locked:
        mqseal.ReplayStateFile(path)
    assert locked.value.reason == "locked"
    del f
    third = mqseal.Opener(mqseal.Keyring([key]))
    assert mqseal.ReplayStateFile(str(path)).restore_into(third)["restored"] == 1
    with pytest.raises(mqseal.DuplicateError):
        third.open("t", envs[3])


def test_threads_share_a_sealer_without_reusing_counters() -> None:
    sealer, opener = _pair()
    big = os.urandom(mqseal.GIL_RELEASE_MIN * 4)
    out: List[bytes] = []
    lock = threading.Lock()

    def work() -> None:
        for i in range(50):
            e = sealer.seal("t", big if i % 2 else b"small")
            with lock:
                out.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counters = [opener.open("t", e).counter for e in out]
    assert sorted(counters) == list(range(200))
