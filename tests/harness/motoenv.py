"""motoenv.py - moto (IAM, EC2, Redshift) behind the SigV4-checking proxy
awsproxy.py, for the provisioning tests; or moto alone (plain_moto), to show
that etld needs nothing moto lacks.

    from motoenv import motoenv         # the pytest fixture (module scope)
    from motoenv import plain_moto      # moto alone: endpoint, env, client, snapshot
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
import glob
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from emulated import ProxiedEmulator, free_port, wait_port

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


class MotoEnv(ProxiedEmulator):
    def __init__(self, workdir, proxy=True):
        super().__init__(workdir, ACCESS_KEY, SECRET_KEY, REGION)
        self.moto_port = free_port()
        env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
        p = self.spawn([moto_python(), "-m", "moto.server", "-H", "127.0.0.1",
                        "-p", str(self.moto_port)], "moto.log", env=env)
        wait_port(self.moto_port, p, "moto", timeout=60)
        if proxy:
            self.start_proxy(PROXY, self.moto_port, "awsproxy")
        else:  # no control API then (faults, stats, config)
            self.endpoint = "http://127.0.0.1:%d" % self.moto_port

    def env(self, **extra):
        return self.credentials_env(dict({"AWS_EC2_METADATA_DISABLED": "true"}, **extra),
                                    drop=("AWS_REGION", "AWS_DEFAULT_REGION"))

    def config(self, **cfg):
        return self._control("config", cfg)

    def cluster_roles(self, cluster, arns):
        """The proxy says the cluster has these IAM roles (until
        ModifyClusterIamRoles or DeleteCluster): a cluster that lacks one."""
        return self._control("cluster_roles", {"cluster": cluster, "arns": arns})

    def actions(self):
        return self.stats()["actions"]

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


def _moto_fixture(proxy):
    why = missing()
    if why and os.environ.get("CI"):
        pytest.fail("%s: in CI these tests must run, not skip" % why)
    if why:
        pytest.skip(why)
    d = tempfile.mkdtemp(prefix="etld-moto-")
    env = MotoEnv(d, proxy=proxy)
    try:
        yield env
    finally:
        env.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def motoenv():
    yield from _moto_fixture(True)


@pytest.fixture(scope="module")
def plain_moto():
    """moto as `python3 -m moto.server` runs it, nothing in between."""
    yield from _moto_fixture(False)
