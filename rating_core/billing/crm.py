"""Caller CRM (来电客户): one record per account and caller, kept as calls
are committed.

Each committed call updates its caller's record once, in the same LMDB
write transaction that commits the call (``Engine.commit_prepared`` calls
``record``), so the CRM never counts a call twice or misses one that was
charged. Rated files can be added too (``update_from_calls``): call ids
counted from files before, or committed to the ledger, are skipped, so
feeding the same file twice changes nothing. Nothing is recomputed from history: an update reads and writes
only the records of the callers in the batch.

Databases (in ``ledger.lmdb``, beside the committed calls; their formats
are in ``rating_core.ledger.formats``, read and written by
``rating_core.ledger.callers``): ``crm`` (one fixed-size record per account
NUL caller: counts and the ids of its destination, city, province and
carrier), the interned names, ``crm_extra`` (tags and notes) and
``crm_seen`` (call keys counted from rated files). Talk time is the
billable seconds.

The ``crm`` record is also caller memory: the router's ``answered`` call
event sets the destination that last answered and last_answered_ms
(``ledger.callers.remember_answer``, in a ledger write transaction), and
caller-memory routing reads them back (``ledger.callers.last_answer``). A
commit sets them only for an answered call that started at or after the
recorded answer (an earlier call's CDR committed later never overrides it),
so the call event's answer time is kept.

A missed caller not yet called back: last_missed_ms > max(last_answered_ms,
called_back_ms) (a later answered call, or the enterprise marking the
callback, clears it). Caller numbers are shown masked (138****5678) unless
the reader's role may see them (``UNMASKED_ROLES``).
"""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple, TextIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import cdr, layout
from ..errors import InvalidInput, NotFound
from ..kernels import crm as crm_kernel
from ..ledger import call_key, callers, formats
from ..cells import row as csv_row

CHUNK = 1 << 20  # calls merged at once: bounds the grouping's memory (about 200 bytes a call)
UNMASKED_ROLES = frozenset({"admin", "owner", "supervisor"})
ROLES = ("agent", "supervisor", "owner", "admin")
# Bounds on what people attach to one caller: the record is read and
# rewritten by every committed call of that caller (in the ledger's write
# transaction) and sent whole by ListCallers, so it must stay small
# (an unbounded one reached 25 MB: 1.5 s per RateCdr, breaker finding 31/32).
MAX_TAGS = 32
MAX_TAG_CHARS = 64
MAX_NOTES = 50
MAX_NOTE_CHARS = 4000
NO_CALLER_FILTER = "filtering by caller number needs a role that sees numbers (supervisor)"


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

    @classmethod
    def read(cls, ledger, txn, key: bytes, raw: bytes | memoryview, cache: dict | None = None) -> "CallerRecord":
        """The record stored under ``key`` (``callers.read``, either form);
        ``cache``: name ids read before in ``txn`` (``callers.name_of``)."""
        account, caller = bytes(key).decode().split("\0", 1)
        rec = callers.read(ledger, txn, bytes(key), raw, cache)
        first, last, calls, answered, talk, last_answered, last_missed, called_back = rec.counts
        destination, city, province, carrier = rec.names
        return cls(account, caller, first, last, calls, answered, talk, last_answered, last_missed, called_back,
                   destination=destination, city=city, province=province, carrier=carrier, tags=rec.tags,
                   notes=rec.notes)

    def write(self, ledger, txn) -> None:
        """Store this record inside the write ``txn`` (``callers.write``)."""
        counts = [self.first_ms, self.last_ms, self.calls, self.answered, self.talk_seconds, self.last_answered_ms,
                  self.last_missed_ms, self.called_back_ms]
        callers.write(ledger, txn, callers.key(self.account, self.caller),
                      callers.Caller(counts, [self.destination, self.city, self.province, self.carrier],
                                     list(self.tags), list(self.notes)))

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


def clean_tag(text: str, field: str = "tag") -> str:
    """A tag as stored: stripped, 1 to ``MAX_TAG_CHARS`` characters, no
    control character (``cdr.FORBIDDEN_TEXT``: NUL, newline, escape, DEL, C1,
    bidi controls, zero-width characters: they break the CSV export and
    terminals, or make two tags that print alike differ). Raises ``InvalidInput`` naming ``field``."""
    tag = text.strip()
    if not tag or len(tag) > MAX_TAG_CHARS:
        raise InvalidInput(field, f"a tag is 1 to {MAX_TAG_CHARS} characters")
    if bad := cdr.forbidden_characters(tag):
        raise InvalidInput(field, f"control characters are not allowed in a tag: {', '.join(bad)}")
    return tag


