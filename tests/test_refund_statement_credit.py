"""A prepaid refund never pays out more than the statements' credit
(breaker 2026-12-02 F1, HIGH, its refund).

``acme`` on ``pay`` (pay-as-you-go, 0.12/min, test_late_cdrs.CATALOG with
the pay-as-you-go packages) pays 100.00 on 11-01, makes a 10-minute call on
11-10 (1.20), changes to ``pre_b`` (prepaid, fee 600) on 11-15; then its
11-12 call (1.20) arrives late. November is billed as pay-as-you-go: the
statement pays the late call from the payment, so 100.00 - 2.40 = 97.60
is carried into the prepaid credit, 697.60 in all. The ledger took no late
postpaid charge from an account prepaid now, so it held 698.80, and a refund
of it was accepted, leaving the statement at -1.20 with nothing due; it was
then refused beyond 697.60 by the statements' bound. Since money2 finding 1
the ledger takes the late call from the carried payment as the statement
does (``test_late_payg_in_postpaid_month``): it holds 697.60 too, and the
refund stops there either way.
"""
from __future__ import annotations

import pytest

from clock import clock_at
from rating_core.errors import Refused
from test_late_cdrs import YUAN, at, cdr, engine_rows, setup_store


def test_a_refund_stops_at_the_statements_credit(tmp_path, rented_catalog):
    store, ops, ledger = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(at(11, 20)):
        ops.top_up("pay-100", "acme", 100 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("late", at(11, 12), 10)])
    assert ops.balance("acme")["credit_minor"] == 6976 * 1000  # the ledger: 697.60 (before money2: 698.80)
    with clock_at(at(11, 25)):
        with pytest.raises(Refused) as e:
            ops.refund("all", "acme", 6988 * 1000, "customer leaves", at_ms=at(11, 25))
        assert e.value.reason == "insufficient_credit"
        assert "697.60" in e.value.message, e.value.message
        ops.refund("all-of-it", "acme", 6976 * 1000, "customer leaves", at_ms=at(11, 25))
    assert ops.balance("acme")["credit_minor"] == 0
