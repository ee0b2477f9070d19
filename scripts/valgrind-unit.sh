#!/usr/bin/env bash
# Runs every unit test binary ($BUILD/test/test_*) under valgrind memcheck.
#   scripts/valgrind-unit.sh [REGEX]     (e.g. 'core|jose': only matching binaries)
# Exit status 1 if any binary fails its own tests or valgrind reports an
# error (invalid read/write, use of uninitialised memory, definite or
# indirect leak, bad free). Logs: $BUILD/valgrind/<test>.log. Build without
# sanitizers first (make BUILD=... build): ASan and valgrind do not mix.
# Env: BUILD (default build), VALGRIND_EXTRA (more valgrind options).
# Last line: "N passed, N failed" (one count per test binary).
set -uo pipefail
BUILD=${BUILD:-build}
pat=${1:-}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
command -v valgrind >/dev/null || { echo "valgrind-unit.sh: valgrind not installed" >&2; exit 2; }
logdir=$BUILD/valgrind
mkdir -p "$logdir"
supp=()
[ -f test/valgrind.supp ] && supp=(--suppressions=test/valgrind.supp)
P=0; F=0
for t in "$BUILD"/test/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	if [ -n "$pat" ] && ! [[ "$name" =~ $pat ]]; then continue; fi
	log=$logdir/$name.log
	start=$SECONDS
	# --errors-for-leak-kinds: definite and indirect leaks are errors;
	# "still reachable" (OpenSSL/libevent globals) and "possible" are not.
	valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
		--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
		--track-origins=yes --num-callers=30 --fair-sched=yes "${supp[@]}" \
		${VALGRIND_EXTRA:-} --log-file="$log.vg" "$t" >"$log" 2>&1
	rc=$?
	errs=$(grep -Eo 'ERROR SUMMARY: [0-9]+' "$log.vg" | awk '{s += $3} END {print s + 0}')
	if [ "$rc" -eq 0 ] && [ "$errs" -eq 0 ]; then
		P=$((P + 1))
		echo "ok   $name ($((SECONDS - start))s)"
	else
		F=$((F + 1))
		echo "FAIL $name: exit $rc, $errs valgrind error(s); see $log.vg"
		grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Mismatched|[0-9,]+ bytes in)' "$log.vg" | head -n 10
		tail -n 3 "$log"
	fi
done
echo "$P passed, $F failed"
[ "$F" -eq 0 ]
