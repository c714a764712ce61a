#!/usr/bin/env bash
# The whole mqseal test suite. README's second command; .ci/run calls it.
# Installs what it needs (rustup targets, Debian packages, npm packages,
# cargo tools) when missing, then runs every part in order and stops at the
# first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
source scripts/lib.sh

timings=()
run_part() {
  local name="$1"; shift
  step "$name"
  local start=$SECONDS
  "$@"
  timings+=("$(printf '%-22s %5ds' "$name" $((SECONDS - start)))")
}

for part in scripts/test-parts/*.sh; do
  [ -e "$part" ] || continue
  run_part "$(basename "$part" .sh)" bash "$part"
done

step "all parts passed"
printf '%s\n' "${timings[@]}"
