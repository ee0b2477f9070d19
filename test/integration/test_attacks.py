"""JWS and ACME attack catalogue, end to end (issue 14).

One Anvil (sa/ca/va/ra/wfe through the launcher, real PostgreSQL), EAB
required, the VA in always-valid mode so orders become ready without a
responder. Every case sends one hostile request built byte by byte and
asserts (1) the RFC 8555 problem type and status and (2) through the SA's
RPC socket, that nothing changed: the order is still ready, the
certificate still good, the account key / contact / status as before.

Ports: AnvilEnv base 26000 (rel range 26000-26999).
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402
from rel_acme import b64, problem  # noqa: E402

PORT_BASE = 26000


env = a.env_fixture(port_base=PORT_BASE, name="attacks", config={
        "ra.json:eab_required": True,
        "wfe.json:directory.external_account_required": True,
        "va.json:test.always_valid": True})


raw = a.raw_fixture()


_seq = iter(range(1, 10 ** 6))


def account(env, raw, key=None, contact=None):
    return a.new_account(raw, key=key, env=env, eab_kid="atk-%d" % next(_seq), contact=contact)


@pytest.fixture(scope="module")
def victim(env, raw):
    """Account A with one ready order and one issued certificate; account B."""
    ka, kida = account(env, raw, contact=["mailto:a@atk.test"])
    kb, kidb = account(env, raw)
    ready_url, ready = a.ready_order(raw, ka, kida, ["ready.atk.test"])
    cert = a.issue(raw, ka, kida, ["cert.atk.test"])
    return {"ka": ka, "kida": kida, "kb": kb, "kidb": kidb, "ready_url": ready_url,
            "ready": ready, "cert": cert}


def still_ready(env, v):
    o = a.sa_order(env, v["ready_url"])
    assert o["status"] == "ready", o
    assert not o.get("certificate_serial")


def still_good(env, v):
    c = a.sa_cert(env, v["cert"]["leaf"])
    assert c["status"] == "good", c


def account_unchanged(env, v):
    acct = a.sa_account(env, v["kida"])
    assert acct["status"] == "valid"
    assert acct["thumbprint"] == v["ka"].thumbprint()
    assert acct["contact"] == ["mailto:a@atk.test"]


def jws_body(prot, payload, sign):
    """Flattened JWS from a protected header dict and payload bytes."""
    ph = b64(json.dumps(prot))
    p = b64(payload) if payload else ""
    return {"protected": ph, "payload": p, "signature": b64(sign(("%s.%s" % (ph, p)).encode()))}


def csr_payload(der):
    return {"csr": b64(der)}


def refused_as(r, statuses, types):
    """Asserts a refusal: one of statuses, an ACME problem of one of types."""
    assert r.status_code in statuses, r.text
    assert r.json()["type"] in tuple("urn:ietf:params:acme:error:" + t for t in types), r.text


def finalize_ready(raw, v, der):
    """A's finalize of its ready order with the CSR der."""
    return raw.post(v["ready"]["finalize"], csr_payload(der), v["ka"], kid=v["kida"])


# ------------------------------------------------------- signature algorithm

def _alg_none(env, raw, v, sign):
    url = v["ready"]["finalize"]
    body = jws_body({"alg": "none", "kid": v["kida"], "nonce": raw.nonce(), "url": url},
                    json.dumps(csr_payload(a.make_csr(ec.generate_private_key(ec.SECP256R1()),
                                                      ["ready.atk.test"]))).encode(), sign)
    problem(raw.post_raw(url, body), 400, "badSignatureAlgorithm")
    still_ready(env, v)


def test_alg_none_with_signature_bytes(env, raw, victim):
    _alg_none(env, raw, victim, victim["ka"].sign_raw)


def test_alg_none_empty_signature(env, raw, victim):
    """The classic alg:none token: no signature at all."""
    _alg_none(env, raw, victim, lambda d: b"")


