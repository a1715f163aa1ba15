"""The printable statement shows a rerating as one line per rerating run
(catalog version, calls, total difference, the part from prepaid credit),
in the statement's language; the JSON statement keeps every call.

Hand-computed case (yuan): account ``tea``, prepaid, 100 yuan opening
credit; 400 one-minute calls on 2026-11-02 at 0.12/min under version 1
(48.00, all from credit, 52.00 left). Version 2 (1.00/min) reprices them
to 400.00: +352.00, of which 52.00 from the credit (left: 0) and 300.00
arrears. Version 3 (0.12/min again) gives it back: -352.00, -52.00 to
the credit.
"""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog
from rating_core.cli import main
from rating_core.engine import Engine
from rating_core.ledger import Ledger
from rating_core.rerate import rerate
from rating_core.store import Store

CATALOG = """
name: statement-rerating-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: PRICE}]}
packages:
  pre_3y: {kind: prepaid, fee: 3000, period_months: 36, rates: [{rate: std}]}
  payg: {kind: payg, rates: [{rate: std}]}
number_grades:
  standard: {}
customer_rules: {top_up_min: 600, top_up_min_months: 3, restore_months: 3, reclaim_months: 6, cooling_days: 90}
routing_plans:
  office:
    groups:
      desk: {destinations: [{number: "13700000001"}]}
    rules: [{group: desk}]
accounts:
  tea:
    name: West Lake Tea
    package: pre_3y
    package_start: 2026-01-01
    opening_credit: 100
    numbers:
      - {number: "4001110001", home_city: Hangzhou, routing: office}
  shop:
    name: Corner Shop
    package: payg
    package_start: 2026-01-01
    numbers:
      - {number: "4001110002", home_city: Hangzhou, routing: office}
"""

SH = dt.timezone(dt.timedelta(hours=8))
YUAN = 10_000
CALLS = 400


def at(day, hour=0):
    return int(dt.datetime(2026, 11, day, hour, tzinfo=SH).timestamp() * 1000)


def cdr(i, number="4001110001"):
    start = at(2) + i * 120_000
    return {"call_id": f"call-{number[-1]}-{i:04d}", "caller": "13812345678", "number": number,
            "forwarded_to": "13700000001", "start": start, "ivr_answer": start + 1_000,
            "agent_answer": start + 1_000, "end": start + 61_000, "hangup_cause": "normal_clearing"}


@pytest.fixture
def store_dir(tmp_path):
    for v, price in ((1, "0.12"), (2, "1.00"), (3, "0.12"), (4, "0.50")):
        (tmp_path / f"v{v}.yaml").write_text(CATALOG.replace("PRICE", price))
    store = Store(tmp_path / "store")
    store.compile(tmp_path / "v1.yaml", activate=True)
    assert [store.compile(tmp_path / f"v{v}.yaml") for v in (2, 3, 4)] == [2, 3, 4]
    ledger = Ledger(tmp_path / "store")
    assert sorted(import_catalog(Accounts(store, ledger), tmp_path / "v1.yaml")["imported"]) == ["shop", "tea"]
    ledger.close()
    engine = Engine.open(tmp_path / "store")
    engine.rate_and_commit(pa.Table.from_pylist([cdr(i) for i in range(CALLS)]
                                                + [cdr(i, "4001110002") for i in range(10)]))
    engine.close()
    return tmp_path / "store"


def bill(store_dir, out, lang, capsys):
    out.mkdir()
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store_dir), "--month", "2026-11", "--out", str(out / "b.json"),
              "--statements", str(out), "--format", "json,html", "--lang", lang])
    assert e.value.code == 0, capsys.readouterr().err
    doc = json.loads((out / "tea-2026-11.json").read_text("utf-8"))
    return doc["statements"][0], (out / "tea-2026-11.html").read_text("utf-8")


def events_table(html):
    """The rows of the statement's events table (after its heading)."""
    table = html.split("<h2>", 6)[6]  # summary, credit, by number, by class, features, events
    return [row for row in table.split("</table>")[0].split("<tr>")[2:]]


