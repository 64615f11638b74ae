"""Restart of a durable server (issue 14, item 4): newest snapshot + replay of
the update log, against table size and log length, next to reading the same
bytes from the page cache; and the data dir's disk use before and after a
snapshot.

For each table size (--rows, dim 64, SGD): a server creates the table and
snapshots it (--snapshot_log_bytes=1), then is stopped. A server that never
snapshots (--snapshot_log_bytes=0 --snapshot_interval_s=0) takes pushes of
4,096 rows until the log holds each of --log_mib, and at each point is killed
with SIGKILL and restarted: the time until its port file appears (it serves)
and until a first lookup answers, next to `cat` of every file of the data dir
(the second of two reads: from the page cache). Last, a server with
--snapshot_log_bytes=1 snapshots the table and drops the log: du before and
after.

    PYTHONPATH=build/python /usr/bin/python3 bench/restart_bench.py --server build/server/embedserve

With --compare OLD_BINARY (and --repeats N), each table size gets one data
dir per binary, each written by its own binary (its own snapshot) with the
same pushes, and at each log length the two binaries restart their dirs N
times, alternating (kill -9 after each); the medians come last. Nothing is
deleted before the data dirs are: --keep leaves them (and prints where); without
--compare a kept data dir has been snapshotted last (its log dropped).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

from embedserve_client import EmbeddingClient

PUSH_ROWS = 4096
DIM = 64


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def dir_bytes(path, sub=""):
    total = 0
    for root, _, files in os.walk(os.path.join(path, sub)):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except FileNotFoundError:
                pass
    return total


def cat_seconds(path):
    """Seconds to read every file under `path` (cat > /dev/null), second of two."""
    files = [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs]
    for _ in range(2):
        t0 = time.perf_counter()
        subprocess.run(["cat"] + files, stdout=subprocess.DEVNULL, check=True)
        seconds = time.perf_counter() - t0
    return seconds


class Server:
    def __init__(self, binary, data_dir, work, *flags):
        self.port_file = os.path.join(work, "port")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log_path = os.path.join(work, "server.log")
        self.log = open(self.log_path, "a")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [binary, "--address=127.0.0.1:0", "--port_file=" + self.port_file,
             "--data_dir=" + data_dir, "--durability=async", *flags],
            stdout=self.log, stderr=self.log)
        while not (os.path.exists(self.port_file) and os.path.getsize(self.port_file) > 0):
            if self.proc.poll() is not None:
                sys.exit("server exited: see " + self.log_path)
            time.sleep(0.005)
        self.serving_s = time.perf_counter() - self.started
        with open(self.port_file) as f:
            self.address = "127.0.0.1:" + f.read().strip()

    def first_lookup_s(self, table):
        client = EmbeddingClient(self.address, timeout=600)
        client.lookup(table, np.arange(8))
        seconds = time.perf_counter() - self.started
        client.close()
        return seconds

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait()
        self.log.close()


def snapshots(log_path):
    """Snapshots that wrote the table, logged so far."""
    if not os.path.exists(log_path):
        return 0
    with open(log_path) as f:
        return f.read().count("snapshot of 1 tables")


def wait_for_snapshots(log_path, count, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if snapshots(log_path) >= count:
            return
        time.sleep(0.1)
    sys.exit("no snapshot in %s" % log_path)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def make_table(binary, data, work, rows):
    """A server of `binary` creates table t in `data` and snapshots it."""
    seen = snapshots(os.path.join(work, "server.log"))
    s = Server(binary, data, work, "--snapshot_log_bytes=1", "--snapshot_interval_s=0")
    EmbeddingClient(s.address, timeout=600).create_table(
        "t", rows, DIM, init="uniform", optimizer="sgd", optimizer_args={"lr": 0.01})
    wait_for_snapshots(s.log_path, seen + 1)
    s.kill(signal.SIGTERM)


def fill_log(binary, data, work, rows, target, rng, grads):
    """Pushes until the log of `data` holds about `target` bytes."""
    s = Server(binary, data, work, "--snapshot_log_bytes=0", "--snapshot_interval_s=0")
    client = EmbeddingClient(s.address, timeout=600)
    responses = client.push_stream(
        ("t", rng.integers(0, rows, PUSH_ROWS), grads)
        for _ in range(max(0, (target - dir_bytes(data, "log")) // (PUSH_ROWS * (DIM * 4 + 8)))))
    for r in responses:
        if r.code != 0:
            sys.exit("push failed: %s" % r)
    client.close()
    s.kill()  # SIGKILL: no orderly shutdown


def compare(args, work, grads):
    binaries = [("old", args.compare), ("new", args.server)]
    print("binary  rows      log_MiB  round  first_lookup_s  cat_s  ratio")
    results = {}
    for rows in [int(r) for r in args.rows.split(",")]:
        dirs = {name: os.path.join(work, "data-%s-%d" % (name, rows)) for name, _ in binaries}
        rngs = {name: np.random.default_rng(rows) for name, _ in binaries}
        for name, binary in binaries:
            make_table(binary, dirs[name], work, rows)
        for target in [int(m) << 20 for m in args.log_mib.split(",")]:
            for name, binary in binaries:
                fill_log(binary, dirs[name], work, rows, target, rngs[name], grads)
            for rnd in range(args.repeats):
                for name, binary in (binaries if rnd % 2 == 0 else binaries[::-1]):
                    data = dirs[name]
                    cat_s = cat_seconds(data)
                    s = Server(binary, data, work, "--snapshot_log_bytes=0",
                               "--snapshot_interval_s=0")
                    first = s.first_lookup_s("t")
                    s.kill()  # SIGKILL, as a crash: the next start finds the same state
                    log_mib = dir_bytes(data, "log") / 2**20
                    results.setdefault((rows, target, name), []).append(
                        (first, cat_s, log_mib, dir_bytes(data) / 2**20))
                    print("%-7s %-9d %8.0f %6d %15.3f %6.3f %6.2fx" % (
                        name, rows, log_mib, rnd, first, cat_s, first / cat_s), flush=True)
    print("\nmedians over %d restarts each (ratio: median of the per-restart ratios)" %
          args.repeats)
    print("rows      log_MiB  binary  data_MiB  first_lookup_s  cat_s  ratio  best_ratio")
    for (rows, target, name), rs in sorted(results.items()):
        ratios = [f / c for f, c, _, _ in rs]
        print("%-9d %8.0f  %-6s %9.0f %15.3f %6.3f %5.2fx %9.2fx" % (
            rows, rs[-1][2], name, rs[-1][3], median([r[0] for r in rs]),
            median([r[1] for r in rs]), median(ratios), min(ratios)))
    for rows, target, name in sorted(results):
        if name != "new":
            continue
        old = median([r[0] for r in results[(rows, target, "old")]])
        new = median([r[0] for r in results[(rows, target, "new")]])
        print("rows %d, log %d MiB: new / old first lookup %.2fx" % (rows, target >> 20,
                                                                      new / old))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--rows", default="1000000,4000000")
    parser.add_argument("--log_mib", default="0,256,1024")
    parser.add_argument("--data_root", default="/var/tmp")
    parser.add_argument("--compare", help="an older server binary to alternate with")
    parser.add_argument("--repeats", type=int, default=5, help="restarts per binary (--compare)")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="embedserve-restart-bench.", dir=args.data_root)
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((PUSH_ROWS, DIM)).astype("<f4") * 1e-3
    if args.compare:
        try:
            compare(args, work, grads)
        finally:
            if args.keep:
                print("data dirs kept in", work)
            else:
                shutil.rmtree(work, ignore_errors=True)
        return
    print("rows      table_MiB  log_MiB  serving_s  first_lookup_s  cat_MiB  cat_s  ratio"
          "   (ratio = first lookup / cat of the data dir from the page cache)")
    try:
        for rows in [int(r) for r in args.rows.split(",")]:
            data = os.path.join(work, "data-%d" % rows)
            seen = snapshots(os.path.join(work, "server.log"))
            s = Server(args.server, data, work, "--snapshot_log_bytes=1",
                       "--snapshot_interval_s=0")
            EmbeddingClient(s.address, timeout=600).create_table(
                "t", rows, DIM, init="uniform", optimizer="sgd", optimizer_args={"lr": 0.01})
            wait_for_snapshots(s.log_path, seen + 1)
            s.kill(signal.SIGTERM)
            pushed = 0
            for target in [int(m) << 20 for m in args.log_mib.split(",")]:
                s = Server(args.server, data, work, "--snapshot_log_bytes=0",
                           "--snapshot_interval_s=0")
                client = EmbeddingClient(s.address, timeout=600)
                responses = client.push_stream(
                    ("t", rng.integers(0, rows, PUSH_ROWS), grads)
                    for _ in range(max(0, (target - dir_bytes(data, "log")) //
                                       (PUSH_ROWS * (DIM * 4 + 8)))))
                for r in responses:
                    if r.code != 0:
                        sys.exit("push failed: %s" % r)
                    pushed += 1
                client.close()
                s.kill()  # SIGKILL: no orderly shutdown
                log_bytes = dir_bytes(data, "log")
                total = dir_bytes(data)
                cat_s = cat_seconds(data)
                s = Server(args.server, data, work, "--snapshot_log_bytes=0",
                           "--snapshot_interval_s=0")
                first = s.first_lookup_s("t")
                print("%-9d %9.0f %8.0f %10.2f %15.2f %8.0f %6.2f %6.1fx" % (
                    rows, rows * DIM * 4 / 2**20, log_bytes / 2**20, s.serving_s, first,
                    total / 2**20, cat_s, first / cat_s), flush=True)
                s.kill(signal.SIGTERM)
            before, before_apparent = du(data), dir_bytes(data)
            seen = snapshots(os.path.join(work, "server.log"))
            s = Server(args.server, data, work, "--snapshot_log_bytes=1",
                       "--snapshot_interval_s=0")
            wait_for_snapshots(s.log_path, seen + 1)
            time.sleep(2)  # RocksDB deletes the replaced files after the commit
            after, after_apparent = du(data), dir_bytes(data)
            s.kill(signal.SIGTERM)
            # du counts RocksDB's preallocated WAL and MANIFEST (~75 MiB of
            # blocks whatever their contents); file sizes do not.
            print("disk use of the %d-row data dir: du %.0f MiB (files %.0f MiB) with %d pushes "
                  "in the log; after a snapshot du %.0f MiB (files %.0f MiB)" % (
                      rows, before / 2**20, before_apparent / 2**20, pushed, after / 2**20,
                      after_apparent / 2**20), flush=True)
    finally:
        if args.keep:
            print("data dirs kept in", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
