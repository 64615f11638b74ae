"""The Python client's push window (embedserve_client/push_window.py) and its
hand-written wire encoding (_wire.py), against a real server process.

Encoding: byte-identical to the generated classes. Window: pushes return
before they are answered and at most `window` are unanswered; they are
applied in the order sent (rows identical to synchronous pushes); a lookup
right after a push sees it (read-your-writes through min_sequence, with no
flush); a failed push raises PushError (table and sequence named) at the
next push, at flush() or at the next lookup, and not twice; flush() returns
once every push is answered.
"""

import os
import sys
import unittest

import grpc
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
import harness  # noqa: E402

DIM = 8
_counter = [0]


def name(prefix):
    _counter[0] += 1
    return "%s_%d" % (prefix, _counter[0])


def rng(seed):
    return np.random.default_rng(seed)


class WireEncodingTest(unittest.TestCase):

    def test_matches_the_generated_classes(self):
        from embedserve_client import _wire
        from embedserve_client._proto import embedserve_pb2 as pb
        cases = [np.array([], np.int64), np.array([0], np.int64),
                 np.array([1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**35, 2**62,
                           2**63 - 1, -1, -2**63], np.int64),
                 rng(0).integers(0, 10**6, 4096)]
        for ids in cases:
            with self.subTest(n=len(ids)):
                g = rng(1).standard_normal((len(ids), 3)).astype("<f4")
                for trainer, seq in (("", 0), ("host-1-ab", 9), ("t", 2**64 - 1)):
                    self.assertEqual(
                        _wire.push_request("tab", ids, g, seq, trainer),
                        pb.PushRequest(table="tab", ids=ids.tolist(), grads=g.tobytes(),
                                       sequence=seq, trainer=trainer).SerializeToString())
                q = _wire.lookup_query("t", ids, (len(ids),), pb.FLOAT16, False, "tr", 3)
                self.assertEqual(q, pb.LookupQuery(
                    table="t", ids=ids.tolist(), shape=[len(ids)], output=pb.FLOAT16,
                    trainer="tr", min_sequence=3).SerializeToString())
                scalar = _wire.lookup_query("t", ids[:1], (), 0, True)
                self.assertEqual(scalar, pb.LookupQuery(table="t", ids=ids[:1].tolist(),
                                                        scalar=True).SerializeToString())
                self.assertEqual(_wire.lookup_request([q, scalar]), pb.LookupRequest(
                    queries=[pb.LookupQuery.FromString(q),
                             pb.LookupQuery.FromString(scalar)]).SerializeToString())


class PushWindowTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # A push that fails leaves its sequence unapplied: a lookup waiting
        # for it gives up after this (then raises the push's error).
        cls.sync = harness.start("--max_sequence_wait_ms=2000")

    @classmethod
    def tearDownClass(cls):
        harness.stop()

    def new_client(self, window=4):
        from embedserve_client import EmbeddingClient
        client = EmbeddingClient(harness.Server.process.address)
        self.addCleanup(client._raw_channel.close)
        return client, client.push_window(window)

    def make_table(self, optimizer="sparse_adam", rows=50):
        table = name("w")
        w = rng(2).standard_normal((rows, DIM)).astype(np.float32)
        self.sync.create_table(table, weights=w, optimizer=optimizer,
                               optimizer_args={"lr": 0.05})
        return table

    def pushes(self, seed, count, rows=50, n=16):
        r = rng(seed)
        return [(r.integers(0, rows, n), r.standard_normal((n, DIM)).astype(np.float32))
                for _ in range(count)]

    def test_pushes_apply_in_order_like_synchronous_ones(self):
        for optimizer in ("sgd", "adagrad", "sparse_adam"):
            with self.subTest(optimizer=optimizer):
                windowed, synced = self.make_table(optimizer), self.make_table(optimizer)
                client, window = self.new_client(window=3)
                for ids, g in self.pushes(3, 40):
                    seq = window.push(windowed, ids, g)
                    self.assertLessEqual(window.in_flight(), 3)
                    self.sync.push(synced, ids, g)
                self.assertEqual(seq, 40)
                window.flush()
                self.assertEqual(window.in_flight(), 0)
                self.assertEqual(window.pending_sequence(windowed), 0)
                np.testing.assert_array_equal(client.export_table(windowed)[0],
                                              self.sync.export_table(synced)[0])
                np.testing.assert_array_equal(
                    client.optimizer_state(windowed, range(50))[0].get("exp_avg"),
                    self.sync.optimizer_state(synced, range(50))[0].get("exp_avg"))

    def test_a_lookup_right_after_a_push_sees_it(self):
        windowed, synced = self.make_table(), self.make_table()
        client, window = self.new_client()
        seen_in_flight = 0
        for ids, g in self.pushes(4, 30):
            window.push(windowed, ids, g)
            seen_in_flight += window.pending_sequence(windowed) > 0
            self.sync.push(synced, ids, g)
            # No flush: the lookup names the push, the server waits for it.
            np.testing.assert_array_equal(client.lookup(windowed, ids),
                                          self.sync.lookup(synced, ids))
        # Most lookups went out with the push still unanswered (else the
        # test would not test the server's wait).
        self.assertGreater(seen_in_flight, 0)
        rows_w = client.lookup_many([(windowed, np.arange(50)), (synced, np.arange(50))])
        np.testing.assert_array_equal(rows_w[0], rows_w[1])
        pooled_ids = np.arange(12).reshape(3, 4)
        ids, g = self.pushes(5, 1)[0]
        window.push(windowed, ids, g)
        self.sync.push(synced, ids, g)
        np.testing.assert_array_equal(client.lookup_pooled(windowed, pooled_ids, mode="mean"),
                                      self.sync.lookup_pooled(synced, pooled_ids, mode="mean"))

    def test_failed_push_raises_at_the_next_push_naming_table_and_sequence(self):
        from embedserve_client import PushError
        table = self.make_table()
        client, window = self.new_client(window=2)
        ids, g = self.pushes(6, 1)[0]
        window.push(table, ids, g)
        bad = window.push(table, np.array([1, 10**6]), np.zeros((2, DIM), np.float32))
        with self.assertRaises(PushError) as e:
            # Raised by a later push once the answer is in (a window of 2
            # makes the third push wait for the first answers).
            for ids, g in self.pushes(7, 4):
                window.push(table, ids, g)
        self.assertEqual(e.exception.table, table)
        self.assertEqual(e.exception.sequence, bad)
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn(table, str(e.exception))
        self.assertIn("push %d" % bad, str(e.exception))
        window.flush()  # raised once: nothing more to report
        self.assertEqual(window.in_flight(), 0)

    def test_failed_push_raises_at_flush(self):
        from embedserve_client import PushError
        table = self.make_table()
        client, window = self.new_client()
        bad = window.push(table, np.array([-3]), np.zeros((1, DIM), np.float32))
        with self.assertRaises(PushError) as e:
            window.flush()
        self.assertEqual((e.exception.table, e.exception.sequence), (table, bad))
        window.flush()

    def test_failed_push_raises_at_the_lookup_that_waits_for_it(self):
        from embedserve_client import PushError
        table = self.make_table()
        client, window = self.new_client()
        before = client.lookup(table, [1])
        bad = window.push(table, np.array([1, 99]), np.zeros((2, DIM), np.float32))
        # The lookup either finds the error already in, or waits for the
        # failed push on the server until --max_sequence_wait_ms: either way
        # the push's error is raised, not a stale row.
        with self.assertRaises(PushError) as e:
            client.lookup(table, [1])
        self.assertEqual(e.exception.sequence, bad)
        np.testing.assert_array_equal(client.lookup(table, [1]), before)

    def test_window_of_zero_is_refused_and_window_is_per_client(self):
        from embedserve_client import PushWindow
        client, window = self.new_client(window=2)
        with self.assertRaises(ValueError):
            PushWindow(client, window=0)
        self.assertIs(client.push_window(2), window)
        with self.assertRaises(ValueError):
            client.push_window(5)

    def test_close_waits_for_the_pushes(self):
        from embedserve_client import EmbeddingClient
        windowed, synced = self.make_table(), self.make_table()
        client = EmbeddingClient(harness.Server.process.address)
        window = client.push_window(8)
        for ids, g in self.pushes(8, 20):
            window.push(windowed, ids, g)
            self.sync.push(synced, ids, g)
        client.close()
        np.testing.assert_array_equal(self.sync.export_table(windowed)[0],
                                      self.sync.export_table(synced)[0])


if __name__ == "__main__":
    harness.main(__doc__)
