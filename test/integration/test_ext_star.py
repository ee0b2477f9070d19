"""RFC 8739 STAR (short-term, automatically renewed certificates), end to
end over HTTPS with the suite's raw ACME client (lib/rel_acme.py).

One Anvil (configs/dev) with the VA in always-valid mode and the STAR
knobs of ra.json made short for a test: min-lifetime 4 s and the renewal
scheduler looking every 300 ms, so an order with a lifetime of LIFETIME
seconds yields a new certificate every LIFETIME seconds (published half a
lifetime before the current one ends). A second anvil-ra on the same SA
and CA proves that two RAs never both renew one order.

Ports: AnvilEnv base 27800.
"""
import datetime
import email.utils
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402

PORT_BASE = 27800
LIFETIME = 12          # seconds: a new certificate every 12 s
MIN_LIFETIME = 4
MAX_DURATION = 7 * 86400


@pytest.fixture(scope="module")
def env():
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="star", config={
            "va.json:test.always_valid": True,
            "ra.json:star.min_lifetime": "%ds" % MIN_LIFETIME,
            "ra.json:star.max_duration": "%ds" % MAX_DURATION,
            "ra.json:star.poll_interval": "300ms",
            "ra.json:star.lease": "20s"}) as e:
        yield e
        a.assert_no_sanitizer_reports(e)


raw = a.raw_fixture()
acct = a.account_fixture()


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def star_order(raw, key, kid, names, auto_renewal, **extra):
    payload = {"identifiers": [{"type": "dns", "value": n} for n in names],
               "auto-renewal": auto_renewal}
    payload.update(extra)
    return raw.post(raw.dir["newOrder"], payload, key, kid=kid)


def issue_star(raw, key, kid, names, lifetime=LIFETIME, duration=600, allow_get=True,
               adjust=None):
    """A STAR order finalized to `valid`. Returns (order URL, order JSON,
    certificate key)."""
    ar = {"end-date": rfc3339(time.time() + duration), "lifetime": lifetime,
          "allow-certificate-get": allow_get}
    if adjust is not None:
        ar["lifetime-adjust"] = adjust
    r = star_order(raw, key, kid, names, ar)
    assert r.status_code == 201, r.text
    url = r.headers["Location"]
    a.answer_authzs(raw, key, kid, r.json(), "http-01")
    order = a.poll(raw, key, kid, url, ("ready",))
    cert_key = ec.generate_private_key(ec.SECP256R1())
    r = raw.post(order["finalize"], {"csr": a.b64(a.make_csr(cert_key, names))}, key, kid=kid)
    assert r.status_code == 200, r.text
    done = a.poll(raw, key, kid, url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    return url, done, cert_key


def leaf_of(pem):
    return x509.load_pem_x509_certificate(pem.encode())


def not_before(cert):
    return cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)


def not_after(cert):
    return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def nb_na(cert):
    return (int(not_before(cert).timestamp()), int(not_after(cert).timestamp()))


def sa_certs(env, order_url):
    res = env.rpc("sa").call("sa.get_certificates", {"order_id": a.id_of(order_url), "limit": 100})
    return res["certificates"]


def ts(s):
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


def collect(fetch, n, timeout):
    """Calls fetch() (-> PEM) until n distinct leaf certificates were seen;
    returns them in the order seen, each with the time it was first seen."""
    seen, out = set(), []
    end = time.time() + timeout
    while len(out) < n:
        assert time.time() < end, "only %d of %d certificates within %ds" % (len(out), n, timeout)
        leaf = leaf_of(fetch())
        if leaf.serial_number not in seen:
            seen.add(leaf.serial_number)
            out.append((leaf, time.time()))
        time.sleep(0.3)
    return out


