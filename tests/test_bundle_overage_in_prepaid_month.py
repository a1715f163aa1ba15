"""A bundle interval inside a month billed as prepaid: its overage is paid
from the carried credit, as a pay-as-you-go call there is (breaker5 F7).

``acme`` is on ``pre_b`` (prepaid, fee 600.00, minimum 60.00) from 10-01,
so November is billed as prepaid (``ledger.core.month_opening_kinds``). On
11-10 it changes to ``bun_a`` (bundle: 100 min, rental 50.00, overage
0.20/min) and on 11-20 to ``pre_a`` (prepaid, fee 480.00): credit 600.00 +
480.00 = 1080.00 before any call.

A 105-minute call on 11-12 under ``bun_a``: 100 min in the bundle, 5 min of
overage = 1.00. The ledger debited it from the credit on time (600.00 ->
599.00; after ``pre_a`` 1079.00). November's statement billed the 1.00
among the charges (shortfall 60.00 - 1.00 = 59.00, rental 50.00, overage
1.00: 110.00 due) and kept the credit at 1080.00: the customer paid 1.00
twice (111.00 in all, against 110.00) and ``accounts balance`` read 1.00
below the statement. Now the statement pays it from the credit as the
ledger did (as it pays a pay-as-you-go call of such a month): usage 1.00,
credit consumed 1.00, shortfall 59.00 (the overage counts towards the
minimum, as the pay-as-you-go call does), rental 50.00: due 109.00, closing
credit 1079.00 = the ledger. 1.00 + 109.00 = 110.00 paid in all, as with
no overage (50 minutes: shortfall 60.00 + rental 50.00 = 110.00, 1080.00).

Late overage calls of that bundle interval (committed after 11-20, the
account prepaid again) are taken from the credit the same way, as a late
pay-as-you-go call of such a month is: two 10-minute calls on 11-13 and
11-14, 2.00 of overage each: ledger and closing credit 1079.00 - 4.00 =
1075.00; shortfall 60.00 - 5.00 = 55.00, rental 50.00: due 105.00
(5.00 + 105.00 = 110.00 again).
"""
from __future__ import annotations

import pytest
from clock import clock_at, when_dated
from test_late_cdrs import RENTED, YUAN, acme_statements, at, cdr, engine_rows, setup_store

from test_change_to_prepaid_carry import _balance_cli

from rating_core.accounts import Accounts
from rating_core.cli import main
from rating_core.ledger import Ledger
from rating_core.rerate import rerate
from rating_core.store import Store


