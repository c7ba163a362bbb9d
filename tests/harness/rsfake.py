"""rsfake.py - a stand-in for a Redshift cluster's front door, for tests.

Redshift cannot run here.  What etld sends it can be pinned, though: this is a
server of PostgreSQL's wire protocol (version 3, simple queries only) that
records every statement it receives and answers from rules the test gives.
It executes nothing: it is not an emulator of Redshift, only of the protocol,
the way Redshift speaks it (server_version 8.0.2, TLS, password login).

    with rsfake.Server(password="pw", tls=True) as rs:
        rs.rule(r"^COPY staging_events", error=("XX000", "Load into table ..."))
        rs.rule(r"pg_last_copy_count", cols=[("n", rsfake.INT8)], rows=[[42]])
        ... etld with warehouse.target = redshift://awsuser@127.0.0.1:%d/dev % rs.port
        rs.statements()   # every query text, in order, across connections
        rs.sessions       # [{"user", "database", "tls", "params"}]

Rules are tried newest first; the first whose regular expression matches
(re.search, re.S) answers: `error=(sqlstate, message)`, `rows` with `cols`
(name, type oid; rows may be a function of the match), `block=True` (the
query waits until a CancelRequest for its connection arrives, then fails with
57014 as PostgreSQL and Redshift do), `delay=SECONDS` (the answer comes that
much later, or a cancel ends the wait as with block), or `drop=True` (the connection is
closed without an answer, as when the leader node restarts).  `times=N`
limits a rule to its first N matches.
Unmatched queries succeed with no rows.  Transaction status (I/T/E) is kept
as a server would: BEGIN, COMMIT, ROLLBACK, and an error inside a block.

Before any rule of the test, every query goes through rsrules.refusal():
what the Redshift documentation says a cluster refuses (session parameters
out of their documented values, PostgreSQL features Redshift lacks,
reserved words as bare names, TRUNCATE inside a transaction) fails as it
would on a cluster, and the refusal is kept in `refused` as (query,
sqlstate, message).  Server(strict=False) turns that off.

TLS: the SSLRequest is accepted with a self-signed certificate made with the
openssl command when tls=True, refused ('N') otherwise, so a client that
requires TLS must fail against Server(tls=False).

Standard library only; run with /usr/bin/python3 like the other tests.
"""
import os
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import threading

import rsrules

INT4, INT8, TEXT, VARCHAR, TIMESTAMP = 23, 20, 25, 1043, 1114

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST, PROTOCOL_3 = 80877103, 80877104, 80877102, 196608


class _Rule:
    def __init__(self, pattern, error=None, cols=None, rows=None, block=False, drop=False,
                 times=None, delay=0):
        self.pattern = re.compile(pattern, re.S)
        self.error, self.cols, self.rows, self.block = error, cols, rows, block
        self.drop = drop
        self.delay = delay  # seconds the answer takes (a long COPY)
        self.times = times  # None: always; N: the first N matches only


