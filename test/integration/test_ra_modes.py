"""anvil-ra in a stricter configuration, with the real sa/ca/va on PostgreSQL:
external account binding required, authz reuse off, slow finalize, and an
CAA re-checked at finalize, and an RA killed with SIGKILL while an order is `processing` (the restarted RA
fails the stranded order; new finalizes work again).
Ports: the ra range (AnvilEnv port base 21444: 21445-21499).
"""
import os
import signal
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
from anvilrpc import RpcError  # noqa: E402
from test_ra import (Key, b64, dom, eab_jws, err_type, make_csr, new_order, uniq,  # noqa: E402
                     validate, wait_for)

PORT_BASE = 21444
URL = "https://localhost:21475/acme/new-account"


@pytest.fixture(scope="module")
def env():
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="ra-modes", services=["sa", "ca", "va", "ra"],
                            config={"ra.json:eab_required": True,
                                    "ra.json:authz_reuse.enabled": False,
                                    "ra.json:test.slow_finalize": "4s",
                                    "ra.json:finalize.recover_after": "2s",
                                    "ra.json:finalize.caa_recheck_after": "0s"}) as e:
        yield e


ra = anvil_env.rpc_fixture("ra")


sa = anvil_env.rpc_fixture("sa")


def eab_account(ra, sa):
    kid, hkey = uniq("kid"), os.urandom(32)
    sa.call("sa.new_eab_key", {"kid": kid, "hmac_key": b64(hkey), "comment": "modes"})
    k = Key()
    r = ra.call("ra.new_account", {"key": k.jwk, "thumbprint": k.thumbprint, "tos_agreed": True,
                                   "eab": eab_jws(kid, hkey, k.jwk, URL), "eab_url": URL})
    assert r["created"] is True and r["account"]["eab_kid"] == kid
    return k, r["account"]


def test_eab_required(ra, sa):
    k = Key()
    assert err_type(ra.call, "ra.new_account", {"key": k.jwk, "thumbprint": k.thumbprint,
                                                "tos_agreed": True}) == "externalAccountRequired"
    eab_account(ra, sa)
    # an EAB key revoked by the operator cannot be used
    kid, hkey = uniq("kid"), os.urandom(32)
    sa.call("sa.new_eab_key", {"kid": kid, "hmac_key": b64(hkey), "comment": "revoked"})
    sa.call("sa.revoke_eab_key", {"kid": kid})
    k2 = Key()
    assert err_type(ra.call, "ra.new_account", {"key": k2.jwk, "thumbprint": k2.thumbprint,
                                                "tos_agreed": True, "eab": eab_jws(kid, hkey, k2.jwk, URL),
                                                "eab_url": URL}) == "unauthorized"
    # the EAB url must be the newAccount URL
    kid3, hkey3 = uniq("kid"), os.urandom(32)
    sa.call("sa.new_eab_key", {"kid": kid3, "hmac_key": b64(hkey3), "comment": ""})
    assert err_type(ra.call, "ra.new_account", {"key": k2.jwk, "thumbprint": k2.thumbprint,
                                                "tos_agreed": True,
                                                "eab": eab_jws(kid3, hkey3, k2.jwk, URL + "x"),
                                                "eab_url": URL}) in ("malformed", "unauthorized")


def test_authz_reuse_off(env, ra, sa):
    key, a = eab_account(ra, sa)
    name = "ro." + dom()
    o = new_order(ra, a, [name])
    assert validate(env, ra, sa, a, key, o["authzs"][0])["status"] == "valid"
    o2 = new_order(ra, a, [name])
    assert o2["status"] == "pending" and o2["authz_ids"] != o["authz_ids"]


def test_kill_during_finalize_then_recovery(env, ra, sa):
    key, a = eab_account(ra, sa)
    name = "crash." + dom()
    o = new_order(ra, a, [name])
    assert validate(env, ra, sa, a, key, o["authzs"][0])["status"] == "valid"
    csr, _ = make_csr([name])
    r = ra.call("ra.finalize_order", {"account_id": a["id"], "order_id": o["id"], "csr": csr})
    assert r["status"] == "processing"
    pid = env.pid_of("ra")
    assert pid
    os.kill(pid, signal.SIGKILL)
    # the launcher restarts the RA; its recovery issues the stranded order
    # again from the CSR stored with the claim, never fails it (issue 19)
    done0 = wait_for(lambda: (lambda x: x if x["status"] in ("valid", "invalid") else None)(
        sa.call("sa.get_order", {"id": o["id"]})), timeout=60, what="stranded order finished")
    assert done0["status"] == "valid", done0
    certs = sa.call("sa.get_certificates", {"account_id": a["id"], "limit": 10})["certificates"]
    assert [c["order_id"] for c in certs] == [o["id"]], certs
    # the restarted RA issues normally again (slow finalize: processing first)
    wait_for(lambda: env.pid_of("ra") not in (None, pid), timeout=120, what="restarted ra")

    def call_ra(method, params):
        end = time.time() + 120
        while True:
            c = env.rpc("ra")
            try:
                return c.call(method, params)
            except (ConnectionError, FileNotFoundError, ConnectionRefusedError, OSError):
                if time.time() > end:
                    raise
                time.sleep(0.3)
            finally:
                c.close()
    o2 = call_ra("ra.new_order", {"account_id": a["id"], "identifiers": [{"type": "dns", "value": name}]})
    # reuse is off: validate again
    c = env.rpc("ra")
    assert validate(env, c, sa, a, key, o2["authzs"][0])["status"] == "valid"
    r = c.call("ra.finalize_order", {"account_id": a["id"], "order_id": o2["id"], "csr": csr})
    c.close()
    assert r["status"] == "processing" and r.get("retry_after_s", 0) >= 1
    # not failed by the recovery thread although older than recover_after
    done = wait_for(lambda: (lambda x: x if x["status"] in ("valid", "invalid") else None)(
        sa.call("sa.get_order", {"id": o2["id"]})), timeout=60, what="order finished")
    assert done["status"] == "valid"


def test_caa_recheck_at_finalize(env, ra, sa):
    key, a = eab_account(ra, sa)
    name = "caa." + dom()
    o = new_order(ra, a, [name])
    assert validate(env, ra, sa, a, key, o["authzs"][0])["status"] == "valid"
    # CAA changed after validation: another CA only
    env.challtest("add-caa", {"host": name, "policies": [{"tag": "issue", "value": "letsencrypt.org"}]})
    csr, _ = make_csr([name])
    with pytest.raises(RpcError) as e:
        ra.call("ra.finalize_order", {"account_id": a["id"], "order_id": o["id"], "csr": csr})
    assert e.value.type == "caa"
    assert sa.call("sa.get_order", {"id": o["id"]})["status"] == "ready"
    # allowed again: issues
    env.challtest("clear-caa", {"host": name})
    r = ra.call("ra.finalize_order", {"account_id": a["id"], "order_id": o["id"], "csr": csr})
    assert r["status"] == "processing"
