"""test_provision.py - the provision and teardown pipelines (daemon/pipelines/provision/,
daemon/aws/query.c) against moto behind the SigV4-checking proxy (motoenv.py),
and teardown's delete-bucket step against s3rver behind its proxy (s3env.py).

Each test uses its own resource names, so the module shares one moto and one
s3rver.  The proxy records every action; it answers `creating` for
DescribeClusters when a test asks (moto makes a cluster available at once) and,
for the one test of a cluster that lacks the role, carries out
ModifyClusterIamRoles, which moto lacks.  One test runs against moto alone
(plain_moto), with nothing in between.

[provision] ttl: the scheduled teardown, its not_before time across a kill -9,
its idempotency when provision resumes, cancelling it, refusing bad values.
"""
import concurrent.futures
import datetime
import http.client
import json
import os
import re
import sqlite3
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

import etldtest
from motoenv import motoenv, plain_moto  # noqa: F401  (the fixtures)
from s3env import s3env  # noqa: F401  (the fixture)

PASSWORD = "Pw-Sekrit-7f3a9c-etld"
MUTATING = ("Create", "Delete", "Attach", "Detach", "Authorize", "Modify", "Revoke")


def start_daemon(etld_factory, motoenv, workdir):  # noqa: F811
    pw = os.path.join(workdir, "db_password")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    extra = ("[aws]\nregion = us-west-2\nendpoint_url = %s\n"
             "[cluster]\ndb_password_file = %s\nnodes = 2\npoll_interval_ms = 100\n"
             "wait_timeout = 60\n" % (motoenv.endpoint, pw))
    return etld_factory(conf_extra=extra, env=motoenv.env())


def names(tag):
    return {"iam.role_name": "etld-%s-role" % tag, "network.security_group": "etld-%s-sg" % tag,
            "network.subnet_group": "etld-%s-sng" % tag, "cluster.identifier": "etld-%s" % tag,
            "daemon.retry_base_ms": 50}


def run(d, pipeline, settings, timeout=60):
    job = d.submit(settings, pipeline=pipeline)["job"]
    return d.wait_job(job, timeout=timeout)


def outputs(st):
    out = {}
    for s in st["steps"]:
        out.update(s.get("outputs") or {})
    return out


def events(st):
    return " | ".join(e.get("message", "") for e in st.get("events") or [])


def assert_ok(st):
    assert st["state"] == "succeeded", json.dumps(st, indent=1)


def assert_same(before, after):
    """moto's state is what it was: show what differs when not."""
    diff = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
            if before.get(k) != after.get(k)}
    assert not diff, json.dumps(diff, indent=1)[:4000]


def count(actions, name):
    return sum(1 for a in actions if a.endswith(":" + name))


