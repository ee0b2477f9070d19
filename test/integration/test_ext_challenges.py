"""ACME extensions end to end over HTTPS (issue #21): dns-account-01
(draft-ietf-acme-dns-account-label) and RFC 9444 subdomain authorizations. The client side of each extension is
written here on python3-acme / josepy (which do not know these challenge
types); DNS records are set through pebble-challtestsrv's management API as
the dns-01 tests do. The whole system runs from configs/dev, where the
extensions are on.

Ports: AnvilEnv base 28100 (WFE 28131).
"""
import base64
import datetime
import hashlib
import json
import os
import sys
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import josepy as jose
from acme import challenges, errors, messages

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import acme_lib  # noqa: E402
import anvil_env  # noqa: E402

PORT_BASE = 28100


# ------------------------------------------------- client side of the drafts

class DNSAccount01Response(challenges.KeyAuthorizationChallengeResponse):
    """draft-ietf-acme-dns-account-label §3.3 step 3: respond with {}."""
    typ = "dns-account-01"


@challenges.Challenge.register
class DNSAccount01(challenges.KeyAuthorizationChallenge):
    """draft-ietf-acme-dns-account-label §3.1-3.3."""
    response_cls = DNSAccount01Response
    typ = "dns-account-01"

    def validation(self, account_key, **unused):
        return jose.b64encode(hashlib.sha256(
            self.key_authorization(account_key).encode()).digest()).decode()

    @staticmethod
    def label(account_url):
        # "_" || base32(SHA-256(<ACCOUNT_URL>)[0:10]) || "._acme-challenge"
        digest = hashlib.sha256(account_url.encode()).digest()[:10]
        return "_" + base64.b32encode(digest).decode().lower()

    def validation_domain_name(self, account_url, name):
        return "%s._acme-challenge.%s" % (self.label(account_url), name)


def test_label_matches_the_draft_example():
    # §3.3: account URL https://example.com/acme/acct/ExampleAccount gives
    # "_ujmmovf2vn55tgye._acme-challenge.example.org"
    ch = DNSAccount01(token=b"x" * 16)
    assert ch.validation_domain_name("https://example.com/acme/acct/ExampleAccount",
                                     "example.org") == "_ujmmovf2vn55tgye._acme-challenge.example.org"


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def env():
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="ext") as e:
        yield e


def account(env, email="ext@ext.test"):
    return acme_lib.ec_account(env, "anvil-ext-test", email)


csr_for = acme_lib.csr_pem


def csr_der(names):
    return x509.load_pem_x509_csr(csr_for(names)).public_bytes(serialization.Encoding.DER)


def uniq():
    return os.urandom(4).hex()


def chall_of(authzr, cls):
    found = [cb for cb in authzr.body.challenges if isinstance(cb.chall, cls)]
    assert found, [cb.chall.typ for cb in authzr.body.challenges]
    return found[0]


def deadline(s=60):
    return datetime.datetime.now() + datetime.timedelta(seconds=s)


# ------------------------------------------------------------ dns-account-01

def test_dns_account_01_issues_with_wildcard(env):
    c, key, regr = account(env)
    base = "da%s.test" % uniq()
    orderr = c.new_order(csr_for([base, "*." + base]))
    for authzr in orderr.authorizations:
        cb = chall_of(authzr, DNSAccount01)
        # Only the account-labelled name is provisioned: dns-01's
        # _acme-challenge.<name> stays empty, so dns-account-01 alone passes.
        env.challtest("set-txt", {"host": cb.chall.validation_domain_name(regr.uri, base) + ".",
                                  "value": cb.chall.validation(key)})
        c.answer_challenge(cb, cb.chall.response(key))
    orderr = c.poll_authorizations(orderr, deadline())
    for authzr in orderr.authorizations:
        cb = chall_of(authzr, DNSAccount01)
        assert authzr.body.status == messages.STATUS_VALID
        assert cb.status == messages.STATUS_VALID
    orderr = c.finalize_order(orderr, deadline())
    assert "BEGIN CERTIFICATE" in orderr.fullchain_pem


