"""Request building and result types shared by the sync and asyncio clients."""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import pyarrow as pa

from rating400.v1 import accounts_pb2, billing_pb2, catalog_pb2, rating_pb2, routing_pb2

from . import columns

DEFAULT_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
]

KINDS = {
    "started": routing_pb2.CALL_EVENT_KIND_STARTED,
    "answered": routing_pb2.CALL_EVENT_KIND_ANSWERED,
    "ended": routing_pb2.CALL_EVENT_KIND_ENDED,
    "interim": routing_pb2.CALL_EVENT_KIND_INTERIM,  # the response's max_duration_seconds: the new grant
}


def set_time(ts, value, field: str = "at") -> None:
    """``value`` (``columns.to_ms``) into Timestamp ``ts``; errors name ``field``."""
    ms = columns.to_ms(value, field)
    if ms is not None:
        ts.FromMilliseconds(ms)


def authorize_request(number, caller, ivr_keys="", call_id="", at=None) -> routing_pb2.AuthorizeRequest:
    req = routing_pb2.AuthorizeRequest(number=number, caller=caller, ivr_keys=ivr_keys, call_id=call_id)
    if at is not None:
        set_time(req.at, at)
    return req


def statement_request(account: str, month: str, lang: str = "zh", include_html: bool = False,
                      rerating_page_size: int = 0, rerating_page_token: str = "") -> billing_pb2.StatementRequest:
    """GetStatement's request: ``month`` "YYYY-MM"; ``lang`` "zh" or "en" (the HTML's)."""
    return billing_pb2.StatementRequest(account=account, month=month, lang=lang, include_html=include_html,
                                        rerating_page_size=rerating_page_size,
                                        rerating_page_token=rerating_page_token)


def balance_request(account: str) -> accounts_pb2.GetAccountRequest:
    return accounts_pb2.GetAccountRequest(account=account)


def call_event_request(call_id, number, kind, destination="", caller="", at=None):
    if isinstance(kind, str):
        kind = KINDS[kind.lower()]
    req = routing_pb2.CallEventRequest(call_id=call_id, number=number, kind=kind,
                                       destination=destination or "", caller=caller or "")
    if at is not None:
        set_time(req.at, at)
    return req


def cdr_message(cdr) -> rating_pb2.Cdr:
    """A Cdr message, or a mapping with engine column names (times: aware
    datetime, ISO 8601 with offset, or epoch ms)."""
    if isinstance(cdr, rating_pb2.Cdr):
        return cdr
    msg = rating_pb2.Cdr()
    for name in columns.STRINGS:
        v = cdr.get(name)
        if v:
            setattr(msg, name, str(v))
    for name, field_name in (("start", "start_time"), ("ivr_answer", "ivr_answer_time"),
                             ("agent_answer", "agent_answer_time"), ("end", "end_time")):
        v = cdr.get(name)
        if v is not None and v != "":
            set_time(getattr(msg, field_name), v, name)
    return msg


@dataclass
class BatchResult:
    """The answer to one batch. ``rated.row`` and ``rejects`` rows are indexes
    into the batch; add ``offset`` for the index in the whole input."""

    batch_id: int
    offset: int
    rows: int
    rated: pa.Table
    rejects: list = field(default_factory=list)
    catalog_version: int = 0

    @property
    def replayed(self) -> int:
        if "replayed" not in self.rated.column_names:
            return 0
        return int(pa.compute.sum(self.rated.column("replayed")).as_py() or 0)


@dataclass
class TableResult:
    """All batches of a table: ``rated.row`` indexes the input table."""

    rated: pa.Table
    rejects: pa.Table
    replayed: int
    catalog_versions: set


def split(tables: Iterable, batch_size: int) -> Iterator[tuple[int, pa.Table]]:
    """Tables / record batches / row mappings -> (input offset, wire table) slices."""
    offset = 0
    rows_buf: list = []
    for item in tables:
        if isinstance(item, Mapping):
            rows_buf.append(item)
            if len(rows_buf) >= batch_size:
                t = columns.rows_to_table(rows_buf)
                rows_buf = []
                yield offset, t
                offset += t.num_rows
            continue
        t = columns.normalise(item)
        for start in range(0, t.num_rows, batch_size):
            piece = t.slice(start, batch_size)
            yield offset, piece
            offset += piece.num_rows
    if rows_buf:
        yield offset, columns.rows_to_table(rows_buf)


