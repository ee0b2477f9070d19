#!/usr/bin/env bash
# RPC benchmark (prints numbers, asserts nothing): round trips per second of
# an empty call (test.echo {}) over a Unix socket and over mutual TLS, with
# 1 and 16 client threads, against `anvil-rpc serve-test`.
#   BINDIR=bin BENCH_SECONDS=5 RPC_BENCH_PORT=21020 scripts/bench-rpc.sh
set -uo pipefail
. "$(dirname "$0")/lib-bench.sh"
RPC=$BINDIR/anvil-rpc
secs=${BENCH_SECONDS:-5}
port=${RPC_BENCH_PORT:-21020}
workers=${RPC_BENCH_WORKERS:-8}
[ -x "$RPC" ] || { echo "bench-rpc.sh: $RPC not built (make)" >&2; exit 1; }
. scripts/lib-procs.sh
procs_init /tmp/anvil-bench-rpc.XXXXXX
scripts/mkipki.sh "$tmp/pki" sa ra >/dev/null
ANVIL_LOG_LEVEL=warn "$RPC" serve-test --listen "unix:$tmp/b.sock" --workers "$workers" &
pids+=($!)
ANVIL_LOG_LEVEL=warn "$RPC" serve-test --listen "tcp:127.0.0.1:$port" --workers "$workers" \
	--cert "$tmp/pki/sa.pem" --key "$tmp/pki/sa.key" --ca "$tmp/pki/rpc-ca.pem" &
pids+=($!)
tls=(--cert "$tmp/pki/ra.pem" --key "$tmp/pki/ra.key" --ca "$tmp/pki/rpc-ca.pem" --server-name sa)
for _ in $(seq 1 100); do
	"$RPC" call "unix:$tmp/b.sock" health.check >/dev/null 2>&1 &&
		"$RPC" call "tcp:127.0.0.1:$port" health.check "${tls[@]}" >/dev/null 2>&1 && break
	sleep 0.05
done
# Context switches of every thread the server process ever ran (its
# test.calls reports getrusage; direct-connection threads come and go).
cs() { # TARGET [tls flags]
	"$RPC" call "$@" test.calls 2>/dev/null | grep -oE '"ctxt_switches": [0-9]+' | grep -oE '[0-9]+$'
}
# one TARGET LABEL THREADS [tls flags...]
one() {
	local target=$1 label=$2 th=$3 out c0 c1 calls
	shift 3
	c0=$(cs "$target" "$@")
	out=$("$RPC" bench "$target" "$@" --threads "$th" --connections "$th" --seconds "$secs" 2>&1)
	c1=$(cs "$target" "$@")
	calls=$(grep -oE 'calls_ok=[0-9]+' <<<"$out" | cut -d= -f2)
	r=$(grep -oE 'rps=[0-9]+ mean_latency_us=[0-9.]+ client_cs_per_call=[0-9.]+' <<<"$out")
	awk -v l="$label" -v t="$th" -v r="$r" -v d=$((${c1:-0} - ${c0:-0})) -v n="${calls:-0}" \
		'BEGIN {printf "  %-5s threads=%-2s %s server_cs_per_call=%.2f\n", l, t, r, (n > 0 ? d / n : 0)}'
}
echo "rpc bench: empty call round trips, ${secs}s each, server workers=$workers, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  (cs = context switches per call, all threads of the process)"
for th in 1 16; do
	one "unix:$tmp/b.sock" unix "$th"
	one "tcp:127.0.0.1:$port" tls "$th" "${tls[@]}"
done
