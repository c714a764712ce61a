//! The sending side: [`Sealer`].

use crate::counter::{CounterGrant, CounterStore, Reservation};
use crate::envelope::{Aad, BoundTopic, CheckedTopic, Header, TAG_LEN};
use crate::keyring::Keyring;
use crate::keys::Key;
use crate::schedule;
use crate::suites::{SealingKey, Suite};
use crate::Error;

/// A sealer over a boxed store ([`Sealer::boxed`]): one type for sealers
/// whose store is picked at run time.
#[cfg(feature = "alloc")]
pub type BoxedSealer = Sealer<alloc::boxed::Box<dyn CounterStore + Send>>;

/// Seals messages for one sender id under one key.
///
/// Holds the per-sender subkey, set up for its suite (derived once, at
/// construction or on [`Sealer::rotate_key`]), and the counter reservation
/// ([`CounterGrant`]) over a [`CounterStore`].
///
/// <div class="warning">
///
/// The counter is the nonce. Each (key, sender id) pair must have exactly
/// one sealer with one durable counter store at any time: two processes
/// sealing under the same key and sender id, or a store restored from a
/// backup, reuse nonces. Give every device and every process its own
/// sender id. The stores of this crate enforce what they can: a
/// [`crate::FileCounterStore`] is locked for its lifetime, every persist is
/// a compare-and-swap, and a store that holds no state is refused.
///
/// </div>
///
/// ```
/// use mqseal::{Key, MemoryCounterStore, Opener, Sealer, Suite};
///
/// let key = Key::from_bytes(1, [0x42; 32]); // use Key::generate in real code
/// let mut sealer = Sealer::new(&key, 7, Suite::ChaCha20Poly1305, MemoryCounterStore::new())?;
/// let envelope = sealer.seal_to_vec("plant/line1/temp", b"21.5")?;
///
/// let mut opener: Opener = Opener::new(mqseal::Keyring::with_primary(key)?);
/// let opened = opener.open_to_vec("plant/line1/temp", &envelope)?;
/// assert_eq!(opened.payload, b"21.5");
/// assert_eq!(opened.header.sender_id, 7);
/// # Ok::<(), mqseal::Error>(())
/// ```
pub struct Sealer<S: CounterStore> {
    key: SealingKey,
    key_id: u32,
    sender_id: u32,
    suite: Suite,
    grant: CounterGrant,
    store: S,
    clock: Option<fn() -> u64>,
}

impl<S: CounterStore> core::fmt::Debug for Sealer<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.key_id)
            .field("sender_id", &self.sender_id)
            .field("suite", &self.suite)
            .field("next_counter", &self.grant.peek().ok())
            .finish_non_exhaustive()
    }
}

impl<S: CounterStore> Sealer<S> {
    /// A sealer for `sender_id` under `key`, resuming at the limit `store`
    /// holds.
    ///
    /// # Errors
    /// [`Error::CounterStore`] if the store cannot be read, or holds no state
    /// ([`crate::StoreError::Missing`]: create the store explicitly for a new
    /// sender, or use [`Sealer::new_with_clock_floor`]).
    pub fn new(key: &Key, sender_id: u32, suite: Suite, store: S) -> Result<Self, Error> {
        Sealer::build(key, sender_id, suite, store, None)
    }

    /// A sealer that starts at or above the clock floor
    /// ([`crate::clock_floor`] of `unix_millis`) and above whatever `store`
    /// holds; a store with no state is accepted. For deployments that cannot
    /// keep counter state; costs about 5 header bytes per message.
    ///
    /// # Errors
    /// [`Error::CounterStore`] if the store cannot be read.
    pub fn new_with_clock_floor(
        key: &Key,
        sender_id: u32,
        suite: Suite,
        store: S,
        unix_millis: u64,
    ) -> Result<Self, Error> {
        Sealer::build(key, sender_id, suite, store, Some(crate::counter::clock_floor(unix_millis)))
    }

    fn build(key: &Key, sender_id: u32, suite: Suite, mut store: S, floor: Option<u64>) -> Result<Self, Error> {
        let stored = store.load().map_err(Error::CounterStore)?;
        Ok(Sealer {
            key: SealingKey::new(suite, &schedule::subkey(key, suite, sender_id)),
            key_id: key.id(),
            sender_id,
            suite,
            grant: CounterGrant::resume(stored, floor)?,
            store,
            clock: None,
        })
    }

    /// A sealer using the keyring's primary key.
    ///
    /// # Errors
    /// [`Error::NoPrimaryKey`], or as [`Sealer::new`].
    pub fn from_keyring<const N: usize>(
        ring: &Keyring<N>,
        sender_id: u32,
        suite: Suite,
        store: S,
    ) -> Result<Self, Error> {
        Sealer::new(ring.primary().ok_or(Error::NoPrimaryKey)?, sender_id, suite, store)
    }

    /// Counters reserved per store write (default
    /// [`crate::DEFAULT_RESERVATION_BLOCK`]). Larger blocks mean fewer writes
    /// (flash wear, fsync latency) and more counters skipped after a crash;
    /// any value is safe.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero.
    pub fn with_reservation_block(mut self, block: u64) -> Result<Self, Error> {
        self.grant.set_block(block)?;
        Ok(self)
    }

