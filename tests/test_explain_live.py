"""Charge explanations of calls to numbers opened by live operations
(README "Charge explanations", "Accounts and numbers: live customer data").

The accounts and numbers here exist only in the customer layer (no catalog
YAML account has them), so the walk must use the view the rater used:
the catalog version with the layer's accounts, numbers and package periods.
Worked figures (1 yuan = 10000 minor units; every call 100 minutes and
2 s of ringing):

* ``acme`` (prepaid, opened by operations on ``pre_a`` 0.12/min) changes to
  ``pre_b`` (0.10/min) on 11-15. The 11-20 call is 10.00 under pre_b; the
  11-10 call, committed after the change, 12.00 under pre_a, and explains
  under pre_a with its rate ``std``.
* ``beta`` (pay as you go, 0.12/min, billing from the ring): its number is
  reclaimed after its call was committed, and the call still explains
  (the layer's number record gives the billing start): 100 min 2 s from the
  ring, 101 increments of 60 s, 12.12.

Both faces: ``rating400 explain`` and gRPC ``ExplainService.ExplainCharge``.
"""
from __future__ import annotations

import datetime as dt
import json

import grpc
import pyarrow as pa
import pytest
from click.testing import CliRunner

from clock import clock_at
from rating_core.accounts import Accounts
from rating_core.cli import cli
from rating_core.money import exact_yuan
from rating_core.engine import Engine
from rating_core.store import Ledger
from stores import compiled

CATALOG = """
name: explain-live-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
  cheap: {tiers: [{price: 0.10}]}
packages:
  pre_a: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rates: [{rate: std}]}
  pre_b: {kind: prepaid, fee: 600, period_months: 12, monthly_minimum: 60, rates: [{rate: cheap}]}
  payg: {kind: payg, rates: [{rate: std}]}
number_grades:
  standard: {}
customer_rules: {top_up_min: 100, top_up_min_months: 1, restore_months: 3, reclaim_months: 6, cooling_days: 90}
"""
SH = dt.timezone(dt.timedelta(hours=8))
YUAN = 10_000
ACME, BETA = "4006660001", "4006660002"


def at(month, day, hour=10):
    return int(dt.datetime(2026, month, day, hour, tzinfo=SH).timestamp() * 1000)


def cdr(call_id, number, start, minutes=100):
    return {"call_id": call_id, "caller": "13812345678", "number": number, "forwarded_to": "13700000001",
            "start": start, "ivr_answer": None, "agent_answer": start + 2_000,
            "end": start + 2_000 + minutes * 60_000, "hangup_cause": "normal_clearing"}


_ids = iter(range(10**9))


def rid():
    return f"x{next(_ids)}"


def opened(ops, account, package, number, billing_start="agent_answer"):
    """An account and its number through the whole opening, by operations."""
    t = at(10, 1, 0)
    ops.open_account(rid(), account, "深圳艾克美贸易有限公司", at_ms=t)
    ops.submit_documents(rid(), account, [("business_licence", "BL-1"), ("legal_representative_id", "ID-1")], at_ms=t)
    ops.review_realname(rid(), account, True, at_ms=t)
    ops.subscribe(rid(), account, package, start_ms=t, at_ms=t)
    ops.add_numbers(rid(), [number], at_ms=t)
    ops.lock_number(rid(), number, account, at_ms=t)
    ops.submit_number(rid(), number, at_ms=t)
    ops.activate_number(rid(), number, "Shenzhen", billing_start=billing_start, at_ms=t)


def commit(store, calls):
    engine = Engine.open(store)
    try:
        res = engine.rate_and_commit(pa.Table.from_pylist(calls))
        assert res.rejects.num_rows == 0, res.rejects.to_pylist()
        return {r["call_id"]: r for r in res.rated.to_pylist()}
    finally:
        engine.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """(store dir, committed rows by call id): acme's late call after its
    package change, its call under the new package, beta's call before its
    number was reclaimed."""
    root = tmp_path_factory.mktemp("explain-live")
    store = compiled(root, CATALOG)
    ledger = Ledger(root / "store")
    ops = Accounts(store, ledger)
    opened(ops, "acme", "pre_a", ACME)
    opened(ops, "beta", "payg", BETA, billing_start="ring")
    with clock_at(at(11, 15, 0)):  # made on its date: November had not ended
        ops.change_package(rid(), "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    rows = commit(root / "store", [cdr("new", ACME, at(11, 20)), cdr("late", ACME, at(11, 10)),
                                   cdr("beta", BETA, at(11, 12))])
    for action, day in (("suspend", 20), ("freeze", 21), ("reclaim", 22)):
        ops.number_transition(rid(), BETA, action, "test", at_ms=at(11, day, 0))
    ledger.close()
    return root / "store", rows


