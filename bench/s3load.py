#!/usr/bin/python3
"""bench/s3load.py - how fast does the etl job load from s3://, against the AWS
CLI downloading the same objects and against what the S3 emulator can serve?

Generates a Sparkify tree with --objects song files (bench/etld-gen, plus
--days log files and log_json_path.json), starts s3rver and the
SigV4-checking proxy of the integration tests (tests/harness/s3env.py), puts
the tree into bucket `src`, then in one run:

  latency  (skipped with --latency 0) the proxy adds --latency ms to every
           request (S3 from another region) and checks every signature:
    aws-cli  Debian's /usr/bin/aws s3 cp --recursive s3://src DIR, default
             settings (10 requests in flight): the download alone;
    etld     the real daemon's whole `etl` job (SQLite target, the default)
             with the sources on s3://src, submitted and waited for with
             etlctl.  Prints both times and aws-cli / etld (goal: >= 3).
  ceiling  straight to s3rver (the proxy, one Python process, would be the
           bottleneck), no latency:
    ceiling  tests/tools/s3_tool getmany: lists the bucket and GETs every
             object of it, --ceiling-concurrency (64) keep-alive requests in
             flight, no parsing: a client that costs next to nothing, so
             s3rver (one Node thread) is what limits it, which its CPU share
             over the run shows (about 1.0 = one core busy).  s3_tool
             compares bodies with its test pattern, which real objects fail:
             s3load counts the objects and bytes it read instead.
    etld     the same etl job again, in a fresh state directory; the load
             step's objects/s from its timings in `etlctl status --json`
             (objects = its progress.objects), against the ceiling's
             (goal: >= 0.9).  The two take turns --repeat times (3) and
             the best of each counts: the machine is shared, and the best
             run is the one least disturbed.

Every etld gets AWS_EC2_METADATA_DISABLED=true; nothing leaves loopback.

    /usr/bin/python3 bench/s3load.py [--build DIR] [--objects 3000] [--days 30]
        [--events 8056] [--latency 50] [--concurrency N] [--ceiling-concurrency 64]
        [--repeat 3] [--skip-cli] [--skip-ceiling] [--keep]

--concurrency sets [load] concurrency (default: etld's own).  Needs node +
s3rver (.s3rver/ or $ETLD_S3RVER), python3-botocore and awscli.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# bench/ last: bench/copy.py would shadow the standard library's copy module
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE] + [HERE]
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
import benchlib  # noqa: E402
import s3env  # noqa: E402

AWS = "/usr/bin/aws"
BUCKET = "src"


def tree_stats(data):
    """(objects, bytes) of a generated tree: song_data and log_data files."""
    n = size = 0
    for top in ("song_data", "log_data"):
        for d, _, files in os.walk(os.path.join(data, top)):
            for f in files:
                n += 1
                size += os.path.getsize(os.path.join(d, f))
    return n, size


def s3_tool(build, endpoint, env, *args, check=True):
    r = subprocess.run([os.path.join(build, "tests", "tools", "s3_tool"), "--endpoint", endpoint]
                       + [str(a) for a in args], capture_output=True, text=True, env=env,
                       timeout=3600)
    out = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    if check and r.returncode != 0:
        raise SystemExit("s3_tool %s failed: %s %s" % (args, out, r.stderr[-2000:]))
    return out


def cli(env, *args):
    t0 = time.monotonic()
    r = subprocess.run([AWS] + list(args), capture_output=True, text=True, env=env, timeout=7200)
    if r.returncode != 0:
        raise SystemExit("aws %s failed (%d): %s" % (" ".join(args[:3]), r.returncode,
                                                     r.stderr[-2000:]))
    return time.monotonic() - t0


def run_etl(a, work, label, endpoint, env):
    """The whole etl job: (wall s, status, etld CPU s, etld peak RSS KiB)."""
    extra = "[aws]\nregion = %s\nendpoint_url = %s\n" % (s3env.REGION, endpoint)
    if a.concurrency:
        extra += "[load]\nconcurrency = %d\n" % a.concurrency
    etld = benchlib.Etld(a.build, work, "s3://" + BUCKET, extra=extra, label=label, env=env)
    with etld:
        c0, t0 = benchlib.proc_cpu(etld.proc.pid), time.monotonic()
        st = etld.run_job("etl")
        wall, cpu = time.monotonic() - t0, benchlib.proc_cpu(etld.proc.pid) - c0
        rss = etld.stop()
    return wall, st, cpu, rss


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_ceiling(a, direct, denv, s3rver_pid, objects, size, data):
    """s3_tool getmany over the whole bucket: the emulator's objects/s."""
    c0, k0, t0 = benchlib.proc_cpu(s3rver_pid), children_cpu(), time.monotonic()
    out = s3_tool(a.build, direct, denv, "--concurrency", a.ceiling_concurrency, "getmany",
                  BUCKET, "", check=False)
    secs, node = time.monotonic() - t0, benchlib.proc_cpu(s3rver_pid) - c0
    client = children_cpu() - k0
    # every object and byte of the bucket: the tree plus log_json_path.json
    jp = os.path.getsize(os.path.join(data, "log_json_path.json"))
    if out.get("objects") != objects + 1 or out.get("failures") != 0 or out.get(
            "bytes") != size + jp:
        raise SystemExit("ceiling: s3_tool getmany read %s" % out)
    print("  ceiling      %8.2f s  %d objects, %.0f objects/s (s3_tool getmany, %d in flight,"
          " its CPU %.2f s; s3rver CPU %.2f of a core; load average %.2f)"
          % (secs, objects + 1, (objects + 1) / secs, a.ceiling_concurrency, client,
             node / secs, os.getloadavg()[0]), flush=True)
    return (objects + 1) / secs


