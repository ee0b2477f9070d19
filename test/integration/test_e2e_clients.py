"""End to end: real ACME clients (certbot, lego) against a whole Anvil.

The system is started exactly as `make run` does (launcher, private
PostgreSQL, pebble-challtestsrv as DNS) on ports of its own; every client
trusts env.trust_path. The commands are the ones docs/quickstart.md shows.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anvil_env import AnvilEnv, TOP  # noqa: E402
from openssl_cli import crl_text, ocsp_status, openssl  # noqa: E402


NEEDED = ["anvil", "anvil-sa", "anvil-ca", "anvil-va", "anvil-ra", "anvil-wfe", "anvil-admin"]


def _missing():
    bindir = os.environ.get("BINDIR", os.path.join(TOP, "bin"))
    return [b for b in NEEDED if not os.access(os.path.join(bindir, b), os.X_OK)]


@pytest.fixture(scope="module")
def env():
    missing = _missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    base = int(os.environ.get("ANVIL_TEST_PORT_BASE", "24000"))
    with AnvilEnv(port_base=base, name="e2e") as e:
        yield e


@pytest.fixture
def work():
    d = tempfile.mkdtemp(prefix="e2e-client-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run(cmd, env_extra=None, timeout=180, cwd=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


def certbot(env, work, args, timeout=180):
    base = ["certbot", "--non-interactive", "--server", env.directory_url,
            "--config-dir", os.path.join(work, "cfg"), "--work-dir", os.path.join(work, "work"),
            "--logs-dir", os.path.join(work, "logs"), "--no-random-sleep-on-renew"]
    return run(base + args, {"REQUESTS_CA_BUNDLE": env.trust_path}, timeout=timeout)


def lego(env, work, args, pre=None, extra_env=None, timeout=180):
    base = ["lego", "--server", env.directory_url, "--accept-tos", "--email", "e2e@example.test",
            "--path", os.path.join(work, "lego")] + (pre or [])
    e = {"LEGO_CA_CERTIFICATES": env.trust_path}
    e.update(extra_env or {})
    return run(base + args, e, timeout=timeout)


def split_pem_chain(path):
    with open(path) as f:
        text = f.read()
    return re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", text, re.S)


def check_chain(env, fullchain, names, work, key_type=None):
    """The chain verifies against ANVIL_TRUST; SANs are exactly `names`."""
    certs = split_pem_chain(fullchain)
    assert len(certs) >= 2, "expected leaf + intermediate, got %d certs" % len(certs)
    leaf = os.path.join(work, "leaf.pem")
    inter = os.path.join(work, "inter.pem")
    with open(leaf, "w") as f:
        f.write(certs[0])
    with open(inter, "w") as f:
        f.write("".join(certs[1:]))
    rc, out = openssl("verify", "-CAfile", env.trust_path, "-untrusted", inter, leaf)
    assert rc == 0 and "OK" in out, out
    rc, text = openssl("x509", "-in", leaf, "-noout", "-text")
    assert rc == 0
    san = re.search(r"X509v3 Subject Alternative Name:.*?\n\s*(.+)\n", text).group(1)
    got = sorted(x.strip().split(":", 1)[1] for x in san.split(","))
    assert got == sorted(names), (got, names)
    if key_type == "rsa":
        assert "rsaEncryption" in text and "2048 bit" in text
    elif key_type == "p256":
        assert "prime256v1" in text or "P-256" in text
    elif key_type == "p384":
        assert "secp384r1" in text or "P-384" in text
    return leaf, inter, text


def validity_days(text):
    from datetime import datetime
    nb = re.search(r"Not Before: (.+)", text).group(1).strip()
    na = re.search(r"Not After : (.+)", text).group(1).strip()
    fmt = "%b %d %H:%M:%S %Y %Z"
    return (datetime.strptime(na, fmt) - datetime.strptime(nb, fmt)).total_seconds() / 86400


def crl_lists(env, leaf, inter, work):
    """Fetches the CRL shard named in the certificate; True if leaf is on it."""
    rc, serial = openssl("x509", "-in", leaf, "-noout", "-serial")
    serial = serial.strip().split("=", 1)[1].upper()
    out = crl_text(env, leaf, inter, work)
    return serial.lstrip("0") in out.upper().replace(":", "").replace(" ", "") or serial in out.upper()


def assert_revoked(env, leaf, inter, work):
    """The revoked certificate: OCSP answers "revoked" and its CRL shard
    lists it."""
    assert ocsp_status(env, leaf, inter, work) == "revoked"
    assert crl_lists(env, leaf, inter, work), "not on its CRL shard"


def names_from(fullchain):
    return fullchain


# ---------------------------------------------------------------- certbot

def certbot_standalone(env, work, names, extra=()):
    """certbot certonly for names with its own http-01 server on the env's
    http01 port; extra goes before the -d options. Returns (rc, output)."""
    args = ["certonly", "--standalone", "--http-01-port", str(env.ports["http01"]),
            "--http-01-address", "127.0.0.1", "--agree-tos", "-m", "e2e@example.test"] + list(extra)
    for n in names:
        args += ["-d", n]
    return certbot(env, work, args)


def test_certbot_http01_one_name_rsa(env, work):
    rc, out = certbot_standalone(env, work, ["one.example.test"], ["--key-type", "rsa", "--rsa-key-size", "2048"])
    assert rc == 0, out
    live = os.path.join(work, "cfg", "live", "one.example.test")
    leaf, inter, text = check_chain(env, os.path.join(live, "fullchain.pem"), ["one.example.test"], work, "rsa")
    assert abs(validity_days(text) - 90) < 1.5, validity_days(text)


def test_certbot_http01_three_names_renew_and_revoke(env, work):
    names = ["a.example.test", "b.example.test", "c.example.test"]
    rc, out = certbot_standalone(env, work, names, ["--key-type", "ecdsa", "--elliptic-curve", "secp256r1"])
    assert rc == 0, out
    live = os.path.join(work, "cfg", "live", names[0])
    leaf1, _, _ = check_chain(env, os.path.join(live, "fullchain.pem"), names, work, "p256")
    with open(leaf1) as f:
        first = f.read()
    rc, out = certbot(env, work, ["renew", "--force-renewal", "--standalone",
                                  "--http-01-port", str(env.ports["http01"]), "--http-01-address", "127.0.0.1"])
    assert rc == 0, out
    leaf2, inter, _ = check_chain(env, os.path.join(live, "fullchain.pem"), names, work, "p256")
    with open(leaf2) as f:
        assert f.read() != first, "renewal returned the same certificate"
    assert ocsp_status(env, leaf2, inter, work) == "good"
    rc, out = certbot(env, work, ["revoke", "--cert-path", os.path.join(live, "cert.pem"),
                                  "--no-delete-after-revoke"])
    assert rc == 0, out
    assert_revoked(env, leaf2, inter, work)


def test_certbot_revoke_keycompromise_p384(env, work):
    rc, out = certbot_standalone(env, work, ["kc.example.test"], ["--key-type", "ecdsa", "--elliptic-curve", "secp384r1"])
    assert rc == 0, out
    live = os.path.join(work, "cfg", "live", "kc.example.test")
    leaf, inter, _ = check_chain(env, os.path.join(live, "fullchain.pem"), ["kc.example.test"], work, "p384")
    # Revocation signed with the certificate's own key.
    rc, out = certbot(env, work, ["revoke", "--cert-path", os.path.join(live, "cert.pem"),
                                  "--key-path", os.path.join(live, "privkey.pem"),
                                  "--reason", "keycompromise", "--no-delete-after-revoke"])
    assert rc == 0, out
    assert_revoked(env, leaf, inter, work)


def _challtest_hook(env, work, name, body):
    """Writes an executable shell hook in work that reaches pebble-challtestsrv's
    management API at $url; returns its path."""
    hook = os.path.join(work, name)
    with open(hook, "w") as f:
        f.write("#!/bin/sh\nset -e\nurl=http://127.0.0.1:%d\n" % env.ports["challtest"] + body)
    os.chmod(hook, 0o755)
    return hook


def _dns_hook(env, work):
    return _challtest_hook(env, work, "hook.sh", """if [ -n "$CERTBOT_AUTH_OUTPUT" ] || [ "$1" = cleanup ]; then
  curl -sf -X POST -d "{\\"host\\":\\"_acme-challenge.$CERTBOT_DOMAIN.\\"}" $url/clear-txt
