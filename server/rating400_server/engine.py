"""The engine as the service sees it: one per worker process, opened after
the worker starts, plus the worker's engine thread and group committer.

Threads: the asyncio loop answers RPCs. Work that can take milliseconds
(rating batches, ledger commits with their fsync, catalog refresh) runs on a
single "engine" thread, so LMDB write transactions always come from one
thread and the loop keeps answering Authorize meanwhile.
"""
from __future__ import annotations

import asyncio
import importlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from . import logs

log = logging.getLogger("rating400.engine")


def default_factory(store_dir: str):
    """The real engine. Kernel threads per worker: the cores left to each
    worker (RATING400_ENGINE_THREADS overrides), so N workers on N cores do
    not oversubscribe the machine."""
    import os

    from rating_core.engine import Engine

    workers = int(os.environ.get("RATING400_WORKERS", "1") or 1)
    threads = int(os.environ.get("RATING400_ENGINE_THREADS", "0") or 0)
    if threads <= 0:
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    return Engine.open(store_dir, threads=threads)


def load_factory(spec: str | None):
    """``"module:callable"`` -> callable(store_dir) -> engine."""
    if not spec:
        return default_factory
    mod, _, name = spec.partition(":")
    return getattr(importlib.import_module(mod), name or "open")


class RoutingAdapter:
    """``authorize`` / ``call_event`` for an engine that does not offer them
    itself: a ``rating_core.router.Router`` on the engine's current snapshot
    and ledger.

    The Router is (re)built only on the engine thread (``sync``, right after
    ``Engine.refresh``): building one opens LMDB databases, which takes the
    ledger's write lock, and the loop thread must never wait for that lock
    while holding the GIL the engine thread needs to release it. Until the
    new Router is ready, calls keep using the previous one.
    """

    def __init__(self, engine):
        self.engine = engine
        self._rater = None
        self._router = None

    def sync(self) -> bool:
        rater = getattr(self.engine, "rater", None)
        if rater is None or rater is self._rater:
            return False
        from rating_core.router import Router

        self._router = Router(rater.snapshot, self.engine.ledger, previous=self._router)
        self._rater = rater
        return True

    def _current(self):
        router = self._router
        if router is None:
            raise RuntimeError("routing is not available for this catalog version (see the worker log)")
        return router

    def authorize(self, number, caller, at_ms=None, ivr_keys="", call_id=None):
        return self._current().authorize(number, caller, at_ms=at_ms, ivr_keys=ivr_keys, call_id=call_id)

    def interim(self, call_id, at_ms=None):
        return self._current().interim(call_id, at_ms=at_ms)

    def call_event(self, call_id, number, kind, destination=None, caller=None, at_ms=None):
        return self._current().call_event(call_id, number, kind, destination=destination, caller=caller,
                                          at_ms=at_ms)


class EngineHost:
    def __init__(self, engine, metrics=None, refresh_interval: float = 0.1):
        self.engine = engine
        adapter = None if hasattr(engine, "authorize") else RoutingAdapter(engine)
        self.adapter = adapter
        self._sync_routing()
        self.authorize = engine.authorize if adapter is None else adapter.authorize
        self.call_event = getattr(engine, "call_event", None) or getattr(adapter, "call_event", None)
        self.interim = getattr(engine, "interim", None) or getattr(adapter, "interim", None)
        self.metrics = metrics
        self.refresh_interval = refresh_interval
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="engine")
        self._refresher: asyncio.Task | None = None
        self._set_version_gauge()

    def _sync_routing(self) -> None:
        if self.adapter is None:
            return
        try:
            self.adapter.sync()
        except Exception:  # noqa: BLE001 - rating still works; Authorize reports the error
            log.exception("routing unavailable for catalog version %s", self.version)

    def _refresh_on_engine_thread(self) -> bool:
        changed = bool(self.engine.refresh())
        if changed:
            self._sync_routing()
        return changed

    @property
    def version(self) -> int:
        return int(getattr(self.engine, "version", 0) or 0)

    def _set_version_gauge(self):
        if self.metrics is not None:
            self.metrics.catalog_version.set(self.version)

    async def run(self, fn, *args, **kwargs):
        """Run ``fn`` on the engine thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(fn, *args, **kwargs))

    async def refresh(self) -> bool:
        before = self.version
        changed = await self.run(self._refresh_on_engine_thread)
        if changed:
            self._set_version_gauge()
            if self.metrics is not None:
                self.metrics.reloads.inc()
            logs.log(log, logging.INFO, "catalog version swapped", old_version=before, version=self.version)
        return changed

    async def _refresh_loop(self):
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep serving the version we have
                log.exception("catalog refresh failed; keeping the current version")

    def start(self):
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def close(self):
        if self._refresher:
            self._refresher.cancel()
        close = getattr(self.engine, "close", None)
        if close is not None:
            await self.run(close)
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
    with the same call id in one group share the first row's result.
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

    async def submit(self, row: dict, deadline: float | None):
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
        for p in live:
            cid = p.row["call_id"]
            idx = first.get(cid)
            if idx is None:
                idx = first[cid] = len(rows)
                rows.append(p.row)
                owner.append(False)
            else:
                owner.append(True)  # duplicate within the group
            p.row = idx
        rac = self.host.engine.rate_and_commit
        # outcome[k] = (result or exception, failed, row index in that table, table rows)
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
