"""The Python client, embedctl and embedbench against a secured embedserve.

A real embedserve process on 127.0.0.1 with --tls_cert/--tls_key (TLS),
--tls_client_ca (clients must present a certificate that CA signed) and
--tokens_file (reader, trainer and admin tokens). Certificates are made here
with the openssl CLI: a CA, a server certificate for 127.0.0.1 and localhost,
a client certificate from that CA, and a second CA with a client certificate
of its own.

    PYTHONPATH=BUILD/python:tests/testing secure_client_test.py --server EMBEDSERVE \
        --embedctl EMBEDCTL --embedbench EMBEDBENCH
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ARGS = None
TOKENS = {"reader": "r" * 40, "trainer": "t" * 40, "admin": "a" * 40}
NAMES = {"reader": "dashboard", "trainer": "nightly-job", "admin": "ops"}
UNKNOWN_TOKEN = "0123456789abcdef0123456789abcdef"
WEIGHTS = np.arange(12, dtype=np.float32).reshape(6, 2)


def openssl(directory, *args):
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def make_ca(directory, name):
    openssl(directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=" + name)


def make_cert(directory, name, ca, extensions):
    with open(os.path.join(directory, name + ".ext"), "w") as f:
        f.write(extensions)
    openssl(directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
    openssl(directory, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey",
            ca + ".key", "-CAcreateserial", "-days", "2", "-out", name + ".pem",
            "-extfile", name + ".ext")


class SecureClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        from embedserve_client import EmbeddingClient
        from embedserve_testing import ServerProcess
        cls.dir = tempfile.mkdtemp(prefix="embedserve-secure-")
        d = cls.dir
        make_ca(d, "ca")
        make_ca(d, "other_ca")
        make_cert(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                     "extendedKeyUsage=serverAuth\n")
        make_cert(d, "client", "ca", "extendedKeyUsage=clientAuth\n")
        make_cert(d, "other_client", "other_ca", "extendedKeyUsage=clientAuth\n")
        with open(cls.path("tokens"), "w") as f:
            f.write("# role token name\n")
            for role, token in TOKENS.items():
                f.write("%s %s %s\n" % (role, token, NAMES[role]))
        for role, token in TOKENS.items():
            with open(cls.path(role + ".token"), "w") as f:
                f.write("# %s token\n%s\n" % (role, token))
        cls.server = ServerProcess(
            ARGS.server, "--tls_cert=" + cls.path("server.pem"),
            "--tls_key=" + cls.path("server.key"), "--tls_client_ca=" + cls.path("ca.pem"),
            "--tokens_file=" + cls.path("tokens"))
        try:
            cls.admin = EmbeddingClient(cls.server.address, **cls.credentials("admin"))
            cls.admin.wait_for_ready()
            cls.admin.create_table("t", weights=WEIGHTS)
            cls.admin.create_table("trained", 6, 2, init="zeros", optimizer="sgd",
                                   optimizer_args={"lr": 1.0})
        except Exception:
            cls.server.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.server.stop()
        shutil.rmtree(cls.dir)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    @classmethod
    def credentials(cls, role, **overrides):
        """EmbeddingClient arguments of a well-behaved client with `role`."""
        args = dict(token=TOKENS.get(role), root_certificates=cls.path("ca.pem"),
                    certificate_chain=cls.path("client.pem"),
                    private_key=cls.path("client.key"), timeout=10.0)
        args.update(overrides)
        return args

    def client(self, role, **overrides):
        from embedserve_client import EmbeddingClient
        c = EmbeddingClient(self.server.address, **self.credentials(role, **overrides))
        self.addCleanup(c.close)
        return c

    def assertCode(self, code, call, *args, **kwargs):
        import grpc
        with self.assertRaises(grpc.RpcError) as cm:
            result = call(*args, **kwargs)
            if hasattr(result, "__next__"):
                list(result)  # a stream fails when read
        self.assertEqual(cm.exception.code(), getattr(grpc.StatusCode, code),
                         cm.exception.details())
        for token in list(TOKENS.values()) + [UNKNOWN_TOKEN]:
            self.assertNotIn(token, cm.exception.details() or "")
        return cm.exception.details()

    # --- Python client -----------------------------------------------------

    def test_lookup_with_token_and_certificates(self):
        np.testing.assert_array_equal(self.client("reader").lookup("t", [5, 0]),
                                      WEIGHTS[[5, 0]])

    def test_pems_as_bytes_or_text(self):
        pems = {}
        for key, name in (("root_certificates", "ca.pem"), ("certificate_chain", "client.pem"),
                          ("private_key", "client.key")):
            with open(self.path(name), "rb") as f:
                pems[key] = f.read()
        np.testing.assert_array_equal(self.client("reader", **pems).lookup("t", [1]),
                                      WEIGHTS[[1]])
        text = {key: pem.decode() for key, pem in pems.items()}
        np.testing.assert_array_equal(self.client("reader", **text).lookup("t", [2]),
                                      WEIGHTS[[2]])

    def test_without_or_with_an_unknown_token_unauthenticated(self):
        self.assertIn("no token", self.assertCode("UNAUTHENTICATED", self.client(None).lookup,
                                                  "t", [1]))
        self.assertIn("unknown token", self.assertCode(
            "UNAUTHENTICATED", self.client(None, token=UNKNOWN_TOKEN).lookup, "t", [1]))

    def test_roles(self):
        details = self.assertCode("PERMISSION_DENIED", self.client("reader").push, "t", [1],
                                  [[0.1, 0.1]])
        self.assertIn("role 'reader' (dashboard) may not call PushGradients; it needs 'trainer'",
                      details)
        self.assertCode("PERMISSION_DENIED", self.client("trainer").create_table, "x", 2, 2)
        self.client("trainer").push("trained", [1], [[0.5, 0.5]])
        self.assertEqual(self.client("trainer").optimizer_state("trained", [1])[1], 0)

    def test_streams_carry_the_token(self):
        # stream-stream
        answers = list(self.client("trainer").push_stream(
            [("trained", [2], [[1.0, 1.0]]), ("trained", [3], [[1.0, 1.0]])]))
        self.assertEqual([a.code for a in answers], [0, 0])
        self.assertCode("PERMISSION_DENIED", self.client("reader").push_stream,
                        [("trained", [2], [[1.0, 1.0]])])
        # unary-stream and stream-unary
        admin = self.client("admin")
        rows, info = admin.export_table("t")
        np.testing.assert_array_equal(rows, WEIGHTS)
        self.assertCode("PERMISSION_DENIED", self.client("trainer").export_table, "t")
        np.save(self.path("t.npy"), rows)
        admin.import_table("t_copy", self.path("t.npy"))
        np.testing.assert_array_equal(admin.lookup("t_copy", [4]), WEIGHTS[[4]])
        self.assertCode("PERMISSION_DENIED", self.client("reader").import_table, "t_copy2",
                        self.path("t.npy"))

    def test_tls_is_required(self):
        # No client certificate, one from another CA, a server it cannot
        # verify, plaintext: no connection at all, whatever the token.
        self.assertCode("UNAVAILABLE", self.client(
            "admin", certificate_chain=None, private_key=None, timeout=5.0).list_tables)
        self.assertCode("UNAVAILABLE", self.client(
            "admin", certificate_chain=self.path("other_client.pem"),
            private_key=self.path("other_client.key"), timeout=5.0).list_tables)
        self.assertCode("UNAVAILABLE", self.client(
            "admin", root_certificates=self.path("other_ca.pem"), timeout=5.0).list_tables)
        from embedserve_client import EmbeddingClient
        plain = EmbeddingClient(self.server.address, timeout=5.0, token=TOKENS["admin"])
        self.addCleanup(plain.close)
        self.assertCode("UNAVAILABLE", plain.list_tables)

    def test_argument_checks(self):
        from embedserve_client import EmbeddingClient
        from embedserve_client.client import read_token_file
        with self.assertRaisesRegex(ValueError, "both"):
            EmbeddingClient(self.server.address, certificate_chain=self.path("client.pem"))
        with self.assertRaisesRegex(ValueError, "printable"):
            EmbeddingClient(self.server.address, token="two words")
        self.assertEqual(read_token_file(self.path("reader.token")), TOKENS["reader"])

    def test_remote_embedding_passes_credentials(self):
        import torch
        from embedserve_client import RemoteEmbedding
        emb = RemoteEmbedding(self.server.address, "t", **self.credentials("trainer"))
        self.addCleanup(emb.client.close)
        out = emb(torch.tensor([2, 3]))
        np.testing.assert_array_equal(out.detach().numpy(), WEIGHTS[[2, 3]])
        # Synchronous pushes (window=0): backward pushes, and a reader may not.
        reader = RemoteEmbedding(self.server.address, "t", window=0, **self.credentials("reader"))
        self.addCleanup(reader.client.close)
        with self.assertRaises(Exception) as cm:
            reader(torch.tensor([1])).sum().backward()
        self.assertIn("may not call PushGradients", str(cm.exception))
        # Overlapped pushes (the default window): the refusal comes at flush().
        overlapped = RemoteEmbedding(self.server.address, "t", **self.credentials("reader"))
        overlapped(torch.tensor([1])).sum().backward()
        with self.assertRaises(Exception) as cm:
            overlapped.flush()
        self.assertIn("may not call StreamGradients", str(cm.exception))
        overlapped.client.close()  # the error was raised once: close neither raises nor hangs

    # --- embedctl and embedbench -------------------------------------------

    def run_tool(self, binary, *args, role="admin", tls=True, env=None):
        cmd = [binary, "--address=" + self.server.address]
        if role:
            cmd.append("--token_file=" + self.path(role + ".token"))
        if tls:
            cmd += ["--tls_ca=" + self.path("ca.pem"), "--tls_cert=" + self.path("client.pem"),
                    "--tls_key=" + self.path("client.key")]
        environment = {k: v for k, v in os.environ.items() if k != "EMBEDSERVE_TOKEN"}
        environment.update(env or {})
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60,
                              env=environment)

    def embedctl(self, *args, **kwargs):
        return self.run_tool(ARGS.embedctl, "--timeout=5", *args, **kwargs)

    def test_embedctl(self):
        out = self.embedctl("list", role="reader")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"(?m)^t +6 +2 ")
        out = self.embedctl("list", role=None, env={"EMBEDSERVE_TOKEN": TOKENS["reader"]})
        self.assertEqual(out.returncode, 0, out.stderr)
        out = self.embedctl("list", role=None)
        self.assertEqual(out.returncode, 1)
        self.assertIn("UNAUTHENTICATED", out.stderr)
        out = self.embedctl("create", "nope", "--num=2", "--dim=2", role="reader")
        self.assertEqual(out.returncode, 1)
        self.assertIn("PERMISSION_DENIED: role 'reader' (dashboard) may not call CreateTable",
                      out.stderr)
        out = self.embedctl("health", role=None)  # health is open, TLS still needed
        self.assertEqual((out.returncode, out.stdout.strip()), (0, "SERVING"), out.stderr)
        out = self.embedctl("list", tls=False)
        self.assertEqual(out.returncode, 1)
        self.assertIn("UNAVAILABLE", out.stderr)
        out = self.embedctl("list", "--token_file=" + self.path("missing.token"), role=None)
        self.assertEqual(out.returncode, 2)
        # Streams and the calls that used raw stubs carry the token too.
        npy = self.path("ctl.npy")
        for args in (("export", "t", "--out=" + npy), ("import", "t_ctl", "--path=" + npy),
                     ("checkpoint", "create", "cp1"), ("checkpoint", "list")):
            out = self.embedctl(*args)
            self.assertEqual(out.returncode, 0, out.stderr)
        out = self.embedctl("export", "t", "--out=" + npy, role="trainer")
        self.assertIn("PERMISSION_DENIED", out.stderr)
        np.testing.assert_array_equal(np.load(npy), WEIGHTS)  # a refused export left it
        self.assertFalse(os.path.exists(npy + ".part"))

    def test_embedbench(self):
        common = ("--table=bench", "--rows=1000", "--dim=8", "--batch=16", "--duration=0.3",
                  "--warmup=0.1", "--connections=1")
        out = self.run_tool(ARGS.embedbench, "--setup", *common, role="reader")
        self.assertEqual(out.returncode, 1)
        self.assertIn("needs 'admin'", out.stderr)
        out = self.run_tool(ARGS.embedbench, "--setup", *common)
        self.assertEqual(out.returncode, 0, out.stderr)
        out = self.run_tool(ARGS.embedbench, *common, role="reader")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("errors 0", out.stdout)
        out = self.run_tool(ARGS.embedbench, *common, role=None)
        self.assertEqual(out.returncode, 1, out.stdout)


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="path of the embedserve binary")
    parser.add_argument("--embedctl", required=True, help="path of the embedctl binary")
    parser.add_argument("--embedbench", required=True, help="path of the embedbench binary")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
