"""anvil-sa against a real PostgreSQL (scripts/pg.sh) and a real process.

Every sa.* method, transaction rollback, constraint violations mapped to
problems, concurrent claims (exactly one winner), migrations applied twice
and a newer schema refused, PostgreSQL stopped and restarted under load.
Ports: the sa test range 21100-21199 (debug port only; RPC is a Unix socket).
"""
import base64
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "test", "integration", "lib"))
from anvilrpc import RpcClient, RpcError  # noqa: E402

BINDIR = os.environ.get("BINDIR", "bin")
SA_BIN = os.path.join(TOP, BINDIR) if not os.path.isabs(BINDIR) else BINDIR
SA_BIN = os.path.join(SA_BIN, "anvil-sa")
PG = os.path.join(TOP, "scripts", "pg.sh")
DEBUG_PORT = 21111
# a DSN from the caller's environment would override every config below
os.environ.pop("ANVIL_SA_DSN", None)


def ts(delta_s=0):
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delta_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def rand_b64(n=32):
    return base64.urlsafe_b64encode(os.urandom(n)).decode().rstrip("=")


def rand_serial():
    return os.urandom(18).hex()


def psql(dsn, sql):
    return subprocess.run(["psql", dsn, "-Atqc", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


class Env:
    def __init__(self):
        base = os.environ.get("BUILD", "build")
        if not os.path.isabs(base):
            base = os.path.join(TOP, base)
        os.makedirs(os.path.join(base, "tmp"), exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="sa-it-", dir=os.path.join(base, "tmp"))
        self.pgdir = os.path.join(self.dir, "pg")
        self.dsn = subprocess.run([PG, "start", self.pgdir], check=True,
                                  capture_output=True, text=True).stdout.strip()
        self.sock = os.path.join(self.dir, "sa.sock")
        self.proc = None

    def config(self, name="sa.json", **db):
        cfg = {"log_level": "info",
               "debug": {"addr": "127.0.0.1", "port": DEBUG_PORT},
               "rpc": {"listen": "unix:" + self.sock, "workers": 8,
                       "callers": {c: ["self"] for c in ("wfe", "ra", "ca", "admin")}},
               "db": {"dsn": self.dsn, "pool": 8, "auto_migrate": True,
                      "statement_timeout": "5s",
                      "schema_dir": os.path.join(TOP, "schema")}}
        cfg["db"].update(db)
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def start(self):
        path = self.config()
        self.log = open(os.path.join(self.dir, "sa.log"), "ab")
        self.proc = subprocess.Popen([SA_BIN, "--config", path], cwd=TOP,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("anvil-sa exited: %d" % self.proc.returncode)
            if os.path.exists(self.sock):
                try:
                    RpcClient("unix:" + self.sock).call("health.check")
                    return
                except (OSError, RpcError):
                    pass
            time.sleep(0.05)
        raise RuntimeError("anvil-sa did not start")

    def stop(self):
        rc = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=20)
        subprocess.run([PG, "stop", self.pgdir], capture_output=True)
        return rc

    def destroy(self):
        """Stops and removes the cluster, a /var/tmp fallback included."""
        subprocess.run([PG, "destroy", self.pgdir], capture_output=True)

    def client(self):
        return RpcClient("unix:" + self.sock, timeout=30)


@pytest.fixture(scope="module")
def env():
    e = Env()
    try:
        e.start()
        yield e
    finally:
        rc = e.stop()
        if os.environ.get("KEEP_TMP") is None:
            e.destroy()
            shutil.rmtree(e.dir, ignore_errors=True)
    assert rc == 0, "anvil-sa did not exit 0 on SIGTERM"


@pytest.fixture
def c(env):
    cl = env.client()
    yield cl
    cl.close()


def err_type(fn, *a, **kw):
    with pytest.raises(RpcError) as ei:
        fn(*a, **kw)
    return ei.value.type


def new_account(c, **kw):
    p = {"key": {"kty": "EC", "crv": "P-256", "x": rand_b64(), "y": rand_b64()},
         "thumbprint": rand_b64(), "contact": ["mailto:ops@example.com"],
         "tos_agreed": True}
    p.update(kw)
    return c.call("sa.new_account", p)


def authz_spec(value, wildcard=False, expires=3600):
    return {"identifier": {"type": "dns", "value": value}, "wildcard": wildcard,
            "expires": ts(expires),
            "challenges": [{"type": "http-01", "token": rand_b64()},
                           {"type": "dns-01", "token": rand_b64()}]}


def new_order(c, acct, names, **kw):
    idents = [{"type": "dns", "value": n} for n in names]
    news = [authz_spec(n[2:], True) if n.startswith("*.") else authz_spec(n)
            for n in names]
    p = {"account_id": acct, "expires": ts(7200), "identifiers": idents,
         "profile": "classic", "new_authzs": news}
    p.update(kw)
    return c.call("sa.new_order", p)


def validate(c, authz_id, status="valid"):
    a = c.call("sa.get_authz", {"id": authz_id})
    ch = a["challenges"][0]["id"]
    c.call("sa.set_authz_processing", {"authz_id": authz_id, "challenge_id": ch})
    p = {"authz_id": authz_id, "challenge_id": ch, "status": status,
         "validation_record": [{"hostname": "x", "port": "80"}]}
    if status == "valid":
        p["expires"] = ts(86400)
    else:
        p["error"] = {"type": "unauthorized", "detail": "wrong token", "status": 403}
    return c.call("sa.finalize_authz", p)


def add_cert(c, acct, names, order_id=None, serial=None, reserve=True,
             key_hash=None, shard=1, not_after=86400 * 90, issuer="00112233aabbccdd"):
    serial = serial or rand_serial()
    if reserve:
        c.call("sa.reserve_serial", {"serial": serial, "account_id": acct,
                                     "expires": ts(not_after)})
    p = {"serial": serial, "der": rand_b64(300), "account_id": acct,
         "issuer_id": issuer, "profile": "classic",
         "identifiers": [{"type": "dns", "value": n} for n in names],
         "not_before": ts(-60), "not_after": ts(not_after),
         "key_hash": key_hash or os.urandom(32).hex(), "shard": shard}
    if order_id:
        p["order_id"] = order_id
    c.call("sa.add_certificate", p)
    return serial


# ---------------------------------------------------------------- migrations

def test_migrate_twice_and_refuse_newer(env):
    subprocess.run([PG, "start", env.pgdir, "migtest"], check=True, capture_output=True)
    dsn = env.dsn.replace("dbname=anvil", "dbname=migtest")
    path = env.config("mig.json", dsn=dsn, auto_migrate=False)
    # not migrated and auto_migrate false: refuses to serve, says what to do
    r = subprocess.run([SA_BIN, "--config", path], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "--migrate" in r.stderr
    for _ in range(2):
        r = subprocess.run([SA_BIN, "--config", path, "--migrate"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    nfiles = len([f for f in os.listdir(os.path.join(TOP, "schema")) if f.endswith(".sql")])
    assert psql(dsn, "select count(*) from schema_migrations") == str(nfiles)
    assert "0 migrations applied" in r.stderr
    psql(dsn, "insert into schema_migrations (version, name) values (9999, '9999_future.sql')")
    r = subprocess.run([SA_BIN, "--config", path, "--migrate"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1 and "newer" in r.stderr
    r = subprocess.run([SA_BIN, "--config", path], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "newer" in r.stderr


def test_concurrent_migrators(env):
    subprocess.run([PG, "start", env.pgdir, "migconc"], check=True, capture_output=True)
    dsn = env.dsn.replace("dbname=anvil", "dbname=migconc")
    path = env.config("migc.json", dsn=dsn)
    procs = [subprocess.Popen([SA_BIN, "--config", path, "--migrate"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert psql(dsn, "select count(*) from schema_migrations where version = 1") == "1"


def test_bad_config_names_key(env):
    path = os.path.join(env.dir, "bad.json")
    with open(path, "w") as f:
        json.dump({"debug": {"port": DEBUG_PORT}, "rpc": {"listen": "unix:/tmp/x"},
                   "db": {"dsn": env.dsn, "pool_size": 3}}, f)
    r = subprocess.run([SA_BIN, "--config", path], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "pool_size" in r.stderr


def test_dsn_from_env_and_file(env):
    path = env.config("envdsn.json", dsn="")
    r = subprocess.run([SA_BIN, "--config", path, "--migrate"], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, ANVIL_SA_DSN=env.dsn))
    assert r.returncode == 0, r.stderr
    r = subprocess.run([SA_BIN, "--config", path, "--migrate"], capture_output=True, text=True,
                       timeout=30, env={k: v for k, v in os.environ.items() if k != "ANVIL_SA_DSN"})
    assert r.returncode == 1 and "ANVIL_SA_DSN" in r.stderr
    dsn_file = os.path.join(env.dir, "dsn.txt")
    with open(dsn_file, "w") as f:
        f.write(env.dsn + "\n")
    os.chmod(dsn_file, 0o644)
    path = env.config("filedsn.json", dsn=None, dsn_file=dsn_file)
    clean_env = {k: v for k, v in os.environ.items() if k != "ANVIL_SA_DSN"}
    r = subprocess.run([SA_BIN, "--config", path, "--migrate"], capture_output=True, text=True,
                       timeout=30, env=clean_env)
    assert r.returncode == 1 and "dsn.txt" in r.stderr
    os.chmod(dsn_file, 0o600)
    r = subprocess.run([SA_BIN, "--config", path, "--migrate"], capture_output=True, text=True,
                       timeout=30, env=clean_env)
    assert r.returncode == 0, r.stderr


def test_missing_schema_dir_refused(env):
    path = env.config("noschema.json", schema_dir="/nonexistent/schema")
    r = subprocess.run([SA_BIN, "--config", path, "--migrate"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1 and "schema directory" in r.stderr


# ---------------------------------------------------------------- accounts

def test_account_lifecycle(c):
    a = new_account(c)
    assert a["id"] > 0 and a["status"] == "valid" and a["tos_agreed"] is True
    assert a["contact"] == ["mailto:ops@example.com"] and a["eab_kid"] is None
    assert a["created"].endswith("Z")
    assert c.call("sa.get_account", {"id": a["id"]})["thumbprint"] == a["thumbprint"]
    assert c.call("sa.get_account_by_thumbprint", {"thumbprint": a["thumbprint"]})["id"] == a["id"]
    u = c.call("sa.update_account", {"id": a["id"], "contact": ["mailto:new@example.com"]})
    assert u["contact"] == ["mailto:new@example.com"] and u["status"] == "valid"
    u = c.call("sa.update_account", {"id": a["id"], "status": "deactivated"})
    assert u["status"] == "deactivated" and u["contact"] == ["mailto:new@example.com"]
    assert err_type(c.call, "sa.update_account", {"id": a["id"], "status": "bogus"}) == "malformed"
    assert err_type(c.call, "sa.get_account", {"id": 999999999}) == "notFound"
    assert err_type(c.call, "sa.get_account_by_thumbprint", {"thumbprint": "nope"}) == "notFound"
    assert err_type(c.call, "sa.update_account", {"id": 999999999, "status": "valid"}) == "notFound"


def test_duplicate_key_is_conflict_with_id(c):
    a = new_account(c)
    with pytest.raises(RpcError) as ei:
        new_account(c, thumbprint=a["thumbprint"])
    assert ei.value.type == "conflict" and str(a["id"]) in ei.value.problem["detail"]


def test_change_key(c):
    a, b = new_account(c), new_account(c)
    nk = {"kty": "EC", "x": rand_b64()}
    ntp = rand_b64()
    r = c.call("sa.change_account_key", {"id": a["id"], "key": nk, "thumbprint": ntp})
    assert r["thumbprint"] == ntp and r["key"] == nk
    assert c.call("sa.get_account_by_thumbprint", {"thumbprint": ntp})["id"] == a["id"]
    assert err_type(c.call, "sa.get_account_by_thumbprint", {"thumbprint": a["thumbprint"]}) == "notFound"
    assert err_type(c.call, "sa.change_account_key",
                    {"id": a["id"], "key": nk, "thumbprint": b["thumbprint"]}) == "conflict"
    assert err_type(c.call, "sa.change_account_key",
                    {"id": 999999999, "key": nk, "thumbprint": rand_b64()}) == "notFound"


def test_eab_keys_and_binding_rollback(c):
    kid = "kid-" + rand_b64(6)
    hk = rand_b64(32)
    r = c.call("sa.new_eab_key", {"kid": kid, "hmac_key": hk, "comment": "team a"})
    assert r["kid"] == kid and r["created"].endswith("Z")
    assert err_type(c.call, "sa.new_eab_key", {"kid": kid, "hmac_key": hk, "comment": ""}) == "conflict"
    g = c.call("sa.get_eab_key", {"kid": kid})
    assert g["hmac_key"] == hk and g["revoked"] is False and "account_id" not in g
    lst = c.call("sa.list_eab_keys")["keys"]
    assert any(k["kid"] == kid for k in lst) and all("hmac_key" not in k for k in lst)
    a = new_account(c, eab_kid=kid)
    assert a["eab_kid"] == kid
    assert c.call("sa.get_eab_key", {"kid": kid})["account_id"] == a["id"]
    # second use: unauthorized, and the account insert is rolled back
    tp = rand_b64()
    assert err_type(new_account, c, eab_kid=kid, thumbprint=tp) == "unauthorized"
    assert err_type(c.call, "sa.get_account_by_thumbprint", {"thumbprint": tp}) == "notFound"
    assert err_type(new_account, c, eab_kid="unknown-kid") == "unauthorized"
    kid2 = "kid-" + rand_b64(6)
    c.call("sa.new_eab_key", {"kid": kid2, "hmac_key": hk, "comment": ""})
    assert c.call("sa.revoke_eab_key", {"kid": kid2}) == {}
    assert c.call("sa.get_eab_key", {"kid": kid2})["revoked"] is True
    assert err_type(new_account, c, eab_kid=kid2) == "unauthorized"
    assert err_type(c.call, "sa.revoke_eab_key", {"kid": "nope"}) == "notFound"
    assert err_type(c.call, "sa.get_eab_key", {"kid": "nope"}) == "notFound"
    assert err_type(c.call, "sa.new_eab_key", {"kid": "x", "hmac_key": "a+b/", "comment": ""}) == "malformed"


# ---------------------------------------------------------------- orders

def test_order_lifecycle(c):
    a = new_account(c)
    o = new_order(c, a["id"], ["*.example.net", "a.example.net"])
    assert o["status"] == "pending" and len(o["authz_ids"]) == 2
    assert o["identifiers"][0]["value"] == "*.example.net"
    authzs = c.call("sa.get_authzs", {"ids": o["authz_ids"] + [999999999]})["authzs"]
    assert [x["id"] for x in authzs] == o["authz_ids"]
    # authz_ids follow identifier order: the wildcard authz comes first
    assert authzs[0]["wildcard"] is True and authzs[0]["identifier"]["value"] == "example.net"
    assert authzs[1]["identifier"]["value"] == "a.example.net"
    assert all(len(x["challenges"]) == 2 for x in authzs)
    assert err_type(c.call, "sa.set_order_processing", {"id": o["id"]}) == "orderNotReady"
    validate(c, o["authz_ids"][0])
    assert c.call("sa.get_order", {"id": o["id"]})["status"] == "pending"
    validate(c, o["authz_ids"][1])
    assert c.call("sa.get_order", {"id": o["id"]})["status"] == "ready"
    p = c.call("sa.set_order_processing", {"id": o["id"]})
    assert p["status"] == "processing" and p["began_processing"].endswith("Z")
    assert err_type(c.call, "sa.set_order_processing", {"id": o["id"]}) == "orderNotReady"
    stale = c.call("sa.get_stale_processing_orders", {"older_than": ts(5)})["order_ids"]
    assert o["id"] in stale
    assert o["id"] not in c.call("sa.get_stale_processing_orders", {"older_than": ts(-3600)})["order_ids"]
    serial = add_cert(c, a["id"], ["*.example.net", "a.example.net"], order_id=o["id"])
    got = c.call("sa.get_certificates", {"order_id": o["id"]})["certificates"]
    assert [x["serial"] for x in got] == [serial] and got[0]["order_id"] == o["id"]
    f = c.call("sa.finalize_order", {"id": o["id"], "serial": serial})
    assert f["status"] == "valid" and f["certificate_serial"] == serial
    assert err_type(c.call, "sa.finalize_order", {"id": o["id"], "serial": serial}) == "conflict"
    assert err_type(c.call, "sa.set_order_error",
                    {"id": o["id"], "error": {"type": "serverInternal"}}) == "conflict"
    assert err_type(c.call, "sa.get_order", {"id": 999999999}) == "notFound"
    assert err_type(c.call, "sa.set_order_processing", {"id": 999999999}) == "notFound"


def test_new_order_returns_its_authzs(c):
    """sa.new_order with_authzs: the write returns what it created (issue 18),
    the authzs exactly as sa.get_authzs gives them, in authz_ids order,
    reused ones included."""
    a = new_account(c)
    o1 = new_order(c, a["id"], ["r1.example.org"])
    validate(c, o1["authz_ids"][0])
    o = new_order(c, a["id"], ["*.w.example.org", "n.example.org"], with_authzs=True,
                  reuse_authz_ids=[o1["authz_ids"][0]],
                  identifiers=[{"type": "dns", "value": v} for v in
                               ("*.w.example.org", "n.example.org", "r1.example.org")])
    assert len(o["authz_ids"]) == 3 and o1["authz_ids"][0] in o["authz_ids"]
    assert o["authzs"] == c.call("sa.get_authzs", {"ids": o["authz_ids"]})["authzs"]
    assert [x["id"] for x in o["authzs"]] == o["authz_ids"]
    assert "authzs" not in new_order(c, a["id"], ["plain.example.org"])
    assert err_type(new_order, c, a["id"], ["t.example.org"], with_authzs="yes") == "malformed"


def test_writes_answer_what_they_stored(c):
    """Issue 18: sa.new_order, sa.get_order with_authzs, sa.claim_challenge and
    sa.finalize_authz each answer from their one statement (the rows they
    wrote, no read after the write): the answers equal a read afterwards, the
    authzs in identifier order; a refused new_order writes nothing."""
    a = new_account(c)
    names = ["b.one.example", "*.one.example", "a.one.example"]
    o = new_order(c, a["id"], names, with_authzs=True)
    assert [(x["identifier"]["value"], x["wildcard"]) for x in o["authzs"]] == \
        [("b.one.example", False), ("one.example", True), ("a.one.example", False)]
    assert c.call("sa.get_order", {"id": o["id"], "with_authzs": True}) == o
    az, ch = o["authzs"][0], o["authzs"][0]["challenges"][0]
    claim = {"account_id": a["id"], "authz_id": az["id"], "challenge_id": ch["id"]}
    cl = c.call("sa.claim_challenge", claim)
    assert cl["claimed"] and cl["thumbprint"] == a["thumbprint"]
    assert cl["authz"] == c.call("sa.get_authz", {"id": az["id"]})
    assert cl["authz"]["challenges"][0]["status"] == "processing"
    fin = c.call("sa.finalize_authz", {"authz_id": az["id"], "challenge_id": ch["id"],
                                       "status": "valid", "expires": ts(86400),
                                       "validation_record": [{"hostname": "h"}]})
    assert fin == c.call("sa.get_authz", {"id": az["id"]}) and fin["status"] == "valid"
    assert fin["challenges"][0]["validation_record"] == [{"hostname": "h"}]
    again = c.call("sa.claim_challenge", claim)
    assert not again["claimed"] and again["authz"] == fin
    got = c.call("sa.get_order", {"id": o["id"], "with_authzs": True})
    assert got["authzs"][0] == fin and got["authzs"][1:] == o["authzs"][1:]
    # refused: a reused authz twice, a challenge type twice; nothing stored
    before = c.call("sa.get_orders_by_account", {"account_id": a["id"]})["order_ids"]
    assert err_type(new_order, c, a["id"], ["b.one.example"], new_authzs=[],
                    reuse_authz_ids=[az["id"], az["id"]]) == "malformed"
    dup = authz_spec("dup.one.example")
    dup["challenges"][1]["type"] = "http-01"
    assert err_type(new_order, c, a["id"], ["dup.one.example"], new_authzs=[dup]) == "malformed"
    assert c.call("sa.get_orders_by_account", {"account_id": a["id"]})["order_ids"] == before


def test_order_invalid_paths(c):
    a = new_account(c)
    o = new_order(c, a["id"], ["x.example.org", "y.example.org"])
    validate(c, o["authz_ids"][0], "invalid")
    got = c.call("sa.get_order", {"id": o["id"]})
    assert got["status"] == "invalid"
    az = c.call("sa.get_authz", {"id": o["authz_ids"][0]})
    assert az["status"] == "invalid" and az["challenges"][0]["error"]["detail"] == "wrong token"
    assert az["challenges"][0]["validation_record"][0]["hostname"] == "x"
    o2 = new_order(c, a["id"], ["z.example.org"])
    d = c.call("sa.deactivate_authz", {"id": o2["authz_ids"][0]})
    assert d["status"] == "deactivated"
    assert c.call("sa.get_order", {"id": o2["id"]})["status"] == "invalid"
    assert err_type(c.call, "sa.deactivate_authz", {"id": o2["authz_ids"][0]}) == "conflict"
    assert err_type(c.call, "sa.deactivate_authz", {"id": 999999999}) == "notFound"
    o3 = new_order(c, a["id"], ["w.example.org"])
    e = c.call("sa.set_order_error", {"id": o3["id"],
               "error": {"type": "badCSR", "detail": "bad", "status": 400}})
    assert e["status"] == "invalid" and e["error"]["type"] == "badCSR"
    # an expired order is invalid
    o4 = new_order(c, a["id"], ["v.example.org"], expires=ts(-10))
    assert c.call("sa.get_order", {"id": o4["id"]})["status"] == "invalid"


def test_expired_authz_status_and_reuse(c):
    a = new_account(c)
    o = new_order(c, a["id"], ["reuse.example.com"])
    validate(c, o["authz_ids"][0])
    ident = {"type": "dns", "value": "reuse.example.com", "wildcard": False}
    got = c.call("sa.get_valid_authzs", {"account_id": a["id"], "identifiers": [ident],
                                         "valid_until_after": ts(60)})["authzs"]
    assert [x["id"] for x in got] == o["authz_ids"]
    # not valid long enough / other profile / other account: none
    assert c.call("sa.get_valid_authzs", {"account_id": a["id"], "identifiers": [ident],
                  "valid_until_after": ts(86400 * 2)})["authzs"] == []
    assert c.call("sa.get_valid_authzs", {"account_id": a["id"], "identifiers": [ident],
                  "profile": "shortlived", "valid_until_after": ts(60)})["authzs"] == []
    b = new_account(c)
    assert c.call("sa.get_valid_authzs", {"account_id": b["id"], "identifiers": [ident],
                  "valid_until_after": ts(60)})["authzs"] == []
    # reuse in a new order, plus one new authz
    o2 = c.call("sa.new_order", {"account_id": a["id"], "expires": ts(3600), "profile": "classic",
                "identifiers": [{"type": "dns", "value": "new.example.com"},
                                {"type": "dns", "value": "reuse.example.com"}],
                "reuse_authz_ids": o["authz_ids"],
                "new_authzs": [authz_spec("new.example.com")]})
    assert o2["authz_ids"][1] == o["authz_ids"][0] and len(o2["authz_ids"]) == 2
    # reusing another account's authz is refused, nothing is stored
    before = c.call("sa.get_orders_by_account", {"account_id": b["id"]})["order_ids"]
    assert err_type(c.call, "sa.new_order", {"account_id": b["id"], "expires": ts(3600),
                    "identifiers": [{"type": "dns", "value": "reuse.example.com"}],
                    "reuse_authz_ids": o["authz_ids"], "new_authzs": []}) == "malformed"
    assert c.call("sa.get_orders_by_account", {"account_id": b["id"]})["order_ids"] == before
    # an expired pending authz reads as expired and cannot be claimed
    az = c.call("sa.new_authz", {"account_id": a["id"], "profile": "classic",
                                 **authz_spec("old.example.com", expires=-5)})
    assert az["status"] == "expired"
    assert err_type(c.call, "sa.set_authz_processing",
                    {"authz_id": az["id"], "challenge_id": az["challenges"][0]["id"]}) == "conflict"


def test_new_order_takes_a_valid_authz_it_finds(c):
    """sa.new_order with reuse_valid_after (issue 18: the RA no longer asks
    sa.get_valid_authzs first): a `reusable` new authz gives way to the
    account's newest valid authz of the same identifier and profile that
    outlives reuse_valid_after, and the order expires no later than it."""
    a = new_account(c)
    first = new_order(c, a["id"], ["take.example.com"])
    validate(c, first["authz_ids"][0])
    valid = c.call("sa.get_authz", {"id": first["authz_ids"][0]})

    def spec(name, reusable=True):
        return dict(authz_spec(name), reusable=reusable)

    o = new_order(c, a["id"], ["fresh.example.com", "take.example.com"], expires=ts(86400 * 3),
                  new_authzs=[spec("fresh.example.com"), spec("take.example.com")],
                  reuse_valid_after=ts(60), with_authzs=True)
    assert o["authz_ids"][1] == valid["id"] and o["authz_ids"][0] != valid["id"], o
    assert [x["status"] for x in o["authzs"]] == ["pending", "valid"], o
    assert o["authzs"][1] == valid
    assert o["expires"] == valid["expires"], (o["expires"], valid["expires"])
    stored = c.call("sa.get_order", {"id": o["id"], "with_authzs": True})
    assert stored["authz_ids"] == o["authz_ids"] and stored["expires"] == o["expires"]
    assert stored["authzs"] == o["authzs"]
    # RFC 9444: else a valid subdomain authorization of an ancestor, one
    # for every name below it (taken once, linked once)
    sub = c.call("sa.new_authz", {"account_id": a["id"], "profile": "classic",
                                  "subdomain_auth": True, **authz_spec("anc.example.com")})
    validate(c, sub["id"])
    below = ["x.anc.example.com", "y.anc.example.com"]
    o3 = new_order(c, a["id"], below, new_authzs=[dict(spec(n), ancestors=["anc.example.com"])
                                                  for n in below],
                   reuse_valid_after=ts(60))
    assert o3["authz_ids"] == [sub["id"]], o3
    # the name's own valid authz comes first
    o4 = new_order(c, a["id"], ["take.example.com"],
                   new_authzs=[dict(spec("take.example.com"), ancestors=["anc.example.com"])],
                   reuse_valid_after=ts(60))
    assert o4["authz_ids"] == [valid["id"]], o4
    # not taken: not reusable, no reuse_valid_after, not valid that long,
    # another profile; each order gets a new pending authz
    for kw in [dict(new_authzs=[spec("take.example.com", False)], reuse_valid_after=ts(60)),
               dict(new_authzs=[spec("take.example.com")]),
               dict(new_authzs=[spec("take.example.com")], reuse_valid_after=ts(86400 * 2)),
               dict(new_authzs=[spec("take.example.com")], reuse_valid_after=ts(60),
                    profile="shortlived")]:
        o2 = new_order(c, a["id"], ["take.example.com"], **kw)
        assert len(o2["authz_ids"]) == 1 and o2["authz_ids"] != [valid["id"]], kw
        assert c.call("sa.get_authz", {"id": o2["authz_ids"][0]})["status"] == "pending"
    # another account's valid authz is never taken
    b = new_account(c)
    ob = new_order(c, b["id"], ["take.example.com"], new_authzs=[spec("take.example.com")],
                   reuse_valid_after=ts(60))
    assert ob["authz_ids"] != [valid["id"]]
    # an order for an account that is not valid writes nothing
    c.call("sa.update_account", {"id": b["id"], "status": "deactivated"})
    before = c.call("sa.get_orders_by_account", {"account_id": b["id"]})["order_ids"]
    assert err_type(new_order, c, b["id"], ["take.example.com"],
                    new_authzs=[spec("take.example.com")], reuse_valid_after=ts(60)) == "unauthorized"
    assert c.call("sa.get_orders_by_account", {"account_id": b["id"]})["order_ids"] == before


def test_stale_processing_authzs(c):
    """sa.get_stale_processing_authzs: pending authzs whose challenge has been
    processing since before older_than (the RA's recovery fails them)."""
    a = new_account(c)

    def stale(delta_s):
        return c.call("sa.get_stale_processing_authzs", {"older_than": ts(delta_s)})["authz_ids"]

    az = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("stale.example.com")})
    assert az["id"] not in stale(5)
    ch = az["challenges"][0]["id"]
    c.call("sa.set_authz_processing", {"authz_id": az["id"], "challenge_id": ch})
    assert az["id"] in stale(5)
    assert az["id"] not in stale(-3600)
    r = c.call("sa.finalize_authz", {"authz_id": az["id"], "challenge_id": ch, "status": "invalid",
                                     "validation_record": [],
                                     "error": {"type": "serverInternal", "status": 500,
                                               "detail": "validation interrupted; retry with a new order"}})
    assert r["status"] == "invalid" and r["challenges"][0]["status"] == "invalid"
    assert az["id"] not in stale(5)
    # an authz deactivated while its challenge is processing (issue 19):
    # listed, and sa.finalize_authz finishes the challenge, the authz stays
    # deactivated
    d = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("stale2.example.com")})
    c.call("sa.set_authz_processing", {"authz_id": d["id"], "challenge_id": d["challenges"][0]["id"]})
    c.call("sa.deactivate_authz", {"id": d["id"]})
    assert d["id"] in stale(5)
    r = c.call("sa.finalize_authz", {"authz_id": d["id"], "challenge_id": d["challenges"][0]["id"],
                                     "status": "invalid", "validation_record": [],
                                     "error": {"type": "serverInternal", "status": 500, "detail": "x"}})
    assert r["status"] == "deactivated" and r["challenges"][0]["status"] == "invalid", r
    assert d["id"] not in stale(5)
    assert err_type(c.call, "sa.get_stale_processing_authzs", {"older_than": "yesterday"}) == "malformed"
    assert err_type(c.call, "sa.get_stale_processing_authzs", {}) == "malformed"


def test_new_authz_and_claim_errors(c):
    a = new_account(c)
    az = c.call("sa.new_authz", {"account_id": a["id"], "profile": "classic",
                                 **authz_spec("pre.example.com")})
    assert az["status"] == "pending" and az["profile"] == "classic"
    ch = az["challenges"]
    assert err_type(c.call, "sa.finalize_authz", {"authz_id": az["id"], "challenge_id": ch[0]["id"],
                    "status": "valid"}) == "conflict"
    # claim with a challenge of another authz: notFound and rolled back
    other = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("o.example.com")})
    assert err_type(c.call, "sa.set_authz_processing",
                    {"authz_id": az["id"], "challenge_id": other["challenges"][0]["id"]}) == "notFound"
    r = c.call("sa.set_authz_processing", {"authz_id": az["id"], "challenge_id": ch[1]["id"]})
    assert r["challenges"][1]["status"] == "processing"
    assert err_type(c.call, "sa.set_authz_processing", {"authz_id": 999999999,
                    "challenge_id": 1}) == "notFound"
    bad = authz_spec("dup.example.com")
    bad["challenges"] = [{"type": "http-01", "token": "a"}, {"type": "http-01", "token": "b"}]
    assert err_type(c.call, "sa.new_authz", {"account_id": a["id"], **bad}) == "malformed"


def concurrently(n, fn):
    results = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        cl = RpcClient(CURRENT_SOCK[0], timeout=30)
        try:
            cl.connect()
            barrier.wait()
            try:
                results[i] = ("ok", fn(cl))
            except RpcError as e:
                results[i] = ("err", e.type)
        finally:
            cl.close()
    ths = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return results


CURRENT_SOCK = [None]


def claim_races(env, c, method, rounds, owner=False):
    """rounds times: 16 concurrent `method` calls, each for one of the two
    challenges of a new authz (with the account when owner); after each, one
    challenge is processing. Yields (account, results, the authz read after)."""
    CURRENT_SOCK[0] = "unix:" + env.sock
    a = new_account(c)
    acct = {"account_id": a["id"]} if owner else {}
    for _ in range(rounds):
        az = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("race.example.com")})
        chs = az["challenges"]
        res = concurrently(16, lambda cl: cl.call(method, {
            **acct, "authz_id": az["id"],
            "challenge_id": chs[threading.get_ident() % 2]["id"]}))
        got = c.call("sa.get_authz", {"id": az["id"]})
        assert sum(1 for ch in got["challenges"] if ch["status"] == "processing") == 1
        yield a, res, got


def test_tkauth_spent_jtis_are_pruned(env, c):
    """schema/0015 keeps each spent tkauth-01 Authority Token (RFC 9447 §4:
    the jti tracks "when the same "atc" Authority Token is being used for
    multiple challenges over time within its set lifetime"). Past its
    lifetime the row is useless (RFC 9448 §6 step 7: an expired token is
    refused), so sa.tkauth_spend_jti deletes rows expired more than an hour
    ago in the statement that spends; the hour is kept for the seconds
    between the VA's check and the spend."""
    acct = new_account(c)["id"]
    iss = "CN=prune test %s" % rand_b64(6)

    def spend(jti, expires, ch):
        return c.call("sa.tkauth_spend_jti", {"issuer": iss, "jti": jti, "account_id": acct,
                                              "challenge_id": ch, "expires": ts(expires)})
    for i in range(3):
        assert spend("old-%d" % i, -7200, 9000 + i) == {"challenge_id": 9000 + i}
    spend("recent", -60, 9010)   # expired, but within the hour: kept
    spend("fresh", 600, 9011)
    rows = psql(env.dsn, "select jti from tkauth_jtis where issuer = '%s' order by jti" % iss)
    assert rows.split() == ["fresh", "recent"], rows
    # a pruned token is not thereby spendable again: the VA refuses it as
    # expired first; a live one stays spent
    with pytest.raises(RpcError) as ei:
        spend("fresh", 600, 9012)
    assert ei.value.type == "conflict"


def test_concurrent_authz_claim_one_winner(env, c):
    for _, res, _ in claim_races(env, c, "sa.set_authz_processing", 5):
        oks = [r for r in res if r[0] == "ok"]
        assert len(oks) == 1, res
        assert all(r == ("err", "conflict") for r in res if r[0] == "err")


def test_concurrent_challenge_claim_one_winner(env, c):
    """sa.claim_challenge answers from its one statement: of 16 concurrent
    claims exactly one gets claimed (with the thumbprint and the authz as
    stored after), the others the authz unclaimed."""
    for a, res, got in claim_races(env, c, "sa.claim_challenge", 3, owner=True):
        assert all(r[0] == "ok" for r in res), res
        won = [r[1] for r in res if r[1]["claimed"]]
        assert len(won) == 1 and won[0]["thumbprint"] == a["thumbprint"], res
        assert won[0]["authz"] == got
        assert all(r[1]["authz"]["id"] == got["id"] and "thumbprint" not in r[1]
                   for r in res if not r[1]["claimed"])


def test_concurrent_order_processing_one_winner(env, c):
    CURRENT_SOCK[0] = "unix:" + env.sock
    a = new_account(c)
    for _ in range(5):
        o = new_order(c, a["id"], ["r1.example.com", "r2.example.com"])
        for aid in o["authz_ids"]:
            validate(c, aid)
        res = concurrently(16, lambda cl: cl.call("sa.set_order_processing", {"id": o["id"]}))
        assert sum(1 for r in res if r[0] == "ok") == 1, res
        assert all(r == ("err", "orderNotReady") for r in res if r[0] == "err")


def test_claim_challenge_checks_owner_account_and_state(env, c):
    """sa.claim_challenge (issue 18): one statement starts a validation
    only for the owner, a valid account, a pending unexpired authz and a
    pending challenge; otherwise nothing changes and the authz is told as
    it is."""
    CURRENT_SOCK[0] = "unix:" + env.sock
    a, b = new_account(c), new_account(c)
    az = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("claim.example.com")})
    ch = az["challenges"][0]["id"]
    # another account: not claimed, nothing processing
    r = c.call("sa.claim_challenge", {"account_id": b["id"], "authz_id": az["id"], "challenge_id": ch})
    assert r["claimed"] is False and r["authz"]["account_id"] == a["id"] and "thumbprint" not in r
    # a challenge of another authz: not claimed
    other = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("claim2.example.com")})
    r = c.call("sa.claim_challenge", {"account_id": a["id"], "authz_id": az["id"],
                                      "challenge_id": other["challenges"][0]["id"]})
    assert r["claimed"] is False
    # no such authz: not claimed, no authz
    assert c.call("sa.claim_challenge", {"account_id": a["id"], "authz_id": 999999999,
                                         "challenge_id": ch}) == {"claimed": False}
    got = c.call("sa.get_authz", {"id": az["id"]})
    assert all(x["status"] == "pending" for x in got["challenges"])
    # the owner: claimed once, with the account key's thumbprint
    r = c.call("sa.claim_challenge", {"account_id": a["id"], "authz_id": az["id"], "challenge_id": ch})
    assert r["claimed"] is True and r["thumbprint"] == a["thumbprint"]
    assert [x["status"] for x in r["authz"]["challenges"] if x["id"] == ch] == ["processing"]
    r = c.call("sa.claim_challenge", {"account_id": a["id"], "authz_id": az["id"], "challenge_id": ch})
    assert r["claimed"] is False
    # a deactivated account cannot start one
    c.call("sa.update_account", {"id": b["id"], "status": "deactivated"})
    bz = c.call("sa.new_authz", {"account_id": b["id"], **authz_spec("claim3.example.com")})
    r = c.call("sa.claim_challenge", {"account_id": b["id"], "authz_id": bz["id"],
                                      "challenge_id": bz["challenges"][0]["id"]})
    assert r["claimed"] is False
    assert all(x["status"] == "pending" for x in r["authz"]["challenges"])
    # concurrent claims: exactly one winner
    for _ in range(3):
        z = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("race2.example.com")})
        res = concurrently(16, lambda cl: cl.call("sa.claim_challenge", {
            "account_id": a["id"], "authz_id": z["id"],
            "challenge_id": z["challenges"][threading.get_ident() % 2]["id"]}))
        assert all(r[0] == "ok" for r in res), res
        assert sum(1 for r in res if r[1]["claimed"]) == 1, res
        got = c.call("sa.get_authz", {"id": z["id"]})
        assert sum(1 for x in got["challenges"] if x["status"] == "processing") == 1


