"""anvil-admin against a running Anvil: every subcommand, through RPC only.

One AnvilEnv (EAB required, so the EAB commands are exercised by the
account every other test uses). Certificates come from lego; revocations
are checked the way a relying party sees them: OCSP and the CRL shard.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anvil_env import AnvilEnv, TOP  # noqa: E402
import openssl_cli  # noqa: E402
from openssl_cli import openssl  # noqa: E402


NEEDED = ["anvil", "anvil-sa", "anvil-ca", "anvil-va", "anvil-ra", "anvil-wfe", "anvil-admin"]
BINDIR = os.path.abspath(os.environ.get("BINDIR", os.path.join(TOP, "bin")))


@pytest.fixture(scope="module")
def env():
    missing = [b for b in NEEDED if not os.access(os.path.join(BINDIR, b), os.X_OK)]
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    with AnvilEnv(port_base=27000, name="admin", config={"ra.json:eab_required": True}) as e:
        yield e


@pytest.fixture(scope="module")
def work():
    d = tempfile.mkdtemp(prefix="admin-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def admin(env, *args, expect=0):
    """Runs anvil-admin with this env's admin.json; returns (stdout, stderr)."""
    args = list(args)
    at = args.index("--") if "--" in args else len(args)  # options before "--"
    args[at:at] = ["--config", os.path.join(env.cfg_dir, "admin.json")]
    p = subprocess.run([os.path.join(BINDIR, "anvil-admin")] + args,
                       capture_output=True, text=True, timeout=120, cwd=TOP, env=env.env)
    if expect is not None:
        assert p.returncode == expect, "anvil-admin %s: rc %d\n%s%s" % (" ".join(args), p.returncode,
                                                                     p.stdout, p.stderr)
    return p.stdout, p.stderr, p.returncode


def admin_json(env, *args):
    out, _, _ = admin(env, *(list(args) + ["--json"]))
    return json.loads(out)


class Lego:
    """One lego account directory (one ACME account), bound with an EAB key."""

    def __init__(self, env, path, kid, hmac):
        self.env, self.path, self.kid, self.hmac = env, path, kid, hmac

    def run(self, args, extra=None):
        cmd = ["lego", "--server", self.env.directory_url, "--accept-tos", "--email", "admin@example.test",
               "--path", self.path, "--http", "--http.port", "127.0.0.1:%d" % self.env.ports["http01"]]
        if self.kid:
            cmd += ["--eab", "--kid", self.kid, "--hmac", self.hmac]
        p = subprocess.run(cmd + (extra or []) + args, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, LEGO_CA_CERTIFICATES=self.env.trust_path))
        return p.returncode, p.stdout + p.stderr

    def issue(self, name):
        rc, out = self.run(["-d", name, "run"])
        assert rc == 0, out
        return self.files(name)

    def files(self, name):
        base = os.path.join(self.path, "certificates", name)
        chain = open(base + ".crt").read()
        certs = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", chain, re.S)
        leaf = base + ".leaf.pem"
        inter = base + ".inter.pem"
        with open(leaf, "w") as f:
            f.write(certs[0])
        with open(inter, "w") as f:
            f.write("".join(certs[1:]))
        rc, out = openssl("x509", "-in", leaf, "-noout", "-serial")
        serial = out.strip().split("=", 1)[1].lower()
        return {"leaf": leaf, "inter": inter, "serial": serial, "key": base + ".key"}


def new_eab(env, comment):
    j = admin_json(env, "eab", "create", "--comment", comment)
    assert j["kid"] and j["hmac_key"]
    # Both are typed as arguments (eab revoke KID, certbot --eab-hmac-key):
    # a leading '-' would read as an option (1 random token in 64 did).
    assert not j["kid"].startswith("-") and not j["hmac_key"].startswith("-"), j
    return j["kid"], j["hmac_key"]


@pytest.fixture(scope="module")
def acct(env, work):
    kid, hmac = new_eab(env, "main test account")
    lg = Lego(env, os.path.join(work, "lego-main"), kid, hmac)
    certs = {n: lg.issue(n) for n in ["rev-serial.example.test", "rev-file.example.test",
                                      "rev-list.example.test", "rev-key.example.test",
                                      "keep.example.test"]}
    show = admin_json(env, "cert", "show", certs["keep.example.test"]["serial"])
    return {"lego": lg, "certs": certs, "kid": kid, "account_id": show["account_id"]}


