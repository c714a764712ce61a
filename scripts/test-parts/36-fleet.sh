#!/usr/bin/env bash
# The mixed-fleet end-to-end test of issue 12 (tests/fleet/fleet.mjs): one
# `mqseal authority serve --rotate-every 15s` and 20 members on a real
# Mosquitto (TCP + WebSocket listeners on loopback): CLI members
# (`mqseal pub/sub --member`), rumqttc members (the fleet-member example,
# with and without a clock), the C sensor (examples/c/sensor.c --member)
# and a browser member in Debian's chromium (the npm Member over
# memberClient). Telemetry at QoS 1 through two or more scheduled rotations
# and one revocation: every message sent is verified exactly once by every
# subscriber, old-key messages are accepted during the grace period, the
# revoked member opens nothing new and its late messages are rejected by
# all, and `mqseal authority status` ends with every member current.
# Reuses what 20-wasm.sh and 31-c.sh built (the npm package's .wasm and
# node_modules, target/release-c/libmqseal.a) and builds them when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
root="$(pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

step "fleet: tools"
need_apt mosquitto mosquitto-clients chromium libmosquitto-dev gcc make
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need_apt nodejs npm

step "fleet: the npm package (built by 20-wasm.sh when run before)"
[ -d bindings/wasm/npm/node_modules/playwright-core ] ||
  (cd bindings/wasm/npm && npm ci --no-audit --no-fund --loglevel=error)
if [ ! -e bindings/wasm/npm/wasm/mqseal_wasm_bg.wasm ]; then
  need_target wasm32-unknown-unknown
  need_wasm_bindgen
  bash bindings/wasm/build.sh
fi

step "fleet: libmqseal.a (built by 31-c.sh when run before) and the C sensor"
[ -e "$target_dir/release-c/libmqseal.a" ] ||
  cargo rustc --locked -p mqseal-ffi --profile release-c --crate-type staticlib
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
make -C examples/c --no-print-directory LIBDIR="$target_dir/release-c" BUILD="$tmp/c" all

step "fleet: the mqseal CLI and the rumqttc fleet-member example"
cargo build --locked -p mqseal-cli --bin mqseal --example fleet-member

step "fleet: 20 members, scheduled rotations and a revocation under load"
MQSEAL_CLI="$target_dir/debug/mqseal" FLEET_MEMBER="$target_dir/debug/examples/fleet-member" C_SENSOR="$tmp/c/sensor" \
  node tests/fleet/fleet.mjs

step "fleet: README's \"Running a fleet\" block, as written"
MQSEAL_CLI="$target_dir/debug/mqseal" bash tests/fleet/readme.sh
