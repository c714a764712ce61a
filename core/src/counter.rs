//! Message counters that survive reboots: the one rule for when a counter
//! may be used.
//!
//! The counter is the nonce: reusing one under the same subkey breaks
//! ChaCha20-Poly1305 completely. The rule, the same for every store and
//! every binding:
//!
//! 1. A store persists a *limit*: every counter below it may already have
//!    been used.
//! 2. A sender resumes at the persisted limit (or at a clock floor above
//!    it). A store that holds **no state** is an error
//!    ([`StoreError::Missing`]), never "start at 0", unless a clock floor is
//!    given: a lost counter file must not silently reuse nonces.
//! 3. The sealer may use counters up to a *granted* limit. Before it uses
//!    counter `c` at or above the granted limit, a driver durably persists a
//!    new limit `c + block` and only then grants it ([`CounterGrant`]). A
//!    crash skips the rest of a block, never reuses a counter.
//! 4. Every persist is a compare-and-swap against the value this sealer
//!    last read or wrote ([`Reservation::current`]): a store that holds
//!    anything else has a second writer, and sealing fails
//!    ([`StoreError::Conflict`]).
//! 5. Counters never wrap: the last usable value is `u64::MAX - 1`; after
//!    it sealing returns [`Error::CounterExhausted`].
//!
//! Synchronous stores ([`CounterStore`]: a file, NOR flash, C callbacks)
//! are driven by the [`crate::Sealer`] itself. Asynchronous ones (IndexedDB,
//! a Node file) drive [`crate::Sealer::reservation_needed`] and
//! [`crate::Sealer::grant`] over [`ExternalCounterStore`].

use crate::error::StoreError;
use crate::Error;

/// Default number of counters reserved per store write: the same in every
/// binding. Larger blocks mean fewer writes (flash wear, fsync latency) and
/// more counters skipped after a crash; any value is safe.
pub const DEFAULT_RESERVATION_BLOCK: u64 = 1024;

/// Counters per millisecond of the clock floor: a sender that starts from
/// [`clock_floor`] starts at `unix_millis * 1024`.
pub const CLOCK_FLOOR_PER_MILLI: u64 = 1024;

/// The clock floor for a Unix time in milliseconds: `unix_millis * 1024`.
///
/// For deployments that cannot keep counter state (a container without a
/// volume, a browser's private window): starting at or above this value
/// stays above every counter used before, unless the clock went back or
/// the sender averaged more than 1024 messages per millisecond since its
/// first message. The price is size: in 2026 the floor is about 2^51, so
/// the counter varint takes 8 bytes instead of 1 to 3.
#[must_use]
pub const fn clock_floor(unix_millis: u64) -> u64 {
    unix_millis.saturating_mul(CLOCK_FLOOR_PER_MILLI)
}

/// Durable storage for a sender's counter limit, driven synchronously by
/// the [`crate::Sealer`].
///
/// Implementations must make [`CounterStore::persist`] durable before it
/// returns `Ok` (written and flushed to the medium, e.g. `fsync`), atomic
/// (after a crash at any point, [`CounterStore::load`] returns either the
/// old or the new limit), and a compare-and-swap (see
/// [`CounterStore::persist`]).
pub trait CounterStore {
    /// The persisted limit, or `None` for a store that holds no state.
    ///
    /// `None` makes the sealer refuse to start ([`StoreError::Missing`])
    /// unless it was given a clock floor. A store for a new (key, sender id)
    /// is created explicitly and holds 0.
    ///
    /// # Errors
    /// [`StoreError::Read`] or [`StoreError::Corrupt`]; the sealer then
    /// refuses to seal. Never `Ok(None)` for a store that could not be read.
    fn load(&mut self) -> Result<Option<u64>, StoreError>;

    /// Durably replaces the stored limit `current` (what this sealer last
    /// loaded or persisted; `None` when the store held nothing) with
    /// `limit`, which is always larger.
    ///
    /// # Errors
    /// [`StoreError::Conflict`], writing nothing, when the store does not
    /// hold `current` (a second writer) or would be lowered;
    /// [`StoreError::Write`] when the limit is not durably recorded. Either
    /// way the sealer refuses to seal.
    fn persist(&mut self, current: Option<u64>, limit: u64) -> Result<(), StoreError>;
}