def ocsp_status(env, c, work):
    return openssl_cli.ocsp_status(env, c["leaf"], c["inter"], work)


def crl_lists(env, c, work):
    out = openssl_cli.crl_text(env, c["leaf"], c["inter"], work)
    listed = out.upper().replace(":", "").replace(" ", "")
    return ("SERIALNUMBER" + c["serial"].upper().lstrip("0")) in listed or \
        ("SERIALNUMBER" + c["serial"].upper()) in listed


def assert_revoked(env, c, work, reason=None):
    assert ocsp_status(env, c, work) == "revoked"
    assert crl_lists(env, c, work), "serial %s not on its CRL shard" % c["serial"]
    show = admin_json(env, "cert", "show", c["serial"])
    assert show["status"] == "revoked"
    if reason is not None:
        assert show["revoked_reason"] == reason


# ------------------------------------------------------------------ EAB

def test_eab_required_refuses_an_account_without_binding(env, work):
    lg = Lego(env, os.path.join(work, "lego-noeab"), None, None)
    rc, out = lg.run(["-d", "noeab.example.test", "run"])
    assert rc != 0
    assert "externalAccountRequired" in out or "external account" in out.lower(), out


def test_eab_list_shows_the_bound_key(env, acct):
    keys = admin_json(env, "eab", "list")["keys"]
    mine = [k for k in keys if k["kid"] == acct["kid"]]
    assert len(mine) == 1 and mine[0]["account_id"] == acct["account_id"] and not mine[0]["revoked"]
    assert all("hmac_key" not in k for k in keys)
    out, _, _ = admin(env, "eab", "list")
    assert acct["kid"] in out and "used" in out


def test_eab_revoke_dry_run_then_revoke(env, work):
    kid, hmac = new_eab(env, "to be revoked")
    out, _, _ = admin(env, "eab", "revoke", kid, "--dry-run")
    assert "would revoke" in out
    k = [k for k in admin_json(env, "eab", "list")["keys"] if k["kid"] == kid][0]
    assert not k["revoked"], "--dry-run revoked the key"
    out, _, _ = admin(env, "eab", "revoke", kid)
    assert "revoked" in out
    k = [k for k in admin_json(env, "eab", "list")["keys"] if k["kid"] == kid][0]
    assert k["revoked"]
    rc, out = Lego(env, os.path.join(work, "lego-revoked-eab"), kid, hmac).run(["-d", "x.example.test", "run"])
    assert rc != 0, "an account was created with a revoked EAB key"
    _, err, rc = admin(env, "eab", "revoke", "no-such-kid", expect=None)
    assert rc != 0 and len(err.strip().splitlines()) == 1


def test_eab_kid_with_a_leading_dash_after_double_dash(env):
    kid = "-dash-led-kid"
    admin(env, "eab", "create", "--kid", kid, "--comment", "dash")
    _, err, rc = admin(env, "eab", "revoke", kid, expect=None)
    assert rc == 2 and "unknown option" in err
    out, _, _ = admin(env, "eab", "revoke", "--", kid)
    assert "revoked" in out
    assert [k for k in admin_json(env, "eab", "list")["keys"] if k["kid"] == kid][0]["revoked"]


def test_eab_create_dry_run_creates_nothing(env):
    before = len(admin_json(env, "eab", "list")["keys"])
    out, _, _ = admin(env, "eab", "create", "--comment", "dry", "--dry-run")
    assert "would create" in out and "hmac" not in out.lower()
    assert len(admin_json(env, "eab", "list")["keys"]) == before


# ------------------------------------------------------- inspection

def test_account_show(env, acct):
    a = admin_json(env, "account", "show", str(acct["account_id"]))
    assert a["id"] == acct["account_id"] and a["status"] == "valid"
    assert a["eab_kid"] == acct["kid"]
    assert set(c["serial"] for c in acct["certs"].values()) <= set(a["unexpired_serials"])
    out, _, _ = admin(env, "account", "show", str(acct["account_id"]))
    assert "status:     valid" in out and acct["kid"] in out


