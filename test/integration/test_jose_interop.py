"""JWS interoperability: request bodies made by python3-josepy / python3-acme
(an independent JOSE implementation, the one certbot uses) are checked by our
library through bin/anvil-jose-verify, which prints the verdict as JSON.

Needs the Debian packages python3-acme, python3-josepy, python3-cryptography
and python3-pytest (run with the system python3: /usr/bin/python3 -m pytest).
"""
import json
import os
import subprocess
import tempfile

import josepy as jose
import pytest
from acme import challenges, jws, messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINDIR = os.environ.get("BINDIR", "bin")
VERIFY = os.path.join(BINDIR if os.path.isabs(BINDIR) else
                      os.path.join(TOP, BINDIR), "anvil-jose-verify")
URL = "https://ca.example/acme/new-acct"
ACCT = "https://ca.example/acme/acct/42"
NONCE = b"\x01\x02nonce-bytes\xfe"


def run(body, *args):
    """Runs the verifier on body (str); returns (exit code, verdict)."""
    assert os.access(VERIFY, os.X_OK), f"build {VERIFY} first"
    p = subprocess.run([VERIFY, *args], input=body.encode(),
                       capture_output=True, timeout=30)
    assert p.returncode in (0, 1), p.stderr.decode()
    return p.returncode, json.loads(p.stdout)


def problem(verdict):
    return verdict["problem"]["type"].rsplit(":", 1)[-1]


def b64(data):
    return jose.b64.b64encode(data).decode()


# One key of each kind, generated once (RSA generation is the slow part).
KEYS = {
    "RS256": jose.JWKRSA(key=rsa.generate_private_key(65537, 2048)),
    "RS256-3072": jose.JWKRSA(key=rsa.generate_private_key(65537, 3072)),
    "ES256": jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1())),
    "ES384": jose.JWKEC(key=ec.generate_private_key(ec.SECP384R1())),
    "ES512": jose.JWKEC(key=ec.generate_private_key(ec.SECP521R1())),
}
ALGS = {"RS256": jose.RS256, "RS256-3072": jose.RS256, "ES256": jose.ES256,
        "ES384": jose.ES384, "ES512": jose.ES512}


def signed(name, payload=b'{"termsOfServiceAgreed":true}', url=URL,
           kid=None, nonce=NONCE):
    """Flattened JWS as python-acme's client sends it."""
    return jws.JWS.sign(payload, key=KEYS[name], alg=ALGS[name], nonce=nonce,
                        url=url, kid=kid).json_dumps()


def thumbprint(key):
    return b64(key.public_key().thumbprint())


def key_file(key):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(key.public_key().to_partial_json(), f)
    f.close()
    return f.name


@pytest.mark.parametrize("name", ["RS256", "RS256-3072", "ES256", "ES384"])
def test_accepts_josepy_jwk_requests(name):
    rc, v = run(signed(name), "--url", URL, "--payload-json")
    assert rc == 0, v
    assert v["alg"] == ALGS[name].name
    assert v["url"] == URL
    assert v["nonce"] == b64(NONCE)
    assert v["payload"] == {"termsOfServiceAgreed": True}
    # RFC 7638 thumbprint agrees with josepy's.
    assert v["thumbprint"] == thumbprint(KEYS[name])


def test_es512_behind_switch():
    rc, v = run(signed("ES512"))
    assert rc == 1 and problem(v) == "badSignatureAlgorithm"
    assert "ES256" in v["problem"]["detail"]
    rc, v = run(signed("ES512"), "--allow-es512")
    assert rc == 0 and v["alg"] == "ES512", v


def test_kid_request_verified_with_account_key():
    path = key_file(KEYS["ES256"])
    try:
        body = signed("ES256", b'{"status":"deactivated"}', kid=ACCT)
        rc, v = run(body, "--kid-key", path, "--payload-json")
        assert rc == 0, v
        assert v["kid"] == ACCT
        assert v["thumbprint"] == thumbprint(KEYS["ES256"])
        # The same body against another account's key fails.
        other = key_file(KEYS["ES384"])
        rc, v = run(body, "--kid-key", other)
        os.unlink(other)
        assert rc == 1 and v["stage"] == "verify"
        assert problem(v) == "badSignatureAlgorithm"
    finally:
        os.unlink(path)


def test_post_as_get():
    path = key_file(KEYS["RS256"])
    try:
        rc, v = run(signed("RS256", b"", kid=ACCT), "--kid-key", path)
        assert rc == 0 and v["post_as_get"] is True, v
        # ... is refused where a JSON payload is required.
        rc, v = run(signed("RS256", b"", kid=ACCT), "--kid-key", path,
                    "--payload-json")
        assert rc == 1 and v["stage"] == "payload"
    finally:
        os.unlink(path)


def test_wrong_url_and_nonce_reported():
    rc, v = run(signed("ES256"), "--url", URL + "/other")
    assert rc == 1 and v["stage"] == "url" and problem(v) == "unauthorized"
    rc, v = run(signed("ES256"), "--nonce", "AAAA")
    assert rc == 1 and v["stage"] == "nonce" and problem(v) == "badNonce"


def test_missing_nonce_is_bad_nonce():
    rc, v = run(signed("ES256", nonce=None))
    assert rc == 1 and problem(v) == "badNonce"


