"""Rerating the pay-as-you-go calls of a month with two pay spans that ends
prepaid (breaker7 F2, F3; README "Money rules", "Rerating"): the ledger's
credit moves by exactly what the run moves the statements' closing credit
(``rerate._follow_statement``), one rule for a higher and a lower charge,
so every path to the same prices gives the same ledger and statement.

Story ``test_breaker7_money._pay_pre_pay_pre`` (catalog
``test_late_cdrs.RENTED``): ``pay``, 100.00 paid 11-01, a 1.20 call 11-02
(``on``, first pay span: paid by the 100.00 at the change); ``pre_b``
11-10; a prepaid 1.00 call 11-12; ``pay`` again 11-20 (697.80 carried
back); a 1.20 call 11-22 (``o2``, second pay span: paid from the credit
carried back); ``pre_a`` 11-25: 1176.60 both sides. Money in 1/10000 yuan.
"""
from __future__ import annotations

import re

import pytest

from rating_core.cli import main
from test_breaker7_money import MONTHS, _credit, _pay_pre_pay_pre
from test_late_cdrs import RENTED, acme_statements, at


def _rerate(tmp_path, store, capsys, version: int, std_price: str, dry_run: bool = False):
    """``test_breaker7_money._rerate`` returning the ``RerateResult``."""
    from rating_core.rerate import rerate

    text = re.sub(r"std: {tiers: \[{price: [0-9.]+}\]}", f"std: {{tiers: [{{price: {std_price}}}]}}",
                  RENTED.replace("PACKAGE", "pay"))
    path = tmp_path / f"v{version}.yaml"
    if not path.exists():
        path.write_text(text)
        with pytest.raises(SystemExit) as e:
            main(["catalog", "compile", str(path), "--store", str(store)])
        assert e.value.code == 0, capsys.readouterr().err
    return rerate(store, version, "2026-11-01", "2026-11-30", now_ms=at(11, 29), dry_run=dry_run)


def test_a_rise_in_the_second_pay_span_is_taken_from_the_credit_as_the_statement_takes_it(
        tmp_path, rented_catalog, capsys):
    """std 0.12 -> 0.24: ``on`` and ``o2`` 1.20 -> 2.40 (+1.20 each, +2.40).

    Hand: the statement pays the month's postpaid charges from the money
    the account had for them: the 100.00 before the first change (the
    first span's charges) and the credit carried back for the second
    span's (``_after_prepaid`` ``from_carry``): 3.60 in all against 4.80
    of charges. So 1.20 is due (``on``'s rise: its bill was settled at the
    change) and 1.20 comes from the credit (``o2``'s rise): November due
    1.20, closing 1175.40 (11754000) = December's closing = the ledger.
    The run: the rows record no credit part (the statement shows the
    rerating as 2.40 on the bill and pays 1.20 of it from the credit), the
    ledger move 1.20 is on ``o2`` (the later span's carried credit pays
    last): ledger_change -12000; the summary's split: charges +2.40, prepaid
    credit -1.20, arrears (due) +1.20. A dry run says the same and moves nothing;
    running the version again writes nothing."""
    store, ops = _pay_pre_pay_pre(tmp_path)
    dry = _rerate(tmp_path, store, capsys, 2, "0.24", dry_run=True)
    assert dry.ledger_change_minor == {"acme": -12_000}
    assert _credit(ops) == 11_766_000
    result = _rerate(tmp_path, store, capsys, 2, "0.24")
    rows = {a.call_id: (a.delta_minor, a.ledger_delta_minor, a.credit_delta_minor) for a in result.adjustments}
    assert rows == {"on": (12_000, 0, 0), "o2": (12_000, 12_000, 0)}
    assert result.ledger_change_minor == {"acme": -12_000}
    change = result.by_account()["acme"]  # the summary: 2.40 more, 1.20 of it from the credit, 1.20 due
    assert (change.charge_minor, change.credit_minor, change.billed_minor, change.balance_minor) == \
        (24_000, -12_000, 12_000, -12_000)
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (12_000, 11_754_000)
    assert _credit(ops) == dec["closing_credit_minor"] == 11_754_000
    again = _rerate(tmp_path, store, capsys, 2, "0.24")
    assert (again.adjustments, again.skipped) == ([], 2)
    assert _credit(ops) == 11_754_000


@pytest.mark.parametrize("prices", [("0.24",), ("0.06", "0.24"), ("0.24", "0.12", "0.24"), ("0.24", "0.06", "0.24"),
                                    ("0.30", "0.24")])
def test_every_path_to_the_same_prices_gives_the_same_state(tmp_path, rented_catalog, capsys, prices):
    """Path independence (README "Rerating"): std rerated through each of
    ``prices`` in turn, ending at 0.24, gives test above's state: November
    due 1.20 (12000), closing 1175.40 (11754000) = December's = the ledger.

    Hand for 0.06 -> 0.24: 0.06 halves both calls (-0.60 each), both paid,
    1.20 back to the credit (1177.80 both); 0.24 (+1.80 each, +3.60) takes
    back the 1.20 the rebates gave and, as in the test above, the
    statement pays 1.20 more of the rise from the credit carried back:
    2.40 from the ledger, 1175.40, 1.20 due. Hand for 0.30 -> 0.24: 0.30
    (+1.80 each): 3.60 paid of 6.00 of charges, 2.40 due, 1.20 from the
    credit (1175.40); 0.24 (-0.60 each) lowers the unpaid bill only:
    1.20 due, the credit unchanged."""
    store, ops = _pay_pre_pay_pre(tmp_path)
    for version, price in enumerate(prices, 2):
        _rerate(tmp_path, store, capsys, version, price)
    nov, dec = acme_statements(tmp_path, store, capsys, MONTHS)
    assert (nov["amount_due_minor"], nov["closing_credit_minor"]) == (12_000, 11_754_000)
    assert _credit(ops) == dec["closing_credit_minor"] == 11_754_000
