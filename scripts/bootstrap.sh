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

# A self-signed P-256 CA certificate: dev_root KEY PEM SUBJECT BASICCONSTRAINTS
dev_root() {
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1" -out "$2" -days 3650 -subj "$3" \
		-addext "basicConstraints=$4" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
# A P-256 key and a certificate for it signed by a dev_root:
# dev_leaf KEY PEM SUBJECT CA_PEM CA_KEY EXTENSION_LINES
dev_leaf() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1" -out "$1.csr" -subj "$3" 2>/dev/null
	printf '%b' "$6" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$4" -CAkey "$5" -CAcreateserial \
		-out "$2" -days 825 -extfile "$1.ext" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
	chmod 600 "$1"
	chmod 644 "$2"
}

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

# A development STIR Token Authority (RFC 9448 tkauth-01), fresh per var
# directory: configs/dev and configs/testmode trust tkauth-ta-root.pem (va.json
# tkauth.roots); `anvil-admin tkauth token` signs Authority Tokens with
# tkauth-ta.key and puts tkauth-ta-chain.pem in their x5c. The root's key is
# deleted once it has signed the Token Authority certificate.
if [ ! -s "$pki/tkauth-ta-chain.pem" ]; then
	umask 077
	dev_root "$pki/tkauth-ta-root.key" "$pki/tkauth-ta-root.pem" \
		"/O=Anvil development (never trust in production)/CN=Anvil dev STIR Token Authority Root" \
		"critical,CA:TRUE,pathlen:0"
	dev_leaf "$pki/tkauth-ta.key" "$pki/tkauth-ta.pem" \
		"/O=Anvil development (never trust in production)/CN=Anvil dev Token Authority" \
		"$pki/tkauth-ta-root.pem" "$pki/tkauth-ta-root.key" \
		'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n'
	rm -f "$pki/tkauth-ta-root.key" "$pki/tkauth-ta-root.srl"
	chmod 644 "$pki/tkauth-ta-root.pem"
	cat "$pki/tkauth-ta.pem" "$pki/tkauth-ta-root.pem" >"$pki/tkauth-ta-chain.pem.tmp"
	mv "$pki/tkauth-ta-chain.pem.tmp" "$pki/tkauth-ta-chain.pem"
	umask 022
fi

# The VA's DKIM key (RFC 8823 §3.1 item 3: the challenge email "MUST be signed
# using either DKIM or S/MIME"): configs/dev and configs/testmode va.json
# email.dkim (selector anvil, domain anvil.test); dkim.txt is the TXT record to
# publish at anvil._domainkey.anvil.test for a client that checks it.
if [ ! -s "$pki/dkim.key" ]; then
	(umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
		-out "$pki/dkim.key.tmp" 2>/dev/null && mv "$pki/dkim.key.tmp" "$pki/dkim.key")
	printf 'v=DKIM1; k=rsa; p=%s\n' \
		"$(openssl pkey -in "$pki/dkim.key" -pubout -outform DER 2>/dev/null | base64 -w0)" >"$pki/dkim.txt"
fi

# Trust bundle: the WFE TLS root plus every issuing root.
{
	cat "$pki/tls-root.pem"
	[ -s "$pki/roots.pem" ] && cat "$pki/roots.pem"
} >"$pki/trust.pem.tmp" && mv "$pki/trust.pem.tmp" "$pki/trust.pem"

echo "ANVIL_SA_DSN=$dsn"
echo "ANVIL_TRUST_PATH=$pki/trust.pem"
