#!/usr/bin/env python3
"""Ratios of bench/dynamic_bench's figures (issue 15's targets), from its JSON.

  build/bench/dynamic_bench --benchmark_out=dyn.json --benchmark_out_format=json
  python3 bench/dynamic_bench_ratios.py dyn.json
"""
import json
import statistics
import sys


def main(path):
    runs = json.load(open(path))["benchmarks"]
    # Per benchmark: the median aggregate when the run had repetitions
    # (--benchmark_repetitions), else the median of its iteration runs;
    # stddev and cv aggregates never stand in for a rate.
    samples, medians, extra = {}, {}, {}
    for r in runs:
        name = r["name"].split("/")
        if len(name) < 2 or not name[1].isdigit():
            continue
        key = (name[0], int(name[1]))
        if r.get("run_type") == "aggregate":
            if r.get("aggregate_name") == "median":
                medians[key] = r.get("items_per_second")
                extra[key] = r
        else:
            samples.setdefault(key, []).append(r.get("items_per_second"))
            extra.setdefault(key, r)
    rate = dict(medians)
    for key, v in samples.items():
        if key not in rate and all(x is not None for x in v):
            rate[key] = statistics.median(v)
    sizes = sorted({n for (_, n) in rate})
    pairs = [
        ("stored", "dense", 0.7, "lookups of stored ids / dense gather"),
        ("stored_steps", "dense", None, "the same, protocol step by step / dense"),
        ("stored_norecheck", "dense", None, "the steps without Recheck / dense"),
        ("unseen", "dense", 0.5, "lookups of unseen ids / dense gather"),
        ("unseen_nofill", "dense", None, "the same without the initial rows / dense"),
        ("push_insert", "push_update", 0.5, "pushes that insert / pushes that update"),
        ("push_insert_zeros", "push_update", None, "inserts with zero init / updates"),
        ("resolve_index", "resolve_absl", None, "id index resolve / flat_hash_map find"),
        ("resolve_unseen", "resolve_absl", None, "id index resolve of unseen ids / flat_hash_map"),
    ]
    for n in sizes:
        print(f"N = {n}")
        for a, b, target, what in pairs:
            if rate.get((a, n)) and rate.get((b, n)):
                ratio = rate[(a, n)] / rate[(b, n)]
                goal = f"  (target >= {target})" if target else ""
                print(f"  {what:50s} {ratio:6.2f}x{goal}")
        r = extra.get(("stored", n))
        if r:
            print(f"  index bytes/row {r['index_B_per_row']:.1f}, slot meta bytes/row "
                  f"{r['meta_B_per_row']:.1f}, rows+index+meta over raw float32 rows "
                  f"{r['total_over_raw']:.3f}x (target <= 1.3)")
        for name in ("push_update", "push_insert", "push_insert_zeros"):
            r = extra.get((name, n))
            if r and r.get("index_rebuilds"):
                print(f"  note: {name} ran an id index rebuild (erased buckets cleared, "
                      f"amortised over ~0.25 x capacity inserts): its figure includes it")
        r = extra.get(("resolve_absl", n))
        if r:
            print(f"  flat_hash_map bytes/row {r['index_B_per_row']:.1f}")
    rate1 = {r["name"]: r.get("items_per_second") for r in runs
             if r.get("run_type") != "aggregate"}
    rate1.update({r["run_name"]: r.get("items_per_second") for r in runs
                  if r.get("aggregate_name") == "median"})
    if rate1.get("initial_row") and rate1.get("fill_ids"):
        print(f"initial rows of 512 random ids: RowInitializer::Fill / InitialRow "
              f"{rate1['fill_ids'] / rate1['initial_row']:.2f}x")
    for r in runs:
        if r["name"].startswith("sketch_false_admission") and r.get("run_type") != "aggregate":
            print(f"sketch {r['sketch_bytes'] / 1024:.0f} KiB: false admission rate "
                  f"{r['false_admission_rate']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
