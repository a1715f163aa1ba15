"""Routing decisions through the Router: every deny reason, schedule edges
(midnight, a public holiday, an adjusted working Saturday), strategies,
caps, caller memory, stale calls, the IVR menu, the longest call."""
import datetime as dt
import json
import re

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rating_core.catalog import load_catalog
from rating_core.errors import CatalogError, InvalidInput
from rating_core.billing.crm import CRM
from rating_core.ledger import callers
from rating_core.numbers import normalize
from rating_core.router import INVALID_FIELDS, ROUTE_REASON, Router
from rating_core.store import Ledger, Store
from stores import compiled

CATALOG = """
name: routing-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}], connect_fee: 0.05}
  six: {tiers: [{price: 0.12, increment: 6}], free_seconds: 3, rounding: half_up}
packages:
  pre: {kind: prepaid, fee: 10, period_months: 12, rates: [{rate: std, destination: mobile}, {rate: six, destination: landline}]}
  pre_mobile_only: {kind: prepaid, fee: 10, rates: [{rate: std, destination: mobile}]}
  payg: {kind: payg, rates: [{rate: std}]}
  bundle: {kind: bundle, included_minutes: 10, rates: [{rate: std}]}
  bundle_overage: {kind: bundle, included_minutes: 10, overage_price: 0.1, rates: [{rate: std}]}
routing_plans:
  main:
    max_hops: 4
    announcement: all_busy
    closed_announcement: closed
    memory_days: 30
    blacklist: {numbers: ["13800138000"], prefixes: ["170"], regions: [Hebei]}
    whitelist: {numbers: ["031187654321"]}
    groups:
      guangdong: {destinations: [{number: "020-12345678", ring_timeout: 25}]}
      day:
        strategy: round_robin
        caller_memory: true
        overflow: night
        destinations:
          - {number: "0755-88880001", max_calls: 2}
          - {number: "0755-88880002", max_calls: 2}
          - {number: "13700000001", ring_timeout: 30}
      night: {destinations: [{number: "13700000009", ring_timeout: 10}]}
      holiday: {strategy: random, destinations: [{number: "13700000011"}, {number: "13700000012"}, {number: "13700000013"}]}
      saturday: {destinations: [{number: "13700000021"}]}
    rules:
      - group: guangdong
        caller_regions: [Guangdong]
        schedule: [{day_kinds: [workday], start: "09:00", end: "18:00"}]
      - group: day
        schedule: [{day_kinds: [workday], start: "09:00", end: "18:00"}]
      - group: holiday
        schedule: [{day_kinds: [holiday]}]
      - group: saturday
        schedule: [{weekdays: [sat], start: "09:00", end: "12:00"}]
      - group: night
        schedule: [{start: "22:00", end: "06:00"}]
  menu:
    ivr:
      prompt: welcome
      options:
        - {key: "1", label: sales, group: sales}
        - key: "2"
          label: support
          menu: {prompt: support, options: [{key: "1", label: hardware, group: support}, {key: "#", label: back, group: sales}]}
    rules:
      - {group: night_sales, ivr: "1", schedule: [{start: "18:00", end: "09:00"}]}
    groups:
      sales: {destinations: [{number: "13900000001"}]}
      night_sales: {destinations: [{number: "13900000002"}]}
      support: {destinations: [{number: "13900000003"}]}
  split:
    rules: [{group: split}]
    groups:
      split:
        strategy: weighted
        destinations: [{number: "13600000001", weight: 70}, {number: "13600000002", weight: 20}, {number: "13600000003", weight: 10}]
  capped:
    announcement: all_busy
    rules: [{group: one}]
    groups:
      one: {destinations: [{number: "13600000009", max_calls: 1}]}
  odd:
    rules: [{group: far}]
    groups:
      far: {destinations: [{number: "9123456"}]}
accounts:
  acme:
    package: pre
    package_start: 2026-01-01
    numbers:
      - {number: "4000000001", home_city: Shenzhen, routing: main}
      - {number: "4000000002", home_city: Shenzhen, routing: main, status: suspended}
      - {number: "4000000003", home_city: Shenzhen, routing: main, status: pending_verification}
      - {number: "4000000004", home_city: Shenzhen, routing: main, status: frozen}
      - {number: "4000000007", home_city: Shenzhen}
      - {number: "4000000010", home_city: Shenzhen, routing: odd}
  arrears:
    package: pre
    status: suspended
    package_start: 2026-01-01
    numbers: [{number: "4000000005", home_city: Shenzhen, routing: main}]
  future:
    package: pre
    package_start: 2027-01-01
    numbers: [{number: "4000000006", home_city: Shenzhen, routing: main}]
  shop:
    package: payg
    package_start: 2026-01-01
    numbers:
      - {number: "4000000008", home_city: Shenzhen, routing: menu, billing_start: ivr_answer}
      - {number: "4000000012", home_city: Shenzhen, routing: split}
      - {number: "4000000013", home_city: Shenzhen, routing: capped}
  broke:
    package: pre
    opening_credit: 0
    package_start: 2026-01-01
    numbers: [{number: "4000000009", home_city: Shenzhen, routing: main}]
  bun:
    package: bundle
    package_start: 2026-01-01
    numbers: [{number: "4000000011", home_city: Shenzhen, routing: main}]
  bun_over:
    package: bundle_overage
    package_start: 2026-01-01
    numbers: [{number: "4000000014", home_city: Shenzhen, routing: main}]
"""

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
OUT_OF_TOWN = "13912345678"  # Changzhou, Jiangsu
GUANGDONG = "13612345678"  # Shantou, Guangdong
WORKDAY_10 = (2026, 3, 4, 10)  # a Wednesday


