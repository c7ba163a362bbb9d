#!/usr/bin/python3
"""bench/fairness.py - is a fresh client served promptly while others abuse
the socket?

Starts a real etld (benchlib.Etld), then measures the latency of a fresh
client's `ping` (connect, send, read the reply, close), first on a quiet
socket, then while these clients run, each in its own process:

  idle       opens --idle connections and holds them, sending nothing (only
             daemon.max_connections_per_uid of them are let in; the others
             get an error line and are closed, so it keeps retrying);
  pipeline   --pipeliners clients, each sending --batch pings in one write,
             then reading the replies, over and over;
  greedy     one client that pipelines --batch pings at a time and never
             reads (etld drops it at 16 MiB of queued replies; it reconnects);
  garbage    --garbage clients writing random bytes and broken JSON lines,
             some near the 1 MiB line limit, draining whatever comes back.

When run as root, the abusers run as uid `nobody` (setpriv), as another
user of the socket would; the measuring client stays root.  Otherwise they
share the measuring client's uid, and --idle is kept below the per-uid share.

Prints p50, p90, p99 and max in milliseconds for both phases, the number of
samples, and whether the goal (p99 < 10 ms under load) is met.

    bench/fairness.py [--build DIR] [--samples 2000] [--idle 1000]
                      [--pipeliners 2] [--batch 5000] [--garbage 2]
"""
import argparse
import os
import pwd
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]  # bench/copy.py
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

PING = b'{"jsonrpc":"2.0","method":"ping","id":1}\n'


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def drain(s):
    """Reads whatever is there without waiting; False when the peer closed."""
    s.setblocking(False)
    try:
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                return False
    except BlockingIOError:
        return True
    finally:
        s.setblocking(True)


# ---- the abusers (run as `fairness.py --role ROLE SOCK ...`) ---------------

def role_idle(path, n):
    held = []
    while True:
        while len(held) < n:
            try:
                held.append(connect(path))
            except OSError:
                break
        time.sleep(0.2)
        alive = []
        for s in held:
            if drain(s):
                alive.append(s)
            else:
                s.close()  # refused over the share, or closed: try again
        held = alive


def role_pipeline(path, batch, read):
    payload = b"".join(b'{"jsonrpc":"2.0","method":"ping","id":%d}\n' % i for i in range(batch))
    while True:
        try:
            s = connect(path)
            while True:
                s.sendall(payload)
                if not read:
                    continue
                got = 0
                while got < batch:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        raise ConnectionError
                    got += chunk.count(b"\n")
        except OSError:
            time.sleep(0.05)


def role_garbage(path, seed):
    rnd = random.Random(seed)
    while True:
        try:
            s = connect(path)
            for _ in range(200):
                kind = rnd.randrange(4)
                if kind == 0:
                    data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))) + b"\n"
                elif kind == 1:
                    data = b'{"jsonrpc":"2.0","method":"status","params":[1,' + b"{" * 50 + b"\n"
                elif kind == 2:
                    data = b'{"jsonrpc":"2.0","method":"' + b"x" * (1 << 20) + b'"}\n'
                else:
                    data = b'{"jsonrpc":"2.0","method":"list","params":{"limit":5},"id":7}\n'
                s.sendall(data)
                if not drain(s):
                    break
            s.close()
        except OSError:
            time.sleep(0.05)


# ---- the measuring side ----------------------------------------------------

def ping_ms(path, split):
    """Milliseconds from connect() to the pong; split gets the connect part."""
    t0 = time.perf_counter()
    with connect(path) as s:
        split.append((time.perf_counter() - t0) * 1000)
        s.settimeout(10)
        s.sendall(PING)
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("etld closed the connection: %r" % buf)
            buf += chunk
    if b'"pong":true' not in buf:
        raise RuntimeError("not a pong: %r" % buf)
    return (time.perf_counter() - t0) * 1000


