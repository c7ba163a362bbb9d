"""test_nightly.py - write, audit, publish and incremental loads (issue 10).

- property: a generated history (30 days of logs, songs with duplicate ids,
  songs sharing title/artist/duration, arriving before and after the events
  that play them) arrives in random batches; an incremental etl job runs
  after each; the published tables then equal one full run over the same
  objects, songplay_id apart (unique and increasing in publish order).
  20 schedules on SQLite, 20 on PostgreSQL.
- a failed load and a failed check leave the published tables unchanged; a
  view on songplays answers after a publish;
- a published object that changed makes the next incremental run a full
  rebuild, which says why;
- a reader polling the published tables every 10 ms during runs and a
  kill -9 never sees them empty or partial;
- the real sample (when ../shared is there): a full run, then a failing run,
  leaves 6,820 songplays; incremental runs over its 30 log files in two
  batches end with the tables of one full run.
"""
import concurrent.futures
import os
import random
import re
import shutil
import sqlite3
import threading
import time

import pytest

import datagen
import etldtest
import expected
import pgenv
from etldtest import assert_job_succeeded, settings_for, step_of
from test_postgres import pg  # noqa: F401  (the PostgreSQL server fixture)

STAR = ["songplays", "users", "songs", "artists", "time"]
SP_COLS = expected.COLUMNS["songplays"]


# ---- the generated history -------------------------------------------------

