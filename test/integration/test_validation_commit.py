"""One commit per validation (issue 18, docs/performance.md "After: seventh
session"): the RA reads whether a challenge may be claimed
(sa.peek_challenge), runs the VA and, when it answers within
validation.wait, writes claim and result in one conditional statement
(sa.record_validation); a slower VA falls back to the claim (processing)
and the result written when it comes.

The http-01 answers come from this module's own responder on the VA's
http-01 port, which can hold the VA's request until the test lets it go:
so the VA is made slower than validation.wait (the fallback), two POSTs
overlap, and the RA is killed while the VA works, each deterministically.
Which path the RA took is read from anvil_ra_validation_path_total; a busy
machine may turn a fast validation into the fallback, which the tests
accept with that path's own exact outcome.

Ports: AnvilEnv base 30600.
"""
import http.server
import os
import re
import signal
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import rel_acme as a  # noqa: E402

# ra.json validation.wait. test_crash_before_the_write kills the RA between
# the VA's request reaching the responder and the end of this wait: the
# VA's RPC, DNS and connect plus the test's own wake-up must fit in it on
# a busy machine, so the longest wait allowed (10 s) but a margin.
WAIT_S = 8
PATH_RE = re.compile(r'^anvil_ra_validation_path_total\{path="([^"]+)"\} (\S+)$')

env = a.env_fixture(port_base=30600, name="valcommit", config={
    "ra.json:validation.wait": "%ds" % WAIT_S,
    "ra.json:finalize.recover_after": "4s"})
raw = a.raw_fixture()
acct = a.account_fixture()


class Responder:
    """The http-01 server the VA asks: answers key authorizations it was
    given; while `hold` is clear, keeps each request waiting (up to 60 s).
    `arrived` is set by each request; `hits` counts them by token."""

    def __init__(self, port):
        self.answers, self.hits = {}, {}
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Event()
        me = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                tok = self.path.rsplit("/", 1)[-1]
                me.hits[tok] = me.hits.get(tok, 0) + 1
                me.arrived.set()
                me.hold.wait(60)
                body = me.answers.get(tok, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.hold.set()
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture(scope="module")
def http01(env):
    r = Responder(env.ports["http01"])
    yield r
    r.close()


def paths(env):
    """{path: validations so far} from the RA's /metrics."""
    status, text = env.debug_get("ra")
    assert status == 200, text
    return {m.group(1): float(m.group(2)) for m in map(PATH_RE.match, text.splitlines()) if m}


def took(env, before):
    """The one path the RA took since `before` (paths(env))."""
    now = paths(env)
    d = {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0) > 0}
    assert len(d) == 1 and list(d.values()) == [1], d
    return list(d)[0]


def challenge(env, raw, acct, http01, tag):
    """A new order's http-01 challenge whose answer the responder knows:
    (authz url, challenge)."""
    key, kid = acct
    name = "%s-%s.commit.test" % (tag, os.urandom(4).hex())
    _, order = a.new_order(raw, key, kid, [name])
    az_url = order["authorizations"][0]
    ch = [c for c in raw.post(az_url, None, key, kid=kid).json()["challenges"]
          if c["type"] == "http-01"][0]
    http01.answers[ch["token"]] = "%s.%s" % (ch["token"], key.thumbprint())
    return az_url, ch


def post(raw, acct, ch):
    key, kid = acct
    return raw.post(ch["url"], {}, key, kid=kid)


def stored(env, ch):
    """(challenge status, validated set, authz status, authz attempted) in
    the database."""
    r = a.psql(env, "SELECT c.status, c.validated IS NOT NULL, z.status, z.attempted_at IS NOT NULL "
               "FROM challenges c JOIN authzs z ON z.id = c.authz_id WHERE c.id = %d" % a.id_of(ch["url"]))
    return (r[0][0], r[0][1] == "t", r[0][2], r[0][3] == "t")


def final(raw, acct, az_url):
    key, kid = acct
    return a.poll(raw, key, kid, az_url, ("valid", "invalid"))


def test_va_within_the_wait_answers_the_result(env, raw, acct, http01):
    """The VA answers at once: the POST's answer is the challenge with its
    result (RFC 8555 §7.5.1: "The server is said to "finalize" the
    authorization when it has completed one of the validations"), written
    with the claim in one statement; on a machine too busy to validate
    within validation.wait, the fallback's processing challenge."""
    az_url, ch = challenge(env, raw, acct, http01, "fast")
    p0 = paths(env)
    r = post(raw, acct, ch)
    assert r.status_code == 200, r.text
    path = took(env, p0)
    assert path in ("sync", "fallback"), path
    assert r.json()["status"] == ("valid" if path == "sync" else "processing"), (path, r.text)
    if path == "sync":
        # written before the answer: a read shows it, nothing to poll
        assert stored(env, ch) == ("valid", True, "valid", True)
    assert final(raw, acct, az_url)["status"] == "valid"
    assert stored(env, ch) == ("valid", True, "valid", True)
    assert http01.hits[ch["token"]] == 1


