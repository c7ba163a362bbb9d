"""test_install.py - what `meson install` puts where (issue 14, "Packaging").

Installs the build under test into a temporary DESTDIR and checks the files
and their modes: the binaries, the sample configuration (0640, group etld
when that group exists here), the units, the sysusers.d and tmpfiles.d files
(which systemd-sysusers and systemd-tmpfiles then apply to a scratch root),
the manual pages and the shell completions; and that the installed etld's
--help names the configuration path of this build's sysconfdir.
"""
import grp
import json
import os
import shutil
import stat
import subprocess

import pytest

from etldtest import BUILD


def build_options():
    r = subprocess.run(["meson", "introspect", "--buildoptions", BUILD], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return {o["name"]: o["value"] for o in json.loads(r.stdout)}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if not os.path.isfile(os.path.join(BUILD, "build.ninja")):
        pytest.skip("no meson build in %s" % BUILD)
    dest = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", str(dest)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    o = build_options()
    prefix = o["prefix"]
    sysconfdir = os.path.join(prefix, o["sysconfdir"])
    return {"dest": str(dest), "prefix": prefix, "sysconfdir": sysconfdir,
            "root": lambda p: str(dest) + p, "options": o}


def test_files_and_modes(installed):
    root, prefix = installed["root"], installed["prefix"]
    for exe in ("bin/etld", "bin/etlctl"):
        path = root(os.path.join(prefix, exe))
        assert os.access(path, os.X_OK), path
    conf = root(os.path.join(installed["sysconfdir"], "etld", "etld.conf"))
    st = os.stat(conf)
    assert stat.S_IMODE(st.st_mode) == 0o640, oct(st.st_mode)
    if os.geteuid() == 0:
        assert st.st_uid == 0
        try:
            assert st.st_gid == grp.getgrnam("etld").gr_gid, "etld.conf is not group etld's"
        except KeyError:
            pass  # no group etld on this machine: meson leaves the file root's
    for unit in ("etld.service", "etld.socket", "etld-nightly.service", "etld-nightly.timer"):
        assert os.path.isfile(root(os.path.join(prefix, "lib/systemd/system", unit))), unit
    with open(root(os.path.join(prefix, "lib/systemd/system/etld.service"))) as f:
        service = f.read()
    assert "--config %s/etld/etld.conf" % installed["sysconfdir"] in service


def test_etld_default_config_is_the_builds(installed):
    etld = installed["root"](os.path.join(installed["prefix"], "bin", "etld"))
    r = subprocess.run([etld, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    want = os.path.join(installed["sysconfdir"], "etld", "etld.conf")
    assert "(default %s, if it exists)" % want in r.stdout, r.stdout


def test_sysusers_and_tmpfiles(installed, tmp_path):
    """The user, group and state directory the units need, from the
    installed files alone (so the README's install makes no user by hand)."""
    lib = installed["root"](os.path.join(installed["prefix"], "lib"))
    sysusers = os.path.join(lib, "sysusers.d", "etld.conf")
    tmpfiles = os.path.join(lib, "tmpfiles.d", "etld.conf")
    assert os.path.isfile(sysusers) and os.path.isfile(tmpfiles)
    if not shutil.which("systemd-sysusers") or not shutil.which("systemd-tmpfiles"):
        pytest.skip("systemd-sysusers/systemd-tmpfiles not installed")
    scratch = tmp_path / "root"
    (scratch / "etc").mkdir(parents=True)
    r = subprocess.run(["systemd-sysusers", "--root", str(scratch), sysusers],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(scratch / "etc" / "passwd") as f:
        users = {line.split(":")[0]: line.rstrip("\n").split(":") for line in f}
    assert "etld" in users, users
    assert users["etld"][5] == "/var/lib/etld", users["etld"]
    with open(scratch / "etc" / "group") as f:
        assert any(line.startswith("etld:") for line in f)
    if os.geteuid() != 0:
        pytest.skip("systemd-tmpfiles gives /var/lib/etld to etld: root only")
    r = subprocess.run(["systemd-tmpfiles", "--root", str(scratch), "--create", tmpfiles],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    st = os.stat(scratch / "var" / "lib" / "etld")
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750, oct(st.st_mode)
    assert st.st_uid == int(users["etld"][2]), (st.st_uid, users["etld"])
