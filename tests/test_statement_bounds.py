"""Refunds and payment reversals bounded by every statement from their
month to now (breaker N11 F13 = newcomer N11 F9: a postpaid refund refused
today was accepted dated back to an earlier month, paying back money later
bills applied), a prepaid refund netted against what the statements leave
unpaid (newcomer N11 F6), and a mistyped bill payment reversed (breaker N11
F11). README "Money rules"."""
import json

import pytest
from click.testing import CliRunner

from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog, month_start
from rating_core.accounts.operations import add_months_ms, now_ms
from rating_core.billing.sources import live_statements
from rating_core.errors import Refused
from rating_core.store import Store
from test_billing import CATALOG, YUAN

DAY = 86_400_000


def _month(ms: int) -> str:
    from rating_core.billing.statements import month_index, month_label
    import numpy as np

    return month_label(int(month_index(np.array([ms], np.int64))[0]))


@pytest.fixture
def world(tmp_path):
    """CATALOG with `tea` (prepaid, minimum 40.00, rental 5.00) starting two
    months ago and every account cut over then: three months billed, the
    current one included."""
    first = add_months_ms(month_start(now_ms()), -2)
    start = _month(first) + "-01"
    text = CATALOG.replace("package_start: 2026-10-15", f"package_start: {start}")
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    Store(tmp_path / "store").compile(tmp_path / "c.yaml", activate=True)
    ops = Accounts.open(tmp_path / "store")
    import_catalog(ops, tmp_path / "c.yaml", billing_from_ms=first)
    try:
        yield ops, first
    finally:
        ops.ledger.close()


def _months(ops, account):
    return [(s.month, s.amount_due, s.closing_credit, s.payments_carried_out)
            for s in live_statements(ops, account, None)]


def test_a_backdated_postpaid_refund_is_bounded_by_every_later_statement(world):
    # breaker N11 F13 / newcomer N11 F9: `bun` (bundle, rental 20.00 a month) pays 100.00 in
    # the first month; the three rentals applied 60.00, so 40.00 is refundable today. Dated
    # back to the first month, the refund was bounded by that month's closing credit (80.00)
    # only, and re-opened the later months' paid rentals.
    ops, first = world
    ops.top_up("t-1", "bun", 100 * YUAN, at_ms=first + 4 * DAY + 36_000_000)
    assert [m[2] for m in _months(ops, "bun")] == [80 * YUAN, 60 * YUAN, 40 * YUAN]
    now_month = _month(now_ms())
    message = (r"refundable credit is 40\.00 yuan: the statements applied 60\.00 yuan of the ledger's "
               rf"100\.00 yuan to bills \(rental, minimums, features; the bills up to {now_month} applied all but "
               r"40\.00 yuan\); cannot refund 41\.00 yuan")
    with pytest.raises(Refused, match=message) as e:
        ops.refund("r-1", "bun", 41 * YUAN, "overpaid")
    assert e.value.reason == "insufficient_credit"
    for i, at in enumerate((first + 19 * DAY, add_months_ms(first, 1) + 3 * DAY)):  # back-dated: the same bound
        with pytest.raises(Refused, match=message):
            ops.refund(f"r-2{i}", "bun", 41 * YUAN, "overpaid", at_ms=at)
    assert ops.refund("r-3", "bun", 40 * YUAN, "overpaid", at_ms=first + 19 * DAY)["replayed"] is False
    # No bill re-opened: every month is paid, the last carries nothing.
    assert [(m[1], m[2]) for m in _months(ops, "bun")] == [(0, 40 * YUAN), (0, 20 * YUAN), (0, 0)]
    with pytest.raises(Refused, match=r"refundable credit is 0\.00 yuan"):
        ops.refund("r-4", "bun", 1 * YUAN, "overpaid", at_ms=first + 20 * DAY)


