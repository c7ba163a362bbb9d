"""SigV4 and credentials against the reference implementation.

Signs many generated requests (odd paths: spaces, unicode, '~', '+', '=', '/'
runs, dot segments; empty query values, repeated keys, values needing
encoding; repeated and untidy headers; session tokens; S3 and other services;
presigned S3 URLs) with etld's C signer, through tests/tools/sigv4_tool, and
with botocore's SigV4Auth / S3SigV4Auth / S3SigV4QueryAuth at the same fixed
time, and compares the Authorization headers (and the wire path and query).

Then the credentials chain: IMDSv2 against a small http.server emulator
(endpoint from AWS_EC2_METADATA_SERVICE_ENDPOINT, as the AWS CLI names it),
with the IMDSv1 fallback, timeouts and errors; and that no secret is printed.

Run with Debian's /usr/bin/python3 (python3-botocore)."""

import datetime
import hashlib
import http.server
import json
import os
import random
import subprocess
import threading
import time
from unittest import mock
from urllib.parse import quote

import pytest

botocore = pytest.importorskip("botocore")
import botocore.auth  # noqa: E402
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

BUILD = os.environ.get("ETLD_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
TOOL = os.path.join(BUILD, "tests", "tools", "sigv4_tool")

AK = "AKIDEXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = 1700000000  # 2023-11-14T22:13:20Z


@pytest.fixture(scope="module")
def tool():
    if not os.access(TOOL, os.X_OK):
        pytest.skip(f"{TOOL} not built")
    return TOOL


def run_tool(tool, reqs):
    """Signs a list of request dicts with the C signer (one process for all)."""
    text = "".join(json.dumps(r) + "\n" for r in reqs)
    p = subprocess.run([tool], input=text.encode(), capture_output=True, check=True, timeout=60)
    out = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert len(out) == len(reqs)
    return out


def boto_time():
    return mock.patch.object(
        botocore.auth.datetime, "datetime",
        **{"utcnow.return_value": datetime.datetime.utcfromtimestamp(NOW)})


def wire_query(params):
    return "&".join(quote(k, safe="-_.~") + "=" + quote(v, safe="-_.~") for k, v in params)


def boto_sign(r, body):
    """Signs request dict r (as given to sigv4_tool) with botocore."""
    creds = Credentials(r["access_key"], r["secret_key"], r.get("token"))
    path = quote(r["path"], safe="/~")
    url = "https://" + r["host"] + path
    if r["params"]:
        url += "?" + wire_query(r["params"])
    req = AWSRequest(method=r["method"], url=url, data=body)
    for name, value in r["headers"]:
        req.headers[name] = value  # appends: repeated names stay repeated
    req.headers["Host"] = r["host"]
    if r["service"] == "s3":
        signing = r["payload"] != "UNSIGNED-PAYLOAD"
        req.context["client_config"] = Config(s3={"payload_signing_enabled": signing})
        if r.get("presign"):
            auth = S3SigV4QueryAuth(creds, "s3", r["region"], expires=r["presign"])
        else:
            auth = S3SigV4Auth(creds, "s3", r["region"])
    else:
        auth = SigV4Auth(creds, r["service"], r["region"])
    with boto_time():
        auth.add_auth(req)
    return req


SEGMENTS = ["a", "key with spaces", "ሴ", "日本語", "tilde~ok", "plus+sign", "eq=ual",
            "semi;colon", "amp&", "per%cent", "q?mark", "hash#", "(paren)", "'quote'",
            "star*", "!bang", "comma,", "émigré", "emoji😀", ".", "..", "-_.", "@at", "$",
            "song_data/A/B/C/TRABCEI128F424C983.json", "2018-11-01-events.json"]
PARAM_KEYS = ["prefix", "list-type", "max-keys", "continuation-token", "delimiter", "marker",
              "uploads", "acl", "Param", "param", "a b", "ሴ", "x+y", "k=v", "~", "Z", "_"]
PARAM_VALUES = ["", "2", "1000", "/", "song data/", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=",
                "a+b", "a b", "ሴ", "=", "&", "%", "~-_.", "UPPER lower", "+/="]
HEADER_NAMES = ["Content-Type", "Range", "x-amz-copy-source", "X-Amz-Meta-Note",
                "x-amz-storage-class", "Content-MD5", "If-None-Match", "X-Amz-Target"]
HEADER_VALUES = ["application/json", "  padded  value ", "bytes=0-9", "a\tb  c",
                 "/src-bucket/log%20data/x.json", "STANDARD", '"etag"', "x,y", "MixedCase"]
SERVICES = ["s3", "s3", "s3", "iam", "sts", "ec2", "redshift", "service"]
REGIONS = ["us-east-1", "us-west-2", "eu-central-1", "ap-southeast-2"]
HOSTS = ["bucket.s3.us-west-2.amazonaws.com", "s3.amazonaws.com", "127.0.0.1:4568",
         "localhost:8443", "iam.amazonaws.com", "[::1]:9000"]
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ" + "x" * 600 + "=="


def gen_request(rng):
    service = rng.choice(SERVICES)
    nseg = rng.randint(0, 5)
    path = "/" + "/".join(rng.choice(SEGMENTS) for _ in range(nseg))
    if rng.random() < 0.2:
        path = path.replace("/", "//", 1)  # a '/' run
    if rng.random() < 0.2:
        path += "/"
    params = [(rng.choice(PARAM_KEYS), rng.choice(PARAM_VALUES))
              for _ in range(rng.choice([0, 0, 1, 2, 3, 5]))]
    if params and rng.random() < 0.3:
        params.append((params[0][0], rng.choice(PARAM_VALUES)))  # repeated key
    headers = []
    for _ in range(rng.choice([0, 0, 1, 2, 4])):
        headers.append((rng.choice(HEADER_NAMES), rng.choice(HEADER_VALUES)))
    if headers and rng.random() < 0.3:
        headers.append((headers[0][0].lower(), rng.choice(HEADER_VALUES)))  # repeated name
    body = rng.choice([b"", b"", b"Param1=value1", "ሴ body".encode(), os.urandom(64)])
    payload = hashlib.sha256(body).hexdigest()
    if service == "s3" and rng.random() < 0.3:
        payload = "UNSIGNED-PAYLOAD"
    method = rng.choice(["GET", "PUT", "POST", "HEAD", "DELETE"])
    return {
        "method": method, "host": rng.choice(HOSTS), "path": path, "params": params,
        "headers": headers, "payload": payload, "region": rng.choice(REGIONS),
        "service": service, "now": NOW, "access_key": AK, "secret_key": SK,
        "token": TOKEN if rng.random() < 0.3 else None,
    }, body


def test_header_signing_matches_botocore(tool):
    rng = random.Random(4)
    cases = [gen_request(rng) for _ in range(600)]
    got = run_tool(tool, [r for r, _ in cases])
    n_s3 = 0
    for (r, body), mine in zip(cases, got):
        assert "error" not in mine, (r, mine)
        ref = boto_sign(r, body)
        assert mine["authorization"] == ref.headers["Authorization"], (r, mine["canonical_request"])
        # What goes on the wire is what botocore signed.
        assert mine["path"] == quote(r["path"], safe="/~")
        want_q = sorted(wire_query(r["params"]).split("&")) if r["params"] else []
        got_q = sorted(mine["query"].split("&")) if mine["query"] else []
        assert got_q == want_q
        hdrs = dict(mine["headers"])
        assert hdrs["X-Amz-Date"] == ref.headers["X-Amz-Date"]
        if r["service"] == "s3":
            n_s3 += 1
            assert hdrs["X-Amz-Content-Sha256"] == ref.headers["X-Amz-Content-SHA256"]
        else:
            assert "X-Amz-Content-Sha256" not in hdrs
        if r["token"]:
            assert hdrs["X-Amz-Security-Token"] == r["token"]
    assert n_s3 > 100


def test_presigned_s3_matches_botocore(tool):
    rng = random.Random(44)
    cases = []
    for _ in range(150):
        r, _ = gen_request(rng)
        r.update(service="s3", method=rng.choice(["GET", "PUT"]), headers=[],
                 payload="UNSIGNED-PAYLOAD", presign=rng.choice([60, 3600, 86400, 604800]))
        # botocore's presigner turns the query into a dict, losing repeated keys
        # (header signing keeps them, and so does sigv4.c): give it distinct ones.
        r["params"] = list(dict(r["params"]).items())
        cases.append(r)
    got = run_tool(tool, cases)
    for r, mine in zip(cases, got):
        assert "error" not in mine, (r, mine)
        ref = boto_sign(r, b"")
        ref_q = ref.url.split("?", 1)[1]
        ref_sig = [p.split("=", 1)[1] for p in ref_q.split("&") if p.startswith("X-Amz-Signature=")]
        assert mine["signature"] == ref_sig[0], (r, mine["canonical_request"])
        assert mine["query"].endswith("&X-Amz-Signature=" + mine["signature"])
        assert sorted(mine["query"].split("&")) == sorted(ref_q.split("&"))


def test_signer_refuses_owned_headers(tool):
    r, _ = gen_request(random.Random(1))
    r["headers"] = [["Authorization", "x"]]
    bad = dict(r, headers=[["X-Amz-Date", "x"]])
    out = run_tool(tool, [r, bad, dict(r, secret_key="")])
    assert all("error" in o for o in out)
    assert all(SK not in o["error"] for o in out)


# ---- credentials ----

class Imds:
    """An IMDS emulator: IMDSv2 tokens, the role list, the role's credentials."""

    def __init__(self, role="etld-role", v2=True, delay=0.0, role_reply=None):
        self.role = role
        self.v2 = v2
        self.delay = delay
        self.token = "IMDSTOKEN-" + os.urandom(8).hex()
        self.creds = {
            "Code": "Success", "LastUpdated": "2023-11-14T21:00:00Z", "Type": "AWS-HMAC",
            "AccessKeyId": "ASIAIMDSEXAMPLE", "SecretAccessKey": "imds/secret+" + os.urandom(8).hex(),
            "Token": "imds-session-token/" + "y" * 700, "Expiration": "2023-11-15T04:13:20Z",
        }
        self.role_reply = role_reply
        self.log = []
        imds = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, body=b"", ctype="text/plain"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                imds.log.append(("PUT", self.path, dict(self.headers)))
                time.sleep(imds.delay)
                if self.path != "/latest/api/token":
                    return self.reply(404)
                if not imds.v2:
                    return self.reply(404)
                if "X-aws-ec2-metadata-token-ttl-seconds" not in self.headers:
                    return self.reply(400)
                self.reply(200, imds.token.encode())

            def do_GET(self):
                imds.log.append(("GET", self.path, dict(self.headers)))
                time.sleep(imds.delay)
                if imds.v2 and self.headers.get("X-aws-ec2-metadata-token") != imds.token:
                    return self.reply(401)
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == base:
                    if imds.role is None:
                        return self.reply(404)
                    return self.reply(200, imds.role.encode())
                if self.path == base + str(imds.role):
                    body = imds.role_reply or json.dumps(imds.creds, indent=2)
                    return self.reply(200, body.encode(), "application/json")
                if self.path == "/latest/meta-data/placement/region":
                    return self.reply(200, b"eu-north-1")
                self.reply(404)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")
           and k != "CREDENTIALS_DIRECTORY"}
    env["HOME"] = str(tmp_path)
    return env


