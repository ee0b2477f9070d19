"""Start a whole private Anvil for an integration test.

    from anvil_env import AnvilEnv
    with AnvilEnv(port_base=24000, services=["sa", "ca", "va", "ra", "wfe"]) as env:
        env.directory_url      # https://localhost:<base+31>/directory
        env.trust_path         # PEM bundle a client must trust
        env.rpc("sa")          # anvilrpc.RpcClient on the SA's socket
        env.challtest("set-txt", {"host": "_acme-challenge.a.test.", "value": "x"})
        env.var_dir, env.cfg_dir, env.bin_dir, env.ports

It makes a config directory from configs/dev with scripts/mkconfig.py (ports
moved to port_base + offset, paths under a temporary var directory), runs
scripts/bootstrap.sh (private PostgreSQL, schema, dev CA, WFE TLS
certificate) and starts the chosen services through the real launcher
(bin/anvil), always with pebble-challtestsrv as the DNS server. `config` maps
"file.json:key.path" to a JSON value to override. `env` adds environment
variables (e.g. PEBBLE_VA_ALWAYS_VALID=1).
"""
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anvilrpc import RpcClient  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ALL_SERVICES = ["sa", "ca", "va", "ra", "wfe"]


class AnvilEnv:
    def __init__(self, port_base=None, services=None, config=None, env=None,
                 name="anvil", start_timeout=90, src=None):
        self.port_base = int(port_base or os.environ.get("ANVIL_TEST_PORT_BASE", "24000"))
        self.services = list(services or ALL_SERVICES)
        self.overrides = dict(config or {})
        self.extra_env = dict(env or {})
        self.name = name
        self.start_timeout = start_timeout
        self.bin_dir = os.path.abspath(os.environ.get("BINDIR", os.path.join(TOP, "bin")))
        build = os.path.abspath(os.environ.get("BUILD", os.path.join(TOP, "build")))
        os.makedirs(os.path.join(build, "tmp"), exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=name + "-", dir=os.path.join(build, "tmp"))
        self.cfg_dir = os.path.join(self.tmp, "cfg")
        self.var_dir = os.path.join(self.tmp, "var")
        # src: template config directory (default configs/dev). A template
        # whose paths live under var/<sub>/ (configs/testmode,
        # configs/pebble-compat) gets var_dir = <tmp>/var/<sub>.
        self.src = os.path.join(TOP, src or os.path.join("configs", "dev"))
        self.mk_var = self.var_dir
        with open(os.path.join(self.src, "anvil.json")) as f:
            lock = json.load(f).get("lock_file", "var/run/anvil.lock")
        parts = lock.split("/")
        if len(parts) > 3 and parts[0] == "var":
            self.var_dir = os.path.join(self.var_dir, *parts[1:-2])
        self.proc = None
        self.ports = {
            "wfe": self.port_base + 31, "mgmt": self.port_base + 32,
            "pki": self.port_base + 30,
            "debug_sa": self.port_base + 11, "debug_ca": self.port_base + 12,
            "debug_va": self.port_base + 13, "debug_ra": self.port_base + 14,
            "debug_wfe": self.port_base + 15,
            "dns": self.port_base + 53, "challtest": self.port_base + 55,
            "http01": self.port_base + 2, "tlsalpn01": self.port_base + 1,
            "https": self.port_base + 3,
        }
        self.directory_url = "https://localhost:%d/directory" % self.ports["wfe"]
        self.trust_path = None
        self.dsn = None
        self.env = None

    # -- lifecycle -----------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        reports = None
        try:
            self.stop(keep=True)
            reports = self.sanitizer_reports()
        finally:
            self.cleanup()
        if reports and exc[0] is None:
            raise AssertionError("sanitizer reports in service logs:\n" + reports)
        return False

    SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                         "WARNING: ThreadSanitizer")

    def sanitizer_reports(self):
        """Lines around any ASan/LSan/UBSan report in the service logs (an
        `make asan` run must have none)."""
        out = []
        logdir = os.path.join(self.var_dir, "log")
        if not os.path.isdir(logdir):
            return ""
        for name in sorted(os.listdir(logdir)):
            with open(os.path.join(logdir, name), errors="replace") as f:
                lines = f.readlines()
            for i, line in enumerate(lines):
                if any(m in line for m in self.SANITIZER_MARKERS):
                    out.append("--- %s\n%s" % (name, "".join(lines[max(0, i - 2):i + 20])))
                    break
        return "\n".join(out)

    def start(self):
        sets = []
        for k, v in self.overrides.items():
            sets += ["--set", "%s=%s" % (k, json.dumps(v))]
        subprocess.run([sys.executable, os.path.join(TOP, "scripts", "mkconfig.py"),
                        "--src", self.src,
                        "--out", self.cfg_dir, "--var", self.mk_var,
                        "--bindir", self.bin_dir, "--port-base", str(self.port_base)] + sets,
                       check=True, cwd=TOP)
        # Keep only the chosen services (and the DNS server) in the launcher.
        path = os.path.join(self.cfg_dir, "anvil.json")
        with open(path) as f:
            doc = json.load(f)
        doc["services"] = [s for s in doc["services"]
                           if s["name"] == "challtestsrv" or s["name"] in self.services]
        if "wfe" not in self.services:
            doc["ready_lines"] = ["ANVIL_READY=1"]
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)
        env = dict(os.environ)
        env["BINDIR"] = self.bin_dir
        out = subprocess.run([os.path.join(TOP, "scripts", "bootstrap.sh"), self.cfg_dir, self.var_dir],
                             env=env, cwd=TOP, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("bootstrap failed:\n" + out.stdout + out.stderr)
        for line in out.stdout.splitlines():
            if line.startswith("ANVIL_") and "=" in line:
                k, _, v = line.partition("=")
                env[k] = v
        env.update(self.extra_env)
        self.env = env
        self.dsn = env.get("ANVIL_SA_DSN")
        self.trust_path = env.get("ANVIL_TRUST_PATH")
        self.launcher_log = open(os.path.join(self.var_dir, "log", "launcher.log"), "w")
        self.proc = subprocess.Popen([os.path.join(self.bin_dir, "anvil"), "run", "--config-dir", self.cfg_dir],
                                     env=env, cwd=TOP, stdout=subprocess.PIPE, stderr=self.launcher_log)
        deadline = time.time() + self.start_timeout
        ready_marker = "ANVIL_DIRECTORY=" if "wfe" in self.services else "ANVIL_READY="
        fd = self.proc.stdout.fileno()
        buf = b""
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("launcher exited (%d) during start-up:\n%s" % (self.proc.returncode, self.logs_tail()))
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 65536)
                buf += chunk
                if ready_marker.encode() in buf:
                    self.ready_output = buf.decode(errors="replace")
                    return
        raise RuntimeError("not ready after %ds:\n%s" % (self.start_timeout, self.logs_tail()))

    def stop(self, keep=False):
        terminate(self.proc)
        self.proc = None
        if os.path.isdir(os.path.join(self.var_dir, "pg")) or os.path.islink(os.path.join(self.var_dir, "pg")):
            subprocess.run([os.path.join(TOP, "scripts", "pg.sh"), "stop", os.path.join(self.var_dir, "pg")],
                           capture_output=True)
        if not keep:
            self.cleanup()

    def cleanup(self):
        """Removes the temporary directory (unless ANVIL_KEEP_TMP=1)."""
        if os.environ.get("ANVIL_KEEP_TMP") != "1":
            pg = os.path.join(self.var_dir, "pg")
            if os.path.lexists(pg):
                # stops a cluster a test restarted and removes the
                # /var/tmp fallback the symlink points to
                subprocess.run([os.path.join(TOP, "scripts", "pg.sh"), "destroy", pg], capture_output=True)
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ---------------------------------------------------------
    def rpc(self, service, timeout=30.0):
        return RpcClient("unix:" + os.path.join(self.var_dir, "run", service + ".sock"), timeout=timeout)

    def challtest(self, path, body):
        req = urllib.request.Request("http://127.0.0.1:%d/%s" % (self.ports["challtest"], path.lstrip("/")),
                                     data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def log_path(self, service):
        return os.path.join(self.var_dir, "log", service + ".log")

    def logs_tail(self, n=30):
        out = []
        logdir = os.path.join(self.var_dir, "log")
        if os.path.isdir(logdir):
            for name in sorted(os.listdir(logdir)):
                with open(os.path.join(logdir, name), errors="replace") as f:
                    lines = f.readlines()[-n:]
                out.append("--- %s\n%s" % (name, "".join(lines)))
        return "\n".join(out)

    def debug_get(self, service, path="/metrics"):
        url = "http://127.0.0.1:%d%s" % (self.ports["debug_" + service], path)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            # Not listening (yet, or any more): no HTTP status at all.
            return 0, str(e)

    def spawn(self, binary, name, cfg):
        """Starts one more service binary (e.g. a second anvil-wfe) outside
        the launcher: writes cfg to <cfg_dir>/<name>.json and runs
        `<bin_dir>/<binary> --config` on it, its output in log/<name>.log.
        Returns the Popen (the caller stops it, e.g. with terminate())."""
        path = os.path.join(self.cfg_dir, name + ".json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        log = open(os.path.join(self.var_dir, "log", name + ".log"), "w")
        return subprocess.Popen([os.path.join(self.bin_dir, binary), "--config", path],
                                stdout=log, stderr=subprocess.STDOUT, cwd=TOP)

    def pid_of(self, service):
        """PID of a running service binary started from this env's config."""
        cfg = os.path.join(self.cfg_dir, service + ".json")
        out = subprocess.run(["pgrep", "-f", "--", "--config " + cfg], capture_output=True, text=True)
        pids = [int(p) for p in out.stdout.split()]
        return pids[0] if pids else None


def terminate(proc, timeout=60):
    """Stops proc (a Popen, or None) if it still runs: SIGTERM, then SIGKILL
    when it has not exited within timeout seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(pred, timeout=30, interval=0.2):
    """Polls pred() until it returns something true (returned) or timeout
    seconds pass (None)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return None


def wait_port(port, timeout=60, proc=None, what="a server"):
    """Waits until 127.0.0.1:port accepts a TCP connection; fails at once
    when proc (the server's Popen, optional) exits first."""
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %d" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d" % (what, port))


def rpc_fixture(service):
    """A pytest fixture (assign it: `ra = rpc_fixture("ra")`): an RPC
    client on the module env's `service` socket, closed after the test."""
    import pytest

    @pytest.fixture()
    def fixture(env):
        c = env.rpc(service)
        yield c
        c.close()
    return fixture