def test_va_slower_than_the_wait_falls_back(env, raw, acct, http01):
    """The responder holds the VA's request until the POST is answered: the
    RA gave up waiting after validation.wait, claimed the challenge and
    answered it processing (RFC 8555 §7.1.6: "They transition to the
    "processing" state when the client responds to the challenge [...]
    and the server begins attempting to validate"); the result is written
    when the VA answers, and the authz ends as on the one-write path."""
    az_url, ch = challenge(env, raw, acct, http01, "slow")
    http01.hold.clear()
    try:
        p0 = paths(env)
        t0 = time.time()
        r = post(raw, acct, ch)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "processing", r.text
        assert time.time() - t0 >= WAIT_S - 0.5
        assert took(env, p0) == "fallback"
        assert stored(env, ch)[0] == "processing"
    finally:
        http01.hold.set()
    assert final(raw, acct, az_url)["status"] == "valid"
    assert stored(env, ch) == ("valid", True, "valid", True)
    assert http01.hits[ch["token"]] == 1


def test_two_posts_at_once_validate_once(env, raw, acct, http01):
    """A second POST while the first one's VA works: the RA validates the
    authz once; the second is answered the challenge as it is (pending:
    RFC 8555 §7.1.6 "client requests for retries do not cause a state
    change"), the first one's result is the authz's."""
    az_url, ch = challenge(env, raw, acct, http01, "twice")
    http01.hold.clear()
    http01.arrived.clear()
    first = {}

    def one():
        first["r"] = post(raw, acct, ch)
    p0 = paths(env)
    t = threading.Thread(target=one)
    t.start()
    try:
        assert http01.arrived.wait(60), "the VA never asked"
        r2 = post(raw, acct, ch)
    finally:
        http01.hold.set()
    t.join(60)
    assert r2.status_code == 200, r2.text
    r1 = first["r"]
    assert r1.status_code == 200, r1.text
    now = paths(env)
    d = {k: now[k] - p0.get(k, 0) for k in now if now[k] - p0.get(k, 0) > 0}
    # the second POST found the authz validating in this RA ("busy"), or,
    # when the first had already fallen back to the claim, processing
    # (not claimable: no path counted)
    assert d.get("busy", 0) + d.get("sync", 0) + d.get("fallback", 0) == sum(d.values()), d
    assert d.get("sync", 0) + d.get("fallback", 0) == 1, d
    assert r2.json()["status"] in ("pending", "processing"), r2.text
    assert r1.json()["status"] == ("valid" if d.get("sync") else "processing"), (d, r1.text)
    assert final(raw, acct, az_url)["status"] == "valid"
    assert http01.hits[ch["token"]] == 1


def test_crash_before_the_write_leaves_the_challenge_pending(env, raw, acct, http01):
    """The RA is killed while the VA works, before anything was written:
    the challenge and the authz stay pending and unattempted (nothing for
    recovery to fail), and the client's retry validates (RFC 8555 §8.2:
    "Clients can explicitly request a retry by re-sending their response
    to a challenge in a new POST request")."""
    az_url, ch = challenge(env, raw, acct, http01, "crash")
    http01.hold.clear()
    http01.arrived.clear()
    first = {}

    def one():
        try:
            first["r"] = post(raw, acct, ch)
        except Exception as e:  # noqa: BLE001 - the connection may drop
            first["e"] = e
    old = env.pid_of("ra")
    t = threading.Thread(target=one)
    t.start()
    try:
        assert http01.arrived.wait(60), "the VA never asked"
        # within validation.wait: the RA is still waiting for the VA
        os.kill(old, signal.SIGKILL)
        t.join(60)
    finally:
        http01.hold.set()
    assert "e" in first or first["r"].status_code >= 500, first["r"].text
    assert stored(env, ch) == ("pending", False, "pending", False)
    a.wait_restarted(env, "ra", old)
    # still pending after the restart's recovery sweep had its chance
    key, kid = acct
    assert raw.post(az_url, None, key, kid=kid).json()["status"] == "pending"
    assert stored(env, ch) == ("pending", False, "pending", False)
    r = post(raw, acct, ch)
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("valid", "processing"), r.text
    assert final(raw, acct, az_url)["status"] == "valid"
    assert stored(env, ch) == ("valid", True, "valid", True)
