"""A package period starting at the first instant of the account's first
billed month, and package periods that would run no time (breaker2 B5, B6).

Money in minor units: 1 yuan = 10000 (``YUAN``). ``acme`` on ``pre_a``
(prepaid, fee 480.00, 0.12/min, minimum 40.00) from 2026-10-01 (imported,
``test_late_cdrs.CATALOG`` plus its pay-as-you-go packages ``pay`` and
``pay2``; ``pre_b``: fee 600.00, 0.10/min, minimum 60.00). No call or money
before December, so December is the account's first billed month.

B5 (the statement): a period starting at 00:00 on the 1st brings its fee as
the month's package credit; the first billed month opened with that
period's opening credit (fee + carried), so counted the fee twice. It now
opens with what the period carried in (``statements._opening_at_first``).
A first billed month billed as postpaid opened on 0.00 whatever its period
carried in from prepaid; it now opens with that credit too.

B6 (the operations): a change effective at the current period's start would
run that period no time, and a renewal dated at or before it would start a
period at or before the one it renews; the ledger keeps one balance per
period start, so a period replacing one at its own start shared its
balance (a renewal's fee was lost). Both are refused, naming the two dates:
``at_package_start`` (at the start), ``before_package_start`` (before).
"""
from __future__ import annotations

import json

import pytest

from clock import clock_at
from rating_core.cli import main
from rating_core.errors import Refused
from test_late_cdrs import CATALOG, PAYG, YUAN, at, cdr, engine_rows, setup_store


@pytest.fixture
def catalog(monkeypatch):
    import test_late_cdrs

    monkeypatch.setattr(test_late_cdrs, "CATALOG", CATALOG.replace("packages:\n", "packages:\n" + PAYG))


def _statement(tmp_path, store, capsys, month):
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(tmp_path / "b.parquet"), "--account",
              "acme", "--statements", str(tmp_path / "st"), "--format", "json"])
    assert e.value.code == 0, capsys.readouterr().err
    capsys.readouterr()
    return json.loads((tmp_path / "st" / f"acme-{month}.json").read_text("utf-8"))["statements"][0]


def test_a_prepaid_change_at_the_first_instant_of_the_first_billed_month_counts_the_new_fee_once(
        tmp_path, catalog, capsys):
    """pre_a -> pre_b effective 2026-12-01 00:00, a 10-minute call at 10:00
    (10 x 0.10 = 1.00). Hand: 480.00 carried + 600.00 fee - 1.00 = 1079.00.
    December opens with the 480.00 held, takes 600.00 of package credit and
    1.00 of calls: closing 1079.00, the ledger's (was: opening 1080.00,
    closing 1679.00)."""
    store, ops, _ = setup_store(tmp_path, "pre_a")
    ops.change_package("c0", "acme", "pre_b", effective_ms=at(12, 1, 0), at_ms=at(12, 1, 0))
    engine_rows(store, [cdr("a", at(12, 1, 10), 10)])
    assert ops.balance("acme")["credit_minor"] == 1079 * YUAN
    dec = _statement(tmp_path, store, capsys, "2026-12")
    assert (dec["opening_credit_minor"], dec["package_credit_minor"], dec["credit_consumed_minor"]) == (
        480 * YUAN, 600 * YUAN, 1 * YUAN)
    assert dec["closing_credit_minor"] == 1079 * YUAN


def test_a_renewal_at_the_first_instant_of_the_first_billed_month_counts_its_fee_once(tmp_path, catalog, capsys):
    """pre_a renewed at 2026-12-01 00:00, a 10-minute call at 10:00 (10 x
    0.12 = 1.20). Hand: 480.00 carried + 480.00 fee - 1.20 = 958.80, the
    ledger and the statement (opening 480.00, package credit 480.00; was:
    opening 960.00, closing 1438.80)."""
    store, ops, _ = setup_store(tmp_path, "pre_a")
    ops.renew("r0", "acme", at_ms=at(12, 1, 0))
    engine_rows(store, [cdr("a", at(12, 1, 10), 10)])
    assert ops.balance("acme")["credit_minor"] == 958_8000
    dec = _statement(tmp_path, store, capsys, "2026-12")
    assert (dec["opening_credit_minor"], dec["package_credit_minor"]) == (480 * YUAN, 480 * YUAN)
    assert dec["closing_credit_minor"] == 958_8000


def test_a_first_billed_month_billed_as_postpaid_opens_with_the_credit_carried_from_prepaid(
        tmp_path, catalog, capsys):
    """pre_a -> pay on 11-15 (before the cut-over: 480.00 carried), a
    10-minute call on 12-01 (10 x 0.12 = 1.20). December, billed as pay,
    opens with the 480.00 its period carried in and pays the call from it:
    closing 478.80, nothing due, the ledger's 478.80 (was: opening 0.00,
    1.20 due). Then pay -> pre_b on 12-10: the statement leaves 478.80
    unapplied, so it is all carried: 478.80 + 600.00 = 1078.80, ledger and
    statement (was: 478.80 taken out as applied_to_bills_minor with no bill,
    600.00)."""
    store, ops, _ = setup_store(tmp_path, "pre_a")
    ops.change_package("c0", "acme", "pay", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("a", at(12, 1, 10), 10)])
    assert ops.balance("acme")["credit_minor"] == 478_8000
    dec = _statement(tmp_path, store, capsys, "2026-12")
    assert (dec["opening_credit_minor"], dec["closing_credit_minor"], dec["amount_due_minor"]) == (
        480 * YUAN, 478_8000, 0)
    with clock_at(at(12, 10)):
        r = ops.change_package("c1", "acme", "pre_b", effective_ms=at(12, 10), at_ms=at(12, 10))
    assert (r["detail"]["carried_minor"], r["detail"]["applied_to_bills_minor"]) == (478_8000, 0)
    assert ops.balance("acme")["credit_minor"] == 1078_8000
    assert _statement(tmp_path, store, capsys, "2026-12")["closing_credit_minor"] == 1078_8000


