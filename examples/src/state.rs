//! The CLI's state files: counter files (the sender's nonces) and
//! replay-state files (the receiver's windows). Everything about how they
//! are locked, compared-and-swapped, written and flushed is the core's
//! ([`FileCounterStore`], [`ReplayStateFile`]); this module picks the paths,
//! decides which of the core's entry points a command line asks for, and
//! words the errors.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use mqseal::{
    CounterStore, FileCounterStore, OpenerWith, ReplayStateFile, SenderSnapshot, SenderTable, StateFileError,
    StoreError,
};

/// The directory of default counter files: `$XDG_STATE_HOME/mqseal`, or
/// `~/.local/state/mqseal`.
fn state_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .ok_or_else(|| anyhow!("no --counter-file given and neither XDG_STATE_HOME nor HOME is set"))?;
    Ok(base.join("mqseal"))
}

/// The counter file of (`key_id`, `sender_id`): `arg` when given, else
/// `$XDG_STATE_HOME/mqseal/counter-k<key id>-s<sender id>` (its directory
/// is created).
///
/// The default name holds no key fingerprint on purpose. Two different
/// keys with the same id and sender id then share one file: safe, because
/// counters only grow (the second key continues where the first stopped),
/// and the lock keeps two publishers off it at once. A fingerprint would
/// instead move the file of every existing sender the day it was
/// introduced, and the obvious answer to "counter file missing",
/// `--new-counter-file`, would then restart a key that has already sealed
/// at counter 0: exactly the reuse this file exists to prevent.
pub fn counter_path(arg: Option<&Path>, key_id: u32, sender_id: u32) -> Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p.to_path_buf());
    }
    let dir = state_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join(format!("counter-k{key_id}-s{sender_id}")))
}

/// How `mqseal pub` starts its counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Resume from the counter file; a missing file is an error.
    Resume,
    /// `--new-counter-file`: create the file for a new sender; an existing
    /// file is an error.
    New,
    /// `--clock-floor`: resume from the file when there is one, and start
    /// at or above the clock floor either way.
    ClockFloor,
}

fn state_error(e: StateFileError) -> anyhow::Error {
    match e.kind {
        StoreError::Locked => anyhow!(
            "{e} (each publisher needs its own sender id, and each sender id one counter file; \
             wait for the other process to finish or give this one another --sender-id)"
        ),
        _ => anyhow!("{e}"),
    }
}

/// Opens (and locks, for the life of the returned store) the counter file
/// for `mqseal pub`. A second process on the same file fails here, before
/// connecting and before sealing anything.
pub fn open_counter(path: &Path, start: Start) -> Result<FileCounterStore> {
    match start {
        Start::New => FileCounterStore::create(path).map_err(|e| match e.kind {
            StoreError::Conflict => anyhow!(
                "counter file {} already exists: refusing to start it over with --new-counter-file \
                 (its counters may have been used; drop --new-counter-file to continue from it)",
                path.display()
            ),
            _ => state_error(e),
        }),
        Start::Resume => {
            let mut store = FileCounterStore::open(path).map_err(state_error)?;
            match store.load() {
                Ok(Some(_)) => Ok(store),
                Ok(None) => Err(anyhow!(
                    "{}\n  For a new sender id: `mqseal pub --new-counter-file ...` once, or create it with the key: \
                     `mqseal keygen group --id N -o FILE --sender-id S`.\n  If this sender has published before, \
                     the file was lost: do not create a new one for the same key and sender id (that reuses \
                     counters); use another --sender-id, a new key, or --clock-floor.",
                    store.error(StoreError::Missing)
                )),
                Err(kind) => Err(anyhow!("{}", store.error(kind))),
            }
        }
        Start::ClockFloor => FileCounterStore::open(path).map_err(state_error),
    }
}