def test_tampered_payload_fails_signature():
    body = json.loads(signed("ES256"))
    body["payload"] = b64(b'{"termsOfServiceAgreed":false}')
    rc, v = run(json.dumps(body))
    assert rc == 1 and v["stage"] == "verify" and problem(v) == "malformed"


def test_non_json_payload():
    rc, v = run(signed("ES256", b"not json"), "--payload-json")
    assert rc == 1 and v["stage"] == "payload" and problem(v) == "malformed"


def test_hs256_rejected():
    key = jose.JWKOct(key=b"0123456789abcdef0123456789abcdef")
    body = jws.JWS.sign(b"{}", key=key, alg=jose.HS256, nonce=NONCE,
                        url=URL, kid=ACCT).json_dumps()
    rc, v = run(body)
    assert rc == 1 and problem(v) == "badSignatureAlgorithm"


def test_compact_and_general_serializations_rejected():
    sig = jws.JWS.sign(b"{}", key=KEYS["ES256"], alg=jose.ES256, nonce=NONCE,
                       url=URL)
    rc, v = run(sig.to_compact().decode())
    assert rc == 1 and problem(v) == "malformed"
    assert "compact" in v["problem"]["detail"]
    rc, v = run(json.dumps(sig.to_partial_json(flat=False),
                           default=jose.JSONDeSerializable.json_dump_default))
    assert rc == 1 and problem(v) == "malformed"
    assert "signatures" in v["problem"]["detail"]


def test_small_rsa_key_rejected():
    small = jose.JWKRSA(key=rsa.generate_private_key(65537, 1024))
    body = jws.JWS.sign(b"{}", key=small, alg=jose.RS256, nonce=NONCE,
                        url=URL).json_dumps()
    rc, v = run(body)
    assert rc == 1 and problem(v) == "badPublicKey"
    assert "1024" in v["problem"]["detail"]


def test_external_account_binding_from_python_acme():
    hmac_key = b64(os.urandom(32))
    directory = messages.Directory({"newAccount": URL})
    eab = messages.ExternalAccountBinding.from_data(
        KEYS["ES256"].public_key(), "eab-kid-1", hmac_key, directory)
    payload = json.dumps({"termsOfServiceAgreed": True,
                          "externalAccountBinding": eab}).encode()
    body = signed("ES256", payload)
    rc, v = run(body, "--eab-key", hmac_key, "--url", URL)
    assert rc == 0, v
    assert v["eab_kid"] == "eab-kid-1"
    # Another MAC key: unauthorized.
    rc, v = run(body, "--eab-key", b64(os.urandom(32)))
    assert rc == 1 and v["stage"] == "eab" and problem(v) == "unauthorized"
    # An EAB over another account key, sent with this one: unauthorized.
    eab2 = messages.ExternalAccountBinding.from_data(
        KEYS["ES384"].public_key(), "eab-kid-1", hmac_key, directory)
    payload = json.dumps({"externalAccountBinding": eab2}).encode()
    rc, v = run(signed("ES256", payload), "--eab-key", hmac_key)
    assert rc == 1 and problem(v) == "unauthorized"


def key_change_body(old, new, account=ACCT, inner_url=URL, inner_nonce=None):
    inner = jws.JWS.sign(
        json.dumps({"account": account,
                    "oldKey": KEYS[old].public_key().to_partial_json()})
        .encode(), key=KEYS[new], alg=ALGS[new], nonce=inner_nonce,
        url=inner_url).json_dumps().encode()
    return signed(old, inner, kid=ACCT)


def test_key_change_from_python_acme():
    path = key_file(KEYS["ES256"])
    try:
        rc, v = run(key_change_body("ES256", "RS256"), "--kid-key", path,
                    "--key-change", ACCT)
        assert rc == 0, v
        assert v["new_key_thumbprint"] == thumbprint(KEYS["RS256"])
        rc, v = run(key_change_body("ES256", "RS256", account=ACCT + "0"),
                    "--kid-key", path, "--key-change", ACCT)
        assert rc == 1 and problem(v) == "unauthorized"
        rc, v = run(key_change_body("ES256", "RS256",
                                    inner_url=URL + "/x"),
                    "--kid-key", path, "--key-change", ACCT)
        assert rc == 1 and problem(v) == "malformed"
        rc, v = run(key_change_body("ES256", "RS256", inner_nonce=NONCE),
                    "--kid-key", path, "--key-change", ACCT)
        assert rc == 1 and "nonce" in v["problem"]["detail"]
    finally:
        os.unlink(path)


@pytest.mark.parametrize("name", ["RS256", "ES256"])
def test_key_authorization_matches_python_acme(name):
    token = b"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
    rc, v = run(signed(name), "--key-authz", b64(token))
    assert rc == 0, v
    account_key = KEYS[name].public_key()
    http = challenges.HTTP01(token=token)
    assert v["key_authorization"] == http.key_authorization(account_key)
    dns = challenges.DNS01(token=token)
    assert v["dns01_txt"] == dns.validation(KEYS[name])


@pytest.mark.parametrize("body", [
    "", "{", "[]", "null", "{}", '{"protected":"e30","payload":"",'
    '"signature":"AA"}', "a.b.c", '{"protected":"' + "A" * 5000 + '"}',
    "\x00\x01\x02", '{"protected":{"alg":"none"}}',
])
def test_garbage_is_a_malformed_problem(body):
    rc, v = run(body)
    assert rc == 1 and v["stage"] == "parse"
    assert problem(v) in ("malformed", "badSignatureAlgorithm")
