"""Helpers shared by the reliability and security suites (test_attacks,
test_isolation, test_crash_safety, test_shutdown, test_va_safety): a raw
ACME flow on top of test_wfe_http's Key/Wfe (full control over every JWS
byte), CSR builders, and state look-ups through the SA's RPC socket, so a
test can prove that a refused request changed nothing.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import ipaddress

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import test_wfe_http as h  # noqa: E402  (Key, Wfe, problem)

Key = h.Key
Wfe = h.Wfe
b64 = h.b64
# RFC 8555 §6.7: every ACME error type is this namespace + a short name.
ACME_ERR = "urn:ietf:params:acme:error:"


def problem(r, status, typ):
    """Asserts an RFC 7807 ACME problem with this status and type."""
    return h.problem(r, status, typ)


def id_of(url):
    return int(url.rstrip("/").rsplit("/", 1)[1])


def eab_binding(kid, hmac_key, jwk, url, alg="HS256"):
    prot = b64(json.dumps({"alg": alg, "kid": kid, "url": url}))
    payload = b64(json.dumps(jwk))
    mac = hmac.new(hmac_key, ("%s.%s" % (prot, payload)).encode(), hashlib.sha256).digest()
    return {"protected": prot, "payload": payload, "signature": b64(mac)}


def new_eab_key(env, kid):
    key = os.urandom(32)
    env.rpc("sa").call("sa.new_eab_key", {"kid": kid, "hmac_key": b64(key), "comment": "rel test"})
    return key


def new_account(raw, key=None, env=None, eab_kid=None, contact=None):
    """Registers an account (with a fresh EAB key when eab_kid is given).
    Returns (key, kid URL)."""
    key = key or Key()
    payload = {"termsOfServiceAgreed": True}
    if contact:
        payload["contact"] = contact
    if eab_kid is not None:
        mac = new_eab_key(env, eab_kid)
        payload["externalAccountBinding"] = eab_binding(eab_kid, mac, key.jwk, raw.dir["newAccount"])
    r = raw.post(raw.dir["newAccount"], payload, key)
    assert r.status_code == 201, r.text
    return key, r.headers["Location"]


def make_csr(cert_key, names=(), ips=(), cn=None):
    """DER CSR for names/ips signed by cert_key."""
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(cert_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _der_len(n):
    if n < 0x80:
        return bytes([n])
    s = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(s)]) + s


def csr_signed_by_other_key(names):
    """A CSR whose SubjectPublicKeyInfo is key A's but whose signature is
    made with key B: well-formed DER, invalid self-signature."""
    a = ec.generate_private_key(ec.SECP256R1())
    b = ec.generate_private_key(ec.SECP256R1())
    tbs = x509.load_der_x509_csr(make_csr(a, names)).tbs_certrequest_bytes
    sig = b.sign(tbs, ec.ECDSA(hashes.SHA256()))
    alg = bytes.fromhex("300a06082a8648ce3d040302")  # ecdsa-with-SHA256
    bits = b"\x00" + sig
    body = tbs + alg + b"\x03" + _der_len(len(bits)) + bits
    return b"\x30" + _der_len(len(body)) + body


def post_order(raw, key, kid, idents, profile=None):
    """POSTs newOrder for the identifier objects idents (RFC 8555 §7.4),
    in profile when given; returns the response whatever its status."""
    body = {"identifiers": idents}
    if profile is not None:
        body["profile"] = profile
    return raw.post(raw.dir["newOrder"], body, key, kid=kid)


def order_challenge(raw, ident, profile, chall_type):
    """A new account orders the identifier object ident (in profile) and
    fetches its authorization: (key, kid, order URL, order, authz URL, the
    chall_type challenge object)."""
    key, kid = new_account(raw)
    r = post_order(raw, key, kid, [ident], profile)
    assert r.status_code == 201, r.text
    order = r.json()
    authz = raw.post(order["authorizations"][0], None, key, kid=kid).json()
    ch = [c for c in authz["challenges"] if c["type"] == chall_type]
    assert ch, authz
    return key, kid, r.headers["Location"], order, order["authorizations"][0], ch[0]


def new_order(raw, key, kid, names=(), ips=()):
    idents = [{"type": "dns", "value": n} for n in names] + [{"type": "ip", "value": i} for i in ips]
    r = raw.post(raw.dir["newOrder"], {"identifiers": idents}, key, kid=kid)
    assert r.status_code == 201, r.text
    return r.headers["Location"], r.json()


def poll(raw, key, kid, url, want, timeout=60):
    end = time.time() + timeout
    while True:
        r = raw.post(url, None, key, kid=kid)
        assert r.status_code == 200, r.text
        st = r.json()["status"]
        if st in want:
            return r.json()
        assert time.time() < end, "still %s at %s" % (st, url)
        time.sleep(0.1)


def ready_order(raw, key, kid, names=(), ips=(), chall_type="http-01"):
    """newOrder, answer one challenge per authz (the server under test
    validates: always-valid or a responder the caller set up) and wait for
    ready. Returns (order URL, order JSON)."""
    url, order = new_order(raw, key, kid, names, ips)
    answer_authzs(raw, key, kid, order, chall_type)
    return url, poll(raw, key, kid, url, ("ready",))


def answer_authzs(raw, key, kid, order, chall_type="http-01", prepare=None, timeout=60):
    """Answers one chall_type challenge of each authorization of order that
    is not valid yet and waits (timeout seconds each) until it is valid.
    prepare(authz, challenge), when given, runs before the answer (e.g. to
    publish a dns-01 record)."""
    for az in order["authorizations"]:
        a = raw.post(az, None, key, kid=kid).json()
        if a["status"] == "valid":
            continue
        ch = [c for c in a["challenges"] if c["type"] == chall_type][0]
        if prepare is not None:
            prepare(a, ch)
        r = raw.post(ch["url"], {}, key, kid=kid)
        assert r.status_code == 200, r.text
        poll(raw, key, kid, az, ("valid",), timeout=timeout)


def dns01_txt(token, key):
    """RFC 8555 §8.4: the TXT record value is the base64url (no padding) of
    the SHA-256 digest of the key authorization token.thumbprint."""
    ka = "%s.%s" % (token, key.thumbprint())
    return base64.urlsafe_b64encode(hashlib.sha256(ka.encode()).digest()).rstrip(b"=").decode()


def finalize_der(raw, key, kid, order_url, order, csr_der):
    """Finalizes a ready order with the DER CSR csr_der, waits until it is
    valid and downloads the certificate. Returns (order JSON, PEM chain)."""
    r = raw.post(order["finalize"], {"csr": b64(csr_der)}, key, kid=kid)
    assert r.status_code == 200, r.text
    done = poll(raw, key, kid, order_url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    r = raw.post(done["certificate"], None, key, kid=kid)
    assert r.status_code == 200, r.text
    return done, r.text


def finalize(raw, key, kid, order_url, order, names=(), ips=(), cert_key=None):
    cert_key = cert_key or ec.generate_private_key(ec.SECP256R1())
    done, pem = finalize_der(raw, key, kid, order_url, order, make_csr(cert_key, names, ips))
    return done, pem, cert_key


def finalize_leaf(raw, key, kid, order_url, order, csr_der):
    """finalize_der, returning the leaf certificate (x509)."""
    pem = finalize_der(raw, key, kid, order_url, order, csr_der)[1]
    return x509.load_pem_x509_certificate(pem.encode())


def other_names(cert):
    """The otherName entries of cert's subjectAltName as (OID, DER value)."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [(o.type_id, o.value) for o in san.get_values_for_type(x509.OtherName)]


