#!/usr/bin/env python3
"""Ratios of a Google Benchmark binary's figures to one baseline benchmark,
per process and as the median over several processes.

Why several processes: on a VM one process's ratio moves with where its
memory landed (bench/dynamic_bench's stored-id lookups / dense gather gave
0.46x to 0.81x between processes of one binary, ±0.15 around the median),
so a figure is the median of the per-process ratios, each process running
the benchmarks side by side (interleaved at random, repetitions, medians
of CPU time). A/B: run it on each binary in turn, or alternate binaries
with --processes 1 in a loop.

  python3 bench/multi_process_ratios.py build/bench/dynamic_bench \\
      --filter '^(dense|stored|unseen)/10000000/10000000$' --baseline dense \\
      --processes 4 --repetitions 8
"""
import argparse
import collections
import json
import statistics
import subprocess
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binary")
    p.add_argument("--filter", required=True, help="--benchmark_filter")
    p.add_argument("--baseline", required=True,
                   help="the benchmark the others are divided by (its name up to the first '/')")
    p.add_argument("--processes", type=int, default=4)
    p.add_argument("--repetitions", type=int, default=8)
    p.add_argument("--min_time", default="0.4", help="--benchmark_min_time, seconds")
    a = p.parse_args()
    if a.processes < 1 or a.repetitions < 1:
        p.error("--processes and --repetitions must be at least 1")
    ratios = collections.defaultdict(list)
    for proc in range(a.processes):
        run = subprocess.run(
            [a.binary, "--benchmark_filter=" + a.filter,
             "--benchmark_repetitions=%d" % a.repetitions,
             "--benchmark_min_time=" + a.min_time,
             "--benchmark_enable_random_interleaving=true",
             "--benchmark_report_aggregates_only=true", "--benchmark_format=json"],
            capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit("%s failed (exit %d): %s" % (a.binary, run.returncode, run.stderr[-2000:]))
        medians = {b["run_name"]: b["cpu_time"] for b in json.loads(run.stdout)["benchmarks"]
                   if b.get("aggregate_name") == "median"}
        base = [v for k, v in medians.items() if k.split("/")[0] == a.baseline]
        if len(base) != 1:
            sys.exit("the filter must select exactly one '%s' benchmark, found %d"
                     % (a.baseline, len(base)))
        line = []
        for name, cpu in sorted(medians.items()):
            if name.split("/")[0] == a.baseline:
                continue
            ratios[name].append(base[0] / cpu)
            line.append("%s=%.3f" % (name, base[0] / cpu))
        print("process %d: %s %.0f ns; %s" % (proc, a.baseline, base[0], " ".join(line)),
              flush=True)
    for name, v in sorted(ratios.items()):
        print("%-50s median %.3f over %d processes (%s)"
              % (name, statistics.median(v), len(v), " ".join("%.2f" % x for x in v)))


if __name__ == "__main__":
    main()
