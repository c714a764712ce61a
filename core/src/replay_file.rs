//! Replay state in a file, so that a receiver restart does not accept again
//! what it accepted before (format in `docs/STATE.md`).
//!
//! ```text
//! "mqseal-replay v2\n"        17 bytes, magic and version
//! u32 LE                      record count
//! count records               SenderSnapshot::to_bytes, 52 + 16 × gaps bytes each
//! 32 bytes                    SHA-256 of everything before it
//! ```
//!
//! Version 1 files (`"mqseal-replay v1\n"`, records of 52 bytes: no gaps)
//! still load; saving always writes version 2.
//!
//! Same discipline as the counter file ([`crate::FileCounterStore`]): an
//! exclusive lock for the owner's lifetime, atomic replace with `fsync` of
//! the file and its directory.

use std::path::{Path, PathBuf};
use std::vec::Vec;

use sha2::{Digest, Sha256};

use crate::durable::{self, StateFileError, StateLock};
use crate::{OpenerWith, SenderSnapshot, SenderTable, StoreError};

const MAGIC: &[u8] = b"mqseal-replay v2\n";
/// Version 1: the same layout, every record without gaps.
const MAGIC_V1: &[u8] = b"mqseal-replay v1\n";
const WHAT: &str = "replay-state file";
const DIGEST_LEN: usize = 32;

/// A replay-state file, held exclusively while this value lives.
///
/// ```
/// use mqseal::{Key, Keyring, MemoryCounterStore, Opener, ReplayStateFile, Sealer, Suite};
///
/// let dir = tempfile::tempdir()?;
/// let key = Key::from_bytes(1, [7; 32]);
/// let mut sealer = Sealer::new(&key, 3, Suite::ChaCha20Poly1305, MemoryCounterStore::new())?;
/// let envelope = sealer.seal_to_vec("t", b"x")?;
///
/// let mut file = ReplayStateFile::open(dir.path().join("replay"))?;
/// let mut opener: Opener = Opener::new(Keyring::with_primary(key.clone())?);
/// opener.open_to_vec("t", &envelope)?;
/// file.save(&opener)?;
/// drop((opener, file));
///
/// // After a restart: the same envelope is still a duplicate.
/// let mut file = ReplayStateFile::open(dir.path().join("replay"))?;
/// let mut opener: Opener = Opener::new(Keyring::with_primary(key)?);
/// file.restore_into(&mut opener)?;
/// assert_eq!(opener.open_to_vec("t", &envelope), Err(mqseal::Error::Duplicate));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ReplayStateFile {
    path: PathBuf,
    _lock: StateLock,
}

/// What [`ReplayStateFile::restore_into`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Records merged into the opener.
    pub restored: usize,
    /// Records for key ids the opener's keyring no longer holds (retired
    /// keys), left out.
    pub unknown_key: usize,
}

impl ReplayStateFile {
    /// Opens (and locks) the replay-state file at `path`. A missing file is
    /// an empty state: the receiver's first start.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateFileError> {
        let path = path.as_ref().to_path_buf();
        let lock = StateLock::acquire(WHAT, &path)?;
        Ok(ReplayStateFile { path, _lock: lock })
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every record.
    ///
    /// # Errors
    /// [`StoreError::Read`], or [`StoreError::Corrupt`] for a file with a
    /// wrong magic, length or checksum, or an invalid record.
    pub fn load(&self) -> Result<Vec<SenderSnapshot>, StateFileError> {
        let err = |kind| StateFileError::new(WHAT, &self.path, kind);
        let bytes = match durable::read(&self.path) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(Vec::new()),
            Err(e) => return Err(StateFileError::io(WHAT, &self.path, StoreError::Read, &e)),
        };
        decode(&bytes).map_err(err)
    }

    /// Atomically replaces the file with the opener's replay state.
    ///
    /// # Errors
    /// [`StoreError::Write`] when it is not durably written (the old file
    /// stays).
    pub fn save<const K: usize, S: SenderTable>(&mut self, opener: &OpenerWith<K, S>) -> Result<(), StateFileError> {
        self.save_records(opener.snapshot())
    }

    /// Atomically replaces the file with `records`.
    ///
    /// # Errors
    /// As [`ReplayStateFile::save`].
    pub fn save_records(&mut self, records: impl IntoIterator<Item = SenderSnapshot>) -> Result<(), StateFileError> {
        let bytes = encode(records).map_err(|kind| StateFileError::new(WHAT, &self.path, kind))?;
        durable::replace(&self.path, &bytes, None)
            .map_err(|e| StateFileError::io(WHAT, &self.path, StoreError::Write, &e))
    }

    /// Loads the file and merges every record into `opener`
    /// ([`OpenerWith::restore`]); records of key ids no longer in its keyring
    /// are counted and left out.
    ///
    /// # Errors
    /// As [`ReplayStateFile::load`]; [`StoreError::Corrupt`] as well when
    /// the opener's sender table cannot hold every record.
    pub fn restore_into<const K: usize, S: SenderTable>(
        &self,
        opener: &mut OpenerWith<K, S>,
    ) -> Result<RestoreReport, StateFileError> {
        let mut report = RestoreReport::default();
        for snap in self.load()? {
            match opener.restore(&snap) {
                Ok(()) => report.restored += 1,
                Err(crate::Error::UnknownKey(_)) => report.unknown_key += 1,
                Err(_) => return Err(StateFileError::new(WHAT, &self.path, StoreError::Corrupt)),
            }
        }
        Ok(report)
    }
}

