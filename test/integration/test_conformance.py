"""RFC 8555 conformance points that once deviated (issue 20), end to end.

One Anvil from configs/dev (sa/ca/va/ra/wfe through the launcher, real
PostgreSQL, pebble-challtestsrv as DNS), driven by the raw JWS client of
test_wfe_http so each request is exactly what the RFC sentence describes.
Every test quotes the sentence it checks; docs/conformance.md names these
tests in its rows (test_conformance_table.py keeps the names honest).

Ports: AnvilEnv base 29000 (range 29000-29099).
"""
import base64
import hashlib
import os
import sys

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402
from rel_acme import b64, problem  # noqa: E402

PORT_BASE = 29000


@pytest.fixture(scope="module")
def env():
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="conform") as e:
        yield e


raw = a.raw_fixture()


acct = a.account_fixture()


def dns01_value(key, token):
    ka = "%s.%s" % (token, key.thumbprint())
    return b64(hashlib.sha256(ka.encode()).digest())


def validate_dns01(env, raw, key, kid, authz_url, response=None):
    """Answers the authz's dns-01 challenge through challtestsrv and waits
    for the authz to become valid; returns the authz JSON."""
    az = raw.post(authz_url, None, key, kid=kid).json()
    ch = [c for c in az["challenges"] if c["type"] == "dns-01"][0]
    env.challtest("set-txt", {"host": "_acme-challenge.%s." % az["identifier"]["value"],
                              "value": dns01_value(key, ch["token"])})
    r = raw.post(ch["url"], response if response is not None else {}, key, kid=kid)
    assert r.status_code == 200, r.text
    return a.poll(raw, key, kid, authz_url, ("valid", "invalid"))


def issue_dns01(env, raw, key, kid, names):
    """A certificate for names through dns-01 (challtestsrv)."""
    url, order = a.new_order(raw, key, kid, names)
    for az in order["authorizations"]:
        assert validate_dns01(env, raw, key, kid, az)["status"] == "valid"
    order = a.poll(raw, key, kid, url, ("ready",))
    done, pem, cert_key = a.finalize(raw, key, kid, url, order, names)
    return {"order_url": url, "order": done, "pem": pem,
            "leaf": x509.load_pem_x509_certificate(pem.encode())}


@pytest.fixture(scope="module")
def issued(env, raw, acct):
    """One certificate of acct, issued through dns-01."""
    key, kid = acct
    return issue_dns01(env, raw, key, kid, ["cert.conform.test"])


# ------------------------------------------------------------ §6.3 GET

def test_post_as_get_directory_and_new_nonce(raw, acct):
    """RFC 8555 §6.3: "The server MUST allow GET requests for the directory
    and newNonce resources (see Section 7.1), in addition to POST-as-GET
    requests for these resources." """
    key, kid = acct
    for url in (raw.directory_url, raw.base + "/dir"):
        r = raw.post(url, None, key, kid=kid)
        assert r.status_code == 200, r.text
        assert r.json()["newOrder"] == raw.dir["newOrder"]
        assert r.headers.get("Replay-Nonce")
    r = raw.post(raw.dir["newNonce"], None, key, kid=kid)
    assert r.status_code == 200 and r.headers.get("Replay-Nonce")
    # GET still works for both
    assert raw.s.get(raw.directory_url).status_code == 200
    assert raw.s.get(raw.dir["newNonce"]).status_code == 204
    # a POST with a payload is not a POST-as-GET
    problem(raw.post(raw.directory_url, {}, key, kid=kid), 400, "malformed")


