#!/usr/bin/env bash
# The benchmarks behind BENCHMARKS.md, in one run on this machine:
#   1. Criterion: mqseal against raw chacha20poly1305 / HMAC-SHA256 and raw
#      ring (default build: mqseal on its ring backend)
#   1b. fleet scale: open cost at 10^2 to 10^6 tracked senders, memory per
#      sender, replay-state save/load at 10^6 (benches/benches/fleet.rs)
#   1c. replay gaps (benches/benches/gaps.rs) and sender-id leases against
#      a local redis-server (benches/benches/sender_lease.rs)
#   2. the same rows with mqseal on its RustCrypto backend
#      (--cfg mqseal_backend="rustcrypto"); the RustCrypto builds below all
#      carry that cfg too
#   2b. the ChaCha20-Poly1305 rows built with --cfg poly1305_backend="soft",
#      with -C target-feature=+avx2, and with scalar backends only (as on
#      wasm32); own target dirs under target/variants/
#   3. end to end through a real Mosquitto (sealed vs plain, QoS 0 and 1)
#   4. WebAssembly in Node (the npm package as built by bindings/wasm/build.sh,
#      and, for comparison, the same crate built for size throughout:
#      opt-level "z" and wasm-opt -Oz)
#   5. openssl speed -evp chacha20-poly1305 (encrypt and -decrypt) and
#      openssl speed -hmac sha256 as the physical reference
# then prints the tables (benches/report.py) and writes them to
# target/bench-results/report.md.
#
#   scripts/bench.sh            # full run, about 25 minutes on 2 cores
#   BENCH_QUICK=1 scripts/bench.sh   # a quick pass (Criterion --quick, short e2e)
#
# Benchmarks want a quiet machine: stop fuzzers and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

OUT="${BENCH_OUT:-target/bench-results}"
QUICK="${BENCH_QUICK:-}"
crit_args=()
e2e_args=(--messages 100000 --rounds 31)
wasm_args=(--seconds 1 --rounds 3)
if [ -n "$QUICK" ]; then
  crit_args=(--quick)
  e2e_args=(--messages 3000 --rounds 1)
  wasm_args=(--seconds 0.3 --rounds 1)
fi
rm -rf "$OUT"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

need_apt mosquitto openssl

step "machine"
{
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "cores (nproc): $(nproc)"
  echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'avx2|avx512f|sse4_1|bmi2|sha_ni|aes' | sort -u | tr '\n' ' ')"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "openssl: $(openssl version)"
  echo "mosquitto: $(dpkg-query -W -f='${Version}' mosquitto 2>/dev/null)"
  if command -v node >/dev/null; then echo "node: $(node --version)"; fi
  echo "chacha20poly1305 $(lock_version chacha20poly1305), poly1305 $(lock_version poly1305), chacha20 $(lock_version chacha20), hmac $(lock_version hmac), sha2 $(lock_version sha2)"
} | tee "$OUT/machine.txt"

step "openssl speed -evp chacha20-poly1305"
openssl speed -seconds 1 -evp chacha20-poly1305 2>/dev/null | tee "$OUT/openssl.txt" | tail -n 3
openssl speed -seconds 1 -decrypt -evp chacha20-poly1305 2>/dev/null | tee "$OUT/openssl-decrypt.txt" | tail -n 1
# -aead: a whole AEAD message per operation (nonce, 13 bytes of associated
# data, tag), as mqseal does; the plain -evp figures are streaming updates.
openssl speed -seconds 1 -aead -evp chacha20-poly1305 2>/dev/null | tee "$OUT/openssl-aead.txt" | tail -n 1
openssl speed -seconds 1 -aead -decrypt -evp chacha20-poly1305 2>/dev/null | tee "$OUT/openssl-aead-decrypt.txt" | tail -n 1
# -aead has no 64-byte block among its sizes (2, 31, 136, 1024, ...): that one alone.
openssl speed -seconds 1 -aead -bytes 64 -evp chacha20-poly1305 2>/dev/null | tee "$OUT/openssl-aead-64.txt" | tail -n 1
openssl speed -seconds 1 -aead -decrypt -bytes 64 -evp chacha20-poly1305 2>/dev/null | tee "$OUT/openssl-aead-decrypt-64.txt" | tail -n 1
step "openssl speed -hmac sha256"
openssl speed -seconds 1 -hmac sha256 2>/dev/null | tee "$OUT/openssl-hmac.txt" | tail -n 1

step "criterion: default build"
CRITERION_HOME="$OUT/criterion" cargo bench -p mqseal-benches --bench primitives --locked -- "${crit_args[@]}" \
  | grep -E '^[a-z0-9_-]+/|time:' || true

step "criterion: fleet scale (open cost at 10^2..10^6 senders, snapshot at 10^6)"
CRITERION_HOME="$OUT/criterion" MQSEAL_FLEET_JSON="$OUT/fleet.json" \
  cargo bench -p mqseal-benches --bench fleet --locked -- "${crit_args[@]}" | grep -E '^fleet|time:|bytes' || true

step "criterion: replay gaps (open cost by where a late counter lands, budget 0 vs 4)"
CRITERION_HOME="$OUT/criterion" cargo bench -p mqseal-benches --bench gaps --locked -- "${crit_args[@]}" \
  | grep -E '^gaps|time:' || true

