"""test_creds_sources.py - the credential sources that run or ask something.

Each test runs a stage job (server-side copies from an s3:// source on the
S3 emulator behind its SigV4-checking proxy) with credentials from one
source only, and proves etld used it:

- credential_process: a script prints the proxy's key; it counts its calls;
- assume role (source_profile, two roles chained): etld signs AssumeRole
  with the source profile's keys for moto's STS; a small tap between them
  forwards the calls through the SigV4-checking awsproxy and teaches the S3
  proxy the keys STS issued, and only those;
- web identity: AssumeRoleWithWebIdentity, unsigned, with the token file;
- container credentials: a local server that wants the token file's token;
  also as an assumed role's credential_source (EcsContainer);
- expiry mid-job: the process's first credentials expire within minutes,
  etld resolves again before signing, and the S3 proxy then refuses the old
  key: no request is refused and the job succeeds.
"""
import http.client
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

import etldtest
from s3env import s3env, ACCESS_KEY, SECRET_KEY  # noqa: F401  (the fixture)
from motoenv import motoenv  # noqa: F401  (the fixture)
from test_stage import upload_tree, settings, assert_staged

ROLE = "arn:aws:iam::123456789012:role/etl-loader"


@pytest.fixture(scope="module")
def tree(s3env, tmp_path_factory):  # noqa: F811
    d = os.path.join(str(tmp_path_factory.mktemp("sources")), "data")
    etldtest.generate(d, seed=8, songs=60, events=800, days=3)
    upload_tree(s3env, d, "srcs")
    return d


@pytest.fixture
def proxy(s3env):  # noqa: F811
    s3env.reset()
    yield s3env
    s3env.set_credentials({ACCESS_KEY: SECRET_KEY})
    s3env.reset()


