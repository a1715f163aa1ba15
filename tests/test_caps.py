"""Per-number monthly caps on spend and on calls, enforced at Authorize:
month-to-date use = committed calls of the number this calendar month
(Asia/Shanghai) plus the open reservations of its calls in progress; a call
at the cap is denied with its reason, and a spend grant is cut so that a
call cut at its grant cannot pass the cap."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from rating_core.accounts import Accounts, open_view
from rating_core.engine import Engine
from rating_core.ledger import usage
from rating_core.numbers import key
from rating_core.router import ANSWER_WAIT_S, ROUTE_REASON, Router
from rating_core.store import Ledger
from stores import compiled
from test_reservation import authorize_at_once

CATALOG = """
name: caps-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  pre_480: {kind: prepaid, fee: 480, period_months: 12, rates: [{rate: std}]}
customer_rules: {top_up_min: 600, top_up_min_months: 3, restore_months: 3, reclaim_months: 6, cooling_days: 90}
"""
SH = dt.timezone(dt.timedelta(hours=8))
T0 = int(dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH).timestamp() * 1000)
DEC1 = int(dt.datetime(2026, 12, 1, 0, 0, tzinfo=SH).timestamp() * 1000)  # a new month, local time
NUMBER, CALLER, DEST = "4001234567", "13812345678", "13700000001"
_ids = iter(range(10**9))


def rid():
    return f"r{next(_ids)}"


@pytest.fixture
def ops(tmp_path):
    store = compiled(tmp_path, CATALOG)
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(store, ledger)
    ops.open_account(rid(), "acme", "Acme Trading Co., Ltd.", at_ms=T0)
    ops.submit_documents(rid(), "acme", [("business_licence", "BL-1"), ("legal_representative_id", "ID-1")], at_ms=T0)
    ops.review_realname(rid(), "acme", True, at_ms=T0)
    ops.subscribe(rid(), "acme", "pre_480", start_ms=T0 - 86_400_000, at_ms=T0)
    ops.add_numbers(rid(), [NUMBER, "4001234568"], at_ms=T0)
    for n in (NUMBER, "4001234568"):
        ops.lock_number(rid(), n, "acme", at_ms=T0)
        ops.submit_number(rid(), n, at_ms=T0)
        ops.activate_number(rid(), n, "Shenzhen", at_ms=T0)
        ops.bind_destination(rid(), n, DEST, at_ms=T0)
        ops.verify_destination(rid(), n, DEST, "BILL-1", at_ms=T0)
    yield ops
    ledger.close()


def router(ops) -> Router:
    return Router(open_view(ops.store, ops.env), ops.ledger, seed=1)


def engine(ops) -> Engine:
    return Engine.open(ops.store.root)


def cdr(call_id, at, seconds, number=NUMBER):
    """A call answered 5 s after ``at`` and lasting ``seconds`` from the answer."""
    answered = at + 5000
    return {"call_id": call_id, "caller": CALLER, "number": number, "forwarded_to": DEST, "start": at,
            "ivr_answer": answered, "agent_answer": answered, "end": answered + seconds * 1000,
            "hangup_cause": "normal"}


def commit(ops, rows):
    e = engine(ops)
    try:
        return e.rate_and_commit(pa.Table.from_pylist(rows))
    finally:
        e.close()


def test_calls_cap_counts_committed_calls_and_calls_in_progress(ops):
    ops.set_caps(rid(), NUMBER, calls=3, at_ms=T0)
    r = router(ops)
    assert r.authorize(NUMBER, CALLER, T0, call_id="c1").allow
    assert r.authorize(NUMBER, CALLER, T0, call_id="c2").allow
    commit(ops, [cdr("c0", T0 - 60_000, 30)])  # one call already committed this month
    d = r.authorize(NUMBER, CALLER, T0, call_id="c3")
    assert (d.allow, d.reason, d.destinations, d.max_duration_seconds) == (False, "monthly_calls_cap", [], 0)
    assert d.reserved_minor == 0
    assert r.authorize(NUMBER, CALLER, T0).reason == "monthly_calls_cap"  # the query says the same
    # The other number of the account has no cap.
    assert r.authorize("4001234568", CALLER, T0, call_id="other").allow
    # c1 ends with no answered: it still counts while its answer may be on the
    # way (ANSWER_WAIT_S, README "Credit reservation": ended before answered),
    # then nothing is held any more and a slot is free again.
    assert r.call_event("c1", NUMBER, "ended", at_ms=T0 + 20_000)
    assert r.authorize(NUMBER, CALLER, T0 + 21_000, call_id="c4").reason == "monthly_calls_cap"
    waited = T0 + 20_000 + ANSWER_WAIT_S * 1000 + 1000
    assert r.authorize(NUMBER, CALLER, waited, call_id="c4").allow
    # A committed call that nobody answered does not count; an answered one does.
    commit(ops, [cdr("c9", T0, 0) | {"ivr_answer": None, "agent_answer": None}])
    assert r.authorize(NUMBER, CALLER, waited + 1000, call_id="c5").reason == "monthly_calls_cap"
    # A new calendar month (local time) starts from zero committed calls.
    r.call_event("c2", NUMBER, "ended", at_ms=T0 + 30_000)
    r.call_event("c4", NUMBER, "ended", at_ms=waited + 9000)
    assert r.authorize(NUMBER, CALLER, DEC1 - 1000, call_id="c6").allow is True  # 1 committed + c6 open
    assert r.authorize(NUMBER, CALLER, DEC1 - 1000, call_id="c7").allow is True
    assert r.authorize(NUMBER, CALLER, DEC1 - 1000, call_id="c8").reason == "monthly_calls_cap"
    r.call_event("c6", NUMBER, "ended", at_ms=DEC1)
    r.call_event("c7", NUMBER, "ended", at_ms=DEC1)
    assert r.authorize(NUMBER, CALLER, DEC1, call_id="c10").allow


def test_spend_cap_limits_the_grant_and_a_call_cut_there_stays_within_it(ops):
    # 0.30 yuan a month at 0.12 yuan per started minute: two minutes' worth.
    ops.set_caps(rid(), NUMBER, spend_minor=3000, at_ms=T0)
    r = router(ops)
    q = r.authorize(NUMBER, CALLER, T0)
    assert q.allow and q.max_duration_seconds == 120  # the query shows the cut grant, holds nothing
    d = r.authorize(NUMBER, CALLER, T0, call_id="s1")
    assert d.allow and d.max_duration_seconds == 120 and d.reserved_minor == 2400
    # 0.06 yuan of room left: not one started minute.
    d2 = r.authorize(NUMBER, CALLER, T0, call_id="s2")
    assert (d2.allow, d2.reason) == (False, "monthly_spend_cap")
    # s1 answered and cut at its grant: committed spend 0.24 yuan <= the cap.
    res = commit(ops, [cdr("s1", T0, d.max_duration_seconds)])
    assert res.rated.column("charge_minor").to_pylist() == [2400]
    with ops.ledger.env.begin() as txn:
        assert usage.get(ops.ledger, txn, key(NUMBER), usage.month_ids([T0])[0]) == (2400, 1)
    assert r.authorize(NUMBER, CALLER, T0 + 1000, call_id="s3").reason == "monthly_spend_cap"
    # Raising the cap (an operation) is seen by the next Authorize of a fresh view.
    ops.set_caps(rid(), NUMBER, spend_minor=6000, at_ms=T0)
    d3 = router(ops).authorize(NUMBER, CALLER, T0 + 2000, call_id="s4")
    assert d3.allow and d3.max_duration_seconds == 180 and d3.reserved_minor == 3600
    # Replaying the committed CDR counts nothing twice.
    again = commit(ops, [cdr("s1", T0, d.max_duration_seconds)])
    assert again.summary.replayed == 1
    with ops.ledger.env.begin() as txn:
        assert usage.get(ops.ledger, txn, key(NUMBER), usage.month_ids([T0])[0]) == (2400, 1)
    # Next month: the full cap again.
    assert router(ops).authorize(NUMBER, CALLER, DEC1, call_id="s5").max_duration_seconds == 300


def test_route_names_the_spend_cap_when_it_limits_the_grant(ops):
    """Newcomer N10 #2: the number's monthly spend cap, not credit, limits
    the grant: text, ``--json``'s ``detail`` and the Decision all say so."""
    import json
    import subprocess
    import sys

    from rating_core.router import decision_detail

    plain = router(ops).authorize(NUMBER, CALLER, T0)
    assert (plain.limit, plain.spend_left_minor) == ("credit", None)
    assert decision_detail(plain) == "credit allows any length (a call is at most 86400 s)"
    ops.set_caps(rid(), NUMBER, spend_minor=3000, at_ms=T0)  # 0.30 yuan: two started minutes
    capped = router(ops).authorize(NUMBER, CALLER, T0)
    assert (capped.limit, capped.spend_left_minor, capped.max_duration_seconds) == ("spend_cap", 3000, 120)
    assert decision_detail(capped) == "the number's monthly spend cap (0.30 yuan left) allows 120 s"
    # A reserving Authorize of the uncapped number is cut to one quota.
    held = router(ops).authorize("4001234568", CALLER, T0, call_id="q1")
    assert held.limit == "quota" and "3600 s" in decision_detail(held)

    def route(*extra):
        return subprocess.run([sys.executable, "-m", "rating_core", "route", NUMBER, CALLER, "--at",
                               "2026-11-02T10:00", "--store", str(ops.store.root), *extra],
                              capture_output=True, text=True)

    res = route()
    assert res.returncode == 0 and "the number's monthly spend cap (0.30 yuan left) allows 120 s;" in res.stdout, \
        res.stdout + res.stderr
    assert "credit allows" not in res.stdout
    out = json.loads(route("--json").stdout)
    assert (out["limit"], out["spend_left_minor"], out["max_duration_seconds"]) == ("spend_cap", 3000, 120)
    assert out["detail"] == "the number's monthly spend cap (0.30 yuan left) allows 120 s"


