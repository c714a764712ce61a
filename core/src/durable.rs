//! The file discipline of every state file the core writes (counter files,
//! replay-state files): state that must never go backwards.
//!
//! * **One writer.** The owner holds an exclusive OS lock (`flock` on Unix,
//!   `LockFileEx` on Windows, through `fs4`) on `<file>.lock` for its whole
//!   lifetime, and writes its pid there. A second process, or a second
//!   store in the same process, gets [`StoreError::Locked`] at once, with
//!   the holder's pid when it is known; it never waits. The lock file is
//!   separate because the state file itself is replaced by a rename, which
//!   would leave a lock on the old inode. A lock file left behind by a dead
//!   process is harmless: the OS released its lock with the process.
//! * **Atomic replace.** New contents go to `<file>.tmp`, are flushed with
//!   `fsync`, renamed over the file, and the directory is flushed too. A
//!   crash at any point leaves the old or the new file, never a mix.
//!
//! `docs/STATE.md` documents the file formats.

use core::fmt;
use std::format;
use std::fs;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::vec::Vec;

use crate::StoreError;

/// A state file could not be opened, locked, read or written. Names the
/// file, and the process holding it when that is the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateFileError {
    /// What kind of state the file holds ("counter file", "replay-state file").
    pub what: &'static str,
    /// The state file.
    pub path: PathBuf,
    /// What went wrong, as the store error every binding reports.
    pub kind: StoreError,
    /// For [`StoreError::Locked`]: the pid written by the process that
    /// holds the lock, when it could be read.
    pub holder_pid: Option<u32>,
    /// The operating system's error, when one caused this.
    pub io: Option<io::ErrorKind>,
}

impl StateFileError {
    pub(crate) fn new(what: &'static str, path: &Path, kind: StoreError) -> Self {
        StateFileError { what, path: path.to_path_buf(), kind, holder_pid: None, io: None }
    }

    pub(crate) fn io(what: &'static str, path: &Path, kind: StoreError, e: &io::Error) -> Self {
        StateFileError { io: Some(e.kind()), ..StateFileError::new(what, path, kind) }
    }
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        let what = self.what;
        match (self.kind, self.holder_pid) {
            (StoreError::Locked, Some(pid)) => {
                write!(f, "{what} {path} is in use by another process (pid {pid}); refusing to share it")
            }
            (StoreError::Locked, None) => write!(f, "{what} {path} is in use by another process; refusing to share it"),
            (StoreError::Missing, _) => write!(
                f,
                "{what} {path} does not exist: refusing to start over (it would reuse counters); \
                 create it explicitly for a new sender id, or start from a clock floor"
            ),
            (kind, _) => {
                write!(f, "{what} {path}: {kind}")?;
                if let Some(io) = self.io {
                    write!(f, " ({io})")?;
                }
                Ok(())
            }
        }
    }
}

impl core::error::Error for StateFileError {}

impl From<StateFileError> for crate::Error {
    fn from(e: StateFileError) -> Self {
        crate::Error::CounterStore(e.kind)
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

/// The exclusive lock on a state file, held until dropped.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: fs::File,
}

impl StateLock {
    /// Takes the lock on `path` (through `<path>.lock`) or fails at once.
    pub(crate) fn acquire(what: &'static str, path: &Path) -> Result<StateLock, StateFileError> {
        let lock_path = sibling(path, ".lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| StateFileError::io(what, path, StoreError::Read, &e))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                drop(file);
                let holder_pid = holder_pid(&lock_path);
                return Err(StateFileError { holder_pid, ..StateFileError::new(what, path, StoreError::Locked) });
            }
            Err(fs4::TryLockError::Error(e)) => return Err(StateFileError::io(what, path, StoreError::Locked, &e)),
        }
        // Best effort: the pid only makes the error of a second process
        // clearer; the lock itself is what excludes it. One fixed-width
        // write at offset 0 replaces the previous holder's pid whole, so a
        // reader sees the old line or the new one, never a mix or nothing.
        let line = format!("{:>10}\n", std::process::id());
        let _ = file.rewind().and_then(|()| file.write_all(line.as_bytes())).and_then(|()| file.set_len(11));
        Ok(StateLock { _file: file })
    }
}