def clean_env(workdir, **extra):
    """No AWS setting from the test's environment, IMDS off, empty files."""
    env = {k: "" for k in os.environ if k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=os.path.join(workdir, "credentials"),
               AWS_CONFIG_FILE=os.path.join(workdir, "config"),
               AWS_EC2_METADATA_DISABLED="true", CREDENTIALS_DIRECTORY="")
    env.update(extra)
    return env


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def reply(handler, status, body, ctype):
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serve(handler_class):
    """A threaded local HTTP server, started; stop it with stop_server."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_server(server):
    server.shutdown()
    server.server_close()


def stage_settings(s3, bucket, **more):
    """The stage job's settings, the emulator as S3's endpoint only: STS is
    where the test says (aws.endpoint_url would be every service's)."""
    s = settings(s3, bucket, src="srcs", **more)
    s["aws.endpoint_url_s3"] = s.pop("aws.endpoint_url")
    return s


def run_stage(d, s3, bucket, timeout=90, **more):
    job = d.submit(stage_settings(s3, bucket, **more), pipeline="stage")["job"]
    return job, d.wait_job(job, timeout=timeout)


def creds_line(d):
    """etld's log line saying where a step's credentials came from."""
    lines = [ln for ln in d.stderr_text().splitlines() if "AWS credentials from" in ln]
    assert lines, d.stderr_tail()
    return lines[-1]


PROCESS = r'''#!/usr/bin/python3
import json, os, sys, time
state = sys.argv[1]
with open(os.path.join(state, "keys.json")) as f:
    keys = json.load(f)
switch = float(open(os.path.join(state, "switch_at")).read())
now = time.time()
which = "old" if now < switch else "new"
exp = switch + 300 if which == "old" else now + 3600
with open(os.path.join(state, "calls"), "a") as f:
    f.write(which + "\n")
print(json.dumps({"Version": 1, "AccessKeyId": keys[which][0],
                  "SecretAccessKey": keys[which][1], "SessionToken": "process-token",
                  "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))}))
'''


def process_setup(workdir, old, new, switch_in):
    state = os.path.join(workdir, "proc")
    os.makedirs(state, exist_ok=True)
    write(os.path.join(state, "keys.json"), json.dumps({"old": old, "new": new}))
    write(os.path.join(state, "switch_at"), repr(time.time() + switch_in))
    script = write(os.path.join(state, "helper.py"), PROCESS, 0o700)
    write(os.path.join(workdir, "config"),
          "[profile etl]\nregion = us-east-1\ncredential_process = %s '%s'\n" % (script, state))
    return os.path.join(state, "calls")


def calls(path):
    try:
        return open(path).read().split()
    except FileNotFoundError:
        return []


def test_credential_process(proxy, tree, etld_factory, workdir):
    log = process_setup(workdir, (ACCESS_KEY, SECRET_KEY), ("AKIDUNUSED", "x"), 10 ** 6)
    d = etld_factory(env=clean_env(workdir, AWS_PROFILE="etl"))
    job, st = run_stage(d, proxy, "proc1")
    assert st["state"] == "succeeded", st
    assert calls(log) and set(calls(log)) == {"old"}, calls(log)
    assert "credential_process of" in creds_line(d)
    assert proxy.stats().get("auth_failures", 0) == 0
    assert "process-token" not in d.stderr_text()  # its output is never logged
    assert_staged(proxy, tree, "proc1")


def test_credential_process_failure_is_said(proxy, tree, etld_factory, workdir):
    script = write(os.path.join(workdir, "fail.sh"),
                   "#!/bin/sh\necho 'SSO session expired, run aws sso login' >&2\nexit 2\n", 0o700)
    write(os.path.join(workdir, "config"), "[default]\ncredential_process = %s\n" % script)
    d = etld_factory(env=clean_env(workdir))
    job, st = run_stage(d, proxy, "proc2")
    assert st["state"] == "failed", st
    text = json.dumps(st)
    assert "exited with status 2: SSO session expired, run aws sso login" in text, text
    assert "[default]" in text


class StsTap:
    """Between etld and moto's STS: signed calls go through the SigV4-checking
    awsproxy (which knows the source profile's key and, for chained roles,
    the keys STS issued), unsigned ones (web identity) straight to moto.  The
    S3 proxy is taught the issued keys and only those."""

    def __init__(self, moto, s3):
        self.moto, self.s3 = moto, s3
        self.calls, self.issued = [], {}
        tap = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                form = urllib.parse.parse_qs(body.decode())
                signed = "Authorization" in self.headers
                tap.calls.append((form, signed))
                port = tap.moto.proxy_port if signed else tap.moto.moto_port
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("connection", "content-length")}
                c.request("POST", self.path, body, hdrs)
                r = c.getresponse()
                data = r.read()
                if r.status == 200:
                    vals = {el.tag.split("}")[-1]: el.text for el in ET.fromstring(data).iter()}
                    tap.issued[vals["AccessKeyId"]] = vals["SecretAccessKey"]
                    tap.s3.set_credentials(dict(tap.issued))
                    tap.moto.set_credentials(dict(tap.issued, **{tap.moto.access_key:
                                                                 tap.moto.secret_key}))
                reply(self, r.status, data, r.getheader("Content-Type", "text/xml"))

        self.server = serve(Handler)
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]

    def actions(self):
        return [f["Action"][0] for f, _ in self.calls]

    def stop(self):
        stop_server(self.server)
        self.moto.set_credentials({self.moto.access_key: self.moto.secret_key})


@pytest.fixture
def tap(motoenv, proxy):  # noqa: F811
    motoenv.reset()
    t = StsTap(motoenv, proxy)
    proxy.set_credentials({})  # nothing but what STS issues
    yield t
    t.stop()


def test_assume_role_chain(tap, motoenv, proxy, tree, etld_factory, workdir):  # noqa: F811
    write(os.path.join(workdir, "credentials"),
          "[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
          % (motoenv.access_key, motoenv.secret_key))
    write(os.path.join(workdir, "config"),
          "[profile hop]\nrole_arn = arn:aws:iam::123456789012:role/hop\nsource_profile = base\n"
          "[profile etl]\nrole_arn = %s\nsource_profile = hop\nrole_session_name = nightly\n"
          "external_id = ext-42\nduration_seconds = 1800\n" % ROLE)
    d = etld_factory(env=clean_env(workdir, AWS_PROFILE="etl", AWS_REGION=proxy.region,
                                   AWS_ENDPOINT_URL_STS=tap.endpoint))
    job, st = run_stage(d, proxy, "role1")
    assert st["state"] == "succeeded", (st, d.stderr_tail())
    # hop first (signed with base's key, checked by awsproxy), then the role
    assert tap.actions()[:2] == ["AssumeRole", "AssumeRole"], tap.calls
    first, second = tap.calls[0][0], tap.calls[1][0]
    assert first["RoleArn"] == ["arn:aws:iam::123456789012:role/hop"]
    assert second["RoleArn"] == [ROLE] and second["RoleSessionName"] == ["nightly"]
    assert second["ExternalId"] == ["ext-42"] and second["DurationSeconds"] == ["1800"]
    assert all(signed for _, signed in tap.calls)
    assert motoenv.stats().get("auth_failures", 0) == 0
    assert proxy.stats().get("auth_failures", 0) == 0
    assert "role %s (profile etl) assumed with role" % ROLE in creds_line(d)
    proxy.set_credentials({ACCESS_KEY: SECRET_KEY})
    assert_staged(proxy, tree, "role1")


