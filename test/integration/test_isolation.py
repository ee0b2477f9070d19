"""Account isolation, end to end (issue 14): for every resource kind --
account, orders list, order, authz, challenge, finalize, certificate,
revocation, key change, authz reuse, ARI replacement -- a second account B
can neither read nor change nor revoke what account A owns. Each refusal
is checked against the SA afterwards: A's objects are exactly as before.
A refusal must also not tell B whether the object exists (same answer as
for an id that was never used).

One Anvil through the launcher, VA in always-valid mode.
Ports: AnvilEnv base 26200.
"""
import os
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import rel_acme as a  # noqa: E402
from rel_acme import b64, problem  # noqa: E402

PORT_BASE = 26200


env = a.env_fixture(port_base=PORT_BASE, name="isolation",
        config={"va.json:test.always_valid": True})


raw = a.raw_fixture()


@pytest.fixture(scope="module")
def ab(env, raw):
    """A: a pending order, a ready order, a valid order with its certificate.
    B: a fresh account."""
    ka, kida = a.new_account(raw, contact=["mailto:a@iso.test"])
    kb, kidb = a.new_account(raw, contact=["mailto:b@iso.test"])
    pend_url, pend = a.new_order(raw, ka, kida, ["pending.iso.test"])
    ready_url, ready = a.ready_order(raw, ka, kida, ["ready.iso.test"])
    cert = a.issue(raw, ka, kida, ["cert.iso.test"])
    pend_authz = raw.post(pend["authorizations"][0], None, ka, kid=kida).json()
    return {"ka": ka, "kida": kida, "kb": kb, "kidb": kidb,
            "pend_url": pend_url, "pend": pend, "pend_authz_url": pend["authorizations"][0],
            "pend_chall_url": pend_authz["challenges"][0]["url"],
            "ready_url": ready_url, "ready": ready, "cert": cert}


def not_found_like_nonexistent(raw, r, url, key, kid):
    """B's refusal for A's object equals the answer for an unused id."""
    ghost = url.rsplit("/", 1)[0] + "/987654321"
    g = raw.post(ghost, None, key, kid=kid)
    assert (r.status_code, r.json()["type"]) == (g.status_code, g.json()["type"]), (r.text, g.text)


def a_unchanged(env, s):
    acct = a.sa_account(env, s["kida"])
    assert acct["status"] == "valid" and acct["contact"] == ["mailto:a@iso.test"]
    assert acct["thumbprint"] == s["ka"].thumbprint()
    assert a.sa_order(env, s["pend_url"])["status"] == "pending"
    assert a.sa_authz(env, s["pend_authz_url"])["status"] == "pending"
    assert all(c["status"] == "pending" for c in a.sa_authz(env, s["pend_authz_url"])["challenges"])
    assert a.sa_order(env, s["ready_url"])["status"] == "ready"
    assert a.sa_cert(env, s["cert"]["leaf"])["status"] == "good"


# ---------------------------------------------------------------- account

def test_b_cannot_read_a_account(env, raw, ab):
    problem(raw.post(ab["kida"], None, ab["kb"], kid=ab["kidb"]), 403, "unauthorized")
    a_unchanged(env, ab)


def test_b_cannot_update_a_contact(env, raw, ab):
    r = raw.post(ab["kida"], {"contact": ["mailto:evil@iso.test"]}, ab["kb"], kid=ab["kidb"])
    problem(r, 403, "unauthorized")
    a_unchanged(env, ab)
    assert a.sa_account(env, ab["kidb"])["contact"] == ["mailto:b@iso.test"]


def test_b_cannot_deactivate_a(env, raw, ab):
    problem(raw.post(ab["kida"], {"status": "deactivated"}, ab["kb"], kid=ab["kidb"]), 403, "unauthorized")
    a_unchanged(env, ab)
    assert a.sa_account(env, ab["kidb"])["status"] == "valid"


def test_b_signing_as_a_with_own_key(env, raw, ab):
    """kid = A's URL, signature by B's key: the signature does not verify."""
    r = raw.post(ab["kida"], {"contact": ["mailto:evil@iso.test"]}, ab["kb"], kid=ab["kida"])
    assert r.status_code in (400, 403), r.text
    a_unchanged(env, ab)


def test_b_cannot_list_a_orders(env, raw, ab):
    problem(raw.post(ab["kida"] + "/orders", None, ab["kb"], kid=ab["kidb"]), 403, "unauthorized")
    # and B's own list holds none of A's orders
    r = raw.post(ab["kidb"] + "/orders", None, ab["kb"], kid=ab["kidb"])
    assert r.status_code == 200, r.text
    assert not set(r.json()["orders"]) & {ab["pend_url"], ab["ready_url"], ab["cert"]["order_url"]}


# ---------------------------------------------------------------- order / authz / challenge

@pytest.mark.parametrize("what", ["pend_url", "ready_url", "valid_order"])
def test_b_cannot_read_a_order(env, raw, ab, what):
    url = ab["cert"]["order_url"] if what == "valid_order" else ab[what]
    r = raw.post(url, None, ab["kb"], kid=ab["kidb"])
    assert r.status_code in (403, 404), r.text
    assert "ready.iso.test" not in r.text and "cert.iso.test" not in r.text
    not_found_like_nonexistent(raw, r, url, ab["kb"], ab["kidb"])


