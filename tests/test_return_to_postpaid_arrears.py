"""pay-as-you-go -> prepaid -> pay-as-you-go: the calls' debt the prepaid
time left comes back to the postpaid ledger (breaker 12-02 money F2a).

The prepaid calls spent the carried credit and more; the ledger's credit
stops at 0 and the statement bills the rest as arrears, due. Back on
pay-as-you-go the customer's top-up is a payment of the bill: the statement
applies it to the arrears first (oldest bill first). The ledger once held it
whole as credit (100.00 against the statement's 48.80). The rule now
(README "Money rules", ``Accounts._debt_back_at_change``): a postpaid
balance is the money received less the calls, so the change back opens on
the prepaid arrears, at most what the statements leave unpaid then.

Catalog ``test_late_cdrs.RENTED``: ``pay`` 0.12/min, ``pre_b`` prepaid, fee
600.00, 0.10/min. Money in minor units, 1/10000 yuan.
"""
from __future__ import annotations


from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows
from test_statement_after_change_to_prepaid import _payg_payment_then_prepaid


def test_a_top_up_after_the_return_pays_the_arrears_in_both(tmp_path, rented_catalog, capsys):
    """B3's story (``_payg_payment_then_prepaid``: 100.00 paid, a 1.20 call,
    pre_b on 11-15 carrying 98.80: 698.80; 15 prepaid calls of 500 min,
    750.00: ledger 0, 51.20 of arrears due), then back to ``pay`` on 11-18
    00:00 (carries 0) and a 100.00 top-up on 11-20. Hand: the top-up pays
    the 51.20 first: November closes on 48.80, nothing due; the ledger
    should read 48.80 (it reads 100.00)."""
    store, ops = _payg_payment_then_prepaid(tmp_path, [500] * 15)
    ops.change_package("back", "acme", "pay", effective_ms=at(11, 18, 0), at_ms=at(11, 18, 0))
    with clock_at(at(11, 20)):
        ops.top_up("t", "acme", 100 * YUAN, at_ms=at(11, 20))
    nov, = acme_statements(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (0, 488 * 1000)
    assert ops.balance("acme")["credit_minor"] == 488 * 1000


def _change_event(ops, request_id: str) -> dict:
    return next(e for e in ops.events("acme") if e["request_id"] == request_id)


def test_the_return_carries_the_arrears_as_the_postpaid_debt(tmp_path, rented_catalog, capsys):
    """The same story stopped at the return: the change to ``pay`` opens on
    -51.20 (``debt_carried_minor`` 512000 in its audit detail), the debt the
    November statement bills as due; nothing is paid yet, so both read the
    51.20 owed (statement: 51.20 due, closing 0)."""
    store, ops = _payg_payment_then_prepaid(tmp_path, [500] * 15)
    ops.change_package("back", "acme", "pay", effective_ms=at(11, 18, 0), at_ms=at(11, 18, 0))
    assert ops.balance("acme")["credit_minor"] == -512 * 1000
    detail = _change_event(ops, "back")["detail"]
    assert (detail["carried_minor"], detail["debt_carried_minor"]) == (-512 * 1000, 512 * 1000)
    nov, = acme_statements(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (512 * 1000, 0)


def test_a_bill_payment_before_the_return_leaves_no_debt(tmp_path, rented_catalog, capsys):
    """The 51.20 of arrears paid with ``accounts pay`` on 11-17 (a prepaid
    account's bill payment, never credit): the return to ``pay`` carries 0,
    and the 100.00 top-up after it is all credit in the ledger. The
    statement holds the same 100.00 in two parts: its rule pays a postpaid
    month's charges from the credit money (the top-up) before the bill
    payments, so the 51.20 of the 11-17 payment is carried out to later
    bills (``payments_carried_out``) and the closing credit is 48.80;
    nothing due either way."""
    store, ops = _payg_payment_then_prepaid(tmp_path, [500] * 15)
    with clock_at(at(11, 17)):
        ops.pay("p", "acme", 512 * 1000, at_ms=at(11, 17))
    ops.change_package("back", "acme", "pay", effective_ms=at(11, 18, 0), at_ms=at(11, 18, 0))
    assert ops.balance("acme")["credit_minor"] == 0
    assert "debt_carried_minor" not in _change_event(ops, "back")["detail"]
    with clock_at(at(11, 20)):
        ops.top_up("t", "acme", 100 * YUAN, at_ms=at(11, 20))
    nov, = acme_statements(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"], nov["payments_carried_out_minor"]) == (
        0, 488 * 1000, 512 * 1000)
    assert ops.balance("acme")["credit_minor"] == 100 * YUAN


def test_a_part_payment_leaves_the_rest_as_debt(tmp_path, rented_catalog, capsys):
    """20.00 paid of the 51.20 with ``accounts pay``: 31.20 carried as
    debt, a 100.00 top-up: the ledger 68.80; the statement, as above,
    48.80 of credit and the 20.00 bill payment carried out."""
    store, ops = _payg_payment_then_prepaid(tmp_path, [500] * 15)
    with clock_at(at(11, 17)):
        ops.pay("p", "acme", 20 * YUAN, at_ms=at(11, 17))
    ops.change_package("back", "acme", "pay", effective_ms=at(11, 18, 0), at_ms=at(11, 18, 0))
    assert ops.balance("acme")["credit_minor"] == -312 * 1000
    with clock_at(at(11, 20)):
        ops.top_up("t", "acme", 100 * YUAN, at_ms=at(11, 20))
    nov, = acme_statements(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"], nov["payments_carried_out_minor"]) == (
        0, 488 * 1000, 20 * YUAN)
    assert ops.balance("acme")["credit_minor"] == 688 * 1000


def test_a_late_prepaid_call_after_the_return_adds_its_arrears_to_the_debt(tmp_path, rented_catalog, capsys):
    """The story back on ``pay`` (-51.20), then a late 100-minute call of
    11-17 (the prepaid time: pre_b 0.10/min, 10.00; the prepaid credit was
    spent, so all arrears) committed on 11-19: the statement bills 61.20
    due; the ledger takes the 10.00 too (-61.20; it stayed at -51.20). A
    100.00 payment: 38.80 in both, nothing due."""
    store, ops = _payg_payment_then_prepaid(tmp_path, [500] * 15)
    ops.change_package("back", "acme", "pay", effective_ms=at(11, 18, 0), at_ms=at(11, 18, 0))
    with clock_at(at(11, 19)):
        engine_rows(store, [cdr("late", at(11, 17), 100)])
    assert ops.balance("acme")["credit_minor"] == -612 * 1000
    nov, = acme_statements(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (612 * 1000, 0)
    with clock_at(at(11, 20)):
        ops.top_up("t", "acme", 100 * YUAN, at_ms=at(11, 20))
    nov, = acme_statements(tmp_path, store, capsys)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (0, 388 * 1000)
    assert ops.balance("acme")["credit_minor"] == 388 * 1000
