//! # mqseal-rumqttc: sealed MQTT payloads over rumqttc
//!
//! A thin adapter that keeps rumqttc's shape: a client and an event loop,
//! async ([`SealedClient`] / [`SealedEventLoop`]) and blocking ([`Client`] /
//! [`Connection`]), for MQTT 3.1.1 (crate root) and MQTT 5 ([`v5`]).
//!
//! * Publishing seals the payload for its topic with the core
//!   [`mqseal::Sealer`]; the broker only sees the envelope.
//! * The event loop opens every incoming message with the core
//!   [`mqseal::OpenerWith`] (by default a [`mqseal::FleetOpener`]) and
//!   yields [`SealedEvent::Verified`] (topic, the authenticated
//!   [`mqseal::Header`], payload, retain, dup) or
//!   [`SealedEvent::Rejected`] with the [`Reject`] reason (the core
//!   [`mqseal::Error`] and its stable [`Reject::code`]). All other events
//!   pass through as [`SealedEvent::Other`].
//! * Plain (unsealed) payloads are rejected on every topic except those
//!   allowlisted with [`Protection::allow_plain_topic`].
//! * [`Stats`] counts what was sealed, accepted and rejected (duplicate,
//!   replayed, forged, unknown key, unsealed, malformed, policy).
//!
//! * [`Member`]: a member of key distribution (`docs/PROTOCOL.md` 14): its
//!   keys and sender id come from the authority's control messages, applied
//!   while the client runs (MQTT 3.1.1 or 5, through [`MemberClient`]).
//!
//! No cryptography happens here: the adapter moves bytes between rumqttc
//! and the core.
//!
//! ```no_run
//! use mqseal::{FileCounterStore, FleetOpener, Key, Keyring, Sealer, Suite};
//! use mqseal_rumqttc::{Protection, SealedClient, SealedEvent};
//! use rumqttc::{MqttOptions, QoS};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let key = Key::from_text(&std::env::var("MQSEAL_KEY")?)?;
//! // The counter store must survive restarts: one file per sender id, created
//! // once for a new sender (FileCounterStore::create, or `mqseal keygen
//! // --sender-id`), locked while this process runs, refused when missing.
//! let store = FileCounterStore::open("sender-42.counter")?;
//! let sealer = Sealer::new(&key, 42, Suite::ChaCha20Poly1305, store)?;
//! let opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key)?);
//!
//! let options = MqttOptions::new("gateway-42", "127.0.0.1", 1883);
//! let (client, mut eventloop) = SealedClient::new(options, 10, Protection::new(sealer, opener));
//! client.subscribe("plant/#", QoS::AtLeastOnce).await?;
//! client.publish("plant/line1/temp", QoS::AtLeastOnce, false, b"21.5").await?;
//!
//! loop {
//!     match eventloop.poll().await? {
//!         SealedEvent::Verified(msg) => println!("{} from {}: {:?}", msg.topic, msg.header.sender_id, msg.payload),
//!         SealedEvent::Rejected(r) => eprintln!("rejected on {}: {}", r.publish.topic, r.reason.code()),
//!         _ => {}
//!     }
//! }
//! # }
//! ```
//!
//! ## Packet size limits
//!
//! rumqttc refuses incoming packets above its limit (10 KiB by default,
//! [`rumqttc::MqttOptions::set_max_packet_size`]) with a connection error:
//! the message is never acknowledged, and with a persistent session the
//! broker redelivers it at every reconnect, forever. Call
//! [`lift_packet_limit`] (MQTT 3.1.1) or [`v5::lift_packet_limit`] on the
//! options to raise rumqttc's limits to the MQTT maximum
//! ([`MQTT_MAX_PACKET_SIZE`]), and set the limit you want with
//! [`Protection::max_packet_size`]: a larger message is then read,
//! acknowledged, rejected once as [`Reject::TooLarge`] (code `"tooLarge"`)
//! and counted in [`Stats::oversized`]. The broker's own limit
//! (Mosquitto's `message_size_limit`) bounds the memory a message can take.
//!
//! ## Connection loss
//!
//! Poll the event loop again after an error: rumqttc reconnects, and keeps
//! the QoS 1/2 messages that were not acknowledged yet (and those still in
//! the request channel) and sends them again after the reconnect. Wait
//! between attempts (rumqttc retries at once); `mqseal pub` backs off from
//! 0.5 s to 10 s and gives up after `--reconnect-timeout`. A copy sent twice
//! carries the same counter, so a receiver rejects the second as
//! [`mqseal::Error::Duplicate`].
//!
//! ## Delivery semantics
//!
//! A QoS 1 message the broker delivers twice (after a reconnect, or when a
//! publisher retransmits) carries the same counter: the second copy is
//! rejected as [`mqseal::Error::Duplicate`] and never handed to the
//! application twice. The same holds for a retained message seen again.
//! With manual acks, acknowledge rejected messages too (`ack` takes either).
#![forbid(unsafe_code)]

