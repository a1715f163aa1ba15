"""fixf1 (breaker7 F1, F1b, F1c): in a month billed as postpaid with a
change to prepaid and a return to postpaid, the money received before the
change pays the month's later charges (a late call of the first pay span, a
rise by rerating, a pay-as-you-go call after the return) only as far as what
the change carried of it is still there (README "Money rules": money carried
can only pay what is still there), in the statement and the ledger alike.

Story (``test_breaker7_money._pay_pre_b_pay``, catalog ``RENTED``): ``pay``,
100.00 paid 11-01, a 1.20 call 11-02; ``pre_b`` 11-10 (the change pays the
1.20 and carries 98.80: 698.80); back to ``pay`` 11-20 (carries 698.80).
Money in minor units, 1 yuan = ``YUAN`` = 10000.
"""
from __future__ import annotations

from clock import clock_at
from test_breaker7_money import MONTHS, _credit, _pay_pre_b_pay, _rerate
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows


def _figures(ops, nov: dict, dec: dict) -> tuple[int, int, int, int, int]:
    return (_credit(ops), nov["amount_due_minor"], nov["closing_credit_minor"], dec["earlier_unpaid_minor"],
            dec["closing_credit_minor"])


def test_a_late_first_span_call_after_the_change_to_prepaid_takes_only_what_is_left(tmp_path, rented_catalog,
                                                                                     capsys):
    """F1b with the change to prepaid before the late call: 690.00 refunded
    11-22 (8.80 left of the 98.80 carried), ``pre_a`` 11-25 (carries 8.80:
    488.80), then a late 100-minute call of 11-05 (12.00).

    Hand: the money before the change has 8.80 left: the ledger takes 8.80
    (480.00), not 12.00 out of the new package's 480.00 (it took 12.00:
    476.80, both sides, 3.20 of November's call paid by December's package
    fee). November: charges 13.20, paid 1.20 + 8.80 = 10.00, due 3.20
    (32000), closing 480.00 = December's closing = the ledger (the same
    figures as F1b, where the call came before the change)."""
    store, ops = _pay_pre_b_pay(tmp_path)
    with clock_at(at(11, 22)):
        ops.refund("r", "acme", 690 * YUAN, "close", at_ms=at(11, 22))
    with clock_at(at(11, 26)):
        ops.change_package("c3", "acme", "pre_a", effective_ms=at(11, 25, 0), at_ms=at(11, 25, 0))
    assert _credit(ops) == 4888 * 1000
    engine_rows(store, [cdr("late1", at(11, 5), 100)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert _figures(ops, nov, dec) == (480 * YUAN, 32_000, 480 * YUAN, 32_000, 480 * YUAN)


def test_two_late_calls_after_the_change_to_prepaid_share_what_is_left(tmp_path, rented_catalog, capsys):
    """As above, two late calls committed one after the other: 50 minutes of
    11-05 (6.00) and 50 minutes of 11-06 (6.00). Hand: the first takes 6.00
    of the 8.80 left, the second 2.80: ledger 480.00; November due 3.20,
    closing 480.00 = December's."""
    store, ops = _pay_pre_b_pay(tmp_path)
    with clock_at(at(11, 22)):
        ops.refund("r", "acme", 690 * YUAN, "close", at_ms=at(11, 22))
    with clock_at(at(11, 26)):
        ops.change_package("c3", "acme", "pre_a", effective_ms=at(11, 25, 0), at_ms=at(11, 25, 0))
    engine_rows(store, [cdr("late1", at(11, 5), 50)])
    assert _credit(ops) == 4828 * 1000
    engine_rows(store, [cdr("late2", at(11, 6), 50)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert _figures(ops, nov, dec) == (480 * YUAN, 32_000, 480 * YUAN, 32_000, 480 * YUAN)


def test_a_call_after_the_return_and_a_refund_is_paid_from_what_is_left(tmp_path, rented_catalog, capsys):
    """698.00 refunded 11-22 (0.80 left), a 10-minute call 11-23 (1.20).
    Hand: the pay-as-you-go ledger 0.80 - 1.20 = -0.40; November: charges
    2.40, paid 1.20 + 0.80 = 2.00, due 0.40 (4000), closing 0.00 (it closed
    at -0.40 with nothing due); December earlier_unpaid 0.40."""
    store, ops = _pay_pre_b_pay(tmp_path)
    with clock_at(at(11, 22)):
        ops.refund("r", "acme", 698 * YUAN, "close", at_ms=at(11, 22))
    engine_rows(store, [cdr("o3", at(11, 23), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert _figures(ops, nov, dec) == (-4_000, 4_000, 0, 4_000, 0)


def test_a_rise_without_a_refund_is_paid_from_the_carry(tmp_path, rented_catalog, capsys):
    """No refund; November rerated with std at 0.24 (the 11-02 call 1.20 ->
    2.40). Hand: the 98.80 carried is all there (698.80 carried back), so it
    pays the rise: ledger 698.80 - 1.20 = 697.60; November due 0.00,
    closing 697.60 = December's (unchanged by fixf1; breaker7 F1c is this
    story after a refund)."""
    store, ops = _pay_pre_b_pay(tmp_path)
    _rerate(tmp_path, store, capsys, 2, "0.24")
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert _figures(ops, nov, dec) == (6_976_000, 0, 6_976_000, 0, 6_976_000)
