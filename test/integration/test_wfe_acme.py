"""The ACME surface end to end: real PostgreSQL, sa/ca/va/ra/wfe through the
launcher (AnvilEnv), python3-acme as the protocol client, plus a raw JWS
client (test_wfe_http.Key / Wfe) where a test needs control over every byte.

Ports: AnvilEnv base 21500 (WFE 21531), a second WFE on 21537.
"""
import datetime
import hashlib
import json
import os
import sys
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

import josepy as jose
import OpenSSL
from acme import challenges, crypto_util, errors, messages

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.append(os.path.join(HERE, "lib"))
import acme_lib  # noqa: E402
import anvil_env  # noqa: E402
import test_wfe_http as h  # noqa: E402  (module import: its tests are not collected here)
import rel_acme  # noqa: E402

PORT_BASE = 21500
PORT_B = 21537
PORT_MGMT = 21532


@pytest.fixture(scope="module")
def env():
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="wfe",
                            config={"wfe.json:orders_per_page": 2,
                                    "wfe.json:management": {"addr": "127.0.0.1", "port": PORT_MGMT},
                                    "ra.json:test.slow_finalize": "1s"}) as e:
        yield e


@pytest.fixture(scope="module")
def raw(env):
    return h.Wfe(env.directory_url, verify=env.trust_path)


def acme_account(env, email="a@wfe.test"):
    key = jose.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return acme_lib.account(env, key, "anvil-wfe-test", email)


def new_raw_account(raw):
    k = h.Key()
    r = raw.post(raw.dir["newAccount"], {"termsOfServiceAgreed": True}, k)
    assert r.status_code == 201, r.text
    return k, r.headers["Location"]


def issue(env, c, key, names):
    """dns-01 through challtestsrv; returns (order resource, cert key)."""
    cert_key = ec.generate_private_key(ec.SECP256R1())
    pem = cert_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    csr = crypto_util.make_csr(pem, names)
    orderr = c.new_order(csr)
    for authzr in orderr.authorizations:
        if authzr.body.status == messages.STATUS_VALID:
            continue
        chall = [cb for cb in authzr.body.challenges if isinstance(cb.chall, challenges.DNS01)][0]
        name = authzr.body.identifier.value
        env.challtest("set-txt", {"host": "_acme-challenge.%s." % name,
                                  "value": chall.chall.validation(key)})
        c.answer_challenge(chall, chall.response(key))
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=60)
    orderr = c.poll_authorizations(orderr, deadline)
    orderr = c.finalize_order(orderr, deadline, fetch_alternative_chains=True)
    return orderr, cert_key


def pem_certs(fullchain):
    end = "-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate((blk + end).encode())
            for blk in fullchain.split(end) if "BEGIN CERTIFICATE" in blk]


@pytest.fixture(scope="module")
def issued(env):
    """One account A with one certificate, shared by several tests."""
    c, key, regr = acme_account(env)
    orderr, cert_key = issue(env, c, key, ["one.wfe.test", "two.wfe.test"])
    return {"client": c, "key": key, "regr": regr, "order": orderr, "cert_key": cert_key}


# ------------------------------------------------------------ success paths

def test_directory_meta(raw):
    d = raw.dir
    assert d["meta"]["termsOfService"]
    assert isinstance(d["meta"].get("profiles"), dict) and d["meta"]["profiles"]
    r = raw.s.get(raw.directory_url)
    assert "Replay-Nonce" not in r.headers


def test_issuance_with_python_acme(issued):
    orderr = issued["order"]
    assert orderr.body.status == messages.STATUS_VALID
    certs = pem_certs(orderr.fullchain_pem)
    assert len(certs) >= 2
    sans = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["one.wfe.test", "two.wfe.test"]
    # alternate chains are offered and downloadable
    alts = orderr.alternative_fullchains_pem
    assert alts, "the dev CA has alternate chains (cross-signed root)"
    for alt in alts:
        assert pem_certs(alt)[0] == certs[0]
        assert alt != orderr.fullchain_pem