def removed_tag(text: str, field: str = "tag") -> str:
    """A tag to detach: stripped, 1 to ``MAX_TAG_CHARS`` characters (no
    other rule, so a tag stored before ``clean_tag``'s rules can still go).
    Raises ``InvalidInput`` naming ``field``."""
    tag = text.strip()
    if not tag or len(tag) > MAX_TAG_CHARS:
        raise InvalidInput(field, f"a tag is 1 to {MAX_TAG_CHARS} characters")
    return tag


def clean_note(text: str, field: str = "note") -> str:
    """A note as stored: 1 to ``MAX_NOTE_CHARS`` characters; newline and tab
    kept, no other control character (``cdr.FORBIDDEN_TEXT``: a bidi override
    would reorder what the next reader sees). Raises ``InvalidInput`` naming
    ``field``."""
    if not text.strip() or len(text) > MAX_NOTE_CHARS:
        raise InvalidInput(field, f"a note is 1 to {MAX_NOTE_CHARS} characters")
    if bad := cdr.forbidden_characters(text, "\n\t"):
        raise InvalidInput(field, f"control characters other than newline and tab are not allowed: {', '.join(bad)}")
    return text


# The columns of a call ``CRM.record`` merges (``CALLS_SCHEMA``'s names and types).
MERGE_COLUMNS = ("account", "caller", "start_ms", "answered", "billable_seconds", "forwarded_to", "caller_city",
                 "caller_province", "caller_carrier")


def rated_calls(rated: pa.Table) -> pa.Table:
    """The ``MERGE_COLUMNS`` of the rater's own rated rows (``Rater``
    output: every row rated, times as timestamps), for ``CRM.record`` at
    commit; what ``billing.calls.from_rated_table`` would give for these
    columns, without re-checking what the rater wrote, the names left
    dictionary-encoded as the rater wrote them (string or dictionary of
    strings: ``CRM.group`` takes both). Answered: ``rating_core.answered``."""
    from ..answered import answered

    def text(name):
        col = rated.column(name)
        return col if col.type == pa.string() else pc.cast(col, pa.string())

    billable = pc.cast(rated.column("billable_seconds"), pa.int64())
    return pa.table({
        "account": text("account"), "caller": text("caller"),
        "start_ms": pc.cast(rated.column("start"), pa.int64()),
        "answered": answered(rated),
        "billable_seconds": billable,
        # The names as the rater holds them (dictionary-encoded): ``CRM.group`` works on their codes.
        **{name: rated.column(name) for name in ("forwarded_to", "caller_city", "caller_province", "caller_carrier")},
    })