def test_b_cannot_read_a_authz(env, raw, ab):
    r = raw.post(ab["pend_authz_url"], None, ab["kb"], kid=ab["kidb"])
    assert r.status_code in (403, 404) and "pending.iso.test" not in r.text, r.text
    not_found_like_nonexistent(raw, r, ab["pend_authz_url"], ab["kb"], ab["kidb"])


def test_b_cannot_deactivate_a_authz(env, raw, ab):
    for url in (ab["pend_authz_url"], ab["ready"]["authorizations"][0]):
        r = raw.post(url, {"status": "deactivated"}, ab["kb"], kid=ab["kidb"])
        assert r.status_code in (403, 404), r.text
    a_unchanged(env, ab)
    assert a.sa_authz(env, ab["ready"]["authorizations"][0])["status"] == "valid"


def test_b_cannot_read_a_challenge(env, raw, ab):
    r = raw.post(ab["pend_chall_url"], None, ab["kb"], kid=ab["kidb"])
    assert r.status_code in (403, 404) and "token" not in r.text, r.text


def test_b_cannot_trigger_a_challenge(env, raw, ab):
    """B answering A's challenge would validate with B's key authorization."""
    r = raw.post(ab["pend_chall_url"], {}, ab["kb"], kid=ab["kidb"])
    assert r.status_code in (403, 404), r.text
    a_unchanged(env, ab)


def test_b_cannot_finalize_a_order(env, raw, ab):
    der = a.make_csr(ec.generate_private_key(ec.SECP256R1()), ["ready.iso.test"])
    r = raw.post(ab["ready"]["finalize"], {"csr": b64(der)}, ab["kb"], kid=ab["kidb"])
    assert r.status_code in (403, 404), r.text
    a_unchanged(env, ab)
    assert not env.rpc("sa").call("sa.get_certificates", {"account_id": a.id_of(ab["kidb"])})["certificates"]


# ---------------------------------------------------------------- certificates

def test_b_cannot_fetch_a_certificate_as_account(env, raw, ab):
    url = ab["cert"]["order"]["certificate"]
    r = raw.post(url, None, ab["kb"], kid=ab["kidb"])
    assert r.status_code in (403, 404), r.text
    assert "BEGIN CERTIFICATE" not in r.text


def test_b_cannot_revoke_a_certificate(env, raw, ab):
    der = a.leaf_der_b64(ab["cert"]["leaf"])
    for reason in (None, 0, 1, 4):
        payload = {"certificate": der}
        if reason is not None:
            payload["reason"] = reason
        problem(raw.post(raw.dir["revokeCert"], payload, ab["kb"], kid=ab["kidb"]), 403, "unauthorized")
    a_unchanged(env, ab)


def test_b_cannot_revoke_with_own_key_as_jwk(env, raw, ab):
    der = a.leaf_der_b64(ab["cert"]["leaf"])
    problem(raw.post(raw.dir["revokeCert"], {"certificate": der}, ab["kb"]), 403, "unauthorized")
    a_unchanged(env, ab)


def test_b_cannot_replace_a_certificate(env, raw, ab):
    """ARI: an order from B naming A's certificate in `replaces`."""
    from cryptography import x509
    leaf = ab["cert"]["leaf"]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    sn = leaf.serial_number
    cert_id = "%s.%s" % (b64(aki), b64(sn.to_bytes((sn.bit_length() + 8) // 8, "big")))
    r = raw.post(raw.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "cert.iso.test"}],
                                       "replaces": cert_id}, ab["kb"], kid=ab["kidb"])
    assert 400 <= r.status_code < 500, r.text
    assert env.rpc("sa").call("sa.replacement_exists", {"serial": cert_id})["exists"] is False
    a_unchanged(env, ab)


# ---------------------------------------------------------------- keys and reuse

def test_b_cannot_take_a_key(env, raw, ab):
    url = raw.dir["keyChange"]
    inner = ab["ka"].jws(url, {"account": ab["kidb"], "oldKey": ab["kb"].jwk})
    r = raw.post(url, inner, ab["kb"], kid=ab["kidb"])
    assert r.status_code == 409, r.text
    a_unchanged(env, ab)
    assert a.sa_account(env, ab["kidb"])["thumbprint"] == ab["kb"].thumbprint()


def test_authz_reuse_is_per_account(env, raw, ab):
    """B ordering A's validated name gets its own pending authz, never A's."""
    a_authz = ab["ready"]["authorizations"][0]
    url, order = a.new_order(raw, ab["kb"], ab["kidb"], ["ready.iso.test"])
    assert a_authz not in order["authorizations"]
    assert order["status"] == "pending"
    for az in order["authorizations"]:
        got = a.sa_authz(env, az)
        assert got["account_id"] == a.id_of(ab["kidb"]) and got["status"] == "pending"
    a_unchanged(env, ab)


def test_new_account_with_a_key_returns_a_not_new(env, raw, ab):
    """newAccount signed with A's key answers A's URL (200): no second
    account, no data of B's."""
    r = raw.post(raw.dir["newAccount"], {"onlyReturnExisting": True}, ab["ka"])
    assert r.status_code == 200 and r.headers["Location"] == ab["kida"]
    a_unchanged(env, ab)