def ms(*args) -> int:
    return int(dt.datetime(*args, tzinfo=SHANGHAI).timestamp() * 1000)


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("routing")
    compiled(root, CATALOG)
    return root / "store"


@pytest.fixture(scope="session")
def snapshot(store_dir):
    return Store(store_dir).open()  # one map per process (LMDB opens a file once)


@pytest.fixture
def router(snapshot, tmp_path):
    ledger = Ledger(tmp_path / "ledger")
    r = Router(snapshot, ledger, seed=7)
    yield r
    ledger.close()


def numbers(decision):
    return [d.number for d in decision.destinations]


# -- every deny reason -------------------------------------------------------
def test_every_kernel_reason_is_named_once():
    assert len(set(ROUTE_REASON)) == len(ROUTE_REASON)
    assert ROUTE_REASON[0] == "ok"


@pytest.mark.parametrize("number, caller, at, keys, reason", [
    ("4009999999", OUT_OF_TOWN, WORKDAY_10, "", "unknown_number"),
    ("4000000004", OUT_OF_TOWN, WORKDAY_10, "", "number_not_active"),
    ("4000000002", OUT_OF_TOWN, WORKDAY_10, "", "number_suspended"),
    ("4000000003", OUT_OF_TOWN, WORKDAY_10, "", "pending_verification"),
    ("4000000005", OUT_OF_TOWN, WORKDAY_10, "", "account_suspended"),
    ("4000000006", OUT_OF_TOWN, WORKDAY_10, "", "package_not_started"),
    ("4000000001", "13800138000", WORKDAY_10, "", "caller_blocked"),  # exact number
    ("4000000001", "17012345678", WORKDAY_10, "", "caller_blocked"),  # prefix
    ("4000000001", "031112345678", WORKDAY_10, "", "region_blocked"),  # Shijiazhuang, Hebei
    ("4000000008", OUT_OF_TOWN, WORKDAY_10, "3", "invalid_ivr_key"),
    ("4000000008", OUT_OF_TOWN, WORKDAY_10, "1234567", "invalid_ivr_key"),
    ("4000000007", OUT_OF_TOWN, WORKDAY_10, "", "no_route"),  # no plan
    ("4000000001", OUT_OF_TOWN, (2026, 3, 4, 19), "", "no_route"),  # out of hours
    ("4000000010", OUT_OF_TOWN, WORKDAY_10, "", "no_rate"),  # destination class has no rate
    ("4000000009", OUT_OF_TOWN, WORKDAY_10, "", "out_of_credit"),
])
def test_deny_reasons(router, number, caller, at, keys, reason):
    d = router.authorize(number, caller, ms(*at), ivr_keys=keys)
    assert (d.allow, d.reason) == (False, reason)
    assert d.destinations == []


def test_all_destinations_busy_plays_the_announcement(router):
    at = ms(*WORKDAY_10)
    assert router.authorize("4000000013", OUT_OF_TOWN, at).allow
    assert router.call_event("c1", "4000000013", "started", destination="13600000009", at_ms=at)
    d = router.authorize("4000000013", OUT_OF_TOWN, at)
    assert (d.allow, d.reason, d.announcement) == (False, "all_destinations_busy", "all_busy")
    # the cap holds at the claim as well
    assert not router.call_event("c2", "4000000013", "started", destination="13600000009", at_ms=at)
    router.call_event("c1", "4000000013", "ended", at_ms=at + 60_000)
    assert router.authorize("4000000013", OUT_OF_TOWN, at + 60_000).allow


