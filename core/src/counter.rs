//! Message counters that survive reboots.
//!
//! The counter is the nonce: reusing one under the same subkey breaks
//! ChaCha20-Poly1305 completely. A [`CounterStore`] persists a *limit*:
//! every counter below it may already have been used. The sealer reserves
//! a block at a time: before it uses counter `c` it makes sure the persisted
//! limit is above `c`, writing `c + block` first when it is not. After a
//! crash or power loss it resumes at the persisted limit, so counters in the
//! unfinished block are skipped, never reused. A store that cannot persist
//! makes sealing fail.
//!
//! Counters never wrap: the last usable value is `u64::MAX - 1`; after it
//! sealing returns [`Error::CounterExhausted`].

use crate::error::StoreError;
use crate::Error;

/// Durable storage for a sender's counter reservation.
///
/// Implementations must make [`CounterStore::persist`] durable before it
/// returns `Ok` (written and flushed to the medium, e.g. `fsync`), and
/// atomic: after a crash at any point, [`CounterStore::load`] returns either
/// the old or the new limit, never something else.
pub trait CounterStore {
    /// The persisted limit, or `None` for a store that was never written.
    ///
    /// # Errors
    /// [`StoreError::Read`] or [`StoreError::Corrupt`]; the sealer then
    /// refuses to seal.
    fn load(&mut self) -> Result<Option<u64>, StoreError>;

    /// Durably records a new limit (always larger than the previous one).
    ///
    /// # Errors
    /// [`StoreError::Write`] when the limit is not durably recorded; the
    /// sealer then refuses to seal.
    fn persist(&mut self, limit: u64) -> Result<(), StoreError>;
}

