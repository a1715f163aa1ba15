"""Late CDRs: a call is rated under the package period and number state in
force at its start, whenever its CDR arrives (README "Late CDRs").

Worked examples on a real store, ledger and customer layer (1 yuan = 10000
minor units). ``acme`` is imported on ``pre_a`` from 2026-10-01 (0.12
yuan/min, fee 480); each call is 100 minutes:

* change to ``pre_b`` (0.10/min, fee 600) on 11-15; the 11-10 call arrives
  after: 12.00 under pre_a (not 10.00 under pre_b, not rejected
  ``package_not_started``), drawn from the one credit balance:
  480 carried + 600 = 1080 - 12 = 1068.
* renewal on 11-15; the 11-10 call arrives after: rated, credit 480 + 480 - 12.
* the number suspended on 11-15: the 11-10 call arrives after and is rated;
  a call on 11-16 (really suspended) is ``number_not_active``; after the
  restore on 11-20 a late 11-16 call is still refused and an 11-21 call rated.
* bundle ``bun_a`` (100 min, overage 0.20) -> ``bun_b`` on 11-15: a late
  11-10 call of bun_a's period draws from bun_a's own allowance of that
  month (100 minutes left: nothing to pay), as it would have on time.

Both faces: ``rating400 rate --commit`` and the gRPC ``RateCdr`` /
``RateCdrBatches`` of a running server.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import re

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clock import when_dated
from rating_core.accounts import Accounts
from rating_core.accounts import periods as P
from rating_core.accounts.importer import import_catalog
from rating_core.cli import main
from rating_core.engine import Engine
from rating_core.ledger import Ledger
from rating_core.ledger import customers as C
from rating_core.store import Store
from stores import compiled

CATALOG = """
name: late-cdr-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
  cheap: {tiers: [{price: 0.10}]}
packages:
  pre_a: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rates: [{rate: std}]}
  pre_b: {kind: prepaid, fee: 600, period_months: 12, monthly_minimum: 60, rates: [{rate: cheap}]}
  bun_a: {kind: bundle, included_minutes: 100, overage_price: 0.20, rates: [{rate: std}]}
  bun_b: {kind: bundle, included_minutes: 300, overage_price: 0.15, rates: [{rate: std}]}
number_grades:
  standard: {}
customer_rules: {top_up_min: 100, top_up_min_months: 1, restore_months: 3, reclaim_months: 6, cooling_days: 90}
routing_plans:
  office:
    groups:
      desk: {destinations: [{number: "13700000001"}]}
    rules: [{group: desk}]
accounts:
  acme:
    name: Acme Co.
    package: PACKAGE
    package_start: 2026-10-01
    numbers:
      - {number: "4001110001", home_city: Shenzhen, routing: office}
"""
PAYG = "  pay: {kind: payg, credit_limit: 100000, rates: [{rate: std}]}\n" \
       "  pay2: {kind: payg, credit_limit: 100000, rates: [{rate: cheap}]}\n"
SH = dt.timezone(dt.timedelta(hours=8))
YUAN = 10_000
NUMBER = "4001110001"


def at(month, day, hour=10):
    return int(dt.datetime(2026, month, day, hour, tzinfo=SH).timestamp() * 1000)


def cdr(call_id, start, minutes=100):
    return {"call_id": call_id, "caller": "13812345678", "number": NUMBER, "forwarded_to": "13700000001",
            "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 2_000,
            "end": start + 2_000 + minutes * 60_000, "hangup_cause": "normal_clearing"}


def cdr_columns(calls):
    """``calls`` (``cdr`` dicts) as one gRPC ``CdrColumns`` message."""
    from rating400.v1 import rating_pb2

    return rating_pb2.CdrColumns(
        call_id=[x["call_id"] for x in calls], caller=[x["caller"] for x in calls],
        number=[x["number"] for x in calls], forwarded_to=[x["forwarded_to"] for x in calls],
        start_ms=[x["start"] for x in calls], ivr_answer_ms=[x["ivr_answer"] for x in calls],
        agent_answer_ms=[x["agent_answer"] for x in calls], end_ms=[x["end"] for x in calls],
        hangup_cause=[x["hangup_cause"] for x in calls])


def setup_store(tmp_path, package):
    store = compiled(tmp_path, CATALOG.replace("PACKAGE", package))
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(store, ledger)
    assert import_catalog(ops, tmp_path / "catalog.yaml")["imported"] == ["acme"]
    # A November change or renewal is made on its date: dated back into an ended month, it is refused.
    return tmp_path / "store", when_dated(ops), ledger


def change(ops):
    ops.change_package("chg", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))


def renew(ops):
    ops.renew("ren", "acme", at_ms=at(11, 15, 0))


def suspend(ops):
    ops.number_transition("sus", NUMBER, "suspend", "manual", at_ms=at(11, 15, 0))


# The packages of every kind, ``bun_a`` with a 50.00 rental: the catalog of
# the mixed-kind month stories (package changes between kinds within a month).
RENTED = CATALOG.replace("packages:\n", "packages:\n" + PAYG).replace(
    "bun_a: {kind: bundle, included_minutes: 100, overage_price: 0.20,",
    "bun_a: {kind: bundle, included_minutes: 100, overage_price: 0.20, rental: 50,")


def acme_statements(tmp_path, store, capsys, months=("2026-11",), formats="json", lang=None) -> list[dict]:
    """``bill --ledger`` of acme into ``tmp_path/st``; the JSON statement of each of ``months``."""
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(tmp_path / "b.parquet"), "--account",
              "acme", "--statements", str(tmp_path / "st"), "--format", formats, *(["--lang", lang] if lang else [])])
    assert e.value.code == 0, capsys.readouterr().err
    capsys.readouterr()
    return [json.loads((tmp_path / "st" / f"acme-{m}.json").read_text("utf-8"))["statements"][0] for m in months]


def rerate_november(tmp_path, store, capsys, package, prices):
    """Compile version 2 of ``RENTED`` (acme on ``package``) with the rates'
    ``prices`` ({rate: yuan per minute as written, e.g. {"std": "0.24"}}),
    rerate November on 11-29 and return (the ``RerateResult``, acme's stored
    credit after it, minor units). Close the test's own ``Ledger`` first."""
    from rating_core.ledger import Ledger
    from rating_core.rerate import rerate

    text = RENTED.replace("PACKAGE", package)
    for rate, price in prices.items():
        text = re.sub(rf"{rate}: {{tiers: \[{{price: [0-9.]+}}\]}}", f"{rate}: {{tiers: [{{price: {price}}}]}}", text)
    v2 = tmp_path / "v2.yaml"
    v2.write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(v2), "--store", str(store)])
    assert e.value.code == 0, capsys.readouterr().err
    result = rerate(store, 2, "2026-11-01", "2026-11-30", now_ms=at(11, 29))
    after = Ledger(store)
    try:
        return result, after.stored("acme").credit_minor
    finally:
        after.close()


