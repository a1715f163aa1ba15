"""A postpaid call of a LATER pay-as-you-go span of a month billed as
postpaid, the span ending at a change to prepaid in the month: the
statement pays it from the money that change carried, as the ledger does
(breaker6 F2, HIGH).

test_late_cdrs.RENTED catalog: ``pay`` 0.12/min; ``pre_b`` prepaid fee
600.00; ``pre_a`` prepaid fee 480.00. ``acme`` on ``pay``: 2.00 paid 11-01,
a 10-minute call 11-02 (1.20). ``pre_b`` from 11-10 00:00: the 2.00 pays the
1.20 and carries 0.80 (credit 600.80); ``pay`` from 11-20 00:00 carries the
600.80 back; ``pre_a`` from 11-25 00:00 carries what the pay span left, plus
480.00: 1080.80 with no call in the span. 1 yuan = 10000 minor units.

The ledger debits a call of the 11-20..11-25 span from that credit, on time
or late (a late one from the money the pay -> pre_a change carried,
``engine._take_from_carried_money``). Before, November's statement paid
such a call only from the 2.00 dated before the first change (0.80 left)
and billed the rest, though the ledger had taken it: charged twice.
"""
from __future__ import annotations

from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, setup_store

MONTHS = ("2026-11", "2026-12")


def _pay_pre_b_pay_pre_a(tmp_path, on_time=()):
    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 11)):
        ops.top_up("p", "acme", 2 * YUAN, at_ms=at(11, 1))
        ops.change_package("c1", "acme", "pre_b", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    with clock_at(at(11, 21)):
        ops.change_package("c2", "acme", "pay", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    if on_time:
        engine_rows(store, list(on_time))
    with clock_at(at(11, 26)):
        ops.change_package("c3", "acme", "pre_a", effective_ms=at(11, 25, 0), at_ms=at(11, 25, 0))
    return store, ops


def test_a_late_call_of_the_second_pay_span_is_paid_from_what_the_change_carried(tmp_path, rented_catalog, capsys):
    """A late 100-minute call of 11-22 (12.00). Hand: the pay -> pre_a change
    carried 600.80 + 480.00 = 1080.80; the call is taken from it: ledger
    1068.80. November: charges 1.20 + 12.00 = 13.20, paid 1.20 from the
    2.00 and 12.00 from the 600.80 carried back: due 0.00, closing 1068.80
    (December's opening and, with no December call, its closing). Before:
    due 11.20, closing 1080.00 (11.20 charged twice)."""
    store, ops = _pay_pre_b_pay_pre_a(tmp_path)
    assert ops.balance("acme")["credit_minor"] == 10_808_000
    engine_rows(store, [cdr("late2", at(11, 22), 100)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert ops.balance("acme")["credit_minor"] == 10_688_000
    assert nov["amount_due_minor"] == 0
    assert nov["closing_credit_minor"] == 10_688_000
    assert dec["closing_credit_minor"] == 10_688_000


def test_late_calls_in_both_pay_spans(tmp_path, rented_catalog, capsys):
    """Late 12.00 calls of 11-05 (first span) and 11-22 (second span). Hand:
    the 11-05 call is paid from the 0.80 the first change carried (the
    ledger cannot take more: 0.80 of it, the pre_b credit is the new fee),
    so 11.20 stays due; the 11-22 call from the 600.80 carried back. Ledger
    1080.80 - 0.80 - 12.00 = 1068.00. November: charges 25.20, paid 2.00 +
    12.00 = 14.00, due 11.20, closing 1068.00. Before: due 23.20, closing
    1080.00."""
    store, ops = _pay_pre_b_pay_pre_a(tmp_path)
    engine_rows(store, [cdr("late1", at(11, 5), 100), cdr("late2", at(11, 22), 100)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert ops.balance("acme")["credit_minor"] == 10_680_000
    assert nov["amount_due_minor"] == 112_000
    assert nov["closing_credit_minor"] == 10_680_000
    assert dec["closing_credit_minor"] == 10_680_000


def test_an_on_time_call_of_the_second_pay_span(tmp_path, rented_catalog, capsys):
    """An on-time 10-minute call of 11-22 (1.20), debited then from the
    600.80: the change carries 599.60 + 480.00 = 1079.60. November: charges
    2.40, paid 1.20 from the 2.00 and 1.20 from the credit carried back:
    due 0.00, closing 1079.60. Before: 0.80 of the 2.00 paid it, 0.40 due,
    closing 1080.00."""
    store, ops = _pay_pre_b_pay_pre_a(tmp_path, [cdr("o2", at(11, 22, 5), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert ops.balance("acme")["credit_minor"] == 10_796_000
    assert nov["amount_due_minor"] == 0
    assert nov["closing_credit_minor"] == 10_796_000
    assert dec["closing_credit_minor"] == 10_796_000