def test_a_reservation_made_before_the_cap_was_set_counts_against_it(ops):
    # Two calls authorised (and held) while the number had no cap at all.
    r = router(ops)
    early = r.authorize(NUMBER, CALLER, T0, call_id="e1")
    assert early.allow and early.reserved_minor > 0
    assert r.authorize(NUMBER, CALLER, T0, call_id="e2").allow
    # Then a cap: two calls a month -- both are in progress, so a third is denied.
    ops.set_caps(rid(), NUMBER, calls=2, at_ms=T0)
    capped = router(ops)
    assert capped.authorize(NUMBER, CALLER, T0 + 1000, call_id="e3").reason == "monthly_calls_cap"
    # A spend cap of exactly what the two early holds reserve leaves no room either.
    ops.set_caps(rid(), NUMBER, spend_minor=2 * early.reserved_minor, at_ms=T0)
    assert router(ops).authorize(NUMBER, CALLER, T0 + 2000, call_id="e4").reason == "monthly_spend_cap"
    # The early calls end unanswered: their holds are gone, the room is back.
    assert capped.call_event("e1", NUMBER, "ended", at_ms=T0 + 3000)
    assert capped.call_event("e2", NUMBER, "ended", at_ms=T0 + 3000)
    assert router(ops).authorize(NUMBER, CALLER, T0 + 4000, call_id="e5").allow