def load_step(st):
    step = next(s for s in st["steps"] if s["name"] == "load")
    return benchlib.step_seconds(st, "load"), step["progress"]


def print_job(label, wall, st, cpu, rss, objects):
    steps = "  ".join("%s %.2f" % (s["name"], benchlib.step_seconds(st, s["name"]))
                      for s in st["steps"])
    secs, prog = load_step(st)
    if prog.get("objects") != objects:
        raise SystemExit("%s: the load step read %s objects, the tree has %d: %s"
                         % (label, prog.get("objects"), objects, prog))
    print("  etld job     %8.2f s  (steps: %s)" % (wall, steps))
    print("  etld load    %8.2f s  %d objects, %s rows, %.0f objects/s; etld CPU %.2f s,"
          " peak RSS %.1f MiB; load average %.2f"
          % (secs, objects, prog.get("rows"), objects / secs, cpu, rss / 1024,
             os.getloadavg()[0]), flush=True)
    return objects / secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("ETLD_BUILD", os.path.join(ROOT, "build")))
    ap.add_argument("--objects", type=int, default=3000, help="song_data objects (default 3000)")
    ap.add_argument("--days", type=int, default=30, help="log_data objects (default 30)")
    ap.add_argument("--events", type=int, default=8056, help="log events in all")
    ap.add_argument("--latency", type=int, default=50,
                    help="ms the proxy adds to each request (0: skip that phase)")
    ap.add_argument("--concurrency", type=int, default=0, help="[load] concurrency of etld")
    ap.add_argument("--ceiling-concurrency", type=int, default=64,
                    help="GETs in flight of the ceiling client")
    ap.add_argument("--repeat", type=int, default=3,
                    help="turns of ceiling and etld job without latency (best counts)")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--skip-ceiling", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    why = s3env.missing()
    if why:
        raise SystemExit("bench/s3load.py: " + why)
    if not os.access(AWS, os.X_OK):
        raise SystemExit("bench/s3load.py: %s missing (apt-get install awscli)" % AWS)
    work = tempfile.mkdtemp(prefix="etld-bench-s3load-")
    env = None
    try:
        data = os.path.join(work, "data")
        subprocess.run([os.path.join(a.build, "bench", "etld-gen"), "--out", data, "--seed", "7",
                        "--songs", str(a.objects), "--events", str(a.events),
                        "--days", str(a.days)], check=True, capture_output=True)
        objects, size = tree_stats(data)
        env = s3env.start_s3env(os.path.join(work, "s3"))
        s3rver_pid = env.procs[0].pid
        direct = "http://127.0.0.1:%d" % env.s3rver_port
        cenv = env.env(AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="",
                       AWS_CONFIG_FILE=os.path.join(work, "aws-config"),  # defaults only
                       AWS_SHARED_CREDENTIALS_FILE=os.path.join(work, "aws-credentials"))
        denv = dict(cenv, AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER")
        with open(os.path.join(work, "aws-upload"), "w") as f:
            f.write("[default]\ns3 =\n  max_concurrent_requests = 32\n")
        s3_tool(a.build, direct, denv, "mb", BUCKET)
        up = cli(dict(denv, AWS_CONFIG_FILE=os.path.join(work, "aws-upload")), "s3", "cp",
                 "--recursive", "--only-show-errors", data, "s3://" + BUCKET,
                 "--endpoint-url", direct)
        print("s3load bench: %d objects (%d song_data, %d log_data), %.1f MB, uploaded in"
              " %.1f s; [load] concurrency %s; %d CPUs, load average %s"
              % (objects, a.objects, objects - a.objects, size / 1e6, up,
                 a.concurrency or "default", os.cpu_count(),
                 " ".join("%.2f" % x for x in os.getloadavg())), flush=True)

        if a.latency:
            env.faults([{"fault": "latency", "ms": a.latency}])
            print("through the signature-checking proxy, +%d ms per request:" % a.latency)
            if not a.skip_cli:
                dl = os.path.join(work, "download")
                secs = cli(cenv, "s3", "cp", "--recursive", "--only-show-errors",
                           "s3://" + BUCKET, dl, "--endpoint-url", env.endpoint)
                got, _ = tree_stats(dl)
                if got != objects:
                    raise SystemExit("aws s3 cp downloaded %d objects of %d" % (got, objects))
                shutil.rmtree(dl)
                print("  aws s3 cp    %8.2f s  (--recursive, download alone; load average %.2f)"
                      % (secs, os.getloadavg()[0]), flush=True)
            wall, st, cpu, rss = run_etl(a, work, "latency", env.endpoint, cenv)
            print_job("latency", wall, st, cpu, rss, objects)
            if not a.skip_cli:
                print("  aws s3 cp / etld job: %.2fx  (goal: >= 3x)" % (secs / wall), flush=True)
            env.reset()

        if not a.skip_ceiling:
            print("straight to s3rver, no latency, %d turns each (the best counts):" % a.repeat)
            ceilings, rates = [], []
            for turn in range(a.repeat):
                ceilings.append(run_ceiling(a, direct, denv, s3rver_pid, objects, size, data))
                c0 = benchlib.proc_cpu(s3rver_pid)
                wall, st, cpu, rss = run_etl(a, work, "direct%d" % turn, direct, denv)
                node = benchlib.proc_cpu(s3rver_pid) - c0
                rates.append(print_job("direct", wall, st, cpu, rss, objects))
                print("  s3rver CPU over the etld job: %.2f s" % node)
            print("  load step / ceiling: %.0f / %.0f objects/s = %.2f  (goal: >= 0.9)"
                  % (max(rates), max(ceilings), max(rates) / max(ceilings)))
        print("load average at the end: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    finally:
        if env:
            env.stop()
        if a.keep:
            print("work folder:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
