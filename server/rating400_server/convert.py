"""Protobuf <-> Arrow columns for the engine.

The rules are the edge's (``rating_core.cdr``: limits, lengths, time range,
Arrow validation); here they are applied to messages and their violations
turned into BadRequest (INVALID_ARGUMENT). The engine judges the values
(unknown numbers, bad times) and reports per-row rejects.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating400.v1 import rating_pb2
from rating_core import cdr as edge
from rating_core.errors import InvalidInput
from rating_core.rater import RatingResult

# CdrColumns field -> engine CDR column.
STRING_IN = ("call_id", "caller", "number", "forwarded_to", "hangup_cause")
TIME_IN = {"start_ms": "start", "ivr_answer_ms": "ivr_answer", "agent_answer_ms": "agent_answer", "end_ms": "end"}
# Engine CDR column -> its field in the ``Cdr`` message (RateCdr): every
# RateCdr error names the message's field (breaker N13 F10: "cdr.start: start
# in the future" beside "cdr.start_time: required" for one field).
CDR_FIELDS = {"call_id": "call_id", "caller": "caller", "number": "number", "forwarded_to": "forwarded_to",
              "start": "start_time", "ivr_answer": "ivr_answer_time", "agent_answer": "agent_answer_time",
              "end": "end_time", "hangup_cause": "hangup_cause"}
REQUIRED_STRINGS = ("call_id", "number")
REQUIRED_TIMES = ("start_ms", "end_ms")

RATED_STRINGS = (
    "call_id", "account", "package", "destination_class", "caller_province",
    "caller_city", "caller_carrier", "time_band", "status", "rate", "caller_class",
)
# The contract's names (RatedCdrColumns fields, and the rated Arrow IPC
# stream's columns); the engine's rated table names the money columns with
# their unit (``edge.RATED_MINOR_NAMES``: charge_minor for charge, ...), as
# the contract does since F11 (``charge_minor``...). The deprecated unitless
# names (``charge``, ``credit_consumed``, ``overage``) are still filled with
# the same values for older clients.
RATED_INTS = (
    "billable_seconds", "billed_seconds", "units", "charge", "credit_consumed",
    "bundle_seconds_consumed", "overage", "balance_after", "credit_after_minor", "bundle_left_seconds",
    *edge.RATED_MINOR_NAMES.values(),
)
RESPONSE_SOURCE = ("row", "call_id")  # the input columns a rated response carries (RatingResult.rated_with)
OPTIONAL_INTS = ("credit_after_minor", "bundle_left_seconds")  # absent (not 0) where the kind has none


class BadRequest(ValueError):
    """A request the edge refuses: INVALID_ARGUMENT naming ``field``."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def _ts_ms(msg, name: str, field: str | None = None):
    """A Timestamp field as epoch ms (None when unset); out of range is
    BadRequest (seconds near 2^63 would overflow int64 in milliseconds)."""
    if not msg.HasField(name):
        return None
    ts = getattr(msg, name)
    if not 0 <= ts.nanos < 1_000_000_000:  # Timestamp's own rule; negative nanos would move time back
        raise BadRequest(f"{field or name}.nanos", f"{ts.nanos}: must be in [0, 999999999]")
    ms = ts.seconds * 1000 + ts.nanos // 1_000_000
    try:
        return edge.check_time_ms(field or name, ms)
    except InvalidInput as e:
        raise BadRequest(e.field, e.message) from None


def at_ms(msg, name: str = "at"):
    return _ts_ms(msg, name)


def text(field: str, value: str, limits: edge.Limits = edge.DEFAULT_LIMITS) -> str:
    """A request string within its length bound (see ``rating_core.cdr.Limits``)."""
    try:
        return edge.check_text(field, value, limits)
    except InvalidInput as e:
        raise BadRequest(e.field, e.message) from None


