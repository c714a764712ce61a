//! The one error type of the core.

use core::fmt;

use crate::suites::Suite;

/// Why a durable store (a counter store, a replay-state file) could not
/// read or persist its state.
///
/// A counter store that cannot persist makes sealing fail: a sender that
/// carried on without a durable reservation could reuse a counter after a
/// reboot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreError {
    /// The persisted state could not be read.
    Read,
    /// The new reservation could not be written durably.
    Write,
    /// The persisted state exists but is not a valid record.
    Corrupt,
    /// The store holds no state. A sender never starts over from 0 by
    /// itself: a lost counter file (a container without a volume, a wiped
    /// flash sector) would reuse nonces. Create the store explicitly for a
    /// new (key, sender id), or start from a clock floor.
    Missing,
    /// The stored value is not the one this sealer last read or wrote:
    /// another writer uses the same store. Nothing was written.
    Conflict,
    /// Another process or instance holds the store's lock.
    Locked,
    /// No counters are granted: the sealer's counters come from an external
    /// driver that has not persisted and granted a reservation yet.
    NotGranted,
    /// The sender-id lease this store's counters belong to was lost (it
    /// expired, and another instance may hold the id now): no new counters
    /// are granted. Nothing was written.
    LeaseLost,
}

impl StoreError {
    /// A short, stable, camelCase name, shared by every binding (the
    /// `reason` of a `counterStore` error in JS and Python).
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            StoreError::Read => "read",
            StoreError::Write => "write",
            StoreError::Corrupt => "corrupt",
            StoreError::Missing => "missing",
            StoreError::Conflict => "conflict",
            StoreError::Locked => "locked",
            StoreError::NotGranted => "notGranted",
            StoreError::LeaseLost => "leaseLost",
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreError::Read => "store could not be read",
            StoreError::Write => "store could not persist the new state",
            StoreError::Corrupt => "store holds a corrupt record",
            StoreError::Missing => "store holds no state (create it explicitly for a new sender, or use a clock floor)",
            StoreError::Conflict => "stored value changed under this instance (a second writer on the same store)",
            StoreError::Locked => "store is locked by another process or instance",
            StoreError::NotGranted => "no counters granted (the store driver must persist and grant a reservation)",
            StoreError::LeaseLost => {
                "the sender-id lease was lost (expired; another instance may hold the id): no new counters"
            }
        })
    }
}