def test_hs256_with_public_key_as_secret(env, raw, victim):
    """Algorithm confusion: HMAC keyed with the account's public key."""
    v = victim
    url = v["ready"]["finalize"]
    secret = json.dumps(v["ka"].jwk, sort_keys=True, separators=(",", ":")).encode()
    pub_pem = v["ka"].priv.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    payload = json.dumps(csr_payload(a.make_csr(ec.generate_private_key(ec.SECP256R1()),
                                                ["ready.atk.test"]))).encode()
    for key in (secret, pub_pem):
        body = jws_body({"alg": "HS256", "kid": v["kida"], "nonce": raw.nonce(), "url": url}, payload,
                        lambda d: hmac.new(key, d, hashlib.sha256).digest())
        problem(raw.post_raw(url, body), 400, "badSignatureAlgorithm")
    still_ready(env, v)


def test_alg_of_other_key_type(env, raw, victim):
    """RS256 header on an EC account key."""
    v = victim
    r = raw.post(v["kida"], {"contact": ["mailto:evil@atk.test"]}, v["ka"], kid=v["kida"], alg="RS256")
    problem(r, 400, "badSignatureAlgorithm")
    account_unchanged(env, v)


# ---------------------------------------------------------------- nonces

def test_replayed_nonce(env, raw, victim):
    """A captured, successful request replayed verbatim changes nothing."""
    k, kid = account(env, raw, contact=["mailto:one@atk.test"])
    captured = k.jws(kid, {"contact": ["mailto:two@atk.test"]}, nonce=raw.nonce(), kid=kid)
    assert raw.post_raw(kid, captured).status_code == 200
    r = raw.post(kid, {"contact": ["mailto:three@atk.test"]}, k, kid=kid)
    assert r.status_code == 200
    problem(raw.post_raw(kid, captured), 400, "badNonce")
    assert a.sa_account(env, kid)["contact"] == ["mailto:three@atk.test"]


def test_nonce_from_another_server(env, raw, victim):
    """A nonce with a prefix no instance of this CA hands out."""
    v = victim
    r = raw.post(v["kida"], {"contact": ["mailto:evil@atk.test"]}, v["ka"], kid=v["kida"],
                 nonce="zz" + b64(os.urandom(16)))
    problem(r, 400, "badNonce")
    account_unchanged(env, v)


def test_nonce_from_the_future(env, raw, victim):
    """Our own prefix, well-formed, but never issued."""
    v = victim
    n = raw.nonce()
    raw_len = len(base64.urlsafe_b64decode(n[2:] + "=" * (-len(n[2:]) % 4)))
    forged = n[:2] + b64(os.urandom(raw_len))
    r = raw.post(v["kida"], {"contact": ["mailto:evil@atk.test"]}, v["ka"], kid=v["kida"], nonce=forged)
    problem(r, 400, "badNonce")
    account_unchanged(env, v)


@pytest.mark.parametrize("nonce", ["", "!!!", "a1" + "=" * 20, "x" * 500])
def test_garbage_nonce(env, raw, victim, nonce):
    v = victim
    r = raw.post(v["kida"], {"contact": ["mailto:evil@atk.test"]}, v["ka"], kid=v["kida"], nonce=nonce)
    problem(r, 400, "badNonce")
    account_unchanged(env, v)


def test_missing_nonce(env, raw, victim):
    v = victim
    body = v["ka"].jws(v["kida"], {"contact": ["mailto:evil@atk.test"]}, kid=v["kida"])
    problem(raw.post_raw(v["kida"], body), 400, "badNonce")
    account_unchanged(env, v)


# ---------------------------------------------------------------- url / kid / jwk

def test_url_of_another_endpoint(env, raw, victim):
    """A finalize JWS whose protected url names newOrder, sent to finalize."""
    v = victim
    url = v["ready"]["finalize"]
    der = a.make_csr(ec.generate_private_key(ec.SECP256R1()), ["ready.atk.test"])
    body = v["ka"].jws(raw.dir["newOrder"], csr_payload(der), nonce=raw.nonce(), kid=v["kida"])
    r = raw.post_raw(url, body)
    problem(r, 403, "unauthorized")
    still_ready(env, v)


