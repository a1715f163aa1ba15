"""Blocking client."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Iterable, Iterator

import grpc
from grpc_health.v1 import health_pb2

from rating400.v1 import catalog_pb2, rating_pb2

from . import _common as c
from ._channels import ChannelOwner
from ._retry import Deadline, DeadlineExceeded, RetryPolicy


class Client(ChannelOwner):
    """Rating400 client.

    Every call has a deadline (``timeout`` seconds, default the client's) that
    covers all its attempts; UNAVAILABLE is retried with exponential backoff
    (``retry``). RateCdr and the batch stream are safe to retry: the server
    commits each call id exactly once and answers a repeat with the first
    result (``replayed``).
    """

    # -- plumbing ---------------------------------------------------------
    def close(self) -> None:
        for channel in self._all_channels():
            channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, stub: str, name: str, request, timeout, retry):
        """One unary call; gRPC retries it by the policy's service config,
        every attempt within the call's deadline."""
        t = self.timeout if timeout is None else timeout
        if t is not None and t <= 0:
            raise DeadlineExceeded()
        return getattr(self._stub(stub, retry or self.retry), name)(request, timeout=t)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the server answers a health check SERVING."""
        deadline = Deadline(timeout)
        while True:
            try:
                if self.health(timeout=min(1.0, max(0.05, deadline.remaining() or 1.0))) == "SERVING":
                    return
            except grpc.RpcError:
                pass
            if not deadline.allows(0.05):
                raise TimeoutError("server not ready")
            time.sleep(0.05)

    # -- RPCs -------------------------------------------------------------
    def health(self, service: str = "", timeout: float | None = None) -> str:
        resp = self._call("_health", "Check", health_pb2.HealthCheckRequest(service=service), timeout,
                          None)  # the client's channel: a health check sees what calls see
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def authorize(self, number: str, caller: str, *, ivr_keys: str = "", call_id: str = "", at=None,
                  timeout: float | None = None, retry: RetryPolicy | None = None):
        """Routing decision -> AuthorizeResponse. Raises grpc.RpcError with
        NOT_FOUND (unknown number) or FAILED_PRECONDITION (suspended)."""
        return self._call("routing", "Authorize", c.authorize_request(number, caller, ivr_keys, call_id, at),
                          timeout, retry)

    def call_event(self, call_id: str, number: str, kind, *, destination: str = "", caller: str = "",
                   at=None, timeout: float | None = None, retry: RetryPolicy | None = None):
        """kind: "started" | "answered" | "interim" | "ended" (or the enum value)."""
        return self._call("routing", "CallEvent",
                          c.call_event_request(call_id, number, kind, destination, caller, at), timeout, retry)

    def rate_cdr(self, cdr, *, timeout: float | None = None, retry: RetryPolicy | None = None):
        """Rate and commit one CDR (mapping or Cdr) -> RateCdrResponse."""
        return self._call("rating", "RateCdr", rating_pb2.RateCdrRequest(cdr=c.cdr_message(cdr)), timeout, retry)

    def statement(self, account: str, month: str, *, lang: str = "zh", include_html: bool = False,
                  rerating_page_size: int = 0, rerating_page_token: str = "", timeout: float | None = None,
                  retry: RetryPolicy | None = None):
        """The monthly statement of ``account`` for ``month`` ("YYYY-MM")
        -> StatementResponse (BillingService.GetStatement): money in
        ``*_minor`` fields, 1/10000 yuan (``amount_payable_minor``: the
        amount due rounded to the fen; ``outstanding_minor``: what is still
        owed after the month), the whole statement in ``json``, the printable
        page in ``html`` with ``include_html`` (``lang`` "zh" or "en"). The
        rerated calls come a page at a time (``rerating_page_size``,
        ``rerating_page_token``: a response's ``next_rerating_page_token``).
        The billing role; a server without identities serves it to any caller on
        loopback. Raises grpc.RpcError INVALID_ARGUMENT naming the field
        (an unknown account, a month not begun)."""
        return self._call("billing", "GetStatement",
                          c.statement_request(account, month, lang, include_html, rerating_page_size,
                                              rerating_page_token), timeout, retry)

    def balance(self, account: str, *, timeout: float | None = None, retry: RetryPolicy | None = None):
        """The ledger's balance of ``account`` -> Balance
        (AccountService.GetBalance): ``credit_minor``, ``available_minor``
        (1/10000 yuan), and ``statements``, the current month's statement
        position (its ``unpaid_minor``: what the statements leave unpaid,
        `accounts balance`'s). The admin role: a token or certificate, or
        ``serve --local-admin`` on a single-user host; a server without
        identities otherwise answers UNAUTHENTICATED naming the fix."""
        return self._call("accounts", "GetBalance", c.balance_request(account), timeout, retry)

    def compile_catalog(self, path: str, *, timeout: float | None = 120.0) -> int:
        """Send a local catalog (the YAML document at ``path`` and the CSV
        files it names) to be compiled -> the new version (inactive until
        ``activate``). The server compiles it within ``timeout`` or stops.
        Raises OSError when a local file cannot be read; grpc.RpcError
        INVALID_ARGUMENT listing the catalog's problems."""
        return self._call("catalog", "Compile", c.compile_request(path), timeout, None).version

    def activate(self, version: int, *, timeout: float | None = None) -> int:
        return self._call("catalog", "Activate", catalog_pb2.ActivateRequest(version=version), timeout, None).version

    def list_versions(self, *, timeout: float | None = None):
        return list(self._call("catalog", "ListVersions", catalog_pb2.ListVersionsRequest(), timeout, None).versions)

    # -- streaming --------------------------------------------------------
    def rate_batches(self, cdrs: Iterable, *, batch_size: int = 8192, encoding: str = "columns",
                     dry_run: bool = False, window: int = 4, timeout: float | None = None,
                     retry: RetryPolicy | None = None) -> Iterator[c.BatchResult]:
        """Stream CDRs through RateCdrBatches, ``batch_size`` rows per message.

        ``cdrs``: pyarrow Tables / RecordBatches (engine column names; times as
        int64 epoch ms, timestamps with tz, or ISO strings) and/or row mappings.
        At most ``window`` batches are unanswered at a time. If the stream
        breaks with UNAVAILABLE, unanswered batches are sent again on a new
        stream (safe: exactly once per call id). Yields results in order.
        ``timeout`` (default: none) bounds the whole stream.
        """
        policy = retry or self.retry
        deadline = Deadline(timeout)
        source = iter(c.split(cdrs, batch_size))
        pending: OrderedDict[int, tuple] = OrderedDict()
        lock = threading.Lock()
        attempt = 0
        # An error making a batch (bad input: a time column of another type)
        # raised inside the request iterator would reach the caller as gRPC's
        # UNKNOWN "Exception iterating requests!"; it ends the stream instead
        # and is raised as itself once the batches sent before are answered.
        failed: list[Exception] = []
        while True:
            attempt += 1
            slots = threading.Semaphore(window)
            dead = threading.Event()
            with lock:
                resend = list(pending.items())

            def requests(resend=resend, slots=slots, dead=dead):
                def take():
                    while not slots.acquire(timeout=0.1):
                        if dead.is_set():
                            return False
                    return True

                for _bid, (req, _off, _n) in resend:
                    if not take():
                        return
                    yield req
                while True:
                    # Pull and register under the lock: a generator of a broken
                    # stream (still running on gRPC's thread) can never take a
                    # batch the next attempt does not know about.
                    with lock:
                        if dead.is_set():
                            return
                        req = c.next_request(source, encoding, dry_run, pending, failed)
                    if req is None:  # the end, or bad input raised to the caller below
                        return
                    if not take():
                        return
                    yield req

            call = self.rating.RateCdrBatches(requests(), timeout=deadline.attempt_timeout())
            try:
                for resp in call:
                    with lock:
                        _req, off, n = pending.pop(resp.batch_id)
                    slots.release()
                    attempt = 0  # progress: a later failure starts a fresh backoff
                    yield c.batch_result(resp, off, n)
                if failed:
                    raise failed[0]
                if pending:
                    raise RuntimeError(f"stream ended with {len(pending)} batches unanswered")
                return
            except grpc.RpcError as err:
                dead.set()
                if failed:
                    raise failed[0] from None
                if not policy.should_retry(err, max(attempt, 1)):
                    raise
                pause = policy.backoff(max(attempt, 1))
                if not deadline.allows(pause):
                    raise
                time.sleep(pause)
            finally:
                dead.set()
                call.cancel()

    def rate_table(self, table, **kw) -> c.TableResult:
        """Rate a whole table via the stream; ``rated.row`` indexes ``table``.
        Its columns are checked before any RPC (ValueError naming a time
        column whose type cannot be a time)."""
        return c.collect(self.rate_batches([c.columns.normalise(table)], **kw))
