#!/usr/bin/env bash
# Runs every libFuzzer target (test/fuzz/fuzz_*.c) briefly through
# scripts/fuzz.sh, so `make test` exercises each; `make fuzz` runs them
# longer. One test per target: it passes when the target ran without a crash.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
secs=${FUZZ_TEST_SECONDS:-3}
targets=$(ls test/fuzz/fuzz_*.c | sed 's@test/fuzz/\(.*\)\.c@\1@')
if ! command -v clang >/dev/null; then
	n=$(echo "$targets" | wc -l)
	echo "skip   - fuzz targets (clang not installed)"
	echo "0 passed, 0 failed, $n skipped"
	exit 0
fi
pass=0
fail=0
for t in $targets; do
	# fuzz.sh matches names by substring: pass the whole name and make sure
	# it ran exactly this target.
	if out=$(FUZZ_BUILD="$BUILD/fuzz" scripts/fuzz.sh "$secs" "$t" 2>&1) &&
	    echo "$out" | grep -q "1 target(s) run"; then
		echo "ok     - $t ran ${secs}s without a crash"
		pass=$((pass + 1))
	else
		echo "$out" | tail -n 30
		echo "not ok - $t (crash or build failure; see $BUILD/fuzz/crashes/$t)"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
