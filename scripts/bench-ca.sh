#!/usr/bin/env bash
# Signing speed of the CA per key type, next to `openssl speed` for the same
# key on this machine. Prints numbers, asserts nothing.
#   BINDIR=bin SECONDS_PER=3 [E2E=1] scripts/bench-ca.sh
# In-process (anvil-ca --bench, a store that accepts everything):
#   issue/s      full ca_issue: CSR parse + verify, TBS build, throwaway
#                signature, lints, real signature, TBS comparison, audit line
#                (two signatures per certificate)
#   OCSP/s, CRL/s  one signed OCSP response / empty CRL shard each
#   sign/s       one SHA-256 signature by the issuer key alone
# Then the same with every issuer key in a SoftHSM2 token (PKCS#11; a
# token directory of its own under the temp dir), next to the in-memory
# numbers: what a token costs per signature and per issuance.
# E2E=1 adds ca.issue over RPC with a real anvil-sa + PostgreSQL (serial
# reservation and certificate insert included), 8 concurrent clients.
set -euo pipefail
. "$(dirname "$0")/lib-bench.sh"
secs=${SECONDS_PER:-3}
threads=${THREADS:-$(nproc)}
for b in anvil-ca anvil-admin; do
	[ -x "$BINDIR/$b" ] || { echo "bench-ca: $BINDIR/$b not built (make $BINDIR/$b)" >&2; exit 1; }
done
mkdir -p "$BUILD/tmp"
. scripts/lib-procs.sh
procs_extra_cleanup() {
	[ ! -e "$tmp/var/pg" ] || scripts/pg.sh destroy "$tmp/var/pg" >/dev/null 2>&1
}
procs_init "$(cd "$BUILD/tmp" && pwd)/bench-ca.XXXXXX"

"$BINDIR/anvil-admin" ca init --dir "$tmp/pki" >/dev/null 2>&1
ours=$("$BINDIR/anvil-ca" --bench "$secs" --issuers "$tmp/pki/issuers.json" \
	--profiles configs/dev/profiles.json --threads "$threads" 2>/dev/null)
ossl_speed "$secs" sign

field() { json_field "$ours" key_type "$1" "$2"; }

echo "CA signing, in process ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg), $(openssl version | cut -d' ' -f1-2), ${secs}s each)"
printf '%-6s %12s %9s %12s %10s %13s %8s %8s\n' key "openssl sign/s" "issue/s" "sigs/s (x2)" "sigs/ossl" "issue/s ${threads}thr" "OCSP/s" "CRL/s"
for kt in ecdsa rsa; do
	if [ "$kt" = ecdsa ]; then o=$ossl_ec; name="P-256"; else o=$ossl_rsa; name="RSA2048"; fi
	i1=$(field "$kt" issue_per_s)
	iN=$(field "$kt" issue_per_s_threads)
	sg=$((2 * i1))
	printf '%-6s %12.0f %9s %12s %10s %13s %8s %8s\n' "$name" "$o" "$i1" "$sg" "$(pct "$sg" "$o")" \
		"$iN" "$(field "$kt" ocsp_per_s)" "$(field "$kt" crl_per_s)"
done

