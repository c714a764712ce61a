//! # mqseal-wasm: the WebAssembly side of the `mqseal` npm package
//!
//! Thin wasm-bindgen bindings over the `mqseal` core: they move bytes in and
//! out and turn [`mqseal::Error`] into a JavaScript `Error` whose `code` is
//! [`mqseal::Error::code`]. Nothing cryptographic happens here.
//!
//! The hand-written JavaScript layer (`bindings/wasm/npm`) wraps these
//! classes. Its counter stores (IndexedDB in browsers, a locked file in
//! Node) are *drivers* of the core's one counter primitive: the sealer here
//! is a `Sealer<ExternalCounterStore>`; the driver reads the stored limit at
//! start-up, and for each [`RawSealer::reservation_needed`] durably
//! compare-and-swaps its store from `current` to `limit`, then calls
//! [`RawSealer::grant`]. Whether a counter may be used is decided by the
//! core alone: it refuses a grant that does not follow from its last one,
//! and seals only below the granted limit (code `counterStore`, reason
//! `notGranted`, otherwise).
//!
//! Randomness for key generation ([`Key::generate`],
//! [`StaticKeyPair::generate`]) comes from the platform's
//! `crypto.getRandomValues`, so the core is built without `std` and without
//! `getrandom`.

#![forbid(unsafe_code)]

extern crate alloc;

mod member;
pub use member::RawMember;

use mqseal::{
    ConfigField, Eviction, ExternalCounterStore, OpenerConfig, PrefixRewrite, Reservation, SenderSnapshot, SenderTable,
    Suite, SuiteSet, DEFAULT_KEYS, DEFAULT_MAX_SENDERS, DEFAULT_RESERVATION_BLOCK, MAX_OVERHEAD, MAX_WINDOW,
};
use wasm_bindgen::prelude::*;
use zeroize::{Zeroize, Zeroizing};

/// Largest integer a JS number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// `obj[key] = value`. `Reflect::set` fails only on frozen or proxied
/// objects; every object set here is a fresh one. One copy for every call
/// site (not inlined into each).
#[inline(never)]
fn set_prop(obj: &JsValue, key: &str, value: &JsValue) {
    let _ = js_sys::Reflect::set(obj, &JsValue::from_str(key), value);
}

/// A JS `Error` with `name = "MqsealError"` and `code` = the core's stable
/// error code (plus `keyId` for `unknownKey`, `reason` =
/// `StoreError::code()` for `counterStore`, `reason` = `ControlError::code()`
/// for `invalidControl`, `held` and `received` for `staleEpoch`).
fn js_error(e: mqseal::Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("MqsealError");
    let obj: &JsValue = err.as_ref();
    set_prop(obj, "code", &JsValue::from_str(e.code()));
    match e {
        mqseal::Error::UnknownKey(id) => {
            set_prop(obj, "keyId", &JsValue::from(id));
        }
        mqseal::Error::CounterStore(kind) => {
            set_prop(obj, "reason", &JsValue::from_str(kind.code()));
        }
        mqseal::Error::InvalidControl(reason) => {
            set_prop(obj, "reason", &JsValue::from_str(reason.code()));
        }
        mqseal::Error::StaleEpoch { held, received } => {
            set_prop(obj, "held", &u64_to_js(held));
            set_prop(obj, "received", &u64_to_js(received));
        }
        _ => {}
    }
    err.into()
}

/// A JS `Error` with code `invalidKey` and a message of its own.
fn invalid_key(message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    err.set_name("MqsealError");
    set_prop(err.as_ref(), "code", &JsValue::from_str(mqseal::Error::InvalidKey.code()));
    err.into()
}

/// The text of a key argument: `invalidKey` for anything but a string (an
/// unset environment variable gives `undefined`), never a raw `TypeError`.
/// Wiped from WASM memory when dropped (the text may be a secret).
fn key_text(text: &JsValue, form: &str) -> Result<Zeroizing<String>, JsValue> {
    text.as_string().map(Zeroizing::new).ok_or_else(|| {
        let got = if text.is_undefined() {
            "undefined (an unset environment variable?)".to_owned()
        } else if text.is_null() {
            "null".to_owned()
        } else {
            format!("a {}", text.js_typeof().as_string().unwrap_or_default())
        };
        invalid_key(&format!("expected the key's text form {form} as a string, got {got}"))
    })
}

/// The bytes of a key argument: `invalidKey` for anything but a `Uint8Array`.
fn key_material(bytes: &JsValue) -> Result<Vec<u8>, JsValue> {
    bytes
        .dyn_ref::<js_sys::Uint8Array>()
        .map(js_sys::Uint8Array::to_vec)
        .ok_or_else(|| invalid_key("expected 32 bytes of key material as a Uint8Array"))
}

