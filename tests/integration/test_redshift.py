"""test_redshift.py - the Redshift target (issue 5) without Redshift.

Redshift cannot run here, so these tests pin what etld says to it: rsfake.py
is a server of PostgreSQL's wire protocol that speaks like Redshift's leader
node (TLS, password login, server_version 8.0.2), records every statement
and answers from rules; it executes nothing.  With it:

- golden: every statement of an etl job, in order, equals
  golden/redshift_etl.sql (regenerate with ETLD_GOLDEN_UPDATE=1 and read the
  diff);
- TLS is required by default (a server without TLS is refused) and the URI's
  own sslmode wins;
- a failed COPY fills the job's load errors from STL_LOAD_ERRORS, found by
  the session's pg_backend_pid() and the transaction's SYSDATE read before
  the COPY (through STL_QUERY), as `etlctl errors JOB` shows them;
- every statement etld sends passes rsrules (what the Redshift
  documentation says a cluster refuses): rsfake refuses the others;
- wrong password: a clear error naming user and host, never the password;
- cancel during a COPY sends a cancel request; the job ends cancelled;
- a connection dropped during a COPY is retried, and the COPY runs again;
- COPY's REGION is the staged bucket's when s3.region is empty;
- `warehouse.target = redshift` without a host connects to the endpoint the
  provision job recorded (moto behind the signature-checking proxy), with
  its master user and database, and COPYs with its IAM role.

The Redshift SQL is also checked where it can run: sql/redshift/copy.sql is
carried out by etld's COPY emulator on SQLite, and sql/redshift/transform.sql
and check.sql on PostgreSQL; both must give the expected tables.
"""
import http.client
import json
import os
import re
import shutil
import tempfile
import time

import pytest

import etldtest
import expected
import pgenv
import rsfake
from etldtest import assert_job_succeeded, step_of
from s3env import s3env  # noqa: F401  (the fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden", "redshift_etl.sql")
GOLDEN_INC = os.path.join(HERE, "golden", "redshift_incremental.sql")
PASSWORD = "Rs-Pw-2c91e7-etld"
ROLE = "arn:aws:iam::123456789012:role/etld-redshift-s3-read"
BACKEND_PID, COPY_SINCE = 4242, "2026-12-04 05:40:01.123456"


def password_file(workdir, pw=PASSWORD):
    path = os.path.join(workdir, "db_password")
    with open(path, "w") as f:
        f.write(pw + "\n")
    os.chmod(path, 0o600)
    return path


# The load step lists the sources on S3 and puts its COPY manifests in the
# project bucket: each test's etld talks to this S3 emulator (s3rver behind
# the signature-checking proxy), which holds a small generated tree in
# sparkify-golden and the empty project bucket rs-project.
S3 = {}


