#!/usr/bin/env bash
# Embedded: mqseal-embedded and mqseal-ffi for Cortex-M4F and RISC-V
# (ESP32-C3), the shared vectors on a Cortex-M3 under QEMU, the footprint
# table. The C programs are the next part, 31-c.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
ROOT="$PWD"

need_target thumbv7em-none-eabihf riscv32imc-unknown-none-elf thumbv7m-none-eabi
need_apt qemu-system-arm

step "embedded: no_std builds for thumbv7em-none-eabihf and riscv32imc-unknown-none-elf"
for t in thumbv7em-none-eabihf riscv32imc-unknown-none-elf; do
  # default features (minimq glue) plus defmt, and the bare store
  cargo build --locked -p mqseal-embedded --target "$t" --features defmt
  cargo build --locked -p mqseal-embedded --target "$t" --no-default-features
  cargo build --locked --release -p mqseal-ffi --target "$t" --no-default-features
  test -s "target/$t/release/libmqseal.a"
done
cargo clippy --locked -p mqseal-embedded -p mqseal-ffi --target thumbv7em-none-eabihf --no-default-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked -p mqseal-embedded -p mqseal-ffi --no-deps

(cd tests/firmware-qemu && cargo fmt --check)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

step "embedded: shared vectors on Cortex-M3 (QEMU lm3s6965evb)"
# Not --locked: the firmware crate has its own Cargo.lock (committed), and a
# dependency change in core/ must not make it fail before it is refreshed.
(cd tests/firmware-qemu &&
  CARGO_TARGET_DIR="$ROOT/target/firmware-qemu" cargo build --release --bin vectors)
fw="$ROOT/target/firmware-qemu/thumbv7m-none-eabi/release/vectors"
set +e
timeout 120 qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic \
  -semihosting-config enable=on,target=native -kernel "$fw" | tee "$tmp/qemu.log"
qemu_rc=${PIPESTATUS[0]}
set -e
if [ "$qemu_rc" != 0 ] || ! grep -qE '^[1-9][0-9]* passed, 0 failed' "$tmp/qemu.log"; then
  echo "firmware vectors failed under QEMU (exit $qemu_rc)" >&2
  exit 1
fi

step "embedded: footprint (scripts/footprint.sh)"
bash scripts/footprint.sh

echo "embedded: all passed"
