"""Times torch.nn.functional.embedding and embedding_bag (one thread) on the
same table shape and the same ids as bench/gather_bench.cc, and prints one
JSON object. Run with Debian's python (/usr/bin/python3)."""

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

MASK = (1 << 64) - 1


def splitmix64(x):
    """bench/bench_ids.h SplitMix64, vectorised over uint64 arrays."""
    x = (x + np.uint64(0x9e3779b97f4a7c15)) & np.uint64(MASK)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
    return x ^ (x >> np.uint64(31))


def uniform_ids(n, num_rows, seed):
    with np.errstate(over="ignore"):
        h = splitmix64(np.arange(n, dtype=np.uint64) + np.uint64(seed))
    return (h % np.uint64(num_rows)).astype(np.int64)


def best_time(fn, min_seconds):
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_seconds or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), len(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=int(os.environ.get("EMBEDSERVE_BENCH_ROWS", 10_000_000)))
    p.add_argument("--dim", type=int, default=int(os.environ.get("EMBEDSERVE_BENCH_DIM", 64)))
    p.add_argument("--ids", type=int, default=int(os.environ.get("EMBEDSERVE_BENCH_IDS", 65_536)))
    p.add_argument("--bag", type=int, default=8)
    p.add_argument("--seconds", type=float, default=2.0)
    a = p.parse_args()
    torch.set_num_threads(1)
    w = torch.empty(a.rows, a.dim).uniform_()
    ids_np = uniform_ids(a.ids, a.rows, 12345)
    ids = torch.from_numpy(ids_np)
    offsets = torch.arange(0, a.ids, a.bag)
    with torch.no_grad():
        t_emb, n_emb = best_time(lambda: F.embedding(ids, w), a.seconds)
        t_bag, n_bag = best_time(lambda: F.embedding_bag(ids, w, offsets, mode="sum"), a.seconds)
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "rows": a.rows, "dim": a.dim, "ids": a.ids, "bag": a.bag,
        "first_ids": ids_np[:4].tolist(),
        "embedding_us": t_emb * 1e6, "embedding_iters": n_emb,
        "embedding_bag_us": t_bag * 1e6, "embedding_bag_iters": n_bag,
    }))


if __name__ == "__main__":
    main()
