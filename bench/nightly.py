#!/usr/bin/env python3
"""bench/nightly.py - an incremental nightly run against a full reload, in one run.

Generates a history of --days daily log files (bench/etld-gen), publishes all
but the last day with a full run, then times on the same warehouse:

  full         a full reload of every day (etl.mode = full)
  incremental  the last day arriving, loaded with etl.mode = incremental

and prints each job's time (started to finished, from etld's own status) and
the ratio incremental / full (the issue's goal: at most 0.10), on SQLite and,
when PostgreSQL's server binaries are installed, on PostgreSQL.  Each
measurement is the best of --repeat runs; between incremental repeats the
warehouse is put back to "all but the last day" by a full run and an
incremental run that finds nothing new (the night before; not timed: it
also drops the full run's large staging tables, which a nightly incremental
run after an incremental one does not find).

    /usr/bin/python3 bench/nightly.py [--build DIR] [--days 90] [--events 270000]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import benchlib
from benchlib import ROOT, iso

sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
import pgenv  # noqa: E402


def job_seconds(st):
    return iso(st["finished_at"]) - iso(st["started_at"])


class Etld(benchlib.Etld):
    def run_mode(self, mode):
        r = subprocess.run(self.ctl + ["--json", "submit", "etl", "--wait", "--set",
                                       "etl.mode=" + mode], capture_output=True, text=True)
        job = None
        for line in r.stdout.splitlines():
            if '"existing"' in line:
                job = int(line.split('"job":')[1].split(",")[0].strip(" }"))
        if job is None:
            sys.exit("etlctl submit failed: " + r.stdout + r.stderr)
        st = self.status(job)
        if st["state"] != "succeeded":
            sys.exit("etld: job %d %s: %s" % (job, st["state"], st.get("error")))
        return st


def last_log(data):
    logs = []
    for base, _d, files in os.walk(os.path.join(data, "log_data")):
        logs += [os.path.join(base, f) for f in files]
    return max(logs)


def measure(label, build, work, src, day_file, hold, target, extra, repeat):
    with Etld(build, work, src, target=target, extra=extra, label=label) as d:
        d.run_mode("full")  # the published history
        fulls, incs = [], []
        for _ in range(repeat):
            fulls.append(job_seconds(d.run_mode("full")))
        for _ in range(repeat):
            shutil.move(day_file, hold)          # back to "all but the last day"
            d.run_mode("full")
            d.run_mode("incremental")            # the night before: nothing new
            shutil.move(hold, day_file)          # the new day arrives
            st = d.run_mode("incremental")
            load = next(s for s in st["steps"] if s["name"] == "load")
            assert load["progress"].get("objects") == 1, load
            incs.append(job_seconds(st))
            steps = "  ".join("%s %.2f" % (s["name"], benchlib.step_seconds(st, s["name"]))
                              for s in st["steps"])
    full, inc = min(fulls), min(incs)
    print("%-10s incremental steps (s): %s" % (label, steps))
    print("%-10s full reload %7.2f s   incremental (1 new day) %6.2f s   ratio %.3f" %
          (label, full, inc, inc / full))
    return inc / full


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--events", type=int, default=270000, help="events in all the days")
    ap.add_argument("--songs", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="etld-nightly-")
    try:
        data = os.path.join(work, "data")
        subprocess.run([a.build + "/bench/etld-gen", "--out", data, "--days", str(a.days + 1),
                        "--events", str(a.events), "--songs", str(a.songs)], check=True,
                       capture_output=True)
        day = last_log(data)
        hold = os.path.join(work, "held-day.json")
        print("%d days of history + 1 new day, %d events, %d songs" % (a.days, a.events,
                                                                       a.songs))
        measure("sqlite", a.build, work, data, day, hold, None, "", a.repeat)
        why = pgenv.Server.available()
        if why:
            print("postgres   skipped: " + why)
            return
        with pgenv.Server() as pg:
            measure("postgres", a.build, work, data, day, hold, pg.uri(),
                    "password = %s\n" % pgenv.PASSWORD, a.repeat)
    finally:
        if a.keep:
            print("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