def test_missing_url(env, raw, victim):
    v = victim
    url = v["ready"]["finalize"]
    body = jws_body({"alg": "ES256", "kid": v["kida"], "nonce": raw.nonce()}, b"{}", v["ka"].sign_raw)
    problem(raw.post_raw(url, body), 400, "malformed")
    still_ready(env, v)


def test_kid_of_another_account(env, raw, victim):
    """B signs with its own key but names A's account URL as kid."""
    v = victim
    url = v["ready"]["finalize"]
    der = a.make_csr(ec.generate_private_key(ec.SECP256R1()), ["ready.atk.test"])
    r = raw.post(url, csr_payload(der), v["kb"], kid=v["kida"])
    body = r.json()
    assert r.status_code in (400, 403), r.text
    assert body["type"] in ("urn:ietf:params:acme:error:malformed",
                            "urn:ietf:params:acme:error:unauthorized"), body
    still_ready(env, v)


def test_jwk_on_kid_endpoint(env, raw, victim):
    """Finalize signed with A's key but carrying jwk instead of kid."""
    v = victim
    url = v["ready"]["finalize"]
    der = a.make_csr(ec.generate_private_key(ec.SECP256R1()), ["ready.atk.test"])
    problem(raw.post(url, csr_payload(der), v["ka"]), 400, "malformed")
    still_ready(env, v)


def test_kid_on_new_account(env, raw, victim):
    v = victim
    r = raw.post(raw.dir["newAccount"], {"termsOfServiceAgreed": True}, v["kb"], kid=v["kidb"])
    problem(r, 400, "malformed")


def test_both_jwk_and_kid(env, raw, victim):
    v = victim
    r = raw.post(v["kida"], {"contact": ["mailto:evil@atk.test"]}, v["ka"], kid=v["kida"],
                 extra={"jwk": v["ka"].jwk})
    problem(r, 400, "malformed")
    account_unchanged(env, v)


def test_unknown_kid_url(env, raw, victim):
    v = victim
    kid = v["kida"].rsplit("/", 1)[0] + "/987654321"
    r = raw.post(raw.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "x.atk.test"}]}, v["ka"], kid=kid)
    problem(r, 400, "accountDoesNotExist")


def test_payload_swapped_after_signing(env, raw, victim):
    """Signature over one payload, another payload sent."""
    v = victim
    good = v["ka"].jws(v["kida"], {"contact": ["mailto:a@atk.test"]}, nonce=raw.nonce(), kid=v["kida"])
    good["payload"] = b64(json.dumps({"contact": ["mailto:evil@atk.test"]}))
    problem(raw.post_raw(v["kida"], good), 400, "malformed")
    account_unchanged(env, v)


def test_compact_serialization(env, raw, victim):
    v = victim
    j = v["ka"].jws(v["kida"], {"contact": ["mailto:evil@atk.test"]}, nonce=raw.nonce(), kid=v["kida"])
    compact = "%s.%s.%s" % (j["protected"], j["payload"], j["signature"])
    problem(raw.post_raw(v["kida"], compact), 400, "malformed")
    account_unchanged(env, v)


def test_general_serialization_two_signatures(env, raw, victim):
    v = victim
    j = v["ka"].jws(v["kida"], {"contact": ["mailto:evil@atk.test"]}, nonce=raw.nonce(), kid=v["kida"])
    general = {"payload": j["payload"], "signatures": [
        {"protected": j["protected"], "signature": j["signature"]},
        {"protected": j["protected"], "signature": j["signature"]}]}
    problem(raw.post_raw(v["kida"], general), 400, "malformed")
    account_unchanged(env, v)


