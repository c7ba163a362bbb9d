"""test_cli_ops.py - the command line against the real etld: what an operator
types wrong is caught early and said plainly (issue 14, "Packaging and the
command line").

- a pipeline etld does not run is a usage error (exit 2) of etlctl, which
  checks it against the pipelines etld names in its version reply;
- a warehouse.target with an unknown scheme is refused at submit, naming the
  key and the schemes etld knows, without quoting the rest of the URI;
- `etlctl cancel` of a job that has ended exits 0 with a note, while a job
  that does not exist stays an error (exit 4);
- a misspelled --set key names the nearest one, in etlctl and in etld.
"""
import os

from etldtest import STEPS, RpcError, etlctl, settings_for

PIPELINES = ["etl", "stage", "provision", "teardown"]


def test_version_names_the_pipelines(etld):
    v = etld.rpc("version")
    assert [p["name"] for p in v["pipelines"]] == PIPELINES, v
    assert all(p["description"] for p in v["pipelines"]), v
    assert v["pipelines"][0]["steps"] == STEPS, v  # the completions offer them for logs --step
    p = etlctl(etld.sock, "version")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "etlctl " + v["version"], lines
    assert lines[1] == "etld %s (protocol 1)" % v["version"], lines
    assert lines[2] == "pipelines: " + ", ".join(PIPELINES), lines


def test_unknown_pipeline_is_a_usage_error(etld):
    p = etlctl(etld.sock, "submit", "etll")
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "unknown pipeline 'etll' (etld runs: %s)" % ", ".join(PIPELINES) in p.stderr, p.stderr
    assert etld.rpc("list", {"limit": 5})["jobs"] == [], "nothing may have been queued"
    # etld refuses it too, for clients that do not ask first
    try:
        etld.rpc("submit", {"pipeline": "etll", "settings": {}})
        raise AssertionError("etld queued an unknown pipeline")
    except RpcError as e:
        assert e.code == -32602 and "unknown pipeline 'etll'" in e.message, e.message


def test_unknown_warehouse_scheme_refused_at_submit(etld, small_data, workdir):
    settings = settings_for(small_data, os.path.join(workdir, "w.db"))
    settings["warehouse.target"] = "mysql://etl:s3cret@db.example/dev"
    try:
        etld.rpc("submit", {"pipeline": "etl", "settings": settings})
        raise AssertionError("etld queued a job on an unknown warehouse scheme")
    except RpcError as e:
        assert e.code == -32602, e.error
        assert "warehouse.target: unknown scheme 'mysql'" in e.message, e.message
        assert "sqlite://, postgresql://, postgres://, redshift://, or just redshift" in e.message, \
            e.message
        assert "s3cret" not in e.message
    assert etld.rpc("list", {"limit": 5})["jobs"] == []
    assert "s3cret" not in etld.stderr_text()
    # etlctl checks it before sending anything
    p = etlctl(etld.sock, "submit", "etl", "--set", "warehouse.target=mysql://etl:s3cret@h/dev")
    assert p.returncode == 2 and "unknown scheme 'mysql'" in p.stderr, p
    assert "s3cret" not in p.stderr


def test_misspelled_key_names_the_nearest(etld):
    try:
        etld.rpc("submit", {"pipeline": "etl", "settings": {"load.batchrows": "10"}})
        raise AssertionError("etld took an unknown key")
    except RpcError as e:
        assert "unknown key 'load.batchrows' (did you mean 'load.batch_rows'?)" in e.message, e
    p = etlctl(etld.sock, "submit", "etl", "--set", "warehouse.traget=sqlite:///tmp/x.db")
    assert p.returncode == 2, p
    assert "did you mean 'warehouse.target'?" in p.stderr, p.stderr


def test_cancel_of_an_ended_job(etld, small_data, workdir):
    job = etld.submit(settings_for(small_data, os.path.join(workdir, "w.db")))["job"]
    assert etld.wait_job(job)["state"] == "succeeded"
    p = etlctl(etld.sock, "cancel", str(job))
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert p.stdout == "job %d had already ended (succeeded); nothing to cancel\n" % job, p.stdout
    assert etld.status(job)["state"] == "succeeded"
    # the protocol keeps its error, with the state for clients to tell
    try:
        etld.rpc("cancel", {"job": job})
        raise AssertionError("cancel of an ended job answered a result")
    except RpcError as e:
        assert e.code == -32002 and e.error.get("data") == {"state": "succeeded"}, e.error
    # a job that does not exist is not the same
    p = etlctl(etld.sock, "cancel", "424242")
    assert p.returncode == 4 and "no job 424242" in p.stderr, (p.returncode, p.stderr)
