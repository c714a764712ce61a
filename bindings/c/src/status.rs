#![forbid(unsafe_code)]
//! Status codes: the C view of [`mqseal::Error`], with stable numbers.

use mqseal::{Error, StoreError};

/// The result of every mqseal C function: `MQSEAL_STATUS_OK` (0) or why it
/// failed. The numbers are stable across releases; new codes may be added.
/// `mqseal_error_code_name` gives the same short names as the Rust core's
/// `Error::code()` (and the WASM binding), `mqseal_error_message` a sentence.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqsealStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullPointer = 1,
    /// An argument is invalid: key text that is not UTF-8, handle storage
    /// that is not aligned to 8 bytes, an unknown suite number, a record
    /// index beyond the count (`mqseal_opener_snapshot`), or a length above
    /// `PTRDIFF_MAX`. (A topic that is not UTF-8 is
    /// `MQSEAL_STATUS_INVALID_TOPIC`.)
    InvalidArgument = 2,
    /// The handle was not initialized, was already deinitialized, or its
    /// last init failed (a failed init always leaves the handle wiped, so
    /// every later call on it gives this status until an init succeeds).
    NotInitialized = 3,
    /// The handle is a copy (`memcpy`, struct assignment) of an initialized
    /// handle, or was moved after init: a handle works only at the address
    /// it was initialized at. A copy never seals or opens; deinitializing it
    /// wipes it (and still returns this status).
    HandleMoved = 4,
    /// Two buffer arguments overlap (`payload` or `topic` with `out` when
    /// sealing, `topic` with `buf` when opening, or a buffer with the
    /// handle): nothing was done.
    BuffersOverlap = 5,

    /// The envelope ends before its header and 16-byte tag are complete.
    Truncated = 10,
    /// The envelope's version is not 1.
    UnsupportedVersion = 11,
    /// The envelope names an unknown suite.
    UnknownSuite = 12,
    /// A header varint is malformed or not canonical.
    BadVarint = 13,
    /// The header has unknown flag bits.
    UnknownFlags = 14,

    /// The envelope did not verify: wrong key, wrong topic, or changed
    /// bytes. Deliberately says nothing more.
    Auth = 20,

    /// The envelope's key id is not in the keyring.
    UnknownKey = 30,
    /// The counter was already accepted from this sender (QoS 1/2
    /// redelivery, retained message seen again, replay): drop the message.
    Duplicate = 31,
    /// The counter is older than the replay window: rejected as a replay.
    Replay = 32,
    /// The timestamp is older than the maximum age.
    Expired = 33,
    /// The timestamp is beyond the allowed clock skew.
    FromFuture = 34,
    /// The policy requires a timestamp and the envelope has none.
    TimestampRequired = 35,
    /// The policy checks timestamps but no current time was given.
    ClockRequired = 36,
    /// The policy does not accept the envelope's suite.
    SuiteNotAllowed = 37,
    /// The opener's sender table is full.
    TooManySenders = 38,
    /// The topic does not match a rewrite rule's prefix.
    TopicNotRewritable = 39,
    /// The topic is not a valid MQTT topic name: empty, not UTF-8, or
    /// holding a wildcard (`+`, `#`) or U+0000 (checked on seal and on open,
    /// before any counter or key is used).
    InvalidTopic = 40,
    /// A plain-topic filter is not a valid MQTT topic filter: empty, not
    /// UTF-8, holding U+0000, `#` other than as the whole last level, or
    /// `+` other than as a whole level (`mqseal_plain_topic_allowed`).
    InvalidFilter = 41,

    /// The topic is longer than 65,535 bytes (the MQTT limit; checked on
    /// seal and on open, by the core's topic-name check).
    TopicTooLong = 50,
    /// The output buffer is too small: `mqseal_seal*` report the size
    /// needed in `*out_len` (and use no counter); the key-text functions
    /// zero `out` (an empty string); `mqseal_opener_snapshot` writes
    /// nothing.
    BufferTooSmall = 51,
    /// The sender has used every counter value.
    CounterExhausted = 52,
    /// The `persist` callback failed to store the new limit (store reason
    /// `write`). From `mqseal_seal*`: nothing was sealed, no counter was
    /// used, and the sealer stays initialized (the next seal calls
    /// `persist` again). From `mqseal_sealer_init_new_sender` (its
    /// `persist(ctx, NULL, 0)`): the handle is not initialized, and later
    /// seals give `MQSEAL_STATUS_NOT_INITIALIZED`. The other counter-store failures have
    /// statuses of their own (`MQSEAL_STATUS_COUNTER_STORE_*`), all with the
    /// code name "counterStore"; `mqseal_error_reason` names the reason.
    CounterStore = 53,
    /// The keyring is full (`mqseal_opener_add_key` beyond
    /// `MQSEAL_OPENER_KEYS` keys).
    KeyringFull = 54,
    /// A key with this id is already in the keyring.
    DuplicateKeyId = 55,
    /// No key with this id is in the keyring.
    KeyNotFound = 56,
    /// The keyring has no primary key (a Rust core code; the C API never
    /// returns it).
    NoPrimaryKey = 57,
    /// The primary key cannot be retired: the C opener's primary is the
    /// key given to `mqseal_opener_init`.
    KeyIsPrimary = 58,
    /// Malformed key text.
    InvalidKey = 59,
    /// X25519 gave a non-contributory shared secret.
    WeakSharedSecret = 60,
    /// A pairwise key between a key pair and itself was requested.
    SelfPairing = 61,
    /// A configuration value is out of range (e.g. replay window 0 or > 256).
    InvalidConfig = 62,
    /// A payload could not be serialized (a Rust core code of the typed
    /// payload API; the C API never returns it).
    Encode = 63,
    /// A verified payload could not be deserialized (a Rust core code of
    /// the typed payload API; the C API never returns it).
    Decode = 64,
    /// The random number generator failed (a Rust core code of key
    /// generation; the C API takes random bytes from the caller and never
    /// returns it).
    Rng = 65,
    /// A replay-state record is not valid: wrong length, no counter
    /// accepted, or a window width out of range.
    InvalidSnapshot = 66,
    /// The payload is longer than the suite can protect.
    PayloadTooLarge = 67,
    /// A verified control message carries an epoch at or below the one the
    /// member holds (key distribution: `mqseal_member_handle`).
    StaleEpoch = 68,
    /// A control message or acknowledgement was refused (wrong topic or
    /// sender, or a body that breaks a rule of the control protocol).
    InvalidControl = 69,

    /// The `load` callback failed (store reason `read`). From
    /// `mqseal_sealer_init*`: the handle is not initialized. From
    /// `mqseal_seal*` (the re-reads before and after a `persist`): nothing
    /// was sealed, no counter was used, and the sealer stays initialized.
    CounterStoreRead = 70,
    /// The `load` callback reported a corrupt record (`MQSEAL_STORE_CORRUPT`,
    /// store reason `corrupt`). From `mqseal_sealer_init*`: the handle is not
    /// initialized. From `mqseal_seal*`: nothing was sealed and the sealer
    /// stays initialized.
    CounterStoreCorrupt = 71,
    /// The store holds no counter (`load` answered `MQSEAL_STORE_EMPTY`) and
    /// the sealer was not initialized for a new sender or from a clock floor
    /// (store reason `missing`): the handle is not initialized.
    CounterStoreMissing = 72,
    /// The store does not hold what this sealer last read or wrote (a second
    /// writer, or a `persist` that lowered, ignored or changed the value),
    /// or `mqseal_sealer_init_new_sender` found a stored counter (store
    /// reason `conflict`). From `mqseal_seal*`: nothing was sealed and the
    /// sealer stays initialized (and refused until the store holds what it
    /// last read or wrote). From `mqseal_sealer_init_new_sender`: the handle
    /// is not initialized.
    CounterStoreConflict = 73,
    /// An error this version of the C binding does not know by name.
    Other = 99,
}

