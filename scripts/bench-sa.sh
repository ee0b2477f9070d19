#!/usr/bin/env bash
# Storage authority benchmark (prints numbers, asserts nothing).
#   scripts/bench-sa.sh [ROWS=1000000] [SECONDS_PER_RUN=5]
# 1. a private PostgreSQL + anvil-sa (pool 16) in a temp dir;
# 2. calls/s for sa.new_order (2 new authzs, 2 challenges each) and
#    sa.add_certificate (serials reserved beforehand) with 1 and 16 clients;
# 3. loads ROWS certificates + orders (scripts/sa-loaddata.sh), then prints
#    table sizes, per-query latencies over RPC, the same throughput again
#    and EXPLAIN of the hot queries.
# Uses BUILD/BINDIR like the Makefile; debug port 21190 (sa test range).
set -euo pipefail
. "$(dirname "$0")/lib-bench.sh"
rows=${1:-1000000}
secs=${2:-5}
PY=python3
$PY -c 'import json' 2>/dev/null || PY=/usr/bin/python3
mkdir -p "$BUILD/tmp"
tmp=$(mktemp -d "$(cd "$BUILD/tmp" && pwd)/bench-sa.XXXXXX")
sa_pid=
cleanup() {
	[ -n "$sa_pid" ] && kill -TERM "$sa_pid" 2>/dev/null && wait "$sa_pid" 2>/dev/null || true
	if [ -n "${KEEP_TMP:-}" ]; then
		scripts/pg.sh stop "$tmp/pg" >/dev/null 2>&1 || true
	else
		scripts/pg.sh destroy "$tmp/pg" >/dev/null 2>&1 || true
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

dsn=$(scripts/pg.sh start "$tmp/pg")
cat >"$tmp/sa.json" <<EOF
{"log_level": "warn", "debug": {"addr": "127.0.0.1", "port": 21190},
 "rpc": {"listen": "unix:$tmp/sa.sock", "workers": 16, "callers": {"wfe": ["self"], "ra": ["self"], "ca": ["self"], "admin": ["self"]}},
 "db": {"dsn": "$dsn", "pool": 16, "auto_migrate": true, "statement_timeout": "30s",
        "schema_dir": "$top/schema"}}
EOF
"$BINDIR/anvil-sa" --config "$tmp/sa.json" >"$tmp/sa.log" 2>&1 &
sa_pid=$!
for _ in $(seq 100); do [ -S "$tmp/sa.sock" ] && break; sleep 0.1; done
[ -S "$tmp/sa.sock" ] || { echo "bench-sa: anvil-sa did not start"; cat "$tmp/sa.log"; exit 1; }

echo "== anvil-sa benchmark ($(nproc) CPUs, PostgreSQL $(psql "$dsn" -Atqc 'show server_version'), synchronous_commit=$(psql "$dsn" -Atqc 'show synchronous_commit'))"

throughput() { # label
	SOCK="$tmp/sa.sock" SECS="$secs" LABEL="$1" DSN="$dsn" $PY - <<'PY'
import multiprocessing as mp, os, sys, time, datetime as dt, base64, subprocess
sys.path.insert(0, "test/integration/lib")
from anvilrpc import RpcClient
SOCK, SECS, LABEL = os.environ["SOCK"], float(os.environ["SECS"]), os.environ["LABEL"]
DSN = os.environ["DSN"]
RUN = os.urandom(2).hex()
PER_WORKER = 20000

def ts(d):
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=d)).strftime("%Y-%m-%dT%H:%M:%SZ")

def b64(n):
    return base64.urlsafe_b64encode(os.urandom(n)).decode().rstrip("=")

