//! The receiving side: [`Opener`].

use crate::config::{Eviction, OpenerConfig, DEFAULT_KEYS, DEFAULT_SENDERS};
use crate::envelope::{Aad, BoundTopic, Envelope, Header};
use crate::keyring::Keyring;
use crate::keys::Key;
use crate::replay::{ReplayWindow, SenderSnapshot};
use crate::schedule::{self, Subkey};
use crate::senders::{FixedSenders, SenderState, SenderTable};
use crate::suites::{Backend, Compiled};
use crate::Error;

/// A verified message, borrowed from the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The authenticated header: suite, key id, sender id, counter, timestamp.
    pub header: Header,
    /// The verified (and, for the AEAD suite, decrypted) payload.
    pub payload: &'a [u8],
}

/// A verified message with an owned payload.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedVec {
    /// The authenticated header.
    pub header: Header,
    /// The verified payload.
    pub payload: alloc::vec::Vec<u8>,
}

/// The opener with a fixed, inline sender table of `SENDERS` slots (no
/// allocator): `KEYS` keys and `SENDERS` tracked (key id, sender id)
/// pairs, about `SENDERS * 104` bytes, searched linearly. For devices that
/// hear from a few senders; a gateway or backend uses [`FleetOpener`].
pub type Opener<const KEYS: usize = DEFAULT_KEYS, const SENDERS: usize = DEFAULT_SENDERS> =
    OpenerWith<KEYS, FixedSenders<SENDERS>>;

/// The opener with a growable sender table ([`crate::SenderMap`]): O(1)
/// expected lookup, up to [`crate::DEFAULT_MAX_SENDERS`] senders by default
/// (or the limit given to [`crate::SenderMap::new`]), for receivers that
/// hear from a fleet.
///
/// ```
/// use mqseal::{FleetOpener, Key, Keyring, MemoryCounterStore, Sealer, SenderTable, Suite};
///
/// let key = Key::from_bytes(1, [7; 32]);
/// let mut opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key.clone())?);
/// for device in 0..200 {
///     let mut sealer = Sealer::new(&key, device, Suite::ChaCha20Poly1305, MemoryCounterStore::new())?;
///     opener.open_to_vec("fleet/up", &sealer.seal_to_vec("fleet/up", b"hi")?)?;
/// }
/// assert_eq!(opener.tracked_senders(), 200);
/// assert!(opener.senders().memory_bytes() < 200 * 200);
/// # Ok::<(), mqseal::Error>(())
/// ```
#[cfg(feature = "alloc")]
pub type FleetOpener<const KEYS: usize = DEFAULT_KEYS> = OpenerWith<KEYS, crate::senders::SenderMap>;

/// Opens and verifies envelopes: keyring lookup, topic binding, replay
/// windows, freshness policy.
///
/// `KEYS` keys in fixed storage; the tracked senders in `T`, a
/// [`SenderTable`]: [`FixedSenders`] (the [`Opener`] alias, no allocator)
/// or [`crate::SenderMap`] (the [`FleetOpener`] alias, growable).
///
/// Per message the opener parses the header, finds the key, verifies the
/// tag over header, topic and body, and only then consults and advances the
/// sender's replay window. Duplicates and replays are reported as such and
/// their payload is never handed out.
pub struct OpenerWith<const KEYS: usize, S: SenderTable> {
    keyring: Keyring<KEYS>,
    senders: S,
    config: OpenerConfig,
    clock: Option<fn() -> u64>,
    tick: u64,
}

