"""The issuance hot path in coarse steps (issue 18, docs/performance.md
"One issuance, call by call").

One issuance through the WFE, with the services' /metrics read around it:
the challenge POST is a read (sa.peek_challenge, which checks ownership,
account status and states in its statement), the VA and one write
(sa.record_validation: claim and result in one statement) when the VA
answers within validation.wait, else the claim and the result as two
writes (the RA counts which path it took), the
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
PATH_RE = re.compile(r'^anvil_ra_validation_path_total\{path="([^"]+)"\} (\S+)$')


@pytest.fixture(scope="module")
def env():
    # The WFE's caches at their longest ttl: a step's count is what the flow
    # costs while an entry is kept (docs/performance.md). With the default
    # 5 s, a busy machine stretching one issuance past 5 s made the WFE read
    # the account again (sa.get_account) inside whichever step came next,
    # or the authz/certificate a newOrder/finalize answer left for the next
    # read: a count that depends on the machine's speed.
    with anvil_env.AnvilEnv(port_base=28600, name="hotpath", config={
            "va.json:test.always_valid": True,
            "wfe.json:account_cache.ttl": "300s",
            "wfe.json:object_cache.ttl": "60s"}) as e:
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


def paths(env):
    """{path: validations so far} from the RA's /metrics (ra/authz.c)."""
    status, text = env.debug_get("ra")
    assert status == 200, text
    return {m.group(1): float(m.group(2)) for m in map(PATH_RE.match, text.splitlines()) if m}


def delta(before, after):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


def dom(tag):
    return "%s-%s.hot.example" % (tag, os.urandom(4).hex())


# Timers (recovery sweeps, STAR leases, CRLs, health) call the services
# too, and the WFE fetches the issuer list once (cached): left out of a
# step's count. The CA's CRL timer makes all shards at start and retries
# a failed pass within seconds (CRL_RETRY_MS), so on a busy machine its
# sa.next_crl_number, sa.revoked_by_shard and sa.store_crl can fall inside
# any step (a CI run saw sa.revoked_by_shard in newOrder's count).
BACKGROUND = ("stale", "star", "health", "crl", "revoked_by_shard", "ocsp",
              "get_issuers")


def step(env, fn):
    """(fn's result, {method: calls}) for the RPCs fn caused."""
    c0 = calls(env)
    out = fn()
    d = delta(c0, calls(env))
    return out, {k: v for k, v in d.items() if not any(b in k for b in BACKGROUND)}


def poll_counted(raw, key, kid, url, want, timeout=30):
    """a.poll that also says how many POST-as-GETs it made."""
    n, end = 0, a.time.time() + timeout
    while True:
        n += 1
        r = raw.post(url, None, key, kid=kid)
        assert r.status_code == 200, r.text
        if r.json()["status"] in want:
            return r.json(), n
        assert a.time.time() < end, r.text
        a.time.sleep(0.05)


# What each step of one issuance costs in RPCs (server side, every
# service): docs/performance.md "One issuance, call by call".
NEW_ORDER = {"ra.new_order": 1, "sa.new_order": 1}
# The challenge POST by the path the RA took (docs/performance.md): the VA
# answered within validation.wait (claim and result in one write), or not
# (the claim, then the result), which a busy machine may cause.
CHALLENGE = {
    "sync": {"ra.perform_validation": 1, "sa.peek_challenge": 1,
             "va.validate": 1, "sa.record_validation": 1},
    "fallback": {"ra.perform_validation": 1, "sa.peek_challenge": 1,
                 "va.validate": 1, "sa.claim_challenge": 1, "sa.finalize_authz": 1}}
# (no sa.reserve_serial: the claim reserved the serial the CA signs with;
# no sa.get_order: the RA finalizes an order it created from what it kept)
FINALIZE = {"ra.finalize_order": 1, "sa.set_order_processing": 1,
            "ca.issue": 1, "sa.add_certificate": 1}


