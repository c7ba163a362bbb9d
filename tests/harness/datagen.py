"""datagen.py - Sparkify-shaped input trees written by the tests themselves.

Two generators, both laid out like s3://udacity-dend (song_data/A/B/C/TR*.json,
log_data/YYYY/MM/YYYY-MM-DD-events.json, log_json_path.json):

- edge_case_tree(): a small tree built by hand to hit every rule of the star
  schema that the real sample does not exercise: songs matching on title +
  artist + duration with several candidates, duplicate song_ids, artists whose
  songs disagree, ts ties (for songplay_id order and for the "latest event"
  of a user), milliseconds of 000/500/050 (the ts text format), ISO week
  edges, escaped slashes, quotes and non-ASCII text.
- bulk_tree(): many events fast, used only when the project's generator
  (bench/etld-gen) is not built.

The real generator is preferred for the generic data (see conftest.gen_data);
these exist so that the expected-value code is checked against data whose
corner cases we chose.
"""
import datetime
import json
import os
import random

JSONPATHS = ["artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length",
             "level", "location", "method", "page", "registration", "sessionId", "song",
             "status", "ts", "userAgent", "userId"]

EPOCH = datetime.datetime(1970, 1, 1)


def _ms(dt):
    return int((dt - EPOCH).total_seconds() * 1000)


def _dump(obj):
    # The bucket's style: compact, ASCII with \u escapes, "/" written as "\/".
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")


def write_jsonpaths(root):
    with open(os.path.join(root, "log_json_path.json"), "w") as f:
        f.write('{\n"jsonpaths": [\n')
        f.write(",\n".join('"$[\'%s\']"' % p for p in JSONPATHS))
        f.write("\n]\n}")


def write_song(root, track_id, song, style="spaced"):
    d = os.path.join(root, "song_data", track_id[2], track_id[3], track_id[4])
    os.makedirs(d, exist_ok=True)
    if style == "spaced":
        text = json.dumps(song, ensure_ascii=True)
    elif style == "utf8":
        text = json.dumps(song, ensure_ascii=False)
    else:
        text = _dump(song)
    with open(os.path.join(d, track_id + ".json"), "w", encoding="utf-8") as f:
        f.write(text)  # no final newline, like the bucket


def write_events(root, events):
    """Writes events to one file per UTC day, keeping the given order inside a day."""
    by_day = {}
    for e in events:
        day = (EPOCH + datetime.timedelta(milliseconds=e["ts"])).date()
        by_day.setdefault(day, []).append(e)
    for day, evs in by_day.items():
        d = os.path.join(root, "log_data", "%04d" % day.year, "%02d" % day.month)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "%s-events.json" % day.isoformat()), "w") as f:
            f.write("\n".join(_dump(e) for e in evs))  # LF, no final newline


def song(song_id, title, artist_id, artist_name, duration, year=0, lat=None, lon=None,
         location=""):
    return {"num_songs": 1, "artist_id": artist_id, "artist_latitude": lat,
            "artist_longitude": lon, "artist_location": location, "artist_name": artist_name,
            "song_id": song_id, "title": title, "duration": duration, "year": year}


UA = '"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0"'


def event(ts, page="NextSong", user=None, song=None, artist=None, length=None, session=1,
          item=0, level=None):
    if user is None:  # logged out
        return {"artist": None, "auth": "Logged Out", "firstName": None, "gender": None,
                "itemInSession": item, "lastName": None, "length": None, "level": "free",
                "location": None, "method": "GET", "page": page, "registration": None,
                "sessionId": session, "song": None, "status": 200, "ts": ts,
                "userAgent": None, "userId": ""}
    uid, first, last, gender, lvl, loc, reg = user
    return {"artist": artist, "auth": "Logged In", "firstName": first, "gender": gender,
            "itemInSession": item, "lastName": last, "length": length,
            "level": level or lvl, "location": loc, "method": "PUT" if page == "NextSong" else "GET",
            "page": page, "registration": reg, "sessionId": session, "song": song,
            "status": 200 if page != "Error" else 404, "ts": ts, "userAgent": UA,
            "userId": str(uid)}


