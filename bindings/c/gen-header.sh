#!/usr/bin/env bash
# Generates the C header: gen-header.sh [OUTPUT] (default include/mqseal.h).
# cbindgen (the version pinned in scripts/test-parts/31-c.sh), then
# the few things cbindgen hard-codes that C89 refuses: `// ...` comments after
# preprocessor lines and the closing brace of `extern "C"`, and the comma
# after the last enumerator. Then the header compiles with
# `gcc -std=c89 -pedantic -Werror` (checked in scripts/test-parts/31-c.sh).
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-include/mqseal.h}"
cbindgen --quiet --config cbindgen.toml --crate mqseal-ffi --output "$out.tmp"
sed -e 's|^\(#.*[^ ]\) *// \(.*\)$|\1 /* \2 */|' -e 's|^} *// \(.*\)$|}  /* \1 */|' "$out.tmp" |
  perl -0pe 's/,(\n *\};)/$1/g' >"$out"
rm -f "$out.tmp"
if grep -n '//' "$out" | grep -v '^[0-9]*: *\*\|://' >&2; then
  echo "gen-header.sh: $out still has // comments" >&2
  exit 1
fi
