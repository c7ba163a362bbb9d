"""test_copy.py - the COPY emulator through the real etld and etlctl.

Each test gives its job a SQL folder of its own (`--set daemon.sql_dir=DIR`,
DIR/sqlite/ holding copies of sql/sqlite/*.sql with a modified copy.sql) and a
small data tree, then looks at the job's state and error, the warehouse, and
the load errors `etlctl --json errors JOB` shows (shaped like STL_LOAD_ERRORS).
"""
import json
import os
import shutil
import sqlite3

import pytest

import etldtest
from etldtest import settings_for

EVENT = ('{"artist":"Muse","auth":"Logged In","firstName":"Ann","gender":"F",'
         '"itemInSession":%s,"lastName":"Lee","length":233.5,"level":"paid",'
         '"location":"X","method":"PUT","page":"NextSong","registration":1.54e+12,'
         '"sessionId":7,"song":"Uprising","status":200,"ts":1541105830796,'
         '"userAgent":"UA","userId":"26"}')
SONG = ('{"num_songs":1,"artist_id":"AR1","artist_latitude":null,"artist_longitude":null,'
        '"artist_location":"","artist_name":"Muse","song_id":"SO1","title":"Uprising",'
        '"duration":233.5,"year":2009}')


def make_data(root, bad_events=0, extra=None):
    """A tiny tree: 2 log files (5 events each), 1 song; bad_events records
    with a non-integer itemInSession at the end of the second log file."""
    os.makedirs(os.path.join(root, "log_data", "2018", "11"))
    os.makedirs(os.path.join(root, "song_data", "A", "B", "C"))
    with open(os.path.join(root, "log_json_path.json"), "w") as f:
        f.write('{"jsonpaths": [%s]}' % ", ".join(
            '"$[\'%s\']"' % k for k in
            ["artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length",
             "level", "location", "method", "page", "registration", "sessionId", "song",
             "status", "ts", "userAgent", "userId"]))
    for day, n_bad in (("01", 0), ("02", bad_events)):
        with open(os.path.join(root, "log_data", "2018", "11",
                               "2018-11-%s-events.json" % day), "w") as f:
            for i in range(5):
                f.write(EVENT % i + "\n")
            for i in range(n_bad):
                f.write(EVENT % ('"x%d"' % i) + "\n")
    with open(os.path.join(root, "song_data", "A", "B", "C", "TRABC1.json"), "w") as f:
        f.write(SONG)
    for rel, text in (extra or {}).items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    return root


def sql_dir(root, copy_sql):
    """DIR with DIR/sqlite/ = sql/sqlite/*.sql and copy_sql as copy.sql."""
    d = os.path.join(root, "sql")
    os.makedirs(os.path.join(d, "sqlite"))
    src = os.path.join(etldtest.SQL_DIR, "sqlite")
    for name in os.listdir(src):
        shutil.copy(os.path.join(src, name), os.path.join(d, "sqlite", name))
    with open(os.path.join(d, "sqlite", "copy.sql"), "w") as f:
        f.write(copy_sql)
    return d


EVENTS_COPY = """COPY staging_events FROM {s3.log_data}
    IAM_ROLE {iam.role_arn} REGION {aws.region}
    FORMAT AS JSON {s3.log_jsonpath}
    TIMEFORMAT AS 'epochmillisecs' MANIFEST %s;
"""
SONGS_COPY = """COPY staging_songs FROM {s3.song_data}
    IAM_ROLE {iam.role_arn} REGION {aws.region}
    FORMAT AS JSON 'auto' MANIFEST %s;
"""


def run_job(d, data, wh, sqld, **more):
    sub = d.submit(settings_for(data, wh, **{"daemon.sql_dir": sqld}, **more))
    st = d.wait_job(sub["job"], timeout=60)
    st["_job"] = sub["job"]
    return st


def load_errors(d, job):
    r = etldtest.etlctl(d.sock, "--json", "errors", str(job))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    return out["errors"] if isinstance(out, dict) else out


def count(wh, table):
    with sqlite3.connect(wh) as c:
        return c.execute("SELECT count(*) FROM %s" % table).fetchone()[0]


def load_step(st):
    return etldtest.step_of(st, "load")


def test_rejects_within_maxerror_are_listed(etld, workdir):
    data = make_data(os.path.join(workdir, "data"), bad_events=3)
    sqld = sql_dir(workdir, EVENTS_COPY % "MAXERROR 5" + SONGS_COPY % "")
    wh = os.path.join(workdir, "wh.db")
    st = run_job(etld, data, wh, sqld)
    assert load_step(st)["state"] == "done", json.dumps(st, indent=1)
    assert count(wh, "staging_events") == 10
    errs = load_errors(etld, st["_job"])
    assert len(errs) == 3, errs
    e = errs[0]
    assert e["filename"].endswith("2018-11-02-events.json"), e
    assert e["line_number"] == 6
    assert e["colname"].lower() == "iteminsession"
    assert e["err_code"] == 1207
    assert e["raw_field_value"] == "x0"
    assert "Invalid digit" in e["err_reason"]
    r = etldtest.etlctl(etld.sock, "errors", str(st["_job"]))
    assert r.returncode == 0 and "1207" in r.stdout, r.stdout + r.stderr