def test_unprotected_header(env, raw, victim):
    v = victim
    j = v["ka"].jws(v["kida"], {"contact": ["mailto:evil@atk.test"]}, nonce=raw.nonce(), kid=v["kida"])
    j["header"] = {"kid": v["kidb"]}
    problem(raw.post_raw(v["kida"], j), 400, "malformed")
    account_unchanged(env, v)


def test_unknown_crit_header(env, raw, victim):
    """RFC 7515 4.1.11: an unknown critical extension must be rejected."""
    v = victim
    r = raw.post(v["kida"], {"contact": ["mailto:evil@atk.test"]}, v["ka"], kid=v["kida"],
                 extra={"crit": ["exp"], "exp": 1})
    problem(r, 400, "malformed")
    account_unchanged(env, v)


# ---------------------------------------------------------------- key change

def key_change(raw, v, inner_key, account, **jws):
    """POSTs a keyChange (RFC 8555 §7.3.5) as account A (outer JWS by A's
    key and kid) whose inner JWS is signed by inner_key and names account
    and A's old key; jws goes to the inner JWS (extra headers, nonce)."""
    url = raw.dir["keyChange"]
    inner = inner_key.jws(url, {"account": account, "oldKey": v["ka"].jwk}, **jws)
    return raw.post(url, inner, v["ka"], kid=v["kida"])


def test_key_change_to_key_in_use(env, raw, victim):
    v = victim
    r = key_change(raw, v, v["kb"], v["kida"])
    assert r.status_code == 409, r.text
    assert r.headers["Content-Type"] == "application/problem+json"
    account_unchanged(env, v)
    assert a.sa_account(env, v["kidb"])["thumbprint"] == v["kb"].thumbprint()


def test_key_change_inner_signed_by_old_key(env, raw, victim):
    """Inner JWS must be signed by the new key it names."""
    v = victim
    r = key_change(raw, v, v["ka"], v["kida"], extra={"jwk": a.Key().jwk})
    problem(r, 400, "malformed")
    account_unchanged(env, v)


def test_key_change_inner_for_another_account(env, raw, victim):
    """Inner payload names B's account while A signs the outer JWS."""
    v = victim
    r = key_change(raw, v, a.Key(), v["kidb"])
    assert 400 <= r.status_code < 500 and r.headers["Content-Type"] == "application/problem+json", r.text
    account_unchanged(env, v)
    assert a.sa_account(env, v["kidb"])["thumbprint"] == v["kb"].thumbprint()


def test_key_change_inner_with_nonce(env, raw, victim):
    """RFC 8555 7.3.5: the inner JWS must not carry a nonce."""
    v = victim
    r = key_change(raw, v, a.Key(), v["kida"], nonce=raw.nonce())
    problem(r, 400, "malformed")
    account_unchanged(env, v)


# ---------------------------------------------------------------- EAB

def test_new_account_without_eab_when_required(env, raw):
    k = a.Key()
    r = raw.post(raw.dir["newAccount"], {"termsOfServiceAgreed": True}, k)
    assert r.status_code in (400, 403), r.text  # RFC 8555 7.3.4 names no status
    problem(r, r.status_code, "externalAccountRequired")
    problem(raw.post(raw.dir["newAccount"], {"onlyReturnExisting": True}, k), 400, "accountDoesNotExist")


def test_eab_replay(env, raw):
    """An EAB binding captured from a successful newAccount, replayed for
    another account key (and re-signed for it): both refused, no account."""
    url = raw.dir["newAccount"]
    mac = a.new_eab_key(env, "atk-replay")
    k1 = a.Key()
    eab1 = a.eab_binding("atk-replay", mac, k1.jwk, url)
    r = raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": eab1}, k1)
    assert r.status_code == 201, r.text
    acct1 = a.id_of(r.headers["Location"])
    k2 = a.Key()
    r = raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": eab1}, k2)
    refused_as(r, (400, 403), ("unauthorized", "malformed"))
    eab2 = a.eab_binding("atk-replay", mac, k2.jwk, url)
    problem(raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": eab2}, k2),
            403, "unauthorized")
    problem(raw.post(url, {"onlyReturnExisting": True}, k2), 400, "accountDoesNotExist")
    eab = env.rpc("sa").call("sa.get_eab_key", {"kid": "atk-replay"})
    assert eab["account_id"] == acct1  # still bound to k1's account