impl From<Error> for MqsealStatus {
    fn from(e: Error) -> Self {
        use MqsealStatus as S;
        match e {
            Error::Truncated => S::Truncated,
            Error::UnsupportedVersion(_) => S::UnsupportedVersion,
            Error::UnknownSuite(_) => S::UnknownSuite,
            Error::BadVarint => S::BadVarint,
            Error::UnknownFlags => S::UnknownFlags,
            Error::Auth => S::Auth,
            Error::UnknownKey(_) => S::UnknownKey,
            Error::Duplicate => S::Duplicate,
            Error::Replay => S::Replay,
            Error::Expired => S::Expired,
            Error::FromFuture => S::FromFuture,
            Error::TimestampRequired => S::TimestampRequired,
            Error::ClockRequired => S::ClockRequired,
            Error::SuiteNotAllowed(_) => S::SuiteNotAllowed,
            Error::TooManySenders => S::TooManySenders,
            Error::TopicNotRewritable => S::TopicNotRewritable,
            Error::TopicTooLong => S::TopicTooLong,
            Error::InvalidTopic => S::InvalidTopic,
            Error::InvalidFilter => S::InvalidFilter,
            Error::BufferTooSmall { .. } => S::BufferTooSmall,
            Error::PayloadTooLarge => S::PayloadTooLarge,
            Error::CounterExhausted => S::CounterExhausted,
            Error::CounterStore(StoreError::Read) => S::CounterStoreRead,
            Error::CounterStore(StoreError::Corrupt) => S::CounterStoreCorrupt,
            Error::CounterStore(StoreError::Missing) => S::CounterStoreMissing,
            Error::CounterStore(StoreError::Conflict) => S::CounterStoreConflict,
            // Write, and the reasons the C callback store never gives
            // (Locked, NotGranted).
            Error::CounterStore(_) => S::CounterStore,
            Error::KeyringFull => S::KeyringFull,
            Error::DuplicateKeyId(_) => S::DuplicateKeyId,
            Error::KeyNotFound(_) => S::KeyNotFound,
            Error::NoPrimaryKey => S::NoPrimaryKey,
            Error::KeyIsPrimary(_) => S::KeyIsPrimary,
            Error::InvalidKey => S::InvalidKey,
            Error::WeakSharedSecret => S::WeakSharedSecret,
            Error::SelfPairing => S::SelfPairing,
            Error::InvalidConfig => S::InvalidConfig,
            Error::InvalidSnapshot => S::InvalidSnapshot,
            Error::Encode => S::Encode,
            Error::Decode => S::Decode,
            Error::Rng => S::Rng,
            Error::StaleEpoch { .. } => S::StaleEpoch,
            Error::InvalidControl(_) => S::InvalidControl,
            _ => S::Other,
        }
    }
}

