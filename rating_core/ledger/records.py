"""Committed rated records: Arrow IPC batches plus a call-id index.

A commit stores its rated rows once, as one Arrow IPC stream value in
``call_batches`` under a new batch id, and one 12-byte ``COMMITTED`` entry
(batch id, row) per call id in ``calls``. No per-row encoding happens in
Python, the columns keep their types (int64 money, int64 epoch-ms times,
dictionary strings), and a replay reads the batch and takes its rows.

Records written by earlier versions (8-byte layout id + a JSON list of
values, column names under ``call_layouts``) are still read, so call ids
committed before an upgrade are replayed, never charged again.
"""
from __future__ import annotations

import functools
import hashlib
import json
from typing import cast

import lmdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import cdr, layout
from ..kernels.crm import call_entries
from ..numbers import string_buffers
from . import formats
from .formats import BATCH_KEY, COMMITTED, COUNT, MAX_KEY, MONTH_BATCH, call_key

# Batches are LZ4-compressed Arrow buffers (the IPC format's own compression,
# read back transparently): a rated row is about 210 bytes as it is, 78
# compressed (demo CDRs), so a commit writes and fsyncs 2.7x fewer bytes
# for about 0.2 CPU-seconds per million rows.
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


def _next_batch(ledger, txn: lmdb.Transaction) -> int:
    db = ledger.db[formats.META]
    raw = txn.get(formats.NEXT_BATCH, db=db)
    n = COUNT.unpack(raw)[0] if raw is not None else 1
    txn.put(formats.NEXT_BATCH, COUNT.pack(n + 1), db=db)
    return n


