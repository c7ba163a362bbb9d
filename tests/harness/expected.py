"""expected.py - the star schema computed from the input files, independently of etld.

Nothing here reads the SQL in sql/ or any etld code: the rules are the ones in
the test brief (and DESIGN.md), written again in Python:

- staging_events: one row per log record, columns in JSONPaths order; ts as
  'YYYY-MM-DD HH:MM:SS[.fff]' UTC text (trailing zeros of the fraction dropped,
  no '.' when the milliseconds are 0); userId kept as text ("" stays "").
- staging_songs: one row per song record, columns by name (JSON 'auto').
- songplays: one per NextSong event, numbered 1..N by (ts, input order); the
  song is the staging song with equal title, artist_name and duration (float
  equality), the smallest song_id when several match.
- users: latest NextSong event of each non-empty userId (ties: later input).
- songs / artists: first occurrence in input order.
- time: one row per distinct songplays start_time; ISO week; weekday 0=Sunday.

"Input order" is: objects in key byte order, records in file order.  A source
URI file:///dir/prefix lists every regular file under dir whose key (path
relative to dir) starts with prefix, the way S3 and COPY match prefixes.

compare_tables() diffs whole tables as multisets of tuples (int and float
compare equal when equal as numbers, like SQLite's numeric affinity does).
"""
import collections
import datetime
import functools
import json
import os
import re
import sqlite3
import urllib.parse

STAGING_EVENTS = ["artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length",
                  "level", "location", "method", "page", "registration", "sessionId", "song",
                  "status", "ts", "userAgent", "userId"]
STAGING_SONGS = ["num_songs", "artist_id", "artist_latitude", "artist_longitude",
                 "artist_location", "artist_name", "song_id", "title", "duration", "year"]
COLUMNS = {
    "staging_events": STAGING_EVENTS,
    "staging_songs": STAGING_SONGS,
    "songplays": ["songplay_id", "start_time", "user_id", "level", "song_id", "artist_id",
                  "session_id", "location", "user_agent"],
    "users": ["user_id", "first_name", "last_name", "gender", "level"],
    "songs": ["song_id", "title", "artist_id", "year", "duration"],
    "artists": ["artist_id", "name", "location", "latitude", "longitude"],
    "time": ["start_time", "hour", "day", "week", "month", "year", "weekday"],
}
TABLES = list(COLUMNS)
EPOCH = datetime.datetime(1970, 1, 1)


def file_uri_path(uri):
    u = urllib.parse.urlsplit(uri)
    assert u.scheme == "file", uri
    return urllib.parse.unquote(u.path)


def list_objects(prefix_path):
    """Files whose key starts with the prefix, in key byte order.  prefix_path is
    an absolute path; its parent is the "bucket", its last part a key prefix."""
    root, prefix = os.path.split(prefix_path)
    keys = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        dirnames[:] = [d for d in dirnames
                       if (rel + d + "/").startswith(prefix) or prefix.startswith(rel + d + "/")]
        for f in filenames:
            key = rel + f
            if key.startswith(prefix) and os.path.isfile(os.path.join(dirpath, f)):
                keys.append(key)
    keys.sort(key=lambda k: k.encode("utf-8"))
    return [(k, os.path.join(root, *k.split("/"))) for k in keys]


