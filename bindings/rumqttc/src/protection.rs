//! What the two protocol versions share: the [`Protection`] a client is
//! built with, the sealing half held by clients ([`Outbox`], with the MQTT 5
//! outgoing topic aliases), the opening half held by event loops
//! ([`Inbox`], written once over the [`Version`] that says what differs),
//! the reject reasons and counters.
//!
//! Nothing cryptographic happens here: sealing and opening are the core's
//! [`Sealer`] and [`OpenerWith`]. This module only decides which payloads go
//! through them and counts the outcomes.

use core::sync::atomic::{AtomicU64, Ordering};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use mqseal::{
    BoxedSealer, CounterStore, FleetOpener, Keyring, OpenerWith, PendingOpenVec, PlainTopics, Sealer, WindowQuery,
    WindowVerdict,
};

use crate::shared::Version;
use crate::Error;

/// The security configuration of a sealed client: the core [`Sealer`] that
/// seals what the client publishes, the core opener that verifies what
/// the event loop receives, and the topics on which plain (unsealed)
/// payloads are allowed.
///
/// `KEYS` is the opener's keyring capacity (8 by default) and `T` its
/// sender table: by default a [`mqseal::SenderMap`] (a [`FleetOpener`],
/// up to `mqseal::DEFAULT_MAX_SENDERS` senders, for a service that hears
/// from a fleet); a [`mqseal::Opener`] (fixed table) works as well.
///
/// ```
/// use mqseal::{FleetOpener, Key, Keyring, MemoryCounterStore, Sealer, Suite};
/// use mqseal_rumqttc::Protection;
///
/// let key = Key::from_bytes(1, [7; 32]); // Key::generate(1)? in real code
/// // FileCounterStore in real code: the counter must survive restarts.
/// let sealer = Sealer::new(&key, 42, Suite::ChaCha20Poly1305, MemoryCounterStore::new())?;
/// let opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key)?);
/// let protection = Protection::new(sealer, opener).allow_plain_topic("$SYS/#")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Protection<const KEYS: usize = 8, T: mqseal::SenderTable = mqseal::SenderMap> {
    /// Boxed store, so that clients are not generic over the store type.
    sealer: Option<BoxedSealer>,
    opener: OpenerWith<KEYS, T>,
    plain: PlainTopics<Vec<String>>,
    max_packet_size: Option<usize>,
    shared_windows: bool,
}

impl<const KEYS: usize, T: mqseal::SenderTable> core::fmt::Debug for Protection<KEYS, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Protection")
            .field("sender_id", &self.sealer.as_ref().map(|s| s.sender_id()))
            .field("key_id", &self.sealer.as_ref().map(|s| s.key_id()))
            .field("opener", &self.opener)
            .field("plain_topics", &self.plain.filters())
            .field("max_packet_size", &self.max_packet_size)
            .field("shared_windows", &self.shared_windows)
            .finish()
    }
}

impl Protection {
    /// A client that only publishes: every incoming message on a sealed
    /// topic is rejected (its key is unknown to the empty keyring).
    pub fn publish_only<S: CounterStore + Send + 'static>(sealer: Sealer<S>) -> Self {
        Protection {
            sealer: Some(sealer.boxed()),
            opener: FleetOpener::new(Keyring::new()),
            plain: PlainTopics::default(),
            max_packet_size: None,
            shared_windows: false,
        }
    }
}

