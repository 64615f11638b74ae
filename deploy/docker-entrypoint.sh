#!/usr/bin/env bash
# Starts embedserve the way the container does; tests run this same script.
#   EMBEDSERVE_ADDRESS  listen address (default 0.0.0.0:50051 in a container)
#   EMBEDSERVE_CONFIG   tables to create at start (default: the demo tables)
#   EMBEDSERVE_DATA_DIR where tables are kept (RocksDB; default /var/lib/embedserve/data)
#   EMBEDSERVE_DURABILITY async (default) or sync
#   EMBEDSERVE_BIN_DIR  where embedserve is (default /usr/local/bin)
# Extra arguments are passed to embedserve (e.g. --max_table_bytes=...).
set -euo pipefail
BIN_DIR=${EMBEDSERVE_BIN_DIR:-/usr/local/bin}
ADDRESS=${EMBEDSERVE_ADDRESS:-0.0.0.0:50051}
CONFIG=${EMBEDSERVE_CONFIG:-/etc/embedserve/tables.txtpb}
args=(--address="$ADDRESS" --data_dir="${EMBEDSERVE_DATA_DIR:-/var/lib/embedserve/data}"
      --durability="${EMBEDSERVE_DURABILITY:-async}")
if [[ -n "$CONFIG" ]]; then
  if [[ ! -r "$CONFIG" ]]; then
    echo "docker-entrypoint: config $CONFIG is not readable" >&2
    exit 2
  fi
  args+=(--config="$CONFIG")
fi
exec "$BIN_DIR/embedserve" "${args[@]}" "$@"
