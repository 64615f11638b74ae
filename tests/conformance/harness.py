"""Shared set-up of the conformance tests: parses --server and --stubs, makes
the Python client importable, starts one real server process for the module
and stops it at the end."""

import argparse
import os
import sys
import unittest

import torch

ARGS = None


class Server:
    """The module's server and client (set by start())."""
    process = None
    client = None


def start(*server_args):
    from embedserve_client import EmbeddingClient, ServerProcess
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
    parser.add_argument("--stubs", required=True, help="directory of the generated Python stubs")
    ARGS, rest = parser.parse_known_args()
    os.environ["EMBEDSERVE_PY_STUBS"] = os.path.abspath(ARGS.stubs)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "client", "python"))
    torch.set_num_threads(1)
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, verbosity=2)
