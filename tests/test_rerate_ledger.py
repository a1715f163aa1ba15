"""Rerating on the live customer layer: a top-up inside the rerated period
is replayed in its place among the calls (it changes which calls went into
arrears), and the month's statement (`rating400 bill --ledger`) carries the
rerating adjustments so its closing credit is the ledger's.

Hand-computed case (money in yuan; 1 yuan = 10000 minor units):
account ``legacy``, prepaid, 100 yuan opening credit, rate 0.12/min under
version 1 and 1.00/min under version 2; three 60-minute calls on 2026-11-02,
11-03 and 11-05, a 600 yuan top-up on 11-04.

Live (v1): each call 7.20, all from credit; credit 100 - 7.20 x 2 + 600 -
7.20 = 678.40.
Rerated (v2), the sequence replayed with the top-up in its place:
c1 60 from credit (40 left); c2 40 from credit + 20 arrears; top-up 600;
c3 60 from credit (540 left). Without the top-up c3 would be 60 of arrears.
Adjustments: deltas +52.80 each (158.40), credit part +52.80, +32.80,
+52.80 (138.40): the credit goes 678.40 -> 540.00.
"""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog
from rating_core.cli import main
from rating_core.engine import Engine
from rating_core.ledger import Ledger
from rating_core.rerate import rerate
from rating_core.store import Store

CATALOG = """
name: rerate-ledger-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: PRICE}]}
packages:
  pre_3y: {kind: prepaid, fee: 3000, period_months: 36, rates: [{rate: std}]}
number_grades:
  standard: {}
customer_rules: {top_up_min: 600, top_up_min_months: 3, restore_months: 3, reclaim_months: 6, cooling_days: 90}
routing_plans:
  office:
    groups:
      desk: {destinations: [{number: "13700000001"}]}
    rules: [{group: desk}]
accounts:
  legacy:
    name: Legacy Co.
    package: pre_3y
    package_start: 2026-01-01
    opening_credit: 100
    numbers:
      - {number: "4001110001", home_city: Shenzhen, routing: office}
"""

SH = dt.timezone(dt.timedelta(hours=8))
YUAN = 10_000


def at(day, hour=10):
    return int(dt.datetime(2026, 11, day, hour, tzinfo=SH).timestamp() * 1000)


def cdr(call_id, day):
    start = at(day)
    return {"call_id": call_id, "caller": "13812345678", "number": "4001110001", "forwarded_to": "13700000001",
            "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 2_000,
            "end": start + 2_000 + 3_600_000, "hangup_cause": "normal_clearing"}


@pytest.fixture
def store_dir(tmp_path):
    for v, price in ((1, "0.12"), (2, "1.00")):
        (tmp_path / f"v{v}.yaml").write_text(CATALOG.replace("PRICE", price))
    store = Store(tmp_path / "store")
    store.compile(tmp_path / "v1.yaml", activate=True)
    assert store.compile(tmp_path / "v2.yaml") == 2
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(store, ledger)
    assert import_catalog(ops, tmp_path / "v1.yaml")["imported"] == ["legacy"]
    engine = Engine.open(tmp_path / "store")
    engine.rate_and_commit(pa.Table.from_pylist([cdr("c1", 2), cdr("c2", 3)]))
    ops.top_up("t1", "legacy", 600 * YUAN, at_ms=at(4))
    engine.refresh()
    engine.rate_and_commit(pa.Table.from_pylist([cdr("c3", 5)]))
    engine.close()
    ledger.close()
    return tmp_path / "store"


def credit(store_dir):
    ledger = Ledger(store_dir)
    try:
        return ledger.stored("legacy").credit_minor
    finally:
        ledger.close()