def test_certificate_store_makes_the_order_valid(c):
    """sa.add_certificate with finalize_order: the certificate and the
    order's valid state are one commit (issue 18); an order that is not
    processing keeps its state, the certificate is stored all the same."""
    a = new_account(c)
    o = new_order(c, a["id"], ["fin.example.net"])
    validate(c, o["authz_ids"][0])
    got = c.call("sa.get_order", {"id": o["id"], "with_authzs": True})
    assert [x["id"] for x in got["authzs"]] == o["authz_ids"]
    assert got["authzs"][0]["challenges"][0]["validated"].endswith("Z")
    assert "authzs" not in c.call("sa.get_order", {"id": o["id"]})
    c.call("sa.set_order_processing", {"id": o["id"], "csr": "Q1NS"})
    serial = rand_serial()
    c.call("sa.reserve_serial", {"serial": serial, "account_id": a["id"], "expires": ts(86400)})
    p = {"serial": serial, "der": rand_b64(300), "account_id": a["id"], "order_id": o["id"],
         "issuer_id": "00112233aabbccdd", "profile": "classic",
         "identifiers": [{"type": "dns", "value": "fin.example.net"}],
         "not_before": ts(-60), "not_after": ts(86400), "key_hash": os.urandom(32).hex(),
         "finalize_order": True}
    assert c.call("sa.add_certificate", p) == {"order_valid": True}
    f = c.call("sa.get_order", {"id": o["id"]})
    assert f["status"] == "valid" and f["certificate_serial"] == serial and "csr" not in f
    # not processing (already valid): stored, the order untouched
    serial2 = rand_serial()
    c.call("sa.reserve_serial", {"serial": serial2, "account_id": a["id"], "expires": ts(86400)})
    p.update(serial=serial2, key_hash=os.urandom(32).hex())
    assert c.call("sa.add_certificate", p) == {}
    assert c.call("sa.get_order", {"id": o["id"]})["certificate_serial"] == serial
    assert c.call("sa.get_certificate", {"serial": serial2})["order_id"] == o["id"]


