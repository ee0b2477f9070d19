"""Fixes from the outside security review (issue 19), end to end.

One Anvil (sa/ca/va/ra/wfe through the launcher, real PostgreSQL), the VA
in always-valid mode so orders become ready without a responder. Each test
fails on the code before issue 19 and names the defect it guards; each is
listed in docs/security.md.

Ports: AnvilEnv base 29200 (range 29200-29299).
"""
import calendar
import os
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402
from rel_acme import problem  # noqa: E402

PORT_BASE = 29200


env = a.env_fixture(port_base=PORT_BASE, name="secreview", config={
        "va.json:test.always_valid": True,
        "wfe.json:jose.allow_eddsa": True})


raw = a.raw_fixture()


def account(raw):
    return a.new_account(raw)


def evil(url):
    """The same URL on a host that is not this server's."""
    rest = url.split("://", 1)[1].split("/", 1)[1]
    return "https://ca.evil.example/" + rest


# ------------------------------------------------- JWS url bound to this server

def test_url_of_a_foreign_host_relayed_with_its_host_header(env, raw):
    """RFC 8555 §6.4: "the server MUST reject the request as unauthorized"
    when the "url" header does not match the URL of the request; the URL of
    the request is this server's (base_url or a configured alias), not
    whatever Host header a relay puts on it. A deactivation signed for
    https://ca.evil.example/acme/acct/N and relayed with
    Host: ca.evil.example must not deactivate account N."""
    k, kid = account(raw)
    hdr = {"Host": "ca.evil.example"}
    # kid of this server, url of the other one
    body = k.jws(evil(kid), {"status": "deactivated"}, nonce=raw.nonce(), kid=kid)
    problem(raw.post_raw(kid, body, headers=hdr), 403, "unauthorized")
    # kid and url both of the other host
    body = k.jws(evil(kid), {"status": "deactivated"}, nonce=raw.nonce(), kid=evil(kid))
    r = raw.post_raw(kid, body, headers=hdr)
    assert r.status_code in (400, 403), r.text
    assert r.json()["type"] in ("urn:ietf:params:acme:error:unauthorized",
                                "urn:ietf:params:acme:error:malformed",
                                "urn:ietf:params:acme:error:accountDoesNotExist"), r.text
    assert a.sa_account(env, kid)["status"] == "valid"
    # the listed alias (hosts: 127.0.0.1:<port>) still works, with its own url
    alias = kid.replace("localhost", "127.0.0.1")
    r = raw.post_raw(kid, k.jws(alias, None, nonce=raw.nonce(), kid=kid),
                     headers={"Host": alias.split("/")[2]})
    assert r.status_code == 200, r.text
    assert a.sa_account(env, kid)["status"] == "valid"


# ------------------------------------------- account status only after the signature

def test_account_status_not_told_before_the_signature(env, raw):
    """A request signed by the wrong key gets the same answer whether the
    account it names is valid or deactivated: the status is told only to
    whoever holds the account key."""
    k1, kid1 = account(raw)
    k2, kid2 = account(raw)
    r = raw.post(kid2, {"status": "deactivated"}, k2, kid=kid2)
    assert r.status_code == 200 and r.json()["status"] == "deactivated", r.text
    stranger = a.Key()
    r_valid = raw.post(kid1, None, stranger, kid=kid1)
    r_deact = raw.post(kid2, None, stranger, kid=kid2)
    assert r_valid.status_code in (400, 403), r_valid.text
    assert (r_deact.status_code, r_deact.json()["type"]) == \
        (r_valid.status_code, r_valid.json()["type"]), (r_valid.text, r_deact.text)
    assert "deactivated" not in r_deact.text
    # the key holder still learns it. RFC 8555 §7.3.6: "If the server receives
    # a POST or POST-as-GET from a deactivated account, it MUST return an error
    # response with status code 401 (Unauthorized) and type
    # urn:ietf:params:acme:error:unauthorized"
    problem(raw.post(kid2, None, k2, kid=kid2), 401, "unauthorized")


# ------------------------------------------------------- subscriber CRL reasons