def test_dns_account_01_two_accounts_same_name_at_once(env):
    """The draft's purpose (§1): several ACME clients validate one name at
    the same time, each under its own label."""
    name = "both%s.test" % uniq()
    pending = []
    for email in ("one@ext.test", "two@ext.test"):
        c, key, regr = account(env, email)
        orderr = c.new_order(csr_for([name]))
        cb = chall_of(orderr.authorizations[0], DNSAccount01)
        env.challtest("set-txt", {"host": cb.chall.validation_domain_name(regr.uri, name) + ".",
                                  "value": cb.chall.validation(key)})
        pending.append((c, key, orderr, cb))
    for c, key, orderr, cb in pending:
        c.answer_challenge(cb, cb.chall.response(key))
    for c, key, orderr, cb in pending:
        orderr = c.poll_authorizations(orderr, deadline())
        assert orderr.authorizations[0].body.status == messages.STATUS_VALID


def test_dns_account_01_refuses_another_accounts_label(env):
    """§3.4 step 4: the validation name is computed from the requester's
    own account URL, so a record under another account's label is not
    looked at (and the problem names the URL the label came from)."""
    _, _, regr_a = account(env, "a@ext.test")
    c, key, regr_b = account(env, "b@ext.test")
    name = "other%s.test" % uniq()
    orderr = c.new_order(csr_for([name]))
    authzr = orderr.authorizations[0]
    cb = chall_of(authzr, DNSAccount01)
    # B's correct digest, but under A's label
    env.challtest("set-txt", {"host": cb.chall.validation_domain_name(regr_a.uri, name) + ".",
                              "value": cb.chall.validation(key)})
    c.answer_challenge(cb, cb.chall.response(key))
    with pytest.raises(errors.ValidationError) as e:
        c.poll_authorizations(orderr, deadline())
    failed = e.value.failed_authzrs[0]
    assert failed.body.status == messages.STATUS_INVALID
    ch = chall_of(failed, DNSAccount01)
    assert ch.status == messages.STATUS_INVALID
    assert ch.error.typ in ("urn:ietf:params:acme:error:unauthorized",
                            "urn:ietf:params:acme:error:dns")
    # §3.5: "it SHOULD include the account URL it used to construct the
    # validation domain name in the problem document"
    assert regr_b.uri in ch.error.detail
    assert DNSAccount01.label(regr_b.uri) in ch.error.detail


def test_dns_account_01_wrong_digest_is_incorrect_response(env):
    c, key, regr = account(env)
    name = "bad%s.test" % uniq()
    orderr = c.new_order(csr_for([name]))
    cb = chall_of(orderr.authorizations[0], DNSAccount01)
    env.challtest("set-txt", {"host": cb.chall.validation_domain_name(regr.uri, name) + ".",
                              "value": "not-the-digest"})
    c.answer_challenge(cb, cb.chall.response(key))
    with pytest.raises(errors.ValidationError) as e:
        c.poll_authorizations(orderr, deadline())
    ch = chall_of(e.value.failed_authzrs[0], DNSAccount01)
    assert ch.error.typ == "urn:ietf:params:acme:error:incorrectResponse"


def test_dns_account_01_caa_validationmethods(env):
    """RFC 8657 §4: validationmethods names ACME methods; dns-account-01 is
    one of them (IANA registration in the draft §5)."""
    caa_id = requests.get(env.directory_url, verify=env.trust_path).json()["meta"]["caaIdentities"][0]
    for allowed, ok in (("dns-account-01", True), ("dns-01,http-01", False)):
        c, key, regr = account(env)
        name = "caa%s.test" % uniq()
        env.challtest("add-caa", {"host": name, "policies": [
            {"tag": "issue", "value": "%s; validationmethods=%s" % (caa_id, allowed)}]})
        try:
            orderr = c.new_order(csr_for([name]))
            cb = chall_of(orderr.authorizations[0], DNSAccount01)
            env.challtest("set-txt", {"host": cb.chall.validation_domain_name(regr.uri, name) + ".",
                                      "value": cb.chall.validation(key)})
            c.answer_challenge(cb, cb.chall.response(key))
            if ok:
                orderr = c.poll_authorizations(orderr, deadline())
                assert orderr.authorizations[0].body.status == messages.STATUS_VALID
            else:
                with pytest.raises(errors.ValidationError) as e:
                    c.poll_authorizations(orderr, deadline())
                ch = chall_of(e.value.failed_authzrs[0], DNSAccount01)
                assert ch.error.typ == "urn:ietf:params:acme:error:caa"
                assert "dns-account-01" in ch.error.detail
        finally:
            env.challtest("clear-caa", {"host": name})



# ---------------------------------------------------- RFC 9444 subdomains