def test_a_top_up_inside_the_period_is_replayed_in_its_place(store_dir):
    assert credit(store_dir) == 678_4000
    r = rerate(store_dir, 2, "2026-11-01", "2026-11-30", account="legacy", now_ms=at(20))
    rows = {a.call_id: (a.old_charge_minor, a.new_charge_minor, a.delta_minor, a.ledger_delta_minor)
            for a in r.adjustments}
    assert rows == {
        "c1": (7_2000, 60 * YUAN, 52_8000, 52_8000),
        "c2": (7_2000, 60 * YUAN, 52_8000, 32_8000),  # 40 from credit, 20 of arrears
        "c3": (7_2000, 60 * YUAN, 52_8000, 52_8000),  # the top-up paid for it: no arrears
    }
    assert r.ledger_change_minor == {"legacy": -138_4000}
    assert credit(store_dir) == 540 * YUAN  # what the replayed sequence leaves
    again = rerate(store_dir, 2, "2026-11-01", "2026-11-30", account="legacy", now_ms=at(21))
    assert again.adjustments == [] and again.skipped == 3 and credit(store_dir) == 540 * YUAN


def test_the_statement_of_the_month_carries_the_rerating(store_dir, tmp_path, capsys):
    rerate(store_dir, 2, "2026-11-01", "2026-11-30", account="legacy", now_ms=at(20), reason="tariff fix")
    out = tmp_path / "bills.parquet"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store_dir), "--month", "2026-11", "--out", str(out),
              "--statements", str(tmp_path / "st"), "--format", "json,html", "--lang", "en"])
    assert e.value.code == 0, capsys.readouterr().err
    (row,) = [r for r in pq.read_table(out).to_pylist() if r["account"] == "legacy"]
    # Usage as committed (3 x 7.20, all from credit); the rerating on top.
    assert row["usage_minor"] == 21_6000 and row["credit_consumed_minor"] == 21_6000
    assert row["top_ups_minor"] == 600 * YUAN
    assert (row["rerating_calls"], row["rerating_minor"], row["rerating_credit_minor"]) == (3, 158_4000, 138_4000)
    # Opening 100 + top-up 600 - 21.60 consumed - 138.40 rerated from credit = 540 = the ledger.
    assert row["opening_credit_minor"] == 100 * YUAN
    assert row["closing_credit_minor"] == 540 * YUAN == credit(store_dir)
    # Due: the rerating's 158.40 less the 138.40 paid from credit: c2's 20 of arrears.
    assert row["amount_due_minor"] == 20 * YUAN
    doc = json.loads((tmp_path / "st" / "legacy-2026-11.json").read_text("utf-8"))
    (statement,) = doc["statements"]
    assert sorted((x["amount_minor"], x["credit_minor"]) for x in statement["rerating"]) == [
        (52_8000, 32_8000), (52_8000, 52_8000), (52_8000, 52_8000)]
    assert all("tariff fix" in x["note"] for x in statement["rerating"])
    assert statement["rerating_calls"] == 3 and statement["rerating_credit_total_minor"] == 138_4000
    html = (tmp_path / "st" / "legacy-2026-11.html").read_text("utf-8")
    assert "Rerated calls 3" in html and "Rerating paid from credit" in html and "158.40" in html
    printed = capsys.readouterr().out
    assert "rerating: 3 call(s) adjusted on 1 statement(s), 158.40 yuan (138.40 of it from prepaid credit)" in printed
    assert "total due 20.00 yuan" in printed


def test_a_refund_the_rerated_sequence_cannot_pay_refuses_the_rerating(store_dir):
    from rating_core.ledger import InsufficientCredit
    from rating_core.ledger import adjustments as adj

    ledger = Ledger(store_dir)
    Accounts(Store(store_dir, create=False), ledger).refund("r1", "legacy", 600 * YUAN, "overpaid", at_ms=at(6))
    ledger.close()
    assert credit(store_dir) == 78_4000
    # Replayed at 1.00/min, 540 yuan is left after c3: the 600 yuan refund on
    # 11-06 could not have been paid. Refused whole, nothing written.
    with pytest.raises(InsufficientCredit) as e:
        rerate(store_dir, 2, "2026-11-01", "2026-11-30", account="legacy", now_ms=at(20))
    assert (e.value.available_minor, e.value.debit_minor) == (540 * YUAN, 600 * YUAN)
    assert credit(store_dir) == 78_4000
    ledger = Ledger(store_dir)
    try:
        with ledger.env.begin() as txn:
            assert adj.all_rows(ledger, txn) == []
    finally:
        ledger.close()
