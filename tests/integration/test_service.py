"""etld under a service manager, and the engine's retry of transient errors.

- sd_notify: READY=1 once it answers, STATUS= lines, WATCHDOG=1 at half the
  interval, STOPPING=1 on SIGTERM, spoken to a datagram socket we own.
- socket activation: a listening socket passed as fd 3 with LISTEN_FDS.
- SIGHUP re-reads the configuration: new jobs use it; a broken file is
  refused and the running configuration kept.
- a warehouse locked by someone else makes a step fail with a transient error
  (SQLITE_BUSY); the engine retries it with backoff and the job succeeds.
"""
import os
import socket
import sqlite3
import subprocess
import threading
import time

import etldtest
from etldtest import assert_job_succeeded, settings_for


def notify_socket(workdir):
    path = os.path.join(workdir, "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    return s, path


def drain(s, until, timeout=10.0):
    """Collects datagrams until one contains `until`."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(s.recv(4096).decode())
        except socket.timeout:
            continue
        if until in got[-1]:
            return got
    raise AssertionError("no %r among %r" % (until, got))


def test_notify_ready_status_watchdog_stopping(etld_factory):
    wd = etldtest.short_tmpdir()
    s, path = notify_socket(wd)
    try:
        d = etld_factory(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}, start=False)
        d.start(wait=False)
        got = drain(s, "READY=1")
        # READY comes only when the socket answers.
        assert d.rpc("ping") == {"pong": True}
        got += drain(s, "WATCHDOG=1", timeout=2)
        t0 = time.monotonic()
        drain(s, "WATCHDOG=1", timeout=2)
        assert time.monotonic() - t0 < 0.5, "watchdog pings should come every ~200 ms"
        got += drain(s, "STATUS=", timeout=2) if not any("STATUS=" in g for g in got) else []
        assert any("STATUS=0 jobs running, 0 queued" in g for g in got), got
        assert d.stop() == 0
        got = drain(s, "STOPPING=1", timeout=2)
    finally:
        s.close()


def test_watchdog_for_another_pid_is_ignored(etld_factory):
    wd = etldtest.short_tmpdir()
    s, path = notify_socket(wd)
    try:
        d = etld_factory(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000",
                              "WATCHDOG_PID": "1"}, start=False)
        d.start(wait=False)
        drain(s, "READY=1")
        time.sleep(0.6)
        got = []
        try:
            while True:
                got.append(s.recv(4096).decode())
        except socket.timeout:
            pass
        assert not any("WATCHDOG=1" in g for g in got), got
    finally:
        s.close()


def test_socket_activation(binaries, small_data):
    wd = etldtest.short_tmpdir()
    path = os.path.join(wd, "activated.sock")
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(path)
    lst.listen(16)
    state = os.path.join(wd, "state")
    os.makedirs(state)
    conf = etldtest.write_conf(os.path.join(wd, "etld.conf"), state, small_data)
    fd = lst.fileno()
    err = open(os.path.join(wd, "stderr"), "wb")
    # LISTEN_PID must be etld's own pid: bash sets it, moves the socket to
    # fd 3 as systemd would, then execs etld in place.
    proc = subprocess.Popen(
        ["/bin/bash", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" --foreground --config "$1" '
         '--socket "$2" --state-dir "$3" 3<&%d %d<&-' % (fd, fd), etldtest.ETLD, conf,
         os.path.join(wd, "unused.sock"), state],
        pass_fds=(fd,), stdout=err, stderr=err)
    lst.close()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with etldtest.Conn(path, timeout=1) as c:
                    assert c.result("ping") == {"pong": True}
                    job = c.result("submit", {"pipeline": "etl",
                                              "settings": settings_for(
                                                  small_data, os.path.join(wd, "wh.db"))})["job"]
                break
            except (OSError, ConnectionError):
                assert time.monotonic() < deadline, open(err.name).read()
                time.sleep(0.05)
        with etldtest.Conn(path) as c:
            for _ in range(600):
                st = c.result("status", {"job": job})
                if st["state"] in etldtest.FINAL:
                    break
                time.sleep(0.05)
        assert_job_succeeded(st)
        assert not os.path.exists(os.path.join(wd, "unused.sock")), \
            "with a passed socket the configured path is not used"
        log = open(err.name).read()
        assert "socket passed from the service manager (fd 3)" in log, log
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        err.close()


def test_sighup_rereads_configuration(etld_factory, small_data, workdir):
    d = etld_factory()
    # A broken file is refused; the daemon keeps running with what it had.
    good = open(d.conf).read()
    with open(d.conf, "a") as f:
        f.write("[daemon]\nno_such_key = 1\n")
    d.proc.send_signal(1)
    deadline = time.monotonic() + 5
    while "reload failed" not in d.stderr_text():
        assert time.monotonic() < deadline, d.stderr_tail()
        time.sleep(0.05)
    assert "no_such_key" in d.stderr_text()
    assert d.rpc("ping") == {"pong": True}
    # A good file is taken: new jobs use the new sql_dir.
    bad_sql = os.path.join(workdir, "no-sql-here")
    with open(d.conf, "w") as f:
        f.write(good.replace("sql_dir = ", "sql_dir = %s\n# was: " % bad_sql))
    d.proc.send_signal(1)
    deadline = time.monotonic() + 5
    while "configuration reloaded" not in d.stderr_text():
        assert time.monotonic() < deadline, d.stderr_tail()
        time.sleep(0.05)
    job = d.submit(settings_for(small_data, os.path.join(workdir, "wh.db")))["job"]
    st = d.wait_job(job)
    assert st["state"] == "failed", st
    assert bad_sql in st["error"], st["error"]


def test_busy_warehouse_is_retried(etld_factory, small_data, workdir):
    wh = os.path.join(workdir, "wh.db")
    con = sqlite3.connect(wh, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("BEGIN IMMEDIATE")  # a writer that does not let go for a while
    d = etld_factory(conf_extra="")
    job = d.submit(settings_for(small_data, wh, **{"daemon.retry_base_ms": "200"}))["job"]
    # SQLite waits 5 s for the lock, then the step fails as transient.
    t = threading.Timer(6.5, lambda: con.execute("ROLLBACK"))
    t.start()
    try:
        st = d.wait_job(job, timeout=60)
    finally:
        t.join()
        con.close()
    assert_job_succeeded(st)
    create = etldtest.step_of(st, "create-tables")
    assert create["attempts"] >= 2, create
    assert any("transient" in e["message"] for e in st["events"]), st["events"]