def test_get_is_405_malformed_except_directory_and_nonce(raw, acct, issued):
    """RFC 8555 §6.3: "Except for the cases described in this section, if
    the server receives a GET request, it MUST return an error with status
    code 405 (Method Not Allowed) and type "malformed"." """
    key, kid = acct
    order = issued["order"]
    authz_url = order["authorizations"][0]
    az = raw.post(authz_url, None, key, kid=kid).json()
    urls = [order["certificate"], order["certificate"] + "/1", issued["order_url"],
            order["finalize"], authz_url, az["challenges"][0]["url"], kid, kid + "/orders",
            raw.dir["newAccount"], raw.dir["newOrder"], raw.dir["newAuthz"],
            raw.dir["revokeCert"], raw.dir["keyChange"]]
    for u in urls:
        r = raw.s.get(u)
        problem(r, 405, "malformed")
        assert "BEGIN CERTIFICATE" not in r.text
    # the certificate itself is still there for POST-as-GET
    r = raw.post(order["certificate"], None, key, kid=kid)
    assert r.status_code == 200 and "BEGIN CERTIFICATE" in r.text


# ------------------------------------------------------ §6.7 identifiers

def test_unsupported_identifier_type(raw, acct):
    """RFC 8555 §6.7: unsupportedIdentifier = "An identifier is of an
    unsupported type"; §7.4: "If the server is unwilling to issue for the
    identifier, it should return ... rejectedIdentifier" is for a supported
    type only. ("uri" is registered nowhere in ACME; "email" is RFC 8823's.)"""
    key, kid = acct
    r = raw.post(raw.dir["newOrder"],
                 {"identifiers": [{"type": "uri", "value": "https://conform.test/"}]}, key, kid=kid)
    body = problem(r, 400, "unsupportedIdentifier")
    assert body["subproblems"][0]["type"].endswith(":unsupportedIdentifier")
    assert body["subproblems"][0]["identifier"] == {"type": "uri", "value": "https://conform.test/"}
    r = raw.post(raw.dir["newAuthz"],
                 {"identifier": {"type": "uri", "value": "https://conform.test/"}}, key, kid=kid)
    problem(r, 400, "unsupportedIdentifier")
    # an unsupported type next to a refused name of a supported type:
    # the top level is rejectedIdentifier, each subproblem keeps its own type
    r = raw.post(raw.dir["newOrder"],
                 {"identifiers": [{"type": "uri", "value": "https://conform.test/"},
                                  {"type": "dns", "value": "bad..name.test"}]}, key, kid=kid)
    body = problem(r, 400, "rejectedIdentifier")
    types = sorted(s["type"].rsplit(":", 1)[1] for s in body["subproblems"])
    assert types == ["rejectedIdentifier", "unsupportedIdentifier"]


# ---------------------------------------------------- §7.3.6 deactivation

def test_deactivated_account_is_401_unauthorized(env, raw):
    """RFC 8555 §7.3.6: "If a server receives a POST or POST-as-GET from a
    deactivated account, it MUST return an error response with status code
    401 (Unauthorized) and type
    "urn:ietf:params:acme:error:unauthorized"." """
    key, kid = a.new_account(raw)
    cert = issue_dns01(env, raw, key, kid, ["deactcert.conform.test"])
    url, order = a.new_order(raw, key, kid, ["deact.conform.test"])
    r = raw.post(kid, {"status": "deactivated"}, key, kid=kid)
    assert r.status_code == 200 and r.json()["status"] == "deactivated"
    problem(raw.post(raw.dir["newOrder"],
                     {"identifiers": [{"type": "dns", "value": "x.conform.test"}]}, key, kid=kid),
            401, "unauthorized")
    problem(raw.post(kid, None, key, kid=kid), 401, "unauthorized")
    problem(raw.post(url, None, key, kid=kid), 401, "unauthorized")
    problem(raw.post(order["authorizations"][0], None, key, kid=kid), 401, "unauthorized")
    # newAccount with the deactivated account's key (a jwk POST) too
    problem(raw.post(raw.dir["newAccount"], {"onlyReturnExisting": True}, key), 401, "unauthorized")
    problem(raw.post(raw.dir["newAccount"], {"termsOfServiceAgreed": True}, key), 401, "unauthorized")
    # §7.3.6: "Servers SHOULD NOT revoke certificates issued by the
    # deactivated account"
    assert a.sa_cert(env, cert["leaf"])["status"] == "good"