def test_invalid_input_names_the_field(router):
    with pytest.raises(InvalidInput) as e:
        router.authorize("not-a-number", OUT_OF_TOWN, ms(*WORKDAY_10))
    assert e.value.field == "number"
    with pytest.raises(InvalidInput) as e:
        router.authorize("4000000001", "x1", ms(*WORKDAY_10))
    assert e.value.field == "caller"
    with pytest.raises(InvalidInput) as e:
        router.authorize("4000000001", OUT_OF_TOWN, ms(1990, 1, 1))
    assert e.value.field == "at"
    out = router.authorize_batch({"number": ["4000000001", "4x", "4000000001"],
                                  "caller": [OUT_OF_TOWN, OUT_OF_TOWN, "nonsense"],
                                  "at_ms": [ms(*WORKDAY_10)] * 3})
    assert [ROUTE_REASON[r] for r in out["reason"]] == ["ok", "invalid_input", "invalid_input"]
    assert [INVALID_FIELDS[f] for f in out["invalid_field"]] == ["", "number", "caller"]


@pytest.mark.parametrize("caller", ["anonymous", " Restricted ", "WITHHELD", "unavailable", ""])
def test_withheld_caller_is_routed_without_region(router, caller):
    """Every word of numbers.WITHHELD_CALLERS, as the CDR edge rates them
    (breaker finding: the router knew three of the six)."""
    from rating_core.cdr import check_route

    d = router.authorize("4000000001", caller, ms(*WORKDAY_10))
    assert d.allow and d.caller_city is None and d.group == "day"
    out = router.authorize_batch({"number": ["4000000001"], "caller": [caller], "at_ms": [ms(*WORKDAY_10)]})
    assert [ROUTE_REASON[r] for r in out["reason"]] == ["ok"]
    assert check_route("4000000001", caller) == ("4000000001", "")


# -- lists ---------------------------------------------------------------------
def test_whitelist_beats_a_blocked_region(router):
    d = router.authorize("4000000001", "0311-87654321", ms(*WORKDAY_10))
    assert d.allow and d.caller_province == "Hebei"


# -- schedules -----------------------------------------------------------------
@pytest.mark.parametrize("at, group", [
    ((2026, 3, 4, 9, 0), "day"),
    ((2026, 3, 4, 8, 59, 59), None),  # before opening
    ((2026, 3, 4, 17, 59, 59), "day"),
    ((2026, 3, 4, 18, 0), None),  # [start, end): 18:00 is closed
    ((2026, 3, 4, 23, 59, 59), "night"),  # wraps midnight ...
    ((2026, 3, 5, 0, 0), "night"),  # ... midnight itself ...
    ((2026, 3, 5, 5, 59, 59), "night"),
    ((2026, 3, 5, 6, 0), None),  # ... until 06:00
    ((2026, 10, 1, 10), "holiday"),  # National Day, a Thursday
    ((2026, 2, 17, 10), "holiday"),  # Spring Festival
    ((2026, 2, 14, 10), "day"),  # Saturday, an adjusted working day (调休)
    ((2026, 3, 7, 10), "saturday"),  # an ordinary Saturday: weekend, weekday rule
    ((2026, 3, 7, 12, 0), None),
])
def test_schedule_edges(router, at, group):
    d = router.authorize("4000000001", OUT_OF_TOWN, ms(*at))
    assert d.group == group
    assert d.allow == (group is not None)
    if group is None:
        assert (d.reason, d.announcement) == ("no_route", "closed")


def test_caller_region_rule_comes_first(router):
    d = router.authorize("4000000001", GUANGDONG, ms(*WORKDAY_10))
    assert d.group == "guangdong" and d.rule == 0
    assert d.destinations[0].number == "02012345678" and d.destinations[0].ring_timeout_seconds == 25
    assert (d.caller_city, d.caller_province, d.caller_carrier) == ("Shantou", "Guangdong", "China Mobile")
    # outside that rule's hours the region no longer matters
    assert router.authorize("4000000001", GUANGDONG, ms(2026, 3, 4, 23)).group == "night"


