//! # mqseal-wasm: the WebAssembly side of the `mqseal` npm package
//!
//! Thin wasm-bindgen bindings over the `mqseal` core: they move bytes in and
//! out and turn [`mqseal::Error`] into a JavaScript `Error` whose `code` is
//! [`mqseal::Error::code`]. Nothing cryptographic happens here.
//!
//! The hand-written JavaScript layer (`bindings/wasm/npm`) wraps these
//! classes: it owns the asynchronous, persistent counter stores (IndexedDB
//! in browsers) and hands the sealer ranges of counters that are already
//! durably reserved ([`RawSealer::grant`]). The sealer here takes counters
//! only from such a range, so a counter that was not persisted first is
//! never used: when the range runs out, sealing fails with code
//! `counterStore` until the JS layer grants more.
//!
//! Randomness for key generation ([`Key::generate`],
//! [`StaticKeyPair::generate`]) comes from the platform's
//! `crypto.getRandomValues`, so the core is built without `std` and without
//! `getrandom`.

#![forbid(unsafe_code)]

extern crate alloc;

use alloc::rc::Rc;
use core::cell::Cell;

use mqseal::{CounterStore, Eviction, PrefixRewrite, StoreError, Suite, MAX_OVERHEAD};
use wasm_bindgen::prelude::*;
use zeroize::Zeroize;

/// Largest integer a JS number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Sender table and keyring sizes of the JS opener. A dashboard listens to
/// many devices; 256 senders take about 30 KB.
const OPENER_KEYS: usize = 16;
const OPENER_SENDERS: usize = 256;

/// A JS `Error` with `name = "MqsealError"` and `code` = the core's stable
/// error code (plus `keyId` for `unknownKey`).
fn js_error(e: mqseal::Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("MqsealError");
    let obj: &JsValue = err.as_ref();
    // Reflect::set fails only on frozen or proxied objects; a fresh Error is neither.
    let _ = js_sys::Reflect::set(obj, &JsValue::from_str("code"), &JsValue::from_str(e.code()));
    if let mqseal::Error::UnknownKeyId(id) = e {
        let _ = js_sys::Reflect::set(obj, &JsValue::from_str("keyId"), &JsValue::from(id));
    }
    err.into()
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
    pub fn from_text(text: &str) -> Result<Key, JsValue> {
        mqseal::Key::from_text(text).map(Key).map_err(js_error)
    }

    /// A key from 32 bytes of key material (from `crypto.getRandomValues`
    /// or a key agreement).
    ///
    /// # Errors
    /// `invalidKey` unless `bytes` has exactly 32 bytes.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(id: u32, bytes: &[u8]) -> Result<Key, JsValue> {
        Ok(Key(mqseal::Key::from_bytes(id, key_bytes(bytes).map_err(js_error)?)))
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
        self.0.to_text().as_str().to_owned()
    }

    /// `Key(<id>)`, never the secret.
    #[wasm_bindgen(js_name = toString)]
    #[must_use]
    pub fn to_display(&self) -> String {
        format!("Key({})", self.0.id())
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
    pub fn from_secret_text(text: &str) -> Result<StaticKeyPair, JsValue> {
        mqseal::StaticKeyPair::from_secret_text(text).map(StaticKeyPair).map_err(js_error)
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
        self.0.public().to_text().as_str().to_owned()
    }

    /// The secret's text form (handle with care).
    #[wasm_bindgen(js_name = secretText)]
    #[must_use]
    pub fn secret_text(&self) -> String {
        self.0.secret_text().as_str().to_owned()
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

/// A counter store over a range that the JS layer has already persisted:
/// counters `[start, end)` may be used, `end` only grows (by
/// [`RawSealer::grant`]). The core's sealer "persists" one counter ahead
/// (reservation block 1); that succeeds only inside the granted range.
#[derive(Debug)]
struct GrantedCounters {
    start: u64,
    end: Rc<Cell<u64>>,
}

impl CounterStore for GrantedCounters {
    fn load(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.start))
    }

    fn persist(&mut self, limit: u64) -> Result<(), StoreError> {
        if limit <= self.end.get() {
            Ok(())
        } else {
            Err(StoreError::Write)
        }
    }
}

/// The synchronous sealer under the JS `Sealer`: counters only from ranges
/// granted after they were persisted.
#[wasm_bindgen]
pub struct RawSealer {
    inner: mqseal::Sealer<GrantedCounters>,
    end: Rc<Cell<u64>>,
    /// Kept to restart the sealer at a range that does not continue the
    /// current one.
    key: mqseal::Key,
}

