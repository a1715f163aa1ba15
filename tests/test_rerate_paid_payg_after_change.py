"""Rerating a paid pay-as-you-go call after the account changed to prepaid
(money2, breaker R2): a rebate on a call the customer already paid is money
back to its prepaid credit.

``acme`` on ``pay`` (pay-as-you-go, std 0.12/min; test_late_cdrs.CATALOG
with the pay-as-you-go packages) makes a 10-minute call on 11-10 (1.20) and
changes to ``pre_b`` (prepaid, fee 600) on 11-15: November is billed as
pay-as-you-go. The change carried what the money received before it left
unapplied into the prepaid credit. Version 2 reprices std and November is
rerated on 11-29. November's statement re-applies the money before the
change to the call's new charge: a lower charge leaves more of the payment
unapplied, carried into the credit; a higher one takes more of it (the rest
due). The ledger moved nothing (a postpaid call of a month billed as
postpaid, on an account prepaid now: ``rerate._moved_credit``), so after a
rebate the live credit stood below the statement's closing credit. Now the
rerating moves the credit by the change in what the money before the change
leaves unapplied (``billing.sources.postpaid_money_left``), as the statement
does. 1 yuan = 10000 minor units.
"""
from __future__ import annotations

from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, rerate_november, setup_store


def _changed(tmp_path, payment_minor):
    store, ops, ledger = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(at(11, 20)):
        if payment_minor:
            ops.top_up("pay", "acme", payment_minor, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    ledger.close()
    return store, ops


def test_a_rebate_on_a_paid_payg_call_returns_to_the_prepaid_credit(tmp_path, rented_catalog, capsys):
    """100.00 paid: 98.80 carried, credit 698.80. std 0.06: the call 1.20 ->
    0.60, a 0.60 rebate. Hand: the payment leaves 99.40 unapplied, credit
    699.40 in the statement and the ledger; nothing due. Before: the ledger
    stayed at 698.80."""
    store, ops = _changed(tmp_path, 100 * YUAN)
    r, credit = rerate_november(tmp_path, store, capsys, "pay", {"std": "0.06"})
    assert [a.delta_minor for a in r.adjustments] == [-6_000]
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (6994 * 1000, 0)
    assert credit == 6994 * 1000


def test_a_rebate_on_an_unpaid_payg_call_lowers_the_bill(tmp_path, rented_catalog, capsys):
    """No payment: nothing carried, credit 600.00, 1.20 due. The 0.60 rebate
    lowers the bill to 0.60; the credit stays 600.00 (as before)."""
    store, ops = _changed(tmp_path, 0)
    r, credit = rerate_november(tmp_path, store, capsys, "pay", {"std": "0.06"})
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (600 * YUAN, 6_000)
    assert credit == 600 * YUAN


def test_a_rebate_on_a_partly_paid_payg_call_returns_only_what_was_paid_beyond_the_new_charge(
        tmp_path, rented_catalog, capsys):
    """0.50 paid: nothing carried, credit 600.00, 0.70 due. std 0.03: 1.20 ->
    0.30; the 0.50 now pays all of it and leaves 0.20 unapplied. Hand: credit
    600.20 in both, nothing due."""
    store, ops = _changed(tmp_path, 5_000)
    r, credit = rerate_november(tmp_path, store, capsys, "pay", {"std": "0.03"})
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (6002 * 1000, 0)
    assert credit == 6002 * 1000


def test_a_higher_charge_on_a_paid_payg_call_is_billed_as_due(tmp_path, rented_catalog, capsys):
    """100.00 paid, std 0.24: 1.20 -> 2.40. The money before the change was
    carried into the prepaid credit, which pays calls, not bills: the 1.20
    more is due on November's bill and the credit stays 698.80, in the
    statement and the ledger (they agreed before too)."""
    store, ops = _changed(tmp_path, 100 * YUAN)
    r, credit = rerate_november(tmp_path, store, capsys, "pay", {"std": "0.24"})
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (6988 * 1000, 12_000)
    assert credit == 6988 * 1000


def test_rerating_again_with_the_same_version_moves_nothing(tmp_path, rented_catalog, capsys):
    """The paid call's 0.60 rebate (credit 699.40), then the same version
    rerated again: the call is skipped, the credit stays 699.40."""
    store, ops = _changed(tmp_path, 100 * YUAN)
    rerate_november(tmp_path, store, capsys, "pay", {"std": "0.06"})
    from rating_core.rerate import rerate

    again = rerate(store, 2, "2026-11-01", "2026-11-30", now_ms=at(11, 29, 12))
    assert again.adjustments == [] and again.skipped == 1
    (nov,) = acme_statements(tmp_path, store, capsys)
    from rating_core.ledger import Ledger

    after = Ledger(store)
    try:
        assert nov["closing_credit_minor"] == 6994 * 1000 == after.stored("acme").credit_minor
    finally:
        after.close()


def test_a_rebate_made_in_a_later_prepaid_month_lowers_that_months_bill(tmp_path, rented_catalog, capsys):
    """The paid call's 0.60 rebate made on 12-03, in December, billed as
    prepaid (pre_b in force at its start, minimum 60.00 a month): the
    rerating is on December's statement, where it lowers the bill (the
    minimum's shortfall, 60.00 with no December calls: 59.40 due) rather
    than the credit, which stays 698.80 in the statement and the ledger
    (``rebate_to_credit`` finds 0 to give back)."""
    import re

    import pytest

    from rating_core.cli import main
    from rating_core.ledger import Ledger
    from rating_core.rerate import rerate
    from test_late_cdrs import RENTED

    store, ops = _changed(tmp_path, 100 * YUAN)
    text = re.sub(r"std: {tiers: \[{price: [0-9.]+}\]}", "std: {tiers: [{price: 0.06}]}", RENTED.replace("PACKAGE", "pay"))
    (tmp_path / "v2.yaml").write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(tmp_path / "v2.yaml"), "--store", str(store)])
    assert e.value.code == 0
    with clock_at(at(12, 3)):
        r = rerate(store, 2, "2026-11-01", "2026-11-30", now_ms=at(12, 3))
        assert [a.delta_minor for a in r.adjustments] == [-6_000]
        nov, dec = acme_statements(tmp_path, store, capsys, ("2026-11", "2026-12"))
    after = Ledger(store)
    try:
        assert dec["closing_credit_minor"] == 6988 * 1000 == after.stored("acme").credit_minor
        assert dec["amount_due_minor"] == 594 * 1000, dec["amount_due_minor"]
    finally:
        after.close()
