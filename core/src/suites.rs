//! The two suites over one subkey: ChaCha20-Poly1305 and HMAC-SHA256-128.
//!
//! Both take the same inputs (subkey, counter, associated data, body) and
//! give a 16-byte tag; only the AEAD suite changes the body.
//!
//! # Backends
//!
//! This file is the only place that knows which library does the
//! cryptography. A [`Backend`] gives the AEAD and the keyed HMAC; the suites
//! over them (a sealer's [`SealingKey`], [`Backend::open`]) are written once
//! here, and [`Compiled`] is the one backend of the build. There are two,
//! with the same contract:
//!
//! * `rustcrypto`: the pure-Rust `chacha20poly1305`, `hmac` and `sha2`
//!   crates. Always compiled; the backend of `no_std`, wasm32 and MCU
//!   builds, and of std builds without the `fast-backend` feature.
//! * `fast`: `ring` (BoringSSL-derived assembly), compiled when `build.rs`
//!   sets `mqseal_fast_backend`: the `fast-backend` feature (default) on
//!   x86_64, aarch64 or 32-bit ARM with an OS, unless
//!   `--cfg mqseal_backend="rustcrypto"` is given.
//!
//! The contract both keep: the tag is compared in constant time; on any
//! verification failure the one error is [`Error::Auth`] and the body holds
//! exactly the bytes it held before (never plaintext that did not verify);
//! the subkey bytes are zeroized when the [`Subkey`] drops.

use core::fmt;
use core::str::FromStr;

use crate::envelope::TAG_LEN;
use crate::schedule::Subkey;
use crate::Error;

/// A cipher suite: how the body is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Suite {
    /// ChaCha20-Poly1305 (RFC 8439): the body is encrypted and authenticated.
    ChaCha20Poly1305,
    /// HMAC-SHA256 truncated to 16 bytes: the body stays readable and is
    /// authenticated. For data that is not secret but must be authentic.
    HmacSha256,
}

impl Suite {
    /// Both suites, in id order.
    pub const ALL: [Suite; 2] = [Suite::ChaCha20Poly1305, Suite::HmacSha256];

    /// The suite's number in the low nibble of byte 0.
    #[must_use]
    pub const fn id(self) -> u8 {
        match self {
            Suite::ChaCha20Poly1305 => 1,
            Suite::HmacSha256 => 2,
        }
    }

    /// The suite with this number.
    ///
    /// # Errors
    /// [`Error::UnknownSuite`] for any number but 1 and 2.
    pub const fn from_id(id: u8) -> Result<Self, Error> {
        match id {
            1 => Ok(Suite::ChaCha20Poly1305),
            2 => Ok(Suite::HmacSha256),
            other => Err(Error::UnknownSuite(other)),
        }
    }

    /// The suite's name as used in key files, vectors and command lines.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Suite::ChaCha20Poly1305 => "chacha20poly1305",
            Suite::HmacSha256 => "hmac-sha256",
        }
    }

    /// Whether the body is encrypted (true) or only authenticated.
    #[must_use]
    pub const fn is_confidential(self) -> bool {
        matches!(self, Suite::ChaCha20Poly1305)
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Suite {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "chacha20poly1305" | "chacha20-poly1305" | "aead" => Ok(Suite::ChaCha20Poly1305),
            "hmac-sha256" | "hmac" => Ok(Suite::HmacSha256),
            _ => Err(Error::InvalidConfig),
        }
    }
}

/// The 96-bit nonce: four zero bytes, then the counter in big-endian.
pub(crate) fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// The name of the backend this build uses: `"ring"` or `"rustcrypto"`.
pub(crate) const BACKEND: &str = if cfg!(mqseal_fast_backend) { "ring" } else { "rustcrypto" };

