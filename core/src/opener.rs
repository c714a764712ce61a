//! The receiving side: [`Opener`].

use crate::envelope::{Aad, BoundTopic, Envelope, Header, Suite};
use crate::keys::{Key, Keyring};
use crate::replay::{ReplayWindow, DEFAULT_WINDOW, MAX_WINDOW};
use crate::schedule::{self, Subkey};
use crate::{suites, Error};

/// What an [`Opener`] does when its sender table is full and a new sender's
/// message verifies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eviction {
    /// Reject the new sender with [`Error::TooManySenders`] (the default).
    /// Fails closed: no replay window is ever forgotten. Entries are only
    /// created for messages that verified, so only key holders can fill the
    /// table.
    #[default]
    RejectNew,
    /// Forget the sender that was heard from least recently. Its replay
    /// window is lost: its old messages that are still within reach (for
    /// example retained, or recorded by an attacker) would be accepted
    /// again. Use it only together with a maximum age
    /// ([`Opener::with_max_age`]), which bounds that exposure in time.
    LeastRecentlyUsed,
}

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

/// The replay state of one (key id, sender id), to save across receiver
/// restarts (see `SECURITY.md`, "Receiver restarts").
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SenderSnapshot {
    /// Key id.
    pub key_id: u32,
    /// Sender id.
    pub sender_id: u32,
    /// Window width.
    pub width: u32,
    /// Highest counter accepted.
    pub highest: u64,
    /// Bitmap of accepted counters below the highest.
    pub bits: [u64; 4],
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
pub struct Opener<const KEYS: usize = 8, const SENDERS: usize = 64> {
    keyring: Keyring<KEYS>,
    senders: [Option<SenderState>; SENDERS],
    window: u32,
    max_age: Option<u64>,
    max_skew: Option<u64>,
    require_timestamp: bool,
    suites: [bool; 2],
    eviction: Eviction,
    clock: Option<fn() -> u64>,
    tick: u64,
}

impl<const KEYS: usize, const SENDERS: usize> core::fmt::Debug for Opener<KEYS, SENDERS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Opener")
            .field("keyring", &self.keyring)
            .field("senders", &self.senders.iter().flatten().count())
            .field("window", &self.window)
            .field("max_age", &self.max_age)
            .field("max_skew", &self.max_skew)
            .field("require_timestamp", &self.require_timestamp)
            .field("eviction", &self.eviction)
            .finish_non_exhaustive()
    }
}

impl<const KEYS: usize, const SENDERS: usize> Opener<KEYS, SENDERS> {
    /// An opener accepting every key in `keyring`, with the default policy:
    /// exact topic binding, a replay window of 128, both suites, no
    /// timestamp checks, [`Eviction::RejectNew`].
    #[must_use]
    pub fn new(keyring: Keyring<KEYS>) -> Self {
        Opener {
            keyring,
            senders: core::array::from_fn(|_| None),
            window: DEFAULT_WINDOW,
            max_age: None,
            max_skew: None,
            require_timestamp: false,
            suites: [true, true],
            eviction: Eviction::RejectNew,
            clock: None,
            tick: 0,
        }
    }

    /// Replay window width for senders first seen from now on (1 to 256,
    /// default 128).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] outside that range.
    pub fn with_window(mut self, width: u32) -> Result<Self, Error> {
        self.set_window(width)?;
        Ok(self)
    }

    /// Rejects messages whose authenticated timestamp is more than
    /// `seconds` old ([`Error::Expired`]), and messages without a timestamp
    /// ([`Error::TimestampRequired`]). Needs the current time: from
    /// [`Opener::with_clock`] or [`Opener::open_in_place_at`].
    #[must_use]
    pub fn with_max_age(mut self, seconds: u64) -> Self {
        self.max_age = Some(seconds);
        self.require_timestamp = true;
        self
    }

    /// Rejects timestamps more than `seconds` ahead of the receiver's clock
    /// ([`Error::FromFuture`]).
    #[must_use]
    pub fn with_max_skew(mut self, seconds: u64) -> Self {
        self.max_skew = Some(seconds);
        self
    }

    /// Rejects messages without a timestamp, even with no age limit.
    #[must_use]
    pub fn require_timestamps(mut self) -> Self {
        self.require_timestamp = true;
        self
    }

    /// Accepts only the given suites (for example only
    /// [`Suite::ChaCha20Poly1305`] on topics that must stay confidential).
    #[must_use]
    pub fn with_suites(mut self, suites: &[Suite]) -> Self {
        self.set_suites(suites);
        self
    }

    /// What to do when the sender table is full.
    #[must_use]
    pub fn with_eviction(mut self, eviction: Eviction) -> Self {
        self.eviction = eviction;
        self
    }