def test_one_issuance_in_coarse_steps(env, raw):
    key, kid = a.new_account(raw)
    # The RA learns the CA's serial form (prefix, length) from the first
    # ca.issue after it starts; that one reserves its serial through the CA.
    a.issue(raw, key, kid, [dom("warm")])
    name = dom("one")
    # the WFE's account cache is filled by the first request (a kid
    # lookup that is not part of the flow: docs/performance.md)
    assert raw.post(kid, None, key, kid=kid).status_code == 200
    # newOrder: the account's status is checked by sa.new_order (no
    # sa.get_account), the authzs come back with the order
    (url, order), d = step(env, lambda: a.new_order(raw, key, kid, [name]))
    assert d == NEW_ORDER, d
    az_url = order["authorizations"][0]
    # the WFE kept the authz of its newOrder answer for this read
    az, d = step(env, lambda: raw.post(az_url, None, key, kid=kid).json())
    assert d == {}, d
    assert az["status"] == "pending" and az["challenges"], az
    ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]

    def challenge():
        r = raw.post(ch["url"], {}, key, kid=kid)
        assert r.status_code == 200, r.text
        # RFC 8555 §7.5.1: "the server [...] responds with the
        # challenge"; processing (or already valid, always-valid VA).
        assert r.json()["status"] in ("processing", "valid"), r.text
        return r.json()["status"], poll_counted(raw, key, kid, az_url, ("valid",))
    p0 = paths(env)
    (answered, (_, polls)), d = step(env, challenge)
    took = delta(p0, paths(env))
    assert len(took) == 1 and list(took.values()) == [1], took
    path = list(took)[0]
    # the read (ownership, account status, states in its statement), the
    # VA, then one write (claim and result) or, when the VA was slower
    # than validation.wait, the claim and the result; each poll of the
    # authz is one sa.get_authz
    assert d == dict(CHALLENGE[path], **{"sa.get_authz": polls}), (path, d)
    # the one-write path answers the challenge with its result
    assert answered == ("valid" if path == "sync" else "processing"), (path, answered)

    (order, polls), d = step(env, lambda: poll_counted(raw, key, kid, url, ("ready",)))
    assert d == {"sa.get_order": polls}, d
    csr = a.b64(a.make_csr(a.ec.generate_private_key(a.ec.SECP256R1()), [name]))

    def finalize():
        r = raw.post(order["finalize"], {"csr": csr}, key, kid=kid)
        assert r.status_code == 200, r.text
        if r.json()["status"] == "valid":
            return r.json(), 0
        return poll_counted(raw, key, kid, url, ("valid", "invalid"))
    (done, polls), d = step(env, finalize)
    # no sa.get_account (the claim checks the account and that the CSR key
    # is not the account key), no sa.get_order (the RA created the order
    # and the claim checks what may have changed since), no sa.key_blocked
    # (the claim), no sa.finalize_order (the certificate's store makes the
    # order valid); the RA waits finalize.wait for the CA, so the answer is
    # normally the valid order: no poll (a busy machine may still poll)
    want = dict(FINALIZE)
    if polls:
        want["sa.get_order"] = polls
    assert d == want, d
    assert done["status"] == "valid"
    r, d = step(env, lambda: raw.post(done["certificate"], None, key, kid=kid))
    # a finalize answered valid left the certificate in the WFE's cache
    assert r.status_code == 200 and d == ({} if polls == 0 else {"sa.get_certificate": 1}), d
    assert r.text.startswith("-----BEGIN CERTIFICATE-----"), r.text[:200]
    st = a.sa_order(env, url)
    assert st["status"] == "valid" and st["certificate_serial"], st
    assert "csr" not in st  # dropped when the order became valid


def test_finalize_with_the_account_key_is_refused_and_the_order_stays_ready(env, raw):
    """RFC 8555 §11.1: "The server MUST NOT allow the account key to be
    used as the public key of a certificate". The RA no longer reads the
    account: the claim compares the CSR key's thumbprint with the
    account's and refuses before anything changes."""
    for kind in ("ec", "rsa"):
        key, kid = a.new_account(raw, key=a.h.Key(kind))
        name = dom("acctkey-" + kind)
        url, order = a.ready_order(raw, key, kid, [name])
        csr = a.b64(a.make_csr(key.priv, [name]))
        r = raw.post(order["finalize"], {"csr": csr}, key, kid=kid)
        assert r.status_code == 400, r.text
        assert r.json()["type"] == "urn:ietf:params:acme:error:badCSR", r.text
        assert "account key" in r.json()["detail"], r.text
        assert a.sa_order(env, url)["status"] == "ready"
    # The order is still ready: a finalize with another key issues. The
    # refused finalize used up what the RA kept of the order it created,
    # so this one reads the order (with its authzs, for the CAA re-check).
    csr = a.b64(a.make_csr(a.ec.generate_private_key(a.ec.SECP256R1()), [name]))
    r, d = step(env, lambda: raw.post(order["finalize"], {"csr": csr}, key, kid=kid))
    assert r.status_code == 200, r.text
    assert d.get("sa.get_order", 0) >= 1 and d.get("sa.set_order_processing") == 1, d
    assert a.poll(raw, key, kid, url, ("valid", "invalid"))["status"] == "valid"


