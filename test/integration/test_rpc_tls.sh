#!/usr/bin/env bash
# RPC over TCP with mutual TLS between real processes: certificates from
# scripts/mkipki.sh, identity = client certificate name, per-method
# allowlist, a client certificate from another CA refused, server name
# checked by the client, TLS 1.2 and 1.3, no client certificate refused,
# many threads, and a server restart. Ports 21010-21019.
set -uo pipefail
. "$(dirname "$0")/lib/rpc_test.sh" anvil-rpc-tls # ok/bad/check/finish, $RPC, $tmp
PORT=${RPC_TLS_PORT:-21010}

pki=$tmp/pki
check "mkipki creates CA and service certs" scripts/mkipki.sh "$pki"
check "mkipki is idempotent" bash -c 'a=$(sha256sum "$0"/*.pem); scripts/mkipki.sh "$0" && [ "$a" = "$(sha256sum "$0"/*.pem)" ]' "$pki"
check "keys are 0600" bash -c 'for k in "$0"/*.key; do [ "$(stat -c %a "$k")" = 600 ] || exit 1; done' "$pki"
check "service certs verify against the RPC CA" bash -c 'for n in sa ca va ra wfe admin; do openssl verify -CAfile "$0/rpc-ca.pem" "$0/$n.pem" >/dev/null || exit 1; done' "$pki"
ANVIL_PKI_CA_NAME="Some other CA" scripts/mkipki.sh "$tmp/evil" ra >/dev/null

addr=tcp:127.0.0.1:$PORT
start_server() {
	"$RPC" serve-test --listen "$addr" --workers 4 \
		--cert "$pki/sa.pem" --key "$pki/sa.key" --ca "$pki/rpc-ca.pem" \
		--allow '{"*":["ra","admin"],"test.whoami":["wfe"]}' >>"$tmp/server.log" 2>&1 &
	srv=$!
	pids+=("$srv")
	for _ in $(seq 1 100); do
		"$RPC" call "$addr" health.check --cert "$pki/ra.pem" --key "$pki/ra.key" \
			--ca "$pki/rpc-ca.pem" --server-name sa >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}
as() { local n=$1; shift; "$RPC" "$1" "$addr" "${@:2}" --cert "$pki/$n.pem" --key "$pki/$n.key" --ca "$pki/rpc-ca.pem" --server-name sa; }

check "TLS server starts" start_server
out=$(as ra call test.echo '{"over":"tls"}' 2>&1)
check "ra -> sa echo over mutual TLS" grep -q '"over": "tls"' <<<"$out"
out=$(as ra call test.whoami 2>&1)
check "server sees the client certificate name" grep -q '"peer": "ra"' <<<"$out"
out=$(as wfe call test.whoami 2>&1)
check "wfe allowed for its one method" grep -q '"peer": "wfe"' <<<"$out"
out=$(as wfe call test.echo '{}' 2>&1)
check "wfe refused elsewhere -> unauthorized" grep -q '"type":"unauthorized"' <<<"$out"
check "denied call logged with the name" grep -q 'denied test.echo to wfe' "$tmp/server.log"
out=$("$RPC" call "$addr" test.echo '{}' --cert "$tmp/evil/ra.pem" --key "$tmp/evil/ra.key" \
	--ca "$pki/rpc-ca.pem" --server-name sa 2>&1)
check "client certificate from another CA refused" grep -q '"type":"unavailable"' <<<"$out"
check "refused handshake logged by the server" grep -q 'failed: TLS handshake' "$tmp/server.log"
out=$("$RPC" call "$addr" test.echo '{}' --cert "$pki/ra.pem" --key "$pki/ra.key" \
	--ca "$pki/rpc-ca.pem" --server-name va 2>&1)
check "client checks the server name (expects va, gets sa)" grep -q 'certificate verify failed' <<<"$out"
out=$("$RPC" call "$addr" test.echo '{}' --cert "$pki/ra.pem" --key "$pki/ra.key" \
	--ca "$tmp/evil/rpc-ca.pem" --server-name sa 2>&1)
check "server certificate from another CA refused by the client" grep -q 'certificate verify failed' <<<"$out"

cat >"$tmp/tls.py" <<'PY'
import json, socket, ssl, struct, sys
port, pki = int(sys.argv[1]), sys.argv[2]
def res(name, cond):
    print(("PASS " if cond else "FAIL ") + name, flush=True)
