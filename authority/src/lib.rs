//! The mqseal key authority (`docs/PROTOCOL.md` section 14, the
//! authority's side): a registry of members, groups, group keys and sender
//! ids in one SQLite file, and the sealed control messages it hands out.
//!
//! * Every change is one `BEGIN IMMEDIATE` transaction (`synchronous=FULL`,
//!   WAL journal), so a kill -9 at any point leaves the registry as it was
//!   before or after the change: a sender id or key id is never handed out
//!   twice, and a key members already hold is never lost.
//! * Sender ids come from a counter per key and key ids from a counter of
//!   the registry (from 1; 0 is the control key id): never reused, not
//!   after a revocation either (14.1).
//! * Any change that affects a member's state bumps its epoch;
//!   [`Registry::seal_pending`] seals the full state of each member whose
//!   epoch moved, advancing and committing the member's control counter and
//!   storing the envelope **before** returning it (14.5, rule 2). A restart
//!   republishes those same bytes; it never seals an epoch twice.
//! * [`Registry::record_ack`] opens an acknowledgement with the member's
//!   last ack counter and records the applied epoch.
//!
//! The registry file holds the authority's secret key and every group
//! secret: it is created with mode 0600 and refused when its group or
//! others can read or write it. Times are Unix seconds passed in by the
//! caller (`now`), so that the rules are testable without a clock.
#![forbid(unsafe_code)]

mod error;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use mqseal::{
    ControlState, ControlTopic, ControlTopics, Group, GroupKey, Key, MemoryCounterStore, Name, PublicKey,
    StaticKeyPair, Suite, MAX_CONTROL_ENVELOPE_LEN, MAX_GROUPS, MAX_KEYS_PER_GROUP,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use zeroize::{Zeroize, Zeroizing};

pub use error::AuthorityError;

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

/// Seconds between now and the switch of a rotation or revocation given no
/// switch time (`mqseal authority rotate` / `revoke` without `--at`): the
/// new key reaches every connected member as `seal_next` before anyone
/// seals with it (`docs/PROTOCOL.md` 14.5, rule 3). With a switch at once,
/// the first member to get its state seals under a key the others cannot
/// open yet, and those messages are lost (`unknownKey`).
pub const DEFAULT_SWITCH_LEAD: u64 = 30;

/// Result of the registry's operations.
pub type Result<T> = core::result::Result<T, AuthorityError>;

const SCHEMA: &str = "
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE authority (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret TEXT NOT NULL,
    public TEXT NOT NULL,
    control_prefix TEXT NOT NULL,
    ack_prefix TEXT NOT NULL,
    next_key_id INTEGER NOT NULL
);
CREATE TABLE groups (name TEXT PRIMARY KEY, suite INTEGER NOT NULL);
CREATE TABLE keys (
    key_id INTEGER PRIMARY KEY,
    group_name TEXT NOT NULL REFERENCES groups(name),
    secret BLOB NOT NULL,
    activation INTEGER NOT NULL,
    end_of_acceptance INTEGER,
    withdrawn INTEGER NOT NULL DEFAULT 0,
    next_sender_id INTEGER NOT NULL
);
CREATE TABLE members (
    id TEXT PRIMARY KEY,
    public TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    epoch INTEGER NOT NULL,
    sealed_epoch INTEGER NOT NULL DEFAULT 0,
    sealed BLOB,
    published_epoch INTEGER NOT NULL DEFAULT 0,
    next_control_counter INTEGER NOT NULL DEFAULT 0,
    last_ack_counter INTEGER,
    acked_epoch INTEGER NOT NULL DEFAULT 0,
    clear_pending INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE memberships (
    member TEXT NOT NULL REFERENCES members(id),
    group_name TEXT NOT NULL REFERENCES groups(name),
    PRIMARY KEY (member, group_name)
);
CREATE TABLE senders (
    key_id INTEGER NOT NULL REFERENCES keys(key_id),
    member TEXT NOT NULL REFERENCES members(id),
    sender_id INTEGER NOT NULL,
    PRIMARY KEY (key_id, member),
    UNIQUE (key_id, sender_id)
);
";

/// The authority's registry, open on one SQLite file.
pub struct Registry {
    conn: Connection,
    authority: StaticKeyPair,
    control_prefix: String,
    ack_prefix: String,
}

impl core::fmt::Debug for Registry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registry")
            .field("public", &self.public_text())
            .field("control_prefix", &self.control_prefix)
            .field("ack_prefix", &self.ack_prefix)
            .finish_non_exhaustive()
    }
}

/// Something to publish for [`Registry::seal_pending`]; after the broker
/// What [`Registry::check_retained`] found in a retained control message.
#[derive(Debug)]
#[non_exhaustive]
pub enum Retained {
    /// A state this registry issued (the same or an older epoch).
    Known {
        /// Its epoch.
        epoch: u64,
    },
    /// An empty retained message (a cleared topic).
    Cleared,
    /// A topic under the control prefix for a member id the registry does
    /// not know (another authority on the same prefix, or a member added
    /// after a backup the registry was restored from).
    UnknownMember(String),
    /// It does not open as this authority's message for that member
    /// (forged, from another authority, or moved from another topic).
    NotOurs(mqseal::Error),
    /// Not a topic under this authority's control prefix.
    NotAControlTopic,
}

