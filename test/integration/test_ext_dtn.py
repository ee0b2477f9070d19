"""RFC 9891 bp-nodeid-00 (DTN Node ID validation) end to end over HTTPS
(issue #24): bundleEID identifiers, the challenge object, the Challenge
Bundle the VA sends over TCPCLv4 to the test DTN node of lib/dtn_node.py
(a BPv7 agent written here with cbor2), the Response Bundle checks, and
the bundle security certificate (BundleEID otherName, id-kp-bundleSecurity),
and BPSec: the Block Integrity Blocks (RFC 9172, BIB-HMAC-SHA2 of RFC 9173)
the VA puts on its Challenge Bundles and requires on Response Bundles,
checked and made by the node's own Python implementation.

Ports: AnvilEnv base 30000 (WFE 30031); the DTN node listens on an
ephemeral loopback port that va.json bp.routes points at.
"""
import base64
import datetime
import hashlib
import hmac
import os
import ssl
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
VA_KEY, NODE_KEY, GW_KEY = os.urandom(32), os.urandom(32), os.urandom(32)


def bib_config():
    """va.json bp.bib: the VA's key and the trusted security sources, the
    node itself for its Node IDs and the integrity gateway of RFC 9891 §5
    for dtn://dtn-node.test/ only."""
    return {"keys": {"va": {"hex": VA_KEY.hex()}, "node": {"hex": NODE_KEY.hex()},
                     "gw": {"hex": GW_KEY.hex()}},
            "sign_key": "va", "hmac": 256,
            "sources": {"dtn://dtn-node.test/": {"key": "node"},
                        "ipn:977000.0": {"key": "node"},
                        dtn_node.GATEWAY: {"key": "gw", "nodes": ["dtn://dtn-node.test/"]}}}


def tls_ca():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "DTN test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def tls_context(tmp, ca, node_ids, name):
    """A node's server-side TLS context: an end-entity certificate from ca
    naming node_ids as NODE-IDs, "a subjectAltName ... of type otherName
    with a name form of BundleEID" (RFC 9174 §4.4.1)."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.OtherName(BUNDLE_EID, bytes([0x16, len(n)]) + n.encode()) for n in node_ids]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=True)
            .sign(ca_key, hashes.SHA256()))
    path = os.path.join(tmp, name + ".pem")
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(path)
    return ctx


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The node (TLS, certificate naming NODES), a node without TLS and
    one whose certificate chains to another CA; va.json bp.tls trusts
    the test CA and requires TLS."""
    tmp = str(tmp_path_factory.mktemp("dtn-tls"))
    ca = tls_ca()
    ca_file = os.path.join(tmp, "ca.pem")
    with open(ca_file, "wb") as f:
        f.write(ca[1].public_bytes(serialization.Encoding.PEM))
    node = dtn_node.DtnNode("dtn://dtn-node.test/", key=NODE_KEY,
                            trusted={VA_NODE: VA_KEY}, gateway_key=GW_KEY,
                            tls=tls_context(tmp, ca, NODES, "node"))
    plain = dtn_node.DtnNode("dtn://plain.test/")
    stranger = dtn_node.DtnNode("dtn://untrusted.test/", tls=tls_context(
        tmp, tls_ca(), ["dtn://untrusted.test/"], "stranger"))
    routes = {n: "127.0.0.1:%d" % node.port for n in NODES + ("dtn://unnamed.test/",)}
    routes["dtn://plain.test/"] = "127.0.0.1:%d" % plain.port
    routes["dtn://untrusted.test/"] = "127.0.0.1:%d" % stranger.port
    cfg = {"va.json:bp": {"node_id": VA_NODE, "response_interval": "5s",
                          "min_interval": "1s", "max_interval": "10s",
                          "routes": routes, "bib": bib_config(),
                          "tls": {"ca_file": ca_file, "required": True}}}
    try:
        with anvil_env.AnvilEnv(port_base=PORT_BASE, name="dtn", config=cfg) as env:
            raw = ra.Wfe(env.directory_url, verify=env.trust_path)
            yield {"env": env, "raw": raw, "node": node}
    finally:
        for n in (node, plain, stranger):
            n.close()


def bundle_order(w, value, profile="dtn"):
    return ra.order_challenge(w["raw"], {"type": "bundleEID", "value": value},
                              profile, "bp-nodeid-00")


# rtt 2.5 s -> a 5 s response interval: room for a busy machine. Tests
# that wait the interval out send SHORT (1 s, the lower limit of §4.1.2).
RTT = {"rtt": 2.5}
SHORT = {"rtt": 0.5}


