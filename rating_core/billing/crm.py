"""Caller CRM (来电客户): one record per account and caller, kept as calls
are committed.

Each committed call updates its caller's record once, in the same LMDB
write transaction that commits the call (``Engine.commit_prepared`` calls
``record``), so the CRM never counts a call twice or misses one that was
charged. Rated files can be added too (``update_from_calls``): call ids
already in the CRM are skipped, so feeding the same file twice changes
nothing. Nothing is recomputed from history: an update reads and writes
only the records of the callers in the batch.

Databases (in ``ledger.lmdb``, beside the committed calls):

=============  ================================  ==============================================
database       key                               value
=============  ================================  ==============================================
``crm``        account NUL caller (UTF-8)        ``COUNTS`` (below) + JSON {destination, city,
                                                 province, carrier, tags, notes}
``crm_seen``   call key (``ledger.call_key``)    empty: this call is counted
=============  ================================  ==============================================

``COUNTS``: first_ms, last_ms, calls, answered, talk_seconds,
last_answered_ms, last_missed_ms, called_back_ms (int64 little-endian;
times epoch ms, 0 = never). Talk time is the billable seconds.

A missed caller not yet called back: last_missed_ms > max(last_answered_ms,
called_back_ms) (a later answered call, or the enterprise marking the
callback, clears it). Caller numbers are shown masked (138****5678) unless
the reader's role may see them (``UNMASKED_ROLES``).
"""
from __future__ import annotations

import csv
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..ledger import call_key

CRM_DB = b"crm"
SEEN_DB = b"crm_seen"
COUNTS = struct.Struct("<qqqqqqqq")
UNMASKED_ROLES = frozenset({"admin", "owner", "supervisor"})
ROLES = ("agent", "supervisor", "owner", "admin")


@dataclass
class CallerRecord:
    """One caller of one account. Times epoch ms (0 = never); talk seconds."""

    account: str
    caller: str
    first_ms: int = 0
    last_ms: int = 0
    calls: int = 0
    answered: int = 0
    talk_seconds: int = 0
    last_answered_ms: int = 0
    last_missed_ms: int = 0
    called_back_ms: int = 0
    destination: str | None = None  # the destination that last answered
    city: str | None = None
    province: str | None = None
    carrier: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)  # {"at_ms", "text"}

    @property
    def missed(self) -> int:
        return self.calls - self.answered

    @property
    def awaiting_callback(self) -> bool:
        return self.last_missed_ms > max(self.last_answered_ms, self.called_back_ms)

    def encode(self) -> bytes:
        head = COUNTS.pack(self.first_ms, self.last_ms, self.calls, self.answered, self.talk_seconds,
                           self.last_answered_ms, self.last_missed_ms, self.called_back_ms)
        tail = {"d": self.destination, "c": self.city, "p": self.province, "k": self.carrier, "t": self.tags,
                "n": self.notes}
        return head + json.dumps(tail, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, key: bytes, raw: bytes) -> "CallerRecord":
        account, caller = bytes(key).decode().split("\0", 1)
        counts = COUNTS.unpack_from(raw)
        tail = json.loads(bytes(raw[COUNTS.size:]))
        return cls(account, caller, *counts, destination=tail["d"], city=tail["c"], province=tail["p"],
                   carrier=tail["k"], tags=tail["t"], notes=tail["n"])

    def as_dict(self, role: str = "agent") -> dict:
        return {
            "account": self.account, "caller": shown(self.caller, role), "first_ms": self.first_ms,
            "last_ms": self.last_ms, "calls": self.calls, "answered": self.answered, "missed": self.missed,
            "talk_seconds": self.talk_seconds, "last_answered_ms": self.last_answered_ms,
            "last_missed_ms": self.last_missed_ms, "called_back_ms": self.called_back_ms,
            "awaiting_callback": self.awaiting_callback, "destination": self.destination, "city": self.city,
            "province": self.province, "carrier": self.carrier, "tags": list(self.tags),
            "notes": list(self.notes),
        }


def mask(number: str) -> str:
    """138****5678: the first 3 and last 4 digits kept (shorter numbers: the
    first 2 and last 2)."""
    if len(number) >= 9:
        return number[:3] + "****" + number[-4:]
    if len(number) >= 5:
        return number[:2] + "****" + number[-2:]
    return "****"


def shown(number: str, role: str) -> str:
    """The caller number as ``role`` may see it."""
    return number if role in UNMASKED_ROLES else mask(number)


def _key(account: str, caller: str) -> bytes:
    return f"{account}\0{caller}".encode()


