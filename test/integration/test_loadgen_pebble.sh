#!/usr/bin/env bash
# The load generator's own test: short runs of anvil-loadgen against a real
# Pebble + pebble-challtestsrv (ports 22300-22399) must complete every
# issuance with zero failures; bad input must end with a clear error and
# exit status 2, quickly, never a hang.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
BINDIR=${BINDIR:-bin}
LG=$BINDIR/anvil-loadgen
BASE=22300
PASS=0
FAIL=0

ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; }
check() { # name, then a command that must succeed
	local name=$1; shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
# jq-like: evaluates a Python expression over the JSON report in $1 (file).
jtrue() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }

mkdir -p "$BUILD/tmp"
tmp=$(mktemp -d "$BUILD/tmp/loadgen-XXXXXX")
cleanup() {
	scripts/bench-pebble.sh stop "$tmp/pebble" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$LG" ]; then
	bad "loadgen binary $LG exists"
	echo "$PASS passed, $FAIL failed"
	exit 1
fi
if ! env_out=$(scripts/bench-pebble.sh start "$tmp/pebble" $BASE); then
	bad "pebble starts"
	echo "$PASS passed, $FAIL failed"
	exit 1
fi
eval "$env_out"
common=(--directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST"
	--http-port "$PEBBLE_HTTP01_PORT" --timeout 10s --issuance-timeout 30s)

# 1. A counted run: every issuance completes, every request kind is timed.
timeout 120 "$LG" "${common[@]}" --clients 3 --count 30 --json >"$tmp/r1.json" 2>"$tmp/r1.err"
rc=$?
check "count run exits 0" test "$rc" -eq 0
check "count run issued exactly 30" jtrue "$tmp/r1.json" "d['issued'] == 30"
check "count run has zero failures" jtrue "$tmp/r1.json" "d['failed'] == 0 and d['failures'] == {}"
check "every account was created" jtrue "$tmp/r1.json" "d['accounts'] == 3"
check "http-01 answered by our responder" jtrue "$tmp/r1.json" "d['http01_served'] >= 30"
check "latency for every request kind" jtrue "$tmp/r1.json" \
	"all(k in d['latency'] for k in ['newNonce','newAccount','newOrder','authz','challenge','pollAuthz','finalize','pollOrder','certificate','issuance'])"
check "percentiles ordered p50<=p90<=p99<=max" jtrue "$tmp/r1.json" \
	"all(v['p50_ms'] <= v['p90_ms'] <= v['p99_ms'] <= v['max_ms'] for v in d['latency'].values())"
check "issuance count matches latency samples" jtrue "$tmp/r1.json" "d['latency']['issuance']['count'] == 30 and d['issuances_per_s'] > 0"
check "connections are kept alive" jtrue "$tmp/r1.json" "d['connections'] <= 6"
[ "$rc" -eq 0 ] || tail -n 20 "$tmp/r1.err"

# 2. Several names per order (one authz each), text report.
timeout 120 "$LG" "${common[@]}" --clients 2 --count 4 --names 3 >"$tmp/r2.txt" 2>"$tmp/r2.err"
rc=$?
check "3-name orders exit 0" test "$rc" -eq 0
check "3-name orders: text report says 4 issued" grep -qE '^issued +4 in ' "$tmp/r2.txt"
check "3-name orders: text report says 0 failed" grep -qE '^failed +0$' "$tmp/r2.txt"
check "3-name orders: 12 authorizations fetched" grep -qE '^authz +12 ' "$tmp/r2.txt"

# 3. A timed run stops by itself near its duration.
start=$SECONDS
timeout 60 "$LG" "${common[@]}" --clients 2 --duration 2s --json >"$tmp/r3.json" 2>"$tmp/r3.err"
rc=$?
check "duration run exits 0" test "$rc" -eq 0
check "duration run lasted about 2 s" jtrue "$tmp/r3.json" "2.0 <= d['elapsed_s'] < 15 and d['issued'] > 0"
check "duration run ended within 20 s of wall time" test $((SECONDS - start)) -lt 20

# 4. Failures keep what ended them: with nobody serving http-01 every
# validation fails; the report names the reason, the authz URL and the
# server's answer, and stderr shows it too.
timeout 120 "$LG" "${common[@]}" --no-responder --clients 1 --count 2 --json >"$tmp/r4.json" 2>"$tmp/r4.err"
rc=$?
check "failed run exits 1" test "$rc" -eq 1
check "failed run: every issuance failed, with an example per reason" jtrue "$tmp/r4.json" \
	"d['issued'] == 0 and sum(d['failures'].values()) == 2 and set(d['failure_examples']) == set(d['failures'])"
check "failed run: the example is the authz poll with its status and answer" jtrue "$tmp/r4.json" \
	"all(e.startswith('pollAuthz https://') and ' -> 200 {' in e and '\"invalid\"' in e for v in d['failure_examples'].values() for e in v)"
check "failed run: stderr shows the failure" grep -q "worker 0: .*pollAuthz https://" "$tmp/r4.err"

# 5. Bad input: clear errors, exit 2, no hang.
timeout 30 "$LG" --directory https://localhost:$((BASE + 99))/dir --trust "$PEBBLE_TRUST" --count 1 >/dev/null 2>"$tmp/e1"
rc=$?
check "unreachable directory exits 2" test "$rc" -eq 2
check "unreachable directory names the problem" grep -q "connect" "$tmp/e1"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/other-key.pem" \
	-out "$tmp/other.pem" -days 1 -subj "/CN=other root" 2>/dev/null
timeout 30 "$LG" --directory "$PEBBLE_DIRECTORY" --trust "$tmp/other.pem" --count 1 >/dev/null 2>"$tmp/e2"
rc=$?
check "untrusted server certificate exits 2" test "$rc" -eq 2
check "untrusted server certificate is reported" grep -qi "certificate" "$tmp/e2"

timeout 30 "$LG" --directory "$PEBBLE_DIRECTORY" --trust "$tmp/missing.pem" --count 1 >/dev/null 2>"$tmp/e3"
check "missing trust file exits 2" test $? -eq 2
timeout 30 "$LG" --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST" --clients 0 >/dev/null 2>"$tmp/e4"
check "--clients 0 is refused" test $? -eq 2
timeout 30 "$LG" --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST" --count 3 --duration 1s >/dev/null 2>"$tmp/e5"
check "--count with --duration is refused" test $? -eq 2
timeout 30 "$LG" --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST" --suffix 'bad..name' --count 1 >/dev/null 2>"$tmp/e6"
check "a bad --suffix is refused" test $? -eq 2
timeout 30 "$LG" --directory "https://localhost:$((BASE + 40))/nonexistent" --trust "$PEBBLE_TRUST" \
	--count 1 >/dev/null 2>"$tmp/e7"
rc=$?
check "a URL that is not a directory exits 2" test "$rc" -eq 2
# The responder port is taken by a running loadgen -> the second one refuses.
python3 -c "
import socket,time,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(1)
open(sys.argv[2], 'w').close(); time.sleep(20)" "$PEBBLE_HTTP01_PORT" "$tmp/held" &
holder=$!
for _ in $(seq 100); do [ -f "$tmp/held" ] && break; sleep 0.1; done
timeout 30 "$LG" "${common[@]}" --count 1 >/dev/null 2>"$tmp/e8"
rc=$?
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
check "busy responder port exits 2" test "$rc" -eq 2
check "busy responder port is named" grep -q "cannot listen" "$tmp/e8"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
