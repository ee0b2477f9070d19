#!/usr/bin/env bash
# Runs the RPC frame decoder's libFuzzer target briefly (scripts/fuzz.sh),
# so `make test` exercises it; `make fuzz` runs it longer.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
secs=${RPC_FUZZ_SECONDS:-5}
if ! command -v clang >/dev/null; then
	echo "skip   - fuzz_rpc_frame (clang not installed)"
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
fi
if FUZZ_BUILD="$BUILD/fuzz" scripts/fuzz.sh "$secs" rpc_frame; then
	echo "ok     - fuzz_rpc_frame ran ${secs}s without a crash"
	echo "1 passed, 0 failed"
else
	echo "not ok - fuzz_rpc_frame found a crash (see $BUILD/fuzz/crashes/)"
	echo "0 passed, 1 failed"
	exit 1
fi
