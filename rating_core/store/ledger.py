"""The ledger: account state that changes, apart from immutable snapshots.

One LMDB environment, several named databases; each part of the engine
owns its own (``balances`` here; the rating service adds its call ids,
routing its cursors and active calls). LMDB serialises write transactions
across threads and processes, which is what keeps balances and caps
consistent under concurrency.

Balances are keyed by account id (a name, not a snapshot row index), so
they carry across catalog versions. Each balance remembers the package
start it belongs to: when the catalog gives the account a new package
start (a renewal), the old balance is history and the catalog's opening
balance applies from the new start.
"""
from __future__ import annotations

import struct
from pathlib import Path

import lmdb
import numpy as np

# credit_left (minor units), bundle_period (day_month id), bundle_used (s),
# package start (epoch ms) the balance belongs to.
_BALANCE = struct.Struct("<qiqq")


class Ledger:
    def __init__(self, root: str | Path, map_size: int = 1 << 38):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "ledger.lmdb"
        # map_size is an upper bound of address space, not an allocation: the
        # file grows as it is written (256 GiB ~ 800M committed calls).
        self.env = lmdb.open(str(self.path), subdir=False, max_dbs=16, map_size=map_size, max_readers=1024)
        self.balances = self.env.open_db(b"balances")

    def opening_state(self, snapshot, txn: lmdb.Transaction | None = None) -> dict[str, np.ndarray]:
        """Per-account state arrays (snapshot account order) for the kernels."""
        t = snapshot.tables
        accounts = snapshot.meta["accounts"]
        state = {
            "credit_left": t["account_opening_credit"].copy(),
            "bundle_period": np.full(len(accounts), -1, np.int32),
            "bundle_used": np.zeros(len(accounts), np.int64),
        }
        own = txn is None
        txn = txn or self.env.begin()
        try:
            starts = t["account_start_ms"]
            for i, name in enumerate(accounts):
                raw = txn.get(name.encode(), db=self.balances)
                if raw is None:
                    continue
                credit, period, used, start = _BALANCE.unpack(raw)
                if start != starts[i]:
                    continue  # renewed since: the catalog's opening applies
                state["credit_left"][i] = credit
                state["bundle_period"][i] = period
                state["bundle_used"][i] = used
        finally:
            if own:
                txn.abort()
        return state

    def write_state(self, snapshot, state: dict[str, np.ndarray], txn: lmdb.Transaction,
                    accounts: np.ndarray | None = None) -> None:
        """Store closing balances (all accounts, or the ids in ``accounts``)."""
        names = snapshot.meta["accounts"]
        starts = snapshot.tables["account_start_ms"]
        ids = range(len(names)) if accounts is None else np.unique(accounts[accounts >= 0])
        for i in ids:
            txn.put(
                names[i].encode(),
                _BALANCE.pack(int(state["credit_left"][i]), int(state["bundle_period"][i]),
                              int(state["bundle_used"][i]), int(starts[i])),
                db=self.balances,
            )

    def balance(self, account: str) -> dict | None:
        with self.env.begin(db=self.balances) as txn:
            raw = txn.get(account.encode())
        if raw is None:
            return None
        credit, period, used, start = _BALANCE.unpack(raw)
        return {"credit_left": credit, "bundle_period": period, "bundle_used": used, "package_start_ms": start}

    def close(self) -> None:
        self.env.close()
