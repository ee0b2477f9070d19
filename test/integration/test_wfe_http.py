"""anvil-wfe on its own: HTTP, nonce and JWS layers over real HTTPS.

Everything here is decided by the WFE before it makes an RPC call, so no
other service runs: the RA/SA/CA sockets point at nothing, and a request
that gets past every check is answered 503 (RPC unavailable) -- which is
itself a behaviour under test. Ports 21560-21569 (wfe range 21500-21599).

The small JWS client below (`Key`, `Wfe`) is reused by test_wfe_acme.py.
"""
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
import datetime
import ipaddress

urllib3.disable_warnings()

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINDIR = os.path.abspath(os.environ.get("BINDIR", os.path.join(TOP, "bin")))
PORT_A = 21561
PORT_B = 21562


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """An account key that signs flattened JWS (ES256 or RS256)."""

    def __init__(self, kind="ec", priv=None):
        if priv is not None:
            priv = getattr(priv, "_wrapped", priv)  # josepy's ComparableKey
            kind = "rsa" if isinstance(priv, rsa.RSAPrivateKey) else "ec"
        if kind == "ec":
            self.priv = priv or ec.generate_private_key(ec.SECP256R1())
            n = self.priv.public_key().public_numbers()
            self.jwk = {"crv": "P-256", "kty": "EC",
                        "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
            self.alg = "ES256"
        else:
            self.priv = priv or rsa.generate_private_key(public_exponent=65537, key_size=2048)
            n = self.priv.public_key().public_numbers()
            self.jwk = {"e": b64(n.e.to_bytes(3, "big")), "kty": "RSA",
                        "n": b64(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big"))}
            self.alg = "RS256"

    def thumbprint(self):
        return b64(hashlib.sha256(json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()).digest())

    def sign_raw(self, data):
        if self.alg == "ES256":
            r, s = decode_dss_signature(self.priv.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.priv.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def jws(self, url, payload, nonce=None, kid=None, embed=True, extra=None, alg=None):
        """Flattened JWS; payload None = POST-as-GET, dict = JSON, str/bytes raw."""
        prot = {"alg": alg or self.alg, "url": url}
        if nonce is not None:
            prot["nonce"] = nonce
        if kid is not None:
            prot["kid"] = kid
        elif embed:
            prot["jwk"] = self.jwk
        if extra:
            prot.update(extra)
        if payload is None:
            p = ""
        elif isinstance(payload, (dict, list)):
            p = b64(json.dumps(payload))
        else:
            p = b64(payload)
        ph = b64(json.dumps(prot))
        sig = self.sign_raw(("%s.%s" % (ph, p)).encode())
        return {"protected": ph, "payload": p, "signature": b64(sig)}


class Wfe:
    """A thin ACME client over requests, for tests that need raw control."""

    def __init__(self, directory_url, verify=False):
        self.s = requests.Session()
        self.s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self.s.verify = verify
        self.directory_url = directory_url
        self.dir = self.s.get(directory_url, timeout=30).json()
        self.base = directory_url.rsplit("/directory", 1)[0]

    def nonce(self):
        r = self.s.head(self.dir["newNonce"], timeout=30)
        assert r.status_code == 200
        return r.headers["Replay-Nonce"]

    def post_raw(self, url, body, ctype="application/jose+json", headers=None):
        h = {"Content-Type": ctype}
        h.update(headers or {})
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.s.post(url, data=data, headers=h, timeout=60)

    def post(self, url, payload, key, kid=None, nonce=None, **kw):
        if nonce is None:
            nonce = self.nonce()
        return self.post_raw(url, key.jws(url, payload, nonce=nonce, kid=kid, **kw))


def make_tls(d):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    with open(os.path.join(d, "tls.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(d, "tls.key"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(os.path.join(d, "tls.key"), 0o600)
    return os.path.join(d, "tls.pem")


def wait_port(port, proc, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("anvil-wfe exited with %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("anvil-wfe did not listen on %d" % port)


def start_wfe(d, port, prefix, **over):
    cfg = {
        "log_level": "info",
        "listen": {"addr": "127.0.0.1", "port": port},
        "tls": {"cert": os.path.join(d, "tls.pem"), "key": os.path.join(d, "tls.key")},
        "base_url": "https://localhost:%d" % port,
        "hosts": ["127.0.0.1:%d" % port],
        "threads": 4,
        "max_body": 4096,
        "nonce": {"prefix": prefix, "lifetime": "3s"},
        "directory": {"terms_of_service": "https://localhost/tos", "caa_identities": ["anvil.test"]},
        "ra": {"target": "unix:%s/ra.sock" % d, "timeout": "2s"},
        "sa": {"target": "unix:%s/sa.sock" % d, "timeout": "2s"},
        "ca": {"target": "unix:%s/ca.sock" % d, "timeout": "2s"},
    }
    cfg.update(over)
    path = os.path.join(d, "wfe-%s.json" % prefix)
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(d, "wfe-%s.log" % prefix), "w")
    proc = subprocess.Popen([os.path.join(BINDIR, "anvil-wfe"), "--config", path],
                            stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, proc)
    return proc


@pytest.fixture(scope="module")
def wfes():
    d = tempfile.mkdtemp(prefix="wfe-http-")
    trust = make_tls(d)
    a = start_wfe(d, PORT_A, "a1")
    b = start_wfe(d, PORT_B, "b2")
    try:
        yield (Wfe("https://localhost:%d/directory" % PORT_A, verify=trust),
               Wfe("https://localhost:%d/directory" % PORT_B, verify=trust))
    finally:
        for p in (a, b):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if os.environ.get("ANVIL_KEEP_TMP") != "1":
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def wfe(wfes):
    return wfes[0]


def problem(r, status, typ):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "urn:ietf:params:acme:error:" + typ, body
    assert body["status"] == status
    assert r.headers.get("Replay-Nonce"), "every error carries a fresh nonce"
    assert 'rel="index"' in r.headers.get("Link", "")
    return body


# ---------------------------------------------------------------- directory

def test_directory(wfe):
    r = wfe.s.get(wfe.directory_url)
    assert r.status_code == 200
    d = r.json()
    for k in ("newNonce", "newAccount", "newOrder", "newAuthz", "revokeCert", "keyChange", "renewalInfo"):
        assert d[k].startswith("https://localhost:%d/" % PORT_A), k
    assert d["meta"]["termsOfService"] == "https://localhost/tos"
    assert d["meta"]["caaIdentities"] == ["anvil.test"]
    assert d["meta"]["externalAccountRequired"] is False
    assert wfe.s.head(wfe.directory_url).status_code == 200


def test_directory_uses_allowed_host(wfe):
    d = wfe.s.get("https://127.0.0.1:%d/directory" % PORT_A).json()
    assert d["newOrder"] == "https://127.0.0.1:%d/acme/new-order" % PORT_A
    # A Host outside the allowed list is never echoed back.
    d = wfe.s.get(wfe.directory_url, headers={"Host": "evil.example"}).json()
    assert d["newOrder"] == "https://localhost:%d/acme/new-order" % PORT_A


def test_new_nonce(wfe):
    h = wfe.s.head(wfe.dir["newNonce"])
    g = wfe.s.get(wfe.dir["newNonce"])
    assert h.status_code == 200 and g.status_code == 204
    for r in (h, g):
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["Replay-Nonce"].startswith("a1")
        assert 'rel="index"' in r.headers["Link"]
    assert h.headers["Replay-Nonce"] != g.headers["Replay-Nonce"]


def test_not_found_and_method_not_allowed(wfe):
    problem(wfe.s.get(wfe.base + "/nope"), 404, "malformed")
    for path in ("/acme/order/1", "/acme/authz/1", "/acme/chall/1/2", "/acme/new-order"):
        r = wfe.s.get(wfe.base + path)
        problem(r, 405, "malformed")
        assert r.headers["Allow"] == "POST"
    r = wfe.s.put(wfe.dir["newNonce"])
    problem(r, 405, "malformed")


# ------------------------------------------------------- JWS rejection table

def test_content_type(wfe):
    k = Key()
    body = k.jws(wfe.dir["newAccount"], {}, nonce=wfe.nonce())
    problem(wfe.post_raw(wfe.dir["newAccount"], body, ctype="application/json"), 415, "malformed")


def test_body_too_large(wfe):
    problem(wfe.post_raw(wfe.dir["newAccount"], "x" * 10000), 413, "malformed")


@pytest.mark.parametrize("body,typ", [
    ("", "malformed"),
    ("not json", "malformed"),
    ("[]", "malformed"),
    ('{"protected":"","payload":"","signature":""}', "malformed"),
    ("a.b.c", "malformed"),
])
def test_garbage_bodies(wfe, body, typ):
    problem(wfe.post_raw(wfe.dir["newAccount"], body), 400, typ)


def test_jws_structure_rejections(wfe):
    k = Key()
    url = wfe.dir["newAccount"]
    good = k.jws(url, {"termsOfServiceAgreed": True}, nonce=wfe.nonce())
    # unprotected header member
    bad = dict(good, header={"alg": "ES256"})
    problem(wfe.post_raw(url, bad), 400, "malformed")
    # general serialization
    bad = {"payload": good["payload"], "signatures": [{"protected": good["protected"], "signature": good["signature"]}]}
    problem(wfe.post_raw(url, bad), 400, "malformed")
    # padded base64
    bad = dict(good, signature=good["signature"] + "=")
    problem(wfe.post_raw(url, bad), 400, "malformed")


def test_alg_rejections(wfe):
    k = Key()
    url = wfe.dir["newAccount"]
    for alg in ("none", "HS256", "RS1"):
        body = problem(wfe.post(url, {}, k, alg=alg), 400, "badSignatureAlgorithm")
        assert "ES256" in body.get("algorithms", [])
    # alg that does not match the key
    problem(wfe.post(url, {}, k, alg="RS256"), 400, "badSignatureAlgorithm")


def test_key_rejections(wfe):
    url = wfe.dir["newAccount"]
    k = Key()
    # newAccount needs jwk, not kid
    problem(wfe.post(url, {}, k, kid="https://localhost:%d/acme/acct/1" % PORT_A), 400, "malformed")
    # both jwk and kid
    body = k.jws(url, {}, nonce=wfe.nonce(), extra={"kid": "x"})
    problem(wfe.post_raw(url, body), 400, "malformed")
    # a private key member in the jwk
    bad = Key()
    bad.jwk = dict(bad.jwk, d="AAAA")
    problem(wfe.post(url, {}, bad), 400, "badPublicKey")
    # small RSA key
    small = Key("rsa")
    small.priv = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    n = small.priv.public_key().public_numbers()
    small.jwk = {"e": "AQAB", "kty": "RSA", "n": b64(n.n.to_bytes(128, "big"))}
    problem(wfe.post(url, {}, small), 400, "badPublicKey")
    # kid that is not one of our account URLs (endpoints that take kid)
    problem(wfe.post(wfe.dir["newOrder"], {}, k, kid="https://other.example/acct/1"), 400,
            "accountDoesNotExist")
    problem(wfe.post(wfe.dir["newOrder"], {}, k), 400, "malformed")  # jwk where kid needed


def test_bad_signature(wfe):
    k = Key()
    url = wfe.dir["newAccount"]
    body = k.jws(url, {"termsOfServiceAgreed": True}, nonce=wfe.nonce())
    sig = bytearray(base64.urlsafe_b64decode(body["signature"] + "=="))
    sig[5] ^= 1
    body["signature"] = b64(bytes(sig))
    problem(wfe.post_raw(url, body), 400, "malformed")
    # signed by another key than the embedded one
    other = Key()
    body = k.jws(url, {}, nonce=wfe.nonce())
    body2 = other.jws(url, {}, nonce="x")
    body["signature"] = body2["signature"]
    problem(wfe.post_raw(url, body), 400, "malformed")


def test_replay_nonce_request_header(wfe):
    k = Key()
    n = wfe.nonce()
    r = wfe.post_raw(wfe.dir["newAccount"], k.jws(wfe.dir["newAccount"], {}, nonce=n),
                     headers={"Replay-Nonce": n})
    problem(r, 400, "malformed")


def test_nonce_missing_and_bogus(wfe):
    k = Key()
    url = wfe.dir["newAccount"]
    problem(wfe.post_raw(url, k.jws(url, {})), 400, "badNonce")
    problem(wfe.post(url, {}, k, nonce="a1bogus"), 400, "badNonce")
    problem(wfe.post(url, {}, k, nonce="a1" + "A" * 38), 400, "badNonce")


def test_url_mismatch(wfe):
    k = Key()
    url = wfe.dir["newAccount"]
    for wrong in (url + "/", url.replace("localhost", "127.0.0.1"),
                  url.replace("https:", "http:"), wfe.dir["newOrder"]):
        r = wfe.post_raw(url, k.jws(wrong, {}, nonce=wfe.nonce()))
        problem(r, 403, "unauthorized")


def test_valid_request_reaches_rpc_then_503_and_nonce_is_spent(wfe):
    """A fully valid newAccount passes every WFE check; with the RA down the
    answer is 503 + Retry-After (serverInternal, never a client error), and
    the nonce it used is now spent: replaying it is badNonce."""
    k = Key()
    url = wfe.dir["newAccount"]
    n = wfe.nonce()
    body = k.jws(url, {"termsOfServiceAgreed": True}, nonce=n)
    r = wfe.post_raw(url, body)
    problem(r, 503, "serverInternal")
    assert int(r.headers["Retry-After"]) >= 1
    r = wfe.post_raw(url, body)
    problem(r, 400, "badNonce")
    # the badNonce answer's own nonce works for the retry
    fresh = r.headers["Replay-Nonce"]
    r = wfe.post_raw(url, k.jws(url, {"termsOfServiceAgreed": True}, nonce=fresh))
    problem(r, 503, "serverInternal")


def test_nonce_expiry(wfe):
    k = Key()
    url = wfe.dir["newAccount"]
    n = wfe.nonce()
    time.sleep(4.2)  # lifetime 3s (the issue time has 1s granularity)
    problem(wfe.post(url, {}, k, nonce=n), 400, "badNonce")


def test_two_instances_prefixes(wfes):
    """Two WFEs: each accepts its own nonces; a nonce from the other
    instance is refused with badNonce and a fresh nonce of this instance,
    so a client retries successfully (a load balancer routes by prefix)."""
    a, b = wfes
    k = Key()
    na, nb = a.nonce(), b.nonce()
    assert na.startswith("a1") and nb.startswith("b2")
    r = b.post_raw(b.dir["newAccount"], k.jws(b.dir["newAccount"], {}, nonce=na))
    problem(r, 400, "badNonce")
    retry = r.headers["Replay-Nonce"]
    assert retry.startswith("b2")
    r = b.post_raw(b.dir["newAccount"], k.jws(b.dir["newAccount"], {"termsOfServiceAgreed": True}, nonce=retry))
    problem(r, 503, "serverInternal")  # got past the nonce check
    r = a.post_raw(a.dir["newAccount"], k.jws(a.dir["newAccount"], {"termsOfServiceAgreed": True}, nonce=na))
    problem(r, 503, "serverInternal")


def test_unauthenticated_endpoints_validate_input(wfe):
    problem(wfe.s.get(wfe.base + "/acme/renewal-info/not-valid"), 400, "malformed")
    problem(wfe.s.get(wfe.base + "/acme/renewal-info/a.b.c"), 400, "malformed")
    problem(wfe.s.get(wfe.base + "/crl/xyz/0.crl"), 404, "malformed")
    problem(wfe.s.get(wfe.base + "/issuer/zz.der"), 404, "malformed")
    problem(wfe.s.get(wfe.base + "/acme/cert/NOTHEX"), 404, "malformed")
    r = wfe.s.get(wfe.base + "/ocsp/!!!")
    assert r.status_code == 200 and r.content == b"\x30\x03\x0a\x01\x01"  # malformedRequest
    r = wfe.s.post(wfe.base + "/ocsp", data=b"\x30\x00", headers={"Content-Type": "application/ocsp-request"})
    assert r.content == b"\x30\x03\x0a\x01\x01"


def test_metrics_not_on_public_port(wfe):
    problem(wfe.s.get(wfe.base + "/metrics"), 404, "malformed")


def test_huge_declared_body_answered_without_reading(wfe):
    """A Content-Length over max_body is refused before the body is read."""
    import ssl
    ctx = ssl.create_default_context(cafile=wfe.s.verify)
    with socket.create_connection(("127.0.0.1", PORT_A), timeout=10) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname="localhost") as s:
            s.sendall(b"POST /acme/new-order HTTP/1.1\r\nHost: localhost:%d\r\n"
                      b"Content-Type: application/jose+json\r\n"
                      b"Content-Length: 1000000000\r\n\r\n" % PORT_A)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    assert data.startswith(b"HTTP/1.1 413"), data[:100]
    assert b"Replay-Nonce" in data


def test_garbage_never_500_and_server_survives(wfe):
    """Random paths, methods and bodies: never a 5xx, never a hang."""
    import random
    rnd = random.Random(8555)
    paths = ["/acme/acct/1", "/acme/acct/x/orders", "/acme/order/0", "/acme/chall/1",
             "/acme/chall/a/b", "/acme/cert/%00", "/acme/renewal-info/..", "/crl//.crl",
             "/ocsp/", "/issuer/.der", "/acme/finalize/99999999999999999999", "/%ff%fe",
             "/acme/new-account", "/directory?x=1", "/acme/new-nonce#frag"]
    for i in range(300):
        path = rnd.choice(paths) + ("" if rnd.random() < 0.5 else "/" + "%x" % rnd.getrandbits(40))
        method = rnd.choice(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 300)))
        if rnd.random() < 0.3:
            body = json.dumps({"protected": b64(bytes(rnd.getrandbits(8) for _ in range(20))),
                               "payload": "", "signature": "AA"}).encode()
        ctype = rnd.choice(["application/jose+json", "application/json", "text/plain"])
        r = wfe.s.request(method, wfe.base + path, data=body, headers={"Content-Type": ctype},
                          timeout=10)
        assert r.status_code < 500, (method, path, r.status_code, r.text)
    assert wfe.s.get(wfe.directory_url).status_code == 200


PORT_T = 21563


@pytest.fixture(scope="module")
def testmode_wfes():
    """Instances with Pebble-style knobs: one refuses every nonce, one fails
    every POST with an injected 503."""
    d = tempfile.mkdtemp(prefix="wfe-test-")
    trust = make_tls(d)
    p1 = start_wfe(d, PORT_T, "t3", test={"nonce_reject_percent": 100})
    p2 = start_wfe(d, PORT_T + 1, "t4", test={"faults": {"unavailable_percent": 100}})
    try:
        yield (Wfe("https://localhost:%d/directory" % PORT_T, verify=trust),
               Wfe("https://localhost:%d/directory" % (PORT_T + 1), verify=trust))
    finally:
        for p in (p1, p2):
            p.terminate()
            p.wait(timeout=10)
        if os.environ.get("ANVIL_KEEP_TMP") != "1":
            shutil.rmtree(d, ignore_errors=True)


def test_nonce_reject_percent(testmode_wfes):
    w = testmode_wfes[0]
    k = Key()
    for _ in range(3):
        body = problem(w.post(w.dir["newAccount"], {"termsOfServiceAgreed": True}, k), 400, "badNonce")
        assert "on purpose" in body["detail"]


def test_fault_injection(testmode_wfes):
    w = testmode_wfes[1]
    k = Key()
    r = w.post(w.dir["newAccount"], {"termsOfServiceAgreed": True}, k)
    problem(r, 503, "serverInternal")
    assert r.headers["Retry-After"] == "1"
    assert "injected" in r.json()["detail"]
    # GETs are not affected
    assert w.s.get(w.directory_url).status_code == 200


def test_config_errors_name_the_key(tmp_path):
    cfg = tmp_path / "wfe.json"
    cfg.write_text(json.dumps({"base_url": "https://x", "ra": {}, "sa": {}, "ca": {}, "nonce": {"lifetim": "1h"}}))
    r = subprocess.run([os.path.join(BINDIR, "anvil-wfe"), "--config", str(cfg), "--check"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "lifetim" in r.stderr


# ------------------------------------------- the jose/ rejection table, over HTTPS

def _ec_jwk(priv, size):
    n = priv.public_key().public_numbers()
    crv = {32: "P-256", 48: "P-384", 66: "P-521"}[size]
    return {"crv": crv, "kty": "EC", "x": b64(n.x.to_bytes(size, "big")), "y": b64(n.y.to_bytes(size, "big"))}


def _rs(priv, data, h, size):
    r, s = decode_dss_signature(priv.sign(data, ec.ECDSA(h)))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _body(prot, payload, sign, raw_prot=None):
    ph = raw_prot if raw_prot is not None else b64(json.dumps(prot))
    p = payload if isinstance(payload, str) else b64(payload)
    sig = sign(("%s.%s" % (ph, p)).encode())
    return {"protected": ph, "payload": p, "signature": b64(sig)}


def _rows():
    """(name, body builder(url, nonce) -> body (dict or str), problem type)."""
    k = ec.generate_private_key(ec.SECP256R1())
    jwk = _ec_jwk(k, 32)
    es256 = lambda d: _rs(k, d, hashes.SHA256(), 32)  # noqa: E731
    pay = b64(json.dumps({"termsOfServiceAgreed": True}))
    p521 = ec.generate_private_key(ec.SECP521R1())
    p384 = ec.generate_private_key(ec.SECP384R1())

    def hdr(url_, nonce_, **kw):
        d = {"alg": "ES256", "jwk": jwk, "nonce": nonce_, "url": url_}
        d.update(kw)
        return {k2: v for k2, v in d.items() if v is not None}

    rows = [
        ("crit header", lambda u, n: _body(hdr(u, n, crit=["exp"]), pay, es256), "malformed"),
        ("b64 header", lambda u, n: _body(hdr(u, n, b64=False), pay, es256), "malformed"),
        ("url missing", lambda u, n: _body(hdr(None, n), pay, es256), "malformed"),
        ("nonce missing", lambda u, n: _body(hdr(u, None), pay, es256), "badNonce"),
        ("nonce not a string", lambda u, n: _body(hdr(u, 5), pay, es256), "badNonce"),
        ("alg lowercase", lambda u, n: _body(hdr(u, n, alg="es256"), pay, es256), "badSignatureAlgorithm"),
        ("alg PS256", lambda u, n: _body(hdr(u, n, alg="PS256"), pay, es256), "badSignatureAlgorithm"),
        ("alg ES384 for a P-256 key", lambda u, n: _body(hdr(u, n, alg="ES384"), pay, es256),
         "badSignatureAlgorithm"),
        ("ES512 switched off", lambda u, n: _body(
            {"alg": "ES512", "jwk": _ec_jwk(p521, 66), "nonce": n, "url": u}, pay,
            lambda d: _rs(p521, d, hashes.SHA512(), 66)), "badSignatureAlgorithm"),
        ("EdDSA switched off", lambda u, n: _body(
            {"alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64(b"\x01" * 32)},
             "nonce": n, "url": u}, pay, lambda d: b"\x00" * 64), "badSignatureAlgorithm"),
        ("jwk use enc", lambda u, n: _body(hdr(u, n, jwk=dict(jwk, use="enc")), pay, es256), "badPublicKey"),
        ("jwk alg mismatch", lambda u, n: _body(hdr(u, n, jwk=dict(jwk, alg="ES384")), pay, es256),
         "badPublicKey"),
        ("EC point off the curve", lambda u, n: _body(hdr(u, n, jwk=dict(jwk, y=b64(b"\x01" * 32))), pay, es256),
         "badPublicKey"),
        ("EC coordinate too short", lambda u, n: _body(hdr(u, n, jwk=dict(jwk, x=jwk["x"][:-2])), pay, es256),
         "badPublicKey"),
        ("RSA exponent 3", lambda u, n: _body(hdr(u, n, alg="RS256", jwk={
            "kty": "RSA", "e": "Aw", "n": b64(rsa.generate_private_key(65537, 2048).public_key()
                                             .public_numbers().n.to_bytes(256, "big"))}), pay, es256),
         "badPublicKey"),
        ("P-384 key signed as ES256", lambda u, n: _body(hdr(u, n, jwk=_ec_jwk(p384, 48)), pay,
                                                         lambda d: _rs(p384, d, hashes.SHA256(), 48)),
         "badSignatureAlgorithm"),
        ("DER ECDSA signature", lambda u, n: _body(hdr(u, n), pay, lambda d: k.sign(d, ec.ECDSA(hashes.SHA256()))),
         "malformed"),
        ("empty signature", lambda u, n: _body(hdr(u, n), pay, lambda d: b""), "malformed"),
        ("signature by another key", lambda u, n: _body(
            hdr(u, n), pay, lambda d: _rs(ec.generate_private_key(ec.SECP256R1()), d, hashes.SHA256(), 32)),
         "malformed"),
        ("extra top-level member", lambda u, n: dict(_body(hdr(u, n), pay, es256), extra="x"), "malformed"),
        ("duplicate member", lambda u, n: '{"payload":"","protected":"e30","payload":"","signature":"AA"}',
         "malformed"),
        ("NUL byte", lambda u, n: '{"protected":"e30\\u0000","payload":"","signature":"AA"}', "malformed"),
        ("payload duplicate keys", lambda u, n: _body(hdr(u, n), b'{"contact":[],"contact":[]}', es256),
         "malformed"),
        ("payload not an object", lambda u, n: _body(hdr(u, n), b'[1,2]', es256), "malformed"),
        ("payload too deep", lambda u, n: _body(hdr(u, n), b'{"a":' * 40 + b'1' + b'}' * 40, es256),
         "malformed"),
        ("POST-as-GET to newAccount", lambda u, n: _body(hdr(u, n), "", es256), "malformed"),
        ("protected not base64url", lambda u, n: {"protected": "e30+", "payload": "", "signature": "AA"},
         "malformed"),
    ]
    return rows


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r[0])
def test_jose_rejection_table(wfe, row):
    name, build, typ = row
    url = wfe.dir["newAccount"]
    body = build(url, wfe.nonce())
    body = problem(wfe.post_raw(url, body), 400, typ)
    assert body.get("detail"), name


def test_behind_tls_terminator():
    """tls: null + trusted_proxy_header: the WFE speaks plain HTTP to the
    terminator and checks the JWS url against the scheme the client used."""
    port = PORT_T + 2
    d = tempfile.mkdtemp(prefix="wfe-proxy-")
    p = start_wfe(d, port, "p5", tls=None, trusted_proxy_header="X-Forwarded-Proto",
                  base_url="https://acme.example")
    try:
        s = requests.Session()
        s.trust_env = False
        base = "http://127.0.0.1:%d" % port
        hdrs = {"Host": "acme.example", "X-Forwarded-Proto": "https"}
        d_ = s.get(base + "/directory", headers=hdrs).json()
        assert d_["newAccount"] == "https://acme.example/acme/new-account"
        nonce = s.head(base + "/acme/new-nonce", headers=hdrs).headers["Replay-Nonce"]
        k = Key()
        body = k.jws("https://acme.example/acme/new-account", {"termsOfServiceAgreed": True}, nonce=nonce)
        r = s.post(base + "/acme/new-account", data=json.dumps(body),
                   headers=dict(hdrs, **{"Content-Type": "application/jose+json"}))
        problem(r, 503, "serverInternal")  # url accepted; RA absent
        # the same request without the header was made over http: url mismatch
        nonce = r.headers["Replay-Nonce"]
        body = k.jws("https://acme.example/acme/new-account", {"termsOfServiceAgreed": True}, nonce=nonce)
        r = s.post(base + "/acme/new-account", data=json.dumps(body),
                   headers={"Host": "acme.example", "Content-Type": "application/jose+json"})
        problem(r, 403, "unauthorized")
    finally:
        p.terminate()
        p.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)
