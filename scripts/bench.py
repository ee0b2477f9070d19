#!/usr/bin/env python3
"""`make bench`: Anvil next to Pebble, in one run, in under 10 minutes.

    BUILD=build BINDIR=bin scripts/bench.py      (scripts/bench.sh calls this)

1. Pebble + pebble-challtestsrv (ports 22000-22099, scripts/bench-pebble.sh):
   idle RSS, wrk on /dir and GET newNonce, then anvil-loadgen at 1, 16, 64
   and 256 clients (a fresh Pebble for each run, because Pebble 2.4.0 can
   deadlock under concurrency; a run where it stops answering is reported
   as such).
2. Anvil through the real launcher with its own PostgreSQL (AnvilEnv,
   ports 22100-22199; synchronous_commit on): idle RSS, wrk on /directory
   and GET newNonce, anvil-loadgen at 1, 16, 64 and 256 clients. For each
   run, per issuance: RPCs by method (the services' /metrics), SQL
   statements (pg_stat_statements), transactions committed and WAL flushes
   (pg_stat_database, pg_stat_wal), context switches and CPU by process.
3. Server CPU seconds per issuance from /proc/<pid>/stat (utime + stime +
   reaped children) of every Anvil process (launcher, sa, ca, va, ra, wfe)
   plus every PostgreSQL process, vs the Pebble process; peak RSS (VmHWM of
   the services, PSS of PostgreSQL sampled during the run).
4. The per-module bench scripts (bench-rpc/jose/sa/ca/va.sh) when present
   and executable, each bounded in time.
Prints a table with Anvil/Pebble ratios and the targets of issue 13, writes
bench/results.json. Asserts nothing; exit status 0 unless the driver itself
breaks.

Knobs (environment): BENCH_DURATION (s per loadgen run, 20),
BENCH_LONG_DURATION (s of the 256-client run, 60; the target asks for 300),
BENCH_WRK_SECONDS (5), BENCH_BUDGET (s for the whole run, 570),
BENCH_PEBBLE_ATTEMPTS (2), BENCH_SHORT_DURATION (s of the 1-client runs, 10),
BENCH_PG_OPTIONS (extra PostgreSQL settings, e.g. "-c commit_delay=200"),
BENCH_SKIP_MODULES=1, BENCH_SKIP_PEBBLE=1, BENCH_SKIP_ANVIL=1.
"""
import json
import os
import platform
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(TOP, "test", "integration", "lib"))

BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(TOP, "build")))
BINDIR = os.path.abspath(os.environ.get("BINDIR", os.path.join(TOP, "bin")))
os.environ["BUILD"] = BUILD
os.environ["BINDIR"] = BINDIR
LOADGEN = os.path.join(BINDIR, "anvil-loadgen")
PEBBLE_BASE = 22000
ANVIL_BASE = 22100
DUR = int(os.environ.get("BENCH_DURATION", "20"))
LONG_DUR = int(os.environ.get("BENCH_LONG_DURATION", "60"))
SHORT_DUR = int(os.environ.get("BENCH_SHORT_DURATION", "10"))  # the 1-client runs
WRK_S = int(os.environ.get("BENCH_WRK_SECONDS", "5"))
BUDGET = int(os.environ.get("BENCH_BUDGET", "570"))
# Pebble 2.4.0 deadlocks in its memory store under concurrent newOrders;
# a run where that happens is repeated on a fresh Pebble at most this often.
PEBBLE_ATTEMPTS = int(os.environ.get("BENCH_PEBBLE_ATTEMPTS", "2"))
CLK = os.sysconf("SC_CLK_TCK")
T0 = time.time()


def log(msg):
    print("[bench %5.0fs] %s" % (time.time() - T0, msg), flush=True)


def remaining():
    return BUDGET - (time.time() - T0)


def anvil_need():
    """Seconds Anvil's part needs (start, wrk, the four loadgen runs, the
    counters around each): what Pebble's runs leave for it. It was a fixed
    300 s, so a shortened budget skipped Pebble altogether and left no
    side-by-side numbers."""
    return 60 + 2 * WRK_S + SHORT_DUR + 2 * DUR + LONG_DUR + 4 * 10


