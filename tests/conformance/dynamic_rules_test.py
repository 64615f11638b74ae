"""Dynamic tables' admission and eviction against a plain Python model of
the rules (issue 15), through a real server; and bad input.

The model (class RulesModel) restates proto/embedserve.proto's TableSpec
comment and DynamicRowStorage::Upsert's contract:
  * every push that has a non-padding id advances the table's step (the TTL
    clock); an assign runs at the current step;
  * at each push or assign, first ttl_steps expiry: rows last updated at or
    before step - ttl_steps go;
  * then the push's distinct ids in order of first occurrence: a stored id
    becomes the most recently updated; an id without a row is counted and
    gets none below admit_after pushes (pushes only; assigns always store);
    when max_rows rows are stored the least recently updated row is
    evicted, unless every stored row is one this push or assign updated or
    made (pinned): then the id gets no row;
  * an evicted or expired row reads as its initial value again (and its
    optimizer state starts over).
Admission counts are exact here: the server's count-min sketch (4 rows of
2^18 counters, aging every 2^22 adds) only over-counts an id when other ids
share all four of its counters, which for the few dozen ids of these tests
does not happen (and aging never triggers), so the sketch equals exact
counts.

After every call the test compares: the rows of every id in the universe
(stored ids hold the model's SGD values, the others their initial value),
DescribeTable's num_rows, optimizer_step and dynamic stats, and the push's
rows_applied.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/conformance/dynamic_rules_test.py --server build/server/embedserve
"""

import collections
import unittest

import grpc
import numpy as np

import harness
from dynamic_testing import (create_dynamic, dynamic_spec, push_request, sparse_ids,
                             start_unlimited_server, unique_name)
from embedserve_client._proto import embedserve_pb2 as pb

CLIENT = None
DIM = 6


def setUpModule():
    global CLIENT
    CLIENT = start_unlimited_server(harness)


def tearDownModule():
    harness.stop()


class RulesModel:
    """The rules of a dynamic SGD table (lr 1), one id at a time."""

    def __init__(self, initial, max_rows=0, ttl_steps=0, admit_after=0, padding_idx=None):
        self.initial = initial  # id -> initial row (float32)
        self.max_rows, self.ttl, self.padding = max_rows, ttl_steps, padding_idx
        self.admit_after = max(1, admit_after)
        self.rows = collections.OrderedDict()  # id -> [row, last step]; LRU first
        self.counts = collections.Counter()
        self.step = 0
        self.stats = collections.Counter()

    def value(self, i):
        return self.rows[i][0] if i in self.rows else self.initial[i]

    def _upsert(self, ids, push):
        """The ids that get (or keep) a row."""
        if self.ttl:
            while self.rows:
                head = next(iter(self.rows))
                if self.rows[head][1] > self.step - self.ttl:
                    break
                del self.rows[head]
                self.stats["rows_expired"] += 1
        stored = []
        ours = 0  # rows this call updated or made (the tail of the LRU order)
        for i in ids:
            if i in self.rows:
                self.rows.move_to_end(i)
                self.rows[i][1] = self.step
                stored.append(i)
                ours += 1
                continue
            if push and self.admit_after >= 2:
                self.counts[i] += 1
                if self.counts[i] < self.admit_after:
                    self.stats["pushes_not_admitted"] += 1
                    continue
            if self.max_rows and len(self.rows) >= self.max_rows:
                head = next(iter(self.rows))
                # Pinned: every stored row is one this call updated or made.
                # Only this call's: an assign at the step of the push before
                # it evicts that push's oldest row.
                if ours >= len(self.rows):
                    self.stats["pushes_dropped_full"] += 1
                    continue
                del self.rows[head]
                self.stats["rows_evicted"] += 1
            self.rows[i] = [self.initial[i].copy(), self.step]
            self.stats["rows_admitted"] += 1
            stored.append(i)
            ours += 1
        return stored

    def push(self, ids, grads):
        """Returns rows_applied."""
        sums = collections.OrderedDict()
        for i, g in zip(ids, grads):
            if i == self.padding:
                continue
            sums[i] = sums[i] + g if i in sums else g.copy()
        if not sums:
            return 0
        self.step += 1
        new = {i: self.value(i) - s for i, s in sums.items()}  # SGD, lr 1
        stored = self._upsert(list(sums), push=True)
        for i in stored:
            self.rows[i][0] = new[i]
        return len(stored)

    def assign(self, ids, values):
        last = collections.OrderedDict()
        for i, v in zip(ids, values):
            last.pop(i, None)
            last[i] = v  # in order of last occurrence
        for i in self._upsert(list(last), push=False):
            self.rows[i][0] = last[i].copy()