# -- strategies ------------------------------------------------------------------
def test_sequential_overflow_and_ring_timeouts(router):
    d = router.authorize("4000000001", OUT_OF_TOWN, ms(*WORKDAY_10))
    assert [(x.number, x.ring_timeout_seconds) for x in d.destinations] == [
        ("075588880001", 15), ("075588880002", 15), ("13700000001", 30), ("13700000009", 10)]


def test_round_robin_moves_when_a_call_starts(router):
    at = ms(*WORKDAY_10)
    firsts = []
    for i in range(6):
        d = router.authorize("4000000001", OUT_OF_TOWN, at)
        firsts.append(d.destinations[0].number)
        router.call_event(f"rr{i}", "4000000001", "started", destination=d.destinations[0].number, at_ms=at)
        router.call_event(f"rr{i}", "4000000001", "ended", at_ms=at)
    assert firsts == ["075588880001", "075588880002", "13700000001"] * 2


def test_round_robin_in_a_batch_counts_earlier_calls(router):
    at = ms(*WORKDAY_10)
    out = router.authorize_batch({"number": ["4000000001"] * 7, "caller": [OUT_OF_TOWN] * 7, "at_ms": [at] * 7})
    firsts = [d.destinations[0].number if d.destinations else d.reason for d in router.decisions(out)]
    # caps of 2 on the landlines: the batch's own calls fill them
    assert firsts == ["075588880001", "075588880002", "13700000001", "075588880001", "075588880002",
                      "13700000001", "13700000001"]


def test_weighted_split_converges_over_100k_calls(router):
    n = 100_000
    out = router.authorize_batch({"number": ["4000000012"] * n, "caller": [OUT_OF_TOWN] * n,
                                  "at_ms": np.full(n, ms(*WORKDAY_10))})
    assert out["allow"].all()
    first = out["destinations"][:, 0]
    share = np.bincount(first - first.min(), minlength=3) / n
    assert np.allclose(share, [0.70, 0.20, 0.10], atol=0.01)
    # every call still gets all three, in some order
    assert (out["n_destinations"] == 3).all()


def test_random_group_orders_vary(router):
    orders = {tuple(numbers(router.authorize("4000000001", OUT_OF_TOWN, ms(2026, 10, 1, 10)))) for _ in range(200)}
    assert len(orders) == 6  # every permutation of three


# -- caller memory, restart -----------------------------------------------------
def test_caller_memory_survives_a_restart(snapshot, tmp_path):
    at = ms(*WORKDAY_10)
    ledger = Ledger(tmp_path / "ledger")
    r = Router(snapshot, ledger, seed=1)
    assert numbers(r.authorize("4000000001", OUT_OF_TOWN, at))[0] == "075588880001"
    r.call_event("m1", "4000000001", "started", destination="075588880001", caller=OUT_OF_TOWN, at_ms=at)
    r.call_event("m1", "4000000001", "answered", destination="13700000001", caller=OUT_OF_TOWN, at_ms=at + 30_000)
    r.call_event("m1", "4000000001", "ended", at_ms=at + 90_000)
    ledger.close()

    ledger = Ledger(tmp_path / "ledger")  # a new process would do the same
    r = Router(snapshot, ledger, seed=2)
    # memory: the destination that answered this caller comes first
    assert numbers(r.authorize("4000000001", OUT_OF_TOWN, at + 3_600_000))[0] == "13700000001"
    # another caller follows the round-robin cursor, which moved past 0755-88880001
    assert numbers(r.authorize("4000000001", "13012345678", at + 3_600_000))[0] == "075588880002"
    # memory lasts memory_days (30); 2026-04-08 is a Wednesday
    assert numbers(r.authorize("4000000001", OUT_OF_TOWN, at + 35 * 86_400_000))[0] == "075588880002"
    ledger.close()