def test_cert_show_status_identifiers_chain_account(env, acct):
    c = acct["certs"]["keep.example.test"]
    j = admin_json(env, "cert", "show", c["serial"])
    assert j["serial"] == c["serial"] and j["status"] == "good"
    assert j["identifiers"] == [{"type": "dns", "value": "keep.example.test"}]
    assert j["account_id"] == acct["account_id"]
    assert j["chain_pem"].count("BEGIN CERTIFICATE") >= 2
    assert open(c["leaf"]).read().strip() in j["chain_pem"]
    out, _, _ = admin(env, "cert", "show", c["serial"].upper())
    assert "status:      good" in out and "dns:keep.example.test" in out and "BEGIN CERTIFICATE" in out


def test_cert_list_by_account_identifier_and_expiry(env, acct):
    serials = set(c["serial"] for c in acct["certs"].values())
    got = admin_json(env, "cert", "list", "--account", str(acct["account_id"]))["certificates"]
    assert serials <= set(c["serial"] for c in got)
    got = admin_json(env, "cert", "list", "--identifier", "keep.example.test")["certificates"]
    assert [c["serial"] for c in got] == [acct["certs"]["keep.example.test"]["serial"]]
    got = admin_json(env, "cert", "list", "--expiring-within", "400d")["certificates"]
    assert serials <= set(c["serial"] for c in got)
    got = admin_json(env, "cert", "list", "--expiring-within", "1h")["certificates"]
    assert not serials & set(c["serial"] for c in got)
    out, _, _ = admin(env, "cert", "list", "--identifier", "KEEP.example.test")
    assert acct["certs"]["keep.example.test"]["serial"] in out and "1 certificate(s)" in out


def test_order_show(env, acct):
    c = admin_json(env, "cert", "show", acct["certs"]["keep.example.test"]["serial"])
    o = admin_json(env, "order", "show", str(c["order_id"]))
    assert o["status"] == "valid" and o["certificate_serial"] == c["serial"]
    assert o["identifiers"] == [{"type": "dns", "value": "keep.example.test"}]
    assert [a["status"] for a in o["authzs"]] == ["valid"]
    out, _, _ = admin(env, "order", "show", str(c["order_id"]))
    assert "status:      valid" in out and "authz" in out


# ------------------------------------------------------------ revoke

def test_revoke_by_serial_dry_run_then_real(env, acct, work):
    c = acct["certs"]["rev-serial.example.test"]
    out, _, _ = admin(env, "revoke", "--serial", c["serial"], "--reason", "superseded", "--dry-run")
    assert "would revoke 1" in out
    assert admin_json(env, "cert", "show", c["serial"])["status"] == "good", "--dry-run revoked"
    assert ocsp_status(env, c, work) == "good"
    out, _, _ = admin(env, "revoke", "--serial", c["serial"], "--reason", "superseded")
    assert "revoked 1, already revoked 0, failed 0" in out
    assert_revoked(env, c, work, reason=4)
    out, _, _ = admin(env, "revoke", "--serial", c["serial"], "--reason", "superseded")
    assert "revoked 0, already revoked 1, failed 0" in out


def test_revoke_by_cert_file(env, acct, work):
    c = acct["certs"]["rev-file.example.test"]
    j = admin_json(env, "revoke", "--cert-file", c["leaf"], "--reason", "cessationOfOperation")
    assert j["revoked"] == [c["serial"]] and j["failed"] == []
    assert_revoked(env, c, work, reason=5)


def test_revoke_by_serials_file_with_a_bad_one(env, acct, work):
    c = acct["certs"]["rev-list.example.test"]
    path = os.path.join(work, "serials.txt")
    with open(path, "w") as f:
        f.write("# incident 42\n%s\n\n%s\n" % (c["serial"].upper(), "7f" + "00" * 17))
    out, err, rc = admin(env, "revoke", "--serials-file", path, "--reason", "privilegeWithdrawn", expect=1)
    assert "revoked 1, already revoked 0, failed 1" in out
    assert "progress: 2/2" in err
    assert_revoked(env, c, work, reason=9)