class Raw:
    """A JSON payload for ClientNetwork.post (python3-acme has no message
    type with RFC 9444's identifier fields)."""

    def __init__(self, d):
        self.d = d

    def json_dumps(self, **unused):
        return json.dumps(self.d)


def post(c, url, payload):
    """Signed POST (payload None = POST-as-GET); returns the response,
    also for problem documents."""
    try:
        return c.net.post(url, Raw(payload) if payload is not None else None,
                          new_nonce_url=c.directory["newNonce"])
    except messages.Error as e:
        return e


def get(c, url):
    r = post(c, url, None)
    assert not isinstance(r, messages.Error), r
    return r.json()


def wait_not_pending(c, authz_url, timeout=60):
    """Polls the authorization until it is no longer pending; returns it."""
    end = time.monotonic() + timeout
    while True:
        authz = get(c, authz_url)
        if authz["status"] != "pending":
            return authz
        if time.monotonic() >= end:
            raise AssertionError("authz still pending: %s" % authz)
        time.sleep(0.2)


def dns01_solve(env, c, key, authz_url):
    """Answers the authz's dns-01 challenge through challtestsrv and waits
    until the authorization is no longer pending."""
    authz = get(c, authz_url)
    ch = [x for x in authz["challenges"] if x["type"] == "dns-01"][0]
    cb = messages.ChallengeBody.from_json(ch)
    env.challtest("set-txt", {"host": "_acme-challenge.%s." % authz["identifier"]["value"],
                              "value": cb.chall.validation(key)})
    c.answer_challenge(cb, cb.chall.response(key))
    return wait_not_pending(c, authz_url)


def finalize(c, order_url, names):
    order = get(c, order_url)
    orderr = messages.OrderResource(body=messages.Order.from_json(order), uri=order_url,
                                    csr_pem=csr_for(names))
    return c.finalize_order(orderr, deadline())


def new_order(c, identifiers):
    r = post(c, c.directory["newOrder"], {"identifiers": identifiers})
    assert not isinstance(r, messages.Error), r
    assert r.status_code == 201, r.text
    return r.headers["Location"], r.json()


def test_directory_advertises_subdomain_auth(env):
    # RFC 9444 §4.4: "subdomainAuthAllowed (optional, bool): Indicates if
    # an ACME server supports authorization of subdomains."
    d = requests.get(env.directory_url, verify=env.trust_path).json()
    assert d["meta"]["subdomainAuthAllowed"] is True


def test_preauthorized_ancestor_covers_subdomains(env):
    """RFC 9444 §5: pre-authorize example.org once, then orders for
    sub1.example.org and sub2.example.org are "ready" at once, linking the
    existing valid authorization."""
    c, key, regr = account(env)
    anc = "pre%s.test" % uniq()
    r = post(c, c.directory["newAuthz"],
             {"identifier": {"type": "dns", "value": anc, "subdomainAuthAllowed": True}})
    assert not isinstance(r, messages.Error), r
    assert r.status_code == 201, r.text
    authz_url, authz = r.headers["Location"], r.json()
    # §4.1: the server "indicates this by including the new
    # subdomainAuthAllowed field"; only dns-01 is offered on an ancestor
    assert authz["subdomainAuthAllowed"] is True
    assert [x["type"] for x in authz["challenges"]] == ["dns-01"]
    assert dns01_solve(env, c, key, authz_url)["status"] == "valid"
    for sub in ("sub1." + anc, "a.b." + anc):
        order_url, order = new_order(c, [{"type": "dns", "value": sub}])
        assert order["status"] == "ready", order
        assert order["authorizations"] == [authz_url]
        orderr = finalize(c, order_url, [sub])
        assert orderr.body.status == messages.STATUS_VALID
        cert = x509.load_pem_x509_certificate(orderr.fullchain_pem.encode())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == [sub]
    # the ancestor itself is covered too (the authorization is for it)
    _, order = new_order(c, [{"type": "dns", "value": anc}])
    assert order["status"] == "ready" and order["authorizations"] == [authz_url]
    # a wildcard is not: it keeps an authorization of its own
    _, order = new_order(c, [{"type": "dns", "value": "*.w." + anc}])
    assert order["status"] == "pending" and order["authorizations"] != [authz_url]


