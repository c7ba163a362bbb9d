"""test_stage.py - the stage pipeline (daemon/stage.c) and the loader's s3://
source, against s3rver behind the SigV4-checking, fault-injecting proxy.

Data: a tree from bench/etld-gen uploaded straight to s3rver (no signing
needed there) into a source bucket; etld signs everything it sends through
the proxy with the credentials it gets from its environment.  Counting
CopyObject requests uses a proxy rule that adds 0 ms of latency to every
"PUT /BUCKET/KEY" with a copy source: the proxy counts how often a rule fired.
"""
import concurrent.futures
import http.client
import json
import os
import sqlite3
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

import etldtest
from s3env import s3env  # noqa: F401  (the fixture)

STAGED = ("song_data/", "log_data/", "log_json_path.json")


# ---- talking to s3rver directly (the test's own view of the buckets) ----

_local = threading.local()


def _conn(env):
    c = getattr(_local, "conn", None)
    if c is None or getattr(_local, "port", None) != env.s3rver_port:
        c = http.client.HTTPConnection("127.0.0.1", env.s3rver_port, timeout=30)
        _local.conn, _local.port = c, env.s3rver_port
    return c


def raw(env, method, path, body=None, query=""):
    for attempt in (1, 2):
        c = _conn(env)
        try:
            c.request(method, urllib.parse.quote(path) + (("?" + query) if query else ""),
                      body=body, headers={"Content-Length": str(len(body or b""))})
            r = c.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            c.close()
            _local.conn = None
            if attempt == 2:
                raise


def make_bucket(env, bucket):
    status, body = raw(env, "PUT", "/" + bucket)
    assert status in (200, 409), (status, body)


def files_of(tree):
    out = {}
    for root, _, names in os.walk(tree):
        for n in names:
            p = os.path.join(root, n)
            out[os.path.relpath(p, tree)] = p
    return out


def upload_tree(env, tree, bucket, extra=None):
    """Every file of tree as an object (key = path relative to tree)."""
    make_bucket(env, bucket)
    items = sorted(files_of(tree).items()) + sorted((extra or {}).items())

    def put(item):
        key, path = item
        data = open(path, "rb").read() if isinstance(path, str) else path
        status, body = raw(env, "PUT", "/%s/%s" % (bucket, key), data)
        assert status == 200, (key, status, body)

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(put, items))


def list_bucket(env, bucket, prefix=""):
    """{key: (size, etag)} of every object under prefix."""
    out = {}
    token = None
    while True:
        q = "list-type=2&prefix=" + urllib.parse.quote(prefix, safe="")
        if token:
            q += "&continuation-token=" + urllib.parse.quote(token, safe="")
        status, body = raw(env, "GET", "/" + bucket, query=q)
        if status == 404:
            return None
        assert status == 200, (status, body)
        root = ET.fromstring(body)
        token = None
        for el in root:
            name = el.tag.split("}")[-1]
            if name == "Contents":
                f = {c.tag.split("}")[-1]: c.text for c in el}
                out[f["Key"]] = (int(f["Size"]), f["ETag"])
            elif name == "NextContinuationToken":
                token = el.text
        if not token:
            return out


def get(env, bucket, key):
    status, body = raw(env, "GET", "/%s/%s" % (bucket, key))
    assert status == 200, (bucket, key, status)
    return body


def expected_keys(tree):
    return sorted(k for k in files_of(tree)
                  if k.startswith(("song_data/", "log_data/")) or k == "log_json_path.json")


def assert_staged(env, tree, bucket):
    """The project bucket holds exactly the staged objects, byte for byte."""
    have = list_bucket(env, bucket)
    want = expected_keys(tree)
    assert sorted(have) == want
    files = files_of(tree)
    for k in want:
        assert get(env, bucket, k) == open(files[k], "rb").read(), k


# ---- etld side ----

def settings(env, bucket, src="src", **more):
    s = {"aws.endpoint_url": env.endpoint, "aws.region": env.region,
         "stage.source_bucket": src, "stage.source_region": env.region,
         "stage.bucket": bucket}
    s.update(more)
    return s