def test_a_prepaid_refund_is_netted_against_what_the_bills_leave_unpaid(world):
    # newcomer N11 F6: `tea` (prepaid, 480.00 of credit) owes 5.00 + 45.00 for the months that
    # have ended (rental; rental and minimum shortfall), its whole credit could be refunded.
    # The month in progress (45.00 so far) is no bill yet: not netted.
    ops, first = world
    assert [m[1] for m in _months(ops, "tea")] == [5 * YUAN, 45 * YUAN, 45 * YUAN]
    ended = _month(add_months_ms(first, 1))
    with pytest.raises(Refused, match=rf"refundable credit is 430\.00 yuan: the bills up to {ended} leave "
                                      r"50\.00 yuan unpaid .*netted against the credit of 480\.00 yuan; "
                                      r"record the customer's payment first \(rating400 accounts pay tea YUAN"
                       ) as e:
        ops.refund("r-1", "tea", 470 * YUAN, "overpaid")
    assert e.value.reason == "insufficient_credit"
    ops.refund("r-2", "tea", 430 * YUAN, "overpaid")
    with pytest.raises(Refused, match=r"refundable credit is 0\.00 yuan"):
        ops.refund("r-3", "tea", 1 * YUAN, "overpaid")
    ops.pay("p-1", "tea", 50 * YUAN)  # the customer pays its bills: the rest of the credit is refundable
    ops.refund("r-4", "tea", 50 * YUAN, "overpaid")
    assert ops.balance("tea")["credit_minor"] == 0
    last = live_statements(ops, "tea", None)[-1]
    assert last.earlier_unpaid - last.paid_to_earlier == 0  # the ended months' bills are paid


def test_a_mistyped_bill_payment_is_reversed_within_what_no_statement_applied(world):
    # breaker N11 F11: `pay tea 4000` keyed for 400.00 could never be corrected; refund took the
    # call credit instead. tea owes 95.00: 3905.00 of the 4000.00 is carried to later bills.
    ops, first = world
    with pytest.raises(Refused, match=r"are 0\.00 yuan \(it has no bill payment\)"):  # newcomer N12 F4
        ops.reverse_payment("v-0", "tea", 1 * YUAN, "nothing paid yet")
    ops.pay("p-1", "tea", 4000 * YUAN)
    assert _months(ops, "tea")[-1][3] == 3905 * YUAN
    with pytest.raises(Refused, match=r"bill payments of account 'tea' that no statement applied from \d{4}-\d\d "
                                      r"on are 3905\.00 yuan .*cannot reverse 3905\.01 yuan") as e:
        ops.reverse_payment("v-1", "tea", 39_050_100, "keyed 4000 for 400.00")
    assert e.value.reason == "insufficient_payments"
    with pytest.raises(Exception, match="reason: required"):
        ops.reverse_payment("v-2", "tea", 3600 * YUAN, " ")
    done = ops.reverse_payment("v-3", "tea", 3600 * YUAN, "keyed 4000 for 400.00")
    again = ops.reverse_payment("v-3", "tea", 3600 * YUAN, "keyed 4000 for 400.00")  # a retry: replayed, once
    assert not done["replayed"] and again["replayed"] and again["seq"] == done["seq"]
    assert ops.balance("tea")["credit_minor"] == 480 * YUAN  # never the call credit
    last = live_statements(ops, "tea", None)[-1]
    # A payment has no note (newcomer N11 F1: the actor read as one); its reversal's is its reason.
    assert [(p.amount_minor, p.note) for p in last.payments] == [(4000 * YUAN, ""),
                                                                  (-3600 * YUAN, "keyed 4000 for 400.00")]
    assert (last.payments_carried_out, last.amount_due) == (305 * YUAN, 0)  # 400.00 paid the 95.00 of bills
    events = [e for e in ops.events("tea") if e["operation"] == "reverse_payment"]
    assert [e["detail"]["reason"] for e in events] == ["keyed 4000 for 400.00"]
    with pytest.raises(Refused, match=r"are 305\.00 yuan"):
        ops.reverse_payment("v-4", "tea", 306 * YUAN, "x")


