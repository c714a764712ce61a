//! MQTT 3.1.1: sealed wrappers of [`rumqttc::AsyncClient`] /
//! [`rumqttc::EventLoop`] and of the blocking [`rumqttc::Client`] /
//! [`rumqttc::Connection`]. Re-exported at the crate root.

use core::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Incoming, MqttOptions, Publish, QoS, SubscribeFilter};

use crate::protection::{Inbox, Outbox, Verdict};
use crate::{Error, Protection, Reject, Stats};

/// A message whose envelope the core verified, with its authenticated
/// header and the MQTT delivery flags.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedMessage {
    /// The topic it arrived on (and was sealed for).
    pub topic: String,
    /// The authenticated sender id.
    pub sender_id: u32,
    /// Id of the key that sealed it.
    pub key_id: u32,
    /// The sender's message counter.
    pub counter: u64,
    /// The authenticated timestamp (seconds since the Unix epoch), if the
    /// sender included one.
    pub timestamp: Option<u64>,
    /// The suite that protected it.
    pub suite: mqseal::Suite,
    /// The verified (decrypted) payload.
    pub payload: Bytes,
    /// QoS it was delivered with.
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// The MQTT duplicate-delivery flag.
    pub dup: bool,
    /// Packet id (for manual acknowledgement).
    pub pkid: u16,
}

/// A message that was not handed out as verified, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedMessage {
    /// Why it was rejected; [`Reject::code`] gives a stable name.
    pub reason: Reject,
    /// The message as received (its payload is the untrusted envelope or
    /// plain bytes, never verified plaintext).
    pub publish: Publish,
}

/// What [`SealedEventLoop::poll`] and [`Connection`] yield.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealedEvent {
    /// A verified message on a sealed topic.
    Verified(VerifiedMessage),
    /// A message on an allowlisted plain topic, handed out unchecked.
    Plain(Publish),
    /// A message that was rejected, with the reason.
    Rejected(RejectedMessage),
    /// Every other rumqttc event (connection acks, outgoing packets, pings,
    /// subscription acks, ...), unchanged.
    Other(Event),
}

/// Something that can be acknowledged with manual acks
/// ([`MqttOptions::set_manual_acks`]): verified and rejected messages alike
/// must be acknowledged, or the broker redelivers them.
pub trait Delivery {
    /// The QoS and packet id to acknowledge.
    fn qos_and_pkid(&self) -> (QoS, u16);
}

impl Delivery for VerifiedMessage {
    fn qos_and_pkid(&self) -> (QoS, u16) {
        (self.qos, self.pkid)
    }
}

impl Delivery for RejectedMessage {
    fn qos_and_pkid(&self) -> (QoS, u16) {
        (self.publish.qos, self.publish.pkid)
    }
}

impl Delivery for Publish {
    fn qos_and_pkid(&self) -> (QoS, u16) {
        (self.qos, self.pkid)
    }
}

fn ack_publish(d: &impl Delivery) -> Publish {
    let (qos, pkid) = d.qos_and_pkid();
    let mut p = Publish::new("", qos, Vec::new());
    p.pkid = pkid;
    p
}

fn client_err(e: rumqttc::ClientError) -> Error {
    Error::Client(Box::new(e))
}

/// Turns one rumqttc event into a sealed event.
fn process<const K: usize, const S: usize>(inbox: &mut Inbox<K, S>, event: Event) -> SealedEvent {
    let Event::Incoming(Incoming::Publish(publish)) = event else {
        return SealedEvent::Other(event);
    };
    match inbox.check(&publish.topic, &publish.payload) {
        Verdict::Verified(opened) => SealedEvent::Verified(VerifiedMessage {
            topic: publish.topic,
            sender_id: opened.header.sender_id,
            key_id: opened.header.key_id,
            counter: opened.header.counter,
            timestamp: opened.header.timestamp,
            suite: opened.header.suite,
            payload: Bytes::from(opened.payload),
            qos: publish.qos,
            retain: publish.retain,
            dup: publish.dup,
            pkid: publish.pkid,
        }),
        Verdict::Plain => SealedEvent::Plain(publish),
        Verdict::Rejected(reason) => SealedEvent::Rejected(RejectedMessage { reason, publish }),
    }
}

/// An async MQTT 3.1.1 client that seals what it publishes. Cheap to clone;
/// clones share the sealer (and its counter).
#[derive(Clone)]
pub struct SealedClient {
    inner: AsyncClient,
    outbox: Outbox,
}

