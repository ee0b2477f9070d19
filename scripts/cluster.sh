#!/usr/bin/env bash
# A highly available Anvil on one host, "machines" being network namespaces
# (docs/scaling.md, "The test cluster"). Needs root (ip netns).
#
#   scripts/cluster.sh up        build the network, start everything, print
#                                ANVIL_DIRECTORY= and ANVIL_TRUST= (reachable
#                                from the machines: scripts/cluster.sh exec client ...)
#   scripts/cluster.sh run       up, then wait for Ctrl-C, then down (`make cluster`)
#   scripts/cluster.sh down      stop every process started and delete the
#                                namespaces and the state directory
#   scripts/cluster.sh status    machines, processes, the PostgreSQL leader
#   scripts/cluster.sh exec MACHINE CMD...    run CMD on a machine
#   scripts/cluster.sh kill MACHINE [SERVICE] SIGKILL one service (sa ca va ra
#                                wfe patroni etcd haproxy), or every process of
#                                the machine (a lost machine)
#   scripts/cluster.sh start MACHINE [SERVICE]  start it (them) again
#   scripts/cluster.sh partition MACHINE / heal MACHINE
#                                cut / restore the machine's link
#   scripts/cluster.sh leader    the name of the PostgreSQL primary (db1..db3)
#
# Machines (10.77.0.0/24, private to the namespaces made here): lb .5
# (HAProxy), etcd .10, db1-db3 .11-.13 (PostgreSQL + Patroni), app1-app2
# .21-.22 (one anvil-sa, -ca, -va, -ra, -wfe each, and a second anvil-sa
# "saro" on a hot standby for the WFEs' reads), client .100
# (pebble-challtestsrv: DNS for the VAs; load generators run here).
# Namespaces are named anvc-<pid of `up`>-<machine> and joined by a bridge
# inside their own hub namespace: nothing is added to the host's network.
# ANVIL_CLUSTER_DIR: state directory (default /var/tmp/anvil-cluster); it
# must be reachable by the postgres user. Several clusters may run at once
# with different directories.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BINDIR=${BINDIR:-$top/bin}
dir=${ANVIL_CLUSTER_DIR:-/var/tmp/anvil-cluster}
NET=10.77.0
declare -A ADDR=([lb]=5 [etcd]=10 [db1]=11 [db2]=12 [db3]=13 [app1]=21 [app2]=22 [client]=100)
MACHINES="lb etcd db1 db2 db3 app1 app2 client"
APP_SVCS="sa saro ca va ra wfe"
declare -A DEBUG=([sa]=8101 [ca]=8102 [va]=8103 [ra]=8104 [wfe]=8105 [saro]=8106)

die() { echo "cluster.sh: $*" >&2; exit 1; }
prefix() { cat "$dir/prefix" 2>/dev/null || true; }
ns() { echo "$(prefix)$1"; }
addr() { echo "$NET.${ADDR[$1]}"; }
log() { echo "cluster: $*" >&2; }

# Starts a process on a machine in the background; its pid in pids/.
spawn() {
	local m=$1 name=$2
	shift 2
	mkdir -p "$dir/pids" "$dir/log"
	ip netns exec "$(ns "$m")" setsid "$@" >>"$dir/log/$m-$name.log" 2>&1 </dev/null &
	echo "$! $(proc_stat $! | cut -d' ' -f2)" >"$dir/pids/$m-$name.pid"
}

# "STATE STARTTIME" of a pid (/proc/PID/stat fields 3 and 22; the command
# name before them may hold spaces).
proc_stat() { awk '{ sub(/.*\) /, ""); print $1, $20 }' "/proc/$1/stat" 2>/dev/null; }

# The pid of machine-name's process while it runs: not a zombie (killed,
# not yet reaped: `kill -0` would still succeed) and not another process
# that got the pid since (same start time as at spawn).
running_pid() {
	local p t st
	read -r p t 2>/dev/null <"$dir/pids/$1.pid" || return 1
	st=$(proc_stat "$p") || return 1
	case "$st" in Z\ * | X\ * | '') return 1 ;; esac
	[ -n "$t" ] && [ "${st#* }" = "$t" ] || return 1
	echo "$p"
}

alive() { running_pid "$1" >/dev/null; }
dead() { ! alive "$1"; }

# Polls CMD until it succeeds or SECONDS pass.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || die "timed out after ${secs}s waiting for $what (logs in $dir/log)"
		sleep 0.2
	done
}

in_ns() { local m=$1; shift; ip netns exec "$(ns "$m")" "$@"; }
http_ok() { in_ns client curl -fsS -m 2 -o /dev/null "$1"; }