def test_a_backdated_reversal_never_takes_a_payment_a_later_bill_applied(world):
    ops, first = world
    ops.pay("p-1", "tea", 100 * YUAN, at_ms=first + 4 * DAY)  # carried 95, 50, 5 at the months' ends
    assert [m[3] for m in _months(ops, "tea")] == [95 * YUAN, 50 * YUAN, 5 * YUAN]
    with pytest.raises(Refused, match=rf"are 5\.00 yuan \(the bills up to {_month(now_ms())} applied the rest\)"):
        ops.reverse_payment("v-1", "tea", 6 * YUAN, "x", at_ms=first + 9 * DAY)
    ops.reverse_payment("v-2", "tea", 5 * YUAN, "overpaid", at_ms=first + 9 * DAY)
    assert [(m[1], m[3]) for m in _months(ops, "tea")] == [(0, 90 * YUAN), (0, 45 * YUAN), (0, 0)]


def test_a_bounced_payment_is_reversed_whole_and_re_opens_the_bills_it_paid(world):
    """A payment the bank recalled after the statements applied it (a
    bounced cheque) could be taken back only as far as no bill applied it
    (N11 note: "reversed only in part"). With ``reopen`` it is taken back
    whole, bounded by the bill payments made up to its date less their
    reversals, and the bills it paid are unpaid again; the credit does not
    move."""
    ops, first = world
    ops.pay("p-1", "tea", 100 * YUAN, at_ms=first + 4 * DAY)  # pays 5.00, 45.00, 45.00; 5.00 carried
    before = live_statements(ops, "tea", None)
    assert [(s.amount_due, s.payments_carried_out) for s in before] == [(0, 95 * YUAN), (0, 50 * YUAN), (0, 5 * YUAN)]
    with pytest.raises(Refused, match=r"are 5\.00 yuan .*cannot reverse 100\.00 yuan; a payment that bounced after "
                                      r"bills applied it is reversed with --reopen"):
        ops.reverse_payment("v-1", "tea", 100 * YUAN, "bounced")
    with pytest.raises(Refused, match=r"less their reversals are 100\.00 yuan; cannot reverse 100\.01 yuan") as e:
        ops.reverse_payment("v-2", "tea", 1_000_100, "bounced", reopen=True)
    assert e.value.reason == "insufficient_payments"
    from rating_core.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"^at: .*a month that has ended"):  # breaker N14 F2: dated now only
        ops.reverse_payment("v-3", "tea", 1 * YUAN, "bounced", at_ms=first + 3 * DAY, reopen=True)
    # Without reopen too (breaker N12 F15: a reversal dated before the payment it took back, in its month).
    with pytest.raises(Refused, match=r"made up to .* less their reversals are 0\.00 yuan; cannot reverse 1\.00"):
        ops.reverse_payment("v-3b", "tea", 1 * YUAN, "typo", at_ms=first + 3 * DAY)
    done = ops.reverse_payment("v-4", "tea", 100 * YUAN, "bank recalled the transfer", reopen=True)
    # newcomer N14 F3 / breaker N14 F6: the result said 95.00 (the current month's 45.00 so far
    # included) beside the statement's 50.00: one figure now, the statement's.
    assert (done["detail"]["amount_minor"], done["detail"]["reopened_minor"]) == (100 * YUAN, 50 * YUAN)
    after = live_statements(ops, "tea", None)
    # The current month re-opens the two earlier bills (5.00 + 45.00) and leaves its own 45.00 unpaid.
    last = after[-1]
    assert (last.payments_reopened, last.earlier_unpaid, last.paid_to_earlier, last.amount_due) == (
        50 * YUAN, 50 * YUAN, 0, 45 * YUAN)
    assert [s.closing_credit for s in after] == [s.closing_credit for s in before]  # never the call credit
    assert last.as_dict()["payments_reopened_minor"] == 50 * YUAN
    # Nothing is left to take back, reopen or not.
    with pytest.raises(Refused, match=r"less their reversals are 0\.00 yuan"):
        ops.reverse_payment("v-5", "tea", 1 * YUAN, "again", reopen=True)
    # A request stored before `reopen` existed keeps its digest: reopen=False is left out of it.
    from rating_core.accounts.operations import _LATER_FLAGS
    assert "reopen" in _LATER_FLAGS


def test_cli_pay_reverse_reopen(world, tmp_path):
    from rating_core.cli import cli

    ops, first = world
    ops.pay("p-1", "tea", 100 * YUAN, at_ms=first + 4 * DAY)
    store = str(ops.store.root)
    ops.ledger.close()
    runner = CliRunner()
    r = runner.invoke(cli, ["accounts", "pay", "tea", "10", "--reopen", "--store", store])
    assert r.exit_code == 2 and "--reopen" in r.output and "only with --reverse" in r.output, r.output
    r = runner.invoke(cli, ["accounts", "pay", "tea", "100", "--reverse", "--reason", "bounced", "--reopen",
                            "--store", store])
    assert r.exit_code == 0, r.output
    detail = json.loads(r.output)["detail"]
    assert (detail["amount_minor"], detail["reopened_minor"], detail["reopened_yuan"]) == (100 * YUAN, 50 * YUAN, "50.00")
    statements = tmp_path / "st"
    r = runner.invoke(cli, ["bill", "--ledger", "--account", "tea", "--store", store, "--out", str(tmp_path / "b.csv"),
                            "--statements", str(statements), "--format", "html", "--lang", "en"])
    assert r.exit_code == 0, r.output
    page = sorted(statements.glob("*.html"))[-1].read_text("utf-8")
    assert "Money taken back after bills applied it (a reversed payment, a debit): owed again (yuan)" in page
    # The reversal's own line: not a negative "payment" (newcomer N14 F9).
    assert '<td>payment reversed</td><td class="n">-100.00</td><td>bounced</td>' in page
    header = (tmp_path / "b.csv").read_text("utf-8-sig").splitlines()[0]
    assert "Money taken back after bills applied it (a reversed payment, a debit): owed again (yuan)" in header


def test_a_refused_reversal_names_the_payments_reversed_and_the_bills_that_applied_the_rest(world):
    # breaker N13 F2: a refusal said "applied the rest" (or "it has no bill payment") of payments
    # that had been reversed. tea owes 95.00: of 100.00 paid, 5.00 was reversed, the bills applied 95.00.
    ops, first = world
    ops.pay("p-1", "tea", 100 * YUAN)
    ops.reverse_payment("v-1", "tea", 5 * YUAN, "overpaid")
    with pytest.raises(Refused, match=rf"are 0\.00 yuan \(of its bill payments of 100\.00 yuan, 5\.00 yuan were "
                                      rf"reversed and the bills up to {_month(now_ms())} applied the rest\)"):
        ops.reverse_payment("v-2", "tea", 1 * YUAN, "x")


def test_accounts_balance_shows_the_bill_payments_no_statement_applied(world, capsys):
    # newcomer N13 F3: `accounts balance` showed unpaid and credit, not the bill payments carried to
    # later bills, the most `pay --reverse` takes back: a clerk had to run `bill --ledger` for it.
    # tea owes 95.00: of 4000.00 paid, 3905.00 is carried; after 3600.00 is reversed, 305.00.
    from rating_core.cli import main

    ops, first = world
    store = str(ops.store.root)
    ops.pay("p-1", "tea", 4000 * YUAN)
    ops.ledger.close()

    def position():
        with pytest.raises(SystemExit) as e:
            main(["accounts", "balance", "tea", "--store", store])
        out = capsys.readouterr().out
        assert e.value.code == 0, out
        return json.loads(out)["statements"]

    got = position()
    assert (got["month"], got["payments_carried_out_minor"], got["payments_carried_out_yuan"]) == (
        _month(now_ms()), 3905 * YUAN, "3905.00"), got
    with pytest.raises(SystemExit) as e:
        main(["accounts", "pay", "tea", "3905.01", "--reverse", "--reason", "typo", "--store", store])
    assert e.value.code == 1 and "are 3905.00 yuan" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["accounts", "pay", "tea", "3600", "--reverse", "--reason", "keyed 4000 for 400", "--store", store])
    assert e.value.code == 0
    capsys.readouterr()
    got = position()
    assert (got["payments_carried_out_minor"], got["payments_carried_out_yuan"], got["unpaid_minor"]) == (
        305 * YUAN, "305.00", 0), got


