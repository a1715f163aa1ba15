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


@pytest.fixture
def fen_fraction_catalog(monkeypatch):
    """``rented_catalog`` with ``std`` at 0.1235 yuan a minute: a call's
    charge, and so the credit, finer than a fen."""
    import test_late_cdrs

    monkeypatch.setattr(test_late_cdrs, "CATALOG", test_late_cdrs.RENTED.replace(
        "std: {tiers: [{price: 0.12}]}", "std: {tiers: [{price: 0.1235}]}"))


def test_a_refusal_quotes_the_refundable_credit_in_whole_fen(tmp_path, fen_fraction_catalog):
    """Breaker 12-02 F6 (LOW): a refusal quoted "refundable credit is
    475.3550 yuan", which no refund can be (a refund is whole fen). Now the
    whole fen, rounded down, and the exact figure beside it.

    ``pay`` (payg), 100.00 paid 12-01, a 1-minute call at 0.1235: credit
    1,000,000 - 1,235 = 998,765 minor (99.8765 yuan). Refunding 100.00 is
    refused "refundable credit is 99.87 yuan (of 99.8765 yuan: a refund is
    whole fen)"; 99.88 is refused too, 99.87 is paid out (0.0065 left)."""
    store, ops, ledger = setup_store(tmp_path, "pay")
    with clock_at(at(12, 2, 12)):
        ops.top_up("paid", "acme", 100 * 10000, at_ms=at(12, 1, 0))
        engine_rows(store, [cdr("odd", at(12, 1, 1), 1)])
        assert ops.balance("acme")["credit_minor"] == 998_765
        for asked in (100 * 10000, 998_800):
            with pytest.raises(Refused) as e:
                ops.refund(f"r{asked}", "acme", asked, "customer leaves", at_ms=at(12, 2, 12))
            assert e.value.reason == "insufficient_credit"
            assert e.value.message.startswith(
                "refundable credit is 99.87 yuan (of 99.8765 yuan: a refund is whole fen); cannot refund "), \
                e.value.message
        ops.refund("fen", "acme", 998_700, "customer leaves", at_ms=at(12, 2, 12))
    assert ops.balance("acme")["credit_minor"] == 65


def test_a_netted_refusal_quotes_the_refundable_credit_in_whole_fen(tmp_path, fen_fraction_catalog):
    """The netted refusal (the ended months' bills) likewise. ``pre_a``
    (480.00, minimum 40.00) with a 10-minute call at 0.1235 on 10-10 and on
    11-10 (12,350 minor each): credit 4,800,000 - 24,700 = 4,775,300
    (477.53); November's shortfall 400,000 - 12,350 = 387,650 (38.7650)
    unpaid; refundable 4,775,300 - 387,650 = 4,387,650 (438.7650): quoted
    "438.76 yuan (of 438.7650 yuan: ...)", the unpaid 38.7650 kept exact;
    438.76 is refunded, 38.77 left."""
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    engine_rows(store, [cdr("oct", at(10, 10), 10), cdr("nov", at(11, 10), 10)])
    with clock_at(at(12, 2, 12)):
        assert ops.balance("acme")["credit_minor"] == 4_775_300
        with pytest.raises(Refused) as e:
            ops.refund("too_much", "acme", 500 * 10000, "customer leaves", at_ms=at(12, 2, 12))
        assert e.value.message.startswith(
            "refundable credit is 438.76 yuan (of 438.7650 yuan: a refund is whole fen): the bills up to 2026-11 "
            "leave 38.7650 yuan unpaid"), e.value.message
        assert "netted against the credit of 477.53 yuan" in e.value.message
        ops.refund("fen", "acme", 4_387_600, "customer leaves", at_ms=at(12, 2, 12))
    assert ops.balance("acme")["credit_minor"] == 387_700
