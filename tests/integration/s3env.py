"""s3env.py - s3rver behind the SigV4-checking proxy, for integration tests.

    from s3env import s3env            # the pytest fixture (module scope)
    def test_x(s3env):
        s3env.endpoint                 # "http://127.0.0.1:PORT" (the proxy)
        s3env.env()                    # os.environ + AWS_ACCESS_KEY_ID/SECRET/REGION
        s3env.faults([{"fault": "slowdown", "count": 3}])
        s3env.stats()                  # the proxy's counters
        s3env.reset()                  # no faults, counters zeroed

start_s3env(workdir) does the same outside pytest (bench scripts); stop() ends
both processes.  s3rver is found at $ETLD_S3RVER, else in the source tree's
.s3rver/ (installed by `npm install --prefix .s3rver s3rver`); when it is
missing, or botocore is, the fixture skips the test with the reason.

s3rver runs with NODE_OPTIONS=--openssl-legacy-provider (on Node 20 its
ListObjectsV2 continuation tokens fail without it), on a free loopback port,
data in a fresh directory.  Logs: DIR/s3rver.log and DIR/s3proxy.log, printed
by `tail_logs()` (the fixture adds them to a failing test's report).
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
PROXY = os.path.join(HERE, "s3proxy.py")
ACCESS_KEY = "AKIDETLDTEST00000001"
SECRET_KEY = "etld/test/secret+key/0123456789abcdefghij"
REGION = "us-east-1"


def s3rver_path():
    p = os.environ.get("ETLD_S3RVER")
    if p:
        return p
    p = os.path.join(SOURCE_ROOT, ".s3rver", "node_modules", ".bin", "s3rver")
    return p if os.path.exists(p) else shutil.which("s3rver")


def missing():
    """Why the environment cannot run, or None."""
    if not s3rver_path():
        return "s3rver not installed (npm install --prefix .s3rver s3rver)"
    if not shutil.which("node"):
        return "node not installed"
    r = subprocess.run(["/usr/bin/python3", "-c", "import botocore"], capture_output=True)
    if r.returncode != 0:
        return "python3-botocore not installed"
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d within %ds" % (what, port, timeout))


class S3Env:
    def __init__(self, workdir):
        self.dir = workdir
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.procs = []
        data = os.path.join(workdir, "s3rver-data")
        os.makedirs(data, exist_ok=True)
        self.s3rver_port = free_port()
        env = dict(os.environ)
        opts = env.get("NODE_OPTIONS", "")
        if "--openssl-legacy-provider" not in opts:
            env["NODE_OPTIONS"] = (opts + " --openssl-legacy-provider").strip()
        self.s3rver_log = os.path.join(workdir, "s3rver.log")
        with open(self.s3rver_log, "wb") as log:
            p = subprocess.Popen([s3rver_path(), "-d", data, "-a", "127.0.0.1",
                                  "-p", str(self.s3rver_port), "--silent"],
                                 stdout=log, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
        self.procs.append(p)
        wait_port(self.s3rver_port, p, "s3rver")
        self.proxy_log = os.path.join(workdir, "s3proxy.log")
        port_file = os.path.join(workdir, "s3proxy.port")
        with open(self.proxy_log, "wb") as log:
            p = subprocess.Popen(["/usr/bin/python3", PROXY,
                                  "--upstream", "127.0.0.1:%d" % self.s3rver_port,
                                  "--port-file", port_file,
                                  "--credentials", "%s:%s" % (ACCESS_KEY, SECRET_KEY)],
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        deadline = time.time() + 20
        while not os.path.exists(port_file):
            if p.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("s3proxy did not start:\n" + self.tail_logs())
            time.sleep(0.05)
        with open(port_file) as f:
            self.proxy_port = int(f.read())
        self.endpoint = "http://127.0.0.1:%d" % self.proxy_port

    def env(self, **extra):
        e = dict(os.environ)
        e.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                 AWS_REGION=self.region, AWS_DEFAULT_REGION=self.region)
        e.pop("AWS_SESSION_TOKEN", None)
        e.pop("AWS_PROFILE", None)
        e.update(extra)
        return e

    def _control(self, path, data=None):
        req = urllib.request.Request(self.endpoint + "/__proxy/" + path,
                                     data=None if data is None else json.dumps(data).encode(),
                                     method="GET" if data is None else "POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def faults(self, rules):
        return self._control("faults", {"rules": rules})

    def stats(self):
        return self._control("stats")

    def reset(self):
        return self._control("reset", {})

    def tail_logs(self, lines=60):
        out = []
        for p in (getattr(self, "s3rver_log", None), getattr(self, "proxy_log", None)):
            if p and os.path.exists(p):
                with open(p, errors="replace") as f:
                    out.append("==> %s <==\n%s" % (p, "".join(f.readlines()[-lines:])))
        return "\n".join(out)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


def start_s3env(workdir=None):
    return S3Env(workdir or tempfile.mkdtemp(prefix="etld-s3-"))


@pytest.fixture(scope="module")
def s3env():
    why = missing()
    if why and os.environ.get("CI"):
        pytest.fail("%s: in CI these tests must run, not skip" % why)
    if why:
        pytest.skip(why)
    d = tempfile.mkdtemp(prefix="etld-s3-")
    env = S3Env(d)
    try:
        yield env
    finally:
        env.stop()
        shutil.rmtree(d, ignore_errors=True)
