"""Python <-> the Rust `mqseal` CLI through a real Mosquitto, both ways:
TCP and WebSocket, both suites, group and pairwise keys, paho and aiomqtt."""

from __future__ import annotations

import itertools
import queue
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List

import pytest

import mqseal
import mqseal.paho
from clients import collect_opened, paho_client, publish_sealed, reaped

SUITES = ["chacha20poly1305", "hmac-sha256"]
KINDS = ["group", "pairwise"]
TRANSPORTS = ["tcp", "ws"]
CLIENTS = ["paho", "aiomqtt"]
CASES = list(itertools.product(CLIENTS, TRANSPORTS, SUITES, KINDS))
IDS = ["-".join(c) for c in CASES]
every_case = pytest.mark.parametrize("client,transport,suite,kind", CASES, ids=IDS)
_n = itertools.count()


@dataclass
class Keys:
    seal: mqseal.Key  # what Python seals with
    open: mqseal.Key  # what Python opens with
    cli: List[str]  # the CLI's key options for the other side


@pytest.fixture
def keys(kind: str, tmp_path: Path) -> Keys:
    """The keys of the case's kind (the CLI's files in `tmp_path`)."""
    if kind == "group":
        key = mqseal.Key.generate(7)
        f = tmp_path / "group.key"
        f.write_text(key.to_text() + "\n")
        f.chmod(0o600)
        return Keys(key, key, ["--key-file", str(f)])
    device, server = mqseal.StaticKeyPair.generate(), mqseal.StaticKeyPair.generate()
    secret = tmp_path / "server.x25519"
    secret.write_text(server.secret_text() + "\n")
    secret.chmod(0o600)
    mine = device.pairwise(server.public_key, 40)
    return Keys(mine.send, mine.recv, ["--x25519", str(secret), "--peer", device.public_key.to_text(),
                                       "--pair-key-id", "40"])


def cli_transport(m: Any, transport: str) -> List[str]:
    if transport == "tcp":
        return ["-h", "127.0.0.1", "-p", str(m.tcp)]
    return ["-L", f"ws://127.0.0.1:{m.ws}/mqtt"]


def start_cli_sub(cli: str, m: Any, transport: str, topic: str, keys: Keys) -> "subprocess.Popen[str]":
    return subprocess.Popen([cli, "sub", *cli_transport(m, transport), "-t", topic, "-C", "1", "-W", "30",
                             "-F", "%S %p", *keys.cli], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cli_pub_args(cli: str, m: Any, transport: str, topic: str, payload: str, suite: str, keys: Keys,
                 d: Path) -> List[str]:
    return [cli, "pub", *cli_transport(m, transport), "-t", topic, "-q", "1", "-m", payload, "--sender-id", "77",
            "--counter-file", str(d / "cli.counter"), "--new-counter-file", "--suite", suite, *keys.cli]


@every_case
def test_python_to_cli_sub(client: str, transport: str, suite: str, kind: str, keys: Keys, mosquitto: Any,
                           cli: str, tmp_path: Path) -> None:
    topic = f"interop/py-{next(_n)}/up"
    payload = f"from {client} over {transport} ({suite}, {kind})"
    sealer = mqseal.Sealer(keys.seal, 31, suite, counter_file=tmp_path / "py.counter", create=True)
    with reaped(start_cli_sub(cli, mosquitto, transport, topic, keys)) as sub:
        # The CLI exits after its first verified message; publish until it
        # has subscribed and received one (each envelope has its own counter).
        publish_sealed(client, mosquitto, transport, sealer, topic, [payload.encode()],
                       until=lambda: sub.poll() is not None)
        out, err = sub.communicate(timeout=30)
    assert sub.returncode == 0, err
    assert out.splitlines()[0] == f"31 {payload}", (out, err)


@every_case
def test_cli_pub_to_python(client: str, transport: str, suite: str, kind: str, keys: Keys, mosquitto: Any,
                           cli: str, tmp_path: Path) -> None:
    topic = f"interop/cli-{next(_n)}/up"
    payload = f"from the CLI over {transport} ({suite}, {kind}) to {client}"
    opener = mqseal.Opener(mqseal.Keyring([keys.open]))
    args = cli_pub_args(cli, mosquitto, transport, topic, payload, suite, keys, tmp_path)

    def cli_pub() -> None:
        pub = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert pub.returncode == 0, pub.stderr

    got = collect_opened(client, mosquitto, transport, opener, topic, 1, cli_pub)
    assert len(got) == 1, got
    msg = got[0]
    assert isinstance(msg, mqseal.paho.Message), msg
    assert msg.payload == payload.encode() and msg.topic == topic
    assert msg.opened is not None
    assert (msg.opened.sender_id, msg.opened.suite, msg.opened.key_id) == (77, suite, keys.open.id)


def test_paho_rejects_plain_and_replayed_and_allows_allowlisted(mosquitto: Any, tmp_path: Path) -> None:
    key = mqseal.Key.generate(1)
    sealer = mqseal.Sealer(key, 1, counter_file=tmp_path / "c", create=True)
    got: "queue.Queue[Any]" = queue.Queue()
    subscribed: "queue.Queue[bool]" = queue.Queue()
    rx = paho_client(mosquitto, "tcp")
    sealed_rx = mqseal.paho.SealedClient(rx, None, mqseal.Opener(mqseal.Keyring([key])), plain_topics=["status/#"])
    sealed_rx.on_message = lambda _c, msg: got.put(msg)
    sealed_rx.on_reject = lambda _c, rej: got.put(rej)
    rx.on_subscribe = lambda *_a: subscribed.put(True)
    rx.subscribe([("sealed/#", 1), ("status/#", 1)])
    rx.loop_start()
    tx = paho_client(mosquitto, "tcp")
    sealed_tx = mqseal.paho.SealedClient(tx, sealer, plain_topics=["status/#"])
    tx.loop_start()
    try:
        assert subscribed.get(timeout=10)
        env = sealer.seal("sealed/a", b"once")
        tx.publish("sealed/a", env, qos=1).wait_for_publish(5)
        tx.publish("sealed/a", env, qos=1).wait_for_publish(5)  # replayed
        tx.publish("sealed/a", b"plain text", qos=1).wait_for_publish(5)  # unsealed on a sealed topic
        sealed_tx.publish_plain("status/online", b"1", qos=1).wait_for_publish(5)
        with pytest.raises(ValueError):
            sealed_tx.publish_plain("sealed/a", b"no")
        results = [got.get(timeout=10) for _ in range(4)]
    finally:
        for c in (rx, tx):
            c.loop_stop()
            c.disconnect()
    assert isinstance(results[0], mqseal.paho.Message) and results[0].payload == b"once"
    assert isinstance(results[1], mqseal.paho.Rejected) and results[1].reason == "duplicate"
    assert isinstance(results[2], mqseal.paho.Rejected) and results[2].reason == "unsupportedVersion"
    assert isinstance(results[3], mqseal.paho.Message) and not results[3].sealed and results[3].payload == b"1"
