"""test_postgres.py - the etl pipeline into a real PostgreSQL (issue 5).

A server is started for this module (pgenv.py: initdb as the postgres user in
a temporary directory, Unix socket + 127.0.0.1 on a free port) and each test
gets its own database, so job ids of fresh daemons never meet an old
etld_copies row.  etld connects over TCP as the role `etld` with a password
(scram-sha-256) given as warehouse.password in its configuration file (a
secret is not kept with the job, so a resumed job needs it from there).

- every table equals expected.py's and the same job's result on SQLite,
  from file:// and from s3:// (s3rver behind the signature-checking proxy);
- cancel during a long COPY: the job ends cancelled, staging_events stays
  empty (the COPY was rolled back), no etld backend is left, and etld
  answers its socket at once while the COPY runs;
- cancel during a long COPY from s3:// (objects held back by the proxy):
  the job is cancelled in under a second and nothing is left open: no etld
  backend, none of the transfers that were running (etld holds no socket
  to the proxy they were on), no pool job (etld's threads idle);
- pg_terminate_backend of etld's connection mid-COPY: the step is retried
  (transient) and the result is exact: every table equals an uninterrupted
  run's (compared by a fingerprint the server computes);
- kill -9 of etld mid-COPY: it resumes and the result is exact, likewise;
- wrong password, a refused port, a server that never answers, a bad URI:
  clear errors naming user and host, never the password;
- statement_timeout and TLS settings come from the URI (libpq's own).
"""
import json
import os
import re
import shutil
import socket
import threading
import time

import pytest

import etldtest
import expected
import pgenv
from etldtest import assert_job_succeeded, settings_for, step_of
from s3env import s3env  # noqa: F401  (the fixture)

MID_EVENTS = int(os.environ.get("ETLD_TEST_PG_EVENTS", "100000"))


@pytest.fixture(scope="module")
def pg():
    why = pgenv.Server.available()
    if why:
        pytest.skip(why)
    s = pgenv.Server()
    try:
        s.start()
    except RuntimeError as e:
        s.stop()
        pytest.fail("cannot start PostgreSQL: %s" % e)
    yield s
    s.stop()


@pytest.fixture
def db(pg, request):
    name = "t_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    pg.psql("DROP DATABASE IF EXISTS %s" % name, db="postgres")
    pg.psql("CREATE DATABASE %s OWNER %s" % (name, pgenv.USER), db="postgres")
    return name


@pytest.fixture(scope="module")
def mid_data(binaries, tmp_path_factory):
    """Enough events that the staging_events COPY runs for a good part of a
    second: long enough to be caught running."""
    d = os.path.join(str(tmp_path_factory.mktemp("pgmid")), "data")
    etldtest.generate(d, seed=5, songs=1000, events=MID_EVENTS, days=20)
    return d


@pytest.fixture(scope="module")
def mid_reference(pg, mid_data):
    """An uninterrupted run of mid_data: each table's fingerprint, what the
    interrupted runs must end with (DESIGN.md: compare with an uninterrupted
    run; the row-by-row comparison with expected.py and SQLite is
    test_etl_same_as_sqlite's)."""
    db = "ref_mid"
    pg.psql("DROP DATABASE IF EXISTS %s" % db, db="postgres")
    pg.psql("CREATE DATABASE %s OWNER %s" % (db, pgenv.USER), db="postgres")
    d = etldtest.Daemon(etldtest.short_tmpdir(), conf_extra="password = %s\n" % pgenv.PASSWORD)
    try:
        d.start()
        job = d.submit(pg_settings(pg, db, mid_data))["job"]
        assert_job_succeeded(d.wait_job(job, timeout=180))
    except BaseException:
        print("---- reference etld stderr ----\n" + d.stderr_tail(100))
        raise
    finally:
        d.stop()
    fp = fingerprints(pg, db)
    # What was staged is every record (one per line in these files).
    for table, folder in (("staging_events", "log_data"), ("staging_songs", "song_data")):
        n = 0
        for dirpath, _, files in os.walk(os.path.join(mid_data, folder)):
            for name in files:
                with open(os.path.join(dirpath, name), "rb") as f:
                    n += sum(1 for line in f if line.strip())
        assert fp[table][0] == n, "reference run: %s has %d rows, the files %d records" % (
            table, fp[table][0], n)
    return fp


