"""gRPC service benchmarks, load from separate processes.

(a) bare grpc.aio server answering only the standard health Check and
(b) our Authorize with a call id (each request reserves credit: one
live-ledger write) and (b') the same without one (a query, which holds
nothing), and (a') the same health Check on our server (our process model,
options and services, before any handler of ours), all driven by h2load with a pre-encoded gRPC frame at 16
requests in flight, interleaved round by round so all see the same
machine; reported: RPS, p50/p99 (from h2load's per-request log) and the
ratio (target: Authorize >= 90% of bare, p99 < 10 ms), beside the
in-process cost of one authorize call.
(c) streaming rating over RateCdrBatches from a multi-process Python
client (Arrow IPC and packed-column encodings, committed exactly-once and
dry run), in CDR/s, beside in-process Engine.rate / rate_and_commit.

Both servers run the same process model (one worker per core, SO_REUSEPORT).
Figures go to benchmark.extra_info and are printed. RATING400_BENCH_SMALL=1
runs everything briefly (CI). Speed is reported, never asserted. The wire
benchmarks skip when h2load (Debian: nghttp2-client) is missing.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rating_core.demo import write_demo_catalog

SMALL = os.environ.get("RATING400_BENCH_SMALL", "") not in ("", "0")
ROUNDS = 1 if SMALL else 3
SECONDS = 1 if SMALL else 5
IN_FLIGHT = 16
STREAM_CDRS = 40_000 if SMALL else 1_000_000
STREAM_BATCH = 65_536  # rows per RateCdrBatches message (32k-64k measured best)
WORKERS = os.cpu_count() or 2
PEERS = str(Path(__file__).with_name("bench_service_peers.py"))

# A service desk number of the demo (round robin over agents, caller memory,
# caps; out of hours a duty phone): a realistic routing decision per call.
NUMBER = "4000589196"
CALLER = "13812345678"




def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _frame(msg) -> bytes:
    body = msg.SerializeToString()
    return b"\0" + struct.pack(">I", len(body)) + body


def _wait_file(path: Path, proc: subprocess.Popen, what: str, timeout=90.0) -> dict:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)
    return json.loads(path.read_text())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def h2load():
    path = shutil.which("h2load")
    if not path:
        pytest.skip("h2load not installed (apt-get install nghttp2-client)")
    return path


@pytest.fixture(scope="module")
def service_store(tmp_path_factory):
    from rating_core.store import Store

    root = tmp_path_factory.mktemp("svc-bench")
    catalog = write_demo_catalog(root / "catalog")
    store = Store(root / "store")
    store.activate(store.compile(catalog))
    return root / "store"


@pytest.fixture(scope="module")
def our_server(service_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("svc-bench-run")
    ready = tmp / "ready.json"
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rating400_server", "--store", str(service_store), "--host", "127.0.0.1",
         "--port", "0", "--workers", str(WORKERS), "--ready-file", str(ready), "--log-level", "WARNING",
         "--local-admin"],
        stdout=log, stderr=log, start_new_session=True)
    info = _wait_file(ready, proc, "rating400 server")
    yield info
    _stop(proc)
    log.close()


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bare")
    ready = tmp / "ready.json"
    port = _free_port()
    proc = subprocess.Popen([sys.executable, PEERS, "bare", "--port", str(port), "--workers", str(WORKERS),
                             "--ready-file", str(ready)], start_new_session=True)
    info = _wait_file(ready, proc, "bare server")
    yield info
    _stop(proc)


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cpu_seconds(pids) -> float:
    """User + system CPU of these processes (all threads), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / tick