# --------------------------------------------- §7.1.4 authz challenges

def test_valid_authz_lists_only_the_validated_challenge(env, raw, acct):
    """RFC 8555 §7.1.4 challenges: "For valid authorizations, the challenge
    that was validated." """
    key, kid = acct
    url, order = a.new_order(raw, key, kid, ["valid.conform.test"])
    az_url = order["authorizations"][0]
    before = raw.post(az_url, None, key, kid=kid).json()
    assert len(before["challenges"]) > 1, "a pending authz offers several challenges"
    # §7.5.1: "The server MUST ignore any fields in the response object
    # that are not specified as response fields for this type of challenge."
    az = validate_dns01(env, raw, key, kid, az_url, response={"unknown": "ignored", "keyAuthorization": 5})
    assert az["status"] == "valid"
    assert [c["type"] for c in az["challenges"]] == ["dns-01"]
    assert az["challenges"][0]["status"] == "valid"
    # §7.5.1: "If the final state is "valid", then the server MUST include
    # an "expires" field."
    assert az["expires"]


def test_invalid_authz_lists_only_the_failed_challenge(raw, acct):
    """RFC 8555 §7.1.4 challenges: "For invalid authorizations, the
    challenge that was attempted and failed." (http-01 with nothing
    listening on the port.)"""
    key, kid = acct
    url, order = a.new_order(raw, key, kid, ["invalid.conform.test"])
    az_url = order["authorizations"][0]
    az = raw.post(az_url, None, key, kid=kid).json()
    ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
    assert raw.post(ch["url"], {}, key, kid=kid).status_code == 200
    az = a.poll(raw, key, kid, az_url, ("valid", "invalid"), timeout=60)
    assert az["status"] == "invalid"
    assert [c["type"] for c in az["challenges"]] == ["http-01"]
    # §8: "A challenge object with an error MUST have status equal to
    # "invalid"" and the error says why; §6.7.1: "The "identifier" field
    # MUST NOT be present at the top level in ACME problem documents."
    err = az["challenges"][0]["error"]
    assert az["challenges"][0]["status"] == "invalid"
    assert err["type"].endswith(":connection") and err["detail"]
    assert "identifier" not in err
    # §7.1.2.1: "The server SHOULD include pending orders and SHOULD NOT
    # include orders that are invalid in the array of URLs."
    assert a.poll(raw, key, kid, url, ("invalid",))["status"] == "invalid"
    pending_url, _ = a.new_order(raw, key, kid, ["pending.conform.test"])
    r = raw.post(kid + "/orders", None, key, kid=kid)
    assert r.status_code == 200
    assert pending_url in r.json()["orders"] and url not in r.json()["orders"]


def test_deactivated_authz_is_not_sufficient(env, raw):
    """RFC 8555 §7.5.2: "The server MUST NOT treat deactivated
    authorization objects as sufficient for issuing certificates." """
    key, kid = a.new_account(raw)
    r = raw.post(raw.dir["newAuthz"], {"identifier": {"type": "dns", "value": "deauthz.conform.test"}},
                 key, kid=kid)
    assert r.status_code == 201, r.text
    az_url = r.headers["Location"]
    assert validate_dns01(env, raw, key, kid, az_url)["status"] == "valid"
    r = raw.post(az_url, {"status": "deactivated"}, key, kid=kid)
    assert r.status_code == 200 and r.json()["status"] == "deactivated"
    url, order = a.new_order(raw, key, kid, ["deauthz.conform.test"])
    assert order["status"] == "pending"
    assert order["authorizations"] != [az_url]


# ------------------------------------------ RFC 5280 §8: plain-HTTP PKI URLs

def _http_get(url, **kw):
    s = requests.Session()
    s.trust_env = False
    return s.get(url, timeout=30, **kw), s


