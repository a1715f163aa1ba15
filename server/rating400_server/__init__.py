"""Rating400 gRPC service: routing, rating and catalog administration.

Entry points: :func:`rating400_server.main.serve` (used by ``rating400 serve``)
and ``python -m rating400_server --store DIR --port N``.

Importing this package is cheap: grpc, the engine and prometheus_client are
imported by the modules that need them.
"""
__all__ = ["serve"]


def serve(*args, **kwargs):
    """See :func:`rating400_server.main.serve`."""
    from .main import serve as _serve

    return _serve(*args, **kwargs)
