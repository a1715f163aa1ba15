"""One worker process: a grpc.aio server on the shared port (SO_REUSEPORT).

Started by the supervisor with the multiprocessing "spawn" method, so the
worker begins with no inherited gRPC threads, LMDB handles or locks; the
engine (catalog snapshot + ledger LMDB) is opened here, after the fork.
"""
from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import time
from dataclasses import dataclass

from rating_core.cdr import DEFAULT_LIMITS, Limits

from . import logs
from .auth import Auth

log = logging.getLogger("rating400.worker")



@dataclass
class WorkerConfig:
    store_dir: str
    host: str
    port: int
    grace: float = 10.0
    refresh_interval: float = 0.1
    log_level: str = "INFO"
    max_concurrent_rpcs: int | None = None
    limits: Limits = DEFAULT_LIMITS
    catalog_root: str | None = None  # Compile may read catalogs by path only under it
    auth: Auth | None = None  # TLS and roles (see auth.py); None: plaintext, no identity check


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the supervisor dies (even by kill -9)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, non-Linux
        pass


async def serve_worker(cfg: WorkerConfig, index: int, ready=None) -> None:
    import grpc
    from grpc_health.v1 import _async as health_async
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    from rating400.v1 import accounts_pb2, catalog_pb2, rating_pb2, routing_pb2

    from . import convert
    from .engine import EngineHost, GroupCommitter, open_engine
    from .metrics import Metrics
    from .accounts import AccountServicer
    from .services import CatalogAdminServicer, RatingServicer, RoutingServicer, register

    metrics = Metrics()
    engine = open_engine(cfg.store_dir)
    host = EngineHost(engine, metrics, cfg.refresh_interval)
    committer = GroupCommitter(host, convert.rows_to_table)

    auth = cfg.auth or Auth()
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            # Twice the edge's limit: a message between the two is decoded
            # no further and answered INVALID_ARGUMENT naming its size.
            ("grpc.max_receive_message_length", 2 * cfg.limits.max_message_bytes),
            ("grpc.max_send_message_length", 4 * cfg.limits.max_message_bytes),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ],
        maximum_concurrent_rpcs=cfg.max_concurrent_rpcs,
    )
    routing = routing_pb2.DESCRIPTOR.services_by_name["RoutingService"]
    rating = rating_pb2.DESCRIPTOR.services_by_name["RatingService"]
    catalog = catalog_pb2.DESCRIPTOR.services_by_name["CatalogAdminService"]
    limits, most = cfg.limits, cfg.limits.max_message_bytes
    register(server, RoutingServicer(host, metrics, limits), routing, most, auth)
    register(server, RatingServicer(host, committer, metrics, limits), rating, most, auth)
    register(server, CatalogAdminServicer(host, cfg.store_dir, metrics, cfg.catalog_root), catalog, most, auth)
    from .billing_service import SERVICE as billing, BillingServicer  # issue 10: advice, statements, CRM

    register(server, BillingServicer(host, metrics), billing, most, auth)
    accounts = accounts_pb2.DESCRIPTOR.services_by_name["AccountService"]
    account_servicer = AccountServicer(host, metrics, cfg.store_dir)
    register(server, account_servicer, accounts, most, auth)
    from .explain_service import SERVICE as explain, ExplainServicer  # issue 7: charge explanations

    register(server, ExplainServicer(host, metrics), explain, most, auth)
    from .rerate_service import SERVICE as rerate, RerateServicer  # issue 7: rerating (admin only)

    register(server, RerateServicer(host, metrics), rerate, most, auth)
    health = health_async.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = [routing.full_name, rating.full_name, catalog.full_name, billing.full_name, accounts.full_name,
             explain.full_name, rerate.full_name]
    reflection.enable_server_reflection(
        names + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    creds = auth.server_credentials()
    address = f"{cfg.host}:{cfg.port}"
    bound = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    if bound == 0:
        raise RuntimeError(f"could not bind {cfg.host}:{cfg.port}")
    await server.start()
    host.start()
    committer.start()
    if index == 0:
        account_servicer.start_sweeper()  # one worker applies the time-driven transitions
    flusher = asyncio.get_running_loop().create_task(metrics.flush_forever())
    for name in names:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)

    # Everything loaded so far (grpc, pyarrow, the catalog, the router's
    # tables) lives as long as the worker: move it out of the cyclic GC's
    # reach, or every collection of the young generations' overflow walks
    # it again. Per-request garbage is still collected as usual.
    gc.collect()
    gc.freeze()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    logs.log(log, logging.INFO, "worker serving", port=bound, catalog_version=host.version)
    if ready is not None:
        ready.set()

    await stop.wait()
    logs.log(log, logging.INFO, "draining", grace_seconds=cfg.grace)
    await health.enter_graceful_shutdown()
    # New RPCs are refused at once; in-flight RPCs get `grace` seconds.
    draining = time.monotonic()
    await server.stop(cfg.grace)
    if time.monotonic() - draining >= cfg.grace:
        # gRPC cancelled the calls still running (the client sees UNAVAILABLE
        # "Cancelling all calls" or CANCELLED): a CDR whose group commit was
        # under way is committed unanswered, and the client's retry is
        # answered `replayed`, never charged twice. Only then.
        logs.log(log, logging.WARNING, "drain grace ran out; calls still running were cancelled",
                 grace_seconds=cfg.grace)
    await committer.close()
    await account_servicer.close()
    await host.close()
    flusher.cancel()
    metrics.flush()
    logs.log(log, logging.INFO, "worker stopped")


def run(cfg: WorkerConfig, index: int, ready=None) -> None:
    """multiprocessing target."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor turns ^C into SIGTERM
    logs.setup(cfg.log_level, worker=index)
    try:
        asyncio.run(serve_worker(cfg, index, ready))
    except Exception:
        log.exception("worker failed")
        os._exit(3)
