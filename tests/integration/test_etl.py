"""test_etl.py - the etl pipeline end to end: every warehouse table equals the
one expected.py computes from the input files.

Jobs are submitted over the socket (the daemon is what is under test here);
test_etl_via_etlctl drives the same path through the real client.
"""
import json
import os
import re
import sqlite3

import pytest

import etldtest
import expected
from etldtest import assert_job_succeeded, settings_for


def run_etl(d, data_dir, wh, key=None, timeout=120, **more):
    sub = d.submit(settings_for(data_dir, wh, **more), key=key)
    assert set(sub) >= {"job", "existing", "state"}, sub
    assert sub["existing"] is False and sub["state"] in ("queued", "running"), sub
    return d.wait_job(sub["job"], timeout=timeout)


def assert_warehouse(wh, data_dir):
    diff = expected.compare(wh, expected.for_data_dir(data_dir))
    assert not diff, "warehouse %s differs from expected.py:\n%s" % (wh, diff)


def config_value(cfg, dotted):
    """A job's config, flat ({"s3.song_data": v}) or nested ({"s3": {"song_data": v}})."""
    if dotted in cfg:
        return cfg[dotted]
    sec, key = dotted.split(".", 1)
    return (cfg.get(sec) or {}).get(key)


def test_generated_data(etld, small_data, workdir):
    wh = os.path.join(workdir, "wh.db")
    st = run_etl(etld, small_data, wh)
    assert_job_succeeded(st)
    assert_warehouse(wh, small_data)

    # The status of a finished job.
    assert st["pipeline"] == "etl"
    assert st["uid"] == os.getuid()
    for k in ("created_at", "started_at", "finished_at"):
        assert st.get(k), "%s missing in %s" % (k, st)
    for s in st["steps"]:
        assert s["attempts"] >= 1 and s["started_at"] and s["finished_at"], s
    cfg = st["config"]
    for k, v in settings_for(small_data, wh).items():
        assert config_value(cfg, k) == v, "config[%s] = %r, expected %r" % (k, config_value(cfg, k), v)
    exp = expected.for_data_dir(small_data)
    load = etldtest.step_of(st, "load")
    rows = (load.get("progress") or {}).get("rows")
    want = len(exp["staging_events"]) + len(exp["staging_songs"])
    assert rows == want, "load progress rows = %r, expected %d (staged rows): %s" % (rows, want, load)
    # the planned totals: every data object under the two prefixes, and their bytes
    files = [os.path.join(dp, f) for src in ("song_data", "log_data")
             for dp, _, fs in os.walk(os.path.join(small_data, src)) for f in fs]
    prog = load["progress"]
    assert prog["objects_total"] == len(files) == prog["objects"], prog
    assert prog["bytes_total"] == sum(os.path.getsize(f) for f in files) == prog["bytes"], prog


def test_submit_reply_says_queued(etld, edge_data, workdir):
    """submit -> {"job": ID, "existing": false, "state": S, "retry_of": null}: S
    is the job's state when the reply is written, "running" when a slot was
    free at once; retry_of is null for a job that runs nothing again."""
    sub = etld.submit(settings_for(edge_data, os.path.join(workdir, "wh.db")))
    assert sub == {"job": sub["job"], "existing": False, "state": sub["state"],
                   "retry_of": None}, sub
    assert sub["state"] in ("queued", "running"), sub
    assert_job_succeeded(etld.wait_job(sub["job"]))


def test_edge_cases(etld, edge_data, workdir):
    """Ties, several matching songs, duplicate ids, ms formatting, ISO weeks."""
    wh = os.path.join(workdir, "wh.db")
    assert_job_succeeded(run_etl(etld, edge_data, wh))
    assert_warehouse(wh, edge_data)


def test_real_sample(etld, sample_data, workdir):
    wh = os.path.join(workdir, "wh.db")
    assert_job_succeeded(run_etl(etld, sample_data, wh))
    con = sqlite3.connect(wh)
    try:
        counts = {t: con.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0]
                  for t in expected.TABLES}
        matched = con.execute("SELECT song_id, artist_id FROM songplays "
                              "WHERE song_id IS NOT NULL").fetchall()
    finally:
        con.close()
    assert counts == {"staging_events": 8056, "staging_songs": 71, "songplays": 6820,
                      "users": 96, "songs": 71, "artists": 69, "time": 6813}, counts
    assert matched == [("SOZCTXZ12AB0182364", "AR5KOSW1187FB35FF4")], matched
    assert_warehouse(wh, sample_data)


def test_second_run_is_idempotent(etld, small_data, workdir):
    wh = os.path.join(workdir, "wh.db")
    assert_job_succeeded(run_etl(etld, small_data, wh))
    first = expected.dump(wh)
    assert_job_succeeded(run_etl(etld, small_data, wh))
    second = expected.dump(wh)
    for t in expected.TABLES:
        d = expected.diff_table(t, second[t][0], second[t][1], first[t][1])
        assert not d, "second run on the same warehouse changed %s:\n%s" % (t, d)
        assert sorted(second[t][1], key=expected._sortkey) == sorted(first[t][1], key=expected._sortkey)
    assert_warehouse(wh, small_data)


