"""breaker7: the money rules around package changes within a month
(prepaid <-> pay-as-you-go <-> bundle), attacked (README "Money rules").

The invariant: where the ledger's credit (``ops.balance(acc)["credit_minor"]``)
and the statements (``bill --ledger``) agree by the README, they agree to the
1/10000 yuan; no money is counted twice or lost; a month's statement never
closes below zero with nothing due; rerating down, up and back leaves the
state of never rerating.

Findings are strict xfails ("breaker7 FN"), each docstring giving the story,
the hand-figured expected figures and what the code gives; the scenarios
that held are ordinary tests (regression tests).

Catalog ``test_late_cdrs.RENTED`` (fixture ``rented_catalog``): ``pay``
pay-as-you-go 0.12/min (credit limit 100000.00); ``pre_a`` prepaid fee
480.00, 0.12/min, minimum 40.00; ``pre_b`` prepaid fee 600.00, 0.10/min,
minimum 60.00; ``bun_a`` bundle 100 min, overage 0.20/min, rental 50.00
(once per bundle period). ``acme`` is imported from 2026-10-01; November is
the first month billed. Money in minor units, 1 yuan = ``YUAN`` = 10000.
"""
from __future__ import annotations

import re

import pytest

from clock import clock_at
from rating_core.accounts.operations import Refused
from rating_core.cli import main
from test_late_cdrs import RENTED, YUAN, acme_statements, at, cdr, engine_rows, setup_store

MONTHS = ("2026-11", "2026-12")


def _credit(ops) -> int:
    return ops.balance("acme")["credit_minor"]


def _carried(ops) -> list[int]:
    """``carried_minor`` of each of acme's package changes that started a period."""
    return [e["detail"]["carried_minor"] for e in ops.account_events("acme")
            if e["operation"] == "change_package" and "carried_minor" in e["detail"]]


def _rerate(tmp_path, store, capsys, version: int, std_price: str) -> None:
    """Compile ``RENTED`` with ``std`` at ``std_price`` yuan/min as catalog
    ``version`` and rerate November with it on 11-29."""
    from rating_core.rerate import rerate

    text = re.sub(r"std: {tiers: \[{price: [0-9.]+}\]}", f"std: {{tiers: [{{price: {std_price}}}]}}",
                  RENTED.replace("PACKAGE", "pay"))
    path = tmp_path / f"v{version}.yaml"
    path.write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(path), "--store", str(store)])
    assert e.value.code == 0, capsys.readouterr().err
    rerate(store, version, "2026-11-01", "2026-11-30", now_ms=at(11, 29))


def _rerate_text(tmp_path, store, capsys, version: int, package: str, old: str, new: str) -> None:
    """Compile ``RENTED`` (acme on ``package``) with ``old`` replaced by
    ``new`` as catalog ``version`` and rerate November with it on 11-29."""
    from rating_core.rerate import rerate

    text = RENTED.replace("PACKAGE", package)
    assert old in text
    path = tmp_path / f"v{version}.yaml"
    path.write_text(text.replace(old, new))
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(path), "--store", str(store)])
    assert e.value.code == 0, capsys.readouterr().err
    rerate(store, version, "2026-11-01", "2026-11-30", now_ms=at(11, 29))


