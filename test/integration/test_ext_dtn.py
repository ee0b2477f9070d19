"""RFC 9891 bp-nodeid-00 (DTN Node ID validation) end to end over HTTPS
(issue #24): bundleEID identifiers, the challenge object, the Challenge
Bundle the VA sends over TCPCLv4 to the test DTN node of lib/dtn_node.py
(a BPv7 agent written here with cbor2), the Response Bundle checks, and
the bundle security certificate (BundleEID otherName, id-kp-bundleSecurity).

Ports: AnvilEnv base 30000 (WFE 30031); the DTN node listens on an
ephemeral loopback port that va.json bp.routes points at.
"""
import base64
import os
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import dtn_node  # noqa: E402
import rel_acme as ra  # noqa: E402

PORT_BASE = 30000
INCORRECT = "urn:ietf:params:acme:error:incorrectResponse"
MALFORMED = "urn:ietf:params:acme:error:malformed"
REJECTED = "urn:ietf:params:acme:error:rejectedIdentifier"
BUNDLE_EID = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.11")     # id-on-bundleEID
BUNDLE_SECURITY = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.35")  # id-kp-bundleSecurity
VA_NODE = "dtn://anvil-va.test/"
NODES = ("dtn://dtn-node.test/", "ipn:977000.0", "dtn://other.test/")


@pytest.fixture(scope="module")
def world():
    node = dtn_node.DtnNode("dtn://dtn-node.test/")
    route = "127.0.0.1:%d" % node.port
    cfg = {"va.json:bp": {"node_id": VA_NODE, "response_interval": "5s",
                          "min_interval": "1s", "max_interval": "10s",
                          "routes": {n: route for n in NODES}}}
    try:
        with anvil_env.AnvilEnv(port_base=PORT_BASE, name="dtn", config=cfg) as env:
            raw = ra.Wfe(env.directory_url, verify=env.trust_path)
            yield {"env": env, "raw": raw, "node": node}
    finally:
        node.close()


def bundle_order(w, value, profile="dtn"):
    key, kid = ra.new_account(w["raw"])
    r = w["raw"].post(w["raw"].dir["newOrder"],
                      {"identifiers": [{"type": "bundleEID", "value": value}],
                       "profile": profile}, key, kid=kid)
    assert r.status_code == 201, r.text
    order = r.json()
    authz = w["raw"].post(order["authorizations"][0], None, key, kid=kid).json()
    ch = [c for c in authz["challenges"] if c["type"] == "bp-nodeid-00"]
    assert ch, authz
    return key, kid, r.headers["Location"], order, order["authorizations"][0], ch[0]


def attempt(w, value, mode="good", response=None):
    """Client steps of RFC 9891 §4.1.1: authorize the id-chal at the
    node (step 3), POST the response object (step 4), wait for the
    authorization. Returns (authz, key, kid, order url, order, challenge)."""
    key, kid, url, order, az, ch = bundle_order(w, value)
    w["node"].authorize(ch["id-chal"], ch["token-chal"], key.thumbprint(), mode)
    r = w["raw"].post(ch["url"], response if response is not None else {"rtt": 0.5},
                      key, kid=kid)
    assert r.status_code == 200, r.text
    authz = ra.poll(w["raw"], key, kid, az, ("valid", "invalid"))
    return authz, key, kid, url, order, ch


def assert_refused(authz, why):
    # §4.4: "Regardless of whether a validation is single- or
    # multi-perspective, a validation failure SHALL be indicated by an
    # ACME error type of "incorrectResponse"."
    assert authz["status"] == "invalid", authz
    err = authz["challenges"][0]["error"]
    assert err["type"] == INCORRECT, err
    assert why in err["detail"], err


