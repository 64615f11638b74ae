"""EmbeddingClient: typed calls over embedserve.v1.EmbeddingService.

Errors are grpc.RpcError with the server's code and message, unchanged.

A secured server (README, Security) is reached with a bearer token and TLS:

    from embedserve_client.client import read_token_file
    client = EmbeddingClient("embed.example:50051",
                             token=read_token_file("reader.token"),
                             root_certificates="ca.pem",        # verify the server
                             certificate_chain="client.pem",    # mutual TLS only
                             private_key="client.key")
"""

import collections
import os

import grpc
import numpy as np

from . import _wire

try:
    from ._proto import embedserve_pb2 as pb
    from ._proto import embedserve_pb2_grpc as pb_grpc
except ImportError as e:
    if e.name != __package__ + "._proto":
        raise  # grpcio or protobuf missing, or too old: their own error says which
    # The source tree itself (client/python) holds no generated stubs.
    raise ImportError(
        "embedserve_client has no generated stubs in %s: install the package "
        "(pip install client/python) or use the build tree's copy "
        "(PYTHONPATH=build/python)" % os.path.dirname(os.path.abspath(__file__))) from e

from .names import INITS, OPTIMIZERS, POOLING_MODES, value_type  # noqa: E402
from .deadlines import LOAD_EXTRA_SECONDS, admin_timeout, table_bytes  # noqa: E402


def _to_array(result):
    shape = tuple(result.shape)
    dtype = "<f2" if result.dtype == pb.FLOAT16 else "<f4"
    return np.frombuffer(result.values, dtype=dtype).reshape(shape).copy()


