"""Billing reads never hold the call path (N10 breaker, finding 2): they run
on the worker's billing-read threads (``EngineHost.read``), bounded, not on
the engine thread that CallEvent and CDR commits use."""
from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import grpc
import pytest

from rating400.v1 import billing_pb2, billing_pb2_grpc
from rating400_client import Client
from rating400_server.engine import EngineHost
from rating_core.demo import demo_cdrs
from rating_core.engine import Engine
from rating_core.errors import OverLimit
from demo_server import ACTIVE, CALLER, Server, make_store


def test_call_events_do_not_wait_for_statements(tmp_path):
    """With statements in flight on a one-worker server (each seconds of
    work: 6,000 committed demo calls and the HTML), a CallEvent STARTED is
    answered at once, not after them (before: 47-105 s behind 4 of them)."""
    store, _ = make_store(tmp_path)
    engine = Engine.open(store, threads=1)
    try:
        engine.rate_and_commit(demo_cdrs(6000, 7))
    finally:
        engine.close()
    server = Server(store, tmp_path, workers=1).start()
    try:
        channel = grpc.insecure_channel(server.target)
        billing = billing_pb2_grpc.BillingServiceStub(channel)
        ask = billing_pb2.StatementRequest(account="hangzhou_tea", month="2026-10", include_html=True)
        done: list[float] = []
        errors: list[BaseException] = []

        def statement():
            try:
                assert billing.GetStatement(ask, timeout=600).calls > 0
                done.append(time.monotonic())
            except BaseException as e:  # noqa: BLE001 - reported by the test thread
                errors.append(e)

        with Client(server.target, timeout=60) as client:
            client.call_event("warm-1", ACTIVE, "started", caller=CALLER)  # connection and first-call costs
            readers = [threading.Thread(target=statement) for _ in range(4)]
            for t in readers:
                t.start()
            time.sleep(0.5)  # the statements are running (2) and waiting (2) on the server
            t0 = time.monotonic()
            assert client.call_event("during-1", ACTIVE, "started", caller=CALLER).accepted
            answered = time.monotonic()
            for t in readers:
                t.join()
        channel.close()
    finally:
        server.stop()
    assert not errors, errors
    assert answered - t0 < 2.0, f"CallEvent took {answered - t0:.2f} s beside 4 statements"
    if min(done) > t0:  # the statements were still running when it was sent (a fast machine may finish first)
        assert answered < min(done), "the call event was answered after a statement finished"


def test_reads_are_bounded_and_hold_their_turn_until_their_thread_ends():
    """At most ``reads_running`` reads run at once and ``reads_waiting``
    wait; one more is refused (OverLimit: RESOURCE_EXHAUSTED). A read whose
    RPC is cancelled keeps its turn until its thread is done, and none runs
    on the engine thread."""

    async def main():
        host = EngineHost(SimpleNamespace(routing_error=None, version=1), reads_running=2, reads_waiting=1)
        release = threading.Event()
        running: list[str] = []
        names: list[str] = []

        def work(tag):
            running.append(tag)
            names.append(threading.current_thread().name)
            release.wait(30)
            return tag

        first = [asyncio.ensure_future(host.read(work, i)) for i in range(3)]
        await asyncio.sleep(0.2)
        assert sorted(running) == [0, 1]  # the third waits for a turn
        with pytest.raises(OverLimit) as e:
            await host.read(work, 3)
        assert "2 running and 1 waiting" in e.value.message
        first[0].cancel()  # its RPC ends; its thread does not
        await asyncio.sleep(0.2)
        assert sorted(running) == [0, 1]
        release.set()
        assert await first[1] == 1 and await first[2] == 2
        assert all(n.startswith("billing-read") for n in names)
        assert await host.read(lambda: "again") == "again"  # every turn came back
        await asyncio.to_thread(host.reads.shutdown)
        host.executor.shutdown()
        host.edge.shutdown()

    asyncio.run(main())
