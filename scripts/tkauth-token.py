#!/usr/bin/env python3
"""Mints an RFC 9448 TNAuthList Authority Token ("atc" JWT) for trying
tkauth-01 against `make run` (configs/dev trusts configs/dev/tkauth-ta-root.pem,
whose Token Authority certificate and key are configs/dev/tkauth-ta.pem /
tkauth-ta.key). Development only: never trust that root in production.

    scripts/tkauth-token.py --tnauthlist <identifier value> \\
        --account-key account.jwk.json [--ca] [--ttl 600]

--account-key: the ACME account's public JWK (JSON); the token's
"fingerprint" is "SHA256 " and its RFC 7638 thumbprint in colon hex (RFC
9448 §5). Prints the JWT; POST {"atc": "<JWT>"} to the tkauth-01 challenge
(RFC 9448 §5.5). Each run makes a new "jti": Anvil accepts a token once.
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEV = os.path.join(TOP, "configs", "dev")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def thumbprint_fingerprint(jwk):
    """RFC 7638 members in lexicographic order, no whitespace."""
    req = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
           "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canon = json.dumps({k: jwk[k] for k in req}, sort_keys=True, separators=(",", ":"))
    d = hashlib.sha256(canon.encode()).digest()
    return "SHA256 " + ":".join("%02X" % b for b in d)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tnauthlist", required=True, help="the TNAuthList identifier value")
    ap.add_argument("--account-key", required=True, help="file with the account's public JWK")
    ap.add_argument("--ca", action="store_true", help='"ca": true (a CA certificate request)')
    ap.add_argument("--ttl", type=int, default=600, help="seconds until exp")
    ap.add_argument("--key", default=os.path.join(DEV, "tkauth-ta.key"))
    ap.add_argument("--cert", default=os.path.join(DEV, "tkauth-ta.pem"))
    ap.add_argument("--root", default=os.path.join(DEV, "tkauth-ta-root.pem"))
    a = ap.parse_args()
    with open(a.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        sys.exit("tkauth-token: --key must be a P-256 key (ES256)")
    chain = []
    for p in (a.cert, a.root):
        with open(p, "rb") as f:
            chain.append(base64.b64encode(x509.load_pem_x509_certificate(f.read())
                                          .public_bytes(serialization.Encoding.DER)).decode())
    with open(a.account_key) as f:
        jwk = json.load(f)
    hdr = {"alg": "ES256", "typ": "JWT", "x5c": chain}
    claims = {"exp": int(time.time()) + a.ttl, "jti": os.urandom(16).hex(),
              "atc": {"tktype": "TNAuthList", "tkvalue": a.tnauthlist, "ca": a.ca,
                      "fingerprint": thumbprint_fingerprint(jwk)}}
    si = "%s.%s" % (b64u(json.dumps(hdr).encode()), b64u(json.dumps(claims).encode()))
    r, s = decode_dss_signature(key.sign(si.encode(), ec.ECDSA(hashes.SHA256())))
    print("%s.%s" % (si, b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))))


if __name__ == "__main__":
    main()
