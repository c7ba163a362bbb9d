"""pgenv.py - a real PostgreSQL server for the tests and benchmarks, in a
temporary directory, started and stopped by us.

    with pgenv.Server() as pg:          # initdb, start, create role and database
        pg.uri()                         # postgresql://etld@127.0.0.1:PORT/sparkify
        pg.psql("SELECT 1")              # as the superuser, over the Unix socket
        pg.dump("songplays", cols)       # a table as a list of tuples
        pg.fingerprint("songplays", cols) # (rows, md5 of the multiset of rows)

initdb runs as the `postgres` user when we are root (PostgreSQL refuses to
run as root), in a folder under /tmp that it can traverse.  The server
listens on its own Unix socket folder and on 127.0.0.1 at a free port;
`local` connections are trusted (the superuser, for the tests' own
queries), TCP ones need the password (scram-sha-256), so a wrong password is
refused as it would be in production.  fsync is off by default: the data is
thrown away.

Stdlib only.  Server.available() says why a server cannot be started (no
PostgreSQL installed), for pytest.skip.
"""
import glob
import json
import os
import pwd
import shutil
import subprocess
import tempfile

from emulated import free_port  # noqa: F401 (tests call pgenv.free_port)

USER = "etld"
PASSWORD = "etld-Test-pw-7f3a"   # the test role's password; never expected in any output
DB = "sparkify"


def bindir():
    """The newest /usr/lib/postgresql/N/bin holding initdb, pg_ctl and postgres."""
    best = None
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        if all(os.access(os.path.join(d, p), os.X_OK) for p in ("initdb", "pg_ctl", "postgres")):
            try:
                v = int(d.split("/")[-2])
            except ValueError:
                continue
            if best is None or v > best[0]:
                best = (v, d)
    return best[1] if best else None


class Server:
    def __init__(self, settings=None, fsync=False):
        self.bin = bindir()
        self.settings = dict(settings or {})
        if not fsync:
            self.settings.setdefault("fsync", "off")
            self.settings.setdefault("synchronous_commit", "off")
            self.settings.setdefault("full_page_writes", "off")
        self.root = None
        self.port = None
        self.started = False

    @staticmethod
    def available():
        """None when a server can be started here, else the reason why not."""
        if not bindir():
            return "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin)"
        if shutil.which("psql") is None:
            return "psql not found"
        if os.getuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres user to run initdb as"
            if not shutil.which("runuser"):
                return "running as root and runuser is missing"
        return None

    # --- running things as the server's owner --------------------------------

    def _as_owner(self, argv):
        if os.getuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def _run(self, argv, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 120)
        r = subprocess.run(self._as_owner(argv), **kw)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s%s\n%s" % (
                argv[0], r.returncode, r.stdout, r.stderr, self.log_tail()))
        return r

    # --- life cycle -------------------------------------------------------------

    def start(self):
        why = self.available()
        if why:
            raise RuntimeError(why)
        self.root = tempfile.mkdtemp(prefix="etld-pg-", dir="/tmp")
        os.chmod(self.root, 0o755)  # the postgres user must traverse it
        self.data = os.path.join(self.root, "data")
        self.sockdir = os.path.join(self.root, "sock")
        self.logfile = os.path.join(self.root, "server.log")
        os.makedirs(self.sockdir)
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as f:
            f.write("postgres-superuser-pw\n")
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            for p in (self.root, self.sockdir, pwfile):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres",
                   "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        os.unlink(pwfile)
        self.port = free_port()
        opts = ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
                "-k", self.sockdir]
        for k, v in self.settings.items():
            opts += ["-c", "%s=%s" % (k, v)]
        self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.logfile,
                   "-w", "-t", "60", "-o", " ".join(opts), "start"])
        self.started = True
        self.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (USER, PASSWORD), db="postgres")
        self.psql("CREATE DATABASE %s OWNER %s" % (DB, USER), db="postgres")
        return self

    def stop(self):
        if self.started:
            try:
                self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m",
                           "immediate", "-w", "stop"], timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            self.started = False
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def log_tail(self, lines=40):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (OSError, AttributeError):
            return ""

    # --- for the tests ----------------------------------------------------------

    def uri(self, user=USER, db=DB, host="127.0.0.1", port=None, query=""):
        """A libpq URI without the password (etld gets it as warehouse.password)."""
        return "postgresql://%s@%s:%d/%s%s" % (user, host, port or self.port, db,
                                               ("?" + query) if query else "")

    def psql(self, sql, db=DB, timeout=60):
        """Runs sql as the superuser over the Unix socket; stdout, unaligned."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.sockdir, "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("psql failed (%d): %s\nSQL: %s" % (r.returncode, r.stderr, sql))
        return r.stdout

    def scalar(self, sql, db=DB):
        out = self.psql(sql, db).strip()
        return int(out) if out.lstrip("-").isdigit() else out

    def dump(self, table, cols, db=DB):
        """The table's rows as tuples (int, float, str or None), timestamps as the
        text PostgreSQL prints (ISO, trailing zeros of the fraction dropped)."""
        types = dict(l.split("|", 1) for l in self.psql(
            "SELECT lower(column_name), data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = '%s'" % table, db).splitlines())
        sel = []
        for c in cols:
            t = types.get(c.lower(), "")
            expr = c.lower()
            if t.startswith("timestamp") or t == "date":
                expr = "%s::text" % expr
            sel.append(expr)
        # one JSON value for the whole table: far cheaper than a line per row
        out = self.psql("SELECT json_agg(json_build_array(%s)) FROM %s" % (", ".join(sel), table),
                        db).strip()
        return [tuple(r) for r in json.loads(out)] if out else []

    def fingerprint(self, table, cols, db=DB):
        """(rows, hash) of the table as a multiset of rows: equal for two
        databases holding the same rows in any order.  Computed by the server,
        so it is cheap for big tables."""
        out = self.psql("SELECT count(*) || ' ' || coalesce(md5(string_agg(h, '' ORDER BY h)), '') "
                        "FROM (SELECT md5(row(%s)::text) AS h FROM %s) x"
                        % (", ".join(c.lower() for c in cols), table), db).split()
        return int(out[0]), (out[1] if len(out) > 1 else "")

    def etld_backends(self, db=DB):
        """[(pid, state, query)] of etld's connections."""
        out = self.psql("SELECT pid, coalesce(state, ''), left(query, 60) FROM pg_stat_activity "
                        "WHERE application_name = 'etld' AND datname = '%s'" % db, "postgres")
        return [tuple(l.split("|", 2)) for l in out.splitlines() if l]