    /// In-place form of [`Sealer::with_reservation_block`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero.
    pub fn set_reservation_block(&mut self, block: u64) -> Result<(), Error> {
        self.grant.set_block(block)
    }

    /// For drivers that persist asynchronously (over
    /// [`crate::ExternalCounterStore`]): the reservation to persist when at
    /// most `ahead` granted counters are left, or `None`.
    #[must_use]
    pub fn reservation_needed(&self, ahead: u64) -> Option<Reservation> {
        self.grant.reservation_needed(ahead)
    }

    /// Grants the counters of `r` once the driver has durably persisted it
    /// (compare-and-swap from `r.current` to `r.limit`).
    ///
    /// # Errors
    /// [`Error::CounterStore`] with [`crate::StoreError::Conflict`] when `r`
    /// does not follow from this sealer's last reservation.
    pub fn grant(&mut self, r: Reservation) -> Result<(), Error> {
        self.grant.grant(r)
    }

    /// Counters granted and not used yet.
    #[must_use]
    pub const fn granted_remaining(&self) -> u64 {
        self.grant.remaining()
    }

    /// The end of the granted counter range.
    #[must_use]
    pub const fn granted_limit(&self) -> u64 {
        self.grant.limit()
    }

    /// Adds an authenticated timestamp to every message, read from `clock`
    /// (seconds since the Unix epoch; [`crate::system_clock`] under `std`).
    #[must_use]
    pub fn with_timestamps(mut self, clock: fn() -> u64) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Switches to another key (rotation). Counters carry on from the same
    /// store: they keep increasing across keys, which is allowed.
    pub fn rotate_key(&mut self, key: &Key) {
        self.key = SealingKey::new(self.suite, &schedule::subkey(key, self.suite, self.sender_id));
        self.key_id = key.id();
    }

    /// This sealer's sender id.
    #[must_use]
    pub const fn sender_id(&self) -> u32 {
        self.sender_id
    }

    /// Id of the key in use.
    #[must_use]
    pub const fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The suite in use.
    #[must_use]
    pub const fn suite(&self) -> Suite {
        self.suite
    }

    /// The counter the next message will carry.
    ///
    /// # Errors
    /// [`Error::CounterExhausted`] when no counter is left.
    pub const fn next_counter(&self) -> Result<u64, Error> {
        self.grant.peek()
    }

    /// The counter store.
    pub const fn store(&self) -> &S {
        &self.store
    }

    /// Gives back the counter store.
    pub fn into_store(self) -> S {
        self.store
    }

    /// The same sealer (key, sender id, suite, counters granted, clock)
    /// with its store boxed, so that sealers over different stores have one
    /// type.
    #[cfg(feature = "alloc")]
    #[must_use]
    pub fn boxed(self) -> BoxedSealer
    where
        S: Send + 'static,
    {
        let Sealer { key, key_id, sender_id, suite, grant, store, clock } = self;
        Sealer { key, key_id, sender_id, suite, grant, store: alloc::boxed::Box::new(store), clock }
    }

    /// Exact envelope length for a payload of `payload_len` bytes sealed
    /// next (with the timestamp, if configured, assumed at its largest).
    ///
    /// # Errors
    /// [`Error::CounterExhausted`] when no counter is left.
    pub fn envelope_len(&self, payload_len: usize) -> Result<usize, Error> {
        let h = self.header(self.grant.peek()?, self.clock.map(|_| u64::MAX));
        Ok(h.envelope_len(payload_len))
    }

    const fn header(&self, counter: u64, timestamp: Option<u64>) -> Header {
        Header { suite: self.suite, key_id: self.key_id, sender_id: self.sender_id, counter, timestamp }
    }

    /// Seals `payload` for `topic` into `out`; returns the envelope length.
    /// The firmware path: no allocation, `out` can be a static buffer of
    /// `payload.len() + MAX_OVERHEAD` bytes.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] (checked before a counter is used),
    /// [`Error::InvalidTopic`], [`Error::TopicTooLong`],
    /// [`Error::CounterExhausted`], [`Error::CounterStore`].
    pub fn seal_into(&mut self, topic: &str, payload: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let ts = self.clock.map(|c| c());
        self.seal_into_at(topic, ts, payload, out)
    }

    /// [`Sealer::seal_into`] with an explicit timestamp (or none), for
    /// callers that keep time themselves.
    ///
    /// # Errors
    /// As [`Sealer::seal_into`].
    pub fn seal_into_at(
        &mut self,
        topic: &str,
        timestamp: Option<u64>,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.seal_with(topic, timestamp, payload.len(), out, |body| {
            body.copy_from_slice(payload);
            Ok(())
        })
    }

    /// Seals in place: `buf[..payload_len]` holds the payload; on success
    /// `buf[..n]` holds the envelope. `buf` needs room for the overhead
    /// ([`Sealer::envelope_len`] bytes in all).
    ///
    /// # Errors
    /// As [`Sealer::seal_into`].
    pub fn seal_in_place(&mut self, topic: &str, buf: &mut [u8], payload_len: usize) -> Result<usize, Error> {
        let ts = self.clock.map(|c| c());
        self.seal_in_place_at(topic, ts, buf, payload_len)
    }