def test_account_existing_key_and_only_return_existing(env, raw):
    k, url = new_raw_account(raw)
    r = raw.post(raw.dir["newAccount"], {"termsOfServiceAgreed": True}, k)
    assert r.status_code == 200 and r.headers["Location"] == url
    r = raw.post(raw.dir["newAccount"], {"onlyReturnExisting": True}, k)
    assert r.status_code == 200 and r.headers["Location"] == url
    r = raw.post(raw.dir["newAccount"], {"onlyReturnExisting": True}, h.Key())
    h.problem(r, 400, "accountDoesNotExist")


def test_account_read_update_deactivate(raw):
    k, url = new_raw_account(raw)
    r = raw.post(url, None, k, kid=url)
    assert r.status_code == 200 and r.json()["status"] == "valid"
    assert r.json()["orders"] == url + "/orders"
    r = raw.post(url, {"contact": ["mailto:new@wfe.test"]}, k, kid=url)
    assert r.status_code == 200 and r.json()["contact"] == ["mailto:new@wfe.test"]
    h.problem(raw.post(url, {"status": "revoked"}, k, kid=url), 400, "malformed")
    r = raw.post(url, {"status": "deactivated"}, k, kid=url)
    assert r.status_code == 200 and r.json()["status"] == "deactivated"
    # a deactivated account can no longer act: 401 (RFC 8555 §7.3.6)
    h.problem(raw.post(raw.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "x.wfe.test"}]},
                       k, kid=url), 401, "unauthorized")


def test_unknown_kid(raw):
    k = h.Key()
    kid = raw.base + "/acme/acct/999999"
    h.problem(raw.post(raw.dir["newOrder"], {"identifiers": []}, k, kid=kid), 400, "accountDoesNotExist")


def test_order_authz_challenge_resources(raw):
    k, kid = new_raw_account(raw)
    r = raw.post(raw.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "res.wfe.test"}]}, k, kid=kid)
    assert r.status_code == 201, r.text
    order_url = r.headers["Location"]
    order = r.json()
    assert order["status"] == "pending"
    assert order["finalize"].startswith(raw.base + "/acme/finalize/")
    r = raw.post(order_url, None, k, kid=kid)
    assert r.status_code == 200 and r.json()["identifiers"] == order["identifiers"]
    h.problem(raw.post(order_url, {}, k, kid=kid), 400, "malformed")  # not POST-as-GET
    h.problem(raw.s.get(order_url), 405, "malformed")
    authz_url = order["authorizations"][0]
    r = raw.post(authz_url, None, k, kid=kid)
    assert r.status_code == 200
    authz = r.json()
    assert authz["identifier"] == {"type": "dns", "value": "res.wfe.test"}
    ch = authz["challenges"][0]
    r = raw.post(ch["url"], None, k, kid=kid)
    assert r.status_code == 200 and r.json()["token"] == ch["token"]
    assert 'rel="up"' in r.headers["Link"] and authz_url in r.headers["Link"]
    # finalize before ready
    h.problem(raw.post(order["finalize"], {"csr": "AAAA"}, k, kid=kid), 403, "orderNotReady")
    # deactivate the authz; the order becomes invalid
    r = raw.post(authz_url, {"status": "deactivated"}, k, kid=kid)
    assert r.status_code == 200 and r.json()["status"] == "deactivated"
    assert raw.post(order_url, None, k, kid=kid).json()["status"] == "invalid"


def test_new_authz(raw):
    k, kid = new_raw_account(raw)
    r = raw.post(raw.dir["newAuthz"], {"identifier": {"type": "dns", "value": "pre.wfe.test"}}, k, kid=kid)
    assert r.status_code == 201, r.text
    assert r.headers["Location"].startswith(raw.base + "/acme/authz/")
    assert r.json()["status"] == "pending"
    h.problem(raw.post(raw.dir["newAuthz"], {"identifier": "pre.wfe.test"}, k, kid=kid), 400, "malformed")