def put_tree(port, tree, bucket):
    """Creates bucket and puts every file of tree, straight to the emulator's
    own port (s3rver and moto take unsigned path-style requests)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for b in (bucket, "rs-project"):
            c.request("PUT", "/" + b, body=b"")
            r = c.getresponse()
            r.read()
            assert r.status in (200, 409), (b, r.status)
        for base, _d, files in os.walk(tree):
            for f in sorted(files):
                key = os.path.relpath(os.path.join(base, f), tree)
                with open(os.path.join(base, f), "rb") as fh:
                    c.request("PUT", "/%s/%s" % (bucket, key), body=fh.read())
                r = c.getresponse()
                r.read()
                assert r.status == 200, (key, r.status)
    finally:
        c.close()


def golden_tree():
    tree = tempfile.mkdtemp(prefix="etld-rs-tree-")
    etldtest.generate(os.path.join(tree, "t"), seed=11, songs=4, events=30, days=2)
    return os.path.join(tree, "t")


@pytest.fixture(scope="module", autouse=True)
def rs_s3(s3env):  # noqa: F811
    tree = golden_tree()
    put_tree(s3env.s3rver_port, tree, "sparkify-golden")
    shutil.rmtree(os.path.dirname(tree), ignore_errors=True)
    S3["env"] = s3env
    yield s3env
    S3.clear()


def rs_settings(rs, s3=None, **more):
    s3 = s3 or S3["env"]
    s = {"warehouse.target": "redshift://awsuser@127.0.0.1:%d/dev" % rs.port,
         "iam.role_arn": ROLE,
         "s3.song_data": "s3://sparkify-golden/song_data",
         "s3.log_data": "s3://sparkify-golden/log_data",
         "s3.log_jsonpath": "s3://sparkify-golden/log_json_path.json",
         "s3.region": "us-west-2",
         "aws.endpoint_url_s3": s3.endpoint,
         "stage.bucket": "rs-project",
         "daemon.retry_base_ms": 50}
    s.update(more)
    return s


def rs_daemon(etld_factory, workdir, **kw):
    extra = "[cluster]\ndb_password_file = %s\n" % password_file(workdir)
    kw.setdefault("env", S3["env"].env())
    return etld_factory(conf_extra=extra + kw.pop("conf_extra", ""), **kw)


def answer_like_redshift(rs, copied=24):
    """The rules an etl job needs: whether a COPY was recorded (an INSERT
    into etld_copies for that job and statement was sent: close enough when
    no such insert is ever rolled back), row counts of the COPYs, and every
    check passing."""
    def recorded(m):
        mark = "VALUES (%s, %s," % (m.group(1), m.group(2))
        return [[sum(1 for q in rs.statements() if q.startswith("INSERT INTO etld_copies")
                     and mark in q)]]
    rs.rule(r"FROM etld_copies WHERE job_id = (\d+) AND stmt = (\d+)",
            cols=[("count", rsfake.INT8)], rows=recorded)
    rs.rule(r"^SELECT pg_last_copy_count\(\)$", cols=[("n", rsfake.INT4)], rows=[[copied]])
    rs.rule(r"^SELECT pg_backend_pid\(\), SYSDATE$",
            cols=[("pg_backend_pid", rsfake.INT4), ("sysdate", rsfake.TIMESTAMP)],
            rows=[[BACKEND_PID, COPY_SINCE]])
    rs.rule(r"^SELECT pg_backend_pid\(\)$", cols=[("pg_backend_pid", rsfake.INT4)],
            rows=[[BACKEND_PID]])

    def last_publish(m):
        jobs = [int(x) for q in rs.statements() if q.startswith("INSERT INTO etld_publishes")
                for x in re.findall(r"VALUES \((\d+),", q)]
        return [[max(jobs) if jobs else None]]
    rs.rule(r"^SELECT MAX\(job_id\) FROM etld_publishes$", cols=[("max", rsfake.INT8)],
            rows=last_publish)

    # The plan the load step wrote (etlplan.c's INSERTs), read back as a
    # table would give it: by the load step when it resumes, by publish.
    def inserted(table):
        return [q for q in rs.statements() if q.startswith("INSERT INTO %s " % table)]

    def run_rows(m):
        for q in inserted("etld_run"):
            r = re.search(r"VALUES \(%s, '([^']*)', '((?:[^']|'')*)'\)" % m.group(1), q)
            if r:
                return [[r.group(1), r.group(2).replace("''", "'")]]
        return []

    def plan_rows(m):
        rows = []
        for q in inserted("etld_plan"):
            for t in re.findall(r"\(%s, (\d+), '([^']*)', '([^']*)', (\d+), '([^']*)'\)"
                                % m.group(1), q):
                rows.append((int(t[0]), [t[1], t[2], int(t[3]), t[4]]))
        first, limit = int(m.group(2)), int(m.group(3))
        return [r for seq, r in sorted(rows, key=lambda x: x[0]) if seq >= first][:limit]
    rs.rule(r"^SELECT mode, reason FROM etld_run WHERE job_id = (\d+)$",
            cols=[("mode", rsfake.VARCHAR), ("reason", rsfake.VARCHAR)], rows=run_rows)
    rs.rule(r'^SELECT source, uri, size, "tag" FROM etld_plan WHERE job_id = (\d+) '
            r'AND seq >= (\d+) ORDER BY seq LIMIT (\d+)$',
            cols=[("source", rsfake.VARCHAR), ("uri", rsfake.VARCHAR), ("size", rsfake.INT8),
                  ("tag", rsfake.VARCHAR)], rows=plan_rows)
    rs.rule(r"(?m)^SELECT '([^']+)',", cols=[("name", rsfake.VARCHAR), ("ok", rsfake.INT4),
                                           ("detail", rsfake.VARCHAR)],
            rows=lambda m: [[m.group(1), 1, "fine"]])


@pytest.fixture
def rs():
    with rsfake.Server(password=PASSWORD, tls=True) as s:
        answer_like_redshift(s)
        yield s


def bare(q):
    """A statement without the comment lines that lead it in its file."""
    return re.sub(r"\A(\s*--[^\n]*\n)*\s*", "", q)


def sent(rs):
    return [bare(q) for q in rs.statements()]


def monitor_sessions(rs):
    """The sessions that only read a COPY's progress from STV_LOAD_STATE (a
    second connection of the load step that connects when a COPY lasts over
    2 s, so whether one exists depends on the machine's speed)."""
    queries = {}
    for n, q in rs.log:
        if not q.startswith("SET "):
            queries.setdefault(n, []).append(q)
    return {n for n, qs in queries.items() if all("stv_load_state" in q for q in qs)}


