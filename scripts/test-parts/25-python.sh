#!/usr/bin/env bash
# The Python package `mqseal` (bindings/python, PyO3 + maturin):
#   - a fresh virtual environment in target/python-venv (removed and made
#     again each run) with maturin, pytest, mypy, paho-mqtt, aiomqtt, redis and cryptography (test certificates) from
#     PyPI;
#   - `maturin build --release`: one abi3 wheel (CPython >= 3.9) into
#     target/wheels, installed into that environment;
#   - the Rust `mqseal` CLI (debug: part 10 has built it already, and the
#     interop tests are bound by the broker, not by the CLI), exported as
#     MQSEAL_CLI for the interop tests;
#   - pytest from a temporary directory against the installed wheel (never
#     the source tree): shared vectors, API and bad input, counter files
#     across processes, interop with the CLI through a Mosquitto the tests
#     start on free loopback ports (TCP, WebSocket, TLS with a password
#     file); the README's Python example (extracted from README.md, run as
#     printed but for the broker port) and examples/python/paho_tls.py (TLS
#     + password) and aiomqtt_service.py as processes against the CLI;
#   - Python <-> the npm package (bindings/wasm/npm, MQTT.js in Node, driven
#     by tests/npm_peer.mjs) over WebSocket through that Mosquitto, both
#     ways, both suites, group and pairwise keys, paho and aiomqtt; the npm
#     package is the one 20-wasm.sh built, built here (npm ci,
#     bindings/wasm/build.sh) when missing;
#   - shared replay windows (mqseal.redis, redis-py) on a redis-server the
#     tests start on a free loopback port: a replay rejected across two
#     Python openers and across Python and `mqseal sub --replay-redis`;
#   - `mypy --strict` over the package and examples/python.
# Installs what is missing: Debian's mosquitto, redis-server, python3-venv and nodejs/npm;
# for the npm package, the wasm32 target and wasm-bindgen-cli.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
root="$(pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

step "python: tools"
need_apt mosquitto redis-server
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt python3-venv
venv="$target_dir/python-venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check maturin pytest mypy paho-mqtt aiomqtt cryptography redis
py="$venv/bin/python"

step "python: wheel (maturin, abi3)"
rm -f "$target_dir"/wheels/mqseal-*.whl
"$venv/bin/maturin" build --release --locked -m bindings/python/Cargo.toml --out "$target_dir/wheels"
wheel="$(ls "$target_dir"/wheels/mqseal-*-abi3-*.whl)"
ls -l "$wheel"
"$py" -m pip install -q --disable-pip-version-check --force-reinstall "$wheel"

step "python: the mqseal CLI"
cargo build -p mqseal-cli --locked
export MQSEAL_CLI="$target_dir/debug/mqseal"
export MQSEAL_REPO="$root"

step "python: the npm package (for the Python <-> npm interop tests)"
# Built by 20-wasm.sh when the parts run in order; built here when missing,
# so this part also runs alone.
npm_dir="$root/bindings/wasm/npm"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need_apt nodejs npm
if [ ! -d "$npm_dir/node_modules/mqtt" ]; then
  (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -f "$npm_dir/wasm/mqseal_wasm_bg.wasm" ]; then
  need_target wasm32-unknown-unknown
  need_wasm_bindgen
  bash bindings/wasm/build.sh
fi
export MQSEAL_NPM_DIR="$npm_dir"

step "python: pytest against the installed wheel"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && "$py" -m pytest -p no:cacheprovider -q -rs "$root/bindings/python/tests")

step "python: mypy --strict"
(cd "$work" && "$py" -m mypy --strict --no-incremental -p mqseal)
(cd "$work" && "$py" -m mypy --strict --no-incremental "$root/examples/python")
