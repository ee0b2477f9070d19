# shellcheck shell=bash
# Sourced (bash) by the shell tests, after `set -uo pipefail`:
#   $top                 the repository top (the caller cd's there if it wants)
#   ok NAME, bad NAME    count one passed / failed test and print its line
#   check NAME CMD...    ok NAME when CMD succeeds, else bad NAME; with
#                        CHECK_QUIET=1 the command's output is discarded
#   finish               prints "P passed, F failed" (scripts/run-tests.sh
#                        sums these lines) and exits, 0 only without failures
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
P=0
F=0
ok() { P=$((P + 1)); echo "ok     - $1"; }
bad() { F=$((F + 1)); echo "not ok - $1"; }
check() {
	local name=$1
	shift
	if [ "${CHECK_QUIET:-0}" = 1 ]; then
		"$@" >/dev/null 2>&1
	else
		"$@"
	fi && ok "$name" || bad "$name"
}
finish() {
	echo "$P passed, $F failed"
	[ "$F" -eq 0 ]
	exit $?
}
