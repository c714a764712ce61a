//! # mqseal-python: the native module `mqseal._mqseal`
//!
//! Thin PyO3 bindings over the `mqseal` core for the Python package
//! `mqseal` (`bindings/python/python/mqseal`). They move bytes in and out
//! and turn [`mqseal::Error`] into the Python exception of its stable code
//! (`mqseal.Error` subclasses, `.code` = [`mqseal::Error::code`]). No
//! cryptography, parsing or policy happens here: sealing, opening, counter
//! files, replay windows and configuration checks are the core's.
//!
//! Thread safety: every stateful object (`Sealer`, `Opener`, `Keyring`)
//! holds its core state behind a `Mutex`, so one object may be shared by
//! threads. Sealing and opening of payloads of [`GIL_RELEASE_MIN`] bytes or
//! more run with the GIL released.

#![forbid(unsafe_code)]

mod member;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use mqseal::{
    ConfigField, CounterStore, Eviction, FileCounterStore, MemoryCounterStore, OpenerConfig, PrefixRewrite,
    SenderSnapshot, StateFileError, Suite, SuiteSet, DEFAULT_KEYS, DEFAULT_MAX_SENDERS, DEFAULT_RESERVATION_BLOCK,
    MAX_WINDOW,
};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// Payloads (and envelopes) from this many bytes on are sealed and opened
/// with the GIL released; below it, releasing costs more than it frees.
pub const GIL_RELEASE_MIN: usize = 4096;

/// The Python exception for a core error: `mqseal._errors._from_core(code,
/// message, extra)` builds the subclass of `mqseal.Error` for `code`.
fn raise(py: Python<'_>, code: &str, message: &str, extra: &Bound<'_, PyDict>) -> PyErr {
    let built =
        py.import("mqseal._errors").and_then(|m| m.getattr("_from_core")).and_then(|f| f.call1((code, message, extra)));
    match built {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// `mqseal.Error` subclass for `e`, with `key_id`, `suite` or `reason`
/// (`StoreError::code` or `ControlError::code`), or `held` and `received`
/// (`staleEpoch`), where the core error carries one. `Auth` carries nothing.
fn core_err(py: Python<'_>, e: mqseal::Error) -> PyErr {
    let extra = PyDict::new(py);
    let set = match e {
        mqseal::Error::UnknownKey(id)
        | mqseal::Error::DuplicateKeyId(id)
        | mqseal::Error::KeyNotFound(id)
        | mqseal::Error::KeyIsPrimary(id) => extra.set_item("key_id", id),
        mqseal::Error::SuiteNotAllowed(s) => extra.set_item("suite", s.name()),
        mqseal::Error::CounterStore(kind) => extra.set_item("reason", kind.code()),
        mqseal::Error::InvalidControl(reason) => extra.set_item("reason", reason.code()),
        mqseal::Error::StaleEpoch { held, received } => {
            extra.set_item("held", held).and_then(|()| extra.set_item("received", received))
        }
        mqseal::Error::BufferTooSmall { needed } => extra.set_item("needed", needed),
        _ => Ok(()),
    };
    if let Err(err) = set {
        return err;
    }
    raise(py, e.code(), &e.to_string(), &extra)
}

/// A counter-file or replay-file error: code `counterStore` with `reason`
/// (`StoreError::code`), `path` and, for `locked`, `holder_pid`.
fn state_err(py: Python<'_>, e: &StateFileError) -> PyErr {
    let extra = PyDict::new(py);
    let set = extra
        .set_item("reason", e.kind.code())
        .and_then(|()| extra.set_item("path", e.path.clone()))
        .and_then(|()| extra.set_item("holder_pid", e.holder_pid));
    if let Err(err) = set {
        return err;
    }
    raise(py, mqseal::Error::CounterStore(e.kind).code(), &e.to_string(), &extra)
}

/// An `invalidConfig` error naming the option at fault (`.option`, as JS's
/// `err.option`): for a receiver setting, the core's [`ConfigField::name`].
fn option_err(py: Python<'_>, option: &str, message: &str) -> PyErr {
    let extra = PyDict::new(py);
    if let Err(err) = extra.set_item("option", option) {
        return err;
    }
    raise(py, "invalidConfig", &format!("{option}: {message}"), &extra)
}

fn lock<T>(m: &Mutex<T>) -> PyResult<MutexGuard<'_, T>> {
    m.lock().map_err(|_| PyRuntimeError::new_err("mqseal: internal state poisoned by an earlier failure"))
}

fn suite_from_name(py: Python<'_>, name: &str) -> PyResult<Suite> {
    name.parse::<Suite>()
        .map_err(|_| option_err(py, "suite", &format!("unknown suite {name:?}; use chacha20poly1305 or hmac-sha256")))
}

fn key_bytes(py: Python<'_>, bytes: &[u8]) -> PyResult<[u8; mqseal::KEY_LEN]> {
    bytes.try_into().map_err(|_| core_err(py, mqseal::Error::InvalidKey))
}

/// A symmetric key with its key id (a group key, or one direction of a
/// pairwise key). Its repr never shows the secret.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct Key(mqseal::Key);

#[pymethods]
impl Key {
    /// A fresh random key from the OS generator.
    #[staticmethod]
    fn generate(py: Python<'_>, key_id: u32) -> PyResult<Key> {
        mqseal::Key::generate(key_id).map(Key).map_err(|e| core_err(py, e))
    }

    /// Parses `mqseal:key:v1:<id>:<base64url>`.
    #[staticmethod]
    fn from_text(py: Python<'_>, text: &str) -> PyResult<Key> {
        mqseal::Key::from_text(text).map(Key).map_err(|e| core_err(py, e))
    }

    /// A key from exactly 32 bytes of key material.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, key_id: u32, material: &[u8]) -> PyResult<Key> {
        Ok(Key(mqseal::Key::from_bytes(key_id, key_bytes(py, material)?)))
    }

    /// The key id carried in every envelope sealed with this key.
    #[getter]
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// The text form `mqseal:key:v1:<id>:<base64url>` (the secret).
    fn to_text(&self) -> String {
        self.0.to_text().as_str().to_owned()
    }

    fn __repr__(&self) -> String {
        format!("Key(id={})", self.0.id())
    }
}

