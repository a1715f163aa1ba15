"""The amount payable (README "Monthly statements", Amount payable): the
amount due rounded once to the fen, half up, with the rounding shown, and
the sub-fen rest carried by the exact ledger to the next statement.
6-second increments at 0.12 yuan a minute: 0.012 yuan (120 minor) a step."""
import csv
import json

import pyarrow.parquet as pq
import pytest

from rating_core.billing.statements import to_fen
from rating_core.cli import main

from clock import clock_at
from test_billing import CATALOG, at, call, commit_calls, live_store

SIX_SECONDS = CATALOG.replace("std: {tiers: [{price: 0.12}]}", "std: {tiers: [{price: 0.12, unit: 60, increment: 6}]}")


def test_to_fen_rounds_half_up():
    assert [to_fen(m) for m in (11_302_920, 49_546_980, 149, 150, 0, -150, -149)] == [
        11_302_900, 49_547_000, 100, 200, 0, -200, -100]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """shop (payg): a 66 s call in October (1320 minor: pays 0.13), a 54 s
    call in November (1080: pays 0.11); the customer pays exactly the
    payable amounts, 0.13 on 11-05 and 0.11 on 12-03."""
    from rating_core.accounts import Accounts

    assert SIX_SECONDS != CATALOG
    d = tmp_path_factory.mktemp("rounding")
    store = live_store(d, SIX_SECONDS)
    rows = [call("r1", "4001000005", at(10, 10), 1), call("r2", "4001000005", at(11, 10), 1)]
    rows[0]["end"] += 6_000  # 66 s
    rows[1]["end"] -= 6_000  # 54 s
    commit_calls(store, rows)
    ops = Accounts.open(d / "store")
    with clock_at(at(12, 3)):  # the accounts' now: a payment is dated when it happened
        ops.top_up("pay-1", "shop", 1_300, at_ms=at(11, 5))
        ops.top_up("pay-2", "shop", 1_100, at_ms=at(12, 3))
        balance = ops.balance("shop")["credit_minor"]
    ops.ledger.close()
    return d, balance


def bill(d, capsys, out, *extra):
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(d / "store"), "--out", str(out), "--account", "shop", *extra])
    assert e.value.code == 0, capsys.readouterr().err


def test_the_amount_due_is_rounded_once_to_the_fen_and_the_rest_carried(shop, capsys):
    d, balance = shop
    bill(d, capsys, d / "b.json")
    got = {s["month"]: s for s in json.loads((d / "b.json").read_text("utf-8"))["statements"]}
    octo, nov, dec = got["2026-10"], got["2026-11"], got["2026-12"]
    # October: 0.1320 due (exact, as before), 0.13 to pay, rounded down by 0.0020.
    assert (octo["amount_due_minor"], octo["amount_payable_minor"], octo["rounding_minor"]) == (1_320, 1_300, -20)
    # November: the 0.13 paid leaves 0.0020 of October unpaid on this statement; 0.1080 due, 0.11 to pay.
    assert (nov["earlier_unpaid_minor"], nov["paid_to_earlier_minor"]) == (1_320, 1_300)
    assert (nov["amount_due_minor"], nov["amount_payable_minor"], nov["rounding_minor"]) == (1_080, 1_100, 20)
    # December: the 0.11 paid settles both rests exactly; nothing lost, nothing owed.
    assert (dec["earlier_unpaid_minor"], dec["paid_to_earlier_minor"], dec["amount_payable_minor"]) == (1_100, 1_100, 0)
    assert dec["closing_credit_minor"] == balance == 0
    # The CSV shows the payable amount and the rounding; the Parquet has the same fields.
    bill(d, capsys, d / "b.csv", "--lang", "en")
    with open(d / "b.csv", encoding="utf-8-sig", newline="") as f:
        rows = {r["Month"]: r for r in csv.DictReader(f)}
    # The rounding in yuan, as every money cell is, exact since it is below a fen (newcomer N10-2 finding 7: "+20").
    assert (rows["2026-10"]["Amount due (yuan)"], rows["2026-10"]["Rounding to the fen (yuan)"]) == ("0.13", "-0.0020")
    assert (rows["2026-11"]["Amount due (yuan)"], rows["2026-11"]["Rounding to the fen (yuan)"]) == ("0.11", "+0.0020")
    bill(d, capsys, d / "b.parquet")
    t = pq.read_table(d / "b.parquet").to_pylist()
    assert [(r["amount_due_minor"], r["amount_payable_minor"], r["rounding_minor"]) for r in t] == [
        (1_320, 1_300, -20), (1_080, 1_100, 20), (0, 0, 0)]
    # The printable statement: the payable amount, and the rounding line.
    bill(d, capsys, d / "o.json", "--month", "2026-10", "--statements", str(d / "st"), "--format", "html", "--lang", "en")
    html = next((d / "st").glob("*.html")).read_text("utf-8")
    assert "0.13" in html and "Rounding to the fen (yuan)" in html and ">-0.0020<" in html and "-20<" not in html


