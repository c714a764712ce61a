#!/usr/bin/env bash
# Builds the npm package's WebAssembly: the mqseal-wasm crate for
# wasm32-unknown-unknown with a size-optimised profile, then wasm-bindgen
# (--target web: one ES module that browsers, bundlers and Node all load)
# into bindings/wasm/npm/wasm/. Prints the .wasm size raw and gzipped.
#
# Needs: the wasm32-unknown-unknown target and wasm-bindgen-cli at the
# version of wasm-bindgen in Cargo.lock (scripts/test-parts/20-wasm.sh
# installs both). wasm-opt (binaryen) is used when found (optional).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$here/npm/wasm"
cd "$root"

# A profile of its own (defined here, not in the workspace Cargo.toml):
# speed-optimised code (opt-level 3: 2-5x faster than "z" for a 53 KB gzip
# module instead of 40 KB; see BENCHMARKS.md), whole-program LTO, one codegen unit, no debug info.
cargo build -p mqseal-wasm --locked --target wasm32-unknown-unknown --profile wasm-release \
  --config 'profile.wasm-release.inherits="release"' \
  --config 'profile.wasm-release.opt-level=3' \
  --config 'profile.wasm-release.lto=true' \
  --config 'profile.wasm-release.codegen-units=1' \
  --config 'profile.wasm-release.panic="abort"' \
  --config 'profile.wasm-release.debug=0' \
  --config 'profile.wasm-release.strip="debuginfo"'

rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" --out-name mqseal_wasm --no-typescript \
  --remove-name-section --remove-producers-section \
  "${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/wasm-release/mqseal_wasm.wasm"

# wasm-opt from the npm package binaryen (a devDependency of the npm
# package, so `npm ci` brings it), else from PATH; optional. The features
# are the ones rustc enables for wasm32-unknown-unknown, nothing newer.
wasm_opt="$here/npm/node_modules/.bin/wasm-opt"
[ -x "$wasm_opt" ] || wasm_opt="$(command -v wasm-opt || true)"
if [ -n "$wasm_opt" ]; then
  "$wasm_opt" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    -o "$out/mqseal_wasm_bg.opt.wasm" "$out/mqseal_wasm_bg.wasm"
  mv "$out/mqseal_wasm_bg.opt.wasm" "$out/mqseal_wasm_bg.wasm"
  echo "wasm-opt -O3: applied ($wasm_opt)"
else
  echo "wasm-opt: not found (npm ci in bindings/wasm/npm brings it), skipped"
fi

raw=$(wc -c <"$out/mqseal_wasm_bg.wasm")
gz=$(gzip -9 -c "$out/mqseal_wasm_bg.wasm" | wc -c)
echo "mqseal_wasm_bg.wasm: ${raw} bytes raw, ${gz} bytes gzip -9"
