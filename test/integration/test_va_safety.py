"""VA safety through the whole system (issue 14).

An ACME client answers http-01 challenges with hostile responders; the
result is read back through ACME and the SA (validation records). Plus a
second anvil-va in public network mode, called over its RPC socket.

- redirects to a forbidden port or scheme are refused without connecting;
- DNS rebinding: the name's A record is changed while the VA talks to us;
  for every hop, the address the VA connected to (seen by our listener)
  is the address_used of the validation record;
- a responder that trickles bytes cannot hold a validation beyond the VA's
  validation_timeout; a huge body is cut off and the VA's memory stays
  bounded (RSS before/after in the output);
- in public mode, loopback / private targets are refused and never
  connected to.

Ports: AnvilEnv base 26800 (VA probes http-01 on 26802); extra listeners
on 26810-26819; the public VA's debug port 26820.
"""
import http.server
import json
import os
import socket
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402

PORT_BASE = 26800
FORBIDDEN_PORT = 26810
VALIDATION_TIMEOUT_S = 4


env = a.env_fixture(port_base=PORT_BASE, name="vasafety", config={
        "va.json:validation_timeout": "%ds" % VALIDATION_TIMEOUT_S})


raw = a.raw_fixture()


acct = a.account_fixture()


class Listener:
    """HTTP listener on addr:port; `behave(handler, token)` decides the
    answer. Records (local address, path) of every request it gets."""

    def __init__(self, addr, port, behave):
        self.hits = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.hits.append((self.connection.getsockname()[0], self.path))
                behave(self, self.path.rsplit("/", 1)[-1])

            def log_message(self, *args):
                pass

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.srv = S((addr, port), H)
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class RawAccept:
    """A bare TCP listener that only counts connections (a forbidden port)."""

    def __init__(self, addr, port):
        self.count = 0
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((addr, port))
        self.s.listen(16)
        self.s.settimeout(0.2)
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.s.accept()
                self.count += 1
                c.close()
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join(timeout=5)
        self.s.close()


def reply(h, status, body=b"", headers=()):
    h.send_response(status)
    for k, v in headers:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if body:
        h.wfile.write(body)


def set_a(env, host, addr):
    env.challtest("clear-a", {"host": host + "."})
    env.challtest("add-a", {"host": host + ".", "addresses": [addr]})


def start_http01(raw, acct, name):
    """New order for name, POST its http-01 challenge. Returns
    (authz URL, token, key authorization, seconds until the POST answered)."""
    key, kid = acct
    url, order = a.new_order(raw, key, kid, [name])
    az = order["authorizations"][0]
    ch = [c for c in raw.post(az, None, key, kid=kid).json()["challenges"] if c["type"] == "http-01"][0]
    return az, ch, "%s.%s" % (ch["token"], key.thumbprint())


def answer(raw, acct, ch):
    key, kid = acct
    r = raw.post(ch["url"], {}, key, kid=kid)
    assert r.status_code == 200, r.text


def wait_authz(raw, acct, az, timeout=60):
    key, kid = acct
    return a.poll(raw, key, kid, az, ("valid", "invalid"), timeout=timeout)


def validate_http01(raw, acct, name, *servers):
    """start_http01 + answer + wait_authz for name; closes servers (the
    test's listeners) in any case. Returns the final authorization."""
    try:
        az, ch, _ = start_http01(raw, acct, name)
        answer(raw, acct, ch)
        return wait_authz(raw, acct, az)
    finally:
        for s in servers:
            s.close()


def challenge_of(authz):
    return [c for c in authz["challenges"] if c["type"] == "http-01"][0]


# ---------------------------------------------------------------- redirects

@pytest.mark.parametrize("target", [
    "http://{name}:%d/.well-known/acme-challenge/{tok}" % FORBIDDEN_PORT,
    "http://{name}:22/.well-known/acme-challenge/{tok}",
    "ftp://{name}/.well-known/acme-challenge/{tok}",
    "file:///etc/passwd",
    "gopher://{name}:%d/{tok}" % FORBIDDEN_PORT,
    "http://user:pw@{name}:%d/{tok}" % FORBIDDEN_PORT,
])
def test_redirect_to_forbidden_port_or_scheme(env, raw, acct, target):
    name = "redir%d.va.test" % (abs(hash(target)) % 100000)
    set_a(env, name, "127.0.0.1")
    trap = RawAccept("127.0.0.1", FORBIDDEN_PORT)
    lst = Listener("127.0.0.1", env.ports["http01"], lambda h, tok: reply(
        h, 302, headers=[("Location", target.format(name=name, tok=tok))]))
    authz = validate_http01(raw, acct, name, lst, trap)
    assert authz["status"] == "invalid", authz
    err = challenge_of(authz)["error"]
    assert err["type"].startswith("urn:ietf:params:acme:error:"), err
    assert trap.count == 0, "the VA connected to the forbidden port"
    assert len(lst.hits) == 1