net_up() {
	local p=$1 hub m
	hub=${p}hub
	ip netns add "$hub"
	ip -n "$hub" link set lo up
	ip -n "$hub" link add br0 type bridge
	ip -n "$hub" link set br0 up
	for m in $MACHINES; do
		ip netns add "$p$m"
		ip -n "$p$m" link set lo up
		ip -n "$hub" link add "v$m" type veth peer name eth0 netns "$p$m"
		ip -n "$hub" link set "v$m" master br0 up
		ip -n "$p$m" addr add "$(addr "$m")/24" dev eth0
		ip -n "$p$m" link set eth0 up
	done
}

start_etcd() {
	local a
	a=$(addr etcd)
	mkdir -p "$dir/etcd"
	spawn etcd etcd etcd --name etcd --data-dir "$dir/etcd/data" \
		--listen-client-urls "http://$a:2379" --advertise-client-urls "http://$a:2379" \
		--listen-peer-urls "http://$a:2380" --initial-advertise-peer-urls "http://$a:2380" \
		--initial-cluster "etcd=http://$a:2380" --initial-cluster-state new \
		--heartbeat-interval 100 --election-timeout 1000
}

start_patroni() {
	local db=$1
	chown -R postgres:postgres "$dir/$db"
	chmod 700 "$dir/$db"
	# setpriv execs (no fork), so the pid is Patroni's.
	spawn "$db" patroni setpriv --reuid postgres --regid postgres --init-groups \
		env HOME="$dir/$db" /usr/bin/patroni "$dir/$db/patroni.yml"
}

start_app() {
	local app=$1 svc=$2
	spawn "$app" "$svc" "$BINDIR/anvil-${svc%ro}" --config "$dir/$app/$svc.json"
}

start_haproxy() { spawn lb haproxy /usr/sbin/haproxy -db -f "$dir/lb/haproxy.cfg"; }

start_challtestsrv() {
	spawn client challtestsrv /usr/bin/pebble-challtestsrv -dns01 "$(addr client):8053" \
		-management "$(addr client):8055" -defaultIPv4 "$(addr client)" -defaultIPv6 "" \
		-http01 "" -https01 "" -tlsalpn01 ""
}

leader_once() {
	local db
	for db in db1 db2 db3; do
		if in_ns client curl -fsS -m 3 -o /dev/null "http://$(addr "$db"):8008/primary" 2>/dev/null; then
			echo "$db"
			return 0
		fi
	done
	return 1
}

# The primary, asked until one answers (up to ${1:-60} s): Patroni's REST API
# can take seconds on a loaded machine, and a single miss (one slow answer,
# a failover in progress) is not "no primary".
leader() {
	local end=$((SECONDS + ${1:-60}))
	until leader_once; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.5
	done
}

# Every PostgreSQL node answers QUERY on the anvil database with WANT.
every_node_answers() {
	local db
	for db in db1 db2 db3; do
		[ "$(in_ns client psql -h "$(addr "$db")" -U postgres -d anvil -qAtX -c "$1")" = "$2" ] || return 1
	done
}

# The database exists on every node: CREATE DATABASE returns once the
# synchronous standby has flushed it, not applied it, and libpq gives up on
# a multi-host DSN at the first node that answers "database does not exist"
# (it only moves on when a node cannot be reached), so the migration and the
# SAs must not start before every replica has replayed it.
db_everywhere() { every_node_answers "SELECT 1" 1; }

# Every node has replayed the whole schema: the read SAs ("saro",
# prefer-standby) check the schema version when they start and refuse a
# database older than their schema files, and an asynchronous standby may
# still be replaying the migration when it returns on the primary.
schema_everywhere() {
	local want
	want=$(ls "$top/schema" | sed -n 's/^0*\([0-9][0-9]*\)_.*\.sql$/\1/p' | sort -n | tail -n 1)
	every_node_answers "SELECT max(version) FROM schema_migrations" "$want"
}

# Primary and one synchronous standby streaming.
pg_ready() {
	local l
	l=$(leader_once) || return 1
	in_ns client psql -h "$(addr "$l")" -U postgres -d postgres -qAtX \
		-c "SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'" | grep -q 1
}

wfe_cert() {
	local pki=$dir/pki
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$pki/tls-root.key" -out "$pki/tls-root.pem" -days 3650 \
		-subj "/O=Anvil cluster test/CN=Anvil cluster TLS root" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$pki/wfe-tls.key" -out "$pki/wfe-tls.csr" \
		-subj "/O=Anvil cluster test/CN=$(addr lb)" 2>/dev/null
	printf 'subjectAltName=IP:%s,DNS:acme.cluster.test\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' \
		"$(addr lb)" >"$pki/wfe-tls.ext"
	openssl x509 -req -in "$pki/wfe-tls.csr" -CA "$pki/tls-root.pem" -CAkey "$pki/tls-root.key" \
		-CAcreateserial -out "$pki/wfe-tls.pem" -days 30 -extfile "$pki/wfe-tls.ext" 2>/dev/null
	rm -f "$pki/wfe-tls.csr" "$pki/wfe-tls.ext"
	cat "$pki/tls-root.pem" "$pki/roots.pem" >"$pki/trust.pem"
}

