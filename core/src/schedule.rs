//! The key schedule: everything HKDF-SHA256 derives.
//!
//! ```text
//! subkey    = HKDF-SHA256(salt = "mqseal/v1", ikm = key,
//!                         info = "mqseal/v1 subkey" ‖ suite ‖ be32(key_id) ‖ be32(sender_id))   32 bytes
//! direction = HKDF-SHA256(salt = "mqseal/v1", ikm = X25519(own secret, peer public),
//!                         info = "mqseal/v1 pairwise" ‖ sender public ‖ receiver public)           32 bytes
//! ```
//!
//! Each (key, suite, key id, sender id) gets its own subkey, so the 64-bit
//! counter alone makes every nonce unique under that subkey. Subkeys are
//! derived once (when a [`crate::Sealer`] is built, and when an
//! [`crate::Opener`] first meets a sender) and cached, never per message.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keys::{Key, PublicKey, KEY_LEN};
use crate::suites::Suite;

/// HKDF salt shared by every derivation.
pub(crate) const SALT: &[u8] = b"mqseal/v1";
/// Info label of per-sender subkeys.
pub(crate) const SUBKEY_LABEL: &[u8] = b"mqseal/v1 subkey";
/// Info label of pairwise direction keys.
pub(crate) const PAIRWISE_LABEL: &[u8] = b"mqseal/v1 pairwise";

/// A per-(key, suite, sender) subkey. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Subkey(pub(crate) [u8; KEY_LEN]);

impl core::fmt::Debug for Subkey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Subkey(<redacted>)")
    }
}

fn hkdf32(ikm: &[u8], info: &[&[u8]]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so this never
    // fails; the result is ignored rather than unwrapped to keep the crate
    // free of panics.
    let _ = Hkdf::<Sha256>::new(Some(SALT), ikm).expand_multi_info(info, &mut out);
    out
}

/// The subkey a sender uses, and a receiver recomputes, for one key.
pub(crate) fn subkey(key: &Key, suite: Suite, sender_id: u32) -> Subkey {
    let info: [&[u8]; 4] = [SUBKEY_LABEL, &[suite.id()], &key.id().to_be_bytes(), &sender_id.to_be_bytes()];
    Subkey(hkdf32(key.expose_secret(), &info))
}

/// The key for messages from `from` to `to`, given their X25519 secret.
pub(crate) fn pairwise_direction_key(shared: &[u8; KEY_LEN], from: &PublicKey, to: &PublicKey) -> [u8; KEY_LEN] {
    hkdf32(shared, &[PAIRWISE_LABEL, from.as_bytes(), to.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use std::{format, prelude::v1::*, vec};

    /// RFC 5869 appendix A.1, through the same `hkdf` and `sha2` crates the
    /// key schedule uses.
    #[test]
    fn rfc5869_test_case_1() {
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let (prk, hk) = Hkdf::<Sha256>::extract(Some(&salt), &ikm);
        assert_eq!(hex::encode(prk), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
        let mut okm = [0u8; 42];
        hk.expand(&info, &mut okm).unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    /// RFC 5869 appendix A.3: empty salt and info.
    #[test]
    fn rfc5869_test_case_3() {
        let ikm = [0x0bu8; 22];
        let hk = Hkdf::<Sha256>::new(None, &ikm);
        let mut okm = [0u8; 42];
        hk.expand(&[], &mut okm).unwrap();
        assert_eq!(
            hex::encode(okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
    }

    #[test]
    fn subkeys_separate_every_input() {
        let k1 = Key::from_bytes(1, [1; 32]);
        let k2 = Key::from_bytes(2, [1; 32]);
        let base = subkey(&k1, Suite::ChaCha20Poly1305, 7).0;
        assert_ne!(base, subkey(&k2, Suite::ChaCha20Poly1305, 7).0);
        assert_ne!(base, subkey(&k1, Suite::HmacSha256, 7).0);
        assert_ne!(base, subkey(&k1, Suite::ChaCha20Poly1305, 8).0);
        assert_eq!(base, subkey(&k1, Suite::ChaCha20Poly1305, 7).0);
    }
}
