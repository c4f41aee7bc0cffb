#!/bin/bash
# tests/perf/bench_smoke.sh - the benchmarks still run and print what
# docs/PERFORMANCE.md reads from them: fi_raw_bench's CSV rows (latency
# mode with both one-way figures), and kvferry-bench's latency, posting
# and KV rows with their raw baselines and ratios. Small sizes and few
# iterations: this checks the programs and their output, never a speed
# (figures come from the benchmarks themselves, on a machine with cores
# to spare). TAP output.
set -u
build=${KVF_BUILD:?KVF_BUILD is not set (run through make check)}
raw="$build/tests/bench/fi_raw_bench"
kvb="$build/tests/bench/kvferry_bench"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Two sidecars and an engine on a small machine: an engine that spins
# while it waits starves the sidecars (docs/PERFORMANCE.md).
export KVFERRY_WAIT_SPIN_US=0

n=0
failed=0
ok() { # ok COND-EXIT-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=1
	fi
}
diag_file() { sed 's/^/# /' "$1"; }

echo "1..12"

# fi_raw_bench, latency: header, then provider,lat,write,4096,iters,gbps,
# half the round trip's mean, the write+notify's own median one way.
for prov in tcp shm; do
	out="$tmp/raw-lat-$prov"
	timeout 120 "$raw" -p "$prov" -m lat -s 4096 -S 4096 -o csv \
		>"$out" 2>&1
	ok $? "fi_raw_bench -p $prov -m lat exits 0"
	awk -F, 'NR == 1 { h = ($0 == "provider,mode,op,size,iters,gbps,usec,usec_med") }
	         NR == 2 { r = (NF == 8 && $2 == "lat" && $3 == "write" &&
	                        $4 == 4096 && $5 > 0 && $7 > 0 && $8 > 0) }
	         END { exit !(NR == 2 && h && r) }' "$out"
	st=$?
	ok $st "fi_raw_bench -p $prov -m lat: one row, both one-way figures"
	[ $st -eq 0 ] || diag_file "$out"
done

# fi_raw_bench, bandwidth: seven fields, no latency median.
out="$tmp/raw-bw"
timeout 120 "$raw" -p tcp -m bw -s 65536 -S 65536 -o csv >"$out" 2>&1
awk -F, 'NR == 1 { h = ($0 == "provider,mode,op,size,iters,gbps,usec") }
         NR == 2 { r = (NF == 7 && $2 == "bw" && $4 == 65536 && $6 > 0) }
         END { exit !(NR == 2 && h && r) }' "$out"
st=$?
ok $st "fi_raw_bench -m bw: one row of seven fields"
[ $st -eq 0 ] || diag_file "$out"

# kvferry-bench -m lat: the 4 KiB row against the raw one-way median,
# the same figure against half the round trip, and a 128-token request;
# each ratio is the kvferry figure over its raw one.
out="$tmp/kvb-lat"
timeout 300 "$kvb" -p tcp -m lat -o csv >"$out" 2>"$tmp/kvb-lat.err"
st=$?
ok $st "kvferry-bench -m lat exits 0"
[ $st -eq 0 ] || diag_file "$tmp/kvb-lat.err"
for op in write+notify write+notify-rtt2 kv-128tok; do
	awk -F, -v op="$op" '
	    $1 == "lat" && $2 == op {
	        d = $5 / $7 - $8
	        good = NF == 9 && $5 > 0 && $6 >= $5 && $7 > 0 &&
	               d < 0.01 && d > -0.01
	        seen++
	    }
	    END { exit !(seen == 1 && good) }' "$out"
	st=$?
	ok $st "kvferry-bench -m lat: row $op with a raw figure and its ratio"
	[ $st -eq 0 ] || diag_file "$out"
done
# Both 4 KiB rows are one measurement against two baselines.
awk -F, '$2 == "write+notify" { a = $5 } $2 == "write+notify-rtt2" { b = $5 }
         END { exit !(a > 0 && a == b) }' "$out"
ok $? "kvferry-bench -m lat: both 4 KiB rows carry the same kvferry median"

# kvferry-bench -m post: per-call costs, no baseline.
out="$tmp/kvb-post"
timeout 300 "$kvb" -p tcp -m post -o csv >"$out" 2>"$tmp/kvb-post.err"
awk -F, '$1 == "post" && $5 > 0 && $6 >= $5 { n++ } END { exit n != 2 }' \
	"$out"
st=$?
ok $st "kvferry-bench -m post: kvf_submit and kvf_submit_blocks rows"
[ $st -eq 0 ] || { diag_file "$out"; diag_file "$tmp/kvb-post.err"; }

# kvferry-bench -m kv: one 128-token Llama-3-8B request length, the bytes
# checked by the bench itself, with its raw baseline.
out="$tmp/kvb-kv"
timeout 300 "$kvb" -p tcp -m kv -L 128 -i 2 -o csv >"$out" \
	2>"$tmp/kvb-kv.err"
awk -F, 'NR > 1 && $1 == "llama3-8b" && $3 == 128 && $8 == 16777216 &&
         $14 > 0 && $15 > 0 && $16 > 0 { n++ } END { exit n != 1 }' "$out"
st=$?
ok $st "kvferry-bench -m kv -L 128: one row with GB/s, raw GB/s, ratio"
[ $st -eq 0 ] || { diag_file "$out"; diag_file "$tmp/kvb-kv.err"; }

exit $failed
