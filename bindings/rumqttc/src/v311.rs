//! MQTT 3.1.1: sealed wrappers of [`rumqttc::AsyncClient`] /
//! [`rumqttc::EventLoop`] and of the blocking [`rumqttc::Client`] /
//! [`rumqttc::Connection`]. Re-exported at the crate root.

use bytes::Bytes;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, MqttOptions, Publish, QoS, Request, SubscribeFilter,
};

use crate::protection::{Inbox, Outbox, Pending};
use crate::shared::{
    async_client_requests, blocking_client_requests, blocking_recv, inbox_accessors, version_common, Version,
};
use crate::{Error, Protection, Reject, Stats};

/// A message whose envelope the core verified, with its authenticated
/// header and the MQTT delivery flags.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedMessage {
    /// The topic it arrived on (and was sealed for).
    pub topic: String,
    /// The authenticated header, as the core opened it: sender id, key id,
    /// counter, timestamp (if the sender included one) and suite.
    pub header: mqseal::Header,
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

/// What [`SealedEventLoop::poll`] and [`Connection`] yield. (Not `Clone`:
/// a [`SealedEvent::Pending`] message is resolved once.)
#[derive(Debug)]
#[non_exhaustive]
pub enum SealedEvent {
    /// A verified message on a sealed topic.
    Verified(VerifiedMessage),
    /// A message on an allowlisted plain topic, handed out unchecked.
    Plain(Publish),
    /// A message that was rejected, with the reason.
    Rejected(RejectedMessage),
    /// A verified message whose replay decision is pending in a shared
    /// store ([`Protection::shared_replay_windows`]); resolve it with
    /// [`PendingMessage::resolve`].
    Pending(PendingMessage),
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

impl Delivery for PendingMessage {
    fn qos_and_pkid(&self) -> (QoS, u16) {
        (self.publish().qos, self.publish().pkid)
    }
}

/// A verified MQTT 3.1.1 message whose replay decision is pending.
pub type PendingMessage = crate::protection::Pending<Publish>;

impl crate::protection::Pending<Publish> {
    /// Applies the shared store's verdict: [`SealedEvent::Verified`] when
    /// accepted, else [`SealedEvent::Rejected`] (`duplicate`, `replay`).
    /// Acknowledge the message afterwards either way.
    #[must_use]
    pub fn resolve(self, verdict: mqseal::WindowVerdict) -> SealedEvent {
        self.decide::<EventLoop>(verdict)
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

/// The payload type of `publish_plain`, the filter type of `subscribe_many`.
type Plain = Vec<u8>;
type Filter = SubscribeFilter;

impl Version for EventLoop {
    type Request = Request;
    type Event = Event;
    type Publish = Publish;
    type SealedEvent = SealedEvent;
    type Aliases = ();
    version_common!();
    fn connack(event: &Event) -> Option<bool> {
        match event {
            Event::Incoming(Incoming::ConnAck(c)) => Some(c.session_present),
            _ => None,
        }
    }
    fn incoming(event: Event) -> Result<Publish, Event> {
        match event {
            Event::Incoming(Incoming::Publish(publish)) => Ok(publish),
            other => Err(other),
        }
    }
    fn resolve_alias((): &mut (), _: &mut Publish) -> Result<(), Reject> {
        Ok(())
    }
    fn topic_and_payload(publish: &Publish) -> Result<(&str, &[u8]), Reject> {
        Ok((&publish.topic, &publish.payload))
    }
    fn verified(publish: Publish, opened: mqseal::OpenedVec) -> SealedEvent {
        SealedEvent::Verified(VerifiedMessage {
            topic: publish.topic,
            header: opened.header,
            payload: Bytes::from(opened.payload),
            qos: publish.qos,
            retain: publish.retain,
            dup: publish.dup,
            pkid: publish.pkid,
        })
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
    pub fn new<const K: usize, S: mqseal::SenderTable>(
        options: MqttOptions,
        cap: usize,
        protection: Protection<K, S>,
    ) -> (SealedClient, SealedEventLoop<K, S>) {
        let (client, eventloop) = AsyncClient::new(options, cap);
        SealedClient::from_parts(client, eventloop, protection)
    }

    /// Wraps an existing client and its event loop (for example after
    /// setting [`EventLoop::set_network_options`]).
    pub fn from_parts<const K: usize, S: mqseal::SenderTable>(
        client: AsyncClient,
        eventloop: EventLoop,
        protection: Protection<K, S>,
    ) -> (SealedClient, SealedEventLoop<K, S>) {
        let (outbox, inbox) = protection.split();
        (SealedClient { inner: client, outbox }, SealedEventLoop { eventloop, inbox })
    }
}

async_client_requests!(SealedClient, "[`Error::Client`]");

/// The event loop of a [`SealedClient`]: poll it as you would poll
/// [`EventLoop`]. Incoming messages come out verified, plain (allowlisted
/// topics) or rejected; everything else passes through as
/// [`SealedEvent::Other`].
pub struct SealedEventLoop<const KEYS: usize = 8, T: mqseal::SenderTable = mqseal::SenderMap> {
    /// The wrapped rumqttc event loop (options, state, network options).
    pub eventloop: EventLoop,
    inbox: Inbox<EventLoop, KEYS, T>,
}

impl<const K: usize, S: mqseal::SenderTable> SealedEventLoop<K, S> {
    /// Polls the connection (connecting or reconnecting as rumqttc does)
    /// and returns the next event.
    ///
    /// QoS 1/2 publishes not yet acknowledged when the connection dropped
    /// are sent again after the reconnect, also when the broker starts a new
    /// session (rumqttc alone would drop them then).
    ///
    /// # Errors
    /// The connection errors of [`EventLoop::poll`]; poll again to reconnect
    /// (after a pause: rumqttc retries at once).
    pub async fn poll(&mut self) -> Result<SealedEvent, ConnectionError> {
        let polled = self.eventloop.poll().await;
        self.inbox.event(polled, &mut self.eventloop)
    }
}

inbox_accessors!(SealedEventLoop, "event loop");

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
    pub fn new<const K: usize, S: mqseal::SenderTable>(
        options: MqttOptions,
        cap: usize,
        protection: Protection<K, S>,
    ) -> (Client, Connection<K, S>) {
        let (client, connection) = rumqttc::Client::new(options, cap);
        let (outbox, inbox) = protection.split();
        (Client { inner: client, outbox }, Connection { inner: connection, inbox })
    }
}

blocking_client_requests!(Client, "[`Error::Client`]");

/// The blocking event loop of a [`Client`] (the sealed
/// [`rumqttc::Connection`]).
pub struct Connection<const KEYS: usize = 8, T: mqseal::SenderTable = mqseal::SenderMap> {
    inner: rumqttc::Connection,
    inbox: Inbox<rumqttc::EventLoop, KEYS, T>,
}

blocking_recv!(rumqttc, "rumqttc");
inbox_accessors!(Connection, "connection");
