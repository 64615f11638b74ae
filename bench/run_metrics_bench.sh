#!/usr/bin/env bash
# The cost of --metrics_address on lookups, in one run (bench/metrics_bench):
# lookups alternating between a server with metrics off and one with metrics
# on (scraped every second) over the same table, and the same with metrics
# off on both sides (A/A: the method's noise); repetitions interleaved at
# random. Prints the medians over repetitions of on/off (and off/off) for 1
# and 2 client threads, and of the counting micro-benchmark.
#   bench/run_metrics_bench.sh [BUILD_DIR]
# Env: REPS (repetitions, default 15), MIN_TIME (s per repetition, default 1).
set -euo pipefail
BUILD_DIR=${1:-build}
OUT=$(mktemp)
LOG=$(mktemp)
trap 'rm -f "$OUT" "$LOG"' EXIT
if ! "$BUILD_DIR/bench/metrics_bench" --benchmark_repetitions="${REPS:-15}" \
  --benchmark_min_time="${MIN_TIME:-1}" --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true --benchmark_out="$OUT" \
  --benchmark_out_format=json >"$LOG" 2>&1; then
  tail -20 "$LOG" >&2
  exit 1
fi
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
stat = {(r["run_name"], r["aggregate_name"]): r for r in runs if "aggregate_name" in r}
for threads in (1, 2):
    for aa, what in ((0, "metrics on / off"), (1, "A/A off / off  ")):
        name = "BM_LookupOffVsOn/aa:%d/real_time/threads:%d" % (aa, threads)
        med, dev = stat.get((name, "median")), stat.get((name, "stddev"))
        if med:
            print("lookups, %s, %d client thread%s: %.3fx (stddev %.3f over repetitions; "
                  "%.0f vs %.0f lookups/s)" % (
                      what, threads, " " if threads == 1 else "s", med["b_over_a"],
                      dev["b_over_a"] if dev else float("nan"), med["b_lookups_per_s"],
                      med["a_lookups_per_s"]))
for shards in (0, 1):
    for threads in (1, 2):
        med = stat.get(("BM_CountLookup/shards:%d/real_time/threads:%d" % (shards, threads),
                        "median"))
        if med:
            print("counting one lookup, %s, %d thread%s: %.1f ns" % (
                "sharded  " if shards == 0 else "unsharded", threads,
                " " if threads == 1 else "s", med["real_time"]))
PY