def test_assume_role_refused_says_why(tap, motoenv, proxy, tree, etld_factory,  # noqa: F811
                                      workdir):
    # the source key is not one awsproxy knows: STS refuses, the job says so
    write(os.path.join(workdir, "credentials"),
          "[base]\naws_access_key_id = AKIDNOTKNOWN\naws_secret_access_key = nope\n")
    write(os.path.join(workdir, "config"),
          "[profile etl]\nrole_arn = %s\nsource_profile = base\n" % ROLE)
    d = etld_factory(env=clean_env(workdir, AWS_PROFILE="etl", AWS_REGION=proxy.region,
                                   AWS_ENDPOINT_URL_STS=tap.endpoint))
    job, st = run_stage(d, proxy, "role2")
    assert st["state"] == "failed", st
    text = json.dumps(st)
    assert "assuming role %s" % ROLE in text and "STS AssumeRole: " in text, text
    assert "nope" not in text


def test_web_identity(tap, motoenv, proxy, tree, etld_factory, workdir):  # noqa: F811
    # STS at etld.conf's aws.endpoint_url_sts, which wins over the environment's
    token = write(os.path.join(workdir, "token"), "eyJhbGciOiJSUzI1NiJ9.etld.sig\n")
    d = etld_factory(env=clean_env(workdir, AWS_WEB_IDENTITY_TOKEN_FILE=token,
                                   AWS_ROLE_ARN=ROLE, AWS_ROLE_SESSION_NAME="pod-7",
                                   AWS_REGION=proxy.region,
                                   AWS_ENDPOINT_URL_STS="http://127.0.0.1:9"))
    job, st = run_stage(d, proxy, "web1", **{"aws.endpoint_url_sts": tap.endpoint})
    assert st["state"] == "succeeded", (st, d.stderr_tail())
    form, signed = tap.calls[0]
    assert form["Action"] == ["AssumeRoleWithWebIdentity"] and not signed
    assert form["WebIdentityToken"] == ["eyJhbGciOiJSUzI1NiJ9.etld.sig"]
    assert form["RoleArn"] == [ROLE] and form["RoleSessionName"] == ["pod-7"]
    assert "web identity token %s" % token in creds_line(d)
    assert "eyJhbGci" not in d.stderr_text()
    proxy.set_credentials({ACCESS_KEY: SECRET_KEY})
    assert_staged(proxy, tree, "web1")


