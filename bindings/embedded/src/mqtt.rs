//! Glue for the [`minimq`] MQTT 5 client: seal on publish, open on
//! receive, with no allocator and no extra buffers on the way out.
//!
//! Why minimq: it is a `no_std`, no-alloc client that works over
//! caller-owned packet buffers (no buffer provider, no heap), runs over any
//! `embedded-io-async` transport (embassy-net, smoltcp, a modem, or tokio on
//! a host for testing), keeps QoS 1/2 state and keepalive inside the
//! client, and is the client of shipped instrument firmware (QUARTIQ's
//! Stabilizer and Booster). Its [`ToPayload`] trait lets the sealer write
//! the envelope straight into minimq's transmit buffer.
//!
//! A QoS 1/2 message that minimq retransmits carries the same sealed bytes
//! (same counter): the receiving [`mqseal::Opener`] reports the copy as
//! [`mqseal::Error::Duplicate`] instead of delivering it twice.
//!
//! ```no_run
//! # async fn demo<IO: minimq::Io>(conn: &mut minimq::Connection<'_, '_, IO>) -> Result<(), mqseal_embedded::mqtt::MqttError<IO::Error>> {
//! use mqseal::{Key, Keyring, MemoryCounterStore, Opener, OpenerConfig, PlainTopics, Sealer, Suite};
//! use mqseal_embedded::mqtt::{publish_sealed, recv_opened, Inbound};
//!
//! let key = Key::from_bytes(1, [7; 32]);
//! // On a device: a FlashCounterStore (provisioned once with
//! // `FlashCounterStore::create`) instead of the memory store.
//! let mut sealer = Sealer::new(&key, 42, Suite::ChaCha20Poly1305, MemoryCounterStore::new())?;
//! let mut config = OpenerConfig::default();
//! config.window = 64; // the receiver's policy: one validated struct
//! let mut opener: Opener<2, 4> = Opener::with_config(Keyring::with_primary(key)?, &config)?;
//! let mut rx = [0u8; 512]; // in firmware: a static buffer (e.g. from static_cell)
//! // Sealed unless allowlisted: broker status may arrive plain.
//! let plain = PlainTopics::new(["$SYS/broker/uptime"])?;
//!
//! publish_sealed(conn, &mut sealer, "dev/42/up", b"21.5", minimq::QoS::AtLeastOnce).await?;
//! let msg = recv_opened(conn, &mut opener, &plain, &mut rx).await?;
//! match msg.opened {
//!     Ok(Inbound::Sealed(opened)) => { /* act on opened.payload, from opened.header.sender_id */ }
//!     Ok(Inbound::Plain(status)) => { /* unverified: never act on it as a command */ }
//!     Err(e) => { /* drop it: e.code() says why */ }
//! }
//! # Ok(()) }
//! ```

use minimq::{Connection, InboundPublish, Io, Op, PubError, Publication, QoS, ToPayload};
use mqseal::{CounterStore, Opened, Opener, PlainTopics, Sealer};

/// Why a sealed publish or a receive failed.
#[derive(Debug, PartialEq)]
pub enum MqttError<E> {
    /// The MQTT session or its transport failed.
    Mqtt(minimq::Error<E>),
    /// Sealing failed (counter store, exhausted counter, buffer too small
    /// for minimq's transmit buffer, topic too long or not a topic name).
    /// Nothing was sent and no counter was used.
    Seal(mqseal::Error),
}

#[cfg(feature = "defmt")]
impl<E: defmt::Format> defmt::Format for MqttError<E> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            MqttError::Mqtt(e) => defmt::write!(f, "mqtt: {}", e),
            MqttError::Seal(e) => defmt::write!(f, "seal: {}", crate::ErrorCode(*e)),
        }
    }
}

impl<E> From<minimq::Error<E>> for MqttError<E> {
    fn from(e: minimq::Error<E>) -> Self {
        MqttError::Mqtt(e)
    }
}

impl<E> From<mqseal::Error> for MqttError<E> {
    fn from(e: mqseal::Error) -> Self {
        MqttError::Seal(e)
    }
}

impl<E> From<PubError<mqseal::Error, E>> for MqttError<E> {
    fn from(e: PubError<mqseal::Error, E>) -> Self {
        match e {
            PubError::Session(e) => MqttError::Mqtt(e),
            PubError::Payload(e) => MqttError::Seal(e),
        }
    }
}

impl<E: core::fmt::Debug> core::fmt::Display for MqttError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MqttError::Mqtt(e) => write!(f, "mqtt: {e}"),
            MqttError::Seal(e) => write!(f, "seal: {e}"),
        }
    }
}

