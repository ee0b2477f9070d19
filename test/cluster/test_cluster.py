#!/usr/bin/python3
"""`make test-cluster`: the highly available topology of scripts/cluster.sh
loses one part after another under load, and nothing a client was given is
lost (issue 25). Needs root (network namespaces).

The cluster (docs/scaling.md "The test cluster"): HAProxy over two WFEs,
two each of RA, VA, SA and CA on two app machines (mutual-TLS RPC with
client-side failover), PostgreSQL on three machines under Patroni + etcd
with synchronous replication. Load: anvil-loadgen with 16 clients (http-01
through its responder on the client machine) for each phase, and next to
it a recorder that issues with dns-01 in a loop and keeps every
certificate it receives, with the time each issuance started and ended.

Phases, one after the other, each with the load running: the PostgreSQL
primary's machine is killed (Patroni fails over), then one WFE, one RA,
one SA, one VA and one CA are killed (SIGKILL; restarted after the phase
as systemd would), then one app machine is cut off the network for 30 s.
After each, issuance resumes: the recorder completes an issuance it
started after the event, within RECOVERY_BOUND_S (a generous bound that
proves recovery; the measured times are printed, not asserted), and the
load generator issued after the event.

At the end, on the surviving primary: every certificate the recorder
received is stored byte for byte with status good; no serial twice; no
order with two certificates; no order left processing; no valid order
without its certificate; and every CRL number seen per (issuer, shard)
never went down (two CAs sign CRLs; numbers come from the database).

Prints "ok"/"not ok" lines and ends with "N passed, N failed".
"""
import base64
import collections
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "test", "integration", "lib"))
CLUSTER = os.path.join(TOP, "scripts", "cluster.sh")
BINDIR = os.environ.get("BINDIR", os.path.join(TOP, "bin"))
CLIENT = "10.77.0.100"
PG = ["psql", "-h", "10.77.0.5", "-p", "5000", "-U", "postgres", "-d", "anvil", "-qAtX", "-F", "|"]
RECOVERY_BOUND_S = 90
# What a client may see while a part is down: transport errors, timeouts,
# 5xx, badNonce (the other WFE), and validations cut short.
RETRYABLE = {"transport", "timeout", "serverInternal", "badNonce", "http-500", "http-502",
             "http-503", "http-504", "connection", "dns", "orderInvalid", "rateLimited"}

results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print("%s - %s%s" % ("ok    " if cond else "not ok", name,
                         "" if cond or not detail else ": " + str(detail)[:2000]), flush=True)
    return cond


def cluster(*args, timeout=120):
    return subprocess.run([CLUSTER] + list(args), capture_output=True, text=True, timeout=timeout)