impl<T: CounterStore + ?Sized> CounterStore for &mut T {
    fn load(&mut self) -> Result<Option<u64>, StoreError> {
        (**self).load()
    }
    fn persist(&mut self, current: Option<u64>, limit: u64) -> Result<(), StoreError> {
        (**self).persist(current, limit)
    }
}

/// A boxed store, for code that picks the store at run time (a counter file
/// or a leased sender id) or keeps sealers of different stores in one place:
/// `Sealer<Box<dyn CounterStore + Send>>`, made with [`crate::Sealer::boxed`].
#[cfg(feature = "alloc")]
impl<T: CounterStore + ?Sized> CounterStore for alloc::boxed::Box<T> {
    fn load(&mut self) -> Result<Option<u64>, StoreError> {
        (**self).load()
    }
    fn persist(&mut self, current: Option<u64>, limit: u64) -> Result<(), StoreError> {
        (**self).persist(current, limit)
    }
}

/// A counter store in memory: **for tests and volatile senders only**.
///
/// It forgets everything when the process ends. Use it only where the
/// sender's key or sender id never outlives the process (for example a key
/// freshly generated at start-up and distributed to receivers), or in tests.
/// A device that reboots with the same key and sender id and an in-memory
/// store reuses counters: receivers reject its messages as replays, and
/// with ChaCha20-Poly1305 the nonce reuse exposes plaintext.
#[derive(Clone, Debug)]
pub struct MemoryCounterStore {
    limit: Option<u64>,
}

impl Default for MemoryCounterStore {
    fn default() -> Self {
        MemoryCounterStore::new()
    }
}

impl MemoryCounterStore {
    /// A store for a new sender: it holds 0.
    #[must_use]
    pub const fn new() -> Self {
        MemoryCounterStore { limit: Some(0) }
    }

    /// A store whose first counter will be `first`.
    #[must_use]
    pub const fn starting_at(first: u64) -> Self {
        MemoryCounterStore { limit: Some(first) }
    }

    /// A store that holds no state, as after a lost file: a sealer over it
    /// refuses to start unless given a clock floor.
    #[must_use]
    pub const fn empty() -> Self {
        MemoryCounterStore { limit: None }
    }

    /// The limit last persisted.
    #[must_use]
    pub const fn limit(&self) -> Option<u64> {
        self.limit
    }
}

impl CounterStore for MemoryCounterStore {
    fn load(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(self.limit)
    }
    fn persist(&mut self, current: Option<u64>, limit: u64) -> Result<(), StoreError> {
        check_swap(self.limit, current, limit)?;
        self.limit = Some(limit);
        Ok(())
    }
}

/// The compare-and-swap rule of [`CounterStore::persist`], for stores that
/// read their current value first: `stored` must be `current` and `limit`
/// must be above it.
///
/// # Errors
/// [`StoreError::Conflict`] otherwise.
pub fn check_swap(stored: Option<u64>, current: Option<u64>, limit: u64) -> Result<(), StoreError> {
    if stored != current || stored.is_some_and(|s| limit <= s) {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

/// The store of a sealer whose counters are persisted by an external,
/// asynchronous driver: the sealer never persists by itself, and seals only
/// with counters the driver granted ([`crate::Sealer::grant`]). Without a
/// grant, sealing fails with [`StoreError::NotGranted`].
///
/// The driver loop (the npm package's IndexedDB and Node file stores):
///
/// ```
/// use mqseal::{ExternalCounterStore, Key, Sealer, Suite};
///
/// let key = Key::from_bytes(1, [7; 32]);
/// // The driver read the stored limit (here 0) before building the sealer.
/// let mut sealer = Sealer::new(&key, 3, Suite::ChaCha20Poly1305, ExternalCounterStore::resume(Some(0)))?;
/// if let Some(r) = sealer.reservation_needed(0) {
///     // ... durably compare-and-swap the stored limit from r.current to r.limit ...
///     sealer.grant(r)?;
/// }
/// let envelope = sealer.seal_to_vec("t", b"x")?;
/// # Ok::<(), mqseal::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ExternalCounterStore {
    stored: Option<u64>,
}

impl ExternalCounterStore {
    /// A store whose driver read `stored` (`None`: nothing stored).
    #[must_use]
    pub const fn resume(stored: Option<u64>) -> Self {
        ExternalCounterStore { stored }
    }
}

impl CounterStore for ExternalCounterStore {
    fn load(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(self.stored)
    }
    fn persist(&mut self, _current: Option<u64>, _limit: u64) -> Result<(), StoreError> {
        Err(StoreError::NotGranted)
    }
}

/// A reservation to persist: replace `current` by `limit` in the store
/// (compare-and-swap), then grant it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reservation {
    /// The value the store must hold now (`None`: nothing stored yet).
    pub current: Option<u64>,
    /// The new limit to persist.
    pub limit: u64,
}

