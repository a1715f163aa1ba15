"""A late prepaid call of an account in postpaid debt now (breaker 12-02 #4
F1, HIGH).

``acme`` on ``pre_a`` (480.00 credit) makes a 10-minute call on 10-10 (1.20:
478.80 left), changes to ``pay`` on 11-15 (the 478.80 carried), is debited
480.80 (credit -2.00, within pay's credit limit), and
then an 11-10 call of the prepaid period arrives late (12 minutes at 0.12:
1.44). The kernel draws it from the account's one credit, which is below
zero: nothing is consumed, the call is arrears. The stored row said the
prepaid credit after it was -2.00 (the one balance as it stands), which the
statements' reader refuses ("a prepaid credit left is never below zero"),
and with it every statement and balance of the month, for every account.
Of prepaid credit the call leaves none: the row says 0. 1 yuan = 10000
minor units.
"""
from __future__ import annotations

from clock import clock_at
from test_late_cdrs import acme_statements, at, cdr, engine_rows, setup_store


def test_the_month_bills_after_a_late_prepaid_call_of_an_account_in_debt(tmp_path, rented_catalog, capsys):
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    engine_rows(store, [cdr("oct", at(10, 10), 10)])
    with clock_at(at(11, 20)):
        ops.change_package("to-pay", "acme", "pay", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
        ops.adjust("debit", "acme", -4808 * 1_000, "bounced payment", at_ms=at(11, 20))
    assert ops.balance("acme")["credit_minor"] == -2 * 10_000
    (row,), rejects = engine_rows(store, [cdr("late", at(11, 10), 12)])
    assert rejects == [] and row["package"] == "pre_a" and row["credit_consumed_minor"] == 0
    assert row["credit_after_minor"] == 0 and row["balance_after"] == -2 * 10_000
    (nov,) = acme_statements(tmp_path, store, capsys)
    assert nov["usage_minor"] == 14_400