fn int_from_js(v: f64) -> Result<u64, mqseal::Error> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SAFE_INTEGER {
        Ok(v as u64)
    } else {
        Err(mqseal::Error::InvalidConfig)
    }
}

fn opt_int_from_js(v: Option<f64>) -> Result<Option<u64>, mqseal::Error> {
    v.map(int_from_js).transpose()
}

/// A u64 from JS: a safe-integer number or a bigint in 0..2^64; `None` for
/// `undefined` / `null`.
fn opt_u64_from_js(v: &JsValue) -> Result<Option<u64>, mqseal::Error> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if let Some(f) = v.as_f64() {
        return int_from_js(f).map(Some);
    }
    if v.is_bigint() {
        return u64::try_from(v.clone()).map(Some).map_err(|_| mqseal::Error::InvalidConfig);
    }
    Err(mqseal::Error::InvalidConfig)
}

/// A u64 for JS: a number when exact (below 2^53), else a bigint.
fn u64_to_js(v: u64) -> JsValue {
    if v as f64 <= MAX_SAFE_INTEGER {
        JsValue::from(v as f64)
    } else {
        JsValue::from(v)
    }
}

fn suite_from_name(name: &str) -> Result<Suite, mqseal::Error> {
    match name {
        "chacha20poly1305" => Ok(Suite::ChaCha20Poly1305),
        "hmac-sha256" => Ok(Suite::HmacSha256),
        _ => Err(mqseal::Error::InvalidConfig),
    }
}

const fn suite_name(suite: Suite) -> &'static str {
    match suite {
        Suite::ChaCha20Poly1305 => "chacha20poly1305",
        Suite::HmacSha256 => "hmac-sha256",
        // `Suite` is non-exhaustive; a future suite is named by its id.
        #[allow(unreachable_patterns)]
        _ => "unknown",
    }
}

#[wasm_bindgen]
extern "C" {
    /// `crypto.getRandomValues` (browsers, workers, Node >= 19).
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]) -> Result<JsValue, JsValue>;
}

/// 32 bytes from the platform's secure generator.
fn random_key_bytes() -> Result<[u8; mqseal::KEY_LEN], mqseal::Error> {
    let mut bytes = [0u8; mqseal::KEY_LEN];
    get_random_values(&mut bytes).map_err(|_| mqseal::Error::Rng)?;
    // A generator that "succeeded" without writing would leave zeros.
    if bytes.iter().all(|&b| b == 0) {
        return Err(mqseal::Error::Rng);
    }
    Ok(bytes)
}

/// A key's text form as a JS string: one copy for the four text getters.
#[inline(never)]
fn text_string(text: &mqseal::KeyText) -> String {
    text.as_str().to_owned()
}

fn key_bytes(bytes: &[u8]) -> Result<[u8; mqseal::KEY_LEN], mqseal::Error> {
    bytes.try_into().map_err(|_| mqseal::Error::InvalidKey)
}

/// A symmetric key with its key id (group key, or one direction of a
/// pairwise key). `Debug`-safe: its text form is produced only by
/// [`Key::to_text`].
#[wasm_bindgen]
pub struct Key(mqseal::Key);

#[wasm_bindgen]
impl Key {
    /// Parses `mqseal:key:v1:<id>:<base64url>`.
    ///
    /// # Errors
    /// `invalidKey`.
    #[wasm_bindgen(js_name = fromText)]
    pub fn from_text(text: JsValue) -> Result<Key, JsValue> {
        mqseal::Key::from_text(&key_text(&text, "mqseal:key:v1:<id>:<base64url>")?).map(Key).map_err(js_error)
    }

    /// A key from 32 bytes of key material (from `crypto.getRandomValues`
    /// or a key agreement).
    ///
    /// # Errors
    /// `invalidKey` unless `bytes` has exactly 32 bytes.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(id: u32, bytes: JsValue) -> Result<Key, JsValue> {
        let mut material = key_material(&bytes)?;
        let key = key_bytes(&material).map(|b| Key(mqseal::Key::from_bytes(id, b))).map_err(js_error);
        material.zeroize();
        key
    }

    /// A fresh random key from `crypto.getRandomValues`.
    ///
    /// # Errors
    /// `rng` if the generator is missing or fails.
    pub fn generate(id: u32) -> Result<Key, JsValue> {
        let mut bytes = random_key_bytes().map_err(js_error)?;
        let key = mqseal::Key::from_bytes(id, bytes);
        bytes.zeroize();
        Ok(Key(key))
    }

    /// The key id carried in every envelope sealed with this key.
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// The text form `mqseal:key:v1:<id>:<base64url>` (the secret).
    #[wasm_bindgen(js_name = toText)]
    #[must_use]
    pub fn to_text(&self) -> String {
        text_string(&self.0.to_text())
    }

    /// `Key(<id>)`, never the secret.
    #[wasm_bindgen(js_name = toString)]
    #[must_use]
    pub fn to_display(&self) -> String {
        format!("Key({})", self.0.id())
    }
}

