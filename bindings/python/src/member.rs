//! `mqseal.Member`: the key-distribution member agent (`docs/PROTOCOL.md`
//! section 14), the core's [`mqseal::MemberAgent`] bytes in, bytes out.
//!
//! There is no member file store in this package yet: the caller keeps the
//! member-state record. The contract of 14.8 is enforced here: `handle`
//! stages the message (the core's [`MemberAgent::stage`]) and returns only
//! the record to persist; `persisted()` (called once the record is durably
//! written) makes the new keys the ones in use; only then does `ack()`
//! give the ack envelope. `ack()` before `persisted()` raises.

use std::sync::Mutex;

use mqseal::{ControlTopics, MemberAgent, Staged, DEFAULT_ACK_PREFIX, DEFAULT_CONTROL_PREFIX, MAX_KEYS_PER_GROUP};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{core_err, lock, Key, Keyring, PublicKey, StaticKeyPair};

struct State {
    agent: MemberAgent,
    staged: Option<Staged>,
    ack: Option<Vec<u8>>,
}

/// A staged control message: persist `state`, then call
/// `Member.persisted()`.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct StagedState {
    state: Vec<u8>,
    epoch: u64,
    wake_at: Option<u64>,
}

#[pymethods]
impl StagedState {
    /// The member-state record to write durably (holds group secrets).
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.state)
    }

    /// The epoch of the staged state.
    #[getter]
    fn epoch(&self) -> u64 {
        self.epoch
    }

    /// When to call `Member.tick` next (Unix seconds), or None.
    #[getter]
    fn wake_at(&self) -> Option<u64> {
        self.wake_at
    }

    fn __repr__(&self) -> String {
        format!(
            "StagedState(epoch={}, state=<{} bytes, redacted>, wake_at={:?})",
            self.epoch,
            self.state.len(),
            self.wake_at
        )
    }
}

/// What to seal with in a group now.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct Sealing {
    key: mqseal::Key,
    sender_id: u32,
    suite: &'static str,
}

#[pymethods]
impl Sealing {
    /// The group key (its secret).
    #[getter]
    fn key(&self) -> Key {
        Key(self.key.clone())
    }

    /// The key id.
    #[getter]
    fn key_id(&self) -> u32 {
        self.key.id()
    }

    /// The sender id the authority assigned to this member under the key.
    #[getter]
    fn sender_id(&self) -> u32 {
        self.sender_id
    }

    /// `chacha20poly1305` or `hmac-sha256`.
    #[getter]
    fn suite(&self) -> &'static str {
        self.suite
    }

    fn __repr__(&self) -> String {
        format!("Sealing(key_id={}, sender_id={}, suite={:?})", self.key.id(), self.sender_id, self.suite)
    }
}

/// `invalidConfig` for a call out of the order of 14.8.
fn out_of_order(py: Python<'_>, message: &str) -> PyErr {
    crate::raise(py, mqseal::Error::InvalidConfig.code(), message, &pyo3::types::PyDict::new(py))
}

/// A member of a key-distribution fleet.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct Member(Mutex<State>);

#[pymethods]
impl Member {
    /// The member `member_id` with key pair `secret`, trusting the
    /// authority's public key `authority`, resuming from the member-state
    /// record `state` (None: a member just enrolled, epoch 0). Raises
    /// `InvalidSnapshotError` for a record that is not valid or is another
    /// member's.
    #[new]
    #[pyo3(signature = (secret, authority, member_id, state = None, *, control_prefix = None, ack_prefix = None))]
    fn new(
        py: Python<'_>,
        secret: &StaticKeyPair,
        authority: &PublicKey,
        member_id: &str,
        state: Option<Vec<u8>>,
        control_prefix: Option<String>,
        ack_prefix: Option<String>,
    ) -> PyResult<Member> {
        let state = state.map(zeroize::Zeroizing::new);
        let topics = ControlTopics {
            control: control_prefix.as_deref().unwrap_or(DEFAULT_CONTROL_PREFIX),
            ack: ack_prefix.as_deref().unwrap_or(DEFAULT_ACK_PREFIX),
        };
        let agent = MemberAgent::new(&secret.0, member_id, &authority.0, &topics, state.as_ref().map(|s| s.as_slice()))
            .map_err(|e| core_err(py, e))?;
        Ok(Member(Mutex::new(State { agent, staged: None, ack: None })))
    }

    /// The topic to subscribe to (QoS 1).
    #[getter]
    fn control_topic(&self) -> PyResult<String> {
        Ok(lock(&self.0)?.agent.control_topic().to_owned())
    }

    /// The topic acks are published on (QoS 1, not retained).
    #[getter]
    fn ack_topic(&self) -> PyResult<String> {
        Ok(lock(&self.0)?.agent.ack_topic().to_owned())
    }

    #[getter]
    fn member_id(&self) -> PyResult<String> {
        Ok(lock(&self.0)?.agent.member_id().to_owned())
    }

    /// The epoch in use (0 before the first state).
    #[getter]
    fn epoch(&self) -> PyResult<u64> {
        Ok(lock(&self.0)?.agent.epoch())
    }