/// What a backend provides: the AEAD over a subkey, and HMAC-SHA256 with
/// its keyed state as a value (so that a sealer keys it once). The suites'
/// logic over them ([`Prepared`], [`seal_prepared`], [`Backend::open`]) is
/// written once, here.
pub(crate) trait Backend {
    /// HMAC-SHA256 keyed with a subkey.
    type Mac;
    fn keyed_mac(subkey: &Subkey) -> Self::Mac;
    /// The tag: the leftmost 16 bytes of the HMAC of `aad ‖ body`.
    fn mac_tag(mac: &Self::Mac, aad: &[u8], body: &[u8]) -> [u8; TAG_LEN];
    /// Whether `tag` (16 bytes) is the leftmost half of the HMAC, compared
    /// in constant time.
    fn mac_verifies(mac: &Self::Mac, aad: &[u8], body: &[u8], tag: &[u8; TAG_LEN]) -> bool;
    fn aead_seal(subkey: &Subkey, counter: u64, aad: &[u8], body: &mut [u8]) -> Result<[u8; TAG_LEN], Error>;
    /// Decrypts in place if `tag` verifies; on failure `body` holds exactly
    /// what it held before.
    fn aead_open(subkey: &Subkey, counter: u64, aad: &[u8], body: &mut [u8], tag: &[u8; TAG_LEN]) -> bool;

    /// Seals with the key set up for this one message (the tests and the
    /// differential check; a sealer keeps a [`SealingKey`]).
    #[cfg(any(test, feature = "alloc"))]
    fn seal(suite: Suite, subkey: &Subkey, counter: u64, aad: &[u8], body: &mut [u8]) -> Result<[u8; TAG_LEN], Error>
    where
        Self: Sized,
    {
        seal_prepared(&Prepared::<Self>::new(suite, subkey), counter, aad, body)
    }

    /// Verifies `tag` and, for the AEAD suite, decrypts `body` in place. On
    /// failure the body is left as it was and the one error is
    /// [`Error::Auth`].
    fn open(suite: Suite, subkey: &Subkey, counter: u64, aad: &[u8], body: &mut [u8], tag: &[u8]) -> Result<(), Error> {
        let Ok(tag) = <&[u8; TAG_LEN]>::try_from(tag) else { return Err(Error::Auth) };
        let ok = match suite {
            Suite::ChaCha20Poly1305 => Self::aead_open(subkey, counter, aad, body, tag),
            Suite::HmacSha256 => Self::mac_verifies(&Self::keyed_mac(subkey), aad, body, tag),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Auth)
        }
    }
}

/// The backend of this build: `Compiled::open(...)` opens.
#[cfg(mqseal_fast_backend)]
pub(crate) type Compiled = fast::Ring;
#[cfg(not(mqseal_fast_backend))]
pub(crate) type Compiled = rustcrypto::RustCrypto;

/// A subkey set up for one suite: for the AEAD the subkey itself (its key
/// setup is a 32-byte copy), for HMAC-SHA256 the keyed MAC.
pub(crate) enum Prepared<B: Backend> {
    Aead(Subkey),
    Mac(B::Mac),
}

impl<B: Backend> Prepared<B> {
    fn new(suite: Suite, subkey: &Subkey) -> Self {
        match suite {
            Suite::ChaCha20Poly1305 => Prepared::Aead(subkey.clone()),
            Suite::HmacSha256 => Prepared::Mac(B::keyed_mac(subkey)),
        }
    }
}

/// Protects `body` in place and returns the tag.
fn seal_prepared<B: Backend>(
    key: &Prepared<B>,
    counter: u64,
    aad: &[u8],
    body: &mut [u8],
) -> Result<[u8; TAG_LEN], Error> {
    match key {
        Prepared::Aead(subkey) => B::aead_seal(subkey, counter, aad, body),
        Prepared::Mac(mac) => Ok(B::mac_tag(mac, aad, body)),
    }
}

