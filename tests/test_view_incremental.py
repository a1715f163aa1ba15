"""The live view is updated incrementally when the customer layer's
generation moves: only the accounts and numbers the operations changed are
patched, and the result equals a full rebuild, table by table; changes the
patch cannot express fall back to the full rebuild."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from rating_core.accounts import Accounts
from rating_core.accounts.view import build_view, open_view, update_view
from rating_core.router import Router
from rating_core.store import Ledger, Store

CATALOG = """
name: view-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  pre_480: {kind: prepaid, fee: 480, period_months: 12, rates: [{rate: std}]}
  payg: {kind: payg, rates: [{rate: std}]}
customer_rules: {top_up_min: 600, top_up_min_months: 3, restore_months: 3, reclaim_months: 6, cooling_days: 90}
"""
SH = dt.timezone(dt.timedelta(hours=8))
T0 = int(dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH).timestamp() * 1000)
CALLER = "13812345678"
_ids = iter(range(10**9))


def rid():
    return f"v{next(_ids)}"


@pytest.fixture
def ops(tmp_path):
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    store = Store(tmp_path / "store")
    store.compile(tmp_path / "catalog.yaml", activate=True)
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(store, ledger)
    for k in range(3):
        acc, number = f"acc{k}", f"400123456{k}"
        ops.open_account(rid(), acc, f"Company {k}", at_ms=T0)
        ops.submit_documents(rid(), acc, [("business_licence", "B"), ("legal_representative_id", "I")], at_ms=T0)
        ops.review_realname(rid(), acc, True, at_ms=T0)
        ops.subscribe(rid(), acc, "pre_480", start_ms=T0 - 86_400_000, at_ms=T0)
        ops.add_numbers(rid(), [number], at_ms=T0)
        ops.lock_number(rid(), number, acc, at_ms=T0)
        ops.submit_number(rid(), number, at_ms=T0)
        ops.activate_number(rid(), number, "Shenzhen", at_ms=T0)
        ops.bind_destination(rid(), number, f"1370000000{k}", at_ms=T0)
        ops.verify_destination(rid(), number, f"1370000000{k}", "BILL", at_ms=T0)
    yield ops
    ledger.close()


def same(a, b):
    assert a.generation == b.generation
    assert sorted(a.tables) == sorted(b.tables)
    for name in a.tables:
        assert np.array_equal(np.asarray(a.tables[name]), np.asarray(b.tables[name])), name
    assert a.meta == b.meta


def test_updates_equal_full_rebuilds_and_skip_what_did_not_change(ops):
    view = open_view(ops.store, ops.env)
    router = Router(view, ops.ledger, seed=1)
    steps = [
        lambda: ops.account_transition(rid(), "acc1", "suspend", at_ms=T0),
        lambda: ops.set_caps(rid(), "4001234562", spend_minor=5000, calls=3, at_ms=T0),
        lambda: ops.top_up(rid(), "acc0", 600 * 10_000, at_ms=T0),  # money only: no view change
        lambda: ops.number_transition(rid(), "4001234560", "suspend", at_ms=T0),
        lambda: ops.account_transition(rid(), "acc1", "restore", at_ms=T0),
        lambda: ops.open_account(rid(), "newco", "New Co.", at_ms=T0),  # a new row
        lambda: ops.subscribe(rid(), "newco", "payg", start_ms=T0, at_ms=T0),
        lambda: ops.set_notifications(rid(), "acc2", credit_below_minor=100, at_ms=T0),
    ]
    for step in steps:
        step()
        updated = update_view(view, ops.env)
        assert updated is not None and updated is not view
        same(updated, build_view(view.base, ops.env))
        # The routing tables are shared, and the router built on the update reuses what it derived.
        assert updated.tables["route_dest_line"] is view.tables["route_dest_line"]
        router = Router(updated, ops.ledger, seed=1, previous=router)
        assert router._line_rules is not None
        view = updated
    assert update_view(view, ops.env) is view  # nothing new
    d = router.authorize("4001234561", CALLER, T0)
    assert d.allow  # acc1 restored
    assert router.authorize("4001234560", CALLER, T0).reason == "number_suspended"
    assert router.authorize("4001234562", CALLER, T0).max_duration_seconds == 240  # 0.50 yuan cap: 4 minutes


def test_routing_changes_fall_back_to_a_full_rebuild(ops):
    view = open_view(ops.store, ops.env)
    ops.bind_destination(rid(), "4001234560", "13900000009", at_ms=T0)
    ops.verify_destination(rid(), "4001234560", "13900000009", "BILL", at_ms=T0)
    assert update_view(view, ops.env) is None
    fresh = open_view(ops.store, ops.env, previous=view)  # the fallback
    same(fresh, build_view(view.base, ops.env))
    d = Router(fresh, ops.ledger, seed=1, previous=Router(view, ops.ledger, seed=1)).authorize(
        "4001234560", CALLER, T0)
    assert [x.number for x in d.destinations] == ["13700000000", "13900000009"]


def test_a_generation_without_its_log_is_rebuilt(ops):
    from rating_core.ledger import customers as C

    view = open_view(ops.store, ops.env)
    ops._run("raw", rid(), "test", T0, lambda tx: ops._result(tx))  # bumps the generation, logs nothing
    with ops.env.begin(write=True) as txn:  # remove the marker of the latest generation
        gen = C.get_counter(txn, ops.db[C.META_DB], C.GENERATION)
        txn.delete(C.change_key(gen, b"g", ""), db=ops.db[C.CHANGES_DB])
    assert update_view(view, ops.env) is None


def test_the_change_log_is_pruned_by_the_sweep(ops):
    from rating_core.ledger import customers as C

    view = open_view(ops.store, ops.env)
    ops.CHANGES_KEPT = 1
    ops.account_transition(rid(), "acc1", "suspend", at_ms=T0)
    ops.account_transition(rid(), "acc1", "restore", at_ms=T0)
    ops.sweep(T0)
    with ops.env.begin() as txn:
        gens = {C.parse_change_key(bytes(k))[0] for k in txn.cursor(db=ops.db[C.CHANGES_DB]).iternext(values=False)}
        gen = C.get_counter(txn, ops.db[C.META_DB], C.GENERATION)
    assert gens and min(gens) >= gen - 1
    assert update_view(view, ops.env) is None  # too old for the log: a full rebuild
