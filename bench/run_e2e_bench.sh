#!/usr/bin/env bash
# End to end, side by side, one run: embedserve vs Redis 7 MGET (rows as
# binary values) vs the gRPC echo ceiling, on loopback, same ids (batch 512,
# dim 64, 1,000,000 rows, 2 connections, closed loop); then embedserve open
# loop at half its peak request rate for p99. Writes a CSV and a PNG plot
# (gnuplot) next to it.
#   bench/run_e2e_bench.sh [BUILD_DIR] [OUT_DIR]
# Needs redis-server (deploy/install-deps.sh --bench). Stops everything it
# started.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
OUT=${2:-$BUILD/bench-results}
mkdir -p "$OUT"
CSV="$OUT/e2e.csv"
DURATION=${DURATION:-8}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
command -v redis-server >/dev/null || { echo "redis-server missing: bash deploy/install-deps.sh --bench" >&2; exit 2; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { while [[ ! -s "$1" ]]; do sleep 0.05; done; cat "$1"; }

"$BUILD/server/embedserve" --address=127.0.0.1:0 --port_file="$WORK/es.port" --data_dir= 2>"$WORK/es.log" &
ES_PID=$!; PIDS+=($ES_PID)
ES=127.0.0.1:$(wait_port "$WORK/es.port")
"$BUILD/bench/echo_server" --address=127.0.0.1:0 --port_file="$WORK/echo.port" --dim=64 &
ECHO_PID=$!; PIDS+=($ECHO_PID)
ECHO=127.0.0.1:$(wait_port "$WORK/echo.port")
RP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" --daemonize no &
REDIS_PID=$!; PIDS+=($REDIS_PID)
until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.05; done
REDIS=127.0.0.1:$RP

B="$BUILD/bench/embedbench"
echo "setting up: 1,000,000 x 64 table in embedserve and in Redis" >&2
"$B" --target=embedserve --address="$ES" --setup
"$B" --target=redis --address="$REDIS" --setup
echo "label,target,mode,connections,batch,rows_per_s,req_per_s,p50_us,p99_us,p999_us,client_cpu_s_per_mrows,server_cpu_s_per_mrows,errors" > "$CSV"
run() { "$B" --duration="$DURATION" --csv="$CSV" "$@"; }
run --label=peak --target=echo --address="$ECHO" --server_pid="$ECHO_PID"
run --label=peak --target=embedserve --address="$ES" --server_pid="$ES_PID"
run --label=peak --target=redis --address="$REDIS" --server_pid="$REDIS_PID"
PEAK_REQ=$(awk -F, '$1=="peak" && $2=="embedserve" {print $7}' "$CSV")
HALF=$(echo "$PEAK_REQ / 2" | bc -l)
run --label=half-peak --target=embedserve --address="$ES" --server_pid="$ES_PID" --mode=open --rate="$HALF"
run --label=zipf --target=embedserve --address="$ES" --server_pid="$ES_PID" --dist=zipf
run --label=mix10 --target=embedserve --address="$ES" --server_pid="$ES_PID" --push_fraction=0.1
run --label=fp16-output --target=embedserve --address="$ES" --server_pid="$ES_PID" --output=float16

/usr/bin/python3 - "$CSV" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
get = lambda label, target: next(r for r in rows if r["label"] == label and r["target"] == target)
es, redis, echo = get("peak", "embedserve"), get("peak", "redis"), get("peak", "echo")
f = lambda r: float(r["rows_per_s"])
print()
print("batch 512, dim 64, 1,000,000 rows, 2 connections, closed loop, loopback")
for name, r in (("embedserve", es), ("Redis 7 MGET", redis), ("gRPC echo ceiling", echo)):
    print("  %-20s %10.0f rows/s  p50 %6s us  p99 %6s us" % (name, f(r), r["p50_us"], r["p99_us"]))
print("  embedserve / Redis MGET:   %.2fx (target >= 3x)" % (f(es) / f(redis)))
print("  embedserve / echo ceiling: %.2fx (target >= 0.85x)" % (f(es) / f(echo)))
half = get("half-peak", "embedserve")
print("  p99 at half of peak (open loop, %s req/s): %s us (target <= 2000 us)"
      % (half["req_per_s"], half["p99_us"]))
fp16 = get("fp16-output", "embedserve")
print("  float16 output: %.0f rows/s (%.2fx float32)" % (f(fp16), f(fp16) / f(es)))
PY
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set terminal pngcairo size 800,450
set output "$OUT/e2e.png"
set datafile separator ","
set style data histograms
set style fill solid 0.8
set ylabel "rows/s"
set title "Lookups: batch 512, dim 64, 1M rows, 2 connections (loopback)"
set yrange [0:*]
plot "< grep ^peak $CSV" using 6:xtic(2) title "rows/s"
GP
  echo "plot: $OUT/e2e.png"
fi