def call(ctx, req):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="sa") as s:
            b = json.dumps(req).encode()
            s.sendall(struct.pack(">I", len(b)) + b)
            hdr = b""
            while len(hdr) < 4:
                chunk = s.recv(4 - len(hdr))
                if not chunk:
                    raise ConnectionError("closed")
                hdr += chunk
            (n,) = struct.unpack(">I", hdr)
            body = b""
            while len(body) < n:
                body += s.recv(n - len(body))
            return s.version(), json.loads(body)
def ctx(maxv=None, cert=True, minv=None):
    c = ssl.create_default_context(cafile=pki + "/rpc-ca.pem")
    if cert:
        c.load_cert_chain(pki + "/ra.pem", pki + "/ra.key")
    if maxv: c.maximum_version = maxv
    if minv: c.minimum_version = minv
    return c
v, r = call(ctx(maxv=ssl.TLSVersion.TLSv1_2), {"id": 1, "method": "test.echo", "params": {"v": 12}})
res("TLS 1.2 call works (%s)" % v, v == "TLSv1.2" and r["result"] == {"v": 12})
v, r = call(ctx(minv=ssl.TLSVersion.TLSv1_3), {"id": 2, "method": "test.echo", "params": {"v": 13}})
res("TLS 1.3 call works (%s)" % v, v == "TLSv1.3" and r["result"] == {"v": 13})
try:
    c = ctx(maxv=ssl.TLSVersion.TLSv1_1, minv=ssl.TLSVersion.TLSv1)
    call(c, {"id": 3, "method": "test.echo"})
    res("TLS 1.1 refused", False)
except (ssl.SSLError, ConnectionError, OSError):
    res("TLS 1.1 refused", True)
# The client allows everything (security level 0), so a refusal is the
# server's (RFC 8996: TLS 1.0 and 1.1 MUST NOT be used; RFC 9325: AEAD).
def loose(v, ciphers="ALL"):
    c = ctx(maxv=v, minv=v)
    c.set_ciphers(ciphers + ":@SECLEVEL=0")
    return c
for name, c in (("TLS 1.0", loose(ssl.TLSVersion.TLSv1)), ("TLS 1.1 (any suite)", loose(ssl.TLSVersion.TLSv1_1)),
                ("TLS 1.2 with CBC suites only", loose(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA256:"
                 "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:AES128-SHA"))):
    try:
        call(c, {"id": 5, "method": "test.echo"})
        res(name + " refused by the server", False)
    except (ssl.SSLError, ConnectionError, OSError):
        res(name + " refused by the server", True)
try:
    call(ctx(cert=False), {"id": 4, "method": "test.echo"})
    res("no client certificate refused", False)
except (ssl.SSLError, ConnectionError, OSError):
    res("no client certificate refused", True)
PY
while read -r word name; do
	case "$word" in PASS) ok "$name" ;; FAIL) bad "$name" ;; esac
done < <(timeout 60 python3 "$tmp/tls.py" "$PORT" "$pki" 2>"$tmp/py.err")
check "python TLS client finished without exceptions" bash -c '! grep -q Traceback "$0"' "$tmp/py.err"

out=$(timeout 300 "$RPC" stress "$addr" --threads 16 --calls 2000 --connections 4 \
	--cert "$pki/ra.pem" --key "$pki/ra.key" --ca "$pki/rpc-ca.pem" --server-name sa 2>&1); rc=$?
echo "    $out"
check "16 threads x 2000 calls over TLS, none lost or mismatched" \
	bash -c '[ '"$rc"' -eq 0 ] && grep -q "calls_ok=32000 errors=0 .*mismatched=0" <<<"$0"' "$out"

stress_across_restart "$tmp/restart.out" "$addr" --threads 4 --seconds 5 --tolerate-unavailable \
	--cert "$pki/ra.pem" --key "$pki/ra.key" --ca "$pki/rpc-ca.pem" --server-name sa
rc=$?
out=$(cat "$tmp/restart.out")
check "TLS restart mid-stream: outage seen" grep -qE 'unavailable=[1-9]' <<<"$out"
check "TLS restart mid-stream: client recovered" \
	bash -c '[ '"$rc"' -eq 0 ] && grep -qE "mismatched=0 ok_after_last_error=[1-9][0-9]+" <<<"$0"' "$out"
kill -TERM "$srv"; wait "$srv"; src=$?
check "TLS server drains and exits 0 on SIGTERM" test "$src" -eq 0

finish