def test_rerating_moves_the_counted_spend_the_spend_cap_reads(ops, tmp_path):
    from rating_core.rerate import rerate_in

    ops.set_caps(rid(), NUMBER, spend_minor=10_000, at_ms=T0)  # 1 yuan a month
    month = usage.month_ids([T0])[0]

    def counted():
        with ops.ledger.env.begin() as txn:
            return usage.get(ops.ledger, txn, key(NUMBER), month)

    res = commit(ops, [cdr("r1", T0, 115)])  # 2 started minutes at 0.12 = 0.24 yuan
    assert res.rated.column("charge_minor").to_pylist() == [2400] and counted() == (2400, 1)
    # 0.76 yuan of room: 6 started minutes at 0.12.
    assert router(ops).authorize(NUMBER, CALLER, T0 + 1000).max_duration_seconds == 360
    for version, price in ((2, "0.24"), (3, "0.06")):
        (tmp_path / f"v{version}.yaml").write_text(CATALOG.replace("price: 0.12", f"price: {price}"))
        assert ops.store.compile(tmp_path / f"v{version}.yaml") == version
    # A dry run and a rerating of another day move nothing.
    rerate_in(ops.store, ops.ledger, 2, "2026-11-02", "2026-11-02", dry_run=True, now_ms=T0 + 10_000)
    rerate_in(ops.store, ops.ledger, 2, "2026-11-03", "2026-11-03", now_ms=T0 + 10_000)
    assert counted() == (2400, 1)
    # Rerated dearer (0.48 yuan): the month's counted spend is the new charge, still one call.
    r = rerate_in(ops.store, ops.ledger, 2, "2026-11-02", "2026-11-02", now_ms=T0 + 10_000)
    assert [a.delta_minor for a in r.adjustments] == [2400]
    assert counted() == (4800, 1)
    # 0.52 yuan of room: 4 started minutes at 0.12 (the active version's price).
    assert router(ops).authorize(NUMBER, CALLER, T0 + 20_000).max_duration_seconds == 240
    # Run again: already rerated under version 2, nothing moves twice.
    assert rerate_in(ops.store, ops.ledger, 2, "2026-11-02", "2026-11-02", now_ms=T0 + 30_000).skipped == 1
    assert counted() == (4800, 1)
    # Rerated cheaper under version 3 (0.12 yuan): the count comes down with the charge.
    r = rerate_in(ops.store, ops.ledger, 3, "2026-11-02", "2026-11-02", now_ms=T0 + 40_000)
    assert [a.delta_minor for a in r.adjustments] == [-3600]
    assert counted() == (1200, 1)
    assert router(ops).authorize(NUMBER, CALLER, T0 + 50_000).max_duration_seconds == 420