/// An X25519 public key (a peer's), checked when parsed.
#[pyclass(frozen, eq, module = "mqseal._mqseal")]
#[derive(PartialEq)]
pub struct PublicKey(mqseal::PublicKey);

#[pymethods]
impl PublicKey {
    /// Parses `mqseal:x25519-public:v1:<base64url>`.
    #[staticmethod]
    fn from_text(py: Python<'_>, text: &str) -> PyResult<PublicKey> {
        mqseal::PublicKey::from_text(text).map(PublicKey).map_err(|e| core_err(py, e))
    }

    /// The canonical text form.
    fn to_text(&self) -> String {
        self.0.to_text().as_str().to_owned()
    }

    fn __repr__(&self) -> String {
        format!("PublicKey({:?})", self.0.to_text().as_str())
    }
}

/// The two directional keys between two static key pairs.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct PairwiseKeys(mqseal::PairwiseKeys);

#[pymethods]
impl PairwiseKeys {
    /// Seals messages to the peer.
    #[getter]
    fn send(&self) -> Key {
        Key(self.0.send.clone())
    }

    /// Opens messages from the peer.
    #[getter]
    fn recv(&self) -> Key {
        Key(self.0.recv.clone())
    }

    fn __repr__(&self) -> String {
        format!("PairwiseKeys(id={})", self.0.send.id())
    }
}

/// A static X25519 key pair, for pairwise keys.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct StaticKeyPair(mqseal::StaticKeyPair);

#[pymethods]
impl StaticKeyPair {
    /// A fresh key pair from the OS generator.
    #[staticmethod]
    fn generate(py: Python<'_>) -> PyResult<StaticKeyPair> {
        mqseal::StaticKeyPair::generate().map(StaticKeyPair).map_err(|e| core_err(py, e))
    }

    /// Parses `mqseal:x25519-secret:v1:<base64url>`.
    #[staticmethod]
    fn from_secret_text(py: Python<'_>, text: &str) -> PyResult<StaticKeyPair> {
        mqseal::StaticKeyPair::from_secret_text(text).map(StaticKeyPair).map_err(|e| core_err(py, e))
    }

    /// A key pair from exactly 32 secret bytes.
    #[staticmethod]
    fn from_secret_bytes(py: Python<'_>, secret: &[u8]) -> PyResult<StaticKeyPair> {
        Ok(StaticKeyPair(mqseal::StaticKeyPair::from_secret_bytes(key_bytes(py, secret)?)))
    }

    /// This pair's public key.
    #[getter]
    fn public_key(&self) -> PublicKey {
        PublicKey(self.0.public())
    }

    /// The secret's text form (handle with care).
    fn secret_text(&self) -> String {
        self.0.secret_text().as_str().to_owned()
    }

    /// The pairwise keys with the peer `peer`, under `key_id`.
    fn pairwise(&self, py: Python<'_>, peer: &PublicKey, key_id: u32) -> PyResult<PairwiseKeys> {
        self.0.pairwise(&peer.0, key_id).map(PairwiseKeys).map_err(|e| core_err(py, e))
    }

    fn __repr__(&self) -> String {
        format!("StaticKeyPair(public={:?})", self.0.public().to_text().as_str())
    }
}

