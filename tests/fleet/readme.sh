#!/usr/bin/env bash
# Runs README.md's "Running a fleet" block as written (each line in turn,
# `mqseal` on PATH, `-h broker.local` pointed at a Mosquitto of our own on
# loopback), then checks what it should have done: the reading member
# printed the sealed readings (the second after the rotation and the
# revocation, from a one-shot publisher), both members hold the newest epoch, dev-2 is revoked, and the registry is mode 0600.
# Needs: target/debug/mqseal (or $MQSEAL_CLI), mosquitto, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
cli="${MQSEAL_CLI:-$root/target/debug/mqseal}"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir "$tmp/bin" "$tmp/work"
ln -s "$cli" "$tmp/bin/mqseal"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  sleep 0.1
done

# The block: from the line after "From nothing to a rotated" to its closing fence.
awk '/^From nothing to a rotated/ {f = 1} f && /^```sh/ {b = 1; next} b && /^```/ {exit} b' README.md >"$tmp/block.sh"
[ "$(grep -c '^mqseal\|^for ' "$tmp/block.sh")" = 10 ] || { echo "readme: expected ten commands:" >&2; cat "$tmp/block.sh" >&2; exit 1; }
cd "$tmp/work"
export PATH="$tmp/bin:$PATH"
while IFS= read -r line; do
  line="${line//-h broker.local/-h 127.0.0.1 -p $port}"
  echo "readme\$ $line"
  if [[ "$line" == *' &'* ]]; then
    # A background command: the comment after `&` goes, its output to a log.
    cmd="${line%%&*}"
    n=${#pids[@]}
    bash -c "exec $cmd" >"$tmp/bg-$n.out" 2>"$tmp/bg-$n.err" &
    pids+=($!)
    sleep 2
  else
    bash -c "$line"
    sleep 1
  fi
done <"$tmp/block.sh"
# The revocation's switch is 30 s ahead; the states go out at once.
sleep 3
# dev-1 publishes once more, as a cron job would: it takes its retained
# state first, so it seals with the newest keys and acknowledges them.
mqseal pub -h 127.0.0.1 -p "$port" -t fleet/dev-1 -m 21.6 --member dev-1 --group telemetry
sleep 1

fail() { echo "readme: $*" >&2; for f in "$tmp"/bg-*; do echo "--- $f" >&2; cat "$f" >&2; done; exit 1; }
for r in 21.5 21.6; do
  grep -qx "fleet/dev-1 $r" "$tmp"/bg-*.out || fail "the reading member did not print fleet/dev-1 $r"
done
status="$(mqseal authority status)"
echo "$status"
newest="$(echo "$status" | awk '/^dash /{print $2}')"
for m in dash dev-1; do
  echo "$status" | grep -q "^$m $newest .* current " || fail "$m is not current at the newest $newest"
done
echo "$status" | grep -q '^dev-2 .* revoked ' || fail "dev-2 is not revoked"
[ "$(stat -c %a mqseal-authority.db)" = 600 ] || fail "registry mode $(stat -c %a mqseal-authority.db)"
echo "readme: the \"Running a fleet\" block ran as written"