/// Which counters a sealer may use: the in-memory side of block
/// reservation, and the only code that decides whether a counter may be
/// used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterGrant {
    /// The counter the next take returns.
    next: u64,
    /// Counters in `next..limit` are durably reserved.
    limit: u64,
    /// What the store holds, as far as this sealer knows.
    stored: Option<u64>,
    block: u64,
}

impl CounterGrant {
    /// Resumes from what a store holds, and optionally a clock floor
    /// ([`clock_floor`]). Nothing is granted yet.
    ///
    /// # Errors
    /// [`Error::CounterStore`] with [`StoreError::Missing`] when the store
    /// holds nothing and no floor is given.
    pub fn resume(stored: Option<u64>, floor: Option<u64>) -> Result<Self, Error> {
        let next = match (stored, floor) {
            (None, None) => return Err(Error::CounterStore(StoreError::Missing)),
            (s, f) => s.unwrap_or(0).max(f.unwrap_or(0)),
        };
        Ok(CounterGrant { next, limit: next, stored, block: DEFAULT_RESERVATION_BLOCK })
    }

    /// Counters reserved per persist.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero.
    pub fn set_block(&mut self, block: u64) -> Result<(), Error> {
        if block == 0 {
            return Err(Error::InvalidConfig);
        }
        self.block = block;
        Ok(())
    }

    /// The counter the next message will carry.
    ///
    /// # Errors
    /// [`Error::CounterExhausted`] when no counter is left.
    pub const fn peek(&self) -> Result<u64, Error> {
        if self.next == u64::MAX {
            Err(Error::CounterExhausted)
        } else {
            Ok(self.next)
        }
    }

    /// Counters granted and not used yet.
    #[must_use]
    pub const fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.next)
    }

    /// The end of the granted range.
    #[must_use]
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// The reservation to persist when `remaining() <= ahead` (0: only when
    /// nothing is left), or `None`. Drivers that persist asynchronously
    /// ask ahead so that sealing does not wait.
    #[must_use]
    pub fn reservation_needed(&self, ahead: u64) -> Option<Reservation> {
        if self.next == u64::MAX || self.remaining() > ahead {
            return None;
        }
        let from = self.next.max(self.limit);
        Some(Reservation { current: self.stored, limit: from.saturating_add(self.block) })
    }

    /// Records that `r` (from [`CounterGrant::reservation_needed`]) is now
    /// durably persisted: counters below `r.limit` may be used.
    ///
    /// # Errors
    /// [`Error::CounterStore`] with [`StoreError::Conflict`] when `r` does
    /// not follow from this grant (its `current` is not what the store
    /// held, or it does not raise the limit).
    pub fn grant(&mut self, r: Reservation) -> Result<(), Error> {
        if r.current != self.stored || r.limit <= self.limit || r.limit <= self.next {
            return Err(Error::CounterStore(StoreError::Conflict));
        }
        self.stored = Some(r.limit);
        self.limit = r.limit;
        Ok(())
    }

    /// Uses the next granted counter.
    ///
    /// # Errors
    /// [`Error::CounterExhausted`]; [`Error::CounterStore`] with
    /// [`StoreError::NotGranted`] when no counter is granted.
    pub fn take(&mut self) -> Result<u64, Error> {
        let c = self.peek()?;
        if c >= self.limit {
            return Err(Error::CounterStore(StoreError::NotGranted));
        }
        self.next = c + 1;
        Ok(c)
    }

    /// Takes a counter, first persisting a reservation through `store` when
    /// none is left.
    pub(crate) fn take_from<S: CounterStore + ?Sized>(&mut self, store: &mut S) -> Result<u64, Error> {
        if let Some(r) = self.reservation_needed(0) {
            store.persist(r.current, r.limit).map_err(Error::CounterStore)?;
            self.grant(r)?;
        }
        self.take()
    }
}

