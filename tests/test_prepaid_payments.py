"""A prepaid account's bills are paid with ``accounts pay`` (README "Money
rules"): any amount, no top-up minimum, also after the package period
ended; the payment never becomes call credit (so it never expires and pays
no call); the statements apply it to the oldest bill first, the rest
carried to later bills. On a real ledger; figures by hand, 0.12 yuan per
started minute (tests/test_billing.py's rate).
"""
import json
import re

import pyarrow.parquet as pq
import pytest

from rating_core.cli import main
from rating_core.errors import InvalidInput, Refused

from clock import clock_at
from test_billing import YUAN, at, call, commit_calls, live_store

CATALOG = """
name: prepay
destination_classes: [mobile, landline]
destination_prefixes: {"13": mobile, "0": landline}
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  pre_480: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rental: 5, rates: [{rate: std}]}
  pre_1m: {kind: prepaid, fee: 1, period_months: 1, rates: [{rate: std}]}
  payg: {kind: payg, name: Pay as you go, rates: [{rate: std}]}
accounts:
  tea:
    name: West Lake Tea
    package: pre_480
    package_start: 2026-10-01
    opening_credit: 1
    numbers: [{number: "4001000003", home_city: Shenzhen}]
  brief:
    name: Short Period Ltd
    package: pre_1m
    package_start: 2026-10-01
    opening_credit: 1
    numbers: [{number: "4001000004", home_city: Shenzhen}]
  shop:
    name: Corner Shop
    package: payg
    package_start: 2026-10-01
    numbers: [{number: "4001000005", home_city: Shenzhen}]
"""


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """tea (prepaid, 1.00 credit): October's 10 minutes cost 1.20, 1.00 from
    the credit and 0.20 arrears, plus 5.00 rental: 5.20 due. brief (a
    one-month period, ended 11-01): 10 minutes, 0.20 arrears."""
    d = tmp_path_factory.mktemp("prepay")
    store = live_store(d, CATALOG)
    commit_calls(store, [call("t1", "4001000003", at(10, 20), 10), call("b1", "4001000004", at(10, 20), 10)])
    return d


def accounts(d):
    from rating_core.accounts import Accounts

    return Accounts.open(d / "store")


def statements(d, capsys, account, *extra):
    out = d / f"{account}.json"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(d / "store"), "--out", str(out), "--account", account, *extra])
    captured = capsys.readouterr()
    assert e.value.code == 0, captured.err
    return {s["month"]: s for s in json.loads(out.read_text("utf-8"))["statements"]}, captured.out


def sums_reconcile(s):
    """The statement's two sums (README "Monthly statements"), with the bill payments' terms."""
    assert s["closing_credit_minor"] == (
        s["opening_credit_minor"] + s["package_credit_minor"] + s["top_ups_total_minor"]
        + s["credit_adjustments_total_minor"] + s["refunds_total_minor"] + s["payments_total_minor"] + s["payments_carried_in_minor"]
        - s["payments_carried_out_minor"] - s["credit_consumed_minor"] - s["rerating_credit_total_minor"]
        - s["expired_credit_minor"] - s["paid_to_earlier_minor"] - s["paid_to_charges_minor"])
    assert s["amount_due_minor"] == s["charges_minor"] - s["paid_to_charges_minor"]