def count_copies(env, bucket):
    """Makes the proxy count CopyObject requests into bucket (and nothing else)."""
    env.faults([{"fault": "latency", "ms": 0, "match": r"^PUT /%s/." % bucket}])


def copies(env):
    return env.stats()["faults"].get("latency", 0)


def outputs(st, step):
    return etldtest.step_of(st, step).get("outputs") or {}


def messages(st):
    return [e.get("message", "") for e in st.get("events") or []]


@pytest.fixture(autouse=True)
def clean_faults(s3env):  # noqa: F811
    s3env.reset()
    yield
    s3env.reset()


@pytest.fixture(scope="module")
def tree(s3env, tmp_path_factory):  # noqa: F811
    d = os.path.join(str(tmp_path_factory.mktemp("stage")), "data")
    etldtest.generate(d, seed=21, songs=240, events=3000, days=6)
    # distractors: near the staged prefixes but not under them
    extra = {"log_json_path.json.bak": b"{}", "song_data_old/x.json": b"{}",
             "other/y.json": b"{}"}
    upload_tree(s3env, d, "src", extra)
    return d


def run_stage(d, env, bucket, timeout=60, **more):
    job = d.submit(settings(env, bucket, **more), pipeline="stage")["job"]
    return d.wait_job(job, timeout=timeout)


def test_stage_twice_copies_once(s3env, tree, etld_factory):  # noqa: F811
    d = etld_factory(env=s3env.env())
    count_copies(s3env, "proj")
    st = run_stage(d, s3env, "proj")
    assert st["state"] == "succeeded", json.dumps(st, indent=1)
    n = len(expected_keys(tree))
    assert copies(s3env) == n
    assert_staged(s3env, tree, "proj")
    out = outputs(st, "copy")
    assert out["objects_total"] == str(n) and out["objects_copied"] == str(n)
    assert out["objects_present"] == "0"
    assert outputs(st, "create-bucket").get("bucket_created") == "true"
    prog = etldtest.step_of(st, "copy").get("progress") or {}
    assert prog.get("objects") == n and prog.get("bytes") == int(out["bytes_total"])
    # the totals a watcher's bar and time left come from
    assert prog.get("objects_total") == n and prog.get("bytes_total") == int(out["bytes_total"])

    s3env.reset()
    count_copies(s3env, "proj")
    again = run_stage(d, s3env, "proj")
    assert again["state"] == "succeeded", json.dumps(again, indent=1)
    assert copies(s3env) == 0  # the second run copies nothing
    out = outputs(again, "copy")
    assert out["objects_copied"] == "0" and out["objects_present"] == str(n)
    co = outputs(again, "create-bucket")
    assert co.get("bucket_existed") == "true" and "bucket_created" not in co
    assert_staged(s3env, tree, "proj")
    # secrets stay out of what etld says and keeps
    blob = json.dumps(again) + d.stderr_text()
    assert s3env.secret_key not in blob


def test_dry_run_lists_and_changes_nothing(s3env, tree, etld_factory):  # noqa: F811
    d = etld_factory(env=s3env.env())
    st = run_stage(d, s3env, "proj-dry", **{"stage.dry_run": "true"})
    assert st["state"] == "succeeded", json.dumps(st, indent=1)
    assert s3env.stats()["methods"].get("PUT", 0) == 0
    assert list_bucket(s3env, "proj-dry") is None  # not created
    n = len(expected_keys(tree))
    assert outputs(st, "create-bucket")["bucket_would_create"] == "true"
    out = outputs(st, "copy")
    assert out["dry_run"] == "true" and out["objects_would_copy"] == str(n)
    msgs = messages(st)
    assert any("would copy %d" % n in m for m in msgs), msgs
    assert any(m.startswith("dry run: would copy s3://src/song_data/") for m in msgs), msgs


def test_wrong_secret_is_a_clear_job_error(s3env, tree, etld_factory):  # noqa: F811
    d = etld_factory(env=s3env.env(AWS_SECRET_ACCESS_KEY="not-the-secret"))
    st = run_stage(d, s3env, "proj-bad")
    assert st["state"] == "failed"
    assert "SignatureDoesNotMatch" in st["error"], st["error"]
    assert "create-bucket" in st["error"]
    assert "not-the-secret" not in json.dumps(st) + d.stderr_text()
    # an authentication error is not retried
    assert etldtest.step_of(st, "create-bucket")["attempts"] == 1


