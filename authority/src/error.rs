//! The authority's typed errors.

use core::fmt;
use std::path::PathBuf;

/// Why a registry operation failed. Nothing is changed in the registry when
/// an operation returns an error (every change is one transaction).
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthorityError {
    /// SQLite failed (I/O, a locked database, a corrupt file).
    Sqlite(rusqlite::Error),
    /// Creating or checking the registry file failed.
    Io {
        /// The registry file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The registry file is readable or writable by its group or others.
    InsecurePermissions {
        /// The registry file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// `init` found a registry file already there.
    AlreadyExists(PathBuf),
    /// No registry file there (run `init` first).
    NotFound(PathBuf),
    /// The registry was written by another schema version.
    UnknownSchemaVersion(i64),
    /// The registry holds a value that breaks its own rules.
    Corrupt(String),
    /// The mqseal core refused (a bad name or key text, sealing, or an
    /// acknowledgement that does not open: [`mqseal::Error::Auth`],
    /// `duplicate`, `replay`, `invalidControl` with its reason).
    Core(mqseal::Error),
    /// No group with this name.
    UnknownGroup(String),
    /// A group with this name exists.
    GroupExists(String),
    /// No member with this id.
    UnknownMember(String),
    /// A member with this id exists (also a revoked one: ids are not reused).
    MemberExists(String),
    /// The member is already in the group.
    AlreadyMember {
        /// The member.
        member: String,
        /// The group.
        group: String,
    },
    /// The member was revoked.
    Revoked(String),
    /// The member would be in more than [`mqseal::MAX_GROUPS`] groups.
    TooManyGroups(String),
    /// The group would hold more than [`mqseal::MAX_KEYS_PER_GROUP`] keys
    /// still accepted: wait until an old key's end of acceptance, or rotate
    /// with a shorter grace period.
    TooManyKeys {
        /// The group.
        group: String,
        /// Keys it holds that are still accepted.
        live: usize,
    },
    /// A rotation of the group is already planned (its next key is not yet
    /// active).
    RotationPending {
        /// The group.
        group: String,
        /// The planned key.
        key_id: u32,
        /// Its activation time (Unix seconds).
        activation: u64,
    },
    /// The switch time is not after the activation of the group's newest key.
    BadRotationTime {
        /// The group.
        group: String,
        /// The requested switch time.
        at: u64,
        /// The newest key's activation.
        newest: u64,
    },
    /// Key ids, sender ids or a counter ran out (they are never reused).
    Exhausted(&'static str),
    /// An acknowledgement arrived on a topic outside the ack prefix.
    NotAnAckTopic(String),
    /// A verified acknowledgement names an epoch that was never sealed for
    /// that member.
    AckEpochNotIssued {
        /// The member.
        member: String,
        /// The epoch it claimed.
        epoch: u64,
    },
    /// The broker holds a control message this authority sealed that the
    /// registry does not know: a higher counter or epoch than it issued.
    /// The registry was restored from a backup or otherwise rolled back;
    /// serving on would hand out sender ids (hence nonces) twice.
    RolledBack {
        /// The member whose control topic holds it.
        member: String,
        /// Its envelope counter.
        counter: u64,
        /// Its epoch.
        epoch: u64,
        /// The registry's next control counter for that member.
        next_counter: u64,
        /// The highest epoch the registry sealed for that member.
        sealed_epoch: u64,
    },
}

impl AuthorityError {
    /// A short, stable camelCase name; for core errors, the core's code
    /// (`docs/PROTOCOL.md` section 10), so every binding reports the same.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            AuthorityError::Sqlite(_) => "registry",
            AuthorityError::Io { .. } => "io",
            AuthorityError::InsecurePermissions { .. } => "insecurePermissions",
            AuthorityError::AlreadyExists(_) => "alreadyExists",
            AuthorityError::NotFound(_) => "notFound",
            AuthorityError::UnknownSchemaVersion(_) => "unknownSchemaVersion",
            AuthorityError::Corrupt(_) => "corrupt",
            AuthorityError::Core(e) => e.code(),
            AuthorityError::UnknownGroup(_) => "unknownGroup",
            AuthorityError::GroupExists(_) => "groupExists",
            AuthorityError::UnknownMember(_) => "unknownMember",
            AuthorityError::MemberExists(_) => "memberExists",
            AuthorityError::AlreadyMember { .. } => "alreadyMember",
            AuthorityError::Revoked(_) => "revoked",
            AuthorityError::TooManyGroups(_) => "tooManyGroups",
            AuthorityError::TooManyKeys { .. } => "tooManyKeys",
            AuthorityError::RotationPending { .. } => "rotationPending",
            AuthorityError::BadRotationTime { .. } => "badRotationTime",
            AuthorityError::Exhausted(_) => "exhausted",
            AuthorityError::NotAnAckTopic(_) => "notAnAckTopic",
            AuthorityError::AckEpochNotIssued { .. } => "ackEpochNotIssued",
            AuthorityError::RolledBack { .. } => "rolledBack",
        }
    }
}

impl fmt::Display for AuthorityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthorityError::Sqlite(e) => write!(f, "registry database: {e}"),
            AuthorityError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            AuthorityError::InsecurePermissions { path, mode } => write!(
                f,
                "{}: mode {mode:o} lets other users read or write the registry, which holds every group \
                 secret; run `chmod 600` on it (and check who could have copied it)",
                path.display()
            ),
            AuthorityError::AlreadyExists(p) => write!(f, "{}: a registry already exists", p.display()),
            AuthorityError::NotFound(p) => {
                write!(f, "{}: no registry (create it with `mqseal authority init`)", p.display())
            }
            AuthorityError::UnknownSchemaVersion(v) => {
                write!(f, "registry schema version {v} is not supported by this build")
            }
            AuthorityError::Corrupt(why) => write!(f, "registry is inconsistent: {why}"),
            AuthorityError::Core(e) => write!(f, "{e} ({})", e.code()),
            AuthorityError::UnknownGroup(g) => write!(f, "no group {g:?}"),
            AuthorityError::GroupExists(g) => write!(f, "group {g:?} exists"),
            AuthorityError::UnknownMember(m) => write!(f, "no member {m:?}"),
            AuthorityError::MemberExists(m) => write!(f, "member {m:?} exists (member ids are never reused)"),
            AuthorityError::AlreadyMember { member, group } => write!(f, "{member:?} is already in {group:?}"),
            AuthorityError::Revoked(m) => write!(f, "member {m:?} is revoked"),
            AuthorityError::TooManyGroups(m) => {
                write!(f, "member {m:?} would be in more than {} groups", mqseal::MAX_GROUPS)
            }
            AuthorityError::TooManyKeys { group, live } => write!(
                f,
                "group {group:?} holds {live} keys still accepted; a rotation would exceed {} (wait for an \
                 old key's end of acceptance, or rotate with a shorter grace period)",
                mqseal::MAX_KEYS_PER_GROUP
            ),
            AuthorityError::RotationPending { group, key_id, activation } => {
                write!(f, "group {group:?} already has a rotation planned (key {key_id}, active at {activation})")
            }
            AuthorityError::BadRotationTime { group, at, newest } => {
                write!(f, "switch time {at} for group {group:?} is not after its newest key's activation {newest}")
            }
            AuthorityError::Exhausted(what) => write!(f, "{what} exhausted"),
            AuthorityError::NotAnAckTopic(t) => write!(f, "topic {t:?} is not an ack topic of this authority"),
            AuthorityError::AckEpochNotIssued { member, epoch } => {
                write!(f, "{member:?} acknowledged epoch {epoch}, which was never issued")
            }
            AuthorityError::RolledBack { member, counter, epoch, next_counter, sealed_epoch } => write!(
                f,
                "the broker holds a control message this authority sealed for {member:?} (counter {counter}, \
                 epoch {epoch}) that the registry never issued (its next counter {next_counter}, newest \
                 epoch {sealed_epoch}): the registry was restored from a backup or rolled back. Refusing to \
                 serve, which could hand out sender ids twice; see SECURITY.md, \"Restoring the registry\""
            ),
        }
    }
}

impl core::error::Error for AuthorityError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            AuthorityError::Sqlite(e) => Some(e),
            AuthorityError::Io { source, .. } => Some(source),
            AuthorityError::Core(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for AuthorityError {
    fn from(e: rusqlite::Error) -> Self {
        AuthorityError::Sqlite(e)
    }
}

impl From<mqseal::Error> for AuthorityError {
    fn from(e: mqseal::Error) -> Self {
        AuthorityError::Core(e)
    }
}