/// Everything that can go wrong when sealing, opening or managing keys.
///
/// Authentication failure is deliberately a single opaque variant,
/// [`Error::Auth`]: a wrong key, a wrong topic, a flipped bit in the header,
/// body or tag all look the same, so the error gives an attacker no oracle on
/// which part was wrong. Every other variant is about something the receiver
/// can see without the key (the format, its own policy, its key lookup) or
/// about local state (buffers, counters, key management).
///
/// [`Error::code`] gives a short stable name for each variant; the WASM and C
/// bindings expose the same names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    // ----- format errors: the envelope is not a v1 envelope -----
    /// The envelope ends before its header and 16-byte tag are complete.
    Truncated,
    /// The version nibble of byte 0 is not 1. Carries the version seen.
    UnsupportedVersion(u8),
    /// The suite nibble of byte 0 names no known suite. Carries the nibble.
    UnknownSuite(u8),
    /// A varint is longer than its type allows, overflows it, or is not in
    /// its shortest (canonical) form.
    BadVarint,
    /// The flags field has bits set that this version does not define.
    UnknownFlags,

    // ----- authentication -----
    /// The envelope did not verify: wrong key, wrong topic, or any of its
    /// bytes changed. Deliberately says nothing more.
    Auth,

    // ----- key lookup (before verification: no key, nothing to verify with) -----
    /// The key id in the header is not in the receiver's keyring (never
    /// added, or retired). Carries the key id. (Its code is `unknownKey`.)
    UnknownKey(u32),

    // ----- receiver policy (the envelope verified, but is not accepted) -----
    /// The counter was already accepted from this sender and key, within the
    /// replay window: a QoS 1/2 redelivery, a retained message seen again, or
    /// a replay. Not handed to the application twice.
    Duplicate,
    /// The counter is older than the replay window for this sender and key,
    /// so the receiver cannot tell whether it was seen: rejected as a replay.
    Replay,
    /// The authenticated timestamp is older than the receiver's maximum age.
    Expired,
    /// The authenticated timestamp is further in the future than the
    /// receiver's maximum clock skew.
    FromFuture,
    /// The receiver's policy requires a timestamp and the envelope has none.
    TimestampRequired,
    /// The receiver's policy checks timestamps but no current time was given.
    ClockRequired,
    /// The receiver's policy does not accept this suite. Checked before
    /// verification, from the header alone.
    SuiteNotAllowed(Suite),
    /// The sender table is full and its policy rejects new senders.
    TooManySenders,

    // ----- topics (checked before any key is used, on both sides) -----
    /// The received topic does not start with the prefix of the rewrite rule
    /// that was applied to it.
    TopicNotRewritable,
    /// The topic is longer than MQTT's limit of 65,535 bytes.
    TopicTooLong,
    /// The topic is not a valid MQTT topic name: empty, or holding a
    /// wildcard (`+`, `#`) or U+0000.
    InvalidTopic,
    /// Not a valid MQTT topic filter (for a plain-topic allowlist): empty,
    /// holding U+0000, `#` other than as the whole last level, or `+` other
    /// than as a whole level.
    InvalidFilter,

    // ----- local errors (the caller's buffers, state and configuration) -----
    /// The output buffer is too small. Carries the number of bytes needed.
    BufferTooSmall {
        /// Bytes the operation needs.
        needed: usize,
    },
    /// The payload is longer than the suite can protect (ChaCha20-Poly1305:
    /// 2^38 - 64 bytes; far beyond MQTT's 256 MiB packet limit).
    PayloadTooLarge,
    /// The sender has used every counter value; sealing under this sender id
    /// must stop (use a new sender id or key). Counters never wrap.
    CounterExhausted,
    /// The counter store failed; nothing was sealed.
    CounterStore(StoreError),
    /// A keyring could not take another key (a full sender table is
    /// [`Error::TooManySenders`], also on restore).
    KeyringFull,
    /// A key with this id is already in the keyring.
    DuplicateKeyId(u32),
    /// A management operation named a key id that is not in the keyring.
    KeyNotFound(u32),
    /// The keyring has no primary key to seal with.
    NoPrimaryKey,
    /// The primary key cannot be retired; make another key primary first.
    KeyIsPrimary(u32),
    /// A key's text or binary form is malformed.
    InvalidKey,
    /// An X25519 exchange gave a non-contributory (all-zero) shared secret:
    /// the peer's public key is a low-order point.
    WeakSharedSecret,
    /// A pairwise key was requested between a key pair and itself; both
    /// directions would share one key, allowing reflection.
    SelfPairing,
    /// A configuration value is out of range (for example a replay window
    /// width of zero or above the maximum).
    InvalidConfig,
    /// A saved state record is not valid: a replay-state record (no counter
    /// accepted, a width out of range, a bad checksum) or a member-state
    /// record (bad magic, checksum, encoding, or another member's).
    InvalidSnapshot,
    /// A typed payload could not be serialized with postcard.
    Encode,
    /// A verified payload could not be deserialized into the requested type.
    Decode,
    /// The operating system's random number generator failed.
    Rng,

    // ----- key distribution (docs/PROTOCOL.md section 14) -----
    /// A verified control message carries an epoch at or below the one the
    /// member holds: an old state (re-published, or replayed with a new
    /// counter). Nothing changed.
    StaleEpoch {
        /// The epoch the member holds.
        held: u64,
        /// The epoch in the message.
        received: u64,
    },
    /// A control message or acknowledgement was refused: it came on the
    /// wrong topic or from the wrong sender, or its body breaks a rule of
    /// the control protocol (the reason says which). Nothing changed.
    InvalidControl(crate::ControlError),
}

