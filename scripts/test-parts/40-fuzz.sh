#!/usr/bin/env bash
# Smoke-runs every cargo-fuzz target in fuzz/ for a short time (default 20 s
# each, two at a time on the two cores) from seeds made from the shared test
# vectors. Fails on any crash, leak, timeout or out-of-memory report.
# Every target runs on the default build (the ring backend on this machine);
# the targets that reach the cryptography (FUZZ_CRYPTO_TARGETS) run again on
# the RustCrypto backend (--cfg mqseal_backend="rustcrypto", own target dir).
#
#   FUZZ_SECONDS=600 FUZZ_LOG_DIR=/tmp/fuzz-logs scripts/test-parts/40-fuzz.sh
#                                    # a longer run, logs kept
#   FUZZ_TARGETS="parse_header typed_open" ...   # some targets only
#
# Needs the nightly toolchain (installed with the machine) and cargo-fuzz
# (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "40-fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  step "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

step "fuzz: seeds from core/tests/vectors/v1.json"
python3 fuzz/make-corpus.py

RUSTCRYPTO_FLAGS='--cfg mqseal_backend="rustcrypto"'
RUSTCRYPTO_DIR=target/rustcrypto

step "fuzz: build (nightly, ASan, debug assertions), both backends"
(cd fuzz && cargo +nightly fuzz build)
(cd fuzz && RUSTFLAGS="$RUSTCRYPTO_FLAGS" cargo +nightly fuzz build --target-dir "$RUSTCRYPTO_DIR")

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
[ "${#targets[@]}" -gt 0 ] || { echo "40-fuzz: no targets" >&2; exit 1; }

if [ -n "${FUZZ_LOG_DIR:-}" ]; then
  logdir="$FUZZ_LOG_DIR"
  mkdir -p "$logdir"
else
  logdir="$(mktemp -d)"
  trap 'rm -rf "$logdir"' EXIT
fi

# run JOB: JOB is TARGET (default build) or TARGET@rustcrypto; fuzzes for
# SECONDS_PER_TARGET from the target's seed corpus (each backend on its own
# copy, so the two runs of a target do not share a directory). The libFuzzer
# summary goes to $logdir/JOB.log.
run() {
  local target="${1%@*}"
  if [ "$1" = "$target" ]; then
    (cd fuzz && cargo +nightly fuzz run "$target" "corpus/$target" -- \
       -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) \
       >"$logdir/$1.log" 2>&1
  else
    rm -rf "fuzz/corpus-rustcrypto/$target"
    mkdir -p fuzz/corpus-rustcrypto
    cp -r "fuzz/corpus/$target" "fuzz/corpus-rustcrypto/$target"
    (cd fuzz && RUSTFLAGS="$RUSTCRYPTO_FLAGS" cargo +nightly fuzz run --target-dir "$RUSTCRYPTO_DIR" \
       "$target" "corpus-rustcrypto/$target" -- \
       -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) \
       >"$logdir/$1.log" 2>&1
  fi
}

read -r -a crypto_targets <<<"${FUZZ_CRYPTO_TARGETS:-open_envelope typed_open backend_differential}"
jobs=("${targets[@]}")
for t in "${crypto_targets[@]}"; do
  for u in "${targets[@]}"; do [ "$u" = "$t" ] && jobs+=("$t@rustcrypto"); done
done

step "fuzz: ${#jobs[@]} runs, ${SECONDS_PER_TARGET}s each, two at a time"
failed=0
for ((i = 0; i < ${#jobs[@]}; i += 2)); do
  pids=()
  batch=("${jobs[@]:i:2}")
  for t in "${batch[@]}"; do run "$t" & pids+=("$!"); done
  for j in "${!batch[@]}"; do
    t="${batch[$j]}"
    if wait "${pids[$j]}"; then
      execs="$(grep -m1 'stat::number_of_executed_units' "$logdir/$t.log" | awk '{print $2}' || true)"
      done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$logdir/$t.log" | tail -n1 | sed -E 's/^#[0-9]+[[:space:]]+DONE[[:space:]]+//' || true)"
      echo "fuzz $t: ok, ${execs:-?} executions in ${SECONDS_PER_TARGET}s, no crash (${done_line})"
    else
      echo "fuzz $t: FAILED (artifacts in fuzz/artifacts/${t%@*}/)" >&2
      tail -n 60 "$logdir/$t.log" >&2
      failed=1
    fi
  done
done
exit "$failed"
