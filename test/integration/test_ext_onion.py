"""RFC 9799 (.onion names, onion-csr-01, in-band CAA) end to end over HTTPS.

The client side is written here on python3-acme / josepy (which know none of
it): the hidden service's Ed25519 key comes from python3-cryptography, its
v3 address is built from the key (tor-spec rend-spec-v3 §6), the challenge
CSR carries the CA/Browser Forum nonce attributes, and the finalize payload
carries the signed "onionCAA" record set. The whole system runs from
configs/dev, where policy.onion is on.

Ports: AnvilEnv base 28300 (WFE 28331).
"""
import base64
import datetime
import hashlib
import os
import sys
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ObjectIdentifier

import josepy as jose
from acme import challenges, errors, messages

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import acme_lib  # noqa: E402
import anvil_env  # noqa: E402
import anvilrpc  # noqa: E402

PORT_BASE = 28300
CA_SIGNING_NONCE = ObjectIdentifier("2.23.140.41")
APPLICANT_SIGNING_NONCE = ObjectIdentifier("2.23.140.42")


# ------------------------------------------------------ client side of RFC 9799

def onion_address(pub):
    """tor-spec rend-spec-v3 §6: base32(PUBKEY | CHECKSUM | VERSION) + ".onion",
    CHECKSUM = SHA3_256(".onion checksum" | PUBKEY | VERSION)[:2]."""
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    checksum = hashlib.sha3_256(b".onion checksum" + raw + b"\x03").digest()[:2]
    return base64.b32encode(raw + checksum + b"\x03").decode().lower() + ".onion"


class HiddenService:
    def __init__(self):
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.name = onion_address(self.key.public_key())


class OnionCSR01Response(challenges.ChallengeResponse):
    """RFC 9799 §3.2: "csr (required, string) The CSR in the base64url-encoded
    version of the DER format." """
    typ = "onion-csr-01"
    csr: str = jose.field("csr", omitempty=True)


@challenges.Challenge.register
class OnionCSR01(challenges.Challenge):
    """RFC 9799 §3.2: type, nonce (Base64 with padding), authKey (optional)."""
    typ = "onion-csr-01"
    nonce: str = jose.field("nonce")


def onion_csr(signing_key, ca_nonce, applicant_nonce=None, names=None, public_key_of=None):
    """§3.2: a CSR with caSigningNonce (raw bytes of the challenge nonce) and
    applicantSigningNonce (>= 64 bits of the client's), signed with the
    hidden service's key. Either attribute may be left out (None)."""
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if ca_nonce is not None:
        b = b.add_attribute(CA_SIGNING_NONCE, ca_nonce, _tag=_ASN1Type.OctetString)
    if applicant_nonce is not None:
        b = b.add_attribute(APPLICANT_SIGNING_NONCE, applicant_nonce,
                            _tag=_ASN1Type.OctetString)
    if names:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                            critical=False)
    csr = b.sign(signing_key, None)
    return jose.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()


class RawPayload(jose.JSONDeSerializable):
    """A JWS payload given as a plain dict (finalize with onionCAA)."""

    def __init__(self, obj):
        self.obj = obj

    def to_partial_json(self):
        return self.obj

    @classmethod
    def from_json(cls, jobj):
        return cls(jobj)


def onion_caa_entry(service, caa, expiry=None, key=None):
    """§6.4: signature over "onion-caa|" || expiry || "|" || caa (null: "")."""
    expiry = int(time.time()) + 3600 if expiry is None else expiry
    msg = ("onion-caa|%d|%s" % (expiry, caa or "")).encode()
    sig = (key or service.key).sign(msg)
    return {"caa": caa, "expiry": expiry,
            "signature": base64.urlsafe_b64encode(sig).decode()}


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def env():
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="onion") as e:
        yield e


def account(env):
    return acme_lib.ec_account(env, "anvil-onion-test")


csr_pem = acme_lib.csr_pem


def deadline(s=60):
    return datetime.datetime.now() + datetime.timedelta(seconds=s)


def onion_chall(authzr):
    found = [cb for cb in authzr.body.challenges if isinstance(cb.chall, OnionCSR01)]
    assert found, [cb.chall.typ for cb in authzr.body.challenges]
    return found[0]


def poll_authz(c, authzr, want, s=60):
    end = time.monotonic() + s
    while time.monotonic() < end:
        authzr, _ = c.poll(authzr)
        if authzr.body.status.name != "pending":
            break
        time.sleep(0.2)
    assert authzr.body.status.name == want, authzr.body
    return authzr


