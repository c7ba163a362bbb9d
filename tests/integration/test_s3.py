"""test_s3.py - the S3 client (daemon/aws/s3.c on the libuv HTTP engine) against
s3rver behind the SigV4-checking, fault-injecting proxy (s3env.py).

The C side is driven through build/tests/tools/s3_tool, which prints one JSON
object per run.  Objects carry a pattern the tool checks byte by byte, so a
lost, duplicated or reordered byte (a bad Range resume) shows as
pattern_ok=false or mismatches > 0.
"""
import json
import os
import subprocess

import pytest

from s3env import s3env  # noqa: F401  (the fixture)

BUILD = os.environ.get("ETLD_BUILD", "/work/main/build")
TOOL = os.path.join(BUILD, "tests", "tools", "s3_tool")
MiB = 1024 * 1024


def tool(env, *args, secret=None, ok=True, timeout=120, extra_env=None):
    extra = {} if secret is None else {"AWS_SECRET_ACCESS_KEY": secret}
    extra.update(extra_env or {})
    r = subprocess.run([TOOL, "--endpoint", env.endpoint, "--base-ms", "20", "--cap-ms", "200"]
                       + [str(a) for a in args],
                       capture_output=True, text=True, env=env.env(**extra), timeout=timeout)
    assert r.stdout.strip(), "s3_tool printed nothing; stderr:\n%s\n%s" % (r.stderr,
                                                                          env.tail_logs())
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert bad not in r.stderr, r.stderr
    if ok is not None:
        assert (r.returncode == 0) == ok, "s3_tool %s -> %s\n%s" % (args, out, env.tail_logs())
    return out


@pytest.fixture(autouse=True)
def clean_faults(s3env):  # noqa: F811
    s3env.reset()
    yield
    s3env.reset()


@pytest.fixture(scope="module")
def bucket(s3env):  # noqa: F811
    tool(s3env, "mb", "data")
    return "data"


def test_bucket_lifecycle_path_style(s3env):  # noqa: F811
    out = tool(s3env, "mb", "life-cycle")
    assert out["already_existed"] is False
    again = tool(s3env, "mb", "life-cycle")  # ours already: success
    assert again["already_existed"] is True
    assert tool(s3env, "hb", "life-cycle")["region"]
    missing = tool(s3env, "hb", "no-such-bucket", ok=False)
    assert missing["status"] == 404 and missing["errno"] == 2
    tool(s3env, "rb", "life-cycle")
    recent = s3env.stats()["recent"]
    # path-style addressing against the endpoint override: Host is the
    # endpoint, the bucket is the first path segment
    host = "127.0.0.1:%d" % s3env.proxy_port
    assert "PUT %s /life-cycle" % host in recent
    assert "DELETE %s /life-cycle" % host in recent
    assert not any(line.split()[1].startswith("life-cycle.") for line in recent)


def test_wrong_secret_refused(s3env, bucket):  # noqa: F811
    out = tool(s3env, "put", bucket, "refused.txt", "--size", "10", secret="not-the-secret",
               ok=False)
    assert out["code"] == "SignatureDoesNotMatch"
    assert out["status"] == 403
    assert out["request_id"]
    assert "SignatureDoesNotMatch" in out["error"] and out["request_id"] in out["error"]
    assert out["attempts"] == 1  # an authentication error is final
    assert s3env.stats()["signature_failures"] == 1
    assert tool(s3env, "head", bucket, "refused.txt", ok=False)["status"] == 404


def test_unknown_access_key(s3env, bucket):  # noqa: F811
    r = subprocess.run([TOOL, "--endpoint", s3env.endpoint, "ls", bucket], capture_output=True,
                       text=True, env=s3env.env(AWS_ACCESS_KEY_ID="AKIDNOBODY"), timeout=60)
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["code"] == "InvalidAccessKeyId"


def test_put_head_get_special_key(s3env, bucket):  # noqa: F811
    key = "dir/a b+c&d=e~(1)ü.json"
    put = tool(s3env, "put", bucket, key, "--size", 5000)
    assert put["size"] == 5000 and put["etag"]
    head = tool(s3env, "head", bucket, key)
    assert head["size"] == 5000 and head["etag"] == put["etag"]
    get = tool(s3env, "get", bucket, key)
    assert get["bytes"] == 5000 and get["pattern_ok"]
    part = tool(s3env, "get", bucket, key, "--offset", 4000)  # Range, as for a resume
    assert part["bytes"] == 5000 and part["pattern_ok"]
    nokey = tool(s3env, "get", bucket, "no/such/key", ok=False)
    assert nokey["code"] == "NoSuchKey" and nokey["errno"] == 2