/// acknowledged it, pass it to [`Registry::mark_published`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Outgoing {
    /// A sealed state: publish `envelope` retained, QoS 1, on `topic`.
    State {
        /// The member.
        member: String,
        /// Its control topic.
        topic: String,
        /// The epoch sealed in it.
        epoch: u64,
        /// The control envelope.
        envelope: Vec<u8>,
    },
    /// A revoked member: publish an empty retained message on `topic`
    /// (deletes its retained state).
    Clear {
        /// The member.
        member: String,
        /// Its control topic.
        topic: String,
    },
}

impl core::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Outgoing::State { member, topic, epoch, envelope } => f
                .debug_struct("State")
                .field("member", member)
                .field("topic", topic)
                .field("epoch", epoch)
                .field("len", &envelope.len())
                .finish(),
            Outgoing::Clear { member, topic } => {
                f.debug_struct("Clear").field("member", member).field("topic", topic).finish()
            }
        }
    }
}

impl Outgoing {
    /// The topic to publish on.
    #[must_use]
    pub fn topic(&self) -> &str {
        match self {
            Outgoing::State { topic, .. } | Outgoing::Clear { topic, .. } => topic,
        }
    }

    /// The payload to publish (retained, QoS 1).
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        match self {
            Outgoing::State { envelope, .. } => envelope,
            Outgoing::Clear { .. } => &[],
        }
    }
}

/// One member as [`Registry::status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// The member id.
    pub id: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// The latest epoch issued for it (its state changed up to this epoch).
    pub epoch: u64,
    /// The latest epoch sealed (stored for publishing).
    pub sealed_epoch: u64,
    /// The latest epoch the broker took.
    pub published_epoch: u64,
    /// The latest epoch it acknowledged.
    pub acked_epoch: u64,
}

impl MemberStatus {
    /// True when the member has not acknowledged its latest epoch.
    #[must_use]
    pub fn behind(&self) -> bool {
        !self.revoked && self.acked_epoch < self.epoch
    }
}

/// One group key as the registry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key id.
    pub key_id: u32,
    /// Its group.
    pub group: String,
    /// Activation (Unix seconds).
    pub activation: u64,
    /// End of acceptance, if set.
    pub end_of_acceptance: Option<u64>,
    /// Withdrawn before its activation (by a revocation).
    pub withdrawn: bool,
    /// The next sender id it would hand out.
    pub next_sender_id: u32,
}

/// A sender id assignment: `member` seals with `sender_id` under `key_id`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Assignment {
    /// The key.
    pub key_id: u32,
    /// The member.
    pub member: String,
    /// Its sender id under the key.
    pub sender_id: u32,
}

/// What [`Registry::record_ack`] recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckRecord {
    /// The member.
    pub member: String,
    /// The epoch it applied.
    pub epoch: u64,
    /// True when it is the member's latest epoch.
    pub current: bool,
}

fn sql_u64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| AuthorityError::Exhausted("64-bit value (above 2^63 - 1)"))
}

fn col_u64(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(i)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

fn col_opt_u64(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<u64>> {
    let v: Option<i64> = row.get(i)?;
    v.map(|v| u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))).transpose()
}