def engine_rows(store, calls):
    engine = Engine.open(store)
    try:
        res = engine.rate_and_commit(pa.Table.from_pylist(calls))
        return res.rated.to_pylist(), res.rejects.to_pylist()
    finally:
        engine.close()


# ---- the worked examples, in process --------------------------------------------------------------
def test_a_call_before_a_package_change_is_rated_under_the_old_package(tmp_path):
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    change(ops)
    rated, rejects = engine_rows(store, [cdr("late", at(11, 10)), cdr("new", at(11, 20))])
    assert rejects == []
    late, new = rated
    assert (late["package"], late["rate"], late["charge_minor"], late["credit_consumed_minor"]) == ("pre_a", "std", 12 * YUAN,
                                                                                      12 * YUAN)
    assert (new["package"], new["rate"], new["charge_minor"]) == ("pre_b", "cheap", 10 * YUAN)
    # One credit balance: 480 carried + 600 fee, less both calls.
    assert ledger.stored("acme").credit_minor == (480 + 600 - 12 - 10) * YUAN
    assert late["credit_after_minor"] == (1080 - 12) * YUAN


def test_a_call_before_a_renewal_is_rated_and_drawn_from_the_one_balance(tmp_path):
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    renew(ops)
    rated, rejects = engine_rows(store, [cdr("late", at(11, 10))])
    assert rejects == [] and rated[0]["charge_minor"] == 12 * YUAN and rated[0]["overage_minor"] == 0
    assert ledger.stored("acme").credit_minor == (480 + 480 - 12) * YUAN


def test_a_call_before_a_suspension_is_rated_and_one_while_suspended_is_not(tmp_path):
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    suspend(ops)
    rated, rejects = engine_rows(store, [cdr("late", at(11, 10)), cdr("during", at(11, 16))])
    assert [r["call_id"] for r in rated] == ["late"]
    assert [(r["call_id"], r["field"], r["reason"]) for r in rejects] == [("during", "number", "number_not_active")]
    ops.number_transition("res", NUMBER, "restore", at_ms=at(11, 20, 0))
    rated, rejects = engine_rows(store, [cdr("during2", at(11, 16)), cdr("after", at(11, 21))])
    assert [r["call_id"] for r in rated] == ["after"]
    assert [r["reason"] for r in rejects] == ["number_not_active"]


def test_calls_before_the_account_existed_keep_their_reason(tmp_path):
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    change(ops)
    _, rejects = engine_rows(store, [cdr("before", at(9, 20))])
    assert [(r["field"], r["reason"]) for r in rejects] == [("start", "package_not_started")]


def test_a_late_call_of_an_earlier_bundle_period_draws_from_its_own_allowance(tmp_path):
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    ops.change_package("chg", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    rated, rejects = engine_rows(store, [cdr("new", at(11, 20), 50), cdr("late", at(11, 10))])
    assert rejects == []
    by = {r["call_id"]: r for r in rated}
    assert (by["late"]["package"], by["late"]["bundle_seconds_consumed"], by["late"]["charge_minor"],
            by["late"]["bundle_left_seconds"]) == ("bun_a", 6000, 0, 0)
    assert (by["new"]["package"], by["new"]["bundle_seconds_consumed"], by["new"]["charge_minor"]) == ("bun_b", 3000, 0)
    assert by["new"]["bundle_left_seconds"] == 250 * 60


def test_the_statement_shows_the_late_call_under_the_old_package(tmp_path, capsys):
    """November's statement (from the ledger) bills the late 11-10 call at
    pre_a's 0.12/min (12.00), under pre_a (in force at the month's start),
    and closes at the ledger's credit: 480 + 600 - 12."""
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    change(ops)
    engine_rows(store, [cdr("late", at(11, 10))])
    out = tmp_path / "bills.parquet"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(out), "--account", "acme",
              "--statements", str(tmp_path / "st"), "--format", "json"])
    assert e.value.code == 0, capsys.readouterr().err
    nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert (nov["package"], nov["calls"], nov["usage_minor"], nov["credit_consumed_minor"]) == (
        "pre_a", 1, 12 * YUAN, 12 * YUAN)
    assert nov["closing_credit_minor"] == ledger.stored("acme").credit_minor == (480 + 600 - 12) * YUAN
    assert [(c["from"], c["to"]) for c in nov["package_changes"]] == [("pre_a", "pre_b")]