def check_series(certs, lifetime, cert_key=None):
    """RFC 8739 §3.5: notAfter = nrd[i] + T, nrd[i+1] = nrd[i] + T, notBefore =
    nrd[i] - max(min(T, la), f*T); every next certificate overlaps the
    current one (published while it is still valid)."""
    for i, (leaf, _) in enumerate(certs):
        if cert_key is not None:
            assert leaf.public_key().public_numbers() == cert_key.public_key().public_numbers(), \
                "§3.2: renewals reuse the CSR (same public key)"
        if i == 0:
            continue
        prev_nb, prev_na = nb_na(certs[i - 1][0])
        nb, na = nb_na(leaf)
        assert na == prev_na + lifetime, ("nominal renewal dates T apart", i, prev_na, na)
        assert nb <= prev_na, "contiguous or overlapping validity"
        assert nb < prev_na, "overlapping: the next one is valid before the current one ends"
        assert prev_nb < nb


# ------------------------------------------------------------ directory

def test_directory_advertises_auto_renewal(raw):
    # RFC 8739 §3.4: 'The "auto-renewal" object MUST be present if the
    # server supports STAR.' with min-lifetime and max-duration (required).
    meta = raw.s.get(raw.directory_url).json()["meta"]
    ar = meta["auto-renewal"]
    assert ar["min-lifetime"] == MIN_LIFETIME
    assert ar["max-duration"] == MAX_DURATION
    assert ar["allow-certificate-get"] is True


# ------------------------------------------------------------ bad values

@pytest.mark.parametrize("case", [
    "lifetime_below_min", "no_end_date", "no_lifetime", "lifetime_string",
    "end_before_start", "end_in_past", "over_max_duration", "unknown_field",
    "adjust_negative", "allow_get_not_bool", "not_an_object", "lifetime_over_profile",
])
def test_bad_auto_renewal_values_refused(raw, acct, env, case):
    key, kid = acct
    now = time.time()
    ar = {"end-date": rfc3339(now + 3600), "lifetime": 60}
    if case == "lifetime_below_min":
        ar["lifetime"] = MIN_LIFETIME - 1
    elif case == "no_end_date":
        del ar["end-date"]
    elif case == "no_lifetime":
        del ar["lifetime"]
    elif case == "lifetime_string":
        ar["lifetime"] = "60"
    elif case == "end_before_start":
        ar["start-date"] = rfc3339(now + 7200)
    elif case == "end_in_past":
        ar["end-date"] = rfc3339(now - 60)
    elif case == "over_max_duration":
        ar["end-date"] = rfc3339(now + MAX_DURATION + 3600)
    elif case == "unknown_field":
        ar["renew-every"] = 5
    elif case == "adjust_negative":
        ar["lifetime-adjust"] = -1
    elif case == "allow_get_not_bool":
        ar["allow-certificate-get"] = "yes"
    elif case == "not_an_object":
        ar = [60]
    elif case == "lifetime_over_profile":
        ar["lifetime"] = 200 * 86400  # the default profile is 90 days
        ar["end-date"] = rfc3339(now + 300 * 86400)
    before = env.rpc("sa").call("sa.get_orders_by_account", {"account_id": a.id_of(kid)})["order_ids"]
    r = star_order(raw, key, kid, ["bad.star.test"], ar)
    a.problem(r, 400, "malformed")
    after = env.rpc("sa").call("sa.get_orders_by_account", {"account_id": a.id_of(kid)})["order_ids"]
    assert after == before, "a refused newOrder creates no order"


def test_not_before_after_forbidden_in_star_order(raw, acct):
    # RFC 8739 §3.1.1: "The optional notBefore and notAfter fields ... MUST
    # NOT be present in a STAR Order. If they are included, the server MUST
    # return an error with status code 400 "Bad Request" and type
    # "malformedRequest"" (ACME's "malformed").
    key, kid = acct
    ar = {"end-date": rfc3339(time.time() + 3600), "lifetime": 60}
    r = star_order(raw, key, kid, ["nb.star.test"], ar, notAfter=rfc3339(time.time() + 600))
    a.problem(r, 400, "malformed")


# ------------------------------------------------------------ the series

