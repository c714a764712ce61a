#!/usr/bin/env bash
# Type-checks app.mts (tsc --strict) as an application of the `mqseal`
# package against MQTT.js 4.x and 5.x, with the package installed both ways
# users install it: `npm install <path>` (a symlink to bindings/wasm/npm,
# whose node_modules hold its own development copy of MQTT.js) and the
# `npm pack` tarball. Fails on any type error. Called by
# scripts/test-parts/20-wasm.sh (after the package is built).
#   bash bindings/wasm/npm/test/types/check.sh [WORKDIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pkg="$(cd "$here/../.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
# Pinned: the two MQTT.js major versions the peer dependency allows, and the checker.
mqtt_versions=(4.3.8 5.16.0)
typescript=5.9.3
types_node=20.19.43
types_ws=8.18.2 # MQTT.js 4.x's own declarations import 'ws'

# The tarball 20-wasm.sh packed (MQSEAL_TEST_TARBALL), else one packed here.
tarball="${MQSEAL_TEST_TARBALL:-}"
[ -n "$tarball" ] || tarball="$work/$(cd "$pkg" && npm pack --silent --pack-destination "$work" | tail -1)"
echo "package tarball: $tarball"
for mqtt in "${mqtt_versions[@]}"; do
  for how in path tarball; do
    app="$work/app-mqtt$mqtt-$how"
    rm -rf "$app"
    mkdir -p "$app"
    cp "$here/app.mts" "$here/tsconfig.json" "$app/"
    (cd "$app" && npm init -y >/dev/null)
    src="$pkg"
    [ "$how" = tarball ] && src="$tarball"
    (cd "$app" && npm install --no-audit --no-fund --loglevel=error \
      "mqtt@$mqtt" "typescript@$typescript" "@types/node@$types_node" "@types/ws@$types_ws" "$src")
    got="$(cd "$app" && node -p 'require("mqtt/package.json").version')"
    [ "$got" = "$mqtt" ] || { echo "the app has MQTT.js $got, expected $mqtt" >&2; exit 1; }
    echo "tsc --strict: MQTT.js $mqtt, mqseal installed from a $how"
    (cd "$app" && npx --no-install tsc -p .)
  done
done
echo "types: ok (MQTT.js ${mqtt_versions[*]}; path and tarball installs)"
