//! MQTT 5: sealed wrappers of [`rumqttc::v5::AsyncClient`] /
//! [`rumqttc::v5::EventLoop`] and of the blocking [`rumqttc::v5::Client`] /
//! [`rumqttc::v5::Connection`], with the same shape as the MQTT 3.1.1 ones
//! at the crate root.
//!
//! # Topic aliases
//!
//! The seal binds the full topic, never an alias. Incoming messages that
//! carry only a topic alias are resolved to the topic the broker set for
//! that alias on this connection *before* the envelope is opened (rumqttc
//! hands such messages to the application with an empty topic). Outgoing
//! messages published with an alias and an empty topic are sealed for the
//! topic this client last published with that alias.

use std::collections::HashMap;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Request};

use crate::protection::{Inbox, Outbox, Pending};
use crate::shared::{
    async_client_requests, blocking_client_requests, blocking_recv, inbox_accessors, version_common, Version,
};
use crate::{Error, Protection, Reject, Stats};

/// Lifts rumqttc's packet limits to the MQTT maximum (the MQTT 5 Maximum
/// Packet Size this client advertises in CONNECT, and the incoming limit
/// rumqttc enforces). See [`crate::lift_packet_limit`] for why; the broker
/// can still announce a smaller limit for what this client sends (CONNACK),
/// and rumqttc then refuses larger publishes.
pub fn lift_packet_limit(options: &mut MqttOptions) {
    options.set_max_packet_size(Some(crate::MQTT_MAX_PACKET_SIZE));
}

/// A message whose envelope the core verified (MQTT 5).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedMessage {
    /// The full topic it arrived on (alias resolved) and was sealed for.
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
    /// The MQTT 5 publish properties. They are **not** covered by the seal:
    /// treat them as untrusted metadata.
    pub properties: Option<PublishProperties>,
}

/// The message without its MQTT 5 properties, as the MQTT 3.1.1 type: for
/// an application that handles both versions the same way.
impl From<VerifiedMessage> for crate::VerifiedMessage {
    fn from(m: VerifiedMessage) -> Self {
        let qos = match m.qos {
            QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
            QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
            QoS::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
        };
        crate::VerifiedMessage {
            topic: m.topic,
            header: m.header,
            payload: m.payload,
            qos,
            retain: m.retain,
            dup: m.dup,
            pkid: m.pkid,
        }
    }
}

/// A message that was not handed out as verified, with the reason (MQTT 5).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedMessage {
    /// Why it was rejected; [`Reject::code`] gives a stable name.
    pub reason: Reject,
    /// The message as received (topic alias resolved when possible).
    pub publish: Publish,
}

/// What [`SealedEventLoop::poll`] and [`Connection`] yield (MQTT 5). (Not
/// `Clone`: a [`SealedEvent::Pending`] message is resolved once.)
#[derive(Debug)]
#[non_exhaustive]
pub enum SealedEvent {
    /// A verified message on a sealed topic.
    Verified(VerifiedMessage),
    /// A message on an allowlisted plain topic, handed out unchecked (topic
    /// alias resolved).
    Plain(Publish),
    /// A rejected message, with the reason.
    Rejected(RejectedMessage),
    /// A verified message whose replay decision is pending in a shared
    /// store ([`crate::Protection::shared_replay_windows`]); resolve it with
    /// [`PendingMessage::resolve`].
    Pending(PendingMessage),
    /// Every other rumqttc event, unchanged.
    Other(Event),
}

/// A verified MQTT 5 message whose replay decision is pending.
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

impl Delivery for PendingMessage {
    fn qos_and_pkid(&self) -> (QoS, u16) {
        (self.publish().qos, self.publish().pkid)
    }
}

/// Something that can be acknowledged with manual acks.
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
    let mut p = Publish::new("", qos, Bytes::new(), None);
    p.pkid = pkid;
    p
}

fn client_err(e: rumqttc::v5::ClientError) -> Error {
    Error::Client5(Box::new(e))
}

/// The payload type of `publish_plain`.
type Plain = Bytes;

