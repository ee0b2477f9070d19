"""Operations: /metrics on every process passes promtool, a real Prometheus
scrapes them and sees the certificates this test issued, and /healthz follows
PostgreSQL going away and coming back."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anvil_env import AnvilEnv, TOP  # noqa: E402

SERVICES = ["sa", "ca", "va", "ra", "wfe"]
NEEDED = ["anvil"] + ["anvil-" + s for s in SERVICES] + ["anvil-admin"]


@pytest.fixture(scope="module")
def env():
    bindir = os.environ.get("BINDIR", os.path.join(TOP, "bin"))
    missing = [b for b in NEEDED if not os.access(os.path.join(bindir, b), os.X_OK)]
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    base = 27400
    with AnvilEnv(port_base=base, name="ops") as e:
        # Two issuances first, so every process has served RPC calls and
        # the issued counter has a known value.
        issue_one(e, "prom1.example.test")
        issue_one(e, "prom2.example.test")
        yield e


def issue_one(env, name):
    work = tempfile.mkdtemp(prefix="ops-lego-")
    try:
        p = subprocess.run(["lego", "--server", env.directory_url, "--accept-tos", "--email", "ops@example.test",
                            "--path", work, "--http", "--http.port", "127.0.0.1:%d" % env.ports["http01"],
                            "-d", name, "run"],
                           env=dict(os.environ, LEGO_CA_CERTIFICATES=env.trust_path),
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("svc", SERVICES)
def test_metrics_pass_promtool(env, svc):
    status, body = env.debug_get(svc, "/metrics")
    assert status == 200
    assert "anvil_process_resident_memory_bytes" in body
    assert "anvil_rpc_" in body, "RPC metrics missing on " + svc
    p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("svc", SERVICES)
def test_healthz_ok(env, svc):
    status, body = env.debug_get(svc, "/healthz")
    assert status == 200, body


def test_prometheus_scrapes_issued_count(env):
    work = tempfile.mkdtemp(prefix="ops-prom-")
    port = env.port_base + 90
    targets = ["127.0.0.1:%d" % env.ports["debug_" + s] for s in SERVICES]
    cfg = os.path.join(work, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: anvil\n"
                "    static_configs:\n      - targets: %s\n" % json.dumps(targets))
    prom = subprocess.Popen(["prometheus", "--config.file", cfg, "--storage.tsdb.path", os.path.join(work, "data"),
                             "--web.listen-address", "127.0.0.1:%d" % port],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "prom.log"), "w"))
    try:
        q = urllib.parse.quote("sum(anvil_certificates_issued_total)")
        up = urllib.parse.quote("sum(up)")
        got, ups = None, None
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query?query=%s" % (port, up), timeout=5) as r:
                    res = json.load(r)["data"]["result"]
                    ups = float(res[0]["value"][1]) if res else None
                with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query?query=%s" % (port, q), timeout=5) as r:
                    res = json.load(r)["data"]["result"]
                    got = float(res[0]["value"][1]) if res else None
                if got is not None and ups == len(SERVICES):
                    break
            except OSError:
                pass
            time.sleep(1)
        assert ups == len(SERVICES), "targets up: %s" % ups
        assert got == 2, "anvil_certificates_issued_total = %s, issued 2" % got
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def test_healthz_follows_postgresql(env):
    pg = os.path.join(env.var_dir, "pg")
    subprocess.run([os.path.join(TOP, "scripts", "pg.sh"), "stop", pg], check=True)
    try:
        deadline = time.time() + 30
        status = None
        while time.time() < deadline:
            status, _ = env.debug_get("sa", "/healthz")
            if status == 503:
                break
            time.sleep(0.5)
        assert status == 503, "SA healthz with PostgreSQL down: %s" % status
        status, _ = env.debug_get("wfe", "/healthz")
        assert status == 503, "WFE healthz with PostgreSQL down: %s" % status
    finally:
        subprocess.run([os.path.join(TOP, "scripts", "pg.sh"), "start", pg], check=True, capture_output=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if all(env.debug_get(s, "/healthz")[0] == 200 for s in SERVICES):
            break
        time.sleep(0.5)
    for s in SERVICES:
        assert env.debug_get(s, "/healthz")[0] == 200, s
    # And it still issues.
    issue_one(env, "after-pg.example.test")


def test_grafana_dashboard_is_valid_over_real_metrics(env):
    """docs/grafana-dashboard.json: valid JSON, every metric it names exists in
    the sources, and every query parses in a real Prometheus."""
    import re
    with open(os.path.join(TOP, "docs", "grafana-dashboard.json")) as f:
        dash = json.load(f)
    exprs = []

    def walk(panels):
        for p in panels:
            exprs.extend(t["expr"] for t in p.get("targets", []))
            walk(p.get("panels", []))
    walk(dash["panels"])
    assert len(exprs) >= 20
    src = subprocess.run(["grep", "-rhoE", "anvil_[a-z_]+", "--include=*.c", "core", "ca", "ra", "va", "sa", "wfe", "rpc"],
                         cwd=TOP, capture_output=True, text=True).stdout.split()
    known = set(src)
    for e in exprs:
        for name in re.findall(r"anvil_[a-z_]+", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in known, "dashboard uses %s, not exported by any process" % name
    work = tempfile.mkdtemp(prefix="ops-graf-")
    port = env.port_base + 91
    cfg = os.path.join(work, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: anvil\n"
                "    static_configs:\n      - targets: [\"127.0.0.1:%d\"]\n" % env.ports["debug_ca"])
    prom = subprocess.Popen(["prometheus", "--config.file", cfg, "--storage.tsdb.path", os.path.join(work, "data"),
                             "--web.listen-address", "127.0.0.1:%d" % port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        for e in exprs:
            q = e.replace("$job", ".*").replace("$__rate_interval", "1m")
            url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(q))
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    assert json.load(r)["status"] == "success", q
            except urllib.error.HTTPError as err:
                raise AssertionError("query does not parse: %s: %s" % (q, err.read().decode()))
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