def test_finalize_claim_reclaim_and_lost_claim(c):
    """The finalize claim (0016_order_claim, docs/scaling.md): once another
    RA's recovery took a processing order over (sa.reclaim_order, only when
    the claim is older than its bound), the first claimant can neither
    reserve a serial nor store a certificate for it; the new one can."""
    a = new_account(c)
    o = new_order(c, a["id"], ["claim.example.net"])
    validate(c, o["authz_ids"][0])
    old, new = os.urandom(16).hex(), os.urandom(16).hex()
    c.call("sa.set_order_processing", {"id": o["id"], "csr": "Q1NS", "claim": old})
    # a fresh claim is not taken over
    assert err_type(c.call, "sa.reclaim_order",
                    {"id": o["id"], "claim": new, "older_than": ts(-60)}) == "conflict"
    # the holder's reserve shows it alive
    assert c.call("sa.reserve_serial", {"serial": rand_serial(), "account_id": a["id"],
                                        "expires": ts(86400), "order_id": o["id"], "claim": old}) == {}
    s_old = rand_serial()
    c.call("sa.reserve_serial", {"serial": s_old, "account_id": a["id"], "expires": ts(86400)})
    # stale by the bound: taken over
    got = c.call("sa.reclaim_order", {"id": o["id"], "claim": new, "older_than": ts(5)})
    assert got["id"] == o["id"] and got["status"] == "processing" and "claim" not in got
    assert err_type(c.call, "sa.reserve_serial", {"serial": rand_serial(), "account_id": a["id"],
                                                  "expires": ts(86400), "order_id": o["id"],
                                                  "claim": old}) == "orderNotReady"
    p = {"serial": s_old, "der": rand_b64(300), "account_id": a["id"], "order_id": o["id"],
         "issuer_id": "00112233aabbccdd", "profile": "classic",
         "identifiers": [{"type": "dns", "value": "claim.example.net"}],
         "not_before": ts(-60), "not_after": ts(86400), "key_hash": os.urandom(32).hex(),
         "finalize_order": True, "claim": old}
    assert err_type(c.call, "sa.add_certificate", p) == "orderNotReady"
    assert c.call("sa.get_certificates", {"order_id": o["id"]})["certificates"] == []
    s_new = rand_serial()
    c.call("sa.reserve_serial", {"serial": s_new, "account_id": a["id"], "expires": ts(86400),
                                 "order_id": o["id"], "claim": new})
    p.update(serial=s_new, claim=new, key_hash=os.urandom(32).hex())
    assert c.call("sa.add_certificate", p) == {"order_valid": True}
    assert c.call("sa.get_order", {"id": o["id"]})["certificate_serial"] == s_new
    # finished: nothing more under either claim, nothing to take over
    assert err_type(c.call, "sa.reserve_serial", {"serial": rand_serial(), "account_id": a["id"],
                                                  "expires": ts(86400), "order_id": o["id"],
                                                  "claim": new}) == "orderNotReady"
    assert err_type(c.call, "sa.reclaim_order",
                    {"id": o["id"], "claim": old, "older_than": ts(5)}) == "conflict"
    assert err_type(c.call, "sa.reserve_serial", {"serial": rand_serial(), "account_id": a["id"],
                                                  "expires": ts(86400), "order_id": o["id"]}) == "malformed"