def test_eab_wrong_mac(env, raw):
    url = raw.dir["newAccount"]
    a.new_eab_key(env, "atk-wrongmac")
    k = a.Key()
    eab = a.eab_binding("atk-wrongmac", os.urandom(32), k.jwk, url)
    problem(raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": eab}, k), 403, "unauthorized")
    assert env.rpc("sa").call("sa.get_eab_key", {"kid": "atk-wrongmac"}).get("account_id") is None


def test_eab_for_another_key(env, raw):
    """EAB payload binds key X while the outer JWS is signed by key Y."""
    url = raw.dir["newAccount"]
    mac = a.new_eab_key(env, "atk-otherkey")
    x, y = a.Key(), a.Key()
    eab = a.eab_binding("atk-otherkey", mac, x.jwk, url)
    r = raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": eab}, y)
    refused_as(r, (400, 403), ("unauthorized", "malformed"))
    problem(raw.post(url, {"onlyReturnExisting": True}, y), 400, "accountDoesNotExist")


def test_eab_alg_none(env, raw):
    url = raw.dir["newAccount"]
    a.new_eab_key(env, "atk-none")
    k = a.Key()
    prot = b64(json.dumps({"alg": "none", "kid": "atk-none", "url": url}))
    eab = {"protected": prot, "payload": b64(json.dumps(k.jwk)), "signature": ""}
    r = raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": eab}, k)
    refused_as(r, (400,), ("badSignatureAlgorithm", "malformed"))
    problem(raw.post(url, {"onlyReturnExisting": True}, k), 400, "accountDoesNotExist")


def test_eab_unknown_kid(env, raw):
    url = raw.dir["newAccount"]
    k = a.Key()
    eab = a.eab_binding("atk-never-created", os.urandom(32), k.jwk, url)
    problem(raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": eab}, k), 403, "unauthorized")


# ---------------------------------------------------------------- payloads

def test_payload_on_post_as_get(env, raw, victim):
    v = victim
    cert_url = v["cert"]["order"]["certificate"]
    problem(raw.post(cert_url, {"x": 1}, v["ka"], kid=v["kida"]), 400, "malformed")
    problem(raw.post(v["ready_url"], {"status": "valid"}, v["ka"], kid=v["kida"]), 400, "malformed")
    still_ready(env, v)


def test_oversized_payload(env, raw, victim):
    v = victim
    url = v["ready"]["finalize"]
    r = raw.post(url, {"csr": "A" * 200000}, v["ka"], kid=v["kida"])
    problem(r, 413, "malformed")
    still_ready(env, v)


def test_non_json_payload(env, raw, victim):
    v = victim
    url = v["ready"]["finalize"]
    problem(raw.post(url, "this is not json", v["ka"], kid=v["kida"]), 400, "malformed")
    problem(raw.post(url, b"\xff\xfe\x00garbage", v["ka"], kid=v["kida"]), 400, "malformed")
    still_ready(env, v)


def test_wrong_content_type(env, raw, victim):
    v = victim
    body = v["ka"].jws(v["kida"], {"contact": ["mailto:evil@atk.test"]}, nonce=raw.nonce(), kid=v["kida"])
    for ct in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
        problem(raw.post_raw(v["kida"], body, ctype=ct), 415, "malformed")
    account_unchanged(env, v)


# ---------------------------------------------------------------- CSRs

def test_csr_with_extra_names(env, raw, victim):
    v = victim
    der = a.make_csr(ec.generate_private_key(ec.SECP256R1()), ["ready.atk.test", "extra.atk.test"])
    problem(finalize_ready(raw, v, der), 400, "badCSR")
    still_ready(env, v)


def test_csr_with_fewer_names(env, raw, victim):
    v = victim
    der = a.make_csr(ec.generate_private_key(ec.SECP256R1()), ["other.atk.test"])
    problem(finalize_ready(raw, v, der), 400, "badCSR")
    still_ready(env, v)


def test_csr_signed_by_another_key(env, raw, victim):
    v = victim
    der = a.csr_signed_by_other_key(["ready.atk.test"])
    problem(finalize_ready(raw, v, der), 400, "badCSR")
    still_ready(env, v)


def test_csr_with_the_account_key(env, raw, victim):
    v = victim
    der = a.make_csr(v["ka"].priv, ["ready.atk.test"])
    r = finalize_ready(raw, v, der)
    refused_as(r, (400,), ("badCSR", "badPublicKey"))
    still_ready(env, v)


def test_csr_weak_rsa_key(env, raw, victim):
    v = victim
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = a.make_csr(weak, ["ready.atk.test"])
    problem(finalize_ready(raw, v, der), 400, "badPublicKey")
    still_ready(env, v)


@pytest.mark.parametrize("csr", ["", "AAAA", "not base64!", b64(b"\x30\x82\xff\xff" + b"\x00" * 64)])
def test_csr_garbage(env, raw, victim, csr):
    v = victim
    r = raw.post(v["ready"]["finalize"], {"csr": csr}, v["ka"], kid=v["kida"])
    refused_as(r, (400,), ("badCSR", "malformed"))
    still_ready(env, v)


def test_finalize_valid_order_again(env, raw, victim):
    """A second finalize of a valid order issues nothing new."""
    v = victim
    before = a.sa_order(env, v["cert"]["order_url"])
    der = a.make_csr(ec.generate_private_key(ec.SECP256R1()), ["cert.atk.test"])
    problem(raw.post(v["cert"]["order"]["finalize"], csr_payload(der), v["ka"], kid=v["kida"]),
            403, "orderNotReady")
    after = a.sa_order(env, v["cert"]["order_url"])
    assert after["status"] == "valid" and after["certificate_serial"] == before["certificate_serial"]
    n = env.rpc("sa").call("sa.get_certificates", {"account_id": a.id_of(v["kida"]), "limit": 1000})
    assert len([c for c in n["certificates"] if c.get("order_id") == a.id_of(v["cert"]["order_url"])]) == 1


def test_finalize_pending_order(env, raw, victim):
    v = victim
    url, order = a.new_order(raw, v["ka"], v["kida"], ["pending.atk.test"])
    der = a.make_csr(ec.generate_private_key(ec.SECP256R1()), ["pending.atk.test"])
    problem(raw.post(order["finalize"], csr_payload(der), v["ka"], kid=v["kida"]), 403, "orderNotReady")
    assert a.sa_order(env, url)["status"] == "pending"


# ---------------------------------------------------------------- revocation

def test_revocation_with_unrelated_key(env, raw, victim):
    v = victim
    der = a.leaf_der_b64(v["cert"]["leaf"])
    problem(raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": 1}, a.Key()), 403, "unauthorized")
    still_good(env, v)


def test_revocation_by_another_account(env, raw, victim):
    v = victim
    der = a.leaf_der_b64(v["cert"]["leaf"])
    problem(raw.post(raw.dir["revokeCert"], {"certificate": der}, v["kb"], kid=v["kidb"]), 403, "unauthorized")
    still_good(env, v)


def test_revocation_bad_reason(env, raw, victim):
    v = victim
    der = a.leaf_der_b64(v["cert"]["leaf"])
    for reason in (7, 11, -1, 1 << 40):
        problem(raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": reason}, v["ka"], kid=v["kida"]),
                400, "badRevocationReason")
    still_good(env, v)


def test_revocation_of_foreign_certificate(env, raw, victim):
    """A certificate this CA never issued (self-signed, same key as ours)."""
    import datetime
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    v = victim
    k = v["cert"]["cert_key"]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cert.atk.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    fake = (x509.CertificateBuilder().subject_name(name).issuer_name(v["cert"]["leaf"].issuer)
            .public_key(k.public_key()).serial_number(v["cert"]["leaf"].serial_number)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(k, hashes.SHA256()))
    r = raw.post(raw.dir["revokeCert"], {"certificate": a.leaf_der_b64(fake)}, v["ka"], kid=v["kida"])
    assert r.status_code in (400, 403, 404), r.text
    assert r.headers["Content-Type"] == "application/problem+json"
    still_good(env, v)


def test_revocation_garbage_certificate(env, raw, victim):
    v = victim
    problem(raw.post(raw.dir["revokeCert"], {"certificate": "AAAA"}, v["ka"], kid=v["kida"]), 400, "malformed")
    still_good(env, v)


# ---------------------------------------------------------------- accounts

def test_deactivated_account_reuse(env, raw):
    k, kid = account(env, raw)
    r = raw.post(kid, {"status": "deactivated"}, k, kid=kid)
    assert r.status_code == 200 and r.json()["status"] == "deactivated"
    # RFC 8555 §7.3.6: "it MUST return an error response with status code
    # 401 (Unauthorized) and type "urn:ietf:params:acme:error:unauthorized"."
    problem(raw.post(raw.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "d.atk.test"}]}, k, kid=kid),
            401, "unauthorized")
    r = raw.post(kid, {"status": "valid"}, k, kid=kid)
    assert r.status_code in (400, 401, 403), r.text
    problem(raw.post(kid, {"contact": ["mailto:back@atk.test"]}, k, kid=kid), 401, "unauthorized")
    # newAccount with the same key does not resurrect it
    r = raw.post(raw.dir["newAccount"], {"onlyReturnExisting": True}, k)
    assert r.status_code in (200, 401), r.text
    assert a.sa_account(env, kid)["status"] == "deactivated"
    assert a.sa_account(env, kid)["contact"] in ([], None)