def test_consecutive_certificates_with_unauthenticated_get(raw, acct, env):
    key, kid = acct
    url, order, cert_key = issue_star(raw, key, kid, ["series.star.test"], allow_get=True)
    # §3.1.1: "star-certificate" is used instead of "certificate"; the
    # auto-renewal object is returned, allow-certificate-get reflected (§3.3).
    assert "certificate" not in order
    star_url = order["star-certificate"]
    assert order["auto-renewal"]["lifetime"] == LIFETIME
    assert order["auto-renewal"]["allow-certificate-get"] is True
    assert order["status"] == "valid"
    plain = a.Wfe(env.directory_url, verify=env.trust_path).s

    def fetch():
        # §3.3: "the client can simply issue a GET to the star-certificate
        # resource without authenticating itself"
        asked = time.time()  # no later than the server's answer
        r = plain.get(star_url, headers={"Accept": "application/pem-certificate-chain"})
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "application/pem-certificate-chain"
        leaf = leaf_of(r.text)
        # §3.2: Cert-Not-Before / Cert-Not-After "MUST be equal to the
        # respective fields inside the end-entity certificate", HTTP-date.
        nb = email.utils.parsedate_to_datetime(r.headers["Cert-Not-Before"])
        na = email.utils.parsedate_to_datetime(r.headers["Cert-Not-After"])
        assert nb == not_before(leaf) and na == not_after(leaf)
        assert r.headers["Cert-Not-Before"].endswith(" GMT")
        # §3.6: caches consider it stale no later than its end (max-age is
        # counted from the answer, which came after `asked`: measured from
        # the time the answer is read, a busy machine's delay would count)
        m = re.search(r"max-age=(\d+)", r.headers.get("Cache-Control", ""))
        assert m and int(m.group(1)) <= na.timestamp() - asked + 1, (m and m.group(1), na, asked)
        return r.text

    certs = collect(fetch, 3, timeout=4 * LIFETIME + 30)
    check_series(certs, LIFETIME, cert_key)
    for leaf, seen_at in certs:
        # §3.2: the next certificate "MUST be set so that the certificate is
        # already valid when it is published"
        assert not_before(leaf).timestamp() <= seen_at + 1
        assert not_after(leaf).timestamp() > seen_at
    # HEAD is allowed too (§3.3 "GET (and HEAD)").
    assert plain.head(star_url).status_code == 200
    # POST-as-GET always works as well (§3.3: "the server MUST also allow
    # POST-as-GET requests to the star-certificate resource").
    r = raw.post(star_url, None, key, kid=kid)
    assert r.status_code == 200, r.text
    assert nb_na(leaf_of(r.text))[1] >= nb_na(certs[-1][0])[1], "the current one, never an older one"
    # The database agrees: one certificate per nominal renewal date.
    stored = sa_certs(env, url)
    nas = [ts(c["not_after"]) for c in stored]
    assert len(nas) == len(set(nas)), "no two certificates for one renewal date"


def test_get_refused_without_allow_certificate_get(raw, acct, env):
    key, kid = acct
    url, order, _ = issue_star(raw, key, kid, ["postget.star.test"], allow_get=False)
    assert order["auto-renewal"]["allow-certificate-get"] is False
    star_url = order["star-certificate"]
    # §3.3: unauthenticated GET only when negotiated; POST-as-GET otherwise.
    r = a.Wfe(env.directory_url, verify=env.trust_path).s.get(star_url)
    assert r.status_code == 405, r.text
    assert r.headers.get("Allow") == "POST"
    r = raw.post(star_url, None, key, kid=kid)
    assert r.status_code == 200, r.text
    assert leaf_of(r.text).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == ["postget.star.test"]
    assert r.headers.get("Cert-Not-After")
    # Another account gets the same 404 as a missing order.
    other = a.new_account(raw)
    r = raw.post(star_url, None, other[0], kid=other[1])
    a.problem(r, 404, "malformed")


# ------------------------------------------------------------ cancellation