def test_bad_new_order_payloads(raw):
    k, kid = new_raw_account(raw)
    for payload in ({}, {"identifiers": []}, {"identifiers": "a.test"},
                    {"identifiers": [{"type": "dns"}]}, {"identifiers": [{"type": "dns", "value": "a.wfe.test"}],
                                                         "profile": 5}):
        h.problem(raw.post(raw.dir["newOrder"], payload, k, kid=kid), 400, "malformed")
    h.problem(raw.post(raw.dir["newOrder"], None, k, kid=kid), 400, "malformed")
    h.problem(raw.post(raw.dir["newOrder"], "not json", k, kid=kid), 400, "malformed")


def test_certificate_download(issued, raw):
    url = issued["order"].body.certificate
    k, kid = h.Key(priv=issued["key"].key), issued["regr"].uri
    r = raw.post(url, None, k, kid=kid)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/pem-certificate-chain"
    assert pem_certs(r.text)[0] == pem_certs(issued["order"].fullchain_pem)[0]
    alts = [l for l in r.headers.get("Link", "").split(",") if 'rel="alternate"' in l]
    assert alts
    for l in alts:
        u = l.strip().split(">")[0].lstrip("<")
        assert raw.post(u, None, k, kid=kid).status_code == 200
    h.problem(raw.post(url + "/99", None, k, kid=kid), 404, "malformed")
    # RFC 8555 §6.3: a plain GET on anything but the directory and newNonce
    # "MUST return an error with status code 405 (Method Not Allowed) and
    # type "malformed"" (certificate_get is off in every shipped config).
    h.problem(raw.s.get(url), 405, "malformed")