log_tails() {
	local f
	for f in "$dir"/log/*.log; do
		[ -e "$f" ] || continue
		echo "---- $(basename "$f")" >&2
		tail -n 4 "$f" >&2
	done
}

cmd_up() {
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
	[ ! -e "$dir/prefix" ] || die "a cluster is already up in $dir (scripts/cluster.sh down first)"
	local t0=$SECONDS p m db app svc l
	mkdir -p "$dir"
	chmod 755 "$dir"
	# pid and a random part: the namespaces outlive this process (a
	# running cluster), so a later `up` may get the same pid
	p="anvc-$$-$RANDOM-"
	echo "$p" >"$dir/prefix"
	# From here on a failure (or an interrupt) tears down what was made.
	trap 'if [ "${up_ok:-0}" != 1 ]; then echo "cluster.sh: up failed; tearing down" >&2; log_tails; cmd_down >&2; fi' EXIT
	trap 'exit 1' INT TERM
	net_up "$p"
	log "network: $MACHINES ($NET.0/24 in namespaces ${p}*)"
	python3 "$top/scripts/cluster-config.py" "$top" "$dir"
	"$BINDIR/anvil-admin" ca init --dir "$dir/pki" >>"$dir/ceremony.log" 2>&1 || die "ca init failed ($dir/ceremony.log)"
	"$top/scripts/mkipki.sh" "$dir/pki/rpc" >>"$dir/ceremony.log" 2>&1 || die "mkipki failed"
	wfe_cert
	start_etcd
	start_challtestsrv
	wait_for 30 etcd in_ns client etcdctl --endpoints "http://$(addr etcd):2379" endpoint health
	# All three at once: one wins the initialize key in etcd and runs
	# initdb, the others wait for it and clone it (pg_basebackup).
	start_patroni db1
	start_patroni db2
	start_patroni db3
	wait_for 180 "a PostgreSQL primary" leader_once
	wait_for 180 "a synchronous standby" pg_ready
	l=$(leader) || die "no PostgreSQL primary answers"
	in_ns client psql -h "$(addr "$l")" -U postgres -d postgres -qAtX -c "CREATE DATABASE anvil" >/dev/null
	wait_for 120 "database anvil on every PostgreSQL node" db_everywhere
	in_ns app1 "$BINDIR/anvil-sa" --config "$dir/app1/sa.json" --migrate >>"$dir/log/migrate.log" 2>&1 \
		|| die "migration failed ($dir/log/migrate.log)"
	wait_for 120 "the schema on every PostgreSQL node" schema_everywhere
	log "PostgreSQL: primary $(leader), synchronous standby streaming ($((SECONDS - t0)) s)"
	for svc in $APP_SVCS; do
		for app in app1 app2; do start_app "$app" "$svc"; done
	done
	for svc in $APP_SVCS; do
		for app in app1 app2; do
			wait_for 60 "$svc on $app" http_ok "http://$(addr "$app"):${DEBUG[$svc]}/healthz"
		done
	done
	start_haproxy
	wait_for 30 "HAProxy" in_ns client curl -fsS -m 2 --cacert "$dir/pki/trust.pem" \
		-o /dev/null "https://$(addr lb):4431/directory"
	up_ok=1
	log "up in $((SECONDS - t0)) s"
	echo "ANVIL_DIRECTORY=https://$(addr lb):4431/directory"
	echo "ANVIL_TRUST=$dir/pki/trust.pem"
	echo "ANVIL_CLUSTER_CLIENT_NETNS=$(ns client)"
	echo "ANVIL_CLUSTER_DSN=host=$(addr lb) port=5000 dbname=anvil user=postgres"
}

cmd_down() {
	local p m pid n end
	p=$(prefix)
	[ -n "$p" ] || { rm -rf "$dir"; return 0; }
	# Every process in our namespaces (what we started and their children).
	for sig in TERM KILL; do
		n=0
		for m in $MACHINES hub; do
			ip netns list 2>/dev/null | grep -q "^$p$m\b" || continue
			for pid in $(ip netns pids "$p$m" 2>/dev/null); do
				kill -"$sig" "$pid" 2>/dev/null && n=$((n + 1))
			done
		done
		[ "$sig" = KILL ] && break
		[ "$n" -gt 0 ] || break
		# Up to 20 s for them to exit, then KILL. Bounded by time, not by
		# a count of passes: a pass forks per machine, and on a loaded
		# machine 50 passes over 9 machines took minutes (test-cluster
		# gives `down` 600 s). A namespace already gone has no pids.
		end=$((SECONDS + 20))
		while [ $SECONDS -lt $end ]; do
			n=0
			for m in $MACHINES; do
				[ -z "$(ip netns pids "$p$m" 2>/dev/null)" ] || { n=1; break; }
			done
			[ "$n" -eq 0 ] && break
			sleep 0.2
		done
	done
	for f in "$dir"/pids/*.pid; do
		[ -e "$f" ] || continue
		pid=$(running_pid "$(basename "$f" .pid)") && kill -KILL "$pid" 2>/dev/null || true
	done
	for m in $MACHINES hub; do
		ip netns del "$p$m" 2>/dev/null || true
	done
	rm -rf "$dir"
}

cmd_status() {
	local p m f name
	p=$(prefix)
	[ -n "$p" ] || { echo "no cluster in $dir"; return 1; }
	for m in $MACHINES; do
		printf '%-7s %-15s' "$m" "$(addr "$m")"
		for f in "$dir"/pids/"$m"-*.pid; do
			[ -e "$f" ] || continue
			name=$(basename "$f" .pid)
			name=${name#"$m"-}
			if alive "$m-$name"; then printf ' %s' "$name"; else printf ' %s(down)' "$name"; fi
		done
		if ip -n "${p}hub" link show "v$m" 2>/dev/null | grep -q ',UP'; then echo; else echo " [partitioned]"; fi
	done
	echo "PostgreSQL primary: $(leader 5 || echo none)"
}

cmd_kill() {
	local m=${1:?machine} svc=${2:-} pid
	if [ -n "$svc" ]; then
		pid=$(running_pid "$m-$svc") || die "no $svc running on $m"
		kill -KILL "$pid" 2>/dev/null || true
		# gone (or a zombie) before we return: a `start` right after
		# must see it down, and its ports free
		wait_for 10 "$svc on $m to exit" dead "$m-$svc"
	else
		# A lost machine: its link goes first (no client may reach
		# what is still running there), then every process, again
		# until none is left: a process forks while we kill (the
		# postmaster a backend, Patroni a postgres), and a child
		# missed by one pass would go on serving as if the machine
		# were up.
		ip -n "$(prefix)hub" link set "v$m" down
		wait_for 10 "every process on $m to exit" machine_empty "$m"
	fi
}

# SIGKILLs every process of machine m; true when there was none.
machine_empty() {
	local pids
	pids=$(ip netns pids "$(ns "$1")")
	[ -n "$pids" ] || return 0
	kill -KILL $pids 2>/dev/null || true
	return 1
}

cmd_start() {
	local m=${1:?machine} svc=${2:-}
	# a machine lost whole (kill MACHINE) comes back with its link
	[ -n "$svc" ] || ip -n "$(prefix)hub" link set "v$m" up
	case "$m" in
	app*) for s in ${svc:-$APP_SVCS}; do alive "$m-$s" || start_app "$m" "$s"; done ;;
	db*) alive "$m-patroni" || start_patroni "$m" ;;
	etcd) alive etcd-etcd || start_etcd ;;
	lb) alive lb-haproxy || start_haproxy ;;
	client) alive client-challtestsrv || start_challtestsrv ;;
	*) die "unknown machine $m" ;;
	esac
}

cmd_partition() { ip -n "$(prefix)hub" link set "v${1:?machine}" down; }
cmd_heal() { ip -n "$(prefix)hub" link set "v${1:?machine}" up; }

# `make cluster`: up, then in the foreground until Ctrl-C, then down.
cmd_run() {
	cmd_up
	trap 'cmd_down; exit 0' INT TERM
	log "running; Ctrl-C stops and removes it (machines: scripts/cluster.sh exec client CMD...)"
	while :; do sleep 1; done
}

case "${1:-}" in
up) cmd_up ;;
run) cmd_run ;;
down) cmd_down ;;
status) cmd_status ;;
exec) shift; m=${1:?machine}; shift; in_ns "$m" "$@" ;;
kill) shift; cmd_kill "$@" ;;
start) shift; cmd_start "$@" ;;
partition) shift; cmd_partition "$@" ;;
heal) shift; cmd_heal "$@" ;;
leader) leader ;;
*) echo "usage: scripts/cluster.sh up|down|status|exec|kill|start|partition|heal|leader" >&2; exit 2 ;;
esac
