"""test_utf8.py - what the bytes of a source can and cannot do to etld's replies.

No byte of a source file may hide a job or hang a watcher: every text that
reaches JSON is valid UTF-8 (values and messages cut at character
boundaries, anything else replaced by U+FFFD at the one place journal rows
and events become JSON).  And a load error never shows more than the record
it rejects: a file that is not JSON fails the COPY naming the file and the
byte, a JSONPaths file that is not JSON likewise, without their contents.
"""
import json
import os
import random
import re

import etldtest
from etldtest import settings_for
from test_copy import SONGS_COPY, EVENTS_COPY, make_data, sql_dir, load_errors, run_job

SONG = ('{"num_songs":%s,"artist_id":"AR1","artist_latitude":null,"artist_longitude":null,'
        '"artist_location":"","artist_name":"Muse","song_id":"SO1","title":"Uprising",'
        '"duration":233.5,"year":2009}')


def answers_for(d, job):
    """list, status, errors and watch all answer for job; returns (status, errors)."""
    r = etldtest.etlctl(d.sock, "--json", "list", "--limit", "1000")
    assert r.returncode == 0, r.stdout + r.stderr
    ids = [j["id"] for j in json.loads(r.stdout)["jobs"]]
    assert job in ids, "job %d missing from list: %s" % (job, ids)
    r = etldtest.etlctl(d.sock, "list")
    assert r.returncode == 0 and "no jobs" not in r.stdout, r.stdout + r.stderr
    r = etldtest.etlctl(d.sock, "--json", "status", str(job))
    assert r.returncode in (0, 1), r.stdout + r.stderr
    st = json.loads(r.stdout)
    assert st["id"] == job
    r = etldtest.etlctl(d.sock, "status", str(job))
    assert r.returncode in (0, 1) and "no job" not in r.stderr, r.stdout + r.stderr
    errs = load_errors(d, job)
    r = etldtest.etlctl(d.sock, "errors", str(job))
    assert r.returncode == 0, r.stdout + r.stderr
    with d.conn() as c:
        assert c.result("watch", {"job": job})["job"] == job
        ev = c.next_event(timeout=10)
        while ev["params"]["kind"] != "end":
            ev = c.next_event(timeout=10)
        assert ev["params"]["state"] == st["state"]
    return st, errs


def test_multibyte_value_rejected_whole(etld, workdir):
    """`{"num_songs":"été"}` into an INTEGER column: the reason names the
    whole character, the value is whole, and the job stays visible."""
    data = make_data(os.path.join(workdir, "data"))
    with open(os.path.join(data, "song_data", "A", "B", "C", "TRABC1.json"), "w") as f:
        f.write(SONG % '"été"')
    sqld = sql_dir(workdir, EVENTS_COPY % "" + SONGS_COPY % "")
    st = run_job(etld, data, os.path.join(workdir, "wh.db"), sqld)
    job = st["_job"]
    assert st["state"] == "failed", st
    assert "Invalid digit, Value 'é', Pos 0, Type: Integer" in st["error"], st["error"]
    st, errs = answers_for(etld, job)
    assert len(errs) == 1, errs
    assert errs[0]["raw_field_value"] == "été"
    assert errs[0]["err_reason"] == "Invalid digit, Value 'é', Pos 0, Type: Integer"
    assert "été" in errs[0]["raw_line"]
    # a waiting client gets the end of the next such job
    r = etldtest.etlctl(etld.sock, "submit", "etl", "--wait",
                        *sum((["--set", "%s=%s" % kv] for kv in settings_for(
                            data, os.path.join(workdir, "wh2.db"),
                            **{"daemon.sql_dir": sqld}).items()), []), timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "failed" in r.stdout + r.stderr


VALID = [b"a", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"9", b"-", b" ", b"'",
         b"."]
ANY = VALID + [b"\xc3", b"\xe2\x82", b"\xff", b"\xfe", b"\x80", b"\xed\xa0\x80", b"\xc0\xaf",
               b"\\", b'"', b"\x00", b"\x01", b"\n", b"{"]


def random_text(rng, pieces, longest=40):
    """Bytes of the kinds in pieces: ASCII, multi-byte characters, and (ANY)
    cut and invalid sequences, quotes, backslashes, control bytes."""
    return b"".join(rng.choice(pieces) for _ in range(rng.randint(0, longest)))


SONG_FIELDS = ["num_songs", "artist_id", "artist_latitude", "artist_longitude",
               "artist_location", "artist_name", "song_id", "title", "duration", "year"]


def random_song(rng):
    """Half the records are valid UTF-8 (their values reach conversion and
    its messages: 'é' at the front of an INTEGER, 70 bytes of '€' into a
    64-byte excerpt), half hold any bytes (invalid UTF-8, broken JSON)."""
    pieces = VALID if rng.random() < .5 else ANY
    rec = []
    for name in SONG_FIELDS:
        key = name.encode() if rng.random() < .8 else random_text(rng, pieces, 8)
        rec.append(b'"%s":"%s"' % (key, random_text(rng, pieces, rng.choice((4, 40)))))
    return b"{" + b",".join(rec) + b"}\n"


def test_random_bytes_never_hide_a_job(etld, workdir):
    """Property: records with random bytes in every field, over several jobs;
    list, status, errors and watch answer for every one of them, and every
    reject counted by the load step is listed by errors."""
    rng = random.Random(int(os.environ.get("ETLD_TEST_SEED", "11")))
    sqld = sql_dir(workdir, EVENTS_COPY % "MAXERROR 100000" + SONGS_COPY % "MAXERROR 100000")
    strict = sql_dir(os.path.join(workdir, "strict"), EVENTS_COPY % "" + SONGS_COPY % "")
    jobs = []
    for n in range(8):
        data = make_data(os.path.join(workdir, "data%d" % n))
        with open(os.path.join(data, "song_data", "A", "B", "C", "TRABC1.json"), "wb") as f:
            for _ in range(30):
                f.write(random_song(rng))
        with open(os.path.join(data, "log_data", "2018", "11", "2018-11-03-events.json"),
                  "wb") as f:
            for _ in range(30):
                f.write(b'{"artist":"%s","itemInSession":"%s","ts":"%s","userId":"%s"}\n'
                        % tuple(random_text(rng, rng.choice((VALID, ANY))) for _ in range(4)))
        wh = os.path.join(workdir, "wh%d.db" % n)
        # odd jobs: MAXERROR 0, so the first reject's reason is the step's error
        st = run_job(etld, data, wh, strict if n % 2 else sqld)
        jobs.append(st["_job"])
    rejected = 0
    for job in jobs:
        st, errs = answers_for(etld, job)
        assert st["state"] in ("succeeded", "failed"), st
        counted = etldtest.step_of(st, "load")["progress"].get("errors", 0)
        assert len(errs) == counted, (len(errs), counted)
        rejected += len(errs)
        for e in errs:
            for k in ("raw_line", "raw_field_value", "err_reason"):
                assert isinstance(e[k], str)
    assert rejected > 0  # the property was exercised


def test_not_json_file_fails_without_contents(etld, workdir):
    """A source that is not JSON: the COPY fails naming it and the byte; no
    load error, no byte of it in any reply."""
    data = make_data(os.path.join(workdir, "data"))
    secret = os.path.join(workdir, "secret")
    os.makedirs(secret)
    with open(os.path.join(secret, "shadow"), "w") as f:
        f.write("root:$6$SECRETHASH:19000:0:99999:7:::\n" + "x" * 2000 + "\n")
    st = run_job(etld, data, os.path.join(workdir, "wh.db"),
                 sql_dir(workdir, EVENTS_COPY % "MAXERROR 10" + SONGS_COPY % "MAXERROR 10"),
                 **{"s3.song_data": "file://%s/shadow" % secret})
    assert st["state"] == "failed", st
    assert "%s/shadow' is not JSON: the text at byte 0 (line 1)" % secret in st["error"], st
    st, errs = answers_for(etld, st["_job"])
    assert errs == []
    assert "SECRET" not in json.dumps(st) and "root:" not in json.dumps(st)


def test_jsonpaths_file_not_json_fails_without_contents(etld, workdir):
    data = make_data(os.path.join(workdir, "data"))
    secret = os.path.join(workdir, "shadow")
    with open(secret, "w") as f:
        f.write("root:$6$SECRETHASH:19000:0:99999:7:::\n")
    st = run_job(etld, data, os.path.join(workdir, "wh.db"),
                 sql_dir(workdir, EVENTS_COPY % "" + SONGS_COPY % ""),
                 **{"s3.log_jsonpath": "file://" + secret})
    assert st["state"] == "failed", st
    assert re.search(r"JSONPaths: not a JSON file: parsing stops at byte \d+ \(line 1, column",
                     st["error"]), st["error"]
    assert secret in st["error"]
    text = json.dumps(etldtest.etlctl(etld.sock, "--json", "status", str(st["_job"])).stdout)
    assert "SECRET" not in text and "root:" not in text