/// A sender's subkey set up once for its suite, for a [`crate::Sealer`],
/// which seals under one subkey for its whole life. For HMAC-SHA256 this is
/// the keyed MAC state (the subkey's inner and outer pad blocks already
/// hashed), which saves two of the five SHA-256 compressions a typical
/// message costs; for ChaCha20-Poly1305 it is the subkey itself. An opener
/// keeps only the 32-byte subkey per sender and keys the MAC per message:
/// a keyed state per tracked sender would cost a fleet receiver 48 to 144
/// bytes more per sender.
pub(crate) struct SealingKey(Prepared<Compiled>);

impl SealingKey {
    pub(crate) fn new(suite: Suite, subkey: &Subkey) -> Self {
        SealingKey(Prepared::new(suite, subkey))
    }

    /// Protects `body` in place and returns the tag.
    pub(crate) fn seal(&self, counter: u64, aad: &[u8], body: &mut [u8]) -> Result<[u8; TAG_LEN], Error> {
        seal_prepared(&self.0, counter, aad, body)
    }
}

/// The pure-Rust backend (RustCrypto).
///
/// * Tags: `chacha20poly1305` compares the Poly1305 tag in constant time,
///   `hmac`'s `verify_truncated_left` the leftmost 16 bytes of HMAC-SHA256.
/// * No plaintext before verification: `decrypt_inout_detached` checks the
///   tag before it decrypts, so a failed open never writes the body.
/// * Zeroizing: the cipher is built per message from the subkey and
///   zeroizes on drop (`zeroize` features of `chacha20poly1305` and
///   `hmac`), as does a sealer's keyed MAC ([`Prepared::Mac`]); the padded
///   HMAC key block is zeroized by hand.
pub(crate) mod rustcrypto {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    use chacha20poly1305::{ChaCha20Poly1305, Nonce};
    use hmac::block_api::HmacCore;
    use hmac::digest::block_api::{Buffer, CoreProxy};
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use zeroize::Zeroize;

    use super::{nonce, Backend};
    use crate::envelope::TAG_LEN;
    use crate::schedule::Subkey;
    use crate::Error;

    pub(crate) struct RustCrypto;

    /// The keyed MAC as it is kept: its core, without the 64-byte input
    /// buffer, which is empty. Zeroized on drop (`sha2`'s `zeroize`).
    fn keyed(core: &HmacCore<Sha256>, aad: &[u8], body: &[u8]) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::compose(core.clone(), Buffer::<HmacCore<Sha256>>::default());
        m.update(aad);
        m.update(body);
        m
    }

    impl Backend for RustCrypto {
        type Mac = HmacCore<Sha256>;

        /// Two SHA-256 compressions (the inner and outer pad blocks).
        fn keyed_mac(subkey: &Subkey) -> Self::Mac {
            // HMAC zero-pads keys shorter than its 64-byte block, so the
            // 32-byte subkey padded by hand is the same key, through the
            // infallible `new`.
            let mut block = [0u8; 64];
            block[..32].copy_from_slice(&subkey.0);
            let m = <Hmac<Sha256> as hmac::KeyInit>::new(&block.into());
            block.zeroize();
            m.decompose().0
        }

        fn mac_tag(mac: &Self::Mac, aad: &[u8], body: &[u8]) -> [u8; TAG_LEN] {
            let mut tag = [0u8; TAG_LEN];
            tag.copy_from_slice(&keyed(mac, aad, body).finalize().into_bytes()[..TAG_LEN]);
            tag
        }

        fn mac_verifies(mac: &Self::Mac, aad: &[u8], body: &[u8], tag: &[u8; TAG_LEN]) -> bool {
            // Constant-time comparison of the leftmost 16 bytes.
            keyed(mac, aad, body).verify_truncated_left(tag).is_ok()
        }

        fn aead_seal(subkey: &Subkey, counter: u64, aad: &[u8], body: &mut [u8]) -> Result<[u8; TAG_LEN], Error> {
            let cipher = ChaCha20Poly1305::new(&subkey.0.into());
            let n: Nonce = nonce(counter).into();
            // Fails only for bodies beyond 256 GiB.
            let t = cipher.encrypt_inout_detached(&n, aad, body.into()).map_err(|_| Error::PayloadTooLarge)?;
            Ok(t.into())
        }

        /// The tag is checked before the body is decrypted.
        fn aead_open(subkey: &Subkey, counter: u64, aad: &[u8], body: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
            let cipher = ChaCha20Poly1305::new(&subkey.0.into());
            let n: Nonce = nonce(counter).into();
            cipher.decrypt_inout_detached(&n, aad, body.into(), &(*tag).into()).is_ok()
        }
    }
}