def test_cancel_stops_issuance(raw, acct, env):
    key, kid = acct
    url, order, _ = issue_star(raw, key, kid, ["cancel.star.test"], allow_get=True)
    star_url = order["star-certificate"]
    first = sa_certs(env, url)
    assert len(first) == 1
    # §3.1.2: POST {"status": "canceled"} to the order URL.
    r = raw.post(url, {"status": "canceled"}, key, kid=kid)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canceled"
    # "MUST set an appropriate "expires" date"
    assert ts(r.json()["expires"]) <= time.time() + 2
    assert a.poll(raw, key, kid, url, ("canceled",))["status"] == "canceled"
    # "MUST respond with 403 (Forbidden) to any requests to the
    # star-certificate endpoint ... type autoRenewalCanceled"
    a.problem(raw.post(star_url, None, key, kid=kid), 403, "autoRenewalCanceled")
    r = a.Wfe(env.directory_url, verify=env.trust_path).s.get(star_url)
    assert r.status_code == 403 and r.json()["type"].endswith(":autoRenewalCanceled")
    # "After a successful cancellation, the server MUST NOT issue any
    # additional certificates for this Order": wait past the next renewal
    # point (half a lifetime after the first certificate) with margin.
    na = ts(first[0]["not_after"])
    while time.time() < na + 2:
        time.sleep(0.5)
        assert len(sa_certs(env, url)) == 1, "a certificate after cancellation"
    # "Issuing a cancellation for an Order that is not in "valid" state
    # ... MUST return ... 400 ... autoRenewalCancellationInvalid"
    a.problem(raw.post(url, {"status": "canceled"}, key, kid=kid), 400,
              "autoRenewalCancellationInvalid")


def test_cancel_pending_or_plain_order_refused(raw, acct):
    key, kid = acct
    ar = {"end-date": rfc3339(time.time() + 600), "lifetime": LIFETIME}
    r = star_order(raw, key, kid, ["pending.star.test"], ar)
    assert r.status_code == 201
    # Not valid yet: autoRenewalCancellationInvalid (§3.1.2).
    a.problem(raw.post(r.headers["Location"], {"status": "canceled"}, key, kid=kid), 400,
              "autoRenewalCancellationInvalid")
    url, _ = a.new_order(raw, key, kid, ["plain.star.test"])
    a.problem(raw.post(url, {"status": "canceled"}, key, kid=kid), 400, "malformed")
    a.problem(raw.post(url, {"status": "valid"}, key, kid=kid), 400, "malformed")


def test_revocation_of_star_certificate_refused(raw, acct):
    key, kid = acct
    url, order, cert_key = issue_star(raw, key, kid, ["revoke.star.test"], allow_get=False)
    pem = raw.post(order["star-certificate"], None, key, kid=kid).text
    leaf = leaf_of(pem)
    # §3.1.2: "A server receiving a revocation request for a STAR
    # certificate MUST return an error response with status code 403
    # (Forbidden) and type ...:autoRenewalRevocationNotSupported".
    r = raw.post(raw.dir["revokeCert"], {"certificate": a.leaf_der_b64(leaf)}, key, kid=kid)
    a.problem(r, 403, "autoRenewalRevocationNotSupported")


def test_series_ends_at_end_date(raw, acct, env):
    key, kid = acct
    # end-date 1.5 lifetimes away: two certificates, the second one ends
    # exactly at end-date (§3.5 notAfter = min(nrd[i] + T, end)).
    url, order, _ = issue_star(raw, key, kid, ["end.star.test"], lifetime=8, duration=14)
    end = ts(order["auto-renewal"]["end-date"])
    deadline = time.time() + 40
    while time.time() < end + 3:
        time.sleep(0.5)
        assert time.time() < deadline
    certs = sorted(sa_certs(env, url), key=lambda c: c["not_after"])
    assert len(certs) == 2, certs
    assert ts(certs[-1]["not_after"]) == end
    # "The server MUST NOT issue any certificates for this Order with
    # notAfter after the auto-renewal end-date."
    assert all(ts(c["not_after"]) <= end for c in certs)
    # §3.2: "For expired Orders, the server MUST respond with 403 ...
    # autoRenewalExpired", the order itself stays "valid".
    a.problem(raw.post(order["star-certificate"], None, key, kid=kid), 403, "autoRenewalExpired")
    assert raw.post(url, None, key, kid=kid).json()["status"] == "valid"


