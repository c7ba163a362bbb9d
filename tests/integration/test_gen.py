"""test_gen.py - bench/etld-gen writes deterministic, Sparkify-shaped data.

Checks what the tests and benchmarks that use the generator rely on: the same
seed gives the same bytes and another seed other bytes; every file parses with
Python's json module; song files and events have the keys of the real bucket in
its order, ASCII only, no final newline; each event's UTC date is its file's;
pages, level changes, repeated ts and song matches are there in the shares the
sample has; log_json_path.json is the bucket's; bad options exit 2.

The binary is $ETLD_BUILD/bench/etld-gen (ETLD_BUILD defaults to
/work/main/build-gen); the tests skip when it is not built.
"""
import collections
import datetime
import hashlib
import json
import os
import re
import subprocess

import pytest

BUILD = os.environ.get("ETLD_BUILD", "/work/main/build-gen")
GEN = os.path.join(BUILD, "bench", "etld-gen")

SONG_KEYS = ["num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location",
             "artist_name", "song_id", "title", "duration", "year"]
EVENT_KEYS = ["artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length",
              "level", "location", "method", "page", "registration", "sessionId", "song",
              "status", "ts", "userAgent", "userId"]
LOG_NAME = re.compile(r"log_data/(\d{4})/(\d{2})/(\d{4})-(\d{2})-(\d{2})-events\.json$")
SONG_NAME = re.compile(r"song_data/A/([A-Z])/([A-Z])/TRA\1\2[A-Z0-9]{13}\.json$")

pytestmark = pytest.mark.skipif(not os.access(GEN, os.X_OK),
                                reason="etld-gen is not built: %s (set ETLD_BUILD)" % GEN)


