#!/usr/bin/env bash
# Formatting, lints, the workspace tests, and the no_std builds of the core.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
need_target thumbv7em-none-eabihf wasm32-unknown-unknown
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The mqseal-rumqttc and CLI integration tests start Debian's Mosquitto and
# inject messages with mosquitto_pub / mosquitto_sub; the shared replay store
# tests start Debian's redis-server.
need_apt mosquitto mosquitto-clients redis-server
MQSEAL_EXPECT_BACKEND=ring cargo test --workspace --locked
# The core again on the pure-Rust backend: vectors, property tests and the
# backend differential test (which then checks RustCrypto against itself).
MQSEAL_EXPECT_BACKEND=rustcrypto cargo test -p mqseal --no-default-features --features std --locked
RUSTDOCFLAGS="-D warnings" cargo doc -p mqseal --no-deps --locked
cargo build -p mqseal --no-default-features --locked --target thumbv7em-none-eabihf
cargo build -p mqseal --no-default-features --locked --target wasm32-unknown-unknown
