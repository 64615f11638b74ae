"""A file truncated while the server loads it: a 200 MB .npy is given to
LoadTable while another thread truncates it to 1 KiB part-way through. The
server must survive; each answer is OK (then the table must hold the file's
true rows: the load finished before the truncation) or DATA_LOSS /
INVALID_ARGUMENT; and lookups work afterwards.

Bounded: 4 rounds, each a 200 MB write and one load (a 60 s deadline).

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/fault/truncated_load_test.py --server build/server/embedserve
"""

import os
import random
import threading
import time

import numpy as np

import fault_harness as h

ROWS, DIM = 200_000, 256        # 204.8 MB of float32
ROUNDS = 4
ACCEPTED = ("DATA_LOSS", "INVALID_ARGUMENT")


class TruncatedLoadTest(h.FaultTest):

    def test_truncation_during_load(self):
        tmp = self.temp_dir("embedserve-trunc-")
        path = os.path.join(tmp, "big.npy")
        rng = np.random.default_rng(3)
        weights = rng.standard_normal((ROWS, DIM), dtype=np.float32)
        probe_ids = [0, 1, ROWS // 2, ROWS - 1]
        server = self.start_server("", "--load_dir=" + tmp)
        stub = server.stub
        stub.CreateTable(h.create_request("small", 100, 8), timeout=30)

        # How long a whole load takes, so truncations land inside one.
        np.save(path, weights)
        t = time.monotonic()
        stub.LoadTable(h.pb.LoadTableRequest(name="whole", path="big.npy", format=h.pb.NPY),
                       timeout=120)
        load_s = time.monotonic() - t
        stub.DropTable(h.pb.DropTableRequest(name="whole"), timeout=30)
        print("a whole load takes %.3f s" % load_s)

        rnd = random.Random(11)
        outcomes = []
        for k in range(ROUNDS):
            np.save(path, weights)
            delay = rnd.uniform(0.05, 0.8) * load_s
            timer = threading.Timer(delay, os.truncate, (path, 1024))
            name = "t%d" % k
            timer.start()
            try:
                info = stub.LoadTable(h.pb.LoadTableRequest(name=name, path="big.npy",
                                                            format=h.pb.NPY), timeout=60).table
                outcome = "OK"
            except h.grpc.RpcError as e:
                outcome = "%s: %s" % (e.code().name, e.details())
                self.assert_alive(server, "after a load whose file was truncated after %.3f s "
                                  "(answer %s)" % (delay, outcome), grace=h.grace_for(e))
                self.assertIn(e.code().name, ACCEPTED,
                              "round %d (truncated after %.3f s): %s" % (k, delay, outcome))
            finally:
                timer.join()
            outcomes.append("truncated after %.3f s: %s" % (delay, outcome[:120]))
            self.assert_alive(server, "after round %d" % k)
            if outcome == "OK":
                # Then the load must have read the whole, true file.
                self.assertEqual((info.spec.num_embeddings, info.spec.embedding_dim), (ROWS, DIM))
                got = h.rows_of(stub.Lookup(h.lookup_request(name, probe_ids), timeout=10), DIM)
                self.assertTrue(np.array_equal(got, weights[probe_ids]),
                                "round %d: OK, but the rows differ from the file's" % k)
                stub.DropTable(h.pb.DropTableRequest(name=name), timeout=30)
            else:
                self.assertNotIn(name, h.table_names(stub), "a failed load left a table")
            got = stub.Lookup(h.lookup_request("small", [1, 2, 3]), timeout=10)
            self.assertEqual(list(got.results[0].shape), [3, 8])
        print("\n".join(outcomes))


if __name__ == "__main__":
    h.main(__doc__)