impl Version for EventLoop {
    type Request = Request;
    type Event = Event;
    type Publish = Publish;
    type SealedEvent = SealedEvent;
    /// The incoming topic aliases: alias -> the topic the broker set for it
    /// on this connection.
    type Aliases = HashMap<u16, Bytes>;
    version_common!();
    fn connack(event: &Event) -> Option<bool> {
        match event {
            Event::Incoming(Packet::ConnAck(c)) => Some(c.session_present),
            _ => None,
        }
    }
    fn incoming(event: Event) -> Result<Publish, Event> {
        match event {
            Event::Incoming(Packet::Publish(publish)) => Ok(publish),
            other => Err(other),
        }
    }
    fn resolve_alias(aliases: &mut HashMap<u16, Bytes>, publish: &mut Publish) -> Result<(), Reject> {
        let Some(alias) = publish.properties.as_ref().and_then(|p| p.topic_alias) else {
            return Ok(());
        };
        if publish.topic.is_empty() {
            publish.topic = aliases.get(&alias).ok_or(Reject::UnknownTopicAlias(alias))?.clone();
        } else {
            aliases.insert(alias, publish.topic.clone());
        }
        Ok(())
    }
    fn topic_and_payload(publish: &Publish) -> Result<(&str, &[u8]), Reject> {
        let topic = core::str::from_utf8(&publish.topic).map_err(|_| Reject::TopicNotUtf8)?;
        Ok((topic, &publish.payload))
    }
    fn verified(publish: Publish, opened: mqseal::OpenedVec) -> SealedEvent {
        SealedEvent::Verified(VerifiedMessage {
            // Only verified messages get here, and the core checked the
            // topic: it is UTF-8.
            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
            header: opened.header,
            payload: Bytes::from(opened.payload),
            qos: publish.qos,
            retain: publish.retain,
            dup: publish.dup,
            pkid: publish.pkid,
            properties: publish.properties,
        })
    }
}

/// An async MQTT 5 client that seals what it publishes.
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

    /// Wraps an existing client and its event loop.
    pub fn from_parts<const K: usize, S: mqseal::SenderTable>(
        client: AsyncClient,
        eventloop: EventLoop,
        protection: Protection<K, S>,
    ) -> (SealedClient, SealedEventLoop<K, S>) {
        let (outbox, inbox) = protection.split();
        (SealedClient { inner: client, outbox }, SealedEventLoop { eventloop, inbox })
    }

    /// Seals and publishes with MQTT 5 properties. With a topic alias and
    /// an empty topic, the payload is sealed for the topic this client last
    /// published with that alias. The properties themselves are not sealed.
    ///
    /// # Errors
    /// As [`SealedClient::publish`], and [`Error::UnknownTopicAlias`].
    pub async fn publish_with_properties(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
        properties: PublishProperties,
    ) -> Result<(), Error> {
        let topic = topic.into();
        let envelope = self.outbox.seal_aliased(&topic, properties.topic_alias, payload.as_ref())?;
        self.inner.publish_with_properties(topic, qos, retain, envelope, properties).await.map_err(client_err)
    }
}

async_client_requests!(SealedClient, "[`Error::Client5`]");

/// The event loop of a [`SealedClient`] (MQTT 5).
pub struct SealedEventLoop<const KEYS: usize = 8, T: mqseal::SenderTable = mqseal::SenderMap> {
    /// The wrapped rumqttc event loop.
    pub eventloop: EventLoop,
    inbox: Inbox<EventLoop, KEYS, T>,
}

impl<const K: usize, S: mqseal::SenderTable> SealedEventLoop<K, S> {
    /// Polls the connection and returns the next event.
    ///
    /// # Errors
    /// The connection errors of [`EventLoop::poll`]; poll again to reconnect
    /// (after a pause: rumqttc retries at once). Unacknowledged QoS 1/2
    /// publishes are sent again after the reconnect, also on a new session.
    pub async fn poll(&mut self) -> Result<SealedEvent, ConnectionError> {
        let polled = self.eventloop.poll().await;
        self.inbox.event(polled, &mut self.eventloop)
    }
}

inbox_accessors!(SealedEventLoop, "event loop");

/// A blocking MQTT 5 client that seals what it publishes.
#[derive(Clone)]
pub struct Client {
    inner: rumqttc::v5::Client,
    outbox: Outbox,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// Like [`rumqttc::v5::Client::new`], with `protection` for the payloads.
    pub fn new<const K: usize, S: mqseal::SenderTable>(
        options: MqttOptions,
        cap: usize,
        protection: Protection<K, S>,
    ) -> (Client, Connection<K, S>) {
        let (client, connection) = rumqttc::v5::Client::new(options, cap);
        let (outbox, inbox) = protection.split();
        (Client { inner: client, outbox }, Connection { inner: connection, inbox })
    }

    /// Seals and publishes with MQTT 5 properties.
    ///
    /// # Errors
    /// As [`SealedClient::publish_with_properties`].
    pub fn publish_with_properties(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
        properties: PublishProperties,
    ) -> Result<(), Error> {
        let topic = topic.into();
        let envelope = self.outbox.seal_aliased(&topic, properties.topic_alias, payload.as_ref())?;
        self.inner.publish_with_properties(topic, qos, retain, envelope, properties).map_err(client_err)
    }
}

