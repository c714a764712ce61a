//! What the MQTT 3.1.1 and MQTT 5 clients and event loops have in common.
//!
//! rumqttc has two separate type families (`rumqttc::*` and
//! `rumqttc::v5::*`), so the sealed wrappers are separate types too.
//!
//! * Where the two versions differ in what the adapter must know (the
//!   request and event types, how to spot a CONNACK), the [`Version`] trait
//!   says so, and [`Unacked`] is written once over it.
//! * The public methods with identical bodies are written once by the
//!   macros below, expanded in `v311` and `v5`. They use the names in scope
//!   there: `Error`, `Stats`, `QoS`, `Protection`, `SealedEvent`,
//!   `ConnectionError`, `Delivery`, `ack_publish`, `client_err`, `Plain`
//!   (the payload type of `publish_plain`) and `Filter` (of
//!   `subscribe_many`). Each client has its rumqttc client as `inner` and
//!   its [`crate::protection::Outbox`] as `outbox`; each event loop has a
//!   `receiver` with an `inbox` ([`crate::protection::Inbox`]).

use std::collections::VecDeque;

/// What differs between the MQTT 3.1.1 and MQTT 5 event loops, for
/// [`Unacked`]. Implemented by `rumqttc::EventLoop` and
/// `rumqttc::v5::EventLoop`.
pub(crate) trait Version {
    /// The event loop's request type.
    type Request: Clone;
    /// The event loop's event type.
    type Event;
    /// The requests rumqttc keeps for the next connection.
    fn pending(&mut self) -> &mut VecDeque<Self::Request>;
    /// A publish or a publish release: what must reach the broker again.
    fn is_publish(request: &Self::Request) -> bool;
    /// The session-present flag, if `event` is an incoming CONNACK.
    fn connack(event: &Self::Event) -> Option<bool>;
}

/// The publishes to send again after a reconnect. When the connection
/// drops, rumqttc moves the unacknowledged publishes (and queued requests)
/// to `pending`, but throws them away if the broker then starts a new
/// session: keep a copy of the publishes and put them back in that case.
pub(crate) struct Unacked<V: Version>(Vec<V::Request>);

impl<V: Version> Default for Unacked<V> {
    fn default() -> Self {
        Unacked(Vec::new())
    }
}

impl<V: Version> Unacked<V> {
    /// Called after each poll with its result.
    pub(crate) fn track<E>(&mut self, result: &Result<V::Event, E>, eventloop: &mut V) {
        match result {
            Err(_) => self.0 = eventloop.pending().iter().filter(|r| V::is_publish(r)).cloned().collect(),
            Ok(event) => {
                if let Some(session_present) = V::connack(event) {
                    let saved = core::mem::take(&mut self.0);
                    if !session_present {
                        eventloop.pending().extend(saved);
                    }
                }
            }
        }
    }
}

/// `stats`, `opener` and `opener_mut` of an event loop type `$ty<K, S>`;
/// `$what` names it in the docs ("event loop", "connection").
macro_rules! inbox_accessors {
    ($ty:ident, $what:literal) => {
        impl<const K: usize, S: mqseal::SenderTable> $ty<K, S> {
            #[doc = concat!("The counters of this ", $what, " and its client.")]
            #[must_use]
            pub fn stats(&self) -> Stats {
                self.receiver.inbox.stats()
            }

            /// The core opener (keyring, replay state to snapshot).
            #[must_use]
            pub fn opener(&self) -> &mqseal::OpenerWith<K, S> {
                self.receiver.inbox.opener()
            }

            /// The core opener, to add or retire keys or restore replay state.
            pub fn opener_mut(&mut self) -> &mut mqseal::OpenerWith<K, S> {
                self.receiver.inbox.opener_mut()
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
                let r = self.inner.recv()?;
                self.receiver.unacked.track(&r, &mut self.inner.eventloop);
                Ok(r.map(|ev| self.receiver.process(ev)))
            }

            /// Waits at most `timeout` for the next event.
            ///
            /// # Errors
            #[doc = concat!("[`", $doc, "::RecvTimeoutError`] on timeout or when stopped.")]
            pub fn recv_timeout(
                &mut self,
                timeout: core::time::Duration,
            ) -> Result<Result<SealedEvent, ConnectionError>, $($m)::+::RecvTimeoutError> {
                let r = self.inner.recv_timeout(timeout)?;
                self.receiver.unacked.track(&r, &mut self.inner.eventloop);
                Ok(r.map(|ev| self.receiver.process(ev)))
            }

            /// Returns the next event if one is ready.
            ///
            /// # Errors
            #[doc = concat!("[`", $doc, "::TryRecvError`] when none is ready or when stopped.")]
            pub fn try_recv(&mut self) -> Result<Result<SealedEvent, ConnectionError>, $($m)::+::TryRecvError> {
                let r = self.inner.try_recv()?;
                self.receiver.unacked.track(&r, &mut self.inner.eventloop);
                Ok(r.map(|ev| self.receiver.process(ev)))
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
                self.outbox.set_sealer(sealer.map(|s| Box::new(s) as Box<dyn crate::protection::SealDyn>));
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

pub(crate) use {async_client_requests, blocking_client_requests, blocking_recv, inbox_accessors};
