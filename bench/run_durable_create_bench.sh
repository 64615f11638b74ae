#!/usr/bin/env bash
# CreateTable of ROWS x 64 with Adagrad through a real server, wall time of
# the call from the Python client (with its default deadline, which grows
# with the table), next to torch.nn.Embedding(ROWS, 64) built in a separate
# process (and with torch.optim.Adagrad, which allocates the same state).
# One after the other, never two at once (20 M x 64 with Adagrad is ~10 GB
# in the server, ~5 GB / ~10 GB in torch); each server is stopped after its
# create. Variants: the update log (--data_dir, the default), memory only,
# and --update_log=false (every row written to RocksDB: the before of
# issue 14), as VARIANTS lists them.
#   bench/run_durable_create_bench.sh [BUILD_DIR]
# Environment: CREATE_ROWS (20000000), VARIANTS ("torch torch2 log memory
# torch torch2 rows"; torch2: torch.set_num_threads(2)), BENCH_DATA_DIR (/var/tmp: a real disk, not tmpfs).
set -euo pipefail
BUILD_DIR=${1:-build}
ROWS=${CREATE_ROWS:-20000000}
WORK=$(mktemp -d "${BENCH_DATA_DIR:-/var/tmp}/embedserve-create-bench.XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

torch_create() {  # torch_create [THREADS] (default: torch's own choice)
  /usr/bin/python3 - "$ROWS" "${1:-0}" <<'PY'
import sys, time
import torch
n, threads = int(sys.argv[1]), int(sys.argv[2])
if threads:
    torch.set_num_threads(threads)
torch.manual_seed(0)
t0 = time.perf_counter()
e = torch.nn.Embedding(n, 64)
t1 = time.perf_counter()
opt = torch.optim.Adagrad(e.parameters())
t2 = time.perf_counter()
print("torch      nn.Embedding(%d, 64): %6.1f s; + optim.Adagrad: %6.1f s (torch %s, %d threads)"
      % (n, t1 - t0, t2 - t0, torch.__version__, torch.get_num_threads()))
PY
}

server_create() {  # server_create LABEL [server flags...]
  local label=$1
  shift
  rm -rf "$WORK/data" "$WORK/port"
  "$BUILD_DIR/server/embedserve" --address=127.0.0.1:0 --port_file="$WORK/port" \
    --max_table_bytes=0 "$@" 2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 600); do [[ -s "$WORK/port" ]] && break; sleep 0.1; done
  PYTHONPATH="$BUILD_DIR/python" /usr/bin/python3 - "127.0.0.1:$(cat "$WORK/port")" "$ROWS" \
    "$label" <<'PY'
import sys, time
from embedserve_client import EmbeddingClient
address, n, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = EmbeddingClient(address)  # default 30 s per call; create: 30 s + bytes at 50 MB/s
t0 = time.perf_counter()
client.create_table("t", n, 64, init="normal", optimizer="adagrad")
print("%-10s CreateTable(%d x 64, adagrad): %6.1f s" % (label, n, time.perf_counter() - t0))
PY
  if [[ -d "$WORK/data" ]]; then echo "           data dir after the create: $(du -sh "$WORK/data" | cut -f1)"; fi
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

echo "== creating a ${ROWS} x 64 table with Adagrad: embedserve vs torch, one at a time"
for v in ${VARIANTS:-torch torch2 log memory torch torch2 rows}; do
  case $v in
    torch) torch_create ;;
    torch2) torch_create 2 ;;  # torch on both cores (its default here is 1 thread)
    log) server_create "log" --data_dir="$WORK/data" ;;
    memory) server_create "memory" ;;
    rows) server_create "rows" --data_dir="$WORK/data" --update_log=false ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
done
