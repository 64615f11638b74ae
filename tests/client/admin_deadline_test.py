"""Admin calls of the Python client get deadlines that fit their size
(embedserve_client/deadlines.py, the rule of client/admin_deadline.h): the
rule itself, and a real create that the client's per-call timeout alone
could never fit, against a real server process.
"""

import os
import sys
import unittest

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
import harness  # noqa: E402


class DeadlineRuleTest(unittest.TestCase):

    def test_table_bytes_count_rows_and_optimizer_state(self):
        from embedserve_client.deadlines import table_bytes
        self.assertEqual(table_bytes(1000, 64), 1000 * 64 * 4)
        self.assertEqual(table_bytes(1000, 64, "adagrad"), 1000 * 64 * 4 * 2)
        self.assertEqual(table_bytes(1000, 64, "SPARSE_ADAM"), 1000 * 64 * 4 * 3)
        self.assertEqual(table_bytes(1000, 64, "rowwise_adagrad"), 1000 * (64 * 4 + 4))
        self.assertEqual(table_bytes(20_000_000, 64, "adagrad"), 10_240_000_000)

    def test_timeout_grows_at_50_mb_per_second(self):
        from embedserve_client.deadlines import admin_timeout
        self.assertEqual(admin_timeout(0, 30.0), 30.0)
        self.assertEqual(admin_timeout(-1, 30.0), 30.0)
        self.assertEqual(admin_timeout(50_000_000, 30.0), 31.0)
        # 20 M x 64 Adagrad: 30 s + 204.8 s, past the durable create's 109 s.
        self.assertAlmostEqual(admin_timeout(10_240_000_000, 30.0), 234.8)
        self.assertIsNone(admin_timeout(10**9, None))


class CreateDeadlineTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        harness.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop()

    def test_create_gets_the_tables_deadline_not_the_per_call_one(self):
        # A 1 M x 64 create fills 256 MB: never within the client's 1 ms.
        from embedserve_client import EmbeddingClient
        from embedserve_client.deadlines import admin_timeout, table_bytes
        client = EmbeddingClient(harness.Server.process.address, timeout=0.001)
        self.addCleanup(client._raw_channel.close)
        client.wait_for_ready()
        with self.assertRaises(grpc.RpcError) as caught:
            client.create_table("short", 1_000_000, 64, timeout=0.001)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        # Without a timeout the call gets 1 ms + 256 MB at 50 MB/s (5.1 s),
        # read off the real call. It then runs with a generous deadline: how
        # fast this machine fills 256 MB (the server's admin lane runs at a
        # low priority, so other work can starve it) is not what is tested.
        real = client._stub.CreateTable
        sent = []

        def create(request, timeout=None, **kwargs):
            sent.append(timeout)
            return real(request, timeout=300, **kwargs)

        client._stub.CreateTable = create
        info = client.create_table("sized", 1_000_000, 64)
        self.assertEqual(info.num_rows, 1_000_000)
        self.assertEqual(len(sent), 1)
        self.assertAlmostEqual(sent[0], admin_timeout(table_bytes(1_000_000, 64), 0.001))
        self.assertAlmostEqual(sent[0], 5.121, places=3)

if __name__ == "__main__":
    harness.main(__doc__)
