//! Shared fixtures for the mqseal benchmarks: the message sizes, the raw
//! baselines (the same `chacha20poly1305` and `hmac` crates the core uses,
//! called directly), and a typed payload.
//!
//! The benchmarks themselves are in `benches/primitives.rs`; run them with
//! `scripts/bench.sh` (see `BENCHMARKS.md`). Nothing here is timed under
//! `cargo test`.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Payload sizes measured, in bytes.
pub const SIZES: [usize; 5] = [16, 64, 256, 1024, 16384];

/// The topic used for every sealed message (24 bytes, a typical depth).
pub const TOPIC: &str = "factory/line1/press7/tel";

/// A fixed 32-byte key.
pub const KEY_BYTES: [u8; 32] = [0x42; 32];

/// A payload of `len` bytes with varied content.
#[must_use]
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ 0x5a) as u8).collect()
}

/// The raw AEAD baseline: ChaCha20-Poly1305 from the `chacha20poly1305`
/// crate with one key, a counter nonce and no associated data.
pub struct RawAead {
    cipher: ChaCha20Poly1305,
    counter: u64,
    aad: Vec<u8>,
}

/// Length of the associated data mqseal authenticates for [`TOPIC`] with a
/// typical header: `"mqseal/v1"` (9) + header (7) + topic length (1) +
/// topic (24) = 41 bytes, three Poly1305 blocks once padded.
pub const TYPICAL_AAD_LEN: usize = 41;

impl RawAead {
    /// A cipher under [`KEY_BYTES`], with no associated data.
    #[must_use]
    pub fn new() -> Self {
        RawAead { cipher: ChaCha20Poly1305::new(&KEY_BYTES.into()), counter: 0, aad: Vec::new() }
    }

    /// A cipher under [`KEY_BYTES`] that authenticates `aad_len` bytes of
    /// associated data with every message, as mqseal does.
    #[must_use]
    pub fn with_aad(aad_len: usize) -> Self {
        RawAead { aad: vec![0xa5; aad_len], ..Self::new() }
    }

    fn next_nonce(&mut self) -> Nonce {
        self.counter = self.counter.wrapping_add(1);
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&self.counter.to_be_bytes());
        n.into()
    }

    /// Encrypts `buf` in place under the next nonce; returns the nonce
    /// counter and the tag.
    ///
    /// # Errors
    /// Only for buffers beyond the AEAD's limit (256 GiB).
    pub fn encrypt(&mut self, buf: &mut [u8]) -> Result<(u64, Tag), chacha20poly1305::Error> {
        let n = self.next_nonce();
        let tag = self.cipher.encrypt_inout_detached(&n, &self.aad, buf.into())?;
        Ok((self.counter, tag))
    }

    /// Verifies and decrypts `buf` in place.
    ///
    /// # Errors
    /// When the tag does not verify.
    pub fn decrypt(&self, counter: u64, buf: &mut [u8], tag: &Tag) -> Result<(), chacha20poly1305::Error> {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_be_bytes());
        self.cipher.decrypt_inout_detached(&n.into(), &self.aad, buf.into(), tag)
    }
}

impl Default for RawAead {
    fn default() -> Self {
        Self::new()
    }
}

/// The raw MAC baseline: HMAC-SHA256 over `data` under [`KEY_BYTES`],
/// full 32-byte output.
#[must_use]
pub fn raw_hmac(data: &[u8]) -> [u8; 32] {
    let mut m = hmac_init();
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Verifies a raw HMAC-SHA256 tag (constant time, leftmost 16 bytes, as
/// the integrity suite compares).
#[must_use]
pub fn raw_hmac_verify(data: &[u8], tag: &[u8]) -> bool {
    let mut m = hmac_init();
    m.update(data);
    m.verify_truncated_left(tag).is_ok()
}

// HMAC zero-pads a key shorter than its 64-byte block: the padded key is
// the same key, through the infallible constructor.
fn hmac_init() -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(&KEY_BYTES);
    <Hmac<Sha256> as hmac::KeyInit>::new(&block.into())
}

/// A typical typed telemetry payload (postcard encodes it in about 60
/// bytes).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Reading<'a> {
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// Sensor name.
    pub sensor: &'a str,
    /// Temperature in millidegrees.
    pub millidegrees: i32,
    /// Recent samples.
    pub samples: [f32; 8],
    /// Status flag.
    pub ok: bool,
}

