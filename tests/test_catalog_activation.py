"""A catalog version lacking a package (or feature) that live accounts hold,
or that a package period of the ledger names, is not activated (breaker N14
F1: a version renaming bundle_1000 was activated without a word; `bill
--ledger` then billed its five accounts as payg_015 with no rental, ended
months too, 1,485.00 gone; committed calls were charged under payg_015 and
routing denied the numbers. A rollback to a version without a package added
since did the same). README "A version must keep every package in use".
The gRPC Activate refusal is in test_accounts_server."""
import json
import time

import pytest

from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog, month_start
from rating_core.accounts.operations import add_months_ms, now_ms
from rating_core.errors import InvalidInput, Refused
from rating_core.store import Ledger, Store
from inprocess import cli
from test_billing import CATALOG
from test_fees_in_force import catalog_from
from test_statement_bounds import _month


@pytest.fixture
def world(tmp_path):
    """CATALOG's accounts made live (tea also holds the recording feature),
    cut over last month: bun on bundle_10, tea and expiring on pre_480, shop
    on payg."""
    first = add_months_ms(month_start(now_ms()), -1)
    text = catalog_from(first)
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


def _bun_moved_to_a_package_version_1_lacks(world, capsys):
    """Version 2 adds bundle_20 (activated) and bun moves to it: version 1 lacks a package in use."""
    ops, store, text, tmp = world
    more = text.replace("packages:\n", "packages:\n  bundle_20: {kind: bundle, included_minutes: 20, "
                                       "overage_price: 0.10, rental: 35, rates: [{rate: std}]}\n", 1)
    (tmp / "more.yaml").write_text(more, encoding="utf-8")
    code, out, err = cli(capsys, "catalog", "compile", tmp / "more.yaml", "--store", tmp / "store", "--activate")
    assert code == 0, err
    ops.change_package("cp1", "bun", "bundle_20")
    # The next change must come a millisecond later: one made at the instant
    # bundle_20 began is refused ``at_package_start`` (CI, 2026-12-02: the
    # test's next change ran in the same millisecond on a fast machine).
    start = now_ms()
    while now_ms() <= start:
        time.sleep(0.001)


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
    _bun_moved_to_a_package_version_1_lacks(world, capsys)
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
    with pytest.raises(Refused, match=r"held by 2 accounts \(e.g. bun, no longer on it: "):
        store.activate(1)


def test_a_package_held_only_by_an_ended_period_says_so(world, capsys):
    """Issue 12 breaker (LOW): an account that held a package briefly and
    moved back blocks a rollback to a version lacking it, as intended (the
    ledger bills that period's months under it), but the refusal said
    "held by 1 account (bun)" of an account no longer on it. It names the
    ended package period and its dates (Asia/Shanghai), and why it counts."""
    import datetime as dt
    import re

    from rating_core import layout

    ops, store, text, tmp = world
    _bun_moved_to_a_package_version_1_lacks(world, capsys)
    ops.change_package("cp2", "bun", "bundle_10")
    today = dt.datetime.fromtimestamp(now_ms() / 1000, layout.LOCAL_TZ).date().isoformat()
    with pytest.raises(Refused) as e:
        store.activate(1)
    assert e.value.reason == "package_in_use"
    m = re.search(r"version 1 lacks package 'bundle_20', held by 1 account \(bun, no longer on it: its package "
                  r"period under 'bundle_20' from (\S+ \S+) to (\S+ \S+) \(Asia/Shanghai\) ended, and the "
                  r"ledger bills that period's months under it\)", e.value.message)
    assert m and m[1].startswith(today) and m[2].startswith(today), e.value.message
    code, out, err = cli(capsys, "catalog", "activate", "1", "--store", tmp / "store")
    assert code == 1 and "(bun, no longer on it: its package period under 'bundle_20' from " in err, err
    assert store.current() == 2
    # Beside an account on it now, the example named is still said to hold it by a period alone.
    ops.change_package("cp3", "shop", "bundle_20")
    with pytest.raises(Refused, match=r"held by 2 accounts \(e.g. bun, no longer on it: .*; 1 of them by an ended "
                                      r"package period alone\)"):
        store.activate(1)


