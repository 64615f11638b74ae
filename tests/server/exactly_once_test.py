"""Exactly-once pushes and read-your-writes lookups (issue 14, item 7) on a
real server process over real gRPC.

PushRequest.trainer + sequence: a push is applied at most once per (table,
trainer, sequence); a repeat, or a lower sequence after a higher one, is
answered duplicate and changes nothing (the rows are compared with a
server fed only the new pushes); the trainer's name is checked.
LookupQuery/PooledQuery.trainer + min_sequence: the answer waits until the
push is applied (sent from another thread after the lookup), gives
DEADLINE_EXCEEDED naming the trainer when it is not (call deadline or
--max_sequence_wait_ms), and a waiting lookup holds up no other lookup.

The restart test (DurableRestartTest) needs the update log (issue 14, item
1: the trainers' last sequences survive a restart)
(it passes with the update log of commit 6378efb).
"""

import os
import sys
import threading
import unittest

import grpc
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
import harness  # noqa: E402

DIM = 4
_counter = [0]


def name(prefix):
    _counter[0] += 1
    return "%s_%d" % (prefix, _counter[0])


def grads(seed, n):
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


class Wire:
    """Raw calls with the trainer fields (the client's push() sends none)."""

    def __init__(self, client):
        from embedserve_client._proto import embedserve_pb2 as pb
        self.pb, self.stub, self.client = pb, client._stub, client

    def push(self, table, ids, g, trainer="", sequence=0):
        return self.stub.PushGradients(self.pb.PushRequest(
            table=table, ids=list(ids), grads=g.tobytes(), sequence=sequence,
            trainer=trainer), timeout=10)

    def lookup(self, table, ids, trainer="", min_sequence=0, timeout=10):
        req = self.pb.LookupRequest(queries=[self.pb.LookupQuery(
            table=table, ids=list(ids), trainer=trainer, min_sequence=min_sequence)])
        resp = self.stub.Lookup(req, timeout=timeout)
        r = resp.results[0]
        return np.frombuffer(r.values, dtype="<f4").reshape(tuple(r.shape))

    def pooled(self, table, ids, trainer="", min_sequence=0, timeout=10):
        req = self.pb.PooledRequest(queries=[self.pb.PooledQuery(
            table=table, ids=list(ids), shape=[1, len(ids)], trainer=trainer,
            min_sequence=min_sequence)])
        r = self.stub.LookupPooled(req, timeout=timeout).results[0]
        return np.frombuffer(r.values, dtype="<f4").reshape(tuple(r.shape))


def make_table(client, optimizer="sparse_adam"):
    table = name("t")
    w = np.arange(10 * DIM, dtype=np.float32).reshape(10, DIM) / 7
    client.create_table(table, weights=w, optimizer=optimizer, optimizer_args={"lr": 0.1})
    return table


class ExactlyOnceTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.client = harness.start("--max_sequence_wait_ms=1500")
        cls.wire = Wire(cls.client)

    @classmethod
    def tearDownClass(cls):
        harness.stop()

    def rows(self, table):
        return self.wire.lookup(table, range(10))

    def test_repeated_push_is_duplicate_and_changes_nothing(self):
        table, oracle = make_table(self.client), make_table(self.client)
        ids = [1, 2, 2, 7]
        first = self.wire.push(table, ids, grads(1, 4), "trainer-a", 1)
        self.assertFalse(first.duplicate)
        self.assertEqual(first.rows_applied, 3)
        self.wire.push(oracle, ids, grads(1, 4))
        after_first = self.rows(table)
        again = self.wire.push(table, ids, grads(1, 4), "trainer-a", 1)
        self.assertTrue(again.duplicate)
        self.assertEqual(again.sequence, 1)
        np.testing.assert_array_equal(self.rows(table), after_first)
        # The next sequence is applied; SparseAdam's step counts it once.
        self.assertFalse(self.wire.push(table, [3], grads(2, 1), "trainer-a", 2).duplicate)
        self.wire.push(oracle, [3], grads(2, 1))
        np.testing.assert_array_equal(self.rows(table), self.rows(oracle))
        self.assertEqual(self.client.optimizer_state(table, [3])[1],
                         self.client.optimizer_state(oracle, [3])[1])

    def test_lower_sequence_after_higher_is_duplicate(self):
        table, oracle = make_table(self.client), make_table(self.client)
        self.assertFalse(self.wire.push(table, [4], grads(3, 1), "t-b", 5).duplicate)
        self.wire.push(oracle, [4], grads(3, 1))
        late = self.wire.push(table, [4, 5], grads(4, 2), "t-b", 3)
        self.assertTrue(late.duplicate)
        self.assertEqual(late.rows_applied, 0)
        np.testing.assert_array_equal(self.rows(table), self.rows(oracle))

    def test_sequences_are_per_table_and_per_trainer(self):
        a, b = make_table(self.client), make_table(self.client)
        self.assertFalse(self.wire.push(a, [1], grads(5, 1), "t-c", 1).duplicate)
        self.assertFalse(self.wire.push(b, [1], grads(5, 1), "t-c", 1).duplicate)
        self.assertFalse(self.wire.push(a, [1], grads(5, 1), "t-d", 1).duplicate)
        np.testing.assert_array_equal(self.rows(a)[2:], self.rows(b)[2:])
        self.assertFalse(np.array_equal(self.rows(a)[1], self.rows(b)[1]))

    def test_stream_answers_duplicates_in_order(self):
        table, oracle = make_table(self.client), make_table(self.client)
        pb = self.wire.pb
        pushes = [(1, 1), (2, 2), (2, 2), (1, 1), (3, 3)]  # (sequence, seed)
        reqs = [pb.PushRequest(table=table, ids=[s, 9], grads=grads(seed, 2).tobytes(),
                               sequence=s, trainer="t-stream") for s, seed in pushes]
        answers = list(self.client._stub.StreamGradients(iter(reqs), timeout=10))
        self.assertEqual([a.sequence for a in answers], [1, 2, 2, 1, 3])
        self.assertEqual([a.duplicate for a in answers], [False, False, True, True, False])
        self.assertTrue(all(a.code == 0 for a in answers))
        for s, seed in ((1, 1), (2, 2), (3, 3)):
            self.wire.push(oracle, [s, 9], grads(seed, 2))
        np.testing.assert_array_equal(self.rows(table), self.rows(oracle))

    def test_bad_trainer_name_is_invalid_argument_naming_it(self):
        table = make_table(self.client)
        before = self.rows(table)
        for bad in ("has space", "x" * 129, "slash/name"):
            with self.subTest(trainer=bad):
                with self.assertRaises(grpc.RpcError) as e:
                    self.wire.push(table, [1], grads(6, 1), bad, 1)
                self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(bad[:20], e.exception.details())
                with self.assertRaises(grpc.RpcError) as e:
                    self.wire.lookup(table, [1], bad, 1)
                self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(bad[:20], e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.wire.push(table, [1], grads(6, 1), "fine-name", 0)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("fine-name", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.wire.lookup(table, [1], "", 3)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        np.testing.assert_array_equal(self.rows(table), before)

    def test_lookup_waits_for_the_push_it_names(self):
        for pooled in (False, True):
            with self.subTest(pooled=pooled):
                table, oracle = make_table(self.client), make_table(self.client)
                self.wire.push(oracle, [2, 3], grads(7, 2))
                expected = (self.wire.pooled if pooled else self.wire.lookup)(oracle, [2, 3])
                got, started = {}, threading.Event()

                def read():
                    started.set()
                    fn = self.wire.pooled if pooled else self.wire.lookup
                    got["rows"] = fn(table, [2, 3], "t-wait", 1)

                reader = threading.Thread(target=read)
                reader.start()
                started.wait()
                # The lookup is (very likely) parked before the push comes;
                # whichever comes first, it must answer with the push applied.
                self.wire.push(table, [2, 3], grads(7, 2), "t-wait", 1)
                reader.join(20)
                np.testing.assert_array_equal(got["rows"], expected)

    def test_lookup_of_an_applied_sequence_answers_at_once(self):
        table = make_table(self.client)
        self.wire.push(table, [1], grads(8, 1), "t-done", 4)
        np.testing.assert_array_equal(self.wire.lookup(table, range(10), "t-done", 3),
                                      self.rows(table))
        np.testing.assert_array_equal(self.wire.lookup(table, range(10), "t-done", 4),
                                      self.rows(table))

    def test_unapplied_sequence_is_deadline_exceeded_naming_the_trainer(self):
        table = make_table(self.client)
        self.wire.push(table, [1], grads(9, 1), "t-late", 2)
        # The call's deadline first, then the server's --max_sequence_wait_ms.
        for timeout in (0.3, 30):
            with self.subTest(timeout=timeout):
                with self.assertRaises(grpc.RpcError) as e:
                    self.wire.lookup(table, [1], "t-late", 3, timeout=timeout)
                self.assertEqual(e.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
                if timeout > 1:  # the server's answer (not the client's timer) names it all
                    self.assertIn("t-late", e.exception.details())
                    self.assertIn("3", e.exception.details())
                    self.assertIn("last applied push is 2", e.exception.details())

    def test_a_waiting_lookup_holds_up_no_other_lookup(self):
        table = make_table(self.client)
        waiting = [threading.Thread(
            target=lambda: self.assertRaises(
                grpc.RpcError, self.wire.lookup, table, [1], "t-never", 99, 30))
            for _ in range(8)]
        for t in waiting:
            t.start()
        # 200 ordinary lookups complete while all 8 still wait (they end at
        # --max_sequence_wait_ms, 1.5 s).
        for i in range(200):
            self.wire.lookup(table, [i % 10])
        self.assertTrue(all(t.is_alive() for t in waiting))
        for t in waiting:
            t.join(30)


class DurableRestartTest(unittest.TestCase):
    """A push resent after a restart of a durable server is answered
    duplicate and not applied twice (the update log keeps the trainers'
    last sequences)."""

    def test_resend_after_restart_is_duplicate(self):
        import tempfile
        from embedserve_client import EmbeddingClient
        from embedserve_testing import ServerProcess
        with tempfile.TemporaryDirectory(prefix="exactly-once-") as data:
            with ServerProcess(harness.ARGS.server, "--durability=sync", data_dir=data) as s:
                client = EmbeddingClient(s.address)
                wire = Wire(client)
                table = make_table(client)
                for seq in (1, 2, 3):
                    wire.push(table, [seq], grads(seq, 1), "t-durable", seq)
                before = wire.lookup(table, range(10))
                client.close()
            with ServerProcess(harness.ARGS.server, "--durability=sync", data_dir=data) as s:
                client = EmbeddingClient(s.address)
                wire = Wire(client)
                np.testing.assert_array_equal(wire.lookup(table, range(10)), before)
                again = wire.push(table, [3], grads(3, 1), "t-durable", 3)
                self.assertTrue(again.duplicate)
                np.testing.assert_array_equal(wire.lookup(table, range(10)), before)
                self.assertFalse(wire.push(table, [4], grads(4, 1), "t-durable", 4).duplicate)
                client.close()


if __name__ == "__main__":
    harness.main(__doc__)
