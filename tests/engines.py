"""Rate calls with the kernel or the reference, in the reference's terms.

``rate_with("kernel", ...)`` compiles the catalog, rates the calls with
``kernels/rating.pyx`` and turns its ids back into names; ``"reference"``
runs ``rating_core/reference.py``. Both take and update opening balances by
account name, so one test body checks both implementations.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rating_core import layout
from rating_core.catalog.schema import Catalog
from rating_core.compile import compile_catalog
from rating_core.compile.regions import region_source
from rating_core.ledger.core import usage_table
from rating_core.rater import Rater
from rating_core.reference import Balance, Call, Rated, Regions, opening_balances, rate_reference

from strategies import cdr_columns

REGIONS = Regions.from_source(region_source())
AMOUNTS = ["billable_seconds", "billed_seconds", "units", "charge", "credit_consumed",
           "bundle_seconds_consumed", "overage", "balance_after"]


def as_rated(out, meta, i) -> Rated:
    """Row i of the kernel's output, in the reference's terms (names)."""

    def name(kind, column):
        v = int(out[column][i])
        return None if v < 0 else meta[kind][v]

    caller_class = int(out["caller_class"][i])
    return Rated(
        status=layout.RATE_STATUS[out["status"][i]],
        account=name("accounts", "account"),
        package=name("packages", "package"),
        destination_class=name("destination_classes", "destination_class"),
        caller_city=name("cities", "caller_city"),
        caller_province=name("provinces", "caller_province"),
        caller_carrier=name("carriers", "caller_carrier"),
        caller_class=None if caller_class < 0 else layout.CALLER_CLASS[caller_class],
        time_band=name("bands", "time_band"),
        rate=name("rates", "rate"),
        **{f: int(out[f][i]) for f in AMOUNTS},
    )


def kernel_state(tables, meta, balances: dict[str, Balance]) -> dict[str, np.ndarray]:
    """The kernel's state for ``balances``, with the usage of earlier
    bundle months (``Balance.late_used``) as the ledger gives it
    (``ledger.core.usage_table``: keyed account row << 16 | month, at the
    account's package start)."""
    n = len(tables["account_package"])
    state = {"credit_left": np.zeros(n, np.int64), "bundle_period": np.full(n, -1, np.int32),
             "bundle_used": np.zeros(n, np.int64)}
    keys, starts, used = [], [], []
    for a, account in enumerate(meta["accounts"]):
        b = balances[account]
        state["credit_left"][a], state["bundle_period"][a], state["bundle_used"][a] = (
            b.credit_left, b.bundle_period, b.bundle_used)
        for month, u in sorted(b.late_used.items()):
            keys.append((a << 16) | month)
            starts.append(int(tables["account_start_ms"][a]))
            used.append(u)
    state.update(usage_table((np.array(keys, np.int64), np.array(starts, np.int64), np.array(used, np.int64))))
    return state


def kernel_rate(tables, arrays, state, threads: int = 2) -> dict[str, np.ndarray]:
    """``rating.rate`` with late bundle calls settled as the rater settles
    them (``Rater._kernel``: the months a batch left behind complete the
    usage table, then the batch is rated again from its opening state); the
    ledger here holds nothing beyond ``state``."""
    empty = np.zeros(0, np.int64)
    return Rater._kernel(SimpleNamespace(tables=tables, threads=threads), arrays, state,
                         lambda accounts: (empty, empty, empty))


def closing_late_used(state, meta) -> dict[str, dict[int, int]]:
    """Per account, month -> seconds used of earlier months after a
    ``kernel_rate``: the months left behind (``rolled_*``), then the table
    (its late draws), as the ledger keeps them; months with none used
    left out."""
    out: dict[str, dict[int, int]] = {a: {} for a in meta["accounts"]}
    n = int(state["rolled_n"][0])
    for a, m, u in zip(state["rolled_acc"][:n].tolist(), state["rolled_month"][:n].tolist(),
                       state["rolled_used"][:n].tolist()):
        out[meta["accounts"][a]][m] = u
    for k, u in zip(state["late_key"].tolist(), state["late_used"].tolist()):
        out[meta["accounts"][k >> 16]][k & 0xFFFF] = u
    return {a: {m: u for m, u in d.items() if u} for a, d in out.items()}


def rate_with(engine: str, catalog: Catalog, calls: list[Call], balances=None, threads: int = 2) -> list[Rated]:
    """Rated rows of ``calls``; ``balances`` (default: opening) updated in place."""
    balances = opening_balances(catalog) if balances is None else balances
    if engine == "reference":
        return rate_reference(catalog, calls, balances, REGIONS)
    tables, meta = compile_catalog(catalog)
    state = kernel_state(tables, meta, balances)
    out = kernel_rate(tables, cdr_columns(calls), state, threads)
    late = closing_late_used(state, meta)
    for a, account in enumerate(meta["accounts"]):
        balances[account] = Balance(int(state["credit_left"][a]), int(state["bundle_period"][a]),
                                    int(state["bundle_used"][a]), late[account])
    return [as_rated(out, meta, i) for i in range(len(calls))]
