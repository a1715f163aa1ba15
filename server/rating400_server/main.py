"""Supervisor: start one worker per core on a shared port, serve metrics,
forward SIGTERM for a graceful drain, restart a worker that crashes."""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time

from . import logs
from .worker import WorkerConfig, run

log = logging.getLogger("rating400.supervisor")


def _reserve_port(host: str, port: int) -> tuple[int, socket.socket]:
    """Bind (not listen) with SO_REUSEPORT to learn/keep the port for the workers."""
    fam = socket.AF_INET6 if ":" in host and host != "0.0.0.0" else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host.strip("[]") if host not in ("", "0.0.0.0") else "0.0.0.0", port))
    return s.getsockname()[1], s


def serve(
    store_dir: str,
    host: str = "0.0.0.0",
    port: int = 50051,
    workers: int | None = None,
    *,
    metrics_port: int | None = None,
    metrics_host: str = "0.0.0.0",
    grace: float = 10.0,
    engine_factory: str | None = None,
    refresh_interval: float = 0.1,
    log_level: str = "INFO",
    ready_file: str | None = None,
    max_concurrent_rpcs: int | None = None,
) -> int:
    """Run the gRPC service until SIGTERM/SIGINT; returns an exit status.

    store_dir: the catalog store (snapshots + ledger) the workers open.
    port: 0 picks a free port. workers: default one per core.
    metrics_port: serve Prometheus metrics (merged over workers) on this port;
    None disables the endpoint, 0 picks a free port.
    grace: seconds in-flight RPCs get to finish on SIGTERM.
    engine_factory: "module:callable" (store_dir -> engine); default
    rating_core.engine.Engine.open.
    ready_file: written (JSON: port, metrics_port, pids) once every worker serves.
    """
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

    os.environ["RATING400_WORKERS"] = str(workers)  # workers size their kernel threads by it
    try:
        port, reservation = _reserve_port(host, port)
    except OSError as e:
        logs.log(log, logging.ERROR, "cannot bind", host=host, port=port, error=str(e))
        return 2
    cfg = WorkerConfig(store_dir, host, port, grace, engine_factory, refresh_interval, log_level,
                       max_concurrent_rpcs)
    ctx = multiprocessing.get_context("spawn")
    procs: dict[int, multiprocessing.Process] = {}
    stopping = {"flag": False}

    def start(i: int):
        ready = ctx.Event()
        p = ctx.Process(target=run, args=(cfg, i, ready), name=f"rating400-worker-{i}", daemon=False)
        p.start()
        procs[i] = p
        return ready

    def on_signal(signum, _frame):
        if not stopping["flag"]:
            stopping["flag"] = True
            logs.log(log, logging.INFO, "stopping", signal=signal.Signals(signum).name)
            for p in procs.values():
                if p.is_alive():
                    os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    readies = [start(i) for i in range(workers)]
    deadline = time.monotonic() + 120
    for i, r in enumerate(readies):
        while not r.wait(0.1):
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
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, ready_file)

    restarts: dict[int, float] = {}
    while True:
        time.sleep(0.2)
        if stopping["flag"]:
            break
        for i, p in list(procs.items()):
            if not p.is_alive():
                from .metrics import mark_dead

                mark_dead(p.pid)
                logs.log(log, logging.ERROR, "worker died; restarting", worker=i, pid=p.pid,
                         exitcode=p.exitcode)
                last = restarts.get(i, 0.0)
                if time.monotonic() - last < 1.0:
                    time.sleep(1.0)  # crash loop: back off
                restarts[i] = time.monotonic()
                start(i)
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
