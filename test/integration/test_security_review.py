"""Fixes from the outside security review (issue 19), end to end.

One Anvil (sa/ca/va/ra/wfe through the launcher, real PostgreSQL), the VA
in always-valid mode so orders become ready without a responder. Each test
fails on the code before issue 19 and names the defect it guards; each is
listed in docs/security.md.

Ports: AnvilEnv base 29200 (range 29200-29299).
"""
import calendar
import os
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402
from rel_acme import problem  # noqa: E402

PORT_BASE = 29200


@pytest.fixture(scope="module")
def env():
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="secreview", config={
            "va.json:test.always_valid": True}) as e:
        yield e
        reports = a.stop_and_sanitizer_reports(e)
        assert not reports, "sanitizer reports in the service logs:\n" + "\n".join(reports[:40])


@pytest.fixture(scope="module")
def raw(env):
    return a.Wfe(env.directory_url, verify=env.trust_path)


def account(raw):
    return a.new_account(raw)


def evil(url):
    """The same URL on a host that is not this server's."""
    rest = url.split("://", 1)[1].split("/", 1)[1]
    return "https://ca.evil.example/" + rest


# ------------------------------------------------- JWS url bound to this server

def test_url_of_a_foreign_host_relayed_with_its_host_header(env, raw):
    """RFC 8555 §6.4: "the server MUST reject the request as unauthorized"
    when the "url" header does not match the URL of the request; the URL of
    the request is this server's (base_url or a configured alias), not
    whatever Host header a relay puts on it. A deactivation signed for
    https://ca.evil.example/acme/acct/N and relayed with
    Host: ca.evil.example must not deactivate account N."""
    k, kid = account(raw)
    hdr = {"Host": "ca.evil.example"}
    # kid of this server, url of the other one
    body = k.jws(evil(kid), {"status": "deactivated"}, nonce=raw.nonce(), kid=kid)
    problem(raw.post_raw(kid, body, headers=hdr), 403, "unauthorized")
    # kid and url both of the other host
    body = k.jws(evil(kid), {"status": "deactivated"}, nonce=raw.nonce(), kid=evil(kid))
    r = raw.post_raw(kid, body, headers=hdr)
    assert r.status_code in (400, 403), r.text
    assert r.json()["type"] in ("urn:ietf:params:acme:error:unauthorized",
                                "urn:ietf:params:acme:error:malformed",
                                "urn:ietf:params:acme:error:accountDoesNotExist"), r.text
    assert a.sa_account(env, kid)["status"] == "valid"
    # the listed alias (hosts: 127.0.0.1:<port>) still works, with its own url
    alias = kid.replace("localhost", "127.0.0.1")
    r = raw.post_raw(kid, k.jws(alias, None, nonce=raw.nonce(), kid=kid),
                     headers={"Host": alias.split("/")[2]})
    assert r.status_code == 200, r.text
    assert a.sa_account(env, kid)["status"] == "valid"


# ------------------------------------------- account status only after the signature

def test_account_status_not_told_before_the_signature(env, raw):
    """A request signed by the wrong key gets the same answer whether the
    account it names is valid or deactivated: the status is told only to
    whoever holds the account key."""
    k1, kid1 = account(raw)
    k2, kid2 = account(raw)
    r = raw.post(kid2, {"status": "deactivated"}, k2, kid=kid2)
    assert r.status_code == 200 and r.json()["status"] == "deactivated", r.text
    stranger = a.Key()
    r_valid = raw.post(kid1, None, stranger, kid=kid1)
    r_deact = raw.post(kid2, None, stranger, kid=kid2)
    assert r_valid.status_code in (400, 403), r_valid.text
    assert (r_deact.status_code, r_deact.json()["type"]) == \
        (r_valid.status_code, r_valid.json()["type"]), (r_valid.text, r_deact.text)
    assert "deactivated" not in r_deact.text
    # the key holder still learns it (RFC 8555 §7.3.6: unauthorized)
    problem(raw.post(kid2, None, k2, kid=kid2), 403, "unauthorized")


# ------------------------------------------------------- subscriber CRL reasons