def test_caller_memory_is_the_crm_record(router):
    """One store: the answered event writes the caller's CRM record, which
    both the CRM shows and the next Authorize routes by; committing the
    call's CDR (it started before the answer) keeps it."""
    at = ms(*WORKDAY_10)
    crm = CRM(router.ledger)
    account = "acme"  # owns 4000000001
    router.call_event("x1", "4000000001", "started", destination="075588880001", caller=OUT_OF_TOWN, at_ms=at)
    router.call_event("x1", "4000000001", "answered", destination="0755-88880002", caller=OUT_OF_TOWN,
                      at_ms=at + 20_000)
    router.call_event("x1", "4000000001", "ended", at_ms=at + 80_000)
    rec = crm.get(account, normalize(OUT_OF_TOWN, "caller"))
    assert (rec.destination, rec.last_answered_ms) == ("075588880002", at + 20_000)
    assert numbers(router.authorize("4000000001", OUT_OF_TOWN, at + 60_000))[0] == "075588880002"
    batch = router.decisions(router.authorize_batch({"number": ["4000000001"], "caller": [OUT_OF_TOWN],
                                                     "at_ms": [at + 60_000]}, reserve=False))
    assert numbers(batch[0])[0] == "075588880002"
    # The CDR of the same call, committed after the event, keeps the answer time.
    with router.ledger.env.begin(write=True) as txn:
        crm.record(txn, pa.table({
            "call_id": ["x1"], "account": [account], "caller": [rec.caller], "start_ms": [at],
            "answered": [True], "billable_seconds": [60], "forwarded_to": ["075588880002"],
            "caller_city": ["Xi'an"], "caller_province": ["Shaanxi"],
            "caller_carrier": pa.array([None], pa.string())}))
    rec = crm.get(account, rec.caller)
    assert (rec.calls, rec.answered, rec.destination, rec.last_answered_ms) == (1, 1, "075588880002", at + 20_000)
    # Editing the record in the CRM is what routing reads: one record.
    with router.ledger.env.begin(write=True) as txn:
        callers.remember_answer(router.ledger, txn, account, rec.caller, "13700000001", at + 30_000)
    assert crm.get(account, rec.caller).destination == "13700000001"
    assert numbers(router.authorize("4000000001", OUT_OF_TOWN, at + 60_000))[0] == "13700000001"


def test_memory_skips_a_destination_at_its_cap(router):
    at = ms(*WORKDAY_10)
    router.call_event("a", "4000000001", "answered", destination="075588880002", caller=OUT_OF_TOWN, at_ms=at)
    assert numbers(router.authorize("4000000001", OUT_OF_TOWN, at))[0] == "075588880002"
    router.call_event("b", "4000000001", "started", destination="075588880002", at_ms=at)
    # two live calls now hold 0755-88880002 (cap 2): memory cannot use it
    d = router.authorize("4000000001", OUT_OF_TOWN, at)
    assert "075588880002" not in numbers(d)


# -- stale calls -------------------------------------------------------------------
def test_a_call_that_outlives_its_maximum_duration_is_released(router):
    at = ms(*WORKDAY_10)
    d = router.authorize("4000000013", OUT_OF_TOWN, at)
    assert d.max_duration_seconds == 86_400  # payg: its credit limit pays for more than the 24 h bound
    assert router.call_event("s1", "4000000013", "started", destination="13600000009", at_ms=at)
    assert router.active_calls("13600000009") == 1
    assert router.release_stale(at + 86_400_000) == 0  # within 24 h + setup grace
    assert router.release_stale(at + (86_400 + 601) * 1000) == 1
    assert router.active_calls("13600000009") == 0
    assert router.authorize("4000000013", OUT_OF_TOWN, at + (86_400 + 601) * 1000).allow


def test_prepaid_call_deadline_follows_its_credit(router):
    at = ms(*WORKDAY_10)
    d = router.authorize("4000000001", OUT_OF_TOWN, at)
    assert d.max_duration_seconds == 4920  # priced at the dearest listed destination (the mobile overflow)
    router.call_event("p1", "4000000001", "started", destination="075588880001", at_ms=at)
    router.call_event("other", "4000000001", "ended", at_ms=at + (4920 + 600) * 1000)
    assert router.active_calls("075588880001") == 1
    # any later event sweeps it once start + 4920 s + grace has passed
    router.call_event("other", "4000000001", "ended", at_ms=at + (4920 + 601) * 1000)
    assert router.active_calls("075588880001") == 0


def test_events_are_idempotent(router):
    at = ms(*WORKDAY_10)
    for _ in range(3):
        assert router.call_event("i1", "4000000001", "started", destination="075588880001", at_ms=at)
    assert router.active_calls("075588880001") == 1
    router.call_event("i1", "4000000001", "answered", destination="13700000001", caller=OUT_OF_TOWN, at_ms=at)
    assert (router.active_calls("075588880001"), router.active_calls("13700000001")) == (0, 1)
    for _ in range(2):
        router.call_event("i1", "4000000001", "ended", at_ms=at)
    assert router.active_calls("13700000001") == 0
    with pytest.raises(InvalidInput):
        router.call_event("i1", "4000000001", "hung_up", at_ms=at)


