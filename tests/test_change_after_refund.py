"""A change to prepaid dated before money taken out (a refund, a debit)
that was recorded before the change (breaker8 F1, HIGH).

Money dated at or after a change's instant belongs to the package that
starts then (``statements.under_package_from``); a refund or debit is such
money too, signed. ``Accounts._unapplied_at_change`` subtracted only money
coming in, so money going out inflated what the bills had applied: the
change booked it as ``applied_to_bills`` with nothing unpaid and carried 0.

Catalog ``test_late_cdrs.RENTED``: ``pay`` pay-as-you-go, ``pre_a`` prepaid,
fee 480.00. Money in minor units, 1/10000 yuan.
"""
from __future__ import annotations

import pytest

from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, setup_store


@pytest.mark.parametrize("take_out", ["refund", "adjust"])
def test_money_taken_out_after_a_back_dated_change_stays_taken_once(tmp_path, rented_catalog, capsys, take_out):
    """``pay``: a 10-minute call on 11-02 (1.20), 100.00 paid 11-03; 50.00
    taken out (a refund, or a debit adjustment) on 11-12; then, recorded
    after it, a change to ``pre_a`` dated 11-10 00:00. Hand: the 100.00
    before the change pays the 1.20 call and carries 98.80; the 50.00 taken
    out after the change comes off the prepaid credit: 98.80 - 50.00 +
    480.00 = 528.80 in the ledger and on November's statement, nothing due;
    nothing of the ledger's credit applied to bills (the ledger had debited
    the call itself). It was: ledger 480.00 (applied_to_bills 50.00, carried
    0)."""
    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 3)):
        ops.top_up("p", "acme", 100 * YUAN, at_ms=at(11, 3))
    with clock_at(at(11, 12)):
        if take_out == "refund":
            ops.refund("rf", "acme", 50 * YUAN, "leaving", at_ms=at(11, 12))
        else:
            ops.adjust("dr", "acme", -50 * YUAN, "correction", at_ms=at(11, 12))
        ops.change_package("c", "acme", "pre_a", effective_ms=at(11, 10, 0), at_ms=at(11, 12, 11))
    event = next(e for e in ops.events("acme") if e["request_id"] == "c")
    assert (event["detail"]["carried_minor"], event["detail"]["applied_to_bills_minor"]) == (
        488 * 1000, 0)
    assert ops.balance("acme")["credit_minor"] == 5288 * 1000
    nov, = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (5288 * 1000, 0)
