"""A test DTN node for RFC 9891 bp-nodeid-00: a minimal BPv7 (RFC 9171)
agent behind a TCPCLv4 (RFC 9174, no TLS) listener on loopback, playing
the client's BP agent. It answers the ACME Node ID Validation Challenge
Bundles whose id-chal the test authorized (RFC 9891 §4.1.1 client steps
3-8) with a Response Bundle on the same TCPCL session.

Written from the RFC texts with cbor2, independently of the VA's C code.
Misbehaviours for refusal tests: mode "wrong-ka" (digest of another key
authorization), "wrong-source" (another source node ID), "silent" (no
answer), "malformed" (a bundle that is not well-formed).

Run standalone for `make run` (configs/dev routes dtn://dtn-node.test/
and ipn:977000.0 to 127.0.0.1:4556):
  python3 test/integration/lib/dtn_node.py --node-id dtn://dtn-node.test/ \\
      --id-chal <id-chal> --token-chal <token-chal> --thumbprint <jwk thumbprint>
"""
import argparse
import base64
import hashlib
import io
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


def bundle_encode(flags, dest, src, created_ms, lifetime_ms, record, crc_type=2):
    """RFC 9171 §4.1: an indefinite-length array of the primary block and
    the payload block (administrative record as its data)."""
    primary = [7, flags, crc_type, eid_encode(dest), eid_encode(src), [1, 0],
               [created_ms, 0], lifetime_ms]
    payload = [1, 1, 0, crc_type, cbor2.dumps(record)]
    return (b"\x9f" + block_with_crc(primary, crc_type)
            + block_with_crc(payload, crc_type) + b"\xff")


def bundle_decode(data):
    """The blocks of a bundle with each block's CRC checked. Returns
    (primary list, payload data bytes)."""
    assert data[0] == 0x9f and data[-1] == 0xff, "not an indefinite array"
    fp = io.BytesIO(data[1:-1])
    blocks = []
    while fp.tell() < len(data) - 2:
        start = fp.tell()
        blk = cbor2.CBORDecoder(fp).decode()
        raw = data[1 + start:1 + fp.tell()]
        crc_type = blk[2] if len(blocks) == 0 else blk[3]
        if crc_type:
            n = len(blk[-1])
            want = (crc16_x25 if crc_type == 1 else crc32c)(raw[:-n] + bytes(n))
            assert want.to_bytes(n, "big") == blk[-1], "CRC mismatch"
        blocks.append(blk)
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
    Challenge Bundle as (primary, record) for assertions."""

    def __init__(self, node_id, host="127.0.0.1", port=0):
        self.node_id = node_id
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
            conn.sendall(b"dtn!\x04\x00")
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

    def _answer(self, data):
        """RFC 9891 §4.2.1 checks, then the Response Bundle of §4.3."""
        primary, payload = bundle_decode(data)
        flags, dest, src, (created, _), lifetime = (
            primary[1], eid_text(primary[3]), eid_text(primary[4]), primary[6], primary[7])
        assert flags & ADMIN and flags & USER_APP_ACK, "not a Challenge Bundle"
        rtype, rec = cbor2.loads(payload)
        self.received.append((primary, rec))
        assert rtype == ACME_RECORD, rtype
        with self.lock:
            auth = self.auth.get(rec[1])
        now_ms = int((time.time() - DTN_EPOCH) * 1000)
        # "The Challenge Bundle was received within the time interval
        # allowed for the challenge." / "contains the id-chal as indicated
        # in the ACME challenge object" / "at least one hash algorithm
        # identifier acceptable to the client"
        if auth is None or not (created - 5000 <= now_ms <= created + lifetime):
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
                             [ACME_RECORD, {1: rec[1], 2: rec[2], 3: [algs[0], digest]}])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--node-id", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4556)
    ap.add_argument("--id-chal", required=True)
    ap.add_argument("--token-chal", required=True)
    ap.add_argument("--thumbprint", required=True)
    a = ap.parse_args()
    node = DtnNode(a.node_id, a.host, a.port)
    node.authorize(a.id_chal, a.token_chal, a.thumbprint)
    print("TCPCLv4 node %s on %s:%d" % (a.node_id, a.host, node.port), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        node.close()


if __name__ == "__main__":
    main()
