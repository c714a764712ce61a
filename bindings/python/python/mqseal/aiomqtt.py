"""mqseal for aiomqtt: an async iterator of verified messages, and sealed publishing.

>>> async with aiomqtt.Client("127.0.0.1") as client:       # doctest: +SKIP
...     sealed = SealedClient(client, sealer, opener)
...     await client.subscribe("telemetry/#")
...     async for msg in sealed.messages():
...         print(msg.topic, msg.payload, msg.opened.sender_id)

Rejected messages are not yielded: they go to ``on_reject`` (with the
core's code as ``rejected.reason``) if given. Every topic is sealed unless
allowlisted with ``plain_topics``.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Iterable, Optional

import aiomqtt as _aiomqtt

from ._adapter import Message, Protection, Rejected, topic_matches
from ._mqseal import Opener, Sealer

__all__ = ["Message", "Rejected", "SealedClient", "topic_matches"]


class SealedClient:
    """Wraps a connected ``aiomqtt.Client``; use ``.client`` to subscribe."""

    def __init__(
        self,
        client: _aiomqtt.Client,
        sealer: Optional[Sealer] = None,
        opener: Optional[Opener] = None,
        *,
        plain_topics: Iterable[str] = (),
        on_reject: Optional[Callable[[Rejected], None]] = None,
    ) -> None:
        self.client = client
        self._protection = Protection.build(sealer, opener, plain_topics)
        self.on_reject = on_reject

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False, **kwargs: Any) -> None:
        """Seals ``payload`` for ``topic`` and publishes the envelope."""
        await self.client.publish(topic, self._protection.seal(topic, payload), qos=qos, retain=retain, **kwargs)

    async def publish_plain(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False, **kwargs: Any) -> None:
        """Publishes unsealed, only on a topic allowlisted as plain."""
        self._protection.check_plain(topic)
        await self.client.publish(topic, payload, qos=qos, retain=retain, **kwargs)

    async def messages(self) -> AsyncIterator[Message]:
        """Verified (and allowlisted plain) messages, as they arrive."""
        async for m in self.client.messages:
            payload = m.payload
            if isinstance(payload, str):
                raw = payload.encode()
            elif isinstance(payload, (bytes, bytearray)):
                raw = bytes(payload)
            else:
                raw = b"" if payload is None else str(payload).encode()
            message, rejected = self._protection.receive(m.topic.value, raw, int(m.qos), bool(m.retain))
            if message is not None:
                yield message
            elif rejected is not None and self.on_reject is not None:
                self.on_reject(rejected)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self.messages()