def test_provision_then_teardown_leaves_moto_as_it_was(etld_factory, motoenv, workdir):  # noqa
    before = motoenv.snapshot()
    d = start_daemon(etld_factory, motoenv, workdir)
    motoenv.reset()
    motoenv.config(creating_polls=3)
    # throttling and 500s are retried by the client
    motoenv.faults([{"fault": "throttle", "match": "iam GetRole", "count": 2},
                    {"fault": "error500", "match": "ec2 DescribeVpcs", "count": 1},
                    {"fault": "throttle", "match": "ec2 DescribeSecurityGroups", "count": 1}])
    s = names("rt")
    st = run(d, "provision", s)
    assert_ok(st)
    assert [x["name"] for x in st["steps"]] == ["iam-role", "security-group", "subnet-group",
                                                "cluster", "attach-role"]
    out = outputs(st)
    assert out["role_origin"] == "created" and out["role_arn"].endswith(":role/etld-rt-role")
    assert out["security_group_id"].startswith("sg-")
    assert out["security_group_origin"] == "created"
    assert out["subnet_group_origin"] == "created"
    assert out["cluster_id"] == "etld-rt" and out["cluster_origin"] == "created"
    assert out["endpoint"] and out["port"] == "5439" and out["database"] == "dev"
    assert out["role_attached"] == out["role_arn"]
    assert "0.0.0.0/0" in events(st) and "warning" in events(st)
    acts = motoenv.actions()
    # the role is given at creation: nothing to modify afterwards
    assert count(acts, "CreateCluster") == 1 and count(acts, "ModifyClusterIamRoles") == 0
    cl = motoenv.client("redshift").describe_clusters(ClusterIdentifier="etld-rt")["Clusters"][0]
    assert [r["IamRoleArn"] for r in cl["IamRoles"]] == [out["role_arn"]], cl["IamRoles"]
    assert count(acts, "DescribeClusters") >= 4  # three faked `creating` polls
    st_ = motoenv.stats()
    assert st_["faults"].get("throttle") == 2 + 1 and st_["faults"].get("error500") == 1
    assert st_["signature_failures"] == 0 and st_["auth_failures"] == 0

    # a second provision adopts what the first created and creates nothing
    motoenv.reset()
    st2 = run(d, "provision", s)
    assert_ok(st2)
    assert not [a for a in motoenv.actions() if a.split(":")[1].startswith(MUTATING)], \
        motoenv.actions()
    assert outputs(st2)["cluster_origin"] == "created"

    # a cluster that lacks the role (created before etld passed it along)
    # gets it through ModifyClusterIamRoles, once
    motoenv.reset()
    motoenv.cluster_roles("etld-rt", [])
    st3 = run(d, "provision", s)
    assert_ok(st3)
    acts = motoenv.actions()
    assert count(acts, "ModifyClusterIamRoles") == 1 and count(acts, "CreateCluster") == 0, acts
    assert outputs(st3)["role_attached"] == out["role_arn"]

    # secrets: never in the log, a status reply or the journal
    for text in (d.stderr_text(), json.dumps(d.status(st["id"])),
                 etldtest.etlctl(d.sock, "--json", "status", str(st["id"])).stdout):
        assert PASSWORD not in text and motoenv.secret_key not in text
    with open(os.path.join(d.state, "journal.db"), "rb") as f:
        assert PASSWORD.encode() not in f.read()

    motoenv.reset()
    td = run(d, "teardown", s)
    assert_ok(td)
    acts = motoenv.actions()
    order = [a for a in acts if a.split(":")[1].startswith(("Delete", "Detach"))]
    assert order == ["redshift:DeleteCluster", "redshift:DeleteClusterSubnetGroup",
                     "ec2:DeleteSecurityGroup", "iam:DetachRolePolicy", "iam:DeleteRole"], acts
    assert_same(before, motoenv.snapshot())
    # teardown again: everything recorded as deleted, nothing sent but nothing
    motoenv.reset()
    assert_ok(run(d, "teardown", s))
    assert motoenv.actions() == []


def test_provision_then_teardown_on_plain_moto(etld_factory, plain_moto, workdir):  # noqa
    """`python3 -m moto.server` alone, no proxy: etld needs nothing moto lacks
    (ModifyClusterIamRoles), and teardown leaves moto as it was."""
    before = plain_moto.snapshot()
    d = start_daemon(etld_factory, plain_moto, workdir)
    s = names("pm")
    st = run(d, "provision", s)
    assert_ok(st)
    out = outputs(st)
    assert out["cluster_origin"] == "created" and out["role_attached"] == out["role_arn"]
    during = plain_moto.snapshot()
    assert [c["ClusterIdentifier"] for c in during["clusters"]] == ["etld-pm"]
    assert [r["IamRoleArn"] for r in during["clusters"][0]["IamRoles"]] == [out["role_arn"]]
    assert "etld-pm-role" in [r["RoleName"] for r in during["roles"]]
    assert "etld-pm-sng" in [g["ClusterSubnetGroupName"] for g in during["subnet_groups"]]
    assert "etld-pm-sg" in [g["GroupName"] for g in during["security_groups"]]
    assert_ok(run(d, "teardown", s))
    assert_same(before, plain_moto.snapshot())


