//! Differential test of the two cryptographic backends: whatever one seals,
//! the other opens, on random keys, counters, associated data and bodies;
//! both reject a corrupted tag and leave the body as it was. With only the
//! RustCrypto backend compiled (`--no-default-features --features std`, or
//! a target without ring) it checks RustCrypto against itself.

#![allow(clippy::unwrap_used, missing_docs)]

use mqseal::fuzzing::{backend, backends_agree};
use mqseal::Suite;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn backends_agree_on_random_inputs(
        aead in any::<bool>(),
        key in any::<[u8; 32]>(),
        counter in any::<u64>(),
        aad in proptest::collection::vec(any::<u8>(), 0..300),
        // Both sides of the fast backend's stack/heap copy threshold (2048).
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(any::<u8>(), 2040..2060),
            proptest::collection::vec(any::<u8>(), 4000..5000),
        ],
    ) {
        let suite = if aead { Suite::ChaCha20Poly1305 } else { Suite::HmacSha256 };
        prop_assert!(backends_agree(suite, &key, counter, &aad, &body), "backends disagree ({})", backend());
    }
}

#[test]
fn backend_matches_the_build() {
    let fast_target =
        cfg!(all(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm"), not(target_os = "none")));
    // scripts/test-parts/10-rust.sh says which backend each of its runs must use.
    let Ok(expected) = std::env::var("MQSEAL_EXPECT_BACKEND") else { return };
    assert!(fast_target || expected == "rustcrypto");
    assert_eq!(backend(), expected);
}