mod member;
mod protection;
mod replay_store;
#[cfg(feature = "redis")]
mod sender_lease;
mod shared;
mod v311;
pub mod v5;

pub use member::{Handled, Member, MemberClient, MemberError};
pub use protection::{Pending, Protection, Reject, Stats};
pub use replay_store::{ask_store, LocalReplayStore, ReplayStore, StoreUnavailable, DEFAULT_MAX_HELD_BACK};
#[cfg(feature = "redis")]
pub use replay_store::{ask_store_staged, RedisReplayStore, DEFAULT_PREFIX};
#[cfg(feature = "redis")]
pub use sender_lease::{LeaseError, LeaseOptions, LeasedCounterStore, SenderLease};
pub use v311::{
    Client, Connection, Delivery, PendingMessage, RejectedMessage, SealedClient, SealedEvent, SealedEventLoop,
    VerifiedMessage,
};

impl From<mqseal::Error> for Error {
    fn from(e: mqseal::Error) -> Self {
        Error::Seal(e)
    }
}

/// The largest MQTT packet, in bytes: a remaining length of 268,435,455
/// plus the 5-byte fixed header (MQTT 3.1.1 §2.2.3, 5.0 §2.1.4).
pub const MQTT_MAX_PACKET_SIZE: u32 = 268_435_460;

/// Lifts rumqttc's incoming and outgoing packet limits (10 KiB by default)
/// to the MQTT maximum, [`MQTT_MAX_PACKET_SIZE`]; set the limit to enforce
/// with [`Protection::max_packet_size`] instead (see the crate docs, "Packet
/// size limits").
pub fn lift_packet_limit(options: &mut rumqttc::MqttOptions) {
    let max = MQTT_MAX_PACKET_SIZE as usize;
    options.set_max_packet_size(max, max);
}

/// Re-export of the rumqttc version this crate wraps.
pub use rumqttc;

/// Errors of publishing and configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The core could not seal (counter store failure, counters exhausted,
    /// invalid or too long topic). Nothing was published.
    ///
    /// The message includes the core error's; it is deliberately not also
    /// the [`std::error::Error::source`], so that error reporters that walk
    /// the chain do not print it twice.
    #[error("sealing failed: {0}")]
    Seal(mqseal::Error),
    /// The MQTT 3.1.1 client could not queue the request (event loop gone,
    /// channel full, or invalid topic).
    #[error("mqtt client: {0}")]
    Client(Box<rumqttc::ClientError>),
    /// The MQTT 5 client could not queue the request.
    #[error("mqtt client: {0}")]
    Client5(Box<rumqttc::v5::ClientError>),
    /// The client was built with [`Protection::receive_only`].
    #[error("this client has no sealer (built receive-only)")]
    NoSealer,
    /// `publish_plain` on a topic that is not allowlisted as plain.
    #[error("topic {0:?} is not allowlisted for plain payloads")]
    NotPlainTopic(String),
    /// Not a valid MQTT topic filter (the core's
    /// [`mqseal::Error::InvalidFilter`], code `invalidFilter`).
    #[error("invalid topic filter {0:?}")]
    InvalidFilter(String),
    /// An MQTT 5 publish with an empty topic used a topic alias this client
    /// never published a topic with.
    #[error("topic alias {0} was never set with a topic on this client")]
    UnknownTopicAlias(u16),
}
