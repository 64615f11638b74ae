#!/usr/bin/env bash
# Starts embedserve the way the container does; tests run this same script.
#   EMBEDSERVE_ADDRESS  listen address (default 0.0.0.0:50051 in a container)
#   EMBEDSERVE_CONFIG   tables to create at start (default: the demo tables)
#   EMBEDSERVE_DATA_DIR where tables are kept (RocksDB; default /var/lib/embedserve/data)
#   EMBEDSERVE_DURABILITY async (default) or sync
#   EMBEDSERVE_BIN_DIR  where embedserve is (default /usr/bin, where the .deb puts it)
# Security (README, Security); each maps to the embedserve flag named:
#   EMBEDSERVE_TOKENS_FILE    bearer tokens and their roles (--tokens_file)
#   EMBEDSERVE_TLS_CERT, EMBEDSERVE_TLS_KEY  PEM certificate chain and key: serve TLS
#                             (--tls_cert, --tls_key)
#   EMBEDSERVE_TLS_CLIENT_CA  PEM CA: clients must present a certificate it signed
#                             (--tls_client_ca, mutual TLS)
#   EMBEDSERVE_LOAD_DIR       LoadTable reads files only beneath it (--load_dir; unset: off)
#   EMBEDSERVE_INSECURE=1     serve a non-loopback address without TLS and tokens (--insecure)
# Operations:
#   EMBEDSERVE_HEALTH_ADDRESS  plaintext port serving only grpc.health.v1 (--health_address),
#                             for probes that cannot speak TLS
#   EMBEDSERVE_METRICS_ADDRESS Prometheus text format at /metrics (--metrics_address)
# Secure by default: on an address other than loopback (the container's
# 0.0.0.0) the server starts only with TLS and tokens, or EMBEDSERVE_INSECURE=1.
# Extra arguments are passed to embedserve (e.g. --max_table_bytes=...).
set -euo pipefail
BIN_DIR=${EMBEDSERVE_BIN_DIR:-/usr/bin}
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

# Security settings: each variable, when set, becomes its flag.
flag_from() {  # flag_from VARIABLE FLAG
  if [[ -n "${!1:-}" ]]; then args+=("--$2=${!1}"); fi
}
flag_from EMBEDSERVE_TOKENS_FILE tokens_file
flag_from EMBEDSERVE_TLS_CERT tls_cert
flag_from EMBEDSERVE_TLS_KEY tls_key
flag_from EMBEDSERVE_TLS_CLIENT_CA tls_client_ca
flag_from EMBEDSERVE_LOAD_DIR load_dir
flag_from EMBEDSERVE_HEALTH_ADDRESS health_address
flag_from EMBEDSERVE_METRICS_ADDRESS metrics_address
case "${EMBEDSERVE_INSECURE:-}" in
  1 | true | yes) args+=(--insecure) ; insecure=1 ;;
  "" | 0 | false | no) insecure=0 ;;
  *) echo "docker-entrypoint: EMBEDSERVE_INSECURE must be 1 or 0, not '$EMBEDSERVE_INSECURE'" >&2
     exit 2 ;;
esac

# The server refuses this case itself (exit 2, naming --insecure); say it
# first in terms of this container's settings. Security or address flags
# among the extra arguments leave the judgement to the server.
precheck=1
for arg in "$@"; do
  case "$arg" in --address* | --insecure* | --tls_* | --tokens_file*) precheck=0 ;; esac
done
case "${ADDRESS%:*}" in
  127.* | localhost | "[::1]" | ::1) precheck=0 ;;
esac
if [[ $precheck == 1 && $insecure == 0 &&
      ( -z "${EMBEDSERVE_TLS_CERT:-}" || -z "${EMBEDSERVE_TOKENS_FILE:-}" ) ]]; then
  cat >&2 <<MSG
docker-entrypoint: refusing to serve on $ADDRESS without TLS and tokens:
anyone who reaches the port could read and change every table (README, Security).
Either turn security on (certificates and a tokens file mounted read-only):
  docker run -p 50051:50051 -v "\$PWD/secrets:/secrets:ro" \\
    -e EMBEDSERVE_TLS_CERT=/secrets/server.pem -e EMBEDSERVE_TLS_KEY=/secrets/server.key \\
    -e EMBEDSERVE_TOKENS_FILE=/secrets/tokens [-e EMBEDSERVE_TLS_CLIENT_CA=/secrets/ca.pem] \\
    embedserve
or accept the risk (a network you trust completely):
  docker run -p 50051:50051 -e EMBEDSERVE_INSECURE=1 embedserve
MSG
  exit 2
fi
exec "$BIN_DIR/embedserve" "${args[@]}" "$@"