class Server:
    def __init__(self, password="secret", tls=True, user=None, strict=True):
        self.password, self.tls, self.user = password, tls, user
        self.strict = strict
        self.refused = []    # (query, sqlstate, message) that rsrules refused
        self.rules = []
        self.log = []        # (session index, query text)
        self.sessions = []   # dicts, one per connection that started up
        self.cancels = 0
        self.lock = threading.Lock()
        self.backends = {}   # (pid, key) -> threading.Event set by a CancelRequest
        self.next_pid = 4000
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.tmp = tempfile.mkdtemp(prefix="rsfake-")
        self.ctx = None
        if tls:
            cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    # ---- the test's side ----

    def rule(self, pattern, **kw):
        with self.lock:
            self.rules.insert(0, _Rule(pattern, **kw))

    def statements(self):
        with self.lock:
            return [q for _, q in self.log]

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            for ev in self.backends.values():
                ev.set()
        subprocess.run(["rm", "-rf", self.tmp])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- the protocol ----

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _recv(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def _startup_packet(self, conn):
        (length,) = struct.unpack("!I", self._recv(conn, 4))
        return self._recv(conn, length - 4)

    @staticmethod
    def _msg(kind, payload=b""):
        return kind + struct.pack("!I", len(payload) + 4) + payload

    def _error(self, sqlstate, message, severity="ERROR"):
        fields = b"S" + severity.encode() + b"\0" + b"V" + severity.encode() + b"\0"
        fields += b"C" + sqlstate.encode() + b"\0" + b"M" + message.encode() + b"\0\0"
        return self._msg(b"E", fields)

    def _serve(self, conn):
        try:
            self._session(conn)
        except (ConnectionError, OSError, ssl.SSLError, struct.error):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _session(self, conn):
        tls = False
        while True:
            body = self._startup_packet(conn)
            (code,) = struct.unpack("!I", body[:4])
            if code == CANCEL_REQUEST:
                pid, key = struct.unpack("!II", body[4:12])
                with self.lock:
                    self.cancels += 1
                    ev = self.backends.get((pid, key))
                if ev:
                    ev.set()
                return
            if code == GSSENC_REQUEST:
                conn.sendall(b"N")
                continue
            if code == SSL_REQUEST:
                if self.ctx:
                    conn.sendall(b"S")
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    tls = True
                else:
                    conn.sendall(b"N")
                continue
            if code != PROTOCOL_3:
                conn.sendall(self._error("08P01", "unsupported frontend protocol", "FATAL"))
                return
            break
        parts = body[4:].split(b"\0")
        params = dict(zip([p.decode() for p in parts[0:-1:2]], [p.decode() for p in parts[1::2]]))
        user = params.get("user", "")
        session = {"user": user, "database": params.get("database", user), "tls": tls,
                   "params": params, "password_ok": False}
        with self.lock:
            self.sessions.append(session)
            index = len(self.sessions) - 1
        # Cleartext password (over TLS when the client asked for it).
        conn.sendall(self._msg(b"R", struct.pack("!I", 3)))
        kind = self._recv(conn, 1)
        (length,) = struct.unpack("!I", self._recv(conn, 4))
        given = self._recv(conn, length - 4).rstrip(b"\0").decode()
        if kind != b"p" or given != self.password or (self.user and user != self.user):
            conn.sendall(self._error("28P01", 'password authentication failed for user "%s"'
                                     % user, "FATAL"))
            return
        session["password_ok"] = True
        with self.lock:
            self.next_pid += 1
            pid, key = self.next_pid, 12345 + self.next_pid
            cancel = threading.Event()
            self.backends[(pid, key)] = cancel
        out = self._msg(b"R", struct.pack("!I", 0))
        for k, v in (("server_version", "8.0.2"), ("client_encoding", "UTF8"),
                     ("DateStyle", "ISO, MDY"), ("TimeZone", "UTC"),
                     ("integer_datetimes", "on"), ("is_superuser", "on"),
                     ("standard_conforming_strings", "off")):
            out += self._msg(b"S", k.encode() + b"\0" + v.encode() + b"\0")
        out += self._msg(b"K", struct.pack("!II", pid, key))
        status = b"I"
        conn.sendall(out + self._msg(b"Z", status))
        try:
            while True:
                kind = self._recv(conn, 1)
                (length,) = struct.unpack("!I", self._recv(conn, 4))
                payload = self._recv(conn, length - 4)
                if kind == b"X":
                    return
                if kind != b"Q":
                    conn.sendall(self._error("0A000", "rsfake answers simple queries only")
                                 + self._msg(b"Z", status))
                    continue
                query = payload.rstrip(b"\0").decode()
                with self.lock:
                    self.log.append((index, query))
                reply, status = self._answer(query, status, cancel)
                conn.sendall(reply + self._msg(b"Z", status))
        finally:
            with self.lock:
                self.backends.pop((pid, key), None)

    def _rule_for(self, query):
        with self.lock:
            for r in self.rules:
                m = r.pattern.search(query)
                if m and (r.times is None or r.times > 0):
                    if r.times is not None:
                        r.times -= 1
                    return r, m
        return None, None

    def _answer(self, query, status, cancel):
        word = (query.strip().split(None, 1) or [""])[0].upper().rstrip(";")
        if status == b"E" and word not in ("ROLLBACK", "COMMIT", "END", "ABORT"):
            return (self._error("25P02", "current transaction is aborted, commands ignored "
                                "until end of transaction block"), status)
        refusal = rsrules.refusal(query, in_transaction=status == b"T") if self.strict else None
        if refusal:
            with self.lock:
                self.refused.append((query,) + refusal)
            return self._error(*refusal), (b"E" if status == b"T" or word in ("BEGIN", "START")
                                           else status)
        if word in ("COMMIT", "END"):
            return self._msg(b"C", (b"ROLLBACK" if status == b"E" else b"COMMIT") + b"\0"), b"I"
        if word in ("ROLLBACK", "ABORT"):
            return self._msg(b"C", b"ROLLBACK\0"), b"I"
        if word in ("BEGIN", "START"):
            return self._msg(b"C", b"BEGIN\0"), b"T"
        failed = b"E" if status == b"T" else status
        r, m = self._rule_for(query)
        if r and r.drop:
            raise ConnectionError("dropped by the test's rule")
        if r and r.delay:
            cancel.clear()
            if cancel.wait(r.delay) and not self.stopping:
                return self._error("57014", "canceling statement due to user request"), failed
        if r and r.block:
            cancel.clear()
            if cancel.wait(120) and not self.stopping:
                return self._error("57014", "canceling statement due to user request"), failed
        if r and r.error:
            return self._error(*r.error), failed
        if r and r.cols is not None:
            out = struct.pack("!H", len(r.cols))
            for name, oid in r.cols:
                out += name.encode() + b"\0" + struct.pack("!IhIhih", 0, 0, oid, -1, -1, 0)
            reply = self._msg(b"T", out)
            rows = r.rows(m) if callable(r.rows) else (r.rows or [])
            for row in rows:
                d = struct.pack("!H", len(row))
                for v in row:
                    if v is None:
                        d += struct.pack("!i", -1)
                    else:
                        b = str(v).encode()
                        d += struct.pack("!I", len(b)) + b
                reply += self._msg(b"D", d)
            return reply + self._msg(b"C", b"SELECT %d\0" % len(rows)), status
        return self._msg(b"C", (word or "EMPTY").encode() + b"\0"), status
