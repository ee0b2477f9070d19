"""anvil-ra over RPC with the real sa/ca/va on PostgreSQL (AnvilEnv, no WFE).

Account lifecycle incl. EAB, identifier policy, order state machine incl.
expiry, authz reuse, validation through the real VA (dns-01 answered by
pebble-challtestsrv), finalize with every CSR rejection, concurrent finalize
(exactly one issuance), revocation paths, rate limits with renewal
exemption, and crash recovery of orders left in `processing`.
Ports: the ra range 21400-21499 (AnvilEnv port base 21400).
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
from anvilrpc import RpcClient, RpcError  # noqa: E402

PORT_BASE = 21400


def b64(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def uniq(prefix="n"):
    return "%s%s" % (prefix, os.urandom(4).hex())


class Key:
    """An EC P-256 account key with its JWK and RFC 7638 thumbprint."""

    def __init__(self, priv=None):
        self.priv = priv or ec.generate_private_key(ec.SECP256R1())
        nums = self.priv.public_key().public_numbers()
        self.jwk = {"kty": "EC", "crv": "P-256",
                    "x": b64(nums.x.to_bytes(32, "big")),
                    "y": b64(nums.y.to_bytes(32, "big"))}
        canon = json.dumps({"crv": "P-256", "kty": "EC", "x": self.jwk["x"], "y": self.jwk["y"]},
                           separators=(",", ":"), sort_keys=True)
        self.thumbprint = b64(hashlib.sha256(canon.encode()).digest())


def err_type(fn, *a, **kw):
    with pytest.raises(RpcError) as e:
        fn(*a, **kw)
    return e.value.type


def make_csr(names, key=None, cn=None, ips=(), extra=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in names]
    import ipaddress
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if extra:
        sans += extra
    b = x509.CertificateSigningRequestBuilder()
    b = b.subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    csr = b.sign(key, hashes.SHA256())
    return b64(csr.public_bytes(serialization.Encoding.DER)), key


def profiles_file():
    """configs/dev/profiles.json plus a 'quick' profile whose orders expire in 2 s."""
    with open(os.path.join(TOP, "configs", "dev", "profiles.json")) as f:
        doc = json.load(f)
    q = dict(doc["profiles"]["classic"])
    q.update({"description": "test: expires fast", "order_lifetime": "3s",
              "pending_authz_lifetime": "3s", "authz_lifetime": "3s"})
    doc["profiles"]["quick"] = q
    build = os.path.abspath(os.environ.get("BUILD", os.path.join(TOP, "build")))
    os.makedirs(os.path.join(build, "tmp"), exist_ok=True)
    d = tempfile.mkdtemp(prefix="ra-prof-", dir=os.path.join(build, "tmp"))
    p = os.path.join(d, "profiles.json")
    with open(p, "w") as f:
        json.dump(doc, f)
    return p


LIMITS = {
    "new_accounts_per_ip": {"limit": 2, "period": "1h"},
    "new_orders_per_account": {"limit": 4, "period": "1h"},
    "failed_validations_per_identifier": {"limit": 1, "period": "1h"},
    "certificates_per_domain": {"limit": 1, "period": "1h"},
    "duplicate_certificates": {"limit": 2, "period": "1h"},
}


@pytest.fixture(scope="module")
def env():
    prof = profiles_file()
    try:
        with anvil_env.AnvilEnv(port_base=PORT_BASE, name="ra", services=["sa", "ca", "va", "ra"],
                                config={"ra.json:profiles_file": prof,
                                        "ra.json:rate_limits": LIMITS,
                                        "ra.json:finalize.recover_after": "2s",
                                        "ra.json:contacts.max": 2}) as e:
            yield e
    finally:
        shutil.rmtree(os.path.dirname(prof), ignore_errors=True)


ra = anvil_env.rpc_fixture("ra")


sa = anvil_env.rpc_fixture("sa")


def new_account(ra, key=None, **kw):
    key = key or Key()
    p = {"key": key.jwk, "thumbprint": key.thumbprint, "contact": [], "tos_agreed": True}
    p.update(kw)
    r = ra.call("ra.new_account", p)
    return key, r["account"]


def dom(label=None):
    """A fresh registered domain under .test so per-domain limits do not interfere."""
    return "%s.test" % (label or uniq("d"))


def new_order(ra, acct, names, **kw):
    p = {"account_id": acct["id"], "identifiers": [{"type": "dns", "value": n} for n in names]}
    p.update(kw)
    return ra.call("ra.new_order", p)


def wait_for(fn, timeout=30, what="condition"):
    v = anvil_env.wait_for(fn, timeout, interval=0.1)
    if not v:
        raise AssertionError("timed out waiting for " + what)
    return v


def validate(env, ra, sa, acct, key, authz, good=True):
    """dns-01 via challtestsrv; returns the final authz."""
    ch = [c for c in authz["challenges"] if c["type"] == "dns-01"][0]
    name = authz["identifier"]["value"]
    ka = ch["token"] + "." + key.thumbprint
    val = b64(hashlib.sha256(ka.encode()).digest()) if good else "wrong-" + uniq()
    env.challtest("set-txt", {"host": "_acme-challenge.%s." % name, "value": val})
    r = ra.call("ra.perform_validation", {"account_id": acct["id"], "authz_id": authz["id"],
                                          "challenge_id": ch["id"], "thumbprint": key.thumbprint})
    assert r["status"] in ("pending", "processing", "valid", "invalid")
    final = wait_for(lambda: (lambda a: a if a["status"] not in ("pending",) else None)(
        sa.call("sa.get_authz", {"id": authz["id"]})), what="authz result")
    env.challtest("clear-txt", {"host": "_acme-challenge.%s." % name})
    return final


def ready_order(env, ra, sa, names, acct=None, key=None, **kw):
    if acct is None:
        key, acct = new_account(ra)
    o = new_order(ra, acct, names, **kw)
    for a in o["authzs"]:
        if a["status"] != "valid":
            assert validate(env, ra, sa, acct, key, a)["status"] == "valid"
    o = sa.call("sa.get_order", {"id": o["id"]})
    assert o["status"] == "ready"
    return key, acct, o


def finalize(ra, sa, acct, order, csr):
    r = ra.call("ra.finalize_order", {"account_id": acct["id"], "order_id": order["id"], "csr": csr})
    assert r["status"] in ("processing", "valid")
    return wait_for(lambda: (lambda o: o if o["status"] in ("valid", "invalid") else None)(
        sa.call("sa.get_order", {"id": order["id"]})), what="order to finish")


def issue(env, ra, sa, names, acct=None, key=None, **kw):
    key, acct, o = ready_order(env, ra, sa, names, acct, key, **kw)
    csr, ckey = make_csr(names)
    o = finalize(ra, sa, acct, o, csr)
    assert o["status"] == "valid", o
    cert = sa.call("sa.get_certificate", {"serial": o["certificate_serial"]})
    return key, acct, o, cert, ckey


# ---------------------------------------------------------------- accounts

def test_account_create_existing_and_only_return_existing(ra):
    key, a = new_account(ra, contact=["mailto:ops@example.test"])
    assert a["status"] == "valid" and a["contact"] == ["mailto:ops@example.test"]
    r = ra.call("ra.new_account", {"key": key.jwk, "thumbprint": key.thumbprint,
                                   "contact": [], "tos_agreed": True})
    assert r["created"] is False and r["account"]["id"] == a["id"]
    k2 = Key()
    assert err_type(ra.call, "ra.new_account", {"key": k2.jwk, "thumbprint": k2.thumbprint,
                                                "only_return_existing": True}) == "accountDoesNotExist"


def test_account_terms_and_contacts(ra):
    k = Key()
    base = {"key": k.jwk, "thumbprint": k.thumbprint}
    assert err_type(ra.call, "ra.new_account", dict(base, tos_agreed=False)) == "malformed"
    for bad, t in [(["tel:+1555"], "unsupportedContact"),
                   (["mailto:nobody"], "invalidContact"),
                   (["mailto:a@b.test?subject=x"], "invalidContact"),
                   (["mailto:a@-bad-.test"], "invalidContact"),
                   (["mailto:a@b.test", "mailto:c@d.test", "mailto:e@f.test"], "invalidContact"),
                   ("mailto:a@b.test", "malformed")]:
        assert err_type(ra.call, "ra.new_account", dict(base, tos_agreed=True, contact=bad)) == t, bad


def test_account_key_policy(ra):
    priv = ec.generate_private_key(ec.SECP521R1())
    nums = priv.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-521", "x": b64(nums.x.to_bytes(66, "big")),
           "y": b64(nums.y.to_bytes(66, "big"))}
    assert err_type(ra.call, "ra.new_account", {"key": jwk, "thumbprint": "x", "tos_agreed": True}) \
        == "badPublicKey"
    assert err_type(ra.call, "ra.new_account", {"key": "nope", "tos_agreed": True}) == "malformed"


def test_account_update_deactivate(ra):
    key, a = new_account(ra)
    u = ra.call("ra.update_account", {"account_id": a["id"], "contact": ["mailto:new@x.test"]})
    assert u["contact"] == ["mailto:new@x.test"]
    assert err_type(ra.call, "ra.update_account", {"account_id": a["id"], "contact": ["ftp://x"]}) \
        == "unsupportedContact"
    d = ra.call("ra.update_account", {"account_id": a["id"], "deactivate": True})
    assert d["status"] == "deactivated"
    # every later request with it is unauthorized
    assert err_type(ra.call, "ra.update_account", {"account_id": a["id"], "contact": []}) == "unauthorized"
    assert err_type(new_order, ra, a, [dom()]) == "unauthorized"
    assert err_type(ra.call, "ra.new_account", {"key": key.jwk, "thumbprint": key.thumbprint,
                                                "tos_agreed": True}) == "unauthorized"


def test_key_change(ra):
    k1, a = new_account(ra)
    k2, b = new_account(ra)
    # new key in use by another account
    assert err_type(ra.call, "ra.key_change", {"account_id": a["id"], "new_key": k2.jwk,
                                               "new_thumbprint": k2.thumbprint}) == "conflict"
    k3 = Key()
    r = ra.call("ra.key_change", {"account_id": a["id"], "new_key": k3.jwk,
                                  "new_thumbprint": k3.thumbprint})
    assert r["thumbprint"] == k3.thumbprint
    again = ra.call("ra.new_account", {"key": k3.jwk, "thumbprint": k3.thumbprint, "tos_agreed": True})
    assert again["created"] is False and again["account"]["id"] == a["id"]


def eab_jws(kid, hkey, jwk, url):
    prot = b64(json.dumps({"alg": "HS256", "kid": kid, "url": url}).encode())
    payload = b64(json.dumps(jwk).encode())
    sig = hmac.new(hkey, (prot + "." + payload).encode(), hashlib.sha256).digest()
    return {"protected": prot, "payload": payload, "signature": b64(sig)}


def test_eab_success_failure_reuse(ra, sa):
    url = "https://localhost:21431/acme/new-account"
    kid, hkey = uniq("kid"), os.urandom(32)
    sa.call("sa.new_eab_key", {"kid": kid, "hmac_key": b64(hkey), "comment": "ra test"})
    k = Key()
    # wrong MAC key
    bad = eab_jws(kid, os.urandom(32), k.jwk, url)
    assert err_type(ra.call, "ra.new_account", {"key": k.jwk, "thumbprint": k.thumbprint, "tos_agreed": True,
                                                "eab": bad, "eab_url": url}) == "unauthorized"
    # unknown kid
    unk = eab_jws("nokid-" + uniq(), hkey, k.jwk, url)
    assert err_type(ra.call, "ra.new_account", {"key": k.jwk, "thumbprint": k.thumbprint, "tos_agreed": True,
                                                "eab": unk, "eab_url": url}) == "unauthorized"
    # payload is another key
    other = Key()
    assert err_type(ra.call, "ra.new_account", {"key": k.jwk, "thumbprint": k.thumbprint, "tos_agreed": True,
                                                "eab": eab_jws(kid, hkey, other.jwk, url),
                                                "eab_url": url}) == "unauthorized"
    # success, bound to the account
    r = ra.call("ra.new_account", {"key": k.jwk, "thumbprint": k.thumbprint, "tos_agreed": True,
                                   "eab": eab_jws(kid, hkey, k.jwk, url), "eab_url": url})
    assert r["created"] is True and r["account"]["eab_kid"] == kid
    assert sa.call("sa.get_eab_key", {"kid": kid})["account_id"] == r["account"]["id"]
    # reuse by another key fails
    k2 = Key()
    assert err_type(ra.call, "ra.new_account", {"key": k2.jwk, "thumbprint": k2.thumbprint, "tos_agreed": True,
                                                "eab": eab_jws(kid, hkey, k2.jwk, url),
                                                "eab_url": url}) == "unauthorized"


# ---------------------------------------------------------------- orders

def test_identifier_policy_subproblems(ra):
    _, a = new_account(ra)
    with pytest.raises(RpcError) as e:
        new_order(ra, a, ["ok.%s" % dom(), "evil.com", "x.example.org"])
    p = e.value.problem
    assert p["type"] == "rejectedIdentifier"
    assert sorted(s["identifier"]["value"] for s in p["subproblems"]) == ["evil.com", "x.example.org"]
    assert err_type(ra.call, "ra.new_order", {"account_id": a["id"], "identifiers": [
        {"type": "ip", "value": "8.8.8.8"}]}) == "rejectedIdentifier"
    assert err_type(ra.call, "ra.new_order", {"account_id": a["id"], "identifiers": []}) == "malformed"
    assert err_type(new_order, ra, a, [dom()], profile="nosuch") == "invalidProfile"
    # tlsserver: DNS only, max 25
    assert err_type(ra.call, "ra.new_order", {"account_id": a["id"], "profile": "tlsserver", "identifiers": [
        {"type": "ip", "value": "10.0.0.1"}]}) == "rejectedIdentifier"
    many = ["h%d.%s" % (i, dom()) for i in range(26)]
    assert err_type(new_order, ra, a, many, profile="tlsserver") == "rejectedIdentifier"


def test_order_challenges_per_identifier_kind(ra):
    _, a = new_account(ra)
    d = dom()
    o = ra.call("ra.new_order", {"account_id": a["id"], "identifiers": [
        {"type": "dns", "value": "www." + d}, {"type": "dns", "value": "*." + d},
        {"type": "ip", "value": "10.1.2.3"}]})
    assert o["status"] == "pending" and len(o["authzs"]) == 3
    kinds = {}
    for z in o["authzs"]:
        kinds[(z["identifier"]["value"], z["wildcard"])] = sorted(c["type"] for c in z["challenges"])
        for c in z["challenges"]:
            assert len(base64.urlsafe_b64decode(c["token"] + "=")) == 32
    # configs/dev enables dns-account-01 (draft-ietf-acme-dns-account-label)
    # and dns-persist-01 (draft-ietf-acme-dns-persist), which prove DNS
    # names and wildcards as dns-01 does
    assert kinds[("www." + d, False)] == ["dns-01", "dns-account-01", "dns-persist-01",
                                         "http-01", "tls-alpn-01"]
    assert kinds[(d, True)] == ["dns-01", "dns-account-01", "dns-persist-01"]
    assert kinds[("10.1.2.3", False)] == ["http-01", "tls-alpn-01"]


def test_wildcard_issuance(env, ra, sa):
    d = dom()
    key, a, o, cert, _ = issue(env, ra, sa, ["*." + d, d])
    c = x509.load_der_x509_certificate(base64.urlsafe_b64decode(cert["der"] + "=="))
    sans = sorted(c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName))
    assert sans == sorted(["*." + d, d])
    z = sa.call("sa.get_authzs", {"ids": o["authz_ids"]})["authzs"]
    assert sorted(x["wildcard"] for x in z) == [False, True]
    assert all(x["identifier"]["value"] == d for x in z)


def test_validity_window(ra):
    _, a = new_account(ra)
    now = time.time()
    fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    o = new_order(ra, a, [dom()], not_before=fmt(now), not_after=fmt(now + 10 * 86400))
    assert o["not_after"].startswith(fmt(now + 10 * 86400)[:10])
    assert err_type(new_order, ra, a, [dom()], not_before=fmt(now), not_after=fmt(now + 200 * 86400)) \
        == "malformed"
    assert err_type(new_order, ra, a, [dom()], not_before=fmt(now + 5), not_after=fmt(now)) == "malformed"
    assert err_type(new_order, ra, a, [dom()], not_after="yesterday") == "malformed"
    assert err_type(new_order, ra, a, [dom()], profile="tlsserver", not_after=fmt(now + 86400)) == "malformed"


def test_validity_window_honoured_in_certificate(env, ra, sa):
    now = time.time()
    fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    _, _, o, cert, _ = issue(env, ra, sa, ["vw." + dom()], not_after=fmt(now + 10 * 86400))
    c = x509.load_der_x509_certificate(base64.urlsafe_b64decode(cert["der"] + "=="))
    import datetime
    na = c.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp()
    assert abs(na - (now + 10 * 86400)) < 3600 + 120


def test_order_state_machine_and_authz_reuse(env, ra, sa):
    key, a = new_account(ra)
    d = dom()
    o = new_order(ra, a, ["a." + d, "b." + d])
    assert o["status"] == "pending"
    assert validate(env, ra, sa, a, key, o["authzs"][0])["status"] == "valid"
    assert sa.call("sa.get_order", {"id": o["id"]})["status"] == "pending"
    assert validate(env, ra, sa, a, key, o["authzs"][1])["status"] == "valid"
    assert sa.call("sa.get_order", {"id": o["id"]})["status"] == "ready"
    # a second order for the same names reuses both valid authzs: ready at once
    o2 = new_order(ra, a, ["b." + d, "a." + d])
    assert sorted(o2["authz_ids"]) == sorted(o["authz_ids"])
    assert o2["status"] == "ready"
    # no reuse for another account or another profile
    _, b = new_account(ra)
    o3 = new_order(ra, b, ["a." + d])
    assert o3["authz_ids"][0] not in o["authz_ids"] and o3["status"] == "pending"
    o4 = new_order(ra, a, ["a." + d], profile="shortlived")
    assert o4["authz_ids"][0] not in o["authz_ids"]
    # finalize a pending order: orderNotReady
    csr, _ = make_csr(["a." + d])
    assert err_type(ra.call, "ra.finalize_order", {"account_id": b["id"], "order_id": o3["id"],
                                                   "csr": csr}) == "orderNotReady"
    # valid after finalize; finalizing again is orderNotReady
    csr, _ = make_csr(["a." + d, "b." + d])
    f = finalize(ra, sa, a, o, csr)
    assert f["status"] == "valid" and f["certificate_serial"]
    assert err_type(ra.call, "ra.finalize_order", {"account_id": a["id"], "order_id": o["id"],
                                                   "csr": csr}) == "orderNotReady"
    # someone else's order
    assert err_type(ra.call, "ra.finalize_order", {"account_id": b["id"], "order_id": o2["id"],
                                                   "csr": csr}) == "unauthorized"


def test_failed_validation_invalidates_authz_and_order(env, ra, sa):
    key, a = new_account(ra)
    d = dom()
    o = new_order(ra, a, ["x." + d, "y." + d])
    z = validate(env, ra, sa, a, key, o["authzs"][0], good=False)
    assert z["status"] == "invalid"
    ch = [c for c in z["challenges"] if c["type"] == "dns-01"][0]
    assert ch["status"] == "invalid" and ch["error"]["type"] in ("unauthorized", "incorrectResponse", "dns")
    assert sa.call("sa.get_order", {"id": o["id"]})["status"] == "invalid"
    # posting the challenge again does not restart anything
    r = ra.call("ra.perform_validation", {"account_id": a["id"], "authz_id": z["id"],
                                          "challenge_id": ch["id"], "thumbprint": key.thumbprint})
    assert r["status"] == "invalid"


def test_challenge_ownership_and_deactivation(env, ra, sa):
    key, a = new_account(ra)
    _, b = new_account(ra)
    o = new_order(ra, a, [dom()])
    z = o["authzs"][0]
    ch = z["challenges"][0]
    assert err_type(ra.call, "ra.perform_validation", {"account_id": b["id"], "authz_id": z["id"],
                                                       "challenge_id": ch["id"]}) == "unauthorized"
    assert err_type(ra.call, "ra.perform_validation", {"account_id": a["id"], "authz_id": z["id"],
                                                       "challenge_id": 999999999}) == "notFound"
    # account_uri (the kid URL the WFE verified) must be this account's URL
    for bad in ("https://h/acme/acct/%d" % b["id"], "https://h/acme/acct/1%d" % a["id"], 7,
                "https://h/" + "x" * 1100 + "/acme/acct/%d" % a["id"]):
        assert err_type(ra.call, "ra.perform_validation", {
            "account_id": a["id"], "authz_id": z["id"], "challenge_id": ch["id"],
            "account_uri": bad}) == "malformed", bad
    assert z["status"] == "pending"
    assert err_type(ra.call, "ra.deactivate_authz", {"account_id": b["id"], "authz_id": z["id"]}) \
        == "unauthorized"
    d = ra.call("ra.deactivate_authz", {"account_id": a["id"], "authz_id": z["id"]})
    assert d["status"] == "deactivated"
    assert sa.call("sa.get_order", {"id": o["id"]})["status"] == "invalid"
    assert err_type(ra.call, "ra.deactivate_authz", {"account_id": a["id"], "authz_id": z["id"]}) \
        == "malformed"


def test_new_authz_preauthorization(env, ra, sa):
    key, a = new_account(ra)
    d = dom()
    z = ra.call("ra.new_authz", {"account_id": a["id"], "identifier": {"type": "dns", "value": "pre." + d}})
    assert z["status"] == "pending"
    assert validate(env, ra, sa, a, key, z)["status"] == "valid"
    o = new_order(ra, a, ["pre." + d])
    assert o["status"] == "ready" and o["authz_ids"] == [z["id"]]
    assert err_type(ra.call, "ra.new_authz", {"account_id": a["id"], "identifier":
                                              {"type": "dns", "value": "*." + d}}) == "rejectedIdentifier"
    assert err_type(ra.call, "ra.new_authz", {"account_id": a["id"], "identifier":
                                              {"type": "dns", "value": "a.example.com"}}) == "rejectedIdentifier"


def test_order_expiry(ra, sa):
    _, a = new_account(ra)
    o = new_order(ra, a, [dom()], profile="quick")
    assert o["status"] == "pending"
    time.sleep(4)
    assert sa.call("sa.get_order", {"id": o["id"]})["status"] == "invalid"
    csr, _ = make_csr([o["identifiers"][0]["value"]])
    assert err_type(ra.call, "ra.finalize_order", {"account_id": a["id"], "order_id": o["id"],
                                                   "csr": csr}) == "orderNotReady"


# ---------------------------------------------------------------- finalize

def test_csr_rejections(env, ra, sa):
    d = dom()
    names = ["c1." + d, "c2." + d]
    key, a, o = ready_order(env, ra, sa, names)

    def reject(csr):
        with pytest.raises(RpcError) as e:
            ra.call("ra.finalize_order", {"account_id": a["id"], "order_id": o["id"], "csr": csr})
        return e.value.type

    assert reject(make_csr(names[:1])[0]) == "badCSR"                     # missing name
    assert reject(make_csr(names + ["c3." + d])[0]) == "badCSR"           # extra name
    assert reject(make_csr(names, cn="other." + d)[0]) == "badCSR"        # CN not a SAN
    assert reject(make_csr(names, extra=[x509.RFC822Name("a@b.test")])[0]) == "badCSR"
    assert reject(make_csr(names, ips=["10.0.0.1"])[0]) == "badCSR"
    assert reject("not-a-csr") == "badCSR"
    assert reject(b64(b"\x30\x03\x02\x01\x01")) == "badCSR"
    # signature broken
    raw = bytearray(base64.urlsafe_b64decode(make_csr(names)[0] + "=="))
    raw[-3] ^= 0x40
    assert reject(b64(bytes(raw))) == "badCSR"
    # key policy
    assert reject(make_csr(names, key=rsa.generate_private_key(65537, 1024))[0]) == "badPublicKey"
    assert reject(make_csr(names, key=rsa.generate_private_key(3, 2048))[0]) == "badPublicKey"
    assert reject(make_csr(names, key=ec.generate_private_key(ec.SECP521R1()))[0]) == "badPublicKey"
    # the account key itself
    assert reject(make_csr(names, key=key.priv)[0]) == "badCSR"
    # weak keys: p and q adjacent primes (Fermat); ROCA-structured primes
    assert reject(make_csr(names, key=fermat_key())[0]) == "badPublicKey"
    assert reject(make_csr(names, key=roca_key())[0]) == "badPublicKey"
    # still ready after all the rejections, and a good CSR issues
    assert sa.call("sa.get_order", {"id": o["id"]})["status"] == "ready"
    assert finalize(ra, sa, a, o, make_csr(names, cn=names[0])[0])["status"] == "valid"


def is_prime(n):
    from cryptography.hazmat.primitives.asymmetric.rsa import rsa_crt_iqmp  # noqa: F401
    # Miller-Rabin with fixed bases (enough for test key generation)
    if n % 2 == 0:
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def fermat_key():
    from cryptography.hazmat.primitives.asymmetric.rsa import (
        RSAPrivateNumbers, RSAPublicNumbers, rsa_crt_dmp1, rsa_crt_dmq1, rsa_crt_iqmp)
    base = rsa.generate_private_key(65537, 2048).private_numbers().p
    q = base + 2
    while not is_prime(q) or (q - 1) % 65537 == 0:
        q += 2
    p = base
    n = p * q
    d = pow(65537, -1, (p - 1) * (q - 1))
    return RSAPrivateNumbers(p, q, d, rsa_crt_dmp1(d, p), rsa_crt_dmq1(d, q), rsa_crt_iqmp(p, q),
                             RSAPublicNumbers(65537, n)).private_key()


ROCA_PRIMES = [3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
               89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167]


def roca_prime():
    """A 1024-bit prime k*M + (65537^a mod M), the structure of RSALib keys."""
    m = 1
    for p in ROCA_PRIMES:
        m *= p
    lo, hi = (3 << 1022) // m + 1, (1 << 1024) // m
    while True:
        a = int.from_bytes(os.urandom(8), "big")
        k = lo + int.from_bytes(os.urandom(128), "big") % (hi - lo)
        p = k * m + pow(65537, a, m)
        if p.bit_length() == 1024 and (p - 1) % 65537 != 0 and is_prime(p):
            return p


def roca_key():
    from cryptography.hazmat.primitives.asymmetric.rsa import (
        RSAPrivateNumbers, RSAPublicNumbers, rsa_crt_dmp1, rsa_crt_dmq1, rsa_crt_iqmp)
    p, q = roca_prime(), roca_prime()
    d = pow(65537, -1, (p - 1) * (q - 1))
    return RSAPrivateNumbers(p, q, d, rsa_crt_dmp1(d, p), rsa_crt_dmq1(d, q), rsa_crt_iqmp(p, q),
                             RSAPublicNumbers(65537, p * q)).private_key()


def test_concurrent_finalize_issues_once(env, ra, sa):
    d = dom()
    key, a, o = ready_order(env, ra, sa, ["cc." + d])
    csr, _ = make_csr(["cc." + d])
    results = []

    def go():
        c = env.rpc("ra")
        try:
            results.append(c.call("ra.finalize_order", {"account_id": a["id"], "order_id": o["id"],
                                                        "csr": csr})["status"])
        except RpcError as e:
            results.append(e.type)
        finally:
            c.close()
    ts = [threading.Thread(target=go) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sum(1 for r in results if r in ("processing", "valid")) == 1, results
    assert results.count("orderNotReady") == 7, results
    wait_for(lambda: sa.call("sa.get_order", {"id": o["id"]})["status"] == "valid")
    certs = sa.call("sa.get_certificates", {"account_id": a["id"], "limit": 100})["certificates"]
    assert len([c for c in certs if c["order_id"] == o["id"]]) == 1


# ---------------------------------------------------------------- revocation

def test_revocation_paths(env, ra, sa):
    d = dom()
    key, a, o, cert, ckey = issue(env, ra, sa, ["r1." + d])
    der = cert["der"]
    _, stranger = new_account(ra)
    assert err_type(ra.call, "ra.revoke_by_account", {"account_id": stranger["id"], "der": der,
                                                      "reason": 0}) == "unauthorized"
    assert err_type(ra.call, "ra.revoke_by_account", {"account_id": a["id"], "der": der,
                                                      "reason": 7}) == "badRevocationReason"
    assert err_type(ra.call, "ra.revoke_by_account", {"account_id": a["id"], "der": der,
                                                      "reason": 11}) == "badRevocationReason"
    # a certificate this CA never issued (same serial, different bytes)
    bad = bytearray(base64.urlsafe_b64decode(der + "=="))
    bad[-10] ^= 1
    assert err_type(ra.call, "ra.revoke_by_account", {"account_id": a["id"], "der": b64(bytes(bad)),
                                                      "reason": 0}) in ("notFound", "malformed")
    assert ra.call("ra.revoke_by_account", {"account_id": a["id"], "der": der, "reason": 4}) == {}
    c = sa.call("sa.get_certificate", {"serial": cert["serial"]})
    assert c["status"] == "revoked" and c["revoked_reason"] == 4
    assert err_type(ra.call, "ra.revoke_by_account", {"account_id": a["id"], "der": der,
                                                      "reason": 0}) == "alreadyRevoked"
    # the CRL of the shard shows it within seconds
    crl = wait_for(lambda: _crl_has(sa, c), timeout=60, what="CRL entry")
    assert crl


def _crl_has(sa, cert):
    try:
        crl = sa.call("sa.get_crl", {"issuer_id": cert["issuer_id"], "shard": cert["shard"]})
    except RpcError:
        return False
    parsed = x509.load_der_x509_crl(base64.urlsafe_b64decode(crl["der"] + "=="))
    return parsed.get_revoked_certificate_by_serial_number(int(cert["serial"], 16)) is not None


def test_revoke_by_authz_holder(env, ra, sa):
    d = dom()
    _, a, o, cert, _ = issue(env, ra, sa, ["h1." + d])
    key2, b = new_account(ra)
    # b proves control of the name, then may revoke (as cessationOfOperation)
    ready_order(env, ra, sa, ["h1." + d], acct=b, key=key2)
    assert ra.call("ra.revoke_by_account", {"account_id": b["id"], "der": cert["der"], "reason": 1}) == {}
    c = sa.call("sa.get_certificate", {"serial": cert["serial"]})
    assert c["status"] == "revoked" and c["revoked_reason"] == 5


def test_revoke_by_key_blocks_key(env, ra, sa):
    d = dom()
    names = ["k1." + d]
    key, a, o = ready_order(env, ra, sa, names)
    csr, ckey = make_csr(names)
    o = finalize(ra, sa, a, o, csr)
    cert = sa.call("sa.get_certificate", {"serial": o["certificate_serial"]})
    assert ra.call("ra.revoke_by_key", {"der": cert["der"], "reason": 1}) == {}
    assert sa.call("sa.key_blocked", {"key_hash": cert["key_hash"]})["blocked"] is True
    assert sa.call("sa.get_certificate", {"serial": cert["serial"]})["revoked_reason"] == 1
    # the blocked key can no longer be certified
    names2 = ["k2." + dom()]
    _, a2, o2 = ready_order(env, ra, sa, names2)
    assert err_type(ra.call, "ra.finalize_order", {"account_id": a2["id"], "order_id": o2["id"],
                                                   "csr": make_csr(names2, key=ckey)[0]}) == "badPublicKey"


def test_admin_revoke(env, ra, sa):
    _, a, o, cert, _ = issue(env, ra, sa, ["ad." + dom()])
    r = ra.call("ra.admin_revoke", {"serial": cert["serial"].upper(), "reason": 9, "block_key": True,
                                    "admin": "alice"})
    assert r["status"] == "revoked"
    assert sa.call("sa.key_blocked", {"key_hash": cert["key_hash"]})["blocked"] is True
    r = ra.call("ra.admin_revoke", {"serial": cert["serial"], "reason": 9, "block_key": False,
                                    "admin": "alice"})
    assert r["status"] == "already_revoked"
    assert err_type(ra.call, "ra.admin_revoke", {"serial": "00" * 18, "reason": 0, "admin": "a"}) == "notFound"
    assert err_type(ra.call, "ra.admin_revoke", {"serial": "zz", "reason": 0, "admin": "a"}) == "malformed"
    assert err_type(ra.call, "ra.admin_revoke", {"serial": cert["serial"], "reason": 7,
                                                 "admin": "a"}) == "badRevocationReason"


def cert_id(cert):
    c = x509.load_der_x509_certificate(base64.urlsafe_b64decode(cert["der"] + "=="))
    aki = c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    sn = c.serial_number
    return b64(aki) + "." + b64(sn.to_bytes((sn.bit_length() + 8) // 8, "big"))


def test_ari_replaces_and_renewal_info(env, ra, sa):
    d = dom()
    key, a, o, cert, _ = issue(env, ra, sa, ["ari." + d])
    cid = cert_id(cert)
    ri = ra.call("ra.renewal_info", {"cert_id": cid})
    assert ri["suggested_window"]["start"] < ri["suggested_window"]["end"]
    _, other = new_account(ra)
    assert err_type(new_order, ra, other, ["ari." + d], replaces=cid) == "unauthorized"
    assert err_type(new_order, ra, a, ["zzz." + dom()], replaces=cid) == "malformed"
    assert err_type(new_order, ra, a, ["ari." + d], replaces="garbage") == "malformed"
    o2 = new_order(ra, a, ["ari." + d], replaces=cid)
    assert o2["replaces"] == cid
    assert err_type(new_order, ra, a, ["ari." + d], replaces=cid) == "alreadyReplaced"


# ---------------------------------------------------------------- rate limits

def test_rate_limit_new_accounts_per_ip(ra):
    ip = "10.9.%d.%d" % (os.urandom(1)[0], os.urandom(1)[0])
    new_account(ra, client_ip=ip)
    new_account(ra, client_ip=ip)
    with pytest.raises(RpcError) as e:
        new_account(ra, client_ip=ip)
    assert e.value.type == "rateLimited" and e.value.problem.get("retry_after", 0) > 0
    new_account(ra, client_ip=ip + "1" if not ip.endswith("9") else ip[:-1] + "8")  # another IP is fine


def test_rate_limit_new_orders_per_account(ra):
    _, a = new_account(ra)
    for _ in range(4):
        new_order(ra, a, [dom()])
    with pytest.raises(RpcError) as e:
        new_order(ra, a, [dom()])
    assert e.value.type == "rateLimited" and e.value.problem.get("retry_after", 0) > 0


def test_rate_limit_failed_validations(env, ra, sa):
    key, a = new_account(ra)
    name = "fv." + dom()
    o = new_order(ra, a, [name])
    assert validate(env, ra, sa, a, key, o["authzs"][0], good=False)["status"] == "invalid"
    assert err_type(new_order, ra, a, [name]) == "rateLimited"
    # another account is not affected
    _, b = new_account(ra)
    new_order(ra, b, [name])


def test_rate_limit_certs_per_domain_and_renewal_exemption(env, ra, sa):
    d = dom()
    key, a, o, cert, _ = issue(env, ra, sa, ["one." + d])
    # a different name under the same registered domain: limited (1 per hour)
    assert err_type(new_order, ra, a, ["two." + d]) == "rateLimited"
    # a renewal (same identifier set) is exempt from the per-domain limit
    _, _, o2, cert2, _ = issue(env, ra, sa, ["one." + d], acct=a, key=key)
    # but not from the duplicate-certificate limit (2 per hour)
    with pytest.raises(RpcError) as e:
        new_order(ra, a, ["one." + d])
    assert e.value.type == "rateLimited" and "duplicate" in e.value.problem["detail"]


def test_renewal_exempt_from_new_orders_limit(env, ra, sa):
    d = dom()
    key, a, o, cert, _ = issue(env, ra, sa, ["ren." + d])
    for _ in range(3):
        new_order(ra, a, [dom()])
    # 4 orders spent; a renewal order is still allowed, a new one is not
    new_order(ra, a, ["ren." + d])
    assert err_type(new_order, ra, a, [dom()]) == "rateLimited"


def test_ari_replacement_exempt_from_new_orders_limit(env, ra, sa):
    d = dom()
    key, a, o, cert, _ = issue(env, ra, sa, ["arx." + d])
    for _ in range(3):
        new_order(ra, a, [dom()])
    assert err_type(new_order, ra, a, [dom()]) == "rateLimited"
    # a different identifier set, but replacing the certificate: exempt
    o2 = new_order(ra, a, ["arx." + d, "ary." + d], replaces=cert_id(cert))
    assert o2["status"] == "pending"


# ---------------------------------------------------------------- recovery and health

def test_recovery_of_processing_orders(env, ra, sa):
    d = dom()
    # an order claimed for processing whose certificate was stored: finished
    key, a, o = ready_order(env, ra, sa, ["rec1." + d])
    sa.call("sa.set_order_processing", {"id": o["id"]})
    csr, _ = make_csr(["rec1." + d])
    ca = env.rpc("ca")
    issued = ca.call("ca.issue", {"csr": csr, "identifiers": o["identifiers"], "profile": o["profile"],
                                  "account_id": a["id"], "order_id": o["id"]})
    ca.close()
    # an order claimed whose issuance never happened: failed
    key2, a2, o2 = ready_order(env, ra, sa, ["rec2." + dom()])
    sa.call("sa.set_order_processing", {"id": o2["id"]})
    done = wait_for(lambda: (lambda x: x if x["status"] == "valid" else None)(
        sa.call("sa.get_order", {"id": o["id"]})), timeout=60, what="recovered valid order")
    assert done["certificate_serial"] == issued["serial"]
    bad = wait_for(lambda: (lambda x: x if x["status"] == "invalid" else None)(
        sa.call("sa.get_order", {"id": o2["id"]})), timeout=60, what="recovered failed order")
    assert bad["error"]["type"] == "serverInternal"


def signatures(env):
    """The CA's certificate signatures so far (anvil_ca_signatures_total)."""
    _, body = env.debug_get("ca", "/metrics")
    return sum(float(ln.split()[-1]) for ln in body.splitlines()
               if ln.startswith("anvil_ca_signatures_total{") and 'purpose="cert"' in ln)


