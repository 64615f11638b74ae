"""Bad input over the wire: malformed bytes for every method, a garbage
message inside a push stream, requests that ask for huge answers, numbers
that would overflow, and the 0-d index of torch. A real server process, raw
gRPC from Python (identity serializers send the bytes as they are), torch as
the oracle."""

import os
import sys
import time
import unittest

import grpc
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
import harness  # noqa: E402

SERVICE = "/embedserve.v1.EmbeddingService/"
UNARY = ["CreateTable", "DropTable", "ListTables", "DescribeTable", "Lookup", "LookupPooled",
         "AssignRows", "PushGradients", "UpdateTable", "GetOptimizerState", "LoadTable",
         "CreateCheckpoint", "ListCheckpoints", "RestoreCheckpoint"]
# A field 1 of wire type 2 (length-delimited) whose length runs past the end.
GARBAGE = b"\x0a\xff\xff\xff\x0f"


def raw(x):
    return x


class WireRobustnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = harness.start()
        from embedserve_client._proto import embedserve_pb2
        cls.pb = embedserve_pb2
        cls.channel = grpc.insecure_channel(harness.Server.process.address)
        w = torch.arange(24, dtype=torch.float32).reshape(6, 4)
        cls.client.create_table("w", weights=w.numpy())
        cls.w = w

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        harness.stop()

    def unary(self, method, payload, timeout=10):
        call = self.channel.unary_unary(SERVICE + method, request_serializer=raw,
                                        response_deserializer=raw)
        return call(payload, timeout=timeout)

    def test_malformed_request_is_invalid_argument_naming_the_message(self):
        for method in UNARY:
            with self.subTest(method=method):
                with self.assertRaises(grpc.RpcError) as e:
                    self.unary(method, GARBAGE)
                self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn("is not a valid embedserve.v1.", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            list(self.channel.unary_stream(SERVICE + "ExportTable", request_serializer=raw,
                                           response_deserializer=raw)(GARBAGE, timeout=10))
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # The server still serves.
        np.testing.assert_array_equal(self.client.lookup("w", [1]), self.w[[1]].numpy())

    def test_garbage_in_a_push_stream_is_answered_and_the_stream_goes_on(self):
        pb = self.pb
        self.client.create_table("s", weights=np.zeros((4, 2), np.float32))

        def push(seq, row):
            return pb.PushRequest(table="s", ids=[row], grads=np.ones(2, "<f4").tobytes(),
                                  sequence=seq).SerializeToString()

        stream = self.channel.stream_stream(SERVICE + "StreamGradients", request_serializer=raw,
                                            response_deserializer=pb.PushResponse.FromString)
        answers = list(stream(iter([push(1, 0), GARBAGE, push(3, 1), push(4, 2)]), timeout=10))
        self.assertEqual(len(answers), 4)
        self.assertEqual([a.code for a in answers], [0, grpc.StatusCode.INVALID_ARGUMENT.value[0],
                                                     0, 0])
        self.assertIn("message 2 of the stream", answers[1].error)
        self.assertEqual([answers[0].sequence, answers[2].sequence, answers[3].sequence], [1, 3, 4])
        # Every push but the garbage one was applied (SGD, lr 0.01).
        np.testing.assert_allclose(self.client.lookup("s", [0, 1, 2, 3]),
                                   [[-0.01] * 2, [-0.01] * 2, [-0.01] * 2, [0, 0]], rtol=1e-6)

    def test_pooled_request_for_huge_answer_is_refused_before_allocating(self):
        pb = self.pb
        query = pb.PooledQuery(table="w", shape=[500_000_000, 0])
        payload = pb.PooledRequest(queries=[query]).SerializeToString()
        self.assertLess(len(payload), 40)
        started = time.monotonic()
        with self.assertRaises(grpc.RpcError) as e:
            self.unary("LookupPooled", payload)
        self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("500000000 bags", e.exception.details())
        self.assertLess(time.monotonic() - started, 2.0)  # not 22 s of CPU and 4 GiB

    def test_optimizer_state_answer_is_bounded(self):
        self.client.create_table("adam", 1000, 4096, optimizer="sparse_adam")
        with self.assertRaises(grpc.RpcError) as e:
            self.client.optimizer_state("adam", list(range(1000)) * 10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("response limit", e.exception.details())
        self.client.drop_table("adam")

    def test_zero_dim_index_gives_dim_shape_as_torch(self):
        emb = torch.nn.Embedding.from_pretrained(self.w)
        expected = emb(torch.tensor(3))
        got = self.client.lookup("w", np.asarray(3))
        self.assertEqual(got.shape, tuple(expected.shape))
        np.testing.assert_array_equal(got, expected.numpy())
        # A scalar query with two ids is refused.
        pb = self.pb
        bad = pb.LookupRequest(queries=[pb.LookupQuery(table="w", ids=[1, 2], scalar=True)])
        with self.assertRaises(grpc.RpcError) as e:
            self.unary("Lookup", bad.SerializeToString())
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("scalar", e.exception.details())

    def test_overflowing_numbers_are_refused_and_change_nothing(self):
        self.client.create_table("n", weights=np.ones((3, 2), np.float32), optimizer="adagrad")
        before = self.client.lookup("n", [0, 1, 2])
        for grads in ([[3e38, 3e38], [3e38, 3e38]],):
            with self.assertRaises(grpc.RpcError) as e:
                self.client.push("n", [0, 0], np.asarray(grads, np.float32))
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("not finite", e.exception.details())
        np.testing.assert_array_equal(self.client.lookup("n", [0, 1, 2]), before)
        self.assertEqual(self.client.optimizer_state("n", [0])[1], 0)  # no step taken
        with self.assertRaises(grpc.RpcError) as e:
            self.client.update_table("n", lr=1e300)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # torch refuses to fill a float tensor with 1e39; so does the server.
        with self.assertRaises(RuntimeError):
            torch.nn.init.constant_(torch.empty(2, 2), 1e39)
        with self.assertRaises(grpc.RpcError) as e:
            self.client.create_table("c", 2, 2, init="constant", value=1e39)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_sparse_adam_default_lr_is_torchs(self):
        self.client.create_table("sa", 2, 2, optimizer="sparse_adam")
        lr = self.client.describe_table("sa").spec.optimizer.lr
        self.assertAlmostEqual(lr, torch.optim.SparseAdam([torch.zeros(1)]).defaults["lr"])


if __name__ == "__main__":
    harness.main(__doc__)
