#!/usr/bin/env bash
# VA benchmark (prints numbers, asserts nothing): http-01 validations per
# second with 1, 64 and 512 in flight, and the memory at 512 in flight.
#
#  1. engine: the VA's C API (va_validate_async) in-process against a C
#     responder on loopback (test_va_net --bench); peak RSS of that process.
#  2. service: anvil-va over RPC (pipelined calls on one Unix socket,
#     rpc.workers = 520) against pebble-challtestsrv's http-01 server; RSS of
#     the anvil-va process while 512 calls are in flight.
#
#   BUILD=build BINDIR=bin BENCH_SECONDS=3 scripts/bench-va.sh
# Ports: 21320-21322 (engine), 21330-21339 (service).
set -uo pipefail
. "$(dirname "$0")/lib-bench.sh"
secs=${BENCH_SECONDS:-3}
make --no-print-directory -s BUILD="$BUILD" BINDIR="$BINDIR" \
	"$BUILD/test/test_va_net" "$BINDIR/anvil-va" >/dev/null || exit 1
PY=python3
$PY -c 'import sys' 2>/dev/null || PY=/usr/bin/python3

echo "== engine (C API, in-process responder, $(nproc) CPUs; other load on the host skews numbers)"
for n in 1 64 512; do
	"$BUILD/test/test_va_net" --bench "$n" 2>/dev/null | grep in_flight
done

. scripts/lib-procs.sh
procs_init /tmp/anvil-bench-va.XXXXXX
pebble-challtestsrv -dns01 127.0.0.1:21333 -management 127.0.0.1:21335 \
	-http01 127.0.0.1:21332 -https01 "" -tlsalpn01 "" -defaultIPv6 "" \
	>"$tmp/cts.log" 2>&1 &
pids+=($!)
cat >"$tmp/va.json" <<EOF
{"log_level": "warn", "debug": {"addr": "127.0.0.1", "port": 21331},
 "rpc": {"listen": "unix:$tmp/va.sock", "workers": 520, "callers": {"wfe": ["self"], "ra": ["self"], "ca": ["self"], "admin": ["self"]}},
 "dns": {"resolvers": ["127.0.0.1:21333"], "timeout": "2s", "tries": 2},
 "http01_port": 21332, "validation_timeout": "30s",
 "network": {"mode": "private", "allow": ["127.0.0.0/8"]}}
EOF
"$BINDIR/anvil-va" --config "$tmp/va.json" 2>"$tmp/va.log" &
vapid=$!
pids+=($vapid)
for _ in $(seq 1 100); do
	[ -S "$tmp/va.sock" ] && curl -s -o /dev/null 127.0.0.1:21335 && break
	sleep 0.05
done
curl -s -d '{"token":"benchtok","content":"benchtok.thumb"}' \
	127.0.0.1:21335/add-http01 >/dev/null
echo "== service (anvil-va over RPC, challtestsrv http-01 responder, DNS names via challtestsrv)"
$PY - "$tmp/va.sock" "$vapid" "$secs" <<'EOF'
import json, socket, struct, sys, threading, time
sock_path, pid, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1

def run(inflight):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    lock = threading.Lock()
    state = {"next": 1, "done": 0, "valid": 0, "stop": time.time() + secs}
    errs = {}
    def send(i):
        req = {"id": i, "method": "va.validate",
               "deadline_ms": int(time.time() * 1000) + 60000,
               "params": {"identifier": {"type": "dns", "value": "b%d.bench.test" % (i % 1000)},
                          "challenge": {"type": "http-01", "token": "benchtok"},
                          "key_authorization": "benchtok.thumb"}}
        b = json.dumps(req).encode()
        with lock:
            s.sendall(struct.pack(">I", len(b)) + b)
    peak = [0]
    def sampler():
        while time.time() < state["stop"] + 1:
            peak[0] = max(peak[0], rss_kb())
            time.sleep(0.1)
    threading.Thread(target=sampler, daemon=True).start()
    t0 = time.time()
    for _ in range(inflight):
        send(state["next"]); state["next"] += 1
    outstanding = inflight
    buf = b""
    while outstanding:
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise SystemExit("connection closed")
            buf += chunk
        n = struct.unpack(">I", buf[:4])[0]
        resp = json.loads(buf[4:4 + n]); buf = buf[4 + n:]
        outstanding -= 1
        state["done"] += 1
        res = resp.get("result") or {}
        if res.get("status") == "valid":
            state["valid"] += 1
        else:
            e = res.get("error") or resp.get("error") or {}
            k = "%s: %s" % (e.get("type"), (e.get("detail") or "")[-60:])
            errs[k] = errs.get(k, 0) + 1
        if time.time() < state["stop"]:
            send(state["next"]); state["next"] += 1; outstanding += 1
    el = time.time() - t0
    s.close()
    print("bench-va: service in_flight=%d validations=%d valid=%d rate=%.0f/s anvil-va_peak_rss=%d KiB"
          % (inflight, state["done"], state["valid"], state["done"] / el, peak[0]))
    for k, v in sorted(errs.items(), key=lambda kv: -kv[1])[:3]:
        print("bench-va:   %d x %s" % (v, k))
    sys.stdout.flush()

print("bench-va: anvil-va RSS idle: %d KiB" % rss_kb())
for n in (1, 64, 512):
    run(n)
EOF
