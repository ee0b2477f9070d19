"""TLS floor of the WFE's HTTPS listeners (issue 19).

RFC 8555 §6.1: "ACME servers SHOULD follow the recommendations detailed in
[BCP 195]"; RFC 8996 (part of BCP 195): "TLS 1.0 MUST NOT be used" and "TLS
1.1 MUST NOT be used"; RFC 9325 §4.2: TLS 1.2 with AEAD cipher suites only.
The ACME listener and the management listener (management.tls) are started
alone (anvil-wfe with no RA: only handshakes are tested) and a client that
offers exactly one old version, or TLS 1.2 with only CBC suites, is
refused. TLS 1.2 with an AEAD suite and TLS 1.3 work. `tls.priorities`
makes the policy configurable.

The RPC listeners' floor (OpenSSL, mutual TLS) is tested in
test_rpc_tls.sh. Ports 29300-29309.
"""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_wfe_http as h  # noqa: E402

PORT = 29300
MGMT = 29301
PORT_OPEN = 29302


def handshake(port, version=None, ciphers=None):
    """Negotiated (version, cipher) or raises ssl.SSLError / OSError. The
    client itself allows everything (security level 0), so a refusal is
    the server's."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version(), s.cipher()[0]


def refused(port, version=None, ciphers=None):
    try:
        got = handshake(port, version, ciphers)
    except (ssl.SSLError, OSError):
        return True
    return "negotiated %s %s" % got


@pytest.fixture(scope="module")
def wfe():
    d = tempfile.mkdtemp(prefix="wfe-tls-")
    h.make_tls(d)
    p = h.start_wfe(d, PORT, "t1", management={"addr": "127.0.0.1", "port": MGMT, "tls": True})
    h.wait_port(MGMT, p)
    try:
        yield p
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("port", [PORT, MGMT], ids=["acme", "management"])
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["tls1.0", "tls1.1"])
def test_old_tls_versions_refused(wfe, port, version):
    assert refused(port, version) is True


@pytest.mark.parametrize("port", [PORT, MGMT], ids=["acme", "management"])
def test_tls12_cbc_suites_refused(wfe, port):
    """TLS 1.2 offering only CBC (non-AEAD) suites such as
    ECDHE-ECDSA-AES256-SHA: refused."""
    assert refused(port, ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:"
                   "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA") is True


@pytest.mark.parametrize("port", [PORT, MGMT], ids=["acme", "management"])
def test_tls12_aead_and_tls13_work(wfe, port):
    v, c = handshake(port, ssl.TLSVersion.TLSv1_2)
    assert v == "TLSv1.2" and ("GCM" in c or "CHACHA20" in c), (v, c)
    v, _ = handshake(port, ssl.TLSVersion.TLSv1_3)
    assert v == "TLSv1.3"


def test_priorities_are_configurable():
    """tls.priorities replaces the default: a listener configured to allow
    TLS 1.1 negotiates it (so the refusals above are the default policy,
    not the client); a priority string GnuTLS refuses stops the start with
    an error naming tls.priorities."""
    d = tempfile.mkdtemp(prefix="wfe-tls-open-")
    h.make_tls(d)
    tls = {"cert": os.path.join(d, "tls.pem"), "key": os.path.join(d, "tls.key"),
           "priorities": "NORMAL:+VERS-TLS1.1:+VERS-TLS1.0:%VERIFY_ALLOW_SIGN_WITH_SHA1"}
    p = h.start_wfe(d, PORT_OPEN, "t2", tls=tls)
    try:
        v, _ = handshake(PORT_OPEN, ssl.TLSVersion.TLSv1_1)
        assert v == "TLSv1.1"
    finally:
        p.terminate()
        p.wait(timeout=10)
    tls["priorities"] = "NO-SUCH-KEYWORD"
    path = os.path.join(d, "bad.json")
    cfg = {"listen": {"addr": "127.0.0.1", "port": PORT_OPEN}, "tls": tls,
           "base_url": "https://localhost:%d" % PORT_OPEN,
           "ra": {"target": "unix:%s/ra.sock" % d}, "sa": {"target": "unix:%s/sa.sock" % d},
           "ca": {"target": "unix:%s/ca.sock" % d}}
    import json
    with open(path, "w") as f:
        json.dump(cfg, f)
    r = subprocess.run([os.path.join(h.BINDIR, "anvil-wfe"), "--config", path],
                       capture_output=True, text=True, timeout=30)
    shutil.rmtree(d, ignore_errors=True)
    assert r.returncode != 0
    assert "tls.priorities" in r.stdout + r.stderr, r.stdout + r.stderr
