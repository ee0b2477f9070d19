"""Multi-perspective issuance corroboration (issue 27; CA/Browser Forum
Baseline Requirements 3.2.2.9, Ballot SC-067).

Topology (the test runs as root and builds it itself): the whole Anvil of
AnvilEnv (primary VA included) lives in the test's network namespace; each
remote perspective is a network namespace of its own (unique names
mp<pid>-<perspective>), joined to ours by a veth pair (10.231.<n>.0/30), with
its own pebble-challtestsrv (its DNS server and http-01 responder, i.e. its
own view of the Internet) and its own anvil-va with mpic.role "remote",
serving va.remote_* over mutual TLS to the primary's certificate only. The
primary's http-01 view is one more pebble-challtestsrv on loopback.

A "hijack" is a perspective whose view answers differently (another http-01
body, another TXT record, a CAA record naming another CA): what a BGP hijack
or split-horizon DNS near one perspective looks like.

BR 3.2.2.9 quorum: "2-5 remote perspectives: 1 allowed non-corroboration",
so with three remotes one may disagree or be down, two may not. The primary
also requires (mpic.min_regions 2) that the perspectives that agreed span two
regions: eu-west and eu-central are both RIPE, so sa-east (LACNIC) must be
among them.

Ports: AnvilEnv base 27700 (primary http-01 on 27702); the primary view's
challtestsrv management on 27720; in each remote namespace: RPC 9443,
challtestsrv management 8055, DNS 127.0.0.1:8053, http-01 27702.
"""
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402
from anvilrpc import RpcClient, RpcError  # noqa: E402

PORT_BASE = int(os.environ.get("ANVIL_MPIC_PORT_BASE", "27700"))
P_HTTP = PORT_BASE + 2
P_ALPN = PORT_BASE + 1
P_PRIMARY_MGMT = PORT_BASE + 20
REMOTE_RPC_PORT = 9443
REMOTE_MGMT = 8055
VALIDATION_TIMEOUT_S = 5
REMOTE_TIMEOUT_S = 4
TAG = "mp%d" % (os.getpid() % 100000)
PERSPECTIVES = [("eu-west", "RIPE"), ("eu-central", "RIPE"), ("sa-east", "LACNIC")]
PRIMARY = "us-lab"
# the CA's CAA identity: what configs/dev/va.json checks (every perspective
# must check the same one)
with open(os.path.join(anvil_env.TOP, "configs", "dev", "va.json")) as _f:
    CAA_ID = json.load(_f)["caa_identities"][0]
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or not os.path.exists(CHALLTESTSRV),
    reason="needs root, iproute2 and pebble-challtestsrv")


