"""Rerating a month with a refund made under pay-as-you-go and a later change
to prepaid (fixrr; README "Rerating": the replay's credit per package period;
"Money rules": the money before a change pays the month's later charges only
as far as what the change carried of it is still there).

Story (``test_breaker7_money._pay_pre_b_pay``, catalog ``RENTED``): ``pay``,
100.00 paid 11-01, a 10-minute call 11-02 (``on``, 0.12/min: 1.20);
``pre_b`` 11-10 00:00 (the 100.00 pays the 1.20, 98.80 carried: 698.80);
back to ``pay`` 11-20 00:00 (698.80 carried back); 698.00 refunded 11-22
(0.80 left); ``pre_a`` 11-25 00:00 (fee 480.00, 0.80 carried: 480.80).
Before any rerating: ledger 480.80; November (billed as pay-as-you-go):
charges 1.20, paid, due 0.00, closing 480.80 = December's.

Was: rerating November raised ``InsufficientCredit`` (a debit of 698.00
exceeds 580.80): the replay started from the account's opening credit now
(``pre_a``'s 480.80, which already holds the month's top-up and refund
through the carries) and applied the 11-01 top-up (580.80) and the refund
again, refusing it as if it were a prepaid debit. Money in 1/10000 yuan.
"""
from __future__ import annotations

import pytest

from clock import clock_at
from test_breaker7_money import MONTHS, _credit, _pay_pre_b_pay, _rerate
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows


def _story(tmp_path):
    store, ops = _pay_pre_b_pay(tmp_path)
    with clock_at(at(11, 22)):
        ops.refund("rf", "acme", 698 * YUAN, "leaving", at_ms=at(11, 22))
    with clock_at(at(11, 26)):
        ops.change_package("c3", "acme", "pre_a", effective_ms=at(11, 25, 0), at_ms=at(11, 25, 0))
    assert _credit(ops) == 4_808_000
    return store, ops


def test_a_rise_of_a_first_span_call_after_a_refund_and_a_change_to_prepaid(tmp_path, rented_catalog, capsys):
    """std 0.12 -> 0.24: ``on`` 1.20 -> 2.40 (+1.20).

    Hand (README "Rerating", What moves the balance; the same rule as
    ``test_rerate_second_pay_span``'s ``on``, breaker7 F2): ``on`` is a
    pay-as-you-go call of a month billed as pay-as-you-go on an account
    prepaid now, paid at the first change by the 100.00 before it: it moved
    no credit, so its higher charge moves none either and the statement
    bills the 1.20 as due (no earlier rebate of it to take back). The run:
    one row, delta 1.20, ledger and credit part 0; the summary: charges
    +1.20, prepaid credit 0, billed +1.20. November: charges 2.40 (1.20 as
    committed + 1.20 rerated), paid 1.20, due 1.20 (12000), closing 480.80
    (4808000) = December's closing = the ledger; December earlier_unpaid
    1.20. (A late first-span call of this story would take the 0.80 left
    of the money before the change from the credit, README "Money rules",
    ``test_late_carried_money_left``; a rise of a call already billed and
    paid is billed, as in ``test_rerate_second_pay_span``.) Before the fix:
    ``InsufficientCredit``, nothing rerated."""
    from test_rerate_second_pay_span import _rerate as rerate_result

    store, ops = _story(tmp_path)
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"], dec["closing_credit_minor"]) == \
        (0, 4_808_000, 4_808_000)
    result = rerate_result(tmp_path, store, capsys, 2, "0.24")
    rows = {a.call_id: (a.delta_minor, a.ledger_delta_minor, a.credit_delta_minor) for a in result.adjustments}
    assert rows == {"on": (12_000, 0, 0)}
    change = result.by_account()["acme"]
    assert (change.charge_minor, change.credit_minor, change.billed_minor, change.balance_minor) == \
        (12_000, 0, 12_000, 0)
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["charges_minor"], nov["amount_due_minor"], nov["closing_credit_minor"]) == (24_000, 12_000, 4_808_000)
    assert dec["earlier_unpaid_minor"] == 12_000
    assert _credit(ops) == dec["closing_credit_minor"] == 4_808_000