def fingerprints(pg, db):
    return {t: pg.fingerprint(t, cols, db) for t, cols in expected.COLUMNS.items()}


def assert_same_as_reference(pg, db, ref):
    got = fingerprints(pg, db)
    bad = {t: (got[t], ref[t]) for t in ref if got[t] != ref[t]}
    assert not bad, "tables differ from an uninterrupted run ((rows, md5) got, want): %s" % bad


def pg_daemon(etld_factory, **kw):
    """An etld whose configuration holds the role's password."""
    return etld_factory(conf_extra="password = %s\n" % pgenv.PASSWORD, **kw)


def pg_settings(pg, db, data_dir, **more):
    s = settings_for(data_dir, "/nonexistent.db")
    s["warehouse.target"] = pg.uri(db=db)
    s.update(more)
    return s


def assert_pg_equals(pg, db, data_dir, sqlite_wh=None):
    exp = expected.for_data_dir(data_dir)
    lite = expected.dump(sqlite_wh) if sqlite_wh else None
    problems = []
    for t, cols in expected.COLUMNS.items():
        rows = pg.dump(t, cols, db)
        d = expected.diff_table(t, cols, rows, exp[t])
        if d:
            problems.append("vs expected.py: " + d)
        if lite:
            d = expected.diff_table(t, cols, rows, lite[t][1])
            if d:
                problems.append("vs SQLite: " + d)
    assert not problems, "PostgreSQL database %s differs:\n%s" % (db, "\n".join(problems))