impl<const KEYS: usize, T: mqseal::SenderTable> Protection<KEYS, T> {
    /// Seal with `sealer`, open with `opener`. No plain topics.
    pub fn new<S: CounterStore + Send + 'static>(sealer: Sealer<S>, opener: OpenerWith<KEYS, T>) -> Self {
        Protection {
            sealer: Some(sealer.boxed()),
            opener,
            plain: PlainTopics::default(),
            max_packet_size: None,
            shared_windows: false,
        }
    }

    /// A client that only receives: publishing sealed messages fails with
    /// [`Error::NoSealer`].
    #[must_use]
    pub fn receive_only(opener: OpenerWith<KEYS, T>) -> Self {
        Protection { sealer: None, opener, plain: PlainTopics::default(), max_packet_size: None, shared_windows: false }
    }

    /// Allows plain (unsealed) payloads on topics matching `filter` (MQTT
    /// wildcards `+` and `#`; `$SYS/#` matches `$SYS/...`, `#` does not):
    /// the core's [`PlainTopics`] rule. Incoming messages there are handed
    /// out as [`crate::SealedEvent::Plain`] without any check, and
    /// `publish_plain` may publish there. Every other topic is sealed:
    /// plain payloads on it are rejected.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] (the core's `invalidFilter`) when `filter`
    /// is not a valid MQTT filter.
    pub fn allow_plain_topic(mut self, filter: impl Into<String>) -> Result<Self, Error> {
        let filter = filter.into();
        match self.plain.allow(filter.as_str()) {
            Ok(()) => Ok(self),
            Err(_) => Err(Error::InvalidFilter(filter)),
        }
    }

    /// Rejects incoming PUBLISH packets larger than `bytes` (the whole
    /// packet, as MQTT 5's Maximum Packet Size counts it) with
    /// [`Reject::TooLarge`], counted in [`Stats::oversized`]. No limit by
    /// default.
    ///
    /// The limit applies to packets that rumqttc has read, so an oversized
    /// message is rejected once and acknowledged like any other, never
    /// redelivered. rumqttc's own limit (10 KiB by default) works
    /// differently: a larger packet is a connection error, the message is
    /// never acknowledged, and with a persistent session the broker
    /// redelivers it at every reconnect, forever. So lift rumqttc's limit
    /// with [`crate::lift_packet_limit`] (or [`crate::v5::lift_packet_limit`])
    /// and set yours here. The memory bound is then the broker's (Mosquitto:
    /// `message_size_limit`, `max_packet_size`).
    #[must_use]
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.max_packet_size = Some(bytes);
        self
    }

    /// Keeps the replay windows in a shared store instead of the opener:
    /// the event loop verifies each envelope (the core checks the tag and
    /// the timestamp policy) and yields it as `SealedEvent::Pending`, its
    /// payload held back; ask a [`crate::ReplayStore`] (for example
    /// [`crate::RedisReplayStore`], shared by every instance of a
    /// shared-subscription group) with [`crate::ask_store`] and resolve the
    /// message with the verdict. Use manual acks
    /// ([`rumqttc::MqttOptions::set_manual_acks`]) and acknowledge a message
    /// only once it is resolved: while the store is unreachable nothing is
    /// delivered and the broker keeps the QoS 1/2 messages.
    #[must_use]
    pub fn shared_replay_windows(mut self) -> Self {
        self.shared_windows = true;
        self
    }

    pub(crate) fn split<V: Version>(self) -> (Outbox, Inbox<V, KEYS, T>) {
        // The plain topics and the counters are shared by the client, its
        // clones and its event loop.
        let plain = Arc::new(self.plain);
        let counters = Arc::new(Counters::default());
        let outbox = Outbox {
            sealer: Arc::new(Mutex::new(self.sealer)),
            aliases: Arc::default(),
            plain: plain.clone(),
            counters: counters.clone(),
        };
        let inbox = Inbox {
            opener: self.opener,
            plain,
            counters,
            max_packet_size: self.max_packet_size,
            shared_windows: self.shared_windows,
            aliases: V::Aliases::default(),
            unacked: Vec::new(),
        };
        (outbox, inbox)
    }
}

/// The sealing half, held by (clones of) a client: the sealer, and the
/// MQTT 5 topic aliases this client published with (the seal binds the
/// full topic, never an alias).
#[derive(Clone)]
pub(crate) struct Outbox {
    /// `None` inside for a receive-only client; replaced whole by
    /// [`Outbox::set_sealer`] (a member switching keys).
    sealer: Arc<Mutex<Option<BoxedSealer>>>,
    /// MQTT 5 outgoing topic aliases: alias -> the topic last published
    /// with it. Empty for MQTT 3.1.1.
    aliases: Arc<Mutex<HashMap<u16, String>>>,
    plain: Arc<PlainTopics<Vec<String>>>,
    counters: Arc<Counters>,
}

