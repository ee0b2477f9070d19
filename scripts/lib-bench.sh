# Sourced (bash) by the scripts/bench-*.sh benchmarks, which print numbers
# and assert nothing:
#   . "$(dirname "$0")/lib-bench.sh"
# sets top (the repository top) and cds there, defaults BUILD=build and
# BINDIR=bin like the Makefile, and defines:
#   ossl_speed SECS COLUMN   sets ossl_ec and ossl_rsa: `openssl speed` per
#                            second for P-256 ECDSA and RSA-2048; COLUMN is
#                            sign or verify
#   json_field TEXT KEY VALUE FIELD
#                            the integer member FIELD of the line of TEXT
#                            (one JSON object a line) whose KEY is VALUE
#   pct A B                  A as a percentage of B ("-" if B is 0)
# shellcheck shell=bash
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top" || exit 1
BUILD=${BUILD:-build}
BINDIR=${BINDIR:-bin}

ossl_speed() {
	local speed col='$(NF-1)'
	[ "$2" = sign ] || col='$NF'
	speed=$(openssl speed -seconds "$1" ecdsap256 rsa2048 2>/dev/null)
	ossl_ec=$(echo "$speed" | awk "/ecdsa \\(nistp256\\)/ {print $col}")
	ossl_rsa=$(echo "$speed" | awk "/^rsa 2048 bits/ {print $col}")
}

json_field() {
	echo "$1" | grep "\"$2\":\"$3\"" | sed -n "s/.*\"$4\":\([0-9]*\).*/\1/p"
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }
