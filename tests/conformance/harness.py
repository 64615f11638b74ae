"""Shared set-up of the conformance tests: parses --server, starts one real
server process for the module and stops it at the end. The client package
and tests/testing come from PYTHONPATH (tests/CMakeLists.txt sets it)."""

import argparse
import sys
import unittest

import torch

ARGS = None


class Server:
    """The module's server and client (set by start())."""
    process = None
    client = None


def start(*server_args):
    from embedserve_client import EmbeddingClient
    from embedserve_testing import ServerProcess
    Server.process = ServerProcess(ARGS.server, *server_args)
    try:
        Server.client = EmbeddingClient(Server.process.address)
        Server.client.wait_for_ready()
    except Exception:
        Server.process.stop()  # never leave a server behind
        raise
    return Server.client


def stop():
    Server.client.close()
    Server.process.stop()


def main(doc):
    """Runs the calling module's unittest tests against a fresh server."""
    global ARGS
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--server", required=True, help="path of the embedserve binary")
    ARGS, rest = parser.parse_known_args()
    torch.set_num_threads(1)
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, verbosity=2)