def test_kept_authz_and_certificate_are_shown_to_their_account_only(env, raw):
    """The WFE keeps the authzs of a newOrder answer and the certificate of
    a finalize answer for one read (object_cache): another account still
    gets the 404 of a missing resource (RFC 8555 §7.5: an authorization is
    read by its account), and a deactivation through this WFE is seen at
    once (§7.5.2)."""
    key, kid = a.new_account(raw)
    other, okid = a.new_account(raw)
    name = dom("kept")
    url, order = a.new_order(raw, key, kid, [name])
    az_url = order["authorizations"][0]
    r = raw.post(az_url, None, other, kid=okid)
    assert r.status_code == 404, r.text
    r = raw.post(az_url, None, key, kid=kid)
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    # deactivated right after newOrder (nothing read in between): the next
    # read shows it deactivated, not the pending authz the WFE kept
    url2, order2 = a.new_order(raw, key, kid, [dom("kept-deact")])
    az2 = order2["authorizations"][0]
    r = raw.post(az2, {"status": "deactivated"}, key, kid=kid)
    assert r.status_code == 200 and r.json()["status"] == "deactivated", r.text
    r = raw.post(az2, None, key, kid=kid)
    assert r.status_code == 200 and r.json()["status"] == "deactivated", r.text
    # the certificate of a finalize answered valid
    a.answer_authzs(raw, key, kid, order)
    order = a.poll(raw, key, kid, url, ("ready",))
    csr = a.b64(a.make_csr(a.ec.generate_private_key(a.ec.SECP256R1()), [name]))
    r = raw.post(order["finalize"], {"csr": csr}, key, kid=kid)
    assert r.status_code == 200, r.text
    done = r.json() if r.json()["status"] == "valid" else a.poll(raw, key, kid, url, ("valid",))
    r = raw.post(done["certificate"], None, other, kid=okid)
    assert r.status_code == 404, r.text
    r = raw.post(done["certificate"], None, key, kid=kid)
    assert r.status_code == 200 and "BEGIN CERTIFICATE" in r.text, r.text


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


def test_claim_reserves_the_serial_the_ca_signs_with(env):
    """The order claim reserves the certificate's serial in its statement
    (sa.set_order_processing reserve_serial) and ca.issue signs with it:
    chosen before signing, durable before the signature, never used twice
    (a serial already reserved is not answered; one of another form is
    replaced by the CA's own reservation)."""
    ra, sa, ca = env.rpc("ra"), env.rpc("sa"), env.rpc("ca")
    key, kid = a.new_account(a.Wfe(env.directory_url, verify=env.trust_path))
    aid = a.id_of(kid)

    def claimed(name, serial):
        o = ra.call("ra.new_order", {"account_id": aid,
                                     "identifiers": [{"type": "dns", "value": name}]})
        az = o["authzs"][0]
        ra.call("ra.perform_validation", {"account_id": aid, "authz_id": az["id"],
                                          "challenge_id": az["challenges"][0]["id"]})
        end = a.time.time() + 30
        while sa.call("sa.get_order", {"id": o["id"]})["status"] != "ready":
            assert a.time.time() < end, "order %d not ready" % o["id"]
            a.time.sleep(0.05)
        csr = a.b64(a.make_csr(a.ec.generate_private_key(a.ec.SECP256R1()), [name]))
        c = sa.call("sa.set_order_processing", {"id": o["id"], "csr": csr,
                                                "reserve_serial": serial,
                                                "serial_expires": "2099-01-01T00:00:00Z"})
        return o, c, csr

    mine = "7f" + os.urandom(17).hex()
    o, c, csr = claimed(dom("ser"), mine)
    assert c["status"] == "processing" and c["reserved_serial"] == mine
    got = ca.call("ca.issue", {"csr": csr, "identifiers": o["identifiers"], "account_id": aid,
                               "order_id": o["id"], "finalize_order": True, "serial": mine})
    assert got["serial"] == mine and got.get("order_valid") is True
    assert sa.call("sa.get_order", {"id": o["id"]})["certificate_serial"] == mine
    # the same serial again: not reserved a second time (not answered)
    o2, c2, csr2 = claimed(dom("ser2"), mine)
    assert c2["status"] == "processing" and "reserved_serial" not in c2
    # a serial of another form (prefix 01): the CA signs with its own
    other = "01" + os.urandom(17).hex()
    got = ca.call("ca.issue", {"csr": csr2, "identifiers": o2["identifiers"], "account_id": aid,
                               "order_id": o2["id"], "finalize_order": True, "serial": other})
    assert got["serial"] not in (mine, other) and got["serial"].startswith("7f")
    for c in (ra, sa, ca):
        c.close()