def test_faults_every_object_exactly_once(s3env, tree, etld_factory):  # noqa: F811
    d = etld_factory(env=s3env.env())
    s3env.faults([
        {"fault": "slowdown", "every": 3, "count": 40},
        {"fault": "error500", "every": 5, "count": 25},
        {"fault": "reset", "every": 7, "count": 15},
        {"fault": "reset_after", "every": 11, "count": 10},
    ])
    st = run_stage(d, s3env, "proj-faults", timeout=80)
    assert st["state"] == "succeeded", json.dumps(st, indent=1)
    f = s3env.stats()["faults"]
    assert f.get("slowdown") and f.get("error500") and f.get("reset") and f.get("reset_after")
    s3env.reset()
    assert_staged(s3env, tree, "proj-faults")


def test_kill9_during_copy_resumes_without_recopying(s3env, tree, etld_factory):  # noqa: F811
    d = etld_factory(env=s3env.env())
    n = len(expected_keys(tree))
    # slow copies, few at a time: the kill lands in the middle
    s3env.faults([{"fault": "latency", "ms": 40, "match": r"^PUT /proj-kill/."}])
    job = d.submit(settings(s3env, "proj-kill", **{"stage.concurrency": "4"}),
                   pipeline="stage")["job"]
    d.wait_step(job, "copy", pred=lambda s: (s.get("progress") or {}).get("objects", 0) >= 20,
                timeout=60)
    d.kill9()
    time.sleep(0.5)  # copies the proxy had forwarded land
    done = list_bucket(s3env, "proj-kill")
    assert 20 <= len(done) < n, len(done)
    s3env.reset()
    count_copies(s3env, "proj-kill")
    d.start()
    st = d.wait_job(job, timeout=60)
    assert st["state"] == "succeeded", json.dumps(st, indent=1)
    # only what was missing was copied after the restart
    assert copies(s3env) == n - len(done)
    assert outputs(st, "copy")["objects_present"] == str(len(done))
    assert_staged(s3env, tree, "proj-kill")


def test_cancel_stops_inflight_copies(s3env, tree, etld_factory):  # noqa: F811
    d = etld_factory(env=s3env.env())
    s3env.faults([{"fault": "latency", "ms": 3000, "match": r"^PUT /proj-cancel/."}])
    job = d.submit(settings(s3env, "proj-cancel"), pipeline="stage")["job"]
    d.wait_step(job, "copy", timeout=30)
    time.sleep(0.3)
    t0 = time.monotonic()
    d.rpc("cancel", {"job": job})
    st = d.wait_job(job, timeout=10)
    assert st["state"] == "cancelled"
    assert time.monotonic() - t0 < 2.5  # did not wait for the 3 s copies


# ---- the loader's s3:// source ----

def etl_settings(env, wh, bucket="src", **more):
    s = {"aws.endpoint_url": env.endpoint, "aws.region": env.region,
         # with the slash: song_data_old/ (a distractor) is not under it
         "s3.song_data": "s3://%s/song_data/" % bucket,
         "s3.log_data": "s3://%s/log_data/" % bucket,
         "s3.log_jsonpath": "s3://%s/log_json_path.json" % bucket,
         "warehouse.target": "sqlite://" + wh}
    s.update(more)
    return s


def sorted_dump(wh):
    import expected
    return {t: (cols, sorted(rows, key=repr)) for t, (cols, rows) in expected.dump(wh).items()}