def worker(kind, wid, q, barrier):
    c = RpcClient("unix:" + SOCK)
    acct = c.call("sa.new_account", {"key": {"kty": "EC"}, "thumbprint": b64(24)})["id"]
    if kind == "add_certificate":
        # serials reserved in bulk with SQL: the timed loop is add_certificate only
        subprocess.run(["psql", DSN, "-qc", "INSERT INTO serials (serial, account_id, expires) "
            "SELECT '%s' || lpad(to_hex(i), 28, '0'), %d, now() + interval '1 day' "
            "FROM generate_series(0, %d) i" % (RUN + "%04x" % wid, acct, PER_WORKER)], check=True)
    barrier.wait()
    n, end, i = 0, time.time() + SECS, 0
    lat = []
    while time.time() < end:
        t0 = time.perf_counter()
        if kind == "new_order":
            names = ["a%d-%s.bench.example" % (i, b64(4).lower().replace("_", "x").replace("-", "x")), "b%d.bench.example" % i]
            c.call("sa.new_order", {"account_id": acct, "expires": ts(3600), "profile": "classic",
                "identifiers": [{"type": "dns", "value": v} for v in names],
                "new_authzs": [{"identifier": {"type": "dns", "value": v}, "expires": ts(3600),
                                "challenges": [{"type": "http-01", "token": b64(32)},
                                               {"type": "dns-01", "token": b64(32)}]} for v in names]})
        else:
            if i > PER_WORKER:
                break
            s = RUN + "%04x" % wid + "%028x" % i
            c.call("sa.add_certificate", {"serial": s, "der": b64(1200), "account_id": acct,
                "issuer_id": "00112233aabbccdd", "profile": "classic",
                "identifiers": [{"type": "dns", "value": "c%d.bench.example" % i}],
                "not_before": ts(-60), "not_after": ts(86400 * 90), "key_hash": os.urandom(32).hex(),
                "shard": i % 16})
        lat.append(time.perf_counter() - t0)
        n += 1
        i += 1
    q.put((n, lat))

for kind in ("new_order", "add_certificate"):
    for clients in (1, 16):
        q = mp.Queue()
        barrier = mp.Barrier(clients)
        ps = [mp.Process(target=worker, args=(kind, clients * 100 + w, q, barrier)) for w in range(clients)]
        for p in ps:
            p.start()
        res = [q.get() for _ in ps]
        for p in ps:
            p.join()
        total = sum(r[0] for r in res)
        lat = sorted(x for r in res for x in r[1])
        p50 = lat[len(lat) // 2] * 1000 if lat else 0
        p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else 0
        print("%-10s %-16s clients=%-3d %8.0f calls/s   p50 %6.2f ms   p99 %6.2f ms" %
              (LABEL, kind, clients, total / SECS, p50, p99))
PY
}

throughput "empty-db"

echo "== loading $rows certificates + orders"
load_out=$(scripts/sa-loaddata.sh "$dsn" "$rows")
echo "$load_out" | grep -v '^LOAD_TAG'
tag=$(echo "$load_out" | sed -n 's/^LOAD_TAG=//p')

echo "== table sizes (rows, total incl. indexes and TOAST)"
psql "$dsn" -Atq -F ' ' -c "
select rpad(c.relname, 22), lpad(c.reltuples::bigint::text, 10), lpad(pg_size_pretty(pg_total_relation_size(c.oid)), 10)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind = 'r' order by pg_total_relation_size(c.oid) desc"
echo "database: $(psql "$dsn" -Atqc "select pg_size_pretty(pg_database_size(current_database()))")"

