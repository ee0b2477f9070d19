#!/usr/bin/env bash
# A private PostgreSQL cluster for Anvil: Unix socket only, no TCP.
#   scripts/pg.sh start DIR [DBNAME]  initdb if needed, start, create DB; prints the DSN
#   scripts/pg.sh stop DIR            fast shutdown
#   scripts/pg.sh dsn DIR [DBNAME]    prints the DSN
#   scripts/pg.sh status DIR          exit 0 when running
#   scripts/pg.sh destroy DIR         stop (fast, then immediate) and remove the
#                                     cluster, its /var/tmp fallback included
# ANVIL_PG_OPTIONS (optional) is passed to the server at start (pg_ctl -o),
# e.g. "-c shared_preload_libraries=pg_stat_statements" for make bench.
# As root, the cluster runs as the `postgres` user (PostgreSQL refuses root).
# If `postgres` cannot reach DIR (e.g. a home directory with mode 0700, or a
# mktemp -d directory), the data lives under $ANVIL_PG_FALLBACK (default
# /var/tmp) as anvil-pg-<hash of DIR>, and DIR becomes a symlink to it; only
# `destroy` removes that directory. Tools run as `postgres` start from /, so
# a working directory `postgres` cannot enter (a private clone) is no error.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$PGBIN/initdb" ] || { echo "pg.sh: PostgreSQL server binaries not found (install postgresql)" >&2; exit 1; }

cmd=${1:?usage: pg.sh start|stop|dsn|status|destroy DIR [DBNAME]}
dir=${2:?usage: pg.sh start|stop|dsn|status|destroy DIR [DBNAME]}
db=${3:-anvil}
mkdir -p "$(dirname "$dir")"
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

real_dir() {
	if [ -L "$dir" ]; then readlink -f "$dir"; else echo "$dir"; fi
}

dsn() { echo "host=$(real_dir)/sock dbname=$db user=$(pguser)"; }
pguser() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }

case "$cmd" in
dsn) dsn; exit 0 ;;
status) [ -d "$(real_dir)/data" ] && as_pg "$PGBIN/pg_ctl" -D "$(real_dir)/data" status >/dev/null 2>&1; exit $? ;;
stop)
	if [ -d "$(real_dir)/data" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$(real_dir)/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	exit 0 ;;
destroy)
	rd=$(real_dir)
	if [ -d "$rd/data" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$rd/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
			as_pg "$PGBIN/pg_ctl" -D "$rd/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
		if as_pg "$PGBIN/pg_ctl" -D "$rd/data" status >/dev/null 2>&1; then
			echo "pg.sh: cluster $rd still running, not removed" >&2
			exit 1
		fi
	fi
	if [ -L "$dir" ]; then rm -rf "$rd"; rm -f "$dir"; else rm -rf "$dir"; fi
	exit 0 ;;
start) ;;
*) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac

# An empty directory the caller made is as good as none.
if [ -d "$dir" ] && [ ! -L "$dir" ] && [ -z "$(ls -A "$dir")" ]; then rmdir "$dir"; fi
if [ ! -e "$dir" ]; then
	mkdir -p "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres:postgres "$dir"
		if ! runuser -u postgres -- test -w "$dir"; then
			rmdir "$dir"
			alt=${ANVIL_PG_FALLBACK:-/var/tmp}/anvil-pg-$(echo "$dir" | md5sum | cut -c1-12)
			mkdir -p "$alt" && chown postgres:postgres "$alt"
			ln -s "$alt" "$dir"
		fi
	fi
fi
rd=$(real_dir)
if [ ! -s "$rd/data/PG_VERSION" ]; then
	as_pg "$PGBIN/initdb" -D "$rd/data" -U "$(pguser)" --auth-local=trust --auth-host=reject \
		-E UTF8 --locale=C.UTF-8 >"$rd/initdb.log" 2>&1 || { cat "$rd/initdb.log" >&2; exit 1; }
	as_pg mkdir -p "$rd/sock"
	cat >>"$rd/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$rd/sock'
unix_socket_permissions = 0700
synchronous_commit = on
fsync = on
max_connections = 200
shared_buffers = 128MB
logging_collector = off
CONF
fi
if ! as_pg "$PGBIN/pg_ctl" -D "$rd/data" status >/dev/null 2>&1; then
	as_pg "$PGBIN/pg_ctl" -D "$rd/data" -l "$rd/postgres.log" -w -t 60 ${ANVIL_PG_OPTIONS:+-o "$ANVIL_PG_OPTIONS"} start >/dev/null \
		|| { tail -n 20 "$rd/postgres.log" >&2; exit 1; }
fi
if ! psql "host=$rd/sock dbname=postgres user=$(pguser)" -Atqc "select 1 from pg_database where datname='$db'" | grep -q 1; then
	psql "host=$rd/sock dbname=postgres user=$(pguser)" -qc "create database \"$db\"" >/dev/null
fi
dsn