def test_certificate_urls_are_plain_http_and_served(env, issued):
    """RFC 5280 §8: "CAs SHOULD NOT include URIs that specify https, ldaps,
    or similar schemes in extensions." The AIA OCSP and caIssuers URLs and
    the CRL distribution point are http:// on the pki listener, and each
    answers over plain HTTP with signed data (RFC 6960 Appendix A.1 GET
    and POST for OCSP)."""
    leaf = issued["leaf"]
    pki = "http://localhost:%d" % env.ports["pki"]
    aia = leaf.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    ocsp_url = [d.access_location.value for d in aia
                if d.access_method == AuthorityInformationAccessOID.OCSP][0]
    issuer_url = [d.access_location.value for d in aia
                  if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS][0]
    cdp = leaf.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    crl_url = cdp[0].full_name[0].value
    for u in (ocsp_url, issuer_url, crl_url):
        assert u.startswith(pki + "/"), u
    # caIssuers: the DER issuer that signed the leaf
    r, s = _http_get(issuer_url)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pkix-cert"
    issuer = x509.load_der_x509_certificate(r.content)
    assert leaf.issuer == issuer.subject
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
    assert "Replay-Nonce" not in r.headers
    # OCSP, POST and GET
    req = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    der = req.public_bytes(serialization.Encoding.DER)
    r = s.post(ocsp_url, data=der, headers={"Content-Type": "application/ocsp-request"}, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/ocsp-response"
    resp = ocsp.load_der_ocsp_response(r.content)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.serial_number == leaf.serial_number
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    r = s.get(ocsp_url + "/" + base64.b64encode(der).decode(), timeout=30)
    assert ocsp.load_der_ocsp_response(r.content).serial_number == leaf.serial_number
    # CRL of the leaf's shard, signed by the issuer
    iid = issuer_url.rsplit("/", 1)[1].split(".")[0]
    shard = int(crl_url.rsplit("/", 1)[1].split(".")[0])
    env.rpc("ca").call("ca.generate_crl", {"issuer_id": iid, "shard": shard})
    r = s.get(crl_url, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pkix-crl"
    assert x509.load_der_x509_crl(r.content).is_signature_valid(issuer.public_key())


def test_pki_listener_serves_nothing_else(env, raw):
    """The plain-HTTP listener carries signed PKI data only: no ACME
    resource is reachable without TLS."""
    pki = "http://localhost:%d" % env.ports["pki"]
    for path in ("/directory", "/dir", "/acme/new-nonce", "/acme/new-order"):
        r, _ = _http_get(pki + path)
        assert r.status_code == 404, (path, r.status_code)
        assert "Replay-Nonce" not in r.headers
    r, s = _http_get(pki + "/ocsp")
    assert r.status_code == 405 and "POST" in r.headers["Allow"]
    # the https option: the ACME listener still serves the same paths
    r = raw.s.get(raw.base + "/issuer/" + "0" * 16 + ".der")
    assert r.status_code == 404


# ------------------------------------------------------ smaller MUSTs

def test_cors_allow_origin(raw):
    """RFC 8555 §6.1: "Such servers SHOULD set the Access-Control-Allow-Origin
    header field to the value "*"." """
    assert raw.s.get(raw.directory_url).headers["Access-Control-Allow-Origin"] == "*"
    assert raw.s.head(raw.dir["newNonce"]).headers["Access-Control-Allow-Origin"] == "*"


def test_problem_identifier_only_in_subproblems(raw, acct):
    """RFC 8555 §6.7.1: "If present, the "identifier" field MUST contain an
    ACME identifier" and "MUST NOT be present at the top level in ACME
    problem documents." """
    key, kid = acct
    r = raw.post(raw.dir["newOrder"],
                 {"identifiers": [{"type": "dns", "value": "bad..one.test"}]}, key, kid=kid)
    body = problem(r, 400, "rejectedIdentifier")
    assert "identifier" not in body
    assert body["subproblems"][0]["identifier"] == {"type": "dns", "value": "bad..one.test"}


def test_new_account_ignores_client_orders_and_unknown_fields(raw):
    """RFC 8555 §7.3: "The server MUST ignore any values provided in the
    "orders" fields in account objects sent by the client, as well as any
    other fields that it does not recognize." and "The server MUST NOT
    reflect the "onlyReturnExisting" field or any unrecognized fields in
    the resulting account object." """
    key = a.Key()
    r = raw.post(raw.dir["newAccount"],
                 {"termsOfServiceAgreed": True, "onlyReturnExisting": False,
                  "orders": "https://evil.test/orders", "favouriteColour": "red"}, key)
    assert r.status_code == 201, r.text
    acct = r.json()
    assert acct["orders"] == r.headers["Location"] + "/orders"
    assert "onlyReturnExisting" not in acct and "favouriteColour" not in acct
    # §7.3.1: an existing key gets 200 and the account "as it existed on the
    # server before this request; any fields in the request object MUST be
    # ignored."
    r2 = raw.post(raw.dir["newAccount"], {"termsOfServiceAgreed": True,
                                          "contact": ["mailto:new@conform.test"]}, key)
    assert r2.status_code == 200 and r2.headers["Location"] == r.headers["Location"]
    assert r2.json()["contact"] == acct["contact"]


def test_challenge_tokens_have_128_bits_of_base64url(raw, acct):
    """RFC 8555 §8.3/§8.4 and RFC 8737 §3: the token "MUST have at least
    128 bits of entropy. It MUST NOT contain any characters outside the
    base64url alphabet and MUST NOT include base64 padding characters
    ("=")." (distinct tokens across challenges stand in for entropy)"""
    import re
    key, kid = acct
    url, order = a.new_order(raw, key, kid, ["tok1.conform.test", "tok2.conform.test"])
    tokens = []
    for az_url in order["authorizations"]:
        for ch in raw.post(az_url, None, key, kid=kid).json()["challenges"]:
            if ch["type"] not in ("http-01", "dns-01", "tls-alpn-01"):
                continue  # types of other specs (dns-persist-01 has no token)
            t = ch["token"]
            assert re.fullmatch(r"[A-Za-z0-9_-]+", t), t
            assert len(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))) >= 16
            tokens.append(t)
    assert len(set(tokens)) == len(tokens)


