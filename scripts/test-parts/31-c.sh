#!/usr/bin/env bash
# C: the header is what cbindgen generates and is C89- and C++11-clean; the
# host build of docs/PORTING.md as written; the C test programs of tests/c
# (vector test and the C API's own checks (handle copies, overlapping buffers, topics with
# U+0000, counter-store callbacks that break the rule), the member agent's
# control vectors, plain, under Valgrind and under ASan, and cross-compiled
# with arm-none-eabi-gcc on a Cortex-M4F under QEMU; the libmosquitto sensor
# against the Rust `mqseal pub`/`mqseal sub` through a real Mosquitto on
# loopback, sharing one counter file; the sensor as a key-distribution member,
# tests/c/member-sensor.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
ROOT="$PWD"

need_target thumbv7em-none-eabihf
need_apt qemu-system-arm mosquitto mosquitto-clients xxd libmosquitto-dev valgrind gcc g++ make python3 gcc-arm-none-eabi libnewlib-arm-none-eabi

step "C: header is up to date with cbindgen"
CBINDGEN_VERSION=0.29.4
if ! command -v cbindgen >/dev/null || [ "$(cbindgen --version | awk '{print $2}')" != "$CBINDGEN_VERSION" ]; then
  cargo install --locked cbindgen --version "$CBINDGEN_VERSION"
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bash bindings/c/gen-header.sh "$tmp/mqseal.h"
if ! diff -u bindings/c/include/mqseal.h "$tmp/mqseal.h"; then
  echo "bindings/c/include/mqseal.h is stale: regenerate it with bindings/c/gen-header.sh" >&2
  exit 1
fi

step "C: the header is C89-clean (gcc -std=c89 -pedantic -Werror -Wall -Wextra) and C++11-clean"
printf '#include "mqseal.h"\nstatic unsigned char rx[MQSEAL_RECV_BUF_LEN(8)];\nint main(void) { return (int)sizeof rx - 8 - MQSEAL_MAX_OVERHEAD; }\n' >"$tmp/c89.c"
gcc -std=c89 -pedantic -Werror -Wall -Wextra -I bindings/c/include -c "$tmp/c89.c" -o "$tmp/c89.o"
g++ -std=c++11 -pedantic -Werror -Wall -Wextra -I bindings/c/include -x c++ -c "$tmp/c89.c" -o "$tmp/cxx.o"
if grep -n '//' bindings/c/include/mqseal.h | grep -v '^[0-9]*: *\*\|://'; then
  echo "mqseal.h has // comments" >&2
  exit 1
fi

step "C: the host build of docs/PORTING.md, run as written (release-c profile, hello.c)"
# The two command lines after the <!-- host-build --> marker, exactly.
sed -n '/^<!-- host-build -->$/,/^```$/p' docs/PORTING.md | sed -n '/^cargo \|^cc /p' >"$tmp/host-build.sh"
[ "$(wc -l <"$tmp/host-build.sh")" = 2 ] || { echo "docs/PORTING.md: host build lines not found" >&2; exit 1; }
cat "$tmp/host-build.sh"
# The cargo line from the root; the cc line in a directory that looks like
# the root (so that its `-o hello` does not land in the work tree).
bash -e -x <(sed -n 1p "$tmp/host-build.sh")
mkdir "$tmp/root" && ln -s "$ROOT/bindings" "$ROOT/examples" "$ROOT/target" "$tmp/root/"
(cd "$tmp/root" && bash -e -x <(sed -n 2p "$tmp/host-build.sh"))
mv "$tmp/root/hello" "$tmp/hello"
"$tmp/hello" | tee "$tmp/hello.out"
grep -q '^opened 27-byte envelope from sender 17 (counter 0): 21.5 C$' "$tmp/hello.out"
echo "libmqseal.a (release-c): $(stat -c %s target/release-c/libmqseal.a) bytes; hello: $(stat -c %s "$tmp/hello") bytes"

