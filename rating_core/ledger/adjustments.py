"""Rerating adjustments: one ``adjustments`` row per call each rerating run
changed (format in ``formats``: key call key + NUL + ``SEQ_MARK`` + the
call's rerating sequence number, value ``ADJUSTMENT_SEQ`` (with the target
catalog version) + account NUL reason NUL new billable seconds NUL the
credit delta).

Exactly once: a run's adjustment moves the call from its LATEST state (the
committed record, or the newest earlier adjustment, whatever its version)
to what the target version gives, and a new row gets the next sequence
number. So every run applies once, also a run back to an earlier version
(v2 -> v3 -> v2: the second v2 run takes the call back from v3), and a
retried or repeated run finds the call already where the version puts it
(its newest row is under that version with the same outcome) and writes
nothing: nothing is charged twice.

Rows written before the sequence existed were keyed by target version
(key call key + NUL + version ``>i``, value ``ADJUSTMENT``); they are read
as they are, ordered by their rerating time, before every sequenced row.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import lmdb
import pyarrow as pa

from . import formats
from .formats import ADJUSTMENT, ADJUSTMENT_SEQ, SEQ, SEQ_MARK, VERSION
from .records import call_keys


def default_reason(version: int) -> str:
    """The reason written on an adjustment when the rerating gives none
    (a statement then names the version in its own language instead)."""
    return f"rerated under catalog version {version}"


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One rerated call. Money int64 in 1/10000 yuan.

    old_charge_minor: the charge before (committed, or the latest earlier
    adjustment's new charge); new_charge_minor: under ``version``;
    delta_minor = new - old; ledger_delta_minor: the part of the delta that
    moves the balance (prepaid: credit consumed; pay-as-you-go: the charge;
    bundle: the overage), so credit changes by ``-ledger_delta_minor``.
    rerated_at_ms: epoch ms of the rerating. reason: free text.
    new_billable_seconds: the call's billable seconds under ``version``
    (what the number's monthly calls count reads: a call counts while they
    are > 0); -1 in rows written before it was recorded. seq: the call's
    rerating sequence number (1 = its first rerating). credit_delta_minor:
    the part of ``ledger_delta_minor`` taken from (+) or given back to (-)
    prepaid credit, decided when the rerating was made (``rerate``: the
    account prepaid then, or the month of the rerating billed as prepaid);
    the statement takes it from the credit and bills the rest of
    ``delta_minor``; None in rows written before it was recorded (the
    statement then decides, ``billing.sources.live_events``). A postpaid
    call of an account prepaid now (``rerate._follow_statement``): its
    ``ledger_delta_minor`` is what the run moves the statement's closing
    credit, which besides the credit part may hold what the statement pays
    from the credit among the month's charges (a later pay span's call,
    paid from the credit carried back; breaker7 F2)."""

    call_id: str
    account: str
    version: int
    old_charge_minor: int
    new_charge_minor: int
    delta_minor: int
    ledger_delta_minor: int
    rerated_at_ms: int
    reason: str
    new_billable_seconds: int = -1
    seq: int = 0
    credit_delta_minor: int | None = None


@dataclass(frozen=True, slots=True)
class Latest:
    """A call's rerating state: ``new_charge_minor``, ``version`` and
    ``new_billable_seconds`` (-1 unknown) of its newest adjustment,
    ``ledger_sum_minor`` the sum of every adjustment's ledger_delta_minor,
    ``count`` how many it has (the next one is number count + 1)."""

    new_charge_minor: int
    ledger_sum_minor: int
    new_billable_seconds: int
    version: int
    count: int


def key(call_key: bytes, seq: int) -> bytes:
    """The ``adjustments`` key of a call's ``seq``-th rerating."""
    return call_key + b"\x00" + SEQ_MARK + SEQ.pack(seq)


def _tail(v: bytes, head: int) -> tuple[str, str, int, int | None]:
    """(account, reason, new_billable_seconds or -1, credit_delta_minor or
    None) of a stored value: the text after the fixed head is account NUL
    reason [NUL billable seconds [NUL credit delta]], decimals (a reason
    holds no control character, ``rerate.check_reason``)."""
    account, _, rest = v[head:].decode().partition("\x00")
    reason, _, rest = rest.partition("\x00")
    billable, _, credit = rest.partition("\x00")
    return account, reason, int(billable) if billable else -1, int(credit) if credit else None


def _decode(call: bytes, suffix: bytes, v: bytes) -> Adjustment | None:
    """One stored row (``suffix``: the key after call key + NUL), or None
    for a longer call key that shares the prefix."""
    if len(suffix) == 1 + SEQ.size and suffix[:1] == SEQ_MARK:
        old, new, delta, ledger_delta, at, version = ADJUSTMENT_SEQ.unpack_from(v)
        account, reason, billable, credit = _tail(v, ADJUSTMENT_SEQ.size)
        seq = SEQ.unpack(suffix[1:])[0]
    elif len(suffix) == VERSION.size:  # a row keyed by version (before the sequence)
        old, new, delta, ledger_delta, at = ADJUSTMENT.unpack_from(v)
        account, reason, billable, credit = _tail(v, ADJUSTMENT.size)
        version, seq = VERSION.unpack(suffix)[0], 0
    else:
        return None
    return Adjustment(call.decode(errors="replace"), account, version, old, new, delta, ledger_delta, at, reason,
                      billable, seq, credit)


