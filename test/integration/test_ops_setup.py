"""What an operator does after installing the package (issue #28), end to end:

`anvil-admin setup` writes a config set, `setup --check` refuses it until
the keys and the HTTPS certificate exist and then accepts it, the launcher
starts that set and lego gets certificates through it; every log line of
every service is a JSON object with the text line's fields (the set was
written with --log-format json); `anvil-admin backup` and `restore` move
the CA into a fresh PostgreSQL cluster where every certificate, revocation
and account is found, and CRL numbers continue above the ones published
before (RFC 5280 section 5.2.3: the CRL number is "a monotonically
increasing sequence number for a given CRL scope and CRL issuer").

Everything runs on loopback inside the test's network namespace; the
services run as root under the launcher (setup --user root).
"""
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import anvil_env  # noqa: E402
from anvil_env import TOP  # noqa: E402

BINDIR = os.path.abspath(os.environ.get("BINDIR", os.path.join(TOP, "bin")))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(TOP, "build")))
BASE = int(os.environ.get("ANVIL_SETUP_TEST_PORT_BASE", "29400"))
WFE_PORT = BASE + 31
DNS_PORT = BASE + 53
MGMT_PORT = BASE + 55
NEEDED = ["anvil", "anvil-sa", "anvil-ca", "anvil-va", "anvil-ra", "anvil-wfe", "anvil-admin"]


def run(args, expect=0, env=None, timeout=180):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=TOP,
                       env=dict(os.environ, **(env or {})))
    if expect is not None:
        assert p.returncode == expect, "%s: rc %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr)
    return p


