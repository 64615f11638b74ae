#!/usr/bin/env bash
# `make run`: serves the demo tables (deploy/demo_tables.txtpb) on ADDRESS and
# prints how to query them. Ctrl-C stops the server.
#   deploy/run-demo.sh [BUILD_DIR] [ADDRESS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${1:-$ROOT/build}
ADDRESS=${2:-127.0.0.1:50051}
CTL="$BUILD_DIR/client/embedctl --address=$ADDRESS"
# The entrypoint maps EMBEDSERVE_TOKENS_FILE, EMBEDSERVE_TLS_CERT, ... to
# flags, so they work here too.
on=() ctl=()
if [[ -n "${EMBEDSERVE_TLS_CERT:-}" ]]; then on+=("TLS"); ctl+=("--tls_ca=CA.pem"); fi
if [[ -n "${EMBEDSERVE_TLS_CLIENT_CA:-}" ]]; then
  on+=("client certificates"); ctl+=("--tls_cert=CLIENT.pem --tls_key=CLIENT.key")
fi
if [[ -n "${EMBEDSERVE_TOKENS_FILE:-}" ]]; then on+=("tokens"); ctl+=("--token_file=FILE"); fi
if [[ ${#on[@]} -gt 0 ]]; then
  SECURITY="on ($(IFS=,; echo "${on[*]}" | sed 's/,/, /g')); give embedctl
${ctl[*]} as well."
else
  SECURITY="off: any user who can reach $ADDRESS may read and change every
table. To require TLS and tokens (README, Security), start with
EMBEDSERVE_TOKENS_FILE=tokens EMBEDSERVE_TLS_CERT=server.pem EMBEDSERVE_TLS_KEY=server.key
[EMBEDSERVE_TLS_CLIENT_CA=ca.pem] make run, and give embedctl --token_file and --tls_ca."
fi
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

Security: $SECURITY
MSG
EMBEDSERVE_BIN_DIR="$BUILD_DIR/server" EMBEDSERVE_ADDRESS="$ADDRESS" \
  EMBEDSERVE_DATA_DIR="${EMBEDSERVE_DATA_DIR:-$ROOT/data}" \
  EMBEDSERVE_CONFIG="$ROOT/deploy/demo_tables.txtpb" exec bash "$ROOT/deploy/docker-entrypoint.sh"