def test_ancestor_domain_in_new_order(env):
    """RFC 9444 §4.3: "ancestorDomain" lets the server create one
    authorization of the ancestor, with subdomainAuthAllowed, for several
    requested names."""
    c, key, regr = account(env)
    base = "anc%s.test" % uniq()
    names = ["foo.bar." + base, "baz." + base]
    order_url, order = new_order(c, [{"type": "dns", "value": n, "ancestorDomain": base}
                                     for n in names])
    assert order["status"] == "pending"
    assert len(order["authorizations"]) == 1
    authz = get(c, order["authorizations"][0])
    assert authz["identifier"] == {"type": "dns", "value": base}
    assert authz["subdomainAuthAllowed"] is True
    assert dns01_solve(env, c, key, order["authorizations"][0])["status"] == "valid"
    assert get(c, order_url)["status"] == "ready"
    assert finalize(c, order_url, names).body.status == messages.STATUS_VALID


def test_subdomain_authz_not_used_by_another_account(env):
    """RFC 9444 §7 goal 2: "an account key's authorizations cannot be
    improperly used by another account"."""
    ca, key_a, _ = account(env, "owner@ext.test")
    anc = "own%s.test" % uniq()
    r = post(ca, ca.directory["newAuthz"],
             {"identifier": {"type": "dns", "value": anc, "subdomainAuthAllowed": True}})
    a_authz = r.headers["Location"]
    assert dns01_solve(env, ca, key_a, a_authz)["status"] == "valid"
    cb, key_b, _ = account(env, "intruder@ext.test")
    order_url, order = new_order(cb, [{"type": "dns", "value": "x." + anc}])
    assert order["status"] == "pending"
    assert a_authz not in order["authorizations"]
    assert get(cb, order["authorizations"][0])["identifier"]["value"] == "x." + anc
    # naming the ancestor gets B an authorization of its own, still pending
    _, order = new_order(cb, [{"type": "dns", "value": "y." + anc, "ancestorDomain": anc}])
    assert order["status"] == "pending" and a_authz not in order["authorizations"]
    # A's authorization is not B's to read (the WFE answers as if it did
    # not exist, 404) nor to answer
    e = post(cb, a_authz, None)
    assert isinstance(e, messages.Error) and "no such authorization" in e.detail
    ch_url = get(ca, a_authz)["challenges"][0]["url"]
    e = post(cb, ch_url, {})
    assert isinstance(e, messages.Error), e
    # and finalize of B's pending order is refused
    e = post(cb, get(cb, order_url)["finalize"], {"csr": jose.b64encode(b"x").decode()})
    assert isinstance(e, messages.Error) and e.typ == "urn:ietf:params:acme:error:orderNotReady"


def test_ancestor_above_policy_boundary_falls_back(env):
    """RFC 9444 §4.3: "If the server policy does not allow creation of
    subdomain authorizations against that ancestor domain, then it can
    create an authorization object for the indicated identifier value, and
    SHOULD NOT include the subdomainAuthAllowed flag". "test" is a
    configured private suffix: nobody gets authority over all of it."""
    c, key, regr = account(env)
    name = "n%s.test" % uniq()
    _, order = new_order(c, [{"type": "dns", "value": name, "ancestorDomain": "test"}])
    authz = get(c, order["authorizations"][0])
    assert authz["identifier"]["value"] == name and "subdomainAuthAllowed" not in authz
    # newAuthz for the suffix itself is refused by the identifier policy
    e = post(c, c.directory["newAuthz"],
             {"identifier": {"type": "dns", "value": "test", "subdomainAuthAllowed": True}})
    assert isinstance(e, messages.Error) and e.typ == "urn:ietf:params:acme:error:rejectedIdentifier"


def test_ancestor_domain_must_be_an_ancestor(env):
    # §2: "the comparisons here are done on whole labels; that is,
    # oo.example.com is not an ancestor domain of ooo.example.com"; and "A
    # domain cannot be an ancestor domain of itself".
    c, key, regr = account(env)
    base = "w%s.test" % uniq()
    for anc in ("oo." + base, "ooo." + base, "other.test", 7):
        e = post(c, c.directory["newOrder"], {"identifiers": [
            {"type": "dns", "value": "ooo." + base, "ancestorDomain": anc}]})
        assert isinstance(e, messages.Error), anc
        assert e.typ == "urn:ietf:params:acme:error:malformed", (anc, e)