step "criterion: sender-id leases against a local redis-server"
need_apt redis-server
CRITERION_HOME="$OUT/criterion" cargo bench -p mqseal-benches --bench sender_lease --locked -- "${crit_args[@]}" \
  | grep -E '^sender_lease|time:' || true

variant() { # DIR LABEL RUSTFLAGS [FILTER]
  step "criterion: built with RUSTFLAGS='$3'"
  CARGO_TARGET_DIR="target/variants/$1" RUSTFLAGS="$3" CRITERION_HOME="$OUT/variants/$2" \
    cargo bench -p mqseal-benches --bench primitives --locked -- "${crit_args[@]}" \
    "${4:-^chacha20poly1305/(raw_encrypt_decrypt|raw_encrypt_decrypt_aad41|seal_open)/}" | grep -E 'time:' || true
}
RC='--cfg mqseal_backend="rustcrypto"'
variant rustcrypto 'rustcrypto backend' "$RC" \
  '^(chacha20poly1305|hmac-sha256)/(raw_encrypt_decrypt_aad41|ring_encrypt_decrypt_aad41|raw_sign_verify|ring_sign_verify|seal_open)/'
variant soft 'cfg poly1305_backend=soft' "$RC --cfg poly1305_backend=\"soft\""
if grep -q -w avx2 /proc/cpuinfo; then
  variant avx2 'target-feature=+avx2' "$RC -C target-feature=+avx2"
fi
# Scalar code only, as on wasm32 (no SIMD ChaCha20 or Poly1305, no SHA
# instructions): the native figure the WebAssembly build is compared with.
variant scalar 'scalar backends (as WASM)' \
  "$RC"' --cfg poly1305_backend="soft" --cfg chacha20_backend="soft" --cfg sha2_backend="soft"' \
  '^(chacha20poly1305|hmac-sha256)/(raw_encrypt_decrypt|raw_encrypt_decrypt_aad41|raw_sign_verify|seal_open|seal_open_vec)/'

step "instruction counts (callgrind): noise-free ratios"
# Timings on a shared 2-core machine are noisy; instructions executed per
# message are not. Ir per message = (Ir(N) - Ir(0)) / N.
if command -v valgrind >/dev/null; then
  ir() { # BINARY OP SIZE N
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$2" "$3" "$4" 2>&1 | awk '/Collected/ {print $4}'
  }
  echo "build op size ir_per_message" >"$OUT/callgrind.txt"
  for b in default soft avx2 scalar; do
    case "$b" in
      default) dir=target; flags="${RUSTFLAGS:-}" ;;
      soft) dir=target/variants/soft; flags="$RC"' --cfg poly1305_backend="soft"' ;;
      avx2) grep -q -w avx2 /proc/cpuinfo || continue; dir=target/variants/avx2; flags="$RC -C target-feature=+avx2" ;;
      scalar) dir=target/variants/scalar; flags="$RC"' --cfg poly1305_backend="soft" --cfg chacha20_backend="soft" --cfg sha2_backend="soft"' ;;
    esac
    CARGO_TARGET_DIR="$dir" RUSTFLAGS="$flags" cargo build --release --locked -p mqseal-benches --example profile -q
    bin="$dir/release/examples/profile"
    for size in 64 16384; do
      n=$((size == 64 ? 20000 : 300))
      for op in raw raw_aad seal_open hmac_raw hmac_seal_open; do
        base="$(ir "$bin" "$op" "$size" 0)"
        full="$(ir "$bin" "$op" "$size" "$n")"
        echo "$b $op $size $(((full - base) / n))" | tee -a "$OUT/callgrind.txt"
      done
    done
  done
else
  echo "valgrind missing: instruction counts skipped (apt-get install valgrind)"
fi

step "end to end through Mosquitto"
MQSEAL_E2E_JSON="$OUT/e2e.json" cargo bench -p mqseal-benches --bench broker --locked -- "${e2e_args[@]}"
step "end to end through Mosquitto, RustCrypto backend built with --cfg poly1305_backend=\"soft\""
CARGO_TARGET_DIR=target/variants/soft RUSTFLAGS="$RC"' --cfg poly1305_backend="soft"' MQSEAL_E2E_JSON="$OUT/e2e-soft.json" \
  cargo bench -p mqseal-benches --bench broker --locked -- "${e2e_args[@]}"

step "WebAssembly in Node"
if command -v node >/dev/null && command -v wasm-bindgen >/dev/null; then
  pkg=bindings/wasm/npm
  bash bindings/wasm/build.sh
  node benches/wasm/bench.mjs "${wasm_args[@]}" --json "$OUT/wasm-npm-package.json"
  # The same crate built for size throughout (opt-level "z" for every
  # crate, wasm-opt -Oz): what the package's opt-level 3 hot path buys.
  oz="$OUT/wasm-size-package"
  mkdir -p "$oz"
  cp "$pkg"/*.js "$pkg/package.json" "$oz/"
  WASM_BUILD=size WASM_OUT="$oz/wasm" bash bindings/wasm/build.sh
  node benches/wasm/bench.mjs "${wasm_args[@]}" --pkg "$oz" --json "$OUT/wasm-size-throughout.json"
else
  echo "node or wasm-bindgen missing: WebAssembly figures skipped (scripts/test-parts/20-wasm.sh installs them)"
fi

step "report"
python3 benches/report.py "$OUT" | tee "$OUT/report.md"
echo "written: $OUT/report.md"
