#!/usr/bin/env bash
# RPC over Unix sockets between real processes (anvil-rpc serve-test and
# anvil-rpc call/stress, plus raw frames from Python): calls, errors, bad
# input, out-of-order replies, deadlines, 64 threads x 10,000 calls, server
# restart mid-stream, SIGTERM drain, peer-uid authorization and socket mode.
set -uo pipefail
. "$(dirname "$0")/lib/rpc_test.sh" anvil-rpc-unix # ok/bad/check/finish, $RPC, $tmp
STRESS_CALLS=${RPC_STRESS_CALLS:-10000}
chmod 0755 "$tmp"

sock=$tmp/s.sock
start_server() { # extra args...
	"$RPC" serve-test --listen "unix:$sock" --workers 4 --max-frame 65536 "$@" >>"$tmp/server.log" 2>&1 &
	srv=$!
	pids+=("$srv")
	for _ in $(seq 1 100); do
		"$RPC" call "unix:$sock" health.check >/dev/null 2>&1 && return 0
		kill -0 "$srv" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

check "server starts and creates the socket" start_server
check "socket file mode defaults to 0660" test "$(stat -c %a "$sock")" = 660

out=$("$RPC" call "unix:$sock" test.echo '{"hello":"world","n":[1,2]}' 2>&1)
check "echo call between two processes" grep -q '"hello": "world"' <<<"$out"
check "health.check answers" bash -c '"$0" call "unix:$1" health.check | grep -q "\"ok\""' "$RPC" "$sock"
out=$("$RPC" call "unix:$sock" test.fail '{"type":"orderNotReady","detail":"nope"}' 2>&1); rc=$?
check "handler problem crosses with its type and status (exit 1)" \
	bash -c '[ '"$rc"' -eq 1 ] && grep -q "\"type\":\"orderNotReady\"" <<<"$0" && grep -q "\"status\":403" <<<"$0"' "$out"
out=$("$RPC" call "unix:$sock" no.such 2>&1)
check "unknown method -> malformed \"unknown method\"" grep -q 'unknown method' <<<"$out"
out=$("$RPC" call "unix:$sock" test.sleep '{"ms":2000}' --timeout 200ms 2>&1)
echo "    $out"
# (on a loaded machine the server may refuse it first: "deadline exceeded")
check "client timeout -> unavailable \"timed out\"" bash -c 'grep -q "\"type\":\"unavailable\"" <<<"$0" && grep -qE "timed out after 200 ms|deadline exceeded" <<<"$0"' "$out"

# Raw protocol checks from Python (docs/rpc.md's "by hand" client).
cat >"$tmp/raw.py" <<'PY'
import json, socket, struct, sys, time
sys.path.insert(0, "test/integration/lib")
from anvilrpc import RpcClient, RpcError
sock = sys.argv[1]
def res(name, cond):
    print(("PASS " if cond else "FAIL ") + name, flush=True)
def fresh():
    c = RpcClient("unix:" + sock, timeout=5); c.connect(); return c
def closed(c):
    try:
        c.sock.settimeout(3)
        return c.sock.recv(1) == b""
    except (ConnectionError, OSError):
        return True
def calls():
    return fresh().call("test.calls")["calls"]

c = fresh()
res("raw echo", c.call("test.echo", {"a": 1}) == {"a": 1})
# several in flight on one connection, answered by id in any order
c.send_raw(json.dumps({"id": 101, "method": "test.sleep", "params": {"ms": 400}}).encode())
c.send_raw(json.dumps({"id": 102, "method": "test.echo", "params": {"x": 2}}).encode())
first, second = c.recv_frame(), c.recv_frame()
res("out-of-order replies matched by id", first["id"] == 102 and second["id"] == 101
    and first["result"] == {"x": 2} and second["result"]["slept_ms"] == 400)
# rpc.direct (docs/rpc.md, "Direct connections"): the idle connection moves
# to a server thread of its own, which then answers calls one at a time
d = fresh()
res("rpc.direct on an idle connection -> direct", d.call("rpc.direct") == {"direct": True})
res("direct connection answers calls", d.call("test.echo", {"d": 1}) == {"d": 1})
try:
    d.call("rpc.direct")
    res("rpc.direct twice -> malformed", False)
except RpcError as e:
    res("rpc.direct twice -> malformed", e.type == "malformed")
d.send_raw(json.dumps({"id": 9, "method": "test.echo", "params": {"k": [1]}}).encode())
r = d.recv_frame()
res("direct connection keeps ids", r["id"] == 9 and r["result"] == {"k": [1]})
d.send_raw(b"[1]")
res("bad frame on a direct connection -> closed", closed(d))
# with a call in flight the connection stays multiplexed
d = fresh()
d.send_raw(json.dumps({"id": 1, "method": "test.sleep", "params": {"ms": 200}}).encode())
d.send_raw(json.dumps({"id": 2, "method": "rpc.direct"}).encode())
got = {}
for _ in range(2):
    r = d.recv_frame(); got[r["id"]] = r
res("rpc.direct with a call in flight -> stays multiplexed",
    got[2].get("result") == {"direct": False} and "result" in got[1])
# string ids are echoed
c.send_raw(json.dumps({"id": "abc", "method": "test.echo"}).encode())
r = c.recv_frame()
res("string id echoed, absent params = {}", r["id"] == "abc" and r["result"] == {})
# malformed requests with a usable id -> malformed error, connection stays
for name, req in [("missing method", {"id": 5}),
                  ("method not a string", {"id": 6, "method": 3}),
                  ("params not an object", {"id": 7, "method": "test.echo", "params": [1]}),
                  ("deadline not an integer", {"id": 8, "method": "test.echo", "deadline_ms": "soon"})]:
    c.send_raw(json.dumps(req).encode())
    r = c.recv_frame()
    res(name + " -> malformed with id", r["id"] == req["id"] and r["error"]["type"] == "malformed")
res("connection still usable after malformed requests", c.call("test.echo", {"k": 1}) == {"k": 1})
try:
    c.call("test.sleep", {"ms": "long"})
    res("param of the wrong type -> handler's malformed", False)
except RpcError as e:
    res("param of the wrong type -> handler's malformed", e.type == "malformed" and "ms" in e.problem["detail"])
# 5000 pipelined requests on one connection (over the 1024 in-flight cap)
c = fresh()
buf = b"".join(struct.pack(">I", len(b)) + b for b in
               (json.dumps({"id": i, "method": "test.echo", "params": {"i": i}}).encode() for i in range(5000)))
c.sock.sendall(buf)
seen = set()
good = True
for _ in range(5000):
    r = c.recv_frame()
    good = good and r.get("result") == {"i": r["id"]}
    seen.add(r["id"])
res("5000 pipelined requests on one connection all answered", good and seen == set(range(5000)))
# 3000 x 20 KB replies: the server stops reading while its unsent output is
# over its limit, and everything is answered once the client reads
import threading
c = fresh()
blob = "z" * 20000
sent = [0]
def sender():
    for i in range(3000):
        c.send_raw(json.dumps({"id": i, "method": "test.echo", "params": {"b": blob, "i": i}}).encode())
        sent[0] += 1
th = threading.Thread(target=sender); th.start()
time.sleep(1.5)
accepted = sent[0]
rss = int([l for l in open("/proc/%s/status" % sys.argv[2]) if l.startswith("VmRSS")][0].split()[1])
seen = set(); good = True
for _ in range(3000):
    r = c.recv_frame()
    good = good and r.get("result", {}).get("i") == r["id"]
    seen.add(r["id"])
th.join()
res("60 MB of replies to a slow reader all delivered", good and seen == set(range(3000)))
# ~8 MiB of unsent replies is ~400 of them; socket buffers add a few dozen
res("server stopped reading while its replies were unread (%d of 3000 sent, RSS %d kB)" % (accepted, rss),
    accepted < 1000)
# past deadline: refused without running
before = calls()
try:
    c.call("test.echo", {}, deadline_ms=int(time.time() * 1000) - 1000)
    res("past deadline refused", False)
except RpcError as e:
    res("past deadline -> unavailable deadline exceeded", e.type == "unavailable" and "deadline" in e.problem["detail"])
res("expired call never ran", calls() == before)
# deadline passing while queued behind busy workers (4 workers, 4 sleepers)
before = calls()
c = fresh()
for i in range(4):
    c.send_raw(json.dumps({"id": 200 + i, "method": "test.sleep", "params": {"ms": 600}}).encode())
time.sleep(0.1)
c.send_raw(json.dumps({"id": 300, "method": "test.echo", "params": {},
                       "deadline_ms": int(time.time() * 1000) + 150}).encode())
got = {}
for _ in range(5):
    r = c.recv_frame(); got[r["id"]] = r
res("deadline passed in the queue -> refused by the worker",
    got[300].get("error", {}).get("type") == "unavailable" and "deadline" in got[300]["error"]["detail"]
    and all("result" in got[200 + i] for i in range(4)))
res("queued expired call never ran", calls() == before + 4)
# bad frames with no usable id close the connection, server survives
for name, payload in [("invalid JSON", b"{not json"), ("not an object", b"[1,2,3]"),
                      ("missing id", json.dumps({"method": "test.echo"}).encode()),
                      ("id of wrong type", json.dumps({"id": [1], "method": "test.echo"}).encode()),
                      ("duplicate keys", b'{"id":1,"id":2,"method":"test.echo"}')]:
    c = fresh(); c.send_raw(payload)
    res(name + " -> connection closed", closed(c))
c = fresh(); c.sock.sendall(struct.pack(">I", 70000) + b"x" * 10)
res("frame over max_frame -> closed before reading it", closed(c))
c = fresh(); c.sock.sendall(struct.pack(">I", 0))
res("zero-length frame -> closed", closed(c))
c = fresh(); c.sock.sendall(struct.pack(">I", 100) + b'{"id":1,'); c.close()
c = fresh(); c.sock.sendall(b"\x00\x00"); c.close()
res("server alive after truncated frames", calls() >= before)
# a frame of exactly max_frame is accepted
c = fresh()
pad = "x" * (65536 - len(json.dumps({"id": 1, "method": "test.echo", "params": {"p": ""}}, separators=(",", ":"))))
body = json.dumps({"id": 1, "method": "test.echo", "params": {"p": pad}}, separators=(",", ":")).encode()
c.send_raw(body)
r = c.recv_frame()
res("frame of exactly max_frame accepted (len %d)" % len(body), len(body) == 65536 and "error" not in r or
    (r.get("error", {}).get("type") == "serverInternal"))
PY
while read -r word name; do
	case "$word" in PASS) ok "$name" ;; FAIL) bad "$name" ;; esac