/// A representative core error for each status that has one, to take its
/// `code()`.
const fn core_error(s: MqsealStatus) -> Option<Error> {
    use MqsealStatus as S;
    Some(match s {
        S::Truncated => Error::Truncated,
        S::UnsupportedVersion => Error::UnsupportedVersion(0),
        S::UnknownSuite => Error::UnknownSuite(0),
        S::BadVarint => Error::BadVarint,
        S::UnknownFlags => Error::UnknownFlags,
        S::Auth => Error::Auth,
        S::UnknownKey => Error::UnknownKey(0),
        S::Duplicate => Error::Duplicate,
        S::Replay => Error::Replay,
        S::Expired => Error::Expired,
        S::FromFuture => Error::FromFuture,
        S::TimestampRequired => Error::TimestampRequired,
        S::ClockRequired => Error::ClockRequired,
        S::SuiteNotAllowed => Error::SuiteNotAllowed(mqseal::Suite::ChaCha20Poly1305),
        S::TooManySenders => Error::TooManySenders,
        S::TopicNotRewritable => Error::TopicNotRewritable,
        S::TopicTooLong => Error::TopicTooLong,
        S::InvalidTopic => Error::InvalidTopic,
        S::InvalidFilter => Error::InvalidFilter,
        S::BufferTooSmall => Error::BufferTooSmall { needed: 0 },
        S::PayloadTooLarge => Error::PayloadTooLarge,
        S::CounterExhausted => Error::CounterExhausted,
        S::CounterStore => Error::CounterStore(StoreError::Write),
        S::CounterStoreRead => Error::CounterStore(StoreError::Read),
        S::CounterStoreCorrupt => Error::CounterStore(StoreError::Corrupt),
        S::CounterStoreMissing => Error::CounterStore(StoreError::Missing),
        S::CounterStoreConflict => Error::CounterStore(StoreError::Conflict),
        S::KeyringFull => Error::KeyringFull,
        S::DuplicateKeyId => Error::DuplicateKeyId(0),
        S::KeyNotFound => Error::KeyNotFound(0),
        S::NoPrimaryKey => Error::NoPrimaryKey,
        S::KeyIsPrimary => Error::KeyIsPrimary(0),
        S::InvalidKey => Error::InvalidKey,
        S::WeakSharedSecret => Error::WeakSharedSecret,
        S::SelfPairing => Error::SelfPairing,
        S::InvalidConfig => Error::InvalidConfig,
        S::InvalidSnapshot => Error::InvalidSnapshot,
        S::Encode => Error::Encode,
        S::Decode => Error::Decode,
        S::Rng => Error::Rng,
        S::StaleEpoch => Error::StaleEpoch { held: 0, received: 0 },
        S::InvalidControl => Error::InvalidControl(mqseal::ControlError::Malformed),
        S::Ok
        | S::NullPointer
        | S::InvalidArgument
        | S::NotInitialized
        | S::HandleMoved
        | S::BuffersOverlap
        | S::Other => return None,
    })
}