def wait_copy(pg, db, timeout=60.0):
    """The pid of etld's backend once it runs a COPY into staging_events."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = pg.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'etld' "
                      "AND datname = '%s' AND state = 'active' "
                      "AND query LIKE 'COPY \"staging_events\"%%'" % db, db="postgres").split()
        if out:
            return int(out[0])
        time.sleep(0.01)
    raise AssertionError("etld never ran COPY staging_events in %s" % db)


def wait_no_backend(pg, db, timeout=10.0):
    deadline = time.monotonic() + timeout
    left = None
    while time.monotonic() < deadline:
        left = pg.etld_backends(db)
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError("etld backends left in %s: %s" % (db, left))


def all_text(d, job):
    """Everything etld keeps or says about a job: status, log, journal files."""
    parts = [json.dumps(d.status(job)), d.stderr_text()]
    for name in os.listdir(d.state):
        with open(os.path.join(d.state, name), "rb") as f:
            parts.append(f.read().decode("latin-1"))
    return "\n".join(parts)


# ---- results ---------------------------------------------------------------


@pytest.mark.parametrize("data", ["small_data", "edge_data"])
def test_etl_same_as_sqlite(etld_factory, pg, db, data, request, workdir):
    data_dir = request.getfixturevalue(data)
    d = pg_daemon(etld_factory)
    job = d.submit(pg_settings(pg, db, data_dir))["job"]
    st = d.wait_job(job, timeout=120)
    assert_job_succeeded(st)
    lite_wh = os.path.join(workdir, "wh.db")
    lite = d.submit(settings_for(data_dir, lite_wh))["job"]
    assert_job_succeeded(d.wait_job(lite, timeout=120))
    assert_pg_equals(pg, db, data_dir, lite_wh)
    # The load step counted what it staged; the COPYs were recorded.
    exp = expected.for_data_dir(data_dir)
    rows = (step_of(st, "load").get("progress") or {}).get("rows")
    assert rows == len(exp["staging_events"]) + len(exp["staging_songs"]), step_of(st, "load")
    assert pg.scalar("SELECT COUNT(*) FROM etld_copies WHERE job_id = %d" % job, db) == 2
    wait_no_backend(pg, db)


def test_etl_from_s3_same_as_sqlite(etld_factory, pg, db, small_data, workdir,
                                    s3env):  # noqa: F811
    """The sources on S3 (s3rver behind the signature-checking proxy): the
    PostgreSQL tables equal expected.py's and those of the same job on
    SQLite."""
    from test_stage import etl_settings, upload_tree
    upload_tree(s3env, small_data, "pgsrc")
    d = pg_daemon(etld_factory, env=s3env.env())
    job = d.submit(etl_settings(s3env, "/nonexistent.db", bucket="pgsrc",
                                **{"warehouse.target": pg.uri(db=db)}))["job"]
    st = d.wait_job(job, timeout=120)
    assert_job_succeeded(st)
    objects = sum(len(f) for p, _, f in os.walk(os.path.join(small_data, "log_data")))
    objects += sum(len(f) for p, _, f in os.walk(os.path.join(small_data, "song_data")))
    assert step_of(st, "load")["progress"]["objects"] == objects, step_of(st, "load")
    lite_wh = os.path.join(workdir, "wh.db")
    job = d.submit(etl_settings(s3env, lite_wh, bucket="pgsrc"))["job"]
    assert_job_succeeded(d.wait_job(job, timeout=120))
    assert_pg_equals(pg, db, small_data, lite_wh)


def test_copy_text_encoding(etld_factory, pg, db, edge_data, workdir):
    """Values COPY's text format must escape or spell exactly: tab, newline,
    carriage return, backslash, a literal \\N, quotes, UTF-8; doubles at the
    edges of their range, -0.0, integers past 2^53, many digits."""
    data = os.path.join(workdir, "data")
    os.makedirs(os.path.join(data, "song_data", "A", "B", "C"))
    shutil.copytree(os.path.join(edge_data, "log_data"), os.path.join(data, "log_data"))
    shutil.copy(os.path.join(edge_data, "log_json_path.json"), data)
    titles = ["tab\there", "new\nline", "cr\rx", "back\\slash", "\\N", "\\", "trail\\",
              'quo"te\'s', "caf\u00e9 \U0001f600 \u4e2d", "", "  ", "a\\tb\\nc"]
    doubles = [0.1, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 123456789.12345679,
               2.5e-10, 218.93179, 1e22, 3.0, -427.02362, 9007199254740993.0]
    for i, (title, dur) in enumerate(zip(titles, doubles)):
        rec = {"num_songs": 1, "artist_id": "AR%02d\t" % i, "artist_latitude": dur,
               "artist_longitude": -dur, "artist_location": title[::-1],
               "artist_name": "Artist\\%d" % i, "song_id": "SO%02d" % i, "title": title,
               "duration": dur, "year": 2000 + i}
        with open(os.path.join(data, "song_data", "A", "B", "C", "TR%04d.json" % i), "w",
                  encoding="utf-8") as f:
            json.dump(rec, f, ensure_ascii=(i % 2 == 0))
    d = pg_daemon(etld_factory)
    assert_job_succeeded(d.wait_job(d.submit(pg_settings(pg, db, data))["job"]))
    lite_wh = os.path.join(workdir, "wh.db")
    assert_job_succeeded(d.wait_job(d.submit(settings_for(data, lite_wh))["job"]))
    assert_pg_equals(pg, db, data, lite_wh)
    got = dict((r[0], r[1]) for r in pg.dump("staging_songs", ["song_id", "title"], db))
    assert [got["SO%02d" % i] for i in range(len(titles))] == titles


def test_password_from_passfile(etld_factory, pg, db, edge_data, workdir):
    """No warehouse.password: libpq's passfile (PGPASSFILE) is used."""
    pgpass = os.path.join(workdir, "pgpass")
    with open(pgpass, "w") as f:
        f.write("127.0.0.1:%d:*:%s:%s\n" % (pg.port, pgenv.USER, pgenv.PASSWORD))
    os.chmod(pgpass, 0o600)
    d = etld_factory(env={"PGPASSFILE": pgpass})
    job = d.submit(pg_settings(pg, db, edge_data))["job"]
    assert_job_succeeded(d.wait_job(job))
    assert_pg_equals(pg, db, edge_data)


