"""Test attestation helpers shared by test_ext_attest.py (device-attest-01)
and test_ext_rats.py (remote-attest-01): a test CA that issues attestation
certificates, and a private swtpm (its own state directory and Unix
sockets) with an EK, an AK and an imported P-256 key, driven by
tpm2-tools and raw TPM commands (TPM2_Certify, TPM2_Quote)."""
import base64
import datetime
import hashlib
import os
import socket
import struct
import subprocess
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from rel_acme import _der_len

AIK_EKU = x509.ObjectIdentifier("2.23.133.8.3")
PERMANENT_ID = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.3")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der(tag, body):
    return bytes([tag]) + _der_len(len(body)) + body


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

    def issue(self, pub, extensions, subject=None, ca=False):
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder()
             .subject_name(subject if subject is not None else x509.Name([]))
             .issuer_name(self.cert.subject).public_key(pub)
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
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
        end = time.time() + 60
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

    def _signed(self, name, cc, handles, n_auth, params):
        """Sends command cc with handles, n_auth empty password sessions
        and params; returns (TPMS_ATTEST, DER ECDSA signature) of the
        TPM2B_ATTEST + TPMT_SIGNATURE reply (TPM2_Certify, TPM2_Quote)."""
        pw = struct.pack(">IHBH", 0x40000009, 0, 0, 0)  # TPM_RS_PW, empty
        body = b"".join(struct.pack(">I", h) for h in handles)
        body += struct.pack(">I", n_auth * len(pw)) + pw * n_auth + params
        cmd = struct.pack(">HII", 0x8002, 10 + len(body), cc) + body
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(60)
        s.connect(self.sock)
        s.sendall(cmd)
        resp = b""
        while len(resp) < 10 or len(resp) < struct.unpack(">I", resp[2:6])[0]:
            chunk = s.recv(65536)
            assert chunk, "swtpm closed the connection"
            resp += chunk
        s.close()
        rc = struct.unpack(">I", resp[6:10])[0]
        assert rc == 0, "%s rc 0x%x" % (name, rc)
        p = 14  # header + parameterSize
        n = struct.unpack(">H", resp[p:p + 2])[0]
        attest = resp[p + 2:p + 2 + n]
        p += 2 + n
        sig_alg, _hash = struct.unpack(">HH", resp[p:p + 4])
        assert sig_alg == 0x0018  # TPM_ALG_ECDSA
        p += 4
        rl = struct.unpack(">H", resp[p:p + 2])[0]
        r = int.from_bytes(resp[p + 2:p + 2 + rl], "big")
        p += 2 + rl
        sl = struct.unpack(">H", resp[p:p + 2])[0]
        s_ = int.from_bytes(resp[p + 2:p + 2 + sl], "big")
        return attest, encode_dss_signature(r, s_)

    def certify(self, qualifying):
        """TPM2_Certify(KEY by AK, qualifyingData): (certInfo, DER sig)."""
        return self._signed("TPM2_Certify", 0x00000148, (self.KEY, self.AK), 2,
                            struct.pack(">H", len(qualifying)) + qualifying
                            + struct.pack(">H", 0x0010))

    def quote(self, qualifying, pcrs=range(8)):
        """TPM2_Quote(by AK, qualifyingData, sha256 PCRs): (TPMS_ATTEST,
        DER sig)."""
        bitmap = bytearray(3)
        for i in pcrs:
            bitmap[i // 8] |= 1 << (i % 8)
        sel = struct.pack(">IHB", 1, 0x000b, 3) + bytes(bitmap)
        return self._signed("TPM2_Quote", 0x00000158, (self.AK,), 1,
                            struct.pack(">H", len(qualifying)) + qualifying
                            + struct.pack(">H", 0x0010) + sel)

    def pcr_extend(self, index, data):
        self.tool("tpm2_pcrextend", "%d:sha256=%s" % (index, hashlib.sha256(data).hexdigest()))

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
