"""Soak: a real server with a temporary --data_dir under mixed load for a
fixed time, its RSS sampled every 5 s into a CSV; at the end, the RSS over
time and whether it is flat after warm-up.

Load (one thread each): lookups of 256 random rows, pooled lookups (64 bags
of 8), pushes of 64 rows (Adagrad), and an admin thread that creates, looks
up and drops small tables, and now and then loads or imports a .npy
(dropped again) or takes a checkpoint.

Flat: over the last half of the run, RSS's maximum and mean are within
max(32 MiB, 10%) of those between warm-up (20% of the run, at least 10 s)
and the middle; a linear trend (MiB/min) is printed too. Exit status 0 if
flat, the server alive and no unexpected errors (a RESOURCE_EXHAUSTED from a
busy admin lane is expected and counted).

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 bench/soak.py \
        --server build/server/embedserve --seconds 600 --csv soak.csv
(bench/soak.sh BUILD_DIR [SECONDS] does this; --judge re-reads a CSV.)
"""

import argparse
import collections
import os
import random
import signal
import sys
import tempfile
import threading
import time

import numpy as np

SAMPLE_S = 5.0


def rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = collections.Counter()
        self.errors = collections.Counter()
        self.lookup_ms = []           # since the last sample

    def op(self, kind, ms=None):
        with self.lock:
            self.ops[kind] += 1
            if ms is not None:
                self.lookup_ms.append(ms)

    def error(self, kind, err):
        with self.lock:
            self.errors["%s %s" % (kind, err.code().name)] += 1

    def take_latencies(self):
        with self.lock:
            out, self.lookup_ms = self.lookup_ms, []
        return out


def judge(samples, seconds):
    """Prints and returns whether RSS is flat after warm-up. The allocator's
    periodic trim makes RSS a sawtooth, so one sample is a poor reference:
    the last half of the run is compared with the part between warm-up and
    the middle, by maximum and by mean, and a linear fit gives the trend."""
    warm = max(10.0, 0.2 * seconds)
    end = samples[-1][0]
    first = [r for t, r in samples if warm <= t < end / 2 and r is not None]
    last = [r for t, r in samples if t >= end / 2 and r is not None]
    if len(first) < 2 or len(last) < 2:
        print("too short a run to judge flatness")
        return False
    ref_max, ref_mean = max(first), sum(first) / len(first)
    top, mean = max(last), sum(last) / len(last)
    bound = max(32.0, 0.10 * ref_max)
    post = [(t, r) for t, r in samples if t >= warm and r is not None]
    slope = np.polyfit([t for t, _ in post], [r for _, r in post], 1)[0] * 60
    flat = top - ref_max <= bound and mean - ref_mean <= bound
    print("after warm-up (t >= %.0f s): RSS max %.1f -> %.1f MiB (%+.1f), mean %.1f -> %.1f MiB "
          "(%+.1f), trend %+.2f MiB/min; bound %.0f MiB: %s"
          % (warm, ref_max, top, top - ref_max, ref_mean, mean, mean - ref_mean, slope, bound,
             "FLAT" if flat else "GROWING"))
    return flat