def _version_2_with_bundle_20(world, capsys) -> None:
    """Version 2 (active) adds bundle_20, which version 1 lacks; nobody is on it yet."""
    ops, store, text, tmp = world
    more = text.replace("packages:\n", "packages:\n  bundle_20: {kind: bundle, included_minutes: 20, "
                                       "overage_price: 0.10, rental: 35, rates: [{rate: std}]}\n", 1)
    (tmp / "more.yaml").write_text(more, encoding="utf-8")
    code, out, err = cli(capsys, "catalog", "compile", tmp / "more.yaml", "--store", tmp / "store", "--activate")
    assert code == 0 and store.current() == 2, err


def _outcome(fn) -> str:
    try:
        fn()
    except Refused as e:
        return e.reason
    except InvalidInput as e:
        return f"invalid {e.field}"
    return "ok"


def _consistent(ops, store) -> None:
    """The active version holds every package the live accounts hold."""
    store.check_in_use(store.current())
    account = ops.get_account("bun")
    account = account.get("account", account)
    assert account["package"] in store.open(store.current()).meta["packages"], account


def test_a_package_change_racing_a_rollback_leaves_no_account_on_a_package_the_active_version_lacks(
        world, capsys, monkeypatch):
    """Issue 12 breaker: a package change checked its package against the
    active version before its ledger transaction, and an activation checked
    the ledger before its index commit: a rollback to version 1 (lacking
    bundle_20) landing in between let both pass, leaving bun on a package
    the active version lacks (billed and rated under another: the harm the
    activation check exists to prevent). Either order is now serialized:
    one of the two is refused. Here the rollback is tried after the change
    checked its package and before it writes (before: the change's own
    check in its transaction refused it; now the rollback waits for the
    change and is refused)."""
    import threading

    ops, store, text, tmp = world
    _version_2_with_bundle_20(world, capsys)
    real_write = ops.ledger.write
    results: dict[str, str] = {}

    def rollback():
        results["activate"] = _outcome(lambda: store.activate(1))

    def write_after_a_rollback():
        t = threading.Thread(target=rollback)
        t.start()
        t.join(1.0)  # before the fix it finished here, between the change's check and its write
        return real_write()

    monkeypatch.setattr(ops.ledger, "write", write_after_a_rollback)
    results["change"] = _outcome(lambda: ops.change_package("race1", "bun", "bundle_20"))
    monkeypatch.setattr(ops.ledger, "write", real_write)
    for t in threading.enumerate():
        if t is not threading.current_thread() and t.name.startswith("Thread"):
            t.join(10)
    assert results == {"change": "ok", "activate": "package_in_use"}, results
    _consistent(ops, store)


def test_a_rollback_racing_a_package_change_leaves_no_account_on_a_package_the_active_version_lacks(
        world, capsys, monkeypatch):
    """The other order: the change lands after the rollback checked the
    ledger and before it commits the index (before: both passed)."""
    import threading

    from rating_core.store import registry

    ops, store, text, tmp = world
    _version_2_with_bundle_20(world, capsys)
    real_in_use = registry.in_use
    results: dict[str, str] = {}

    def change():
        results["change"] = _outcome(lambda: ops.change_package("race2", "bun", "bundle_20"))

    t = threading.Thread(target=change)

    def in_use_then_a_change(root):
        found = real_in_use(root)
        t.start()
        t.join(1.0)  # before the fix the change committed here
        return found

    monkeypatch.setattr(registry, "in_use", in_use_then_a_change)
    results["activate"] = _outcome(lambda: store.activate(1))
    monkeypatch.setattr(registry, "in_use", real_in_use)
    t.join(10)
    assert results == {"activate": "ok", "change": "invalid package"}, results  # before: both ok
    assert store.current() == 1
    _consistent(ops, store)


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


def test_a_version_changing_a_package_s_kind_is_not_activated(world, capsys):
    """Breaker N15 F1: `payg_6s` made a bundle under the same id was activated;
    `bill` then refused the rater's own files (their credit and overage a
    pay-as-you-go call's) and the account read as a bundle one. A package in
    use keeps its kind: a new kind is a new package."""
    ops, store, text, tmp = world
    line = "  bundle_10: {kind: bundle, included_minutes: 10, overage_price: 0.10, rental: 20, rates: [{rate: std}]}"
    assert line in text
    (tmp / "kind.yaml").write_text(text.replace(line, "  bundle_10: {kind: payg, rental: 20, rates: [{rate: std}]}"),
                                   encoding="utf-8")
    code, out, err = cli(capsys, "catalog", "compile", tmp / "kind.yaml", "--store", tmp / "store", "--activate")
    assert code == 1, (out, err)
    assert err.startswith("refused: package_in_use: version 2 makes package 'bundle_10' a payg package, a bundle one "
                          "in version 1 (held by 1 account(s), e.g. bun)"), err
    assert store.current() == 1


