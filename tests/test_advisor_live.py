"""Package advisor over the live customer layer (a demo store after
``rating400 accounts import``): the gRPC path (``Advisor`` of the engine's
live view, the ledger's committed calls) gives the CLI's figures, and both
price only the calls the rater bills (newcomer N9, A1 and A2)."""
from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rating_core.billing.advisor import Advice, Advisor, PackageCost
from rating_core.billing.sources import committed_records
from rating_core.cli import main
from rating_core.cli_billing import advise_conclusion
from rating_core.engine import Engine
from rating_core.store import Store

ACCOUNTS = ("hangzhou_tea", "jiangnan_textiles", "pearl_river_travel")


def run(capsys, *args) -> str:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    assert e.value.code == 0, (args, captured.err)
    return captured.out


def prices(advice: dict) -> list[tuple[str, int, int | None]]:
    return [(p["package"], p["total_minor"], p["rank"]) for p in advice["packages"]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(directory, catalog-path advice before the import, CLI advice and
    library advice of the live view after it, per account)."""
    d = tmp_path_factory.mktemp("advise-live")
    def cli(*args):
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in args])
        assert e.value.code == 0, args

    cli("demo", "--cdrs", "3000", "--dir", d)
    store = d / "store"
    cli("rate", d / "cdrs.parquet", "--store", store, "--commit", "--out", d / "billed.parquet")
    catalog = Store(store, create=False).open()
    before = {a: Advisor(catalog).advise(a, pq.read_table(d / "cdrs.parquet")).as_dict() for a in ACCOUNTS}
    cli("accounts", "import", d / "catalog" / "catalog.yaml", "--store", store)
    engine = Engine.open(store, threads=1)
    try:
        live = {a: Advisor(engine.rater.snapshot).advise(a, committed_records(engine.ledger, None, None, a)).as_dict()
                for a in ACCOUNTS}
    finally:
        engine.close()
    return d, before, live


def test_the_live_view_prices_each_package_as_the_catalog_and_the_cli(demo, capsys):
    d, before, live = demo
    for account in ACCOUNTS:
        got = json.loads(run(capsys, "advise", d / "cdrs.parquet", "--store", d / "store", "--account", account,
                             "--json"))
        assert prices(live[account]) == prices(before[account]) == prices(got), account
        assert live[account]["calls"] == got["calls"] == before[account]["calls"]
    # Before the fix every package was priced under the current one: all alike.
    usage = {p["package"]: p["usage_minor"] for p in live["hangzhou_tea"]["packages"]}
    assert len(set(usage.values())) > 1


def rejected(d, account: str) -> dict[str, int]:
    """The rater's rejects of ``account``'s calls, by reason (``rate``'s rejects file)."""
    with open(d / "catalog" / "numbers.csv", encoding="utf-8") as f:
        numbers = {r["number"] for r in csv.DictReader(f) if r["account"] == account}
    cdrs = pq.read_table(d / "cdrs.parquet", columns=["call_id", "number"])
    mine = set(cdrs.filter(pc.is_in(cdrs["number"], pa.array(sorted(numbers))))["call_id"].to_pylist())
    out: dict[str, int] = {}
    with open(d / "billed.rejects.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["call_id"] in mine:
                out[r["reason"]] = out.get(r["reason"], 0) + 1
    return out


@pytest.mark.parametrize("account, reason", [("jiangnan_textiles", "package_not_started"),
                                             ("pearl_river_travel", "number_not_active")])
def test_advise_prices_the_billed_calls_and_says_what_it_left_out(demo, capsys, account, reason):
    """jiangnan_textiles' package starts 2026-10-15: its calls before are
    rejected ``package_not_started``; pearl_river_travel's number 4001997558
    is suspended (``number_not_active``). Neither is priced under any
    package: advise counts the calls the ledger committed (the bill's)."""
    d, _, live = demo
    left = rejected(d, account)
    assert left.get(reason, 0) > 0, left
    billed = pq.read_table(d / "billed.parquet", columns=["account"])
    calls = int(pc.sum(pc.equal(billed["account"], account)).as_py())
    got = json.loads(run(capsys, "advise", d / "cdrs.parquet", "--store", d / "store", "--account", account, "--json"))
    assert got["left_out"] == left and got["calls"] == calls == live[account]["calls"]
    assert all(p["applicable"] and p["unpriced_calls"] == 0 for p in got["packages"])
    text = run(capsys, "advise", d / "cdrs.parquet", "--store", d / "store", "--account", account)
    assert f"{calls:,} billed calls" in text
    n = sum(left.values())
    assert f"left out {n:,} calls the rater rejects, never billed: {left[reason]:,} {reason}" in text


def cost(package, applicable, total, current=False, rank=None):
    return PackageCost(package=package, name=package, kind="payg", applicable=applicable,
                       unpriced_calls=0 if applicable else 3, usage=total, fixed=0, total=total, monthly=total,
                       saving_monthly=0, break_even_calls_per_month=None, rank=rank, current=current)


def test_the_conclusion_never_claims_a_ranking_it_did_not_make():
    def advice(*packages):
        return Advice("a", "cur", ["2026-10"], 10, 10.0, list(packages), {})

    nothing = advice(cost("cur", False, 100, current=True), cost("b", False, 50))
    assert advise_conclusion(nothing) == "no package prices all these calls: nothing is ranked"
    unranked_current = advise_conclusion(advice(cost("b", True, 50_000, rank=1), cost("cur", False, 100, current=True)))
    assert "cannot price 3 of these calls, so no saving is given" in unranked_current
    assert "b, 5.00 yuan a month" in unranked_current and "cheapest" in unranked_current
    assert advise_conclusion(advice(cost("cur", True, 100, current=True, rank=1))) == \
        "the current package is the cheapest for these calls"
