"""Conformance: embedserve against real PyTorch (the oracle).

Same weights and ids through the server (a real process, real gRPC) and
through torch.nn.functional.embedding / embedding_bag must give the same
numbers: bit-identical for plain lookups, within float rounding where the
summation order or the norm's accumulation may differ (pooling, max_norm).

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/conformance/torch_conformance_test.py --server build/server/embedserve
"""

import unittest

import grpc
import numpy as np
import torch
import torch.nn.functional as F

import harness

CLIENT = None

# Pooling and renorm differ from PyTorch only by rounding.
RTOL, ATOL = 1e-5, 1e-6


def setUpModule():
    global CLIENT
    CLIENT = harness.start()


def tearDownModule():
    harness.stop()


_counter = [0]


def table_name(prefix):
    _counter[0] += 1
    return "%s_%d" % (prefix, _counter[0])


def assert_close(test, got, want, exact=False):
    want = want.detach().numpy()
    test.assertEqual(got.shape, want.shape)
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


class EmbeddingConformance(unittest.TestCase):

    def test_plain_lookup_is_bit_identical_for_many_dims_and_shapes(self):
        g = torch.Generator().manual_seed(1)
        for dim in (1, 3, 8, 17, 33, 64, 100, 128):
            w = torch.randn(500, dim, generator=g)
            name = table_name("plain")
            CLIENT.create_table(name, weights=w.numpy())
            for shape in ((7,), (4, 5), (2, 3, 4), (0,), (1, 1)):
                ids = torch.randint(0, 500, shape, generator=g)
                got = CLIENT.lookup(name, ids.numpy())
                assert_close(self, got, F.embedding(ids, w), exact=True)

    def test_padding_idx_row_is_zero_and_kept_from_pretrained(self):
        torch.manual_seed(0)
        ref = torch.nn.Embedding(50, 6, padding_idx=-3)
        name = table_name("pad")
        info = CLIENT.create_table(name, 50, 6, padding_idx=-3, seed=5)
        self.assertEqual(info.spec.padding_idx, ref.padding_idx)
        got = CLIENT.lookup(name, [ref.padding_idx, 1])
        assert_close(self, got[0], ref.weight[ref.padding_idx], exact=True)
        self.assertTrue(np.any(got[1] != 0))
        # from_pretrained keeps the given padding row, as PyTorch does.
        w = torch.randn(10, 4)
        ref = torch.nn.Embedding.from_pretrained(w, padding_idx=2)
        name = table_name("pad_pre")
        CLIENT.create_table(name, weights=w.numpy(), padding_idx=2)
        ids = torch.tensor([[2, 3], [2, 9]])
        assert_close(self, CLIENT.lookup(name, ids.numpy()), ref(ids), exact=True)
        # weight[padding_idx] = custom vector.
        with torch.no_grad():
            ref.weight[2] = torch.arange(4.0)
        CLIENT.assign_rows(name, [2], np.arange(4.0, dtype=np.float32))
        assert_close(self, CLIENT.lookup(name, ids.numpy()), ref(ids), exact=True)

    def test_default_initialisation_is_standard_normal(self):
        name = table_name("init")
        CLIENT.create_table(name, 4000, 50, seed=3)
        got = CLIENT.lookup(name, np.arange(4000))
        ref = torch.nn.Embedding(4000, 50).weight.detach().numpy()
        # Same distribution as nn.Embedding's N(0, 1) (200,000 samples each).
        self.assertAlmostEqual(float(got.mean()), float(ref.mean()), delta=0.02)
        self.assertAlmostEqual(float(got.std()), float(ref.std()), delta=0.02)
        self.assertAlmostEqual(float(got.std()), 1.0, delta=0.01)

    def test_max_norm_renormalises_like_torch_over_many_lookups(self):
        g = torch.Generator().manual_seed(2)
        for norm_type in (2.0, 1.0, 3.0, float("inf")):
            w = torch.randn(60, 9, generator=g) * 3
            name = table_name("maxnorm")
            CLIENT.create_table(name, weights=w.numpy(), max_norm=1.5, norm_type=norm_type)
            ref = w.clone()
            for step in range(6):
                ids = torch.randint(0, 60, (5, 4), generator=g)  # with duplicates
                want = F.embedding(ids, ref, max_norm=1.5, norm_type=norm_type)
                assert_close(self, CLIENT.lookup(name, ids.numpy()), want)
            # The stored rows (each renormed once in place) match too.
            all_ids = torch.arange(60)
            want = F.embedding(all_ids, ref, max_norm=1.5, norm_type=norm_type)
            assert_close(self, CLIENT.lookup(name, all_ids.numpy()), want)
            self.assertTrue(np.all(np.linalg.norm(want.numpy(), ord=norm_type, axis=1)
                                   <= 1.5 + 1e-5))

    def test_out_of_range_ids_fail_in_both(self):
        w = torch.randn(10, 3)
        name = table_name("oor")
        CLIENT.create_table(name, weights=w.numpy())
        for bad in (10, -1):
            with self.assertRaises(IndexError):
                F.embedding(torch.tensor([1, bad]), w)
            with self.assertRaises(grpc.RpcError) as cm:
                CLIENT.lookup(name, [1, bad])
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("id %d at position 1" % bad, cm.exception.details())


