//! What the MQTT 3.1.1 and MQTT 5 clients and event loops have in common.
//!
//! rumqttc has two separate type families (`rumqttc::*` and
//! `rumqttc::v5::*`), so the sealed wrappers are separate types too.
//!
//! * Where the two versions differ in what the adapter must know (the
//!   packet and event types, how to spot a CONNACK, topic aliases), the
//!   [`Version`] trait says so, and [`crate::protection::Inbox`] is written
//!   once over it.
//! * The public methods with identical bodies are written once by the
//!   macros below, expanded in `v311` and `v5`. They use the names in scope
//!   there: `Error`, `Stats`, `QoS`, `Protection`, `SealedEvent`,
//!   `ConnectionError`, `Delivery`, `ack_publish`, `client_err`, `Plain`
//!   (the payload type of `publish_plain`) and `Filter` (of
//!   `subscribe_many`). Each client has its rumqttc client as `inner` and
//!   its [`crate::protection::Outbox`] as `outbox`; each event loop has its
//!   `inbox`.

use std::collections::VecDeque;

use crate::protection::Pending;
use crate::Reject;

/// What differs between MQTT 3.1.1 and MQTT 5 for the inbox. Implemented
/// by `rumqttc::EventLoop` and `rumqttc::v5::EventLoop`.
pub(crate) trait Version {
    /// The event loop's request type.
    type Request: Clone;
    /// The event loop's event type.
    type Event;
    /// The PUBLISH packet.
    type Publish;
    /// What the sealed event loop yields.
    type SealedEvent;
    /// The incoming topic aliases of one connection (`()` for 3.1.1).
    type Aliases: Default;
    /// The requests rumqttc keeps for the next connection.
    fn queued(&mut self) -> &mut VecDeque<Self::Request>;
    /// A publish or a publish release: what must reach the broker again.
    fn is_publish(request: &Self::Request) -> bool;
    /// The session-present flag, if `event` is an incoming CONNACK.
    fn connack(event: &Self::Event) -> Option<bool>;
    /// The incoming PUBLISH of `event`, or the event itself.
    ///
    /// # Errors
    /// Every other event, given back to pass through.
    fn incoming(event: Self::Event) -> Result<Self::Publish, Self::Event>;
    /// The packet's size as received.
    fn size(publish: &Self::Publish) -> usize;
    /// Puts the topic in place of a topic alias (and records a new alias).
    ///
    /// # Errors
    /// [`Reject::UnknownTopicAlias`].
    fn resolve_alias(aliases: &mut Self::Aliases, publish: &mut Self::Publish) -> Result<(), Reject>;
    /// The full topic and the payload.
    ///
    /// # Errors
    /// [`Reject::TopicNotUtf8`].
    fn topic_and_payload(publish: &Self::Publish) -> Result<(&str, &[u8]), Reject>;
    /// The payload, as received.
    fn payload(publish: &Self::Publish) -> &[u8];
    /// A verified message.
    fn verified(publish: Self::Publish, opened: mqseal::OpenedVec) -> Self::SealedEvent;
    /// A message on an allowlisted plain topic.
    fn plain(publish: Self::Publish) -> Self::SealedEvent;
    /// A rejected message.
    fn rejected(reason: Reject, publish: Self::Publish) -> Self::SealedEvent;
    /// A verified message waiting for the shared replay store.
    fn pending(pending: Pending<Self::Publish>) -> Self::SealedEvent;
    /// Any other event.
    fn other(event: Self::Event) -> Self::SealedEvent;
}

/// The [`Version`] items that read the same in both versions (with their
/// own `Request`, `Publish`, `Event`, `SealedEvent` and `RejectedMessage`
/// in scope): the request queue, the packet's size and payload, and the
/// events other than a verified message.
macro_rules! version_common {
    () => {
        fn queued(&mut self) -> &mut std::collections::VecDeque<Request> {
            &mut self.pending
        }
        fn is_publish(request: &Request) -> bool {
            matches!(request, Request::Publish(_) | Request::PubRel(_))
        }
        fn size(publish: &Publish) -> usize {
            publish.size()
        }
        fn payload(publish: &Publish) -> &[u8] {
            &publish.payload
        }
        fn plain(publish: Publish) -> SealedEvent {
            SealedEvent::Plain(publish)
        }
        fn rejected(reason: Reject, publish: Publish) -> SealedEvent {
            SealedEvent::Rejected(RejectedMessage { reason, publish })
        }
        fn pending(pending: Pending<Publish>) -> SealedEvent {
            SealedEvent::Pending(pending)
        }
        fn other(event: Event) -> SealedEvent {
            SealedEvent::Other(event)
        }
    };
}

