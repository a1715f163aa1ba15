"""A month billed as postpaid that changed to prepaid: what arises after the
change is not paid from the money dated before it (breaker2 B3, B4, HIGH).

At a change from pay-as-you-go (or a bundle) to prepaid the ledger applies
the month's payments so far to the month's bills so far and carries the rest
into the prepaid credit (``Accounts._apply_change``, event detail
``applied_to_bills_minor``). The month is still billed as pay-as-you-go (the
package in force at its first instant), so its statement applied those
payments to every charge of the month, including what arose after the
change: the prepaid calls' arrears (B3) and a bill re-opened by a bounced
payment (B4), though the prepaid calls had spent that money as credit. The
month closed with a negative credit and nothing due: the arrears were never
billed. Now the money dated before the change pays only what was unpaid and
charged before it; what arose after it is paid by bill payments (``accounts
pay``) and money received after a change back to postpaid, else it is due.
The ledger's credit (``accounts balance``) is the statement's closing credit.

Catalog: ``test_late_cdrs.RENTED`` (``pay``: pay-as-you-go, 0.12/min;
``pre_a``: prepaid, fee 480, 0.12/min, minimum 40/month; ``pre_b``:
prepaid, fee 600, 0.10/min, minimum 60/month). Money in minor units,
1/10000 yuan (``YUAN`` = 10000).
"""
from __future__ import annotations

import json

import pytest

from clock import clock_at
from rating_core.cli import main
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, setup_store


def _balance_cli(store, capsys) -> dict:
    """`accounts balance acme` as JSON (the ledger's credit, and the
    statements' figures under ``statements``)."""
    capsys.readouterr()  # what ran before
    with pytest.raises(SystemExit) as e:
        main(["accounts", "balance", "acme", "--store", str(store)])
    assert e.value.code == 0
    return json.loads(capsys.readouterr().out)


def _payg_payment_then_prepaid(tmp_path, prepaid_minutes: list[int]):
    """``acme`` on ``pay`` from 2026-10-01: a 10-minute call on 11-02 (1.20),
    a 100.00 payment (top-up) on 11-03, a change to ``pre_b`` on 11-15
    00:00 (the change applies 1.20 to November's bill and carries 98.80:
    credit 98.80 + 600.00 = 698.80), then one prepaid call of each of
    ``prepaid_minutes`` on 11-16 (0.10/min). -> (store, ops)."""
    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("payg", at(11, 2), 10)])
    with clock_at(at(11, 3)):
        ops.top_up("pay-100", "acme", 100 * YUAN, at_ms=at(11, 3))
    ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    assert ops.balance("acme")["credit_minor"] == 6988 * 1000
    engine_rows(store, [cdr(f"c{i}", at(11, 16) + i * 1000, n) for i, n in enumerate(prepaid_minutes)])
    return store, ops


def test_prepaid_arrears_after_a_change_from_payg_with_a_payment_are_due(tmp_path, rented_catalog, capsys):
    """B3: 15 prepaid calls of 500 minutes (750.00) after the change spend
    the 698.80 of credit and leave 51.20 of arrears. Hand: received 100.00 +
    600.00 = 700.00, charged 1.20 + 750.00 = 751.20: 51.20 owed. November:
    charges 1.20 + 51.20 = 52.40, the payment pays the 1.20 it paid at the
    change, 51.20 due, closing credit 0 = the ledger's (it was -51.20 with
    nothing due). December (pre_b, no calls, billed on its 2nd day): the
    minimum 60.00 due, outstanding 51.20 + 60.00 = 111.20."""
    store, ops = _payg_payment_then_prepaid(tmp_path, [500] * 15)
    assert ops.balance("acme")["credit_minor"] == 0
    nov, dec = acme_statements(tmp_path, store, capsys, ("2026-11", "2026-12"))
    assert nov["package_kind"] == "payg"
    assert (nov["usage_minor"], nov["credit_consumed_minor"], nov["charges_minor"]) == (
        7512 * 1000, 6988 * 1000, 524 * 1000)
    assert (nov["paid_to_charges_minor"], nov["amount_due_minor"], nov["closing_credit_minor"]) == (
        12 * 1000, 512 * 1000, 0)
    assert (dec["earlier_unpaid_minor"], dec["amount_due_minor"], dec["outstanding_minor"]) == (
        512 * 1000, 60 * YUAN, 1112 * 1000)
    balance = _balance_cli(store, capsys)
    assert balance["credit_minor"] == 0 == balance["statements"]["credit_minor"] == dec["closing_credit_minor"]
    assert balance["statements"]["unpaid_minor"] == 1112 * 1000


