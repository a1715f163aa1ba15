"""BillingService over real gRPC: a server subprocess on loopback, the demo
catalog, calls committed to the ledger first."""
from __future__ import annotations

import json

import grpc
import pytest

from rating400.v1 import billing_pb2, billing_pb2_grpc
from rating_core.billing.advisor import Advisor
from rating_core.billing.crm import mask
from rating_core.demo import demo_cdrs, write_demo_catalog
from rating_core.engine import Engine
from rating_core.store import Store
from test_service_grpc import Server

ACCOUNT = "hangzhou_tea"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("billing-grpc")
    store = Store(root / "store")
    store.activate(store.compile(write_demo_catalog(root / "catalog")))
    del store
    cdrs = demo_cdrs(6000, 7)
    engine = Engine.open(root / "store", threads=1)
    try:
        engine.rate_and_commit(cdrs)
        expected = Advisor(engine.rater.snapshot).advise(ACCOUNT, cdrs)
        callers = engine.crm.callers(ACCOUNT)
    finally:
        engine.close()
    server = Server(root / "store", root, workers=1).start()
    try:
        channel = grpc.insecure_channel(server.target)
        yield billing_pb2_grpc.BillingServiceStub(channel), expected, callers
        channel.close()
    finally:
        server.stop()


def test_advise_matches_the_library(served):
    stub, expected, _ = served
    resp = stub.Advise(billing_pb2.AdviseRequest(account=ACCOUNT), timeout=30)
    assert resp.calls == expected.calls and resp.current_package == expected.current
    assert [(p.package, p.total_minor) for p in resp.packages] == [(p.package, p.total) for p in expected.packages]
    assert resp.packages[0].rank == 1


def test_statement_callers_and_report(served):
    stub, expected, callers = served
    month = expected.months[0]
    s = stub.GetStatement(billing_pb2.StatementRequest(account=ACCOUNT, month=month, include_html=True), timeout=60)
    assert s.calls > 0 and s.company == "West Lake Tea Trading" and "<svg" in s.html
    assert json.loads(s.json)["amount_due_minor"] == s.amount_due_minor
    got = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT), timeout=30)
    assert len(got.callers) == len(callers)
    assert all("****" in c.caller for c in got.callers)  # masked: this server checks no identity
    assert sum(c.calls for c in got.callers) == sum(c.calls for c in callers)
    rep = stub.GetReport(billing_pb2.ReportRequest(by="number", account=ACCOUNT), timeout=30)
    assert rep.key_names == ["number"] and sum(r.calls for r in rep.rows) >= s.calls


@pytest.mark.parametrize("request_, field", [
    (billing_pb2.AdviseRequest(account="nobody"), "account"),
    (billing_pb2.AdviseRequest(account=ACCOUNT, from_month="2026-13", to_month="2026-12"), "from_month"),
])
def test_bad_requests_name_the_field(served, request_, field):
    stub = served[0]
    with pytest.raises(grpc.RpcError) as e:
        stub.Advise(request_, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith(field)


def test_bad_report_and_statement_requests(served):
    stub = served[0]
    for call, req, field in (
        (stub.GetReport, billing_pb2.ReportRequest(by="colour"), "by"),
        (stub.GetReport, billing_pb2.ReportRequest(by="campaign"), "campaigns"),
        (stub.GetStatement, billing_pb2.StatementRequest(account=ACCOUNT, month="October"), "month"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith(field)


def _listed(stub, rec):
    """The listed record of CRM record ``rec`` (a masked role lists callers; it never filters by number)."""
    return next(c for c in stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT), timeout=30).callers
                if c.caller == mask(rec.caller) and c.first_ms == rec.first_ms)


def test_update_caller_tags_notes_and_callback(served):
    stub, _, callers = served
    caller = callers[0].caller
    rec = stub.UpdateCaller(billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=caller, add_tags=["vip"],
                                                            note="wants a quote", called_back=True), timeout=30)
    # This server has no identities: the masked role, answered the masked number only.
    assert rec == billing_pb2.CallerRecordMessage(caller=mask(caller))
    tagged = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, tag="vip"), timeout=30)
    assert [c.calls for c in tagged.callers] == [callers[0].calls]
    listed = _listed(stub, callers[0])
    assert list(listed.tags) == ["vip"] and listed.notes == 1 and not listed.awaiting_callback
    with pytest.raises(grpc.RpcError) as e:
        stub.UpdateCaller(billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller="not a number", note="x"),
                          timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("caller")