def test_idempotency_key(etld, small_data, workdir):
    wh = os.path.join(workdir, "wh.db")
    settings = settings_for(small_data, wh)
    a = etld.submit(settings, key="nightly-2018-11-30")
    b = etld.submit(settings, key="nightly-2018-11-30")
    assert a["existing"] is False, a
    assert b["existing"] is True and b["job"] == a["job"], (a, b)
    st = etld.wait_job(a["job"])
    assert_job_succeeded(st)
    assert st["key"] == "nightly-2018-11-30", st
    c = etld.submit(settings, key="nightly-2018-11-30")  # after it finished, still the same job
    assert c["job"] == a["job"] and c["existing"] is True, c
    assert etld.status(a["job"])["state"] == "succeeded"
    other = etld.submit(settings, key="nightly-2018-12-01")
    assert other["job"] != a["job"] and other["existing"] is False, other
    assert_job_succeeded(etld.wait_job(other["job"]))
    jobs = etld.rpc("list", {"limit": 10})["jobs"]
    assert sorted(j["id"] for j in jobs) == sorted([a["job"], other["job"]]), \
        "the key must not have created a second job: %s" % jobs


def test_bad_source_fails_naming_it(etld, small_data, workdir):
    wh = os.path.join(workdir, "wh.db")
    missing = os.path.join(workdir, "no-such-song-folder")
    st = run_etl(etld, small_data, wh, **{"s3.song_data": "file://" + missing})
    assert st["state"] == "failed", st
    assert st.get("error") and "no-such-song-folder" in st["error"], \
        "job error should name the missing source %s; got %r" % (missing, st.get("error"))
    load = etldtest.step_of(st, "load")
    assert load["state"] == "failed", st["steps"]
    assert etldtest.step_of(st, "transform")["state"] in ("pending", "cancelled"), st["steps"]
    assert etld.rpc("ping") == {"pong": True}


def test_malformed_json_names_file_and_line(etld, edge_data, workdir):
    data = etldtest.copy_tree(edge_data, os.path.join(workdir, "data"))
    victim = os.path.join(data, "log_data", "2018", "11", "2018-11-05-events.json")
    with open(victim) as f:
        lines = f.read().split("\n")
    assert len(lines) > 8
    assert '"auth":' in lines[6]
    lines[6] = lines[6].replace('"auth":', '"auth" ', 1)  # line 7: a missing colon
    with open(victim, "w") as f:
        f.write("\n".join(lines))
    wh = os.path.join(workdir, "wh.db")
    st = run_etl(etld, data, wh)
    assert st["state"] == "failed", st
    err = st.get("error") or ""
    assert "2018-11-05-events.json" in err, "error should name the file: %r" % err
    assert re.search(r"(line\s*[:=]?\s*7\b|:7\b)", err), "error should name line 7: %r" % err
    assert etld.rpc("ping") == {"pong": True}
    # The daemon still runs good jobs afterwards.
    wh2 = os.path.join(workdir, "wh2.db")
    assert_job_succeeded(run_etl(etld, edge_data, wh2))


def test_etl_via_etlctl(etld, edge_data, workdir):
    if not etldtest.have(etldtest.ETLCTL):
        pytest.skip("etlctl is not built: %s" % etldtest.ETLCTL)
    wh = os.path.join(workdir, "wh.db")
    args = ["submit", "etl"]
    for k, v in settings_for(edge_data, wh).items():
        args += ["--set", "%s=%s" % (k, v)]
    r = etldtest.etlctl(etld.sock, *args, "--key", "via-etlctl", "--wait", "--json")
    assert r.returncode == 0, "etlctl submit --wait exited %d\nstdout: %s\nstderr: %s" % (
        r.returncode, r.stdout, r.stderr)
    job = _job_id_from_output(r.stdout)
    assert_warehouse(wh, edge_data)
    r = etldtest.etlctl(etld.sock, "status", str(job), "--json")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    st = json.loads(r.stdout)
    assert st["id"] == job and st["state"] == "succeeded", st
    # A failing job: --wait exits 1.
    args = ["submit", "etl", "--set", "s3.log_data=file://%s/nope" % workdir,
            "--set", "warehouse.target=sqlite://%s/wh3.db" % workdir, "--wait"]
    r = etldtest.etlctl(etld.sock, *args)
    assert r.returncode == 1, "etlctl submit --wait of a failing job exited %d, expected 1\n%s%s" % (
        r.returncode, r.stdout, r.stderr)


def _job_id_from_output(out):
    """The job id in `etlctl ... --json` output: a job object or a submit reply,
    possibly preceded by other JSON lines."""
    docs = [json.loads(l) for l in out.splitlines() if l.strip().startswith("{")]
    if not docs:
        docs = [json.loads(out)]
    for d in docs:
        if isinstance(d.get("job"), (int, str)):
            return d["job"]
        if isinstance(d.get("id"), (int, str)) and "state" in d:
            return d["id"]
    raise AssertionError("no job id in etlctl --json output: %r" % out)