def batch_request(batch_id: int, table: pa.Table, encoding: str, dry_run: bool):
    req = rating_pb2.RateCdrBatchesRequest(batch_id=batch_id, dry_run=dry_run)
    if encoding == "arrow":
        req.cdrs_arrow_ipc = columns.table_to_arrow_ipc(table)
    elif encoding == "columns":
        columns.table_to_columns(table, req.cdrs)
    else:
        raise ValueError("encoding must be 'columns' or 'arrow'")
    return req


def batch_result(resp, offset: int, rows: int) -> BatchResult:
    return BatchResult(batch_id=resp.batch_id, offset=offset, rows=rows,
                       rated=columns.rated_from_response(resp), rejects=list(resp.rejects),
                       catalog_version=resp.catalog_version)


def collect(results: Iterable[BatchResult]) -> TableResult:
    rated: list[pa.Table] = []
    rej: list[dict] = []
    versions: set[int] = set()
    replayed = 0
    for r in results:
        t = r.rated
        if t.num_rows:
            rows = pa.compute.add(pa.compute.cast(t.column("row"), pa.int64()), r.offset)
            t = t.set_column(t.column_names.index("row"), "row", rows)
            rated.append(t)
        replayed += r.replayed
        versions.add(r.catalog_version)
        rej.extend({"row": x.row + r.offset, "call_id": x.call_id, "field": x.field, "reason": x.reason,
                    "value": x.value, "code": x.code} for x in r.rejects)
    rejects = pa.Table.from_pylist(rej, schema=pa.schema(
        [("row", pa.int64()), ("call_id", pa.string()), ("field", pa.string()), ("reason", pa.string()),
         ("value", pa.string()), ("code", pa.string())]))
    rated_t = pa.concat_tables(rated, promote_options="default") if rated else pa.table({"row": pa.array([], pa.int64())})
    return TableResult(rated=rated_t, rejects=rejects, replayed=replayed, catalog_versions=versions)


_ids = itertools.count(1)


def next_batch_id() -> int:
    return next(_ids)


def next_request(source, encoding: str, dry_run: bool, pending: dict, failed: list):
    """The request of the next batch of ``source`` (an iterator of (offset,
    table) from ``split``), registered in ``pending`` (batch id -> (request,
    offset, rows)) before it is sent; None at the end. Bad input that makes
    no batch (``ValueError`` naming the column) ends the stream too: it is
    appended to ``failed`` for the caller to raise as itself, after the
    batches sent before it are answered."""
    try:
        item = next(source, None)
        if item is None:
            return None
        off, table = item
        bid = next_batch_id()
        req = batch_request(bid, table, encoding, dry_run)
    except Exception as e:  # noqa: BLE001 -- raised to the caller, as itself
        failed.append(e)
        return None
    pending[bid] = (req, off, table.num_rows)
    return req



_CSV_KEY = re.compile(r"""^[A-Za-z_]+_csv\s*:\s*["']?([^"'#\s]+)""", re.M)


def compile_request(path: str | Path) -> catalog_pb2.CompileRequest:
    """A CompileRequest carrying a local catalog as content: the YAML
    document at ``path`` and the CSV files its top-level ``*_csv`` keys name
    (read from beside it). Raises OSError for a file that cannot be read."""
    path = Path(path)
    text = path.read_bytes()
    req = catalog_pb2.CompileRequest(main=path.name)
    req.files.add(name=path.name, content=text)
    for name in dict.fromkeys(_CSV_KEY.findall(text.decode("utf-8", "replace"))):
        if "/" in name or "\\" in name:  # the server takes plain names only: let it say so
            req.files.add(name=name, content=b"")
            continue
        req.files.add(name=name, content=(path.parent / name).read_bytes())
    return req
