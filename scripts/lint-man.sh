#!/bin/sh
# lint-man.sh PAGE... - `mandoc -T lint` on the generated manual pages
# (doc/meson.build): any message, style included, fails.  Exit 77, which
# meson counts as a skip, when mandoc is not installed.
set -u
if ! command -v mandoc >/dev/null 2>&1; then
  echo "lint-man: mandoc is not installed (Debian: apt-get install mandoc); skipped"
  exit 77
fi
status=0
for page in "$@"; do
  out=$(mandoc -T lint "$page" 2>&1)
  if [ -n "$out" ]; then
    echo "$out"
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "lint-man: $# pages clean"
exit "$status"
