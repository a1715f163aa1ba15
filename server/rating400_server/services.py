"""gRPC servicers: Routing, Rating, CatalogAdmin."""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

import grpc
import numpy as np
import pyarrow as pa

from rating400.v1 import (
    catalog_pb2, catalog_pb2_grpc, common_pb2, rating_pb2, rating_pb2_grpc, routing_pb2,
    routing_pb2_grpc,
)

from rating_core.cdr import COMMITTED_DIFFERENTLY, DEFAULT_LIMITS, REASONS, Limits, check_route
from rating_core.cdr import excerpt as edge_excerpt
from rating_core.engine import DryRun
from rating_core.errors import Contended, InvalidInput, OverLimit, Refused, StoreError
from rating_core.ledger.envs import LedgerFull, LiveLedgerFull, ledger_full
from rating_core.rater import RatingResult
from rating_core.router import Decision, Destination, deny_detail, grant_detail
from rating_core.store import Store

from . import convert, logs
from .convert import BadRequest
from .engine import EngineHost, GroupCommitter
from .metrics import Metrics

log = logging.getLogger("rating400.service")
SC = grpc.StatusCode


class RpcFail(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


# Engine reason names that are errors rather than OK-with-deny.
_REASON_STATUS = {
    "unknown_number": SC.NOT_FOUND,
    "number_not_active": SC.FAILED_PRECONDITION,
    "number_suspended": SC.FAILED_PRECONDITION,
    "pending_verification": SC.FAILED_PRECONDITION,
    "account_suspended": SC.FAILED_PRECONDITION,
    "package_not_started": SC.FAILED_PRECONDITION,
    # A committed call id re-sent with other billable content: the first commit stands.
    REASONS[COMMITTED_DIFFERENTLY]: SC.FAILED_PRECONDITION,
}


def reason_status(reason: str, field: str = "") -> grpc.StatusCode:
    """Status for an engine reason (routing refusal or CDR reject reason)."""
    r = (reason or "").lower()
    if r in _REASON_STATUS:
        return _REASON_STATUS[r]
    if "unknown" in r and "number" in (r + field):
        return SC.NOT_FOUND
    if "suspend" in r or "not_active" in r:
        return SC.FAILED_PRECONDITION
    return SC.INVALID_ARGUMENT


def deny_reason(reason: str) -> int:
    try:
        return routing_pb2.DenyReason.Value("DENY_REASON_" + reason.upper())
    except ValueError:
        return routing_pb2.DENY_REASON_OTHER


_BILLING_START = {  # rating_core.layout.BILLING_START names
    "ring": routing_pb2.BILLING_START_RINGING,
    "ivr_answer": routing_pb2.BILLING_START_IVR_ANSWER,
    "agent_answer": routing_pb2.BILLING_START_AGENT_ANSWER,
}
_KIND = {
    routing_pb2.CALL_EVENT_KIND_STARTED: "started",
    routing_pb2.CALL_EVENT_KIND_ANSWERED: "answered",
    routing_pb2.CALL_EVENT_KIND_ENDED: "ended",
    routing_pb2.CALL_EVENT_KIND_INTERIM: "interim",
}


MAX_STATUS_MESSAGE = 4000  # status details travel in a header: keep them far below its 8-16 KB limit


def _bounded(message: str) -> str:
    """A status message cut to MAX_STATUS_MESSAGE characters (the edge cuts
    each quoted value already; this bounds lists of problems)."""
    return message if len(message) <= MAX_STATUS_MESSAGE else message[:MAX_STATUS_MESSAGE] + "... (cut)"


_full_logged = [0.0]  # monotonic time of the last "live.lmdb is full" log line


def _log_full(e: LiveLedgerFull | LedgerFull) -> None:
    """The operator's line (what is full, what to do), at most every 10 s
    per worker: a full map refuses every new call, not one."""
    now = time.monotonic()
    if now - _full_logged[0] >= 10:
        _full_logged[0] = now
        logs.log(log, logging.ERROR, str(e), code="RESOURCE_EXHAUSTED", reason=e.reason)


async def _fail(method: str, e: BaseException, context) -> None:
    """Map an exception to a status and abort the RPC (``abort`` raises)."""
    if isinstance(e, RpcFail):
        await context.abort(e.code, _bounded(e.message))
    if isinstance(e, (BadRequest, InvalidInput)):
        await context.abort(SC.INVALID_ARGUMENT, _bounded(f"{e.field}: {e.message}"))
    if isinstance(e, OverLimit):
        await context.abort(SC.RESOURCE_EXHAUSTED, _bounded(f"{e.field}: {e.message}"))
    if isinstance(e, asyncio.TimeoutError):
        await context.abort(SC.DEADLINE_EXCEEDED, "deadline exceeded")
    if isinstance(e, Contended):  # nothing written: the client's retry policy sends it again
        await context.abort(SC.UNAVAILABLE, _bounded(str(e)))
    e = ledger_full(e) or e  # ledger.lmdb's map or disk full: aborted whole, say what to do
    if isinstance(e, (LiveLedgerFull, LedgerFull)):
        _log_full(e)
        await context.abort(SC.RESOURCE_EXHAUSTED, _bounded(str(e)))
    log.error("%s failed", method, exc_info=e)
    await context.abort(SC.INTERNAL, "internal error (logged on the server)")


def _code(e: BaseException) -> str:
    if isinstance(e, RpcFail):
        return e.code.name
    if isinstance(e, (BadRequest, InvalidInput)):
        return "INVALID_ARGUMENT"
    if isinstance(e, asyncio.TimeoutError):
        return "DEADLINE_EXCEEDED"
    if isinstance(e, Contended):
        return "UNAVAILABLE"
    if isinstance(e, (LiveLedgerFull, OverLimit)) or ledger_full(e) is not None:
        return "RESOURCE_EXHAUSTED"
    if isinstance(e, asyncio.CancelledError):
        return "CANCELLED"
    if isinstance(e, grpc.aio.AbortError):
        return "ABORTED_BY_HANDLER"
    return "INTERNAL"


_QUIET = frozenset(("OK", "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "CANCELLED"))


def _finish(self, method: str, code: str, t0: float) -> None:
    dt = time.perf_counter() - t0
    self.metrics.observe(method, code, dt)
    if code not in _QUIET:
        logs.log(log, logging.WARNING, "rpc failed", method=method, code=code, seconds=round(dt, 6))


def _check_deadline(context) -> None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise RpcFail(SC.DEADLINE_EXCEEDED, "deadline exceeded before the call started")


def _decoded(request) -> None:
    """BadRequest("request") for a request whose bytes were no valid
    message (``Malformed``: what the safe deserializer hands over)."""
    if request.__class__ is Malformed:
        raise BadRequest("request", f"not a valid {request.type_name} message: {request.error}")


def rpc(method: str, streaming: bool = False):
    """Deadline check, error mapping, metrics and error logs for one RPC.

    Bad input of any kind ends that RPC with a status; it never escapes to
    grpc, so it can never stop the server.
    """

    def deco(fn):
        if streaming:
            @functools.wraps(fn)
            async def stream_wrapper(self, request, context):
                t0 = time.perf_counter()
                code = "OK"
                try:
                    _check_deadline(context)
                    _decoded(request)  # a server-streaming call's one request
                    async for resp in fn(self, request, context):
                        yield resp
                except (asyncio.CancelledError, grpc.aio.AbortError) as e:
                    code = _code(e)
                    raise
                except Exception as e:  # noqa: BLE001
                    code = _code(e)
                    await _fail(method, e, context)
                finally:
                    _finish(self, method, code, t0)

            return stream_wrapper

        @functools.wraps(fn)
        async def unary_wrapper(self, request, context):
            t0 = time.perf_counter()
            code = "OK"
            try:
                _check_deadline(context)
                _decoded(request)
                return await fn(self, request, context)
            except (asyncio.CancelledError, grpc.aio.AbortError) as e:
                code = _code(e)
                raise
            except Exception as e:  # noqa: BLE001
                code = _code(e)
                await _fail(method, e, context)
            finally:
                _finish(self, method, code, t0)

        return unary_wrapper

    return deco


def _deadline(context) -> float | None:
    rem = context.time_remaining()
    return None if rem is None else time.monotonic() + rem


def _menu(src: dict, out: routing_pb2.IvrMenu) -> None:
    """The decision's IVR menu (``Decision.ivr_menu``, as the catalog wrote
    it: ``{"prompt", "options": [{"key", "label"?, "group"?, "menu"?}]}``,
    at most 5 levels, checked when the catalog was compiled) into ``out``."""
    out.prompt = src.get("prompt") or ""
    for opt in src["options"]:
        o = out.options.add(key=opt["key"], label=opt.get("label") or "", group=opt.get("group") or "")
        if opt.get("menu"):
            _menu(opt["menu"], o.submenu)


def _destination(x: Destination) -> routing_pb2.Destination:
    return routing_pb2.Destination(number=x.number, ring_timeout_seconds=x.ring_timeout_seconds)


def _identity(data: bytes) -> bytes:
    return data


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    # Authorize answers with bytes it serialised itself (see _encode); the
    # registration uses an identity serializer for it.
    PRESERIALIZED = frozenset({"Authorize"})
    CACHE_SIZE = 4096

    def __init__(self, host: EngineHost, metrics: Metrics, limits: Limits = DEFAULT_LIMITS):
        self.host = host
        self.metrics = metrics
        self.limits = limits
        self._encoded: dict[tuple, bytes] = {}

    @rpc("Authorize")
    async def Authorize(self, request: routing_pb2.AuthorizeRequest, context: grpc.aio.ServicerContext) -> bytes:
        if not request.number:
            raise BadRequest("number", "required")
        text, limits = convert.text, self.limits
        text("number", request.number, limits)
        text("caller", request.caller, limits)
        text("ivr_keys", request.ivr_keys, limits)
        text("call_id", request.call_id, limits)
        # With a call id the grant is reserved under it (README: credit
        # reservation); without one the answer is a query that holds nothing.
        call_id = request.call_id or None
        # Inline on the loop: one live-ledger write (the reservation) and the
        # routing kernel, microseconds (the live ledger is not fsynced).
        # (A view behind the account's stored balance is refreshed on the
        # engine thread first: ``EngineHost.authorize``.)
        d = await self.host.authorize(request.number, request.caller,
                                      at_ms=convert.at_ms(request) if request.HasField("at") else None,
                                      ivr_keys=request.ivr_keys, call_id=call_id)
        return self._encode(d, request)

    def _encode(self, d: Decision, request: routing_pb2.AuthorizeRequest) -> bytes:
        """The serialised response. Calls of one number mostly get the same
        decision, so the encoding is cached by the decision's content (every
        field that goes into the response); a decision with an IVR menu is
        encoded afresh."""
        if not d.allow or d.ivr_menu:
            return self._response(d, request).SerializeToString()
        key = (d.catalog_version, tuple(d.destinations), d.billing_start, d.caller_province, d.caller_city,
               d.caller_carrier, d.caller_class, d.max_duration_seconds, d.group, d.rate, d.reserved_minor,
               d.reserved_seconds, d.limit, d.spend_left_minor)
        data = self._encoded.get(key)
        if data is None:
            if len(self._encoded) >= self.CACHE_SIZE:
                self._encoded.clear()
            data = self._encoded[key] = self._response(d, request).SerializeToString()
        return data

    def _response(self, d: Decision, request: routing_pb2.AuthorizeRequest) -> routing_pb2.AuthorizeResponse:
        region = common_pb2.CallerRegion(province=d.caller_province, city=d.caller_city, carrier=d.caller_carrier)
        if not d.allow:
            status = reason_status(d.reason)
            if d.reason == "unknown_number":
                # A number that cannot be a 400 number is the caller's bad
                # input (INVALID_ARGUMENT, as `rating400 route` answers), not
                # a 400 number we lack; checked on this path only.
                try:
                    check_route(request.number, "")
                except InvalidInput as e:
                    raise BadRequest(e.field, e.message) from None
            if status is not SC.INVALID_ARGUMENT:
                raise RpcFail(status, f"number {request.number}: {d.reason}")
            return routing_pb2.AuthorizeResponse(
                allow=False, reason=d.reason, deny_reason=deny_reason(d.reason), detail=deny_detail(d),
                announcement=d.announcement, catalog_version=d.catalog_version,
                caller_region=region, caller_class=d.caller_class)
        resp = routing_pb2.AuthorizeResponse(
            allow=True,
            destinations=[_destination(x) for x in d.destinations],
            billing_start=_BILLING_START[d.billing_start] if d.billing_start is not None else 0,
            caller_region=region,
            max_duration_seconds=d.max_duration_seconds,
            catalog_version=d.catalog_version,
            caller_class=d.caller_class,
            route_group=d.group,
            rate=d.rate,
            reserved_minor=d.reserved_minor,
            reserved_bundle_seconds=d.reserved_seconds,
            detail=grant_detail(d),
        )
        if d.ivr_menu:
            _menu(d.ivr_menu, resp.ivr_menu)
        return resp

    @rpc("CallEvent")
    async def CallEvent(self, request: routing_pb2.CallEventRequest,
                        context: grpc.aio.ServicerContext) -> routing_pb2.CallEventResponse:
        if not request.call_id:
            raise BadRequest("call_id", "required")
        if not request.number:
            raise BadRequest("number", "required")
        for name in ("call_id", "number", "destination", "caller"):
            convert.text(name, getattr(request, name), self.limits)
        kind = _KIND.get(request.kind)
        if kind is None:
            raise BadRequest("kind", "must be STARTED, ANSWERED, INTERIM or ENDED")
        engine = self.host.engine
        if kind == "interim":
            grant = await self.host.run(engine.interim, request.call_id, at_ms=convert.at_ms(request))
            return routing_pb2.CallEventResponse(catalog_version=engine.version,
                                                 accepted=grant is not None, max_duration_seconds=grant or 0)
        accepted = await self.host.run(engine.call_event, request.call_id, request.number, kind,
                                       destination=request.destination or None, caller=request.caller or None,
                                       at_ms=convert.at_ms(request))
        return routing_pb2.CallEventResponse(catalog_version=engine.version, accepted=accepted)


class RatingServicer(rating_pb2_grpc.RatingServiceServicer):
    # Handlers that return their response serialised already (``register``).
    PRESERIALIZED = frozenset({"RateCdrBatches"})

    def __init__(self, host: EngineHost, committer: GroupCommitter, metrics: Metrics,
                 limits: Limits = DEFAULT_LIMITS):
        self.host = host
        self.committer = committer
        self.metrics = metrics
        self.limits = limits

    @rpc("RateCdr")
    async def RateCdr(self, request: rating_pb2.RateCdrRequest,
                      context: grpc.aio.ServicerContext) -> rating_pb2.RateCdrResponse:
        if not request.HasField("cdr"):
            raise BadRequest("cdr", "required")
        row = convert.cdr_to_row(request.cdr, limits=self.limits)
        result, i, _n, dup = await self.committer.submit(row, _deadline(context))
        rejects = result.rejects
        if rejects.num_rows:
            rows = rejects.column("row").to_pylist()
            if i in rows:
                k = rows.index(i)
                field = str(rejects.column("field")[k].as_py() or "cdr")
                reason = str(rejects.column("reason")[k].as_py() or "rejected")
                self.metrics.rejected("RateCdr", 1)
                status = reason_status(reason, field)
                if reason == REASONS[COMMITTED_DIFFERENTLY]:
                    reason = f"call id {edge_excerpt(row['call_id'])}: {reason}"
                raise RpcFail(status, f"cdr.{convert.CDR_FIELDS.get(field, field)}: {reason}")
        rated = result.rated
        rows = convert.rated_rows(rated)
        hit = np.nonzero(rows == i)[0]
        if not len(hit):
            raise RpcFail(SC.INTERNAL, "engine returned neither a rated row nor a reject")
        pos = int(hit[0])
        replayed = bool(convert.replayed_mask(result)[pos]) or dup
        self.metrics.rated("RateCdr", "replayed" if replayed else "committed", 1)
        return rating_pb2.RateCdrResponse(
            rated_cdr=convert.rated_row_to_proto(rated, pos), replayed=replayed,
            catalog_version=self.host.engine.version,
        )

    @rpc("RateCdrBatches", streaming=True)
    async def RateCdrBatches(self, request_iterator, context):
        """Each message answered in order. Consecutive committed messages
        that have arrived while the previous ones committed are committed
        together in one ledger transaction (``Engine.commit_group``: a call
        id repeated across them is replayed or refused exactly as across
        separate transactions), at most ``GROUP_ROWS`` rows; each is answered
        after that transaction committed. A message that cannot be read ends
        the stream after the answers of the messages before it.

        Consecutive dry messages are one dry run (``rating_core.engine.DryRun``): each
        rates from the balances the ones before it left, as the chunks of
        a file job, and all against the catalog version the first found. A
        committed message ends the run (the next dry one starts from the
        ledger as that commit left it). A dry message that would make the
        run hold more than ``Limits.max_dry_stream_calls`` distinct call ids
        ends the stream RESOURCE_EXHAUSTED, after the answers before it."""
        engine = self.host.engine
        queue: asyncio.Queue = asyncio.Queue(READ_AHEAD)
        reader = asyncio.get_running_loop().create_task(_read_ahead(request_iterator, queue))
        dry: DryRun | None = None
        try:
            pending = None  # an item taken ahead that starts the next round
            while True:
                item = pending if pending is not None else self._batch(await queue.get(), context)
                pending = None
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                req, which, table = item
                if req.dry_run or not table.num_rows:
                    result = None
                    if table.num_rows:
                        dry = dry if dry is not None else DryRun(engine, self.limits.max_dry_stream_calls)
                        result = await self.host.run(dry.rate, table)
                    yield self._batch_response(req, which, result, dry.version if req.dry_run and dry is not None else None)
                    continue
                dry = None
                group, rows = [item], table.num_rows
                while rows < GROUP_ROWS and not queue.empty():
                    nxt = self._batch(queue.get_nowait(), context)
                    if not isinstance(nxt, tuple) or nxt[0].dry_run or not nxt[2].num_rows:
                        pending = nxt
                        break
                    group.append(nxt)
                    rows += nxt[2].num_rows
                # ``Engine.commit_tables`` in two steps: the edge on its own
                # thread (overlapping another stream's commit), then the
                # transaction on the engine thread.
                rater, prepared = await self.host.prepare([t for _, _, t in group])
                # Names stay dictionary-encoded, as a dry message's answer has
                # them: both encodings carry them so (``convert.rated_ipc``;
                # ``convert._str_col`` fans the few values out). Decoding the
                # ten name columns cost 0.16 CPU s per 1M CDRs, about 3%.
                results, error = await self.host.run(engine.commit_group, rater, prepared, False)
                for (req, which, _), result in zip(group, results):
                    yield self._batch_response(req, which, result)
                if error is not None:
                    raise error
        finally:
            reader.cancel()

    def _batch(self, msg, context):
        """A message from the read-ahead queue as (request, encoding, table);
        ``_END`` and the reader's exception as they are; a message that cannot
        be read (malformed, bad input, deadline passed) as its exception."""
        if msg is _END or isinstance(msg, BaseException):
            return msg
        try:
            _decoded(msg)
            rem = context.time_remaining()
            if rem is not None and rem <= 0:
                raise RpcFail(SC.DEADLINE_EXCEEDED, "deadline exceeded")
            which = msg.WhichOneof("cdrs_encoding")
            if which == "cdrs_arrow_ipc":
                return msg, which, convert.arrow_to_table(msg.cdrs_arrow_ipc, self.limits)
            return msg, which, convert.columns_to_table(msg.cdrs, self.limits)
        except Exception as e:  # noqa: BLE001 - raised in its turn, after the answers before it
            return e

    def _batch_response(self, req, which: str, result: RatingResult | None, version: int | None = None) -> bytes:
        """The serialised ``RateCdrBatchesResponse`` (``PRESERIALIZED``): an
        Arrow IPC answer is appended as field ``rated_arrow_ipc`` (the
        highest field number, so the bytes are those the message with it set
        serialises to) instead of copied into the message first.
        ``version``: the catalog version that rated it (None: the engine's)."""
        resp = rating_pb2.RateCdrBatchesResponse(batch_id=req.batch_id)
        ipc = None
        if result is not None:
            rated, rejects = result.rated_with(convert.RESPONSE_SOURCE), result.rejects
            rows = convert.rated_rows(rated)
            replayed = convert.replayed_mask(result)
            if which == "cdrs_arrow_ipc":
                ipc = convert.rated_ipc(rated, rows, replayed)
            else:
                convert.fill_rated_columns(resp.rated, rated, rows, replayed)
            nrej = convert.rejects_to_proto(resp.rejects, rejects)
            self.metrics.rejected("RateCdrBatches", nrej)
            if req.dry_run:
                self.metrics.rated("RateCdrBatches", "dry_run", rated.num_rows)
            else:
                nrep = int(replayed.sum())
                self.metrics.rated("RateCdrBatches", "replayed", nrep)
                self.metrics.rated("RateCdrBatches", "committed", rated.num_rows - nrep)
        elif which == "cdrs_arrow_ipc":
            # Still a readable IPC stream: zero rows of ``row`` and ``replayed``.
            ipc = convert.rated_ipc(pa.table({}), [], [])
        else:
            resp.rated.SetInParent()
        resp.catalog_version = self.host.engine.version if version is None else version
        if ipc is None:
            return resp.SerializeToString()
        return convert.with_bytes_field(resp.SerializeToString(), _RATED_ARROW_IPC, ipc)


# RateCdrBatchesResponse.rated_arrow_ipc: its highest field (``with_bytes_field``).
_RATED_ARROW_IPC = rating_pb2.RateCdrBatchesResponse.DESCRIPTOR.fields_by_name["rated_arrow_ipc"].number

# RateCdrBatches: messages read ahead of the one being answered (each at most
# ``Limits.max_message_bytes``), and the rows one group commit takes.
READ_AHEAD = 4
GROUP_ROWS = 1 << 20
_END = object()  # the client closed its side of the stream


async def _read_ahead(request_iterator, queue: asyncio.Queue) -> None:
    """Move a stream's messages into ``queue`` (bounded: the client's HTTP/2
    window stops it when the queue is full), then ``_END``, or the
    iterator's exception."""
    try:
        async for req in request_iterator:
            await queue.put(req)
        await queue.put(_END)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 - raised by the handler in its turn
        await queue.put(e)


@dataclass(frozen=True)
class CompileLimits:
    """Bounds on one Compile: files sent as content (count; their bytes are
    bounded by the message limit), wall time (also cut by the caller's
    deadline) and the compiling child's memory (RLIMIT_DATA)."""

    max_files: int = 16
    max_seconds: float = 300.0
    max_memory_bytes: int = 4 << 30


_FILE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")


def write_catalog_files(workdir: str, files, main: str, limits: CompileLimits) -> str:
    """Write CatalogFile messages into ``workdir``; returns the YAML
    document's path. Names are plain file names (no directories), each once."""
    if len(files) > limits.max_files:
        raise BadRequest("files", f"{len(files)} files, more than the limit of {limits.max_files}")
    names = set()
    for i, f in enumerate(files):
        if not _FILE_NAME.match(f.name):
            raise BadRequest(f"files[{i}].name", f"{edge_excerpt(f.name)} is not a plain file name "
                             "(letters, digits, '.', '_', '-'; no directories)")
        if f.name in names:
            raise BadRequest(f"files[{i}].name", f"{f.name!r} given twice")
        names.add(f.name)
        with open(os.path.join(workdir, f.name), "xb") as out:
            out.write(f.content)
    main = main or files[0].name
    if main not in names:
        raise BadRequest("main", f"{edge_excerpt(main)} is not one of the files")
    return os.path.join(workdir, main)


def under_root(root: str, path: str) -> str:
    """``path`` (relative to ``root``, or absolute inside it) resolved, or
    BadRequest when it leads anywhere else or is not a regular file."""
    if "\x00" in path or len(path) > 1000:
        raise BadRequest("path", f"{edge_excerpt(path)} is not a file path")
    real = os.path.realpath(os.path.join(root, path))
    if os.path.commonpath([real, root]) != root:
        raise BadRequest("path", f"{edge_excerpt(path)} is outside the server's catalog root")
    if not os.path.isfile(real):
        raise BadRequest("path", f"{edge_excerpt(path)}: no such file under the catalog root")
    return real


class CatalogAdminServicer(catalog_pb2_grpc.CatalogAdminServiceServicer):
    def __init__(self, host: EngineHost, store_dir: str, metrics: Metrics, catalog_root: str | None = None,
                 compile_limits: CompileLimits = CompileLimits()):
        self.host = host
        self.store_dir = store_dir
        self.metrics = metrics
        self.catalog_root = os.path.realpath(catalog_root) if catalog_root else None
        self.compile_limits = compile_limits

    def _store(self) -> Store:
        # The engine's Store: LMDB must not open the same environment twice in a process.
        return self.host.engine.store

    @rpc("Compile")
    async def Compile(self, request, context):
        """Compiles in a child process: compiling is seconds of CPU-bound
        Python that would otherwise hold this worker's GIL and stall its
        RPCs; the child is capped in memory and killed at the deadline."""
        limits = self.compile_limits
        if request.files:
            workdir = tempfile.mkdtemp(prefix="rating400-compile-")
            try:
                main = write_catalog_files(workdir, request.files, request.main, limits)
                return await self._compile(main, workdir, context, request.main or request.files[0].name)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        if not request.path:
            raise BadRequest("files", "required: the catalog's files as content")
        if self.catalog_root is None:
            raise BadRequest("path", "this server reads no catalog from its own filesystem "
                             "(start it with --catalog-root DIR, or send the files as content)")
        main = under_root(self.catalog_root, request.path)
        return await self._compile(main, self.catalog_root, context, request.path)

    async def _compile(self, main: str, root: str, context, shown: str):
        remaining = context.time_remaining()
        budget = self.compile_limits.max_seconds if remaining is None else min(remaining, self.compile_limits.max_seconds)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rating400_server._compile", self.store_dir, main,
            str(self.compile_limits.max_memory_bytes),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), budget)
        except asyncio.TimeoutError:
            if remaining is not None and remaining <= self.compile_limits.max_seconds:
                raise RpcFail(SC.DEADLINE_EXCEEDED, "files: compile stopped at the call's deadline") from None
            raise RpcFail(SC.RESOURCE_EXHAUSTED,
                          f"files: compile took longer than {self.compile_limits.max_seconds:g} s") from None
        finally:
            if proc.returncode is None:  # deadline, or the caller went away
                proc.kill()
                await proc.wait()
        try:
            result = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            log.error("catalog compile failed (exit %s): %s", proc.returncode, err.decode(errors="replace")[-4000:])
            if proc.returncode:
                # Died without answering: under its memory cap, native code
                # that cannot allocate aborts rather than raising MemoryError.
                raise RpcFail(SC.RESOURCE_EXHAUSTED,
                              f"files: compile stopped (exit {proc.returncode}) within its "
                              f"{self.compile_limits.max_memory_bytes >> 20} MiB memory cap (logged on the server)")
            raise RpcFail(SC.INTERNAL, "catalog compile failed (logged on the server)")
        prefix = os.path.join(root, "")
        if "problems" in result:
            # Problems name files by their path under root: show the names
            # the caller used, never the server's directories.
            problems = [p.replace(prefix, "") for p in result["problems"][:50]]
            raise RpcFail(SC.INVALID_ARGUMENT, "files: catalog has problems:\n" + "\n".join(problems))
        if "not_found" in result:
            raise RpcFail(SC.INVALID_ARGUMENT, f"files: not found: {result['not_found'].replace(prefix, '')}")
        if "memory" in result:
            raise RpcFail(SC.RESOURCE_EXHAUSTED,
                          f"files: compile needed more than {result['memory'] >> 20} MiB of memory")
        version = int(result["version"])
        logs.log(log, logging.INFO, "catalog compiled", source=shown[:200], version=version)
        return catalog_pb2.CompileResponse(version=version)

    @rpc("Activate")
    async def Activate(self, request, context):
        """Refused FAILED_PRECONDITION (trailer ``rating400-reason``
        ``package_in_use`` / ``feature_in_use``) for a version lacking a
        package or feature live accounts hold (``Store.check_in_use``, the
        check of ``catalog activate``); NOT_FOUND for a version not compiled."""
        from .accounts import REASON_KEY

        if request.version <= 0:
            raise BadRequest("version", "must be a compiled version number (> 0)")
        try:
            await asyncio.to_thread(lambda: self._store().activate(request.version))
        except Refused as e:
            context.set_trailing_metadata(((REASON_KEY, e.reason),))
            raise RpcFail(SC.FAILED_PRECONDITION, f"{e.reason}: {e.message}") from None
        except (StoreError, KeyError, LookupError) as e:
            raise RpcFail(SC.NOT_FOUND, f"version: {e}")
        await self.host.refresh()
        logs.log(log, logging.INFO, "catalog activated", version=int(request.version))
        return catalog_pb2.ActivateResponse(version=request.version)

    @rpc("ListVersions")
    async def ListVersions(self, request, context):
        versions = await asyncio.to_thread(lambda: self._store().versions())
        resp = catalog_pb2.ListVersionsResponse()
        for v in versions:
            v = dict(v)
            cv = resp.versions.add(version=int(v.pop("version")), active=bool(v.pop("active", False)))
            created = v.pop("compiled_at", None)  # Store.compile's UTC ISO time
            if created is not None:
                cv.create_time.FromJsonString(created.replace("+00:00", "Z"))
            for k, val in v.items():
                cv.attributes[str(k)] = val if isinstance(val, str) else json.dumps(val, default=str)
        return resp


class Malformed:
    """Stands in for a request whose bytes are not a valid message."""

    __slots__ = ("type_name", "error")

    def __init__(self, type_name: str, error: str):
        self.type_name = type_name
        self.error = error


def _safe_deserializer(cls, max_bytes: int | None = None):
    from_string = cls.FromString
    name = cls.DESCRIPTOR.name

    def deserialize(data: bytes):
        if max_bytes is not None and len(data) > max_bytes:
            return Malformed(name, f"{len(data)} bytes, more than the limit of {max_bytes}")
        try:
            return from_string(data)
        except Exception as e:  # noqa: BLE001 - DecodeError and friends
            return Malformed(name, str(e)[:200] or type(e).__name__)

    return deserialize


def register(server, servicer, service_descriptor, max_message_bytes: int | None = None, auth=None) -> None:
    """Like the generated ``add_*Servicer_to_server``, but a request that does
    not decode, or is over ``max_message_bytes``, becomes INVALID_ARGUMENT
    (grpc's default is INTERNAL). The transport's own limit (the worker sets
    it to twice this) answers RESOURCE_EXHAUSTED above that, before any
    bytes are buffered for us. Each handler gets ``auth``'s role check in
    front (``auth.Auth.guard``; None: the default ``Auth()``, which refuses
    admin-only methods)."""
    from .auth import Auth

    auth = auth if auth is not None else Auth()
    from google.protobuf.message_factory import GetMessageClass

    handlers = {}
    for m in service_descriptor.methods:
        req_cls = GetMessageClass(m.input_type)
        resp_cls = GetMessageClass(m.output_type)
        fn = getattr(servicer, m.name)
        kind = {(False, False): grpc.unary_unary_rpc_method_handler,
                (True, True): grpc.stream_stream_rpc_method_handler,
                (True, False): grpc.stream_unary_rpc_method_handler,
                (False, True): grpc.unary_stream_rpc_method_handler}[(m.client_streaming, m.server_streaming)]
        preserialized = m.name in getattr(servicer, "PRESERIALIZED", ())
        handler = kind(fn, request_deserializer=_safe_deserializer(req_cls, max_message_bytes),
                       response_serializer=_identity if preserialized else resp_cls.SerializeToString)
        handlers[m.name] = auth.guard(f"/{service_descriptor.full_name}/{m.name}", handler)
    name = service_descriptor.full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)
