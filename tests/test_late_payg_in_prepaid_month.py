"""A pay-as-you-go interval inside a month billed as prepaid, its calls
committed after the account went back to prepaid (breaker 2026-12-02 F1).

``acme`` is imported on ``pre_a`` (prepaid, 480 yuan of credit, 0.12
yuan/min) from 2026-10-01, so November is billed as prepaid. On 11-15 it
changes to ``pay`` (pay-as-you-go, 0.12/min) and on 11-20 to ``pre_b``
(prepaid, fee 600, 0.10/min). Three 10-minute calls made under ``pay``
(1.20 each) arrive after 11-20.

The month's statement pays a pay-as-you-go call of a prepaid month from the
carried credit, as far as it goes (``statements``: "A change to
pay-as-you-go in a month billed as prepaid"), and the ledger debited such a
call so when it came on time. Late, the ledger debited nothing (the rule for
an account prepaid now), so the live credit stood 3.60 above the
statement's closing credit, and ``accounts refund`` could pay the 3.60 out.
Now a late call is treated as it would have been on time: taken from the
prepaid credit as far as it goes (never below zero), the rest due on the
statement; a late pay-as-you-go call of a month billed as pay-as-you-go is
still billed as due and takes none of the credit
(``test_late_cdrs.test_late_postpaid_calls_of_a_now_prepaid_account_...``).
"""
from __future__ import annotations


import pytest

from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, rerate_november, setup_store


@pytest.fixture
def back_to_prepaid(tmp_path, rented_catalog):
    """acme: pre_a from 10-01, pay from 11-15, pre_b from 11-20."""
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    with clock_at(at(11, 20, 1)):
        ops.change_package("to-pay", "acme", "pay", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    return store, ops, ledger


def _november(tmp_path, store, capsys):
    return acme_statements(tmp_path, store, capsys)[0]


def test_late_payg_calls_of_a_prepaid_month_are_paid_from_the_carried_credit(tmp_path, back_to_prepaid, capsys):
    """480 + 600 = 1080.00 of credit after 11-20; the three late 1.20 calls
    take 3.60 of it (1076.40), and a 10-minute pre_b call on 11-21 1.00
    (1075.40). November's statement closes on the same credit and bills
    none of the 3.60 as due: the ledger and the statement agree."""
    store, ops, ledger = back_to_prepaid
    assert ops.balance("acme")["credit_minor"] == 1080 * YUAN
    calls = [cdr(f"p{h}", at(11, 16, h), 10) for h in (13, 14, 15)] + [cdr("now", at(11, 21), 10)]
    rated, rejects = engine_rows(store, calls)
    assert rejects == [] and [(r["package"], r["charge_minor"]) for r in rated] == \
        [("pay", 12_000)] * 3 + [("pre_b", 10_000)]
    assert ledger.stored("acme").credit_minor == 1075 * YUAN + 4_000
    engine_rows(store, calls[:1])  # a retransmission moves nothing
    assert ledger.stored("acme").credit_minor == 1075 * YUAN + 4_000
    nov = _november(tmp_path, store, capsys)
    assert nov["closing_credit_minor"] == ledger.stored("acme").credit_minor
    assert ops.balance("acme")["credit_minor"] == nov["closing_credit_minor"]


def test_late_payg_calls_beyond_the_credit_take_it_to_zero_and_the_rest_is_due(tmp_path, back_to_prepaid, capsys):
    """The credit first spent down to 1.00 by pre_b calls (eight of 1348
    minutes and one of 6 at 0.10/min: 1079.00 of 1080.00); then two late 1.20 pay calls:
    the first takes the 1.00 left, the second nothing (a prepaid account is
    never taken below zero). The statement closes at 0 too and bills the 1.40
    the credit could not pay as due."""
    store, ops, ledger = back_to_prepaid
    spend = [cdr(f"s{d}", at(11, d), 1348) for d in range(21, 29)] + [cdr("s29", at(11, 29), 6)]
    rated, rejects = engine_rows(store, spend)
    assert rejects == [] and sum(r["credit_consumed_minor"] for r in rated) == 1079 * YUAN
    assert ledger.stored("acme").credit_minor == 1 * YUAN
    rated, rejects = engine_rows(store, [cdr("p1", at(11, 16, 13), 10), cdr("p2", at(11, 16, 14), 10)])
    assert rejects == [] and [r["charge_minor"] for r in rated] == [12_000, 12_000]
    assert ledger.stored("acme").credit_minor == 0
    nov = _november(tmp_path, store, capsys)
    assert nov["closing_credit_minor"] == 0
    assert nov["amount_due_minor"] >= 14_000


def test_rerating_a_late_payg_call_of_a_prepaid_month_moves_the_credit_it_paid(tmp_path, back_to_prepaid, capsys):
    """The three late pay calls (1.20 each, paid from the credit: 1076.40),
    then version 2 raises std to 0.15/min and November is rerated: each call
    1.20 -> 1.50, and the credit pays the 0.90 more (1075.50), as the commit
    took the calls from it. The statement closes on the ledger's credit."""
    store, ops, ledger = back_to_prepaid
    engine_rows(store, [cdr(f"p{h}", at(11, 16, h), 10) for h in (13, 14, 15)])
    assert ledger.stored("acme").credit_minor == 1076 * YUAN + 4_000
    ledger.close()
    r, credit = rerate_november(tmp_path, store, capsys, "pre_a", {"std": "0.15"})
    assert [a.ledger_delta_minor for a in r.adjustments] == [3_000] * 3
    assert credit == 1075 * YUAN + 5_000
    nov = _november(tmp_path, store, capsys)
    assert nov["closing_credit_minor"] == 1075 * YUAN + 5_000