/// The assembly-backed backend (`ring`).
///
/// * Tags: ring compares the Poly1305 tag in constant time itself; the
///   truncated HMAC tag is compared with `subtle`'s `ConstantTimeEq`.
/// * No plaintext before verification: ring's fused assembly decrypts while
///   it authenticates, and on a bad tag overwrites the body with zeros. So
///   the ciphertext is copied first (on the stack up to
///   [`fast::STACK_COPY`] bytes, in one heap buffer above) and written back
///   on failure: the caller sees the unchanged envelope, never plaintext.
/// * Zeroizing: the subkey bytes in [`Subkey`] are zeroized on drop as with
///   RustCrypto. ring's own key objects do not zeroize on drop (ring has no
///   such feature and mqseal has no `unsafe` to do it): the ChaCha20 key is
///   set up per message on the stack (a 32-byte copy, no expansion), so is
///   an opener's HMAC key (its inner and outer SHA-256 states,
///   key-equivalent), and a sealer's [`Prepared::Mac`] lives as long as the
///   sealer; none is wiped after use. Where every copy of key material must
///   be wiped, build with the RustCrypto backend.
/// * Key setup: a sealer keys its MAC once ([`super::SealingKey`]); an
///   opener does per message what RustCrypto does too (the ChaCha20 key
///   copy, the two HMAC pad blocks). ring's key objects are not cached per
///   tracked sender because that would grow every opener's sender table
///   (544 bytes for a `LessSafeKey`, 176 for an `hmac::Key`) and the C ABI
///   fixes the opener's size.
#[cfg(mqseal_fast_backend)]
pub(crate) mod fast {
    use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
    use ring::hmac;
    use subtle::ConstantTimeEq;

    use super::{nonce, Backend};
    use crate::envelope::TAG_LEN;
    use crate::schedule::Subkey;
    use crate::Error;

    pub(crate) struct Ring;

    /// Bodies up to this length are saved on the stack while they are
    /// opened; longer ones in a heap buffer.
    pub(crate) const STACK_COPY: usize = 2048;
    const SMALL_COPY: usize = 256;

    /// Runs `open` on `body` (at most `N` bytes), putting the original bytes
    /// back when it fails.
    fn restoring<const N: usize>(body: &mut [u8], open: impl FnOnce(&mut [u8]) -> bool) -> bool {
        let mut saved = [0u8; N];
        let saved = &mut saved[..body.len()];
        saved.copy_from_slice(body);
        let ok = open(body);
        if !ok {
            body.copy_from_slice(saved);
        }
        ok
    }

    /// Runs `f` with the ChaCha20-Poly1305 key of `subkey`. The key object
    /// (544 bytes: ring sizes it for AES-GCM) is built once on the stack
    /// and lent to `f`, never moved through a `Result`.
    #[inline(always)]
    fn with_aead_key<R>(subkey: &Subkey, fail: R, f: impl FnOnce(&LessSafeKey) -> R) -> R {
        // Fails only for a key of the wrong length: never for 32 bytes.
        match UnboundKey::new(&CHACHA20_POLY1305, &subkey.0) {
            Ok(k) => f(&LessSafeKey::new(k)),
            Err(_) => fail,
        }
    }