CONFIGS = [
    dict(max_rows=8),
    dict(ttl_steps=5),
    dict(ttl_steps=1),
    dict(admit_after=3),
    dict(max_rows=10, ttl_steps=6, admit_after=2, padding=True),
    dict(max_rows=4),  # pushes of up to 12 ids: rows of the same push pinned
    dict(max_rows=12, admit_after=4, padding=True),
    dict(max_rows=1),
    dict(max_rows=5, ttl_steps=2),
]


class RulesAgainstModel(unittest.TestCase):

    def check(self, table, model, universe, msg):
        info = CLIENT.describe_table(table)
        self.assertEqual(info.num_rows, len(model.rows), msg)
        self.assertEqual(info.optimizer_step, model.step, msg)
        d = info.dynamic
        got = {k: getattr(d, k) for k in ("rows_admitted", "rows_evicted", "rows_expired",
                                          "pushes_not_admitted", "pushes_dropped_full")}
        want = {k: model.stats[k] for k in got}
        self.assertEqual(got, want, msg)
        self.assertEqual(d.rows_stored, len(model.rows), msg)
        rows = CLIENT.lookup(table, universe)
        want_rows = np.stack([model.value(int(i)) for i in universe])
        bad = [int(universe[k]) for k in range(len(universe))
               if not np.allclose(rows[k], want_rows[k], rtol=1e-6, atol=1e-6)]
        self.assertEqual(bad, [], "%s: rows differ from the model for ids %s (stored: %s)"
                         % (msg, bad, [i in model.rows for i in bad]))

    def run_config(self, config, seed, ops=160):
        rng = np.random.default_rng(seed)
        universe = sparse_ids(rng, 40)
        padding = int(universe[3]) if config.get("padding") else None
        table = unique_name("rules")
        create_dynamic(CLIENT, table, DIM, seed=seed, optimizer_args={"lr": 1.0},
                       padding_idx=padding, max_rows=config.get("max_rows", 0),
                       ttl_steps=config.get("ttl_steps", 0),
                       admit_after=config.get("admit_after", 0))
        initial = CLIENT.lookup(table, universe)
        model = RulesModel({int(i): r for i, r in zip(universe, initial)},
                           config.get("max_rows", 0), config.get("ttl_steps", 0),
                           config.get("admit_after", 0), padding)
        # Hot and cold ids: a few come back often (admission, LRU), most
        # rarely (eviction, expiry).
        weights = 1.0 / np.arange(1, len(universe) + 1)
        weights /= weights.sum()
        sticky = [i for i in universe if int(i) != padding]
        for op in range(ops):
            msg = "config %s, op %d" % (config, op)
            kind = rng.random()
            if kind < 0.1:  # an assign (never of the padding id)
                ids = rng.choice(sticky, size=int(rng.integers(1, 4)))
                values = rng.normal(size=(len(ids), DIM)).astype(np.float32)
                CLIENT.assign_rows(table, ids, values)
                model.assign([int(i) for i in ids], values)
            else:
                n = int(rng.integers(1, 13))
                ids = rng.choice(universe, size=n, p=weights)
                if kind < 0.13 and padding is not None:
                    ids[:] = padding  # only padding: no step
                grads = rng.normal(size=(n, DIM)).astype(np.float32)
                resp = CLIENT.push(table, ids, grads)
                want = model.push([int(i) for i in ids], grads)
                self.assertEqual(resp.rows_applied, want, msg)
            self.check(table, model, universe, msg)
        return model

    def test_configs(self):
        for k, config in enumerate(CONFIGS):
            with self.subTest(config=config):
                model = self.run_config(config, 100 + k)
                print(config, dict(model.stats), flush=True)
                # The configuration did exercise its rule.
                if config.get("max_rows"):
                    self.assertGreater(model.stats["rows_evicted"], 0)
                if config.get("ttl_steps"):
                    self.assertGreater(model.stats["rows_expired"], 0)
                if config.get("admit_after", 0) >= 2:
                    self.assertGreater(model.stats["pushes_not_admitted"], 0)
                if config.get("max_rows", 99) <= 4:
                    self.assertGreater(model.stats["pushes_dropped_full"], 0)

    def test_lru_orders_by_update_not_by_lookup(self):
        ids = sparse_ids(np.random.default_rng(3), 4, extra=())
        table = unique_name("lru")
        create_dynamic(CLIENT, table, DIM, seed=1, max_rows=3, optimizer_args={"lr": 1.0})
        initial = CLIENT.lookup(table, ids)
        g = np.ones((1, DIM), np.float32)
        for i in ids[:3]:
            CLIENT.push(table, [i], g)
        # Lookups of the oldest row do not make it recent; a push of the
        # second one does: the new id evicts the first.
        for _ in range(3):
            CLIENT.lookup(table, ids[:1])
        CLIENT.push(table, ids[1:2], g)
        CLIENT.push(table, ids[3:4], g)
        got = CLIENT.lookup(table, ids)
        np.testing.assert_array_equal(got[0], initial[0])
        np.testing.assert_allclose(got[1], initial[1] - 2, rtol=1e-6)
        np.testing.assert_allclose(got[2:], initial[2:] - 1, rtol=1e-6)

    def test_evicted_rows_start_over_with_initial_optimizer_state(self):
        a, b = sparse_ids(np.random.default_rng(4), 2, extra=())
        table = unique_name("state")
        create_dynamic(CLIENT, table, DIM, seed=2, max_rows=1, optimizer="adagrad",
                       optimizer_args={"lr": 0.5, "initial_accumulator_value": 0.25})
        initial = CLIENT.lookup(table, [a, b])
        g = np.full((1, DIM), 2.0, np.float32)
        CLIENT.push(table, [a], g)
        CLIENT.push(table, [a], g)
        state, _ = CLIENT.optimizer_state(table, [a])
        np.testing.assert_allclose(state["sum"], 0.25 + 8.0)
        CLIENT.push(table, [b], g)  # evicts a
        state, step = CLIENT.optimizer_state(table, [a, b])
        self.assertEqual(step, 3)
        np.testing.assert_array_equal(state["sum"][0], 0.25)
        np.testing.assert_allclose(state["sum"][1], 4.25)
        np.testing.assert_array_equal(CLIENT.lookup(table, [a])[0], initial[0])
        # Back, a starts from its initial row and state (Adagrad's lr at step 4).
        CLIENT.push(table, [a], g)
        want = initial[0] - 0.5 * 2.0 / np.sqrt(np.float32(4.25))
        np.testing.assert_allclose(CLIENT.lookup(table, [a])[0], want, rtol=1e-6)