def test_issuer_ocsp_crl_ari(env, issued, raw):
    certs = pem_certs(issued["order"].fullchain_pem)
    leaf, issuer = certs[0], certs[1]
    issuer_der = issuer.public_bytes(serialization.Encoding.DER)
    iid = hashlib.sha256(issuer_der).digest()[:8].hex()
    r = raw.s.get("%s/issuer/%s.der" % (raw.base, iid))
    assert r.status_code == 200 and r.content == issuer_der
    assert r.headers["Content-Type"] == "application/pkix-cert"
    # OCSP, POST and GET forms
    req = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    der = req.public_bytes(serialization.Encoding.DER)
    r = raw.s.post(raw.base + "/ocsp", data=der, headers={"Content-Type": "application/ocsp-request"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/ocsp-response"
    resp = ocsp.load_der_ocsp_response(r.content)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.serial_number == leaf.serial_number
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    import base64
    r = raw.s.get(raw.base + "/ocsp/" + base64.b64encode(der).decode())
    assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    # CRL: have the CA generate shard 0, then download it
    env.rpc("ca").call("ca.generate_crl", {"issuer_id": iid, "shard": 0})
    r = raw.s.get("%s/crl/%s/0.crl" % (raw.base, iid))
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pkix-crl"
    x509.load_der_x509_crl(r.content)
    # ARI
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    sn = leaf.serial_number
    cert_id = "%s.%s" % (h.b64(aki), h.b64(sn.to_bytes((sn.bit_length() + 8) // 8, "big")))
    r = raw.s.get(raw.dir["renewalInfo"] + "/" + cert_id)
    assert r.status_code == 200, r.text
    win = r.json()["suggestedWindow"]
    assert win["start"] < win["end"]
    assert int(r.headers["Retry-After"]) > 0


def test_account_isolation(issued, raw):
    """Account B can neither read nor change anything of account A's."""
    orderr = issued["order"]
    a_acct = issued["regr"].uri
    bk, bkid = new_raw_account(raw)
    order_url = orderr.uri
    authz_url = orderr.body.authorizations[0]
    chall_url = orderr.authorizations[0].body.challenges[0].uri
    cert_url = orderr.body.certificate
    for url in (order_url, authz_url, chall_url, cert_url):
        body = h.problem(raw.post(url, None, bk, kid=bkid), 404, "malformed")
        assert "another" not in body["detail"]
    h.problem(raw.post(authz_url, {"status": "deactivated"}, bk, kid=bkid), 404, "malformed")
    h.problem(raw.post(chall_url, {}, bk, kid=bkid), 404, "malformed")
    h.problem(raw.post(orderr.body.finalize, {"csr": "AAAA"}, bk, kid=bkid), 404, "malformed")
    h.problem(raw.post(a_acct, None, bk, kid=bkid), 403, "unauthorized")
    h.problem(raw.post(a_acct, {"status": "deactivated"}, bk, kid=bkid), 403, "unauthorized")
    h.problem(raw.post(a_acct + "/orders", None, bk, kid=bkid), 403, "unauthorized")
    leaf = pem_certs(orderr.fullchain_pem)[0]
    der = h.b64(leaf.public_bytes(serialization.Encoding.DER))
    r = raw.post(raw.dir["revokeCert"], {"certificate": der}, bk, kid=bkid)
    assert r.status_code == 403, r.text
    # A still sees its order valid
    r = issued["client"]._post_as_get(order_url)
    assert r.json()["status"] == "valid"


def test_orders_pagination(raw):
    k, kid = new_raw_account(raw)
    urls = []
    for i in range(5):
        r = raw.post(raw.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "p%d.wfe.test" % i}]},
                     k, kid=kid)
        assert r.status_code == 201, r.text
        urls.append(r.headers["Location"])
    seen, pages = [], 0
    url = kid + "/orders"
    while url:
        r = raw.post(url, None, k, kid=kid)
        assert r.status_code == 200, r.text
        got = r.json()["orders"]
        assert len(got) <= 2
        seen += got
        pages += 1
        nxt = [l for l in r.headers.get("Link", "").split(",") if 'rel="next"' in l]
        url = nxt[0].strip().split(">")[0].lstrip("<") if nxt else None
        assert pages < 10
    assert sorted(seen) == sorted(urls)
    assert pages == 3


def test_key_change(raw):
    old, kid = new_raw_account(raw)
    new = h.Key("rsa")
    url = raw.dir["keyChange"]
    inner = new.jws(url, {"account": kid, "oldKey": old.jwk})
    r = raw.post(url, inner, old, kid=kid)
    assert r.status_code == 200, r.text
    # the old key is refused, the new one works, and newAccount finds it
    r = raw.post(kid, None, old, kid=kid)
    assert r.status_code in (400, 403) and r.headers["Content-Type"] == "application/problem+json"
    assert raw.post(kid, None, new, kid=kid).status_code == 200
    r = raw.post(raw.dir["newAccount"], {"onlyReturnExisting": True}, new)
    assert r.status_code == 200 and r.headers["Location"] == kid
    # a key that belongs to another account: 409
    k3, kid3 = new_raw_account(raw)
    inner = k3.jws(url, {"account": kid, "oldKey": new.jwk})
    r = raw.post(url, inner, new, kid=kid)
    assert r.status_code == 409, r.text
    assert raw.post(kid, None, new, kid=kid).status_code == 200  # unchanged
    # a wrong inner payload is refused
    other = h.Key()
    bad = other.jws(url, {"account": kid, "oldKey": old.jwk})
    r = raw.post(url, bad, new, kid=kid)
    assert r.status_code >= 400 and r.status_code < 500


def test_nonce_reuse_on_real_endpoint(raw):
    k, kid = new_raw_account(raw)
    n = raw.nonce()
    body = k.jws(kid, None, nonce=n, kid=kid)
    assert raw.post_raw(kid, body).status_code == 200
    h.problem(raw.post_raw(kid, body), 400, "badNonce")


def test_revoke_by_account_and_by_cert_key(env, raw):
    c, key, regr = acme_account(env, "rev@wfe.test")
    orderr, cert_key = issue(env, c, key, ["rev1.wfe.test"])
    cert = pem_certs(orderr.fullchain_pem)[0]
    der = h.b64(cert.public_bytes(serialization.Encoding.DER))
    # signed with the certificate's key (jwk form)
    ck = h.Key(priv=cert_key)
    wrong = h.Key()
    h.problem(raw.post(raw.dir["revokeCert"], {"certificate": der}, wrong), 403, "unauthorized")
    h.problem(raw.post(raw.dir["revokeCert"], {"certificate": "AAAA"}, ck), 400, "malformed")
    h.problem(raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": "keyCompromise"}, ck),
              400, "badRevocationReason")
    h.problem(raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": 7}, ck),
              400, "badRevocationReason")
    r = raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": 1}, ck)
    assert r.status_code == 200, r.text
    h.problem(raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": 1}, ck), 400, "alreadyRevoked")
    # by account with python-acme
    orderr2, _ = issue(env, c, key, ["rev2.wfe.test"])
    leaf2 = jose.ComparableX509(OpenSSL.crypto.load_certificate(
        OpenSSL.crypto.FILETYPE_PEM, orderr2.fullchain_pem.encode()))
    c.revoke(leaf2, 0)
    with pytest.raises(errors.Error):
        c.revoke(leaf2, 0)


def _start_second_wfe(env):
    with open(os.path.join(env.cfg_dir, "wfe.json")) as f:
        cfg = json.load(f)
    base_a = cfg["base_url"]
    cfg["listen"]["port"] = PORT_B
    cfg["debug"] = {"addr": "127.0.0.1", "port": 0}
    cfg["nonce"]["prefix"] = "b2"
    cfg.pop("management", None)
    cfg.pop("pki", None)  # the first instance serves OCSP/CRLs
    cfg["hosts"] = ["localhost:%d" % PORT_B]  # same base_url: one CA name, two instances
    p = env.spawn("anvil-wfe", "wfe-b", cfg)
    h.wait_port(PORT_B, p)
    return p, base_a


def test_two_wfe_instances(env, raw):
    p, base_a = _start_second_wfe(env)
    try:
        b = h.Wfe("https://localhost:%d/directory" % PORT_B, verify=env.trust_path)
        k, kid = new_raw_account(raw)  # on instance A
        assert kid.startswith(base_a)
        # order created through B, with B's nonce and A's account URL as kid
        r = b.post(b.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "lb.wfe.test"}]}, k, kid=kid)
        assert r.status_code == 201, r.text
        assert r.headers["Replay-Nonce"].startswith("b2")
        order_b = r.headers["Location"]
        assert order_b.startswith("https://localhost:%d/" % PORT_B)
        # read through A
        order_a = order_b.replace("localhost:%d" % PORT_B, base_a.split("//")[1])
        r = raw.post(order_a, None, k, kid=kid)
        assert r.status_code == 200 and r.json()["identifiers"][0]["value"] == "lb.wfe.test"
        # A's nonce at B: badNonce with a B nonce, and the retry succeeds
        r = b.post(order_b, None, k, kid=kid, nonce=raw.nonce())
        h.problem(r, 400, "badNonce")
        r = b.post(order_b, None, k, kid=kid, nonce=r.headers["Replay-Nonce"])
        assert r.status_code == 200
        # alternate many requests between the two, each with its own nonces
        for i in range(10):
            w = raw if i % 2 else b
            u = order_a if i % 2 else order_b
            assert w.post(u, None, k, kid=kid).status_code == 200
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_metrics(env):
    status, text = env.debug_get("wfe")
    assert status == 200
    assert "anvil_wfe_requests_total" in text
    assert 'anvil_wfe_nonces_total{result="redeemed"}' in text
    assert "anvil_wfe_jws_rejections_total" in text
    assert "anvil_wfe_request_duration_seconds_bucket" in text


