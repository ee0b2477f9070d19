"""Least privilege between processes (issue 17, docs/security.md "Trust
boundaries"): every method of rpc/methods.def may be called only by the
caller classes the registry gives it, and every other caller is refused
with `unauthorized` -- on Unix sockets (identity = the peer's Unix user)
and on mutual-TLS TCP (identity = the client certificate name).

The test creates Unix users (it runs as root; they are removed at the end):
one per caller class (wfe, ra, ca, admin) and one per service run here as
its own user (the RA and VA are started with setpriv as anvil-pt<pid>-ra and
anvil-pt<pid>-va, with the RA's TLS key readable by that user only). The SA and
CA come from AnvilEnv (PostgreSQL, issuer keys). For each server and each
caller class the test calls every method the server owns with empty params:
a method outside the class must answer `unauthorized` (the handler never
runs); a method inside must not (it answers `malformed`, naming a missing
key, or its result). Ports: 21400-21499.
"""
import json
import os
import pwd
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anvil_env import AnvilEnv, TOP, terminate  # noqa: E402
from anvilrpc import RpcClient, RpcError  # noqa: E402

BINDIR = os.path.abspath(os.environ.get("BINDIR", os.path.join(TOP, "bin")))
PORT_BASE = int(os.environ.get("ANVIL_PRIV_PORT_BASE", "21400"))
CLASSES = ["wfe", "ra", "ca", "admin"]
# Per run: /etc/passwd is shared by concurrent runs in other network
# namespaces, and one run's teardown must not delete another's users.
PREFIX = "anvil-pt%d-" % (os.getpid() % 100000)
USERS = [PREFIX + c for c in CLASSES] + [PREFIX + "va"]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("setpriv") is None,
    reason="needs root, useradd and setpriv")


