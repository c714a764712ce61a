"""Python <-> the npm package `mqseal` (bindings/wasm/npm, MQTT.js in Node)
over MQTT-over-WebSocket through a real Mosquitto, both ways: both suites,
group and pairwise keys, paho and aiomqtt on the Python side. The Node side
is npm_peer.mjs, run with node as a child process."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import queue
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

import aiomqtt
import paho.mqtt.client as mqtt
import pytest

import mqseal
import mqseal.aiomqtt
import mqseal.paho
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


def ws_paho(m: Any) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, transport="websockets")
    c.ws_set_options(path="/mqtt")
    c.connect("127.0.0.1", m.ws)
    return c


def ws_aiomqtt(m: Any) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", m.ws, transport="websockets", websocket_path="/mqtt")


@pytest.mark.parametrize("client,suite,kind", CASES, ids=IDS)
def test_python_seals_npm_opens(client: str, suite: str, kind: str, node: str, mosquitto: Any,
                                tmp_path: Path) -> None:
    s = sides(kind)
    topic = f"npm-interop/py-{next(_n)}/up"
    sealer = mqseal.Sealer(s.py_seal, 31, suite, counter_file=tmp_path / "py.counter", create=True)
    js = peer(node, mosquitto, "open", topic, suite, s)
    try:
        assert js.stdout is not None
        ready = js.stdout.readline()
        assert json.loads(ready or "{}").get("ready"), (ready, js.stderr.read() if js.stderr else "")
        if client == "paho":
            c = ws_paho(mosquitto)
            sealed = mqseal.paho.SealedClient(c, sealer)
            c.loop_start()
            try:
                for msg in MESSAGES:
                    sealed.publish(topic, msg.encode(), qos=1).wait_for_publish(10)
            finally:
                c.loop_stop()
                c.disconnect()
        else:
            async def run() -> None:
                async with ws_aiomqtt(mosquitto) as c:
                    sealed = mqseal.aiomqtt.SealedClient(c, sealer)
                    for msg in MESSAGES:
                        await sealed.publish(topic, msg.encode(), qos=1)
            asyncio.run(run())
        out, err = js.communicate(timeout=30)
    finally:
        if js.poll() is None:
            js.kill()
            js.wait()
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
    got: List[Any] = []
    if client == "paho":
        q: "queue.Queue[Any]" = queue.Queue()
        subscribed: "queue.Queue[bool]" = queue.Queue()
        c = ws_paho(mosquitto)
        sealed = mqseal.paho.SealedClient(c, None, opener)
        sealed.on_message = lambda _c, msg: q.put(msg)
        sealed.on_reject = lambda _c, rej: q.put(rej)
        c.on_subscribe = lambda *_a: subscribed.put(True)
        c.subscribe(topic, qos=1)
        c.loop_start()
        try:
            assert subscribed.get(timeout=10)
            js = peer(node, mosquitto, "seal", topic, suite, s)
            out, err = js.communicate(timeout=60)
            assert js.returncode == 0, err
            deadline = time.monotonic() + 20
            while len(got) < len(MESSAGES) and time.monotonic() < deadline:
                try:
                    got.append(q.get(timeout=1))
                except queue.Empty:
                    pass
        finally:
            c.loop_stop()
            c.disconnect()
    else:
        async def run() -> None:
            async with ws_aiomqtt(mosquitto) as c:
                rejected: List[mqseal.aiomqtt.Rejected] = []
                sealed = mqseal.aiomqtt.SealedClient(c, None, opener, on_reject=rejected.append)
                await c.subscribe(topic, qos=1)
                proc = await asyncio.create_subprocess_exec(
                    *peer_args(node, mosquitto, "seal", topic, suite, s), stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE)
                _, err = await proc.communicate()
                assert proc.returncode == 0, err

                async def collect() -> None:
                    async for m in sealed:
                        got.append(m)
                        if len(got) == len(MESSAGES):
                            return
                await asyncio.wait_for(collect(), 20)
                got.extend(rejected)
        asyncio.run(run())
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
    c = ws_paho(mosquitto)
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
