"""The live view is updated incrementally when the customer layer's
generation moves: only the accounts and numbers the operations changed are
patched. Without a routing change the result equals a full rebuild, table
by table; a routing change appends the changed numbers' routes, so the
result routes every number as a full rebuild does (checked plan by plan and
decision by decision over random operation sequences); a generation the
change log no longer holds falls back to the full rebuild."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rating_core.accounts import Accounts
from rating_core.accounts.view import build_view, open_view, update_view
from rating_core.router import Router
from rating_core.store import Ledger
from stores import compiled

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
routing_plans:
  desk:
    announcement: welcome
    blacklist: {numbers: ["13900000666"], prefixes: ["0999"]}
    groups:
      desk:
        strategy: round_robin
        overflow: night
        destinations: [{number: "13700000001", max_calls: 2}, {number: "13700000002"}, {number: "13900000009"}]
      night: {destinations: [{number: "0755-12345678", ring_timeout: 20}]}
    rules:
      - {group: desk, schedule: [{start: "09:00", end: "18:00"}]}
      - {group: night}
"""
SH = dt.timezone(dt.timedelta(hours=8))
T0 = int(dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH).timestamp() * 1000)
CALLER = "13812345678"
_ids = iter(range(10**9))


def rid():
    return f"v{next(_ids)}"


def make_ops(tmp_path):
    store = compiled(tmp_path, CATALOG)
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
    return ops, ledger


@pytest.fixture
def ops(tmp_path):
    ops, ledger = make_ops(tmp_path)
    yield ops
    ledger.close()


# Dated history an update appends (``update_view``: a changed account's
# package periods, a changed number's states, placed after the rows already
# laid out): compared per account / number as read back, not by position.
HISTORY = {"account_period_first": ("account_period_count", ("period_start_ms", "period_package", "period_expiry_ms")),
           "number_hist_first": ("number_hist_count", ("hist_ms", "hist_status"))}
HISTORY_TABLES = {name for first, (count, rows) in HISTORY.items() for name in (first, count, *rows)}


def history_of(t: dict) -> dict[str, list]:
    """Per account and per number, its history rows read back."""
    out = {}
    for first, (count, rows) in HISTORY.items():
        out[first] = [[tuple(int(t[r][i]) for r in rows) for i in range(f, f + c)]
                      for f, c in zip(t[first].tolist(), t[count].tolist())]
    return out


def same(a, b):
    assert a.generation == b.generation
    assert sorted(a.tables) == sorted(b.tables)
    for name in a.tables:
        if name not in HISTORY_TABLES:
            assert np.array_equal(np.asarray(a.tables[name]), np.asarray(b.tables[name])), name
    assert history_of(a.tables) == history_of(b.tables)
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


def test_a_bind_is_appended_not_rebuilt(ops):
    view = open_view(ops.store, ops.env)
    router = Router(view, ops.ledger, seed=1)
    ops.bind_destination(rid(), "4001234560", "13900000009", at_ms=T0)
    ops.verify_destination(rid(), "4001234560", "13900000009", "BILL", at_ms=T0)
    updated = update_view(view, ops.env)
    assert updated is not None and updated.routes_from == view.routes_id
    routes_like_a_rebuild(updated, build_view(view.base, ops.env))
    new = Router(updated, ops.ledger, seed=1, previous=router)
    assert new._plans[:len(router._plans)] == router._plans  # derived once, extended
    d = new.authorize("4001234560", CALLER, T0)
    assert [x.number for x in d.destinations] == ["13700000000", "13900000009"]


def test_unused_plans_are_compacted_by_a_rebuild(ops, monkeypatch):
    from rating_core.accounts import view as V

    monkeypatch.setattr(V, "SPARE_PLANS", 0)
    view = open_view(ops.store, ops.env)
    for k in range(3):  # each routing change leaves the number's old plan unused
        ops.set_routing(rid(), "4001234560", plan=PLAN if k % 2 == 0 else None, at_ms=T0)
        view = update_view(view, ops.env)
        assert view is not None
    assert V.route_sizes(view.tables)["plan"] == 6  # 3 numbers, 3 plans unused
    ops.set_routing(rid(), "4001234561", plan=PLAN, at_ms=T0)
    assert update_view(view, ops.env) is None  # 7 plans > 2 x 3 numbers: rebuild
    fresh = open_view(ops.store, ops.env, previous=view)
    assert V.route_sizes(fresh.tables)["plan"] == 3 and fresh.routes_from is None