def pinned(rs):
    """Every statement in order, but the progress monitor's
    (test_copy_progress_from_stv_load_state pins its query)."""
    skip = monitor_sessions(rs)
    return [q for n, q in rs.log if n not in skip]


def normalized(statements, job):
    """The job id and the publish time are what change from run to run."""
    out = []
    for q in statements:
        q = re.sub(r"(job_id = |VALUES \(|job-)%d\b" % job, r"\1{job}", q)
        q = re.sub(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d'\)$", "'{time}')", q)
        out.append(q)
    return out


def golden_text(statements):
    return "".join("%s\n;;\n" % q.strip() for q in statements)


def check_golden(path, statements, job):
    got = golden_text(normalized(statements, job))
    if os.environ.get("ETLD_GOLDEN_UPDATE"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(got)
    with open(path) as f:
        want = f.read()
    assert got == want, ("statements differ from %s (ETLD_GOLDEN_UPDATE=1 rewrites it):\n%s"
                         % (path, got))


def project_keys(s3):
    c = http.client.HTTPConnection("127.0.0.1", s3.s3rver_port, timeout=30)
    try:
        c.request("GET", "/rs-project?list-type=2")
        body = c.getresponse().read().decode()
    finally:
        c.close()
    return re.findall(r"<Key>([^<]*)</Key>", body)


def test_golden_statements(etld_factory, workdir, rs):
    d = rs_daemon(etld_factory, workdir)
    job = d.submit(rs_settings(rs))["job"]
    st = d.wait_job(job, timeout=60)
    assert_job_succeeded(st)
    check_golden(GOLDEN, pinned(rs), job)
    # the manifests went to the project bucket and were removed after the load
    assert project_keys(S3["env"]) == []
    # Nothing etld sent is what the Redshift documentation says a cluster
    # refuses (rsrules.py); the session setup used to be (extra_float_digits 3).
    assert rs.refused == [], rs.refused
    # One TLS session per step, as the master user, into the database named.
    assert rs.sessions and all(s["tls"] and s["password_ok"] for s in rs.sessions), rs.sessions
    assert {(s["user"], s["database"]) for s in rs.sessions} == {("awsuser", "dev")}
    # (one per step: the load step plans and copies on one connection)
    assert len(rs.sessions) - len(monitor_sessions(rs)) == 5, rs.sessions
    # The COPY counts became the load step's progress; the checks were kept.
    assert (step_of(st, "load").get("progress") or {}).get("rows") == 48
    assert len(st.get("checks") or []) == 11 and all(c["ok"] for c in st["checks"])
    # The password never reached the log, the journal or the status.
    assert PASSWORD not in d.stderr_text() + json.dumps(st)


def test_golden_incremental(etld_factory, workdir, rs):
    """A full run, then one more log file, then an incremental run: its
    statements (the plan of the one new object, its manifest, the merge)."""
    d = rs_daemon(etld_factory, workdir)
    assert_job_succeeded(d.wait_job(d.submit(rs_settings(rs))["job"], timeout=60))
    first = len(pinned(rs))
    tree = golden_tree()
    extra = os.path.join(os.path.dirname(tree), "more")
    os.makedirs(os.path.join(extra, "log_data", "2018", "11"))
    shutil.copy(os.path.join(tree, "log_data", "2018", "11", "2018-11-02-events.json"),
                os.path.join(extra, "log_data", "2018", "11", "2018-11-03-events.json"))
    put_tree(S3["env"].s3rver_port, extra, "sparkify-golden")
    shutil.rmtree(os.path.dirname(tree), ignore_errors=True)
    job = d.submit(rs_settings(rs, **{"etl.mode": "incremental"}))["job"]
    st = d.wait_job(job, timeout=60)
    assert_job_succeeded(st)
    load = step_of(st, "load")
    assert "1 new objects (1 log_data, 0 song_data)" in json.dumps(load), load
    statements = pinned(rs)[first:]
    assert sum(1 for q in statements if bare(q).startswith("COPY")) == 1, statements
    # from the load step on (create-tables sends what test_golden_statements pins)
    i = next(i for i, q in enumerate(statements) if "FROM etld_run WHERE" in q)
    statements = statements[i - 1:]
    check_golden(GOLDEN_INC, statements, job)
    assert project_keys(S3["env"]) == []
    assert rs.refused == [], rs.refused  # rsrules.py: nothing a cluster refuses


def test_tls_required_by_default(etld_factory, workdir):
    with rsfake.Server(password=PASSWORD, tls=False) as rs:
        answer_like_redshift(rs)
        d = rs_daemon(etld_factory, workdir)
        job = d.submit(rs_settings(rs))["job"]
        st = d.wait_job(job, timeout=60)
        assert st["state"] == "failed", st
        assert "SSL" in st["error"] and "127.0.0.1" in st["error"], st["error"]
        assert rs.statements() == []
        # The URI's own sslmode wins: disable talks in the clear.
        job = d.submit(rs_settings(
            rs, **{"warehouse.target": "redshift://awsuser@127.0.0.1:%d/dev?sslmode=disable"
                   % rs.port}))["job"]
        assert_job_succeeded(d.wait_job(job, timeout=60))
        assert rs.sessions and not any(s["tls"] for s in rs.sessions)


STL_ROWS = [["s3://sparkify-golden/log_data/2018/11/2018-11-01-events.json   ", 7,
             "sessionid   ", "int4      ", 123, '{"sessionId": "x12"}', "x12", 1207,
             "Invalid digit, Value 'x', Pos 0, Type: Integer   "],
            ["s3://sparkify-golden/log_data/2018/11/2018-11-02-events.json   ", 3,
             "ts   ", "timestamp  ", 0, '{"ts": "soon"}', "soon", 1206,
             "Invalid timestamp format or value   "]]
STL_COLS = [(n, t) for n, t in (("filename", rsfake.VARCHAR), ("line_number", rsfake.INT8),
                                ("colname", rsfake.VARCHAR), ("type", rsfake.VARCHAR),
                                ("position", rsfake.INT4), ("raw_line", rsfake.VARCHAR),
                                ("raw_field_value", rsfake.VARCHAR), ("err_code", rsfake.INT4),
                                ("err_reason", rsfake.VARCHAR))]


def test_failed_copy_reads_stl_load_errors(etld_factory, workdir, rs):
    rs.rule(r"(?m)^COPY staging_events", error=(
        "XX000", "Load into table 'staging_events' failed.  Check 'stl_load_errors' system "
        "table for details."))
    rs.rule(r"FROM stl_load_errors WHERE query IN \(SELECT query FROM stl_query "
            r"WHERE pid = %d AND starttime >= '%s'\)" % (BACKEND_PID, re.escape(COPY_SINCE)),
            cols=STL_COLS, rows=STL_ROWS)
    d = rs_daemon(etld_factory, workdir)
    job = d.submit(rs_settings(rs))["job"]
    st = d.wait_job(job, timeout=60)
    assert st["state"] == "failed", st
    assert "stl_load_errors" in step_of(st, "load")["error"], st
    qs = sent(rs)
    i = next(i for i, q in enumerate(qs) if q.startswith("COPY staging_events"))
    # The marker was read in the COPY's transaction, before it; the lookup
    # after the rollback uses it, not pg_last_copy_id() (whose page speaks
    # of the most recently completed COPY only).
    # BEGIN, the session asked once for the progress monitor (before the
    # first COPY), then the driver's pid and start for STL_LOAD_ERRORS
    before = [q for q in qs[i - 3:i] if q != "SELECT pg_backend_pid()"]
    assert before[-2:] == ["BEGIN", "SELECT pg_backend_pid(), SYSDATE"], qs[i - 3:i]
    assert qs[i + 1] == "ROLLBACK" and "stl_load_errors" in qs[i + 2], qs[i:i + 3]
    assert qs[i + 2] == (
        "SELECT filename, line_number, colname, type, position, raw_line, raw_field_value, "
        "err_code, err_reason FROM stl_load_errors WHERE query IN (SELECT query FROM stl_query "
        "WHERE pid = %d AND starttime >= '%s') ORDER BY query, line_number, colname LIMIT 1000"
        % (BACKEND_PID, COPY_SINCE)), qs[i + 2]
    # Not a transient error: the COPY was sent once.
    assert sum(q.startswith("COPY staging_events") for q in qs) == 1
    r = etldtest.etlctl(d.sock, "errors", str(job), "--json")
    assert r.returncode == 0, r.stderr
    errs = json.loads(r.stdout)
    errs = errs.get("errors", errs) if isinstance(errs, dict) else errs
    assert [(e["filename"], e["line_number"], e["colname"], e["err_code"], e["err_reason"])
            for e in errs] == [
        ("s3://sparkify-golden/log_data/2018/11/2018-11-01-events.json", 7, "sessionid", 1207,
         "Invalid digit, Value 'x', Pos 0, Type: Integer"),
        ("s3://sparkify-golden/log_data/2018/11/2018-11-02-events.json", 3, "ts", 1206,
         "Invalid timestamp format or value")], errs
    text = etldtest.etlctl(d.sock, "errors", str(job)).stdout
    assert "Invalid digit" in text and "sessionid" in text and "1207" in text, text


def test_wrong_password_is_clear(etld_factory, workdir):
    with rsfake.Server(password="not-" + PASSWORD, tls=True) as rs:
        d = rs_daemon(etld_factory, workdir)
        job = d.submit(rs_settings(rs))["job"]
        st = d.wait_job(job, timeout=60)
        assert st["state"] == "failed", st
        assert "password authentication failed" in st["error"], st["error"]
        assert "awsuser@127.0.0.1:%d/dev" % rs.port in st["error"], st["error"]
        assert PASSWORD not in json.dumps(st) + d.stderr_text()


def test_unreadable_password_file_is_clear(etld_factory, workdir, rs):
    d = etld_factory(conf_extra="[cluster]\ndb_password_file = %s/no-such-file\n" % workdir)
    job = d.submit(rs_settings(rs))["job"]
    st = d.wait_job(job, timeout=30)
    assert st["state"] == "failed", st
    assert "cannot read the master password file %s/no-such-file" % workdir in st["error"], st
    assert rs.sessions == []


# The query that reads a running COPY's progress: pinned, as the golden files
# pin the rest.
LOAD_STATE = ("SELECT COALESCE(SUM(bytes_loaded), 0), COALESCE(SUM(lines), 0) FROM "
              "stv_load_state WHERE session = %d" % BACKEND_PID)


def test_copy_progress_from_stv_load_state(etld_factory, workdir, rs):
    """While Redshift runs a COPY (here: answered 6 s later), etld reads its
    progress from STV_LOAD_STATE on a second connection every 2 s and shows
    it as the load step's bytes and rows."""
    answer_like_redshift(rs)
    rs.rule(r"(?m)^COPY staging_events", delay=6, times=1)
    rs.rule(r"^SELECT COALESCE\(SUM\(bytes_loaded\), 0\)", cols=[("b", rsfake.INT8),
            ("l", rsfake.INT8)], rows=[[123456, 789]])
    d = rs_daemon(etld_factory, workdir)
    job = d.submit(rs_settings(rs))["job"]
    seen = None
    deadline = time.time() + 30
    while time.time() < deadline:
        prog = (etldtest.step_of(d.status(job), "load") or {}).get("progress") or {}
        if prog.get("bytes") == 123456:
            seen = prog
            break
        time.sleep(0.2)
    assert seen and seen["rows"] == 789, seen
    st = d.wait_job(job, timeout=60)
    etldtest.assert_job_succeeded(st)
    assert LOAD_STATE in sent(rs), [q for q in sent(rs) if "stv_load_state" in q]
    # once the COPY ended, its own count wins
    load = etldtest.step_of(st, "load")
    assert load["progress"]["rows"] == 24 * 2, load


def test_cancel_during_copy(etld_factory, workdir, rs):
    rs.rule(r"(?m)^COPY staging_events", block=True)
    d = rs_daemon(etld_factory, workdir)
    job = d.submit(rs_settings(rs))["job"]
    d.wait_step(job, "load", pred=lambda s: any(q.startswith("COPY staging_events")
                                                 for q in sent(rs)))
    r = etldtest.etlctl(d.sock, "cancel", str(job))
    assert r.returncode == 0, r.stderr
    st = d.wait_job(job, timeout=30)
    assert st["state"] == "cancelled", st
    assert rs.cancels >= 1
    qs = sent(rs)
    i = next(i for i, q in enumerate(qs) if q.startswith("COPY staging_events"))
    assert not any(q.startswith("INSERT INTO etld_copies") for q in qs[i:]), qs[i:]
    # Rolled back: by a ROLLBACK, or by ending the session (Terminate)
    # without a COMMIT after the COPY.
    session = next(n for n, q in rs.log if bare(q).startswith("COPY staging_events"))
    mine = [bare(q) for n, q in rs.log if n == session]
    after = mine[next(k for k, q in enumerate(mine) if q.startswith("COPY staging_events")) + 1:]
    assert "COMMIT" not in after, after
    assert "ROLLBACK" in after or rs.sessions[session]["terminated"], (after, rs.sessions[session])


def test_dropped_connection_retries_the_copy(etld_factory, workdir, rs):
    rs.rule(r"(?m)^COPY staging_songs", drop=True, times=1)
    d = rs_daemon(etld_factory, workdir)
    job = d.submit(rs_settings(rs))["job"]
    st = d.wait_job(job, timeout=60)
    assert_job_succeeded(st)
    assert step_of(st, "load")["attempts"] == 2, step_of(st, "load")
    qs = sent(rs)
    assert sum(q.startswith("COPY staging_songs") for q in qs) == 2
    assert sum(q.startswith("INSERT INTO etld_copies") for q in qs) == 2, qs


def test_target_from_provision_outputs(etld_factory, workdir, rs):
    motoenv_mod = pytest.importorskip("motoenv")
    why = motoenv_mod.missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    env = motoenv_mod.MotoEnv(workdir)
    try:
        pw = password_file(workdir)
        extra = ("[aws]\nregion = us-west-2\nendpoint_url = %s\n"
                 "[cluster]\ndb_password_file = %s\nnodes = 2\npoll_interval_ms = 100\n"
                 "port = %d\n" % (env.endpoint, pw, rs.port))
        d = etld_factory(conf_extra=extra, env=env.env())
        prov = d.submit({"cluster.identifier": "etld-rs-target"}, pipeline="provision")["job"]
        st = d.wait_job(prov, timeout=90)
        assert st["state"] == "succeeded", st
        out = {}
        for s in st["steps"]:
            out.update(s.get("outputs") or {})
        # moto's endpoint name does not resolve here; hostaddr says where it is.
        # The sources and the project bucket on moto's S3, reached on moto's
        # own port: the signature-checking proxy in front of moto serves IAM,
        # EC2 and Redshift (this test is about the provisioned target).
        tree = golden_tree()
        put_tree(env.moto_port, tree, "sparkify-golden")
        moto_s3 = type("MotoS3", (), {"endpoint": "http://127.0.0.1:%d" % env.moto_port})
        settings = rs_settings(rs, s3=moto_s3, **{"warehouse.target": "redshift://?hostaddr=127.0.0.1",
                                              "iam.role_arn": ""})
        job = d.submit(settings)["job"]
        assert_job_succeeded(d.wait_job(job, timeout=60))
        assert {(s["user"], s["database"]) for s in rs.sessions} == {("awsuser", "dev")}
        copies = [q for q in sent(rs) if q.startswith("COPY")]
        assert len(copies) == 2 and all("IAM_ROLE '%s'" % out["role_arn"] in q for q in copies)
        # After teardown the recorded cluster is gone: a clear error, no connection.
        td = d.submit({"cluster.identifier": "etld-rs-target"}, pipeline="teardown")["job"]
        st = d.wait_job(td, timeout=90)
        assert st["state"] == "succeeded", st
        n = len(rs.sessions)
        job = d.submit(settings)["job"]
        st = d.wait_job(job, timeout=60)
        assert st["state"] == "failed" and "deleted by teardown job %d" % td in st["error"], st
        assert len(rs.sessions) == n
    finally:
        env.stop()


def test_target_without_host_and_no_provision(etld_factory, workdir, rs):
    d = rs_daemon(etld_factory, workdir)
    job = d.submit(rs_settings(rs, **{"warehouse.target": "redshift"}))["job"]
    st = d.wait_job(job, timeout=30)
    assert st["state"] == "failed" and "no provision job" in st["error"], st
    job = d.submit(rs_settings(rs, **{"iam.role_arn": ""}))["job"]
    st = d.wait_job(job, timeout=30)
    assert st["state"] == "failed" and "role_arn" in st["error"], st
    assert rs.sessions == []


def test_copy_region_is_the_staged_buckets(etld_factory, workdir, rs, s3env):  # noqa: F811
    """With s3.region empty, COPY's REGION is the region the stage job
    recorded for the project bucket when the sources are in it, else
    aws.region."""
    from test_stage import settings as stage_settings
    from test_stage import upload_tree
    tree = os.path.join(workdir, "tree")
    etldtest.generate(tree, seed=3, songs=5, events=20, days=1)
    upload_tree(s3env, tree, "rsregsrc")
    d = rs_daemon(etld_factory, workdir, env=s3env.env())
    st = d.wait_job(d.submit(stage_settings(s3env, "rsregdst", src="rsregsrc"),
                             pipeline="stage")["job"], timeout=60)
    assert st["state"] == "succeeded", st
    staged = {"s3.song_data": "s3://rsregdst/song_data", "s3.log_data": "s3://rsregdst/log_data",
              "s3.log_jsonpath": "s3://rsregdst/log_json_path.json", "s3.region": "",
              "aws.region": "eu-north-1"}
    assert_job_succeeded(d.wait_job(d.submit(rs_settings(rs, **staged))["job"], timeout=60))
    put_tree(s3env.s3rver_port, tree, "elsewhere")
    other = dict(staged, **{"s3.log_data": "s3://elsewhere/log_data"})
    assert_job_succeeded(d.wait_job(d.submit(rs_settings(rs, **other))["job"], timeout=60))
    regions = [re.search(r"REGION '([^']*)'", q).group(1) for q in sent(rs)
               if q.startswith("COPY staging_events")]
    assert regions == [s3env.region, "eu-north-1"], regions


# ---- the Redshift SQL where it can run ------------------------------------


def sql_dir_with(workdir, dialect, files):
    """A copy of sql/ whose <dialect>/ has these files of sql/redshift."""
    d = os.path.join(workdir, "sql")
    shutil.copytree(etldtest.SQL_DIR, d)
    for name in files:
        shutil.copy(os.path.join(etldtest.SQL_DIR, "redshift", name),
                    os.path.join(d, dialect, name))
    return d


def test_redshift_copy_text_on_the_emulator(etld_factory, workdir, small_data):
    """sql/redshift/copy.sql, carried out by the COPY emulator on SQLite."""
    sql = sql_dir_with(workdir, "sqlite", ["copy.sql"])
    d = etld_factory(data_dir=small_data, conf_extra="[daemon]\nsql_dir = %s\n" % sql)
    wh = os.path.join(workdir, "wh.db")
    job = d.submit(etldtest.settings_for(small_data, wh, **{"iam.role_arn": ROLE}))["job"]
    assert_job_succeeded(d.wait_job(job, timeout=120))
    exp = expected.for_data_dir(small_data)
    got = expected.dump(wh)
    bad = [t for t in exp if expected.diff_table(t, got[t][0], got[t][1], exp[t])]
    assert not bad, bad


def test_redshift_transform_and_checks_on_postgres(etld_factory, workdir, small_data):
    why = pgenv.Server.available()
    if why:
        pytest.skip(why)
    sql = sql_dir_with(workdir, "postgres", ["transform.sql", "check.sql", "publish.sql"])
    with pgenv.Server() as pg:
        pg.psql("CREATE DATABASE rs OWNER %s" % pgenv.USER, db="postgres")
        # A stand-in for Redshift's SVV_TABLE_INFO (r_SVV_TABLE_INFO.html),
        # with one skewed table: the skew check warns, the job succeeds.
        pg.psql("CREATE VIEW svv_table_info AS SELECT CAST(t AS VARCHAR(128)) AS \"table\", "
                "CAST(s AS NUMERIC(13,2)) AS skew_rows FROM (VALUES ('etld_new_songplays', 9.5), "
                "('songs', 1), ('staging_events', 1.02)) v (t, s); "
                "GRANT SELECT ON svv_table_info TO %s" % pgenv.USER, db="rs")
        d = etld_factory(conf_extra="password = %s\n[daemon]\nsql_dir = %s\n"
                         % (pgenv.PASSWORD, sql))
        s = etldtest.settings_for(small_data, "/nonexistent.db")
        s["warehouse.target"] = pg.uri(db="rs")
        job = d.submit(s)["job"]
        st = d.wait_job(job, timeout=120)
        assert_job_succeeded(st)
        assert len(st["checks"]) == 11 and all(c["ok"] for c in st["checks"]), st["checks"]
        skew = [c for c in st["checks"] if c["name"] == "distribution skew"]
        assert skew and skew[0]["detail"] == (
            "warning: a slice holds over 4 times the rows of another; skew_rows: "
            "staging_events 1.02, staging_songs -, etld_new_songplays 9.50, "
            "etld_new_songs -, songplays -, songs 1.00"), skew
        exp = expected.for_data_dir(small_data)
        bad = []
        for t, cols in expected.COLUMNS.items():
            dd = expected.diff_table(t, cols, pg.dump(t, cols, "rs"), exp[t])
            if dd:
                bad.append(dd)
        assert not bad, "\n".join(bad)
