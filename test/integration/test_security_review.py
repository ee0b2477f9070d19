"""Fixes from the outside security review (issue 19), end to end.

One Anvil (sa/ca/va/ra/wfe through the launcher, real PostgreSQL), the VA
in always-valid mode so orders become ready without a responder. Each test
fails on the code before issue 19 and names the defect it guards; each is
listed in docs/security.md.

Ports: AnvilEnv base 29200 (range 29200-29299).
"""
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