def test_order_claim_refuses_a_blocked_key(c):
    a = new_account(c)
    o = new_order(c, a["id"], ["blk.example.net"])
    validate(c, o["authz_ids"][0])
    kh = os.urandom(32).hex()
    c.call("sa.block_key", {"key_hash": kh, "source": "admin", "comment": "leaked"})
    assert err_type(c.call, "sa.set_order_processing",
                    {"id": o["id"], "csr": "Q1NS", "key_hash": kh}) == "badPublicKey"
    assert c.call("sa.get_order", {"id": o["id"]})["status"] == "ready"
    p = c.call("sa.set_order_processing", {"id": o["id"], "csr": "Q1NS", "key_hash": os.urandom(32).hex()})
    assert p["status"] == "processing"


def test_order_claim_checks_account_status_and_key(c):
    """sa.set_order_processing checks in its statement what the RA used to
    read first (issue 18): the order's account is valid, and the CSR key
    is not the account key (RFC 8555 §11.1: "The server MUST NOT allow
    the account key to be used as the public key of a certificate")."""
    a = new_account(c)
    o = new_order(c, a["id"], ["own.claim.example.net"])
    validate(c, o["authz_ids"][0])
    kh = os.urandom(32).hex()
    # the CSR key's thumbprint is the account's: badCSR, order still ready
    assert err_type(c.call, "sa.set_order_processing",
                    {"id": o["id"], "csr": "Q1NS", "key_hash": kh,
                     "csr_thumbprint": a["thumbprint"]}) == "badCSR"
    assert c.call("sa.get_order", {"id": o["id"]})["status"] == "ready"
    # a deactivated account cannot claim its ready order
    c.call("sa.update_account", {"id": a["id"], "status": "deactivated"})
    with pytest.raises(RpcError) as ei:
        c.call("sa.set_order_processing", {"id": o["id"], "csr": "Q1NS", "key_hash": kh,
                                           "csr_thumbprint": rand_b64()})
    assert ei.value.type == "unauthorized" and "deactivated" in str(ei.value)
    assert c.call("sa.get_order", {"id": o["id"]})["status"] == "ready"
    # nor create an order (checked in the transaction that inserts it):
    # nothing of it is left behind
    n0 = c.call("sa.get_orders_by_account", {"account_id": a["id"]})["order_ids"]
    assert err_type(new_order, c, a["id"], ["late.claim.example.net"]) == "unauthorized"
    assert c.call("sa.get_orders_by_account", {"account_id": a["id"]})["order_ids"] == n0
    assert err_type(new_order, c, 987654321, ["ghost.claim.example.net"]) == "accountDoesNotExist"
    # a missing order is notFound, as before
    assert err_type(c.call, "sa.set_order_processing", {"id": 987654321, "csr": "Q1NS"}) == "notFound"
    # a valid account with another key claims, and gets the order back
    b = new_account(c)
    o = new_order(c, b["id"], ["other.claim.example.net"])
    validate(c, o["authz_ids"][0])
    p = c.call("sa.set_order_processing", {"id": o["id"], "csr": "Q1NS", "key_hash": kh,
                                           "csr_thumbprint": rand_b64()})
    assert p["status"] == "processing" and p["id"] == o["id"] and p["csr"] == "Q1NS"
    assert p["authz_ids"] == o["authz_ids"]