else
  curl -sf -X POST -d "{\\"host\\":\\"_acme-challenge.$CERTBOT_DOMAIN.\\",\\"value\\":\\"$CERTBOT_VALIDATION\\"}" $url/set-txt
fi
""")


def test_certbot_dns01_wildcard(env, work):
    hook = _dns_hook(env, work)
    rc, out = certbot(env, work, ["certonly", "--manual", "--preferred-challenges", "dns",
                                  "--manual-auth-hook", hook, "--manual-cleanup-hook", hook + " cleanup",
                                  "--agree-tos", "-m", "e2e@example.test",
                                  "-d", "*.wild.example.test", "-d", "wild.example.test"])
    assert rc == 0, out
    live = os.path.join(work, "cfg", "live", "wild.example.test")
    check_chain(env, os.path.join(live, "fullchain.pem"), ["*.wild.example.test", "wild.example.test"], work)


def certbot_log(work):
    with open(os.path.join(work, "logs", "letsencrypt.log"), errors="replace") as f:
        return f.read()


def test_certbot_refused_name(env, work):
    rc, out = certbot_standalone(env, work, ["www.example.com"])
    assert rc != 0
    # certbot 2.1 on Python 3.11 cannot print an ACME error raised inside
    # newOrder (josepy's immutable Error vs contextlib setting
    # __traceback__: "AttributeError: can't set attribute"); the server's
    # problem document is in its debug log.
    log = certbot_log(work)
    assert "urn:ietf:params:acme:error:rejectedIdentifier" in out + log, out
    assert "www.example.com" in log


def test_certbot_failing_challenge(env, work):
    # Nothing answers: the A record points at an address with no listener.
    env.challtest("add-a", {"host": "broken.example.test.", "addresses": ["127.0.0.9"]})
    rc, out = certbot_standalone(env, work, ["broken.example.test"])
    assert rc != 0
    assert "connection" in out.lower(), out


# ------------------------------------------------------------------ lego

def _lego_cert(work, name):
    return os.path.join(work, "lego", "certificates", name.replace("*", "_") + ".crt")


def test_lego_tlsalpn01(env, work):
    rc, out = lego(env, work, ["run"], ["--tls", "--tls.port", "127.0.0.1:%d" % env.ports["tlsalpn01"],
                                        "-d", "alpn.example.test"])
    assert rc == 0, out
    check_chain(env, _lego_cert(work, "alpn.example.test"), ["alpn.example.test"], work, "p256")


def test_lego_http01_renew_revoke(env, work):
    pre = ["--http", "--http.port", "127.0.0.1:%d" % env.ports["http01"], "-d", "lego.example.test",
           "--key-type", "ec384"]
    rc, out = lego(env, work, ["run"], pre)
    assert rc == 0, out
    check_chain(env, _lego_cert(work, "lego.example.test"), ["lego.example.test"], work, "p384")
    with open(_lego_cert(work, "lego.example.test")) as f:
        first = f.read()
    rc, out = lego(env, work, ["renew", "--days", "366", "--no-random-sleep"], pre)
    assert rc == 0, out
    with open(_lego_cert(work, "lego.example.test")) as f:
        assert f.read() != first
    leaf, inter, _ = check_chain(env, _lego_cert(work, "lego.example.test"), ["lego.example.test"], work)
    assert ocsp_status(env, leaf, inter, work) == "good"
    rc, out = lego(env, work, ["revoke"], pre)
    assert rc == 0, out
    assert_revoked(env, leaf, inter, work)


def test_lego_dns01_wildcard(env, work):
    hook = _challtest_hook(env, work, "exec.sh", """case "$1" in
