#!/usr/bin/env bash
# Creates the internal RPC PKI with the openssl CLI:
#   scripts/mkipki.sh DIR [NAME...]
# DIR/rpc-ca.pem + DIR/rpc-ca.key (ECDSA P-256 CA, 10 years) and, for each
# service name (default: sa ca va ra wfe admin), DIR/<name>.pem +
# DIR/<name>.key with CN=<name> and SAN DNS:<name> only, usable as TLS server
# and client certificate (2 years). A client checks the server's name, so it
# must ask for the service name (rpc client config tls.server_name, which
# defaults to the client's name such as "sa"). Idempotent: existing files are
# kept; a missing certificate is issued from the existing CA. Keys are 0600.
# ANVIL_PKI_CA_NAME sets the CA's common name (tests make a second, foreign CA).
set -euo pipefail
dir=${1:?usage: mkipki.sh DIR [NAME...]}
shift
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(sa ca va ra wfe admin)
ca_cn=${ANVIL_PKI_CA_NAME:-Anvil internal RPC CA}
umask 077
mkdir -p "$dir"
cd "$dir"

if [ ! -s rpc-ca.key ] || [ ! -s rpc-ca.pem ]; then
	rm -f rpc-ca.key rpc-ca.pem
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out rpc-ca.key.tmp 2>/dev/null
	openssl req -new -x509 -key rpc-ca.key.tmp -out rpc-ca.pem.tmp -days 3650 -sha256 \
		-subj "/CN=$ca_cn" \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash" 2>/dev/null
	mv rpc-ca.key.tmp rpc-ca.key
	mv rpc-ca.pem.tmp rpc-ca.pem
	rm -f ./*.srl
fi
chmod 0600 rpc-ca.key
chmod 0644 rpc-ca.pem

for n in "${names[@]}"; do
	case "$n" in
	*[!a-z0-9.-]* | "" | rpc-ca) echo "mkipki.sh: bad name '$n'" >&2; exit 2 ;;
	esac
	if [ -s "$n.key" ] && [ -s "$n.pem" ] && openssl verify -CAfile rpc-ca.pem "$n.pem" >/dev/null 2>&1; then
		chmod 0600 "$n.key"
		continue
	fi
	rm -f "$n.key" "$n.pem"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$n.key.tmp" 2>/dev/null
	openssl req -new -key "$n.key.tmp" -out "$n.csr" -subj "/CN=$n" 2>/dev/null
	cat >"$n.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$n
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
EXT
	openssl x509 -req -in "$n.csr" -CA rpc-ca.pem -CAkey rpc-ca.key -CAcreateserial \
		-out "$n.pem.tmp" -days 730 -sha256 -extfile "$n.ext" 2>/dev/null
	rm -f "$n.csr" "$n.ext"
	chmod 0600 "$n.key.tmp"
	mv "$n.key.tmp" "$n.key"
	mv "$n.pem.tmp" "$n.pem"
	chmod 0644 "$n.pem"
done