def _eab(kid, hmac_key, jwk, url, alg="HS256"):
    import hmac as _hmac
    prot = h.b64(json.dumps({"alg": alg, "kid": kid, "url": url}))
    payload = h.b64(json.dumps(jwk))
    mac = _hmac.new(hmac_key, ("%s.%s" % (prot, payload)).encode(), hashlib.sha256).digest()
    return {"protected": prot, "payload": payload, "signature": h.b64(mac)}


def test_new_account_with_eab(env, raw):
    hmac_key = os.urandom(32)
    env.rpc("sa").call("sa.new_eab_key", {"kid": "wfe-eab-1", "hmac_key": h.b64(hmac_key),
                                          "comment": "test_wfe_acme"})
    url = raw.dir["newAccount"]
    k = h.Key()
    # wrong MAC key
    bad = _eab("wfe-eab-1", os.urandom(32), k.jwk, url)
    r = raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": bad}, k)
    h.problem(r, 403, "unauthorized")
    h.problem(raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": "x"}, k),
              400, "malformed")
    good = _eab("wfe-eab-1", hmac_key, k.jwk, url)
    r = raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": good}, k)
    assert r.status_code == 201, r.text
    # the EAB key is now bound: another account key cannot reuse it
    k2 = h.Key()
    again = _eab("wfe-eab-1", hmac_key, k2.jwk, url)
    r = raw.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": again}, k2)
    assert r.status_code in (400, 403), r.text


