//! A member's state directory (`docs/STATE.md`, "Member directory"): its
//! identity, its X25519 key pair, the member-state record of
//! `docs/PROTOCOL.md` 14.9 and one counter file per sealing assignment.
//!
//! ```text
//! DIR/                      0700
//!   member                  "mqseal-member v1" identity: id, authority public key, topic prefixes
//!   member.key              the member's X25519 secret (text form), 0600
//!   state                   the member-state record (14.9), 0600; state.lock while open
//!   seal-<group>-<key id>-<sender id>.counter    one counter file per assignment (6.2, 14.7)
//! ```
//!
//! [`MemberFileStore`] is the only way this crate offers to apply a control
//! message with a file: [`MemberFileStore::apply`] writes the record
//! durably and hands out the ack only after the write returned `Ok`, so a
//! caller cannot publish an ack (or use keys) that a crash could forget.

use core::fmt;
use std::format;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use zeroize::Zeroizing;

use crate::durable::{self, StateFileError, StateLock};
use crate::{
    ControlTopics, Error, FileCounterStore, Keyring, MemberAgent, PublicKey, Sealer, Sealing, StaticKeyPair,
    StoreError, Tick, MAX_MEMBER_STATE_LEN,
};

const IDENTITY_MAGIC: &str = "mqseal-member v1";
const IDENTITY_FILE: &str = "member";
const KEY_FILE: &str = "member.key";
const STATE_FILE: &str = "state";
const WHAT: &str = "member-state file";

/// Why a member directory could not be created, opened, or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberFileError {
    /// A file could not be read, written or locked (`Locked` when another
    /// process holds the member).
    State(StateFileError),
    /// The identity, key or member-state record is not valid
    /// ([`Error::InvalidSnapshot`]): the member does not start over by
    /// itself; re-enrol it explicitly.
    Invalid(PathBuf),
    /// The directory already holds a member (`member init` refuses to
    /// overwrite it).
    Exists(PathBuf),
    /// The core refused the operation (a control message that does not
    /// pass `docs/PROTOCOL.md` 14.6, a counter that is exhausted...).
    Member(Error),
}

impl MemberFileError {
    /// The stable code: the core error's ([`Error::code`]), `invalidSnapshot`,
    /// or the store error's (`locked`, `read`, `write`...), `exists`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            MemberFileError::State(e) => e.kind.code(),
            MemberFileError::Invalid(_) => Error::InvalidSnapshot.code(),
            MemberFileError::Exists(_) => "exists",
            MemberFileError::Member(e) => e.code(),
        }
    }

    /// The core error this is reported as in every binding.
    #[must_use]
    pub const fn core_error(&self) -> Error {
        match self {
            MemberFileError::State(e) => Error::CounterStore(e.kind),
            MemberFileError::Invalid(_) | MemberFileError::Exists(_) => Error::InvalidSnapshot,
            MemberFileError::Member(e) => *e,
        }
    }
}

impl fmt::Display for MemberFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberFileError::State(e) => e.fmt(f),
            MemberFileError::Invalid(p) => write!(
                f,
                "{}: {} (refusing to start over: that would accept old states again and reuse ack counters; \
                 re-enrol the member explicitly)",
                p.display(),
                Error::InvalidSnapshot
            ),
            MemberFileError::Exists(p) => write!(f, "{} already holds a member; refusing to overwrite it", p.display()),
            MemberFileError::Member(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for MemberFileError {}

impl From<Error> for MemberFileError {
    fn from(e: Error) -> Self {
        MemberFileError::Member(e)
    }
}

impl From<StateFileError> for MemberFileError {
    fn from(e: StateFileError) -> Self {
        MemberFileError::State(e)
    }
}

/// A control message applied and persisted: publish [`AppliedAck::ack`] on
/// [`MemberFileStore::ack_topic`] (QoS 1, not retained), then use the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedAck {
    /// The epoch now held (and persisted).
    pub epoch: u64,
    /// The sealed ack envelope.
    pub ack: Vec<u8>,
    /// When to call [`MemberFileStore::tick`] next.
    pub wake_at: Option<u64>,
}