def run_h2load(h2load: str, port: int, path: str, frame: Path, log: Path, seconds: float,
               server_pid: int | None = None) -> dict:
    """h2load at IN_FLIGHT concurrent requests (one per connection, so the
    kernel spreads them over the workers); RPS and latency percentiles, and
    the server's CPU per request (robust to other load on a shared machine)."""
    workers = _children(server_pid) if server_pid else []
    cpu0 = _cpu_seconds(workers)
    cmd = [h2load, "-D", str(seconds), "--warm-up-time", "200ms" if SMALL else "500ms",
           "-c", str(IN_FLIGHT), "-m", "1", "-t", "1", "-d", str(frame),
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           f"--log-file={log}", f"http://127.0.0.1:{port}{path}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout
    if "finished in" not in out:
        raise RuntimeError(f"h2load failed: {proc.stderr[-2000:] or out[-2000:]}")
    done = failed = 0
    rps = 0.0
    for line in out.splitlines():
        if line.startswith("finished in"):
            rps = float(line.split(",")[1].split()[0])
        if line.startswith("requests:"):
            parts = {p.split()[1]: int(p.split()[0]) for p in line.split(":", 1)[1].split(",")}
            done, failed = parts.get("succeeded", 0), parts.get("failed", 0) + parts.get("errored", 0)
    cpu = _cpu_seconds(workers) - cpu0
    lat = np.loadtxt(log, usecols=2, ndmin=1) / 1000.0 if log.exists() and log.stat().st_size else np.array([0.0])
    total = len(lat) if log.exists() else done
    return {"rps": rps, "ok": done, "failed": failed,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "server_cpu_us_per_request": cpu / total * 1e6 if total and workers else None}


@pytest.fixture(scope="module")
def local_engine(service_store):
    """One engine in this process for the in-process figures (LMDB opens an
    environment once per process)."""
    from rating_core.engine import Engine

    from rating400_server.engine import EngineHost

    engine = Engine.open(str(service_store), threads=1)
    yield EngineHost(engine)
    engine.close()


def _in_process_authorize(host) -> float:
    n = 2_000 if SMALL else 20_000
    host.engine.authorize(NUMBER, CALLER)
    t0 = time.perf_counter()
    for _ in range(n):
        host.engine.authorize(NUMBER, CALLER)
    return n / (time.perf_counter() - t0)


def test_unary_authorize_vs_bare_health(benchmark, h2load, our_server, bare_server, local_engine, tmp_path):
    from grpc_health.v1 import health_pb2

    from rating400.v1 import routing_pb2
    from rating400_client import Client

    # The request h2load replays must be a real, allowed call.
    with Client(f"127.0.0.1:{our_server['port']}") as c:
        c.wait_ready(30)
        assert c.authorize(NUMBER, CALLER).allow
    auth = tmp_path / "authorize.bin"  # with a call id: each request reserves credit (one live-ledger write)
    auth.write_bytes(_frame(routing_pb2.AuthorizeRequest(number=NUMBER, caller=CALLER, call_id="bench")))
    query = tmp_path / "query.bin"  # without one: a query that holds nothing (what Authorize was before reservations)
    query.write_bytes(_frame(routing_pb2.AuthorizeRequest(number=NUMBER, caller=CALLER)))
    health = tmp_path / "health.bin"
    health.write_bytes(_frame(health_pb2.HealthCheckRequest()))

    rounds, queries, ours = [], [], []

    def measure():
        for r in range(ROUNDS):
            b = run_h2load(h2load, bare_server["port"], "/grpc.health.v1.Health/Check", health,
                           tmp_path / f"bare{r}.log", SECONDS, bare_server["pid"])
            # The same health Check on our server: what our process model,
            # options and registered services cost before any handler of ours.
            o = run_h2load(h2load, our_server["port"], "/grpc.health.v1.Health/Check", health,
                           tmp_path / f"ours{r}.log", SECONDS, our_server["pid"])
            a = run_h2load(h2load, our_server["port"], "/rating400.v1.RoutingService/Authorize", auth,
                           tmp_path / f"auth{r}.log", SECONDS, our_server["pid"])
            q = run_h2load(h2load, our_server["port"], "/rating400.v1.RoutingService/Authorize", query,
                           tmp_path / f"query{r}.log", SECONDS, our_server["pid"])
            rounds.append((b, a))
            queries.append(q)
            ours.append(o)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ratios = [a["rps"] / b["rps"] for b, a in rounds if b["rps"]]
    cpu_ratios = [b["server_cpu_us_per_request"] / a["server_cpu_us_per_request"] for b, a in rounds
                  if b["server_cpu_us_per_request"] and a["server_cpu_us_per_request"]]
    med = lambda xs: float(np.median(xs))  # noqa: E731
    info = {
        "in_flight": IN_FLIGHT, "workers": WORKERS, "rounds": ROUNDS, "seconds_per_run": SECONDS,
        "bare_health_rps": med([b["rps"] for b, _ in rounds]),
        "bare_health_p50_ms": med([b["p50_ms"] for b, _ in rounds]),
        "bare_health_p99_ms": med([b["p99_ms"] for b, _ in rounds]),
        "authorize_rps": med([a["rps"] for _, a in rounds]),
        "authorize_p50_ms": med([a["p50_ms"] for _, a in rounds]),
        "authorize_p99_ms": med([a["p99_ms"] for _, a in rounds]),
        "authorize_over_bare": med(ratios),
        "bare_server_cpu_us_per_request": med([b["server_cpu_us_per_request"] or 0 for b, _ in rounds]),
        "authorize_server_cpu_us_per_request": med([a["server_cpu_us_per_request"] or 0 for _, a in rounds]),
        # Server CPU per request, bare / Authorize: the RPS ratio the same
        # machine would show with no other load on it.
        "authorize_over_bare_by_cpu": med(cpu_ratios) if cpu_ratios else None,
        "authorize_failed": sum(a["failed"] for _, a in rounds),
        "query_rps": med([q["rps"] for q in queries]),
        "query_p50_ms": med([q["p50_ms"] for q in queries]),
        "query_p99_ms": med([q["p99_ms"] for q in queries]),
        "query_over_bare": med([q["rps"] / b["rps"] for (b, _), q in zip(rounds, queries) if b["rps"]]),
        "query_server_cpu_us_per_request": med([q["server_cpu_us_per_request"] or 0 for q in queries]),
        "our_health_over_bare": med([o["rps"] / b["rps"] for (b, _), o in zip(rounds, ours) if b["rps"]]),
        "our_health_server_cpu_us_per_request": med([o["server_cpu_us_per_request"] or 0 for o in ours]),
        # Authorize against our own server's health Check: the handler's
        # share alone (validation, the routing kernel, the reservation write).
        "authorize_over_our_health": med([a["rps"] / o["rps"] for (_, a), o in zip(rounds, ours) if o["rps"]]),
        "load_average": round(os.getloadavg()[0], 2),
        "authorize_in_process_per_s": _in_process_authorize(local_engine),
        "per_round": [{"bare": b, "authorize": a} for b, a in rounds],
    }
    benchmark.extra_info.update(info)
    print("\n[service unary] " + json.dumps({k: v for k, v in info.items() if k != "per_round"}))
    for (b, a), q, o in zip(rounds, queries, ours):
        print(f"  round: bare {b['rps']:.0f} rps p99 {b['p99_ms']:.2f} ms cpu {b['server_cpu_us_per_request'] or 0:.0f} us/req"
              f" | our health {o['rps']:.0f} rps cpu {o['server_cpu_us_per_request'] or 0:.0f} us/req"
              f" | authorize {a['rps']:.0f} rps p50 {a['p50_ms']:.2f} p99 {a['p99_ms']:.2f} ms"
              f" cpu {a['server_cpu_us_per_request'] or 0:.0f} us/req | ratio {a['rps'] / max(b['rps'], 1):.2f}"
              f" | query {q['rps']:.0f} rps p99 {q['p99_ms']:.2f} ms ratio {q['rps'] / max(b['rps'], 1):.2f}")
    assert info["authorize_failed"] == 0 and sum(q["failed"] for q in queries) == 0


@pytest.fixture(scope="module")
def stream_table(tmp_path_factory):
    """Demo CDRs on the wire's columns, as an Arrow IPC file for the clients."""
    import pyarrow as pa

    from rating400_client import columns
    from rating_core.demo import demo_cdrs

    t = columns.normalise(demo_cdrs(STREAM_CDRS, seed=4))
    path = tmp_path_factory.mktemp("stream") / "cdrs.arrow"
    with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, t.schema) as w:
        w.write_table(t)
    return path