fn granted_sealer(
    key: &mqseal::Key,
    sender_id: u32,
    suite: Suite,
    first: u64,
    end: u64,
) -> Result<(mqseal::Sealer<GrantedCounters>, Rc<Cell<u64>>), mqseal::Error> {
    if first > end {
        return Err(mqseal::Error::InvalidConfig);
    }
    let end = Rc::new(Cell::new(end));
    let store = GrantedCounters { start: first, end: Rc::clone(&end) };
    let sealer = mqseal::Sealer::new(key, sender_id, suite, store)?.with_reservation_block(1)?;
    Ok((sealer, end))
}

#[wasm_bindgen]
impl RawSealer {
    /// A sealer for `sender_id` under `key` and `suite`
    /// (`"chacha20poly1305"` or `"hmac-sha256"`), allowed to use counters
    /// `[first, end)`, which the caller has durably reserved.
    ///
    /// # Errors
    /// `invalidConfig` for an unknown suite or `first > end`.
    #[wasm_bindgen(constructor)]
    pub fn new(key: &Key, sender_id: u32, suite: &str, first: u64, end: u64) -> Result<RawSealer, JsValue> {
        let suite = suite_from_name(suite).map_err(js_error)?;
        let (inner, end) = granted_sealer(&key.0, sender_id, suite, first, end).map_err(js_error)?;
        Ok(RawSealer { inner, end, key: key.0.clone() })
    }

    /// Hands over the durably reserved range `[start, end)`. A range that
    /// continues the current one extends it; a range further on restarts
    /// the sealer at `start`, skipping what is left of the current range
    /// (skipping counters is always safe).
    ///
    /// # Errors
    /// `invalidConfig` if `start > end` or the range starts before the
    /// current end (ranges only move forward).
    pub fn grant(&mut self, start: u64, end: u64) -> Result<(), JsValue> {
        let current = self.end.get();
        if start > end || start < current {
            return Err(js_error(mqseal::Error::InvalidConfig));
        }
        if start == current {
            self.end.set(end);
        } else {
            let (inner, end) =
                granted_sealer(&self.key, self.inner.sender_id(), self.inner.suite(), start, end).map_err(js_error)?;
            self.inner = inner;
            self.end = end;
        }
        Ok(())
    }

    /// The counter the next message will carry (`u64::MAX` once exhausted).
    #[wasm_bindgen(getter, js_name = nextCounter)]
    #[must_use]
    pub fn next_counter(&self) -> u64 {
        self.inner.next_counter().unwrap_or(u64::MAX)
    }

    /// End of the granted range (exclusive).
    #[wasm_bindgen(getter, js_name = reservedUntil)]
    #[must_use]
    pub fn reserved_until(&self) -> u64 {
        self.end.get()
    }