@pytest.mark.parametrize("reason", [2, 6, 8, 9, 10])
def test_subscriber_cannot_choose_operator_reasons(env, raw, reason):
    """Baseline Requirements §7.2.2: the subscriber may choose unspecified,
    keyCompromise, affiliationChanged, superseded or cessationOfOperation;
    cACompromise, certificateHold, removeFromCRL, privilegeWithdrawn and
    aACompromise are not theirs. RFC 8555 §7.6: "If the server does not
    support the provided reason code, it MUST reject the request with an
    error of type badRevocationReason". Neither the account nor the
    certificate's key may use them; the certificate stays good."""
    k, kid = account(raw)
    cert = a.issue(raw, k, kid, ["r%d.reason.test" % reason])
    der = a.leaf_der_b64(cert["leaf"])
    problem(raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": reason}, k, kid=kid),
            400, "badRevocationReason")
    problem(raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": reason},
                     a.Key(priv=cert["cert_key"])), 400, "badRevocationReason")
    assert a.sa_cert(env, cert["leaf"])["status"] == "good"
    # a subscriber reason still works
    r = raw.post(raw.dir["revokeCert"], {"certificate": der, "reason": 4}, k, kid=kid)
    assert r.status_code == 200, r.text
    c = a.sa_cert(env, cert["leaf"])
    assert c["status"] == "revoked" and c.get("revoked_reason", c.get("reason")) in (4, None), c


# ------------------------------------------------------- order validity window

def _rfc3339(t):
    import time as _t
    return _t.strftime("%Y-%m-%dT%H:%M:%SZ", _t.gmtime(t))


def _order_then_issue(raw, k, kid, name, nb, na):
    """newOrder with notBefore/notAfter; returns None if refused at
    newOrder (400 malformed), else the finalized order (which must be
    valid: an accepted window must never fail at finalize)."""
    body = {"identifiers": [{"type": "dns", "value": name}], "notAfter": _rfc3339(na)}
    if nb is not None:
        body["notBefore"] = _rfc3339(nb)
    r = raw.post(raw.dir["newOrder"], body, k, kid=kid)
    if r.status_code == 400:
        problem(r, 400, "malformed")
        return None
    assert r.status_code == 201, r.text
    url = r.headers["Location"]
    for az in r.json()["authorizations"]:
        ch = [c for c in raw.post(az, None, k, kid=kid).json()["challenges"] if c["type"] == "http-01"][0]
        assert raw.post(ch["url"], {}, k, kid=kid).status_code == 200
    order = a.poll(raw, k, kid, url, ("ready",))
    k2 = ec.generate_private_key(ec.SECP256R1())
    r = raw.post(order["finalize"], {"csr": a.b64(a.make_csr(k2, [name]))}, k, kid=kid)
    assert r.status_code == 200, r.text
    done = a.poll(raw, k, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", "accepted at newOrder, refused at finalize: %s" % done
    return done


def test_order_with_the_maximum_validity_issues(env, raw):
    """The classic profile (90d, 1h backdate). RFC 5280 §4.1.2.5: the
    validity period is "from notBefore through notAfter, inclusive", so
    the longest window is notAfter = notBefore + 90d - 1s. That order
    issues with exactly those times; one second more, or a notAfter of
    now + 90d with the default backdated notBefore, is refused at newOrder,
    never accepted and then made invalid at finalize."""
    import time as _t
    from cryptography import x509
    k, kid = account(raw)
    v = 90 * 86400
    nb = int(_t.time())
    done = _order_then_issue(raw, k, kid, "max.validity.test", nb, nb + v - 1)
    assert done is not None
    pem = raw.post(done["certificate"], None, k, kid=kid).text
    leaf = x509.load_pem_x509_certificate(pem.encode())
    assert calendar.timegm(leaf.not_valid_before.timetuple()) == nb
    assert calendar.timegm(leaf.not_valid_after.timetuple()) == nb + v - 1
    # one second too long: refused up front (or, if accepted, issued)
    _order_then_issue(raw, k, kid, "over.validity.test", nb, nb + v)
    # notAfter only: the CA backdates notBefore by the profile's 1h
    _order_then_issue(raw, k, kid, "na.validity.test", None, int(_t.time()) + v)
