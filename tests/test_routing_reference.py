"""The routing kernel against the readable reference (hypothesis): random
routing plans, callers, times (2026, holidays and adjusted working days
included), IVR keys, live-call counts, cursors, caller memory, balances and
seeds; one call at a time (``decide_one``) and as a batch of simultaneous
setups (``decide_batch`` with reserve), every field of the decision."""
import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rating_core.catalog.routing import WEEKDAYS
from rating_core.catalog.schema import Catalog
from rating_core.compile import CompileIds, compile_catalog
from rating_core.compile.regions import region_source
from rating_core.routes import ivr_path_code, routing_tables, text_of
from rating_core.kernels.routing import OUTCOME_FIELDS, RoutingCore
from rating_core.layout import BILLING_START, CALLER_CLASS
from rating_core.reference import Regions
from rating_core.reference_routing import REASONS, RouteCall, RouteState, call_seed, route
from rating_core.router import number_key

BASE = {
    "name": "routing-reference",
    "destination_classes": ["mobile", "landline"],
    "destination_prefixes": {"1": "mobile", "0": "landline"},
    "time_bands": [
        {"name": "peak", "day_kinds": ["workday"], "hours": [9, 18]},
        {"name": "off"},
    ],
    "rates": {
        "peak": {"tiers": [{"price": "0.15"}], "connect_fee": "0.05"},
        "off": {"tiers": [{"price": "0.10", "increment": 6}, {"start": 60, "price": "0.08", "increment": 30}],
                "free_seconds": 5, "min_billable_seconds": 30, "rounding": "half_up"},
        "land": {"tiers": [{"price": "0.07", "unit": 60, "increment": 1}], "rounding": "down", "connect_fee": "0.01"},
    },
    "packages": {
        "pre": {"kind": "prepaid", "fee": 50, "rates": [
            {"rate": "land", "destination": "landline", "caller": "local"},
            {"rate": "peak", "destination": "mobile", "band": "peak"},
            {"rate": "off", "destination": "mobile"}]},
        "bun": {"kind": "bundle", "included_minutes": 10, "rates": [{"rate": "off", "destination": "mobile"}]},
        "payg": {"kind": "payg", "rates": [{"rate": "peak"}]},
    },
    "accounts": {
        "pre": {"package": "pre", "package_start": "2026-01-01", "numbers": [
            {"number": "4000000001", "home_city": "Shantou", "routing": "p0"},
            {"number": "4000000002", "home_city": "Shenzhen", "routing": "p1", "billing_start": "ring"},
            {"number": "4000000005", "home_city": "Shenzhen", "routing": "p0", "status": "suspended"}]},
        "bun": {"package": "bun", "package_start": "2026-01-01", "numbers": [
            {"number": "4000000003", "home_city": "Shenzhen", "routing": "p0", "billing_start": "ivr_answer"}]},
        "payg": {"package": "payg", "package_start": "2026-01-01", "numbers": [
            {"number": "4000000004", "home_city": "Shenzhen", "routing": "p1"}]},
        "late": {"package": "payg", "package_start": "2026-07-01", "numbers": [
            {"number": "4000000006", "home_city": "Shenzhen", "routing": "p0"}]},
    },
}
PLACEHOLDER = {"rules": [{"group": "g"}], "groups": {"g": {"destinations": [{"number": "13700000001"}]}}}

NUMBERS = ["4000000001", "4000000002", "4000000003", "4000000004", "4000000005", "4000000006", "4000000099"]
DESTS = ["13700000001", "13700000002", "13900000003", "075588880001", "02012345678", "9123456", "13600000009"]
CALLERS = ["13612345678", "13912345678", "13800138000", "031187654321", "075588880000", "17012345678",
           "13012345678", "13712345678", None]
REGIONS = ["Guangdong", "Jiangsu", "Beijing", "city:Shenzhen", "city:Shantou", "Hebei", "province:Chongqing"]
PREFIXES = ["13", "136", "1361234", "0755", "170", "0"]
CLOCKS = ["00:00", "06:00", "09:00", "12:30", "18:00", "22:00", "24:00"]
KEYS = ["", "1", "2", "#", "21", "22", "2#", "9", "123456", "2*"]
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
EDGES = [dt.datetime(2026, 2, 14, 10), dt.datetime(2026, 10, 1, 0), dt.datetime(2026, 9, 30, 23, 59, 59),
         dt.datetime(2026, 3, 7, 9), dt.datetime(2026, 3, 4, 17, 59, 59), dt.datetime(2026, 3, 4, 18),
         dt.datetime(2026, 2, 17, 12, 30), dt.datetime(2026, 12, 31, 23, 59, 59)]
