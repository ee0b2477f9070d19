"""The WFE's read replica (`sa_read`, docs/scaling.md "Read replicas") never
shows a client a state older than one it has already seen.

A real PostgreSQL hot standby of the env's database (pg_basebackup), a
second anvil-sa on it (the "read SA"), and the WFE's `sa_read` pointed at
that SA. The test pauses the standby's replay (pg_wal_replay_pause) once it
holds a fresh order, so the replica is lagging by as much as the test
wants, then validates and finalizes through the WFE: every read the client
makes must show the primary's state (the order processing or valid after
finalize, never pending or ready again; the authz valid; a new order in
the account's orders list). Once replay resumes and the standby has the
final state, the replica serves the valid order and the certificate
(anvil_wfe_replica_reads_total says so).

This is the failure `make test-cluster` saw at a PostgreSQL failover
(issue 25): a standby re-pointed to the new primary lagged, and an order
polled after finalize came back "pending" (anvil-loadgen: "protocol").

Ports: AnvilEnv base 25800 (read SA debug port base + 16).
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402

PORT_BASE = 25800
SARO_DEBUG = PORT_BASE + 16
PGBIN = (sorted(glob.glob("/usr/lib/postgresql/*/bin")) or ["/usr/bin"])[-1]


def as_pg(argv):
    """Runs a PostgreSQL tool as `postgres` when root (pg.sh does the same)."""
    if os.getuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0, (argv, out.stdout, out.stderr)
    return out.stdout


def until(what, fn, secs=60):
    """Polls fn() until it returns something true; fails naming `what`."""
    end = time.time() + secs
    while True:
        v = fn()
        if v:
            return v
        assert time.time() < end, "timed out waiting for " + what
        time.sleep(0.1)


class Standby:
    """A hot standby of the env's PostgreSQL, streaming over its socket."""

    def __init__(self, env):
        primary = os.path.realpath(os.path.join(env.var_dir, "pg"))
        self.dir = os.path.join(primary, "standby")
        self.sock = os.path.join(self.dir, "sock")
        pguser = "postgres" if os.getuid() == 0 else None
        self.dsn = "host=%s dbname=anvil%s" % (self.sock, " user=" + pguser if pguser else "")
        as_pg([os.path.join(PGBIN, "pg_basebackup"), "-h", os.path.join(primary, "sock"),
               "-D", os.path.join(self.dir, "data"), "-R", "-X", "stream", "-c", "fast"])
        as_pg(["mkdir", "-p", self.sock])
        conf = os.path.join(self.dir, "data", "postgresql.auto.conf")
        as_pg(["sh", "-c", "printf \"%%s\\n\" \"unix_socket_directories = '%s'\" "
               "\"hot_standby = on\" >> %s" % (self.sock, conf)])
        as_pg([os.path.join(PGBIN, "pg_ctl"), "-D", os.path.join(self.dir, "data"),
               "-l", os.path.join(self.dir, "postgres.log"), "-w", "-t", "60", "start"])

    def sql(self, q):
        out = subprocess.run(["psql", self.dsn, "-AtqX", "-c", q], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def stop(self):
        subprocess.run((["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []) +
                       [os.path.join(PGBIN, "pg_ctl"), "-D", os.path.join(self.dir, "data"),
                        "-m", "immediate", "-w", "stop"], capture_output=True, cwd="/")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def env():
    # object_cache at its longest ttl: the first test counts the replica
    # reads of a download that the cache answers when the finalize was
    # answered valid; a busy machine can spend more than the default 5 s
    # between that answer and the download (the standby's replay is
    # waited for in between), and the download then rightly reads.
    e = anvil_env.AnvilEnv(port_base=PORT_BASE, name="replica",
                           config={"va.json:test.always_valid": True,
                                   "wfe.json:object_cache.ttl": "60s"})
    # The WFE reads through a second SA on the standby (started below;
    # until then its reads fall back to the primary as "unavailable").
    e.overrides["wfe.json:sa_read"] = {
        "target": "unix:" + os.path.join(e.var_dir, "run", "saro.sock"),
        "timeout": "10s", "connections": 4}
    with e:
        yield e


@pytest.fixture(scope="module")
def replica(env):
    sb = Standby(env)
    until("the standby to accept reads", lambda: sb.sql("SELECT pg_is_in_recovery()") == "t")
    with open(os.path.join(env.cfg_dir, "sa.json")) as f:
        cfg = json.load(f)
    cfg["rpc"]["listen"] = "unix:" + os.path.join(env.var_dir, "run", "saro.sock")
    cfg["debug"] = {"addr": "127.0.0.1", "port": SARO_DEBUG}
    cfg["db"].update({"dsn": sb.dsn, "auto_migrate": False})
    path = os.path.join(env.cfg_dir, "saro.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(env.var_dir, "log", "saro.log"), "w")
    # ANVIL_SA_DSN (the primary's, from bootstrap) would win over db.dsn.
    proc = subprocess.Popen([os.path.join(env.bin_dir, "anvil-sa"), "--config", path],
                            env=dict(env.env, ANVIL_SA_DSN=sb.dsn), cwd=anvil_env.TOP,
                            stdout=log, stderr=log)

    env.ports["debug_saro"] = SARO_DEBUG
    try:
        until("the read SA on the standby", lambda: env.debug_get("saro", "/healthz")[0] == 200)
        yield sb
    finally:
        proc.terminate()
        proc.wait(timeout=60)  # an SA that does not stop on SIGTERM is a bug
        log.close()
        sb.stop()


raw = a.raw_fixture()


def reads(env):
    """anvil_wfe_replica_reads_total by result."""
    out = {}
    _, text = env.debug_get("wfe")
    for ln in text.splitlines():
        if ln.startswith("anvil_wfe_replica_reads_total{"):
            out[ln.split('"')[1]] = int(float(ln.split()[-1]))
    return out


def get(raw, key, kid, url):
    r = raw.post(url, None, key, kid=kid)
    assert r.status_code == 200, r.text
    return r.json()


def test_lagging_replica_never_shows_an_older_state(env, raw, replica):
    key, kid = a.new_account(raw)
    url, order = a.new_order(raw, key, kid, ["lag.replica.test"])
    oid, az = a.id_of(url), order["authorizations"][0]
    until("the order on the standby",
          lambda: replica.sql("SELECT status FROM orders WHERE id = %d" % oid) == "pending")
    # From here on the replica shows this order pending with its authz
    # pending, whatever the primary does.
    replica.sql("SELECT pg_wal_replay_pause()")
    until("replay paused", lambda: replica.sql("SELECT pg_get_wal_replay_pause_state()") == "paused")
    before = reads(env)

    authz = get(raw, key, kid, az)
    ch = [c for c in authz["challenges"] if c["type"] == "http-01"][0]
    r = raw.post(ch["url"], {}, key, kid=kid)
    assert r.status_code == 200, r.text
    # The client learns that the authz is valid (here from the primary
    # itself: the WFE's own answers are what is under test below).
    until("the authz valid on the primary", lambda: a.sa_authz(env, az)["status"] == "valid")
    r = raw.post(order["finalize"], {"csr": a.b64(a.make_csr(
        ec.generate_private_key(ec.SECP256R1()), ["lag.replica.test"]))}, key, kid=kid)
    assert r.status_code == 200, r.text
    told = r.json()["status"]
    assert told in ("processing", "valid"), r.text
    # RFC 8555 §7.1.6: after finalize an order goes processing -> valid
    # (or invalid); it never becomes ready or pending again.
    after = get(raw, key, kid, url)
    assert after["status"] in ("processing", "valid"), (told, after)
    done = a.poll(raw, key, kid, url, ("valid",))
    # The authz stays valid (the replica: still pending).
    assert get(raw, key, kid, az)["status"] == "valid"
    assert replica.sql("SELECT status FROM authzs WHERE id = %d" % a.id_of(az)) == "pending"
    # RFC 8555 §7.1.2.1: the account's "orders" list holds its orders; one
    # just created is in it (the replica has not seen it).
    url2, _ = a.new_order(raw, key, kid, ["lag2.replica.test"])
    acct = raw.post(kid, None, key, kid=kid).json()
    listed = raw.post(acct["orders"], None, key, kid=kid).json()["orders"]
    assert url2 in listed, (url2, listed)
    # The replica was asked and its pending order refused as unsettled.
    mid = reads(env)
    assert mid.get("unsettled", 0) > before.get("unsettled", 0), (before, mid)

    replica.sql("SELECT pg_wal_replay_resume()")
    until("the valid order on the standby",
          lambda: replica.sql("SELECT status FROM orders WHERE id = %d" % oid) == "valid")
    base = reads(env)
    assert get(raw, key, kid, url)["status"] == "valid"
    r = raw.post(done["certificate"], None, key, kid=kid)
    assert r.status_code == 200 and "BEGIN CERTIFICATE" in r.text, r.text
    end = reads(env)
    # Settled state: the valid order and the certificate from the replica
    # (the certificate of a finalize answered valid comes from the WFE's
    # object_cache instead: no read at all).
    want = 1 if told == "valid" else 2
    assert end.get("replica", 0) - base.get("replica", 0) == want, (told, base, end)


def test_replica_missing_a_row_falls_back_to_the_primary(env, raw, replica):
    key, kid = a.new_account(raw)
    replica.sql("SELECT pg_wal_replay_pause()")
    until("replay paused", lambda: replica.sql("SELECT pg_get_wal_replay_pause_state()") == "paused")
    try:
        cert = a.issue(raw, key, kid, ["missing.replica.test"])
        before = reads(env)
        # Neither the order nor the certificate is on the standby.
        assert get(raw, key, kid, cert["order_url"])["status"] == "valid"
        r = raw.post(cert["order"]["certificate"], None, key, kid=kid)
        assert r.status_code == 200 and "BEGIN CERTIFICATE" in r.text, r.text
        after = reads(env)
        assert after.get("primary", 0) - before.get("primary", 0) == 2, (before, after)
    finally:
        replica.sql("SELECT pg_wal_replay_resume()")