def test_one_account_s_statement_events_are_read_through_its_index_and_equal_the_full_listing(world):
    # One account's statement (accounts balance, GetBalance, GetStatement, a refund's or reversal's
    # bound) read every customer's audit log to keep its own events; it reads the account's event
    # index now: the same events, in the order recorded, as the every-event listing holds of it.
    from rating_core.accounts.view import open_view
    from rating_core.billing.sources import ledger_events

    ops, first = world
    ops.pay("p-1", "tea", 100 * YUAN, at_ms=first + 4 * DAY)
    ops.reverse_payment("v-1", "tea", 5 * YUAN, "overpaid")
    ops.top_up("t-1", "bun", 30 * YUAN)
    ops.adjust("a-1", "shop", -1 * YUAN, "correction")
    ops.number_transition("n-1", "4001000004", "suspend", "number event of tea")
    ops.change_package("c-1", "bun", "payg")
    snapshot = open_view(ops.store, ops.env)
    every = ledger_events(ops, snapshot)
    for account in ("tea", "bun", "shop", "expiring"):
        mine = ledger_events(ops, snapshot, account)
        assert mine == [e for e in every if e.account == account] and mine, account
    raw = [e for e in ops.events(None, limit=10_000) if e["account"] == "tea"]
    assert ops.account_events("tea") == raw and any(e["number"] for e in raw)
    assert ops.account_events("nobody") == []


def test_a_postpaid_account_has_no_bill_payment_to_reverse(world):
    # newcomer N14 F4 / breaker N14 F7: with --reopen the refusal said "are 0.00 yuan ... even
    # re-opening the bills they paid" and lost the top-up hint; it names what to do now, both ways.
    ops, _ = world
    ops.top_up("t-1", "shop", 50 * YUAN)
    for reopen in (False, True):
        with pytest.raises(Refused, match=r"account 'shop' has no bill payment to reverse \(`accounts pay` records "
                                          r"a prepaid account's\); a payg account's payment is a top-up: paid back "
                                          r"by `rating400 accounts refund shop YUAN` \(gRPC Refund\) as far as no "
                                          r"bill applied it, and one that bounced is taken back by `rating400 "
                                          r"accounts adjust shop -YUAN --reason TEXT` \(gRPC Adjust\), which "
                                          r"re-opens the bills it paid; cannot reverse 1\.00 yuan$") as e:
            ops.reverse_payment(f"v-{reopen}", "shop", 1 * YUAN, "x", reopen=reopen)
        assert e.value.reason == "insufficient_payments"


def test_cli_pay_reverse_and_a_negative_adjustment(world, tmp_path):
    from rating_core.cli import cli

    ops, _ = world
    ops.ledger.close()
    store = str(tmp_path / "store")
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli, ["accounts", *args, "--store", store])

    assert run("pay", "tea", "4000").exit_code == 0
    r = run("pay", "tea", "3600", "--reverse", "--reason", "keyed 4000 for 400.00", "--request-id", "v-1")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["operation"] == "reverse_payment"
    r = run("pay", "tea", "306", "--reverse", "--reason", "again")
    assert r.exit_code == 1 and "refused: insufficient_payments: " in r.output
    r = run("pay", "tea", "1", "--reason", "why")  # a reason only with --reverse
    assert r.exit_code == 2 and "--reason" in r.output and "only with --reverse" in r.output
    r = run("pay", "tea", "1", "--reverse")
    assert r.exit_code == 2 and "--reason" in r.output and "required with --reverse" in r.output, r.output
    # A debit: the amount as written, before or after the options, with or without `--`.
    for i, args in enumerate((["tea", "-1.5", "--reason", "x"], ["tea", "--", "-1.5", "--reason", "x"],
                              ["--reason", "x", "tea", "--", "-1.5"], ["tea", "--at", "2020-01-01", "-1.5", "--reason", "x"])):
        r = run("adjust", *args, "--request-id", f"a-{i}")
        if "--at" in args:  # the value of an option stays its value (refused as dated before the package)
            assert r.exit_code == 1 and "before_package_start" in r.output, r.output
            continue
        assert r.exit_code == 0, (args, r.output)
        assert json.loads(r.output)["detail"]["amount_minor"] == -15_000
    ops = Accounts.open(store)
    try:
        assert ops.balance("tea")["credit_minor"] == 480 * YUAN - 3 * 15_000
    finally:
        ops.ledger.close()