# ---------------------------------------------------------------- /proc --
def proc_list():
    """{pid: (ppid, comm, cmdline)} of every process we can read."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        out[int(d)] = (ppid, comm, cmd)
    return out


def tree(roots, procs=None):
    """roots and all their descendants that are alive."""
    procs = procs if procs is not None else proc_list()
    kids = {}
    for pid, (ppid, _, _) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    seen, todo = set(), [r for r in roots if r in procs]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(kids.get(p, []))
    return seen


def cpu_ticks(pid):
    """utime + stime + cutime + cstime of pid, in ticks (0 if gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return 0
    v = st[st.rindex(")") + 2:].split()
    return int(v[11]) + int(v[12]) + int(v[13]) + int(v[14])


def cpu_snapshot(pids):
    return {p: cpu_ticks(p) for p in pids}


def cpu_seconds_between(before, after):
    """CPU spent between two snapshots: deltas for processes in both, all of
    a process born in between (children that exited were reaped into a
    parent's cutime/cstime, which is in the delta)."""
    t = 0
    for p, v in after.items():
        t += v - before.get(p, 0) if p in before else v
    return t / CLK


def cpu_by_name(before, after):
    """The same split by process name (comm): where the CPU went."""
    procs = proc_list()
    out = {}
    for p, v in after.items():
        name = procs.get(p, (0, "exited", ""))[1]
        name = "postgres" if name.startswith("postgres") else name
        out[name] = out.get(name, 0) + (v - before.get(p, 0) if p in before else v) / CLK
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def pg_cpu_by_role(before, after, issued):
    """PostgreSQL's CPU ms per issuance by process role, from the process
    title (\"postgres: walwriter\", \"postgres: <user> <db> [local] idle\" is
    a backend)."""
    procs = proc_list()
    out = {}
    for p, v in after.items():
        ppid, comm, cmd = procs.get(p, (0, "exited", ""))
        if not comm.startswith("postgres"):
            continue
        role = cmd[len("postgres: "):] if cmd.startswith("postgres: ") else "postmaster"
        if "[local]" in role or "(" in role:
            role = "backends"
        out[role] = out.get(role, 0) + (v - before.get(p, 0) if p in before else v)
    return {k: round(v / CLK * 1000 / issued, 2)
            for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v}


def ctxt_switches(pid):
    """Voluntary + involuntary context switches of every live thread of pid
    (/proc/<pid>/task/*/status; 0 if gone)."""
    t = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if "ctxt_switches:" in line:
                        t += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return t


def cs_snapshot(pids):
    return {p: ctxt_switches(p) for p in pids}


def by_name(before, after, scale=1):
    """Deltas of a {pid: counter} snapshot pair, summed by process name
    (PostgreSQL processes together as "postgres")."""
    procs = proc_list()
    out = {}
    for p, v in after.items():
        name = procs.get(p, (0, "exited", ""))[1]
        name = "postgres" if name.startswith("postgres") else name
        out[name] = out.get(name, 0) + (v - before.get(p, 0) if p in before else v)
    return {k: v / scale for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemSampler:
    """Samples sum(VmRSS) of `services()` and sum(PSS) of `pg()` pids twice
    a second while a run is going; keeps the maxima."""

    def __init__(self, services, pg=lambda: []):
        self.services, self.pg = services, pg
        self.max_services_kb = 0
        self.max_pg_kb = 0
        self.max_total_kb = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            s = sum(status_kb(p, "VmRSS") for p in self.services())
            g = sum(pss_kb(p) for p in self.pg())
            self.max_services_kb = max(self.max_services_kb, s)
            self.max_pg_kb = max(self.max_pg_kb, g)
            self.max_total_kb = max(self.max_total_kb, s + g)
            self._stop.wait(0.5)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join()


# ------------------------------------------------------------- clients --
def ssl_ctx(trust):
    ctx = ssl.create_default_context(cafile=trust)
    return ctx


def fetch_directory(url, trust, timeout=5):
    with urllib.request.urlopen(url, context=ssl_ctx(trust), timeout=timeout) as r:
        return json.loads(r.read().decode())


def answers(url, trust):
    try:
        fetch_directory(url, trust, timeout=5)
        return True
    except Exception:  # noqa: BLE001 - any failure means "does not answer"
        return False


def wrk(url, seconds=WRK_S, conns=32):
    """Requests/s of wrk against url (GET). None if wrk is missing/fails."""
    try:
        p = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds, url],
                           capture_output=True, text=True, timeout=seconds + 30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}
    m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
    res = {"rps": float(m.group(1)) if m else None}
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", p.stdout)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", p.stdout)
    res["socket_errors"] = m.group(1).strip() if m else ""
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", p.stdout)
    res["latency_avg"] = m.group(1) if m else None
    if res["rps"] is None:
        res["error"] = (p.stdout + p.stderr)[-400:]
    return res


def loadgen(directory, trust, http_port, clients, seconds):
    cmd = [LOADGEN, "--directory", directory, "--trust", trust,
           "--http-port", str(http_port), "--clients", str(clients),
           "--duration", "%ds" % seconds, "--timeout", "10s",
           "--issuance-timeout", "30s", "--json"]
    log("loadgen: %d clients for %ds against %s" % (clients, seconds, directory))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 150)
    except subprocess.TimeoutExpired:
        return {"error": "loadgen did not finish in %ds" % (seconds + 150)}
    try:
        res = json.loads(p.stdout)
    except ValueError:
        return {"error": "loadgen exit %d: %s" % (p.returncode, p.stderr.strip()[-400:])}
    if p.returncode == 2:
        res["error"] = p.stderr.strip()[-400:]
    return res


def summarize(run, cpu_s, peak=None):
    """The numbers of one loadgen run that go into the table."""
    if "error" in run and "issued" not in run:
        return {"error": run["error"]}
    lat = run.get("latency", {}).get("issuance", {})
    issued = run.get("issued", 0)
    out = {
        "clients": run.get("clients"),
        "issued": issued,
        "failed": run.get("failed"),
        "failures": run.get("failures"),
        "issuances_per_s": run.get("issuances_per_s"),
        "elapsed_s": run.get("elapsed_s"),
        "p50_ms": lat.get("p50_ms"), "p90_ms": lat.get("p90_ms"),
        "p99_ms": lat.get("p99_ms"), "max_ms": lat.get("max_ms"),
        "server_cpu_s": round(cpu_s, 3),
        "server_cpu_ms_per_issuance": round(1000 * cpu_s / issued, 3) if issued else None,
        "loadgen_cpu_s": run.get("loadgen_cpu_s"),
        "per_request": {k: {"p50_ms": v["p50_ms"], "p99_ms": v["p99_ms"], "count": v["count"]}
                        for k, v in run.get("latency", {}).items()},
        # per second of the window, for scripts/bench-plot.py
        "timeline": run.get("timeline"),
        "latency_timeline": run.get("latency_timeline"),
    }
    if peak is not None:
        out.update(peak)
    out["issuances_per_s_answering"] = out["issuances_per_s"]
    if any(k in (run.get("failures") or {}) for k in ("timeout", "transport")):
        out["stopped_answering"] = True
        # The rate up to the last completed issuance: what the server did
        # while it still answered (favours a server that stalls).
        last = run.get("last_issuance_s") or 0
        out["issuances_per_s_answering"] = round(issued / last, 2) if last > 0 else 0.0
        out["last_issuance_s"] = last
    out["timeline"] = run.get("timeline")
    return out