def eku_oids(cert):
    """The extendedKeyUsage OIDs of cert, in order."""
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def issue(raw, key, kid, names=(), ips=()):
    """Whole issuance. Returns a dict: order_url, order, pem, leaf, cert_key."""
    url, order = ready_order(raw, key, kid, names, ips)
    done, pem, cert_key = finalize(raw, key, kid, url, order, names, ips)
    leaf = x509.load_pem_x509_certificate(pem.encode())
    return {"order_url": url, "order": done, "pem": pem, "leaf": leaf, "cert_key": cert_key}


def serial_hex(cert):
    return "%036x" % cert.serial_number


def leaf_der_b64(cert):
    return b64(cert.public_bytes(serialization.Encoding.DER))


# --------------------------------------------------------- state via the SA

def sa_order(env, url_or_id):
    oid = url_or_id if isinstance(url_or_id, int) else id_of(url_or_id)
    return env.rpc("sa").call("sa.get_order", {"id": oid})


def sa_authz(env, url_or_id):
    aid = url_or_id if isinstance(url_or_id, int) else id_of(url_or_id)
    return env.rpc("sa").call("sa.get_authz", {"id": aid})


def sa_account(env, url_or_id):
    aid = url_or_id if isinstance(url_or_id, int) else id_of(url_or_id)
    return env.rpc("sa").call("sa.get_account", {"id": aid})


