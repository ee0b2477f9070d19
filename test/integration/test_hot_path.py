"""The issuance hot path in coarse steps (issue 18, docs/performance.md
"One issuance, call by call").

One issuance through the WFE, with the services' /metrics read around it:
the challenge POST is one SA call from the RA (sa.claim_challenge, which
checks ownership, account status and states in its statement), the
finalize does not read the authzs apart from the order nor ask for the key
block list apart from the claim, and the certificate's store makes the
order valid (no sa.finalize_order). Refusals keep their meaning without
the reads the WFE and the RA no longer make: another account's challenge
or order is a 404 and changes nothing, a deactivated account cannot start a
validation.

Counts of calls are behaviour (which RPCs a step makes), never timings.
Ports: AnvilEnv base 28600.
"""
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402
from anvilrpc import RpcError  # noqa: E402

RPC_RE = re.compile(r'^anvil_rpc_server_calls_total\{method="([^"]+)",result="([^"]*)"\} (\S+)$')


@pytest.fixture(scope="module")
def env():
    with anvil_env.AnvilEnv(port_base=28600, name="hotpath", config={
            "va.json:test.always_valid": True}) as e:
        yield e
        reports = a.stop_and_sanitizer_reports(e)
        assert not reports, "sanitizer reports in the service logs:\n" + "\n".join(reports[:40])


@pytest.fixture(scope="module")
def raw(env):
    return a.Wfe(env.directory_url, verify=env.trust_path)


def calls(env):
    """{method: calls so far} over every RPC server's /metrics."""
    out = {}
    for svc in ("sa", "ca", "va", "ra"):
        status, text = env.debug_get(svc)
        assert status == 200, text
        for line in text.splitlines():
            m = RPC_RE.match(line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(3))
    return out


def delta(before, after):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


def dom(tag):
    return "%s-%s.hot.example" % (tag, os.urandom(4).hex())


def test_one_issuance_in_coarse_steps(env, raw):
    key, kid = a.new_account(raw)
    name = dom("one")
    url, order = a.new_order(raw, key, kid, [name])
    az_url = order["authorizations"][0]
    az = raw.post(az_url, None, key, kid=kid).json()
    ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]

    c0 = calls(env)
    r = raw.post(ch["url"], {}, key, kid=kid)
    assert r.status_code == 200, r.text
    # RFC 8555 §7.5.1: "the server [...] responds with the challenge"; it
    # is processing (or already valid with an always-valid VA).
    assert r.json()["status"] in ("processing", "valid"), r.text
    a.poll(raw, key, kid, az_url, ("valid",))
    d = delta(c0, calls(env))
    # the WFE did not read the authz before, the RA neither: one claim
    assert d.get("sa.claim_challenge") == 1, d
    for gone in ("sa.set_authz_processing", "sa.get_account"):
        assert gone not in d, d
    assert d.get("sa.finalize_authz") == 1 and d.get("va.validate") == 1, d

    order = a.poll(raw, key, kid, url, ("ready",))
    c1 = calls(env)
    done, pem, _ = a.finalize(raw, key, kid, url, order, [name])
    d = delta(c1, calls(env))
    assert d.get("ra.finalize_order") == 1 and d.get("ca.issue") == 1, d
    assert d.get("sa.add_certificate") == 1 and d.get("sa.set_order_processing") == 1, d
    # the order became valid in the certificate's transaction; the authzs
    # came with the order; the key block list was asked in the claim
    for gone in ("sa.finalize_order", "sa.get_authzs", "sa.key_blocked"):
        assert gone not in d, d
    assert done["status"] == "valid"
    st = a.sa_order(env, url)
    assert st["status"] == "valid" and st["certificate_serial"], st
    assert "csr" not in st  # dropped when the order became valid


def test_foreign_challenge_and_order_are_404_and_unchanged(env, raw):
    key, kid = a.new_account(raw)
    other, okid = a.new_account(raw)
    url, order = a.new_order(raw, key, kid, [dom("own")])
    az_url = order["authorizations"][0]
    az = raw.post(az_url, None, key, kid=kid).json()
    ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
    # another account POSTs {} to the challenge: the same 404 as a missing
    # one (RFC 8555 §7.5.1 lets only the account that owns it respond)
    r = raw.post(ch["url"], {}, other, kid=okid)
    assert r.status_code == 404, r.text
    assert all(c["status"] == "pending" for c in a.sa_authz(env, az_url)["challenges"])
    # a challenge id that is not this authz's: 404, nothing started
    r = raw.post(re.sub(r"/\d+$", "/999999999", ch["url"]), {}, key, kid=kid)
    assert r.status_code == 404, r.text
    # and the same for a finalize of another account's (ready) order
    r = raw.post(ch["url"], {}, key, kid=kid)
    assert r.status_code == 200, r.text
    order = a.poll(raw, key, kid, url, ("ready",))
    csr = a.b64(a.make_csr(a.ec.generate_private_key(a.ec.SECP256R1()), [order["identifiers"][0]["value"]]))
    r = raw.post(order["finalize"], {"csr": csr}, other, kid=okid)
    assert r.status_code == 404, r.text
    assert a.sa_order(env, url)["status"] == "ready"
    # a missing order: 404
    r = raw.post(re.sub(r"/\d+$", "/999999999", order["finalize"]), {"csr": csr}, key, kid=kid)
    assert r.status_code == 404, r.text


def test_deactivated_account_cannot_start_a_validation(env):
    """The claim checks the account's status in its statement: an account
    deactivated after its order cannot start a validation through the RA
    (the WFE refuses it before, with 401; this is the RA/SA layer)."""
    ra = env.rpc("ra")
    key, kid = a.new_account(a.Wfe(env.directory_url, verify=env.trust_path))
    aid = a.id_of(kid)
    o = ra.call("ra.new_order", {"account_id": aid,
                                 "identifiers": [{"type": "dns", "value": dom("deact")}]})
    az = o["authzs"][0]
    ch = az["challenges"][0]
    ra.call("ra.update_account", {"account_id": aid, "deactivate": True})
    with pytest.raises(RpcError) as e:
        ra.call("ra.perform_validation", {"account_id": aid, "authz_id": az["id"],
                                          "challenge_id": ch["id"]})
    assert e.value.type == "unauthorized"
    assert all(c["status"] == "pending" for c in a.sa_authz(env, az["id"])["challenges"])


def test_loadgen_renew_reuses_authorizations(env):
    """anvil-loadgen --renew (issue 18 item 4): after each worker's first
    issuance, every measured order is for the same names by the same
    account, and the server reuses the valid authorizations (RFC 8555
    §7.1.3 lets a server return existing authorizations): no challenge is
    posted and the VA is not called again."""
    import json
    import subprocess
    c0 = calls(env)
    p = subprocess.run([os.path.join(env.bin_dir, "anvil-loadgen"), "--directory", env.directory_url,
                        "--trust", env.trust_path, "--no-responder", "--clients", "2", "--count", "6",
                        "--renew", "--json", "--timeout", "20s", "--issuance-timeout", "60s"],
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    rep = json.loads(p.stdout)
    assert rep["renew"] is True and rep["issued"] == 6 and rep["failed"] == 0, rep
    # the two first issuances (one per worker, before the window) posted a
    # challenge each; the six renewals none
    assert rep["latency"]["challenge"]["count"] == 2, rep["latency"]
    d = delta(c0, calls(env))
    assert d.get("va.validate") == 2 and d.get("ca.issue") == 8, d
