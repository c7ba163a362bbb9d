#!/usr/bin/python3
"""s3proxy.py - a SigV4-checking, fault-injecting HTTP proxy in front of s3rver.

s3rver does not verify SigV4 signatures, so on its own it would accept a
request signed with the wrong secret.  This proxy sits in front of it on
loopback and, for every request, recomputes the signature with botocore's
own S3 signer (S3SigV4Auth, the one the AWS CLI uses) from the headers the
request lists in SignedHeaders, and refuses a mismatch exactly as S3 does:
403 with an <Error><Code>SignatureDoesNotMatch</Code>... body carrying the
StringToSign, the CanonicalRequest and a RequestId.  Also like S3: unknown
access key (403 InvalidAccessKeyId), clock skew over 15 minutes (403
RequestTimeTooSkewed), a body whose SHA-256 is not the signed
x-amz-content-sha256 (400 XAmzContentSHA256Mismatch), no signature (403
AccessDenied).  Requests that pass go to s3rver with the Authorization
header removed (s3rver then serves them as anonymous ones).

Faults on demand, through a control API under /__proxy/ (no bucket can be
named that):
  POST /__proxy/faults   {"rules": [RULE, ...]}   replaces the rules
  GET  /__proxy/stats    counters: requests, forwarded, faults by kind, ...
  POST /__proxy/reset    no rules, counters zeroed
  POST /__proxy/credentials {"credentials": {AKID: SECRET, ...}}
                         replaces the known keys (a key rotation: requests
                         signed with a key no longer listed get 403
                         InvalidAccessKeyId)
RULE: {"fault": KIND, "match": REGEX on "METHOD /path?query" (default any),
       "count": how many times at most (default unlimited: -1),
       "every": apply to every N-th matching request (default 1),
       "ms": latency, "bps": bytes/s for slow_body, "retry_after": seconds}
KIND: slowdown (503 SlowDown), error500 (500 InternalError), throttle (400
Throttling... as S3 never sends it, but other services do), reset (connection
reset before forwarding), reset_after (forwarded, then reset instead of the
reply), reset_body (reply headers and half the body, then reset), slow_body
(the reply's body at "bps" bytes per second), latency ("ms" added before
forwarding).

Run with Debian's /usr/bin/python3 (python3-botocore):
  s3proxy.py --upstream 127.0.0.1:PORT [--listen 127.0.0.1:0] [--port-file F]
             [--credentials AKID:SECRET[,AKID2:SECRET2]] [--region-any]
"""
import argparse
import datetime
import hashlib
import http.client
import http.server
import json
import os
import random
import re
import socket
import socketserver
import struct
import sys
import threading
import time
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
       "upgrade", "expect"}
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),"
                     r"\s*Signature=([0-9a-f]{64})\s*$")


class State:
    def __init__(self, creds):
        self.creds = creds
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.rules = []
            self.stats = {"requests": 0, "forwarded": 0, "faults": {}, "signature_failures": 0,
                          "auth_failures": 0, "methods": {}, "connections": 0, "recent": []}

    def count(self, key, sub=None, n=1):
        with self.lock:
            if sub is None:
                self.stats[key] += n
            else:
                self.stats[key][sub] = self.stats[key].get(sub, 0) + n

    def pick_faults(self, line):
        """The rules that fire for this request (each rule counted once)."""
        fired = []
        with self.lock:
            for r in self.rules:
                if r.get("count", -1) == 0:
                    continue
                if r.get("match") and not re.search(r["match"], line):
                    continue
                r["_seen"] = r.get("_seen", 0) + 1
                if r["_seen"] % max(1, int(r.get("every", 1))) != 0:
                    continue
                if r.get("count", -1) > 0:
                    r["count"] -= 1
                fired.append(dict(r))
                self.stats["faults"][r["fault"]] = self.stats["faults"].get(r["fault"], 0) + 1
        return fired


def request_id():
    return "%016X" % random.getrandbits(64)


