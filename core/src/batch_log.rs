//! Exactly-once delivery to an append-only file for a subscriber whose
//! replay windows live in a shared store (`mqseal sub --replay-redis URL
//! --out FILE`; docs/EXACTLY_ONCE.md).
//!
//! The sans-IO parts (always with `alloc`):
//! * [`BATCH_SCRIPT`]: one atomic Redis call per batch that runs the window
//!   rule of [`crate::WINDOW_SCRIPT`] on every entry and stores the
//!   accepted entries' [`PendingRecord`]s under the owner's pending hash;
//! * the records' encoding ([`PendingRecord::encode`], [`parse_pending_batch`]);
//! * the file's framing ([`encode_batch_frame`], [`parse_frame_header`],
//!   [`frame_checksum_ok`]);
//! * the restart decision ([`recovery_plan`]).
//!
//! With `std`, [`BatchLog`] is the file itself: locked for one writer,
//! scanned on open (a torn tail is truncated), appended and fsynced.

use alloc::vec::Vec;
use sha2::{Digest, Sha256};

use crate::Error;

/// The batch script: [`crate::WINDOW_SCRIPT`]'s text, unchanged, as the
/// function `window_check(KEYS, ARGV)`, then `shared_batch.lua`. Arguments
/// as [`batch_script_args`] builds them; returns one window code per entry.
pub const BATCH_SCRIPT: &str = concat!(
    "local function window_check(KEYS, ARGV)\n",
    include_str!("shared_window.lua"),
    "\nend\n",
    include_str!("shared_batch.lua")
);

/// What starts every frame of a batch log.
pub const BATCH_FRAME_MAGIC: &[u8] = b"mqseal-batch ";

/// Longest frame header: magic, two u64 in decimal, 64 hex digits, spaces, newline.
pub const MAX_FRAME_HEADER: usize = 13 + 20 + 1 + 20 + 1 + 64 + 1;

/// The key of an owner's pending hash: `<prefix>pending:<owner>`.
#[must_use]
pub fn pending_key(prefix: &str, owner: &str) -> alloc::string::String {
    alloc::format!("{prefix}pending:{owner}")
}

/// One verified, accepted message as staged in the shared store until its
/// batch is durable in the file: the envelope as received (re-verified on
/// recovery), its topic, QoS and retain flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRecord<'a> {
    /// The topic it arrived on.
    pub topic: &'a [u8],
    /// The envelope (untrusted until verified again).
    pub envelope: &'a [u8],
    /// QoS it was delivered with.
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
}

impl PendingRecord<'_> {
    /// The record's bytes: u32 BE topic length, topic, u32 BE envelope
    /// length, envelope, QoS byte, retain byte (0/1). Self-delimiting, so a
    /// batch is the records concatenated.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a topic or envelope above 4 GiB (MQTT
    /// packets are below 256 MiB).
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let tl = u32::try_from(self.topic.len()).map_err(|_| Error::InvalidConfig)?;
        let el = u32::try_from(self.envelope.len()).map_err(|_| Error::InvalidConfig)?;
        let mut out = Vec::with_capacity(10 + self.topic.len() + self.envelope.len());
        out.extend_from_slice(&tl.to_be_bytes());
        out.extend_from_slice(self.topic);
        out.extend_from_slice(&el.to_be_bytes());
        out.extend_from_slice(self.envelope);
        out.push(self.qos);
        out.push(u8::from(self.retain));
        Ok(out)
    }
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], Error> {
    if bytes.len() < n {
        return Err(Error::InvalidSnapshot);
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn take_len(bytes: &mut &[u8]) -> Result<usize, Error> {
    let b = take(bytes, 4)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    usize::try_from(u32::from_be_bytes(a)).map_err(|_| Error::InvalidSnapshot)
}

/// The records of one staged batch (the value of a pending hash field).
///
/// # Errors
/// [`Error::InvalidSnapshot`] when the bytes are not whole records (a QoS
/// above 2 or a retain byte other than 0/1 included).
pub fn parse_pending_batch(mut bytes: &[u8]) -> Result<Vec<PendingRecord<'_>>, Error> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let tl = take_len(&mut bytes)?;
        let topic = take(&mut bytes, tl)?;
        let el = take_len(&mut bytes)?;
        let envelope = take(&mut bytes, el)?;
        let flags = take(&mut bytes, 2)?;
        if flags[0] > 2 || flags[1] > 1 {
            return Err(Error::InvalidSnapshot);
        }
        out.push(PendingRecord { topic, envelope, qos: flags[0], retain: flags[1] == 1 });
    }
    Ok(out)
}

