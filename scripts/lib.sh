# Helpers shared by the test scripts. Source it; do not run it.

step() { printf '\n==== %s ====\n' "$*"; }

# as_root CMD...: run as root, through sudo when not root already.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# need_apt PKG...: install Debian packages that are missing, with one
# `apt-get update` per run.
need_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ ! -e /tmp/.mqseal-apt-updated ]; then
    as_root apt-get update -qq
    touch /tmp/.mqseal-apt-updated
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# need_target TRIPLE...: add rustup targets that are missing.
need_target() {
  local installed
  installed="$(rustup target list --installed)"
  for t in "$@"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
}

# lock_version CRATE: the version of CRATE in Cargo.lock.
lock_version() {
  awk -v n="$1" '$0=="name = \""n"\"" {getline; gsub(/version = |"/,""); print; exit}' Cargo.lock
}

# need_wasm_bindgen: wasm-bindgen-cli at the exact wasm-bindgen version of
# Cargo.lock (the npm package's build needs both to match), installed with
# cargo when missing. --locked first; the registry may lack a yanked pin of
# the CLI's own lock file, then resolve its dependencies afresh (same CLI
# version).
need_wasm_bindgen() {
  local want
  want="$(lock_version wasm-bindgen)"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    cargo install wasm-bindgen-cli --version "$want" --locked ||
      cargo install wasm-bindgen-cli --version "$want"
  fi
  wasm-bindgen --version
}

# assert_loopback_listeners PID [MIN]: fails unless process PID has at
# least MIN (default 1) listening TCP sockets and every one of them is bound
# to a loopback address (127.0.0.0/8, ::1 or ::ffff:127.x). Read from
# /proc/PID/fd (the socket inodes) and /proc/PID/net/tcp{,6}. Test brokers
# must never listen beyond loopback (Mosquitto 2.0's WebSocket listener
# ignores its bind address unless `socket_domain` is set).
assert_loopback_listeners() {
  local pid="$1" min="${2:-1}" inodes
  inodes="$(for fd in /proc/"$pid"/fd/*; do readlink "$fd" 2>/dev/null; done |
    sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | sort -u | tr '\n' ' ')"
  awk -v inodes=" $inodes" -v min="$min" -v pid="$pid" '
    function hexval(h,   i, v) {
      v = 0
      for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789ABCDEF", substr(h, i, 1)) - 1
      return v
    }
    function loopback(hex) {
      if (length(hex) == 8) return substr(hex, 7, 2) == "7F"
      if (hex == "00000000000000000000000001000000") return 1
      return substr(hex, 1, 24) == "0000000000000000FFFF0000" && substr(hex, 31, 2) == "7F"
    }
    FNR > 1 && $4 == "0A" && index(inodes, " " $10 " ") {
      split($2, a, ":"); n++
      where = a[1] ":" hexval(a[2])
      if (loopback(a[1])) ok = ok " " where; else bad = bad " " where
    }
    END {
      if (bad != "") { printf "pid %s listens beyond loopback (hex address:port):%s\n", pid, bad > "/dev/stderr"; exit 1 }
      if (n < min) { printf "pid %s has %d listening TCP sockets, expected at least %d\n", pid, n, min > "/dev/stderr"; exit 1 }
      printf "pid %s listens on loopback only:%s\n", pid, ok
    }' /proc/"$pid"/net/tcp /proc/"$pid"/net/tcp6
}

# The Rust tests that need Mosquitto or redis-server skip themselves when
# the program is missing, except under CI or with this set: in the test
# parts a missing broker is a failure, never a silent skip.
export MQSEAL_REQUIRE_BROKERS=1
