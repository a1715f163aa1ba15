"""A change from a postpaid package (bundle, pay-as-you-go) to a prepaid one
carries into the prepaid period what the statements leave unapplied at the
change, never the ledger's whole credit (breaker 2026-12-02 second run, F2,
HIGH).

The ledger of a postpaid account holds its payments less the usage charges
it debited (a bundle's overage, a pay-as-you-go call's charge); it never
holds the bill's fees (rental, features, the minimum's shortfall), which the
month's statement pays from the payments first. Carrying the ledger's whole
credit put the rental into prepaid credit that could be spent on calls or
refunded in cash, and the prepaid statement then closed below zero with
nothing due. The part of the ledger's credit the bills applied leaves the
ledger at the change (``applied_to_bills_minor`` in the change event's
detail); the statements of the change's month and the next close on the
ledger's credit.

Account ``acme`` as in ``test_breaker_package_change_money`` (catalog of
``test_late_cdrs`` with the pay-as-you-go packages and a 50-yuan rental on
``bun_a``: 100 minutes included, overage 0.20/min; ``pre_b``: prepaid, fee
600, minimum 60/month; ``bun_b``: 300 minutes, no rental). Money in minor
units, 1/10000 yuan (``YUAN`` = 10000).
"""
from __future__ import annotations

import json

import pytest

from clock import clock_at
from rating_core.cli import main
from test_late_cdrs import RENTED, YUAN, acme_statements, at, cdr, engine_rows, setup_store

def _statement(tmp_path, store, capsys, month="2026-11"):
    """``bill --ledger`` of acme, JSON; the statement of ``month``."""
    return acme_statements(tmp_path, store, capsys, (month,))[0]


def _balance_cli(store, capsys) -> int:
    """`accounts balance acme`'s credit (minor units)."""
    capsys.readouterr()  # what ran before
    with pytest.raises(SystemExit) as e:
        main(["accounts", "balance", "acme", "--store", str(store)])
    assert e.value.code == 0
    return json.loads(capsys.readouterr().out)["credit_minor"]


def _change_detail(ops) -> dict:
    """The detail of acme's last package change that started a period."""
    return [e for e in ops.account_events("acme")
            if e["operation"] == "change_package" and "carried_minor" in e["detail"]][-1]["detail"]


def test_a_bundle_with_a_payment_carries_what_its_bill_left(tmp_path, rented_catalog, capsys):
    """bun_a (rental 50) with a 200.00 payment on 11-01, a 105-minute call on
    11-02 (5 min overage x 0.20 = 1.00, debited from the ledger), a change to
    pre_b (fee 600) on 11-15. Hand: the ledger holds 200.00 - 1.00 = 199.00;
    November's bill is rental 50.00 + overage 1.00 = 51.00, paid from the
    payment: 149.00 unapplied. Carried 149.00 (not 199.00), 50.00 applied to
    the bill (the rental) leaves the ledger; prepaid credit 149.00 + 600.00 =
    749.00 = November's closing credit = December's (no calls), and a refund
    is bounded by it."""
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("on", at(11, 2), 105)])
    with clock_at(at(11, 20)):
        ops.top_up("pay-200", "acme", 200 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["applied_to_bills_minor"], detail["credit_minor"]) == (
        149 * YUAN, 50 * YUAN, 749 * YUAN)
    assert ops.balance("acme")["credit_minor"] == 749 * YUAN
    nov = _statement(tmp_path, store, capsys)
    assert (nov["rental_minor"], nov["amount_due_minor"], nov["closing_credit_minor"]) == (50 * YUAN, 0, 749 * YUAN)
    assert nov["package_changes"][0]["carried_minor"] == 149 * YUAN
    assert nov["package_changes"][0]["package_credit_minor"] == 600 * YUAN  # new money only: no double count
    dec = _statement(tmp_path, store, capsys, "2026-12")
    assert dec["opening_credit_minor"] == dec["closing_credit_minor"] == 749 * YUAN
    assert _balance_cli(store, capsys) == 749 * YUAN
    with clock_at(at(11, 20, 12)):
        from rating_core.errors import Refused

        with pytest.raises(Refused):
            ops.refund("too-much", "acme", 749 * YUAN + 100, "close out", at_ms=at(11, 20, 12))
        ops.refund("all", "acme", 749 * YUAN, "close out", at_ms=at(11, 20, 12))
    nov = _statement(tmp_path, store, capsys)
    assert nov["closing_credit_minor"] == 0 == ops.balance("acme")["credit_minor"]