/// `--sender-lease URL --lease-ids FIRST-LAST [--lease-ttl S]`: leases the
/// lowest free id (the rule and its checks are the core's
/// [`mqseal::LeaseConfig`]), starts renewing it, and says which id on
/// stderr. `start` is [`Start::New`] for `--new-lease-counters`.
pub fn lease_sender_id(
    url: &str,
    key_id: u32,
    ids: &str,
    ttl_seconds: Option<f64>,
    prefix: &str,
    start: Start,
) -> Result<mqseal_rumqttc::SenderLease> {
    let (first, last) = ids
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?)))
        .ok_or_else(|| anyhow!("--lease-ids {ids:?}: expected FIRST-LAST, e.g. 100-199"))?;
    let ttl_ms = match ttl_seconds {
        None => mqseal::DEFAULT_LEASE_TTL_MS,
        Some(t) if t.is_finite() && t > 0.0 => (t * 1000.0).round() as u64,
        Some(t) => bail!("--lease-ttl {t}: not a number of seconds"),
    };
    let config = mqseal::LeaseConfig::new(key_id, first, last, ttl_ms).map_err(|_| {
        anyhow!(
            "--lease-ids {ids} --lease-ttl {}: a range of 1 to {} ids, a TTL of {} ms to {} ms",
            ttl_ms as f64 / 1000.0,
            mqseal::MAX_LEASE_IDS,
            mqseal::MIN_LEASE_TTL_MS,
            mqseal::MAX_LEASE_TTL_MS
        )
    })?;
    let options = mqseal_rumqttc::LeaseOptions {
        prefix: prefix.to_owned(),
        create_counters: start == Start::New,
        ..mqseal_rumqttc::LeaseOptions::new(config)
    };
    let mut lease = mqseal_rumqttc::SenderLease::acquire(url, &options).map_err(|e| anyhow!("{e} ({url})"))?;
    if lease.acquired_limit().is_none() && start == Start::Resume {
        bail!(
            "leased sender id {} under key {key_id}, but {url} holds no counter for it (reason missing): for the \
             first deployment of --lease-ids add --new-lease-counters once; if these ids have published before, \
             Redis lost their counters: do not create new ones (that reuses counters), use --clock-floor, other \
             ids or a new key",
            lease.sender_id()
        );
    }
    lease.keep_renewed();
    eprintln!(
        "mqseal: leased sender id {} (key {key_id}) from {url} for {} s, renewed every {} s",
        lease.sender_id(),
        ttl_ms as f64 / 1000.0,
        config.renew_interval_ms() as f64 / 1000.0
    );
    Ok(lease)
}

/// Creates the counter file of a new sender for `mqseal keygen`: a fresh
/// file holding 0. An existing file is kept (its counters only ever grow,
/// so continuing from it under a new key is safe); says which on stderr.
pub fn create_counter(path: &Path, sender_id: u32) -> Result<()> {
    match FileCounterStore::create(path) {
        Ok(_) => {
            eprintln!("created counter file {} for sender id {sender_id}", path.display());
            Ok(())
        }
        Err(e) if e.kind == StoreError::Conflict => {
            eprintln!("counter file {} for sender id {sender_id} exists: kept (its counters continue)", path.display());
            Ok(())
        }
        Err(e) => Err(state_error(e)),
    }
}

/// Merges the records of a JSON replay-state file (the format `mqseal sub`
/// wrote before the core kept replay state) into `opener` and rewrites the
/// file in the core's format. Returns the records of retired keys skipped.
fn migrate_json<const K: usize, S: SenderTable>(
    file: &mut ReplayStateFile,
    json: &[u8],
    opener: &mut OpenerWith<K, S>,
) -> Result<usize> {
    let path = file.path().display().to_string();
    let records: Vec<SenderSnapshot> = serde_json::from_slice(json)
        .map_err(|e| anyhow!("replay-state file {path} looks like the old JSON format but is not valid: {e}"))?;
    let (mut restored, mut retired) = (0usize, 0usize);
    for r in &records {
        match opener.restore(r) {
            Ok(()) => restored += 1,
            Err(mqseal::Error::UnknownKey(_)) => retired += 1,
            Err(e) => bail!(
                "replay-state file {path} (old JSON format): the record of key {} sender {} is refused: {e}",
                r.key_id,
                r.sender_id
            ),
        }
    }
    file.save(opener).map_err(|e| anyhow!("migrating the old JSON replay state: {e}"))?;
    eprintln!("mqseal: replay-state file {path} migrated from the old JSON format ({restored} senders)");
    Ok(retired)
}

/// A receiver's replay state in the core's [`ReplayStateFile`], opened (and
/// locked) before connecting.
pub struct ReplayState {
    file: ReplayStateFile,
}