fn encode(records: impl IntoIterator<Item = SenderSnapshot>) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + DIGEST_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0; 4]);
    let mut count: u32 = 0;
    for r in records {
        count = count.checked_add(1).ok_or(StoreError::Write)?;
        out.extend_from_slice(&r.to_bytes());
    }
    out[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&count.to_le_bytes());
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Vec<SenderSnapshot>, StoreError> {
    let body_len = bytes.len().checked_sub(DIGEST_LEN).ok_or(StoreError::Corrupt)?;
    let (body, digest) = bytes.split_at(body_len);
    if Sha256::digest(body).as_slice() != digest {
        return Err(StoreError::Corrupt);
    }
    let (rest, v1) = match body.strip_prefix(MAGIC) {
        Some(rest) => (rest, false),
        None => (body.strip_prefix(MAGIC_V1).ok_or(StoreError::Corrupt)?, true),
    };
    if rest.len() < 4 {
        return Err(StoreError::Corrupt);
    }
    let (count, records) = rest.split_at(4);
    let mut c = [0u8; 4];
    c.copy_from_slice(count);
    let count = u32::from_le_bytes(c) as usize;
    // Every record is at least 52 bytes: a count the body cannot hold is
    // refused before anything is allocated for it.
    if records.len() < count.checked_mul(SenderSnapshot::ENCODED_LEN).ok_or(StoreError::Corrupt)? {
        return Err(StoreError::Corrupt);
    }
    let mut out = Vec::with_capacity(count);
    for r in SenderSnapshot::records(records) {
        let r = r.map_err(|_| StoreError::Corrupt)?;
        if v1 && r.gap_count != 0 {
            return Err(StoreError::Corrupt);
        }
        out.push(r);
    }
    if out.len() != count {
        return Err(StoreError::Corrupt);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use std::{format, prelude::v1::*, vec};

    fn snap(sender_id: u32) -> SenderSnapshot {
        SenderSnapshot {
            key_id: 1,
            sender_id,
            width: 128,
            highest: 1000 + u64::from(sender_id),
            bits: [0b1011, 1, 0, 0],
            gaps: [(0, 0); crate::MAX_GAPS],
            gap_count: 0,
        }
    }

    /// A snapshot with `n` gaps below its window.
    fn gapped(sender_id: u32, n: usize) -> SenderSnapshot {
        let mut w = crate::ReplayWindow::new(4).unwrap();
        for i in 0..=n as u64 {
            w.check_and_update(10 * i).unwrap();
        }
        assert_eq!(w.gaps().len(), n.min(crate::MAX_GAPS));
        SenderSnapshot::of(1, sender_id, &w)
    }

    #[test]
    fn records_with_gaps_round_trip_and_version_1_still_loads() {
        let records: Vec<_> = (0..5).map(|i| gapped(i, i as usize)).collect();
        let bytes = encode(records.clone()).unwrap();
        assert!(bytes.starts_with(MAGIC));
        assert_eq!(decode(&bytes).unwrap(), records);
        // A version 1 file (as the previous release wrote it).
        let plain: Vec<_> = (0..3).map(snap).collect();
        let mut v1 = MAGIC_V1.to_vec();
        v1.extend_from_slice(&3u32.to_le_bytes());
        for r in &plain {
            v1.extend_from_slice(&r.to_bytes());
        }
        let digest = Sha256::digest(&v1);
        v1.extend_from_slice(&digest);
        assert_eq!(v1.len(), 17 + 4 + 3 * 52 + 32);
        assert_eq!(decode(&v1).unwrap(), plain);
        // A version 1 file cannot hold gaps.
        let mut bad = MAGIC_V1.to_vec();
        bad.extend_from_slice(&1u32.to_le_bytes());
        bad.extend_from_slice(&gapped(0, 2).to_bytes());
        let digest = Sha256::digest(&bad);
        bad.extend_from_slice(&digest);
        assert_eq!(decode(&bad), Err(StoreError::Corrupt));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert_eq!(decode(&b), Err(StoreError::Corrupt), "flip at {i}");
        }
    }

    #[test]
    fn round_trip_and_every_corruption_is_detected() {
        let records: Vec<_> = (0..5).map(snap).collect();
        let bytes = encode(records.clone()).unwrap();
        assert_eq!(decode(&bytes).unwrap(), records);
        assert_eq!(decode(&encode(Vec::new()).unwrap()).unwrap(), Vec::new());
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert_eq!(decode(&b), Err(StoreError::Corrupt), "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert_eq!(decode(&bytes[..n]), Err(StoreError::Corrupt), "truncated to {n}");
        }
    }

    #[test]
    fn file_is_exclusive_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let mut f = ReplayStateFile::open(&path).unwrap();
        assert_eq!(f.load().unwrap(), Vec::new());
        assert_eq!(ReplayStateFile::open(&path).unwrap_err().kind, StoreError::Locked);
        f.save_records((0..3).map(snap)).unwrap();
        assert_eq!(f.load().unwrap().len(), 3);
    }
}
