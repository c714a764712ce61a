//! The methods that the MQTT 3.1.1 and MQTT 5 clients and event loops have
//! in common.
//!
//! rumqttc has two separate type families (`rumqttc::*` and
//! `rumqttc::v5::*`), so the sealed wrappers are separate types too; these
//! macros write their identical method bodies once. They are expanded in
//! `v311` and `v5` and use the names in scope there: `Error`, `Stats`, `QoS`,
//! `Protection`, `SealedEvent`, `ConnectionError`, `Delivery`,
//! `ack_publish` and `client_err`.
//!
//! Each event loop holds a `receiver` with an `inbox`
//! ([`crate::protection::Inbox`]) and a
//! `process(&mut self, Event) -> SealedEvent` method; each client holds its
//! rumqttc client as `inner` and reaches its [`crate::protection::Outbox`]
//! through the field path given to [`client_requests`].

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
                self.receiver.track(&r, &mut self.inner.eventloop);
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
                self.receiver.track(&r, &mut self.inner.eventloop);
                Ok(r.map(|ev| self.receiver.process(ev)))
            }

            /// Returns the next event if one is ready.
            ///
            /// # Errors
            #[doc = concat!("[`", $doc, "::TryRecvError`] when none is ready or when stopped.")]
            pub fn try_recv(&mut self) -> Result<Result<SealedEvent, ConnectionError>, $($m)::+::TryRecvError> {
                let r = self.inner.try_recv()?;
                self.receiver.track(&r, &mut self.inner.eventloop);
                Ok(r.map(|ev| self.receiver.process(ev)))
            }

            /// Iterates over events, blocking, until the event loop stops.
            pub fn iter(&mut self) -> impl Iterator<Item = Result<SealedEvent, ConnectionError>> + '_ {
                core::iter::from_fn(move || self.recv().ok())
            }
        }
    };
}

/// The request methods of a sealed client: `publish`, which seals with
/// `$sealer.seal(topic, payload)`, plain publishing, acknowledgements,
/// subscriptions, disconnect and counters.
///
/// `client_requests!(async SealedClient { .. })` writes them for an async
/// client (each awaits room in rumqttc's request channel), plus
/// `try_publish`, `subscribe_many` and `unsealed_inner`;
/// `client_requests!(blocking Client { .. })` writes them for a blocking one.
///
/// The fields: `sealer`, the path to what seals (the `Outbox`, or the MQTT 5
/// `Sender` that resolves topic aliases first); `outbox`, the path to the
/// client's `Outbox`; `plain`, the payload type of `publish_plain`;
/// `filter`, the filter type of `subscribe_many`; `error`, the doc link to
/// the client error variant.
macro_rules! client_requests {
    (async $Client:ident {
        sealer: $($sealer:ident).+,
        outbox: $($outbox:ident).+,
        plain: $Plain:ty,
        filter: $Filter:ty,
        error: $err:literal $(,)?
    }) => {
        client_requests!(@common $Client, [async] [await], "", "event loop", $($sealer).+, $($outbox).+, $Plain, $err);

        impl $Client {
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
                let envelope = self.$($sealer).+.seal(&topic, payload.as_ref())?;
                self.inner.try_publish(topic, qos, retain, envelope).map_err(client_err)
            }

            /// Subscribes to several filters at once.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub async fn subscribe_many(&self, filters: impl IntoIterator<Item = $Filter>) -> Result<(), Error> {
                self.inner.subscribe_many(filters).await.map_err(client_err)
            }

            /// The wrapped rumqttc client. Anything published through it directly
            /// is **not sealed**.
            #[must_use]
            pub fn unsealed_inner(&self) -> &AsyncClient {
                &self.inner
            }
        }
    };
    (blocking $Client:ident {
        sealer: $($sealer:ident).+,
        outbox: $($outbox:ident).+,
        plain: $Plain:ty,
        error: $err:literal $(,)?
    }) => {
        client_requests!(
            @common $Client, [] [], " (blocks while the request channel is full)", "connection",
            $($sealer).+, $($outbox).+, $Plain, $err
        );
    };
    // `[async] [await]` for an async client, `[] []` for a blocking one:
    // `pub $($async)? fn` and `$(.$await)?` then read `pub async fn` and
    // `.await`, or `pub fn` and nothing.
    (@common $Client:ident, [$($async:ident)?] [$($await:ident)?], $blocks:literal, $peer:literal,
        $($sealer:ident).+, $($outbox:ident).+, $Plain:ty, $err:literal) => {
        impl $Client {
            #[doc = concat!("Seals `payload` for `topic` and publishes the envelope", $blocks, ".")]
            ///
            /// # Errors
            /// [`Error::Seal`] from the core (counter store failure, counter
            /// exhausted, topic too long), [`Error::NoSealer`] for a receive-only
            #[doc = concat!("client, ", $err, " when the event loop is gone or the topic")]
            /// is invalid.
            pub $($async)? fn publish(
                &self,
                topic: impl Into<String>,
                qos: QoS,
                retain: bool,
                payload: impl AsRef<[u8]>,
            ) -> Result<(), Error> {
                let topic = topic.into();
                let envelope = self.$($sealer).+.seal(&topic, payload.as_ref())?;
                self.inner.publish(topic, qos, retain, envelope) $(.$await)? .map_err(client_err)
            }

            /// Publishes `payload` unsealed, on a topic allowlisted with
            /// [`Protection::allow_plain_topic`].
            ///
            /// # Errors
            #[doc = concat!("[`Error::NotPlainTopic`] for any other topic; ", $err, ".")]
            pub $($async)? fn publish_plain(
                &self,
                topic: impl Into<String>,
                qos: QoS,
                retain: bool,
                payload: impl Into<$Plain>,
            ) -> Result<(), Error> {
                let topic = topic.into();
                self.$($outbox).+.check_plain(&topic)?;
                self.inner.publish(topic, qos, retain, payload) $(.$await)? .map_err(client_err)
            }

            /// Acknowledges a message when manual acks are on.
            ///
            /// # Errors
            #[doc = concat!($err, " when the event loop is gone.")]
            pub $($async)? fn ack(&self, delivery: &impl Delivery) -> Result<(), Error> {
                self.inner.ack(&ack_publish(delivery)) $(.$await)? .map_err(client_err)
            }

            /// Subscribes to `filter`.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub $($async)? fn subscribe(&self, filter: impl Into<String>, qos: QoS) -> Result<(), Error> {
                self.inner.subscribe(filter, qos) $(.$await)? .map_err(client_err)
            }

            /// Unsubscribes from `filter`.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub $($async)? fn unsubscribe(&self, filter: impl Into<String>) -> Result<(), Error> {
                self.inner.unsubscribe(filter) $(.$await)? .map_err(client_err)
            }

            /// Sends a disconnect.
            ///
            /// # Errors
            #[doc = concat!($err, ".")]
            pub $($async)? fn disconnect(&self) -> Result<(), Error> {
                self.inner.disconnect() $(.$await)? .map_err(client_err)
            }

            #[doc = concat!("The counters of this client and its ", $peer, ".")]
            #[must_use]
            pub fn stats(&self) -> Stats {
                self.$($outbox).+.stats()
            }
        }
    };
}

pub(crate) use {blocking_recv, client_requests, inbox_accessors};