/// `stats`, `opener` and `opener_mut` of an event loop type `$ty<K, S>`;
/// `$what` names it in the docs ("event loop", "connection").
macro_rules! inbox_accessors {
    ($ty:ident, $what:literal) => {
        impl<const K: usize, S: mqseal::SenderTable> $ty<K, S> {
            #[doc = concat!("The counters of this ", $what, " and its client.")]
            #[must_use]
            pub fn stats(&self) -> Stats {
                self.inbox.stats()
            }

            /// The core opener (keyring, replay state to snapshot).
            #[must_use]
            pub fn opener(&self) -> &mqseal::OpenerWith<K, S> {
                self.inbox.opener()
            }

            /// The core opener, to add or retire keys or restore replay state.
            pub fn opener_mut(&mut self) -> &mut mqseal::OpenerWith<K, S> {
                self.inbox.opener_mut()
            }
        }
    };
}

/// The receiving methods of the blocking `Connection<K, S>`, which wraps
/// `$($m)::+::Connection` (`$doc` is the same module path, for the docs).
macro_rules! blocking_recv {
    ($($m:ident)::+, $doc:literal) => {
        impl<const K: usize, S: mqseal::SenderTable> Connection<K, S> {
            /// Blocks until the next event.
            ///
            /// # Errors
            #[doc = concat!("[`", $doc, "::RecvError`] when the event loop has stopped; the inner")]
            /// result carries connection errors (keep receiving to reconnect).
            pub fn recv(&mut self) -> Result<Result<SealedEvent, ConnectionError>, $($m)::+::RecvError> {
                Ok(self.inbox.event(self.inner.recv()?, &mut self.inner.eventloop))
            }

            /// Waits at most `timeout` for the next event.
            ///
            /// # Errors
            #[doc = concat!("[`", $doc, "::RecvTimeoutError`] on timeout or when stopped.")]
            pub fn recv_timeout(
                &mut self,
                timeout: core::time::Duration,
            ) -> Result<Result<SealedEvent, ConnectionError>, $($m)::+::RecvTimeoutError> {
                Ok(self.inbox.event(self.inner.recv_timeout(timeout)?, &mut self.inner.eventloop))
            }

            /// Returns the next event if one is ready.
            ///
            /// # Errors
            #[doc = concat!("[`", $doc, "::TryRecvError`] when none is ready or when stopped.")]
            pub fn try_recv(&mut self) -> Result<Result<SealedEvent, ConnectionError>, $($m)::+::TryRecvError> {
                Ok(self.inbox.event(self.inner.try_recv()?, &mut self.inner.eventloop))
            }

            /// Iterates over events, blocking, until the event loop stops.
            pub fn iter(&mut self) -> impl Iterator<Item = Result<SealedEvent, ConnectionError>> + '_ {
                core::iter::from_fn(move || self.recv().ok())
            }
        }
    };
}