def test_concurrent_authorizations_never_pass_the_spend_cap(ops):
    ops.set_caps(rid(), NUMBER, spend_minor=10_000, at_ms=T0)  # 1 yuan: 8 started minutes
    got = authorize_at_once(router(ops), NUMBER, CALLER, T0, 20, "k")
    allowed = [d for d in got.values() if d.allow]
    assert sum(d.reserved_minor for d in allowed) <= 10_000
    assert {d.reason for d in got.values() if not d.allow} <= {"monthly_spend_cap"}
    # Every allowed call answered and cut at its grant: the month's spend stays within the cap.
    res = commit(ops, [cdr(f"k{k}", T0, d.max_duration_seconds) for k, d in got.items() if d.allow])
    assert sum(res.rated.column("charge_minor").to_pylist()) <= 10_000


def test_batch_denies_numbers_at_their_cap(ops):
    ops.set_caps(rid(), NUMBER, calls=2, at_ms=T0)
    r = router(ops)
    cols = {"number": [NUMBER] * 3 + ["4001234568"], "caller": [CALLER] * 4, "at_ms": [T0] * 4}
    out = r.authorize_batch(cols)
    assert [ROUTE_REASON[x] for x in out["reason"]] == ["ok", "ok", "monthly_calls_cap", "ok"]
    assert [d.reason for d in r.decisions(out)][2] == "monthly_calls_cap"
    commit(ops, [cdr("b1", T0, 10), cdr("b2", T0, 10)])
    out = r.authorize_batch(cols, reserve=False)
    assert [ROUTE_REASON[x] for x in out["reason"]] == ["monthly_calls_cap"] * 3 + ["ok"]