def test_kill9_during_cluster_wait_resumes_polling(etld_factory, motoenv, workdir):  # noqa
    before = motoenv.snapshot()
    d = start_daemon(etld_factory, motoenv, workdir)
    motoenv.reset()
    motoenv.config(creating_polls=10 ** 6)
    s = names("k9")
    job = d.submit(s, pipeline="provision")["job"]
    deadline = time.time() + 30
    while count(motoenv.actions(), "DescribeClusters") < 4:  # created, polling
        assert time.time() < deadline, motoenv.actions()
        time.sleep(0.05)
    assert count(motoenv.actions(), "CreateCluster") == 1
    d.kill9()
    motoenv.reset()  # counts from here on are the restarted etld's
    motoenv.config(creating_polls=5)
    d.start()
    st = d.wait_job(job, timeout=60)
    assert_ok(st)
    acts = motoenv.actions()
    assert count(acts, "CreateCluster") == 0, acts
    assert count(acts, "DescribeClusters") >= 6, acts
    assert "resuming after restart" in events(st)
    assert outputs(st)["cluster_origin"] == "created"
    assert_ok(run(d, "teardown", s))
    assert_same(before, motoenv.snapshot())


def test_cancel_during_wait_then_teardown(etld_factory, motoenv, workdir):  # noqa: F811
    before = motoenv.snapshot()
    d = start_daemon(etld_factory, motoenv, workdir)
    motoenv.reset()
    motoenv.config(creating_polls=10 ** 6)
    s = names("cx")
    job = d.submit(s, pipeline="provision")["job"]
    deadline = time.time() + 30
    while count(motoenv.actions(), "DescribeClusters") < 3:
        assert time.time() < deadline, motoenv.actions()
        time.sleep(0.05)
    # the cluster step's progress says what it waits for, not counters
    deadline = time.time() + 20
    prog = {}
    while not prog.get("text"):
        assert time.time() < deadline, d.status(job)
        time.sleep(0.1)
        prog = (etldtest.step_of(d.status(job), "cluster") or {}).get("progress") or {}
    assert re.fullmatch(r"creating, \d+ s", prog["text"]), prog
    assert prog.get("objects") == 0, prog
    shown = etldtest.etlctl(d.sock, "status", str(job)).stdout
    assert "creating, " in shown and "objects" not in shown, shown
    r = etldtest.etlctl(d.sock, "cancel", str(job))
    assert r.returncode == 0, r.stderr
    st = d.wait_job(job, timeout=20)
    assert st["state"] == "cancelled", st
    assert outputs(st)["cluster_origin"] == "created"
    motoenv.config(creating_polls=0)
    td = run(d, "teardown", s)
    assert_ok(td)
    assert_same(before, motoenv.snapshot())


def test_role_without_redshift_trust_is_not_adopted(etld_factory, motoenv, workdir):  # noqa
    iam = motoenv.client("iam")
    iam.create_role(RoleName="etld-foreign-role", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    try:
        d = start_daemon(etld_factory, motoenv, workdir)
        motoenv.reset()
        s = names("fr")
        s["iam.role_name"] = "etld-foreign-role"
        st = run(d, "provision", s)
        assert st["state"] == "failed"
        assert "etld-foreign-role" in st["error"] and "trust policy" in st["error"], st["error"]
        assert not [a for a in motoenv.actions() if a.split(":")[1].startswith(MUTATING)]
        # teardown after the failed provision: nothing of it was created
        motoenv.reset()
        assert_ok(run(d, "teardown", s))
        assert not [a for a in motoenv.actions() if a.split(":")[1].startswith(MUTATING)]
        assert iam.get_role(RoleName="etld-foreign-role")["Role"]
    finally:
        iam.delete_role(RoleName="etld-foreign-role")


def test_plan_calls_only_describe_and_get(etld_factory, motoenv, workdir):  # noqa: F811
    before = motoenv.snapshot()
    d = start_daemon(etld_factory, motoenv, workdir)
    motoenv.reset()
    s = names("pl")
    s["provision.plan"] = True
    st = run(d, "provision", s)
    assert_ok(st)
    acts = motoenv.actions()
    assert acts and all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in acts), acts
    out = outputs(st)
    assert "would create IAM role etld-pl-role" in out["plan_role"]
    assert "would create Redshift cluster etld-pl" in out["plan_cluster"]
    assert "cluster_origin" not in out and "role_origin" not in out
    assert_same(before, motoenv.snapshot())
    s = names("pl")
    s["teardown.plan"] = True
    motoenv.reset()
    assert_ok(run(d, "teardown", s))
    acts = motoenv.actions()
    assert all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in acts), acts


