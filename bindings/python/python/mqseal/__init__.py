"""mqseal: end-to-end sealed MQTT payloads, on the mqseal Rust core.

Everything cryptographic (sealing, opening, counter files, replay windows,
receiver policy) is done by the Rust core in the native module
``mqseal._mqseal``; this package adds Python exceptions and MQTT helpers
(:mod:`mqseal.paho`, :mod:`mqseal.aiomqtt`) and a shared replay store on
Redis (:mod:`mqseal.redis`).
"""

from . import _errors
from ._errors import *  # noqa: F401,F403
from ._errors import BY_CODE as BY_CODE
from ._errors import Error as Error
from ._mqseal import (
    DEFAULT_MAX_SENDERS as DEFAULT_MAX_SENDERS,
    DEFAULT_RESERVATION_BLOCK as DEFAULT_RESERVATION_BLOCK,
    DEFAULT_STORE_PREFIX as DEFAULT_STORE_PREFIX,
    GIL_RELEASE_MIN as GIL_RELEASE_MIN,
    MAX_OVERHEAD as MAX_OVERHEAD,
    MAX_WINDOW as MAX_WINDOW,
    Key as Key,
    Keyring as Keyring,
    Member as Member,
    Opened as Opened,
    Opener as Opener,
    PairwiseKeys as PairwiseKeys,
    PendingMessage as PendingMessage,
    PublicKey as PublicKey,
    ReplayStateFile as ReplayStateFile,
    Sealer as Sealer,
    Sealing as Sealing,
    StagedState as StagedState,
    StaticKeyPair as StaticKeyPair,
    WINDOW_SCRIPT as WINDOW_SCRIPT,
    WindowQuery as WindowQuery,
    __version__ as __version__,
)

#: The two suites, by the names every binding uses.
CHACHA20POLY1305 = "chacha20poly1305"
HMAC_SHA256 = "hmac-sha256"

__all__ = _errors.__all__ + [
    "CHACHA20POLY1305",
    "DEFAULT_MAX_SENDERS",
    "DEFAULT_RESERVATION_BLOCK",
    "DEFAULT_STORE_PREFIX",
    "GIL_RELEASE_MIN",
    "HMAC_SHA256",
    "Key",
    "Keyring",
    "MAX_OVERHEAD",
    "MAX_WINDOW",
    "Member",
    "Opened",
    "Opener",
    "PairwiseKeys",
    "PendingMessage",
    "PublicKey",
    "ReplayStateFile",
    "Sealer",
    "Sealing",
    "StagedState",
    "StaticKeyPair",
    "WINDOW_SCRIPT",
    "WindowQuery",
    "__version__",
]
