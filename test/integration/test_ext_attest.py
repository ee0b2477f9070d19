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
import base64
import datetime
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as ra  # noqa: E402

PORT_BASE = 28700
BAD_ATT = "urn:ietf:params:acme:error:badAttestationStatement"
AIK_EKU = x509.ObjectIdentifier("2.23.133.8.3")
PERMANENT_ID = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.3")
APPLE_NONCE = x509.ObjectIdentifier("1.2.840.113635.100.8.11.1")
APPLE_SERIAL = x509.ObjectIdentifier("1.2.840.113635.100.8.9.1")
APPLE_UDID = x509.ObjectIdentifier("1.2.840.113635.100.8.9.2")

pytestmark = pytest.mark.skipif(
    not (shutil.which("swtpm") and shutil.which("tpm2_createak")),
    reason="swtpm / tpm2-tools not installed (scripts/install-deps.sh)")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der(tag, body):
    return bytes([tag]) + ra._der_len(len(body)) + body


def permanent_identifier(value, assigner=None):
    """RFC 4043 PermanentIdentifier DER (identifierValue UTF8String)."""
    body = der(0x0c, value.encode())
    if assigner:
        body += _oid_der(assigner)
    return der(0x30, body)


def _oid_der(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7f]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7f))
            p >>= 7
        out += bytes(reversed(enc))
    return der(0x06, out)


class AttCA:
    """A root (and signing key) that issues attestation certificates."""

    def __init__(self, name):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, pub, extensions, subject=None):
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder()
             .subject_name(subject if subject is not None else x509.Name([]))
             .issuer_name(self.cert.subject).public_key(pub)
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        for ext, crit in extensions:
            b = b.add_extension(ext, critical=crit)
        return b.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


