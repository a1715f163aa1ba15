"""The engine as the service sees it: one ``rating_core.engine.Engine`` per
worker process (the real one; there is no other), opened after the worker
starts, plus the worker's engine thread and group committer.

Threads: the asyncio loop answers RPCs. Work that can take milliseconds
(rating batches, ledger commits with their fsync, catalog refresh) runs on a
single "engine" thread, so LMDB write transactions always come from one
thread and the loop keeps answering Authorize meanwhile. Billing reads
(statements, advice, reports, caller lists) take seconds and write nothing:
they run on their own "billing-read" threads (``EngineHost.read``), at most
``READS_RUNNING`` at once, so a call event never queues behind one.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, TypeVar

from rating_core.engine import Engine
from rating_core.errors import OverLimit, StaleView
from rating_core.rater import RatingResult
from rating_core.router import Decision

from . import envvars, logs
from .metrics import Metrics

log = logging.getLogger("rating400.engine")
T = TypeVar("T")

# Billing reads per worker: at most READS_RUNNING run at once (each holds a
# core and the GIL for seconds: a 2,000-CDR demo statement is 7-14 s), and at
# most READS_WAITING more wait for a turn, first come first served, until
# their deadline; one beyond those is refused at once (RESOURCE_EXHAUSTED).
READS_RUNNING = 2
READS_WAITING = 16
# Authorize under a view behind the account: refreshed and asked again at most so many times in all.
STALE_RETRIES = 3


def open_engine(store_dir: str) -> Engine:
    """The worker's engine on ``store_dir``. Kernel threads per worker: the
    cores left to each worker (RATING400_ENGINE_THREADS overrides), so N
    workers on N cores do not oversubscribe the machine."""
    workers = envvars.workers()
    threads = envvars.engine_threads()
    if threads <= 0:
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    return Engine.open(store_dir, threads=threads)


class EngineHost:
    """The worker's ``rating_core.engine.Engine`` and its engine thread.

    Services call ``engine.authorize`` inline on the loop (microseconds, the
    live ledger only; through ``authorize``, which refreshes a stale view on
    the engine thread) and everything that writes the durable ledger or
    rebuilds the engine's Router -- commits, call events, ``refresh`` --
    through ``run``, on the one engine thread (``Engine._route`` says why).
    Long reads of committed data go through ``read``, on threads of their own.
    """

    def __init__(self, engine: Engine, metrics: Metrics | None = None, refresh_interval: float = 0.1,
                 reads_running: int = READS_RUNNING, reads_waiting: int = READS_WAITING):
        self.engine = engine
        self.metrics = metrics
        self.refresh_interval = refresh_interval
        # The catalog version last logged and set on the gauge: a commit may
        # refresh the engine itself (``Engine.commit_group`` under a newer
        # customer layer), so a swap is told by the version, not by which
        # call did the refresh.
        self._announced = engine.version
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="engine")
        self.reads = ThreadPoolExecutor(reads_running, thread_name_prefix="billing-read")
        self._read_turn = asyncio.Semaphore(reads_running)
        self._reads_running, self._reads_waiting = reads_running, reads_waiting
        self._waiting = 0
        # The edge of committed stream messages (``Rater.prepare``: pure, no
        # ledger) runs here, so it overlaps the engine thread's commits.
        self.edge = ThreadPoolExecutor(1, thread_name_prefix="edge")
        self._refresher: asyncio.Task | None = None
        self._routing_error: str | None = None
        self._log_routing_error()
        self._set_version_gauge()

    def _log_routing_error(self) -> None:
        """Log the engine's routing error once when it appears or changes
        (rating still works; Authorize answers the error)."""
        error = self.engine.routing_error
        if error is not None and error != self._routing_error:
            log.error("%s", error)
        self._routing_error = error

    @property
    def version(self) -> int:
        return self.engine.version

    def _set_version_gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.catalog_version.set(self.version)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the engine thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(fn, *args, **kwargs))

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on a billing-read thread, never the engine thread.

        ``fn`` must only read: LMDB read transactions of its own (``begin()``,
        which run beside the engine thread's writer), the engine's current
        ``rater.snapshot`` (immutable; a refresh swaps in a new one) and
        handles the engine opened already (``Engine.ledger``, ``crm``,
        ``accounts.view.layer_dbs``). It must not write, open a database
        (``open_db`` waits for the writer's lock holding the GIL) or touch
        the Router. At most ``reads_running`` run at once; up to
        ``reads_waiting`` more wait for a turn (cancelled with their RPC);
        ``OverLimit`` (RESOURCE_EXHAUSTED) for one more."""
        if self._read_turn.locked() and self._waiting >= self._reads_waiting:
            raise OverLimit("billing reads", f"{self._reads_running} running and {self._waiting} waiting in this "
                                             "server process, the most it holds; retry later")
        self._waiting += 1
        try:
            await self._read_turn.acquire()
        finally:
            self._waiting -= 1
        # The turn is given back when the thread is done, not when the RPC
        # is: a cancelled RPC (deadline, client gone) does not stop its thread.
        loop = asyncio.get_running_loop()
        try:
            done = self.reads.submit(partial(fn, *args, **kwargs))
        except BaseException:
            self._read_turn.release()
            raise
        done.add_done_callback(lambda _: loop.call_soon_threadsafe(self._read_turn.release))
        return await asyncio.wrap_future(done)

    async def prepare(self, tables: list) -> tuple[Any, list]:
        """(the current Rater, ``Rater.prepare`` of each table), on the edge
        thread: what ``Engine.commit_tables`` does before its transaction,
        for ``Engine.commit_group`` on the engine thread next, with the
        Rater of the edge that prepared them."""
        rater = self.engine.rater
        loop = asyncio.get_running_loop()
        return rater, await loop.run_in_executor(self.edge, lambda: [rater.prepare(t) for t in tables])

    async def authorize(self, number: str, caller: str | None, at_ms: int | None = None, ivr_keys: str = "",
                        call_id: str | None = None) -> Decision:
        """``engine.authorize`` inline on the loop. When the engine's Router
        finds its view behind the account it decides for (``StaleView``: a
        package period the view does not know holds the account's stored
        balance, within a refresh tick of a package change; nothing decided
        or held), the engine refreshes on the engine thread (never on the
        loop: ``Engine._route``) and the call is authorized again; a view
        still behind after ``STALE_RETRIES`` attempts raises that
        ``StaleView`` (a ``Contended``: UNAVAILABLE, which clients retry)."""
        # Not ``Engine._fresh`` (the engine's one stale-view rule): that one
        # refreshes on the calling thread, and this runs on the loop, which
        # must never build a Router (``open_db`` waits for the ledger's write
        # lock holding the GIL: ``Engine._route``); here each refresh is
        # awaited on the engine thread. Its bound is the server's own
        # (``STALE_RETRIES``, 3; the engine's ``_STALE_RETRIES`` is 5).
        for attempt in range(STALE_RETRIES):
            try:
                return self.engine.authorize(number, caller, at_ms=at_ms, ivr_keys=ivr_keys, call_id=call_id,
                                             refresh=False)
            except StaleView:
                if attempt == STALE_RETRIES - 1:
                    raise
                await self.refresh()
        raise AssertionError("unreachable")

    async def refresh(self) -> bool:
        before = self._announced
        changed = await self.run(self.engine.refresh)
        self._announced = self.version
        if changed or self.version != before:
            self._log_routing_error()
            self._set_version_gauge()
            if self.metrics is not None:
                self.metrics.reloads.inc()
            if self.version != before:
                logs.log(log, logging.INFO, "catalog version swapped", old_version=before, version=self.version)
            else:  # an account operation moved the customer layer; same tariffs (newcomer: "swapped 1 -> 1")
                logs.log(log, logging.DEBUG, "customer layer refreshed", version=self.version)
        return changed

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep serving the version we have
                log.exception("catalog refresh failed; keeping the current version")

    def start(self) -> None:
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def close(self) -> None:
        if self._refresher:
            self._refresher.cancel()
        self.edge.shutdown(wait=True)  # no edge reads the snapshot once the engine closes
        await asyncio.to_thread(self.reads.shutdown)  # nor a billing read the ledger (the loop keeps going)
        await self.run(self.engine.close)
        self.executor.shutdown(wait=True)


