"""Crash test: a real server process is killed with SIGKILL at random moments
while a trainer streams pushes, then restarted on the same data directory,
20 times. No acknowledged push may be lost, none applied twice, and at the
end rows and optimizer state must equal those of an uninterrupted server fed
exactly the pushes that were applied. Bounded: 20 rounds of at most ~0.4 s of
pushing each.

With --server-flag the server runs with extra flags, e.g. tiny
--snapshot_log_bytes and --log_segment_bytes, so that kills also land during
snapshots and log truncation; --create=init makes the table from its
initializer (one update log record) instead of from given weights.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/storage/crash_test.py --server build/server/embedserve [--durability async|sync] \
        [--server-flag=--snapshot_log_bytes=65536 ...] [--create weights|init]
"""

import argparse
import random
import re
import sys
import tempfile
import threading
import time

import grpc
import numpy as np

ROWS, DIM, ROUNDS = 300, 8, 20


def push_of(k):
    """The k-th push, the same every time it is made."""
    rng = np.random.default_rng(k)
    ids = rng.integers(0, ROWS, 64)
    grads = rng.normal(size=(64, DIM)).astype(np.float32)
    return ids, grads


def stream_until_killed(client, server, first, kill_after):
    """Streams pushes first, first+1, ... until the server dies; returns how
    many were acknowledged and how many were handed to gRPC (sent)."""
    killer = threading.Timer(kill_after, server.kill_process)
    killer.start()
    acked = 0
    sent = [0]

    def requests():
        k = first
        while True:
            ids, grads = push_of(k)
            sent[0] += 1
            yield ("crash", ids, grads)
            k += 1

    try:
        for answer in client.push_stream(requests()):
            if answer.code != 0:
                raise AssertionError("push %d failed: %s" % (answer.sequence, answer.error))
            acked += 1
    except grpc.RpcError:
        pass  # the kill
    killer.join()
    return acked, sent[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--durability", default="async")
    p.add_argument("--server-flag", action="append", default=[],
                   help="an extra server flag (repeatable)")
    p.add_argument("--create", choices=("weights", "init"), default="weights")
    a = p.parse_args()
    from embedserve_client import EmbeddingClient
    from embedserve_testing import ServerProcess

    rng = random.Random(1234)
    w0 = np.random.default_rng(0).normal(size=(ROWS, DIM)).astype(np.float32)
    data = tempfile.TemporaryDirectory(prefix="embedserve-crash-")
    acked_total = sent_total = applied = 0
    failures = 0
    for round_ in range(ROUNDS + 1):
        server = ServerProcess(a.server, "--durability=" + a.durability, *a.server_flag,
                          data_dir=data.name)
        try:  # never leave a server behind, also when a check raises
            client = EmbeddingClient(server.address)
            client.wait_for_ready()
            if round_ == 0:
                if a.create == "init":
                    client.create_table("crash", ROWS, DIM, optimizer="sparse_adam",
                                        optimizer_args={"lr": 0.01}, seed=5)
                    first = client.lookup("crash", np.arange(ROWS))
                else:
                    client.create_table("crash", weights=w0, optimizer="sparse_adam",
                                        optimizer_args={"lr": 0.01})
                    first = w0
            version = client.describe_table("crash").version
            if round_ > 0:
                # The start-up log says what the restart read and replayed.
                loaded = re.search(r"loaded (\d+) table\(s\): snapshots read in \S+, "
                                   r"(\d+) update log record\(s\) replayed in \S+",
                                   server.log())
                if loaded is None or loaded.group(1) != "1":
                    print("round %2d: no start-up line for 1 table:\n%s" % (round_, server.log()))
                    failures += 1
            # Every acknowledged push survived; of the unanswered ones in
            # flight at the kill, some may have been applied too, never more
            # than were sent.
            ok = acked_total <= version <= sent_total
            print("round %2d: %d pushes acknowledged, %d sent so far; %d applied after restart%s"
                  % (round_, acked_total, sent_total, version, "" if ok else "  <-- WRONG"),
                  flush=True)
            failures += not ok
            # Resume after the last applied push: none is applied twice.
            applied = acked_total = sent_total = version
            if round_ == ROUNDS:
                rows = client.lookup("crash", np.arange(ROWS))
                state, step = client.optimizer_state("crash", np.arange(ROWS))
            else:
                acked, sent = stream_until_killed(client, server, applied,
                                                  rng.uniform(0.05, 0.4))
                acked_total += acked
                sent_total += sent
            client.close()
        finally:
            server.stop()
    # The uninterrupted run: a memory-only server fed pushes 0 .. applied-1.
    with ServerProcess(a.server, data_dir="") as ref_server:
        ref = EmbeddingClient(ref_server.address)
        ref.wait_for_ready()
        ref.create_table("crash", weights=first, optimizer="sparse_adam",
                         optimizer_args={"lr": 0.01})
        for answer in ref.push_stream(("crash",) + push_of(k) for k in range(applied)):
            assert answer.code == 0
        want_rows = ref.lookup("crash", np.arange(ROWS))
        want_state, want_step = ref.optimizer_state("crash", np.arange(ROWS))
        ref.close()
    same = (np.array_equal(rows, want_rows) and step == want_step == applied and
            all(np.array_equal(state[k], want_state[k]) for k in want_state))
    print("after %d kills: %d pushes applied; rows and optimizer state %s the uninterrupted run's"
          % (ROUNDS, applied, "equal" if same else "DIFFER FROM"))
    failures += not same
    if applied < ROUNDS:
        print("too few pushes were made to test anything")
        failures += 1
    print("%d passed, %d failed" % (ROUNDS + 2 - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
