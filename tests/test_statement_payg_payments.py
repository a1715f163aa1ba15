"""Pay-as-you-go payments settle the bill (README, "Pay-as-you-go payments").

A payg account's ``accounts top-up`` is a payment: the ledger credits it
against what was charged. Its statement applies it the same way: to what
earlier statements left unpaid first, then to the month's charges, never
below zero, the rest carried as credit. Figures by hand, 0.12 yuan per
started minute (tests/test_billing.py's catalog).
"""
import json
from html import unescape

import pytest

from rating_core.cli import main

from clock import clock_at
from test_billing import CATALOG, YUAN, at, call, commit_calls, live_store


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """shop (payg): calls of 1.20 (Oct), 0.60 (Nov), 0.24 (Dec); payments
    of 1.00 on 11-05 and 5.00 on 12-03, through the live customer layer."""
    from rating_core.accounts import Accounts

    d = tmp_path_factory.mktemp("payg")
    store = live_store(d, CATALOG)
    rows = [call("p1", "4001000005", at(10, 10), 10), call("p2", "4001000005", at(11, 10), 5),
            call("p3", "4001000005", at(12, 10), 2)]
    commit_calls(store, rows)
    ops = Accounts.open(d / "store")
    ops.top_up("pay-1", "shop", 1 * YUAN, at_ms=at(11, 5))
    with clock_at(at(12, 31)):  # the story's now: after the December payment
        ops.top_up("pay-2", "shop", 5 * YUAN, at_ms=at(12, 3))
    balance = ops.balance("shop")["credit_minor"]
    ops.ledger.close()
    return d, balance


def bill(d, capsys, *extra):
    out = d / "bills.json"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(d / "store"), "--out", str(out), "--account", "shop", *extra])
    captured = capsys.readouterr()
    assert e.value.code == 0, captured.err
    return {s["month"]: s for s in json.loads(out.read_text("utf-8"))["statements"]}, captured.out


def test_payments_settle_earlier_statements_then_the_month(shop, capsys):
    d, balance = shop
    got, table = bill(d, capsys)
    octo, nov, dec = got["2026-10"], got["2026-11"], got["2026-12"]
    assert octo["amount_due_minor"] == 12_000 and octo["closing_credit_minor"] == 0  # nothing paid yet
    # November: the 1.00 goes to October's unpaid 1.20; November's 0.60 is due; 0.20 of October still unpaid.
    assert (nov["earlier_unpaid_minor"], nov["paid_to_earlier_minor"], nov["paid_to_charges_minor"]) == (12_000, 10_000, 0)
    assert nov["charges_minor"] == nov["amount_due_minor"] == 6_000 and nov["closing_credit_minor"] == 0
    # December: the 5.00 settles the 0.20 + 0.60 left, then December's 0.24; 3.96 is carried as credit.
    assert (dec["earlier_unpaid_minor"], dec["paid_to_earlier_minor"], dec["paid_to_charges_minor"]) == (8_000, 8_000, 2_400)
    assert dec["charges_minor"] == 2_400 and dec["amount_due_minor"] == 0
    assert dec["closing_credit_minor"] == 39_600
    # The ledger's balance is payments less call charges: 6.00 - 2.04 (no fees to bill on this account).
    assert balance == dec["closing_credit_minor"]
    # bill's table shows the same: December's credit 3.96 and nothing due.
    row = next(line for line in table.splitlines() if "2026-12" in line)
    assert "3.96" in row and row.rstrip(" │|").endswith("0.00")
    # Each statement's amount due is as billed (1.20 + 0.60 + 0.00); the
    # later payments settled them: nothing is outstanding after December.
    assert "total due 1.80 yuan over 3 statement(s)" in table
    assert "outstanding 0.00 yuan after the last month shown" in table


def test_outstanding_counts_earlier_unpaid_of_months_not_shown(shop, capsys):
    d, _ = shop
    _, table = bill(d, capsys, "--month", "2026-11")
    # November alone: its 0.60 due, and 0.20 of October the 1.00 did not cover.
    assert "total due 0.60 yuan over 1 statement(s)" in table
    assert "outstanding 0.80 yuan after the last month shown" in table


def test_a_payment_beyond_the_charges_is_never_a_negative_amount_due(shop, capsys):
    d, _ = shop
    got, _ = bill(d, capsys, "--month", "2026-12")
    dec = got["2026-12"]  # billed alone, it still opens where November closed
    assert dec["earlier_unpaid_minor"] == 8_000 and dec["amount_due_minor"] == 0
    assert dec["closing_credit_minor"] == 39_600