def test_the_committed_figures(live):
    _, rows = live
    assert (rows["late"]["package"], rows["late"]["rate"], rows["late"]["charge_minor"]) == ("pre_a", "std", 12 * YUAN)
    assert (rows["new"]["package"], rows["new"]["rate"], rows["new"]["charge_minor"]) == ("pre_b", "cheap", 10 * YUAN)
    assert (rows["beta"]["package"], rows["beta"]["units"], rows["beta"]["charge_minor"]) == ("payg", 101, 1212 * 100)


def explain_cli(store, call_id, *extra):
    result = CliRunner().invoke(cli, ["explain", call_id, "--store", str(store), *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def assert_walk_is_the_charge(x: dict, row: dict):
    """The walk's own figures are the committed charge's."""
    assert x["consistent"] and x["note"] is None, x
    assert (x["account"], x["package"], x["rate"]) == (row["account"], row["package"], row["rate"])
    assert (x["billable_seconds"], x["billed_seconds"], x["units"]) == (
        row["billable_seconds"], row["billed_seconds"], row["units"])
    assert x["rate_charge_minor"] == x["charge_minor"] == row["charge_minor"]
    assert sum(r["count"] for r in x["runs"]) == row["units"]


@pytest.mark.parametrize("call_id", ["new", "late", "beta"])
def test_cli_explains_a_live_number_call_with_the_committed_figures(live, call_id):
    store, rows = live
    row = rows[call_id]
    x = json.loads(explain_cli(store, call_id, "--json"))
    assert_walk_is_the_charge(x, row)
    text = explain_cli(store, call_id, "--lang", "en")
    assert "not in this catalog version" not in text and "not answered" not in text
    assert f"package {row['package']}" in text and f"rate {row['rate']}" in text
    assert f"Charged: {exact_yuan(row['charge_minor'])} yuan" in text


def test_a_late_call_explains_under_the_package_in_force_at_its_start(live):
    store, rows = live
    late = json.loads(explain_cli(store, "late", "--json"))
    assert (late["package"], late["package_kind"], late["rate"]) == ("pre_a", "prepaid", "std")
    assert [(r["rate"], r["price_minor"], r["count"]) for r in late["runs"]] == [("std", 1200, 100)]
    new = json.loads(explain_cli(store, "new", "--json"))
    assert (new["package"], new["rate"], new["runs"][0]["price_minor"]) == ("pre_b", "cheap", 1000)


def test_a_reclaimed_number_s_call_explains_with_its_billing_start(live):
    store, rows = live
    x = json.loads(explain_cli(store, "beta", "--json"))
    assert (x["billing_start_mode"], x["billing_start_used"]) == ("ring", "ring")
    assert x["billable_ms"] == 100 * 60_000 + 2_000 and x["charge_minor"] == 1212 * 100


def test_explain_charge_over_grpc_walks_the_live_view(live, tmp_path):
    from rating400.v1 import explain_pb2, explain_pb2_grpc
    from demo_server import Server

    store, rows = live
    server = Server(store, tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = explain_pb2_grpc.ExplainServiceStub(channel)
            for call_id, row in rows.items():
                resp = stub.ExplainCharge(explain_pb2.ExplainChargeRequest(call_id=call_id, lang="en"), timeout=60)
                assert resp.consistent, resp.text
                assert (resp.account, resp.package, resp.rate) == (row["account"], row["package"], row["rate"])
                assert (resp.billable_seconds, resp.billed_seconds, resp.units, resp.charge_minor) == (
                    row["billable_seconds"], row["billed_seconds"], row["units"], row["charge_minor"])
                assert sum(s.count for s in resp.steps) == row["units"]
                assert resp.text.strip() == explain_cli(store, call_id, "--lang", "en").strip()
    finally:
        server.stop()
