#!/usr/bin/env bash
# Training-path figures in one run:
#  * concurrency_bench: engine lookups alone vs under a flat-out pusher (the
#    cost of the table's concurrency mechanism, no transport);
#  * train_bench: rows applied per second for each optimizer, unary vs
#    stream, and gRPC lookups under paced and flat-out push loads.
#   bench/run_train_bench.sh [BUILD_DIR]
set -euo pipefail
BUILD_DIR=${1:-build}
ARGS=(--benchmark_min_time="${BENCH_MIN_TIME:-1}" --benchmark_repetitions=3
      --benchmark_report_aggregates_only=true)
echo "== engine: lookups of 512 rows vs a concurrent pusher (1M x 64 table)"
"$BUILD_DIR/bench/concurrency_bench" "${ARGS[@]}" 2>/dev/null | grep -E "median"
echo "== gRPC on loopback: pushes of 4,096 rows, lookups of 512 rows (1M x 64 tables)"
"$BUILD_DIR/bench/train_bench" "${ARGS[@]}" 2>/dev/null | grep -E "median"