class CRM:
    """The CRM databases of a ledger (``rating_core.ledger.Ledger``)."""

    def __init__(self, ledger):
        self.ledger = ledger
        self.env = ledger.env
        self.db = ledger.db[formats.CRM]
        self.seen = ledger.db[formats.CRM_SEEN]

    # -- updates ---------------------------------------------------------------
    def record(self, txn, calls: pa.Table, fresh: bool = True) -> int:
        """Count ``calls`` (``billing.calls.CALLS_SCHEMA``) inside the write
        ``txn``. ``fresh``: the caller guarantees none was counted before
        (``Engine.commit_prepared`` passes only calls it commits now);
        otherwise call ids counted before, or committed to the ledger (and
        so counted at commit), are skipped and the rest remembered in
        ``crm_seen``. Returns the calls counted.

        The batch is aggregated per (account, caller) in one compiled pass
        first (``kernels.crm.group``); LMDB is read and written once per
        caller in the batch, in key order."""
        t = _counted(calls)
        if t.num_rows and not fresh:
            keys = [call_key(c) for c in t.column("call_id").to_pylist()]
            seen_cur = txn.cursor(db=self.seen)
            committed_cur = txn.cursor(db=self.ledger.db[formats.CALLS])
            new = np.fromiter((not seen_cur.set_key(k) and not committed_cur.set_key(k) for k in keys), bool,
                              count=len(keys))
            # A call id twice in one input: the first copy counts.
            new &= cdr.first_occurrences(t.column("call_id"))
            t = t.filter(pa.array(new))
            txn.cursor(db=self.seen).putmulti([(k, b"") for k, n in zip(keys, new) if n])
        return self.write(txn, self.group(t))

    def group(self, calls: pa.Table) -> "Grouped":
        """The part of ``record`` that reads no database: ``calls`` (every one
        to be counted, each with a caller and an account) aggregated per
        (account, caller) by ``kernels.crm.group``, in time-ordered chunks
        of ``CHUNK``; calls without a caller or an account are not counted.
        Pure (a commit runs it on another thread while its transaction does
        other work); ``write`` merges it into the records."""
        # Not combined into one chunk: the columns are read once each below
        # (NumPy copies; account and caller combined once for the kernel), so a
        # combined copy would be a second.
        t = calls.select(list(MERGE_COLUMNS))
        start = t.column("start_ms")
        as_float = start.to_numpy(zero_copy_only=False)  # NaN for an unknown start: never "in order"
        if len(as_float) > 1 and not (as_float[1:] >= as_float[:-1]).all():
            order = pc.sort_indices(start).to_numpy()  # stable: equal starts keep their order
        else:
            order = np.arange(t.num_rows, dtype=np.int64)
        # The calls not counted (no caller or no account) are left out of
        # the rows the kernel visits, not filtered out of the columns (a
        # copy of every column for the few calls without a caller).
        counted = _counted_rows(t)
        if counted is not None:
            order = order[counted[order]]
        if len(order) == 0:
            return Grouped(0, [])
        # The calls' columns for ``kernels.crm.group``, in row order; the
        # rows are visited in time order where they are (no reordered copy).
        # "Latest wins" for the names is the latest call holding a known
        # value; the destination counts on answered calls only; an empty
        # city/province/carrier is unknown, as ``x or stored``. Each name
        # column as dictionary codes (-1 null): a caller's name is then
        # the code its latest row holds, interned by ``write``. The record
        # keys (account NUL caller, as bytes) are made by the kernel from the
        # two columns, for the distinct callers only, in key order.
        account, caller = _one_string(t.column("account")), _one_string(t.column("caller"))
        answered = t.column("answered")
        state = np.where(pc.fill_null(answered, False).to_numpy(zero_copy_only=False), 1, 0).astype(np.uint8)
        if answered.null_count:
            state[pc.is_null(answered).to_numpy(zero_copy_only=False)] = 2  # neither answered nor missed
        coded = [_codes(t.column(col)) for _, col in _NAMES]
        known = np.empty((4, t.num_rows), np.uint8)
        known[0] = (state == 1) & (coded[0][1] >= 0)
        for f in range(1, 4):
            values, codes = coded[f]
            nonempty = np.append(pc.fill_null(pc.not_equal(values, ""), False).to_numpy(zero_copy_only=False), False)
            known[f] = nonempty[codes]  # code -1 (null): the appended False
        rank, ranked = _sort_shortcut(account)
        columns = (_offsets(account), _data(account), _offsets(caller), _data(caller), rank, ranked,
                   np.ascontiguousarray(pc.fill_null(start, 0).to_numpy(), np.int64),
                   pc.is_valid(start).to_numpy(zero_copy_only=False).view(np.uint8), state,
                   np.ascontiguousarray(pc.fill_null(t.column("billable_seconds"), 0).to_numpy(), np.int64), known)
        # Merged in time-ordered chunks: merging chunk after chunk gives the
        # records merging the whole batch gives (the rules are min/max/sum
        # and "latest wins"). A chunk is up to a million calls, so a commit
        # reads and writes its callers' pages in key order once (the B-tree
        # work is most of a merge's cost).
        chunks = []
        for lo in range(0, len(order), CHUNK):
            rows = np.ascontiguousarray(order[lo:lo + CHUNK], np.int64)
            keys, agg, last = crm_kernel.group(*columns[:6], rows, *columns[6:])
            names = [(values, np.where(at >= 0, codes[at], -1)) for (values, codes), at in zip(coded, last)]
            chunks.append((keys, agg, names))
        return Grouped(len(order), chunks)

    def write(self, txn, grouped: "Grouped") -> int:
        """Merge ``group``'s aggregates into the stored records inside the
        write ``txn``, chunk after chunk (merging chunk after chunk gives
        what merging the whole batch gives). Returns the calls counted."""
        for keys, agg, names in grouped.chunks:
            txn.cursor(db=self.db).putmulti(_merge(self.ledger, txn, keys, agg, names))
        return grouped.calls

    def update_from_calls(self, calls: pa.Table) -> int:
        """``record`` in a transaction of its own (rated files: call ids
        counted before, or committed to the ledger, are skipped)."""
        with self.ledger.durable() as txn:  # full: LedgerFull
            return self.record(txn, calls, fresh=False)

    def _edit(self, account: str, caller: str, fn) -> CallerRecord:
        """Change the record of a caller who called ``account``; ``NotFound``
        (field ``caller``) for a number that never did: the CRM holds callers,
        not numbers typed in (no records without calls, dated 1970)."""
        with self.ledger.durable() as txn:  # full: LedgerFull
            key = callers.key(account, caller)
            raw = txn.get(key, db=self.db)
            if raw is None:
                raise NotFound("caller", f"{caller} never called account {account}")
            rec = CallerRecord.read(self.ledger, txn, key, raw)
            fn(rec)
            rec.write(self.ledger, txn)
            return rec

    def tag(self, account: str, caller: str, add=(), remove=(), fields=("add", "remove")) -> CallerRecord:
        """Attach and detach free-text tags (kept sorted, no duplicates; each
        tag attached checked by ``clean_tag``, at most ``MAX_TAGS`` per
        caller). A tag detached only needs to be 1 to ``MAX_TAG_CHARS``
        characters, so one stored before these rules can still go.
        ``fields``: the names of ``add`` and ``remove`` in errors. Raises
        ``InvalidInput``, ``NotFound`` (``caller``) for a caller who never
        called."""
        added = {clean_tag(t, f"{fields[0]}[{i}]") for i, t in enumerate(add)}
        removed = {removed_tag(t, f"{fields[1]}[{i}]") for i, t in enumerate(remove)}

        def change(rec):
            tags = sorted((set(rec.tags) | added) - removed)
            if len(tags) > MAX_TAGS and len(tags) > len(rec.tags):
                raise InvalidInput(fields[0], f"at most {MAX_TAGS} tags per caller ({len(tags)} asked)")
            rec.tags = tags
        return self._edit(account, caller, change)

    def note(self, account: str, caller: str, text: str, at_ms: int) -> CallerRecord:
        """Append an after-sales note (``clean_note``; at most ``MAX_NOTES``
        per caller). Raises ``InvalidInput`` (``note``), ``NotFound``
        (``caller``) for a caller who never called."""
        text = clean_note(text)

        def change(rec):
            if len(rec.notes) >= MAX_NOTES:
                raise InvalidInput("note", f"at most {MAX_NOTES} notes per caller")
            rec.notes.append({"at_ms": at_ms, "text": text})
        return self._edit(account, caller, change)

    def called_back(self, account: str, caller: str, at_ms: int) -> CallerRecord:
        """The enterprise called this caller back at ``at_ms``. Raises
        ``NotFound`` (``caller``) for a caller who never called."""
        def change(rec):
            rec.called_back_ms = max(rec.called_back_ms, at_ms)
        return self._edit(account, caller, change)

    # -- queries -----------------------------------------------------------------
    def get(self, account: str, caller: str) -> CallerRecord | None:
        with self.env.begin() as txn:
            key = callers.key(account, caller)
            raw = txn.get(key, db=self.db)
            return None if raw is None else CallerRecord.read(self.ledger, txn, key, raw)

    def callers(self, account: str, tag: str | None = None, awaiting_callback: bool = False,
                caller_prefix: str = "", skip: int = 0, limit: int | None = None) -> list[CallerRecord]:
        """An account's callers (by number), optionally those with ``tag``,
        those awaiting a callback, or whose number starts with ``caller_prefix``;
        of those, ``limit`` (None: all) after the first ``skip`` (a page)."""
        prefix = callers.key(account, caller_prefix)
        out: list[CallerRecord] = []
        names: dict[int, str] = {}  # name ids read so far
        with self.env.begin() as txn:
            cur = txn.cursor(db=self.db)
            if cur.set_range(prefix):
                for k, v in cur:
                    if not bytes(k).startswith(prefix):
                        break
                    rec = CallerRecord.read(self.ledger, txn, k, v, names)
                    if tag is not None and tag not in rec.tags:
                        continue
                    if awaiting_callback and not rec.awaiting_callback:
                        continue
                    if skip:
                        skip -= 1
                        continue
                    if limit is not None and len(out) >= limit:
                        break
                    out.append(rec)
        return out


