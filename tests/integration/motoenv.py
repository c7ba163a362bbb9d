"""motoenv.py - moto (IAM, EC2, Redshift) behind the SigV4-checking proxy
awsproxy.py, for the provisioning tests.

    from motoenv import motoenv         # the pytest fixture (module scope)
    def test_x(motoenv):
        motoenv.endpoint                # "http://127.0.0.1:PORT" (the proxy)
        motoenv.env()                   # os.environ + AWS_ACCESS_KEY_ID/SECRET
        motoenv.actions()               # ["iam:GetRole", "redshift:CreateCluster", ...]
        motoenv.config(creating_polls=N)
        motoenv.faults([...]); motoenv.reset()
        motoenv.snapshot()              # every Describe/List output, for comparisons
        motoenv.client("iam")           # a botocore client straight to moto

moto is the pip package (pip install 'moto[server]'), run as
`python3 -m moto.server` with the first python3 that has it: $ETLD_MOTO_PYTHON,
else the python3 on PATH (pyenv on the CI image), with
MOTO_IAM_LOAD_MANAGED_POLICIES=true so that AmazonS3ReadOnlyAccess exists.
The proxy runs under /usr/bin/python3 (python3-botocore).  When either is
missing the fixture skips with the reason.  Logs: DIR/moto.log, DIR/awsproxy.log.
"""
import json
import glob
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest

from s3env import free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(HERE, "awsproxy.py")
ACCESS_KEY = "AKIDETLDPROVTEST0001"
SECRET_KEY = "etld/prov/secret+key/0123456789abcdefghij"
REGION = "us-west-2"


def moto_python():
    cands = [os.environ.get("ETLD_MOTO_PYTHON"), shutil.which("python3"),
             os.path.expanduser("~/.pyenv/shims/python3")]
    cands += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python3")))
    for p in filter(None, cands):
        r = subprocess.run([p, "-c", "import moto.server, flask"], capture_output=True)
        if r.returncode == 0:
            return p
    return None


def missing():
    if not moto_python():
        return "moto not installed (pip install 'moto[server]')"
    r = subprocess.run(["/usr/bin/python3", "-c", "import botocore"], capture_output=True)
    if r.returncode != 0:
        return "python3-botocore not installed"
    return None


class MotoEnv:
    def __init__(self, workdir):
        self.dir = workdir
        self.access_key, self.secret_key, self.region = ACCESS_KEY, SECRET_KEY, REGION
        self.procs = []
        self.moto_port = free_port()
        self.moto_log = os.path.join(workdir, "moto.log")
        env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
        with open(self.moto_log, "wb") as log:
            p = subprocess.Popen([moto_python(), "-m", "moto.server", "-H", "127.0.0.1",
                                  "-p", str(self.moto_port)], stdout=log,
                                 stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs.append(p)
        wait_port(self.moto_port, p, "moto", timeout=60)
        self.proxy_log = os.path.join(workdir, "awsproxy.log")
        port_file = os.path.join(workdir, "awsproxy.port")
        with open(self.proxy_log, "wb") as log:
            p = subprocess.Popen(["/usr/bin/python3", PROXY, "--upstream",
                                  "127.0.0.1:%d" % self.moto_port, "--port-file", port_file,
                                  "--credentials", "%s:%s" % (ACCESS_KEY, SECRET_KEY)],
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        deadline = time.time() + 20
        while not os.path.exists(port_file):
            if p.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("awsproxy did not start:\n" + self.tail_logs())
            time.sleep(0.05)
        with open(port_file) as f:
            self.proxy_port = int(f.read())
        self.endpoint = "http://127.0.0.1:%d" % self.proxy_port

    def env(self, **extra):
        e = dict(os.environ)
        e.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                 AWS_EC2_METADATA_DISABLED="true")
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
            e.pop(k, None)
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

    def config(self, **cfg):
        return self._control("config", cfg)

    def stats(self):
        return self._control("stats")

    def actions(self):
        return self.stats()["actions"]

    def reset(self):
        return self._control("reset", {})

    # ---- moto's state, straight from moto (not through the proxy) ----

    def client(self, service):
        import botocore.session
        s = botocore.session.get_session()
        return s.create_client(service, region_name=self.region,
                               endpoint_url="http://127.0.0.1:%d" % self.moto_port,
                               aws_access_key_id=self.access_key,
                               aws_secret_access_key=self.secret_key)

    def snapshot(self):
        """Everything the provisioning APIs can list, minus request ids."""
        iam, ec2, rs = self.client("iam"), self.client("ec2"), self.client("redshift")
        out = {}
        roles = iam.list_roles()["Roles"]
        out["roles"] = roles
        out["role_policies"] = {r["RoleName"]: iam.list_attached_role_policies(
            RoleName=r["RoleName"])["AttachedPolicies"] for r in roles}
        out["s3_policy"] = iam.get_policy(
            PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")["Policy"]
        out["vpcs"] = ec2.describe_vpcs()["Vpcs"]
        out["subnets"] = ec2.describe_subnets()["Subnets"]
        out["security_groups"] = ec2.describe_security_groups()["SecurityGroups"]
        out["clusters"] = rs.describe_clusters()["Clusters"]
        out["subnet_groups"] = rs.describe_cluster_subnet_groups()["ClusterSubnetGroups"]
        return json.loads(json.dumps(out, default=str, sort_keys=True))

    def tail_logs(self, lines=60):
        out = []
        for p in (self.moto_log, self.proxy_log):
            if os.path.exists(p):
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


@pytest.fixture(scope="module")
def motoenv():
    why = missing()
    if why and os.environ.get("CI"):
        pytest.fail("%s: in CI these tests must run, not skip" % why)
    if why:
        pytest.skip(why)
    d = tempfile.mkdtemp(prefix="etld-moto-")
    env = MotoEnv(d)
    try:
        yield env
    finally:
        env.stop()
        shutil.rmtree(d, ignore_errors=True)
