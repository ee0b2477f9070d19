#!/usr/bin/env bash
# No non-test function over 100 lines (issue #17, docs/development.md):
# scripts/long-functions.sh must list none in the tree, and must list a
# function that is over the limit (so an empty list means something).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; }

mkdir -p "$BUILD/tmp"
tmp=$(mktemp -d "$BUILD/tmp/fnlen-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# A 101-line function (brace to brace) and a 100-line one.
make_fn() { # name, body lines
	echo "static int"
	echo "$1(void)"
	echo "{"
	for _ in $(seq 1 "$2"); do echo "	(void)0;"; done
	echo "}"
}
{ make_fn too_long 99; make_fn just_fits 98; } >"$tmp/sample.c"
out=$(scripts/long-functions.sh "$tmp/sample.c")
if [ "$out" = "101 $tmp/sample.c:3 too_long" ]; then
	ok "the checker lists a 101-line function and not a 100-line one"
else
	bad "the checker lists a 101-line function and not a 100-line one (got: $out)"
fi

out=$(scripts/long-functions.sh)
if [ -z "$out" ]; then
	ok "no non-test function over 100 lines"
else
	bad "functions over 100 lines (split them by meaning):"
	echo "$out" | sed 's/^/    /'
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