def test_etl_from_s3_equals_file_run(s3env, tree, etld_factory, workdir):  # noqa: F811
    d = etld_factory(env=s3env.env())
    wh_file = os.path.join(workdir, "file.db")
    st = d.wait_job(d.submit(etldtest.settings_for(tree, wh_file))["job"], timeout=60)
    etldtest.assert_job_succeeded(st)
    wh_s3 = os.path.join(workdir, "s3.db")
    st = d.wait_job(d.submit(etl_settings(s3env, wh_s3))["job"], timeout=60)
    etldtest.assert_job_succeeded(st)
    a, b = sorted_dump(wh_file), sorted_dump(wh_s3)
    assert a["staging_events"][1] and a["staging_songs"][1]
    for t in a:
        assert a[t] == b[t], "table %s differs between the file:// and s3:// runs" % t
    # every object read exactly once, through GETs the proxy saw
    objs = len([k for k in expected_keys(tree) if k != "log_json_path.json"])
    assert etldtest.step_of(st, "load")["progress"]["objects"] == objs


def test_etl_from_s3_under_faults(s3env, tree, etld_factory, workdir):  # noqa: F811
    d = etld_factory(env=s3env.env())
    wh_file = os.path.join(workdir, "file.db")
    st = d.wait_job(d.submit(etldtest.settings_for(tree, wh_file))["job"], timeout=60)
    etldtest.assert_job_succeeded(st)
    s3env.faults([
        {"fault": "slowdown", "every": 3, "count": 30},
        {"fault": "error500", "every": 5, "count": 20},
        {"fault": "reset", "every": 7, "count": 10},
        {"fault": "reset_body", "every": 9, "count": 5, "match": "^GET /src/song_data/"},
    ])
    wh_s3 = os.path.join(workdir, "s3.db")
    st = d.wait_job(d.submit(etl_settings(s3env, wh_s3))["job"], timeout=80)
    etldtest.assert_job_succeeded(st)
    f = s3env.stats()["faults"]
    assert f.get("slowdown") and f.get("error500") and f.get("reset"), f
    a, b = sorted_dump(wh_file), sorted_dump(wh_s3)
    for t in a:
        assert a[t] == b[t], "table %s differs after faults (lost or duplicated rows)" % t


def test_etl_s3_wrong_secret(s3env, tree, etld_factory, workdir):  # noqa: F811
    d = etld_factory(env=s3env.env(AWS_SECRET_ACCESS_KEY="wrong-secret"))
    st = d.wait_job(d.submit(etl_settings(s3env, os.path.join(workdir, "w.db")))["job"],
                    timeout=60)
    assert st["state"] == "failed"
    assert "SignatureDoesNotMatch" in st["error"] and "load" in st["error"], st["error"]


@pytest.mark.parametrize("how", ["environment", "profile"])
def test_region_and_endpoint_by_aws_cli_conventions(s3env, tree, etld_factory, workdir,  # noqa: F811
                                                    how):
    """With no [aws] region or endpoint in etld's settings, the AWS CLI's own
    conventions apply: AWS_REGION and AWS_ENDPOINT_URL_S3 in the
    environment, or the profile's region and endpoint_url."""
    env = s3env.env()
    if how == "environment":
        env.update(AWS_REGION=s3env.region, AWS_ENDPOINT_URL_S3=s3env.endpoint)
        more = {}
        source = "AWS_REGION"
    else:
        conf = os.path.join(workdir, "aws-config")
        with open(conf, "w") as f:
            f.write("[profile etl]\nregion = %s\nendpoint_url = %s\n"
                    % (s3env.region, s3env.endpoint))
        env.update(AWS_CONFIG_FILE=conf, AWS_REGION="", AWS_DEFAULT_REGION="")
        more = {"aws.profile": "etl"}
        source = "%s [profile etl]" % conf
        # the profile's credentials: the same keys, in its credentials file
        creds = os.path.join(workdir, "aws-credentials")
        with open(creds, "w") as f:
            f.write("[etl]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    % (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]))
        env.update(AWS_SHARED_CREDENTIALS_FILE=creds)
    d = etld_factory(env=env)
    s = etl_settings(s3env, os.path.join(workdir, "conv.db"), **more)
    del s["aws.endpoint_url"], s["aws.region"]
    st = d.wait_job(d.submit(s)["job"], timeout=60)
    etldtest.assert_job_succeeded(st)
    with open(d.stderr_path) as f:
        log = f.read()
    assert "region %s from %s" % (s3env.region, source) in log, log[-3000:]