def registry():
    out = subprocess.run([os.path.join(BINDIR, "anvil-rpc"), "methods"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def owned(reg, svc):
    return [m for m in reg if m["owner"] == svc]


@pytest.fixture(scope="module")
def users():
    made = []
    try:
        for u in USERS:
            subprocess.run(["userdel", u], capture_output=True)
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", u], check=True, capture_output=True)
            made.append(u)
        yield {u: pwd.getpwnam(u) for u in made}
    finally:
        for u in made:
            subprocess.run(["userdel", u], capture_output=True)


def callers_for(names):
    """rpc.callers mapping each class to the given identity per class."""
    return {c: [names[c]] for c in CLASSES}


def calls_as(user, target, methods, ctx=None, server_name=None):
    """Calls each method with {} as `user` (a child process with that uid);
    returns {method: "ok" | problem type}."""
    prog = (
        "import json, sys\n"
        "sys.path.insert(0, %r)\n"
        "from anvilrpc import RpcClient, RpcError\n"
        "out = {}\n"
        "for m in %r:\n"
        "    c = RpcClient(%r, timeout=20)\n"
        "    try:\n"
        "        c.call(m, {})\n"
        "        out[m] = 'ok'\n"
        "    except RpcError as e:\n"
        "        out[m] = e.type\n"
        "    finally:\n"
        "        c.close()\n"
        "print(json.dumps(out))\n"
    ) % (os.path.join(TOP, "test", "integration", "lib"), list(methods), target)
    pw = pwd.getpwnam(user)

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    r = subprocess.run([sys.executable, "-c", prog], preexec_fn=drop, capture_output=True,
                       text=True, timeout=120, cwd="/")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def check_matrix(reg, svc, results_by_class):
    """results_by_class: {class: {method: result}} for every method svc owns."""
    for cls, results in results_by_class.items():
        for m in owned(reg, svc) + [x for x in reg if x["owner"] == "any"]:
            got = results[m["name"]]
            if m["name"] == "health.check":  # always allowed
                assert got != "unauthorized", (cls, m["name"], got)
            elif cls in m["callers"]:
                assert got != "unauthorized", "%s refused %s, which the registry allows it" % (
                    m["name"], cls)
            else:
                assert got == "unauthorized", "%s let %s call %s (%s)" % (svc, cls, m["name"], got)


def wait_health(target, ctx=None, server_name=None, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        c = RpcClient(target, timeout=5, ssl_context=ctx, server_name=server_name)
        try:
            c.call("health.check")
            return
        except RpcError as e:
            if e.type != "unavailable" or "unhealthy" not in str(e):
                raise
            return  # answering (its own dependencies are not running here)
        except (OSError, ConnectionError) as e:
            last = e
        finally:
            c.close()
        time.sleep(0.1)
    raise AssertionError("%s not up: %s" % (target, last))


class Standalone:
    """anvil-ra / anvil-va from configs/dev (via scripts/mkconfig.py), run
    as their own Unix user with an rpc section of the test's choosing."""

    def __init__(self, tmp, svc, user, port_base, rpc, drop="setpriv"):
        self.svc, self.user, self.tmp = svc, user, tmp
        cfg = os.path.join(tmp, "cfg-%s-%d" % (svc, port_base))
        var = os.path.join(tmp, "var-%s-%d" % (svc, port_base))
        subprocess.run([sys.executable, os.path.join(TOP, "scripts", "mkconfig.py"), "--out", cfg,
                        "--var", var, "--bindir", BINDIR, "--port-base", str(port_base)],
                       check=True, cwd=TOP, capture_output=True)
        path = os.path.join(cfg, svc + ".json")
        with open(path) as f:
            doc = json.load(f)
        doc["rpc"] = rpc
        doc["log_level"] = "info"
        with open(path, "w") as f:
            json.dump(doc, f)
        os.chmod(cfg, 0o755)
        os.makedirs(os.path.join(var, "run"), exist_ok=True)
        os.chmod(var, 0o755)
        os.chmod(os.path.join(var, "run"), 0o777)
        pw = pwd.getpwnam(user)
        if svc == "va":
            # the dev VA's Token Authority root and DKIM key, which
            # scripts/bootstrap.sh would make; readable by the VA's user
            pki = os.path.join(var, "pki")
            subprocess.run([os.path.join(TOP, "scripts", "dev-keys.sh"), pki], check=True,
                           capture_output=True, timeout=120)
            for name in [""] + os.listdir(pki):
                os.chown(os.path.join(pki, name), pw.pw_uid, pw.pw_gid)
        self.log = open(os.path.join(tmp, "%s-%d.log" % (svc, port_base)), "w")
        argv = [os.path.join(BINDIR, "anvil-" + svc), "--config", path]
        if drop == "setpriv":
            # Started as the user.
            argv = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                    "--clear-groups"] + argv
        else:
            # Started as root; the service skeleton drops to the user once
            # its socket is bound (rpc_service_main --user).
            argv += ["--user", user]
        self.proc = subprocess.Popen(argv, cwd=TOP, stdout=self.log, stderr=subprocess.STDOUT)

    def uid(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
        return None

    def stop(self):
        terminate(self.proc, timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def tmpdir_shared():
    d = tempfile.mkdtemp(prefix="anvil-priv-", dir="/tmp")
    os.chmod(d, 0o1777)  # the services, each its own user, create their sockets here
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_unix_ra_and_va_as_their_own_users(users, tmpdir_shared):
    """RA and VA run as their own users; callers are Unix user names."""
    reg = registry()
    names = {c: PREFIX + c for c in CLASSES}
    procs = []
    try:
        for svc, user, pb, drop in (("ra", PREFIX + "ra", PORT_BASE + 60, "setpriv"),
                                    ("va", PREFIX + "va", PORT_BASE + 70, "flag")):
            sock = os.path.join(tmpdir_shared, "%s.sock" % svc)
            p = Standalone(tmpdir_shared, svc, user, pb,
                           {"listen": "unix:" + sock, "workers": 4, "socket_mode": "0666",
                            "callers": callers_for(names)}, drop=drop)
            procs.append(p)
            wait_health("unix:" + sock)
            # The service really runs as its own user, not root (for the
            # VA: after the skeleton dropped root; poll, it drops right
            # after binding).
            deadline = time.time() + 10
            while p.uid() != users[user].pw_uid and time.time() < deadline:
                time.sleep(0.05)
            assert p.uid() == users[user].pw_uid
            methods = [m["name"] for m in owned(reg, svc)] + ["health.check"]
            check_matrix(reg, svc, {c: calls_as(names[c], "unix:" + sock, methods) for c in CLASSES})
        # Denials are logged with the peer and the method.
        with open(procs[0].log.name) as f:
            log = f.read()
        assert "denied ra.admin_revoke to uid:%d (%s)" % (users[PREFIX + "wfe"].pw_uid,
                                                          PREFIX + "wfe") in log
    finally:
        for p in procs:
            p.stop()


def test_unix_sa_and_ca(users):
    """The real SA and CA (PostgreSQL, issuer keys) refuse every method
    outside the caller's classes; the WFE user reaches no SA write and no
    CA method at all."""
    reg = registry()
    names = {c: PREFIX + c for c in CLASSES}
    callers = {c: [names[c], "self"] for c in CLASSES}  # self: the CA (root here) uses the SA
    over = {}
    for svc in ("sa", "ca"):
        over["%s.json:rpc.callers" % svc] = callers
        over["%s.json:rpc.socket_mode" % svc] = "0666"
    with AnvilEnv(port_base=PORT_BASE, services=["sa", "ca"], config=over, name="priv") as env:
        for d in (env.tmp, env.var_dir, os.path.join(env.var_dir, "run")):
            os.chmod(d, 0o755)
        for svc in ("sa", "ca"):
            target = "unix:" + os.path.join(env.var_dir, "run", svc + ".sock")
            methods = [m["name"] for m in owned(reg, svc)] + ["health.check"]
            results = {c: calls_as(names[c], target, methods) for c in CLASSES}
            check_matrix(reg, svc, results)
            if svc == "ca":
                assert all(v == "unauthorized" for k, v in results["wfe"].items() if k != "health.check")
            else:
                writes = [m["name"] for m in owned(reg, "sa") if m["access"] == "write"]
                assert all(results["wfe"][w] == "unauthorized" for w in writes)


def test_tls_ra_and_va_by_certificate_name(users, tmpdir_shared):
    """Over mutual-TLS TCP the identity is the client certificate name."""
    reg = registry()
    pki = os.path.join(tmpdir_shared, "pki")
    subprocess.run([os.path.join(TOP, "scripts", "mkipki.sh"), pki, "ra", "va", "wfe", "ca", "admin"],
                   check=True, capture_output=True, cwd=TOP)
    os.chmod(pki, 0o755)
    for n in ("ra", "va"):
        # Each server's key readable by its own user only.
        os.chown(os.path.join(pki, n + ".key"), users[PREFIX + n].pw_uid, -1)
        os.chmod(os.path.join(pki, n + ".pem"), 0o644)
    os.chmod(os.path.join(pki, "rpc-ca.pem"), 0o644)
    names = {c: c for c in CLASSES}
    procs = []
    try:
        for svc, pb in (("ra", PORT_BASE + 80), ("va", PORT_BASE + 90)):
            port = pb + 9
            tls = {"cert": os.path.join(pki, svc + ".pem"), "key": os.path.join(pki, svc + ".key"),
                   "ca": os.path.join(pki, "rpc-ca.pem")}
            p = Standalone(tmpdir_shared, svc, PREFIX + svc, pb,
                           {"listen": "tcp:127.0.0.1:%d" % port, "workers": 4, "tls": tls,
                            "callers": callers_for(names)})
            procs.append(p)
            target = "tcp:127.0.0.1:%d" % port

            def ctx(name):
                c = ssl.create_default_context(cafile=os.path.join(pki, "rpc-ca.pem"))
                c.load_cert_chain(os.path.join(pki, name + ".pem"), os.path.join(pki, name + ".key"))
                return c
            wait_health(target, ctx("admin"), svc)
            methods = [m["name"] for m in owned(reg, svc)] + ["health.check"]
            results = {}
            for cls in CLASSES:
                results[cls] = {}
                for m in methods:
                    c = RpcClient(target, timeout=20, ssl_context=ctx(cls), server_name=svc)
                    try:
                        c.call(m, {})
                        results[cls][m] = "ok"
                    except RpcError as e:
                        results[cls][m] = e.type
                    finally:
                        c.close()
            check_matrix(reg, svc, results)
    finally:
        for p in procs:
            p.stop()