done < <(timeout 120 python3 "$tmp/raw.py" "$sock" "$srv" 2>"$tmp/raw.err"; echo "END $?")
grep -q . "$tmp/raw.err" && { echo "python stderr:"; cat "$tmp/raw.err"; }
check "python raw client finished without exceptions" bash -c '! grep -q Traceback "$0"' "$tmp/raw.err"
check "bad frames were logged" grep -q 'bad frame\|bad request' "$tmp/server.log"
check "server process survived bad input" kill -0 "$srv"

# 64 client threads x 10,000 calls: no loss, no mismatched ids/results.
out=$(timeout 300 "$RPC" stress "unix:$sock" --threads 64 --calls "$STRESS_CALLS" --connections 4 2>&1); rc=$?
echo "    $out"
want=$((64 * STRESS_CALLS))
check "64 threads x $STRESS_CALLS calls, none lost or mismatched" \
	bash -c '[ '"$rc"' -eq 0 ] && grep -q "calls_ok='"$want"' errors=0 .*mismatched=0" <<<"$0"' "$out"

# Server restarted mid-stream: the same client process recovers.
stress_across_restart "$tmp/restart.out" "unix:$sock" --threads 4 --seconds 5 --tolerate-unavailable
rc=$?
out=$(cat "$tmp/restart.out")
check "restart mid-stream: client saw the outage" grep -qE 'unavailable=[1-9]' <<<"$out"
check "restart mid-stream: client recovered without restart" \
	bash -c '[ '"$rc"' -eq 0 ] && grep -qE "mismatched=0 ok_after_last_error=[1-9][0-9]{2,}" <<<"$0"' "$out"

