#!/usr/bin/env bash
# A/B of two embedserve binaries, side by side in one run: both serve the
# same 1,000,000 x 64 memory-only table on loopback and embedbench (closed
# loop, batch 512, 2 connections unless EMBEDBENCH_ARGS says otherwise) hits
# them in alternating rounds, so drift of the machine hits both alike.
# Prints each round and the medians of B/A for rows/s and for the server's
# CPU seconds per million rows (lower is better; it does not depend on how
# much CPU the client took).
#   bench/run_ab_bench.sh BIN_A BIN_B [ROUNDS] [BUILD_DIR]
# Env: DURATION (s per round, default 5), EMBEDBENCH_ARGS (extra flags).
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n 2,10p "$0" >&2; exit 2; }
A=$(realpath "$1")
B=$(realpath "$2")
ROUNDS=${3:-5}
BUILD=$(cd "${4:-build}" && pwd)
DURATION=${DURATION:-5}
BENCH="$BUILD/bench/embedbench"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
wait_port() { while [[ ! -s "$1" ]]; do sleep 0.05; done; cat "$1"; }

start() {  # start BINARY NAME -> sets ADDR_<NAME> and PID_<NAME>
  "$1" --address=127.0.0.1:0 --port_file="$WORK/$2.port" --data_dir= 2>"$WORK/$2.log" &
  local pid=$!
  PIDS+=("$pid")
  local addr=127.0.0.1:$(wait_port "$WORK/$2.port")
  "$BENCH" --address="$addr" --setup >/dev/null
  printf -v "ADDR_$2" '%s' "$addr"
  printf -v "PID_$2" '%s' "$pid"
}
start "$A" a
start "$B" b

CSV="$WORK/ab.csv"
echo "label,target,mode,connections,batch,rows_per_s,req_per_s,p50_us,p99_us,p999_us,client_cpu_s_per_mrows,server_cpu_s_per_mrows,errors" >"$CSV"
# shellcheck disable=SC2086
for ((r = 1; r <= ROUNDS; r++)); do
  "$BENCH" --label="a$r" --address="$ADDR_a" --server_pid="$PID_a" --duration="$DURATION" \
    --csv="$CSV" ${EMBEDBENCH_ARGS:-} >/dev/null
  "$BENCH" --label="b$r" --address="$ADDR_b" --server_pid="$PID_b" --duration="$DURATION" \
    --csv="$CSV" ${EMBEDBENCH_ARGS:-} >/dev/null
done

/usr/bin/python3 - "$CSV" "$A" "$B" <<'PY'
import csv, statistics, sys
rows = {r["label"]: r for r in csv.DictReader(open(sys.argv[1]))}
n = len(rows) // 2
print("A = %s\nB = %s" % (sys.argv[2], sys.argv[3]))
print("round   A rows/s    B rows/s   B/A   A srv cpu/Mrows  B srv cpu/Mrows  B/A   A p99  B p99 (us)")
tput, cpu = [], []
for i in range(1, n + 1):
    a, b = rows["a%d" % i], rows["b%d" % i]
    t = float(b["rows_per_s"]) / float(a["rows_per_s"])
    c = float(b["server_cpu_s_per_mrows"]) / float(a["server_cpu_s_per_mrows"])
    tput.append(t); cpu.append(c)
    print("%5d %11.0f %11.0f  %5.2f  %15s  %15s  %5.2f  %5s  %5s" % (
        i, float(a["rows_per_s"]), float(b["rows_per_s"]), t,
        a["server_cpu_s_per_mrows"], b["server_cpu_s_per_mrows"], c, a["p99_us"], b["p99_us"]))
print("median B/A: rows/s %.2fx, server CPU per row %.2fx" % (
    statistics.median(tput), statistics.median(cpu)))
PY
