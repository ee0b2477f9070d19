#!/usr/bin/env bash
# Builds every test/fuzz/fuzz_*.c as a libFuzzer target with clang
# (-fsanitize=fuzzer,address,undefined) and runs each for SECONDS.
#   scripts/fuzz.sh [SECONDS] [PATTERN]
# A target's first line "/* LIBS: rpc core */" names the libraries it needs
# (in link order); their sources are compiled by clang into $FUZZ_BUILD
# (default build-fuzz/). Optional: test/fuzz/<target>.dict (libFuzzer
# dictionary) and test/fuzz/corpus/<target>/ (seed inputs, read only). Crashes are saved as $FUZZ_BUILD/crashes/<target>/...
# and make the script exit 1; a crash should become a unit test.
# Env: FUZZ_BUILD, FUZZ_JOBS (parallel compile, default nproc), FUZZ_STEP
# (build: compile and link only; run: run what an earlier build step made,
# touching no file of the build, so several runs may go at once; default both).
set -euo pipefail
secs=${1:-60}
pat=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=${FUZZ_BUILD:-build-fuzz}
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || { echo "fuzz.sh: clang not found" >&2; exit 1; }
PKGS="openssl libmicrohttpd jansson libcares libevent libevent_pthreads libpq libcbor libcurl"
pcflags=$(pkg-config --cflags $PKGS 2>/dev/null || true)
pclibs=$(pkg-config --libs $PKGS 2>/dev/null || echo "-lssl -lcrypto -ljansson -levent -levent_pthreads -lcbor -lcurl")
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -I. $pcflags $SAN"
mkdir -p "$out/obj" "$out/bin" "$out/crashes"
jobs=${FUZZ_JOBS:-$(nproc)}
step=${FUZZ_STEP:-all}

# Compiles lib dir $1 (all its .c) into $out/lib$1.a, only what changed,
# FUZZ_JOBS compilers at a time.
build_lib() {
	local d=$1 objs=() todo=() src obj
	for src in "$d"/*.c; do
		[ -f "$src" ] || continue
		obj="$out/obj/${src%.c}.o"
		mkdir -p "$(dirname "$obj")"
		if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$d/$d.h" -nt "$obj" ] || [ core/core.h -nt "$obj" ]; then
			todo+=("$src")
		fi
		objs+=("$obj")
	done
	if [ ${#todo[@]} -gt 0 ]; then
		printf '%s\0' "${todo[@]}" |
			xargs -0 -P "$jobs" -I{} sh -c '"$1" $2 -fsanitize=fuzzer-no-link -c "$3" -o "$4/obj/${3%.c}.o"' \
				sh "$CLANG" "$CFLAGS" {} "$out"
	fi
	rm -f "$out/lib$d.a"
	ar rcs "$out/lib$d.a" "${objs[@]}"
}

status=0
ran=0
declare -A built=()
for t in test/fuzz/fuzz_*.c; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .c)
	if [ -n "$pat" ] && [[ "$name" != *$pat* ]]; then continue; fi
	libs=$(sed -n '1s@.*LIBS:\([a-z ]*\).*@\1@p' "$t")
	[ -n "$libs" ] || libs="core"
	archives=()
	for l in $libs; do
		if [ -z "${built[$l]:-}" ] && [ "$step" != run ]; then
			build_lib "$l"
			built[$l]=1
		fi
		archives+=("$out/lib$l.a")
	done
	if [ "$step" != run ]; then
		"$CLANG" $CFLAGS -fsanitize=fuzzer "$t" -o "$out/bin/$name" \
			-Wl,--start-group "${archives[@]}" -Wl,--end-group $pclibs -lpthread -lm
	fi
	if [ "$step" = build ]; then
		echo "=== $name built"
		ran=$((ran + 1))
		continue
	fi
	echo "=== $name (libs: $libs) for ${secs}s"
	mkdir -p "$out/corpus/$name" "$out/crashes/$name"
	extra=()
	# Optional next to the target: <name>.dict, and seeds in corpus/<name>/.
	[ -f "test/fuzz/$name.dict" ] && extra+=("-dict=test/fuzz/$name.dict")
	seeds=()
	[ -d "test/fuzz/corpus/$name" ] && seeds+=("test/fuzz/corpus/$name")
	if ! "$out/bin/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$out/crashes/$name/" -print_final_stats=1 "${extra[@]}" \
		"$out/corpus/$name" "${seeds[@]}" 2>"$out/$name.log"; then
		echo "--- $name FAILED; see $out/$name.log and $out/crashes/$name/"
		tail -n 30 "$out/$name.log"
		status=1
	else
		grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$out/$name.log" | tail -n 2
	fi
	ran=$((ran + 1))
done
echo "fuzz.sh: $ran target(s) run, status $status"
exit $status