def test_an_open_engine_sees_the_history_of_an_operation_made_while_it_runs(tmp_path, monkeypatch):
    """The incremental view update (``accounts.view.update_view``): the
    package change and the suspension reach a running engine by
    ``refresh``, history included."""
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    engine = Engine.open(store)
    try:
        first = engine.rate_and_commit(pa.Table.from_pylist([cdr("early", at(11, 1))]))
        assert first.rated.column("package").to_pylist() == ["pre_a"]
        from rating_core.accounts import view

        def no_rebuild(*a):
            raise AssertionError("the patch path should apply these changes")
        monkeypatch.setattr(view, "build_view", no_rebuild)
        change(ops)
        suspend(ops)
        engine.refresh()
        res = engine.rate_and_commit(pa.Table.from_pylist([cdr("late", at(11, 10)), cdr("during", at(11, 16))]))
        assert [(r["call_id"], r["package"], r["charge_minor"]) for r in res.rated.to_pylist()] == [
            ("late", "pre_a", 12 * YUAN)]
        assert [r["reason"] for r in res.rejects.to_pylist()] == ["number_not_active"]
        ops.number_transition("res", NUMBER, "restore", at_ms=at(11, 20, 0))
        engine.refresh()
        res = engine.rate_and_commit(pa.Table.from_pylist([cdr("after", at(11, 21))]))
        assert [(r["package"], r["charge_minor"]) for r in res.rated.to_pylist()] == [("pre_b", 10 * YUAN)]
    finally:
        engine.close()
    assert ledger.stored("acme").credit_minor == (480 - 12 + 600 - 12 - 10) * YUAN


# ---- CLI: rating400 rate --commit ------------------------------------------------------------------
@pytest.mark.parametrize("operation", [change, renew, suspend])
def test_cli_rate_commit_rates_the_late_call(tmp_path, capsys, operation):
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    operation(ops)
    pq.write_table(pa.Table.from_pylist([cdr("late", at(11, 10))]), tmp_path / "cdrs.parquet")
    with pytest.raises(SystemExit) as e:
        main(["rate", str(tmp_path / "cdrs.parquet"), "--store", str(store), "--commit", "--json",
              "--out", str(tmp_path / "rated.parquet")])
    out = capsys.readouterr().out
    assert e.value.code == 0, out
    summary = json.loads(out)
    assert (summary["rated"], summary["rejected"]) == (1, 0), summary
    row = pq.read_table(tmp_path / "rated.parquet").to_pylist()[0]
    assert (row["package"], row["charge_minor"]) == ("pre_a", 12 * YUAN)
    # November has ended (today is in December, or later): its statement
    # changes, and the commit says so (newcomer 2026-12-02 #5).
    assert summary["in_ended_months"] == {"2026-11": 1}


def test_calls_of_ended_months_are_counted_by_month():
    from rating_core.cli import calls_in_ended_months, ended_month_warnings

    starts = pa.chunked_array([pa.array([at(10, 20), at(11, 3), at(11, 30, 23), at(12, 1, 0), at(12, 2)],
                                        pa.timestamp("ms", tz="Asia/Shanghai"))])
    counted = calls_in_ended_months(starts, now_ms=at(12, 2, 12))
    assert counted == {"2026-10": 1, "2026-11": 2}
    assert ended_month_warnings(counted)[0].startswith(
        "warning: 3 call(s) of ended months committed (2026-10: 1, 2026-11: 2): those months' statements change")
    assert calls_in_ended_months(starts, now_ms=at(10, 1, 0)) == {} and ended_month_warnings({}) == []


