"""The `bill` footer's outstanding line (README "Monthly statements", Total
and outstanding): every term exact (2 decimals, 4 where 2 would round,
``money.exact_yuan``), so the printed terms add up to the printed
outstanding (newcomer 2026-12-02 #3: "total due 674.00 ... 1480.08 left
unpaid ... less 24.07 ... outstanding 2130.02": 674.00 + 1480.08 - 24.07 =
2130.01; exact 1480.0820, 24.0660, 2130.0160).

shop (payg), 6-second steps at 0.12 yuan a minute (0.012 a step): a 66 s
call in September, October and November each (1320 minor: 0.1320 due,
0.13 payable), a 54 s call in November (1080 minor); 0.20 paid on 11-05."""
import re
from decimal import Decimal

import pytest

from rating_core.cli import main

from clock import clock_at
from test_billing import at, call, commit_calls, live_store
from test_statement_rounding import SIX_SECONDS


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    from rating_core.accounts import Accounts

    d = tmp_path_factory.mktemp("footer")
    store = live_store(d, SIX_SECONDS)
    rows = [call("f9", "4001000005", at(9, 10), 1), call("f10", "4001000005", at(10, 10), 1),
            call("f11", "4001000005", at(11, 10), 1)]
    for r in rows[:2]:
        r["end"] += 6_000  # 66 s: 0.1320
    rows[2]["end"] -= 6_000  # 54 s: 0.1080
    commit_calls(store, rows)
    ops = Accounts.open(d / "store")
    with clock_at(at(12, 3)):
        ops.top_up("pay-1", "shop", 2_000, at_ms=at(11, 5))
    ops.ledger.close()
    return d


def footer(d, capsys, *months) -> str:
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(d / "store"), "--out", str(d / "b.json"), "--account", "shop",
              *[a for m in months for a in ("--month", m)]])
    printed = capsys.readouterr().out
    assert e.value.code == 0, printed
    return " ".join(printed.split())


def adds_up(line: str) -> None:
    """total due + each term (less: minus) = outstanding, in the printed figures."""
    owed = Decimal(re.search(r"outstanding (\S+) yuan", line).group(1))
    total = Decimal(re.search(r"total due (\S+) yuan", line).group(1))
    terms = re.findall(r"(less )?(\d+\.\d+) (?:left unpaid|of earlier bills|by which|later payments)", line)
    assert terms, line
    assert total + sum(-Decimal(v) if less else Decimal(v) for less, v in terms) == owed, line


def test_the_footer_terms_are_exact_and_add_up(shop, capsys):
    """October and November: total due 0.13 + 0.11 = 0.24; September left
    0.1320 unpaid (not 0.13); 0.20 paid towards it; outstanding
    0.1320 + 0.1320 - 0.20 + 0.1080 = 0.1720 (not 0.17); the amounts
    payable 0.24 are the exact amounts due 0.1320 + 0.1080 = 0.24."""
    line = footer(shop, capsys, "2026-10", "2026-11")
    assert "total due 0.24 yuan over 2 statement(s)" in line
    assert ("outstanding 0.1720 yuan after the last month shown, every package kind: the total due, 0.1320 left "
            "unpaid by months before those shown, less 0.20 later payments or credits paid towards earlier "
            "statements") in line, line
    adds_up(line)


def test_the_footer_names_the_rounding_of_the_amounts_payable(shop, capsys):
    """October alone: total due 0.13 (the amount payable), but the account
    owes 0.1320 + 0.1320 = 0.2640 after it: 0.1320 left by September, and
    0.0020 the amount payable falls short of the exact amount due
    (0.13 + 0.1320 + 0.0020 = 0.2640). Before, the footer printed 0.13 and
    0.26 and no rounding: 0.0040 owed nowhere in the sum."""
    line = footer(shop, capsys, "2026-10")
    assert "total due 0.13 yuan over 1 statement(s)" in line
    assert ("outstanding 0.2640 yuan after the last month shown, every package kind: the total due, 0.1320 left "
            "unpaid by months before those shown, 0.0020 by which the amounts payable, rounded to the fen, fall "
            "short of the exact amounts due") in line, line
    adds_up(line)


