"""fixb8a (breaker8 F7, HIGH): a month billed as pay-as-you-go that changes
to prepaid and returns to a bundle (a postpaid kind, ``layout.POSTPAID_KINDS``)
follows the money rules of the return to pay-as-you-go
(``test_late_carried_money_left``): a late call of the prepaid span is taken
from the rest carried as far as it goes, the rest due; the month never
closes below zero with nothing due (README "Money rules").

Story (catalog ``test_late_cdrs.RENTED``, fixture ``rented_catalog``; acme
imported on ``pay``, December the first month billed; all on 12-01, Shanghai
time): 100.00 paid 01:00; ``pre_a`` 06:00 (carries 100.00: 580.00); back to
``back`` 12:00 (carries 580.00); the refundable maximum refunded 14:00 (the
whole 580.00 for ``pay``; 580.00 - 50.00 = 530.00 for ``bun_a``, whose
50.00 rental is on the statement only, never in the ledger, so the ledger
keeps 50.00 to pay it); then a late 10-minute call of 08:00, the prepaid
span (0.12/min: 1.20), committed. Money in minor units, 1 yuan = ``YUAN`` =
10000.
"""
from __future__ import annotations

import pytest

from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, setup_store


def _credit(ops) -> int:
    return ops.balance("acme")["credit_minor"]


def _story(tmp_path, back: str, refund: int):
    store, ops, _ = setup_store(tmp_path, "pay")
    with clock_at(at(12, 1, 7)):
        ops.top_up("p", "acme", 100 * YUAN, at_ms=at(12, 1, 1))
        ops.change_package("c1", "acme", "pre_a", effective_ms=at(12, 1, 6), at_ms=at(12, 1, 6))
    assert _credit(ops) == 580 * YUAN
    with clock_at(at(12, 1, 13)):
        ops.change_package("c2", "acme", back, effective_ms=at(12, 1, 12), at_ms=at(12, 1, 12))
    assert _credit(ops) == 580 * YUAN
    with clock_at(at(12, 1, 14)):
        ops.refund("r", "acme", refund, "close", at_ms=at(12, 1, 14))
    return store, ops


def _figures(ops, dec: dict) -> tuple[int, int, int, int, int]:
    return (_credit(ops), dec["charges_minor"], dec["paid_to_charges_minor"], dec["amount_due_minor"],
            dec["closing_credit_minor"])


def test_a_late_prepaid_span_call_after_a_return_to_a_bundle_and_a_full_refund_is_due(tmp_path, rented_catalog,
                                                                                       capsys):
    """F7 (``bun_a``, 530.00 refunded: 50.00 left, the rental's). Hand: the
    late call takes its 1.20 from the 50.00 the ledger holds (48.80; the
    engine's credit part, ``credit_consumed`` 1.20). December: charges the
    50.00 rental (the call was paid from credit); the month's money is the
    50.00 left, less the call's 1.20: 48.80 pays the rental, 1.20 due,
    closing 0.00 (it paid the whole 50.00 and closed at -1.20 with nothing
    due). Ledger 48.80 = 50.00 - 1.20: the 48.80 the statement paid with,
    the 1.20 due."""
    store, ops = _story(tmp_path, "bun_a", 530 * YUAN)
    assert _credit(ops) == 50 * YUAN
    engine_rows(store, [cdr("late", at(12, 1, 8), 10)])
    dec, = acme_statements(tmp_path, store, capsys, ("2026-12",))
    assert (dec["usage_minor"], dec["credit_consumed_minor"], dec["rental_minor"]) == (12_000, 12_000, 50 * YUAN)
    assert _figures(ops, dec) == (488_000, 50 * YUAN, 488_000, 12_000, 0)


@pytest.mark.parametrize("back", ["pay", "bun_b"])
def test_the_same_story_returning_to_pay_as_you_go_or_a_bundle_without_rental(tmp_path, rented_catalog, capsys,
                                                                                back):
    """The controls (``pay``; ``bun_b``, no rental; 580.00 refunded: 0.00
    left). Hand: the call finds no credit, the ledger -1.20; December:
    charges 1.20, nothing to pay it, 1.20 due, closing 0.00 (``pay`` was
    already right before the fix)."""
    store, ops = _story(tmp_path, back, 580 * YUAN)
    assert _credit(ops) == 0
    engine_rows(store, [cdr("late", at(12, 1, 8), 10)])
    dec, = acme_statements(tmp_path, store, capsys, ("2026-12",))
    assert _figures(ops, dec) == (-12_000, 12_000, 0, 12_000, 0)


@pytest.mark.parametrize("refund", [0, 500 * YUAN])
def test_a_late_prepaid_span_call_with_the_carry_still_there_is_paid(tmp_path, rented_catalog, capsys, refund):
    """``bun_a`` with nothing refunded (580.00 left) or 500.00 (80.00 left):
    the late call takes 1.20 of it (578.80 / 78.80 in the ledger).
    December: charges the 50.00 rental, paid, nothing due; closing 528.80 /
    28.80 (the ledger less the rental the statement paid from it)."""
    store, ops = _story(tmp_path, "bun_a", refund) if refund else _story_no_refund(tmp_path)
    engine_rows(store, [cdr("late", at(12, 1, 8), 10)])
    dec, = acme_statements(tmp_path, store, capsys, ("2026-12",))
    left = 580 * YUAN - refund - 12_000
    assert _figures(ops, dec) == (left, 50 * YUAN, 50 * YUAN, 0, left - 50 * YUAN)


def _story_no_refund(tmp_path):
    store, ops, _ = setup_store(tmp_path, "pay")
    with clock_at(at(12, 1, 7)):
        ops.top_up("p", "acme", 100 * YUAN, at_ms=at(12, 1, 1))
        ops.change_package("c1", "acme", "pre_a", effective_ms=at(12, 1, 6), at_ms=at(12, 1, 6))
    with clock_at(at(12, 1, 13)):
        ops.change_package("c2", "acme", "bun_a", effective_ms=at(12, 1, 12), at_ms=at(12, 1, 12))
    return store, ops


def test_a_payment_and_a_change_to_prepaid_after_the_late_call_agree(tmp_path, rented_catalog, capsys):
    """F7, then 100.00 paid 15:00 and ``pre_b`` 16:00. Hand: the ledger
    48.80 + 100.00 = 148.80; the change applies the 50.00 rental to the
    bill and carries 98.80: 698.80. December: money 100.00 - 530.00 +
    100.00, fees 480.00 + 600.00 = 750.00; charges 50.00 + the 1.20 call =
    51.20; paid, nothing due, closing 698.80 = the ledger."""
    store, ops = _story(tmp_path, "bun_a", 530 * YUAN)
    engine_rows(store, [cdr("late", at(12, 1, 8), 10)])
    with clock_at(at(12, 1, 17)):
        ops.top_up("p2", "acme", 100 * YUAN, at_ms=at(12, 1, 15))
        ops.change_package("c3", "acme", "pre_b", effective_ms=at(12, 1, 16), at_ms=at(12, 1, 16))
    dec, = acme_statements(tmp_path, store, capsys, ("2026-12",))
    assert (dec["rental_minor"], dec["credit_consumed_minor"]) == (50 * YUAN, 12_000)
    assert _figures(ops, dec) == (6988 * 1000, 50 * YUAN, 50 * YUAN, 0, 6988 * 1000)