def _stream(target, table, encoding, dry_run, prefix, procs=WORKERS) -> dict:
    cmd = [sys.executable, PEERS, "stream", "--target", target, "--table", str(table), "--procs", str(procs),
           "--encoding", encoding, "--batch-size", str(STREAM_BATCH), "--id-prefix", prefix]
    if dry_run:
        cmd.append("--dry-run")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _in_process_rating(engine, table_path) -> dict:
    """The same CDRs through the engine in this process, one call each (the
    engine's own kernel threads: 1 here, as in each server worker)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.ipc.open_file(str(table_path)).read_all()
    t = t.rename_columns([c[:-3] if c.endswith("_ms") else c for c in t.column_names])
    t0 = time.perf_counter()
    engine.rate(t)
    rate = t.num_rows / (time.perf_counter() - t0)
    t = t.set_column(0, "call_id", pc.binary_join_element_wise(pa.scalar("inproc-"), t.column("call_id"), ""))
    t0 = time.perf_counter()
    engine.rate_and_commit(t)
    commit = t.num_rows / (time.perf_counter() - t0)
    out = {"in_process_rate_cdr_per_s": rate, "in_process_rate_and_commit_cdr_per_s": commit}
    # The stream's shape in process: STREAM_BATCH-row requests, one transaction
    # each, against four per transaction (``Engine.commit_tables``, as the
    # server groups a stream's messages). Fresh call ids each; CPU seconds too.
    for group, prefix in ((1, "each-"), (4, "by4-")):
        ids = pc.binary_join_element_wise(pa.scalar(prefix), t.column("call_id"), "")
        fresh = t.set_column(0, "call_id", ids)
        msgs = [fresh.slice(i, STREAM_BATCH) for i in range(0, t.num_rows, STREAM_BATCH)]
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(msgs), group):
            results, error = engine.commit_tables(msgs[i:i + group], decode_names=False)  # as the server
            assert error is None
        out[f"in_process_commit_groups_of_{group}_cdr_per_s"] = t.num_rows / (time.perf_counter() - t0)
        out[f"in_process_commit_groups_of_{group}_cpu_s"] = time.process_time() - c0
    return out


def test_streaming_rating(benchmark, our_server, stream_table, local_engine):
    target = f"127.0.0.1:{our_server['port']}"
    runs = {}

    def measure():
        runs["arrow_dry_run"] = _stream(target, stream_table, "arrow", True, "ad-")
        runs["arrow_committed"] = _stream(target, stream_table, "arrow", False, "ac-")
        runs["columns_dry_run"] = _stream(target, stream_table, "columns", True, "cd-")
        runs["columns_committed"] = _stream(target, stream_table, "columns", False, "cc-")

    benchmark.pedantic(measure, rounds=1, iterations=1)
    info = {"cdrs": STREAM_CDRS, "client_processes": WORKERS, "batch_rows": STREAM_BATCH}
    for k, v in runs.items():
        info[f"{k}_cdr_per_s"] = v["cdr_per_s"]
        assert v["rows"] == STREAM_CDRS * 1
    info.update(_in_process_rating(local_engine.engine, stream_table))
    benchmark.extra_info.update(info)
    print("\n[service streaming] " + json.dumps(info))