/// The counter file's line starts with this (format in `docs/STATE.md`).
const COUNTER_FILE_MAGIC: &[u8] = b"mqseal-counter v1 ";

/// The longest counter file: `mqseal-counter v1 `, 20 digits and a newline.
pub const COUNTER_FILE_MAX_LEN: usize = COUNTER_FILE_MAGIC.len() + 20 + 1;

/// Writes the counter file's contents for `limit` into `out`
/// (`mqseal-counter v1 <limit>\n`, canonical decimal) and returns its
/// length. The one encoder of the format, for [`FileCounterStore`] and for
/// stores outside Rust (the C API's `mqseal_counter_file_encode`).
///
/// # Errors
/// [`Error::BufferTooSmall`] when `out` is shorter than the line
/// ([`COUNTER_FILE_MAX_LEN`] always suffices).
pub fn encode_counter_file(limit: u64, out: &mut [u8]) -> Result<usize, Error> {
    let mut digits = [0u8; 20];
    let mut n = 0;
    let mut v = limit;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = COUNTER_FILE_MAGIC.len() + n + 1;
    let dst = out.get_mut(..len).ok_or(Error::BufferTooSmall { needed: len })?;
    let (magic, rest) = dst.split_at_mut(COUNTER_FILE_MAGIC.len());
    magic.copy_from_slice(COUNTER_FILE_MAGIC);
    for (d, s) in rest.iter_mut().zip(digits[..n].iter().rev()) {
        *d = *s;
    }
    rest[n] = b'\n';
    Ok(len)
}

/// Reads the counter file's contents: the limit of
/// `mqseal-counter v1 <limit>\n`.
///
/// # Errors
/// [`StoreError::Corrupt`] for anything else (another prefix, a sign,
/// leading zeros, no final newline, trailing bytes, beyond `u64`).
pub fn decode_counter_file(bytes: &[u8]) -> Result<u64, StoreError> {
    let n = bytes.strip_prefix(COUNTER_FILE_MAGIC).and_then(|r| r.strip_suffix(b"\n")).ok_or(StoreError::Corrupt)?;
    // Canonical decimal only: no sign, no leading zeros.
    if n.is_empty() || n.len() > 20 || !n.iter().all(u8::is_ascii_digit) || (n.len() > 1 && n[0] == b'0') {
        return Err(StoreError::Corrupt);
    }
    n.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))).ok_or(StoreError::Corrupt)
}

#[cfg(all(feature = "std", any(unix, windows)))]
pub use file::FileCounterStore;

#[cfg(all(feature = "std", any(unix, windows)))]
mod file {
    use super::{check_swap, decode_counter_file, encode_counter_file, CounterStore, StoreError, COUNTER_FILE_MAX_LEN};
    #[cfg(test)]
    use crate::durable::Crash;
    use crate::durable::{self, StateFileError, StateLock};
    use std::io;
    use std::path::{Path, PathBuf};

    const WHAT: &str = "counter file";

    /// A counter store in a file (format in `docs/STATE.md`: one line,
    /// `mqseal-counter v1 <limit>`).
    ///
    /// * Exclusive: the store holds an OS lock on `<file>.lock` for its
    ///   lifetime. A second store on the same file, in this process or
    ///   another, fails at [`FileCounterStore::open`] with
    ///   [`StoreError::Locked`] and the holder's pid.
    /// * Compare-and-swap: every persist first re-reads the file and fails
    ///   with [`StoreError::Conflict`] when it does not hold the value this
    ///   store last read or wrote (a writer that ignored the lock).
    /// * Atomic: the new limit goes to a temporary file, is flushed with
    ///   `fsync`, renamed over the file, and the directory is flushed.
    /// * Never created by accident: [`FileCounterStore::open`] on a missing
    ///   file gives a store that holds no state, and the sealer refuses it
    ///   ([`StoreError::Missing`]) unless it starts from a clock floor.
    ///   [`FileCounterStore::create`] makes the file for a new sender.
    ///
    /// Use one file per (key, sender id), or one per sender id when every
    /// key of the sender shares it (counters then grow across key
    /// rotations, which is allowed). Never copy the file to another device
    /// or restore it from a backup: an older file means reused counters.
    #[derive(Debug)]
    pub struct FileCounterStore {
        path: PathBuf,
        _lock: StateLock,
        #[cfg(test)]
        pub(crate) crash_at: Option<Crash>,
        last_io_error: Option<io::ErrorKind>,
    }

