"""etldtest.py - what the integration tests share: paths of the binaries, a
JSON-RPC client for etld's socket, an etld process handle, job helpers.

Stdlib only.  The fixtures in conftest.py build on these; test files import
them directly for the few calls that are not fixtures.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("ETLD_BUILD", os.path.join(SOURCE_ROOT, "build"))
ETLD = os.path.join(BUILD, "daemon", "etld")
ETLCTL = os.path.join(BUILD, "client", "etlctl")
ETLD_GEN = os.path.join(BUILD, "bench", "etld-gen")
SQL_DIR = os.environ.get("ETLD_SQL_DIR", os.path.join(SOURCE_ROOT, "sql"))
SAMPLE = os.path.normpath(os.path.join(SOURCE_ROOT, "..", "shared", "data", "sparkify"))
if not os.path.isdir(SAMPLE):
    SAMPLE = "/work/shared/data/sparkify"

FINAL = ("succeeded", "failed", "cancelled")
STEPS = ["create-tables", "load", "transform", "check", "publish"]


def have(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def short_tmpdir(tag="etld"):
    """A directory with a short path: sun_path holds 108 bytes at most."""
    return tempfile.mkdtemp(prefix=tag + "-", dir="/tmp")


class RpcError(Exception):
    def __init__(self, error):
        self.error = error
        self.code = error.get("code")
        self.message = error.get("message", "")
        super().__init__("JSON-RPC error %s: %s" % (self.code, self.message))


class Conn:
    """One connection to etld: requests out, replies and notifications in."""

    def __init__(self, path, timeout=10.0):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1
        self.events = []  # notifications received while waiting for replies
        self.replies = {}  # replies received while waiting for another id

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_line(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete line from etld within %.1fs (have %r)"
                                   % (timeout, self.buf[:200]))
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("etld closed the connection (pending %r)" % self.buf[:200])
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def read_msg(self, timeout=10.0):
        line = self.read_line(timeout)
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError("etld sent a line that is not JSON: %r" % line[:300])

    def send(self, method, params=None, id=None):
        if id is None:
            id = self.next_id
            self.next_id += 1
        req = {"jsonrpc": "2.0", "method": method, "id": id}
        if params is not None:
            req["params"] = params
        self.send_raw(json.dumps(req) + "\n")
        return id

    def reply(self, id, timeout=10.0):
        """The reply with this id; notifications seen meanwhile go to .events."""
        if id in self.replies:
            return self.replies.pop(id)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read_msg(max(0.01, deadline - time.monotonic()))
            if "id" not in msg and msg.get("method"):
                self.events.append(msg)
                continue
            if msg.get("id") == id:
                return msg
            self.replies[msg.get("id")] = msg

    def call(self, method, params=None, timeout=10.0):
        """The raw reply object (result or error)."""
        return self.reply(self.send(method, params), timeout)

    def result(self, method, params=None, timeout=10.0):
        msg = self.call(method, params, timeout)
        assert msg.get("jsonrpc") == "2.0", msg
        if "error" in msg:
            raise RpcError(msg["error"])
        assert "result" in msg, msg
        return msg["result"]

    def next_event(self, timeout=10.0):
        if self.events:
            return self.events.pop(0)
        msg = self.read_msg(timeout)
        assert "id" not in msg and msg.get("method") == "event", msg
        return msg


def write_conf(path, state_dir, data_dir=None, max_jobs=2, log_level="debug", extra=""):
    data_dir = data_dir or SAMPLE
    with open(path, "w") as f:
        f.write("[daemon]\n"
                "sql_dir = %s\n"
                "max_jobs = %d\n"
                "log_level = %s\n"
                "[s3]\n"
                "song_data = file://%s/song_data\n"
                "log_data = file://%s/log_data\n"
                "log_jsonpath = file://%s/log_json_path.json\n"
                "[warehouse]\n"
                "target = sqlite://%s/warehouse.db\n%s"
                % (SQL_DIR, max_jobs, log_level, data_dir, data_dir, data_dir, state_dir, extra))
    return path


class Daemon:
    """An etld process run in the foreground with its own socket and state dir."""

    def __init__(self, workdir, max_jobs=2, data_dir=None, conf_extra="", env=None):
        self.workdir = workdir
        self.sock = os.path.join(workdir, "s")
        self.state = os.path.join(workdir, "state")
        os.makedirs(self.state, exist_ok=True)
        self.conf = write_conf(os.path.join(workdir, "etld.conf"), self.state, data_dir,
                               max_jobs, extra=conf_extra)
        self.stderr_path = os.path.join(workdir, "etld.stderr")
        self.proc = None
        self.env = dict(os.environ, **(env or {}))
        # never the real instance metadata service: only an IMDS test, which
        # names its own local endpoint, gets one
        if "AWS_EC2_METADATA_SERVICE_ENDPOINT" not in (env or {}):
            self.env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        self.runs = 0
        self.deliberate = False  # stopped or killed by the test itself

    def start(self, wait=True):
        self.runs += 1
        self.deliberate = False
        with open(self.stderr_path, "ab") as err:
            err.write(b"==== etld start #%d ====\n" % self.runs)
            err.flush()
            self.proc = subprocess.Popen(
                [ETLD, "--foreground", "--config", self.conf, "--socket", self.sock,
                 "--state-dir", self.state],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=self.env)
        if wait:
            self.wait_ready()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("etld exited with %s before answering ping:\n%s"
                                     % (self.proc.returncode, self.stderr_tail()))
            try:
                with Conn(self.sock, timeout=1.0) as c:
                    if c.result("ping") == {"pong": True}:
                        return
            except (OSError, ConnectionError, TimeoutError, RpcError) as e:
                last = e
            time.sleep(0.05)
        raise AssertionError("etld did not answer ping within %.0fs (last: %r)" % (timeout, last))

    def stop(self, timeout=10.0):
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.deliberate = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def kill9(self):
        self.deliberate = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def conn(self, timeout=10.0):
        return Conn(self.sock, timeout)

    def rpc(self, method, params=None, timeout=10.0):
        with self.conn() as c:
            return c.result(method, params, timeout)

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, lines=150):
        text = self.stderr_text().splitlines()
        return "\n".join(text[-lines:])

    # --- jobs ---------------------------------------------------------------

    def submit(self, settings, key=None, pipeline="etl"):
        params = {"pipeline": pipeline, "settings": settings}
        if key is not None:
            params["key"] = key
        return self.rpc("submit", params)

    def status(self, job):
        return self.rpc("status", {"job": job})

    def wait_job(self, job, timeout=60.0, states=FINAL):
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.status(job)
            if st["state"] in states:
                return st
            time.sleep(0.05)
        raise AssertionError("job %s not %s within %.0fs; last status:\n%s"
                             % (job, "/".join(states), timeout, json.dumps(st, indent=1)))

    def wait_step(self, job, step, pred=None, timeout=60.0, interval=0.02):
        """Polls until step `step` is running (and pred(step_obj) holds)."""
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.status(job)
            s = step_of(st, step)
            if s and s["state"] == "running" and (pred is None or pred(s)):
                return st
            if st["state"] in FINAL:
                return st
            time.sleep(interval)
        raise AssertionError("step %s of job %s never ran as wanted; last status:\n%s"
                             % (step, job, json.dumps(st, indent=1)))


def step_of(status, name):
    for s in status.get("steps") or []:
        if s.get("name") == name:
            return s
    return None


def settings_for(data_dir, warehouse, **more):
    d = os.path.abspath(data_dir)
    s = {"s3.song_data": "file://%s/song_data" % d,
         "s3.log_data": "file://%s/log_data" % d,
         "s3.log_jsonpath": "file://%s/log_json_path.json" % d,
         "warehouse.target": "sqlite://%s" % os.path.abspath(warehouse)}
    s.update(more)
    return s


def etlctl(sock, *args, timeout=120):
    return subprocess.run([ETLCTL, "--socket", sock] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def generate(out, seed=1, songs=200, events=2000, days=5):
    """Writes a generated tree with bench/etld-gen, or datagen.bulk_tree when the
    generator is not built.  Returns the tool that wrote it."""
    if have(ETLD_GEN):
        r = subprocess.run([ETLD_GEN, "--out", out, "--seed", str(seed), "--songs", str(songs),
                            "--events", str(events), "--days", str(days)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, "etld-gen failed (%d): %s" % (r.returncode, r.stderr)
        return "etld-gen"
    import datagen
    datagen.bulk_tree(out, seed=seed, songs=songs, events=events, days=days)
    return "datagen.bulk_tree"


def copy_tree(src, dst):
    shutil.copytree(src, dst)
    return dst


def assert_job_succeeded(st):
    assert st["state"] == "succeeded", "job ended %s: error=%r\n%s" % (
        st["state"], st.get("error"), json.dumps(st.get("steps"), indent=1))
    names = [s["name"] for s in st["steps"]]
    assert names == STEPS, names
    bad = [s for s in st["steps"] if s["state"] != "done"]
    assert not bad, "steps not done in a succeeded job: %s" % bad
    checks = st.get("checks")
    assert isinstance(checks, list) and checks, "no quality checks in status: %r" % checks
    failed = [c for c in checks if c.get("ok") is not True]
    assert not failed, "quality checks failed on good data: %s" % failed
    for c in checks:
        assert set(c) >= {"name", "ok", "detail"}, c
