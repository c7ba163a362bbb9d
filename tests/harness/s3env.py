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
import os
import shutil
import subprocess
import tempfile

import pytest

from emulated import ProxiedEmulator, free_port, wait_port  # noqa: F401 (re-exported)

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


class S3Env(ProxiedEmulator):
    def __init__(self, workdir):
        super().__init__(workdir, ACCESS_KEY, SECRET_KEY, REGION)
        data = os.path.join(workdir, "s3rver-data")
        os.makedirs(data, exist_ok=True)
        self.s3rver_port = free_port()
        env = dict(os.environ)
        opts = env.get("NODE_OPTIONS", "")
        if "--openssl-legacy-provider" not in opts:
            env["NODE_OPTIONS"] = (opts + " --openssl-legacy-provider").strip()
        p = self.spawn([s3rver_path(), "-d", data, "-a", "127.0.0.1",
                        "-p", str(self.s3rver_port), "--silent"], "s3rver.log", env=env)
        wait_port(self.s3rver_port, p, "s3rver")
        self.start_proxy(PROXY, self.s3rver_port, "s3proxy")

    def env(self, **extra):
        return self.credentials_env(dict({"AWS_REGION": self.region,
                                          "AWS_DEFAULT_REGION": self.region}, **extra))


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
