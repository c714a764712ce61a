"""MQTT clients for the tests (paho and aiomqtt, TCP or WebSocket, to the
test Mosquitto), and the two things every interop test does with them:
publish sealed messages, and collect what a sealed subscription delivers;
and `reaped`, for the peer process on the other side of the broker."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import subprocess
import time
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import aiomqtt
import paho.mqtt.client as mqtt

import mqseal
import mqseal.aiomqtt
import mqseal.paho


@contextlib.contextmanager
def reaped(proc: "subprocess.Popen[str]") -> Iterator["subprocess.Popen[str]"]:
    """`proc` (a peer the test started) for the with-block; killed and
    waited for if the block leaves it running (a failed assertion)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def paho_client(m: Any, transport: str = "tcp") -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, transport="websockets" if transport == "ws" else "tcp")
    if transport == "ws":
        c.ws_set_options(path="/mqtt")
    c.connect("127.0.0.1", m.ws if transport == "ws" else m.tcp)
    return c


def aiomqtt_client(m: Any, transport: str = "tcp") -> aiomqtt.Client:
    if transport == "ws":
        return aiomqtt.Client("127.0.0.1", m.ws, transport="websockets", websocket_path="/mqtt")
    return aiomqtt.Client("127.0.0.1", m.tcp)


@contextlib.contextmanager
def tap(m: Any, topic: str) -> Iterator[Tuple[mqtt.Client, "queue.Queue[bytes]"]]:
    """A plain paho client subscribed to `topic` (QoS 1) that records the raw
    payloads on the wire, to re-publish them as an attacker would."""
    wire: "queue.Queue[bytes]" = queue.Queue()
    subscribed: "queue.Queue[bool]" = queue.Queue()
    c = paho_client(m)
    c.on_message = lambda _c, _u, msg: wire.put(bytes(msg.payload))
    c.on_subscribe = lambda *_a: subscribed.put(True)
    c.subscribe(topic, qos=1)
    c.loop_start()
    try:
        assert subscribed.get(timeout=10)
        yield c, wire
    finally:
        c.loop_stop()
        c.disconnect()


def publish_sealed(client: str, m: Any, transport: str, sealer: mqseal.Sealer, topic: str,
                   payloads: Sequence[bytes], until: Optional[Callable[[], bool]] = None) -> None:
    """Seals and publishes `payloads` at QoS 1 through `client` ("paho" or
    "aiomqtt"). With `until`, publishes them again and again (each envelope
    with its own counter), 0.2 s apart, until it returns true or 30 s pass:
    for a subscriber whose subscription time is unknown."""
    deadline = time.monotonic() + 30

    def again() -> bool:
        return until is not None and not until() and time.monotonic() < deadline

    if client == "paho":
        c = paho_client(m, transport)
        sealed = mqseal.paho.SealedClient(c, sealer)
        c.loop_start()
        try:
            while True:
                for p in payloads:
                    sealed.publish(topic, p, qos=1).wait_for_publish(10)
                if not again():
                    return
                time.sleep(0.2)
        finally:
            c.loop_stop()
            c.disconnect()

    async def run() -> None:
        async with aiomqtt_client(m, transport) as c:
            asealed = mqseal.aiomqtt.SealedClient(c, sealer)
            while True:
                for p in payloads:
                    await asealed.publish(topic, p, qos=1)
                if not again():
                    return
                await asyncio.sleep(0.2)
    asyncio.run(run())


def collect_opened(client: str, m: Any, transport: str, opener: mqseal.Opener, topic: str, n: int,
                   peer: Callable[[], None]) -> List[Any]:
    """Subscribes to `topic` (QoS 1) through a sealed `client` ("paho" or
    "aiomqtt") with `opener`, runs `peer` (which publishes and returns when
    it is done), and returns the first `n` deliveries, messages and
    rejections in order (fewer if 20 s pass)."""
    got: List[Any] = []
    if client == "paho":
        q: "queue.Queue[Any]" = queue.Queue()
        subscribed: "queue.Queue[bool]" = queue.Queue()
        c = paho_client(m, transport)
        sealed = mqseal.paho.SealedClient(c, None, opener)
        sealed.on_message = lambda _c, msg: q.put(msg)
        sealed.on_reject = lambda _c, rej: q.put(rej)
        c.on_subscribe = lambda *_a: subscribed.put(True)
        c.subscribe(topic, qos=1)
        c.loop_start()
        try:
            assert subscribed.get(timeout=10)
            peer()
            deadline = time.monotonic() + 20
            while len(got) < n and time.monotonic() < deadline:
                try:
                    got.append(q.get(timeout=1))
                except queue.Empty:
                    pass
        finally:
            c.loop_stop()
            c.disconnect()
        return got

    async def run() -> None:
        async with aiomqtt_client(m, transport) as c:
            rejected: List[mqseal.aiomqtt.Rejected] = []
            asealed = mqseal.aiomqtt.SealedClient(c, None, opener, on_reject=rejected.append)
            await c.subscribe(topic, qos=1)
            await asyncio.get_running_loop().run_in_executor(None, peer)

            async def collect() -> None:
                async for msg in asealed:
                    got.append(msg)
                    if len(got) == n:
                        return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(collect(), 20)
            got.extend(rejected)
    asyncio.run(run())
    return got
