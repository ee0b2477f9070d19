"""RFC 9115 delegation with Anvil as the IdO's ACME server, end to end over
HTTPS with the suite's raw ACME client (lib/rel_acme.py).

The domain owner's account (IdO) validates its names, then creates a
delegation object naming the delegated operator's account (NDC): the CSR
template (RFC 9115 section 4) and the CNAME map. The NDC orders under the
delegation; the order is ready at once on the owner's authorizations, its
CSR is checked against the template at finalize, and the certificate is
issued (STAR or not). The owner cancels the delegation and the NDC's STAR
renewals stop at once. Last, the RA and the WFE are restarted with
delegation switched off: nothing of it is advertised then.

One Anvil (configs/dev, VA always-valid) with the STAR knobs short (min
lifetime 4 s, scheduler every 300 ms). Ports: AnvilEnv base 29800.
"""
import datetime
import json
import os
import signal
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import rel_acme as a  # noqa: E402

PORT_BASE = 29800
LIFETIME = 6


env = a.env_fixture(port_base=PORT_BASE, name="deleg", config={
    "va.json:test.always_valid": True,
    "ra.json:delegation.enabled": True,
    "ra.json:star.min_lifetime": "4s",
    "ra.json:star.poll_interval": "300ms",
    "ra.json:star.lease": "20s"})


raw = a.raw_fixture()
owner = a.account_fixture()
ndc = a.account_fixture()


@pytest.fixture(scope="module")
def names():
    """Names the owner holds valid authorizations for (RFC 9115 §2.1: the
    IdO is the identifier's owner), validated once for the module."""
    return {"abc": "abc.ido.example", "www": "www.ido.example",
            "free": "free.ido.example"}


@pytest.fixture(scope="module")
def owner_authzs(raw, owner, names):
    key, kid = owner
    a.ready_order(raw, key, kid, sorted(names.values()))
    return names


# RFC 9115 §4.2 (figure "Example CSR template"), with one EC key type.
def template(dns=("abc.ido.example",), eku=("serverAuth", "clientAuth")):
    return {
        "keyTypes": [
            {"PublicKeyType": "rsaEncryption", "PublicKeyLength": 2048,
             "SignatureType": "sha256WithRSAEncryption"},
            {"PublicKeyType": "id-ecPublicKey", "namedCurve": "secp256r1",
             "SignatureType": "ecdsa-with-SHA256"}],
        "subject": {"country": "CA", "stateOrProvince": "**", "locality": "**"},
        "extensions": {
            "subjectAltName": {"DNS": list(dns)},
            "keyUsage": ["digitalSignature"],
            "extendedKeyUsage": list(eku)}}


def acct_doc(raw, key, kid):
    r = raw.post(kid, None, key, kid=kid)
    assert r.status_code == 200, r.text
    return r.json()


def create(raw, owner, ndc_kid, tmpl, cname_map=None, expect=201):
    key, kid = owner
    payload = {"ndc": ndc_kid, "csr-template": tmpl}
    if cname_map is not None:
        payload["cname-map"] = cname_map
    r = raw.post(acct_doc(raw, key, kid)["delegations"], payload, key, kid=kid)
    assert r.status_code == expect, r.text
    return r


def delegation(raw, owner, ndc_kid, tmpl=None, cname_map=None):
    """A new delegation; returns its URL."""
    r = create(raw, owner, ndc_kid, tmpl or template(), cname_map)
    return r.headers["Location"]


