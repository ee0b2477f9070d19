"""Test-target mode (issue 12) seen from a client: configs/testmode with the
Pebble-named environment knobs, run-time fault injection through the
management listener, Pebble-compatible management endpoints whose PEM
verifies the issued chain, slow finalize, start-up time; and
configs/pebble-compat relocated with mkconfig, driven by lego.
Ports: 28000-28999 (testmode env base 28000, pebble-compat env base 28200).
"""
import base64
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as ra  # noqa: E402

BASE = 28000
PC_BASE = 28200
NONCE_REJECT = 20
SLOW_FINALIZE_S = 2


class Client(ra.Wfe):
    """ra.Wfe that retries badNonce with the nonce of the refusal, as every
    ACME client must (RFC 8555 section 6.5); counts the refusals."""

    def __init__(self, url, verify):
        super().__init__(url, verify=verify)
        self.bad_nonces = 0
        self.next_nonce = None

    def post(self, url, payload, key, kid=None, nonce=None, **kw):
        for _ in range(50):
            n = self.next_nonce or self.nonce()
            self.next_nonce = None
            r = self.post_raw(url, key.jws(url, payload, nonce=n, kid=kid, **kw))
            self.next_nonce = r.headers.get("Replay-Nonce")
            if r.status_code == 400 and "badNonce" in r.text:
                self.bad_nonces += 1
                continue
            return r
        raise AssertionError("50 badNonce in a row")


def mgmt(env):
    return "http://127.0.0.1:%d" % env.ports["mgmt"]


def launcher_start_s(env):
    """Stops env's launcher, starts it again on the same tree and database,
    returns the seconds to the ANVIL_ lines."""
    env.proc.send_signal(signal.SIGTERM)
    env.proc.wait(timeout=60)
    t0 = time.time()
    env.proc = subprocess.Popen([os.path.join(env.bin_dir, "anvil"), "run", "--config-dir", env.cfg_dir],
                                env=env.env, cwd=anvil_env.TOP, stdout=subprocess.PIPE,
                                stderr=env.launcher_log)
    buf = b""
    while b"ANVIL_MANAGEMENT=" not in buf:
        assert env.proc.poll() is None, env.logs_tail()
        # AnvilEnv's own start allows 90 s on a busy machine
        assert time.time() - t0 < 90, "no ANVIL_ lines after 90 s"
        r, _, _ = select.select([env.proc.stdout], [], [], 0.2)
        if r:
            buf += os.read(env.proc.stdout.fileno(), 65536)
    return time.time() - t0, buf.decode()


@pytest.fixture(scope="module")
def env():
    t0 = time.time()
    e = anvil_env.AnvilEnv(port_base=BASE, name="testmode", src="configs/testmode",
                           env={"PEBBLE_VA_ALWAYS_VALID": "1", "PEBBLE_VA_NOSLEEP": "1",
                                "PEBBLE_WFE_NONCEREJECT": str(NONCE_REJECT),
                                "PEBBLE_AUTHZREUSE": "0",
                                "ANVIL_RA_SLOW_FINALIZE": "%ds" % SLOW_FINALIZE_S},
                           config={"ra.json:finalize.retry_after": "4s"})
    with e:
        e.fresh_start_s = time.time() - t0
        yield e


@pytest.fixture(scope="module")
def cli(env):
    return Client(env.directory_url, env.trust_path)


@pytest.fixture(scope="module")
def acct(cli):
    key = ra.Key()
    r = cli.post(cli.dir["newAccount"], {"termsOfServiceAgreed": True}, key)
    assert r.status_code == 201, r.text
    return key, r.headers["Location"]


@pytest.fixture(scope="module")
def issued(cli, acct):
    """One certificate through always-valid (nothing answers http-01 in
    configs/testmode: challtestsrv has its http-01 server off) and the slow
    finalize; records how long the order stayed processing."""
    key, kid = acct
    url, order = ra.ready_order(cli, key, kid, names=["nobody-answers.test"])
    t0 = time.time()
    r = cli.post(order["finalize"], {"csr": ra.b64(ra.make_csr(
        ra.ec.generate_private_key(ra.ec.SECP256R1()), ["nobody-answers.test"]))}, key, kid=kid)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "processing"
    # the RA's estimate (finalize.retry_after 4s), not the WFE's 1s default
    assert r.headers["Retry-After"] == "4", r.headers
    states = []
    while True:
        o = cli.post(url, None, key, kid=kid).json()
        states.append((time.time() - t0, o["status"]))
        if o["status"] != "processing":
            break
        assert time.time() - t0 < 90, states
        time.sleep(0.2)
    assert o["status"] == "valid", o
    pem = cli.post(o["certificate"], None, key, kid=kid).text
    return {"pem": pem, "states": states, "order": o}