def history(root, rng, days=30, nsongs=36, per_day=25, unique=False):
    """Writes a history tree; returns the list of object keys (relative paths).
    unique: no song id, artist id or (title, artist, duration) in two objects."""
    os.makedirs(root, exist_ok=True)
    datagen.write_jsonpaths(root)
    artists = [("AR%02d" % i, "Artist %d" % i) for i in range(8)]
    songs = []
    for i in range(nsongs):
        aid, aname = rng.choice(artists)
        if rng.random() < 0.15:  # an artist id whose songs disagree on its name
            aname = aname + " (live)"
        sid = "SO%03d" % rng.randrange(nsongs * 2 // 3)  # duplicate song ids
        title = "Title %d" % rng.randrange(nsongs // 2)  # shared titles
        if unique:
            aid, aname, sid, title = "AR%03d" % i, "Artist %d" % i, "SO%03d" % i, "T %d" % i
        dur = rng.choice([100.0, 200.5, 150.25])
        track = "TR" + "".join(rng.choice("ABC") for _ in range(3)) + "%04d" % i
        s = datagen.song(sid, title, aid, aname, dur, year=rng.randrange(1990, 2000))
        datagen.write_song(root, track, s, rng.choice(["spaced", "compact"]))
        songs.append(s)
    users = [(i, "F%d" % i, "L%d" % i, rng.choice("MF"), "free", "Town %d" % i, 1.5e12)
             for i in range(1, 11)]
    events = []
    t0 = 1541030400000  # 2018-11-01
    for d in range(days):
        for k in range(per_day):
            ts = t0 + d * 86400000 + rng.randrange(86400000)
            if events and rng.random() < 0.05:
                ts = events[-1]["ts"]  # ties
            u = rng.choice(users)
            page = rng.choice(["NextSong"] * 6 + ["Home", "Logout"])
            if rng.random() < 0.05:
                events.append(datagen.event(ts, page="Home", session=k))
                continue
            s = rng.choice(songs)
            if rng.random() < 0.3:  # a song nobody has
                s = dict(s, title="Nope %d" % k)
            events.append(datagen.event(ts, page=page, user=u, song=s["title"],
                                        artist=s["artist_name"], length=s["duration"],
                                        session=k, level=rng.choice(["free", "paid"])))
        # not in time order inside a day
    rng.shuffle(events)
    datagen.write_events(root, events)
    keys = []
    for base, _dirs, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(base, f), root)
            if rel != "log_json_path.json":
                keys.append(rel)
    return sorted(keys)


def arrive(src_root, dst_root, keys):
    for k in keys:
        os.makedirs(os.path.dirname(os.path.join(dst_root, k)), exist_ok=True)
        shutil.copy2(os.path.join(src_root, k), os.path.join(dst_root, k))


def schedule(rng, keys):
    """Random batches; the first has at least one log file and one song file."""
    keys = list(keys)
    rng.shuffle(keys)
    first = [next(k for k in keys if k.startswith("log_data")),
             next(k for k in keys if k.startswith("song_data"))]
    rest = [k for k in keys if k not in first]
    n = rng.randrange(2, 6)
    cuts = sorted(rng.sample(range(1, len(rest)), n - 1))
    batches = [rest[a:b] for a, b in zip([0] + cuts, cuts + [len(rest)])]
    batches[0] = first + batches[0]
    return batches


def tables_without_ids(dump):
    """The star tables as multisets, songplays without songplay_id."""
    out = {}
    for t in STAR:
        cols, rows = dump[t]
        if t == "songplays":
            rows = [r[1:] for r in rows]
        out[t] = sorted(rows, key=expected._sortkey)
    return out


def sqlite_dump(wh):
    return expected.dump(wh, STAR)


def pg_dump(pg, db):
    return {t: (expected.COLUMNS[t], pg.dump(t, expected.COLUMNS[t], db=db)) for t in STAR}


def run(d, settings, timeout=120):
    st = d.wait_job(d.submit(settings)["job"], timeout=timeout)
    return st


def assert_same(got, want, what):
    g, w = tables_without_ids(got), tables_without_ids(want)
    for t in STAR:
        assert g[t] == w[t], "%s: table %s differs (%d rows vs %d)\nfirst got:  %r\nfirst want: %r" % (
            what, t, len(g[t]), len(w[t]),
            [r for r in g[t] if r not in w[t]][:3], [r for r in w[t] if r not in g[t]][:3])
    ids = [r[0] for r in got["songplays"][1]]
    assert len(ids) == len(set(ids)), "%s: songplay_id not unique" % what


def property_case(d, workdir, seed, target_for, dump_for, unique=False):
    rng = random.Random(seed)
    hist = os.path.join(workdir, "hist%d" % seed)
    keys = history(hist, rng, unique=unique)
    src = os.path.join(workdir, "src%d" % seed)
    os.makedirs(src)
    shutil.copy(os.path.join(hist, "log_json_path.json"), src)
    inc_target = target_for("inc%d" % seed)
    for i, batch in enumerate(schedule(rng, keys)):
        arrive(hist, src, batch)
        st = run(d, settings_for(src, "/nonexistent.db", **{
            "warehouse.target": inc_target, "etl.mode": "incremental"}))
        assert_job_succeeded(st)
        if i > 0:
            load = step_of(st, "load")
            assert load["state"] == "done", load
    full_target = target_for("full%d" % seed)
    assert_job_succeeded(run(d, settings_for(src, "/nonexistent.db", **{
        "warehouse.target": full_target, "etl.mode": "full"})))  # the dialect's own SQL
    assert_same(dump_for(inc_target), dump_for(full_target), "seed %d" % seed)


SCHEDULES = 20


def all_cases(d, workdir, seeds, target, dump, **kw):
    """property_case for each seed, four at a time (each on its own
    warehouse: etld runs jobs of different warehouses side by side)."""
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for f in [ex.submit(property_case, d, workdir, seed, target, dump, **kw)
                  for seed in seeds]:
            f.result()


def test_incremental_equals_full_sqlite(etld_factory, workdir):
    d = etld_factory(max_jobs=4)

    def target(name):
        return "sqlite://%s/%s.db" % (workdir, name)

    def dump(t):
        return sqlite_dump(t[len("sqlite://"):])
    all_cases(d, workdir, range(SCHEDULES), target, dump)


def test_incremental_equals_full_postgres(etld_factory, workdir, pg):
    d = etld_factory(max_jobs=4, conf_extra="password = %s\n" % pgenv.PASSWORD)

    def target(name):
        pg.psql("DROP DATABASE IF EXISTS n_%s" % name, db="postgres")
        pg.psql("CREATE DATABASE n_%s OWNER %s" % (name, pgenv.USER), db="postgres")
        return pg.uri(db="n_" + name)

    def dump(t):
        return pg_dump(pg, t.rsplit("/", 1)[1])
    all_cases(d, workdir, range(100, 100 + SCHEDULES), target, dump)


def test_redshift_sql_incremental_on_postgres(etld_factory, workdir, pg):
    """sql/redshift's transform, checks and publish, run on PostgreSQL:
    incremental runs equal one full run where no key is in two objects (on
    Redshift, ties between objects go by arrival: see the README)."""
    sql = os.path.join(workdir, "sql")
    shutil.copytree(etldtest.SQL_DIR, sql)
    for name in ("transform.sql", "check.sql", "publish.sql"):
        shutil.copy(os.path.join(etldtest.SQL_DIR, "redshift", name),
                    os.path.join(sql, "postgres", name))
    d = etld_factory(max_jobs=4,
                     conf_extra="password = %s\n[daemon]\nsql_dir = %s\n" % (pgenv.PASSWORD, sql))

    def target(name):
        pg.psql("DROP DATABASE IF EXISTS r_%s" % name, db="postgres")
        pg.psql("CREATE DATABASE r_%s OWNER %s" % (name, pgenv.USER), db="postgres")
        # a stand-in for Redshift's SVV_TABLE_INFO, which check.sql's skew check reads
        pg.psql("CREATE VIEW svv_table_info AS SELECT CAST('songs' AS VARCHAR(128)) AS "
                "\"table\", CAST(1 AS NUMERIC(13,2)) AS skew_rows; "
                "GRANT SELECT ON svv_table_info TO %s" % pgenv.USER, db="r_" + name)
        return pg.uri(db="r_" + name)

    def dump(t):
        return pg_dump(pg, t.rsplit("/", 1)[1])
    all_cases(d, workdir, range(200, 205), target, dump, unique=True)


# ---- the publish guarantee -------------------------------------------------

def test_failed_load_and_failed_check_publish_nothing(etld, etld_factory, workdir, edge_data):
    wh = os.path.join(workdir, "wh.db")
    first = run(etld, settings_for(edge_data, wh))
    assert_job_succeeded(first)
    before = sqlite_dump(wh)
    with sqlite3.connect(wh) as c:
        c.execute("CREATE VIEW plays_per_user AS SELECT user_id, COUNT(*) AS n FROM songplays "
                  "GROUP BY user_id")
    # a failed load: a malformed record, MAXERROR 0
    bad = os.path.join(workdir, "bad")
    etldtest.copy_tree(edge_data, bad)
    with open(os.path.join(bad, "log_data", "2018", "zz-bad.json"), "w") as f:
        f.write('{"ts": "not a number", "page": "NextSong"}\n')
    st = run(etld, settings_for(bad, wh))
    assert st["state"] == "failed" and step_of(st, "load")["state"] == "failed", st
    assert sqlite_dump(wh) == before
    # a failed check: a check.sql whose last check fails
    sqld = os.path.join(workdir, "sql")
    shutil.copytree(etldtest.SQL_DIR, sqld)
    with open(os.path.join(sqld, "sqlite", "check.sql"), "a") as f:
        f.write("\nSELECT 'always fails', 0, 'on purpose';\n")
    other = etld_factory(conf_extra="[daemon]\nsql_dir = %s\n" % sqld)
    st = run(other, settings_for(edge_data, wh))
    assert st["state"] == "failed", st
    assert "always fails" in st["error"] and "nothing was published" in st["error"], st["error"]
    assert step_of(st, "publish")["state"] in ("pending", "cancelled"), st
    assert sqlite_dump(wh) == before
    # the daemon's status names the job whose tables are published
    pub = [p for p in etld.rpc("status", {})["published"] if p["target"] == "sqlite://" + wh]
    assert [(p["job"], p["mode"]) for p in pub] == [(first["id"], "full")], pub
    r = etldtest.etlctl(etld.sock, "status")
    assert "published sqlite://%s: job %d (full" % (wh, first["id"]) in r.stdout, r.stdout
    # the view still answers after another publish
    assert_job_succeeded(run(etld, settings_for(edge_data, wh)))
    with sqlite3.connect(wh) as c:
        n = c.execute("SELECT SUM(n) FROM plays_per_user").fetchone()[0]
    assert n == len(before["songplays"][1])


def test_view_on_songplays_survives_publish_postgres(etld_factory, workdir, edge_data, pg):
    d = etld_factory(conf_extra="password = %s\n" % pgenv.PASSWORD)
    pg.psql("DROP DATABASE IF EXISTS n_view", db="postgres")
    pg.psql("CREATE DATABASE n_view OWNER %s" % pgenv.USER, db="postgres")
    s = settings_for(edge_data, "/nonexistent.db", **{"warehouse.target": pg.uri(db="n_view")})
    assert_job_succeeded(run(d, s))
    pg.psql("CREATE VIEW plays_per_user AS SELECT user_id, COUNT(*) AS n FROM songplays "
            "GROUP BY user_id; ALTER VIEW plays_per_user OWNER TO %s" % pgenv.USER, db="n_view")
    want = pg.scalar("SELECT COUNT(*) FROM songplays", db="n_view")
    assert_job_succeeded(run(d, s))
    assert pg.scalar("SELECT SUM(n) FROM plays_per_user", db="n_view") == want


def test_changed_object_makes_a_full_rebuild(etld, workdir):
    rng = random.Random(7)
    hist = os.path.join(workdir, "hist")
    history(hist, rng, days=5)
    wh = os.path.join(workdir, "wh.db")
    s = settings_for(hist, wh, **{"etl.mode": "incremental"})
    st = run(etld, s)
    assert_job_succeeded(st)
    assert "no earlier publish" in str(st), st
    st = run(etld, s)
    assert_job_succeeded(st)
    assert "0 new objects" in str(st), st
    # a published object changes: the next run rebuilds and says why
    log = sorted(k for k in os.listdir(os.path.join(hist, "log_data", "2018", "11")))[0]
    path = os.path.join(hist, "log_data", "2018", "11", log)
    with open(path) as f:
        lines = f.read().split("\n")
    with open(path, "w") as f:
        f.write("\n".join(lines[:-1]))
    st = run(etld, s)
    assert_job_succeeded(st)
    assert re.search(r"%s.*changed since" % re.escape(log), str(st)), st
    full = os.path.join(workdir, "full.db")
    assert_job_succeeded(run(etld, settings_for(hist, full)))
    assert_same(sqlite_dump(wh), sqlite_dump(full), "after the rebuild")


class Poller(threading.Thread):
    """Reads the published tables every 10 ms; remembers what it saw."""

    def __init__(self, wh):
        super().__init__(daemon=True)
        self.wh, self.stop, self.seen, self.bad = wh, False, set(), []

    def run(self):
        while not self.stop:
            try:
                con = sqlite3.connect("file:%s?mode=ro" % self.wh, uri=True, timeout=5)
                try:
                    con.execute("BEGIN")
                    counts = tuple(con.execute("SELECT COUNT(*) FROM %s" % t).fetchone()[0]
                                   for t in STAR)
                    con.execute("COMMIT")
                finally:
                    con.close()
                self.seen.add(counts)
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e):
                    self.bad.append(str(e))
            time.sleep(0.01)


