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
    """Worker-side metrics with cached label children (labels() is not free)."""

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
        self._req = {}
        self._lat = {}
        self._err = {}
        self._cdr = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        key = (method, code)
        c = self._req.get(key)
        if c is None:
            c = self._req[key] = self.requests.labels(method, code)
        c.inc()
        h = self._lat.get(method)
        if h is None:
            h = self._lat[method] = self.latency.labels(method)
        h.observe(seconds)
        if code != "OK":
            e = self._err.get(key)
            if e is None:
                e = self._err[key] = self.errors.labels(method, code)
            e.inc()

    def rated(self, rpc: str, outcome: str, n: int) -> None:
        if n:
            key = (rpc, outcome)
            c = self._cdr.get(key)
            if c is None:
                c = self._cdr[key] = self.cdrs.labels(rpc, outcome)
            c.inc(n)

    def rejected(self, rpc: str, n: int) -> None:
        if n:
            self.rejects.labels(rpc).inc(n)


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
