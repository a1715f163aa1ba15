"""The statement of a month in which a package starts or changes (newcomer
walkthrough 2026-12-02, findings 1, 2, 6 and 7), from the live ledger.

The rules (README "Monthly statements"):

- a bundle's allowance counts once for every bundle period that ran in the
  month: a first subscription mid-month is one period (finding 1: it was
  counted twice, 2000 minutes of a 1000-minute bundle);
- rental is charged in full for every package that runs in the month, the
  starting month included; a renewal or a change back to a package already
  billed that month adds no second rental, but a bundle's does (each bundle period is a
  fresh allowance, sold by its rental: breaker 12-02 F3); the monthly minimum and the kind
  stay those of the package in force at the month's start (finding 2: a
  change to a bundle got its minutes without its rental);
- a period's last day is never before its start; the package in force at
  the month's start runs to the day of a change made during that day (the
  day before one at midnight); the statement names
  both packages (finding 6);
- each statement's outstanding: what the account still owes after that
  month, earlier statements' unpaid included (finding 7).

Hand-computed, 1 yuan = 10000 minor units, calls at 0.12/min:
``bun_r`` bundle 100 min, rental 99.00; ``bun_s`` bundle 300 min, rental
50.00; ``pre_a`` prepaid, fee 480.00, minimum 40.00, no rental.
"""
from __future__ import annotations

import csv
import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clock import clock_at, when_dated
from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog
from rating_core.cli import main
from rating_core.engine import Engine
from rating_core.ledger import Ledger
from stores import compiled

CATALOG = """
name: package-month-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  pre_a: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rates: [{rate: std}]}
  bun_r: {kind: bundle, included_minutes: 100, overage_price: 0.20, rental: 99, rates: [{rate: std}]}
  bun_s: {kind: bundle, included_minutes: 300, overage_price: 0.20, rental: 50, rates: [{rate: std}]}
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
    package_start: START
    numbers:
      - {number: "4001110001", home_city: Shenzhen, routing: office}
"""
SH = dt.timezone(dt.timedelta(hours=8))
YUAN = 10_000


def at(month, day, hour=10):
    return int(dt.datetime(2026, month, day, hour, tzinfo=SH).timestamp() * 1000)


def cdr(call_id, start, minutes=100):
    return {"call_id": call_id, "caller": "13812345678", "number": "4001110001", "forwarded_to": "13700000001",
            "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 2_000,
            "end": start + 2_000 + minutes * 60_000, "hangup_cause": "normal_clearing"}


def world(tmp_path, package, start, steps):
    store = compiled(tmp_path, CATALOG.replace("PACKAGE", package).replace("START", start))
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(store, ledger)
    assert import_catalog(ops, tmp_path / "catalog.yaml", billing_from_ms=at(10, 1, 0))["imported"] == ["acme"]
    engine = Engine.open(tmp_path / "store")
    with clock_at(at(12, 31)):
        for step in steps:
            if callable(step):
                step(when_dated(ops))  # a change made on its date: November had not ended
                engine.refresh()
            else:
                engine.rate_and_commit(pa.Table.from_pylist(step))
    engine.close()
    ledger.close()
    return tmp_path / "store"


def bill(store, tmp_path, capsys, *extra):
    """(parquet rows by month, JSON statements by month, CSV rows by month, the terminal's text)."""
    out = tmp_path / "bills.parquet"
    with clock_at(at(12, 31)), pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(out), "--account", "acme",
              "--statements", str(tmp_path / "st"), "--format", "json,html", "--show", "20", *extra])
    assert e.value.code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    rows = {r["month"]: r for r in pq.read_table(out).to_pylist()}
    docs = {m: json.loads((tmp_path / "st" / f"acme-{m}.json").read_text("utf-8"))["statements"][0] for m in rows}
    with clock_at(at(12, 31)), pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(tmp_path / "b.csv"), "--account", "acme",
              "--lang", "en", *extra])
    assert e.value.code == 0
    capsys.readouterr()
    with open(tmp_path / "b.csv", encoding="utf-8-sig", newline="") as f:
        csv_rows = {r["Month"]: r for r in csv.DictReader(f)}
    return rows, docs, csv_rows, " ".join(text.split())