def test_account_status_revoked_by_client(env, raw, victim):
    v = victim
    problem(raw.post(v["kida"], {"status": "revoked"}, v["ka"], kid=v["kida"]), 400, "malformed")
    account_unchanged(env, v)


def test_authz_set_valid_by_client(env, raw, victim):
    v = victim
    url, order = a.new_order(raw, v["ka"], v["kida"], ["selfvalid.atk.test"])
    az = order["authorizations"][0]
    r = raw.post(az, {"status": "valid"}, v["ka"], kid=v["kida"])
    problem(r, 400, "malformed")
    assert a.sa_authz(env, az)["status"] == "pending"


def test_wildcard_order_refused_without_policy_name(env, raw, victim):
    v = victim
    r = raw.post(raw.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "*.evil.com"}]},
                 v["ka"], kid=v["kida"])
    refused_as(r, (400,), ("rejectedIdentifier", "compound"))


def test_server_still_serves_after_catalogue(env, raw, victim):
    """After all of the above, a well-behaved client still gets a certificate."""
    k, kid = account(env, raw)
    got = a.issue(raw, k, kid, ["after.atk.test"])
    assert a.sa_cert(env, got["leaf"])["status"] == "good"
    still_ready(env, victim)
    still_good(env, victim)


# ---------------------------------------------------------------- secrets