def test_a_call_starting_in_the_future_is_a_reject_of_a_commit_not_of_a_dry_rating(tmp_path, capsys):
    """Breaker N11 F4: a CDR dated 2060 was rated and committed (``rate
    --commit``), and ``bill --ledger`` then billed every account every month
    to 2060 (205,745 yuan of future rentals); a start 50 minutes ahead was
    committed too. A committed call whose start is later than now +
    ``AHEAD_MS`` (10 minutes, the operations' skew) is now a reject of its
    row (``start``, code ``start_in_future``); a dry rating still prices it."""
    import time

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    ledger.close()
    soon = time.time_ns() // 1_000_000 + 50 * 60_000
    calls = [cdr("past", at(11, 10)), cdr("y2060", int(dt.datetime(2060, 11, 2, 10, tzinfo=SH).timestamp() * 1000)),
             cdr("soon", soon), cdr("skew", time.time_ns() // 1_000_000 + 5 * 60_000, minutes=1),
             # Started a minute ago, lasting 10 hours: its end is in the future (breaker N12 F12).
             cdr("day", time.time_ns() // 1_000_000 - 60_000, minutes=600)]
    pq.write_table(pa.Table.from_pylist(calls), tmp_path / "cdrs.parquet")
    base = ["rate", str(tmp_path / "cdrs.parquet"), "--store", str(store), "--json",
            "--out", str(tmp_path / "rated.parquet"), "--rejects", str(tmp_path / "rj.csv")]
    with pytest.raises(SystemExit) as e:
        main(base)  # dry: a what-if prices every call
    summary = json.loads(capsys.readouterr().out)
    assert e.value.code == 0 and (summary["rated"], summary["rejected"]) == (5, 0), summary
    with pytest.raises(SystemExit) as e:
        main(base + ["--commit"])
    summary = json.loads(capsys.readouterr().out)
    assert e.value.code == 0 and (summary["rated"], summary["rejected"]) == (2, 3), summary
    assert pq.read_table(tmp_path / "rated.parquet").column("call_id").to_pylist() == ["past", "skew"]
    import csv

    rejects = list(csv.DictReader(open(tmp_path / "rj.csv", encoding="utf-8-sig")))
    assert [(r["call_id"], r["field"], r["code"]) for r in rejects] == [("y2060", "start", "start_in_future"),
                                                                         ("soon", "start", "start_in_future"),
                                                                         ("day", "end", "end_in_future")]
    # The value as given: the file's epoch milliseconds (breaker N13 F10).
    assert rejects[0]["value"] == str(calls[1]["start"]) and "in the future" in rejects[0]["reason"]
    # Nothing of the rejected calls reached the ledger: the bill stops at the current month.
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(tmp_path / "b.json")])
    assert e.value.code == 0
    months = {s["month"] for s in json.loads((tmp_path / "b.json").read_text("utf-8"))["statements"]}
    assert max(months) <= dt.datetime.now(SH).strftime("%Y-%m"), months


def test_a_future_reject_shows_the_time_as_given(tmp_path, capsys):
    """Breaker N13 F10: a ``start_in_future`` / ``end_in_future`` reject
    wrote the time parsed and cut to the second (``...13:56:11+08:00`` for
    ``...13:56:11.036+08:00``), while the ``after_end`` reject of the same
    file showed its value as written. Each now shows the cell as the file
    wrote it: ISO text with its milliseconds, epoch milliseconds."""
    import csv

    from clock import clock_at

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    ledger.close()
    now = at(11, 20)
    header = "call_id,caller,number,forwarded_to,start,ivr_answer,agent_answer,end,hangup_cause\n"
    rows = ["ok,13812345678,{n},13700000001,2026-11-20T09:00:00.250+08:00,,,2026-11-20T09:01:00.250+08:00,x",
            # starts 20 minutes ahead
            "s,13812345678,{n},13700000001,2026-11-20T10:20:11.036+08:00,,,2026-11-20T10:21:11.036+08:00,x",
            # started a minute ago, ends 11 minutes ahead
            "e,13812345678,{n},13700000001,2026-11-20 09:59:00.5,,,2026-11-20 10:11:11.036,x",
            f"m,13812345678,{{n}},13700000001,{now + 30 * 60_000 + 7},,,{now + 31 * 60_000 + 7},x",
            # the answer after the end: a reject of the edge, its value as written
            "a,13812345678,{n},13700000001,2026-11-20T09:00:00.250+08:00,,2026-11-20T09:05:00.036+08:00,"
            "2026-11-20T09:01:00.250+08:00,x"]
    (tmp_path / "fut.csv").write_text(header + "\n".join(r.format(n=NUMBER) for r in rows) + "\n")
    with clock_at(now), pytest.raises(SystemExit) as e:
        main(["rate", str(tmp_path / "fut.csv"), "--store", str(store), "--commit", "--json",
              "--out", str(tmp_path / "rated.parquet"), "--rejects", str(tmp_path / "rj.csv")])
    summary = json.loads(capsys.readouterr().out)
    assert e.value.code == 0 and (summary["rated"], summary["rejected"]) == (1, 4), summary
    rejects = {r["call_id"]: (r["field"], r["code"], r["value"])
               for r in csv.DictReader(open(tmp_path / "rj.csv", encoding="utf-8-sig"))}
    assert rejects == {"s": ("start", "start_in_future", "2026-11-20T10:20:11.036+08:00"),
                       "e": ("end", "end_in_future", "2026-11-20 10:11:11.036"),
                       "m": ("start", "start_in_future", str(now + 30 * 60_000 + 7)),
                       "a": ("agent_answer", "after_end", "2026-11-20T09:05:00.036+08:00")}, rejects


def test_the_default_bill_run_ends_at_the_current_month(tmp_path, capsys):
    """Newcomer N11 F5: ``bill --ledger`` without ``--month`` ran only to
    the last month with calls or money events, so a prepaid account owing
    its 40.00 monthly minimum in November and December got October alone,
    with no hint. It now runs to the current month (Asia/Shanghai) when an
    account's package has started: minimums and rentals accrue without
    calls. Breaker N11 F4: it never runs past the current month either; a
    call dated later (committed before ``start_in_future`` was a reject, or
    a dry what-if in a rated file) is named in a warning and billed with
    ``--month`` once its month has begun (breaker N13 F5)."""
    from clock import clock_at

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    ledger.close()
    y2060 = int(dt.datetime(2060, 11, 2, 10, tzinfo=SH).timestamp() * 1000)
    assert engine_rows(store, [cdr("oct", at(10, 10), minutes=10)])[1] == []
    with clock_at(y2060 + 3_600_000):  # a ledger written when such a call was committed
        assert engine_rows(store, [cdr("y2060", y2060, minutes=10)])[1] == []
    now = dt.datetime.now(SH)
    current = now.strftime("%Y-%m")
    expected = [f"{y}-{m:02d}" for y in range(2026, now.year + 1) for m in range(1, 13)
                if "2026-10" <= f"{y}-{m:02d}" <= current]
    for args in (["--ledger", "--store", str(store)],
                 [str(tmp_path / "rated.parquet"), "--store", str(store)]):
        if "--ledger" not in args:  # the same two calls rated dry (a what-if), billed from the file
            pq.write_table(pa.Table.from_pylist([cdr("oct", at(10, 10), minutes=10), cdr("y2060", y2060, minutes=10)]),
                           tmp_path / "cdrs.parquet")
            with pytest.raises(SystemExit) as e:
                main(["rate", str(tmp_path / "cdrs.parquet"), "--store", str(store), "--out",
                      str(tmp_path / "rated.parquet")])
            assert e.value.code == 0
            expected = ["2026-10"]  # a rated file's run: the months its calls cover
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(["bill", *args, "--out", str(tmp_path / "b.json")])
        err = capsys.readouterr().err
        assert e.value.code == 0, err
        got = json.loads((tmp_path / "b.json").read_text("utf-8"))["statements"]
        assert sorted({st["month"] for st in got}) == expected, (args, err)
        assert "1 call(s) dated after" in err and "(the first: y2060 of acme at 2060-11)" in err, err
        if "--ledger" in args and "2026-11" in expected:
            nov = next(st for st in got if st["month"] == "2026-11")
            assert nov["minimum_topup_minor"] == 40 * YUAN  # no call in November: the whole minimum
        assert "bill their month with --month once it has begun" in err, err
    # Breaker N13 F5: a month not begun has no statement: --month 2060-11 is bad input now, and
    # billed once 2060-11 has begun (the accounts' clock).
    (tmp_path / "b.json").unlink()
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(tmp_path / "b.json"), "--month", "2060-11"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--month: 2060-11 has not begun" in err and not (tmp_path / "b.json").exists(), err
    with clock_at(y2060 + 86_400_000), pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(tmp_path / "b.json"), "--month", "2060-11"])
    assert e.value.code == 0
    (st,) = json.loads((tmp_path / "b.json").read_text("utf-8"))["statements"]
    assert st["calls"] == 1