/// An X25519 public key (a peer's), checked when parsed.
#[wasm_bindgen]
pub struct PublicKey(mqseal::PublicKey);

#[wasm_bindgen]
impl PublicKey {
    /// Parses `mqseal:x25519-public:v1:<base64url>`.
    ///
    /// # Errors
    /// `invalidKey`.
    #[wasm_bindgen(js_name = fromText)]
    pub fn from_text(text: JsValue) -> Result<PublicKey, JsValue> {
        mqseal::PublicKey::from_text(&key_text(&text, "mqseal:x25519-public:v1:<base64url>")?)
            .map(PublicKey)
            .map_err(js_error)
    }

    /// The canonical text form.
    #[wasm_bindgen(js_name = toText)]
    #[must_use]
    pub fn to_text(&self) -> String {
        text_string(&self.0.to_text())
    }
}

/// A static X25519 key pair, for pairwise keys.
#[wasm_bindgen]
pub struct StaticKeyPair(mqseal::StaticKeyPair);

#[wasm_bindgen]
impl StaticKeyPair {
    /// Parses `mqseal:x25519-secret:v1:<base64url>`.
    ///
    /// # Errors
    /// `invalidKey`.
    #[wasm_bindgen(js_name = fromSecretText)]
    pub fn from_secret_text(text: JsValue) -> Result<StaticKeyPair, JsValue> {
        mqseal::StaticKeyPair::from_secret_text(&key_text(&text, "mqseal:x25519-secret:v1:<base64url>")?)
            .map(StaticKeyPair)
            .map_err(js_error)
    }

    /// A key pair from 32 secret bytes (from `crypto.getRandomValues`).
    ///
    /// # Errors
    /// `invalidKey` unless `bytes` has exactly 32 bytes.
    #[wasm_bindgen(js_name = fromSecretBytes)]
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<StaticKeyPair, JsValue> {
        Ok(StaticKeyPair(mqseal::StaticKeyPair::from_secret_bytes(key_bytes(bytes).map_err(js_error)?)))
    }

    /// A fresh key pair from `crypto.getRandomValues`.
    ///
    /// # Errors
    /// `rng` if the generator is missing or fails.
    pub fn generate() -> Result<StaticKeyPair, JsValue> {
        let mut bytes = random_key_bytes().map_err(js_error)?;
        let pair = mqseal::StaticKeyPair::from_secret_bytes(bytes);
        bytes.zeroize();
        Ok(StaticKeyPair(pair))
    }

    /// The public key's text form `mqseal:x25519-public:v1:<base64url>`.
    #[wasm_bindgen(getter, js_name = publicKey)]
    #[must_use]
    pub fn public_key(&self) -> String {
        text_string(&self.0.public().to_text())
    }

    /// The secret's text form (handle with care).
    #[wasm_bindgen(js_name = secretText)]
    #[must_use]
    pub fn secret_text(&self) -> String {
        text_string(&self.0.secret_text())
    }

    /// The pairwise keys with a peer whose public key is `peer_public`
    /// (text form), under `key_id`.
    ///
    /// # Errors
    /// `invalidKey`, `weakSharedSecret`, `selfPairing`.
    pub fn pairwise(&self, peer_public: &str, key_id: u32) -> Result<PairwiseKeys, JsValue> {
        let peer = mqseal::PublicKey::from_text(peer_public).map_err(js_error)?;
        self.0.pairwise(&peer, key_id).map(PairwiseKeys).map_err(js_error)
    }
}

/// The two directional keys between two key pairs.
#[wasm_bindgen]
pub struct PairwiseKeys(mqseal::PairwiseKeys);

#[wasm_bindgen]
impl PairwiseKeys {
    /// Seals messages to the peer.
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn send(&self) -> Key {
        Key(self.0.send.clone())
    }

    /// Opens messages from the peer.
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn recv(&self) -> Key {
        Key(self.0.recv.clone())
    }
}

/// The synchronous sealer under the JS `Sealer`, over the core's
/// [`ExternalCounterStore`]: the JS store driver reads the stored limit,
/// asks [`RawSealer::reservation_needed`], durably compare-and-swaps the
/// store from `current` to `limit`, then calls [`RawSealer::grant`]. The
/// core alone decides whether a counter may be used; sealing with nothing
/// granted fails with `counterStore` (reason `notGranted`).
#[wasm_bindgen]
pub struct RawSealer {
    inner: mqseal::Sealer<ExternalCounterStore>,
}

