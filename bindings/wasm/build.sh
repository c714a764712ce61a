#!/usr/bin/env bash
# Builds the npm package's WebAssembly: the mqseal-wasm crate for
# wasm32-unknown-unknown (size-optimised, but for the cryptographic hot
# path; see below), then wasm-bindgen
# (--target web: one ES module that browsers, bundlers and Node all load)
# into bindings/wasm/npm/wasm/. Prints the .wasm size raw and gzipped.
#
#   bash bindings/wasm/build.sh                    # the package as shipped
#   WASM_BUILD=size WASM_OUT=DIR bash bindings/wasm/build.sh
#                     # opt-level "z" throughout + wasm-opt -Oz, into DIR
#                     # (scripts/bench.sh compares the two)
#
# Needs: the wasm32-unknown-unknown target and wasm-bindgen-cli at the
# version of wasm-bindgen in Cargo.lock (scripts/test-parts/20-wasm.sh
# installs both). wasm-opt (binaryen) is used when found (optional).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${WASM_OUT:-$here/npm/wasm}"
build="${WASM_BUILD:-ship}"
cd "$root"

# A profile of its own (defined here, not in the workspace Cargo.toml):
# whole-program LTO, one codegen unit, no debug info, and
#   - opt-level "s" for the bindings, serde/postcard, X25519 and the rest;
#   - opt-level 3 for the crates a seal or open runs through: the core
#     (where the cipher's generic code is instantiated) and the RustCrypto
#     crates under it. Scalar ChaCha20 and Poly1305 need opt-level 3's
#     inlining: at "s" or "z" everywhere the module is about 1 KB smaller
#     gzipped but 2-5x slower from 256-byte payloads up; this mix is as fast
#     as opt-level 3 everywhere and 4 KB smaller gzipped (BENCHMARKS.md).
case "$build" in
  ship)
    profile=wasm-release; base_opt='"s"'; wasm_opt_level=-Os
    hot=(mqseal chacha20poly1305 chacha20 poly1305 universal-hash cipher aead inout
      hmac sha2 digest block-buffer crypto-common) ;;
  size) profile=wasm-size; base_opt='"z"'; wasm_opt_level=-Oz; hot=() ;;
  *) echo "build.sh: WASM_BUILD is ship or size, not '$build'" >&2; exit 2 ;;
esac
cfg=(--config "profile.$profile.inherits=\"release\"" --config "profile.$profile.opt-level=$base_opt")
for p in "${hot[@]+"${hot[@]}"}"; do cfg+=(--config "profile.$profile.package.$p.opt-level=3"); done
for c in 'lto=true' 'codegen-units=1' 'panic="abort"' 'debug=0' 'strip="debuginfo"'; do
  cfg+=(--config "profile.$profile.$c")
done
cargo build -p mqseal-wasm --locked --target wasm32-unknown-unknown --profile "$profile" "${cfg[@]}"

rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" --out-name mqseal_wasm --no-typescript \
  --remove-name-section --remove-producers-section \
  "${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/$profile/mqseal_wasm.wasm"

# wasm-opt from the npm package binaryen (a devDependency of the npm
# package, so `npm ci` brings it), else from PATH; optional. The features
# are the ones rustc enables for wasm32-unknown-unknown, nothing newer.
wasm_opt="$here/npm/node_modules/.bin/wasm-opt"
[ -x "$wasm_opt" ] || wasm_opt="$(command -v wasm-opt || true)"
if [ -n "$wasm_opt" ]; then
  "$wasm_opt" "$wasm_opt_level" --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    -o "$out/mqseal_wasm_bg.opt.wasm" "$out/mqseal_wasm_bg.wasm"
  mv "$out/mqseal_wasm_bg.opt.wasm" "$out/mqseal_wasm_bg.wasm"
  echo "wasm-opt $wasm_opt_level: applied ($wasm_opt)"
else
  echo "wasm-opt: not found (npm ci in bindings/wasm/npm brings it), skipped"
fi

raw=$(wc -c <"$out/mqseal_wasm_bg.wasm")
gz=$(gzip -9 -c "$out/mqseal_wasm_bg.wasm" | wc -c)
echo "mqseal_wasm_bg.wasm: ${raw} bytes raw, ${gz} bytes gzip -9"
