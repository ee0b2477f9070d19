#!/usr/bin/env bash
# `make run`: bootstrap what is missing under var/, then start everything with
# the launcher in the foreground until SIGINT/SIGTERM.
#   scripts/run.sh [--test-mode | --pebble-compat] [--reset]
# --test-mode      configs/testmode, state in var/testmode (docs/testing-clients.md)
# --pebble-compat  configs/pebble-compat (Pebble's ports), state in var/pebble-compat
# --reset          throw the private database away: start from an empty, migrated
#                  one (every table emptied, ids restarted: ~0.1 s, not a new
#                  initdb); the throwaway test CA under VAR/pki is kept
# ANVIL_RUN_CONFIG_DIR / ANVIL_RUN_VAR_DIR override the directories (tests run a
# relocated copy made by scripts/mkconfig.py this way).
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
cfg=${ANVIL_RUN_CONFIG_DIR:-$cfg}
var=${ANVIL_RUN_VAR_DIR:-$var}
export BINDIR=${BINDIR:-$top/bin}

if [ -e "$var/run/anvil.lock" ] && command -v flock >/dev/null && ! flock -n "$var/run/anvil.lock" true; then
	echo "anvil: already running (pid $(cat "$var/run/anvil.lock" 2>/dev/null || echo '?')); stop it first (Ctrl-C in its terminal)" >&2
	exit 1
fi

while IFS= read -r line; do
	case "$line" in ANVIL_*=*) export "${line?}" ;; esac
done < <(scripts/bootstrap.sh "$cfg" "$var")

# --reset: every table but schema_migrations emptied, identities restarted
# (the same as a new database, in ~0.1 s instead of an initdb).
if [ "${reset:-0}" = 1 ]; then
	psql "$ANVIL_SA_DSN" -qAtX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
DO $$
DECLARE t text;
BEGIN
	SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') INTO t
	FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations';
	IF t IS NOT NULL THEN
		EXECUTE 'TRUNCATE ' || t || ' RESTART IDENTITY CASCADE';
	END IF;
END $$;
SQL
fi

trap 'scripts/pg.sh stop "$var/pg"' EXIT
"$BINDIR/anvil" run --config-dir "$cfg"