# --------------------------------------------------------------- Pebble --
def pebble_bench():
    res = {"runs": {}}
    d = os.path.join(BUILD, "tmp", "bench-pebble")
    script = os.path.join(TOP, "scripts", "bench-pebble.sh")

    def start():
        out = subprocess.run([script, "start", d, str(PEBBLE_BASE)], capture_output=True,
                             text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError("pebble did not start: " + out.stderr.strip()[-300:])
        return dict(line.split("=", 1) for line in out.stdout.split() if "=" in line)

    def stop():
        subprocess.run([script, "stop", d], capture_output=True, timeout=30)

    try:
        env = start()
        pid = int(env["PEBBLE_PID"])
        res["version"] = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "pebble"],
                                        capture_output=True, text=True).stdout.strip()
        res["idle_rss_mb"] = round(status_kb(pid, "VmRSS") / 1024, 1)
        nonce_url = fetch_directory(env["PEBBLE_DIRECTORY"], env["PEBBLE_TRUST"])["newNonce"]
        log("pebble: wrk /dir and GET newNonce")
        res["wrk_directory"] = wrk(env["PEBBLE_DIRECTORY"])
        res["wrk_nonce"] = wrk(nonce_url)
        for clients in (1, 16, 64, 256):
            stalled = 0
            secs = SHORT_DUR if clients == 1 else (LONG_DUR if clients == 256 else DUR)
            if remaining() < secs + anvil_need():
                res["runs"][str(clients)] = {"error": "skipped: time budget"}
                continue
            for attempt in range(1, (1 if clients == 256 else PEBBLE_ATTEMPTS) + 1):
                if attempt > 1 and remaining() < secs + anvil_need():
                    break
                stop()
                env = start()
                pid = int(env["PEBBLE_PID"])
                if not answers(env["PEBBLE_DIRECTORY"], env["PEBBLE_TRUST"]):
                    s = {"error": "pebble does not answer"}
                    continue
                cs0 = cs_snapshot([pid])
                before = cpu_snapshot([pid])
                with MemSampler(lambda: [pid]) as ms:
                    run = loadgen(env["PEBBLE_DIRECTORY"], env["PEBBLE_TRUST"],
                                  int(env["PEBBLE_HTTP01_PORT"]), clients, secs)
                after = cpu_snapshot([pid])
                cpu = cpu_seconds_between(before, after)
                s = summarize(run, cpu, {"peak_rss_mb": round(status_kb(pid, "VmHWM") / 1024, 1),
                                         "max_rss_sampled_mb": round(ms.max_services_kb / 1024, 1)})
                s["mechanism"] = mechanism(run.get("issued", 0), {}, None, None, None,
                                           cs0, cs_snapshot([pid]), before, after)
                s["answers_after_run"] = answers(env["PEBBLE_DIRECTORY"], env["PEBBLE_TRUST"])
                if not s.get("stopped_answering"):
                    break
                stalled += 1
                log("pebble stopped answering during the run (attempt %d)" % attempt)
            s["attempts"] = attempt
            s["stalled_attempts"] = stalled
            res["runs"][str(clients)] = s
    except Exception as e:  # noqa: BLE001 - report, never abort the bench
        res["error"] = str(e)
    finally:
        stop()
    return res


# ------------------------------------------------------------ mechanism --
RPC_RE = re.compile(r'^anvil_rpc_server_calls_total\{method="([^"]+)",result="[^"]*"\} (\S+)$')


def rpc_counts(env):
    """{method: calls handled so far} summed over the servers' /metrics."""
    out = {}
    for svc in ("sa", "ca", "va", "ra"):
        status, text = env.debug_get(svc)
        if status != 200:
            continue
        for line in text.splitlines():
            m = RPC_RE.match(line)
            if m and m.group(1) != "health.check":
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
    return out


def psql(dsn, q):
    p = subprocess.run(["psql", dsn, "-AtqX", "-F", "\t", "-c", q], capture_output=True, text=True,
                       timeout=30)
    return [line.split("\t") for line in p.stdout.splitlines()] if p.returncode == 0 else None


def pg_counters(dsn):
    """Transactions committed, WAL flushes and statements (pg_stat_statements,
    when loaded) of the Anvil database so far."""
    out = {}
    r = psql(dsn, "select xact_commit, xact_rollback from pg_stat_database "
                  "where datname = current_database()")
    if r:
        out["xact_commit"], out["xact_rollback"] = int(r[0][0]), int(r[0][1])
    r = psql(dsn, "select wal_sync, wal_records, wal_bytes, wal_fpi from pg_stat_wal")
    if r:
        out["wal_sync"], out["wal_records"] = int(r[0][0]), int(r[0][1])
        out["wal_bytes"], out["wal_fpi"] = int(r[0][2]), int(r[0][3])
    # plans and total_plan_time count only with pg_stat_statements.track_planning
    r = psql(dsn, "select queryid, calls, plans, total_exec_time, total_plan_time, "
                  "left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
                  "from pg_stat_statements where dbid = (select oid from pg_database "
                  "where datname = current_database())")
    if r is not None:
        out["statements"] = {row[0]: (int(row[1]), row[5], int(row[2]), float(row[3]),
                                      float(row[4])) for row in r if len(row) == 6}
    return out