def test_caps_are_checked_at_the_edge(ops):
    from rating_core.errors import InvalidInput

    with pytest.raises(InvalidInput) as e:
        ops.set_caps(rid(), NUMBER, spend_minor=-1)
    assert e.value.field == "spend_minor"
    with pytest.raises(InvalidInput) as e:
        ops.set_caps(rid(), NUMBER, calls=2**31)
    assert e.value.field == "calls"


# -- notification: credit below N days of typical use ---------------------------------
DAY = 86_400_000


def test_credit_below_n_days_of_typical_use_is_raised_once_per_crossing(tmp_path):
    store = compiled(tmp_path, CATALOG)
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(store, ledger)
    try:
        ops.open_account(rid(), "busy", "Busy Co.", at_ms=T0 - 40 * DAY)
        ops.subscribe(rid(), "busy", "pre_480", start_ms=T0 - 40 * DAY, at_ms=T0 - 40 * DAY)
        ops.set_notifications(rid(), "busy", credit_below_days=1200, at_ms=T0)
        assert ops.get_account("busy")["account"]["alert_credit_days"] == 1200
        # No committed use yet: no typical use, no alert.
        assert [r for r in ops.sweep(T0) if r["operation"] == "alert"] == []
        # A 10-minute call (1.20 yuan) on each of the last 10 days: 12 yuan over the
        # 30-day window = 0.40 yuan a day; 468 yuan left covers 1170 days < 1200.
        rows = [{"call_id": f"d{k}", "caller": CALLER, "number": NUMBER, "forwarded_to": DEST,
                 "start": T0 - k * DAY, "ivr_answer": T0 - k * DAY, "agent_answer": T0 - k * DAY,
                 "end": T0 - k * DAY + 600_000, "hangup_cause": "normal"} for k in range(1, 11)]
        ops.add_numbers(rid(), [NUMBER], at_ms=T0 - 40 * DAY)
        ops.submit_documents(rid(), "busy", [("business_licence", "B"), ("legal_representative_id", "I")],
                             at_ms=T0 - 40 * DAY)
        ops.review_realname(rid(), "busy", True, at_ms=T0 - 40 * DAY)
        ops.lock_number(rid(), NUMBER, "busy", at_ms=T0 - 40 * DAY)
        ops.submit_number(rid(), NUMBER, at_ms=T0 - 40 * DAY)
        ops.activate_number(rid(), NUMBER, "Shenzhen", at_ms=T0 - 40 * DAY)
        assert commit(ops, rows).summary.rated == 10
        raised = [r for r in ops.sweep(T0) if r["operation"] == "alert"]
        assert [(r["detail"]["alert"], r["detail"]["raised"]) for r in raised] == [("credit_days_low", True)]
        assert "credit_days_low" in ops.get_account("busy")["account"]["alerts"]
        # Once per crossing: the next sweeps raise nothing new.
        assert [r for r in ops.sweep(T0 + 1000) if r["operation"] == "alert"] == []
        # A top-up lifts it over 1200 days: cleared once.
        ops.top_up(rid(), "busy", 600 * 10_000, at_ms=T0 + 2000)
        cleared = [r for r in ops.sweep(T0 + 3000) if r["operation"] == "alert"]
        assert [(r["detail"]["alert"], r["detail"]["raised"]) for r in cleared] == [("credit_days_low", False)]
        assert ops.get_account("busy")["account"]["alerts"] == []
        with ledger.env.begin() as txn:
            assert usage.typical_daily(ledger, txn, "busy", T0, T0 - 40 * DAY) == (10 * 12_000, 30)
            assert usage.typical_daily(ledger, txn, "busy", T0, T0 - 5 * DAY) == (5 * 12_000, 5)  # young package
            # The window slides: a month after the last call there is no typical use left.
            assert usage.typical_daily(ledger, txn, "busy", T0 + 31 * DAY, T0 - 40 * DAY) == (0, 30)
    finally:
        ledger.close()


def test_credit_below_days_is_checked_at_the_edge(ops):
    from rating_core.errors import InvalidInput

    with pytest.raises(InvalidInput) as e:
        ops.set_notifications(rid(), "acme", credit_below_days=3651)
    assert e.value.field == "credit_below_days"