def test_a_rerating_of_many_calls_is_one_statement_line_in_the_statements_language(store_dir, tmp_path, capsys):
    before, _ = bill(store_dir, tmp_path / "before", "zh", capsys)
    assert before["amount_due_minor"] == 0 and before["closing_credit_minor"] == 52 * YUAN
    r = rerate(store_dir, 2, "2026-11-01", "2026-11-30", account="tea", now_ms=at(20, 10))
    assert len(r.adjustments) == CALLS and r.ledger_change_minor == {"tea": -52 * YUAN}
    st, html = bill(store_dir, tmp_path / "zh", "zh", capsys)
    # The JSON statement keeps every call; the amounts are unchanged by the printing.
    assert len(st["rerating"]) == CALLS and st["rerating_total_minor"] == 352 * YUAN
    assert st["rerating_credit_total_minor"] == 52 * YUAN and st["amount_due_minor"] == 300 * YUAN
    (line,) = events_table(html)
    assert "<td class=\"when\">2026-11-20 10:00</td><td>重新计费</td>" in line and '<td class="n">352.00</td>' in line
    assert "资费目录版本 2；400 次通话；其中预存款抵扣(元) 52.00</td>" in line
    assert "call-1-0001" not in html and "rerated under" not in html and "重新计费调整(元) (重新计费通话数 400)" in html
    assert '<td class="due nw">300.00</td>' in html  # amount due, as in the JSON statement

    # A second run (its own reason) is a second line; English reads English.
    rerate(store_dir, 3, "2026-11-01", "2026-11-30", account="tea", now_ms=at(21, 9), reason="back to 0.12")
    st, html = bill(store_dir, tmp_path / "en", "en", capsys)
    assert len(st["rerating"]) == 2 * CALLS and st["rerating_total_minor"] == 0 and st["amount_due_minor"] == 0
    first, second = events_table(html)
    assert "<td>rerating</td>" in first and "catalog version 2; 400 calls; from prepaid credit (yuan) 52.00<" in first
    assert '<td class="n">-352.00</td>' in second
    # The same money the CSV shows as -52.00 (charge-signed, README "Signs") reads as returned here.
    assert "catalog version 3; 400 calls; returned to prepaid credit (yuan) 52.00; back to 0.12</td>" in second
    assert "重新计费" not in html and "call-1-0001" not in html


def rerate_cli(store_dir, version, capsys, account=None, day=22):
    args = ["rerate", "--store", str(store_dir), "--version", str(version), "--from", "2026-11-01", "--to", "2026-11-30"]
    with pytest.raises(SystemExit) as e:
        main(args + (["--account", account] if account else []))
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    return out.splitlines()


def test_rerate_shows_each_accounts_charge_change_and_its_credit_and_arrears_parts(store_dir, capsys):
    # v2: tea +352.00 = 52.00 from its credit (now 0) + 300.00 arrears; shop's
    # 10 calls +8.80, billed as pay-as-you-go (its balance goes down by that).
    lines = rerate_cli(store_dir, 2, capsys)
    assert lines[0].startswith("410 calls: adjusted 410 (+360.80 yuan)")
    assert lines[1:] == ["  shop (payg): charges +8.80 yuan, on the bill (balance -8.80)",
                         "  tea (prepaid): charges +352.00 yuan: prepaid credit -52.00, arrears +300.00"]
    # v4 (0.50/min: 200.00 in all): 100 from the credit again, 100 of arrears.
    # The credit is unchanged, and the arrears fall by 200: the line says so.
    lines = rerate_cli(store_dir, 4, capsys, account="tea")
    assert lines[1:] == ["  tea (prepaid): charges -200.00 yuan: prepaid credit +0.00, arrears -200.00"]
    ledger = Ledger(store_dir)
    try:
        assert ledger.stored("tea").credit_minor == 0
    finally:
        ledger.close()