def test_without_arrears_nothing_changes(tmp_path, rented_catalog, capsys):
    """The same with one prepaid call of 100 minutes (10.00) from the credit:
    no arrears. November: charges 1.20 (the payg call), paid from the
    payment, nothing due; closing credit 698.80 - 10.00 = 688.80 = the
    ledger's."""
    store, ops = _payg_payment_then_prepaid(tmp_path, [100])
    assert ops.balance("acme")["credit_minor"] == 6888 * 1000
    nov, dec = acme_statements(tmp_path, store, capsys, ("2026-11", "2026-12"))
    assert (nov["charges_minor"], nov["paid_to_charges_minor"], nov["amount_due_minor"]) == (12 * 1000, 12 * 1000, 0)
    assert nov["closing_credit_minor"] == 6888 * 1000 == dec["opening_credit_minor"]
    assert _balance_cli(store, capsys)["statements"]["credit_minor"] == 6888 * 1000


def test_a_bill_payment_after_the_change_pays_the_arrears(tmp_path, rented_catalog, capsys):
    """B3's story, then the customer pays the 51.20 of arrears on 11-20
    (``accounts pay``, the prepaid account's bill payment, never credit):
    November's bill payments pay them: amount due 0, closing credit 0 = the
    ledger's (unchanged by the payment)."""
    store, ops = _payg_payment_then_prepaid(tmp_path, [500] * 15)
    with clock_at(at(11, 20)):
        ops.pay("arrears", "acme", 512 * 1000, at_ms=at(11, 20))
    nov, = acme_statements(tmp_path, store, capsys)
    assert (nov["paid_to_charges_minor"], nov["payments_to_charges_minor"], nov["amount_due_minor"]) == (
        524 * 1000, 512 * 1000, 0)
    assert nov["closing_credit_minor"] == 0 == ops.balance("acme")["credit_minor"]


def _bounced_after_payg(tmp_path, reverse_first: bool):
    """``acme`` on ``pre_a`` from 2026-10-01: a 10-minute call on 11-10
    (1.20 from the credit), ``pay`` 38.80 on 11-12 (November's minimum
    shortfall), a change to ``pay`` on 11-15 (credit 478.80 carried), a
    120-minute payg call on 11-16 (14.40): November's minimum 40.00 is met
    by 15.60 of calls and 24.40 of the payment, 14.40 of it carried into
    December (pay-as-you-go at its start). On 12-02 a change to ``pre_b``
    at 07:00 and the reversal of the 38.80 with ``reopen`` (bounced) at
    08:00, or the reversal at 07:00 and the change at 08:00
    (``reverse_first``). -> (store, ops)."""
    store, ops, _ = setup_store(tmp_path, "pre_a")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(at(11, 12)):
        ops.pay("p1", "acme", 388 * 1000, at_ms=at(11, 12))
    ops.change_package("c1", "acme", "pay", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("b1", at(11, 16), 120)])
    change_at, reverse_at = (at(12, 2, 8), at(12, 2, 7)) if reverse_first else (at(12, 2, 7), at(12, 2, 8))
    for when in sorted((change_at, reverse_at)):
        with clock_at(when):
            if when == change_at:
                ops.change_package("c2", "acme", "pre_b", effective_ms=when, at_ms=when)
            else:
                ops.reverse_payment("rv", "acme", 388 * 1000, "bounced", at_ms=when, reopen=True)
    return store, ops


def test_a_payment_bounced_after_the_change_to_prepaid_is_outstanding(tmp_path, rented_catalog, capsys):
    """B4: the change at 07:00 carries December's 464.40 (478.80 - 14.40):
    credit 1064.40; the reversal at 08:00 re-opens 24.40 of November's
    bill (38.80 less the 14.40 December carried in). Then 10644 minutes of
    prepaid calls at 0.10 (1064.40) spend the credit. Hand: received 480.00
    + 600.00 = 1080.00 (the 38.80 bounced), charged 40.00 + 1064.40 =
    1104.40: 24.40 owed. December: payments_reopened 24.40, none of it paid
    from the credit carried at the change: outstanding 24.40, closing credit
    0 = the ledger's (it was -24.40 with nothing outstanding)."""
    store, ops = _bounced_after_payg(tmp_path, reverse_first=False)
    assert ops.balance("acme")["credit_minor"] == 10644 * 1000
    start = at(12, 2, 8) + 60_000
    rows, _ = engine_rows(store, [cdr(f"s{i}", start + i * 1000, 500) for i in range(21)]
                          + [cdr("last", start + 30_000, 144)])
    assert sum(r["credit_consumed_minor"] for r in rows) == 10644 * 1000
    nov, dec = acme_statements(tmp_path, store, capsys, ("2026-11", "2026-12"))
    assert (nov["minimum_topup_minor"], nov["payments_carried_out_minor"]) == (244 * 1000, 144 * 1000)
    assert dec["package_kind"] == "payg"
    assert (dec["payments_reopened_minor"], dec["paid_to_earlier_minor"], dec["outstanding_minor"]) == (
        244 * 1000, 0, 244 * 1000)
    balance = _balance_cli(store, capsys)
    assert balance["credit_minor"] == 0 == balance["statements"]["credit_minor"] == dec["closing_credit_minor"]
    assert balance["statements"]["unpaid_minor"] == 244 * 1000


