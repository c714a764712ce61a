//! A member of key distribution (`docs/PROTOCOL.md` section 14) over a
//! sealed client, MQTT 3.1.1 ([`SealedClient`]) or MQTT 5
//! ([`crate::v5::SealedClient`]): its keys and sender id come from the
//! authority's control messages, applied while the client runs. The two
//! versions differ only in what [`MemberClient`] says (how to subscribe,
//! queue an ack, swap the sealer, spot a control message); the member is
//! written once over it.
//!
//! Nothing is decided here: the core's [`MemberFileStore`] verifies and
//! persists each control message and says which keys to use; this module
//! moves the bytes (control topic in, ack out) and swaps the keyring of the
//! event loop's opener and the client's sealer.
//!
//! ```text
//!  control topic ──▶ Plain(publish) ──▶ Member::handle ──▶ MemberFileStore::apply (verify, persist)
//!   (QoS 1, retained)                        │                     └▶ ack ──▶ ack topic (QoS 1, after the write)
//!                                            └▶ refresh: opener keyring, client sealer (assigned key, sender id)
//!  Verified(m) ──▶ Member::handle: key_seen (members without a clock)
//!  wake_in() elapsed ──▶ Member::tick: scheduled switch
//! ```
//!
//! The control topic is allowlisted as a plain topic of the client's
//! [`Protection`], so the event loop hands its payloads out unopened (the
//! group keyring could not open them); [`Member::handle`] takes them.

use core::time::Duration;

use crate::{Error, Protection, SealedClient, SealedEvent};
use mqseal::{
    AppliedAck, FleetOpener, Keyring, MemberFileError, MemberFileStore, MemoryCounterStore, OpenerConfig, OpenerWith,
    Sealer, Suite, MAX_KEYS_PER_GROUP,
};

/// What a [`Member`] needs of a sealed async client and its events:
/// implemented by the MQTT 3.1.1 [`SealedClient`] and the MQTT 5
/// [`crate::v5::SealedClient`].
pub trait MemberClient {
    /// The events of the client's event loop.
    type Event;
    /// Subscribes to the control topic, QoS 1.
    ///
    /// # Errors
    /// The request cannot be queued.
    fn subscribe_control(&self, topic: &str) -> impl core::future::Future<Output = Result<(), Error>> + Send;
    /// [`MemberClient::subscribe_control`] without waiting for room in the
    /// request channel (from inside event handling).
    ///
    /// # Errors
    /// The channel is full or the event loop gone.
    fn try_subscribe_control(&self, topic: &str) -> Result<(), Error>;
    /// Queues an ack envelope on the ack topic (QoS 1, not retained,
    /// unsealed: it is sealed with the pairwise key already).
    ///
    /// # Errors
    /// The channel is full or the event loop gone.
    fn try_publish_ack(&self, topic: &str, ack: Vec<u8>) -> Result<(), Error>;
    /// Replaces the client's sealer (`None`: receive-only).
    fn replace_sealer<St: mqseal::CounterStore + Send + 'static>(&self, sealer: Option<Sealer<St>>);
    /// The payload of `event` if it is a plain message on `control_topic`.
    fn control_payload<'e>(event: &'e Self::Event, control_topic: &str) -> Option<&'e [u8]>;
    /// The key id of a verified message.
    fn verified_key_id(event: &Self::Event) -> Option<u32>;
}

