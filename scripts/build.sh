#!/usr/bin/env bash
# build.sh [BUILD_DIR [meson options...]] - configure (once) and build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" -Dwerror=true "$@" >/dev/null
fi
ninja -C "$build" >/dev/null