impl core::fmt::Debug for SealedClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SealedClient").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl SealedClient {
    /// Like [`AsyncClient::new`], with `protection` for the payloads.
    pub fn new<const K: usize, const S: usize>(
        options: MqttOptions,
        cap: usize,
        protection: Protection<K, S>,
    ) -> (SealedClient, SealedEventLoop<K, S>) {
        let (client, eventloop) = AsyncClient::new(options, cap);
        SealedClient::from_parts(client, eventloop, protection)
    }

    /// Wraps an existing client and its event loop (for example after
    /// setting [`EventLoop::set_network_options`]).
    pub fn from_parts<const K: usize, const S: usize>(
        client: AsyncClient,
        eventloop: EventLoop,
        protection: Protection<K, S>,
    ) -> (SealedClient, SealedEventLoop<K, S>) {
        let (outbox, inbox) = protection.split();
        (SealedClient { inner: client, outbox }, SealedEventLoop { eventloop, inbox })
    }

    /// Seals `payload` for `topic` and publishes the envelope.
    ///
    /// # Errors
    /// [`Error::Seal`] from the core (counter store failure, counter
    /// exhausted, topic too long), [`Error::NoSealer`] for a receive-only
    /// client, [`Error::Client`] when the event loop is gone or the topic
    /// is invalid.
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let topic = topic.into();
        let envelope = self.outbox.seal(&topic, payload.as_ref())?;
        self.inner.publish(topic, qos, retain, envelope).await.map_err(client_err)
    }

    /// [`SealedClient::publish`] without waiting for room in the request
    /// channel.
    ///
    /// # Errors
    /// As [`SealedClient::publish`], and [`Error::Client`] when the channel
    /// is full (the counter used for the envelope is then skipped).
    pub fn try_publish(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let topic = topic.into();
        let envelope = self.outbox.seal(&topic, payload.as_ref())?;
        self.inner.try_publish(topic, qos, retain, envelope).map_err(client_err)
    }

    /// Publishes `payload` unsealed, on a topic allowlisted with
    /// [`Protection::allow_plain_topic`].
    ///
    /// # Errors
    /// [`Error::NotPlainTopic`] for any other topic; [`Error::Client`].
    pub async fn publish_plain(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        let topic = topic.into();
        self.outbox.check_plain(&topic)?;
        self.inner.publish(topic, qos, retain, payload).await.map_err(client_err)
    }

    /// Acknowledges a message when manual acks are on.
    ///
    /// # Errors
    /// [`Error::Client`] when the event loop is gone.
    pub async fn ack(&self, delivery: &impl Delivery) -> Result<(), Error> {
        self.inner.ack(&ack_publish(delivery)).await.map_err(client_err)
    }

    /// Subscribes to `filter` (as [`AsyncClient::subscribe`]).
    ///
    /// # Errors
    /// [`Error::Client`].
    pub async fn subscribe(&self, filter: impl Into<String>, qos: QoS) -> Result<(), Error> {
        self.inner.subscribe(filter, qos).await.map_err(client_err)
    }

    /// Subscribes to several filters at once.
    ///
    /// # Errors
    /// [`Error::Client`].
    pub async fn subscribe_many(&self, filters: impl IntoIterator<Item = SubscribeFilter>) -> Result<(), Error> {
        self.inner.subscribe_many(filters).await.map_err(client_err)
    }

    /// Unsubscribes from `filter`.
    ///
    /// # Errors
    /// [`Error::Client`].
    pub async fn unsubscribe(&self, filter: impl Into<String>) -> Result<(), Error> {
        self.inner.unsubscribe(filter).await.map_err(client_err)
    }

    /// Sends a disconnect.
    ///
    /// # Errors
    /// [`Error::Client`].
    pub async fn disconnect(&self) -> Result<(), Error> {
        self.inner.disconnect().await.map_err(client_err)
    }

    /// The counters of this client and its event loop.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.outbox.stats()
    }

    /// The wrapped rumqttc client. Anything published through it directly
    /// is **not sealed**.
    #[must_use]
    pub fn unsealed_inner(&self) -> &AsyncClient {
        &self.inner
    }
}

/// The event loop of a [`SealedClient`]: poll it as you would poll
/// [`EventLoop`]. Incoming messages come out verified, plain (allowlisted
/// topics) or rejected; everything else passes through as
/// [`SealedEvent::Other`].
pub struct SealedEventLoop<const KEYS: usize = 8, const SENDERS: usize = 64> {
    /// The wrapped rumqttc event loop (options, state, network options).
    pub eventloop: EventLoop,
    inbox: Inbox<KEYS, SENDERS>,
}

impl<const K: usize, const S: usize> SealedEventLoop<K, S> {
    /// Polls the connection (connecting or reconnecting as rumqttc does)
    /// and returns the next event.
    ///
    /// # Errors
    /// The connection errors of [`EventLoop::poll`]; poll again to reconnect.
    pub async fn poll(&mut self) -> Result<SealedEvent, ConnectionError> {
        let event = self.eventloop.poll().await?;
        Ok(process(&mut self.inbox, event))
    }

    /// The counters of this event loop and its client.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.inbox.stats()
    }

    /// The core opener (keyring, replay state to snapshot).
    #[must_use]
    pub fn opener(&self) -> &mqseal::Opener<K, S> {
        self.inbox.opener()
    }

    /// The core opener, to add or retire keys or restore replay state.
    pub fn opener_mut(&mut self) -> &mut mqseal::Opener<K, S> {
        self.inbox.opener_mut()
    }
}