def measure(path, samples):
    out, conn, failed = [], [], 0
    for _ in range(samples):
        try:
            out.append(ping_ms(path, conn))
        except (OSError, RuntimeError):
            failed += 1  # refused or closed: no answer at all
        time.sleep(0.002)
    if not out:
        return {"p50": 0, "p90": 0, "p99": 0, "max": 0, "n": 0, "connect_p99": 0,
                "failed": failed}
    out.sort()
    conn.sort()
    pick = lambda v, q: v[min(len(v) - 1, int(q * len(v)))]  # noqa: E731
    return {"p50": pick(out, 0.50), "p90": pick(out, 0.90), "p99": pick(out, 0.99),
            "max": out[-1], "n": len(out), "connect_p99": pick(conn, 0.99), "failed": failed}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(benchlib.ROOT, "build"))
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--pipeliners", type=int, default=2)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--garbage", type=int, default=2)
    ap.add_argument("--no-greedy", action="store_true", help="leave out the greedy client")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the abusers at this nice level (a small shared machine: keeps "
                         "their own CPU use from being what is measured)")
    ap.add_argument("--boost", type=int, default=0,
                    help="root: run etld and the measuring client at nice -N (on a machine "
                         "others load too, so their work is not what is measured)")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role:
        sock = a.args[0]
        {"idle": lambda: role_idle(sock, int(a.args[1])),
         "pipeline": lambda: role_pipeline(sock, int(a.args[1]), True),
         "greedy": lambda: role_pipeline(sock, int(a.args[1]), False),
         "garbage": lambda: role_garbage(sock, int(a.args[1]))}[a.role]()
        return

    work = tempfile.mkdtemp(prefix="etld-fair-", dir="/tmp")
    os.chmod(work, 0o755)
    data = os.path.join(work, "nodata")
    as_other = []
    idle = a.idle
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        as_other = ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid,
                    "--clear-groups"]
    else:
        idle = min(idle, 40)  # the abusers share our uid: stay under its share
    abusers = []
    with benchlib.Etld(a.build, work, data, extra="[daemon]\nlog_level = error\n",
                       label="fair") as etld:
        os.chmod(etld.sock, 0o666)
        if a.boost:
            for pid in (0, etld.proc.pid):
                os.setpriority(os.PRIO_PROCESS, pid, -a.boost)
        quiet = measure(etld.sock, a.samples)

        def spawn(role, arg):
            abusers.append(subprocess.Popen(
                ["nice", "-n", str(a.nice)] + as_other + [sys.executable, os.path.abspath(__file__), "--role", role,
                            etld.sock, str(arg)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        spawn("idle", idle)
        for _ in range(a.pipeliners):
            spawn("pipeline", a.batch)
        if not a.no_greedy:
            spawn("greedy", a.batch)
        for i in range(a.garbage):
            spawn("garbage", i + 1)
        time.sleep(2)  # let them settle in
        try:
            loaded = measure(etld.sock, a.samples)
        finally:
            for p in abusers:
                p.send_signal(signal.SIGKILL)
                p.wait()
    print("fresh client's ping (connect, ping, reply, close), milliseconds")
    print("%-7s %8s %8s %8s %8s %6s %12s %7s" % ("", "p50", "p90", "p99", "max", "n",
                                                   "connect p99", "failed"))
    for name, r in (("quiet", quiet), ("loaded", loaded)):
        print("%-7s %8.3f %8.3f %8.3f %8.3f %6d %12.3f %7d"
              % (name, r["p50"], r["p90"], r["p99"], r["max"], r["n"], r["connect_p99"],
                 r["failed"]))
    print("load: %d idle connections tried%s, %d pipeliners x %d pings (reading), %s greedy "
          "pipeliner (never reading), %d garbage writers; abusers at nice %d, etld and the "
          "measuring client at nice %d; load average %.1f"
          % (idle, " as uid nobody" if as_other else "", a.pipeliners, a.batch,
             "no" if a.no_greedy else "1", a.garbage, a.nice, -a.boost, os.getloadavg()[0]))
    ok = loaded["p99"] < 10 and not loaded["failed"]
    print("goal p99 < 10 ms under load: %s" % ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