blocking_client_requests!(Client, "[`Error::Client5`]");

/// The blocking event loop of a [`Client`] (MQTT 5).
pub struct Connection<const KEYS: usize = 8, T: mqseal::SenderTable = mqseal::SenderMap> {
    inner: rumqttc::v5::Connection,
    inbox: Inbox<EventLoop, KEYS, T>,
}

blocking_recv!(rumqttc::v5, "rumqttc::v5");
inbox_accessors!(Connection, "connection");

#[cfg(test)]
mod tests {
    use super::*;
    use mqseal::{FleetOpener, Key, Keyring, MemoryCounterStore, Sealer, Suite};

    fn receiver() -> (Inbox<EventLoop, 8, mqseal::SenderMap>, Sealer<MemoryCounterStore>) {
        let key = Key::from_bytes(1, [3; 32]);
        let sealer = Sealer::new(&key, 5, Suite::ChaCha20Poly1305, MemoryCounterStore::new()).unwrap();
        let opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key).unwrap());
        let (_, inbox) = Protection::receive_only(opener).split();
        (inbox, sealer)
    }

    fn with_alias(topic: &str, alias: u16, payload: Vec<u8>) -> Event {
        let props = PublishProperties { topic_alias: Some(alias), ..Default::default() };
        Event::Incoming(Packet::Publish(Publish::new(topic, QoS::AtLeastOnce, payload, Some(props))))
    }

    // The broker-side alias flow (topic + alias first, alias alone after)
    // is what rumqttc hands out with an empty topic; the seal must be
    // checked against the resolved topic.
    #[test]
    fn incoming_topic_alias_is_resolved_before_opening() {
        let (mut rx, mut sealer) = receiver();
        let e1 = sealer.seal_to_vec("a/b", b"one").unwrap();
        let e2 = sealer.seal_to_vec("a/b", b"two").unwrap();
        let SealedEvent::Verified(m) = rx.process(with_alias("a/b", 7, e1)) else { panic!("not verified") };
        assert_eq!(&m.payload[..], b"one");
        let SealedEvent::Verified(m) = rx.process(with_alias("", 7, e2)) else { panic!("alias not resolved") };
        assert_eq!(m.topic, "a/b");
        assert_eq!(&m.payload[..], b"two");
    }

    #[test]
    fn unknown_alias_and_reset_on_connack_are_rejections() {
        let (mut rx, mut sealer) = receiver();
        let e1 = sealer.seal_to_vec("a/b", b"one").unwrap();
        let e2 = sealer.seal_to_vec("a/b", b"two").unwrap();
        assert!(matches!(rx.process(with_alias("a/b", 2, e1)), SealedEvent::Verified(_)));
        let connack = rumqttc::v5::mqttbytes::v5::ConnAck {
            session_present: false,
            code: rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success,
            properties: None,
        };
        assert!(matches!(rx.process(Event::Incoming(Packet::ConnAck(connack))), SealedEvent::Other(_)));
        let SealedEvent::Rejected(r) = rx.process(with_alias("", 2, e2)) else { panic!("accepted stale alias") };
        assert_eq!(r.reason, Reject::UnknownTopicAlias(2));
        assert_eq!(r.reason.code(), "unknownTopicAlias");
        assert_eq!(rx.stats().other, 1);
    }

    #[test]
    fn an_alias_pointing_elsewhere_fails_authentication() {
        let (mut rx, mut sealer) = receiver();
        let e1 = sealer.seal_to_vec("x/y", b"one").unwrap();
        let e2 = sealer.seal_to_vec("a/b", b"two").unwrap();
        assert!(matches!(rx.process(with_alias("x/y", 1, e1)), SealedEvent::Verified(_)));
        let SealedEvent::Rejected(r) = rx.process(with_alias("", 1, e2)) else { panic!("moved message accepted") };
        assert_eq!(r.reason.code(), "auth");
    }

    #[test]
    fn outgoing_alias_binds_the_remembered_topic() {
        let key = Key::from_bytes(1, [3; 32]);
        let sealer = Sealer::new(&key, 5, Suite::ChaCha20Poly1305, MemoryCounterStore::new()).unwrap();
        let (outbox, _) = Protection::publish_only(sealer).split::<EventLoop>();
        assert!(matches!(outbox.seal_aliased("", Some(3), b"x"), Err(Error::UnknownTopicAlias(3))));
        let _ = outbox.seal_aliased("t/1", Some(3), b"x").unwrap();
        let env = outbox.clone().seal_aliased("", Some(3), b"y").unwrap();
        let mut opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key).unwrap());
        assert_eq!(opener.open_to_vec("t/1", &env).unwrap().payload, b"y");
    }
}