impl<T: CounterStore + ?Sized> CounterStore for &mut T {
    fn load(&mut self) -> Result<Option<u64>, StoreError> {
        (**self).load()
    }
    fn persist(&mut self, limit: u64) -> Result<(), StoreError> {
        (**self).persist(limit)
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
#[derive(Clone, Debug, Default)]
pub struct MemoryCounterStore {
    limit: Option<u64>,
}

impl MemoryCounterStore {
    /// A store that starts counting at 0.
    #[must_use]
    pub const fn new() -> Self {
        MemoryCounterStore { limit: None }
    }

    /// A store whose first counter will be `first`.
    #[must_use]
    pub const fn starting_at(first: u64) -> Self {
        MemoryCounterStore { limit: Some(first) }
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
    fn persist(&mut self, limit: u64) -> Result<(), StoreError> {
        self.limit = Some(limit);
        Ok(())
    }
}

/// Default number of counters reserved per store write.
pub const DEFAULT_RESERVATION_BLOCK: u64 = 1024;

/// The in-memory side of block reservation, over a store.
#[derive(Debug)]
pub(crate) struct Counters<S> {
    store: S,
    next: u64,
    limit: u64,
    block: u64,
}

impl<S: CounterStore> Counters<S> {
    pub(crate) fn new(mut store: S, block: u64) -> Result<Self, Error> {
        if block == 0 {
            return Err(Error::InvalidConfig);
        }
        let start = store.load().map_err(Error::CounterStore)?.unwrap_or(0);
        // Nothing is reserved yet: the first `take` persists before use.
        Ok(Counters { store, next: start, limit: start, block })
    }

    /// The counter the next `take` will return.
    pub(crate) fn peek(&self) -> Result<u64, Error> {
        if self.next == u64::MAX {
            Err(Error::CounterExhausted)
        } else {
            Ok(self.next)
        }
    }

    /// Returns a counter that is durably reserved and never returned before.
    pub(crate) fn take(&mut self) -> Result<u64, Error> {
        let c = self.peek()?;
        if c >= self.limit {
            let new_limit = c.saturating_add(self.block);
            self.store.persist(new_limit).map_err(Error::CounterStore)?;
            self.limit = new_limit;
        }
        self.next = c + 1;
        Ok(c)
    }

    pub(crate) fn set_block(&mut self, block: u64) -> Result<(), Error> {
        if block == 0 {
            return Err(Error::InvalidConfig);
        }
        self.block = block;
        Ok(())
    }

    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    pub(crate) fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub(crate) fn into_store(self) -> S {
        self.store
    }
}

#[cfg(feature = "std")]
pub use file::FileCounterStore;

#[cfg(feature = "std")]
mod file {
    use super::{CounterStore, StoreError};
    use std::format;
    use std::fs;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    const MAGIC: &str = "mqseal-counter v1 ";

    /// A counter store in a file, replaced atomically: the new limit is
    /// written to a temporary file beside it, flushed with `fsync`, renamed
    /// over the old file, and the directory is flushed too. A crash at any
    /// point leaves either the old or the new file.
    ///
    /// The file holds one line, `mqseal-counter v1 <limit>`. Use one file
    /// per (key, sender id), or one per sender id when every key of the
    /// sender shares it (counters then grow across key rotations, which is
    /// allowed). Never copy the file to another device or restore it from a
    /// backup: an older file means reused counters.
    #[derive(Debug)]
    pub struct FileCounterStore {
        path: PathBuf,
        tmp: PathBuf,
        #[cfg(test)]
        pub(crate) crash_at: Option<u8>,
        last_io_error: Option<std::io::ErrorKind>,
    }

    impl FileCounterStore {
        /// A store at `path`; the file is created on the first reservation.
        pub fn new(path: impl AsRef<Path>) -> Self {
            let path = path.as_ref().to_path_buf();
            let mut tmp = path.clone().into_os_string();
            tmp.push(".tmp");
            FileCounterStore {
                path,
                tmp: PathBuf::from(tmp),
                #[cfg(test)]
                crash_at: None,
                last_io_error: None,
            }
        }

        /// The file's path.
        #[must_use]
        pub fn path(&self) -> &Path {
            &self.path
        }

        /// The kind of the last I/O error, for diagnostics after a
        /// [`StoreError`].
        #[must_use]
        pub fn last_io_error(&self) -> Option<std::io::ErrorKind> {
            self.last_io_error
        }

        fn io<T>(&mut self, r: std::io::Result<T>, e: StoreError) -> Result<T, StoreError> {
            r.map_err(|err| {
                self.last_io_error = Some(err.kind());
                e
            })
        }

        /// Test hook: pretend the process died before step `step` of a write.
        #[cfg(test)]
        fn crashed(&self, step: u8) -> bool {
            self.crash_at == Some(step)
        }
        #[cfg(not(test))]
        #[allow(clippy::unused_self)]
        fn crashed(&self, _step: u8) -> bool {
            false
        }
    }

    impl CounterStore for FileCounterStore {
        fn load(&mut self) -> Result<Option<u64>, StoreError> {
            let text = match fs::read_to_string(&self.path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => {
                    self.last_io_error = Some(e.kind());
                    return Err(StoreError::Read);
                }
            };
            let n = text.strip_prefix(MAGIC).and_then(|r| r.strip_suffix('\n')).ok_or(StoreError::Corrupt)?;
            n.parse::<u64>().map(Some).map_err(|_| StoreError::Corrupt)
        }

        fn persist(&mut self, limit: u64) -> Result<(), StoreError> {
            const CRASHED: Result<(), StoreError> = Err(StoreError::Write);
            let line = format!("{MAGIC}{limit}\n");
            let r = fs::File::create(&self.tmp);
            let mut f = self.io(r, StoreError::Write)?;
            if self.crashed(0) {
                // A torn write: half the line reaches the temporary file.
                let _ = f.write_all(&line.as_bytes()[..line.len() / 2]);
                return CRASHED;
            }
            let r = f.write_all(line.as_bytes());
            self.io(r, StoreError::Write)?;
            if self.crashed(1) {
                return CRASHED;
            }
            let r = f.sync_all();
            self.io(r, StoreError::Write)?;
            drop(f);
            if self.crashed(2) {
                return CRASHED;
            }
            let r = fs::rename(&self.tmp, &self.path);
            self.io(r, StoreError::Write)?;
            if self.crashed(3) {
                return CRASHED;
            }
            // Make the rename itself durable.
            if let Some(dir) = self.path.parent() {
                let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
                let r = fs::File::open(dir).and_then(|d| d.sync_all());
                self.io(r, StoreError::Write)?;
            }
            Ok(())
        }
    }

    /// Number of crash points `persist` has, for the crash tests.
    #[cfg(test)]
    pub(crate) const CRASH_POINTS: u8 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    #[allow(unused_imports)]
    use std::{format, prelude::v1::*, vec};

    #[test]
    fn reserves_before_use_and_resumes_at_limit() {
        let mut store = MemoryCounterStore::new();
        {
            let mut c = Counters::new(&mut store, 10).unwrap();
            assert_eq!(c.take(), Ok(0));
            assert_eq!(c.take(), Ok(1));
        }
        assert_eq!(store.limit(), Some(10));
        let mut c = Counters::new(&mut store, 10).unwrap();
        assert_eq!(c.take(), Ok(10));
    }

    #[test]
    fn never_wraps() {
        let mut c = Counters::new(MemoryCounterStore::starting_at(u64::MAX - 2), 1000).unwrap();
        assert_eq!(c.take(), Ok(u64::MAX - 2));
        assert_eq!(c.take(), Ok(u64::MAX - 1));
        assert_eq!(c.take(), Err(Error::CounterExhausted));
        assert_eq!(c.take(), Err(Error::CounterExhausted));
    }

    struct FailingStore;
    impl CounterStore for FailingStore {
        fn load(&mut self) -> Result<Option<u64>, StoreError> {
            Ok(None)
        }
        fn persist(&mut self, _: u64) -> Result<(), StoreError> {
            Err(StoreError::Write)
        }
    }

    #[test]
    fn failing_store_fails_sealing() {
        let mut c = Counters::new(FailingStore, 10).unwrap();
        assert_eq!(c.take(), Err(Error::CounterStore(StoreError::Write)));
        assert_eq!(c.take(), Err(Error::CounterStore(StoreError::Write)));
    }

    /// Crash at every step of every file write: restart from what is on
    /// disk and check that no counter is ever handed out twice.
    #[test]
    fn file_store_crash_at_every_point_never_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr");
        let block = 3;
        for crash_point in 0..file::CRASH_POINTS {
            for crash_on_write in 1..4 {
                let _ = std::fs::remove_file(&path);
                let mut used = HashSet::new();
                // Run 1: crash on the n-th persist.
                let mut store = FileCounterStore::new(&path);
                let mut writes = 0;
                'run: {
                    let mut c = Counters::new(&mut store, block).unwrap();
                    loop {
                        if c.next >= c.limit {
                            writes += 1;
                            if writes == crash_on_write {
                                c.store.crash_at = Some(crash_point);
                                let _ = c.take();
                                break 'run;
                            }
                        }
                        let v = c.take().unwrap();
                        assert!(used.insert(v), "reused {v}");
                    }
                }
                // Run 2: restart from disk.
                let mut c = Counters::new(FileCounterStore::new(&path), block).unwrap();
                for _ in 0..10 {
                    let v = c.take().unwrap();
                    assert!(used.insert(v), "reused {v} after crash at point {crash_point}, write {crash_on_write}");
                }
            }
        }
    }

    #[test]
    fn file_store_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr");
        let mut s = FileCounterStore::new(&path);
        assert_eq!(s.load(), Ok(None));
        s.persist(42).unwrap();
        assert_eq!(s.load(), Ok(Some(42)));
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(s.load(), Err(StoreError::Corrupt));
        let mut bad = FileCounterStore::new(dir.path().join("no/such/dir/ctr"));
        assert_eq!(bad.persist(1), Err(StoreError::Write));
        assert_eq!(bad.last_io_error(), Some(std::io::ErrorKind::NotFound));
    }
}