class Site:
    """One installation made by setup, with its own PostgreSQL cluster."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.etc = os.path.join(tmp, "etc")
        self.log = os.path.join(tmp, "log")
        self.run_dir = os.path.join(tmp, "run")
        self.proc = None
        self.pgs = []

    def admin(self, *args, expect=0):
        return run([os.path.join(BINDIR, "anvil-admin")] + list(args) +
                   ["--config", os.path.join(self.etc, "admin.json")], expect=expect)

    def pg(self, name):
        d = os.path.join(self.tmp, name)
        self.pgs.append(d)
        return run([os.path.join(TOP, "scripts", "pg.sh"), "start", d, "anvil"]).stdout.strip()

    def start(self):
        os.makedirs(self.run_dir, exist_ok=True)
        self.launcher_log = open(os.path.join(self.tmp, "launcher.log"), "a")
        self.proc = subprocess.Popen([os.path.join(BINDIR, "anvil"), "run", "--config-dir", self.etc],
                                     stdout=subprocess.PIPE, stderr=self.launcher_log, cwd="/")
        deadline = time.time() + 90
        buf = b""
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("launcher exited %d:\n%s" % (self.proc.returncode, self.tail()))
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                buf += os.read(self.proc.stdout.fileno(), 65536)
                if b"ANVIL_DIRECTORY=" in buf:
                    return buf.decode()
        raise AssertionError("not ready:\n" + self.tail())

    def stop(self):
        anvil_env.terminate(self.proc)
        self.proc = None

    def tail(self):
        out = []
        for d in (self.log, self.tmp):
            for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                if n.endswith(".log"):
                    with open(os.path.join(d, n), errors="replace") as f:
                        out.append("--- %s\n%s" % (n, "".join(f.readlines()[-15:])))
        return "\n".join(out)


@pytest.fixture(scope="module")
def site():
    missing = [b for b in NEEDED if not os.access(os.path.join(BINDIR, b), os.X_OK)]
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    os.makedirs(os.path.join(BUILD, "tmp"), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="setup-", dir=os.path.join(BUILD, "tmp"))
    os.chmod(tmp, 0o755)
    s = Site(tmp)
    dns = subprocess.Popen(["/usr/bin/pebble-challtestsrv", "-dns01", "127.0.0.1:%d" % DNS_PORT,
                            "-management", "127.0.0.1:%d" % MGMT_PORT, "-http01", "", "-https01", "",
                            "-tlsalpn01", "", "-defaultIPv6", "", "-defaultIPv4", "127.0.0.1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        s.dsn = s.pg("pg")
        yield s
    finally:
        s.stop()
        dns.terminate()
        dns.wait()
        for d in s.pgs:
            subprocess.run([os.path.join(TOP, "scripts", "pg.sh"), "stop", d], capture_output=True)
            if os.path.islink(d):
                shutil.rmtree(os.path.realpath(d), ignore_errors=True)
        if os.environ.get("ANVIL_KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)


def setup_args(site, *extra):
    return [os.path.join(BINDIR, "anvil-admin"), "setup", "--host", "localhost", "--db", site.dsn,
            "--out", site.etc, "--run-dir", site.run_dir, "--log-dir", site.log,
            "--bin-dir", BINDIR, "--schema-dir", os.path.join(TOP, "schema"),
            "--listen", "127.0.0.1", "--port", str(WFE_PORT), "--pki-port", str(BASE + 30), "--debug-port-base", str(BASE + 10),
            "--user", "root", "--admin-user", "root",
            "--private-suffix", "example.test", "--private-network", "127.0.0.0/8",
            "--resolver", "127.0.0.1:%d" % DNS_PORT, "--log-format", "json"] + list(extra)


@pytest.fixture(scope="module")
def ready(site):
    out = run(setup_args(site)).stdout
    assert "next steps" in out and "ca init" in out
    # A second run must not silently replace the operator's set.
    p = run(setup_args(site), expect=1)
    assert "exists" in p.stderr and "--force" in p.stderr
    # Before the ceremony and the HTTPS certificate, --check says what is missing.
    p = run([os.path.join(BINDIR, "anvil-admin"), "setup", "--check", "--dir", site.etc], expect=1)
    assert re.search(r"FAIL +issuers .*issuers\.json", p.stdout), p.stdout
    assert re.search(r"FAIL +secret +wfe\.json tls\.key", p.stdout), p.stdout
    run([os.path.join(BINDIR, "anvil-admin"), "ca", "init", "--dir", os.path.join(site.etc, "pki")])
    tls = os.path.join(site.etc, "tls")
    run(["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", os.path.join(tls, "wfe.key"), "-out", os.path.join(tls, "wfe.pem"),
         "-days", "30", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
    os.chmod(os.path.join(tls, "wfe.key"), 0o644)
    p = run([os.path.join(BINDIR, "anvil-admin"), "check-config", "--dir", site.etc], expect=1)
    assert re.search(r"FAIL +secret +wfe\.json tls\.key.*mode 0644", p.stdout), p.stdout
    os.chmod(os.path.join(tls, "wfe.key"), 0o600)
    site.admin("db", "migrate")
    p = run([os.path.join(BINDIR, "anvil-admin"), "setup", "--check", "--dir", site.etc])
    assert p.stdout.rstrip().endswith(": ok"), p.stdout
    for svc in ["sa", "ca", "va", "ra", "wfe"]:
        assert re.search(r"ok +daemon .*anvil-%s --check" % svc, p.stdout), p.stdout
    ready_out = site.start()
    assert "ANVIL_DIRECTORY=https://localhost:%d/directory" % WFE_PORT in ready_out
    return site


def lego(site, work, name):
    cmd = ["lego", "--server", "https://localhost:%d/directory" % WFE_PORT, "--accept-tos",
           "--email", "ops@example.test", "--path", work, "--http", "--http.port", "127.0.0.1:80",
           "-d", name, "run"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, LEGO_CA_CERTIFICATES=os.path.join(site.etc, "tls", "wfe.pem")))
    assert p.returncode == 0, p.stdout + p.stderr + site.tail()
    leaf = open(os.path.join(work, "certificates", name + ".crt")).read().split("-----END CERTIFICATE-----")[0]
    leaf += "-----END CERTIFICATE-----\n"
    path = os.path.join(work, name + ".leaf.pem")
    with open(path, "w") as f:
        f.write(leaf)
    serial = run(["openssl", "x509", "-in", path, "-noout", "-serial"]).stdout.strip().split("=", 1)[1].lower()
    return serial


def crl_numbers(site):
    out = site.admin("crl", "regenerate").stdout
    nums = [int(n) for n in re.findall(r"number (\d+)", out)]
    assert nums, out
    return nums


@pytest.fixture(scope="module")
def issued(ready):
    work = os.path.join(ready.tmp, "lego")
    keep = lego(ready, work, "keep.example.test")
    gone = lego(ready, work, "gone.example.test")
    ready.admin("revoke", "--serial", gone, "--reason", "superseded")
    acct = json.loads(ready.admin("cert", "show", keep, "--json").stdout)["account_id"]
    return {"keep": keep, "gone": gone, "account": acct}


def test_setup_set_issues_certificates(issued, ready):
    show = json.loads(ready.admin("cert", "show", issued["keep"], "--json").stdout)
    assert show["status"] == "good"
    show = json.loads(ready.admin("cert", "show", issued["gone"], "--json").stdout)
    assert show["status"] == "revoked"


def test_allowlists_deny_other_users(issued, ready):
    """The setup set names its callers: a user not listed is refused."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run as another user")
    p = subprocess.run(["runuser", "-u", "nobody", "--", os.path.join(BINDIR, "anvil-rpc"), "call",
                        "unix:" + os.path.join(ready.run_dir, "sa.sock"), "sa.get_certificate",
                        json.dumps({"serial": issued["keep"]})], capture_output=True, text=True, timeout=30)
    # nobody cannot even open the 0660 socket, or is refused by the allowlist.
    assert p.returncode != 0
    assert "unauthorized" in (p.stdout + p.stderr) or "ermission denied" in (p.stdout + p.stderr)