@pytest.mark.parametrize("reason", [2, 6, 8, 9, 10])
def test_subscriber_cannot_choose_operator_reasons(env, raw, reason):
    """Baseline Requirements §7.2.2: the subscriber may choose unspecified,
    keyCompromise, affiliationChanged, superseded or cessationOfOperation;
    cACompromise, certificateHold, removeFromCRL, privilegeWithdrawn and
    aACompromise are not theirs. RFC 8555 §7.6: "If the server does not
    support the provided reason code, it MUST reject the request with an
    error of type badRevocationReason". Neither the account nor the
    certificate's key may use them; the certificate stays good."""
    k, kid = account(raw)
    cert = a.issue(raw, k, kid, ["r%d.reason.test" % reason])
    der = a.leaf_der_b64(cert["leaf"])
    problem(raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": reason}, k, kid=kid),
            400, "badRevocationReason")
    problem(raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": reason},
                     a.Key(priv=cert["cert_key"])), 400, "badRevocationReason")
    assert a.sa_cert(env, cert["leaf"])["status"] == "good"
    # a subscriber reason still works
    r = raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": 4}, k, kid=kid)
    assert r.status_code == 200, r.text
    c = a.sa_cert(env, cert["leaf"])
    assert c["status"] == "revoked" and c.get("revoked_reason", c.get("reason")) in (4, None), c


# ------------------------------------------------------- order validity window

def _rfc3339(t):
    import time as _t
    return _t.strftime("%Y-%m-%dT%H:%M:%SZ", _t.gmtime(t))


def _order_then_issue(raw, k, kid, name, nb, na):
    """newOrder with notBefore/notAfter; returns None if refused at
    newOrder (400 malformed), else the finalized order (which must be
    valid: an accepted window must never fail at finalize)."""
    body = {"identifiers": [{"type": "dns", "value": name}], "notAfter": _rfc3339(na)}
    if nb is not None:
        body["notBefore"] = _rfc3339(nb)
    r = raw.post(raw.dir["newOrder"], body, k, kid=kid)
    if r.status_code == 400:
        problem(r, 400, "malformed")
        return None
    assert r.status_code == 201, r.text
    url = r.headers["Location"]
    for az in r.json()["authorizations"]:
        ch = [c for c in raw.post(az, None, k, kid=kid).json()["challenges"] if c["type"] == "http-01"][0]
        assert raw.post(ch["url"], {}, k, kid=kid).status_code == 200
    order = a.poll(raw, k, kid, url, ("ready",))
    k2 = ec.generate_private_key(ec.SECP256R1())
    r = raw.post(order["finalize"], {"csr": a.b64(a.make_csr(k2, [name]))}, k, kid=kid)
    assert r.status_code == 200, r.text
    done = a.poll(raw, k, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", "accepted at newOrder, refused at finalize: %s" % done
    return done


def test_order_with_the_maximum_validity_issues(env, raw):
    """The classic profile (90d, 1h backdate). RFC 5280 §4.1.2.5: the
    validity period is "from notBefore through notAfter, inclusive", so
    the longest window is notAfter = notBefore + 90d - 1s. That order
    issues with exactly those times; one second more, or a notAfter of
    now + 90d with the default backdated notBefore, is refused at newOrder,
    never accepted and then made invalid at finalize."""
    import time as _t
    from cryptography import x509
    k, kid = account(raw)
    v = 90 * 86400
    nb = int(_t.time())
    done = _order_then_issue(raw, k, kid, "max.validity.test", nb, nb + v - 1)
    assert done is not None
    pem = raw.post(done["certificate"], None, k, kid=kid).text
    leaf = x509.load_pem_x509_certificate(pem.encode())
    assert calendar.timegm(leaf.not_valid_before.timetuple()) == nb
    assert calendar.timegm(leaf.not_valid_after.timetuple()) == nb + v - 1
    # one second too long: refused up front (or, if accepted, issued)
    _order_then_issue(raw, k, kid, "over.validity.test", nb, nb + v)
    # notAfter only: the CA backdates notBefore by the profile's 1h
    _order_then_issue(raw, k, kid, "na.validity.test", None, int(_t.time()) + v)


# ------------------------------------------------------- canonical subject keys

def _tlv(buf, i):
    """(tag, start of value, end of value) of the DER element at i."""
    tag, n = buf[i], buf[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[i:i + k], "big")
        i += k
    return tag, i, i + n


def _der(tag, body):
    return bytes([tag]) + a._der_len(len(body)) + body


def _openssl_spki(priv, *args):
    """The SPKI DER of an EC key as `openssl ec <args> -pubout` writes it."""
    import subprocess
    import tempfile
    from cryptography.hazmat.primitives import serialization as s
    pem = priv.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption())
    with tempfile.NamedTemporaryFile() as f:
        f.write(pem)
        f.flush()
        return subprocess.run(["openssl", "ec", "-in", f.name, "-pubout", "-outform", "DER"] + list(args),
                              check=True, capture_output=True).stdout


