"""test_completion.py - bash and zsh completion of etlctl (issue 14).

bash: completion/etlctl.bash is sourced and _etlctl called with COMP_WORDS
and COMP_CWORD set, as bash does on TAB; COMPREPLY is what it offers.
zsh (when installed): completion/_etlctl goes through zsh's real
completion system, in an interactive zsh on a pseudo-terminal
(zsh_complete.zsh records every candidate offered).

Pipelines and job ids come from etld: a small fake answers `version` with
a pipeline no etld has and `list` with made-up ids, so what is offered can
only have come from it; and once against the real etld, whose jobs are
offered by id.  Without an etld, the four pipelines etld has always run.
"""
import json
import os
import shutil
import socketserver
import subprocess
import threading

import pytest

from etldtest import ETLCTL, HERE, SOURCE_ROOT, settings_for, short_tmpdir

BASH_COMPLETION = os.path.join(SOURCE_ROOT, "completion", "etlctl.bash")
ZSH_DIR = os.path.join(SOURCE_ROOT, "completion")
ZSH = shutil.which("zsh")


class FakeEtld:
    """Answers version (pipelines etl and nightly-x, steps check, load and
    tick) and list (jobs 41, 42)."""

    def __init__(self, path):
        replies = {
            "version": {"version": "0.1.0", "protocol": 1,
                        "pipelines": [{"name": "etl", "description": "x",
                                       "steps": ["load", "check"]},
                                      {"name": "nightly-x", "description": "y",
                                       "steps": ["tick"]}]},
            "list": {"jobs": [{"id": 42, "pipeline": "etl", "state": "running"},
                              {"id": 41, "pipeline": "etl", "state": "failed"}]},
        }

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                for raw in self.rfile:
                    req = json.loads(raw)
                    res = replies.get(req["method"], {})
                    line = json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": res})
                    self.wfile.write(line.encode() + b"\n")

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    d = short_tmpdir("etlcomp")
    sock = os.path.join(d, "s")
    f = FakeEtld(sock)
    yield sock
    f.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def nobody():
    d = short_tmpdir("etlcomp")
    yield os.path.join(d, "nobody.sock")
    shutil.rmtree(d, ignore_errors=True)


def bash_complete(*words, socket=None):
    """What _etlctl offers for the command line `words` (the last one is
    being completed)."""
    line = [ETLCTL] + (["--socket", socket] if socket else []) + list(words)
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
              'COMPREPLY=(); _etlctl; printf "%s\\n" "${COMPREPLY[@]}"')
    r = subprocess.run(["bash", "-c", script, "bash", BASH_COMPLETION] + line,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.split("\n") if w]


def test_bash_commands_and_options(nobody):
    assert bash_complete("") == ["submit", "status", "list", "watch", "cancel", "retry",
                                 "errors", "logs", "backup", "metrics", "ping", "version",
                                 "keys", "help"]
    assert bash_complete("st") == ["status"]
    assert bash_complete("--") == ["--json", "--socket", "--debug", "--help", "--version"]
    assert bash_complete("submit", "etl", "--") == ["--config", "--set", "--key", "--wait",
                                                    "--json", "--socket", "--debug", "--help"]
    assert bash_complete("list", "--l") == ["--limit"]
    assert bash_complete("list", "--state", "f") == ["failed"]
    assert bash_complete("list", "--state", "failed", "--s") == ["--state", "--since",
                                                                "--socket"]
    assert bash_complete("logs", "3", "--") == ["--step", "--json", "--socket", "--debug",
                                                "--help"]
    assert bash_complete("help", "ca") == ["cancel"]


def test_bash_keys_after_set(nobody):
    keys = bash_complete("submit", "etl", "--set", "", socket=nobody)
    listed = subprocess.run([ETLCTL, "keys"], capture_output=True, text=True).stdout
    want = [line.split()[0] + "=" for line in listed.splitlines()]
    assert keys == want and "warehouse.target=" in keys and len(keys) > 40, keys
    assert bash_complete("submit", "--set", "load.con", socket=nobody) == ["load.concurrency="]


def test_bash_pipelines_and_jobs_from_etld(fake, nobody):
    assert bash_complete("submit", "", socket=fake) == ["etl", "nightly-x"]
    assert bash_complete("cancel", "", socket=fake) == ["42", "41"]
    assert bash_complete("watch", "4", socket=fake) == ["42", "41"]
    assert bash_complete("cancel", "42", "", socket=fake) == []  # one JOB only
    assert bash_complete("logs", "42", "--step", "", socket=fake) == ["check", "load", "tick"]
    assert bash_complete("list", "--pipeline", "n", socket=fake) == ["nightly-x"]
    # no etld: the pipelines etld has always run, no job ids, and quickly
    assert bash_complete("submit", "", socket=nobody) == ["etl", "stage", "provision", "teardown"]
    assert bash_complete("status", "", socket=nobody) == []
    assert bash_complete("logs", "1", "--step", "", socket=nobody) == []


def test_bash_jobs_of_the_real_etld(etld, small_data, workdir):
    job = etld.submit(settings_for(small_data, os.path.join(workdir, "w.db")))["job"]
    etld.wait_job(job)
    assert bash_complete("status", "", socket=etld.sock) == [str(job)]
    assert bash_complete("logs", str(job), "--step", "tr", socket=etld.sock) == ["transform"]
    assert bash_complete("submit", "", socket=etld.sock) == ["etl", "stage", "provision",
                                                             "teardown"]


def zsh_complete(tmp_path, *lines):
    """{n: candidates} for each line, through zsh's completion system."""
    out = tmp_path / "offered"
    env = dict(os.environ, PATH=os.path.dirname(ETLCTL) + ":" + os.environ["PATH"])
    r = subprocess.run(["zsh", "-f", os.path.join(HERE, "zsh_complete.zsh"), ZSH_DIR, str(out)]
                       + list(lines), capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    offered, n = {}, None
    for line in out.read_text().splitlines():
        if line.startswith("=== "):
            n = int(line[4:])
            offered[n] = []
        elif line and line != "--- done":
            offered[n].append(line)
    return [sorted(set(offered.get(i + 1, []))) for i in range(len(lines))]


def test_zsh_syntax():
    if not ZSH:
        pytest.skip("zsh is not installed (apt-get install zsh)")
    r = subprocess.run(["zsh", "-n", os.path.join(ZSH_DIR, "_etlctl")], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_zsh_completion(tmp_path, fake, nobody):
    if not ZSH:
        pytest.skip("zsh is not installed (apt-get install zsh)")
    got = zsh_complete(
        tmp_path,
        "etlctl su",
        "etlctl submit --se",
        "etlctl submit etl --set load.con",
        "etlctl --socket %s submit " % fake,
        "etlctl --socket %s cancel " % fake,
        "etlctl --socket %s submit " % nobody,
        "etlctl help w",
        "etlctl --socket %s logs 42 --step " % fake,
        "etlctl list --state f")
    assert got[0] == ["submit"], got
    assert "--set" in got[1], got
    assert got[2] == ["load.concurrency"], got
    assert got[3] == ["etl", "nightly-x"], got
    assert got[4] == ["41", "42"], got
    assert got[5] == ["etl", "provision", "stage", "teardown"], got
    assert got[6] == ["watch"], got
    assert got[7] == ["check", "load", "tick"], got
    assert got[8] == ["failed"], got
