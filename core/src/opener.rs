//! The receiving side: [`Opener`].

use crate::config::{Eviction, OpenerConfig, DEFAULT_KEYS, DEFAULT_SENDERS};
use crate::envelope::{Aad, BoundTopic, Envelope, Header, Suite};
use crate::keys::{Key, Keyring};
use crate::replay::{ReplayWindow, SenderSnapshot};
use crate::schedule::{self, Subkey};
use crate::{suites, Error};

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

struct SenderState {
    key_id: u32,
    sender_id: u32,
    subkeys: [Option<Subkey>; 2],
    window: ReplayWindow,
    last_used: u64,
}

impl SenderState {
    fn subkey(&mut self, key: &Key, suite: Suite) -> &Subkey {
        let slot = &mut self.subkeys[suite_index(suite)];
        slot.get_or_insert_with(|| schedule::subkey(key, suite, self.sender_id))
    }
}

const fn suite_index(suite: Suite) -> usize {
    match suite {
        Suite::ChaCha20Poly1305 => 0,
        Suite::HmacSha256 => 1,
    }
}

/// Opens and verifies envelopes: keyring lookup, topic binding, replay
/// windows, freshness policy.
///
/// `KEYS` keys and `SENDERS` tracked (key id, sender id) pairs, in fixed
/// storage (no allocator): about `SENDERS * 120` bytes. A gateway with many
/// devices picks a large `SENDERS`; a device that hears from one controller
/// picks a small one.
///
/// Per message the opener parses the header, finds the key, verifies the
/// tag over header, topic and body, and only then consults and advances the
/// sender's replay window. Duplicates and replays are reported as such and
/// their payload is never handed out.
pub struct Opener<const KEYS: usize = DEFAULT_KEYS, const SENDERS: usize = DEFAULT_SENDERS> {
    keyring: Keyring<KEYS>,
    senders: [Option<SenderState>; SENDERS],
    config: OpenerConfig,
    clock: Option<fn() -> u64>,
    tick: u64,
}