class Pending:
    __slots__ = ("row", "future", "deadline")

    def __init__(self, row, future, deadline):
        self.row = row
        self.future = future
        self.deadline = deadline


class GroupCommitter:
    """Collects concurrent RateCdr calls into one ``rate_and_commit``.

    One LMDB write transaction (one fsync) serves every CDR waiting at that
    moment; each caller is answered only after that transaction committed.
    A request whose deadline passed before its turn is dropped uncommitted
    (the client sees DEADLINE_EXCEEDED and can retry safely). Two requests
    with the same call id and the same content in one group share the first
    row's result; one with other content waits for the next group, so the
    engine compares it with the committed first (``Engine.commit_prepared``).
    """

    def __init__(self, host: EngineHost, to_table, max_batch: int = 1024):
        self.host = host
        self.to_table = to_table
        self.max_batch = max_batch
        self.queue: list[Pending] = []
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self):
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, row: dict, deadline: float | None) -> tuple[RatingResult, int, int, bool]:
        """Commit ``row`` (a CDR as ``to_table`` takes it) with the others
        waiting; returns (result of its group's commit, its row in that
        result's request, rows in that request, whether it repeated a call id
        of the same group). Raises the commit's exception, or
        ``asyncio.TimeoutError`` when ``deadline`` (``time.monotonic()``) passed first."""
        fut = asyncio.get_running_loop().create_future()
        self.queue.append(Pending(row, fut, deadline))
        self.wakeup.set()
        return await fut

    async def _run(self):
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue:
                group, self.queue = self.queue[: self.max_batch], self.queue[self.max_batch:]
                await self._commit(group)

    async def _commit(self, group: list[Pending]):
        now = time.monotonic()
        live = []
        for p in group:
            if p.future.done():
                continue  # caller cancelled
            if p.deadline is not None and p.deadline <= now:
                p.future.set_exception(asyncio.TimeoutError())
                continue
            live.append(p)
        if not live:
            return
        first: dict[str, int] = {}
        rows: list = []
        owner: list = []
        later: list[Pending] = []
        for p in list(live):
            cid = p.row["call_id"]
            idx = first.get(cid)
            if idx is None:
                idx = first[cid] = len(rows)
                rows.append(p.row)
                owner.append(False)
            elif p.row != rows[idx]:
                # The same call id with other content: not a retransmission.
                # It goes in the next group, to be compared with this one's commit.
                live.remove(p)
                later.append(p)
                continue
            else:
                owner.append(True)  # duplicate within the group
            p.row = idx
        self.queue[:0] = later
        rac = self.host.engine.rate_and_commit
        # outcome[k] = (result or exception, failed, row index in that table, table rows)
        outcome: list[tuple[RatingResult | Exception, bool, int, int]]
        try:
            result = await self.host.run(rac, self.to_table(rows))
            outcome = [(result, False, i, len(rows)) for i in range(len(rows))]
        except Exception as e:  # noqa: BLE001
            if len(rows) == 1:
                outcome = [(e, True, 0, 1)]
            else:
                # One bad row must not fail its neighbours: commit one by one.
                outcome = []
                for r in rows:
                    try:
                        outcome.append((await self.host.run(rac, self.to_table([r])), False, 0, 1))
                    except Exception as e1:  # noqa: BLE001
                        outcome.append((e1, True, 0, 1))
        for p, dup in zip(live, owner):
            res, failed, i, n = outcome[p.row]
            if p.future.done():
                continue
            if failed:
                p.future.set_exception(res)
            else:
                p.future.set_result((res, i, n, dup))

    async def close(self):
        if self.task:
            # Let queued requests finish their commit, then stop.
            while self.queue:
                await asyncio.sleep(0.005)
            self.task.cancel()