    /// Counters left in the granted range (as a JS number, capped at 2^53 - 1).
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn remaining(&self) -> f64 {
        let left = self.inner.next_counter().map_or(0, |c| self.end.get().saturating_sub(c));
        (left as f64).min(MAX_SAFE_INTEGER)
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

    /// The suite in use.
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn suite(&self) -> String {
        suite_name(self.inner.suite()).to_owned()
    }

    /// Switches to another key; counters carry on.
    #[wasm_bindgen(js_name = rotateKey)]
    pub fn rotate_key(&mut self, key: &Key) {
        self.inner.rotate_key(&key.0);
        self.key = key.0.clone();
    }

    /// Seals `payload` for `topic`, with an authenticated `timestamp`
    /// (seconds since the Unix epoch) when given.
    ///
    /// # Errors
    /// `counterStore` when the granted range is used up, `topicTooLong`,
    /// `counterExhausted`, `invalidConfig` for a timestamp that is not a
    /// safe integer.
    pub fn seal(&mut self, topic: &str, payload: &[u8], timestamp: Option<f64>) -> Result<Vec<u8>, JsValue> {
        let ts = opt_int_from_js(timestamp).map_err(js_error)?;
        let mut out = vec![0u8; payload.len() + MAX_OVERHEAD];
        let n = self.inner.seal_into_at(topic, ts, payload, &mut out).map_err(js_error)?;
        out.truncate(n);
        Ok(out)
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

    /// `"chacha20poly1305"` or `"hmac-sha256"`.
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn suite(&self) -> String {
        suite_name(self.header.suite).to_owned()
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
    /// (as a JS number: exact below 2^53).
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn timestamp(&self) -> Option<f64> {
        self.header.timestamp.map(|t| t as f64)
    }
}

/// The opener under the JS `Opener`: keyring, replay windows, policy.
#[wasm_bindgen]
pub struct RawOpener {
    inner: mqseal::Opener<OPENER_KEYS, OPENER_SENDERS>,
}

#[wasm_bindgen]
impl RawOpener {
    /// An opener with an empty keyring (add keys with
    /// [`RawOpener::add_key`]) and the given policy. `window`: replay
    /// window width (1 to 256, default 128); `max_age` / `max_skew` in
    /// seconds; `allow_chacha` / `allow_hmac`: accepted suites;
    /// `evict_lru`: when the sender table is full, forget the least
    /// recently heard sender instead of rejecting new ones.
    ///
    /// # Errors
    /// `invalidConfig` for a window out of range or limits that are not
    /// safe integers.
    #[wasm_bindgen(constructor)]
    pub fn new(
        window: Option<u32>,
        max_age: Option<f64>,
        max_skew: Option<f64>,
        require_timestamps: bool,
        allow_chacha: bool,
        allow_hmac: bool,
        evict_lru: bool,
    ) -> Result<RawOpener, JsValue> {
        let mut inner = mqseal::Opener::new(mqseal::Keyring::new());
        if let Some(w) = window {
            inner = inner.with_window(w).map_err(js_error)?;
        }
        if let Some(age) = opt_int_from_js(max_age).map_err(js_error)? {
            inner = inner.with_max_age(age);
        }
        if let Some(skew) = opt_int_from_js(max_skew).map_err(js_error)? {
            inner = inner.with_max_skew(skew);
        }
        if require_timestamps {
            inner = inner.require_timestamps();
        }
        let suites: &[Suite] = match (allow_chacha, allow_hmac) {
            (true, true) => &Suite::ALL,
            (true, false) => &[Suite::ChaCha20Poly1305],
            (false, true) => &[Suite::HmacSha256],
            (false, false) => &[],
        };
        inner = inner.with_suites(suites);
        if evict_lru {
            inner = inner.with_eviction(Eviction::LeastRecentlyUsed);
        }
        Ok(RawOpener { inner })
    }

    /// Accepts envelopes under this key from now on.
    ///
    /// # Errors
    /// `duplicateKeyId`, `keyringFull` (16 keys).
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
        now: Option<f64>,
        received_prefix: Option<String>,
        sealed_prefix: Option<String>,
    ) -> Result<Opened, JsValue> {
        let now = opt_int_from_js(now).map_err(js_error)?;
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
    fn granted_range_is_the_only_source_of_counters() {
        let key = mqseal::Key::from_bytes(1, [7; 32]);
        let (mut sealer, end) = granted_sealer(&key, 3, Suite::ChaCha20Poly1305, 10, 12).unwrap();
        let mut out = [0u8; 64];
        sealer.seal_into_at("t", None, b"a", &mut out).unwrap();
        sealer.seal_into_at("t", None, b"b", &mut out).unwrap();
        assert_eq!(sealer.seal_into_at("t", None, b"c", &mut out), Err(mqseal::Error::CounterStore(StoreError::Write)));
        assert_eq!(sealer.next_counter(), Ok(12));
        end.set(13);
        sealer.seal_into_at("t", None, b"c", &mut out).unwrap();
        assert_eq!(sealer.next_counter(), Ok(13));
        assert!(granted_sealer(&key, 3, Suite::HmacSha256, 5, 4).is_err());
    }

    #[test]
    fn granted_sealer_reproduces_the_core_sealer() {
        let key = mqseal::Key::from_bytes(1, [9; 32]);
        let (mut granted, _end) = granted_sealer(&key, 42, Suite::ChaCha20Poly1305, 77, 78).unwrap();
        let mut plain =
            mqseal::Sealer::new(&key, 42, Suite::ChaCha20Poly1305, mqseal::MemoryCounterStore::starting_at(77))
                .unwrap();
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        let n = granted.seal_into_at("x/y", Some(5), b"hello", &mut a).unwrap();
        let m = plain.seal_into_at("x/y", Some(5), b"hello", &mut b).unwrap();
        assert_eq!(a[..n], b[..m]);
    }

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