def csr(names, key=None, subject=(("C", "CA"), ("ST", "Quebec"), ("L", "Montreal")),
        ku=True, eku=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
        extra=None, sig=None):
    """A CSR shaped by the template of template(): C=CA plus the "**"
    fields, keyUsage digitalSignature, the EKUs, the SAN names."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    oids = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
            "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
            "CN": NameOID.COMMON_NAME}
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(oids[k], v) for k, v in subject]))
    b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                        critical=False)
    if ku:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                          False, False), critical=True)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if extra is not None:
        b = b.add_extension(extra, critical=False)
    return b.sign(key, sig or hashes.SHA256()).public_bytes(serialization.Encoding.DER), key


def ndc_order(raw, ndc, deleg_url, names, **extra):
    key, kid = ndc
    payload = {"identifiers": [{"type": "dns", "value": n} for n in names],
               "delegation": deleg_url}
    payload.update(extra)
    return raw.post(raw.dir["newOrder"], payload, key, kid=kid)


def finalize(raw, ndc, order, der):
    key, kid = ndc
    return raw.post(order["finalize"], {"csr": a.b64(der)}, key, kid=kid)


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------ discovery

def test_directory_and_account_advertise_delegation(raw, owner):
    # RFC 9115 §2.3.4: "An ACME server that supports this delegation
    # profile MUST include this key, and MUST set it to true."
    meta = raw.s.get(raw.directory_url).json()["meta"]
    assert meta["delegation-enabled"] is True
    # §2.3.1.1: "delegations (required, string): A URL from which a list of
    # delegations configured for this account ... can be fetched via a
    # POST-as-GET request."
    key, kid = owner
    doc = acct_doc(raw, key, kid)
    assert doc["delegations"] == kid.replace("/acme/acct/", "/acme/delegations/")


# ------------------------------------------------------------ objects

def test_owner_creates_and_ndc_lists(raw, owner, ndc):
    cmap = {"abc.ido.example.": "abc.ndc.example."}
    r = create(raw, owner, ndc[1], template(), cmap)
    url = r.headers["Location"]
    d = r.json()
    # §2.3.1.3: "csr-template (required, object)" and "cname-map
    # (optional, object): a map of FQDN pairs"
    assert d["csr-template"] == template()
    assert d["cname-map"] == cmap
    assert d["status"] == "active" and d["ndc"] == ndc[1] and d["owner"] == owner[1]
    # §2.3.1.2: "The result of the request MUST be a JSON object whose
    # delegations field is an array of URLs, each identifying a delegation
    # configuration made available to the NDC account"
    key, kid = ndc
    lst = raw.post(acct_doc(raw, key, kid)["delegations"], None, key, kid=kid)
    assert lst.status_code == 200, lst.text
    assert url in lst.json()["delegations"]
    okey, okid = owner
    own = raw.post(acct_doc(raw, okey, okid)["delegations"], None, okey, kid=okid).json()
    assert url in own["owned-delegations"] and url not in own["delegations"]
    # the NDC reads it (POST-as-GET) ...
    got = raw.post(url, None, key, kid=kid)
    assert got.status_code == 200 and got.json()["csr-template"] == template()
    # ... but §2.3.1.3: "a new read-only delegation object"
    a.problem(raw.post(url, {"status": "canceled"}, key, kid=kid), 403, "unauthorized")
    # the owner updates it
    new = template(dns=("abc.ido.example", "www.ido.example"))
    up = raw.post(url, {"csr-template": new}, okey, kid=okid)
    assert up.status_code == 200, up.text
    assert up.json()["csr-template"] == new and up.json()["cname-map"] == cmap


@pytest.mark.parametrize("case", [
    "no_key_types", "unknown_member", "bad_curve_pair", "no_san", "san_ip",
    "bad_eku", "email_wildcard", "subject_unknown", "cname_no_dot",
    "cname_not_delegated", "ndc_self", "ndc_foreign_url",
])
def test_bad_delegation_refused(raw, owner, ndc, case):
    t, cmap, who = template(), None, ndc[1]
    if case == "no_key_types":
        del t["keyTypes"]
    elif case == "unknown_member":
        t["validity"] = 7
    elif case == "bad_curve_pair":
        # appendix A: "The parameters in each keyTypes entry form an
        # acceptable combination."
        t["keyTypes"][1]["SignatureType"] = "ecdsa-with-SHA384"
    elif case == "no_san":
        del t["extensions"]["subjectAltName"]
    elif case == "san_ip":
        t["extensions"]["subjectAltName"] = {"IP": ["192.0.2.1"]}
    elif case == "bad_eku":
        t["extensions"]["extendedKeyUsage"] = ["serverAuth", "1.2.x"]
    elif case == "email_wildcard":
        t["extensions"]["subjectAltName"]["Email"] = ["**"]
    elif case == "subject_unknown":
        t["subject"]["title"] = "CEO"
    elif case == "cname_no_dot":
        # §2.3.1.3: "Both names and values MUST be FQDNs with a
        # terminating '.'."
        cmap = {"abc.ido.example": "abc.ndc.example."}
    elif case == "cname_not_delegated":
        cmap = {"other.ido.example.": "abc.ndc.example."}
    elif case == "ndc_self":
        who = owner[1]
    elif case == "ndc_foreign_url":
        who = "https://elsewhere.example/acme/acct/1"
    r = create(raw, owner, who, t, cmap, expect=400)
    a.problem(r, 400, "malformed")


def test_foreign_account_cannot_see_or_modify(raw, owner, ndc):
    url = delegation(raw, owner, ndc[1])
    key, kid = a.new_account(raw)
    # another account gets the same 404 as for a missing delegation
    a.problem(raw.post(url, None, key, kid=kid), 404, "malformed")
    a.problem(raw.post(url, {"status": "canceled"}, key, kid=kid), 404, "malformed")
    okey, okid = owner
    owners_list = acct_doc(raw, okey, okid)["delegations"]
    a.problem(raw.post(owners_list, None, key, kid=kid), 403, "unauthorized")
    lst = raw.post(acct_doc(raw, key, kid)["delegations"], None, key, kid=kid).json()
    assert url not in lst["delegations"] and url not in lst["owned-delegations"]
    # §2.3.1.3: "If the delegation attribute in the Order object contains
    # a URL that does not correspond to a configuration available to the
    # requesting ACME account, the IdO MUST return an error response with
    # status code 403 (Forbidden) ... unknownDelegation."
    r = ndc_order(raw, (key, kid), url, ["abc.ido.example"])
    a.problem(r, 403, "unknownDelegation")
    # still active and unchanged for its owner
    assert raw.post(url, None, okey, kid=okid).json()["status"] == "active"


# ------------------------------------------------------------ orders

def test_delegated_order_inside_template_issues(raw, env, owner, ndc, owner_authzs):
    url = delegation(raw, owner, ndc[1])
    r = ndc_order(raw, ndc, url, ["abc.ido.example"])
    assert r.status_code == 201, r.text
    order, order_url = r.json(), r.headers["Location"]
    # §2.3.3: the order "MUST start in the ready state; MUST contain an
    # authorizations array with zero elements; MUST contain the indicated
    # delegation configuration"
    assert order["status"] == "ready"
    assert order["authorizations"] == []
    assert order["delegation"] == url
    # nothing was validated for the NDC: the order stands on the owner's
    # valid authorizations
    sa = a.sa_order(env, order_url)
    for az in sa["authz_ids"]:
        assert a.sa_authz(env, az)["account_id"] == a.id_of(owner[1])
    der, cert_key = csr(["abc.ido.example"])
    assert finalize(raw, ndc, order, der).status_code == 200
    key, kid = ndc
    done = a.poll(raw, key, kid, order_url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    pem = raw.post(done["certificate"], None, key, kid=kid).text
    leaf = x509.load_pem_x509_certificate(pem.encode())
    assert leaf.public_key().public_numbers() == cert_key.public_key().public_numbers()
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["abc.ido.example"]
    # "never more" than the template: the profile's EKU (serverAuth) is in
    # the template's list, keyUsage is digitalSignature only, and none of
    # the CSR's subject attributes (C, ST, L) is copied
    ekus = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(ekus) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment
    assert not leaf.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)


def test_wildcard_slot_and_cname_map(raw, owner, ndc, owner_authzs):
    # §4.1: "**" is "A mandatory field, where the content of the field is
    # defined by the client": one name of the NDC's choosing, which the
    # owner must hold an authorization for.
    url = delegation(raw, owner, ndc[1], template(dns=("abc.ido.example", "**")),
                     {"abc.ido.example.": "abc.ndc.example."})
    r = ndc_order(raw, ndc, url, ["abc.ido.example", "free.ido.example"])
    assert r.status_code == 201, r.text
    der, _ = csr(["abc.ido.example", "free.ido.example"])
    assert finalize(raw, ndc, r.json(), der).status_code == 200
    # the "**" slot must be filled
    a.problem(ndc_order(raw, ndc, url, ["abc.ido.example"]), 400, "rejectedIdentifier")
    # a name the owner never validated: nothing is validated for the NDC
    r = ndc_order(raw, ndc, url, ["abc.ido.example", "nope.ido.example"])
    p = a.problem(r, 403, "unauthorized")
    assert [s["identifier"]["value"] for s in p["subproblems"]] == ["nope.ido.example"]


def test_identifiers_outside_template_refused(raw, owner, ndc, owner_authzs):
    url = delegation(raw, owner, ndc[1])
    # §2.3.2: the NDC's order "MUST have entries in the identifiers field
    # for each delegated name present in the configuration"
    a.problem(ndc_order(raw, ndc, url, ["www.ido.example"]), 400, "rejectedIdentifier")
    a.problem(ndc_order(raw, ndc, url, ["abc.ido.example", "www.ido.example"]), 400,
              "rejectedIdentifier")


@pytest.mark.parametrize("case", [
    "p384_key", "rsa_keyencipherment", "sha384_signature", "missing_mandatory_subject",
    "wrong_literal_subject", "extra_subject", "no_key_usage", "extra_extension",
    "eku_differs",
])
def test_csr_outside_template_refused(raw, env, owner, ndc, owner_authzs, case):
    url = delegation(raw, owner, ndc[1])
    r = ndc_order(raw, ndc, url, ["abc.ido.example"])
    assert r.status_code == 201, r.text
    order, order_url = r.json(), r.headers["Location"]
    kw = {}
    if case == "p384_key":
        kw["key"] = ec.generate_private_key(ec.SECP384R1())
        kw["sig"] = hashes.SHA384()
    elif case == "rsa_keyencipherment":
        # the template allows RSA 2048 but keyUsage digitalSignature only:
        # Anvil's RSA certificates carry keyEncipherment too, never more
        # than the template allows
        kw["key"] = rsa.generate_private_key(65537, 2048)
    elif case == "sha384_signature":
        kw["sig"] = hashes.SHA384()
    elif case == "missing_mandatory_subject":
        kw["subject"] = (("C", "CA"), ("ST", "Quebec"))
    elif case == "wrong_literal_subject":
        kw["subject"] = (("C", "FR"), ("ST", "Quebec"), ("L", "Montreal"))
    elif case == "extra_subject":
        # §4.1: "The NDC MUST NOT include in the CSR any fields, including
        # any extensions, unless they are specified in the template."
        kw["subject"] = (("C", "CA"), ("ST", "Q"), ("L", "M"), ("CN", "abc.ido.example"))
    elif case == "no_key_usage":
        kw["ku"] = False
    elif case == "extra_extension":
        kw["extra"] = x509.TLSFeature([x509.TLSFeatureType.status_request])
    elif case == "eku_differs":
        kw["eku"] = (ExtendedKeyUsageOID.SERVER_AUTH,)
    der, _ = csr(["abc.ido.example"], **kw)
    # §2.3.2: "If the CSR fails validation for any of the identifiers, the
    # IdO MUST return an error response with status code 403 (Forbidden)
    # and an appropriate type, e.g., rejectedIdentifier or badCSR."
    a.problem(finalize(raw, ndc, order, der), 403, "badCSR")
    # §2.2: "If the CSR verification fails, Order1 is moved to an invalid
    # state and everything stops"
    key, kid = ndc
    got = raw.post(order_url, None, key, kid=kid).json()
    assert got["status"] == "invalid" and "certificate" not in got
    assert not a.sa_order(env, order_url).get("certificate_serial")


def test_deactivated_owner_delegates_nothing(raw, ndc, names):
    # §7.2: "in more extreme circumstances, the IdO might decide to disable
    # the NDC account"; the other way round, an owner whose account is
    # deactivated delegates nothing any more (its authorizations stand).
    okey, okid = a.new_account(raw)
    a.ready_order(raw, okey, okid, ["abc.ido.example"])
    url = delegation(raw, (okey, okid), ndc[1])
    assert ndc_order(raw, ndc, url, ["abc.ido.example"]).status_code == 201
    r = raw.post(okid, {"status": "deactivated"}, okey, kid=okid)
    assert r.status_code == 200, r.text
    a.problem(ndc_order(raw, ndc, url, ["abc.ido.example"]), 403, "unknownDelegation")


def test_ndc_without_delegation_refused(raw, owner, ndc, owner_authzs):
    # made for another NDC: not "available to the requesting ACME account"
    other = a.new_account(raw)
    url = delegation(raw, owner, other[1])
    a.problem(ndc_order(raw, ndc, url, ["abc.ido.example"]), 403, "unknownDelegation")
    for bad in (url + "9999", "https://elsewhere.example/acme/delegation/1", 7):
        a.problem(ndc_order(raw, ndc, bad, ["abc.ido.example"]), 403, "unknownDelegation")
    # without a delegation the NDC's order is an ordinary one: pending,
    # the NDC must validate itself
    key, kid = ndc
    r = raw.post(raw.dir["newOrder"], {"identifiers": [
        {"type": "dns", "value": "abc.ido.example"}]}, key, kid=kid)
    assert r.status_code == 201 and r.json()["status"] == "pending"
    assert len(r.json()["authorizations"]) == 1


# ------------------------------------------------------------ cancellation

def test_owner_cancels_star_renewals_stop(raw, env, owner, ndc, owner_authzs):
    url = delegation(raw, owner, ndc[1])
    ar = {"end-date": rfc3339(time.time() + 600), "lifetime": LIFETIME,
          "allow-certificate-get": True}
    r = ndc_order(raw, ndc, url, ["abc.ido.example"], **{"auto-renewal": ar})
    assert r.status_code == 201, r.text
    order, order_url = r.json(), r.headers["Location"]
    assert order["status"] == "ready" and order["auto-renewal"]["lifetime"] == LIFETIME
    der, _ = csr(["abc.ido.example"])
    assert finalize(raw, ndc, order, der).status_code == 200
    key, kid = ndc
    done = a.poll(raw, key, kid, order_url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    star = done["star-certificate"]
    # RFC 9115 §2.2: "the NDC can now download, install and use the
    # short-term certificate" with an unauthenticated GET; wait for the
    # first renewal so that the series is running
    seen = set()
    end = time.time() + 10 * LIFETIME  # a renewal is due after LIFETIME/2
    while len(seen) < 2:
        assert time.time() < end, "no renewal within %ds" % (10 * LIFETIME)
        g = raw.s.get(star)
        assert g.status_code == 200, g.text
        seen.add(x509.load_pem_x509_certificate(g.text.encode()).serial_number)
        time.sleep(0.3)
    okey, okid = owner
    # §2.3.6.1: "The IdO can terminate the delegation of a STAR
    # certificate by requesting its cancellation"
    c = raw.post(url, {"status": "canceled"}, okey, kid=okid)
    assert c.status_code == 200, c.text
    assert c.json()["status"] == "canceled"
    certs_at_cancel = env.rpc("sa").call("sa.get_certificates", {
        "order_id": a.id_of(order_url), "limit": 100})["certificates"]
    # RFC 8739 §3.1.2: "the server MUST NOT issue any additional
    # certificates for this order": past the next renewal point, nothing new
    deadline = time.time() + LIFETIME + 2
    while time.time() < deadline:
        now = env.rpc("sa").call("sa.get_certificates", {
            "order_id": a.id_of(order_url), "limit": 100})["certificates"]
        assert len(now) == len(certs_at_cancel), "a certificate after the cancel"
        time.sleep(0.5)
    # §3.1.2 of RFC 8739: the star-certificate URL answers 403
    # autoRenewalCanceled, the order reads canceled
    a.problem(raw.s.get(star), 403, "autoRenewalCanceled")
    assert raw.post(order_url, None, key, kid=kid).json()["status"] == "canceled"
    # the delegation is no longer available to the NDC
    a.problem(ndc_order(raw, ndc, url, ["abc.ido.example"]), 403, "unknownDelegation")
    lst = raw.post(acct_doc(raw, key, kid)["delegations"], None, key, kid=kid).json()
    assert url not in lst["delegations"]


def test_cancel_invalidates_pending_order(raw, owner, ndc, owner_authzs):
    url = delegation(raw, owner, ndc[1])
    r = ndc_order(raw, ndc, url, ["abc.ido.example"])
    order, order_url = r.json(), r.headers["Location"]
    okey, okid = owner
    assert raw.post(url, {"status": "canceled"}, okey, kid=okid).status_code == 200
    # a second cancel changes nothing
    assert raw.post(url, {"status": "canceled"}, okey, kid=okid).json()["status"] == "canceled"
    key, kid = ndc
    assert raw.post(order_url, None, key, kid=kid).json()["status"] == "invalid"
    der, _ = csr(["abc.ido.example"])
    r = finalize(raw, ndc, order, der)
    assert r.status_code in (403,), r.text
    # a canceled delegation is not updated any more
    a.problem(raw.post(url, {"csr-template": template()}, okey, kid=okid), 409, "malformed")


# ------------------------------------------------------------ switched off
# (last: it restarts the RA and the WFE, and restores them)

def switch(env, raw, enabled):
    """Rewrites ra.json's delegation.enabled and restarts the RA and the WFE
    (the WFE caches the RA's directory meta); returns once the directory
    says so."""
    path = os.path.join(env.cfg_dir, "ra.json")
    with open(path) as f:
        doc = json.load(f)
    doc["delegation"]["enabled"] = enabled
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    for svc in ("ra", "wfe"):
        old = env.pid_of(svc)
        os.kill(old, signal.SIGKILL)
        a.wait_restarted(env, svc, old)
    end = time.time() + 30
    while True:
        try:
            meta = raw.s.get(raw.directory_url).json()["meta"]
            if ("delegation-enabled" in meta) == enabled:
                return
        except (OSError, ValueError, KeyError):
            pass
        assert time.time() < end, "directory meta did not follow the switch"
        time.sleep(0.3)


def test_switched_off_advertises_nothing(env, raw, owner, ndc, owner_authzs):
    url = delegation(raw, owner, ndc[1])
    switch(env, raw, False)
    try:
        # RFC 9115 §6.3: "the delegations field is only reported by ACME
        # servers that have delegation-enabled set to true in their meta
        # Object."
        key, kid = ndc
        doc = acct_doc(raw, key, kid)
        assert "delegations" not in doc
        lst = kid.replace("/acme/acct/", "/acme/delegations/")
        a.problem(raw.post(lst, None, key, kid=kid), 404, "malformed")
        # an order naming a delegation made while it was on is refused
        a.problem(ndc_order(raw, ndc, url, ["abc.ido.example"]), 403, "unknownDelegation")
    finally:
        switch(env, raw, True)
    assert ndc_order(raw, ndc, url, ["abc.ido.example"]).status_code == 201
