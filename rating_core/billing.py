"""The monthly bill: what the clerk sends each enterprise.

Input is rated CDRs (the ``rating400 rate`` output) and the snapshot they
were rated with. One row per account and calendar month (local time) in
the period the CDRs cover, including accounts with no calls that month
(a monthly minimum and the rental still apply). Amounts are int64 minor
units; nothing here rounds (per-call rounding already happened).

  usage           sum of call charges
  credit_consumed part of usage paid from prepaid credit
  minimum_topup   max(0, monthly_minimum - usage), except in the package's
                  first month, which is charged at actual usage
  rental          the package's monthly rental
  features        add-ons: monthly fees, yearly fees in the anniversary
                  month, missed-call SMS per unanswered call
  amount_due      usage - credit_consumed + minimum_topup + rental + features
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .layout import LOCAL_OFFSET_MS

BILL_SCHEMA = pa.schema(
    [
        ("account", pa.string()),
        ("month", pa.string()),
        ("package", pa.string()),
        ("calls", pa.int64()),
        ("answered_calls", pa.int64()),
        ("billed_seconds", pa.int64()),
        ("usage", pa.int64()),
        ("credit_consumed", pa.int64()),
        ("overage", pa.int64()),
        ("minimum_topup", pa.int64()),
        ("rental", pa.int64()),
        ("features", pa.int64()),
        ("amount_due", pa.int64()),
    ]
)


def _start_ms(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_timestamp(col.type):
        return pc.cast(pc.cast(col, pa.timestamp("ms", "UTC")), pa.int64()).to_numpy()
    if pa.types.is_integer(col.type):
        return col.to_numpy().astype(np.int64)
    raise TypeError(f"start: expected a timestamp or epoch ms column, got {col.type}")


def _month_index(ms: np.ndarray) -> np.ndarray:
    """year * 12 + month - 1 of the local date."""
    days = (ms + LOCAL_OFFSET_MS) // 86_400_000
    dates = days.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12
    return years * 12 + months


def _label(m: int) -> str:
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def monthly_bill(rated: pa.Table, meta: dict) -> pa.Table:
    """One bill row per (account, month) over the months the CDRs cover."""
    months = _month_index(_start_ms(rated["start_ms"] if "start_ms" in rated.column_names else rated["start"]))
    work = pa.table(
        {
            "account": pc.cast(rated["account"], pa.string()),
            "month": pa.array(months),
            "answered": pc.cast(pc.greater(rated["billable_seconds"], 0), pa.int64()),
            "billed_seconds": pc.cast(rated["billed_seconds"], pa.int64()),
            "charge": rated["charge"],
            "credit_consumed": rated["credit_consumed"],
            "overage": rated["overage"],
        }
    )
    grouped = work.group_by(["account", "month"]).aggregate(
        [("answered", "count"), ("answered", "sum"), ("billed_seconds", "sum"), ("charge", "sum"),
         ("credit_consumed", "sum"), ("overage", "sum")]
    )
    usage = {
        (a, m): row
        for a, m, *row in zip(*(grouped[c].to_pylist() for c in
                                ["account", "month", "answered_count", "answered_sum", "billed_seconds_sum",
                                 "charge_sum", "credit_consumed_sum", "overage_sum"]))
    }
    b = meta["billing"]
    first_month, last_month = (int(months.min()), int(months.max())) if len(months) else (0, -1)
    rows = {f.name: [] for f in BILL_SCHEMA}
    for i, account in enumerate(meta["accounts"]):
        start = dt.date.fromisoformat(b["account_package_start"][i])
        start_month = start.year * 12 + start.month - 1
        for m in range(max(first_month, start_month), last_month + 1):
            calls, answered, billed, charge, credit, overage = usage.get((account, m), (0, 0, 0, 0, 0, 0))
            p = b["account_package_index"][i]
            minimum = b["package_monthly_minimum"][p]
            topup = 0 if m == start_month else max(0, minimum - charge)
            features = 0
            for f in b["account_features"][i]:
                spec = b["features"][f]
                if spec["per"] == "month":
                    features += spec["fee"]
                elif spec["per"] == "year" and (m - start_month) % 12 == 0:
                    features += spec["fee"]
                elif spec["per"] == "missed_call":
                    features += spec["fee"] * (calls - answered)
            rental = b["package_rental"][p]
            for name, value in [
                ("account", account), ("month", _label(m)), ("package", meta["packages"][p]),
                ("calls", calls), ("answered_calls", answered), ("billed_seconds", billed),
                ("usage", charge), ("credit_consumed", credit), ("overage", overage),
                ("minimum_topup", topup), ("rental", rental), ("features", features),
                ("amount_due", charge - credit + topup + rental + features),
            ]:
                rows[name].append(value)
    return pa.table(rows, schema=BILL_SCHEMA)