#[wasm_bindgen]
impl RawSealer {
    /// A sealer for `sender_id` under `key` and `suite`
    /// (`"chacha20poly1305"` or `"hmac-sha256"`), resuming from `stored`,
    /// the limit the driver read from its store (`undefined`: the store
    /// holds nothing). With `clock_floor_millis` (Unix time in ms) the
    /// sealer starts at or above the core's clock floor
    /// (`mqseal::clock_floor`) and a store without state is accepted;
    /// without it, such a store is refused (`counterStore`, reason
    /// `missing`).
    ///
    /// # Errors
    /// `invalidConfig` for an unknown suite or a time that is not a safe
    /// integer, `counterStore` (reason `missing`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        key: &Key,
        sender_id: u32,
        suite: &str,
        stored: Option<u64>,
        clock_floor_millis: Option<f64>,
    ) -> Result<RawSealer, JsValue> {
        let suite = suite_from_name(suite).map_err(js_error)?;
        let store = ExternalCounterStore::resume(stored);
        let inner = match opt_int_from_js(clock_floor_millis).map_err(js_error)? {
            Some(ms) => mqseal::Sealer::new_with_clock_floor(&key.0, sender_id, suite, store, ms),
            None => mqseal::Sealer::new(&key.0, sender_id, suite, store),
        }
        .map_err(js_error)?;
        Ok(RawSealer { inner })
    }

    /// Counters reserved per store write (default
    /// `DEFAULT_RESERVATION_BLOCK`, 1024).
    ///
    /// # Errors
    /// `invalidConfig` for zero.
    #[wasm_bindgen(js_name = setReservationBlock)]
    pub fn set_reservation_block(&mut self, block: u64) -> Result<(), JsValue> {
        self.inner.set_reservation_block(block).map_err(js_error)
    }

    /// The reservation the driver must persist when at most `ahead` granted
    /// counters are left: `{ current: bigint | null, limit: bigint }`
    /// (compare-and-swap the store from `current` to `limit`, then
    /// [`RawSealer::grant`]), or `null`.
    #[wasm_bindgen(js_name = reservationNeeded)]
    #[must_use]
    pub fn reservation_needed(&self, ahead: u64) -> JsValue {
        let Some(r) = self.inner.reservation_needed(ahead) else {
            return JsValue::NULL;
        };
        let obj = js_sys::Object::new();
        let current = r.current.map_or(JsValue::NULL, JsValue::from);
        set_prop(&obj, "current", &current);
        set_prop(&obj, "limit", &JsValue::from(r.limit));
        obj.into()
    }

    /// Grants the counters below `limit` once the driver has durably
    /// replaced `current` by `limit` in its store.
    ///
    /// # Errors
    /// `counterStore` (reason `conflict`) when the reservation does not
    /// follow from this sealer's last one: the core refuses it.
    pub fn grant(&mut self, current: Option<u64>, limit: u64) -> Result<(), JsValue> {
        self.inner.grant(Reservation { current, limit }).map_err(js_error)
    }

    /// The counter the next message will carry (`u64::MAX` once exhausted).
    #[wasm_bindgen(getter, js_name = nextCounter)]
    #[must_use]
    pub fn next_counter(&self) -> u64 {
        self.inner.next_counter().unwrap_or(u64::MAX)
    }

    /// End of the granted range (exclusive).
    #[wasm_bindgen(getter, js_name = grantedLimit)]
    #[must_use]
    pub fn granted_limit(&self) -> u64 {
        self.inner.granted_limit()
    }

    /// Counters granted and not used yet (as a JS number, capped at 2^53 - 1).
    #[wasm_bindgen(getter, js_name = grantedRemaining)]
    #[must_use]
    pub fn granted_remaining(&self) -> f64 {
        (self.inner.granted_remaining() as f64).min(MAX_SAFE_INTEGER)
    }

    /// This sealer's sender id.
    #[wasm_bindgen(getter, js_name = senderId)]
    #[must_use]
    pub fn sender_id(&self) -> u32 {
        self.inner.sender_id()
    }

    /// Id of the key in use.
    #[wasm_bindgen(getter, js_name = keyId)]
    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.inner.key_id()
    }

    /// The suite in use (a JS string, made on the JS side: no Rust `String`).
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn suite(&self) -> JsValue {
        JsValue::from_str(suite_name(self.inner.suite()))
    }

    /// Switches to another key; counters carry on.
    #[wasm_bindgen(js_name = rotateKey)]
    pub fn rotate_key(&mut self, key: &Key) {
        self.inner.rotate_key(&key.0);
    }

    /// Seals `payload` for `topic`, with an authenticated `timestamp`
    /// (seconds since the Unix epoch; a number or a bigint) when given.
    ///
    /// # Errors
    /// `counterStore` (reason `notGranted`) when no granted counter is
    /// left, `invalidTopic`, `topicTooLong`, `counterExhausted`,
    /// `invalidConfig` for a timestamp that is not a safe integer.
    pub fn seal(&mut self, topic: &str, payload: &[u8], timestamp: JsValue) -> Result<Vec<u8>, JsValue> {
        let ts = opt_u64_from_js(&timestamp).map_err(js_error)?;
        let mut out = vec![0u8; payload.len() + MAX_OVERHEAD];
        let n = self.inner.seal_into_at(topic, ts, payload, &mut out).map_err(js_error)?;
        out.truncate(n);
        Ok(out)
    }
}

