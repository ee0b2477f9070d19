#!/usr/bin/env bash
# `make run`: bootstrap what is missing under var/, then start everything with
# the launcher in the foreground until SIGINT/SIGTERM.
#   scripts/run.sh [--test-mode | --pebble-compat] [--reset]
# --test-mode      configs/testmode, state in var/testmode (docs/testing-clients.md)
# --pebble-compat  configs/pebble-compat (Pebble's ports), state in var/pebble-compat
# --reset          throw the private database away first (a fresh, empty one
#                  is made); the throwaway test CA is kept
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
cfg=configs/dev
var=var
for a in "$@"; do
	case "$a" in
	--test-mode) cfg=configs/testmode; var=var/testmode ;;
	--pebble-compat) cfg=configs/pebble-compat; var=var/pebble-compat ;;
	--reset) reset=1 ;;
	*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
	esac
done
export BINDIR=${BINDIR:-$top/bin}

if [ -e "$var/run/anvil.lock" ] && command -v flock >/dev/null && ! flock -n "$var/run/anvil.lock" true; then
	echo "anvil: already running (pid $(cat "$var/run/anvil.lock" 2>/dev/null || echo '?')); stop it first (Ctrl-C in its terminal)" >&2
	exit 1
fi
if [ "${reset:-0}" = 1 ]; then
	scripts/pg.sh stop "$var/pg" || true
	rm -rf "$var/pg"
fi

while IFS= read -r line; do
	case "$line" in ANVIL_*=*) export "${line?}" ;; esac
done < <(scripts/bootstrap.sh "$cfg" "$var")

trap 'scripts/pg.sh stop "$var/pg"' EXIT
"$BINDIR/anvil" run --config-dir "$cfg"