def test_orders_by_account_paging(c):
    a = new_account(c)
    ids = [new_order(c, a["id"], ["p%d.example.com" % i])["id"] for i in range(5)]
    new_order(c, a["id"], ["gone.example.com"], expires=ts(-5))
    r = c.call("sa.get_orders_by_account", {"account_id": a["id"], "limit": 3})
    assert r["order_ids"] == ids[:3] and r["more"] is True
    r = c.call("sa.get_orders_by_account", {"account_id": a["id"], "after_id": ids[2], "limit": 3})
    assert r["order_ids"] == ids[3:] and r["more"] is False
    assert err_type(c.call, "sa.get_orders_by_account", {"account_id": a["id"], "limit": 5000}) == "malformed"


def test_replaces(c):
    a = new_account(c)
    old = add_cert(c, a["id"], ["ari.example.com"])
    assert c.call("sa.replacement_exists", {"serial": old})["exists"] is False
    o = new_order(c, a["id"], ["ari.example.com"], replaces=old)
    assert o["replaces"] == old
    assert c.call("sa.replacement_exists", {"serial": old})["exists"] is True
    assert err_type(new_order, c, a["id"], ["ari.example.com"], replaces=old) == "alreadyReplaced"
    # a failed replacement frees the certificate for another attempt
    c.call("sa.set_order_error", {"id": o["id"], "error": {"type": "serverInternal"}})
    assert c.call("sa.replacement_exists", {"serial": old})["exists"] is False
    o2 = new_order(c, a["id"], ["ari.example.com"], replaces=old)
    assert o2["replaces"] == old
    # an ARI CertID names the same certificate (the RA passes the CertID to
    # new_order and the serial to replacement_exists)
    old2 = "00" + rand_serial()[2:]
    add_cert(c, a["id"], ["ari2.example.com"], serial=old2)
    certid = rand_b64(20) + "." + base64.urlsafe_b64encode(bytes.fromhex(old2)).decode().rstrip("=")
    o3 = new_order(c, a["id"], ["ari2.example.com"], replaces=certid)
    assert o3["replaces"] == certid
    assert c.call("sa.replacement_exists", {"serial": old2})["exists"] is True
    assert c.call("sa.replacement_exists", {"serial": certid})["exists"] is True
    assert err_type(new_order, c, a["id"], ["ari2.example.com"], replaces=old2) == "alreadyReplaced"