/// What `member` (the identity file) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    id: String,
    authority: PublicKey,
    control: String,
    ack: String,
}

impl Identity {
    fn encode(&self) -> String {
        format!(
            "{IDENTITY_MAGIC}\nid {}\nauthority {}\ncontrol-prefix {}\nack-prefix {}\n",
            self.id,
            self.authority.to_text().as_str(),
            self.control,
            self.ack
        )
    }

    fn decode(text: &str) -> Option<Identity> {
        let mut lines = text.lines();
        if lines.next()? != IDENTITY_MAGIC {
            return None;
        }
        let mut field = |name: &str| lines.next()?.strip_prefix(name)?.strip_prefix(' ').map(str::to_string);
        let id = field("id")?;
        let authority = PublicKey::from_text(&field("authority")?).ok()?;
        let control = field("control-prefix")?;
        let ack = field("ack-prefix")?;
        if lines.next().is_some() {
            return None;
        }
        Some(Identity { id, authority, control, ack })
    }

    fn topics(&self) -> ControlTopics<'_> {
        ControlTopics { control: &self.control, ack: &self.ack }
    }
}

/// A member's state directory, held exclusively (the lock of its `state`
/// file) while this value lives: its agent, its record, its counters.
pub struct MemberFileStore {
    dir: PathBuf,
    state_path: PathBuf,
    identity: Identity,
    agent: MemberAgent,
    _lock: StateLock,
}

impl fmt::Debug for MemberFileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberFileStore").field("dir", &self.dir).field("agent", &self.agent).finish_non_exhaustive()
    }
}

fn io_err(path: &Path, kind: StoreError, e: &io::Error) -> MemberFileError {
    MemberFileError::State(StateFileError::io(WHAT, path, kind, e))
}

