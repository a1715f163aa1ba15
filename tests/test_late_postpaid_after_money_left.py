"""A late postpaid call of a month billed as postpaid, committed after the
money the change to prepaid carried had left the account in a LATER month
(refunded or spent by prepaid calls): breaker5 F2 (HIGH).

test_late_cdrs.RENTED catalog: ``pay`` 0.12/min, ``pre_b`` prepaid fee 600.00
at 0.10/min, minimum 60.00. ``acme`` on ``pay``: 100.00 paid 11-01, a
10-minute call 11-10 (1.20); the change to ``pre_b`` carries 98.80 (credit
698.80). The money then leaves in December, and only then a 10-minute call
of 11-12 (1.20) arrives late. The ledger has nothing left to take it from
(never below zero): 0.00. Before, the statement still paid the call from
the carried payment, so the December statement (prepaid) closed at -1.20
and the 1.20 was due nowhere. Now the prepaid statement never closes below
zero: the 1.20 is due on November's bill (its month), and the ledger (0.00)
and the December closing credit (0.00) agree. 1 yuan = 10000 minor units.
"""
from __future__ import annotations

from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, setup_store

MONTHS = ("2026-11", "2026-12")


def _pay_then_change(tmp_path, change_ms, now_ms):
    store, ops, ledger = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(now_ms):
        ops.top_up("pay", "acme", 100 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=change_ms, at_ms=change_ms)
    return store, ops


def _spend_698_80_on_december_1(store):
    # 5 x 1397 + 3 = 6988 minutes at 0.10 = 698.80, on 12-01 from 02:00
    engine_rows(store, [cdr(f"s{i}", at(12, 1, 2) + i * 1000, 1397) for i in range(5)] + [cdr("s5", at(12, 1, 3), 3)])


def test_a_late_call_after_a_december_refund_of_the_whole_credit_is_due(tmp_path, rented_catalog, capsys):
    """Story A: change 11-15 (credit 698.80), 698.80 refunded in December,
    then the late 1.20. Hand: ledger 0.00; November has 2.40 of calls, and
    the late 1.20 can no longer be paid from the 98.80 carried, which was
    refunded: November due 1.20 (its credit closes at 698.80), December
    698.80 - 698.80 = 0.00. Before: November due 0.00, December closing
    -1.20."""
    store, ops = _pay_then_change(tmp_path, at(11, 15, 0), at(11, 20))
    ops.refund("r", "acme", 6988_000, "all")  # now: December
    engine_rows(store, [cdr("late", at(11, 12), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert ops.balance("acme")["credit_minor"] == 0
    assert nov["amount_due_minor"] == 12_000
    assert dec["closing_credit_minor"] == 0


def test_a_late_call_after_december_prepaid_calls_spent_the_credit_is_due(tmp_path, rented_catalog, capsys):
    """Story B: change at 12-01 00:00 (November all pay-as-you-go; credit
    698.80), December prepaid calls spend 698.80, then the late 1.20. Hand:
    ledger 0.00, November due 1.20, December closing 0.00. Before: November
    due 0.00, December closing -1.20."""
    store, ops = _pay_then_change(tmp_path, at(12, 1, 0), at(12, 1, 1))
    _spend_698_80_on_december_1(store)
    assert ops.balance("acme")["credit_minor"] == 0
    engine_rows(store, [cdr("late", at(11, 12), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert ops.balance("acme")["credit_minor"] == 0
    assert nov["amount_due_minor"] == 12_000
    assert dec["closing_credit_minor"] == 0


def test_a_december_change_then_refund_then_late_call(tmp_path, rented_catalog, capsys):
    """Story C: change at 12-01 00:00, 698.80 refunded, the late 1.20. Hand:
    ledger 0.00, November due 1.20, December closing 0.00 (before -1.20)."""
    store, ops = _pay_then_change(tmp_path, at(12, 1, 0), at(12, 1, 1))
    ops.refund("r", "acme", 6988_000, "all")
    engine_rows(store, [cdr("late", at(11, 12), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert ops.balance("acme")["credit_minor"] == 0
    assert nov["amount_due_minor"] == 12_000
    assert dec["closing_credit_minor"] == 0


def test_a_partial_refund_leaves_the_late_call_paid_as_far_as_the_credit_goes(tmp_path, rented_catalog, capsys):
    """Change 11-15 (credit 698.80), 698.00 refunded in December (0.80
    left), then the late 1.20. Hand: the ledger takes the 0.80 left (0.00);
    the statement pays 0.80 of the call from the carried payment and 0.40
    is due on November's bill; December closing 0.00."""
    store, ops = _pay_then_change(tmp_path, at(11, 15, 0), at(11, 20))
    ops.refund("r", "acme", 698 * YUAN, "part")
    engine_rows(store, [cdr("late", at(11, 12), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert ops.balance("acme")["credit_minor"] == 0
    assert nov["amount_due_minor"] == 4_000
    assert dec["closing_credit_minor"] == 0


def test_a_late_call_before_the_refund_is_paid_from_the_carried_money(tmp_path, rented_catalog, capsys):
    """Control: the late 1.20 arrives BEFORE the December refund: ledger and
    statement take it from the carried payment (697.60), nothing due; the
    refund of the 697.60 left closes December at 0.00."""
    store, ops = _pay_then_change(tmp_path, at(11, 15, 0), at(11, 20))
    engine_rows(store, [cdr("late", at(11, 12), 10)])
    assert ops.balance("acme")["credit_minor"] == 6976_000
    ops.refund("r", "acme", 6976_000, "all")
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert ops.balance("acme")["credit_minor"] == 0
    assert nov["amount_due_minor"] == 0
    assert dec["closing_credit_minor"] == 0


def test_a_late_payg_call_of_a_month_billed_as_prepaid_after_a_december_refund_is_due(
        tmp_path, rented_catalog, capsys):
    """Story D: ``pre_b`` (600.00) from 10-01 -> ``pay`` 11-10 -> ``pre_a``
    (fee 480.00) 11-20; November is billed as prepaid (pre_b at its first
    instant): credit 600.00 + 480.00 = 1080.00. All 1080.00 refunded in
    December, then a late pay-as-you-go call of 11-12 (1.20). The ledger has
    nothing to take it from: 0.00. Hand: November's credit no longer pays it,
    so it is billed: November due 58.80 (the minimum's shortfall: 60.00 -
    1.20 of usage) + 1.20 = 60.00; December closing 0.00. Before: November
    due 58.80, December closing -1.20."""
    store, ops, ledger = setup_store(tmp_path, "pre_b")
    with clock_at(at(11, 25)):
        ops.change_package("c1", "acme", "pay", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
        ops.change_package("c2", "acme", "pre_a", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    assert ops.balance("acme")["credit_minor"] == 1080 * YUAN
    ops.refund("r", "acme", 1080 * YUAN, "all")  # now: December
    engine_rows(store, [cdr("late", at(11, 12), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert ops.balance("acme")["credit_minor"] == 0
    assert (nov["amount_due_minor"], dec["closing_credit_minor"]) == (60 * YUAN, 0)