/// Keys by id, one of them primary (the one sealers use).
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct Keyring(Mutex<mqseal::Keyring<DEFAULT_KEYS>>);

#[pymethods]
impl Keyring {
    /// A keyring holding `keys` (at most 8); `primary` names the primary key
    /// id (default: the first key's).
    #[new]
    #[pyo3(signature = (keys = Vec::new(), primary = None))]
    fn new(py: Python<'_>, keys: Vec<PyRef<'_, Key>>, primary: Option<u32>) -> PyResult<Keyring> {
        let mut ring = mqseal::Keyring::new();
        for k in &keys {
            ring.insert(k.0.clone()).map_err(|e| core_err(py, e))?;
        }
        if let Some(id) = primary.or_else(|| keys.first().map(|k| k.0.id())) {
            ring.set_primary(id).map_err(|e| core_err(py, e))?;
        }
        Ok(Keyring(Mutex::new(ring)))
    }

    /// Adds a key; the first key of an empty keyring becomes primary.
    fn insert(&self, py: Python<'_>, key: &Key) -> PyResult<()> {
        let mut ring = lock(&self.0)?;
        let first = ring.is_empty();
        ring.insert(key.0.clone()).map_err(|e| core_err(py, e))?;
        if first {
            ring.set_primary(key.0.id()).map_err(|e| core_err(py, e))?;
        }
        Ok(())
    }

    /// Makes `key_id` the primary key.
    fn set_primary(&self, py: Python<'_>, key_id: u32) -> PyResult<()> {
        lock(&self.0)?.set_primary(key_id).map_err(|e| core_err(py, e))
    }

    /// Removes `key_id` (not the primary key).
    fn retire(&self, py: Python<'_>, key_id: u32) -> PyResult<()> {
        lock(&self.0)?.retire(key_id).map_err(|e| core_err(py, e))
    }

    /// The primary key's id, or None.
    #[getter]
    fn primary_id(&self) -> PyResult<Option<u32>> {
        Ok(lock(&self.0)?.primary().map(mqseal::Key::id))
    }

    /// The key ids held.
    fn ids(&self) -> PyResult<Vec<u32>> {
        Ok(lock(&self.0)?.ids().collect())
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(lock(&self.0)?.len())
    }

    fn __contains__(&self, key_id: u32) -> PyResult<bool> {
        Ok(lock(&self.0)?.get(key_id).is_some())
    }

    fn __repr__(&self) -> PyResult<String> {
        let ring = lock(&self.0)?;
        Ok(format!("Keyring(ids={:?}, primary={:?})", ring.ids().collect::<Vec<_>>(), ring.primary().map(|k| k.id())))
    }
}

/// The counter stores a Python sealer can use: the core's file store (the
/// same format and lock as Rust), or memory for tests and vectors.
type Store = Box<dyn CounterStore + Send>;

/// Seals payloads as one sender: key, sender id, suite and counter store.
/// Not copyable or picklable: two copies would reuse counters.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct Sealer(Mutex<mqseal::Sealer<Store>>);

fn build_sealer(
    py: Python<'_>,
    key: &Key,
    sender_id: u32,
    suite: &str,
    store: Store,
    timestamps: bool,
    reservation_block: Option<u64>,
) -> PyResult<Sealer> {
    let suite = suite_from_name(py, suite)?;
    let mut sealer = mqseal::Sealer::new(&key.0, sender_id, suite, store).map_err(|e| core_err(py, e))?;
    if let Some(block) = reservation_block {
        sealer.set_reservation_block(block).map_err(|e| core_err(py, e))?;
    }
    if timestamps {
        sealer = sealer.with_timestamps(mqseal::system_clock);
    }
    Ok(Sealer(Mutex::new(sealer)))
}

fn seal_locked(
    sealer: &Mutex<mqseal::Sealer<Store>>,
    topic: &str,
    payload: &[u8],
    timestamp: Option<u64>,
) -> PyResult<Result<Vec<u8>, mqseal::Error>> {
    let mut s = lock(sealer)?;
    // MAX_OVERHEAD covers every header (counter and timestamp of any size).
    let Some(len) = payload.len().checked_add(mqseal::MAX_OVERHEAD) else {
        return Ok(Err(mqseal::Error::PayloadTooLarge));
    };
    let mut out = vec![0u8; len];
    let sealed = match timestamp {
        Some(ts) => s.seal_into_at(topic, Some(ts), payload, &mut out),
        None => s.seal_into(topic, payload, &mut out),
    };
    Ok(sealed.map(|n| {
        out.truncate(n);
        out
    }))
}

