"""emulated.py - what s3env.py (s3rver) and motoenv.py (moto) share: an
emulator process on a free loopback port, one of our signature-checking,
fault-injecting proxies in front of it (s3proxy.py, awsproxy.py), the
proxy's control API, logs for a failing test's report, and stopping both.

    class MyEnv(ProxiedEmulator):
        def __init__(self, workdir):
            super().__init__(workdir, ACCESS_KEY, SECRET_KEY, REGION)
            p = self.spawn(["emulator", "-p", str(port)], "emulator.log")
            wait_port(port, p, "emulator")
            self.start_proxy(PROXY_SCRIPT, port, "myproxy")
"""
import json
import os
import socket
import subprocess
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d within %ds" % (what, port, timeout))


class ProxiedEmulator:
    def __init__(self, workdir, access_key, secret_key, region):
        self.dir = workdir
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.procs = []
        self.logs = []

    def spawn(self, argv, log_name, env=None):
        """Starts a process in its own session, output to DIR/log_name."""
        path = os.path.join(self.dir, log_name)
        self.logs.append(path)
        with open(path, "wb") as log:
            p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
        self.procs.append(p)
        return p

    def start_proxy(self, script, upstream_port, name):
        """The proxy in front of the emulator; sets endpoint and proxy_port."""
        port_file = os.path.join(self.dir, name + ".port")
        p = self.spawn(["/usr/bin/python3", script, "--upstream", "127.0.0.1:%d" % upstream_port,
                        "--port-file", port_file,
                        "--credentials", "%s:%s" % (self.access_key, self.secret_key)],
                       name + ".log")
        self.proxy_log = self.logs[-1]
        deadline = time.time() + 20
        while not os.path.exists(port_file):
            if p.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("%s did not start:\n%s" % (name, self.tail_logs()))
            time.sleep(0.05)
        with open(port_file) as f:
            self.proxy_port = int(f.read())
        self.endpoint = "http://127.0.0.1:%d" % self.proxy_port

    def credentials_env(self, extra, drop=()):
        """os.environ with this emulator's credentials, without the AWS
        settings that would override them, plus extra."""
        e = dict(os.environ)
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE") + tuple(drop):
            e.pop(k, None)
        e.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        e.update(extra)
        return e

    # ---- the proxy's control API ----

    def _control(self, path, data=None):
        req = urllib.request.Request(self.endpoint + "/__proxy/" + path,
                                     data=None if data is None else json.dumps(data).encode(),
                                     method="GET" if data is None else "POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def faults(self, rules):
        return self._control("faults", {"rules": rules})

    def stats(self):
        return self._control("stats")

    def reset(self):
        return self._control("reset", {})

    def set_credentials(self, creds):
        """The keys the proxy accepts from now on ({AKID: SECRET}): a rotation."""
        return self._control("credentials", {"credentials": creds})

    # ---- logs, stopping ----

    def tail_logs(self, lines=60):
        out = []
        for p in self.logs:
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out.append("==> %s <==\n%s" % (p, "".join(f.readlines()[-lines:])))
        return "\n".join(out)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
