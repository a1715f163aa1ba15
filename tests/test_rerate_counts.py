"""Rerating and a number's monthly calls count (README "Monthly caps per
number" and "Rerating"): the count follows each call's billable seconds as
last rated, in the adjustment's transaction; a charge alone never moves it,
a call the new version cannot rate keeps its count, a repeated rerating
moves nothing, a rerating back to a version applied before moves it again."""
from __future__ import annotations

import gc

import pyarrow as pa
import pytest

from rating_core.engine import Engine
from rating_core.ledger import adjustments, call_key, usage
from rating_core.numbers import key
from rating_core.rerate import rerate_in
from rating_core.store import Store

CATALOG = """
name: rerate-count-test
destination_classes: [mobile]
destination_prefixes: {"1": mobile}
time_bands: [{name: all}]
billable_seconds: BILLABLE
rates:
  std: {tiers: [{price: PRICE}]}
packages:
  owes: {kind: payg, rates: [{rate: std}]}
accounts:
  acme:
    package: owes
    package_start: 2026-01-01
    numbers: [{number: "NUMBER", home_city: Shenzhen}]
"""
NUMBER, CALLER, MOBILE = "4000000102", "13912345678", "13700000001"
AT = 1_772_589_600_000  # 2026-03-04 10:00 +08:00
DAY = "2026-03-04"


def catalog(billable="ceil", price="0.12", number=NUMBER) -> str:
    return CATALOG.replace("BILLABLE", billable).replace("PRICE", price).replace("NUMBER", number)


@pytest.fixture
def world(tmp_path):
    """Versions: 1 as committed (ceil, 0.12/min), 2 free (price 0), 3
    truncate (a half-second call is 0 billable seconds), 4 without the
    number (the calls cannot be rated)."""
    store = Store(tmp_path / "store")
    for v, text in enumerate([catalog(), catalog(price="0"), catalog(billable="truncate"),
                              catalog(number="4000000999")], 1):
        (tmp_path / f"v{v}.yaml").write_text(text)
        store.compile(tmp_path / f"v{v}.yaml", activate=v == 1)
    del store
    gc.collect()
    engine = Engine.open(tmp_path / "store")
    rows = [{"call_id": cid, "caller": CALLER, "number": NUMBER, "forwarded_to": MOBILE, "start": AT,
             "ivr_answer": AT + 1000, "agent_answer": AT + 1000, "end": AT + 1000 + ms, "hangup_cause": "normal"}
            for cid, ms in (("long", 30_000), ("short", 500), ("missed", 0))]
    rated = engine.rate_and_commit(pa.Table.from_pylist(rows)).rated
    assert rated.column("billable_seconds").to_pylist() == [30, 1, 0]
    yield engine
    engine.close()


def counted(engine) -> tuple[int, int]:
    """(spend_minor, calls) of the number's month, and the account's day agrees."""
    with engine.ledger.env.begin() as txn:
        month = usage.get(engine.ledger, txn, key(NUMBER), usage.month_ids([AT])[0])
        day = usage.spend_between(engine.ledger, txn, "acme", usage.local_day(AT), usage.local_day(AT) + 1)
    assert day == month[0]
    return month


def rerate(engine, version, at):
    return rerate_in(engine.store, engine.ledger, version, DAY, DAY, now_ms=at)


def test_the_calls_count_follows_billable_seconds_as_last_rated(world):
    engine = world
    assert counted(engine) == (2400, 2)  # the missed call (0 billable seconds) is no use of the number
    # Free: the charges go, the calls stay (both lines were answered and used).
    r = rerate(engine, 2, AT + 10**6)
    assert sorted((a.call_id, a.delta_minor, a.new_billable_seconds) for a in r.adjustments) == [
        ("long", -1200, 30), ("short", -1200, 1)]
    assert counted(engine) == (0, 2)
    # Truncated: the half-second call has no billable second left: out of the
    # count, by an adjustment that moves no money.
    r = rerate(engine, 3, AT + 2 * 10**6)
    assert sorted((a.call_id, a.delta_minor, a.new_billable_seconds) for a in r.adjustments) == [
        ("long", 1200, 30), ("short", 0, 0)]
    assert counted(engine) == (1200, 1)
    # Back to version 1: it counts again (from the billable seconds version 3 left).
    r = rerate(engine, 1, AT + 3 * 10**6)
    assert [(a.call_id, a.delta_minor, a.new_billable_seconds) for a in r.adjustments] == [("short", 1200, 1)]
    assert r.unchanged == 2
    assert counted(engine) == (2400, 2)
    # A version that cannot rate the calls leaves count and charge as they are.
    r = rerate(engine, 4, AT + 4 * 10**6)
    assert (r.not_rerated, r.adjustments) == (3, [])
    assert counted(engine) == (2400, 2)
    # The last run repeated moves nothing: "short" is where version 1 put it
    # (skipped); "long" and the missed call are as version 1 rates them (unchanged).
    r = rerate(engine, 1, AT + 5 * 10**6)
    assert (r.skipped, r.unchanged, r.adjustments) == (1, 2, [])
    assert counted(engine) == (2400, 2)
    # Version 3 again is a run of its own: the half-second call leaves the count again.
    r = rerate(engine, 3, AT + 6 * 10**6)
    assert [(a.call_id, a.delta_minor, a.new_billable_seconds) for a in r.adjustments] == [("short", -1200, 0)]
    assert counted(engine) == (1200, 1)
    # Each adjustment keeps its new billable seconds (explain / statements read them).
    with engine.ledger.env.begin() as txn:
        rows = adjustments.of_call(engine.ledger, txn, call_key("short"))
    assert [(a.seq, a.version, a.new_charge_minor, a.new_billable_seconds, a.reason) for a in rows] == [
        (1, 2, 0, 1, "rerated under catalog version 2"), (2, 3, 0, 0, "rerated under catalog version 3"),
        (3, 1, 1200, 1, "rerated under catalog version 1"), (4, 3, 0, 0, "rerated under catalog version 3")]


def test_a_dry_run_moves_no_count(world):
    engine = world
    r = rerate_in(engine.store, engine.ledger, 3, DAY, DAY, dry_run=True, now_ms=AT + 10**6)
    assert [(a.call_id, a.new_billable_seconds) for a in r.adjustments] == [("short", 0)]
    assert counted(engine) == (2400, 2)


def test_an_adjustment_stored_before_billable_seconds_were_kept_reads_as_unknown(world):
    """Rows written before this change (account NUL reason, nothing after)
    read -1, and the next rerating starts from the committed record."""
    engine = world
    a = adjustments.Adjustment("short", "acme", 2, 1200, 0, -1200, -1200, AT, "old row", seq=1)
    with engine.ledger.env.begin(write=True) as txn:
        adjustments.put(engine.ledger, txn, call_key("short"), a)
        assert adjustments.latest(engine.ledger, txn, call_key("short")) == adjustments.Latest(0, -1200, -1, 2, 1)
        assert adjustments.of_call(engine.ledger, txn, call_key("short"))[0].reason == "old row"
