"""RemoteEmbedding: a drop-in for torch.nn.Embedding whose table lives on an
embedserve server. forward() looks the rows up on the server; backward()
pushes the gradient of the output rows, and the server's optimizer (chosen
when the table was created) applies the step. Nothing on the client holds the
weights, so leave this module out of the client-side optimizer.

Overlapped training (the default, window=4): backward() hands its push to
the client's PushWindow (push_window.py) and returns without waiting for the
answer, and the next forward() asks the server to answer only once the
pushes it must see are applied, so a training step gives exactly the
numbers of synchronous pushes (window=0 or 1). Call flush() (or
client.flush()) to wait for the pushes in flight; a failed push raises its
PushError at the next push, lookup that waited for it, or flush().
remote_lookup() looks several modules up in one request (one round trip).

Over a dynamic table (README, Dynamic tables) forward() takes any int64 ids
(the server checks them, not the client): an id without a row reads as its
initial value, and backward() pushes its gradient as for a dense table, which
makes the row (if admitted). Such a table has no range, so `weight` raises;
`stored()` gives the ids with a row and their rows instead.
"""

import numpy as np
import torch


class _RemoteLookup(torch.autograd.Function):

    @staticmethod
    def forward(ctx, ids, anchor, module, rows):
        ctx.module = module
        ctx.save_for_backward(ids)
        if rows is None:
            rows = module.client.lookup(module.table, ids.detach().cpu().numpy())
        return torch.from_numpy(rows).to(anchor.device)

    @staticmethod
    def backward(ctx, grad_output):
        (ids,) = ctx.saved_tensors
        ctx.module._push(ids, grad_output)
        return None, None, None, None


class RemoteEmbedding(torch.nn.Module):
    """nn.Embedding backed by a server table.

    client: an EmbeddingClient, or a server address from which one is made
    with `client_args` (timeout, token, root_certificates, certificate_chain,
    private_key, server_name: see EmbeddingClient), e.g.
    RemoteEmbedding("embed:50051", "users", token=..., root_certificates="ca.pem").
    Training needs a trainer (or admin) token: backward pushes gradients.
    table: the table's name (it must exist, e.g. created with
    client.create_table(..., optimizer="adagrad")).
    window: pushes in flight at most (the client's push_window(); every
    RemoteEmbedding of one client shares it, so give them the same window);
    0 or 1: each backward() waits for its push, as before.
    """

    def __init__(self, client, table, window=4, **client_args):
        super().__init__()
        if isinstance(client, str):
            from .client import EmbeddingClient
            client = EmbeddingClient(client, **client_args)
        elif client_args:
            raise TypeError("client_args are for a client made from an address; got a client")
        self.client = client
        self.table = table
        self.window = client.push_window(window) if window > 1 else None
        info = client.describe_table(table)
        self.dynamic = info.spec.dynamic
        # 0 for a dynamic table (any int64 id is valid).
        self.num_embeddings = info.spec.num_embeddings
        self.embedding_dim = info.spec.embedding_dim
        self.padding_idx = info.spec.padding_idx if info.spec.HasField("padding_idx") else None
        # The PushResponse of the last push (synchronous), or the sequence
        # number of the last push handed to the window.
        self.last_push = None
        # Gives autograd a leaf that requires grad, so backward reaches us; it
        # never changes and is not a parameter.
        self.register_buffer("_anchor", torch.zeros(0, requires_grad=True), persistent=False)
        self._anchor.requires_grad_(True)

    def forward(self, ids):
        return _RemoteLookup.apply(ids, self._anchor, self, None)

    def _push(self, ids, grad_output):
        grads = grad_output.detach().to(torch.float32).cpu().reshape(ids.numel(), -1).numpy()
        ids = ids.reshape(-1).cpu().numpy()
        if self.window is not None:
            self.last_push = self.window.push(self.table, ids, grads)
        else:
            self.last_push = self.client.push(self.table, ids, grads)

    def flush(self):
        """Waits until every push of this module's client is applied; raises
        a failed push's PushError."""
        self.client.flush()

    @property
    def weight(self):
        """The whole table, fetched from the server (for inspection); it
        includes every push made so far. A dynamic table has no whole (any
        int64 is an id): TypeError, see stored()."""
        if self.dynamic:
            raise TypeError("table %r is dynamic: it has no weight matrix (any int64 is an id); "
                            "use stored() for the ids with a row and their rows, or look ids "
                            "up with forward()" % self.table)
        return torch.from_numpy(self.client.lookup(self.table, np.arange(self.num_embeddings)))

    def stored(self):
        """(ids, rows) as tensors: the rows the table holds with their ids
        (for a dynamic table, the ids with a row, least recently updated
        first; for a dense one, 0..num_embeddings-1), after every push made
        so far."""
        ids, rows, _ = self.client.export_table(self.table, with_ids=True)
        return torch.from_numpy(ids), torch.from_numpy(rows)

    def extra_repr(self):
        if self.dynamic:
            return "table=%r, dynamic, %d" % (self.table, self.embedding_dim)
        return "table=%r, %d, %d" % (self.table, self.num_embeddings, self.embedding_dim)


def remote_lookup(*pairs):
    """Looks up several RemoteEmbeddings in one request: remote_lookup(
    (user_emb, users), (item_emb, items)) returns (user_emb(users),
    item_emb(items)), with one round trip instead of two. The modules must
    share one client."""
    if not pairs:
        return ()
    client = pairs[0][0].client
    if any(module.client is not client for module, _ in pairs):
        raise ValueError("remote_lookup needs modules of one client")
    rows = client.lookup_many([(module.table, ids.detach().cpu().numpy())
                               for module, ids in pairs])
    return tuple(_RemoteLookup.apply(ids, module._anchor, module, r)
                 for (module, ids), r in zip(pairs, rows))