def _rsa_spki_without_null(priv):
    from cryptography.hazmat.primitives import serialization as s
    spki = priv.public_key().public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
    _, v, _ = _tlv(spki, 0)
    _, av, ae = _tlv(spki, v)          # AlgorithmIdentifier
    _, ov, oe = _tlv(spki, av)         # the OID; the NULL follows
    alg = _der(0x30, spki[ov - 2:oe])  # OID only, no parameters
    return _der(0x30, alg + spki[ae:])


def _csr_with_spki(priv, names, spki):
    """A CSR for names signed by priv whose SubjectPublicKeyInfo is the given
    encoding of priv's public key (same key, other bytes)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    tbs = x509.load_der_x509_csr(a.make_csr(priv, names)).tbs_certrequest_bytes
    _, v, e = _tlv(tbs, 0)
    _, _, ver_end = _tlv(tbs, v)        # version
    _, _, name_end = _tlv(tbs, ver_end)  # subject
    _, _, spki_end = _tlv(tbs, name_end)  # subjectPKInfo
    new_tbs = _der(0x30, tbs[v:name_end] + spki + tbs[spki_end:e])
    if isinstance(priv, rsa.RSAPrivateKey):
        sig = priv.sign(new_tbs, padding.PKCS1v15(), hashes.SHA256())
        alg = bytes.fromhex("300d06092a864886f70d01010b0500")  # sha256WithRSAEncryption
    else:
        sig = priv.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
        alg = bytes.fromhex("300a06082a8648ce3d040302")  # ecdsa-with-SHA256
    return _der(0x30, new_tbs + alg + _der(0x03, b"\x00" + sig))


def _finalize_with(raw, k, kid, names, csr_der):
    url, order = a.ready_order(raw, k, kid, names)
    return url, raw.post(order["finalize"], {"csr": a.b64(csr_der)}, k, kid=kid)


def _canonical_spki(pub):
    from cryptography.hazmat.primitives import serialization as s
    return pub.public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)


def _refused_or_canonical(raw, k, kid, url, r, priv):
    """Finalize answered: either refused as badCSR / badPublicKey, or the
    certificate carries the canonical encoding of the key."""
    from cryptography import x509
    if r.status_code == 400:
        assert r.json()["type"] in ("urn:ietf:params:acme:error:badCSR",
                                    "urn:ietf:params:acme:error:badPublicKey"), r.text
        return None
    assert r.status_code == 200, r.text
    done = a.poll(raw, k, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    leaf = x509.load_pem_x509_certificate(raw.post(done["certificate"], None, k, kid=kid).text.encode())
    assert _cert_spki(leaf) == _canonical_spki(priv.public_key())
    return leaf


def _cert_spki(leaf):
    """The certificate's SubjectPublicKeyInfo bytes as signed (not
    re-encoded by the library)."""
    tbs = leaf.tbs_certificate_bytes
    _, i, _ = _tlv(tbs, 0)
    for _ in range(6):  # version, serial, signature, issuer, validity, subject
        _, _, i = _tlv(tbs, i)
    _, _, e = _tlv(tbs, i)
    return tbs[i:e]


@pytest.mark.parametrize("kind", ["rsa-no-null", "ec-explicit", "ec-compressed"])
def test_odd_key_encoding_refused_or_canonicalised(env, raw, kind):
    """RFC 3279 §2.3.1: the rsaEncryption "parameters field MUST have ASN.1
    type NULL"; RFC 5480 §2.1.1: "specifiedCurve ... MUST NOT be used in
    PKIX"; BR §7.1.3.1.2 likewise. A CSR whose key block is encoded
    otherwise must not be copied into a certificate as it came."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    k, kid = account(raw)
    name = "%s.enc.test" % kind
    if kind == "rsa-no-null":
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        spki = _rsa_spki_without_null(priv)
    else:
        priv = ec.generate_private_key(ec.SECP256R1())
        spki = _openssl_spki(priv, *(["-param_enc", "explicit"] if kind == "ec-explicit"
                                     else ["-conv_form", "compressed"]))
    assert spki != _canonical_spki(priv.public_key())
    url, r = _finalize_with(raw, k, kid, [name], _csr_with_spki(priv, [name], spki))
    _refused_or_canonical(raw, k, kid, url, r, priv)