def test_teardown_after_half_way_failure_removes_exactly_what_exists(etld_factory, motoenv,
                                                                     workdir):  # noqa: F811
    """provision fails at the cluster step (no master password): the role, the
    security group and the subnet group exist; teardown deletes those three and
    sends nothing about a cluster."""
    before = motoenv.snapshot()
    d = start_daemon(etld_factory, motoenv, workdir)
    motoenv.reset()
    s = names("hw")
    s["cluster.db_password_file"] = os.path.join(workdir, "no-such-password-file")
    st = run(d, "provision", s)
    assert st["state"] == "failed", json.dumps(st, indent=1)
    assert "no-such-password-file" in st["error"], st["error"]
    assert [x["state"] for x in st["steps"]][:4] == ["done", "done", "done", "failed"]
    assert count(motoenv.actions(), "CreateCluster") == 0
    out = outputs(st)
    assert out["role_origin"] == out["security_group_origin"] == "created"
    assert out["subnet_group_origin"] == "created" and "cluster_origin" not in out
    assert motoenv.snapshot() != before

    motoenv.reset()
    td = run(d, "teardown", s)
    assert_ok(td)
    acts = motoenv.actions()
    deleting = [a for a in acts if a.split(":")[1].startswith(("Delete", "Detach"))]
    assert deleting == ["redshift:DeleteClusterSubnetGroup", "ec2:DeleteSecurityGroup",
                        "iam:DetachRolePolicy", "iam:DeleteRole"], acts
    assert "no Redshift cluster recorded as created by etld" in events(td)
    assert_same(before, motoenv.snapshot())


# ---- [provision] ttl ----

def jobs_of(d, pipeline):
    return [j for j in d.rpc("list", {"limit": 100})["jobs"] if j["pipeline"] == pipeline]


def scheduled_teardown(d, provision_job):
    """The teardown the provision job queued (exactly one)."""
    tds = [j for j in jobs_of(d, "teardown") if j["id"] > provision_job]
    assert len(tds) == 1, tds
    st = d.status(tds[0]["id"])
    assert st["key"] == "etld:teardown-after-job-%d" % provision_job, st
    return st


