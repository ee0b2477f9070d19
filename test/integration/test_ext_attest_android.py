"""device-attest-01 with the android-key format (WebAuthn §8.4) end to end
over HTTPS (issue #24), with statements built here:

- a test root and intermediate play Google's hardware attestation roots
  (va.json attestation.android_roots; nothing is built into Anvil);
- the intermediate issues the leaf ("credCert") for a key the test
  generates, with the Android Key Attestation extension
  1.3.6.1.4.1.11129.2.1.17 encoded by this file's own DER encoder
  (KeyDescription / AuthorizationList as the Android key attestation
  schema defines them: [n] EXPLICIT fields, ENUMERATED security levels);
- sig is the leaf key's signature over attToBeSigned = the key
  authorization (draft-ietf-acme-device-attest §5) and
  attestationChallenge = SHA-256(key authorization), Anvil's mapping of
  WebAuthn's clientDataHash (docs/acme.md).

Ports: AnvilEnv base 30400 (WFE 30431); 30440: the second VA's debug port.
"""
import hashlib
import json
import os
import shutil
import subprocess
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
import anvilrpc  # noqa: E402
import rel_acme as ra  # noqa: E402
from swtpm import PERMANENT_ID, AttCA, b64u, der, permanent_identifier  # noqa: E402
from device_attest import (answer, assert_refused, device_csr, device_order,  # noqa: E402
                           finalize, key_authz, wait_authz)

PORT_BASE = 30400
KEY_DESCRIPTION = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.1.17")
SOFTWARE, TEE, STRONGBOX = 0, 1, 2
KM_PURPOSE_DECRYPT, KM_PURPOSE_SIGN, KM_PURPOSE_VERIFY = 1, 2, 3
KM_ORIGIN_GENERATED, KM_ORIGIN_IMPORTED = 0, 2
PURPOSE, ALL_APPLICATIONS, ORIGIN, ROOT_OF_TRUST, ID_SERIAL = 1, 600, 702, 704, 713


# ------------------------------------------------- the test's DER encoder