def test_rejected_identifiers_have_subproblems(raw):
    k, kid = new_raw_account(raw)
    r = raw.post(raw.dir["newOrder"], {"identifiers": [
        {"type": "dns", "value": "fine.wfe.test"},
        {"type": "dns", "value": "outside.example.com"},
        {"type": "dns", "value": "bad_name!.wfe.test"}]}, k, kid=kid)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["type"] in ("urn:ietf:params:acme:error:rejectedIdentifier",
                            "urn:ietf:params:acme:error:malformed",
                            "urn:ietf:params:acme:error:compound")
    subs = body.get("subproblems", [])
    assert len(subs) == 2, body
    for s in subs:
        assert s["type"].startswith("urn:ietf:params:acme:error:")
        assert s["identifier"]["value"] in ("outside.example.com", "bad_name!.wfe.test")


def test_processing_order_has_retry_after(env, raw):
    """Finalize answers while the order is processing (RA test knob
    slow_finalize): Retry-After on the order until it is valid."""
    c, key, regr = acme_account(env, "slow@wfe.test")
    cert_key = ec.generate_private_key(ec.SECP256R1())
    pem = cert_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    csr_pem = crypto_util.make_csr(pem, ["slow.wfe.test"])
    orderr = c.new_order(csr_pem)
    for authzr in orderr.authorizations:
        chall = [cb for cb in authzr.body.challenges if isinstance(cb.chall, challenges.DNS01)][0]
        env.challtest("set-txt", {"host": "_acme-challenge.slow.wfe.test.",
                                  "value": chall.chall.validation(key)})
        # raw client with the same account key: python-acme sends {} as an
        # empty (POST-as-GET) payload
        r = raw.post(chall.uri, {}, h.Key(priv=key.key), kid=regr.uri)
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("processing", "valid")
        if r.json()["status"] == "processing":
            assert int(r.headers["Retry-After"]) >= 1
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=60)
    orderr = c.poll_authorizations(orderr, deadline)
    assert c._post_as_get(orderr.uri).json()["status"] == "ready"
    csr_der = x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    r = c._post(orderr.body.finalize, messages.CertificateRequest(csr=jose.ComparableX509(
        OpenSSL.crypto.load_certificate_request(OpenSSL.crypto.FILETYPE_ASN1, csr_der))))
    assert r.status_code == 200, r.text
    assert r.headers["Location"] == orderr.uri
    assert r.json()["status"] == "processing"
    assert int(r.headers["Retry-After"]) >= 1
    for _ in range(100):
        r = c._post_as_get(orderr.uri)
        if r.json()["status"] != "processing":
            break
        assert "Retry-After" in r.headers
        time.sleep(0.2)
    assert r.json()["status"] == "valid"
    assert "Retry-After" not in r.headers