#[pymethods]
impl Sealer {
    /// A sealer whose counters live in `counter_file` (the core's
    /// `FileCounterStore`: the same one-line format and exclusive lock as
    /// Rust and the CLI). A missing file is refused (`CounterStoreError`,
    /// reason `missing`) unless `create=True`, which makes the file of a
    /// new sender and refuses an existing one (reason `conflict`).
    #[new]
    #[pyo3(signature = (key, sender_id, suite = "chacha20poly1305", *, counter_file, create = false, timestamps = false, reservation_block = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        key: &Key,
        sender_id: u32,
        suite: &str,
        counter_file: PathBuf,
        create: bool,
        timestamps: bool,
        reservation_block: Option<u64>,
    ) -> PyResult<Sealer> {
        // Checked before the file is touched.
        suite_from_name(py, suite)?;
        let store =
            if create { FileCounterStore::create(&counter_file) } else { FileCounterStore::open(&counter_file) }
                .map_err(|e| state_err(py, &e))?;
        build_sealer(py, key, sender_id, suite, Box::new(store), timestamps, reservation_block)
    }

    /// A sealer whose counters live in memory only, starting at
    /// `first_counter`. For tests and vectors: a process that restarts with
    /// the same key and sender id reuses counters.
    #[staticmethod]
    #[pyo3(signature = (key, sender_id, suite = "chacha20poly1305", *, first_counter = 0, timestamps = false))]
    fn in_memory(
        py: Python<'_>,
        key: &Key,
        sender_id: u32,
        suite: &str,
        first_counter: u64,
        timestamps: bool,
    ) -> PyResult<Sealer> {
        let store: Store = Box::new(MemoryCounterStore::starting_at(first_counter));
        build_sealer(py, key, sender_id, suite, store, timestamps, None)
    }

    /// Seals `payload` (bytes) for `topic`; returns the envelope. With
    /// `timestamp` (seconds since the Unix epoch) the envelope carries it;
    /// otherwise it carries the system time if the sealer was made with
    /// `timestamps=True`, and none otherwise.
    #[pyo3(signature = (topic, payload, timestamp = None))]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        topic: &str,
        payload: &[u8],
        timestamp: Option<u64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let sealed = if payload.len() >= GIL_RELEASE_MIN {
            py.detach(|| seal_locked(&self.0, topic, payload, timestamp))?
        } else {
            seal_locked(&self.0, topic, payload, timestamp)?
        };
        sealed.map(|v| PyBytes::new(py, &v)).map_err(|e| core_err(py, e))
    }

    /// Envelope length for a payload of `payload_len` bytes.
    fn envelope_len(&self, py: Python<'_>, payload_len: usize) -> PyResult<usize> {
        lock(&self.0)?.envelope_len(payload_len).map_err(|e| core_err(py, e))
    }

    /// Switches to another key; counters carry on.
    fn rotate_key(&self, key: &Key) -> PyResult<()> {
        lock(&self.0)?.rotate_key(&key.0);
        Ok(())
    }

    /// The counter the next envelope will carry (None once exhausted).
    #[getter]
    fn next_counter(&self) -> PyResult<Option<u64>> {
        Ok(lock(&self.0)?.next_counter().ok())
    }

    /// This sealer's sender id.
    #[getter]
    fn sender_id(&self) -> PyResult<u32> {
        Ok(lock(&self.0)?.sender_id())
    }

    /// Id of the key in use.
    #[getter]
    fn key_id(&self) -> PyResult<u32> {
        Ok(lock(&self.0)?.key_id())
    }

    /// `"chacha20poly1305"` or `"hmac-sha256"`.
    #[getter]
    fn suite(&self) -> PyResult<&'static str> {
        Ok(lock(&self.0)?.suite().name())
    }

    fn __repr__(&self) -> PyResult<String> {
        let s = lock(&self.0)?;
        Ok(format!("Sealer(key_id={}, sender_id={}, suite={:?})", s.key_id(), s.sender_id(), s.suite().name()))
    }
}

/// A verified message.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct Opened {
    header: mqseal::Header,
    payload: Py<PyBytes>,
}

#[pymethods]
impl Opened {
    /// The verified payload.
    #[getter]
    fn payload(&self, py: Python<'_>) -> Py<PyBytes> {
        self.payload.clone_ref(py)
    }

    /// The sender's id.
    #[getter]
    fn sender_id(&self) -> u32 {
        self.header.sender_id
    }

    /// Id of the key that sealed the message.
    #[getter]
    fn key_id(&self) -> u32 {
        self.header.key_id
    }

    /// The sender's counter.
    #[getter]
    fn counter(&self) -> u64 {
        self.header.counter
    }

    /// The authenticated timestamp (seconds since the Unix epoch), or None.
    #[getter]
    fn timestamp(&self) -> Option<u64> {
        self.header.timestamp
    }

