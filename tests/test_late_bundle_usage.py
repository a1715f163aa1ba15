"""Late CDRs of a bundle draw from their own period-month's allowance
(README "Late CDRs"): the ledger keeps bundle usage per package period and
month (``bundle_usage``), so the same calls committed on time or late give
the same rated rows and the same balances, and a rerating of the month after
a late commit moves nothing.

Real store, ledger (LMDB) and customer layer of ``test_late_cdrs``:
``bun_a`` (100 min included, overage 0.20/min), ``bun_b`` (300 min, 0.15).
"""
from __future__ import annotations

import pytest
import numpy as np
from hypothesis import given, strategies as st

from rating_core.ledger import Ledger, formats
from rating_core.rerate import rerate
from test_late_cdrs import at, cdr, engine_rows, setup_store

FIELDS = ("package", "billable_seconds", "bundle_seconds_consumed", "charge_minor", "overage_minor", "bundle_left_seconds")


def run(tmp_path, name, steps):
    """Commit ``steps`` in order (a list of CDR lists, or a callable taking
    the operations); the rated rows by call id and the account's credit."""
    (tmp_path / name).mkdir()
    store, ops, ledger = setup_store(tmp_path / name, "bun_a")
    rows = {}
    for step in steps:
        if callable(step):
            step(ops)
        else:
            rated, rejects = engine_rows(store, step)
            assert rejects == []
            rows.update({r["call_id"]: tuple(r[f] for f in FIELDS) for r in rated})
    ledger.close()
    ledger = Ledger(store)
    try:
        credit = ledger.stored("acme").credit_minor
    finally:
        ledger.close()
    return store, rows, credit


def to_bun_b(ops):
    ops.change_package("chg", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))


N1, N2, N3 = cdr("n1", at(11, 10), 60), cdr("n2", at(11, 12), 60), cdr("n3", at(11, 20), 60)
O1, O2, O3 = cdr("o1", at(10, 20), 60), cdr("o2", at(10, 25), 60), cdr("o3", at(11, 5), 30)