def counts(wh):
    return tuple(len(sqlite_dump(wh)[t][1]) for t in STAR)


def run_with_kill(d, settings, rng):
    """Submits, kill -9s etld at a random moment, restarts it; the resumed
    job must succeed."""
    job = d.submit(settings)["job"]
    time.sleep(rng.uniform(0.05, 0.8))
    d.kill9()
    d.start()
    assert_job_succeeded(d.wait_job(job, timeout=300))


@pytest.mark.slow
def test_reader_never_sees_partial_tables_across_kills(etld, workdir):
    data = os.path.join(workdir, "data")
    etldtest.generate(data, seed=5, songs=400, events=40000, days=30)
    day = os.path.join(data, "log_data", "2018", "11", "2018-11-30-events.json")
    held = os.path.join(workdir, "held.json")
    shutil.move(day, held)
    wh = os.path.join(workdir, "wh.db")
    s = settings_for(data, wh)
    assert_job_succeeded(run(etld, s, timeout=300))
    before = counts(wh)
    p = Poller(wh)
    p.start()
    rng = random.Random(3)
    try:
        run_with_kill(etld, s, rng)                                    # full, same data
        shutil.move(held, day)                                         # a new day
        run_with_kill(etld, dict(s, **{"etl.mode": "incremental"}), rng)
        after = counts(wh)
        run_with_kill(etld, s, rng)                                    # full again
    finally:
        p.stop = True
        p.join()
    assert not p.bad, p.bad
    assert before != after
    assert p.seen <= {before, after} and after in p.seen, (
        "a reader saw counts other than the published %r and %r: %r" % (before, after, p.seen))
    full = os.path.join(workdir, "full.db")
    assert_job_succeeded(run(etld, settings_for(data, full), timeout=300))
    assert_same(sqlite_dump(wh), sqlite_dump(full), "after the kills")