    /// `"chacha20poly1305"` or `"hmac-sha256"`.
    #[getter]
    fn suite(&self) -> &'static str {
        self.header.suite.name()
    }

    fn __repr__(&self) -> String {
        format!(
            "Opened(sender_id={}, key_id={}, counter={}, timestamp={:?}, suite={:?})",
            self.header.sender_id,
            self.header.key_id,
            self.header.counter,
            self.header.timestamp,
            self.header.suite.name()
        )
    }
}

type Fleet = mqseal::FleetOpener<DEFAULT_KEYS>;

/// The receiver's configuration from Python keywords, field for field the
/// core's [`OpenerConfig`]; validated by the core.
#[allow(clippy::too_many_arguments)]
fn config_from(
    py: Python<'_>,
    window: Option<u32>,
    gaps: Option<i64>,
    max_age: Option<u64>,
    max_skew: Option<u64>,
    require_timestamp: bool,
    suites: Option<Vec<String>>,
    eviction: &str,
) -> PyResult<OpenerConfig> {
    let mut cfg = OpenerConfig::default();
    if let Some(w) = window {
        cfg.window = w;
    }
    if let Some(g) = gaps {
        // Any integer: a negative one is the core's range error too.
        cfg.gaps = u32::try_from(g)
            .map_err(|_| option_err(py, ConfigField::Gaps.name(), &format!("{}, got {g}", ConfigField::Gaps.rule())))?;
    }
    cfg.max_age = max_age;
    cfg.max_skew = max_skew;
    cfg.require_timestamp = require_timestamp;
    if let Some(names) = suites {
        let mut list = Vec::new();
        for n in &names {
            list.push(n.parse::<Suite>().map_err(|_| {
                option_err(
                    py,
                    ConfigField::Suites.name(),
                    &format!("unknown suite {n:?}; use chacha20poly1305 or hmac-sha256"),
                )
            })?);
        }
        cfg.suites = SuiteSet::from_suites(&list);
    }
    cfg.eviction = match eviction {
        "rejectNew" => Eviction::RejectNew,
        "leastRecentlyUsed" => Eviction::LeastRecentlyUsed,
        _ => return Err(option_err(py, ConfigField::Eviction.name(), "must be 'rejectNew' or 'leastRecentlyUsed'")),
    };
    cfg.check().map_err(|field| config_err(py, &cfg, field))?;
    Ok(cfg)
}

/// The `invalidConfig` error for the field [`OpenerConfig::check`] refused:
/// the core's name of the field and its rule, with the value given.
fn config_err(py: Python<'_>, cfg: &OpenerConfig, field: ConfigField) -> PyErr {
    let got = match field {
        ConfigField::Window => format!(", got {}", cfg.window),
        ConfigField::Gaps => format!(", got {}", cfg.gaps),
        _ => String::new(),
    };
    option_err(py, field.name(), &format!("{}{got}", field.rule()))
}

fn open_locked(
    opener: &Mutex<Fleet>,
    topic: &str,
    envelope: &[u8],
    now: Option<u64>,
    rewrite: Option<&(String, String)>,
) -> PyResult<Result<(mqseal::Header, Vec<u8>), mqseal::Error>> {
    let mut o = lock(opener)?;
    let mut buf = envelope.to_vec();
    let opened = match rewrite {
        Some((received, sealed)) => {
            let rule = PrefixRewrite { received, sealed };
            match rule.bound_topic(topic) {
                Ok(bound) => match now {
                    Some(t) => o.open_in_place_at(bound, &mut buf, Some(t)),
                    None => o.open_in_place(bound, &mut buf),
                },
                Err(e) => Err(e),
            }
        }
        None => match now {
            Some(t) => o.open_in_place_at(topic, &mut buf, Some(t)),
            None => o.open_in_place(topic, &mut buf),
        },
    };
    Ok(opened.map(|m| (m.header, m.payload.to_vec())))
}

/// Verifies envelopes: keyring, replay windows and receiver policy (the
/// core's `FleetOpener`, a growable sender table).
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct Opener(Mutex<Fleet>);

