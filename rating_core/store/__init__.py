"""Where compiled catalogs and account state live.

A store is a directory::

    index.lmdb           versions and the pointer to the active one
    snapshots/v000001    one immutable LMDB file per catalog version
    ledger.lmdb          mutable account state (balances, call ids, routing)
"""
from .registry import Store
from .ledger import Ledger
from .snapshot import Snapshot

__all__ = ["Store", "Ledger", "Snapshot"]