class SwTpm:
    """A private swtpm (state dir and Unix sockets under d) with an EK, an
    AK (persistent 0x81010002) and an imported P-256 key (0x81010003)."""

    AK, KEY = 0x81010002, 0x81010003

    def __init__(self, d):
        self.d = d
        os.makedirs(os.path.join(d, "state"))
        self.sock = os.path.join(d, "tpm.sock")
        self.log = open(os.path.join(d, "swtpm.log"), "w")
        self.proc = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + os.path.join(d, "state"),
             "--server", "type=unixio,path=" + self.sock,
             "--ctrl", "type=unixio,path=" + self.sock + ".ctrl",
             "--flags", "not-need-init,startup-clear"],
            stdout=self.log, stderr=subprocess.STDOUT)
        end = time.time() + 15
        while not (os.path.exists(self.sock) and os.path.exists(self.sock + ".ctrl")):
            assert self.proc.poll() is None and time.time() < end, "swtpm did not start"
            time.sleep(0.05)
        self.env = dict(os.environ, TPM2TOOLS_TCTI="swtpm:path=" + self.sock)

    def tool(self, *args):
        out = subprocess.run(list(args), cwd=self.d, env=self.env, capture_output=True, text=True)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout

    def persist(self, name_file, handle):
        """Makes the loaded object named in name_file persistent at handle
        (found among the transient handles: without a resource manager
        the tools' saved contexts cannot be loaded back), then flushes
        the transient objects."""
        with open(os.path.join(self.d, name_file), "rb") as f:
            want = f.read().hex()
        for h in self.tool("tpm2_getcap", "handles-transient").split():
            if not h.startswith("0x"):
                continue
            pub = self.tool("tpm2_readpublic", "-c", h)
            if "name: " + want in pub:
                self.tool("tpm2_evictcontrol", "-C", "o", "-c", h, hex(handle))
                break
        else:
            raise AssertionError("no transient object named %s" % want)
        self.tool("tpm2_flushcontext", "-t")

    def setup(self):
        self.tool("tpm2_createek", "-c", "ek.ctx", "-G", "ecc", "-u", "ek.pub")
        self.tool("tpm2_createak", "-C", "ek.ctx", "-c", "ak.ctx", "-G", "ecc", "-g", "sha256",
                  "-s", "ecdsa", "-u", "ak.pem", "-f", "pem", "-n", "ak.name")
        self.persist("ak.name", self.AK)
        self.key = ec.generate_private_key(ec.SECP256R1())
        with open(os.path.join(self.d, "key.pem"), "wb") as f:
            f.write(self.key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
        self.tool("tpm2_createprimary", "-C", "o", "-c", "prim.ctx", "-G", "ecc")
        self.tool("tpm2_import", "-C", "prim.ctx", "-G", "ecc", "-i", "key.pem",
                  "-u", "key.pub", "-r", "key.priv")
        self.tool("tpm2_flushcontext", "-t")
        self.tool("tpm2_load", "-C", "prim.ctx", "-u", "key.pub", "-r", "key.priv", "-c", "key.ctx",
                  "-n", "key.name")
        self.persist("key.name", self.KEY)
        with open(os.path.join(self.d, "ak.pem"), "rb") as f:
            self.ak_pub = serialization.load_pem_public_key(f.read())
        with open(os.path.join(self.d, "key.pub"), "rb") as f:
            self.pub_area = f.read()[2:]  # TPM2B_PUBLIC -> TPMT_PUBLIC

    def certify(self, qualifying):
        """TPM2_Certify(KEY by AK, qualifyingData): (certInfo, DER sig)."""
        pw = struct.pack(">IHBH", 0x40000009, 0, 0, 0)  # TPM_RS_PW, empty
        body = struct.pack(">II", self.KEY, self.AK) + struct.pack(">I", 2 * len(pw)) + pw + pw
        body += struct.pack(">H", len(qualifying)) + qualifying + struct.pack(">H", 0x0010)
        cmd = struct.pack(">HII", 0x8002, 10 + len(body), 0x00000148) + body
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.sock)
        s.sendall(cmd)
        resp = b""
        while len(resp) < 10 or len(resp) < struct.unpack(">I", resp[2:6])[0]:
            chunk = s.recv(65536)
            assert chunk, "swtpm closed the connection"
            resp += chunk
        s.close()
        rc = struct.unpack(">I", resp[6:10])[0]
        assert rc == 0, "TPM2_Certify rc 0x%x" % rc
        p = 14  # header + parameterSize
        n = struct.unpack(">H", resp[p:p + 2])[0]
        cert_info = resp[p + 2:p + 2 + n]
        p += 2 + n
        sig_alg, _hash = struct.unpack(">HH", resp[p:p + 4])
        assert sig_alg == 0x0018  # TPM_ALG_ECDSA
        p += 4
        rl = struct.unpack(">H", resp[p:p + 2])[0]
        r = int.from_bytes(resp[p + 2:p + 2 + rl], "big")
        p += 2 + rl
        sl = struct.unpack(">H", resp[p:p + 2])[0]
        s_ = int.from_bytes(resp[p + 2:p + 2 + sl], "big")
        return cert_info, encode_dss_signature(r, s_)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def world():
    d = tempfile.mkdtemp(prefix="attest-")
    tpm = SwTpm(os.path.join(d, "tpm"))
    try:
        tpm.setup()
        ak_ca, apple_ca, rogue_ca = AttCA("Test AK CA"), AttCA("Test Apple Root"), AttCA("Rogue")
        for name, ca in (("tpm_roots.pem", ak_ca), ("apple_roots.pem", apple_ca)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(ca.pem())
        serial = "TPM-%s" % os.urandom(4).hex().upper()
        ak_cert = ak_ca.issue(tpm.ak_pub, [
            (x509.SubjectAlternativeName([x509.OtherName(PERMANENT_ID, permanent_identifier(serial))]),
             True),
            (x509.ExtendedKeyUsage([AIK_EKU]), False)])
        cfg = {"va.json:attestation": {"tpm_roots": os.path.join(d, "tpm_roots.pem"),
                                       "apple_roots": os.path.join(d, "apple_roots.pem")}}
        with anvil_env.AnvilEnv(port_base=PORT_BASE, name="attest", config=cfg) as env:
            raw = ra.Wfe(env.directory_url, verify=env.trust_path)
            yield {"env": env, "raw": raw, "tpm": tpm, "ak_cert": ak_cert, "ak_ca": ak_ca,
                   "serial": serial, "apple_ca": apple_ca, "rogue_ca": rogue_ca}
    finally:
        tpm.close()
        shutil.rmtree(d, ignore_errors=True)


def device_order(w, value, typ="permanent-identifier"):
    key, kid = ra.new_account(w["raw"])
    r = w["raw"].post(w["raw"].dir["newOrder"],
                      {"identifiers": [{"type": typ, "value": value}], "profile": "device"},
                      key, kid=kid)
    assert r.status_code == 201, r.text
    order = r.json()
    authz = w["raw"].post(order["authorizations"][0], None, key, kid=kid).json()
    ch = [c for c in authz["challenges"] if c["type"] == "device-attest-01"]
    assert ch, authz
    return key, kid, r.headers["Location"], order, order["authorizations"][0], ch[0]


def tpm_attobj(w, key_authz, ak_cert=None, extra_x5c=()):
    cert_info, sig = w["tpm"].certify(hashlib.sha256(key_authz.encode()).digest())
    return cbor2.dumps({"fmt": "tpm", "attStmt": {
        "ver": "2.0", "alg": -7, "x5c": [ak_cert or w["ak_cert"]] + list(extra_x5c), "sig": sig,
        "certInfo": cert_info, "pubArea": w["tpm"].pub_area}})


def answer(w, key, kid, ch, att):
    r = w["raw"].post(ch["url"], {"attObj": b64u(att)}, key, kid=kid)
    assert r.status_code == 200, r.text
    return r


def wait_authz(w, key, kid, url):
    return ra.poll(w["raw"], key, kid, url, ("valid", "invalid"))


def key_authz(ch, key):
    return "%s.%s" % (ch["token"], key.thumbprint())


def assert_refused(authz, why):
    """§5: "If any of the steps fail, then the Server MUST respond to the
    Client with a "badAttestationStatement" error and set the status of
    the challenge object to "invalid". The Server MUST provide the reason
    for rejecting the challenge in the "detail" field"."""
    assert authz["status"] == "invalid", authz
    err = authz["challenges"][0]["error"]
    assert err["type"] == BAD_ATT, err
    assert why in err["detail"], err


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


def device_csr(cert_key, serial=None):
    """A CSR with the device's PermanentIdentifier in its SAN (§3.2), or
    none at all (§3.2: "Clients MAY omit identifiers of types
    permanent-identifier and hardware-module in the certificate signing
    request")."""
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if serial is not None:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.OtherName(PERMANENT_ID, permanent_identifier(serial))]), critical=True)
    return b.sign(cert_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def finalize(w, key, kid, order_url, order, csr):
    r = w["raw"].post(order["finalize"], {"csr": ra.b64(csr)}, key, kid=kid)
    return r


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
    r = finalize(w, key, kid, url, order,
                 device_csr(w["tpm"].key, w["serial"] if with_san else None))
    assert r.status_code == 200, r.text
    done = ra.poll(w["raw"], key, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    pem = w["raw"].post(done["certificate"], None, key, kid=kid).text
    leaf = x509.load_pem_x509_certificate(pem.encode())
    # §3.2: "this specification mandates that the identifierValue field of
    # the PermanentIdentifier MUST be present and MUST contain the
    # identifier"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    others = san.get_values_for_type(x509.OtherName)
    assert [(o.type_id, o.value) for o in others] == [
        (PERMANENT_ID, permanent_identifier(w["serial"]))]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
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