def _run_service(env, binary, cfg_path, timeout=60):
    """Runs a service binary on cfg_path; returns (exit status or None if
    it kept running, output). It ends when the service exits; a refusal
    takes the time of a start, long on a busy machine."""
    import subprocess
    import time as _time
    p = subprocess.Popen([os.path.join(env.bin_dir, binary), "--config", cfg_path],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=anvil_env.TOP)
    end = _time.time() + timeout
    while _time.time() < end and p.poll() is None:
        _time.sleep(0.1)
    if p.poll() is None:
        p.terminate()
        out, _ = p.communicate(timeout=20)
        return None, out
    return p.returncode, p.communicate()[0]


def _copy_cfg(env, svc, name, port_off):
    with open(os.path.join(env.cfg_dir, svc + ".json")) as f:
        cfg = json.load(f)
    cfg["rpc"] = dict(cfg.get("rpc", {}))
    if "listen" in cfg["rpc"]:
        cfg["rpc"]["listen"] = "unix:" + os.path.join(env.var_dir, "run", name + ".sock")
    cfg["debug"] = {"addr": "127.0.0.1", "port": PORT_BASE + port_off}
    return cfg


def test_ca_refuses_world_readable_issuer_key(env, tmp_path):
    """An issuer key file readable by group/others: the CA refuses to
    start and names the file; it does not print the key."""
    import shutil
    import stat
    cfg = _copy_cfg(env, "ca", "ca-badkey", 40)
    with open(os.path.join(anvil_env.TOP, cfg["issuers"]) if not os.path.isabs(cfg["issuers"])
              else cfg["issuers"]) as f:
        issuers_path = f.name
        issuers = json.load(f)
    base = os.path.dirname(issuers_path)
    pki = tmp_path / "pki"
    shutil.copytree(base, pki)
    keys = sorted(str(p) for p in pki.iterdir() if p.name.endswith(".key"))
    assert keys, "no key files in %s" % base
    for k in keys:
        assert stat.S_IMODE(os.stat(k).st_mode) & 0o077 == 0, "bootstrap wrote %s readable by others" % k
    txt = json.dumps(issuers).replace(base, str(pki))
    (pki / "issuers.json").write_text(txt)
    for k in keys:
        os.chmod(k, 0o644)
    cfg["issuers"] = str(pki / "issuers.json")
    path = tmp_path / "ca-badkey.json"
    path.write_text(json.dumps(cfg))
    rc, out = _run_service(env, "anvil-ca", str(path))
    assert rc not in (None, 0), "the CA started with a 0644 issuer key:\n" + out
    assert ".key" in out and ("mode" in out or "readable" in out or "permission" in out), out
    assert "PRIVATE KEY" not in out