# ------------------------------------------------------------ start-up

def test_startup_prints_directory_and_trust(env):
    """Start-up prints the ANVIL_ lines. How long it takes is printed for the
    record, not asserted: tests never assert timings (a busy 2-core CI machine
    is slower); make bench measures it."""
    secs, out = launcher_start_s(env)
    print("testmode start-up: %.2f s (launcher to ANVIL_ lines, tree built, database kept); "
          "%.2f s with a fresh private database (bootstrap + launcher)" % (secs, env.fresh_start_s))
    assert "ANVIL_DIRECTORY=https://localhost:%d/directory" % env.ports["wfe"] in out
    assert "ANVIL_TRUST=" in out and "ANVIL_MANAGEMENT=http://127.0.0.1:%d" % env.ports["mgmt"] in out


def test_tkauth_token_authority_is_trusted(env, tmp_path):
    """tkauth-01 is on in test mode with a Token Authority a client
    developer can use at once: scripts/bootstrap.sh made it in this var
    directory, `anvil-admin tkauth token` (configs/testmode/admin.json)
    signs with it, and the token's x5c chains to the VA's tkauth.roots (RFC
    9448 §6 step 3: "the trusted issuer of Authority Tokens"). (The VA here
    runs always-valid; test_ext_tkauth.py has the VA check such tokens.)"""
    with open(os.path.join(env.cfg_dir, "va.json")) as f:
        roots = json.load(f)["tkauth"]["roots"]
    jwk = tmp_path / "account.jwk"
    jwk.write_text(json.dumps(ra.Key().jwk))
    p = subprocess.run([os.path.join(env.bin_dir, "anvil-admin"), "tkauth", "token", "--json",
                        "--config", os.path.join(env.cfg_dir, "admin.json"),
                        "--tnauthlist", "MAigBhYENzA5Sg", "--account-key", str(jwk)],
                       capture_output=True, text=True, timeout=60, cwd=anvil_env.TOP)
    assert p.returncode == 0, p.stdout + p.stderr
    h = json.loads(p.stdout)["atc"].split(".")[0]
    hdr = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    certs = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in hdr["x5c"]]
    for name, c in (("leaf.pem", certs[0]), ("rest.pem", certs[-1])):
        (tmp_path / name).write_bytes(c.public_bytes(serialization.Encoding.PEM))
    v = subprocess.run(["openssl", "verify", "-CAfile", roots, "-untrusted", str(tmp_path / "rest.pem"),
                        str(tmp_path / "leaf.pem")], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr


def test_dir_alias(cli):
    r = cli.s.get(cli.base + "/dir", timeout=10)
    assert r.status_code == 200
    assert r.json()["newOrder"] == cli.dir["newOrder"]


# ------------------------------------------------------------ knobs

def test_nonce_reject_rate_2000(cli, acct):
    key, kid = acct
    cli.bad_nonces = 0
    done = 0
    n = cli.nonce()
    total = 2000
    for _ in range(total):
        r = cli.post_raw(kid, key.jws(kid, None, nonce=n, kid=kid))
        n = r.headers["Replay-Nonce"]
        if r.status_code == 400:
            assert r.json()["type"] == "urn:ietf:params:acme:error:badNonce", r.text
            cli.bad_nonces += 1
        else:
            assert r.status_code == 200, r.text
        done += 1
    rate = cli.bad_nonces / total
    print("nonce rejection: %d of %d (%.1f%%, configured %d%%)" % (cli.bad_nonces, total, rate * 100, NONCE_REJECT))
    # binomial(2000, 0.2): sd 17.9; 5 sd either side
    assert 310 <= cli.bad_nonces <= 490, cli.bad_nonces


def test_always_valid_and_slow_finalize(issued):
    states = issued["states"]
    processing = [t for t, s in states if s == "processing"]
    assert processing and max(processing) >= SLOW_FINALIZE_S - 0.5, states
    assert states[-1][1] == "valid" and states[-1][0] >= SLOW_FINALIZE_S - 0.2, states
    leaf = x509.load_pem_x509_certificate(issued["pem"].encode())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["nobody-answers.test"]


def test_authz_reuse_zero(cli, acct, issued):
    """PEBBLE_AUTHZREUSE=0: a second order for a name with a valid authz
    gets a new authorization."""
    key, kid = acct
    url, order = ra.new_order(cli, key, kid, ["nobody-answers.test"])
    first = [a for a in issued["order"]["authorizations"]]
    assert order["authorizations"][0] not in first
    assert cli.post(order["authorizations"][0], None, key, kid=kid).json()["status"] == "pending"


# ------------------------------------------------------------ management

def _pem_certs(text):
    end = "-----END CERTIFICATE-----"
    blocks = [b + end for b in text.split(end) if "-----BEGIN CERTIFICATE-----" in b]
    return [x509.load_pem_x509_certificate(b.strip().encode()) for b in blocks]


def _verify(leaf_pem, root_pem, int_pem, tmp):
    for n, v in (("leaf", leaf_pem), ("root", root_pem), ("int", int_pem)):
        with open(os.path.join(tmp, n + ".pem"), "w") as f:
            f.write(v)
    out = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(tmp, "root.pem"),
                          "-untrusted", os.path.join(tmp, "int.pem"), os.path.join(tmp, "leaf.pem")],
                         capture_output=True, text=True)
    return out.returncode == 0, out.stdout + out.stderr


