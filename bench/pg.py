#!/usr/bin/python3
"""bench/pg.py - how fast does etld load PostgreSQL, against psql's \\copy?

Starts a throw-away PostgreSQL (tests/harness/pgenv.py: initdb in a
temporary directory, 127.0.0.1 on a free port), generates N Sparkify events
(bench/etld-gen), and in the same run:

- etld: the etl job into that server (the load step's time from
  `etlctl --json status`: listing, reading and converting the JSON, and
  streaming COPY ... FROM STDIN); the job is cancelled once the load is done,
  transform and check are not timed;
- psql: the same staging_events rows pre-converted to CSV (ts as the text
  etld loads, NULL as an empty field, "" as an empty string), loaded with
  `psql -c "\\copy staging_events (...) FROM 'events.csv' WITH (FORMAT csv)"`
  into an identical table (sql/postgres/create_tables.sql) over the same TCP
  connection kind.

The two loaders take turns --repeat times (default 3) and the best time of
each counts: the machine is shared, and the best run is the one least
disturbed.  Prints rows/s of both, their ratio (target: etld >= 0.8x psql)
and etld's peak RSS (VmHWM, over all its runs).  The server runs with fsync
off by default (--fsync turns it on), so the numbers are about the clients
rather than the disk.

    bench/pg.py [--build DIR] [--events N] [--songs M] [--seed S] [--repeat R]
                [--fsync] [--keep]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import EVENT_COLUMNS as COLUMNS
from benchlib import FINAL, ROOT, generate, step_seconds, ts_text
import benchlib

sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
import pgenv  # noqa: E402


def csv_field(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return '"' + str(v).replace('"', '""') + '"'


def to_csv(data, path):
    """The rows etld loads into staging_events, as CSV; returns the row count."""
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for dirpath, dirs, files in os.walk(os.path.join(data, "log_data")):
            dirs.sort()
            for name in sorted(files):
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    for line in f:
                        if not line.strip():
                            continue
                        ev = json.loads(line)
                        row = []
                        for c in COLUMNS:
                            v = ev.get(c)
                            row.append(csv_field(ts_text(v) if c == "ts" and v is not None
                                                 else v))
                        out.write(",".join(row) + "\n")
                        n += 1
    return n


def staging_events_ddl():
    with open(os.path.join(ROOT, "sql", "postgres", "create_tables.sql")) as f:
        m = re.search(r"CREATE TABLE staging_events \(.*?\n\);", f.read(), re.S)
    return m.group(0)


def run_psql(pg, csv_path):
    pg.psql("DROP DATABASE IF EXISTS ref", db="postgres")
    pg.psql("CREATE DATABASE ref OWNER %s" % pgenv.USER, db="postgres")
    pg.psql(staging_events_ddl(), db="ref")
    pg.psql("ALTER TABLE staging_events OWNER TO %s" % pgenv.USER, db="ref")
    cols = ", ".join(c.lower() for c in COLUMNS)
    env = dict(os.environ, PGPASSWORD=pgenv.PASSWORD)
    t0 = time.monotonic()
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                    str(pg.port), "-U", pgenv.USER, "-d", "ref", "-c",
                    f"\\copy staging_events ({cols}) FROM '{csv_path}' WITH (FORMAT csv)"],
                   check=True, env=env)
    secs = time.monotonic() - t0
    return secs, pg.scalar("SELECT COUNT(*) FROM staging_events", db="ref")


class Etld(benchlib.Etld):
    """One etld for all the runs (job ids go on: no etld_copies row of an
    earlier run is mistaken for this one's)."""

    def __init__(self, build, pg, data, work):
        super().__init__(build, work, data, target=pg.uri(),
                         extra="password = %s\n" % pgenv.PASSWORD)
        self.pg = pg
        self.jobs = 0

    def run(self):
        """One etl job up to the end of its load step: (secs, rows, events staged)."""
        job = self.submit("etl")
        while True:
            st = self.status(job)
            load = next(s for s in st["steps"] if s["name"] == "load")
            if load["state"] == "done" or st["state"] in FINAL:
                break
            time.sleep(0.1)
        subprocess.run(self.ctl + ["cancel", str(job)], capture_output=True)  # not timed
        while self.status(job)["state"] not in FINAL:
            time.sleep(0.1)
        if load["state"] != "done":
            sys.exit(f"etld: job {st['state']}: {st.get('error')}")
        events = self.pg.scalar("SELECT COUNT(*) FROM staging_events")
        return step_seconds(st, "load"), load["progress"].get("rows", 0), events


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--songs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each loader (best counts)")
    ap.add_argument("--fsync", action="store_true", help="run the server with fsync on")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    why = pgenv.Server.available()
    if why:
        sys.exit("bench/pg.py: " + why)
    work = tempfile.mkdtemp(prefix="etld-bench-pg-")
    pg = pgenv.Server(fsync=args.fsync)
    try:
        data = os.path.join(work, "data")
        generate(args.build, data, args.events, args.songs, args.seed)
        csv_path = os.path.join(work, "events.csv")
        n_csv = to_csv(data, csv_path)
        pg.start()
        etld = Etld(args.build, pg, data, work)
        etld.start()
        psql_runs, etld_runs = [], []
        try:
            for _ in range(max(1, args.repeat)):
                psql_runs.append(run_psql(pg, csv_path))
                etld_runs.append(etld.run())
        finally:
            rss = etld.stop()
        psql_s, psql_rows = min(psql_runs)
        etld_s, etld_rows, etld_events = min(etld_runs)
        etld_rate, psql_rate = etld_rows / etld_s, psql_rows / psql_s
        print(f"events: {args.events}  songs: {args.songs}  seed: {args.seed}  "
              f"fsync: {'on' if args.fsync else 'off'}  runs: {len(psql_runs)} each, best counts"
              f"  PostgreSQL {pg.scalar('SHOW server_version')}")
        print(f"psql \\copy (CSV):        {psql_s:8.2f} s  {psql_rows} rows  {psql_rate:10.0f} rows/s"
              f"  (all: {' '.join('%.2f' % r[0] for r in psql_runs)} s)")
        print(f"etld load step (COPY):   {etld_s:8.2f} s  {etld_rows} rows  {etld_rate:10.0f} rows/s"
              f"  (all: {' '.join('%.2f' % r[0] for r in etld_runs)} s)")
        print(f"  (etld's rows: staging_events + staging_songs, from JSON; peak RSS {rss / 1024:.1f} MiB)")
        print(f"ratio etld / psql:       {etld_rate / psql_rate:8.2f}x  (target: >= 0.8x)")
        if n_csv != psql_rows or etld_events != psql_rows:
            print(f"warning: CSV had {n_csv} rows, psql loaded {psql_rows}, "
                  f"etld staged {etld_events} events")
    finally:
        pg.stop()
        if args.keep:
            print("work folder:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