    impl FileCounterStore {
        /// Opens the counter file at `path` and takes its lock. The file
        /// may be missing: the store then holds no state, which a sealer
        /// refuses unless it has a clock floor.
        ///
        /// # Errors
        /// [`StoreError::Locked`] (with the holder's pid) when another
        /// store holds the file.
        pub fn open(path: impl AsRef<Path>) -> Result<Self, StateFileError> {
            let path = path.as_ref().to_path_buf();
            let lock = StateLock::acquire(WHAT, &path)?;
            Ok(FileCounterStore {
                path,
                _lock: lock,
                #[cfg(test)]
                crash_at: None,
                last_io_error: None,
            })
        }

        /// Creates the counter file of a new (key, sender id), holding 0,
        /// and opens it. Refuses an existing file: its counters may have
        /// been used.
        ///
        /// # Errors
        /// [`StoreError::Conflict`] when the file exists,
        /// [`StoreError::Write`] when it cannot be written, and as
        /// [`FileCounterStore::open`].
        pub fn create(path: impl AsRef<Path>) -> Result<Self, StateFileError> {
            let mut store = FileCounterStore::open(path)?;
            match store.load() {
                Ok(None) => {}
                Ok(Some(_)) | Err(StoreError::Corrupt) => {
                    return Err(StateFileError::new(WHAT, &store.path, StoreError::Conflict));
                }
                Err(kind) => return Err(StateFileError::new(WHAT, &store.path, kind)),
            }
            store.write(0).map_err(|kind| StateFileError {
                io: store.last_io_error,
                ..StateFileError::new(WHAT, &store.path, kind)
            })?;
            Ok(store)
        }

        /// The file's path.
        #[must_use]
        pub fn path(&self) -> &Path {
            &self.path
        }

        /// The kind of the last I/O error, for diagnostics after a
        /// [`StoreError`].
        #[must_use]
        pub fn last_io_error(&self) -> Option<io::ErrorKind> {
            self.last_io_error
        }

        /// An error naming this file, for reports.
        #[must_use]
        pub fn error(&self, kind: StoreError) -> StateFileError {
            StateFileError { io: self.last_io_error, ..StateFileError::new(WHAT, &self.path, kind) }
        }

        fn write(&mut self, limit: u64) -> Result<(), StoreError> {
            #[cfg(test)]
            let crash = self.crash_at;
            #[cfg(not(test))]
            let crash = None;
            let mut line = [0u8; COUNTER_FILE_MAX_LEN];
            let len = encode_counter_file(limit, &mut line).map_err(|_| StoreError::Write)?;
            durable::replace(&self.path, &line[..len], crash).map_err(|e| {
                self.last_io_error = Some(e.kind());
                StoreError::Write
            })
        }
    }

    impl CounterStore for FileCounterStore {
        fn load(&mut self) -> Result<Option<u64>, StoreError> {
            match durable::read(&self.path) {
                Ok(None) => Ok(None),
                Ok(Some(bytes)) => decode_counter_file(&bytes).map(Some),
                Err(e) => {
                    self.last_io_error = Some(e.kind());
                    Err(StoreError::Read)
                }
            }
        }