    impl Backend for Ring {
        type Mac = hmac::Key;

        fn keyed_mac(subkey: &Subkey) -> Self::Mac {
            hmac::Key::new(hmac::HMAC_SHA256, &subkey.0)
        }

        fn mac_tag(mac: &Self::Mac, aad: &[u8], body: &[u8]) -> [u8; TAG_LEN] {
            let mut ctx = hmac::Context::with_key(mac);
            ctx.update(aad);
            ctx.update(body);
            let mut tag = [0u8; TAG_LEN];
            tag.copy_from_slice(&ctx.sign().as_ref()[..TAG_LEN]);
            tag
        }

        fn mac_verifies(mac: &Self::Mac, aad: &[u8], body: &[u8], tag: &[u8; TAG_LEN]) -> bool {
            let expected = Self::mac_tag(mac, aad, body);
            // Two 64-bit constant-time comparisons (`subtle`), rather than
            // sixteen byte comparisons each behind an optimisation barrier.
            let half = |t: &[u8; TAG_LEN], i: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&t[i * 8..i * 8 + 8]);
                u64::from_le_bytes(w)
            };
            bool::from(half(&expected, 0).ct_eq(&half(tag, 0)) & half(&expected, 1).ct_eq(&half(tag, 1)))
        }

        fn aead_seal(subkey: &Subkey, counter: u64, aad: &[u8], body: &mut [u8]) -> Result<[u8; TAG_LEN], Error> {
            let n = Nonce::assume_unique_for_key(nonce(counter));
            // Fails only for bodies beyond 256 GiB.
            let t = with_aead_key(subkey, Err(Error::PayloadTooLarge), |key| {
                key.seal_in_place_separate_tag(n, Aad::from(aad), body).map_err(|_| Error::PayloadTooLarge)
            })?;
            let mut tag = [0u8; TAG_LEN];
            tag.copy_from_slice(&t.as_ref()[..TAG_LEN]);
            Ok(tag)
        }

        fn aead_open(subkey: &Subkey, counter: u64, aad: &[u8], body: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
            let open = |body: &mut [u8]| {
                let n = Nonce::assume_unique_for_key(nonce(counter));
                with_aead_key(subkey, false, |key| {
                    key.open_in_place_separate_tag(n, Aad::from(aad), Tag::from(*tag), body, 0..).is_ok()
                })
            };
            // ring zeroes the body on a bad tag: keep the ciphertext to put
            // back (it is public, so the copy needs no wiping). Two stack
            // sizes, so that a typical small message does not pay for
            // clearing 2 KiB.
            if body.len() <= SMALL_COPY {
                restoring::<SMALL_COPY>(body, open)
            } else if body.len() <= STACK_COPY {
                restoring::<STACK_COPY>(body, open)
            } else {
                let saved = body.to_vec();
                let ok = open(body);
                if !ok {
                    body.copy_from_slice(&saved);
                }
                ok
            }
        }
    }
}

