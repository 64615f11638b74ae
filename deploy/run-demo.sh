#!/usr/bin/env bash
# `make run`: serves the demo tables (deploy/demo_tables.txtpb) on ADDRESS and
# prints how to query them. Ctrl-C stops the server.
#   deploy/run-demo.sh [BUILD_DIR] [ADDRESS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${1:-$ROOT/build}
ADDRESS=${2:-127.0.0.1:50051}
CTL="$BUILD_DIR/client/embedctl --address=$ADDRESS"
cat <<MSG
embedserve: serving demo tables 'user' (100000 x 64, padding_idx 0) and
'item' (50000 x 64, max_norm 1) on $ADDRESS. In another terminal:

  $CTL list
  $CTL describe user
  $CTL lookup user --ids=1,2,3
  $CTL lookup-pooled item --ids=1,2,3,4 --offsets=0,2 --mode=mean
  $CTL health

Tables are kept in ${EMBEDSERVE_DATA_DIR:-$ROOT/data} (RocksDB) and come back on the next
start; delete that directory to start afresh. Ctrl-C stops the server.
MSG
EMBEDSERVE_BIN_DIR="$BUILD_DIR/server" EMBEDSERVE_ADDRESS="$ADDRESS" \
  EMBEDSERVE_DATA_DIR="${EMBEDSERVE_DATA_DIR:-$ROOT/data}" \
  EMBEDSERVE_CONFIG="$ROOT/deploy/demo_tables.txtpb" exec bash "$ROOT/deploy/docker-entrypoint.sh"