# ---- the real sample -------------------------------------------------------

def test_sample_failing_run_keeps_6820_songplays(etld, workdir, sample_data):
    wh = os.path.join(workdir, "wh.db")
    assert_job_succeeded(run(etld, settings_for(sample_data, wh), timeout=300))
    st = run(etld, settings_for(sample_data, wh, **{
        "s3.log_jsonpath": "file://%s/nope.json" % workdir}))
    assert st["state"] == "failed", st
    with sqlite3.connect(wh) as c:
        assert c.execute("SELECT COUNT(*) FROM songplays").fetchone()[0] == 6820


def test_sample_incremental_in_two_batches_equals_full(etld, workdir, sample_data):
    src = os.path.join(workdir, "src")
    os.makedirs(src)
    shutil.copy(os.path.join(sample_data, "log_json_path.json"), src)
    shutil.copytree(os.path.join(sample_data, "song_data"), os.path.join(src, "song_data"))
    logs = []
    for base, _d, files in os.walk(os.path.join(sample_data, "log_data")):
        logs += [os.path.relpath(os.path.join(base, f), sample_data) for f in files]
    logs.sort()
    assert len(logs) == 30, logs
    wh = os.path.join(workdir, "inc.db")
    for batch in (logs[:15], logs[15:]):
        arrive(sample_data, src, batch)
        assert_job_succeeded(run(etld, settings_for(src, wh, **{"etl.mode": "incremental"}),
                                 timeout=300))
    full = os.path.join(workdir, "full.db")
    assert_job_succeeded(run(etld, settings_for(src, full), timeout=300))
    assert_same(sqlite_dump(wh), sqlite_dump(full), "the sample in two batches")
    assert len(sqlite_dump(wh)["songplays"][1]) == 6820
