#!/usr/bin/env bash
# The whole mqseal test suite. README's second command; .ci/run calls it.
# Installs what it needs (rustup targets, Debian packages, npm packages,
# cargo tools) when missing, then runs every part in order and stops at the
# first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
source scripts/lib.sh

# In CI (a fresh clone, built once): no incremental caches and less debug
# info, which halves the size of target/ (a full debug build of the workspace
# is 2.2 GB this way, 4.1 GB with cargo's defaults) on machines whose disk
# is small. Local runs keep the defaults, so they share the build of a plain
# `cargo test`. Each part reports the free space it left.
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
  export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
  export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-0}"
fi
free_space() { df -Ph . | awk 'NR == 2 {print $4 " free on " $6}'; }
echo "disk: $(free_space)"

timings=()
run_part() {
  local name="$1"; shift
  step "$name"
  local start=$SECONDS
  "$@"
  timings+=("$(printf '%-22s %5ds   %s' "$name" $((SECONDS - start)) "$(free_space)")")
}

for part in scripts/test-parts/*.sh; do
  [ -e "$part" ] || continue
  run_part "$(basename "$part" .sh)" bash "$part"
done

step "all parts passed"
printf '%s\n' "${timings[@]}"
