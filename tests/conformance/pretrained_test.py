"""Pretrained files against torch.nn.Embedding.from_pretrained (the oracle):
every format round-trips, freeze and padding_idx behave as in PyTorch,
rows can be looked up by word, bad files fail cleanly naming the file and
byte offset, and a failed reload leaves the old table untouched while a good
one swaps it.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/conformance/pretrained_test.py --server build/server/embedserve
"""

import os
import struct
import tempfile
import unittest

import grpc
import numpy as np
import torch

import harness

CLIENT = None
DIR = None


def setUpModule():
    global CLIENT, DIR
    # LoadTable reads only beneath --load_dir, by paths relative to it.
    DIR = tempfile.TemporaryDirectory(prefix="embedserve-pretrained-")
    CLIENT = harness.start("--load_dir=" + DIR.name)


def tearDownModule():
    harness.stop()
    DIR.cleanup()


def path(name):
    return os.path.join(DIR.name, name)


def rel(p):
    """The path LoadTable is given: relative to the server's --load_dir."""
    return os.path.relpath(p, DIR.name)


def read_bytes(p):
    with open(p, "rb") as f:
        return f.read()


def write_bytes(p, data):
    with open(p, "wb") as f:
        f.write(data)


WORDS = ["king", "queen", "man", "woman", "paris", "the"]
VECS = np.random.default_rng(5).normal(size=(6, 5)).astype(np.float32)


def write_word2vec_text(p):
    with open(p, "w") as f:
        f.write("6 5\n")
        for w, v in zip(WORDS, VECS):
            f.write(w + " " + " ".join(repr(float(x)) for x in v) + "\n")


def write_word2vec_binary(p):
    with open(p, "wb") as f:
        f.write(b"6 5\n")
        for w, v in zip(WORDS, VECS):
            f.write(w.encode() + b" " + v.astype("<f4").tobytes() + b"\n")


def write_glove(p):
    with open(p, "w") as f:
        for w, v in zip(WORDS, VECS):
            f.write(w + " " + " ".join(repr(float(x)) for x in v) + "\n")


class PretrainedFormats(unittest.TestCase):

    def check_like_torch(self, table, weights, padding_idx=None, exact=True):
        ref = torch.nn.Embedding.from_pretrained(torch.from_numpy(weights), padding_idx=padding_idx)
        ids = torch.randint(0, weights.shape[0], (3, 7), generator=torch.Generator().manual_seed(1))
        got = CLIENT.lookup(table, ids.numpy())
        want = ref(ids).detach().numpy()
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6)

    def test_npy_dtypes(self):
        w = np.random.default_rng(0).normal(size=(50, 9))
        for dtype in ("<f4", "<f2", "<f8"):
            p = path("w_%s.npy" % dtype[1:])
            arr = w.astype(dtype)
            np.save(p, arr)
            name = "npy_" + dtype[1:]
            info = CLIENT.load_table(name, rel(p), "npy")
            self.assertEqual((info.num_rows, info.spec.embedding_dim), (50, 9))
            # torch converts the same file's array to float32 the same way.
            self.check_like_torch(name, arr.astype(np.float32))

    def test_raw(self):
        w = np.random.default_rng(1).normal(size=(20, 4)).astype("<f4")
        w.tofile(path("w.f32"))
        CLIENT.load_table("raw", rel(path("w.f32")), "raw_f32", raw_dim=4)
        self.check_like_torch("raw", w)

    def test_word_formats_keep_the_vocabulary(self):
        for fmt, writer in (("word2vec_text", write_word2vec_text),
                            ("word2vec_binary", write_word2vec_binary),
                            ("glove_text", write_glove)):
            p = path("vectors." + fmt)
            writer(p)
            info = CLIENT.load_table("w_" + fmt, rel(p), fmt)
            self.assertTrue(info.has_vocabulary)
            self.check_like_torch("w_" + fmt, VECS, exact=(fmt == "word2vec_binary"))
            got = CLIENT.lookup_words("w_" + fmt, ["queen", "king"])
            np.testing.assert_allclose(got, VECS[[1, 0]], rtol=1e-6)
            with self.assertRaises(grpc.RpcError) as cm:
                CLIENT.lookup_words("w_" + fmt, ["king", "prince", "duke"])
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
            self.assertIn("'prince', 'duke'", cm.exception.details())

    def test_freeze_and_padding_idx_as_from_pretrained(self):
        w = np.random.default_rng(2).normal(size=(10, 3)).astype("<f4")
        np.save(path("f.npy"), w)
        CLIENT.load_table("frozen", rel(path("f.npy")), freeze=True, padding_idx=-1)
        info = CLIENT.describe_table("frozen")
        self.assertTrue(info.spec.frozen)
        self.assertEqual(info.spec.padding_idx, 9)
        # from_pretrained keeps the padding row's values.
        self.check_like_torch("frozen", w, padding_idx=9)
        with self.assertRaises(grpc.RpcError) as cm:
            CLIENT.push("frozen", [1], np.ones((1, 3), np.float32))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)

    def test_survives_a_restart(self):
        from embedserve_client import EmbeddingClient
        from embedserve_testing import ServerProcess
        write_word2vec_binary(path("r.bin"))
        with tempfile.TemporaryDirectory() as data:
            with ServerProcess(harness.ARGS.server, "--load_dir=" + DIR.name, data_dir=data) as s:
                c = EmbeddingClient(s.address)
                c.load_table("wv", rel(path("r.bin")), "word2vec_binary")
                c.close()
            with ServerProcess(harness.ARGS.server, "--load_dir=" + DIR.name, data_dir=data) as s:
                c = EmbeddingClient(s.address)
                np.testing.assert_array_equal(c.lookup_words("wv", ["paris"]), VECS[[4]])
                c.close()