class CRM:
    """The CRM databases of a ledger (``rating_core.ledger.Ledger``)."""

    def __init__(self, ledger):
        self.ledger = ledger
        self.env = ledger.env
        self.db = self.env.open_db(CRM_DB)
        self.seen = self.env.open_db(SEEN_DB)

    # -- updates ---------------------------------------------------------------
    def record(self, txn, calls: pa.Table) -> int:
        """Count ``calls`` (``billing.calls.CALLS_SCHEMA``) inside the write
        ``txn``; call ids counted before are skipped. Returns calls counted."""
        if calls.num_rows == 0:
            return 0
        cols = {name: calls.column(name).to_pylist() for name in (
            "call_id", "account", "caller", "start_ms", "answered", "billable_seconds", "forwarded_to",
            "caller_city", "caller_province", "caller_carrier")}
        order = np.argsort(np.asarray(cols["start_ms"], np.int64), kind="stable")
        cache: dict[bytes, CallerRecord] = {}
        seen_put = []
        counted = 0
        seen_cursor = txn.cursor(db=self.seen)
        for i in order.tolist():
            caller = cols["caller"][i]
            if not caller:
                continue  # withheld caller id: nobody to remember
            ck = call_key(cols["call_id"][i])
            if seen_cursor.set_key(ck):
                continue
            seen_put.append((ck, b""))
            account = cols["account"][i]
            key = _key(account, caller)
            rec = cache.get(key)
            if rec is None:
                raw = txn.get(key, db=self.db)
                rec = CallerRecord.decode(key, raw) if raw is not None else CallerRecord(account, caller)
                cache[key] = rec
            at = cols["start_ms"][i]
            rec.first_ms = at if rec.calls == 0 else min(rec.first_ms, at)
            rec.last_ms = max(rec.last_ms, at)
            rec.calls += 1
            if cols["answered"][i]:
                rec.answered += 1
                rec.talk_seconds += cols["billable_seconds"][i]
                if at >= rec.last_answered_ms:
                    rec.last_answered_ms = at
                    rec.destination = cols["forwarded_to"][i]
            else:
                rec.last_missed_ms = max(rec.last_missed_ms, at)
            rec.city = cols["caller_city"][i] or rec.city
            rec.province = cols["caller_province"][i] or rec.province
            rec.carrier = cols["caller_carrier"][i] or rec.carrier
            counted += 1
        # Within one batch a call id may repeat only if the input did: the
        # put below makes the second copy see the first.
        if seen_put:
            txn.cursor(db=self.seen).putmulti(seen_put)
        txn.cursor(db=self.db).putmulti([(k, r.encode()) for k, r in cache.items()])
        return counted

    def update_from_calls(self, calls: pa.Table) -> int:
        """``record`` in a transaction of its own (rated files)."""
        with self.env.begin(write=True) as txn:
            return self.record(txn, calls)

    def _edit(self, account: str, caller: str, fn) -> CallerRecord:
        with self.env.begin(write=True) as txn:
            key = _key(account, caller)
            raw = txn.get(key, db=self.db)
            rec = CallerRecord.decode(key, raw) if raw is not None else CallerRecord(account, caller)
            fn(rec)
            txn.put(key, rec.encode(), db=self.db)
            return rec

    def tag(self, account: str, caller: str, add=(), remove=()) -> CallerRecord:
        """Attach and detach free-text tags (kept sorted, no duplicates)."""
        def change(rec):
            rec.tags = sorted((set(rec.tags) | set(add)) - set(remove))
        return self._edit(account, caller, change)

    def note(self, account: str, caller: str, text: str, at_ms: int) -> CallerRecord:
        """Append an after-sales note."""
        return self._edit(account, caller, lambda rec: rec.notes.append({"at_ms": at_ms, "text": text}))

    def called_back(self, account: str, caller: str, at_ms: int) -> CallerRecord:
        """The enterprise called this caller back at ``at_ms``."""
        def change(rec):
            rec.called_back_ms = max(rec.called_back_ms, at_ms)
        return self._edit(account, caller, change)

    # -- queries -----------------------------------------------------------------
    def get(self, account: str, caller: str) -> CallerRecord | None:
        with self.env.begin() as txn:
            key = _key(account, caller)
            raw = txn.get(key, db=self.db)
        return None if raw is None else CallerRecord.decode(key, raw)

    def callers(self, account: str, tag: str | None = None, awaiting_callback: bool = False,
                caller_prefix: str = "") -> list[CallerRecord]:
        """An account's callers (by number), optionally those with ``tag``,
        those awaiting a callback, or whose number starts with ``caller_prefix``."""
        prefix = _key(account, caller_prefix)
        out = []
        with self.env.begin() as txn:
            cur = txn.cursor(db=self.db)
            if cur.set_range(prefix):
                for k, v in cur:
                    if not bytes(k).startswith(prefix):
                        break
                    rec = CallerRecord.decode(k, v)
                    if tag is not None and tag not in rec.tags:
                        continue
                    if awaiting_callback and not rec.awaiting_callback:
                        continue
                    out.append(rec)
        return out


CSV_FIELDS = ("caller", "first_ms", "last_ms", "calls", "answered", "missed", "talk_seconds", "destination",
              "city", "province", "carrier", "awaiting_callback", "tags")


def export_csv(records: list[CallerRecord], path: str | Path, role: str = "agent") -> None:
    """Caller records to CSV (UTF-8 with BOM), numbers masked unless ``role``
    may see them."""
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for r in records:
            d = r.as_dict(role)
            d["tags"] = ";".join(d["tags"])
            w.writerow([d[k] for k in CSV_FIELDS])