def test_a_payment_short_of_the_bill_carries_nothing_and_the_rest_stays_due(tmp_path, rented_catalog, capsys):
    """As above with a 20.00 payment. Hand: ledger 20.00 - 1.00 = 19.00; the
    bill of 51.00 takes the whole payment, 31.00 stays due; nothing is
    carried, the 19.00 applied to the bill leaves the ledger: prepaid credit
    600.00 = November's closing credit, amount due 31.00."""
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("on", at(11, 2), 105)])
    with clock_at(at(11, 20)):
        ops.top_up("pay-20", "acme", 20 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["applied_to_bills_minor"]) == (0, 19 * YUAN)
    nov = _statement(tmp_path, store, capsys)
    assert (nov["paid_to_charges_minor"], nov["amount_due_minor"]) == (20 * YUAN, 31 * YUAN)
    assert nov["closing_credit_minor"] == 600 * YUAN == ops.balance("acme")["credit_minor"]
    dec = _statement(tmp_path, store, capsys, "2026-12")
    assert dec["closing_credit_minor"] == 600 * YUAN == _balance_cli(store, capsys)


def test_no_payment_carries_nothing_and_the_bill_stays_due(tmp_path, rented_catalog, capsys):
    """No payment: the ledger is at -1.00 (the overage), nothing to carry,
    nothing applied. Prepaid credit 600.00; November's bill 51.00 due."""
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("on", at(11, 2), 105)])
    with clock_at(at(11, 20)):
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["applied_to_bills_minor"]) == (0, 0)
    nov = _statement(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (51 * YUAN, 600 * YUAN)
    assert ops.balance("acme")["credit_minor"] == 600 * YUAN


def test_pay_as_you_go_without_fees_carries_its_whole_payment(tmp_path, rented_catalog, capsys):
    """pay (payg, std 0.12, no rental) with a 100.00 payment and a 10-minute
    call (1.20, debited) -> pre_b on 11-15. Hand: the bill is the call, which
    the ledger already took: 98.80 unapplied = the ledger; carried whole,
    0 applied; prepaid credit 698.80."""
    store, ops, ledger = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(at(11, 20)):
        ops.top_up("pay-100", "acme", 100 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["applied_to_bills_minor"]) == (988 * 1000, 0)
    nov = _statement(tmp_path, store, capsys)
    assert nov["closing_credit_minor"] == 6988 * 1000 == ops.balance("acme")["credit_minor"]


def test_the_sweep_applying_a_scheduled_change_carries_the_same(tmp_path, rented_catalog, capsys):
    """The f2 story with the change scheduled on 11-10 for 11-15 00:00 and
    applied by the sweep at 11-15 00:00: carried 149.00, applied 50.00,
    credit 749.00 = November's closing credit."""
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("on", at(11, 2), 105)])
    with clock_at(at(11, 10)):
        ops.top_up("pay-200", "acme", 200 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 10))
    with clock_at(at(11, 15, 0)):
        ops.sweep(at_ms=at(11, 15, 0))
    assert ops.balance("acme")["package"] == "pre_b"
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["applied_to_bills_minor"]) == (149 * YUAN, 50 * YUAN)
    nov = _statement(tmp_path, store, capsys)
    assert nov["closing_credit_minor"] == 749 * YUAN == ops.balance("acme")["credit_minor"]


