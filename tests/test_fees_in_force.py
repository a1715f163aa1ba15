"""A month's fees come from the catalog version in force at its start
(breaker N12 F16: a catalog that raised bundle_1000's rental from 99 to 199,
activated today, re-billed October and November, ended and issued months,
at 199, and moved every refund and reversal bound built on them).
README "Monthly statements", `rating_core/billing/fees.py`."""
import json

import pytest
from click.testing import CliRunner

from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog, month_start
from rating_core.accounts.operations import add_months_ms, now_ms
from rating_core.billing.sources import live_statements
from rating_core.cli import cli
from rating_core.store import Store
from test_billing import CATALOG, YUAN
from test_statement_bounds import _month


def catalog_from(first: int) -> str:
    """CATALOG with tea's and the other accounts' package start at the
    month of ``first`` (epoch ms) and tea holding the recording feature."""
    text = CATALOG.replace("package_start: 2026-10-15", f"package_start: {_month(first)}-01")
    return text.replace("    package: pre_480\n    package_start: " + _month(first),
                        "    package: pre_480\n    features: [rec]\n    package_start: " + _month(first), 1)


@pytest.fixture
def world(tmp_path):
    """CATALOG (bun: bundle_10, rental 20.00; tea: pre_480, minimum 40.00,
    rental 5.00, recording 30.00 a month) cut over two months ago, so
    three months are billed, the current one included; then version 2
    raises bundle_10's rental to 35.00, pre_480's minimum to 60.00 and
    recording to 45.00, activated now."""
    first = add_months_ms(month_start(now_ms()), -2)
    text = catalog_from(first)
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    raised = (text.replace("overage_price: 0.10, rental: 20", "overage_price: 0.10, rental: 35")
              .replace("monthly_minimum: 40", "monthly_minimum: 60").replace("fee: 30, per: month", "fee: 45, per: month"))
    assert raised != text
    (tmp_path / "c2.yaml").write_text(raised, encoding="utf-8")
    store = Store(tmp_path / "store")
    store._activate(store.compile(tmp_path / "c.yaml"), first - 86_400_000)  # in force before the cut-over
    ops = Accounts.open(tmp_path / "store")
    import_catalog(ops, tmp_path / "c.yaml", billing_from_ms=first)
    try:
        yield ops, store, first, tmp_path
    finally:
        ops.ledger.close()


def _fees(ops, account):
    return [(s.month, s.rental, s.monthly_minimum, sum(f.amount for f in s.features))
            for s in live_statements(ops, account, None)]


