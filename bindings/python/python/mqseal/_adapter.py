"""What the MQTT helpers share: the plain-topic allowlist and message types.

The rule is the one of every mqseal adapter: every topic is sealed unless
it matches a filter allowlisted as plain. A plain payload on a sealed topic
is rejected (it does not open); an envelope on a plain topic is passed on
as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Tuple

from ._errors import Error
from ._mqseal import Opened, Opener, Sealer


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the rest)."""
    fparts = topic_filter.split("/")
    tparts = topic.split("/")
    if topic.startswith("$") and fparts[0] in ("+", "#"):
        return False
    for i, f in enumerate(fparts):
        if f == "#":
            return i == len(fparts) - 1
        if i >= len(tparts):
            return False
        if f != "+" and f != tparts[i]:
            return False
    return len(fparts) == len(tparts)


def _check_filter(topic_filter: str) -> str:
    parts = topic_filter.split("/")
    ok = bool(topic_filter) and "\0" not in topic_filter and all(
        (("+" not in p and "#" not in p) or p in ("+", "#")) for p in parts
    ) and all(p != "#" for p in parts[:-1])
    if not ok:
        raise ValueError(f"invalid topic filter {topic_filter!r}")
    return topic_filter


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
    plain_topics: List[str] = field(default_factory=list)

    @classmethod
    def build(cls, sealer: Optional[Sealer], opener: Optional[Opener], plain_topics: Iterable[str]) -> "Protection":
        return cls(sealer, opener, [_check_filter(f) for f in plain_topics])

    def is_plain(self, topic: str) -> bool:
        return any(topic_matches(f, topic) for f in self.plain_topics)

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