# SIGTERM: in-flight calls finish, then the server exits and removes the socket.
"$RPC" call "unix:$sock" test.sleep '{"ms":1000}' >"$tmp/drain.out" 2>&1 &
cp=$!
sleep 0.3
kill -TERM "$srv"
wait "$cp"; crc=$?
wait "$srv"; src=$?
check "SIGTERM: in-flight call completed" bash -c '[ '"$crc"' -eq 0 ] && grep -q slept_ms "$0"' "$tmp/drain.out"
check "SIGTERM: server exited 0" test "$src" -eq 0
check "SIGTERM: socket file removed" test ! -e "$sock"
check "drain was logged" grep -q 'SIGTERM: draining' "$tmp/server.log"

# A stale socket file is replaced at start.
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$sock"
check "stale socket file replaced" start_server
check "second server on a live socket refused" bash -c '! "$0" serve-test --listen "unix:$1" >/dev/null 2>&1' "$RPC" "$sock"
kill -TERM "$srv"; wait "$srv" 2>/dev/null

# Out of file descriptors: accepting pauses and resumes, nothing spins.
esock=$tmp/e.sock
(ulimit -n 24; exec "$RPC" serve-test --listen "unix:$esock" --workers 2) >"$tmp/emfile.log" 2>&1 &
ep=$!
pids+=("$ep")
for _ in $(seq 1 100); do "$RPC" call "unix:$esock" health.check >/dev/null 2>&1 && break; sleep 0.05; done
python3 -c '
import socket, sys, time
socks = []
for i in range(40):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); socks.append(s)
time.sleep(0.5)
for s in socks: s.close()
time.sleep(0.3)' "$esock"
check "EMFILE logged and accepting paused" grep -q 'Too many open files; pausing' "$tmp/emfile.log"
check "server answers again after EMFILE" bash -c '"$0" call "unix:$1" test.echo "{}" >/dev/null' "$RPC" "$esock"
kill -TERM "$ep"; wait "$ep" 2>/dev/null

