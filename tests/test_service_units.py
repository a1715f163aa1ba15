"""Server pieces in-process on the real engine (demo catalog): deadline
handling, group commit, error mapping, column conversion. (The end-to-end
behaviour over the wire is in test_service_grpc.py.)"""
from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_a_no_route_deny_says_why(engine):
    from rating_core.router import Decision

    svc = RoutingServicer(EngineHost(engine), NullMetrics())
    d = Decision(allow=False, reason="no_route", plan="service_desk", announcement="closed")
    resp = svc._response(d, routing_pb2.AuthorizeRequest(number=PAYG, caller="13812345678"))
    assert (resp.allow, resp.reason, resp.deny_reason) == (False, "no_route", routing_pb2.DENY_REASON_NO_ROUTE)
    assert resp.detail.startswith("no rule of plan service_desk matches this call")


def test_an_allowed_decision_says_what_limits_its_grant(engine):
    from rating_core.router import Decision

    svc = RoutingServicer(EngineHost(engine), NullMetrics())
    d = Decision(allow=True, reason="ok", max_duration_seconds=5340, limit="spend_cap", spend_left_minor=98_800)
    resp = svc._response(d, routing_pb2.AuthorizeRequest(number=PAYG, caller="13812345678"))
    assert resp.detail == "the number's monthly spend cap (9.88 yuan left) allows 5340 s"
    d = Decision(allow=True, reason="ok", max_duration_seconds=5340, limit="credit")
    assert routing_pb2.AuthorizeResponse.FromString(svc._encode(d, routing_pb2.AuthorizeRequest(
        number=PAYG, caller="13812345678"))).detail == "credit allows 5340 s"


def test_an_out_of_credit_deny_says_the_figures(engine):
    from rating_core.router import Decision

    svc = RoutingServicer(EngineHost(engine), NullMetrics())
    d = Decision(allow=False, reason="out_of_credit", limit="credit_limit", credit_minor=-26_166_200,
                 credit_limit_minor=10_000_000, held_minor=0)
    resp = svc._response(d, routing_pb2.AuthorizeRequest(number=PAYG, caller="13812345678"))
    assert resp.deny_reason == routing_pb2.DENY_REASON_OUT_OF_CREDIT
    assert resp.detail.startswith("credit -2616.62 yuan against a credit limit of 1000.00 yuan (0.00 yuan held")


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


def _cdr_row(cid, minute=0, talk_s=60):
    start = 1_791_615_600_000 + minute * 60_000  # 2026-10-10 09:00+08:00
    return {"call_id": cid, "caller": "13812345678", "number": PREPAID, "forwarded_to": "02088886666",
            "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 9_000,
            "end": start + 9_000 + talk_s * 1000, "hangup_cause": "normal_clearing"}


def test_commit_group_keeps_the_semantics_of_separate_commits(engine, tmp_path):
    """Requests committed in one transaction (``Engine.commit_tables``) give
    what committing them one after another gives: a call id repeated from an
    earlier request of the group is replayed when identical and refused
    naming the field when it differs; balances and the CRM count each call once."""
    msgs = [
        [_cdr_row("g1", 1), _cdr_row("g2", 2)],
        [_cdr_row("g1", 1), _cdr_row("g3", 3)],  # g1 again, the same: replayed
        [_cdr_row("g2", 2, talk_s=90), _cdr_row("g4", 4)],  # g2 again with another end: refused
    ]
    tables = [convert.rows_to_table(m) for m in msgs]
    grouped, error = engine.commit_tables(tables)
    assert error is None and len(grouped) == 3
    apart = Engine.open(demo_store(tmp_path / "apart"), threads=1)
    try:
        separate = [apart.rate_and_commit(t) for t in tables]
        for g, s in zip(grouped, separate):
            assert g.rated.drop_columns(["row"]).equals(s.rated.drop_columns(["row"]))
            assert g.replayed.tolist() == s.replayed.tolist()
            assert g.rejects.equals(s.rejects)
            assert g.summary == s.summary
        assert grouped[1].replayed.tolist() == [True, False]
        assert grouped[2].rated.column("call_id").to_pylist() == ["g4"]
        assert grouped[2].rejects.select(["row", "call_id", "field"]).to_pylist() == [
            {"row": 0, "call_id": "g2", "field": "end"}]
        assert reason_status(grouped[2].rejects.column("reason")[0].as_py()) == grpc.StatusCode.FAILED_PRECONDITION
        account = grouped[0].rated.column("account")[0].as_py()
        assert engine.ledger.stored(account) == apart.ledger.stored(account)  # the same balance
        assert engine.crm.get(account, "13812345678").calls == apart.crm.get(account, "13812345678").calls == 4
    finally:
        apart.close()


