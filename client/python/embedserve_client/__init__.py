"""Python client for embedserve (numpy in, numpy out).

    from embedserve_client import EmbeddingClient, RemoteEmbedding

EmbeddingClient (client.py) makes typed calls over gRPC; RemoteEmbedding
(torch_module.py, imported on first use so that torch stays optional) is a
drop-in for torch.nn.Embedding whose table lives on a server. The generated
stubs are in embedserve_client._proto (see client/python/README.md for how
they get there).
"""

from .client import EmbeddingClient  # noqa: F401


def __getattr__(name):
    # torch is imported only by those who use RemoteEmbedding.
    if name in ("RemoteEmbedding", "remote_lookup"):
        from . import torch_module
        return getattr(torch_module, name)
    if name in ("PushWindow", "PushError"):
        from . import push_window
        return getattr(push_window, name)
    raise AttributeError(name)
