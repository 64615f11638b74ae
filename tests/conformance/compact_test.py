"""Compact tables (float16, bfloat16, int8 row-wise) against float32 and
PyTorch: float16 and bfloat16 rows equal torch's own conversions
(w.half().float(), w.bfloat16().float()) bit for bit; int8 row-wise stays
within its bound (max - min) / 510 per row; pooling matches embedding_bag on
the decoded weights; float16 output equals the float32 answer rounded; memory
per row is reported; compact tables survive a restart.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/conformance/compact_test.py --server build/server/embedserve
"""

import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

import harness

CLIENT = None


def setUpModule():
    global CLIENT
    CLIENT = harness.start()


def tearDownModule():
    harness.stop()


W = torch.randn(300, 37, generator=torch.Generator().manual_seed(11)) * 3


class CompactTables(unittest.TestCase):

    def test_float16_and_bfloat16_equal_torch_conversions(self):
        ids = torch.randint(0, 300, (4, 25), generator=torch.Generator().manual_seed(1))
        for row_type, convert in (("float16", lambda w: w.half().float()),
                                  ("bfloat16", lambda w: w.bfloat16().float())):
            CLIENT.create_table("c_" + row_type, weights=W.numpy(), row_type=row_type)
            got = CLIENT.lookup("c_" + row_type, ids.numpy())
            np.testing.assert_array_equal(got, F.embedding(ids, convert(W)).numpy())
            offsets = torch.tensor([0, 10, 10, 60])
            for mode in ("sum", "mean", "max"):
                want = F.embedding_bag(ids.reshape(-1), convert(W), offsets, mode=mode)
                got = CLIENT.lookup_pooled("c_" + row_type, ids.reshape(-1).numpy(),
                                           offsets.numpy(), mode=mode)
                np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)

    def test_int8_rowwise_error_bound(self):
        CLIENT.create_table("c_int8", weights=W.numpy(), row_type="int8_rowwise")
        got = CLIENT.lookup("c_int8", np.arange(300))
        bound = (W.max(dim=1).values - W.min(dim=1).values) / 510
        err = (torch.from_numpy(got) - W).abs()
        self.assertTrue(bool((err <= bound[:, None] * 1.0001 + 1e-6).all()),
                        "max excess %g" % float((err - bound[:, None]).max()))
        self.assertGreater(float(err.max()), 0)  # really quantised

    def test_memory_per_row(self):
        sizes = {}
        for row_type in ("float32", "float16", "bfloat16", "int8_rowwise"):
            info = CLIENT.create_table("m_" + row_type, 1000, 64, row_type=row_type)
            sizes[row_type] = info.bytes_per_row
            self.assertLessEqual(info.bytes_used, 1000 * info.bytes_per_row + (2 << 20))
        self.assertEqual(sizes, {"float32": 256, "float16": 128, "bfloat16": 128,
                                 "int8_rowwise": 80})

    def test_float16_output_halves_the_bytes(self):
        CLIENT.create_table("f32_out", weights=W.numpy())
        full = CLIENT.lookup("f32_out", np.arange(50))
        half = CLIENT.lookup("f32_out", np.arange(50), output="float16")
        self.assertEqual(half.dtype, np.float16)
        np.testing.assert_array_equal(half, full.astype(np.float16))

    def test_writes_re_encode_and_survive_restart(self):
        from embedserve_client import EmbeddingClient
        from embedserve_testing import ServerProcess
        with tempfile.TemporaryDirectory() as data:
            with ServerProcess(harness.ARGS.server, data_dir=data) as s:
                c = EmbeddingClient(s.address)
                c.create_table("bf", weights=W.numpy(), row_type="bfloat16",
                               optimizer_args={"lr": 0.5})
                c.push("bf", [3], np.ones((1, 37), np.float32))
                before = c.lookup("bf", np.arange(300))
                want3 = (W[3].bfloat16().float() - 0.5).bfloat16().float()
                np.testing.assert_array_equal(before[3], want3.numpy())
                c.close()
            with ServerProcess(harness.ARGS.server, data_dir=data) as s:
                c = EmbeddingClient(s.address)
                self.assertEqual(c.describe_table("bf").spec.row_type, 2)
                np.testing.assert_array_equal(c.lookup("bf", np.arange(300)), before)
                c.close()


if __name__ == "__main__":
    harness.main(__doc__)
