"""Where compiled catalogs and account state live.

A store is a directory::

    index.lmdb           versions and the pointer to the active one
    snapshots/v000001    one immutable LMDB file per catalog version
    ledger.lmdb          money: balances, committed calls (rating_core.ledger)
    live.lmdb            calls in progress: reservations, live calls (rating_core.ledger);
                         a sparse 1 GiB file: leave it out of copies
"""
from ..ledger import Ledger  # re-exported: the ledger has its own package now
from .registry import Store
from .snapshot import Snapshot

__all__ = ["Store", "Ledger", "Snapshot"]
