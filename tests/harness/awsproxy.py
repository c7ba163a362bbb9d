#!/usr/bin/python3
"""awsproxy.py - a SigV4-checking, fault-injecting proxy in front of moto for
the query-protocol APIs etld provisions with (IAM, EC2, Redshift).

The sibling of s3proxy.py, built from its pieces (State, the control API,
the fault rules, the reply plumbing).  moto does not verify signatures; this
proxy recomputes every request's signature with botocore's own SigV4Auth (the
AWS CLI's signer) for the service and region of the request's credential
scope, from the headers listed in SignedHeaders, and refuses a mismatch as the
query APIs do (403 SignatureDoesNotMatch, or EC2's AuthFailure), also unknown
keys (InvalidClientTokenId), clock skew over 5 minutes (SignatureDoesNotMatch
"Signature expired") and unsigned requests (MissingAuthenticationToken).
Requests that pass go to moto unchanged (moto reads the region from the
Authorization header).

Every request's action is recorded ("iam:GetRole", "redshift:CreateCluster"...)
in stats()["actions"], in order, so a test can say which actions were sent and
how often.  Fault rules are s3proxy's (POST /__proxy/faults); they match
"POST SERVICE ACTION", e.g. {"fault": "throttle", "match": "redshift
DescribeClusters", "count": 2}; throttle answers 400 Throttling (EC2:
503 RequestLimitExceeded), error500 500 InternalFailure, reset drops the
connection.

Where moto 5.2 falls short of AWS, the proxy fills the gap (and only there):
  - ModifyClusterIamRoles is not implemented by moto (and its ModifyCluster
    takes no IamRoles).  etld gives the role in CreateCluster and sends
    ModifyClusterIamRoles only for a cluster that lacks it, which a test
    stages with POST /__proxy/cluster_roles {"cluster": ID, "arns": [...]}
    (the roles the proxy says the cluster has).  The proxy keeps such roles
    per cluster, answers ModifyClusterIamRoles in its shape (the cluster as
    moto describes it, with those roles, ApplyStatus in-sync), puts them in
    DescribeClusters replies, and forgets them when the cluster is deleted;
  - moto reports a new cluster `available` at once, where AWS takes minutes:
    after POST /__proxy/config {"creating_polls": N} the next N
    DescribeClusters replies say `creating` instead (N large: until set to 0).

Run with Debian's /usr/bin/python3 (python3-botocore):
  awsproxy.py --upstream 127.0.0.1:PORT [--listen 127.0.0.1:0] [--port-file F]
              --credentials AKID:SECRET[,AKID2:SECRET2]
"""
import argparse
import datetime
import http.client
import json
import os
import re
import sys
import time
import urllib.parse
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3proxy  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

SERVICES = ("iam", "ec2", "redshift", "sts")


class AwsState(s3proxy.State):
    def reset(self):
        super().reset()
        with self.lock:
            self.stats["actions"] = []
            self.creating_polls = 0
            if not hasattr(self, "iam_roles"):
                self.iam_roles = {}  # survives reset: it is moto's state, not a counter