class UploadExportCheckpoints(unittest.TestCase):

    def test_import_upload_round_trips_through_export(self):
        w = np.random.default_rng(3).normal(size=(1000, 7)).astype("<f2")
        np.save(path("up.npy"), w)
        info = CLIENT.import_table("uploaded", path("up.npy"), "npy", chunk_bytes=999,
                                   padding_idx=3)
        self.assertEqual(info.num_rows, 1000)
        self.check = torch.nn.Embedding.from_pretrained(torch.from_numpy(w.astype(np.float32)),
                                                       padding_idx=3)
        got, info = CLIENT.export_table("uploaded")
        np.testing.assert_array_equal(got, self.check.weight.detach().numpy())
        self.assertEqual(info.spec.padding_idx, 3)
        write_bytes(path("broken.npy"), read_bytes(path("up.npy"))[:-5])
        with self.assertRaises(grpc.RpcError) as cm:
            CLIENT.import_table("broken", path("broken.npy"), "npy")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DATA_LOSS)
        self.assertIn("broken.npy", cm.exception.details())

    def test_checkpoint_restores_tables_as_they_were(self):
        w = np.zeros((8, 2), np.float32)
        CLIENT.create_table("ck", weights=w, optimizer="adagrad", optimizer_args={"lr": 1.0})
        CLIENT.push("ck", [1, 2], np.ones((2, 2), np.float32))
        before, info_before = CLIENT.export_table("ck")
        state_before, step_before = CLIENT.optimizer_state("ck", np.arange(8))
        cp = CLIENT.create_checkpoint("before-more-training")
        self.assertIn("ck", cp.tables)
        for _ in range(3):
            CLIENT.push("ck", [1, 5], np.ones((2, 2), np.float32))
        CLIENT.assign_rows("ck", [0], np.full((1, 2), 9, np.float32))
        self.assertFalse(np.array_equal(CLIENT.export_table("ck")[0], before))
        self.assertIn("before-more-training", [c.name for c in CLIENT.list_checkpoints()])
        restored = CLIENT.restore_checkpoint("before-more-training", ["ck"])
        self.assertEqual([t.spec.name for t in restored], ["ck"])
        after, info_after = CLIENT.export_table("ck")
        np.testing.assert_array_equal(after, before)
        self.assertEqual(info_after.version, info_before.version)
        state_after, step_after = CLIENT.optimizer_state("ck", np.arange(8))
        np.testing.assert_array_equal(state_after["sum"], state_before["sum"])
        self.assertEqual(step_after, step_before)
        with self.assertRaises(grpc.RpcError) as cm:
            CLIENT.restore_checkpoint("no-such-checkpoint")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as cm:
            CLIENT.create_checkpoint("before-more-training")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ALREADY_EXISTS)


