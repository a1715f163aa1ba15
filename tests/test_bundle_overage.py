"""A bundle that sells overage is limited at Authorize too: the grant is
bounded by the bundle seconds left plus what the credit (down to the credit
limit) pays at the overage rate, and the holds of concurrent calls, settled
in ANY order, cover what they are charged: together they never take the
account past its credit limit."""
from __future__ import annotations

import gc
import random

import pyarrow as pa
import pytest

from rating_core.engine import Engine
from rating_core.ledger import AccountTerms, reservations
from rating_core.router import Router, deny_detail
from stores import compiled
from test_reservation import authorize_at_once

CATALOG = """
name: overage-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  cheap: {tiers: [{price: 0.06}]}                      # landline, per started minute
  dear: {tiers: [{price: 0.12}], connect_fee: 0.02}     # mobile
  over: {tiers: [{price: 0.10}], connect_fee: 0.05}     # the overage: a call of its own, with a fee
packages:
  bo: {kind: bundle, included_minutes: 10, overage_rate: over, credit_limit: 1,
       rates: [{rate: dear, destination: mobile}, {rate: cheap, destination: landline}]}
routing_plans:
  overflow:
    rules: [{group: desk}]
    groups:
      desk: {overflow: mobiles, destinations: [{number: "0755-88880001", max_calls: 1000}]}
      mobiles: {destinations: [{number: "13700000001", max_calls: 1000}]}
accounts:
  bo:
    package: bo
    package_start: 2026-01-01
    numbers: [{number: "4000000104", home_city: Shenzhen, routing: overflow}]
"""
NUMBER, CALLER = "4000000104", "13912345678"
AT = 1_772_589_600_000  # 2026-03-04 10:00 +08:00
LANDLINE, MOBILE = "075588880001", "13700000001"
CREDIT_LIMIT = 10_000  # 1 yuan, minor units


@pytest.fixture
def world(tmp_path):
    store = compiled(tmp_path, CATALOG)
    del store
    gc.collect()
    engine = Engine.open(tmp_path / "store")
    yield engine
    engine.close()


def cdr(call_id, seconds, destination):
    answered = AT + 5000
    return {"call_id": call_id, "caller": CALLER, "number": NUMBER, "forwarded_to": destination, "start": AT,
            "ivr_answer": answered, "agent_answer": answered, "end": answered + seconds * 1000,
            "hangup_cause": "normal"}


def test_grant_is_bundle_plus_what_credit_pays_at_the_overage_rate(world):
    engine = world
    router = Router(engine.rater.snapshot, engine.ledger, seed=1)
    d = router.authorize(NUMBER, CALLER, AT, call_id="one")
    # 600 bundle seconds at the dear destination (0.12 + 0.02 fee: billed by the minute),
    # then overage: 0.05 fee + 0.10 per started minute from 1 yuan, less one unit of slack (0.15).
    assert d.allow and d.reserved_seconds == 600
    assert 600 < d.max_duration_seconds < 3600
    over = d.max_duration_seconds - 600
    assert d.reserved_minor <= CREDIT_LIMIT
    assert d.reserved_minor == 500 + 1000 * -(-over // 60) + 1500  # overage charge + slack
    # Nothing left for a second call.
    d2 = router.authorize(NUMBER, CALLER, AT, call_id="two")
    assert (d2.allow, d2.reason) == (False, "out_of_credit")
    # Its why names the figures: nothing committed, the first call's hold against the credit limit.
    assert (d2.limit, d2.credit_minor, d2.credit_limit_minor, d2.held_minor) == (
        "bundle_overage", 0, CREDIT_LIMIT, d.reserved_minor)
    assert deny_detail(d2).startswith("credit 0.00 yuan against a credit limit of ")
    assert "past the bundle's minutes" in deny_detail(d2)
    # The query form shows the same limit and holds nothing.
    router.call_event("one", NUMBER, "ended", at_ms=AT)  # never answered: the hold goes
    q = router.authorize(NUMBER, CALLER, AT)
    assert q.allow and q.max_duration_seconds == d.max_duration_seconds and q.reserved_minor == 0
    assert reservations.open_reservations(engine.ledger) == []


def test_concurrent_calls_settled_in_any_order_stay_within_bundle_and_credit(world):
    engine = world
    router = Router(engine.rater.snapshot, engine.ledger, seed=1, quota_seconds=120)
    got = authorize_at_once(router, NUMBER, CALLER, AT, 24, "k")
    allowed = {k: d for k, d in got.items() if d.allow}
    assert 5 <= len(allowed) < 24
    assert sum(d.reserved_seconds for d in allowed.values()) <= 600
    assert sum(d.reserved_minor for d in allowed.values()) <= CREDIT_LIMIT
    assert {d.reason for d in got.values() if not d.allow} == {"out_of_credit"}
    # Every allowed call answered on a destination and cut at its grant; the CDRs
    # settle in many orders (rating consumes the bundle in that order).
    rows = [cdr(f"k{k}", d.max_duration_seconds, random.Random(k).choice([LANDLINE, MOBILE]))
            for k, d in allowed.items()]
    rng = random.Random(7)
    for _ in range(30):
        rng.shuffle(rows)
        rated = engine.rate(pa.Table.from_pylist(rows)).rated
        assert sum(rated.column("overage_minor").to_pylist()) <= CREDIT_LIMIT
        assert sum(rated.column("bundle_seconds_consumed").to_pylist()) <= 600
    res = engine.rate_and_commit(pa.Table.from_pylist(rows))
    assert res.summary.rated == len(rows)
    terms = AccountTerms.from_snapshot(engine.rater.snapshot, "bo")
    b = engine.ledger.balance("bo", terms, AT)
    assert b.credit_minor >= -CREDIT_LIMIT  # never past the credit limit
    assert b.reserved_minor == 0 and b.open_reservations == 0


def test_small_in_bundle_calls_pushed_out_by_a_later_long_one(world):
    """The case the slack is for: short calls held in the bundle, then a long
    one held partly as overage; settled long-first, the long call takes the
    bundle and each short one becomes an overage call of its own, with the
    overage rate's connect fee. The holds still cover it."""
    engine = world
    short = Router(engine.rater.snapshot, engine.ledger, seed=1, quota_seconds=60)
    calls = {}
    for k in range(3):
        d = short.authorize(NUMBER, CALLER, AT, call_id=f"s{k}")
        assert d.allow and (d.reserved_seconds, d.reserved_minor) == (60, 0)
        calls[f"s{k}"] = d
    long = Router(engine.rater.snapshot, engine.ledger, seed=1, quota_seconds=3600)
    d = long.authorize(NUMBER, CALLER, AT, call_id="long")
    # 420 s of bundle left; 1 yuan less 4 units of slack (0.60) pays 0.40: the fee and 3 minutes.
    assert d.allow and d.max_duration_seconds == 600 and d.reserved_seconds == 420
    assert d.reserved_minor == 500 + 3000 + 4 * 1500
    calls["long"] = d
    rows = [cdr("long", 600, MOBILE)] + [cdr(f"s{k}", 60, MOBILE) for k in range(3)]
    rated = engine.rate(pa.Table.from_pylist(rows)).rated
    overage = rated.column("overage_minor").to_pylist()
    assert overage == [0, 1500, 1500, 1500]  # more than the 0.35 the long call's overage alone would be
    assert sum(overage) <= sum(x.reserved_minor for x in calls.values()) <= CREDIT_LIMIT
    # A fourth short call would find no room for its slack-backed overage.
    assert not long.authorize(NUMBER, CALLER, AT, call_id="more").allow
