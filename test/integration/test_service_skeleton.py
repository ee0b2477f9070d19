"""One skeleton (rpc_service_main) serves the five daemons: the same flags,
the same --check, the same usage errors and exit statuses everywhere."""
import os
import subprocess

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINDIR = os.path.abspath(os.environ.get("BINDIR", os.path.join(TOP, "bin")))
DAEMONS = ["sa", "ra", "ca", "va", "wfe"]


def run(*argv, env=None, cwd=TOP):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd, env=e, timeout=60)


@pytest.mark.parametrize("svc", DAEMONS)
def test_version_usage_and_unknown_flag(svc):
    b = os.path.join(BINDIR, "anvil-" + svc)
    r = run(b, "--version")
    assert r.returncode == 0 and r.stdout.startswith("anvil-%s " % svc)
    r = run(b)
    assert r.returncode == 2 and "usage: anvil-%s -c|--config FILE [--check]" % svc in r.stderr
    r = run(b, "-c", "configs/dev/%s.json" % svc, "--no-such-flag")
    assert r.returncode == 2 and "usage:" in r.stderr


@pytest.mark.parametrize("svc", ["sa", "ra", "va", "wfe"])
def test_check_accepts_the_dev_config_with_c_and_config(svc, tmp_path):
    """The VA's dev config names key material scripts/bootstrap.sh makes under
    var/pki (scripts/dev-keys.sh: the Token Authority root, the DKIM key): it
    is checked from a directory with configs/ and such a var/pki."""
    b = os.path.join(BINDIR, "anvil-" + svc)
    env = {"ANVIL_SA_DSN": "host=/nonexistent dbname=anvil"}
    cwd = TOP
    if svc == "va":
        cwd = str(tmp_path)
        os.symlink(os.path.join(TOP, "configs"), os.path.join(cwd, "configs"))
        subprocess.run([os.path.join(TOP, "scripts", "dev-keys.sh"), os.path.join(cwd, "var", "pki")],
                       check=True, capture_output=True, timeout=120)
    for flag in ("-c", "--config"):
        r = run(b, flag, "configs/dev/%s.json" % svc, "--check", env=env, cwd=cwd)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "configs/dev/%s.json: ok" % svc


@pytest.mark.parametrize("svc", DAEMONS)
def test_check_names_the_bad_key(svc, tmp_path):
    with open(os.path.join(TOP, "configs", "dev", svc + ".json")) as f:
        text = f.read()
    bad = tmp_path / (svc + ".json")
    bad.write_text(text.replace('"log_level"', '"log_levl"', 1))
    r = run(os.path.join(BINDIR, "anvil-" + svc), "-c", str(bad), "--check")
    assert r.returncode == 1
    assert "log_levl" in r.stderr and str(bad) in r.stderr, r.stderr


def test_ca_check_names_the_missing_issuers_file(tmp_path):
    with open(os.path.join(TOP, "configs", "dev", "ca.json")) as f:
        text = f.read()
    cfg = tmp_path / "ca.json"
    cfg.write_text(text.replace("var/pki/issuers.json", str(tmp_path / "none.json")))
    r = run(os.path.join(BINDIR, "anvil-ca"), "-c", str(cfg), "--check")
    assert r.returncode == 1 and "none.json" in r.stderr
