#!/usr/bin/env bash
# `make bench` (after the build): Anvil next to Pebble with anvil-loadgen
# and wrk, server CPU per issuance and RSS from /proc, then the per-module
# bench scripts. Prints a table and the Anvil/Pebble ratios, writes
# bench/results.json, asserts nothing, finishes in under 10 minutes.
# Details and knobs: scripts/bench.py; results: docs/performance.md.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export BUILD=${BUILD:-build}
export BINDIR=${BINDIR:-bin}
exec python3 scripts/bench.py "$@"