impl<const KEYS: usize, const SENDERS: usize> core::fmt::Debug for Opener<KEYS, SENDERS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Opener")
            .field("keyring", &self.keyring)
            .field("senders", &self.senders.iter().flatten().count())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<const KEYS: usize, const SENDERS: usize> Opener<KEYS, SENDERS> {
    /// An opener accepting every key in `keyring`, with the default
    /// configuration ([`OpenerConfig::default`]): exact topic binding, a
    /// replay window of 128, both suites, no timestamp checks,
    /// [`Eviction::RejectNew`].
    #[must_use]
    pub fn new(keyring: Keyring<KEYS>) -> Self {
        Opener {
            keyring,
            senders: core::array::from_fn(|_| None),
            config: OpenerConfig::default(),
            clock: None,
            tick: 0,
        }
    }

    /// An opener with `config`.
    ///
    /// # Errors
    /// As [`OpenerConfig::validate`].
    pub fn with_config(keyring: Keyring<KEYS>, config: &OpenerConfig) -> Result<Self, Error> {
        let mut o = Opener::new(keyring);
        o.set_config(config)?;
        Ok(o)
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

    /// In-place form of [`Opener::with_clock`].
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
        for slot in &mut self.senders {
            if slot.as_ref().is_some_and(|s| s.key_id == key_id) {
                *slot = None;
            }
        }
        Ok(())
    }

    /// Number of (key id, sender id) pairs tracked.
    #[must_use]
    pub fn tracked_senders(&self) -> usize {
        self.senders.iter().flatten().count()
    }

    /// The replay state of every tracked sender, to persist.
    pub fn snapshot(&self) -> impl Iterator<Item = SenderSnapshot> + '_ {
        self.senders.iter().flatten().map(|s| {
            let (width, highest, bits) = s.window.state();
            SenderSnapshot { key_id: s.key_id, sender_id: s.sender_id, width, highest, bits }
        })
    }

    /// Restores one sender's replay state saved by [`Opener::snapshot`],
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
        if let Some(state) = self.find(snap.key_id, snap.sender_id).and_then(|i| self.senders[i].as_mut()) {
            state.window.merge(&window);
            state.last_used = tick;
            return Ok(());
        }
        let slot = self.senders.iter_mut().find(|s| s.is_none()).ok_or(Error::TooManySenders)?;
        let mut fresh = ReplayWindow::new(self.config.window)?;
        fresh.merge(&window);
        *slot = Some(SenderState {
            key_id: snap.key_id,
            sender_id: snap.sender_id,
            subkeys: [None, None],
            window: fresh,
            last_used: tick,
        });
        Ok(())
    }

    /// Forgets one sender's replay state (for example a device taken out of
    /// service). Its old messages still within reach would be accepted
    /// again, so use it only together with a key rotation or a maximum age.
    /// Returns whether the sender was tracked.
    pub fn forget_sender(&mut self, key_id: u32, sender_id: u32) -> bool {
        match self.find(key_id, sender_id) {
            Some(i) => {
                self.senders[i] = None;
                true
            }
            None => false,
        }
    }

    fn find(&self, key_id: u32, sender_id: u32) -> Option<usize> {
        self.senders.iter().position(|s| s.as_ref().is_some_and(|s| s.key_id == key_id && s.sender_id == sender_id))
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

    /// [`Opener::open_in_place`] with an explicit current time (seconds
    /// since the Unix epoch) instead of the configured clock.
    ///
    /// # Errors
    /// As [`Opener::open_in_place`].
    pub fn open_in_place_at<'b, 't>(
        &mut self,
        topic: impl Into<BoundTopic<'t>>,
        buf: &'b mut [u8],
        now: Option<u64>,
    ) -> Result<Opened<'b>, Error> {
        let topic = topic.into();
        let env = Envelope::parse(buf)?;
        let h = env.header;
        if !self.config.suites.contains(h.suite) {
            return Err(Error::SuiteNotAllowed(h.suite));
        }
        let key = self.keyring.get(h.key_id).ok_or(Error::UnknownKey(h.key_id))?;
        let aad = Aad::new(&buf[..env.header_len], &topic)?;
        let slot = self.find(h.key_id, h.sender_id);

        // Decide everything the policy says before touching the body, but
        // report it only once the tag has verified: a forgery is always
        // `Auth`, whatever counter or timestamp it claims.
        let mut verdict = self.config.check_time(h.timestamp, now);
        // A sender seen for the first time: its subkey is derived here and
        // kept in its new entry if the message is accepted.
        let mut fresh_subkey = None;
        let subkey = match slot.and_then(|i| self.senders[i].as_mut()) {
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
        suites::open(h.suite, subkey, h.counter, aad.as_bytes(), body, tag)?;

        let accepted = verdict.and_then(|()| self.accept(slot, &h, fresh_subkey));
        if let Err(e) = accepted {
            // Verified but not accepted: never hand out, never leave behind.
            buf[range].fill(0);
            return Err(e);
        }
        Ok(Opened { header: h, payload: &buf[range] })
    }

    /// Records a verified, policy-approved message in its sender's window,
    /// creating the sender's entry (with the subkey just derived) if needed.
    fn accept(&mut self, slot: Option<usize>, h: &Header, fresh_subkey: Option<Subkey>) -> Result<(), Error> {
        self.tick += 1;
        let tick = self.tick;
        let i = match slot {
            Some(i) => i,
            None => {
                let i = self.new_slot()?;
                let mut subkeys = [None, None];
                subkeys[suite_index(h.suite)] = fresh_subkey;
                self.senders[i] = Some(SenderState {
                    key_id: h.key_id,
                    sender_id: h.sender_id,
                    subkeys,
                    window: ReplayWindow::new(self.config.window)?,
                    last_used: tick,
                });
                i
            }
        };
        if let Some(state) = self.senders[i].as_mut() {
            state.window.update(h.counter);
            state.last_used = tick;
        }
        Ok(())
    }

    fn new_slot(&mut self) -> Result<usize, Error> {
        if let Some(i) = self.senders.iter().position(Option::is_none) {
            return Ok(i);
        }
        match self.config.eviction {
            Eviction::RejectNew => Err(Error::TooManySenders),
            Eviction::LeastRecentlyUsed => {
                let i = self
                    .senders
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.as_ref().map_or(0, |s| s.last_used))
                    .map(|(i, _)| i)
                    .ok_or(Error::TooManySenders)?;
                self.senders[i] = None;
                Ok(i)
            }
        }
    }

    /// Opens an envelope and deserializes its payload with postcard (the
    /// counterpart of [`crate::Sealer::seal_value_into`]). No allocation;
    /// `T` may borrow from `buf`.
    ///
    /// # Errors
    /// As [`Opener::open_in_place`], and [`Error::Decode`] when the verified
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
    /// As [`Opener::open_in_place`].
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
    /// As [`Opener::open_value`].
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
