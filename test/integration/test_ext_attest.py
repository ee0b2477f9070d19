"""device-attest-01 (draft-ietf-acme-device-attest) end to end over HTTPS
(issue #24), with attestations made here:

- tpm: a real TPM 2.0 (swtpm with its own state directory and Unix
  socket in the test's temporary directory) driven by tpm2-tools: an EK,
  an AK whose certificate the suite's test AK CA issues (with the device's
  PermanentIdentifier in its subjectAltName), an imported P-256 key, and
  TPM2_Certify of that key by the AK with qualifyingData = SHA-256(key
  authorization) sent as a raw TPM command (tpm2_certify 5.4 has no
  qualification option);
- apple: a test root plays Apple's Enterprise Attestation Root CA and
  issues leaf certificates with the nonce, serial number and UDID
  extensions.

The client is written here (raw JWS through rel_acme). The VA gets the
suite's roots through va.json "attestation"; configs/dev has the "device"
profile.

Ports: AnvilEnv base 28700 (WFE 28731).
"""
import hashlib
import os
import shutil
import sys
import tempfile

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as ra  # noqa: E402
from swtpm import PERMANENT_ID, AIK_EKU, AttCA, SwTpm, b64u, permanent_identifier  # noqa: E402
from device_attest import (answer, assert_refused, device_csr, device_order,  # noqa: E402
                           finalize, key_authz, wait_authz)

PORT_BASE = 28700
APPLE_NONCE = x509.ObjectIdentifier("1.2.840.113635.100.8.11.1")
APPLE_SERIAL = x509.ObjectIdentifier("1.2.840.113635.100.8.9.1")
APPLE_UDID = x509.ObjectIdentifier("1.2.840.113635.100.8.9.2")

pytestmark = pytest.mark.skipif(
    not (shutil.which("swtpm") and shutil.which("tpm2_createak")),
    reason="swtpm / tpm2-tools not installed (scripts/install-deps.sh)")