def cdr_to_row(cdr, prefix: str = "cdr", limits: edge.Limits = edge.DEFAULT_LIMITS) -> dict:
    """One Cdr message -> one engine row (times as epoch ms, None = absent).
    BadRequest names the message's field (``CDR_FIELDS``): ``cdr.start_time``."""
    row = {name: _ts_ms(cdr, field, f"{prefix}.{field}") if name in edge.TIME_COLUMNS
           else text(f"{prefix}.{field}", getattr(cdr, field), limits)
           for name, field in CDR_FIELDS.items()}
    for name in (*REQUIRED_STRINGS, "start", "end"):
        if row[name] is None or row[name] == "":
            raise BadRequest(f"{prefix}.{CDR_FIELDS[name]}", "required")
    return row


ROW_SCHEMA = pa.schema(
    [(c, pa.string()) for c in ("call_id", "caller", "number", "forwarded_to")]
    + [(c, pa.int64()) for c in ("start", "ivr_answer", "agent_answer", "end")]
    + [("hangup_cause", pa.string())]
)


def rows_to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)


def _times(values, n: int, field: str) -> pa.Array:
    if len(values) == 0:
        return pa.nulls(n, pa.int64())
    if len(values) != n:
        raise BadRequest(f"cdrs.{field}", f"has {len(values)} values for {n} rows")
    # upb's repeated scalar containers export the array protocol: no per-row Python.
    arr = np.array(values, dtype=np.int64)
    mask = arr == 0  # 0 = absent (rating.proto); a negative time is a reject, not "unanswered"
    return pa.array(arr, mask=mask if mask.any() else None)


def columns_to_table(cols: rating_pb2.CdrColumns, limits: edge.Limits = edge.DEFAULT_LIMITS) -> pa.Table:
    """CdrColumns -> engine table; absent optional columns become empty/null.
    Row count and field lengths are checked by the edge (``check_batch``)."""
    n = len(cols.call_id)
    if n > limits.max_batch_rows:
        raise BadRequest("cdrs", f"{n} rows, more than the limit of {limits.max_batch_rows} per batch")
    arrays, names = [], []
    for f in ("call_id", "caller", "number", "forwarded_to"):
        v = getattr(cols, f)
        if len(v) == 0:
            if f in REQUIRED_STRINGS and n:
                raise BadRequest(f"cdrs.{f}", "required column missing")
            arrays.append(pa.array([""] * n, pa.string()))
        elif len(v) != n:
            raise BadRequest(f"cdrs.{f}", f"has {len(v)} values for {n} rows")
        else:
            arrays.append(pa.array(v, pa.string()))
        names.append(f)
    for f, col in TIME_IN.items():
        v = getattr(cols, f)
        if len(v) == 0 and f in REQUIRED_TIMES and n:
            raise BadRequest(f"cdrs.{f}", "required column missing")
        arrays.append(_times(v, n, f))
        names.append(col)
    v = cols.hangup_cause
    if len(v) and len(v) != n:
        raise BadRequest("cdrs.hangup_cause", f"has {len(v)} values for {n} rows")
    arrays.append(pa.array(v if len(v) else [""] * n, pa.string()))
    names.append("hangup_cause")
    return _checked(pa.Table.from_arrays(arrays, names=names), limits, "cdrs")


def _checked(table: pa.Table, limits: edge.Limits, prefix: str) -> pa.Table:
    try:
        return edge.check_batch(table, limits, prefix)
    except InvalidInput as e:
        raise BadRequest(e.field, e.message) from None


def arrow_to_table(data: bytes, limits: edge.Limits = edge.DEFAULT_LIMITS) -> pa.Table:
    """cdrs_arrow_ipc -> engine table, fully validated by the edge
    (``rating_core.cdr.decode_arrow_ipc``)."""
    try:
        return edge.decode_arrow_ipc(data, limits)
    except InvalidInput as e:
        raise BadRequest(e.field, e.message) from None