class Handler(s3proxy.Handler):
    server_version = "AmazonWebServices"

    # ---- replies in the query APIs' shapes ----

    def error(self, status, code, message, extra=None, headers=None):
        rid = s3proxy.request_id()
        if getattr(self, "service", "") == "ec2":
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                    "<Code>%s</Code><Message>%s</Message></Error></Errors>"
                    "<RequestID>%s</RequestID></Response>" % (escape(code), escape(message), rid))
        else:
            body = ('<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code>'
                    "<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>"
                    % (escape(code), escape(message), rid))
        h = {"Content-Type": "text/xml", "x-amzn-RequestId": rid}
        h.update(headers or {})
        self.reply(status, body.encode(), h, rid)

    # ---- control API: s3proxy's, plus /__proxy/config ----

    def control(self, body):
        if self.path.split("?")[0] == "/__proxy/config" and self.command == "POST":
            cfg = json.loads(body or b"{}")
            with self.server.state.lock:
                if "creating_polls" in cfg:
                    self.server.state.creating_polls = int(cfg["creating_polls"])
            return self.reply(200, b'{"ok":true}', {"Content-Type": "application/json"})
        if self.path.split("?")[0] == "/__proxy/cluster_roles" and self.command == "POST":
            cfg = json.loads(body or b"{}")
            with self.server.state.lock:
                self.server.state.iam_roles[cfg["cluster"]] = list(cfg["arns"])
            return self.reply(200, b'{"ok":true}', {"Content-Type": "application/json"})
        return super().control(body)

    # ---- signature check, as the query APIs do it ----

    def check_signature(self, body):
        auth = self.headers.get("Authorization")
        if not auth:
            return (403, "MissingAuthenticationToken", "Request is missing Authentication Token",
                    None)
        m = s3proxy.AUTH_RE.match(auth)
        if not m:
            return (400, "IncompleteSignature", "Authorization header is malformed", None)
        credential, signed, provided = m.groups()
        scope = credential.split("/")
        if len(scope) != 5 or scope[3] not in SERVICES or scope[4] != "aws4_request":
            return (400, "IncompleteSignature", "Credential scope is malformed", None)
        akid, date, region, service = scope[0], scope[1], scope[2], scope[3]
        if service == "iam" and region != "us-east-1":
            return (403, "SignatureDoesNotMatch", "Credential should be scoped to a valid "
                    "region, not '%s'." % region, None)
        secret = self.server.state.creds.get(akid)
        if secret is None:
            return (403, "InvalidClientTokenId",
                    "The security token included in the request is invalid.", None)
        amz_date = self.headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            return (400, "IncompleteSignature", "X-Amz-Date is missing or malformed", None)
        if abs(time.time() - when.timestamp()) > 300 or amz_date[:8] != date:
            return (403, "SignatureDoesNotMatch", "Signature expired: %s" % amz_date, None)
        names = signed.split(";")
        if "host" not in names:
            return (403, "SignatureDoesNotMatch", "host must be signed", None)
        headers = {}
        for n in names:
            v = self.headers.get_all(n)
            if v is None:
                return (403, "SignatureDoesNotMatch", "Signed header %s is missing" % n, None)
            headers[n] = ",".join(v)
        req = AWSRequest(method=self.command, url="http://" + headers["host"] + self.path,
                         headers=headers, data=body)
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(akid, secret), service, region)
        canonical = signer.canonical_request(req)
        sts = signer.string_to_sign(req, canonical)
        if signer.signature(sts, req) != provided:
            self.server.state.count("signature_failures")
            if service == "ec2":
                return (401, "AuthFailure", "AWS was not able to validate the provided access "
                        "credentials", None)
            return (403, "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your AWS Secret Access Key and signing method.", None)
        return None

    # ---- forwarding ----

    def moto(self, body, headers=None):
        """One request to moto: (status, headers, data)."""
        h = {k: v for k, v in (headers or self.headers).items()
             if k.lower() not in s3proxy.HOP and k.lower() != "host"}
        h["Host"] = "%s:%d" % self.server.upstream
        h["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            conn.request("POST", self.path, body=body, headers=h)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def send_upstream_reply(self, status, headers, data):
        self.send_response(status)
        for k, v in headers:
            if k.lower() in s3proxy.HOP or k.lower() in ("content-length", "server", "date"):
                continue
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def with_roles(self, data):
        """DescribeClusters/ModifyClusterIamRoles reply with the proxy's roles."""
        text = data.decode()
        with self.server.state.lock:
            roles = dict(self.server.state.iam_roles)

        def fix(m):
            cluster = m.group(0)
            ident = re.search(r"<ClusterIdentifier>([^<]*)<", cluster)
            arns = roles.get(ident.group(1)) if ident else None
            if arns is None:
                return cluster
            xml = "<IamRoles>%s</IamRoles>" % "".join(
                "<ClusterIamRole><IamRoleArn>%s</IamRoleArn><ApplyStatus>in-sync</ApplyStatus>"
                "</ClusterIamRole>" % escape(a) for a in arns)
            return re.sub(r"<IamRoles/>|<IamRoles>.*?</IamRoles>", xml, cluster, count=1,
                          flags=re.S)
        return re.sub(r"<Cluster>.*?</Cluster>", fix, text, flags=re.S).encode()

    def modify_cluster_iam_roles(self, form):
        """moto 5.2 has no ModifyClusterIamRoles: keep the roles here."""
        ident = form.get("ClusterIdentifier", [""])[0]

        def arns(prefix):
            return [v[0] for k, v in sorted(form.items()) if k.startswith(prefix)]
        add, remove = arns("AddIamRoles."), arns("RemoveIamRoles.")
        q = urllib.parse.urlencode({"Action": "DescribeClusters", "Version": "2012-12-01",
                                    "ClusterIdentifier": ident}).encode()
        status, headers, data = self.moto(q)
        if status != 200:
            return self.send_upstream_reply(status, headers, data)
        st = self.server.state
        with st.lock:
            current = st.iam_roles.get(ident)
            if current is None:
                current = re.findall(r"<IamRoleArn>([^<]*)</IamRoleArn>", data.decode())
            st.iam_roles[ident] = ([a for a in current if a not in remove]
                                   + [a for a in add if a not in current])
        data = self.with_roles(data).decode()
        cluster = re.search(r"<Cluster>.*</Cluster>", data, re.S).group(0)
        rid = s3proxy.request_id()
        body = ('<ModifyClusterIamRolesResponse xmlns="http://redshift.amazonaws.com/doc/'
                '2012-12-01/"><ModifyClusterIamRolesResult>%s</ModifyClusterIamRolesResult>'
                "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
                "</ModifyClusterIamRolesResponse>" % (cluster, rid))
        return self.send_upstream_reply(200, [("Content-Type", "text/xml"),
                                              ("x-amzn-RequestId", rid)], body.encode())

    def handle_any(self):
        st = self.server.state
        body = self.read_body()
        if self.path.startswith("/__proxy/"):
            return self.control(body)
        st.count("requests")
        st.count("methods", self.command)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        action = form.get("Action", ["?"])[0]
        m = s3proxy.AUTH_RE.match(self.headers.get("Authorization", ""))
        scope = m.group(1).split("/") if m else []
        self.service = scope[3] if len(scope) == 5 else "?"
        with st.lock:
            st.stats["actions"].append("%s:%s" % (self.service, action))
            st.stats["recent"] = (st.stats["recent"] + ["POST %s %s" % (self.service,
                                                                         action)])[-50:]
        faults = st.pick_faults("%s %s %s" % (self.command, self.service, action))
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
            if kind == "throttle":
                if self.service == "ec2":
                    return self.error(503, "RequestLimitExceeded", "Request limit exceeded.",
                                      None, ra)
                return self.error(400, "Throttling", "Rate exceeded", None, ra)
            if kind in ("error500", "slowdown"):
                return self.error(500, "InternalFailure", "The request processing has failed "
                                  "because of an unknown error.", None, ra)
            if kind == "reset":
                return self.reset_connection()
        if self.service == "redshift" and action == "ModifyClusterIamRoles":
            st.count("forwarded")
            return self.modify_cluster_iam_roles(form)
        try:
            status, headers, data = self.moto(body)
        except OSError:
            return self.error(502, "InternalFailure", "moto did not answer")
        st.count("forwarded")
        if self.service == "redshift" and action == "DescribeClusters" and status == 200:
            with st.lock:
                fake = st.creating_polls > 0 and b"<ClusterStatus>available<" in data
                if fake:
                    st.creating_polls -= 1
            if fake:  # moto: available at once; AWS: creating for minutes
                data = data.replace(b"<ClusterStatus>available<", b"<ClusterStatus>creating<")
            data = self.with_roles(data)
        if self.service == "redshift" and action == "DeleteCluster" and status == 200:
            with st.lock:
                st.iam_roles.pop(form.get("ClusterIdentifier", [""])[0], None)
        if any(f["fault"] == "reset_after" for f in faults):
            return self.reset_connection()
        return self.send_upstream_reply(status, headers, data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="host:port of moto")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--port-file")
    ap.add_argument("--credentials", default=os.environ.get("S3PROXY_CREDENTIALS", ""))
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    creds = dict(p.partition(":")[::2] for p in filter(None, a.credentials.split(",")))
    if not creds:
        ap.error("no --credentials")
    host, _, port = a.listen.rpartition(":")
    srv = s3proxy.Server((host, int(port)), Handler)
    uh, _, up = a.upstream.rpartition(":")
    srv.upstream = (uh, int(up))
    srv.state = AwsState(creds)
    srv.verbose = a.verbose
    port = srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(a.port_file + ".tmp", a.port_file)
    print("awsproxy: listening on %s:%d, upstream %s" % (host, port, a.upstream), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
