"""tkauth-01 (RFC 9447) with TNAuthList identifiers and the "atc" Authority
Token (RFC 9448), and STIR certificates (RFC 8226), end to end over HTTPS
(issue #23).

The trusted Token Authority is the development one scripts/bootstrap.sh
makes in every var directory (var/pki/tkauth-ta*.pem, the root is configs/dev's
va.json tkauth.roots); this suite signs ES256 JWTs with its key, carried in
"x5c", and `anvil-admin tkauth token` mints them for a client developer. A
rogue root made with `cryptography` issues the untrusted signer. The client
is written here (raw JWS through rel_acme); configs/dev has the "stir"
profile and names tkauth-01 in policy.challenges. Tokens naming their
signer by "x5u" get their chain from X5uServer, an HTTPS server on an
ephemeral loopback port whose test CA is the VA's tkauth.x5u_ca.

Ports: AnvilEnv base 28900 (WFE 28931); the x5u server: ephemeral.
"""
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as ra  # noqa: E402
from swtpm import AttCA  # noqa: E402  (a root that issues certificates)

PORT_BASE = 28900
TNAUTHLIST_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.26")
TOKEN_AUTHORITY = "https://authority.example.org/authz"


# ------------------------------------------------------ TNAuthList DER

def tlv(tag, content):
    n = len(content)
    ln = bytes([n]) if n < 128 else bytes([0x81, n])
    return bytes([tag]) + ln + content