# ---- interruptions ---------------------------------------------------------


def test_cancel_during_copy(etld_factory, pg, db, mid_data):
    d = pg_daemon(etld_factory)
    job = d.submit(pg_settings(pg, db, mid_data))["job"]
    wait_copy(pg, db)
    # The loop is not blocked by the COPY: etld answers at once.
    t0 = time.monotonic()
    with d.conn() as c:
        assert c.result("status", {"job": job})["state"] == "running"
    answer = time.monotonic() - t0
    t0 = time.monotonic()
    assert d.rpc("cancel", {"job": job})["state"] in ("cancelling", "cancelled")
    st = d.wait_job(job, timeout=30)
    took = time.monotonic() - t0
    assert st["state"] == "cancelled", st
    assert step_of(st, "load")["state"] == "cancelled", st["steps"]
    assert took < 5, "cancel took %.1f s" % took
    assert answer < 1.0, "status took %.2f s during the COPY" % answer
    # The COPY was rolled back: staging_events is as create-tables left it.
    assert pg.scalar("SELECT COUNT(*) FROM staging_events", db) == 0
    assert pg.scalar("SELECT COUNT(*) FROM etld_copies", db) == 0
    wait_no_backend(pg, db)


def tcp_sockets(pid, remote_port):
    """{local port: state} of the TCP sockets process pid holds to
    127.0.0.1:remote_port (its fds' inodes looked up in /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                parts = line.split()
                local, remote, state, inode = parts[1], parts[2], parts[3], parts[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                    out[int(local.rsplit(":", 1)[1], 16)] = state
    return out


def cpu_ticks(pid):
    """utime + stime of every thread of pid, in clock ticks."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def test_cancel_during_copy_from_s3(etld_factory, pg, db, small_data, s3env):  # noqa: F811
    """Issue 13: cancel during a COPY from s3:// into PostgreSQL returns in
    under 1 s with nothing left open.  Every second log_data object is held
    back 30 s by the proxy, so the COPY into staging_events is open and
    waiting on transfers when the cancel comes."""
    from test_stage import etl_settings, upload_tree
    upload_tree(s3env, small_data, "pgcancel")
    s3env.reset()
    s3env.faults([{"fault": "latency", "match": "^GET /pgcancel/log_data/", "every": 2,
                   "ms": 30000}])
    proxy_port = int(s3env.endpoint.rsplit(":", 1)[1])
    d = pg_daemon(etld_factory, env=s3env.env())
    job = d.submit(etl_settings(s3env, "/nonexistent.db", bucket="pgcancel",
                                **{"warehouse.target": pg.uri(db=db),
                                   "load.concurrency": "4"}))["job"]
    wait_copy(pg, db)
    # Held: a log_data request the proxy is still handling 0.3 s later (a
    # request that is not held is active for a few ms while it is forwarded,
    # and its connection then rightly stays in the HTTP engine's cache).
    def log_data_active():
        return {int(p): r for p, r in s3env.stats()["active"].items() if "/log_data/" in r}

    deadline = time.monotonic() + 30
    held = {}
    while time.monotonic() < deadline and not held:
        first = log_data_active()
        time.sleep(0.3)
        later = log_data_active()
        held = {p: r for p, r in later.items() if first.get(p) == r}
    assert held, "no log_data transfer was held by the proxy"
    mine = tcp_sockets(d.pid, proxy_port)
    assert set(held) & set(mine), ("the held transfers %s are not etld's sockets %s"
                                   % (held, mine))
    t0 = time.monotonic()
    assert d.rpc("cancel", {"job": job})["state"] in ("cancelling", "cancelled")
    st = d.wait_job(job, timeout=30)
    took = time.monotonic() - t0
    assert st["state"] == "cancelled", st
    assert step_of(st, "load")["state"] == "cancelled", st["steps"]
    print("cancel from s3:// took %.3f s with %d transfers held" % (took, len(held)))
    assert took < 1.0, "cancel took %.2f s" % took
    # The transfers that were running are closed (idle connections of the
    # HTTP engine may stay); the proxy still holds their requests.
    left = set(held) & set(tcp_sockets(d.pid, proxy_port))
    assert not left, "etld still has the sockets of transfers %s (states %s)" % (
        {p: held[p] for p in left}, tcp_sockets(d.pid, proxy_port))
    # No backend: the connection was closed, not left idle.
    wait_no_backend(pg, db, timeout=1.0)
    assert pg.scalar("SELECT COUNT(*) FROM staging_events", db) == 0
    assert pg.scalar("SELECT COUNT(*) FROM etld_copies", db) == 0
    # No pool job: etld's threads use (next to) no CPU once the job ended.
    before = cpu_ticks(d.pid)
    time.sleep(0.5)
    used = cpu_ticks(d.pid) - before
    assert used <= 5, "etld used %d ticks of CPU in 0.5 s after the cancel" % used
    assert "cancelled by request" in json.dumps(d.status(job))
    s3env.reset()


