"""test_daemon.py - etld as a server: the JSON-RPC protocol, abuse of the
connection (garbage, huge lines, byte-at-a-time, pipelining, hang-ups, never
reading), start-up and shutdown, cancel, restart with queued work.

The rule behind most of these: whatever a client sends, the daemon answers
with the right JSON-RPC error, keeps the connection usable, and never dies.
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import pytest

import etldtest
import expected
from etldtest import Conn, RpcError, assert_job_succeeded, settings_for, step_of


def assert_usable(c):
    """A ping on the same connection still answers."""
    assert c.result("ping") == {"pong": True}


def assert_error(msg, code):
    assert msg.get("jsonrpc") == "2.0", msg
    assert "error" in msg and "result" not in msg, msg
    assert msg["error"]["code"] == code, "expected error %d, got %s" % (code, msg)
    assert isinstance(msg["error"].get("message"), str) and msg["error"]["message"], msg
    return msg["error"]


# --- basics -----------------------------------------------------------------

def test_ping_version_status(etld):
    with etld.conn() as c:
        assert c.result("ping") == {"pong": True}
        v = c.result("version")
        assert v["protocol"] == 1 and isinstance(v["version"], str) and v["version"], v
        st = c.result("status", {})
        assert set(st) >= {"version", "pid", "uptime_s", "running", "queued", "jobs"}, st
        assert st["pid"] == etld.pid, st
        assert st["running"] == 0 and st["queued"] == 0 and st["jobs"] == [], st
        assert c.result("list", {"limit": 5}) == {"jobs": []}


# --- malformed input: the right error, the connection stays usable ----------

@pytest.mark.parametrize("line,code", [
    (b'{"jsonrpc":"2.0","method":"ping","id":1', -32700),       # cut short
    (b'{"jsonrpc":"2.0","method":"ping","id":1,}', -32700),     # trailing comma
    (b'not json at all', -32700),
    (b'\xff\xfe{"bad utf-8"}', -32700),
    (b'42', -32600),
    (b'"a string"', -32600),
    (b'null', -32600),
    (b'[]', -32600),
    (b'{"jsonrpc":"2.0","id":5}', -32600),                      # no method
    (b'{"jsonrpc":"2.0","method":7,"id":5}', -32600),           # method not a string
    (b'{"jsonrpc":"1.0","method":"ping","id":5}', -32600),      # wrong version
    (b'{"method":"ping","id":5}', -32600),                      # no version
    (b'{"jsonrpc":"2.0","method":"ping","params":5,"id":5}', -32600),  # params not structured
    (b'{"jsonrpc":"2.0","method":"nosuch","id":5}', -32601),
    (b'{"jsonrpc":"2.0","method":"status","params":{"job":"abc"},"id":5}', -32602),
    (b'{"jsonrpc":"2.0","method":"status","params":{"job":-1.5},"id":5}', -32602),
    (b'{"jsonrpc":"2.0","method":"cancel","params":{},"id":5}', -32602),
    (b'{"jsonrpc":"2.0","method":"list","params":{"limit":"ten"},"id":5}', -32602),
    (b'{"jsonrpc":"2.0","method":"watch","params":{"job":true},"id":5}', -32602),
    (b'{"jsonrpc":"2.0","method":"submit","params":{},"id":5}', -32602),
    (b'{"jsonrpc":"2.0","method":"submit","params":{"pipeline":"etl","settings":"x"},"id":5}', -32602),
    (b'{"jsonrpc":"2.0","method":"submit","params":{"pipeline":"etl","settings":{"s3.log_data":7}},"id":5}', -32602),
], ids=lambda v: v.decode("latin-1")[-48:] if isinstance(v, bytes) else str(v))
def test_bad_request_gets_error_and_connection_stays_usable(etld, line, code):
    with etld.conn() as c:
        c.send_raw(line + b"\n")
        err = assert_error(c.read_msg(), code)
        assert_usable(c)
    if code == -32700:
        assert re.search(r"\d", err["message"]), "parse error message has no byte position: %r" % err


def test_parse_error_names_byte_position(etld):
    line = b'{"jsonrpc":"2.0","method":"ping",  "id":1 "x":2}'
    try:
        json.loads(line)
    except ValueError as e:
        pos = e.pos
    with etld.conn() as c:
        c.send_raw(line + b"\n")
        msg = c.read_msg()
        err = assert_error(msg, -32700)
        assert msg.get("id") is None, msg
        nums = [int(n) for n in re.findall(r"\d+", err["message"])]
        # The offending token "x" starts at byte `pos`; a parser may report its
        # start or its end.
        assert any(pos - 2 <= n <= pos + 5 for n in nums), \
            "parse error should name byte ~%d; message: %r" % (pos, err["message"])
        assert_usable(c)


def test_unknown_method_and_ids_echoed(etld):
    with etld.conn() as c:
        for rid in (7, "abc", 0):
            c.send_raw(json.dumps({"jsonrpc": "2.0", "method": "frobnicate", "id": rid}) + "\n")
            msg = c.read_msg()
            assert_error(msg, -32601)
            assert msg["id"] == rid, msg
            assert "frobnicate" in msg["error"]["message"], msg


def test_submit_unknown_pipeline_and_setting_named(etld):
    with etld.conn() as c:
        msg = c.call("submit", {"pipeline": "nosuchpipe", "settings": {}})
        assert "nosuchpipe" in assert_error(msg, -32602)["message"], msg
        msg = c.call("submit", {"pipeline": "etl", "settings": {"s3.nosuchkey": "x"}})
        assert "s3.nosuchkey" in assert_error(msg, -32602)["message"], msg
        msg = c.call("submit", {"pipeline": "etl", "settings": {"nosection.song_data": "x"}})
        assert "nosection.song_data" in assert_error(msg, -32602)["message"], msg
        assert_usable(c)
        assert c.result("list", {"limit": 10}) == {"jobs": []}


def test_unknown_job_and_notifications(etld):
    with etld.conn() as c:
        assert_error(c.call("status", {"job": 987654}), -32001)
        assert_error(c.call("cancel", {"job": 987654}), -32001)
        assert_error(c.call("watch", {"job": 987654}), -32001)
        # A notification (no id) gets no reply: the next line read answers id 99.
        c.send_raw(b'{"jsonrpc":"2.0","method":"ping"}\n')
        c.send_raw(b'{"jsonrpc":"2.0","method":"ping","id":99}\n')
        msg = c.read_msg()
        assert msg.get("id") == 99 and msg.get("result") == {"pong": True}, msg


# --- framing -----------------------------------------------------------------

def test_line_over_1mib_then_ping(etld):
    with etld.conn(timeout=20) as c:
        big = b'{"jsonrpc":"2.0","method":"ping","id":1,"params":{"pad":"' + b"x" * (3 << 19)
        c.send_raw(big)  # 1.5 MiB, no newline yet
        c.send_raw(b'"}}\n{"jsonrpc":"2.0","method":"ping","id":2}\n')
        first = c.read_msg(20)
        assert_error(first, -32600)
        second = c.read_msg(20)
        assert second.get("id") == 2 and second.get("result") == {"pong": True}, second
    assert etld.rpc("ping") == {"pong": True}


def test_line_just_under_limit_is_read(etld):
    with etld.conn(timeout=20) as c:
        head = b'{"jsonrpc":"2.0","method":"status","id":3,"params":{"job":1,"pad":"'
        tail = b'"}}'
        line = head + b"y" * ((1 << 20) - len(head) - len(tail) - 16) + tail
        c.send_raw(line + b"\n")
        msg = c.read_msg(20)
        assert msg.get("id") == 3, "a line under 1 MiB must be parsed (got %s)" % msg
        if "error" in msg:
            assert msg["error"]["code"] not in (-32600, -32700), msg
        assert_usable(c)


def test_byte_at_a_time(etld):
    with etld.conn() as c:
        for b in b'{"jsonrpc":"2.0","method":"version","id":11}\n':
            c.send_raw(bytes([b]))
            time.sleep(0.002)
        msg = c.read_msg()
        assert msg["id"] == 11 and msg["result"]["protocol"] == 1, msg


def test_pipelined_requests_in_one_write(etld):
    n = 300
    reqs = b"".join(b'{"jsonrpc":"2.0","method":"ping","id":%d}\n' % i for i in range(n))
    reqs += b'{"jsonrpc":"2.0","method":"nosuch","id":"last"}\n'
    with etld.conn() as c:
        c.send_raw(reqs)
        seen = []
        for _ in range(n + 1):
            seen.append(c.read_msg())
    ids = [m.get("id") for m in seen]
    assert sorted(i for i in ids if isinstance(i, int)) == list(range(n)), ids
    assert all(m.get("result") == {"pong": True} for m in seen if m.get("id") != "last")
    assert_error([m for m in seen if m.get("id") == "last"][0], -32601)
    assert ids == list(range(n)) + ["last"], "replies out of order: %s" % ids[:20]


def test_mixed_garbage_and_requests_pipelined(etld):
    with etld.conn() as c:
        c.send_raw(b'garbage\n{"jsonrpc":"2.0","method":"ping","id":1}\n\x00\x01\x02\n'
                   b'{"jsonrpc":"2.0","method":"ping","id":2}\n')
        msgs = [c.read_msg() for _ in range(4)]
        assert [m.get("id") for m in msgs if "result" in m] == [1, 2], msgs
        assert len([m for m in msgs if "error" in m]) == 2, msgs


def test_hangups_mid_request(etld):
    for chunk in (b'{"jsonrpc":"2.0","meth', b'{"jsonrpc":"2.0","method":"ping","id":1}',
                  b"x" * 200000, b'{"jsonrpc":"2.0","method":"status","params":{},"id":1}\n' * 500):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(etld.sock)
        s.sendall(chunk)
        s.close()  # never reads the replies
    # With a reset instead of a clean close.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(etld.sock)
    s.sendall(b'{"jsonrpc":"2.0","method":"list","params":{"limit":1},"id":1}\n' * 100)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    time.sleep(0.2)
    assert etld.alive()
    assert etld.rpc("ping") == {"pong": True}


def test_client_that_never_reads_does_not_block_others(etld):
    flood = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    flood.connect(etld.sock)
    flood.setblocking(False)
    payload = b'{"jsonrpc":"2.0","method":"version","id":1}\n' * 2000
    sent = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and sent < 50 * len(payload):
        try:
            sent += flood.send(payload)
        except BlockingIOError:
            select.select([], [flood], [], 0.1)
    # The flooding client never reads; another one must still be served promptly.
    t0 = time.monotonic()
    with etld.conn(timeout=5) as c:
        assert_usable(c)
    assert time.monotonic() - t0 < 2, "a client that never reads slowed others down"
    flood.close()
    time.sleep(0.2)
    assert etld.rpc("ping") == {"pong": True}


def test_fifty_connections_at_once(etld):
    conns = [Conn(etld.sock) for _ in range(50)]
    try:
        for i, c in enumerate(conns):
            c.send("ping", None, id=i)
        for i, c in enumerate(conns):
            msg = c.reply(i)
            assert msg.get("result") == {"pong": True}, (i, msg)
        # And all still usable, in the other order.
        for i, c in reversed(list(enumerate(conns))):
            assert c.result("status", {})["pid"] == etld.pid
    finally:
        for c in conns:
            c.close()
    assert etld.rpc("ping") == {"pong": True}


def test_uid_in_status(etld, edge_data, workdir):
    sub = etld.submit(settings_for(edge_data, os.path.join(workdir, "wh.db")))
    st = etld.status(sub["job"])
    assert st["uid"] == os.getuid(), st
    st = etld.wait_job(sub["job"])
    assert st["uid"] == os.getuid(), st
    assert_job_succeeded(st)


# --- start-up and shutdown -------------------------------------------------------

def run_etld(conf, sock, state, timeout=10):
    return subprocess.run([etldtest.ETLD, "--foreground", "--config", conf, "--socket", sock,
                           "--state-dir", state], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"))


@pytest.mark.parametrize("body,line,word", [
    ("[daemon]\nlog_level = debug\nnosuch = 1\n", 3, "nosuch"),
    ("[daemon]\nmax_jobs = lots\n", 2, "max_jobs"),
    # the line of the [nosection] header itself (inih named the first key after it)
    ("[daemon]\nlog_level = debug\n[nosection]\nkey = v\n", 3, "nosection"),
    ("[s3]\nsong_data = file:///x\n\n[warehouse]\ntarget = sqlite:///tmp/x.db\nbogus\n", 6, ""),
], ids=["unknown-key", "bad-int", "unknown-section", "not-key-value"])
def test_config_error_names_file_and_line(binaries, workdir, body, line, word):
    conf = os.path.join(workdir, "bad.conf")
    with open(conf, "w") as f:
        f.write(body)
    r = run_etld(conf, os.path.join(workdir, "s"), os.path.join(workdir, "st"))
    assert r.returncode != 0, "etld accepted a bad config:\n%s" % r.stderr
    assert "%s:%d" % (conf, line) in r.stderr, "stderr should name %s:%d; got:\n%s" % (conf, line, r.stderr)
    assert word in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(workdir, "s")), "a socket was created despite the error"


def test_missing_config_file_named(binaries, workdir):
    conf = os.path.join(workdir, "absent.conf")
    r = run_etld(conf, os.path.join(workdir, "s"), os.path.join(workdir, "st"))
    assert r.returncode != 0 and conf in r.stderr, (r.returncode, r.stderr)


def test_refuses_to_start_over_a_live_daemon(etld, workdir):
    other_state = os.path.join(workdir, "state2")
    os.makedirs(other_state)
    conf = etldtest.write_conf(os.path.join(workdir, "c.conf"), other_state)
    r = run_etld(conf, etld.sock, other_state)
    assert r.returncode != 0, "a second etld started on a live socket:\n%s" % r.stderr
    assert r.stderr.strip(), "no message on stderr"
    assert etld.sock in r.stderr or "running" in r.stderr.lower() or "use" in r.stderr.lower(), r.stderr
    assert etld.alive() and etld.rpc("ping") == {"pong": True}


def test_removes_stale_socket(etld_factory):
    d = etld_factory(start=False)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(d.sock)
    stale.close()  # the file stays, nobody listens
    assert os.path.exists(d.sock)
    d.start()
    assert d.rpc("ping") == {"pong": True}


def test_sigterm_exits_zero(etld):
    with etld.conn() as idle:  # an idle client does not keep it alive
        assert_usable(idle)
        assert etld.stop() == 0
    assert not etld.alive()


def test_sigterm_with_watcher_and_running_job(etld, big_data, workdir):
    sub = etld.submit(settings_for(big_data, os.path.join(workdir, "wh.db")))
    etld.wait_step(sub["job"], "load")
    with etld.conn() as w:
        w.result("watch", {"job": sub["job"]})
        t0 = time.monotonic()
        assert etld.stop() == 0, "SIGTERM during a job should exit 0 within 10 s"
    assert time.monotonic() - t0 < 10


# --- watch -------------------------------------------------------------------

def collect_events(c, job, timeout=120):
    events = []
    deadline = time.monotonic() + timeout
    while True:
        ev = c.next_event(max(0.1, deadline - time.monotonic()))
        assert ev.get("jsonrpc") == "2.0" and ev.get("method") == "event", ev
        p = ev["params"]
        assert p.get("job") == job, ev
        assert p.get("kind") in ("step", "progress", "log", "end"), ev
        events.append(p)
        if p["kind"] == "end":
            return events


def test_two_clients_watch_and_submit(etld, big_data, small_data, workdir):
    wh = os.path.join(workdir, "wh.db")
    blocker = etld.submit(settings_for(big_data, wh))["job"]
    etld.wait_step(blocker, "load")
    # Same warehouse: this one must wait for the blocker.
    job = etld.submit(settings_for(small_data, wh))["job"]
    with etld.conn(timeout=30) as watcher, etld.conn() as other:
        r = watcher.result("watch", {"job": job})
        assert isinstance(r, dict), r
        # The other client works while the watcher waits.
        assert other.result("status", {"job": job})["state"] == "queued"
        st = other.result("status", {})
        assert st["running"] >= 1 and st["queued"] >= 1, st
        assert {j["id"] for j in other.result("list", {"limit": 10})["jobs"]} >= {job, blocker}
        assert other.result("cancel", {"job": blocker})["job"] == blocker
        events = collect_events(watcher, job)
        assert_usable(watcher)
        assert_usable(other)
    end = events[-1]
    assert end["state"] == "succeeded", events[-5:]
    assert any(e["kind"] == "step" for e in events), events
    assert etld.wait_job(blocker)["state"] == "cancelled"
    assert_job_succeeded(etld.status(job))
    diff = expected.compare(wh, expected.for_data_dir(small_data))
    assert not diff, diff


def test_watch_of_finished_job_ends(etld, edge_data, workdir):
    job = etld.submit(settings_for(edge_data, os.path.join(workdir, "wh.db")))["job"]
    etld.wait_job(job)
    with etld.conn() as c:
        c.result("watch", {"job": job})
        events = collect_events(c, job, timeout=10)
        assert events[-1]["state"] == "succeeded", events


def test_hangup_mid_watch(etld, big_data, workdir):
    job = etld.submit(settings_for(big_data, os.path.join(workdir, "wh.db")))["job"]
    for _ in range(5):
        c = etld.conn()
        c.result("watch", {"job": job})
        c.close()  # gone while events are flowing
    c = etld.conn()
    c.result("watch", {"job": job})
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    time.sleep(0.3)
    assert etld.alive()
    assert etld.rpc("ping") == {"pong": True}
    etld.rpc("cancel", {"job": job})
    assert etld.wait_job(job)["state"] == "cancelled"


# --- cancel --------------------------------------------------------------------

def assert_cancelled_cleanly(st, ran):
    assert st["state"] == "cancelled", st
    states = {s["name"]: s["state"] for s in st["steps"]}
    assert "running" not in states.values(), states
    if not ran:
        assert set(states.values()) <= {"pending", "cancelled"}, states
    assert st.get("finished_at"), st


@pytest.mark.slow
def test_cancel_queued_job_behind_max_jobs(etld_factory, big_data, small_data):
    d = etld_factory(max_jobs=1)
    a = d.submit(settings_for(big_data, os.path.join(d.workdir, "a.db")))["job"]
    b = d.submit(settings_for(small_data, os.path.join(d.workdir, "b.db")))["job"]
    d.wait_step(a, "load")
    assert d.status(b)["state"] == "queued", d.status(b)
    r = d.rpc("cancel", {"job": b})
    assert r["job"] == b and r["state"] == "cancelled", r
    assert_cancelled_cleanly(d.status(b), ran=False)
    assert not os.path.exists(os.path.join(d.workdir, "b.db")) or \
        d.status(b)["steps"][0]["state"] != "done"
    with d.conn() as c:
        assert_error(c.call("cancel", {"job": b}), -32002)
        assert_error(c.call("cancel", {"job": 424242}), -32001)
    assert d.status(a)["state"] == "running"
    d.rpc("cancel", {"job": a})
    assert d.wait_job(a)["state"] == "cancelled"


@pytest.mark.slow
def test_cancel_queued_job_behind_same_warehouse(etld_factory, big_data, small_data):
    d = etld_factory(max_jobs=2)
    wh = os.path.join(d.workdir, "shared.db")
    a = d.submit(settings_for(big_data, wh), key="first")["job"]
    b = d.submit(settings_for(small_data, wh), key="second")["job"]
    d.wait_step(a, "load")
    time.sleep(0.5)
    assert d.status(a)["state"] == "running"
    assert d.status(b)["state"] == "queued", \
        "jobs on the same warehouse must not overlap: %s" % d.status(b)
    r = d.rpc("cancel", {"job": b})
    assert r == {"job": b, "state": "cancelled"}, r
    assert_cancelled_cleanly(d.status(b), ran=False)
    d.rpc("cancel", {"job": a})
    assert d.wait_job(a)["state"] == "cancelled"


@pytest.mark.slow
def test_cancel_running_job(etld, big_data, small_data, workdir):
    wh = os.path.join(workdir, "wh.db")
    job = etld.submit(settings_for(big_data, wh))["job"]
    st = etld.wait_step(job, "load", pred=lambda s: (s.get("progress") or {}).get("rows", 0) > 0)
    assert st["state"] == "running", "job finished before it could be cancelled: %s" % st
    t0 = time.monotonic()
    r = etld.rpc("cancel", {"job": job})
    # Checked last, so that the checks below still run when only this differs.
    # "cancelling": the running step was asked to stop and the job ends
    # cancelled once it has (README, "The RPC methods").
    reply_ok = r.get("job") == job and r.get("state") in ("cancelling", "cancelled")
    st = etld.wait_job(job, timeout=10)
    assert time.monotonic() - t0 < 5, "cancel took %.1fs" % (time.monotonic() - t0)
    assert_cancelled_cleanly(st, ran=True)
    steps = {s["name"]: s["state"] for s in st["steps"]}
    assert steps["create-tables"] == "done" and steps["load"] == "cancelled", steps
    assert steps["transform"] in ("pending", "cancelled") and steps["check"] in ("pending", "cancelled"), steps
    con = sqlite3.connect(wh)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # The interrupted COPY was rolled back as a whole, as on Redshift.
        n = con.execute("SELECT count(*) FROM staging_events").fetchone()[0]
        assert n == 0, "a cancelled COPY left %d rows in staging_events" % n
    finally:
        con.close()
    with etld.conn() as c:
        assert_error(c.call("cancel", {"job": job}), -32002)
    # The warehouse is usable: the next job on it succeeds.
    job2 = etld.submit(settings_for(small_data, wh))["job"]
    assert_job_succeeded(etld.wait_job(job2))
    assert not expected.compare(wh, expected.for_data_dir(small_data))
    assert reply_ok, "cancel reply %r: state should be cancelling or cancelled " \
        "(queued|running|succeeded|failed|cancelled)" % (r,)


# --- restart with work in flight ------------------------------------------------

@pytest.mark.slow
def test_restart_with_running_and_queued_jobs(etld_factory, big_data, edge_data):
    d = etld_factory(max_jobs=1)
    wa = os.path.join(d.workdir, "a.db")
    wb = os.path.join(d.workdir, "b.db")
    a = d.submit(settings_for(big_data, wa))["job"]
    b = d.submit(settings_for(edge_data, wb))["job"]
    d.wait_step(a, "load")
    assert d.status(b)["state"] == "queued"
    assert d.stop() == 0, "SIGTERM with a running job should exit 0"
    d.start()
    sa = d.wait_job(a, timeout=180)
    sb = d.wait_job(b, timeout=60)
    assert_job_succeeded(sa)
    assert_job_succeeded(sb)
    diff = expected.compare(wb, expected.for_data_dir(edge_data))
    assert not diff, diff
    diff = expected.compare(wa, expected.for_data_dir(big_data))
    assert not diff, diff


def test_journal_readable_while_running_and_state_dir_taken(etld, edge_data, workdir):
    """The journal is opened in SQLite's normal locking mode (a lock file
    keeps a second etld off the state directory): `sqlite3 -readonly` reads
    it while etld runs, and a second etld on the same directory is refused,
    naming the first one's pid."""
    sub = etld.submit(settings_for(edge_data, os.path.join(workdir, "wh.db")))
    etld.wait_job(sub["job"])
    db = os.path.join(etld.state, "journal.db")
    out = subprocess.run(["sqlite3", "-readonly", db,
                          "SELECT state FROM jobs WHERE id = %d" % sub["job"]],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "succeeded", out
    assert etld.rpc("ping") == {"pong": True}  # and etld goes on writing
    second = run_etld(etld.conf, os.path.join(workdir, "second.sock"), etld.state)
    assert second.returncode != 0
    assert "another etld (pid %d) uses this state directory" % etld.proc.pid in second.stderr, \
        second.stderr


def test_list_filters_and_logs(etld, edge_data, workdir):
    """etlctl list --pipeline/--state/--key/--since, with each job's key and
    duration; etlctl logs JOB [--step S] with the time of each event."""
    ok = etld.submit(settings_for(edge_data, os.path.join(workdir, "wh.db")), key="night-1")
    etld.wait_job(ok["job"])
    bad = etld.submit(dict(settings_for(edge_data, os.path.join(workdir, "wh2.db")),
                           **{"s3.song_data": "file:///nonexistent/song_data"}))
    st = etld.wait_job(bad["job"])
    assert st["state"] == "failed", st

    def listed(*args):
        p = etldtest.etlctl(etld.sock, "--json", "list", *args)
        assert p.returncode == 0, p.stderr
        return [j["id"] for j in json.loads(p.stdout)["jobs"]]

    assert listed("--state", "failed") == [bad["job"]]
    assert listed("--state", "succeeded") == [ok["job"]]
    assert listed("--key", "night-1") == [ok["job"]]
    assert listed("--pipeline", "stage") == []
    assert listed("--pipeline", "etl") == [bad["job"], ok["job"]]
    assert listed("--since", "1h") == [bad["job"], ok["job"]]
    assert listed("--since", "2999-01-01") == []
    p = etldtest.etlctl(etld.sock, "--json", "list", "--key", "night-1")
    job = json.loads(p.stdout)["jobs"][0]
    assert job["key"] == "night-1" and job["duration_s"] >= 0, job
    table = etldtest.etlctl(etld.sock, "list", "--key", "night-1").stdout
    head = table.splitlines()[0].split()
    assert head[:7] == ["ID", "PIPELINE", "STATE", "KEY", "CREATED", "FINISHED", "DURATION"], table
    assert "night-1" in table.splitlines()[1]
    p = etldtest.etlctl(etld.sock, "list", "--state", "done")
    assert p.returncode == 4 and "not a job state" in p.stderr, p.stderr

    p = etldtest.etlctl(etld.sock, "--json", "logs", str(ok["job"]))
    assert p.returncode == 0, p.stderr
    events = json.loads(p.stdout)["events"]
    assert all(re.match(r"\d{4}-\d\d-\d\dT", e["at"]) for e in events), events
    steps = {e["step"] for e in events}
    assert {"load", "publish"} <= steps, steps
    p = etldtest.etlctl(etld.sock, "--json", "logs", str(ok["job"]), "--step", "load")
    only = json.loads(p.stdout)["events"]
    assert only and all(e["step"] == "load" for e in only)
    human = etldtest.etlctl(etld.sock, "logs", str(ok["job"])).stdout
    assert human.splitlines()[0].split() == ["TIME", "LEVEL", "STEP", "MESSAGE"], human
    p = etldtest.etlctl(etld.sock, "logs", "999999")
    assert p.returncode == 4 and "no job 999999" in p.stderr, p.stderr


def test_retention_prunes_finished_jobs_at_start(etld_factory, edge_data, workdir):
    """daemon.keep_jobs: at start (and hourly) finished jobs beyond the newest
    N leave the journal, with their events; the latest job of a pipeline and
    a published one stay whatever the limit."""
    d = etld_factory(conf_extra="[daemon]\nkeep_jobs = 1\nkeep_days = 0\n")
    failed = []
    for i in range(3):
        s = dict(settings_for(edge_data, os.path.join(workdir, "wh.db")),
                 **{"s3.song_data": "file:///nonexistent/song_data-%d" % i})
        failed.append(d.submit(s)["job"])
        assert d.wait_job(failed[-1])["state"] == "failed"
    ok = d.submit(settings_for(edge_data, os.path.join(workdir, "wh.db")))["job"]
    assert_job_succeeded(d.wait_job(ok))
    d.stop()
    d.start()
    ids = [j["id"] for j in d.rpc("list", {"limit": 100})["jobs"]]
    assert ids == [ok], ids
    with pytest.raises(RpcError):
        d.rpc("logs", {"job": failed[0]})
    with open(d.stderr_path) as f:
        log = f.read()
    assert "retention: removed 3 finished jobs from the journal" in log, log[-2000:]


def test_sighup_reopens_detached_log(binaries, workdir):
    """Detached, etld logs to STATE_DIR/etld.log; after logrotate moves it
    away (no copytruncate), SIGHUP makes etld write a new etld.log."""
    state = os.path.join(workdir, "state")
    os.makedirs(state)
    conf = etldtest.write_conf(os.path.join(workdir, "etld.conf"), state)
    sock = os.path.join(workdir, "s")
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run([etldtest.ETLD, "--config", conf, "--socket", sock, "--state-dir", state],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    pid = int(Conn(sock).result("status")["pid"])
    try:
        log = os.path.join(state, "etld.log")
        os.rename(log, log + ".1")
        os.kill(pid, signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and not os.path.exists(log):
            time.sleep(0.05)
        assert etldtest.etlctl(sock, "ping").returncode == 0
        deadline = time.time() + 10
        text = ""
        while time.time() < deadline and "log reopened" not in text:
            time.sleep(0.05)
            text = open(log).read() if os.path.exists(log) else ""
        assert "log reopened: %s" % log in text, text
        assert "ready on" in open(log + ".1").read()
    finally:
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            if not os.path.exists("/proc/%d" % pid):
                break
            time.sleep(0.05)


def _metric(text, name, **labels):
    """The value of one sample of the exposition text, or None."""
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if metric == name and got == want:
            return float(value)
    return None


def test_metrics_rpc_and_file(etld_factory, edge_data, workdir):
    """etlctl metrics and daemon.metrics_file: the Prometheus text format
    (promtool check metrics passes), jobs by pipeline and final state, last
    success, rows and load errors, counters that survive a restart and
    retention."""
    mfile = os.path.join(workdir, "etld.prom")
    d = etld_factory(conf_extra="[daemon]\nmetrics_file = %s\nkeep_jobs = 1\n" % mfile)
    ok = d.submit(settings_for(edge_data, os.path.join(workdir, "wh.db")))["job"]
    st = d.wait_job(ok)
    assert_job_succeeded(st)
    bad = d.submit(dict(settings_for(edge_data, os.path.join(workdir, "wh2.db")),
                        **{"s3.song_data": "file:///nonexistent/x"}))["job"]
    assert d.wait_job(bad)["state"] == "failed"
    p = etldtest.etlctl(d.sock, "metrics")
    assert p.returncode == 0, p.stderr
    text = p.stdout
    assert _metric(text, "etld_jobs_total", pipeline="etl", state="succeeded") == 1, text
    assert _metric(text, "etld_jobs_total", pipeline="etl", state="failed") == 1, text
    loaded = sum(s["progress"]["rows"] for s in st["steps"] if s["name"] == "load")
    assert _metric(text, "etld_rows_loaded_total", pipeline="etl", step="load") == loaded
    rejected = sum(s["progress"].get("errors", 0) for s in st["steps"] if s["name"] == "load")
    assert _metric(text, "etld_load_errors_total", pipeline="etl", step="load") == \
        (rejected or None), text
    assert _metric(text, "etld_last_success_timestamp_seconds", pipeline="etl") > 1.7e9
    assert _metric(text, "etld_jobs_queued") == 0
    assert _metric(text, "etld_build_info", version=d.rpc("version")["version"]) == 1
    # the file, rewritten when the job ended
    deadline = time.time() + 10
    while time.time() < deadline:
        if os.path.exists(mfile) and 'state="failed"' in open(mfile).read():
            break
        time.sleep(0.05)
    ftext = open(mfile).read()
    assert _metric(ftext, "etld_jobs_total", pipeline="etl", state="failed") == 1, ftext
    # scripts/deps.sh --for-tests puts it in .tools/bin of the checkout
    tools = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".tools", "bin",
                         "promtool")
    promtool = shutil.which("promtool") or (tools if os.access(tools, os.X_OK) else None)
    if promtool:
        for t in (text, ftext):
            r = subprocess.run([promtool, "check", "metrics"], input=t, capture_output=True,
                               text=True, timeout=30)
            assert r.returncode == 0, r.stdout + r.stderr
    # counters outlive a restart and the retention that prunes the jobs
    again = d.submit(dict(settings_for(edge_data, os.path.join(workdir, "wh2.db")),
                          **{"s3.song_data": "file:///nonexistent/y"}))["job"]
    assert d.wait_job(again)["state"] == "failed"
    d.stop()
    d.start()
    # keep_jobs = 1, but the published job and the latest one stay
    assert [j["id"] for j in d.rpc("list", {"limit": 10})["jobs"]] == [again, ok]
    text = etldtest.etlctl(d.sock, "metrics").stdout
    assert _metric(text, "etld_jobs_total", pipeline="etl", state="succeeded") == 1, text
    assert _metric(text, "etld_jobs_total", pipeline="etl", state="failed") == 2, text
    if not promtool:
        pytest.skip("promtool is not installed (Debian's prometheus package has it): "
                    "the format was not checked")


def _journal_fields(datagram):
    """The fields of one datagram of journald's native protocol."""
    fields, data = {}, datagram
    while data:
        nl = data.index(b"\n")
        line = data[:nl]
        if b"=" in line:
            k, _, v = line.partition(b"=")
            fields[k.decode()] = v.decode()
            data = data[nl + 1:]
        else:  # KEY\n<u64 little endian length><value>\n
            n = int.from_bytes(data[nl + 1:nl + 9], "little")
            fields[line.decode()] = data[nl + 9:nl + 9 + n].decode()
            data = data[nl + 9 + n + 1:]
    return fields


def test_journald_fields_and_failed_job_at_err(etld_factory, edge_data, workdir):
    """Under systemd (JOURNAL_STREAM) the messages about a job go to journald
    through its native protocol with JOB=, PIPELINE=, STEP=; a failed job is
    logged at err (PRIORITY=3) so `journalctl -p err` shows it.  A datagram
    socket of the test stands in for journald's."""
    path = os.path.join(etldtest.short_tmpdir(), "journal.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(0.2)
    try:
        d = etld_factory(env={"JOURNAL_STREAM": "8:1234", "ETLD_JOURNAL_SOCKET": path})
        bad = d.submit(dict(settings_for(edge_data, os.path.join(workdir, "wh.db")),
                            **{"s3.song_data": "file:///nonexistent/x"}))["job"]
        assert d.wait_job(bad)["state"] == "failed"
        got = []
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                got.append(_journal_fields(srv.recv(65536)))
            except socket.timeout:
                if any(f.get("PRIORITY") == "3" for f in got):
                    break
        mine = [f for f in got if f.get("JOB") == str(bad)]
        assert mine, got
        assert all(f["SYSLOG_IDENTIFIER"] == "etld" and f["PIPELINE"] == "etl" for f in mine)
        failed = [f for f in mine if f["PRIORITY"] == "3"]
        assert len(failed) == 1 and "failed" in failed[0]["MESSAGE"], mine
        assert "no objects found" in failed[0]["MESSAGE"]
        running = [f for f in mine if f.get("STEP") == "load" and "running" in f["MESSAGE"]]
        assert running and running[0]["PRIORITY"] == "6", mine
    finally:
        srv.close()


def test_watch_events_carry_their_time(etld, small_data, workdir):
    """etlctl watch --json: every event has its UTC time ("at")."""
    sub = etld.submit(settings_for(small_data, os.path.join(workdir, "wh.db")))
    p = etldtest.etlctl(etld.sock, "--json", "watch", str(sub["job"]))
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    events = lines[1:]
    assert events and events[-1]["kind"] == "end", lines
    for e in events:
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["at"]), e


@pytest.mark.parametrize("imds", ["disabled", "unreachable"])
def test_missing_credentials_fail_at_once_saying_what_was_tried(etld_factory, edge_data, workdir,
                                                                imds):
    """No AWS credentials anywhere is a configuration error: the job fails on
    its first attempt (not retried as transient), naming what was tried; also
    when the instance metadata service cannot be reached (here a local port
    nobody listens on)."""
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
           "AWS_PROFILE": "", "AWS_SHARED_CREDENTIALS_FILE": os.path.join(workdir, "no-creds"),
           "AWS_CONFIG_FILE": os.path.join(workdir, "no-config"), "CREDENTIALS_DIRECTORY": ""}
    if imds == "disabled":
        env["AWS_EC2_METADATA_DISABLED"] = "true"
    else:
        env["AWS_EC2_METADATA_DISABLED"] = ""
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:9"
    d = etld_factory(env=env)
    s = dict(settings_for(edge_data, os.path.join(workdir, "wh.db")),
             **{"s3.song_data": "s3://no-such-bucket/song_data", "daemon.retry_base_ms": "50"})
    job = d.submit(s)["job"]
    st = d.wait_job(job, timeout=30)
    assert st["state"] == "failed", st
    load = step_of(st, "load")
    assert load["attempts"] == 1, load
    for what in ("no AWS credentials", "AWS_ACCESS_KEY_ID", os.path.join(workdir, "no-creds"),
                 "AWS_EC2_METADATA_DISABLED" if imds == "disabled" else "instance metadata"):
        assert what in st["error"], st["error"]