def test_listing_across_pages(s3env):  # noqa: F811
    tool(s3env, "mb", "listing")
    put = tool(s3env, "putmany", "listing", "k/", 2100, "--size", 16, "--concurrency", 32)
    assert put["objects"] == 2100 and put["failures"] == 0
    tool(s3env, "put", "listing", "other/x", "--size", 1)
    ls = tool(s3env, "ls", "listing", "k/", "--keys")
    assert ls["count"] == 2100
    assert ls["pages"] == 3
    assert ls["keys"] == ["k/%05d" % i for i in range(2100)]
    small = tool(s3env, "ls", "listing", "k/01", "--max-keys", 40)
    assert small["count"] == 1000 and small["pages"] == 25
    # DeleteObjects in batches of 1000
    rm = tool(s3env, "rmprefix", "listing", "")
    assert rm["deleted"] == 2101
    assert s3env.stats()["methods"]["POST"] >= 3
    assert tool(s3env, "ls", "listing", "")["count"] == 0
    tool(s3env, "rb", "listing")


def test_copy_objects(s3env, bucket):  # noqa: F811
    tool(s3env, "putmany", bucket, "copy-src/", 30, "--size", 300)
    tool(s3env, "mb", "copy-dst")
    out = tool(s3env, "cpmany", bucket, "copy-src/", "copy-dst", "--concurrency", 8)
    assert out["objects"] == 30 and out["failures"] == 0
    one = tool(s3env, "cp", bucket, "copy-src/00007", "copy-dst", "renamed/7")
    assert one["etag"]
    got = tool(s3env, "getmany", "copy-dst", "copy-src/")
    assert got["objects"] == 30 and got["mismatches"] == 0 and got["bytes"] == 30 * 300
    missing = tool(s3env, "cp", bucket, "copy-src/none", "copy-dst", "x", ok=False)
    assert missing["code"] == "NoSuchKey"


