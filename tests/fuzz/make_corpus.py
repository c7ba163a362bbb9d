#!/usr/bin/python3
"""make_corpus.py - writes the seed corpora of tests/fuzz (corpus/NAME/) from
the inputs the other tests already use: the string literals of the unit
tests (COPY statements, JSONPaths files, records, XML replies, INI files,
RPC lines, request paths), the COPY statements of sql/, the sample
etc/etld.conf and the raw request lines of the integration tests.

    tests/fuzz/make_corpus.py            # rewrite corpus/*/seed-* from the tests

Files are named seed-<sha1 prefix>; files of other names in corpus/NAME/
(inputs a fuzzer found, kept as regression tests) are left alone.  Each
harness's input format is described at the top of its fuzz_NAME.c."""
import ast
import glob
import hashlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def c_literals(path):
    """The string literals of a C file, adjacent ones joined, as bytes."""
    src = open(path, encoding="utf-8").read()
    out, cur, i, n = [], None, 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            i = src.find("\n", i)
            i = n if i < 0 else i
        elif src.startswith("/*", i):
            i = src.find("*/", i) + 2
        elif c == "'":
            j = i + 1
            while src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            i = j + 1
            if cur is not None:
                out.append(cur)
                cur = None
        elif c == '"':
            j, buf = i + 1, bytearray()
            while src[j] != '"':
                if src[j] == "\\":
                    e = src[j + 1]
                    simple = {"n": 10, "t": 9, "r": 13, '"': 34, "\\": 92, "'": 39, "0": 0,
                              "a": 7, "b": 8, "f": 12, "v": 11, "?": 63}
                    if e == "x":
                        m = re.match(r"[0-9a-fA-F]+", src[j + 2:])
                        buf.append(int(m.group(0), 16) & 0xFF)
                        j += 2 + len(m.group(0))
                        continue
                    if e in "01234567":
                        m = re.match(r"[0-7]{1,3}", src[j + 1:])
                        buf.append(int(m.group(0), 8) & 0xFF)
                        j += 1 + len(m.group(0))
                        continue
                    buf.append(simple.get(e, ord(e)))
                    j += 2
                else:
                    buf += src[j].encode("utf-8")
                    j += 1
            cur = (cur or b"") + bytes(buf)
            i = j + 1
        elif c.isspace():
            i += 1
        else:
            if cur is not None:
                out.append(cur)
                cur = None
            i += 1
    if cur is not None:
        out.append(cur)
    return out


def literals(*names):
    found = []
    for name in names:
        found += c_literals(os.path.join(ROOT, name))
    return found


def py_bytes(path):
    """The b'...' literals of a Python file."""
    src = open(os.path.join(ROOT, path), encoding="utf-8").read()
    return [ast.literal_eval(m) for m in re.findall(r"\bb'(?:[^'\\\n]|\\.)*'", src)]


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for old in glob.glob(os.path.join(d, "seed-*")):
        os.remove(old)
    kept = set()
    for s in seeds:
        h = hashlib.sha1(s).hexdigest()[:16]
        if h in kept:
            continue
        kept.add(h)
        with open(os.path.join(d, "seed-" + h), "wb") as f:
            f.write(s)
    print(f"corpus/{name}: {len(kept)} seeds")


