"""Training conformance: server-side optimizers against real PyTorch.

For every optimizer, 50 random pushes (duplicate ids, padding_idx,
scale_grad_by_freq, max_norm) go to a real server and to torch.optim on the
same weights; rows and optimizer state must agree within 1e-5 relative.
Row-wise Adagrad has no torch.optim counterpart: its oracle is FBGEMM's
formula written with torch ops below. Also: RemoteEmbedding trains like a
local nn.Embedding(sparse=True).

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/conformance/torch_training_test.py --server build/server/embedserve
"""

import unittest
import zlib

import grpc
import numpy as np
import torch
import torch.nn.functional as F

import harness

CLIENT = None
RTOL, ATOL = 1e-5, 1e-6
_counter = [0]


def setUpModule():
    global CLIENT
    CLIENT = harness.start()


def tearDownModule():
    harness.stop()


def name(prefix):
    _counter[0] += 1
    return "%s_%d" % (prefix, _counter[0])


class RowWiseAdagrad:
    """FBGEMM exact row-wise Adagrad on a sparse gradient (the oracle)."""

    def __init__(self, weight, lr, eps=1e-10, initial_accumulator_value=0.0):
        self.w, self.lr, self.eps = weight, lr, eps
        self.momentum = torch.full((weight.shape[0],), float(initial_accumulator_value))

    @torch.no_grad()
    def step(self):
        g = self.w.grad.coalesce()
        rows, values = g.indices()[0], g.values()
        self.momentum[rows] += values.pow(2).mean(dim=1)
        multiplier = self.lr / (self.momentum[rows].sqrt() + self.eps)
        self.w[rows] -= multiplier[:, None] * values

    def zero_grad(self):
        self.w.grad = None


CONFIGS = {
    "sgd": dict(torch=lambda w: torch.optim.SGD([w], lr=0.1), args={"lr": 0.1}),
    "adagrad": dict(
        torch=lambda w: torch.optim.Adagrad([w], lr=0.3, lr_decay=0.01,
                                            initial_accumulator_value=0.1, eps=1e-10),
        args={"lr": 0.3, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "eps": 1e-10}),
    "rowwise_adagrad": dict(
        torch=lambda w: RowWiseAdagrad(w, lr=0.3, eps=1e-10, initial_accumulator_value=0.1),
        args={"lr": 0.3, "eps": 1e-10, "initial_accumulator_value": 0.1}),
    "sparse_adam": dict(
        torch=lambda w: torch.optim.SparseAdam([w], lr=0.05, betas=(0.8, 0.99), eps=1e-8),
        args={"lr": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-8}),
}

N, DIM, PAD = 120, 12, 5


def torch_state(opt, optimizer, w):
    if optimizer == "adagrad":
        st = opt.state[w]
        return {"sum": st["sum"]}, int(st["step"])
    if optimizer == "sparse_adam":
        st = opt.state[w]
        return {"exp_avg": st["exp_avg"], "exp_avg_sq": st["exp_avg_sq"]}, int(st["step"])
    if optimizer == "rowwise_adagrad":
        return {"momentum": opt.momentum}, 0
    return {}, 0