#[pymethods]
impl Opener {
    /// An opener over a copy of `keyring`, configured as the core's
    /// `OpenerConfig` (absent options at the core's defaults; `gaps`, the
    /// gap budget per sender below the window, 0 to 4, default 4). With
    /// `system_clock=True` (default) timestamps are checked against the
    /// system time unless `open` is given `now`.
    #[new]
    #[pyo3(signature = (keyring, *, window = None, gaps = None, max_age = None, max_skew = None, require_timestamp = false, suites = None, eviction = "rejectNew", max_senders = DEFAULT_MAX_SENDERS, system_clock = true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        keyring: &Keyring,
        window: Option<u32>,
        gaps: Option<i64>,
        max_age: Option<u64>,
        max_skew: Option<u64>,
        require_timestamp: bool,
        suites: Option<Vec<String>>,
        eviction: &str,
        max_senders: usize,
        system_clock: bool,
    ) -> PyResult<Opener> {
        let cfg = config_from(py, window, gaps, max_age, max_skew, require_timestamp, suites, eviction)?;
        let table =
            mqseal::SenderMap::new(max_senders).map_err(|_| option_err(py, "max_senders", "must be at least 1"))?;
        let ring = lock(&keyring.0)?.clone();
        let mut inner = mqseal::OpenerWith::with_table(ring, table);
        inner.set_config(&cfg).map_err(|e| core_err(py, e))?;
        if system_clock {
            inner.set_clock(Some(mqseal::system_clock));
        }
        Ok(Opener(Mutex::new(inner)))
    }

    /// Opens `envelope` (bytes) received on `topic`; returns the verified
    /// message or raises the `mqseal.Error` subclass of the core's code.
    /// `now` overrides the clock. `rewrite=(received_prefix, sealed_prefix)`
    /// checks a topic that arrives under `received_prefix` as sealed under
    /// `sealed_prefix` (bridges).
    #[pyo3(signature = (topic, envelope, now = None, rewrite = None))]
    fn open(
        &self,
        py: Python<'_>,
        topic: &str,
        envelope: &[u8],
        now: Option<u64>,
        rewrite: Option<(String, String)>,
    ) -> PyResult<Opened> {
        let opened = if envelope.len() >= GIL_RELEASE_MIN {
            py.detach(|| open_locked(&self.0, topic, envelope, now, rewrite.as_ref()))?
        } else {
            open_locked(&self.0, topic, envelope, now, rewrite.as_ref())?
        };
        let (header, payload) = opened.map_err(|e| core_err(py, e))?;
        Ok(Opened { header, payload: PyBytes::new(py, &payload).unbind() })
    }

    /// Verifies `envelope` for a receiver whose replay windows live in a
    /// shared store (the core's `open_pending`): parses, checks the policy
    /// and the tag, and returns the message held back, without consulting
    /// this opener's own windows. Ask the store about `.query`, then give
    /// its answer to `.resolve()`; only an accept releases the payload.
    /// Raises as `open` does, except for replays, which are the store's to
    /// decide.
    #[pyo3(signature = (topic, envelope, now = None, rewrite = None))]
    fn open_pending(
        &self,
        py: Python<'_>,
        topic: &str,
        envelope: &[u8],
        now: Option<u64>,
        rewrite: Option<(String, String)>,
    ) -> PyResult<PendingMessage> {
        let run = || -> PyResult<Result<mqseal::PendingOpenVec, mqseal::Error>> {
            let mut o = lock(&self.0)?;
            let now = now.or_else(|| o.now());
            Ok(match &rewrite {
                Some((received, sealed)) => {
                    let rule = PrefixRewrite { received, sealed };
                    rule.bound_topic(topic).and_then(|bound| o.open_pending_to_vec(bound, envelope, now))
                }
                None => o.open_pending_to_vec(topic, envelope, now),
            })
        };
        let pending = if envelope.len() >= GIL_RELEASE_MIN { py.detach(run)? } else { run()? };
        let pending = pending.map_err(|e| core_err(py, e))?;
        Ok(PendingMessage { query: pending.query(), pending: Mutex::new(Some(pending)) })
    }

    /// Accepts envelopes under this key from now on.
    fn add_key(&self, py: Python<'_>, key: &Key) -> PyResult<()> {
        lock(&self.0)?.add_key(key.0.clone()).map_err(|e| core_err(py, e))
    }

    /// Rejects envelopes under this key id from now on (`UnknownKeyError`).
    fn retire_key(&self, py: Python<'_>, key_id: u32) -> PyResult<()> {
        lock(&self.0)?.retire_key(key_id).map_err(|e| core_err(py, e))
    }

    /// Number of (key id, sender id) pairs tracked.
    #[getter]
    fn tracked_senders(&self) -> PyResult<usize> {
        Ok(lock(&self.0)?.tracked_senders())
    }

    /// Bytes the sender table occupies.
    #[getter]
    fn sender_memory_bytes(&self) -> PyResult<usize> {
        use mqseal::SenderTable;
        Ok(lock(&self.0)?.senders().memory_bytes())
    }

    /// The most senders tracked before the eviction rule applies.
    #[getter]
    fn sender_limit(&self) -> PyResult<usize> {
        use mqseal::SenderTable;
        Ok(lock(&self.0)?.senders().limit())
    }

    /// The configuration in force, as a dict of the constructor's options.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let o = lock(&self.0)?;
        let cfg = o.config();
        let d = PyDict::new(py);
        d.set_item("window", cfg.window)?;
        d.set_item("gaps", cfg.gaps)?;
        d.set_item("max_age", cfg.max_age)?;
        d.set_item("max_skew", cfg.max_skew)?;
        d.set_item("require_timestamp", cfg.require_timestamp)?;
        let suites: Vec<&str> = Suite::ALL.into_iter().filter(|s| cfg.suites.contains(*s)).map(Suite::name).collect();
        d.set_item("suites", suites)?;
        let eviction = match cfg.eviction {
            Eviction::LeastRecentlyUsed => "leastRecentlyUsed",
            _ => "rejectNew",
        };
        d.set_item("eviction", eviction)?;
        d.set_item("effective_max_skew", cfg.effective_max_skew())?;
        Ok(d)
    }

    /// The replay state of every tracked sender: the core's records (52
    /// bytes plus 16 per gap) one after the other.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let o = lock(&self.0)?;
        let mut out = Vec::with_capacity(o.tracked_senders() * SenderSnapshot::ENCODED_LEN);
        for snap in o.snapshot() {
            out.extend_from_slice(&snap.to_bytes());
        }
        Ok(PyBytes::new(py, &out))
    }

    /// Merges records saved by `snapshot` (never rolls a window back). All
    /// records are validated first: if one is invalid nothing is restored.
    /// Returns `{"restored": n, "unknown_key": m}`.
    fn restore<'py>(&self, py: Python<'py>, records: &[u8]) -> PyResult<Bound<'py, PyDict>> {
        let mut snaps = Vec::with_capacity(records.len() / SenderSnapshot::ENCODED_LEN);
        for record in SenderSnapshot::records(records) {
            snaps.push(record.map_err(|e| core_err(py, e))?);
        }
        let mut o = lock(&self.0)?;
        let (mut restored, mut unknown_key) = (0usize, 0usize);
        for snap in &snaps {
            match o.restore(snap) {
                Ok(()) => restored += 1,
                Err(mqseal::Error::UnknownKey(_)) => unknown_key += 1,
                Err(e) => return Err(core_err(py, e)),
            }
        }
        let d = PyDict::new(py);
        d.set_item("restored", restored)?;
        d.set_item("unknown_key", unknown_key)?;
        Ok(d)
    }

    /// Forgets one sender's replay state; whether it was tracked.
    fn forget_sender(&self, key_id: u32, sender_id: u32) -> PyResult<bool> {
        Ok(lock(&self.0)?.forget_sender(key_id, sender_id))
    }
}

