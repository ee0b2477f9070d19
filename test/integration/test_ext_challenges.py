"""ACME extensions end to end over HTTPS (issue #21): dns-account-01
(draft-ietf-acme-dns-account-label). The client side of each extension is
written here on python3-acme / josepy (which do not know these challenge
types); DNS records are set through pebble-challtestsrv's management API as
the dns-01 tests do. The whole system runs from configs/dev, where the
extensions are on.

Ports: AnvilEnv base 28100 (WFE 28131).
"""
import base64
import datetime
import hashlib
import os
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import josepy as jose
from acme import challenges, client as acme_client, crypto_util, errors, messages

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
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
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = acme_client.ClientNetwork(key, alg=jose.ES256, user_agent="anvil-ext-test",
                                    verify_ssl=env.trust_path)
    directory = acme_client.ClientV2.get_directory(env.directory_url, net)
    c = acme_client.ClientV2(directory, net)
    regr = c.new_account(messages.NewRegistration.from_data(
        email=email, terms_of_service_agreed=True))
    net.account = regr
    return c, key, regr


def csr_for(names):
    k = ec.generate_private_key(ec.SECP256R1())
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    return crypto_util.make_csr(pem, names)


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
    for allowed, ok in (("dns-account-01", True), ("dns-01,http-01", False)):
        c, key, regr = account(env)
        name = "caa%s.test" % uniq()
        env.challtest("add-caa", {"host": name, "policies": [
            {"tag": "issue", "value": "anvil.local; validationmethods=%s" % allowed}]})
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