def main():
    # COPY statements: the unit tests' and the three dialects' copy.sql.
    copy = [s for s in literals("tests/unit/test_copy.c", "tests/unit/test_copy_conformance.c",
                                "tests/unit/test_load.c")
            if re.search(rb"\bcopy\b", s, re.I)]
    for sql in glob.glob(os.path.join(ROOT, "sql", "*", "copy.sql")):
        text = open(sql, "rb").read()
        copy += [s.strip() + b";" for s in text.split(b";") if b"COPY" in s.upper()]
    write("copy", copy)

    # JSONPaths files, each followed by the records of the same tests.
    jp_lits = literals("tests/unit/test_jsonpaths.c")
    paths = [s for s in jp_lits if b"jsonpaths" in s]
    records = [s for s in jp_lits if s.lstrip()[:1] in (b"{", b"[") and b"jsonpaths" not in s]
    joined = b"\n".join(records)
    write("jsonpaths", [p + b"\0" + joined for p in paths] + [p + b"\0" + r for p in paths[:4]
                                                             for r in records])

    # Records: objects as the splitter sees them; 3 bytes of options first
    # (chunk size, flags, limit: see fuzz_records.c).
    texts = [s for s in literals("tests/unit/test_records.c", "tests/unit/test_convert.c",
                                 "tests/unit/test_copy_conformance.c")
             if b"{" in s or b"[" in s]
    rec = []
    for i, t in enumerate(texts):
        rec.append(bytes([i % 10, 0, 0]) + t)
        rec.append(bytes([(i + 3) % 10, 3, 31]) + t)
    write("records", rec)

    # XML: the replies of the XML, S3 and query-API tests.
    xml = [s for s in literals("tests/unit/test_xml.c", "tests/unit/test_s3.c",
                               "tests/unit/test_query.c")
           if s.lstrip().startswith(b"<")]
    write("xml", xml)

    # etld.conf: the sample and the unit tests' files.
    cfg = [open(os.path.join(ROOT, "etc", "etld.conf"), "rb").read()]
    cfg += [s for s in literals("tests/unit/test_cfg.c") if b"[" in s and b"=" in s]
    write("cfg", cfg)

    # AWS shared files: credentials, NUL, config.
    creds = []
    for s in literals("tests/unit/test_creds.c"):
        if b"[" not in s and b"aws_" not in s:
            continue
        creds.append(s + b"\0")
        creds.append(b"\0" + s)
        if b"[profile" in s or b"region" in s:
            creds.append(b"[default]\naws_access_key_id = AKIDFILE\n"
                         b"aws_secret_access_key = SECRETFILE\n\0" + s)
    write("creds", creds)

    # SigV4: request.txt-style requests around the paths, hosts and queries
    # of the SigV4 tests.
    lits = literals("tests/unit/test_sigv4.c")
    sig_paths = sorted({s for s in lits if s.startswith(b"/")})
    sig = []
    for i, p in enumerate(sig_paths):
        sig.append(b"GET " + p + b" HTTP/1.1\nHost:examplebucket.s3.amazonaws.com\n"
                   b"Range:bytes=0-9\n\n")
        sig.append(b"PUT " + p + b"?tagging&x-id=PutObject HTTP/1.1\nHost:example.amazonaws.com\n"
                   b"My-Header1:  a   b  \n   continued\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
                   b"Welcome to Amazon S3.")
    sig.append(b"GET /?list-type=2&prefix=song_data%2FA&max-keys=1000&continuation-token=a%2Bb HTTP/1.1\n"
               b"Host:etld-bucket.s3.us-west-2.amazonaws.com\n\n")
    sig.append(b"POST / HTTP/1.1\nHost:iam.amazonaws.com\n"
               b"Content-Type:application/x-www-form-urlencoded; charset=utf-8\n\n"
               b"Action=ListUsers&Version=2010-05-08")
    sig.append(b"GET /example1/example2/../..//./example%20space/%E1%88%B4?Param2=value2&Param1=value1 HTTP/1.1\n"
               b"Host:example.amazonaws.com\nX-Amz-Meta-Other:\n\n")
    write("sigv4", sig)

    # RPC: one chunk-size byte, then what a client sends (fuzz_rpc.c).
    lines = [s for s in literals("tests/unit/test_proto.c") if s.startswith(b"{")]
    lines += [s for s in py_bytes("tests/integration/test_daemon.py") if s.startswith(b"{")]
    session = [
        b'{"jsonrpc":"2.0","method":"ping","id":1}',
        b'{"jsonrpc":"2.0","method":"version","id":"v"}',
        b'{"jsonrpc":"2.0","method":"submit","params":{"pipeline":"etl","key":"nightly",'
        b'"settings":{"s3.log_data":"file:///data/log_data","load.batch_rows":100}},"id":2}',
        b'{"jsonrpc":"2.0","method":"submit","params":{"pipeline":"etl","key":"nightly"},"id":3}',
        b'{"jsonrpc":"2.0","method":"watch","params":{"job":1},"id":4}',
        b'{"jsonrpc":"2.0","method":"status","params":{"job":1},"id":5}',
        b'{"jsonrpc":"2.0","method":"status","id":6}',
        b'{"jsonrpc":"2.0","method":"list","params":{"limit":5},"id":7}',
        b'{"jsonrpc":"2.0","method":"errors","params":{"job":1,"limit":10},"id":8}',
        b'{"jsonrpc":"2.0","method":"cancel","params":{"job":1},"id":9}',
        b'{"jsonrpc":"2.0","method":"submit","params":{"pipeline":"provision",'
        b'"settings":{"provision.ttl":"1h30m","provision.plan":true}},"id":10}',
        b'{"jsonrpc":"2.0","method":"submit","params":{"pipeline":"teardown"},"id":11}',
        b'{"jsonrpc":"2.0","method":"cancel","params":{"job":3},"id":12}',
        b'{"jsonrpc":"2.0","method":"list","id":13}',
        b'{"jsonrpc":"2.0","method":"submit","params":{"pipeline":"etl","key":"k2",'
        b'"settings":{"network.vpc_id":"load","etl.mode":"incremental"}},"id":14}',
        b'{"jsonrpc":"2.0","method":"watch","params":{"job":4},"id":15}',
        b'{"jsonrpc":"2.0","method":"retry","params":{"job":4},"id":16}',
        b'{"jsonrpc":"2.0","method":"submit","params":{"pipeline":"etl","key":"k2"},"id":17}',
    ]
    rpc = [bytes([i % 8]) + l + b"\n" for i, l in enumerate(lines)]
    rpc.append(b"\x00" + b"\n".join(session) + b"\n")
    rpc.append(b"\x03" + b"\r\n".join(session) + b"\r\n")
    rpc.append(b"\x05" + b"\n\n".join(lines) + b"\n")
    write("rpc", rpc)


if __name__ == "__main__":
    sys.exit(main())
