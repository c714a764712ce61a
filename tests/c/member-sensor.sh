#!/usr/bin/env bash
# The C sensor as a key-distribution member (examples/c/sensor.c --member)
# through a real Mosquitto on loopback: the authority's control envelope of
# core/tests/vectors/control-v1.json (its member keys) is published
# retained with mosquitto_pub -r; the sensor must save the member-state
# record of the file, publish the ack of the file (byte for byte), and seal
# readings that the Rust CLI opens under the key and sender id the state
# assigns. A second run resumes from the saved record (the retained
# envelope is then a duplicate: no second ack); a corrupted record is
# refused with invalidSnapshot.
# Needs: target/release-c/libmqseal.a, target/debug/mqseal (cargo build -p
# mqseal-cli), mosquitto, mosquitto-clients, libmosquitto-dev, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
MQSEAL="${MQSEAL:-$ROOT/target/debug/mqseal}"
tmp="$(mktemp -d)"
broker=""
sub=""
cleanup() {
  [ -n "$sub" ] && kill "$sub" 2>/dev/null
  [ -n "$broker" ] && kill "$broker" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
make -C examples/c --no-print-directory BUILD="$tmp/c" all
V=core/tests/vectors/control-v1.json
field() { python3 -c "import json,sys; d=json.load(open('$V')); print(eval(sys.argv[1]))" "$1"; }
mkdir "$tmp/dev"
field 'd["member_secret"]' >"$tmp/dev/secret"
field 'd["authority_public"]' >"$tmp/dev/authority.public"
field 'd["member_id"]' >"$tmp/dev/id"
field 'd["positive"][0]["envelope_hex"]' | xxd -r -p >"$tmp/ctl.bin"
field 'd["positive"][0]["ack_envelope_hex"]' >"$tmp/ack.want"
field 'd["positive"][0]["member_state_hex"]' >"$tmp/state.want"
# The seal-now key of group "telemetry" as key text, for the CLI.
python3 - "$V" >"$tmp/telemetry.key" <<'PY'
import base64, json, sys
d = json.load(open(sys.argv[1]))
g = next(g for g in d["positive"][0]["state"]["groups"] if g["name"] == "telemetry")
k = next(k for k in g["keys"] if k["key_id"] == g["seal_now"])
print("mqseal:key:v1:%d:%s" % (k["key_id"], base64.urlsafe_b64encode(bytes.fromhex(k["secret"])).decode().rstrip("=")))
PY
sender="$(field '[k["sender_id"] for g in d["positive"][0]["state"]["groups"] if g["name"] == "telemetry" for k in g["keys"] if k["key_id"] == g["seal_now"]][0]')"
ctl="$(field 'd["control_topic"]')"
ackt="$(field 'd["ack_topic"]')"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
broker=$!
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  sleep 0.1
done
mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -r -t "$ctl" -f "$tmp/ctl.bin"

run() { # $1 = label, $2 = acks expected (1 or 0), then an optional wrapper command
  mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -t "$ackt" -C 1 -W 8 -F '%x' >"$tmp/ack-$1.got" 2>/dev/null &
  local acks=$!
  "$MQSEAL" sub -h 127.0.0.1 -p "$port" --key-file "$tmp/telemetry.key" -t sensors/sensor-7/up -q 1 -v --meta -C 3 \
    -W 30 >"$tmp/sub-$1.out" 2>"$tmp/sub-$1.err" &
  sub=$!
  local label="$1" acks_expected="$2"
  shift 2
  sleep 1
  "$@" "$tmp/c/sensor" --member "$tmp/dev" 127.0.0.1 "$port" sensors/sensor-7/up 3 | tee "$tmp/sensor-$label.out"
  wait "$sub"
  sub=""
  cat "$tmp/sub-$label.out"
  set +e
  wait "$acks"
  set -e
  if [ "$acks_expected" = 1 ]; then
    [ "$(tr -d '\n' <"$tmp/ack-$label.got")" = "$(cat "$tmp/ack.want")" ] || { echo "ack differs from the vector" >&2; exit 1; }
  else
    [ ! -s "$tmp/ack-$label.got" ] || { echo "a second ack for a retained duplicate" >&2; exit 1; }
  fi
  [ "$(grep -c "sender=$sender" "$tmp/sub-$label.out")" = 3 ] || { echo "readings not under sender $sender" >&2; exit 1; }
}
run first 1
grep -q '^applied epoch 1; ack published$' "$tmp/sensor-first.out"
[ "$(xxd -p "$tmp/dev/state" | tr -d '\n')" = "$(cat "$tmp/state.want")" ] || { echo "state record differs" >&2; exit 1; }
[ "$(stat -c %a "$tmp/dev/state")" = 600 ]
# The second run under Valgrind (memcheck).
run resumed 0 valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q
grep -q '^rejected control message: duplicate$' "$tmp/sensor-resumed.out"
# A state record that does not validate is refused, never a fresh start.
python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[40]^=1; open(p,'wb').write(b)" "$tmp/dev/state"
set +e
"$tmp/c/sensor" --member "$tmp/dev" 127.0.0.1 "$port" sensors/sensor-7/up 3 2>"$tmp/corrupt.err"
rc=$?
set -e
cat "$tmp/corrupt.err"
[ "$rc" = 1 ] && grep -q '\[invalidSnapshot\]' "$tmp/corrupt.err"
echo "C member sensor: all passed"