/// The [`MemberClient`] of a version's async client: `$qos` is its QoS 1,
/// `$err` the [`Error`] variant of its client errors.
macro_rules! member_client {
    ($client:ty, $event:ident, $qos:expr, $err:path) => {
        impl MemberClient for $client {
            type Event = $event;
            async fn subscribe_control(&self, topic: &str) -> Result<(), Error> {
                self.subscribe(topic, $qos).await
            }
            fn try_subscribe_control(&self, topic: &str) -> Result<(), Error> {
                self.unsealed_inner().try_subscribe(topic, $qos).map_err(|e| $err(Box::new(e)))
            }
            fn try_publish_ack(&self, topic: &str, ack: Vec<u8>) -> Result<(), Error> {
                self.unsealed_inner().try_publish(topic, $qos, false, ack).map_err(|e| $err(Box::new(e)))
            }
            fn replace_sealer<St: mqseal::CounterStore + Send + 'static>(&self, sealer: Option<Sealer<St>>) {
                self.set_sealer(sealer);
            }
            fn control_payload<'e>(event: &'e $event, control_topic: &str) -> Option<&'e [u8]> {
                match event {
                    $event::Plain(p) if AsRef::<[u8]>::as_ref(&p.topic) == control_topic.as_bytes() => {
                        Some(&p.payload[..])
                    }
                    _ => None,
                }
            }
            fn verified_key_id(event: &$event) -> Option<u32> {
                match event {
                    $event::Verified(m) => Some(m.header.key_id),
                    _ => None,
                }
            }
        }
    };
}

member_client!(SealedClient, SealedEvent, rumqttc::QoS::AtLeastOnce, Error::Client);
use crate::v5::SealedEvent as SealedEvent5;
member_client!(crate::v5::SealedClient, SealedEvent5, rumqttc::v5::mqttbytes::QoS::AtLeastOnce, Error::Client5);

/// Why a member operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemberError {
    /// The core refused the control message, or the member's files could not
    /// be read or written (nothing was acknowledged, nothing changed).
    #[error("{0}")]
    Store(#[from] MemberFileError),
    /// The ack could not be queued, or the sealer or opener could not be
    /// rebuilt.
    #[error("{0}")]
    Client(#[from] Error),
}

impl MemberError {
    /// The stable code ([`MemberFileError::code`], or the core error's).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            MemberError::Store(e) => e.code(),
            MemberError::Client(Error::Seal(e)) => e.code(),
            MemberError::Client(_) => "client",
        }
    }
}

impl From<mqseal::Error> for MemberError {
    fn from(e: mqseal::Error) -> Self {
        MemberError::Store(MemberFileError::Member(e))
    }
}

/// What [`Member::handle`] made of an event (`E`: the event type of the
/// client's version).
#[derive(Debug)]
#[non_exhaustive]
pub enum Handled<E = SealedEvent> {
    /// A control message was verified, persisted and acknowledged; the keys
    /// of its epoch are in use.
    Applied {
        /// The epoch now held.
        epoch: u64,
    },
    /// A control message was rejected (nothing changed): report it.
    Rejected(MemberError),
    /// An empty retained payload on the control topic (the authority cleared
    /// it, for example on revocation): skipped.
    Cleared,
    /// Any other event, for the application. `switch_failed` is set when a
    /// verified message showed the next key in use (members without a
    /// clock) but the switch could not be persisted: the member keeps
    /// sealing with the old key.
    Event {
        /// The event.
        event: E,
        /// A failed clockless switch.
        switch_failed: Option<MemberError>,
    },
}

/// A member: its state directory, the group it seals and opens for, and the
/// clock (`None` for a member without one).
pub struct Member {
    store: MemberFileStore,
    group: String,
    clock: Option<fn() -> u64>,
    /// The receiver policy of the opener [`Member::protection`] builds.
    config: OpenerConfig,
    wake_at: Option<u64>,
    /// The assignment the client's sealer holds: (key id, sender id, suite).
    sealing: Option<(u32, u32, Suite)>,
}

impl core::fmt::Debug for Member {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Member")
            .field("store", &self.store)
            .field("group", &self.group)
            .field("wake_at", &self.wake_at)
            .field("sealing", &self.sealing)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// The member in `dir` (`mqseal member init`), for `group`, with
    /// `clock` (Unix seconds; `None`: no clock, switch on first sight of the
    /// next key).
    ///
    /// # Errors
    /// Those of [`MemberFileStore::open`] (`locked`, `invalidSnapshot`...).
    pub fn open(
        dir: impl AsRef<std::path::Path>,
        group: impl Into<String>,
        clock: Option<fn() -> u64>,
    ) -> Result<Self, MemberError> {
        let store = MemberFileStore::open(dir)?;
        let mut m =
            Member { store, group: group.into(), clock, config: OpenerConfig::default(), wake_at: None, sealing: None };
        m.wake_at = m.store.tick(m.now()).wake_at;
        Ok(m)
    }