def test_key_compromise_blocks_every_encoding_of_the_key(env, raw):
    """A key revoked for keyCompromise (revocation signed with the key,
    RFC 8555 §7.6) gets no new certificate, whichever encoding of it the
    next CSR uses; the stored key hash is the SHA-256 of the canonical
    SubjectPublicKeyInfo, the hash finalize and anvil-admin compute."""
    import hashlib
    from cryptography.hazmat.primitives.asymmetric import rsa
    k, kid = account(raw)
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    odd = _rsa_spki_without_null(priv)
    # first certificate: whatever the server does with the odd encoding,
    # a certificate exists for this key (canonical CSR when refused)
    url, r = _finalize_with(raw, k, kid, ["kc1.enc.test"], _csr_with_spki(priv, ["kc1.enc.test"], odd))
    leaf = _refused_or_canonical(raw, k, kid, url, r, priv)
    if leaf is None:
        url, r = _finalize_with(raw, k, kid, ["kc1.enc.test"], a.make_csr(priv, ["kc1.enc.test"]))
        leaf = _refused_or_canonical(raw, k, kid, url, r, priv)
    stored = a.sa_cert(env, leaf)
    assert stored["key_hash"] == hashlib.sha256(_canonical_spki(priv.public_key())).hexdigest()
    r = raw.post(raw.dir["revokeCert"], {"certificate": a.leaf_der_b64(leaf), "reason": 1},
                 a.Key(priv=priv))
    assert r.status_code == 200, r.text
    for i, csr in enumerate([a.make_csr(priv, ["kc2.enc.test"]),
                             _csr_with_spki(priv, ["kc2.enc.test"], odd)]):
        url, r = _finalize_with(raw, k, kid, ["kc2.enc.test"], csr)
        assert r.status_code == 400, (i, r.text)
        assert r.json()["type"] in ("urn:ietf:params:acme:error:badCSR",
                                    "urn:ietf:params:acme:error:badPublicKey"), r.text
        assert a.sa_order(env, url)["status"] != "valid"


# ------------------------------------------------ no order lost to a transient fault

def _restart_postgres(env):
    import subprocess
    pg = os.path.join(anvil_env.TOP, "scripts", "pg.sh")
    pgdir = os.path.join(env.var_dir, "pg")
    subprocess.run([pg, "stop", pgdir], check=True, capture_output=True, timeout=60)
    subprocess.run([pg, "start", pgdir], check=True, capture_output=True, timeout=60)


def _wait_healthy(env, services=("sa", "ca", "ra", "wfe"), timeout=60):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(env.debug_get(s, "/healthz")[0] == 200 for s in services):
            return
        time.sleep(0.2)
    raise AssertionError("not healthy after %ds" % timeout)


def test_writes_on_connections_postgresql_closed(env, raw):
    """PostgreSQL restarted while the SA's pooled connections sat idle:
    the first statement on each is a write as often as a read. A
    connection the server closed is replaced before the statement is sent,
    so no write fails with `unavailable` (sa.block_key is one INSERT
    outside a transaction, as sa.reserve_serial is for ca.issue), and
    issuance right after the restart succeeds at once."""
    import hashlib
    import time
    sa = env.rpc("sa")
    sa.call("sa.key_blocked", {"key_hash": "00" * 32})  # warm the pool
    _restart_postgres(env)
    _wait_healthy(env)
    for i in range(20):
        kh = hashlib.sha256(b"stale-%d-%f" % (i, time.time())).hexdigest()
        sa.call("sa.block_key", {"key_hash": kh, "source": "test", "comment": "stale connection"})
    _restart_postgres(env)
    _wait_healthy(env)
    k, kid = account(raw)
    for i in range(3):
        cert = a.issue(raw, k, kid, ["after-restart-%d.stale.test" % i])
        assert a.sa_cert(env, cert["leaf"])["status"] == "good"