def _pub(obj):
    return obj.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def test_management_chain_and_keys_verify(env, issued, tmp_path):
    leaf_pem = _pem_certs(issued["pem"])[0].public_bytes(serialization.Encoding.PEM).decode()
    for n in (0, 1):
        root = requests.get(mgmt(env) + "/roots/%d" % n, timeout=10)
        inter = requests.get(mgmt(env) + "/intermediates/%d" % n, timeout=10)
        assert root.status_code == 200 and inter.status_code == 200, (root.text, inter.text)
        assert root.text.startswith("-----BEGIN CERTIFICATE-----")
        ok, msg = _verify(leaf_pem, root.text, inter.text, str(tmp_path))
        assert ok, "chain %d: %s" % (n, msg)
        rk = requests.get(mgmt(env) + "/root-keys/%d" % n, timeout=10)
        ik = requests.get(mgmt(env) + "/intermediate-keys/%d" % n, timeout=10)
        assert rk.status_code == 200 and ik.status_code == 200
        rkey = serialization.load_pem_private_key(rk.content, None)
        ikey = serialization.load_pem_private_key(ik.content, None)
        assert _pub(rkey) == _pub(_pem_certs(root.text)[0])
        assert _pub(ikey) == _pub(_pem_certs(inter.text)[0])
    # a wrong chain does not verify (the check above can fail)
    other = requests.get(mgmt(env) + "/roots/0", timeout=10).text
    bad_int = requests.get(mgmt(env) + "/intermediates/1", timeout=10).text
    ok, _ = _verify(leaf_pem, other, bad_int, str(tmp_path))
    assert not ok
    for p in ("/roots/7", "/root-keys/7", "/intermediate-keys/9", "/roots/x", "/nothing"):
        assert requests.get(mgmt(env) + p, timeout=10).status_code == 404, p


def test_cert_status_by_serial(env, cli, acct, issued):
    key, kid = acct
    leaf = _pem_certs(issued["pem"])[0]
    serial = "%x" % leaf.serial_number
    url = mgmt(env) + "/cert-status-by-serial/" + ra.serial_hex(leaf)
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["Status"] == "Valid" and body["Serial"].lstrip("0") == serial.lstrip("0")
    assert _pem_certs(body["Certificate"])[0] == leaf
    rv = cli.post(cli.dir["revokeCert"], {"certificate": ra.leaf_der_b64(leaf), "reason": 4}, key, kid=kid)
    assert rv.status_code == 200, rv.text
    body = requests.get(url, timeout=10).json()
    assert body["Status"] == "Revoked" and body["Reason"] == 4 and body["RevokedAt"]
    assert requests.get(mgmt(env) + "/cert-status-by-serial/ffff0000", timeout=10).status_code == 404


# ------------------------------------------------------------ faults

def _set_faults(env, body):
    r = requests.post(mgmt(env) + "/faults", data=json.dumps(body), timeout=10)
    return r