impl MqsealStatus {
    /// Every status, for lookups from a C integer.
    pub(crate) const ALL: [MqsealStatus; 49] = {
        use MqsealStatus as S;
        [
            S::Ok,
            S::NullPointer,
            S::InvalidArgument,
            S::NotInitialized,
            S::HandleMoved,
            S::BuffersOverlap,
            S::Truncated,
            S::UnsupportedVersion,
            S::UnknownSuite,
            S::BadVarint,
            S::UnknownFlags,
            S::Auth,
            S::UnknownKey,
            S::Duplicate,
            S::Replay,
            S::Expired,
            S::FromFuture,
            S::TimestampRequired,
            S::ClockRequired,
            S::SuiteNotAllowed,
            S::TooManySenders,
            S::TopicNotRewritable,
            S::InvalidTopic,
            S::InvalidFilter,
            S::TopicTooLong,
            S::BufferTooSmall,
            S::CounterExhausted,
            S::CounterStore,
            S::KeyringFull,
            S::DuplicateKeyId,
            S::KeyNotFound,
            S::NoPrimaryKey,
            S::KeyIsPrimary,
            S::InvalidKey,
            S::WeakSharedSecret,
            S::SelfPairing,
            S::InvalidConfig,
            S::Encode,
            S::Decode,
            S::Rng,
            S::InvalidSnapshot,
            S::PayloadTooLarge,
            S::StaleEpoch,
            S::InvalidControl,
            S::CounterStoreRead,
            S::CounterStoreCorrupt,
            S::CounterStoreMissing,
            S::CounterStoreConflict,
            S::Other,
        ]
    };

    /// The status with this number, if any.
    pub(crate) fn from_code(code: i32) -> Option<MqsealStatus> {
        Self::ALL.iter().copied().find(|s| *s as i32 == code)
    }