def test_a_late_sweep_carries_the_money_dated_after_the_change_whole(tmp_path, rented_catalog, capsys):
    """Scheduled for 11-15 00:00, swept at 11-15 09:00; a 20.00 payment on
    11-01 and a 100.00 top-up at 08:00 on 11-15 (after the change's date,
    before the sweep). Once the change is recorded the statement applies
    only the money before it to November's bill (51.00): 20.00 paid, 31.00
    due; the 100.00 is the prepaid package's. Hand: the ledger holds 20.00 -
    1.00 + 100.00 = 119.00; carried 100.00, 19.00 applied to the bill;
    prepaid credit 700.00 = November's closing credit, 31.00 still due."""
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("on", at(11, 2), 105)])
    with clock_at(at(11, 10)):
        ops.top_up("pay-20", "acme", 20 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 10))
    with clock_at(at(11, 15, 8)):
        ops.top_up("pay-100", "acme", 100 * YUAN, at_ms=at(11, 15, 8))
    with clock_at(at(11, 15, 9)):
        ops.sweep(at_ms=at(11, 15, 9))
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["applied_to_bills_minor"]) == (100 * YUAN, 19 * YUAN)
    nov = _statement(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (31 * YUAN, 700 * YUAN)
    assert ops.balance("acme")["credit_minor"] == 700 * YUAN


@pytest.mark.parametrize("old,new,carried", [
    ("pre_a", "bun_b", 4788 * 1000),       # prepaid -> postpaid: the credit less the 1.20 call
    ("bun_a", "bun_b", 199 * YUAN),          # postpaid -> postpaid: the ledger's credit, as before
    ("bun_a", "pay", 199 * YUAN),
])
def test_other_directions_carry_the_ledgers_credit_as_before(tmp_path, rented_catalog, capsys, old, new, carried):
    """Only postpaid -> prepaid is bounded by the statements: prepaid ->
    postpaid and postpaid -> postpaid carry the ledger's credit above zero
    (prepaid: 480.00 less a 10-minute call at 0.12 = 478.80; bundle: the
    200.00 payment less the 1.00 overage = 199.00), and name no
    ``applied_to_bills_minor``."""
    store, ops, ledger = setup_store(tmp_path, old)
    engine_rows(store, [cdr("on", at(11, 2), 10 if old == "pre_a" else 105)])
    with clock_at(at(11, 20)):
        if old != "pre_a":
            ops.top_up("pay-200", "acme", 200 * YUAN, at_ms=at(11, 1))
        ops.change_package("chg", "acme", new, effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    detail = _change_detail(ops)
    assert detail["carried_minor"] == carried and "applied_to_bills_minor" not in detail
    assert ops.balance("acme")["credit_minor"] == carried


def test_a_feature_fee_paid_from_the_payment_is_not_carried(tmp_path, monkeypatch, capsys):
    """pay (payg, std 0.12) holding the recording feature (30.00 a month,
    billed on the statement only) with a 100.00 payment and a 10-minute call
    (1.20, debited) -> pre_b on 11-15. Hand: ledger 100.00 - 1.20 = 98.80;
    November's bill 1.20 + 30.00 = 31.20 paid from the payment: carried
    68.80, 30.00 applied to the bill; prepaid credit 668.80 = November's
    closing credit."""
    import test_late_cdrs

    monkeypatch.setattr(test_late_cdrs, "CATALOG", RENTED.replace(
        "accounts:\n", "features:\n  rec: {name: Recording, fee: 30, per: month}\naccounts:\n").replace(
        "    package: PACKAGE\n", "    package: PACKAGE\n    features: [rec]\n"))
    store, ops, ledger = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(at(11, 20)):
        ops.top_up("pay-100", "acme", 100 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["applied_to_bills_minor"]) == (688 * 1000, 30 * YUAN)
    nov = _statement(tmp_path, store, capsys)
    assert sum(f["amount_minor"] for f in nov["features"]) == 30 * YUAN
    assert nov["amount_due_minor"] == 0
    assert nov["closing_credit_minor"] == 6688 * 1000 == ops.balance("acme")["credit_minor"]


def test_a_postpaid_minimum_counts_the_postpaid_calls_only(tmp_path, monkeypatch, capsys):
    """``pay`` with a 40.00 monthly minimum (billed from 10-01, so November
    is no first month), a 100.00 payment on 11-01, a 10-minute call on 11-10
    (1.20), a change to ``pre_b`` (fee 600) on 11-15, then a 100-minute
    pre_b call on 11-16 (0.10/min: 10.00 from the prepaid credit).
    November is billed as pay-as-you-go: its minimum counts the 1.20 under
    ``pay`` (shortfall 38.80), not the prepaid call, which the prepaid credit
    paid. Hand: 100.00 - 1.20 - 38.80 = 60.00 carried; 600.00 + 60.00 -
    10.00 = 650.00, the ledger's credit and the statement's closing credit.
    Before, the statement counted the prepaid call towards the minimum
    (shortfall 28.80) and closed at 660.00 beside the ledger's 650.00."""
    import test_late_cdrs

    monkeypatch.setattr(test_late_cdrs, "CATALOG", RENTED.replace(
        "pay: {kind: payg, credit_limit: 100000,", "pay: {kind: payg, credit_limit: 100000, monthly_minimum: 40,"))
    store, ops, ledger = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(at(11, 20)):
        ops.top_up("pay-100", "acme", 100 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("pre", at(11, 16), 100)])
    nov = _statement(tmp_path, store, capsys)
    assert nov["minimum_topup_minor"] == 388_000
    assert nov["closing_credit_minor"] == 650 * YUAN
    assert ops.balance("acme")["credit_minor"] == 650 * YUAN


@pytest.mark.parametrize("how", ["sweep", "now"])
def test_a_change_at_a_months_first_instant_carries_what_the_month_before_left(tmp_path, rented_catalog, capsys,
                                                                               how):
    """breaker2 B2 (HIGH): bun_a (rental 50) from 10-01, a 105-minute call
    on 11-02 (1.00 overage), a 200.00 payment dated 11-01, a change to pre_b
    (fee 600) effective 2026-12-01 00:00 -- scheduled on 11-20 and applied by
    the sweep, or made at that instant. Hand: November's bill 50.00 + 1.00
    paid from the payment, 149.00 unapplied; bun_a never runs in December
    (it ends at its first instant), so no December rental: carried 149.00,
    prepaid credit 749.00, as December's statement says. Before, the carry
    was bounded by December's statement as it stood before the change, which
    still billed bun_a's December rental: carried 99.00, ledger 699.00."""
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("on", at(11, 2), 105)])
    with clock_at(at(11, 20)):
        ops.top_up("pay-200", "acme", 200 * YUAN, at_ms=at(11, 1))
        if how == "sweep":
            ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(12, 1, 0), at_ms=at(11, 20))
    with clock_at(at(12, 1, 0)):
        if how == "sweep":
            ops.sweep(at_ms=at(12, 1, 0))
        else:
            ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(12, 1, 0), at_ms=at(12, 1, 0))
    dec = _statement(tmp_path, store, capsys, "2026-12")
    assert dec["rental_minor"] == 0 and dec["opening_credit_minor"] == 149 * YUAN
    assert dec["closing_credit_minor"] == 749 * YUAN
    assert ops.balance("acme")["credit_minor"] == 749 * YUAN


