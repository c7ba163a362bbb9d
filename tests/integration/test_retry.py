"""test_retry.py - running a job again: `etlctl retry JOB`, and keys that name
their latest attempt (README, "The RPC methods" and "etlctl").

The failures here come from outside a job's settings (a source folder that is
missing and then appears, a record file that is broken and then mended), as
they do at night: the settings stay the same, so the same key may run again.
Against the real etld and etlctl.
"""
import json
import os
import re
import shutil
import time

import pytest

import etldtest
import expected
from emulated import free_port
from etldtest import RpcError, assert_job_succeeded, settings_for

BAD_STATE = -32002
NO_SUCH_JOB = -32001
INVALID_PARAMS = -32602


def set_args(settings):
    out = []
    for k, v in settings.items():
        out += ["--set", "%s=%s" % (k, v)]
    return out


def rpc_error(d, method, params):
    with pytest.raises(RpcError) as e:
        d.rpc(method, params)
    return e.value


def assert_warehouse(wh, data_dir):
    diff = expected.compare(wh, expected.for_data_dir(data_dir))
    assert not diff, "warehouse %s differs from expected.py:\n%s" % (wh, diff)


def list_row(out, job):
    """The human `etlctl list` row of a job, split on blanks."""
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == [str(job)]]
    assert len(rows) == 1, out
    return rows[0]


def held_settings(data_dir, port):
    """Settings of a job that stays running: its warehouse refuses connections
    (a transient error), and its retries are far apart and many."""
    return settings_for(data_dir, "/nonexistent.db", **{
        "warehouse.target": "postgresql://etld@127.0.0.1:%d/none?connect_timeout=2" % port,
        "daemon.retry_max": "1000", "daemon.retry_base_ms": "600000",
        "daemon.retry_cap_ms": "600000"})


def test_key_runs_a_failed_night_again(etld, small_data, workdir):
    """A night that failed because its log folder was missing runs again under
    the same key once the folder is there: a new job, linked to the failed one,
    which then is what the key names."""
    data = os.path.join(workdir, "data")
    shutil.copytree(small_data, data, ignore=shutil.ignore_patterns("log_data"))
    wh = os.path.join(workdir, "wh.db")
    settings = settings_for(data, wh)
    key = "nightly-2018-11-30"
    p = etldtest.etlctl(etld.sock, "submit", "etl", *set_args(settings), "--key", key, "--wait")
    assert p.returncode == 1, p.stdout + p.stderr
    first = int(re.match(r"job (\d+) (queued|running)\n", p.stdout).group(1))
    st = etld.status(first)
    assert st["state"] == "failed" and "log_data" in st["error"], st
    assert st["retry_of"] is None and st["retried_by"] is None, st

    shutil.copytree(os.path.join(small_data, "log_data"), os.path.join(data, "log_data"))
    p = etldtest.etlctl(etld.sock, "submit", "etl", *set_args(settings), "--key", key, "--wait")
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.match(r"job (\d+) (?:queued|running): a new attempt of job %d, which failed or was cancelled, "
                 r"under key '%s'$" % (first, key), p.stdout.splitlines()[0])
    assert m, p.stdout
    second = int(m.group(1))
    assert second != first
    st = etld.status(second)
    assert_job_succeeded(st)
    assert st["retry_of"] == first and st["key"] == key, st
    assert st["config"] == etld.status(first)["config"], st
    assert etld.status(first)["retried_by"] == second
    assert_warehouse(wh, small_data)

    # the key now names the attempt that succeeded, for good
    again = etld.submit(settings, key=key)
    assert again == {"job": second, "existing": True, "state": "succeeded",
                     "retry_of": first}, again
    p = etldtest.etlctl(etld.sock, "submit", "etl", *set_args(settings), "--key", key)
    assert p.returncode == 0 and "job %d succeeded (already submitted" % second in p.stdout, \
        p.stdout + p.stderr

    jobs = etld.rpc("list", {"limit": 10})["jobs"]
    assert [(j["id"], j["retry_of"]) for j in jobs] == [(second, first), (first, None)], jobs
    p = etldtest.etlctl(etld.sock, "list")
    assert p.stdout.splitlines()[0].split() == ["ID", "PIPELINE", "STATE", "KEY", "CREATED",
                                                "FINISHED", "DURATION", "RETRY_OF", "ERROR"], \
        p.stdout
    row = list_row(p.stdout, second)
    assert row[2:6] == ["succeeded", key, st["created_at"], st["finished_at"]], p.stdout
    assert re.match(r"^[0-9.hms]+$", row[6]) and row[7:] == [str(first), "-"], p.stdout
    assert list_row(p.stdout, first)[7] == "-", p.stdout
    p = etldtest.etlctl(etld.sock, "status", str(second))
    assert re.search(r"^  retry of +job %d$" % first, p.stdout, re.M), p.stdout
    p = etldtest.etlctl(etld.sock, "status", str(first))
    assert re.search(r"^  retried +as job %d$" % second, p.stdout, re.M), p.stdout
    assert "etlctl status %d" % second in p.stdout, p.stdout