def tnauthlist(*entries):
    """RFC 8226 §9, EXPLICIT TAGS: ("spc", "709J"), ("one", "1202..."),
    ("range", "1202555", 100)."""
    body = b""
    for e in entries:
        if e[0] == "spc":
            body += tlv(0xa0, tlv(0x16, e[1].encode()))
        elif e[0] == "one":
            body += tlv(0xa2, tlv(0x16, e[1].encode()))
        else:
            count = e[2].to_bytes((e[2].bit_length() + 8) // 8, "big")
            body += tlv(0xa1, tlv(0x30, tlv(0x16, e[1].encode()) + tlv(0x02, count)))
    return tlv(0x30, body)


# ------------------------------------------------------ Token Authority

def pem_certs(data):
    """Every certificate of a PEM bundle (bytes), in order."""
    end = b"-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate(p + end) for p in data.split(end) if b"-----BEGIN" in p]


class TokenAuthority:
    """Signs "atc" JWTs with key (a ra.Key), x5c: the chain's DER
    certificates, signer first."""

    def __init__(self, key, chain):
        self.key, self.chain = key, chain

    @classmethod
    def issued_by(cls, root, name):
        """A Token Authority certificate from root (an AttCA)."""
        key = ra.Key()
        cert = root.issue(key.priv.public_key(), [], subject=x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        return cls(key, [cert, root.cert.public_bytes(serialization.Encoding.DER)])

    @classmethod
    def bootstrapped(cls, env):
        """The development Token Authority scripts/bootstrap.sh made."""
        pki = os.path.join(env.var_dir, "pki")
        with open(os.path.join(pki, "tkauth-ta.key"), "rb") as f:
            key = ra.Key(priv=serialization.load_pem_private_key(f.read(), None))
        with open(os.path.join(pki, "tkauth-ta-chain.pem"), "rb") as f:
            chain = [c.public_bytes(serialization.Encoding.DER) for c in pem_certs(f.read())]
        return cls(key, chain)

    def token(self, claims, header=None):
        hdr = {"alg": "ES256", "typ": "JWT",
               "x5c": [base64.b64encode(d).decode() for d in self.chain]}
        hdr.update(header or {})
        hdr = {k: v for k, v in hdr.items() if v is not None}
        si = "%s.%s" % (ra.b64(json.dumps(hdr)), ra.b64(json.dumps(claims)))
        return "%s.%s" % (si, ra.b64(self.key.sign_raw(si.encode())))


def fingerprint(key):
    """RFC 9448 §5: "fingerprint" as its examples show it, "SHA256 " and
    the account key's SHA-256 thumbprint (RFC 7638) in colon-separated hex."""
    d = hashlib.sha256(json.dumps(key.jwk, sort_keys=True, separators=(",", ":")).encode())
    return "SHA256 " + ":".join("%02X" % b for b in d.digest())


def claims(key, der, **over):
    atc = {"tktype": "TNAuthList", "tkvalue": ra.b64(der), "ca": False,
           "fingerprint": fingerprint(key)}
    atc.update(over.pop("atc", {}))
    c = {"iss": TOKEN_AUTHORITY, "exp": int(time.time()) + 600,
         "jti": os.urandom(8).hex(), "atc": atc}
    c.update(over)
    return c


# ------------------------------------------------ x5u resources (HTTPS)

class X5uServer:
    """Where a Token Authority publishes its chain for "x5u" (RFC 7515
    §4.1.5): an HTTPS server on loopback (an ephemeral port) with a
    certificate from its own test CA (ca_path, the VA's tkauth.x5u_ca).
    self.paths maps a path to (status, body, extra headers)."""

    def __init__(self, d):
        ca = AttCA("x5u TLS Root")
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = ca.issue(key.public_key(), [
            (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
             False),
            (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)])
        self.ca_path, cert, kpath = (os.path.join(d, n) for n in ("ca.pem", "tls.pem", "tls.key"))
        with open(self.ca_path, "wb") as f:
            f.write(ca.pem())
        with open(cert, "wb") as f:
            f.write(x509.load_der_x509_certificate(leaf).public_bytes(serialization.Encoding.PEM))
        with open(kpath, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        self.paths, self.hits = {}, []
        paths, hits = self.paths, self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                status, body, hdrs = paths.get(self.path, (404, b"not found", {}))
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, kpath)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.base = "https://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, path, body, status=200, headers=None):
        """The URL of path, now answering status with body (bytes)."""
        self.paths[path] = (status, body, headers or {})
        return self.base + path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def world():
    """configs/dev as it is (its VA trusts the bootstrapped Token Authority
    root, tkauth.allow_ca on), plus a token-authority URL for the challenge
    and an x5u server under /ta/ the VA may fetch from."""
    d = tempfile.mkdtemp(prefix="tkauth-x5u-")
    srv = X5uServer(d)
    # allowed too, but its TLS certificate is from a CA the VA does not trust
    untrusted = X5uServer(tempfile.mkdtemp(prefix="tkauth-x5u-untrusted-"))
    cfg = {"ra.json:policy.tkauth": {"token_authority": TOKEN_AUTHORITY},
           "va.json:tkauth.x5u_allow": [srv.base + "/ta/", untrusted.base + "/ta/"],
           "va.json:tkauth.x5u_ca": srv.ca_path}
    try:
        with anvil_env.AnvilEnv(port_base=PORT_BASE, name="tkauth", config=cfg) as env:
            yield {"env": env, "raw": ra.Wfe(env.directory_url, verify=env.trust_path),
                   "ta": TokenAuthority.bootstrapped(env), "x5u": srv,
                   "x5u_untrusted_tls": untrusted,
                   "rogue": TokenAuthority.issued_by(AttCA("Rogue Root"),
                                                     "Rogue Token Authority")}
    finally:
        srv.close()
        untrusted.close()


def stir_order(w, der, key=None, profile="stir"):
    key, kid = ra.new_account(w["raw"], key=key)
    r = w["raw"].post(w["raw"].dir["newOrder"], {
        "identifiers": [{"type": "TNAuthList", "value": ra.b64(der)}], "profile": profile},
        key, kid=kid)
    assert r.status_code == 201, r.text
    order = r.json()
    az = order["authorizations"][0]
    authz = w["raw"].post(az, None, key, kid=kid).json()
    return key, kid, r.headers["Location"], order, az, authz


def tkauth_challenge(authz):
    ch = [c for c in authz["challenges"] if c["type"] == "tkauth-01"]
    assert len(ch) == 1, authz
    return ch[0]


def answer(w, key, kid, az, authz, token):
    """RFC 9448 §5.5: the client POSTs {"atc": <token>} to the challenge."""
    r = w["raw"].post(tkauth_challenge(authz)["url"], {"atc": token}, key, kid=kid)
    assert r.status_code == 200, r.text
    return ra.poll(w["raw"], key, kid, az, ("valid", "invalid"))


SPC = tnauthlist(("spc", "709J"))


def test_challenge_object_and_stir_certificate(world):
    w = world
    der = tnauthlist(("one", "12025550100"), ("range", "1202555", 100))
    key, kid, url, order, az, authz = stir_order(w, der)
    assert authz["identifier"] == {"type": "TNAuthList", "value": ra.b64(der)}
    ch = tkauth_challenge(authz)
    # RFC 9447 §3 / RFC 9448 §5.3: the challenge names the token type and
    # where to get one ("token-authority", the configured URL)
    assert ch["tkauth-type"] == "atc" and ch["token-authority"] == TOKEN_AUTHORITY, ch
    assert [c["type"] for c in authz["challenges"]] == ["tkauth-01"], authz
    done = answer(w, key, kid, az, authz, w["ta"].token(claims(key, der)))
    assert done["status"] == "valid", done
    rec = ra.sa_authz(w["env"], az)["challenges"][0]["validation_record"][0]
    assert rec["jti"] and "Anvil dev Token Authority" in rec["token_authority"], rec
    ra.poll(w["raw"], key, kid, url, ("ready",))
    cert_key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SHAKEN 709J")]))
           .add_extension(x509.UnrecognizedExtension(TNAUTHLIST_OID, der), critical=False)
           .sign(cert_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    r = w["raw"].post(order["finalize"], {"csr": ra.b64(csr)}, key, kid=kid)
    assert r.status_code == 200, r.text
    done = ra.poll(w["raw"], key, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    pem = w["raw"].post(done["certificate"], None, key, kid=kid).text
    leaf = x509.load_pem_x509_certificate(pem.encode())
    # RFC 8226 §9: the TN Authorization List extension, id-pe 26, here with
    # exactly the identifier's DER
    ext = leaf.extensions.get_extension_for_oid(TNAUTHLIST_OID)
    assert ext.value.value == der
    # a STIR certificate signs PASSporTs: digitalSignature, no TLS EKU, no
    # subjectAltName
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment and not ku.key_cert_sign
    for cls in (x509.ExtendedKeyUsage, x509.SubjectAlternativeName):
        with pytest.raises(x509.ExtensionNotFound):
            leaf.extensions.get_extension_for_class(cls)
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "TN 12025550100 +1 more"


def _other_account_key():
    return ra.Key()


# Each case: what the token gets wrong, and the detail the VA gives.
REFUSALS = {
    # RFC 9448 §6 step 8: 'Verify that the "atc" claim "fingerprint" is
    # valid and matches the account key of the client making the request.'
    "another_account": (lambda w, key, der: w["ta"].token(
        claims(key, der, atc={"fingerprint": fingerprint(_other_account_key())})),
        "is not this account key's"),
    # step 6: 'Verify that the "atc" claim "tkvalue" identifier contains the
    # equivalent base64url-encoded TNAuthList ... as the identifier'
    "another_tnauthlist": (lambda w, key, der: w["ta"].token(
        claims(key, der, atc={"tkvalue": ra.b64(tnauthlist(("spc", "123X")))})),
        "is not the TNAuthList of this authorization"),
    # step 7: "verify that token has not expired"
    "expired": (lambda w, key, der: w["ta"].token(claims(key, der, exp=int(time.time()) - 60)),
                "expired"),
    # steps 2-3: the certificate must represent "the trusted issuer of
    # Authority Tokens for the ecosystem"
    "untrusted_signer": (lambda w, key, der: w["rogue"].token(claims(key, der)),
                         "does not chain to a trusted Token Authority root"),
    # step 4: "Verify the TNAuthList Authority Token signature": a claim
    # altered after signing
    "altered_claim": (lambda w, key, der: _alter(w["ta"].token(claims(key, der))),
                      "signature does not verify"),
    # steps 2-3 with "x5u": a URL outside va.json tkauth.x5u_allow names a
    # signer this CA does not trust; it is never fetched (docs/acme.md)
    "x5u_not_allowed": (lambda w, key, der: w["ta"].token(
        claims(key, der), header={"x5c": None, "x5u": "https://authority.example.org/cert"}),
        "is not an https URL under va.json tkauth.x5u_allow"),
}


def _alter(token):
    h, p, s = token.split(".")
    c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    c["atc"]["tkvalue"] = ra.b64(tnauthlist(("spc", "999Z")))
    return "%s.%s.%s" % (h, ra.b64(json.dumps(c)), s)


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_tokens(world, case):
    """RFC 9448 §6: "If any step of the validation process fails, the
    "status" in the challenge object MUST be set to "invalid"." The problem
    is unauthorized (the token does not authorize this account for this
    TNAuthList) and its detail names the failed step."""
    w = world
    make, why = REFUSALS[case]
    key = ra.Key()
    key, kid, url, order, az, authz = stir_order(w, SPC, key=key)
    done = answer(w, key, kid, az, authz, make(w, key, SPC))
    assert done["status"] == "invalid", done
    err = tkauth_challenge(done)["error"]
    assert err["type"] == "urn:ietf:params:acme:error:unauthorized", err
    assert why in err["detail"], err


def test_malformed_response_is_malformed(world):
    w = world
    key, kid, url, order, az, authz = stir_order(w, SPC)
    done = answer(w, key, kid, az, authz, "not-a-jwt")
    err = tkauth_challenge(done)["error"]
    assert err["type"] == "urn:ietf:params:acme:error:malformed", err


def test_identifier_and_profile_policy(world):
    w = world
    key, kid = ra.new_account(w["raw"])
    new_order = w["raw"].dir["newOrder"]
    # a TLS profile never carries a TNAuthList
    r = w["raw"].post(new_order, {"identifiers": [
        {"type": "TNAuthList", "value": ra.b64(SPC)}], "profile": "classic"}, key, kid=kid)
    ra.problem(r, 400, "rejectedIdentifier")
    # and the STIR profile never carries a TLS name
    r = w["raw"].post(new_order, {"identifiers": [
        {"type": "dns", "value": "stir.test"}], "profile": "stir"}, key, kid=kid)
    ra.problem(r, 400, "rejectedIdentifier")
    # RFC 9448 §3: the value is "the base64url encoding of the TNAuthList
    # ASN.1 object using DER encoding rules"; an implicitly tagged entry
    # (RFC 8226's module is EXPLICIT TAGS) is not one
    implicit = bytes([0x30, 0x06, 0x80, 0x04]) + b"709J"
    r = w["raw"].post(new_order, {"identifiers": [
        {"type": "TNAuthList", "value": ra.b64(implicit)}], "profile": "stir"}, key, kid=kid)
    ra.problem(r, 400, "malformed")


def test_csr_with_another_tnauthlist_is_refused(world):
    w = world
    key, kid, url, order, az, authz = stir_order(w, SPC)
    assert answer(w, key, kid, az, authz, w["ta"].token(claims(key, SPC)))["status"] == "valid"
    ra.poll(w["raw"], key, kid, url, ("ready",))
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(x509.UnrecognizedExtension(
               TNAUTHLIST_OID, tnauthlist(("spc", "123X"))), critical=False)
           .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
           .public_bytes(serialization.Encoding.DER))
    r = w["raw"].post(order["finalize"], {"csr": ra.b64(csr)}, key, kid=kid)
    ra.problem(r, 400, "badCSR")


def admin_token(env, *args):
    """`anvil-admin tkauth token` with this env's admin.json (whose
    tkauth_key / tkauth_chain name the bootstrapped Token Authority)."""
    p = subprocess.run([os.path.join(env.bin_dir, "anvil-admin"), "tkauth", "token", "--json",
                        "--config", os.path.join(env.cfg_dir, "admin.json")] + list(args),
                       capture_output=True, text=True, timeout=60, cwd=anvil_env.TOP, env=env.env)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def finalize(w, key, kid, url, order, csr):
    r = w["raw"].post(order["finalize"], {"csr": ra.b64(csr)}, key, kid=kid)
    assert r.status_code == 200, r.text
    done = ra.poll(w["raw"], key, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    pem = w["raw"].post(done["certificate"], None, key, kid=kid).text
    return pem_certs(pem.encode())


# ------------------------------------------------ "ca": true (RFC 9448)

def stir_csr(der, ca, key=None):
    """A CSR with the TNAuthList extension; ca True/False: basicConstraints
    with that cA, None: no basicConstraints (an end-entity request)."""
    b = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
         .add_extension(x509.UnrecognizedExtension(TNAUTHLIST_OID, der), critical=False))
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return b.sign(key or ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).public_bytes(
        serialization.Encoding.DER)


def ready_order(w, der, profile, token_ca):
    """An order for der in profile whose tkauth-01 was answered with a
    token saying "ca": token_ca, polled to ready."""
    key, kid, url, order, az, authz = stir_order(w, der, profile=profile)
    tok = w["ta"].token(claims(key, der, atc={"ca": token_ca}))
    assert answer(w, key, kid, az, authz, tok)["status"] == "valid"
    ra.poll(w["raw"], key, kid, url, ("ready",))
    return key, kid, url, order


def test_ca_token_gets_stir_ca_certificate(world, tmp_path):
    """RFC 9448 §5: "ca" true "when the requested certificate is allowed to
    be a CA cert for delegation uses"; the stir-ca profile (tkauth_ca)
    issues one to a CSR asking for CA:TRUE, with the token from `anvil-admin
    tkauth token --allow-ca`. The STIR CA certificate is usable: a leaf it signs
    path-validates with OpenSSL from Anvil's root (root -> intermediate ->
    STIR CA -> leaf; RFC 5280 §6.1 and the pathLenConstraint of §4.2.1.9)."""
    w = world
    der = tnauthlist(("spc", "710K"))
    key, kid, url, order, az, authz = stir_order(w, der, profile="stir-ca")
    tok = admin_token(w["env"], "--tnauthlist", ra.b64(der), "--account", kid, "--allow-ca")
    assert answer(w, key, kid, az, authz, tok["atc"])["status"] == "valid"
    ra.poll(w["raw"], key, kid, url, ("ready",))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    chain = finalize(w, key, kid, url, order, stir_csr(der, True, key=ca_key))
    stir_ca = chain[0]
    bc = stir_ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0, bc
    ku = stir_ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature, ku
    # the TNAuthList it may delegate (RFC 8226 §9 extension) is the identifier
    assert stir_ca.extensions.get_extension_for_oid(TNAUTHLIST_OID).value.value == der
    with pytest.raises(x509.ExtensionNotFound):
        stir_ca.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    # a delegate's end-entity certificate, signed by the STIR CA's key
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SHAKEN delegate")]))
            .issuer_name(stir_ca.subject)
            .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                           critical=True)
            .add_extension(x509.UnrecognizedExtension(TNAUTHLIST_OID, der), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))
    (tmp_path / "untrusted.pem").write_bytes(b"".join(pem(c) for c in chain))
    root = os.path.join(w["env"].var_dir, "pki", "root.pem")
    v = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", root,
                        "-untrusted", str(tmp_path / "untrusted.pem"), str(tmp_path / "leaf.pem")],
                       capture_output=True, text=True)
    assert v.returncode == 0 and "leaf.pem: OK" in v.stdout, v.stdout + v.stderr


