#!/usr/bin/env bash
# Soak: a server with a temporary --data_dir under mixed load (lookups, pooled
# lookups, pushes, creates/drops, loads, imports, checkpoints) for SECONDS;
# RSS sampled every 5 s into BUILD_DIR/soak.csv; prints RSS over time and
# whether it is flat after warm-up. Stops everything it started by itself.
#   bench/soak.sh BUILD_DIR [SECONDS=600]
set -euo pipefail
BUILD_DIR=${1:?usage: bench/soak.sh BUILD_DIR [SECONDS]}
SECONDS_TO_RUN=${2:-600}
HERE=$(cd "$(dirname "$0")" && pwd)
SERVER="$BUILD_DIR/server/embedserve"
[[ -x "$SERVER" ]] || SERVER="$BUILD_DIR/embedserve"
# The client package from the build tree, ServerProcess from tests/testing.
PYTHONPATH="$BUILD_DIR/python:$HERE/../tests/testing" exec /usr/bin/python3 "$HERE/soak.py" \
  --server "$SERVER" --seconds "$SECONDS_TO_RUN" --csv "$BUILD_DIR/soak.csv"
