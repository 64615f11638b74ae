"""RemoteEmbedding: a drop-in for torch.nn.Embedding whose table lives on an
embedserve server. forward() looks the rows up on the server; backward()
pushes the gradient of the output rows, and the server's optimizer (chosen
when the table was created) applies the step. Nothing on the client holds the
weights, so leave this module out of the client-side optimizer."""

import torch


class _RemoteLookup(torch.autograd.Function):

    @staticmethod
    def forward(ctx, ids, anchor, module):
        ctx.module = module
        ctx.save_for_backward(ids)
        rows = module.client.lookup(module.table, ids.detach().cpu().numpy())
        return torch.from_numpy(rows).to(anchor.device)

    @staticmethod
    def backward(ctx, grad_output):
        (ids,) = ctx.saved_tensors
        module = ctx.module
        grads = grad_output.detach().to(torch.float32).cpu().reshape(ids.numel(), -1)
        module.last_push = module.client.push(module.table, ids.reshape(-1).cpu().numpy(),
                                              grads.numpy())
        return None, None, None


class RemoteEmbedding(torch.nn.Module):
    """nn.Embedding backed by a server table.

    client: an EmbeddingClient, or a server address from which one is made
    with `client_args` (timeout, token, root_certificates, certificate_chain,
    private_key, server_name: see EmbeddingClient), e.g.
    RemoteEmbedding("embed:50051", "users", token=..., root_certificates="ca.pem").
    Training needs a trainer (or admin) token: backward pushes gradients.
    table: the table's name (it must exist, e.g. created with
    client.create_table(..., optimizer="adagrad")).
    """

    def __init__(self, client, table, **client_args):
        super().__init__()
        if isinstance(client, str):
            from .client import EmbeddingClient
            client = EmbeddingClient(client, **client_args)
        elif client_args:
            raise TypeError("client_args are for a client made from an address; got a client")
        self.client = client
        self.table = table
        info = client.describe_table(table)
        self.num_embeddings = info.spec.num_embeddings
        self.embedding_dim = info.spec.embedding_dim
        self.padding_idx = info.spec.padding_idx if info.spec.HasField("padding_idx") else None
        self.last_push = None
        # Gives autograd a leaf that requires grad, so backward reaches us; it
        # never changes and is not a parameter.
        self.register_buffer("_anchor", torch.zeros(0, requires_grad=True), persistent=False)
        self._anchor.requires_grad_(True)

    def forward(self, ids):
        return _RemoteLookup.apply(ids, self._anchor, self)

    @property
    def weight(self):
        """The whole table, fetched from the server (for inspection)."""
        import numpy as np
        return torch.from_numpy(self.client.lookup(self.table, np.arange(self.num_embeddings)))

    def extra_repr(self):
        return "table=%r, %d, %d" % (self.table, self.num_embeddings, self.embedding_dim)