def test_faults_off_by_default_and_runtime_change(env, cli, acct):
    key, kid = acct
    assert requests.get(mgmt(env) + "/faults", timeout=10).json() == {}
    assert cli.post(kid, None, key, kid=kid).status_code == 200
    # 100% 503 with a chosen Retry-After on every POST
    r = _set_faults(env, {"unavailable_percent": 100, "retry_after": 7})
    assert r.status_code == 200 and r.json()["unavailable_percent"] == 100
    assert requests.get(mgmt(env) + "/faults", timeout=10).json()["retry_after"] == 7
    r = cli.post(cli.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "f.test"}]}, key, kid=kid)
    assert r.status_code == 503 and r.headers["Retry-After"] == "7", r.text
    assert r.json()["type"].startswith("urn:ietf:params:acme:error:")
    # GETs are not touched by the top-level percentages
    assert cli.s.get(env.directory_url, timeout=10).status_code == 200
    # 500
    _set_faults(env, {"internal_percent": 100})
    r = cli.post(kid, None, key, kid=kid)
    assert r.status_code == 500 and r.json()["type"] == "urn:ietf:params:acme:error:serverInternal"
    # 429 on one endpoint only (any method), others untouched
    _set_faults(env, {"endpoints": {"new-nonce": {"rate_limited_percent": 100}}})
    r = cli.s.head(cli.dir["newNonce"], timeout=10)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert cli.post_raw(kid, key.jws(kid, None, nonce=r.headers["Replay-Nonce"], kid=kid)).status_code in (200, 400)
    # a bad body is refused and changes nothing
    for bad in ('{"internal_percent": 101}', '{"teapot_percent": 1}', "nope",
                '{"internal_percent": 60, "unavailable_percent": 60}',
                '{"endpoints": {"no-such-route": {"internal_percent": 1}}}'):
        r = requests.post(mgmt(env) + "/faults", data=bad, timeout=10)
        assert r.status_code == 400 and "malformed" in r.json()["type"], bad
    assert "endpoints" in requests.get(mgmt(env) + "/faults", timeout=10).json()
    # off again
    assert _set_faults(env, None).status_code == 200
    assert requests.get(mgmt(env) + "/faults", timeout=10).json() == {}
    assert cli.s.head(cli.dir["newNonce"], timeout=10).status_code == 200


def test_fault_rate_statistical(env, cli, acct):
    key, kid = acct
    _set_faults(env, {"endpoints": {"directory": {"unavailable_percent": 30}}})
    try:
        codes = [cli.s.get(env.directory_url, timeout=10) for _ in range(600)]
    finally:
        _set_faults(env, None)
    n503 = sum(1 for r in codes if r.status_code == 503)
    assert all(r.status_code in (200, 503) for r in codes)
    assert all("Retry-After" in r.headers for r in codes if r.status_code == 503)
    print("injected 503 on /directory: %d of 600 (configured 30%%)" % n503)
    # binomial(600, 0.3): sd 11.2; 5 sd
    assert 124 <= n503 <= 236, n503


# ------------------------------------------------------------ --reset

def _run_sh(env, args):
    """scripts/run.sh ARGS on env's relocated config; returns (seconds to
    the ANVIL_ lines, output, process)."""
    e = dict(env.env, ANVIL_RUN_CONFIG_DIR=env.cfg_dir, ANVIL_RUN_VAR_DIR=env.var_dir,
             BINDIR=env.bin_dir)
    t0 = time.time()
    p = subprocess.Popen([os.path.join(anvil_env.TOP, "scripts", "run.sh")] + args, env=e,
                         cwd=anvil_env.TOP, stdout=subprocess.PIPE, stderr=env.launcher_log,
                         start_new_session=True)
    buf = b""
    while b"ANVIL_MANAGEMENT=" not in buf:
        if p.poll() is not None or time.time() - t0 > 60:
            os.killpg(p.pid, signal.SIGINT)
            raise AssertionError("run.sh did not start:\n" + env.logs_tail())
        r, _, _ = select.select([p.stdout], [], [], 0.2)
        if r:
            buf += os.read(p.stdout.fileno(), 65536)
    return time.time() - t0, buf.decode(), p


def _stop(p):
    os.killpg(p.pid, signal.SIGINT)
    p.wait(timeout=60)


def test_reset_fresh_database(env, cli, acct):
    """run.sh --test-mode --reset: the database is thrown away (the account
    made above is gone) and the restart serves a fresh database; the time it
    takes is printed, not asserted (tests never assert timings).
    The first --reset of a tree makes the pristine copy (a real initdb)."""
    key, kid = acct
    env.proc.send_signal(signal.SIGTERM)
    env.proc.wait(timeout=30)
    first, _, p = _run_sh(env, ["--test-mode", "--reset"])
    _stop(p)
    secs, out, p = _run_sh(env, ["--test-mode", "--reset"])
    try:
        print("run.sh --test-mode --reset: %.2f s to the ANVIL_ lines with a fresh database "
              "(first --reset, with initdb: %.2f s)" % (secs, first))
        assert "ANVIL_DIRECTORY=https://localhost:%d/directory" % env.ports["wfe"] in out
        c = Client(env.directory_url, env.trust_path)
        r = c.post(kid, None, key, kid=kid)
        assert r.status_code == 400 and r.json()["type"].endswith(":accountDoesNotExist"), r.text
        r = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, ra.Key())
        assert r.status_code == 201, r.text
    finally:
        _stop(p)