def test_subdomain_caa_checked_at_finalize(env):
    """The authorization was validated at the ancestor; CAA of the name in
    the certificate (RFC 8659 §3) is still checked before issuance."""
    c, key, regr = account(env)
    anc = "caa%s.test" % uniq()
    r = post(c, c.directory["newAuthz"],
             {"identifier": {"type": "dns", "value": anc, "subdomainAuthAllowed": True}})
    assert dns01_solve(env, c, key, r.headers["Location"])["status"] == "valid"
    sub = "locked." + anc
    env.challtest("add-caa", {"host": sub, "policies": [{"tag": "issue", "value": "other.ca.example"}]})
    try:
        order_url, order = new_order(c, [{"type": "dns", "value": sub}])
        assert order["status"] == "ready"
        e = post(c, order["finalize"], {"csr": jose.b64encode(csr_der([sub])).decode()})
        assert isinstance(e, messages.Error) and e.typ == "urn:ietf:params:acme:error:caa", e
    finally:
        env.challtest("clear-caa", {"host": sub})


# ------------------------------------------------------------ dns-persist-01

def persist_uri(prefix, domain, key, account_url):
    """draft-ietf-acme-dns-persist §4.1: prefix || "sha-256/" ||
    b64url(SHA-256(len(domain) || domain || thumbprint || account_URL))."""
    tp = jose.b64encode(key.thumbprint()).decode()
    raw = bytes([len(domain)]) + domain.encode() + tp.encode() + account_url.encode()
    return prefix + "sha-256/" + jose.b64encode(hashlib.sha256(raw).digest()).decode()


def test_persist_uri_matches_the_draft_vector():
    # §10.2: thumbprint NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs (RFC 7638
    # §3.1), account https://ca.example/acct/123, example.com
    class K:
        def thumbprint(self):
            return jose.b64decode("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    assert persist_uri("https://ca.example/account-hash/", "example.com", K(),
                       "https://ca.example/acct/123") == \
        "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw"


@pytest.fixture(scope="module")
def meta(env):
    return requests.get(env.directory_url, verify=env.trust_path).json()["meta"]


def persist_record(meta, domain, key, regr, extra=""):
    return "%s; accounturi=%s%s" % (meta["issuerDomainNames"][0],
                                    persist_uri(meta["accountHashPrefix"], domain, key, regr.uri),
                                    extra)


def persist_validate(env, c, authz_url):
    authz = get(c, authz_url)
    ch = [x for x in authz["challenges"] if x["type"] == "dns-persist-01"][0]
    r = post(c, ch["url"], {})
    assert not isinstance(r, messages.Error), r
    return wait_not_pending(c, authz_url)


def persist_error(authz):
    return [x for x in authz["challenges"] if x["type"] == "dns-persist-01"][0].get("error")


def test_persist_directory_meta_and_challenge_object(env, meta):
    # §3.2: "A CA offering the dns-persist-01 challenge type MUST advertise
    # an issuerDomainNames array"; §4.1: "MUST advertise an
    # accountHashPrefix string"; §3.2: every directory name appears in C,
    # every value of C in caaIdentities
    assert meta["issuerDomainNames"] == ["anvil.test"]
    assert meta["accountHashPrefix"].endswith("/account-hash/")
    assert set(meta["issuerDomainNames"]) <= set(meta["caaIdentities"])
    c, key, regr = account(env)
    _, order = new_order(c, [{"type": "dns", "value": "obj%s.test" % uniq()}])
    authz = get(c, order["authorizations"][0])
    ch = [x for x in authz["challenges"] if x["type"] == "dns-persist-01"][0]
    assert ch["issuerDomainNames"] == meta["issuerDomainNames"]
    assert "token" not in ch


def test_persist_preprovisioned_record_issues_and_bounds_expiry(env, meta):
    """§4.5: the record is published before any order; §4.1 item 5: the
    authorization expires no later than persistUntil."""
    c, key, regr = account(env)
    name = "pp%s.test" % uniq()
    until = int(time.time()) + 3 * 86400
    env.challtest("set-txt", {"host": "_validation-persist.%s." % name,
                              "value": persist_record(meta, name, key, regr,
                                                      "; persistUntil=%d" % until)})
    order_url, order = new_order(c, [{"type": "dns", "value": name}])
    authz = persist_validate(env, c, order["authorizations"][0])
    assert authz["status"] == "valid", authz
    exp = datetime.datetime.fromisoformat(authz["expires"].replace("Z", "+00:00"))
    assert exp.timestamp() <= until
    assert finalize(c, order_url, [name]).body.status == messages.STATUS_VALID
    # "validated once and reusable": the next order is ready at once
    _, order2 = new_order(c, [{"type": "dns", "value": name}])
    assert order2["status"] == "ready"