    /// The short name as a NUL-terminated string (see [`NAMES`]).
    pub(crate) fn name_c(self) -> &'static [u8; NAME_CAP] {
        let i = Self::ALL.iter().position(|s| *s == self).unwrap_or(Self::ALL.len() - 1);
        &NAMES[i]
    }

    /// The stable short name: the core's `Error::code()` for core errors.
    pub(crate) const fn name(self) -> &'static str {
        if let Some(e) = core_error(self) {
            return e.code();
        }
        match self {
            MqsealStatus::Ok => "ok",
            MqsealStatus::NullPointer => "nullPointer",
            MqsealStatus::InvalidArgument => "invalidArgument",
            MqsealStatus::NotInitialized => "notInitialized",
            MqsealStatus::HandleMoved => "handleMoved",
            MqsealStatus::BuffersOverlap => "buffersOverlap",
            _ => "other",
        }
    }

    /// The counter-store reason ([`StoreError::code`]: "read", "write",
    /// "corrupt", "missing", "conflict") of a counter-store status, as a
    /// NUL-terminated string; "" for every other status.
    pub(crate) const fn reason(self) -> &'static core::ffi::CStr {
        match core_error(self) {
            Some(Error::CounterStore(e)) => match e {
                StoreError::Read => c"read",
                StoreError::Write => c"write",
                StoreError::Corrupt => c"corrupt",
                StoreError::Missing => c"missing",
                StoreError::Conflict => c"conflict",
                StoreError::Locked => c"locked",
                StoreError::NotGranted => c"notGranted",
                StoreError::LeaseLost => c"leaseLost",
                _ => c"",
            },
            _ => c"",
        }
    }

    /// A sentence for people.
    pub(crate) const fn message(self) -> &'static core::ffi::CStr {
        use MqsealStatus as S;
        match self {
            S::Ok => c"success",
            S::NullPointer => c"a required pointer argument was NULL",
            S::InvalidArgument => c"invalid argument (text not UTF-8, misaligned storage, or unknown suite)",
            S::NotInitialized => c"handle is not initialized",
            S::HandleMoved => c"handle is a copy or was moved after init (use a handle only where it was initialized)",
            S::BuffersOverlap => c"buffer arguments overlap",
            S::Truncated => c"envelope is truncated",
            S::UnsupportedVersion => c"not an mqseal envelope (unsealed)",
            S::UnknownSuite => c"unknown suite",
            S::BadVarint => c"malformed or non-canonical varint in header",
            S::UnknownFlags => c"unknown flag bits in header",
            S::Auth => c"authentication failed",
            S::UnknownKey => c"unknown key id",
            S::Duplicate => c"duplicate message (counter already accepted)",
            S::Replay => c"replayed message (counter older than the replay window)",
            S::Expired => c"message timestamp is older than the maximum age",
            S::FromFuture => c"message timestamp is beyond the allowed clock skew",
            S::TimestampRequired => c"policy requires a timestamp",
            S::ClockRequired => c"policy checks timestamps but no current time was given",
            S::SuiteNotAllowed => c"suite is not allowed by policy",
            S::TooManySenders => c"sender table is full",
            S::TopicNotRewritable => c"topic does not match the rewrite rule's prefix",
            S::InvalidTopic => c"not a valid MQTT topic name (empty, not UTF-8, or holding +, # or U+0000)",
            S::InvalidFilter => {
                c"not a valid MQTT topic filter (empty, not UTF-8, holding U+0000, or a + or # that is not a whole level)"
            }
            S::TopicTooLong => c"topic is longer than 65535 bytes",
            S::BufferTooSmall => c"buffer too small",
            S::CounterExhausted => c"message counter exhausted for this sender",
            S::CounterStore => c"counter store: persist failed; nothing was sealed",
            S::CounterStoreRead => c"counter store: load failed",
            S::CounterStoreCorrupt => c"counter store: the stored record is corrupt",
            S::CounterStoreMissing => {
                c"counter store holds no counter (initialize a new sender explicitly, or from a clock floor)"
            }
            S::CounterStoreConflict => {
                c"counter store conflict: it does not hold what this sealer expected (a second writer, a persist that lowered or ignored the value, or a new sender over a stored counter)"
            }
            S::KeyringFull => c"keyring or table is full",
            S::DuplicateKeyId => c"key id is already in the keyring",
            S::KeyNotFound => c"key id is not in the keyring",
            S::NoPrimaryKey => c"keyring has no primary key",
            S::KeyIsPrimary => c"the primary key cannot be retired",
            S::InvalidKey => c"malformed key",
            S::WeakSharedSecret => c"X25519 shared secret is not contributory (low-order public key)",
            S::SelfPairing => c"cannot derive a pairwise key with oneself",
            S::InvalidConfig => c"invalid configuration value",
            S::Encode => c"payload could not be serialized",
            S::Decode => c"verified payload could not be deserialized",
            S::Rng => c"random number generator failed",
            S::InvalidSnapshot => c"invalid replay-state record",
            S::PayloadTooLarge => c"payload is too large for the suite",
            S::StaleEpoch => c"control message epoch is not above the epoch held",
            S::InvalidControl => c"control message refused",
            S::Other => c"unknown error",
        }
    }
}