def edge_case_tree(root):
    """Writes the hand-made tree; returns a dict of facts the tests may assert."""
    os.makedirs(root, exist_ok=True)
    write_jsonpaths(root)
    # Songs.  Track ids fix the input order (key byte order): TRA... < TRB...
    songs = [
        # Two different song_ids with the same title+artist+duration; the one that
        # comes first in input order has the LARGER song_id: the match must take
        # the smallest song_id.
        ("TRAAA001", song("SOZZZ", "Twin", "AR1", "Twins Band", 200.5, 1999, 10.5, -3.25, "Here")),
        ("TRAAA002", song("SOAAA", "Twin", "AR1", "Twins Band", 200.5, 2001, 10.5, -3.25, "Here")),
        # Same title and artist, different duration: matches only its own length.
        ("TRAAB001", song("SOBBB", "Twin", "AR1", "Twins Band", 200.25, 0, 10.5, -3.25, "Here")),
        # Duplicate song_id: the first occurrence (input order) wins in songs.
        ("TRAAB002", song("SODUP", "First Version", "AR2", "Dup Artist", 100.0, 1980)),
        ("TRABA001", song("SODUP", "Second Version", "AR2", "Dup Artist", 111.0, 1981)),
        # An artist whose two songs disagree: artists takes the first in input order.
        ("TRABA002", song("SOART1", "Alpha", "AR3", "Name One", 50.0, 0, None, None, "")),
        ("TRABB001", song("SOART2", "Beta", "AR3", "Name Two", 60.0, 0, 1.0, 2.0, "Elsewhere")),
        # Non-ASCII: escaped in one file, raw UTF-8 in another; a slash in the title.
        ("TRABB002", song("SOUNI1", "\u00bfD\u00f3nde va Chichi?", "AR4", "Ni\u00f1o", 123.456)),
        ("TRABC001", song("SOUNI2", "Caf\u00e9 / Tacuba", "AR5", "Bj\u00f6rk", 234.5678, 2008)),
        # Title-only match candidate (another artist's "Intro").
        ("TRABC002", song("SOINTRO", "Intro", "AR6", "40 Grit", 75.67628, 2003)),
        ("TRAZZ999", song("SOMISC", "Misc", "AR7", "Misc Artist", 29.54404, 1961, 0.0, 0.0, "Nowhere")),
    ]
    styles = ["spaced", "compact", "utf8"]
    for i, (tid, s) in enumerate(songs):
        write_song(root, tid, s, styles[i % 3])

    u1 = (15, "Lily", "Koch", "F", "paid", "Chicago-Naperville-Elgin, IL-IN-WI", 1541048010796.0)
    u2 = (29, "Jacqueline", "Lynch", "F", "free", "Atlanta-Sandy Springs-Roswell, GA", 1540223723796.0)
    u3 = (80, "Tegan", "Levine", "F", "free", "Portland-South Portland, ME", 1540794356796.0)
    u4 = (100, "Adler", "Barrera", "M", "free", "New York-Newark-Jersey City, NY-NJ-PA", 1541023999000.0)

    def t(y, mo, d, h=12, mi=0, s=0, ms=796):
        return _ms(datetime.datetime(y, mo, d, h, mi, s)) + ms

    ev = []
    # Day 1: matches and ts ties.
    ev += [
        event(t(2018, 11, 1, 10, 0, 0, 796), user=u1, song="Twin", artist="Twins Band", length=200.5, item=1),
        event(t(2018, 11, 1, 10, 0, 1, 0), user=u1, song="Twin", artist="Twins Band", length=200.25, item=2),
        event(t(2018, 11, 1, 10, 0, 2, 500), user=u2, song="Intro", artist="Someone Else", length=75.67628, session=2),
        event(t(2018, 11, 1, 10, 0, 3, 50), user=u2, song="Intro", artist="40 Grit", length=75.67628, session=2, item=1),
        event(t(2018, 11, 1, 10, 0, 4, 100), user=u2, song="Twin", artist="Twins Band", length=200.50000000001, session=2, item=2),
        # Same ts for two users, and same ts twice for one user with a level change:
        # the later line wins for users, and songplay_id follows line order.
        event(t(2018, 11, 1, 11, 0, 0, 796), user=u3, song="Second Version", artist="Dup Artist", length=111.0, session=3, level="free"),
        event(t(2018, 11, 1, 11, 0, 0, 796), user=u1, song="Alpha", artist="Name One", length=50.0, item=3),
        event(t(2018, 11, 1, 11, 0, 0, 796), user=u3, song="Beta", artist="Name Two", length=60.0, session=3, item=1, level="paid"),
        event(t(2018, 11, 1, 9, 0, 0, 796), user=u1, song="Misc", artist="Misc Artist", length=29.54404),  # earlier ts, later line
        event(t(2018, 11, 1, 9, 30, 0, 796), page="Home", user=None, session=9),
        event(t(2018, 11, 1, 9, 31, 0, 796), page="Login", user=None, session=9, item=1),
        event(t(2018, 11, 1, 9, 32, 0, 796), page="Home", user=u4, session=10),
        event(t(2018, 11, 1, 23, 59, 59, 999), user=u4, song="Not A Song", artist="Nobody", length=1.0, session=10, item=1),
    ]
    # Non-ASCII and mojibake: the song files hold the right text, the logs the
    # twice-encoded one, so only the correct one matches.
    ev += [
        event(t(2018, 11, 2, 0, 0, 0, 0), user=u2, song="\u00bfD\u00f3nde va Chichi?", artist="Ni\u00f1o", length=123.456, session=4),
        event(t(2018, 11, 2, 0, 0, 1, 0), user=u2, song="Caf\u00c3\u0083\u00c2\u00a9 / Tacuba", artist="Bj\u00c3\u0083\u00c2\u00b6rk", length=234.5678, session=4, item=1),
        event(t(2018, 11, 2, 0, 0, 2, 0), user=u2, song="Caf\u00e9 / Tacuba", artist="Bj\u00f6rk", length=234.5678, session=4, item=2, level="paid"),
        event(t(2018, 11, 2, 5, 0, 0, 796), page="Upgrade", user=u2, session=4, item=3),
    ]
    # ISO week and weekday edges: Sun 2018-12-30 (week 52, weekday 0), Mon
    # 2018-12-31 (week 1 of 2019), Tue 2019-01-01, Sun 2021-01-03 (week 53 of 2020),
    # Sat 2016-01-02 (week 53 of 2015, weekday 6), and midnight exactly.
    for i, day in enumerate([(2018, 12, 30), (2018, 12, 31), (2019, 1, 1), (2021, 1, 3), (2016, 1, 2)]):
        ev.append(event(t(*day, 0, 0, 0, 0), user=u3, song="Misc", artist="Misc Artist", length=29.54404, session=20 + i))
        ev.append(event(t(*day, 23, 0, 0, 1), user=u1, song="Zed", artist="Zed", length=2.0, session=30 + i))
    # The latest events of all: user 100 twice at the same ts with different
    # levels; users takes the later line.
    ev.append(event(t(2021, 1, 3, 23, 30, 0, 0), user=u4, song="Misc", artist="Misc Artist", length=29.54404, session=40, level="free"))
    ev.append(event(t(2021, 1, 3, 23, 30, 0, 0), user=u4, song="Misc", artist="Misc Artist", length=29.54404, session=40, item=1, level="paid"))
    # Some volume: plays of random songs, and pages other than NextSong.
    rng = random.Random(7)
    titles = [("Twin", "Twins Band", 200.5), ("Alpha", "Name One", 50.0), ("Nope", "Nobody", 10.0),
              ("Intro", "40 Grit", 75.67628), ("Misc", "Misc Artist", 29.54404)]
    for i in range(300):
        day = rng.randint(3, 9)
        ts = t(2018, 11, day, rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59), rng.choice([796, 0, 500, 50, 5, 120]))
        u = rng.choice([u1, u2, u3, u4])
        if rng.random() < 0.2:
            ev.append(event(ts, page=rng.choice(["Home", "Settings", "Help", "About"]), user=u, session=50 + i % 7))
        else:
            ti, ar, ln = rng.choice(titles)
            ev.append(event(ts, user=u, song=ti, artist=ar, length=ln, session=50 + i % 7, item=i % 50,
                            level=rng.choice(["free", "paid"])))
    # Shuffle inside days so line order differs from ts order (the day split keeps
    # the first two days' hand-made order).
    head, tail = ev[:17], ev[17:]
    rng.shuffle(tail)
    write_events(root, head + tail)
    return {"songs": len(songs), "events": len(ev)}


