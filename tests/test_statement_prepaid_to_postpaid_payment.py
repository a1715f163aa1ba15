"""A month billed as prepaid (the package at its start) whose account changed
to a bundle or pay-as-you-go in it: a top-up made after the change is the
customer's payment of the bill, and pays the bill of the month it is made in
(breaker 2026-12-02 second run, F3, MEDIUM: it was counted as prepaid credit,
the closing credit went up by it and the month still asked for the whole
amount; only the next month's statement applied it).

The account ``acme`` is imported (test_late_cdrs.CATALOG with the
pay-as-you-go packages and a 50-yuan rental on ``bun_a``); November is the
first month the ledger bills. Money in 1/10000 yuan (``YUAN`` = 10000).

The story (hand): ``pre_a`` (480.00 of credit, monthly minimum 40.00,
std 0.12/min) changes to ``bun_b`` (300 min included, overage 0.15/min, no
rental) on 11-15 00:00; the 480.00 is carried into the bundle. A 310-minute
call on 11-16 is 10 minutes of overage = 1.50. November is billed as
prepaid: usage 1.50, shortfall to the minimum 40.00 - 1.50 = 38.50, charges
40.00; the carried 480.00 is November's closing credit (it pays bills from
December, the first month billed as postpaid). The ledger: 480.00 - 1.50
overage = 478.50.
"""
from __future__ import annotations

import json

import pytest

from clock import clock_at
from rating_core.cli import main
from test_late_cdrs import YUAN, acme_statements, at, cdr, engine_rows, setup_store

def _statements(tmp_path, store, capsys, formats="json"):
    """November's and December's statements (JSON) from the live ledger."""
    return acme_statements(tmp_path, store, capsys, ("2026-11", "2026-12"), formats, "en")


def _story(tmp_path, to="bun_b", call_minutes=310):
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    with clock_at(at(11, 20)):
        ops.change_package("to-new", "acme", to, effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("after", at(11, 16), call_minutes)])
    return store, ops, ledger


def _top_up(ops, amount_minor, day=20):
    with clock_at(at(11, day, 12)):
        ops.top_up(f"bill-{day}-{amount_minor}", "acme", amount_minor, at_ms=at(11, day, 12))


def _credit(ops):
    with clock_at(at(12, 2)):
        return ops.balance("acme")["credit_minor"]


def test_f3b_a_postpaid_payment_pays_the_bill_of_a_month_begun_prepaid(tmp_path, rented_catalog, capsys):
    """As f3: the customer, bun_b since 11-15, pays November's amount due with
    a top-up on 11-20 (``accounts pay`` is refused not_prepaid: "its payment
    is a top-up"). The statement counted it as prepaid credit (closing credit
    up by the payment) and still asked for the whole amount."""
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    with clock_at(at(11, 20)):
        ops.change_package("to-bun", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("over", at(11, 16), 310)])
    nov, _ = _statements(tmp_path, store, capsys)
    assert nov["amount_due_minor"] > 0
    with clock_at(at(11, 20, 12)):
        ops.top_up("bill", "acme", nov["amount_due_minor"], at_ms=at(11, 20, 12))
    nov, _ = _statements(tmp_path, store, capsys)
    assert nov["outstanding_minor"] == 0


def test_the_payment_settles_the_month_and_leaves_the_credit_as_it_was(tmp_path, rented_catalog, capsys):
    """Hand: November charges 1.50 + 38.50 = 40.00; the 40.00 top-up of 11-20
    pays them: amount due 0, outstanding 0, closing credit 480.00 (not
    520.00). December opens with 480.00, owes nothing earlier. The ledger:
    478.50 + 40.00 = 518.50, which is the closing credit plus the 38.50 of
    minimum shortfall the payment paid: the ledger debits calls (the 1.50
    overage) but never a fee, as in any postpaid month (next test)."""
    store, ops, _ = _story(tmp_path)
    nov, dec = _statements(tmp_path, store, capsys)
    assert (nov["package_kind"], nov["usage_minor"], nov["minimum_topup_minor"], nov["charges_minor"],
            nov["amount_due_minor"], nov["closing_credit_minor"]) == (
        "prepaid", 15000, 385000, 40 * YUAN, 40 * YUAN, 480 * YUAN)
    assert _credit(ops) == 4785000  # 480.00 - 1.50
    _top_up(ops, 40 * YUAN)
    nov, dec = _statements(tmp_path, store, capsys, "json,html")
    # The printable statement's credit section adds up: 480.00 + 40.00 - 40.00 paid towards the charges.
    html = " ".join((tmp_path / "st" / "acme-2026-11.html").read_text("utf-8").split())
    assert "Paid towards this month&#39;s charges (yuan)</td><td class=\"n\">-40.00" in html, html
    assert (nov["top_ups_total_minor"], nov["paid_to_charges_minor"], nov["amount_due_minor"],
            nov["outstanding_minor"], nov["closing_credit_minor"]) == (40 * YUAN, 40 * YUAN, 0, 0, 480 * YUAN)
    assert (dec["opening_credit_minor"], dec["earlier_unpaid_minor"], dec["paid_to_earlier_minor"],
            dec["closing_credit_minor"], dec["outstanding_minor"]) == (480 * YUAN, 0, 0, 480 * YUAN, 0)
    assert _credit(ops) == 5185000  # 478.50 + 40.00
    assert _credit(ops) - dec["closing_credit_minor"] == nov["minimum_topup_minor"]  # 38.50, the fee it paid