fn col_u32(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u32> {
    let v: i64 = row.get(i)?;
    u32::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

/// The current time in Unix seconds (0 if the clock is before 1970).
#[must_use]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuthorityError + '_ {
    move |source| AuthorityError::Io { path: path.to_path_buf(), source }
}

/// Refuses a registry file its group or others can access.
fn check_permissions(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => AuthorityError::NotFound(path.to_path_buf()),
        _ => AuthorityError::Io { path: path.to_path_buf(), source: e },
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AuthorityError::InsecurePermissions { path: path.to_path_buf(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(core::time::Duration::from_secs(10))?;
    // WAL: a reader (`status`) never blocks `serve`; FULL: a committed
    // transaction is on disk before COMMIT returns.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(AuthorityError::Corrupt(format!("journal mode {mode} instead of WAL")));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
    Ok(conn)
}

fn immediate(conn: &mut Connection) -> Result<Transaction<'_>> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

fn bump_epoch(tx: &Transaction<'_>, member: &str) -> Result<()> {
    tx.execute("UPDATE members SET epoch = epoch + 1 WHERE id = ?1", params![member])?;
    Ok(())
}

/// Allocates the next sender id under `key_id` for `member`.
fn assign_sender(tx: &Transaction<'_>, key_id: u32, member: &str) -> Result<()> {
    let next: u32 =
        tx.query_row("SELECT next_sender_id FROM keys WHERE key_id = ?1", params![key_id], |r| col_u32(r, 0))?;
    let after = next.checked_add(1).ok_or(AuthorityError::Exhausted("sender ids of a key"))?;
    tx.execute("UPDATE keys SET next_sender_id = ?1 WHERE key_id = ?2", params![after, key_id])?;
    tx.execute("INSERT INTO senders (key_id, member, sender_id) VALUES (?1, ?2, ?3)", params![key_id, member, next])?;
    Ok(())
}

/// A live key: not withdrawn, still accepted at `now`.
const LIVE: &str = "withdrawn = 0 AND (end_of_acceptance IS NULL OR end_of_acceptance > ?2)";

/// (key id, activation, end) of the live keys of a group, by activation.
fn live_keys(tx: &Connection, group: &str, now: u64) -> Result<Vec<(u32, u64, Option<u64>)>> {
    let mut stmt = tx.prepare(&format!(
        "SELECT key_id, activation, end_of_acceptance FROM keys WHERE group_name = ?1 AND {LIVE} \
         ORDER BY activation, key_id"
    ))?;
    let rows =
        stmt.query_map(params![group, sql_u64(now)?], |r| Ok((col_u32(r, 0)?, col_u64(r, 1)?, col_opt_u64(r, 2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn members_of(tx: &Connection, group: &str) -> Result<Vec<String>> {
    let mut stmt = tx.prepare("SELECT member FROM memberships WHERE group_name = ?1 ORDER BY member")?;
    let rows = stmt.query_map(params![group], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn groups_of(tx: &Connection, member: &str) -> Result<Vec<String>> {
    let mut stmt = tx.prepare("SELECT group_name FROM memberships WHERE member = ?1 ORDER BY group_name")?;
    let rows = stmt.query_map(params![member], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn group_suite(tx: &Connection, group: &str) -> Result<Suite> {
    let id: Option<u8> =
        tx.query_row("SELECT suite FROM groups WHERE name = ?1", params![group], |r| r.get(0)).optional()?;
    let id = id.ok_or_else(|| AuthorityError::UnknownGroup(group.to_owned()))?;
    Ok(Suite::from_id(id)?)
}

/// Creates a key in `group` active at `activation`, from the registry's
/// key-id counter, and gives every member of the group a sender id under it.
fn new_key(tx: &Transaction<'_>, group: &str, activation: u64) -> Result<u32> {
    let key_id: u32 = tx.query_row("SELECT next_key_id FROM authority", [], |r| col_u32(r, 0))?;
    let after = key_id.checked_add(1).ok_or(AuthorityError::Exhausted("key ids"))?;
    tx.execute("UPDATE authority SET next_key_id = ?1", params![after])?;
    let key = Key::generate(key_id)?;
    tx.execute(
        "INSERT INTO keys (key_id, group_name, secret, activation, next_sender_id) VALUES (?1, ?2, ?3, ?4, 1)",
        params![key_id, group, &key.expose_secret()[..], sql_u64(activation)?],
    )?;
    for m in members_of(tx, group)? {
        assign_sender(tx, key_id, &m)?;
        bump_epoch(tx, &m)?;
    }
    Ok(key_id)
}

/// How a rotation treats the keys it replaces.
#[derive(Clone, Copy)]
enum Mode {
    /// `rotate`: refuse when a rotation is already planned.
    Scheduled,
    /// `revoke`: withdraw a planned key (the revoked member holds it).
    Revoke {
        /// Cut every old key's acceptance at the switch.
        hard: bool,
    },
}

fn rotate_in(tx: &Transaction<'_>, group: &str, at: Option<u64>, grace: u64, now: u64, mode: Mode) -> Result<u32> {
    group_suite(tx, group)?;
    let now_i = sql_u64(now)?;
    let live = live_keys(tx, group, now)?;
    if let Some(&(key_id, activation, _)) = live.iter().find(|k| k.1 > now) {
        match mode {
            Mode::Scheduled => {
                return Err(AuthorityError::RotationPending { group: group.to_owned(), key_id, activation })
            }
            Mode::Revoke { .. } => {
                tx.execute(
                    "UPDATE keys SET withdrawn = 1 WHERE group_name = ?1 AND activation > ?2 AND withdrawn = 0",
                    params![group, now_i],
                )?;
            }
        }
    }
    let live = live_keys(tx, group, now)?;
    let newest = live.iter().map(|k| k.1).max().unwrap_or(0);
    let at = at.unwrap_or_else(|| now.max(newest.saturating_add(1)));
    if at <= newest {
        return Err(AuthorityError::BadRotationTime { group: group.to_owned(), at, newest });
    }
    let end = at.checked_add(grace).ok_or(AuthorityError::Exhausted("time"))?;
    let end_i = sql_u64(end)?;
    match mode {
        Mode::Revoke { hard: true } => tx.execute(
            &format!(
                "UPDATE keys SET end_of_acceptance = MIN(COALESCE(end_of_acceptance, ?3), ?3) \
                 WHERE group_name = ?1 AND {LIVE}"
            ),
            params![group, now_i, end_i],
        )?,
        _ => tx.execute(
            "UPDATE keys SET end_of_acceptance = ?2 WHERE group_name = ?1 AND withdrawn = 0 \
             AND end_of_acceptance IS NULL",
            params![group, end_i],
        )?,
    };
    let still = live_keys(tx, group, now)?.len();
    if still >= MAX_KEYS_PER_GROUP {
        return Err(AuthorityError::TooManyKeys { group: group.to_owned(), live: still });
    }
    new_key(tx, group, at)
}

impl Registry {
    /// Creates a registry at `path` (mode 0600; refuses an existing file)
    /// with a fresh authority key pair and the given topic prefixes
    /// (`None`: the defaults of `docs/PROTOCOL.md` 14.2). Returns it and
    /// the authority's public key in its text form
    /// (`mqseal:x25519-public:v1:...`), which members need.
    ///
    /// # Errors
    /// [`AuthorityError::AlreadyExists`], [`AuthorityError::Io`], SQLite
    /// errors, [`AuthorityError::Core`] for a bad prefix.
    pub fn init(path: &Path, topics: Option<ControlTopics<'_>>) -> Result<(Registry, String)> {
        let topics = topics.unwrap_or_default();
        // Both prefixes must build valid topics (checked with a sample id).
        ControlTopic::new(topics.control, "m")?;
        ControlTopic::new(topics.ack, "m")?;
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(AuthorityError::AlreadyExists(path.to_path_buf()))
            }
            Err(e) => return Err(io_err(path)(e)),
        }
        check_permissions(path)?;
        let mut conn = connect(path)?;
        let pair = StaticKeyPair::generate()?;
        let public = pair.public().to_text().as_str().to_owned();
        let secret = Zeroizing::new(pair.secret_text().as_str().to_owned());
        let tx = immediate(&mut conn)?;
        tx.execute_batch(SCHEMA)?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", params![SCHEMA_VERSION])?;
        tx.execute(
            "INSERT INTO authority (id, secret, public, control_prefix, ack_prefix, next_key_id) \
             VALUES (1, ?1, ?2, ?3, ?4, 1)",
            params![secret.as_str(), public, topics.control, topics.ack],
        )?;
        tx.commit()?;
        let reg = Registry {
            conn,
            authority: pair,
            control_prefix: topics.control.to_owned(),
            ack_prefix: topics.ack.to_owned(),
        };
        Ok((reg, public))
    }

    /// Opens an existing registry.
    ///
    /// # Errors
    /// [`AuthorityError::NotFound`], [`AuthorityError::InsecurePermissions`],
    /// [`AuthorityError::UnknownSchemaVersion`], [`AuthorityError::Corrupt`],
    /// SQLite errors.
    pub fn open(path: &Path) -> Result<Registry> {
        check_permissions(path)?;
        let conn = connect(path)?;
        let version: Option<i64> = conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .optional()
            .map_err(|e| AuthorityError::Corrupt(format!("no schema version ({e})")))?;
        match version {
            Some(SCHEMA_VERSION) => {}
            Some(v) => return Err(AuthorityError::UnknownSchemaVersion(v)),
            None => return Err(AuthorityError::Corrupt("no schema version".into())),
        }
        let (secret, control_prefix, ack_prefix): (Zeroizing<String>, String, String) =
            conn.query_row("SELECT secret, control_prefix, ack_prefix FROM authority WHERE id = 1", [], |r| {
                Ok((Zeroizing::new(r.get::<_, String>(0)?), r.get(1)?, r.get(2)?))
            })?;
        let authority = StaticKeyPair::from_secret_text(&secret)?;
        Ok(Registry { conn, authority, control_prefix, ack_prefix })
    }

    /// The authority's public key, `mqseal:x25519-public:v1:...`.
    #[must_use]
    pub fn public_text(&self) -> String {
        self.authority.public().to_text().as_str().to_owned()
    }

    /// The topic prefixes.
    #[must_use]
    pub fn topics(&self) -> ControlTopics<'_> {
        ControlTopics { control: &self.control_prefix, ack: &self.ack_prefix }
    }

    /// Creates a group whose first key (suite `suite`) is active from `now`.
    ///
    /// # Errors
    /// [`AuthorityError::GroupExists`]; [`AuthorityError::Core`] for a bad
    /// name; SQLite errors.
    pub fn create_group(&mut self, name: &str, suite: Suite, now: u64) -> Result<u32> {
        Name::new(name)?;
        let tx = immediate(&mut self.conn)?;
        if group_suite(&tx, name).is_ok() {
            return Err(AuthorityError::GroupExists(name.to_owned()));
        }
        tx.execute("INSERT INTO groups (name, suite) VALUES (?1, ?2)", params![name, suite.id()])?;
        let key_id = new_key(&tx, name, now)?;
        tx.commit()?;
        Ok(key_id)
    }

    /// Enrols a member with its public key text
    /// (`mqseal:x25519-public:v1:...`) into `groups`.
    ///
    /// # Errors
    /// [`AuthorityError::MemberExists`], [`AuthorityError::UnknownGroup`],
    /// [`AuthorityError::TooManyGroups`]; [`AuthorityError::Core`] for a bad
    /// id or key (also a low-order public key); SQLite errors.
    pub fn add_member(&mut self, id: &str, public: &str, groups: &[&str], now: u64) -> Result<()> {
        Name::new(id)?;
        let key = PublicKey::from_text(public)?;
        // Refuses a key with no usable pairwise key (low order) now, not at
        // the first seal.
        self.authority.pairwise(&key, mqseal::CONTROL_KEY_ID)?;
        let tx = immediate(&mut self.conn)?;
        let exists: Option<i64> =
            tx.query_row("SELECT 1 FROM members WHERE id = ?1", params![id], |r| r.get(0)).optional()?;
        if exists.is_some() {
            return Err(AuthorityError::MemberExists(id.to_owned()));
        }
        tx.execute("INSERT INTO members (id, public, epoch) VALUES (?1, ?2, 1)", params![id, key.to_text().as_str()])?;
        for g in groups {
            join_in(&tx, id, g, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds a member to a group: a sender id under each key of the group
    /// still accepted.
    ///
    /// # Errors
    /// [`AuthorityError::UnknownMember`], [`AuthorityError::Revoked`],
    /// [`AuthorityError::UnknownGroup`], [`AuthorityError::AlreadyMember`],
    /// [`AuthorityError::TooManyGroups`]; SQLite errors.
    pub fn join(&mut self, member: &str, group: &str, now: u64) -> Result<()> {
        let tx = immediate(&mut self.conn)?;
        active_member(&tx, member)?;
        join_in(&tx, member, group, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Plans a rotation of `group`: a new key active at `at` (default:
    /// `now`), handed out now as `seal_next`; the current key is accepted
    /// until `at + grace`. Returns the new key id.
    ///
    /// # Errors
    /// [`AuthorityError::UnknownGroup`], [`AuthorityError::RotationPending`],
    /// [`AuthorityError::BadRotationTime`], [`AuthorityError::TooManyKeys`];
    /// SQLite errors.
    pub fn rotate(&mut self, group: &str, at: Option<u64>, grace: u64, now: u64) -> Result<u32> {
        let tx = immediate(&mut self.conn)?;
        let id = rotate_in(&tx, group, at, grace, now, Mode::Scheduled)?;
        tx.commit()?;
        Ok(id)
    }

    /// Revokes a member (`docs/PROTOCOL.md` 14.5, rule 4): removes it from
    /// its groups, rotates each of them at once with a key given to the
    /// others only (a planned key, which the member holds, is withdrawn),
    /// and marks its control topic for an empty retained message. The old
    /// keys stay accepted for `grace` seconds; `hard` ends them at the switch.
    /// [`Registry::revoke_at`] with the switch at `now`.
    ///
    /// # Errors
    /// [`AuthorityError::UnknownMember`], [`AuthorityError::Revoked`],
    /// [`AuthorityError::TooManyKeys`]; SQLite errors.
    pub fn revoke(&mut self, member: &str, hard: bool, grace: u64, now: u64) -> Result<()> {
        self.revoke_at(member, hard, None, grace, now)
    }

    /// [`Registry::revoke`] with the switch to the new keys at `at` (`None`:
    /// now). A switch a few seconds ahead hands the new key out before it is
    /// used (rule 3): a member that switches at once on receiving its state
    /// would otherwise seal under a key that receivers whose state comes
    /// later cannot open yet (`unknownKey`, the message is lost). The revoked
    /// member can read what is sealed until the switch.
    ///
    /// # Errors
    /// As [`Registry::revoke`]; [`AuthorityError::BadRotationTime`] for an
    /// `at` not after the newest key's activation.
    pub fn revoke_at(&mut self, member: &str, hard: bool, at: Option<u64>, grace: u64, now: u64) -> Result<()> {
        let tx = immediate(&mut self.conn)?;
        active_member(&tx, member)?;
        let groups = groups_of(&tx, member)?;
        tx.execute("DELETE FROM memberships WHERE member = ?1", params![member])?;
        tx.execute("UPDATE members SET revoked = 1, clear_pending = 1 WHERE id = ?1", params![member])?;
        for g in &groups {
            rotate_in(&tx, g, at, if hard { 0 } else { grace }, now, Mode::Revoke { hard })?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The full state of a member at `now`, at its latest epoch (checked).
    ///
    /// # Errors
    /// [`AuthorityError::UnknownMember`]; [`AuthorityError::Core`] for a
    /// state that breaks a rule; SQLite errors.
    pub fn state(&self, member: &str, now: u64) -> Result<ControlState> {
        let epoch: Option<u64> = self
            .conn
            .query_row("SELECT epoch FROM members WHERE id = ?1", params![member], |r| col_u64(r, 0))
            .optional()?;
        let epoch = epoch.ok_or_else(|| AuthorityError::UnknownMember(member.to_owned()))?;
        build_state(&self.conn, member, epoch, now)
    }

    /// Seals the state of every member whose epoch moved, each in its own
    /// transaction that advances the member's control counter and stores
    /// the envelope; then returns everything the broker has not taken yet
    /// (sealed states and empty retained messages for revoked members).
    ///
    /// # Errors
    /// SQLite errors; [`AuthorityError::Core`] for a state that breaks a
    /// rule (nothing is sealed for that member).
    pub fn seal_pending(&mut self, now: u64) -> Result<Vec<Outgoing>> {
        let due: Vec<String> = {
            let mut stmt =
                self.conn.prepare("SELECT id FROM members WHERE revoked = 0 AND epoch > sealed_epoch ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for m in due {
            self.seal_member(&m, now)?;
        }
        self.unpublished()
    }

    fn seal_member(&mut self, member: &str, now: u64) -> Result<()> {
        let authority = self.authority.clone();
        let control = self.control_prefix.clone();
        let ack = self.ack_prefix.clone();
        let tx = immediate(&mut self.conn)?;
        let row: Option<(u64, u64, u64, String)> = tx
            .query_row(
                "SELECT epoch, sealed_epoch, next_control_counter, public FROM members \
                 WHERE id = ?1 AND revoked = 0",
                params![member],
                |r| Ok((col_u64(r, 0)?, col_u64(r, 1)?, col_u64(r, 2)?, r.get(3)?)),
            )
            .optional()?;
        // Another process may have sealed it meanwhile.
        let Some((epoch, sealed, counter, public)) = row.filter(|r| r.0 > r.1) else {
            return Ok(());
        };
        let _ = sealed;
        let state = build_state(&tx, member, epoch, now)?;
        // Raised to the clock floor: a registry restored from a backup must
        // not seal under a counter it already used (PROTOCOL.md 14.5, 5).
        let counter = mqseal::control_counter(counter, now.saturating_mul(1000));
        let next = counter.checked_add(1).ok_or(AuthorityError::Exhausted("control counter"))?;
        let mut sealer = mqseal::control_sealer(
            &authority,
            &PublicKey::from_text(&public)?,
            MemoryCounterStore::starting_at(counter),
        )?;
        let mut out = vec![0u8; MAX_CONTROL_ENVELOPE_LEN];
        let n = mqseal::seal_control(&mut sealer, &ControlTopics { control: &control, ack: &ack }, &state, &mut out)?;
        out.truncate(n);
        tx.execute(
            "UPDATE members SET sealed = ?1, sealed_epoch = ?2, next_control_counter = ?3 WHERE id = ?4",
            params![out, sql_u64(epoch)?, sql_u64(next)?, member],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Checks a retained message found on a member's control topic against
    /// the registry (`docs/PROTOCOL.md` 14.5, rule 6). Run it on what the
    /// broker holds before publishing anything.
    ///
    /// # Errors
    /// [`AuthorityError::RolledBack`] for a message this authority sealed
    /// with a counter or epoch the registry never issued; SQLite errors.
    pub fn check_retained(&self, topic: &str, envelope: &[u8]) -> Result<Retained> {
        let Some(member) = topic
            .strip_prefix(self.control_prefix.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|m| !m.is_empty() && !m.contains('/'))
        else {
            return Ok(Retained::NotAControlTopic);
        };
        if envelope.is_empty() {
            return Ok(Retained::Cleared);
        }
        let row: Option<(String, u64, u64)> = self
            .conn
            .query_row(
                "SELECT public, next_control_counter, sealed_epoch FROM members WHERE id = ?1",
                params![member],
                |r| Ok((r.get(0)?, col_u64(r, 1)?, col_u64(r, 2)?)),
            )
            .optional()?;
        let Some((public, next_counter, sealed_epoch)) = row else {
            return Ok(Retained::UnknownMember(member.to_owned()));
        };
        let mut buf = envelope.to_vec();
        let own = match mqseal::open_own_control(
            &self.authority,
            &PublicKey::from_text(&public)?,
            member,
            &self.topics(),
            topic,
            &mut buf,
        ) {
            Ok(own) => own,
            Err(e) => return Ok(Retained::NotOurs(e)),
        };
        if own.counter >= next_counter || own.epoch > sealed_epoch {
            return Err(AuthorityError::RolledBack {
                member: member.to_owned(),
                counter: own.counter,
                epoch: own.epoch,
                next_counter,
                sealed_epoch,
            });
        }
        Ok(Retained::Known { epoch: own.epoch })
    }

    fn outgoing_rows(&self, sql: &str) -> Result<Vec<Outgoing>> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, col_u64(r, 1)?, r.get::<_, Option<Vec<u8>>>(2)?, r.get::<_, bool>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (member, epoch, sealed, revoked) = row?;
            let topic = ControlTopic::new(&self.control_prefix, &member)?.as_str().to_owned();
            match (revoked, sealed) {
                (true, _) => out.push(Outgoing::Clear { member, topic }),
                (false, Some(envelope)) => out.push(Outgoing::State { member, topic, epoch, envelope }),
                (false, None) => {}
            }
        }
        Ok(out)
    }

    /// What the broker has not taken yet (see [`Registry::seal_pending`]).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn unpublished(&self) -> Result<Vec<Outgoing>> {
        self.outgoing_rows(
            "SELECT id, sealed_epoch, sealed, revoked FROM members \
             WHERE (revoked = 0 AND sealed_epoch > published_epoch) OR (revoked = 1 AND clear_pending = 1) ORDER BY id",
        )
    }

    /// Every member's latest sealed state (and an empty message for each
    /// revoked member), to republish the same bytes after a restart, e.g.
    /// to a broker that lost its retained messages.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn all_sealed(&self) -> Result<Vec<Outgoing>> {
        self.outgoing_rows("SELECT id, sealed_epoch, sealed, revoked FROM members ORDER BY id")
    }

    /// Records that the broker took `item`.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn mark_published(&mut self, item: &Outgoing) -> Result<()> {
        let tx = immediate(&mut self.conn)?;
        match item {
            Outgoing::State { member, epoch, .. } => tx.execute(
                "UPDATE members SET published_epoch = MAX(published_epoch, ?1) WHERE id = ?2",
                params![sql_u64(*epoch)?, member],
            )?,
            Outgoing::Clear { member, .. } => {
                tx.execute("UPDATE members SET clear_pending = 0 WHERE id = ?1", params![member])?
            }
        };
        tx.commit()?;
        Ok(())
    }

    /// Opens an acknowledgement that arrived on `topic` (`<ack prefix>/<member-id>`)
    /// with the member's last ack counter, and records its epoch.
    ///
    /// # Errors
    /// [`AuthorityError::NotAnAckTopic`], [`AuthorityError::UnknownMember`],
    /// [`AuthorityError::Revoked`], [`AuthorityError::AckEpochNotIssued`],
    /// and [`AuthorityError::Core`] with the reason the core refused it
    /// (`auth`, `duplicate`, `replay`, `invalidControl`); SQLite errors.
    pub fn record_ack(&mut self, topic: &str, envelope: &[u8]) -> Result<AckRecord> {
        let member = topic
            .strip_prefix(self.ack_prefix.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|m| !m.is_empty() && !m.contains('/'))
            .ok_or_else(|| AuthorityError::NotAnAckTopic(topic.to_owned()))?
            .to_owned();
        let authority = self.authority.clone();
        let control = self.control_prefix.clone();
        let ack = self.ack_prefix.clone();
        let tx = immediate(&mut self.conn)?;
        let row: Option<(String, bool, Option<u64>, u64, u64)> = tx
            .query_row(
                "SELECT public, revoked, last_ack_counter, sealed_epoch, epoch FROM members WHERE id = ?1",
                params![member],
                |r| Ok((r.get(0)?, r.get(1)?, col_opt_u64(r, 2)?, col_u64(r, 3)?, col_u64(r, 4)?)),
            )
            .optional()?;
        let (public, revoked, last, sealed, epoch) =
            row.ok_or_else(|| AuthorityError::UnknownMember(member.clone()))?;
        if revoked {
            return Err(AuthorityError::Revoked(member));
        }
        let mut buf = envelope.to_vec();
        let got = mqseal::open_ack(
            &authority,
            &PublicKey::from_text(&public)?,
            &member,
            &ControlTopics { control: &control, ack: &ack },
            topic,
            &mut buf,
            last,
        )?;
        if got.ack.epoch > sealed {
            return Err(AuthorityError::AckEpochNotIssued { member, epoch: got.ack.epoch });
        }
        tx.execute(
            "UPDATE members SET last_ack_counter = ?1, acked_epoch = MAX(acked_epoch, ?2) WHERE id = ?3",
            params![sql_u64(got.counter)?, sql_u64(got.ack.epoch)?, member],
        )?;
        tx.commit()?;
        Ok(AckRecord { member, epoch: got.ack.epoch, current: got.ack.epoch == epoch })
    }

    /// Every member, by id.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn status(&self) -> Result<Vec<MemberStatus>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, revoked, epoch, sealed_epoch, published_epoch, acked_epoch FROM members ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(MemberStatus {
                id: r.get(0)?,
                groups: Vec::new(),
                revoked: r.get(1)?,
                epoch: col_u64(r, 2)?,
                sealed_epoch: col_u64(r, 3)?,
                published_epoch: col_u64(r, 4)?,
                acked_epoch: col_u64(r, 5)?,
            })
        })?;
        let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        for m in &mut out {
            m.groups = groups_of(&self.conn, &m.id)?;
        }
        Ok(out)
    }

    /// Every group with its suite.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn groups(&self) -> Result<Vec<(String, Suite)>> {
        let mut stmt = self.conn.prepare("SELECT name, suite FROM groups ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u8>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, suite) = row?;
            out.push((name, Suite::from_id(suite)?));
        }
        Ok(out)
    }

    /// Every key the registry ever made, by id (secrets not included).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn keys(&self) -> Result<Vec<KeyInfo>> {
        let mut stmt = self.conn.prepare(
            "SELECT key_id, group_name, activation, end_of_acceptance, withdrawn, next_sender_id FROM keys \
             ORDER BY key_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(KeyInfo {
                key_id: col_u32(r, 0)?,
                group: r.get(1)?,
                activation: col_u64(r, 2)?,
                end_of_acceptance: col_opt_u64(r, 3)?,
                withdrawn: r.get(4)?,
                next_sender_id: col_u32(r, 5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every sender id assignment, by key id then sender id.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn assignments(&self) -> Result<Vec<Assignment>> {
        let mut stmt = self.conn.prepare("SELECT key_id, member, sender_id FROM senders ORDER BY key_id, sender_id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Assignment { key_id: col_u32(r, 0)?, member: r.get(1)?, sender_id: col_u32(r, 2)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The next control counter of a member (every counter below it was
    /// used at most once).
    ///
    /// # Errors
    /// [`AuthorityError::UnknownMember`]; SQLite errors.
    pub fn next_control_counter(&self, member: &str) -> Result<u64> {
        let v: Option<u64> = self
            .conn
            .query_row("SELECT next_control_counter FROM members WHERE id = ?1", params![member], |r| col_u64(r, 0))
            .optional()?;
        v.ok_or_else(|| AuthorityError::UnknownMember(member.to_owned()))
    }

    /// The group due for a scheduled rotation at `now` with a period of
    /// `every` seconds, handed out `lead` seconds ahead: each group without
    /// a planned key whose newest key activated at least `every - lead`
    /// seconds ago, with the switch time (`activation + every`, or `now`
    /// when that is already past).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn due_rotations(&self, now: u64, every: u64, lead: u64) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for (group, _) in self.groups()? {
            let live = live_keys(&self.conn, &group, now)?;
            if live.iter().any(|k| k.1 > now) {
                continue;
            }
            let newest = live.iter().map(|k| k.1).max().unwrap_or(0);
            let switch = newest.saturating_add(every);
            if switch.saturating_sub(lead) <= now {
                out.push((group, switch.max(now).max(newest.saturating_add(1))));
            }
        }
        Ok(out)
    }

    /// Checks the registry's invariants: SQLite's integrity check, sender
    /// ids and key ids below their counters and unique, epochs and counters
    /// consistent. Used after crashes and by tests.
    ///
    /// # Errors
    /// [`AuthorityError::Corrupt`] naming the broken rule; SQLite errors.
    pub fn verify(&self) -> Result<()> {
        let ok: String = self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if ok != "ok" {
            return Err(AuthorityError::Corrupt(format!("integrity check: {ok}")));
        }
        let next_key: u32 = self.conn.query_row("SELECT next_key_id FROM authority", [], |r| col_u32(r, 0))?;
        let keys = self.keys()?;
        if keys.iter().any(|k| k.key_id == 0 || k.key_id >= next_key) {
            return Err(AuthorityError::Corrupt("a key id at or above the key-id counter, or 0".into()));
        }
        let assignments = self.assignments()?;
        for a in &assignments {
            let Some(k) = keys.iter().find(|k| k.key_id == a.key_id) else {
                return Err(AuthorityError::Corrupt(format!("sender id for unknown key {}", a.key_id)));
            };
            if a.sender_id == 0 || a.sender_id >= k.next_sender_id {
                return Err(AuthorityError::Corrupt(format!(
                    "sender id {} under key {} not below its counter",
                    a.sender_id, a.key_id
                )));
            }
        }
        let bad: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM members WHERE sealed_epoch > epoch OR published_epoch > sealed_epoch \
             OR acked_epoch > sealed_epoch OR (sealed IS NULL) != (sealed_epoch = 0) \
             OR (sealed IS NOT NULL AND next_control_counter = 0)",
            [],
            |r| r.get(0),
        )?;
        if bad != 0 {
            return Err(AuthorityError::Corrupt(format!("{bad} members with inconsistent epochs or counters")));
        }
        Ok(())
    }

    /// The registry file's path, as SQLite knows it.
    #[must_use]
    pub fn path(&self) -> Option<PathBuf> {
        self.conn.path().map(PathBuf::from)
    }
}

fn active_member(tx: &Connection, member: &str) -> Result<()> {
    let revoked: Option<bool> =
        tx.query_row("SELECT revoked FROM members WHERE id = ?1", params![member], |r| r.get(0)).optional()?;
    match revoked {
        None => Err(AuthorityError::UnknownMember(member.to_owned())),
        Some(true) => Err(AuthorityError::Revoked(member.to_owned())),
        Some(false) => Ok(()),
    }
}

fn join_in(tx: &Transaction<'_>, member: &str, group: &str, now: u64) -> Result<()> {
    group_suite(tx, group)?;
    let groups = groups_of(tx, member)?;
    if groups.iter().any(|g| g == group) {
        return Err(AuthorityError::AlreadyMember { member: member.to_owned(), group: group.to_owned() });
    }
    if groups.len() >= MAX_GROUPS {
        return Err(AuthorityError::TooManyGroups(member.to_owned()));
    }
    tx.execute("INSERT INTO memberships (member, group_name) VALUES (?1, ?2)", params![member, group])?;
    for (key_id, _, _) in live_keys(tx, group, now)? {
        assign_sender(tx, key_id, member)?;
    }
    bump_epoch(tx, member)?;
    Ok(())
}

/// The state of `member` at `now` (14.4): for each of its groups, the keys
/// still accepted that it holds a sender id under; `seal_now` is the newest
/// key already active, `seal_next` the one planned after it.
fn build_state(conn: &Connection, member: &str, epoch: u64, now: u64) -> Result<ControlState> {
    let mut state = ControlState::new(member, epoch)?;
    let now_i = sql_u64(now)?;
    for group in groups_of(conn, member)? {
        let suite = group_suite(conn, &group)?;
        let mut stmt = conn.prepare(&format!(
            "SELECT k.key_id, k.secret, k.activation, k.end_of_acceptance, s.sender_id FROM keys k \
             JOIN senders s ON s.key_id = k.key_id AND s.member = ?3 WHERE k.group_name = ?1 AND {LIVE} \
             ORDER BY k.key_id"
        ))?;
        let rows = stmt.query_map(params![group, now_i, member], |r| {
            let secret: Zeroizing<Vec<u8>> = Zeroizing::new(r.get(1)?);
            Ok((col_u32(r, 0)?, secret, col_u64(r, 2)?, col_opt_u64(r, 3)?, col_u32(r, 4)?))
        })?;
        let keys = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let current = keys
            .iter()
            .filter(|k| k.2 <= now)
            .max_by_key(|k| (k.2, k.0))
            .or_else(|| keys.iter().min_by_key(|k| (k.2, k.0)))
            .ok_or_else(|| AuthorityError::Corrupt(format!("group {group} has no key for {member}")))?;
        let next = keys.iter().filter(|k| k.2 > current.2).min_by_key(|k| (k.2, k.0));
        let mut g = Group::new(&group, current.0, next.map(|k| k.0))?;
        for (key_id, secret, activation, end, sender_id) in &keys {
            let mut bytes: [u8; mqseal::KEY_LEN] = secret
                .as_slice()
                .try_into()
                .map_err(|_| AuthorityError::Corrupt(format!("key {key_id} secret is not 32 bytes")))?;
            let key = Key::from_bytes(*key_id, bytes);
            bytes.zeroize();
            g.push_key(GroupKey::new(&key, suite, *sender_id, *activation, *end))?;
        }
        state.push_group(g)?;
    }
    state.check()?;
    Ok(state)
}