def times_as_ms(table: pa.Table) -> pa.Table:
    """Timestamp columns as int64 epoch ms (the stored form)."""
    cols = [pc.cast(c, pa.int64()) if pa.types.is_timestamp(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(cols, names=table.column_names)


def call_keys(call_ids: pa.Array | pa.ChunkedArray) -> pa.BinaryArray:
    """``formats.call_key`` of every id of a string column, column-wise
    (ids longer than ``MAX_KEY`` bytes through ``call_key``). Raises
    ``ValueError`` for a null or empty id."""
    keys = pc.cast(call_ids, pa.binary())
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if len(keys) == 0:
        return keys
    lengths = pc.binary_length(keys)
    if keys.null_count or pc.min(lengths).as_py() == 0:
        raise ValueError("call_id: required")
    if pc.max(lengths).as_py() > MAX_KEY:
        keys = pa.array([call_key(i) for i in call_ids.to_pylist()], pa.binary())
    return keys


def committed(ledger, txn: lmdb.Transaction, keys: list[bytes]) -> dict[bytes, bytes]:
    """The stored entries of those call keys that were committed before."""
    if not keys:
        return {}
    return dict(cast("list[tuple[bytes, bytes]]", txn.cursor(db=ledger.db[formats.CALLS]).getmulti(keys)))  # no buffers


def committed_entries(ledger, txn: lmdb.Transaction, keys: list[bytes]) -> pa.BinaryArray:
    """``committed`` as one Arrow column: the stored entry of each of
    ``keys`` (call keys, same order), null for a key not committed. What a
    replay carries to ``load_table``; no dict of the entries is made (for a
    file of 1M committed calls it was a third of the lookup's cost).

    ``getmulti`` answers the keys found, in the order asked (a key asked
    twice, twice): when it found them all, its values are the column as
    they come; else each key is placed by ``index_in`` of the keys found."""
    n = len(keys)
    if not n:
        return pa.array([], pa.binary())
    found = txn.cursor(db=ledger.db[formats.CALLS]).getmulti(keys)  # no buffers: bytes outlive the txn
    if not found:
        return pa.nulls(n, pa.binary())
    held, values = zip(*found)
    entries = pa.array(values, pa.binary())
    if len(found) == n:
        return entries
    at = pc.index_in(pa.array(keys, pa.binary()), value_set=pa.array(held, pa.binary()))
    return entries.take(at)


def key_range(ledger, txn: lmdb.Transaction) -> tuple[bytes, bytes] | None:
    """(first, last) call key the ledger holds committed, in key order
    (two cursor reads), or None when it holds none: a key outside the
    range is surely not committed (a dry job's prefilter, ``engine.Replays``)."""
    cur = txn.cursor(db=ledger.db[formats.CALLS])
    if not cur.first():
        return None
    lo = bytes(cur.key())
    cur.last()
    return lo, bytes(cur.key())


def all_keys(ledger, txn: lmdb.Transaction) -> pa.BinaryArray:
    """Every call key the ledger holds committed, in key order (a cursor
    walk over the keys: for a ledger small beside the calls asked about,
    ``engine.Replays``)."""
    cur = txn.cursor(db=ledger.db[formats.CALLS])
    return pa.array(list(cur.iternext(keys=True, values=False)), pa.binary())


def encode(records: pa.Table) -> pa.Buffer:
    """A batch as ``call_batches`` stores it: one Arrow IPC stream, LZ4
    buffers. Touches no database (a commit may run it on another thread
    while its transaction does other work)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, records.schema, options=_IPC_OPTIONS) as w:
        w.write_table(records)
    return sink.getvalue()


def store(ledger, txn: lmdb.Transaction, keys: pa.BinaryArray, records: pa.Table,
          blob: pa.Buffer | None = None) -> int:
    """Store ``records`` (row i is the call ``keys[i]``, ``call_keys``) as
    one batch inside the write ``txn``; returns the batch id. ``blob``:
    ``encode(records)`` when the caller made it already. The 12-byte
    entries are made and ordered by one kernel (``kernels.crm.call_entries``)
    and put in key order (LMDB then fills each page once instead of
    revisiting pages at random)."""
    batch = store_entries(ledger, txn, keys, records)
    put_batch(ledger, txn, batch, encode(records) if blob is None else blob)
    return batch


def put_batch(ledger, txn: lmdb.Transaction, batch: int, blob: pa.Buffer) -> None:
    """The value of batch ``batch`` (``encode`` of its records): the rest of
    ``store`` after ``store_entries``, in the same write ``txn`` (a commit
    puts it last, once its encoding on another thread is done; nothing in a
    commit reads a batch's value)."""
    txn.put(BATCH_KEY.pack(batch), blob, db=ledger.db[formats.CALL_BATCHES])  # no copy: a buffer


def store_entries(ledger, txn: lmdb.Transaction, keys: pa.BinaryArray, records: pa.Table) -> int:
    """``store`` without the batch's value: the batch id taken, the call
    entries and the account index written; returns the batch id, whose
    value ``put_batch`` must put before ``txn`` commits."""
    batch = _next_batch(ledger, txn)
    if len(keys):
        ordered, entries = call_entries(*string_buffers(keys), batch)
        txn.cursor(db=ledger.db[formats.CALLS]).putmulti(zip(ordered, entries))
    _index_batch(ledger, txn, batch, records)
    return batch


@functools.lru_cache(maxsize=1 << 20)
def account_digest(account: str) -> int:
    """An account as ``account_batches`` lists it: the first 8 bytes of its
    blake2b digest as a little-endian uint64 (fixed size whatever the name;
    a collision only adds a batch to read, whose rows are filtered by
    account anyway)."""
    return int.from_bytes(hashlib.blake2b(account.encode(), digest_size=8).digest(), "little")


def local_months(start_ms: np.ndarray) -> np.ndarray:
    """Epoch ms -> year*12 + month-1 of the Asia/Shanghai local date."""
    days = (np.asarray(start_ms, np.int64) + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) + 1970 * 12


def _index_batch(ledger, txn: lmdb.Transaction, batch: int, records: pa.Table) -> None:
    """One ``account_batches`` entry per local month the batch's calls start
    in: the sorted digests of the accounts with calls in it. The distinct
    (account, month) pairs are found on integer codes in NumPy; a batch
    writes one value per month (appended: batch ids grow), never touching
    the entries of earlier batches."""
    meta = ledger.db[formats.META]
    if txn.get(formats.INDEXED_FROM, db=meta) is None:  # batches before this one were never indexed
        txn.put(formats.INDEXED_FROM, COUNT.pack(batch), db=meta)
    if not records.num_rows or "account" not in records.column_names or "start" not in records.column_names:
        return
    acc = records.column("account").combine_chunks()
    start = records.column("start").combine_chunks()
    if acc.null_count:
        keep = pc.is_valid(acc)
        acc, start = acc.filter(keep), start.filter(keep)
    if not pa.types.is_dictionary(acc.type):
        acc = pc.dictionary_encode(acc)
    if not len(acc):
        return
    codes = acc.indices.to_numpy().astype(np.int64)
    months = local_months(start.to_numpy())
    m0 = int(months.min())
    span = int(months.max()) - m0 + 1
    n_codes = len(acc.dictionary)
    pair = (months - m0) * n_codes + codes
    if n_codes * span <= max(8 * len(pair), 1 << 20):  # distinct pairs by a bitmap: O(rows)
        seen = np.zeros(n_codes * span, np.bool_)
        seen[pair] = True
        pairs = np.flatnonzero(seen)
    else:  # a batch spanning many months: by a sort
        pair.sort()
        pairs = pair[np.r_[True, pair[1:] != pair[:-1]]]
    month, code = np.divmod(pairs, n_codes)  # sorted by month
    digests = _digests(acc.dictionary)
    cut = np.flatnonzero(np.r_[True, month[1:] != month[:-1]]).tolist() + [len(month)]
    db = ledger.db[formats.ACCOUNT_BATCHES]
    for a, z in zip(cut, cut[1:]):
        txn.put(MONTH_BATCH.pack(int(month[a]) + m0, batch), np.unique(digests[code[a:z]]).tobytes(), db=db)


# [(dictionary, its digests)]: commits reuse the rater's account dictionary.
_LAST_DIGESTS: list[tuple] = [(None, None)]


def _digests(dictionary: pa.Array) -> np.ndarray:
    """``account_digest`` of each value of an account dictionary (``<u8``)."""
    last, digests = _LAST_DIGESTS[0]
    if last is None or not last.equals(dictionary):
        digests = np.array([account_digest(a) for a in dictionary.to_pylist()], "<u8")
        _LAST_DIGESTS[0] = (dictionary, digests)
    return digests


def account_batches(ledger, txn: lmdb.Transaction, account: str, lo_ms: int | None,
                    hi_ms: int | None) -> list[int]:
    """Batch ids that may hold calls of ``account`` starting in [lo_ms,
    hi_ms) (None: unbounded), ascending: the indexed ones whose month lists
    the account (a binary search in each month's value), and every batch
    committed before the index began."""
    meta = ledger.db[formats.META]
    raw = txn.get(formats.INDEXED_FROM, db=meta)
    first_indexed = COUNT.unpack(raw)[0] if raw is not None else None
    out: set[int] = set()
    if first_indexed is None or first_indexed > 1:  # legacy batches: no index entries, read them all
        cur = txn.cursor(db=ledger.db[formats.CALL_BATCHES])
        for key in cur.iternext(keys=True, values=False):
            b = BATCH_KEY.unpack(key)[0]
            if first_indexed is not None and b >= first_indexed:
                break
            out.add(b)
    if first_indexed is not None:
        target = np.uint64(account_digest(account))
        m_lo = int(local_months(np.array([lo_ms]))[0]) if lo_ms is not None else 0
        m_hi = int(local_months(np.array([hi_ms - 1]))[0]) if hi_ms is not None else (1 << 32) - 1
        cur = txn.cursor(db=ledger.db[formats.ACCOUNT_BATCHES])
        if cur.set_range(MONTH_BATCH.pack(m_lo, 0)):
            for key, value in cur:
                m, b = MONTH_BATCH.unpack(key)
                if m > m_hi:
                    break
                listed = np.frombuffer(value, "<u8")
                i = int(np.searchsorted(listed, target))
                if i < len(listed) and listed[i] == target:
                    out.add(b)
    return sorted(out)


def read_batch(blob, batch: int) -> pa.Table:
    """The records of batch ``batch`` (its ``call_batches`` value) with this
    version's column names: a batch committed by an earlier version names
    the money columns as it did (``cdr.rated_columns``)."""
    return cdr.rated_columns(pa.ipc.open_stream(blob).read_all(), f"ledger batch {batch}")


# ``COMMITTED`` as NumPy reads it in place (12 bytes, no padding).
_ENTRY = np.dtype([("batch", "<u8"), ("row", "<u4")])
assert _ENTRY.itemsize == COMMITTED.size


def _entry_array(entries: pa.Array | pa.ChunkedArray | list) -> pa.BinaryArray:
    """Entries as one ``pa.binary()`` array (a list of bytes, or a column)."""
    if isinstance(entries, list):
        return pa.array([bytes(e) for e in entries], pa.binary())
    if isinstance(entries, pa.ChunkedArray):
        entries = entries.combine_chunks()
    return entries if entries.type == pa.binary() else entries.cast(pa.binary())


def _batch_rows(entries: pa.BinaryArray) -> np.ndarray:
    """``COMMITTED.unpack`` of every entry of ``entries`` (each exactly
    ``COMMITTED.size`` bytes, none null), read in place from the Arrow data
    buffer: a structured array (``_ENTRY``: batch id, row), one per entry.
    Fixed sizes mean the values lie back to back from the first offset."""
    n = len(entries)
    offsets = np.frombuffer(entries.buffers()[1], np.int32, count=n + 1, offset=4 * entries.offset)
    return np.frombuffer(entries.buffers()[2], _ENTRY, count=n, offset=int(offsets[0]))


def load_table(ledger, txn: lmdb.Transaction, entries: pa.Array | pa.ChunkedArray | list[bytes],
               schema: pa.Schema, last_batch: list | None = None) -> pa.Table:
    """``load`` as a table of ``schema`` (one row per entry, same order),
    column-wise: ``entries`` (``committed`` values, none null: a binary
    column or a list) are decoded by NumPy in place, each batch read once,
    its rows taken and cast once to ``schema`` (epoch ms to its
    timestamps, dictionary names to strings or back); a column the stored
    records lack is null. Records of the legacy JSON layout go through
    ``load``. No Python object is made per row: ``load`` made every row a
    dict (45 CPU s per 1M replayed rows against the job's 3), and a loop
    here unpacking each entry (plus the entries' ``to_pylist``) was still
    about 8% of a dry replay of 2M committed calls (py-spy samples).
    ``last_batch``: [batch id, its records] of the batch read last, kept
    by a caller answering several requests (one thread) and updated here:
    a batch is never rewritten once committed (ids only grow), so the copy
    stays true; one slot, so it holds at most one decoded batch.
    ``ValueError`` for a null entry."""
    entries = _entry_array(entries)
    n = len(entries)
    if not n:
        return schema.empty_table()
    if entries.null_count:
        raise ValueError("load_table: a null entry (a call id not committed)")
    fixed = pc.equal(pc.binary_length(entries), COMMITTED.size).to_numpy(zero_copy_only=False)
    legacy = np.flatnonzero(~fixed)
    current = np.flatnonzero(fixed)
    parts: list[pa.Table] = []
    order: list[np.ndarray] = []  # entry positions of the parts' rows, in parts order
    if len(current):
        decoded = _batch_rows(entries if not len(legacy) else entries.take(pa.array(current)))
        batch, row = decoded["batch"], decoded["row"].astype(np.int64)
        # Grouped by batch, stably: each group's positions ascend, so the
        # rows of a file committed as one batch come out in entry order
        # (no reordering take below).
        by = np.argsort(batch, kind="stable")
        cuts = np.flatnonzero(batch[by][1:] != batch[by][:-1]) + 1
        for at in np.split(by, cuts):
            b = int(batch[at[0]])
            if last_batch is not None and last_batch[0] == b:
                table = last_batch[1]
            else:
                table = read_batch(txn.get(BATCH_KEY.pack(b), db=ledger.db[formats.CALL_BATCHES]), b)
                if last_batch is not None:
                    last_batch[:] = [b, table]
            # Taken (copied), never sliced: a slice would keep the whole
            # decoded batch (all its calls, maybe millions) alive with the
            # answer, once per chunk of a job still writing it.
            parts.append(_conform(table.take(pa.array(row[at])), schema))
            order.append(current[at])
    if len(legacy):
        parts.append(pa.Table.from_pylist(load(ledger, txn, entries.take(pa.array(legacy)).to_pylist()),
                                          schema=schema))
        order.append(legacy)
    both = pa.concat_tables(parts)
    placed = np.concatenate(order)
    if (placed == np.arange(n)).all():  # the parts already in entry order (one batch, no legacy): no take
        return both
    inverse = np.empty(n, np.int64)
    inverse[placed] = np.arange(n)
    return both.take(pa.array(inverse))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns as ``schema`` has them (cast; missing: null)."""
    cols = []
    for f in schema:
        if f.name not in table.column_names:
            cols.append(pa.nulls(table.num_rows, f.type))
            continue
        col = table.column(f.name)
        if col.type != f.type:
            if pa.types.is_dictionary(col.type) and not pa.types.is_dictionary(f.type):
                col = col.cast(col.type.value_type)
            col = col.cast(f.type)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)


def load(ledger, txn: lmdb.Transaction, entries: list[bytes]) -> list[dict]:
    """The stored records (dicts, times as epoch ms, this version's column
    names: ``read_batch``) of ``committed`` entries."""
    out: list[dict | None] = [None] * len(entries)
    by_batch: dict[int, list[tuple[int, int]]] = {}
    for i, raw in enumerate(entries):
        raw = bytes(raw)
        if len(raw) == COMMITTED.size:
            batch, row = COMMITTED.unpack(raw)
            by_batch.setdefault(batch, []).append((i, row))
        else:  # legacy: layout id + JSON values
            names = json.loads(cast(bytes, txn.get(raw[:8], db=ledger.db[formats.CALL_LAYOUTS])))  # written with it
            out[i] = dict(zip(cdr.rated_names(names, "ledger call layout"), json.loads(raw[8:])))
    for batch, wanted in by_batch.items():
        table = read_batch(txn.get(BATCH_KEY.pack(batch), db=ledger.db[formats.CALL_BATCHES]), batch)
        rows = table.take(pa.array([r for _, r in wanted])).to_pylist()
        for (i, _), rec in zip(wanted, rows):
            out[i] = rec
    return out  # type: ignore[return-value]
