#!/usr/bin/env bash
# run-fuzzer.sh EXE SEED_CORPUS WORK_DIR - one bounded libFuzzer run, as the
# tests of suite 'fuzzing' do it (tests/fuzz/meson.build).
#
# Explores for $ETLD_FUZZ_SECONDS (default 30) starting from the committed seed
# corpus; what it learns goes to WORK_DIR/corpus (kept between runs, never to
# the seed folder), a crashing input to WORK_DIR/crash-*.  Exit status non-zero
# when the harness crashed, leaked, hit a sanitizer error or a timeout.
set -euo pipefail
exe=$1 seeds=$2 work=$3
secs=${ETLD_FUZZ_SECONDS:-30}
mkdir -p "$work/corpus"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
rc=0
# -error_exitcode: libFuzzer's default, 77, would read as "skipped" to meson.
"$exe" -max_total_time="$secs" -error_exitcode=1 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" "$seeds" || rc=$?
if [ $rc -ne 0 ]; then
  echo "run-fuzzer.sh: $(basename "$exe") failed (exit $rc); the input is in $work/:" >&2
  ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' >&2 || true
  echo "replay it with: $(realpath "$exe") FILE; keep it as tests/fuzz/corpus/$(basename "$seeds")/NAME once fixed" >&2
fi
exit $rc
