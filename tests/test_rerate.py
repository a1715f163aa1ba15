"""Rerating against the real LMDB ledger: committed calls re-rated under a
second catalog version; idempotent; prepaid credit replayed as a sequence;
adjustments sum to the ledger change; CLI and README."""
from __future__ import annotations

import gc

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from rating_core.cli import main
from rating_core.demo import write_demo_catalog
from rating_core.engine import Engine
from rating_core.ledger import Ledger
from rating_core.ledger import adjustments as adj
from rating_core.rerate import rerate
from rating_core.store import Store

PREPAID = "4008593431"  # jinghua_appliances: prepaid 3000 yuan at 0.12/min (std_012), IVR answer
PAYG = "4000589196"  # yuehai_logistics: payg at 0.15/min (std_015), agent answer
DAY = 86_400_000
BASE = 1_791_590_400_000  # 2026-10-10 00:00 +08:00


def cdr(call_id, day, talk_s, number):
    start = BASE + day * DAY + 9 * 3_600_000
    return {"call_id": call_id, "caller": "13812345678", "number": number, "forwarded_to": "02088886666",
            "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 2_000,
            "end": start + 2_000 + talk_s * 1000, "hangup_cause": "normal_clearing"}


@pytest.fixture
def root(tmp_path):
    """Version 1 (demo) active with calls committed; version 2 prices std_012
    at 3.00/min and std_015 at 0.20/min."""
    store = Store(tmp_path / "store")
    store.activate(store.compile(write_demo_catalog(tmp_path / "v1")))
    v2 = write_demo_catalog(tmp_path / "v2")
    text = v2.read_text("utf-8")
    text = text.replace("std_012: {tiers: [{price: 0.12}]}", "std_012: {tiers: [{price: 3.00}]}")
    text = text.replace("std_015: {tiers: [{price: 0.15}]}", "std_015: {tiers: [{price: 0.20}]}")
    v2.write_text(text, "utf-8")
    assert store.compile(v2) == 2
    del store
    gc.collect()
    engine = Engine.open(tmp_path / "store")
    # Three 10-hour prepaid calls (600 min: 72 yuan each at 0.12), two payg calls.
    calls = [cdr("p1", 0, 36_000, PREPAID), cdr("p2", 1, 36_000, PREPAID), cdr("p3", 2, 36_000, PREPAID),
             cdr("g1", 0, 125, PAYG), cdr("g2", 3, 60, PAYG)]
    result = engine.rate_and_commit(pa.Table.from_pylist(calls))
    assert result.rated.column("charge_minor").to_pylist() == [720_000] * 3 + [4500, 1500]
    engine.close()
    return tmp_path / "store"


def credit(root, account):
    ledger = Ledger(root)
    try:
        return ledger.stored(account).credit_minor
    finally:
        ledger.close()


def stored_adjustments(root):
    ledger = Ledger(root)
    try:
        with ledger.env.begin() as txn:
            return adj.all_rows(ledger, txn)
    finally:
        ledger.close()


def test_prepaid_sequence_is_replayed_and_sums_to_the_ledger_change(root):
    before = credit(root, "jinghua_appliances")
    assert before == 30_000_000 - 3 * 720_000
    r = rerate(root, 2, "2026-10-01", "2026-10-31", account="jinghua_appliances", now_ms=1)
    by_call = {a.call_id: a for a in r.adjustments}
    # At 3.00/min a 600-min call is 1800 yuan; the 3000 yuan credit covers the
    # first call and 1200 of the second; the third consumes no credit at all
    # (rated alone it would consume 1800): the sequence was replayed in order.
    assert {c: (a.old_charge_minor, a.new_charge_minor, a.ledger_delta_minor) for c, a in by_call.items()} == {
        "p1": (720_000, 18_000_000, 18_000_000 - 720_000),
        "p2": (720_000, 18_000_000, 12_000_000 - 720_000),
        "p3": (720_000, 18_000_000, 0 - 720_000),
    }
    assert all(a.delta_minor == a.new_charge_minor - a.old_charge_minor for a in r.adjustments)
    after = credit(root, "jinghua_appliances")
    assert after == 0  # all credit consumed, never below zero
    assert after - before == -sum(a.ledger_delta_minor for a in r.adjustments) == r.ledger_change_minor[
        "jinghua_appliances"]
    assert [a.call_id for a in stored_adjustments(root)] == ["p1", "p2", "p3"]


def test_rerating_twice_changes_nothing_the_second_time(root):
    first = rerate(root, 2, "2026-10-01", "2026-10-31", now_ms=1)
    assert sorted(a.call_id for a in first.adjustments) == ["g1", "g2", "p1", "p2", "p3"]
    # Pay-as-you-go: 0.15 -> 0.20 per started minute; the credit (postpaid
    # usage owed) moves by exactly the adjustments' sum.
    g = {a.call_id: a.delta_minor for a in first.adjustments if a.account == "yuehai_logistics"}
    assert g == {"g1": 3 * 500, "g2": 500}
    balances = {a: credit(root, a) for a in ("jinghua_appliances", "yuehai_logistics")}
    rows = stored_adjustments(root)
    second = rerate(root, 2, "2026-10-01", "2026-10-31", now_ms=2)
    assert second.adjustments == [] and second.skipped == 5 and second.ledger_change_minor == {}
    assert {a: credit(root, a) for a in balances} == balances
    assert stored_adjustments(root) == rows
    # Back under version 1: the old charges come back, the ledger with them.
    back = rerate(root, 1, "2026-10-01", "2026-10-31", account="yuehai_logistics", now_ms=3)
    assert {a.call_id: (a.old_charge_minor, a.new_charge_minor) for a in back.adjustments} == {
        "g1": (6000, 4500), "g2": (2000, 1500)}
    assert credit(root, "yuehai_logistics") == balances["yuehai_logistics"] + 2000


