"""What pyproject.toml cannot declare: the version and the gRPC stubs.

The version is the project's, read from the top-level CMakeLists.txt
(`project(embedserve VERSION x.y.z)`), so the two cannot drift.

build_py copies the package as usual, then runs protoc with grpc_python_plugin
on proto/embedserve.proto and writes embedserve_client/_proto/embedserve_pb2.py
and embedserve_pb2_grpc.py into the build directory, never into the source
tree. The proto is compiled under the virtual path embedserve_client/_proto/
(protoc's --proto_path=VIRTUAL=DIR), so the grpc stub's import of the messages
is `from embedserve_client._proto import embedserve_pb2`: no text is
rewritten. client/python/CMakeLists.txt runs the same command for the build
tree's copy of the package.

The system protoc is used (Debian's protobuf-compiler and
protobuf-compiler-grpc): python3-grpc-tools bundles protoc 3.5, which predates
proto3 `optional`. The environment variables PROTOC and GRPC_PYTHON_PLUGIN
name other binaries.
"""

import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PROTO_DIR = os.path.join(ROOT, "proto")
STUBS_PACKAGE = "embedserve_client/_proto"
STUBS = ("embedserve_pb2.py", "embedserve_pb2_grpc.py")


def project_version():
    path = os.path.join(ROOT, "CMakeLists.txt")
    with open(path) as f:
        m = re.search(r"project\(\s*embedserve\s+VERSION\s+([0-9][0-9.]*)", f.read())
    if not m:
        raise RuntimeError("no `project(embedserve VERSION ...)` in " + path)
    return m.group(1)


def tool(env, name):
    path = os.environ.get(env) or shutil.which(name)
    if not path:
        raise RuntimeError("%s not found: install Debian's %s or set %s" % (
            name, "protobuf-compiler" if name == "protoc" else "protobuf-compiler-grpc", env))
    return path


class BuildPyWithStubs(build_py):
    """build_py, then the stubs generated into the build directory."""

    def run(self):
        super().run()
        if not os.path.isfile(os.path.join(PROTO_DIR, "embedserve.proto")):
            raise RuntimeError("%s/embedserve.proto is missing: build the package from an "
                               "embedserve checkout" % PROTO_DIR)
        subprocess.run(
            [tool("PROTOC", "protoc"),
             "--proto_path=%s=%s" % (STUBS_PACKAGE, PROTO_DIR),
             "--python_out=" + self.build_lib, "--grpc_python_out=" + self.build_lib,
             "--plugin=protoc-gen-grpc_python=" + tool("GRPC_PYTHON_PLUGIN", "grpc_python_plugin"),
             STUBS_PACKAGE + "/embedserve.proto"],
            check=True)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [
            os.path.join(self.build_lib, STUBS_PACKAGE, stub) for stub in STUBS]


setup(version=project_version(), cmdclass={"build_py": BuildPyWithStubs})