def mechanism(issued, rpc0, rpc1, pg0, pg1, cs0, cs1, cpu0, cpu1):
    """What one issuance cost on average: RPCs by method, SQL statements,
    commits, WAL flushes, context switches and CPU by process."""
    if not issued:
        return {}
    out = {}
    if rpc1 is not None:
        by = {m: round((v - rpc0.get(m, 0)) / issued, 2) for m, v in rpc1.items()}
        by = {m: v for m, v in sorted(by.items(), key=lambda kv: -kv[1]) if v > 0}
        out["rpc_per_issuance"] = round(sum(by.values()), 1)
        out["rpc_by_method"] = by
    if pg0 and pg1:
        for k in ("xact_commit", "wal_sync", "wal_records", "wal_bytes", "wal_fpi"):
            if k in pg0 and k in pg1:
                out[k + "_per_issuance"] = round((pg1[k] - pg0[k]) / issued, 2)
        if "statements" in pg0 and "statements" in pg1:
            st, timing = [], []
            for qid, (calls, text, plans, ex, pl) in pg1["statements"].items():
                c0, _, p0, ex0, pl0 = pg0["statements"].get(qid, (0, "", 0, 0.0, 0.0))
                d = calls - c0
                if d > 0 and "pg_stat" not in text:
                    st.append((round(d / issued, 2), text))
                    # per issuance: plans, plan ms, execution ms
                    timing.append((round((plans - p0) / issued, 2), round((pl - pl0) / issued, 3),
                                   round((ex - ex0) / issued, 3), text))
            st.sort(key=lambda x: -x[0])
            out["sql_statements_per_issuance"] = round(sum(x[0] for x in st), 1)
            out["sql_top"] = st[:20]
            out["sql_all"] = st
            timing.sort(key=lambda x: -(x[1] + x[2]))
            out["sql_timing"] = timing
            out["sql_plan_ms_per_issuance"] = round(sum(x[1] for x in timing), 3)
            out["sql_exec_ms_per_issuance"] = round(sum(x[2] for x in timing), 3)
    cs = by_name(cs0, cs1, issued)
    out["ctxt_switches_per_issuance"] = round(sum(cs.values()), 1)
    out["ctxt_switches_by_process"] = {k: round(v, 1) for k, v in cs.items() if v >= 0.05}
    cpu = by_name(cpu0, cpu1, issued / 1000.0 * CLK)
    out["cpu_ms_by_process"] = {k: round(v, 2) for k, v in cpu.items() if v >= 0.005}
    return out


# ---------------------------------------------------------------- Anvil --
def anvil_bench():
    from anvil_env import AnvilEnv  # noqa: E402 (needs sys.path above)

    res = {"runs": {}}
    # Statement counts per issuance come from pg_stat_statements.
    # BENCH_PG_OPTIONS adds server settings for experiments, e.g.
    # "-c commit_delay=200 -c commit_siblings=2" (group commit).
    os.environ["ANVIL_PG_OPTIONS"] = ("-c shared_preload_libraries=pg_stat_statements "
                                      "-c pg_stat_statements.track=top " +
                                      os.environ.get("BENCH_PG_OPTIONS", "")).strip()
    res["pg_options"] = os.environ["ANVIL_PG_OPTIONS"]
    env = AnvilEnv(port_base=ANVIL_BASE, name="bench-anvil", start_timeout=120)
    try:
        log("anvil: bootstrap + start (PostgreSQL, launcher, sa ca va ra wfe)")
        env.start()
        launcher = env.proc.pid
        pg_data = os.path.join(os.path.realpath(os.path.join(env.var_dir, "pg")), "data")
        with open(os.path.join(pg_data, "postmaster.pid")) as f:
            postmaster = int(f.readline())

        def services():
            procs = proc_list()
            return [p for p in tree([launcher], procs) if "challtes" not in procs[p][1]]

        def pg():
            return list(tree([postmaster]))

        def everything():
            return services() + pg()

        if psql(env.dsn, "create extension if not exists pg_stat_statements") is None:
            log("anvil: pg_stat_statements unavailable, no statement counts")
        time.sleep(1)
        res["idle_rss_mb"] = round(sum(status_kb(p, "VmRSS") for p in services()) / 1024, 1)
        res["idle_pg_pss_mb"] = round(sum(pss_kb(p) for p in pg()) / 1024, 1)
        res["idle_per_process_rss_mb"] = {
            proc_list().get(p, (0, "?", ""))[1]: round(status_kb(p, "VmRSS") / 1024, 1)
            for p in services()}
        nonce_url = fetch_directory(env.directory_url, env.trust_path)["newNonce"]
        log("anvil: wrk /directory and GET newNonce")
        res["wrk_directory"] = wrk(env.directory_url)
        res["wrk_nonce"] = wrk(nonce_url)
        for clients, secs in ((1, SHORT_DUR), (16, DUR), (64, DUR), (256, LONG_DUR)):
            if remaining() < secs + 60:
                res["runs"][str(clients)] = {"error": "skipped: time budget"}
                continue
            rpc0, pg0 = rpc_counts(env), pg_counters(env.dsn)
            cs0 = cs_snapshot(everything())
            before = cpu_snapshot(everything())
            with MemSampler(services, pg) as ms:
                run = loadgen(env.directory_url, env.trust_path, env.ports["http01"], clients, secs)
            after = cpu_snapshot(everything())
            cs1 = cs_snapshot(everything())
            cpu = cpu_seconds_between(before, after)
            time.sleep(2)  # PostgreSQL publishes its counters at most once a second
            mech = mechanism(run.get("issued", 0), rpc0, rpc_counts(env), pg0, pg_counters(env.dsn),
                             cs0, cs1, before, after)
            peak = {"cpu_s_by_process": cpu_by_name(before, after),"peak_rss_mb": round(sum(status_kb(p, "VmHWM") for p in services()) / 1024, 1),
                    "max_rss_sampled_mb": round(ms.max_services_kb / 1024, 1),
                    "max_pg_pss_mb": round(ms.max_pg_kb / 1024, 1),
                    "max_total_mb": round(ms.max_total_kb / 1024, 1)}
            s = summarize(run, cpu, peak)
            s["mechanism"] = mech
            s["answers_after_run"] = answers(env.directory_url, env.trust_path)
            res["runs"][str(clients)] = s
    except Exception as e:  # noqa: BLE001 - report, never abort the bench
        res["error"] = str(e)[-1500:]
    finally:
        env.stop()
    return res


