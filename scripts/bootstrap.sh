#!/usr/bin/env bash
# Creates what a running Anvil needs and is missing, under a var directory:
#   VAR/pg        private PostgreSQL cluster (scripts/pg.sh), schema migrated
#   VAR/pki       dev CA (anvil-admin ca init), WFE TLS certificate + its root
#   VAR/pki/trust.pem  every root a client must trust
#   VAR/pki/tkauth-ta*  a development STIR Token Authority (tkauth-01)
#   VAR/pki/dkim.key    the VA's DKIM key for email-reply-00 challenge emails
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
	# pathlen 1: the dev profiles include stir-ca, whose STIR CA certificates
	# (RFC 9448 "ca": true) must path-validate under the intermediate
	"$BINDIR/anvil-admin" ca init --dir "$var/pki" --intermediate-pathlen 1 >>"$var/log/ceremony.log" 2>&1 \
		|| { echo "bootstrap: anvil-admin ca init failed; see $var/log/ceremony.log" >&2; tail -n 5 "$var/log/ceremony.log" >&2; exit 1; }
fi

# The internal RPC PKI (mutual TLS between hosts; unused with Unix sockets).
"$top/scripts/mkipki.sh" "$var/pki/rpc" >>"$var/log/ceremony.log" 2>&1 \
	|| { echo "bootstrap: scripts/mkipki.sh failed; see $var/log/ceremony.log" >&2; exit 1; }

# dev_root / dev_leaf, and the development Token Authority and DKIM key
. "$top/scripts/dev-keys.sh"

# The WFE's TLS certificate, from a dev TLS root of its own.
pki=$var/pki
if [ ! -s "$pki/wfe-tls.pem" ]; then
	umask 077
	dev_root "$pki/tls-root.key" "$pki/tls-root.pem" \
		"/O=Anvil development/CN=Anvil dev TLS root" "critical,CA:TRUE"
	dev_leaf "$pki/wfe-tls.key" "$pki/wfe-tls.pem" "/O=Anvil development/CN=localhost" \
		"$pki/tls-root.pem" "$pki/tls-root.key" \
		'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n'
	chmod 600 "$pki/tls-root.key"
	chmod 644 "$pki/tls-root.pem"
	umask 022
fi

# The development STIR Token Authority and the VA's DKIM key (scripts/dev-keys.sh).
dev_keys "$pki"

# Trust bundle: the WFE TLS root plus every issuing root.
{
	cat "$pki/tls-root.pem"
	[ -s "$pki/roots.pem" ] && cat "$pki/roots.pem"
} >"$pki/trust.pem.tmp" && mv "$pki/trust.pem.tmp" "$pki/trust.pem"

echo "ANVIL_SA_DSN=$dsn"
echo "ANVIL_TRUST_PATH=$pki/trust.pem"
