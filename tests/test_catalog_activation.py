"""A catalog version lacking a package (or feature) that live accounts hold,
or that a package period of the ledger names, is not activated (breaker N14
F1: a version renaming bundle_1000 was activated without a word; `bill
--ledger` then billed its five accounts as payg_015 with no rental, ended
months too, 1,485.00 gone; committed calls were charged under payg_015 and
routing denied the numbers. A rollback to a version without a package added
since did the same). README "A version must keep every package in use".
The gRPC Activate refusal is in test_accounts_server."""
import json

import pytest

from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog, month_start
from rating_core.accounts.operations import add_months_ms, now_ms
from rating_core.errors import Refused
from rating_core.store import Ledger, Store
from inprocess import cli
from test_billing import CATALOG
from test_statement_bounds import _month


@pytest.fixture
def world(tmp_path):
    """CATALOG's accounts made live (tea also holds the recording feature),
    cut over last month: bun on bundle_10, tea and expiring on pre_480, shop
    on payg."""
    first = add_months_ms(month_start(now_ms()), -1)
    text = CATALOG.replace("package_start: 2026-10-15", f"package_start: {_month(first)}-01")
    text = text.replace("    package: pre_480\n    package_start: " + _month(first),
                        "    package: pre_480\n    features: [rec]\n    package_start: " + _month(first), 1)
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    store = Store(tmp_path / "store")
    store.compile(tmp_path / "c.yaml", activate=True)
    ops = Accounts.open(tmp_path / "store")
    import_catalog(ops, tmp_path / "c.yaml", billing_from_ms=first)
    try:
        yield ops, store, text, tmp_path
    finally:
        ops.ledger.close()


def _bills(capsys, tmp, name):
    code, out, err = cli(capsys, "bill", "--ledger", "--store", tmp / "store", "--out", tmp / name)
    assert code == 0, err
    return json.loads((tmp / name).read_text("utf-8"))["statements"]


def test_a_version_renaming_a_package_in_use_is_not_activated(world, capsys):
    ops, store, text, tmp = world
    before = _bills(capsys, tmp, "before.json")
    # A rename, as a product team does: the catalog's own accounts follow it, the live one does not.
    (tmp / "renamed.yaml").write_text(text.replace("bundle_10", "bundle_10k"), encoding="utf-8")
    code, out, err = cli(capsys, "catalog", "compile", tmp / "renamed.yaml", "--store", tmp / "store", "--activate")
    assert code == 1, (out, err)  # before: 0, "-> version 2 (active)"
    assert "-> version 2" in out and "(active)" not in out
    assert err.startswith("refused: package_in_use: version 2 lacks package 'bundle_10', held by 1 account "
                          "(bun)"), err
    assert "accounts change-package" in err and "Version 1 stays active." in err
    assert store.current() == 1
    code, out, err = cli(capsys, "catalog", "activate", "2", "--store", tmp / "store")
    assert code == 1 and err.startswith("refused: package_in_use: version 2 lacks package 'bundle_10'"), err
    assert store.current() == 1
    assert _bills(capsys, tmp, "after.json") == before
    # The same check in the API every activation goes through.
    with pytest.raises(Refused) as e:
        store.activate(2)
    assert e.value.reason == "package_in_use"


def test_a_rollback_to_a_version_without_a_package_added_since_is_not_activated(world, capsys):
    ops, store, text, tmp = world
    more = text.replace("packages:\n", "packages:\n  bundle_20: {kind: bundle, included_minutes: 20, "
                                       "overage_price: 0.10, rental: 35, rates: [{rate: std}]}\n", 1)
    (tmp / "more.yaml").write_text(more, encoding="utf-8")
    code, out, err = cli(capsys, "catalog", "compile", tmp / "more.yaml", "--store", tmp / "store", "--activate")
    assert code == 0, err
    ops.change_package("cp1", "bun", "bundle_20")
    code, out, err = cli(capsys, "catalog", "activate", "1", "--store", tmp / "store")
    assert code == 1, (out, err)  # before: "version 1 is active", bun then rated and billed as payg
    assert err.startswith("refused: package_in_use: version 1 lacks package 'bundle_20', held by 1 account (bun)")
    assert store.current() == 2
    # Moved back, bun's ledger still names bundle_20 (its period ran): still refused.
    ops.change_package("cp2", "bun", "bundle_10")
    with pytest.raises(Refused, match="version 1 lacks package 'bundle_20', held by 1 account"):
        store.activate(1)
    # A change waiting for its date holds the package too.
    ops.change_package("cp3", "shop", "bundle_20", effective_ms=add_months_ms(month_start(now_ms()), 1))
    with pytest.raises(Refused, match=r"held by 2 accounts \(e.g. bun\)"):
        store.activate(1)


def test_a_version_without_a_feature_in_use_is_not_activated(world, capsys):
    ops, store, text, tmp = world
    without = text.replace("  rec: {name: Recording, fee: 30, per: month}\n", "").replace(", rec: 通话录音", "")
    without = without.replace("    features: [rec]\n", "")
    (tmp / "norec.yaml").write_text(without, encoding="utf-8")
    code, out, err = cli(capsys, "catalog", "compile", tmp / "norec.yaml", "--store", tmp / "store", "--activate")
    assert code == 1, (out, err)
    assert err.startswith("refused: feature_in_use: version 2 lacks feature 'rec', held by 1 account (tea)"), err
    assert store.current() == 1


def test_a_store_whose_accounts_are_the_catalogs_needs_no_check(tmp_path, capsys):
    """No live customer layer: a version carries its own accounts, validated with it."""
    (tmp_path / "c.yaml").write_text(CATALOG, encoding="utf-8")
    store = Store(tmp_path / "store")
    store.compile(tmp_path / "c.yaml", activate=True)
    Ledger(tmp_path / "store").close()  # a ledger (as `rate --commit` makes) without a customer layer
    gone = CATALOG.replace("  bundle_10: {kind: bundle, included_minutes: 10, overage_price: 0.10, rental: 20, "
                           "rates: [{rate: std}]}\n", "")
    gone = gone[:gone.index("  bun:\n")] + gone[gone.index("  tea:\n"):]
    (tmp_path / "gone.yaml").write_text(gone, encoding="utf-8")
    code, out, err = cli(capsys, "catalog", "compile", tmp_path / "gone.yaml", "--store", tmp_path / "store",
                         "--activate")
    assert code == 0 and "-> version 2 (active)" in out, err
