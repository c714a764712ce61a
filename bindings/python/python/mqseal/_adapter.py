"""What the MQTT helpers share: the plain-topic allowlist and message types.

The rule is the one of every mqseal adapter, decided by the core's
``PlainTopics``: every topic is sealed unless it matches a filter
allowlisted as plain. A plain payload on a sealed topic is rejected (it
does not open); an envelope on a plain topic is passed on as it is. A bad
filter raises :class:`mqseal.Error` with code ``invalidFilter``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Tuple

from ._errors import Error
from ._mqseal import Opened, Opener, PlainTopics, Sealer


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the rest; a ``$``
    topic only by a filter naming its first level), by the core's rule.

    Raises :class:`mqseal.Error` with code ``invalidFilter`` for an invalid filter."""
    return PlainTopics([topic_filter]).allows(topic)


@dataclass(frozen=True)
class Message:
    """A message handed to the application: verified, or plain on an allowlisted topic."""

    topic: str
    payload: bytes
    #: The verified header and payload; None for a plain message.
    opened: Optional[Opened]
    qos: int = 0
    retain: bool = False

    @property
    def sealed(self) -> bool:
        return self.opened is not None

    @property
    def sender_id(self) -> Optional[int]:
        return None if self.opened is None else self.opened.sender_id


@dataclass(frozen=True)
class Rejected:
    """A message that did not verify or was refused by the receiver's policy."""

    topic: str
    payload: bytes
    error: Error
    qos: int = 0
    retain: bool = False

    @property
    def reason(self) -> str:
        """The core's stable error code (``auth``, ``duplicate``, ``unsupportedVersion``...)."""
        return self.error.code


@dataclass
class Protection:
    """Seals outgoing and opens incoming payloads for one MQTT client."""

    sealer: Optional[Sealer]
    opener: Optional[Opener]
    plain_topics: PlainTopics = field(default_factory=lambda: PlainTopics([]))

    @classmethod
    def build(cls, sealer: Optional[Sealer], opener: Optional[Opener], plain_topics: Iterable[str]) -> "Protection":
        if isinstance(plain_topics, str):
            raise TypeError("plain_topics is a list of topic filters, not one string")
        return cls(sealer, opener, PlainTopics(list(plain_topics)))

    def is_plain(self, topic: str) -> bool:
        return self.plain_topics.allows(topic)

    def seal(self, topic: str, payload: bytes) -> bytes:
        if self.sealer is None:
            raise RuntimeError("this client has no Sealer: it cannot publish sealed messages")
        return self.sealer.seal(topic, payload)

    def check_plain(self, topic: str) -> None:
        if not self.is_plain(topic):
            raise ValueError(f"topic {topic!r} is not allowlisted for plain payloads")

    def receive(self, topic: str, payload: bytes, qos: int, retain: bool) -> Tuple[Optional[Message], Optional[Rejected]]:
        """A received message as (message, None) or (None, rejected)."""
        if self.is_plain(topic):
            return Message(topic, payload, None, qos, retain), None
        if self.opener is None:
            raise RuntimeError("this client has no Opener: it cannot receive sealed messages")
        try:
            opened = self.opener.open(topic, payload)
        except Error as e:
            return None, Rejected(topic, payload, e, qos, retain)
        return Message(topic, opened.payload, opened, qos, retain), None