/// A payload that is sealed when minimq serializes it: the envelope is
/// written directly into minimq's transmit buffer.
pub struct SealedPayload<'a, S: CounterStore> {
    sealer: &'a mut Sealer<S>,
    topic: &'a str,
    payload: &'a [u8],
}

impl<S: CounterStore> ToPayload for SealedPayload<'_, S> {
    type Error = mqseal::Error;

    fn serialize(self, buffer: &mut [u8]) -> Result<usize, mqseal::Error> {
        // Buffer size is checked before a counter is taken.
        self.sealer.seal_into(self.topic, self.payload, buffer)
    }
}

/// A minimq [`Publication`] whose payload is `payload` sealed for `topic`.
/// Set QoS, retain and properties on it as usual.
pub fn sealed_publication<'a, S: CounterStore>(
    sealer: &'a mut Sealer<S>,
    topic: &'a str,
    payload: &'a [u8],
) -> Publication<'a, SealedPayload<'a, S>> {
    Publication::new(topic, SealedPayload { sealer, topic, payload })
}

/// Seals `payload` for `topic` and publishes it with `qos`.
///
/// # Errors
/// [`MqttError::Seal`] when sealing failed (nothing was sent),
/// [`MqttError::Mqtt`] when minimq failed.
pub async fn publish_sealed<IO: Io, S: CounterStore>(
    conn: &mut Connection<'_, '_, IO>,
    sealer: &mut Sealer<S>,
    topic: &str,
    payload: &[u8],
    qos: QoS,
) -> Result<Option<Op>, MqttError<IO::Error>> {
    Ok(conn.publish(sealed_publication(sealer, topic, payload).qos(qos)).await?)
}

/// Copies an inbound message into `buf` and opens it there. On success the
/// payload borrows `buf`; on error nothing unverified is handed out.
///
/// # Errors
/// [`mqseal::Error::BufferTooSmall`] when the envelope does not fit `buf`,
/// and every error of [`Opener::open_in_place`].
pub fn open_inbound<'b, const KEYS: usize, const SENDERS: usize>(
    opener: &mut Opener<KEYS, SENDERS>,
    msg: &InboundPublish<'_>,
    buf: &'b mut [u8],
) -> Result<Opened<'b>, mqseal::Error> {
    let env = msg.payload();
    let dst = buf.get_mut(..env.len()).ok_or(mqseal::Error::BufferTooSmall { needed: env.len() })?;
    dst.copy_from_slice(env);
    opener.open_in_place(msg.topic(), dst)
}

/// What an inbound message is, by the core's plain-topic rule
/// ([`PlainTopics`]): every topic is sealed unless allowlisted.
#[derive(Debug)]
pub enum Inbound<'c, 'b> {
    /// Verified by the opener (payload in the caller's buffer).
    Sealed(Opened<'b>),
    /// On an allowlisted plain topic: the payload as received, unverified
    /// (borrowed from minimq's receive buffer).
    Plain(&'c [u8]),
}

/// A message received by [`recv_opened`].
#[derive(Debug)]
pub struct Received<'c, 'b> {
    /// The topic it arrived on (borrowed from minimq's receive buffer).
    pub topic: &'c str,
    /// Whether the broker delivered it as a retained message.
    pub retained: bool,
    /// Its QoS.
    pub qos: QoS,
    /// The verified message or, on an allowlisted plain topic, the plain
    /// payload; or why a message on a sealed topic was rejected (forged,
    /// replayed, duplicate, expired, a plain payload...). Drop rejected
    /// messages.
    pub opened: Result<Inbound<'c, 'b>, mqseal::Error>,
}

/// Waits for the next inbound PUBLISH. On a topic that `plain` allows it is
/// handed out as [`Inbound::Plain`]; on every other topic it is opened into
/// `buf`. Pass [`PlainTopics::none`] when every topic is sealed.
///
/// # Errors
/// [`MqttError::Mqtt`] when the session fails; a message that does not
/// open is not an error of the session and comes back in
/// [`Received::opened`].
pub async fn recv_opened<'c, 'b, IO: Io, L: AsRef<[F]>, F: AsRef<str>, const KEYS: usize, const SENDERS: usize>(
    conn: &'c mut Connection<'_, '_, IO>,
    opener: &mut Opener<KEYS, SENDERS>,
    plain: &PlainTopics<L>,
    buf: &'b mut [u8],
) -> Result<Received<'c, 'b>, MqttError<IO::Error>> {
    let msg = conn.recv().await?;
    let opened = if plain.allows(msg.topic()) {
        Ok(Inbound::Plain(msg.payload()))
    } else {
        open_inbound(opener, &msg, buf).map(Inbound::Sealed)
    };
    Ok(Received { topic: msg.topic(), retained: msg.retained(), qos: msg.qos(), opened })
}
