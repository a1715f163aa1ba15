"""BillingService over real gRPC: a server subprocess on loopback, the demo
catalog, calls committed to the ledger first."""
from __future__ import annotations

import json

import grpc
import pytest

from rating400.v1 import billing_pb2, billing_pb2_grpc
from rating_core.billing.advisor import Advisor
from rating_core.demo import demo_cdrs, write_demo_catalog
from rating_core.engine import Engine
from rating_core.store import Store
from demo_server import Server

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
        # A formula-like tag, set as the operator would (this server has no
        # identities, so gRPC UpdateCaller is refused: the masked view).
        engine.crm.tag(ACCOUNT, engine.crm.callers(ACCOUNT)[2].caller, add=["=cmd|' /C calc'!A0"])
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
    assert dict(resp.left_out_calls) == expected.left_out  # the committed calls are the billed ones
    assert [(p.package, p.total_minor) for p in resp.packages] == [(p.package, p.total) for p in expected.packages]
    assert resp.packages[0].rank == 1


def test_statement_callers_and_report(served):
    stub, expected, callers = served
    month = expected.months[0]
    s = stub.GetStatement(billing_pb2.StatementRequest(account=ACCOUNT, month=month, include_html=True), timeout=60)
    assert s.calls > 0 and s.company == "杭州西湖茶叶贸易有限公司" and "<svg" in s.html
    assert "<td>手机</td>" in s.html and "<td>mobile</td>" not in s.html  # the demo catalog's labels.zh
    assert json.loads(s.json)["amount_due_minor"] == s.amount_due_minor
    # What the customer pays: the amount due rounded once to the fen, the rounding beside it.
    assert json.loads(s.json)["amount_payable_minor"] == s.amount_payable_minor and s.amount_payable_minor % 100 == 0
    assert s.rounding_minor == s.amount_payable_minor - s.amount_due_minor and -50 < s.rounding_minor <= 50
    # The top-level fields hold every term of both sums, so a finance system
    # reconciles them without the JSON (newcomer A6: no package credit,
    # credit adjustments or expired credit); each is the JSON's figure.
    doc = json.loads(s.json)
    for name in ("package_credit", "expired_credit", "earlier_unpaid", "paid_to_earlier", "paid_to_charges"):
        assert getattr(s, name + "_minor") == doc[name + "_minor"], name
    for name in ("credit_adjustments", "refunds", "top_ups", "adjustments", "rerating", "rerating_credit"):
        assert getattr(s, name + "_minor") == doc[name + "_total_minor"], name
    # What is still owed, the package phrase and the rental's parts: the JSON's (a month with two
    # packages: tests/test_statement_package_month.py).
    assert (s.outstanding_minor, s.package_label) == (doc["outstanding_minor"], doc["package_label"])
    assert [{"package": r.package, "name": r.name, "from": r.from_date, "rental_minor": r.rental_minor}
            for r in s.rentals] == doc["rentals"] and s.rental_minor == sum(r.rental_minor for r in s.rentals)
    assert s.closing_credit_minor == (s.opening_credit_minor + s.package_credit_minor + s.top_ups_minor
                                      + s.credit_adjustments_minor + s.refunds_minor - s.credit_consumed_minor
                                      - s.rerating_credit_minor - s.expired_credit_minor
                                      - s.paid_to_earlier_minor - s.paid_to_charges_minor)
    assert s.amount_due_minor == (s.usage_minor - s.credit_consumed_minor + s.minimum_topup_minor + s.rental_minor
                                  + s.features_minor + s.adjustments_minor + s.rerating_minor
                                  - s.rerating_credit_minor - s.paid_to_charges_minor)
    got = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT), timeout=30)
    assert len(got.callers) == len(callers)
    assert all("****" in c.caller for c in got.callers)  # masked: this server checks no identity
    assert sum(c.calls for c in got.callers) == sum(c.calls for c in callers)
    rep = stub.GetReport(billing_pb2.ReportRequest(by="number", account=ACCOUNT), timeout=30)
    assert rep.key_names == ["number"] and sum(r.calls for r in rep.rows) >= s.calls
    # By campaign the calls no tag takes are the key [""] (untagged): the
    # rows add up to the calls (newcomer N9 C8); it read "None" before.
    tag = billing_pb2.CampaignTag(campaign="ads", number=rep.rows[0].key[0])
    camp = stub.GetReport(billing_pb2.ReportRequest(by="campaign", account=ACCOUNT, campaigns=[tag]), timeout=30)
    assert sum(r.calls for r in camp.rows) == sum(r.calls for r in rep.rows)
    assert {tuple(r.key) for r in camp.rows} <= {("ads",), ("",)} and "None" not in str(camp)


@pytest.mark.parametrize("request_, field", [
    (billing_pb2.AdviseRequest(account=ACCOUNT, from_month="2026-13", to_month="2026-12"), "from_month"),
])
def test_bad_requests_name_the_field(served, request_, field):
    stub = served[0]
    with pytest.raises(grpc.RpcError) as e:
        stub.Advise(request_, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith(field)


def test_an_unknown_account_is_not_found_as_in_account_service(served):
    """Newcomer5 F6: GetBalance answered NOT_FOUND "account: no account
    'acmee'", GetStatement INVALID_ARGUMENT "account: unknown account": the
    billing reads now answer as the account reads do."""
    stub = served[0]
    for call, req in ((stub.Advise, billing_pb2.AdviseRequest(account="nobody")),
                      (stub.GetStatement, billing_pb2.StatementRequest(account="nobody", month="2026-10"))):
        with pytest.raises(grpc.RpcError) as e:
            call(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value.details()
        assert e.value.details() == "account: no account 'nobody'"


def test_bad_report_and_statement_requests(served):
    stub = served[0]
    for call, req, field in (
        (stub.GetReport, billing_pb2.ReportRequest(by="colour"), "by"),
        (stub.GetReport, billing_pb2.ReportRequest(by="campaign"), "campaigns"),
        (stub.GetStatement, billing_pb2.StatementRequest(account=ACCOUNT, month="October"), "month"),
        # Breaker N13 F5: a month not begun has no statement, as for `bill --month`.
        (stub.GetStatement, billing_pb2.StatementRequest(account=ACCOUNT, month="2199-12"),
         "month: 2199-12 has not begun (Asia/Shanghai; the current month is "),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith(field)


def test_update_caller_needs_a_role_that_sees_numbers(served):
    """This server has no identities: its callers get the masked CRM view,
    and UpdateCaller is refused before anything is read (the updates
    themselves: tests/test_crm_grpc_roles.py, as a supervisor)."""
    stub, _, callers = served
    for caller in (callers[0].caller, "13900000000"):
        with pytest.raises(grpc.RpcError) as e:
            stub.UpdateCaller(billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=caller, add_tags=["vip"]),
                              timeout=30)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and "supervisor" in e.value.details()
    tagged = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, tag="vip"), timeout=30)
    assert list(tagged.callers) == []


def test_export_neutralises_formulas(served):
    stub, _, callers = served
    import csv
    import io

    exported = stub.ExportCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, tag="=cmd|' /C calc'!A0"),
                                  timeout=30)
    rows = list(csv.DictReader(io.StringIO(exported.csv.decode("utf-8-sig"))))
    assert [r["tags"] for r in rows] == ["'=cmd|' /C calc'!A0"]  # text to Excel, not a formula
