"""Rerating a paid postpaid call of a month billed as postpaid, after the
account changed to prepaid, several times: the result depends on the last
prices, not on the path (breaker5 F3).

``acme`` on ``pay`` (std 0.12/min) makes a 10-minute call on 11-10 (1.20),
pays 100.00 on 11-01 and changes to ``pre_b`` (fee 600.00) on 11-15: the
payment pays the 1.20 and 98.80 is carried, credit 698.80, nothing due.
Each step compiles a new catalog version and reruns November on 11-29.

- std 0.06 (v2): the call 0.60, a 0.60 rebate on a paid call: back to the
  credit, 699.40, nothing due (commit bafb479's rule).
- std 0.24 (v3): the call 2.40, +1.80. The 0.60 the earlier rebate gave
  back is taken back from the credit first (698.80), the rest (1.20) is
  due: as if rerated from 0.12 to 0.24 at once (the payment paid 1.20, the
  higher charge's 1.20 more is billed). Before: the 1.80 was billed as due
  and the 0.60 kept as credit (699.40 + 1.80 due).
- std 0.12 (v4, the original price): -1.20 lowers the bill: 698.80, nothing
  due = never rerated. Before: 699.40 of credit and 0.60 due -- a call the
  payment fully paid billed again, its rebate sitting as prepaid credit.

1 yuan = 10000 minor units.
"""
from __future__ import annotations

import re

import pytest
from clock import clock_at
from test_late_cdrs import RENTED, YUAN, acme_statements, at, cdr, engine_rows, setup_store

from rating_core.cli import main
from rating_core.ledger import Ledger
from rating_core.rerate import rerate


