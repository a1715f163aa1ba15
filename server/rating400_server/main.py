"""Supervisor: start one worker per core on a shared port, serve metrics,
forward SIGTERM for a graceful drain, restart a worker that crashes."""
from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

from . import envvars, logs
from rating_core.cdr import Limits
from rating_core.errors import StoreError
from rating_core.ledger.envs import ledger_map_size, live_map_size

from .auth import Auth, check_bind
from .worker import WorkerConfig, run

log = logging.getLogger("rating400.supervisor")


def _reserve_port(host: str, port: int) -> tuple[int, socket.socket]:
    """Bind (not listen) with SO_REUSEPORT to learn/keep the port for the workers.

    SO_REUSEPORT would also let a second ``rating400 serve`` bind the same
    port and silently share its traffic, so first the port is probed with a
    plain bind (SO_REUSEADDR only, so TIME_WAIT leftovers of an earlier run do
    not count): Linux refuses it while any other socket holds the port.
    Raises OSError (EADDRINUSE) when the port is taken.
    """
    fam = socket.AF_INET6 if ":" in host and host != "0.0.0.0" else socket.AF_INET
    addr = (host.strip("[]") if host not in ("", "0.0.0.0") else "0.0.0.0", port)
    if port:
        probe = socket.socket(fam, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(addr)
        finally:
            probe.close()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(addr)
    return s.getsockname()[1], s


def _death(exitcode: int | None) -> str:
    """How a worker ended: ``SIGKILL``, ``exit 3``..."""
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit {exitcode}"


class Backoff:
    """Restart delays for one worker slot: none for a worker that ran for
    ``healthy_after`` seconds, then 0.25, 0.5, 1, ... up to ``most`` seconds
    while it keeps dying young (a crash loop), so a broken store or a bad
    deployment is logged a few times a minute, not spun on."""

    def __init__(self, first: float = 0.25, most: float = 30.0, healthy_after: float = 10.0):
        self.first, self.most, self.healthy_after = first, most, healthy_after
        self.failures = 0

    def delay(self, lived: float) -> float:
        if lived >= self.healthy_after:
            self.failures = 0
            return 0.0
        self.failures += 1
        return 0.0 if self.failures == 1 else min(self.most, self.first * 2 ** (self.failures - 2))


def serve(
    store_dir: str,
    host: str = "127.0.0.1",
    port: int = 50051,
    workers: int | None = None,
    *,
    metrics_port: int | None = None,
    metrics_host: str = "0.0.0.0",
    grace: float = 10.0,
    refresh_interval: float = 0.1,
    log_level: str = "INFO",
    ready_file: str | None = None,
    max_concurrent_rpcs: int | None = None,
    limits: Limits | None = None,
    auth: Auth | None = None,
    allow_insecure: bool = False,
    catalog_root: str | None = None,
) -> int:
    """Run the gRPC service until SIGTERM/SIGINT; returns an exit status.

    store_dir: the catalog store (snapshots + ledger) the workers open.
    port: 0 picks a free port. workers: default one per core.
    metrics_port: serve Prometheus metrics (merged over workers) on this port;
    None disables the endpoint, 0 picks a free port.
    grace: seconds in-flight RPCs get to finish on SIGTERM.
    ready_file: written (JSON: port, metrics_port, pids) once every worker serves.
    limits: the edge's request limits (rating_core.cdr.Limits).
    auth: TLS and roles (auth.Auth); a non-loopback host without them is
    refused (exit 2) unless allow_insecure.
    catalog_root: Compile by server path reads only under this directory
    (None: catalogs are accepted as content only).
    """
    try:
        envvars.check()  # before any worker reads them: one line, not a crash loop
    except envvars.EnvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logs.setup(log_level)
    workers = workers or os.cpu_count() or 1
    store_dir = os.path.abspath(store_dir)
    own_prom_dir = None
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        own_prom_dir = tempfile.mkdtemp(prefix="rating400-prom-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_prom_dir
    else:
        d = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):  # stale samples from an earlier run
            if f.endswith(".db"):
                os.remove(os.path.join(d, f))

    auth = auth or Auth()
    refused = check_bind(host, auth, allow_insecure)
    if refused:
        logs.log(log, logging.ERROR, "refusing to serve", host=host, error=refused)
        return 2
    try:
        live_map_size()  # RATING400_LIVE_MAP_MB: refused here, not in every worker's crash loop
        ledger_map_size()  # RATING400_LEDGER_MAP_MB likewise
    except StoreError as e:
        logs.log(log, logging.ERROR, "refusing to serve", error=str(e))
        return 2
    os.environ["RATING400_WORKERS"] = str(workers)  # workers size their kernel threads by it
    try:
        port, reservation = _reserve_port(host, port)
    except OSError as e:
        taken = e.errno == errno.EADDRINUSE
        logs.log(log, logging.ERROR, "cannot bind", host=host, port=port,
                 error="port in use (another rating400 serve or another program holds it)" if taken else str(e))
        return 2
    cfg = WorkerConfig(store_dir, host, port, grace, refresh_interval, log_level,
                       max_concurrent_rpcs, limits=limits or Limits(), auth=auth,
                       catalog_root=os.path.abspath(catalog_root) if catalog_root else None)
    ctx = multiprocessing.get_context("spawn")
    procs: dict[int, multiprocessing.process.BaseProcess] = {}
    started: dict[int, float] = {}
    # Each worker's "ready" Event lives as long as its worker: with "spawn" the
    # child re-opens the Event's named semaphore, and a dropped Event unlinks
    # it first (the FileNotFoundError in SemLock._rebuild every respawn died of).
    readies: dict[int, object] = {}
    stopping = {"flag": False}

    def start(i: int):
        ready = readies[i] = ctx.Event()
        p = ctx.Process(target=run, args=(cfg, i, ready), name=f"rating400-worker-{i}", daemon=False)
        p.start()
        procs[i] = p
        started[i] = time.monotonic()
        return ready

    def on_signal(signum, _frame):
        if not stopping["flag"]:
            stopping["flag"] = True
            logs.log(log, logging.INFO, "stopping", signal=signal.Signals(signum).name)
            for p in procs.values():
                if p.is_alive() and p.pid is not None:  # alive: started, so it has a pid
                    os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    for i in range(workers):
        start(i)
    deadline = time.monotonic() + 120
    for i in range(workers):
        r = readies[i]
        while not r.wait(0.1):  # type: ignore[attr-defined]
            if not procs[i].is_alive() or time.monotonic() > deadline or stopping["flag"]:
                logs.log(log, logging.ERROR, "worker failed to start", worker=i,
                         exitcode=procs[i].exitcode)
                on_signal(signal.SIGTERM, None)
                for p in procs.values():
                    p.join(cfg.grace + 5)
                reservation.close()
                return 1
    reservation.close()

    mport = None
    if metrics_port is not None:
        from .metrics import serve_merged

        mport = serve_merged(metrics_port, metrics_host)
    info = {"port": port, "metrics_port": mport, "workers": [p.pid for p in procs.values()],
            "pid": os.getpid()}
    logs.log(log, logging.INFO, "serving", host=host, **info)
    if ready_file:
        tmp = ready_file + ".tmp"
        with open(tmp, "w") as out:
            json.dump(info, out)
        os.replace(tmp, ready_file)

    from multiprocessing.connection import wait

    from .metrics import mark_dead

    backoff = {i: Backoff() for i in range(workers)}
    due: dict[int, float] = {}  # worker slot -> when to start it again
    while not stopping["flag"]:
        # Wake the moment a worker dies (its sentinel), or for a due restart.
        timeout = max(0.0, min(due.values()) - time.monotonic()) if due else 0.5
        wait([p.sentinel for i, p in procs.items() if i not in due], timeout=min(timeout, 0.5))
        if stopping["flag"]:
            break
        now = time.monotonic()
        for i, p in list(procs.items()):
            if i in due or p.is_alive():
                continue
            mark_dead(p.pid or 0)
            lived = now - started[i]
            delay = backoff[i].delay(lived)
            due[i] = now + delay
            level = logging.ERROR if delay else logging.WARNING
            logs.log(log, level, "worker died; restarting" if not delay else "worker crash loop; backing off",
                     worker=i, pid=p.pid, death=_death(p.exitcode), lived_seconds=round(lived, 3),
                     restart_in_seconds=delay, failures=backoff[i].failures)
        for i, when in list(due.items()):
            if when <= time.monotonic() and not stopping["flag"]:
                del due[i]
                start(i)
                logs.log(log, logging.INFO, "worker restarted", worker=i, pid=procs[i].pid)
    code = 0
    for p in procs.values():
        p.join(cfg.grace + 5)
        if p.is_alive():
            p.kill()
            code = 1
    logs.log(log, logging.INFO, "stopped")
    if own_prom_dir:
        shutil.rmtree(own_prom_dir, ignore_errors=True)
    return code
