"""Crash test of a dynamic table (issue 15): a real durable server (update
log on, the default) is killed with SIGKILL at random moments while a
trainer streams exactly-once pushes (trainer name, sequence numbers) into a
dynamic table whose rows are admitted (admit_after 2), evicted (max_rows)
and expired (ttl_steps) all the time; then restarted on the same data
directory, 20 times. After each restart the trainer resends from its first
unacknowledged push: those the table had applied are answered duplicate,
none is applied twice, none acknowledged is lost. At the end, the rows of
every id, the optimizer state, the step and the rows stored must equal
those of a memory-only server that never stopped, fed the same pushes once:
restored LRU order, last steps and admission counts decide which rows the
later pushes keep, so any of them restored wrong shows in the rows.

With --server-flag the server runs with extra flags, e.g. tiny
--snapshot_log_bytes and --log_segment_bytes, so that restarts restore from
snapshots of the dynamic table (and kills land during them).

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/storage/dynamic_crash_test.py --server build/server/embedserve \
        [--server-flag=--snapshot_log_bytes=20000 ...]
"""

import argparse
import random
import sys
import tempfile
import threading

import grpc
import numpy as np

from dynamic_testing import create_dynamic, push_request, sparse_ids

DIM, ROUNDS, POOL, PER_PUSH = 8, 20, 600, 48
TABLE, TRAINER = "dyncrash", "trainer-1"
IDS = sparse_ids(np.random.default_rng(77), POOL, extra=(0, -(1 << 63), (1 << 63) - 1))
PAD = int(IDS[7])
SPEC = dict(seed=13, optimizer="sparse_adam", optimizer_args={"lr": 0.01},
            padding_idx=PAD, max_rows=250, ttl_steps=8, admit_after=2)
# Hot and cold ids: some come back within the TTL and stay, most do not.
WEIGHTS = 1.0 / np.sqrt(np.arange(1, POOL + 1))
WEIGHTS /= WEIGHTS.sum()


def push_of(k):
    """Push number k (k >= 1), the same every time it is made."""
    rng = np.random.default_rng(k)
    ids = rng.choice(IDS, size=PER_PUSH, p=WEIGHTS)
    grads = rng.normal(size=(PER_PUSH, DIM)).astype(np.float32)
    return ids, grads


def stream_until_killed(client, server, first, kill_after):
    """Streams pushes first, first+1, ... as the trainer until the server
    dies; returns (acknowledged and new, acknowledged duplicates, sent), the
    duplicates being the first answers only."""
    killer = threading.Timer(kill_after, server.kill_process)
    killer.start()
    fresh = duplicates = 0
    sent = [0]

    def requests():
        k = first
        while True:
            ids, grads = push_of(k)
            sent[0] += 1
            yield push_request(TABLE, ids, grads, sequence=k, trainer=TRAINER)
            k += 1

    try:
        for answer in client._stub.StreamGradients(requests()):
            if answer.code != 0:
                raise AssertionError("push %d failed: %s" % (answer.sequence, answer.error))
            if answer.duplicate:
                if fresh:
                    raise AssertionError("push %d answered duplicate after a new one"
                                         % answer.sequence)
                duplicates += 1
            else:
                fresh += 1
    except grpc.RpcError:
        pass  # the kill
    killer.join()
    return fresh, duplicates, sent[0]


def table_state(client):
    rows = client.lookup(TABLE, IDS)
    state, step = client.optimizer_state(TABLE, IDS)
    info = client.describe_table(TABLE)
    return rows, state, step, info


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--server-flag", action="append", default=[],
                   help="an extra server flag (repeatable)")
    a = p.parse_args()
    from embedserve_client import EmbeddingClient
    from embedserve_testing import ServerProcess

    rng = random.Random(4321)
    data = tempfile.TemporaryDirectory(prefix="embedserve-dyncrash-")
    acked = sent = 0  # pushes 1..acked acknowledged (new or duplicate); 1..sent sent
    failures = 0
    for round_ in range(ROUNDS + 1):
        server = ServerProcess(a.server, *a.server_flag, data_dir=data.name)
        try:  # never leave a server behind, also when a check raises
            client = EmbeddingClient(server.address)
            client.wait_for_ready()
            if round_ == 0:
                create_dynamic(client, TABLE, DIM, **SPEC)
            # Every push adds one version (each has non-padding ids).
            applied = client.describe_table(TABLE).version
            ok = acked <= applied <= sent
            print("round %2d: pushes 1..%d acknowledged, 1..%d sent; %d applied after restart%s"
                  % (round_, acked, sent, applied, "" if ok else "  <-- WRONG"), flush=True)
            failures += not ok
            if round_ == ROUNDS:
                got = table_state(client)
            else:
                # Resend from the first unacknowledged push: the ones applied
                # before the kill come back duplicate, and only those.
                fresh, duplicates, n = stream_until_killed(client, server, acked + 1,
                                                           rng.uniform(0.05, 0.4))
                if fresh and duplicates != applied - acked:
                    print("round %2d: %d duplicates answered, expected %d  <-- WRONG"
                          % (round_, duplicates, applied - acked), flush=True)
                    failures += 1
                sent = max(sent, acked + n)
                acked += duplicates + fresh
            client.close()
        finally:
            server.stop()
    rows, state, step, info = got
    # The uninterrupted run: a memory-only server fed pushes 1..applied once.
    with ServerProcess(a.server, data_dir="") as ref_server:
        ref = EmbeddingClient(ref_server.address)
        ref.wait_for_ready()
        create_dynamic(ref, TABLE, DIM, **SPEC)
        pushes = (push_request(TABLE, *push_of(k), sequence=k, trainer=TRAINER)
                  for k in range(1, applied + 1))
        for answer in ref._stub.StreamGradients(pushes):
            assert answer.code == 0 and not answer.duplicate, answer
        want_rows, want_state, want_step, want_info = table_state(ref)
        ref.close()
    same_rows = np.array_equal(rows, want_rows)
    same_state = all(np.array_equal(state[k], want_state[k]) for k in want_state)
    print("after %d kills: %d pushes applied, %d rows stored (%d in the uninterrupted run), "
          "%d rows evicted, %d expired, %d pushed ids not admitted there; rows %s, "
          "optimizer state %s, step %d vs %d"
          % (ROUNDS, applied, info.num_rows, want_info.num_rows,
             want_info.dynamic.rows_evicted, want_info.dynamic.rows_expired,
             want_info.dynamic.pushes_not_admitted,
             "equal" if same_rows else "DIFFER",
             "equal" if same_state else "DIFFERS", step, want_step))
    if not same_rows:
        differ = np.nonzero(np.any(rows != want_rows, axis=1))[0]
        print("  ids whose rows differ: %s" % IDS[differ][:10].tolist())
    same = (same_rows and same_state and step == want_step == applied and
            info.num_rows == want_info.num_rows)
    failures += not same
    if applied < ROUNDS or want_info.dynamic.rows_evicted == 0 or \
            want_info.dynamic.rows_expired == 0 or want_info.dynamic.pushes_not_admitted == 0:
        print("too few pushes, evictions, expiries or refused admissions to test anything")
        failures += 1
    print("%d passed, %d failed" % (ROUNDS + 2 - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
