"""bench/benchlib.py - what the benchmarks share: running a real etld with a
configuration of our own and driving it with etlctl, peak RSS, the timestamp
text etld stores, and the columns of staging_events."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EVENT_COLUMNS = ["artist", "auth", "firstName", "gender", "itemInSession", "lastName",
                 "length", "level", "location", "method", "page", "registration",
                 "sessionId", "song", "status", "ts", "userAgent", "userId"]

FINAL = ("succeeded", "failed", "cancelled")


def iso(s):
    """etld's "2026-11-25T12:00:00.123Z" as seconds since the epoch."""
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()


def vm_hwm_kib(pid):
    """Peak resident set size of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def proc_cpu(pid):
    """CPU seconds (user + system) a live process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ts_text(ms):
    """Epoch milliseconds as the TIMESTAMP text etld's COPY writes."""
    t = datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    frac = ms % 1000
    return t + (("." + f"{frac:03d}".rstrip("0")) if frac else "")


def generate(build, out, events, songs, seed):
    subprocess.run([f"{build}/bench/etld-gen", "--out", out, "--events", str(events),
                    "--songs", str(songs), "--seed", str(seed)], check=True,
                   capture_output=True)


def step_seconds(status, name):
    step = next(s for s in status["steps"] if s["name"] == name)
    return iso(step["finished_at"]) - iso(step["started_at"])


class Etld:
    """An etld in the foreground with its own socket and state directory.

    data: a folder laid out like the bucket, or an s3://bucket URI; target:
    the warehouse URI; extra: more configuration lines (INI), e.g. a
    [warehouse] password; env: etld's environment (default: ours)."""

    def __init__(self, build, work, data, target=None, extra="", label="etld", env=None):
        self.build, self.work, self.env = build, work, env
        base = data if data.startswith("s3://") else "file://" + data
        self.state = tempfile.mkdtemp(prefix="state-" + label + "-", dir=work)
        self.conf = os.path.join(work, label + ".conf")
        target = target or f"sqlite://{self.state}/warehouse.db"
        with open(self.conf, "w") as f:
            f.write(f"""[daemon]
sql_dir = {ROOT}/sql
log_level = warning
[s3]
song_data = {base}/song_data
log_data = {base}/log_data
log_jsonpath = {base}/log_json_path.json
[warehouse]
target = {target}
{extra}""")
        os.chmod(self.conf, 0o600)
        self.sock = os.path.join(work, label + ".sock")
        self.ctl = [f"{build}/client/etlctl", "--socket", self.sock]
        self.log = None
        self.proc = None

    def start(self):
        self.log = open(self.conf[:-len(".conf")] + ".log", "w")
        env = dict(self.env or os.environ, AWS_EC2_METADATA_DISABLED="true")  # loopback only
        self.proc = subprocess.Popen(
            [f"{self.build}/daemon/etld", "--foreground", "--config", self.conf,
             "--socket", self.sock, "--state-dir", self.state], stderr=self.log, env=env)
        for _ in range(200):
            if subprocess.run(self.ctl + ["ping"], capture_output=True).returncode == 0:
                return self
            time.sleep(0.05)
        sys.exit("etld did not start; see " + self.log.name)

    def submit(self, pipeline="etl", wait=False):
        """Queues a job; with wait, returns once it ended.  Returns its id."""
        r = subprocess.run(self.ctl + ["--json", "submit", pipeline] + (["--wait"] if wait
                                                                          else []),
                           capture_output=True, text=True)
        for line in r.stdout.splitlines():
            msg = json.loads(line)
            if "job" in msg and "existing" in msg:
                return msg["job"]
        sys.exit(f"etlctl submit failed: {r.stdout}{r.stderr}")

    def status(self, job):
        return json.loads(subprocess.run(self.ctl + ["--json", "status", str(job)],
                                         capture_output=True, text=True).stdout)

    def run_job(self, pipeline="etl"):
        """Runs a job to its end; exits the benchmark when it did not succeed."""
        job = self.submit(pipeline, wait=True)
        st = self.status(job)
        if st["state"] != "succeeded":
            sys.exit(f"etld: job {job} {st['state']}: {st.get('error')}")
        return st

    def stop(self):
        """etld's peak RSS in KiB, then SIGTERM."""
        if not self.proc:
            return 0
        rss = vm_hwm_kib(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.log.close()
        self.proc = None
        return rss

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