def test_wfe_refuses_world_readable_tls_key(env, tmp_path):
    import shutil
    with open(os.path.join(env.cfg_dir, "wfe.json")) as f:
        cfg = json.load(f)
    key = tmp_path / "tls.key"
    src = cfg["tls"]["key"] if os.path.isabs(cfg["tls"]["key"]) else os.path.join(anvil_env.TOP, cfg["tls"]["key"])
    shutil.copy(src, key)
    os.chmod(key, 0o644)
    cfg["tls"]["key"] = str(key)
    cfg["listen"]["port"] = PORT_BASE + 41
    cfg["debug"] = {"addr": "127.0.0.1", "port": PORT_BASE + 42}
    cfg.pop("management", None)
    cfg.pop("pki", None)
    path = tmp_path / "wfe-badkey.json"
    path.write_text(json.dumps(cfg))
    rc, out = _run_service(env, "anvil-wfe", str(path))
    assert rc not in (None, 0), "the WFE started with a 0644 TLS key:\n" + out


def test_no_secret_in_any_log(env, raw, victim):
    """After the whole catalogue (EAB keys created, keys loaded, certificates
    issued): no log line holds a private key, an EAB HMAC key or the
    database DSN file's content."""
    macs = []
    sa = env.rpc("sa")
    for k in sa.call("sa.list_eab_keys", {})["keys"]:
        macs.append(sa.call("sa.get_eab_key", {"kid": k["kid"]})["hmac_key"])
    assert macs
    logdir = os.path.join(env.var_dir, "log")
    text = ""
    for name in os.listdir(logdir):
        with open(os.path.join(logdir, name), errors="replace") as f:
            text += f.read()
    assert "PRIVATE KEY" not in text
    for m in macs:
        assert m not in text, "an EAB HMAC key is in the logs"