def sh(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def wait_tcp(host, port, timeout=20, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited (%s) before %s:%d opened" % (proc.returncode, host, port))
        try:
            socket.create_connection((host, port), timeout=0.3).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s:%d never opened" % (host, port))


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGCONT)
    except OSError:
        pass
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Perspective:
    """One remote perspective: namespace + veth + challtestsrv + anvil-va."""

    def __init__(self, idx, name, region, tmp, pki, bindir):
        self.name, self.region, self.tmp, self.pki = name, region, tmp, pki
        self.va_bin = os.path.join(bindir, "anvil-va")
        self.ns = "%s-%s" % (TAG, name)
        self.host_if = "%sh%d" % (TAG, idx)
        self.ns_if = "%sn%d" % (TAG, idx)
        self.host_ip = "10.231.%d.1" % (idx + 1)
        self.ip = "10.231.%d.2" % (idx + 1)
        self.nsx = ["ip", "netns", "exec", self.ns]
        self.chall = self.va = None
        self.created = False

    def create(self):
        sh("ip", "netns", "add", self.ns)
        self.created = True
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if,
           "netns", self.ns)
        sh("ip", "addr", "add", self.host_ip + "/30", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        sh(*self.nsx, "ip", "addr", "add", self.ip + "/30", "dev", self.ns_if)
        sh(*self.nsx, "ip", "link", "set", self.ns_if, "up")
        sh(*self.nsx, "ip", "link", "set", "lo", "up")
        log = open(os.path.join(self.tmp, self.name + "-challtestsrv.log"), "w")
        self.chall = subprocess.Popen(
            self.nsx + [CHALLTESTSRV, "-management", ":%d" % REMOTE_MGMT,
                        "-dns01", "127.0.0.1:8053", "-http01", ":%d" % P_HTTP,
                        "-https01", "", "-tlsalpn01", ":%d" % P_ALPN, "-defaultIPv6", ""],
            stdout=log, stderr=subprocess.STDOUT)
        wait_tcp(self.ip, REMOTE_MGMT, proc=self.chall)
        self.start_va()

    def config_path(self):
        path = os.path.join(self.tmp, self.name + "-va.json")
        cfg = {
            "log_level": "info",
            "debug": {"addr": "127.0.0.1", "port": 8103},
            "rpc": {"listen": "tcp:%s:%d" % (self.ip, REMOTE_RPC_PORT), "workers": 16,
                    "tls": {"cert": os.path.join(self.pki, self.name + ".pem"),
                            "key": os.path.join(self.pki, self.name + ".key"),
                            "ca": os.path.join(self.pki, "rpc-ca.pem")},
                    "callers": {"va": ["va-primary"]}},
            # its own resolver: the namespace's challtestsrv
            "dns": {"resolvers": ["127.0.0.1:8053"], "timeout": "1s", "tries": 2},
            "http01_port": P_HTTP, "tlsalpn01_port": P_ALPN,
            "https_port": PORT_BASE + 3,
            "caa_identities": [CAA_ID],
            "validation_timeout": "%ds" % VALIDATION_TIMEOUT_S,
            "network": {"mode": "private", "allow": ["127.0.0.0/8", "::1/128"]},
            "mpic": {"role": "remote", "perspective": self.name, "region": self.region},
        }
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        return path

    def start_va(self):
        log = open(os.path.join(self.tmp, self.name + "-va.log"), "a")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PEBBLE_VA_", "ANVIL_VA_"))}
        self.va = subprocess.Popen(self.nsx + [self.va_bin, "--config", self.config_path()],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_tcp(self.ip, REMOTE_RPC_PORT, proc=self.va)

    def stop_va(self):
        stop(self.va)
        self.va = None

    def mgmt(self, path, body):
        return post("http://%s:%d/%s" % (self.ip, REMOTE_MGMT, path), body)

    def destroy(self):
        stop(self.va)
        stop(self.chall)
        if self.created:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
            self.created = False

    def remote_client(self, identity):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(self.pki, "rpc-ca.pem"))
        ctx.load_cert_chain(os.path.join(self.pki, identity + ".pem"),
                            os.path.join(self.pki, identity + ".key"))
        return RpcClient("tcp:%s:%d" % (self.ip, REMOTE_RPC_PORT), timeout=20,
                         ssl_context=ctx, server_name=self.name)


@pytest.fixture(scope="module")
def mesh():
    build = os.path.abspath(os.environ.get("BUILD", os.path.join(anvil_env.TOP, "build")))
    os.makedirs(os.path.join(build, "tmp"), exist_ok=True)
    tmp = os.path.join(build, "tmp", "mpic-%s" % TAG)
    os.makedirs(tmp, exist_ok=True)
    pki = os.path.join(tmp, "pki")
    bindir = os.path.abspath(os.environ.get("BINDIR", os.path.join(anvil_env.TOP, "bin")))
    sh(os.path.join(anvil_env.TOP, "scripts", "mkipki.sh"), pki, "va-primary", "ra-impostor",
       *[n for n, _ in PERSPECTIVES])
    views = [Perspective(i, n, r, tmp, pki, bindir) for i, (n, r) in enumerate(PERSPECTIVES)]
    primary_view = None
    try:
        for v in views:
            v.create()
        # the primary's own http-01 view (its DNS is AnvilEnv's challtestsrv)
        plog = open(os.path.join(tmp, "primary-challtestsrv.log"), "w")
        primary_view = subprocess.Popen(
            [CHALLTESTSRV, "-management", "127.0.0.1:%d" % P_PRIMARY_MGMT, "-dns01", "",
             "-http01", "127.0.0.1:%d" % P_HTTP, "-https01", "",
             "-tlsalpn01", "127.0.0.1:%d" % P_ALPN],
            stdout=plog, stderr=subprocess.STDOUT)
        wait_tcp("127.0.0.1", P_PRIMARY_MGMT, proc=primary_view)
        yield {"views": {v.name: v for v in views}, "pki": pki, "tmp": tmp}
        for v in views:
            v.stop_va()
        reports = sanitizer_reports(tmp)
        assert not reports, "sanitizer reports in the remote VAs' logs:\n" + reports
    finally:
        stop(primary_view)
        for v in views:
            v.destroy()
        if os.environ.get("ANVIL_KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)


def sanitizer_reports(tmp):
    """ASan/LSan/UBSan reports in the remote VAs' logs (after they stopped,
    so LeakSanitizer has run)."""
    out = []
    for name in sorted(os.listdir(tmp)):
        if not name.endswith("-va.log"):
            continue
        with open(os.path.join(tmp, name), errors="replace") as f:
            text = f.read()
        for m in anvil_env.AnvilEnv.SANITIZER_MARKERS:
            if m in text:
                i = text.index(m)
                out.append("--- %s\n%s" % (name, text[max(0, i - 200):i + 2000]))
                break
    return "\n".join(out)


@pytest.fixture(scope="module")
def env(mesh):
    pki = mesh["pki"]
    remotes = [{"perspective": v.name, "region": v.region,
                "target": "tcp:%s:%d" % (v.ip, REMOTE_RPC_PORT), "connections": 4,
                "tls": {"cert": os.path.join(pki, "va-primary.pem"),
                        "key": os.path.join(pki, "va-primary.key"),
                        "ca": os.path.join(pki, "rpc-ca.pem"), "server_name": v.name}}
               for v in mesh["views"].values()]
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="mpic", config={
            "va.json:validation_timeout": "%ds" % VALIDATION_TIMEOUT_S,
            "va.json:mpic": {"role": "primary", "perspective": PRIMARY, "region": "ARIN",
                             "remotes": remotes, "remote_timeout": "%ds" % REMOTE_TIMEOUT_S,
                             "min_regions": 2},
    }) as e:
        yield e
        reports = a.stop_and_sanitizer_reports(e)
        assert not reports, "sanitizer reports in the service logs:\n" + "\n".join(reports[:40])


# ------------------------------------------------------------ helpers

def primary_mgmt(path, body):
    return post("http://127.0.0.1:%d/%s" % (P_PRIMARY_MGMT, path), body)


def serve_http(mesh, token, ka, wrong=()):
    """Every view answers ka for token, except the perspectives in wrong
    (a different, well-formed key authorization: the hijacker's)."""
    primary_mgmt("add-http01", {"token": token, "content": ka})
    for v in mesh["views"].values():
        v.mgmt("del-http01", {"token": token})
        v.mgmt("add-http01", {"token": token,
                              "content": (token + ".hijacker-thumbprint") if v.name in wrong else ka})


def set_txt(env, mesh, host, value, wrong=()):
    """The TXT record each view answers (set-txt adds: clear first)."""
    env.challtest("clear-txt", {"host": host})
    env.challtest("set-txt", {"host": host, "value": value})
    for v in mesh["views"].values():
        v.mgmt("clear-txt", {"host": host})
        v.mgmt("set-txt", {"host": host, "value": "hijacked-" + value if v.name in wrong else value})


def txt_digest(ka):
    import hashlib
    return a.b64(hashlib.sha256(ka.encode()).digest())


COUNTER = [0]


def fresh(label):
    COUNTER[0] += 1
    name = "%s-%d-%s.test" % (label, COUNTER[0], TAG)
    token = a.b64(os.urandom(24))
    return name, token, token + ".test-thumbprint"


def validate(env, name, chal, token, ka, check_caa=False):
    t0 = time.monotonic()
    r = env.rpc("va", timeout=60).call("va.validate", {
        "identifier": {"type": "dns", "value": name},
        "challenge": {"type": chal, "token": token},
        "key_authorization": ka, "check_caa": check_caa,
        "account_uri": "https://localhost/acme/acct/1"})
    return r, time.monotonic() - t0


def remote_entries(record):
    """perspective -> entry of a validation record's remote perspectives."""
    return {e["perspective"]: e for e in record
            if isinstance(e, dict) and "status" in e and e.get("perspective") != PRIMARY}


def metric(env, name, **labels):
    _, text = env.debug_get("va")
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all('%s="%s"' % (k, v) in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ------------------------------------------------------------ tests

def test_all_perspectives_corroborate(env, mesh):
    name, token, ka = fresh("agree")
    serve_http(mesh, token, ka)
    names = [n for n, _ in PERSPECTIVES]
    before = {n: metric(env, "anvil_va_mpic_remote_total", perspective=n, op="validate",
                        outcome="valid") for n in names}
    r, secs = validate(env, name, "http-01", token, ka)
    print("all agree: %.3f s" % secs)
    assert r["status"] == "valid", r
    rec = r["validation_record"]
    # the primary's own hop is tagged with its perspective
    assert any(e.get("perspective") == PRIMARY and e.get("url") for e in rec), rec
    remotes = remote_entries(rec)
    # BR 3.2.2.9: every remote perspective repeats the check from its own
    # network position; each is in the audit trail with its own hops
    assert set(remotes) <= {n for n, _ in PERSPECTIVES}
    assert sum(1 for e in remotes.values() if e["status"] == "valid") >= 2, remotes
    for e in remotes.values():
        if e["status"] == "valid":
            assert e["validation_record"] and e["validation_record"][0]["url"].endswith(token)
    # every perspective is counted, also one that answered after the decision
    wait_all_answered(env, names, "validate", "valid", before)
    assert metric(env, "anvil_va_mpic_corroborations_total", op="validate",
                  result="corroborated") >= 1


def wait_all_answered(env, perspectives, op, outcome, before, timeout=60):
    """Polls the metrics until every perspective counted one more answer."""
    end = time.time() + timeout
    while True:
        now = {p: metric(env, "anvil_va_mpic_remote_total", perspective=p, op=op, outcome=outcome)
               for p in perspectives}
        if all(now[p] > before.get(p, 0) for p in perspectives):
            return
        assert time.time() < end, "metrics never counted %s/%s for %s" % (op, outcome, perspectives)
        time.sleep(0.1)


def test_one_hijacked_view_is_within_quorum(env, mesh):
    name, token, ka = fresh("hijack1")
    serve_http(mesh, token, ka, wrong=("eu-west",))
    before = {"eu-west": metric(env, "anvil_va_mpic_remote_total", perspective="eu-west",
                                op="validate", outcome="invalid")}
    r, secs = validate(env, name, "http-01", token, ka)
    print("one hijacked: %.3f s" % secs)
    # "2-5 remote perspectives: 1 allowed non-corroboration"
    assert r["status"] == "valid", r
    remotes = remote_entries(r["validation_record"])
    assert remotes["eu-central"]["status"] == "valid" and remotes["sa-east"]["status"] == "valid"
    if remotes["eu-west"]["status"] != "pending":
        assert remotes["eu-west"]["status"] == "invalid"
        assert remotes["eu-west"]["error"]["type"] in ("incorrectResponse", "unauthorized")
    # the disagreeing perspective is counted per perspective and outcome
    wait_all_answered(env, ["eu-west"], "validate", "invalid", before)


def test_two_hijacked_views_lose_the_quorum(env, mesh):
    name, token, ka = fresh("hijack2")
    serve_http(mesh, token, ka, wrong=("eu-west", "eu-central"))
    r, secs = validate(env, name, "http-01", token, ka)
    print("two hijacked: %.3f s" % secs)
    assert r["status"] == "invalid", r
    err = r["error"]
    # a distinct outcome, not a generic connection error: the primary saw
    # the right answer, the other perspectives did not corroborate it
    assert err["type"] == "unauthorized", err
    assert "Multi-perspective corroboration failed" in err["detail"], err
    assert "at most 1 may fail" in err["detail"]
    # RFC 8555 §6.7.1: subproblems name what failed, one per perspective,
    # with the identifier they concern
    subs = {re.match(r"perspective (\S+):", s["detail"]).group(1): s for s in err["subproblems"]}
    assert set(subs) == {"eu-west", "eu-central"}, err
    for s in subs.values():
        assert s["identifier"] == {"type": "dns", "value": name}
        assert s["type"] in ("incorrectResponse", "unauthorized")
    remotes = remote_entries(r["validation_record"])
    assert remotes["eu-west"]["status"] == "invalid" and remotes["eu-central"]["status"] == "invalid"
    assert metric(env, "anvil_va_mpic_corroborations_total", op="validate",
                  result="not_corroborated") >= 1


def test_dns01_split_horizon(env, mesh):
    name, token, ka = fresh("split")
    host = "_acme-challenge.%s." % name
    set_txt(env, mesh, host, txt_digest(ka), wrong=("eu-central",))
    r, _ = validate(env, name, "dns-01", token, ka)
    assert r["status"] == "valid", r
    set_txt(env, mesh, host, txt_digest(ka), wrong=("eu-central", "eu-west"))
    r, _ = validate(env, name, "dns-01", token, ka)
    assert r["status"] == "invalid", r
    assert "Multi-perspective corroboration failed" in r["error"]["detail"]
    subs = [s["detail"] for s in r["error"]["subproblems"]]
    assert any(s.startswith("perspective eu-central:") for s in subs), subs
    assert any(s.startswith("perspective eu-west:") for s in subs), subs
    # the primary itself saw the right record: its own hop is not the failure
    assert remote_entries(r["validation_record"])["eu-central"]["status"] == "invalid"


def caa_everywhere(env, mesh, host, forbid=()):
    env.challtest("add-caa", {"host": host, "policies": [{"tag": "issue", "value": CAA_ID}]})
    for v in mesh["views"].values():
        value = "other-ca.example" if v.name in forbid else CAA_ID
        v.mgmt("add-caa", {"host": host, "policies": [{"tag": "issue", "value": value}]})


def test_corroborators_must_span_two_regions(env, mesh):
    """BR 3.2.2.9 asks that the corroborating remote perspectives lie in at
    least two RIR regions: two agreeing perspectives of one region are a
    quorum by count (3 remotes, 1 may fail) but not by region."""
    name, token, ka = fresh("regions")
    serve_http(mesh, token, ka, wrong=("sa-east",))
    r, _ = validate(env, name, "http-01", token, ka)
    assert r["status"] == "invalid", r
    assert "span 1 region(s), 2 required" in r["error"]["detail"], r
    st = {p: e["status"] for p, e in remote_entries(r["validation_record"]).items()}
    assert st == {"eu-west": "valid", "eu-central": "valid", "sa-east": "invalid"}, st
    # the other single disagreement leaves RIPE + LACNIC: corroborated
    name, token, ka = fresh("regions2")
    serve_http(mesh, token, ka, wrong=("eu-west",))
    r, _ = validate(env, name, "http-01", token, ka)
    assert r["status"] == "valid", r


def test_caa_disagreement(env, mesh):
    name, token, ka = fresh("caa")
    serve_http(mesh, token, ka)
    # one perspective sees a CAA record for another CA: within quorum
    caa_everywhere(env, mesh, name + ".", forbid=("eu-central",))
    r = env.rpc("va").call("va.check_caa", {"identifier": {"type": "dns", "value": name},
                                            "validation_method": "http-01"})
    assert r["ok"] is True, r
    r, _ = validate(env, name, "http-01", token, ka, check_caa=True)
    assert r["status"] == "valid", r

    name2, token2, ka2 = fresh("caa2")
    serve_http(mesh, token2, ka2)
    caa_everywhere(env, mesh, name2 + ".", forbid=("eu-central", "sa-east"))
    r = env.rpc("va").call("va.check_caa", {"identifier": {"type": "dns", "value": name2},
                                            "validation_method": "http-01"})
    assert r["ok"] is False, r
    # RFC 8659 §4: CAA forbids; the problem says from where
    assert r["error"]["type"] == "caa", r
    assert "Multi-perspective corroboration failed" in r["error"]["detail"]
    subs = {s["detail"].split(":")[0] for s in r["error"]["subproblems"]}
    assert subs == {"perspective eu-central", "perspective sa-east"}, r
    st = {p["perspective"]: p["status"] for p in r["perspectives"]}
    assert st["eu-central"] == "invalid" or st["sa-east"] == "invalid", st
    # the same through validation with CAA: remote CAA is part of the
    # remote validation
    r, _ = validate(env, name2, "http-01", token2, ka2, check_caa=True)
    assert r["status"] == "invalid" and r["error"]["type"] == "caa", r


def wait_perspectives_back(env, mesh, names, timeout=30):
    """After a remote was stopped, the primary's RPC client backs off for a
    while (it fails calls fast instead of hammering a dead peer): poll
    corroborated validations until each of names has answered valid again."""
    seen = set()
    end = time.time() + timeout
    while True:
        name, token, ka = fresh("back")
        serve_http(mesh, token, ka)
        r, _ = validate(env, name, "http-01", token, ka)
        seen |= {p for p, e in remote_entries(r["validation_record"]).items()
                 if e["status"] == "valid"}
        if set(names) <= seen:
            return
        assert time.time() < end, "perspectives %s never answered again: %s" % (names, r)
        time.sleep(0.2)


def test_remote_va_down(env, mesh):
    v = mesh["views"]["eu-central"]
    v.stop_va()
    try:
        name, token, ka = fresh("down")
        serve_http(mesh, token, ka)
        r, secs = validate(env, name, "http-01", token, ka)
        print("one remote down: %.3f s" % secs)
        # one missing perspective is one allowed non-corroboration
        assert r["status"] == "valid", r
        name, token, ka = fresh("down2")
        serve_http(mesh, token, ka, wrong=("eu-west",))
        r, secs = validate(env, name, "http-01", token, ka)
        print("one remote down + one hijacked: %.3f s" % secs)
        assert r["status"] == "invalid", r
        subs = {s["detail"].split(":")[0]: s for s in r["error"]["subproblems"]}
        assert set(subs) == {"perspective eu-west", "perspective eu-central"}, r
        # an unreachable perspective is the CA's problem, not the client's
        assert subs["perspective eu-central"]["type"] == "serverInternal"
        assert remote_entries(r["validation_record"])["eu-central"]["status"] == "unavailable"
        assert metric(env, "anvil_va_mpic_remote_total", perspective="eu-central",
                      outcome="unavailable") >= 1
    finally:
        v.start_va()
    wait_perspectives_back(env, mesh, ["eu-central"])


def test_unresponsive_remotes_stay_within_the_deadline(env, mesh):
    """A remote that accepts connections but never answers (SIGSTOP):
    with one, the quorum is reached without waiting for it; with two, the
    validation ends when the remote budget runs out, well inside the RA's
    deadline. Durations are printed, not asserted tightly."""
    views = mesh["views"]
    name, token, ka = fresh("slow")
    serve_http(mesh, token, ka)
    validate(env, name, "http-01", token, ka)  # warm connections
    os.kill(views["eu-central"].va.pid, signal.SIGSTOP)
    try:
        r, one = validate(env, name, "http-01", token, ka)
        assert r["status"] == "valid", r
        os.kill(views["eu-west"].va.pid, signal.SIGSTOP)
        r, two = validate(env, name, "http-01", token, ka)
    finally:
        os.kill(views["eu-central"].va.pid, signal.SIGCONT)
        os.kill(views["eu-west"].va.pid, signal.SIGCONT)
    wait_perspectives_back(env, mesh, ["eu-central", "eu-west"])
    print("one remote stopped: %.3f s; two stopped: %.3f s (remote_timeout %d s, "
          "validation_timeout %d s)" % (one, two, REMOTE_TIMEOUT_S, VALIDATION_TIMEOUT_S))
    assert r["status"] == "invalid", r
    assert "Multi-perspective corroboration failed" in r["error"]["detail"]
    # bounded by validation_timeout (primary) + remote_timeout (remotes)
    assert two < VALIDATION_TIMEOUT_S + REMOTE_TIMEOUT_S + 5, two


def test_remote_serves_only_primary_vas(env, mesh):
    v = mesh["views"]["eu-west"]
    name, token, ka = fresh("direct")
    serve_http(mesh, token, ka)
    params = {"identifier": {"type": "dns", "value": name},
              "challenge": {"type": "http-01", "token": token}, "key_authorization": ka}
    c = v.remote_client("va-primary")
    try:
        r = c.call("va.remote_validate", params)
    finally:
        c.close()
    assert r["status"] == "valid" and r["perspective"] == "eu-west" and r["region"] == "RIPE", r
    # a certificate of the same internal CA that is not a primary VA's
    c = v.remote_client("ra-impostor")
    try:
        with pytest.raises(RpcError) as ei:
            c.call("va.remote_validate", params)
        assert ei.value.problem["type"] == "unauthorized"
        # va.validate is the RA's method: the remote refuses it too
        with pytest.raises(RpcError) as ei:
            c.call("va.validate", params)
        assert ei.value.problem["type"] == "unauthorized"
    finally:
        c.close()
    # the primary does not answer va.remote_* (its callers have no "va")
    with pytest.raises(RpcError) as ei:
        env.rpc("va").call("va.remote_validate", params)
    assert ei.value.problem["type"] == "unauthorized"


def test_tls_alpn01_hijacked_views(env, mesh):
    """tls-alpn-01 (RFC 8737) goes through the same corroboration: one view
    serving another acmeIdentifier is absorbed, two are not."""
    def serve(name, ka, wrong):
        primary_mgmt("add-tlsalpn01", {"host": name, "content": ka})
        for v in mesh["views"].values():
            v.mgmt("del-tlsalpn01", {"host": name})
            v.mgmt("add-tlsalpn01", {"host": name,
                                     "content": ka + ".hijacked" if v.name in wrong else ka})
    name, token, ka = fresh("alpn")
    serve(name, ka, ("eu-west",))
    r, _ = validate(env, name, "tls-alpn-01", token, ka)
    assert r["status"] == "valid", json.dumps(r, indent=1)
    serve(name, ka, ("eu-west", "sa-east"))
    r, _ = validate(env, name, "tls-alpn-01", token, ka)
    assert r["status"] == "invalid", r
    subs = sorted(s["detail"].split(":")[0] for s in r["error"]["subproblems"])
    assert subs == ["perspective eu-west", "perspective sa-east"], r


def test_dns_account01_split_horizon(env, mesh):
    """dns-account-01: the remote derives the same account label from the
    account_uri the primary got, and checks it in its own DNS view."""
    import base64
    import hashlib
    acct = "https://localhost/acme/acct/1"
    label = "_" + base64.b32encode(hashlib.sha256(acct.encode()).digest()[:10]).decode().lower().rstrip("=")
    name, token, ka = fresh("acctlabel")
    host = "%s._acme-challenge.%s." % (label, name)
    set_txt(env, mesh, host, txt_digest(ka), wrong=("eu-central",))
    r, _ = validate(env, name, "dns-account-01", token, ka)
    assert r["status"] == "valid", r
    set_txt(env, mesh, host, txt_digest(ka), wrong=("eu-central", "eu-west", "sa-east"))
    r, _ = validate(env, name, "dns-account-01", token, ka)
    assert r["status"] == "invalid", r
    assert len(r["error"]["subproblems"]) >= 2, r


def test_remote_methods_take_the_primary_params():
    """The primary forwards its own va.validate / va.check_caa params
    unchanged: the remote methods must accept exactly the same keys, or a
    new parameter would make every corroboration fail as malformed."""
    out = subprocess.run([os.path.join(os.path.abspath(os.environ.get(
        "BINDIR", os.path.join(anvil_env.TOP, "bin"))), "anvil-rpc"), "methods"],
        check=True, capture_output=True, text=True).stdout
    reg = {m["name"]: m for m in json.loads(out)}
    for local, remote in (("va.validate", "va.remote_validate"),
                          ("va.check_caa", "va.remote_check_caa")):
        assert reg[local]["params"] == reg[remote]["params"], (local, remote)
        assert reg[remote]["callers"] == ["va"]


def acme_attempt(env, mesh, raw, key, kid, wrong):
    name = "acme-%d-%s.test" % (COUNTER[0], TAG)
    COUNTER[0] += 1
    order_url, order = a.new_order(raw, key, kid, [name])
    az_url = order["authorizations"][0]
    az = raw.post(az_url, None, key, kid=kid).json()
    ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
    ka = ch["token"] + "." + key.thumbprint()
    serve_http(mesh, ch["token"], ka, wrong=wrong)
    r = raw.post(ch["url"], {}, key, kid=kid)
    assert r.status_code == 200, r.text
    az = a.poll(raw, key, kid, az_url, ("valid", "invalid"), timeout=60)
    return name, order_url, order, az


def test_acme_issuance_under_quorum_and_problem_document(env, mesh):
    raw = a.Wfe(env.directory_url, verify=env.trust_path)
    key, kid = a.new_account(raw)
    # one perspective hijacked: the certificate is still issued
    name, order_url, order, az = acme_attempt(env, mesh, raw, key, kid, wrong=("eu-central",))
    assert az["status"] == "valid", az
    order = a.poll(raw, key, kid, order_url, ("ready",))
    done, pem, _ = a.finalize(raw, key, kid, order_url, order, [name])
    assert "BEGIN CERTIFICATE" in pem
    # the authorization's audit trail (SA) holds every perspective
    rec = a.sa_authz(env, order["authorizations"][0])
    chall = [c for c in rec["challenges"] if c["type"] == "http-01"][0]
    persp = {e.get("perspective") for e in chall["validation_record"]}
    assert PRIMARY in persp and "eu-west" in persp and "sa-east" in persp, chall

    # two hijacked: the challenge is invalid and its problem document says
    # which perspectives failed and why
    name, order_url, order, az = acme_attempt(env, mesh, raw, key, kid,
                                              wrong=("eu-central", "eu-west"))
    assert az["status"] == "invalid", az
    ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
    err = ch["error"]
    assert err["type"] == "urn:ietf:params:acme:error:unauthorized", err
    assert "Multi-perspective corroboration failed" in err["detail"]
    subs = sorted(s["detail"].split(":")[0] for s in err["subproblems"])
    assert subs == ["perspective eu-central", "perspective eu-west"], err
    for s in err["subproblems"]:
        assert s["identifier"] == {"type": "dns", "value": name}
        assert s["type"].startswith("urn:ietf:params:acme:error:")
    persp = {e.get("perspective"): e.get("status") for e in ch.get("validationRecord", [])
             if "status" in e}
    assert persp.get("eu-west") == "invalid" and persp.get("eu-central") == "invalid", ch