def test_a_payment_bounced_before_the_change_is_paid_from_the_money_at_the_change(tmp_path, rented_catalog,
                                                                                  capsys):
    """The other order: the reversal at 07:00 re-opens 24.40 while December
    is still pay-as-you-go, so the change at 08:00 applies 24.40 of the
    464.40 to it and carries 440.00: credit 1040.00; 10400 minutes of calls
    (1040.00) spend it. Hand: received 1080.00, charged 40.00 + 1040.00 =
    1080.00: nothing owed. December: paid_to_earlier 24.40 from the money,
    outstanding 0, closing credit 0 = the ledger's (as before the fix)."""
    store, ops = _bounced_after_payg(tmp_path, reverse_first=True)
    assert ops.balance("acme")["credit_minor"] == 10400 * 1000
    start = at(12, 2, 8) + 60_000
    engine_rows(store, [cdr(f"s{i}", start + i * 1000, 520) for i in range(20)])
    dec, = acme_statements(tmp_path, store, capsys, ("2026-12",))
    assert (dec["payments_reopened_minor"], dec["paid_to_earlier_minor"], dec["outstanding_minor"]) == (
        244 * 1000, 244 * 1000, 0)
    assert dec["closing_credit_minor"] == 0 == ops.balance("acme")["credit_minor"]


def test_a_bundle_changed_to_prepaid_bills_the_prepaid_arrears_too(tmp_path, rented_catalog, capsys):
    """``bun_a`` (rental 50.00, 100 minutes, overage 0.20/min) with a 200.00
    payment on 11-01, a 105-minute call on 11-02 (1.00 overage, debited from
    the ledger), a change to ``pre_b`` on 11-15: the change applies 51.00
    (rental and overage) and carries 149.00: credit 749.00; then 8000
    minutes of prepaid calls (800.00) leave 51.00 of arrears. Hand:
    received 200.00 + 600.00 = 800.00, charged 50.00 + 1.00 + 800.00 =
    851.00: 51.00 owed. November (billed as a bundle): charges 50.00 + 1.00
    + 51.00 = 102.00, 51.00 paid from the payment, 51.00 due, closing
    credit 0 = the ledger's."""
    store, ops, _ = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("on", at(11, 2), 105)])
    with clock_at(at(11, 20)):
        ops.top_up("pay-200", "acme", 200 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    assert ops.balance("acme")["credit_minor"] == 749 * YUAN
    engine_rows(store, [cdr(f"c{i}", at(11, 21) + i * 1000, 500) for i in range(16)])
    assert ops.balance("acme")["credit_minor"] == 0
    nov, = acme_statements(tmp_path, store, capsys)
    assert nov["package_kind"] == "bundle"
    assert (nov["charges_minor"], nov["paid_to_charges_minor"], nov["amount_due_minor"]) == (
        102 * YUAN, 51 * YUAN, 51 * YUAN)
    assert nov["closing_credit_minor"] == 0


def _pay_pre_b_and_back(tmp_path, back: str, top_up: int = 0):
    """``acme`` on ``pay`` (0.12/min), a 10-minute call on 12-01 10:00 (1.20;
    with ``top_up`` minor units paid on 12-01 11:00), a change to ``pre_b``
    (fee 600.00) on 12-02 08:00 and back to ``back`` on 12-02 09:00."""
    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("a", at(12, 1, 10), 10)])
    if top_up:
        ops.top_up("t", "acme", top_up, at_ms=at(12, 1, 11))
    ops.change_package("c1", "acme", "pre_b", effective_ms=at(12, 2, 8), at_ms=at(12, 2, 8))
    ops.change_package("c2", "acme", back, effective_ms=at(12, 2, 9), at_ms=at(12, 2, 9))
    return store, ops