# ---------------------------------------------------------------- certificates

def test_serials_and_certificates(c):
    a = new_account(c)
    s = rand_serial()
    assert c.call("sa.reserve_serial", {"serial": s, "account_id": a["id"], "expires": ts(3600)}) == {}
    assert err_type(c.call, "sa.reserve_serial", {"serial": s, "account_id": a["id"],
                    "expires": ts(3600)}) == "conflict"
    assert err_type(c.call, "sa.reserve_serial", {"serial": rand_serial(), "account_id": 999999999,
                    "expires": ts(3600)}) == "malformed"
    assert err_type(c.call, "sa.reserve_serial", {"serial": "XYZ", "account_id": a["id"],
                    "expires": ts(3600)}) == "malformed"
    kh = os.urandom(32).hex()
    add_cert(c, a["id"], ["c.example.com", "www.c.example.com"], serial=s, reserve=False, key_hash=kh)
    assert err_type(add_cert, c, a["id"], ["c.example.com"], None, s, False) == "conflict"
    assert err_type(add_cert, c, a["id"], ["c.example.com"], None, rand_serial(), False) == "malformed"
    cert = c.call("sa.get_certificate", {"serial": s})
    assert cert["status"] == "good" and cert["key_hash"] == kh and cert["shard"] == 1
    assert base64.urlsafe_b64decode(cert["der"] + "==") and len(cert["der"]) == 400
    assert cert["identifiers"][1]["value"] == "www.c.example.com"
    assert err_type(c.call, "sa.get_certificate", {"serial": rand_serial()}) == "notFound"
    assert c.call("sa.serials_by_account", {"account_id": a["id"]})["serials"] == [s]
    assert c.call("sa.serials_by_key", {"key_hash": kh})["serials"] == [s]
    lst = c.call("sa.get_certificates", {"account_id": a["id"], "limit": 10})["certificates"]
    assert [x["serial"] for x in lst] == [s] and "der" not in lst[0]
    lst = c.call("sa.get_certificates", {"key_hash": kh})["certificates"]
    assert [x["serial"] for x in lst] == [s]
    lst = c.call("sa.get_certificates", {"identifier": {"type": "dns", "value": "www.c.example.com"}})
    assert [x["serial"] for x in lst["certificates"]] == [s]
    lst = c.call("sa.get_certificates", {"account_id": a["id"], "expiring_before": ts(3600)})
    assert lst["certificates"] == []
    soon = add_cert(c, a["id"], ["soon.c.example.com"], not_after=1800)
    lst = c.call("sa.get_certificates", {"account_id": a["id"], "expiring_before": ts(3600)})
    assert [x["serial"] for x in lst["certificates"]] == [soon]
    lst = c.call("sa.get_certificates", {"expiring_before": ts(3600), "limit": 1000})
    assert soon in [x["serial"] for x in lst["certificates"]]
    assert s not in [x["serial"] for x in lst["certificates"]]
    assert c.call("sa.serials_by_account", {"account_id": a["id"]})["serials"] == [soon, s]
    assert err_type(c.call, "sa.get_certificates", {}) == "malformed"


def test_counts(c):
    a = new_account(c)
    label = "cnt%s" % os.urandom(3).hex()
    dom = label + ".example"
    add_cert(c, a["id"], ["www." + dom, dom])
    add_cert(c, a["id"], ["*." + dom])
    add_cert(c, a["id"], [label + "-x.example"])  # another registered domain
    assert c.call("sa.count_certs_by_domain", {"domain": dom, "window_ms": 3600000})["count"] == 2
    r = c.call("sa.fqdn_set_issued", {"identifiers": [{"type": "dns", "value": dom},
               {"type": "dns", "value": "www." + dom}], "window_ms": 3600000})
    assert r["count"] == 1 and len(r["timestamps"]) == 1
    r = c.call("sa.fqdn_set_issued", {"identifiers": [{"type": "dns", "value": dom}],
               "window_ms": 3600000})
    assert r["count"] == 0
    assert err_type(c.call, "sa.count_certs_by_domain", {"domain": dom, "window_ms": -1}) == "malformed"


def test_revocation_and_crl(c):
    a = new_account(c)
    issuer = os.urandom(8).hex()
    s1 = add_cert(c, a["id"], ["r1.example.com"], shard=2, issuer=issuer)
    s2 = add_cert(c, a["id"], ["r2.example.com"], shard=2, issuer=issuer)
    r = c.call("sa.revoke_certificate", {"serial": s1, "reason": 4, "revoked_at": ts(-5)})
    assert r["status"] == "revoked" and r["revoked_reason"] == 4
    assert err_type(c.call, "sa.revoke_certificate", {"serial": s1, "reason": 4,
                    "revoked_at": ts()}) == "alreadyRevoked"
    # re-revocation for keyCompromise updates the reason once
    r = c.call("sa.revoke_certificate", {"serial": s1, "reason": 1, "revoked_at": ts()})
    assert r["revoked_reason"] == 1
    assert err_type(c.call, "sa.revoke_certificate", {"serial": s1, "reason": 1,
                    "revoked_at": ts()}) == "alreadyRevoked"
    assert err_type(c.call, "sa.revoke_certificate", {"serial": s2, "reason": 7,
                    "revoked_at": ts()}) == "badRevocationReason"
    assert err_type(c.call, "sa.revoke_certificate", {"serial": rand_serial(), "reason": 0,
                    "revoked_at": ts()}) == "notFound"
    e = c.call("sa.revoked_by_shard", {"issuer_id": issuer, "shard": 2})["entries"]
    assert [x["serial"] for x in e] == [s1] and e[0]["reason"] == 1
    assert c.call("sa.revoked_by_shard", {"issuer_id": issuer, "shard": 3})["entries"] == []
    n1 = c.call("sa.next_crl_number", {"issuer_id": issuer, "shard": 2})["number"]
    n2 = c.call("sa.next_crl_number", {"issuer_id": issuer, "shard": 2})["number"]
    assert n2 > n1
    assert err_type(c.call, "sa.get_crl", {"issuer_id": issuer, "shard": 2}) == "notFound"
    der = rand_b64(100)
    c.call("sa.store_crl", {"issuer_id": issuer, "shard": 2, "number": n2, "der": der,
                            "this_update": ts(), "next_update": ts(86400)})
    g = c.call("sa.get_crl", {"issuer_id": issuer, "shard": 2})
    assert g["number"] == n2 and g["der"] == der
    assert err_type(c.call, "sa.store_crl", {"issuer_id": issuer, "shard": 2, "number": n1,
                    "der": der, "this_update": ts(), "next_update": ts(86400)}) == "conflict"
    assert c.call("sa.next_crl_number", {"issuer_id": issuer, "shard": 2})["number"] > n2