def rated_rows(rated: pa.Table) -> np.ndarray:
    """Request row index of each rated row (the engine's ``row`` column)."""
    return rated.column("row").to_numpy().astype(np.uint32)


def replayed_mask(result: RatingResult) -> np.ndarray:
    """Per rated row: True when ``rate_and_commit`` answered the stored first
    result of a call committed before (a dry run replays nothing)."""
    if result.replayed is None:
        # Not ``result.rated``: a dry run's rated table is gathered only for
        # the response's columns (``rated_with``), never whole.
        return np.zeros(result.num_rated, dtype=bool)
    return result.replayed


def _str_col(table: pa.Table, name: str, m: int) -> list:
    if name not in table.column_names:
        return [""] * m
    col = table.column(name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        # Low-cardinality names (account, package, city...): look the few
        # values up once and fan out with NumPy; DictionaryArray.to_pylist()
        # costs ~1 us per row, this ~10 ns.
        values = np.asarray([("" if v is None else v) for v in col.dictionary.to_pylist()] + [""], dtype=object)
        idx = col.indices
        if col.null_count:
            idx = pc.if_else(col.is_null(), pa.scalar(len(values) - 1, idx.type), idx)
        return values[idx.to_numpy(zero_copy_only=False)].tolist()
    if col.null_count:
        col = col.fill_null("")
    return col.to_pylist()


def _int_col(table: pa.Table, name: str, m: int):
    name = edge.RATED_MINOR_NAMES.get(name, name)  # the contract's name -> the rated table's
    if name not in table.column_names:
        return [0] * m
    col = table.column(name)
    if col.null_count:
        col = col.fill_null(0)
    return col.to_numpy().tolist()


def _set_col(table: pa.Table, name: str, m: int):
    """Which rows of ``name`` hold a value (``RatedCdrColumns.*_set``)."""
    if name not in table.column_names:
        return [False] * m
    col = table.column(name)
    if not col.null_count:
        return [True] * m
    return pc.is_valid(col).to_numpy(zero_copy_only=False).tolist()


def fill_rated_columns(out: rating_pb2.RatedCdrColumns, rated: pa.Table, rows, replayed) -> None:
    m = rated.num_rows
    out.row.extend(rows.tolist())
    for name in RATED_STRINGS:
        getattr(out, name).extend(_str_col(rated, name, m))
    done: dict[str, list] = {}  # rated column -> its values: charge and charge_minor are one column
    for name in RATED_INTS:
        column = edge.RATED_MINOR_NAMES.get(name, name)
        if column not in done:
            done[column] = _int_col(rated, name, m)
        getattr(out, name).extend(done[column])
    for name in OPTIONAL_INTS:  # where the 0 above is a value, not an absent balance
        getattr(out, f"{name}_set").extend(_set_col(rated, name, m))
    out.replayed.extend(replayed.tolist())


def rated_to_arrow(rated: pa.Table, rows, replayed) -> bytes:
    """The rated rows as the Arrow IPC stream a response carries
    (``RatedCdrColumns`` names; ``row`` uint32, ``replayed`` bool; each
    money column twice, under its ``*_minor`` name and, for older
    clients, its deprecated unitless name)."""
    return rated_ipc(rated, rows, replayed).to_pybytes()


def rated_ipc(rated: pa.Table, rows, replayed) -> pa.Buffer:
    """``rated_to_arrow`` as an Arrow buffer, written into one allocation of
    its exact size (measured first): no growing copies of a ~120-byte-a-row
    stream, and no ``bytes`` copy for a caller that frames it itself
    (``with_bytes_field``).

    One schema for every answer: ``call_id`` a string column, the other
    names (``RATED_STRINGS``) dictionary-encoded, as the rater writes them.
    A committed answer with replayed rows holds them decoded (joined with
    the stored results) and is encoded again here, so a client can
    concatenate the answers of one stream, dry, committed or replayed."""
    cols = [pa.array(rows, pa.uint32())]
    names = ["row"]
    for name in RATED_STRINGS + RATED_INTS:
        column = edge.RATED_MINOR_NAMES.get(name, name)  # the contract's name -> the rated table's
        if column in rated.column_names and name not in names:
            col = rated.column(column)
            if name in RATED_STRINGS and name != "call_id" and not pa.types.is_dictionary(col.type):
                col = pc.dictionary_encode(col)
            cols.append(col)
            names.append(name)
    cols.append(pa.array(replayed, pa.bool_()))
    names.append("replayed")
    t = pa.Table.from_arrays(cols, names=names)
    size = pa.MockOutputStream()
    with pa.ipc.new_stream(size, t.schema) as w:
        w.write_table(t)
    out = pa.allocate_buffer(size.size())
    with pa.ipc.new_stream(pa.FixedSizeBufferWriter(out), t.schema) as w:
        w.write_table(t)
    return out


def with_bytes_field(message: bytes, number: int, data) -> bytes:
    """``message`` (a serialised protobuf message without field ``number``)
    with ``data`` (any bytes-like object) appended as that bytes field: the
    wire form the message with the field set serialises to when ``number``
    is its highest field (protobuf writes fields in number order), made
    with one copy of ``data`` instead of three (into the message, its
    serialisation, and the ``bytes`` first). Protobuf wire format: tag
    ``number << 3 | 2``, a varint length, the bytes."""
    head = [(number << 3) | 2]
    n = memoryview(data).nbytes
    while True:
        if n < 0x80:
            head.append(n)
            break
        head.append((n & 0x7F) | 0x80)
        n >>= 7
    return b"".join((message, bytes(head), data))


def rejects_to_proto(out_list, rejects: pa.Table | None, call_ids=None) -> int:
    """The rejects table into ``out_list`` (a repeated ``Reject``); returns
    how many. A missing call id is taken from ``call_ids`` by row. Columns
    are read once (a stream's batch has thousands of rejects)."""
    if rejects is None or rejects.num_rows == 0:
        return 0
    n = rejects.num_rows
    d = rejects.to_pydict()
    none = [None] * n
    rows, cids, fields, reasons, values = (d.get(k, none) for k in ("row", "call_id", "field", "reason", "value"))
    add = out_list.add
    for row, cid, field, reason, value in zip(rows, cids, fields, reasons, values):
        row = int(row)
        if cid is None and call_ids is not None:
            cid = call_ids[row]
        add(row=row, call_id=cid or "", field=str(field or ""), reason=str(reason or ""),
            value="" if value is None else str(value), code=edge.REJECT_CODES.get(reason, ""))
    return n


def rated_row_to_proto(rated: pa.Table, i: int) -> rating_pb2.RatedCdr:
    def s(name):
        if name not in rated.column_names:
            return ""
        v = rated.column(name)[i].as_py()
        return "" if v is None else str(v)

    def n(name):
        name = edge.RATED_MINOR_NAMES.get(name, name)  # the contract's name -> the rated table's
        if name not in rated.column_names:
            return 0
        v = rated.column(name)[i].as_py()
        return 0 if v is None else int(v)

    msg = rating_pb2.RatedCdr(
        call_id=s("call_id"), account=s("account"), package=s("package"),
        destination_class=s("destination_class"), time_band=s("time_band"), status=s("status"),
        rate=s("rate"), caller_class=s("caller_class"),
        **{k: n(k) for k in RATED_INTS if k not in OPTIONAL_INTS},
    )
    for k in OPTIONAL_INTS:
        v = rated.column(k)[i].as_py() if k in rated.column_names else None
        if v is not None:
            setattr(msg, k, int(v))
    msg.caller_region.province = s("caller_province")
    msg.caller_region.city = s("caller_city")
    msg.caller_region.carrier = s("caller_carrier")
    return msg