/// Seals with each compiled backend and opens with each (the differential
/// check behind `core/tests/backends.rs`); with only RustCrypto compiled it
/// checks RustCrypto against itself. Returns false on any disagreement: a
/// different ciphertext or tag, a failed open, a forgery that opens, or a
/// body changed by a failed open.
#[cfg(feature = "alloc")]
pub(crate) fn backends_agree(suite: Suite, key: &[u8; 32], counter: u64, aad: &[u8], body: &[u8]) -> bool {
    type SealFn = fn(Suite, &Subkey, u64, &[u8], &mut [u8]) -> Result<[u8; TAG_LEN], Error>;
    type OpenFn = fn(Suite, &Subkey, u64, &[u8], &mut [u8], &[u8]) -> Result<(), Error>;
    let backends: &[(SealFn, OpenFn)] = &[
        (rustcrypto::RustCrypto::seal, rustcrypto::RustCrypto::open),
        #[cfg(mqseal_fast_backend)]
        (fast::Ring::seal, fast::Ring::open),
    ];
    let subkey = Subkey(*key);
    let mut first: Option<(alloc::vec::Vec<u8>, [u8; TAG_LEN])> = None;
    for (seal_with, _) in backends {
        let mut sealed = body.to_vec();
        let Ok(tag) = seal_with(suite, &subkey, counter, aad, &mut sealed) else { return false };
        match &first {
            Some((b, t)) if *b != sealed || *t != tag => return false,
            Some(_) => {}
            None => first = Some((sealed.clone(), tag)),
        }
        for (_, open_with) in backends {
            let mut opened = sealed.clone();
            if open_with(suite, &subkey, counter, aad, &mut opened, &tag).is_err() || opened != body {
                return false;
            }
            let mut bad = tag;
            bad[usize::from(tag[0]) % TAG_LEN] ^= 1 << (tag[1] % 8);
            let mut untouched = sealed.clone();
            if open_with(suite, &subkey, counter, aad, &mut untouched, &bad).is_ok() || untouched != sealed {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    use chacha20poly1305::ChaCha20Poly1305;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    #[allow(unused_imports)]
    use std::{format, prelude::v1::*, vec};

    /// RFC 8439 section 2.8.2, through the same `chacha20poly1305` crate and
    /// calls the AEAD suite uses.
    #[test]
    fn rfc8439_aead_vector() {
        let key: [u8; 32] = hex::decode("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
            .unwrap()
            .try_into()
            .unwrap();
        let nonce: [u8; 12] = hex::decode("070000004041424344454647").unwrap().try_into().unwrap();
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let mut body = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
        let cipher = ChaCha20Poly1305::new(&key.into());
        let tag = cipher.encrypt_inout_detached(&nonce.into(), &aad, body.as_mut_slice().into()).unwrap();
        assert_eq!(
            hex::encode(&body),
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
        );
        assert_eq!(hex::encode(tag), "1ae10b594f09e26a7e902ecbd0600691");
    }

    /// RFC 4231 test case 2 for HMAC-SHA256 (key "Jefe"), and its 128-bit
    /// truncation as the integrity suite uses it.
    #[test]
    fn rfc4231_hmac_vector() {
        let mut m = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        let out = m.finalize().into_bytes();
        assert_eq!(hex::encode(out), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn nonce_layout() {
        assert_eq!(nonce(0x0102_0304_0506_0708), [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn both_suites_round_trip_and_reject_tampering() {
        let sk = Subkey([3u8; 32]);
        for suite in Suite::ALL {
            let mut body = *b"hello world";
            let tag = Compiled::seal(suite, &sk, 5, b"aad", &mut body).unwrap();
            assert_eq!(suite.is_confidential(), &body != b"hello world");
            let mut copy = body;
            Compiled::open(suite, &sk, 5, b"aad", &mut copy, &tag).unwrap();
            assert_eq!(&copy, b"hello world");
            let mut copy = body;
            if suite == Suite::ChaCha20Poly1305 {
                // The AEAD takes the counter as its nonce; HMAC sees it only
                // through the header in the associated data.
                assert_eq!(Compiled::open(suite, &sk, 6, b"aad", &mut copy, &tag), Err(Error::Auth));
            }
            let mut wrong = tag;
            wrong[0] ^= 1;
            assert_eq!(Compiled::open(suite, &sk, 5, b"aad", &mut copy, &wrong), Err(Error::Auth));
            assert_eq!(copy, body, "body untouched on failure");
            assert_eq!(Compiled::open(suite, &sk, 5, b"aae", &mut copy, &tag), Err(Error::Auth));
            assert_eq!(Compiled::open(suite, &sk, 5, b"aad", &mut copy, &tag[..15]), Err(Error::Auth));
        }
    }
}