if [ -r /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null; then
	mkdir -p "$tmp/softhsm/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$tmp/softhsm/tokens" >"$tmp/softhsm/softhsm2.conf"
	export SOFTHSM2_CONF=$tmp/softhsm/softhsm2.conf ANVIL_BENCH_PIN=1234
	softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null
	"$BINDIR/anvil-admin" ca init --dir "$tmp/pki-hsm" --pkcs11 --module /usr/lib/softhsm/libsofthsm2.so \
		--token bench --pin-env ANVIL_BENCH_PIN >/dev/null 2>&1
	hsm=$("$BINDIR/anvil-ca" --bench "$secs" --issuers "$tmp/pki-hsm/issuers.json" \
		--profiles configs/dev/profiles.json --threads "$threads" 2>/dev/null)
	hfield() { echo "$hsm" | grep "\"key_type\":\"$1\"" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
	echo "CA keys in a SoftHSM2 token (PKCS#11) vs in memory, $(softhsm2-util --version 2>/dev/null | head -1 | sed 's/^/SoftHSM /')"
	printf '%-8s %12s %12s %10s %16s %14s %14s %10s\n' key "sign/s mem" "sign/s token" token/mem \
		"sign/s tok ${threads}thr" "issue/s mem" "issue/s token" "OCSP/s tok"
	for kt in ecdsa rsa; do
		if [ "$kt" = ecdsa ]; then name="P-256"; else name="RSA2048"; fi
		printf '%-8s %12s %12s %10s %16s %14s %14s %10s\n' "$name" "$(field "$kt" sign_per_s)" \
			"$(hfield "$kt" sign_per_s)" "$(pct "$(hfield "$kt" sign_per_s)" "$(field "$kt" sign_per_s)")" \
			"$(hfield "$kt" sign_per_s_threads)" "$(field "$kt" issue_per_s)" "$(hfield "$kt" issue_per_s)" \
			"$(hfield "$kt" ocsp_per_s)"
	done
	unset SOFTHSM2_CONF
else
	echo "CA keys in a token: skipped (softhsm2 not installed; scripts/install-deps.sh installs it)"
fi

[ "${E2E:-0}" = 1 ] || exit 0
for b in anvil-sa anvil-rpc; do
	[ -x "$BINDIR/$b" ] || { echo "bench-ca: E2E needs $BINDIR/$b" >&2; exit 1; }
done
base=${ANVIL_CA_BENCH_PORT_BASE:-21250}
python3 scripts/mkconfig.py --out "$tmp/cfg" --var "$tmp/var" --port-base "$base" \
	--bindir "$(cd "$BINDIR" && pwd)" --set 'ca.json:log_level="warn"' >/dev/null
boot=$(BINDIR=$BINDIR scripts/bootstrap.sh "$tmp/cfg" "$tmp/var" 2>/dev/null)
export ANVIL_SA_DSN=$(sed -n 's/^ANVIL_SA_DSN=//p' <<<"$boot")
"$BINDIR/anvil-sa" --config "$tmp/cfg/sa.json" >"$tmp/sa.log" 2>&1 &
pids+=($!)
"$BINDIR/anvil-ca" --config "$tmp/cfg/ca.json" >"$tmp/ca.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((base + 12))/healthz")" = 200 ] && break
	sleep 0.1
done
python3 - "$tmp" "$secs" <<'PY'
import base64, json, subprocess, sys, threading, time
sys.path.insert(0, "test/integration/lib")
from anvilrpc import RpcClient
tmp, secs = sys.argv[1], float(sys.argv[2])
run = tmp + "/var/run/"
sa = RpcClient("unix:" + run + "sa.sock")
acct = sa.call("sa.new_account", {"key": {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ"},
                                  "thumbprint": "bench", "contact": [], "tos_agreed": True})["id"]
ids = [{"type": "dns", "value": "bench.example.com"}]
for kt, newkey in (("P-256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                   ("RSA2048", ["-newkey", "rsa:2048"])):
    der = subprocess.run(["openssl", "req", "-new", *newkey, "-nodes", "-keyout", "/dev/null",
                          "-subj", "/", "-addext", "subjectAltName=DNS:bench.example.com",
                          "-outform", "DER"], capture_output=True, check=True).stdout
    csr = base64.urlsafe_b64encode(der).decode().rstrip("=")
    done, errors = [0], [0]
    lock = threading.Lock()
    stop = time.time() + secs
    def worker():
        c = RpcClient("unix:" + run + "ca.sock")
        while time.time() < stop:
            try:
                c.call("ca.issue", {"csr": csr, "identifiers": ids, "profile": "shortlived",
                                    "account_id": acct})
                with lock:
                    done[0] += 1
            except Exception:
                with lock:
                    errors[0] += 1
    ts = [threading.Thread(target=worker) for _ in range(8)]
    t0 = time.time()
    for t in ts: t.start()
    for t in ts: t.join()
    el = time.time() - t0
    print("E2E ca.issue over RPC + anvil-sa + PostgreSQL, %-7s 8 clients: %6.0f certificates/s (%d errors)"
          % (kt, done[0] / el, errors[0]))
PY
