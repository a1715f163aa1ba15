"""Server pieces in-process on the real engine (demo catalog): deadline
handling, group commit, error mapping, column conversion. (The end-to-end
behaviour over the wire is in test_service_grpc.py.)"""
from __future__ import annotations

import asyncio
import time

import grpc
import pyarrow as pa
import pytest

from rating400.v1 import rating_pb2, routing_pb2
from rating400_server import convert
from rating400_server.engine import EngineHost, GroupCommitter
from rating400_server.services import RoutingServicer, reason_status
from rating_core.engine import Engine
from rating_core.ledger import call_key, records
from rating_core.ledger.formats import COMMITTED
from test_engine import demo_store

PREPAID = "4008593431"  # jinghua_appliances, prepaid credit, IVR menu
PAYG = "4000589196"  # yuehai_logistics, pay as you go, service desk (agents in turn)


class Aborted(Exception):
    def __init__(self, code, details):
        self.code, self.details = code, details


class Ctx:
    def __init__(self, remaining=None):
        self.remaining = remaining

    def time_remaining(self):
        return self.remaining

    async def abort(self, code, details):
        raise Aborted(code, details)


class NullMetrics:
    def observe(self, *a):
        pass

    def rated(self, *a):
        pass

    def rejected(self, *a):
        pass


@pytest.fixture
def engine(tmp_path):
    """The real engine on the demo catalog (the server has no other)."""
    engine = Engine.open(demo_store(tmp_path), threads=1)
    yield engine
    engine.close()


def _run(coro):
    return asyncio.run(coro)


def test_expired_deadline_is_refused_before_work(engine):
    async def main():
        host = EngineHost(engine)
        svc = RoutingServicer(host, NullMetrics())
        with pytest.raises(Aborted) as e:
            await svc.Authorize(routing_pb2.AuthorizeRequest(number=PAYG, caller="13812345678"), Ctx(0.0))
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        raw = await svc.Authorize(routing_pb2.AuthorizeRequest(number=PAYG, caller="13812345678"), Ctx(1.0))
        ok = routing_pb2.AuthorizeResponse.FromString(raw)  # Authorize answers pre-serialised bytes
        assert ok.allow and ok.billing_start == routing_pb2.BILLING_START_AGENT_ANSWER
        assert ok.destinations and all(d.ring_timeout_seconds > 0 for d in ok.destinations)
        assert ok.catalog_version == 1 == host.version

    _run(main())


def test_group_commit_shares_one_transaction_and_drops_expired(engine):
    async def main():
        host = EngineHost(engine)
        gc = GroupCommitter(host, convert.rows_to_table)
        gc.start()
        def row(cid):
            start = 1_791_615_600_000  # 2026-10-10 09:00+08:00
            return {"call_id": cid, "caller": "13812345678", "number": PREPAID, "forwarded_to": "02088886666",
                    "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 9_000,
                    "end": start + 60_000, "hangup_cause": "normal_clearing"}
        results = await asyncio.gather(
            gc.submit(row("a"), None), gc.submit(row("b"), time.monotonic() + 10),
            gc.submit(row("a"), None),  # same call id in the same group
            gc.submit(row("late"), 0.0),  # deadline already gone
            return_exceptions=True)
        await gc.close()
        return results

    results = _run(main())
    assert isinstance(results[3], asyncio.TimeoutError)
    (ra, ia, _, dup_a), (rb, ib, _, _), (_, ia2, _, dup_a2) = results[:3]
    assert ra is rb  # one rate_and_commit for the group
    assert (ia, ib, ia2) == (0, 1, 0) and not dup_a and dup_a2
    keys = [call_key(c) for c in ("a", "b", "late")]
    with engine.ledger.env.begin() as txn:
        stored = records.committed(engine.ledger, txn, keys)
    assert set(stored) == set(keys[:2])  # "late" was never committed
    batches = {COMMITTED.unpack(stored[k])[0] for k in keys[:2]}
    assert len(batches) == 1  # "a" and "b" in one committed batch: one LMDB transaction