Y2026 = (int(dt.datetime(2026, 1, 1, tzinfo=SHANGHAI).timestamp() * 1000),
         int(dt.datetime(2027, 1, 1, tzinfo=SHANGHAI).timestamp() * 1000) - 1)


@pytest.fixture(scope="module")
def base():
    cat = Catalog.model_validate({**BASE, "routing_plans": {"p0": PLACEHOLDER, "p1": PLACEHOLDER}})
    tables, meta = compile_catalog(cat)
    src = region_source()
    ids = CompileIds({a: i for i, a in enumerate(meta["accounts"])}, {}, {}, {}, {},
                     {"p0": 0, "p1": 1}, {c: i for i, c in enumerate(src.cities)}, src)
    return tables, meta, ids, Regions.from_source(src)


# -- plans ------------------------------------------------------------------------
@st.composite
def groups(draw):
    n = draw(st.integers(1, 3))
    out = {}
    for i in range(n):
        dests = draw(st.lists(st.sampled_from(DESTS), min_size=1, max_size=4, unique=True))
        strategy = draw(st.sampled_from(["sequential", "round_robin", "random", "weighted"]))
        specs = []
        if strategy == "weighted":
            cuts = sorted(draw(st.lists(st.integers(1, 99), min_size=len(dests) - 1, max_size=len(dests) - 1, unique=True)))
            weights = [b - a for a, b in zip([0] + cuts, cuts + [100])]
        for k, d in enumerate(dests):
            spec = {"number": d, "ring_timeout": draw(st.integers(10, 30))}
            if draw(st.booleans()):
                spec["max_calls"] = draw(st.integers(1, 2))
            if strategy == "weighted":
                spec["weight"] = weights[k]
            specs.append(spec)
        group = {"strategy": strategy, "caller_memory": draw(st.booleans()), "destinations": specs}
        if i + 1 < n and draw(st.booleans()):
            group["overflow"] = f"g{draw(st.integers(i + 1, n - 1))}"
        out[f"g{i}"] = group
    return out


@st.composite
def segments(draw):
    start, end = draw(st.lists(st.sampled_from(CLOCKS), min_size=2, max_size=2, unique=True))
    if start == "24:00":
        start, end = end, start
    seg = {"start": start, "end": end}
    if draw(st.booleans()):
        seg["weekdays"] = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=4, unique=True))
    if draw(st.booleans()):
        seg["day_kinds"] = draw(st.lists(st.sampled_from(["workday", "weekend", "holiday"]), min_size=1, max_size=2, unique=True))
    return seg


@st.composite
def menus(draw, names, depth=1):
    keys = draw(st.lists(st.sampled_from(["1", "2", "#"]), min_size=1, max_size=3, unique=True))
    options = []
    for k in keys:
        if depth < 2 and draw(st.booleans()):
            options.append({"key": k, "label": f"menu {k}", "menu": draw(menus(names, depth + 1))})
        else:
            options.append({"key": k, "label": f"key {k}", "group": draw(st.sampled_from(names))})
    return {"prompt": f"level {depth}", "options": options}


def leaf_paths(menu, prefix=""):
    for o in menu["options"]:
        if "menu" in o:
            yield from leaf_paths(o["menu"], prefix + o["key"])
        else:
            yield prefix + o["key"]


