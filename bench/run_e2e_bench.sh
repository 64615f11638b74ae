#!/usr/bin/env bash
# End to end, side by side, one run: embedserve vs Redis 7 MGET (rows as
# binary values) vs the gRPC echo ceiling, on loopback, same ids (batch 512,
# dim 64, 1,000,000 rows, 2 connections, closed loop); then embedserve open
# loop at half its peak request rate for p99. Writes the raw CSV, a summary
# CSV (medians) and a PNG plot of it (gnuplot).
# Env: ROUNDS (interleaved rounds, default 3), DURATION (s per run, default 6).
#   bench/run_e2e_bench.sh [BUILD_DIR] [OUT_DIR]
# Needs redis-server (deploy/install-deps.sh --bench). Stops everything it
# started.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
OUT=${2:-$BUILD/bench-results}
mkdir -p "$OUT"
CSV="$OUT/e2e.csv"
DURATION=${DURATION:-6}
ROUNDS=${ROUNDS:-3}
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
# The machine is shared and drifts by tens of percent over a minute, so the
# targets are interleaved: each round measures all of them back to back, and
# the ratios are medians over rounds of the ratios within a round.
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS" >&2
  run --label="peak.$r" --target=echo --address="$ECHO" --server_pid="$ECHO_PID"
  run --label="peak.$r" --target=embedserve --address="$ES" --server_pid="$ES_PID"
  run --label="peak.$r" --target=redis --address="$REDIS" --server_pid="$REDIS_PID"
  run --label="fp16-output.$r" --target=embedserve --address="$ES" --server_pid="$ES_PID" \
    --output=float16
done
PEAK_REQ=$(awk -F, '$1 ~ /^peak\./ && $2=="embedserve" {print $7}' "$CSV" | sort -g |
  awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
HALF=$(echo "$PEAK_REQ / 2" | bc -l)
# The echo server at the same rate shows the tail that the transport and
# the scheduler of this machine add by themselves.
for ((r = 1; r <= ROUNDS; r++)); do
  run --label="half-peak.$r" --target=echo --address="$ECHO" --server_pid="$ECHO_PID" \
    --mode=open --rate="$HALF"
  run --label="half-peak.$r" --target=embedserve --address="$ES" --server_pid="$ES_PID" \
    --mode=open --rate="$HALF"
done
run --label=zipf.1 --target=embedserve --address="$ES" --server_pid="$ES_PID" --dist=zipf
run --label=mix10.1 --target=embedserve --address="$ES" --server_pid="$ES_PID" --push_fraction=0.1

/usr/bin/python3 - "$CSV" "$OUT/e2e_summary.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def runs(label, target):
    return {r["label"].split(".")[1]: r for r in rows
            if r["label"].split(".")[0] == label and r["target"] == target}
f = lambda r: float(r["rows_per_s"])
med = statistics.median
es, redis, echo = runs("peak", "embedserve"), runs("peak", "redis"), runs("peak", "echo")
fp16, half = runs("fp16-output", "embedserve"), runs("half-peak", "embedserve")
half_echo = runs("half-peak", "echo")
rounds = sorted(es)
ratio = lambda a, b: [f(a[k]) / f(b[k]) for k in rounds]
print()
print("batch 512, dim 64, 1,000,000 rows, 2 connections, closed loop, loopback; "
      "%d interleaved rounds, medians" % len(rounds))
summary = []
for name, rs in (("embedserve", es), ("Redis 7 MGET", redis), ("gRPC echo ceiling", echo)):
    m = med(f(r) for r in rs.values())
    p99 = med(float(r["p99_us"]) for r in rs.values())
    cpu = med(float(r["server_cpu_s_per_mrows"]) for r in rs.values())
    summary.append((name, m, p99, cpu))
    print("  %-20s %10.0f rows/s  p99 %6.0f us  server CPU %.2f s/Mrows" % (name, m, p99, cpu))
def show(what, values, target):
    print("  %-27s %.2fx (rounds %s) %s" % (what + ":", med(values),
          ", ".join("%.2f" % v for v in values), target))
show("embedserve / Redis MGET", ratio(es, redis), "(target >= 3x)")
show("embedserve / echo ceiling", ratio(es, echo), "(target >= 0.85x)")
show("float16 / float32 output", ratio(fp16, es), "")
p99s = [float(r["p99_us"]) for r in half.values()]
echo_p99s = [float(r["p99_us"]) for r in half_echo.values()]
print("  p99 at half of peak (open loop, %s req/s): median %.0f us, worst %.0f us "
      "(target <= 2000 us); echo at that rate: median %.0f us, worst %.0f us"
      % (next(iter(half.values()))["req_per_s"], med(p99s), max(p99s), med(echo_p99s),
         max(echo_p99s)))
with open(sys.argv[2], "w") as out:
    out.write("target,rows_per_s,p99_us,server_cpu_s_per_mrows\n")
    for name, m, p99, cpu in summary:
        out.write("%s,%.0f,%.0f,%.3f\n" % (name, m, p99, cpu))
PY
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set terminal pngcairo size 800,450
set output "$OUT/e2e.png"
set datafile separator ","
set style data histograms
set style fill solid 0.8
set ylabel "rows/s (median of rounds)"
set title "Lookups: batch 512, dim 64, 1M rows, 2 connections (loopback)"
set yrange [0:*]
set key off
plot "$OUT/e2e_summary.csv" every ::1 using 2:xtic(1)
GP
  echo "plot: $OUT/e2e.png"
fi