CASES = {
    # a period that ended (a package change): n2 arrives after the change
    "ended period": ([[N1], [N2], to_bun_b, [N3]], [[N1], to_bun_b, [N3], [N2]]),
    "ended period, late with the new": ([[N1], [N2], to_bun_b, [N3]], [[N1], to_bun_b, [N3, N2]]),
    "ended period, nothing used on time": ([[N1], [N2], to_bun_b, [N3]], [to_bun_b, [N3], [N1], [N2]]),
    # an earlier month of the current period: o2 (October) after November's o3
    "earlier month": ([[O1], [O2], [O3]], [[O1], [O3], [O2]]),
    "earlier month, left behind in one batch": ([[O1], [O2], [O3]], [[O1, O3], [O2]]),
    "earlier month and ended period": ([[O1], [O2], [O3], [N2], to_bun_b, [N3]],
                                       [[O1, O3], to_bun_b, [N3], [O2, N2]]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_late_and_on_time_bundle_calls_give_the_same_rows_and_balance(tmp_path, case):
    on_time, late = CASES[case]
    _, rows_on_time, credit_on_time = run(tmp_path, "on_time", on_time)
    store, rows_late, credit_late = run(tmp_path, "late", late)
    assert rows_late == rows_on_time
    # The overage of a late call committed after the change is the same as
    # on time, and so is the credit: on time it was owed before the change,
    # which between postpaid packages carries the debt (README "Money
    # rules", package change; breaker R4: it carried none, and the on-time
    # ledger read the overage higher than the late one), late it is owed
    # after it, off the credit.
    assert credit_late == credit_on_time
    # A rerating of the months under the same version agrees with the commit.
    r = rerate(store, 1, "2026-10-01", "2026-11-30", now_ms=at(11, 29))
    assert r.adjustments == []


def test_the_worked_example(tmp_path):
    """n1 uses 60 of bun_a's 100 minutes; after the change to bun_b a late
    n2 (60 min) draws the 40 left and pays 20 at 0.20 = 4.00, not 12.00."""
    _, rows, credit = run(tmp_path, "late", CASES["ended period"][1])
    assert rows["n2"] == ("bun_a", 3600, 2400, 4 * 10_000, 4 * 10_000, 0)
    assert credit == -4 * 10_000  # the overage owed, off the postpaid credit


def test_a_second_late_call_sees_the_first(tmp_path):
    """Two late calls of the same ended period-month, in two commits: the
    second draws what the first left (the usage is written back)."""
    a, b = cdr("a", at(11, 10), 70), cdr("b", at(11, 12), 70)
    _, rows, _ = run(tmp_path, "late", [to_bun_b, [a], [b]])
    assert rows["a"][2:4] == (4200, 0)
    assert rows["b"][2:4] == (1800, 8 * 10_000)  # 30 min left, 40 at 0.20


def test_a_month_left_behind_in_the_same_batch_keeps_what_it_used(tmp_path):
    """Month end: x starts 10-31 23:59:50 and is answered after midnight
    (a November call), y starts 5 s later and is answered before it (an
    October call, rated after x: late). October had 95 of 100 minutes used
    by o1, so y (10 minutes) draws 5 and pays 5 at overage (1.00)."""
    def call(call_id, start_s, answer_s, minutes):
        start = at(11, 1, 0) + start_s * 1000
        return dict(cdr(call_id, start, minutes), ivr_answer=start + answer_s * 1000,
                    agent_answer=start + answer_s * 1000, end=start + answer_s * 1000 + minutes * 60_000)
    o1 = cdr("o1", at(10, 20), 95)
    _, rows, _ = run(tmp_path, "late", [[o1], [call("x", -10, 20, 1), call("y", -5, 3, 10)]])
    assert rows["y"][2:4] == (300, 10_000)
    assert rows["x"][2:4] == (60, 0)



def test_late_calls_of_one_period_month_in_three_commits_use_their_sum(tmp_path):
    """Three late calls of one ended period-month (bun_a, 100 minutes),
    each in its own commit: the ledger's ``bundle_usage`` count of the
    month after them is the sum of their bundle seconds (each commit adds
    its call's use to the count the earlier ones wrote: the third merge
    does not keep the first count), and the third draws what the two
    before left (10 of 40 minutes free, 30 at 0.20 yuan)."""
    calls = [cdr("a", at(11, 10), 50), cdr("b", at(11, 11), 40), cdr("c", at(11, 12), 40)]
    store, rows, _ = run(tmp_path, "late", [to_bun_b] + [[c] for c in calls])
    assert [rows[c][2:4] for c in "abc"] == [(3000, 0), (2400, 0), (600, 30 * 2000)]
    ledger = Ledger(store)
    try:
        with ledger.env.begin() as txn:
            stored = list(txn.cursor(db=ledger.db[formats.BUNDLE_USAGE]).iternext(keys=False))
    finally:
        ledger.close()
    assert stored == [formats.COUNT.pack(100 * 60)]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 10**6)), min_size=1, max_size=30))
def test_merging_counts_of_a_period_month_keeps_the_largest(rows):
    """``rater._merge_usage`` of counts from several sources, any period-month
    named any number of times, in any order: one row per (key, start), its
    largest count (a count is the month's running total: usage only grows,
    so the largest is the latest; counts are never summed), sorted."""
    from rating_core.ledger.core import usage_table
    from rating_core.rater import _merge_usage

    state = usage_table()
    key, start, used = (np.array(c, np.int64) for c in zip(*rows))
    _merge_usage(state, key, start, used)
    want: dict[tuple[int, int], int] = {}
    for k, s, u in rows:
        want[(k, s)] = max(want.get((k, s), 0), u)
    assert list(zip(state["late_key"].tolist(), state["late_start"].tolist(), state["late_used"].tolist())) == \
        [(k, s, u) for (k, s), u in sorted(want.items())]