# ----------------------------------------------------------------- flow --
WFE_RE = re.compile(r'^anvil_wfe_requests_total\{endpoint="([^"]*)",method="([^"]*)",status="(\d+)"\} (\S+)$')


def wfe_counts(env):
    """{"METHOD endpoint": requests so far} from the WFE's /metrics."""
    out = {}
    status, text = env.debug_get("wfe")
    if status != 200:
        return out
    for line in text.splitlines():
        m = WFE_RE.match(line)
        if m:
            k = "%s %s" % (m.group(2), m.group(1))
            out[k] = out.get(k, 0) + float(m.group(4))
    return out


def flow_anvil(issuances=None, extra=None):
    """`scripts/bench.py --flow [--renew]`: one client, one name, http-01,
    sequential issuances on an otherwise idle Anvil; prints what ONE
    issuance costs: HTTPS requests by endpoint, RPCs by method, every SQL
    statement with its count, transactions committed, WAL flushes (about one
    per write transaction with one client) and CPU by process. --renew runs
    the same with anvil-loadgen --renew (every order after the first for a
    name already authorized: authz reuse)."""
    from anvil_env import AnvilEnv  # noqa: E402

    issuances = issuances or int(os.environ.get("BENCH_FLOW_ISSUANCES", "40"))
    os.environ["ANVIL_PG_OPTIONS"] = ("-c shared_preload_libraries=pg_stat_statements "
                                      "-c pg_stat_statements.track=top "
                                      "-c pg_stat_statements.track_utility=on "
                                      "-c pg_stat_statements.track_planning=on " +
                                      os.environ.get("BENCH_PG_OPTIONS", "")).strip()
    # BENCH_FLOW_CONFIG: AnvilEnv config overrides as JSON, e.g.
    # '{"ra.json:validation.wait": "0s"}' (the claim-first validation)
    env = AnvilEnv(port_base=ANVIL_BASE, name="bench-flow", start_timeout=120,
                   config=json.loads(os.environ.get("BENCH_FLOW_CONFIG", "{}")))
    res = {}
    try:
        env.start()
        pg_data = os.path.join(os.path.realpath(os.path.join(env.var_dir, "pg")), "data")
        with open(os.path.join(pg_data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        psql(env.dsn, "create extension if not exists pg_stat_statements")

        def everything():
            procs = proc_list()
            return [p for p in tree([env.proc.pid, postmaster], procs) if "challtes" not in procs[p][1]]

        base = [LOADGEN, "--directory", env.directory_url, "--trust", env.trust_path,
                "--http-port", str(env.ports["http01"]), "--clients", "1", "--timeout", "10s",
                "--issuance-timeout", "30s", "--json"] + (extra or [])
        # Warm-up: connections, caches, prepared statements; with --renew it
        # also issues the first (non-renewal) certificate of each name.
        subprocess.run(base + ["--count", "5"], capture_output=True, text=True, timeout=120)
        time.sleep(2)
        rpc0, pg0, w0 = rpc_counts(env), pg_counters(env.dsn), wfe_counts(env)
        cs0 = cs_snapshot(everything())
        before = cpu_snapshot(everything())
        p = subprocess.run(base + ["--count", str(issuances)], capture_output=True, text=True,
                           timeout=600)
        after = cpu_snapshot(everything())
        cs1 = cs_snapshot(everything())
        time.sleep(2)
        run = json.loads(p.stdout)
        n = run.get("issued", 0)
        mech = mechanism(n, rpc0, rpc_counts(env), pg0, pg_counters(env.dsn), cs0, cs1, before, after)
        mech["postgres_cpu_ms_by_role"] = pg_cpu_by_role(before, after, n) if n else {}
        w1 = wfe_counts(env)
        mech["wfe_requests"] = {k: round((v - w0.get(k, 0)) / n, 2) for k, v in w1.items()
                                if n and v - w0.get(k, 0) > 0}
        res = {"issued": n, "failed": run.get("failed"), "mechanism": mech,
               "server_cpu_ms_per_issuance": round(1000 * cpu_seconds_between(before, after) / n, 2)
               if n else None,
               "p50_ms": run.get("latency", {}).get("issuance", {}).get("p50_ms")}
    finally:
        env.stop()
    m = res.get("mechanism", {})
    print("one issuance%s (%s sequential, 1 client, load %.1f):" % (
        " (renewal)" if extra else "", res.get("issued"), os.getloadavg()[0]))
    print("  HTTPS requests %.1f: %s" % (sum(m.get("wfe_requests", {}).values()), ", ".join(
        "%s %s" % (k, fmt(v, 2)) for k, v in sorted(m.get("wfe_requests", {}).items(), key=lambda kv: -kv[1]))))
    print("  RPCs %s:" % fmt(m.get("rpc_per_issuance")))
    for k, v in m.get("rpc_by_method", {}).items():
        print("    %6.2f  %s" % (v, k))
    print("  SQL statements %s (BEGIN/COMMIT included), WAL flushes %s, transactions committed %s:" % (
        fmt(m.get("sql_statements_per_issuance")), fmt(m.get("wal_sync_per_issuance"), 2),
        fmt(m.get("xact_commit_per_issuance"), 2)))
    for v, text in m.get("sql_all", m.get("sql_top", [])):
        print("    %6.2f  %s" % (v, text))
    print("  SQL time ms (pg_stat_statements): planning %s, execution %s; WAL %s bytes, %s full-page "
          "images:" % (fmt(m.get("sql_plan_ms_per_issuance"), 3), fmt(m.get("sql_exec_ms_per_issuance"), 3),
                       fmt(m.get("wal_bytes_per_issuance"), 0), fmt(m.get("wal_fpi_per_issuance"), 2)))
    print("    %6s %8s %8s" % ("plans", "plan ms", "exec ms"))
    for plans, pl, ex, text in m.get("sql_timing", []):
        print("    %6.2f %8.3f %8.3f  %s" % (plans, pl, ex, text))
    print("  CPU ms %s: %s" % (fmt(res.get("server_cpu_ms_per_issuance"), 2), ", ".join(
        "%s %s" % (k, fmt(v, 2)) for k, v in m.get("cpu_ms_by_process", {}).items())))
    print("  postgres CPU ms by process: %s" % ", ".join(
        "%s %s" % (k, fmt(v, 2)) for k, v in m.get("postgres_cpu_ms_by_role", {}).items()))
    print("  context switches %s, p50 issuance %s ms" % (fmt(m.get("ctxt_switches_per_issuance")),
                                                        fmt(res.get("p50_ms"))))
    return 0


# -------------------------------------------------------------- modules --
MODULE_SCRIPTS = ["bench-rpc.sh", "bench-jose.sh", "bench-sa.sh", "bench-ca.sh", "bench-va.sh"]
MODULE_ARGS = {"bench-sa.sh": ["20000", "3"]}  # the default loads 1M rows


def module_benches():
    out = {}
    for name in MODULE_SCRIPTS:
        path = os.path.join(TOP, "scripts", name)
        if not os.access(path, os.X_OK):
            out[name] = {"skipped": "not present or not executable"}
            log("%s: skipped (not present or not executable)" % name)
            continue
        limit = min(75, int(remaining()) - 15)
        if limit < 20:
            out[name] = {"skipped": "time budget"}
            log("%s: skipped (time budget)" % name)
            continue
        log("%s (at most %ds)" % (name, limit))
        env = dict(os.environ, BENCH_SECONDS="3", SECONDS_PER="2")
        t = time.time()
        # Own process group: on timeout SIGTERM reaches the script and its
        # children, so its cleanup trap stops what it started (PostgreSQL...).
        p = subprocess.Popen([path] + MODULE_ARGS.get(name, []), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env, cwd=TOP,
                             start_new_session=True)
        try:
            text, _ = p.communicate(timeout=limit)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                text, _ = p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                text, _ = p.communicate()
            text = (text or "") + "\n(stopped after %ds)" % limit
            rc = None
        lines = text.strip().splitlines()[-40:]
        out[name] = {"exit": rc, "seconds": round(time.time() - t, 1), "output": lines}
        print("\n".join("    " + line for line in lines), flush=True)
    return out


# ---------------------------------------------------------------- table --
def g(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.*f" % (nd, v)
    return str(v)


def table(results):
    a, p = results.get("anvil", {}), results.get("pebble", {})
    rows = []
    for c in ("1", "16", "64", "256"):
        rows += [
            ("issuances/s @%s" % c, g(a, "runs", c, "issuances_per_s"), g(p, "runs", c, "issuances_per_s")),
            ("  .. while answering @%s" % c, g(a, "runs", c, "issuances_per_s_answering"),
             g(p, "runs", c, "issuances_per_s_answering")),
            ("failed @%s" % c, g(a, "runs", c, "failed"), g(p, "runs", c, "failed")),
            ("p50 issuance ms @%s" % c, g(a, "runs", c, "p50_ms"), g(p, "runs", c, "p50_ms")),
            ("p99 issuance ms @%s" % c, g(a, "runs", c, "p99_ms"), g(p, "runs", c, "p99_ms")),
            ("server CPU ms/issuance @%s" % c, g(a, "runs", c, "server_cpu_ms_per_issuance"),
             g(p, "runs", c, "server_cpu_ms_per_issuance")),
            ("peak RSS MB @%s" % c, g(a, "runs", c, "max_rss_sampled_mb"), g(p, "runs", c, "max_rss_sampled_mb")),
            ("context switches/issuance @%s" % c, g(a, "runs", c, "mechanism", "ctxt_switches_per_issuance"),
             g(p, "runs", c, "mechanism", "ctxt_switches_per_issuance")),
        ]
    rows += [
        ("/directory req/s (wrk)", g(a, "wrk_directory", "rps"), g(p, "wrk_directory", "rps")),
        ("newNonce req/s (wrk GET)", g(a, "wrk_nonce", "rps"), g(p, "wrk_nonce", "rps")),
        ("idle RSS MB", a.get("idle_rss_mb"), p.get("idle_rss_mb")),
    ]
    lines = ["%-30s %12s %12s %10s" % ("", "Anvil", "Pebble", "A/P")]
    ratios = {}
    for name, av, pv in rows:
        r = ratio(av, pv) if isinstance(av, (int, float)) and isinstance(pv, (int, float)) else None
        ratios[name] = r
        lines.append("%-30s %12s %12s %10s" % (name, fmt(av), fmt(pv), fmt(r, 2)))
    r256 = g(a, "runs", "256") or {}
    lines.append("Anvil @256 clients for %ss: %s issuances/s, %s failed, p99 %s ms, "
                 "services RSS %s MB (+ PostgreSQL PSS %s MB)" % (
                     fmt(r256.get("elapsed_s"), 0), fmt(r256.get("issuances_per_s")),
                     fmt(r256.get("failed")), fmt(r256.get("p99_ms")),
                     fmt(r256.get("max_rss_sampled_mb")), fmt(r256.get("max_pg_pss_mb"))))
    lines += mechanism_lines(results)
    return lines, ratios


def mechanism_lines(results):
    """Per issuance: RPCs by method, SQL statements, commits, WAL flushes,
    context switches and CPU by process, for every client count."""
    out = ["", "per issuance (mechanism):"]
    for side in ("anvil", "pebble"):
        for c, r in sorted((g(results, side, "runs") or {}).items(), key=lambda kv: int(kv[0])):
            m = r.get("mechanism") or {}
            if not m:
                continue
            out.append("  %s @%s clients:" % (side.capitalize(), c))
            if "rpc_per_issuance" in m:
                out.append("    RPCs %s: %s" % (fmt(m["rpc_per_issuance"]), ", ".join(
                    "%s %s" % (k, fmt(v, 2)) for k, v in m["rpc_by_method"].items())))
            if "sql_statements_per_issuance" in m or "xact_commit_per_issuance" in m:
                out.append("    SQL statements %s, transactions committed %s, WAL flushes %s, WAL records %s" % (
                    fmt(m.get("sql_statements_per_issuance")), fmt(m.get("xact_commit_per_issuance"), 2),
                    fmt(m.get("wal_sync_per_issuance"), 2), fmt(m.get("wal_records_per_issuance"))))
            out.append("    context switches %s: %s" % (fmt(m.get("ctxt_switches_per_issuance")), ", ".join(
                "%s %s" % (k, fmt(v)) for k, v in m.get("ctxt_switches_by_process", {}).items())))
            out.append("    CPU ms: %s" % ", ".join(
                "%s %s" % (k, fmt(v, 2)) for k, v in m.get("cpu_ms_by_process", {}).items()))
    return out


def targets(results):
    a, p = results.get("anvil", {}), results.get("pebble", {})
    out = {}

    def t(name, value, goal, ok):
        out[name] = {"value": value, "goal": goal,
                     "met": None if value is None else bool(ok(value))}

    t("issuance rate >= 2x Pebble @16 (issue 18)",
      ratio(g(a, "runs", "16", "issuances_per_s"), g(p, "runs", "16", "issuances_per_s_answering")), 2.0,
      lambda v: v >= 2)
    t("p50 issuance <= Pebble's @16 (ratio)",
      ratio(g(a, "runs", "16", "p50_ms"), g(p, "runs", "16", "p50_ms")), 1.0, lambda v: v <= 1)
    t("server CPU/issuance <= 6 ms @16",
      g(a, "runs", "16", "server_cpu_ms_per_issuance"), 6, lambda v: v <= 6)
    t("RPCs per issuance <= 12 @16", g(a, "runs", "16", "mechanism", "rpc_per_issuance"), 12,
      lambda v: v <= 12)
    t("SQL statements per issuance <= 12 @16",
      g(a, "runs", "16", "mechanism", "sql_statements_per_issuance"), 12, lambda v: v <= 12)
    t("WAL flushes per issuance <= 4 @16", g(a, "runs", "16", "mechanism", "wal_sync_per_issuance"), 4,
      lambda v: v <= 4)
    r256 = g(a, "runs", "256") or {}
    t("256 clients: zero failures", r256.get("failed"), 0, lambda v: v == 0)
    t("256 clients: p99 issuance < 2000 ms", r256.get("p99_ms"), 2000, lambda v: v < 2000)
    t("/directory >= 1.5x Pebble",
      ratio(g(a, "wrk_directory", "rps"), g(p, "wrk_directory", "rps")), 1.5, lambda v: v >= 1.5)
    t("newNonce >= 1.5x Pebble",
      ratio(g(a, "wrk_nonce", "rps"), g(p, "wrk_nonce", "rps")), 1.5, lambda v: v >= 1.5)
    t("Anvil RSS idle <= 64 MB", a.get("idle_rss_mb"), 64, lambda v: v <= 64)
    t("Anvil RSS @256 <= 256 MB", r256.get("max_rss_sampled_mb"), 256, lambda v: v <= 256)
    return out


def profile_anvil(seconds=15, clients=16):
    """`scripts/bench.py --profile`: perf record (call graphs) of every Anvil
    process and PostgreSQL during a loadgen run; prints the hottest symbols
    per process and writes $BUILD/tmp/perf.data and $BUILD/tmp/profile.txt."""
    from anvil_env import AnvilEnv  # noqa: E402

    env = AnvilEnv(port_base=ANVIL_BASE, name="bench-profile", start_timeout=120)
    data = os.path.join(BUILD, "tmp", "perf.data")
    os.makedirs(os.path.dirname(data), exist_ok=True)
    try:
        env.start()
        procs = proc_list()
        pg_data = os.path.join(os.path.realpath(os.path.join(env.var_dir, "pg")), "data")
        with open(os.path.join(pg_data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        # Warm up so that PostgreSQL backends and RPC connections exist.
        loadgen(env.directory_url, env.trust_path, env.ports["http01"], clients, 3)
        procs = proc_list()
        pids = [p for p in tree([env.proc.pid, postmaster], procs) if "challtes" not in procs[p][1]]
        perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", data,
                                 "-p", ",".join(str(p) for p in pids)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1)
        run = loadgen(env.directory_url, env.trust_path, env.ports["http01"], clients, seconds)
        perf.send_signal(2)
        perf.wait(timeout=60)
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "-g", "none",
                              "--sort", "comm,dso,symbol", "--percent-limit", "0.7"],
                             capture_output=True, text=True)
        by_comm = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "-g", "none",
                                  "--sort", "comm"], capture_output=True, text=True)
        text = ("issued %s in %ss (%s/s)\n\n" % (run.get("issued"), run.get("elapsed_s"),
                                                  run.get("issuances_per_s"))
                + by_comm.stdout + "\n" + rep.stdout)
        with open(os.path.join(BUILD, "tmp", "profile.txt"), "w") as f:
            f.write(text)
        print(text)
    finally:
        env.stop()
    return 0