def validate(c, service, authzr, **kw):
    cb = onion_chall(authzr)
    nonce = base64.b64decode(cb.chall.nonce)
    csr = onion_csr(kw.get("signing_key", service.key),
                    kw.get("ca_nonce", nonce),
                    kw.get("applicant_nonce", os.urandom(16)),
                    names=kw.get("names"))
    c.answer_challenge(cb, OnionCSR01Response(csr=csr))
    return cb


def finalize(c, orderr, names, onion_caa):
    payload = {"csr": jose.b64encode(x509.load_pem_x509_csr(csr_pem(names)).public_bytes(
        serialization.Encoding.DER)).decode()}
    if onion_caa is not None:
        payload["onionCAA"] = onion_caa
    c._post(orderr.body.finalize, RawPayload(payload))
    end = time.monotonic() + 60
    while time.monotonic() < end:
        body = messages.Order.from_json(c._post_as_get(orderr.uri).json())
        if body.status == messages.STATUS_INVALID:
            raise errors.IssuanceError(body.error)
        if body.status == messages.STATUS_VALID and body.certificate is not None:
            return orderr.update(body=body,
                                 fullchain_pem=c._post_as_get(body.certificate).text)
        time.sleep(0.2)
    raise errors.TimeoutError()


def ready_order(env, names, service):
    c, key, regr = account(env)
    orderr = c.new_order(csr_pem(names))
    for authzr in orderr.authorizations:
        validate(c, service, authzr)
    for authzr in orderr.authorizations:
        poll_authz(c, authzr, "valid")
    return c, orderr


# --------------------------------------------------------------------- tests

def test_directory_advertises_in_band_caa(env):
    """§6.4.1: "inBandOnionCAARequired (optional, boolean) If true, the ACME
    server requires the client to provide the CAA record set in the finalize
    request." This CA cannot read hidden service descriptors."""
    meta = requests.get(env.directory_url, verify=env.trust_path, timeout=30).json()["meta"]
    assert meta.get("inBandOnionCAARequired") is True