def psql(sql):
    out = subprocess.run(PG + ["-c", sql], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return [ln.split("|") for ln in out.stdout.splitlines() if ln]


def psql_retry(sql, secs=60):
    end = time.time() + secs
    while True:
        try:
            return psql(sql)
        except (RuntimeError, subprocess.TimeoutExpired):
            if time.time() > end:
                raise
            time.sleep(1)


class Recorder(threading.Thread):
    """Issues with dns-01 in a loop, tolerating every error; keeps
    (start, end, serial hex, DER) of each certificate it receives."""

    def __init__(self, directory, trust):
        super().__init__(daemon=True)
        self.directory, self.trust = directory, trust
        self.certs = []
        self.errors = collections.Counter()
        self.stop_evt = threading.Event()
        self.n = 0

    def set_txt(self, host, value):
        req = urllib.request.Request("http://%s:8055/set-txt" % CLIENT, method="POST",
                                     data=json.dumps({"host": host, "value": value}).encode())
        urllib.request.urlopen(req, timeout=5).read()

    def issue_once(self, raw, key, kid):
        import rel_acme as a
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        self.n += 1
        t0 = time.time()
        name = "r%d-%d.cluster.test" % (os.getpid(), self.n)
        url, order = a.new_order(raw, key, kid, [name])
        for az in order["authorizations"]:
            authz = raw.post(az, None, key, kid=kid).json()
            if authz["status"] == "valid":
                continue
            ch = [c for c in authz["challenges"] if c["type"] == "dns-01"][0]
            ka = "%s.%s" % (ch["token"], key.thumbprint())
            txt = base64.urlsafe_b64encode(hashlib.sha256(ka.encode()).digest()).rstrip(b"=").decode()
            self.set_txt("_acme-challenge.%s." % name, txt)
            r = raw.post(ch["url"], {}, key, kid=kid)
            assert r.status_code == 200, r.text
            a.poll(raw, key, kid, az, ("valid",), timeout=60)
        _, pem, _ = a.finalize(raw, key, kid, url, a.poll(raw, key, kid, url, ("ready",), timeout=60), [name])
        leaf = x509.load_pem_x509_certificate(pem.encode())
        self.certs.append((t0, time.time(), a.serial_hex(leaf), leaf.public_bytes(serialization.Encoding.DER)))

    def run(self):
        import rel_acme as a
        raw = key = kid = None
        while not self.stop_evt.is_set():
            try:
                if raw is None:
                    raw = a.Wfe(self.directory, verify=self.trust)
                if kid is None:
                    key, kid = a.new_account(raw)
                self.issue_once(raw, key, kid)
            except Exception as e:  # noqa: BLE001 - every failure is counted
                self.errors[type(e).__name__] += 1
                raw = None  # a new connection: maybe through the other WFE
                time.sleep(0.3)

    def first_after(self, t):
        """End time of the first issuance started at or after t, or None."""
        ends = [e for (s, e, _, _) in list(self.certs) if s >= t]
        return min(ends) if ends else None


def loadgen(directory, trust, seconds):
    cmd = [os.path.join(BINDIR, "anvil-loadgen"), "--directory", directory, "--trust", trust,
           "--clients", "16", "--duration", "%ds" % seconds, "--http-addr", CLIENT,
           "--http-port", "5002", "--suffix", "lg.cluster.test", "--timeout", "20s",
           "--issuance-timeout", "60s", "--key-pool", "16", "--json"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            restore_signals=False)


def finish(p, seconds):
    out, err = p.communicate(timeout=seconds + 120)
    if p.returncode not in (0, 1):
        raise RuntimeError("loadgen failed (%d): %s" % (p.returncode, err[-2000:]))
    return json.loads(out)


def wait_health(machine, svc, port, secs=60):
    addr = {"app1": "10.77.0.21", "app2": "10.77.0.22"}[machine]
    end = time.time() + secs
    while time.time() < end:
        try:
            with urllib.request.urlopen("http://%s:%d/healthz" % (addr, port), timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


CRL_SEEN = collections.defaultdict(list)


def sample_crls():
    try:
        for issuer, shard, number in psql("SELECT issuer_id, shard, number FROM crl_shards "
                                          "WHERE number IS NOT NULL"):
            CRL_SEEN[(issuer, shard)].append(int(number))
    except (RuntimeError, subprocess.TimeoutExpired):
        pass  # the primary is changing: sample next time


def phase(name, rec, directory, trust, event, undo=None, load_s=30, event_at=6, undo_at=None):
    """Load for load_s seconds; event() at event_at; undo() at undo_at (or
    after the load). Prints and checks recovery."""
    # CRL numbers sampled before the load starts: a psql slowed by the
    # load must not push the event later than event_at (it could then
    # fall after the load's end).
    sample_crls()
    lg = loadgen(directory, trust, load_s)
    t_start = time.time()
    time.sleep(event_at)
    t_ev = time.time()
    event()
    # Counted from when event() returned (the process is dead, the link
    # down): at load 30 the event was seen to bite 4-5 s after t_ev, and
    # issuances finishing in between proved nothing about recovery.
    t_done = time.time()
    if undo is not None and undo_at is not None:
        time.sleep(max(0, undo_at - (time.time() - t_start)))
        undo()
        undo = None
    report = finish(lg, load_s)
    t_lg0 = time.time() - report["elapsed_s"]  # the timeline's origin
    if undo is not None:
        undo()
    # The recorder gets its bound to complete an issuance started after
    # the event (it may still be waiting out a timeout when the load ends).
    end = t_done + RECOVERY_BOUND_S
    while rec.first_after(t_done) is None and time.time() < end:
        time.sleep(0.5)
    first = rec.first_after(t_done)
    # Slots past the run's duration hold the issuances in flight at its end.
    tl = report["timeline"][:load_s]
    k = max(0, int(t_done - t_lg0))
    after = sum(tl[k + 1:])
    zero_run = longest_zero_run(tl[k:])
    load = os.getloadavg()[0]
    rec_s = (first - t_done) if first else None
    print("    %s: loadgen issued %d (%d after the event), longest gap %d s, failures %s; "
          "recorder: first issuance started after the event done in %s s; load %.1f"
          % (name, report["issued"], after, zero_run, report["failures"],
             "%.1f" % rec_s if rec_s is not None else "never", load), flush=True)
    print("    %s: timeline %s (event done in slot %d, at %s UTC; it took %.1f s)"
          % (name, tl, k, time.strftime("%H:%M:%S", time.gmtime(t_done)), t_done - t_ev), flush=True)
    check("%s: issuance resumes (recorder within %d s)" % (name, RECOVERY_BOUND_S), first is not None)
    check("%s: the load generator issued after the event" % name, after > 0, report)
    # anvil-loadgen keeps what ended the first failures of each reason
    # (request, URL, status, the answer): shown for any not retryable.
    bad = set(report["failures"]) - RETRYABLE
    check("%s: clients saw only retryable failures" % name, not bad,
          {r: (report["failures"][r], report.get("failure_examples", {}).get(r)) for r in bad})
    sample_crls()
    return {"phase": name, "recorder_s": rec_s, "gap_s": zero_run, "issued": report["issued"],
            "rate": report.get("rate"), "failures": report["failures"], "load": load}


def primary(not_=None, secs=120):
    """The PostgreSQL primary's name (db1..db3), asked until one answers
    (and, with not_, until it is not that node): Patroni's REST API can
    answer slowly on a loaded machine, and the old primary, started again
    after its phase, may still be rejoining. "" when none within secs."""
    end = time.time() + secs
    while True:
        name = cluster("leader").stdout.strip()
        if name in ("db1", "db2", "db3") and name != not_:
            return name
        if time.time() > end:
            return name
        time.sleep(1)


def duration_s(v):
    """Seconds of a config duration ("150s", "2m", "500ms")."""
    for unit, mul in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if v.endswith(unit) and v[:-len(unit)].replace(".", "", 1).isdigit():
            return float(v[:-len(unit)]) * mul
    raise ValueError("duration %r" % v)


def longest_zero_run(tl):
    best = cur = 0
    for v in tl:
        cur = cur + 1 if v == 0 else 0
        best = max(best, cur)
    return best


def final_checks(rec):
    from cryptography import x509
    # An order whose finalize was cut off (its RA killed or partitioned
    # past its retries) is taken over by the other RA's recovery sweep once
    # its claim is older than finalize.recover_after: give every such order
    # that long, plus two sweeps (every recover_after/2) and a margin.
    with open(os.path.join(os.environ["ANVIL_CLUSTER_DIR"], "app1", "ra.json")) as f:
        bound = 2 * duration_s(json.load(f)["finalize"]["recover_after"]) + 40
    t0 = psql_retry("SELECT now()")[0][0]
    end = time.time() + 60
    while True:
        stuck = psql_retry("SELECT id, extract(epoch FROM now() - COALESCE(claimed_at, began_processing))::int "
                           "FROM orders WHERE status = 'processing' AND began_processing < '%s'" % t0)
        if stuck:
            end = max(end, time.time() + bound - min(int(a) for _, a in stuck))
        if not stuck or time.time() > end:
            break
        time.sleep(2)
    check("no order left processing", not stuck, stuck)
    check("no serial twice", not psql_retry("SELECT serial FROM certificates GROUP BY serial HAVING count(*) > 1"))
    twice = psql_retry("SELECT order_id, string_agg(serial || ' ' || issued::text, ', ') FROM certificates "
                       "WHERE order_id IS NOT NULL GROUP BY order_id HAVING count(*) > 1")
    check("no order with two certificates", not twice, twice)
    for oid, _ in twice[:3]:
        logs = os.path.join(os.environ["ANVIL_CLUSTER_DIR"], "log")
        for f in sorted(os.listdir(logs)):
            with open(os.path.join(logs, f), errors="replace") as fh:
                for ln in fh:
                    if "order=%s " % oid in ln or "order %s:" % oid in ln or "order=%s\n" % oid in ln:
                        print("    %s: %s" % (f, ln.rstrip()[:300]))
    bad_valid = psql_retry("SELECT o.id FROM orders o LEFT JOIN certificate_status s ON "
                           "s.serial = o.certificate_serial WHERE o.status = 'valid' AND "
                           "(s.status IS NULL OR s.status <> 'good')")
    check("every valid order has its good certificate", not bad_valid, bad_valid)
    certs = list(rec.certs)
    # one query for all (a psql each took minutes on a loaded machine)
    stored = {}
    for i in range(0, len(certs), 200):
        part = ",".join("'%s'" % c[2] for c in certs[i:i + 200])
        for serial, der, st in psql_retry("SELECT c.serial, encode(c.der, 'hex'), s.status FROM certificates c "
                                          "JOIN certificate_status s USING (serial) WHERE c.serial IN (%s)"
                                          % part):
            stored[serial] = (bytes.fromhex(der), st)
    missing = [serial for _, _, serial, der in certs if stored.get(serial) != (der, "good")]
    check("every certificate the recorder received (%d) is on the primary byte for byte" % len(certs),
          certs and not missing, missing)
    sample_crls()
    went_down = {k: v for k, v in CRL_SEEN.items() if any(b < a for a, b in zip(v, v[1:]))}
    check("CRL numbers never went down per (issuer, shard) (%d shards sampled)" % len(CRL_SEEN),
          CRL_SEEN and not went_down, went_down)
    bad_der = []
    for issuer, shard, number, der in psql_retry("SELECT issuer_id, shard, number, encode(der, 'hex') "
                                                 "FROM crl_shards WHERE der IS NOT NULL"):
        crl = x509.load_der_x509_crl(bytes.fromhex(der))
        n = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        if n != int(number):
            bad_der.append((issuer, shard, number, n))
    check("each stored CRL carries the number recorded for its shard", not bad_der, bad_der)
    reads = collections.Counter()
    for addr in ("10.77.0.21", "10.77.0.22"):
        try:
            with urllib.request.urlopen("http://%s:8105/metrics" % addr, timeout=5) as r:
                for ln in r.read().decode().splitlines():
                    if ln.startswith("anvil_wfe_replica_reads_total{"):
                        reads[ln.split('"')[1]] += int(float(ln.split()[-1]))
        except OSError as e:
            print("    metrics of %s: %s" % (addr, e))
    print("    WFE reads: %d served by the read replica SA, %d not there (primary), "
          "%d there but unsettled (primary)"
          % (reads["replica"], reads["primary"], reads["unsettled"]), flush=True)
    check("the WFEs' POST-as-GET reads were served from the read replica SA", reads["replica"] > 0, reads)
    total = psql_retry("SELECT count(*) FROM certificates")[0][0]
    print("    certificates stored: %s; recorder errors %s" % (total, dict(rec.errors)), flush=True)


def inner(directory, trust, out_json):
    """Runs inside the client machine's namespace."""
    rec = Recorder(directory, trust)
    rec.start()
    numbers = []
    # Baseline: everything up.
    lg = loadgen(directory, trust, 10)
    base = finish(lg, 10)
    print("    baseline: %d issued in 10 s (%.1f/s), failures %s, load %.1f"
          % (base["issued"], base["issued"] / 10.0, base["failures"], os.getloadavg()[0]), flush=True)
    check("baseline: the cluster issues", base["issued"] > 0, base)
    sample_crls()

    leader = primary()
    check("a PostgreSQL primary is elected", leader in ("db1", "db2", "db3"), leader)

    def kill_leader():
        cluster("kill", leader)

    def restart_leader():
        cluster("start", leader)

    numbers.append(phase("PostgreSQL primary %s lost" % leader, rec, directory, trust,
                         kill_leader, restart_leader, load_s=40))
    new = primary(not_=leader)
    check("another node became primary", new in ("db1", "db2", "db3") and new != leader, new)

    for machine, svc, port in (("app1", "wfe", 8105), ("app2", "ra", 8104), ("app1", "sa", 8101),
                               ("app2", "va", 8103), ("app1", "ca", 8102)):
        numbers.append(phase("%s on %s killed" % (svc, machine), rec, directory, trust,
                             lambda m=machine, s=svc: cluster("kill", m, s),
                             lambda m=machine, s=svc: cluster("start", m, s), load_s=20))
        check("%s on %s restarted" % (svc, machine), wait_health(machine, svc, port))

    numbers.append(phase("app2 partitioned for 30 s", rec, directory, trust,
                         lambda: cluster("partition", "app2"), lambda: cluster("heal", "app2"),
                         load_s=50, event_at=6, undo_at=36))
    rec.stop_evt.set()
    rec.join(timeout=90)
    final_checks(rec)
    with open(out_json, "w") as f:
        json.dump({"baseline_issued_10s": base["issued"], "phases": numbers}, f, indent=1)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        inner(sys.argv[2], sys.argv[3], sys.argv[4])
        print("INNER %d %d" % (results.count(True), results.count(False)))
        return 0
    if os.geteuid() != 0:
        print("not ok - test-cluster needs root (network namespaces)")
        print("0 passed, 1 failed")
        return 1
    t0 = time.time()
    # SIGTERM (a CI timeout) unwinds through the finally below: down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    d = tempfile.mkdtemp(prefix="anvil-cluster-", dir="/var/tmp")
    os.chmod(d, 0o755)
    os.environ["ANVIL_CLUSTER_DIR"] = d
    os.environ["BINDIR"] = BINDIR
    passed = failed = 0
    env = {}
    out_json = os.environ.get("ANVIL_CLUSTER_NUMBERS", os.path.join(TOP, "build", "cluster-numbers.json"))
    os.makedirs(os.path.dirname(out_json), exist_ok=True)
    try:
        up = cluster("up", timeout=600)
        sys.stderr.write(up.stderr)
        env = dict(ln.split("=", 1) for ln in up.stdout.splitlines() if ln.startswith("ANVIL_"))
        if not check("cluster.sh up prints the directory and the trust bundle",
                     up.returncode == 0 and "ANVIL_DIRECTORY" in env and "ANVIL_TRUST" in env,
                     up.stdout + up.stderr[-3000:]):
            return 1
        print("    up in %.0f s" % (time.time() - t0), flush=True)
        p = subprocess.Popen(["ip", "netns", "exec", env["ANVIL_CLUSTER_CLIENT_NETNS"], sys.executable,
                              os.path.abspath(__file__), "--inner", env["ANVIL_DIRECTORY"],
                              env["ANVIL_TRUST"], out_json], text=True, stdout=subprocess.PIPE)
        for ln in p.stdout:
            if ln.startswith("INNER "):
                passed, failed = (int(x) for x in ln.split()[1:])
            else:
                print(ln.rstrip("\n"), flush=True)
        p.wait()
        if p.returncode != 0 or passed + failed == 0:
            failed += 1
            print("not ok - the test driver inside the client machine failed (exit %d)" % p.returncode)
    finally:
        # ANVIL_CLUSTER_KEEP_LOGS=DIR: the services' logs of every run
        # (not only of a failed one) are copied there.
        if os.environ.get("ANVIL_CLUSTER_KEEP_LOGS") and os.path.isdir(os.path.join(d, "log")):
            subprocess.run(["cp", "-r", os.path.join(d, "log"), os.environ["ANVIL_CLUSTER_KEEP_LOGS"]])
        if failed and os.path.isdir(os.path.join(d, "log")):
            keep = os.path.join(TOP, "build", "cluster-logs")
            subprocess.run(["rm", "-rf", keep])
            subprocess.run(["cp", "-r", os.path.join(d, "log"), keep])
            print("    logs kept in %s" % keep)
        if failed:
            logs = os.path.join(d, "log")
            for f in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
                with open(os.path.join(logs, f), errors="replace") as fh:
                    tail = fh.readlines()[-5:]
                print("---- %s\n%s" % (f, "".join(tail)))
        down = cluster("down", timeout=600)
        prefix = env.get("ANVIL_CLUSTER_CLIENT_NETNS", "anvc-?-client")[:-len("client")] 
        left = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                if n.startswith(prefix)]
        check("cluster.sh down leaves no namespace and no state behind",
              down.returncode == 0 and not left and not os.path.exists(d), (down.stderr, left))
        passed += results.count(True)
        failed += results.count(False)
        print("    whole suite: %.0f s, load average %.1f" % (time.time() - t0, os.getloadavg()[0]))
        print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