def _ordered(rows: list[Adjustment]) -> list[Adjustment]:
    """Oldest rerating first: version-keyed rows by time, then the sequence;
    the version-keyed ones are numbered 1.. in that order."""
    legacy = sorted((a for a in rows if a.seq == 0), key=lambda a: (a.rerated_at_ms, a.version))
    seqd = sorted((a for a in rows if a.seq), key=lambda a: a.seq)
    return [replace(a, seq=i + 1) for i, a in enumerate(legacy)] + seqd


def of_call(ledger, txn: lmdb.Transaction, call_key: bytes) -> list[Adjustment]:
    """The adjustments of one call (every rerating run that changed it),
    oldest first; [] when it was never rerated."""
    prefix = call_key + b"\x00"
    out = []
    cur = txn.cursor(db=ledger.db[formats.ADJUSTMENTS])
    if cur.set_range(prefix):
        for raw_key, raw in cur:
            k = bytes(raw_key)
            if not k.startswith(prefix):
                break
            a = _decode(call_key, k[len(prefix):], bytes(raw))
            if a is not None:
                out.append(a)
    return _ordered(out)


def latest(ledger, txn: lmdb.Transaction, call_key: bytes) -> Latest | None:
    """The call's rerating state (``Latest``), or None when never rerated."""
    rows = of_call(ledger, txn, call_key)
    if not rows:
        return None
    last = rows[-1]
    return Latest(last.new_charge_minor, sum(a.ledger_delta_minor for a in rows), last.new_billable_seconds,
                  last.version, len(rows))


def put(ledger, txn: lmdb.Transaction, call_key: bytes, a: Adjustment) -> None:
    """Store one adjustment (``a.seq`` >= 1, the call's next number) inside
    the write ``txn`` (with its balance correction, so both commit or
    neither)."""
    if a.seq < 1:
        raise ValueError(f"adjustment of {a.call_id}: seq {a.seq}, not >= 1")
    tail = a.account + "\x00" + a.reason
    if a.new_billable_seconds >= 0 or a.credit_delta_minor is not None:
        tail += f"\x00{a.new_billable_seconds if a.new_billable_seconds >= 0 else ''}"
    if a.credit_delta_minor is not None:
        tail += f"\x00{a.credit_delta_minor}"
    value = ADJUSTMENT_SEQ.pack(a.old_charge_minor, a.new_charge_minor, a.delta_minor, a.ledger_delta_minor,
                                a.rerated_at_ms, a.version) + tail.encode()
    if not txn.put(key(call_key, a.seq), value, db=ledger.db[formats.ADJUSTMENTS], overwrite=False):
        # The number comes from ``latest`` in this same write transaction: taken means a bug, never overwrite.
        raise ValueError(f"adjustment {a.seq} of {a.call_id} exists already")


def all_rows(ledger, txn: lmdb.Transaction) -> list[Adjustment]:
    """Every stored adjustment, each call's oldest first (a call id longer
    than ``formats.MAX_KEY`` bytes is stored hashed and shows as its key)."""
    by_call: dict[bytes, list[Adjustment]] = {}
    for raw_key, raw in txn.cursor(db=ledger.db[formats.ADJUSTMENTS]):
        k = bytes(raw_key)
        # The call key is everything before the suffix (a hashed key may hold NUL).
        for size in (1 + SEQ.size, VERSION.size):
            call, suffix = k[:-size - 1], k[-size:]
            if k[-size - 1:-size] == b"\x00":
                a = _decode(call, suffix, bytes(raw))
                if a is not None:
                    by_call.setdefault(call, []).append(a)
                    break
    return [a for rows in by_call.values() for a in _ordered(rows)]


def as_rerated(ledger, txn: lmdb.Transaction, rows: pa.Table) -> pa.Table:
    """``rows`` (committed records: a rated table with ``call_id`` and
    ``charge_minor``, int64 1/10000 yuan) with each rerated call's charge
    as it stands now, its latest adjustment's new charge: the committed
    charge plus every rerating's delta, what ``bill --ledger`` and
    ``explain`` show. The other columns (billable seconds, units, credit
    consumed, overage, balances) stay as committed: they tell the commit.
    Every answer with committed calls' stored results (``engine.
    with_replayed``: a repeated commit, a dry job) goes through this, so
    none shows a charge a rerating has replaced. A ledger without
    adjustments costs no lookup; otherwise one B-tree seek per row, and
    ``latest`` (as ``explain`` reads a call's) for the rerated ones.
    ``ValueError`` for a null or empty call id."""
    if not rows.num_rows or not txn.stat(ledger.db[formats.ADJUSTMENTS])["entries"]:
        return rows
    cur = txn.cursor(db=ledger.db[formats.ADJUSTMENTS])
    rerated = []  # (row, call key) of the rows whose call has an adjustment
    for i, k in enumerate(call_keys(rows.column("call_id")).to_pylist()):
        if cur.set_range(k + b"\x00") and cur.key()[:len(k) + 1] == k + b"\x00":
            rerated.append((i, k))
    now = [(i, latest(ledger, txn, k)) for i, k in rerated]
    if not now:
        return rows
    col = rows.column("charge_minor")
    cells = col.to_numpy(zero_copy_only=False).copy()
    for i, s in now:
        if s is not None:  # None: only a longer call key shares the prefix
            cells[i] = s.new_charge_minor
    return rows.set_column(rows.column_names.index("charge_minor"), rows.schema.field("charge_minor"),
                           pa.array(cells, col.type))
