"""A test DTN node for RFC 9891 bp-nodeid-00: a minimal BPv7 (RFC 9171)
agent behind a TCPCLv4 (RFC 9174; TLS when given a context) listener on
loopback, playing the client's BP agent. It answers the ACME Node ID Validation Challenge
Bundles whose id-chal the test authorized (RFC 9891 §4.1.1 client steps
3-8) with a Response Bundle on the same TCPCL session.

Written from the RFC texts with cbor2, hmac and hashlib, independently of
the VA's C code, including BPSec: the node checks the Block Integrity Block
of each Challenge Bundle (RFC 9891 §4.2.1) and puts one on its Response
Bundle (§4.3), both with the BIB-HMAC-SHA2 security context of RFC 9173 §3
(RFC 9172 Abstract Security Block).
Misbehaviours for refusal tests: mode "wrong-ka" (digest of another key
authorization), "wrong-source" (another source node ID), "silent" (no
answer), "malformed" (a bundle that is not well-formed), "no-bib" (no
BIB), "bad-bib" (an altered HMAC), "wrong-key" (a BIB made with another
key), "gateway" (a BIB from the integrity gateway dtn://gw.test/ of RFC
9891 §5), "payload-only" (a BIB whose scope leaves out the primary block),
"distrust-va" (the node checks the Challenge Bundle's BIB with another key
and so ignores it).

Run standalone for `make run` (configs/dev routes dtn://dtn-node.test/
and ipn:977000.0 to 127.0.0.1:4556):
  python3 test/integration/lib/dtn_node.py --node-id dtn://dtn-node.test/ \\
      --id-chal <id-chal> --token-chal <token-chal> --thumbprint <jwk thumbprint>
(the BIB keys default to those of configs/dev/va.json bp.bib)
"""
import argparse
import base64
import hashlib
import hmac
import io
import os
import socket
import struct
import threading
import time

import cbor2

