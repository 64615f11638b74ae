"""The Python client installs as a package and works from the install alone.

pip (Debian's python3-pip, with python3-setuptools and python3-wheel, no
index, no build isolation, no dependencies) builds client/python and installs
it with --target into a temporary directory. The build runs on a copy of the
three things the package is made from (client/python, proto/embedserve.proto,
the top-level CMakeLists.txt for the version), laid out as in the checkout:
pip builds in the source directory, and ctest runs of several build
directories would otherwise race in client/python/build/.

Then a fresh /usr/bin/python3, in an empty working directory with PYTHONPATH
set to the install directory only (no user site), imports embedserve_client,
checks that it and its generated stubs come from the install, and looks rows
up from a real server (127.0.0.1, port 0, --port_file; stopped by pid): with
EmbeddingClient, and with RemoteEmbedding (the torch extra).

    PYTHONPATH=tests/testing python_package_test.py --source . \\
        --server build/server/embedserve --protoc /usr/bin/protoc \\
        --grpc_python_plugin /usr/bin/grpc_python_plugin --version 0.5.0
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from embedserve_testing import ServerProcess

ARGS = None

# Run by the fresh interpreter: argv[1] is the install directory, argv[2] the
# server's address. Prints one JSON object.
CHILD = r"""
import importlib.metadata, json, os, sys
import numpy as np
import embedserve_client
from embedserve_client import EmbeddingClient, RemoteEmbedding
from embedserve_client._proto import embedserve_pb2, embedserve_pb2_grpc
import torch

site, address = sys.argv[1], sys.argv[2]
w = np.arange(40, dtype=np.float32).reshape(10, 4) / 8
ids = np.array([[7, 0], [3, 3]])
with EmbeddingClient(address) as client:
    client.wait_for_ready()
    info = client.create_table("installed", weights=w)
    rows = client.lookup("installed", ids)
    remote = RemoteEmbedding(client, "installed")(torch.from_numpy(ids)).detach().numpy()
print(json.dumps({
    "files": [m.__file__ for m in (embedserve_client, embedserve_pb2, embedserve_pb2_grpc)],
    "site": site,
    "sys_path": sys.path,
    "version": importlib.metadata.version("embedserve-client"),
    "table": [info.spec.name, info.spec.num_embeddings, info.spec.embedding_dim],
    "rows_equal": bool(np.array_equal(rows, w[ids])),
    "remote_equal": bool(np.array_equal(remote, w[ids])),
    "shape": list(rows.shape),
}))
"""


def copy_sources(source, dest):
    """client/python, proto/embedserve.proto and CMakeLists.txt of `source`,
    at the same relative paths under `dest`; nothing a build left behind."""
    shutil.copytree(os.path.join(source, "client", "python"),
                    os.path.join(dest, "client", "python"),
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    os.mkdir(os.path.join(dest, "proto"))
    shutil.copy(os.path.join(source, "proto", "embedserve.proto"), os.path.join(dest, "proto"))
    shutil.copy(os.path.join(source, "CMakeLists.txt"), dest)


class PythonPackageInstallTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="embedserve-pip-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def pip_install(self, src, site):
        env = dict(os.environ, PROTOC=ARGS.protoc, GRPC_PYTHON_PLUGIN=ARGS.grpc_python_plugin,
                   PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
        env.pop("PYTHONPATH", None)
        out = subprocess.run(
            ["/usr/bin/python3", "-m", "pip", "install", "--no-deps", "--no-build-isolation",
             "--no-index", "--no-cache-dir", "--disable-pip-version-check",
             "--root-user-action=ignore", "--target", site, src],
            env=env, cwd=self.dir, capture_output=True, text=True, timeout=240)
        self.assertEqual(out.returncode, 0, "pip install failed:\n" + out.stdout + out.stderr)

    def test_installed_package_imports_and_looks_up(self):
        src_root = os.path.join(self.dir, "src")
        copy_sources(ARGS.source, src_root)
        src = os.path.join(src_root, "client", "python")
        site = os.path.join(self.dir, "site")
        self.pip_install(src, site)

        # The wheel holds the package, its stubs and their RECORD; the stubs
        # are generated into the build, never into the sources.
        installed = sorted(os.path.relpath(os.path.join(d, f), site)
                           for d, _, files in os.walk(site) for f in files
                           if f.endswith(".py") and "__pycache__" not in d)
        # Every module of the source package, plus the generated stubs.
        package = os.path.join(ARGS.source, "client", "python", "embedserve_client")
        modules = ["embedserve_client/" + f for f in os.listdir(package) if f.endswith(".py")]
        self.assertIn("embedserve_client/client.py", modules)
        self.assertEqual(installed, sorted(modules + [
            "embedserve_client/_proto/__init__.py",
            "embedserve_client/_proto/embedserve_pb2.py",
            "embedserve_client/_proto/embedserve_pb2_grpc.py"]))
        dist_info = os.path.join(site, "embedserve_client-%s.dist-info" % ARGS.version)
        with open(os.path.join(dist_info, "RECORD")) as f:
            record = f.read()
        self.assertIn("embedserve_client/_proto/embedserve_pb2_grpc.py,", record)
        with open(os.path.join(dist_info, "METADATA")) as f:
            metadata = f.read()
        for line in ("Name: embedserve-client", "Requires-Dist: grpcio",
                     "Requires-Dist: protobuf (>=3.20)", "Requires-Dist: numpy",
                     "Provides-Extra: torch"):
            self.assertIn(line + "\n", metadata)
        self.assertFalse(os.path.exists(
            os.path.join(src, "embedserve_client", "_proto", "embedserve_pb2.py")))

        empty = os.path.join(self.dir, "cwd")
        os.mkdir(empty)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update(PYTHONPATH=site, PYTHONNOUSERSITE="1")
        with ServerProcess(ARGS.server, data_dir="") as server:
            out = subprocess.run(["/usr/bin/python3", "-s", "-c", CHILD, site, server.address],
                                 env=env, cwd=empty, capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, "the installed client failed:\n" + out.stderr)
        got = json.loads(out.stdout)
        for path in got["files"]:
            self.assertTrue(path.startswith(site + os.sep), "%s imported from outside %s "
                            "(sys.path %s)" % (path, site, got["sys_path"]))
        self.assertNotIn(os.path.join(ARGS.source, "client", "python"), got["sys_path"])
        self.assertEqual(got["version"], ARGS.version)
        self.assertEqual(got["table"], ["installed", 10, 4])
        self.assertEqual(got["shape"], [2, 2, 4])
        self.assertTrue(got["rows_equal"], "EmbeddingClient.lookup disagrees with the weights")
        self.assertTrue(got["remote_equal"], "RemoteEmbedding disagrees with the weights")


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="the embedserve checkout")
    parser.add_argument("--server", required=True, help="path of the embedserve binary")
    parser.add_argument("--protoc", required=True)
    parser.add_argument("--grpc_python_plugin", required=True)
    parser.add_argument("--version", required=True, help="the project's version (CMake)")
    ARGS, rest = parser.parse_known_args()
    ARGS.source = os.path.abspath(ARGS.source)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
