"""test_security.py - who may do what through the socket (issue 11).

Each finding of the issue, tried as an unprivileged uid (`nobody`, through
`setpriv --reuid --regid --clear-groups`) against a real etld whose socket
that uid may open (the test's folder 0755, the socket 0666), is refused with
an error naming the key and why; the same request from root, an admin, still
works.  Then: a symlink swapped between submit and load, the per-uid
connection share, the idle timeout, and a ping answered while a pipelining
client has thousands of requests queued.
"""
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from etldtest import ETLCTL, HERE, Conn, etlctl

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture(autouse=True)
def _root_only():
    if os.geteuid() != 0:
        pytest.skip("needs root to run clients as another uid")


def as_nobody(cmd, timeout=60):
    return subprocess.run(["setpriv", "--reuid=%d" % NOBODY.pw_uid,
                           "--regid=%d" % NOBODY.pw_gid, "--clear-groups"] + cmd,
                          capture_output=True, text=True, timeout=timeout)


def ctl_nobody(d, *args):
    return as_nobody([ETLCTL, "--socket", d.sock] + list(args))


# A JSON-RPC call made by `nobody`: prints the reply object.
_RPC = """
import json, sys
sys.path.insert(0, %r)
from etldtest import Conn
with Conn(sys.argv[1]) as c:
    print(json.dumps(c.call(sys.argv[2], json.loads(sys.argv[3]))))
""" % HERE


def rpc_nobody(d, method, params):
    r = as_nobody([sys.executable, "-c", _RPC, d.sock, method, json.dumps(params)])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def open_to_all(d):
    """Lets any uid reach d's socket (the test's stand-in for the etld group)."""
    os.chmod(d.workdir, 0o755)
    os.chmod(d.sock, 0o666)
    return d


