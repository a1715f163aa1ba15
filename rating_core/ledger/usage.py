"""Per-number monthly usage: what the monthly caps on spend and on calls
(``Number.cap_spend_minor`` / ``cap_calls``, the seed's "plan the scope of
use") are checked against at Authorize (``rating_core.router``).

``number_usage`` (ledger.lmdb, ``formats``) holds, per 400 number and
calendar month (Asia/Shanghai, of the call's start):

* ``spend_minor``: the sum of the committed calls' ``charge`` (1/10000
  yuan; for a bundle that is the overage, the in-bundle seconds cost
  nothing);
* ``calls``: the committed calls with billable seconds > 0 (a call nobody
  answered is not a use of the number).

``account_daily`` holds the same per account and local day: the typical
daily use (``typical_daily``) the "credit below N days" notification
compares the available credit with.

``record`` runs inside the transaction that commits the calls
(``Engine.commit_prepared``), so a call counts exactly once, never for a
replayed call id; rerating (``rating_core.rerate``) records each
adjustment's charge delta and its calls change (-1 a call whose billable
seconds the new version makes 0, +1 the reverse, else 0) inside the
transaction that writes the adjustment. Calls in progress are counted by their reservations
(``reservations.number_hold``) until their CDR is committed.
"""
from __future__ import annotations

import lmdb
import numpy as np
import pyarrow as pa

from .. import layout
from . import formats
from .formats import LINE, MONTH, USAGE


def month_ids(at_ms: np.ndarray) -> np.ndarray:
    """Month id (year * 12 + month - 1, Asia/Shanghai; ``ledger.month_of``)
    of each epoch-ms instant (int64 array) -> int32 array."""
    days = (np.asarray(at_ms, np.int64) + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return (months + 1970 * 12).astype(np.int32)


def key(number_key: int, month: int) -> bytes:
    return LINE.pack(number_key) + MONTH.pack(month)


def get(ledger, txn: lmdb.Transaction, number_key: int, month: int) -> tuple[int, int]:
    """(spend_minor, calls) committed on the 400 number of key ``number_key``
    (``numbers.key``) in ``month`` (``month_ids``)."""
    raw = txn.get(key(number_key, month), db=ledger.db[formats.NUMBER_USAGE])
    return USAGE.unpack(raw) if raw is not None else (0, 0)


def day_key(account: str, day: int) -> bytes:
    return account.encode() + b"\0" + MONTH.pack(day)


def local_day(at_ms: int) -> int:
    """Days since 1970-01-01 of an instant's Asia/Shanghai date."""
    return (int(at_ms) + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY


def spend_between(ledger, txn: lmdb.Transaction, account: str, first_day: int, end_day: int) -> int:
    """Committed spend (minor units) of ``account``'s calls started on local
    days [first_day, end_day)."""
    cur = txn.cursor(db=ledger.db[formats.ACCOUNT_DAILY])
    total = 0
    hi = day_key(account, end_day)
    if cur.set_range(day_key(account, first_day)):
        for k, v in cur:
            if bytes(k) >= hi:
                break
            total += USAGE.unpack(v)[0]
    return total


TYPICAL_WINDOW_DAYS = 30


def typical_daily(ledger, txn: lmdb.Transaction, account: str, at_ms: int, since_ms: int) -> tuple[int, int]:
    """An account's typical daily use at ``at_ms`` as the exact fraction
    (spend_minor, days): committed spend of the calls started in the last
    ``TYPICAL_WINDOW_DAYS`` whole local days before today, over those days --
    fewer when the package started (``since_ms``) inside the window, at
    least 1."""
    today = local_day(at_ms)
    first = max(today - TYPICAL_WINDOW_DAYS, local_day(since_ms))
    days = max(1, today - first)
    return spend_between(ledger, txn, account, today - days, today), days


def record(ledger, txn: lmdb.Transaction, numbers, start_ms: np.ndarray, charge: np.ndarray,
           billable: np.ndarray, accounts=None, calls: np.ndarray | None = None) -> int:
    """Add committed calls to their numbers' months inside the write ``txn``.

    numbers: the 400 numbers (Arrow string array or chunked array, normalised);
    start_ms: int64 epoch ms of each call's start; charge: int64 minor units
    (a rerating's delta may be negative; a count never goes below 0: calls
    committed before the counts existed were never in them);
    billable: billable seconds; accounts: the calls' account names (Arrow
    strings; None: not recorded per account and day); calls: int64 signed
    calls count change per row instead of ``billable > 0`` (a rerating's:
    +1 a call that became billable, -1 one that no longer is). One read and one
    write per (number, month) and (account, day) the calls touch. Returns
    how many entries changed."""
    if len(start_ms) == 0:
        return 0
    from ..numbers import keys_of

    start_ms = np.asarray(start_ms, np.int64)
    charge = pa.array(np.asarray(charge, np.int64))
    used = pa.array(np.asarray(calls, np.int64) if calls is not None else (np.asarray(billable) > 0).astype(np.int64))
    n = _accumulate(txn, ledger.db[formats.NUMBER_USAGE],
                    pa.table({"k": keys_of(numbers), "at": month_ids(start_ms), "charge": charge, "used": used}),
                    lambda number, month: key(number, month) if number != 0 else None)
    if accounts is not None:
        days = ((start_ms + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY).astype(np.int32)
        n += _accumulate(txn, ledger.db[formats.ACCOUNT_DAILY],
                         pa.table({"k": accounts, "at": days, "charge": charge, "used": used}),
                         lambda account, day: day_key(account, day) if account else None)
    return n


def _accumulate(txn: lmdb.Transaction, db, calls: pa.Table, key_of) -> int:
    """The one accumulate of both usage databases: ``calls`` (columns ``k``,
    ``at``: what a ``USAGE`` entry is kept per; ``charge``, ``used``: int64
    per call) summed per (k, at), each sum added to the stored entry of key
    ``key_of(k, at)`` (None: not recorded). Sums of zero change nothing.
    Returns how many entries changed."""
    g = calls.group_by(["k", "at"], use_threads=False).aggregate([("charge", "sum"), ("used", "sum")])
    adds: dict[bytes, tuple[int, int]] = {}
    for k, at, spend, n_calls in zip(g.column("k").to_pylist(), g.column("at").to_pylist(),
                                      g.column("charge_sum").to_pylist(), g.column("used_sum").to_pylist()):
        entry = key_of(k, at) if spend or n_calls else None
        if entry is not None:
            adds[entry] = (spend, n_calls)
    if not adds:
        return 0
    keys = sorted(adds)  # key order: each LMDB page visited once
    stored = dict(txn.cursor(db=db).getmulti(keys))
    out = []
    for k in keys:
        spend, n_calls = adds[k]
        raw = stored.get(k)
        s, c = USAGE.unpack(raw) if raw is not None else (0, 0)
        out.append((k, USAGE.pack(max(0, s + spend), max(0, c + n_calls))))  # a rerating's delta may be negative
    txn.cursor(db=db).putmulti(out)
    return len(out)