def test_commit_group_with_a_failing_request_commits_those_before_it(engine, monkeypatch):
    """One request raising inside the group's transaction: the group is
    committed again request by request; those before it are committed and
    answered, it gets its exception, those after it are not committed."""
    tables = [convert.rows_to_table([_cdr_row(f"f{i}", i)]) for i in range(3)]
    group = engine.crm.group
    calls = []

    def failing_second(t):  # the real CRM, failing on the second request's call (on the grouping thread)
        calls.append(1)
        if t.num_rows and pa.compute.any(pa.compute.equal(t.column("start_ms"), _cdr_row("f1", 1)["start"])).as_py():
            raise RuntimeError("disk on fire")
        return group(t)

    monkeypatch.setattr(engine.crm, "group", failing_second)
    results, error = engine.commit_tables(tables)
    assert isinstance(error, RuntimeError) and len(results) == 1
    with engine.ledger.env.begin() as txn:
        stored = records.committed(engine.ledger, txn, [call_key(f"f{i}") for i in range(3)])
    assert set(stored) == {call_key("f0")}


class Stream:
    """A client stream whose messages have all arrived (so they group)."""

    def __init__(self, messages):
        self.messages = list(messages)

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self.messages:
            raise StopAsyncIteration
        return self.messages.pop(0)


def _batch(batch_id, rows, dry_run=False):
    from rating400_client._common import batch_request

    return batch_request(batch_id, convert.rows_to_table(rows), "arrow", dry_run)


def test_stream_groups_consecutive_messages_and_answers_each(engine, monkeypatch):
    """RateCdrBatches commits messages that arrived together in one
    transaction, answering each in order; a repeated call id across them is
    replayed (same content) or a reject naming the field (other content),
    as in separate transactions; a dry-run message is rated apart."""
    from rating400_server.services import RatingServicer

    sizes = []
    commit_group = engine.commit_group

    def spy(rater, group, decode_names=True):
        sizes.append(len(group))
        return commit_group(rater, group, decode_names)

    monkeypatch.setattr(engine, "commit_group", spy)

    async def main():
        host = EngineHost(engine)
        svc = RatingServicer(host, None, NullMetrics())
        msgs = [_batch(1, [_cdr_row("s1", 1), _cdr_row("s2", 2)]),
                _batch(2, [_cdr_row("s1", 1), _cdr_row("s3", 3)]),
                _batch(3, [_cdr_row("s2", 2, talk_s=99)]),
                _batch(4, [_cdr_row("s9", 9)], dry_run=True),
                _batch(5, [_cdr_row("s3", 3)])]
        # The handler yields serialised responses (``PRESERIALIZED``).
        return [rating_pb2.RateCdrBatchesResponse.FromString(r)
                async for r in svc.RateCdrBatches(Stream(msgs), Ctx())]

    out = _run(main())
    from rating400_client import columns

    assert [r.batch_id for r in out] == [1, 2, 3, 4, 5]
    rated = [columns.rated_from_response(r) for r in out]
    assert rated[0].column("replayed").to_pylist() == [False, False]
    assert rated[1].column("replayed").to_pylist() == [True, False]
    assert rated[2].num_rows == 0 and [(x.call_id, x.field) for x in out[2].rejects] == [("s2", "end")]
    assert out[2].rejects[0].reason.startswith("call id committed before with a different value")
    assert rated[4].column("replayed").to_pylist() == [True]
    assert sizes[0] == 3  # the first three messages in one transaction
    with engine.ledger.env.begin() as txn:
        assert call_key("s9") not in records.committed(engine.ledger, txn, [call_key("s9")])  # dry run