def test_management_api(env, issued):
    """Pebble-style read-only management listener (test mode)."""
    base = "http://127.0.0.1:%d" % PORT_MGMT
    s = requests.Session()
    s.trust_env = False
    r = s.get(base + "/roots/0")
    assert r.status_code == 200
    root = x509.load_pem_x509_certificate(r.content)
    assert root.subject == root.issuer
    r = s.get(base + "/intermediates/0")
    assert r.status_code == 200
    inter = x509.load_pem_x509_certificate(r.content)
    assert inter.subject != inter.issuer
    assert s.get(base + "/intermediate-keys/0").status_code == 404
    assert s.get(base + "/roots/99").status_code == 404
    leaf = pem_certs(issued["order"].fullchain_pem)[0]
    serial = "%036x" % leaf.serial_number
    r = s.get(base + "/cert-status-by-serial/" + serial)
    assert r.status_code == 200, (r.status_code, r.headers, r.text)
    body = r.json()
    assert body["Status"] in ("Valid", "Revoked") and body["Serial"] == serial
    assert x509.load_pem_x509_certificate(body["Certificate"].encode()) == leaf
    assert s.get(base + "/cert-status-by-serial/zz").status_code == 404
    assert s.post(base + "/roots/0").status_code == 405
    assert "Replay-Nonce" not in r.headers


# ------------------------------------------------- CAA accounturi (RFC 8657)

def _dns01_validate(env, raw, key, kid, authz_url):
    """Answers the dns-01 challenge of authz_url through challtestsrv and
    waits for the authorization to leave pending; returns it."""
    az = raw.post(authz_url, None, key, kid=kid).json()
    ch = [c for c in az["challenges"] if c["type"] == "dns-01"][0]
    ka = ("%s.%s" % (ch["token"], key.thumbprint())).encode()
    env.challtest("set-txt", {"host": "_acme-challenge.%s." % az["identifier"]["value"],
                              "value": h.b64(hashlib.sha256(ka).digest())})
    r = raw.post(ch["url"], {}, key, kid=kid)
    assert r.status_code == 200, r.text
    return rel_acme.poll(raw, key, kid, authz_url, ("valid", "invalid"), timeout=60)


def _order_under_caa(env, raw, key, kid, name, issue):
    """Publishes CAA `issue <issue>` for name, orders it and validates its
    authorization over dns-01. Returns (order URL, final authorization)."""
    env.challtest("add-caa", {"host": name, "policies": [{"tag": "issue", "value": issue}]})
    url, order = rel_acme.new_order(raw, key, kid, [name])
    return url, _dns01_validate(env, raw, key, kid, order["authorizations"][0])


def test_caa_accounturi_is_the_url_the_client_used(env):
    """RFC 8657 §3: a CA "MUST only consider that property to authorize
    issuance ... if the CA recognises the URI specified in the value portion
    of that parameter as identifying the account making that request"; §4:
    an ACME account "MAY be identified by setting the "accounturi" parameter
    to the URI of the ACME account object" and ACME CAs "MUST recognise such
    URIs". A client that talks to the WFE as 127.0.0.1 (an accepted host
    name, not base_url's localhost) got its account URL with that host: the
    CAA check must use that URL, at validation and at finalize."""
    port = env.ports["wfe"]
    raw = h.Wfe("https://127.0.0.1:%d/directory" % port, verify=env.trust_path)
    key, kid = rel_acme.new_account(raw)
    assert kid.startswith("https://127.0.0.1:%d/acme/acct/" % port), kid

    caa_id = raw.dir["meta"]["caaIdentities"][0]
    name = "accounturi-ip.wfe.test"
    url, az = _order_under_caa(env, raw, key, kid, name, caa_id + "; accounturi=" + kid)
    assert az["status"] == "valid", az
    order = rel_acme.poll(raw, key, kid, url, ("ready",))
    rel_acme.finalize(raw, key, kid, url, order, [name])

    # The same account under base_url's host name is another URI: CAA
    # naming only that one does not authorize this client's request.
    other = kid.replace("https://127.0.0.1:", "https://localhost:", 1)
    name = "accounturi-other.wfe.test"
    url, az = _order_under_caa(env, raw, key, kid, name, caa_id + "; accounturi=" + other)
    assert az["status"] == "invalid", az
    ch = [c for c in az["challenges"] if c["type"] == "dns-01"][0]
    assert ch["error"]["type"] == "urn:ietf:params:acme:error:caa", ch
