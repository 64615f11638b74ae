#!/usr/bin/env bash
# The matrix-factorisation loop (issue 14, item 7): RemoteEmbedding on a
# durable server (synchronous pushes, and overlapped with a push window and
# one multi-table lookup per step) vs local torch, interleaved in one run.
#   bench/run_mf_bench.sh [BUILD_DIR] [mf_bench.py args...]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD_DIR=${1:-build}
shift || true
PYTHONPATH="$BUILD_DIR/python" exec /usr/bin/python3 "$HERE/mf_bench.py" \
  --server "$BUILD_DIR/server/embedserve" "$@"
