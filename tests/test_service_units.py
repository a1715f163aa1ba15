"""Server pieces in-process, with a stand-in engine: deadline handling,
group commit, error mapping, column conversion. (The end-to-end behaviour
with the real engine is in test_service_grpc.py.)"""
from __future__ import annotations

import asyncio
import types

import grpc
import numpy as np
import pyarrow as pa
import pytest

from rating400.v1 import rating_pb2, routing_pb2
from rating400_server import convert
from rating400_server.engine import EngineHost, GroupCommitter
from rating400_server.services import RoutingServicer, reason_status


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


class StubEngine:
    version = 3

    def __init__(self):
        self.committed: list[list[str]] = []

    def refresh(self):
        return False

    def authorize(self, number, caller, at_ms=None, ivr_keys="", call_id=None):
        return types.SimpleNamespace(allow=True, reason="", destinations=[("13800000000", 20)],
                                     ivr_menu=None, billing_start="ivr_answer", caller_province="广东",
                                     caller_city="深圳", caller_carrier="中国移动", max_duration_seconds=60)

    def rate_and_commit(self, table):
        ids = table.column("call_id").to_pylist()
        self.committed.append(ids)
        rated = pa.table({"call_id": ids, "charge": pa.array([100] * len(ids), pa.int64())})
        rejects = pa.table({"row": pa.array([], pa.int64()), "call_id": pa.array([], pa.string()),
                            "field": pa.array([], pa.string()), "reason": pa.array([], pa.string())})
        return types.SimpleNamespace(rated=rated, rejects=rejects, replayed=np.zeros(len(ids), bool))


def _run(coro):
    return asyncio.run(coro)


def test_expired_deadline_is_refused_before_work():
    async def main():
        engine = StubEngine()
        svc = RoutingServicer(EngineHost(engine), NullMetrics())
        with pytest.raises(Aborted) as e:
            await svc.Authorize(routing_pb2.AuthorizeRequest(number="4008593431", caller="138"), Ctx(0.0))
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        raw = await svc.Authorize(routing_pb2.AuthorizeRequest(number="4008593431", caller="138"), Ctx(1.0))
        ok = routing_pb2.AuthorizeResponse.FromString(raw)  # Authorize answers pre-serialised bytes
        assert ok.allow and ok.billing_start == routing_pb2.BILLING_START_IVR_ANSWER
        assert ok.destinations[0].ring_timeout_seconds == 20 and ok.catalog_version == 3

    _run(main())


def test_group_commit_shares_one_transaction_and_drops_expired():
    async def main():
        engine = StubEngine()
        host = EngineHost(engine)
        gc = GroupCommitter(host, convert.rows_to_table)
        gc.start()
        loop = asyncio.get_running_loop()
        def row(cid):
            return {"call_id": cid, "caller": "", "number": "4008593431", "forwarded_to": "0201",
                                   "start": 1, "ivr_answer": None, "agent_answer": None, "end": 2, "hangup_cause": ""}
        results = await asyncio.gather(
            gc.submit(row("a"), None), gc.submit(row("b"), loop.time() + 10),
            gc.submit(row("a"), None),  # same call id in the same group
            gc.submit(row("late"), 0.0),  # deadline already gone
            return_exceptions=True)
        await gc.close()
        await host.close()
        return engine, results

    engine, results = _run(main())
    assert engine.committed == [["a", "b"]]  # one transaction, no "late", "a" once
    assert isinstance(results[3], asyncio.TimeoutError)
    (_, ia, _, dup_a), (_, ib, _, _), (_, ia2, _, dup_a2) = results[:3]
    assert (ia, ib, ia2) == (0, 1, 0) and not dup_a and dup_a2


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