# -- IVR ------------------------------------------------------------------------------
def test_ivr_menu_then_keys_select_a_group(router):
    at = ms(*WORKDAY_10)
    d = router.authorize("4000000008", OUT_OF_TOWN, at)
    assert d.allow and d.destinations == [] and d.ivr_menu["prompt"] == "welcome"
    assert [o["key"] for o in d.ivr_menu["options"]] == ["1", "2"]
    assert d.billing_start == "ivr_answer"
    d = router.authorize("4000000008", OUT_OF_TOWN, at, ivr_keys="2")
    assert d.ivr_menu["prompt"] == "support" and d.destinations == []
    assert numbers(router.authorize("4000000008", OUT_OF_TOWN, at, ivr_keys="21")) == ["13900000003"]
    assert numbers(router.authorize("4000000008", OUT_OF_TOWN, at, ivr_keys="2#")) == ["13900000001"]
    # a rule overrides the leaf's group by schedule
    assert numbers(router.authorize("4000000008", OUT_OF_TOWN, at, ivr_keys="1")) == ["13900000001"]
    assert numbers(router.authorize("4000000008", OUT_OF_TOWN, ms(2026, 3, 4, 20), ivr_keys="1")) == ["13900000002"]


# -- longest call ---------------------------------------------------------------------
def test_max_duration_counts_connect_fee_first_increment_and_rounding(router):
    # 10 yuan credit = 100000 minor units.
    night = ms(2026, 3, 4, 23)  # to a mobile: std, 1200 per started minute + 500 connect fee
    d = router.authorize("4000000001", OUT_OF_TOWN, night)
    assert (numbers(d)[0], d.rate, d.max_duration_seconds) == ("13700000009", "std", 82 * 60)  # 98900; 83 min: 100100
    day = ms(*WORKDAY_10)  # to a landline: six, 120 per 6 s increment, no fee
    d = router.authorize("4000000001", OUT_OF_TOWN, day)
    # A landline first (six: 120 per 6 s, 4998 s would cost 99960) but a mobile overflow
    # (std) is dearer: the limit is std's, so a call answered on the overflow stays in credit.
    assert (numbers(d)[0], d.rate, d.max_duration_seconds) == ("075588880001", "std", 82 * 60)
    # after rated calls the ledger's balance is what counts
    acc = router.meta["accounts"].index("acme")
    state = router.ledger.opening_state(router.snapshot)
    for credit, expected in ((1700, 60), (1699, None)):  # one minute + fee = 1700
        state["credit_left"][acc] = credit
        with router.ledger.env.begin(write=True) as txn:
            router.ledger.write_state(router.snapshot, state, txn)
        d = router.authorize("4000000001", OUT_OF_TOWN, night)
        assert (d.max_duration_seconds, d.reason) == ((expected, "ok") if expected else (0, "out_of_credit"))


def test_every_kind_is_limited(router):
    at = ms(*WORKDAY_10)
    assert router.authorize("4000000011", OUT_OF_TOWN, at).max_duration_seconds == 600
    # A bundle selling overage: the bundle plus what the credit limit pays at the overage rate, at most the quota.
    assert router.authorize("4000000014", OUT_OF_TOWN, at).max_duration_seconds == 3600
    assert router.authorize("4000000012", OUT_OF_TOWN, at).max_duration_seconds == 86_400  # payg: its credit limit


# -- catalog errors ---------------------------------------------------------------------
@pytest.mark.parametrize("patch, message", [
    ('overflow: night', 'overflow: night\n        bogus: 1'),
    ("{number: \"13700000009\", ring_timeout: 10}", "{number: \"13700000009\", ring_timeout: 9}"),
    ("weight: 10}", "weight: 11}"),
    ("regions: [Hebei]", "regions: [Atlantis]"),
    ("- {group: night_sales, ivr: \"1\"", "- {group: night_sales, ivr: \"3\""),
    ("night: {destinations", "night: {overflow: day, destinations"),
])
def test_bad_plans_are_reported_with_their_field(tmp_path, patch, message):
    assert patch in CATALOG
    path = tmp_path / "c.yaml"
    path.write_text(CATALOG.replace(patch, message, 1))
    from rating_core.catalog.routing import check_routing
    from rating_core.compile.regions import region_source

    with pytest.raises(CatalogError) as e:
        cat = load_catalog(path, regions=set(region_source().cities))
        problems = check_routing(cat, path, regions=True)
        if problems:
            raise CatalogError(problems)
    assert "routing_plans." in str(e.value)


