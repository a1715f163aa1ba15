"""Prometheus metrics, multi-process aware.

Choice: prometheus_client's multiprocess mode. The supervisor points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before it starts the
workers; each worker writes its samples to memory-mapped files there and the
supervisor serves the merged view on one HTTP port (``--metrics-port``).
One scrape target, whatever the worker count; a dead worker's gauges are
dropped with ``mark_process_dead``.

Metrics (all prefixed ``rating400_``):
  requests_total{method,code}            every finished RPC, by status code
  request_duration_seconds{method}       latency histogram
  errors_total{method,code}              RPCs that ended with a non-OK code
  cdrs_rated_total{rpc,outcome}          CDR rows: committed / replayed / dry_run
  cdrs_rejected_total{rpc}               CDR rows rejected (bad field)
  catalog_version                        catalog version in use (max over workers)
  catalog_reloads_total                  catalog version swaps picked up
"""
from __future__ import annotations

import os
from bisect import bisect_left

_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """Worker-side metrics.

    Per-RPC observations are aggregated in plain Python counters and flushed
    into prometheus_client every ``FLUSH_SECONDS`` (and at shutdown): in
    multiprocess mode every ``inc``/``observe`` writes a memory-mapped file
    under a lock, which at thousands of RPCs per second is a visible share of
    an Authorize call. Scrapes therefore lag by at most one flush interval.
    """

    FLUSH_SECONDS = 1.0

    def __init__(self):
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter("rating400_requests_total", "RPCs finished", ["method", "code"])
        self.latency = Histogram(
            "rating400_request_duration_seconds", "RPC latency", ["method"], buckets=_BUCKETS
        )
        self.errors = Counter("rating400_errors_total", "RPCs ended with a non-OK code", ["method", "code"])
        self.cdrs = Counter("rating400_cdrs_rated_total", "CDR rows rated", ["rpc", "outcome"])
        self.rejects = Counter("rating400_cdrs_rejected_total", "CDR rows rejected", ["rpc"])
        kw = {"multiprocess_mode": "max"} if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else {}
        self.catalog_version = Gauge("rating400_catalog_version", "Catalog version in use", **kw)
        self.reloads = Counter("rating400_catalog_reloads_total", "Catalog version swaps picked up")
        self._bounds = list(_BUCKETS)
        self._req: dict = {}  # (method, code) -> count since the last flush
        self._lat: dict = {}  # method -> [bucket counts..., +Inf count], sum
        self._cdr: dict = {}
        self._rej: dict = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        key = (method, code)
        self._req[key] = self._req.get(key, 0) + 1
        lat = self._lat.get(method)
        if lat is None:
            lat = self._lat[method] = [[0] * (len(self._bounds) + 1), 0.0]
        lat[0][bisect_left(self._bounds, seconds)] += 1
        lat[1] += seconds

    def rated(self, rpc: str, outcome: str, n: int) -> None:
        if n:
            key = (rpc, outcome)
            self._cdr[key] = self._cdr.get(key, 0) + n

    def rejected(self, rpc: str, n: int) -> None:
        if n:
            self._rej[rpc] = self._rej.get(rpc, 0) + n

    def flush(self) -> None:
        req, self._req = self._req, {}
        lat, self._lat = self._lat, {}
        cdr, self._cdr = self._cdr, {}
        rej, self._rej = self._rej, {}
        for (method, code), n in req.items():
            self.requests.labels(method, code).inc(n)
            if code != "OK":
                self.errors.labels(method, code).inc(n)
        for method, (counts, total) in lat.items():
            h = self.latency.labels(method)
            # Histogram keeps per-bucket (non-cumulative) counts: bucket i
            # holds observations in (bound[i-1], bound[i]], as observe() does.
            for i, n in enumerate(counts):
                if n:
                    h._buckets[i].inc(n)
            h._sum.inc(total)
        for (rpc, outcome), n in cdr.items():
            self.cdrs.labels(rpc, outcome).inc(n)
        for rpc, n in rej.items():
            self.rejects.labels(rpc).inc(n)

    async def flush_forever(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(self.FLUSH_SECONDS)
            self.flush()


def serve_merged(port: int, host: str = "0.0.0.0") -> int:
    """Supervisor side: serve the merged multiprocess view; returns the port."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server.server_port


def mark_dead(pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
