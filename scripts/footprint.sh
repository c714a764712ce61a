#!/usr/bin/env bash
# Footprint of the mqseal core on a Cortex-M4F: flash (.text + .rodata) and
# static RAM (.data + .bss) of small firmware images that seal and/or open
# one message, built for thumbv7em-none-eabihf with opt-level "s", fat LTO,
# panic=abort (tests/firmware-qemu, profile.release). Each number is the
# image minus a baseline image (the same runtime with no mqseal call), so it
# is what mqseal adds to a firmware. Two builds: the default SHA-256 backend
# (unrolled rounds) and the compact one (`--cfg sha2_backend_soft="compact"`).
#
# Usage: scripts/footprint.sh            prints a Markdown table
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_target thumbv7em-none-eabihf

if command -v llvm-size >/dev/null; then
  SIZE=llvm-size
else
  need_apt binutils-arm-none-eabi
  SIZE=arm-none-eabi-size
fi

TARGET=thumbv7em-none-eabihf
PROBES=(chacha-seal hmac-seal chacha hmac both)
declare -A LABEL=(
  [chacha-seal]="ChaCha20-Poly1305: seal"
  [hmac-seal]="HMAC-SHA256: seal"
  [chacha]="ChaCha20-Poly1305: seal + open"
  [hmac]="HMAC-SHA256: seal + open"
  [both]="both suites: seal + open"
)

build() { # $1 = target dir, $2 = extra rustflags
  (cd tests/firmware-qemu &&
    CARGO_TARGET_DIR="$1" RUSTFLAGS="-C link-arg=-Tlink.x $2" \
      cargo build --quiet --release --target "$TARGET" \
      --bin footprint-baseline $(printf -- '--bin footprint-%s ' "${PROBES[@]}"))
}

# sizes FILE -> "flash ram" (flash = .text + .rodata, ram = .data + .bss)
sizes() {
  "$SIZE" -A "$1" | awk '
    $1 == ".text" || $1 == ".rodata" { flash += $2 }
    $1 == ".data" || $1 == ".bss" { ram += $2 }
    END { print flash + 0, ram + 0 }'
}

DEFAULT_DIR="$PWD/target/firmware-qemu"
COMPACT_DIR="$PWD/target/firmware-qemu-compact"
build "$DEFAULT_DIR" ""
build "$COMPACT_DIR" '--cfg sha2_backend_soft="compact"'

kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

read -r base_f base_r < <(sizes "$DEFAULT_DIR/$TARGET/release/footprint-baseline")
read -r cbase_f cbase_r < <(sizes "$COMPACT_DIR/$TARGET/release/footprint-baseline")
echo "| probe ($TARGET, opt-level \"s\", LTO) | flash | flash, compact SHA-256 | static RAM |"
echo "|---|---:|---:|---:|"
for p in "${PROBES[@]}"; do
  read -r f r < <(sizes "$DEFAULT_DIR/$TARGET/release/footprint-$p")
  read -r cf cr < <(sizes "$COMPACT_DIR/$TARGET/release/footprint-$p")
  echo "| ${LABEL[$p]} | $((f - base_f)) B ($(kib $((f - base_f)))) | $((cf - cbase_f)) B ($(kib $((cf - cbase_f)))) | $((r - base_r)) B |"
done
echo
echo "Baseline image (cortex-m-rt, panic handler, no mqseal): .text+.rodata $base_f B, .data+.bss $base_r B;"
echo "flash excludes the 1 KiB vector table. Heap: none (no allocator is linked)."