def test_a_prepaid_refund_pays_earlier_arrears_and_is_never_a_negative_amount_due(store_dir, tmp_path, capsys):
    # November: v2 makes tea's 400 calls 400.00: 52.00 from the credit, 300.00
    # of arrears due. December: v3 gives it back, -352.00: 52.00 to the
    # credit and -300.00 on the bill. That refund pays November's unpaid
    # 300.00 arrears (README: a credit pays earlier unpaid first, the rest
    # back to the credit): December is due 0.00, never -300.00 (newcomer
    # A10: -191.64 due to a customer who still owed its arrears).
    rerate(store_dir, 2, "2026-11-01", "2026-11-30", account="tea", now_ms=at(20, 10))
    rerate(store_dir, 3, "2026-11-01", "2026-11-30", account="tea",
           now_ms=int(dt.datetime(2026, 12, 3, 9, tzinfo=SH).timestamp() * 1000))
    out = tmp_path / "both"
    out.mkdir()
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store_dir), "--account", "tea", "--out", str(out / "b.json"),
              "--statements", str(out), "--format", "html", "--lang", "en"])
    printed = capsys.readouterr().out
    assert e.value.code == 0
    nov, dec = json.loads((out / "b.json").read_text("utf-8"))["statements"]
    assert nov["amount_due_minor"] == 300 * YUAN and nov["closing_credit_minor"] == 0
    assert dec["charges_minor"] == -300 * YUAN and dec["amount_due_minor"] == 0
    assert (dec["earlier_unpaid_minor"], dec["paid_to_earlier_minor"], dec["paid_to_charges_minor"]) == (
        300 * YUAN, 300 * YUAN, -300 * YUAN)
    assert dec["closing_credit_minor"] == 52 * YUAN  # the ledger's balance: only the credit part came back
    ledger = Ledger(store_dir)
    try:
        assert ledger.stored("tea").credit_minor == 52 * YUAN
    finally:
        ledger.close()
    html = (out / "tea-2026-12.html").read_text("utf-8")
    assert '<td class="due nw">0.00</td>' in html
    assert "Paid towards earlier statements (yuan) (of unpaid 300.00)</td><td class=\"n\">-300.00" in html
    # Signs (README "Signs"): the rerating's credit part is charge-signed in the
    # data (-52.00: given back), and the printable lines say which way it went,
    # as they enter their sums (newcomer A9: CSV -74.33, PDF "paid from credit 74.33").
    assert dec["rerating_credit_total_minor"] == -52 * YUAN and dec["rerating_total_minor"] == -352 * YUAN
    assert "Rerating returned to prepaid credit, not on this bill (yuan)</td><td class=\"n\">52.00" in html
    assert "Rerating returned to prepaid credit (yuan)</td><td class=\"n\">+52.00" in html  # signed, as README says
    assert "returned to prepaid credit (yuan) 52.00" in html and "Rerating paid from credit" not in html
    # bill's footer: 300.00 billed in all, nothing still owed, and why.
    assert "total due 300.00 yuan over 2 statement(s)" in printed
    assert ("outstanding 0.00 yuan after the last month shown, every package kind: the total due, less 300.00 "
            "later payments or credits paid towards earlier statements") in printed


def test_a_month_shows_what_earlier_months_left_unpaid_every_kind_and_the_parquet_reconciles(
        store_dir, tmp_path, capsys, clock):
    import pyarrow.parquet as pq

    clock(int(dt.datetime(2026, 12, 31, tzinfo=SH).timestamp() * 1000))  # the story's now: after December's adjustment

    # November: 300.00 of arrears after v2 (README: Rerating), and a credit
    # adjustment in December. December billed alone shows November's unpaid
    # arrears as earlier unpaid (the CSV left a prepaid month's out: A7).
    rerate(store_dir, 2, "2026-11-01", "2026-11-30", account="tea", now_ms=at(20, 10))
    ops = Accounts.open(store_dir)
    ops.adjust("goodwill-1", "tea", 50 * YUAN, reason="goodwill",
               at_ms=int(dt.datetime(2026, 12, 5, 10, tzinfo=SH).timestamp() * 1000))
    ops.ledger.close()
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store_dir), "--account", "tea", "--month", "2026-12",
              "--out", str(tmp_path / "dec.parquet")])
    printed = capsys.readouterr().out
    assert e.value.code == 0
    # The footer: nothing billed in December, 300.00 still owed, and the one reason that holds.
    assert "total due 0.00 yuan over 1 statement(s)" in printed
    assert ("outstanding 300.00 yuan after the last month shown, every package kind: the total due, 300.00 left "
            "unpaid by months before those shown (each statement's amount due is as it was billed)") in printed
    assert "later payments" not in printed
    (row,) = pq.read_table(tmp_path / "dec.parquet").to_pylist()
    assert row["earlier_unpaid_minor"] == 300 * YUAN and row["amount_due_minor"] == 0
    # The Parquet row holds every term of the credit's sum (newcomer A6: it had
    # no credit adjustments, so 0.00 opening != 50.00 closing, unexplained).
    assert row["credit_adjustments_minor"] == 50 * YUAN and row["closing_credit_minor"] == 50 * YUAN
    assert row["package_credit_minor"] == 0 and row["expired_credit_minor"] == 0
    assert row["closing_credit_minor"] == (
        row["opening_credit_minor"] + row["package_credit_minor"] + row["top_ups_minor"]
        + row["credit_adjustments_minor"] + row["refunds_minor"] - row["credit_consumed_minor"]
        - row["rerating_credit_minor"]
        - row["expired_credit_minor"] - row["paid_to_earlier_minor"] - row["paid_to_charges_minor"])  # Statement.closing_credit