# Authorization by peer uid (SO_PEERCRED) and socket file mode.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1 && command -v runuser >/dev/null; then
	start_server --socket-mode 0666 --allow '{"*":["root"],"test.whoami":["nobody","uid:0"]}'
	out=$(runuser -u nobody -- "$RPC" call "unix:$sock" test.echo '{}' 2>&1)
	check "uid not allowed -> unauthorized" grep -q '"type":"unauthorized"' <<<"$out"
	check "denied call logged" grep -q 'denied test.echo to uid:' "$tmp/server.log"
	out=$(runuser -u nobody -- "$RPC" call "unix:$sock" test.whoami 2>&1)
	check "user name in allowlist accepted (peer uid:$(id -u nobody))" grep -q "\"peer\": \"uid:$(id -u nobody)\"" <<<"$out"
	check "allowed uid (root by name) accepted" bash -c '"$0" call "unix:$1" test.echo "{}" >/dev/null' "$RPC" "$sock"
	kill -TERM "$srv"; wait "$srv" 2>/dev/null
	start_server
	out=$(runuser -u nobody -- "$RPC" call "unix:$sock" test.echo '{}' 2>&1)
	check "socket mode 0660 keeps other users out" grep -q 'Permission denied' <<<"$out"
	kill -TERM "$srv"; wait "$srv" 2>/dev/null
else
	echo "skip   - uid authorization (needs root and user nobody)"
fi

finish