@st.composite
def plans(draw):
    gs = draw(groups())
    names = list(gs)
    plan = {"groups": gs, "max_hops": draw(st.integers(1, 5))}
    if draw(st.booleans()):
        plan["ivr"] = draw(menus(names))
    rules = []
    for _ in range(draw(st.integers(0, 4))):
        rule = {"group": draw(st.sampled_from(names))}
        if draw(st.booleans()):
            rule["schedule"] = draw(st.lists(segments(), min_size=1, max_size=2))
        if draw(st.booleans()):
            rule["caller_regions"] = draw(st.lists(st.sampled_from(REGIONS), min_size=1, max_size=2, unique=True))
        if "ivr" in plan and draw(st.booleans()):
            rule["ivr"] = draw(st.sampled_from(list(leaf_paths(plan["ivr"]))))
        rules.append(rule)
    if not rules and "ivr" not in plan:
        rules.append({"group": names[0]})
    plan["rules"] = rules
    for lst in ("blacklist", "whitelist"):
        plan[lst] = {
            "numbers": draw(st.lists(st.sampled_from([c for c in CALLERS if c]), max_size=2, unique=True)),
            "prefixes": draw(st.lists(st.sampled_from(PREFIXES), max_size=2, unique=True)),
            "regions": draw(st.lists(st.sampled_from(REGIONS), max_size=2, unique=True)),
        }
    for key in ("announcement", "closed_announcement"):
        if draw(st.booleans()):
            plan[key] = f"{key}.wav"
    return plan


@st.composite
def calls(draw):
    at = draw(st.one_of(st.integers(*Y2026),
                        st.sampled_from(EDGES).map(lambda d: int(d.replace(tzinfo=SHANGHAI).timestamp() * 1000))))
    month = dt.datetime.fromtimestamp(at / 1000, SHANGHAI)
    return RouteCall(
        number=draw(st.sampled_from(NUMBERS)),
        caller=draw(st.sampled_from(CALLERS)),
        at_ms=at,
        ivr_keys=draw(st.sampled_from(KEYS)),
        memory=draw(st.sampled_from(DESTS + [None])),
        credit_left=draw(st.one_of(st.integers(0, 3000), st.integers(0, 600_000))),
        bundle_used=draw(st.integers(0, 700)),
        bundle_period=draw(st.sampled_from([-1, month.year * 12 + month.month - 1, 2026 * 12])),
    )


# -- harness ------------------------------------------------------------------------
class Harness:
    def __init__(self, base, plan_docs):
        tables, meta, ids, self.regions = base
        self.catalog = Catalog.model_validate({**BASE, "routing_plans": plan_docs})
        self.tables = {**tables, **routing_tables(self.catalog, ids, tables)}
        self.meta = meta
        t = self.tables
        self.plans = [text_of(t, i) for i in t["route_plan_name"]]
        self.groups = [text_of(t, i) for i in t["route_group_name"]]
        self.lines = [text_of(t, i) for i in t["route_line_number"]]

    def arrays(self, state: RouteState):
        t = self.tables
        active = np.array([state.active.get(n, 0) for n in self.lines], np.int32)
        cursor = np.array([state.cursor.get((self.plans[p], g), 0) if p >= 0 else 0
                           for p, g in zip(t["route_group_plan"], self.groups)], np.int32)
        return active, cursor

    def columns(self, cs):
        return {
            "number_key": np.array([number_key(c.number) for c in cs], np.int64),
            "caller_key": np.array([number_key(c.caller) if c.caller else 0 for c in cs], np.int64),
            "at_ms": np.array([c.at_ms for c in cs], np.int64),
            "ivr_path": np.array([ivr_path_code(c.ivr_keys) for c in cs], np.int64),
            "memory_key": np.array([number_key(c.memory) if c.memory else 0 for c in cs], np.int64),
            "credit_left": np.array([c.credit_left for c in cs], np.int64),
            "bundle_used": np.array([c.bundle_used for c in cs], np.int64),
            "bundle_period": np.array([c.bundle_period for c in cs], np.int32),
        }

    def named(self, o: dict, dests: list) -> dict:
        t, m = self.tables, self.meta
        plan = o["plan"]
        menu = o["menu_path"]
        keys = ""
        while menu > 0:
            menu, d = divmod(menu, 13)
            keys = "0123456789*#"[d - 1] + keys
        return {
            "reason": REASONS[o["reason"]],
            "plan": self.plans[plan] if plan >= 0 else None,
            "rule": o["rule"] - int(t["route_plan_first_rule"][plan]) if o["rule"] >= 0 else None,
            "group": self.groups[o["group"]] if o["group"] >= 0 else None,
            "destinations": [(self.lines[t["route_dest_line"][e]], int(t["route_dest_ring"][e])) for e in dests],
            "caller_city": m["cities"][o["caller_city"]] if o["caller_city"] >= 0 else None,
            "caller_province": m["provinces"][o["caller_province"]] if o["caller_province"] >= 0 else None,
            "caller_carrier": m["carriers"][o["caller_carrier"]] if o["caller_carrier"] >= 0 else None,
            "caller_class": CALLER_CLASS[o["caller_class"]],
            "billing_start": BILLING_START[o["billing_start"]] if o["billing_start"] >= 0 else None,
            "rate": m["rates"][o["rate"]] if o["rate"] >= 0 else None,
            "max_duration_seconds": o["max_duration_seconds"],
            "announcement": text_of(t, o["announcement"]),
            "menu": keys if o["menu_path"] >= 0 else None,
        }


