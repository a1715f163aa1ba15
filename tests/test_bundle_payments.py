"""A bundle account's customer pays its bill (README "Money rules"): a
payment (``top-up``, any amount), an adjustment and a refund of credit above
zero are recorded on every package kind; a debt past the credit limit does
not refuse calls inside the bundle's minutes, only the overage, and the deny
says what to do; the ledger-sourced statement shows the payment as a payment
and settles the bill with it (newcomer A4)."""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from clock import clock_at
from rating_core.accounts import Accounts, open_view
from rating_core.accounts.importer import import_catalog
from rating_core.cli import main
from rating_core.engine import Engine
from rating_core.errors import Refused
from rating_core.router import Router, deny_detail
from rating_core.store import Store

CATALOG = """
name: bundle-pay-test
destination_classes: [mobile]
destination_prefixes: {"1": mobile}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
  over: {tiers: [{price: 0.10}]}
packages:
  bo: {kind: bundle, included_minutes: 10, overage_rate: over, credit_limit: 1, rates: [{rate: std}]}
  pre: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rates: [{rate: std}]}
customer_rules: {top_up_min: 600, top_up_min_months: 3}
routing_plans:
  desk:
    groups: {desk: {destinations: [{number: "13700000001"}]}}
    rules: [{group: desk}]
accounts:
  bo:
    name: Bundle Co.
    package: bo
    package_start: 2026-01-01
    numbers: [{number: "4000000104", home_city: Shenzhen, routing: desk}]
  tea:
    name: Tea Co.
    package: pre
    package_start: 2026-01-01
    opening_credit: 480
    numbers: [{number: "4000000105", home_city: Shenzhen, routing: desk}]
"""
SH = dt.timezone(dt.timedelta(hours=8))
NUMBER, CALLER, DEST = "4000000104", "13912345678", "13700000001"
YUAN = 10_000


def at(month, day, hour=10):
    return int(dt.datetime(2026, month, day, hour, tzinfo=SH).timestamp() * 1000)


@pytest.fixture
def store(tmp_path):
    """``bo`` after a March of 70 minutes: 10 in the bundle, 60 overage at
    0.10 = 6.00 yuan owed, 5.00 past its 1-yuan credit limit."""
    (tmp_path / "c.yaml").write_text(CATALOG)
    s = Store(tmp_path / "store")
    s.compile(tmp_path / "c.yaml", activate=True)
    del s
    ops = Accounts.open(tmp_path / "store")
    import_catalog(ops, tmp_path / "c.yaml", billing_from_ms=at(1, 1, 0))  # migrated at the package start
    ops.ledger.close()
    answered = at(3, 4) + 5000
    cdr = {"call_id": "c1", "caller": CALLER, "number": NUMBER, "forwarded_to": DEST, "start": at(3, 4),
           "ivr_answer": answered, "agent_answer": answered, "end": answered + 70 * 60_000, "hangup_cause": "normal"}
    engine = Engine.open(tmp_path / "store", threads=1)
    try:
        engine.rate_and_commit(pa.Table.from_pylist([cdr]))
    finally:
        engine.close()
    return tmp_path / "store"


def authorize(ops, when):
    return Router(open_view(ops.store, ops.env), ops.ledger).authorize(NUMBER, CALLER, when)