def test_etlctl_retry(etld, small_data, workdir):
    """`etlctl retry JOB` runs a failed job again with the settings it kept,
    submitted by whoever retries it; a job is retried once, a succeeded one
    never, an unknown one is no such job."""
    data = etldtest.copy_tree(small_data, os.path.join(workdir, "data"))
    victim = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(data, "log_data"))
                    for f in fs)[0]
    with open(victim) as f:
        good = f.read()
    with open(victim, "a") as f:
        f.write('{"artist": "half a record\n')
    wh = os.path.join(workdir, "wh.db")
    settings = settings_for(data, wh, **{"load.batch_rows": "100"})
    first = etld.submit(settings)["job"]
    st = etld.wait_job(first)
    assert st["state"] == "failed", st
    p = etldtest.etlctl(etld.sock, "status", str(first))
    assert "etlctl retry %d" % first in p.stdout, p.stdout

    with open(victim, "w") as f:
        f.write(good)
    p = etldtest.etlctl(etld.sock, "retry", str(first), "--wait")
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.match(r"job (\d+) (?:queued|running): a retry of job %d$" % first, p.stdout.splitlines()[0])
    assert m, p.stdout
    second = int(m.group(1))
    st = etld.status(second)
    assert_job_succeeded(st)
    assert st["retry_of"] == first and st["key"] is None, st
    assert st["config"] == etld.status(first)["config"], st
    assert st["config"]["load.batch_rows"] == "100", st["config"]
    assert st["uid"] == os.getuid(), st
    assert any("a new attempt of job %d" % first in e["message"] for e in st["events"]), st
    assert_warehouse(wh, small_data)

    # refused, and why
    e = rpc_error(etld, "retry", {"job": first})
    assert e.code == BAD_STATE and "retried already, as job %d" % second in e.message, e.message
    e = rpc_error(etld, "retry", {"job": second})
    assert e.code == BAD_STATE and "succeeded" in e.message, e.message
    e = rpc_error(etld, "retry", {"job": 424242})
    assert e.code == NO_SUCH_JOB and "424242" in e.message, e.message
    e = rpc_error(etld, "retry", {"job": "one"})
    assert e.code == INVALID_PARAMS, e.message
    p = etldtest.etlctl(etld.sock, "retry", str(first))
    assert p.returncode == 4 and "retried already" in p.stderr, p.stdout + p.stderr
    for bad in ([], ["abc"], ["1", "2"], ["--nosuch", "1"]):
        p = etldtest.etlctl(etld.sock, "retry", *bad)
        assert p.returncode == 2, (bad, p.stdout, p.stderr)
    p = etldtest.etlctl(etld.sock, "retry", "--json", str(second))
    assert p.returncode == 4 and p.stdout == "", p.stdout + p.stderr
    assert len(etld.rpc("list", {"limit": 10})["jobs"]) == 2


def test_key_with_other_settings_refused(etld, small_data, workdir):
    """A key reused with other settings is refused, naming the settings that
    differ; the same settings written otherwise, or another secret, are the
    same settings."""
    wh = os.path.join(workdir, "wh.db")
    settings = settings_for(small_data, wh, **{"load.concurrency": "4"})
    first = etld.submit(settings, key="k")
    assert first["existing"] is False and first["retry_of"] is None, first
    assert_job_succeeded(etld.wait_job(first["job"]))

    other = dict(settings, **{"s3.log_data": "file:///elsewhere/log_data",
                              "load.batch_rows": "100"})
    del other["load.concurrency"]
    e = rpc_error(etld, "submit", {"pipeline": "etl", "settings": other, "key": "k"})
    assert e.code == INVALID_PARAMS, e.message
    named = re.search(r"settings: (.*) differ;", e.message)
    assert named and named.group(1) == "load.batch_rows, load.concurrency, s3.log_data", \
        e.message
    assert "job %d" % first["job"] in e.message, e.message
    e = rpc_error(etld, "submit", {"pipeline": "stage", "settings": settings, "key": "k"})
    assert e.code == INVALID_PARAMS and "etl job" in e.message, e.message
    p = etldtest.etlctl(etld.sock, "submit", "etl", *set_args(other), "--key", "k")
    assert p.returncode == 4 and "s3.log_data" in p.stderr, p.stdout + p.stderr

    same = dict(settings, **{"load.concurrency": 4, "warehouse.password": "not kept"})
    again = etld.submit(same, key="k")
    assert again["job"] == first["job"] and again["existing"] is True, again
    assert [j["id"] for j in etld.rpc("list", {"limit": 10})["jobs"]] == [first["job"]]


