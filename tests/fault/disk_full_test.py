"""Disk full: the server's --data_dir sits on a small tmpfs that the test fills
with tables. Every call must get a clean gRPC error (RESOURCE_EXHAUSTED or
UNAVAILABLE, with a message), the server must stay up and keep answering
lookups of the tables it has, and once space is freed (tables dropped, a
filler file removed) creates must work again. A second case fills the disk
from another process, in paced 256 KiB writes to its last byte, while creates and
assigns run (three times): the same clean answers, then writes work again.

Needs root (mount -t tmpfs); skipped with a message where mount is not
permitted. Bounded: at most 60 creates of <= 2 MiB, three fills of 64 MiB,
and 20 s of waiting per case (~20 s in all).

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/fault/disk_full_test.py --server build/server/embedserve
"""

import os
import subprocess
import threading
import time

import fault_harness as h

FS_MIB = 64
FILLER_MIB = 16          # freed at the end, so space comes back whatever the store does
ROWS, DIM = 8192, 64     # 2 MiB of rows per table
CLEAN_CODES = ("RESOURCE_EXHAUSTED", "UNAVAILABLE")


class DiskFullTest(h.FaultTest):

    def setUp(self):
        self.mnt = self.temp_dir("embedserve-diskfull-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % FS_MIB, "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs (needs root): %s" % r.stderr.strip())
        # Registered after temp_dir's rmtree, so it runs first (cleanups are LIFO).
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt], capture_output=True)

    def free_mib(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize / (1 << 20)

    def test_full_disk_gives_clean_errors_and_recovers(self):
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (FILLER_MIB << 20))
        data_dir = os.path.join(self.mnt, "data")
        server = self.start_server(data_dir)
        stub = server.stub
        stub.CreateTable(h.create_request("keep", 1000, 16, seed=7), timeout=30)
        # Rows 2..9 are never written (row 1 is, by the assigns below).
        expected = h.rows_of(stub.Lookup(h.lookup_request("keep", range(2, 10)), timeout=10), 16)

        # Big creates until one fails, then ever smaller ones (down to one
        # row), so that the last bytes go too and the failure also lands in
        # the store's log and manifest writes, not only in its bulk files.
        created, errors = [], []
        rows = ROWS
        for i in range(60):
            name = "fill%d" % i
            try:
                # With values, so the rows go to the store now (a table from its
                # initializer is one small update log record).
                stub.CreateTable(h.create_request(name, rows, DIM, seed=i, with_values=True),
                                 timeout=60)
                created.append(name)
            except h.grpc.RpcError as e:
                errors.append((name, rows, e.code().name, e.details()))
                self.assert_alive(server, "after create %d (%d rows) failed with %s: %s"
                                  % (i, rows, e.code().name, e.details()),
                                  grace=h.grace_for(e))
                if rows == 1 and len(errors) >= 3:
                    break
                rows = max(1, rows // 4)
        print("created %d tables, %.2f MiB free; errors:\n  %s"
              % (len(created), self.free_mib(),
                 "\n  ".join("%s (%d rows): %s: %s" % e for e in errors)))
        self.assertTrue(errors, "the disk never filled up (%.1f MiB free)" % self.free_mib())
        for name, _, code, details in errors:
            self.assertIn(code, CLEAN_CODES, "create %s: %s: %s" % (name, code, details))
            self.assertTrue(details, "create %s: %s without a message" % (name, code))
        names = h.table_names(stub)
        for name, _, _, _ in errors:
            self.assertNotIn(name, names, "a failed create left a table")

        # Writes other than creates must fail cleanly too, and reads go on.
        for attempt in range(3):
            try:
                stub.AssignRows(h.pb.AssignRowsRequest(table="keep", ids=[1],
                                                       values=b"\0" * 64), timeout=10)
            except h.grpc.RpcError as e:
                self.assert_alive(server, "after an assign on the full disk failed with %s: %s"
                                  % (e.code().name, e.details()), grace=h.grace_for(e))
                self.assertIn(e.code().name, CLEAN_CODES + ("FAILED_PRECONDITION",),
                              "assign on a full disk: %s" % e.details())
        got = h.rows_of(stub.Lookup(h.lookup_request("keep", range(2, 10)), timeout=10), 16)
        self.assertEqual(got.tolist(), expected.tolist())
        self.assertIn("keep", h.table_names(stub))

        # Free space: drop what was created and remove the filler.
        for name in created:
            try:
                stub.DropTable(h.pb.DropTableRequest(name=name), timeout=30)
            except h.grpc.RpcError as e:
                self.assertIn(e.code().name, CLEAN_CODES, "drop %s: %s" % (name, e.details()))
            self.assert_alive(server, "while dropping " + name)
        os.unlink(filler)
        print("after drops: %.1f MiB free" % self.free_mib())

        # Creates work again (the store may need a moment to resume).
        last = [None]

        def create_again():
            try:
                stub.CreateTable(h.create_request("again", ROWS, DIM), timeout=30)
                return True
            except h.grpc.RpcError as e:
                last[0] = "%s: %s" % (e.code().name, e.details())
                self.assert_alive(server, "on a create after space was freed (%s)" % last[0],
                                  grace=h.grace_for(e))
                return False

        self.assertTrue(h.wait_until(create_again, timeout=20, step=1.0),
                        "creates still fail 20 s after space was freed: %s" % last[0])
        self.assertIn("again", h.table_names(stub))
        got = h.rows_of(stub.Lookup(h.lookup_request("keep", range(2, 10)), timeout=10), 16)
        self.assertEqual(got.tolist(), expected.tolist())
        self.assertIsNotNone(server.terminate(timeout=15), "SIGTERM did not stop the server")

    def test_disk_filled_by_another_process_during_writes(self):
        # A check of free space before each write cannot see a disk that
        # another process fills between the check and the write: fill the
        # tmpfs to its last byte while creates and assigns run, three times.
        data_dir = os.path.join(self.mnt, "data")
        server = self.start_server(data_dir)
        stub = server.stub
        stub.CreateTable(h.create_request("keep", 1000, 16, seed=7), timeout=30)
        expected = h.rows_of(stub.Lookup(h.lookup_request("keep", range(2, 10)), timeout=10), 16)
        seen = {}
        for rnd in range(3):
            filler = os.path.join(self.mnt, "filler%d" % rnd)
            done = threading.Event()

            def fill():
                try:
                    with open(filler, "wb") as f:
                        chunk = b"\0" * (256 << 10)
                        while True:  # paced: the server's writes land all along
                            f.write(chunk)
                            f.flush()
                            time.sleep(0.003)
                except OSError:
                    pass  # ENOSPC: the disk is full to the last byte
                finally:
                    done.set()

            writer = threading.Thread(target=fill)
            started = time.monotonic()
            writer.start()
            k = on_full_disk = 0
            while on_full_disk < 10:  # writes while it fills, then 10 on the full disk
                k += 1
                on_full_disk += done.is_set()
                try:
                    if k % 2:
                        stub.CreateTable(h.create_request("r%d_%d" % (rnd, k), 2048, 16),
                                         timeout=30)
                        stub.DropTable(h.pb.DropTableRequest(name="r%d_%d" % (rnd, k)),
                                       timeout=30)
                    else:
                        stub.AssignRows(h.pb.AssignRowsRequest(table="keep", ids=[1],
                                                               values=b"\0" * 64), timeout=10)
                    seen["OK"] = seen.get("OK", 0) + 1
                except h.grpc.RpcError as e:
                    seen[e.code().name] = seen.get(e.code().name, 0) + 1
                    self.assert_alive(server, "round %d: a write failed with %s: %s"
                                      % (rnd, e.code().name, e.details()),
                                      grace=h.grace_for(e))
                    self.assertIn(e.code().name, CLEAN_CODES, e.details())
            writer.join()
            print("round %d: %d writes in %.1f s" % (rnd, k, time.monotonic() - started))
            got = h.rows_of(stub.Lookup(h.lookup_request("keep", range(2, 10)), timeout=10), 16)
            self.assertEqual(got.tolist(), expected.tolist())
            os.unlink(filler)
        print("answers while the disk filled: %s" % seen)
        self.assert_alive(server, "after the disk was filled three times")
        last = [None]

        def assign_again():
            try:
                stub.AssignRows(h.pb.AssignRowsRequest(table="keep", ids=[1],
                                                       values=b"\0" * 64), timeout=10)
                stub.CreateTable(h.create_request("after", 2048, 16), timeout=30)
                return True
            except h.grpc.RpcError as e:
                last[0] = "%s: %s" % (e.code().name, e.details())
                self.assert_alive(server, "on a write after space was freed (%s)" % last[0],
                                  grace=h.grace_for(e))
                return False

        self.assertTrue(h.wait_until(assign_again, timeout=20, step=1.0),
                        "writes still fail 20 s after space was freed: %s" % last[0])


if __name__ == "__main__":
    h.main(__doc__)