/// The request methods of an async sealed client `$Client`: `publish`
/// (sealed), `try_publish`, `publish_plain`, `ack`, `subscribe`,
/// `subscribe_many`, `unsubscribe`, `disconnect`, `stats` and
/// `unsealed_inner`. Each awaits room in rumqttc's request channel.
/// `$err` is the doc link to the version's client error variant.
macro_rules! async_client_requests {
    ($Client:ident, $err:literal) => {
        impl $Client {
            /// Seals `payload` for `topic` and publishes the envelope.
            ///
            /// # Errors
            /// [`Error::Seal`] from the core (counter store failure, counter
            /// exhausted, topic too long), [`Error::NoSealer`] for a receive-only
            #[doc = concat!("client, ", $err, " when the event loop is gone or the topic")]
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
            #[doc = concat!("As [`SealedClient::publish`], and ", $err, " when the channel")]
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
            #[doc = concat!("[`Error::NotPlainTopic`] for any other topic; ", $err, ".")]
            pub async fn publish_plain(
                &self,
                topic: impl Into<String>,
                qos: QoS,
                retain: bool,
                payload: impl Into<Plain>,
            ) -> Result<(), Error> {
                let topic = topic.into();
                self.outbox.check_plain(&topic)?;
                self.inner.publish(topic, qos, retain, payload).await.map_err(client_err)
            }

            /// Acknowledges a message when manual acks are on.
            ///
            /// # Errors
            #[doc = concat!($err, " when the event loop is gone.")]
            pub async fn ack(&self, delivery: &impl Delivery) -> Result<(), Error> {
                self.inner.ack(&ack_publish(delivery)).await.map_err(client_err)
            }

            /// Subscribes to `filter`.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub async fn subscribe(&self, filter: impl Into<String>, qos: QoS) -> Result<(), Error> {
                self.inner.subscribe(filter, qos).await.map_err(client_err)
            }

            /// Subscribes to several filters at once.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub async fn subscribe_many(&self, filters: impl IntoIterator<Item = Filter>) -> Result<(), Error> {
                self.inner.subscribe_many(filters).await.map_err(client_err)
            }

            /// Unsubscribes from `filter`.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub async fn unsubscribe(&self, filter: impl Into<String>) -> Result<(), Error> {
                self.inner.unsubscribe(filter).await.map_err(client_err)
            }

            /// Sends a disconnect.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub async fn disconnect(&self) -> Result<(), Error> {
                self.inner.disconnect().await.map_err(client_err)
            }

            /// The counters of this client and its event loop.
            #[must_use]
            pub fn stats(&self) -> Stats {
                self.outbox.stats()
            }

            /// Replaces the sealer of this client and its clones (a member
            /// switching to a new key or sender id); `None` makes publishing
            /// fail with [`Error::NoSealer`]. The old sealer and its counter
            /// store are dropped.
            pub fn set_sealer<St: mqseal::CounterStore + Send + 'static>(&self, sealer: Option<mqseal::Sealer<St>>) {
                self.outbox.set_sealer(sealer.map(mqseal::Sealer::boxed));
            }

            /// The wrapped rumqttc client. Anything published through it directly
            /// is **not sealed**.
            #[must_use]
            pub fn unsealed_inner(&self) -> &AsyncClient {
                &self.inner
            }
        }
    };
}

/// The request methods of a blocking sealed client `$Client`, as
/// [`async_client_requests`] without `try_publish`, `subscribe_many` and
/// `unsealed_inner`; each blocks while the request channel is full.
macro_rules! blocking_client_requests {
    ($Client:ident, $err:literal) => {
        impl $Client {
            /// Seals `payload` for `topic` and publishes the envelope (blocks
            /// while the request channel is full).
            ///
            /// # Errors
            /// [`Error::Seal`] from the core (counter store failure, counter
            /// exhausted, topic too long), [`Error::NoSealer`] for a receive-only
            #[doc = concat!("client, ", $err, " when the event loop is gone or the topic")]
            /// is invalid.
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

            /// Publishes `payload` unsealed, on a topic allowlisted with
            /// [`Protection::allow_plain_topic`].
            ///
            /// # Errors
            #[doc = concat!("[`Error::NotPlainTopic`] for any other topic; ", $err, ".")]
            pub fn publish_plain(
                &self,
                topic: impl Into<String>,
                qos: QoS,
                retain: bool,
                payload: impl Into<Plain>,
            ) -> Result<(), Error> {
                let topic = topic.into();
                self.outbox.check_plain(&topic)?;
                self.inner.publish(topic, qos, retain, payload).map_err(client_err)
            }

            /// Acknowledges a message when manual acks are on.
            ///
            /// # Errors
            #[doc = concat!($err, " when the event loop is gone.")]
            pub fn ack(&self, delivery: &impl Delivery) -> Result<(), Error> {
                self.inner.ack(&ack_publish(delivery)).map_err(client_err)
            }

            /// Subscribes to `filter`.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub fn subscribe(&self, filter: impl Into<String>, qos: QoS) -> Result<(), Error> {
                self.inner.subscribe(filter, qos).map_err(client_err)
            }

            /// Unsubscribes from `filter`.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub fn unsubscribe(&self, filter: impl Into<String>) -> Result<(), Error> {
                self.inner.unsubscribe(filter).map_err(client_err)
            }

            /// Sends a disconnect.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub fn disconnect(&self) -> Result<(), Error> {
                self.inner.disconnect().map_err(client_err)
            }

            /// The counters of this client and its connection.
            #[must_use]
            pub fn stats(&self) -> Stats {
                self.outbox.stats()
            }
        }
    };
}

pub(crate) use {async_client_requests, blocking_client_requests, blocking_recv, inbox_accessors, version_common};
