#!/usr/bin/env bash
# The CA against a real PostgreSQL + anvil-sa: key ceremony, ca.* over RPC
# (anvil-rpc), certificates for each key type and profile verified with
# `openssl verify` on the default and the alternate chain, 16 parallel
# issuances with distinct serials, CRLs (`openssl crl`, `openssl verify
# -crl_check`) and OCSP (`openssl ocsp`) before and after a revocation,
# `anvil-admin crl regenerate`, bad input, health while the SA is down.
# Ports: ANVIL_CA_TEST_PORT_BASE (default 21200; the CA's range is
# 21200-21299).
# ANVIL_CA_TEST_PKCS11=1 (test_ca_pkcs11.sh) runs the same suite with every
# CA key generated in a SoftHSM2 token of its own (SOFTHSM2_CONF in the
# temp dir, PIN from the environment), plus: the CA refuses to start
# without its token, and a token unplugged while running makes ca.issue,
# CRLs and OCSP fail with `unavailable` until it is back.
set -uo pipefail
. "$(dirname "$0")/lib/tap.sh" # $top, ok/bad/check/finish
cd "$top"
BINDIR=$(cd "${BINDIR:-bin}" 2>/dev/null && pwd || echo "$top/bin")
BUILD=${BUILD:-build}
RPC=$BINDIR/anvil-rpc
base=${ANVIL_CA_TEST_PORT_BASE:-21200}
CHECK_QUIET=1

for b in anvil-sa anvil-ca anvil-admin anvil-rpc; do
	[ -x "$BINDIR/$b" ] || { echo "missing $BINDIR/$b"; echo "0 passed, 1 failed"; exit 1; }
