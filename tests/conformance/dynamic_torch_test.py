"""Dynamic tables against real PyTorch (issue 15): a dynamic table fed ids
from the whole int64 range must give, for each id, what an nn.Embedding
whose row holds that id's initial value gives.

The oracle: the ids' initial values are read with a lookup before any push
(from a twin table without max_norm where the table has one, so that the
renorm of unseen ids is checked too), a torch weight gets one dense row per
distinct id, and the same steps run on both: lookups, pooled lookups
(sum/mean/max, per_sample_weights, padding) and training with SGD, Adagrad,
SparseAdam and row-wise Adagrad (the FBGEMM formula of
torch_training_test.py), with duplicates, a padding id, scale_grad_by_freq
and max_norm. Rows and optimizer state must agree as in the dense training
test. Also: small ids read as a dense table's rows of the same seed,
unseen_zeros.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/conformance/dynamic_torch_test.py --server build/server/embedserve
"""

import unittest
import zlib

import numpy as np
import torch
import torch.nn.functional as F

import harness
from dynamic_testing import (INT64_MAX, INT64_MIN, create_dynamic, sparse_ids,
                             start_unlimited_server, unique_name)
from torch_training_test import CONFIGS, torch_state

CLIENT = None
RTOL, ATOL = 1e-5, 1e-6


def setUpModule():
    global CLIENT
    CLIENT = start_unlimited_server(harness)


def tearDownModule():
    harness.stop()


class InitialValues(unittest.TestCase):

    def test_small_ids_read_as_a_dense_tables_rows_of_the_same_seed(self):
        for init, args in (("normal", {}), ("normal", {"mean": 0.5, "std": 2.0}),
                           ("uniform", {"a": -0.3, "b": 0.7}), ("constant", {"value": 1.25})):
            for dim in (1, 7, 16, 33, 64):
                dense, dyn = unique_name("dense"), unique_name("dyn")
                CLIENT.create_table(dense, 700, dim, seed=77, init=init, **args)
                create_dynamic(CLIENT, dyn, dim, seed=77, init=init, init_args=args)
                ids = np.arange(700)
                want = CLIENT.lookup(dense, ids)
                np.testing.assert_array_equal(CLIENT.lookup(dyn, ids), want,
                                              err_msg="%s %s dim %d" % (init, args, dim))
                # In any order and shape, with duplicates.
                ids = np.random.default_rng(dim).integers(0, 700, (5, 9))
                np.testing.assert_array_equal(CLIENT.lookup(dyn, ids), want[ids])
                info = CLIENT.describe_table(dyn)
                self.assertEqual(info.num_rows, 0)  # lookups make no rows
                self.assertEqual(info.dynamic.rows_stored, 0)

    def test_unseen_ids_are_a_pure_function_of_seed_and_id(self):
        rng = np.random.default_rng(5)
        ids = sparse_ids(rng, 300)
        a, b, c = unique_name("pure"), unique_name("pure"), unique_name("pure")
        create_dynamic(CLIENT, a, 24, seed=9)
        create_dynamic(CLIENT, b, 24, seed=9)
        create_dynamic(CLIENT, c, 24, seed=10)
        ra = CLIENT.lookup(a, ids)
        np.testing.assert_array_equal(CLIENT.lookup(a, ids[::-1]), ra[::-1])
        np.testing.assert_array_equal(CLIENT.lookup(b, ids), ra)
        self.assertFalse(np.any(np.all(CLIENT.lookup(c, ids) == ra, axis=1)))
        # Distinct ids get distinct rows, N(0, 1) like nn.Embedding's.
        self.assertEqual(len({r.tobytes() for r in ra}), len(ids))
        self.assertAlmostEqual(float(ra.mean()), 0.0, delta=0.05)
        self.assertAlmostEqual(float(ra.std()), 1.0, delta=0.05)

    def test_unseen_zeros(self):
        ids = sparse_ids(np.random.default_rng(6), 50, extra=(0, INT64_MIN, INT64_MAX))
        table = unique_name("zeros")
        create_dynamic(CLIENT, table, 5, seed=3, unseen_zeros=True, optimizer="sgd",
                       optimizer_args={"lr": 0.5})
        np.testing.assert_array_equal(CLIENT.lookup(table, ids), np.zeros((50, 5), np.float32))
        grads = np.random.default_rng(1).normal(size=(10, 5)).astype(np.float32)
        CLIENT.push(table, ids[:10], grads)
        got = CLIENT.lookup(table, ids)
        np.testing.assert_allclose(got[:10], -0.5 * grads, rtol=RTOL, atol=ATOL)
        np.testing.assert_array_equal(got[10:], 0)

    def minus_one_is_trained(self, padding_idx):
        table = unique_name("minus_one")
        create_dynamic(CLIENT, table, 4, seed=1, optimizer_args={"lr": 1.0},
                       padding_idx=padding_idx)
        ids = np.array([-1, 7, -2])
        before = CLIENT.lookup(table, ids)
        resp = CLIENT.push(table, ids, np.ones((3, 4), np.float32))
        want = before - 1.0
        if padding_idx is not None:
            want[2] = 0  # the padding id: always zero, never stepped
        np.testing.assert_array_equal(CLIENT.lookup(table, ids), want)
        self.assertEqual(resp.rows_applied, 3 if padding_idx is None else 2)

    def test_negative_padding_idx_is_kept_apart_from_other_ids(self):
        self.minus_one_is_trained(-2)

    # A table without padding_idx has no padding id: -1 is an id like any
    # other (it once coalesced with padding_idx.value_or(-1)).
    def test_id_minus_one_is_trained_without_padding_idx(self):
        self.minus_one_is_trained(None)