/// [`BATCH_SCRIPT`]'s `ARGV` for batch `n` (pending TTL `ttl_ms`, 0:
/// none; window TTL `window_ttl_ms`): the entries' window arguments
/// ([`crate::WindowQuery::script_args`]) each followed by its record.
/// `KEYS` are the queries' [`crate::WindowQuery::redis_key`]s then
/// [`pending_key`].
#[must_use]
pub fn batch_script_args(
    n: u64,
    ttl_ms: u64,
    window_ttl_ms: u64,
    entries: &[(crate::WindowQuery, Vec<u8>)],
) -> Vec<Vec<u8>> {
    let mut args = Vec::with_capacity(3 + 6 * entries.len());
    for v in [n, ttl_ms, entries.len() as u64] {
        args.push(alloc::format!("{v}").into_bytes());
    }
    for (q, record) in entries {
        for a in q.script_args(window_ttl_ms) {
            args.push(alloc::format!("{a}").into_bytes());
        }
        args.push(record.clone());
    }
    args
}

fn checksum(n: u64, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(n.to_be_bytes());
    h.update(body);
    h.finalize().into()
}

fn hex32(sum: &[u8; 32]) -> [u8; 64] {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in sum.iter().enumerate() {
        out[2 * i] = D[usize::from(b >> 4)];
        out[2 * i + 1] = D[usize::from(b & 15)];
    }
    out
}

/// One frame of a batch log: the header line `mqseal-batch <n> <length>
/// <sha256>\n` (decimal batch number and body length, the SHA-256 of the
/// batch number as 8 big-endian bytes followed by the body, in lowercase
/// hex), then the body: the batch's records, each as `mqseal sub` prints it
/// on stdout.
#[must_use]
pub fn encode_batch_frame(n: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_FRAME_HEADER + body.len());
    out.extend_from_slice(BATCH_FRAME_MAGIC);
    out.extend_from_slice(alloc::format!("{n} {} ", body.len()).as_bytes());
    out.extend_from_slice(&hex32(&checksum(n, body)));
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The batch number.
    pub batch: u64,
    /// The body's length in bytes.
    pub len: u64,
    /// The header line's length, newline included.
    pub header_len: usize,
    sum: [u8; 64],
}

fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// The frame header at the start of `bytes` (which may hold more).
///
/// # Errors
/// [`Error::Truncated`] when `bytes` ends before the header's newline
/// (within [`MAX_FRAME_HEADER`]); [`Error::InvalidSnapshot`] when it is not
/// a frame header.
pub fn parse_frame_header(bytes: &[u8]) -> Result<FrameHeader, Error> {
    let window = &bytes[..bytes.len().min(MAX_FRAME_HEADER)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        return if bytes.len() < MAX_FRAME_HEADER && BATCH_FRAME_MAGIC.starts_with(&bytes[..bytes.len().min(13)]) {
            Err(Error::Truncated)
        } else {
            Err(Error::InvalidSnapshot)
        };
    };
    let line = window[..nl].strip_prefix(BATCH_FRAME_MAGIC).ok_or(Error::InvalidSnapshot)?;
    let mut fields = line.split(|&b| b == b' ');
    let batch = fields.next().and_then(decimal).ok_or(Error::InvalidSnapshot)?;
    let len = fields.next().and_then(decimal).ok_or(Error::InvalidSnapshot)?;
    let hex = fields.next().ok_or(Error::InvalidSnapshot)?;
    if fields.next().is_some() || hex.len() != 64 || !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::InvalidSnapshot);
    }
    let mut sum = [0u8; 64];
    sum.copy_from_slice(hex);
    Ok(FrameHeader { batch, len, header_len: nl + 1, sum })
}

/// Whether `body` is the body `header` describes (length and checksum).
#[must_use]
pub fn frame_checksum_ok(header: &FrameHeader, body: &[u8]) -> bool {
    body.len() as u64 == header.len && hex32(&checksum(header.batch, body)) == header.sum
}

/// What a restarted owner does with its staged batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// Staged batches not in the file, ascending: verify again and append.
    pub append: Vec<u64>,
    /// Every staged batch: delete once the appends are durable.
    pub delete: Vec<u64>,
    /// The number of the next batch.
    pub next_batch: u64,
}

/// The restart decision: a staged batch numbered above the file's last
/// complete batch was recorded in the shared windows but never made it to
/// the file (the process died between the two), so it is appended now; a
/// batch at or below it is in the file already (the process died before
/// deleting it). Its redelivered copies are then `duplicate`, correctly.
#[must_use]
pub fn recovery_plan(last_in_file: Option<u64>, staged: &[u64]) -> RecoveryPlan {
    let mut delete = staged.to_vec();
    delete.sort_unstable();
    delete.dedup();
    let append: Vec<u64> = delete.iter().copied().filter(|n| last_in_file.is_none_or(|l| *n > l)).collect();
    let top = delete.last().copied().max(last_in_file).unwrap_or(0);
    RecoveryPlan { append, delete, next_batch: top.saturating_add(1) }
}

