#!/usr/bin/env bash
# Runs every libFuzzer target (test/fuzz/fuzz_*.c) briefly through
# scripts/fuzz.sh, so `make test` exercises each; `make fuzz` runs them
# longer. One test per target: it passes when the target built and ran
# without a crash. All targets are built first (compiles share the
# archives), then run FUZZ_TEST_JOBS (default nproc) at a time: each run is
# one single-threaded process, so on an idle machine the runs take 1/nproc
# of the wall time with the same fuzzing per target.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
secs=${FUZZ_TEST_SECONDS:-3}
jobs=${FUZZ_TEST_JOBS:-$(nproc)}
targets=$(ls test/fuzz/fuzz_*.c | sed 's@test/fuzz/\(.*\)\.c@\1@')
if ! command -v clang >/dev/null; then
	n=$(echo "$targets" | wc -l)
	echo "skip   - fuzz targets (clang not installed)"
	echo "0 passed, 0 failed, $n skipped"
	exit 0
fi
res=$(mktemp -d)
trap 'rm -rf "$res"' EXIT
# fuzz.sh matches names by substring: pass the whole name and make sure it
# built / ran exactly this target.
for t in $targets; do
	if ! FUZZ_STEP=build FUZZ_BUILD="$BUILD/fuzz" scripts/fuzz.sh 0 "$t" >"$res/$t.build" 2>&1 ||
	    ! grep -q "1 target(s) run" "$res/$t.build"; then
		touch "$res/$t.nobuild"
	fi
done
run_one() {
	local t=$1
	if [ -e "$res/$t.nobuild" ]; then
		cp "$res/$t.build" "$res/$t.out"
		return 1
	fi
	FUZZ_STEP=run FUZZ_BUILD="$BUILD/fuzz" scripts/fuzz.sh "$secs" "$t" >"$res/$t.out" 2>&1 &&
	    grep -q "1 target(s) run" "$res/$t.out"
}
n=0
for t in $targets; do
	(run_one "$t" && touch "$res/$t.ok") &
	n=$((n + 1))
	if [ "$n" -ge "$jobs" ]; then
		wait -n
		n=$((n - 1))
	fi
done
wait
pass=0
fail=0
for t in $targets; do
	if [ -e "$res/$t.ok" ]; then
		echo "ok     - $t ran ${secs}s without a crash"
		pass=$((pass + 1))
	else
		tail -n 30 "$res/$t.out"
		echo "not ok - $t (crash or build failure; see $BUILD/fuzz/crashes/$t)"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