# RFC 9448 §6 step 9: 'Verify that the "atc" claim "ca" identifier boolean
# corresponds to the CSR request for either a CA certificate or an
# end-entity certificate.' The CSR comes at finalize, so the refusal is
# badCSR there (RFC 8555 §7.4: the CA "is unwilling to issue a certificate
# corresponding to the submitted CSR").
CA_REFUSALS = {
    # a "ca": false token cannot buy a CA certificate
    "ca_false_token_ca_csr": ("stir-ca", False, True, "RFC 9448 §6 step 9"),
    # a "ca": true token is for the CA certificate the CSR must then ask for
    "ca_true_token_end_entity_csr": ("stir-ca", True, None, "RFC 9448 §6 step 9"),
    # the token allows a CA certificate, this profile's policy issues none
    "profile_without_tkauth_ca": ("stir", True, True, "tkauth_ca"),
}


@pytest.mark.parametrize("case", sorted(CA_REFUSALS))
def test_ca_mismatch_is_bad_csr(world, case):
    w = world
    profile, token_ca, csr_ca, why = CA_REFUSALS[case]
    der = tnauthlist(("spc", "711L"))
    key, kid, url, order = ready_order(w, der, profile, token_ca)
    r = w["raw"].post(order["finalize"], {"csr": ra.b64(stir_csr(der, csr_ca))}, key, kid=kid)
    ra.problem(r, 400, "badCSR")
    assert why in r.json()["detail"], r.json()