def when(text):
    """A time of etld's replies in seconds since the epoch."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def test_ttl_schedules_a_teardown_that_removes_everything(etld_factory, motoenv,
                                                          workdir):  # noqa: F811
    before = motoenv.snapshot()
    d = start_daemon(etld_factory, motoenv, workdir)
    motoenv.reset()
    s = names("tt")
    s["provision.ttl"] = "2s"
    st = run(d, "provision", s)
    assert_ok(st)
    td = scheduled_teardown(d, st["id"])
    ended = when(st["finished_at"])
    nb = when(td["not_before"])
    assert 1.5 <= nb - ended <= 3.5, (st["finished_at"], td["not_before"])
    assert td["uid"] == st["uid"]
    assert td["config"].get("iam.role_name") == "etld-tt-role"
    assert "scheduled by provision job %d" % st["id"] in events(td)
    assert "teardown job %d scheduled" % td["id"] in events(d.status(st["id"]))
    done = d.wait_job(td["id"], timeout=60)
    assert_ok(done)
    assert when(done["started_at"]) >= nb - 0.001
    assert_same(before, motoenv.snapshot())
    # a plan-mode provision with a ttl schedules nothing
    s = names("tp")
    s.update({"provision.ttl": "1h30m", "provision.plan": True})
    st = run(d, "provision", s)
    assert_ok(st)
    assert "would queue a teardown to run 1h30m after" in outputs(st)["plan_ttl"]
    assert not [j for j in jobs_of(d, "teardown") if j["id"] > st["id"]]


def test_ttl_teardown_survives_kill9_and_is_queued_once(etld_factory, motoenv,
                                                        workdir):  # noqa: F811
    before = motoenv.snapshot()
    d = start_daemon(etld_factory, motoenv, workdir)
    motoenv.reset()
    s = names("tk")
    s["provision.ttl"] = "4s"
    st = run(d, "provision", s)
    assert_ok(st)
    d.kill9()
    # as if etld had died between queueing the teardown and marking provision
    # succeeded: the resumed provision must find that teardown, not add one
    db = sqlite3.connect(os.path.join(d.state, "journal.db"))
    with db:
        db.execute("UPDATE jobs SET state = 'running', finished_at = NULL WHERE id = ?",
                   (st["id"],))
        (nb_ms,) = db.execute("SELECT not_before FROM jobs WHERE job_key = ?",
                              ("etld:teardown-after-job-%d" % st["id"],)).fetchone()
    db.close()
    motoenv.reset()
    d.start()
    again = d.wait_job(st["id"], timeout=30)
    assert_ok(again)
    assert "was scheduled already" in events(again)
    td = scheduled_teardown(d, st["id"])
    assert abs(when(td["not_before"]) * 1000 - nb_ms) < 2
    done = d.wait_job(td["id"], timeout=60)
    assert_ok(done)
    assert when(done["started_at"]) * 1000 >= nb_ms - 1
    assert len(jobs_of(d, "teardown")) == 1
    assert count(motoenv.actions(), "DeleteCluster") == 1
    assert_same(before, motoenv.snapshot())


def test_cancelling_the_scheduled_teardown_keeps_the_resources(etld_factory, motoenv,
                                                               workdir):  # noqa: F811
    before = motoenv.snapshot()
    d = start_daemon(etld_factory, motoenv, workdir)
    motoenv.reset()
    s = names("tc")
    s["provision.ttl"] = "1d"
    st = run(d, "provision", s)
    assert_ok(st)
    td = scheduled_teardown(d, st["id"])
    assert td["state"] == "queued" and td["not_before"]
    day = when(td["not_before"]) - when(st["finished_at"])
    assert abs(day - 86400) < 5, day
    # what an operator sees
    r = etldtest.etlctl(d.sock, "status", str(td["id"]))
    assert r.returncode == 5, r.stdout + r.stderr
    assert "not before " + td["not_before"] in r.stdout, r.stdout
    assert "etlctl cancel %d" % td["id"] in r.stdout, r.stdout
    r = etldtest.etlctl(d.sock, "list")
    row = [x for x in r.stdout.splitlines() if x.split()[:1] == [str(td["id"])]]
    assert row and "queued" in row[0] and "not before" in row[0], r.stdout
    r = etldtest.etlctl(d.sock, "status")
    assert "not before" in r.stdout, r.stdout
    r = etldtest.etlctl(d.sock, "--json", "list")
    assert [j for j in json.loads(r.stdout)["jobs"] if j["id"] == td["id"]][0]["not_before"]

    motoenv.reset()
    r = etldtest.etlctl(d.sock, "cancel", str(td["id"]))
    assert r.returncode == 0, r.stderr
    assert d.status(td["id"])["state"] == "cancelled"
    # the cancel survives a restart, and nothing was deleted; a provision
    # resumed after a crash finds the cancelled teardown under its key and
    # leaves it dropped (a key of etld's own is not run again like a
    # submitter's: README, "The RPC methods")
    d.kill9()
    db = sqlite3.connect(os.path.join(d.state, "journal.db"))
    with db:
        db.execute("UPDATE jobs SET state = 'running', finished_at = NULL WHERE id = ?",
                   (st["id"],))
    db.close()
    d.start()
    assert_ok(d.wait_job(st["id"], timeout=30))
    assert "was scheduled already" in events(d.status(st["id"]))
    assert d.status(td["id"])["state"] == "cancelled"
    assert [j["id"] for j in jobs_of(d, "teardown")] == [td["id"]]
    assert not [a for a in motoenv.actions() if a.split(":")[1].startswith(MUTATING)]
    clusters = motoenv.client("redshift").describe_clusters()["Clusters"]
    assert [c["ClusterIdentifier"] for c in clusters if c["ClusterIdentifier"] == "etld-tc"]
    assert_ok(run(d, "teardown", names("tc")))
    assert_same(before, motoenv.snapshot())


def test_bad_ttl_is_refused_naming_the_key(etld_factory):
    d = etld_factory()
    for bad in ("2x", "90", "h", "-1h", "0s", "400d", "1h 30m"):
        # etlctl checks the setting itself (usage error, 2) ...
        r = etldtest.etlctl(d.sock, "submit", "provision", "--set", "provision.ttl=" + bad)
        assert r.returncode == 2, (bad, r.returncode, r.stdout, r.stderr)
        assert "provision.ttl" in r.stderr and bad in r.stderr, (bad, r.stderr)
        # ... and etld refuses it from any other client.
        with pytest.raises(etldtest.RpcError) as e:
            d.submit({"provision.ttl": bad}, pipeline="provision")
        assert "provision.ttl" in str(e.value) and bad in str(e.value), (bad, str(e.value))
    assert jobs_of(d, "provision") == []
    # In etld.conf, a bad ttl stops etld at start, naming the file and line.
    conf = os.path.join(d.workdir, "bad.conf")
    with open(conf, "w") as f:
        f.write("[provision]\nttl = 90\n")
    r = subprocess.run([etldtest.ETLD, "--config", conf, "--foreground", "--socket",
                        os.path.join(d.workdir, "s2")], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "bad.conf:2: provision.ttl: '90' is not a duration" in r.stderr, r


# ---- teardown's delete-bucket (s3rver) ----

def s3rver(env, method, path, body=None, query=""):
    """One request straight to s3rver (the test's own view, unsigned)."""
    c = http.client.HTTPConnection("127.0.0.1", env.s3rver_port, timeout=30)
    try:
        c.request(method, urllib.parse.quote(path) + (("?" + query) if query else ""),
                  body=body, headers={"Content-Length": str(len(body or b""))})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def put_objects(env, bucket, objects):
    status, body = s3rver(env, "PUT", "/" + bucket)
    assert status in (200, 409), (status, body)

    def put(item):
        status, body = s3rver(env, "PUT", "/%s/%s" % (bucket, item[0]), item[1])
        assert status == 200, (item[0], status, body)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(put, sorted(objects.items())))