def test_onion_csr_01_issues_for_onion_and_wildcard(env):
    """§3.2 end to end: the challenge carries a padded Base64 nonce, the CSR
    signed with the service key validates the name and its wildcard, and the
    certificate names both."""
    hs = HiddenService()
    names = [hs.name, "*." + hs.name]
    c, key, regr = account(env)
    orderr = c.new_order(csr_pem(names))
    assert len(orderr.authorizations) == 2
    for authzr in orderr.authorizations:
        cb = onion_chall(authzr)
        # "nonce (required, string) A Base64 [RFC4648] encoded nonce,
        # including padding characters. It MUST contain at least 64 bits of
        # entropy."
        raw = base64.b64decode(cb.chall.nonce, validate=True)
        assert len(raw) * 8 >= 64 and len(cb.chall.nonce) % 4 == 0
        assert "token" not in cb.chall.to_partial_json()
        validate(c, hs, authzr)
    for authzr in orderr.authorizations:
        authzr = poll_authz(c, authzr, "valid")
        assert onion_chall(authzr).status.name == "valid"
    orderr = finalize(c, orderr, names, {hs.name: onion_caa_entry(hs, None)})
    cert = x509.load_pem_x509_certificate(orderr.fullchain_pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(names)


def test_only_onion_csr_01_is_offered(env):
    """§3.1.1: "The existing "dns-01" challenge MUST NOT be used to validate
    ".onion" Special-Use Domain Names"; http-01 / tls-alpn-01 need a
    connection over Tor (§3.1.2, §8.8), which this CA does not make. And
    §3.2: "An "onion-csr-01" MUST NOT be used to issue certificates for non
    ".onion" Special-Use Domain Names." """
    hs = HiddenService()
    c, _, _ = account(env)
    orderr = c.new_order(csr_pem([hs.name, "www.%s" % hs.name, "plain%s.test" % os.urandom(3).hex()]))
    by_name = {a.body.identifier.value: [cb.chall.typ for cb in a.body.challenges]
               for a in orderr.authorizations}
    for name, types in by_name.items():
        if name.endswith(".onion"):
            assert types == ["onion-csr-01"], (name, types)
        else:
            assert "onion-csr-01" not in types and "dns-01" in types, (name, types)


def test_dns_01_refused_for_onion_by_the_va(env):
    """§3.1.1 again, one level down: even asked directly, the VA refuses to
    validate a .onion name with dns-01 or http-01 (it would query the DNS
    or connect without Tor)."""
    hs = HiddenService()
    for typ in ("dns-01", "http-01"):
        with pytest.raises(anvilrpc.RpcError) as ei:
            env.rpc("va").call("va.validate", {
                "identifier": {"type": "dns", "value": hs.name},
                "challenge": {"type": typ, "token": "abcdefgh"},
                "key_authorization": "abcdefgh.x"})
        assert ei.value.problem["type"] == "malformed", ei.value.problem
        assert "cannot validate a .onion name" in ei.value.problem["detail"]


def test_wrong_key_is_refused(env):
    """§3.2 step 2: "The public key in the CSR corresponds to the ".onion"
    Special-Use Domain Name being validated." A CSR signed by another
    service's key fails the authorization."""
    hs, other = HiddenService(), HiddenService()
    c, _, _ = account(env)
    orderr = c.new_order(csr_pem([hs.name]))
    validate(c, hs, orderr.authorizations[0], signing_key=other.key)
    authzr = poll_authz(c, orderr.authorizations[0], "invalid")
    err = onion_chall(authzr).error
    assert err.typ == "urn:ietf:params:acme:error:incorrectResponse", err
    assert "not the Ed25519 key of %s" % hs.name in err.detail


def test_missing_ca_nonce_is_refused(env):
    """§3.2 step 4: "The caSigningNonce attribute is present and its contents
    matches the nonce provided to the client." """
    hs = HiddenService()
    c, _, _ = account(env)
    orderr = c.new_order(csr_pem([hs.name]))
    validate(c, hs, orderr.authorizations[0], ca_nonce=None)
    err = onion_chall(poll_authz(c, orderr.authorizations[0], "invalid")).error
    assert "no caSigningNonce attribute" in err.detail, err


def test_wrong_ca_nonce_is_refused(env):
    """§3.2: "This MUST be raw bytes, and not the base64 encoded value
    provided in the challenge object." The base64 text itself is wrong."""
    hs = HiddenService()
    c, _, _ = account(env)
    orderr = c.new_order(csr_pem([hs.name]))
    cb = onion_chall(orderr.authorizations[0])
    validate(c, hs, orderr.authorizations[0], ca_nonce=cb.chall.nonce.encode())
    err = onion_chall(poll_authz(c, orderr.authorizations[0], "invalid")).error
    assert "not this challenge's nonce" in err.detail, err


def test_short_applicant_nonce_is_refused(env):
    """§3.2 step 5: "The applicantSigningNonce attribute is present and
    contains at least 64 bits of entropy." Four bytes cannot."""
    hs = HiddenService()
    c, _, _ = account(env)
    orderr = c.new_order(csr_pem([hs.name]))
    validate(c, hs, orderr.authorizations[0], applicant_nonce=os.urandom(4))
    err = onion_chall(poll_authz(c, orderr.authorizations[0], "invalid")).error
    assert "applicantSigningNonce" in err.detail, err


def test_challenge_without_csr_is_malformed(env):
    """§3.2: "Clients respond with the following object to validate the
    challenge: csr (required, string)". An RFC 8555 {} is refused and the
    challenge stays pending."""
    hs = HiddenService()
    c, _, _ = account(env)
    orderr = c.new_order(csr_pem([hs.name]))
    cb = onion_chall(orderr.authorizations[0])
    with pytest.raises(messages.Error) as ei:
        c.answer_challenge(cb, OnionCSR01Response())
    assert ei.value.typ == "urn:ietf:params:acme:error:malformed"
    assert "csr" in ei.value.detail
    authzr, _ = c.poll(orderr.authorizations[0])
    assert authzr.body.status.name == "pending"


def test_version_2_and_malformed_addresses_are_rejected(env):
    """§2: "Version 2 addresses [tor-rend-spec-v2] MUST NOT be used as these
    are now considered insecure." A v3-length label with a wrong checksum is
    no onion address either."""
    c, _, _ = account(env)
    hs = HiddenService()
    bad_sum = ("a" if hs.name[0] != "a" else "b") + hs.name[1:]
    for name, why in (("facebookcorewwwi.onion", "version 2"),
                      (bad_sum, "checksum"),
                      ("short.onion", "56 base32")):
        with pytest.raises(messages.Error) as ei:
            c.new_order(csr_pem([name]))
        assert ei.value.typ == "urn:ietf:params:acme:error:rejectedIdentifier", name
        text = ei.value.detail + " ".join(s.detail for s in (ei.value.subproblems or []))
        assert why in text, (name, text)


def test_finalize_without_onion_caa_is_onion_caa_required(env):
    """§6.4.1: "If an ACME server does not support fetching a service's CAA
    record set from its service descriptor it, and the ACME client does not
    provide an "onionCAA" object in its finalize request the ACME server MUST
    respond with an "onionCAARequired" error to indicate this." """
    hs = HiddenService()
    c, orderr = ready_order(env, [hs.name], hs)
    with pytest.raises(messages.Error) as ei:
        finalize(c, orderr, [hs.name], None)
    assert ei.value.typ == "urn:ietf:params:acme:error:onionCAARequired"
    # still ready: the client may finalize again with the record set
    orderr = finalize(c, orderr, [hs.name], {hs.name: onion_caa_entry(hs, None)})
    assert "BEGIN CERTIFICATE" in orderr.fullchain_pem


def test_onion_caa_permitting_record_set_issues(env):
    """§6.4.2's record set, naming this CA (the directory's caaIdentities)
    and onion-csr-01: "CAA records in a hidden service descriptor are to be
    treated the same by CAs as if they had been in the DNS"."""
    hs = HiddenService()
    c, orderr = ready_order(env, [hs.name, "www." + hs.name], hs)
    ident = c.directory.meta.caa_identities[0]
    caa = ('caa 128 issue "%s;validationmethods=onion-csr-01"\n'
           'caa 0 iodef "mailto:example@example.com"' % ident)
    orderr = finalize(c, orderr, [hs.name, "www." + hs.name],
                      {hs.name: onion_caa_entry(hs, caa)})
    assert "BEGIN CERTIFICATE" in orderr.fullchain_pem


def test_onion_caa_of_another_ca_refuses(env):
    """RFC 8659 §4: an issue property naming only another CA forbids
    issuance; the problem is caa."""
    hs = HiddenService()
    c, orderr = ready_order(env, [hs.name], hs)
    with pytest.raises(messages.Error) as ei:
        finalize(c, orderr, [hs.name],
                 {hs.name: onion_caa_entry(hs, 'caa 0 issue "acmeforonions.example"')})
    assert ei.value.typ == "urn:ietf:params:acme:error:caa", ei.value
    assert "prevents issuance" in ei.value.detail


def test_onion_caa_other_validation_method_refuses(env):
    """RFC 8657 §4: validationmethods not listing the method used
    (onion-csr-01) forbids issuance."""
    hs = HiddenService()
    c, orderr = ready_order(env, [hs.name], hs)
    ident = c.directory.meta.caa_identities[0]
    with pytest.raises(messages.Error) as ei:
        finalize(c, orderr, [hs.name], {hs.name: onion_caa_entry(
            hs, 'caa 0 issue "%s;validationmethods=http-01"' % ident)})
    assert ei.value.typ == "urn:ietf:params:acme:error:caa"


def test_onion_caa_signed_by_another_key_refuses(env):
    """§6.4: "signature (required, string) The Ed25519 signature of the CAA
    record set using the private key corresponding to the ".onion"
    Special-Use Domain Name". A set signed by someone else proves nothing."""
    hs, other = HiddenService(), HiddenService()
    c, orderr = ready_order(env, [hs.name], hs)
    with pytest.raises(messages.Error) as ei:
        finalize(c, orderr, [hs.name], {hs.name: onion_caa_entry(hs, None, key=other.key)})
    assert ei.value.typ == "urn:ietf:params:acme:error:unauthorized"
    assert "not signed by the key" in ei.value.detail


def test_onion_caa_expired_refuses(env):
    """§6.4: "expiry (required, integer) The Unix timestamp at which this CAA
    record set will expire." One in the past is no record set."""
    hs = HiddenService()
    c, orderr = ready_order(env, [hs.name], hs)
    with pytest.raises(messages.Error) as ei:
        finalize(c, orderr, [hs.name],
                 {hs.name: onion_caa_entry(hs, None, expiry=int(time.time()) - 60)})
    assert ei.value.typ == "urn:ietf:params:acme:error:unauthorized"
    assert "expired" in ei.value.detail


def test_finalize_key_must_not_be_the_onion_key(env):
    """§3.2: the key of the challenge CSR "MUST NOT be the same public key
    presented in the CSR to finalize the order." An Ed25519 finalize CSR is
    refused (the key policy takes RSA and ECDSA only)."""
    hs = HiddenService()
    c, orderr = ready_order(env, [hs.name], hs)
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(hs.name)]), critical=False).sign(hs.key, None)
    with pytest.raises(messages.Error) as ei:
        c._post(orderr.body.finalize, RawPayload({
            "csr": jose.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode(),
            "onionCAA": {hs.name: onion_caa_entry(hs, None)}}))
    assert ei.value.typ in ("urn:ietf:params:acme:error:badPublicKey",
                            "urn:ietf:params:acme:error:badCSR"), ei.value