def test_group_commit_compares_a_repeat_with_other_content_to_the_committed_first(engine):
    async def main():
        gc = GroupCommitter(EngineHost(engine), convert.rows_to_table)
        gc.start()
        start = 1_791_615_600_000  # 2026-10-10 09:00+08:00
        row = {"call_id": "x", "caller": "13812345678", "number": PREPAID, "forwarded_to": "02088886666",
               "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 9_000,
               "end": start + 60_000, "hangup_cause": "normal_clearing"}
        results = await asyncio.gather(gc.submit(row, None), gc.submit(row | {"end": start + 90_000}, None))
        await gc.close()
        return results

    (first, _, _, _), (second, i, _, dup) = _run(main())
    assert first is not second and not dup  # the repeat went in a group of its own
    assert first.rated.column("call_id").to_pylist() == ["x"] and second.rated.num_rows == 0
    assert second.rejects.select(["row", "call_id", "field"]).to_pylist() == [{"row": i, "call_id": "x", "field": "end"}]
    assert reason_status(second.rejects.column("reason")[0].as_py()) == grpc.StatusCode.FAILED_PRECONDITION


def test_reason_mapping():
    assert reason_status("unknown_number", "number") == grpc.StatusCode.NOT_FOUND
    assert reason_status("account_suspended") == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_status("number_not_active", "number") == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_status("not a 400 number (400 + 7 digits)", "number") == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_status("end before start", "end") == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_status("package_not_started", "start") == grpc.StatusCode.FAILED_PRECONDITION
    from rating400_server.services import deny_reason

    assert deny_reason("caller_blocked") == routing_pb2.DENY_REASON_CALLER_BLOCKED
    assert deny_reason("out_of_credit") == routing_pb2.DENY_REASON_OUT_OF_CREDIT
    assert deny_reason("something_new") == routing_pb2.DENY_REASON_OTHER


def test_columns_to_table_validates_shape():
    cols = rating_pb2.CdrColumns(call_id=["a", "b"], number=["4008593431"] * 2,
                                 start_ms=[1, 2], end_ms=[3, 4], agent_answer_ms=[0, 5])
    t = convert.columns_to_table(cols)
    assert t.column("agent_answer").to_pylist() == [None, 5]  # 0 = absent
    assert t.column("ivr_answer").null_count == 2  # column absent
    with pytest.raises(convert.BadRequest) as e:
        convert.columns_to_table(rating_pb2.CdrColumns(call_id=["a"], number=["4"], start_ms=[1, 2], end_ms=[3]))
    assert e.value.field == "cdrs.start_ms"
    with pytest.raises(convert.BadRequest) as e:
        convert.columns_to_table(rating_pb2.CdrColumns(call_id=["a"], start_ms=[1], end_ms=[3]))
    assert e.value.field == "cdrs.number"


def test_arrow_and_columns_encodings_agree():
    cols = rating_pb2.CdrColumns(call_id=["a", "b"], caller=["138", ""], number=["4008593431"] * 2,
                                 forwarded_to=["0201", "0202"], start_ms=[10, 20], end_ms=[30, 40])
    t1 = convert.columns_to_table(cols)
    src = pa.table({"call_id": ["a", "b"], "caller": ["138", ""], "number": ["4008593431"] * 2,
                    "forwarded_to": ["0201", "0202"], "start_ms": [10, 20], "end_ms": [30, 40]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, src.schema) as w:
        w.write_table(src)
    t2 = convert.arrow_to_table(sink.getvalue().to_pybytes())
    assert t1.equals(t2)


def test_ivr_menu_conversion():
    from rating400_server.services import _menu

    src = {"prompt": "welcome", "options": [
        {"key": "1", "label": "sales", "group": "sales"},
        {"key": "2", "label": "support", "menu": {"prompt": "support", "options": [
            {"key": "1", "label": "hardware", "group": "support"}]}}]}
    out = routing_pb2.IvrMenu()
    _menu(src, out)
    assert out.prompt == "welcome" and [o.key for o in out.options] == ["1", "2"]
    assert out.options[0].group == "sales"
    assert out.options[1].submenu.prompt == "support"
    assert out.options[1].submenu.options[0].group == "support"