# -- CLI ------------------------------------------------------------------------------
def test_route_command_prints_the_decision(tmp_path):
    from click.testing import CliRunner

    from rating_core.cli_route import route_command

    (tmp_path / "catalog.yaml").write_text(CATALOG)
    store_dir = tmp_path / "store"  # its own: a process maps a snapshot once
    Store(store_dir).compile(tmp_path / "catalog.yaml", activate=True)

    run = CliRunner().invoke
    res = run(route_command, ["4000000001", "139 1234 5678", "--at", "2026-03-04T10:00", "--store", str(store_dir)])
    assert res.exit_code == 0, res.output
    assert "ALLOW" in res.output and "1. 075588880001  ring 15 s" in res.output
    assert "caller: Changzhou, Jiangsu, China Mobile (out_of_town)" in res.output
    # People count rules from 1 (as `explain` counts rate rules); the JSON keeps the 0-based index.
    assert "plan: main, rule 2 -> group day" in res.output
    res = run(route_command, ["4000000001", "139 1234 5678", "--at", "2026-03-04T10:00", "--store", str(store_dir),
                              "--json"])
    assert json.loads(res.output)["rule"] == 1
    res = run(route_command, ["4000000001", "13800138000", "--at", "2026-03-04T10:00", "--store", str(store_dir)])
    assert res.exit_code == 1 and "DENY caller_blocked" in res.output
    res = run(route_command, ["4000000008", "13912345678", "--at", "2026-03-04T10:00", "--keys", "2",
                              "--store", str(store_dir), "--json"])
    assert '"prompt": "support"' in res.output
    # no_route says which of its causes it is (the code stays no_route).
    res = run(route_command, ["4000000001", OUT_OF_TOWN, "--at", "2026-03-04T19:00", "--store", str(store_dir)])
    assert res.exit_code == 1 and "DENY no_route  (announcement: closed)" in res.output
    assert "why: no rule of plan main matches this call (its schedule, caller regions or IVR keys" in res.output
    res = run(route_command, ["4000000007", OUT_OF_TOWN, "--at", "2026-03-04T10:00", "--store", str(store_dir),
                              "--json"])
    assert json.loads(res.output)["detail"].startswith("the number has no routing plan and no verified bound")


def test_deny_detail_names_each_cause():
    from rating_core.router import Decision, deny_detail

    assert deny_detail(Decision(allow=True, reason="ok")) is None
    assert deny_detail(Decision(allow=False, reason="caller_blocked", plan="p")) is None
    assert "no routing plan" in deny_detail(Decision(allow=False, reason="no_route"))
    assert "no rule of plan p" in deny_detail(Decision(allow=False, reason="no_route", plan="p"))
    assert deny_detail(Decision(allow=False, reason="no_route", plan="p", group="g")).startswith(
        "group g (with its overflow) has no destination bound to the number and verified")
    assert "max_calls cap" in deny_detail(Decision(allow=False, reason="all_destinations_busy", plan="p", group="g"))


def test_batch_reads_caller_memory_like_single_calls(router):
    at = ms(*WORKDAY_10)
    router.call_event("a", "4000000001", "answered", destination="13700000001", caller=OUT_OF_TOWN, at_ms=at)
    router.call_event("b", "4000000001", "answered", destination="075588880002", caller="13012345678", at_ms=at)
    for batch in ([OUT_OF_TOWN, "13012345678", "13012345679", OUT_OF_TOWN],  # a caller twice: read once
                  [OUT_OF_TOWN]):
        out = router.authorize_batch({"number": ["4000000001"] * len(batch), "caller": batch,
                                      "at_ms": [at] * len(batch)}, reserve=False)
        single = [router.authorize("4000000001", c, at) for c in batch]
        assert [numbers(d)[0] for d in router.decisions(out)] == [numbers(d)[0] for d in single]
    assert numbers(single[0])[0] == "13700000001"


def test_batch_takes_keys_already_coded(router):
    from rating_core.routes import ivr_path_code
    from rating_core.router import number_key

    at = [ms(*WORKDAY_10)] * 3
    keys = ["", "2", "21"]
    raw = router.authorize_batch({"number": ["4000000008"] * 3, "caller": [OUT_OF_TOWN] * 3, "at_ms": at,
                                  "ivr_keys": keys}, reserve=False, seed=3)
    coded = router.authorize_batch({"number_key": [number_key("4000000008")] * 3,
                                    "caller_key": [number_key(OUT_OF_TOWN)] * 3, "at_ms": at,
                                    "ivr_path": [ivr_path_code(k) for k in keys]}, reserve=False, seed=3)
    assert router.decisions(raw) == router.decisions(coded)
    assert [d.ivr_menu["prompt"] if d.ivr_menu else numbers(d) for d in router.decisions(raw)] == [
        "welcome", "support", ["13900000003"]]