    /// [`Sealer::seal_in_place`] with an explicit timestamp (or none).
    ///
    /// # Errors
    /// As [`Sealer::seal_into`].
    pub fn seal_in_place_at(
        &mut self,
        topic: &str,
        ts: Option<u64>,
        buf: &mut [u8],
        payload_len: usize,
    ) -> Result<usize, Error> {
        let (hl, topic) = self.check(topic, ts, payload_len, buf.len())?;
        // The counter is taken before the payload moves, so a failing store
        // leaves `buf` exactly as the caller wrote it.
        let counter = self.grant.take_from(&mut self.store)?;
        // Make room for the header, then seal the body where it now lies.
        buf.copy_within(..payload_len, hl);
        self.seal_prepared(topic, ts, counter, payload_len, buf)
    }

    /// Serializes `value` with postcard and seals it into `out`, with no
    /// allocation. The receiver uses [`crate::Opener::open_value`].
    ///
    /// # Errors
    /// [`Error::Encode`] if the value does not fit `out` or cannot be
    /// serialized (no counter is used then),
    /// and as [`Sealer::seal_into`].
    pub fn seal_value_into<T: serde::Serialize + ?Sized>(
        &mut self,
        topic: &str,
        value: &T,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let len = postcard::experimental::serialized_size(value).map_err(|_| Error::Encode)?;
        let ts = self.clock.map(|c| c());
        self.seal_with(topic, ts, len, out, |body| {
            postcard::to_slice(value, body).map(|_| ()).map_err(|_| Error::Encode)
        })
    }

    /// Writes the header, lets `fill` write the body, seals. `body_len` is
    /// the exact body length `fill` writes.
    fn seal_with(
        &mut self,
        topic: &str,
        timestamp: Option<u64>,
        body_len: usize,
        out: &mut [u8],
        fill: impl FnOnce(&mut [u8]) -> Result<(), Error>,
    ) -> Result<usize, Error> {
        let (hl, topic) = self.check(topic, timestamp, body_len, out.len())?;
        fill(&mut out[hl..hl + body_len])?;
        let counter = self.grant.take_from(&mut self.store)?;
        self.seal_prepared(topic, timestamp, counter, body_len, out)
    }

    /// Everything that can be checked before a counter is used: the topic
    /// name and the room for the envelope (`room`, which for sealing in
    /// place must also hold the payload). Returns the header length.
    fn check<'t>(
        &self,
        topic: &'t str,
        timestamp: Option<u64>,
        body_len: usize,
        room: usize,
    ) -> Result<(usize, CheckedTopic<'t>), Error> {
        let topic = BoundTopic::exact(topic).checked()?;
        let header = self.header(self.grant.peek()?, timestamp);
        let needed = header.envelope_len(body_len);
        if room < needed {
            return Err(Error::BufferTooSmall { needed });
        }
        Ok((header.encoded_len(), topic))
    }

    /// `out` holds the body after the header's place and is long enough
    /// (see [`Sealer::check`]); `counter` was just taken: write the header,
    /// seal, append the tag.
    fn seal_prepared(
        &mut self,
        topic: CheckedTopic<'_>,
        timestamp: Option<u64>,
        counter: u64,
        body_len: usize,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let header = self.header(counter, timestamp);
        let hl = header.encode(out)?;
        let mut aad = Aad::new();
        let aad = aad.build(&out[..hl], topic);
        let (body, rest) = out[hl..].split_at_mut(body_len);
        let tag = self.key.seal(counter, aad, body)?;
        rest[..TAG_LEN].copy_from_slice(&tag);
        Ok(hl + body_len + TAG_LEN)
    }

    /// Seals `payload` for `topic` into a new `Vec`.
    ///
    /// # Errors
    /// As [`Sealer::seal_into`], but never [`Error::BufferTooSmall`].
    #[cfg(feature = "alloc")]
    pub fn seal_to_vec(&mut self, topic: &str, payload: &[u8]) -> Result<alloc::vec::Vec<u8>, Error> {
        let mut out = alloc::vec![0u8; self.envelope_len(payload.len())?];
        let n = self.seal_into(topic, payload, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Serializes `value` with postcard and seals it into a new `Vec`.
    ///
    /// # Errors
    /// [`Error::Encode`], and as [`Sealer::seal_to_vec`].
    #[cfg(feature = "alloc")]
    pub fn seal_value_to_vec<T: serde::Serialize + ?Sized>(
        &mut self,
        topic: &str,
        value: &T,
    ) -> Result<alloc::vec::Vec<u8>, Error> {
        let len = postcard::experimental::serialized_size(value).map_err(|_| Error::Encode)?;
        let mut out = alloc::vec![0u8; self.envelope_len(len)?];
        let n = self.seal_value_into(topic, value, &mut out)?;
        out.truncate(n);
        Ok(out)
    }
}