/// What a shared replay store decides for one verified envelope (the
/// core's `WindowQuery`): the sender's window and the counter to check.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct WindowQuery(mqseal::WindowQuery);

#[pymethods]
impl WindowQuery {
    /// Key id.
    #[getter]
    fn key_id(&self) -> u32 {
        self.0.key_id
    }

    /// Sender id.
    #[getter]
    fn sender_id(&self) -> u32 {
        self.0.sender_id
    }

    /// The envelope's counter.
    #[getter]
    fn counter(&self) -> u64 {
        self.0.counter
    }

    /// Window width for a sender the store has not seen.
    #[getter]
    fn width(&self) -> u32 {
        self.0.width
    }

    /// The store key of this sender's window under `prefix`.
    #[pyo3(signature = (prefix = mqseal::WindowQuery::DEFAULT_PREFIX))]
    fn redis_key(&self, prefix: &str) -> String {
        self.0.redis_key(prefix)
    }

    /// `WINDOW_SCRIPT`'s ARGV for this query with a TTL of `ttl_ms`
    /// milliseconds (0: none), in order (the core's layout).
    fn script_args(&self, ttl_ms: u64) -> [u64; 5] {
        self.0.script_args(ttl_ms)
    }

    /// Gap budget for a sender the store has not seen.
    #[getter]
    fn gaps(&self) -> u32 {
        self.0.gaps
    }

    fn __repr__(&self) -> String {
        let q = &self.0;
        format!("WindowQuery(key_id={}, sender_id={}, counter={}, width={})", q.key_id, q.sender_id, q.counter, q.width)
    }
}

/// A verified message held back until a shared replay store decides (the
/// core's `PendingOpenVec`). The payload is not reachable before
/// `resolve` with the store's accept; any other answer, or dropping the
/// object, zeroes it.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct PendingMessage {
    query: mqseal::WindowQuery,
    pending: Mutex<Option<mqseal::PendingOpenVec>>,
}

#[pymethods]
impl PendingMessage {
    /// What to ask the store.
    #[getter]
    fn query(&self) -> WindowQuery {
        WindowQuery(self.query)
    }

