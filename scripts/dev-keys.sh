#!/usr/bin/env bash
# Development key material a configs/dev or configs/testmode VA needs, made
# fresh per var directory (never committed):
#   PKI/tkauth-ta-root.pem          a STIR Token Authority root (va.json tkauth.roots;
#                                   its key is deleted once it has signed)
#   PKI/tkauth-ta.pem, .key, -chain.pem  the Token Authority `anvil-admin tkauth token`
#                                   signs with (admin.json tkauth_key / tkauth_chain)
#   PKI/dkim.key, dkim.txt          the VA's DKIM key for email-reply-00 challenge emails
#                                   (va.json email.dkim) and the record to publish
# Usage: scripts/dev-keys.sh PKI_DIR   (scripts/bootstrap.sh sources it and calls dev_keys;
# a test that starts a dev-config VA without bootstrap runs it directly).
# Existing files are kept.

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

# dev_keys PKI_DIR: the Token Authority and the DKIM key, when missing.
dev_keys() {
	mkdir -p "$1"
	# A development STIR Token Authority (RFC 9448 tkauth-01), fresh per var
	# directory: configs/dev and configs/testmode trust tkauth-ta-root.pem (va.json
	# tkauth.roots); `anvil-admin tkauth token` signs Authority Tokens with
	# tkauth-ta.key and puts tkauth-ta-chain.pem in their x5c. The root's key is
	# deleted once it has signed the Token Authority certificate.
	if [ ! -s "$1/tkauth-ta-chain.pem" ]; then
		umask 077
		dev_root "$1/tkauth-ta-root.key" "$1/tkauth-ta-root.pem" \
			"/O=Anvil development (never trust in production)/CN=Anvil dev STIR Token Authority Root" \
			"critical,CA:TRUE,pathlen:0"
		dev_leaf "$1/tkauth-ta.key" "$1/tkauth-ta.pem" \
			"/O=Anvil development (never trust in production)/CN=Anvil dev Token Authority" \
			"$1/tkauth-ta-root.pem" "$1/tkauth-ta-root.key" \
			'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n'
		rm -f "$1/tkauth-ta-root.key" "$1/tkauth-ta-root.srl"
		chmod 644 "$1/tkauth-ta-root.pem"
		cat "$1/tkauth-ta.pem" "$1/tkauth-ta-root.pem" >"$1/tkauth-ta-chain.pem.tmp"
		mv "$1/tkauth-ta-chain.pem.tmp" "$1/tkauth-ta-chain.pem"
		umask 022
	fi

	# The VA's DKIM key (RFC 8823 §3.1 item 3: the challenge email "MUST be signed
	# using either DKIM or S/MIME"): configs/dev and configs/testmode va.json
	# email.dkim (selector anvil, domain anvil.test); dkim.txt is the TXT record to
	# publish at anvil._domainkey.anvil.test for a client that checks it.
	if [ ! -s "$1/dkim.key" ]; then
		(umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
			-out "$1/dkim.key.tmp" 2>/dev/null && mv "$1/dkim.key.tmp" "$1/dkim.key")
		printf 'v=DKIM1; k=rsa; p=%s\n' \
			"$(openssl pkey -in "$1/dkim.key" -pubout -outform DER 2>/dev/null | base64 -w0)" >"$1/dkim.txt"
	fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	dev_keys "${1:?usage: dev-keys.sh PKI_DIR}"
fi