class BadInput(unittest.TestCase):
    """Refused with INVALID_ARGUMENT naming the field; nothing changes."""

    def refused(self, call, *texts):
        with self.assertRaises(grpc.RpcError) as cm:
            call()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         cm.exception.details())
        for text in texts:
            self.assertIn(text, cm.exception.details())

    def test_bad_specs_make_no_table(self):
        before = sorted(t.spec.name for t in CLIENT.list_tables())
        cases = [
            (dict(num_embeddings=100), ("num_embeddings",)),
            (dict(dynamic=False, num_embeddings=100, max_rows=10), ("max_rows", "dynamic")),
            (dict(dynamic=False, num_embeddings=100, ttl_steps=3), ("ttl_steps", "dynamic")),
            (dict(dynamic=False, num_embeddings=100, admit_after=2), ("admit_after", "dynamic")),
            (dict(dynamic=False, num_embeddings=100, unseen_zeros=True),
             ("unseen_zeros", "dynamic")),
            (dict(admit_after=300), ("admit_after", "300")),
            (dict(admit_after=-1), ("admit_after",)),
            (dict(ttl_steps=-5), ("ttl_steps", "-5")),
            (dict(max_rows=-1), ("max_rows",)),
            (dict(init="xavier_uniform"), ("xavier_uniform", "num_embeddings")),
        ]
        for kwargs, texts in cases:
            with self.subTest(kwargs=kwargs):
                spec = dynamic_spec("bad_spec", DIM, **kwargs)
                self.refused(lambda: CLIENT._stub.CreateTable(
                    pb.CreateTableRequest(spec=spec), timeout=10), *texts)
        # Initial values: a dynamic table has no range to fill.
        self.refused(lambda: create_dynamic(
            CLIENT, "bad_spec", DIM, initial_values=np.zeros((4, DIM), "<f4").tobytes()),
            "initial values")
        self.refused(lambda: CLIENT._stub.CreateTable(pb.CreateTableRequest(
            spec=dynamic_spec("bad_spec", 0)), timeout=10), "embedding_dim")
        self.assertEqual(sorted(t.spec.name for t in CLIENT.list_tables()), before)

    def test_bad_pushes_and_assigns_change_nothing(self):
        ids = sparse_ids(np.random.default_rng(8), 6)
        table = unique_name("bad_push")
        create_dynamic(CLIENT, table, DIM, seed=4, max_rows=3, ttl_steps=2, admit_after=2,
                       optimizer="adagrad")
        g = np.ones((3, DIM), np.float32)
        for _ in range(2):
            CLIENT.push(table, ids[:3], g)  # stored at the second push
        before = CLIENT.describe_table(table)
        rows = CLIENT.lookup(table, ids)
        state = CLIENT.optimizer_state(table, ids)
        self.assertEqual(before.num_rows, 3)
        nan = g.copy()
        nan[1, 4] = np.nan
        inf = np.ones((4, DIM), np.float32)
        inf[3, 0] = np.inf
        # A NaN on a stored id, an Inf on a new one (which would evict and
        # count admission), wrong sizes.
        for req, texts in (
                (push_request(table, ids[:3], nan), ("grads[%d]" % (DIM + 4), "finite")),
                (push_request(table, ids[2:], inf), ("grads[%d]" % (3 * DIM), "finite")),
                (push_request(table, ids[3:], np.ones((2, DIM), np.float32)), ("grads",))):
            self.refused(lambda: CLIENT._stub.PushGradients(req, timeout=10), *texts)
        bad_values = np.ones((2, DIM), np.float32)
        bad_values[1, 2] = np.nan
        self.refused(lambda: CLIENT.assign_rows(table, ids[4:], bad_values), "values[")
        after = CLIENT.describe_table(table)
        self.assertEqual(after.version, before.version)
        self.assertEqual(after.optimizer_step, before.optimizer_step)
        self.assertEqual(after.dynamic, before.dynamic)
        np.testing.assert_array_equal(CLIENT.lookup(table, ids), rows)
        got_state = CLIENT.optimizer_state(table, ids)
        self.assertEqual(got_state[1], state[1])
        np.testing.assert_array_equal(got_state[0]["sum"], state[0]["sum"])
        # The admission counts did not move either: one more push of the new
        # ids is their first, so they still get no row.
        CLIENT.push(table, ids[3:], np.ones((3, DIM), np.float32))
        self.assertEqual(CLIENT.describe_table(table).dynamic.pushes_not_admitted,
                         before.dynamic.pushes_not_admitted + 3)


if __name__ == "__main__":
    harness.main(__doc__)
