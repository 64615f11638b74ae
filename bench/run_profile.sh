#!/usr/bin/env bash
# Where an embedserve server spends its time under embedbench load: starts a
# memory-only server on loopback, fills the 1,000,000 x 64 bench table, and
# samples the server with perf (cpu-clock, so it also works on VMs without
# hardware counters) while embedbench drives it. Prints the top symbols and
# the split by library; the perf.data stays in OUT_DIR for `perf report`.
#   bench/run_profile.sh [BUILD_DIR] [OUT_DIR] [embedbench flags...]
# Env: SECONDS_PROFILED (default 6), TOP (symbols shown, default 30),
#      SERVER_BIN (another embedserve binary to profile).
# Needs linux-perf (deploy/install-deps.sh --bench).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
OUT=$(mkdir -p "${2:-$BUILD/bench-results}" && cd "${2:-$BUILD/bench-results}" && pwd)
shift $(($# > 2 ? 2 : $#))
SERVER=${SERVER_BIN:-$BUILD/server/embedserve}
SECS=${SECONDS_PROFILED:-6}
command -v perf >/dev/null || { echo "perf missing: bash deploy/install-deps.sh --bench" >&2; exit 2; }
WORK=$(mktemp -d)
SP=""
cleanup() { [[ -n "$SP" ]] && kill "$SP" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
"$SERVER" --address=127.0.0.1:0 --port_file="$WORK/port" --data_dir= 2>"$WORK/server.log" &
SP=$!
while [[ ! -s "$WORK/port" ]]; do sleep 0.05; done
ADDR=127.0.0.1:$(cat "$WORK/port")
"$BUILD/bench/embedbench" --address="$ADDR" --setup "$@" >/dev/null
perf record -e cpu-clock -F 1999 -g -p "$SP" -o "$OUT/server.perf.data" -- sleep "$SECS" \
  >/dev/null 2>"$WORK/perf.log" &
PERF=$!
"$BUILD/bench/embedbench" --address="$ADDR" --server_pid="$SP" --duration="$SECS" --warmup=0 "$@"
wait "$PERF" || { cat "$WORK/perf.log" >&2; exit 1; }
echo "== by library"
perf report -i "$OUT/server.perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
  grep '%' | head -12
echo "== top symbols"
perf report -i "$OUT/server.perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
  grep '%' | cut -c1-150 | head -"${TOP:-30}"
echo "perf data: $OUT/server.perf.data"
