#!/bin/sh
# The image's HEALTHCHECK: exit 0 when the server answers grpc.health.v1
# SERVING. Probes EMBEDSERVE_HEALTH_ADDRESS (the plaintext health-only port,
# which works whatever TLS the main port has), else EMBEDSERVE_ADDRESS, on
# loopback when the address is a wildcard.
addr=${EMBEDSERVE_HEALTH_ADDRESS:-${EMBEDSERVE_ADDRESS:-0.0.0.0:50051}}
host=${addr%:*}
port=${addr##*:}
case "$host" in
  "" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;;
esac
if [ -z "${EMBEDSERVE_HEALTH_ADDRESS:-}" ] && [ -n "${EMBEDSERVE_TLS_CERT:-}" ]; then
  echo "healthcheck: the main port speaks TLS; set EMBEDSERVE_HEALTH_ADDRESS (e.g. 127.0.0.1:50052)" >&2
  exit 1
fi
exec embedctl --address="$host:$port" --timeout=2 health