DTN_EPOCH = 946684800  # 2000-01-01T00:00:00Z
ADMIN = 0x02
USER_APP_ACK = 0x20
ACME_RECORD = 0xFFFF  # the RFC's examples (AR-TBD); the VA's default
COSE_HASH = {-16: hashlib.sha256, -43: hashlib.sha384, -44: hashlib.sha512}
BIB = 11             # RFC 9172 §3.1 block type of the BIB
BIB_HMAC_SHA2 = 1    # RFC 9173 §3.2 security context id
SHA_VARIANT = {5: hashlib.sha256, 6: hashlib.sha384, 7: hashlib.sha512}  # §3.3.2
SCOPE_ALL = 7        # §3.3.3: primary block, target header, security header
GATEWAY = "dtn://gw.test/"
# configs/dev/va.json bp.bib keys (make run); tests pass their own
DEV_VA_KEY = bytes.fromhex("9afd8f28ef00d927c00e4254f0a8a2616a7de593250eb9f1cb139e4e87f51e96")
DEV_NODE_KEY = bytes.fromhex("5d96f3a8660fe3791c25653d87552838e5df1c7988e07beb0228aa80da1fb602")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_dec(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _crc_reflected(data, poly, mask):
    c = mask
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
    return c ^ mask


def crc32c(data):
    """RFC 9171 §4.2.1 CRC-32C (Castagnoli)."""
    return _crc_reflected(data, 0x82F63B78, 0xFFFFFFFF)


def crc16_x25(data):
    """RFC 9171 §4.2.1 CRC-16 X.25."""
    return _crc_reflected(data, 0x8408, 0xFFFF)


def eid_encode(text):
    """RFC 9171 §4.2.5.1.1/§4.2.5.1.2 CBOR form of an EID."""
    if text == "dtn:none":
        return [1, 0]
    if text.startswith("dtn:"):
        return [1, text[4:]]
    node, svc = text[4:].split(".")
    return [2, [int(node), int(svc)]]


def eid_text(eid):
    if eid[0] == 1:
        return "dtn:none" if eid[1] == 0 else "dtn:" + eid[1]
    return "ipn:%d.%d" % tuple(eid[1])


def block_with_crc(items, crc_type):
    """One block array with its CRC (RFC 9171 §4.2.1: computed over the
    block with the CRC field zero-filled)."""
    if crc_type == 0:
        return cbor2.dumps(items)
    n = 2 if crc_type == 1 else 4
    enc = cbor2.dumps(items + [bytes(n)])
    value = crc16_x25(enc) if crc_type == 1 else crc32c(enc)
    return enc[:-n] + value.to_bytes(n, "big")


def ippt(scope, primary_raw, target, sec_header):
    """RFC 9173 §3.7 Integrity-Protected Plaintext: the scope flags (other
    bits zeroed), the primary block (flag 0x1), the target's type, number
    and flags (0x2), the security block's (0x4), then the target's
    block-type-specific data as a CBOR byte string (the primary block
    itself, as a byte string, when the target is block 0)."""
    out = cbor2.dumps(scope & 7)
    if scope & 1:
        out += primary_raw
    if scope & 2 and target is not None:
        out += b"".join(cbor2.dumps(x) for x in target[:3])
    if scope & 4:
        out += b"".join(cbor2.dumps(x) for x in sec_header)
    return out + cbor2.dumps(target[4] if target is not None else primary_raw)


def bib_asb(targets, source, params, results):
    """RFC 9172 §3.6 Abstract Security Block: a CBOR sequence (no array)
    of targets, context id, context flags (1: parameters present), source,
    parameters, results."""
    return (cbor2.dumps(targets) + cbor2.dumps(BIB_HMAC_SHA2) + cbor2.dumps(1)
            + cbor2.dumps(eid_encode(source)) + cbor2.dumps(params)
            + cbor2.dumps(results))


def bib_make(primary_raw, blocks, key, source, variant=5, scope=SCOPE_ALL,
             targets=(1,), number=2, tamper=False):
    """A BIB block (items list) with BIB-HMAC-SHA2 over `targets` (each
    HMAC's first byte flipped when tamper)."""
    header = [BIB, number, 0]
    results = []
    for t in targets:
        tgt = next(b for b in blocks if b[1] == t) if t else None
        mac = hmac.new(key, ippt(scope, primary_raw, tgt, header),
                       SHA_VARIANT[variant]).digest()
        if tamper:
            mac = bytes([mac[0] ^ 1]) + mac[1:]
        results.append([[1, mac]])
    return header + [0, bib_asb(list(targets), source, [[1, variant], [3, scope]], results)]


def bib_parse(asb):
    """The fields of an ASB (RFC 9172 §3.6) with RFC 9173 defaults."""
    fp = io.BytesIO(asb)
    dec = cbor2.CBORDecoder(fp)
    targets, ctx, flags, source = dec.decode(), dec.decode(), dec.decode(), dec.decode()
    params = dict(dec.decode()) if flags & 1 else {}
    results = dec.decode()
    assert fp.tell() == len(asb), "data after the ASB"
    assert ctx == BIB_HMAC_SHA2, "security context %r" % ctx
    assert len(results) == len(targets), "one result set per target"
    return {"targets": targets, "source": eid_text(source),
            "variant": params.get(1, 6), "scope": params.get(3, 7),
            "macs": [dict(r)[1] for r in results]}


def bib_verify(primary_raw, blocks, trusted):
    """RFC 9891 §4.2.1: "The Challenge Bundle contains a BIB which covers
    at least the primary block and payload. That BIB has a security source
    which is trusted and passes security-context-specific validation (i.e.
    MAC or signature verification)." trusted: {source EID: key}. Returns
    the parsed BIB; raises AssertionError when there is none that does."""
    bibs = [(bib_parse(b[4]), b) for b in blocks if b[0] == BIB]
    assert bibs, "no BIB"
    for bib, blk in bibs:
        key = trusted.get(bib["source"])
        assert key is not None, "untrusted security source " + bib["source"]
        for t, mac in zip(bib["targets"], bib["macs"]):
            tgt = next(b for b in blocks if b[1] == t) if t else None
            want = hmac.new(key, ippt(bib["scope"], primary_raw, tgt, blk[:3]),
                            SHA_VARIANT[bib["variant"]]).digest()
            assert hmac.compare_digest(want, mac), "BIB HMAC mismatch"
        if 1 in bib["targets"] and (0 in bib["targets"] or bib["scope"] & 1):
            return bib
    raise AssertionError("no BIB covers the primary block and the payload")


def bundle_encode(flags, dest, src, created_ms, lifetime_ms, record, crc_type=2,
                  bib=None):
    """RFC 9171 §4.1: an indefinite-length array of the primary block, a
    BIB when bib = {"key", "source", "variant", "scope", "targets"} is
    given, and the payload block (administrative record as its data)."""
    primary = block_with_crc([7, flags, crc_type, eid_encode(dest), eid_encode(src),
                              [1, 0], [created_ms, 0], lifetime_ms], crc_type)
    payload = [1, 1, 0, crc_type, cbor2.dumps(record)]
    extra = b""
    if bib is not None:
        blk = bib_make(primary, [payload], **bib)
        blk[3] = crc_type
        extra = block_with_crc(blk, crc_type)
    return b"\x9f" + primary + extra + block_with_crc(payload, crc_type) + b"\xff"


def bundle_blocks(data):
    """The primary block's bytes and every block (items lists), each
    block's CRC checked."""
    assert data[0] == 0x9f and data[-1] == 0xff, "not an indefinite array"
    fp = io.BytesIO(data[1:-1])
    blocks, primary_raw = [], None
    while fp.tell() < len(data) - 2:
        start = fp.tell()
        blk = cbor2.CBORDecoder(fp).decode()
        raw = data[1 + start:1 + fp.tell()]
        crc_type = blk[2] if not blocks else blk[3]
        if crc_type:
            n = len(blk[-1])
            want = (crc16_x25 if crc_type == 1 else crc32c)(raw[:-n] + bytes(n))
            assert want.to_bytes(n, "big") == blk[-1], "CRC mismatch"
        if not blocks:
            primary_raw = raw
        blocks.append(blk)
    return primary_raw, blocks


def bundle_decode(data):
    """(primary list, payload data bytes) of a bundle, CRCs checked."""
    _, blocks = bundle_blocks(data)
    payload = [b for b in blocks[1:] if b[0] == 1]
    assert payload, "no payload block"
    return blocks[0], payload[0][4]


def key_authorization_digest(token_bundle, token_chal, thumbprint, alg=-16):
    """RFC 9891 §4.1.1 step 7-8: "concatenates token-bundle with
    token-chal (each as base64url-encoded text strings) and computes the
    Key Authorization" then its digest."""
    ka = b64u(token_bundle) + token_chal + "." + thumbprint
    return COSE_HASH[alg](ka.encode()).digest()


class DtnNode:
    """The listener and its authorizations. `received` keeps every
    Challenge Bundle as (primary, record, BIB fields or None), `ignored`
    the reason of each one ignored for its BIB. key: this node's BIB key;
    trusted: {security source: key} for Challenge Bundles; gateway_key:
    the key of GATEWAY (mode "gateway"); tls: a server-side
    ssl.SSLContext to offer TLS with (RFC 9174 §4.4)."""

    def __init__(self, node_id, host="127.0.0.1", port=0, key=DEV_NODE_KEY,
                 trusted=None, gateway_key=None, tls=None):
        self.node_id = node_id
        self.tls = tls  # an ssl.SSLContext (server side): offer CAN_TLS
        self.key = key
        self.trusted = trusted or {"dtn://anvil-va.test/": DEV_VA_KEY}
        self.gateway_key = gateway_key
        self.ignored = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.auth = {}
        self.received = []
        self.errors = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def authorize(self, id_chal, token_chal, thumbprint, mode="good"):
        """§4.1.1 step 3: the client tells its agent the id-chal it
        authorized, with token-chal and the account key thumbprint."""
        with self.lock:
            self.auth[b64u_dec(id_chal)] = (token_chal, thumbprint, mode)

    def close(self):
        self.stopping = True
        self.sock.close()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _msg(self, conn):
        """One TCPCLv4 message: (type, fields...)."""
        t = self._read(conn, 1)[0]
        if t == 0x07:  # SESS_INIT
            ka, seg, xfer, nlen = struct.unpack(">HQQH", self._read(conn, 20))
            node = self._read(conn, nlen).decode()
            elen = struct.unpack(">I", self._read(conn, 4))[0]
            self._read(conn, elen)
            return t, node
        if t == 0x01:  # XFER_SEGMENT
            flags, xid = struct.unpack(">BQ", self._read(conn, 9))
            if flags & 0x02:
                self._read(conn, struct.unpack(">I", self._read(conn, 4))[0])
            n = struct.unpack(">Q", self._read(conn, 8))[0]
            return t, flags, xid, self._read(conn, n)
        if t == 0x02:
            return (t,) + struct.unpack(">BQQ", self._read(conn, 17))
        if t == 0x05:
            return (t,) + struct.unpack(">BB", self._read(conn, 2))
        if t == 0x04:
            return (t,)
        raise ValueError("unexpected TCPCL message 0x%02x" % t)

    @staticmethod
    def _segment(xid, data):
        return (struct.pack(">BBQI", 0x01, 0x03, xid, 0)
                + struct.pack(">Q", len(data)) + data)

    def _session(self, conn):
        try:
            conn.settimeout(30)
            # RFC 9174 §4.2/§4.3: contact headers, then SESS_INIT both ways
            ch = self._read(conn, 6)
            assert ch[:4] == b"dtn!" and ch[4] == 4, ch
            conn.sendall(b"dtn!\x04" + bytes([1 if self.tls else 0]))
            # RFC 9174 §4.3: "Negotiation of the Enable TLS parameter is
            # performed by taking the logical AND of the two Contact
            # Headers' CAN_TLS flags." (the node is the passive entity)
            if self.tls is not None and ch[5] & 1:
                conn = self.tls.wrap_socket(conn, server_side=True)
            msg = self._msg(conn)
            assert msg[0] == 0x07, msg
            nid = self.node_id.encode()
            conn.sendall(struct.pack(">BHQQH", 0x07, 0, 65536, 65536, len(nid))
                         + nid + struct.pack(">I", 0))
            data = b""
            while True:
                msg = self._msg(conn)
                if msg[0] == 0x05:  # SESS_TERM: reply and end
                    conn.sendall(bytes([0x05, 0x01, msg[2]]))
                    return
                if msg[0] != 0x01:
                    continue
                _, flags, xid, chunk = msg
                data = chunk if flags & 0x02 else data + chunk
                conn.sendall(struct.pack(">BBQQ", 0x02, flags, xid, len(data)))
                if flags & 0x01:
                    reply = self._answer(data)
                    if reply is not None:
                        conn.sendall(self._segment(1, reply))
        except (EOFError, OSError):
            return
        except Exception as e:  # noqa: BLE001 - kept for the test to show
            self.errors.append(repr(e))
        finally:
            conn.close()

    def _challenge_bib(self, primary_raw, blocks, mode):
        """§4.2.1 BIB check; the BIB fields or None (ignored)."""
        trusted = self.trusted
        if mode == "distrust-va":
            trusted = {k: os.urandom(32) for k in trusted}
        try:
            return bib_verify(primary_raw, blocks, trusted)
        except AssertionError as e:
            self.ignored.append(str(e))
            return None

    def _response_bib(self, mode, source):
        """The BIB parameters of the Response Bundle for mode (§4.3:
        "Response Bundles SHALL include a BIB"), or None."""
        if mode == "no-bib":
            return None
        bib = {"key": self.key, "source": source}
        if mode == "wrong-key":
            bib["key"] = os.urandom(32)
        elif mode == "bad-bib":
            bib["tamper"] = True
        elif mode == "gateway":
            bib.update(key=self.gateway_key, source=GATEWAY)
        elif mode == "payload-only":
            bib["scope"] = 0
        return bib

    def _answer(self, data):
        """RFC 9891 §4.2.1 checks, then the Response Bundle of §4.3."""
        primary_raw, blocks = bundle_blocks(data)
        primary, payload = bundle_decode(data)
        flags, dest, src, (created, _), lifetime = (
            primary[1], eid_text(primary[3]), eid_text(primary[4]), primary[6], primary[7])
        assert flags & ADMIN and flags & USER_APP_ACK, "not a Challenge Bundle"
        rtype, rec = cbor2.loads(payload)
        assert rtype == ACME_RECORD, rtype
        with self.lock:
            auth = self.auth.get(rec[1])
        mode = auth[2] if auth else "good"
        bib = self._challenge_bib(primary_raw, blocks, mode)
        self.received.append((primary, rec, bib))
        now_ms = int((time.time() - DTN_EPOCH) * 1000)
        # "The Challenge Bundle was received within the time interval
        # allowed for the challenge." / "contains the id-chal as indicated
        # in the ACME challenge object" / "at least one hash algorithm
        # identifier acceptable to the client" / the BIB check above: "Any
        # of the failures above SHALL cause the challenge bundle to be
        # otherwise ignored by the BP agent."
        if auth is None or bib is None or not (created - 5000 <= now_ms <= created + lifetime):
            return None
        algs = [a for a in rec[4] if a in COSE_HASH]
        if not algs:
            return None
        token_chal, thumb, mode = auth
        if mode == "silent":
            return None
        if mode == "malformed":
            return b"\x9f\x88\x07\x02"  # a primary block cut short
        if mode == "wrong-ka":
            thumb = thumb[::-1]
        digest = key_authorization_digest(rec[2], token_chal, thumb, algs[0])
        source = "dtn://impostor.test/" if mode == "wrong-source" else dest
        # §4.3: destination = the challenge's source, source = its
        # destination, no user-app-ack, lifetime = what remains
        remaining = max(0, created + lifetime - now_ms)
        return bundle_encode(ADMIN, src, source, now_ms, remaining,
                             [ACME_RECORD, {1: rec[1], 2: rec[2], 3: [algs[0], digest]}],
                             bib=self._response_bib(mode, source))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--node-id", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4556)
    ap.add_argument("--id-chal", required=True)
    ap.add_argument("--token-chal", required=True)
    ap.add_argument("--thumbprint", required=True)
    ap.add_argument("--key", default=DEV_NODE_KEY.hex(), help="this node's BIB key (hex)")
    ap.add_argument("--va-node-id", default="dtn://anvil-va.test/")
    ap.add_argument("--va-key", default=DEV_VA_KEY.hex(), help="the VA's BIB key (hex)")
    a = ap.parse_args()
    node = DtnNode(a.node_id, a.host, a.port, key=bytes.fromhex(a.key),
                   trusted={a.va_node_id: bytes.fromhex(a.va_key)})
    node.authorize(a.id_chal, a.token_chal, a.thumbprint)
    print("TCPCLv4 node %s on %s:%d" % (a.node_id, a.host, node.port), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        node.close()


if __name__ == "__main__":
    main()