def read_token_file(path):
    """The token of a client token file: its first line that is neither blank
    nor a '#' comment, stripped. ValueError if there is none."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                return line
    raise ValueError("the token file %s holds no token" % path)


def _pem(value, what):
    """PEM bytes from bytes (returned as they are), PEM text, or a file path."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode("ascii")
    if isinstance(value, (str, os.PathLike)):
        with open(value, "rb") as f:
            return f.read()
    raise TypeError("%s must be PEM bytes or a file path, not %s" % (what, type(value).__name__))


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")), grpc.ClientCallDetails):
    pass


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds "authorization: Bearer <token>" to every call, streams included."""

    def __init__(self, token):
        self._metadata = ("authorization", "Bearer " + token)

    def _details(self, d):
        return _CallDetails(d.method, d.timeout, list(d.metadata or ()) + [self._metadata],
                            d.credentials, getattr(d, "wait_for_ready", None),
                            getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


class EmbeddingClient:
    """A client for one server address. Thread-safe (gRPC channels are).

    timeout: seconds per call.
    token: the bearer token of a reader, trainer or admin (servers started
        with --tokens_file), sent on every call; None or "" sends none.
        read_token_file (in this module) reads one from a file.
    root_certificates, certificate_chain, private_key: PEM, each as bytes,
        as text, or as the path of a file. Giving any of them (or server_name) connects
        with TLS; root_certificates verifies the server (None: gRPC's default
        roots); certificate_chain and private_key are this client's
        certificate, for servers started with --tls_client_ca (mutual TLS).
    server_name: verify the server's certificate against this name instead
        of the address's host.
    Without any of these the channel is plaintext, for a server on loopback.
    """

    def __init__(self, address, timeout=30.0, token=None, root_certificates=None,
                 private_key=None, certificate_chain=None, server_name=None):
        self.address = address
        self.timeout = timeout
        options = [("grpc.max_receive_message_length", -1),
                   ("grpc.max_send_message_length", -1)]
        if (private_key is None) != (certificate_chain is None):
            raise ValueError("a client certificate needs both certificate_chain and private_key")
        if token and any(not ("!" <= c <= "~") for c in token):
            raise ValueError("the token must be printable ASCII without spaces")
        if (root_certificates, private_key, certificate_chain, server_name) == (None,) * 4:
            self._raw_channel = grpc.insecure_channel(address, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_pem(root_certificates, "root_certificates"),
                private_key=_pem(private_key, "private_key"),
                certificate_chain=_pem(certificate_chain, "certificate_chain"))
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self._raw_channel = grpc.secure_channel(address, credentials, options=options)
        self._channel = self._raw_channel
        if token:
            self._channel = grpc.intercept_channel(self._raw_channel, _BearerToken(token))
        self._stub = pb_grpc.EmbeddingServiceStub(self._channel)
        # Lookups go out as bytes encoded by _wire (numpy), not through the
        # generated classes (see _wire.py for why).
        self._lookup_bytes = self._channel.unary_unary(
            "/embedserve.v1.EmbeddingService/Lookup", request_serializer=None,
            response_deserializer=pb.LookupResponse.FromString)
        self._window = None

    def close(self):
        """Waits for the pushes of push_window() (raising a failed one's
        PushError), then closes the channel."""
        try:
            if self._window is not None:
                self._window.close(self.timeout)
        finally:
            self._raw_channel.close()

    def push_window(self, window=4, trainer=None):
        """This client's PushWindow (push_window.py), made on first use with
        `window` unanswered pushes at most and `trainer` as its name: pushes
        through it return at once, and this client's lookups of a table with
        pushes in flight ask the server to wait for them (read-your-writes).
        Calls that read or change a table by other ways (assign_rows,
        export_table, optimizer_state, checkpoints, drop_table) flush() it
        first. Asking again with another window or trainer is a ValueError."""
        if self._window is None:
            from .push_window import PushWindow
            self._window = PushWindow(self, window, trainer)
        elif window != self._window.window or trainer not in (None, self._window.trainer):
            raise ValueError("this client's push window is (window=%d, trainer=%r)"
                             % (self._window.window, self._window.trainer))
        return self._window

    def flush(self):
        """Waits for the pushes of push_window(), if any; raises a failed
        one's PushError."""
        if self._window is not None:
            self._window.flush(self.timeout)

    def _read_your_writes(self, table):
        """(trainer, min_sequence) for a lookup of `table`: this client's
        trainer name and the last push to `table` still in flight (0: none);
        ("", 0) without a push window."""
        if self._window is None:
            return "", 0
        return self._window.trainer, self._window.pending_sequence(table)

    def _lookup_failed(self, error, waited):
        """A lookup that waited for a push failed: the push's own error, if
        it failed, says more than the lookup's DEADLINE_EXCEEDED."""
        if waited and self._window is not None:
            self._window.raise_error()
        raise error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_for_ready(self, timeout=10.0):
        grpc.channel_ready_future(self._raw_channel).result(timeout=timeout)

    def create_table(self, name, num_embeddings=None, embedding_dim=None, *,
                     weights=None, padding_idx=None, max_norm=None,
                     norm_type=None, frozen=False, init="normal", seed=0,
                     num_shards=0, scale_grad_by_freq=False, optimizer="sgd",
                     optimizer_args=None, row_type="float32", dynamic=False,
                     max_rows=None, ttl_steps=None, admit_after=None, unseen_zeros=None,
                     timeout=None, **init_args):
        """Creates a table; with `weights` (a 2-D array) it is from_pretrained.

        optimizer: "sgd", "adagrad", "rowwise_adagrad" or "sparse_adam", with
        optimizer_args such as {"lr": 0.1, "eps": 1e-8, "beta1": 0.9}.
        dynamic: a table keyed by any int64 id (README, Dynamic tables):
        leave num_embeddings None; an id without a row reads as its initial
        value (zeros with unseen_zeros=True) and gets a row at its first push
        (its admit_after-th with admit_after); max_rows (when full, the least
        recently updated row goes) and ttl_steps (rows not updated by the
        table's last ttl_steps pushes go) bound it. These four are for
        dynamic tables only: the server refuses them otherwise, as it refuses
        num_embeddings with dynamic=True (INVALID_ARGUMENT naming the field).
        timeout: seconds; None: the client's timeout plus the table's bytes
        at 50 MB/s (deadlines.admin_timeout; a dynamic table starts empty,
        so just the client's timeout), as for every admin call.
        """
        spec = pb.TableSpec(name=name, frozen=frozen, num_shards=num_shards,
                            scale_grad_by_freq=scale_grad_by_freq, dynamic=bool(dynamic))
        spec.optimizer.kind = OPTIMIZERS[optimizer]
        spec.row_type = value_type(row_type)
        for key, value in (optimizer_args or {}).items():
            setattr(spec.optimizer, key, float(value))
        values = b""
        if weights is not None:
            w = np.ascontiguousarray(weights, dtype="<f4")
            num_embeddings, embedding_dim = w.shape
            values = w.tobytes()
        if num_embeddings is None and not dynamic:
            raise TypeError("create_table needs num_embeddings (or weights), or dynamic=True")
        if embedding_dim is None:
            raise TypeError("create_table needs embedding_dim (or weights)")
        # Passed on as given: the server checks them and names a bad one.
        spec.num_embeddings = int(num_embeddings or 0)
        spec.embedding_dim = int(embedding_dim)
        for field, value in (("max_rows", max_rows), ("ttl_steps", ttl_steps),
                             ("admit_after", admit_after), ("unseen_zeros", unseen_zeros)):
            if value is not None:
                setattr(spec, field, type(getattr(spec, field))(value))
        if padding_idx is not None:
            spec.padding_idx = int(padding_idx)
        if max_norm is not None:
            spec.max_norm = float(max_norm)
        if norm_type is not None:
            spec.norm_type = float(norm_type)
        spec.initializer.kind = INITS[init]
        spec.initializer.seed = seed
        for key, value in init_args.items():
            setattr(spec.initializer, key, value)
        req = pb.CreateTableRequest(spec=spec, initial_values=values)
        if timeout is None:
            timeout = admin_timeout(table_bytes(spec.num_embeddings, embedding_dim, optimizer),
                                    self.timeout)
        return self._stub.CreateTable(req, timeout=timeout).table

    def drop_table(self, name):
        self.flush()
        self._stub.DropTable(pb.DropTableRequest(name=name), timeout=self.timeout)

    def describe_table(self, name):
        """The table's TableInfo: spec, rows (num_rows: rows stored for a
        dynamic table), bytes, version; a dynamic table's admission and
        eviction counts are in .dynamic (rows_stored, rows_admitted,
        rows_evicted, rows_expired, pushes_not_admitted, index_bytes, ...)."""
        return self._stub.DescribeTable(pb.DescribeTableRequest(name=name),
                                        timeout=self.timeout).table

    def list_tables(self):
        return list(self._stub.ListTables(pb.ListTablesRequest(),
                                          timeout=self.timeout).tables)

    def lookup_words(self, table, words):
        """Rows by word (tables loaded from word vectors): (len(words), dim)."""
        query = pb.LookupQuery(table=table, words=list(words))
        resp = self._stub.Lookup(pb.LookupRequest(queries=[query]), timeout=self.timeout)
        return _to_array(resp.results[0])

    def load_table(self, name, path, format="npy", raw_dim=0, freeze=False, padding_idx=None,
                   max_norm=None, replace=False, optimizer="sgd", optimizer_args=None,
                   timeout=None):
        """nn.Embedding.from_pretrained from a file on the server's disk.
        format: npy, word2vec_text, word2vec_binary, glove_text or raw_f32.
        timeout: seconds; None: the client's timeout plus
        deadlines.LOAD_EXTRA_SECONDS (the file's size is not known here)."""
        req = pb.LoadTableRequest(name=name, path=path, format=pb.FileFormat.Value(format.upper()),
                                  raw_dim=raw_dim, freeze=freeze, replace=replace)
        if padding_idx is not None:
            req.padding_idx = padding_idx
        if max_norm is not None:
            req.max_norm = max_norm
        req.optimizer.kind = OPTIMIZERS[optimizer]
        for key, value in (optimizer_args or {}).items():
            setattr(req.optimizer, key, float(value))
        if timeout is None and self.timeout is not None:
            timeout = self.timeout + LOAD_EXTRA_SECONDS
        return self._stub.LoadTable(req, timeout=timeout).table

    def import_table(self, name, local_path, format="npy", chunk_bytes=1 << 20, timeout=None,
                     **load_args):
        """Uploads a local file and loads it as load_table would.
        timeout: seconds; None: the client's timeout plus the file's bytes at
        50 MB/s (deadlines.admin_timeout)."""
        req = pb.LoadTableRequest(name=name, path=os.path.basename(local_path),
                                  format=pb.FileFormat.Value(format.upper()),
                                  raw_dim=load_args.pop("raw_dim", 0),
                                  freeze=load_args.pop("freeze", False),
                                  replace=load_args.pop("replace", False))
        if "padding_idx" in load_args:
            req.padding_idx = load_args.pop("padding_idx")
        if load_args:
            raise TypeError("unknown arguments: %s" % sorted(load_args))

        def chunks():
            yield pb.ImportChunk(request=req)
            with open(local_path, "rb") as f:
                while True:
                    data = f.read(chunk_bytes)
                    if not data:
                        return
                    yield pb.ImportChunk(data=data)
        if timeout is None:
            timeout = admin_timeout(os.path.getsize(local_path), self.timeout)
        return self._stub.ImportTable(chunks(), timeout=timeout).table

    def export_table(self, name, with_ids=False):
        """The whole table as a (rows, dim) float32 array, and its TableInfo:
        (rows, info); with_ids=True: (ids, rows, info), ids an int64 array
        with the id of each row. A dynamic table's rows are the ids it
        stores, least recently updated first, so it needs with_ids=True (a
        ValueError otherwise); a dense table's ids are 0..num_rows-1.
        import_rows(new_table, ids, rows) puts them into another table."""
        self.flush()
        info, parts, id_parts = None, [], []
        for chunk in self._stub.ExportTable(pb.ExportTableRequest(name=name),
                                            timeout=self.timeout):
            if chunk.HasField("table"):
                info = chunk.table
                if info.spec.dynamic and not with_ids:
                    raise ValueError("%s is a dynamic table: its rows need their ids "
                                     "(export_table(%r, with_ids=True))" % (name, name))
            parts.append(np.frombuffer(chunk.values, dtype="<f4"))
            if info.spec.dynamic:
                id_parts.append(np.array(chunk.ids, dtype=np.int64))
        dim = info.spec.embedding_dim
        rows = np.concatenate(parts).reshape(-1, dim)
        if not with_ids:
            return rows, info
        if info.spec.dynamic:
            ids = np.concatenate(id_parts) if id_parts else np.zeros(0, np.int64)
        else:
            ids = np.arange(len(rows), dtype=np.int64)
        return ids, rows, info

    def import_rows(self, table, ids, rows, chunk_rows=65536):
        """Assigns rows[i] to ids[i] (assign_rows) in chunks of chunk_rows:
        e.g. what export_table(name, with_ids=True) gave, into a new table
        created with the same spec (a dynamic table gets a row per id, and
        ids assigned in export order keep their least-recently-updated
        order). Optimizer state is not carried. Returns the table's version
        after the last chunk (None for no rows)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        rows = np.ascontiguousarray(rows, dtype="<f4").reshape(len(ids), -1)
        version = None
        for start in range(0, len(ids), int(chunk_rows)):
            version = self.assign_rows(table, ids[start:start + chunk_rows],
                                       rows[start:start + chunk_rows])
        return version

    def create_checkpoint(self, name, timeout=None):
        """timeout: seconds; None: the client's timeout plus the bytes of
        every table (rows and optimizer state) at 50 MB/s."""
        self.flush()
        if timeout is None:
            timeout = admin_timeout(sum(t.bytes_used + t.optimizer_state_bytes
                                        for t in self.list_tables()), self.timeout)
        return self._stub.CreateCheckpoint(pb.CreateCheckpointRequest(name=name),
                                           timeout=timeout).checkpoint

    def list_checkpoints(self):
        return list(self._stub.ListCheckpoints(pb.ListCheckpointsRequest(),
                                               timeout=self.timeout).checkpoints)

    def restore_checkpoint(self, name, tables=(), timeout=None):
        """timeout: seconds; None: the client's timeout plus the checkpoint's
        bytes at 50 MB/s."""
        self.flush()
        if timeout is None:
            timeout = admin_timeout(sum(c.bytes for c in self.list_checkpoints()
                                        if c.name == name), self.timeout)
        return list(self._stub.RestoreCheckpoint(
            pb.RestoreCheckpointRequest(name=name, tables=list(tables)),
            timeout=timeout).tables)

    def lookup(self, table, ids, output="float32"):
        """F.embedding: an array of shape ids.shape + (dim,) (a 0-d index
        gives (dim,), as torch); output="float16"
        asks for half the bytes on the wire (returned as float16)."""
        return self.lookup_many([(table, ids)], output=output)[0]

    def lookup_many(self, queries, output="float32"):
        """Several lookups in one request (one round trip), e.g. a model's
        user and item tables: queries is a sequence of (table, ids); returns
        one array per query, as lookup() would. The request is validated
        whole: if one query fails, none is answered."""
        if self._window is not None:
            self._window.raise_error()
        encoded, waited = [], False
        kind = value_type(output)
        for table, ids in queries:
            ids = np.asarray(ids, dtype=np.int64)
            trainer, sequence = self._read_your_writes(table)
            waited = waited or sequence > 0
            # A 0-d index (emb(torch.tensor(3))) gives (dim,): asked for as
            # a scalar query, since an empty shape means "flat".
            encoded.append(_wire.lookup_query(table, ids, ids.shape, kind, ids.ndim == 0,
                                              trainer, sequence))
        request = _wire.lookup_request(encoded)
        try:
            if waited:
                resp = self._window.wait_unless_push_fails(
                    self._lookup_bytes.future(request, timeout=self.timeout))
            else:
                resp = self._lookup_bytes(request, timeout=self.timeout)
        except grpc.RpcError as e:
            self._lookup_failed(e, waited)
        return [_to_array(r) for r in resp.results]

    def lookup_pooled(self, table, ids, offsets=None, mode="sum",
                      per_sample_weights=None, include_last_offset=False):
        """F.embedding_bag: (bags, dim). `ids` 1-D with offsets, or 2-D."""
        ids = np.asarray(ids, dtype=np.int64)
        trainer, sequence = self._read_your_writes(table)
        query = pb.PooledQuery(table=table, ids=ids.reshape(-1).tolist(),
                               mode=POOLING_MODES[mode],
                               include_last_offset=include_last_offset,
                               trainer=trainer, min_sequence=sequence)
        if offsets is not None:
            query.offsets.extend(np.asarray(offsets, dtype=np.int64).tolist())
        else:
            query.shape.extend(list(ids.shape))
        if per_sample_weights is not None:
            query.per_sample_weights.extend(
                np.asarray(per_sample_weights, dtype=np.float32).reshape(-1).tolist())
        try:
            resp = self._stub.LookupPooled(pb.PooledRequest(queries=[query]),
                                           timeout=self.timeout)
        except grpc.RpcError as e:
            self._lookup_failed(e, sequence > 0)
        return _to_array(resp.results[0])

    def assign_rows(self, table, ids, values):
        """weight[ids] = values; returns the table's new version."""
        self.flush()
        values = np.ascontiguousarray(values, dtype="<f4")
        req = pb.AssignRowsRequest(table=table,
                                   ids=np.asarray(ids, dtype=np.int64).tolist(),
                                   values=values.tobytes())
        return self._stub.AssignRows(req, timeout=self.timeout).version


    def _push_request(self, table, ids, grads, sequence=0):
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        grads = np.ascontiguousarray(grads, dtype="<f4").reshape(len(ids), -1)
        return pb.PushRequest(table=table, ids=ids.tolist(), grads=grads.tobytes(),
                              sequence=sequence)

    def push(self, table, ids, grads):
        """Applies one push: grads[i] is the gradient of the lookup output for
        ids[i]. Returns the PushResponse (version, rows_applied)."""
        return self._stub.PushGradients(self._push_request(table, ids, grads),
                                        timeout=self.timeout)

    def push_stream(self, pushes):
        """Streams (table, ids, grads) pushes over one StreamGradients call and
        yields each PushResponse in order (a failed push has code != 0)."""
        requests = (self._push_request(t, i, g, sequence=n)
                    for n, (t, i, g) in enumerate(pushes))
        return self._stub.StreamGradients(requests)

    def update_table(self, name, frozen=None, **optimizer_args):
        """Changes frozen and/or optimizer hyper-parameters (lr, lr_decay,
        eps, beta1, beta2)."""
        req = pb.UpdateTableRequest(name=name)
        if frozen is not None:
            req.frozen = frozen
        for key, value in optimizer_args.items():
            setattr(req.optimizer, key, float(value))
        return self._stub.UpdateTable(req, timeout=self.timeout).table

    def optimizer_state(self, table, ids):
        """({slot name: array}, step) for the given ids."""
        self.flush()
        resp = self._stub.GetOptimizerState(
            pb.OptimizerStateRequest(table=table,
                                     ids=np.asarray(ids, dtype=np.int64).tolist()),
            timeout=self.timeout)
        slots = {s.name: np.frombuffer(s.values, dtype="<f4").reshape(tuple(s.shape)).copy()
                 for s in resp.slots}
        return slots, resp.step
