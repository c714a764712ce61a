//! # mqseal: end-to-end sealed MQTT payloads
//!
//! mqseal seals the payload of an MQTT message so that it stays secret and
//! authentic even when the broker, a bridge or the network is not trusted.
//! The broker only ever sees an envelope: a short authenticated header, the
//! encrypted (or, in integrity-only mode, readable) body, and a 16-byte tag.
//! The MQTT topic is bound into the tag, so a message moved to another
//! topic fails to open.
//!
//! This crate is the sans-IO core: bytes in, bytes out. It does no network
//! I/O and reads no clock unless you give it one. Adapters (`mqseal-rumqttc`
//! and others) move the bytes.
//!
//! ```text
//!  publisher                      broker / bridges                  subscriber
//!  payload ─▶ Sealer::seal_* ─▶ envelope ─▶ (untrusted) ─▶ envelope ─▶ Opener::open_* ─▶ payload
//!               │  counter store                               │  keyring, replay windows,
//!               │  (survives reboots)                          │  topic binding, freshness
//! ```
//!
//! ## Suites
//!
//! * [`Suite::ChaCha20Poly1305`]: confidential and authentic (RFC 8439).
//! * [`Suite::HmacSha256`]: authentic only, payload stays readable (for
//!   rules engines that must read telemetry, or commands that are not secret).
//!
//! Both carry the same header (version, suite, key id, sender id, counter,
//! optional timestamp) and bind the same topic. The typical overhead is 23
//! bytes. `docs/PROTOCOL.md` in the repository is the byte-level spec.
//!
//! ## Group keys
//!
//! ```
//! use mqseal::{Key, Keyring, MemoryCounterStore, Opener, Sealer, Suite};
//!
//! let key = Key::from_bytes(1, [7; 32]); // Key::generate(1)? in real code
//! // A sender: sender id 42, counters in memory (tests only: use
//! // FileCounterStore or your own CounterStore on a real device).
//! let mut sealer = Sealer::new(&key, 42, Suite::ChaCha20Poly1305, MemoryCounterStore::new())?;
//! let envelope = sealer.seal_to_vec("factory/line1/temp", b"21.5")?;
//!
//! let mut opener: Opener = Opener::new(Keyring::with_primary(key)?);
//! let msg = opener.open_to_vec("factory/line1/temp", &envelope)?;
//! assert_eq!(msg.payload, b"21.5");
//! assert_eq!(msg.header.sender_id, 42);
//!
//! // The same envelope again is a duplicate; on another topic it fails.
//! assert_eq!(opener.open_to_vec("factory/line1/temp", &envelope), Err(mqseal::Error::Duplicate));
//! assert_eq!(opener.open_to_vec("factory/line2/temp", &envelope), Err(mqseal::Error::Auth));
//! # Ok::<(), mqseal::Error>(())
//! ```
//!
//! ## Integrity only
//!
//! ```
//! use mqseal::{Key, Keyring, MemoryCounterStore, Opener, Sealer, Suite};
//!
//! let key = Key::from_bytes(1, [7; 32]);
//! let mut sealer = Sealer::new(&key, 1, Suite::HmacSha256, MemoryCounterStore::new())?;
//! let envelope = sealer.seal_to_vec("cmd/valve", b"open")?;
//! assert!(envelope.windows(4).any(|w| w == b"open")); // readable on the wire
//!
//! let mut opener: Opener = Opener::new(Keyring::with_primary(key)?);
//! assert_eq!(opener.open_to_vec("cmd/valve", &envelope)?.payload, b"open");
//! # Ok::<(), mqseal::Error>(())
//! ```
//!
//! ## Pairwise keys (X25519)
//!
//! ```
//! use mqseal::{Keyring, MemoryCounterStore, Opener, Sealer, StaticKeyPair, Suite};
//!
//! // Each side has a static key pair (StaticKeyPair::generate()? in real
//! // code) and knows the other's public key.
//! let device = StaticKeyPair::from_secret_bytes([1; 32]);
//! let server = StaticKeyPair::from_secret_bytes([2; 32]);
//!
//! let on_device = device.pairwise(&server.public(), 100)?;
//! let on_server = server.pairwise(&device.public(), 100)?;
//!
//! let mut sealer = Sealer::new(&on_device.send, 9, Suite::ChaCha20Poly1305, MemoryCounterStore::new())?;
//! let envelope = sealer.seal_to_vec("dev/9/up", b"hello")?;
//!
//! let mut opener: Opener = Opener::new(Keyring::with_primary(on_server.recv)?);
//! assert_eq!(opener.open_to_vec("dev/9/up", &envelope)?.payload, b"hello");
//!
//! // Reflected back to the device, it does not open: directions differ.
//! let mut device_opener: Opener = Opener::new(Keyring::with_primary(on_device.recv)?);
//! assert!(device_opener.open_to_vec("dev/9/up", &envelope).is_err());
//! # Ok::<(), mqseal::Error>(())
//! ```
//!
//! ## No allocator
//!
//! Every operation has an in-place form over caller buffers:
//! [`Sealer::seal_into`], [`Sealer::seal_in_place`],
//! [`Opener::open_in_place`], and typed payloads with
//! [`Sealer::seal_value_into`] / [`Opener::open_value`]. Buffers need
//! [`MAX_OVERHEAD`] bytes beyond the payload.
//!
//! ```
//! use mqseal::{Key, Keyring, MemoryCounterStore, Opener, Sealer, Suite, MAX_OVERHEAD};
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Reading { millidegrees: i32, ok: bool }
//!
//! let key = Key::from_bytes(3, [9; 32]);
//! let mut sealer = Sealer::new(&key, 5, Suite::ChaCha20Poly1305, MemoryCounterStore::new())?;
//! let mut buf = [0u8; 64 + MAX_OVERHEAD];
//! let n = sealer.seal_value_into("t", &Reading { millidegrees: 21500, ok: true }, &mut buf)?;
//!
//! let mut opener: Opener<1, 4> = Opener::new(Keyring::with_primary(key)?);
//! let (header, reading): (_, Reading) = opener.open_value("t", &mut buf[..n])?;
//! assert_eq!(reading, Reading { millidegrees: 21500, ok: true });
//! assert_eq!(header.counter, 0);
//! # Ok::<(), mqseal::Error>(())
//! ```
//!
//! ## Features
//!
//! * `std` (default): [`FileCounterStore`] and [`ReplayStateFile`] (Unix
//!   and Windows), key generation from the OS generator, [`system_clock`],
//!   `std::error::Error`. Implies `alloc`.
//! * `alloc`: `Vec`-returning conveniences (`*_to_vec`) and [`KeyFile`].
//! * `fast-backend` (default, implies `std`): ChaCha20-Poly1305 and
//!   HMAC-SHA256 through `ring`'s assembly on x86_64, aarch64 and 32-bit
//!   ARM with an OS (a C compiler for the target is needed). Other targets,
//!   builds without it (`default-features = false, features = ["std"]`) and
//!   builds with `--cfg mqseal_backend="rustcrypto"` use the pure-Rust
//!   RustCrypto crates. The wire format and the guarantees are the same;
//!   with ring, [`Opener::open_in_place`] copies bodies over 2 KiB to the
//!   heap once (to restore the envelope if the tag fails).
//! * With neither `std` nor `alloc`, the crate is `no_std` and needs no
//!   allocator.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