def test_the_table_amount_due_is_the_amount_payable_the_total_adds(shop, capsys):
    """The table's "amount due (yuan)" is the figure the CSV and the
    printable statement name so, the amount payable (newcomer5 F1: the
    table showed 1130.2920 where the CSV said 1130.29, and its rows did not
    add up to "total due"): October 0.13 and November 0.11 (exact 0.1320,
    0.1080), 0.24 in all = the total due; outstanding stays exact."""
    line = footer(shop, capsys, "2026-10", "2026-11")
    rows = re.findall(r"│ shop │ (2026-1[01]) │[^\n]*?│ (\S+) │ (\S+) │ (?=│ shop|└)", line)
    assert [(m, due) for m, due, _ in rows] == [("2026-10", "0.13"), ("2026-11", "0.11")], line
    assert sum(Decimal(due) for _, due, _ in rows) == Decimal("0.24") and "total due 0.24 yuan" in line


def test_a_repeated_account_is_billed_once(shop, capsys):
    """Breaker8 F3: `--account shop --account shop` printed and wrote each
    statement twice and summed the total due twice. Counted once: October
    0.1320 + November 0.1080 -> total due 0.24 over 2 statement(s), as with
    one --account; b.json holds 2 statements, not 4."""
    import json

    line = footer(shop, capsys, "2026-10", "2026-11")  # once, for the figures to compare
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(shop / "store"), "--out", str(shop / "b.json"),
              "--account", "shop", "--account", "shop", "--month", "2026-10", "--month", "2026-11"])
    twice = " ".join(capsys.readouterr().out.split())
    assert e.value.code == 0, twice
    assert "total due 0.24 yuan over 2 statement(s)" in twice and "total due 0.24" in line
    got = json.loads((shop / "b.json").read_text("utf-8"))["statements"]
    assert [(s["account"], s["month"]) for s in got] == [("shop", "2026-10"), ("shop", "2026-11")]


@pytest.mark.parametrize(("account", "words"), [("", "--account: required"),
                                                ("\x00", "--account: contains a control character: '\\x00'"),
                                                ("shop\u202e", "--account: contains a control character")])
def test_an_empty_or_control_character_account_is_named_as_such(shop, capsys, account, words):
    """Breaker8 F4: `bill --account ''` and `--account $'\\x00'` said
    "unknown account"; an empty id is required, a control character
    refused as one (shown escaped, never raw). Exit 2, one line."""
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(shop / "store"), "--out", str(shop / "e.json"),
              "--account", "shop", "--account", account, "--month", "2026-11"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and words in err and "unknown account" not in err, err
    assert len(err.strip().splitlines()) == 1 and "\u202e" not in err and "\x00" not in err, err


def test_the_table_shows_every_yuan_figure_with_2_decimals(shop, capsys):
    """The table is read by people, in yuan (newcomer8 F1: "amount due
    1130.29" beside "outstanding 1130.2920"): October alone, usage 0.1320
    reads 0.13, the outstanding 0.2640 (0.1320 left by September + 0.1320)
    reads 0.26 (half up); the footer keeps the exact 0.2640, whose terms add up."""
    line = footer(shop, capsys, "2026-10")
    row = re.search(r"│ shop │ 2026-10 │[^\n]*?(?=└)", line).group(0)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    money = cells[4:]  # usage, shortfall, monthly fee, features, closing credit, amount due, outstanding
    assert money[0] == "0.13" and money[-2:] == ["0.13", "0.26"], cells
    assert all(re.fullmatch(r"-|as credit|-?\d+\.\d\d", c) for c in money), cells
    assert "0.1320" not in row and "0.2640" not in row
    assert "outstanding 0.2640 yuan after the last month shown" in line
