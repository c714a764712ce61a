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