def bundle_csr(cert_key, node_id):
    """§7: "a subjectAltName extension of type otherName with a name form
    of BundleEID" (an IA5String); "the CSR SHOULD include an Extended Key
    Usage of id-kp-bundleSecurity"."""
    ia5 = bytes([0x16, len(node_id)]) + node_id.encode()
    return (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
            .add_extension(x509.SubjectAlternativeName([x509.OtherName(BUNDLE_EID, ia5)]),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([BUNDLE_SECURITY]), critical=False)
            .sign(cert_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def test_challenge_object_has_id_chal_and_token_chal(world):
    # §4.1: "id-chal (required, string) ... SHALL NOT contain any
    # characters outside the base64url alphabet"; "token-chal (required,
    # string): ... communicated to the ACME client only over the ACME
    # channel"; both "SHALL have at least 128 bits of entropy".
    _, _, _, _, _, ch = bundle_order(world, "dtn://dtn-node.test/")
    for name in ("id-chal", "token-chal"):
        v = ch[name]
        assert "=" not in v and len(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))) >= 16
    assert ch["id-chal"] != ch["token-chal"]
    assert ch["status"] == "pending"


def test_node_id_validates_and_the_certificate_names_it(world):
    w = world
    authz, key, kid, url, order, ch = attempt(w, "dtn://dtn-node.test/")
    assert authz["status"] == "valid", authz
    # the Challenge Bundle as the node received it (§4.2)
    primary, rec = w["node"].received[-1]
    # "The primary block flags SHALL indicate that the payload is an
    # administrative record" and "that user application acknowledgement
    # is requested"
    assert primary[1] & 0x02 and primary[1] & 0x20
    # "The Destination EID SHALL be the ACME-server-normalized Node ID";
    # "The Source Node ID SHALL indicate the Node ID of a BP agent of the
    # ACME server"
    assert dtn_node.eid_text(primary[3]) == "dtn://dtn-node.test/"
    assert dtn_node.eid_text(primary[4]) == VA_NODE
    # §4.1.2: "the response interval SHOULD be twice the RTT" (0.5 s ->
    # 1 s, also the lower limit) and the Lifetime "SHALL indicate the
    # response interval"
    assert primary[7] == 1000
    # "key 1 with value of ACME challenge id-chal, copied from the
    # challenge object, represented as a CBOR byte string"; token-bundle
    # "SHALL have at least 128 bits of entropy"; SHA-256 (-16) offered
    assert rec[1] == dtn_node.b64u_dec(ch["id-chal"])
    assert len(rec[2]) >= 16 and ch["token-chal"] not in repr(rec)
    assert rec[4] == [-16]
    rec_va = ra.sa_authz(w["env"], order["authorizations"][0])["challenges"][0]
    assert rec_va["validation_record"][0]["node_id"] == "dtn://dtn-node.test/"

    ra.poll(w["raw"], key, kid, url, ("ready",))
    cert_key = ec.generate_private_key(ec.SECP256R1())
    r = w["raw"].post(order["finalize"],
                      {"csr": ra.b64(bundle_csr(cert_key, "dtn://dtn-node.test/"))},
                      key, kid=kid)
    assert r.status_code == 200, r.text
    done = ra.poll(w["raw"], key, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    pem = w["raw"].post(done["certificate"], None, key, kid=kid).text
    leaf = x509.load_pem_x509_certificate(pem.encode())
    # §7: the certificate carries the NODE-ID as a BundleEID otherName
    # and "SHALL include an Extended Key Usage of id-kp-bundleSecurity"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    others = san.get_values_for_type(x509.OtherName)
    assert [(o.type_id, o.value) for o in others] == [
        (BUNDLE_EID, b"\x16\x14dtn://dtn-node.test/")]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [BUNDLE_SECURITY]


def test_ipn_node_id_validates(world):
    # §1: "Currently the URI schemes "dtn" and "ipn" ... are valid for a
    # singleton endpoint and thus a Node ID."
    authz = attempt(world, "ipn:977000.0")[0]
    assert authz["status"] == "valid", authz
    assert authz["identifier"] == {"type": "bundleEID", "value": "ipn:977000.0"}


def test_wrong_key_authorization_is_refused(world):
    # §4.3.2: "The response payload contains the expected Key
    # Authorization digest computed by the ACME server."
    assert_refused(attempt(world, "dtn://dtn-node.test/", "wrong-ka")[0],
                   "wrong key authorization digest")


def test_wrong_source_node_is_refused(world):
    # §4.3.2: "The Response Bundle Source Node ID is identical to the
    # Node ID being validated."
    assert_refused(attempt(world, "dtn://dtn-node.test/", "wrong-source")[0],
                   "source node ID dtn://impostor.test/ is not the Node ID")


def test_no_answer_fails_after_the_response_interval(world):
    # §4.3.2: "The lack of a response within the expected response
    # interval ... SHALL also be treated as a validation failure." rtt 0.5
    # -> 1 s (the lower limit of §4.1.2).
    assert_refused(attempt(world, "dtn://dtn-node.test/", "silent")[0],
                   "within the response interval of 1.0s")


def test_malformed_bundle_is_refused(world):
    assert_refused(attempt(world, "dtn://dtn-node.test/", "malformed")[0], "is malformed")


def test_node_without_a_route_is_refused(world):
    w = world
    key, kid, _, _, az, ch = bundle_order(w, "dtn://nowhere.test/")
    assert w["raw"].post(ch["url"], {}, key, kid=kid).status_code == 200
    assert_refused(ra.poll(w["raw"], key, kid, az, ("valid", "invalid")),
                   "No convergence-layer route to dtn://nowhere.test/")


def test_bad_rtt_is_malformed(world):
    # §4.1.2: "rtt (optional, number) ... The minimum RTT value SHALL be
    # zero."
    w = world
    key, kid, _, _, az, ch = bundle_order(w, "dtn://dtn-node.test/")
    assert w["raw"].post(ch["url"], {"rtt": -1}, key, kid=kid).status_code == 200
    authz = ra.poll(w["raw"], key, kid, az, ("valid", "invalid"))
    err = authz["challenges"][0]["error"]
    assert err["type"] == MALFORMED and "rtt" in err["detail"], err


@pytest.mark.parametrize("value,typ", [
    # §3: "Any "bundleEID" value which fails to properly percent-decode
    # SHALL be rejected with an ACME error type of "malformed"."
    ("dtn://node%zz/", MALFORMED),
    # "Any "bundleEID" value for which the scheme-specific part does not
    # match the scheme-specific syntax SHALL be rejected with ...
    # "malformed"."
    ("ipn:12", MALFORMED),
    # "Any "bundleEID" value which uses a scheme not handled by the ACME
    # server SHALL be rejected with an ACME error type of
    # "rejectedIdentifier"."
    ("https://example.test/", REJECTED),
    # §3.1: the profile "requires that the value hold a Node ID"
    ("ipn:977000.5", REJECTED),
])
def test_bad_identifiers_are_refused_at_new_order(world, value, typ):
    w = world
    key, kid = ra.new_account(w["raw"])
    r = w["raw"].post(w["raw"].dir["newOrder"],
                      {"identifiers": [{"type": "bundleEID", "value": value}], "profile": "dtn"},
                      key, kid=kid)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == typ, r.text


def test_identifier_is_normalized(world):
    # §3: "SHALL decode and normalize (based on scheme-specific syntax)"
    w = world
    key, kid = ra.new_account(w["raw"])
    r = w["raw"].post(w["raw"].dir["newOrder"],
                      {"identifiers": [{"type": "bundleEID", "value": "DTN://dtn-n%6Fde.test/"}],
                       "profile": "dtn"}, key, kid=kid)
    assert r.status_code == 201, r.text
    assert r.json()["identifiers"] == [{"type": "bundleEID", "value": "dtn://dtn-node.test/"}]


def test_tls_profiles_refuse_node_ids(world):
    # §7: node IDs go in bundle security certificates, not TLS ones
    w = world
    key, kid = ra.new_account(w["raw"])
    r = w["raw"].post(w["raw"].dir["newOrder"],
                      {"identifiers": [{"type": "bundleEID", "value": "dtn://dtn-node.test/"}]},
                      key, kid=kid)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == REJECTED and "Profile does not allow" in r.text, r.text