#[cfg(feature = "alloc")]
mod batch_log;
mod config;
mod control;
mod counter;
#[cfg(all(feature = "std", any(unix, windows)))]
mod durable;
mod envelope;
mod error;
mod keyring;
mod keys;
mod member;
#[cfg(all(feature = "std", any(unix, windows)))]
mod member_file;
mod opener;
mod plain_topics;
mod replay;
#[cfg(all(feature = "std", any(unix, windows)))]
mod replay_file;
mod schedule;
mod sealer;
#[cfg(feature = "alloc")]
mod sender_lease;
mod senders;
#[cfg(feature = "alloc")]
mod shared_window;
mod suites;
mod topic;
mod varint;

#[doc(hidden)]
pub mod fuzzing;

#[cfg(all(feature = "std", any(unix, windows)))]
pub use batch_log::BatchLog;
#[cfg(feature = "alloc")]
pub use batch_log::{
    batch_script_args, encode_batch_frame, frame_checksum_ok, parse_frame_header, parse_pending_batch, pending_key,
    recovery_plan, FrameHeader, PendingRecord, RecoveryPlan, BATCH_FRAME_MAGIC, BATCH_SCRIPT, MAX_FRAME_HEADER,
};
pub use config::{
    ConfigField, Eviction, OpenerConfig, SuiteSet, DEFAULT_KEYS, DEFAULT_MAX_SENDERS, DEFAULT_MAX_SKEW, DEFAULT_SENDERS,
};
pub use control::{
    control_counter, control_sealer, open_ack, open_own_control, seal_control, Ack, AckStatus, ControlError,
    ControlState, ControlTopic, ControlTopics, Group, GroupKey, List, Name, OwnControl, ReceivedAck,
    AUTHORITY_SENDER_ID, CONTROL_FORMAT, CONTROL_KEY_ID, DEFAULT_ACK_PREFIX, DEFAULT_CONTROL_PREFIX,
    MAX_ACK_ENVELOPE_LEN, MAX_ACK_LEN, MAX_CONTROL_ENVELOPE_LEN, MAX_CONTROL_LEN, MAX_CONTROL_TOPIC_LEN, MAX_GROUPS,
    MAX_KEYS_PER_GROUP, MAX_NAME_LEN, MAX_PREFIX_LEN, MEMBER_SENDER_ID,
};
#[cfg(all(feature = "std", any(unix, windows)))]
pub use counter::FileCounterStore;
pub use counter::{
    check_swap, clock_floor, decode_counter_file, encode_counter_file, CounterGrant, CounterStore,
    ExternalCounterStore, MemoryCounterStore, Reservation, CLOCK_FLOOR_PER_MILLI, COUNTER_FILE_MAX_LEN,
    DEFAULT_RESERVATION_BLOCK,
};
#[cfg(all(feature = "std", any(unix, windows)))]
pub use durable::StateFileError;
pub use envelope::{
    BoundTopic, Envelope, Header, PrefixRewrite, AAD_DOMAIN, MAX_HEADER_LEN, MAX_OVERHEAD, MAX_TOPIC_LEN, TAG_LEN,
    TOPIC_INLINE_MAX, VERSION,
};
pub use error::{Error, StoreError};
pub use keyring::Keyring;
pub use keys::{Key, KeyText, PairwiseKeys, PublicKey, StaticKeyPair, KEY_LEN};
#[cfg(feature = "alloc")]
pub use keys::{KeyFile, Peer};
#[cfg(feature = "alloc")]
pub use member::Staged;
pub use member::{Applied, MemberAgent, Sealing, Tick, MAX_MEMBER_STATE_LEN, MEMBER_STATE_MAGIC};
#[cfg(all(feature = "std", any(unix, windows)))]
pub use member_file::{AppliedAck, MemberFileError, MemberFileStore};
#[cfg(feature = "alloc")]
pub use opener::FleetOpener;
#[cfg(feature = "alloc")]
pub use opener::OpenedVec;
pub use opener::{Opened, Opener, OpenerWith};
pub use plain_topics::{plain_topic_allowed, PlainTopics};
pub use replay::{
    Gap, RecordBytes, Records, ReplayWindow, SenderSnapshot, DEFAULT_GAPS, DEFAULT_WINDOW, MAX_GAPS, MAX_WINDOW,
    WINDOW_WORDS,
};
#[cfg(all(feature = "std", any(unix, windows)))]
pub use replay_file::{ReplayStateFile, RestoreReport};
#[cfg(feature = "alloc")]
pub use sealer::BoxedSealer;
pub use sealer::Sealer;
#[cfg(feature = "alloc")]
pub use sender_lease::{
    format_limit, lease_counter_key, lease_key, parse_acquired, parse_limit, GrantVerdict, LeaseConfig, LeaseToken,
    DEFAULT_LEASE_TTL_MS, LEASE_SCRIPT, MAX_LEASE_IDS, MAX_LEASE_TTL_MS, MIN_LEASE_TTL_MS,
};
#[cfg(feature = "alloc")]
pub use senders::SenderMap;
pub use senders::{FixedSenders, SenderTable};
#[cfg(feature = "alloc")]
pub use shared_window::{
    check_and_update_local, PendingOpen, PendingOpenVec, WindowQuery, WindowVerdict, WINDOW_SCRIPT,
};
pub use suites::Suite;
pub use topic::{check_topic_filter, check_topic_name, topic_matches_filter};

/// Seconds since the Unix epoch from the system clock (0 if the clock is
/// before 1970). Pass it to [`Sealer::with_timestamps`] and
/// [`Opener::with_clock`].
#[cfg(feature = "std")]
#[must_use]
pub fn system_clock() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch from the system clock (0 if the clock
/// is before 1970), for [`Sealer::new_with_clock_floor`].
#[cfg(feature = "std")]
#[must_use]
pub fn system_clock_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
