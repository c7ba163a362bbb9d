#!/usr/bin/python3
"""bench/stage.py - how fast does the stage pipeline copy between buckets,
against the AWS CLI on the same S3 emulator, in the same run?

Starts s3rver (and, for --latency, the SigV4-checking proxy of the
integration tests in front of it, adding that many ms to every request),
puts N small objects under song_data/ in a source bucket, then copies them
into a fresh bucket three ways:

  ceiling  tests/tools/s3_tool cpmany: 64 parallel keep-alive CopyObject
           streams, no bookkeeping: what the emulator itself can take;
  etld     the real daemon's `stage` job (create-bucket, list both buckets,
           server-side copies, [stage] concurrency = 64 by default), submitted
           and waited for with etlctl;
  aws-cli  Debian's /usr/bin/aws s3 cp --recursive s3://src s3://dst
           --endpoint-url ... with default settings.

For each: wall seconds, objects/s, client CPU seconds per 1,000 objects
(etld: the daemon's own utime+stime over the job; the CLI and s3_tool: the
child's rusage), and the ratios etld/ceiling and etld/aws-cli.

    bench/stage.py [--build DIR] [--objects 15000] [--size 300] [--latency MS]
                   [--concurrency 64] [--skip-cli]

Without --latency the clients talk to s3rver directly (it does not check
signatures; the proxy would be the bottleneck).  With --latency they go
through the proxy, which verifies every signature and sleeps MS before
forwarding (S3 across regions).  Needs node + s3rver (.s3rver/ or
$ETLD_S3RVER), python3-botocore for --latency, and awscli
(apt-get install awscli).
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
# bench/copy.py would shadow the standard library's copy module
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
import s3env  # noqa: E402

AWS = "/usr/bin/aws"


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def tool(build, endpoint, env, *args):
    r = subprocess.run([os.path.join(build, "tests", "tools", "s3_tool"), "--endpoint", endpoint]
                       + [str(a) for a in args], capture_output=True, text=True, env=env,
                       timeout=1200)
    out = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    if r.returncode != 0:
        raise SystemExit("s3_tool %s failed: %s %s" % (args, out, r.stderr[-2000:]))
    return out


def count(build, endpoint, env, bucket):
    return tool(build, endpoint, env, "ls", bucket, "")["count"]


def run_ceiling(build, endpoint, env, n, conc):
    tool(build, endpoint, env, "mb", "dst-ceiling")
    c0, t0 = children_cpu(), time.monotonic()
    out = tool(build, endpoint, env, "--concurrency", conc, "cpmany", "src", "song_data/",
               "dst-ceiling")
    wall, cpu = time.monotonic() - t0, children_cpu() - c0
    assert out["objects"] == n and out["failures"] == 0, out
    return wall, cpu


def run_etld(build, endpoint, env, work, n, conc):
    state = os.path.join(work, "etld-state")
    os.makedirs(state)
    conf = os.path.join(work, "etld.conf")
    with open(conf, "w") as f:
        f.write("[daemon]\nsql_dir = %s/sql\nlog_level = warning\n"
                "[aws]\nregion = %s\nendpoint_url = %s\n"
                "[stage]\nsource_bucket = src\nsource_region = %s\nbucket = dst-etld\n"
                "concurrency = %d\n" % (ROOT, s3env.REGION, endpoint, s3env.REGION, conc))
    sock = os.path.join(work, "etld.sock")
    log = open(os.path.join(work, "etld.log"), "w")
    etld = subprocess.Popen([os.path.join(build, "daemon", "etld"), "--foreground", "--config",
                             conf, "--socket", sock, "--state-dir", state], stderr=log, env=env)
    ctl = [os.path.join(build, "client", "etlctl"), "--socket", sock]
    try:
        for _ in range(200):
            if subprocess.run(ctl + ["ping"], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        c0, t0 = proc_cpu(etld.pid), time.monotonic()
        r = subprocess.run(ctl + ["--json", "submit", "stage", "--wait"], capture_output=True,
                           text=True)
        wall, cpu = time.monotonic() - t0, proc_cpu(etld.pid) - c0
        st = json.loads(subprocess.run(ctl + ["--json", "status", "1"], capture_output=True,
                                       text=True).stdout)
        if st.get("state") != "succeeded":
            raise SystemExit("etld stage job: %s\n%s" % (json.dumps(st, indent=1), r.stderr))
        copy = [s for s in st["steps"] if s["name"] == "copy"][0]
        assert copy["outputs"]["objects_copied"] == str(n), copy
    finally:
        etld.terminate()
        etld.wait(10)
    return wall, cpu


def run_cli(endpoint, env, build, n):
    tool(build, endpoint, env, "mb", "dst-cli")
    c0, t0 = children_cpu(), time.monotonic()
    r = subprocess.run([AWS, "s3", "cp", "--recursive", "--only-show-errors", "s3://src",
                        "s3://dst-cli", "--endpoint-url", endpoint], capture_output=True,
                       text=True, env=env, timeout=3600)
    wall, cpu = time.monotonic() - t0, children_cpu() - c0
    if r.returncode != 0:
        raise SystemExit("aws s3 cp failed (%d): %s" % (r.returncode, r.stderr[-2000:]))
    got = count(build, endpoint, env, "dst-cli")
    assert got == n, got
    return wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("ETLD_BUILD", os.path.join(ROOT, "build")))
    ap.add_argument("--objects", type=int, default=15000)
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--latency", type=int, default=0, help="ms the proxy adds to each request")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--skip-cli", action="store_true")
    a = ap.parse_args()
    why = s3env.missing() if a.latency else (None if s3env.s3rver_path() else "no s3rver")
    if why:
        raise SystemExit("bench/stage.py: " + why)
    if not a.skip_cli and not os.access(AWS, os.X_OK):
        raise SystemExit("bench/stage.py: %s missing (apt-get install awscli)" % AWS)
    work = tempfile.mkdtemp(prefix="etld-bench-stage-")
    env = None
    try:
        env = s3env.start_s3env(work)
        direct = "http://127.0.0.1:%d" % env.s3rver_port
        cenv = env.env()
        cenv.pop("AWS_PROFILE", None)
        cenv["AWS_EC2_METADATA_DISABLED"] = "true"
        cenv["AWS_PAGER"] = ""
        cenv["AWS_CONFIG_FILE"] = os.path.join(work, "aws-config")  # defaults only
        cenv["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(work, "aws-credentials")
        denv = dict(cenv, AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER")
        tool(a.build, direct, denv, "mb", "src")
        tool(a.build, direct, denv, "--size", a.size, "--concurrency", 64, "putmany", "src",
             "song_data/", a.objects)
        if a.latency:
            endpoint = env.endpoint
            env.faults([{"fault": "latency", "ms": a.latency}])
            where = "through the signature-checking proxy, +%d ms per request" % a.latency
        else:
            endpoint = direct
            cenv = denv  # s3rver knows only its own access key
            where = "straight to s3rver"
        print("stage bench: %d objects of %d bytes, s3rver %s, %d CPUs"
              % (a.objects, a.size, where, os.cpu_count()), flush=True)
        rows = []
        rows.append(("ceiling",) + run_ceiling(a.build, endpoint, cenv, a.objects,
                                               a.concurrency))
        rows.append(("etld",) + run_etld(a.build, endpoint, cenv, work, a.objects,
                                         a.concurrency))
        if not a.skip_cli:
            rows.append(("aws-cli",) + run_cli(endpoint, cenv, a.build, a.objects))
        print("%-8s %9s %10s %18s" % ("client", "seconds", "objects/s", "CPU s/1000 objects"))
        res = {}
        for name, wall, cpu in rows:
            res[name] = (a.objects / wall, cpu * 1000 / a.objects)
            print("%-8s %9.2f %10.0f %18.3f" % (name, wall, res[name][0], res[name][1]))
        e = res["etld"]
        print("etld / ceiling: %.2f of the emulator's objects/s" % (e[0] / res["ceiling"][0]))
        if "aws-cli" in res:
            c = res["aws-cli"]
            print("etld / aws-cli: %.2fx the objects/s, %.3f of the CPU per object"
                  % (e[0] / c[0], e[1] / c[1] if c[1] else 0.0))
    finally:
        if env:
            env.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