def test_token_is_spent_once(world):
    """RFC 9447 §4: the "jti" "provides a convenient way to reliably track
    when the same "atc" Authority Token is being used for multiple
    challenges over time within its set lifetime"; Anvil keeps the spent
    jtis (SA tkauth_jtis) and accepts a token for one challenge only. The
    same account, same TNAuthList, a new authorization (the first one
    deactivated, RFC 8555 §7.5.2) and the same token: unauthorized."""
    w = world
    der = tnauthlist(("spc", "712M"))
    key, kid, url, order, az, authz = stir_order(w, der)
    tok = w["ta"].token(claims(key, der))
    assert answer(w, key, kid, az, authz, tok)["status"] == "valid"
    r = w["raw"].post(az, {"status": "deactivated"}, key, kid=kid)
    assert r.status_code == 200 and r.json()["status"] == "deactivated", r.text
    r = w["raw"].post(w["raw"].dir["newOrder"], {
        "identifiers": [{"type": "TNAuthList", "value": ra.b64(der)}], "profile": "stir"},
        key, kid=kid)
    assert r.status_code == 201, r.text
    az2 = r.json()["authorizations"][0]
    authz2 = w["raw"].post(az2, None, key, kid=kid).json()
    assert az2 != az and authz2["status"] == "pending", authz2
    done = answer(w, key, kid, az2, authz2, tok)
    assert done["status"] == "invalid", done
    err = tkauth_challenge(done)["error"]
    assert err["type"] == "urn:ietf:params:acme:error:unauthorized", err
    assert "already used" in err["detail"], err


