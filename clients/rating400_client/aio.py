"""asyncio client (grpc.aio); same API as :class:`rating400_client.Client`, awaitable."""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import AsyncIterator, Iterable

import grpc
from grpc_health.v1 import health_pb2

from rating400.v1 import catalog_pb2, rating_pb2

from . import _common as c
from ._channels import ChannelOwner
from ._retry import Deadline, DeadlineExceeded, RetryPolicy


class AsyncClient(ChannelOwner):
    _grpc = grpc.aio

    async def close(self) -> None:
        for channel in self._all_channels():
            await channel.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def _call(self, stub: str, name: str, request, timeout, retry):
        """One unary call; gRPC retries it by the policy's service config,
        every attempt within the call's deadline."""
        t = self.timeout if timeout is None else timeout
        if t is not None and t <= 0:
            raise DeadlineExceeded()
        return await getattr(self._stub(stub, retry or self.retry), name)(request, timeout=t)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = Deadline(timeout)
        while True:
            try:
                if await self.health(timeout=min(1.0, max(0.05, deadline.remaining() or 1.0))) == "SERVING":
                    return
            except grpc.aio.AioRpcError:
                pass
            if not deadline.allows(0.05):
                raise TimeoutError("server not ready")
            await asyncio.sleep(0.05)

    async def health(self, service: str = "", timeout: float | None = None) -> str:
        resp = await self._call("_health", "Check", health_pb2.HealthCheckRequest(service=service), timeout,
                                None)  # the client's channel: a health check sees what calls see
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    async def authorize(self, number: str, caller: str, *, ivr_keys: str = "", call_id: str = "", at=None,
                        timeout: float | None = None, retry: RetryPolicy | None = None):
        return await self._call("routing", "Authorize", c.authorize_request(number, caller, ivr_keys, call_id, at),
                                timeout, retry)

    async def call_event(self, call_id: str, number: str, kind, *, destination: str = "", caller: str = "",
                         at=None, timeout: float | None = None, retry: RetryPolicy | None = None):
        return await self._call("routing", "CallEvent",
                                c.call_event_request(call_id, number, kind, destination, caller, at), timeout, retry)

    async def rate_cdr(self, cdr, *, timeout: float | None = None, retry: RetryPolicy | None = None):
        return await self._call("rating", "RateCdr", rating_pb2.RateCdrRequest(cdr=c.cdr_message(cdr)),
                                timeout, retry)

    async def statement(self, account: str, month: str, *, lang: str = "zh", include_html: bool = False,
                        rerating_page_size: int = 0, rerating_page_token: str = "", timeout: float | None = None,
                        retry: RetryPolicy | None = None):
        """``Client.statement``: the monthly statement -> StatementResponse."""
        return await self._call("billing", "GetStatement",
                                c.statement_request(account, month, lang, include_html, rerating_page_size,
                                                    rerating_page_token), timeout, retry)

    async def balance(self, account: str, *, timeout: float | None = None, retry: RetryPolicy | None = None):
        """``Client.balance``: the ledger's balance -> Balance."""
        return await self._call("accounts", "GetBalance", c.balance_request(account), timeout, retry)

    async def compile_catalog(self, path: str, *, timeout: float | None = 120.0) -> int:
        """Send a local catalog (YAML + the CSV files it names) to be compiled
        -> the new version. See ``Client.compile_catalog``."""
        return (await self._call("catalog", "Compile", c.compile_request(path), timeout, None)).version

    async def activate(self, version: int, *, timeout: float | None = None) -> int:
        return (await self._call("catalog", "Activate", catalog_pb2.ActivateRequest(version=version),
                                 timeout, None)).version

    async def list_versions(self, *, timeout: float | None = None):
        return list((await self._call("catalog", "ListVersions", catalog_pb2.ListVersionsRequest(),
                                      timeout, None)).versions)

    async def rate_batches(self, cdrs: Iterable, *, batch_size: int = 8192, encoding: str = "columns",
                           dry_run: bool = False, window: int = 4, timeout: float | None = None,
                           retry: RetryPolicy | None = None) -> AsyncIterator[c.BatchResult]:
        """See :meth:`rating400_client.Client.rate_batches`."""
        policy = retry or self.retry
        deadline = Deadline(timeout)
        source = iter(c.split(cdrs, batch_size))
        pending: OrderedDict[int, tuple] = OrderedDict()
        attempt = 0
        failed: list[Exception] = []  # see Client.rate_batches
        while True:
            attempt += 1
            slots = asyncio.Semaphore(window)
            call = self.rating.RateCdrBatches(timeout=deadline.attempt_timeout())
            resend = list(pending.values())

            async def writer():
                for req, _off, _n in resend:
                    await slots.acquire()
                    await call.write(req)
                # Bad input making a batch ends the stream; raised below, as itself.
                while (req := c.next_request(source, encoding, dry_run, pending, failed)) is not None:
                    await slots.acquire()
                    await call.write(req)
                await call.done_writing()

            wtask = asyncio.ensure_future(writer())
            try:
                while True:
                    resp = await call.read()
                    if resp is grpc.aio.EOF:
                        break
                    _req, off, n = pending.pop(resp.batch_id)
                    slots.release()
                    attempt = 0
                    yield c.batch_result(resp, off, n)
                await wtask
                if failed:
                    raise failed[0]
                if pending:
                    raise RuntimeError(f"stream ended with {len(pending)} batches unanswered")
                return
            except grpc.aio.AioRpcError as err:
                if failed:
                    raise failed[0] from None
                if not policy.should_retry(err, max(attempt, 1)):
                    raise
                pause = policy.backoff(max(attempt, 1))
                if not deadline.allows(pause):
                    raise
                await asyncio.sleep(pause)
            finally:
                if not wtask.done():
                    wtask.cancel()
                    try:
                        await wtask
                    except (asyncio.CancelledError, grpc.aio.AioRpcError, Exception):  # noqa: BLE001
                        pass
                call.cancel()

    async def rate_table(self, table, **kw) -> c.TableResult:
        """See :meth:`rating400_client.Client.rate_table`."""
        return c.collect([r async for r in self.rate_batches([c.columns.normalise(table)], **kw)])