def test_persist_expired_record_refused(env, meta):
    # §4.1 item 5: "After timestamp T, a CA MUST NOT consider the record
    # valid for new validation attempts."
    c, key, regr = account(env)
    name = "exp%s.test" % uniq()
    env.challtest("set-txt", {"host": "_validation-persist.%s." % name,
                              "value": persist_record(meta, name, key, regr,
                                                      "; persistUntil=%d" % (int(time.time()) - 60))})
    _, order = new_order(c, [{"type": "dns", "value": name}])
    authz = persist_validate(env, c, order["authorizations"][0])
    assert authz["status"] == "invalid"
    err = persist_error(authz)
    assert err["type"] == "urn:ietf:params:acme:error:unauthorized" and "expired" in err["detail"]


def test_persist_record_of_another_account_refused(env, meta):
    # §4.2: "its accounturi parameter MUST be a hashed URI that identifies
    # the requesting account"
    _, key_a, regr_a = account(env, "pa@ext.test")
    c, key_b, regr_b = account(env, "pb@ext.test")
    name = "oth%s.test" % uniq()
    env.challtest("set-txt", {"host": "_validation-persist.%s." % name,
                              "value": persist_record(meta, name, key_a, regr_a)})
    _, order = new_order(c, [{"type": "dns", "value": name}])
    authz = persist_validate(env, c, order["authorizations"][0])
    assert authz["status"] == "invalid"
    assert "does not identify the requesting account" in persist_error(authz)["detail"]


def test_persist_other_issuer_ignored(env, meta):
    # §4.3.2 step 2: records naming another CA are ignored
    c, key, regr = account(env)
    name = "iss%s.test" % uniq()
    env.challtest("set-txt", {"host": "_validation-persist.%s." % name,
                              "value": persist_record(meta, name, key, regr).replace(
                                  "anvil.test;", "other-ca.example;")})
    _, order = new_order(c, [{"type": "dns", "value": name}])
    authz = persist_validate(env, c, order["authorizations"][0])
    assert authz["status"] == "invalid"
    assert "No _validation-persist TXT record" in persist_error(authz)["detail"]


def test_persist_wildcard_needs_policy_wildcard(env, meta):
    # §5.1: "If the policy parameter is absent ... CAs MUST NOT consider
    # such validation sufficient for wildcard certificates"
    for extra, ok in (("", False), ("; policy=Wildcard", True)):
        c, key, regr = account(env)
        base = "wc%s.test" % uniq()
        env.challtest("set-txt", {"host": "_validation-persist.%s." % base,
                                  "value": persist_record(meta, base, key, regr, extra)})
        _, order = new_order(c, [{"type": "dns", "value": "*." + base}])
        authz = persist_validate(env, c, order["authorizations"][0])
        assert authz["status"] == ("valid" if ok else "invalid"), authz


def test_persist_domain_opt_out_and_prior_key(env, meta):
    """§4.1: a CA MUST accept the "*" opt-out form, and a hashed URI made
    with a prior key of the account (§4.2 key retention)."""
    c, key, regr = account(env)
    name = "key%s.test" % uniq()
    env.challtest("set-txt", {"host": "_validation-persist.%s." % name,
                              "value": persist_record(meta, "*", key, regr)})
    # roll the account key over (RA RPC, as the WFE's keyChange does)
    new = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    ra = env.rpc("ra")
    acct_id = int(regr.uri.rsplit("/", 1)[1])
    ra.call("ra.key_change", {"account_id": acct_id, "new_key": new.public_key().to_partial_json(),
                              "new_thumbprint": jose.b64encode(new.thumbprint()).decode()})
    ra.close()
    c.net.key = new
    # the WFE may serve the account from its cache (account_cache.ttl) for
    # a few seconds: poll until the new key is accepted
    end = time.monotonic() + 30
    while True:
        r = post(c, c.directory["newOrder"], {"identifiers": [{"type": "dns", "value": name}]})
        if not isinstance(r, messages.Error) or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert not isinstance(r, messages.Error), r
    order = r.json()
    authz = persist_validate(env, c, order["authorizations"][0])
    assert authz["status"] == "valid", authz