def test_stream_answers_the_group_before_a_bad_message(engine):
    """A message that cannot be read ends the stream with its error, after
    the answers (and commits) of the messages before it."""
    from rating400_server.services import RatingServicer

    async def main():
        svc = RatingServicer(EngineHost(engine), None, NullMetrics())
        bad = rating_pb2.RateCdrBatchesRequest(batch_id=2, cdrs_arrow_ipc=b"not arrow")
        msgs = [_batch(1, [_cdr_row("b1", 1)]), bad, _batch(3, [_cdr_row("b3", 3)])]
        got = []
        with pytest.raises(Aborted) as e:
            async for r in svc.RateCdrBatches(Stream(msgs), Ctx()):
                got.append(rating_pb2.RateCdrBatchesResponse.FromString(r).batch_id)
        return got, e.value

    got, err = _run(main())
    assert got == [1] and err.code == grpc.StatusCode.INVALID_ARGUMENT
    with engine.ledger.env.begin() as txn:
        stored = records.committed(engine.ledger, txn, [call_key("b1"), call_key("b3")])
    assert set(stored) == {call_key("b1")}


@settings(max_examples=60, deadline=None)
@given(batch_id=st.integers(0, 2**64 - 1), version=st.integers(-2**63, 2**63 - 1),
       size=st.one_of(st.integers(0, 300), st.sampled_from([16383, 16384, 2097151, 2097152])),
       rejects=st.integers(0, 3))
def test_stream_response_appended_ipc_is_the_serialised_message(batch_id, version, size, rejects):
    """RateCdrBatches frames its Arrow IPC answer itself (``with_bytes_field``):
    byte for byte what protobuf serialises the message with
    ``rated_arrow_ipc`` set to, at every varint length boundary; and the
    field it appends is the message's highest."""
    from rating400_server.services import _RATED_ARROW_IPC

    assert _RATED_ARROW_IPC == max(f.number for f in rating_pb2.RateCdrBatchesResponse.DESCRIPTOR.fields)
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    resp = rating_pb2.RateCdrBatchesResponse(batch_id=batch_id, catalog_version=version)
    for i in range(rejects):
        resp.rejects.add(row=i, call_id=f"c{i}", field="end", reason="r")
    head = resp.SerializeToString()
    resp.rated_arrow_ipc = data
    assert convert.with_bytes_field(head, _RATED_ARROW_IPC, pa.py_buffer(data)) == resp.SerializeToString()


def test_rated_ipc_is_the_stream_rated_to_arrow_wrote():
    """The exactly sized IPC buffer reads back as the rated columns, under
    the contract's names (RatedCdrColumns: ``charge_minor``, and the
    deprecated ``charge`` with the same values, after the others as the
    field numbers go)."""
    rated = pa.table({"call_id": ["a", "b"], "charge_minor": pa.array([5, 7], pa.int64())})
    buf = convert.rated_ipc(rated, np.array([0, 2], np.uint32), np.array([False, True]))
    back = pa.ipc.open_stream(buf).read_all()
    assert back.column_names == ["row", "call_id", "charge", "charge_minor", "replayed"]
    assert back.column("charge_minor").to_pylist() == [5, 7] == back.column("charge").to_pylist()
    assert back.column("row").to_pylist() == [0, 2] and back.column("replayed").to_pylist() == [False, True]
    assert convert.rated_to_arrow(rated, [0, 2], [False, True]) == buf.to_pybytes()


def test_the_client_names_the_field_of_a_time_it_cannot_read():
    """The client's times (``columns.to_ms``): an unreadable one names its
    argument or CDR field (newcomer: "Invalid isoformat string: 'yesterday'")."""
    import pytest

    from rating400_client import _common

    with pytest.raises(ValueError, match=r"^at: 'yesterday' is not an ISO 8601 time"):
        _common.authorize_request("4001234567", "13812345678", at="yesterday")
    with pytest.raises(ValueError, match=r"^end: naive datetime"):
        _common.cdr_message({"call_id": "c", "start": 0, "end": __import__("datetime").datetime(2026, 1, 1)})