class BadFiles(unittest.TestCase):

    def expect_error(self, p, fmt, codes, text, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            CLIENT.load_table("bad", rel(p), fmt, **kw)
        self.assertIn(cm.exception.code(), codes)
        self.assertIn(rel(p), cm.exception.details())
        self.assertIn(text, cm.exception.details())

    def test_corrupt_truncated_and_wrong_files(self):
        bad = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.DATA_LOSS)
        w = np.ones((10, 4), np.float32)
        np.save(path("ok.npy"), w)
        data = read_bytes(path("ok.npy"))
        write_bytes(path("trunc.npy"), data[:-7])
        self.expect_error(path("trunc.npy"), "npy", bad, "byte offset")
        write_bytes(path("magic.npy"), b"NOTNUMPY" + data[8:])
        self.expect_error(path("magic.npy"), "npy", bad, "byte offset 0")
        np.save(path("int.npy"), np.ones((3, 3), np.int32))
        self.expect_error(path("int.npy"), "npy", bad, "dtype int32")
        np.save(path("fortran.npy"), np.asfortranarray(np.ones((3, 4), np.float32)))
        self.expect_error(path("fortran.npy"), "npy", bad, "Fortran")
        np.save(path("nan.npy"), np.array([[1, np.nan], [2, 3]], np.float32))
        self.expect_error(path("nan.npy"), "npy", bad, "row 0, column 1")
        write_bytes(path("short.f32"), b"\0" * 10)
        self.expect_error(path("short.f32"), "raw_f32", bad, "byte offset 8", raw_dim=2)
        with open(path("bad.txt"), "w") as f:
            f.write("2 3\nking 1 2 3\nqueen 1 x 3\n")
        self.expect_error(path("bad.txt"), "word2vec_text", bad, "line 3")
        with open(path("short.bin"), "wb") as f:
            f.write(b"3 2\nking " + np.ones(2, "<f4").tobytes() + b"\nqueen " + b"\0\0")
        self.expect_error(path("short.bin"), "word2vec_binary", bad, "truncated")
        self.expect_error(path("nope.npy"), "npy", (grpc.StatusCode.NOT_FOUND,), "cannot open")

    def test_failed_reload_keeps_the_old_table_and_a_good_one_swaps(self):
        w1 = np.full((4, 2), 1.0, np.float32)
        w2 = np.full((6, 2), 2.0, np.float32)
        np.save(path("v1.npy"), w1)
        np.save(path("v2.npy"), w2)
        CLIENT.load_table("swap", rel(path("v1.npy")))
        with self.assertRaises(grpc.RpcError) as cm:
            CLIENT.load_table("swap", rel(path("v2.npy")))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        write_bytes(path("v3.npy"), read_bytes(path("v2.npy"))[:-3])
        with self.assertRaises(grpc.RpcError):
            CLIENT.load_table("swap", rel(path("v3.npy")), replace=True)
        np.testing.assert_array_equal(CLIENT.lookup("swap", np.arange(4)), w1)
        info = CLIENT.load_table("swap", rel(path("v2.npy")), replace=True)
        self.assertEqual(info.num_rows, 6)
        np.testing.assert_array_equal(CLIENT.lookup("swap", np.arange(6)), w2)



class Confinement(unittest.TestCase):
    """LoadTable reads only beneath --load_dir: every way out is refused
    before anything is read, and the message does not echo the file."""

    def test_paths_that_leave_the_load_dir_are_refused(self):
        outside = tempfile.TemporaryDirectory(prefix="embedserve-outside-")
        self.addCleanup(outside.cleanup)
        secret = os.path.join(outside.name, "secret.npy")
        np.save(secret, np.full((2, 3), 7, np.float32))
        os.makedirs(path("sub"), exist_ok=True)
        os.symlink(secret, path("link.npy"))               # a symlink to a file outside
        os.symlink(outside.name, path("linked_dir"))       # a symlinked folder
        os.symlink(path("sub"), path("inside_link"))       # even one that stays inside
        np.save(path("sub/ok.npy"), np.ones((2, 3), np.float32))
        for bad in [secret,                                 # absolute
                    os.path.relpath(secret, DIR.name),      # ../ out of it
                    "sub/../../" + os.path.basename(outside.name) + "/secret.npy",
                    "link.npy", "linked_dir/secret.npy", "inside_link/ok.npy"]:
            with self.subTest(path=bad):
                with self.assertRaises(grpc.RpcError) as cm:
                    CLIENT.load_table("escaped", bad)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED,
                                 cm.exception.details())
                self.assertNotIn("escaped", [t.spec.name for t in CLIENT.list_tables()])
        # A plain relative path beneath it loads.
        np.testing.assert_array_equal(
            CLIENT.lookup(CLIENT.load_table("confined_ok", "sub/ok.npy").spec.name, [0, 1]),
            np.ones((2, 3), np.float32))

    def test_load_table_is_off_without_a_load_dir(self):
        from embedserve_client import EmbeddingClient
        from embedserve_testing import ServerProcess
        with ServerProcess(harness.ARGS.server, data_dir="") as s:
            c = EmbeddingClient(s.address)
            np.save(path("off.npy"), np.ones((2, 2), np.float32))
            with self.assertRaises(grpc.RpcError) as cm:
                c.load_table("off", path("off.npy"))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
            self.assertIn("--load_dir", cm.exception.details())
            c.close()

if __name__ == "__main__":
    harness.main(__doc__)