def test_a_round_robin_group_left_empty_overflows(ops):
    """The desk template's round-robin group has none of its destinations
    verified on this number: the empty group offers nothing (no division by
    its zero destinations in the kernel) and the overflow group answers."""
    ops.bind_destination(rid(), "4001234560", "075512345678", at_ms=T0)
    ops.verify_destination(rid(), "4001234560", "075512345678", "BILL", at_ms=T0)
    ops.set_routing(rid(), "4001234560", template="desk", at_ms=T0)
    view = open_view(ops.store, ops.env)
    d = Router(view, ops.ledger, seed=1).authorize("4001234560", CALLER, T0)
    assert d.allow and [x.number for x in d.destinations] == ["075512345678"] and d.plan == "desk@4001234560"


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


# -- random operation sequences: the incremental view routes as a rebuild ---------------------

DESTS = ["13700000001", "13700000002", "075512345678", "13900000009"]
NUMBERS = [f"400123456{k}" for k in range(5)]  # 0-2 held by the fixture, 3-4 available
PLAN = {"groups": {"a": {"strategy": "round_robin", "destinations": [{"number": "13700000001"},
                                                                     {"number": "13900000009", "max_calls": 1}]}},
        "rules": [{"group": "a"}]}
OPS = ("bind", "verify", "unbind", "template", "plan", "hunt", "suspend", "restore", "freeze", "reclaim", "lock",
       "submit", "activate", "account_suspend", "account_restore", "caps", "top_up")


def apply(ops, op: str, n: int, a: int) -> None:
    from rating_core.errors import InvalidInput, NotFound, Refused

    number, dest, acc = NUMBERS[n], DESTS[a], f"acc{a % 3}"
    calls = {
        "bind": lambda: ops.bind_destination(rid(), number, dest, at_ms=T0),
        "verify": lambda: ops.verify_destination(rid(), number, dest, "BILL", at_ms=T0),
        "unbind": lambda: ops.unbind_destination(rid(), number, dest, at_ms=T0),
        "template": lambda: ops.set_routing(rid(), number, template="desk", at_ms=T0),
        "plan": lambda: ops.set_routing(rid(), number, plan=PLAN, at_ms=T0),
        "hunt": lambda: ops.set_routing(rid(), number, at_ms=T0),
        "lock": lambda: ops.lock_number(rid(), number, acc, at_ms=T0),
        "submit": lambda: ops.submit_number(rid(), number, at_ms=T0),
        "activate": lambda: ops.activate_number(rid(), number, "Beijing", at_ms=T0),
        "account_suspend": lambda: ops.account_transition(rid(), acc, "suspend", at_ms=T0),
        "account_restore": lambda: ops.account_transition(rid(), acc, "restore", at_ms=T0),
        "caps": lambda: ops.set_caps(rid(), number, spend_minor=a * 1000, calls=a, at_ms=T0),
        "top_up": lambda: ops.top_up(rid(), acc, 600 * 10_000, at_ms=T0),
    }
    try:
        if op in calls:
            calls[op]()
        else:
            ops.number_transition(rid(), number, op, at_ms=T0)
    except (Refused, InvalidInput, NotFound):
        pass  # a refused operation changes nothing; the sequence goes on