def test_terminate_backend_mid_copy(etld_factory, pg, db, mid_data, mid_reference):
    d = pg_daemon(etld_factory)
    job = d.submit(pg_settings(pg, db, mid_data, **{"daemon.retry_base_ms": "50"}))["job"]
    pid = wait_copy(pg, db)
    assert pg.scalar("SELECT pg_terminate_backend(%d)::int" % pid, "postgres") == 1
    st = d.wait_job(job, timeout=180)
    assert_job_succeeded(st)
    load = step_of(st, "load")
    assert load["attempts"] == 2, load
    assert "lost" in d.stderr_text(), "the lost connection was not reported"
    assert_same_as_reference(pg, db, mid_reference)


def test_kill9_mid_copy_resumes(etld_factory, pg, db, mid_data, mid_reference):
    d = pg_daemon(etld_factory, max_jobs=1)
    job = d.submit(pg_settings(pg, db, mid_data))["job"]
    wait_copy(pg, db)
    d.kill9()
    d.start()
    st = d.wait_job(job, timeout=180)
    assert_job_succeeded(st)
    assert step_of(st, "create-tables")["attempts"] == 1, st["steps"]
    assert_same_as_reference(pg, db, mid_reference)
    wait_no_backend(pg, db)


# ---- connection errors -----------------------------------------------------


def failed_job(d, settings):
    job = d.submit(settings)["job"]
    st = d.wait_job(job, timeout=60)
    assert st["state"] == "failed", st
    return job, st


def test_wrong_password(etld_factory, pg, db, edge_data):
    d = etld_factory()
    wrong = "Wrong-Pw-%d" % os.getpid()
    job, st = failed_job(d, pg_settings(pg, db, edge_data, **{"warehouse.password": wrong}))
    err = st["error"]
    assert "password authentication failed" in err, err
    assert "etld@127.0.0.1:%d/%s" % (pg.port, db) in err, err
    s = step_of(st, "create-tables")
    assert s["state"] == "failed" and s["attempts"] == 1, s  # not retried
    assert wrong not in all_text(d, job)


