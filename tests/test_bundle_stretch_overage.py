"""The bundle overage of a month billed as prepaid (README "Money rules"): a
bundle stretch followed by a prepaid period in the month is a postpaid
interval inside it, its overage paid from the credit (on time, late and
rerated, by the ledger and the statement alike); only the stretch the month
ends on has its overage billed, which the change back to prepaid gives back
to the carried credit (breaker7 F4, ``test_breaker7_money.py``).

Catalog ``test_late_cdrs.RENTED`` (fixture ``rented_catalog``): ``pay``
0.12/min; ``pre_a`` fee 480.00, 0.12/min, minimum 40.00; ``pre_b`` fee
600.00, 0.10/min, minimum 60.00; ``bun_a`` 100 min, overage 0.20/min,
rental 50.00 (once per bundle period). Money in minor units, ``YUAN`` =
10000.
"""
from __future__ import annotations

import pytest

from clock import clock_at
from rating_core.cli import main
from test_breaker7_money import MONTHS, _credit, _two_bundle_stretches
from test_late_cdrs import RENTED, YUAN, acme_statements, at, cdr, engine_rows, setup_store


def _rerate_overage(tmp_path, store, capsys, version: int, price: str) -> None:
    """Compile ``RENTED`` (acme on ``pre_b``) with ``bun_a``'s overage at
    ``price`` yuan/min as catalog ``version`` and rerate November on 11-29."""
    from rating_core.rerate import rerate

    old = "overage_price: 0.20, rental: 50"
    text = RENTED.replace("PACKAGE", "pre_b")
    assert old in text
    path = tmp_path / f"v{version}.yaml"
    path.write_text(text.replace(old, f"overage_price: {price}, rental: 50"))
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(path), "--store", str(store)])
    assert e.value.code == 0, capsys.readouterr().err
    rerate(store, version, "2026-11-01", "2026-11-30", now_ms=at(11, 29))


def test_overage_rerated_in_a_month_ending_on_the_second_bundle_stretch(tmp_path, rented_catalog, capsys):
    """``_two_bundle_stretches`` ending on ``bun_a`` (``pre_b`` on 12-01
    00:00; 1679.00 both, November due 159.00: the first stretch's 5 min
    overage from the credit, the second's 10 min billed). The overage price
    rerated 0.40, 0.10, then 0.20 again (on 11-29, November's statement).

    Hand: the first stretch's change moves the credit, the second's the
    bill. 0.40: 1.00 -> 2.00 (+1.00 from the credit), 2.00 -> 4.00 (+2.00
    due): ledger 1678.00 = December's closing, November due 161.00, closing
    1078.00. 0.10: 0.50 (0.50 back to the credit), 1.00 (1.00 off the
    bill): 1679.50, due 158.00, November 1079.50. 0.20: the state of never
    rerating, 1679.00, due 159.00, 1079.00. (Before the fix the rerating
    moved only the bill: ledger 1679.00 throughout, due 162.00 / 157.50.)"""
    store, ops = _two_bundle_stretches(tmp_path, back_to_prepaid_on_20th=False)
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], _credit(ops), dec["closing_credit_minor"]) == (
        159 * YUAN, 1679 * YUAN, 1679 * YUAN)
    for version, price, due, credit in ((2, "0.40", 1_610_000, 16_780_000), (3, "0.10", 1_580_000, 16_795_000),
                                        (4, "0.20", 1_590_000, 16_790_000)):
        _rerate_overage(tmp_path, store, capsys, version, price)
        nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
        assert nov["amount_due_minor"] == due, price
        assert nov["closing_credit_minor"] == credit - 600 * YUAN, price
        assert _credit(ops) == dec["closing_credit_minor"] == credit, price


def test_a_bundle_stretch_inside_a_month_ending_on_pay_as_you_go(tmp_path, rented_catalog, capsys):
    """``pre_b`` from 10-01 -> ``bun_a`` 11-05 (a 105-min call 11-06: 1.00
    overage, 599.00) -> ``pre_a`` 11-10 (1079.00) -> ``pay`` 11-15 (a 10-min
    call 11-16: 1.20, 1077.80) -> ``pre_b`` on 12-01 00:00. November is
    billed as prepaid and ends on ``pay``: the bundle stretch is followed by
    ``pre_a``, so it is a postpaid interval inside the month and its
    overage is paid from the credit, as the pay-as-you-go call is.

    Hand: the 12-01 change gives back no overage (no bundle call after
    ``pre_a``): carried 1077.80 + 600.00 = 1677.80. November: credit
    consumed 1.20 + 1.00 = 2.20, shortfall 60.00 - 2.20 = 57.80, rental
    50.00 (``pay`` has none): due 107.80, closing 1077.80; December's
    closing 1677.80 = the ledger. (Before the fix: the overage billed too,
    due 108.80, December 1678.80 against the ledger's 1677.80.)
    Then a late 10-min call of 11-07 (bundle, beyond the allowance: 2.00)
    committed on 12-02, with ``pre_b`` in force: taken from the credit
    (1675.80 both), November due 105.80 (shortfall 55.80)."""
    store, ops, _ = setup_store(tmp_path, "pre_b")
    ops.change_package("c1", "acme", "bun_a", effective_ms=at(11, 5, 0), at_ms=at(11, 5, 0))
    engine_rows(store, [cdr("o1", at(11, 6), 105)])
    ops.change_package("c2", "acme", "pre_a", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    ops.change_package("c3", "acme", "pay", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("p1", at(11, 16), 10)])
    assert _credit(ops) == 10_778_000
    with clock_at(at(12, 1, 1)):
        ops.change_package("c4", "acme", "pre_b", effective_ms=at(12, 1, 0), at_ms=at(12, 1, 0))
    assert _credit(ops) == 16_778_000
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["credit_consumed_minor"], nov["rental_minor"], nov["amount_due_minor"]) == (
        22_000, 50 * YUAN, 1_078_000)
    assert nov["closing_credit_minor"] == 10_778_000
    assert dec["closing_credit_minor"] == 16_778_000
    with clock_at(at(12, 2)):
        engine_rows(store, [cdr("l1", at(11, 7), 10)])
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert nov["amount_due_minor"] == 1_058_000
    assert _credit(ops) == dec["closing_credit_minor"] == 16_758_000
    assert nov["closing_credit_minor"] == 10_758_000