impl Error {
    /// A short, stable, camelCase name for the error, shared with the WASM
    /// (`err.code`) and C (`mqseal_error_code_name`) bindings and used in
    /// the test vectors.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::UnsupportedVersion(_) => "unsupportedVersion",
            Error::UnknownSuite(_) => "unknownSuite",
            Error::BadVarint => "badVarint",
            Error::UnknownFlags => "unknownFlags",
            Error::Auth => "auth",
            Error::UnknownKey(_) => "unknownKey",
            Error::Duplicate => "duplicate",
            Error::Replay => "replay",
            Error::Expired => "expired",
            Error::FromFuture => "fromFuture",
            Error::TimestampRequired => "timestampRequired",
            Error::ClockRequired => "clockRequired",
            Error::SuiteNotAllowed(_) => "suiteNotAllowed",
            Error::TooManySenders => "tooManySenders",
            Error::TopicNotRewritable => "topicNotRewritable",
            Error::TopicTooLong => "topicTooLong",
            Error::InvalidTopic => "invalidTopic",
            Error::InvalidFilter => "invalidFilter",
            Error::BufferTooSmall { .. } => "bufferTooSmall",
            Error::PayloadTooLarge => "payloadTooLarge",
            Error::CounterExhausted => "counterExhausted",
            Error::CounterStore(_) => "counterStore",
            Error::KeyringFull => "keyringFull",
            Error::DuplicateKeyId(_) => "duplicateKeyId",
            Error::KeyNotFound(_) => "keyNotFound",
            Error::NoPrimaryKey => "noPrimaryKey",
            Error::KeyIsPrimary(_) => "keyIsPrimary",
            Error::InvalidKey => "invalidKey",
            Error::WeakSharedSecret => "weakSharedSecret",
            Error::SelfPairing => "selfPairing",
            Error::InvalidConfig => "invalidConfig",
            Error::InvalidSnapshot => "invalidSnapshot",
            Error::Encode => "encode",
            Error::Decode => "decode",
            Error::Rng => "rng",
            Error::StaleEpoch { .. } => "staleEpoch",
            Error::InvalidControl(_) => "invalidControl",
        }
    }

    /// True for errors that mean "this envelope is not well-formed v1"
    /// (before any key is used).
    #[must_use]
    pub const fn is_format(&self) -> bool {
        matches!(
            self,
            Error::Truncated
                | Error::UnsupportedVersion(_)
                | Error::UnknownSuite(_)
                | Error::BadVarint
                | Error::UnknownFlags
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("envelope is truncated"),
            Error::UnsupportedVersion(v) => {
                write!(
                    f,
                    "not an mqseal envelope (unsealed; version nibble {v}, not 1: a plain payload on a sealed topic?)"
                )
            }
            Error::UnknownSuite(s) => write!(f, "unknown suite {s}"),
            Error::BadVarint => f.write_str("malformed or non-canonical varint in header"),
            Error::UnknownFlags => f.write_str("unknown flag bits in header"),
            Error::Auth => f.write_str("authentication failed"),
            Error::UnknownKey(id) => write!(f, "unknown key id {id}"),
            Error::Duplicate => f.write_str("duplicate message (counter already accepted)"),
            Error::Replay => f.write_str("replayed message (counter older than the replay window)"),
            Error::Expired => f.write_str("message timestamp is older than the maximum age"),
            Error::FromFuture => f.write_str("message timestamp is beyond the allowed clock skew"),
            Error::TimestampRequired => f.write_str("policy requires a timestamp"),
            Error::ClockRequired => f.write_str("policy checks timestamps but no current time was given"),
            Error::SuiteNotAllowed(s) => write!(f, "suite {s} is not allowed by policy"),
            Error::TooManySenders => f.write_str("sender table is full"),
            Error::TopicNotRewritable => f.write_str("topic does not match the rewrite rule's prefix"),
            Error::TopicTooLong => f.write_str("topic is longer than 65535 bytes"),
            Error::InvalidTopic => f.write_str("not a valid MQTT topic name (empty, or holds +, # or U+0000)"),
            Error::InvalidFilter => f.write_str(
                "not a valid MQTT topic filter (empty, holds U+0000, or a + or # that is not a whole level)",
            ),
            Error::BufferTooSmall { needed } => write!(f, "buffer too small: {needed} bytes needed"),
            Error::PayloadTooLarge => f.write_str("payload too large for the suite"),
            Error::CounterExhausted => f.write_str("message counter exhausted for this sender id and key"),
            Error::CounterStore(e) => write!(f, "counter store failed: {e}"),
            Error::KeyringFull => f.write_str("keyring is full"),
            Error::DuplicateKeyId(id) => write!(f, "key id {id} is already in the keyring"),
            Error::KeyNotFound(id) => write!(f, "key id {id} is not in the keyring"),
            Error::NoPrimaryKey => f.write_str("keyring has no primary key"),
            Error::KeyIsPrimary(id) => write!(f, "key id {id} is the primary key and cannot be retired"),
            Error::InvalidKey => f.write_str("malformed key"),
            Error::WeakSharedSecret => f.write_str("X25519 shared secret is not contributory (low-order public key)"),
            Error::SelfPairing => f.write_str("cannot derive a pairwise key with oneself"),
            Error::InvalidConfig => f.write_str("invalid configuration value"),
            Error::InvalidSnapshot => f.write_str("invalid saved-state record (replay state or member state)"),
            Error::Encode => f.write_str("payload could not be serialized"),
            Error::Decode => f.write_str("verified payload could not be deserialized"),
            Error::Rng => f.write_str("random number generator failed"),
            Error::StaleEpoch { held, received } => {
                write!(f, "control message epoch {received} is not above the epoch held ({held})")
            }
            Error::InvalidControl(reason) => write!(f, "control message refused: {reason}"),
        }
    }
}

impl core::error::Error for Error {}

impl core::error::Error for StoreError {}