impl Outbox {
    /// Seals `payload` for `topic`, or, when `topic` is empty and an MQTT 5
    /// topic `alias` is given, for the topic this client last published
    /// with that alias. A topic with an alias sets the alias.
    pub(crate) fn seal_aliased(&self, topic: &str, alias: Option<u16>, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let Some(alias) = alias else {
            return self.seal(topic, payload);
        };
        let bound = {
            let mut aliases = self.aliases.lock().unwrap_or_else(PoisonError::into_inner);
            if topic.is_empty() {
                aliases.get(&alias).cloned().ok_or(Error::UnknownTopicAlias(alias))?
            } else {
                aliases.insert(alias, topic.to_owned());
                topic.to_owned()
            }
        };
        self.seal(&bound, payload)
    }

    /// Seals `payload` for `topic` with the core sealer.
    pub(crate) fn seal(&self, topic: &str, payload: &[u8]) -> Result<Vec<u8>, Error> {
        // A panic while the lock was held cannot leave a counter to be
        // reused: the core takes a counter before using it, never after.
        let mut sealer = self.sealer.lock().unwrap_or_else(PoisonError::into_inner);
        let envelope = sealer.as_mut().ok_or(Error::NoSealer)?.seal_to_vec(topic, payload)?;
        self.counters.sealed.fetch_add(1, Ordering::Relaxed);
        Ok(envelope)
    }

    /// Replaces the sealer of this client and its clones (`None`: publishing
    /// fails with [`Error::NoSealer`] from now on). The old sealer, and its
    /// counter store, is dropped.
    pub(crate) fn set_sealer(&self, sealer: Option<BoxedSealer>) {
        *self.sealer.lock().unwrap_or_else(PoisonError::into_inner) = sealer;
    }