def chain(tool, env, *args):
    p = subprocess.run([tool, *args], env=env, capture_output=True, timeout=30)
    out = json.loads(p.stdout.decode())
    return p, out


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def assert_no_secrets(p, *secrets):
    for s in secrets:
        assert s not in p.stdout.decode() and s not in p.stderr.decode()


def test_imds_v2(tool, clean_env):
    imds = Imds()
    try:
        env = dict(clean_env, AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.endpoint)
        p, out = chain(tool, env, "imds")
        assert p.returncode == 0, out
        assert out["source"] == "IMDS role etld-role"
        assert out["access_key_id"] == "ASIAIMDSEXAMPLE"
        assert out["secret_sha256"] == sha(imds.creds["SecretAccessKey"])
        assert out["token_sha256"] == sha(imds.creds["Token"])
        assert out["expiration"] == NOW + 6 * 3600
        assert_no_secrets(p, imds.creds["SecretAccessKey"], imds.creds["Token"], imds.token)
        methods = [(m, path) for m, path, _ in imds.log]
        assert methods == [("PUT", "/latest/api/token"),
                           ("GET", "/latest/meta-data/iam/security-credentials/"),
                           ("GET", "/latest/meta-data/iam/security-credentials/etld-role")]
        assert imds.log[0][2]["X-aws-ec2-metadata-token-ttl-seconds"] == "21600"
        p, out = chain(tool, env, "imds-region")
        assert out == {"region": "eu-north-1", "source": ""}
    finally:
        imds.close()