def test_blocked_key_stops_renewals(raw, acct, env):
    # Each renewal is a new issuance: a key reported compromised since
    # finalize (sa.block_key, as revocation with keyCompromise or
    # anvil-admin does) gets no further certificate; the series ends.
    import hashlib
    key, kid = acct
    url, order, cert_key = issue_star(raw, key, kid, ["blocked.star.test"], lifetime=20)
    spki = cert_key.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    env.rpc("sa").call("sa.block_key", {"key_hash": hashlib.sha256(spki).hexdigest(),
                                        "source": "test", "comment": "test_ext_star"})
    first = sa_certs(env, url)
    assert len(first) == 1
    na = ts(first[0]["not_after"])
    while time.time() < na + 2:
        time.sleep(0.5)
        assert len(sa_certs(env, url)) == 1, "a certificate for a blocked key"
    star = env.rpc("sa").call("sa.star_get", {"order_id": a.id_of(url)})
    assert star["status"] == "ended" and star["ended_reason"] == "key blocked", star


# ------------------------------------------------------------ robustness

def test_ra_restart_mid_series(raw, acct, env):
    key, kid = acct
    url, order, cert_key = issue_star(raw, key, kid, ["restart.star.test"])
    star_url = order["star-certificate"]

    def fetch():
        r = raw.s.get(star_url)
        assert r.status_code == 200, r.text
        return r.text

    certs = collect(fetch, 2, timeout=3 * LIFETIME + 30)
    old = env.pid_of("ra")
    os.kill(old, signal.SIGKILL)
    a.wait_restarted(env, "ra", old)
    more = collect(fetch, 2, timeout=3 * LIFETIME + 30)
    allc = {c.serial_number: c for c, _ in certs + more}
    series = sorted(allc.values(), key=not_after)
    assert len(series) >= 3
    # no gap: each next one starts before the previous one ends; no
    # duplicate: one certificate per nominal renewal date
    check_series([(c, 0) for c in series], LIFETIME, cert_key)
    stored = sa_certs(env, url)
    nas = [ts(c["not_after"]) for c in stored]
    assert len(nas) == len(set(nas)), "a renewal date issued twice across the restart"


def test_claims_are_exclusive(env):
    # Two callers of sa.star_claim at once never get the same order
    # (FOR UPDATE SKIP LOCKED): the basis of "one renewal per order across
    # several RAs". Uses the orders of the tests above that are due.
    sa = env.rpc("sa")
    got = {}

    def claim(owner):
        got[owner] = env.rpc("sa").call("sa.star_claim", {"owner": owner, "lease_ms": 1000, "limit": 50})

    ts_ = [threading.Thread(target=claim, args=("t%d" % i,)) for i in range(4)]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join()
    ids = [o["order_id"] for r in got.values() for o in r["orders"]]
    assert len(ids) == len(set(ids)), got
    # the leases lapse after a second; the RAs' schedulers take them back
    del sa


