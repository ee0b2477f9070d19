"""The whole issuance path (sa, ca, va, ra on PostgreSQL) with the CA's keys
in a SoftHSM2 token made by `anvil-admin ca init --pkcs11`: orders are
issued by the token-held intermediates, and a token unplugged while an
order is being finalized never leaves the order stuck or a certificate
half-stored; once the token is back the account gets its certificate
(the same order when the RA retries the outage, a new order otherwise).
Ports: inside the CA range (AnvilEnv port base 21220: 21221-21275).
"""
import glob
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
from test_ra import dom, finalize, issue, make_csr, new_account, ready_order, wait_for  # noqa: E402

PORT_BASE = 21220
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "anvil-ra-it"
PIN = "11235813"


@pytest.fixture(scope="module")
def env():
    e = anvil_env.AnvilEnv(port_base=PORT_BASE, name="ca-p11-ra", services=["sa", "ca", "va", "ra"],
                           config={"ra.json:finalize.recover_after": "2s"})
    try:
        hsm = os.path.join(e.tmp, "softhsm")
        os.makedirs(os.path.join(hsm, "tokens"))
        conf = os.path.join(hsm, "softhsm2.conf")
        with open(conf, "w") as f:
            f.write("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                    % os.path.join(hsm, "tokens"))
        penv = dict(os.environ, SOFTHSM2_CONF=conf, ANVIL_HSM_PIN=PIN)
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN,
                        "--so-pin", "99999999"], env=penv, check=True, capture_output=True)
        pki = os.path.join(e.tmp, "hsm-pki")
        subprocess.run([os.path.join(e.bin_dir, "anvil-admin"), "ca", "init", "--dir", pki, "--pkcs11",
                        "--module", MODULE, "--token", TOKEN, "--pin-env", "ANVIL_HSM_PIN"],
                       env=penv, check=True, capture_output=True)
    except BaseException:
        e.cleanup()
        raise
    e.overrides["ca.json:issuers"] = os.path.join(pki, "issuers.json")
    e.extra_env.update({"SOFTHSM2_CONF": conf, "ANVIL_HSM_PIN": PIN})
    e.hsm_tokens = os.path.join(hsm, "tokens")
    e.hsm_pki = pki
    with e:  # starts; stops, checks for sanitizer reports and cleans up
        yield e


ra = anvil_env.rpc_fixture("ra")


sa = anvil_env.rpc_fixture("sa")


def verify(env, cert_pem, name):
    """openssl verify against the token hierarchy's root; returns the issuer CN."""
    path = os.path.join(env.tmp, name + ".pem")
    with open(path, "w") as f:
        f.write(cert_pem)
    out = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(env.hsm_pki, "root.pem"),
                          "-untrusted", os.path.join(env.hsm_pki, "int-ecdsa.pem"), path],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return subprocess.run(["openssl", "x509", "-in", path, "-noout", "-issuer"],
                          capture_output=True, text=True, check=True).stdout


def cert_pem(sa, serial):
    import base64
    c = sa.call("sa.get_certificate", {"serial": serial})
    der = base64.urlsafe_b64decode(c["der"] + "=" * (-len(c["der"]) % 4))
    return ("-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der).decode()
            + "-----END CERTIFICATE-----\n")


def test_issuance_signed_by_the_token(env, ra, sa):
    name = "hsm." + dom()
    _, _, o, _, _ = issue(env, ra, sa, [name])
    issuer = verify(env, cert_pem(sa, o["certificate_serial"]), "hsm")
    assert "ECDSA Intermediate" in issuer
    # The intermediate whose key is in the token signed it: no key file anywhere.
    assert not glob.glob(os.path.join(env.hsm_pki, "*.key"))


def test_token_unplugged_during_finalize(env, ra, sa):
    name = "unplug." + dom()
    key, acct, o = ready_order(env, ra, sa, [name])
    csr, _ = make_csr([name])
    (tok,) = glob.glob(os.path.join(env.hsm_tokens, "*"))
    away = os.path.join(env.tmp, "unplugged-token")
    shutil.move(tok, away)
    plugged = False
    try:
        r = ra.call("ra.finalize_order", {"account_id": acct["id"], "order_id": o["id"], "csr": csr})
        assert r["status"] == "processing", r
        # While the token is away nothing is issued and the order is not
        # failed: a CA that cannot reach its token answers `unavailable`,
        # which the RA retries within the order's lifetime (issue 26: "the
        # RA recovers the order once the token is back"; issue 19 item 5).
        deadline = time.time() + 6
        while time.time() < deadline:
            assert not sa.call("sa.get_certificates", {"account_id": acct["id"], "limit": 10})["certificates"]
            cur = sa.call("sa.get_order", {"id": o["id"]})
            assert cur["status"] == "processing", cur
            time.sleep(0.2)
        shutil.move(away, tok)
        plugged = True
        done = wait_for(lambda: (lambda x: x if x["status"] in ("valid", "invalid") else None)(
            sa.call("sa.get_order", {"id": o["id"]})), timeout=150, what="order to finish")
        # The same order is recovered, without restarting anything.
        assert done["status"] == "valid", done
        serial = done["certificate_serial"]
        assert "ECDSA Intermediate" in verify(env, cert_pem(sa, serial), "after")
    finally:
        if not plugged and os.path.exists(away):
            shutil.move(away, tok)


def test_ca_log_names_the_token(env):
    with open(env.log_path("ca")) as f:
        log = f.read()
    assert 'token "%s"' % TOKEN in log and "will reconnect" in log
