"""ACME client steps shared by the device-attest-01 tests
(test_ext_attest.py, test_ext_attest_android.py): w is the test module's
world dict with "raw" (rel_acme.Wfe) and "env" (AnvilEnv)."""
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

import rel_acme as ra
from swtpm import PERMANENT_ID, b64u, permanent_identifier

BAD_ATT = "urn:ietf:params:acme:error:badAttestationStatement"


def device_order(w, value, typ="permanent-identifier"):
    return ra.order_challenge(w["raw"], {"type": typ, "value": value}, "device",
                              "device-attest-01")


def answer(w, key, kid, ch, att):
    r = w["raw"].post(ch["url"], {"attObj": b64u(att)}, key, kid=kid)
    assert r.status_code == 200, r.text
    return r


def wait_authz(w, key, kid, url):
    return ra.poll(w["raw"], key, kid, url, ("valid", "invalid"))


def key_authz(ch, key):
    return "%s.%s" % (ch["token"], key.thumbprint())


def assert_refused(authz, why):
    """§5: "If any of the steps fail, then the Server MUST respond to the
    Client with a "badAttestationStatement" error and set the status of
    the challenge object to "invalid". The Server MUST provide the reason
    for rejecting the challenge in the "detail" field"."""
    assert authz["status"] == "invalid", authz
    err = authz["challenges"][0]["error"]
    assert err["type"] == BAD_ATT, err
    assert why in err["detail"], err


def device_csr(cert_key, serial=None):
    """A CSR with the device's PermanentIdentifier in its SAN (§3.2), or
    none at all (§3.2: "Clients MAY omit identifiers of types
    permanent-identifier and hardware-module in the certificate signing
    request")."""
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if serial is not None:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.OtherName(PERMANENT_ID, permanent_identifier(serial))]), critical=True)
    return b.sign(cert_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def finalize(w, key, kid, order_url, order, csr):
    r = w["raw"].post(order["finalize"], {"csr": ra.b64(csr)}, key, kid=kid)
    return r
