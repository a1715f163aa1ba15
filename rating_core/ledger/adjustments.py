"""Rerating adjustments: one ``adjustments`` row per call whose charge a
rerating changed (format in ``formats``: key call key + NUL + target
catalog version, value ``ADJUSTMENT`` + account NUL reason).

The key is the idempotency rule: a call already adjusted under a target
version is skipped when the same rerating runs again, so its balance
correction is never applied twice.
"""
from __future__ import annotations

from dataclasses import dataclass

import lmdb

from . import formats
from .formats import ADJUSTMENT, VERSION


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
    are > 0); -1 in rows written before it was recorded."""

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


def key(call_key: bytes, version: int) -> bytes:
    """The ``adjustments`` key of a call under a target catalog version."""
    return call_key + b"\x00" + VERSION.pack(version)


def exists(ledger, txn: lmdb.Transaction, call_key: bytes, version: int) -> bool:
    """Whether the call was already rerated under ``version``."""
    return txn.get(key(call_key, version), db=ledger.db[formats.ADJUSTMENTS]) is not None


def _tail(v) -> tuple[str, str, int]:
    """(account, reason, new_billable_seconds or -1) of a stored value: the
    text after ``ADJUSTMENT`` is account NUL reason [NUL billable seconds]
    (a reason holds no control character, ``rerate.check_reason``)."""
    account, _, rest = bytes(v[ADJUSTMENT.size:]).decode().partition("\x00")
    reason, _, billable = rest.partition("\x00")
    return account, reason, int(billable) if billable else -1


def latest(ledger, txn: lmdb.Transaction, call_key: bytes) -> tuple[int, int, int] | None:
    """The call's earlier adjustments under any version, or None: (the
    latest one's new_charge_minor, the sum of their ledger_delta_minor, the
    latest one's new_billable_seconds, -1 when not recorded)."""
    prefix = call_key + b"\x00"
    cur = txn.cursor(db=ledger.db[formats.ADJUSTMENTS])
    best: tuple[int, int, int] | None = None
    ledger_sum = 0
    if cur.set_range(prefix):
        for k, v in cur:
            k = bytes(k)
            if not k.startswith(prefix):
                break
            if len(k) != len(prefix) + VERSION.size:
                continue  # a longer call key sharing the prefix
            old, new, delta, ledger_delta, at = ADJUSTMENT.unpack_from(v)
            ledger_sum += ledger_delta
            if best is None or at >= best[0]:
                best = (at, new, _tail(v)[2])
    return None if best is None else (best[1], ledger_sum, best[2])


def put(ledger, txn: lmdb.Transaction, call_key: bytes, a: Adjustment) -> None:
    """Store one adjustment inside the write ``txn`` (with its balance
    correction, so both commit or neither)."""
    tail = a.account + "\x00" + a.reason + (f"\x00{a.new_billable_seconds}" if a.new_billable_seconds >= 0 else "")
    value = ADJUSTMENT.pack(a.old_charge_minor, a.new_charge_minor, a.delta_minor, a.ledger_delta_minor,
                            a.rerated_at_ms) + tail.encode()
    txn.put(key(call_key, a.version), value, db=ledger.db[formats.ADJUSTMENTS])


def all_rows(ledger, txn: lmdb.Transaction) -> list[Adjustment]:
    """Every stored adjustment, in key order (a call id longer than
    ``formats.MAX_KEY`` bytes is stored hashed and shows as its key)."""
    out = []
    for raw_key, raw in txn.cursor(db=ledger.db[formats.ADJUSTMENTS]):
        k, v = bytes(raw_key), bytes(raw)
        call, version = k[:-VERSION.size - 1], VERSION.unpack(k[-VERSION.size:])[0]
        old, new, delta, ledger_delta, at = ADJUSTMENT.unpack_from(v)
        account, reason, billable = _tail(v)
        out.append(Adjustment(call.decode(errors="replace"), account, version, old, new, delta, ledger_delta,
                              at, reason, billable))
    return out


def of_call(ledger, txn: lmdb.Transaction, call_key: bytes) -> list[Adjustment]:
    """The adjustments of one call (every version it was rerated under),
    oldest rerating first; [] when it was never rerated."""
    prefix = call_key + b"\x00"
    out = []
    cur = txn.cursor(db=ledger.db[formats.ADJUSTMENTS])
    if cur.set_range(prefix):
        for raw_key, raw in cur:
            k, v = bytes(raw_key), bytes(raw)
            if not k.startswith(prefix):
                break
            if len(k) != len(prefix) + VERSION.size:
                continue  # a longer call key sharing the prefix
            old, new, delta, ledger_delta, at = ADJUSTMENT.unpack_from(v)
            account, reason, billable = _tail(v)
            out.append(Adjustment(call_key.decode(errors="replace"), account, VERSION.unpack(k[-VERSION.size:])[0],
                                  old, new, delta, ledger_delta, at, reason, billable))
    return sorted(out, key=lambda a: (a.rerated_at_ms, a.version))