/// `DEFAULT_RESERVATION_BLOCK` of the core (1024): the JS sealer's default.
#[wasm_bindgen(js_name = defaultReservationBlock)]
#[must_use]
pub fn default_reservation_block() -> f64 {
    DEFAULT_RESERVATION_BLOCK as f64
}

/// The core's compare-and-swap rule for stores that read their value
/// first (`mqseal::check_swap`): `stored` must equal `current` and `limit`
/// must be above it.
///
/// # Errors
/// `counterStore` with reason `conflict`.
#[wasm_bindgen(js_name = checkSwap)]
pub fn check_swap(stored: Option<u64>, current: Option<u64>, limit: u64) -> Result<(), JsValue> {
    mqseal::check_swap(stored, current, limit).map_err(|e| js_error(mqseal::Error::CounterStore(e)))
}

/// The core's clock floor for a Unix time in milliseconds
/// (`mqseal::clock_floor`: `unix_millis * 1024`).
///
/// # Errors
/// `invalidConfig` for a time that is not a safe integer.
#[wasm_bindgen(js_name = clockFloor)]
pub fn clock_floor(unix_millis: f64) -> Result<u64, JsValue> {
    Ok(mqseal::clock_floor(int_from_js(unix_millis).map_err(js_error)?))
}

/// Bytes of a replay-state record without gaps (`SenderSnapshot::ENCODED_LEN`,
/// 52); a record with `n` gaps below its window has `16 n` bytes more.
#[wasm_bindgen(js_name = snapshotRecordLen)]
#[must_use]
pub fn snapshot_record_len() -> usize {
    SenderSnapshot::ENCODED_LEN
}

/// The plain-topic rule of every mqseal adapter (the core's
/// `PlainTopics`): every topic is sealed unless it matches one of these
/// MQTT filters. The `plainTopics` option of `mqseal/mqtt` takes one.
#[wasm_bindgen]
pub struct PlainTopics(mqseal::PlainTopics<Vec<String>>);

#[wasm_bindgen]
impl PlainTopics {
    /// An allowlist of MQTT topic filters (an array of strings; `+` one
    /// level, `#` the rest, `$SYS/#` for `$` topics).
    ///
    /// # Errors
    /// `invalidFilter` for anything but an array of valid filters.
    #[wasm_bindgen(constructor)]
    pub fn new(filters: &JsValue) -> Result<PlainTopics, JsValue> {
        let mut plain = mqseal::PlainTopics::new(Vec::new()).map_err(js_error)?;
        let array = filters.dyn_ref::<js_sys::Array>().ok_or_else(|| js_error(mqseal::Error::InvalidFilter))?;
        for filter in array.iter() {
            let filter = filter.as_string().ok_or_else(|| js_error(mqseal::Error::InvalidFilter))?;
            plain.allow(filter).map_err(js_error)?;
        }
        Ok(PlainTopics(plain))
    }

    /// Whether a plain (unsealed) payload is allowed on `topic`.
    #[must_use]
    pub fn allows(&self, topic: &str) -> bool {
        self.0.allows(topic)
    }
}

/// A verified message: its header and payload.
#[wasm_bindgen]
pub struct Opened {
    header: mqseal::Header,
    payload: Vec<u8>,
}

#[wasm_bindgen]
impl Opened {
    /// The verified payload (a copy).
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn payload(&self) -> Vec<u8> {
        self.payload.clone()
    }

    /// `"chacha20poly1305"` or `"hmac-sha256"` (a JS string, as above).
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn suite(&self) -> JsValue {
        JsValue::from_str(suite_name(self.header.suite))
    }