def second_ra(env, tmpdir):
    """Starts another anvil-ra on the env's SA and CA (own socket, own
    debug port). Returns (process, debug port)."""
    with open(os.path.join(env.cfg_dir, "ra.json")) as f:
        cfg = json.load(f)
    cfg["rpc"]["listen"] = "unix:" + os.path.join(tmpdir, "ra2.sock")
    cfg["debug"]["port"] = PORT_BASE + 40
    path = os.path.join(tmpdir, "ra2.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(tmpdir, "ra2.log"), "w")
    p = subprocess.Popen([os.path.join(env.bin_dir, "anvil-ra"), "--config", path],
                         stdout=log, stderr=subprocess.STDOUT, env=env.env, cwd=anvil_env.TOP)
    return p, PORT_BASE + 40, log


def metric(text, name, labels):
    m = re.search(r"^%s\{%s\} (\d+)" % (re.escape(name), re.escape(labels)), text, re.M)
    return int(m.group(1)) if m else 0


def test_two_ras_never_both_renew(raw, acct, env):
    key, kid = acct
    tmp = os.path.join(env.tmp, "ra2")
    os.makedirs(tmp, exist_ok=True)
    p, port, log = second_ra(env, tmp)
    try:
        end = time.time() + 30
        while True:
            try:
                import urllib.request
                urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=2)
                break
            except OSError:
                assert p.poll() is None and time.time() < end, open(os.path.join(tmp, "ra2.log")).read()
                time.sleep(0.2)
        orders = [issue_star(raw, key, kid, ["two%d.star.test" % i]) for i in range(3)]
        # three certificates each
        deadline = time.time() + 4 * LIFETIME + 40
        while any(len(sa_certs(env, u)) < 3 for u, _, _ in orders):
            assert time.time() < deadline, [len(sa_certs(env, u)) for u, _, _ in orders]
            time.sleep(0.5)
        for u, _, ck in orders:
            stored = sorted(sa_certs(env, u), key=lambda c: c["not_after"])
            nas = [ts(c["not_after"]) for c in stored]
            assert len(nas) == len(set(nas)), "two RAs renewed one order for one date"
            for prev, cur in zip(nas, nas[1:]):
                assert cur == prev + LIFETIME
        import urllib.request
        m1 = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
        m0 = env.debug_get("ra")[1]
        issued = [metric(m, "anvil_ra_star_renewals_total", 'result="issued"') for m in (m0, m1)]
        assert sum(issued) >= 6, issued  # metrics count the renewals
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
    with open(os.path.join(tmp, "ra2.log"), errors="replace") as f:
        text = f.read()
    assert not any(m in text for m in a.SANITIZER_MARKS), text[-4000:]
    shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------ RFC 9115, CA side

def test_rfc9115_delegation_ca_side(raw, acct, env):
    """RFC 9115 §3: "A CA that wishes to support certificate delegation MUST
    also support unauthenticated certificate fetching". The IdO orders with
    its own account and the NDC's CSR (the NDC holds the key), the NDC
    (no account on the CA) fetches every renewal with a plain GET, and the
    IdO ends the delegation by canceling (§2.3.6.1: "The IdO can terminate
    the delegation of a STAR certificate by requesting its cancellation")."""
    key, kid = acct                                   # the IdO's account
    ndc_key = ec.generate_private_key(ec.SECP256R1())  # the NDC's key pair
    names = ["abc.ido.star.test"]
    ar = {"end-date": rfc3339(time.time() + 600), "lifetime": LIFETIME,
          "allow-certificate-get": True}
    r = star_order(raw, key, kid, names, ar)
    assert r.status_code == 201, r.text
    url = r.headers["Location"]
    a.answer_authzs(raw, key, kid, r.json(), "dns-01")
    order = a.poll(raw, key, kid, url, ("ready",))
    r = raw.post(order["finalize"], {"csr": a.b64(a.make_csr(ndc_key, names))}, key, kid=kid)
    assert r.status_code == 200, r.text
    order = a.poll(raw, key, kid, url, ("valid",))
    # the CA reflected allow-certificate-get: the delegation can go ahead
    assert order["auto-renewal"]["allow-certificate-get"] is True
    ndc = a.Wfe(env.directory_url, verify=env.trust_path).s   # no ACME account

    def fetch():
        r = ndc.get(order["star-certificate"])
        assert r.status_code == 200, r.text
        return r.text

    certs = collect(fetch, 2, timeout=3 * LIFETIME + 30)
    for leaf, _ in certs:
        assert leaf.public_key().public_numbers() == ndc_key.public_key().public_numbers()
    assert raw.post(url, {"status": "canceled"}, key, kid=kid).status_code == 200
    r = ndc.get(order["star-certificate"])
    assert r.status_code == 403 and r.json()["type"].endswith(":autoRenewalCanceled")
    count = len(sa_certs(env, url))
    last_na = max(nb_na(c)[1] for c, _ in certs)
    while time.time() < last_na + 2:
        time.sleep(0.5)
        assert len(sa_certs(env, url)) == count, "a renewal after the IdO canceled"
