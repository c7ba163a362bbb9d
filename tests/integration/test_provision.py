"""test_provision.py - the provision and teardown pipelines (daemon/provision.c,
daemon/aws/query.c) against moto behind the SigV4-checking proxy (motoenv.py).

Each test uses its own resource names, so the module shares one moto.  The
proxy records every action; it answers `creating` for DescribeClusters when a
test asks (moto makes a cluster available at once) and carries out
ModifyClusterIamRoles, which moto lacks.
"""
import json
import os
import time

import pytest

import etldtest
from motoenv import motoenv  # noqa: F401  (the fixture)

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
    assert count(acts, "CreateCluster") == 1 and count(acts, "ModifyClusterIamRoles") == 1
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
