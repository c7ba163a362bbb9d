#!/usr/bin/python3
"""bench/copy.py - how fast is the COPY emulator, against sqlite3's .import?

Generates N Sparkify events (bench/etld-gen), loads them into SQLite through
the real etld (the etl job; the time of its load step, from `etlctl --json
status`) and, in the same run, loads the same rows pre-converted to CSV (ts as
the timestamp text etld stores, numbers as JSON wrote them, NULL as an empty
field) with the sqlite3 shell's `.import` into an identical staging_events
table.  Prints both times and their ratio, and etld's peak RSS (VmHWM) for
each size given, to show memory stays flat as the data grows.

    bench/copy.py [--build DIR] [--events N] [--songs M] [--sizes 1,10,100]

--sizes are multiples of --events for the RSS rows (.import is measured at 1x
only).  The song set is small (--songs, default 100) so the load step is
almost all staging_events.
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from benchlib import EVENT_COLUMNS as COLUMNS
from benchlib import ROOT, Etld, generate, step_seconds, ts_text


def run_etld(build, data, work, label):
    """The etl job through etld: (load step seconds, rows loaded, peak RSS KiB)."""
    with Etld(build, work, data, label=label) as etld:
        st = etld.run_job("etl")
        rss = etld.stop()
    load = next(s for s in st["steps"] if s["name"] == "load")
    shutil.rmtree(etld.state, ignore_errors=True)
    return step_seconds(st, "load"), load["progress"].get("rows", 0), rss


def staging_events_ddl():
    with open(os.path.join(ROOT, "sql", "sqlite", "create_tables.sql")) as f:
        m = re.search(r"CREATE TABLE staging_events \(.*?\n\);", f.read(), re.S)
    return m.group(0)






def to_csv(data, path):
    """The rows etld loads into staging_events, as CSV; returns the row count."""
    n = 0
    with open(path, "w", newline="") as out:
        w = csv.writer(out)
        for dirpath, _, files in sorted(os.walk(os.path.join(data, "log_data"))):
            for name in sorted(files):
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    for line in f:
                        if not line.strip():
                            continue
                        ev = json.loads(line)
                        row = []
                        for c in COLUMNS:
                            v = ev.get(c)
                            if v is None:
                                row.append("")
                            elif c == "ts":
                                row.append(ts_text(v))
                            else:
                                row.append(v)
                        w.writerow(row)
                        n += 1
    return n


def run_import(work, csv_path):
    db = os.path.join(work, "import.db")
    subprocess.run(["sqlite3", db, staging_events_ddl()], check=True)
    t0 = time.monotonic()
    subprocess.run(["sqlite3", db, "PRAGMA journal_mode=WAL;", "PRAGMA synchronous=NORMAL;",
                    f".import --csv {csv_path} staging_events"], check=True,
                   capture_output=True)
    secs = time.monotonic() - t0
    rows = int(subprocess.run(["sqlite3", db, "SELECT COUNT(*) FROM staging_events"],
                              check=True, capture_output=True, text=True).stdout)
    os.unlink(db)
    return secs, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--songs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sizes", default="1",
                    help="comma list of multiples of --events to load through etld "
                         "(peak RSS per size), e.g. 1,10,100")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="etld-bench-copy-")
    try:
        data = os.path.join(work, "data-1x")
        generate(args.build, data, args.events, args.songs, args.seed)
        csv_path = os.path.join(work, "events.csv")
        n_csv = to_csv(data, csv_path)
        imp_s, imp_rows = run_import(work, csv_path)
        os.unlink(csv_path)
        etld_s, etld_rows, rss = run_etld(args.build, data, work, "1x")
        print(f"events: {args.events}  songs: {args.songs}  seed: {args.seed}")
        print(f"sqlite3 .import (CSV):   {imp_s:8.2f} s  {imp_rows} rows")
        print(f"etld load step (COPY):   {etld_s:8.2f} s  {etld_rows} rows"
              f" (staging_events + staging_songs)  peak RSS {rss / 1024:.1f} MiB")
        print(f"ratio etld / .import:    {etld_s / imp_s:8.2f}x  (target: <= 1.5x)")
        if n_csv != imp_rows:
            print(f"warning: CSV had {n_csv} rows, .import loaded {imp_rows}")
        shutil.rmtree(data, ignore_errors=True)
        for size in args.sizes.split(","):
            k = int(size)
            if k == 1:
                continue
            d = os.path.join(work, f"data-{k}x")
            generate(args.build, d, args.events * k, args.songs, args.seed)
            s, rows, rss = run_etld(args.build, d, work, f"{k}x")
            print(f"{k:>4}x: etld load step {s:8.2f} s  {rows} rows  {rows / s:10.0f} rows/s"
                  f"  peak RSS {rss / 1024:.1f} MiB")
            shutil.rmtree(d, ignore_errors=True)
    finally:
        if args.keep:
            print("work folder:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