class ContainerServer:
    """The ECS agent's credentials endpoint: wants the token, serves keys."""

    def __init__(self, token, keys):
        self.requests = []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.requests.append((self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != token:
                    body, status = b'{"code": "AccessDenied"}', 401
                else:
                    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
                    body = json.dumps({"AccessKeyId": keys[0], "SecretAccessKey": keys[1],
                                       "Token": "container-token", "Expiration": exp,
                                       "RoleArn": ROLE}).encode()
                    status = 200
                reply(self, status, body, "application/json")

        self.server = serve(Handler)
        self.url = "http://127.0.0.1:%d/v2/credentials/task-1" % self.server.server_address[1]

    def stop(self):
        stop_server(self.server)


@pytest.fixture
def container():
    c = ContainerServer("Bearer etld-pod-token", (ACCESS_KEY, SECRET_KEY))
    yield c
    c.stop()


def test_container_credentials(container, proxy, tree, etld_factory, workdir):
    tok = write(os.path.join(workdir, "auth"), "Bearer etld-pod-token\n")
    d = etld_factory(env=clean_env(workdir, AWS_CONTAINER_CREDENTIALS_FULL_URI=container.url,
                                   AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=tok,
                                   AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer wrong"))
    job, st = run_stage(d, proxy, "ctr1")
    assert st["state"] == "succeeded", (st, d.stderr_tail())
    assert container.requests and container.requests[0] == ("/v2/credentials/task-1",
                                                              "Bearer etld-pod-token")
    assert "container credentials %s" % container.url in creds_line(d)
    assert_staged(proxy, tree, "ctr1")


def test_container_wrong_token(container, proxy, tree, etld_factory, workdir):
    d = etld_factory(env=clean_env(workdir, AWS_CONTAINER_CREDENTIALS_FULL_URI=container.url,
                                   AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer wrong"))
    job, st = run_stage(d, proxy, "ctr2")
    assert st["state"] == "failed", st
    assert "container credentials %s: HTTP 401" % container.url in json.dumps(st)
    assert container.requests[0][1] == "Bearer wrong"


def test_role_from_container_credentials(tap, motoenv, proxy, tree, etld_factory,  # noqa: F811
                                         workdir):
    # credential_source = EcsContainer: the container's keys sign AssumeRole
    ctr = ContainerServer("Bearer t", (motoenv.access_key, motoenv.secret_key))
    try:
        write(os.path.join(workdir, "config"),
              "[profile etl]\nrole_arn = %s\ncredential_source = EcsContainer\n" % ROLE)
        d = etld_factory(env=clean_env(workdir, AWS_PROFILE="etl", AWS_REGION=proxy.region,
                                       AWS_ENDPOINT_URL_STS=tap.endpoint,
                                       AWS_CONTAINER_CREDENTIALS_FULL_URI=ctr.url,
                                       AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer t"))
        job, st = run_stage(d, proxy, "role3")
        assert st["state"] == "succeeded", (st, d.stderr_tail())
        assert ctr.requests and tap.actions()[0] == "AssumeRole", (ctr.requests, tap.calls)
        assert motoenv.stats().get("auth_failures", 0) == 0
        assert "assumed with container credentials %s" % ctr.url in creds_line(d)
    finally:
        ctr.stop()


OLD = ("AKIDETLDEXPIREOLD001", "old/secret/0123456789abcdefghijklmnop")
NEW = ("AKIDETLDEXPIRENEW002", "new/secret/0123456789abcdefghijklmnop")


def test_expiring_credentials_refreshed_midjob(proxy, tree, etld_factory, workdir):
    # the first credentials expire 300 s after `switch`: from then on etld
    # must resolve again before it signs, and the script hands out NEW
    log = process_setup(workdir, OLD, NEW, switch_in=2.0)
    proxy.set_credentials({OLD[0]: OLD[1], NEW[0]: NEW[1]})
    proxy.faults([{"fault": "latency", "ms": 200, "match": r"^PUT /exp1/."}])
    d = etld_factory(env=clean_env(workdir, AWS_PROFILE="etl"))
    job = d.submit(stage_settings(proxy, "exp1", **{"stage.concurrency": 2}),
                   pipeline="stage")["job"]
    deadline = time.monotonic() + 30
    while "new" not in calls(log):
        st = d.status(job)
        assert st["state"] == "running", ("ended without resolving again", calls(log), st)
        assert time.monotonic() < deadline, (calls(log), st)
        time.sleep(0.05)
    time.sleep(0.5)  # requests signed before the refresh are answered
    proxy.set_credentials({NEW[0]: NEW[1]})  # OLD is no good from now on
    assert d.status(job)["state"] == "running", "the job ended before the refresh"
    st = d.wait_job(job, timeout=120)
    assert st["state"] == "succeeded", (st, d.stderr_tail())
    assert calls(log)[0] == "old", calls(log)
    # nothing was refused: the refresh came before OLD was, not after
    assert proxy.stats().get("auth_failures", 0) == 0, proxy.stats()
    assert etldtest.step_of(st, "copy")["attempts"] == 1
    proxy.set_credentials({ACCESS_KEY: SECRET_KEY})
    assert_staged(proxy, tree, "exp1")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
