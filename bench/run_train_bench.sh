#!/usr/bin/env bash
# Training-path figures in one run:
#  * concurrency_bench: engine lookups alone vs under a flat-out pusher (the
#    cost of the table's concurrency mechanism, no transport);
#  * train_bench: rows applied per second for each optimizer, unary vs
#    stream, and gRPC lookups under paced and flat-out push loads;
#  * train_bench BM_PushKept: durable pushes next to memory-only, interleaved
#    (random order of repetitions): one async trainer (SGD, SPARSE_ADAM) and
#    four sync trainers (SGD), with the update log and with
#    --update_log=false (every push writes its rows to RocksDB), as ratios.
#   bench/run_train_bench.sh [BUILD_DIR]
# Durable data dirs go to $BENCH_DATA_DIR (default /var/tmp: a real disk, not
# tmpfs) and are removed afterwards.
set -euo pipefail
BUILD_DIR=${1:-build}
ARGS=(--benchmark_min_time="${BENCH_MIN_TIME:-1}" --benchmark_repetitions=3
      --benchmark_report_aggregates_only=true)
if [[ -z "${ONLY_DURABLE:-}" ]]; then  # ONLY_DURABLE=1: the last section alone
  echo "== engine: lookups of 512 rows vs a concurrent pusher (1M x 64 table)"
  "$BUILD_DIR/bench/concurrency_bench" "${ARGS[@]}" 2>/dev/null | grep -E "median"
  echo "== gRPC on loopback: pushes of 4,096 rows, lookups of 512 rows (1M x 64 tables)"
  "$BUILD_DIR/bench/train_bench" "${ARGS[@]}" --benchmark_filter=-BM_PushKept 2>/dev/null |
    grep -E "median"
fi
echo "== durable pushes of 4,096 rows (1M x 64 tables): rows/s, median of ${KEPT_REPS:-5}, interleaved"
DATA_DIR=${BENCH_DATA_DIR:-/var/tmp}
OUT=$(mktemp)
trap 'rm -f "$OUT"; rm -rf "$DATA_DIR"/embedserve-train-bench-*' EXIT
TMPDIR=$DATA_DIR "$BUILD_DIR/bench/train_bench" --benchmark_filter=BM_PushKept \
  --benchmark_min_time="${BENCH_MIN_TIME:-1}" --benchmark_repetitions="${KEPT_REPS:-5}" \
  --benchmark_enable_random_interleaving=true --benchmark_format=json \
  --benchmark_out="$OUT" >/dev/null 2>"${KEPT_LOG:-/dev/null}"
python3 - "$OUT" <<'PY'
import json, statistics, sys
runs = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("run_type") == "iteration" and "error_occurred" not in b:
        runs.setdefault(b["label"], []).append(b["items_per_second"])
med = {label: statistics.median(v) for label, v in runs.items()}
order = ["memory", "log-async", "rows-async", "log-sync", "rows-sync"]
for label in sorted(med, key=lambda l: (l.split()[2], l.split()[1], order.index(l.split()[0]))):
    keep, table, trainers = label.split()
    base = med.get(f"memory {table} {trainers}")
    ratio = f"{med[label] / base:5.2f}x memory" if base else ""
    print(f"{keep:>10} {table:<11} {trainers:>3} trainer(s) {med[label] / 1e6:6.3f} M rows/s  {ratio}"
          f"  (n={len(runs[label])}, min {min(runs[label]) / 1e6:.3f}, max {max(runs[label]) / 1e6:.3f})")
PY