@pytest.fixture(scope="module")
def world():
    d = tempfile.mkdtemp(prefix="attest-")
    tpm = SwTpm(os.path.join(d, "tpm"))
    try:
        tpm.setup()
        ak_ca, apple_ca, rogue_ca = AttCA("Test AK CA"), AttCA("Test Apple Root"), AttCA("Rogue")
        packed_ca = AttCA("Test Packed Attestation Root")
        for name, ca in (("tpm_roots.pem", ak_ca), ("apple_roots.pem", apple_ca),
                         ("packed_roots.pem", packed_ca)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(ca.pem())
        serial = "TPM-%s" % os.urandom(4).hex().upper()
        ak_cert = ak_ca.issue(tpm.ak_pub, [
            (x509.SubjectAlternativeName([x509.OtherName(PERMANENT_ID, permanent_identifier(serial))]),
             True),
            (x509.ExtendedKeyUsage([AIK_EKU]), False)])
        cfg = {"va.json:attestation": {"tpm_roots": os.path.join(d, "tpm_roots.pem"),
                                       "apple_roots": os.path.join(d, "apple_roots.pem"),
                                       "packed_roots": os.path.join(d, "packed_roots.pem")}}
        with anvil_env.AnvilEnv(port_base=PORT_BASE, name="attest", config=cfg) as env:
            raw = ra.Wfe(env.directory_url, verify=env.trust_path)
            yield {"env": env, "raw": raw, "tpm": tpm, "ak_cert": ak_cert, "ak_ca": ak_ca,
                   "serial": serial, "apple_ca": apple_ca, "rogue_ca": rogue_ca,
                   "packed_ca": packed_ca}
    finally:
        tpm.close()
        shutil.rmtree(d, ignore_errors=True)


def tpm_attobj(w, key_authz, ak_cert=None, extra_x5c=()):
    cert_info, sig = w["tpm"].certify(hashlib.sha256(key_authz.encode()).digest())
    return cbor2.dumps({"fmt": "tpm", "attStmt": {
        "ver": "2.0", "alg": -7, "x5c": [ak_cert or w["ak_cert"]] + list(extra_x5c), "sig": sig,
        "certInfo": cert_info, "pubArea": w["tpm"].pub_area}})


# ----------------------------------------------------------------- tpm


def test_tpm_attestation_validates_the_permanent_identifier(world):
    w = world
    key, kid, _, _, az, ch = device_order(w, w["serial"])
    answer(w, key, kid, ch, tpm_attobj(w, key_authz(ch, key)))
    authz = wait_authz(w, key, kid, az)
    assert authz["status"] == "valid", authz
    rec = ra.sa_authz(w["env"], az)["challenges"][0]["validation_record"][0]
    assert rec["format"] == "tpm"
    spki = w["tpm"].key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    assert rec["attested_spki_sha256"] == b64u(hashlib.sha256(spki).digest())


def test_tpm_wrong_nonce_is_refused(world):
    # §5 step 2: "Verify that attToBeSigned contains the key authorization
    # ... and that the value matches what the Server stored."
    w = world
    key, kid, _, _, az, ch = device_order(w, w["serial"])
    answer(w, key, kid, ch, tpm_attobj(w, key_authz(ch, key) + "x"))
    assert_refused(wait_authz(w, key, kid, az), "wrong nonce")


def test_tpm_replayed_statement_is_refused(world):
    # A statement accepted for one challenge cannot satisfy another: it
    # is bound to the first challenge's key authorization.
    w = world
    key, kid, _, _, az, ch = device_order(w, w["serial"])
    att = tpm_attobj(w, key_authz(ch, key))
    answer(w, key, kid, ch, att)
    assert wait_authz(w, key, kid, az)["status"] == "valid"
    key2, kid2, _, _, az2, ch2 = device_order(w, w["serial"])
    answer(w, key2, kid2, ch2, att)
    assert_refused(wait_authz(w, key2, kid2, az2), "wrong nonce")


def test_tpm_wrong_identifier_is_refused(world):
    # §5 step 3: "Verify that the attestation statement contains a device
    # identifier and that it matches the identifier in the Order."
    w = world
    key, kid, _, _, az, ch = device_order(w, "OTHER-DEVICE-1")
    answer(w, key, kid, ch, tpm_attobj(w, key_authz(ch, key)))
    assert_refused(wait_authz(w, key, kid, az), 'does not name the permanent-identifier "OTHER-DEVICE-1"')


def test_tpm_untrusted_root_is_refused(world):
    w = world
    rogue = w["rogue_ca"].issue(w["tpm"].ak_pub, [
        (x509.SubjectAlternativeName([x509.OtherName(PERMANENT_ID, permanent_identifier(w["serial"]))]),
         True),
        (x509.ExtendedKeyUsage([AIK_EKU]), False)])
    key, kid, _, _, az, ch = device_order(w, w["serial"])
    answer(w, key, kid, ch, tpm_attobj(w, key_authz(ch, key), ak_cert=rogue))
    assert_refused(wait_authz(w, key, kid, az), "does not chain to a configured tpm root")


@pytest.mark.parametrize("blob,why", [
    (b"\xa1\x63fmt", "CBOR"),                               # truncated
    (cbor2.dumps([1, 2]), "not a CBOR map"),
    (b"\xbf\x63fmt\x63tpm\xff", "unsupported CBOR"),        # indefinite map
    (b"\xa2\x63fmt\x63tpm\x67attStmt\x9b" + b"\xff" * 8, "past the end"),
    (cbor2.dumps({"fmt": "tpm", "attStmt": {}}) + b"\x00", "data after"),
    (cbor2.dumps({"fmt": "tpm"}), "no \"attStmt\""),
])
def test_malformed_cbor_is_refused(world, blob, why):
    w = world
    key, kid, _, _, az, ch = device_order(w, w["serial"])
    answer(w, key, kid, ch, blob)
    assert_refused(wait_authz(w, key, kid, az), why)


def test_malformed_permanent_identifier_is_refused_at_new_order(world):
    # §3.1: "The Server MUST verify that identifier values in newOrder
    # requests conform to the permanent-identifier-value production rule
    # and MUST reject requests containing non-conforming values with a
    # "malformed" error."
    w = world
    key, kid = ra.new_account(w["raw"])
    for bad in ("/1.2.3", "ABC/1.40", "ABC/x/1.2"):
        r = w["raw"].post(w["raw"].dir["newOrder"],
                          {"identifiers": [{"type": "permanent-identifier", "value": bad}],
                           "profile": "device"}, key, kid=kid)
        assert r.status_code == 400, r.text
        assert r.json()["type"] == "urn:ietf:params:acme:error:malformed", r.text
    # §4.1: hardware-module-value = hw-serial-num-value "/" hw-type-value
    r = w["raw"].post(w["raw"].dir["newOrder"],
                      {"identifiers": [{"type": "hardware-module", "value": "ABCD"}],
                       "profile": "device"}, key, kid=kid)
    assert r.json()["type"] == "urn:ietf:params:acme:error:malformed", r.text


def test_device_identifiers_need_a_device_profile(world):
    w = world
    key, kid = ra.new_account(w["raw"])
    r = w["raw"].post(w["raw"].dir["newOrder"],
                      {"identifiers": [{"type": "permanent-identifier", "value": "ABC"}]},
                      key, kid=kid)
    assert r.status_code == 400, r.text
    assert "Profile does not allow" in r.text


# --------------------------------------------------------------- apple


def apple_attobj(w, ch, serial, udid, ca=None, nonce_of=None):
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    nonce = hashlib.sha256((nonce_of or ch["token"]).encode()).digest()
    leaf = (ca or w["apple_ca"]).issue(leaf_key.public_key(), [
        (x509.UnrecognizedExtension(APPLE_NONCE, nonce), False),
        (x509.UnrecognizedExtension(APPLE_SERIAL, serial.encode()), False),
        (x509.UnrecognizedExtension(APPLE_UDID, udid.encode()), False)],
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
    return cbor2.dumps({"fmt": "apple", "attStmt": {"x5c": [leaf]}}), leaf_key


def test_apple_attestation_validates_serial_and_udid(world):
    w = world
    serial, udid = "C02%s" % os.urandom(3).hex().upper(), "00008020-%s" % os.urandom(6).hex().upper()
    for value in (serial, udid):
        key, kid, _, _, az, ch = device_order(w, value)
        att, _ = apple_attobj(w, ch, serial, udid)
        answer(w, key, kid, ch, att)
        authz = wait_authz(w, key, kid, az)
        assert authz["status"] == "valid", authz


def test_apple_refusals(world):
    w = world
    serial, udid = "C02REFUSE", "UDID-REFUSE"
    cases = [
        (dict(nonce_of="another-token"), "wrong nonce"),
        (dict(ca=w["rogue_ca"]), "does not chain to a configured apple root"),
        (dict(serial="C02OTHER", udid="UDID-OTHER"), "does not name"),
    ]
    for kw, why in cases:
        key, kid, _, _, az, ch = device_order(w, serial)
        att, _ = apple_attobj(w, ch, kw.pop("serial", serial), kw.pop("udid", udid), **kw)
        answer(w, key, kid, ch, att)
        assert_refused(wait_authz(w, key, kid, az), why)


# ----------------------------------------------------------- issuance


def valid_tpm_order(w):
    key, kid, url, order, az, ch = device_order(w, w["serial"])
    answer(w, key, kid, ch, tpm_attobj(w, key_authz(ch, key)))
    assert wait_authz(w, key, kid, az)["status"] == "valid"
    ra.poll(w["raw"], key, kid, url, ("ready",))
    return key, kid, url, order


@pytest.mark.parametrize("with_san", [True, False])
def test_tpm_device_certificate(world, with_san):
    w = world
    key, kid, url, order = valid_tpm_order(w)
    leaf = ra.finalize_leaf(w["raw"], key, kid, url, order,
                            device_csr(w["tpm"].key, w["serial"] if with_san else None))
    # §3.2: "this specification mandates that the identifierValue field of
    # the PermanentIdentifier MUST be present and MUST contain the
    # identifier"
    assert ra.other_names(leaf) == [(PERMANENT_ID, permanent_identifier(w["serial"]))]
    assert ra.eku_oids(leaf) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.public_key().public_numbers() == w["tpm"].key.public_key().public_numbers()


def test_csr_key_must_be_the_attested_key(world):
    # Security Considerations: "the public key in the attestation matches
    # the public key in the CSR"
    w = world
    key, kid, url, order = valid_tpm_order(w)
    r = finalize(w, key, kid, url, order,
                 device_csr(ec.generate_private_key(ec.SECP256R1()), w["serial"]))
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "urn:ietf:params:acme:error:badCSR", r.text
    assert "attestation" in r.json()["detail"]


def test_csr_naming_another_device_is_refused(world):
    w = world
    key, kid, url, order = valid_tpm_order(w)
    r = finalize(w, key, kid, url, order, device_csr(w["tpm"].key, "SOMEONE-ELSE"))
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "urn:ietf:params:acme:error:badCSR", r.text


def test_apple_device_certificate(world):
    w = world
    serial, udid = "C02ISSUE%s" % os.urandom(2).hex().upper(), "UDID-ISSUE"
    key, kid, url, order, az, ch = device_order(w, serial)
    att, leaf_key = apple_attobj(w, ch, serial, udid)
    answer(w, key, kid, ch, att)
    assert wait_authz(w, key, kid, az)["status"] == "valid"
    ra.poll(w["raw"], key, kid, url, ("ready",))
    r = finalize(w, key, kid, url, order, device_csr(leaf_key, serial))
    assert r.status_code == 200, r.text
    done = ra.poll(w["raw"], key, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", done


# -------------------------------------------------------------- packed


def packed_attobj(w, signed, serial, ca=None, x5c=True, leaf_key=None, ca_cert=False):
    """A packed attestation statement (WebAuthn §8.2, x5c path): the
    attestation certificate names the device and certifies its key, which
    signs attToBeSigned (here the key authorization)."""
    leaf_key = leaf_key or ec.generate_private_key(ec.SECP256R1())
    ext = [(x509.SubjectAlternativeName([x509.OtherName(PERMANENT_ID, permanent_identifier(serial))]),
            False)]
    leaf = (ca or w["packed_ca"]).issue(leaf_key.public_key(), ext, ca=ca_cert)
    sig = leaf_key.sign(signed.encode(), ec.ECDSA(hashes.SHA256()))
    stmt = {"alg": -7, "sig": sig}
    if x5c:
        stmt["x5c"] = [leaf]
    return cbor2.dumps({"fmt": "packed", "attStmt": stmt}), leaf_key


def test_packed_attestation_validates_and_issues(world):
    # draft-ietf-acme-device-attest §5: "The key authorization is used to
    # form attToBeSigned. This replaces the concatenation of
    # authenticatorData and clientDataHash."
    w = world
    serial = "PACKED-%s" % os.urandom(3).hex().upper()
    key, kid, url, order, az, ch = device_order(w, serial)
    att, leaf_key = packed_attobj(w, key_authz(ch, key), serial)
    answer(w, key, kid, ch, att)
    assert wait_authz(w, key, kid, az)["status"] == "valid"
    assert ra.sa_authz(w["env"], az)["challenges"][0]["validation_record"][0]["format"] == "packed"
    ra.poll(w["raw"], key, kid, url, ("ready",))
    r = finalize(w, key, kid, url, order, device_csr(leaf_key, serial))
    assert r.status_code == 200, r.text
    assert ra.poll(w["raw"], key, kid, url, ("valid", "invalid"))["status"] == "valid"


@pytest.mark.parametrize("how,why", [
    ("nonce", "wrong nonce or key"),        # signed another key authorization
    ("token", "wrong nonce or key"),        # the token alone is not enough here
    ("root", "does not chain to a configured packed root"),
    ("self", "self attestation (no x5c) is not accepted"),
    ("ca", "not a CA (WebAuthn §8.2.1)"),
    ("serial", 'does not name the permanent-identifier'),
])
def test_packed_refusals(world, how, why):
    # WebAuthn §8.2: "Verify that sig is a valid signature over the
    # concatenation of authenticatorData and clientDataHash using the
    # attestation public key in attestnCert with the algorithm specified
    # in alg"; §8.2.1: "Basic Constraints extension MUST have the CA
    # component set to false"
    w = world
    serial = "PACKED-%s" % os.urandom(3).hex().upper()
    key, kid, _, _, az, ch = device_order(w, serial)
    signed = {"nonce": key_authz(ch, key) + "x", "token": ch["token"]}.get(how, key_authz(ch, key))
    att, _ = packed_attobj(w, signed, "OTHER-SERIAL" if how == "serial" else serial,
                           ca=w["rogue_ca"] if how == "root" else None, x5c=how != "self",
                           ca_cert=how == "ca")
    answer(w, key, kid, ch, att)
    assert_refused(wait_authz(w, key, kid, az), why)