def test_rating_or_rerating_under_a_version_lacking_a_package_in_use_is_refused(world, capsys):
    """Breaker N15 F2: `rate --version 1` and `rerate --version 1` went round
    the activation check: a bundle account's call was charged as payg_015
    and a rerate moved 1,418 calls to pay-as-you-go prices. A version read
    for the live accounts must hold their packages, as activation does."""
    ops, store, text, tmp = world
    _bun_moved_to_a_package_version_1_lacks(world, capsys)
    cdrs = tmp / "one.csv"
    cdrs.write_text("call_id,caller,number,forwarded_to,start,ivr_answer,agent_answer,end,hangup_cause\n"
                    f"v1,13812345678,4001000002,13900000000,{_month(now_ms())}-01T10:00:00+08:00,,"
                    f"{_month(now_ms())}-01T10:00:05+08:00,{_month(now_ms())}-01T10:05:00+08:00,normal_clearing\n",
                    encoding="utf-8")
    for extra in ([], ["--commit"]):
        code, out, err = cli(capsys, "rate", cdrs, "--store", tmp / "store", "--out", tmp / f"r{len(extra)}.csv",
                             "--version", "1", *extra)
        assert code == 2 and "catalog version 1 cannot rate or bill the live accounts: version 1 lacks package " \
            "'bundle_20', held by 1 account (bun)" in err, (extra, err)
    day = f"{_month(now_ms())}-01"
    code, out, err = cli(capsys, "rerate", "--version", "1", "--from", day, "--to", day, "--store", tmp / "store")
    assert code == 2 and "version" in err and "lacks package 'bundle_20'" in err, err
    # The active version rates as before.
    code, out, err = cli(capsys, "rate", cdrs, "--store", tmp / "store", "--out", tmp / "ok.csv")
    assert code == 0, err


def test_a_store_whose_accounts_are_the_catalogs_keeps_a_held_package_s_kind(tmp_path, capsys):
    """Summary finding (N16 breaker, HIGH): with no live customer layer (the
    demo's store) the kind check returned early, so a version making
    bundle_10 (held by the catalog's account bun) a payg package was
    activated and `bill` then refused the files the rater had written under
    the old one. The packages the active version's own accounts hold keep
    their kind, as a live layer's do; an unheld package may change."""
    (tmp_path / "c.yaml").write_text(CATALOG, encoding="utf-8")
    store = Store(tmp_path / "store")
    store.compile(tmp_path / "c.yaml", activate=True)
    line = "  bundle_10: {kind: bundle, included_minutes: 10, overage_price: 0.10, rental: 20, rates: [{rate: std}]}"
    assert line in CATALOG
    (tmp_path / "kind.yaml").write_text(CATALOG.replace(line, "  bundle_10: {kind: payg, rental: 20, rates: "
                                                               "[{rate: std}]}"), encoding="utf-8")
    code, out, err = cli(capsys, "catalog", "compile", tmp_path / "kind.yaml", "--store", tmp_path / "store",
                         "--activate")
    assert code == 1, (out, err)  # before: 0, "-> version 2 (active)"
    assert err.startswith("refused: package_in_use: version 2 makes package 'bundle_10' a payg package, a bundle one "
                          "in version 1 (held by 1 account(s), e.g. bun)"), err
    assert store.current() == 1
    # A package no account of the active version holds may change its kind.
    spare = CATALOG.replace("packages:\n", "packages:\n  spare: {kind: payg, rates: [{rate: std}]}\n", 1)
    (tmp_path / "spare.yaml").write_text(spare, encoding="utf-8")
    code, out, err = cli(capsys, "catalog", "compile", tmp_path / "spare.yaml", "--store", tmp_path / "store",
                         "--activate")
    assert code == 0 and "-> version 3 (active)" in out, err
    (tmp_path / "spare2.yaml").write_text(spare.replace("spare: {kind: payg,", "spare: {kind: prepaid, fee: 10,"),
                                          encoding="utf-8")
    code, out, err = cli(capsys, "catalog", "compile", tmp_path / "spare2.yaml", "--store", tmp_path / "store",
                         "--activate")
    assert code == 0 and "-> version 4 (active)" in out, err