def test_ocsp_and_blocked_keys(c):
    a = new_account(c)
    s = add_cert(c, a["id"], ["ocsp.example.com"])
    assert err_type(c.call, "sa.get_ocsp", {"serial": s}) == "notFound"
    der = rand_b64(64)
    c.call("sa.store_ocsp", {"serial": s, "der": der, "this_update": ts(), "next_update": ts(3600)})
    der2 = rand_b64(64)
    c.call("sa.store_ocsp", {"serial": s, "der": der2, "this_update": ts(), "next_update": ts(3600)})
    assert c.call("sa.get_ocsp", {"serial": s})["der"] == der2
    assert err_type(c.call, "sa.store_ocsp", {"serial": rand_serial(), "der": der,
                    "this_update": ts(), "next_update": ts(3600)}) == "notFound"
    kh = os.urandom(32).hex()
    assert c.call("sa.key_blocked", {"key_hash": kh})["blocked"] is False
    assert c.call("sa.block_key", {"key_hash": kh, "source": "admin", "comment": "leaked"}) == {}
    assert c.call("sa.block_key", {"key_hash": kh, "source": "admin", "comment": "again"}) == {}
    assert c.call("sa.key_blocked", {"key_hash": kh})["blocked"] is True


def test_rate_limit_gcra(env, c):
    key = "rl:" + rand_b64(6)
    now = int(time.time() * 1000)
    p = {"key": key, "emission_ms": 1000, "burst": 3, "cost": 1, "now_ms": now}
    got = [c.call("sa.rate_limit_spend", p) for _ in range(4)]
    assert [g["allowed"] for g in got] == [True, True, True, False]
    assert [g["remaining"] for g in got[:3]] == [2, 1, 0]
    assert got[3]["retry_after_ms"] == 1000
    p["now_ms"] = now + 1000
    assert c.call("sa.rate_limit_spend", p)["allowed"] is True
    # atomic under concurrency: exactly `burst` of 20 concurrent spends pass
    CURRENT_SOCK[0] = "unix:" + env.sock
    key2 = "rl:" + rand_b64(6)
    res = concurrently(20, lambda cl: cl.call("sa.rate_limit_spend", {
        "key": key2, "emission_ms": 60000, "burst": 5, "cost": 1, "now_ms": now}))
    assert sum(1 for r in res if r[0] == "ok" and r[1]["allowed"]) == 5, res
    assert err_type(c.call, "sa.rate_limit_spend", {"key": key, "emission_ms": 0, "burst": 1,
                    "now_ms": now}) == "malformed"


# ---------------------------------------------------------------- robustness

BAD_PARAMS = [
    ("sa.get_account", {"id": "1"}), ("sa.get_account", {"id": -1}),
    ("sa.get_account", {"id": 2 ** 62}), ("sa.get_account", {}),
    ("sa.new_account", {"key": "x", "thumbprint": "t"}),
    ("sa.new_account", {"key": {}, "thumbprint": "t", "contact": [1]}),
    ("sa.new_order", {"account_id": 1, "expires": "tomorrow", "identifiers": []}),
    ("sa.new_order", {"account_id": 1, "expires": "2030-01-01T00:00:00Z",
                      "identifiers": [{"type": "uri", "value": "a"}]}),
    ("sa.new_order", {"account_id": 1, "expires": "2030-01-01T00:00:00Z", "identifiers": [],
                      "new_authzs": [{"identifier": {"type": "dns", "value": "a"},
                                      "expires": "2030-01-01T00:00:00Z",
                                      "challenges": [{"type": "http-01", "token": "a'b"}]}]}),
    ("sa.new_order", {"account_id": 1, "expires": "2030-01-01T00:00:00Z", "identifiers": [],
                      "reuse_authz_ids": ["x"]}),
    ("sa.add_certificate", {"serial": "zz"}),
    ("sa.add_certificate", {"serial": "aa", "der": "!!", "account_id": 1}),
    ("sa.get_authzs", {"ids": [1, "2"]}),
    ("sa.finalize_authz", {"authz_id": 1, "challenge_id": 1, "status": "pending"}),
    ("sa.get_valid_authzs", {"account_id": 1, "identifiers": {}, "valid_until_after": "x"}),
    ("sa.store_crl", {"issuer_id": "aa", "shard": -1}),
    ("sa.rate_limit_spend", {"key": "k", "emission_ms": 2 ** 52, "burst": 2 ** 40, "now_ms": 1}),
    ("sa.count_certs_by_domain", {"domain": "", "window_ms": 1}),
    ("sa.get_certificates", {"limit": 0, "account_id": 1}),
]


@pytest.mark.parametrize("method,params", BAD_PARAMS)
def test_bad_params_are_malformed(c, method, params):
    assert err_type(c.call, method, params) in ("malformed", "badRevocationReason")


def test_non_object_params_and_health(env, c):
    c.send_raw(json.dumps({"id": 99, "method": "sa.get_account", "params": [1]}).encode())
    r = c.recv_frame()
    assert r["id"] == 99 and "error" in r
    assert c.call("health.check") is not None
    body = urllib.request.urlopen("http://127.0.0.1:%d/healthz" % DEBUG_PORT, timeout=5).read()
    assert body.strip() == b"ok"
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % DEBUG_PORT, timeout=5).read()
    assert b"anvil_sa_errors_total" in m and b"anvil_sa_db_connections_busy" in m