    /// The clock (seconds since the Unix epoch) for timestamp checks;
    /// [`crate::system_clock`] under `std`.
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = Some(clock);
        self
    }

    /// In-place form of [`Opener::with_window`], for openers that live in
    /// static or caller-provided memory (moving a large opener through the
    /// by-value builders costs stack on an MCU).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] outside 1 to 256.
    pub fn set_window(&mut self, width: u32) -> Result<(), Error> {
        if width == 0 || width > MAX_WINDOW {
            return Err(Error::InvalidConfig);
        }
        self.window = width;
        Ok(())
    }

    /// In-place form of [`Opener::with_max_age`] (`None` removes the limit
    /// but keeps [`Opener::require_timestamps`] as it was).
    pub fn set_max_age(&mut self, seconds: Option<u64>) {
        self.max_age = seconds;
        if seconds.is_some() {
            self.require_timestamp = true;
        }
    }

    /// In-place form of [`Opener::with_max_skew`].
    pub fn set_max_skew(&mut self, seconds: Option<u64>) {
        self.max_skew = seconds;
    }

    /// In-place form of [`Opener::require_timestamps`].
    pub fn set_require_timestamps(&mut self, required: bool) {
        self.require_timestamp = required;
    }

    /// In-place form of [`Opener::with_suites`].
    pub fn set_suites(&mut self, suites: &[Suite]) {
        self.suites = [false, false];
        for s in suites {
            self.suites[suite_index(*s)] = true;
        }
    }

    /// In-place form of [`Opener::with_eviction`].
    pub fn set_eviction(&mut self, eviction: Eviction) {
        self.eviction = eviction;
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

    /// Restores one sender's replay state saved by [`Opener::snapshot`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid width, [`Error::KeyringFull`]
    /// when the sender table is full.
    pub fn restore(&mut self, snap: &SenderSnapshot) -> Result<(), Error> {
        let window = ReplayWindow::from_state(snap.width, snap.highest, snap.bits)?;
        if let Some(i) = self.find(snap.key_id, snap.sender_id) {
            if let Some(s) = self.senders[i].as_mut() {
                s.window = window;
            }
            return Ok(());
        }
        let slot = self.senders.iter_mut().find(|s| s.is_none()).ok_or(Error::KeyringFull)?;
        *slot = Some(SenderState {
            key_id: snap.key_id,
            sender_id: snap.sender_id,
            subkeys: [None, None],
            window,
            last_used: 0,
        });
        Ok(())
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
    /// [`Error::SuiteNotAllowed`], [`Error::UnknownKeyId`],
    /// [`Error::TopicTooLong`], [`Error::Auth`], [`Error::Duplicate`],
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
        if !self.suites[suite_index(h.suite)] {
            return Err(Error::SuiteNotAllowed(h.suite));
        }
        let key = self.keyring.get(h.key_id).ok_or(Error::UnknownKeyId(h.key_id))?;
        let aad = Aad::new(&buf[..env.header_len], &topic)?;
        let slot = self.find(h.key_id, h.sender_id);

        // Decide everything the policy says before touching the body, but
        // report it only once the tag has verified: a forgery is always
        // `Auth`, whatever counter or timestamp it claims.
        let mut verdict = self.check_time(h.timestamp, now);
        let fresh_subkey;
        let subkey = match slot.and_then(|i| self.senders[i].as_mut()) {
            Some(state) => {
                if verdict.is_ok() {
                    verdict = state.window.check(h.counter);
                }
                state.subkey(key, h.suite)
            }
            None => {
                fresh_subkey = schedule::subkey(key, h.suite, h.sender_id);
                &fresh_subkey
            }
        };

        let range = env.body_range();
        let (body, tag) = buf[env.header_len..].split_at_mut(env.body_len);
        suites::open(h.suite, subkey, h.counter, aad.as_bytes(), body, tag)?;

        let accepted = verdict.and_then(|()| self.accept(slot, &h));
        if let Err(e) = accepted {
            // Verified but not accepted: never hand out, never leave behind.
            buf[range].fill(0);
            return Err(e);
        }
        Ok(Opened { header: h, payload: &buf[range] })
    }

    fn check_time(&self, timestamp: Option<u64>, now: Option<u64>) -> Result<(), Error> {
        let Some(ts) = timestamp else {
            return if self.require_timestamp { Err(Error::TimestampRequired) } else { Ok(()) };
        };
        if self.max_age.is_none() && self.max_skew.is_none() {
            return Ok(());
        }
        let now = now.ok_or(Error::ClockRequired)?;
        if let Some(age) = self.max_age {
            if now.saturating_sub(ts) > age {
                return Err(Error::Expired);
            }
        }
        if let Some(skew) = self.max_skew {
            if ts.saturating_sub(now) > skew {
                return Err(Error::FromFuture);
            }
        }
        Ok(())
    }

    /// Records a verified, policy-approved message in its sender's window,
    /// creating the sender's entry if needed.
    fn accept(&mut self, slot: Option<usize>, h: &Header) -> Result<(), Error> {
        self.tick += 1;
        let i = match slot {
            Some(i) => i,
            None => self.new_slot()?,
        };
        let tick = self.tick;
        let window = self.window;
        let state = self.senders[i].get_or_insert_with(|| SenderState {
            key_id: h.key_id,
            sender_id: h.sender_id,
            subkeys: [None, None],
            window: ReplayWindow::new(window).unwrap_or_default(),
            last_used: tick,
        });
        state.window.update(h.counter);
        state.last_used = tick;
        Ok(())
    }

    fn new_slot(&mut self) -> Result<usize, Error> {
        if let Some(i) = self.senders.iter().position(Option::is_none) {
            return Ok(i);
        }
        match self.eviction {
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
