"""A late pay-as-you-go call of a month billed as pay-as-you-go, committed
after the account changed to prepaid mid-month (money2, finding 1, HIGH).

``acme`` on ``pay`` (pay-as-you-go, 0.12/min, no rental; test_late_cdrs.CATALOG
with the pay-as-you-go packages) makes a 10-minute call on 11-10 (1.20) and
changes to ``pre_b`` (prepaid, fee 600) on 11-15; November is billed as
pay-as-you-go (the package in force at its first instant). At the change
the statements leave the payment less the 1.20 unapplied, and that is
carried into the prepaid credit. A 10-minute call of 11-12 (1.20) then
arrives late. November's statement pays it from the money received before
the change, as far as it goes (the rest due), so the carry -- and the
prepaid credit -- is that much smaller. The ledger took nothing from an
account prepaid now, so the live credit (and Authorize's available balance)
stood above the statement's closing credit: 698.80 against 697.60.

Now the ledger takes such a call from the credit by what the money before the
change still had unapplied (``billing.sources.postpaid_money_left``), never
below zero; the rest stays due on the statement. 1 yuan = 10000 minor units.
"""
from __future__ import annotations

from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, setup_store


def _changed(tmp_path, payment_minor):
    store, ops, ledger = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(at(11, 20)):
        if payment_minor:
            ops.top_up("pay", "acme", payment_minor, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    return store, ops, ledger


def test_a_late_payg_call_is_taken_from_the_carried_payment(tmp_path, rented_catalog, capsys):
    """100.00 paid on 11-01. Hand: carried 100.00 - 1.20 = 98.80, credit
    698.80; the late 1.20 is paid from the payment: 97.60 carried, credit
    697.60 in the statement and (now) the ledger; nothing due. Before: the
    ledger stayed at 698.80."""
    store, ops, ledger = _changed(tmp_path, 100 * YUAN)
    assert ops.balance("acme")["credit_minor"] == 6988 * 1000
    engine_rows(store, [cdr("late", at(11, 12), 10)])
    engine_rows(store, [cdr("late", at(11, 12), 10)])  # a retransmission moves nothing
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert nov["closing_credit_minor"] == 6976 * 1000 and nov["amount_due_minor"] == 0
    assert ops.balance("acme")["credit_minor"] == 6976 * 1000


def test_a_late_payg_call_beyond_the_carried_payment_takes_what_is_left_and_the_rest_is_due(
        tmp_path, rented_catalog, capsys):
    """2.00 paid. Hand: 2.00 - 1.20 = 0.80 carried, credit 600.80; two late
    1.20 calls (11-12, 11-13): the first takes the 0.80 (credit 600.00), 0.40
    due; the second nothing, 1.20 due: 1.60 due in all, the package's 600.00
    untouched (prepaid credit pays no postpaid bill)."""
    store, ops, ledger = _changed(tmp_path, 2 * YUAN)
    assert ops.balance("acme")["credit_minor"] == 6008 * 1000
    engine_rows(store, [cdr("late1", at(11, 12), 10), cdr("late2", at(11, 13), 10)])
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (600 * YUAN, 16_000)
    assert ops.balance("acme")["credit_minor"] == 600 * YUAN


def test_without_a_payment_a_late_payg_call_is_all_due(tmp_path, rented_catalog, capsys):
    """No payment: nothing carried (credit 600.00); the 1.20 on-time call and
    the late 1.20 are both due (2.40), the credit stays 600.00, as before."""
    store, ops, ledger = _changed(tmp_path, 0)
    engine_rows(store, [cdr("late", at(11, 12), 10)])
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (600 * YUAN, 24_000)
    assert ops.balance("acme")["credit_minor"] == 600 * YUAN


def test_a_late_payg_call_after_the_carried_money_was_spent_is_due(tmp_path, rented_catalog, capsys):
    """100.00 paid, credit 698.80 after the change; pre_b calls (0.10/min)
    spend all of it by 11-21 (5 x 1348 + 248 minutes = 698.80). Then the late
    1.20 call: the ledger has nothing left to take (never below zero), so it
    is due. Hand: closing credit 0.00 in both, 1.20 due. Before: the statement
    paid it from the money before the change, which the prepaid calls had
    already spent, and closed at -1.20 with nothing due."""
    store, ops, ledger = _changed(tmp_path, 100 * YUAN)
    spend = [cdr(f"s{d}", at(11, d), 1348) for d in range(16, 21)] + [cdr("s21", at(11, 21), 248)]
    engine_rows(store, spend)
    assert ops.balance("acme")["credit_minor"] == 0
    engine_rows(store, [cdr("late", at(11, 12), 10)])
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (0, 12_000)
    assert ops.balance("acme")["credit_minor"] == 0