def test_lost_claim_cannot_get_a_certificate_signed(env, ra, sa):
    """Two RAs on one order (docs/scaling.md, "The finalize claim"): the
    first claimant (played by the test) stops showing itself, the RA's
    recovery takes the order over after recover_after (2 s here) and issues
    it. The first claimant, back, gets nothing signed: its ca.issue is
    refused before signing (its serial reservation needs the claim), and a
    serial its claim had reserved, signed late, is not stored. The order
    ends with exactly one certificate."""
    name = "claim." + dom()
    key, a, o = ready_order(env, ra, sa, [name])
    csr, _ = make_csr([name])
    # a serial of the CA's form (prefix, length), as the RA reserves one
    form = issue(env, ra, sa, ["form." + dom()])[2]["certificate_serial"]
    old, pre = os.urandom(16).hex(), form[:2] + os.urandom(len(form) // 2 - 1).hex()
    sa.call("sa.set_order_processing", {"id": o["id"], "csr": csr, "claim": old,
                                        "reserve_serial": pre, "serial_expires": "2099-01-01T00:00:00Z"})
    done = wait_for(lambda: (lambda x: x if x["status"] == "valid" else None)(
        sa.call("sa.get_order", {"id": o["id"]})), timeout=60, what="order issued by recovery")
    before = signatures(env)
    ca = env.rpc("ca")
    try:
        req = {"csr": csr, "identifiers": o["identifiers"], "profile": o["profile"],
               "account_id": a["id"], "order_id": o["id"], "finalize_order": True, "claim": old}
        with pytest.raises(RpcError) as e:
            ca.call("ca.issue", req)
        assert e.value.type == "orderNotReady", e.value.problem
        assert signatures(env) == before
        # the claim's own serial, past its deadline: not signed
        with pytest.raises(RpcError) as e:
            ca.call("ca.issue", dict(req, serial=pre, sign_by_ms=int(time.time() * 1000) - 1))
        assert e.value.type == "unavailable", e.value.problem
        assert signatures(env) == before
    finally:
        ca.close()
    certs = sa.call("sa.get_certificates", {"order_id": o["id"]})["certificates"]
    assert [c["serial"] for c in certs] == [done["certificate_serial"]]


def test_health_and_metrics(env):
    status, body = env.debug_get("ra", "/healthz")
    assert status == 200
    status, body = env.debug_get("ra", "/metrics")
    assert status == 200 and "anvil_ra_new_orders_total" in body


def test_bad_params_never_crash(ra):
    for m in ("ra.new_order", "ra.finalize_order", "ra.perform_validation", "ra.revoke_by_account",
              "ra.revoke_by_key", "ra.admin_revoke", "ra.renewal_info", "ra.new_authz",
              "ra.update_account", "ra.key_change", "ra.deactivate_authz", "ra.new_account"):
        for params in ({}, {"account_id": "x"}, {"account_id": -1}):
            with pytest.raises(RpcError):
                ra.call(m, params)
        # wrong types everywhere: an error (or, for update_account, a no-op), never a crash
        try:
            ra.call(m, {"account_id": 1, "identifiers": "x", "csr": 5, "der": [], "cert_id": {},
                        "key": 3, "reason": "x", "serial": 7, "authz_id": "y"})
        except RpcError as e:
            assert e.type != "serverInternal", (m, e.problem)
    assert ra.call("health.check", {}) is not None