def test_a_catalog_without_plans_routes_nothing(tmp_path):
    doc = CATALOG[: CATALOG.index("routing_plans:")] + CATALOG[CATALOG.index("accounts:"):]
    doc = re.sub(r", routing: \w+", "", doc)
    (tmp_path / "c.yaml").write_text(doc)
    store = Store(tmp_path / "store")
    store.compile(tmp_path / "c.yaml", activate=True)
    ledger = Ledger(tmp_path / "store")
    router = Router(store.open(), ledger)
    d = router.authorize("4000000001", OUT_OF_TOWN, ms(*WORKDAY_10))
    assert (d.allow, d.reason, d.plan) == (False, "no_route", None)
    assert router.call_event("x", "4000000001", "started", destination="13700000001", at_ms=ms(*WORKDAY_10))
    assert router.authorize_batch({"number": ["4000000001"], "caller": [OUT_OF_TOWN]})["reason"].tolist() == [10]
    ledger.close()


CALLERS = [OUT_OF_TOWN, GUANGDONG, "13800138000", "031187654321", "031112345678", "17012345678", "anonymous",
           "13012345678"]
TIMES = [WORKDAY_10, (2026, 3, 4, 23), (2026, 10, 1, 10), (2026, 2, 14, 10), (2026, 3, 7, 10), (2026, 3, 4, 19)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([f"40000000{i:02d}" for i in range(1, 15)] + ["4009999999"]),
                          st.sampled_from(CALLERS), st.sampled_from(TIMES), st.sampled_from(["", "1", "2", "21", "5"])),
                min_size=1, max_size=15),
       st.integers(0, 2**64 - 1))
def test_batch_without_reserve_equals_single_calls(snapshot, tmp_path_factory, calls, seed):
    ledger = Ledger(tmp_path_factory.mktemp("ledger"))
    try:
        setup = Router(snapshot, ledger)  # some history: a live call, a remembered caller
        at = ms(*WORKDAY_10)
        setup.call_event("h1", "4000000001", "started", destination="075588880001", at_ms=at)
        setup.call_event("h1", "4000000001", "answered", destination="13700000001", caller=OUT_OF_TOWN, at_ms=at)
        single = Router(snapshot, ledger, seed=seed)
        batch = Router(snapshot, ledger, seed=seed)
        want = [single.authorize(n, c, ms(*t), ivr_keys=k) for n, c, t, k in calls]
        out = batch.authorize_batch({"number": [n for n, *_ in calls], "caller": [c for _, c, *_ in calls],
                                     "at_ms": [ms(*t) for *_, t, _k in calls], "ivr_keys": [k for *_, k in calls]},
                                    reserve=False)
        assert batch.decisions(out) == want
    finally:
        ledger.close()


def test_the_demo_service_desk_offers_the_duty_phone_in_hours_only_for_an_agent_at_its_cap(demo):
    """The demo catalog's service_desk comment (newcomer N9 D6): max_hops 3
    lists the three agents in hours; the agents' overflow, the duty phone,
    takes the place of an agent at its max_calls (4), never a fourth hop."""
    import datetime as dt_

    store = Store(demo / "store")
    ledger = Ledger(demo / "store")
    try:
        router = Router(store.open(), ledger)
        at = int(dt_.datetime(2026, 11, 2, 10, tzinfo=dt_.timezone(dt_.timedelta(hours=8))).timestamp() * 1000)
        agents = {"075586001001", "075586001002", "075586001003"}
        first = router.authorize("4000589196", "13812345678", at)
        assert first.allow and set(numbers(first)) == agents
        for i in range(4):  # 075586001001 at its max_calls
            assert router.call_event(f"busy-{i}", "4000589196", "started", destination="075586001001", at_ms=at)
        busy = router.authorize("4000589196", "13812345678", at + 1000)
        assert set(numbers(busy)) == agents - {"075586001001"} | {"13802551234"}
        for i in range(4):
            router.call_event(f"busy-{i}", "4000589196", "ended", at_ms=at + 2000)
    finally:
        ledger.close()
