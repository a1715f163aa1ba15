"""Caller records (the ``crm`` database, ``formats``): the one store of
both the caller CRM (``rating_core.billing.crm``) and caller-memory routing
(``rating_core.router``), and the one place their bytes are read and written.

A record is ``formats.CRM_RECORD``: a version byte, flags, the 8
``CRM_COUNTS`` and four name ids (the destination that last answered, city,
province, carrier; 0 none) interned in ``crm_names`` / ``crm_name_ids``;
tags and notes, when a caller has any, are in ``crm_extra`` under the same
key. Records written before (``CRM_COUNTS`` + a msgspec JSON tail {d, c, p,
k, t, n}) are read as they are and rewritten in the current form the next
time anything writes them (``upgrade``).

Routing needs two fields: ``remember_answer`` (the ``answered`` call event)
writes the destination and its answer time, ``last_answer`` reads them back.
"""
from __future__ import annotations

from typing import NamedTuple

import msgspec

from . import formats
from .formats import CRM_COUNTS, CRM_HAS_EXTRA, CRM_RECORD, CRM_VERSION, NAME_ID

ENCODE = msgspec.json.Encoder().encode
DECODE = msgspec.json.Decoder().decode
_LAST_ANSWERED = 5  # index of last_answered_ms in CRM_COUNTS
_OLD_NAMES = ("d", "c", "p", "k")  # the older record's JSON keys of the four names


class Caller(NamedTuple):
    """A caller record as read: ``counts`` (``CRM_COUNTS``' 8 ints),
    ``names`` (destination, city, province, carrier; None unknown), ``tags``
    (list of str) and ``notes`` (list of {"at_ms", "text"})."""

    counts: list[int]
    names: list[str | None]
    tags: list[str]
    notes: list[dict]


EMPTY = Caller([0] * 8, [None] * 4, [], [])


def key(account: str, caller: str) -> bytes:
    """The record key: account NUL normalised caller number (UTF-8)."""
    return f"{account}\0{caller}".encode()


def is_current(raw: bytes | memoryview) -> bool:
    """Whether a stored record is a ``CRM_RECORD`` (the older form is
    always longer: its JSON tail alone is over 18 bytes)."""
    return len(raw) == CRM_RECORD.size and raw[0] == CRM_VERSION


def name_of(ledger, txn, name_id: int, cache: dict | None = None) -> str | None:
    """The name interned as ``name_id`` (0: None). ``cache``: a dict kept
    by the caller across reads in one transaction (ids are never reused,
    so a name read once stays that id's name)."""
    if name_id == 0:
        return None
    if cache is not None and name_id in cache:
        return cache[name_id]
    raw = txn.get(NAME_ID.pack(name_id), db=ledger.db[formats.CRM_NAMES])
    if raw is None:
        raise ValueError(f"crm: name id {name_id} is not in crm_names")
    name = bytes(raw).decode()
    if cache is not None:
        cache[name_id] = name
    return name


def intern(ledger, txn, names) -> list[int]:
    """The ids of ``names`` (str, or None: 0) inside the write ``txn``, a
    new id (the largest + 1) for a name not seen before. In the commit's
    own transaction, so an id exists exactly when the records using it do."""
    ids_db, names_db = ledger.db[formats.CRM_NAME_IDS], ledger.db[formats.CRM_NAMES]
    out = []
    nxt = 0
    for name in names:
        if name is None:
            out.append(0)
            continue
        k = formats.name_key(name)
        raw = txn.get(k, db=ids_db)
        if raw is None:
            if not nxt:
                cur = txn.cursor(db=names_db)
                nxt = NAME_ID.unpack(cur.key())[0] + 1 if cur.last() else 1
            txn.put(k, NAME_ID.pack(nxt), db=ids_db)
            txn.put(NAME_ID.pack(nxt), name.encode(), db=names_db)
            out.append(nxt)
            nxt += 1
        else:
            out.append(NAME_ID.unpack(raw)[0])
    return out


