#!/usr/bin/env bash
# Raspberry Pi-class Linux gateways: the core cross-compiled for
# aarch64-unknown-linux-gnu and armv7-unknown-linux-gnueabihf with Debian's
# cross gcc (ring's C and assembly), and its whole test suite (shared
# vectors, property tests, the backend differential test, counter and
# replay-state files) run under qemu-user. MQSEAL_EXPECT_BACKEND=ring makes
# the suite fail if the build fell back to RustCrypto. The C library for
# hosts is cross-built for aarch64 too.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_target aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
need_apt qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross

export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm -L /usr/arm-linux-gnueabihf"

for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  step "gateways: core tests on $t (ring backend) under qemu-user"
  MQSEAL_EXPECT_BACKEND=ring cargo test --locked -p mqseal --target "$t"
done

step "gateways: the C library for hosts, cross-built for aarch64"
cargo build --locked --release -p mqseal-ffi --target aarch64-unknown-linux-gnu
test -s target/aarch64-unknown-linux-gnu/release/libmqseal.a