/// Room for the longest name and its NUL.
pub(crate) const NAME_CAP: usize = 24;

/// Every name, NUL-terminated, built at compile time from
/// [`MqsealStatus::name`] (so from the core's `Error::code()`).
static NAMES: [[u8; NAME_CAP]; MqsealStatus::ALL.len()] = {
    let mut out = [[0u8; NAME_CAP]; MqsealStatus::ALL.len()];
    let mut i = 0;
    while i < MqsealStatus::ALL.len() {
        let name = MqsealStatus::ALL[i].name().as_bytes();
        assert!(name.len() < NAME_CAP, "status name too long");
        let mut j = 0;
        while j < name.len() {
            out[i][j] = name[j];
            j += 1;
        }
        i += 1;
    }
    out
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_core_codes_and_numbers_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in MqsealStatus::ALL {
            assert!(seen.insert(s as i32), "duplicate number {}", s as i32);
            assert_eq!(MqsealStatus::from_code(s as i32), Some(s));
            if let Some(e) = core_error(s) {
                assert_eq!(MqsealStatus::from(e), s);
                assert_eq!(s.name(), e.code());
            }
        }
        assert_eq!(MqsealStatus::Auth.name(), "auth");
        assert_eq!(MqsealStatus::UnknownKey.name(), "unknownKey");
        assert_eq!(MqsealStatus::from_code(1000), None);
        assert_eq!(MqsealStatus::InvalidTopic.name(), "invalidTopic");
        assert_eq!(MqsealStatus::InvalidSnapshot.name(), "invalidSnapshot");
        assert_eq!(MqsealStatus::HandleMoved.name(), "handleMoved");
        for (s, reason) in [
            (MqsealStatus::CounterStore, StoreError::Write),
            (MqsealStatus::CounterStoreRead, StoreError::Read),
            (MqsealStatus::CounterStoreCorrupt, StoreError::Corrupt),
            (MqsealStatus::CounterStoreMissing, StoreError::Missing),
            (MqsealStatus::CounterStoreConflict, StoreError::Conflict),
        ] {
            assert_eq!(s.name(), "counterStore");
            assert_eq!(s.reason().to_str().unwrap(), reason.code());
            assert_eq!(MqsealStatus::from(Error::CounterStore(reason)), s);
        }
        assert_eq!(MqsealStatus::Auth.reason().to_bytes(), b"");
        let c = core::ffi::CStr::from_bytes_until_nul(MqsealStatus::Duplicate.name_c()).unwrap();
        assert_eq!(c.to_str().unwrap(), "duplicate");
    }
}
