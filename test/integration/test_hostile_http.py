"""Hostile HTTP against the WFE: slowloris, oversized headers and bodies,
thousands of connections, garbage TLS, HTTP/1.0 and pipelining. The WFE
must stay up, keep serving a well-behaved client and keep its memory
bounded (numbers printed)."""
import os
import socket
import ssl
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anvil_env import AnvilEnv, TOP  # noqa: E402


@pytest.fixture(scope="module")
def env():
    bindir = os.environ.get("BINDIR", os.path.join(TOP, "bin"))
    for b in ("anvil", "anvil-sa", "anvil-ca", "anvil-va", "anvil-ra", "anvil-wfe", "anvil-admin"):
        if not os.access(os.path.join(bindir, b), os.X_OK):
            pytest.skip("not built yet: " + b)
    base = int(os.environ.get("ANVIL_TEST_PORT_BASE", "24000")) + 400
    with AnvilEnv(port_base=base, name="hostile") as e:
        yield e


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def healthy(env):
    r = requests.get(env.directory_url, verify=env.trust_path, timeout=10)
    return r.status_code == 200 and "newNonce" in r.json()


def tls_sock(env, timeout=10):
    ctx = ssl.create_default_context(cafile=env.trust_path)
    s = socket.create_connection(("127.0.0.1", env.ports["wfe"]), timeout=timeout)
    return ctx.wrap_socket(s, server_hostname="localhost")


def test_slowloris_does_not_starve(env):
    socks = []
    for _ in range(200):
        try:
            s = tls_sock(env)
            s.send(b"GET /directory HTTP/1.1\r\nHost: localhost\r\nX-a: ")
            socks.append(s)
        except OSError:
            break
    t0 = time.time()
    ok = healthy(env)
    print("slowloris: %d half-open connections, directory answered in %.3fs" % (len(socks), time.time() - t0))
    for s in socks:
        s.close()
    assert ok


def test_oversized_header_and_body(env):
    s = tls_sock(env)
    s.send(b"GET /directory HTTP/1.1\r\nHost: localhost\r\nX-big: " + b"a" * 200000 + b"\r\n\r\n")
    try:
        data = s.recv(4096)
    except OSError:
        data = b""
    s.close()
    assert data == b"" or data.split(b" ")[1] in (b"400", b"413", b"431"), data[:100]
    r = requests.post(env.directory_url.replace("/directory", "/acme/new-order"), data=b"x" * (2 * 1024 * 1024),
                      headers={"Content-Type": "application/jose+json"}, verify=env.trust_path, timeout=30)
    assert r.status_code in (400, 413), r.status_code
    assert healthy(env)


def test_many_connections_memory_bounded(env):
    pid = env.pid_of("wfe")
    before = rss_kb(pid)
    socks = []
    for _ in range(2000):
        try:
            socks.append(socket.create_connection(("127.0.0.1", env.ports["wfe"]), timeout=5))
        except OSError:
            break
    mid = rss_kb(pid)
    ok = healthy(env)
    for s in socks:
        s.close()
    time.sleep(1)
    after = rss_kb(pid)
    print("connections: opened %d; WFE RSS %d kB before, %d kB with them open, %d kB after" % (len(socks), before, mid, after))
    assert ok
    assert mid < before + 256 * 1024, "RSS grew by more than 256 MB"


def test_garbage_tls_and_plain_http(env):
    for payload in (b"\x16\x03\x01\x00\x05garbage", b"GET / HTTP/1.0\r\n\r\n", os.urandom(4096)):
        s = socket.create_connection(("127.0.0.1", env.ports["wfe"]), timeout=5)
        try:
            s.send(payload)
            s.recv(100)
        except OSError:
            pass
        s.close()
    assert healthy(env)


def test_http10_and_pipelining(env):
    s = tls_sock(env)
    s.send(b"GET /directory HTTP/1.0\r\nHost: localhost\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n")[0]
    s = tls_sock(env)
    req = b"GET /directory HTTP/1.1\r\nHost: localhost\r\n\r\n"
    s.send(req * 3 + b"HEAD /acme/new-nonce HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    s.settimeout(10)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    s.close()
    assert data.count(b"HTTP/1.1 200") == 4, data[:300]
    assert healthy(env)