# The names a caller record keeps, by aggregate name and ``MERGE_COLUMNS`` column.
_NAMES = (("dest", "forwarded_to"), ("city", "caller_city"), ("province", "caller_province"),
          ("carrier", "caller_carrier"))


def _counted(calls: pa.Table) -> pa.Table:
    """The calls the CRM counts: those with a caller and an account."""
    caller, account = calls.column("caller"), calls.column("account")
    # Usually every call has both: no filtered copy then (told by null
    # counts and the shortest caller, not a string compare).
    if caller.null_count or account.null_count or (len(caller) and pc.min(pc.binary_length(caller)).as_py() == 0):
        return calls.filter(pc.and_(pc.fill_null(pc.not_equal(caller, ""), False), pc.is_valid(account)))
    return calls


def _counted_rows(calls: pa.Table) -> np.ndarray | None:
    """``_counted`` as a bool per row, or None when every call counts."""
    caller, account = calls.column("caller"), calls.column("account")
    if caller.null_count or account.null_count or (len(caller) and pc.min(pc.binary_length(caller)).as_py() == 0):
        return pc.and_(pc.fill_null(pc.not_equal(caller, ""), False), pc.is_valid(account)).to_numpy(
            zero_copy_only=False)
    return None


class Grouped(NamedTuple):
    """``CRM.group``'s result: the calls counted, and per chunk the sorted
    distinct record keys, their aggregates and names (``_merge``'s input)."""

    calls: int
    chunks: list