def test_retry_of_running_or_queued_job_refused(etld_factory, small_data, workdir):
    """A running or queued job is not retried and its key returns it; once
    cancelled, both `retry` and the key run it again."""
    d = etld_factory(max_jobs=1)
    held = held_settings(small_data, free_port())  # nothing listens there
    a = d.submit(held, key="hold")["job"]
    deadline = time.monotonic() + 30
    st = d.status(a)
    while not any("transient" in e["message"] for e in st["events"]):
        assert time.monotonic() < deadline, st
        time.sleep(0.05)
        st = d.status(a)
    assert st["state"] == "running", st  # waiting for its next attempt
    wb = os.path.join(workdir, "b.db")
    b = d.submit(settings_for(small_data, wb))["job"]
    assert d.status(b)["state"] == "queued"

    e = rpc_error(d, "retry", {"job": a})
    assert e.code == BAD_STATE and "running" in e.message, e.message
    e = rpc_error(d, "retry", {"job": b})
    assert e.code == BAD_STATE and "queued" in e.message, e.message
    p = etldtest.etlctl(d.sock, "retry", str(a))
    assert p.returncode == 4 and "only a failed or cancelled job" in p.stderr, p.stderr
    assert d.submit(held, key="hold") == {"job": a, "existing": True, "state": "running",
                                          "retry_of": None}

    assert d.rpc("cancel", {"job": b})["state"] == "cancelled"
    d.rpc("cancel", {"job": a})
    assert d.wait_job(a, timeout=20)["state"] == "cancelled"
    c = d.rpc("retry", {"job": b})
    assert c["existing"] is False and c["retry_of"] == b, c
    assert_job_succeeded(d.wait_job(c["job"]))
    assert_warehouse(wb, small_data)

    # the cancelled job under the key: the key starts its next attempt
    n = d.submit(held, key="hold")
    assert n["existing"] is False and n["retry_of"] == a and n["job"] not in (a, b, c["job"]), n
    assert d.status(n["job"])["key"] == "hold"
    d.rpc("cancel", {"job": n["job"]})
    assert d.wait_job(n["job"], timeout=20)["state"] == "cancelled"
    jobs = {j["id"]: j for j in d.rpc("list", {"limit": 10})["jobs"]}
    assert {j: jobs[j]["retry_of"] for j in jobs} == {a: None, b: None, c["job"]: b,
                                                     n["job"]: a}, jobs


def test_submits_racing_on_a_failed_key_make_one_attempt(etld, small_data, workdir):
    """Several submits of a failed key at once (a timer and an operator, a
    client that resends) start one new attempt; the others get it."""
    data = os.path.join(workdir, "data")
    shutil.copytree(small_data, data, ignore=shutil.ignore_patterns("log_data"))
    settings = settings_for(data, os.path.join(workdir, "wh.db"))
    failed = etld.submit(settings, key="race")["job"]
    assert etld.wait_job(failed)["state"] == "failed"
    params = {"pipeline": "etl", "settings": settings, "key": "race"}
    conns = [etld.conn() for _ in range(3)]
    try:
        ids = [[c.send("submit", params) for _ in range(3)] for c in conns]
        replies = [c.reply(i)["result"] for c, sent in zip(conns, ids) for i in sent]
    finally:
        for c in conns:
            c.close()
    jobs = {r["job"] for r in replies}
    assert len(jobs) == 1 and failed not in jobs, replies
    assert sorted(r["existing"] for r in replies) == [False] + [True] * 8, replies
    assert all(r["retry_of"] == failed for r in replies), replies
    assert len(etld.rpc("list", {"limit": 20})["jobs"]) == 2