def test_an_ordinary_bundle_month_holds_the_same_identity(tmp_path, rented_catalog, capsys):
    """bun_a all month (rental 50.00, 100 min, overage 0.20): a 105-minute
    call (5 min overage = 1.00) and a 51.00 top-up on 11-20 pay November's
    51.00: due 0, closing credit 0.00; the ledger 0 - 1.00 + 51.00 = 50.00,
    the closing credit plus the 50.00 rental the payment paid."""
    store, ops, _ = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("over", at(11, 2), 105)])
    _top_up(ops, 51 * YUAN)
    nov, _ = _statements(tmp_path, store, capsys)
    assert (nov["charges_minor"], nov["amount_due_minor"], nov["closing_credit_minor"]) == (51 * YUAN, 0, 0)
    assert _credit(ops) - nov["closing_credit_minor"] == nov["rental_minor"] == 50 * YUAN


def test_a_part_payment_leaves_the_rest_due_and_december_pays_it_from_the_carried_credit(tmp_path, rented_catalog,
                                                                                        capsys):
    """A 25.00 top-up on 11-20: November due 40.00 - 25.00 = 15.00 (outstanding
    15.00), closing credit 480.00. December (bun_b, postpaid) applies the
    carried 480.00: earlier unpaid 15.00 paid, closing 465.00."""
    store, ops, _ = _story(tmp_path)
    _top_up(ops, 25 * YUAN)
    nov, dec = _statements(tmp_path, store, capsys)
    assert (nov["paid_to_charges_minor"], nov["amount_due_minor"], nov["outstanding_minor"],
            nov["closing_credit_minor"]) == (25 * YUAN, 15 * YUAN, 15 * YUAN, 480 * YUAN)
    assert (dec["earlier_unpaid_minor"], dec["paid_to_earlier_minor"], dec["closing_credit_minor"],
            dec["outstanding_minor"]) == (15 * YUAN, 15 * YUAN, 465 * YUAN, 0)


def test_an_overpayment_is_carried_as_credit(tmp_path, rented_catalog, capsys):
    """A 100.00 top-up on 11-20: 40.00 pays November, 60.00 is left:
    closing credit 480.00 + 60.00 = 540.00, December's opening."""
    store, ops, _ = _story(tmp_path)
    _top_up(ops, 100 * YUAN)
    nov, dec = _statements(tmp_path, store, capsys)
    assert (nov["paid_to_charges_minor"], nov["amount_due_minor"], nov["closing_credit_minor"]) == (
        40 * YUAN, 0, 540 * YUAN)
    assert (dec["opening_credit_minor"], dec["closing_credit_minor"], dec["outstanding_minor"]) == (
        540 * YUAN, 540 * YUAN, 0)


def test_a_top_up_before_the_change_is_prepaid_credit_and_pays_no_bill(tmp_path, rented_catalog, capsys):
    """A 10-minute pre_a call on 11-05 (1.20 from credit; it is what makes
    November this ledger's to bill, before the cut-over) and a 100.00 top-up
    on 11-10, while pre_a: credit for calls (README "Money rules"). November:
    usage 1.20 + 1.50 = 2.70, charges 1.50 + 37.30 shortfall = 38.80, still
    due; closing credit 480.00 - 1.20 + 100.00 = 578.80; December applies
    38.80 of it (closing 540.00)."""
    store, ops, _ = setup_store(tmp_path, "pre_a")
    engine_rows(store, [cdr("before", at(11, 5), 10)])
    _top_up(ops, 100 * YUAN, day=10)
    with clock_at(at(11, 20)):
        ops.change_package("to-bun", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("after", at(11, 16), 310)])
    nov, dec = _statements(tmp_path, store, capsys)
    assert (nov["usage_minor"], nov["charges_minor"], nov["paid_to_charges_minor"], nov["amount_due_minor"],
            nov["closing_credit_minor"]) == (27000, 388000, 0, 388000, 5788000)
    assert (dec["paid_to_earlier_minor"], dec["closing_credit_minor"]) == (388000, 540 * YUAN)


