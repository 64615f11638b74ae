"""What the dynamic-table tests share (issue 15): a CreateTable request for a
dynamic table built from the generated protos and sent on a client's
low-level stub, so that the tests do not depend on the Python client's
keyword arguments for dynamic tables.
"""

import numpy as np

from embedserve_client._proto import embedserve_pb2 as pb

OPTIMIZER_KINDS = {
    "sgd": pb.OptimizerSpec.SGD,
    "adagrad": pb.OptimizerSpec.ADAGRAD,
    "rowwise_adagrad": pb.OptimizerSpec.ROWWISE_ADAGRAD,
    "sparse_adam": pb.OptimizerSpec.SPARSE_ADAM,
}
INIT_KINDS = {
    "normal": pb.Initializer.NORMAL,
    "uniform": pb.Initializer.UNIFORM,
    "zeros": pb.Initializer.ZEROS,
    "constant": pb.Initializer.CONSTANT,
    "xavier_uniform": pb.Initializer.XAVIER_UNIFORM,
}

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def dynamic_spec(name, dim, *, seed=0, optimizer="sgd", optimizer_args=None,
                 padding_idx=None, max_norm=None, norm_type=None, scale_grad_by_freq=False,
                 max_rows=0, ttl_steps=0, admit_after=0, unseen_zeros=False, init="normal",
                 init_args=None, dynamic=True, num_embeddings=0):
    """A TableSpec for a dynamic table (every field settable, bad ones too)."""
    spec = pb.TableSpec(name=name, num_embeddings=num_embeddings, embedding_dim=dim,
                        dynamic=dynamic, max_rows=max_rows, ttl_steps=ttl_steps,
                        admit_after=admit_after, unseen_zeros=unseen_zeros,
                        scale_grad_by_freq=scale_grad_by_freq)
    spec.optimizer.kind = OPTIMIZER_KINDS[optimizer]
    for key, value in (optimizer_args or {}).items():
        setattr(spec.optimizer, key, float(value))
    if padding_idx is not None:
        spec.padding_idx = int(padding_idx)
    if max_norm is not None:
        spec.max_norm = float(max_norm)
    if norm_type is not None:
        spec.norm_type = float(norm_type)
    spec.initializer.kind = INIT_KINDS[init]
    spec.initializer.seed = seed
    for key, value in (init_args or {}).items():
        setattr(spec.initializer, key, value)
    return spec


def create_dynamic(client, name, dim, initial_values=b"", **kwargs):
    """Creates a dynamic table on `client` (an EmbeddingClient) through its
    stub; returns the TableInfo."""
    req = pb.CreateTableRequest(spec=dynamic_spec(name, dim, **kwargs),
                                initial_values=initial_values)
    return client._stub.CreateTable(req, timeout=30).table


def push_request(table, ids, grads, sequence=0, trainer=""):
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    grads = np.ascontiguousarray(grads, dtype="<f4").reshape(len(ids), -1)
    return pb.PushRequest(table=table, ids=ids.tolist(), grads=grads.tobytes(),
                          sequence=sequence, trainer=trainer)


def sparse_ids(rng, n, extra=(0, -1, INT64_MIN, INT64_MAX, (1 << 53) + 1, -(1 << 53) - 3)):
    """n distinct int64 ids from the whole range: `extra` (edge cases: 0, -1,
    the extremes, past 2^53 where a double loses them) and random ones, in a
    random order."""
    ids = set(int(i) for i in extra)
    while len(ids) < n:
        ids.add(int(rng.integers(INT64_MIN, INT64_MAX, dtype=np.int64, endpoint=True)))
    ids = np.array(sorted(ids), dtype=np.int64)
    rng.shuffle(ids)
    return ids


_names = [0]


def unique_name(prefix):
    """A table name not used before in this process."""
    _names[0] += 1
    return "%s_%d" % (prefix, _names[0])


def start_unlimited_server(harness):
    """Starts the conformance harness's server without a table memory limit
    (a server with one refuses dynamic tables without max_rows, and these
    tests use max_rows 0, no limit, too); returns its client."""
    return harness.start("--max_table_bytes=0")