    /// Checks that plain publishing is allowed on `topic`.
    pub(crate) fn check_plain(&self, topic: &str) -> Result<(), Error> {
        if self.plain.allows(topic) {
            Ok(())
        } else {
            Err(Error::NotPlainTopic(topic.to_owned()))
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

/// Why a received message was not handed to the application as verified.
///
/// Its `Display` is the core error's for [`Reject::Open`]: a payload that is
/// not an mqseal envelope at all (typically a plain payload published on a
/// sealed topic) reads "not an mqseal envelope (unsealed; ...)", with the
/// core's stable code `"unsupportedVersion"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reject {
    /// The core refused the envelope; [`mqseal::Error::code`] names why
    /// (`"auth"`, `"duplicate"`, `"replay"`, `"unknownKey"`, `"truncated"`, ...).
    #[error("{0}")]
    Open(#[from] mqseal::Error),
    /// The PUBLISH packet is larger than [`Protection::max_packet_size`].
    #[error("message too large: a {size}-byte packet exceeds the maximum packet size of {max} bytes")]
    TooLarge {
        /// The packet's size in bytes.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// An MQTT 5 message used a topic alias that this connection never
    /// received a topic for, so there is no topic to check the seal against.
    #[error("unknown MQTT 5 topic alias {0}")]
    UnknownTopicAlias(u16),
    /// The topic is not UTF-8 (MQTT requires it), so it cannot be bound.
    #[error("topic is not valid UTF-8")]
    TopicNotUtf8,
}

impl Reject {
    /// A short stable name: the core's [`mqseal::Error::code`] for
    /// [`Reject::Open`], `"tooLarge"`, `"unknownTopicAlias"` or
    /// `"topicNotUtf8"` otherwise.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Reject::Open(e) => e.code(),
            Reject::TooLarge { .. } => "tooLarge",
            Reject::UnknownTopicAlias(_) => "unknownTopicAlias",
            Reject::TopicNotUtf8 => "topicNotUtf8",
        }
    }

    /// The core error, if the core refused the envelope.
    #[must_use]
    pub const fn core_error(&self) -> Option<mqseal::Error> {
        match self {
            Reject::Open(e) => Some(*e),
            _ => None,
        }
    }
}

/// Counts of what a client sealed and what its event loop received, read
/// with `stats()` on the client or the event loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages sealed for publishing.
    pub sealed: u64,
    /// Messages verified and handed to the application.
    pub accepted: u64,
    /// Plain messages handed out on allowlisted plain topics.
    pub plain_accepted: u64,
    /// Rejected: counter already accepted (QoS 1/2 redelivery, retained
    /// message seen again, or a replay within the window).
    pub duplicate: u64,
    /// Rejected: counter below the replay window.
    pub replayed: u64,
    /// Rejected: did not authenticate (forged, altered, moved to another
    /// topic, or sealed with another key under the same key id).
    pub forged: u64,
    /// Rejected: key id not in the keyring.
    pub unknown_key: u64,
    /// Rejected: not an mqseal envelope at all (wrong version byte or empty):
    /// typically a plain payload published on a sealed topic.
    pub unsealed: u64,
    /// Rejected: looks like a v1 envelope but is malformed (truncated,
    /// bad varint, unknown flags or suite).
    pub malformed: u64,
    /// Rejected by the receiver's policy: expired, from the future, missing
    /// timestamp, suite not allowed, sender table full.
    pub policy: u64,
    /// Rejected: larger than [`Protection::max_packet_size`].
    pub oversized: u64,
    /// Rejected for another reason (unknown topic alias, non-UTF-8 topic,
    /// a topic that is too long or not a valid topic name).
    pub other: u64,
    /// Verified messages held back at least once because the shared replay
    /// store could not decide ([`Protection::shared_replay_windows`]): not
    /// delivered, not acknowledged, asked again later.
    pub held_back: u64,
    /// Verified messages dropped undelivered because the queue of held-back
    /// messages was full ([`Pending::drop_held_back`], bound
    /// [`crate::DEFAULT_MAX_HELD_BACK`] by default): a QoS 0 message is
    /// lost, a QoS 1/2 one is not acknowledged (the broker redelivers it
    /// after a reconnect).
    pub held_back_dropped: u64,
}

impl Stats {
    /// All rejected messages.
    #[must_use]
    pub const fn rejected(&self) -> u64 {
        self.duplicate
            + self.replayed
            + self.forged
            + self.unknown_key
            + self.unsealed
            + self.malformed
            + self.policy
            + self.oversized
            + self.other
    }
}

/// [`Stats`] as atomics, shared by a client, its clones and its event loop.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sealed: AtomicU64,
    accepted: AtomicU64,
    plain_accepted: AtomicU64,
    duplicate: AtomicU64,
    replayed: AtomicU64,
    forged: AtomicU64,
    unknown_key: AtomicU64,
    unsealed: AtomicU64,
    malformed: AtomicU64,
    policy: AtomicU64,
    oversized: AtomicU64,
    other: AtomicU64,
    held_back: AtomicU64,
    held_back_dropped: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Stats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            sealed: r(&self.sealed),
            accepted: r(&self.accepted),
            plain_accepted: r(&self.plain_accepted),
            duplicate: r(&self.duplicate),
            replayed: r(&self.replayed),
            forged: r(&self.forged),
            unknown_key: r(&self.unknown_key),
            unsealed: r(&self.unsealed),
            malformed: r(&self.malformed),
            policy: r(&self.policy),
            oversized: r(&self.oversized),
            other: r(&self.other),
            held_back: r(&self.held_back),
            held_back_dropped: r(&self.held_back_dropped),
        }
    }

    fn count_reject(&self, reject: &Reject, payload: &[u8]) {
        use mqseal::Error as E;
        let counter = match reject {
            Reject::Open(E::Duplicate) => &self.duplicate,
            Reject::Open(E::Replay) => &self.replayed,
            Reject::Open(E::Auth) => &self.forged,
            Reject::Open(E::UnknownKey(_)) => &self.unknown_key,
            Reject::Open(E::UnsupportedVersion(_)) => &self.unsealed,
            Reject::Open(E::Truncated) if payload.is_empty() => &self.unsealed,
            Reject::Open(e) if e.is_format() => &self.malformed,
            Reject::Open(
                E::Expired
                | E::FromFuture
                | E::TimestampRequired
                | E::ClockRequired
                | E::SuiteNotAllowed(_)
                | E::TooManySenders
                | E::TopicNotRewritable,
            ) => &self.policy,
            Reject::TooLarge { .. } => &self.oversized,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A verified message whose replay decision is pending in a shared store
/// ([`Protection::shared_replay_windows`]): the payload is held back and
/// only [`Pending::resolve`] with the store's verdict hands it out. Not
/// `Clone`: one message, one verdict. `P` is the version's PUBLISH packet
/// ([`crate::PendingMessage`], [`crate::v5::PendingMessage`]).
pub struct Pending<P> {
    publish: P,
    opened: PendingOpenVec,
    counters: Arc<Counters>,
    held: bool,
}

impl<P: core::fmt::Debug> core::fmt::Debug for Pending<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pending").field("query", &self.query()).field("publish", &self.publish).finish_non_exhaustive()
    }
}