step "C: libmqseal.a, vector test with the API checks and the member agent's control vectors (plain, Valgrind, ASan)"
make -C tests/c --no-print-directory BUILD="$tmp/c" test asan

step "C: the vector test and the stack probe on a Cortex-M4F (arm-none-eabi-gcc, newlib, QEMU mps2-an386)"
# libmqseal.a for thumbv7em-none-eabihf (also built by 30-embedded.sh).
cargo build --locked --release -p mqseal-ffi --target thumbv7em-none-eabihf --no-default-features
make -C tests/c --no-print-directory BUILD="$tmp/c" m4 | tee "$tmp/m4.log"
grep -q '^checks: [1-9][0-9]* passed, 0 failed$' "$tmp/m4.log"
grep -q '^member checks: [1-9][0-9]* passed, 0 failed$' "$tmp/m4.log"
grep -q '^stack probe: ok$' "$tmp/m4.log"

step "C: libmosquitto sensor <-> mqseal CLI through Mosquitto"
make -C examples/c --no-print-directory BUILD="$tmp/c" all
cargo build --locked -p mqseal-cli
MQSEAL="$ROOT/target/debug/mqseal"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
broker=$!
sub=""
cleanup() {
  [ -n "$sub" ] && kill "$sub" 2>/dev/null
  kill "$broker" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  sleep 0.1
done
assert_loopback_listeners "$broker" 1

"$MQSEAL" keygen group --id 5 -o "$tmp/key"
# The controller's sealed command, retained so that the sensor gets it on subscribe.
"$MQSEAL" pub -h 127.0.0.1 -p "$port" --key-file "$tmp/key" --sender-id 900 \
  --counter-file "$tmp/ctl.counter" --new-counter-file -t cmd/c1 -q 1 -r -m "valve=open"

"$MQSEAL" keygen group --id 5 -o "$tmp/other-key"

run_sensor() { # $1 = label, then an optional wrapper command
  local label="$1"
  shift
  "$MQSEAL" sub -h 127.0.0.1 -p "$port" --key-file "$tmp/key" -t sensors/c1/up -q 1 -v --meta -C 5 -W 30 \
    --stats >"$tmp/sub-$label.out" 2>"$tmp/sub-$label.err" &
  sub=$!
  sleep 1
  "$@" "$tmp/c/sensor" 127.0.0.1 "$port" "$tmp/key" 17 "$tmp/sensor.counter" sensors/c1/up cmd/c1 20 \
    ${sensor_new:+--new-sender} >"$tmp/sensor-$label.out" &
  local sensor=$!
  # Once the sensor is subscribed (it got the retained command), a command
  # sealed with a key it does not hold (same key id).
  for _ in $(seq 200); do
    grep -q '^verified command' "$tmp/sensor-$label.out" 2>/dev/null && break
    sleep 0.1
  done
  "$MQSEAL" pub -h 127.0.0.1 -p "$port" --key-file "$tmp/other-key" --sender-id 900 \
    --counter-file "$tmp/forger-$label.counter" --new-counter-file -t cmd/c1 -q 1 -m "valve=close"
  wait "$sensor"
  wait "$sub"
  sub=""
  cat "$tmp/sensor-$label.out"
  grep -q '^verified command on cmd/c1 from sender 900 (counter 0): valve=open$' "$tmp/sensor-$label.out"
  grep -q '^rejected message on cmd/c1: auth' "$tmp/sensor-$label.out"
  if grep -q 'valve=close' "$tmp/sensor-$label.out" || [ "$(grep -c 'reading' "$tmp/sub-$label.out")" != 5 ]; then
    echo "C sensor <-> mqseal CLI exchange failed ($label):" >&2
    cat "$tmp/sub-$label.out" "$tmp/sub-$label.err" >&2
    exit 1
  fi
  cat "$tmp/sub-$label.out"
}
first_counter() { sed -n '1s/.*counter=\([0-9]*\)\].*/\1/p' "$tmp/sub-$1.out"; }

# The sensor refuses a counter file that is not there (lost state), unless
# told that it is a new sender.
set +e
"$tmp/c/sensor" 127.0.0.1 "$port" "$tmp/key" 17 "$tmp/sensor.counter" sensors/c1/up cmd/c1 20 2>"$tmp/missing.err"
missing_rc=$?
set -e
cat "$tmp/missing.err"
[ "$missing_rc" = 1 ] && grep -q '\[counterStore missing\]' "$tmp/missing.err" && [ ! -e "$tmp/sensor.counter" ]

sensor_new=1 run_sensor first
[ "$(first_counter first)" = 0 ]
# --new-sender over an existing counter file is refused.
set +e
"$tmp/c/sensor" 127.0.0.1 "$port" "$tmp/key" 17 "$tmp/sensor.counter" sensors/c1/up cmd/c1 20 --new-sender \
  2>"$tmp/conflict.err"
conflict_rc=$?
set -e
cat "$tmp/conflict.err"
[ "$conflict_rc" = 1 ] && grep -q '\[counterStore conflict\]' "$tmp/conflict.err"
# The sensor writes the counter file of docs/STATE.md (through the C API's
# encoder), exactly one line.
grep -qx 'mqseal-counter v1 [1-9][0-9]*' "$tmp/sensor.counter"
limit="$(sed -n 's/^mqseal-counter v1 \([0-9]*\)$/\1/p' "$tmp/sensor.counter")"
# Second run, under Valgrind: the counter resumes at the limit persisted by
# the first run (the rest of its reserved block is skipped), so the readings
# are new messages, never a reused counter.
run_sensor valgrind valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q
[ "$(first_counter valgrind)" = "$limit" ]
# The Rust CLI carries on from the sensor's counter file (its
# FileCounterStore reads what the C sensor wrote) ...
c_limit="$(sed -n 's/^mqseal-counter v1 \([0-9]*\)$/\1/p' "$tmp/sensor.counter")"
"$MQSEAL" sub -h 127.0.0.1 -p "$port" --key-file "$tmp/key" -t sensors/c1/up -q 1 -v --meta -C 1 -W 30 \
  >"$tmp/sub-cli.out" 2>"$tmp/sub-cli.err" &
sub=$!
sleep 1
"$MQSEAL" pub -h 127.0.0.1 -p "$port" --key-file "$tmp/key" --sender-id 17 --counter-file "$tmp/sensor.counter" \
  -t sensors/c1/up -q 1 -m "reading from the CLI"
wait "$sub"
sub=""
cat "$tmp/sub-cli.out"
[ "$(first_counter cli)" = "$c_limit" ]
rust_limit="$(sed -n 's/^mqseal-counter v1 \([0-9]*\)$/\1/p' "$tmp/sensor.counter")"
[ "$rust_limit" -gt "$c_limit" ]
# ... and the sensor from the file the CLI wrote.
run_sensor after-cli
[ "$(first_counter after-cli)" = "$rust_limit" ]
# One process per counter file: the sensor refuses a file whose lock is held.
(
  flock -n 9
  set +e
  "$tmp/c/sensor" 127.0.0.1 "$port" "$tmp/key" 17 "$tmp/sensor.counter" sensors/c1/up cmd/c1 20 2>"$tmp/locked.err"
  echo "$?" >"$tmp/locked.rc"
) 9>"$tmp/sensor.counter.lock"
cat "$tmp/locked.err"
[ "$(cat "$tmp/locked.rc")" = 1 ] && grep -q '\[counterStore locked\]' "$tmp/locked.err"
echo "second run resumed at counter $limit"

step "C: the sensor as a key-distribution member (--member) through Mosquitto"
bash tests/c/member-sensor.sh
echo "C: all passed"