def bulk_tree(root, seed=1, songs=200, events=2000, days=5):
    """Generic random data, same layout as bench/etld-gen writes."""
    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    write_jsonpaths(root)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    catalog = []
    for i in range(songs):
        tid = "TR" + "".join(rng.choice("AB") for _ in range(3)) + "%08X" % rng.getrandbits(32)
        aid = "AR%05d" % rng.randint(0, max(1, songs // 2))
        s = song("SO%06d%s" % (i, rng.choice(letters)), "Title %d" % rng.randint(0, songs),
                 aid, "Artist " + aid, round(rng.uniform(30, 600), 5), rng.choice([0, 1990, 2005]),
                 rng.choice([None, round(rng.uniform(-90, 90), 5)]), None, rng.choice(["", "Town"]))
        catalog.append(s)
        write_song(root, tid, s, "spaced")
    start = datetime.datetime(2018, 11, 1)
    users = [(i, "First%d" % i, "Last%d" % i, rng.choice("FM"), rng.choice(["free", "paid"]),
              "City %d" % i, 1540000000796.0 + i) for i in range(1, 101)]
    ev = []
    for i in range(events):
        ts = _ms(start) + rng.randrange(days * 86400000)
        if rng.random() < 0.03:
            ev.append(event(ts, page="Home", user=None, session=i % 900))
        elif rng.random() < 0.15:
            ev.append(event(ts, page="Home", user=rng.choice(users), session=i % 900))
        else:
            if rng.random() < 0.3:
                s = rng.choice(catalog)
                ti, ar, ln = s["title"], s["artist_name"], s["duration"]
            else:
                ti, ar, ln = "Song %d" % rng.randint(0, 5000), "Band %d" % rng.randint(0, 500), round(rng.uniform(30, 600), 5)
            ev.append(event(ts, user=rng.choice(users), song=ti, artist=ar, length=ln, session=i % 900,
                            item=i % 120, level=rng.choice(["free", "paid"])))
    write_events(root, ev)