def _pre_bun_pre(tmp_path, minutes):
    store, ops, ledger = setup_store(tmp_path, "pre_b")
    with clock_at(at(11, 25)):
        ops.change_package("c1", "acme", "bun_a", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    ledger.close()
    engine_rows(store, [cdr("on", at(11, 12), minutes)])
    ledger = Ledger(store)
    ops = when_dated(Accounts(Store(store, create=False), ledger))
    on_bundle = ops.balance("acme")["credit_minor"]
    with clock_at(at(11, 25)):
        ops.change_package("c2", "acme", "pre_a", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    ledger.close()
    return store, on_bundle


def _credit(store, capsys) -> int:
    """``accounts balance acme``'s credit (minor units)."""
    return _balance_cli(store, capsys)


def test_on_time_overage_is_paid_from_the_credit_once(tmp_path, rented_catalog, capsys):
    """105 min: ledger 599.00 on bun_a, 1079.00 after pre_a; November
    closes 1079.00, credit consumed 1.00, due 59.00 + 50.00 = 109.00."""
    store, on_bundle = _pre_bun_pre(tmp_path, 105)
    assert on_bundle == 599 * YUAN
    assert _credit(store, capsys) == 1079 * YUAN
    nov, dec = acme_statements(tmp_path, store, capsys, ("2026-11", "2026-12"))
    assert (nov["usage_minor"], nov["overage_minor"], nov["credit_consumed_minor"]) == (1 * YUAN, 1 * YUAN, 1 * YUAN)
    assert (nov["minimum_topup_minor"], nov["rental_minor"]) == (59 * YUAN, 50 * YUAN)
    assert nov["amount_due_minor"] == 109 * YUAN
    assert nov["closing_credit_minor"] == dec["closing_credit_minor"] == 1079 * YUAN


def test_without_overage_nothing_changes(tmp_path, rented_catalog, capsys):
    """50 min inside the bundle: 1080.00 both, due 60.00 + 50.00 = 110.00."""
    store, _ = _pre_bun_pre(tmp_path, 50)
    assert _credit(store, capsys) == 1080 * YUAN
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (1080 * YUAN, 110 * YUAN)


def test_late_overage_is_paid_from_the_credit_too(tmp_path, rented_catalog, capsys):
    """Two late 10-min calls (2.00 overage each) after pre_a: 1075.00 both,
    due 55.00 + 50.00 = 105.00."""
    store, _ = _pre_bun_pre(tmp_path, 105)
    engine_rows(store, [cdr("late", at(11, 13), 10), cdr("late2", at(11, 14), 10)])
    assert _credit(store, capsys) == 1075 * YUAN
    nov, dec = acme_statements(tmp_path, store, capsys, ("2026-11", "2026-12"))
    assert (nov["overage_minor"], nov["credit_consumed_minor"], nov["minimum_topup_minor"]) == \
        (5 * YUAN, 5 * YUAN, 55 * YUAN)
    assert nov["amount_due_minor"] == 105 * YUAN
    assert nov["closing_credit_minor"] == dec["closing_credit_minor"] == 1075 * YUAN


def test_rerated_overage_moves_the_credit_as_the_statement(tmp_path, rented_catalog, capsys):
    """Rerated under overage 0.40/min (v2), the 5 overage minutes cost
    2.00: the credit gives 1.00 more (1079.00 -> 1078.00) in the ledger and
    on the statement alike, and the bill does not change (due 109.00: the
    rerating is paid from the credit, as the overage was). Before, the
    ledger kept 1079.00 while the statement (paying the overage from the
    credit) would close at 1078.00."""
    store, _ = _pre_bun_pre(tmp_path, 105)
    text = RENTED.replace("PACKAGE", "pre_b").replace("overage_price: 0.20, rental: 50",
                                                      "overage_price: 0.40, rental: 50")
    (tmp_path / "v2.yaml").write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(tmp_path / "v2.yaml"), "--store", str(store)])
    assert e.value.code == 0, capsys.readouterr().err
    r = rerate(store, 2, "2026-11-01", "2026-11-30", now_ms=at(11, 29))
    assert [(a.delta_minor, a.credit_delta_minor) for a in r.adjustments] == [(1 * YUAN, 1 * YUAN)]
    assert _credit(store, capsys) == 1078 * YUAN
    nov, dec = acme_statements(tmp_path, store, capsys, ("2026-11", "2026-12"))
    assert nov["amount_due_minor"] == 109 * YUAN
    assert nov["closing_credit_minor"] == dec["closing_credit_minor"] == 1078 * YUAN


