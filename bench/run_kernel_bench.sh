#!/usr/bin/env bash
# Single-threaded gather kernels vs torch.nn.functional.embedding /
# embedding_bag on the same table shape and the same ids, in one run.
#
#   bench/run_kernel_bench.sh [BUILD_DIR]
#
# Shared machines are noisy (neighbours share the memory system), so the two
# sides are interleaved: ROUNDS rounds of (C++ kernels, torch), each side's
# time the median of its repetitions, and the ratio the median over rounds.
# Environment: EMBEDSERVE_BENCH_ROWS / _DIM / _IDS (defaults 10,000,000 / 64 /
# 65,536), ROUNDS (5), BENCH_MIN_TIME (seconds per C++ repetition, 0.5).
set -euo pipefail
BUILD_DIR=${1:-build}
ROUNDS=${ROUNDS:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
# Both sides pinned to the same core (PIN_CPU, default 1; empty to not pin).
PIN=()
if [[ -n "${PIN_CPU-1}" ]] && command -v taskset >/dev/null; then PIN=(taskset -c "${PIN_CPU-1}"); fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r/$ROUNDS: embedserve gather_bench (1 thread)" >&2
  "${PIN[@]}" "$BUILD_DIR/bench/gather_bench" --benchmark_min_time="${BENCH_MIN_TIME:-0.5}" \
    --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    --benchmark_out="$OUT/cpp$r.json" --benchmark_out_format=json >/dev/null
  echo "== round $r/$ROUNDS: torch (1 thread)" >&2
  "${PIN[@]}" /usr/bin/python3 "$HERE/torch_bench.py" --seconds 2 > "$OUT/torch$r.json"
done
/usr/bin/python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {}  # name -> list of (time_us, torch_baseline_us) per round
for r in range(1, rounds + 1):
    cpp = json.load(open("%s/cpp%d.json" % (out, r)))
    torch = json.load(open("%s/torch%d.json" % (out, r)))
    ctx = cpp["context"]
    rows.setdefault("torch F.embedding", []).append((torch["embedding_us"], torch["embedding_us"]))
    rows.setdefault("torch F.embedding_bag (sum, bags of %d)" % torch["bag"], []).append(
        (torch["embedding_bag_us"], torch["embedding_bag_us"]))
    for b in cpp["benchmarks"]:
        if b.get("aggregate_name") != "median" or b.get("error_occurred"):
            continue
        name = b["run_name"]
        base = None
        if name.startswith("BM_Gather/"):
            base = torch["embedding_us"]
        elif name.startswith("BM_PooledSum/"):
            base = torch["embedding_bag_us"]
        rows.setdefault(name, []).append((b["real_time"], base))
n_ids = torch["ids"]
print("table %d x %d float32, %d uniform random ids, 1 thread, torch %s; %d rounds"
      % (torch["rows"], torch["dim"], n_ids, torch["torch"], rounds))
print("%-40s %12s %10s %20s" % ("", "median us", "Mrows/s", "vs torch (median)"))
order = ["torch F.embedding", "BM_Gather/scalar", "BM_Gather/avx2", "BM_Gather/avx512",
         [k for k in rows if k.startswith("torch F.embedding_bag")][0],
         "BM_PooledSum/scalar", "BM_PooledSum/avx2", "BM_PooledSum/avx512", "BM_Memcpy"]
for name in order:
    if name not in rows:
        continue
    times = [t for t, _ in rows[name]]
    t = statistics.median(times)
    ratios = [b / t_ for t_, b in rows[name] if b]
    ratio = ("%.2fx (%s)" % (statistics.median(ratios), " ".join("%.2f" % x for x in ratios))
             if ratios else "-")
    print("%-40s %12.1f %10.1f %20s" % (name, t, n_ids / t, ratio))
PY
