#!/usr/bin/env bash
# test.sh - the README's second command: install what is missing, build,
# and run the whole suite twice: in a normal build and in a sanitizer build
# (ASan + UBSan, every error fatal); then each fuzz harness explores for
# $ETLD_FUZZ_SECONDS (default 30; 0 skips it) in a clang libFuzzer build,
# build-fuzz (tests/fuzz).  Ends with "N passed, N failed", counting the
# fuzz runs as tests.
#
#   scripts/test.sh [--no-sanitize] [meson test args...]
#
# With meson test args (a partial run), the fuzzers do not run.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sanitize=1
if [ "${1:-}" = "--no-sanitize" ]; then sanitize=0; shift; fi

"$root/scripts/deps.sh" --for-tests || exit 1
export PATH="$root/.tools/bin:$PATH" # promtool
failed_build=0
builds=("$root/build")
"$root/scripts/build.sh" "$root/build" || failed_build=1
if [ $sanitize = 1 ]; then
  builds+=("$root/build-asan")
  "$root/scripts/build.sh" "$root/build-asan" -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debug || failed_build=1
fi
fuzz_secs=${ETLD_FUZZ_SECONDS:-30}
fuzz=0
if [ "$fuzz_secs" != 0 ] && [ $# -eq 0 ]; then
  fuzz=1
  CC=clang "$root/scripts/build.sh" "$root/build-fuzz" -Dfuzz=true -Dtests=false \
    -Db_sanitize=address,undefined -Db_lundef=false || failed_build=1
fi
if [ $failed_build = 1 ]; then
  echo "0 passed, 1 failed"
  exit 1
fi

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
rc=0
for b in "${builds[@]}"; do
  echo "== meson test in ${b#$root/}"
  meson test -C "$b" --print-errorlogs "$@" || rc=1
done
# The unit tests once more under valgrind: no leaks, no invalid accesses.
echo "== unit tests under valgrind"
# valgrind runs the code 10-50 times slower: test_load (12 s) takes about 2.5 min
meson test -C "$root/build" --suite unit --logbase testlog-valgrind --print-errorlogs \
  --timeout-multiplier 6 --wrap='valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1 -q' || rc=1
if [ $fuzz = 1 ]; then
  echo "== fuzzing in build-fuzz, ${fuzz_secs} s per harness"
  ETLD_FUZZ_SECONDS=$fuzz_secs meson test -C "$root/build-fuzz" --suite fuzzing \
    --print-errorlogs || rc=1
  builds+=("$root/build-fuzz")
fi
/usr/bin/python3 "$root/scripts/testcount.py" "${builds[@]}" || rc=1
exit $rc
