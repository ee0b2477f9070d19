#!/usr/bin/env bash
# WFE benchmark (prints numbers, asserts nothing): requests/s of GET /directory and
# HEAD newNonce with wrk at 32 connections, against anvil-wfe alone and against
# Pebble in the same run. Needs wrk and pebble (Debian packages).
#   BINDIR=bin wfe/bench.sh [seconds]      ports 21580-21589
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BINDIR=${BINDIR:-$top/bin}
secs=${1:-5}
conns=32
threads=${WRK_THREADS:-4}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

for t in wrk pebble openssl; do
	command -v "$t" >/dev/null || { echo "bench: $t not installed, skipping"; exit 0; }
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-keyout "$tmp/tls.key" -out "$tmp/tls.pem" -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

cat >"$tmp/wfe.json" <<JSON
{"log_level": "warn", "listen": {"addr": "127.0.0.1", "port": 21581},
 "tls": {"cert": "$tmp/tls.pem", "key": "$tmp/tls.key"},
 "base_url": "https://localhost:21581", "threads": 8,
 "ra": {"target": "unix:$tmp/ra.sock"}, "sa": {"target": "unix:$tmp/sa.sock"},
 "ca": {"target": "unix:$tmp/ca.sock"}}
JSON
cat >"$tmp/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:21582", "managementListenAddress": "127.0.0.1:21583",
 "certificate": "$tmp/tls.pem", "privateKey": "$tmp/tls.key",
 "httpPort": 21584, "tlsPort": 21585, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
echo 'wrk.method = "HEAD"' >"$tmp/head.lua"

"$BINDIR/anvil-wfe" --config "$tmp/wfe.json" 2>"$tmp/wfe.log" &
pids+=($!)
PEBBLE_VA_NOSLEEP=1 pebble -config "$tmp/pebble.json" >"$tmp/pebble.log" 2>&1 &
pids+=($!)
for port in 21581 21582; do
	for _ in $(seq 150); do
		curl -sk -o /dev/null "https://127.0.0.1:$port/dir" && break
		curl -sk -o /dev/null "https://127.0.0.1:$port/directory" && break
		sleep 0.1
	done
done

rate() { # url [lua]
	local out
	if [ -n "${2:-}" ]; then
		out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" -s "$2" "$1" 2>&1)
	else
		out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" "$1" 2>&1)
	fi
	echo "$out" | awk '/Requests\/sec/ {print $2}'
}

printf '%-28s %12s\n' "benchmark (wrk -c$conns)" "requests/s"
printf '%-28s %12s\n' "anvil GET /directory" "$(rate https://localhost:21581/directory)"
printf '%-28s %12s\n' "anvil HEAD new-nonce" "$(rate https://localhost:21581/acme/new-nonce "$tmp/head.lua")"
printf '%-28s %12s\n' "anvil GET new-nonce" "$(rate https://localhost:21581/acme/new-nonce)"
printf '%-28s %12s\n' "pebble GET /dir" "$(rate https://localhost:21582/dir)"
# wrk cannot parse Go's HEAD replies (no Content-Length): Pebble's nonce by GET.
printf '%-28s %12s\n' "pebble GET nonce-plz" "$(rate https://localhost:21582/nonce-plz)"