def _refused(call, request, code=grpc.StatusCode.INVALID_ARGUMENT) -> str:
    with pytest.raises(grpc.RpcError) as e:
        call(request, timeout=60)
    assert e.value.code() == code, e.value.details()
    return e.value.details()


def test_update_caller_bounds_and_hostile_text(served):
    stub, _, callers = served
    caller = callers[1].caller

    def update(**kw):
        return billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=caller, **kw)

    # Bounded: a caller record is rewritten by every committed call of that
    # caller, so 100,000 tags made each RateCdr take 1.5 s (breaker 31/32).
    assert _refused(stub.UpdateCaller, update(add_tags=[f"t{i}" for i in range(100_000)])).startswith("add_tags:")
    assert _refused(stub.UpdateCaller, update(add_tags=["x" * 65])).startswith("add_tags[0]:")
    assert _refused(stub.UpdateCaller, update(note="x" * 4001)).startswith("note:")
    stub.UpdateCaller(update(add_tags=[f"t{i}" for i in range(32)]), timeout=30)
    # Past the caller's bound: not applied; a masked role is not told (a refusal
    # would say the number called; tests/test_crm_grpc_roles.py has the refusal).
    assert stub.UpdateCaller(update(add_tags=["one-more"]), timeout=30).caller == mask(caller)
    assert len(_listed(stub, callers[1]).tags) == 32
    stub.UpdateCaller(update(remove_tags=[f"t{i}" for i in range(32)]), timeout=30)
    assert list(_listed(stub, callers[1]).tags) == []
    # Control characters: none in a tag; a note keeps newline and tab only.
    for tag in ("a\x00b", "x\ny", "\x1b[2J", "tab\there"):
        assert _refused(stub.UpdateCaller, update(add_tags=[tag])).startswith("add_tags[0]: control characters")
    for note in ("n\x00", "\x1b[2Jcleared", "bell\x07"):
        assert _refused(stub.UpdateCaller, update(note=note)).startswith("note: control characters")
    stub.UpdateCaller(update(note="line one\n\tline two"), timeout=30)
    assert _listed(stub, callers[1]).notes == 1
    # Nothing was half-applied by the refusals.
    stub.UpdateCaller(update(called_back=True), timeout=30)
    assert list(_listed(stub, callers[1]).tags) == []
    # A number that never called the account: no record is made up, and the
    # masked role gets the answer a caller gets (NOT_FOUND would tell it who called).
    known = {c.caller for c in callers}
    stranger = next(n for n in (f"139000000{i:02d}" for i in range(100)) if n not in known)
    answer = stub.UpdateCaller(billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=stranger,
                                                              note="never called"), timeout=30)
    assert answer == billing_pb2.CallerRecordMessage(caller=mask(stranger))
    assert len(stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT), timeout=30).callers) == len(callers)


def test_export_neutralises_formulas(served):
    stub, _, callers = served
    import csv
    import io

    stub.UpdateCaller(billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=callers[2].caller,
                                                      add_tags=["=cmd|' /C calc'!A0"]), timeout=30)
    exported = stub.ExportCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, tag="=cmd|' /C calc'!A0"),
                                  timeout=30)
    rows = list(csv.DictReader(io.StringIO(exported.csv.decode("utf-8-sig"))))
    assert [r["tags"] for r in rows] == ["'=cmd|' /C calc'!A0"]  # text to Excel, not a formula
