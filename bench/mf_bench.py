"""Matrix-factorisation training steps/s: RemoteEmbedding on a durable
embedserve vs the same model trained locally in torch (issue 14, item 7).

The loop of client/python/examples/train_mf.py (BPR loss on a dot product of
a user and an item embedding, SparseAdam) at 1 M users, 100 K items, dim 64,
batch 4,096, trained three ways from the same weights on the same batches,
interleaved in one run (local, synchronous, overlapped, local, ...):
  local       nn.Embedding(sparse=True) + torch.optim.SparseAdam
  sync        RemoteEmbedding with window=0: four round trips per step
              (two lookups, two pushes), as before item 7
  overlapped  RemoteEmbedding with a push window (default 4) and one
              multi-table lookup per step (remote_lookup)
The server runs with --data_dir in a temporary directory and
--durability=async. Prints steps/s and the ratios to local, a client-side
breakdown of the overlapped step, and checks the results: overlapped rows
must equal the synchronous ones exactly, and both must agree with local
torch (max abs difference printed). One JSON object on the last line.

  PYTHONPATH=build/python /usr/bin/python3 bench/mf_bench.py --server build/server/embedserve
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from embedserve_client import EmbeddingClient, RemoteEmbedding, remote_lookup


class Server:
    """A durable embedserve on 127.0.0.1 with a free port, its data in a
    temporary directory; stopped by stop()."""

    def __init__(self, binary, *args):
        self.dir = tempfile.TemporaryDirectory(prefix="mf-bench-")
        port_file = os.path.join(self.dir.name, "port")
        self.log = open(os.path.join(self.dir.name, "server.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--address=127.0.0.1:0", "--port_file=" + port_file,
             "--data_dir=" + os.path.join(self.dir.name, "data"), *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("embedserve did not start")
            time.sleep(0.05)
        with open(port_file) as f:
            self.address = "127.0.0.1:" + f.read().strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait()
        self.log.close()
        self.dir.cleanup()


def bpr(u_rows, item_rows):
    scores = (u_rows[:, None, :] * item_rows).sum(-1)
    return -F.logsigmoid(scores[:, 0] - scores[:, 1]).mean()


class Local:
    def __init__(self, w_users, w_items, lr):
        self.users = torch.nn.Embedding.from_pretrained(w_users.clone(), freeze=False,
                                                        sparse=True)
        self.items = torch.nn.Embedding.from_pretrained(w_items.clone(), freeze=False,
                                                        sparse=True)
        self.opt = torch.optim.SparseAdam(
            list(self.users.parameters()) + list(self.items.parameters()), lr=lr)

    def step(self, u, pair, timings):
        self.opt.zero_grad()
        loss = bpr(self.users(u), self.items(pair))
        loss.backward()
        self.opt.step()
        return loss

    def rows(self, users, items):
        return (self.users.weight.detach()[users].numpy(),
                self.items.weight.detach()[items].numpy())


class Remote:
    def __init__(self, address, admin, tag, w_users, w_items, lr, window, together):
        self.client = EmbeddingClient(address, timeout=600)
        self.tables = ("mf_users_" + tag, "mf_items_" + tag)
        for name, w in zip(self.tables, (w_users, w_items)):
            admin.create_table(name, weights=w.numpy(), optimizer="sparse_adam",
                               optimizer_args={"lr": lr})
        self.users = RemoteEmbedding(self.client, self.tables[0], window=window)
        self.items = RemoteEmbedding(self.client, self.tables[1], window=window)
        self.together = together

    def step(self, u, pair, timings):
        t0 = time.perf_counter()
        if self.together:
            u_rows, item_rows = remote_lookup((self.users, u), (self.items, pair))
        else:  # as the example does it
            item_rows, u_rows = self.items(pair), self.users(u)
        t1 = time.perf_counter()
        loss = bpr(u_rows, item_rows)
        t2 = time.perf_counter()
        loss.backward()  # pushes (through the window: encode + send)
        t3 = time.perf_counter()
        timings["lookup"] += t1 - t0
        timings["compute"] += t2 - t1
        timings["backward_push"] += t3 - t2
        return loss

    def rows(self, users, items):
        return tuple(self.client.lookup(t, ids) for t, ids in zip(self.tables, (users, items)))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True, help="embedserve binary")
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per mode")
    p.add_argument("--steps", type=int, default=10, help="steps per round")
    p.add_argument("--window", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--durability", default="async")
    p.add_argument("--server_arg", action="append", default=[])
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    w_users = torch.randn(a.users, a.dim) * 0.1
    w_items = torch.randn(a.items, a.dim) * 0.1
    server = Server(a.server, "--durability=" + a.durability, *a.server_arg)
    try:
        admin = EmbeddingClient(server.address, timeout=600)
        admin.wait_for_ready(60)
        models = {
            "local": Local(w_users, w_items, a.lr),
            "sync": Remote(server.address, admin, "sync", w_users, w_items, a.lr, 0, False),
            "overlapped": Remote(server.address, admin, "ovl", w_users, w_items, a.lr,
                                 a.window, True),
        }
        del w_users, w_items
        rng = np.random.default_rng(1)
        total_steps = (a.rounds + 1) * a.steps
        data = [(torch.from_numpy(rng.integers(0, a.users, a.batch)),
                 torch.from_numpy(np.stack([rng.integers(0, a.items, a.batch),
                                            rng.integers(0, a.items, a.batch)], 1)))
                for _ in range(total_steps)]
        seconds = {m: 0.0 for m in models}
        timings = {m: {"lookup": 0.0, "compute": 0.0, "backward_push": 0.0} for m in models}
        losses = {m: [] for m in models}
        for r in range(a.rounds + 1):  # round 0 warms up, uncounted
            for mode, model in models.items():
                t0 = time.perf_counter()
                for s in range(r * a.steps, (r + 1) * a.steps):
                    losses[mode].append(model.step(*data[s], timings[mode]).item())
                if mode != "local":
                    model.client.flush()  # the round ends with its pushes applied
                if r > 0:
                    seconds[mode] += time.perf_counter() - t0
                else:
                    timings[mode] = {k: 0.0 for k in timings[mode]}
        counted = a.rounds * a.steps
        rate = {m: counted / seconds[m] for m in models}
        sample_u = np.random.default_rng(2).choice(a.users, 20_000, replace=False)
        sample_i = np.random.default_rng(3).choice(a.items, 20_000, replace=False)
        rows = {m: model.rows(sample_u, sample_i) for m, model in models.items()}
        identical = all(np.array_equal(x, y) for x, y in zip(rows["overlapped"], rows["sync"]))
        identical_losses = losses["overlapped"] == losses["sync"]
        vs_torch = max(float(np.max(np.abs(x - y))) for x, y in zip(rows["sync"], rows["local"]))
        result = {
            "steps_per_s": {m: round(v, 2) for m, v in rate.items()},
            "ratio_to_local": {m: round(rate[m] / rate["local"], 3) for m in models},
            "overlapped_vs_sync_rows_identical": identical,
            "overlapped_vs_sync_losses_identical": identical_losses,
            "max_abs_diff_remote_vs_local_torch": vs_torch,
            "ms_per_step": {m: {k: round(v / counted * 1e3, 2) for k, v in timings[m].items()}
                            for m in ("sync", "overlapped")},
            "config": {k: getattr(a, k) for k in ("users", "items", "dim", "batch", "rounds",
                                                  "steps", "window", "durability")},
        }
        for m in models:
            print("%-10s %7.2f steps/s  %.3fx local" % (m, rate[m], rate[m] / rate["local"]))
        print("overlapped rows == sync rows: %s; losses identical: %s; "
              "max |remote - local torch| = %.3g" % (identical, identical_losses, vs_torch))
        for m in ("sync", "overlapped"):
            print("%-10s per step (ms): %s" % (m, result["ms_per_step"][m]))
        print(json.dumps(result))
        for model in models.values():
            if isinstance(model, Remote):
                model.client.close()
        admin.close()
        return 0 if identical and identical_losses else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
