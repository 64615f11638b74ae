"""Turning the update log off (--update_log=false) on a data directory that the
log wrote: refused, naming the record, while the log holds a change that no
snapshot has (serving without it would lose that change); accepted once every
table was snapshotted (a checkpoint snapshots them all), serving the same rows.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/storage/update_log_switch_test.py --server build/server/embedserve
"""

import argparse
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ARGS = None


class UpdateLogSwitchTest(unittest.TestCase):

    def test_the_log_is_turned_off_only_when_nothing_is_pending(self):
        from embedserve_client import EmbeddingClient
        from embedserve_testing import ServerProcess
        data = tempfile.TemporaryDirectory(prefix="embedserve-logswitch-")
        self.addCleanup(data.cleanup)
        rng = np.random.default_rng(3)
        with ServerProcess(ARGS.server, data_dir=data.name) as server:
            c = EmbeddingClient(server.address)
            c.wait_for_ready()
            c.create_table("t", 100, 8, optimizer="adagrad", seed=4)  # one log record
            for _ in range(5):
                c.push("t", rng.integers(0, 100, 32), rng.normal(size=(32, 8)).astype(np.float32))
            rows = c.lookup("t", np.arange(100))
            c.close()

        def without_log():
            return subprocess.run(
                [ARGS.server, "--data_dir=" + data.name, "--address=127.0.0.1:0",
                 "--update_log=false"], capture_output=True, text=True, timeout=60)

        refused = without_log()
        self.assertEqual(refused.returncode, 2, refused.stderr)
        self.assertIn("holds update log record", refused.stderr)
        self.assertIn("table 't'", refused.stderr)

        with ServerProcess(ARGS.server, data_dir=data.name) as server:
            c = EmbeddingClient(server.address)
            c.wait_for_ready()
            np.testing.assert_array_equal(c.lookup("t", np.arange(100)), rows)
            c.create_checkpoint("before-switch")  # snapshots every table
            c.close()
        # Without the log every push writes its rows to RocksDB (the snapshot's
        # runs of records are stored again one per row first).
        ids, grads = rng.integers(0, 100, 32), rng.normal(size=(32, 8)).astype(np.float32)
        with ServerProcess(ARGS.server, "--update_log=false", data_dir=data.name) as server:
            c = EmbeddingClient(server.address)
            c.wait_for_ready()
            np.testing.assert_array_equal(c.lookup("t", np.arange(100)), rows)
            c.push("t", ids, grads)
            rows = c.lookup("t", np.arange(100))
            c.close()
        for flags in (("--update_log=false",), ()):  # and back to the log
            with ServerProcess(ARGS.server, *flags, data_dir=data.name) as server:
                c = EmbeddingClient(server.address)
                c.wait_for_ready()
                np.testing.assert_array_equal(c.lookup("t", np.arange(100)), rows)
                c.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
