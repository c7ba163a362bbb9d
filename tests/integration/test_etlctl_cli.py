"""etlctl against a fake etld.

These tests do not need the real daemon: each starts a tiny JSON-RPC server on
a Unix socket in a temporary directory, answering canned replies and
recording every request, then runs the real etlctl binary against it and
checks the requests it sent, what it printed and its exit status.

The binary is $ETLD_BUILD/client/etlctl (ETLD_BUILD defaults to
/work/main/build-cli).  Run: /usr/bin/python3 -m pytest -q tests/integration/test_etlctl_cli.py
"""
import json
import os
import pty
import re
import select
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

import pytest

BUILD = os.environ.get("ETLD_BUILD", "/work/main/build-cli")
ETLCTL = os.path.join(BUILD, "client", "etlctl")

CLOSE = object()  # a reply item: hang up instead of answering

NO_DAEMON = ("etlctl: no etld answers on {} (is etld running? start it with "
             "'systemctl start etld' or 'etld --foreground')")


def result(req, res):
    return {"jsonrpc": "2.0", "id": req["id"], "result": res}


def error(req, code, message):
    return {"jsonrpc": "2.0", "id": req["id"], "error": {"code": code, "message": message}}


def event(job, kind, **params):
    return {"jsonrpc": "2.0", "method": "event", "params": dict(job=job, kind=kind, **params)}


class FakeEtld:
    """A JSON-RPC server on a Unix socket that answers from a table.

    replies[method] is a callable taking the request and returning a list (or
    a generator) of items to send: a dict (sent as one compact JSON line), a str (sent as is)
    or CLOSE.  A method not in the table gets a -32601 error."""

    def __init__(self, path):
        self.path = path
        self.requests = []
        self.connections = 0
        self.replies = {
            "ping": lambda req: [result(req, {"pong": True})],
            "version": lambda req: [result(req, {"version": "0.1.0", "protocol": 1})],
        }
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                fake.connections += 1
                for raw in self.rfile:
                    req = json.loads(raw)
                    fake.requests.append(req)
                    fn = fake.replies.get(req["method"])
                    items = fn(req) if fn else [error(req, -32601, "unknown method '%s'" % req["method"])]
                    for item in items:
                        if item is CLOSE:
                            return
                        line = item if isinstance(item, str) else json.dumps(item, separators=(",", ":")) + "\n"
                        self.wfile.write(line.encode())
                        self.wfile.flush()

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def on(self, method, *items):
        """Answers method with result(items[0]) followed by the other items."""
        def reply(req):
            out = []
            for i, item in enumerate(items):
                if i == 0 and isinstance(item, dict) and "jsonrpc" not in item:
                    out.append(result(req, item))
                elif callable(item):
                    out.append(item(req))
                else:
                    out.append(item)
            return out
        self.replies[method] = reply

    def methods(self):
        return [r["method"] for r in self.requests]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sockdir():
    # Short path: sun_path holds at most 107 bytes, pytest's tmp_path can be longer.
    d = tempfile.mkdtemp(prefix="etlctl-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def etld(sockdir):
    fake = FakeEtld(os.path.join(sockdir, "etld.sock"))
    yield fake
    fake.stop()


def run(*args, sock=None, env=None, timeout=10):
    e = dict(os.environ)
    e.pop("ETLD_SOCKET", None)
    e["LC_ALL"] = "C.UTF-8"
    if env:
        e.update(env)
    cmd = [ETLCTL] + (["--socket", sock] if sock else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e)


def ctl(etld, *args, **kw):
    return run(*args, sock=etld.path, **kw)


def test_binary_exists():
    assert os.access(ETLCTL, os.X_OK), "build etlctl first: meson compile -C " + BUILD


# ---- help and usage ---------------------------------------------------------------

COMMANDS = ["submit", "status", "list", "watch", "cancel", "retry", "errors", "logs", "metrics",
            "ping", "version"]


def test_help_lists_commands_and_exit_codes():
    p = run("--help")
    assert p.returncode == 0
    for c in COMMANDS:
        assert re.search(r"^  %s\b" % c, p.stdout, re.M), c
    for code in range(6):
        assert re.search(r"^  %d  " % code, p.stdout, re.M), code
    assert "--socket" in p.stdout and "--json" in p.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command):
    p = run(command, "--help")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Usage: etlctl " + command)
    assert run("help", command).stdout == p.stdout


