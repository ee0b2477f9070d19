#!/usr/bin/env bash
# Creates what a running Anvil needs and is missing, under a var directory:
#   VAR/pg        private PostgreSQL cluster (scripts/pg.sh), schema migrated
#   VAR/pki       dev CA (anvil-admin ca init), WFE TLS certificate + its root
#   VAR/pki/trust.pem  every root a client must trust
# Usage: scripts/bootstrap.sh CONFIG_DIR VAR_DIR
# Prints "ANVIL_SA_DSN=..." and "ANVIL_TRUST_PATH=..." lines for the caller.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cfg=${1:?usage: bootstrap.sh CONFIG_DIR VAR_DIR}
var=${2:?usage: bootstrap.sh CONFIG_DIR VAR_DIR}
BINDIR=${BINDIR:-$top/bin}
mkdir -p "$var/run" "$var/log" "$var/pki"
var=$(cd "$var" && pwd)

dsn=$("$top/scripts/pg.sh" start "$var/pg" anvil)
export ANVIL_SA_DSN="$dsn"

if [ -x "$BINDIR/anvil-sa" ]; then
	"$BINDIR/anvil-sa" --config "$cfg/sa.json" --migrate >>"$var/log/migrate.log" 2>&1 \
		|| { echo "bootstrap: schema migration failed; see $var/log/migrate.log" >&2; tail -n 5 "$var/log/migrate.log" >&2; exit 1; }
fi

if [ ! -e "$var/pki/root.key" ] && [ -x "$BINDIR/anvil-admin" ]; then
	"$BINDIR/anvil-admin" ca init --dir "$var/pki" >>"$var/log/ceremony.log" 2>&1 \
		|| { echo "bootstrap: anvil-admin ca init failed; see $var/log/ceremony.log" >&2; tail -n 5 "$var/log/ceremony.log" >&2; exit 1; }
fi

# The internal RPC PKI (mutual TLS between hosts; unused with Unix sockets).
"$top/scripts/mkipki.sh" "$var/pki/rpc" >>"$var/log/ceremony.log" 2>&1 \
	|| { echo "bootstrap: scripts/mkipki.sh failed; see $var/log/ceremony.log" >&2; exit 1; }

# The WFE's TLS certificate, from a dev TLS root of its own.
pki=$var/pki
if [ ! -s "$pki/wfe-tls.pem" ]; then
	umask 077
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$pki/tls-root.key" -out "$pki/tls-root.pem" -days 3650 \
		-subj "/O=Anvil development/CN=Anvil dev TLS root" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$pki/wfe-tls.key" -out "$pki/wfe-tls.csr" \
		-subj "/O=Anvil development/CN=localhost" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' >"$pki/wfe-tls.ext"
	openssl x509 -req -in "$pki/wfe-tls.csr" -CA "$pki/tls-root.pem" -CAkey "$pki/tls-root.key" \
		-CAcreateserial -out "$pki/wfe-tls.pem" -days 825 -extfile "$pki/wfe-tls.ext" 2>/dev/null
	rm -f "$pki/wfe-tls.csr" "$pki/wfe-tls.ext"
	chmod 600 "$pki/tls-root.key" "$pki/wfe-tls.key"
	chmod 644 "$pki/tls-root.pem" "$pki/wfe-tls.pem"
	umask 022
fi

# Trust bundle: the WFE TLS root plus every issuing root.
{
	cat "$pki/tls-root.pem"
	[ -s "$pki/roots.pem" ] && cat "$pki/roots.pem"
} >"$pki/trust.pem.tmp" && mv "$pki/trust.pem.tmp" "$pki/trust.pem"

echo "ANVIL_SA_DSN=$dsn"
echo "ANVIL_TRUST_PATH=$pki/trust.pem"
