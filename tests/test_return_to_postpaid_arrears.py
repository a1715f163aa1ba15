"""pay-as-you-go -> prepaid -> pay-as-you-go with a top-up after the return:
the ledger ends above the statement by the prepaid arrears (breaker 12-02
money F2a; NOT FIXED, strict xfail: the figures the fix must give).

The prepaid calls spent the carried credit and more; the ledger's credit
stops at 0 and the statement bills the rest as arrears, due. Back on
pay-as-you-go the customer's top-up is a payment of the bill: the statement
applies it to the arrears first (oldest bill first), the ledger holds it
whole as credit. The ledger reads the arrears higher than the statement.

Catalog ``test_late_cdrs.RENTED``: ``pay`` 0.12/min, ``pre_b`` prepaid, fee
600.00, 0.10/min. Money in minor units, 1/10000 yuan.
"""
from __future__ import annotations

import pytest

from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at
from test_statement_after_change_to_prepaid import _payg_payment_then_prepaid


@pytest.mark.xfail(strict=True, reason="money F2a: the ledger holds a postpaid payment whole while the statement "
                                       "pays the prepaid arrears from it first; rule not decided (money1.md)")
def test_a_top_up_after_the_return_pays_the_arrears_in_both(tmp_path, rented_catalog, capsys):
    """B3's story (``_payg_payment_then_prepaid``: 100.00 paid, a 1.20 call,
    pre_b on 11-15 carrying 98.80: 698.80; 15 prepaid calls of 500 min,
    750.00: ledger 0, 51.20 of arrears due), then back to ``pay`` on 11-18
    00:00 (carries 0) and a 100.00 top-up on 11-20. Hand: the top-up pays
    the 51.20 first: November closes on 48.80, nothing due; the ledger
    should read 48.80 (it reads 100.00)."""
    store, ops = _payg_payment_then_prepaid(tmp_path, [500] * 15)
    ops.change_package("back", "acme", "pay", effective_ms=at(11, 18, 0), at_ms=at(11, 18, 0))
    with clock_at(at(11, 20)):
        ops.top_up("t", "acme", 100 * YUAN, at_ms=at(11, 20))
    nov, = acme_statements(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (0, 488 * 1000)
    assert ops.balance("acme")["credit_minor"] == 488 * 1000