def test_maxerror_reached_fails_and_leaves_staging_empty(etld, workdir):
    """MAXERROR 2 with 3 bad records: the second reject reaches it ("Data
    load operations": "the error_count number of errors or greater")."""
    data = make_data(os.path.join(workdir, "data"), bad_events=3)
    sqld = sql_dir(workdir, EVENTS_COPY % "MAXERROR 2" + SONGS_COPY % "")
    wh = os.path.join(workdir, "wh.db")
    st = run_job(etld, data, wh, sqld)
    assert st["state"] == "failed", st
    assert load_step(st)["state"] == "failed"
    assert "MAXERROR is 2" in st["error"] and "2018-11-02-events.json" in st["error"], st
    assert count(wh, "staging_events") == 0  # the COPY is atomic
    errs = load_errors(etld, st["_job"])
    assert [e["err_code"] for e in errs] == [1207, 1207], errs


BAD_INPUTS = {
    # name: (extra files, copy.sql events options, text the job error must contain)
    "truncated object": ({"log_data/2018/11/2018-11-03-events.json": '{"artist": "Mu'},
                         "", ["2018-11-03-events.json", "truncated"]),
    "invalid JSON": ({"log_data/2018/11/2018-11-03-events.json": '{"artist": nope}\n'},
                     "", ["2018-11-03-events.json", "invalid JSON"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_object_fails_naming_it(etld, workdir, case):
    extra, opts, want = BAD_INPUTS[case]
    data = make_data(os.path.join(workdir, "data"), extra=extra)
    sqld = sql_dir(workdir, EVENTS_COPY % opts + SONGS_COPY % "")
    wh = os.path.join(workdir, "wh.db")
    st = run_job(etld, data, wh, sqld)
    assert st["state"] == "failed", st
    for w in want:
        assert w in st["error"], st["error"]
    assert count(wh, "staging_events") == 0


def test_missing_jsonpaths_file(etld, workdir):
    data = make_data(os.path.join(workdir, "data"))
    sqld = sql_dir(workdir, EVENTS_COPY % "" + SONGS_COPY % "")
    wh = os.path.join(workdir, "wh.db")
    st = run_job(etld, data, wh, sqld,
                 **{"s3.log_jsonpath": "file://%s/nope_paths.json" % data})
    assert st["state"] == "failed", st
    assert "JSONPaths" in st["error"] and "nope_paths.json" in st["error"], st["error"]


def test_empty_prefix(etld, workdir):
    data = make_data(os.path.join(workdir, "data"))
    sqld = sql_dir(workdir, EVENTS_COPY % "" + SONGS_COPY % "")
    wh = os.path.join(workdir, "wh.db")
    st = run_job(etld, data, wh, sqld, **{"s3.log_data": "file://%s/log_data/1999" % data})
    assert st["state"] == "failed", st
    assert "no objects found under" in st["error"] and "log_data/1999" in st["error"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_object(etld, workdir):
    data = make_data(os.path.join(workdir, "data"))
    p = os.path.join(data, "log_data", "2018", "11", "2018-11-02-events.json")
    os.chmod(p, 0)
    try:
        sqld = sql_dir(workdir, EVENTS_COPY % "" + SONGS_COPY % "")
        wh = os.path.join(workdir, "wh.db")
        st = run_job(etld, data, wh, sqld)
    finally:
        os.chmod(p, 0o644)
    assert st["state"] == "failed", st
    assert "2018-11-02-events.json" in st["error"], st["error"]
    assert count(wh, "staging_events") == 0


def test_manifest_through_the_daemon(etld, workdir):
    data = make_data(os.path.join(workdir, "data"))
    man = os.path.join(workdir, "events.manifest")
    with open(man, "w") as f:
        json.dump({"entries": [
            {"url": "file://%s/log_data/2018/11/2018-11-02-events.json" % data,
             "mandatory": True},
            {"url": "file://%s/log_data/2018/11/missing.json" % data, "mandatory": False}]}, f)
    sqld = sql_dir(workdir, (EVENTS_COPY % "").replace("{s3.log_data}", "'file://%s'"
                                                                % man) + SONGS_COPY % "")
    wh = os.path.join(workdir, "wh.db")
    st = run_job(etld, data, wh, sqld)
    assert load_step(st)["state"] == "done", json.dumps(st, indent=1)
    assert count(wh, "staging_events") == 5