    /// The groups this member belongs to.
    #[getter]
    fn groups(&self) -> PyResult<Vec<String>> {
        let s = lock(&self.0)?;
        Ok(s.agent.state().map_or_else(Vec::new, |st| st.groups().iter().map(|g| g.name().to_owned()).collect()))
    }

    /// Checks and stages the control envelope received on `topic` at `now`
    /// (Unix seconds; None without a clock). Nothing is in use yet: write
    /// the returned `state` durably, then call `persisted()`. Raises the
    /// core's error (`InvalidControlError` with `reason`, `AuthError`,
    /// `DuplicateError`, `ReplayError`, `StaleEpochError`, ...); nothing
    /// changes then. A new `handle` replaces a staged, unpersisted one.
    #[pyo3(signature = (topic, envelope, now = None))]
    fn handle(&self, py: Python<'_>, topic: &str, envelope: &[u8], now: Option<u64>) -> PyResult<StagedState> {
        let mut s = lock(&self.0)?;
        s.staged = None;
        s.ack = None;
        let staged = s.agent.stage(topic, envelope, now).map_err(|e| core_err(py, e))?;
        let out = StagedState { state: staged.state().to_vec(), epoch: staged.epoch(), wake_at: staged.wake_at() };
        s.staged = Some(staged);
        Ok(out)
    }

    /// Call once the staged `state` is durably written: the new keys are in
    /// use from now on, and `ack()` gives the ack to publish.
    fn persisted(&self, py: Python<'_>) -> PyResult<()> {
        let mut s = lock(&self.0)?;
        let staged =
            s.staged.take().ok_or_else(|| out_of_order(py, "persisted(): nothing staged (call handle() first)"))?;
        let (agent, ack) = staged.persisted();
        s.agent = agent;
        s.ack = Some(ack);
        Ok(())
    }

    /// Drops a staged state whose write failed (no ack, no key).
    fn discard(&self) -> PyResult<()> {
        lock(&self.0)?.staged = None;
        Ok(())
    }

    /// The ack envelope of the state last persisted (once). Raises
    /// `InvalidConfigError` before `persisted()`.
    fn ack<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut s = lock(&self.0)?;
        let ack = s.ack.take().ok_or_else(|| {
            out_of_order(
                py,
                "ack(): no persisted state to acknowledge: write the staged state, call persisted(), then ack()",
            )
        })?;
        Ok(PyBytes::new(py, &ack))
    }

    /// The key, sender id and suite to seal with in `group` at `now`
    /// (None: not a member of the group).
    #[pyo3(signature = (group, now = None))]
    fn sealing(&self, group: &str, now: Option<u64>) -> PyResult<Option<Sealing>> {
        Ok(lock(&self.0)?.agent.sealing(group, now).map(|s| Sealing {
            key: s.key,
            sender_id: s.sender_id,
            suite: s.suite.name(),
        }))
    }

    /// A keyring of the keys of `group` accepted at `now`, the sealing key
    /// as primary (None: not a member of the group).
    #[pyo3(signature = (group, now = None))]
    fn keyring(&self, py: Python<'_>, group: &str, now: Option<u64>) -> PyResult<Option<Keyring>> {
        let ring = lock(&self.0)?.agent.keyring::<MAX_KEYS_PER_GROUP>(group, now).map_err(|e| core_err(py, e))?;
        let Some(ring) = ring else { return Ok(None) };
        let mut out = mqseal::Keyring::new();
        for id in ring.ids() {
            if let Some(k) = ring.get(id) {
                out.insert(k.clone()).map_err(|e| core_err(py, e))?;
            }
        }
        if let Some(p) = ring.primary() {
            out.set_primary(p.id()).map_err(|e| core_err(py, e))?;
        }
        Ok(Some(Keyring(Mutex::new(out))))
    }

    /// A message of `group` under `key_id` verified (a member without a
    /// clock switches to the next key when it first sees it). True when the
    /// sealing key changed: persist `encode_state()` before sealing with it.
    #[pyo3(signature = (group, key_id, now = None))]
    fn key_seen(&self, group: &str, key_id: u32, now: Option<u64>) -> PyResult<bool> {
        Ok(lock(&self.0)?.agent.key_seen(group, key_id, now))
    }

    /// Scheduled switches: `(changed, wake_at)`.
    #[pyo3(signature = (now = None))]
    fn tick(&self, now: Option<u64>) -> PyResult<(bool, Option<u64>)> {
        let t = lock(&self.0)?.agent.tick(now);
        Ok((t.changed, t.wake_at))
    }

    /// The next time after `now` at which keys change (None: never).
    #[pyo3(signature = (now = None))]
    fn wake_at(&self, now: Option<u64>) -> PyResult<Option<u64>> {
        Ok(lock(&self.0)?.agent.wake_at(now))
    }

    /// The member-state record of what is in use now.
    fn encode_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut buf = zeroize::Zeroizing::new(vec![0u8; mqseal::MAX_MEMBER_STATE_LEN]);
        let n = lock(&self.0)?.agent.encode_state(&mut buf).map_err(|e| core_err(py, e))?;
        Ok(PyBytes::new(py, &buf[..n]))
    }

    fn __repr__(&self) -> PyResult<String> {
        let s = lock(&self.0)?;
        Ok(format!("Member(member_id={:?}, epoch={})", s.agent.member_id(), s.agent.epoch()))
    }
}