    /// Key id of the key that sealed the message.
    #[wasm_bindgen(getter, js_name = keyId)]
    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.header.key_id
    }

    /// The sender's id.
    #[wasm_bindgen(getter, js_name = senderId)]
    #[must_use]
    pub fn sender_id(&self) -> u32 {
        self.header.sender_id
    }

    /// The sender's counter (a `bigint`: counters are 64-bit).
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn counter(&self) -> u64 {
        self.header.counter
    }

    /// The authenticated timestamp in seconds, if the sender included one
    /// (a number; a bigint from 2^53 on, where a number is not exact).
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn timestamp(&self) -> JsValue {
        self.header.timestamp.map_or(JsValue::NULL, u64_to_js)
    }
}

/// A JS `Error` with code `invalidConfig` whose message names the option.
fn option_error(option: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(&format!("{option}: {message}"));
    err.set_name("MqsealError");
    let obj: &JsValue = err.as_ref();
    set_prop(obj, "code", &JsValue::from_str("invalidConfig"));
    set_prop(obj, "option", &JsValue::from_str(option));
    err.into()
}

/// A property of the options object; `None` when absent, `undefined` or `null`.
fn option(options: &JsValue, name: &str) -> Option<JsValue> {
    if options.is_undefined() || options.is_null() {
        return None;
    }
    js_sys::Reflect::get(options, &JsValue::from_str(name)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

fn seconds_option(options: &JsValue, name: &str) -> Result<Option<u64>, JsValue> {
    option(options, name)
        .map(|v| {
            opt_u64_from_js(&v)
                .ok()
                .flatten()
                .ok_or_else(|| option_error(name, "must be a whole number of seconds (a number or a bigint), or null"))
        })
        .transpose()
}

/// The JS options object `{ window, gaps, maxAge, maxSkew, requireTimestamp,
/// suites, eviction }` as the core's [`OpenerConfig`], field for field;
/// absent fields keep the core's defaults. Validated by
/// [`OpenerConfig::validate`]; a rejection names the option.
fn config_from_js(options: &JsValue) -> Result<OpenerConfig, JsValue> {
    let mut cfg = OpenerConfig::default();
    if let Some(v) = option(options, "window") {
        cfg.window = v
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u32)
            .ok_or_else(|| option_error("window", &format!("must be an integer from 1 to {MAX_WINDOW}")))?;
    }
    if let Some(v) = option(options, "gaps") {
        cfg.gaps = v
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u32)
            .ok_or_else(|| option_error(ConfigField::Gaps.name(), ConfigField::Gaps.rule()))?;
    }
    cfg.max_age = seconds_option(options, "maxAge")?;
    cfg.max_skew = seconds_option(options, "maxSkew")?;
    if let Some(v) = option(options, "requireTimestamp") {
        cfg.require_timestamp = v.as_bool().ok_or_else(|| option_error("requireTimestamp", "must be a boolean"))?;
    }
    if let Some(v) = option(options, "suites") {
        if !js_sys::Array::is_array(&v) {
            return Err(option_error("suites", "must be an array of suite names"));
        }
        let mut set = SuiteSet::from_suites(&[]);
        for name in js_sys::Array::from(&v).iter() {
            let suite = name.as_string().and_then(|n| suite_from_name(&n).ok()).ok_or_else(|| {
                option_error("suites", &format!("unknown suite {name:?}; use chacha20poly1305 or hmac-sha256"))
            })?;
            set = SuiteSet::from_bits(set.bits() | SuiteSet::only(suite).bits()).map_err(js_error)?;
        }
        cfg.suites = set;
    }
    if let Some(v) = option(options, "eviction") {
        cfg.eviction = match v.as_string().as_deref() {
            Some("rejectNew") => Eviction::RejectNew,
            Some("leastRecentlyUsed") => Eviction::LeastRecentlyUsed,
            _ => return Err(option_error("eviction", "must be 'rejectNew' or 'leastRecentlyUsed'")),
        };
    }
    cfg.check().map_err(|field| config_error(&cfg, field))?;
    Ok(cfg)
}

/// The error for the field [`OpenerConfig::check`] refused: the core names
/// the field and the rule (the same in every binding), the message adds the
/// value given.
fn config_error(cfg: &OpenerConfig, field: ConfigField) -> JsValue {
    let got = match field {
        ConfigField::Window => format!(", got {}", cfg.window),
        ConfigField::Gaps => format!(", got {}", cfg.gaps),
        _ => String::new(),
    };
    option_error(field.name(), &format!("{}{got}", field.rule()))
}