def test_paying_exactly_the_payable_amount_settles_the_bill_and_leaves_the_credit(ledger, capsys):
    got, _ = statements(ledger, capsys, "tea", "--month", "2026-10")
    octo = got["2026-10"]
    assert octo["amount_payable_minor"] == 52_000 and octo["closing_credit_minor"] == 0  # 0.20 arrears + 5.00 rental
    ops = accounts(ledger)
    try:
        before = ops.balance("tea")["credit_minor"]
        with clock_at(at(11, 30)):
            res = ops.pay("tea-pay-oct", "tea", octo["amount_payable_minor"], at_ms=at(11, 5))
            with pytest.raises(Refused) as refused:  # the same money as a top-up: below the credit minimum
                ops.top_up("tea-topup", "tea", octo["amount_payable_minor"], at_ms=at(11, 5))
        assert refused.value.reason == "below_minimum"
        assert res["detail"]["amount_minor"] == 52_000 and not res["replayed"]
        assert ops.balance("tea")["credit_minor"] == before == 0  # never call credit
        (ev,) = [e for e in ops.events("tea") if e["operation"] == "pay"]
        assert ev["before"] == ev["after"] and ev["detail"]["amount_minor"] == 52_000
    finally:
        ops.ledger.close()
    got, table = statements(ledger, capsys, "tea", "--month", "2026-10", "--month", "2026-11")
    nov = got["2026-11"]
    assert (nov["earlier_unpaid_minor"], nov["paid_to_earlier_minor"], nov["paid_to_charges_minor"]) == (52_000, 52_000, 0)
    assert nov["payments_total_minor"] == 52_000 and nov["payments_carried_out_minor"] == 0
    assert nov["opening_credit_minor"] == nov["closing_credit_minor"] == 0  # the credit unchanged
    assert nov["amount_due_minor"] == 45 * YUAN  # November's own bill: 40.00 minimum + 5.00 rental
    assert (nov["payments_to_earlier_minor"], nov["payments_to_charges_minor"]) == (52_000, 0)
    for s in got.values():
        sums_reconcile(s)
    # The printable statement: the payment in a section of its own, not in the prepaid credit's.
    with pytest.raises(SystemExit):
        main(["bill", "--ledger", "--store", str(ledger / "store"), "--out", str(ledger / "n.csv"), "--account", "tea",
              "--month", "2026-11", "--statements", str(ledger / "st"), "--format", "html", "--lang", "en"])
    capsys.readouterr()
    (page,) = (ledger / "st").glob("*.html")
    credit, payments = page.read_text("utf-8").split("<h2>Prepaid credit</h2>")[1].split("<h2>Payments</h2>")
    assert "Paid towards earlier statements" not in credit
    assert "Paid towards earlier statements (yuan) (of unpaid 5.20)</td><td class=\"n\">-5.20" in payments
    assert "Owed from earlier months" not in page.read_text("utf-8")  # newcomer: 1061.88 still shown
    assert "Bill payments carried to later bills (yuan)</td><td class=\"n\">0.00" in payments
    # What is outstanding is November's bill only: October's is paid (newcomer: the footer
    # counted every prepaid payment as still owed).
    assert "outstanding 45.00 yuan after the last month shown" in table
    assert "less 5.20 later payments or credits paid towards earlier statements" in table


def test_a_payment_below_the_top_up_minimum_is_taken_and_carried_to_later_bills(ledger, capsys, tmp_path):
    ops = accounts(ledger)
    try:
        with clock_at(at(12, 31)):
            res = ops.pay("tea-pay-191", "tea", 1_916_400, at_ms=at(12, 10))  # 191.64, far below 600.00
    finally:
        ops.ledger.close()
    assert res["detail"]["amount_minor"] == 1_916_400
    got, _ = statements(ledger, capsys, "tea", "--month", "2026-12")
    dec = got["2026-12"]
    # December applies it to November's 45.00 left unpaid, then December's 45.00; 101.64 is carried.
    assert (dec["earlier_unpaid_minor"], dec["paid_to_earlier_minor"], dec["paid_to_charges_minor"]) == (
        45 * YUAN, 45 * YUAN, 45 * YUAN)
    assert dec["amount_due_minor"] == 0 and dec["payments_carried_out_minor"] == 1_016_400
    assert dec["closing_credit_minor"] == 0  # carried to bills, never to the credit
    sums_reconcile(dec)
    # The Parquet row holds the new terms too, so it reconciles alone.
    out = tmp_path / "dec.parquet"
    with pytest.raises(SystemExit):
        main(["bill", "--ledger", "--store", str(ledger / "store"), "--out", str(out), "--account", "tea",
              "--month", "2026-12"])
    (row,) = pq.read_table(out).to_pylist()
    assert (row["payments_minor"], row["payments_carried_in_minor"], row["payments_carried_out_minor"]) == (
        1_916_400, 0, 1_016_400)


