//! The two suites over one subkey: ChaCha20-Poly1305 and HMAC-SHA256-128.
//!
//! Both take the same inputs (subkey, counter, associated data, body) and
//! give a 16-byte tag; only the AEAD suite changes the body.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::envelope::{Suite, TAG_LEN};
use crate::schedule::Subkey;
use crate::Error;

/// The 96-bit nonce: four zero bytes, then the counter in big-endian.
pub(crate) fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

fn mac(subkey: &Subkey, aad: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // HMAC zero-pads keys shorter than its 64-byte block, so the 32-byte
    // subkey padded by hand is the same key, through the infallible `new`.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(&subkey.0);
    let mut m = <Hmac<Sha256> as hmac::KeyInit>::new(&block.into());
    block.zeroize();
    m.update(aad);
    m.update(body);
    m
}

/// Protects `body` in place and returns the tag.
pub(crate) fn seal(
    suite: Suite,
    subkey: &Subkey,
    counter: u64,
    aad: &[u8],
    body: &mut [u8],
) -> Result<[u8; TAG_LEN], Error> {
    let mut tag = [0u8; TAG_LEN];
    match suite {
        Suite::ChaCha20Poly1305 => {
            let cipher = ChaCha20Poly1305::new(&subkey.0.into());
            let n: Nonce = nonce(counter).into();
            // Fails only for bodies beyond 256 GiB.
            let t = cipher.encrypt_inout_detached(&n, aad, body.into()).map_err(|_| Error::PayloadTooLarge)?;
            tag.copy_from_slice(&t);
        }
        Suite::HmacSha256 => {
            let out = mac(subkey, aad, body).finalize().into_bytes();
            tag.copy_from_slice(&out[..TAG_LEN]);
        }
    }
    Ok(tag)
}

/// Verifies `tag` and, for the AEAD suite, decrypts `body` in place. On
/// failure the body is left as it was (the AEAD checks the tag before it
/// decrypts) and the one error is [`Error::Auth`].
pub(crate) fn open(
    suite: Suite,
    subkey: &Subkey,
    counter: u64,
    aad: &[u8],
    body: &mut [u8],
    tag: &[u8],
) -> Result<(), Error> {
    if tag.len() != TAG_LEN {
        return Err(Error::Auth);
    }
    match suite {
        Suite::ChaCha20Poly1305 => {
            let cipher = ChaCha20Poly1305::new(&subkey.0.into());
            let n: Nonce = nonce(counter).into();
            let mut t = [0u8; TAG_LEN];
            t.copy_from_slice(tag);
            cipher.decrypt_inout_detached(&n, aad, body.into(), &t.into()).map_err(|_| Error::Auth)
        }
        // Constant-time comparison of the leftmost 16 bytes.
        Suite::HmacSha256 => mac(subkey, aad, body).verify_truncated_left(tag).map_err(|_| Error::Auth),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            let tag = seal(suite, &sk, 5, b"aad", &mut body).unwrap();
            assert_eq!(suite.is_confidential(), &body != b"hello world");
            let mut copy = body;
            open(suite, &sk, 5, b"aad", &mut copy, &tag).unwrap();
            assert_eq!(&copy, b"hello world");
            let mut copy = body;
            if suite == Suite::ChaCha20Poly1305 {
                // The AEAD takes the counter as its nonce; HMAC sees it only
                // through the header in the associated data.
                assert_eq!(open(suite, &sk, 6, b"aad", &mut copy, &tag), Err(Error::Auth));
            }
            let mut wrong = tag;
            wrong[0] ^= 1;
            assert_eq!(open(suite, &sk, 5, b"aad", &mut copy, &wrong), Err(Error::Auth));
            assert_eq!(copy, body, "body untouched on failure");
            assert_eq!(open(suite, &sk, 5, b"aae", &mut copy, &tag), Err(Error::Auth));
            assert_eq!(open(suite, &sk, 5, b"aad", &mut copy, &tag[..15]), Err(Error::Auth));
        }
    }
}