echo "== query latency over RPC with $rows rows (1 client, 300 calls each)"
SOCK="$tmp/sa.sock" TAG="$tag" ROWS="$rows" $PY - <<'PY'
import hashlib, os, random, sys, time
sys.path.insert(0, "test/integration/lib")
from anvilrpc import RpcClient, RpcError
c = RpcClient("unix:" + os.environ["SOCK"])
tag, rows = os.environ["TAG"], int(os.environ["ROWS"])
def serial(g): return hashlib.md5((tag + str(g)).encode()).hexdigest() + "0000"
def keyhash(g): return hashlib.md5((str(g) + tag).encode()).hexdigest() + hashlib.md5((tag + str(g)).encode()).hexdigest()
acct0 = c.call("sa.get_account_by_thumbprint", {"thumbprint": "load-%s-1" % tag})["id"]
order0 = c.call("sa.get_certificate", {"serial": serial(1)})["order_id"] - 1
cases = [
    ("get_certificate", lambda g: ("sa.get_certificate", {"serial": serial(g)})),
    ("get_order", lambda g: ("sa.get_order", {"id": order0 + g})),
    ("get_authz(via order)", lambda g: ("sa.get_authzs", {"ids": c.call("sa.get_order", {"id": order0 + g})["authz_ids"]})),
    ("get_orders_by_account", lambda g: ("sa.get_orders_by_account", {"account_id": acct0 + g % 1000, "limit": 100})),
    ("serials_by_account", lambda g: ("sa.serials_by_account", {"account_id": acct0 + g % 1000})),
    ("serials_by_key", lambda g: ("sa.serials_by_key", {"key_hash": keyhash(g)})),
    ("key_blocked", lambda g: ("sa.key_blocked", {"key_hash": keyhash(g)})),
    ("get_valid_authzs", lambda g: ("sa.get_valid_authzs", {"account_id": acct0 + g % 1000, "valid_until_after": "2026-01-01T00:00:00Z",
        "identifiers": [{"type": "dns", "value": "h%d.%s.load.example" % (g, tag)}]})),
    ("count_certs_by_domain", lambda g: ("sa.count_certs_by_domain", {"domain": "h%d.%s.load.example" % (g, tag), "window_ms": 7 * 86400000})),
    ("fqdn_set_issued", lambda g: ("sa.fqdn_set_issued", {"identifiers": [{"type": "dns", "value": "h%d.%s.load.example" % (g, tag)}], "window_ms": 90 * 86400000})),
    ("get_certificates(expiring)", lambda g: ("sa.get_certificates", {"expiring_before": "2099-01-01T00:00:00Z", "limit": 100})),
    ("revoked_by_shard", lambda g: ("sa.revoked_by_shard", {"issuer_id": "00112233aabbccdd", "shard": g % 16})),
]
for name, mk in cases:
    n = 30 if name == "revoked_by_shard" else 300
    lat = []
    for _ in range(n):
        g = random.randint(1, rows)
        m, p = mk(g)
        t0 = time.perf_counter()
        r = c.call(m, p)
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    extra = ""
    if name == "revoked_by_shard":
        extra = "  (%d entries per shard)" % len(r["entries"])
    if name == "count_certs_by_domain":
        extra = "  (count=%d)" % r["count"]
    print("%-28s p50 %7.2f ms   p99 %7.2f ms%s" % (name, lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1], extra))
PY

throughput "${rows}-rows"

echo "== EXPLAIN of hot queries with $rows rows"
psql "$dsn" -Atq <<SQL | grep -E '^(--|[A-Z ].*(Scan|Join|Loop|Result|Aggregate|Limit|Sort|Update|Insert))' | sed 's/  (cost=.*//'
\echo -- sa.get_certificate
EXPLAIN SELECT * FROM certificates c JOIN certificate_status s ON s.serial = c.serial WHERE c.serial = '$(printf %s "${tag}1" | md5sum | cut -c1-32)0000';
\echo -- sa.get_order authzs
EXPLAIN SELECT a.id, a.status FROM order_authzs oa JOIN authzs a ON a.id = oa.authz_id WHERE oa.order_id = 5 ORDER BY oa.pos;
\echo -- sa.get_orders_by_account
EXPLAIN SELECT id FROM orders WHERE account_id = 7 AND id > 0 AND expires > now() ORDER BY id LIMIT 101;
\echo -- sa.get_valid_authzs
EXPLAIN SELECT id FROM authzs WHERE account_id = 7 AND ident_type = 'dns' AND ident_value = 'h7.x' AND status = 'valid' AND expires > now() AND wildcard = false ORDER BY expires DESC, id DESC LIMIT 1;
\echo -- sa.serials_by_account
EXPLAIN SELECT serial FROM certificates WHERE account_id = 7 AND not_after > now() ORDER BY not_after, serial;
\echo -- sa.serials_by_key
EXPLAIN SELECT serial FROM key_hash_to_serial WHERE key_hash = 'ab' AND not_after > now();
\echo -- sa.count_certs_by_domain
EXPLAIN SELECT count(DISTINCT serial) FROM issued_names WHERE (reversed_name = 'example.load.x.h5' OR (reversed_name >= 'example.load.x.h5.' AND reversed_name < 'example.load.x.h5/')) AND issued > now() - interval '7 days';
\echo -- sa.fqdn_set_issued
EXPLAIN SELECT issued FROM fqdn_sets WHERE set_hash = 'ab' AND issued > now() - interval '7 days';
\echo -- sa.revoked_by_shard
EXPLAIN SELECT serial FROM certificate_status WHERE issuer_id = '00112233aabbccdd' AND shard = 3 AND status = 'revoked' AND not_after > now() ORDER BY serial;
\echo -- sa.get_stale_processing_orders
EXPLAIN SELECT id FROM orders WHERE status = 'processing' AND began_processing < now() ORDER BY id LIMIT 1000;
SQL