def start(etld_factory, conf="", creds=False):
    """An etld whose socket every uid may open; creds: fake AWS keys in its
    environment (requests then go out signed, to the test's own ports)."""
    env = {"AWS_EC2_METADATA_DISABLED": "true"}
    if creds:
        env.update(AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret")
    return open_to_all(etld_factory(conf_extra=conf, env=env))


class Held:
    """A job of root's that holds the default warehouse: its load waits on an
    S3 endpoint (a port of the test's) that accepts and never answers.  Jobs
    on that warehouse queue behind it until it is cancelled."""

    def __init__(self, d):
        self.d = d
        self.port = socket.socket()
        self.port.bind(("127.0.0.1", 0))
        self.port.listen(16)
        self.job = d.submit({"aws.endpoint_url_s3": "http://127.0.0.1:%d"
                             % self.port.getsockname()[1],
                             "s3.song_data": "s3://bucket/song_data"})["job"]
        st = d.wait_step(self.job, "load")
        assert st["state"] == "running", st

    def release(self):
        try:
            self.d.rpc("cancel", {"job": self.job})
        finally:
            self.port.close()


@pytest.fixture
def roots(workdir, small_data):
    """WORKDIR/data (a data root holding a copy of the small tree),
    WORKDIR/wh (a warehouse root), WORKDIR/outside (neither)."""
    r = {k: os.path.join(workdir, k) for k in ("data", "wh", "outside")}
    shutil.copytree(small_data, os.path.join(r["data"], "real"))
    shutil.copytree(small_data, os.path.join(r["outside"], "real"))
    os.makedirs(r["wh"])
    return r


def roots_conf(roots):
    return "[daemon]\ndata_roots = %s\nwarehouse_roots = %s\n" % (roots["data"], roots["wh"])


@pytest.fixture
def sd(etld_factory, roots):
    return start(etld_factory, roots_conf(roots), creds=True)


def sources(tree):
    return {"s3.song_data": "file://%s/song_data" % tree,
            "s3.log_data": "file://%s/log_data" % tree,
            "s3.log_jsonpath": "file://%s/log_json_path.json" % tree}


def set_args(settings):
    out = []
    for k, v in settings.items():
        out += ["--set", "%s=%s" % (k, v)]
    return out


def refused(r, *words):
    assert r.returncode == 4, "expected a refusal (exit 4), got %d: %s%s" % (
        r.returncode, r.stdout, r.stderr)
    for w in words:
        assert w in r.stderr, "%r not in %r" % (w, r.stderr)


def submit_root(d, settings, wait=True):
    r = etlctl(d.sock, "submit", "etl", *set_args(settings), *(["--wait"] if wait else []))
    return r


# ---- finding 1: reading any file through file:// --------------------------

def test_file_sources_outside_data_roots(sd, roots):
    out = os.path.join(roots["outside"], "real")
    refused(ctl_nobody(sd, "submit", "etl", "--set", "s3.song_data=file:///etc/pass"),
            "s3.song_data", "outside daemon.data_roots")
    refused(ctl_nobody(sd, "submit", "etl", "--set", "s3.log_jsonpath=file:///etc/shadow"),
            "s3.log_jsonpath", "/etc/shadow", "outside daemon.data_roots")
    # '..' and symlinks are resolved before the check
    refused(ctl_nobody(sd, "submit", "etl", "--set",
                       "s3.log_data=file://%s/../outside/real/log_data" % roots["data"]),
            "s3.log_data", "resolves to", out)
    os.symlink(out, os.path.join(roots["data"], "link"))
    refused(ctl_nobody(sd, "submit", "etl", "--set",
                       "s3.log_data=file://%s/link/log_data" % roots["data"]),
            "s3.log_data", "resolves to")
    # under the data root, nobody's job runs and succeeds (etld reads as itself)
    r = ctl_nobody(sd, "submit", "etl", "--wait",
                   *set_args(sources(os.path.join(roots["data"], "real"))))
    assert r.returncode == 0, r.stdout + r.stderr
    # root, an admin, reads from anywhere
    r = submit_root(sd, sources(out))
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_data_roots_means_no_file_sources(etld_factory, small_data):
    d = start(etld_factory)
    refused(ctl_nobody(d, "submit", "etl", "--set", "s3.song_data=file://%s/song_data" % small_data),
            "s3.song_data", "none declared")
    # an s3:// source is not a local path: allowed
    r = ctl_nobody(d, "submit", "etl", "--set", "s3.song_data=s3://bucket/song_data")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("job "), r.stdout


# ---- finding 2: running one's own SQL as etld -----------------------------

def test_sql_dir_is_for_admins(sd, workdir):
    evil = os.path.join(workdir, "evilsql")
    shutil.copytree(os.path.join(os.path.dirname(os.path.dirname(HERE)), "sql"), evil)
    refused(ctl_nobody(sd, "submit", "etl", "--set", "daemon.sql_dir=%s" % evil),
            "daemon.sql_dir", "daemon.admin_group", "runs the SQL files")
    r = etlctl(sd.sock, "submit", "etl", "--set", "daemon.sql_dir=%s" % evil)
    assert r.returncode == 0, r.stderr


# ---- finding 3: writing files anywhere ------------------------------------

def test_sqlite_target_outside_roots(sd, roots):
    tree = os.path.join(roots["data"], "real")
    refused(ctl_nobody(sd, "submit", "etl", "--set", "warehouse.target=sqlite:///etc/evil.db"),
            "warehouse.target", "outside the state directory and daemon.warehouse_roots")
    refused(ctl_nobody(sd, "submit", "etl", "--set",
                       "warehouse.target=postgresql://etld@localhost/x"),
            "warehouse.target", "its own credentials")
    wh = os.path.join(roots["wh"], "mine.db")
    r = ctl_nobody(sd, "submit", "etl", "--wait", "--set", "warehouse.target=sqlite://%s" % wh,
                   *set_args(sources(tree)))
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.getsize(wh) > 0
    anywhere = os.path.join(roots["outside"], "root.db")
    r = submit_root(sd, dict(sources(tree), **{"warehouse.target": "sqlite://%s" % anywhere}))
    assert r.returncode == 0, r.stderr
    assert os.path.exists(anywhere)


# ---- finding 4: sending etld's credentials elsewhere ----------------------

@pytest.mark.parametrize("key,value,why", [
    ("aws.endpoint_url", "http://127.0.0.1:9", "session token"),
    ("aws.endpoint_url_s3", "http://127.0.0.1:9", "session token"),
    ("aws.profile", "other", "credentials"),
    ("cluster.db_password_file", "/etc/shadow", "sends it as a password"),
    ("iam.role_arn", "arn:aws:iam::1:role/x", "credential source"),
    ("warehouse.password", "x", "credential"),
])
def test_credential_keys_are_for_admins(sd, key, value, why):
    refused(ctl_nobody(sd, "submit", "etl", "--set", "%s=%s" % (key, value)), key, why)


def test_credential_keys_root_may_set(sd, roots):
    # etl with file:// sources and a sqlite target makes no AWS call: it succeeds
    r = submit_root(sd, dict(sources(os.path.join(roots["data"], "real")),
                             **{"aws.endpoint_url": "http://127.0.0.1:9",
                                "cluster.db_password_file": "/nonexistent"}))
    assert r.returncode == 0, r.stdout + r.stderr


def test_region_cannot_redirect_requests(sd):
    for who in (ctl_nobody, lambda d, *a: etlctl(d.sock, *a)):
        r = who(sd, "submit", "etl", "--set", "aws.region=evil.example#")
        assert r.returncode != 0 and "not a region name" in r.stderr, r.stderr


# ---- finding 5: cancelling anyone's job -----------------------------------

def test_cancel_only_own_jobs(sd):
    held = Held(sd)
    try:
        reply = rpc_nobody(sd, "cancel", {"job": held.job})
        assert reply["error"]["code"] == -32004, reply
        assert "submitted by uid 0" in reply["error"]["message"], reply
        r = ctl_nobody(sd, "cancel", str(held.job))
        refused(r, "submitted by uid 0")
        st = sd.status(held.job)
        assert st["state"] == "running" and st["cancel_uid"] is None, st
        # nobody's jobs queue behind it; nobody cancels its own, root anyone's
        own = rpc_nobody(sd, "submit", {"pipeline": "etl", "settings": {}})["result"]["job"]
        other = rpc_nobody(sd, "submit", {"pipeline": "etl", "settings": {}})["result"]["job"]
        assert sd.status(own)["uid"] == NOBODY.pw_uid and sd.status(own)["admin"] is False
        assert rpc_nobody(sd, "cancel", {"job": own})["result"]["state"] == "cancelled"
        with sd.conn() as c:
            assert c.result("cancel", {"job": other})["state"] == "cancelled"
        assert sd.status(other)["cancel_uid"] == 0
        # status, list, errors and watch stay open to everyone
        for method, params in (("status", {"job": held.job}), ("list", {}),
                               ("errors", {"job": held.job}), ("watch", {"job": own})):
            assert "result" in rpc_nobody(sd, method, params), method
    finally:
        held.release()
    assert sd.wait_job(held.job)["state"] == "cancelled"


def test_retry_checks_the_settings_as_the_retrier(sd, roots):
    """A retry runs a job's kept settings on the retrier's behalf: nobody may
    not retry root's job that set an admin key, but may retry its own."""
    tree = os.path.join(roots["data"], "real")
    with sd.conn() as c:
        job = c.result("submit", {"pipeline": "etl", "settings": {
            "daemon.sql_dir": "/nonexistent/sql"}})["job"]
    assert sd.wait_job(job)["state"] == "failed"
    reply = rpc_nobody(sd, "retry", {"job": job})
    assert reply["error"]["code"] == -32602, reply
    assert "daemon.sql_dir" in reply["error"]["message"], reply
    own = rpc_nobody(sd, "submit", {"pipeline": "etl", "settings": dict(
        sources(tree), **{"s3.log_jsonpath": "file://%s/missing.json" % tree})})
    own = own["result"]["job"]
    assert sd.wait_job(own)["state"] == "failed"
    again = rpc_nobody(sd, "retry", {"job": own})["result"]
    st = sd.wait_job(again["job"])
    assert st["uid"] == NOBODY.pw_uid and st["admin"] is False, st
    with sd.conn() as c:  # root may retry anything
        assert c.result("retry", {"job": job})["retry_of"] == job


# ---- finding 6: locking everyone out --------------------------------------

def test_per_uid_connection_share(etld_factory):
    d = start(etld_factory, "[daemon]\nmax_connections_per_uid = 4\n")
    held = [Conn(d.sock) for _ in range(4)]
    try:
        for c in held:
            assert c.result("ping") == {"pong": True}
        with Conn(d.sock) as extra:
            msg = extra.read_msg()
            assert msg["error"]["code"] == -32004 and msg["id"] is None, msg
            assert "max_connections_per_uid" in msg["error"]["message"], msg
            with pytest.raises((ConnectionError, OSError)):
                extra.read_line(timeout=2)
        # another uid is not shut out, and etlctl says why when refused
        assert ctl_nobody(d, "ping").returncode == 0
        r = etlctl(d.sock, "ping")
        assert r.returncode != 0 and "max_connections_per_uid" in r.stderr, r.stderr
    finally:
        for c in held:
            c.close()
    time.sleep(0.2)
    assert etlctl(d.sock, "ping").returncode == 0


def test_idle_timeout(etld_factory):
    d = start(etld_factory, "[daemon]\nidle_timeout = 1s\n", creds=True)
    held = Held(d)
    idle = Conn(d.sock)
    busy = Conn(d.sock)
    watcher = Conn(d.sock)
    try:
        watcher.send("watch", {"job": held.job}, id="w")
        assert watcher.reply("w")["result"]["state"] == "running"
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            assert busy.result("ping") == {"pong": True}
            time.sleep(0.2)
        msg = idle.read_msg(timeout=2)
        assert msg["id"] is None and "idle" in msg["error"]["message"], msg
        assert "daemon.idle_timeout" in msg["error"]["message"], msg
        with pytest.raises((ConnectionError, OSError)):
            idle.read_line(timeout=2)
        # the watcher sent nothing for as long, but it watches: still served
        watcher.send("ping", id="still")
        assert watcher.reply("still", timeout=5)["result"] == {"pong": True}
    finally:
        for c in (idle, busy, watcher):
            c.close()
        held.release()


def test_ping_answered_while_a_pipeliner_waits(etld_factory):
    etld = start(etld_factory)
    """A client pipelines 20,000 requests (and a marker submit last) without
    reading; a fresh client's ping is answered before etld has reached the
    marker, and the marker is served in the end."""
    n = 20000
    payload = b"".join(b'{"jsonrpc":"2.0","method":"ping","id":%d}\n' % i for i in range(n))
    payload += (b'{"jsonrpc":"2.0","method":"submit","params":{"pipeline":"stage","key":'
                b'"marker","settings":{"s3.song_data":"s3://b/x"}},"id":"marker"}\n')
    flood = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # the whole pipeline fits in the socket: etld could read it in one go
    flood.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_SNDBUFFORCE", 32), 8 << 20)
    flood.connect(etld.sock)
    sender = threading.Thread(target=flood.sendall, args=(payload,))
    sender.start()
    time.sleep(0.05)
    with Conn(etld.sock, timeout=10) as c:
        assert c.result("ping") == {"pong": True}
        jobs = c.result("list", {"limit": 10})["jobs"]
    marker_first = [j for j in jobs if j.get("pipeline") == "stage"]
    got = b""
    flood.settimeout(30)
    while got.count(b"\n") < n + 1:
        chunk = flood.recv(1 << 16)
        assert chunk, "etld closed the pipelining connection"
        got += chunk
    sender.join()
    flood.close()
    assert b'"id":"marker"' in got
    assert not marker_first, "the fresh ping waited for the whole pipeline: %s" % marker_first


# ---- finding 7: daemon-wide keys per job ----------------------------------

@pytest.mark.parametrize("key,value", [("daemon.state_dir", "/tmp/x"), ("daemon.max_jobs", "9"),
                                       ("daemon.socket", "/tmp/s"), ("daemon.log_level", "debug"),
                                       ("daemon.data_roots", "/")])
def test_daemon_wide_keys_refused_for_everyone(sd, key, value):
    refused(ctl_nobody(sd, "submit", "etl", "--set", "%s=%s" % (key, value)), key,
            "cannot be set for one job")
    refused(etlctl(sd.sock, "submit", "etl", "--set", "%s=%s" % (key, value)), key,
            "cannot be set for one job", "etld.conf")


# ---- the symlink swapped between submit and load --------------------------

@pytest.mark.parametrize("who", ["nobody", "root"])
def test_symlink_swapped_after_submit(etld_factory, roots, who):
    d = start(etld_factory, roots_conf(roots), creds=True)
    held = Held(d)
    try:
        link = os.path.join(roots["data"], "link")
        os.symlink(os.path.join(roots["data"], "real"), link)
        settings = sources(link)
        if who == "nobody":
            reply = rpc_nobody(d, "submit", {"pipeline": "etl", "settings": settings})
        else:
            with d.conn() as c:
                reply = c.call("submit", {"pipeline": "etl", "settings": settings})
        job = reply["result"]["job"]
        assert d.status(job)["state"] == "queued"
        # the swap: the link now leads outside the data root, to a full copy
        os.unlink(link)
        os.symlink(os.path.join(roots["outside"], "real"), link)
    finally:
        held.release()
    st = d.wait_job(job, timeout=120)
    if who == "nobody":
        assert st["state"] == "failed", st
        assert "outside daemon.data_roots" in st["error"], st["error"]
        assert os.path.join(roots["outside"], "real") in st["error"], st["error"]
    else:
        assert st["state"] == "succeeded", st["error"]
