"""anvil-loadgen's HTTP client never sends a POST twice on its own.

A small HTTPS server (Python ssl, HTTP/1.1 keep-alive) plays the ACME
directory, newNonce and newAccount, then closes the kept-alive connection
after reading the first newOrder without answering it, as HAProxy does to
the sessions of a WFE it marks down (`make test-cluster`, app machine cut
off). RFC 9110 §9.2.2: "A user agent SHOULD NOT automatically retry a
request with a non-idempotent method unless it has some means to know that
the request semantics are actually idempotent ... or some means to detect
that the original request was never applied." The newOrder may have been
applied, so the load generator must count a transport failure and not send
it again (it used to: a finalize sent again met its own order processing,
orderNotReady, issue 25).

Ports: the server on an ephemeral loopback port; responder off.
"""
import http.server
import json
import os
import ssl
import subprocess
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BINDIR = os.environ.get("BINDIR", os.path.join(TOP, "bin"))


class Acme(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the WFE
    new_orders = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        self.send_header("Replay-Nonce", "n%d" % id(self))
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.server.server_address[1], path)

    def do_GET(self):
        self.reply(200, json.dumps({"newNonce": self.url("/nonce"), "newAccount": self.url("/acct"),
                                    "newOrder": self.url("/order")}).encode(),
                   [("Content-Type", "application/json")])

    def do_HEAD(self):
        self.reply(200)

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/acct":
            self.reply(201, b"{}", [("Location", self.url("/acct/1")),
                                    ("Content-Type", "application/json")])
            return
        with Acme.lock:
            Acme.new_orders += 1
        # Read and maybe applied; the connection is cut, nothing answered.
        self.close_connection = True


@pytest.fixture()
def server(tmp_path):
    key, cert = str(tmp_path / "key.pem"), str(tmp_path / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Acme)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    Acme.new_orders = 0
    yield srv, cert
    srv.shutdown()
    srv.server_close()


def test_a_post_cut_off_after_sending_is_not_sent_again(server):
    srv, cert = server
    out = subprocess.run([os.path.join(BINDIR, "anvil-loadgen"), "--directory",
                          "https://127.0.0.1:%d/dir" % srv.server_address[1], "--trust", cert,
                          "--clients", "1", "--count", "1", "--no-responder", "--timeout", "10s",
                          "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert report["accounts"] == 1, report
    assert report["failures"] == {"transport": 1}, report
    # the example names the request that was cut off
    assert report["failure_examples"]["transport"][0].startswith(
        "https://127.0.0.1:%d/order: " % srv.server_address[1]), report
    assert Acme.new_orders == 1, "newOrder sent %d times" % Acme.new_orders