done
mkdir -p "$BUILD/tmp"
tmp=$(mktemp -d "$(cd "$BUILD/tmp" && pwd)/ca-it.XXXXXX")
chmod 0755 "$tmp"
sa_pid=""; ca_pid=""
cleanup() {
	[ -n "$ca_pid" ] && kill -TERM "$ca_pid" 2>/dev/null
	[ -n "$sa_pid" ] && kill -TERM "$sa_pid" 2>/dev/null
	wait 2>/dev/null
	scripts/pg.sh destroy "$tmp/var/pg" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# ---- bootstrap: config copy, PostgreSQL, schema, key ceremony ----------
python3 scripts/mkconfig.py --out "$tmp/cfg" --var "$tmp/var" --port-base "$base" \
	--bindir "$BINDIR" --set 'ca.json:crl_period="2s"' >/dev/null \
	|| { echo "mkconfig failed"; echo "0 passed, 1 failed"; exit 1; }
boot=$(BINDIR=$BINDIR scripts/bootstrap.sh "$tmp/cfg" "$tmp/var" 2>"$tmp/boot.err") \
	|| { cat "$tmp/boot.err"; echo "0 passed, 1 failed"; exit 1; }
export ANVIL_SA_DSN=$(sed -n 's/^ANVIL_SA_DSN=//p' <<<"$boot")
pki=$tmp/var/pki
run=$tmp/var/run
dbg=$((base + 12))
hsm=${ANVIL_CA_TEST_PKCS11:-0}
P11MOD=/usr/lib/softhsm/libsofthsm2.so
p11list() { pkcs11-tool --module "$P11MOD" --token-label anvil-ca-it --login --pin "$ANVIL_HSM_PIN" -O 2>/dev/null; }
if [ "$hsm" = 1 ]; then
	# A token of this test's own; the PEM hierarchy bootstrap made is set
	# aside and the ceremony runs again with the keys in the token.
	mkdir -p "$tmp/softhsm/tokens" "$pki/pem"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$tmp/softhsm/tokens" >"$tmp/softhsm/softhsm2.conf"
	export SOFTHSM2_CONF=$tmp/softhsm/softhsm2.conf
	export ANVIL_HSM_PIN=31415926
	softhsm2-util --init-token --free --label anvil-ca-it --pin "$ANVIL_HSM_PIN" --so-pin 27182818 >/dev/null \
		|| { echo "softhsm2-util --init-token failed"; echo "0 passed, 1 failed"; exit 1; }
	mv "$pki"/root.* "$pki"/root2.* "$pki"/int-* "$pki/roots.pem" "$pki/issuers.json" "$pki/pem/"
	"$BINDIR/anvil-admin" ca init --dir "$pki" --pkcs11 --module "$P11MOD" --token anvil-ca-it \
		--pin-env ANVIL_HSM_PIN >"$tmp/ceremony.out" 2>&1
	check "ca init --pkcs11 generates the keys in the token" test $? -eq 0
fi

check "ceremony wrote every file" test -s "$pki/root.pem" -a -s "$pki/root2.pem" -a -s "$pki/int-ecdsa.pem" \
	-a -s "$pki/int-ecdsa-cross.pem" -a -s "$pki/int-rsa.pem" -a -s "$pki/roots.pem" -a -s "$pki/issuers.json"
if [ "$hsm" = 1 ]; then
	check "no CA private key file: the keys are in the token" bash -c \
		'! ls "$0"/root.key "$0"/root2.key "$0"/int-ecdsa.key "$0"/int-rsa.key' "$pki"
	objs=$(p11list)
	check "the token holds 4 private keys, sensitive and never extractable" \
		test "$(grep -A6 '^Private Key Object' <<<"$objs" | grep -c 'sensitive, always sensitive, never extractable')" -eq 4
	check "issuers.json names token, label and key id" bash -c \
		'python3 -c "import json,sys; i=json.load(open(sys.argv[1]))[\"issuers\"]; p=[x[\"pkcs11\"] for x in i]; assert [x[\"label\"] for x in p]==[\"int-ecdsa\",\"int-rsa\"] and all(len(x[\"id\"])==16 and x[\"token\"]==\"anvil-ca-it\" and x[\"pin_env\"]==\"ANVIL_HSM_PIN\" for x in p)" "$0"' "$pki/issuers.json"
else
	modes=$(stat -c %a "$pki/root.key" "$pki/root2.key" "$pki/int-ecdsa.key" "$pki/int-rsa.key" | sort -u)
	check "private keys are 0600" test "$modes" = 600
fi
check "roots.pem holds both roots" test "$(grep -c 'BEGIN CERTIFICATE' "$pki/roots.pem")" = 2
check "intermediates chain to the roots (openssl verify)" \
	openssl verify -CAfile "$pki/root.pem" "$pki/int-ecdsa.pem" "$pki/int-rsa.pem"
check "cross-signed intermediate chains to the alternate root" \
	openssl verify -CAfile "$pki/root2.pem" "$pki/int-ecdsa-cross.pem"
if [ "$hsm" = 1 ]; then
	sum1=$(p11list | sha256sum)
	"$BINDIR/anvil-admin" ca init --dir "$tmp/pki2" --pkcs11 --module "$P11MOD" --token anvil-ca-it \
		--pin-env ANVIL_HSM_PIN >"$tmp/reinit.out" 2>&1; rc=$?
	sum2=$(p11list | sha256sum)
	check "ca init --pkcs11 refuses an existing key label (exit 1, token unchanged, no files)" \
		bash -c '[ "$0" -eq 1 ] && [ "$1" = "$2" ] && [ ! -e "$3/issuers.json" ]' "$rc" "$sum1" "$sum2" "$tmp/pki2"
	check "ca init says which label" grep -q 'already holds a key labelled "root"' "$tmp/reinit.out"
	"$BINDIR/anvil-admin" ca init --dir "$tmp/pki3" --pkcs11 --module "$P11MOD" --token anvil-ca-it \
		--pin 1234 >"$tmp/reinit2.out" 2>&1; rc=$?
	check "a PIN on the command line is refused" bash -c '[ "$0" -eq 2 ] && grep -q "never goes on the command line" "$1"' "$rc" "$tmp/reinit2.out"
	# No token at all: a configuration whose token directory is empty.
	mkdir -p "$tmp/softhsm/empty"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$tmp/softhsm/empty" >"$tmp/softhsm/empty.conf"
	SOFTHSM2_CONF=$tmp/softhsm/empty.conf timeout 20 "$BINDIR/anvil-ca" --config "$tmp/cfg/ca.json" >"$tmp/ca-notoken.log" 2>&1; rc=$?
	check "token missing at start: anvil-ca refuses to start and says so" \
		bash -c '[ "$0" -ne 0 ] && grep -q "token \"anvil-ca-it\" not present" "$1"' "$rc" "$tmp/ca-notoken.log"
	ANVIL_HSM_PIN=00000000 timeout 20 "$BINDIR/anvil-ca" --config "$tmp/cfg/ca.json" >"$tmp/ca-badpin.log" 2>&1; rc=$?
	check "wrong PIN: anvil-ca refuses to start and says so" \
		bash -c '[ "$0" -ne 0 ] && grep -q "CKR_PIN_INCORRECT" "$1"' "$rc" "$tmp/ca-badpin.log"
else
	sum1=$(cat "$pki"/*.key | sha256sum)
	"$BINDIR/anvil-admin" ca init --dir "$pki" >"$tmp/reinit.out" 2>&1; rc=$?
	sum2=$(cat "$pki"/*.key | sha256sum)
	check "ca init refuses to overwrite (exit 1, keys unchanged)" \
		test "$rc" -eq 1 -a "$sum1" = "$sum2"
	check "ca init says why" grep -q "already exists" "$tmp/reinit.out"
fi

# ---- start SA and CA ---------------------------------------------------
"$BINDIR/anvil-sa" --config "$tmp/cfg/sa.json" >"$tmp/sa.log" 2>&1 &
sa_pid=$!
"$BINDIR/anvil-ca" --config "$tmp/cfg/ca.json" >"$tmp/ca.log" 2>&1 &
ca_pid=$!
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$dbg/healthz")" = 200 ]; }
up=0
for _ in $(seq 1 600); do if [ -S "$run/ca.sock" ] && healthy; then up=1; break; fi; sleep 0.1; done
if [ "$up" != 1 ]; then
	bad "anvil-ca starts and is healthy"
	tail -n 20 "$tmp/ca.log" "$tmp/sa.log"
	finish
fi
ok "anvil-ca starts and is healthy"
check "/metrics is served" bash -c "curl -s http://127.0.0.1:$dbg/metrics | grep -q anvil_"

call() { "$RPC" call "unix:$run/$1.sock" "${@:2}"; }
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
b64d() { python3 -c "import sys,json,base64;d=json.load(sys.stdin)['der'];sys.stdout.buffer.write(base64.urlsafe_b64decode(d+'='*(-len(d)%4)))"; }
b64u() { base64 -w0 "$1" | tr '+/' '-_' | tr -d '='; }

out=$(call ca ca.profiles)
want=$(python3 -c "import json,sys; print(sorted(json.load(open(sys.argv[1]))['profiles']))" "$tmp/cfg/profiles.json")
check "ca.profiles lists the profiles of its profiles.json ($want)" \
	test "$(jq_ 'sorted(d["profiles"].keys())' <<<"$out")" = "$want"
check "ca.profiles includes classic tlsserver shortlived clientauth" \
	test "$(jq_ 'all(p in d["profiles"] for p in ("classic", "tlsserver", "shortlived", "clientauth"))' <<<"$out")" = "True"
out=$(call ca ca.get_issuers)
check "ca.get_issuers: two issuers, ECDSA one with an alternate chain" \
	test "$(jq_ '[len(i["chains_pem"]) for i in d["issuers"]]' <<<"$out")" = "[2, 1]"

acct=$(call sa sa.new_account '{"key":{"kty":"EC","crv":"P-256","x":"eA","y":"eQ"},"thumbprint":"ca-it-1","contact":[],"tos_agreed":true}' | jq_ 'd["id"]')
[ -n "$acct" ] || acct=1

# make_csr KEYTYPE OUT SAN [CN]
make_csr() {
	local kt=$1 out=$2 san=$3 cn=${4:-} subj=/
	[ -n "$cn" ] && subj="/CN=$cn"
	if [ "$kt" = ecdsa ]; then
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$out.key" \
			-subj "$subj" -addext "subjectAltName=$san" -outform DER -out "$out.csr" 2>/dev/null
	else
		openssl req -new -newkey rsa:2048 -nodes -keyout "$out.key" \
			-subj "$subj" -addext "subjectAltName=$san" -outform DER -out "$out.csr" 2>/dev/null
	fi
}

# issue NAME PROFILE IDENTIFIERS_JSON: writes $tmp/NAME.json and splits PEMs.
issue() {
	local name=$1 profile=$2 ids=$3
	call ca ca.issue "{\"csr\":\"$(b64u "$tmp/$name.csr")\",\"identifiers\":$ids,\"profile\":\"$profile\",\"account_id\":$acct}" >"$tmp/$name.json" 2>&1 || return 1
	python3 - "$tmp/$name" <<'PY'
import json, re, sys
p = sys.argv[1]
r = json.load(open(p + ".json"))
pem = lambda s: re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", s, re.S)
c = pem(r["chain_pem"])
open(p + ".pem", "w").write(c[0])
open(p + ".int.pem", "w").write("".join(c[1:]))
for i, a in enumerate(r["alternates_pem"]):
    open(p + ".alt%d.pem" % i, "w").write("".join(pem(a)[1:]))
PY
}

ids2='[{"type":"dns","value":"a.example.com"},{"type":"dns","value":"b.example.com"}]'
for kt in ecdsa rsa; do
	for prof in classic tlsserver shortlived clientauth; do
		n=$kt-$prof
		make_csr "$kt" "$tmp/$n" "DNS:b.example.com,DNS:a.example.com" a.example.com
		if ! issue "$n" "$prof" "$ids2"; then
			bad "$kt/$prof: ca.issue"; cat "$tmp/$n.json"; continue
		fi
		purpose=sslserver
		[ "$prof" = clientauth ] && purpose=sslclient
		check "$kt/$prof: openssl verify (default chain, $purpose)" \
			openssl verify -purpose "$purpose" -CAfile "$pki/root.pem" -untrusted "$tmp/$n.int.pem" "$tmp/$n.pem"
		if [ "$kt" = ecdsa ]; then
			check "$kt/$prof: openssl verify (alternate chain to root2)" \
				openssl verify -purpose "$purpose" -CAfile "$pki/root2.pem" -untrusted "$tmp/$n.alt0.pem" "$tmp/$n.pem"
		fi
	done
done
txt=$(openssl x509 -in "$tmp/ecdsa-classic.pem" -noout -text)
check "classic keeps the CN, SANs in CSR order" bash -c 'grep -q "Subject: CN *= *a.example.com" <<<"$0" && grep -q "DNS:b.example.com, DNS:a.example.com" <<<"$0"' "$txt"
check "tlsserver omits the CN" bash -c '! openssl x509 -in "$0" -noout -subject | grep -q CN' "$tmp/ecdsa-tlsserver.pem"
check "shortlived is 7 days" bash -c 'nb=$(date -d "$(openssl x509 -in "$0" -noout -startdate | cut -d= -f2)" +%s); na=$(date -d "$(openssl x509 -in "$0" -noout -enddate | cut -d= -f2)" +%s); [ $((na - nb + 1)) -eq 604800 ]' "$tmp/rsa-shortlived.pem"
check "clientauth is not a server certificate" bash -c '! openssl verify -purpose sslserver -CAfile "$0" -untrusted "$1" "$2"' "$pki/root.pem" "$tmp/ecdsa-clientauth.int.pem" "$tmp/ecdsa-clientauth.pem"
check "RSA leaf comes from the RSA intermediate" bash -c 'openssl x509 -in "$0" -noout -issuer | grep -q "RSA Intermediate"' "$tmp/rsa-classic.pem"
serial=$(jq_ 'd["serial"]' <"$tmp/ecdsa-classic.json")
issuer=$(jq_ 'd["issuer_id"]' <"$tmp/ecdsa-classic.json")
stored=$(call sa sa.get_certificate "{\"serial\":\"$serial\"}")
check "certificate is stored in the SA with issuer, shard and key hash" \
	test "$(jq_ 'd["issuer_id"] == "'"$issuer"'" and len(d["key_hash"]) == 64 and d["shard"] >= 0' <<<"$stored")" = True
shard=$(jq_ 'd["shard"]' <<<"$stored")
check "serial is 18 bytes with the configured prefix 7f" bash -c '[ ${#0} -eq 36 ] && [ "${0:0:2}" = 7f ]' "$serial"
check "audit line for the signature" grep -q "AUDIT.*event=issuance serial=$serial" "$tmp/ca.log"

# ---- 16 parallel issuances ------------------------------------------------
make_csr ecdsa "$tmp/par" "DNS:par.example.com"
csr=$(b64u "$tmp/par.csr")
ppids=()
for i in $(seq 1 16); do
	call ca ca.issue "{\"csr\":\"$csr\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"par.example.com\"}],\"profile\":\"shortlived\",\"account_id\":$acct}" >"$tmp/par.$i.json" 2>&1 &
	ppids+=($!)
done
wait "${ppids[@]}"
nser=$(cat "$tmp"/par.*.json | grep -o '"serial": "[0-9a-f]*"' | sort -u | wc -l)
check "16 parallel ca.issue calls: 16 distinct serials" test "$nser" -eq 16

# ---- CRL and OCSP before revocation ----------------------------------------
out=$("$BINDIR/anvil-admin" crl regenerate --ca "unix:$run/ca.sock" 2>&1); rc=$?
check "anvil-admin crl regenerate signs every shard (2 issuers x 4)" \
	test "$rc" -eq 0 -a "$(grep -c '^issuer .* shard .* number ' <<<"$out")" -eq 8
call ca ca.generate_crl "{\"issuer_id\":\"$issuer\",\"shard\":$shard}" | b64d >"$tmp/crl1.der"
check "openssl crl verifies the shard CRL" openssl crl -inform DER -in "$tmp/crl1.der" -CAfile "$tmp/ecdsa-classic.int.pem" -noout
check "CRL has the shard's IDP URL" bash -c 'openssl crl -inform DER -in "$0" -noout -text | grep -q "/crl/$1/$2.crl"' "$tmp/crl1.der" "$issuer" "$shard"
check "certificate not on the CRL before revocation" bash -c '! openssl crl -inform DER -in "$0" -noout -text | grep -qi "$1"' "$tmp/crl1.der" "$serial"
stored_crl=$(call sa sa.get_crl "{\"issuer_id\":\"$issuer\",\"shard\":$shard}")
check "CRL is stored in the SA" test "$(jq_ 'd["number"] >= 1' <<<"$stored_crl")" = True
call ca ca.ocsp "{\"serial\":\"$serial\"}" | b64d >"$tmp/ocsp1.der"
o=$(openssl ocsp -respin "$tmp/ocsp1.der" -issuer "$tmp/ecdsa-classic.int.pem" -cert "$tmp/ecdsa-classic.pem" \
	-CAfile "$pki/root.pem" -no_nonce 2>&1)
check "openssl ocsp: response verifies, status good" bash -c 'grep -q "Response verify OK" <<<"$0" && grep -q ": good" <<<"$0"' "$o"
rsaserial=$(jq_ 'd["serial"]' <"$tmp/rsa-classic.json")
call ca ca.ocsp "{\"serial\":\"$rsaserial\"}" | b64d >"$tmp/ocsp-rsa.der"
o=$(openssl ocsp -respin "$tmp/ocsp-rsa.der" -issuer "$tmp/rsa-classic.int.pem" -cert "$tmp/rsa-classic.pem" \
	-CAfile "$pki/root.pem" -no_nonce 2>&1)
check "openssl ocsp: RSA issuer response verifies, good" bash -c 'grep -q "Response verify OK" <<<"$0" && grep -q ": good" <<<"$0"' "$o"

# ---- revoke, then CRL and OCSP again ---------------------------------------
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
call sa sa.revoke_certificate "{\"serial\":\"$serial\",\"reason\":1,\"revoked_at\":\"$now\"}" >/dev/null
call ca ca.generate_crl "{\"issuer_id\":\"$issuer\",\"shard\":$shard}" | b64d >"$tmp/crl2.der"
check "openssl crl verifies the new CRL" openssl crl -inform DER -in "$tmp/crl2.der" -CAfile "$tmp/ecdsa-classic.int.pem" -noout
n1=$(openssl crl -inform DER -in "$tmp/crl1.der" -noout -crlnumber | cut -d= -f2)
n2=$(openssl crl -inform DER -in "$tmp/crl2.der" -noout -crlnumber | cut -d= -f2)
check "CRL number increases" test $((n2)) -gt $((n1))
check "revoked certificate is on the CRL with keyCompromise" bash -c 'openssl crl -inform DER -in "$0" -noout -text | grep -A6 -i "$1" | grep -q "Key Compromise"' "$tmp/crl2.der" "$serial"
openssl crl -inform DER -in "$tmp/crl2.der" -out "$tmp/crl2.pem"
o=$(openssl verify -crl_check -CRLfile "$tmp/crl2.pem" -CAfile "$pki/root.pem" -untrusted "$tmp/ecdsa-classic.int.pem" "$tmp/ecdsa-classic.pem" 2>&1)
check "openssl verify -crl_check reports the certificate revoked" grep -q "certificate revoked" <<<"$o"
call ca ca.ocsp "{\"serial\":\"$serial\"}" | b64d >"$tmp/ocsp2.der"
o=$(openssl ocsp -respin "$tmp/ocsp2.der" -issuer "$tmp/ecdsa-classic.int.pem" -cert "$tmp/ecdsa-classic.pem" \
	-CAfile "$pki/root.pem" -no_nonce 2>&1)
check "openssl ocsp: status revoked, reason keyCompromise" bash -c 'grep -q "Response verify OK" <<<"$0" && grep -q ": revoked" <<<"$0" && grep -q "keyCompromise" <<<"$0"' "$o"
# The timer (crl_period 2s in this test) republishes the shard on its own:
# polled (a pass signs every shard in turn, and a busy machine stretches
# it past any fixed sleep), 300 times (a minute or more).
regen=0
for _ in $(seq 1 300); do
	stored_crl2=$(call sa sa.get_crl "{\"issuer_id\":\"$issuer\",\"shard\":$shard}")
	if [ "$(jq_ 'd["number"]' <<<"$stored_crl2")" -gt "$((n2))" ]; then regen=1; break; fi
	sleep 0.2
done
check "the CRL timer regenerates shards" test "$regen" = 1

if command -v promtool >/dev/null; then
	curl -s "http://127.0.0.1:$dbg/metrics" >"$tmp/metrics.txt"
	check "/metrics counts signatures and passes promtool check metrics" bash -c \
		'grep -q "^anvil_ca_signatures_total{purpose=\"cert\"" "$0" && grep -q "purpose=\"crl\"" "$0" && grep -q "purpose=\"ocsp\"" "$0" && promtool check metrics <"$0"' "$tmp/metrics.txt"
fi

# ---- bad input -------------------------------------------------------------
o=$(call ca ca.issue '{"csr":"AAAA","identifiers":[{"type":"dns","value":"x.example.com"}],"account_id":1}' 2>&1)
check "garbage CSR -> badCSR" grep -q '"type":"badCSR"' <<<"$o"
o=$(call ca ca.issue "{\"csr\":\"$csr\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"par.example.com\"}],\"profile\":\"nope\",\"account_id\":$acct}" 2>&1)
check "unknown profile -> invalidProfile" grep -q '"type":"invalidProfile"' <<<"$o"
o=$(call ca ca.issue '{"csr":5}' 2>&1)
check "wrong param types -> malformed" grep -q '"type":"malformed"' <<<"$o"
o=$(call ca ca.ocsp '{"serial":"00112233"}' 2>&1)
check "OCSP for an unknown serial -> notFound" grep -q '"type":"notFound"' <<<"$o"
o=$(call ca ca.generate_crl "{\"issuer_id\":\"$issuer\",\"shard\":99}" 2>&1)
check "CRL for a shard out of range -> malformed" grep -q '"type":"malformed"' <<<"$o"
check "the CA is still healthy after bad input" healthy

# ---- the token unplugged while running (HSM run) ----------------------------
if [ "$hsm" = 1 ]; then
	tokdir=$(ls -d "$tmp/softhsm/tokens"/*/)
	mv "$tokdir" "$tmp/softhsm/unplugged"
	make_csr ecdsa "$tmp/gone" "DNS:gone.example.com"
	o=$(call ca ca.issue "{\"csr\":\"$(b64u "$tmp/gone.csr")\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"gone.example.com\"}],\"account_id\":$acct}" 2>&1)
	check "token unplugged: ca.issue fails with unavailable (503)" bash -c 'grep -q "\"type\":\"unavailable\"" <<<"$0" || grep -q "\"status\":503" <<<"$0"' "$o"
	check "the failure names the token" grep -q "token" <<<"$o"
	o=$(call ca ca.generate_crl "{\"issuer_id\":\"$issuer\",\"shard\":$shard}" 2>&1)
	check "token unplugged: ca.generate_crl fails with unavailable" bash -c 'grep -q "\"status\":503" <<<"$0"' "$o"
	check "the CA stays up while the token is gone" healthy
	mv "$tmp/softhsm/unplugged" "$tokdir"
	ok2=0
	for _ in $(seq 1 600); do
		if call ca ca.issue "{\"csr\":\"$(b64u "$tmp/gone.csr")\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"gone.example.com\"}],\"account_id\":$acct}" >"$tmp/gone.json" 2>&1; then
			ok2=1; break
		fi
		sleep 0.1
	done
	check "token back: ca.issue works again without a restart" test "$ok2" = 1
	check "the CA log says it reconnects" grep -q "pkcs11: .*will reconnect" "$tmp/ca.log"
fi

# ---- health follows the SA -------------------------------------------------
kill -TERM "$sa_pid"; wait "$sa_pid" 2>/dev/null; sa_pid=""
down=0
for _ in $(seq 1 600); do if ! healthy; then down=1; break; fi; sleep 0.1; done
check "/healthz is 503 while the SA is down" test "$down" = 1
"$BINDIR/anvil-sa" --config "$tmp/cfg/sa.json" >>"$tmp/sa.log" 2>&1 &
sa_pid=$!
back=0
for _ in $(seq 1 600); do if healthy; then back=1; break; fi; sleep 0.1; done
check "/healthz recovers when the SA is back" test "$back" = 1

kill -TERM "$ca_pid"; wait "$ca_pid"; rc=$?; ca_pid=""
check "SIGTERM stops anvil-ca cleanly" test "$rc" -eq 0
check "no sanitizer or BUG report in the CA log" bash -c '! grep -E "AddressSanitizer|LeakSanitizer|runtime error| BUG " "$0"' "$tmp/ca.log"
finish