def test_password_in_uri(etld_factory, pg, db, edge_data):
    secret = "UriSecret%d" % os.getpid()
    bad = "postgresql://etld:%s@127.0.0.1:%d/%s" % (secret, pg.port, db)
    # In a job's settings it is refused at submit: settings are journaled.
    d = etld_factory()
    with d.conn() as c:
        r = c.call("submit", {"pipeline": "etl",
                              "settings": pg_settings(pg, db, edge_data,
                                                      **{"warehouse.target": bad})})
    assert r["error"]["code"] == -32602, r
    assert "password" in r["error"]["message"] and secret not in r["error"]["message"], r
    assert d.rpc("list")["jobs"] == []
    # In etld's own configuration it is used, and never echoed.
    d = etld_factory(conf_extra="target = %s\n" % bad)
    settings = pg_settings(pg, db, edge_data)
    del settings["warehouse.target"]
    job, st = failed_job(d, settings)
    assert "password authentication failed" in st["error"] and secret not in st["error"], st
    assert secret not in all_text(d, job)
    # An unparsable URI: libpq's message may quote it; the password is masked.
    d = etld_factory(conf_extra="target = %s?nosuchoption=1\n" % bad)
    job, st = failed_job(d, settings)
    assert "nosuchoption" in st["error"] and secret not in st["error"], st
    assert secret not in d.stderr_text()


def test_refused_port(etld_factory, pg, db, edge_data):
    d = etld_factory()
    port = pgenv.free_port()
    _, st = failed_job(d, pg_settings(pg, db, edge_data, **{
        "warehouse.target": "postgresql://etld@127.0.0.1:%d/%s" % (port, db),
        "daemon.retry_max": "2", "daemon.retry_base_ms": "50"}))
    err = st["error"]
    assert "cannot connect to PostgreSQL etld@127.0.0.1:%d/%s" % (port, db) in err, err
    assert "refused" in err, err
    # A refused connection may be a server restarting: it was retried.
    assert step_of(st, "create-tables")["attempts"] == 2, st["steps"]


def test_server_never_answers(etld_factory, pg, db, edge_data):
    """A host that accepts and says nothing: connect_timeout, enforced by etld
    (libpq leaves it to the caller of PQconnectPoll)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        d = etld_factory()
        t0 = time.monotonic()
        _, st = failed_job(d, pg_settings(pg, db, edge_data, **{
            "warehouse.target": "postgresql://etld@127.0.0.1:%d/%s?connect_timeout=2"
                                % (port, db),
            "daemon.retry_max": "1"}))
        took = time.monotonic() - t0
        err = st["error"]
        assert "etld@127.0.0.1:%d" % port in err and "no answer within 2 s" in err, err
        assert 1.5 < took < 10, took
        assert d.rpc("ping") == {"pong": True}
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


def test_statement_timeout(etld_factory, pg, db, mid_data):
    """statement_timeout from the URI's options: a statement that runs longer
    fails its step, and is not retried (it would time out again)."""
    d = pg_daemon(etld_factory)
    _, st = failed_job(d, pg_settings(pg, db, mid_data, **{
        "warehouse.target": pg.uri(db=db, query="options=-c%20statement_timeout%3D150")}))
    assert "canceling statement due to statement timeout" in st["error"], st["error"]
    failed = [s for s in st["steps"] if s["state"] == "failed"]
    assert len(failed) == 1 and failed[0]["attempts"] == 1, st["steps"]
    wait_no_backend(pg, db)


def test_tls_settings_from_uri(etld_factory, pg, db, edge_data):
    """sslmode and friends are libpq's: this server has no TLS, so requiring it
    fails, at once and saying why."""
    d = pg_daemon(etld_factory)
    _, st = failed_job(d, pg_settings(pg, db, edge_data, **{
        "warehouse.target": pg.uri(db=db, query="sslmode=require")}))
    assert "SSL" in st["error"] and "etld@127.0.0.1" in st["error"], st["error"]
    assert step_of(st, "create-tables")["attempts"] == 1, st["steps"]


def test_unknown_host(etld_factory, pg, db, edge_data):
    d = etld_factory()
    _, st = failed_job(d, pg_settings(pg, db, edge_data, **{
        "warehouse.target": "postgresql://etld@no-such-host.invalid/%s" % db,
        "daemon.retry_max": "1"}))
    assert "no-such-host.invalid" in st["error"], st["error"]