def der_int(v, tag=0x02):
    n = max(1, (v.bit_length() + 8) // 8)
    return der(tag, v.to_bytes(n, "big", signed=True))


def explicit(n, body):
    """[n] EXPLICIT: context class, constructed; high tag numbers (>= 31)
    in base 128 after 0xbf (X.690 §8.1.2.4)."""
    if n < 31:
        return der(0xa0 | n, body)
    digits = [n & 0x7f]
    n >>= 7
    while n:
        digits.append(0x80 | (n & 0x7f))
        n >>= 7
    head = bytes([0xbf]) + bytes(reversed(digits))
    return head + der(0x00, body)[1:]


def auth_list(fields):
    """AuthorizationList ::= SEQUENCE of [tag] EXPLICIT values; fields is
    [(tag, inner DER)] in the order given (the schema's is ascending)."""
    return der(0x30, b"".join(explicit(t, v) for t, v in fields))


def tee_fields(serial, purposes=(KM_PURPOSE_SIGN,), origin=KM_ORIGIN_GENERATED):
    fields = [(PURPOSE, der(0x31, b"".join(der_int(p) for p in purposes))),
              (ORIGIN, der_int(origin)),
              # rootOfTrust: not read by Anvil, must be skipped
              (ROOT_OF_TRUST, der(0x30, der(0x04, b"\x00" * 32) + b"\x01\x01\xff" +
                                  der_int(0, tag=0x0a) + der(0x04, b"\x11" * 32)))]
    if serial is not None:
        fields.append((ID_SERIAL, der(0x04, serial.encode())))
    return fields


def key_description(challenge, sw=(), tee=(), level=TEE, version=200, sw_list=None):
    """KeyDescription ::= SEQUENCE { attestationVersion INTEGER,
    attestationSecurityLevel SecurityLevel, keyMintVersion INTEGER,
    keyMintSecurityLevel SecurityLevel, attestationChallenge OCTET STRING,
    uniqueId OCTET STRING, softwareEnforced AuthorizationList,
    hardwareEnforced AuthorizationList }"""
    return der(0x30, key_description_body(challenge, sw, tee, level, version, sw_list))


def key_description_body(challenge, sw=(), tee=(), level=TEE, version=200, sw_list=None):
    return (der_int(version) + der_int(level, tag=0x0a) + der_int(version) +
            der_int(level, tag=0x0a) + der(0x04, challenge) + der(0x04, b"") +
            (sw_list if sw_list is not None else auth_list(sw)) + auth_list(tee))


# ------------------------------------------------------- statements


class SubCA(AttCA):
    """An intermediate under parent that issues leaves (AttCA.issue)."""

    def __init__(self, parent, name):  # noqa: super().__init__ would self-sign
        self.key = ec.generate_private_key(ec.SECP256R1())
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = x509.load_der_x509_certificate(parent.issue(
            self.key.public_key(), [], subject=subj, ca=True))


def android_attobj(w, signed, ext, ca=None, leaf_key=None, sign_key=None, x5c=True):
    """fmt android-key: x5c = [credCert, intermediate], sig by sign_key
    (default: the credential key, credCert's) over signed. ext is the
    KeyDescription DER (None: no extension)."""
    ca = ca or w["android_ca"]
    leaf_key = leaf_key or ec.generate_private_key(ec.SECP256R1())
    exts = [] if ext is None else [(x509.UnrecognizedExtension(KEY_DESCRIPTION, ext), False)]
    leaf = ca.issue(leaf_key.public_key(), exts, subject=x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Android Keystore Key")]))
    sig = (sign_key or leaf_key).sign(signed.encode(), ec.ECDSA(hashes.SHA256()))
    stmt = {"alg": -7, "sig": sig}
    if x5c:
        stmt["x5c"] = [leaf, ca.cert.public_bytes(serialization.Encoding.DER)]
    return cbor2.dumps({"fmt": "android-key", "attStmt": stmt}), leaf_key


def sha(s):
    return hashlib.sha256(s.encode()).digest()


def new_serial():
    return "ANDROID-%s" % os.urandom(3).hex().upper()


@pytest.fixture(scope="module")
def world():
    d = tempfile.mkdtemp(prefix="attest-android-")
    try:
        root, rogue = AttCA("Test Android Attestation Root"), AttCA("Rogue Android Root")
        android_ca, rogue_ca = SubCA(root, "Test Android Intermediate"), SubCA(rogue, "Rogue Int")
        with open(os.path.join(d, "android_roots.pem"), "wb") as f:
            f.write(root.pem())
        cfg = {"va.json:attestation": {"android_roots": os.path.join(d, "android_roots.pem")}}
        with anvil_env.AnvilEnv(port_base=PORT_BASE, name="attest-android", config=cfg) as env:
            raw = ra.Wfe(env.directory_url, verify=env.trust_path)
            yield {"env": env, "raw": raw, "android_ca": android_ca, "rogue_ca": rogue_ca,
                   "dir": d}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_android_key_attestation_validates_and_issues(world):
    # draft-ietf-acme-device-attest §5: "The key authorization is used to
    # form attToBeSigned. This replaces the concatenation of
    # authenticatorData and clientDataHash." §5 step 3: the device
    # identifier (here attestationIdSerial, hardware-enforced) "matches the
    # identifier in the Order".
    w = world
    serial = new_serial()
    key, kid, url, order, az, ch = device_order(w, serial)
    ka = key_authz(ch, key)
    att, leaf_key = android_attobj(w, ka, key_description(sha(ka), tee=tee_fields(serial)))
    answer(w, key, kid, ch, att)
    assert wait_authz(w, key, kid, az)["status"] == "valid"
    rec = ra.sa_authz(w["env"], az)["challenges"][0]["validation_record"][0]
    assert rec["format"] == "android-key"
    spki = leaf_key.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    assert rec["attested_spki_sha256"] == b64u(hashlib.sha256(spki).digest())
    ra.poll(w["raw"], key, kid, url, ("ready",))
    # Security Considerations: "the public key in the attestation matches
    # the public key in the CSR"
    r = finalize(w, key, kid, url, order, device_csr(ec.generate_private_key(ec.SECP256R1()),
                                                     serial))
    assert r.status_code == 400 and r.json()["type"] == "urn:ietf:params:acme:error:badCSR", r.text
    r = finalize(w, key, kid, url, order, device_csr(leaf_key, serial))
    assert r.status_code == 200, r.text
    done = ra.poll(w["raw"], key, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    pem = w["raw"].post(done["certificate"], None, key, kid=kid).text
    cert = x509.load_pem_x509_certificate(pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [(o.type_id, o.value) for o in san.get_values_for_type(x509.OtherName)] == [
        (PERMANENT_ID, permanent_identifier(serial))]
    assert cert.public_key().public_numbers() == leaf_key.public_key().public_numbers()


def refusal_case(how, ka, token, serial):
    """(signed, KeyDescription, android_attobj kwargs) for one refusal."""
    other = ka + "x"
    tee = tee_fields(serial)
    cases = {
        # §8.4: "Verify that the attestationChallenge field in the
        # attestation certificate extension data is identical to
        # clientDataHash."
        "challenge": (ka, key_description(sha(other), tee=tee), {}),
        "token": (ka, key_description(sha(token), tee=tee), {}),
        # §8.4: "Verify that sig is a valid signature over the
        # concatenation of authenticatorData and clientDataHash using the
        # public key in the first certificate in x5c"
        "sig": (other, key_description(sha(ka), tee=tee), {}),
        # the public key in credCert must be the key that signs: a
        # statement whose credCert certifies another key is refused
        "key": (ka, key_description(sha(ka), tee=tee),
                {"sign_key": ec.generate_private_key(ec.SECP256R1())}),
        "root": (ka, key_description(sha(ka), tee=tee), {"rogue": True}),
        "self": (ka, key_description(sha(ka), tee=tee), {"x5c": False}),
        # §8.4: "use only the teeEnforced authorization list if the RP
        # wants to accept only keys from a trusted execution environment"
        "software": (ka, key_description(sha(ka), sw=tee, level=SOFTWARE), {}),
        "sw_lists": (ka, key_description(sha(ka), sw=tee), {}),
        # §8.4: "The AuthorizationList.allApplications field is not
        # present on either authorization list (softwareEnforced nor
        # teeEnforced), since PublicKeyCredential MUST be scoped to the RP
        # ID."
        "all_apps": (ka, key_description(sha(ka), sw=[(ALL_APPLICATIONS, der(0x05, b""))],
                                         tee=tee), {}),
        # §8.4: "The value in the AuthorizationList.origin field is equal to
        # KM_ORIGIN_GENERATED." / "... purpose field is equal to
        # KM_PURPOSE_SIGN."
        "imported": (ka, key_description(sha(ka), tee=tee_fields(serial, origin=KM_ORIGIN_IMPORTED)),
                     {}),
        "decrypt": (ka, key_description(sha(ka), tee=tee_fields(
            serial, purposes=(KM_PURPOSE_SIGN, KM_PURPOSE_DECRYPT))), {}),
        "no_ext": (ka, None, {}),
        # §5 step 3 and: a serial the TEE does not vouch for is not an
        # identifier under a TEE policy
        "serial": (ka, key_description(sha(ka), tee=tee_fields("OTHER-SERIAL")), {}),
        "sw_serial": (ka, key_description(sha(ka), sw=[(ID_SERIAL, der(0x04, serial.encode()))],
                                          tee=tee_fields(None)), {}),
    }
    return cases[how]


@pytest.mark.parametrize("how,why", [
    ("challenge", "wrong nonce: attestationChallenge is not the SHA-256"),
    ("token", "wrong nonce: attestationChallenge"),     # the token alone is not enough
    ("sig", "wrong nonce or key"),
    ("key", "wrong nonce or key"),
    ("root", "does not chain to a configured android-key root"),
    ("self", "self attestation (no x5c) is not accepted"),
    ("software", "attestationSecurityLevel software / keymasterSecurityLevel software: "
                 "the policy requires tee"),
    ("sw_lists", "teeEnforced authorization list must have origin KM_ORIGIN_GENERATED"),
    ("all_apps", "allApplications is present"),
    ("imported", "origin KM_ORIGIN_GENERATED"),
    ("decrypt", "purpose KM_PURPOSE_SIGN"),
    ("no_ext", "exactly one Android key attestation extension (1.3.6.1.4.1.11129.2.1.17)"),
    ("serial", 'does not name the permanent-identifier'),
    ("sw_serial", 'does not name the permanent-identifier'),
])
def test_android_key_refusals(world, how, why):
    # draft-ietf-acme-device-attest §5: "If any of the steps fail, then the
    # Server MUST respond to the Client with a "badAttestationStatement"
    # error" (assert_refused checks the type and the detail)
    w = world
    serial = new_serial()
    key, kid, _, _, az, ch = device_order(w, serial)
    signed, ext, kw = refusal_case(how, key_authz(ch, key), ch["token"], serial)
    if kw.pop("rogue", False):
        kw["ca"] = w["rogue_ca"]
    att, _ = android_attobj(w, signed, ext, **kw)
    answer(w, key, kid, ch, att)
    assert_refused(wait_authz(w, key, kid, az), why)


def malformed_extension(how, good, body):
    tee, c = tee_fields("X"), b"c" * 32
    return {
        "truncated": good[:-1],
        "trailing": good + b"\x00",
        "indefinite": b"\x30\x80" + body + b"\x00\x00",          # BER, not DER
        "level": key_description(c, tee=tee, level=7),
        "long_challenge": key_description(b"c" * 129, tee=tee),
        "list_type": key_description(c, tee=tee, sw_list=der(0x31, b"")),
        "twice": key_description(c, tee=tee + [(ORIGIN, der_int(0))]),
        "purpose_type": key_description(c, tee=[(PURPOSE, der_int(2))]),
        "implicit": key_description(c, sw_list=der(0x30, b"\x81\x00"), tee=tee),
    }[how]


@pytest.mark.parametrize("how", ["truncated", "trailing", "indefinite", "level", "long_challenge",
                                 "list_type", "twice", "purpose_type", "implicit"])
def test_malformed_key_description_is_refused(world, how):
    # WebAuthn §8.4: the extension's "schema is defined in the Android
    # developer documentation"; what does not follow it is refused with
    # badAttestationStatement, never a crash or a 500
    w = world
    serial = new_serial()
    key, kid, _, _, az, ch = device_order(w, serial)
    ka = key_authz(ch, key)
    body = key_description_body(sha(ka), tee=tee_fields(serial))
    att, _ = android_attobj(w, ka, malformed_extension(how, der(0x30, body), body))
    answer(w, key, kid, ch, att)
    assert_refused(wait_authz(w, key, kid, az), "malformed Android key attestation extension")


def test_security_level_config_error_names_the_key(world):
    env = world["env"]
    with open(os.path.join(env.cfg_dir, "va.json")) as f:
        cfg = json.load(f)
    cfg["attestation"]["android_security_level"] = "trusted"
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=env.tmp) as f:
        json.dump(cfg, f)
        f.flush()
        p = subprocess.run([os.path.join(env.bin_dir, "anvil-va"), "--check", "--config", f.name],
                           capture_output=True, text=True)
    assert p.returncode != 0, p
    assert "attestation.android_security_level" in p.stdout + p.stderr, (p.stdout, p.stderr)


def software_va(env):
    """A second anvil-va (own socket and debug port) whose policy is
    attestation.android_security_level "software"; the Popen and its
    RPC socket."""
    with open(os.path.join(env.cfg_dir, "va.json")) as f:
        cfg = json.load(f)
    sock = os.path.join(env.var_dir, "run", "va-sw.sock")
    cfg["rpc"]["listen"] = "unix:" + sock
    cfg["debug"]["port"] = PORT_BASE + 40
    cfg["attestation"]["android_security_level"] = "software"
    proc = env.spawn("anvil-va", "va-sw", cfg)
    if not anvil_env.wait_for(lambda: os.path.exists(sock) or proc.poll() is not None, 60) \
            or proc.poll() is not None:
        anvil_env.terminate(proc)
        raise AssertionError("the second VA did not start:\n" + env.logs_tail())
    return proc, sock


def test_software_policy_accepts_software_keys(world):
    # WebAuthn §8.4: "otherwise use the union of teeEnforced and
    # softwareEnforced": with attestation.android_security_level
    # "software" a software-backed key whose lists are all software
    # enforced (purpose SIGN|VERIFY) validates and names its serial; the
    # same statement fails the default policy (tee).
    serial, token = new_serial(), b64u(os.urandom(16))
    ka = "%s.%s" % (token, b64u(os.urandom(32)))
    sw = tee_fields(serial, purposes=(KM_PURPOSE_SIGN, KM_PURPOSE_VERIFY))
    att, _ = android_attobj(world, ka, key_description(sha(ka), sw=sw, level=SOFTWARE))
    params = {"identifier": {"type": "permanent-identifier", "value": serial},
              "challenge": {"type": "device-attest-01", "token": token},
              "key_authorization": ka, "payload": {"attObj": b64u(att)}}
    env = world["env"]
    r = env.rpc("va", timeout=60).call("va.validate", params)
    assert r["status"] == "invalid" and "the policy requires tee" in r["error"]["detail"], r
    proc, sock = software_va(env)
    try:
        c = anvilrpc.RpcClient("unix:" + sock, timeout=60)
        r = anvil_env.wait_for(lambda: call_or_none(c, params), 30)
        c.close()
    finally:
        anvil_env.terminate(proc)
    assert r is not None and r["status"] == "valid", r
    assert r["validation_record"][0]["format"] == "android-key", r


def call_or_none(c, params):
    """va.validate's result, or None while the VA does not answer yet."""
    try:
        return c.call("va.validate", params)
    except OSError:
        c.close()
        return None
