"""policy.device_identifiers (issue #24): which device identifiers
(draft-ietf-acme-device-attest permanent-identifier / hardware-module) an
account may ask for, by the EAB key it was bound with. The attestation
proves that a device exists; this policy says whose it is: an MDM's
EAB-bound account gets its fleet's serial numbers, other accounts are
refused at newOrder / newAuthz with rejectedIdentifier.

Ports: AnvilEnv base 29800 (WFE 29831).
"""
import json
import os
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as ra  # noqa: E402

PORT_BASE = 29800
REJECTED = "urn:ietf:params:acme:error:rejectedIdentifier"
POLICY = {
    "eab": {
        "mdm-a": {"permanent-identifier": ["FLEETA-*"], "hardware-module": ["FLEETA-*"]},
        "mdm-b-*": {"permanent-identifier": ["FLEETB-*"]},
    },
}


@pytest.fixture(scope="module")
def world():
    cfg = {"ra.json:policy.device_identifiers": POLICY}
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="devpol", config=cfg) as env:
        yield {"env": env, "raw": ra.Wfe(env.directory_url, verify=env.trust_path)}


def order(w, acct, ident_type, value):
    key, kid = acct
    return w["raw"].post(w["raw"].dir["newOrder"],
                         {"identifiers": [{"type": ident_type, "value": value}],
                          "profile": "device"}, key, kid=kid)


def assert_rejected(r, value):
    assert r.status_code == 400, r.text
    p = r.json()
    assert p["type"] == REJECTED, p
    sub = p["subproblems"]
    assert [s["identifier"]["value"] for s in sub] == [value], p
    assert "policy.device_identifiers" in sub[0]["detail"], p


def test_eab_bound_account_gets_its_devices(world):
    w = world
    acct = ra.new_account(w["raw"], env=w["env"], eab_kid="mdm-a")
    r = order(w, acct, "permanent-identifier", "FLEETA-0001")
    assert r.status_code == 201, r.text
    assert r.json()["identifiers"] == [{"type": "permanent-identifier", "value": "FLEETA-0001"}]
    # hardware-module-value = hw-serial-num-value "/" hw-type-value
    r = order(w, acct, "hardware-module", "FLEETA-0002/1.3.6.1.4.1.45724.1")
    assert r.status_code == 201, r.text
    # the authorization carries the device-attest-01 challenge as usual
    az = w["raw"].post(r.json()["authorizations"][0], None, acct[0], kid=acct[1]).json()
    assert [c["type"] for c in az["challenges"]] == ["device-attest-01"], az


def test_eab_bound_account_is_refused_other_devices(world):
    w = world
    acct = ra.new_account(w["raw"], env=w["env"], eab_kid="mdm-a-2")  # no binding
    assert_rejected(order(w, acct, "permanent-identifier", "FLEETA-0001"), "FLEETA-0001")
    acct = ra.new_account(w["raw"], env=w["env"], eab_kid="mdm-b-1")  # "mdm-b-*"
    assert order(w, acct, "permanent-identifier", "FLEETB-0001").status_code == 201
    assert_rejected(order(w, acct, "permanent-identifier", "FLEETA-0001"), "FLEETA-0001")
    # the binding names no hardware-module pattern: none allowed
    assert_rejected(order(w, acct, "hardware-module", "FLEETB-1/1.2.3"), "FLEETB-1/1.2.3")


def test_account_without_eab_is_refused(world):
    w = world
    acct = ra.new_account(w["raw"])
    assert_rejected(order(w, acct, "permanent-identifier", "FLEETA-0001"), "FLEETA-0001")
    # newAuthz (RFC 8555 §7.4.1) goes through the same policy
    r = w["raw"].post(w["raw"].dir["newAuthz"],
                      {"identifier": {"type": "permanent-identifier", "value": "FLEETA-0001"}},
                      acct[0], kid=acct[1])
    assert r.status_code == 400 and r.json()["type"] == REJECTED, r.text
    # a dns order is not this policy's business
    r = w["raw"].post(w["raw"].dir["newOrder"],
                      {"identifiers": [{"type": "dns", "value": "devpol.example"}]},
                      acct[0], kid=acct[1])
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("bad,key", [
    ({"eab": {"mdm-x": {"dns": ["*"]}}}, "policy.device_identifiers.eab.mdm-x.dns"),
    ({"eab": {"mdm-x": {"permanent-identifier": ["A*B"]}}},
     "policy.device_identifiers.eab.mdm-x.permanent-identifier[0]"),
    ({"fleet": {}}, "policy.device_identifiers.fleet"),
])
def test_config_errors_name_the_bad_key(world, bad, key):
    with open(os.path.join(world["env"].cfg_dir, "ra.json")) as f:
        cfg = json.load(f)
    cfg["policy"]["device_identifiers"] = bad
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=world["env"].tmp) as f:
        json.dump(cfg, f)
        f.flush()
        p = subprocess.run([os.path.join(world["env"].bin_dir, "anvil-ra"), "--check",
                            "--config", f.name], capture_output=True, text=True)
    assert p.returncode != 0, p
    assert key in p.stdout + p.stderr, (p.stdout, p.stderr)