def test_rerating_back_leaves_the_state_of_never_rerating(tmp_path, rented_catalog, capsys):
    """std 0.24 then 0.12 again: path independence (README "Rerating"). Hand:
    the 1.20 rise undone: ledger 480.80, November due 0.00, closing 480.80
    = December's."""
    store, ops = _story(tmp_path)
    _rerate(tmp_path, store, capsys, 2, "0.24")
    _rerate(tmp_path, store, capsys, 3, "0.12")
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (0, 4_808_000)
    assert _credit(ops) == dec["closing_credit_minor"] == 4_808_000


def test_a_prepaid_debit_the_dearer_sequence_cannot_cover_still_refuses(tmp_path, rented_catalog, capsys):
    """The story, then a 10-minute ``pre_a`` call 11-26 (0.12/min: 1.20,
    479.60 left) and 479.00 refunded 11-27 under ``pre_a`` (0.60 left).
    std 0.24: the replay of ``pre_a`` opens on its 480.80 (what its
    change recorded), the call takes 2.40: 478.40 is left on 11-27, less
    than the 479.00 refunded then: refused whole, like any prepaid debit
    (``InsufficientCredit``, available 478.40, debit 479.00), nothing
    written: the ledger stays at 0.60."""
    from rating_core.ledger import InsufficientCredit

    store, ops = _story(tmp_path)
    engine_rows(store, [cdr("p1", at(11, 26), 10)])
    assert _credit(ops) == 4_796_000
    with clock_at(at(11, 27)):
        ops.refund("rf2", "acme", 479 * YUAN, "leaving", at_ms=at(11, 27))
    assert _credit(ops) == 6_000
    with pytest.raises(InsufficientCredit) as e:
        _rerate(tmp_path, store, capsys, 2, "0.24")
    assert (e.value.available_minor, e.value.debit_minor) == (4_784_000, 479 * YUAN)
    assert _credit(ops) == 6_000


def test_a_dearer_prepaid_period_carries_less_into_the_next_one(tmp_path, rented_catalog, capsys):
    """``pay``, 100.00 paid 11-01, ``on`` 11-02 (1.20); ``pre_b`` 11-10
    (698.80); a 10-minute ``pre_b`` call 11-12 (``cheap`` 0.10/min: 1.00,
    697.80 left); ``pre_a`` 11-20 00:00 (carries 697.80: 1177.80); all
    1177.80 refunded 11-22 under ``pre_a`` (0.00). ``cheap`` 0.10 -> 0.20:
    the ``pre_b`` call 1.00 -> 2.00.

    Hand: the replay opens ``pre_a`` on the 1177.80 its change recorded
    less the 1.00 the dearer ``pre_b`` call consumed more (the change would
    have carried 696.80): 1176.80 on 11-22, less than the 1177.80 refunded
    under ``pre_a``: refused whole (``InsufficientCredit``, available
    1176.80, debit 1177.80), the ledger stays at 0.00. (Opened on the
    recorded 1177.80 alone the replay let the refund through.)"""
    from rating_core.ledger import InsufficientCredit
    from test_breaker7_money import _rerate_text
    from test_late_cdrs import setup_store

    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 11)):
        ops.top_up("p", "acme", 100 * YUAN, at_ms=at(11, 1))
        ops.change_package("c1", "acme", "pre_b", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    engine_rows(store, [cdr("pre", at(11, 12), 10)])
    with clock_at(at(11, 21)):
        ops.change_package("c2", "acme", "pre_a", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    assert _credit(ops) == 11_778_000
    with clock_at(at(11, 22)):
        ops.refund("rf", "acme", 11_778_000, "leaving", at_ms=at(11, 22))
    assert _credit(ops) == 0
    with pytest.raises(InsufficientCredit) as e:
        _rerate_text(tmp_path, store, capsys, 2, "pay", "cheap: {tiers: [{price: 0.10}]}",
                     "cheap: {tiers: [{price: 0.20}]}")
    assert (e.value.available_minor, e.value.debit_minor) == (11_768_000, 11_778_000)
    assert _credit(ops) == 0
