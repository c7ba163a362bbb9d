#!/usr/bin/env bash
# deps.sh - installs what etld needs to build and test on Debian 12, if it is
# missing.  Used by the README's two commands and by .ci/run.  Needs root (or
# sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config
  libuv1-dev libcurl4-openssl-dev libssl-dev libjansson-dev libsqlite3-dev
  libpq-dev libxml2-dev zlib1g-dev libinih-dev libcmocka-dev
  python3 python3-pytest sqlite3 systemd valgrind
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
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
