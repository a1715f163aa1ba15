"""Money dated at a change's effective instant, or between that instant and
the change's recording, belongs to the package that starts then (breaker
12-02 money F1, HIGH; README "Money rules", package change).

On a server a change is recorded 90-200 ms after the instant it takes
effect; a top-up dated in that gap, or in the very millisecond, fell on the
boundary. The statement's cut (``statements.under_package_from``: money at
or after the change is the prepaid package's) counted it as prepaid credit,
while the carry (``Accounts._apply_change``) took the ledger's whole credit,
in which that top-up had already paid the pay-as-you-go debt: the ledger
ended 10.00 below the statement. One rule now, read by both.

Catalog of ``test_late_cdrs`` (``RENTED``): ``pay`` pay-as-you-go at 0.12/min,
``bun_a`` bundle of 100 minutes with a 50.00 rental and overage at 0.20/min,
``pre_b`` prepaid with a 600.00 fee. A 105-minute call on 11-02. Money in
minor units, 1/10000 yuan (``YUAN`` = 10000).
"""
from __future__ import annotations

import pytest

from clock import clock_at
from test_change_to_prepaid_carry import _balance_cli, _change_detail, _statement
from test_late_cdrs import YUAN, at, cdr, engine_rows, setup_store

CHANGE = at(11, 15, 0)  # 2026-11-15 00:00:00.000 Asia/Shanghai


def _story(tmp_path, package, top_up_at, change_recorded_at):
    store, ops, _ = setup_store(tmp_path, package)
    engine_rows(store, [cdr("on", at(11, 2), 105)])
    with clock_at(at(11, 20)):
        ops.top_up("pay-10", "acme", 10 * YUAN, at_ms=top_up_at)
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=CHANGE, at_ms=change_recorded_at)
    return store, ops


@pytest.mark.parametrize("top_up_at,recorded_at", [(CHANGE, CHANGE), (CHANGE, CHANGE + 150),
                                                    (CHANGE + 50, CHANGE + 150)],
                         ids=["same-ms", "at-instant-recorded-later", "inside-the-gap"])
def test_pay_as_you_go_debt_and_a_top_up_at_the_change(tmp_path, rented_catalog, capsys, top_up_at, recorded_at):
    """pay: the call costs 105 x 0.12 = 12.60, debited (ledger -12.60). A
    10.00 top-up dated at the change's instant (or 50 ms after it, the change
    recorded 150 ms after it) is the prepaid package's money: November bills
    the 12.60 call as due (no money before the change), and the prepaid
    period opens on 600.00 + 10.00 carried = 610.00 = November's and
    December's closing credit = the ledger. Was: carried 0 (the ledger's
    credit -2.60 had used the 10.00 for the debt), ledger 600.00 against the
    statement's 610.00."""
    store, ops = _story(tmp_path, "pay", top_up_at, recorded_at)
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["applied_to_bills_minor"], detail["credit_minor"]) == (
        10 * YUAN, 0, 610 * YUAN)
    nov = _statement(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (126 * 1000, 610 * YUAN)
    dec = _statement(tmp_path, store, capsys, "2026-12")
    assert dec["closing_credit_minor"] == 610 * YUAN == ops.balance("acme")["credit_minor"]
    assert _balance_cli(store, capsys) == 610 * YUAN


def test_a_bundle_s_overage_debt_and_a_top_up_at_the_change(tmp_path, rented_catalog, capsys):
    """bun_a: 5 minutes of overage x 0.20 = 1.00 debited (ledger -1.00), a
    10.00 top-up at 11-15 00:00.000, the change recorded at that instant.
    Hand: November bills rental 50.00 + overage 1.00 = 51.00, all due; the
    10.00 is prepaid: carried 10.00, credit 610.00 = statement. Was: carried
    9.00, ledger 609.00 against 610.00."""
    store, ops = _story(tmp_path, "bun_a", CHANGE, CHANGE)
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["applied_to_bills_minor"]) == (10 * YUAN, 0)
    nov = _statement(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (51 * YUAN, 610 * YUAN)
    assert ops.balance("acme")["credit_minor"] == 610 * YUAN


def test_a_top_up_a_millisecond_before_the_change_pays_the_bill(tmp_path, rented_catalog, capsys):
    """The same 10.00 dated 1 ms before the change is a payment of the
    pay-as-you-go bill: 12.60 - 10.00 = 2.60 due, nothing carried, credit
    600.00 = the statement's."""
    store, ops = _story(tmp_path, "pay", CHANGE - 1, CHANGE + 150)
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["applied_to_bills_minor"]) == (0, 0)
    nov = _statement(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (26 * 1000, 600 * YUAN)
    assert ops.balance("acme")["credit_minor"] == 600 * YUAN


@pytest.mark.parametrize("package,target,paid,carried,opening,closing", [
    ("pay", "pre_b", 10 * YUAN, 10 * YUAN, 0, 610 * YUAN),
    ("pre_a", "pay", 600 * YUAN, 1080 * YUAN, 480 * YUAN, 1080 * YUAN),
    ("pay", "pay2", 10 * YUAN, 10 * YUAN, 0, 10 * YUAN)])
def test_money_before_a_late_sweep_is_counted_once_by_the_first_billed_month(
        tmp_path, rented_catalog, capsys, package, target, paid, carried, opening, closing):
    """Breaker 12-02 money F2: no call or money before December (December is
    the first billed month, which opens with what the period starting at its
    first instant carried). A change to ``target`` scheduled on 11-20 for
    12-01 00:00, ``paid`` topped up at 12-01 05:00 (recorded while the old
    package still ran), the sweep applying the change at 08:00. The money is
    dated after the change: the new package's, in the credit carried, and
    December shows it as its own top-up. Hand: pay -> pre_b: carried 10.00,
    December opens on 0.00, + 10.00 + 600.00 fee = 610.00 = the ledger (was:
    opened on the 10.00 carried, 620.00). pre_a -> pay: carried 480.00 +
    600.00 = 1080.00; December opens on 480.00, + 600.00 = 1080.00 (was
    1680.00). pay -> pay2: 10.00 (was 20.00). A sweep at 00:00, before the
    top-up, gives the same statement."""
    store, ops, _ = setup_store(tmp_path, package)
    with clock_at(at(11, 20)):
        ops.change_package("to", "acme", target, effective_ms=at(12, 1, 0), at_ms=at(11, 20))
    with clock_at(at(12, 1, 5)):
        ops.top_up("p1", "acme", paid, at_ms=at(12, 1, 5))
    with clock_at(at(12, 1, 8)):
        ops.sweep(at_ms=at(12, 1, 8))
    detail = _change_detail(ops)
    assert (detail["carried_minor"], detail["carried_after_change_minor"]) == (carried, paid)
    dec = _statement(tmp_path, store, capsys, "2026-12")
    assert (dec["opening_credit_minor"], dec["top_ups_total_minor"]) == (opening, paid)
    assert dec["closing_credit_minor"] == closing == ops.balance("acme")["credit_minor"]