    /// The receiver policy (replay window, gaps, maximum age and skew,
    /// eviction) of the opener [`Member::protection`] builds; the default
    /// is [`OpenerConfig::default`]. Checked by the core there.
    #[must_use]
    pub fn with_opener_config(mut self, config: OpenerConfig) -> Self {
        self.config = config;
        self
    }

    fn now(&self) -> Option<u64> {
        self.clock.map(|c| c())
    }

    /// The member's store (epoch, state, topics).
    #[must_use]
    pub const fn store(&self) -> &MemberFileStore {
        &self.store
    }

    /// The group this member seals and opens for.
    #[must_use]
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Whether the member holds keys for its group (false before the first
    /// control message, or when the authority removed it from the group).
    #[must_use]
    pub fn has_keys(&self) -> bool {
        self.store.agent().sealing(&self.group, self.now()).is_some()
    }

    /// The [`Protection`] to build the client with: the group's accepted
    /// keys, the sealer of the current assignment (receive-only before the
    /// first state), and the control topic handed out unopened.
    ///
    /// # Errors
    /// The counter file of the assignment cannot be opened or created; the
    /// core's refusal of the opener configuration
    /// ([`Member::with_opener_config`]); [`Error::InvalidFilter`] never (a
    /// control topic has no wildcard).
    pub fn protection(&mut self) -> Result<Protection, MemberError> {
        let now = self.now();
        let ring: Keyring<MAX_KEYS_PER_GROUP> = self.store.keyring(&self.group, now)?.unwrap_or_default();
        let mut opener: FleetOpener = FleetOpener::with_config(Keyring::new(), &self.config)?;
        if let Some(c) = self.clock {
            opener = opener.with_clock(c);
        }
        sync_keyring(&mut opener, &ring)?;
        let protection = match self.store.sealer(&self.group, now)? {
            Some((s, sealer)) => {
                self.sealing = Some((s.key.id(), s.sender_id, s.suite));
                Protection::new(sealer, opener)
            }
            None => Protection::receive_only(opener),
        };
        Ok(protection.allow_plain_topic(self.store.control_topic())?)
    }

    /// Subscribes to the control topic (QoS 1): the retained state arrives
    /// at once. Call after every connection without a resumed session.
    ///
    /// # Errors
    /// [`Error::Client`] when the request cannot be queued.
    pub async fn subscribe<C: MemberClient>(&self, client: &C) -> Result<(), Error> {
        client.subscribe_control(self.store.control_topic()).await
    }

    /// [`Member::subscribe`] without waiting for room in the request
    /// channel: after a reconnect, from inside event handling.
    ///
    /// # Errors
    /// [`Error::Client`] / [`Error::Client5`] when the channel is full.
    pub fn try_subscribe<C: MemberClient>(&self, client: &C) -> Result<(), Error> {
        client.try_subscribe_control(self.store.control_topic())
    }

    /// How long until the next scheduled switch ([`Member::tick`] then);
    /// `None`: nothing scheduled (or no clock).
    #[must_use]
    pub fn wake_in(&self) -> Option<Duration> {
        let (at, now) = (self.wake_at?, self.now()?);
        Some(Duration::from_secs(at.saturating_sub(now)))
    }

    /// Scheduled switches: rebuilds the keyring and sealer when the keys in
    /// use changed. Returns whether they did.
    ///
    /// # Errors
    /// As [`Member::protection`].
    pub fn tick<C: MemberClient, const K: usize, T: mqseal::SenderTable>(
        &mut self,
        client: &C,
        opener: &mut OpenerWith<K, T>,
    ) -> Result<bool, MemberError> {
        let t = self.store.tick(self.now());
        self.wake_at = t.wake_at;
        if t.changed {
            self.refresh(client, opener)?;
        }
        Ok(t.changed)
    }

    /// Takes one event of the client's event loop: applies control
    /// messages (and publishes their acks, after the state is on disk),
    /// notes which key verified messages used, runs a switch that is due.
    /// Every other event comes back as [`Handled::Event`].
    ///
    /// Synchronous, so that it cannot be cancelled between the write of the
    /// state and the ack: the ack is queued with `try_publish` (a full
    /// request channel is reported as [`MemberError::Client`]; the state is
    /// applied and its keys used all the same).
    pub fn handle<C: MemberClient, const K: usize, T: mqseal::SenderTable>(
        &mut self,
        event: C::Event,
        client: &C,
        opener: &mut OpenerWith<K, T>,
    ) -> Handled<C::Event> {
        if self.wake_at.is_some_and(|at| self.now().is_some_and(|now| now >= at)) {
            if let Err(e) = self.tick(client, opener) {
                return Handled::Event { event, switch_failed: Some(e) };
            }
        }
        if let Some(envelope) = C::control_payload(&event, self.store.control_topic()) {
            if envelope.is_empty() {
                return Handled::Cleared;
            }
            return match self.apply(envelope, client, opener) {
                Ok(epoch) => Handled::Applied { epoch },
                Err(e) => Handled::Rejected(e),
            };
        }
        let switched = match C::verified_key_id(&event) {
            Some(key_id) if self.clock.is_none() => self
                .store
                .key_seen(&self.group, key_id, None)
                .map_err(MemberError::from)
                .and_then(|s| if s { self.refresh(client, opener) } else { Ok(()) })
                .err(),
            _ => None,
        };
        Handled::Event { event, switch_failed: switched }
    }

    fn apply<C: MemberClient, const K: usize, T: mqseal::SenderTable>(
        &mut self,
        envelope: &[u8],
        client: &C,
        opener: &mut OpenerWith<K, T>,
    ) -> Result<u64, MemberError> {
        // Returns only once the new record is durable.
        let topic = self.store.control_topic().to_owned();
        let AppliedAck { epoch, ack, wake_at, .. } = self.store.apply(&topic, envelope, self.now())?;
        self.wake_at = wake_at;
        let sent = client.try_publish_ack(self.store.ack_topic(), ack);
        // The state is persisted: its keys are the member's now, acked or not.
        self.refresh(client, opener)?;
        sent?;
        Ok(epoch)
    }

    /// Gives the opener the group's accepted keys and the client the sealer
    /// of the current assignment (a new counter file for a new one).
    fn refresh<C: MemberClient, const K: usize, T: mqseal::SenderTable>(
        &mut self,
        client: &C,
        opener: &mut OpenerWith<K, T>,
    ) -> Result<(), MemberError> {
        let now = self.now();
        let ring: Keyring<MAX_KEYS_PER_GROUP> = self.store.keyring(&self.group, now)?.unwrap_or_default();
        sync_keyring(opener, &ring)?;
        let want = self.store.agent().sealing(&self.group, now).map(|s| (s.key.id(), s.sender_id, s.suite));
        if want != self.sealing {
            // The old sealer holds the lock of its counter file: drop it first.
            client.replace_sealer(None::<Sealer<MemoryCounterStore>>);
            self.sealing = None;
            if let Some((_, sealer)) = self.store.sealer(&self.group, now)? {
                client.replace_sealer(Some(sealer));
                self.sealing = want;
            }
        }
        Ok(())
    }
}

/// Makes the opener's keyring hold exactly the keys of `ring`: retired keys
/// go (with their replay windows), new keys come; kept keys keep their
/// windows.
fn sync_keyring<const K: usize, T: mqseal::SenderTable>(
    opener: &mut OpenerWith<K, T>,
    ring: &Keyring<MAX_KEYS_PER_GROUP>,
) -> Result<(), mqseal::Error> {
    let gone: Vec<u32> = opener.keyring().ids().filter(|id| ring.get(*id).is_none()).collect();
    for id in gone {
        opener.retire_key(id)?;
    }
    for id in ring.ids() {
        if opener.keyring().get(id).is_none() {
            if let Some(k) = ring.get(id) {
                opener.add_key(k.clone())?;
            }
        }
    }
    Ok(())
}
