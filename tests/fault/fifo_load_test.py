"""A FIFO given to LoadTable: two concurrent loads of a named pipe that no one
writes, each with a short deadline, while another thread looks rows up. The
loads must be refused (INVALID_ARGUMENT: not a regular file) rather than
hang; lookups must go on answering (p99 during the loads under a generous
200 ms); and SIGTERM must stop the server within 5 s afterwards.

Bounded: ~10 s; a server that does not stop is SIGKILLed by the cleanup.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/fault/fifo_load_test.py --server build/server/embedserve
"""

import os
import threading
import time

import fault_harness as h

DEADLINE_S = 3.0
P99_BOUND_S = 0.200
STOP_BOUND_S = 5.0


class FifoLoadTest(h.FaultTest):

    def test_fifo_is_refused_and_server_stays_responsive(self):
        tmp = self.temp_dir("embedserve-fifo-")
        fifo = os.path.join(tmp, "vectors.npy")
        os.mkfifo(fifo)
        server = self.start_server("", "--load_dir=" + tmp)
        stub = server.stub
        stub.CreateTable(h.create_request("t", 1000, 32), timeout=30)

        before = h.measure_lookups(server, "t", 1.0)
        print("lookups before:", before.summary())

        probe = h.LatencyProbe(server, "t").start()
        answers = [None, None]

        def load(k):
            t = time.monotonic()
            try:
                stub.LoadTable(h.pb.LoadTableRequest(name="fifo%d" % k, path="vectors.npy",
                                                     format=h.pb.NPY), timeout=DEADLINE_S)
                answers[k] = ("OK", "", time.monotonic() - t)
            except h.grpc.RpcError as e:
                answers[k] = (e.code().name, e.details(), time.monotonic() - t)

        loaders = [threading.Thread(target=load, args=(k,)) for k in range(2)]
        for t in loaders:
            t.start()
        for t in loaders:
            t.join(DEADLINE_S + 10)
        time.sleep(0.5)  # lookups after the loads' deadlines too
        probe.stop()
        print("lookups during:", probe.summary())
        print("answers:", answers)
        self.assert_alive(server, "after loads of a FIFO")

        self.assertFalse(probe.errors, "lookups failed during the loads: %s" % probe.errors[:3])
        self.assertGreater(len(probe.latencies) - len(probe.errors), 10,
                           "lookups stalled during the loads")
        self.assertLess(probe.percentile(99), P99_BOUND_S,
                        "lookup p99 during the loads: %s (before: %s)"
                        % (probe.summary(), before.summary()))
        for k, (code, details, took) in enumerate(answers):
            self.assertEqual(code, "INVALID_ARGUMENT",
                             "load %d of a FIFO answered %s after %.2f s: %s"
                             % (k, code, took, details))
        self.assertFalse([n for n in h.table_names(stub) if n.startswith("fifo")])

        took = server.terminate(timeout=STOP_BOUND_S)
        self.assertIsNotNone(took, "SIGTERM did not stop the server within %.0f s (a load still "
                             "blocked on the FIFO?)" % STOP_BOUND_S)
        print("stopped %.2f s after SIGTERM" % took)


if __name__ == "__main__":
    h.main(__doc__)
