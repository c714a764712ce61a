"""mqseal for paho-mqtt 2.x: ``publish`` seals, ``on_message`` gets verified messages.

>>> import paho.mqtt.client as mqtt
>>> client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
>>> sealed = SealedClient(client, sealer, opener)          # doctest: +SKIP
>>> sealed.on_message = lambda c, msg: print(msg.payload)   # doctest: +SKIP
>>> sealed.on_reject = lambda c, rej: print(rej.reason)     # doctest: +SKIP

Connect, subscribe and loop with the paho client as usual; the wrapper
replaces only its ``on_message``. Every topic is sealed unless allowlisted
with ``plain_topics``. MQTT 5 topic aliases are resolved before the topic
is checked against the envelope.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional

import paho.mqtt.client as mqtt

from ._adapter import Message, Protection, Rejected, topic_matches
from ._mqseal import Opener, Sealer

__all__ = ["Message", "Rejected", "SealedClient", "topic_matches"]


class SealedClient:
    """Wraps a paho-mqtt ``Client``; use ``.client`` for everything but publishing and receiving."""

    def __init__(
        self,
        client: mqtt.Client,
        sealer: Optional[Sealer] = None,
        opener: Optional[Opener] = None,
        *,
        plain_topics: Iterable[str] = (),
    ) -> None:
        self.client = client
        self._protection = Protection.build(sealer, opener, plain_topics)
        self._aliases: Dict[int, str] = {}
        #: Called as ``on_message(sealed_client, message)`` for each verified (or allowlisted plain) message.
        self.on_message: Optional[Callable[["SealedClient", Message], None]] = None
        #: Called as ``on_reject(sealed_client, rejected)``; ``rejected.reason`` is the core's code.
        self.on_reject: Optional[Callable[["SealedClient", Rejected], None]] = None
        client.on_message = self._on_message

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        properties: Optional[Any] = None,
    ) -> mqtt.MQTTMessageInfo:
        """Seals ``payload`` for ``topic`` and publishes the envelope."""
        return self.client.publish(topic, self._protection.seal(topic, payload), qos, retain, properties)

    def publish_plain(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False, properties: Optional[Any] = None
    ) -> mqtt.MQTTMessageInfo:
        """Publishes unsealed, only on a topic allowlisted as plain."""
        self._protection.check_plain(topic)
        return self.client.publish(topic, payload, qos, retain, properties)

    def _topic(self, msg: mqtt.MQTTMessage) -> str:
        topic = msg.topic
        alias = getattr(msg.properties, "TopicAlias", None) if msg.properties is not None else None
        if isinstance(alias, int):
            if topic:
                self._aliases[alias] = topic
            else:
                topic = self._aliases.get(alias, "")
        return topic

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        message, rejected = self._protection.receive(self._topic(msg), bytes(msg.payload), msg.qos, bool(msg.retain))
        if message is not None and self.on_message is not None:
            self.on_message(self, message)
        if rejected is not None and self.on_reject is not None:
            self.on_reject(self, rejected)
