#!/usr/bin/env bash
# The suite's PostgreSQL start from a private checkout (issue 19): a clone in
# a directory only root can enter (mode 0700, like /root/anvil or mktemp -d).
# PostgreSQL runs as `postgres`, which can neither enter the clone nor the
# test's temporary directory; scripts/pg.sh must fall back (to
# $ANVIL_PG_FALLBACK, here a directory of this test's own), and every
# cluster started must be stopped and removed at the end, whatever the
# outcome: nothing left running, nothing left on disk.
set -uo pipefail
. "$(dirname "$0")/lib/tap.sh" # $top, ok/bad/check/finish

if [ "$(id -u)" -ne 0 ]; then
	# Not root: PostgreSQL runs as the caller, who can enter the clone.
	echo "ok     - not root: the private-clone case does not arise"
	echo "1 passed, 0 failed"; exit 0
fi
id postgres >/dev/null 2>&1 || { echo "no postgres user"; echo "0 passed, 1 failed"; exit 1; }

priv=$(mktemp -d /tmp/anvil-private.XXXXXX)   # 0700, root
fb=$(mktemp -d /var/tmp/anvil-pgtest.XXXXXX)  # the fallback of this test only
chmod 0755 "$fb"
cleanup() {
	for d in "$fb"/anvil-pg-*; do
		[ -d "$d/data" ] && runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pg_ctl" \
			-D "$d/data" -m immediate stop >/dev/null 2>&1
	done
	rm -rf "$priv" "$fb"
}
trap cleanup EXIT

check "private directory is 0700 and postgres cannot enter it" \
	bash -c '[ "$(stat -c %a "$0")" = 700 ] && ! runuser -u postgres -- test -x "$0"' "$priv"
mkdir -p "$priv/anvil/build/test"
ln -s "$top/scripts" "$priv/anvil/scripts"
ln -s "$top/schema" "$priv/anvil/schema"
cp "$top/build/test/test_sa" "$priv/anvil/build/test/"

leftovers() {
	local n
	n=$(find "$fb" -mindepth 1 -maxdepth 1 | wc -l)
	[ "$n" -eq 0 ] || { echo "    left in $fb:"; ls -la "$fb"; return 1; }
	if pgrep -f -- "$fb" >/dev/null; then
		echo "    still running:"; pgrep -af -- "$fb"; return 1
	fi
	return 0
}

# 1. pg.sh itself, working directory inside the private clone.
dsn=$(cd "$priv/anvil" && ANVIL_PG_FALLBACK=$fb scripts/pg.sh start "$priv/pg" 2>"$priv/err")
rc=$?
check "pg.sh start from the private clone (rc=$rc: $(head -c 300 "$priv/err"))" [ "$rc" -eq 0 ]
check "the cluster answers" bash -c 'psql "$0" -Atqc "select 1" 2>/dev/null | grep -qx 1' "$dsn"
check "its data fell back under ANVIL_PG_FALLBACK" bash -c '[ -L "$0/pg" ] && readlink -f "$0/pg" | grep -q "^$1/anvil-pg-"' "$priv" "$fb"
(cd "$priv/anvil" && scripts/pg.sh destroy "$priv/pg") >/dev/null 2>&1
check "pg.sh destroy leaves nothing running and nothing in the fallback" leftovers
check "pg.sh destroy removed the symlink" bash -c '[ ! -e "$0/pg" ] && [ ! -L "$0/pg" ]' "$priv"

# 2. The unit suite that starts PostgreSQL (unit/test_sa), run from the clone.
out=$(cd "$priv/anvil" && ANVIL_PG_FALLBACK=$fb timeout 600 build/test/test_sa 2>&1)
rc=$?
echo "$out" | tail -n 3 | sed 's/^/    /'
check "unit/test_sa passes from a private clone" bash -c '[ '"$rc"' -eq 0 ] && grep -q " 0 failed" <<<"$0"' "$out"
check "unit/test_sa left no cluster running and nothing on disk" leftovers

finish