def test_revoke_by_spki_hash(env, acct, work):
    c = acct["certs"]["rev-key.example.test"]
    rc, der = subprocess.run(["openssl", "x509", "-in", c["leaf"], "-noout", "-pubkey"],
                             capture_output=True).returncode, None
    pub = subprocess.run(["openssl", "x509", "-in", c["leaf"], "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    import hashlib
    h = hashlib.sha256(der).hexdigest()
    j = admin_json(env, "revoke", "--spki-sha256", h, "--reason", "affiliationChanged")
    assert j["revoked"] == [c["serial"]]
    assert_revoked(env, c, work, reason=3)
    assert admin_json(env, "cert", "show", acct["certs"]["keep.example.test"]["serial"])["status"] == "good"


def test_revoke_by_account_and_deactivate(env, work):
    kid, hmac = new_eab(env, "second account")
    lg = Lego(env, os.path.join(work, "lego-second"), kid, hmac)
    certs = [lg.issue("acct-a.example.test"), lg.issue("acct-b.example.test")]
    aid = admin_json(env, "cert", "show", certs[0]["serial"])["account_id"]
    out, err, _ = admin(env, "revoke", "--account", str(aid), "--reason", "keyCompromise")
    assert "revoked 2, already revoked 0, failed 0" in out
    assert "progress: 2/2" in err
    for c in certs:
        assert_revoked(env, c, work, reason=1)
    # keyCompromise blocked the keys: the same key is refused in a new order.
    rc, out = lg.run(["--csr", csr_for(work, certs[0]["key"], "acct-c.example.test"),
                      "run"])
    assert rc != 0 and ("badPublicKey" in out or "blocked" in out.lower()), out
    # deactivate: dry run first, then for real.
    out, _, _ = admin(env, "account", "deactivate", str(aid), "--dry-run")
    assert "would deactivate" in out
    assert admin_json(env, "account", "show", str(aid))["status"] == "valid"
    a = admin_json(env, "account", "deactivate", str(aid))
    assert a["status"] == "deactivated"
    assert admin_json(env, "account", "show", str(aid))["status"] == "deactivated"
    rc, out = lg.run(["-d", "after-deact.example.test", "run"])
    assert rc != 0, "a deactivated account got a certificate"


def csr_for(work, key, name):
    path = os.path.join(work, name + ".csr")
    rc, out = openssl("req", "-new", "-key", key, "-subj", "/CN=" + name, "-addext",
                      "subjectAltName=DNS:" + name, "-outform", "DER", "-out", path)
    assert rc == 0, out
    return path


# ---------------------------------------------------------- block-key

def test_block_key_refuses_new_orders_and_revokes(env, acct, work):
    key = os.path.join(work, "blockme.key")
    rc, out = openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    assert rc == 0, out
    lg = acct["lego"]
    rc, out = lg.run(["--csr", csr_for(work, key, "blk1.example.test"), "run"])
    assert rc == 0, out
    c = lg.files("blk1.example.test")
    sa = env.rpc("sa")
    try:
        out, _, _ = admin(env, "block-key", "--key-file", key, "--comment", "test", "--revoke", "--dry-run")
        assert "would block key" in out and "would revoke 1" in out
        kh = [ln.split()[-1] for ln in out.splitlines() if ln.startswith("would block key")][0]
        assert sa.call("sa.key_blocked", {"key_hash": kh})["blocked"] is False
        j = admin_json(env, "block-key", "--key-file", key, "--comment", "incident 7", "--revoke")
        assert j["revoked"] == [c["serial"]]
        assert sa.call("sa.key_blocked", {"key_hash": kh})["blocked"] is True
    finally:
        sa.close()
    assert_revoked(env, c, work, reason=1)
    rc, out = lg.run(["--csr", csr_for(work, key, "blk2.example.test"), "run"])
    assert rc != 0 and ("badPublicKey" in out or "blocked" in out.lower()), out


def test_block_key_by_hash_and_cert_file(env, acct, work):
    h = "ab" * 32
    out, _, _ = admin(env, "block-key", "--spki-sha256", h.upper(), "--comment", "leaked")
    assert "blocked key " + h in out
    c = acct["certs"]["keep.example.test"]
    j = admin_json(env, "block-key", "--cert-file", c["leaf"], "--comment", "no revoke", "--dry-run")
    assert j["dry_run"] is True and len(j["would_block"]) == 1
    assert admin_json(env, "cert", "show", c["serial"])["status"] == "good"


# --------------------------------------------------- ca / db / crl

def test_db_migrate(env):
    out, _, _ = admin(env, "db", "migrate", "--dry-run")
    assert "would run" in out and "anvil-sa" in out and "--migrate" in out
    j = admin_json(env, "db", "migrate")
    assert j["migrated"] is True
    _, err, rc = admin(env, "db", "migrate", "--sa-config", "/nonexistent.json", expect=None)
    assert rc != 0 and len(err.strip().splitlines()) == 1


def test_crl_regenerate(env):
    j = admin_json(env, "crl", "regenerate", "--dry-run")
    assert j["dry_run"] is True and len(j["crls"]) >= 1 and "number" not in j["crls"][0]
    issuer = j["crls"][0]["issuer_id"]
    a = admin_json(env, "crl", "regenerate", "--issuer", issuer, "--shard", "0")
    b = admin_json(env, "crl", "regenerate", "--issuer", issuer, "--shard", "0")
    assert len(a["crls"]) == 1 and b["crls"][0]["number"] > a["crls"][0]["number"]


def test_ca_init_dry_run_and_refuses_to_overwrite(env, work):
    d = os.path.join(work, "pki-new")
    out, _, _ = admin(env, "ca", "init", "--dir", d, "--dry-run")
    assert "would create" in out and not os.path.exists(d)
    _, err, rc = admin(env, "ca", "init", "--dir", os.path.join(env.var_dir, "pki"), expect=None)
    assert rc != 0 and len(err.strip().splitlines()) == 1


# ------------------------------------------------------ bad arguments

@pytest.mark.parametrize("args", [
    ["nosuchcommand"],
    ["revoke"],
    ["revoke", "--serial", "xyz"],
    ["revoke", "--serial", "7f00", "--reason", "because"],
    ["revoke", "--serial", "7f00", "--account", "1"],
    ["revoke", "--account", "-3"],
    ["revoke", "--spki-sha256", "abcd"],
    ["revoke", "--cert-file", "/nonexistent.pem"],
    ["revoke", "--serial", "7f" + "00" * 17],
    ["block-key", "--spki-sha256", "ab" * 32],
    ["block-key", "--comment", "x"],
    ["block-key", "--key-file", "/etc/hostname", "--comment", "x"],
    ["account", "show"],
    ["account", "show", "abc"],
    ["account", "show", "999999"],
    ["account", "deactivate", "0"],
    ["cert", "show", "not-hex"],
    ["cert", "show", "7f" + "00" * 17],
    ["cert", "list"],
    ["cert", "list", "--expiring-within", "soon"],
    ["cert", "list", "--identifier", "bad..name"],
    ["order", "show", "999999"],
    ["eab", "revoke"],
    ["eab", "create", "--kid", "bad kid!"],
    ["crl", "regenerate", "--shard", "x"],
    ["crl", "regenerate", "--issuer", "nope"],
    ["db", "migrate", "--bogus"],
])
def test_bad_arguments_fail_with_one_line(env, args):
    _, err, rc = admin(env, *args, expect=None)
    assert rc != 0, args
    lines = [ln for ln in err.splitlines() if " AUDIT " not in ln and ln.strip()]
    assert len(lines) == 1 and "anvil-admin" in lines[0], err


def test_unreachable_service_is_one_line(env):
    _, err, rc = admin(env, "account", "show", "1", "--sa", "unix:/nonexistent/sa.sock", expect=None)
    assert rc != 0 and len(err.strip().splitlines()) == 1, err


def test_bulk_revoke_stops_when_the_ra_is_unreachable(env, work):
    path = os.path.join(work, "unreachable.txt")
    with open(path, "w") as f:
        f.write("7f01\n7f02\n7f03\n")
    out, err, rc = admin(env, "revoke", "--serials-file", path, "--ra", "unix:/nonexistent/ra.sock", expect=None)
    assert rc == 1
    assert "revoked 0, already revoked 0, failed 3" in out
    errors = [ln for ln in err.splitlines() if ln.startswith("anvil-admin")]
    assert len(errors) == 1 and "unavailable" in errors[0], err


def test_help(env):
    for cmd in (["revoke"], ["block-key"], ["cert", "list"], ["eab", "create"], ["db", "migrate"]):
        out, _, _ = admin(env, *(cmd + ["--help"]))
        assert out.startswith("usage: anvil-admin " + " ".join(cmd))
    out, _, _ = admin(env, "help")
    for w in ("revoke", "block-key", "account show", "cert list", "order show", "eab create", "db migrate",
              "crl regenerate", "ca init"):
        assert w in out