def main():
    if "--profile" in sys.argv[1:]:
        return profile_anvil()
    if "--flow" in sys.argv[1:]:
        return flow_anvil(extra=["--renew"] if "--renew" in sys.argv[1:] else None)
    if not os.access(LOADGEN, os.X_OK):
        print("bench: %s is not built (make)" % LOADGEN, file=sys.stderr)
        return 1
    results = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0)),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "loadavg_at_start": os.getloadavg()[0],
                    "cpu_model": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                       if line.startswith("model name")), None)},
        "settings": {"duration_s": DUR, "long_duration_s": LONG_DUR, "wrk_seconds": WRK_S,
                     "wrk_connections": 32, "names_per_order": 1},
    }
    if os.environ.get("BENCH_SKIP_PEBBLE") != "1":
        log("Pebble")
        results["pebble"] = pebble_bench()
    if os.environ.get("BENCH_SKIP_ANVIL") != "1":
        log("Anvil")
        results["anvil"] = anvil_bench()
    lines, ratios = table(results)
    results["ratios"] = ratios
    results["targets"] = targets(results)
    if os.environ.get("BENCH_SKIP_MODULES") != "1":
        results["modules"] = module_benches()
    results["seconds"] = round(time.time() - T0, 1)
    results["machine"]["loadavg_at_end"] = os.getloadavg()[0]
    os.makedirs(os.path.join(TOP, "bench"), exist_ok=True)
    with open(os.path.join(TOP, "bench", "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print()
    print("\n".join(lines))
    for side in ("pebble", "anvil"):
        err = g(results, side, "error")
        if err:
            lines = err.strip().splitlines() or [""]
            why = [ln for ln in lines[1:] if re.search(r"ERROR|error|fail|unknown key|cannot|refus", ln)]
            print("%s run failed: %s" % (side.capitalize(), lines[0]))
            for ln in why[:6]:
                print("    " + ln.strip())
        for c, r in (g(results, side, "runs") or {}).items():
            if r.get("error"):
                print("%s @%s: %s" % (side.capitalize(), c, r["error"]))
            elif r.get("stopped_answering"):
                print("%s @%s: stopped answering during the run (failures %s; answers afterwards: %s)" % (
                    side.capitalize(), c, r.get("failures"), r.get("answers_after_run")))
            if r.get("stalled_attempts"):
                print("%s @%s: stopped answering in %d of %d attempts (fresh process each)" % (
                    side.capitalize(), c, r["stalled_attempts"], r["attempts"]))
    print("\ntargets (issues 13 and 18):")
    for name, t in results["targets"].items():
        state = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        print("  %-42s %10s  goal %-6s %s" % (name, fmt(t["value"], 2), t["goal"], state))
    print("\nload average %.1f at start, %.1f at end on %d CPUs (other work on the machine skews "
          "every number)" % (results["machine"]["loadavg_at_start"], results["machine"]["loadavg_at_end"],
                             os.cpu_count()))
    print("wrote bench/results.json (%.0f s)" % results["seconds"])
    plot = subprocess.run([sys.executable, os.path.join(TOP, "scripts", "bench-plot.py"),
                           os.path.join(TOP, "bench", "results.json"), os.path.join(TOP, "bench")],
                          capture_output=True, text=True)
    print((plot.stdout + plot.stderr).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
