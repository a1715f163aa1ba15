"""The operator's catalog: schema (the model) and loading with precise errors.

Knows nothing of LMDB, Cython or gRPC.
"""
from .schema import Catalog
from .load import load_catalog

__all__ = ["Catalog", "load_catalog"]