# ------------------------------------------------------- Ed25519 account keys

class EdKey(a.Key):
    """An Ed25519 account key (RFC 8037): JWK {"kty": "OKP", "crv":
    "Ed25519", "x"}, alg "EdDSA", signature = the 64-byte Ed25519 signature."""

    def __init__(self):
        from cryptography.hazmat.primitives import serialization as s
        from cryptography.hazmat.primitives.asymmetric import ed25519
        self.priv = ed25519.Ed25519PrivateKey.generate()
        x = self.priv.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
        self.jwk = {"crv": "Ed25519", "kty": "OKP", "x": a.b64(x)}
        self.alg = "EdDSA"

    def sign_raw(self, data):
        return self.priv.sign(data)


def test_ed25519_account_end_to_end(env, raw):
    """jose.allow_eddsa on: an Ed25519 account key (RFC 8037 §3.1: "The
    EdDSA signature algorithm ... with the "alg" value "EdDSA"") opens an
    account, orders, finalizes and fetches the certificate; before issue 19
    the RA's key check refused every key but RSA and EC, so the switch let
    nothing through."""
    import hashlib
    import json as _json
    k = EdKey()
    k2, kid = a.new_account(raw, key=k)
    assert a.sa_account(env, kid)["thumbprint"] == a.b64(hashlib.sha256(_json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": k.jwk["x"]}, sort_keys=True,
        separators=(",", ":")).encode()).digest())
    cert = a.issue(raw, k, kid, ["ed25519.account.test"])
    assert a.sa_cert(env, cert["leaf"])["status"] == "good"
    # the account key also signs a revocation by account
    r = raw.post(raw.dir["revokeCert"], {"certificate": a.leaf_der_b64(cert["leaf"])}, k, kid=kid)
    assert r.status_code == 200, r.text


# ------------------------------------- authz deactivated while its validation runs

def test_authz_deactivated_during_validation_leaves_nothing_processing(env, raw):
    """The account deactivates an authorization (RFC 8555 §7.5.2) while
    the VA works on one of its challenges. The validation's end
    (sa.finalize_authz, as the RA sends it) must still finish the
    challenge, and the recovery sweep must list a challenge left
    processing under a deactivated authorization; before issue 19 the
    first was refused (`conflict`) and the second skipped non-pending
    authorizations, so the challenge stayed processing forever."""
    import time
    sa = env.rpc("sa")
    k, kid = account(raw)
    _, order = a.new_order(raw, k, kid, ["deact-during-validation.test"])
    az_url = order["authorizations"][0]
    az = raw.post(az_url, None, k, kid=kid).json()
    aid = a.id_of(az_url)
    ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
    cid = a.id_of(ch["url"])
    # the RA's claim at the start of a validation
    sa.call("sa.set_authz_processing", {"authz_id": aid, "challenge_id": cid})
    r = raw.post(az_url, {"status": "deactivated"}, k, kid=kid)
    assert r.status_code == 200 and r.json()["status"] == "deactivated", r.text
    # the recovery sweep sees it (older_than: now + 1 min)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    stale = sa.call("sa.get_stale_processing_authzs", {"older_than": later})
    assert aid in stale["authz_ids"], stale
    # the validation ends: recorded, nothing left processing
    sa.call("sa.finalize_authz", {"authz_id": aid, "challenge_id": cid, "status": "invalid",
                                  "validation_record": [],
                                  "error": {"type": "urn:ietf:params:acme:error:connection",
                                            "detail": "test", "status": 400}})
    got = sa.call("sa.get_authz", {"id": aid})
    assert got["status"] == "deactivated", got
    assert [c["status"] for c in got["challenges"] if c["id"] == cid] == ["invalid"], got
    stale = sa.call("sa.get_stale_processing_authzs", {"older_than": later})
    assert aid not in stale["authz_ids"], stale