class OptimizerConformance(unittest.TestCase):

    def run_steps(self, optimizer, scale_grad_by_freq, max_norm, steps=50):
        g = torch.Generator().manual_seed(zlib.crc32(repr((optimizer, scale_grad_by_freq, max_norm)).encode()))
        w0 = torch.randn(N, DIM, generator=g)
        table = name(optimizer)
        cfg = CONFIGS[optimizer]
        CLIENT.create_table(table, weights=w0.numpy(), padding_idx=PAD, max_norm=max_norm,
                            scale_grad_by_freq=scale_grad_by_freq, optimizer=optimizer,
                            optimizer_args=cfg["args"])
        w = w0.clone().requires_grad_(True)
        opt = cfg["torch"](w)
        for step in range(steps):
            ids = torch.randint(0, N, (4, 8), generator=g)
            ids[0, :3] = ids[0, 3]          # duplicates
            ids[1, 0] = PAD                 # padding
            target = torch.randn(4, 8, DIM, generator=g)
            # The server's lookup (renorms in place with max_norm) ...
            served = CLIENT.lookup(table, ids.numpy())
            # ... and PyTorch's dense backward (the only one that knows
            # scale_grad_by_freq), then the same gradient made sparse.
            out = F.embedding(ids, w, padding_idx=PAD, max_norm=max_norm,
                              scale_grad_by_freq=scale_grad_by_freq)
            np.testing.assert_allclose(served, out.detach().numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg="lookup before step %d" % step)
            out.retain_grad()
            loss = ((out - target) ** 2).sum() + out.sum()
            opt.zero_grad()
            loss.backward()
            rows = torch.unique(ids[ids != PAD])
            w.grad = torch.sparse_coo_tensor(rows[None], w.grad[rows], w.shape)
            opt.step()
            resp = CLIENT.push(table, ids.numpy().reshape(-1),
                               out.grad.numpy().reshape(-1, DIM))
            self.assertEqual(resp.rows_applied, len(rows))
        all_ids = np.arange(N)
        # The rows as stored (read without renorm: max_norm would renorm again,
        # so compare through F.embedding with the same max_norm).
        want = F.embedding(torch.from_numpy(all_ids), w.detach(), max_norm=max_norm)
        got = CLIENT.lookup(table, all_ids)
        np.testing.assert_allclose(got, want.numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_array_equal(got[PAD], w0[PAD].numpy()
                                      if max_norm is None else got[PAD])
        slots, server_step = CLIENT.optimizer_state(table, all_ids)
        want_slots, want_step = torch_state(opt, optimizer, w)
        self.assertEqual(sorted(slots), sorted(want_slots))
        for slot, value in want_slots.items():
            np.testing.assert_allclose(slots[slot], value.detach().numpy(), rtol=RTOL,
                                       atol=ATOL, err_msg=slot)
        self.assertEqual(server_step, want_step)

    def test_sgd(self):
        self.run_steps("sgd", False, None)

    def test_sgd_scale_grad_by_freq_max_norm(self):
        self.run_steps("sgd", True, 2.5)

    def test_adagrad(self):
        self.run_steps("adagrad", False, None)

    def test_adagrad_scale_grad_by_freq_max_norm(self):
        self.run_steps("adagrad", True, 2.5)

    def test_rowwise_adagrad(self):
        self.run_steps("rowwise_adagrad", False, None)

    def test_rowwise_adagrad_scale_grad_by_freq_max_norm(self):
        self.run_steps("rowwise_adagrad", True, 2.5)

    def test_sparse_adam(self):
        self.run_steps("sparse_adam", False, None)

    def test_sparse_adam_scale_grad_by_freq_max_norm(self):
        self.run_steps("sparse_adam", True, 2.5)


class PushErrors(unittest.TestCase):

    def test_frozen_and_bad_pushes_change_nothing(self):
        w0 = torch.randn(10, 4)
        table = name("frozen")
        CLIENT.create_table(table, weights=w0.numpy(), frozen=True, optimizer="adagrad")
        with self.assertRaises(grpc.RpcError) as cm:
            CLIENT.push(table, [1, 2], np.ones((2, 4), np.float32))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        CLIENT.update_table(table, frozen=False, lr=0.5)
        for ids, grads, code, text in (
                ([1, 10], np.ones((2, 4)), grpc.StatusCode.INVALID_ARGUMENT, "id 10 at position 1"),
                ([1, 2], np.ones((2, 3)), grpc.StatusCode.INVALID_ARGUMENT, "expected"),
                ([1, 2], np.array([[1, 1, 1, 1], [1, np.nan, 1, 1]]),
                 grpc.StatusCode.INVALID_ARGUMENT, "grads[5]")):
            with self.assertRaises(grpc.RpcError) as cm:
                CLIENT.push(table, ids, grads)
            self.assertEqual(cm.exception.code(), code)
            self.assertIn(text, cm.exception.details())
        np.testing.assert_array_equal(CLIENT.lookup(table, np.arange(10)), w0.numpy())
        self.assertEqual(CLIENT.optimizer_state(table, [1])[1], 0)

    def test_stream_answers_each_push_in_order(self):
        table = name("stream")
        w0 = torch.randn(20, 4)
        CLIENT.create_table(table, weights=w0.numpy(), optimizer="sgd",
                            optimizer_args={"lr": 1.0})
        pushes = [(table, [i], np.ones((1, 4), np.float32)) for i in range(5)]
        pushes.insert(2, (table, [99], np.ones((1, 4), np.float32)))  # a bad one
        answers = list(CLIENT.push_stream(pushes))
        self.assertEqual([a.sequence for a in answers], list(range(6)))
        self.assertEqual([a.code for a in answers], [0, 0, 3, 0, 0, 0])
        self.assertIn("id 99", answers[2].error)
        self.assertEqual([a.version for a in answers if a.code == 0], [1, 2, 3, 4, 5])
        np.testing.assert_allclose(CLIENT.lookup(table, np.arange(5)), w0[:5].numpy() - 1)


class RemoteEmbeddingTest(unittest.TestCase):

    def test_trains_like_local_sparse_embedding(self):
        from embedserve_client import RemoteEmbedding
        for optimizer, make in (
                ("sgd", lambda p: torch.optim.SGD(p, lr=0.2)),
                ("adagrad", lambda p: torch.optim.Adagrad(p, lr=0.2)),
                ("sparse_adam", lambda p: torch.optim.SparseAdam(p, lr=0.05))):
            g = torch.Generator().manual_seed(7)
            w0 = torch.randn(50, 8, generator=g)
            local = torch.nn.Embedding.from_pretrained(w0.clone(), freeze=False, sparse=True,
                                                       padding_idx=0)
            opt = make(list(local.parameters()))
            table = name("remote_" + optimizer)
            args = {"sgd": {"lr": 0.2}, "adagrad": {"lr": 0.2},
                    "sparse_adam": {"lr": 0.05}}[optimizer]
            CLIENT.create_table(table, weights=w0.numpy(), padding_idx=0, optimizer=optimizer,
                                optimizer_args=args)
            remote = RemoteEmbedding(CLIENT, table)
            head = torch.nn.Linear(8, 1)
            for _ in range(10):
                ids = torch.randint(0, 50, (16, 3), generator=g)
                y = torch.randn(16, generator=g)
                for emb, o in ((local, opt), (remote, None)):
                    pred = head(emb(ids).mean(dim=1)).squeeze(1)
                    loss = F.mse_loss(pred, y)
                    if o:
                        o.zero_grad()
                    head.zero_grad()
                    loss.backward()
                    if o:
                        o.step()
            np.testing.assert_allclose(remote.weight.numpy(), local.weight.detach().numpy(),
                                       rtol=RTOL, atol=ATOL, err_msg=optimizer)
            self.assertIsNotNone(remote.last_push)


if __name__ == "__main__":
    harness.main(__doc__)