def test_a_first_subscription_to_a_bundle_mid_month_counts_its_minutes_once(tmp_path, capsys):
    """bun_r from 2026-11-15 (finding 1: 2000 of 1000 minutes). Nov 20: 60
    min, in the bundle. November: included 100 min = 6000 s, used 3600 s,
    left 2400 s (not 12000 / 8400); rental 99.00 in full (the starting
    month included); December: 6000 s again, rental 99.00."""
    store = world(tmp_path, "bun_r", "2026-11-15", [[cdr("nov", at(11, 20), 60)]])
    rows, docs, _, _ = bill(store, tmp_path, capsys)
    nov, dec = rows["2026-11"], rows["2026-12"]
    assert docs["2026-11"]["bundle_included_seconds"] == 6000
    assert (nov["bundle_used_seconds"], nov["bundle_left_seconds"]) == (3600, 2400)
    assert nov["rental_minor"] == 99 * YUAN and nov["amount_due_minor"] == 99 * YUAN
    assert docs["2026-12"]["bundle_included_seconds"] == 6000 and dec["rental_minor"] == 99 * YUAN


def test_a_change_to_a_bundle_mid_month_bills_its_rental_that_month(tmp_path, capsys):
    """pre_a from 10-01 -> bun_r on 11-15 (finding 2: 1000 minutes without
    the 99.00). Oct: credit 480.00, no call. Nov 5: 100 min = 12.00 from the
    credit (468.00 carried at the change). November, billed as pre_a (in
    force at its start): minimum 40.00 - usage 12.00 = 28.00 top-up; rental
    pre_a 0 + bun_r 99.00 = 99.00; amount due 12.00 - 12.00 + 28.00 + 99.00
    = 127.00 (a prepaid month applies no credit to its bill). December
    (bun_r): rental 99.00; the carried 468.00 pays November's 127.00 and
    December's 99.00: due 0, 242.00 left."""
    store = world(tmp_path, "pre_a", "2026-10-01", [
        [cdr("nov", at(11, 5))],
        lambda ops: ops.change_package("chg", "acme", "bun_r", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
    ])
    rows, docs, csv_rows, _ = bill(store, tmp_path, capsys)
    nov, dec = rows["2026-11"], rows["2026-12"]
    assert (nov["minimum_topup_minor"], nov["rental_minor"], nov["amount_due_minor"]) == (
        28 * YUAN, 99 * YUAN, 127 * YUAN)
    assert docs["2026-11"]["package_kind"] == "prepaid" and docs["2026-11"]["monthly_minimum_minor"] == 40 * YUAN
    assert docs["2026-11"]["rentals"] == [
        {"package": "pre_a", "name": "pre_a", "from": "2026-10-01", "rental_minor": 0},
        {"package": "bun_r", "name": "bun_r", "from": "2026-11-15", "rental_minor": 99 * YUAN}]
    assert csv_rows["2026-11"]["Package monthly fee (yuan)"] == "99.00"
    # In yuan, its header says so; a colon parts each fee from its package's name (newcomer8 F11).
    assert csv_rows["2026-11"]["Monthly fee by package (package: yuan)"] == "pre_a: 0.00; bun_r: 99.00"
    html = " ".join((tmp_path / "st" / "acme-2026-11.html").read_text("utf-8").split())
    assert '套餐月费(元) (bun_r)</td><td class="n">99.00' in html  # the monthly fee line of each package with one
    assert "套餐月费(元) (pre_a)" not in html  # a package without a monthly fee has no line
    assert (dec["rental_minor"], dec["paid_to_earlier_minor"], dec["amount_due_minor"], dec["closing_credit_minor"]) == (
        99 * YUAN, 127 * YUAN, 0, 242 * YUAN)
    assert len(docs["2026-12"]["rentals"]) == 1


def test_a_change_back_to_a_bundle_bills_the_rental_of_its_fresh_allowance_again(tmp_path, capsys):
    """bun_r from 10-01 -> bun_s on 11-10 -> bun_r on 11-20. Each bundle
    period starts a fresh allowance (the ledger's rule), and each allowance
    is sold by its rental (breaker 12-02 F3: bundle -> payg -> bundle gave
    2000 minutes for one 99.00). October: 99.00. November: bun_r 99.00 +
    bun_s 50.00 + bun_r again 99.00 = 248.00 for 100 + 300 + 100 minutes;
    December: 99.00. No calls, no payment: amounts due 99.00, 248.00, 99.00."""
    store = world(tmp_path, "bun_r", "2026-10-01", [
        lambda ops: ops.change_package("c1", "acme", "bun_s", effective_ms=at(11, 10, 0), at_ms=at(11, 10, 0)),
        lambda ops: ops.change_package("c2", "acme", "bun_r", effective_ms=at(11, 20, 0), at_ms=at(11, 20, 0)),
    ])
    rows, docs, _, _ = bill(store, tmp_path, capsys)
    assert [rows[m]["rental_minor"] for m in ("2026-10", "2026-11", "2026-12")] == [99 * YUAN, 248 * YUAN, 99 * YUAN]
    assert [rows[m]["amount_due_minor"] for m in ("2026-10", "2026-11", "2026-12")] == [
        99 * YUAN, 248 * YUAN, 99 * YUAN]
    assert [(r["package"], r["rental_minor"]) for r in docs["2026-11"]["rentals"]] == [
        ("bun_r", 99 * YUAN), ("bun_s", 50 * YUAN), ("bun_r", 99 * YUAN)]
    assert docs["2026-11"]["bundle_included_seconds"] == (100 + 300 + 100) * 60


def test_the_month_of_a_change_names_both_packages_and_possible_dates(tmp_path, capsys):
    """pre_a from 2026-11-15 00:00, changed to bun_r at 13:00 the same day
    (finding 6: package_start 11-15, package_last_day 11-14). November's
    pre_a period: 11-15 .. 11-15 (the day of the change: its only day);
    named "pre_a, then bun_r from 2026-11-15"; billed as prepaid. A period
    that started before the month runs to the day of the change:
    pre_a from 10-01 changed on 11-15 at 13:00 -> last day 11-15 (it ran that
    day; at midnight: 11-14)."""
    store = world(tmp_path, "pre_a", "2026-11-15", [
        lambda ops: ops.change_package("chg", "acme", "bun_r", effective_ms=at(11, 15, 13), at_ms=at(11, 15, 13)),
    ])
    rows, docs, csv_rows, text = bill(store, tmp_path, capsys)
    nov = docs["2026-11"]
    assert (nov["package"], nov["package_kind"], nov["package_start"], nov["package_last_day"]) == (
        "pre_a", "prepaid", "2026-11-15", "2026-11-15")
    assert nov["package_label"] == "pre_a, then bun_r from 2026-11-15"
    assert csv_rows["2026-11"]["Package"] == "pre_a, then bun_r from 2026-11-15"
    assert "pre_a, then bun_r from 2026-11-15" in text
    html = " ".join((tmp_path / "st" / "acme-2026-11.html").read_text("utf-8").split())
    # That one day printed once, with the change's time (faces 12-02: "2026-11-15 – 2026-11-15").
    assert "2026-11-15（13:00 变更）</span> (pre_a)" in html and "pre_a，2026-11-15起改为bun_r" in html
    for d in docs.values():
        if d["package_last_day"]:
            assert d["package_last_day"] >= d["package_start"]
    assert docs["2026-12"]["package_label"] == "bun_r"

    other = tmp_path / "before"
    other.mkdir()
    store = world(other, "pre_a", "2026-10-01", [
        lambda ops: ops.change_package("chg", "acme", "bun_r", effective_ms=at(11, 15, 13), at_ms=at(11, 15, 13)),
    ])
    _, docs, _, _ = bill(store, other, capsys, "--month", "2026-11")
    # It ran on 11-15 until 13:00: its last day is 11-15 (breaker 12-02 F8: a change at 12:00 on 12-01
    # read last day 11-30, before the month whose minimum it billed); one cut at midnight: the day before.
    assert (docs["2026-11"]["package_start"], docs["2026-11"]["package_last_day"]) == ("2026-10-01", "2026-11-15")
    third = tmp_path / "midnight"
    third.mkdir()
    store = world(third, "pre_a", "2026-10-01", [
        lambda ops: ops.change_package("chg", "acme", "bun_r", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
    ])
    _, docs, _, _ = bill(store, third, capsys, "--month", "2026-11")
    assert (docs["2026-11"]["package_start"], docs["2026-11"]["package_last_day"]) == ("2026-10-01", "2026-11-14")


def test_the_terminal_and_the_csv_show_what_is_still_owed_after_each_month(tmp_path, capsys):
    """bun_r from 10-01, no calls: 99.00 due each month; a 50.00 payment
    (a bundle's top-up) on 11-15 pays October's first. Outstanding after
    October 99.00; November 99.00 - 50.00 + 99.00 = 148.00; December
    148.00 + 99.00 = 247.00, what `accounts balance` says is unpaid (finding
    7: the table's amounts due 99/99/99 and "total due 297.00" alone)."""
    store = world(tmp_path, "bun_r", "2026-10-01", [
        lambda ops: ops.top_up("p1", "acme", 50 * YUAN, at_ms=at(11, 15)),
    ])
    rows, docs, csv_rows, text = bill(store, tmp_path, capsys)
    assert [rows[m]["amount_due_minor"] for m in ("2026-10", "2026-11", "2026-12")] == [99 * YUAN] * 3
    assert [docs[m]["outstanding_minor"] for m in ("2026-10", "2026-11", "2026-12")] == [
        99 * YUAN, 148 * YUAN, 247 * YUAN]
    assert [csv_rows[m]["Outstanding (yuan)"] for m in ("2026-10", "2026-11", "2026-12")] == [
        "99.00", "148.00", "247.00"]
    assert "outstanding (yuan)" in text and "247.00" in text
    with clock_at(at(12, 31)), pytest.raises(SystemExit) as e:
        main(["accounts", "balance", "acme", "--store", str(store)])
    assert e.value.code == 0
    assert json.loads(capsys.readouterr().out)["statements"]["unpaid_minor"] == 247 * YUAN


def grpc_statements(store, tmp_path, months):
    """GetStatement of ``acme`` for each of ``months`` from a real server on loopback."""
    import grpc

    from demo_server import Server
    from rating400.v1 import billing_pb2, billing_pb2_grpc

    server = Server(store, tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = billing_pb2_grpc.BillingServiceStub(channel)
            return {m: stub.GetStatement(billing_pb2.StatementRequest(account="acme", month=m), timeout=60)
                    for m in months}
    finally:
        server.stop()


def test_grpc_and_parquet_say_what_the_json_says_of_a_month_with_two_packages(tmp_path, capsys):
    """bun_r from 10-01 -> bun_s on 11-15 00:00; Nov 5: 150 min under bun_r,
    100 in its bundle, 50 over at 0.20 = 10.00; a 50.00 payment (a bundle's
    top-up) on 11-20. October: rental 99.00 due, outstanding 99.00.
    November: rentals bun_r 99.00 (its period from 2026-10-01) + bun_s
    50.00 (from 2026-11-15) = 149.00; due 10.00 + 149.00 = 159.00; the
    payment pays October's 99.00 first: outstanding 99.00 - 50.00 + 159.00
    = 208.00; label "bun_r, then bun_s from 2026-11-15". December: bun_s
    alone (from 2026-11-15), 50.00: outstanding 208.00 + 50.00 = 258.00.
    The gRPC answer's fields and the Parquet row hold the same outstanding,
    label and rental parts as the JSON statement."""
    store = world(tmp_path, "bun_r", "2026-10-01", [
        [cdr("nov", at(11, 5), 150)],
        lambda ops: ops.change_package("chg", "acme", "bun_s", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0)),
        lambda ops: ops.top_up("p1", "acme", 50 * YUAN, at_ms=at(11, 20)),
    ])
    rows, docs, _, _ = bill(store, tmp_path, capsys)
    nov_parts = [{"package": "bun_r", "name": "bun_r", "from": "2026-10-01", "rental_minor": 99 * YUAN},
                 {"package": "bun_s", "name": "bun_s", "from": "2026-11-15", "rental_minor": 50 * YUAN}]
    dec_parts = [{"package": "bun_s", "name": "bun_s", "from": "2026-11-15", "rental_minor": 50 * YUAN}]
    nov = docs["2026-11"]
    assert (nov["overage_minor"], nov["rental_minor"], nov["amount_due_minor"]) == (10 * YUAN, 149 * YUAN, 159 * YUAN)
    assert (nov["earlier_unpaid_minor"], nov["paid_to_earlier_minor"]) == (99 * YUAN, 50 * YUAN)
    want = {"2026-10": (99 * YUAN, "bun_r", nov_parts[:1]),
            "2026-11": (208 * YUAN, "bun_r, then bun_s from 2026-11-15", nov_parts),
            "2026-12": (258 * YUAN, "bun_s", dec_parts)}
    assert {m: (d["outstanding_minor"], d["package_label"], d["rentals"]) for m, d in docs.items()} == want
    # The Parquet summary: the same three facts, the parts as a list of structs keyed as the JSON's.
    assert {m: (r["outstanding_minor"], r["package_label"], r["rentals"]) for m, r in rows.items()} == want
    got = grpc_statements(store, tmp_path, ["2026-11", "2026-12"])
    for m in ("2026-11", "2026-12"):
        s = got[m]
        parts = [{"package": r.package, "name": r.name, "from": r.from_date, "rental_minor": r.rental_minor}
                 for r in s.rentals]
        assert (s.outstanding_minor, s.package_label, parts) == want[m], m
        doc = json.loads(s.json)  # the answer's own JSON says the same
        assert (doc["outstanding_minor"], doc["package_label"], doc["rentals"]) == want[m], m
        assert s.rental_minor == sum(p["rental_minor"] for p in parts)
