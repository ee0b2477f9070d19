#!/usr/bin/env bash
# JWS verifications per CPU-second of the jose library (ES256 and RS256),
# next to `openssl speed` for the same primitives on this machine. Prints
# numbers, asserts nothing.
#   BINDIR=bin SECONDS_PER=3 scripts/bench-jose.sh
# "verify" is jws_verify of an already parsed request (the WFE's kid path
# with a cached account key); "parse+verify" adds jws_parse, i.e. JSON and
# base64url decoding and the import of the embedded jwk (new-account path).
set -euo pipefail
. "$(dirname "$0")/lib-bench.sh"
secs=${SECONDS_PER:-3}
bin=$BINDIR/anvil-jose-verify
if [ ! -x "$bin" ]; then
	echo "bench-jose: $bin not built (make $bin)" >&2
	exit 1
fi

ours=$("$bin" --bench "$secs")
ossl_speed "$secs" verify

field() { json_field "$ours" alg "$1" "$2"; }

echo "JWS verification, per CPU-second ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg), $(openssl version | cut -d' ' -f1-2))"
printf '%-6s %14s %14s %16s %10s\n' alg "openssl speed" "jws_verify" "parse+verify" "verify/ossl"
for alg in ES256 RS256; do
	if [ "$alg" = ES256 ]; then o=$ossl_ec; else o=$ossl_rsa; fi
	v=$(field "$alg" verify_per_s)
	f=$(field "$alg" parse_and_verify_per_s)
	printf '%-6s %14.0f %14s %16s %10s\n' "$alg" "$o" "$v" "$f" "$(pct "$v" "$o")"
done
