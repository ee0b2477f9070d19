"""Revocation checks the way a relying party makes them, with the openssl
command line: OCSP (RFC 6960) and CRLs (RFC 5280) fetched from the URLs a
certificate names and verified against the env's trust bundle.

leaf and inter are PEM file paths; work is a scratch directory.
"""
import os
import re
import subprocess

import requests


def openssl(*args, stdin=None):
    """Runs openssl with args; returns (exit code, stdout + stderr)."""
    p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, input=stdin)
    return p.returncode, p.stdout + p.stderr


def ocsp_status(env, leaf, inter, work):
    """Asks the OCSP URL in the certificate; returns 'good'/'revoked'/'unknown'
    (the response must verify against inter)."""
    rc, url = openssl("x509", "-in", leaf, "-noout", "-ocsp_uri")
    url = url.strip()
    assert rc == 0 and url.startswith("http"), "no OCSP URL in the certificate: " + url
    req = os.path.join(work, "ocsp-req.der")
    rc, out = openssl("ocsp", "-issuer", inter, "-cert", leaf, "-no_nonce", "-reqout", req)
    assert rc == 0, out
    with open(req, "rb") as f:
        body = f.read()
    r = requests.post(url, data=body, headers={"Content-Type": "application/ocsp-request"},
                      verify=env.trust_path, timeout=30)
    assert r.status_code == 200, r.text
    resp = os.path.join(work, "ocsp-resp.der")
    with open(resp, "wb") as f:
        f.write(r.content)
    rc, out = openssl("ocsp", "-respin", resp, "-issuer", inter, "-cert", leaf,
                      "-CAfile", env.trust_path, "-VAfile", inter, "-no_nonce")
    assert rc == 0 and "Response verify OK" in out, out
    m = re.search(r": (good|revoked|unknown)", out)
    return m.group(1) if m else out


def crl_text(env, leaf, inter, work):
    """Fetches the CRL shard named in the certificate's CRL Distribution
    Points, checks that its signature verifies (issuer inter, chained to the
    env's trust bundle) and returns `openssl crl -text` of it."""
    rc, text = openssl("x509", "-in", leaf, "-noout", "-text")
    url = re.search(r"X509v3 CRL Distribution Points:.*?URI:(\S+)", text, re.S).group(1)
    r = requests.get(url, verify=env.trust_path, timeout=30)
    assert r.status_code == 200, r.text
    crl = os.path.join(work, "shard.crl")
    with open(crl, "wb") as f:
        f.write(r.content)
    bundle = os.path.join(work, "crl-ca.pem")
    with open(bundle, "w") as f, open(env.trust_path) as t, open(inter) as i:
        f.write(t.read() + i.read())
    rc, out = openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", bundle, "-noout", "-text")
    assert rc == 0 and "verify OK" in out, out
    return out
