"""Caller records (the ``crm`` database, ``formats``): the one store of
both the caller CRM (``rating_core.billing.crm``) and caller-memory routing
(``rating_core.router``).

A record is ``formats.CRM_COUNTS`` + a msgspec JSON tail (``d``: the
destination that last answered, normalised; ``c``/``p``/``k``: city,
province, carrier; ``t``: tags; ``n``: notes). Here are the two fields
routing needs: ``remember_answer`` (the ``answered`` call event) writes the
destination and its answer time, ``last_answer`` reads them back.
"""
from __future__ import annotations

import msgspec

from .formats import CRM_COUNTS

ENCODE = msgspec.json.Encoder().encode
DECODE = msgspec.json.Decoder().decode
_LAST_ANSWERED = 5  # index of last_answered_ms in CRM_COUNTS
_EMPTY_TAIL: dict[str, object] = {"d": None, "c": None, "p": None, "k": None, "t": [], "n": []}


def key(account: str, caller: str) -> bytes:
    """The record key: account NUL normalised caller number (UTF-8)."""
    return f"{account}\0{caller}".encode()


def last_answer(raw: bytes | None) -> tuple[str | None, int]:
    """(destination that last answered, its answer time epoch ms) of a
    record; (None, 0) for no record or a caller never answered."""
    if raw is None:
        return None, 0
    at = CRM_COUNTS.unpack_from(raw)[_LAST_ANSWERED]
    return DECODE(bytes(raw[CRM_COUNTS.size:]))["d"], at


def remember_answer(txn, db, account: str, caller: str, destination: str, at_ms: int) -> None:
    """Inside a write ``txn`` of ``ledger.lmdb``: ``destination`` answered
    ``caller`` of ``account`` at ``at_ms``. Sets the record's destination and
    last_answered_ms unless it already holds a later answer (events may
    arrive out of order); counts are left to the commit of the call's CDR, so
    a call is counted once. Creates the record when the caller is new."""
    k = key(account, caller)
    raw = txn.get(k, db=db)
    if raw is None:
        counts = [0] * 8
        tail: dict[str, object] = dict(_EMPTY_TAIL)
    else:
        counts = list(CRM_COUNTS.unpack_from(raw))
        tail = DECODE(bytes(raw[CRM_COUNTS.size:]))
    if at_ms < counts[_LAST_ANSWERED]:
        return
    counts[_LAST_ANSWERED] = at_ms
    tail["d"] = destination
    txn.put(k, CRM_COUNTS.pack(*counts) + ENCODE(tail), db=db)