# ------------------------------------------------------------ pebble-compat

@pytest.fixture(scope="module")
def pebble_env():
    """configs/pebble-compat relocated (14000 -> base+40, 15000 -> base+50,
    5002 -> base+2, 8053 -> base+53); like a Pebble user, the test runs
    pebble-challtestsrv itself as the DNS server."""
    dns = subprocess.Popen(["/usr/bin/pebble-challtestsrv", "-dns01", "127.0.0.1:%d" % (PC_BASE + 53),
                            "-management", "127.0.0.1:%d" % (PC_BASE + 55), "-http01", "",
                            "-https01", "", "-tlsalpn01", "", "-defaultIPv6", ""],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with anvil_env.AnvilEnv(port_base=PC_BASE, name="pebble-compat", src="configs/pebble-compat",
                                env={"PEBBLE_VA_NOSLEEP": "1"},
                                config={"ra.json:rate_limits": {
                                    "new_accounts_per_ip": {"limit": 3, "period": "1h"}}}) as e:
            e.ports["wfe"] = PC_BASE + 40
            e.ports["mgmt"] = PC_BASE + 50
            e.directory_url = "https://localhost:%d/dir" % (PC_BASE + 40)
            yield e
    finally:
        dns.send_signal(signal.SIGTERM)
        dns.wait(timeout=10)


def test_pebble_compat_lego(pebble_env, tmp_path):
    env = pebble_env
    assert "ANVIL_DIRECTORY=https://localhost:%d/dir" % (PC_BASE + 40) in env.ready_output
    out = subprocess.run(["lego", "--server", env.directory_url, "--accept-tos", "--email", "tt@example.test",
                          "--path", str(tmp_path / "lego"), "--http", "--http.port",
                          "127.0.0.1:%d" % (PC_BASE + 2), "-d", "lego-compat.example.test", "run"],
                         env=dict(os.environ, LEGO_CA_CERTIFICATES=env.trust_path),
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    crt = (tmp_path / "lego" / "certificates" / "lego-compat.example.test.crt").read_text()
    chain = _pem_certs(crt)
    # the management API (HTTPS like Pebble's) serves the matching root
    root = requests.get("https://localhost:%d/roots/0" % env.ports["mgmt"], verify=env.trust_path, timeout=10)
    assert root.status_code == 200
    with open(str(tmp_path / "root.pem"), "w") as f:
        f.write(root.text)
    with open(str(tmp_path / "chain.pem"), "w") as f:
        f.write("".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain[1:]))
    with open(str(tmp_path / "leaf.pem"), "w") as f:
        f.write(chain[0].public_bytes(serialization.Encoding.PEM).decode())
    v = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "root.pem"), "-untrusted",
                        str(tmp_path / "chain.pem"), str(tmp_path / "leaf.pem")], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr


def test_pebble_compat_key_policy(pebble_env):
    """Pebble's permissive account keys: RSA 1024 accepted; 127.0.0.1 also
    answers as the server's name."""
    env = pebble_env
    cli = Client("https://127.0.0.1:%d/dir" % env.ports["wfe"], False)
    assert cli.dir["newAccount"].startswith("https://127.0.0.1:%d/" % env.ports["wfe"])
    key = ra.Key(priv=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    r = cli.post(cli.dir["newAccount"], {"termsOfServiceAgreed": True}, key)
    assert r.status_code == 201, r.text
    kid = r.headers["Location"]
    assert kid.startswith("https://127.0.0.1:%d/acme/acct/" % env.ports["wfe"])
    # the stored 1024-bit key keeps working for kid-signed requests
    assert cli.post(kid, None, key, kid=kid).status_code == 200


def test_pebble_compat_client_ip_limit(pebble_env):
    """The WFE passes the TCP peer as client_ip: the RA's
    new-accounts-per-IP limit (3 here) stops the 4th account at the latest."""
    cli = Client(pebble_env.directory_url, pebble_env.trust_path)
    codes = []
    for _ in range(5):
        r = cli.post(cli.dir["newAccount"], {"termsOfServiceAgreed": True}, ra.Key())
        codes.append(r.status_code)
        if r.status_code == 429:
            assert r.json()["type"].endswith(":rateLimited") and "Retry-After" in r.headers, r.text
            break
        assert r.status_code == 201, r.text
    assert codes[-1] == 429 and len(codes) <= 4, codes
