"""Statements from the live ledger across a mid-month package change, and
money events exactly at a month boundary: `rating400 bill --ledger` and gRPC
GetStatement against a real ledger.

The package-change rule (README "Change package" and "Monthly statements"):
credit left carries over into the new period (it is not new money: the
statement's package credit is only the new package's fee), the month of the
change is billed under the minimum of the package in force at the month's
start, the new one applies from the next month; a bundle starts fresh at
the change, so the month's statement counts both allowances.

Hand-computed (1 yuan = 10000 minor units), account ``acme`` from
2026-10-01, calls of 100 minutes at 0.12/min = 12.00 each:
prepaid ``pre_a`` (fee 480, minimum 40/month) -> ``pre_b`` (fee 600,
minimum 60/month) on 2026-11-15 00:00 (credit 456 carried, 1056 opening).
Oct: 0 + 480 - 12 = 468; first month, no minimum.
Nov: 468 + 600 - 24 = 1044 (the ledger's: 456 + 600 - 12); minimum 40
(pre_a's): 16 top-up.
Dec: 1044 - 12 = 1032; minimum 60 (pre_b's): 48 top-up.
"""
from __future__ import annotations

import datetime as dt
import json
import re

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clock import clock_at, when_dated
from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog
from rating_core.cli import main
from rating_core.engine import Engine
from rating_core.errors import Refused
from rating_core.ledger import Ledger
from stores import compiled