class DynamicAgainstTorch(unittest.TestCase):
    """One dynamic table and one torch weight with a dense row per id."""

    N, DIM = 400, 12

    def make(self, seed, optimizer="sgd", max_norm=None, norm_type=None,
             scale_grad_by_freq=False, unseen_zeros=False):
        rng = np.random.default_rng(seed)
        self.ids = sparse_ids(rng, self.N)
        self.pad = 5  # the dense index of the padding id
        self.pad_id = int(self.ids[self.pad])
        self.table = unique_name("dyn_" + optimizer)
        args = CONFIGS[optimizer]["args"]
        kwargs = dict(seed=seed, optimizer=optimizer, optimizer_args=args,
                      padding_idx=self.pad_id, scale_grad_by_freq=scale_grad_by_freq,
                      unseen_zeros=unseen_zeros)
        info = create_dynamic(CLIENT, self.table, self.DIM, max_norm=max_norm,
                              norm_type=norm_type, **kwargs)
        self.assertTrue(info.spec.dynamic)
        self.assertEqual(info.spec.padding_idx, self.pad_id)
        # The initial values, before any push: from a twin without max_norm
        # (the raw values); the table itself must read them renormalised.
        twin = unique_name("twin")
        create_dynamic(CLIENT, twin, self.DIM, **kwargs)
        raw = CLIENT.lookup(twin, self.ids)
        CLIENT.drop_table(twin)
        np.testing.assert_array_equal(raw[self.pad], 0)
        if unseen_zeros:
            np.testing.assert_array_equal(raw, 0)
        self.w = torch.from_numpy(raw.copy()).requires_grad_(True)
        self.max_norm, self.norm_type = max_norm, 2.0 if norm_type is None else norm_type
        self.scale = scale_grad_by_freq
        return CONFIGS[optimizer]["torch"](self.w)

    def embedding(self, dense):
        return F.embedding(dense, self.w, padding_idx=self.pad, max_norm=self.max_norm,
                           norm_type=self.norm_type, scale_grad_by_freq=self.scale)

    def check_lookup(self, dense, msg, exact=False):
        got = CLIENT.lookup(self.table, self.ids[dense.numpy()])
        want = self.embedding(dense).detach().numpy()
        if exact:
            np.testing.assert_array_equal(got, want, err_msg=msg)
        else:
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=msg)

    def check_pooled(self, g, step):
        sizes = torch.randint(0, 7, (9,), generator=g)
        sizes[2] = 0  # an empty bag
        dense = torch.randint(0, self.N, (int(sizes.sum()),), generator=g)
        dense[::4] = self.pad
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)[:-1]])
        mode = ("sum", "mean", "max")[step % 3]
        psw = torch.randn(len(dense), generator=g) if mode == "sum" and step % 2 else None
        got = CLIENT.lookup_pooled(self.table, self.ids[dense.numpy()], offsets.numpy(),
                                   mode=mode,
                                   per_sample_weights=None if psw is None else psw.numpy())
        with torch.no_grad():
            want = F.embedding_bag(dense, self.w, offsets, mode=mode, per_sample_weights=psw,
                                   padding_idx=self.pad, max_norm=self.max_norm,
                                   norm_type=self.norm_type)
        np.testing.assert_allclose(got, want.numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg="pooled %s before step %d" % (mode, step))

    def run_steps(self, optimizer, scale_grad_by_freq=False, max_norm=None, norm_type=None,
                  unseen_zeros=False, steps=40):
        key = repr((optimizer, scale_grad_by_freq, max_norm, norm_type, unseen_zeros))
        seed = zlib.crc32(key.encode())
        g = torch.Generator().manual_seed(seed)
        opt = self.make(seed, optimizer, max_norm, norm_type, scale_grad_by_freq, unseen_zeros)
        all_dense = torch.arange(self.N)
        # Before any push every id reads its initial value (renormalised as
        # torch's lookup leaves it with max_norm), and nothing is stored.
        self.check_lookup(all_dense, "initial", exact=max_norm is None)
        self.assertEqual(CLIENT.describe_table(self.table).num_rows, 0)
        pushed = set()
        for step in range(steps):
            dense = torch.randint(0, self.N, (4, 8), generator=g)
            dense[0, :3] = dense[0, 3]  # duplicates
            dense[1, 0] = self.pad      # padding
            if step % 5 == 0:
                self.check_pooled(g, step)
            target = torch.randn(4, 8, self.DIM, generator=g)
            served = CLIENT.lookup(self.table, self.ids[dense.numpy()])
            out = self.embedding(dense)
            np.testing.assert_allclose(served, out.detach().numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg="lookup before step %d" % step)
            out.retain_grad()
            loss = ((out - target) ** 2).sum() + out.sum()
            opt.zero_grad()
            loss.backward()
            rows = torch.unique(dense[dense != self.pad])
            pushed.update(rows.tolist())
            self.w.grad = torch.sparse_coo_tensor(rows[None], self.w.grad[rows], self.w.shape)
            opt.step()
            resp = CLIENT.push(self.table, self.ids[dense.numpy()].reshape(-1),
                               out.grad.numpy().reshape(-1, self.DIM))
            self.assertEqual(resp.rows_applied, len(rows))
        # Every row (pushed or never seen) as torch has it.
        got = CLIENT.lookup(self.table, self.ids)
        want = F.embedding(all_dense, self.w.detach(), max_norm=self.max_norm,
                           norm_type=self.norm_type)
        np.testing.assert_allclose(got, want.numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_array_equal(got[self.pad], 0)
        slots, server_step = CLIENT.optimizer_state(self.table, self.ids)
        want_slots, _ = torch_state(opt, optimizer, self.w)
        self.assertEqual(sorted(slots), sorted(want_slots))
        for slot, value in want_slots.items():
            np.testing.assert_allclose(slots[slot], value.detach().numpy(), rtol=RTOL,
                                       atol=ATOL, err_msg=slot)
        # A dynamic table counts every push, whatever its optimizer.
        self.assertEqual(server_step, steps)
        # Every pushed id (but the padding id) has a row, no other id has.
        info = CLIENT.describe_table(self.table)
        self.assertEqual(info.num_rows, len(pushed))
        self.assertEqual(info.dynamic.rows_stored, len(pushed))
        self.assertEqual(info.dynamic.rows_admitted, len(pushed))
        self.assertEqual(info.dynamic.rows_evicted + info.dynamic.rows_expired, 0)

    def test_sgd(self):
        self.run_steps("sgd")

    def test_sgd_scale_grad_by_freq_max_norm(self):
        self.run_steps("sgd", True, 2.5)

    def test_adagrad(self):
        self.run_steps("adagrad")

    def test_adagrad_scale_grad_by_freq_max_norm(self):
        self.run_steps("adagrad", True, 2.5)

    def test_adagrad_unseen_zeros(self):
        self.run_steps("adagrad", unseen_zeros=True)

    def test_rowwise_adagrad(self):
        self.run_steps("rowwise_adagrad")

    def test_rowwise_adagrad_scale_grad_by_freq_max_norm(self):
        self.run_steps("rowwise_adagrad", True, 2.5)

    def test_sparse_adam(self):
        self.run_steps("sparse_adam")

    def test_sparse_adam_scale_grad_by_freq_max_norm_l1(self):
        self.run_steps("sparse_adam", True, 4.0, norm_type=1.0)

    def test_max_norm_renormalises_unseen_ids_as_a_lookup_would(self):
        # Initial rows of N(0, 1) in dim 12 have norms ~3.5: max_norm 1
        # renorms nearly all; pooled lookups of unseen ids too.
        seed = 99
        self.make(seed, "sgd", max_norm=1.0)
        got = CLIENT.lookup(self.table, self.ids)
        want = F.embedding(torch.arange(self.N), self.w.detach().clone(), max_norm=1.0)
        np.testing.assert_allclose(got, want.numpy(), rtol=RTOL, atol=ATOL)
        norms = np.linalg.norm(got, axis=1)
        self.assertTrue(np.all(norms <= 1.0 + 1e-5))
        self.assertGreater(int(np.sum(norms > 0.99)), self.N // 2)
        g = torch.Generator().manual_seed(seed)
        for step in range(3):
            self.check_pooled(g, step)
        self.assertEqual(CLIENT.describe_table(self.table).num_rows, 0)


if __name__ == "__main__":
    harness.main(__doc__)
