"""Exceptions: one class per stable core error code, under :class:`Error`.

``Error.code`` is the core's camelCase code (``mqseal::Error::code`` in
Rust, ``err.code`` in JavaScript, ``mqseal_error_code_name`` in C).
``AuthError`` deliberately says nothing beyond "did not verify".
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

__all__ = [
    "Error",
    "FormatError",
    "PolicyError",
    "TruncatedError",
    "UnsupportedVersionError",
    "UnknownSuiteError",
    "BadVarintError",
    "UnknownFlagsError",
    "AuthError",
    "UnknownKeyError",
    "DuplicateError",
    "ReplayError",
    "ExpiredError",
    "FromFutureError",
    "TimestampRequiredError",
    "ClockRequiredError",
    "SuiteNotAllowedError",
    "TooManySendersError",
    "TopicNotRewritableError",
    "TopicTooLongError",
    "InvalidTopicError",
    "BufferTooSmallError",
    "PayloadTooLargeError",
    "CounterExhaustedError",
    "CounterStoreError",
    "KeyringFullError",
    "DuplicateKeyIdError",
    "KeyNotFoundError",
    "NoPrimaryKeyError",
    "KeyIsPrimaryError",
    "InvalidKeyError",
    "WeakSharedSecretError",
    "SelfPairingError",
    "InvalidConfigError",
    "InvalidFilterError",
    "InvalidSnapshotError",
    "EncodeError",
    "DecodeError",
    "RngError",
    "StaleEpochError",
    "InvalidControlError",
    "BY_CODE",
]


class Error(Exception):
    """Base class of every mqseal error; ``code`` names the core's error."""

    code: str = "error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        #: Key id for ``unknownKey``, ``duplicateKeyId``, ``keyNotFound``, ``keyIsPrimary``.
        self.key_id: Optional[int] = extra.get("key_id")
        #: ``StoreError`` code for ``counterStore`` (``missing``, ``locked``, ``conflict``...);
        #: ``ControlError`` code for ``invalidControl`` (``wrongMember``, ``malformed``...).
        self.reason: Optional[str] = extra.get("reason")
        #: The suite refused for ``suiteNotAllowed``.
        self.suite: Optional[str] = extra.get("suite")
        #: The option at fault for ``invalidConfig``, as JS's ``err.option``: for a receiver
        #: setting the core's ``OpenerConfig`` field name (``window``, ``gaps``, ``suites``, ``eviction``),
        #: else the keyword (``suite``, ``max_senders``).
        self.option: Optional[str] = extra.get("option")
        #: The state file at fault for ``counterStore``.
        self.path: Optional[str] = None if extra.get("path") is None else str(extra.get("path"))
        #: The pid holding a ``locked`` state file, if known.
        self.holder_pid: Optional[int] = extra.get("holder_pid")
        #: For ``staleEpoch``: the epoch the member holds and the one received.
        self.held: Optional[int] = extra.get("held")
        self.received: Optional[int] = extra.get("received")


class FormatError(Error):
    """The envelope is not a well-formed v1 envelope (before any key is used)."""


class PolicyError(Error):
    """The envelope verified but the receiver's policy does not accept it."""


class TruncatedError(FormatError):
    code = "truncated"


class UnsupportedVersionError(FormatError):
    code = "unsupportedVersion"


class UnknownSuiteError(FormatError):
    code = "unknownSuite"


class BadVarintError(FormatError):
    code = "badVarint"


class UnknownFlagsError(FormatError):
    code = "unknownFlags"


class AuthError(Error):
    code = "auth"


class UnknownKeyError(Error):
    code = "unknownKey"


class DuplicateError(PolicyError):
    code = "duplicate"


class ReplayError(PolicyError):
    code = "replay"


class ExpiredError(PolicyError):
    code = "expired"


class FromFutureError(PolicyError):
    code = "fromFuture"


class TimestampRequiredError(PolicyError):
    code = "timestampRequired"


class ClockRequiredError(PolicyError):
    code = "clockRequired"


class SuiteNotAllowedError(PolicyError):
    code = "suiteNotAllowed"


class TooManySendersError(PolicyError):
    code = "tooManySenders"


class TopicNotRewritableError(Error):
    code = "topicNotRewritable"


class TopicTooLongError(Error):
    code = "topicTooLong"


class InvalidTopicError(Error):
    code = "invalidTopic"


class BufferTooSmallError(Error):
    code = "bufferTooSmall"


class PayloadTooLargeError(Error):
    code = "payloadTooLarge"


class CounterExhaustedError(Error):
    code = "counterExhausted"


class CounterStoreError(Error):
    code = "counterStore"


class KeyringFullError(Error):
    code = "keyringFull"


class DuplicateKeyIdError(Error):
    code = "duplicateKeyId"


class KeyNotFoundError(Error):
    code = "keyNotFound"


class NoPrimaryKeyError(Error):
    code = "noPrimaryKey"


class KeyIsPrimaryError(Error):
    code = "keyIsPrimary"


class InvalidKeyError(Error):
    code = "invalidKey"


class WeakSharedSecretError(Error):
    code = "weakSharedSecret"


class SelfPairingError(Error):
    code = "selfPairing"


class InvalidConfigError(Error):
    code = "invalidConfig"


class InvalidFilterError(Error):
    code = "invalidFilter"


class InvalidSnapshotError(Error):
    code = "invalidSnapshot"


class EncodeError(Error):
    code = "encode"


class DecodeError(Error):
    code = "decode"


class RngError(Error):
    code = "rng"


class StaleEpochError(Error):
    code = "staleEpoch"


class InvalidControlError(Error):
    code = "invalidControl"


def _subclasses(cls: Type[Error]) -> Dict[str, Type[Error]]:
    out: Dict[str, Type[Error]] = {}
    for sub in cls.__subclasses__():
        if "code" in sub.__dict__:
            out[sub.code] = sub
        out.update(_subclasses(sub))
    return out


#: Every error class by its core code.
BY_CODE: Dict[str, Type[Error]] = _subclasses(Error)


def _from_core(code: str, message: str, extra: Dict[str, Any]) -> Error:
    """Called by the native module to build the exception for a core error."""
    cls = BY_CODE.get(code, Error)
    err = cls(message, **extra)
    if cls is Error:
        err.code = code
    return err