def test_large_object_bounded_memory(s3env, bucket):  # noqa: F811
    size = 64 * MiB
    put = tool(s3env, "put", bucket, "big.bin", "--size", size, timeout=300)
    assert put["size"] == size
    small = tool(s3env, "get", bucket, "big.bin",
                 "--offset", size - 10)
    get = tool(s3env, "get", bucket, "big.bin", timeout=300)
    assert get["bytes"] == size and get["pattern_ok"]
    # The whole object went through; the process grew by far less than it.
    assert get["max_rss_kb"] - small["max_rss_kb"] < 16 * 1024, (get, small)
    assert put["max_rss_kb"] - small["max_rss_kb"] < 16 * 1024, (put, small)
    # A consumer that refuses every other chunk (S3_PAUSE, resumed from a
    # timer): the transfer pauses instead of buffering, no byte is lost or
    # repeated.  (libcurl copies each refused chunk; under AddressSanitizer
    # its quarantine would keep every freed copy and show as growth.)
    br = tool(s3env, "get", bucket, "big.bin", "--pause", timeout=300,
              extra_env={"ASAN_OPTIONS": ":".join(
                  filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0"]))})
    assert br["bytes"] == size and br["pattern_ok"] and br["pauses"] > 100
    assert br["max_rss_kb"] - small["max_rss_kb"] < 16 * 1024, (br, small)


FAULTS = [
    {"fault": "slowdown", "every": 3, "count": 20},
    {"fault": "error500", "every": 4, "count": 15},
    {"fault": "reset", "every": 5, "count": 10},
    {"fault": "reset_after", "every": 5, "count": 10},
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f["fault"] for f in FAULTS])
def test_faults_every_object_exactly_once(s3env, bucket, fault):  # noqa: F811
    prefix = "f-%s/" % fault["fault"]
    s3env.faults([fault])
    put = tool(s3env, "putmany", bucket, prefix, 60, "--size", 2000, "--concurrency", 8)
    assert put["objects"] == 60 and put["failures"] == 0
    got = tool(s3env, "getmany", bucket, prefix, "--concurrency", 8)
    assert got["objects"] == 60 and got["failures"] == 0 and got["mismatches"] == 0
    assert got["bytes"] == 60 * 2000
    dst = "faults-" + fault["fault"].replace("_", "-")
    tool(s3env, "mb", dst)
    cp = tool(s3env, "cpmany", bucket, prefix, dst, "--concurrency", 8)
    assert cp["objects"] == 60 and cp["failures"] == 0
    st = s3env.stats()
    assert st["faults"][fault["fault"]] == fault["count"]
    s3env.reset()
    ls = tool(s3env, "ls", dst, prefix, "--keys")
    assert ls["keys"] == ["%s%05d" % (prefix, i) for i in range(60)]
    assert tool(s3env, "getmany", dst, prefix)["mismatches"] == 0


def test_reset_mid_body_resumes_with_range(s3env, bucket):  # noqa: F811
    size = 3 * MiB
    tool(s3env, "put", bucket, "resume.bin", "--size", size)
    s3env.faults([{"fault": "reset_body", "count": 2, "match": "^GET /data/resume.bin"}])
    for mode in ([], ["--pause"]):
        s3env.faults([{"fault": "reset_body", "count": 2, "match": "^GET /data/resume.bin"}])
        out = tool(s3env, "get", bucket, "resume.bin", *mode)
        assert out["bytes"] == size and out["pattern_ok"], out
        assert s3env.stats()["faults"]["reset_body"] == 2
        s3env.reset()


def test_throttling_honours_retry_after_and_gives_up(s3env, bucket):  # noqa: F811
    tool(s3env, "put", bucket, "ra.txt", "--size", 10)
    s3env.faults([{"fault": "slowdown", "count": 1, "retry_after": 1}])
    out = tool(s3env, "head", bucket, "ra.txt")
    assert out["attempts"] == 2 and out["seconds"] >= 0.9
    s3env.reset()
    s3env.faults([{"fault": "slowdown"}])  # forever
    out = tool(s3env, "get", bucket, "ra.txt", "--attempts", 3, ok=False)
    assert out["code"] == "SlowDown" and out["status"] == 503
    assert "giving up after 3 attempts" in out["error"]
    assert s3env.stats()["faults"]["slowdown"] == 3
    s3env.faults([{"fault": "throttle", "count": 2}])
    assert tool(s3env, "get", bucket, "ra.txt")["attempts"] == 3
    # HEAD replies carry no body: the code comes from the status
    s3env.faults([{"fault": "slowdown", "count": 1}])
    out = tool(s3env, "head", bucket, "ra.txt", "--attempts", 1, ok=False)
    assert out["code"] == "ServiceUnavailable" and out["status"] == 503


def test_cancel_in_flight(s3env, bucket):  # noqa: F811
    size = 4 * MiB
    tool(s3env, "put", bucket, "slow.bin", "--size", size)
    s3env.faults([{"fault": "slow_body", "bps": 200000}])
    out = tool(s3env, "get", bucket, "slow.bin", "--cancel-after-ms", 400, ok=False)
    assert out["cancelled"] is True and out["cancelled_requests"] == 1
    assert 0 < out["bytes"] < size and out["pattern_ok"]
    assert out["seconds"] < 3
    out = tool(s3env, "get", bucket, "slow.bin", "--cancel-after-bytes", 50000, ok=False)
    assert out["cancelled"] is True and out["bytes"] < size
    # a paused transfer is cancelled all the same
    out = tool(s3env, "get", bucket, "slow.bin", "--pause", "--cancel-after-ms", 300, ok=False)
    assert out["cancelled"] is True and out["cancelled_requests"] == 1
    assert out["bytes"] < size and out["seconds"] < 3


def test_connection_reuse(s3env, bucket):  # noqa: F811
    tool(s3env, "putmany", bucket, "reuse/", 100, "--size", 10, "--concurrency", 4)
    s3env.reset()
    got = tool(s3env, "getmany", bucket, "reuse/", "--concurrency", 4)
    assert got["objects"] == 100
    # 101 requests over at most a handful of keep-alive connections
    assert s3env.stats()["connections"] <= 6