def test_every_log_line_is_json_with_the_fields(issued, ready):
    """log_format json: one object per line; the audit lines carry the text
    line's key=value fields as JSON fields."""
    seen = {}
    for svc in ["sa", "ca", "va", "ra", "wfe"]:
        path = os.path.join(ready.log, svc + ".log")
        lines = [ln for ln in open(path).read().splitlines() if ln.strip()]
        assert lines, path
        for ln in lines:
            obj = json.loads(ln)  # raises on a non-JSON line
            assert obj["program"] == "anvil-" + svc, ln
            assert obj["level"] in ("DEBUG", "INFO", "WARN", "ERROR", "AUDIT"), ln
            assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", obj["time"]), ln
            assert isinstance(obj["msg"], str)
            if obj["level"] == "AUDIT":
                assert obj["audit"] is True and obj["event"], ln
                seen.setdefault(obj["event"], []).append(obj)
    issuance = [o for o in seen.get("issuance", []) if o.get("serial") == issued["keep"]]
    assert issuance, sorted(seen)
    assert any(o.get("rid") for o in issuance)
    acct = [o for o in seen.get("new-account", []) if o.get("account") == str(issued["account"])]
    assert acct, seen.get("new-account")
    rev = [o for o in seen.get("revocation", []) if o.get("serial") == issued["gone"]]
    assert rev, seen.get("revocation")


def test_log_format_env_wins_over_config(ready):
    """ANVIL_LOG_FORMAT=text overrides the config's json; =json makes an
    error line JSON even before any config is read."""
    p = run([os.path.join(BINDIR, "anvil-sa"), "--config", os.path.join(ready.tmp, "missing.json")],
            expect=1, env={"ANVIL_LOG_FORMAT": "json"})
    obj = json.loads(p.stderr.strip().splitlines()[-1])
    assert obj["level"] == "ERROR" and "missing.json" in obj["msg"]
    bad = os.path.join(ready.tmp, "bad-sa.json")
    doc = json.load(open(os.path.join(ready.etc, "sa.json")))
    doc["log_format"] = "yaml"
    json.dump(doc, open(bad, "w"))
    p = run([os.path.join(BINDIR, "anvil-sa"), "--config", bad, "--check"], expect=1)
    assert "log_format" in p.stderr


def test_backup_restore_into_fresh_cluster(issued, ready):
    site = ready
    before = crl_numbers(site)
    backup_root = os.path.join(site.tmp, "backups")
    out = run([os.path.join(BINDIR, "anvil-admin"), "backup", "--config-dir", site.etc,
               "--out", backup_root]).stdout
    backup = out.strip().splitlines()[-1]
    assert os.path.isfile(os.path.join(backup, "db.dump"))
    assert oct(os.stat(backup).st_mode & 0o777) == "0o700"
    # CRLs published after the dump: the restored counters must pass them.
    published = crl_numbers(site)
    published = crl_numbers(site)
    assert min(published) > max(before)
    site.stop()

    dsn2 = site.pg("pg2")
    p = run([os.path.join(BINDIR, "anvil-admin"), "restore", backup, "--dsn", dsn2,
             "--config-dir", site.etc])
    assert re.search(r"restored: 1 accounts, 2 certificates \(1 revoked\)", p.stdout), p.stdout
    # Restoring twice into the same database is refused (not empty).
    run([os.path.join(BINDIR, "anvil-admin"), "restore", backup, "--dsn", dsn2,
         "--config-dir", site.etc], expect=1)
    with open(os.path.join(site.etc, "sa.dsn"), "w") as f:
        f.write(dsn2 + "\n")
    site.start()
    keep = json.loads(site.admin("cert", "show", issued["keep"], "--json").stdout)
    gone = json.loads(site.admin("cert", "show", issued["gone"], "--json").stdout)
    assert keep["status"] == "good" and gone["status"] == "revoked"
    acct = json.loads(site.admin("account", "show", str(issued["account"]), "--json").stdout)
    assert acct["status"] == "valid"
    after = crl_numbers(site)
    assert min(after) > max(published), (published, after)
