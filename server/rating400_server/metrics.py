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

_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """Worker-side metrics.

    Per-RPC observations are kept in plain Python counters and lists and
    flushed into prometheus_client every ``FLUSH_SECONDS`` (and at shutdown),
    through its public API only (``Counter.inc(n)``, ``Histogram.observe``):
    in multiprocess mode every call writes a memory-mapped file under a lock,
    so counters are summed first; latencies are observed one by one at the
    flush, off the RPC's own path. Scrapes lag by at most one flush interval.
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
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self.catalog_version = Gauge("rating400_catalog_version", "Catalog version in use",
                                         multiprocess_mode="max")
        else:
            self.catalog_version = Gauge("rating400_catalog_version", "Catalog version in use")
        self.reloads = Counter("rating400_catalog_reloads_total", "Catalog version swaps picked up")
        self._req: dict = {}  # (method, code) -> count since the last flush
        self._lat: dict = {}  # method -> latencies (s) since the last flush
        self._cdr: dict = {}
        self._rej: dict = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        key = (method, code)
        self._req[key] = self._req.get(key, 0) + 1
        lat = self._lat.get(method)
        if lat is None:
            lat = self._lat[method] = []
        lat.append(seconds)

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
        for method, values in lat.items():
            observe = self.latency.labels(method).observe  # the public API, one call per RPC
            for seconds in values:
                observe(seconds)
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