def test_a_postpaid_debit_beyond_the_unapplied_credit_re_opens_the_bills_it_paid(world):
    """newcomer N14 F1: a debit adjustment is bounded by the ledger's balance, which still holds
    the money bills applied (rentals are never debited), so `bun` (bundle, rental 20.00), having
    paid 60.00 for its three rentals, could be debited 50.00 (a bounced top-up): the closing
    credit went to -30.00 and the 30.00 was on no amount due (owed 50.00, due 20.00; paying the
    20.00 asked brought a new 30.00 bill). The money taken back re-opens the bills it paid, as a
    bounced bill payment's does: payments_reopened, part of earlier unpaid."""
    ops, first = world
    ops.top_up("t-1", "bun", 60 * YUAN, at_ms=first + 4 * DAY)
    assert [(m[1], m[2]) for m in _months(ops, "bun")] == [(0, 40 * YUAN), (0, 20 * YUAN), (0, 0)]
    ops.adjust("a-1", "bun", -50 * YUAN, "bounced: bank recalled the transfer")
    got = live_statements(ops, "bun", None)
    last = got[-1]
    assert [s.closing_credit for s in got] == [40 * YUAN, 20 * YUAN, 0]
    assert (last.payments_reopened, last.earlier_unpaid, last.paid_to_earlier, last.amount_due) == (
        30 * YUAN, 30 * YUAN, 0, 20 * YUAN)
    from rating_core.billing.sources import statement_position

    assert statement_position(ops, "bun")["unpaid_minor"] == 50 * YUAN  # 60.00 of rentals, 10.00 net paid
    ops.top_up("t-2", "bun", 50 * YUAN)  # the customer pays what it owes: nothing more falls due
    last = live_statements(ops, "bun", None)[-1]
    assert (last.earlier_unpaid - last.paid_to_earlier, last.amount_due, last.closing_credit) == (0, 0, 0)
    assert statement_position(ops, "bun")["unpaid_minor"] == 0


def test_a_postpaid_debit_that_re_opens_bills_is_dated_in_the_current_month(world):
    # breaker N14 F2's rule for a debit: dated in an ended month, a debit beyond what no bill
    # applied re-opened that month's issued statement (its amount due 0.00 -> 20.00). Within
    # what no bill applied it changes no amount due, and is taken on its date.
    from rating_core.errors import InvalidInput

    ops, first = world
    ops.top_up("t-1", "bun", 100 * YUAN, at_ms=first + 4 * DAY)  # carried 80, 60, 40
    ended = add_months_ms(first, 1) + 19 * DAY
    before = _months(ops, "bun")
    with pytest.raises(InvalidInput, match=rf"^at: .* is in {_month(ended)}, a month that has ended: a debit beyond "
                                           rf"the 40\.00 yuan its statements carry unapplied from {_month(ended)} on "
                                           rf"\(the bills up to {_month(now_ms())} applied the rest\) re-opens the "
                                           rf"bills it paid, so it is dated in the current month \({_month(now_ms())}"):
        ops.adjust("a-1", "bun", -41 * YUAN, "bounced", at_ms=ended)
    assert _months(ops, "bun") == before
    ops.adjust("a-2", "bun", -40 * YUAN, "correction", at_ms=ended)
    assert [(m[1], m[2]) for m in _months(ops, "bun")] == [(0, 80 * YUAN), (0, 20 * YUAN), (0, 0)]
    ops.adjust("a-3", "bun", -5 * YUAN, "bounced")  # now: the month's own rental shows 5.00 less paid
    last = live_statements(ops, "bun", None)[-1]
    assert (last.payments_reopened, last.amount_due, last.closing_credit) == (0, 5 * YUAN, 0)