def test_a_version_activated_now_prices_no_month_already_begun(world):
    ops, store, first, tmp = world
    bun, tea = _fees(ops, "bun"), _fees(ops, "tea")
    assert [r[1] for r in bun] == [20 * YUAN] * 3
    assert [r[1:] for r in tea] == [(5 * YUAN, 40 * YUAN, 30 * YUAN)] * 3
    store.compile(tmp / "c2.yaml", activate=True)
    # Before: every month, the current one too, at the new prices (bun 3 x 35.00).
    assert _fees(ops, "bun") == bun and _fees(ops, "tea") == tea
    # The same figures from `bill --ledger` (the CLI builds its own statements).
    out = tmp / "bills.json"
    result = CliRunner().invoke(cli, ["bill", "--ledger", "--store", str(tmp / "store"), "--account", "bun",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [s["rental_minor"] for s in json.loads(out.read_text("utf-8"))["statements"]] == [20 * YUAN] * 3
    # --show 0: no empty table frame, only the count left out (newcomer N14 F12).
    result = CliRunner().invoke(cli, ["bill", "--ledger", "--store", str(tmp / "store"), "--account", "bun",
                                      "--out", str(tmp / "again.json"), "--show", "0"])
    assert result.exit_code == 0 and "statement(s) ->" not in result.output, result.output
    assert "3 more statement(s) not shown" in result.output


def test_a_version_prices_the_months_from_the_one_it_was_in_force_at_the_start_of(world):
    ops, store, first, tmp = world
    v2 = store.compile(tmp / "c2.yaml")
    # Dated back (as if activated on the 10th of the month before last): the month it was
    # activated in keeps the old prices; the months after it take the new ones.
    store._activate(v2, first + 9 * 86_400_000)
    assert [r[1] for r in _fees(ops, "bun")] == [20 * YUAN, 35 * YUAN, 35 * YUAN]
    assert [r[1:] for r in _fees(ops, "tea")] == [(5 * YUAN, 40 * YUAN, 30 * YUAN)] + [(5 * YUAN, 60 * YUAN,
                                                                                          45 * YUAN)] * 2
    # Rolled back now: the months already begun keep the prices they were in force with.
    store.activate(1)
    assert [r[1] for r in _fees(ops, "bun")] == [20 * YUAN, 35 * YUAN, 35 * YUAN]


def test_activations_are_dated_and_a_store_made_before_keeps_its_version_since_the_epoch(tmp_path):
    (tmp_path / "c.yaml").write_text(CATALOG, encoding="utf-8")
    store = Store(tmp_path / "store")
    v1 = store.compile(tmp_path / "c.yaml")
    assert store.activations() == [] and store.in_force(now_ms()) is None
    store._activate(v1, 1_000)
    v2 = store.compile(tmp_path / "c.yaml")
    store._activate(v2, 5_000)
    assert store.activations() == [(1_000, v1), (5_000, v2)]
    assert [store.in_force(t) for t in (999, 1_000, 4_999, 5_000, now_ms())] == [None, v1, v1, v2, v2]
    # A store whose first activation was not dated: its version counts as in force since 0.
    old = Store(tmp_path / "old")
    o1 = old.compile(tmp_path / "c.yaml")
    with old._index.begin(write=True) as txn:
        txn.put(b"current", str(o1).encode())
    assert old.in_force(123) == o1
    o2 = old.compile(tmp_path / "c.yaml", activate=True)
    assert old.activations()[0] == (0, o1) and old.activations()[1][1] == o2


def test_catalog_list_says_when_each_version_was_activated(tmp_path):
    (tmp_path / "c.yaml").write_text(CATALOG, encoding="utf-8")
    store = Store(tmp_path / "store")
    v1 = store.compile(tmp_path / "c.yaml")
    store._activate(v1, 1_790_784_000_000)  # 2026-10-01 00:00 Asia/Shanghai
    store.compile(tmp_path / "c.yaml", activate=True)
    result = CliRunner().invoke(cli, ["catalog", "list", "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    first, second = result.output.splitlines()
    assert first.startswith("  v1") and first.endswith("  activated 2026-10-01T00:00:00+08:00")
    assert second.startswith("* v2") and "  activated 20" in second


def _allowance(ops, account):
    return [s.bundle_included_seconds for s in live_statements(ops, account, None)]


def test_a_months_bundle_allowance_is_the_one_in_force_at_its_start(world):
    """Newcomer N14 F2: after a version raising bundle_1000's included minutes
    to 2000 was activated, October (ended) showed "2000 included, 1000 minutes
    left" beside 3841.40 of overage rated under 1000. The allowance is a term
    of the package like its rental: the version in force at the month's start."""
    ops, store, first, tmp = world
    assert _allowance(ops, "bun") == [600] * 3  # bundle_10: 10 minutes
    more = (tmp / "c2.yaml").read_text("utf-8").replace("included_minutes: 10", "included_minutes: 25")
    assert "included_minutes: 25" in more
    (tmp / "c3.yaml").write_text(more, encoding="utf-8")
    v3 = store.compile(tmp / "c3.yaml", activate=True)
    assert _allowance(ops, "bun") == [600] * 3  # before: [1500] * 3, the months begun included
    out = tmp / "bills.json"
    result = CliRunner().invoke(cli, ["bill", "--ledger", "--store", str(tmp / "store"), "--account", "bun",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [s["bundle_included_seconds"] for s in json.loads(out.read_text("utf-8"))["statements"]] == [600] * 3
    # Dated back to the 10th of the first month: the months after it take the new allowance.
    store._activate(v3, first + 9 * 86_400_000)
    assert _allowance(ops, "bun") == [600, 1500, 1500]
