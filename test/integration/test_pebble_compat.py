"""Pebble-compatible behaviour of the test modes (issue 20): any valid name,
PEBBLE_ALTERNATE_ROOTS with Pebble's Link headers on the management API,
the access log and TLS handshake errors logged with the peer.

One Anvil from configs/testmode (always-valid VA) started with
PEBBLE_ALTERNATE_ROOTS=3 and ANVIL_WFE_ACCESS_LOG=1.
Ports: AnvilEnv base 28400 (testmode range 28000-28999).
"""
import os
import re
import socket
import ssl
import sys
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as ra  # noqa: E402

BASE = 28400
ALT = 3


@pytest.fixture(scope="module")
def env():
    with anvil_env.AnvilEnv(port_base=BASE, name="pebblecompat", src="configs/testmode",
                            env={"PEBBLE_VA_ALWAYS_VALID": "1", "PEBBLE_VA_NOSLEEP": "1",
                                 "PEBBLE_WFE_NONCEREJECT": "0",
                                 "PEBBLE_ALTERNATE_ROOTS": str(ALT),
                                 "ANVIL_WFE_ACCESS_LOG": "1"}) as e:
        yield e


raw = ra.raw_fixture()


acct = ra.account_fixture()


def mgmt(env):
    return "http://127.0.0.1:%d" % env.ports["mgmt"]


def links(r):
    return re.findall(r'<([^>]+)>;rel="alternate"', r.headers.get("Link", ""))


def wait_for_log(env, pattern, timeout=60):
    end = time.time() + timeout
    while True:
        with open(env.log_path("wfe"), errors="replace") as f:
            text = f.read()
        m = re.search(pattern, text, re.M)
        if m:
            return m
        assert time.time() < end, "no %r in the WFE log:\n%s" % (pattern, text[-3000:])
        time.sleep(0.1)


def test_any_valid_name_in_test_mode(raw, acct):
    """Pebble issues for any syntactically valid name; suites hard-code
    names under .com, .wtf, .xyz. policy.mode "any" does the same, and
    still refuses malformed names."""
    key, kid = acct
    names = ["www.example.com", "a.b.wtf", "x.xyz", "*.wild.example.org"]
    url, order = ra.new_order(raw, key, kid, names)
    assert sorted(i["value"] for i in order["identifiers"]) == sorted(names)
    for bad in ("bad..name.com", "-lead.example.com", "a.*.example.com"):
        r = raw.post(raw.dir["newOrder"], {"identifiers": [{"type": "dns", "value": bad}]}, key, kid=kid)
        ra.problem(r, 400, "rejectedIdentifier")


def test_alternate_roots_and_links(env, raw, acct):
    """PEBBLE_ALTERNATE_ROOTS=N: N+1 chains; /roots/<n> and
    /intermediates/<n> carry Link: <.../roots/<m>>;rel="alternate" for the
    other chains, as Pebble's management API does; every alternate chain
    of an issued certificate verifies up to its root."""
    s = requests.Session()
    s.trust_env = False
    base = mgmt(env)
    roots, inters = [], []
    for n in range(ALT + 1):
        r = s.get("%s/roots/%d" % (base, n), timeout=30)
        assert r.status_code == 200, (n, r.text)
        want = sorted("%s/roots/%d" % (base, m) for m in range(ALT + 1) if m != n)
        assert sorted(links(r)) == want, r.headers.get("Link")
        roots.append(x509.load_pem_x509_certificate(r.content))
        r = s.get("%s/intermediates/%d" % (base, n), timeout=30)
        assert r.status_code == 200
        assert sorted(links(r)) == sorted("%s/intermediates/%d" % (base, m)
                                          for m in range(ALT + 1) if m != n)
        inters.append(x509.load_pem_x509_certificate(r.content))
    assert s.get("%s/roots/%d" % (base, ALT + 1), timeout=30).status_code == 404
    assert len({r.subject for r in roots}) == ALT + 1
    # all intermediates are the same issuer (subject and key) under N+1 roots
    assert len({i.subject for i in inters}) == 1
    for root, inter in zip(roots, inters):
        assert inter.issuer == root.subject
        root.public_key().verify(inter.signature, inter.tbs_certificate_bytes,
                                 ec.ECDSA(inter.signature_hash_algorithm))
    # an issued certificate offers every chain
    key, kid = acct
    got = ra.issue(raw, key, kid, ["alt.example.net"])
    cert_url = got["order"]["certificate"]
    r = raw.post(cert_url, None, key, kid=kid)
    alts = links(r)
    assert len(alts) == ALT
    leaf = got["leaf"]
    for u in alts:
        r = raw.post(u, None, key, kid=kid)
        assert r.status_code == 200
        chain = [x509.load_pem_x509_certificate(("-----BEGIN" + b).encode())
                 for b in r.text.split("-----BEGIN")[1:]]
        assert chain[0] == leaf
        inter = chain[1]
        assert any(inter == i for i in inters[1:]), "alternate chain not from /intermediates/<n>"
        inter.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                                  ec.ECDSA(leaf.signature_hash_algorithm))


def test_access_log_one_line_per_request(env, raw):
    """ANVIL_WFE_ACCESS_LOG=1: one line per request with listener, method,
    target, status and time."""
    marker = "/acme/no-such-thing-%d" % os.getpid()
    assert raw.s.get(raw.base + marker).status_code == 404
    m = wait_for_log(env, r'access 127\.0\.0\.1 acme "GET %s" 404 \d+ route=unknown ms=\d+' % re.escape(marker))
    assert m
    raw.s.get(raw.directory_url)
    wait_for_log(env, r'access 127\.0\.0\.1 acme "GET /directory" 200 \d+ route=directory ms=\d+')


def test_tls_handshake_error_logged_with_peer(env):
    """A client that fails the TLS handshake is logged with its address,
    at most once a second (a flood of them does not flood the log)."""
    port = env.ports["wfe"]
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP to the TLS port
            try:
                c.recv(100)
            except OSError:
                pass
    m = wait_for_log(env, r"TLS handshake with 127\.0\.0\.1:\d+ failed")
    assert m
    with open(env.log_path("wfe"), errors="replace") as f:
        lines = [ln for ln in f if "TLS handshake with" in ln]
    assert 1 <= len(lines) < 20, lines