impl MemberFileStore {
    /// Enrols a new member in `dir` (created with mode 0700; it must be
    /// missing or empty): generates its X25519 key pair (secret 0600),
    /// stores `member_id`, the authority's public key and the topic
    /// prefixes, and an initial record at epoch 0. Returns the store (open)
    /// and the public key to give to the authority.
    ///
    /// # Errors
    /// [`MemberFileError::Exists`] when `dir` holds files;
    /// [`MemberFileError::Member`] for a bad member id or prefix
    /// (`invalidControl`, `invalidConfig`); [`MemberFileError::State`] when
    /// a file cannot be written.
    pub fn init(
        dir: impl AsRef<Path>,
        member_id: &str,
        authority: &PublicKey,
        topics: &ControlTopics<'_>,
    ) -> Result<(MemberFileStore, PublicKey), MemberFileError> {
        let dir = dir.as_ref();
        let pair = StaticKeyPair::generate()?;
        // Validates the id, the prefixes and the pairing before any file exists.
        let agent = MemberAgent::new(&pair, member_id, authority, topics, None)?;
        match fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(MemberFileError::Exists(dir.to_path_buf()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(|e| io_err(dir, StoreError::Write, &e))?;
            }
            Err(e) => return Err(io_err(dir, StoreError::Read, &e)),
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| io_err(dir, StoreError::Write, &e))?;
        }
        let identity = Identity {
            id: member_id.to_string(),
            authority: *authority,
            control: topics.control.to_string(),
            ack: topics.ack.to_string(),
        };
        let secret = Zeroizing::new(format!("{}\n", pair.secret_text().as_str()));
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            durable::replace_secret(&path, bytes, None).map_err(|e| io_err(&path, StoreError::Write, &e))
        };
        write(KEY_FILE, secret.as_bytes())?;
        write(IDENTITY_FILE, identity.encode().as_bytes())?;
        let state_path = dir.join(STATE_FILE);
        let lock = StateLock::acquire(WHAT, &state_path)?;
        let mut store = MemberFileStore { dir: dir.to_path_buf(), state_path, identity, agent, _lock: lock };
        store.persist()?;
        Ok((store, pair.public()))
    }

    /// Opens (and locks) the member in `dir`, loading and validating its
    /// record (`docs/PROTOCOL.md` 14.9).
    ///
    /// # Errors
    /// [`MemberFileError::State`] (`locked` when another process holds it,
    /// `read`); [`MemberFileError::Invalid`] for a missing, torn or corrupt
    /// identity, key or record, or a record of another member.
    pub fn open(dir: impl AsRef<Path>) -> Result<MemberFileStore, MemberFileError> {
        let dir = dir.as_ref();
        let state_path = dir.join(STATE_FILE);
        let lock = StateLock::acquire(WHAT, &state_path)?;
        let read = |path: &Path| -> Result<Zeroizing<Vec<u8>>, MemberFileError> {
            match durable::read(path) {
                Ok(Some(b)) => Ok(Zeroizing::new(b)),
                Ok(None) => Err(MemberFileError::Invalid(path.to_path_buf())),
                Err(e) => Err(io_err(path, StoreError::Read, &e)),
            }
        };
        let id_path = dir.join(IDENTITY_FILE);
        let identity = core::str::from_utf8(&read(&id_path)?)
            .ok()
            .and_then(Identity::decode)
            .ok_or_else(|| MemberFileError::Invalid(id_path.clone()))?;
        let key_path = dir.join(KEY_FILE);
        let key_bytes = read(&key_path)?;
        let pair = core::str::from_utf8(&key_bytes)
            .ok()
            .and_then(|t| StaticKeyPair::from_secret_text(t).ok())
            .ok_or_else(|| MemberFileError::Invalid(key_path.clone()))?;
        let record = read(&state_path)?;
        let agent = MemberAgent::new(&pair, &identity.id, &identity.authority, &identity.topics(), Some(&record))
            .map_err(|e| match e {
                Error::InvalidSnapshot => MemberFileError::Invalid(state_path.clone()),
                e => MemberFileError::Member(e),
            })?;
        Ok(MemberFileStore { dir: dir.to_path_buf(), state_path, identity, agent, _lock: lock })
    }

    /// The member's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The agent (epoch, state, control and ack topics, keys at a time).
    #[must_use]
    pub const fn agent(&self) -> &MemberAgent {
        &self.agent
    }

    /// The authority's public key.
    #[must_use]
    pub const fn authority(&self) -> &PublicKey {
        &self.identity.authority
    }

    /// The topic to subscribe to (QoS 1).
    #[must_use]
    pub fn control_topic(&self) -> &str {
        self.agent.control_topic()
    }

    /// The topic acks are published on.
    #[must_use]
    pub fn ack_topic(&self) -> &str {
        self.agent.ack_topic()
    }

    fn persist(&mut self) -> Result<(), MemberFileError> {
        let mut buf = Zeroizing::new(std::vec![0u8; MAX_MEMBER_STATE_LEN]);
        let n = self.agent.encode_state(&mut buf)?;
        durable::replace_secret(&self.state_path, &buf[..n], None)
            .map_err(|e| io_err(&self.state_path, StoreError::Write, &e))
    }

    /// Applies a control envelope received on `topic` (`docs/PROTOCOL.md`
    /// 14.6 and 14.8): verifies it, writes the new record durably, and only
    /// then returns the ack to publish. On any error nothing changed (in
    /// memory or on disk) and no ack exists.
    ///
    /// # Errors
    /// [`MemberFileError::Member`] with the core's rejection
    /// (`invalidControl`, `auth`, `duplicate`, `replay`, `staleEpoch`...);
    /// [`MemberFileError::State`] when the record could not be written
    /// durably (the ack is then never handed out).
    pub fn apply(&mut self, topic: &str, envelope: &[u8], now: Option<u64>) -> Result<AppliedAck, MemberFileError> {
        let staged = self.agent.stage(topic, envelope, now)?;
        // The counter file of each new assignment is created (at 0) before
        // the record that hands it out is written: a crash in between leaves
        // an unused file, which the next apply of the same state opens. An
        // assignment the member already held keeps its file; if that file
        // is gone, `sealer` refuses it instead of starting again at 0.
        for (group, key_id, sender_id) in staged.assignments() {
            let held = self.agent.state().and_then(|st| st.group(group)).and_then(|g| g.key(key_id));
            let held = held.is_some_and(|k| k.sender_id() == sender_id);
            let path = self.counter_path(group, key_id, sender_id);
            if !held && !path.exists() {
                drop(FileCounterStore::create(&path)?);
            }
        }
        durable::replace_secret(&self.state_path, staged.state(), None)
            .map_err(|e| io_err(&self.state_path, StoreError::Write, &e))?;
        let (epoch, wake_at) = (staged.epoch(), staged.wake_at());
        let (agent, ack) = staged.persisted();
        self.agent = agent;
        Ok(AppliedAck { epoch, ack, wake_at })
    }

    /// A verified message of `group` under `key_id` (members without a
    /// clock: `docs/PROTOCOL.md` 14.7). Returns true when that switched the
    /// sealing key; the switch is persisted before this returns.
    ///
    /// # Errors
    /// [`MemberFileError::State`] when the switch could not be persisted
    /// (the agent then stays on the old key).
    pub fn key_seen(&mut self, group: &str, key_id: u32, now: Option<u64>) -> Result<bool, MemberFileError> {
        let before = self.agent.clone();
        if !self.agent.key_seen(group, key_id, now) {
            return Ok(false);
        }
        if let Err(e) = self.persist() {
            self.agent = before;
            return Err(e);
        }
        Ok(true)
    }

    /// Scheduled switches ([`MemberAgent::tick`]).
    pub fn tick(&mut self, now: Option<u64>) -> Tick {
        self.agent.tick(now)
    }

    /// The keys of `group` accepted at `now`, the sealing key as primary
    /// (`Ok(None)`: not a member of the group).
    ///
    /// # Errors
    /// [`Error::KeyringFull`] when `N` is below the group's key count.
    pub fn keyring<const N: usize>(&self, group: &str, now: Option<u64>) -> Result<Option<Keyring<N>>, Error> {
        self.agent.keyring(group, now)
    }

    /// The counter file of an assignment.
    #[must_use]
    pub fn counter_path(&self, group: &str, key_id: u32, sender_id: u32) -> PathBuf {
        self.dir.join(format!("seal-{group}-{key_id}-{sender_id}.counter"))
    }

    /// A sealer for `group` at `now`: the assigned key, sender id and suite,
    /// with the counter file of that assignment (created at 0 by
    /// [`MemberFileStore::apply`] when the assignment was handed out: sender
    /// ids are never reused under a key, so a new assignment has used no
    /// counter; a missing file is refused, never made again). `Ok(None)`:
    /// not a member of the group (or no state yet).
    ///
    /// # Errors
    /// [`MemberFileError::State`] when the counter file cannot be opened,
    /// locked or created; [`MemberFileError::Member`] from the sealer
    /// (a corrupt counter file, exhausted counters).
    pub fn sealer(
        &self,
        group: &str,
        now: Option<u64>,
    ) -> Result<Option<(Sealing, Sealer<FileCounterStore>)>, MemberFileError> {
        let Some(s) = self.agent.sealing(group, now) else { return Ok(None) };
        let path = self.counter_path(group, s.key.id(), s.sender_id);
        let store = FileCounterStore::open(&path)?;
        let sealer = Sealer::new(&s.key, s.sender_id, s.suite, store)?;
        Ok(Some((s, sealer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        control_sealer, seal_control, ControlState, Group, GroupKey, Key, MemoryCounterStore, Suite,
        MAX_CONTROL_ENVELOPE_LEN,
    };
    #[allow(unused_imports)]
    use std::{prelude::v1::*, vec};

    fn authority() -> StaticKeyPair {
        StaticKeyPair::from_secret_bytes([0xA1; 32])
    }

    fn state(epoch: u64) -> ControlState {
        let mut s = ControlState::new("dev-1", epoch).unwrap();
        let mut g = Group::new("telemetry", 7, None).unwrap();
        g.push_key(GroupKey::new(&Key::from_bytes(7, [7; 32]), Suite::ChaCha20Poly1305, 11, 0, None)).unwrap();
        s.push_group(g).unwrap();
        s
    }

    fn envelope(member: &PublicKey, sealer_counter: u64, epoch: u64) -> Vec<u8> {
        let mut sealer = control_sealer(&authority(), member, MemoryCounterStore::starting_at(sealer_counter)).unwrap();
        let mut out = vec![0u8; MAX_CONTROL_ENVELOPE_LEN];
        let n = seal_control(&mut sealer, &ControlTopics::default(), &state(epoch), &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn init(dir: &Path) -> (MemberFileStore, PublicKey) {
        MemberFileStore::init(dir, "dev-1", &authority().public(), &ControlTopics::default()).unwrap()
    }

    #[test]
    fn apply_persists_then_acks_and_reopens_with_the_state() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        let (mut store, public) = init(&dir);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
            assert_eq!(mode(&dir.join(STATE_FILE)), 0o600);
        }
        let topic = store.control_topic().to_string();
        let applied = store.apply(&topic, &envelope(&public, 0, 1), None).unwrap();
        assert_eq!(applied.epoch, 1);
        assert!(!applied.ack.is_empty());
        // The same envelope again: a duplicate, nothing changes.
        let again = store.apply(&topic, &envelope(&public, 0, 1), None).unwrap_err();
        assert_eq!(again, MemberFileError::Member(Error::Duplicate));
        let (s, _) = store.sealer("telemetry", None).unwrap().unwrap();
        assert_eq!((s.key.id(), s.sender_id), (7, 11));
        assert!(store.counter_path("telemetry", 7, 11).exists());
        assert!(store.sealer("other", None).unwrap().is_none());
        drop(store);
        let store = MemberFileStore::open(&dir).unwrap();
        assert_eq!(store.agent().epoch(), 1);
        assert_eq!(store.authority(), &authority().public());
    }

    #[test]
    fn second_opener_is_locked_and_init_refuses_an_existing_member() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        let (store, _) = init(&dir);
        let err = MemberFileStore::open(&dir).unwrap_err();
        assert_eq!(err.code(), "locked", "{err}");
        drop(store);
        let again = MemberFileStore::init(&dir, "dev-1", &authority().public(), &ControlTopics::default());
        assert!(matches!(again, Err(MemberFileError::Exists(_))));
        MemberFileStore::open(&dir).unwrap();
    }

    #[test]
    fn torn_short_corrupt_or_missing_records_are_invalid_snapshots() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        let (mut store, public) = init(&dir);
        let topic = store.control_topic().to_string();
        store.apply(&topic, &envelope(&public, 0, 1), None).unwrap();
        drop(store);
        let path = dir.join(STATE_FILE);
        let good = fs::read(&path).unwrap();
        let mut cases: Vec<Vec<u8>> = vec![Vec::new(), good[..good.len() / 2].to_vec(), good[..20].to_vec()];
        for i in [0, 17, good.len() / 2, good.len() - 1] {
            let mut b = good.clone();
            b[i] ^= 0x40;
            cases.push(b);
        }
        for bad in cases {
            fs::write(&path, &bad).unwrap();
            let err = MemberFileStore::open(&dir).unwrap_err();
            assert_eq!(err.code(), "invalidSnapshot", "{err}");
            assert_eq!(err.core_error(), Error::InvalidSnapshot);
        }
        fs::remove_file(&path).unwrap();
        assert_eq!(MemberFileStore::open(&dir).unwrap_err().code(), "invalidSnapshot");
        // A torn write through the durable path leaves the old record.
        fs::write(&path, &good).unwrap();
        // (Up to the rename: after it, the new bytes are the file.)
        for crash in &durable::CRASH_POINTS[..3] {
            let _ = durable::replace_secret(&path, b"garbage", Some(*crash));
            let store = MemberFileStore::open(&dir).unwrap_or_else(|e| std::panic!("{crash:?}: {e}"));
            assert_eq!(store.agent().epoch(), 1);
            drop(store);
            fs::write(&path, &good).unwrap();
        }
        // Another member's record.
        let other = tmp.path().join("o");
        MemberFileStore::init(&other, "dev-2", &authority().public(), &ControlTopics::default()).unwrap();
        fs::copy(other.join(STATE_FILE), &path).unwrap();
        assert_eq!(MemberFileStore::open(&dir).unwrap_err().code(), "invalidSnapshot");
    }
}
