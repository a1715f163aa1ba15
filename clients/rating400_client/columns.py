"""CDR rows/tables <-> the contract's column messages (no rating_core needed)."""
from __future__ import annotations

import datetime as _dt
from typing import Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating400.v1 import rating_pb2

STRINGS = ("call_id", "caller", "number", "forwarded_to", "hangup_cause")
TIMES = {"start": "start_ms", "ivr_answer": "ivr_answer_ms", "agent_answer": "agent_answer_ms", "end": "end_ms"}
RATED_STRINGS = ("call_id", "account", "package", "destination_class", "caller_province",
                 "caller_city", "caller_carrier", "time_band", "status", "rate", "caller_class")
# Money (1/10000 yuan) under its *_minor name, and under the deprecated
# unitless name (charge, credit_consumed, overage: the same values) that
# older code reads.
MINOR_NAMES = {"charge": "charge_minor", "credit_consumed": "credit_consumed_minor", "overage": "overage_minor"}
RATED_INTS = ("billable_seconds", "billed_seconds", "units", "charge", "credit_consumed",
              "bundle_seconds_consumed", "overage", "balance_after", "credit_after_minor", "bundle_left_seconds",
              *MINOR_NAMES.values())


def to_ms(value, field: str = "time") -> int | None:
    """datetime (aware), ISO 8601 string with offset, or epoch ms -> epoch
    ms. Raises ValueError or TypeError naming ``field`` (the argument or
    CDR field the value was given as)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(f"{field}: a time, not a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{field}: {value[:40]!r} is not an ISO 8601 time with an offset "
                             "(2026-03-04T10:00:00+08:00) or epoch ms") from None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"{field}: naive datetime: give an offset (CDR times are absolute)")
        return int(value.timestamp() * 1000)
    raise TypeError(f"{field}: cannot use {type(value).__name__} as a time")


def _time_col(name: str, col) -> pa.Array:
    """One time column as int64 epoch ms (null: absent). Raises ValueError
    naming the column when its type cannot be a time."""
    t = col.type
    if pa.types.is_null(t):  # all null (e.g. from_pylist with no IVR answers): no such times
        return pa.nulls(len(col), pa.int64())
    if pa.types.is_integer(t):
        return pc.cast(col, pa.int64())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            col = pc.cast(col, pa.timestamp("ms", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise ValueError(f"{name}: not ISO 8601 times with an offset ({e})") from None
        t = col.type
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise ValueError(f"{name}: timestamp column without time zone")
        return pc.cast(pc.cast(col, pa.timestamp("ms", tz="UTC")), pa.int64())
    raise ValueError(f"{name}: time column of type {t}: give int64 epoch ms, timestamps with a time zone "
                     "or ISO 8601 text")


def normalise(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """A CDR table with engine column names -> the wire columns (*_ms int64).
    Raises ValueError naming a time column whose type cannot be a time."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    n = table.num_rows
    arrays, names = [], []
    for name in STRINGS:
        if name in table.column_names:
            arrays.append(pc.cast(table.column(name), pa.string()))
            names.append(name)
    for name, wire in TIMES.items():
        src = wire if wire in table.column_names else name if name in table.column_names else None
        if src is not None:
            arrays.append(_time_col(src, table.column(src)))
            names.append(wire)
    if not names:
        raise ValueError("no CDR columns found")
    return pa.Table.from_arrays(arrays, names=names) if n or names else table


def rows_to_table(rows: Iterable[Mapping]) -> pa.Table:
    rows = list(rows)
    data = {}
    for name in STRINGS:
        data[name] = pa.array([r.get(name) or "" for r in rows], pa.string())
    for name, wire in TIMES.items():
        data[wire] = pa.array([to_ms(r.get(name, r.get(wire)), name) for r in rows], pa.int64())
    return pa.table(data)


def table_to_columns(table: pa.Table, out: rating_pb2.CdrColumns | None = None) -> rating_pb2.CdrColumns:
    """Wire table (see normalise) -> CdrColumns; null times become 0 (absent)."""
    out = out if out is not None else rating_pb2.CdrColumns()
    for name in STRINGS:
        if name in table.column_names:
            col = table.column(name)
            getattr(out, name).extend((col.fill_null("") if col.null_count else col).to_pylist())
    for wire in TIMES.values():
        if wire in table.column_names:
            col = table.column(wire)
            getattr(out, wire).extend((col.fill_null(0) if col.null_count else col).to_numpy().tolist())
    return out


def table_to_arrow_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def rated_columns_to_table(cols: rating_pb2.RatedCdrColumns) -> pa.Table:
    """RatedCdrColumns -> table; a column the server left empty is omitted;
    ``credit_after_minor`` / ``bundle_left_seconds`` are null where the
    row's ``*_set`` is false (the account kind has no such balance)."""
    n = len(cols.row)
    data = {"row": pa.array(np.array(cols.row, dtype=np.uint32))}
    for name in RATED_STRINGS:
        v = getattr(cols, name)
        if len(v) == n:
            data[name] = pa.array(v, pa.string())
    for name in RATED_INTS:
        v = getattr(cols, name)
        if len(v) == n:
            values = np.array(v, dtype=np.int64)  # array protocol: no per-row Python
            present = getattr(cols, f"{name}_set", ())
            # null where the row has no such balance (pay as you go has no
            # credit), as the Arrow encoding answers; an older server sends no
            # *_set and its 0s stay.
            mask = ~np.array(present, dtype=bool) if len(present) == n else None
            data[name] = pa.array(values, mask=mask) if mask is not None and mask.any() else pa.array(values)
    rep = np.array(cols.replayed, dtype=bool) if len(cols.replayed) == n else np.zeros(n, bool)
    data["replayed"] = pa.array(rep)
    return with_minor_names(pa.table(data))


def with_minor_names(table: pa.Table) -> pa.Table:
    """``table`` with every money column under its ``*_minor`` name too: a
    server older than those fields sends only ``charge``, ``credit_consumed``
    and ``overage`` (1/10000 yuan); the ``*_minor`` copies are added last
    there (a newer server sends them before ``replayed``)."""
    for old, new in MINOR_NAMES.items():
        if old in table.column_names and new not in table.column_names:
            table = table.append_column(new, table.column(old))
    return table


def rated_from_response(resp: rating_pb2.RateCdrBatchesResponse) -> pa.Table:
    if resp.WhichOneof("rated_encoding") == "rated_arrow_ipc":
        if not resp.rated_arrow_ipc:
            return pa.table({"row": pa.array([], pa.uint32())})
        return with_minor_names(pa.ipc.open_stream(pa.py_buffer(resp.rated_arrow_ipc)).read_all())
    return rated_columns_to_table(resp.rated)