def test_a_change_at_the_current_periods_start_is_refused_and_a_later_one_keeps_the_credit(
        tmp_path, catalog, capsys):
    """After pre_a -> pre_b at 12-01 00:00 (1079.00 after the call), a change
    to ``pay`` effective 12-01 00:00, pre_b's own start, is refused
    ``at_package_start``, both dates named, nothing stored (breaker2 B6:
    taken, pre_b ran no time and a later change to pre_b took 480.00 out of
    the ledger). Made at 12-02 08:00 instead, then back to pre_b at 09:00:
    1079.00 carried to pay, then to pre_b + 600.00 = 1679.00, the ledger
    and the statement."""
    store, ops, _ = setup_store(tmp_path, "pre_a")
    ops.change_package("c0", "acme", "pre_b", effective_ms=at(12, 1, 0), at_ms=at(12, 1, 0))
    engine_rows(store, [cdr("a", at(12, 1, 10), 10)])
    with clock_at(at(12, 2, 8)):
        with pytest.raises(Refused) as e:
            ops.change_package("c1", "acme", "pay", effective_ms=at(12, 1, 0), at_ms=at(12, 2, 8))
        assert e.value.reason == "at_package_start"
        assert str(e.value).count("2026-12-01T00:00:00+08:00") == 2 and "'pre_b'" in str(e.value), str(e.value)
        assert ops.get_account("acme")["account"]["package"] == "pre_b"
        ops.change_package("c1", "acme", "pay", effective_ms=at(12, 2, 8), at_ms=at(12, 2, 8))
        assert ops.balance("acme")["credit_minor"] == 1079 * YUAN
    with clock_at(at(12, 2, 9)):
        ops.change_package("c2", "acme", "pre_b", effective_ms=at(12, 2, 9), at_ms=at(12, 2, 9))
    assert ops.balance("acme")["credit_minor"] == 1679 * YUAN
    assert _statement(tmp_path, store, capsys, "2026-12")["closing_credit_minor"] == 1679 * YUAN


def test_a_renewal_dated_at_or_before_the_current_periods_start_is_refused(tmp_path, catalog):
    """pre_a -> pre_b made at 12-01 17:00 (effective then): ``renew --at``
    12-01 00:00 would start the renewed period before the one it renews
    (``before_package_start``), at 17:00 replace it the instant it began
    (``at_package_start``); both name the two dates and store nothing
    (credit 480.00 + 600.00 = 1080.00). A minute later it is taken:
    1080.00 + 600.00 = 1680.00."""
    store, ops, _ = setup_store(tmp_path, "pre_a")
    with clock_at(at(12, 1, 17)):
        ops.change_package("c0", "acme", "pre_b", at_ms=at(12, 1, 17))
        for when, reason in ((at(12, 1, 0), "before_package_start"), (at(12, 1, 17), "at_package_start")):
            with pytest.raises(Refused) as e:
                ops.renew("r", "acme", at_ms=when)
            assert e.value.reason == reason
            assert "2026-12-01T17:00:00+08:00" in str(e.value) and "'pre_b'" in str(e.value), str(e.value)
        assert ops.balance("acme")["credit_minor"] == 1080 * YUAN
        ops.renew("r", "acme", at_ms=at(12, 1, 17) + 60_000)
    assert ops.balance("acme")["credit_minor"] == 1680 * YUAN


def test_a_change_back_to_the_current_package_still_cancels_a_scheduled_change(tmp_path, catalog):
    """The rule is on a change's effective date; a cancel takes none: pre_a
    with a change to pre_b scheduled for 12-15 (made 12-02), then a change to
    pre_a, the current package, on 12-02: the scheduled change is dropped,
    pre_a stays with its 480.00."""
    store, ops, _ = setup_store(tmp_path, "pre_a")
    with clock_at(at(12, 2)):
        ops.change_package("c0", "acme", "pre_b", effective_ms=at(12, 15, 0), at_ms=at(12, 2))
        assert ops.get_account("acme")["account"]["pending_package"] == "pre_b"
        ops.change_package("c1", "acme", "pre_a", at_ms=at(12, 2))
    acc = ops.get_account("acme")["account"]
    assert (acc["package"], acc["pending_package"]) == ("pre_a", "")
    assert ops.balance("acme")["credit_minor"] == 480 * YUAN


def test_the_cli_refuses_a_change_at_the_current_periods_start(tmp_path, catalog, capsys):
    """`rating400 accounts change-package acme pay --effective
    2026-12-01T00:00` after pre_a -> pre_b at that instant: exit 1,
    ``refused: at_package_start:``, the start named (breaker2 B5's CLI story:
    the zero-length period let `renew --at` lose 960.00 of paid credit)."""
    store, ops, _ = setup_store(tmp_path, "pre_a")
    ops.change_package("c0", "acme", "pre_b", effective_ms=at(12, 1, 0), at_ms=at(12, 1, 0))
    with clock_at(at(12, 2, 8)), pytest.raises(SystemExit) as e:
        main(["accounts", "change-package", "acme", "pay", "--effective", "2026-12-01T00:00", "--store", str(store)])
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.startswith("refused: at_package_start: "), err
    assert "2026-12-01T00:00:00+08:00" in err
    assert ops.get_account("acme")["account"]["package"] == "pre_b"