#[cfg(all(feature = "std", any(unix, windows)))]
pub use self::file::BatchLog;

#[cfg(all(feature = "std", any(unix, windows)))]
mod file {
    use super::{frame_checksum_ok, parse_frame_header, FrameHeader, MAX_FRAME_HEADER};
    use crate::durable::{StateFileError, StateLock};
    use crate::{Error, StoreError};
    use std::fs::{File, OpenOptions};
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::path::{Path, PathBuf};
    use std::vec::Vec;

    const WHAT: &str = "output file";

    /// An append-only batch log (`mqseal sub --out FILE`), held by one
    /// writer (the `<file>.lock` of every core state file). Opening it
    /// finds the last complete batch and truncates a torn tail (a frame the
    /// writer was appending when it died, or bytes that are no frame).
    #[derive(Debug)]
    pub struct BatchLog {
        file: File,
        path: PathBuf,
        last_batch: Option<u64>,
        truncated: u64,
        _lock: StateLock,
    }

    fn io(path: &Path, kind: StoreError) -> impl FnOnce(std::io::Error) -> StateFileError + '_ {
        move |e| StateFileError::io(WHAT, path, kind, &e)
    }

    impl BatchLog {
        /// Locks, creates (mode 0600 on Unix) or scans `path`.
        ///
        /// # Errors
        /// [`StoreError::Locked`] when another process holds it;
        /// [`StoreError::Corrupt`] when a complete frame in the middle is
        /// damaged; [`StoreError::Read`] / [`StoreError::Write`] for I/O.
        pub fn open(path: &Path) -> Result<BatchLog, StateFileError> {
            let lock = StateLock::acquire(WHAT, path)?;
            let mut o = OpenOptions::new();
            o.read(true).write(true).create(true).truncate(false);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            let mut file = o.open(path).map_err(io(path, StoreError::Read))?;
            let size = file.metadata().map_err(io(path, StoreError::Read))?.len();
            let (good, last) = scan(&mut file, size).map_err(|k| StateFileError::new(WHAT, path, k))?;
            if good < size {
                file.set_len(good).map_err(io(path, StoreError::Write))?;
                file.sync_all().map_err(io(path, StoreError::Write))?;
            }
            file.seek(SeekFrom::End(0)).map_err(io(path, StoreError::Read))?;
            Ok(BatchLog { file, path: path.to_path_buf(), last_batch: last, truncated: size - good, _lock: lock })
        }

        /// The last complete batch in the file.
        #[must_use]
        pub const fn last_batch(&self) -> Option<u64> {
            self.last_batch
        }

        /// Bytes of a torn tail removed when opening.
        #[must_use]
        pub const fn truncated(&self) -> u64 {
            self.truncated
        }

        /// Appends batch `n` and fsyncs: durable when this returns.
        ///
        /// # Errors
        /// [`StoreError::Conflict`] for `n` not above the last batch;
        /// [`StoreError::Write`] for I/O (the batch may be torn: reopen).
        pub fn append(&mut self, n: u64, body: &[u8]) -> Result<(), StateFileError> {
            if self.last_batch.is_some_and(|l| n <= l) {
                return Err(StateFileError::new(WHAT, &self.path, StoreError::Conflict));
            }
            let frame = super::encode_batch_frame(n, body);
            self.file.write_all(&frame).map_err(io(&self.path, StoreError::Write))?;
            self.file.sync_data().map_err(io(&self.path, StoreError::Write))?;
            self.last_batch = Some(n);
            Ok(())
        }
    }

    /// (length of the complete frames, last batch). Frames are walked by
    /// their lengths; only the last one's body is read and checked (every
    /// earlier one was fsynced before the next was written).
    fn scan(file: &mut File, size: u64) -> Result<(u64, Option<u64>), StoreError> {
        let mut at = 0u64;
        let mut frames: Vec<(u64, FrameHeader)> = Vec::new();
        let mut buf = [0u8; MAX_FRAME_HEADER];
        while at < size {
            file.seek(SeekFrom::Start(at)).map_err(|_| StoreError::Read)?;
            let want = usize::try_from((size - at).min(MAX_FRAME_HEADER as u64)).map_err(|_| StoreError::Read)?;
            file.read_exact(&mut buf[..want]).map_err(|_| StoreError::Read)?;
            let h = match parse_frame_header(&buf[..want]) {
                Ok(h) => h,
                // A header cut short, or no header: the torn tail.
                Err(Error::Truncated | Error::InvalidSnapshot) => break,
                Err(_) => return Err(StoreError::Corrupt),
            };
            let end = at.checked_add(h.header_len as u64).and_then(|e| e.checked_add(h.len));
            match end {
                Some(end) if end <= size => {
                    if frames.last().is_some_and(|(_, p)| h.batch <= p.batch) {
                        return Err(StoreError::Corrupt);
                    }
                    frames.push((at, h));
                    at = end;
                }
                _ => break,
            }
        }
        let Some(&(start, h)) = frames.last() else { return Ok((0, None)) };
        let body_at = start + h.header_len as u64;
        let mut body = vec_of(h.len)?;
        file.seek(SeekFrom::Start(body_at)).map_err(|_| StoreError::Read)?;
        file.read_exact(&mut body).map_err(|_| StoreError::Read)?;
        if frame_checksum_ok(&h, &body) {
            return Ok((body_at + h.len, Some(h.batch)));
        }
        // A frame whose length made it to the disk but not all of its
        // bytes: torn too. Only the last frame can be: the one before was
        // fsynced before it was begun.
        frames.pop();
        Ok(frames.last().map_or((0, None), |(s, p)| (s + p.header_len as u64 + p.len, Some(p.batch))))
    }

    fn vec_of(len: u64) -> Result<Vec<u8>, StoreError> {
        let n = usize::try_from(len).map_err(|_| StoreError::Corrupt)?;
        Ok(std::vec![0u8; n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_bytes_are_typed_errors() {
        let a = PendingRecord { topic: b"fleet/d1", envelope: &[1, 2, 3], qos: 1, retain: false };
        let b = PendingRecord { topic: b"x", envelope: &[], qos: 2, retain: true };
        let mut bytes = a.encode().unwrap();
        bytes.extend(b.encode().unwrap());
        assert_eq!(parse_pending_batch(&bytes).unwrap(), [a, b]);
        for cut in 0..bytes.len() {
            if cut != 0 && cut != 21 {
                assert_eq!(parse_pending_batch(&bytes[..cut]), Err(Error::InvalidSnapshot), "cut {cut}");
            }
        }
        let mut bad = bytes.clone();
        bad[19] = 3;
        assert_eq!(parse_pending_batch(&bad), Err(Error::InvalidSnapshot));
    }

    #[test]
    fn frames_parse_and_check() {
        let f = encode_batch_frame(42, b"a line\nanother\n");
        let h = parse_frame_header(&f).unwrap();
        assert_eq!((h.batch, h.len), (42, 15));
        assert!(frame_checksum_ok(&h, &f[h.header_len..]));
        let mut bad = f.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!frame_checksum_ok(&h, &bad[h.header_len..]));
        assert_eq!(parse_frame_header(&f[..10]), Err(Error::Truncated));
        assert_eq!(parse_frame_header(b"hello\n"), Err(Error::InvalidSnapshot));
        assert_eq!(parse_frame_header(b"mqseal-batch 01 2 x\n"), Err(Error::InvalidSnapshot));
    }

    #[test]
    fn recovery_appends_only_what_the_file_lacks() {
        let p = recovery_plan(Some(7), &[9, 6, 8, 7]);
        assert_eq!(p.append, [8, 9]);
        assert_eq!(p.delete, [6, 7, 8, 9]);
        assert_eq!(p.next_batch, 10);
        let p = recovery_plan(None, &[]);
        assert_eq!((p.append.len(), p.next_batch), (0, 1));
        assert_eq!(recovery_plan(Some(3), &[]).next_batch, 4);
    }

    #[cfg(all(feature = "std", any(unix, windows)))]
    #[test]
    fn a_torn_tail_is_truncated_and_a_second_writer_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut log = BatchLog::open(&path).unwrap();
        assert_eq!(log.last_batch(), None);
        log.append(1, b"one\n").unwrap();
        log.append(2, b"two\n").unwrap();
        assert_eq!(BatchLog::open(&path).unwrap_err().kind, crate::StoreError::Locked);
        assert_eq!(log.append(2, b"x").unwrap_err().kind, crate::StoreError::Conflict);
        drop(log);
        let whole = std::fs::read(&path).unwrap();
        let second = encode_batch_frame(2, b"two\n").len();
        // Every cut inside the last frame: back to batch 1.
        for cut in whole.len() - second..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let log = BatchLog::open(&path).unwrap();
            assert_eq!(log.last_batch(), Some(1), "cut {cut}");
            assert_eq!(std::fs::read(&path).unwrap().len(), whole.len() - second);
        }
        // A complete-length last frame with damaged bytes: torn as well.
        let mut zeroed = whole.clone();
        let n = zeroed.len();
        zeroed[n - 2] = 0;
        std::fs::write(&path, &zeroed).unwrap();
        assert_eq!(BatchLog::open(&path).unwrap().last_batch(), Some(1));
    }
}
