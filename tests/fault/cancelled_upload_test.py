"""Cancelled and garbage uploads (ImportTable). An upload cancelled by its
client after the first chunk and part of the data must store nothing (no
table, even when what arrived happens to be a valid file) and leave no upload
file behind (/tmp/embedserve-import-*, <data_dir>/uploads/). An upload whose
header is garbage (a word2vec binary header promising 999999999999 rows of
999999999999 floats) must be answered with an error promptly and leave
nothing either.

Bounded: a few seconds per case.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/fault/cancelled_upload_test.py --server build/server/embedserve
"""

import glob
import io
import os
import threading
import time

import numpy as np

import fault_harness as h

SETTLE_S = 5.0     # how long leftovers may take to go away
PROMPT_S = 5.0     # a garbage upload must be answered within this


class CancelledUploadTest(h.FaultTest):

    def setUp(self):
        self.data_dir = os.path.join(self.temp_dir("embedserve-upload-"), "data")
        self.before = set(glob.glob("/tmp/embedserve-import-*"))
        # Runs after the server is stopped (cleanups run last-in first-out).
        self.addCleanup(h.remove_orphan_uploads, self.before)
        self.server = self.start_server(self.data_dir)
        self.stub = self.server.stub

    def assert_nothing_left(self, name, what):
        # A server that goes on loading what arrived would store the table a
        # little after the cancel: look again once leftovers had time to go.
        time.sleep(1.0)
        self.assert_alive(self.server, what)
        self.assertNotIn(name, h.table_names(self.stub), "%s stored table %r" % (what, name))
        gone = h.wait_until(lambda: not h.leftover_uploads(self.data_dir, self.before),
                            timeout=SETTLE_S)
        self.assertTrue(gone, "%s left upload files %.0f s later: %s"
                        % (what, SETTLE_S, h.leftover_uploads(self.data_dir, self.before)))
        self.assertNotIn(name, h.table_names(self.stub), "%s stored table %r" % (what, name))

    def cancel_after(self, request, data):
        """Starts an upload, sends the request chunk and `data`, waits until
        the server has had time to take it, then cancels the call."""
        sent, release = threading.Event(), threading.Event()

        def chunks():
            yield h.pb.ImportChunk(request=request)
            for k in range(0, len(data), 1 << 20):
                yield h.pb.ImportChunk(data=data[k:k + (1 << 20)])
            sent.set()
            release.wait(30)  # the rest never comes

        future = self.stub.ImportTable.future(chunks(), timeout=60)
        try:
            self.assertTrue(sent.wait(20), "the upload's chunks were not taken")
            time.sleep(0.5)
            # Mid-upload the file may exist; it must be inside the data dir.
            mid = h.leftover_uploads(self.data_dir, self.before)
            future.cancel()
        finally:
            release.set()
        try:
            future.result(timeout=10)
            self.fail("a cancelled upload answered OK")
        except h.grpc.FutureCancelledError:
            pass
        except h.grpc.RpcError as e:
            self.assertEqual(e.code(), h.grpc.StatusCode.CANCELLED, e.details())
        return mid

    def test_cancelled_partial_npy_upload_leaves_nothing(self):
        w = np.random.default_rng(1).standard_normal((50_000, 64), dtype=np.float32)
        buf = io.BytesIO()
        np.save(buf, w)
        data = buf.getvalue()
        req = h.pb.LoadTableRequest(name="partial_npy", path="w.npy", format=h.pb.NPY)
        mid = self.cancel_after(req, data[: len(data) // 2])
        print("during the upload:", mid)
        self.assert_nothing_left("partial_npy", "a cancelled .npy upload")

    def test_cancelled_upload_of_whole_rows_stores_nothing(self):
        # What arrived before the cancel is a valid raw file (1000 rows of 4
        # floats): loading it anyway would store a table nobody asked for.
        data = np.arange(4000, dtype="<f4").tobytes()
        req = h.pb.LoadTableRequest(name="partial_raw", path="w.raw", format=h.pb.RAW_F32,
                                    raw_dim=4)
        self.cancel_after(req, data)
        self.assert_nothing_left("partial_raw", "a cancelled raw upload")

    def test_garbage_header_is_refused_promptly(self):
        data = b"999999999999 999999999999\n" + b"word " + b"\0" * 4096
        req = h.pb.LoadTableRequest(name="garbage", path="huge.bin",
                                    format=h.pb.WORD2VEC_BINARY)

        def chunks():
            yield h.pb.ImportChunk(request=req)
            yield h.pb.ImportChunk(data=data)

        t = time.monotonic()
        try:
            self.stub.ImportTable(chunks(), timeout=2 * PROMPT_S)
            self.fail("a word2vec header of 999999999999 x 999999999999 was accepted")
        except h.grpc.RpcError as e:
            took = time.monotonic() - t
            print("garbage header: %s: %s (%.2f s)" % (e.code().name, e.details(), took))
            self.assert_alive(self.server, "on a garbage word2vec header (answer %s: %s)"
                              % (e.code().name, e.details()), grace=h.grace_for(e))
            self.assertIn(e.code().name, ("INVALID_ARGUMENT", "DATA_LOSS", "RESOURCE_EXHAUSTED"),
                          e.details())
            self.assertLess(took, PROMPT_S, "the refusal took %.1f s" % took)
        self.assert_nothing_left("garbage", "a garbage upload")


if __name__ == "__main__":
    h.main(__doc__)
