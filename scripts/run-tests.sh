#!/usr/bin/env bash
# Runs every unit test binary and every integration test, then prints one
# final line "N passed, N failed[, N skipped]". Exit status 1 on any failure.
#   --unit-only / --integration-only    restrict
#   TESTS=pattern                        run only tests whose name matches
# Each test program prints its own totals as its last "N passed, N failed"
# line (pytest's summary line is understood too); a program that exits
# non-zero without printing totals counts as one failure.
set -uo pipefail
BUILD=${BUILD:-build}
BINDIR=${BINDIR:-bin}
export BUILD BINDIR
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mode=${1:-all}
pat=${TESTS:-}
# Debian's python3 has the test packages (pytest, acme, josepy, requests);
# a python3 earlier on PATH (pyenv, venv) may not.
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
logdir=$BUILD/test-logs
mkdir -p "$logdir"

P=0; F=0; S=0
failed_names=()

count_line() {
	# Extracts passed/failed/skipped from a log: our plain line or pytest's.
	local log=$1 line p f s
	line=$(grep -E '^(=+ )?([A-Za-z]+: )?[0-9]+ (passed|failed|skipped|errors?)' "$log" | tail -n 1)
	[ -n "$line" ] || line=$(grep -E '[0-9]+ (passed|failed|errors?)( |,|$)' "$log" | grep -E 'in [0-9.]+s|passed, [0-9]+ failed' | tail -n 1)
	[ -n "$line" ] || return 1
	p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
	f=$(echo "$line" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s += $1} END {print s + 0}')
	s=$(echo "$line" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || true)
	echo "${p:-0} ${f:-0} ${s:-0}"
}

run_one() {
	local name=$1; shift
	if [ -n "$pat" ] && [[ "$name" != *$pat* ]]; then return; fi
	local log="$logdir/$(echo "$name" | tr '/' '_').log"
	local start=$SECONDS rc counts p f s
	echo "=== $name"
	"$@" >"$log" 2>&1
	rc=$?
	if counts=$(count_line "$log"); then
		read -r p f s <<<"$counts"
	else
		p=0; f=0; s=0
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	P=$((P + p)); F=$((F + f)); S=$((S + s))
	if [ "$f" -ne 0 ]; then
		failed_names+=("$name")
		echo "--- $name FAILED (exit $rc); last lines of $log:"
		tail -n 40 "$log" | sed 's/^/    /'
	fi
	echo "    $name: $p passed, $f failed, $s skipped ($((SECONDS - start))s)"
}

if [ "$mode" != "--integration-only" ]; then
	for t in "$BUILD"/test/test_*; do
		[ -x "$t" ] || continue
		run_one "unit/$(basename "$t")" "$t"
	done
fi
if [ "$mode" != "--unit-only" ]; then
	for t in test/integration/test_*.sh; do
		[ -f "$t" ] || continue
		run_one "integration/$(basename "$t" .sh)" bash "$t"
	done
	if ls test/integration/test_*.py >/dev/null 2>&1; then
		for t in test/integration/test_*.py; do
			run_one "integration/$(basename "$t" .py)" "$PY" -m pytest -q -p no:cacheprovider "$t"
		done
	fi
fi

if [ "${#failed_names[@]}" -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
if [ "$S" -gt 0 ]; then
	echo "$P passed, $F failed, $S skipped"
else
	echo "$P passed, $F failed"
fi
[ "$F" -eq 0 ]
