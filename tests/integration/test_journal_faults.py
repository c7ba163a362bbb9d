"""test_journal_faults.py - the journal tells the truth under faults.

A job that fails while the disk is full shows `failed` at once (with a note
that its final state is not written yet) and is written when space returns;
a journal that is read-only, not a database, truncated, corrupt, or empty
where one existed stops etld with a message naming the file and what to do;
`etlctl backup FILE` writes a consistent copy while a job runs.

The disk-full and read-only cases mount a small tmpfs or a read-only bind
mount (the suite runs as root); they are skipped when mounting is refused.
"""
import contextlib
import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest

import etldtest
from etldtest import settings_for
from test_copy import SONGS_COPY, EVENTS_COPY, make_data, sql_dir

JSONPATHS = ('{"jsonpaths": [%s]}' % ", ".join(
    '"$[\'%s\']"' % k for k in
    ["artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level",
     "location", "method", "page", "registration", "sessionId", "song", "status", "ts",
     "userAgent", "userId"]))


def mount(*args):
    r = subprocess.run(["mount"] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount (%s): %s" % (" ".join(args), r.stderr.strip()))


def umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True)


class Gate:
    """A FIFO as the JSONPaths file: the load step waits in it until the
    test writes the file's text, so the job is running for as long as the
    test needs."""

    def __init__(self, workdir):
        self.path = os.path.join(workdir, "gate.json")
        os.mkfifo(self.path)
        self.fd = None

    def wait_reader(self, timeout=30):
        """Returns once etld has the FIFO open for reading (it then waits in
        read() for the text): the step is past everything it does before."""
        deadline = time.monotonic() + timeout
        while self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet
                assert time.monotonic() < deadline, "etld never opened the JSONPaths file"
                time.sleep(0.02)
        os.set_blocking(self.fd, True)

    def release(self, text=JSONPATHS, timeout=30):
        self.wait_reader(timeout)
        os.write(self.fd, text.encode())
        os.close(self.fd)
        self.fd = -1

    def release_later(self):
        """For a test that fails before releasing: never leave etld stuck."""
        if self.fd == -1:
            return
        with contextlib.suppress(OSError, AssertionError):
            self.release(timeout=2)


def gated_job(d, workdir, gate, wh="wh.db"):
    data = make_data(os.path.join(workdir, "gated-data"))
    sqld = sql_dir(os.path.join(workdir, "sqlx"), EVENTS_COPY % "" + SONGS_COPY % "")
    job = d.submit(settings_for(data, os.path.join(workdir, wh),
                                **{"daemon.sql_dir": sqld,
                                   "s3.log_jsonpath": "file://" + gate.path}))["job"]
    d.wait_step(job, "load", timeout=30)
    gate.wait_reader()
    return job


def fill(directory):
    """Writes a file into directory until the file system is full."""
    path = os.path.join(directory, "filler")
    with open(path, "wb", buffering=0) as f:
        block = b"\0" * 65536
        try:
            while True:
                f.write(block)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    return path


def test_disk_full_job_shows_failed_and_is_written_later(etld_factory, workdir):
    d = etld_factory(start=False)
    mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", d.state)
    gate = Gate(workdir)
    try:
        d.start()
        job = gated_job(d, workdir, gate)
        filler = fill(d.state)
        gate.release('{"jsonpaths": []}')  # the load step fails: a bad JSONPaths file
        st = d.wait_job(job, timeout=30)
        assert st["state"] == "failed", st
        assert "final state not yet written: disk full" in st.get("unwritten", ""), st
        assert etldtest.step_of(st, "load")["state"] == "failed"
        assert "jsonpaths" in st["error"]
        listed = {j["id"]: j for j in d.rpc("list")["jobs"]}
        assert listed[job]["state"] == "failed"
        r = etldtest.etlctl(d.sock, "status", str(job))
        assert r.returncode == 1, r.stdout + r.stderr
        assert "final state not yet written: disk full" in r.stdout, r.stdout
        with d.conn() as c:  # a watcher gets the end at once
            assert c.result("watch", {"job": job})["state"] == "failed"
            assert c.next_event(timeout=5)["params"]["kind"] == "end"
        assert "not yet written to" in d.stderr_text()

        os.unlink(filler)  # space returns: etld writes what it kept
        deadline = time.monotonic() + 10
        while "unwritten" in d.status(job) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "unwritten" not in d.status(job)
        assert "kept while the journal refused writes" in d.stderr_text()
        assert d.stop() == 0
        d.start()  # the journal itself says failed
        st = d.status(job)
        assert st["state"] == "failed" and "unwritten" not in st, st
        assert etldtest.step_of(st, "load")["state"] == "failed"
        assert d.stop() == 0
    finally:
        gate.release_later()
        d.stop()
        umount(d.state)


def start_refused(d, *extra):
    """Runs etld on d's state dir; returns (exit code, stderr) when it exits."""
    r = subprocess.run([etldtest.ETLD, "--foreground", "--config", d.conf, "--socket", d.sock,
                        "--state-dir", d.state] + list(extra),
                       capture_output=True, text=True, timeout=20, env=d.env)
    return r.returncode, r.stderr


def journal_with_jobs(d, workdir, n=3):
    d.start()
    data = make_data(os.path.join(workdir, "data"))
    sqld = sql_dir(os.path.join(workdir, "sqlj"), EVENTS_COPY % "" + SONGS_COPY % "")
    for i in range(n):
        job = d.submit(settings_for(data, os.path.join(workdir, "w%d.db" % i),
                                    **{"daemon.sql_dir": sqld}))["job"]
        d.wait_job(job)
    assert d.stop() == 0
    return os.path.join(d.state, "journal.db")


