#!/bin/sh
# tests/fuzz_smoke/run.sh - CI smoke of the libFuzzer targets (tests/fuzz):
# builds each with clang -fsanitize=fuzzer,address and runs it for
# FUZZ_SMOKE_SECONDS (default 3) from its seed corpus; a crash, leak or
# sanitizer report fails the point. Skips, saying why, without clang or
# libFuzzer. `make fuzz` is the long run.
src=${KVF_SRC:-$(pwd)}
build=${KVF_BUILD:-$src/build/release}
secs=${FUZZ_SMOKE_SECONDS:-3}
out=$build/fuzz
cc=${FUZZ_CC:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
	echo "1..0 # SKIP $cc not found (install clang for the fuzz targets)"
	exit 0
fi
tmp=$(mktemp -d) || { echo "1..0 # SKIP mktemp failed"; exit 0; }
trap 'rm -rf "$tmp"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' >"$tmp/t.c"
if ! "$cc" -fsanitize=fuzzer,address -o "$tmp/t" "$tmp/t.c" >"$tmp/log" 2>&1; then
	echo "1..0 # SKIP $cc cannot link -fsanitize=fuzzer: $(head -1 "$tmp/log")"
	exit 0
fi
targets=$(cd "$src/tests/fuzz" && ls *.c | sed 's/\.c$//')
n=$(echo "$targets" | wc -w)
echo "1..$((n + 1))"
if make -C "$src" --no-print-directory BUILD="$build" FUZZ_OUT="$out" \
	FUZZ_CC="$cc" fuzz-build >"$tmp/build.log" 2>&1; then
	echo "ok 1 - fuzz targets build"
else
	echo "not ok 1 - fuzz targets build"
	sed 's/^/# /' "$tmp/build.log" | tail -20
fi
i=1
for t in $targets; do
	i=$((i + 1))
	mkdir -p "$tmp/corpus-$t"
	extra=
	[ "$t" = ring_pop ] && extra=-max_len=24576
	if [ -x "$out/$t" ] && timeout $((secs + 60)) "$out/$t" \
		-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 $extra -artifact_prefix="$tmp/crash-$t-" \
		"$tmp/corpus-$t" "$src/tests/fuzz/corpus/$t" \
		>"$tmp/$t.log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t.log")
		echo "ok $i - $t: $runs inputs in ${secs}s, no crash"
	else
		echo "not ok $i - $t crashed or failed"
		[ -f "$tmp/$t.log" ] && grep -E 'ERROR|SUMMARY|#[0-9]+ 0x' "$tmp/$t.log" | head -20 | sed 's/^/# /'
		for f in "$tmp"/crash-"$t"-*; do
			[ -f "$f" ] && echo "# input (base64): $(base64 -w0 "$f" | head -c 400)"
		done
	fi
done