def test_a_payment_after_the_period_ended_is_taken_and_never_expires(ledger, capsys):
    ops = accounts(ledger)
    try:
        with clock_at(at(11, 30)):
            with pytest.raises(Refused) as refused:
                ops.top_up("brief-topup", "brief", 600 * YUAN, at_ms=at(11, 20))
            assert refused.value.reason == "period_ended"
            ops.pay("brief-pay", "brief", 10 * YUAN, at_ms=at(11, 20))  # 0.20 owed: 9.80 more
        assert ops.balance("brief")["credit_minor"] == 0
    finally:
        ops.ledger.close()
    got, _ = statements(ledger, capsys, "brief", "--month", "2026-10", "--month", "2026-11", "--month", "2026-12")
    octo, nov, dec = got["2026-10"], got["2026-11"], got["2026-12"]
    assert octo["amount_due_minor"] == 2_000  # 1.20 of calls, 1.00 from the credit
    assert (nov["paid_to_earlier_minor"], nov["payments_carried_out_minor"]) == (2_000, 98_000)
    # The period ended on 11-01: the payment is not credit, so nothing of it expires.
    assert nov["expired_credit_minor"] == dec["expired_credit_minor"] == 0
    assert dec["payments_carried_in_minor"] == dec["payments_carried_out_minor"] == 98_000
    for s in got.values():
        sums_reconcile(s)


def test_pay_is_idempotent_by_request_id(ledger):
    ops = accounts(ledger)
    try:
        with clock_at(at(12, 31)):
            first = ops.pay("tea-pay-twice", "tea", 3 * YUAN, at_ms=at(12, 20))
            again = ops.pay("tea-pay-twice", "tea", 3 * YUAN, at_ms=at(12, 20))
            with pytest.raises(InvalidInput) as reused:
                ops.pay("tea-pay-twice", "tea", 4 * YUAN, at_ms=at(12, 20))
        assert again["replayed"] and again["seq"] == first["seq"]
        assert reused.value.field == "request_id"
        assert sum(e["request_id"] == "tea-pay-twice" for e in ops.events("tea")) == 1
    finally:
        ops.ledger.close()


def test_a_postpaid_payment_is_a_top_up(ledger):
    ops = accounts(ledger)
    try:
        with pytest.raises(Refused) as refused:
            ops.pay("shop-pay", "shop", 5 * YUAN)
        assert refused.value.reason == "not_prepaid" and "accounts top-up shop" in refused.value.message
        with pytest.raises(InvalidInput):
            ops.pay("tea-pay-0", "tea", 0)
    finally:
        ops.ledger.close()


def test_the_cli_pays(ledger, capsys):
    with clock_at(at(12, 31)):
        with pytest.raises(SystemExit) as e:
            main(["accounts", "pay", "tea", "0.01", "--at", "2026-12-21T10:00:00+08:00", "--request-id", "cli-pay",
                  "--store", str(ledger / "store")])
    out = capsys.readouterr()
    assert e.value.code == 0, out.err
    assert json.loads(out.out)["operation"] == "pay"


def test_a_payment_that_arrived_before_a_renewal_is_booked_on_its_day(tmp_path, capsys):
    """Newcomer N11 F16: after a renewal, `accounts pay ... --at 2026-11-10`
    (the customer's transfer, recorded late) was refused before_package_start
    naming the renewal, though November's statement exists. A bill payment
    is bounded by the account's first package period instead."""
    from rating_core.errors import Refused

    store = live_store(tmp_path, CATALOG)
    commit_calls(store, [call("b1", "4001000004", at(10, 20), 10)])  # brief: 0.20 of arrears in October
    ops = accounts(tmp_path)
    try:
        ops.renew("r-1", "brief")  # its one-month period ended on 11-01: a new one from now
        paid = ops.pay("p-1", "brief", 2_000, at_ms=at(11, 10))
        assert paid["detail"]["amount_minor"] == 2_000, paid
        with pytest.raises(Refused, match=r"before package 'pre_1m' of account 'brief' started \(2026-10-01"):
            ops.pay("p-2", "brief", 2_000, at_ms=at(9, 10))
        with pytest.raises(Refused, match="before_package_start|started"):  # call credit: the current period's
            ops.top_up("t-1", "brief", 600 * YUAN, at_ms=at(11, 10))
    finally:
        ops.ledger.close()
    got, _ = statements(tmp_path, capsys, "brief", "--month", "2026-10", "--month", "2026-11")
    assert got["2026-11"]["payments_total_minor"] == 2_000