def keys_of(env, bucket):
    """Every key of the bucket, or None when there is no bucket."""
    out, token = [], None
    while True:
        q = "list-type=2" + ("&continuation-token=" + urllib.parse.quote(token, safe="")
                             if token else "")
        status, body = s3rver(env, "GET", "/" + bucket, query=q)
        if status == 404:
            return None
        assert status == 200, (status, body)
        token = None
        for el in ET.fromstring(body):
            name = el.tag.split("}")[-1]
            if name == "Contents":
                out += [c.text for c in el if c.tag.endswith("Key")]
            elif name == "NextContinuationToken":
                token = el.text
        if not token:
            return sorted(out)


@pytest.fixture(scope="module")
def source(s3env):  # noqa: F811
    """A small source bucket for the stage pipeline."""
    put_objects(s3env, "prov-src", {"song_data/A/a.json": b'{"song_id": "S1"}',
                                    "log_data/2018/11/e.json": b'{"ts": 1}',
                                    "log_json_path.json": b'{"jsonpaths": ["$.ts"]}'})
    return "prov-src"


def s3_settings(env, bucket, **more):
    s = {"aws.endpoint_url": env.endpoint, "aws.region": env.region,
         "stage.source_bucket": "prov-src", "stage.source_region": env.region,
         "stage.bucket": bucket}
    s.update(more)
    return s


def step_events(st, step):
    return [e["message"] for e in st.get("events") or [] if e.get("step") == step]


