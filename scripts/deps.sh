#!/usr/bin/env bash
# deps.sh - installs what etld needs to build and test on Debian 12, if it is
# missing.  Used by the README's two commands and by .ci/run.  Needs root (or
# sudo) only when something is missing.
#
#   scripts/deps.sh [--for-tests]
#
# --for-tests (scripts/test.sh) also puts promtool, which checks etld's
# metrics, into .tools/bin/ of the checkout: taken out of Debian's prometheus
# package with dpkg-deb, not installed, since installing the package would
# start a Prometheus server.
set -euo pipefail
for_tests=0
[ "${1:-}" = "--for-tests" ] && for_tests=1

packages=(
  build-essential meson ninja-build pkg-config
  libuv1-dev libcurl4-openssl-dev libssl-dev libjansson-dev libsqlite3-dev
  libpq-dev libxml2-dev zlib1g-dev libinih-dev libcmocka-dev
  python3 python3-pytest python3-botocore sqlite3 systemd valgrind
  postgresql
  clang libclang-rt-14-dev
  scdoc mandoc zsh    # manual pages: built, linted; zsh completion tested
)
# Node.js and npm come with the machine image (NodeSource's nodejs); Debian's
# npm package is only a fallback where there is none, since installing it
# would fight with NodeSource's nodejs.
command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
root=$(cd "$(dirname "$0")/.." && pwd)
# s3rver, the S3 emulator the tests run on loopback, from the npm registry,
# into .s3rver/ of the checkout (ignored by git).
install_s3rver() {
  [ -x "$root/.s3rver/node_modules/.bin/s3rver" ] && return 0
  echo "deps.sh: installing s3rver into $root/.s3rver" >&2
  npm install --silent --no-audit --no-fund --prefix "$root/.s3rver" s3rver@3 >/dev/null
}
install_promtool() {
  [ $for_tests = 1 ] || return 0
  [ -x "$root/.tools/bin/promtool" ] && return 0
  echo "deps.sh: extracting promtool from Debian's prometheus package into $root/.tools" >&2
  local tmp
  tmp=$(mktemp -d)
  # a fresh machine may have no package lists yet
  (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 ||
    { [ "$(id -u)" -eq 0 ] && apt-get update -qq && apt-get download prometheus >/dev/null 2>&1; }; }) &&
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" &&
    mkdir -p "$root/.tools/bin" && cp "$tmp/x/usr/bin/promtool" "$root/.tools/bin/" ||
    echo "deps.sh: could not get promtool; the metrics format check is skipped" >&2
  rm -rf "$tmp"
}
if [ ${#missing[@]} -eq 0 ]; then
  install_s3rver
  install_promtool
  exit 0
fi
echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: run as root or install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
install_s3rver
install_promtool
