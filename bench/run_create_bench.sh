#!/usr/bin/env bash
# Creating a table in memory vs torch.nn.Embedding of the same size, in one
# run: bench/create_bench (generator 1, generator 2 at each SIMD level and on
# 2 threads, see bench/create_bench.cc), then torch timing construction only
# (torch.manual_seed, nn.Embedding(N, 64), and torch.optim.Adagrad for the
# Adagrad shape, whose constructor fills its state as ours does).
#
#   bench/run_create_bench.sh [BUILD_DIR]
#
# Prints each variant's time and the ratio ours / torch for the same N (< 1:
# faster than torch). Environment: CREATE_FILTER (a --benchmark_filter regex,
# default all; the 20M shape takes ~6 GB while it runs), ROUNDS (1): rounds of
# (ours, torch), the ratio the median over rounds.
set -euo pipefail
BUILD_DIR=${1:-build}
ROUNDS=${ROUNDS:-1}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r/$ROUNDS: embedserve create_bench" >&2
  "$BUILD_DIR/bench/create_bench" --benchmark_filter="${CREATE_FILTER:-.}" \
    --benchmark_out="$OUT/cpp$r.json" --benchmark_out_format=json >&2
  echo "== round $r/$ROUNDS: torch.nn.Embedding" >&2
  /usr/bin/python3 -c '
import json, statistics, sys, time
import torch
shapes = [("2M_sgd", 2_000_000, False), ("4M_adagrad", 4_000_000, True),
          ("20M_sgd", 20_000_000, False)]
out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "ms": {}}
for name, n, adagrad in shapes:
    times = []
    for _ in range(1 if n > 4_000_000 else 3):
        torch.manual_seed(0)
        t0 = time.perf_counter()
        e = torch.nn.Embedding(n, 64)
        opt = torch.optim.Adagrad(e.parameters()) if adagrad else None
        times.append((time.perf_counter() - t0) * 1e3)
        del e, opt
    out["ms"][name] = statistics.median(times)
    print("torch %s: %.0f ms" % (name, out["ms"][name]), file=sys.stderr)
json.dump(out, sys.stdout)
' > "$OUT/torch$r.json"
done
/usr/bin/python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {}  # (shape, variant) -> [(ms, torch ms)]
for r in range(1, rounds + 1):
    cpp = json.load(open("%s/cpp%d.json" % (out, r)))
    torch = json.load(open("%s/torch%d.json" % (out, r)))
    for b in cpp["benchmarks"]:
        parts = b["run_name"].split("/")
        if parts[0] != "create" or b.get("error_occurred"):
            continue
        shape = parts[1]
        variant = "/".join(p for p in parts[2:] if not p.startswith(("iterations", "real_time")))
        rows.setdefault((shape, variant), []).append((b["real_time"], torch["ms"].get(shape)))
    for shape, ms in torch["ms"].items():
        rows.setdefault((shape, "torch nn.Embedding"), []).append((ms, ms))
print("create N x 64 in memory, N(0, 1) rows; torch %s with %d threads; %d round(s)"
      % (torch["torch"], torch["threads"], rounds))
print("%-12s %-22s %10s %16s" % ("shape", "variant", "ms", "ours / torch"))
for (shape, variant) in sorted(rows, key=lambda k: (["2M_sgd", "4M_adagrad", "20M_sgd"].index(k[0])
                                                    if k[0] in ("2M_sgd", "4M_adagrad", "20M_sgd")
                                                    else 9, k[1])):
    v = rows[(shape, variant)]
    ms = statistics.median(t for t, _ in v)
    ratios = [t / base for t, base in v if base]
    print("%-12s %-22s %10.0f %16s" % (shape, variant, ms,
                                       "%.2fx" % statistics.median(ratios) if ratios else "-"))
PY