/// A blocking MQTT 3.1.1 client that seals what it publishes (the sealed
/// [`rumqttc::Client`]). Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: rumqttc::Client,
    outbox: Outbox,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// Like [`rumqttc::Client::new`], with `protection` for the payloads.
    pub fn new<const K: usize, const S: usize>(
        options: MqttOptions,
        cap: usize,
        protection: Protection<K, S>,
    ) -> (Client, Connection<K, S>) {
        let (client, connection) = rumqttc::Client::new(options, cap);
        let (outbox, inbox) = protection.split();
        (Client { inner: client, outbox }, Connection { inner: connection, inbox })
    }

    /// Seals `payload` for `topic` and publishes the envelope (blocks while
    /// the request channel is full).
    ///
    /// # Errors
    /// As [`SealedClient::publish`].
    pub fn publish(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let topic = topic.into();
        let envelope = self.outbox.seal(&topic, payload.as_ref())?;
        self.inner.publish(topic, qos, retain, envelope).map_err(client_err)
    }

    /// Publishes unsealed on an allowlisted plain topic.
    ///
    /// # Errors
    /// As [`SealedClient::publish_plain`].
    pub fn publish_plain(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        let topic = topic.into();
        self.outbox.check_plain(&topic)?;
        self.inner.publish(topic, qos, retain, payload).map_err(client_err)
    }

    /// Acknowledges a message when manual acks are on.
    ///
    /// # Errors
    /// [`Error::Client`].
    pub fn ack(&self, delivery: &impl Delivery) -> Result<(), Error> {
        self.inner.ack(&ack_publish(delivery)).map_err(client_err)
    }

    /// Subscribes to `filter`.
    ///
    /// # Errors
    /// [`Error::Client`].
    pub fn subscribe(&self, filter: impl Into<String>, qos: QoS) -> Result<(), Error> {
        self.inner.subscribe(filter, qos).map_err(client_err)
    }

    /// Unsubscribes from `filter`.
    ///
    /// # Errors
    /// [`Error::Client`].
    pub fn unsubscribe(&self, filter: impl Into<String>) -> Result<(), Error> {
        self.inner.unsubscribe(filter).map_err(client_err)
    }

    /// Sends a disconnect.
    ///
    /// # Errors
    /// [`Error::Client`].
    pub fn disconnect(&self) -> Result<(), Error> {
        self.inner.disconnect().map_err(client_err)
    }

    /// The counters of this client and its connection.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.outbox.stats()
    }
}

/// The blocking event loop of a [`Client`] (the sealed
/// [`rumqttc::Connection`]).
pub struct Connection<const KEYS: usize = 8, const SENDERS: usize = 64> {
    inner: rumqttc::Connection,
    inbox: Inbox<KEYS, SENDERS>,
}

impl<const K: usize, const S: usize> Connection<K, S> {
    /// Blocks until the next event.
    ///
    /// # Errors
    /// [`rumqttc::RecvError`] when the event loop has stopped; the inner
    /// result carries connection errors (keep receiving to reconnect).
    pub fn recv(&mut self) -> Result<Result<SealedEvent, ConnectionError>, rumqttc::RecvError> {
        let r = self.inner.recv()?;
        Ok(r.map(|ev| process(&mut self.inbox, ev)))
    }

    /// Waits at most `timeout` for the next event.
    ///
    /// # Errors
    /// [`rumqttc::RecvTimeoutError`] on timeout or when stopped.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Result<SealedEvent, ConnectionError>, rumqttc::RecvTimeoutError> {
        let r = self.inner.recv_timeout(timeout)?;
        Ok(r.map(|ev| process(&mut self.inbox, ev)))
    }

    /// Returns the next event if one is ready.
    ///
    /// # Errors
    /// [`rumqttc::TryRecvError`] when none is ready or when stopped.
    pub fn try_recv(&mut self) -> Result<Result<SealedEvent, ConnectionError>, rumqttc::TryRecvError> {
        let r = self.inner.try_recv()?;
        Ok(r.map(|ev| process(&mut self.inbox, ev)))
    }

    /// Iterates over events, blocking, until the event loop stops.
    pub fn iter(&mut self) -> impl Iterator<Item = Result<SealedEvent, ConnectionError>> + '_ {
        core::iter::from_fn(move || self.recv().ok())
    }

    /// The counters of this connection and its client.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.inbox.stats()
    }

    /// The core opener.
    #[must_use]
    pub fn opener(&self) -> &mqseal::Opener<K, S> {
        self.inbox.opener()
    }

    /// The core opener, to add or retire keys or restore replay state.
    pub fn opener_mut(&mut self) -> &mut mqseal::Opener<K, S> {
        self.inbox.opener_mut()
    }
}
