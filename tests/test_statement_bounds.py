"""Refunds and payment reversals bounded by every statement from their
month to now (breaker N11 F13 = newcomer N11 F9: a postpaid refund refused
today was accepted dated back to an earlier month, paying back money later
bills applied), a prepaid refund netted against what the statements leave
unpaid (newcomer N11 F6), and a mistyped bill payment reversed (breaker N11
F11). README "Money rules"."""
import pytest

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
               rf"100\.00 yuan to bills \(rental, features; the bills up to {now_month} applied all but "
               r"40\.00 yuan\); cannot refund 41\.00 yuan")
    with pytest.raises(Refused, match=message) as e:
        ops.refund("r-1", "bun", 41 * YUAN)
    assert e.value.reason == "insufficient_credit"
    for i, at in enumerate((first + 19 * DAY, add_months_ms(first, 1) + 3 * DAY)):  # back-dated: the same bound
        with pytest.raises(Refused, match=message):
            ops.refund(f"r-2{i}", "bun", 41 * YUAN, at_ms=at)
    assert ops.refund("r-3", "bun", 40 * YUAN, at_ms=first + 19 * DAY)["replayed"] is False
    # No bill re-opened: every month is paid, the last carries nothing.
    assert [(m[1], m[2]) for m in _months(ops, "bun")] == [(0, 40 * YUAN), (0, 20 * YUAN), (0, 0)]
    with pytest.raises(Refused, match=r"refundable credit is 0\.00 yuan"):
        ops.refund("r-4", "bun", 1 * YUAN, at_ms=first + 20 * DAY)


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
        ops.refund("r-1", "tea", 470 * YUAN)
    assert e.value.reason == "insufficient_credit"
    ops.refund("r-2", "tea", 430 * YUAN)
    with pytest.raises(Refused, match=r"refundable credit is 0\.00 yuan"):
        ops.refund("r-3", "tea", 1 * YUAN)
    ops.pay("p-1", "tea", 50 * YUAN)  # the customer pays its bills: the rest of the credit is refundable
    ops.refund("r-4", "tea", 50 * YUAN)
    assert ops.balance("tea")["credit_minor"] == 0
    last = live_statements(ops, "tea", None)[-1]
    assert last.earlier_unpaid - last.paid_to_earlier == 0  # the ended months' bills are paid
