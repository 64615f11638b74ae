#!/usr/bin/env bash
# Lookups while snapshots run back to back vs the same lookups without
# snapshots (issue 14: >= 0.8x). Each repetition starts a fresh durable
# server (update log, --durability=async) in an empty data dir, creates a
# ROWS x 64 SGD table and runs embedbench (2 connections, closed loop, 512
# uniform ids, 1% of requests push gradients so that the table keeps
# changing) for SECONDS:
#   during: --snapshot_log_bytes=1, so a snapshot of the whole table starts
#           as soon as the last one ended and anything was logged;
#   alone:  --snapshot_log_bytes=0 --snapshot_interval_s=0 (never).
# The two alternate (during, alone, then alone, during, ...); only one server
# runs at a time. Prints each run, the medians and their ratio, and the
# snapshots that ended while the lookups were measured.
#   bench/run_snapshot_bench.sh [BUILD_DIR]
# Environment: SNAP_ROWS (4000000), SNAP_SECONDS (15), SNAP_REPS (3),
# SNAP_PUSH_FRACTION (0.01; 0: only the snapshot that follows the create),
# BENCH_DATA_DIR (/var/tmp: a real disk, not tmpfs).
set -euo pipefail
BUILD_DIR=${1:-build}
ROWS=${SNAP_ROWS:-4000000}
SECONDS_PER_RUN=${SNAP_SECONDS:-15}
REPS=${SNAP_REPS:-3}
PUSH_FRACTION=${SNAP_PUSH_FRACTION:-0.01}
WORK=$(mktemp -d "${BENCH_DATA_DIR:-/var/tmp}/embedserve-snapshot-bench.XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

run() {  # run MODE: one server, one measurement
  local mode=$1 flags
  if [[ $mode == during ]]; then
    flags=(--snapshot_log_bytes=1 --snapshot_interval_s=0)
  else
    flags=(--snapshot_log_bytes=0 --snapshot_interval_s=0)
  fi
  rm -rf "$WORK/data" "$WORK/port"
  "$BUILD_DIR/server/embedserve" --address=127.0.0.1:0 --port_file="$WORK/port" \
    --data_dir="$WORK/data" --durability=async "${flags[@]}" 2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 600); do [[ -s "$WORK/port" ]] && break; sleep 0.1; done
  local address=127.0.0.1:$(cat "$WORK/port")
  "$BUILD_DIR/bench/embedbench" --address="$address" --setup --rows="$ROWS" --dim=64
  local before after
  before=$(grep -c "snapshot of" "$WORK/server.log" || true)
  "$BUILD_DIR/bench/embedbench" --address="$address" --rows="$ROWS" --dim=64 --connections=2 \
    --batch=512 --push_fraction="$PUSH_FRACTION" --duration="$SECONDS_PER_RUN" --warmup=1 \
    --server_pid="$SERVER_PID" --label="$mode" --csv="$WORK/results.csv" | sed "s/^/$mode: /"
  after=$(grep -c "snapshot of" "$WORK/server.log" || true)
  echo "$mode: snapshots ended during the run: $((after - before))"
  grep "snapshot of" "$WORK/server.log" | tail -n +$((before + 1)) | sed "s/^/$mode:   /" || true
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

echo "== lookups of 512 rows from a ${ROWS} x 64 durable table, snapshots back to back vs none"
for rep in $(seq "$REPS"); do
  if (( rep % 2 )); then run during; run alone; else run alone; run during; fi
done
python3 - "$WORK/results.csv" <<'PY'
import csv, statistics, sys
rows = {}
for r in csv.reader(open(sys.argv[1])):
    rows.setdefault(r[0], []).append(float(r[5]))
alone, during = statistics.median(rows["alone"]), statistics.median(rows["during"])
print(f"alone   {alone / 1e6:.3f} M rows/s (median of {len(rows['alone'])})")
print(f"during  {during / 1e6:.3f} M rows/s (median of {len(rows['during'])})  "
      f"{during / alone:.2f}x alone")
PY