def test_a_payment_taken_back_by_a_debit_pays_nothing(tmp_path, rented_catalog, capsys):
    """The 40.00 top-up of 11-20 bounces: ``adjust -40.00`` on 11-21. November
    is due 40.00 again, closing credit 480.00 (the debit took the payment,
    not the carried credit)."""
    store, ops, _ = _story(tmp_path)
    _top_up(ops, 40 * YUAN)
    with clock_at(at(11, 21, 12)):
        ops.adjust("bounced", "acme", -40 * YUAN, "top-up bounced", at_ms=at(11, 21, 12))
    nov, _ = _statements(tmp_path, store, capsys)
    assert (nov["paid_to_charges_minor"], nov["amount_due_minor"], nov["closing_credit_minor"]) == (
        0, 40 * YUAN, 480 * YUAN)


def test_a_change_to_payg_pays_its_calls_from_the_credit_and_the_bill_from_the_payment(tmp_path, rented_catalog, capsys):
    """pre_a -> pay (std 0.12) on 11-15; a 10-minute call on 11-16 = 1.20,
    debited from the carried credit (README "Late CDRs"): November's charges
    are the 38.80 shortfall (40.00 - 1.20). A 38.80 top-up pays them: due 0,
    closing credit 480.00 - 1.20 = 478.80; the ledger 478.80 + 38.80 =
    517.60 (the shortfall again the difference)."""
    store, ops, _ = _story(tmp_path, to="pay", call_minutes=10)
    nov, _ = _statements(tmp_path, store, capsys)
    assert (nov["credit_consumed_minor"], nov["charges_minor"], nov["amount_due_minor"]) == (
        12000, 388000, 388000)
    _top_up(ops, 388000)
    nov, dec = _statements(tmp_path, store, capsys)
    assert (nov["paid_to_charges_minor"], nov["amount_due_minor"], nov["outstanding_minor"],
            nov["closing_credit_minor"]) == (388000, 0, 0, 4788000)
    assert (dec["opening_credit_minor"], dec["closing_credit_minor"]) == (4788000, 4788000)
    assert _credit(ops) == 5176000
    assert _credit(ops) - nov["closing_credit_minor"] == nov["minimum_topup_minor"]


def test_pay_is_refused_for_the_postpaid_account_and_its_top_up_settles_the_bill(tmp_path, rented_catalog, capsys):
    """The CLI story: `accounts pay` of the bundle account is refused
    not_prepaid (its kind now decides the word; its payment is a top-up),
    `accounts top-up` of the 40.00 pays November's bill, and `accounts
    balance` shows nothing unpaid and the statements' credit 480.00."""
    store, ops, _ = _story(tmp_path)
    with clock_at(at(11, 20, 12)):
        with pytest.raises(SystemExit) as e:
            main(["accounts", "pay", "acme", "40", "--store", str(store)])
        assert e.value.code != 0
        assert "not_prepaid" in capsys.readouterr().err
        with pytest.raises(SystemExit) as e:
            main(["accounts", "top-up", "acme", "40", "--store", str(store)])
        assert e.value.code == 0
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(["accounts", "balance", "acme", "--store", str(store)])
        assert e.value.code == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["credit_minor"], shown["statements"]["month"], shown["statements"]["unpaid_minor"],
            shown["statements"]["credit_minor"]) == (5185000, "2026-11", 0, 480 * YUAN)


def test_a_payment_after_a_return_to_a_bundle_pays_the_month_begun_as_a_bundle(tmp_path, rented_catalog, capsys):
    """The mirror month: bun_a (rental 50.00) at November's start, a
    105-minute call on 11-02 (5 min overage = 1.00), pre_a from 11-10, bun_b
    (no rental) from 11-20: November is billed as a bundle, charges 50.00 +
    1.00 = 51.00. A 51.00 top-up on 11-25, made while bun_b, is a payment
    again (before, only top-ups before the change to pre_a were): due 0,
    outstanding 0, and the closing credit is what it was before the payment."""
    store, ops, _ = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("over", at(11, 2), 105)])
    with clock_at(at(11, 10)):
        ops.change_package("to-pre", "acme", "pre_a", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0))
    with clock_at(at(11, 20)):
        ops.change_package("to-bun", "acme", "bun_b", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0))
    nov, _ = _statements(tmp_path, store, capsys)
    assert (nov["package_kind"], nov["charges_minor"], nov["amount_due_minor"]) == ("bundle", 51 * YUAN, 51 * YUAN)
    credit = nov["closing_credit_minor"]
    _top_up(ops, 51 * YUAN, day=25)
    nov, dec = _statements(tmp_path, store, capsys)
    assert (nov["paid_to_charges_minor"], nov["amount_due_minor"], nov["outstanding_minor"],
            nov["closing_credit_minor"]) == (51 * YUAN, 0, 0, credit)
    assert (dec["earlier_unpaid_minor"], dec["closing_credit_minor"]) == (0, credit)