def test_grpc_commits_refuse_a_call_starting_in_the_future(tmp_path):
    """Breaker N11 F4 on the wire: RateCdr answers INVALID_ARGUMENT naming
    ``cdr.start_time``; a committed RateCdrBatches message rejects the row
    (code ``start_in_future``) and commits the others; a dry one prices it."""
    import time

    from rating400.v1 import rating_pb2, rating_pb2_grpc
    from demo_server import Server

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    ledger.close()
    future = int(dt.datetime(2060, 11, 2, 10, tzinfo=SH).timestamp() * 1000)
    server = Server(store, tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = rating_pb2_grpc.RatingServiceStub(channel)
            c = cdr("one", future)
            msg = rating_pb2.Cdr(call_id="one", caller=c["caller"], number=NUMBER, forwarded_to=c["forwarded_to"],
                                 start_time=_ts(c["start"]), agent_answer_time=_ts(c["agent_answer"]),
                                 end_time=_ts(c["end"]), hangup_cause="normal_clearing")
            with pytest.raises(grpc.RpcError) as e:
                stub.RateCdr(rating_pb2.RateCdrRequest(cdr=msg), timeout=30)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert e.value.details().startswith("cdr.start_time: start in the future"), e.value.details()
            # One name per field of the message (breaker N13 F10: "cdr.end" beside "cdr.end_time: required").
            soon = time.time_ns() // 1_000_000 - 60_000
            msg.start_time.CopyFrom(_ts(soon))
            msg.agent_answer_time.CopyFrom(_ts(soon + 2_000))
            msg.end_time.CopyFrom(_ts(soon + 20 * 60_000))
            with pytest.raises(grpc.RpcError) as e:
                stub.RateCdr(rating_pb2.RateCdrRequest(cdr=msg), timeout=30)
            assert e.value.details().startswith("cdr.end_time: end in the future"), e.value.details()
            msg.ClearField("end_time")
            with pytest.raises(grpc.RpcError) as e:
                stub.RateCdr(rating_pb2.RateCdrRequest(cdr=msg), timeout=30)
            assert e.value.details() == "cdr.end_time: required", e.value.details()
            calls = [cdr("s1", at(11, 11)), cdr("s2", future)]
            cols = cdr_columns(calls)
            dry, committed = stub.RateCdrBatches(iter([
                rating_pb2.RateCdrBatchesRequest(batch_id=1, cdrs=cols, dry_run=True),
                rating_pb2.RateCdrBatchesRequest(batch_id=2, cdrs=cols)]), timeout=30)
            assert list(dry.rejects) == [] and len(dry.rated.call_id) == 2
            assert [(r.field, r.code, r.value) for r in committed.rejects] == [("start", "start_in_future",
                                                                                  str(future))]
            assert list(committed.rated.call_id) == ["s1"]
    finally:
        server.stop()


# ---- gRPC: RateCdr and RateCdrBatches ------------------------------------------------------------
def _ts(ms):
    from google.protobuf.timestamp_pb2 import Timestamp

    t = Timestamp()
    t.FromMilliseconds(ms)
    return t


def test_grpc_rates_the_late_calls_one_by_one_and_in_a_stream(tmp_path):
    from rating400.v1 import rating_pb2, rating_pb2_grpc
    from demo_server import Server

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    change(ops)
    ledger.close()
    server = Server(store, tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = rating_pb2_grpc.RatingServiceStub(channel)
            c = cdr("one", at(11, 10))
            msg = rating_pb2.Cdr(call_id="one", caller=c["caller"], number=NUMBER, forwarded_to=c["forwarded_to"],
                                 start_time=_ts(c["start"]), agent_answer_time=_ts(c["agent_answer"]),
                                 end_time=_ts(c["end"]), hangup_cause="normal_clearing")
            one = stub.RateCdr(rating_pb2.RateCdrRequest(cdr=msg), timeout=30)
            assert (one.rated_cdr.package, one.rated_cdr.charge_minor) == ("pre_a", 12 * YUAN)
            calls = [cdr("s1", at(11, 11)), cdr("s2", at(11, 20))]
            cols = cdr_columns(calls)
            resp = list(stub.RateCdrBatches(iter([rating_pb2.RateCdrBatchesRequest(batch_id=1, cdrs=cols)]),
                                            timeout=30))[0]
            assert list(resp.rejects) == []
            assert list(zip(resp.rated.package, resp.rated.charge_minor)) == [("pre_a", 12 * YUAN), ("pre_b", 10 * YUAN)]
    finally:
        server.stop()


# ---- the kernel's search, against its readable form -------------------------------------------
@pytest.fixture(scope="module")
def live_view(tmp_path_factory):
    from rating_core.accounts import open_view

    root = tmp_path_factory.mktemp("late")
    store, ops, ledger = setup_store(root, "pre_a")
    view = open_view(Store(store), ledger.env)
    yield view
    ledger.close()


DAY = 86_400_000
STATES = ["active", "suspended", "pending_verification", "frozen", "available", "locked"]


@settings(max_examples=60, deadline=None)
@given(periods=st.lists(st.tuples(st.sampled_from(["pre_a", "pre_b", "bun_a", "bun_b"]), st.integers(0, 40)),
                        min_size=1, max_size=6),
       states=st.lists(st.tuples(st.sampled_from(STATES), st.integers(0, 40)), min_size=1, max_size=6),
       starts=st.lists(st.tuples(st.integers(-3, 45), st.integers(-1, 1)), min_size=1, max_size=12))
def test_the_kernel_rates_under_the_period_and_state_a_plain_search_picks(live_view, periods, states, starts):
    """Random package-period histories (back-dated changes included), random
    number histories and CDR times: each CDR's package and status from the
    rating kernel (through ``Rater``) equal what ``periods.period_at`` /
    ``state_at`` pick over the view's own derivation (``in_force`` /
    ``held_history``)."""
    from types import SimpleNamespace

    from rating_core.accounts.view import _history_rows, _period_rows
    from rating_core.rater import Rater

    t0 = at(10, 1, 0)
    events = [{"account": "acme", "number": "", "detail": {}, "before": {},
               "after": {"package": pkg, "package_start_ms": t0 + d * DAY, "opening_credit_minor": i,
                         "period_end_ms": C.NEVER_MS}} for i, (pkg, d) in enumerate(periods)]
    recorded = P.package_periods(events)
    last = P.in_force(recorded)[-1]
    acc = C.Account(id="acme", row=0, company="Acme", created_ms=0, package=last.package,
                    package_start_ms=last.start_ms, opening_credit_minor=last.opening_credit_minor)
    history = [(s, t0 + d * DAY) for s, d in states]
    number = C.Number(NUMBER, "standard", history[-1][0], 0, history)
    tables = dict(live_view.tables)
    meta = live_view.meta
    packages = {p: i for i, p in enumerate(meta["packages"])}
    cols, first, count = _period_rows([acc], {"acme": recorded}, packages, 0)
    hist, h_first, h_count = _history_rows([number], 0)
    tables.update(cols, **hist, account_period_first=np.array(first, np.int32),
                  account_period_count=np.array(count, np.int32),
                  number_hist_first=np.array(h_first, np.int32), number_hist_count=np.array(h_count, np.int32),
                  account_start_ms=np.array([acc.package_start_ms], np.int64),
                  account_package=np.array([packages[acc.package]], np.int32),
                  number_status=np.array([0], np.int8))
    rater = Rater(SimpleNamespace(tables=tables, meta=meta, version=live_view.version))
    calls = [cdr(f"c{k}", t0 + d * DAY + ms) for k, (d, ms) in enumerate(starts)]
    res = rater.rate(pa.Table.from_pylist(calls))
    got = {r["call_id"]: ("rated", r["package"]) for r in res.rated.to_pylist()}
    got.update({r["call_id"]: (r["reason"], None) for r in res.rejects.to_pylist()})
    in_force, held = P.in_force(recorded, acc), P.held_history(history)
    for c in calls:
        period, state = P.period_at(in_force, c["start"]), P.state_at(held, c["start"])
        want = (("number_not_active", None) if state != "active" else ("package_not_started", None)
                if period is None else ("rated", period.package))
        assert got[c["call_id"]] == want, (c["start"] - t0) / DAY


# ---- the search, against its readable form ------------------------------------------------------
def _event(account, seq, package, start, credit=0, until=C.NEVER_MS):
    return {"account": account, "number": "", "detail": {}, "before": {},
            "after": {"package": package, "package_start_ms": start, "opening_credit_minor": credit + seq,
                      "period_end_ms": until}}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["pre_a", "pre_b", "bun_a"]), st.integers(0, 50)), min_size=1, max_size=8),
       st.lists(st.integers(-5, 60), min_size=1, max_size=20), st.randoms(use_true_random=False))