fn config_to_js(cfg: &OpenerConfig) -> JsValue {
    let obj = js_sys::Object::new();
    let secs = |v: Option<u64>| v.map_or(JsValue::NULL, u64_to_js);
    let suites = js_sys::Array::new();
    for s in Suite::ALL {
        if cfg.suites.contains(s) {
            suites.push(&JsValue::from_str(suite_name(s)));
        }
    }
    let eviction = match cfg.eviction {
        Eviction::LeastRecentlyUsed => "leastRecentlyUsed",
        _ => "rejectNew",
    };
    set_prop(&obj, "window", &JsValue::from(cfg.window));
    set_prop(&obj, "gaps", &JsValue::from(cfg.gaps));
    set_prop(&obj, "maxAge", &secs(cfg.max_age));
    set_prop(&obj, "maxSkew", &secs(cfg.max_skew));
    set_prop(&obj, "requireTimestamp", &JsValue::from(cfg.require_timestamp));
    set_prop(&obj, "suites", &suites);
    set_prop(&obj, "eviction", &JsValue::from_str(eviction));
    set_prop(&obj, "effectiveMaxSkew", &secs(cfg.effective_max_skew()));
    set_prop(&obj, "timestampsRequired", &JsValue::from(cfg.timestamps_required()));
    obj.into()
}

/// The opener under the JS `Opener`: keyring, replay windows, policy.
/// `DEFAULT_KEYS` keys and a growable sender table (the core's
/// `FleetOpener`: up to `DEFAULT_MAX_SENDERS` tracked senders, a dashboard
/// watching a fleet), its hasher keyed from `crypto.getRandomValues`.
#[wasm_bindgen]
pub struct RawOpener {
    inner: mqseal::FleetOpener<DEFAULT_KEYS>,
}

/// A sender table keyed with 256 bits from `crypto.getRandomValues`.
fn fleet_table() -> Result<mqseal::SenderMap, mqseal::Error> {
    let mut bytes = random_key_bytes()?;
    let seed = core::array::from_fn(|i| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[8 * i..8 * i + 8]);
        u64::from_le_bytes(w)
    });
    bytes.zeroize();
    mqseal::SenderMap::with_seed(DEFAULT_MAX_SENDERS, seed)
}

#[wasm_bindgen]
impl RawOpener {
    /// An opener with an empty keyring (add keys with
    /// [`RawOpener::add_key`]) and the configuration `options`: the core's
    /// `OpenerConfig` as `{ window, maxAge, maxSkew, requireTimestamp,
    /// suites, eviction }`, absent fields at the core's defaults.
    ///
    /// # Errors
    /// `invalidConfig` (with `option` naming the field) for a value of the
    /// wrong type or one the core's validation refuses.
    #[wasm_bindgen(constructor)]
    pub fn new(options: &JsValue) -> Result<RawOpener, JsValue> {
        let cfg = config_from_js(options)?;
        let mut inner = mqseal::OpenerWith::with_table(mqseal::Keyring::new(), fleet_table().map_err(js_error)?);
        inner.set_config(&cfg).map_err(js_error)?;
        Ok(RawOpener { inner })
    }

    /// Replaces the whole configuration (absent fields at the core's
    /// defaults); unchanged on error. Windows of senders already tracked
    /// keep their width.
    ///
    /// # Errors
    /// As [`RawOpener::new`].
    #[wasm_bindgen(js_name = setConfig)]
    pub fn set_config(&mut self, options: &JsValue) -> Result<(), JsValue> {
        let cfg = config_from_js(options)?;
        self.inner.set_config(&cfg).map_err(js_error)
    }

    /// The configuration in force, plus `effectiveMaxSkew` and
    /// `timestampsRequired` as the core computes them.
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn config(&self) -> JsValue {
        config_to_js(self.inner.config())
    }

    /// Accepts envelopes under this key from now on.
    ///
    /// # Errors
    /// `duplicateKeyId`, `keyringFull` (`DEFAULT_KEYS` = 8 keys).
    #[wasm_bindgen(js_name = addKey)]
    pub fn add_key(&mut self, key: &Key) -> Result<(), JsValue> {
        self.inner.add_key(key.0.clone()).map_err(js_error)
    }

    /// Rejects envelopes under this key id from now on (`unknownKey`).
    ///
    /// # Errors
    /// `keyNotFound`.
    #[wasm_bindgen(js_name = retireKey)]
    pub fn retire_key(&mut self, key_id: u32) -> Result<(), JsValue> {
        self.inner.retire_key(key_id).map_err(js_error)
    }

    /// Number of (key id, sender id) pairs tracked.
    #[wasm_bindgen(getter, js_name = trackedSenders)]
    #[must_use]
    pub fn tracked_senders(&self) -> usize {
        self.inner.tracked_senders()
    }

