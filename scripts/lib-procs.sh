# Sourced (bash) by the scripts and tests that start background processes:
#   procs_init DIR_TEMPLATE    makes $tmp (mktemp -d DIR_TEMPLATE), empties
#                              the pids array and sets an EXIT trap that
#                              sends SIGTERM to every pid in pids, waits for
#                              them, runs procs_extra_cleanup if the
#                              script defines it, and removes $tmp
#   pids+=($!)                 after starting each background process
# shellcheck shell=bash
procs_cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if declare -F procs_extra_cleanup >/dev/null; then
		procs_extra_cleanup || true
	fi
	rm -rf "$tmp"
}

procs_init() {
	tmp=$(mktemp -d "$1") || exit 1
	pids=()
	trap procs_cleanup EXIT
}