impl<const KEYS: usize, S: SenderTable> core::fmt::Debug for OpenerWith<KEYS, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Opener")
            .field("keyring", &self.keyring)
            .field("senders", &self.senders.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<const KEYS: usize, S: SenderTable + Default> OpenerWith<KEYS, S> {
    /// An opener accepting every key in `keyring`, with the default
    /// configuration ([`OpenerConfig::default`]): exact topic binding, a
    /// replay window of 128, both suites, no timestamp checks,
    /// [`Eviction::RejectNew`]; and the table's default size.
    #[must_use]
    pub fn new(keyring: Keyring<KEYS>) -> Self {
        OpenerWith::with_table(keyring, S::default())
    }

    /// An opener with `config`.
    ///
    /// # Errors
    /// As [`OpenerConfig::validate`].
    pub fn with_config(keyring: Keyring<KEYS>, config: &OpenerConfig) -> Result<Self, Error> {
        let mut o = Self::new(keyring);
        o.set_config(config)?;
        Ok(o)
    }
}

impl<const KEYS: usize, S: SenderTable> OpenerWith<KEYS, S> {
    /// An opener with the default configuration tracking its senders in
    /// `senders` (for example `SenderMap::new(limit)?`).
    #[must_use]
    pub fn with_table(keyring: Keyring<KEYS>, mut senders: S) -> Self {
        let config = OpenerConfig::default();
        senders.track_recency(matches!(config.eviction, Eviction::LeastRecentlyUsed));
        OpenerWith { keyring, senders, config, clock: None, tick: 0 }
    }

    /// Replaces the configuration, in place (for openers that live in static
    /// or caller-provided memory). A new window width applies to senders
    /// first seen from now on.
    ///
    /// # Errors
    /// As [`OpenerConfig::validate`]; the configuration is then unchanged.
    pub fn set_config(&mut self, config: &OpenerConfig) -> Result<(), Error> {
        config.validate()?;
        self.config = *config;
        self.senders.track_recency(matches!(config.eviction, Eviction::LeastRecentlyUsed));
        Ok(())
    }

    /// The configuration in force.
    #[must_use]
    pub const fn config(&self) -> &OpenerConfig {
        &self.config
    }

    /// The clock (seconds since the Unix epoch) for timestamp checks;
    /// [`crate::system_clock`] under `std`.
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The configured clock's current time, if a clock is set.
    #[must_use]
    pub fn now(&self) -> Option<u64> {
        self.clock.map(|c| c())
    }

    /// In-place form of [`OpenerWith::with_clock`].
    pub fn set_clock(&mut self, clock: Option<fn() -> u64>) {
        self.clock = clock;
    }

    /// The keyring.
    #[must_use]
    pub fn keyring(&self) -> &Keyring<KEYS> {
        &self.keyring
    }

    /// Adds a key (for example the next key of a rotation).
    ///
    /// # Errors
    /// As [`Keyring::insert`].
    pub fn add_key(&mut self, key: Key) -> Result<(), Error> {
        self.keyring.insert(key)
    }

    /// Retires a key: its envelopes are rejected from now on, and the
    /// replay state and cached subkeys under it are dropped. (A receiver
    /// does not seal, so the keyring's primary mark does not protect a key
    /// here.)
    ///
    /// # Errors
    /// [`Error::KeyNotFound`] if no key has that id.
    pub fn retire_key(&mut self, key_id: u32) -> Result<(), Error> {
        self.keyring.clear_primary_if(key_id);
        self.keyring.retire(key_id)?;
        self.senders.remove_key(key_id);
        Ok(())
    }

    /// Number of (key id, sender id) pairs tracked.
    #[must_use]
    pub fn tracked_senders(&self) -> usize {
        self.senders.len()
    }

    /// The sender table: its size, limit and memory in use
    /// ([`SenderTable::len`], [`SenderTable::limit`],
    /// [`SenderTable::memory_bytes`]).
    #[must_use]
    pub const fn senders(&self) -> &S {
        &self.senders
    }

    /// The sender table, mutably (for example to
    /// [`crate::SenderMap::reserve`] before a large restore).
    pub fn senders_mut(&mut self) -> &mut S {
        &mut self.senders
    }

    /// The replay state of every tracked sender, to persist.
    pub fn snapshot(&self) -> impl Iterator<Item = SenderSnapshot> + '_ {
        self.senders.iter().map(|s| SenderSnapshot::of(s.key_id, s.sender_id, &s.window))
    }

    /// Restores one sender's replay state saved by [`OpenerWith::snapshot`],
    /// merged with what this opener already knows of the sender: the larger
    /// highest counter and every accepted counter of both (see
    /// [`ReplayWindow::merge`]), so restoring an older snapshot never rolls
    /// a window back.
    ///
    /// # Errors
    /// [`Error::InvalidSnapshot`] for a record that accepted nothing or has
    /// an invalid width; [`Error::UnknownKey`] when its key id is not in the
    /// keyring (an entry that could never be removed); [`Error::TooManySenders`]
    /// when the sender table is full.
    pub fn restore(&mut self, snap: &SenderSnapshot) -> Result<(), Error> {
        let window = snap.window()?;
        if self.keyring.get(snap.key_id).is_none() {
            return Err(Error::UnknownKey(snap.key_id));
        }
        self.tick += 1;
        let tick = self.tick;
        if let Some(i) = self.senders.find(snap.key_id, snap.sender_id) {
            if let Some(state) = self.senders.state_mut(i) {
                state.window.merge(&window);
            }
            self.senders.touch(i, tick);
            return Ok(());
        }
        let mut fresh = ReplayWindow::with_gaps(self.config.window, self.config.gaps)?;
        fresh.merge(&window);
        let state = SenderState::new(snap.key_id, snap.sender_id, fresh, None);
        self.senders.insert(state, tick, Eviction::RejectNew)?;
        Ok(())
    }

    /// Forgets one sender's replay state (for example a device taken out of
    /// service). Its old messages still within reach would be accepted
    /// again, so use it only together with a key rotation or a maximum age.
    /// Returns whether the sender was tracked.
    pub fn forget_sender(&mut self, key_id: u32, sender_id: u32) -> bool {
        self.senders.remove(key_id, sender_id)
    }

    /// Opens an envelope in place, with the configured clock (if any) for
    /// timestamp checks. On success the returned payload borrows `buf`.
    ///
    /// `topic` is the topic the message arrived on; a `&str` binds it
    /// exactly, [`crate::PrefixRewrite::bound_topic`] maps a bridged prefix.
    ///
    /// On error nothing unverified is exposed: after an authentication
    /// failure `buf` holds the unchanged envelope; after a policy rejection
    /// of a verified message (duplicate, replay, age) the body bytes are
    /// zeroed.
    ///
    /// # Errors
    /// Format errors ([`Error::Truncated`], [`Error::UnsupportedVersion`],
    /// [`Error::UnknownSuite`], [`Error::BadVarint`], [`Error::UnknownFlags`]),
    /// [`Error::SuiteNotAllowed`], [`Error::UnknownKey`],
    /// [`Error::InvalidTopic`], [`Error::TopicTooLong`], [`Error::Auth`], [`Error::Duplicate`],
    /// [`Error::Replay`], [`Error::Expired`], [`Error::FromFuture`],
    /// [`Error::TimestampRequired`], [`Error::ClockRequired`],
    /// [`Error::TooManySenders`].
    pub fn open_in_place<'b, 't>(
        &mut self,
        topic: impl Into<BoundTopic<'t>>,
        buf: &'b mut [u8],
    ) -> Result<Opened<'b>, Error> {
        let now = self.clock.map(|c| c());
        self.open_in_place_at(topic, buf, now)
    }

    /// [`OpenerWith::open_in_place`] with an explicit current time (seconds
    /// since the Unix epoch) instead of the configured clock.
    ///
    /// # Errors
    /// As [`OpenerWith::open_in_place`].
    pub fn open_in_place_at<'b, 't>(
        &mut self,
        topic: impl Into<BoundTopic<'t>>,
        buf: &'b mut [u8],
        now: Option<u64>,
    ) -> Result<Opened<'b>, Error> {
        let mut aad = Aad::new();
        let Prologue { env, key, aad, mut verdict } =
            Self::prologue(&self.keyring, &self.config, topic.into(), buf, now, &mut aad)?;
        let h = env.header;
        let slot = self.senders.find(h.key_id, h.sender_id);
        // A sender seen for the first time: its subkey is derived here and
        // kept in its new entry if the message is accepted.
        let mut fresh_subkey = None;
        let subkey = match slot.and_then(|i| self.senders.state_mut(i)) {
            Some(state) => {
                if verdict.is_ok() {
                    verdict = state.window.check(h.counter);
                }
                state.subkey(key, h.suite)
            }
            None => fresh_subkey.insert(schedule::subkey(key, h.suite, h.sender_id)),
        };

        let range = env.body_range();
        let (body, tag) = buf[env.header_len..].split_at_mut(env.body_len);
        Compiled::open(h.suite, subkey, h.counter, aad, body, tag)?;

        let accepted = verdict.and_then(|()| self.accept(slot, &h, fresh_subkey, now));
        if let Err(e) = accepted {
            // Verified but not accepted: never hand out, never leave behind.
            buf[range].fill(0);
            return Err(e);
        }
        Ok(Opened { header: h, payload: &buf[range] })
    }

    /// Opens an envelope in place for a receiver whose replay windows live
    /// in a shared store (see [`crate::PendingOpen`]): parses, checks the
    /// suite, key and timestamp policy, verifies the tag, and returns the
    /// verified message held back, without consulting or advancing this
    /// opener's own windows. The payload is released only by
    /// [`crate::PendingOpen::resolve`] with the store's accept verdict; a
    /// dropped or rejected token zeroes the body.
    ///
    /// # Errors
    /// As [`OpenerWith::open_in_place_at`], except [`Error::Duplicate`],
    /// [`Error::Replay`] and [`Error::TooManySenders`], which are the
    /// store's to decide.
    #[cfg(feature = "alloc")]
    pub fn open_pending<'b, 't>(
        &mut self,
        topic: impl Into<BoundTopic<'t>>,
        buf: &'b mut [u8],
        now: Option<u64>,
    ) -> Result<crate::PendingOpen<'b>, Error> {
        let mut aad = Aad::new();
        let Prologue { env, key, aad, verdict } =
            Self::prologue(&self.keyring, &self.config, topic.into(), buf, now, &mut aad)?;
        let h = env.header;
        let subkey = schedule::subkey(key, h.suite, h.sender_id);
        let range = env.body_range();
        let (body, tag) = buf[env.header_len..].split_at_mut(env.body_len);
        Compiled::open(h.suite, &subkey, h.counter, aad, body, tag)?;
        if let Err(e) = verdict {
            buf[range].fill(0);
            return Err(e);
        }
        Ok(crate::PendingOpen::new(h, (self.config.window, self.config.gaps), buf, range))
    }

    /// [`OpenerWith::open_pending`] into an owned buffer, leaving the input
    /// untouched.
    ///
    /// # Errors
    /// As [`OpenerWith::open_pending`].
    #[cfg(feature = "alloc")]
    pub fn open_pending_to_vec<'t>(
        &mut self,
        topic: impl Into<BoundTopic<'t>>,
        envelope: &[u8],
        now: Option<u64>,
    ) -> Result<crate::PendingOpenVec, Error> {
        let mut buf = envelope.to_vec();
        let parts = self.open_pending(topic, &mut buf, now)?.into_parts();
        Ok(crate::PendingOpenVec::new(parts, buf))
    }

    /// What every open does before the tag: parse the envelope, check its
    /// suite against the policy, find its key, build the associated data,
    /// and decide the timestamp policy. That verdict is the caller's to
    /// report only once the tag has verified: a forgery is always `Auth`,
    /// whatever counter or timestamp it claims. (Takes the fields, not
    /// `self`, so the caller may still borrow the sender table mutably.)
    #[inline]
    fn prologue<'k, 'a>(
        keyring: &'k Keyring<KEYS>,
        config: &OpenerConfig,
        topic: BoundTopic<'_>,
        buf: &[u8],
        now: Option<u64>,
        aad: &'a mut Aad,
    ) -> Result<Prologue<'k, 'a>, Error> {
        let env = Envelope::parse(buf)?;
        let h = env.header;
        if !config.suites.contains(h.suite) {
            return Err(Error::SuiteNotAllowed(h.suite));
        }
        let key = keyring.get(h.key_id).ok_or(Error::UnknownKey(h.key_id))?;
        let aad = aad.build(&buf[..env.header_len], topic.checked()?);
        Ok(Prologue { env, key, aad, verdict: config.check_time(h.timestamp, now) })
    }

    /// Records a verified, policy-approved message in its sender's window,
    /// creating the sender's entry (with the subkey just derived) if needed;
    /// with a maximum age, then drops the sender's gaps that only messages
    /// too old to accept could fill ([`ReplayWindow::expire_gaps`]).
    fn accept(
        &mut self,
        slot: Option<usize>,
        h: &Header,
        fresh_subkey: Option<Subkey>,
        now: Option<u64>,
    ) -> Result<(), Error> {
        self.tick += 1;
        let tick = self.tick;
        let i = match slot {
            Some(i) => {
                self.senders.touch(i, tick);
                i
            }
            None => {
                let window = ReplayWindow::with_gaps(self.config.window, self.config.gaps)?;
                let cached = fresh_subkey.map(|k| (h.suite, k));
                let state = SenderState::new(h.key_id, h.sender_id, window, cached);
                self.senders.insert(state, tick, self.config.eviction)?
            }
        };
        let age_bound = match (self.config.max_age, now) {
            (Some(age), Some(now)) => Some((now, age, self.config.effective_max_skew().unwrap_or(0))),
            _ => None,
        };
        if let Some(state) = self.senders.state_mut(i) {
            state.window.update_dated(h.counter, h.timestamp);
            if let Some((now, age, skew)) = age_bound {
                state.window.expire_gaps(now, age, skew);
            }
        }
        Ok(())
    }

    /// Opens an envelope and deserializes its payload with postcard (the
    /// counterpart of [`crate::Sealer::seal_value_into`]). No allocation;
    /// `T` may borrow from `buf`.
    ///
    /// # Errors
    /// As [`OpenerWith::open_in_place`], and [`Error::Decode`] when the verified
    /// payload is not a `T` (the message still counts as received).
    pub fn open_value<'b, 't, T: serde::Deserialize<'b>>(
        &mut self,
        topic: impl Into<BoundTopic<'t>>,
        buf: &'b mut [u8],
    ) -> Result<(Header, T), Error> {
        let opened = self.open_in_place(topic, buf)?;
        let value = postcard::from_bytes(opened.payload).map_err(|_| Error::Decode)?;
        Ok((opened.header, value))
    }

    /// Opens an envelope into a new `Vec`, leaving the input untouched.
    ///
    /// # Errors
    /// As [`OpenerWith::open_in_place`].
    #[cfg(feature = "alloc")]
    pub fn open_to_vec<'t>(&mut self, topic: impl Into<BoundTopic<'t>>, envelope: &[u8]) -> Result<OpenedVec, Error> {
        let mut buf = envelope.to_vec();
        let opened = self.open_in_place(topic, &mut buf)?;
        let header = opened.header;
        // The payload lies just before the tag: keep it, drop the rest.
        let end = envelope.len() - crate::TAG_LEN;
        let start = end - opened.payload.len();
        buf.truncate(end);
        buf.drain(..start);
        Ok(OpenedVec { header, payload: buf })
    }

    /// Opens an envelope and deserializes an owned value from its payload.
    ///
    /// # Errors
    /// As [`OpenerWith::open_value`].
    #[cfg(feature = "alloc")]
    pub fn open_value_from_slice<'t, T: serde::de::DeserializeOwned>(
        &mut self,
        topic: impl Into<BoundTopic<'t>>,
        envelope: &[u8],
    ) -> Result<(Header, T), Error> {
        let mut buf = envelope.to_vec();
        self.open_value(topic, &mut buf)
    }
}

/// What [`OpenerWith::prologue`] found out before the tag is checked.
struct Prologue<'k, 'a> {
    env: Envelope,
    key: &'k Key,
    /// The associated data, built in the caller's [`Aad`].
    aad: &'a [u8],
    /// The timestamp policy's verdict, reported only after the tag verified.
    verdict: Result<(), Error>,
}
