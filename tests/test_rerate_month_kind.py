"""The credit part of a rerating: prepaid credit on an account prepaid when it
is made, or in a month billed as prepaid
(breaker 2026-12-02 F4, HIGH): the statement split a rerating into credit
and amount due by the account's kind now, the ledger moved the credit by
the kind of the call's package -- after a change between kinds a rerating
was taken from the credit and billed as due too.

``acme`` is imported on ``pre_a`` (test_late_cdrs.CATALOG with the
pay-as-you-go packages); 1 yuan = 10000 minor units.
"""
from __future__ import annotations



from clock import clock_at
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, rerate_november, setup_store

def test_a_prepaid_call_rerated_after_a_change_to_payg_is_taken_from_the_credit_once(tmp_path, rented_catalog, capsys):
    """pre_a, a 10-minute call on 11-10 (1.20 from credit), a change to pay on
    11-15; version 2 doubles std (0.24) and November is rerated on 11-29:
    +1.20. The ledger takes it from the credit (477.60); November is billed
    as prepaid, so its statement takes the rerating from the credit too
    (closing 477.60) and bills none of it. Before: the statement split a
    rerating by the account's kind NOW (pay-as-you-go), billed the 1.20 as
    due and kept the credit at 478.80 -- charged twice."""

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    engine_rows(store, [cdr("on", at(11, 10), 10)])
    with clock_at(at(11, 20)):
        ops.change_package("to-pay", "acme", "pay", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    ledger.close()
    _, credit = rerate_november(tmp_path, store, capsys, "pre_a", {"std": "0.24"})
    (nov,) = acme_statements(tmp_path, store, capsys)
    # 480.00 - 1.20 - 1.20 = 477.60 in the ledger; the statement must close on it, with no call charge due
    assert credit == 4776 * 1000
    assert nov["closing_credit_minor"] == credit
    assert nov["amount_due_minor"] == nov["minimum_topup_minor"] + nov["rental_minor"]


def test_a_prepaid_call_of_a_payg_month_rerated_is_not_taken_from_the_credit_and_billed(tmp_path, rented_catalog, capsys):
    """breaker2 B1 (HIGH), the mirror of the first test: ``pay`` from 10-01,
    a 10-minute call on 11-10 (1.20, on November's bill), a change to pre_b
    (fee 600, 0.10/min) on 11-15, a 10-minute call on 11-20 (1.00 from the
    credit): ledger 599.00 = November's closing credit, 1.20 due. Version 2
    doubles both rates; November is rerated on 11-29: +1.20 on the payg call
    (on the bill), +1.00 on the prepaid call (from the credit, the account
    being prepaid). Hand: credit 598.00, 2.40 due. Before, the statement
    split by November's kind alone (pay-as-you-go) and billed the prepaid
    call's 1.00 as due too, while the ledger took it from the credit."""

    store, ops, ledger = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("payg", at(11, 10), 10)])
    ops.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("pre", at(11, 20), 10)])
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert ops.balance("acme")["credit_minor"] == nov["closing_credit_minor"] == 599 * YUAN  # consistent before
    assert nov["amount_due_minor"] == 12_000
    ledger.close()
    _, credit = rerate_november(tmp_path, store, capsys, "pay", {"std": "0.24", "cheap": "0.20"})
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert credit == 598 * YUAN and nov["closing_credit_minor"] == credit
    assert credit - nov["amount_due_minor"] == 5956 * 1000