def test_a_month_whose_only_money_is_a_bill_payment_lists_it_without_a_none_row(tmp_path, capsys):
    """Newcomer N11 F1: November's one money event a bill payment (`accounts
    pay`): the printable statement's "Top-ups and adjustments" listed it and
    then a "none" row, and its Note column read the actor ("operator"), not
    a note. Now: the payment's row alone, its note empty (a payment has no
    note or reason; who recorded it is the audit log's), as in the JSON."""
    store = live_store(tmp_path, CATALOG)
    commit_calls(store, [call("t1", "4001000003", at(10, 20), 10)])
    ops = accounts(tmp_path)
    try:
        with clock_at(at(11, 30)):
            ops.pay("tea-pay", "tea", 52_000, actor="clerk_li", at_ms=at(11, 5))
    finally:
        ops.ledger.close()
    got, _ = statements(tmp_path, capsys, "tea", "--month", "2026-11", "--statements", str(tmp_path / "st"),
                        "--format", "html", "--lang", "en")
    assert [(e["kind"], e["amount_minor"], e["note"]) for e in got["2026-11"]["payments"]] == [
        ("payment", 52_000, "")]
    html = (tmp_path / "st" / "tea-2026-11.html").read_text("utf-8")
    table = html.split("<h2>Top-ups and adjustments</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    assert len(rows) == 2, rows  # the heading and the payment
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[1], re.S)
    assert cells == ["2026-11-05 10:00", "payment", "5.20", ""], cells
    assert "none" not in table and "clerk_li" not in html


def test_a_payment_is_whole_fen(ledger, capsys):
    """Newcomer N11 F15: `accounts pay acme 0.0001` was taken (the statement
    then carried 45.5001): money received is never finer than a fen."""
    with pytest.raises(SystemExit) as e:
        main(["accounts", "pay", "tea", "0.0001", "--store", str(ledger / "store")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Invalid value for YUAN: 0.0001: a payment is whole fen (0.01 yuan)" in err, err
    with pytest.raises(SystemExit) as e:
        main(["accounts", "pay", "tea", "1.005", "--reverse", "--reason", "x", "--store", str(ledger / "store")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "a payment is whole fen" in err, err


def test_bill_payments_carried_after_a_change_to_pay_as_you_go_show_on_the_terminal(tmp_path, capsys):
    """Newcomer N11 F12: 20.00 of prepaid bill payments carried to later bills
    after a change to pay-as-you-go read "-" in the terminal's closing credit
    column, which says a postpaid account's payments carried to later bills."""
    store = live_store(tmp_path, CATALOG)
    commit_calls(store, [call("t1", "4001000003", at(10, 20), 10)])  # tea: 5.20 due for October
    ops = accounts(tmp_path)
    try:
        with clock_at(at(12, 10)):
            ops.pay("p-1", "tea", 200 * YUAN, at_ms=at(11, 5))  # more than October and November owe
            ops.change_package("c-1", "tea", "payg")
    finally:
        ops.ledger.close()
    with clock_at(at(12, 31) + 86_400_000):  # 2027-01-01: a month is billed once it has begun (breaker N13 F5)
        got, printed = statements(tmp_path, capsys, "tea", "--month", "2027-01")  # the first month all pay-as-you-go
    dec = got["2027-01"]
    carried = dec["closing_credit_minor"] + dec["payments_carried_out_minor"]
    assert carried > 0
    row = next(line for line in printed.splitlines() if "tea" in line and "2027-01" in line)
    assert f"{carried / 10_000:.2f}" in row, (row, dec)
