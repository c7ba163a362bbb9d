"""test_source_s3.py - the s3:// COPY source (daemon/load/source_s3.c) on the
loop, against s3rver behind the SigV4-checking, fault-injecting proxy.

The C side is tests/unit/test_source (its "s3" group, which skips without
ETLD_TEST_S3_ENDPOINT): listing across ListObjectsV2 pages, a consumer that
pauses every other chunk, cancel mid-object, and an object whose transfer
the proxy cuts twice mid-body, which the consumer must still get once, byte
for byte (the S3 client resumes with Range and If-Match).
"""
import os
import subprocess

from s3env import s3env  # noqa: F401  (the fixture)

BUILD = os.environ.get("ETLD_BUILD", "/work/main/build")
TEST = os.path.join(BUILD, "tests", "unit", "test_source")


def run_s3_group(env, bucket, drops):
    extra = {"ETLD_TEST_S3_ENDPOINT": env.endpoint, "ETLD_TEST_S3_BUCKET": bucket}
    if drops:
        extra["ETLD_TEST_S3_DROPS"] = "1"
    r = subprocess.run([TEST], capture_output=True, text=True, env=env.env(**extra),
                       timeout=300)
    out = r.stdout + r.stderr
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert bad not in out, out
    assert r.returncode == 0, out + env.tail_logs()
    return out


def test_source_s3_group(s3env):  # noqa: F811
    s3env.reset()
    s3env.faults([{"fault": "reset_body", "count": 2, "match": "^GET /src-drops/drop.bin"}])
    out = run_s3_group(s3env, "src-drops", True)
    # every s3 test ran (none skipped), and the cut transfer was cut twice
    assert "[  PASSED  ] 4 test(s)." in out, out
    assert "SKIPPED" not in out, out
    st = s3env.stats()
    assert st["faults"]["reset_body"] == 2, st
    assert st["signature_failures"] == 0, st