def run_gen(out, *args):
    return subprocess.run([GEN, "--out", str(out)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=300)


def generate(out, *args):
    r = run_gen(out, *args)
    assert r.returncode == 0, r.stderr
    return str(out)


def files_of(root):
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            found.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(found)


def fingerprint(root):
    h = hashlib.sha256()
    for rel in files_of(root):
        h.update(rel.encode() + b"\0")
        with open(os.path.join(root, rel), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def read_tree(root):
    """(songs, events by file) with every object decoded, key order kept."""
    songs, logs = [], {}
    for rel in files_of(root):
        with open(os.path.join(root, rel), "rb") as f:
            raw = f.read()
        assert raw.isascii(), rel
        assert not raw.endswith(b"\n"), "%s ends with a newline" % rel
        assert b"\r" not in raw, rel
        text = raw.decode("ascii")
        if rel.startswith("song_data/"):
            assert SONG_NAME.match(rel), rel
            obj = json.loads(text, object_pairs_hook=collections.OrderedDict)
            songs.append((rel, obj))
        elif rel.startswith("log_data/"):
            assert LOG_NAME.match(rel), rel
            lines = text.split("\n") if text else []
            assert all(lines), "%s has a blank line" % rel
            logs[rel] = [json.loads(l, object_pairs_hook=collections.OrderedDict)
                         for l in lines]
        else:
            assert rel == "log_json_path.json", rel
    return songs, logs


@pytest.fixture(scope="module")
def default_tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "data"
    r = run_gen(out)
    assert r.returncode == 0, r.stderr
    return str(out), r.stdout, read_tree(str(out))


def all_events(logs):
    return [e for rel in sorted(logs) for e in logs[rel]]


def test_same_seed_same_bytes(tmp_path):
    a = generate(tmp_path / "a", "--seed", 7, "--songs", 40, "--events", 3000, "--days", 4)
    b = generate(tmp_path / "b", "--seed", 7, "--songs", 40, "--events", 3000, "--days", 4)
    assert files_of(a) == files_of(b)
    assert fingerprint(a) == fingerprint(b)


def test_other_seed_other_bytes(tmp_path):
    a = generate(tmp_path / "a", "--seed", 7, "--songs", 40, "--events", 3000, "--days", 4)
    b = generate(tmp_path / "b", "--seed", 8, "--songs", 40, "--events", 3000, "--days", 4)
    assert fingerprint(a) != fingerprint(b)


def test_songs_do_not_depend_on_events(tmp_path):
    a = generate(tmp_path / "a", "--seed", 3, "--events", 500)
    b = generate(tmp_path / "b", "--seed", 3, "--events", 5000)
    assert fingerprint(os.path.join(a, "song_data")) == fingerprint(os.path.join(b, "song_data"))


def test_default_sizes_and_summary(default_tree):
    root, stdout, (songs, logs) = default_tree
    assert len(songs) == 71
    assert len(logs) == 30
    assert sum(len(v) for v in logs.values()) == 8056
    total = sum(os.path.getsize(os.path.join(root, p)) for p in files_of(root))
    assert re.match(r"^etld-gen: 102 files, 71 songs, 8056 events, %d bytes in " % total, stdout)
    assert stdout.count("\n") == 1


def test_song_files(default_tree):
    _, _, (songs, _) = default_tree
    artists = collections.defaultdict(set)
    song_ids = set()
    for rel, s in songs:
        assert list(s) == SONG_KEYS, rel
        assert s["num_songs"] == 1
        assert re.match(r"^AR[A-Z0-9]{16}$", s["artist_id"])
        assert re.match(r"^SO[A-Z0-9]{16}$", s["song_id"])
        assert 29 <= s["duration"] < 600
        assert s["year"] == 0 or 1961 <= s["year"] <= 2008
        assert s["artist_location"] is not None
        assert (s["artist_latitude"] is None) == (s["artist_longitude"] is None)
        song_ids.add(s["song_id"])
        artists[s["artist_id"]].add((s["artist_name"], s["artist_location"],
                                     s["artist_latitude"], s["artist_longitude"]))
    assert len(song_ids) == len(songs)
    # Every artist has one set of attributes, and some have several songs.
    assert all(len(v) == 1 for v in artists.values())
    assert len(artists) < len(songs)
    assert any(s["artist_latitude"] is None for _, s in songs)
    assert any(s["artist_latitude"] is not None for _, s in songs)
    assert any(s["artist_location"] == "" for _, s in songs)
    assert any(s["year"] == 0 for _, s in songs)
    assert any(s["year"] != 0 for _, s in songs)


def test_song_file_text_style(tmp_path):
    root = generate(tmp_path / "d", "--songs", 2000, "--events", 0, "--days", 1)
    escapes = quotes = 0
    for rel in files_of(os.path.join(root, "song_data")):
        with open(os.path.join(root, "song_data", rel)) as f:
            text = f.read()
        assert text.startswith('{"num_songs": 1, "artist_id": "AR'), rel
        assert re.search(r', "duration": \d+\.\d{5}, "year": \d+\}$', text), rel
        escapes += "\\u00" in text
        quotes += '\\"' in text or "\\\\" in text
    assert escapes > 0 and quotes > 0


def test_events_shape(default_tree):
    _, _, (_, logs) = default_tree
    for rel, events in logs.items():
        m = LOG_NAME.match(rel)
        day = datetime.date(int(m.group(3)), int(m.group(4)), int(m.group(5)))
        assert (m.group(1), m.group(2)) == (m.group(3), m.group(4))
        ts = [e["ts"] for e in events]
        assert ts == sorted(ts), rel
        for e in events:
            assert list(e) == EVENT_KEYS, rel
            assert isinstance(e["userId"], str)
            assert e["ts"] % 1000 == 796
            when = datetime.datetime.fromtimestamp(e["ts"] / 1000, datetime.timezone.utc)
            assert when.date() == day, (rel, e["ts"])
            song_fields = (e["artist"], e["song"], e["length"])
            if e["page"] == "NextSong":
                assert None not in song_fields and e["userId"] != ""
            else:
                assert song_fields == (None, None, None)
            if e["auth"] == "Logged Out":
                assert e["userId"] == ""
                assert [e[k] for k in ("firstName", "lastName", "gender", "location",
                                       "registration", "userAgent")] == [None] * 6
            else:
                assert e["auth"] == "Logged In" and e["userId"].isdigit()
            assert e["level"] in ("free", "paid")
            assert e["method"] in ("GET", "PUT") and e["status"] in (200, 307, 404)


def test_event_text_style(default_tree):
    root, _, (_, logs) = default_tree
    rel = sorted(logs)[0]
    with open(os.path.join(root, rel)) as f:
        first = f.readline()
    assert first.startswith('{"artist":')
    assert '"registration":' in first and ', "' not in first
    with open(os.path.join(root, rel)) as f:
        text = f.read()
    assert "\\/" in text and "/" not in text.replace("\\/", "")
    assert re.search(r'"registration":\d{13}\.0,', text)


def test_pages_and_repeats(default_tree):
    _, _, (_, logs) = default_tree
    events = all_events(logs)
    pages = collections.Counter(e["page"] for e in events)
    share = pages["NextSong"] / len(events)
    assert 0.80 <= share <= 0.90, share
    for p in ("Home", "Login", "Logout", "Upgrade", "Downgrade", "Settings", "Help", "About",
              "Submit Upgrade", "Submit Downgrade"):
        assert pages[p] > 0, p
    assert any(e["auth"] == "Logged Out" for e in events)
    ts = collections.Counter(e["ts"] for e in events)
    assert any(n > 1 for n in ts.values())


def test_level_changes(default_tree):
    _, _, (_, logs) = default_tree
    levels = collections.defaultdict(list)
    for e in sorted(all_events(logs), key=lambda e: e["ts"]):
        if e["userId"] and e["page"] == "NextSong":
            seq = levels[e["userId"]]
            if not seq or seq[-1] != e["level"]:
                seq.append(e["level"])
    changers = {u: s for u, s in levels.items() if len(s) > 1}
    assert sum(1 for s in changers.values() if s[:2] == ["free", "paid"]) >= 5
    assert ["paid", "free", "paid"] in changers.values()


def test_matches(default_tree):
    _, _, (songs, logs) = default_tree
    exact = {(s["title"], s["artist_name"], s["duration"]) for _, s in songs}
    titles = {s["title"] for _, s in songs}
    plays = [e for e in all_events(logs) if e["page"] == "NextSong"]
    matched = [e for e in plays if (e["song"], e["artist"], e["length"]) in exact]
    title_only = [e for e in plays if e["song"] in titles
                  and (e["song"], e["artist"], e["length"]) not in exact]
    assert 0.15 <= len(matched) / len(plays) <= 0.25, len(matched) / len(plays)
    assert title_only


def test_match_share_zero(tmp_path):
    root = generate(tmp_path / "d", "--match-share", 0, "--events", 2000)
    songs, logs = read_tree(root)
    exact = {(s["title"], s["artist_name"], s["duration"]) for _, s in songs}
    assert not [e for e in all_events(logs) if (e["song"], e["artist"], e["length"]) in exact]


def test_days_past_november(tmp_path):
    root = generate(tmp_path / "d", "--days", 62, "--events", 3000, "--songs", 10)
    names = [p for p in files_of(root) if p.startswith("log_data/")]
    assert len(names) == 62
    assert names[-1] == "log_data/2019/01/2019-01-01-events.json"
    assert "log_data/2018/12/2018-12-31-events.json" in names
    _, logs = read_tree(root)
    assert sum(len(v) for v in logs.values()) == 3000


def test_jsonpaths_file(default_tree):
    root, _, _ = default_tree
    with open(os.path.join(root, "log_json_path.json"), "rb") as f:
        raw = f.read()
    expected = "{\n\"jsonpaths\": [\n" + ",\n".join('"$[\'%s\']"' % k for k in EVENT_KEYS) + \
        "\n]\n}"
    assert raw == expected.encode()
    assert len(raw) == 304


@pytest.mark.parametrize("args, what", [
    (["--songs", "x"], "--songs"),
    (["--events", "-1"], "--events"),
    (["--days", "0"], "--days"),
    (["--match-share", "1.5"], "--match-share"),
    (["--seed", ""], "--seed"),
    (["--bogus"], "bogus"),
    (["extra"], "extra"),
])
def test_bad_arguments(tmp_path, args, what):
    r = run_gen(tmp_path / "d", *args)
    assert r.returncode == 2
    assert what in r.stderr
    assert not os.path.exists(tmp_path / "d")


def test_help_and_missing_out():
    r = subprocess.run([GEN, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--match-share" in r.stdout
    r = subprocess.run([GEN], capture_output=True, text=True)
    assert r.returncode == 2 and "--out" in r.stderr


def test_refuses_existing_tree(tmp_path):
    generate(tmp_path / "d", "--events", 100, "--songs", 5, "--days", 2)
    r = run_gen(tmp_path / "d")
    assert r.returncode == 1
    assert "already exists" in r.stderr