# ---- stories ----------------------------------------------------------------------------------------
def _pay_pre_b_pay(tmp_path):
    """``pay``: 100.00 paid 11-01, a 10-minute call 11-02 (1.20); ``pre_b``
    from 11-10 00:00 (the 100.00 pays the 1.20, carries 98.80: 698.80);
    back to ``pay`` from 11-20 00:00 (carries 698.80)."""
    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 11)):
        ops.top_up("p", "acme", 100 * YUAN, at_ms=at(11, 1))
        ops.change_package("c1", "acme", "pre_b", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    with clock_at(at(11, 21)):
        ops.change_package("c2", "acme", "pay", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    assert _credit(ops) == 6988 * 1000
    return store, ops


def _pay_pre_pay_pre(tmp_path):
    """``pay``: 100.00 paid 11-01, 10-minute call 11-02 (1.20); ``pre_b``
    11-10 00:00 (698.80); a 10-minute prepaid call 11-12 (0.10/min: 1.00,
    697.80); ``pay`` 11-20 00:00 (carries 697.80); a 10-minute call 11-22
    (1.20, from the credit: 696.60); ``pre_a`` 11-25 00:00: 696.60 + 480.00
    = 1176.60. November (billed as pay-as-you-go): charges 2.40, paid, due
    0.00, closing 1176.60 = the ledger."""
    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 11)):
        ops.top_up("p", "acme", 100 * YUAN, at_ms=at(11, 1))
        ops.change_package("c1", "acme", "pre_b", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    engine_rows(store, [cdr("pre", at(11, 12), 10)])
    with clock_at(at(11, 21)):
        ops.change_package("c2", "acme", "pay", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    engine_rows(store, [cdr("o2", at(11, 22), 10)])
    with clock_at(at(11, 26)):
        ops.change_package("c3", "acme", "pre_a", effective_ms=at(11, 25, 0), at_ms=at(11, 25, 0))
    assert _credit(ops) == 11_766_000
    return store, ops


def _two_bundle_stretches(tmp_path, back_to_prepaid_on_20th: bool):
    """``pre_b`` from 10-01 (November billed as prepaid, minimum 60.00):
    ``bun_a`` 11-05 00:00 (600.00 carried); a 105-minute call 11-06 (5 min
    overage: 1.00, debited: 599.00); ``pre_a`` 11-10 00:00 (599.00 +
    480.00 = 1079.00); ``bun_a`` again 11-15 00:00 (a fresh 100 minutes,
    a second 50.00 rental); a 110-minute call 11-16 (10 min: 2.00 ->
    1077.00); then ``pre_b`` on 11-20 00:00 (+600.00: 1677.00) or, with
    ``back_to_prepaid_on_20th`` False, on 12-01 00:00 (November ends on the
    bundle)."""
    store, ops, _ = setup_store(tmp_path, "pre_b")
    ops.change_package("c1", "acme", "bun_a", effective_ms=at(11, 5, 0), at_ms=at(11, 5, 0))
    engine_rows(store, [cdr("o1", at(11, 6), 105)])
    ops.change_package("c2", "acme", "pre_a", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    ops.change_package("c3", "acme", "bun_a", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("o2", at(11, 16), 110)])
    assert _credit(ops) == 1077 * YUAN
    if back_to_prepaid_on_20th:
        ops.change_package("c4", "acme", "pre_b", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    else:
        with clock_at(at(12, 1, 1)):
            ops.change_package("c4", "acme", "pre_b", effective_ms=at(12, 1, 0), at_ms=at(12, 1, 0))
    return store, ops


# ---- findings (strict xfail) --------------------------------------------------------------------------
def test_f1_a_late_first_span_call_after_a_refund_in_the_second_span_is_due_on_november(
        tmp_path, rented_catalog, capsys):
    """HIGH. ``_pay_pre_b_pay`` (back on ``pay`` with 698.80), 698.00
    refunded on 11-22 (allowed: 0.80 left), then a late 100-minute call of
    11-05 (first pay span, 12.00).

    Hand (README: the money paid before the change pays the month's bill
    first; when the rest carried has left the account -- here refunded --
    the late call is due on its month's bill): the ledger takes 12.00 from
    the 0.80: -11.20 (pay-as-you-go may go below zero). November: charges
    1.20 + 12.00 = 13.20, paid 1.20 + 0.80 = 2.00, amount due 11.20
    (112000), closing credit 0.00; December opens with 11.20 unpaid.

    Was (fixed by fixf1, ``statements._Prepaid.carry_lost``): November
    amount due 0.00, paid_to_charges 13.20, closing credit -11.20 (-112000): a statement below zero with nothing due, and
    December's earlier_unpaid 11.20 that no November bill asked for (the
    statement pays the call from the credit carried back at 11-20, which the
    refund had taken). Compare the same refund made in the prepaid span
    (``test_a_refund_in_the_prepaid_span_then_a_late_call_is_due``): 11.20
    due, closing 0.00."""
    store, ops = _pay_pre_b_pay(tmp_path)
    with clock_at(at(11, 22)):
        ops.refund("r", "acme", 698 * YUAN, "close", at_ms=at(11, 22))
    engine_rows(store, [cdr("late1", at(11, 5), 100)])
    assert _credit(ops) == -112_000
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert nov["closing_credit_minor"] >= 0
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (112_000, 0)
    assert dec["earlier_unpaid_minor"] == nov["outstanding_minor"] == 112_000


def test_f1b_that_debt_at_a_change_to_prepaid_is_billed_not_lost(tmp_path, rented_catalog, capsys):
    """HIGH. ``_pay_pre_b_pay``, 690.00 refunded 11-22 (8.80 left), a late
    100-minute call of 11-05 (12.00): ledger 8.80 - 12.00 = -3.20; then
    ``pre_a`` from 11-25 00:00.

    Hand (postpaid debt at a change to prepaid stays on the bill, the
    prepaid credit is the new fee: ``carried_minor`` 0): ledger 480.00;
    November: charges 1.20 + 12.00 = 13.20, paid 1.20 from the 100.00 and
    8.80 from what the refund left of the money carried back, amount due
    3.20 (32000), closing credit 480.00 (4800000) = December's closing =
    the ledger.

    Was (fixed by fixf1): carried 0 and the ledger 480.00 (right), but November amount due
    0.00 and closing credit 476.80: the statement took the 3.20 out of the
    new prepaid credit, which the ledger never did. The 3.20 is billed on no
    statement (December's earlier_unpaid 0.00) and the finance team's two
    figures differ by 3.20 (the customer keeps 3.20 of calls)."""
    store, ops = _pay_pre_b_pay(tmp_path)
    with clock_at(at(11, 22)):
        ops.refund("r", "acme", 690 * YUAN, "close", at_ms=at(11, 22))
    engine_rows(store, [cdr("late1", at(11, 5), 100)])
    assert _credit(ops) == -32_000
    with clock_at(at(11, 26)):
        ops.change_package("c3", "acme", "pre_a", effective_ms=at(11, 25, 0), at_ms=at(11, 25, 0))
    assert _credit(ops) == 480 * YUAN
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert nov["amount_due_minor"] == 32_000
    assert nov["closing_credit_minor"] == dec["closing_credit_minor"] == 480 * YUAN == _credit(ops)


def test_f1c_a_first_span_call_rerated_up_after_a_refund_in_the_second_span_is_due(tmp_path, rented_catalog, capsys):
    """HIGH (F1's rerating face). ``_pay_pre_b_pay``, 698.00 refunded on
    11-22 (0.80 left, November closing 0.80), then November rerated with std
    at 0.24: the 11-02 call (paid by the 100.00 before the change) 1.20 ->
    2.40.

    Hand (fixf1, revised from breaker7's due 1.20 / closing 0.80): the rise
    is paid as F1's late call is, from the money before the change as far as
    what the change carried of it is still there (README "Money rules"):
    0.80 of the 98.80 carried is left after the refund. Without the refund
    the whole rise is paid so (697.60 both, nothing due:
    ``test_late_carried_money_left``), and the pay-as-you-go ledger holds
    the 0.80 as the account's money, so it pays the rise here too: November
    charges 2.40, paid 1.20 + 0.80 = 2.00, amount due 0.40 (4000), closing
    credit 0.00; the ledger 0.80 - 1.20 = -0.40 (closing credit less what
    is due, as F1's); December earlier_unpaid 0.40.

    Was: the ledger -0.40 (right), but November due 0.00, paid_to_charges
    2.40 and closing credit -0.40 (-4000), December earlier_unpaid 0.40
    that no November bill asked for (the statement paid the rise from the
    whole 98.80 carried, which the refund took)."""
    store, ops = _pay_pre_b_pay(tmp_path)
    with clock_at(at(11, 22)):
        ops.refund("r", "acme", 698 * YUAN, "close", at_ms=at(11, 22))
    _rerate(tmp_path, store, capsys, 2, "0.24")
    assert _credit(ops) == -4_000
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert nov["closing_credit_minor"] >= 0
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (4_000, 0)
    assert dec["earlier_unpaid_minor"] == nov["outstanding_minor"] == 4_000
    assert _credit(ops) == nov["closing_credit_minor"] - nov["outstanding_minor"]


def test_f2_a_second_span_call_rerated_up_moves_the_ledger_as_the_statement(tmp_path, rented_catalog, capsys):
    """HIGH. ``_pay_pre_pay_pre`` (1176.60 both), November rerated with std
    at 0.24 (each payg call 1.20 -> 2.40, +1.20 each).

    Hand: the 11-02 call was paid by the 100.00 before the first change: its
    +1.20 is billed as due (README: a higher charge of a paid call is due).
    The 11-22 call of the second pay span was paid from the credit carried
    back (as the statement pays it, and a late call there is taken from the
    credit, breaker6 F2): its +1.20 comes from that credit. November: due
    1.20 (12000), closing credit 1175.40 (11754000) = December's closing =
    the ledger.

    Was: November due 1.20, closing 1175.40 (the statement took it), but
    the rerating moved the ledger by 0 for both calls: ledger 1176.60. The
    1.20 is charged on the statement and never collected from the credit
    the customer can spend. Fixed by fixf23: the ledger moves by what the
    run moves the statement's closing credit (``rerate._follow_statement``)."""
    store, ops = _pay_pre_pay_pre(tmp_path)
    _rerate(tmp_path, store, capsys, 2, "0.24")
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (12_000, 11_754_000)
    assert _credit(ops) == dec["closing_credit_minor"] == 11_754_000


@pytest.mark.parametrize("prices", [("0.24", "0.12"), ("0.06", "0.24", "0.12")])
def test_f3_rerating_up_and_back_across_two_changes_leaves_the_state_of_never_rerating(
        tmp_path, rented_catalog, capsys, prices):
    """HIGH. ``_pay_pre_pay_pre`` (1176.60 both, November due 0.00), November
    rerated with std at each of ``prices`` in turn, ending at 0.12 again.

    Hand (README: rerating is path-independent, down, up and back leaves
    the state of never rerating): ledger 1176.60 (11766000), November due
    0.00, closing 1176.60 = December's closing.

    Was: the statement is back at 1176.60, due 0.00, but the ledger read
    1177.80: the way up moved it by 0 for the second-span call (F2) and the
    way back gave 1.20 to the credit -- money created. (0.06 then back to
    0.12 alone held: ``test_rerating_down_and_back_across_two_changes``.)
    Fixed by fixf23 with F2 (``rerate._follow_statement``)."""
    store, ops = _pay_pre_pay_pre(tmp_path)
    for version, price in enumerate(prices, 2):
        _rerate(tmp_path, store, capsys, version, price)
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (0, 11_766_000)
    assert _credit(ops) == dec["closing_credit_minor"] == 11_766_000


@pytest.mark.parametrize("late", [False, True])
def test_f4_the_first_bundle_stretchs_overage_is_not_charged_twice_when_the_month_ends_on_a_bundle(
        tmp_path, rented_catalog, capsys, late):
    """HIGH. ``_two_bundle_stretches`` ending on ``bun_a`` (``pre_b`` on
    12-01 00:00). The first stretch (11-05..11-10) is a postpaid interval
    inside a month billed as prepaid: README, its overage is paid from the
    carried credit (on time or late); only the month-ending stretch
    (11-15..) has its overage billed, which the 12-01 change gives back to
    the carry (breaker6 F3).

    Hand, on time: the first 1.00 from the credit (ledger 599.00 -> 1079.00
    at pre_a); November: shortfall 60.00 - 3.00 = 57.00, rentals 2 x 50.00,
    overage billed 2.00: due 159.00 (1590000), closing 1079.00; the 12-01
    change carries 1077.00 + 2.00 given back = 1079.00, + 600.00: ledger
    1679.00 = December's closing.
    With late calls committed after 12-01 (10 min of 11-07 in the first
    stretch: 2.00 from the credit; 20 min of 11-17 in the second: 4.00
    billed): shortfall 60.00 - 9.00 = 51.00, rentals 100.00, overage billed
    6.00: due 157.00 (1570000); ledger = November's = December's closing
    (less 600.00) = 1677.00 (16770000).

    Got: November bills all the overage as due and gives all of it back to
    the closing credit (due 160.00, closing 1080.00, December 1680.00),
    while the 12-01 carry gave back only the last stretch's: ledger 1679.00
    (the late first-stretch 2.00 is not taken either). The first stretch's
    1.00 is paid twice (from the credit and on the bill), ledger 1.00 below
    the statement."""
    store, ops = _two_bundle_stretches(tmp_path, back_to_prepaid_on_20th=False)
    if late:
        engine_rows(store, [cdr("l1", at(11, 7), 10), cdr("l2", at(11, 17), 20)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    due, credit = (157 * YUAN, 1677 * YUAN) if late else (159 * YUAN, 1679 * YUAN)
    assert nov["amount_due_minor"] == due
    assert _credit(ops) == dec["closing_credit_minor"] == credit
    assert nov["closing_credit_minor"] == credit - 600 * YUAN


# ---- scenarios that held (regression tests) -----------------------------------------------------------
def test_two_bundle_stretches_in_a_month_ending_prepaid(tmp_path, rented_catalog, capsys):
    """``_two_bundle_stretches`` back on ``pre_b`` on 11-20. Hand: ledger
    600.00 + 480.00 + 600.00 - 1.00 - 2.00 = 1677.00; November: credit
    consumed 3.00, shortfall 57.00, two rentals 100.00: due 157.00, closing
    1677.00. Late calls (10 min of 11-07: 2.00, 20 min of 11-17: 4.00, both
    beyond their stretch's allowance) are taken from the credit: 1671.00
    both, due 51.00 + 100.00 = 151.00."""
    store, ops = _two_bundle_stretches(tmp_path, back_to_prepaid_on_20th=True)
    assert _credit(ops) == 1677 * YUAN
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["credit_consumed_minor"], nov["rental_minor"], nov["amount_due_minor"]) == (
        3 * YUAN, 100 * YUAN, 157 * YUAN)
    assert nov["closing_credit_minor"] == dec["closing_credit_minor"] == 1677 * YUAN
    engine_rows(store, [cdr("l1", at(11, 7), 10), cdr("l2", at(11, 17), 20)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert nov["amount_due_minor"] == 151 * YUAN
    assert _credit(ops) == nov["closing_credit_minor"] == dec["closing_credit_minor"] == 1671 * YUAN


@pytest.mark.parametrize("back", ["11-20", "12-01"])
def test_a_bundle_in_a_later_span_prepaid_pay_prepaid_bundle(tmp_path, rented_catalog, capsys, back):
    """``pre_b`` (600.00) -> ``pay`` 11-05 (600.00 carried); 10-min call
    11-06 (1.20: 598.80); ``pre_a`` 11-10 (1078.80); ``bun_a`` 11-15
    (carried); 105-min call 11-16 (1.00 overage: 1077.80); ``pre_b`` again
    on ``back``; then late calls: 100 min of 11-07 (pay: 12.00, from the
    credit) and 10 min of 11-17 (2.00 overage).

    Hand, back 11-20 (the bundle is an interval inside the month): ledger
    1077.80 + 600.00 = 1677.80; November: credit consumed 2.20, shortfall
    57.80, rental 50.00: due 107.80, closing 1677.80. Late: 1663.80 both,
    due 43.80 + 50.00 = 93.80.
    Back 12-01 (November ends on the bundle, its overage billed and given
    back at the change): carried 1078.80 + 600.00 = 1678.80; November:
    shortfall 57.80, rental 50.00, overage 1.00: due 108.80, closing
    1078.80. Late: the 12.00 from the credit, the 2.00 billed: 1666.80 =
    December's closing, November due 43.80 + 50.00 + 3.00 = 96.80."""
    store, ops, _ = setup_store(tmp_path, "pre_b")
    ops.change_package("c1", "acme", "pay", effective_ms=at(11, 5, 0), at_ms=at(11, 5, 0))
    engine_rows(store, [cdr("p1", at(11, 6), 10)])
    ops.change_package("c2", "acme", "pre_a", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    ops.change_package("c3", "acme", "bun_a", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("o1", at(11, 16), 105)])
    assert _credit(ops) == 10_778_000
    if back == "11-20":
        ops.change_package("c4", "acme", "pre_b", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
        figures, late = (16_778_000, 1_078_000, 16_778_000), (16_638_000, 938_000)
    else:
        with clock_at(at(12, 1, 1)):
            ops.change_package("c4", "acme", "pre_b", effective_ms=at(12, 1, 0), at_ms=at(12, 1, 0))
        figures, late = (16_788_000, 1_088_000, 10_788_000), (16_668_000, 968_000)
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (_credit(ops), nov["amount_due_minor"], nov["closing_credit_minor"]) == figures
    assert dec["closing_credit_minor"] == _credit(ops)
    engine_rows(store, [cdr("l1", at(11, 7), 100), cdr("l2", at(11, 17), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (_credit(ops), nov["amount_due_minor"]) == late
    assert dec["closing_credit_minor"] == _credit(ops)


def test_a_refund_in_the_prepaid_span_then_a_late_call_is_due(tmp_path, rented_catalog, capsys):
    """``pay``: 100.00 paid, 1.20 call, ``pre_b`` 11-10 (698.80); 698.00
    refunded 11-12 (0.80 left); a late 100-minute call of 11-05 (12.00).
    Hand: the ledger takes the 0.80 (never below zero on prepaid): 0.00;
    November: charges 13.20, paid 2.00, due 11.20, closing 0.00."""
    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 11)):
        ops.top_up("p", "acme", 100 * YUAN, at_ms=at(11, 1))
        ops.change_package("c1", "acme", "pre_b", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    with clock_at(at(11, 12)):
        ops.refund("r", "acme", 698 * YUAN, "close", at_ms=at(11, 12))
    engine_rows(store, [cdr("late1", at(11, 5), 100)])
    assert _credit(ops) == 0
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (112_000, 0)
    assert dec["earlier_unpaid_minor"] == 112_000 and dec["closing_credit_minor"] == 0


def test_rerating_down_and_back_across_two_changes(tmp_path, rented_catalog, capsys):
    """``_pay_pre_pay_pre``, std at 0.06 (each payg call 0.60: both paid,
    0.60 each back to the credit: 1177.80 both), then 0.12 again (taken
    back): 1176.60 both, due 0.00 -- the state of never rerating."""
    store, ops = _pay_pre_pay_pre(tmp_path)
    _rerate(tmp_path, store, capsys, 2, "0.06")
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert _credit(ops) == dec["closing_credit_minor"] == 11_778_000
    _rerate(tmp_path, store, capsys, 3, "0.12")
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (0, 11_766_000)
    assert _credit(ops) == dec["closing_credit_minor"] == 11_766_000


def test_a_bill_payment_before_a_change_to_postpaid_then_a_top_up(tmp_path, rented_catalog, capsys):
    """``pre_b`` (600.00): a 10-minute call 11-02 (1.00: 599.00); ``accounts
    pay`` 50.00 on 11-05 (a bill payment: ledger unchanged); ``pay`` from
    11-10 00:00 (carried 599.00); a 20.00 top-up (payment) on 11-12: ledger
    619.00. Hand: November (prepaid) bills the shortfall 59.00, which the
    70.00 of payments pay: due 0.00, closing 599.00, 11.00 of payments
    carried to later bills; the customer's net money 600.00 + 70.00 -
    60.00 = 610.00 = 599.00 of credit + 11.00 of payments. The refund is
    bounded by the statements' 599.00 (619.00 and 610.00 refused), leaving
    11.00 of payments carried out."""
    store, ops, _ = setup_store(tmp_path, "pre_b")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 5)):
        ops.pay("pay50", "acme", 50 * YUAN, at_ms=at(11, 5))
    ops.change_package("c1", "acme", "pay", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    assert _carried(ops)[-1] == 599 * YUAN
    with clock_at(at(11, 12)):
        ops.top_up("t20", "acme", 20 * YUAN, at_ms=at(11, 12))
    assert _credit(ops) == 619 * YUAN
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["minimum_topup_minor"], nov["paid_to_charges_minor"], nov["amount_due_minor"]) == (
        59 * YUAN, 59 * YUAN, 0)
    assert nov["closing_credit_minor"] == dec["closing_credit_minor"] == 599 * YUAN
    with clock_at(at(12, 2)):
        for too_much in (619, 610):
            with pytest.raises(Refused, match="insufficient_credit"):
                ops.refund(f"r{too_much}", "acme", too_much * YUAN, "close")
        ops.refund("r599", "acme", 599 * YUAN, "close")
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert dec["closing_credit_minor"] == 0


def test_money_and_calls_at_the_changes_instants(tmp_path, rented_catalog, capsys):
    """``pre_b`` (600.00): a 10-minute call 11-02 (1.00); ``pay`` from 11-10
    00:00 (599.00 carried); a 20.00 top-up dated 11-10 00:00 and a 10-minute
    call starting 11-10 00:00 (pay, 1.20): ledger 617.80. November (prepaid)
    : usage 2.20 from the credit, shortfall 57.80, the top-up pays 20.00:
    due 37.80, closing 597.80. ``pre_a`` from 11-20 00:00 (the top-up's
    20.00 applied to the bill: carried 597.80, + 480.00) and a 10-minute
    call starting 11-20 00:00 (pre_a 0.12: 1.20): 1076.60 both, November
    shortfall 60.00 - 3.40 = 56.60, due 36.60."""
    store, ops, _ = setup_store(tmp_path, "pre_b")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    ops.change_package("c1", "acme", "pay", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    with clock_at(at(11, 10, 0)):
        ops.top_up("t", "acme", 20 * YUAN, at_ms=at(11, 10, 0))
    engine_rows(store, [cdr("x", at(11, 10, 0), 10)])
    assert _credit(ops) == 6_178_000
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (378_000, 5_978_000)
    with clock_at(at(11, 20, 0)):
        ops.change_package("c2", "acme", "pre_a", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    engine_rows(store, [cdr("y", at(11, 20, 0), 10)])
    assert _carried(ops)[-1] == 5_978_000
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (366_000, 10_766_000)
    assert _credit(ops) == dec["closing_credit_minor"] == 10_766_000


def test_rerating_overage_across_two_bundle_stretches_of_a_month_ending_prepaid(tmp_path, rented_catalog, capsys):
    """``_two_bundle_stretches`` back on ``pre_b`` on 11-20 (1677.00 both,
    due 157.00; overage 5 + 10 minutes), the overage price rerated 0.40,
    0.10, then 0.20 again. Hand: the overage is paid from the credit, so
    each rerating moves the ledger and the closing credit alike and leaves
    the bill: 15 min x 0.40 = 6.00 (1674.00), x 0.10 = 1.50 (1678.50), x
    0.20 = 3.00 (1677.00, the state of never rerating); due 157.00 all
    along."""
    store, ops = _two_bundle_stretches(tmp_path, back_to_prepaid_on_20th=True)
    for version, price, credit in ((2, "0.40", 16_740_000), (3, "0.10", 16_785_000), (4, "0.20", 16_770_000)):
        _rerate_text(tmp_path, store, capsys, version, "pre_b", "overage_price: 0.20, rental: 50",
                     f"overage_price: {price}, rental: 50")
        nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
        assert nov["amount_due_minor"] == 157 * YUAN
        assert _credit(ops) == nov["closing_credit_minor"] == dec["closing_credit_minor"] == credit


def test_a_sweep_applying_a_change_to_prepaid_late_then_a_late_call(tmp_path, rented_catalog, capsys):
    """``pay``: 100.00 paid 11-01, a 10-minute call 11-02 (1.20); ``pre_b``
    scheduled on 11-03 for 11-10 00:00; a 10-minute call at 11-10 05:00
    (rated ``pay``, 1.20: the change is not applied yet) and a 30.00 top-up
    at 06:00; the sweep applies the change at 08:00. Hand: the 100.00 pays
    2.40 and carries 97.60, the 30.00 (dated after the change's instant) is
    the prepaid package's whole: 127.60 carried, + 600.00 = 727.60 both.
    A late 100-minute call of 11-05 (12.00) is taken from the 97.60 rest:
    715.60 both, November due 0.00."""
    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 3)):
        ops.top_up("p", "acme", 100 * YUAN, at_ms=at(11, 1))
        ops.change_package("c1", "acme", "pre_b", effective_ms=at(11, 10, 0), at_ms=at(11, 3))
    engine_rows(store, [cdr("pp", at(11, 10, 5), 10)])
    with clock_at(at(11, 10, 6)):
        ops.top_up("p2", "acme", 30 * YUAN, at_ms=at(11, 10, 6))
    with clock_at(at(11, 10, 8)):
        ops.sweep(at_ms=at(11, 10, 8))
    assert (ops.balance("acme")["package"], _carried(ops)) == ("pre_b", [1_276_000])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert _credit(ops) == nov["closing_credit_minor"] == dec["closing_credit_minor"] == 7_276_000
    engine_rows(store, [cdr("late", at(11, 5), 100)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert nov["amount_due_minor"] == 0
    assert _credit(ops) == nov["closing_credit_minor"] == dec["closing_credit_minor"] == 7_156_000
