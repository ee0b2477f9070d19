#!/usr/bin/env bash
# Starts or stops a private Pebble + pebble-challtestsrv for the load
# generator's test and `make bench`.
#
#   scripts/bench-pebble.sh start DIR PORT_BASE   prints KEY=VALUE lines:
#       PEBBLE_DIRECTORY  https://localhost:<base+40>/dir
#       PEBBLE_TRUST      PEM root that signed Pebble's HTTPS certificate
#       PEBBLE_PID        pid of pebble; CHALLTESTSRV_PID likewise
#       PEBBLE_HTTP01_PORT  where Pebble's VA probes http-01 (base+2): the
#                           load generator's responder must listen there
#   scripts/bench-pebble.sh stop DIR
#
# Ports: pebble base+40 (ACME), base+50 (management), http-01 base+2,
# tls-alpn-01 base+1, challtestsrv DNS base+53, management base+55.
# challtestsrv answers every A query with 127.0.0.1 and no AAAA, and its own
# http-01/tls-alpn-01 listeners are off. PEBBLE_VA_NOSLEEP=1 and
# PEBBLE_WFE_NONCEREJECT=0 so that Pebble runs at full speed; authz reuse
# is off (PEBBLE_AUTHZREUSE=0) so every order needs a fresh validation.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	echo "usage: $0 start DIR PORT_BASE | stop DIR" >&2
	exit 2
fi

stop() {
	local f pid
	for f in "$dir/pebble.pid" "$dir/challtestsrv.pid"; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -9 "$pid" 2>/dev/null || true
		fi
		rm -f "$f"
	done
}

if [ "$cmd" = stop ]; then
	stop
	exit 0
fi
if [ "$cmd" != start ]; then
	echo "$0: unknown command $cmd" >&2
	exit 2
fi
base=${3:?port base required}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Pebble's HTTPS certificate: our own throwaway root and a localhost leaf.
if [ ! -f "$dir/tls-cert.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/root-key.pem" -out "$dir/root.pem" -days 30 \
		-subj "/CN=anvil bench pebble root" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/tls-key.pem" -out "$dir/tls.csr" \
		-subj "/CN=localhost" 2>/dev/null
	openssl x509 -req -in "$dir/tls.csr" -CA "$dir/root.pem" \
		-CAkey "$dir/root-key.pem" -CAcreateserial -days 30 \
		-extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n') \
		-out "$dir/tls-cert.pem" 2>/dev/null
fi

cat >"$dir/pebble-config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$((base + 40))",
    "managementListenAddress": "127.0.0.1:$((base + 50))",
    "certificate": "$dir/tls-cert.pem",
    "privateKey": "$dir/tls-key.pem",
    "httpPort": $((base + 2)),
    "tlsPort": $((base + 1)),
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
EOF

stop
/usr/bin/pebble-challtestsrv -dns01 "127.0.0.1:$((base + 53))" \
	-management "127.0.0.1:$((base + 55))" -http01 "" -https01 "" \
	-tlsalpn01 "" -defaultIPv6 "" >"$dir/challtestsrv.log" 2>&1 &
echo $! >"$dir/challtestsrv.pid"
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
	/usr/bin/pebble -config "$dir/pebble-config.json" \
	-dnsserver "127.0.0.1:$((base + 53))" >"$dir/pebble.log" 2>&1 &
echo $! >"$dir/pebble.pid"

url="https://localhost:$((base + 40))/dir"
for _ in $(seq 100); do
	if curl -fsS --cacert "$dir/root.pem" "$url" >/dev/null 2>&1; then
		echo "PEBBLE_DIRECTORY=$url"
		echo "PEBBLE_TRUST=$dir/root.pem"
		echo "PEBBLE_PID=$(cat "$dir/pebble.pid")"
		echo "CHALLTESTSRV_PID=$(cat "$dir/challtestsrv.pid")"
		echo "PEBBLE_HTTP01_PORT=$((base + 2))"
		exit 0
	fi
	if ! kill -0 "$(cat "$dir/pebble.pid")" 2>/dev/null; then
		break
	fi
	sleep 0.1
done
echo "$0: pebble did not come up; last log lines:" >&2
tail -n 20 "$dir/pebble.log" "$dir/challtestsrv.log" >&2 || true
stop
exit 1
