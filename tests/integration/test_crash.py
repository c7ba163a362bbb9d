"""test_crash.py - kill -9 of etld in the middle of a job, restart with the same
state directory: the job resumes, succeeds, and the warehouse equals what an
uninterrupted run gives (expected.py, itself checked against uninterrupted
runs in test_etl.py).  DESIGN.md: "A kill -9 at any moment loses nothing and
duplicates nothing."
"""
import os
import random
import sqlite3
import time

import pytest

import expected
from etldtest import FINAL, assert_job_succeeded, settings_for, step_of


def assert_same_as_uninterrupted(wh, data_dir):
    con = sqlite3.connect(wh)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    diff = expected.compare(wh, expected.for_data_dir(data_dir))
    assert not diff, "after kill -9 and resume, %s differs from an uninterrupted run:\n%s" % (wh, diff)


def rows_loaded(step):
    return (step.get("progress") or {}).get("rows", 0) > 0


@pytest.mark.slow
def test_kill9_during_load_resumes(etld_factory, big_data):
    d = etld_factory(max_jobs=1)
    wh = os.path.join(d.workdir, "wh.db")
    job = d.submit(settings_for(big_data, wh))["job"]
    st = d.wait_step(job, "load", pred=rows_loaded, interval=0.01)
    assert st["state"] == "running", \
        "load finished before it could be killed; raise ETLD_TEST_BIG_EVENTS: %s" % st["steps"]
    d.kill9()
    d.start()
    after = d.status(job)
    assert after["state"] in ("queued", "running", "succeeded"), after
    st = d.wait_job(job, timeout=180)
    assert_job_succeeded(st)
    assert step_of(st, "create-tables")["state"] == "done"
    assert_same_as_uninterrupted(wh, big_data)


@pytest.mark.slow
def test_kill9_during_transform_resumes(etld_factory, big_data):
    d = etld_factory(max_jobs=1)
    wh = os.path.join(d.workdir, "wh.db")
    job = d.submit(settings_for(big_data, wh))["job"]
    st = d.wait_step(job, "transform", interval=0.003, timeout=180)
    s = step_of(st, "transform")
    if st["state"] in FINAL or s["state"] != "running":
        pytest.skip("transform ran too briefly to be caught running (job %s, step %s)"
                    % (st["state"], s["state"]))
    d.kill9()
    d.start()
    st = d.wait_job(job, timeout=180)
    assert_job_succeeded(st)
    assert step_of(st, "load")["state"] == "done"
    assert_same_as_uninterrupted(wh, big_data)


@pytest.mark.slow
def test_kill9_at_random_moments(etld_factory, big_data):
    """Three kills at seeded random moments of one job, then let it finish."""
    rng = random.Random(int(os.environ.get("ETLD_TEST_SEED", "20181130")))
    d = etld_factory(max_jobs=1)
    wh = os.path.join(d.workdir, "wh.db")
    job = d.submit(settings_for(big_data, wh))["job"]
    for _ in range(3):
        time.sleep(rng.uniform(0.1, 2.0))
        d.kill9()
        d.start()
    st = d.wait_job(job, timeout=240)
    assert_job_succeeded(st)
    assert_same_as_uninterrupted(wh, big_data)


def test_submitted_job_survives_kill9(etld_factory, edge_data):
    """A submit that was answered is in the journal: kill -9 right after it."""
    d = etld_factory(max_jobs=1)
    wh = os.path.join(d.workdir, "wh.db")
    sub = d.submit(settings_for(edge_data, wh), key="durable")
    d.kill9()
    d.start()
    again = d.submit(settings_for(edge_data, wh), key="durable")
    assert again["job"] == sub["job"] and again["existing"] is True, (sub, again)
    st = d.wait_job(sub["job"])
    assert_job_succeeded(st)
    assert_same_as_uninterrupted(wh, edge_data)
    # And nothing ran twice into the same warehouse: one job in the list.
    jobs = d.rpc("list", {"limit": 10})["jobs"]
    assert [j["id"] for j in jobs] == [sub["job"]], jobs