def sa_cert(env, cert):
    return env.rpc("sa").call("sa.get_certificate", {"serial": serial_hex(cert)})


def psql(env, sql):
    """Runs one query against the env's database; rows as lists of str."""
    import subprocess
    out = subprocess.run(["psql", env.dsn, "-AtqX", "-F", "\t", "-c", sql],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def b64_std(data):
    return base64.b64encode(data).decode()


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


def stop_and_sanitizer_reports(env):
    """Stops the launcher (SIGTERM, so every service exits normally and
    LeakSanitizer gets to report), then returns the sanitizer report lines
    found in the services' logs ("file: line"). Empty for a clean run and
    always empty for a build without sanitizers (make asan sets them)."""
    import signal
    if env.proc is not None and env.proc.poll() is None:
        env.proc.send_signal(signal.SIGTERM)
        try:
            env.proc.wait(timeout=60)
        except Exception:  # noqa: BLE001 - AnvilEnv.stop kills it
            pass
    found = []
    logdir = os.path.join(env.var_dir, "log")
    if os.path.isdir(logdir):
        for name in sorted(os.listdir(logdir)):
            with open(os.path.join(logdir, name), errors="replace") as f:
                for line in f:
                    if any(m in line for m in SANITIZER_MARKS):
                        found.append("%s: %s" % (name, line.rstrip()))
    return found


def wait_restarted(env, svc, old_pid, timeout=120):
    """Waits until the launcher has restarted service svc (a new pid that
    answers /healthz on its debug port); returns the new pid."""
    end = time.time() + timeout
    while time.time() < end:
        pid = env.pid_of(svc)
        if pid and pid != old_pid and env.debug_get(svc, "/healthz")[0] == 200:
            return pid
        time.sleep(0.2)
    raise AssertionError("%s not restarted\n%s" % (svc, env.logs_tail()))


def checked_env(**kw):
    """The body of a module's `env` fixture: `yield from checked_env(...)`.
    Starts AnvilEnv(**kw); at the end stops it and fails the module on any
    sanitizer report in the services' logs."""
    import anvil_env
    with anvil_env.AnvilEnv(**kw) as e:
        yield e
        assert_no_sanitizer_reports(e)


def assert_no_sanitizer_reports(env):
    """Stops env's launcher and fails on any sanitizer report in the
    services' logs (stop_and_sanitizer_reports)."""
    reports = stop_and_sanitizer_reports(env)
    assert not reports, "sanitizer reports in the service logs:\n" + "\n".join(reports[:40])


def env_fixture(**kw):
    """A module-scoped `env` fixture (assign it: `env = env_fixture(...)`):
    checked_env(**kw), so the module fails on any sanitizer report."""
    @pytest.fixture(scope="module")
    def fixture():
        yield from checked_env(**kw)
    return fixture


def raw_fixture():
    """A module-scoped fixture (assign it: `raw = raw_fixture()`): the raw
    ACME client (Wfe) of the module's env."""
    @pytest.fixture(scope="module")
    def fixture(env):
        return Wfe(env.directory_url, verify=env.trust_path)
    return fixture


def account_fixture():
    """A module-scoped fixture (`acct = account_fixture()`): one account
    made through the module's `raw` client, as (key, kid)."""
    @pytest.fixture(scope="module")
    def fixture(raw):
        return new_account(raw)
    return fixture
