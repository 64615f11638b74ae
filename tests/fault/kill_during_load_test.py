"""SIGKILL during a durable bulk write: a server with --data_dir is killed
while it runs LoadTable of a 200 MB .npy, or CreateTable of a 256 MB table,
3 times each, and restarted on the same data directory each time. After every
restart the server must start, hold no half table (a table is absent, or
present whole with the right rows), and the data directory must hold no
staging folder (ingest-*) and no upload file. At the end, with every table
dropped, the directory must not keep the killed writes' data.

Bounded: 6 kills at a random point of a write that takes ~1-3 s.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/fault/kill_during_load_test.py --server build/server/embedserve
"""

import glob
import os
import random
import subprocess
import time

import numpy as np

import fault_harness as h

LOAD_ROWS, LOAD_DIM = 200_000, 256        # 204.8 MB .npy
CREATE_ROWS, CREATE_DIM = 1_000_000, 64   # 256 MB table
ROUNDS = 3
LEFTOVER_BOUND_MIB = 64                   # data dir with no tables, after the kills


def dir_mib(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total / (1 << 20)


class KillDuringLoadTest(h.FaultTest):

    def setUp(self):
        tmp = self.temp_dir("embedserve-kill-")
        self.load_dir = tmp
        self.data_dir = os.path.join(tmp, "data")
        self.npy = os.path.join(tmp, "big.npy")
        self.weights = np.random.default_rng(5).standard_normal((LOAD_ROWS, LOAD_DIM),
                                                               dtype=np.float32)
        np.save(self.npy, self.weights)
        self.load_probe = [0, 1, LOAD_ROWS // 2, LOAD_ROWS - 1]
        self.create_probe = [0, 1, CREATE_ROWS // 2, CREATE_ROWS - 1]

    def load_req(self, name):
        return h.pb.LoadTableRequest(name=name, path="big.npy", format=h.pb.NPY)

    def create_req(self, name):
        return h.create_request(name, CREATE_ROWS, CREATE_DIM, seed=42)

    def check_after_restart(self, server, what):
        """No half table, no staging folder, no upload file."""
        stub = server.stub
        for info in stub.ListTables(h.pb.ListTablesRequest(), timeout=30).tables:
            name = info.spec.name
            if name.startswith("load"):
                self.assertEqual((info.num_rows, info.spec.embedding_dim), (LOAD_ROWS, LOAD_DIM),
                                 "%s: half-loaded table %s" % (what, name))
                got = h.rows_of(stub.Lookup(h.lookup_request(name, self.load_probe),
                                            timeout=30), LOAD_DIM)
                self.assertTrue(np.array_equal(got, self.weights[self.load_probe]),
                                "%s: table %s restored with wrong rows" % (what, name))
            elif name.startswith("create"):
                self.assertEqual((info.num_rows, info.spec.embedding_dim),
                                 (CREATE_ROWS, CREATE_DIM), "%s: half-created %s" % (what, name))
                got = h.rows_of(stub.Lookup(h.lookup_request(name, self.create_probe),
                                            timeout=30), CREATE_DIM)
                self.assertTrue(np.array_equal(got, self.create_rows),
                                "%s: table %s restored with wrong rows" % (what, name))
            # Whole tables that made it are dropped, so each round starts empty.
            stub.DropTable(h.pb.DropTableRequest(name=name), timeout=60)
        # Leftover files are collected (and reported together at the end), so
        # one run shows how they pile up over the rounds.
        staged = h.leftover_staging(self.data_dir)
        if staged:
            self.problems.append("%s: staging folders left in the data dir: %s" % (what, staged))
        uploads = h.leftover_uploads(self.data_dir, before=self.uploads_before)
        if uploads:
            self.problems.append("%s: upload files left: %s" % (what, uploads))

    def test_kill_during_durable_writes(self):
        self.uploads_before = set(glob.glob("/tmp/embedserve-import-*"))
        self.problems = []
        server = self.start_server(self.data_dir, "--load_dir=" + self.load_dir)
        # Reference: how long each write takes, and the rows a create gives.
        t = time.monotonic()
        server.stub.LoadTable(self.load_req("ref_load"), timeout=120)
        load_s = time.monotonic() - t
        t = time.monotonic()
        server.stub.CreateTable(self.create_req("ref_create"), timeout=120)
        create_s = time.monotonic() - t
        self.create_rows = h.rows_of(server.stub.Lookup(
            h.lookup_request("ref_create", self.create_probe), timeout=30), CREATE_DIM)
        for name in ("ref_load", "ref_create"):
            server.stub.DropTable(h.pb.DropTableRequest(name=name), timeout=60)
        print("durable load %.2f s, durable create %.2f s" % (load_s, create_s))

        rnd = random.Random(7)
        report = []
        for r in range(ROUNDS):
            for kind, took in (("load", load_s), ("create", create_s)):
                name = "%s%d" % (kind, r)
                req = self.load_req(name) if kind == "load" else self.create_req(name)
                call = server.stub.LoadTable if kind == "load" else server.stub.CreateTable
                delay = rnd.uniform(0.1, 0.9) * took
                future = call.future(req, timeout=120)
                time.sleep(delay)
                server.kill()
                try:
                    future.result(timeout=10)
                    outcome = "finished"
                except h.grpc.RpcError as e:
                    outcome = e.code().name
                staged = h.leftover_staging(self.data_dir)
                server.stop()
                t = time.monotonic()
                server = self.start_server(self.data_dir, "--load_dir=" + self.load_dir)
                restart_s = time.monotonic() - t
                what = "round %d, kill %.2f s into a %s (%s)" % (r, delay, kind, outcome)
                report.append("%s: staging at the kill %d, restart %.2f s, tables %s"
                              % (what, len(staged), restart_s, h.table_names(server.stub)))
                self.check_after_restart(server, what)
        print("\n".join(report))

        # Every table is dropped now; the killed writes must not keep space.
        server.stop()
        server = self.start_server(self.data_dir, "--load_dir=" + self.load_dir)
        self.assertEqual(h.table_names(server.stub), [])
        server.stop()
        size = dir_mib(self.data_dir)
        du = subprocess.run(["du", "-sh", self.data_dir], capture_output=True, text=True).stdout
        print("data dir with no tables: %.1f MiB (%s)" % (size, du.strip()))
        if size >= LEFTOVER_BOUND_MIB:
            self.problems.append("the data dir keeps %.0f MiB with no table stored: the killed "
                                 "writes' data was never reclaimed" % size)
        if self.problems:
            self.fail("%d problems:\n  %s" % (len(self.problems), "\n  ".join(self.problems)))


if __name__ == "__main__":
    h.main(__doc__)