def test_caa_identities_advertised_are_the_ones_honoured(env, raw, acct):
    """RFC 8555 §7.1.1: caaIdentities are "The hostnames that the ACME
    server recognizes as referring to itself for the purposes of CAA record
    validation". A CAA record naming an advertised identity authorizes
    issuance; one naming another CA does not (RFC 8659 §4)."""
    key, kid = acct
    ids = raw.dir["meta"]["caaIdentities"]
    assert ids
    for i, ident in enumerate(ids):
        name = "caa-own%d.conform.test" % i
        env.challtest("add-caa", {"host": name, "policies": [{"tag": "issue", "value": ident}]})
        try:
            url, order = a.new_order(raw, key, kid, [name])
            az = validate_dns01(env, raw, key, kid, order["authorizations"][0])
            assert az["status"] == "valid", az
            order = a.poll(raw, key, kid, url, ("ready",))
            a.finalize(raw, key, kid, url, order, [name])
        finally:
            env.challtest("clear-caa", {"host": name})
    name = "caa-other.conform.test"
    env.challtest("add-caa", {"host": name, "policies": [{"tag": "issue", "value": "other-ca.example"}]})
    try:
        url, order = a.new_order(raw, key, kid, [name])
        az = validate_dns01(env, raw, key, kid, order["authorizations"][0])
        assert az["status"] == "invalid", az
        ch = [c for c in az["challenges"] if c["type"] == "dns-01"][0]
        assert ch["error"]["type"] == "urn:ietf:params:acme:error:caa", ch
    finally:
        env.challtest("clear-caa", {"host": name})