/// The pid in a lock file that another process holds. That process writes
/// it just after taking the lock, so a reader that starts at the same
/// moment may still see the previous holder's pid (or, for a new lock file,
/// nothing): read again for up to about 100 ms until the line names a live
/// process, where `/proc` tells. This only completes the error message.
fn holder_pid(lock_path: &Path) -> Option<u32> {
    // Alive unless /proc says it is gone or a zombie (an exited child its
    // parent has not reaped yet still has a /proc entry).
    let alive = |pid: u32| {
        let proc = Path::new("/proc");
        if !proc.join("self").exists() {
            return true;
        }
        fs::read_to_string(proc.join(format!("{pid}/stat")))
            .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
    };
    let mut found = None;
    for _ in 0..10 {
        // The holder writes its pid right after it takes the lock: give it
        // that moment before the first read.
        std::thread::sleep(core::time::Duration::from_millis(10));
        let Ok(text) = fs::read_to_string(lock_path) else { continue };
        // Complete only with its newline.
        if let Some(pid) = text.strip_suffix('\n').and_then(|t| t.trim().parse::<u32>().ok()) {
            found = Some(pid);
            if alive(pid) {
                break;
            }
        }
    }
    found
}

/// Reads a state file; `Ok(None)` when it does not exist.
pub(crate) fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Crash points of [`replace`], for tests that stop a write half way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Crash {
    /// Half the bytes reach the temporary file.
    TornTemp,
    /// The temporary file is written, not flushed.
    BeforeSync,
    /// Flushed, not renamed.
    BeforeRename,
    /// Renamed, directory not flushed.
    BeforeDirSync,
}

/// All crash points, in order.
#[cfg(test)]
pub(crate) const CRASH_POINTS: [Crash; 4] =
    [Crash::TornTemp, Crash::BeforeSync, Crash::BeforeRename, Crash::BeforeDirSync];

/// Atomically replaces `path` with `bytes` and makes it durable. With
/// `crash`, stops at that point as a killed process would (tests only).
pub(crate) fn replace(path: &Path, bytes: &[u8], crash: Option<Crash>) -> io::Result<()> {
    replace_with_mode(path, bytes, crash, None)
}

/// [`replace`] for a file that holds secrets: the temporary file (and so
/// the file after the rename) is created with mode 0600 on Unix.
pub(crate) fn replace_secret(path: &Path, bytes: &[u8], crash: Option<Crash>) -> io::Result<()> {
    replace_with_mode(path, bytes, crash, Some(0o600))
}

/// Creates (truncating) `path` for writing; with `mode`, created with that
/// mode on Unix (an existing file gets it too).
pub(crate) fn create_file(path: &Path, mode: Option<u32>) -> io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if let Some(m) = mode {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(m);
        let f = o.open(path)?;
        f.set_permissions(fs::Permissions::from_mode(m))?;
        return Ok(f);
    }
    #[cfg(not(unix))]
    let _ = mode;
    o.open(path)
}

fn replace_with_mode(path: &Path, bytes: &[u8], crash: Option<Crash>, mode: Option<u32>) -> io::Result<()> {
    let stop = || Err(io::Error::other("simulated crash"));
    let tmp = sibling(path, ".tmp");
    let mut f = create_file(&tmp, mode)?;
    if crash == Some(Crash::TornTemp) {
        f.write_all(&bytes[..bytes.len() / 2])?;
        return stop();
    }
    f.write_all(bytes)?;
    if crash == Some(Crash::BeforeSync) {
        return stop();
    }
    f.sync_all()?;
    drop(f);
    if crash == Some(Crash::BeforeRename) {
        return stop();
    }
    fs::rename(&tmp, path)?;
    if crash == Some(Crash::BeforeDirSync) {
        return stop();
    }
    // Make the rename itself durable.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

// Windows cannot open a directory as a file to flush it; NTFS journals the
// rename itself.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn second_lock_fails_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let held = StateLock::acquire("counter file", &path).unwrap();
        let err = StateLock::acquire("counter file", &path).unwrap_err();
        assert_eq!(err.kind, StoreError::Locked);
        assert_eq!(err.holder_pid, Some(std::process::id()));
        let text = err.to_string();
        assert!(text.contains("state") && text.contains(&std::process::id().to_string()), "{text}");
        drop(held);
        StateLock::acquire("counter file", &path).unwrap();
    }

    #[test]
    fn replace_leaves_old_or_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        replace(&path, b"old contents", None).unwrap();
        for crash in CRASH_POINTS {
            replace(&path, b"old contents", None).unwrap();
            assert!(replace(&path, b"new contents!", Some(crash)).is_err());
            let now = read(&path).unwrap().unwrap();
            assert!(now == b"old contents" || now == b"new contents!", "{crash:?}: {now:?}");
        }
    }
}