def test_the_printable_statement_shows_where_the_payments_went(shop, capsys):
    d, _ = shop
    bill(d, capsys, "--month", "2026-12", "--statements", str(d / "st"), "--format", "html", "--lang", "en")
    html = unescape((d / "st" / "shop-2026-12.html").read_text("utf-8"))
    assert "<h2>Payments</h2>" in html and "Prepaid credit" not in html
    assert "Payments received (yuan)</td><td class=\"n\">+5.00" in html
    assert "Paid towards earlier statements (yuan) (of unpaid 0.80)</td><td class=\"n\">-0.80" in html
    assert "Paid towards this month's charges (yuan)</td><td class=\"n\">-0.24" in html
    assert "Closing credit (yuan)</td><td class=\"n\">3.96" in html
    assert "<td>payment</td>" in html  # the events table's top-up is a payment


def test_bill_says_which_months_have_not_ended(shop, capsys):
    from rating_core.billing.statements import month_bounds, parse_month
    from rating_core.cli_billing import months_not_ended

    d, _ = shop
    got, _ = bill(d, capsys)
    rows = [type("S", (), {"month": m}) for m in got]
    december_ends = month_bounds(parse_month("2026-12"))[3]  # 2027-01-01 00:00 Asia/Shanghai
    assert months_not_ended(rows, december_ends - 1) == ["2026-12"]
    assert months_not_ended(rows, december_ends) == []
    assert months_not_ended(rows, month_bounds(parse_month("2026-11"))[3] - 1) == ["2026-11", "2026-12"]


def test_a_credit_note_beyond_the_months_charges_is_carried_not_lost(shop, capsys):
    """A 5.00 credit note (a bill adjustment) on November's 0.60 of calls:
    the 4.40 beyond them is owed to the customer, applied as a payment
    (October's 0.20 left unpaid first) and carried; it was a negative amount
    due that vanished at the next month (breaker)."""
    d, _ = shop
    events = d / "credit-note.csv"
    events.write_text("account,at,kind,amount,feature,note\nshop,2026-11-20T10:00:00+08:00,adjustment,-5,,credit note\n",
                      encoding="utf-8")
    got, _ = bill(d, capsys, "--events", str(events))
    nov, dec = got["2026-11"], got["2026-12"]
    assert nov["charges_minor"] == 6_000 - 50_000 and nov["amount_due_minor"] == 0
    # 1.00 paid + 4.40 owed: October's 1.20 settled, 4.20 carried.
    assert (nov["earlier_unpaid_minor"], nov["paid_to_earlier_minor"], nov["paid_to_charges_minor"]) == (12_000, 12_000, -44_000)
    assert nov["closing_credit_minor"] == 42_000
    # Read as the printable statement reads it (newcomer N10): the 4.40 is a credit, not a negative payment.
    assert nov["charges_below_zero_minor"] == 44_000
    out = d / "credit-note.csv.out.csv"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(d / "store"), "--out", str(out), "--account", "shop",
              "--events", str(events), "--lang", "en"])
    assert e.value.code == 0
    import csv

    row = next(r for r in csv.DictReader(out.read_text("utf-8-sig").splitlines()) if r["Month"] == "2026-11")
    assert (row["Paid towards this month's charges (yuan)"],
            row["Charges below zero (a credit), added to the credit (yuan)"]) == ("0.00", "4.40")
    # December opens with it: 4.20 + 5.00 paid - 0.24 of calls.
    assert dec["earlier_unpaid_minor"] == 0 and dec["amount_due_minor"] == 0
    assert dec["closing_credit_minor"] == 42_000 + 50_000 - 2_400


def test_the_csv_calls_a_payg_top_up_a_payment_as_the_printable_statement_does(shop, capsys):
    """The summary CSV had one 'Top-ups (yuan)' column for every kind; the
    printable payg statement says 'Payments received' (CSV reviewer). A payg
    month's top-ups are in that column, and the row still reconciles."""
    import csv
    from decimal import Decimal

    d, _ = shop
    for lang, top_ups, payments in (("en", "Top-ups (yuan)", "Payments received (yuan)"),
                                    ("zh", "充值(元)", "本月缴费(元)")):
        out = d / f"bills-{lang}.csv"
        with pytest.raises(SystemExit) as e:
            main(["bill", "--ledger", "--store", str(d / "store"), "--out", str(out), "--account", "shop",
                  "--lang", lang])
        assert e.value.code == 0
        capsys.readouterr()
        rows = list(csv.DictReader(out.read_text("utf-8-sig").splitlines()))
        assert [(r[payments], r[top_ups]) for r in rows] == [("0.00", "0.00"), ("1.00", "0.00"), ("5.00", "0.00")]
    for r in rows:  # zh: opening + payments received - paid towards earlier and this month = closing
        d_ = {k: Decimal(v) for k, v in r.items() if k.endswith("(元)")}
        assert (d_["期初余额(元)"] + d_["本月缴费(元)"] - d_["缴费抵扣以前账单(元)"] - d_["缴费抵扣本月费用(元)"]
                == d_["期末余额(元)"]), r