impl<P> Pending<P> {
    pub(crate) fn new(publish: P, opened: PendingOpenVec, counters: Arc<Counters>) -> Self {
        Pending { publish, opened, counters, held: false }
    }

    /// What the store must decide: (key id, sender id, counter) and width.
    #[must_use]
    pub fn query(&self) -> WindowQuery {
        self.opened.query()
    }

    /// The packet as received (its payload is the envelope, not plaintext).
    #[must_use]
    pub const fn publish(&self) -> &P {
        &self.publish
    }

    /// Counts the message in [`Stats::held_back`] (once per message).
    pub(crate) fn hold(&mut self) {
        if !self.held {
            self.held = true;
            self.counters.held_back.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops the message undelivered because the caller's queue of
    /// held-back messages is full: fail closed, the payload is zeroed and
    /// never handed out. Counted in [`Stats::held_back_dropped`] (and in
    /// [`Stats::held_back`]). Do not acknowledge it.
    pub fn drop_held_back(mut self) {
        self.hold();
        self.counters.held_back_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies the store's verdict, counting it: the version's verified or
    /// rejected event.
    pub(crate) fn decide<V: Version<Publish = P>>(self, verdict: WindowVerdict) -> V::SealedEvent {
        match self.opened.resolve(verdict) {
            Ok(opened) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                V::verified(self.publish, opened)
            }
            Err(e) => {
                let reject = Reject::Open(e);
                self.counters.count_reject(&reject, b"x");
                V::rejected(reject, self.publish)
            }
        }
    }
}

/// The opening half, held by an event loop: the core opener, the plain
/// topics, the receiving limits, the incoming topic aliases of the current
/// connection (MQTT 5) and the publishes to send again after a reconnect.
pub(crate) struct Inbox<V: Version, const KEYS: usize, T: mqseal::SenderTable> {
    opener: OpenerWith<KEYS, T>,
    plain: Arc<PlainTopics<Vec<String>>>,
    counters: Arc<Counters>,
    max_packet_size: Option<usize>,
    shared_windows: bool,
    aliases: V::Aliases,
    /// When the connection drops, rumqttc moves the unacknowledged
    /// publishes (and queued requests) to its `pending` queue, but throws
    /// them away if the broker then starts a new session: a copy of the
    /// publishes, put back in that case.
    unacked: Vec<V::Request>,
}

impl<V: Version, const KEYS: usize, T: mqseal::SenderTable> Inbox<V, KEYS, T> {
    /// Turns the result of one poll of `eventloop` into a sealed event,
    /// keeping the publishes to send again after a reconnect.
    pub(crate) fn event<E>(&mut self, polled: Result<V::Event, E>, eventloop: &mut V) -> Result<V::SealedEvent, E> {
        match &polled {
            Err(_) => self.unacked = eventloop.queued().iter().filter(|r| V::is_publish(r)).cloned().collect(),
            Ok(event) => {
                if let Some(session_present) = V::connack(event) {
                    let saved = core::mem::take(&mut self.unacked);
                    if !session_present {
                        eventloop.queued().extend(saved);
                    }
                }
            }
        }
        Ok(self.process(polled?))
    }

    /// Decides what to do with one event: an incoming PUBLISH is checked
    /// on its full topic (alias resolved), every other event passes.
    pub(crate) fn process(&mut self, event: V::Event) -> V::SealedEvent {
        if V::connack(&event).is_some() {
            // Aliases live as long as one network connection.
            self.aliases = V::Aliases::default();
        }
        let mut publish = match V::incoming(event) {
            Ok(publish) => publish,
            Err(other) => return V::other(other),
        };
        // The size as received, before an alias is replaced by its topic.
        let size = V::size(&publish);
        if let Err(reason) = V::resolve_alias(&mut self.aliases, &mut publish) {
            return self.rejected(reason, publish);
        }
        let (topic, payload) = match V::topic_and_payload(&publish) {
            Ok(parts) => parts,
            Err(reason) => return self.rejected(reason, publish),
        };
        if let Some(max) = self.max_packet_size.filter(|&max| size > max) {
            return self.rejected(Reject::TooLarge { size, max }, publish);
        }
        if self.plain.allows(topic) {
            self.counters.plain_accepted.fetch_add(1, Ordering::Relaxed);
            return V::plain(publish);
        }
        if self.shared_windows {
            let now = self.opener.now();
            return match self.opener.open_pending_to_vec(topic, payload, now) {
                Ok(opened) => V::pending(Pending::new(publish, opened, self.counters.clone())),
                Err(e) => self.rejected(Reject::Open(e), publish),
            };
        }
        match self.opener.open_to_vec(topic, payload) {
            Ok(opened) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                V::verified(publish, opened)
            }
            Err(e) => self.rejected(Reject::Open(e), publish),
        }
    }

    /// Counts a rejection and makes its event.
    fn rejected(&self, reason: Reject, publish: V::Publish) -> V::SealedEvent {
        self.counters.count_reject(&reason, V::payload(&publish));
        V::rejected(reason, publish)
    }

    pub(crate) fn opener(&self) -> &OpenerWith<KEYS, T> {
        &self.opener
    }

    pub(crate) fn opener_mut(&mut self) -> &mut OpenerWith<KEYS, T> {
        &mut self.opener
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SealedEvent;
    use mqseal::{Key, MemoryCounterStore, Suite};
    use rumqttc::{Event, EventLoop, Incoming, Publish, QoS};

    type TestInbox = Inbox<EventLoop, 8, mqseal::SenderMap>;

    fn parts() -> (Outbox, TestInbox) {
        let key = Key::from_bytes(1, [3; 32]);
        let sealer = Sealer::new(&key, 5, Suite::ChaCha20Poly1305, MemoryCounterStore::new()).unwrap();
        let opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key).unwrap());
        Protection::new(sealer, opener).split()
    }

