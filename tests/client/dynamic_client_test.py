"""The Python client over dynamic tables (README, Dynamic tables), against a
real server process (durable: its default update log) over a real channel.

create_table(dynamic=True, ...), describe_table's .dynamic stats, lookups
and pushes of any int64 id (negative ones, and ids past 2**53 that a double
cannot tell apart: int64 exactness over the wire), export_table(with_ids=
True) and import_rows into a new dynamic table, max_rows eviction, the
server's refusal of a bad spec naming the field, and RemoteEmbedding
forward/backward over a dynamic table against torch.nn.Embedding (only the
rows used change, and pushing them makes them).
"""

import os
import sys
import tempfile
import unittest

import grpc
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
import harness  # noqa: E402
from metrics_testing import parse, read_port, scrape  # noqa: E402

DIM = 4
# Ids a float64 would merge (2**53 + 1 is not a double), negative ones, and
# both ends of int64.
WIDE_IDS = np.array([2**53, 2**53 + 1, 2**62 + 3, -1, -(2**53) - 1, -(2**63), 2**63 - 1],
                    dtype=np.int64)
_counter = [0]


def name(prefix):
    _counter[0] += 1
    return "%s_%d" % (prefix, _counter[0])


class DynamicClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="dynamic-client-")
        port_file = os.path.join(cls.dir.name, "metrics.port")
        cls.client = harness.start("--metrics_address=127.0.0.1:0",
                                   "--metrics_port_file=" + port_file)
        cls.metrics_port = read_port(port_file)  # written before the server's port file

    @classmethod
    def tearDownClass(cls):
        harness.stop()
        cls.dir.cleanup()

    def dynamic(self, **kwargs):
        table = name("dyn")
        # max_rows: the server has a table memory limit (its default), which
        # a dynamic table's rows must fit.
        args = dict(embedding_dim=DIM, dynamic=True, seed=7, optimizer="sgd",
                    optimizer_args={"lr": 0.5}, max_rows=10000)
        args.update(kwargs)
        info = self.client.create_table(table, **args)
        return table, info

    def test_create_and_describe(self):
        table, info = self.dynamic(max_rows=100, ttl_steps=50, admit_after=2)
        self.assertTrue(info.spec.dynamic)
        self.assertEqual(info.spec.num_embeddings, 0)
        d = self.client.describe_table(table)
        self.assertTrue(d.spec.dynamic)
        self.assertEqual((d.spec.max_rows, d.spec.ttl_steps, d.spec.admit_after), (100, 50, 2))
        self.assertFalse(d.spec.unseen_zeros)
        self.assertEqual(d.num_rows, 0)
        self.assertTrue(d.HasField("dynamic"))
        self.assertEqual(d.dynamic.rows_stored, 0)
        self.assertGreater(d.dynamic.sketch_bytes, 0)  # admit_after >= 2 keeps counts
        listed = {t.spec.name: t for t in self.client.list_tables()}
        self.assertTrue(listed[table].spec.dynamic)
        # A dense table has no dynamic stats.
        dense = name("dense")
        self.client.create_table(dense, 3, DIM)
        self.assertFalse(self.client.describe_table(dense).HasField("dynamic"))

    def test_unseen_ids_read_their_initial_value_without_making_rows(self):
        table, _ = self.dynamic()
        dense = name("dense")
        self.client.create_table(dense, 16, DIM, seed=7)
        # Id i of a dynamic table starts as row i of a dense table of the
        # same seed.
        np.testing.assert_array_equal(self.client.lookup(table, np.arange(16)),
                                      self.client.lookup(dense, np.arange(16)))
        wide = self.client.lookup(table, WIDE_IDS)
        self.assertEqual(wide.shape, (len(WIDE_IDS), DIM))
        np.testing.assert_array_equal(wide, self.client.lookup(table, WIDE_IDS))
        # Distinct ids, distinct rows: 2**53 and 2**53 + 1 arrive as
        # themselves, not as one double.
        self.assertEqual(len({r.tobytes() for r in wide}), len(WIDE_IDS))
        self.assertEqual(self.client.describe_table(table).dynamic.rows_stored, 0)
        zeros, _ = self.dynamic(unseen_zeros=True)
        np.testing.assert_array_equal(self.client.lookup(zeros, WIDE_IDS),
                                      np.zeros((len(WIDE_IDS), DIM), np.float32))

    def test_push_makes_rows_and_export_import_round_trip(self):
        table, _ = self.dynamic()
        ids = WIDE_IDS
        before = self.client.lookup(table, ids)
        neighbours = np.array([2**53 + 2, 2**53 - 1, -2, 2**62 + 2], np.int64)
        neighbours_before = self.client.lookup(table, neighbours)
        rng = np.random.default_rng(1)
        grads = rng.standard_normal((len(ids), DIM)).astype(np.float32)
        # One push per id, in this order: the export lists them least
        # recently updated first, i.e. in this order.
        for i in range(len(ids)):
            r = self.client.push(table, ids[i:i + 1], grads[i:i + 1])
            self.assertEqual(r.rows_applied, 1)
        after = self.client.lookup(table, ids)
        np.testing.assert_allclose(after, before - 0.5 * grads, rtol=1e-6, atol=1e-7)
        # The neighbours of the pushed ids are untouched (and not stored:
        # rows_stored below).
        np.testing.assert_array_equal(self.client.lookup(table, neighbours), neighbours_before)
        info = self.client.describe_table(table)
        self.assertEqual(info.num_rows, len(ids))
        self.assertEqual(info.dynamic.rows_stored, len(ids))
        self.assertEqual(info.dynamic.rows_admitted, len(ids))

        with self.assertRaisesRegex(ValueError, "with_ids=True"):
            self.client.export_table(table)
        got_ids, rows, exported = self.client.export_table(table, with_ids=True)
        self.assertEqual(got_ids.dtype, np.int64)
        np.testing.assert_array_equal(got_ids, ids)  # exact, in update order
        np.testing.assert_array_equal(rows, after)
        self.assertEqual(exported.num_rows, len(ids))

        copy, _ = self.dynamic()
        self.client.import_rows(copy, got_ids, rows, chunk_rows=3)
        np.testing.assert_array_equal(self.client.lookup(copy, ids), after)
        copy_ids, copy_rows, _ = self.client.export_table(copy, with_ids=True)
        np.testing.assert_array_equal(copy_ids, ids)
        np.testing.assert_array_equal(copy_rows, rows)
        self.assertEqual(self.client.describe_table(copy).dynamic.rows_stored, len(ids))

        # A dense table exports with its row numbers as ids.
        dense = name("dense")
        self.client.create_table(dense, 5, DIM)
        dense_ids, dense_rows, _ = self.client.export_table(dense, with_ids=True)
        np.testing.assert_array_equal(dense_ids, np.arange(5))
        np.testing.assert_array_equal(dense_rows, self.client.export_table(dense)[0])

    def test_export_of_an_empty_dynamic_table(self):
        table, _ = self.dynamic()
        ids, rows, info = self.client.export_table(table, with_ids=True)
        self.assertEqual(ids.shape, (0,))
        self.assertEqual(rows.shape, (0, DIM))
        self.assertEqual(info.spec.name, table)

    def test_max_rows_evicts_the_least_recently_updated(self):
        table, _ = self.dynamic(max_rows=2)
        ids = np.array([-10, 2**60, 33], np.int64)
        initial = self.client.lookup(table, ids)
        g = np.ones((1, DIM), np.float32)
        for i in ids:
            self.client.push(table, [i], g)
        info = self.client.describe_table(table)
        self.assertEqual(info.dynamic.rows_stored, 2)
        self.assertEqual(info.dynamic.rows_evicted, 1)
        rows = self.client.lookup(table, ids)
        # -10 went first and reads as its initial value again.
        np.testing.assert_array_equal(rows[0], initial[0])
        np.testing.assert_allclose(rows[1:], initial[1:] - 0.5, rtol=1e-6)
        got_ids, _, _ = self.client.export_table(table, with_ids=True)
        np.testing.assert_array_equal(got_ids, ids[1:])
        metrics = parse(scrape(self.metrics_port))
        removed = 'embedserve_dynamic_table_rows_removed_total{table="%s",reason="%s"}'
        self.assertEqual(metrics[removed % (table, "evicted")], 1)
        self.assertEqual(metrics[removed % (table, "expired")], 0)
        self.assertEqual(metrics['embedserve_table_rows{table="%s"}' % table], 2)

    def test_bad_specs_are_invalid_argument_naming_the_field(self):
        cases = [
            (dict(num_embeddings=10, embedding_dim=DIM, dynamic=True), "num_embeddings"),
            (dict(num_embeddings=10, embedding_dim=DIM, max_rows=5), "max_rows"),
            (dict(num_embeddings=10, embedding_dim=DIM, ttl_steps=5), "ttl_steps"),
            (dict(num_embeddings=10, embedding_dim=DIM, admit_after=2), "admit_after"),
            (dict(num_embeddings=10, embedding_dim=DIM, unseen_zeros=True), "unseen_zeros"),
            (dict(embedding_dim=DIM, dynamic=True, max_rows=-1), "max_rows"),
            (dict(embedding_dim=DIM, dynamic=True, admit_after=256), "admit_after"),
            (dict(embedding_dim=DIM, dynamic=True, num_shards=2), "num_shards"),
            # A server with a table memory limit bounds every dynamic table.
            (dict(embedding_dim=DIM, dynamic=True, max_rows=0), "max_rows"),
        ]
        for args, field in cases:
            with self.subTest(field=field, args=args):
                with self.assertRaises(grpc.RpcError) as e:
                    self.client.create_table(name("bad"), **args)
                self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, e.exception.details())
        with self.assertRaisesRegex(TypeError, "num_embeddings"):
            self.client.create_table(name("bad"), embedding_dim=DIM)


class RemoteEmbeddingDynamicTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.client = harness.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop()

    def run_steps(self, window):
        from embedserve_client import RemoteEmbedding
        table = name("remote")
        self.client.create_table(table, embedding_dim=DIM, dynamic=True, seed=3, max_rows=1000,
                                 optimizer="sgd", optimizer_args={"lr": 0.25})
        # A stored row that the steps below never use.
        bystander = np.array([123456789], np.int64)
        self.client.push(table, bystander, np.ones((1, DIM), np.float32))
        bystander_row = self.client.lookup(table, bystander)

        emb = RemoteEmbedding(self.client, table, window=window)
        self.assertTrue(emb.dynamic)
        self.assertEqual(emb.num_embeddings, 0)
        self.assertIn("dynamic", repr(emb))
        with self.assertRaisesRegex(TypeError, "dynamic"):
            emb.weight

        batches = [torch.tensor([[-7, 2**60 + 1], [5, -7]], dtype=torch.int64),
                   torch.tensor([[2**60, 5], [-(2**63), 2**60 + 1]], dtype=torch.int64)]
        used = np.unique(np.concatenate([b.reshape(-1).numpy() for b in batches]))
        # The oracle: an nn.Embedding whose row k holds used[k]'s initial
        # value, trained by torch's SGD on the same steps.
        local = torch.nn.Embedding(len(used), DIM, sparse=True)
        with torch.no_grad():
            local.weight.copy_(torch.from_numpy(self.client.lookup(table, used)))
        opt = torch.optim.SGD(local.parameters(), lr=0.25)
        target = torch.linspace(-1, 1, DIM)
        for batch in batches:
            out = emb(batch)
            (out - target).pow(2).sum().backward()
            positions = torch.from_numpy(np.searchsorted(used, batch.numpy()))
            opt.zero_grad()
            ref = local(positions)
            torch.testing.assert_close(out, ref.detach(), rtol=1e-5, atol=1e-6)
            (ref - target).pow(2).sum().backward()
            opt.step()
        emb.flush()
        np.testing.assert_allclose(self.client.lookup(table, used), local.weight.detach().numpy(),
                                   rtol=1e-5, atol=1e-6)
        ids, rows = emb.stored()
        self.assertEqual(set(ids.tolist()), set(used.tolist()) | {int(bystander[0])})
        np.testing.assert_array_equal(self.client.lookup(table, bystander), bystander_row)
        self.assertEqual(self.client.describe_table(table).dynamic.rows_stored, len(used) + 1)

    def test_forward_backward_makes_and_steps_only_the_rows_used(self):
        self.run_steps(window=4)

    def test_synchronous_pushes(self):
        self.run_steps(window=0)


if __name__ == "__main__":
    harness.main(__doc__)
