# shellcheck shell=bash
# Sourced by test_rpc_unix.sh and test_rpc_tls.sh (after set -uo pipefail):
#   . lib/rpc_test.sh NAME   lib/tap.sh, cd to the top, $BINDIR, $RPC (the
#                            test fails at once when it is not built), and
#                            $tmp (/tmp/NAME.XXXXXX) with scripts/lib-procs.sh
#                            stopping $pids and removing $tmp at exit
# The test then defines $srv (the serve-test pid) and start_server for:
#   stress_across_restart OUT STRESS-ARGS...
#       runs `$RPC stress STRESS-ARGS...` (its output in OUT, then echoed)
#       while the server is killed (SIGKILL) and started again; returns the
#       stress run's exit status
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
cd "$top" || exit 1
BINDIR=${BINDIR:-bin}
RPC=$BINDIR/anvil-rpc
. scripts/lib-procs.sh
procs_init "/tmp/$1.XXXXXX"
[ -x "$RPC" ] || {
	echo "missing $RPC"
	echo "0 passed, 1 failed"
	exit 1
}

stress_across_restart() {
	local out=$1 sp rc
	shift
	"$RPC" stress "$@" >"$out" 2>&1 &
	sp=$!
	sleep 1.5
	kill -KILL "$srv"
	wait "$srv" 2>/dev/null
	sleep 0.5
	start_server
	wait "$sp"
	rc=$?
	echo "    $(cat "$out")"
	return $rc
}