def test_a_payg_call_before_a_late_sweep_of_a_change_to_prepaid_is_paid_once(tmp_path, rented_catalog, capsys):
    """breaker3 R3 (HIGH): a change to prepaid scheduled for a month's first
    instant and applied by a later sweep; a pay-as-you-go call between the
    two is billed once.

    acme on pay (payg 0.12/min) from 10-01: a 110-minute call on 11-02
    (13.20), a 100.00 top-up dated 11-05 (ledger 86.80); on 11-20 a change to
    pre_b (fee 600, minimum 60/month) scheduled for 2026-12-01 00:00. A
    10-minute call on 12-01 10:00 is rated under pay (1.20, the change not
    yet applied; the ledger's credit 85.60); the sweep applies the change on
    12-02 09:00. December is billed under pre_b (the package in force at its
    first instant), which bills the pay call as due, not from the money.

    Hand: November leaves 100.00 - 13.20 = 86.80 unapplied; the ledger took
    the December call's 1.20 from that credit, which the carry gives back:
    carried 85.60 + 1.20 = 86.80, prepaid credit 686.80 (before: 685.60).
    December: closing credit 686.80; due 58.80 (the minimum's shortfall,
    60.00 less the 1.20 of calls) + 1.20 (the call) = 60.00. Net: received
    700.00, charged 13.20 + 1.20 + 58.80 = 73.20, 626.80 = 686.80 - 60.00.
    Minor units (``YUAN`` = 10000)."""
    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("nov", at(11, 2), 110)])
    with clock_at(at(11, 20)):
        ops.top_up("t", "acme", 100 * YUAN, at_ms=at(11, 5))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(12, 1, 0), at_ms=at(11, 20))
    rows, _ = engine_rows(store, [cdr("dec", at(12, 1, 10), 10)])
    assert [(r["package"], r["charge_minor"]) for r in rows] == [("pay", 12_000)]
    with clock_at(at(12, 2, 9)):
        ops.sweep(at_ms=at(12, 2, 9))
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["late_postpaid_calls_minor"], detail["applied_to_bills_minor"],
            detail["credit_minor"]) == (868_000, 12_000, 0, 6_868_000)
    dec = _statement(tmp_path, store, capsys, "2026-12")
    assert (dec["closing_credit_minor"], dec["amount_due_minor"]) == (6_868_000, 60 * YUAN)
    assert ops.balance("acme")["credit_minor"] == 6_868_000 == _balance_cli(store, capsys)


def test_a_payg_call_in_the_changes_own_month_stays_paid_from_the_credit(tmp_path, rented_catalog, capsys):
    """The same account, the change to pre_b dated back within December:
    made at 12-01 12:00, effective 12-01 09:00, after the pay call at 10:00
    (1.20, rated under pay and taken from the credit). December is billed
    under pay (the package in force at its first instant), whose statement
    pays the call from the money, as the ledger did: nothing given back.
    Hand: 86.80 - 1.20 = 85.60 carried, prepaid credit 685.60 = December's
    closing credit, nothing due (pay has no minimum). Minor units."""
    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("nov", at(11, 2), 110)])
    with clock_at(at(11, 20)):
        ops.top_up("t", "acme", 100 * YUAN, at_ms=at(11, 5))
    engine_rows(store, [cdr("dec", at(12, 1, 10), 10)])
    with clock_at(at(12, 1, 12)):
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(12, 1, 9), at_ms=at(12, 1, 12))
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["credit_minor"]) == (856_000, 6_856_000)
    assert "late_postpaid_calls_minor" not in detail
    dec = _statement(tmp_path, store, capsys, "2026-12")
    assert (dec["closing_credit_minor"], dec["amount_due_minor"]) == (6_856_000, 0)
    assert ops.balance("acme")["credit_minor"] == 6_856_000