        fn persist(&mut self, current: Option<u64>, limit: u64) -> Result<(), StoreError> {
            let stored = self.load()?;
            check_swap(stored, current, limit)?;
            self.write(limit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    #[allow(unused_imports)]
    use std::{format, prelude::v1::*, vec};

    fn take(g: &mut CounterGrant, s: &mut impl CounterStore) -> Result<u64, Error> {
        g.take_from(s)
    }

    #[test]
    fn reserves_before_use_and_resumes_at_limit() {
        let mut store = MemoryCounterStore::new();
        let mut g = CounterGrant::resume(store.load().unwrap(), None).unwrap();
        g.set_block(10).unwrap();
        assert_eq!(take(&mut g, &mut store), Ok(0));
        assert_eq!(take(&mut g, &mut store), Ok(1));
        assert_eq!(store.limit(), Some(10));
        let mut g = CounterGrant::resume(store.load().unwrap(), None).unwrap();
        assert_eq!(take(&mut g, &mut store), Ok(10));
    }

    #[test]
    fn no_state_is_refused_unless_floored() {
        assert_eq!(CounterGrant::resume(None, None), Err(Error::CounterStore(StoreError::Missing)));
        let g = CounterGrant::resume(None, Some(clock_floor(1_700_000_000_000))).unwrap();
        assert_eq!(g.peek(), Ok(1_700_000_000_000 * 1024));
        // A floor never lowers a stored limit.
        let g = CounterGrant::resume(Some(u64::MAX - 5), Some(7)).unwrap();
        assert_eq!(g.peek(), Ok(u64::MAX - 5));
    }

    #[test]
    fn never_wraps() {
        let mut store = MemoryCounterStore::starting_at(u64::MAX - 2);
        let mut g = CounterGrant::resume(store.load().unwrap(), None).unwrap();
        assert_eq!(take(&mut g, &mut store), Ok(u64::MAX - 2));
        assert_eq!(take(&mut g, &mut store), Ok(u64::MAX - 1));
        assert_eq!(take(&mut g, &mut store), Err(Error::CounterExhausted));
        assert_eq!(take(&mut g, &mut store), Err(Error::CounterExhausted));
    }

    #[test]
    fn grants_follow_the_store_and_nothing_else() {
        let mut g = CounterGrant::resume(Some(5), None).unwrap();
        assert_eq!(g.take(), Err(Error::CounterStore(StoreError::NotGranted)));
        let r = g.reservation_needed(0).unwrap();
        assert_eq!(r, Reservation { current: Some(5), limit: 5 + DEFAULT_RESERVATION_BLOCK });
        // A reservation that does not follow from this grant is refused.
        let stale = Reservation { current: Some(4), limit: 2000 };
        assert_eq!(g.grant(stale), Err(Error::CounterStore(StoreError::Conflict)));
        let lower = Reservation { current: Some(5), limit: 5 };
        assert_eq!(g.grant(lower), Err(Error::CounterStore(StoreError::Conflict)));
        g.grant(r).unwrap();
        // Granting twice is a conflict: the store no longer holds 5.
        assert_eq!(g.grant(r), Err(Error::CounterStore(StoreError::Conflict)));
        assert_eq!(g.take(), Ok(5));
        assert_eq!(g.remaining(), DEFAULT_RESERVATION_BLOCK - 1);
        // Asking ahead: the next block starts at the current limit.
        let ahead = g.reservation_needed(DEFAULT_RESERVATION_BLOCK).unwrap();
        assert_eq!(ahead.current, Some(5 + DEFAULT_RESERVATION_BLOCK));
        assert_eq!(ahead.limit, 5 + 2 * DEFAULT_RESERVATION_BLOCK);
        assert_eq!(g.reservation_needed(10), None);
    }

    #[test]
    fn memory_store_is_a_compare_and_swap() {
        let mut s = MemoryCounterStore::starting_at(10);
        assert_eq!(s.persist(Some(9), 20), Err(StoreError::Conflict));
        assert_eq!(s.persist(Some(10), 10), Err(StoreError::Conflict));
        assert_eq!(s.persist(None, 20), Err(StoreError::Conflict));
        s.persist(Some(10), 20).unwrap();
        assert_eq!(s.limit(), Some(20));
    }

    struct FailingStore;
    impl CounterStore for FailingStore {
        fn load(&mut self) -> Result<Option<u64>, StoreError> {
            Ok(Some(0))
        }
        fn persist(&mut self, _: Option<u64>, _: u64) -> Result<(), StoreError> {
            Err(StoreError::Write)
        }
    }

    #[test]
    fn failing_store_fails_sealing() {
        let mut g = CounterGrant::resume(Some(0), None).unwrap();
        assert_eq!(take(&mut g, &mut FailingStore), Err(Error::CounterStore(StoreError::Write)));
        assert_eq!(take(&mut g, &mut FailingStore), Err(Error::CounterStore(StoreError::Write)));
    }

    /// Crash at every step of every file write: restart from what is on
    /// disk and check that no counter is ever handed out twice.
    #[cfg(any(unix, windows))]
    #[test]
    fn file_store_crash_at_every_point_never_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr");
        let block = 3;
        for crash_point in crate::durable::CRASH_POINTS {
            for crash_on_write in 1..4 {
                let _ = std::fs::remove_file(&path);
                let mut used = HashSet::new();
                // Run 1: crash on the n-th persist.
                {
                    let mut store = FileCounterStore::create(&path).unwrap();
                    let mut g = CounterGrant::resume(store.load().unwrap(), None).unwrap();
                    g.set_block(block).unwrap();
                    let mut writes = 0;
                    loop {
                        if g.remaining() == 0 {
                            writes += 1;
                            if writes == crash_on_write {
                                store.crash_at = Some(crash_point);
                                assert!(take(&mut g, &mut store).is_err());
                                break;
                            }
                        }
                        let v = take(&mut g, &mut store).unwrap();
                        assert!(used.insert(v), "reused {v}");
                    }
                }
                // Run 2: restart from disk.
                let mut store = FileCounterStore::open(&path).unwrap();
                let mut g = CounterGrant::resume(store.load().unwrap(), None).unwrap();
                g.set_block(block).unwrap();
                for _ in 0..10 {
                    let v = take(&mut g, &mut store).unwrap();
                    assert!(used.insert(v), "reused {v} after crash at {crash_point:?}, write {crash_on_write}");
                }
            }
        }
    }

    #[cfg(any(unix, windows))]
    #[test]
    fn file_store_round_trip_corruption_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr");
        {
            let mut s = FileCounterStore::open(&path).unwrap();
            assert_eq!(s.load(), Ok(None));
        }
        let mut s = FileCounterStore::create(&path).unwrap();
        assert_eq!(s.load(), Ok(Some(0)));
        s.persist(Some(0), 42).unwrap();
        assert_eq!(s.load(), Ok(Some(42)));
        // A writer that bypassed the lock: the next persist sees it.
        std::fs::write(&path, "mqseal-counter v1 50\n").unwrap();
        assert_eq!(s.persist(Some(42), 100), Err(StoreError::Conflict));
        assert_eq!(s.load(), Ok(Some(50)));
        for bad in ["garbage", "mqseal-counter v1 007\n", "mqseal-counter v1 -1\n", "mqseal-counter v1 1"] {
            std::fs::write(&path, bad).unwrap();
            assert_eq!(s.load(), Err(StoreError::Corrupt), "{bad:?}");
        }
        drop(s);
        // create refuses an existing file.
        assert_eq!(FileCounterStore::create(&path).unwrap_err().kind, StoreError::Conflict);
        let mut bad = FileCounterStore::open(dir.path().join("no/such/dir/ctr"));
        assert!(bad.as_mut().is_err());
    }

