//! Decides, once, which cryptographic backend `src/suites.rs` compiles:
//! `mqseal_fast_backend` (ring) when the `fast-backend` feature is on, the
//! target is one where Cargo.toml brings in ring (x86_64, aarch64 or 32-bit
//! ARM, with an OS), and the user has not asked for RustCrypto with
//! `--cfg mqseal_backend="rustcrypto"`. Otherwise the pure-Rust backend.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let feature = std::env::var_os("CARGO_FEATURE_FAST_BACKEND").is_some();
    let arch = env("CARGO_CFG_TARGET_ARCH");
    let os = env("CARGO_CFG_TARGET_OS");
    let forced_rustcrypto = env("CARGO_CFG_MQSEAL_BACKEND") == "rustcrypto";
    let target_ok = matches!(arch.as_str(), "x86_64" | "aarch64" | "arm") && os != "none";
    if feature && target_ok && !forced_rustcrypto {
        println!("cargo:rustc-cfg=mqseal_fast_backend");
    }
}
