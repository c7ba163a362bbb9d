#!/usr/bin/python3
"""bench/etl.py - how fast is the etl pipeline, and how much memory does etld use?

Runs the etl job through the real etld and etlctl on the real Sparkify sample
(the tests' etldtest.SAMPLE: ../shared/data/sparkify, else
/work/shared/data/sparkify) and on generated data 10x and 100x its size
(--sizes 1 is generated data of the sample's size), and prints the time of each step, the whole job, and etld's peak RSS
(VmHWM) after each run.  The reference is measured elsewhere: a typical
Python implementation (pandas + psycopg2, one INSERT per row) took about 8.8 s
on the real sample on this machine; the goal is 20x faster than that.

    bench/etl.py [--build DIR] [--sizes real,10,100] [--keep]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import ROOT, Etld, step_seconds

sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
from etldtest import SAMPLE as REAL  # noqa: E402  (the tests' sample, wherever it is)
REFERENCE_PYTHON_S = 8.8


def run(build, data, work, label):
    with Etld(build, work, data, label=label) as etld:
        t0 = time.monotonic()
        st = etld.run_job("etl")
        wall = time.monotonic() - t0
        rss = etld.stop()
    steps = {s["name"]: step_seconds(st, s["name"]) for s in st["steps"]}
    rows = next(s for s in st["steps"] if s["name"] == "load")["progress"].get("rows", 0)
    job = sum(steps.values())
    return steps, job, wall, rss, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--sizes", default="real,10,100",
                    help="comma list of 'real' and multiples of the real sample's size")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="etld-bench-")
    print(f"{'data':>8} {'rows':>9} {'create':>7} {'load':>7} {'transf':>7} {'check':>7}"
          f" {'job s':>7} {'wall s':>7} {'rows/s':>9} {'RSS MiB':>8}")
    try:
        for size in args.sizes.split(","):
            if size == "real":
                if not os.path.isdir(REAL):
                    print(f"{'real':>8} skipped: {REAL} is not here")
                    continue
                data = REAL
            else:
                n = int(size)
                data = os.path.join(work, f"data-{n}x")
                subprocess.run([f"{args.build}/bench/etld-gen", "--out", data, "--seed", "7",
                                "--songs", str(71 * n), "--events", str(8056 * n)],
                               check=True, capture_output=True)
            steps, job, wall, rss, rows = run(args.build, data, work, size)
            print(f"{size:>8} {rows:>9} {steps['create-tables']:>7.2f} {steps['load']:>7.2f}"
                  f" {steps['transform']:>7.2f} {steps['check']:>7.2f} {job:>7.2f}"
                  f" {wall:>7.2f} {rows / max(job, 1e-9):>9.0f} {rss / 1024:>8.1f}")
            if size == "real":
                print(f"{'':>8} reference Python implementation: {REFERENCE_PYTHON_S} s ->"
                      f" etld is {REFERENCE_PYTHON_S / wall:.0f}x faster (goal: 20x)")
    finally:
        if args.keep:
            print("work folder:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
