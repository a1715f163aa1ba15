"""A refund is netted against the unpaid bills of ended months whatever the
account's kind now (newcomer 2026-12-02 #1, HIGH).

``acme`` on ``pre_a`` (prepaid, 480.00 credit, 0.12/min, monthly minimum
40.00) from 2026-10-01 makes a 10-minute call on 10-10 and one on 11-10 (1.20
each from the credit: 477.60 left): October is its first month (no minimum),
November owes the 38.80 shortfall to its minimum and nobody paid it. A
prepaid refund is netted against it (at most 477.60 - 38.80 = 438.80). After a change to ``bun_b`` (a bundle: postpaid) in
December, the refund was bounded by the postpaid rule alone (the least
credit the statements carry: 480.00, since December, billed as prepaid,
applies the credit to no bill) and the whole 477.60 was paid out with
November's 38.80 still owed. 1 yuan = 10000 minor units.
"""
from __future__ import annotations

import pytest

from clock import clock_at
from rating_core.errors import Refused
from test_late_cdrs import at, cdr, engine_rows, setup_store


@pytest.mark.parametrize("to", ["pre_a", "bun_b", "pay"])
def test_a_refund_leaves_what_the_ended_months_bills_owe(tmp_path, rented_catalog, to):
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    engine_rows(store, [cdr("oct", at(10, 10), 10), cdr("nov", at(11, 10), 10)])
    with clock_at(at(12, 2, 12)):
        if to != "pre_a":
            ops.change_package("to", "acme", to, effective_ms=at(12, 2, 11), at_ms=at(12, 2, 11))
        with pytest.raises(Refused) as e:
            ops.refund("all", "acme", 4776 * 1000, "customer leaves", at_ms=at(12, 2, 12))
        assert e.value.reason == "insufficient_credit"
        assert "38.80" in e.value.message and "438.80" in e.value.message, e.value.message
        ops.refund("most", "acme", 4388 * 1000, "customer leaves", at_ms=at(12, 2, 12))
    assert ops.balance("acme")["credit_minor"] == 388 * 1000


@pytest.mark.parametrize("to", ["pre_a", "bun_b", "pay"])
def test_a_refund_above_the_ledger_credit_quotes_what_could_be_refunded(tmp_path, rented_catalog, to):
    """Faces 12-02 (LOW): 500.00 asked of the 477.60 ledger credit was
    refused "refundable credit is 477.60; cannot refund 500.00", the figure
    before netting: 477.60 asked next was refused again, since November's
    38.80 is unpaid. The refusal quotes what could be refunded, 477.60 -
    38.80 = 438.80, and why (the ended months' bills, netted), once."""
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    engine_rows(store, [cdr("oct", at(10, 10), 10), cdr("nov", at(11, 10), 10)])
    with clock_at(at(12, 2, 12)):
        if to != "pre_a":
            ops.change_package("to", "acme", to, effective_ms=at(12, 2, 11), at_ms=at(12, 2, 11))
        with pytest.raises(Refused) as e:
            ops.refund("too_much", "acme", 500 * 10000, "customer leaves", at_ms=at(12, 2, 12))
    assert e.value.reason == "insufficient_credit"
    ended = "the bills up to 2026-11" if to == "pre_a" else "the bills of ended months"
    assert e.value.message.startswith(f"refundable credit is 438.80 yuan: {ended} leave 38.80 yuan unpaid"), e.value.message
    assert "netted against the credit of 477.60 yuan" in e.value.message
    assert e.value.message.endswith("cannot refund 500.00 yuan"), e.value.message