def test_delete_bucket_empties_and_deletes_the_bucket_stage_created(s3env, source,
                                                                    etld_factory):  # noqa: F811
    d = etld_factory(env=s3env.env())
    st = run(d, "stage", s3_settings(s3env, "prov-proj"))
    assert_ok(st)
    assert outputs(st)["bucket_created"] == "true"
    # more than one DeleteObjects batch of 1000
    put_objects(s3env, "prov-proj", {"extra/%04d" % i: b"x" for i in range(1001)})
    assert len(keys_of(s3env, "prov-proj")) == 1004

    # plan mode only counts
    s3env.reset()
    pl = run(d, "teardown", s3_settings(s3env, "prov-proj", **{
        "teardown.delete_bucket": True, "teardown.plan": True}))
    assert_ok(pl)
    assert "would delete the 1004 objects of bucket s3://prov-proj" in outputs(pl)["plan_bucket"]
    assert set(s3env.stats()["methods"]) <= {"GET", "HEAD"}, s3env.stats()
    # without delete_bucket the bucket stays, and the job says so
    td = run(d, "teardown", s3_settings(s3env, "prov-proj"))
    assert_ok(td)
    assert any("leaving bucket s3://prov-proj, which etld created" in m
               for m in step_events(td, "delete-bucket")), events(td)
    assert len(keys_of(s3env, "prov-proj")) == 1004

    s3env.reset()
    td = run(d, "teardown", s3_settings(s3env, "prov-proj", **{"teardown.delete_bucket": True}))
    assert_ok(td)
    assert keys_of(s3env, "prov-proj") is None
    out = outputs(td)
    assert out["bucket"] == "prov-proj" and out["bucket_deleted"] == "true"
    assert out["bucket_objects_deleted"] == "1004"
    prog = etldtest.step_of(td, "delete-bucket").get("progress") or {}
    assert prog.get("objects") == 1004 and prog.get("objects_total") == 1004, prog
    stats = s3env.stats()
    assert stats["methods"].get("POST") == 2, stats  # DeleteObjects: 1000, then 4
    assert stats["methods"].get("DELETE") == 1, stats  # DeleteBucket
    assert stats["signature_failures"] == 0
    assert keys_of(s3env, "prov-src") is not None  # the source is not the project's

    # again: the journal says it is deleted; nothing is sent
    s3env.reset()
    again = run(d, "teardown", s3_settings(s3env, "prov-proj", **{"teardown.delete_bucket": True}))
    assert_ok(again)
    assert any("was deleted already (job %d)" % td["id"] in m
               for m in step_events(again, "delete-bucket")), events(again)
    assert s3env.stats()["requests"] == 0


def test_delete_bucket_leaves_a_bucket_etld_did_not_create(s3env, source,
                                                           etld_factory):  # noqa: F811
    put_objects(s3env, "prov-theirs", {"keep/me.json": b"{}"})
    d = etld_factory(env=s3env.env())
    # stage finds the bucket (bucket_existed): that does not make it etld's
    st = run(d, "stage", s3_settings(s3env, "prov-theirs"))
    assert_ok(st)
    assert outputs(st).get("bucket_existed") == "true"
    s3env.reset()
    td = run(d, "teardown", s3_settings(s3env, "prov-theirs", **{"teardown.delete_bucket": True}))
    assert_ok(td)
    assert any("leaving bucket s3://prov-theirs: the journal has no record that etld created it"
               in m for m in step_events(td, "delete-bucket")), events(td)
    assert "bucket_deleted" not in outputs(td)
    assert s3env.stats()["requests"] == 0
    assert "keep/me.json" in keys_of(s3env, "prov-theirs")
    # [teardown] force: deleted all the same
    td = run(d, "teardown", s3_settings(s3env, "prov-theirs", **{
        "teardown.delete_bucket": True, "teardown.force": True}))
    assert_ok(td)
    assert keys_of(s3env, "prov-theirs") is None
    assert outputs(td)["bucket_deleted"] == "true"
    # a bucket already gone is success
    td = run(d, "teardown", s3_settings(s3env, "prov-theirs", **{
        "teardown.delete_bucket": True, "teardown.force": True}))
    assert_ok(td)
    assert any("was gone already" in m for m in step_events(td, "delete-bucket")), events(td)
