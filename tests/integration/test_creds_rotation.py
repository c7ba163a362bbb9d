"""test_creds_rotation.py - credentials that change while a job runs.

etld reads its credentials from a shared credentials file; midway through a
stage job (server-side copies of a generated tree, each slowed by the proxy's
latency fault) the test rotates the key: it writes the new key into the file and makes the proxy
refuse the old one with 403 InvalidAccessKeyId, as S3 does once a key is
deactivated.  The refused requests resolve the credential chain again and
go through with the new key: the job succeeds.  When the file still holds
the old key, the second refusal fails the step, naming the code.
"""
import os
import time

import pytest

import etldtest
from s3env import s3env, ACCESS_KEY, SECRET_KEY  # noqa: F401  (the fixture)
from test_stage import upload_tree, settings, assert_staged

OLD = ("AKIDETLDROTATEOLD0001", "old/secret/0123456789abcdefghijklmnopqr")
NEW = ("AKIDETLDROTATENEW0002", "new/secret/0123456789abcdefghijklmnopqr")


@pytest.fixture(scope="module")
def tree(s3env, tmp_path_factory):  # noqa: F811
    d = os.path.join(str(tmp_path_factory.mktemp("rotation")), "data")
    etldtest.generate(d, seed=5, songs=120, events=1500, days=4)
    upload_tree(s3env, d, "rot")
    return d


@pytest.fixture
def rotation(s3env):  # noqa: F811
    s3env.reset()
    s3env.set_credentials({OLD[0]: OLD[1], NEW[0]: NEW[1]})
    yield s3env
    s3env.set_credentials({ACCESS_KEY: SECRET_KEY})
    s3env.reset()


def write_credentials(path, key):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % key)
    os.replace(tmp, path)  # as rotation tools do: the whole file at once


def start(etld_factory, s3env, workdir, bucket):  # noqa: F811
    creds = os.path.join(workdir, "credentials")
    write_credentials(creds, OLD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=creds, AWS_CONFIG_FILE=os.path.join(workdir, "none"),
               AWS_REGION=s3env.region, AWS_EC2_METADATA_DISABLED="true")
    d = etld_factory(env=env)
    # every copy waits: the job lasts long enough to rotate midway
    s3env.faults([{"fault": "latency", "ms": 40, "match": r"^PUT /%s/." % bucket}])
    job = d.submit(settings(s3env, bucket, src="rot", **{"stage.concurrency": 2}),
                   pipeline="stage")["job"]
    deadline = time.monotonic() + 30
    while s3env.stats()["faults"].get("latency", 0) < 15:
        assert time.monotonic() < deadline, "the copies never started: %s" % d.status(job)
        time.sleep(0.02)
    return d, job, creds


def test_rotated_key_is_picked_up_midjob(rotation, tree, etld_factory, workdir):
    d, job, creds = start(etld_factory, rotation, workdir, "dst1")
    write_credentials(creds, NEW)
    rotation.set_credentials({NEW[0]: NEW[1]})  # the old key is refused from now on
    assert d.status(job)["state"] == "running"  # the rotation happened mid-job
    st = d.wait_job(job, timeout=120)
    assert st["state"] == "succeeded", st
    stats = rotation.stats()
    assert stats["auth_failures"] >= 1, stats  # requests were refused, and went through
    copy = etldtest.step_of(st, "copy")
    assert copy["attempts"] == 1, copy  # not a step retry: the requests were sent again
    rotation.set_credentials({ACCESS_KEY: SECRET_KEY})
    assert_staged(rotation, tree, "dst1")


def test_second_refusal_fails_the_step(rotation, tree, etld_factory, workdir):
    d, job, creds = start(etld_factory, rotation, workdir, "dst2")
    rotation.set_credentials({NEW[0]: NEW[1]})  # refused, and the file still says OLD
    st = d.wait_job(job, timeout=60)
    assert st["state"] == "failed", st
    assert "InvalidAccessKeyId" in st["error"] and "copy" in st["error"], st["error"]
    assert rotation.stats()["auth_failures"] >= 2