def test_the_kernel_picks_the_period_a_plain_search_picks(history, starts, rnd: random.Random):
    """Random period histories (back-dated changes included) and CDR times:
    the view's arrays searched by the kernel give the package ``period_at``
    gives over ``in_force`` periods; before the first, package_not_started."""
    from rating_core.accounts.view import _period_rows

    day = 86_400_000
    events = [_event("a", i, pkg, d * day) for i, (pkg, d) in enumerate(history)]
    recorded = P.package_periods(events)
    last = P.in_force(recorded)[-1]
    acc = C.Account(id="a", row=0, company="A", created_ms=0, package=last.package, package_start_ms=last.start_ms,
                    opening_credit_minor=last.opening_credit_minor)
    packages = {"pre_a": 0, "pre_b": 1, "bun_a": 2}
    cols, first, count = _period_rows([acc], {"a": recorded}, packages, 0)
    periods = P.in_force(recorded, acc)
    for s in starts:
        t = s * day + rnd.randint(-1, 1)
        want = P.period_at(periods, t)
        lo, n = first[0], count[0]
        i = int(np.searchsorted(cols["period_start_ms"][lo:lo + n], t, "right")) - 1
        got = None if i < 0 else cols["period_package"][lo + i]
        assert got == (None if want is None else packages[want.package])


# ---- the ledger agrees with the rated rows, whatever the account holds now ----------------------
KINDS = {"pre_a": "prepaid", "pre_b": "prepaid", "pay": "payg", "pay2": "payg", "bun_a": "bundle",
         "bun_b": "bundle"}


def _debited(row, now: str = ""):
    """What a rated row takes from the account's credit, by the kind of the
    package it was rated under: prepaid its credit_consumed, pay-as-you-go its
    charge, bundle its overage -- but nothing of a postpaid row from an
    account prepaid ``now`` (its statement bills that row as due)."""
    kind = KINDS[row["package"]]
    if KINDS.get(now) == "prepaid" and kind != "prepaid":
        return 0
    return row["credit_consumed_minor"] if kind == "prepaid" else row["charge_minor"] if kind == "payg" else row["overage_minor"]


