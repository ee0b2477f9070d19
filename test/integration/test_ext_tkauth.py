"""tkauth-01 (RFC 9447) with TNAuthList identifiers and the "atc" Authority
Token (RFC 9448), and STIR certificates (RFC 8226), end to end over HTTPS
(issue #23).

A small Token Authority lives in this suite: a root and a Token Authority
certificate made with `cryptography` (the root is the VA's
va.json tkauth.roots), and ES256 JWTs signed with the TA key, carried in
"x5c". A rogue root issues the untrusted signer. The client is written
here (raw JWS through rel_acme); configs/dev has the "stir" profile and
names tkauth-01 in policy.challenges.

Ports: AnvilEnv base 28900 (WFE 28931).
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

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

class TokenAuthority:
    """Signs "atc" JWTs with a key certified by root (x5c: leaf, root)."""

    def __init__(self, root, name):
        self.key = ra.Key()
        self.root = root
        self.cert = root.issue(self.key.priv.public_key(), [], subject=x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, name)]))

    def token(self, claims, header=None):
        hdr = {"alg": "ES256", "typ": "JWT",
               "x5c": [base64.b64encode(d).decode() for d in
                       (self.cert, self.root.cert.public_bytes(serialization.Encoding.DER))]}
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


@pytest.fixture(scope="module")
def world():
    d = tempfile.mkdtemp(prefix="tkauth-")
    try:
        root, rogue = AttCA("Test STIR Token Authority Root"), AttCA("Rogue Root")
        roots = os.path.join(d, "ta_roots.pem")
        with open(roots, "wb") as f:
            f.write(root.pem())
        cfg = {"va.json:tkauth": {"roots": roots, "allow_ca": True},
               "ra.json:policy.tkauth": {"token_authority": TOKEN_AUTHORITY}}
        with anvil_env.AnvilEnv(port_base=PORT_BASE, name="tkauth", config=cfg) as env:
            yield {"env": env, "raw": ra.Wfe(env.directory_url, verify=env.trust_path),
                   "ta": TokenAuthority(root, "Test Token Authority"),
                   "rogue": TokenAuthority(rogue, "Rogue Token Authority")}
    finally:
        shutil.rmtree(d, ignore_errors=True)


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
    assert rec["jti"] and "Test Token Authority" in rec["token_authority"], rec
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
    # Anvil verifies "x5c" and does not fetch "x5u" (docs/acme.md)
    "x5u_only": (lambda w, key, der: w["ta"].token(
        claims(key, der), header={"x5c": None, "x5u": "https://authority.example.org/cert"}),
        "x5u"),
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


# ------------------------------------------------ "ca": true (RFC 9448)

def stir_csr(der, ca):
    """A CSR with the TNAuthList extension; ca True/False: basicConstraints
    with that cA, None: no basicConstraints (an end-entity request)."""
    b = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
         .add_extension(x509.UnrecognizedExtension(TNAUTHLIST_OID, der), critical=False))
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return b.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).public_bytes(
        serialization.Encoding.DER)


def ready_order(w, der, profile, token_ca):
    """An order for der in profile whose tkauth-01 was answered with a
    token saying "ca": token_ca, polled to ready."""
    key, kid, url, order, az, authz = stir_order(w, der, profile=profile)
    tok = w["ta"].token(claims(key, der, atc={"ca": token_ca}))
    assert answer(w, key, kid, az, authz, tok)["status"] == "valid"
    ra.poll(w["raw"], key, kid, url, ("ready",))
    return key, kid, url, order


def test_ca_token_gets_stir_ca_certificate(world):
    """RFC 9448 §5: "ca" true "when the requested certificate is allowed to
    be a CA cert for delegation uses"; the stir-ca profile (tkauth_ca)
    issues one to a CSR asking for CA:TRUE."""
    w = world
    der = tnauthlist(("spc", "710K"))
    key, kid, url, order = ready_order(w, der, "stir-ca", True)
    r = w["raw"].post(order["finalize"], {"csr": ra.b64(stir_csr(der, True))}, key, kid=kid)
    assert r.status_code == 200, r.text
    done = ra.poll(w["raw"], key, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    pem = w["raw"].post(done["certificate"], None, key, kid=kid).text
    leaf = x509.load_pem_x509_certificate(pem.encode())
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0, bc
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature, ku
    # the TNAuthList it may delegate (RFC 8226 §9 extension) is the identifier
    assert leaf.extensions.get_extension_for_oid(TNAUTHLIST_OID).value.value == der
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


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


def test_dev_token_script(world, tmp_path):
    """scripts/tkauth-token.py (the client developer's token minter for
    `make run`) makes a token the VA accepts, here with this suite's Token
    Authority in place of configs/dev's."""
    w = world
    ta = w["ta"]
    paths = {"key": tmp_path / "ta.key", "cert": tmp_path / "ta.pem",
             "root": tmp_path / "root.pem", "jwk": tmp_path / "account.jwk"}
    paths["key"].write_bytes(ta.key.priv.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    paths["cert"].write_bytes(x509.load_der_x509_certificate(ta.cert).public_bytes(
        serialization.Encoding.PEM))
    paths["root"].write_bytes(ta.root.pem())
    der = tnauthlist(("spc", "713N"))
    key, kid, url, order, az, authz = stir_order(w, der)
    paths["jwk"].write_text(json.dumps(key.jwk))
    tok = subprocess.run(
        [sys.executable, os.path.join(HERE, "..", "..", "scripts", "tkauth-token.py"),
         "--tnauthlist", ra.b64(der), "--account-key", str(paths["jwk"]),
         "--key", str(paths["key"]), "--cert", str(paths["cert"]), "--root", str(paths["root"])],
        check=True, capture_output=True, text=True).stdout.strip()
    assert answer(w, key, kid, az, authz, tok)["status"] == "valid"
