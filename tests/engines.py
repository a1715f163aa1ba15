"""Rate calls with the kernel or the reference, in the reference's terms.

``rate_with("kernel", ...)`` compiles the catalog, rates the calls with
``kernels/rating.pyx`` and turns its ids back into names; ``"reference"``
runs ``rating_core/reference.py``. Both take and update opening balances by
account name, so one test body checks both implementations.
"""
from __future__ import annotations

import numpy as np

from rating_core import layout
from rating_core.catalog.schema import Catalog
from rating_core.compile import compile_catalog
from rating_core.compile.regions import region_source
from rating_core.kernels import rating
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
    n = len(tables["account_package"])
    state = {"credit_left": np.zeros(n, np.int64), "bundle_period": np.full(n, -1, np.int32),
             "bundle_used": np.zeros(n, np.int64)}
    for a, account in enumerate(meta["accounts"]):
        b = balances[account]
        state["credit_left"][a], state["bundle_period"][a], state["bundle_used"][a] = (
            b.credit_left, b.bundle_period, b.bundle_used)
    return state


def rate_with(engine: str, catalog: Catalog, calls: list[Call], balances=None, threads: int = 2) -> list[Rated]:
    """Rated rows of ``calls``; ``balances`` (default: opening) updated in place."""
    balances = opening_balances(catalog) if balances is None else balances
    if engine == "reference":
        return rate_reference(catalog, calls, balances, REGIONS)
    tables, meta = compile_catalog(catalog)
    state = kernel_state(tables, meta, balances)
    out = rating.rate(tables, cdr_columns(calls), state, threads)
    for a, account in enumerate(meta["accounts"]):
        balances[account] = Balance(int(state["credit_left"][a]), int(state["bundle_period"][a]),
                                    int(state["bundle_used"][a]))
    return [as_rated(out, meta, i) for i in range(len(calls))]
