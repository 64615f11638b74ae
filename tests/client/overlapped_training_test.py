"""Overlapped training gives today's numbers: a matrix-factorisation model
(two RemoteEmbedding tables, BPR loss, the server's SparseAdam/Adagrad)
trained with pushes in flight (window 4, one multi-table lookup per step
through remote_lookup, or the two modules called one by one) gives rows and
losses IDENTICAL to the same model trained with synchronous pushes
(window=0), and agrees with local torch (nn.Embedding(sparse=True) and
torch.optim on the same weights) as the torch training conformance does.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/client/overlapped_training_test.py --server build/server/embedserve
"""

import os
import sys
import unittest

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
import harness  # noqa: E402

USERS, ITEMS, DIM, BATCH, STEPS = 300, 120, 16, 64, 40
RTOL, ATOL = 1e-5, 1e-6
_counter = [0]


def batches(seed):
    g = np.random.default_rng(seed)
    return [(g.integers(0, USERS, BATCH), g.integers(0, ITEMS, BATCH),
             g.integers(0, ITEMS, BATCH)) for _ in range(STEPS)]


def bpr(u_rows, item_rows):
    scores = (u_rows[:, None, :] * item_rows).sum(-1)
    return -F.logsigmoid(scores[:, 0] - scores[:, 1]).mean()


class OverlappedTrainingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.admin = harness.start()
        g = torch.Generator().manual_seed(3)
        cls.w_users = torch.randn(USERS, DIM, generator=g) * 0.1
        cls.w_items = torch.randn(ITEMS, DIM, generator=g) * 0.1

    @classmethod
    def tearDownClass(cls):
        harness.stop()

    def remote_run(self, optimizer, args, window, together):
        """Trains on fresh server tables; returns (losses, users, items)."""
        from embedserve_client import EmbeddingClient, RemoteEmbedding, remote_lookup
        _counter[0] += 1
        users, items = "u_%d" % _counter[0], "i_%d" % _counter[0]
        self.admin.create_table(users, weights=self.w_users.numpy(), optimizer=optimizer,
                                optimizer_args=args)
        self.admin.create_table(items, weights=self.w_items.numpy(), optimizer=optimizer,
                                optimizer_args=args)
        client = EmbeddingClient(harness.Server.process.address)
        user_emb = RemoteEmbedding(client, users, window=window)
        item_emb = RemoteEmbedding(client, items, window=window)
        losses = []
        for u, pos, neg in batches(11):
            u, pair = torch.from_numpy(u), torch.from_numpy(np.stack([pos, neg], 1))
            if together:
                u_rows, item_rows = remote_lookup((user_emb, u), (item_emb, pair))
            else:
                item_rows, u_rows = item_emb(pair), user_emb(u)
            loss = bpr(u_rows, item_rows)
            loss.backward()
            losses.append(loss.item())
        # No flush before reading: .weight sees every push (read-your-writes).
        out = losses, user_emb.weight.numpy(), item_emb.weight.numpy()
        if window > 1:
            self.assertIsInstance(user_emb.last_push, int)
        client.close()
        return out

    def local_run(self, make_optimizer):
        users = torch.nn.Embedding.from_pretrained(self.w_users.clone(), freeze=False,
                                                   sparse=True)
        items = torch.nn.Embedding.from_pretrained(self.w_items.clone(), freeze=False,
                                                   sparse=True)
        opt = make_optimizer(list(users.parameters()) + list(items.parameters()))
        losses = []
        for u, pos, neg in batches(11):
            u, pair = torch.from_numpy(u), torch.from_numpy(np.stack([pos, neg], 1))
            opt.zero_grad()
            loss = bpr(users(u), items(pair))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, users.weight.detach().numpy(), items.weight.detach().numpy()

    def check(self, optimizer, args, make_optimizer):
        sync = self.remote_run(optimizer, args, window=0, together=False)
        for together in (True, False):
            with self.subTest(optimizer=optimizer, together=together):
                overlapped = self.remote_run(optimizer, args, window=4, together=together)
                self.assertEqual(overlapped[0], sync[0])  # every loss, exactly
                np.testing.assert_array_equal(overlapped[1], sync[1])
                np.testing.assert_array_equal(overlapped[2], sync[2])
        local = self.local_run(make_optimizer)
        np.testing.assert_allclose(sync[0], local[0], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(sync[1], local[1], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(sync[2], local[2], rtol=RTOL, atol=ATOL)

    def test_sparse_adam(self):
        self.check("sparse_adam", {"lr": 0.05},
                   lambda p: torch.optim.SparseAdam(p, lr=0.05))

    def test_adagrad(self):
        self.check("adagrad", {"lr": 0.1}, lambda p: torch.optim.Adagrad(p, lr=0.1))


if __name__ == "__main__":
    harness.main(__doc__)