    fn publish(topic: &str, payload: &[u8]) -> Publish {
        Publish::new(topic, QoS::AtMostOnce, payload.to_vec())
    }

    fn check(inbox: &mut TestInbox, topic: &str, payload: &[u8]) -> SealedEvent {
        inbox.process(Event::Incoming(Incoming::Publish(publish(topic, payload))))
    }

    #[test]
    fn a_plain_payload_on_a_sealed_topic_reads_as_unsealed_with_a_stable_code() {
        let (_, mut inbox) = parts();
        let SealedEvent::Rejected(r) = check(&mut inbox, "a/b", b"valve=open") else {
            panic!("plain payload accepted")
        };
        let r = r.reason;
        assert_eq!(r.code(), "unsupportedVersion");
        let text = r.to_string();
        assert!(text.starts_with("not an mqseal envelope (unsealed"), "{text}");
        assert_eq!(inbox.stats().unsealed, 1);
        // Core errors keep the core's text.
        assert_eq!(Reject::Open(mqseal::Error::Auth).to_string(), mqseal::Error::Auth.to_string());
    }

    #[test]
    fn an_oversized_packet_is_rejected_and_counted_before_opening() {
        let key = Key::from_bytes(1, [3; 32]);
        let sealer = Sealer::new(&key, 5, Suite::ChaCha20Poly1305, MemoryCounterStore::new()).unwrap();
        let opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key).unwrap());
        let (outbox, _) = Protection::publish_only(sealer).split::<EventLoop>();
        let envelope = outbox.seal("a/b", b"x").unwrap();
        let size = publish("a/b", &envelope).size();
        let (_, mut small) = Protection::receive_only(opener).max_packet_size(size - 1).split::<EventLoop>();
        let SealedEvent::Rejected(r) = check(&mut small, "a/b", &envelope) else { panic!("oversized accepted") };
        assert_eq!(r.reason, Reject::TooLarge { size, max: size - 1 });
        assert_eq!(r.reason.code(), "tooLarge");
        let text = r.reason.to_string();
        assert!(
            text.contains(&format!("a {size}-byte packet exceeds the maximum packet size of {} bytes", size - 1)),
            "{text}"
        );
        assert_eq!((small.stats().oversized, small.stats().rejected()), (1, 1));
        let opener: FleetOpener = FleetOpener::new(Keyring::with_primary(Key::from_bytes(1, [3; 32])).unwrap());
        let (_, mut exact) = Protection::receive_only(opener).max_packet_size(size).split::<EventLoop>();
        assert!(matches!(check(&mut exact, "a/b", &envelope), SealedEvent::Verified(_)), "at the limit: opened");
    }

    #[test]
    fn invalid_topics_are_refused_before_a_counter_is_used() {
        let (outbox, mut inbox) = parts();
        for topic in ["", "a/+", "a/#", "a\u{0}b"] {
            assert!(
                matches!(outbox.seal(topic, b"x"), Err(Error::Seal(mqseal::Error::InvalidTopic))),
                "{topic:?} sealed"
            );
        }
        // One message, not the core's twice: the chain has no source.
        let err = outbox.seal("", b"x").unwrap_err();
        assert!(core::error::Error::source(&err).is_none());
        assert_eq!(err.to_string(), format!("sealing failed: {}", mqseal::Error::InvalidTopic));
        let envelope = outbox.seal("a/b", b"x").unwrap();
        assert_eq!(outbox.stats().sealed, 1);
        // Received on a filter-like topic: refused by the core, counted as other.
        let SealedEvent::Rejected(r) = check(&mut inbox, "a/#", &envelope) else {
            panic!("opened on a wildcard topic")
        };
        assert_eq!(r.reason.code(), "invalidTopic");
        assert_eq!(inbox.stats().other, 1);
        let SealedEvent::Verified(opened) = check(&mut inbox, "a/b", &envelope) else { panic!("not verified") };
        assert_eq!(opened.header.counter, 0, "no counter was used by the refused topics");
    }

    #[test]
    fn plain_topics_follow_the_core_rule() {
        let key = Key::from_bytes(1, [3; 32]);
        let opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key).unwrap());
        let protection = Protection::receive_only(opener).allow_plain_topic("$SYS/#").unwrap();
        let protection = protection.allow_plain_topic("status/+").unwrap();
        let refused = Protection::receive_only(FleetOpener::new(Keyring::<8>::new())).allow_plain_topic("a/#/b");
        assert!(matches!(refused, Err(Error::InvalidFilter(f)) if f == "a/#/b"));
        let (outbox, mut inbox) = protection.split::<EventLoop>();
        for topic in ["$SYS/broker/uptime", "status/dev1"] {
            assert!(matches!(check(&mut inbox, topic, b"up"), SealedEvent::Plain(_)), "{topic}");
            assert!(outbox.check_plain(topic).is_ok(), "{topic}");
        }
        for topic in ["status/dev1/cmd", "plant/cmd"] {
            assert!(matches!(check(&mut inbox, topic, b"up"), SealedEvent::Rejected(_)), "{topic}");
            assert!(matches!(outbox.check_plain(topic), Err(Error::NotPlainTopic(_))), "{topic}");
        }
        assert_eq!(inbox.stats().plain_accepted, 2);
    }
}