present) curl -sf -X POST -d "{\\"host\\":\\"$2\\",\\"value\\":\\"$3\\"}" $url/set-txt ;;
cleanup) curl -sf -X POST -d "{\\"host\\":\\"$2\\"}" $url/clear-txt ;;
esac
""")
    rc, out = lego(env, work, ["run"], ["--dns", "exec", "--dns.disable-cp",
                                        "--dns.resolvers", "127.0.0.1:%d" % env.ports["dns"],
                                        "-d", "*.lw.example.test", "-d", "lw.example.test"],
                   extra_env={"EXEC_PATH": hook, "EXEC_PROPAGATION_TIMEOUT": "5", "EXEC_POLLING_INTERVAL": "1"})
    assert rc == 0, out
    check_chain(env, _lego_cert(work, "*.lw.example.test"), ["*.lw.example.test", "lw.example.test"], work)


def test_ip_address_certificate_python_acme(env, work):
    """RFC 8738: an IP identifier validated over http-01. Debian 12's lego
    sends IP addresses as "dns" identifiers (refused, as RFC 8738 requires)
    and certbot 2.1 has no IP support, so python-acme (Debian's
    python3-acme, the library certbot is built on) is the client here."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "acme_ip_client.py")
    rc, out = run([sys.executable, script, "--directory", env.directory_url, "--trust", env.trust_path,
                   "--ip", "127.0.0.1", "--http-port", str(env.ports["http01"]),
                   "--out", os.path.join(work, "ip-chain.pem")])
    assert rc == 0, out
    check_chain(env, os.path.join(work, "ip-chain.pem"), ["127.0.0.1"], work, "rsa")


def test_lego_ip_sent_as_dns_is_refused(env, work):
    rc, out = lego(env, work, ["run"], ["--http", "--http.port", "127.0.0.1:%d" % env.ports["http01"],
                                        "-d", "127.0.0.1"])
    assert rc != 0
    assert "rejectedIdentifier" in out, out


def test_lego_refused_name(env, work):
    rc, out = lego(env, work, ["run"], ["--http", "--http.port", "127.0.0.1:%d" % env.ports["http01"],
                                        "-d", "forbidden.example.org"])
    assert rc != 0
    assert "rejectedIdentifier" in out, out


def test_lego_failing_challenge(env, work):
    # lego listens on another port than the one the VA probes.
    rc, out = lego(env, work, ["run"], ["--http", "--http.port", "127.0.0.1:%d" % (env.ports["http01"] + 100),
                                        "-d", "nolisten.example.test"])
    assert rc != 0
    assert "connection" in out.lower(), out
