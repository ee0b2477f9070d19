#!/usr/bin/env bash
# Lists C functions longer than a limit (default 100 lines), longest first:
# "<lines> <file>:<line of the opening brace> <name>".
#   scripts/long-functions.sh [--limit N] [FILE...]
# Without FILEs: every non-test .c file of the tree (the ones git tracks, or
# all under the top folder outside a git checkout). A function is a
# top-level definition whose name starts a line and whose body runs from a
# "{" to a "}" at column 0, the project's style (docs/development.md);
# test/integration/test_function_length.sh keeps the tree under the limit.
set -euo pipefail
limit=100
if [ "${1:-}" = "--limit" ]; then
	limit=$2
	shift 2
fi
list_files() {
	if [ "$#" -gt 0 ]; then
		printf '%s\n' "$@"
		return
	fi
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files '*.c'
	else
		find . -name '*.c' -not -path './build*' | sed 's@^\./@@'
	fi | grep -v '^test/'
}
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$#" -gt 0 ] || cd "$top"
list_files "$@" | while read -r f; do
	awk -v F="$f" -v L="$limit" '
/^[a-zA-Z_][a-zA-Z0-9_]*\(/ {n=$0; sub(/\(.*/,"",n); c=1}
/^\{/ {if (c) {s=NR; fn=n}}
/^\}/ {if (s) {if (NR-s+1>L) print NR-s+1, F":"s, fn; s=0; c=0}}' "$f"
done | sort -rn