def test_debt_past_the_limit_refuses_only_the_overage_and_a_payment_of_any_amount_settles_it(store):
    ops = Accounts.open(store)
    try:
        assert ops.balance("bo")["credit_minor"] == -6 * YUAN
        # March: no minutes left, the overage needs money past the limit: refused, saying what to do.
        d = authorize(ops, at(3, 20))
        assert (d.allow, d.reason) == (False, "out_of_credit")
        assert "accounts top-up" in deny_detail(d)
        # April: 10 fresh minutes, free: granted up to them, nothing held in money.
        d = authorize(ops, at(4, 2))
        assert d.allow and 0 < d.max_duration_seconds <= 600
        # The customer pays 3.00 (far below the prepaid top-up minimum of 600): a payment.
        r = ops.top_up("p1", "bo", 3 * YUAN, at_ms=at(4, 5))
        assert r["detail"]["amount_minor"] == 3 * YUAN and r["balance"]["credit_minor"] == -3 * YUAN
        assert ops.balance("bo")["credit_minor"] == -3 * YUAN
        # Adjustments either way, with a reason; a debit stops at the credit limit.
        ops.adjust("a1", "bo", 1 * YUAN, "goodwill", at_ms=at(4, 6))
        with pytest.raises(Refused) as e:
            ops.adjust("a2", "bo", -1 * YUAN, "correction", at_ms=at(4, 6))
        assert e.value.reason == "insufficient_credit"
        # A refund pays back credit above zero only: none while the account owes.
        with pytest.raises(Refused) as e:
            ops.refund("f1", "bo", 100, "overpaid", at_ms=at(4, 7))
        assert e.value.reason == "insufficient_credit"
        ops.top_up("p2", "bo", 4 * YUAN, at_ms=at(4, 8))  # 2.00 credit now
        with pytest.raises(Refused) as e:
            ops.refund("f2", "bo", 2 * YUAN + 100, "overpaid", at_ms=at(4, 9))
        assert e.value.reason == "insufficient_credit"
        ops.refund("f3", "bo", 2 * YUAN, "overpaid", at_ms=at(4, 9))
        assert ops.balance("bo")["credit_minor"] == 0
        assert authorize(ops, at(4, 20)).max_duration_seconds > 600  # the overage is paid for again
    finally:
        ops.ledger.close()

    out = store.parent / "bills.json"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(out), "--account", "bo",
              "--month", "2026-03", "--month", "2026-04"])
    assert e.value.code == 0
    got = {s["month"]: s for s in json.loads(out.read_text("utf-8"))["statements"]}
    mar, apr = got["2026-03"], got["2026-04"]
    assert mar["amount_due_minor"] == 6 * YUAN and mar["closing_credit_minor"] == 0
    # April: 7.00 paid + 1.00 goodwill - 2.00 refunded = 6.00, all to March's bill.
    assert apr["top_ups_total_minor"] == 7 * YUAN and apr["credit_adjustments_total_minor"] == 1 * YUAN
    assert apr["refunds_total_minor"] == -2 * YUAN  # cash paid out: a figure of its own (newcomer N13 F1)
    assert apr["earlier_unpaid_minor"] == 6 * YUAN and apr["paid_to_earlier_minor"] == 6 * YUAN
    assert apr["amount_due_minor"] == 0 and apr["closing_credit_minor"] == 0  # the ledger's credit: 0
    csv_out = store.parent / "bills.csv"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(csv_out), "--account", "bo", "--month", "2026-04"])
    assert e.value.code == 0
    head, row = csv_out.read_text("utf-8-sig").splitlines()[:2]
    cells = dict(zip(head.split(","), row.split(",")))
    assert cells["本月缴费(元)"] == "7.00" and cells["充值(元)"] == "0.00"  # payments received, not top-ups


def test_credit_carried_into_a_bundle_is_refundable(store):
    ops = Accounts.open(store)
    try:
        with clock_at(at(4, 1)):  # made on its date: April had not ended
            ops.change_package("c1", "tea", "bo", at_ms=at(4, 1))
        assert ops.balance("tea")["credit_minor"] == 480 * YUAN
        # The first bundle month (May) applies the carried credit to the prepaid months' unpaid
        # minimums (February to April, 3 x 40.00): never paid back, however the refund is dated
        # (breaker N11 F13: bounded by April's closing credit alone, all 480.00 went back).
        with pytest.raises(Refused, match=r"refundable credit is 360\.00 yuan: the statements applied 120\.00"):
            ops.refund("r1", "tea", 480 * YUAN, "overpaid", at_ms=at(4, 2))
        ops.refund("r2", "tea", 360 * YUAN, "overpaid", at_ms=at(4, 2))
        assert ops.balance("tea")["credit_minor"] == 120 * YUAN
    finally:
        ops.ledger.close()


def test_an_account_suspended_for_arrears_is_restored_by_paying_its_bill(store):
    ops = Accounts.open(store)
    try:
        ops.account_transition("s1", "bo", "suspend", "arrears", at_ms=at(4, 2))
        assert authorize(ops, at(4, 2)).reason == "account_suspended"
        # Part of the bill paid: still suspended; the whole bill paid (credit 0.00): restored.
        assert ops.top_up("p1", "bo", 5 * YUAN, at_ms=at(4, 3))["detail"]["restored"] is False
        assert ops.top_up("p2", "bo", 1 * YUAN, at_ms=at(4, 3))["detail"]["restored"] is True
        assert authorize(ops, at(4, 3)).allow
    finally:
        ops.ledger.close()