    /// The verified message, if `code` (the store's answer to `query`: what
    /// `WINDOW_SCRIPT` returns) is an accept. Raises `DuplicateError` or
    /// `ReplayError` for the store's other verdicts and
    /// `InvalidSnapshotError` for a code the core does not know (nothing is
    /// released: fail closed). Once only.
    fn resolve(&self, py: Python<'_>, code: i64) -> PyResult<Opened> {
        let pending = lock(&self.pending)?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("mqseal: this pending message was already resolved"))?;
        let verdict = mqseal::WindowVerdict::from_code(code).map_err(|e| core_err(py, e))?;
        let opened = pending.resolve(verdict).map_err(|e| core_err(py, e))?;
        Ok(Opened { header: opened.header, payload: PyBytes::new(py, &opened.payload).unbind() })
    }

    fn __repr__(&self) -> String {
        let q = &self.query;
        format!("PendingMessage(key_id={}, sender_id={}, counter={})", q.key_id, q.sender_id, q.counter)
    }
}

/// The core's replay-state file: an opener's windows saved atomically and
/// restored after a restart (exclusively locked while open).
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct ReplayStateFile(Mutex<mqseal::ReplayStateFile>);

#[pymethods]
impl ReplayStateFile {
    /// Opens and locks the file at `path` (a missing file is an empty state).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<ReplayStateFile> {
        mqseal::ReplayStateFile::open(path).map(|f| ReplayStateFile(Mutex::new(f))).map_err(|e| state_err(py, &e))
    }

    /// Atomically replaces the file with `opener`'s replay state.
    fn save(&self, py: Python<'_>, opener: &Opener) -> PyResult<()> {
        let o = lock(&opener.0)?;
        lock(&self.0)?.save(&o).map_err(|e| state_err(py, &e))
    }

    /// Merges the saved state into `opener`; returns
    /// `{"restored": n, "unknown_key": m}`.
    fn restore_into<'py>(&self, py: Python<'py>, opener: &Opener) -> PyResult<Bound<'py, PyDict>> {
        let mut o = lock(&opener.0)?;
        let report = lock(&self.0)?.restore_into(&mut o).map_err(|e| state_err(py, &e))?;
        let d = PyDict::new(py);
        d.set_item("restored", report.restored)?;
        d.set_item("unknown_key", report.unknown_key)?;
        Ok(d)
    }

    /// The file's path.
    #[getter]
    fn path(&self) -> PyResult<PathBuf> {
        Ok(lock(&self.0)?.path().to_path_buf())
    }
}

/// The plain-topic rule of every mqseal adapter (the core's
/// `PlainTopics`): every topic is sealed unless it matches one of these
/// MQTT topic filters. Used by the paho and aiomqtt helpers'
/// `plain_topics`.
#[pyclass(frozen, module = "mqseal._mqseal")]
pub struct PlainTopics(mqseal::PlainTopics<Vec<String>>);

#[pymethods]
impl PlainTopics {
    /// Raises the `invalidFilter` error for a filter that is not a valid
    /// MQTT topic filter.
    #[new]
    fn new(py: Python<'_>, filters: Vec<String>) -> PyResult<Self> {
        mqseal::PlainTopics::new(filters).map(PlainTopics).map_err(|e| core_err(py, e))
    }

    /// Whether a plain (unsealed) payload is allowed on `topic`.
    fn allows(&self, topic: &str) -> bool {
        self.0.allows(topic)
    }

    /// The filters, in the order given.
    #[getter]
    fn filters(&self) -> Vec<String> {
        self.0.filters().to_vec()
    }

    fn __repr__(&self) -> String {
        format!("PlainTopics({:?})", self.0.filters())
    }
}

/// The native module `mqseal._mqseal`.
#[pymodule]
fn _mqseal(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Key>()?;
    m.add_class::<PublicKey>()?;
    m.add_class::<StaticKeyPair>()?;
    m.add_class::<PairwiseKeys>()?;
    m.add_class::<Keyring>()?;
    m.add_class::<Sealer>()?;
    m.add_class::<Opened>()?;
    m.add_class::<Opener>()?;
    m.add_class::<ReplayStateFile>()?;
    m.add_class::<WindowQuery>()?;
    m.add_class::<PendingMessage>()?;
    m.add_class::<member::Member>()?;
    m.add_class::<member::StagedState>()?;
    m.add_class::<member::Sealing>()?;
    m.add("WINDOW_SCRIPT", mqseal::WINDOW_SCRIPT)?;
    m.add("DEFAULT_STORE_PREFIX", mqseal::WindowQuery::DEFAULT_PREFIX)?;
    m.add_class::<PlainTopics>()?;
    m.add("DEFAULT_MAX_SENDERS", DEFAULT_MAX_SENDERS)?;
    m.add("DEFAULT_RESERVATION_BLOCK", DEFAULT_RESERVATION_BLOCK)?;
    m.add("MAX_WINDOW", MAX_WINDOW)?;
    m.add("MAX_OVERHEAD", mqseal::MAX_OVERHEAD)?;
    m.add("GIL_RELEASE_MIN", GIL_RELEASE_MIN)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