impl ReplayState {
    /// Opens `path`, merges what it holds into `opener`, and, for a file in
    /// the JSON format that `mqseal sub` wrote before the core kept replay
    /// state, migrates it: the records are validated and merged like any
    /// others and the file is rewritten in the core's format at once.
    pub fn open<const K: usize, S: SenderTable>(path: &Path, opener: &mut OpenerWith<K, S>) -> Result<Self> {
        let mut file = ReplayStateFile::open(path).map_err(|e| {
            if e.kind == StoreError::Locked {
                anyhow!("{e} (two subscribers cannot share one --replay-state file)")
            } else {
                anyhow!("{e}")
            }
        })?;
        let raw = match std::fs::read(path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => bail!("cannot read replay-state file {}: {e}", path.display()),
        };
        let retired = match raw.filter(|b| b.trim_ascii_start().starts_with(b"[")) {
            Some(json) => migrate_json(&mut file, &json, opener)?,
            None => {
                let report = file.restore_into(opener).map_err(|e| match e.kind {
                    StoreError::Corrupt => anyhow!(
                        "{e}: not a valid mqseal replay-state file (a checksum, length or record is wrong); \
                         refusing to start without the replay state it should hold"
                    ),
                    _ => anyhow!("{e}"),
                })?;
                report.unknown_key
            }
        };
        if retired > 0 {
            eprintln!(
                "mqseal: replay-state file {}: {retired} record(s) of key ids no longer in the keyring skipped",
                path.display()
            );
        }
        Ok(ReplayState { file })
    }
}

/// Group commit of a [`ReplayState`]: messages are handed out only once a
/// save that records them is durable, but one save (one write, one
/// `fsync` of file and directory) covers every message accepted while the
/// previous save was running.
///
/// The subscriber [`push`](GroupCommit::push)es each accepted message with
/// the opener's state at that point; while no save runs, one starts at
/// once (on a blocking thread). When it is done,
/// [`durable`](GroupCommit::durable) returns the messages it covers, to
/// print, and the subscriber starts the next save (with a fresh snapshot)
/// for the messages that arrived meanwhile. A crash at any point loses at
/// most messages that were not handed out yet; a handed-out message is
/// in the file, so after a restart it is a duplicate.
pub struct GroupCommit<T> {
    state: Option<ReplayState>,
    running: Option<tokio::task::JoinHandle<(ReplayState, Result<()>)>>,
    saving: Vec<T>,
    pending: Vec<T>,
    /// Saves completed (each one write and one fsync).
    pub commits: u64,
}

impl<T: Send + 'static> GroupCommit<T> {
    /// Group commit over `state`.
    pub fn new(state: ReplayState) -> Self {
        GroupCommit { state: Some(state), running: None, saving: Vec::new(), pending: Vec::new(), commits: 0 }
    }

    /// Whether a save is running (then await [`GroupCommit::durable`]).
    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// Accepted messages not handed out yet (saving or waiting).
    pub fn in_flight(&self) -> usize {
        self.saving.len() + self.pending.len()
    }

    /// Whether accepted messages wait for a save.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Queues `msg`, accepted by the opener; if no save runs, starts one
    /// with `records` (the opener's snapshot, which records `msg`).
    pub fn push(&mut self, msg: T, records: impl FnOnce() -> Vec<SenderSnapshot>) {
        self.pending.push(msg);
        if !self.busy() {
            self.start(records());
        }
    }

    /// Starts a save of `records` covering every pending message.
    pub fn start(&mut self, records: Vec<SenderSnapshot>) {
        let Some(mut state) = self.state.take() else { return };
        self.saving = core::mem::take(&mut self.pending);
        self.running = Some(tokio::task::spawn_blocking(move || {
            let r = state.file.save_records(records).map_err(|e| anyhow!("{e}"));
            (state, r)
        }));
    }

    /// Waits for the running save; returns the messages it made durable.
    /// (Pending forever when no save runs: select on it only while
    /// [`GroupCommit::busy`].)
    pub async fn durable(&mut self) -> Result<Vec<T>> {
        let Some(task) = self.running.as_mut() else { return core::future::pending().await };
        let (state, r) = task.await.map_err(|e| anyhow!("replay-state save task failed: {e}"))?;
        self.running = None;
        self.state = Some(state);
        r?;
        self.commits += 1;
        Ok(core::mem::take(&mut self.saving))
    }
}

/// [`GroupCommit::durable`] of `commit`, or pending forever without one.
pub async fn durable_of<T: Send + 'static>(commit: &mut Option<GroupCommit<T>>) -> Result<Vec<T>> {
    match commit {
        Some(c) => c.durable().await,
        None => core::future::pending().await,
    }
}