def expected(out) -> dict:
    return {k: getattr(out, k) for k in ("reason", "plan", "rule", "group", "destinations", "caller_city",
                                         "caller_province", "caller_carrier", "caller_class", "billing_start",
                                         "rate", "max_duration_seconds", "announcement", "menu")}


def state_of(draw_active, draw_cursor, h: Harness) -> RouteState:
    return RouteState(
        active={n: c for n, c in zip(h.lines, draw_active) if c},
        cursor={(h.plans[p], g): c for p, g, c in zip(h.tables["route_group_plan"], h.groups, draw_cursor) if p >= 0},
    )


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.function_scoped_fixture])


@SETTINGS
@given(p0=plans(), p1=plans(), cs=st.lists(calls(), min_size=1, max_size=12),
       active=st.lists(st.integers(0, 2), min_size=len(DESTS), max_size=len(DESTS)),
       cursor=st.lists(st.integers(0, 3), min_size=6, max_size=6), seed=st.integers(0, 2**64 - 1))
def test_kernel_matches_reference(base, p0, p1, cs, active, cursor, seed):
    h = Harness(base, {"p0": p0, "p1": p1})
    state = state_of(active, cursor, h)
    for i, c in enumerate(cs):
        c.seed = call_seed(seed, i)

    # One call at a time: the state is read, never changed.
    act, cur = h.arrays(state)
    core = RoutingCore(h.tables, act, cur)
    for i, c in enumerate(cs):
        scalars = [int(v[0]) for v in h.columns([c]).values()]
        o, dests = core.decide_one(*scalars, seed=seed, index=i)
        got = h.named(dict(zip(OUTCOME_FIELDS, o)), dests)
        want = expected(route(h.catalog, h.regions, c, RouteState(dict(state.active), dict(state.cursor))))
        assert got == want, (i, c)
        event(f"reason {want['reason']}")

    # A batch of simultaneous setups: each allowed call counts for the next.
    out = core.decide_batch(h.columns(cs), seed=seed, index=0, reserve=True)
    ref_state = RouteState(dict(state.active), dict(state.cursor))
    for i, c in enumerate(cs):
        o = {f: int(out[f][i]) for f in OUTCOME_FIELDS}
        got = h.named(o, out["destinations"][i, : o["n_destinations"]].tolist())
        assert got == expected(route(h.catalog, h.regions, c, ref_state, reserve=True)), (i, c)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(caller=st.one_of(st.from_regex(r"1[3-9]\d{9}", fullmatch=True), st.from_regex(r"0\d{2,3}\d{7,8}", fullmatch=True),
                        st.from_regex(r"\d{3,18}", fullmatch=True)))
def test_caller_region_index_matches_the_prefix_table(base, caller):
    from rating_core.numbers import lookup

    h = Harness(base, {"p0": PLACEHOLDER, "p1": PLACEHOLDER})
    act, cur = h.arrays(RouteState())
    key = number_key(caller)
    o, _ = RoutingCore(h.tables, act, cur).decide_one(number_key("4000000099"), key, Y2026[0])
    t = h.tables
    assert o[OUTCOME_FIELDS.index("caller_city")] == lookup(t["region_starts"], t["region_values"], np.array([key]))[0]
    assert o[OUTCOME_FIELDS.index("caller_carrier")] == lookup(t["carrier_starts"], t["carrier_values"], np.array([key]))[0]