def test_redirect_loop_is_bounded(env, raw, acct):
    name = "loop.va.test"
    set_a(env, name, "127.0.0.1")
    lst = Listener("127.0.0.1", env.ports["http01"], lambda h, tok: reply(
        h, 302, headers=[("Location", "http://%s/.well-known/acme-challenge/%s?%d" % (name, tok.split("?")[0],
                                                                                     len(tok)))]))
    authz = validate_http01(raw, acct, name, lst)
    assert authz["status"] == "invalid"
    assert 1 <= len(lst.hits) <= 11, "followed %d redirects" % len(lst.hits)


# ---------------------------------------------------------------- DNS rebinding

def test_dns_rebinding_address_used_is_address_connected(env, raw, acct):
    """The A record moves from 127.0.0.3 to 127.0.0.4 during the first
    request; the VA follows a redirect to the same name. Each hop's
    address_used must be the address our listener saw that hop arrive on."""
    name = "rebind.va.test"
    set_a(env, name, "127.0.0.3")
    state = {"ka": None}

    def first(h, tok):
        if "?" in tok:  # the second hop came back to the old address
            return reply(h, 200, state["ka"].encode())
        set_a(env, name, "127.0.0.4")  # rebinding while the VA talks to us
        reply(h, 302, headers=[("Location", "http://%s:%d/.well-known/acme-challenge/%s?hop=2" %
                                (name, env.ports["http01"], tok))])

    def second(h, tok):
        reply(h, 200, state["ka"].encode())

    l3 = Listener("127.0.0.3", env.ports["http01"], first)
    l4 = Listener("127.0.0.4", env.ports["http01"], second)
    try:
        az, ch, state["ka"] = start_http01(raw, acct, name)
        answer(raw, acct, ch)
        authz = wait_authz(raw, acct, az)
    finally:
        l3.close()
        l4.close()
    seen = [h[0] for h in l3.hits + l4.hits]
    rec = a.sa_authz(env, az)
    chall = [c for c in rec["challenges"] if c["type"] == "http-01"][0]
    hops = chall["validation_record"]
    print("listener saw %s; validation record %s" % (seen, json.dumps(hops)))
    assert len(hops) == len(seen), (hops, seen)
    for hop, addr in zip(hops, seen):
        assert hop["address_used"] == addr, (hop, addr)
        assert addr in hop["addresses_resolved"]
    # whatever the outcome, it must be consistent with what was connected to
    assert authz["status"] in ("valid", "invalid")


# ---------------------------------------------------------------- time and memory

def va_rss_kb(env):
    with open("/proc/%d/status" % env.pid_of("va")) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def va_http01_seconds(env):
    """(seconds, validations) the env's VA counted for http-01 so far
    (anvil_va_validation_duration_seconds _sum and _count): the VA's own
    time from start to result, which its validation_timeout bounds; what a
    client measures adds the WFE, the RA and its polls, which a busy
    machine stretches by seconds."""
    status, text = env.debug_get("va")
    assert status == 200, text
    secs = n = 0.0
    for line in text.splitlines():
        if 'type="http-01"' not in line:
            continue
        if line.startswith("anvil_va_validation_duration_seconds_sum{"):
            secs += float(line.rsplit(" ", 1)[1])
        elif line.startswith("anvil_va_validation_duration_seconds_count{"):
            n += float(line.rsplit(" ", 1)[1])
    return secs, n


def test_trickling_responder_is_cut_off(env, raw, acct):
    name = "trickle.va.test"
    set_a(env, name, "127.0.0.1")
    stop = threading.Event()

    def trickle(h, tok):
        # The status line, then one header byte every 0.5 s: the headers
        # never end, every read makes progress.
        try:
            h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            h.wfile.flush()
            while not stop.is_set():
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.5)
        except OSError:
            return

    lst = Listener("127.0.0.1", env.ports["http01"], trickle)
    try:
        az, ch, _ = start_http01(raw, acct, name)
        va0 = va_http01_seconds(env)
        t0 = time.time()
        answer(raw, acct, ch)
        authz = wait_authz(raw, acct, az, timeout=60)
        took = time.time() - t0
        va1 = va_http01_seconds(env)
    finally:
        stop.set()
        lst.close()
    va_took = va1[0] - va0[0]
    print("trickling responder: validation ended after %.1f s in the VA, %.1f s for the client "
          "(timeout %d s)" % (va_took, took, VALIDATION_TIMEOUT_S))
    assert authz["status"] == "invalid"
    # one validation, cut off by the VA's own deadline (the trickle never
    # ends: without the deadline it would run until the responder stops)
    assert va1[1] - va0[1] == 1, (va0, va1)
    assert va_took < VALIDATION_TIMEOUT_S + 2, va_took