def judge_csv(path, seconds):
    rows = np.genfromtxt(path, delimiter=",", names=True)
    return judge(list(zip(rows["t_s"].tolist(), rows["rss_mib"].tolist())), seconds)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--csv", default="soak.csv")
    p.add_argument("--judge", action="store_true",
                   help="only judge the samples already in --csv (no server)")
    a = p.parse_args()
    if a.judge:
        return 0 if judge_csv(a.csv, a.seconds) else 1
    import grpc
    from embedserve_client import EmbeddingClient
    from embedserve_testing import ServerProcess

    # SIGTERM/SIGINT end the run early but still stop the server.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    work = tempfile.TemporaryDirectory(prefix="embedserve-soak-")
    npy = os.path.join(work.name, "vectors.npy")
    np.save(npy, np.random.default_rng(0).standard_normal((20_000, 32), dtype=np.float32))
    server = ServerProcess(a.server, "--load_dir=" + work.name)
    c = Counters()
    samples = []          # (t, rss, p50 ms, p99 ms, ops so far)
    ok = True
    try:
        client = EmbeddingClient(server.address, timeout=30)
        client.wait_for_ready()
        client.create_table("users", 200_000, 64, optimizer="adagrad", optimizer_args={"lr": 0.05})
        client.create_table("items", 50_000, 32)
        deadline = time.monotonic() + a.seconds

        def loop(kind, body):
            rng = np.random.default_rng(hash(kind) & 0xFFFF)
            while not stop.is_set() and time.monotonic() < deadline:
                t = time.monotonic()
                try:
                    body(rng)
                    if kind != "admin":  # admin counts its own operations
                        c.op(kind, (time.monotonic() - t) * 1e3 if kind == "lookup" else None)
                except grpc.RpcError as e:
                    c.error(kind, e)
                    if server.proc.poll() is not None:
                        stop.set()

        def lookup(rng):
            client.lookup("users", rng.integers(0, 200_000, 256))

        def pooled(rng):
            client.lookup_pooled("items", rng.integers(0, 50_000, (64, 8)), mode="mean")

        def push(rng):
            ids = rng.integers(0, 200_000, 64)
            client.push("users", ids, rng.standard_normal((64, 64)).astype(np.float32) * 0.01)

        admin_state = {"n": 0, "next_heavy": time.monotonic() + 20}

        def admin(rng):
            n = admin_state["n"] = admin_state["n"] + 1
            name = "small%d" % n
            client.create_table(name, 1000, 16, seed=n)
            client.lookup(name, [0, 1, 999])
            client.drop_table(name)
            c.op("create_drop")
            if time.monotonic() >= admin_state["next_heavy"]:
                admin_state["next_heavy"] = time.monotonic() + 20
                heavy = n % 3
                if heavy == 0:
                    client.load_table("loaded", "vectors.npy")
                    client.drop_table("loaded")
                    c.op("load")
                elif heavy == 1:
                    client.import_table("imported", npy)
                    client.drop_table("imported")
                    c.op("import")
                else:
                    client.create_checkpoint("soak-%d" % n)
                    c.op("checkpoint")
            time.sleep(0.05)

        threads = [threading.Thread(target=loop, args=(k, f), daemon=True)
                   for k, f in (("lookup", lookup), ("pooled", pooled), ("push", push),
                                ("admin", admin))]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        with open(a.csv, "w") as out:
            out.write("t_s,rss_mib,lookup_p50_ms,lookup_p99_ms,lookups,pooled,pushes,"
                      "create_drops,loads,imports,checkpoints,errors\n")
            while not stop.is_set():
                now = time.monotonic()
                rss = rss_mib(server.proc.pid)
                lat = sorted(c.take_latencies())
                p50 = lat[len(lat) // 2] if lat else float("nan")
                p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
                with c.lock:
                    ops = dict(c.ops)
                    errs = sum(c.errors.values())
                samples.append((now - t0, rss, p50, p99))
                out.write("%.1f,%.1f,%.2f,%.2f,%d,%d,%d,%d,%d,%d,%d,%d\n" % (
                    now - t0, rss or -1, p50, p99, ops.get("lookup", 0), ops.get("pooled", 0),
                    ops.get("push", 0), ops.get("create_drop", 0), ops.get("load", 0),
                    ops.get("import", 0), ops.get("checkpoint", 0), errs))
                out.flush()
                if rss is None or now >= deadline:
                    break
                stop.wait(min(SAMPLE_S, max(0.0, deadline - now)))
        stop.set()
        for t in threads:
            t.join(timeout=40)
        alive = server.proc.poll() is None
        client.close()

        # Report.
        print("RSS over time (every %.0f s; lookup latency over the interval before):" % SAMPLE_S)
        print("   t_s  rss_MiB  lookup_p50_ms  lookup_p99_ms")
        step = max(1, len(samples) // 40)
        for i, (t, rss, p50, p99) in enumerate(samples):
            if i % step == 0 or i == len(samples) - 1:
                print("%6.0f  %7.1f  %13.2f  %13.2f" % (t, rss or -1, p50, p99))
        print("operations: %s" % dict(c.ops))
        print("errors: %s" % (dict(c.errors) or "none"))
        flat = judge([(t, r) for t, r, _, _ in samples], a.seconds)
        unexpected = {k: v for k, v in c.errors.items() if "RESOURCE_EXHAUSTED" not in k}
        if not alive:
            print("the server died:\n" + server.log()[-3000:])
        ok = flat and alive and not unexpected
        print("soak: %s (samples in %s)" % ("OK" if ok else "FAILED", a.csv))
    finally:
        stop.set()
        server.stop()
        work.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
