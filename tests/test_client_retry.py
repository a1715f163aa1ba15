"""Client library behaviour against an in-process stand-in server:
deadlines, retries with backoff on UNAVAILABLE, batch streaming, resend."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent import futures

import grpc
import pyarrow as pa
import pytest

from rating400.v1 import rating_pb2, rating_pb2_grpc
from rating400_client import AsyncClient, Client, RetryPolicy
from rating400_client import columns

FAST = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.05)


class FlakyRating(rating_pb2_grpc.RatingServiceServicer):
    def __init__(self, fail_first=0, code=grpc.StatusCode.UNAVAILABLE, break_stream_after=None):
        self.fail_first = fail_first
        self.code = code
        self.calls = 0
        self.streams = 0
        self.break_stream_after = break_stream_after
        self.seen_batches: list[int] = []
        self.lock = threading.Lock()

    def RateCdr(self, request, context):
        with self.lock:
            self.calls += 1
            n = self.calls
        if n <= self.fail_first:
            context.abort(self.code, f"attempt {n} fails")
        return rating_pb2.RateCdrResponse(rated_cdr=rating_pb2.RatedCdr(call_id=request.cdr.call_id, charge=100))

    def RateCdrBatches(self, request_iterator, context):
        with self.lock:
            self.streams += 1
            stream = self.streams
        answered = 0
        for req in request_iterator:
            if self.break_stream_after is not None and stream == 1 and answered == self.break_stream_after:
                context.abort(grpc.StatusCode.UNAVAILABLE, "worker going away")
            self.seen_batches.append(req.batch_id)
            n = len(req.cdrs.call_id)
            resp = rating_pb2.RateCdrBatchesResponse(batch_id=req.batch_id, catalog_version=7)
            resp.rated.row.extend(range(n))
            resp.rated.call_id.extend(req.cdrs.call_id)
            resp.rated.charge.extend([100] * n)
            resp.rated.replayed.extend([False] * n)
            answered += 1
            yield resp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(servicer, port=0):
    server = grpc.server(futures.ThreadPoolExecutor(8))
    rating_pb2_grpc.add_RatingServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, port


@pytest.fixture
def flaky():
    servers = []

    def make(**kw):
        svc = FlakyRating(**kw)
        server, port = _start(svc)
        servers.append(server)
        return svc, f"127.0.0.1:{port}"

    yield make
    for s in servers:
        s.stop(0)


CDR = {"call_id": "c1", "caller": "13812345678", "number": "4008123456", "forwarded_to": "02088886666",
       "start": "2026-11-02T09:00:00+08:00", "agent_answer": "2026-11-02T09:00:07+08:00",
       "end": "2026-11-02T09:03:10+08:00"}


def test_retries_unavailable_then_succeeds(flaky):
    svc, target = flaky(fail_first=2)
    with Client(target, retry=FAST) as c:
        resp = c.rate_cdr(CDR)
    assert resp.rated_cdr.call_id == "c1"
    assert svc.calls == 3


def test_does_not_retry_other_codes(flaky):
    svc, target = flaky(fail_first=5, code=grpc.StatusCode.INVALID_ARGUMENT)
    with Client(target, retry=FAST) as c, pytest.raises(grpc.RpcError) as e:
        c.rate_cdr(CDR)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert svc.calls == 1


def test_gives_up_after_max_attempts(flaky):
    svc, target = flaky(fail_first=100)
    with Client(target, retry=FAST) as c, pytest.raises(grpc.RpcError) as e:
        c.rate_cdr(CDR)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert svc.calls == FAST.max_attempts


def test_deadline_bounds_all_attempts(flaky):
    svc, target = flaky(fail_first=10_000)
    slow = RetryPolicy(max_attempts=1000, initial_backoff=0.05, max_backoff=0.1, jitter=0.0)
    t0 = time.monotonic()
    with Client(target, retry=slow) as c, pytest.raises(grpc.RpcError):
        c.rate_cdr(CDR, timeout=0.4)
    assert time.monotonic() - t0 < 1.0
    assert 2 <= svc.calls < 20


def test_backoff_is_exponential_and_capped():
    p = RetryPolicy(initial_backoff=0.1, multiplier=2.0, max_backoff=0.5, jitter=0.0)
    assert [p.backoff(k) for k in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    pj = RetryPolicy(initial_backoff=0.1, jitter=0.5)
    assert all(0.05 <= pj.backoff(1) <= 0.1 for _ in range(100))


def test_retry_while_server_comes_up():
    """Connection refused is UNAVAILABLE: the client rides out a restart.

    gRPC caps a retry policy at 5 attempts and draws each pause uniformly
    in [0, backoff], so the ride-out lasts about 2 s on average with these
    backoffs; the server is built before the call and only its start is
    delayed (0.05 s), so the margin does not depend on how loaded the
    machine is."""
    port = _free_port()
    server = grpc.server(futures.ThreadPoolExecutor(8))
    rating_pb2_grpc.add_RatingServiceServicer_to_server(FlakyRating(), server)

    def later():
        time.sleep(0.05)
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()

    t = threading.Thread(target=later)
    t.start()
    try:
        with Client(f"127.0.0.1:{port}", retry=RetryPolicy(max_attempts=5, initial_backoff=0.25,
                                                           max_backoff=2.0)) as c:
            assert c.rate_cdr(CDR, timeout=30).rated_cdr.call_id == "c1"
    finally:
        t.join()
        server.stop(0)


def _table(n):
    return pa.table({
        "call_id": [f"c{i}" for i in range(n)],
        "caller": ["13812345678"] * n,
        "number": ["4008123456"] * n,
        "forwarded_to": ["02088886666"] * n,
        "start": pa.array([1_793_000_000_000 + i for i in range(n)], pa.int64()),
        "end": pa.array([1_793_000_060_000 + i for i in range(n)], pa.int64()),
    })


def test_rate_table_batches_and_reindexes(flaky):
    svc, target = flaky()
    with Client(target) as c:
        res = c.rate_table(_table(25), batch_size=10)
    assert len(svc.seen_batches) == 3
    assert res.rated.column("row").to_pylist() == list(range(25))
    assert res.rated.column("call_id").to_pylist() == [f"c{i}" for i in range(25)]
    assert res.catalog_versions == {7}
    # This fake server is older than RatedCdrColumns.charge_minor (it fills
    # only the deprecated charge): the client gives the money under its
    # *_minor name too, from that column (F11).
    assert res.rated.column("charge_minor").to_pylist() == [100] * 25 == res.rated.column("charge").to_pylist()


def test_stream_resends_unanswered_batches_after_unavailable(flaky):
    svc, target = flaky(break_stream_after=2)
    with Client(target, retry=FAST) as c:
        res = c.rate_table(_table(50), batch_size=10, window=2)
    assert svc.streams == 2
    # Every row answered exactly once in the result, in input order.
    assert res.rated.column("row").to_pylist() == list(range(50))


def test_columns_encoding_roundtrip():
    t = columns.normalise(pa.table({
        "call_id": ["a", "b"], "number": ["4008123456"] * 2,
        "start": ["2026-11-02T09:00:00+08:00", "2026-11-02T01:00:00Z"],
        "agent_answer": pa.array([None, 1_793_000_000_000], pa.int64()),
        "end": pa.array([1_793_000_060_000, 1_793_000_070_000], pa.int64()),
    }))
    cols = columns.table_to_columns(t)
    assert list(cols.call_id) == ["a", "b"]
    assert list(cols.agent_answer_ms) == [0, 1_793_000_000_000]  # absent -> 0
    assert cols.start_ms[0] == cols.start_ms[1]  # 09:00+08:00 == 01:00Z
    assert columns.to_ms("2026-11-02T09:00:00+08:00") == cols.start_ms[0]
    with pytest.raises(ValueError):
        columns.to_ms(__import__("datetime").datetime(2026, 1, 1))  # naive: ambiguous


def test_async_client_retries_and_streams(flaky):
    svc, target = flaky(fail_first=2)

    async def main():
        async with AsyncClient(target, retry=FAST) as c:
            r = await c.rate_cdr(CDR)
            res = await c.rate_table(_table(30), batch_size=7)
            return r, res

    r, res = asyncio.run(main())
    assert r.rated_cdr.call_id == "c1" and svc.calls == 3
    assert res.rated.column("row").to_pylist() == list(range(30))


def test_async_stream_resends_after_unavailable(flaky):
    svc, target = flaky(break_stream_after=1)

    async def main():
        async with AsyncClient(target, retry=FAST) as c:
            return await c.rate_table(_table(40), batch_size=10, window=2)

    res = asyncio.run(main())
    assert svc.streams == 2
    assert res.rated.column("row").to_pylist() == list(range(40))