def test_imds_endpoint_argument_and_v1_fallback(tool, clean_env):
    imds = Imds(v2=False)
    try:
        p, out = chain(tool, clean_env, "imds", imds.endpoint + "/")
        assert p.returncode == 0, out
        assert out["access_key_id"] == "ASIAIMDSEXAMPLE"
        assert all("X-aws-ec2-metadata-token" not in h for m, _, h in imds.log if m == "GET")
    finally:
        imds.close()


def test_imds_errors(tool, clean_env):
    imds = Imds(role=None)
    try:
        env = dict(clean_env, AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.endpoint)
        p, out = chain(tool, env, "imds")
        assert out["code"] == -2 and "role" in out["error"]
    finally:
        imds.close()

    bad = '{"Code": "Success", "AccessKeyId": "A", "SecretAccessKey": "leakme"}'
    imds = Imds(role_reply=bad)
    try:
        env = dict(clean_env, AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.endpoint)
        p, out = chain(tool, env, "imds")
        assert out["code"] == -22 and "Token" in out["error"]
        assert_no_secrets(p, "leakme")
    finally:
        imds.close()

    imds = Imds(delay=10)
    try:
        env = dict(clean_env, AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.endpoint,
                   AWS_METADATA_SERVICE_TIMEOUT="1")
        t0 = time.monotonic()
        p, out = chain(tool, env, "imds")
        assert out["code"] == -110, out  # -ETIMEDOUT
        assert time.monotonic() - t0 < 6
    finally:
        imds.close()

    env = dict(clean_env, AWS_EC2_METADATA_DISABLED="true")
    p, out = chain(tool, env, "imds")
    assert out["code"] == -2 and "disabled" in out["error"]