CATALOG = """
name: package-change-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  pre_a: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rates: [{rate: std}]}
  pre_b: {kind: prepaid, fee: 600, period_months: 12, monthly_minimum: 60, rates: [{rate: std}]}
  bun_a: {kind: bundle, included_minutes: 100, overage_price: 0.20, rates: [{rate: std}]}
  bun_b: {kind: bundle, included_minutes: 300, overage_price: 0.20, rates: [{rate: std}]}
  payg: {kind: payg, rates: [{rate: std}]}
  payg_b: {kind: payg, rates: [{rate: std}]}
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
SH = dt.timezone(dt.timedelta(hours=8))
YUAN = 10_000


def at(month, day, hour=10, ms=0):
    return int(dt.datetime(2026, month, day, hour, tzinfo=SH).timestamp() * 1000) + ms


def cdr(call_id, start, minutes=100):
    return {"call_id": call_id, "caller": "13812345678", "number": "4001110001", "forwarded_to": "13700000001",
            "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 2_000,
            "end": start + 2_000 + minutes * 60_000, "hangup_cause": "normal_clearing"}


def world(tmp_path, package, steps):
    """A store with ``acme`` on ``package`` (imported from the catalog) and
    ``steps`` run in order: a list of CDR dicts is committed, a callable
    gets the account operations."""
    store = compiled(tmp_path, CATALOG.replace("PACKAGE", package))
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(store, ledger)
    assert import_catalog(ops, tmp_path / "catalog.yaml")["imported"] == ["acme"]
    engine = Engine.open(tmp_path / "store")
    with clock_at(at(12, 31)):  # the story's now: its December calls have happened
        for step in steps:
            if callable(step):
                step(when_dated(ops))  # a change or renewal made on its date: November had not ended
                engine.refresh()
            else:
                engine.rate_and_commit(pa.Table.from_pylist(step))
    engine.close()
    credit = ledger.stored("acme").credit_minor
    ledger.close()
    return tmp_path / "store", credit


def bill(store, tmp_path, capsys, *extra):
    out = tmp_path / "bills.parquet"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(out), "--account", "acme",
              "--statements", str(tmp_path / "st"), "--format", "json,html", *extra])
    assert e.value.code == 0, capsys.readouterr().err
    capsys.readouterr()
    return {r["month"]: r for r in pq.read_table(out).to_pylist()}


def get_statement(store, tmp_path, months):
    from rating400.v1 import billing_pb2, billing_pb2_grpc
    from demo_server import Server

    server = Server(store, tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = billing_pb2_grpc.BillingServiceStub(channel)
            return {m: json.loads(stub.GetStatement(billing_pb2.StatementRequest(account="acme", month=m),
                                                    timeout=60).json) for m in months}
    finally:
        server.stop()


def money(row):
    return (row["opening_credit_minor"], row["closing_credit_minor"], row["minimum_topup_minor"],
            row["amount_due_minor"])


def test_a_prepaid_package_change_mid_month_carries_the_credit_once(tmp_path, capsys):
    store, credit = world(tmp_path, "pre_a", [
        [cdr("oct", at(10, 10)), cdr("nov1", at(11, 5))],
        lambda ops: ops.change_package("chg", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
        [cdr("nov2", at(11, 20)), cdr("dec", at(12, 3))],
    ])
    assert credit == 1032 * YUAN
    rows = bill(store, tmp_path, capsys, "--lang", "en")
    assert sorted(rows) == ["2026-10", "2026-11", "2026-12"]  # October is still billed after the change
    assert money(rows["2026-10"]) == (0, 468 * YUAN, 0, 0)
    # November: the change month; pre_a's minimum 40 against 24 of usage.
    assert money(rows["2026-11"]) == (468 * YUAN, 1044 * YUAN, 16 * YUAN, 16 * YUAN)
    assert money(rows["2026-12"]) == (1044 * YUAN, credit, 48 * YUAN, 48 * YUAN)
    nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert nov["package_credit_minor"] == 600 * YUAN and nov["monthly_minimum_minor"] == 40 * YUAN
    assert [(c["from"], c["to"], c["carried_minor"]) for c in nov["package_changes"]] == [("pre_a", "pre_b", 456 * YUAN)]
    html = (tmp_path / "st" / "acme-2026-11.html").read_text("utf-8")
    assert "package change" in html and "pre_a → pre_b; credit carried over (yuan) 456.00" in html
    # Both periods in force in November, each with its package (newcomer N11 F3).
    # Each on its line, the dates kept together, the label free to wrap (newcomer 2026-12-02 #7).
    assert ("2026-10-01 – 2026-11-14</span> (pre_a); <br><span class=\"nw\">2026-11-15 – 2027-11-14</span> (pre_b)"
            in html), html
    grpc_st = get_statement(store, tmp_path, ["2026-11", "2026-12"])
    assert (grpc_st["2026-11"]["opening_credit_minor"], grpc_st["2026-11"]["closing_credit_minor"]) == (
        468 * YUAN, 1044 * YUAN)
    assert grpc_st["2026-11"]["minimum_topup_minor"] == 16 * YUAN
    assert grpc_st["2026-12"]["closing_credit_minor"] == credit


def test_a_bundle_change_mid_month_counts_both_allowances(tmp_path, capsys):
    """bun_a (100 min) -> bun_b (300 min, fresh) on 11-15. Nov 5: 120 min,
    100 in the bundle, 20 over at 0.20 = 4.00; Nov 20: 120 min in bun_b;
    Dec 3: 60 min in bun_b's December."""
    store, _ = world(tmp_path, "bun_a", [
        [cdr("nov1", at(11, 5), 120)],
        lambda ops: ops.change_package("chg", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
        [cdr("nov2", at(11, 20), 120), cdr("dec", at(12, 3), 60)],
    ])
    rows = bill(store, tmp_path, capsys)
    nov, dec = rows["2026-11"], rows["2026-12"]
    assert nov["overage_minor"] == 4 * YUAN and nov["amount_due_minor"] == 4 * YUAN
    assert (nov["bundle_used_seconds"], nov["bundle_left_seconds"]) == (220 * 60, (100 + 300 - 220) * 60)
    assert (dec["bundle_used_seconds"], dec["bundle_left_seconds"]) == (60 * 60, 240 * 60)
    assert dec["overage_minor"] == 0
    assert get_statement(store, tmp_path, ["2026-11"])["2026-11"]["bundle_left_seconds"] == 180 * 60


BOUNDARY = at(12, 1, 0)  # 2026-12-01 00:00 Asia/Shanghai


def test_money_events_at_a_month_boundary_fall_in_the_month_of_their_instant(tmp_path, capsys):
    """A top-up, an adjustment and a refund one ms before 2026-12-01 00:00
    (+08:00) are November's; the same exactly at it are December's."""
    def events(ops):
        for i, t in enumerate((BOUNDARY - 1, BOUNDARY)):
            ops.top_up(f"t{i}", "acme", 200 * YUAN, at_ms=t)
            ops.adjust(f"a{i}", "acme", 5 * YUAN, "goodwill", at_ms=t)
            ops.refund(f"r{i}", "acme", 3 * YUAN, "overpaid", at_ms=t)

    store, credit = world(tmp_path, "pre_a", [[cdr("nov", at(11, 5))], events, [cdr("dec", at(12, 3))]])
    assert credit == (480 - 24 + 2 * (200 + 5 - 3)) * YUAN
    rows = bill(store, tmp_path, capsys)
    for m in ("2026-11", "2026-12"):
        st = json.loads((tmp_path / "st" / f"acme-{m}.json").read_text("utf-8"))["statements"][0]
        assert (st["top_ups_total_minor"], st["credit_adjustments_total_minor"], st["refunds_total_minor"]) \
            == (200 * YUAN, 5 * YUAN, -3 * YUAN), m
        assert rows[m]["top_ups_minor"] == 200 * YUAN
    assert rows["2026-11"]["closing_credit_minor"] == (480 - 12 + 202) * YUAN == rows["2026-12"]["opening_credit_minor"]
    assert rows["2026-12"]["closing_credit_minor"] == credit
    grpc_st = get_statement(store, tmp_path, ["2026-11", "2026-12"])
    for m in ("2026-11", "2026-12"):
        assert [e["amount_minor"] for e in grpc_st[m]["top_ups"]] == [200 * YUAN]
        assert [e["amount_minor"] for e in grpc_st[m]["credit_adjustments"]] == [5 * YUAN]
        assert [(e["amount_minor"], e["kind"], e["note"]) for e in grpc_st[m]["refunds"]] == [(-3 * YUAN, "refund",
                                                                                                 "overpaid")]
    assert grpc_st["2026-12"]["closing_credit_minor"] == credit


def test_a_renewal_after_the_period_ended_shows_the_old_credit_expired(tmp_path, capsys):
    """``pre_m``: 480 yuan for 1 month from 2026-10-01: 468 left when it
    expires at 2026-11-01 00:00; renewed on 11-10 (nothing carries: the
    credit had expired), a call on 11-20. November: 468 - 468 expired + 480
    - 12 = 468 = the ledger; December opens there."""
    global CATALOG
    saved = CATALOG
    CATALOG = CATALOG.replace("packages:\n", "packages:\n  pre_m: {kind: prepaid, fee: 480, period_months: 1, "
                                             "rates: [{rate: std}]}\n")
    try:
        store, credit = world(tmp_path, "pre_m", [
            [cdr("oct", at(10, 10))],
            lambda ops: ops.renew("rn", "acme", at_ms=at(11, 10)),
            [cdr("nov", at(11, 20))],
        ])
    finally:
        CATALOG = saved
    assert credit == 468 * YUAN
    rows = bill(store, tmp_path, capsys, "--month", "2026-10", "--month", "2026-11", "--month", "2026-12")
    nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert (nov["opening_credit_minor"], nov["expired_credit_minor"], nov["package_credit_minor"]) == (
        468 * YUAN, 468 * YUAN, 480 * YUAN)
    assert rows["2026-11"]["closing_credit_minor"] == credit == rows["2026-12"]["opening_credit_minor"]
    # The renewed period ends 12-10 with nothing more used: its 468 expire then.
    assert rows["2026-12"]["closing_credit_minor"] == 0
    assert [(c["from"], c["to"], c["carried_minor"]) for c in nov["package_changes"]] == [("pre_m", "pre_m", 0)]


def test_a_statement_shows_the_periods_in_force_in_its_month_and_calls_a_renewal_a_renewal(tmp_path, capsys):
    """Newcomer N11 F3: after a renewal the month's statement printed the
    period that had ended before the month began (``Package period
    2025-12-01 – 2026-11-30`` beside the renewal's package credit), and the
    renewal read "package change prepaid_480_1y → prepaid_480_1y".
    ``pre_m`` (480 yuan, 1 month) from 2026-10-01 ends 11-01 00:00; renewed
    11-10 10:00 (to 12-10 10:00, last day 12-09) and, after that ended,
    12-20 10:00. November shows only the renewed period; December both, the
    one that ended and the one that started; the row says renewal (en, zh)
    and the JSON ``package_changes`` says so too."""
    from clock import clock_at

    def renew_later(ops):
        with clock_at(at(12, 31)):  # the accounts' now: the renewal is dated when it happened
            ops.renew("rn2", "acme", at_ms=at(12, 20))

    global CATALOG
    saved = CATALOG
    CATALOG = CATALOG.replace("packages:\n", "packages:\n  pre_m: {kind: prepaid, fee: 480, period_months: 1, "
                                             "rates: [{rate: std}]}\n")
    try:
        store, _ = world(tmp_path, "pre_m", [
            [cdr("oct", at(10, 10))],
            lambda ops: ops.renew("rn1", "acme", at_ms=at(11, 10)),
            renew_later,
        ])
    finally:
        CATALOG = saved

    def page(month, lang):
        bill(store, tmp_path, capsys, "--month", month, "--lang", lang)
        html = (tmp_path / "st" / f"acme-{month}.html").read_text("utf-8")
        head = re.search(r'<td class="k">(?:Package period|套餐期限)</td>\s*<td[^>]*>(.*?)</td>', html, re.S)[1]
        return re.sub(r"<[^>]+>", "", head), html

    head, html = page("2026-11", "en")
    assert head == "2026-11-10 – 2026-12-09", head
    assert "2026-10-01" not in head and "→" not in html
    assert "<td>renewal</td>" in html and "pre_m; credit carried over (yuan) 0.00" in html
    nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert [(c["renewal"], c["package_last_day"]) for c in nov["package_changes"]] == [(True, "2026-12-09")]
    head, html = page("2026-12", "en")
    assert head == "2026-11-10 – 2026-12-09; 2026-12-20 – 2027-01-19", head
    head, html = page("2026-12", "zh")
    assert head == "2026-11-10 – 2026-12-09；2026-12-20 – 2027-01-19", head
    assert "<td>套餐续费</td>" in html and "套餐变更" not in html


def test_credit_of_a_period_that_ended_unrenewed_opens_no_later_month(tmp_path, capsys):
    """``pre_m`` (480 yuan, 1 month from 2026-10-01) ends 11-01 and is not
    renewed; a call on 12-05 is arrears. Billed for December alone, the
    statement opened with the expired credit as a live balance (newcomer:
    1200.00 yuan shown for ever on a demo account); November shows it
    expired and closes at 0, December opens at 0."""
    global CATALOG
    saved = CATALOG
    CATALOG = CATALOG.replace("packages:\n", "packages:\n  pre_m: {kind: prepaid, fee: 480, period_months: 1, "
                                             "rates: [{rate: std}]}\n")
    try:
        store, _ = world(tmp_path, "pre_m", [[cdr("oct", at(10, 10))], [cdr("dec", at(12, 5))]])
    finally:
        CATALOG = saved
    rows = bill(store, tmp_path, capsys, "--month", "2026-12")
    assert (rows["2026-12"]["opening_credit_minor"], rows["2026-12"]["closing_credit_minor"]) == (0, 0)
    bill(store, tmp_path, capsys, "--month", "2026-11")
    nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert nov["expired_credit_minor"] == nov["opening_credit_minor"] > 0 and nov["closing_credit_minor"] == 0


def test_a_change_effective_at_midnight_on_the_first_bills_that_month_under_the_new_package(tmp_path, capsys):
    """pre_a -> bun_b effective 2026-12-01 00:00 (+08:00), the month's first
    instant: December is bun_b's whole month (no pre_a minimum, bun_b's 300
    minutes), the change is December's line, and a bill run without
    --month still reaches December (breaker finding: it was billed under
    pre_a, and left out without --month)."""
    store, _ = world(tmp_path, "pre_a", [
        [cdr("nov", at(11, 5))],
        lambda ops: ops.change_package("chg", "acme", "bun_b", effective_ms=BOUNDARY, at_ms=BOUNDARY),
    ])
    rows = bill(store, tmp_path, capsys)
    assert sorted(rows) == ["2026-11", "2026-12"]
    dec = json.loads((tmp_path / "st" / "acme-2026-12.json").read_text("utf-8"))["statements"][0]
    assert (dec["package"], dec["monthly_minimum_minor"], dec["minimum_topup_minor"]) == ("bun_b", 0, 0)
    assert dec["bundle_included_seconds"] == 300 * 60
    assert [(c["from"], c["to"]) for c in dec["package_changes"]] == [("pre_a", "bun_b")]
    nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert nov["package"] == "pre_a" and nov["package_changes"] == []


def test_two_renewals_in_a_month_are_both_on_the_statement(tmp_path, capsys):
    """Renewing twice (two operations, two fees: README's renewal rule
    carries the first's credit into the second) puts both fees on the
    statement, whose closing credit equals the ledger's (breaker finding:
    the statement dropped the second and closed 480 yuan low). The second
    is a minute after the first: at the same instant, the start of the
    period it renews, it is refused ``at_package_start`` (breaker2 B6: it
    would share that period's ledger balance)."""
    def renew_twice(ops):
        ops.renew("rn1", "acme", at_ms=at(11, 10))
        with pytest.raises(Refused) as e:
            ops.renew("rn0", "acme", at_ms=at(11, 10))
        assert e.value.reason == "at_package_start"
        ops.renew("rn2", "acme", at_ms=at(11, 10) + 60_000)

    store, credit = world(tmp_path, "pre_a", [
        [cdr("oct", at(10, 10))],
        renew_twice,
        [cdr("nov", at(11, 20))],
    ])
    assert credit == (480 - 12 + 480 + 480 - 12) * YUAN
    rows = bill(store, tmp_path, capsys, "--month", "2026-11")
    nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert nov["package_credit_minor"] == 960 * YUAN and len(nov["package_changes"]) == 2
    assert rows["2026-11"]["closing_credit_minor"] == credit


def test_a_change_to_a_bundle_mid_month_shows_its_allowance_and_the_old_period_end(tmp_path, capsys):
    """payg -> bun_b on 11-15: November (billed under payg, in force at its
    start) still shows bun_b's 300 minutes and what is left of them; pre_a ->
    bun_b shows pre_a's period ending at the change, not the account's
    current end (newcomer findings: 0 minutes included; no or the new end)."""
    store, _ = world(tmp_path, "payg", [
        [cdr("nov1", at(11, 5), 10)],
        lambda ops: ops.change_package("chg", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
        [cdr("nov2", at(11, 20), 120)],
    ])
    bill(store, tmp_path, capsys, "--month", "2026-11")
    nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert nov["package"] == "payg" and nov["bundle_included_seconds"] == 300 * 60
    assert nov["bundle_left_seconds"] == 300 * 60 - nov["bundle_used_seconds"] > 0

    other = tmp_path / "prepaid"
    other.mkdir()
    store, _ = world(other, "pre_a", [
        [cdr("nov1", at(11, 5))],
        lambda ops: ops.change_package("chg", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
    ])
    bill(store, other, capsys, "--month", "2026-11")
    nov = json.loads((other / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert (nov["package"], nov["package_end"]) == ("pre_a", "2026-11-15")


def test_a_month_changed_to_a_bundle_counts_only_the_bundle_calls_beyond_it(tmp_path, capsys):
    """pre_a -> bun_b (300 min) on 11-15 (newcomer N9 A13, re-seen in N10:
    hangzhou_tea prepaid -> bundle_1000 showed `bundle_overage_seconds`
    38820, the prepaid half's billed seconds, with 600 of 1000 minutes used,
    and its PDF no bundle lines). Nov 5: 100 min prepaid (no allowance);
    Nov 20: 120 min in the bundle, then 200 min of which 180 in it and 20
    beyond. November is billed under pre_a and shows bun_b's lines."""
    store, _ = world(tmp_path, "pre_a", [
        [cdr("nov1", at(11, 5), 100)],
        lambda ops: ops.change_package("chg", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
        [cdr("nov2", at(11, 20), 120)],
    ])
    bill(store, tmp_path, capsys, "--month", "2026-11")
    nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert nov["package"] == "pre_a" and nov["billed_seconds"] == 220 * 60
    assert (nov["bundle_included_seconds"], nov["bundle_used_seconds"], nov["bundle_overage_seconds"]) == (
        300 * 60, 120 * 60, 0)
    html = " ".join((tmp_path / "st" / "acme-2026-11.html").read_text("utf-8").split())
    assert '套餐内已用分钟 / 套餐剩余分钟</td> <td class="n">120.0 / 180.0' in html  # "bundle minutes used / left"
    assert '超出套餐分钟</td><td class="n">0.0' in html  # "minutes beyond the bundle"

    over = tmp_path / "over"
    over.mkdir()
    store, _ = world(over, "pre_a", [
        [cdr("nov1", at(11, 5), 100)],
        lambda ops: ops.change_package("chg", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
        [cdr("nov2", at(11, 20), 120), cdr("nov3", at(11, 21), 200)],
    ])
    bill(store, over, capsys, "--month", "2026-11")
    nov = json.loads((over / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert (nov["bundle_used_seconds"], nov["bundle_overage_seconds"]) == (300 * 60, 20 * 60)


def test_a_change_to_pay_as_you_go_pays_its_calls_from_the_carried_credit_once(tmp_path, capsys):
    """pre_a -> payg on 2026-11-15: the ledger debits the payg call of 11-20
    (12.00) from the carried credit; the statement billed it as due as well
    (breaker: charged twice). Now it is paid from the credit on the
    statement too, and the closing credit is the ledger's."""
    store, credit = world(tmp_path, "pre_a", [
        [cdr("oct", at(10, 10))],
        lambda ops: ops.change_package("chg", "acme", "payg", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
        [cdr("nov", at(11, 20))],
    ])
    rows = bill(store, tmp_path, capsys, "--month", "2026-11")
    nov = rows["2026-11"]
    assert nov["closing_credit_minor"] == credit == (480 - 12 - 12) * YUAN
    # Billed under pre_a (in force at the month's start): its 40 minimum against 12 of usage.
    assert nov["usage_minor"] == nov["credit_consumed_minor"] == 12 * YUAN
    assert nov["amount_due_minor"] == nov["minimum_topup_minor"] == 28 * YUAN


def test_a_prepaid_package_bought_in_a_payg_month_reads_as_such(tmp_path, capsys):
    """payg -> pre_a on 2026-11-15: November is billed as pay-as-you-go (the
    package in force at its start); its Payments section lists the prepaid
    package's credit as what it is, not as a payment received (newcomer:
    'Package credit +480.00' beside 'Payments received' read as money paid in)."""
    store, credit = world(tmp_path, "payg", [
        [cdr("oct", at(10, 10))],
        lambda ops: ops.change_package("chg", "acme", "pre_a", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
    ])
    bill(store, tmp_path, capsys, "--month", "2026-11", "--lang", "en")
    html = (tmp_path / "st" / "acme-2026-11.html").read_text("utf-8")
    assert "Prepaid package bought: its fee as prepaid credit (yuan)</td><td class=\"n\">+480.00" in html


def test_a_payment_after_a_change_between_payg_packages_settles_that_month(tmp_path, capsys):
    """payg -> payg_b on 2026-11-15, then 100.00 paid on 11-25: the payment
    belongs to a pay-as-you-go package either way, so it settles October's
    12.00 and November's 12.00 in November (breaker: November showed 12.00
    due beside 100.00 of credit). The closing credit is what was paid less
    what was used, 76.00 = the ledger's balance: the change between postpaid
    packages carried October's -12.00 (breaker R4; it was 88.00, the change
    had dropped the debt from the ledger while October's bill kept it)."""
    store, credit = world(tmp_path, "payg", [
        [cdr("oct", at(10, 10))],
        lambda ops: ops.change_package("chg", "acme", "payg_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
        [cdr("nov", at(11, 20))],
        lambda ops: ops.top_up("pay", "acme", 100 * YUAN, at_ms=at(11, 25)),
    ])
    nov = bill(store, tmp_path, capsys, "--month", "2026-11")["2026-11"]
    assert (nov["earlier_unpaid_minor"], nov["paid_to_earlier_minor"], nov["paid_to_charges_minor"]) == (
        12 * YUAN, 12 * YUAN, 12 * YUAN)
    assert nov["amount_due_minor"] == 0 and nov["closing_credit_minor"] == 76 * YUAN
    assert credit == 76 * YUAN


def test_a_payment_after_a_bundle_to_payg_change_settles_the_bundle_month_first(tmp_path, capsys):
    """bun_a -> payg on 2026-10-15: October is billed under bun_a (120
    minutes: 20 beyond the bundle at 0.20 = 4.00) with the payg call of
    10-20 (12.00): 16.00 due. November's 100.00 payment settles October's
    16.00 first, then November's 12.00 (breaker: it paid November first and
    left October's 16.00 unpaid beside 88.00 of credit). Closing credit 72.00
    = the ledger's (100 - 4.00 overage - 12 - 12): the change between
    postpaid packages carried the -4.00 overage debt (breaker R4; the ledger
    read 76.00 when the change dropped it, while the statement billed it)."""
    store, credit = world(tmp_path, "bun_a", [
        [cdr("oct1", at(10, 10), 120)],
        lambda ops: ops.change_package("chg", "acme", "payg", effective_ms=at(10, 15, 0), at_ms=at(10, 15, 0)),
        [cdr("oct2", at(10, 20))],
        [cdr("nov", at(11, 5))],
        lambda ops: ops.top_up("pay", "acme", 100 * YUAN, at_ms=at(11, 25)),
    ])
    out = tmp_path / "bills.parquet"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(out), "--account", "acme"])
    assert e.value.code == 0
    printed = capsys.readouterr().out
    rows = {r["month"]: r for r in pq.read_table(out).to_pylist()}
    oct_, nov = rows["2026-10"], rows["2026-11"]
    assert (oct_["package"], oct_["overage_minor"], oct_["amount_due_minor"]) == ("bun_a", 4 * YUAN, 16 * YUAN)
    assert (nov["earlier_unpaid_minor"], nov["paid_to_earlier_minor"], nov["paid_to_charges_minor"]) == (
        16 * YUAN, 16 * YUAN, 12 * YUAN)
    assert nov["amount_due_minor"] == 0
    assert credit == 72 * YUAN == nov["closing_credit_minor"]
    # bill's total is each statement as billed; nothing is outstanding after November.
    assert "total due 16.00 yuan" in printed and "outstanding 0.00 yuan" in printed


def test_the_summary_of_a_payg_month_changed_to_prepaid_adds_up_to_the_amount_due(tmp_path, capsys):
    """payg -> pre_a on 2026-11-15, a 12.00 call on each side of it: November
    is billed as pay-as-you-go, its later call paid from the new credit. The
    printable Summary lists 'Paid from credit -12.00', so its amounts add up
    to the amount due (newcomer A3: 212.19 of charges, 115.95 due, the 96.24
    paid from credit only in the Payments section below)."""
    store, _ = world(tmp_path, "payg", [
        lambda ops: ops.change_package("chg", "acme", "pre_a", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
        [cdr("before", at(11, 10)), cdr("after", at(11, 20))],
    ])
    nov = bill(store, tmp_path, capsys, "--month", "2026-11", "--lang", "en")["2026-11"]
    assert (nov["usage_minor"], nov["credit_consumed_minor"], nov["amount_due_minor"]) == (240_000, 120_000, 120_000)
    html = (tmp_path / "st" / "acme-2026-11.html").read_text("utf-8")
    summary = html.split("<h2>Summary</h2>")[1].split("</table>")[0]
    assert 'Paid from credit (yuan)</td><td class="n">-12.00</td>' in summary
    cells = re.findall(r'<tr><td>([^<]*)</td><td class="n">(-?[\d,]+\.\d\d)</td></tr>', summary)
    amounts = {label: float(v.replace(",", "")) for label, v in cells}
    assert "Call charges (yuan)" in amounts and len(amounts) >= 4
    assert round(sum(v for label, v in amounts.items() if "(yuan)" in label), 2) == 12.00  # = the amount due