class EmbeddingBagConformance(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        g = torch.Generator().manual_seed(3)
        cls.g = g
        cls.w = torch.randn(300, 33, generator=g)
        cls.name = table_name("bag")
        CLIENT.create_table(cls.name, weights=cls.w.numpy())
        cls.pad_name = table_name("bag_pad")
        CLIENT.create_table(cls.pad_name, weights=cls.w.numpy(), padding_idx=7)

    def random_bags(self, num_bags, with_padding=False):
        sizes = torch.randint(0, 9, (num_bags,), generator=self.g)
        sizes[1] = 0  # an empty bag
        ids = torch.randint(0, 300, (int(sizes.sum()),), generator=self.g)
        if with_padding:
            ids[::3] = 7
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)[:-1]])
        return ids, offsets

    def test_modes_with_offsets_and_empty_bags(self):
        for mode in ("sum", "mean", "max"):
            ids, offsets = self.random_bags(20)
            want = F.embedding_bag(ids, self.w, offsets, mode=mode)
            got = CLIENT.lookup_pooled(self.name, ids.numpy(), offsets.numpy(), mode=mode)
            assert_close(self, got, want)
            np.testing.assert_array_equal(got[1], 0)

    def test_include_last_offset(self):
        ids, offsets = self.random_bags(10)
        offsets = torch.cat([offsets, torch.tensor([len(ids)])])
        for mode in ("sum", "mean", "max"):
            want = F.embedding_bag(ids, self.w, offsets, mode=mode, include_last_offset=True)
            got = CLIENT.lookup_pooled(self.name, ids.numpy(), offsets.numpy(), mode=mode,
                                       include_last_offset=True)
            assert_close(self, got, want)

    def test_per_sample_weights_sum(self):
        ids, offsets = self.random_bags(15)
        psw = torch.randn(len(ids), generator=self.g)
        want = F.embedding_bag(ids, self.w, offsets, mode="sum", per_sample_weights=psw)
        got = CLIENT.lookup_pooled(self.name, ids.numpy(), offsets.numpy(), mode="sum",
                                   per_sample_weights=psw.numpy())
        assert_close(self, got, want)

    def test_two_dimensional_input(self):
        ids = torch.randint(0, 300, (6, 5), generator=self.g)
        for mode in ("sum", "mean", "max"):
            want = F.embedding_bag(ids, self.w, mode=mode)
            assert_close(self, CLIENT.lookup_pooled(self.name, ids.numpy(), mode=mode), want)

    def test_padding_idx_is_excluded_from_every_mode(self):
        for mode in ("sum", "mean", "max"):
            ids, offsets = self.random_bags(20, with_padding=True)
            want = F.embedding_bag(ids, self.w, offsets, mode=mode, padding_idx=7)
            got = CLIENT.lookup_pooled(self.pad_name, ids.numpy(), offsets.numpy(), mode=mode)
            assert_close(self, got, want)
        # A bag of only padding pools to zeros.
        ids = torch.tensor([7, 7, 1])
        offsets = torch.tensor([0, 2])
        want = F.embedding_bag(ids, self.w, offsets, mode="mean", padding_idx=7)
        got = CLIENT.lookup_pooled(self.pad_name, ids.numpy(), offsets.numpy(), mode="mean")
        assert_close(self, got, want)
        np.testing.assert_array_equal(got[0], 0)

    def test_max_norm_with_bags(self):
        w = torch.randn(40, 5, generator=self.g) * 2
        name = table_name("bag_maxnorm")
        CLIENT.create_table(name, weights=w.numpy(), max_norm=1.0)
        ref = w.clone()
        for mode in ("sum", "mean", "max"):
            ids, _ = torch.randint(0, 40, (12,), generator=self.g), None
            offsets = torch.tensor([0, 3, 3, 8])
            want = F.embedding_bag(ids, ref, offsets, mode=mode, max_norm=1.0)
            got = CLIENT.lookup_pooled(name, ids.numpy(), offsets.numpy(), mode=mode)
            assert_close(self, got, want)


if __name__ == "__main__":
    harness.main(__doc__)