def attempt(w, value, mode="good", response=None):
    """Client steps of RFC 9891 §4.1.1: authorize the id-chal at the
    node (step 3), POST the response object (step 4, RTT unless given),
    wait for the authorization. Returns (authz, key, kid, order url,
    order, challenge)."""
    key, kid, url, order, az, ch = bundle_order(w, value)
    w["node"].authorize(ch["id-chal"], ch["token-chal"], key.thumbprint(), mode)
    r = w["raw"].post(ch["url"], response if response is not None else RTT, key, kid=kid)
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
    primary, rec, bib = w["node"].received[-1]
    # "Challenge Bundles SHALL include a Block Integrity Block (BIB) ...
    # with a Security Source identical to the bundle Source Node"; §5:
    # "The BIB targets SHALL cover both the payload block and the primary
    # block (either directly as a target or as additional authenticated
    # data for the payload block MAC/signature)". The node verified its
    # HMAC with VA_KEY (dtn_node.bib_verify) before answering.
    assert bib is not None, w["node"].ignored
    assert bib["source"] == VA_NODE and bib["targets"] == [1], bib
    assert bib["scope"] == 7 and bib["variant"] == 5, bib  # HMAC 256/256
    # "The primary block flags SHALL indicate that the payload is an
    # administrative record" and "that user application acknowledgement
    # is requested"
    assert primary[1] & 0x02 and primary[1] & 0x20
    # "The Destination EID SHALL be the ACME-server-normalized Node ID";
    # "The Source Node ID SHALL indicate the Node ID of a BP agent of the
    # ACME server"
    assert dtn_node.eid_text(primary[3]) == "dtn://dtn-node.test/"
    assert dtn_node.eid_text(primary[4]) == VA_NODE
    # §4.1.2: "the response interval SHOULD be twice the RTT" (2.5 s ->
    # 5 s) and the Lifetime "SHALL indicate the response interval"
    assert primary[7] == 5000
    # "key 1 with value of ACME challenge id-chal, copied from the
    # challenge object, represented as a CBOR byte string"; token-bundle
    # "SHALL have at least 128 bits of entropy"; SHA-256 (-16) offered
    assert rec[1] == dtn_node.b64u_dec(ch["id-chal"])
    assert len(rec[2]) >= 16 and ch["token-chal"] not in repr(rec)
    assert rec[4] == [-16]
    rec_va = ra.sa_authz(w["env"], order["authorizations"][0])["challenges"][0]
    assert rec_va["validation_record"][0]["node_id"] == "dtn://dtn-node.test/"
    assert rec_va["validation_record"][0]["bib_source"] == "dtn://dtn-node.test/"
    # RFC 9174 §4.4: the TCPCL session ran over TLS (bp.tls)
    assert rec_va["validation_record"][0]["tls"] == "TLSv1.3"

    ra.poll(w["raw"], key, kid, url, ("ready",))
    cert_key = ec.generate_private_key(ec.SECP256R1())
    leaf = ra.finalize_leaf(w["raw"], key, kid, url, order,
                            bundle_csr(cert_key, "dtn://dtn-node.test/"))
    # §7: the certificate carries the NODE-ID as a BundleEID otherName
    # and "SHALL include an Extended Key Usage of id-kp-bundleSecurity"
    assert ra.other_names(leaf) == [(BUNDLE_EID, b"\x16\x14dtn://dtn-node.test/")]
    assert ra.eku_oids(leaf) == [BUNDLE_SECURITY]


def test_ipn_node_id_validates(world):
    # §1: "Currently the URI schemes "dtn" and "ipn" ... are valid for a
    # singleton endpoint and thus a Node ID."
    authz = attempt(world, "ipn:977000.0")[0]
    assert authz["status"] == "valid", authz
    assert authz["identifier"] == {"type": "bundleEID", "value": "ipn:977000.0"}


@pytest.mark.parametrize("node,mode,why", [
    # §4.3.2: "The response payload contains the expected Key
    # Authorization digest computed by the ACME server."
    ("dtn://dtn-node.test/", "wrong-ka", "wrong key authorization digest"),
    # "The Response Bundle Source Node ID is identical to the Node ID
    # being validated."
    ("dtn://dtn-node.test/", "wrong-source",
     "source node ID dtn://impostor.test/ is not the Node ID"),
    # "The lack of a response within the expected response interval ...
    # SHALL also be treated as a validation failure." rtt 0.5 -> 1 s (the
    # lower limit of §4.1.2).
    ("dtn://dtn-node.test/", "silent", "within the response interval of 1.0s"),
    ("dtn://dtn-node.test/", "malformed", "is malformed"),
    # BPSec. §4.3: "Response Bundles SHALL include a BIB"
    ("dtn://dtn-node.test/", "no-bib", "has no Block Integrity Block"),
    # §4.3.2: "That BIB has a security source which is trusted and passes
    # security-context-specific validation." An altered HMAC, another key:
    ("dtn://dtn-node.test/", "bad-bib", "the HMAC over block 1 does not verify"),
    ("ipn:977000.0", "wrong-key", "BIB from ipn:977000.0 that fails"),
    # "The Response Bundle contains a BIB which covers at least the primary
    # block and payload." (scope 0: the payload only)
    ("dtn://dtn-node.test/", "payload-only",
     "does not cover both the primary block and the payload"),
    # §5: "The receiver needs policy configuration to know which security
    # sources are permitted to attest for which bundle sources." The
    # gateway attests for dtn://dtn-node.test/ only (bib_config).
    ("ipn:977000.0", "gateway",
     "security source dtn://gw.test/ is not trusted for this Node ID"),
])
def test_bad_response_is_refused(world, node, mode, why):
    # §4.3.2: "Any of the failures above SHALL cause that
    # single-perspective validation to fail."
    assert_refused(attempt(world, node, mode, SHORT if mode == "silent" else None)[0], why)


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
    r = ra.post_order(w["raw"], key, kid, [{"type": "bundleEID", "value": value}], "dtn")
    assert r.status_code == 400, r.text
    assert r.json()["type"] == typ, r.text