def error_xml(code, message, rid, extra=None):
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
             % (escape(code), escape(message))]
    for k, v in (extra or {}).items():
        parts.append("<%s>%s</%s>" % (k, escape(v), k))
    parts.append("<RequestId>%s</RequestId><HostId>s3proxy/%s</HostId></Error>" % (rid, rid))
    return "".join(parts).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AmazonS3"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("s3proxy: " + (fmt % args) + "\n")

    def setup(self):
        super().setup()
        self.server.state.count("connections")

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    # ---- plumbing ----

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body=b"", headers=None, rid=None):
        rid = rid or request_id()
        self.send_response(status)
        self.send_header("x-amz-request-id", rid)
        self.send_header("x-amz-id-2", "s3proxy/" + rid)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, code, message, extra=None, headers=None):
        rid = request_id()
        h = {"Content-Type": "application/xml"}
        h.update(headers or {})
        self.reply(status, error_xml(code, message, rid, extra), h, rid)

    def reset_connection(self):
        try:
            self.wfile.flush()
        except OSError:
            pass
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    # ---- control API ----

    def control(self, body):
        st = self.server.state
        path = self.path.split("?")[0]
        if path == "/__proxy/faults" and self.command == "POST":
            rules = json.loads(body or b"{}").get("rules", [])
            with st.lock:
                st.rules = rules
            return self.reply(200, b'{"ok":true}', {"Content-Type": "application/json"})
        if path == "/__proxy/stats":
            with st.lock:
                data = json.dumps(st.stats).encode()
            return self.reply(200, data, {"Content-Type": "application/json"})
        if path == "/__proxy/credentials" and self.command == "POST":
            creds = json.loads(body or b"{}").get("credentials", {})
            with st.lock:
                st.creds = dict(creds)
            return self.reply(200, b'{"ok":true}', {"Content-Type": "application/json"})
        if path == "/__proxy/reset" and self.command == "POST":
            st.reset()
            return self.reply(200, b'{"ok":true}', {"Content-Type": "application/json"})
        return self.reply(404, b"{}", {"Content-Type": "application/json"})

    # ---- signature check, as S3 does it ----

    def check_signature(self, body):
        """None when the request may pass, else (status, code, message, extra)."""
        auth = self.headers.get("Authorization")
        if not auth:
            return (403, "AccessDenied", "Access Denied", None)
        m = AUTH_RE.match(auth)
        if not m:
            return (400, "AuthorizationHeaderMalformed",
                    "The authorization header is malformed; the Credential is mal-formed.", None)
        credential, signed, provided = m.groups()
        scope = credential.split("/")
        if len(scope) != 5 or scope[3] != "s3" or scope[4] != "aws4_request":
            return (400, "AuthorizationHeaderMalformed",
                    "The authorization header is malformed; incorrect credential scope.", None)
        akid, date, region = scope[0], scope[1], scope[2]
        secret = self.server.state.creds.get(akid)
        if secret is None:
            return (403, "InvalidAccessKeyId",
                    "The AWS Access Key Id you provided does not exist in our records.",
                    {"AWSAccessKeyId": akid})
        amz_date = self.headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            return (403, "AccessDenied", "AWS authentication requires a valid Date or "
                    "x-amz-date header", None)
        if abs(time.time() - when.timestamp()) > 900:
            return (403, "RequestTimeTooSkewed", "The difference between the request time and "
                    "the current time is too large.", {"RequestTime": amz_date})
        if amz_date[:8] != date:
            return (400, "AuthorizationHeaderMalformed", "The authorization header is malformed;"
                    " Invalid credential date. Date is not the same as X-Amz-Date.", None)
        sha = self.headers.get("x-amz-content-sha256")
        if sha is None:
            return (400, "InvalidRequest", "Missing required header for this request: "
                    "x-amz-content-sha256", None)
        if sha != "UNSIGNED-PAYLOAD" and sha != hashlib.sha256(body).hexdigest():
            return (400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' "
                    "header does not match what was computed.",
                    {"ClientComputedContentSHA256": sha,
                     "S3ComputedContentSHA256": hashlib.sha256(body).hexdigest()})
        names = signed.split(";")
        if "host" not in names or "x-amz-content-sha256" not in names:
            return (403, "AccessDenied", "Host and x-amz-content-sha256 must be signed", None)
        headers = {}
        for n in names:
            v = self.headers.get_all(n)
            if v is None:
                return (403, "AccessDenied", "Signed header %s is missing" % n, None)
            headers[n] = ",".join(v)
        req = AWSRequest(method=self.command, url="http://" + headers["host"] + self.path,
                         headers=headers, data=body)
        req.context["timestamp"] = amz_date
        signer = S3SigV4Auth(Credentials(akid, secret), "s3", region)
        canonical = signer.canonical_request(req)
        sts = signer.string_to_sign(req, canonical)
        expected = signer.signature(sts, req)
        if expected != provided:
            self.server.state.count("signature_failures")
            return (403, "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your key and signing method.",
                    {"AWSAccessKeyId": akid, "StringToSign": sts, "SignatureProvided": provided,
                     "CanonicalRequest": canonical})
        return None

    # ---- forwarding ----

    def upstream(self):
        conn = getattr(self, "_up", None)
        if conn is None:
            host, port = self.server.upstream
            conn = http.client.HTTPConnection(host, port, timeout=60)
            self._up = conn
        return conn

    def forward(self, body, faults):
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP and k.lower() != "authorization"
                   and k.lower() != "host"}
        headers["Host"] = "%s:%d" % self.server.upstream
        headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            conn = self.upstream()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self._up = None
                if attempt == 2:
                    return self.error(502, "InternalError", "s3rver did not answer")
        self.server.state.count("forwarded")
        if any(f["fault"] == "reset_after" for f in faults):
            resp.read()
            return self.reset_connection()
        self.send_response(resp.status)
        length = resp.getheader("Content-Length")
        data = None
        if length is None and self.command != "HEAD" and resp.status not in (204, 304):
            data = resp.read()
            length = str(len(data))
        for k, v in resp.getheaders():
            if k.lower() in HOP or k.lower() == "content-length":
                continue
            self.send_header(k, v)
        if resp.getheader("x-amz-request-id") is None:
            self.send_header("x-amz-request-id", request_id())
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        if self.command == "HEAD" or resp.status in (204, 304):
            resp.read()
            return
        slow = [f for f in faults if f["fault"] == "slow_body"]
        cut = any(f["fault"] == "reset_body" for f in faults)
        total = int(length or 0)
        sent = 0
        chunk = 65536
        if slow:
            chunk = max(1, int(slow[0].get("bps", 65536)) // 10)
        while True:
            piece = data[sent:sent + chunk] if data is not None else resp.read(chunk)
            if not piece:
                break
            if cut and sent + len(piece) > total // 2:
                piece = piece[:max(0, total // 2 - sent)]
                if piece:
                    self.wfile.write(piece)
                resp.close()
                self._up = None
                return self.reset_connection()
            self.wfile.write(piece)
            sent += len(piece)
            if slow:
                self.wfile.flush()
                time.sleep(0.1)

    def handle_any(self):
        st = self.server.state
        body = self.read_body()
        if self.path.startswith("/__proxy/"):
            return self.control(body)
        st.count("requests")
        st.count("methods", self.command)
        with st.lock:
            st.stats["recent"] = (st.stats["recent"] + ["%s %s %s" % (
                self.command, self.headers.get("Host", ""), self.path)])[-50:]
        faults = st.pick_faults("%s %s" % (self.command, self.path))
        for f in faults:
            if f["fault"] == "latency":
                time.sleep(float(f.get("ms", 50)) / 1000.0)
        bad = self.check_signature(body)
        if bad:
            st.count("auth_failures")
            status, code, message, extra = bad
            return self.error(status, code, message, extra)
        for f in faults:
            kind = f["fault"]
            ra = {"Retry-After": str(f["retry_after"])} if "retry_after" in f else None
            if kind == "slowdown":
                return self.error(503, "SlowDown", "Please reduce your request rate.", None, ra)
            if kind == "error500":
                return self.error(500, "InternalError",
                                  "We encountered an internal error. Please try again.", None, ra)
            if kind == "throttle":
                return self.error(400, "Throttling", "Rate exceeded", None, ra)
            if kind == "reset":
                return self.reset_connection()
        return self.forward(body, faults)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="host:port of s3rver")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--port-file")
    ap.add_argument("--credentials", default=os.environ.get("S3PROXY_CREDENTIALS", ""),
                    help="AKID:SECRET[,AKID:SECRET...]")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    creds = {}
    for pair in filter(None, a.credentials.split(",")):
        k, _, s = pair.partition(":")
        creds[k] = s
    if not creds:
        ap.error("no --credentials")
    host, _, port = a.listen.rpartition(":")
    srv = Server((host, int(port)), Handler)
    uh, _, up = a.upstream.rpartition(":")
    srv.upstream = (uh, int(up))
    srv.state = State(creds)
    srv.verbose = a.verbose or bool(os.environ.get("S3PROXY_VERBOSE"))
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    print("s3proxy: listening on %s:%d, upstream %s" % (host, port, a.upstream), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
