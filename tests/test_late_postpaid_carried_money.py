"""Late postpaid calls of a month billed as postpaid, committed after the
account changed to prepaid: the money paid before the change pays that
month's postpaid bill first and only the rest is carried into the prepaid
credit, so a late call moves the prepaid credit as it moves that rest
(README "Money rules", "A postpaid call's money after a change to
prepaid"). Breaker 5 findings F1 (bundle overage) and F5 (two late calls in
one commit group). test_late_cdrs.RENTED catalog: ``pay`` 0.12/min;
``bun_a`` 100 min, rental 50.00, overage 0.20/min; ``pre_b`` fee 600.00.
1 yuan = 10000 minor units. The ledger's credit (``accounts balance``) and
the statement's closing credit (``bill --ledger``) must agree.
"""
from __future__ import annotations

import pyarrow as pa
from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, setup_store

from rating_core.engine import Engine


def _bundle_changed(tmp_path, on_time_minutes):
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("on", at(11, 2), on_time_minutes)])
    with clock_at(at(11, 20)):
        ops.top_up("pay", "acme", 200 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    return store, ops, ledger


def test_a_late_bundle_overage_is_taken_from_the_carried_payment(tmp_path, rented_catalog, capsys):
    """bun_a, 200.00 paid 11-01, a 105-minute call 11-02 (5 min overage =
    1.00); change to pre_b 11-15: carried 200.00 - 50.00 - 1.00 = 149.00,
    credit 749.00. A late 10-minute call of 11-03 (all overage: 2.00) is
    paid from the payment: credit 747.00 in the statement and the ledger;
    nothing due. A second late 10-minute call (11-04): 745.00. Before: the
    ledger stayed at 749.00 (F1)."""
    store, ops, ledger = _bundle_changed(tmp_path, 105)
    assert ops.balance("acme")["credit_minor"] == 749 * YUAN
    engine_rows(store, [cdr("late", at(11, 3), 10)])
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (747 * YUAN, 0)
    assert ops.balance("acme")["credit_minor"] == 747 * YUAN
    engine_rows(store, [cdr("late2", at(11, 4), 10)])
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (745 * YUAN, 0)
    assert ops.balance("acme")["credit_minor"] == 745 * YUAN


def test_a_late_call_beyond_the_allowance_takes_only_its_overage(tmp_path, rented_catalog, capsys):
    """bun_a, 200.00 paid, an on-time 50-minute call (within the 100):
    carried 200.00 - 50.00 = 150.00, credit 750.00. A late 80-minute call
    of 11-03: 130 minutes in the month, 30 over = 6.00 overage. Hand:
    credit 744.00, nothing due. Before: the ledger stayed at 750.00 (F1)."""
    store, ops, ledger = _bundle_changed(tmp_path, 50)
    assert ops.balance("acme")["credit_minor"] == 750 * YUAN
    engine_rows(store, [cdr("late", at(11, 3), 80)])
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (744 * YUAN, 0)
    assert ops.balance("acme")["credit_minor"] == 744 * YUAN


def _payg_changed_with_2_yuan(tmp_path):
    store, ops, ledger = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(at(11, 20)):
        ops.top_up("pay", "acme", 2 * YUAN, at_ms=at(11, 1))
        ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    return store, ops


def test_two_late_calls_in_one_commit_group_take_the_carried_money_once(tmp_path, rented_catalog, capsys):
    """pay, 2.00 paid 11-01, a 1.20 call 11-10, change to pre_b 11-15: 0.80
    carried, credit 600.80. Two late 10-minute calls (11-12, 11-13; 1.20
    each) as TWO requests of one commit group (``Engine.commit_tables``, the
    server's GroupCommitter). Hand: the first takes the 0.80 (0.40 due), the
    second nothing (1.20 due): credit 600.00, 1.60 due -- as in one request.
    Before: each request read the 0.80 as committed before the group and
    took it: ledger 599.20 against the statement's 600.00 (F5)."""
    store, ops = _payg_changed_with_2_yuan(tmp_path)
    engine = Engine.open(store)
    try:
        results, error = engine.commit_tables([pa.Table.from_pylist([cdr("late1", at(11, 12), 10)]),
                                               pa.Table.from_pylist([cdr("late2", at(11, 13), 10)])])
        assert error is None, error
    finally:
        engine.close()
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (600 * YUAN, 16_000)
    assert ops.balance("acme")["credit_minor"] == 600 * YUAN


def test_two_late_calls_in_one_request_take_the_carried_money_once(tmp_path, rented_catalog, capsys):
    """The same two late calls in ONE request: credit 600.00, 1.60 due."""
    store, ops = _payg_changed_with_2_yuan(tmp_path)
    engine_rows(store, [cdr("late1", at(11, 12), 10), cdr("late2", at(11, 13), 10)])
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert (nov["closing_credit_minor"], nov["amount_due_minor"]) == (600 * YUAN, 16_000)
    assert ops.balance("acme")["credit_minor"] == 600 * YUAN