def test_identifier_is_normalized(world):
    # §3: "SHALL decode and normalize (based on scheme-specific syntax)"
    w = world
    key, kid = ra.new_account(w["raw"])
    r = ra.post_order(w["raw"], key, kid,
                      [{"type": "bundleEID", "value": "DTN://dtn-n%6Fde.test/"}], "dtn")
    assert r.status_code == 201, r.text
    assert r.json()["identifiers"] == [{"type": "bundleEID", "value": "dtn://dtn-node.test/"}]


def test_tls_profiles_refuse_node_ids(world):
    # §7: node IDs go in bundle security certificates, not TLS ones
    w = world
    key, kid = ra.new_account(w["raw"])
    r = ra.post_order(w["raw"], key, kid, [{"type": "bundleEID", "value": "dtn://dtn-node.test/"}])
    assert r.status_code == 400, r.text
    assert r.json()["type"] == REJECTED and "Profile does not allow" in r.text, r.text


# ---------------- BPSec (RFC 9891 §4.2/§4.3/§5, RFC 9172, RFC 9173) ----------------

RFC9173_A1_BUNDLE = bytes.fromhex(
    "9f88070000820282010282028202018202820201820018281a000f4240850b020000"
    "5856810101018202820201828201078203008181820158403bdc69b3a34a2b5d3a85"
    "54368bd1e808f606219d2a10a846eae3886ae4ecc83c4ee550fdfb1cc636b904e2f1"
    "a73e303dcd4b6ccece003e95e8164dcc89a156e185010100005823526561647920746f"
    "2067656e657261746520612033322d62797465207061796c6f6164ff")


def test_node_bpsec_matches_rfc9173_example():
    """The test node's BIB code reproduces RFC 9173 Appendix A.1 (Simple
    Integrity: HMAC 512/512, key 1a2b..., scope 0), so the VA's BIBs are
    checked against the RFC, not against the VA's own code."""
    primary_raw, blocks = dtn_node.bundle_blocks(RFC9173_A1_BUNDLE)
    bib = dtn_node.bib_parse(blocks[1][4])
    assert (bib["targets"], bib["source"], bib["variant"], bib["scope"]) == (
        [1], "ipn:2.1", 7, 0)
    ippt = dtn_node.ippt(0, primary_raw, blocks[2], blocks[1][:3])
    assert ippt.hex() == ("005823526561647920746f2067656e657261746520612033322d"
                          "62797465207061796c6f6164")
    key = bytes.fromhex("1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b")
    assert hmac.new(key, ippt, hashlib.sha512).digest() == bib["macs"][0]


def test_integrity_gateway_bib_is_accepted_for_its_nodes(world):
    # §5: "The Security Source of this BIB SHALL be either the bundle
    # source Node ID itself or a routing node trusted by the destination
    # node"; "The receiver needs policy configuration to know which
    # security sources are permitted to attest for which bundle sources."
    authz, _, _, _, order, _ = attempt(world, "dtn://dtn-node.test/", "gateway")
    assert authz["status"] == "valid", authz
    rec = ra.sa_authz(world["env"], order["authorizations"][0])
    assert rec["challenges"][0]["validation_record"][0]["bib_source"] == dtn_node.GATEWAY


def test_node_ignores_a_challenge_whose_bib_fails(world):
    # §4.2.1: a proper Challenge Bundle "contains a BIB ... [that] passes
    # security-context-specific validation"; "Any of the failures above
    # SHALL cause the challenge bundle to be otherwise ignored by the BP
    # agent." The node checks with another key for the VA, ignores the
    # bundle, and the VA sees no response within the interval.
    n = len(world["node"].ignored)
    assert_refused(attempt(world, "dtn://dtn-node.test/", "distrust-va", SHORT)[0],
                   "within the response interval")
    assert world["node"].ignored[n:] == ["BIB HMAC mismatch"]


@pytest.mark.parametrize("node,why", [
    # RFC 9174 §4.3: "Enable TLS ... by taking the logical AND of the two
    # Contact Headers' CAN_TLS flags. A local security policy is then
    # applied": bp.tls.required refuses a node that does not offer TLS
    ("dtn://plain.test/", "does not offer TLS (CAN_TLS"),
    # the node's certificate must chain to bp.tls.ca_file
    ("dtn://untrusted.test/", "certificate verify failed"),
    # §4.4.3: the entity authenticates "the Node ID of the peer" through
    # the certificate's NODE-ID (§4.4.1: a BundleEID otherName); the node's
    # certificate names NODES, not this one
    ("dtn://unnamed.test/", "does not name it as a NODE-ID"),
])
def test_tcpcl_tls_refusals(world, node, why):
    assert_refused(attempt(world, node)[0], why)
