"""conftest.py - fixtures for the integration suite: the real etld, real etlctl.

Fixtures (other test files may use them):
  etld_factory(**kw) -> etldtest.Daemon, started; kw: max_jobs, data_dir,
                   conf_extra, env, start=False.  Stopped with SIGTERM after the
                   test, which must exit 0 within 10 s.
  etld           -> one started Daemon with default settings (max_jobs = 2).
  small_data     -> a generated tree (bench/etld-gen, 2,000 events), session-wide.
  edge_data      -> datagen.edge_case_tree(): the star-schema corner cases.
  big_data       -> a generated tree large enough that load takes a second or more.
  sample_data    -> /work/shared/data/sparkify, or the test is skipped.
  workdir        -> a fresh directory with a short path (socket paths <= 108 bytes).

The daemon's stderr (all runs of it) is attached to the report of a failing test
as a section named "etld stderr".  Marker: slow (deselect with -m "not slow").
Binaries come from $ETLD_BUILD (default /work/main/build).  The helpers
(etldtest, datagen, s3env, pgenv...) live in tests/harness/, which the
benchmarks import too; this file puts that folder on sys.path before pytest
imports any test file.
"""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "harness"))
import datagen  # noqa: E402
import etldtest  # noqa: E402

BIG_EVENTS = int(os.environ.get("ETLD_TEST_BIG_EVENTS", "300000"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes seconds (big generated data, restarts)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        for d in getattr(item, "_etld_daemons", []):
            rep.sections.append(("etld stderr (%s, last 200 lines)" % d.stderr_path,
                                 d.stderr_tail(200)))


def _failed(item):
    return any(getattr(item, "rep_" + w, None) is not None and getattr(item, "rep_" + w).failed
               for w in ("setup", "call"))


@pytest.fixture(scope="session")
def binaries():
    if not etldtest.have(etldtest.ETLD):
        pytest.skip("etld is not built: %s (set ETLD_BUILD)" % etldtest.ETLD)
    return etldtest


@pytest.fixture
def workdir(request):
    d = etldtest.short_tmpdir()
    yield d
    if not _failed(request.node):
        shutil.rmtree(d, ignore_errors=True)
    else:
        print("kept %s for inspection" % d)


@pytest.fixture
def etld_factory(request, binaries):
    daemons = []
    request.node._etld_daemons = daemons

    def make(max_jobs=2, data_dir=None, conf_extra="", env=None, start=True):
        wd = etldtest.short_tmpdir()
        d = etldtest.Daemon(wd, max_jobs=max_jobs, data_dir=data_dir, conf_extra=conf_extra,
                            env=env)
        daemons.append(d)
        if start:
            d.start()
        return d

    yield make

    problems = []
    for d in daemons:
        if d.proc is None:
            continue
        if not d.alive() and d.deliberate:
            continue
        if not d.alive():
            problems.append("etld (%s) died during the test with exit code %s"
                            % (d.workdir, d.proc.returncode))
            continue
        rc = d.stop()
        if rc != 0:
            problems.append("etld (%s) exited %s on SIGTERM, expected 0 within 10 s"
                            % (d.workdir, rc))
    if _failed(request.node) or problems:
        for d in daemons:
            print("---- etld stderr %s ----\n%s" % (d.stderr_path, d.stderr_tail(200)))
    else:
        for d in daemons:
            shutil.rmtree(d.workdir, ignore_errors=True)
    assert not problems, "\n".join(problems)


@pytest.fixture
def etld(etld_factory):
    return etld_factory()


def _tree(tmp_path_factory, name):
    return str(tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def small_data(binaries, tmp_path_factory):
    d = os.path.join(_tree(tmp_path_factory, "small"), "data")
    etldtest.generate(d, seed=11, songs=150, events=2000, days=5)
    return d


@pytest.fixture(scope="session")
def edge_data(binaries, tmp_path_factory):
    d = os.path.join(_tree(tmp_path_factory, "edge"), "data")
    datagen.edge_case_tree(d)
    return d


@pytest.fixture(scope="session")
def big_data(binaries, tmp_path_factory):
    d = os.path.join(_tree(tmp_path_factory, "big"), "data")
    etldtest.generate(d, seed=5, songs=2000, events=BIG_EVENTS, days=30)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def sample_data():
    d = etldtest.SAMPLE
    if not os.path.isfile(os.path.join(d, "log_json_path.json")):
        pytest.skip("the Sparkify sample is not present at %s" % d)
    return d