@pytest.mark.parametrize("old,new", [(a, b) for a in ("pre_a", "pay", "bun_a") for b in ("pre_b", "pay2", "bun_b")])
def test_the_ledger_moves_by_what_the_late_rows_say_for_every_pair_of_kinds(tmp_path, monkeypatch, capsys, old, new):
    """A change between any two package kinds on 11-15, then a late call of
    the old period (11-01) and one of the new (11-20) committed: the credit
    moves by exactly what the rated rows say, each by its own package's kind
    (a late prepaid call is not debited again as pay-as-you-go; a late
    pay-as-you-go or bundle call of an account prepaid now is billed as due,
    not taken from the prepaid credit); `accounts balance` and November's
    statement agree, and the statement bills each postpaid row once."""
    monkeypatch.setattr(__import__(__name__), "CATALOG", CATALOG.replace("packages:\n", "packages:\n" + PAYG))
    store, ops, ledger = setup_store(tmp_path, old)
    ops.change_package("chg", "acme", new, effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    before = ops.balance("acme")["credit_minor"]
    rated, rejects = engine_rows(store, [cdr("late", at(11, 1)), cdr("now", at(11, 20), 10)])
    assert rejects == [] and [r["package"] for r in rated] == [old, new]
    want = before - sum(_debited(r, new) for r in rated)
    assert ledger.stored("acme").credit_minor == want
    with pytest.raises(SystemExit) as e:
        main(["accounts", "balance", "acme", "--store", str(store)])
    assert e.value.code == 0
    assert json.loads(capsys.readouterr().out)["credit_minor"] == want
    engine_rows(store, [cdr("late", at(11, 1))])  # a retransmission moves nothing
    assert ledger.stored("acme").credit_minor == want
    if "prepaid" in (KINDS[old], KINDS[new]):  # the closing credit: the prepaid credit (postpaid charges are due)
        with pytest.raises(SystemExit) as e:
            main(["bill", "--ledger", "--store", str(store), "--out", str(tmp_path / "b.parquet"), "--account",
                  "acme", "--statements", str(tmp_path / "st"), "--format", "json"])
        assert e.value.code == 0
        nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
        postpaid = sum(_debited(r) for r in rated if KINDS[r["package"]] != "prepaid")
        # A change from prepaid to pay-as-you-go: the month is billed as
        # prepaid and pays the payg calls after the change from the credit,
        # as the ledger debits them (once; the breaker found them billed as
        # due too), so the closing credit is the ledger's.
        from_credit = KINDS[old] == "prepaid" and KINDS[new] == "payg"
        assert nov["closing_credit_minor"] == want + (0 if KINDS[new] == "prepaid" or from_credit else postpaid)
        if KINDS[new] == "prepaid":  # billed once: due, never also taken from the credit
            assert nov["amount_due_minor"] >= postpaid


def test_late_postpaid_calls_of_a_now_prepaid_account_are_billed_not_taken_from_its_credit(tmp_path, monkeypatch):
    """pay -> pre_b (600 credit) on 11-15, then four late 23-hour pay-as-you-go
    calls (165.60 each, 662.40) and a prepaid call: the late calls are billed
    as due and take none of the prepaid credit, which pays only the prepaid
    call (599.00 left)."""
    monkeypatch.setattr(__import__(__name__), "CATALOG", CATALOG.replace("packages:\n", "packages:\n" + PAYG))
    store, ops, ledger = setup_store(tmp_path, "pay")
    ops.change_package("chg", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    calls = [cdr(f"l{i}", at(11, 1 + i, 0), 23 * 60) for i in range(4)] + [cdr("now", at(11, 16), 10)]
    rated, rejects = engine_rows(store, calls)
    assert rejects == [] and [r["charge_minor"] for r in rated[:4]] == [16_560 * 100] * 4
    assert rated[4]["credit_consumed_minor"] == 1 * YUAN
    assert ledger.stored("acme").credit_minor == 599 * YUAN


def _two_accounts(tmp_path):
    """acme (holding NUMBER, imported: its state since ever) and beta, both on pre_a."""
    (tmp_path / "catalog.yaml").write_text(CATALOG.replace("PACKAGE", "pre_a") + (
        "  beta:\n    name: Beta Co.\n    package: pre_a\n    package_start: 2026-10-01\n    numbers:\n"
        "      - {number: \"4001110002\", home_city: Shenzhen, routing: office}\n"))
    store = Store(tmp_path / "store")
    store.compile(tmp_path / "catalog.yaml", activate=True)
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(store, ledger)
    assert import_catalog(ops, tmp_path / "catalog.yaml")["imported"] == ["acme", "beta"]
    return tmp_path / "store", ops, ledger


def _recycle_to_beta(ops):
    """NUMBER reclaimed, cooled and released on 11-12, locked and reviewed
    for beta on 11-13 and activated on 11-14."""
    t = at(11, 12, 0)
    for i, step in enumerate(["suspend", "freeze", "reclaim", "cool", "release"]):
        ops.number_transition(f"t{i}", NUMBER, step, "x", at_ms=t + i)
    ops.lock_number("l", NUMBER, "beta", at_ms=at(11, 13, 0))
    ops.submit_number("s", NUMBER, at_ms=at(11, 13, 1))
    ops.activate_number("a", NUMBER, "Shenzhen", at_ms=at(11, 14, 0))


RECYCLED_CALLS = [cdr("acme-late", at(11, 10)), cdr("pending", at(11, 13, 5)), cdr("beta", at(11, 15), 10)]


def test_a_recycled_numbers_late_call_of_its_former_holder_is_not_charged_to_the_new_one(tmp_path):
    """acme's number is recycled to beta (``_recycle_to_beta``). A late CDR
    of acme's 11-10 call, and one of a call while beta held it but before
    its activation, are refused ``number_not_active``: nobody is charged
    (acme no longer holds the number, beta did not hold it then). beta's
    call after its activation is rated to beta (10 min, 1.20)."""
    store, ops, ledger = _two_accounts(tmp_path)
    _recycle_to_beta(ops)
    rated, rejects = engine_rows(store, RECYCLED_CALLS)
    assert [(r["call_id"], r["reason"]) for r in rejects] == [("acme-late", "number_not_active"),
                                                              ("pending", "number_not_active")]
    assert [(r["call_id"], r["account"], r["charge_minor"]) for r in rated] == [("beta", "beta", 12_000)]
    assert ledger.stored("beta").credit_minor == 480 * YUAN - 12_000
    assert ops.balance("acme")["credit_minor"] == 480 * YUAN


def test_a_recycled_numbers_activation_dated_before_its_new_holder_took_it_is_refused(tmp_path):
    """Issue 12 breaker: ActivateNumber's at_ms was checked only against
    the edge's range and the 10-minute skew. beta's activation dated 11-09,
    before beta locked the number on 11-13 (and while acme still held it),
    was taken: the back-dated entry replaced the lock and the review, the
    number counted active for beta from 11-09, and acme's late 11-10 call
    was charged to beta (1.20 of beta's credit). A number transition dated
    before the number's current state began is refused
    ``before_current_state``, naming both dates; nothing is written."""
    from rating_core.errors import Refused

    store, ops, ledger = _two_accounts(tmp_path)
    t = at(11, 12, 0)
    for i, step in enumerate(["suspend", "freeze", "reclaim", "cool", "release"]):
        ops.number_transition(f"t{i}", NUMBER, step, "x", at_ms=t + i)
    ops.lock_number("l", NUMBER, "beta", at_ms=at(11, 13, 0))
    ops.submit_number("s", NUMBER, at_ms=at(11, 13, 1))
    with pytest.raises(Refused) as e:
        ops.activate_number("a", NUMBER, "Shenzhen", at_ms=at(11, 9, 0))
    assert e.value.reason == "before_current_state"
    assert e.value.message.startswith(f"dated 2026-11-09T00:00:00+08:00, before number {NUMBER} became "
                                      "pending_verification (2026-11-13T01:00:00+08:00)"), e.value.message
    rated, rejects = engine_rows(store, [cdr("acme-late", at(11, 10))])
    assert [(r["call_id"], r["reason"]) for r in rejects] == [("acme-late", "number_not_active")]
    assert ledger.stored("beta") is None or ledger.stored("beta").credit_minor == 480 * YUAN


def test_a_running_engine_refuses_the_former_holders_late_call_after_the_recycling(tmp_path):
    """The same through a running engine's incremental view update."""
    store, ops, ledger = _two_accounts(tmp_path)
    engine = Engine.open(store)
    try:
        first = engine.rate_and_commit(pa.Table.from_pylist([cdr("early", at(11, 1))]))
        assert first.rated.column("account").to_pylist() == ["acme"]
        _recycle_to_beta(ops)
        engine.refresh()
        res = engine.rate_and_commit(pa.Table.from_pylist(RECYCLED_CALLS))
        assert [(r["call_id"], r["reason"]) for r in res.rejects.to_pylist()] == [
            ("acme-late", "number_not_active"), ("pending", "number_not_active")]
        assert [(r["call_id"], r["account"]) for r in res.rated.to_pylist()] == [("beta", "beta")]
    finally:
        engine.close()


@pytest.mark.parametrize("history,calls", [
    # First holder: states before its first activation are recording dates; since ever.
    ([("available", 5), ("locked", 6), ("pending_verification", 7), ("active", 8)], {1: "active", 9: "active"}),
    # Recycled: the new holder counts from its dates; before them, free.
    ([("active", 1), ("suspended", 2), ("frozen", 3), ("reclaimed", 4), ("cooling", 4), ("available", 5),
      ("locked", 6), ("pending_verification", 7), ("active", 8)],
     {1: "available", 6: "locked", 7: "pending_verification", 9: "active"}),
])
def test_held_history_since_ever_only_for_a_first_holder(history, calls):
    held = P.held_history(history)
    assert {t: P.state_at(held, t) for t in calls} == calls


@pytest.mark.parametrize("old,new", [("pay", "pre_b"), ("pre_a", "pay2"), ("bun_a", "pre_b")])
def test_rerating_a_late_call_moves_the_ledger_by_its_own_packages_kind(tmp_path, monkeypatch, capsys, old, new):
    """The late 11-10 call of the old period, then version 2 raises std to
    0.15/min and November is rerated: the call's charge goes 12.00 -> 15.00
    (bun_a's late call drew from the allowance its ended period left when it
    was committed, README "Late CDRs": inside the bundle it has nothing to
    rerate) and the credit moves by
    what its row moved at commit: a prepaid row its credit consumed; a
    pay-as-you-go or bundle row of an account prepaid now nothing (the
    statement bills its change as due)."""
    from rating_core.rerate import rerate

    monkeypatch.setattr(__import__(__name__), "CATALOG", CATALOG.replace("packages:\n", "packages:\n" + PAYG))
    store, ops, ledger = setup_store(tmp_path, old)
    ops.change_package("chg", "acme", new, effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    (late,), _ = engine_rows(store, [cdr("late", at(11, 10))])
    before = ledger.stored("acme").credit_minor
    ledger.close()
    v2 = tmp_path / "v2.yaml"
    v2.write_text(CATALOG.replace("PACKAGE", old)  # CATALOG: the patched one, with PAYG
                  .replace("std: {tiers: [{price: 0.12}]}", "std: {tiers: [{price: 0.15}]}"))
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(v2), "--store", str(store)])
    assert e.value.code == 0, capsys.readouterr().err
    r = rerate(store, 2, "2026-11-01", "2026-11-30", now_ms=at(11, 29))
    moved = {"pay": 0, "pre_a": 3 * YUAN, "bun_a": 0}[old]  # postpaid rows of a now-prepaid account: on the bill
    assert [a.ledger_delta_minor for a in r.adjustments] == ([] if old == "bun_a" else [moved])
    assert (late["bundle_seconds_consumed"], late["charge_minor"]) == ((6000, 0) if old == "bun_a" else
                                                                        (0, late["charge_minor"]))
    after = Ledger(store)
    try:
        assert after.stored("acme").credit_minor == before - moved
    finally:
        after.close()