/// The [`Reading`] sealed by the typed benchmarks.
#[must_use]
pub fn reading() -> Reading<'static> {
    Reading {
        at_ms: 1_763_000_000_000,
        sensor: "press7-oil-temp",
        millidegrees: 61_250,
        samples: [61.0, 61.1, 61.2, 61.25, 61.3, 61.2, 61.2, 61.25],
        ok: true,
    }
}

/// The raw baseline of the fast backend: ring's ChaCha20-Poly1305 under
/// [`KEY_BYTES`], a counter nonce and [`TYPICAL_AAD_LEN`] bytes of
/// associated data, in place, key set up once.
pub struct RingAead {
    key: ring::aead::LessSafeKey,
    counter: u64,
    aad: Vec<u8>,
}

impl RingAead {
    /// A key under [`KEY_BYTES`] with mqseal-length associated data.
    ///
    /// # Errors
    /// Never for a 32-byte key.
    pub fn new() -> Result<Self, ring::error::Unspecified> {
        let key = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &KEY_BYTES)?;
        Ok(RingAead { key: ring::aead::LessSafeKey::new(key), counter: 0, aad: vec![0xa5; TYPICAL_AAD_LEN] })
    }

    fn nonce(counter: u64) -> ring::aead::Nonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_be_bytes());
        ring::aead::Nonce::assume_unique_for_key(n)
    }

    /// Encrypts `buf` in place, then verifies and decrypts it in place.
    ///
    /// # Errors
    /// When the round trip fails (it never should).
    pub fn encrypt_decrypt(&mut self, buf: &mut [u8]) -> Result<(), ring::error::Unspecified> {
        self.counter = self.counter.wrapping_add(1);
        let aad = ring::aead::Aad::from(self.aad.as_slice());
        let tag = self.key.seal_in_place_separate_tag(Self::nonce(self.counter), aad, buf)?;
        let aad = ring::aead::Aad::from(self.aad.as_slice());
        self.key.open_in_place_separate_tag(Self::nonce(self.counter), aad, tag, buf, 0..).map(|_| ())
    }
}

/// ring's HMAC-SHA256 over `data` under [`KEY_BYTES`], then a verify of
/// the leftmost 16 bytes (what the integrity suite does on each side);
/// key set up once.
#[must_use]
pub fn ring_hmac_sign_verify(key: &ring::hmac::Key, data: &[u8]) -> bool {
    let tag = ring::hmac::sign(key, data);
    let again = ring::hmac::sign(key, data);
    tag.as_ref()[..16] == again.as_ref()[..16]
}

/// ring's HMAC key under [`KEY_BYTES`].
#[must_use]
pub fn ring_hmac_key() -> ring::hmac::Key {
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &KEY_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_aead_round_trips_and_rejects_tampering() {
        let mut aead = RawAead::new();
        let plain = payload(64);
        let mut buf = plain.clone();
        let (c, tag) = aead.encrypt(&mut buf).unwrap();
        assert_ne!(buf, plain);
        let mut bad = buf.clone();
        bad[3] ^= 1;
        assert!(aead.decrypt(c, &mut bad, &tag).is_err());
        aead.decrypt(c, &mut buf, &tag).unwrap();
        assert_eq!(buf, plain);
    }

    #[test]
    fn raw_hmac_verifies_its_own_tag_only() {
        let data = payload(100);
        let tag = raw_hmac(&data);
        assert!(raw_hmac_verify(&data, &tag[..16]));
        assert!(!raw_hmac_verify(&data[1..], &tag[..16]));
    }

    #[test]
    fn reading_seals_and_opens_typed() {
        use mqseal::{Key, Keyring, MemoryCounterStore, Opener, Sealer, Suite, MAX_OVERHEAD};
        let key = Key::from_bytes(1, KEY_BYTES);
        let mut sealer = Sealer::new(&key, 1, Suite::ChaCha20Poly1305, MemoryCounterStore::new()).unwrap();
        let mut buf = [0u8; 128 + MAX_OVERHEAD];
        let n = sealer.seal_value_into(TOPIC, &reading(), &mut buf).unwrap();
        let mut opener: Opener<1, 4> = Opener::new(Keyring::with_primary(key).unwrap());
        let (_, r): (_, Reading<'_>) = opener.open_value(TOPIC, &mut buf[..n]).unwrap();
        assert_eq!(r, reading());
    }
}