def help_options(text):
    """(option, takes a value?) for each option line of a --help text."""
    return {(m.group(1), bool(m.group(2)))
            for m in re.finditer(r"^  (?:-\w, )?(--[a-z]+)( [A-Z][A-Z.=]*)?", text, re.M)}


def test_every_option_in_help_is_accepted(sockdir):
    """Each option a command's help lists parses (the run gets as far as connecting)."""
    missing = os.path.join(sockdir, "nobody.sock")
    ini = os.path.join(sockdir, "c.ini")
    with open(ini, "w") as f:
        f.write("[load]\nbatch_rows = 10\n")
    values = {"--config": ini, "--set": "load.concurrency=4", "--socket": missing,
              "--limit": "3", "--key": "k1", "--pipeline": "etl", "--state": "failed",
              "--since": "2026-12-01", "--step": "load"}
    positional = {"submit": ["etl"], "watch": ["1"], "cancel": ["1"], "errors": ["1"],
                  "status": ["1"], "retry": ["1"], "logs": ["1"]}
    checked = 0
    for command in COMMANDS:
        options = help_options(run(command, "--help").stdout)
        assert ("--json", False) in options and ("--socket", True) in options
        for name, takes_value in options:
            if name == "--help":
                continue
            extra = [values[name]] if takes_value else []
            p = run(command, *positional.get(command, []), name, *extra, "--socket", missing)
            assert p.returncode == 3, (command, name, p.stderr)
            checked += 1
    for name, takes_value in help_options(run("--help").stdout):
        if name == "--version":  # like --help, it answers without etld
            p = run(name, "--socket", missing, "ping")
            assert p.returncode == 0 and re.fullmatch(r"etlctl \d+\.\d+\.\d+\n", p.stdout), p
        elif name != "--help":
            p = run(name, *([values[name]] if takes_value else []), "--socket", missing, "ping")
            assert p.returncode == 3, (name, p.stderr)
    assert checked >= 9 * 3 + 4 + 2 + 1