@pytest.mark.parametrize("back, due", [("pay", 12_000), ("bun_a", 512_000)])
def test_a_refund_after_a_return_from_prepaid_is_taken_off_the_credit(tmp_path, rented_catalog, capsys,
                                                                        back, due):
    """Breaker3 R1 (HIGH): pay -> pre_b -> ``back`` (``pay``, or ``bun_a``
    with its 50.00 rental) in December, then a refund of the 600.00 carried
    back, on 12-02 10:00 (the refund's bound allows it). Before the refund:
    ledger 600.00 = closing credit 600.00, amount due 1.20 (51.20). Hand:
    received 600.00, refunded 600.00, charged 1.20 (+ 50.00): closing
    credit 0 = the ledger's, amount due = outstanding = 1.20 (51.20), no
    payment re-opened. It was: closing 600.00, payments_reopened 600.00,
    outstanding 601.20 (651.20): the refund read as a payment taken back."""
    store, ops = _pay_pre_b_and_back(tmp_path, back)
    dec, = acme_statements(tmp_path, store, capsys, months=("2026-12",))
    assert ops.balance("acme")["credit_minor"] == dec["closing_credit_minor"] == 600 * YUAN
    assert dec["amount_due_minor"] == due
    ops.refund("rf", "acme", 600 * YUAN, "leaving", at_ms=at(12, 2, 10))
    dec, = acme_statements(tmp_path, store, capsys, months=("2026-12",))
    assert ops.balance("acme")["credit_minor"] == 0 == dec["closing_credit_minor"]
    assert (dec["refunds_total_minor"], dec["payments_reopened_minor"]) == (-600 * YUAN, 0)
    assert (dec["amount_due_minor"], dec["outstanding_minor"]) == (due, due)


def test_a_debit_after_a_return_from_prepaid_is_taken_off_the_credit(tmp_path, rented_catalog, capsys):
    """Breaker3 R1, a debit adjustment: pay -> pre_b -> pay, ``adjust -100``
    on 12-02 10:00. Hand: 600.00 - 100.00 = 500.00 of credit (the ledger's),
    1.20 due and outstanding, nothing re-opened (it was: closing 600.00,
    payments_reopened 100.00, outstanding 101.20)."""
    store, ops = _pay_pre_b_and_back(tmp_path, "pay")
    ops.adjust("dr", "acme", -100 * YUAN, "correction", at_ms=at(12, 2, 10))
    dec, = acme_statements(tmp_path, store, capsys, months=("2026-12",))
    assert ops.balance("acme")["credit_minor"] == 500 * YUAN == dec["closing_credit_minor"]
    assert dec["payments_reopened_minor"] == 0
    assert (dec["amount_due_minor"], dec["outstanding_minor"]) == (12_000, 12_000)


def test_a_refund_after_a_return_with_a_payment_before_the_change(tmp_path, rented_catalog, capsys):
    """Breaker3 R1 with a 100.00 payment on 12-01 11:00: the change applies
    1.20 of it to the call and carries 98.80 (credit 698.80), carried back
    to ``pay``; refund 698.80 on 12-02 10:00. Hand: received 700.00,
    refunded 698.80, charged 1.20: closing credit 0 = the ledger's, the
    1.20 paid (paid_to_charges 1.20), nothing due or outstanding (it was:
    closing 698.80, outstanding 698.80)."""
    store, ops = _pay_pre_b_and_back(tmp_path, "pay", top_up=100 * YUAN)
    assert ops.balance("acme")["credit_minor"] == 6988 * 1000
    ops.refund("rf", "acme", 6988 * 1000, "leaving", at_ms=at(12, 2, 10))
    dec, = acme_statements(tmp_path, store, capsys, months=("2026-12",))
    assert ops.balance("acme")["credit_minor"] == 0 == dec["closing_credit_minor"]
    assert (dec["paid_to_charges_minor"], dec["payments_reopened_minor"]) == (12_000, 0)
    assert (dec["amount_due_minor"], dec["outstanding_minor"]) == (0, 0)


def test_a_refund_after_a_return_takes_the_carried_credit_before_a_later_payment(tmp_path, rented_catalog,
                                                                                  capsys):
    """Breaker3 R1, the payment after the return: pay -> pre_b -> pay (600.00
    carried back), a 100.00 payment on 12-02 10:00 pays the 1.20 call
    (closing credit 698.80, the refund's bound), then a refund of 698.80 on
    12-02 11:00: 600.00 from the carried credit, 98.80 from the payment.
    Hand: received 700.00, refunded 698.80, charged 1.20: the call stays
    paid (paid_to_charges 1.20), closing credit 0, nothing due or re-opened.
    (The ledger shows 1.20 more than the statement before and after the
    refund: at the change it carried 0 of the -1.20 call debt, which stayed
    on the bill; not this finding.)"""
    store, ops = _pay_pre_b_and_back(tmp_path, "pay")
    ops.top_up("t", "acme", 100 * YUAN, at_ms=at(12, 2, 10))
    dec, = acme_statements(tmp_path, store, capsys, months=("2026-12",))
    assert (dec["closing_credit_minor"], dec["amount_due_minor"]) == (6988 * 1000, 0)
    ops.refund("rf", "acme", 6988 * 1000, "leaving", at_ms=at(12, 2, 11))
    dec, = acme_statements(tmp_path, store, capsys, months=("2026-12",))
    assert (dec["closing_credit_minor"], dec["paid_to_charges_minor"], dec["payments_reopened_minor"]) == (
        0, 12_000, 0)
    assert (dec["amount_due_minor"], dec["outstanding_minor"]) == (0, 0)