def test_faulty_journal_stops_etld_saying_what_it_is(etld_factory, workdir):
    d = etld_factory(start=False)
    path = journal_with_jobs(d, workdir)
    good = open(path, "rb").read()
    assert len(good) >= 8 * 4096
    assert os.path.exists(path + ".created")

    def refused(want):
        code, err = start_refused(d)
        assert code == 1, err
        assert want in err and path in err, err
        assert "another etld" not in err, err
        return err

    with open(path, "wb") as f:  # not a database
        f.write(b"#!/bin/sh\necho this is a script that took the journal's place\n" * 4)
    refused("is not a SQLite database")
    with open(path, "wb") as f:  # truncated by a copy
        f.write(good[:len(good) // 2 + 1000])
    refused("is truncated")
    bad = bytearray(good)  # corrupt: garbage over every other page after the schema
    for at in range(2 * 4096, len(bad) - 4096, 2 * 4096):
        bad[at:at + 4096] = b"\x5a" * 4096
    with open(path, "wb") as f:
        f.write(bad)
    err = refused("is corrupt")
    assert "quick_check" in err or "malformed" in err, err
    with open(path, "wb"):  # emptied where one existed
        pass
    err = refused("is empty (0 bytes), but this state directory had a journal")
    assert "--new-journal" in err and "etlctl backup" in err
    os.unlink(path)
    refused("is missing, but this state directory had one")

    # --new-journal: an empty job list, on purpose
    d.proc = subprocess.Popen([etldtest.ETLD, "--foreground", "--config", d.conf, "--socket",
                               d.sock, "--state-dir", d.state, "--new-journal"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(d.stderr_path, "ab"), env=d.env)
    d.wait_ready()
    assert d.rpc("list")["jobs"] == []
    assert d.stop() == 0
    # the good journal back in place: its jobs are there again
    with open(path, "wb") as f:
        f.write(good)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + suffix)
    d.start()
    assert len(d.rpc("list")["jobs"]) == 3


def test_read_only_journal(etld_factory, workdir):
    d = etld_factory(start=False)
    path = journal_with_jobs(d, workdir, n=1)
    mount("--bind", path, path)
    try:
        mount("-o", "remount,ro,bind", path)
        code, err = start_refused(d)
        assert code == 1, err
        assert "is read-only" in err and path in err and "write access" in err, err
    finally:
        umount(path)
    d.start()
    assert len(d.rpc("list")["jobs"]) == 1


def test_backup_while_a_job_runs(etld, workdir):
    gate = Gate(workdir)
    try:
        data = make_data(os.path.join(workdir, "data"))
        sqld = sql_dir(os.path.join(workdir, "sqlb"), EVENTS_COPY % "" + SONGS_COPY % "")
        done = etld.submit(settings_for(data, os.path.join(workdir, "w0.db"),
                                        **{"daemon.sql_dir": sqld}))["job"]
        etld.wait_job(done)
        job = gated_job(etld, workdir, gate)
        # while it runs, pings are answered and the backup is written
        out = os.path.join(workdir, "copy.db")
        answered = []
        stop = threading.Event()

        def ping():
            while not stop.is_set():
                answered.append(etld.rpc("ping"))

        t = threading.Thread(target=ping)
        t.start()
        r = etldtest.etlctl(etld.sock, "backup", out)
        stop.set()
        t.join()
        assert r.returncode == 0, r.stdout + r.stderr
        assert out in r.stdout
        assert answered
        assert etld.status(job)["state"] == "running"
        db = sqlite3.connect(out)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        states = dict(db.execute("SELECT id, state FROM jobs").fetchall())
        db.close()
        assert states == {done: "succeeded", job: "running"}, states
        assert not os.path.exists(out + "-wal")
        # a backup never overwrites; relative paths are the caller's
        r = etldtest.etlctl(etld.sock, "backup", out)
        assert r.returncode == 4 and "never overwrites" in r.stderr, r.stdout + r.stderr
        r = subprocess.run([etldtest.ETLCTL, "--socket", etld.sock, "--json", "backup",
                            "rel.db"], cwd=workdir, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["file"] == os.path.join(workdir, "rel.db")
        gate.release()
        assert etld.wait_job(job)["state"] == "succeeded"
    finally:
        gate.release_later()


def test_backup_refused_to_other_users(etld, workdir):
    """Only root and etld's uid: the copy is written with etld's rights."""
    os.chmod(etld.workdir, 0o755)  # let uid 65534 reach the socket
    os.chmod(etld.sock, 0o666)
    r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                        "/usr/bin/python3", "-c",
                        "import socket,json,sys; s=socket.socket(socket.AF_UNIX);"
                        "s.connect(sys.argv[1]); s.sendall(b'%s\\n');"
                        "print(s.makefile().readline())" % json.dumps(
                            {"jsonrpc": "2.0", "id": 1, "method": "backup",
                             "params": {"file": "/tmp/etld-backup-by-nobody.db"}}).replace(
                                 "\"", "\\\""), etld.sock],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0 and "Permission denied" in r.stderr:
        pytest.skip("uid 65534 cannot reach the socket: %s" % r.stderr.strip())
    assert r.returncode == 0, r.stderr
    reply = json.loads(r.stdout)
    assert reply["error"]["code"] == -32004, reply
    assert "uid 65534" in reply["error"]["message"]
    assert not os.path.exists("/tmp/etld-backup-by-nobody.db")