def read_records(path):
    """Every JSON object in a file, in order (objects may span lines or share one)."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    dec = json.JSONDecoder()
    out = []
    i = 0
    n = len(text)
    ws = re.compile(r"\s*")
    while True:
        i = ws.match(text, i).end()
        if i >= n:
            break
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


def ts_text(ms):
    """Epoch milliseconds as Redshift prints a TIMESTAMP."""
    sec, milli = divmod(int(ms), 1000)
    s = (EPOCH + datetime.timedelta(seconds=sec)).strftime("%Y-%m-%d %H:%M:%S")
    if milli:
        s += "." + ("%03d" % milli).rstrip("0")
    return s


def jsonpaths(path):
    paths = []
    for p in read_records(path)[0]["jsonpaths"]:
        m = re.fullmatch(r"\$\['([^']*)'\]|\$\[\"([^\"]*)\"\]|\$\.(\w+)", p)
        assert m, "unsupported JSONPath in test data: %r" % p
        paths.append(next(g for g in m.groups() if g is not None))
    return paths


def compute(song_data, log_data, log_jsonpath):
    """All seven tables from three source URIs (file:// only), as lists of tuples."""
    # staging
    paths = jsonpaths(file_uri_path(log_jsonpath))
    assert [p.lower() for p in paths] == [c.lower() for c in STAGING_EVENTS], paths
    events = []  # (row, ts_ms)
    for _key, path in list_objects(file_uri_path(log_data)):
        for rec in read_records(path):
            vals = [rec.get(p) for p in paths]
            ts_ms = vals[STAGING_EVENTS.index("ts")]
            vals[STAGING_EVENTS.index("ts")] = ts_text(ts_ms)
            events.append((tuple(vals), ts_ms))
    songs_in = []
    for _key, path in list_objects(file_uri_path(song_data)):
        for rec in read_records(path):
            lower = {k.lower(): v for k, v in rec.items()}
            songs_in.append(tuple(lower.get(c) for c in STAGING_SONGS))
    t = {"staging_events": [e[0] for e in events], "staging_songs": songs_in}

    S = {c: i for i, c in enumerate(STAGING_SONGS)}
    E = {c: i for i, c in enumerate(STAGING_EVENTS)}

    # song lookup: (title, artist_name, duration) -> smallest (song_id, artist_id)
    match = {}
    for s in songs_in:
        k = (s[S["title"]], s[S["artist_name"]], s[S["duration"]])
        cand = (s[S["song_id"]], s[S["artist_id"]])
        if k not in match or cand[0] < match[k][0]:
            match[k] = cand

    plays = [(i, row, ms) for i, (row, ms) in enumerate(events) if row[E["page"]] == "NextSong"]
    plays.sort(key=lambda p: (p[2], p[0]))
    songplays = []
    for n, (_i, row, _ms) in enumerate(plays, 1):
        hit = match.get((row[E["song"]], row[E["artist"]], row[E["length"]]), (None, None))
        uid = row[E["userId"]]
        songplays.append((n, row[E["ts"]], int(uid) if uid not in (None, "") else None,
                          row[E["level"]], hit[0], hit[1], row[E["sessionId"]],
                          row[E["location"]], row[E["userAgent"]]))
    t["songplays"] = songplays

    latest = {}
    for i, row, ms in plays:  # sorted by (ts, input order): the last one wins
        uid = row[E["userId"]]
        if uid in (None, ""):
            continue
        latest[uid] = (int(uid), row[E["firstName"]], row[E["lastName"]], row[E["gender"]],
                       row[E["level"]])
    t["users"] = list(latest.values())

    songs, artists = {}, {}
    for s in songs_in:
        songs.setdefault(s[S["song_id"]], (s[S["song_id"]], s[S["title"]], s[S["artist_id"]],
                                           s[S["year"]], s[S["duration"]]))
        artists.setdefault(s[S["artist_id"]], (s[S["artist_id"]], s[S["artist_name"]],
                                               s[S["artist_location"]], s[S["artist_latitude"]],
                                               s[S["artist_longitude"]]))
    t["songs"] = list(songs.values())
    t["artists"] = list(artists.values())

    times = {}
    for _i, row, ms in plays:
        dt = EPOCH + datetime.timedelta(milliseconds=ms)
        times[row[E["ts"]]] = (row[E["ts"]], dt.hour, dt.day, dt.isocalendar()[1], dt.month,
                               dt.year, dt.isoweekday() % 7)
    t["time"] = list(times.values())
    return t


@functools.lru_cache(maxsize=8)
def for_data_dir(data_dir):
    """compute() for a tree laid out like the bucket (cached per directory)."""
    d = os.path.abspath(data_dir)
    return compute("file://" + d + "/song_data", "file://" + d + "/log_data",
                   "file://" + d + "/log_json_path.json")


# --- reading and comparing a warehouse -------------------------------------

def open_ro(db_path):
    return sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(db_path), uri=True, timeout=10)


# Columns of etld's own in the staging tables (the object each row came
# from), left out of comparisons.
ETLD_COLUMNS = ("etld_object", "input_order")


def dump(db_path, tables=TABLES):
    """{table: (column names, rows)} of a SQLite warehouse."""
    con = open_ro(db_path)
    try:
        out = {}
        for tname in tables:
            cols = [r[1] for r in con.execute('PRAGMA table_info("%s")' % tname)
                    if r[1] not in ETLD_COLUMNS]
            rows = con.execute('SELECT %s FROM "%s"' % (", ".join('"%s"' % c for c in cols),
                                                        tname)).fetchall()
            out[tname] = (cols, rows)
        return out
    finally:
        con.close()


def _fmt(rows, limit=5):
    return "\n".join("      %r" % (r,) for r in rows[:limit]) + (
        "\n      ... %d more" % (len(rows) - limit) if len(rows) > limit else "")


def diff_table(name, got_cols, got_rows, exp_rows):
    """An empty string when equal, otherwise a readable account of the difference."""
    problems = []
    want_cols = COLUMNS[name]
    if [c.lower() for c in got_cols] != [c.lower() for c in want_cols]:
        problems.append("  columns: expected %s, got %s" % (want_cols, got_cols))
        return "%s:\n%s" % (name, "\n".join(problems))
    got = collections.Counter(tuple(r) for r in got_rows)
    exp = collections.Counter(tuple(r) for r in exp_rows)
    if got == exp:
        return ""
    problems.append("  rows: expected %d, got %d" % (len(exp_rows), len(got_rows)))
    missing = sorted((exp - got).elements(), key=_sortkey)
    extra = sorted((got - exp).elements(), key=_sortkey)
    if missing:
        problems.append("  expected but missing (%d):\n%s" % (len(missing), _fmt(missing)))
    if extra:
        problems.append("  present but not expected (%d):\n%s" % (len(extra), _fmt(extra)))
    if missing and extra:
        # Point at the first column that differs between the closest pair.
        a, b = missing[0], extra[0]
        cols = [want_cols[i] for i in range(min(len(a), len(b))) if not _same(a[i], b[i])]
        problems.append("  first pair differs in: %s" % cols)
    return "%s:\n%s" % (name, "\n".join(problems))


def _same(a, b):
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool):
        return a == b
    return type(a) is type(b) and a == b


def _sortkey(row):
    key = []
    for v in row:
        if v is None:
            key.append((0, 0))
        elif isinstance(v, (int, float)):
            key.append((1, v))
        elif isinstance(v, str):
            key.append((2, v))
        else:
            key.append((3, repr(v)))
    return key


def compare(db_path, expected, tables=TABLES):
    """Diff text of every table that differs ("" when all are equal)."""
    got = dump(db_path, tables)
    out = []
    for tname in tables:
        cols, rows = got[tname]
        d = diff_table(tname, cols, rows, expected[tname])
        if d:
            out.append(d)
    return "\n".join(out)


if __name__ == "__main__":  # print counts for a data tree: python3 expected.py DIR
    import sys
    for k, v in for_data_dir(sys.argv[1]).items():
        print(k, len(v))