def test_a_bounced_payment_s_reversal_is_dated_in_the_current_month(world):
    # breaker N14 F2: `pay --reverse --reopen --at` in an ended month rewrote issued statements
    # (October's amount due 0.00 -> 27.64) and showed payments_reopened on none.
    from rating_core.errors import InvalidInput

    ops, first = world
    ops.pay("p-1", "tea", 100 * YUAN, at_ms=first + 4 * DAY)
    before = _months(ops, "tea")
    for at in (first + 9 * DAY, add_months_ms(first, 1) + 4 * DAY):
        with pytest.raises(InvalidInput, match=rf"^at: .* is in {_month(at)}, a month that has ended: a bounced "
                                               r"payment's reversal \(--reopen\) re-opens the bills it paid, so it "
                                               rf"is dated in the current month \({_month(now_ms())}"):
            ops.reverse_payment(f"v-{at}", "tea", 100 * YUAN, "bounced", at_ms=at, reopen=True)
    assert _months(ops, "tea") == before


def test_the_reopened_figure_of_the_operation_is_the_statement_s(world):
    """newcomer N14 F3 / breaker N14 F6: one bounced payment had three "reopened" figures. The
    operation's ``reopened_minor`` is what the reversal's month's ``payments_reopened`` grows by:
    the part beyond the bill payments that month carries in and receives. A payment made and
    bounced in the month re-opens nothing (no statement showed its bills paid): 0 both."""
    ops, first = world
    ops.pay("p-1", "tea", 100 * YUAN)  # this month: pays the 5.00 + 45.00 earlier and 45.00 so far
    done = ops.reverse_payment("v-1", "tea", 100 * YUAN, "bounced", reopen=True)
    last = live_statements(ops, "tea", None)[-1]
    assert done["detail"]["reopened_minor"] == last.payments_reopened == 0
    assert (last.earlier_unpaid, last.amount_due) == (50 * YUAN, 45 * YUAN)
    # Carried in 50.00 (a payment in an earlier month), two reversals of 30.00: 0 then 10.00.
    ops.pay("p-2", "tea", 150 * YUAN, at_ms=first + 4 * DAY)  # pays 5.00 and 45.00: 100.00 carried in
    assert live_statements(ops, "tea", None)[-1].payments_carried_in == 100 * YUAN
    got = [ops.reverse_payment(f"v-{i}", "tea", 60 * YUAN, "bounced", reopen=True)["detail"]["reopened_minor"]
           for i in (2, 3)]
    last = live_statements(ops, "tea", None)[-1]
    assert got == [0, 20 * YUAN] and sum(got) == last.payments_reopened
    assert (last.earlier_unpaid, last.amount_due, last.closing_credit) == (20 * YUAN, 45 * YUAN, 480 * YUAN)


def test_the_bill_footer_counts_the_bills_a_bounced_payment_re_opened(world, tmp_path):
    # newcomer N14 F5: "outstanding 70.00 ...: the total due, less 40.00" of a total due of 80.00:
    # the bills re-opened were in no reason. tea: 100.00 paid in the first month, bounced now:
    # total due 45.00, outstanding 95.00 = 45.00 + 50.00 re-opened.
    from rating_core.cli import cli

    ops, first = world
    ops.pay("p-1", "tea", 100 * YUAN, at_ms=first + 4 * DAY)
    ops.reverse_payment("v-1", "tea", 100 * YUAN, "bounced", reopen=True)
    store = str(ops.store.root)
    ops.ledger.close()
    runner = CliRunner()
    for month in ([], ["--month", _month(now_ms())]):
        r = runner.invoke(cli, ["bill", "--ledger", "--account", "tea", "--store", store,
                                "--out", str(tmp_path / "b.csv"), *month])
        assert r.exit_code == 0, r.output
        text = " ".join(r.output.split())
        assert ("outstanding 95.00 yuan after the last month shown, every package kind: the total due, 50.00 of "
                "earlier bills re-opened by payments taken back after bills applied them (each") in text, text
