#!/usr/bin/env bash
# On the device machine (16 cores, AVX-512), from the repository root, with
# carry/device made by bench/device/pack.sh. Writes everything under $OUT
# (or ./device-out) and prints a summary:
#  1. the kernel tests at every level the CPU has (AVX-512 must not skip);
#  2. the kernel benchmark at every level (one thread);
#  3. lookup throughput against the number of client connections (one gRPC
#     server thread works per request in flight), batch 512, dim 64;
#  4. one large lookup (65,536 ids) with --lookup_threads 0 and 15.
# Bounded: every step has a duration; about 4 minutes in all.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/carry/device"
OUT=${OUT:-$ROOT/device-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{ nproc; grep -m1 'model name' /proc/cpuinfo; grep -o -m1 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo; } | tee "$OUT/cpu.txt"

echo "== 1. kernel tests"
"$BIN/gather_test" 2>&1 | tee "$OUT/gather_test.txt" | tail -4
if grep -q 'SKIPPED.*avx512' "$OUT/gather_test.txt"; then echo "AVX-512 tests SKIPPED"; fi
"$BIN/parallel_lookup_test" 2>&1 | tail -1 | tee "$OUT/parallel_lookup_test.txt"
"$BIN/embedding_table_test" 2>&1 | tail -1 | tee "$OUT/embedding_table_test.txt"

echo "== 2. kernel benchmark (1 thread)"
EMBEDSERVE_BENCH_ROWS=10000000 "$BIN/gather_bench" --benchmark_min_time=0.3 \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out="$OUT/gather_bench.json" --benchmark_out_format=json 2>/dev/null |
  grep -E 'median' | tee "$OUT/gather_bench.txt"

start_server() {  # start_server EXTRA_FLAGS... -> ADDR, PID
  rm -f "$OUT/port"
  "$BIN/embedserve" --address=127.0.0.1:0 --port_file="$OUT/port" --data_dir= "$@" \
    2>>"$OUT/server.log" &
  PID=$!
  for _ in $(seq 1 200); do [[ -s "$OUT/port" ]] && break; sleep 0.05; done
  ADDR=127.0.0.1:$(cat "$OUT/port")
}

echo "== 3. lookups vs connections (batch 512, dim 64, 1M rows)"
start_server
"$BIN/embedbench" --address="$ADDR" --setup >/dev/null
for c in 1 2 4 8 16 32; do
  "$BIN/embedbench" --address="$ADDR" --server_pid="$PID" --connections=$c --duration=5 \
    --label="conns$c" --csv="$OUT/scaling.csv" 2>&1 | tail -1
done
kill "$PID"; wait "$PID" 2>/dev/null

echo "== 4. one 65,536-id lookup per request, --lookup_threads 0 vs 15"
for t in 0 15; do
  start_server --lookup_threads=$t
  "$BIN/embedbench" --address="$ADDR" --setup >/dev/null
  "$BIN/embedbench" --address="$ADDR" --server_pid="$PID" --connections=1 --batch=65536 \
    --duration=5 --label="lookup_threads$t" --csv="$OUT/parallel.csv" 2>&1 | tail -1
  kill "$PID"; wait "$PID" 2>/dev/null
done
echo "results in $OUT"
