"""Peers for bench_service.py (no tests here): the bare baseline server and
the streaming load generator, each run as a separate process.

    python benchmarks/bench_service_peers.py bare --port P --workers N --ready-file F
    python benchmarks/bench_service_peers.py stream --target H:P --table F.arrow ...
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import sys
import time


# -- the bare baseline: grpc.aio + the standard health service, nothing else --
async def _bare_worker(port: int) -> None:
    import grpc
    from grpc_health.v1 import _async as health_async
    from grpc_health.v1 import health_pb2_grpc

    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    health_pb2_grpc.add_HealthServicer_to_server(health_async.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


def _bare_run(port: int, ready) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
    except Exception:  # noqa: BLE001
        pass
    loop = asyncio.new_event_loop()
    loop.call_soon(ready.set)
    loop.run_until_complete(_bare_worker(port))


def bare(a) -> int:
    """Same process model as the real server (spawned workers, SO_REUSEPORT)."""
    ctx = multiprocessing.get_context("spawn")
    procs, readies = [], []
    for _ in range(a.workers):
        r = ctx.Event()
        p = ctx.Process(target=_bare_run, args=(a.port, r))
        p.start()
        procs.append(p)
        readies.append(r)
    for r in readies:
        r.wait(60)
    time.sleep(0.3)
    with open(a.ready_file + ".tmp", "w") as f:
        json.dump({"port": a.port, "pid": os.getpid()}, f)
    os.replace(a.ready_file + ".tmp", a.ready_file)
    done = {"flag": False}

    def stop(*_):
        done["flag"] = True
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not done["flag"]:
        time.sleep(0.1)
    for p in procs:
        p.join(5)
    return 0


# -- streaming load generator: one client process per connection --------------
def _stream_one(target: str, table_path: str, batch_size: int, encoding: str, dry_run: bool,
                repeat: int, id_prefix: str, part: int, parts: int, out) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    from rating400_client import Client

    table = pa.ipc.open_file(table_path).read_all()
    share = -(-table.num_rows // parts)
    table = table.slice(part * share, share)  # this process's share of the rows
    # Unique call ids per process and repeat: every CDR is new to the ledger.
    client = Client(target, options=[("grpc.use_local_subchannel_pool", 1)])
    client.wait_ready(30)
    tables = []
    for k in range(repeat):
        ids = pc.binary_join_element_wise(pa.scalar(f"{id_prefix}{k}-"), table.column("call_id"), "")
        tables.append(table.set_column(table.column_names.index("call_id"), "call_id", ids))
    t0 = time.perf_counter()
    rated = rejected = 0
    for r in client.rate_batches(tables, batch_size=batch_size, encoding=encoding, dry_run=dry_run, window=4):
        rated += r.rated.num_rows
        rejected += len(r.rejects)
    dt = time.perf_counter() - t0
    client.close()
    out.put({"rated": rated, "rejected": rejected, "seconds": dt, "t0": t0, "t1": t0 + dt})


def stream(a) -> int:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_stream_one, args=(a.target, a.table, a.batch_size, a.encoding, a.dry_run,
                                                   a.repeat, a.id_prefix, i, a.procs, q))
             for i in range(a.procs)]
    for p in procs:
        p.start()
    res = []
    for _ in procs:
        while True:
            try:
                res.append(q.get(timeout=1))
                break
            except Exception:  # noqa: BLE001 - queue.Empty: is everyone still alive?
                if any(p.exitcode not in (None, 0) for p in procs):
                    print(json.dumps({"error": "a client process failed"}))
                    return 1
    for p in procs:
        p.join(10)
    rows = sum(r["rated"] + r["rejected"] for r in res)
    wall = max(r["t1"] for r in res) - min(r["t0"] for r in res)
    print(json.dumps({"rows": rows, "rated": sum(r["rated"] for r in res),
                      "rejected": sum(r["rejected"] for r in res), "seconds": wall,
                      "cdr_per_s": rows / wall if wall > 0 else 0.0}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bare")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--workers", type=int, default=os.cpu_count())
    b.add_argument("--ready-file", required=True)
    s = sub.add_parser("stream")
    s.add_argument("--target", required=True)
    s.add_argument("--table", required=True, help="Arrow IPC file of CDRs")
    s.add_argument("--procs", type=int, default=2)
    s.add_argument("--batch-size", type=int, default=16384)
    s.add_argument("--encoding", default="arrow", choices=["arrow", "columns"])
    s.add_argument("--dry-run", action="store_true")
    s.add_argument("--repeat", type=int, default=1)
    s.add_argument("--id-prefix", default="bench-")
    a = ap.parse_args(argv)
    return bare(a) if a.cmd == "bare" else stream(a)


if __name__ == "__main__":
    sys.exit(main())