    #[cfg(any(unix, windows))]
    #[test]
    fn file_store_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr");
        let a = FileCounterStore::create(&path).unwrap();
        let err = FileCounterStore::open(&path).unwrap_err();
        assert_eq!(err.kind, StoreError::Locked);
        assert_eq!(err.holder_pid, Some(std::process::id()));
        drop(a);
        FileCounterStore::open(&path).unwrap();
    }

    #[test]
    fn the_counter_file_format() {
        let mut out = [0u8; COUNTER_FILE_MAX_LEN];
        for (limit, text) in [
            (0, "mqseal-counter v1 0\n"),
            (1024, "mqseal-counter v1 1024\n"),
            (u64::MAX, "mqseal-counter v1 18446744073709551615\n"),
        ] {
            let n = encode_counter_file(limit, &mut out).unwrap();
            assert_eq!(&out[..n], text.as_bytes());
            assert_eq!(decode_counter_file(text.as_bytes()), Ok(limit));
        }
        assert_eq!(encode_counter_file(u64::MAX, &mut out).unwrap(), COUNTER_FILE_MAX_LEN);
        assert_eq!(encode_counter_file(10, &mut out[..20]), Err(Error::BufferTooSmall { needed: 21 }));
        for bad in [
            "",
            "17\n",
            "mqseal-counter v1 \n",
            "mqseal-counter v1 017\n",
            "mqseal-counter v1 +1\n",
            "mqseal-counter v1 1",
            "mqseal-counter v1 1\n\n",
            "mqseal-counter v2 1\n",
            "mqseal-counter v1 18446744073709551616\n",
            "mqseal-counter v1 1 \n",
        ] {
            assert_eq!(decode_counter_file(bad.as_bytes()), Err(StoreError::Corrupt), "{bad:?}");
        }
    }
}