@pytest.mark.parametrize("args, needle", [
    ([], "missing COMMAND"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["--frob", "ping"], "--frob"),
    (["ping", "--frob"], "--frob"),
    (["ping", "extra"], "unexpected argument 'extra'"),
    (["status", "abc"], "JOB must be a positive whole number, not 'abc'"),
    (["status", "0"], "not '0'"),
    (["status", "1", "2"], "unexpected argument '2'"),
    (["watch"], "missing JOB"),
    (["cancel", "12x"], "not '12x'"),
    (["retry"], "missing JOB"),
    (["retry", "x3"], "not 'x3'"),
    (["retry", "3", "4"], "unexpected argument '4'"),
    (["errors", "3", "--limit", "many"], "--limit must be a positive whole number, not 'many'"),
    (["list", "--limit", "0"], "--limit"),
    (["list", "--limit"], "--limit"),
    (["submit"], "missing PIPELINE"),
    (["submit", "etl", "more"], "unexpected argument 'more'"),
    (["submit", "etl", "--set", "nosuch.key=1"], "unknown key 'nosuch.key'"),
    (["submit", "etl", "--set", "cluster.nodes=four"], "cluster.nodes"),
    (["submit", "etl", "--set", "novalue"], "section.key=value"),
    (["submit", "etl", "--config", "/nonexistent/etld.conf"], "/nonexistent/etld.conf"),
    (["help", "frobnicate"], "unknown command 'frobnicate'"),
])
def test_usage_errors_exit_2_before_sending(etld, args, needle):
    p = ctl(etld, *args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert needle in p.stderr
    assert etld.requests == []


def test_config_file_error_names_file_and_line(etld, sockdir):
    ini = os.path.join(sockdir, "bad.ini")
    with open(ini, "w") as f:
        f.write("[load]\nconcurrency = 4\nconcurency = 8\n")
    p = ctl(etld, "submit", "etl", "--config", ini)
    assert p.returncode == 2
    assert "%s:3" % ini in p.stderr and "load.concurency" in p.stderr
    assert etld.requests == []


# ---- connecting -----------------------------------------------------------------------

def test_no_daemon_exit_3(sockdir):
    path = os.path.join(sockdir, "none.sock")
    p = run("ping", sock=path)
    assert p.returncode == 3
    assert p.stderr.strip() == NO_DAEMON.format(path)


def test_refused_exit_3(sockdir):
    path = os.path.join(sockdir, "dead.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)  # bound, never listening: ECONNREFUSED
    try:
        p = run("status", sock=path)
        assert p.returncode == 3
        assert p.stderr.strip() == NO_DAEMON.format(path)
    finally:
        s.close()


def test_socket_from_environment(etld):
    p = run("ping", env={"ETLD_SOCKET": etld.path})
    assert p.returncode == 0, p.stderr
    assert "pong" in p.stdout
    # --socket wins over the environment, and works after the command too
    p = run("ping", "--socket", etld.path, env={"ETLD_SOCKET": "/nonexistent/x.sock"})
    assert p.returncode == 0, p.stderr


def test_default_socket_named(sockdir):
    p = run("ping")
    if p.returncode == 3:
        assert "/run/etld/etld.sock" in p.stderr


def test_daemon_closes_before_reply_exit_3(etld):
    etld.replies["status"] = lambda req: [CLOSE]
    p = ctl(etld, "status", "4")
    assert p.returncode == 3
    assert "etld closed the connection" in p.stderr


def test_garbage_reply_exit_4(etld):
    etld.replies["ping"] = lambda req: ["this is not json\n"]
    p = ctl(etld, "ping")
    assert p.returncode == 4
    assert p.stderr.startswith("etlctl: ")


# ---- ping and version ---------------------------------------------------------------------

def test_ping_request_shape(etld):
    p = ctl(etld, "ping")
    assert p.returncode == 0, p.stderr
    assert "pong" in p.stdout
    [req] = etld.requests
    assert req["jsonrpc"] == "2.0" and req["method"] == "ping" and isinstance(req["id"], int)


def test_version(etld):
    p = ctl(etld, "version")
    assert p.returncode == 0
    assert "etlctl 0.1.0" in p.stdout and "etld 0.1.0 (protocol 1)" in p.stdout
    p = ctl(etld, "--json", "version")
    assert json.loads(p.stdout) == {"version": "0.1.0", "protocol": 1, "etlctl": "0.1.0"}
    etld.on("version", {"version": "0.2.0", "protocol": 1,
                        "pipelines": [{"name": "etl", "description": "x"},
                                      {"name": "stage", "description": "y"}]})
    p = ctl(etld, "version")
    assert p.stdout.splitlines() == ["etlctl 0.1.0", "etld 0.2.0 (protocol 1)",
                                     "pipelines: etl, stage"], p.stdout


def test_version_without_etld(sockdir):
    """etlctl's version needs no daemon: --version never connects, and the
    version command prints etlctl's line before it finds nobody answering."""
    missing = os.path.join(sockdir, "nobody.sock")
    for args in (["--version"], ["-V"], ["--socket", missing, "--version", "status"]):
        p = subprocess.run([ETLCTL] + args, capture_output=True, text=True, timeout=10)
        assert p.returncode == 0 and p.stdout == "etlctl 0.1.0\n" and p.stderr == "", (args, p)
    p = subprocess.run([ETLCTL, "--socket", missing, "version"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 3, p
    assert p.stdout == "etlctl 0.1.0\n"
    assert p.stderr.strip() == NO_DAEMON.format(missing)


PIPELINES = {"version": "0.1.0", "protocol": 1,
             "pipelines": [{"name": n, "description": n} for n in
                           ("etl", "stage", "provision", "teardown")]}


def test_submit_unknown_pipeline_is_a_usage_error(etld):
    etld.on("version", PIPELINES)
    etld.on("submit", {"job": 3, "existing": False, "state": "queued"})
    p = ctl(etld, "submit", "etll", "--set", "load.concurrency=2")
    assert p.returncode == 2, p
    assert p.stderr.splitlines() == [
        "etlctl submit: unknown pipeline 'etll' (etld runs: etl, stage, provision, teardown)",
        "Try 'etlctl submit --help' for more information."], p.stderr
    assert etld.methods() == ["version"], "nothing may be submitted"
    p = ctl(etld, "submit", "teardown")
    assert p.returncode == 0 and p.stdout == "job 3 queued\n", p
    assert etld.methods() == ["version", "version", "submit"]


def test_submit_misspelled_key_names_the_nearest(etld):
    p = ctl(etld, "submit", "etl", "--set", "load.concurency=2")
    assert p.returncode == 2, p
    assert p.stderr.strip() == ("etlctl: --set: unknown key 'load.concurency' "
                                "(did you mean 'load.concurrency'?)")
    assert etld.requests == []


@pytest.mark.parametrize("state", ["succeeded", "failed", "cancelled"])
def test_cancel_of_an_ended_job_is_a_note(etld, state):
    msg = "job 12 has already ended (%s)" % state
    etld.replies["cancel"] = lambda req: [{"jsonrpc": "2.0", "id": req["id"], "error": {
        "code": -32002, "message": msg, "data": {"state": state}}}]
    p = ctl(etld, "cancel", "12")
    assert p.returncode == 0, p
    assert p.stdout == "job 12 had already ended (%s); nothing to cancel\n" % state
    assert p.stderr == ""
    p = ctl(etld, "--json", "cancel", "12")
    assert p.returncode == 0, p
    assert json.loads(p.stdout) == {"job": 12, "state": state, "ended_before": True}
    # no such job stays an error; so does a refusal without the job's state
    etld.replies["cancel"] = lambda req: [error(req, -32001, "no job 12")]
    p = ctl(etld, "cancel", "12")
    assert p.returncode == 4 and p.stderr.strip() == "etlctl: no job 12" and p.stdout == "", p


def test_replies_skip_notifications_and_stray_ids(etld):
    def reply(req):
        return [event(3, "log", message="hello"),
                {"jsonrpc": "2.0", "id": 999, "result": {}},
                result(req, {"pong": True})]
    etld.replies["ping"] = reply
    p = ctl(etld, "ping")
    assert p.returncode == 0, p.stderr


def test_long_reply_line(etld):
    big = "x" * (3 * 1024 * 1024)
    etld.on("list", {"jobs": [{"id": 1, "pipeline": "etl", "state": "failed",
                               "created_at": "2024-05-01T03:00:00Z", "finished_at": None,
                               "error": big}]})
    p = ctl(etld, "--json", "list")
    assert p.returncode == 0, p.stderr[:500]
    assert json.loads(p.stdout)["jobs"][0]["error"] == big


# ---- RPC errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("code, message", [
    (-32001, "no such job 99"), (-32002, "job 99 already finished"),
    (-32003, "etld is shutting down"), (-32602, "invalid params: job"),
])
def test_rpc_error_exit_4(etld, code, message):
    etld.replies["cancel"] = lambda req: [error(req, code, message)]
    p = ctl(etld, "cancel", "99")
    assert p.returncode == 4
    assert p.stderr.strip() == "etlctl: " + message
    assert p.stdout == ""


# ---- submit -------------------------------------------------------------------------------

def test_submit_sends_config_sets_and_key(etld, sockdir):
    ini = os.path.join(sockdir, "job.ini")
    with open(ini, "w") as f:
        f.write("[warehouse]\ntarget = sqlite:///tmp/a.db\n[load]\nconcurrency = 4\n")
    etld.on("submit", {"job": 17, "existing": False, "state": "queued"})
    p = ctl(etld, "submit", "etl", "--config", ini, "--set", "load.concurrency=16",
            "--set", "s3.song_data=file:///data/song_data", "--key", "nightly-1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "job 17 queued"
    # the pipeline is checked against the version reply first, on the same connection
    version, req = etld.requests
    assert version["method"] == "version" and etld.connections == 1
    assert req["method"] == "submit"
    assert req["params"] == {
        "pipeline": "etl",
        "settings": {"warehouse.target": "sqlite:///tmp/a.db", "load.concurrency": "16",
                     "s3.song_data": "file:///data/song_data"},
        "key": "nightly-1",
    }


def test_submit_minimal_and_json(etld):
    etld.on("submit", {"job": 5, "existing": True, "state": "running"})
    p = ctl(etld, "submit", "provision", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"job": 5, "existing": True, "state": "running"}
    assert etld.requests[1]["params"] == {"pipeline": "provision", "settings": {}}
    p = ctl(etld, "submit", "etl", "--key", "k")
    assert "job 5 running" in p.stdout and "already" in p.stdout


@pytest.mark.parametrize("final, code", [("succeeded", 0), ("failed", 1), ("cancelled", 1)])
def test_submit_wait(etld, final, code):
    etld.on("submit", {"job": 8, "existing": False, "state": "queued"})
    etld.on("watch", {"job": 8, "state": "queued"},
            event(8, "step", step="load", state="running"),
            event(8, "progress", step="load", progress={"objects": 2, "bytes": 2048, "rows": 40}),
            event(8, "step", step="load", state="done"),
            event(8, "end", state=final, message="boom" if final == "failed" else None))
    p = ctl(etld, "submit", "etl", "--wait")
    assert p.returncode == code, p.stderr
    assert etld.methods() == ["version", "submit", "watch"]
    assert etld.connections == 1
    assert etld.requests[2]["params"] == {"job": 8}
    assert "job 8 queued" in p.stdout
    assert ("job 8 %s" % final) in p.stdout


# ---- status -------------------------------------------------------------------------------

JOB = {
    "id": 17, "pipeline": "etl", "state": "failed",
    "created_at": "2024-05-01T03:00:00Z", "started_at": "2024-05-01T03:00:01Z",
    "finished_at": "2024-05-01T03:05:12Z", "uid": 1000, "key": "nightly-2024-05-01",
    "error": "load: 12 records rejected (MAXERROR 0)",
    "steps": [
        {"name": "create-tables", "state": "done", "attempts": 1,
         "started_at": "2024-05-01T03:00:01Z", "finished_at": "2024-05-01T03:00:02Z",
         "error": None, "progress": None, "outputs": {}},
        {"name": "load", "state": "failed", "attempts": 3,
         "started_at": "2024-05-01T03:00:02Z", "finished_at": "2024-05-01T03:05:12Z",
         "error": "COPY staging_events: 12 records rejected\nsee errors",
         "progress": {"objects": 10, "bytes": 123456, "rows": 456},
         "outputs": {"rows_loaded": 456}},
        {"name": "transform", "state": "pending", "attempts": 0, "started_at": None,
         "finished_at": None, "error": None, "progress": None, "outputs": {}},
    ],
    "checks": [{"name": "songplays non-empty", "ok": True, "detail": "6820 rows"},
               {"name": "users unique", "ok": False, "detail": "3 duplicates"}],
    "config": {"warehouse.target": "sqlite:///var/lib/etld/warehouse.db"},
}


def test_status_job_human(etld):
    etld.on("status", JOB)
    p = ctl(etld, "status", "17")
    assert p.returncode == 1, p.stderr
    assert etld.requests[0]["params"] == {"job": 17}
    out = p.stdout
    assert out.startswith("job 17 (etl): failed")
    assert "2024-05-01T03:00:00Z" in out and "took 5m11s" in out
    assert "uid 1000" in out and "nightly-2024-05-01" in out
    assert "12 records rejected (MAXERROR 0)" in out
    assert "etlctl errors 17" in out  # what to do next
    assert re.search(r"load\s+failed\s+3\s+5m10s\s+10 objects, 456 rows, 120.6 KiB", out)
    assert re.search(r"transform\s+pending", out)
    assert "✓ songplays non-empty: 6820 rows" in out
    assert "✗ users unique: 3 duplicates" in out
    assert "load.rows_loaded = 456" in out
    assert "warehouse.target = sqlite:///var/lib/etld/warehouse.db" in out
    assert "rejected records\nsee" not in out  # control characters never reach the terminal


def test_status_checks_ascii_marks(etld):
    etld.on("status", JOB)
    p = ctl(etld, "status", "17", env={"LC_ALL": "C"})
    assert "ok   songplays non-empty" in p.stdout
    assert "FAIL users unique" in p.stdout


@pytest.mark.parametrize("state, code", [("succeeded", 0), ("failed", 1), ("cancelled", 1),
                                         ("running", 5), ("queued", 5)])
def test_status_exit_codes(etld, state, code):
    job = dict(JOB, state=state, error=None)
    if state in ("running", "queued"):
        job["finished_at"] = None
    if state == "queued":
        job["started_at"] = None
    etld.on("status", job)
    p = ctl(etld, "status", "17")
    assert p.returncode == code
    assert p.stdout.startswith("job 17 (etl): " + state)
    p = ctl(etld, "status", "17", "--json")
    assert p.returncode == code
    assert json.loads(p.stdout)["state"] == state


def test_status_summary(etld):
    etld.on("status", {"version": "0.1.0", "pid": 4242, "uptime_s": 90061, "running": 1,
                       "queued": 1, "jobs": [
                           {"id": 18, "pipeline": "etl", "state": "running",
                            "created_at": "2024-05-02T03:00:00Z",
                            "started_at": "2024-05-02T03:00:01Z"},
                           {"id": 19, "pipeline": "teardown", "state": "queued",
                            "created_at": "2024-05-02T03:01:00Z", "started_at": None}]})
    p = ctl(etld, "status")
    assert p.returncode == 0, p.stderr
    assert etld.requests[0]["params"] == {}
    assert "etld 0.1.0, pid 4242, up 1d01h" in p.stdout
    assert "1 running, 1 queued" in p.stdout
    assert re.search(r"^18\s+etl\s+running\s+2024-05-02T03:00:00Z", p.stdout, re.M)
    assert re.search(r"^19\s+teardown\s+queued", p.stdout, re.M)


# ---- list, cancel, errors -----------------------------------------------------------------

LIST = {"jobs": [
    {"id": 3, "pipeline": "etl", "state": "failed", "created_at": "2024-05-03T03:00:00Z",
     "finished_at": "2024-05-03T03:10:00Z", "error": "load: " + "very long reason " * 20,
     "retry_of": 2, "key": "nightly-2024-05-03", "duration_s": 595.5},
    {"id": 2, "pipeline": "provision", "state": "succeeded", "created_at": "2024-05-02T03:00:00Z",
     "finished_at": "2024-05-02T03:20:00Z", "error": None, "retry_of": None, "key": None,
     "duration_s": None},
]}


def test_list_table(etld):
    etld.on("list", LIST)
    p = ctl(etld, "list")
    assert p.returncode == 0, p.stderr
    assert etld.requests[0]["params"] == {"limit": 50}
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["ID", "PIPELINE", "STATE", "KEY", "CREATED", "FINISHED",
                                "DURATION", "RETRY_OF", "ERROR"]
    assert re.match(r"3\s+etl\s+failed\s+nightly-2024-05-03\s+2024-05-03T03:00:00Z\s+"
                    r"2024-05-03T03:10:00Z\s+9m55s\s+2\s+load: very", lines[1]), lines[1]
    assert len(lines[1]) < 200 and lines[1].endswith("…")  # error cut
    assert re.match(r"2\s+provision\s+succeeded\s+-\s+\S+\s+\S+\s+-\s+-\s+-$", lines[2]), lines[2]


def test_list_limit_and_json(etld):
    etld.on("list", LIST)
    p = ctl(etld, "list", "--limit", "2", "--json")
    assert p.returncode == 0
    assert etld.requests[0]["params"] == {"limit": 2}
    assert json.loads(p.stdout) == LIST


def test_list_filters_sent(etld):
    etld.on("list", LIST)
    p = ctl(etld, "list", "--pipeline", "etl", "--state", "failed", "--key", "k", "--since",
            "2024-05-01T03:00:00Z")
    assert p.returncode == 0, p.stderr
    assert etld.requests[0]["params"] == {"limit": 50, "pipeline": "etl", "state": "failed",
                                          "key": "k", "since": 1714532400000}
    before = time.time() * 1000
    p = ctl(etld, "list", "--since", "36h")
    since = etld.requests[1]["params"]["since"]
    assert abs(since - (before - 36 * 3600 * 1000)) < 60000, since


def test_list_empty(etld):
    etld.on("list", {"jobs": []})
    p = ctl(etld, "list")
    assert p.returncode == 0 and p.stdout.strip() == "no jobs"


@pytest.mark.parametrize("state", ["cancelled", "cancelling"])
def test_cancel(etld, state):
    etld.on("cancel", {"job": 17, "state": state})
    p = ctl(etld, "cancel", "17")
    assert p.returncode == 0, p.stderr
    assert etld.requests[0]["params"] == {"job": 17}
    assert p.stdout.startswith("job 17 " + state)


def test_submit_key_new_attempt(etld):
    etld.on("submit", {"job": 9, "existing": False, "state": "queued", "retry_of": 7})
    p = ctl(etld, "submit", "etl", "--key", "nightly-2024-05-01")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("job 9 queued: a new attempt of job 7, which failed or was cancelled, "
                        "under key 'nightly-2024-05-01'\n")


@pytest.mark.parametrize("final, code", [(None, 0), ("succeeded", 0), ("failed", 1)])
def test_retry(etld, final, code):
    etld.on("retry", {"job": 18, "existing": False, "state": "queued", "retry_of": 17})
    etld.on("watch", {"job": 18, "state": "queued"}, event(18, "end", state=final or "failed"))
    args = ["retry", "17"] + (["--wait"] if final else [])
    p = ctl(etld, *args)
    assert p.returncode == code, p.stderr
    assert etld.requests[0]["method"] == "retry" and etld.requests[0]["params"] == {"job": 17}
    assert p.stdout.splitlines()[0] == "job 18 queued: a retry of job 17"
    assert etld.methods() == (["retry", "watch"] if final else ["retry"])
    if final:
        assert etld.requests[1]["params"] == {"job": 18} and etld.connections == 1
    p = ctl(etld, "retry", "17", "--json")
    assert json.loads(p.stdout) == {"job": 18, "existing": False, "state": "queued",
                                    "retry_of": 17}


def test_retry_refused(etld):
    msg = "job 17 is running: only a failed or cancelled job can be retried"
    etld.replies["retry"] = lambda req: [error(req, -32002, msg)]
    p = ctl(etld, "retry", "17")
    assert p.returncode == 4 and p.stderr.strip() == "etlctl: " + msg and p.stdout == ""


def test_status_links_attempts(etld):
    etld.on("status", dict(JOB, retry_of=12, retried_by=21))
    p = ctl(etld, "status", "17")
    assert re.search(r"^  retry of +job 12$", p.stdout, re.M), p.stdout
    assert re.search(r"^  retried +as job 21$", p.stdout, re.M), p.stdout
    assert "etlctl status 21" in p.stdout and "etlctl retry" not in p.stdout, p.stdout
    etld.on("status", dict(JOB, retry_of=None, retried_by=None))
    p = ctl(etld, "status", "17")
    assert "retry of" not in p.stdout and "etlctl retry 17" in p.stdout, p.stdout


ERRORS = {"errors": [
    {"step": "load", "filename": "s3://udacity-dend/log_data/2018/11/2018-11-01-events.json",
     "line_number": 7, "colname": "ts", "type": "int8", "position": 12,
     "raw_line": '{"ts": "yesterday"}', "raw_field_value": "yesterday", "err_code": 1207,
     "err_reason": "Invalid digit, Value 'y', Pos 0, Type: Long"},
]}


def test_errors_table_and_json(etld):
    etld.on("errors", ERRORS)
    p = ctl(etld, "errors", "17", "--limit", "5")
    assert p.returncode == 0, p.stderr
    assert etld.requests[0]["params"] == {"job": 17, "limit": 5}
    head, row = p.stdout.splitlines()
    assert head.split() == ["STEP", "FILE", "LINE", "COLUMN", "TYPE", "POS", "CODE", "REASON", "VALUE"]
    assert re.match(r"load\s+s3://udacity-dend/log_data/\S+\s+7\s+ts\s+int8\s+12\s+1207\s+Invalid digit", row)
    assert row.endswith("yesterday")
    p = ctl(etld, "--json", "errors", "17")
    assert etld.requests[1]["params"] == {"job": 17, "limit": 100}
    assert json.loads(p.stdout) == ERRORS


def test_errors_none(etld):
    etld.on("errors", {"errors": []})
    p = ctl(etld, "errors", "1")
    assert p.returncode == 0 and "no load errors" in p.stdout


# ---- watch --------------------------------------------------------------------------------

def watch_events(job, final):
    return [event(job, "step", step="load", state="running"),
            event(job + 1, "step", step="other", state="running"),  # another job: ignored
            event(job, "progress", step="load", progress={"objects": 3, "bytes": 3 * 1024 * 1024, "rows": 99}),
            event(job, "log", step="load", message="COPY staging_songs done"),
            event(job, "step", step="load", state="done"),
            event(job, "end", state=final)]


@pytest.mark.parametrize("final, code", [("succeeded", 0), ("failed", 1), ("cancelled", 1)])
def test_watch_pipe(etld, final, code):
    etld.on("watch", {"job": 17, "state": "running"}, *watch_events(17, final))
    p = ctl(etld, "watch", "17")
    assert p.returncode == code, p.stderr
    assert etld.requests[0]["params"] == {"job": 17}
    lines = p.stdout.splitlines()
    stamp = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "  # UTC, as status prints
    assert all(re.match(stamp, line) for line in lines), lines
    text = "\n".join(re.sub(stamp, "", line) for line in lines)
    assert "load running" in text
    assert "load progress: 3 objects, 99 rows, 3.0 MiB" in text
    assert "load: COPY staging_songs done" in text
    assert "other" not in text
    assert text.splitlines()[-1] == "job 17 " + final
    assert "\r" not in p.stdout


def test_watch_json_lines(etld):
    etld.on("watch", {"job": 17, "state": "running"}, *watch_events(17, "succeeded"))
    p = ctl(etld, "watch", "17", "--json")
    assert p.returncode == 0
    objs = [json.loads(line) for line in p.stdout.splitlines()]
    assert objs[0] == {"job": 17, "state": "running"}
    assert [o["kind"] for o in objs[1:]] == ["step", "progress", "log", "step", "end"]


def test_watch_finished_job_returns_at_once(etld):
    etld.on("watch", {"job": 4, "state": "failed"})
    p = ctl(etld, "watch", "4")
    assert p.returncode == 1
    assert "job 4 already failed" in p.stdout


def test_watch_keeps_connection_after_end(etld):
    """The daemon keeps the connection open after "end": etlctl must not wait for EOF."""
    def reply(req):  # a generator: items are sent as they are produced
        yield result(req, {"job": 5, "state": "queued"})
        yield event(5, "end", state="succeeded")
        time.sleep(30)
    etld.replies["watch"] = reply
    t0 = time.monotonic()
    p = ctl(etld, "watch", "5")
    assert p.returncode == 0
    assert time.monotonic() - t0 < 5


def test_watch_daemon_hangs_up_exit_3(etld):
    etld.on("watch", {"job": 5, "state": "running"}, event(5, "step", step="load", state="running"), CLOSE)
    p = ctl(etld, "watch", "5")
    assert p.returncode == 3
    assert "etld closed the connection" in p.stderr


def test_watch_no_such_job_exit_4(etld):
    etld.replies["watch"] = lambda req: [error(req, -32001, "no such job 77")]
    p = ctl(etld, "watch", "77")
    assert p.returncode == 4 and p.stderr.strip() == "etlctl: no such job 77"


def test_watch_tty_redraws_one_line(etld):
    etld.on("watch", {"job": 17, "state": "running"}, *watch_events(17, "succeeded"))
    master, slave = pty.openpty()
    env = dict(os.environ, LC_ALL="C.UTF-8")
    env.pop("ETLD_SOCKET", None)
    proc = subprocess.Popen([ETLCTL, "--socket", etld.path, "watch", "17"], stdout=slave,
                            stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    assert proc.wait(timeout=10) == 0
    os.close(master)
    text = out.decode()
    assert "\r" in text
    assert "load running  3 objects, 99 rows, 3.0 MiB" in text
    assert "job 17 succeeded" in text
    assert not re.search(r"^\d{4}-\d\d-\d\dT", text, re.M)


def _pty_run(args, timeout=10, interrupt_when=None):
    """Runs etlctl on a pseudo-terminal; returns (exit status, output, stderr).
    interrupt_when: a text whose appearance makes the test send SIGINT."""
    master, slave = pty.openpty()
    env = dict(os.environ, LC_ALL="C.UTF-8")
    env.pop("ETLD_SOCKET", None)
    proc = subprocess.Popen([ETLCTL] + args, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if interrupt_when and not sent and interrupt_when in out.decode(errors="replace"):
                proc.send_signal(2)
                sent = True
        elif proc.poll() is not None:
            break
    rc = proc.wait(timeout=10)
    os.close(master)
    return rc, out.decode(errors="replace"), proc.stderr.read().decode()


def test_watch_first_frame_shows_the_running_step_with_totals(etld):
    """The first frame names the step running now (from the watch reply),
    and a step that gave its totals gets a bar, the share, the objects and
    the time left."""
    progress = {"objects": 1204, "objects_total": 2031, "bytes": 5 << 20,
                "bytes_total": 10 << 20, "rows": 21586}
    etld.on("watch", {"job": 17, "state": "running", "step": "load", "progress": progress},
            event(17, "end", state="succeeded"))
    rc, text, _ = _pty_run(["--socket", etld.path, "watch", "17"])
    assert rc == 0
    assert re.search(r"job 17  load running  \[=====>    \] 50%  1,204/2,031 objects  "
                     r"21,586 rows", text), text
    assert "job 17  -" not in text


def test_watch_plain_line_with_totals(etld):
    etld.on("watch", {"job": 17, "state": "running"},
            event(17, "step", step="load", state="running"),
            event(17, "progress", step="load", progress={"objects": 5, "objects_total": 20}),
            event(17, "end", state="succeeded"))
    p = ctl(etld, "watch", "17")
    assert "load progress: 25%  5/20 objects" in p.stdout, p.stdout
    assert "[" not in p.stdout  # no bar outside a terminal


def test_watch_interrupt_says_the_job_goes_on(etld):
    def forever(req):
        yield result(req, {"job": 17, "state": "running", "step": "load"})
        time.sleep(30)
    etld.replies["watch"] = forever
    rc, text, err = _pty_run(["--socket", etld.path, "watch", "17"], timeout=15,
                             interrupt_when="load")
    assert rc != 0
    assert "stopped watching; job 17 goes on in etld (stop it with 'etlctl cancel 17')" in err, err
