#!/usr/bin/env bash
# The WebAssembly bindings and the npm package `mqseal`:
#   - builds bindings/wasm (size-optimised) with wasm-bindgen-cli at the
#     exact wasm-bindgen version of Cargo.lock, prints the .wasm size;
#   - clippy for the wasm32 target;
#   - Node tests (node:test): the shared vectors (every section), the API,
#     the Node file counter store under two worker_threads, two processes,
#     kill -9 and an outside flock(2) holder, interop with the Rust
#     `mqseal` CLI through a real Mosquitto (TCP + WebSocket listeners,
#     started here on free loopback ports with their own config; MQTT 5
#     topic aliases; Rust and Node holders of one counter file), and the
#     dashboard and IndexedDB store in Debian's chromium via playwright-core;
#   - the README's Node and browser examples, extracted and run (Node against
#     the Mosquitto here with MQTT.js 4.x and 5.x, the browser one in
#     chromium over the WebSocket listener);
#   - the types of a consumer app (tsc --strict) against MQTT.js 4.x and
#     5.x, with the package installed from a path and from `npm pack`.
# Installs what is missing: the wasm32 target, wasm-bindgen-cli, Debian's
# nodejs/npm, mosquitto, mosquitto-clients, chromium and util-linux's
# flock(1) (the Node file store's lock), and the npm
# packages from the committed package-lock.json (`npm ci`). It never
# downloads a browser of its own (no `playwright install`).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
root="$(pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

step "wasm: tools"
need_target wasm32-unknown-unknown
need_apt mosquitto mosquitto-clients chromium
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need_apt nodejs npm
command -v flock >/dev/null 2>&1 || need_apt util-linux
need_wasm_bindgen

step "wasm: npm ci"
(cd bindings/wasm/npm && npm ci --no-audit --no-fund --loglevel=error)

step "wasm: build (bindings/wasm/build.sh: LTO, opt-level 3 hot path, wasm-opt) and size"
bash bindings/wasm/build.sh

step "wasm: clippy for wasm32"
cargo clippy -p mqseal-wasm --target wasm32-unknown-unknown --locked -- -D warnings

step "wasm: the mqseal CLI (Rust device side of the interop tests)"
cargo build -p mqseal-cli --locked

step "wasm: mosquitto with a TCP and a WebSocket listener on loopback"
tmp="$(mktemp -d)"
mosq_pid=""
cleanup() {
  if [ -n "$mosq_pid" ]; then kill "$mosq_pid" 2>/dev/null || true; wait "$mosq_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
read -r mqtt_port ws_port < <(node -e '
  const net = require("net");
  const take = () => new Promise((r) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => r(p)); }); });
  (async () => console.log(await take(), await take()))();')
cat >"$tmp/mosquitto.conf" <<EOF
persistence false
log_dest stderr
log_type error
log_type warning
listener $mqtt_port 127.0.0.1
protocol mqtt
allow_anonymous true
listener $ws_port 127.0.0.1
protocol websockets
# Mosquitto 2.0 hands a WebSocket listener's address to libwebsockets only
# with a socket_domain: without it, it listens on every interface.
socket_domain ipv4
allow_anonymous true
EOF
mosquitto -c "$tmp/mosquitto.conf" &
mosq_pid=$!
for _ in $(seq 100); do
  if node -e "const s=require('net').connect($ws_port,'127.0.0.1');s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1))" 2>/dev/null &&
     node -e "const s=require('net').connect($mqtt_port,'127.0.0.1');s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1))" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
assert_loopback_listeners "$mosq_pid" 2
echo "mosquitto: mqtt://127.0.0.1:$mqtt_port ws://127.0.0.1:$ws_port"

step "wasm: npm pack (the tarball the README example and type tests install)"
MQSEAL_TEST_TARBALL="$tmp/$(cd bindings/wasm/npm && npm pack --silent --pack-destination "$tmp" | tail -1)"
export MQSEAL_TEST_TARBALL
echo "$MQSEAL_TEST_TARBALL"

step "wasm: node tests (vectors, API, file store, interop, README examples, chromium)"
mkdir -p artifacts
(cd bindings/wasm/npm &&
  MQSEAL_TEST_MQTT_PORT="$mqtt_port" MQSEAL_TEST_WS_PORT="$ws_port" MQSEAL_CLI="$target_dir/debug/mqseal" \
    node --test --test-reporter=spec test/)
echo "screenshot: artifacts/dashboard.png"

step "wasm: a consumer app's types (tsc --strict) against MQTT.js 4.x and 5.x, package from a path and a tarball"
bash bindings/wasm/npm/test/types/check.sh "$tmp/types"

step "wasm: size of the shipped .wasm"
wasm="bindings/wasm/npm/wasm/mqseal_wasm_bg.wasm"
echo "mqseal_wasm_bg.wasm: $(wc -c <"$wasm") bytes raw, $(gzip -9 -c "$wasm" | wc -c) bytes gzip -9"
