"""Minimal Anvil RPC client for tests (see docs/rpc.md).

    c = RpcClient("unix:/path/sa.sock")
    res = c.call("sa.get_account", {"id": 1})      # raises RpcError on error
"""
import itertools
import json
import socket
import struct
import time


class RpcError(Exception):
    def __init__(self, problem):
        super().__init__("%s: %s" % (problem.get("type"), problem.get("detail")))
        self.problem = problem
        self.type = problem.get("type")


class RpcClient:
    def __init__(self, target, timeout=30.0, ssl_context=None, server_name=None):
        """ssl_context: an ssl.SSLContext with the RPC CA and a client
        certificate loaded, for "tcp:" targets that use mutual TLS."""
        self.ssl_context = ssl_context
        self.server_name = server_name
        self.target = target
        self.timeout = timeout
        self.ids = itertools.count(1)
        self.sock = None

    def connect(self):
        kind, _, addr = self.target.partition(":")
        if kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(addr)
        elif kind == "tcp":
            host, _, port = addr.rpartition(":")
            s = socket.create_connection((host, int(port)))
            if self.ssl_context is not None:
                s = self.ssl_context.wrap_socket(s, server_hostname=self.server_name or host)
        else:
            raise ValueError("bad target " + self.target)
        s.settimeout(self.timeout)
        self.sock = s

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed")
            buf += chunk
        return buf

    def send_raw(self, payload: bytes):
        if self.sock is None:
            self.connect()
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def recv_frame(self):
        (n,) = struct.unpack(">I", self._recv_exact(4))
        return json.loads(self._recv_exact(n))

    def call(self, method, params=None, deadline_ms=None, request_id=None):
        rid = next(self.ids)
        req = {"id": rid, "method": method, "params": params or {}}
        req["deadline_ms"] = deadline_ms or int(time.time() * 1000 + self.timeout * 1000)
        if request_id:
            req["request_id"] = request_id
        self.send_raw(json.dumps(req).encode())
        while True:
            resp = self.recv_frame()
            if resp.get("id") == rid:
                break
        if "error" in resp:
            raise RpcError(resp["error"])
        return resp.get("result")
