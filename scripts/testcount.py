#!/usr/bin/python3
"""testcount.py BUILD... - sums meson's test logs (meson-logs/testlog*.json of
each build) into "N passed, N failed".

Skipped tests are neither; they are counted on a line of their own.
Exits 1 when any test failed or no test ran."""
import glob
import json
import sys

passed = failed = skipped = 0
for build in sys.argv[1:]:
    logs = glob.glob(f"{build}/meson-logs/testlog*.json")
    if not logs:
        failed += 1
    for log in logs:
        with open(log) as f:
            for line in f:
                result = json.loads(line).get("result")
                if result in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif result == "SKIP":
                    skipped += 1
                else:
                    failed += 1
if skipped:
    print(f"{skipped} skipped")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