def test_huge_body_bounded_time_and_memory(env, raw, acct):
    name = "huge.va.test"
    set_a(env, name, "127.0.0.1")
    chunk = b"y" * 65536

    def huge(h, tok):
        h.send_response(200)
        h.send_header("Content-Length", str(len(chunk) * 1600))  # 100 MiB
        h.end_headers()
        try:
            for _ in range(1600):
                h.wfile.write(chunk)
        except OSError:
            pass

    before = va_rss_kb(env)
    lst = Listener("127.0.0.1", env.ports["http01"], huge)
    took, va_took = [], []
    try:
        for i in range(3):
            az, ch, _ = start_http01(raw, acct, "h%d.%s" % (i, name))
            set_a(env, "h%d.%s" % (i, name), "127.0.0.1")
            va0 = va_http01_seconds(env)
            t0 = time.time()
            answer(raw, acct, ch)
            authz = wait_authz(raw, acct, az)
            took.append(time.time() - t0)
            va1 = va_http01_seconds(env)
            assert va1[1] - va0[1] == 1, (va0, va1)
            va_took.append(va1[0] - va0[0])
            assert authz["status"] == "invalid"
            assert challenge_of(authz)["error"]["type"].endswith((":unauthorized", ":incorrectResponse",
                                                                   ":connection"))
    finally:
        lst.close()
    after = va_rss_kb(env)
    print("100 MiB bodies: validations took %s s in the VA (%s s for the client); VA RSS %d kB -> %d kB" %
          (["%.2f" % t for t in va_took], ["%.2f" % t for t in took], before, after))
    # bounded by the VA's deadline whatever the body's size
    assert max(va_took) < VALIDATION_TIMEOUT_S + 2, va_took
    assert after - before < 20 * 1024, "VA RSS grew by %d kB" % (after - before)


# ---------------------------------------------------------------- public mode

@pytest.fixture(scope="module")
def public_va(env):
    with open(os.path.join(env.cfg_dir, "va.json")) as f:
        cfg = json.load(f)
    sock = os.path.join(env.var_dir, "run", "va-public.sock")
    cfg["rpc"]["listen"] = "unix:" + sock
    cfg["debug"] = {"addr": "127.0.0.1", "port": PORT_BASE + 20}
    cfg["network"] = {"mode": "public", "allow": []}
    p = env.spawn("anvil-va", "va-public", cfg)
    end = time.time() + 15
    while not os.path.exists(sock):
        assert p.poll() is None and time.time() < end, "public VA did not start"
        time.sleep(0.1)
    yield anvil_env.RpcClient("unix:" + sock)
    p.terminate()
    p.wait(timeout=10)


@pytest.mark.parametrize("ident", [
    {"type": "ip", "value": "127.0.0.1"},
    {"type": "ip", "value": "10.1.2.3"},
    {"type": "dns", "value": "loopback.va.test"},
    {"type": "dns", "value": "private.va.test"},
])
def test_public_mode_refuses_private_targets(env, public_va, ident):
    set_a(env, "loopback.va.test", "127.0.0.1")
    set_a(env, "private.va.test", "192.168.1.1")
    lst = Listener("127.0.0.1", env.ports["http01"], lambda h, tok: reply(h, 200, b"whatever"))
    try:
        t0 = time.time()
        res = public_va.call("va.validate", {
            "identifier": ident, "wildcard": False,
            "challenge": {"type": "http-01", "token": "pubtoken"},
            "key_authorization": "pubtoken.thumb", "account_uri": "https://x/acct/1", "check_caa": False})
        took = time.time() - t0
    finally:
        lst.close()
    assert res["status"] == "invalid", res
    assert res["error"]["type"] in ("connection", "dns", "rejectedIdentifier", "unauthorized"), res
    assert not lst.hits, "the public VA connected to a private address"
    assert took < VALIDATION_TIMEOUT_S + 2
