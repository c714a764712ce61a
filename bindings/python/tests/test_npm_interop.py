"""Python <-> the npm package `mqseal` (bindings/wasm/npm, MQTT.js in Node)
over MQTT-over-WebSocket through a real Mosquitto, both ways: both suites,
group and pairwise keys, paho and aiomqtt on the Python side. The Node side
is npm_peer.mjs, run with node as a child process."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

import pytest

import mqseal
import mqseal.paho
from clients import collect_opened, paho_client, publish_sealed, reaped
from conftest import REPO

NPM = Path(os.environ.get("MQSEAL_NPM_DIR") or REPO / "bindings" / "wasm" / "npm")
PEER = Path(__file__).resolve().parent / "npm_peer.mjs"
SUITES = ["chacha20poly1305", "hmac-sha256"]
KINDS = ["group", "pairwise"]
CLIENTS = ["paho", "aiomqtt"]
CASES = list(itertools.product(CLIENTS, SUITES, KINDS))
IDS = ["-".join(c) for c in CASES]
MESSAGES = ["first reading", "second reading", "\u00fcnicode \u2713"]
_n = itertools.count()


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    assert path, "node is not installed (scripts/test-parts/25-python.sh needs Node 20)"
    assert (NPM / "wasm" / "mqseal_wasm_bg.wasm").exists(), \
        f"the npm package is not built in {NPM} (scripts/test-parts/25-python.sh builds it)"
    assert (NPM / "node_modules" / "mqtt").is_dir(), f"MQTT.js is not installed in {NPM} (npm ci)"
    return path


@dataclass
class Sides:
    py_seal: mqseal.Key
    py_open: mqseal.Key
    npm: Dict[str, Any]  # the peer's key options
    key_id: int


def sides(kind: str) -> Sides:
    if kind == "group":
        key = mqseal.Key.generate(21)
        return Sides(key, key, {"key": key.to_text()}, 21)
    py, js = mqseal.StaticKeyPair.generate(), mqseal.StaticKeyPair.generate()
    mine = py.pairwise(js.public_key, 44)
    return Sides(mine.send, mine.recv, {"x25519": js.secret_text(), "peer": py.public_key.to_text(), "keyId": 44},
                 44)


def peer_args(node: str, m: Any, mode: str, topic: str, suite: str, s: Sides) -> List[str]:
    cfg = {"npm": str(NPM), "mode": mode, "url": f"ws://127.0.0.1:{m.ws}/mqtt", "topic": topic, "suite": suite,
           "senderId": 66, "messages": MESSAGES, **s.npm}
    return [node, str(PEER), json.dumps(cfg)]


def peer(node: str, m: Any, mode: str, topic: str, suite: str, s: Sides) -> "subprocess.Popen[str]":
    return subprocess.Popen(peer_args(node, m, mode, topic, suite, s), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("client,suite,kind", CASES, ids=IDS)
def test_python_seals_npm_opens(client: str, suite: str, kind: str, node: str, mosquitto: Any,
                                tmp_path: Path) -> None:
    s = sides(kind)
    topic = f"npm-interop/py-{next(_n)}/up"
    sealer = mqseal.Sealer(s.py_seal, 31, suite, counter_file=tmp_path / "py.counter", create=True)
    with reaped(peer(node, mosquitto, "open", topic, suite, s)) as js:
        assert js.stdout is not None
        ready = js.stdout.readline()
        assert json.loads(ready or "{}").get("ready"), (ready, js.stderr.read() if js.stderr else "")
        publish_sealed(client, mosquitto, "ws", sealer, topic, [msg.encode() for msg in MESSAGES])
        out, err = js.communicate(timeout=30)
    assert js.returncode == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [g.get("payload") for g in got] == MESSAGES, (got, err)
    for g in got:
        assert (g["senderId"], g["keyId"], g["suite"]) == (31, s.key_id, suite), g
    assert [int(g["counter"]) for g in got] == sorted({int(g["counter"]) for g in got}), got


@pytest.mark.parametrize("client,suite,kind", CASES, ids=IDS)
def test_npm_seals_python_opens(client: str, suite: str, kind: str, node: str, mosquitto: Any) -> None:
    s = sides(kind)
    topic = f"npm-interop/js-{next(_n)}/up"
    opener = mqseal.Opener(mqseal.Keyring([s.py_open]))

    def npm_seals() -> None:
        js = peer(node, mosquitto, "seal", topic, suite, s)
        _, err = js.communicate(timeout=60)
        assert js.returncode == 0, err

    got = collect_opened(client, mosquitto, "ws", opener, topic, len(MESSAGES), npm_seals)
    assert all(isinstance(m, mqseal.paho.Message) for m in got), got
    assert [m.payload.decode() for m in got] == MESSAGES
    for m in got:
        assert m.topic == topic and m.opened is not None
        assert (m.opened.sender_id, m.opened.key_id, m.opened.suite) == (66, s.key_id, suite)


def test_npm_rejects_a_python_envelope_on_another_topic(node: str, mosquitto: Any) -> None:
    """The peer really verifies: an envelope Python sealed for one topic,
    published on another, is rejected by the npm package and never printed
    as a message."""
    s = sides("group")
    topic = f"npm-interop/bound-{next(_n)}/up"
    sealer = mqseal.Sealer.in_memory(s.py_seal, 31)
    js = peer(node, mosquitto, "open", topic, "chacha20poly1305", s)
    c = paho_client(mosquitto, "ws")
    c.loop_start()
    try:
        assert js.stdout is not None
        assert json.loads(js.stdout.readline() or "{}").get("ready")
        c.publish(topic, sealer.seal("npm-interop/elsewhere", b"moved"), qos=1).wait_for_publish(10)
        first = json.loads(js.stdout.readline() or "{}")
        assert first == {"rejected": "auth"}, first
    finally:
        c.loop_stop()
        c.disconnect()
        js.kill()
        js.wait()