def test_the_total_due_is_the_sum_of_the_amounts_payable_listed(tmp_path, capsys):
    """Breaker 3 F3: `bill` printed the exact amounts due summed, then
    rounded (3 x 0.1080 = 0.32), under a table and a CSV whose amounts
    payable add to 0.33. The total people read is the sum of the amounts
    payable, and says so."""
    store = live_store(tmp_path, SIX_SECONDS)
    rows = [call(f"s{m}", "4001000005", at(m, 10), 1) for m in (8, 9, 10)]
    for r in rows:
        r["end"] -= 6_000  # 54 s: 0.1080 due, 0.11 payable
    commit_calls(store, rows)
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "b.json"),
              "--account", "shop", "--month", "2026-08", "--month", "2026-09", "--month", "2026-10"])
    printed = capsys.readouterr().out
    assert e.value.code == 0, printed
    got = json.loads((tmp_path / "b.json").read_text("utf-8"))["statements"]
    assert [(s["amount_due_minor"], s["amount_payable_minor"]) for s in got] == [(1_080, 1_100)] * 3
    assert "total due 0.33 yuan over 3 statement(s) (the sum of their amounts payable)" in printed, printed


def test_the_printable_statement_and_csv_add_up_to_the_exact_amount_before_its_one_rounding(tmp_path, capsys):
    """Newcomer N11 F8: the breakdown lines were each rounded to the fen, so
    xinda_insurance's 12 lines added to 1130.30 beside call charges of
    1130.29, and `Rounding to the fen -0.0020` followed figures all already
    1130.29. Money is exact until the amount payable: two 18 s calls (3
    steps, 0.0360 each: 0.04 apiece rounded, 0.08 together), one to a
    mobile and one to a landline, cost 0.0720, payable 0.07. Every figure
    before the amount payable is shown exact (4 decimals where 2 would
    round: ``money.exact_yuan``), so the lines add to the call charges and
    0.0720 - 0.0020 = 0.07 can be followed, on the page and in the CSV."""
    import re
    from decimal import Decimal

    store = live_store(tmp_path, SIX_SECONDS)
    rows = [call("m1", "4001000005", at(10, 10), 1), call("l1", "4001000005", at(10, 11), 1)]
    for r in rows:
        r["end"] = r["agent_answer"] + 18_000
    rows[1]["forwarded_to"] = "02012345678"
    commit_calls(store, rows)
    bill(tmp_path, capsys, tmp_path / "b.csv", "--month", "2026-10", "--lang", "en",
         "--statements", str(tmp_path / "st"), "--format", "html,json")
    (st,) = json.loads((tmp_path / "st" / "shop-2026-10.json").read_text("utf-8"))["statements"]
    assert [x["charge_minor"] for x in st["by_class"]] == [360, 360]
    assert (st["usage_minor"], st["amount_payable_minor"], st["rounding_minor"]) == (720, 700, -20)
    html = (tmp_path / "st" / "shop-2026-10.html").read_text("utf-8")
    table = html.split("<h2>By destination class / caller class / time band</h2>")[1].split("</table>")[0]
    charges = [re.findall(r'<td class="n">([^<]*)</td>', r)[-1] for r in re.findall(r"<tr>(.*?)</tr>", table)[1:]]
    assert charges == ["0.0360", "0.0360"], charges
    numbers = html.split("<h2>By 400 number</h2>")[1].split("</table>")[0]
    assert '<td class="n">0.0720</td>' in numbers
    summary = html.split("<h2>Summary</h2>")[1].split("</table>")[0]
    lines = [tuple(re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r))
             for r in re.findall(r"<tr[^>]*>(.*?)</tr>", summary, re.S)]
    got = dict(lines)
    assert got["Call charges (yuan)"] == "0.0720" == str(sum(Decimal(c) for c in charges))
    # The rounding is the last term before the amount payable: 0.0720 - 0.0020 = 0.07.
    labels = [k for k, _ in lines]
    rounding = next(k for k in labels if k.startswith("Rounding to the fen"))
    assert labels.index(rounding) + 1 == labels.index("Amount due (yuan)")
    assert Decimal(got["Call charges (yuan)"]) + Decimal(got[rounding]) == Decimal(got["Amount due (yuan)"]) == \
        Decimal("0.07")
    with open(tmp_path / "b.csv", encoding="utf-8-sig", newline="") as f:
        (row,) = csv.DictReader(f)
    assert (row["Call charges (yuan)"], row["This month's charges (yuan)"], row["Amount due (yuan)"],
            row["Rounding to the fen (yuan)"]) == ("0.0720", "0.0720", "0.07", "-0.0020")
