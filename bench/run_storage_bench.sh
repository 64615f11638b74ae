#!/usr/bin/env bash
# Storage figures in one run (issue: tables that last):
#  * loading a 1 GiB float32 .npy (4,194,304 x 64) against `cat FILE > /dev/null`
#    on the same file (page cache warm for both: the file was just written);
#  * the same load into a server with --data_dir (every row also written to
#    RocksDB) and memory-only;
#  * restart time of the server holding those 1 GiB of rows;
#  * resident memory of the table against its raw bytes.
#   bench/run_storage_bench.sh [BUILD_DIR]     (needs ~4 GB of free disk)
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
WORK=$(mktemp -d)
PID=
cleanup() { [[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
ROWS=${ROWS:-4194304}
DIM=64
/usr/bin/python3 - "$WORK/big.npy" "$ROWS" "$DIM" <<'PY'
import sys, numpy as np
a = np.lib.format.open_memmap(sys.argv[1], mode="w+", dtype="<f4", shape=(int(sys.argv[2]), int(sys.argv[3])))
a[:] = np.arange(a.shape[1], dtype=np.float32)[None, :] * 0.001
a.flush()
PY
BYTES=$(stat -c %s "$WORK/big.npy")
now() { date +%s.%N; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
start_server() {  # start_server DATA_DIR
  rm -f "$WORK/port"
  "$BUILD/server/embedserve" --address=127.0.0.1:0 --port_file="$WORK/port" --data_dir="$1" --load_dir="$WORK" \
    2>>"$WORK/server.log" &
  PID=$!
  while [[ ! -s "$WORK/port" ]]; do sleep 0.01; done
  CTL=("$BUILD/client/embedctl" --address="127.0.0.1:$(cat "$WORK/port")" --timeout=600)
}
stop_server() { kill -TERM "$PID"; wait "$PID" || true; PID=; }

cat "$WORK/big.npy" > /dev/null
t0=$(now); cat "$WORK/big.npy" > /dev/null; t1=$(now)
CAT=$(echo "$t1 - $t0" | bc -l)

start_server ""
RSS0=$(rss_kb "$PID")
t0=$(now); "${CTL[@]}" load big --path=big.npy > /dev/null; t1=$(now)
LOAD_MEM=$(echo "$t1 - $t0" | bc -l)
RSS1=$(rss_kb "$PID")
USED=$("${CTL[@]}" describe big | awk '/bytes_used/ {print $2}')
stop_server

start_server "$WORK/data"
t0=$(now); "${CTL[@]}" load big --path=big.npy > /dev/null; t1=$(now)
LOAD_DUR=$(echo "$t1 - $t0" | bc -l)
stop_server
t0=$(now); start_server "$WORK/data"; t1=$(now)
RESTART=$(echo "$t1 - $t0" | bc -l)
RSS_RESTARTED=$(rss_kb "$PID")
stop_server

MB=$(echo "$BYTES / 1048576" | bc -l)
printf "file: %d x %d float32 .npy, %.0f MiB\n" "$ROWS" "$DIM" "$MB"
printf "%-52s %8.2f s %8.0f MiB/s %10s\n" "cat FILE > /dev/null (warm page cache)" "$CAT" "$(echo "$MB / $CAT" | bc -l)" "1.00x"
printf "%-52s %8.2f s %8.0f MiB/s %10s\n" "LoadTable, memory only" "$LOAD_MEM" "$(echo "$MB / $LOAD_MEM" | bc -l)" "$(printf '%.2fx' "$(echo "$CAT / $LOAD_MEM" | bc -l)")"
printf "%-52s %8.2f s %8.0f MiB/s %10s\n" "LoadTable, --data_dir (rows also written to RocksDB)" "$LOAD_DUR" "$(echo "$MB / $LOAD_DUR" | bc -l)" "$(printf '%.2fx' "$(echo "$CAT / $LOAD_DUR" | bc -l)")"
printf "%-52s %8.2f s\n" "restart holding those rows (until serving)" "$RESTART"
printf "table memory (DescribeTable bytes_used) / raw bytes: %.3fx\n" "$(echo "$USED / ($ROWS * $DIM * 4)" | bc -l)"
printf "server RSS growth from the load / raw bytes:        %.3fx\n" "$(echo "($RSS1 - $RSS0) * 1024 / ($ROWS * $DIM * 4)" | bc -l)"
printf "server RSS after restart (rows + RocksDB) / raw:    %.3fx\n" "$(echo "$RSS_RESTARTED * 1024 / ($ROWS * $DIM * 4)" | bc -l)"