def test_chain_files_and_systemd(tool, clean_env, tmp_path):
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s3cr3t-default\n")
    (aws / "config").write_text(
        "[default]\nregion = us-west-2\n[profile ci]\nregion = eu-west-1\n"
        "aws_access_key_id = AKIDCI\naws_secret_access_key = s3cr3t-ci\n"
        f"aws_session_token = {'t' * 1500}\n")
    p, out = chain(tool, clean_env, "resolve")
    assert out["access_key_id"] == "AKIDDEFAULT"
    assert out["source"] == f"{aws}/credentials [default]"
    env = dict(clean_env, AWS_PROFILE="ci")
    p, out = chain(tool, env, "resolve")
    assert out["access_key_id"] == "AKIDCI"
    assert out["source"] == f"{aws}/config [profile ci]"
    assert out["token_sha256"] == sha("t" * 1500)
    assert_no_secrets(p, "s3cr3t-ci", "t" * 100)
    p, out = chain(tool, env, "region")
    assert out == {"region": "eu-west-1", "source": f"{aws}/config [profile ci]"}
    env = dict(clean_env, AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"),
               CREDENTIALS_DIRECTORY=str(tmp_path / "credsd"))
    (tmp_path / "credsd").mkdir()
    (tmp_path / "credsd" / "aws_access_key_id").write_text("AKIDSYSTEMD\n")
    (tmp_path / "credsd" / "aws_secret_access_key").write_text("s3cr3t-systemd\n")
    p, out = chain(tool, env, "resolve")
    assert out["access_key_id"] == "AKIDSYSTEMD"
    assert out["source"] == "$CREDENTIALS_DIRECTORY"
    assert_no_secrets(p, "s3cr3t-systemd")
