#!/usr/bin/env bash
# check-banned.sh - fails when C code calls a function we do not use:
# unbounded string copies and formats (strcpy, strcat, sprintf, gets),
# strtok (hidden state), strncpy (no NUL guarantee), unchecked number parsing
# (atoi, atol, sscanf) and non-reentrant time conversion (localtime, gmtime:
# use the _r forms).  Run by meson test as part of the unit suite.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
hits=$(git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null |
  xargs grep -nE '\b(strtok|sprintf|vsprintf|strncpy|strcpy|strcat|gets|atoi|atol|atoll|sscanf|localtime|gmtime)[[:space:]]*\(' 2>/dev/null)
if [ -n "$hits" ]; then
  echo "banned functions (see scripts/check-banned.sh):"
  echo "$hits"
  exit 1
fi
echo "no banned function calls"