def plan_of(t: dict, p: int):
    """Plan ``p`` of routing tables ``t`` read back as ids-free values."""
    from rating_core.routing_layout import text_of

    if p < 0:
        return None
    T = lambda i: text_of(t, int(i))  # noqa: E731
    v = lambda name, i: int(t[name][i])  # noqa: E731
    fg, fr = v("route_plan_first_group", p), v("route_plan_first_rule", p)
    rel = lambda g: g - fg if g >= 0 else -1  # noqa: E731
    groups = []
    for g in range(fg, fg + v("route_plan_n_groups", p)):
        f = v("route_group_first_dest", g)
        dests = [(T(t["route_line_number"][t["route_dest_line"][e]]), v("route_dest_ring", e), v("route_dest_cap", e),
                  v("route_dest_weight", e), v("route_dest_class", e)) for e in range(f, f + v("route_group_n_dest", g))]
        groups.append((T(t["route_group_name"][g]), v("route_group_strategy", g), v("route_group_memory", g),
                       rel(v("route_group_overflow", g)), v("route_group_total_weight", g), dests))
    rules = []
    for r in range(fr, fr + v("route_plan_n_rules", p)):
        fs, fx = v("route_rule_sched_first", r), v("route_rule_region_first", r)
        rules.append((rel(v("route_rule_group", r)), v("route_rule_ivr", r),
                      [tuple(v(c, i) for c in ("route_sched_weekdays", "route_sched_day_kinds", "route_sched_start_min",
                                               "route_sched_end_min"))
                       for i in range(fs, fs + v("route_rule_sched_count", r))],
                      [(v("route_region_kind", i), v("route_region_id", i))
                       for i in range(fx, fx + v("route_rule_region_count", r))]))
    fi, fe, fl = v("route_plan_ivr_first", p), v("route_plan_exact_first", p), v("route_plan_list_first", p)
    ni, ne, nl = v("route_plan_ivr_count", p), v("route_plan_exact_count", p), v("route_plan_list_count", p)
    row = v("route_plan_region_row", p)
    return (T(t["route_plan_name"][p]), v("route_plan_max_hops", p), T(t["route_plan_announcement"][p]),
            T(t["route_plan_closed_announcement"][p]), v("route_plan_memory_ms", p), T(t["route_plan_menu"][p]),
            rules, groups,
            [(int(c), rel(int(g))) for c, g in zip(t["route_ivr_path"][fi:fi + ni], t["route_ivr_group"][fi:fi + ni])],
            t["route_exact_key"][fe:fe + ne].tolist(), t["route_exact_verdict"][fe:fe + ne].tolist(),
            t["route_list_starts"][fl:fl + nl].tolist(), t["route_list_values"][fl:fl + nl].tolist(),
            t["route_region_verdict"][row].tolist() if row >= 0 else None)


def routes_like_a_rebuild(view, full):
    """Every table but the routing ones equal; each number's plan equal as
    read back; one line per destination number."""
    assert view.generation == full.generation and view.meta == full.meta
    for name in full.tables:
        if not name.startswith("route_") and name != "number_routing" and name not in HISTORY_TABLES:
            assert np.array_equal(np.asarray(view.tables[name]), np.asarray(full.tables[name])), name
    assert history_of(view.tables) == history_of(full.tables)
    for a, b in zip(view.tables["number_routing"].tolist(), full.tables["number_routing"].tolist()):
        assert plan_of(view.tables, a) == plan_of(full.tables, b)
    keys = view.tables["route_line_key"]
    assert len(np.unique(keys)) == len(keys)
    assert view.numbers == full.numbers


def decisions(router):
    out = []
    for number in NUMBERS:
        for at in (T0, T0 + 10 * 3_600_000):  # in the desk schedule, and the night
            d = router.authorize(number, CALLER, at).as_dict()
            nkey = int(router.tables["number_key"][np.searchsorted(router.tables["number_key"], int(number))]) \
                if int(number) in router.tables["number_key"] else None
            lines = []
            if nkey is not None:  # what the started event applies per destination: cap, round-robin moves
                n = int(np.searchsorted(router.tables["number_key"], nkey))
                plan = int(router.tables["number_routing"][n])
                for dest in DESTS:
                    cap, moves = router._plan_line(nkey, int(dest))
                    first = int(router.tables["route_plan_first_group"][plan]) if plan >= 0 else 0
                    lines.append((cap, [(g - first, c) for g, c in moves]))
            out.append((d, lines))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 4), st.integers(0, 3)),
                                min_size=1, max_size=4), min_size=1, max_size=6))
def test_random_operations_update_as_a_rebuild_routes(tmp_path_factory, chunks):
    ops, ledger = make_ops(tmp_path_factory.mktemp("ops"))
    try:
        ops.add_numbers(rid(), NUMBERS[3:], at_ms=T0)
        view = open_view(ops.store, ops.env)
        router = Router(view, ops.ledger, seed=1)
        for chunk in chunks:
            for op, n, a in chunk:
                apply(ops, op, n, a)
            updated = update_view(view, ops.env)
            assert updated is not None  # never the full rebuild
            full = build_view(view.base, ops.env)
            routes_like_a_rebuild(updated, full)
            router = Router(updated, ops.ledger, seed=1, previous=router)
            assert decisions(router) == decisions(Router(full, ops.ledger, seed=1))
            view = updated
    finally:
        ledger.close()
