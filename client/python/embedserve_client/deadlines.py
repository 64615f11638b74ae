"""Deadlines of admin calls that fit their size (client/admin_deadline.h in C++).

A call that writes or reads a whole table (create, load, import, checkpoint)
takes time in proportion to its bytes: a durable create of 20 M x 64 with
Adagrad (10 GB with its state) runs for minutes on a small machine, far past a
30 s per-call deadline. Such a call gets the client's per-call timeout plus
the time its bytes take at ADMIN_BYTES_PER_SECOND, a rate below what a server
on 2 shared cores does (so the deadline only cuts off a call that is stuck).
"""

ADMIN_BYTES_PER_SECOND = 50e6

# Optimizer state per element of a row, in float32 slots (core/optimizer.cc's
# ElementStateSlots); rowwise_adagrad keeps one float per row besides.
_STATE_SLOTS = {"sgd": 0, "adagrad": 1, "rowwise_adagrad": 0, "sparse_adam": 2}

# The deadline of a load from a file on the server, whose size the client
# cannot know: the per-call timeout plus this (30 GB at the rate above).
LOAD_EXTRA_SECONDS = 600.0


def admin_timeout(nbytes, base):
    """Seconds for an admin call that moves `nbytes`: base + nbytes at
    ADMIN_BYTES_PER_SECOND. base None (no deadline) stays None."""
    if base is None:
        return None
    return float(base) + max(0, int(nbytes)) / ADMIN_BYTES_PER_SECOND


def table_bytes(num_embeddings, embedding_dim, optimizer="sgd"):
    """The bytes a table holds, as float32 rows plus its optimizer state (an
    upper bound for the narrower row types)."""
    rows, dim = int(num_embeddings), int(embedding_dim)
    per_row = 4 * dim * (1 + _STATE_SLOTS.get(optimizer.lower(), 2))
    if optimizer.lower() == "rowwise_adagrad":
        per_row += 4
    return rows * per_row