def test_admin_token_command_gets_certificate(world):
    """A client developer's path with no code of their own: the token from
    `anvil-admin tkauth token --account <account URL>` answers tkauth-01 and
    the order gets its STIR certificate."""
    w = world
    der = tnauthlist(("spc", "713N"))
    key, kid, url, order, az, authz = stir_order(w, der)
    tok = admin_token(w["env"], "--tnauthlist", ra.b64(der), "--account", kid,
                      "--iss", TOKEN_AUTHORITY)
    # RFC 9448 §5: "fingerprint" of this account's key, fresh "jti", "exp"
    assert tok["fingerprint"] == fingerprint(key) and tok["jti"], tok
    assert tok["exp"] > time.time() + 60, tok
    assert answer(w, key, kid, az, authz, tok["atc"])["status"] == "valid"
    ra.poll(w["raw"], key, kid, url, ("ready",))
    leaf = finalize(w, key, kid, url, order, stir_csr(der, None))[0]
    assert leaf.extensions.get_extension_for_oid(TNAUTHLIST_OID).value.value == der


def test_admin_token_from_key_file(world, tmp_path):
    """--account-key takes the account's public key (a PEM public key or a
    JWK) instead of asking the SA; the token is for that key only: another
    account answering with it is refused (RFC 9448 §6 step 8: the
    "fingerprint" "matches the account key of the client making the
    request")."""
    w = world
    der = tnauthlist(("spc", "714P"))
    key, kid, url, order, az, authz = stir_order(w, der)
    pem = tmp_path / "account.pub.pem"
    pem.write_bytes(key.priv.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    jwk = tmp_path / "account.jwk"
    jwk.write_text(json.dumps(key.jwk))
    tok = admin_token(w["env"], "--tnauthlist", ra.b64(der), "--account-key", str(pem))
    assert tok["fingerprint"] == fingerprint(key), tok
    assert answer(w, key, kid, az, authz, tok["atc"])["status"] == "valid"
    key2, kid2, url2, order2, az2, authz2 = stir_order(w, der)
    tok = admin_token(w["env"], "--tnauthlist", ra.b64(der), "--account-key", str(jwk))
    done = answer(w, key2, kid2, az2, authz2, tok["atc"])
    assert done["status"] == "invalid", done
    assert "is not this account key's" in tkauth_challenge(done)["error"]["detail"]


# ------------------------------------------------ "x5u" (RFC 7515 §4.1.5)

def pem_chain(chain):
    """RFC 7515 §4.1.5: the resource is the chain "in PEM-encoded form", and
    "The certificate containing the public key corresponding to the key used
    to digitally sign the JWS MUST be the first certificate"."""
    return b"".join(x509.load_der_x509_certificate(d).public_bytes(serialization.Encoding.PEM)
                    for d in chain)


def x5u_token(w, ta, key, der, url):
    """ta's token naming its signer by "x5u" only."""
    return ta.token(claims(key, der), header={"x5c": None, "x5u": url})


def test_x5u_token_gets_certificate(world):
    """RFC 7515 §4.1.5: "x5u" is "a URI that refers to a resource for the
    X.509 public key certificate or certificate chain corresponding to the
    key used to digitally sign the JWS"; RFC 9448 §6 step 2 verifies the
    certificate it names. The VA fetches it and the chain is checked against
    tkauth.roots as an x5c chain is."""
    w = world
    der = tnauthlist(("one", "12025550177"))
    key, kid, url, order, az, authz = stir_order(w, der)
    x5u = w["x5u"].publish("/ta/dev-chain.pem", pem_chain(w["ta"].chain))
    done = answer(w, key, kid, az, authz, x5u_token(w, w["ta"], key, der, x5u))
    assert done["status"] == "valid", done
    rec = ra.sa_authz(w["env"], az)["challenges"][0]["validation_record"][0]
    assert "Anvil dev Token Authority" in rec["token_authority"] and rec["x5u"] == x5u, rec
    ra.poll(w["raw"], key, kid, url, ("ready",))
    leaf = finalize(w, key, kid, url, order, stir_csr(der, None))[0]
    assert leaf.extensions.get_extension_for_oid(TNAUTHLIST_OID).value.value == der


def test_x5c_wins_over_x5u(world):
    """RFC 7515 §4.1.6: "x5c" contains the chain itself; with both present
    Anvil uses x5c and does not dereference x5u (here a 404)."""
    w = world
    key, kid, url, order, az, authz = stir_order(w, SPC)
    tok = w["ta"].token(claims(key, SPC), header={"x5u": w["x5u"].base + "/ta/absent.pem"})
    assert answer(w, key, kid, az, authz, tok)["status"] == "valid"


# Each case: (path, status, body, headers) the x5u URL answers, and the
# detail. RFC 9448 §6: "If any step of the validation process fails, the
# "status" in the challenge object MUST be set to "invalid"": a signer the
# VA cannot establish or does not trust is "unauthorized", never a 500.
X5U_REFUSALS = {
    # steps 2-3: the chain is not under tkauth.roots
    "untrusted_chain": ("rogue", "/ta/rogue.pem", 200, None, {},
                        "does not chain to a trusted Token Authority root"),
    "not_found": ("ta", "/ta/missing.pem", 404, b"not found", {}, "HTTP status 404"),
    # §4.1.5: "The identified resource MUST provide a representation of the
    # certificate or certificate chain ... in PEM-encoded form"
    "not_pem": ("ta", "/ta/garbage.pem", 200, b"this is no certificate\n", {},
                "holds no PEM certificate"),
    "too_big": ("ta", "/ta/huge.pem", 200, b"#" * (70 * 1024), {},
                "larger than 65536 bytes"),
    # redirects are not followed: the allow list names where chains live
    "redirect": ("ta", "/ta/moved.pem", 302, b"", {"Location": "/ta/dev-chain.pem"},
                 "HTTP status 302"),
}


@pytest.mark.parametrize("case", sorted(X5U_REFUSALS))
def test_x5u_refused(world, case):
    w = world
    signer, path, status, body, hdrs, why = X5U_REFUSALS[case]
    ta = w[signer]
    if body is None:
        body = pem_chain(ta.chain)
    w["x5u"].publish("/ta/dev-chain.pem", pem_chain(w["ta"].chain))
    x5u = w["x5u"].publish(path, body, status, hdrs)
    key, kid, url, order, az, authz = stir_order(w, SPC)
    done = answer(w, key, kid, az, authz, x5u_token(w, ta, key, SPC, x5u))
    assert done["status"] == "invalid", done
    err = tkauth_challenge(done)["error"]
    assert err["type"] == "urn:ietf:params:acme:error:unauthorized", err
    assert why in err["detail"], err


def test_x5u_outside_allowed_prefix_is_not_fetched(world):
    """Only https URLs under a tkauth.x5u_allow prefix are fetched (RFC
    7515 §4.1.5: "an HTTP GET request to retrieve the certificate MUST use
    TLS"); a prefix ends at a '/' boundary. The server sees no request."""
    w = world
    srv = w["x5u"]
    good = srv.publish("/ta/dev-chain.pem", pem_chain(w["ta"].chain))
    srv.hits.clear()
    for x5u in (srv.base + "/other/dev-chain.pem", good.replace("https:", "http:"),
                srv.base + "/tax/dev-chain.pem"):
        key, kid, url, order, az, authz = stir_order(w, SPC)
        done = answer(w, key, kid, az, authz, x5u_token(w, w["ta"], key, SPC, x5u))
        err = tkauth_challenge(done)["error"]
        assert done["status"] == "invalid", done
        assert err["type"] == "urn:ietf:params:acme:error:unauthorized", err
        assert "tkauth.x5u_allow" in err["detail"], err
    assert srv.hits == [], srv.hits


def test_x5u_server_identity_is_verified(world):
    """RFC 7515 §4.1.5: "an HTTP GET request to retrieve the certificate
    MUST use TLS ... and the identity of the server MUST be validated": a
    server whose certificate does not chain to tkauth.x5u_ca is refused,
    even under an allowed prefix and serving the right chain."""
    w = world
    x5u = w["x5u_untrusted_tls"].publish("/ta/dev-chain.pem", pem_chain(w["ta"].chain))
    key, kid, url, order, az, authz = stir_order(w, SPC)
    done = answer(w, key, kid, az, authz, x5u_token(w, w["ta"], key, SPC, x5u))
    assert done["status"] == "invalid", done
    err = tkauth_challenge(done)["error"]
    assert err["type"] == "urn:ietf:params:acme:error:unauthorized", err
    assert "cannot fetch the token's x5u" in err["detail"], err
    assert w["x5u_untrusted_tls"].hits == [], w["x5u_untrusted_tls"].hits