def test_a_month_ending_on_a_postpaid_package_keeps_billing_a_late_overage(tmp_path, rented_catalog, capsys):
    """Breaker6 F1: pre_b -> bun_a (11-05) -> pay (11-10) in November, then
    pre_a at 12-01 00:00. November ends on ``pay`` (the change at 12-01
    00:00 is December's), so its statement bills the bundle's overage as
    due; the ledger read the kind "when the month ends" at the next
    month's first instant -- prepaid -- and also took a late 10-minute
    overage call of 11-07 (2.00) from the credit. Now the late overage is
    billed by November alone: the ledger does not move (before: 2.00
    lower); November's usage rises by 2.00 and its shortfall to the 60.00
    minimum falls by as much (the overage counts towards it), so its amount
    due and closing credit stay."""
    store, ops, ledger = setup_store(tmp_path, "pre_b")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 6)):
        ops.change_package("c1", "acme", "bun_a", effective_ms=at(11, 5, 0), at_ms=at(11, 5, 0))
    engine_rows(store, [cdr("ov", at(11, 6), 105)])
    with clock_at(at(11, 11)):
        ops.change_package("c2", "acme", "pay", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    with clock_at(at(12, 1, 1)):
        ops.change_package("c3", "acme", "pre_a", effective_ms=at(12, 1, 0), at_ms=at(12, 1, 0))
    ledger.close()
    before = _balance_cli(store, capsys)
    nov_before, = acme_statements(tmp_path, store, capsys, months=("2026-11",))
    engine_rows(store, [cdr("lateb", at(11, 7), 10)])
    assert _balance_cli(store, capsys) == before
    nov, = acme_statements(tmp_path, store, capsys, months=("2026-11",))
    assert nov["usage_minor"] == nov_before["usage_minor"] + 2 * YUAN
    assert nov["minimum_topup_minor"] == nov_before["minimum_topup_minor"] - 2 * YUAN
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (
        nov_before["amount_due_minor"], nov_before["closing_credit_minor"])


@pytest.mark.parametrize("late", [False, True])
def test_overage_of_a_month_ending_on_the_bundle_is_not_charged_twice_by_a_later_change(
        tmp_path, rented_catalog, capsys, late):
    """Breaker6 F3: ``pre_b`` from 10-01 (credit 600.00); a 10-minute call
    on 11-02 (0.10/min: 1.00 -> 599.00); change to ``bun_a`` at 11-05 00:00
    (599.00 carried); a 105-minute call on 11-06 (5 min of overage x 0.20 =
    1.00), which the ledger debits on time (the account is postpaid):
    598.00; change to ``pre_a`` (fee 480.00) at 12-01 00:00.

    November is billed as prepaid and ends on the bundle, so its statement
    bills the overage as due (shortfall 60.00 - 1.00 - 1.00 = 58.00, rental
    50.00, overage 1.00: 109.00) and closes on 599.00. The carry into
    ``pre_a`` is what the statements leave unapplied (599.00) bounded by the
    ledger's credit -- which was 598.00, the overage already out of it:
    ledger 598.00 + 480.00 = 1078.00 against December's closing 1079.00, the
    1.00 paid twice (on November's bill and out of the credit). Now the
    bound gets the overage back: carried 599.00, ledger 1079.00 = December's
    closing credit; November 109.00 due. With a late 10-minute call of 11-07
    (2.00 of overage, committed once prepaid) November still bills it
    (shortfall 56.00 + 50.00 + 3.00 = 109.00) and the ledger does not take
    it: the same figures."""
    store, ops, ledger = setup_store(tmp_path, "pre_b")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 6)):
        ops.change_package("c1", "acme", "bun_a", effective_ms=at(11, 5, 0), at_ms=at(11, 5, 0))
    engine_rows(store, [cdr("ov", at(11, 6), 105)])
    assert ops.balance("acme")["credit_minor"] == 598 * YUAN
    with clock_at(at(12, 1, 1)):
        ops.change_package("c3", "acme", "pre_a", effective_ms=at(12, 1, 0), at_ms=at(12, 1, 0))
    carried = [e for e in ops.account_events("acme")
               if e["operation"] == "change_package" and "carried_minor" in e["detail"]][-1]["detail"]["carried_minor"]
    assert carried == 599 * YUAN
    ledger.close()
    if late:
        engine_rows(store, [cdr("lateb", at(11, 7), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, months=("2026-11", "2026-12"))
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (109 * YUAN, 599 * YUAN)
    assert dec["closing_credit_minor"] == 1079 * YUAN
    assert _balance_cli(store, capsys) == 1079 * YUAN


def test_overage_of_a_month_ending_prepaid_stays_paid_from_the_credit(tmp_path, rented_catalog, capsys):
    """The same story with ``pre_a`` on 11-20 00:00: November ends prepaid,
    so its statement pays the overage from the credit as the ledger did
    (nothing given back): 599.00 - 1.00 on-time overage = 598.00 carried,
    + 480.00 = 1078.00, less a late 10-minute overage call of 11-07 (2.00,
    from the credit): 1076.00, ledger and December's closing credit alike."""
    store, ops, ledger = setup_store(tmp_path, "pre_b")
    engine_rows(store, [cdr("on", at(11, 2), 10)])
    with clock_at(at(11, 6)):
        ops.change_package("c1", "acme", "bun_a", effective_ms=at(11, 5, 0), at_ms=at(11, 5, 0))
    engine_rows(store, [cdr("ov", at(11, 6), 105)])
    with clock_at(at(11, 20, 1)):
        ops.change_package("c3", "acme", "pre_a", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    ledger.close()
    engine_rows(store, [cdr("lateb", at(11, 7), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, months=("2026-11", "2026-12"))
    assert nov["closing_credit_minor"] == dec["closing_credit_minor"] == 1076 * YUAN
    assert _balance_cli(store, capsys) == 1076 * YUAN
