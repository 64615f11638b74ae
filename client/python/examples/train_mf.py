#!/usr/bin/python3
"""Train a matrix-factorisation recommender whose user and item tables live
on an embedserve server.

A synthetic implicit-feedback data set (fixed seed): users and items have
hidden taste vectors, and each user interacts with items drawn by affinity.
One interaction per user is held out. The model scores user-item pairs with a
dot product of two RemoteEmbedding tables and trains with BPR loss; the
server's optimizer (SparseAdam by default) applies every step. It prints the
loss per epoch and the hit-rate@10 of the held-out items.

The embedserve_client package must be importable: installed
(client/python/README.md), or the build tree's copy on PYTHONPATH:

  PYTHONPATH=build/python /usr/bin/python3 client/python/examples/train_mf.py  # starts a server
  PYTHONPATH=build/python /usr/bin/python3 client/python/examples/train_mf.py \
      --address 127.0.0.1:50051
"""

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from embedserve_client import EmbeddingClient, RemoteEmbedding, remote_lookup

HERE = os.path.dirname(os.path.abspath(__file__))


@contextlib.contextmanager
def local_server(binary):
    """Yields the address of a memory-only embedserve started from `binary` on
    127.0.0.1 with a free port (the server writes it to --port_file); stops
    the server on exit. Its log goes to our stderr."""
    with tempfile.TemporaryDirectory(prefix="train-mf-") as tmp:
        port_file = os.path.join(tmp, "port")
        proc = subprocess.Popen([binary, "--address=127.0.0.1:0", "--port_file=" + port_file,
                                 "--data_dir="], stdout=sys.stderr)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(port_file):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("%s did not start" % binary)
                time.sleep(0.05)
            with open(port_file) as f:
                yield "127.0.0.1:" + f.read().strip()
        finally:
            proc.terminate()
            proc.wait()


def make_data(users, items, per_user, seed):
    rng = np.random.default_rng(seed)
    taste_u = rng.normal(size=(users, 8))
    taste_i = rng.normal(size=(items, 8))
    affinity = taste_u @ taste_i.T
    train, test = [], []
    for u in range(users):
        p = np.exp(affinity[u] - affinity[u].max())
        p /= p.sum()
        chosen = rng.choice(items, size=per_user + 1, replace=False, p=p)
        test.append((u, chosen[0]))
        train.extend((u, i) for i in chosen[1:])
    return np.array(train), np.array(test)


def hit_rate_at_10(client, users_table, items_table, train, test, users, items):
    u_emb = client.lookup(users_table, np.arange(users))
    i_emb = client.lookup(items_table, np.arange(items))
    scores = u_emb @ i_emb.T
    scores[train[:, 0], train[:, 1]] = -np.inf  # rank only unseen items
    top10 = np.argsort(-scores, axis=1)[:, :10]
    return float(np.mean([i in top10[u] for u, i in test]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", help="server host:port (default: start one)")
    p.add_argument("--server", default=os.path.join(HERE, "..", "..", "..", "build", "server",
                                                    "embedserve"),
                   help="embedserve binary to start when no --address is given")
    p.add_argument("--users", type=int, default=600)
    p.add_argument("--items", type=int, default=400)
    p.add_argument("--per_user", type=int, default=15)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--optimizer", default="sparse_adam",
                   choices=["sgd", "adagrad", "rowwise_adagrad", "sparse_adam"])
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)

    with contextlib.ExitStack() as stack:
        if a.address is None:
            a.address = stack.enter_context(local_server(os.path.abspath(a.server)))
        return fit(a)


def fit(a):
    """Trains on the server at a.address; returns the losses per epoch and the
    final hit-rate@10."""
    client = EmbeddingClient(a.address)
    client.wait_for_ready()
    suffix = "%d_%d" % (os.getpid(), a.seed)
    users_table, items_table = "mf_users_" + suffix, "mf_items_" + suffix
    for name, n in ((users_table, a.users), (items_table, a.items)):
        client.create_table(name, n, a.dim, init="normal", std=0.1, seed=a.seed + n,
                            optimizer=a.optimizer, optimizer_args={"lr": a.lr})
    user_emb = RemoteEmbedding(client, users_table)
    item_emb = RemoteEmbedding(client, items_table)

    train, test = make_data(a.users, a.items, a.per_user, a.seed)
    rng = np.random.default_rng(a.seed + 1)
    print("data: %d users, %d items, %d training interactions, %d held out"
          % (a.users, a.items, len(train), len(test)))
    print("hit-rate@10 before training: %.3f (random: %.3f)"
          % (hit_rate_at_10(client, users_table, items_table, train, test, a.users,
                            a.items), 10 / a.items))
    losses = []
    for epoch in range(a.epochs):
        order = rng.permutation(len(train))
        total = 0.0
        for start in range(0, len(order), a.batch):
            batch = train[order[start:start + a.batch]]
            u = torch.from_numpy(batch[:, 0])
            pos = torch.from_numpy(batch[:, 1])
            neg = torch.from_numpy(rng.integers(0, a.items, len(batch)))
            # Both tables in one request (one round trip, not two).
            users_rows, items = remote_lookup((user_emb, u),
                                              (item_emb, torch.stack([pos, neg], dim=1)))
            scores = (users_rows[:, None, :] * items).sum(-1)  # items: [B, 2, dim]
            loss = -F.logsigmoid(scores[:, 0] - scores[:, 1]).mean()
            loss.backward()  # pushes both tables' gradients; the server steps
            total += loss.item() * len(batch)
        losses.append(total / len(train))
        print("epoch %d: BPR loss %.4f" % (epoch + 1, losses[-1]))
    hr = hit_rate_at_10(client, users_table, items_table, train, test, a.users, a.items)
    print("hit-rate@10 after training: %.3f (random: %.3f)" % (hr, 10 / a.items))
    for name in (users_table, items_table):
        client.drop_table(name)
    client.close()
    return losses, hr


if __name__ == "__main__":
    main()