def test_kill9_under_load_leaves_no_partial_writes(env, c):
    """A second anvil-sa on the same database is killed with SIGKILL while
    16 clients create orders and certificates: every stored order has all
    its authz links and every certificate its status, key-hash, name and
    FQDN-set rows (each change was one transaction)."""
    sock2 = os.path.join(env.dir, "sa2.sock")
    cfg = json.load(open(env.config()))
    cfg["rpc"]["listen"] = "unix:" + sock2
    cfg["debug"]["port"] = DEBUG_PORT + 1
    path = os.path.join(env.dir, "sa2.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(env.dir, "sa2.log"), "ab")
    proc = subprocess.Popen([SA_BIN, "--config", path], cwd=TOP, stdout=log, stderr=log)
    try:
        deadline = time.time() + 60
        while not os.path.exists(sock2) and time.time() < deadline:
            time.sleep(0.05)
        a = new_account(c)
        stop = threading.Event()
        done = {"orders": 0, "certs": 0}
        lock = threading.Lock()

        def load(i):
            cl = RpcClient("unix:" + sock2, timeout=10)
            n = 0
            while not stop.is_set():
                try:
                    if i % 2:
                        new_order(cl, a["id"], ["k%d-%d.example.com" % (i, n), "*.k%d-%d.example.com" % (i, n)])
                        k = "orders"
                    else:
                        add_cert(cl, a["id"], ["k%d-%d.example.com" % (i, n), "w.k%d-%d.example.com" % (i, n)])
                        k = "certs"
                    with lock:
                        done[k] += 1
                except (OSError, ConnectionError, RpcError):
                    return
                n += 1
        ths = [threading.Thread(target=load, args=(i,)) for i in range(16)]
        for t in ths:
            t.start()
        # killed in the middle of the load: once both kinds of write have
        # gone through (polled: a busy machine may take seconds to start
        # the threads and the second server's connections), then 1 s more
        deadline = time.time() + 60
        while time.time() < deadline:
            with lock:
                if done["orders"] > 0 and done["certs"] > 0:
                    break
            time.sleep(0.05)
        time.sleep(1)
        proc.kill()
        proc.wait(timeout=10)
        stop.set()
        for t in ths:
            t.join(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert done["orders"] > 0 and done["certs"] > 0, done
    acct = a["id"]
    # orders: 2 identifiers -> exactly 2 authz links, each authz with its challenges
    assert psql(env.dsn, "select count(*) from orders o where account_id = %d and "
                "(select count(*) from order_authzs oa where oa.order_id = o.id) <> 2" % acct) == "0"
    assert psql(env.dsn, "select count(*) from authzs z where account_id = %d and "
                "(select count(*) from challenges ch where ch.authz_id = z.id) <> 2" % acct) == "0"
    assert psql(env.dsn, "select count(*) from authzs z where account_id = %d and not exists "
                "(select 1 from order_authzs oa where oa.authz_id = z.id)" % acct) == "0"
    ncert = int(psql(env.dsn, "select count(*) from certificates where account_id = %d" % acct))
    assert ncert >= done["certs"]
    for table in ("certificate_status", "key_hash_to_serial", "fqdn_sets"):
        assert psql(env.dsn, "select count(*) from certificates c where account_id = %d and not exists "
                    "(select 1 from %s t where t.serial = c.serial)" % (acct, table)) == "0", table
    assert psql(env.dsn, "select count(*) from certificates c where account_id = %d and "
                "(select count(*) from issued_names n where n.serial = c.serial) <> 2" % acct) == "0"
    # the first server is unaffected
    assert c.call("sa.get_account", {"id": acct})["id"] == acct


def test_postgres_restart_under_load(env, c):
    """Stop PostgreSQL under load: callers get a retryable error, never a
    dropped connection or a crash; after the restart calls succeed again."""
    a = new_account(c)
    stop = threading.Event()
    stats = {"ok": 0, "unavailable": 0, "other": []}
    lock = threading.Lock()

    def load():
        cl = env.client()
        while not stop.is_set():
            try:
                cl.call("sa.get_account", {"id": a["id"]})
                k = "ok"
            except RpcError as e:
                k = "unavailable" if e.type == "unavailable" else e.type
            except Exception as e:  # connection dropped: a failure
                k = repr(e)
            with lock:
                if k in ("ok", "unavailable"):
                    stats[k] += 1
                else:
                    stats["other"].append(k)
        cl.close()
    ths = [threading.Thread(target=load) for _ in range(6)]
    for t in ths:
        t.start()
    time.sleep(0.5)
    subprocess.run([PG, "stop", env.pgdir], check=True, capture_output=True)

    def down():
        """(retryable errors so far, /healthz said 503) once both are
        seen, polled while PostgreSQL is down (a busy machine can take
        seconds before the callers' next call)."""
        with lock:
            during = stats["unavailable"]
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/healthz" % DEBUG_PORT, timeout=5)
            health = False
        except urllib.error.HTTPError as e:
            health = e.code == 503
        return during, health
    deadline = time.time() + 30
    during, health_down = down()
    while not (during > 0 and health_down) and time.time() < deadline:
        time.sleep(0.2)
        during, health_down = down()
    subprocess.run([PG, "start", env.pgdir], check=True, capture_output=True)
    with lock:
        ok_before = stats["ok"]
    deadline = time.time() + 60
    while time.time() < deadline:
        with lock:
            if stats["ok"] > ok_before + 50:
                break
        time.sleep(0.1)
    stop.set()
    for t in ths:
        t.join()
    assert env.proc.poll() is None, "anvil-sa died"
    assert stats["other"] == []
    assert during > 0, "no retryable errors while PostgreSQL was down"
    assert health_down
    assert stats["ok"] > ok_before + 50, "calls did not recover"
    # writes work again too, and the pool re-connected
    assert new_account(c)["id"] > a["id"]
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % DEBUG_PORT, timeout=5).read().decode()
    connects = [float(l.split()[-1]) for l in m.splitlines() if l.startswith("anvil_sa_db_connects_total")]
    assert connects and connects[0] >= 2


def record(c, a, az, ch, status="valid", **kw):
    return c.call("sa.record_validation", {"account_id": a["id"], "authz_id": az["id"],
                                           "challenge_id": ch, "status": status,
                                           "validation_record": [{"hostname": "x"}], **kw})


def test_peek_and_record_validation(env, c):
    """Issue 18, one commit per validation: sa.peek_challenge answers what
    sa.claim_challenge would, writing nothing; sa.record_validation claims
    and finishes the challenge in one statement, only under the claim's
    conditions. RFC 8555 §7.1.6: "If validation is successful, the
    challenge moves to the "valid" state; if there is an error, the
    challenge moves to the "invalid" state." (from pending, through a
    processing no other statement ever sees); §7.5.1: "The server is said
    to "finalize" the authorization when it has completed one of the
    validations" (the authz takes the result in the same statement)."""
    CURRENT_SOCK[0] = "unix:" + env.sock
    a, b = new_account(c), new_account(c)
    az = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("peek.example.com")})
    ch = az["challenges"][0]["id"]
    peek = {"account_id": a["id"], "authz_id": az["id"], "challenge_id": ch}
    # another account: not claimable, nothing recorded
    r = c.call("sa.peek_challenge", dict(peek, account_id=b["id"]))
    assert r["claimable"] is False and r["authz"]["account_id"] == a["id"] and "thumbprint" not in r
    r = record(c, b, az, ch)
    assert r["recorded"] is False and r["authz"]["status"] == "pending", r
    assert c.call("sa.peek_challenge", dict(peek, authz_id=999999999)) == {"claimable": False}
    assert record(c, a, {"id": 999999999}, ch) == {"recorded": False}
    assert err_type(c.call, "sa.record_validation", dict(peek, status="processing")) == "malformed"
    # the owner: claimable, with the key's thumbprint, twice (a read)
    for _ in range(2):
        r = c.call("sa.peek_challenge", peek)
        assert r["claimable"] is True and r["thumbprint"] == a["thumbprint"], r
        assert r["authz"] == c.call("sa.get_authz", {"id": az["id"]})
    # recorded: the challenge valid with its record, the authz valid with
    # the new expiry, answered as a read shows it afterwards
    exp = ts(3600)
    r = record(c, a, az, ch, expires=exp)
    got = c.call("sa.get_authz", {"id": az["id"]})
    assert r == {"recorded": True, "authz": got}, r
    assert got["status"] == "valid" and got["expires"] == exp
    done = [x for x in got["challenges"] if x["id"] == ch][0]
    assert done["status"] == "valid" and done["validated"] and done["validation_record"] == [{"hostname": "x"}]
    # once: a second record and a peek change nothing
    assert record(c, a, az, ch, status="invalid") == {"recorded": False, "authz": got}
    assert c.call("sa.peek_challenge", peek)["claimable"] is False
    # an invalid result with its problem
    z = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("peek2.example.com")})
    prob = {"type": "urn:ietf:params:acme:error:connection", "detail": "refused", "status": 400}
    r = record(c, a, z, z["challenges"][1]["id"], status="invalid", error=prob)
    assert r["recorded"] is True and r["authz"]["status"] == "invalid"
    assert [x["error"] for x in r["authz"]["challenges"] if x["status"] == "invalid"] == [prob]
    # after a claim (processing): the claim won, nothing recorded
    z = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("peek3.example.com")})
    zc = z["challenges"][0]["id"]
    assert c.call("sa.claim_challenge", dict(peek, authz_id=z["id"], challenge_id=zc))["claimed"]
    r = record(c, a, z, zc)
    assert r["recorded"] is False and r["authz"]["status"] == "pending"
    assert [x["status"] for x in r["authz"]["challenges"] if x["id"] == zc] == ["processing"]
    # a deactivated account records nothing
    c.call("sa.update_account", {"id": b["id"], "status": "deactivated"})
    bz = c.call("sa.new_authz", {"account_id": b["id"], **authz_spec("peek4.example.com")})
    assert c.call("sa.peek_challenge", {"account_id": b["id"], "authz_id": bz["id"],
                                        "challenge_id": bz["challenges"][0]["id"]})["claimable"] is False
    assert record(c, b, bz, bz["challenges"][0]["id"])["recorded"] is False


def test_concurrent_records_and_claims_one_winner(env, c):
    """Two POSTs to one challenge at once (or a slow VA's fallback claim
    racing a record): of 16 concurrent sa.record_validation calls with
    different results, and of 8 records racing 8 claims, exactly one
    changes anything; the authz ends with the winner's result and every
    loser is answered the authz as it is."""
    CURRENT_SOCK[0] = "unix:" + env.sock
    a = new_account(c)
    for mixed in (False, True, False, True):
        az = c.call("sa.new_authz", {"account_id": a["id"], **authz_spec("rrace.example.com")})
        chs = az["challenges"]
        n = [0]
        lock = threading.Lock()

        def one(cl):
            with lock:
                i = n[0]
                n[0] += 1
            p = {"account_id": a["id"], "authz_id": az["id"], "challenge_id": chs[i % 2]["id"]}
            if mixed and i % 4 == 3:
                return ("claim", cl.call("sa.claim_challenge", p))
            status = "valid" if i % 3 else "invalid"
            return ("record", status, cl.call("sa.record_validation", dict(p, status=status)))
        res = concurrently(16, one)
        assert all(r[0] == "ok" for r in res), res
        won = [r[1] for r in res if (r[1][0] == "claim" and r[1][1]["claimed"]) or
               (r[1][0] == "record" and r[1][2]["recorded"])]
        assert len(won) == 1, res
        got = c.call("sa.get_authz", {"id": az["id"]})
        changed = [x for x in got["challenges"] if x["status"] != "pending"]
        assert len(changed) == 1, got
        if won[0][0] == "record":
            assert got["status"] == won[0][1] == changed[0]["status"] and won[0][2]["authz"] == got
        else:
            assert got["status"] == "pending" and changed[0]["status"] == "processing"
        assert all(r[1][-1]["authz"]["id"] == az["id"] for r in res)