def read(ledger, txn, k: bytes, raw: bytes | memoryview, cache: dict | None = None) -> Caller:
    """The record ``raw`` stored under key ``k``, in either form."""
    if not is_current(raw):
        counts = list(CRM_COUNTS.unpack_from(raw))
        tail = DECODE(bytes(raw[CRM_COUNTS.size:]))
        return Caller(counts, [tail[n] for n in _OLD_NAMES], list(tail["t"]), list(tail["n"]))
    _, flags, *rest = CRM_RECORD.unpack(raw)
    tags: list[str] = []
    notes: list[dict] = []
    if flags & CRM_HAS_EXTRA:
        extra = txn.get(k, db=ledger.db[formats.CRM_EXTRA])
        if extra is not None:
            doc = DECODE(bytes(extra))
            tags, notes = list(doc["t"]), list(doc["n"])
    return Caller(rest[:8], [name_of(ledger, txn, i, cache) for i in rest[8:]], tags, notes)


def pack(ledger, txn, k: bytes, rec: Caller) -> bytes:
    """``rec`` as the ``CRM_RECORD`` to store under ``k``, inside the write
    ``txn``: its names interned, its tags and notes put in ``crm_extra``
    (or that entry removed when it has none)."""
    ids = intern(ledger, txn, rec.names)
    extra_db = ledger.db[formats.CRM_EXTRA]
    flags = 0
    if rec.tags or rec.notes:
        txn.put(k, ENCODE({"t": rec.tags, "n": rec.notes}), db=extra_db)
        flags = CRM_HAS_EXTRA
    else:
        txn.delete(k, db=extra_db)
    return CRM_RECORD.pack(CRM_VERSION, flags, *rec.counts, *ids)


def write(ledger, txn, k: bytes, rec: Caller) -> None:
    """Store ``rec`` under ``k`` (``pack``) inside the write ``txn``."""
    txn.put(k, pack(ledger, txn, k, rec), db=ledger.db[formats.CRM])


def upgrade(ledger, txn, k: bytes, raw: bytes) -> bytes:
    """A stored record of the older form as a ``CRM_RECORD`` (its names
    interned, tags and notes moved to ``crm_extra``), inside the write
    ``txn``; a current one as it is."""
    return raw if is_current(raw) else pack(ledger, txn, k, read(ledger, txn, k, raw))


def last_answer(ledger, txn, raw: bytes | memoryview | None) -> tuple[str | None, int]:
    """(destination that last answered, its answer time epoch ms) of a
    record read in ``txn``; (None, 0) for no record or a caller never answered."""
    if raw is None:
        return None, 0
    if not is_current(raw):
        rec = read(ledger, txn, b"", raw)
        return rec.names[0], rec.counts[_LAST_ANSWERED]
    at = CRM_COUNTS.unpack_from(raw, 2)[_LAST_ANSWERED]
    return name_of(ledger, txn, CRM_RECORD.unpack(raw)[10]), at


def remember_answer(ledger, txn, account: str, caller: str, destination: str, at_ms: int) -> None:
    """Inside a write ``txn`` of ``ledger.lmdb``: ``destination`` answered
    ``caller`` of ``account`` at ``at_ms``. Sets the record's destination and
    last_answered_ms unless it already holds a later answer (events may
    arrive out of order); counts are left to the commit of the call's CDR, so
    a call is counted once. Creates the record when the caller is new."""
    k = key(account, caller)
    raw = txn.get(k, db=ledger.db[formats.CRM])
    rec = EMPTY if raw is None else read(ledger, txn, k, raw)
    if at_ms < rec.counts[_LAST_ANSWERED]:
        return
    counts = list(rec.counts)
    counts[_LAST_ANSWERED] = at_ms
    write(ledger, txn, k, Caller(counts, [destination, *rec.names[1:]], rec.tags, rec.notes))