def _changed(tmp_path, payment_minor, late=False):
    """pay, 1.20 call 11-10, ``payment_minor`` paid 11-01, pre_b from 11-15;
    with ``late`` a second 10-minute call of 11-12 (1.20) committed after."""
    store, ops, ledger = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(at(11, 20)):
        ops.top_up("pay", "acme", payment_minor, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    ledger.close()
    if late:
        engine_rows(store, [cdr("late", at(11, 12), 10)])
    return store


def _steps(tmp_path, store, capsys, prices, rate="std", package="pay", first=2):
    """Rerate November under one new version per price (v``first``, ...):
    [(ledger credit, statement closing credit, amount due)] after each."""
    out = []
    for version, price in enumerate(prices, start=first):
        text = re.sub(rf"{rate}: {{tiers: \[{{price: [0-9.]+}}\]}}", f"{rate}: {{tiers: [{{price: {price}}}]}}",
                      RENTED.replace("PACKAGE", package))
        if rate == "overage":
            text = RENTED.replace("PACKAGE", package).replace("overage_price: 0.20, rental: 50",
                                                              f"overage_price: {price}, rental: 50")
        path = tmp_path / f"v{version}.yaml"
        path.write_text(text)
        with pytest.raises(SystemExit) as e:
            main(["catalog", "compile", str(path), "--store", str(store)])
        assert e.value.code == 0, capsys.readouterr().err
        rerate(store, version, "2026-11-01", "2026-11-30", now_ms=at(11, 29))
        ledger = Ledger(store)
        try:
            credit = ledger.stored("acme").credit_minor
        finally:
            ledger.close()
        nov = acme_statements(tmp_path, store, capsys)[0]
        out.append((credit, nov["closing_credit_minor"], nov["amount_due_minor"]))
    return out


def test_down_up_and_back_to_the_original_price_is_never_rerated(tmp_path, rented_catalog, capsys):
    """699.40 / 0; 698.80 / 1.20 due; 698.80 / 0 (the original state)."""
    store = _changed(tmp_path, 100 * YUAN)
    assert _steps(tmp_path, store, capsys, ["0.06", "0.24", "0.12"]) == [
        (6994_000, 6994_000, 0), (6988_000, 6988_000, 12_000), (6988_000, 6988_000, 0)]


def test_partly_paid_call_up_after_a_rebate(tmp_path, rented_catalog, capsys):
    """0.50 paid: credit 600.00, 0.70 due. std 0.03 (0.30): the 0.50 pays it
    and 0.20 comes back, 600.20 / 0. std 0.24 (2.40): the 0.20 is taken back,
    600.00, and 2.40 - 0.50 = 1.90 due (as rerated at once from 0.12: 0.70 +
    1.20). std 0.03 again: 600.20 / 0. Before: 600.20 and 2.10 due at 0.24."""
    store = _changed(tmp_path, 5_000)
    assert _steps(tmp_path, store, capsys, ["0.03", "0.24", "0.03"]) == [
        (6002_000, 6002_000, 0), (600 * YUAN, 600 * YUAN, 19_000), (6002_000, 6002_000, 0)]


def test_two_calls_one_late_back_to_the_original_price(tmp_path, rented_catalog, capsys):
    """2.00 paid: 1.20 on time, 0.80 carried (600.80); the late 1.20 call
    takes the 0.80 (600.00), 0.40 due. std 0.06 (0.60 each): 2.00 pays 1.20,
    0.80 back: 600.80 / 0. 0.24 (2.40 each): 0.80 taken back, 4.80 - 2.00 =
    2.80 due, 600.00. 0.06: 600.80 / 0. 0.12: the original 600.00 / 0.40.
    Before: 600.80 and 1.20 due at the end."""
    store = _changed(tmp_path, 2 * YUAN, late=True)
    assert _steps(tmp_path, store, capsys, ["0.06", "0.24", "0.06", "0.12"]) == [
        (6008_000, 6008_000, 0), (600 * YUAN, 600 * YUAN, 28_000), (6008_000, 6008_000, 0),
        (600 * YUAN, 600 * YUAN, 4_000)]


def test_bundle_overage_down_up_back(tmp_path, rented_catalog, capsys):
    """bun_a (100 min, rental 50, overage 0.20): 200.00 paid 11-01, a
    105-minute call on 11-02 (1.00 overage), pre_b from 11-15: 200.00 pays
    rental 50.00 and 1.00, 149.00 carried, 749.00. Overage 0.10 (0.50): 0.50
    back, 749.50 / 0. 0.40 (2.00): the 0.50 taken back, 749.00, 1.00 due.
    0.20 (the original): 749.00 / 0. Before: 749.50 and 0.50 due."""
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("on", at(11, 2), 105)])
    with clock_at(at(11, 20)):
        ops.top_up("p", "acme", 200 * YUAN, at_ms=at(11, 1))
        ops.change_package("c", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    ledger.close()
    assert _steps(tmp_path, store, capsys, ["0.10", "0.40", "0.20"], rate="overage", package="bun_a") == [
        (7495_000, 7495_000, 0), (749 * YUAN, 749 * YUAN, 1 * YUAN), (749 * YUAN, 749 * YUAN, 0)]


def test_the_credit_taken_back_never_goes_below_zero(tmp_path, rented_catalog, capsys):
    """All 698.80 refunded on 11-21 (credit 0). std 0.00: the paid 1.20 comes
    back, 1.20 / 0. That 1.20 is refunded too (0.00). std 0.24 (+2.40):
    the 1.20 the rebate gave back is no longer there to take back, so the
    whole +2.40 is due (1.20 beyond what was paid plus the 1.20 paid out):
    credit 0.00 in both; the rerating does not fail on the prepaid credit
    (``InsufficientCredit``)."""
    store = _changed(tmp_path, 100 * YUAN)
    ledger = Ledger(store)
    from clock import when_dated

    from rating_core.accounts import Accounts
    from rating_core.store import Store
    ops = when_dated(Accounts(Store(store, create=False), ledger))
    with clock_at(at(11, 21)):
        ops.refund("r1", "acme", 6988_000, "back", at_ms=at(11, 21))
    ledger.close()
    assert _steps(tmp_path, store, capsys, ["0.00"]) == [(12_000, 12_000, 0)]
    ledger = Ledger(store)
    ops = when_dated(Accounts(Store(store, create=False), ledger))
    with clock_at(at(11, 29, 12)):
        ops.refund("r2", "acme", 12_000, "back", at_ms=at(11, 29, 12))
    ledger.close()
    assert _steps(tmp_path, store, capsys, ["0.24"], first=3) == [(0, 0, 24_000)]