def _sort_shortcut(account: pa.Array) -> tuple[np.ndarray, bool]:
    """Per call, the rank of its account among the batch's accounts in byte
    order, so ``kernels.crm.group`` sorts a million keys mostly on
    integers: key = account NUL caller, and an account holds no NUL, so
    keys of different accounts are in the order of their accounts. (zeros,
    False): no shortcut, when an account holds a NUL."""
    n = len(account)
    enc = pc.dictionary_encode(account)
    names = enc.dictionary
    if not len(names) or pc.any(pc.match_substring(names, "\0")).as_py():
        return np.zeros(n, np.int64), False
    rank_of = np.empty(len(names), np.int64)
    rank_of[pc.sort_indices(names).to_numpy()] = np.arange(len(names))
    # A call without an account (not counted, never visited): rank 0.
    return np.ascontiguousarray(rank_of[pc.fill_null(enc.indices, 0).to_numpy(zero_copy_only=False)]), True


def _one_string(column: pa.ChunkedArray) -> pa.Array:
    """A string column as one ``pa.string()`` array (int32 offsets: what
    ``kernels.crm.group`` reads)."""
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return col if col.type in (pa.string(), pa.binary()) else pc.cast(col, pa.string())


def _offsets(strings: pa.Array) -> np.ndarray:
    """The int32 offsets of a string or binary array, from its offset (len + 1)."""
    raw = strings.buffers()[1]
    return np.ascontiguousarray(np.frombuffer(raw, np.int32)[strings.offset:strings.offset + len(strings) + 1])


def _data(strings: pa.Array) -> np.ndarray:
    """The character buffer of a string or binary array (one byte when empty)."""
    data = strings.buffers()[2]
    return np.frombuffer(data, np.uint8) if data is not None and data.size else np.zeros(1, np.uint8)