    /// Bytes the sender table occupies (`SenderTable::memory_bytes`).
    #[wasm_bindgen(getter, js_name = senderMemoryBytes)]
    #[must_use]
    pub fn sender_memory_bytes(&self) -> usize {
        self.inner.senders().memory_bytes()
    }

    /// The most senders tracked before the eviction rule applies
    /// (`DEFAULT_MAX_SENDERS`).
    #[wasm_bindgen(getter, js_name = senderLimit)]
    #[must_use]
    pub fn sender_limit(&self) -> usize {
        self.inner.senders().limit()
    }

    /// The replay state of every tracked sender: the core's records
    /// (`SenderSnapshot::to_bytes`, 52 bytes plus 16 per gap) one after the
    /// other.
    #[must_use]
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.inner.tracked_senders() * SenderSnapshot::ENCODED_LEN);
        for snap in self.inner.snapshot() {
            out.extend_from_slice(&snap.to_bytes());
        }
        out
    }

    /// Merges records saved by [`RawOpener::snapshot`] into the live
    /// windows (the core's `Opener::restore`: never rolls a window back).
    /// Every record is validated first (`SenderSnapshot::records`); if
    /// one is invalid nothing is restored. Records for key ids not in the
    /// keyring are left out and counted. Returns `{ restored, unknownKey }`.
    ///
    /// # Errors
    /// `invalidSnapshot` for bytes that do not split into valid records (a
    /// truncated record; bit 0 clear: it accepted nothing; a bad width or
    /// bad gaps); `tooManySenders` when the table is full (records before it
    /// are merged, which is harmless: merging only adds).
    pub fn restore(&mut self, records: &[u8]) -> Result<JsValue, JsValue> {
        // Every record is validated before any is merged; the second pass
        // decodes them again instead of collecting them into a Vec, which
        // keeps the allocation and the collect machinery out of the module.
        for record in SenderSnapshot::records(records) {
            record.map_err(js_error)?;
        }
        let records = SenderSnapshot::records(records);
        let (mut restored, mut unknown_key) = (0u32, 0u32);
        for snap in records.filter_map(Result::ok) {
            match self.inner.restore(&snap) {
                Ok(()) => restored += 1,
                Err(mqseal::Error::UnknownKey(_)) => unknown_key += 1,
                Err(e) => return Err(js_error(e)),
            }
        }
        let report = js_sys::Object::new();
        set_prop(&report, "restored", &JsValue::from(restored));
        set_prop(&report, "unknownKey", &JsValue::from(unknown_key));
        Ok(report.into())
    }

    /// Forgets one sender's replay state; whether it was tracked.
    #[wasm_bindgen(js_name = forgetSender)]
    pub fn forget_sender(&mut self, key_id: u32, sender_id: u32) -> bool {
        self.inner.forget_sender(key_id, sender_id)
    }

    /// Opens `envelope` received on `topic`; `now` (seconds since the Unix
    /// epoch) for timestamp policies. When `received_prefix` and
    /// `sealed_prefix` are given, a topic arriving under `received_prefix`
    /// is checked as sealed under `sealed_prefix` (bridges).
    ///
    /// # Errors
    /// Every error of the core's `Opener::open_in_place`, by code; nothing
    /// unverified is returned.
    pub fn open(
        &mut self,
        topic: &str,
        envelope: &[u8],
        now: JsValue,
        received_prefix: Option<String>,
        sealed_prefix: Option<String>,
    ) -> Result<Opened, JsValue> {
        let now = opt_u64_from_js(&now).map_err(js_error)?;
        let mut buf = envelope.to_vec();
        let opened = match (&received_prefix, &sealed_prefix) {
            (Some(received), Some(sealed)) => {
                let rule = PrefixRewrite { received, sealed };
                let bound = rule.bound_topic(topic).map_err(js_error)?;
                self.inner.open_in_place_at(bound, &mut buf, now)
            }
            _ => self.inner.open_in_place_at(topic, &mut buf, now),
        }
        .map_err(js_error)?;
        Ok(Opened { header: opened.header, payload: opened.payload.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_integers_are_checked() {
        assert_eq!(int_from_js(0.0), Ok(0));
        assert_eq!(int_from_js(MAX_SAFE_INTEGER), Ok(9_007_199_254_740_991));
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, MAX_SAFE_INTEGER + 2.0] {
            assert_eq!(int_from_js(bad), Err(mqseal::Error::InvalidConfig));
        }
    }

    #[test]
    fn suite_names_round_trip() {
        for s in Suite::ALL {
            assert_eq!(suite_from_name(suite_name(s)), Ok(s));
        }
        assert_eq!(suite_from_name("aes"), Err(mqseal::Error::InvalidConfig));
    }
}
