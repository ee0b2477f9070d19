"""draft-ietf-acme-rats (remote-attestation identifier, remote-attest-01
challenge) end to end over HTTPS (issue #24), passport model: the suite
plays the RATS Verifier and signs EAT Attestation Results (EAR JWTs) with
the development Verifier key configs/dev/rats-verifier.key (configs/dev
va.json rats.verifier_keys trusts its public half); the client wraps the
result in a JSON CMW collection and POSTs it to the challenge.

Background-check model: a private swtpm (test/integration/lib/swtpm.py)
quotes its PCRs over SHA-256(freshness_nonce) with an AK whose
certificate the suite's AK CA issued (va.json attestation.tpm_roots); the
VA appraises the quote against the reference PCR digest the suite reads
from the fresh TPM (va.json rats.tpm_pcr_digests).

Ports: AnvilEnv base 29900 (WFE 29931).
"""
import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as ra  # noqa: E402
from swtpm import AIK_EKU, AttCA, SwTpm  # noqa: E402

PORT_BASE = 29900
BAD_ATT = ra.ACME_ERR + "badAttestationStatement"
MALFORMED = ra.ACME_ERR + "malformed"
EAR_PROFILE = "tag:github.com,2023:veraison/ear"
EAR_TYPE = 'application/eat+jwt; eat_profile="%s"' % EAR_PROFILE
QUOTE_TYPE = "application/vnd.anvil.tpm2-quote+json"
AK_EKU = x509.ExtendedKeyUsage([AIK_EKU])
HAVE_SWTPM = bool(shutil.which("swtpm") and shutil.which("tpm2_createak"))
needs_swtpm = pytest.mark.skipif(not HAVE_SWTPM,
                                 reason="swtpm / tpm2-tools not installed (scripts/install-deps.sh)")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_es256(key, claims):
    hdr = b64u(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    der = key.sign(("%s.%s" % (hdr, body)).encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return "%s.%s.%s" % (hdr, body, b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big")))


def ear(nonce, status="affirming", iat=None, profile=EAR_PROFILE, **extra):
    """EAR claims (draft-fv-rats-ear): one submodule appraised by the
    Verifier with an AR4SI tier, the challenge's nonce as eat_nonce."""
    c = {"eat_profile": profile, "iat": int(time.time()) if iat is None else iat,
         "ear.verifier-id": {"developer": "https://anvil.test/test-verifier", "build": "suite"},
         "eat_nonce": nonce, "submods": {"device": {"ear.status": status}}}
    c.update(extra)
    return c


def cmw(jwt, typ=EAR_TYPE):
    """A JSON CMW collection (draft-ietf-rats-msg-wrap §5.2) of one record
    [media type, base64url(value)]."""
    return {"ar": [typ, b64u(jwt.encode())]}


@pytest.fixture(scope="module")
def world():
    d = tempfile.mkdtemp(prefix="rats-")
    tpm = None
    try:
        cfg = {}
        if HAVE_SWTPM:
            tpm = SwTpm(os.path.join(d, "tpm"))
            tpm.setup()
            ak_ca, rogue_ca = AttCA("Test AK CA"), AttCA("Rogue AK CA")
            with open(os.path.join(d, "tpm_roots.pem"), "wb") as f:
                f.write(ak_ca.pem())
            # the reference value: PCRs 0-7 as the fresh TPM has them
            tpm.tool("tpm2_pcrread", "sha256:0,1,2,3,4,5,6,7", "-o", "pcrs.bin")
            with open(os.path.join(d, "tpm", "pcrs.bin"), "rb") as f:
                golden = hashlib.sha256(f.read()).hexdigest()
            cfg = {"va.json:attestation": {"tpm_roots": os.path.join(d, "tpm_roots.pem")},
                   "va.json:rats.tpm_pcr_digests": [golden]}
        with anvil_env.AnvilEnv(port_base=PORT_BASE, name="rats", config=cfg) as env:
            with open(os.path.join(anvil_env.TOP, "configs", "dev", "rats-verifier.key"), "rb") as f:
                vkey = serialization.load_pem_private_key(f.read(), None)
            w = {"env": env, "raw": ra.Wfe(env.directory_url, verify=env.trust_path), "vkey": vkey}
            if tpm is not None:
                w.update(tpm=tpm, ak_cert=ak_ca.issue(tpm.ak_pub, [(AK_EKU, False)]),
                         rogue_ak_cert=rogue_ca.issue(tpm.ak_pub, [(AK_EKU, False)]))
            yield w
    finally:
        if tpm is not None:
            tpm.close()
        shutil.rmtree(d, ignore_errors=True)


def rats_order(w, hint="hsm", with_dns=False):
    """newOrder with a remote-attestation identifier (§3.1), in the dev
    "attested" profile. Returns key, kid, order URL, order, the RATS
    authz URL and its remote-attest-01 challenge."""
    key, kid = ra.new_account(w["raw"])
    idents = [{"type": "remote-attestation", "value": hint}]
    if with_dns:
        idents.insert(0, {"type": "dns", "value": "rats%s.example" % os.urandom(3).hex()})
    r = ra.post_order(w["raw"], key, kid, idents, "attested")
    assert r.status_code == 201, r.text
    order = r.json()
    for az in order["authorizations"]:
        a = w["raw"].post(az, None, key, kid=kid).json()
        if a["identifier"]["type"] == "remote-attestation":
            chs = [c for c in a["challenges"] if c["type"] == "remote-attest-01"]
            assert len(chs) == 1, a
            return key, kid, r.headers["Location"], order, az, chs[0]
    raise AssertionError("no remote-attestation authorization: %r" % order)


def answer(w, key, kid, ch, payload):
    r = w["raw"].post(ch["url"], payload, key, kid=kid)
    assert r.status_code == 200, r.text
    return ra.poll(w["raw"], key, kid, ch["url"].replace("/chall/", "/authz/").rsplit("/", 1)[0],
                   ("valid", "invalid"))


def assert_refused(authz, typ, why):
    assert authz["status"] == "invalid", authz
    err = authz["challenges"][0]["error"]
    assert err["type"] == typ, err
    assert why in err["detail"], err


def test_challenge_object(world):
    # §2.2.1: "freshness_nonce (required, string): A randomly created
    # nonce provided by the server which MUST be included in the
    # Attestation Results to provide freshness."
    _, _, _, order, _, ch = rats_order(world)
    assert ch["status"] == "pending"
    assert len(base64.urlsafe_b64decode(ch["freshness_nonce"] + "==")) >= 16, ch
    # §2.1: the identifier carries the property hint
    assert {"type": "remote-attestation", "value": "hsm"} in order["identifiers"]


def test_attestation_result_validates(world):
    # §3.4: "The Server MUST perform a full verification of the remote
    # attestation data, including verification of the signature against
    # a pre-configured trust anchor, and appraisal according to a
    # suitable appraisal policy."
    w = world
    key, kid, _, _, az, ch = rats_order(w)
    authz = answer(w, key, kid, ch, cmw(jwt_es256(w["vkey"], ear(ch["freshness_nonce"]))))
    assert authz["status"] == "valid", authz
    rec = ra.sa_authz(w["env"], az)["challenges"][0]["validation_record"][0]
    assert rec["model"] == "passport" and rec["status"] == "affirming", rec
    assert rec["hint"] == "hsm" and "suite" in rec["verifier"], rec


def test_certificate_without_the_attestation_identifier(world):
    # Security Considerations: the identifier "does not result in any
    # specific contents to the certificate Subject or SubjectAltName";
    # §3.5: the other challenges are still needed (dns-01 here).
    w = world
    key, kid, url, order, az, ch = rats_order(w, hint="measured-boot", with_dns=True)
    # §3.1's examples spell "measured-boot", §7.1's registry "measured_boot"
    assert {"type": "remote-attestation", "value": "measured_boot"} in order["identifiers"]
    name = [i["value"] for i in order["identifiers"] if i["type"] == "dns"][0]
    assert answer(w, key, kid, ch, cmw(jwt_es256(w["vkey"], ear(ch["freshness_nonce"]))))[
        "status"] == "valid"
    dns_az = [a for a in order["authorizations"] if a != az][0]
    a = w["raw"].post(dns_az, None, key, kid=kid).json()
    dch = [c for c in a["challenges"] if c["type"] == "dns-01"][0]
    ka = "%s.%s" % (dch["token"], key.thumbprint())
    w["env"].challtest("set-txt", {"host": "_acme-challenge.%s." % name,
                                   "value": b64u(hashlib.sha256(ka.encode()).digest())})
    assert w["raw"].post(dch["url"], {}, key, kid=kid).status_code == 200
    assert ra.poll(w["raw"], key, kid, dns_az, ("valid", "invalid"))["status"] == "valid"
    ready = ra.poll(w["raw"], key, kid, url, ("ready", "invalid"))
    assert ready["status"] == "ready", ready
    _, pem, _ = ra.finalize(w["raw"], key, kid, url, ready, names=[name])
    leaf = x509.load_pem_x509_certificate(pem.encode())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.DNSName(name)], san
    # an attestation is evidence of now: a later order asks again
    r = ra.post_order(w["raw"], key, kid, order["identifiers"], "attested")
    assert r.status_code == 201, r.text
    again = [w["raw"].post(x, None, key, kid=kid).json() for x in r.json()["authorizations"]]
    assert [x["status"] for x in again if x["identifier"]["type"] == "remote-attestation"] == [
        "pending"], again


def test_wrong_nonce_is_refused(world):
    w = world
    key, kid, _, _, _, ch = rats_order(w)
    authz = answer(w, key, kid, ch, cmw(jwt_es256(w["vkey"], ear(ch["freshness_nonce"] + "x"))))
    assert_refused(authz, BAD_ATT, "eat_nonce is not the challenge's freshness_nonce")


def test_replayed_result_is_refused(world):
    # A result accepted for one challenge cannot satisfy another: its
    # eat_nonce is the first challenge's freshness_nonce.
    w = world
    key, kid, _, _, _, ch = rats_order(w)
    payload = cmw(jwt_es256(w["vkey"], ear(ch["freshness_nonce"])))
    assert answer(w, key, kid, ch, payload)["status"] == "valid"
    key2, kid2, _, _, _, ch2 = rats_order(w)
    assert_refused(answer(w, key2, kid2, ch2, payload), BAD_ATT, "eat_nonce")


def test_untrusted_verifier_is_refused(world):
    w = world
    key, kid, _, _, _, ch = rats_order(w)
    rogue = ec.generate_private_key(ec.SECP256R1())
    authz = answer(w, key, kid, ch, cmw(jwt_es256(rogue, ear(ch["freshness_nonce"]))))
    assert_refused(authz, BAD_ATT, "does not verify with any trusted key")


@pytest.mark.parametrize("claims,why", [
    ({"status": "contraindicated"}, 'the appraisal is "contraindicated" for submod "device"'),
    ({"status": "warning"}, 'the appraisal is "warning"'),
    ({"iat": int(time.time()) - 3600}, "s old (rats.max_age: 300 s)"),
    ({"profile": "tag:example.com,2024:other"}, "eat_profile is not"),
    ({"exp": int(time.time()) - 10}, "has expired"),
])
def test_appraisal_refusals(world, claims, why):
    w = world
    key, kid, _, _, _, ch = rats_order(w)
    authz = answer(w, key, kid, ch, cmw(jwt_es256(w["vkey"], ear(ch["freshness_nonce"], **claims))))
    assert_refused(authz, BAD_ATT, why)


@pytest.mark.parametrize("payload,typ,why", [
    # §2.2.2: "The HTTP POST body to the challenge URL MUST be a raw JSON
    # or CBOR CMW"
    ({}, MALFORMED, "not a JSON CMW collection"),
    ({"ar": "not-a-record"}, MALFORMED, "is not a JSON CMW record"),
    ({"ar": [EAR_TYPE, "%%%"]}, MALFORMED, "not base64url"),
    ({"ar": [EAR_TYPE, b64u(b"a.b")]}, BAD_ATT, "not a compact JWS"),
    ({"ar": ["application/x-unknown", b64u(b"x")]}, BAD_ATT, 'no verifier for "application/x-unknown"'),
    ({"ar": [30001, b64u(b"x")]}, BAD_ATT, "not CoAP content-formats"),
])
def test_malformed_responses_are_refused(world, payload, typ, why):
    w = world
    key, kid, _, _, _, ch = rats_order(w)
    assert_refused(answer(w, key, kid, ch, payload), typ, why)


def test_unregistered_hint_is_refused(world):
    # §2.1 value: "A string from the ACME Attest Claims Hint Registry"
    w = world
    key, kid = ra.new_account(w["raw"])
    r = ra.post_order(w["raw"], key, kid, [{"type": "remote-attestation", "value": "firmware"}],
                      "attested")
    assert r.status_code == 400 and r.json()["type"].endswith(":rejectedIdentifier"), r.text
    # the empty hint ("attestation without being specific", §7.1) is fine
    _, _, _, order, _, _ = rats_order(w, hint="")
    assert {"type": "remote-attestation", "value": ""} in order["identifiers"]


# ------------------------------------------------- background-check model


def quote_cmw(w, nonce, ak_cert=None, pcrs=range(8)):
    q, sig = w["tpm"].quote(hashlib.sha256(nonce.encode()).digest(), pcrs)
    ev = {"x5c": [b64u(ak_cert or w["ak_cert"])], "alg": -7, "quote": b64u(q), "sig": b64u(sig)}
    return {"evidence": [QUOTE_TYPE, b64u(json.dumps(ev).encode())]}


@needs_swtpm
def test_tpm_quote_evidence_validates(world):
    # §1: the server may consume evidence directly (RFC 9334 background
    # check); §2.2.1: "The Client SHOULD use the provided freshness_nonce
    # as an attestation freshness nonce"
    w = world
    key, kid, _, _, az, ch = rats_order(w, hint="measured_boot")
    assert answer(w, key, kid, ch, quote_cmw(w, ch["freshness_nonce"]))["status"] == "valid"
    rec = ra.sa_authz(w["env"], az)["challenges"][0]["validation_record"][0]
    assert rec["model"] == "background-check" and rec["status"] == "affirming", rec


@needs_swtpm
def test_tpm_quote_wrong_nonce_and_replay_are_refused(world):
    w = world
    key, kid, _, _, _, ch = rats_order(w)
    assert_refused(answer(w, key, kid, ch, quote_cmw(w, ch["freshness_nonce"] + "x")), BAD_ATT,
                   "wrong nonce")
    key, kid, _, _, _, ch = rats_order(w)
    evidence = quote_cmw(w, ch["freshness_nonce"])
    assert answer(w, key, kid, ch, evidence)["status"] == "valid"
    key2, kid2, _, _, _, ch2 = rats_order(w)
    assert_refused(answer(w, key2, kid2, ch2, evidence), BAD_ATT, "wrong nonce")


@needs_swtpm
def test_tpm_quote_untrusted_ak_is_refused(world):
    w = world
    key, kid, _, _, _, ch = rats_order(w)
    authz = answer(w, key, kid, ch, quote_cmw(w, ch["freshness_nonce"], ak_cert=w["rogue_ak_cert"]))
    assert_refused(authz, BAD_ATT, "does not chain to a configured tpm root")


@needs_swtpm
def test_tpm_quote_unknown_measurement_is_contraindicated(world):
    # §3.4: "appraisal according to a suitable appraisal policy": PCR 9
    # measured something the reference values do not know
    w = world
    w["tpm"].pcr_extend(9, b"unexpected boot component")
    key, kid, _, _, _, ch = rats_order(w)
    authz = answer(w, key, kid, ch, quote_cmw(w, ch["freshness_nonce"], pcrs=range(10)))
    assert_refused(authz, BAD_ATT, 'the appraisal is "contraindicated" for PCR digest')