def _codes(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """A string column as (distinct values, int64 code per row; -1 null):
    its own dictionary when it has one (the rater's names), else encoded."""
    if isinstance(column, pa.ChunkedArray):
        if pa.types.is_dictionary(column.type) and column.num_chunks > 1:
            column = column.unify_dictionaries()  # requests of a group commit: one dictionary each
        col = column.combine_chunks()
    else:
        col = column
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    values = col.dictionary
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    return values, pc.fill_null(col.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _merge(ledger, txn, keys: list[bytes], agg: np.ndarray,
           names: list[tuple[pa.Array, np.ndarray]]) -> Iterator[tuple[bytes, bytes]]:
    """The new ``crm`` records of the g callers ``keys`` (sorted, distinct)
    aggregated in ``agg`` (``kernels.crm.group``) with ``names`` (per name:
    destination, city, province, carrier, its distinct values and each
    caller's code among them, -1 none in the batch), inside the write
    ``txn``: the names the batch sets interned (``callers.intern``), the
    stored records read in key order (``_stored``) and merged in one pass by
    ``kernels.crm.merge``, whose rules are a ``CallerRecord`` updated call
    by call (tests/test_crm.py checks them). Stored records of the older
    form are upgraded first (``callers.upgrade``). Yields (key, record)
    pairs in key order."""
    g = len(keys)
    ids = np.zeros((4, g), np.uint32)
    for f, (values, codes) in enumerate(names):
        seen = np.zeros(len(values), np.bool_)  # the codes the batch uses, by a bitmap (no sort)
        seen[codes[codes >= 0]] = True
        used = np.flatnonzero(seen)
        if len(used):
            lut = np.zeros(len(values), np.uint32)
            lut[used] = callers.intern(ledger, txn, values.take(pa.array(used)).to_pylist())
            ids[f] = np.where(codes >= 0, lut[np.maximum(codes, 0)], 0)
    db = ledger.db[formats.CRM]
    values, stale = crm_kernel.merge(keys, _stored(txn, db, keys), agg, ids)
    if stale:  # records of the older form: upgraded once, then merged as the rest
        for k, raw in stale:
            txn.put(k, callers.upgrade(ledger, txn, k, raw), db=db)
        values, stale = crm_kernel.merge(keys, _stored(txn, db, keys), agg, ids)
    return zip(keys, cast("list[bytes]", values))  # none left None: every stored record is current now


# A batch whose callers are at least this share of the stored records reads
# them by walking a cursor from its first key (each record a step to the
# next) instead of a lookup per key (a B-tree descent each).
WALK_SHARE = 2 / 3


def _stored(txn, db, keys: list[bytes]):
    """The stored (key, record) pairs among the sorted ``keys``, in key
    order, possibly with others between them (``kernels.crm.merge`` skips
    them): a cursor walk from the first key when the batch touches most of
    the records (``WALK_SHARE``), else one ``getmulti``."""
    cursor = txn.cursor(db=db)
    if keys and len(keys) >= WALK_SHARE * txn.stat(db)["entries"]:
        return cursor.iternext() if cursor.set_range(keys[0]) else iter(())
    return cursor.getmulti(keys)


# The CSV is for people (a spreadsheet): times as local date-times
# (Asia/Shanghai), the callback flag as yes / no. Programs read ListCallers.
CSV_FIELDS = ("caller", "first_call", "last_call", "calls", "answered", "missed", "talk_seconds", "destination",
              "city", "province", "carrier", "awaiting_callback", "tags", "notes")


def notes_text(notes: list[dict], sep: str = " | ") -> str:
    """After-sales notes as one text, oldest first, each ``YYYY-MM-DD HH:MM:SS
    text`` (Asia/Shanghai), joined by ``sep``; a note's own line breaks and
    tabs become spaces (a CSV cell or a table cell is one line)."""
    return sep.join(f"{_local(int(n.get('at_ms', 0)))} {' '.join(str(n.get('text', '')).split())}".strip()
                    for n in notes)


def _local(ms: int) -> str:
    """Epoch ms -> ``YYYY-MM-DD HH:MM:SS`` Asia/Shanghai; "" for never (0)."""
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, layout.LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def export_csv(records: list[CallerRecord], path: str | Path, role: str = "agent") -> None:
    """Caller records to CSV (UTF-8 with BOM), numbers masked unless ``role``
    may see them."""
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        write_csv(records, f, role)


def write_csv(records: list[CallerRecord], f: TextIO, role: str = "agent") -> None:
    """Caller records as CSV rows (header ``CSV_FIELDS``) to the text file
    ``f``, numbers masked unless ``role`` may see them; text cells that
    start like a formula are neutralised (``cells.cell``)."""
    w = csv.writer(f)
    w.writerow(CSV_FIELDS)
    for r in records:
        d = r.as_dict(role)
        d["tags"] = ";".join(d["tags"])
        d["first_call"], d["last_call"] = _local(d["first_ms"]), _local(d["last_ms"])
        d["awaiting_callback"] = "yes" if d["awaiting_callback"] else "no"
        d["notes"] = notes_text(d["notes"])
        w.writerow(csv_row(d[k] for k in CSV_FIELDS))