def test_dry_run_and_number_selection_write_nothing(root):
    before = credit(root, "yuehai_logistics")
    r = rerate(root, 2, "2026-10-13", "2026-10-13", number="400 058 9196", dry_run=True)
    assert [a.call_id for a in r.adjustments] == ["g2"] and r.seen == 1
    assert credit(root, "yuehai_logistics") == before and stored_adjustments(root) == []


def test_cli_writes_the_adjustments_csv_and_refuses_bad_input(root, tmp_path, capsys):
    out = tmp_path / "adj.csv"
    with pytest.raises(SystemExit) as e:
        main(["rerate", "--store", str(root), "--version", "2", "--from", "2026-10-01", "--to", "2026-10-31",
              "--number", PAYG, "--out", str(out)])
    assert e.value.code == 0
    table = pacsv.read_csv(out)
    assert table.column("call_id").to_pylist() == ["g1", "g2"]
    assert table.column("delta_minor").to_pylist() == [1500, 500]
    assert "adjusted 2 (+0.20 yuan)" in capsys.readouterr().out
    for args, word in ((["--from", "2026-13-01", "--to", "2026-10-31"], "from"),
                       (["--from", "2026-10-01", "--to", "2026-10-31", "--number", "12"], "number")):
        with pytest.raises(SystemExit) as e:
            main(["rerate", "--store", str(root), "--version", "2", *args])
        assert e.value.code == 2
        assert word in capsys.readouterr().err


@pytest.mark.parametrize("version", [2**40, 2**31, 0, -1])
def test_cli_refuses_a_version_beyond_int32_naming_the_bound(root, capsys, version):
    """Breaker 12-02: ``--version 1099511627776`` (2**40, positive) was
    refused "a catalog version is a positive integer"; versions are int32,
    1 .. 2147483647: the refusal says so, before the store is read."""
    with pytest.raises(SystemExit) as e:
        main(["rerate", "--store", str(root), "--version", str(version), "--from", "2026-10-01",
              "--to", "2026-10-31"])
    assert e.value.code == 2
    assert (f"--version: {version}: a catalog version is a positive integer, at most 2147483647 (2**31 - 1)"
            in capsys.readouterr().err)
    assert stored_adjustments(root) == []
    # The Python API says the same (it said "a positive integer" of 2**40).
    from rating_core.errors import InvalidInput
    with pytest.raises(InvalidInput, match=r"at most 2147483647 \(2\*\*31 - 1\)") as e:
        rerate(root, version, "2026-10-01", "2026-10-31")
    assert e.value.field == "version"


def test_readme_rerating_commands_run(tmp_path):
    """README "Rerating": every line of its sh block, in a demo directory."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    body = text.split("## Rerating", 1)[1].split("\n## ", 1)[0]
    lines = [ln for b in re.findall(r"```sh\n(.*?)```", body, re.S) for ln in b.splitlines() if ln.strip()]
    assert len(lines) == 7
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["rating400", "demo", "--cdrs", "300", "--dir", "demo-out"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    outs = [subprocess.run(["bash", "-c", ln], cwd=tmp_path, env=env, check=True, capture_output=True,
                           text=True).stdout for ln in lines]
    assert "would adjust" in outs[4]
    # The new price everywhere the catalog quotes it: the rate, package names, Chinese labels.
    v2 = (tmp_path / "catalog-v2" / "catalog.yaml").read_text("utf-8")
    assert "0.12" not in v2 and "0.11元/分钟" in v2 and "price: 0.11" in v2
    table = pacsv.read_csv(tmp_path / "adjustments.csv")
    assert table.num_rows > 0 and set(table.column("version").to_pylist()) == {2}
    assert "adjusted 0 " in outs[6] and f"{table.num_rows} already rerated" in outs[6]

    # The gRPC example, against a server on that store (a dry run back to version 1).
    from test_readme import serve, stop

    code = re.findall(r"```python\n(.*?)```", body, re.S)[0]
    proc, info = serve(re.search(r"`(rating400 serve [^`]*)`", body).group(1), tmp_path, [])
    try:
        scope: dict = {}
        exec(compile(code.replace("localhost:50051", f"127.0.0.1:{info['port']}"), "README.md", "exec"),
             scope)  # noqa: S102 - the README's own example
    finally:
        stop(proc)
    resp = scope["resp"]
    mine = [r for r in table.to_pylist() if r["account"] == "jinghua_appliances"]
    assert resp.dry_run and len(resp.adjustments) == len(mine) > 0
    # Back to version 1: every delta undoes the one rerating under version 2 made.
    undo = {r["call_id"]: -r["delta_minor"] for r in mine}
    assert {a.call_id: a.delta_minor for a in resp.adjustments} == undo
    assert len(stored_adjustments(tmp_path / "demo-out" / "store")) == table.num_rows  # nothing written
