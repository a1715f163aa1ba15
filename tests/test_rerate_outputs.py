"""Rerating's outputs and its place in statements and explanations (breaker
findings 01, 02, 04, 10, 50): --out checked before the ledger is written and
never an input; a month holding only a rerating gets its statement;
explain tells the adjustment; GetStatement shows what `bill --ledger` shows;
days only as YYYY-MM-DD; reasons bounded, without control characters."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import pyarrow.csv as pacsv
import pytest

from rating_core.cli import main
from rating_core.errors import InvalidInput
from rating_core.rerate import day_bounds, rerate
import test_rerate
import test_rerate_ledger
from test_rerate import PAYG, credit, stored_adjustments

root = test_rerate.root  # the fixture: versions 1 and 2, five calls committed
store_dir = test_rerate_ledger.store_dir  # the fixture: prepaid 'legacy', a 600 yuan top-up on 2026-11-04

NOV_15 = 1_794_672_000_000  # 2026-11-15 00:00 +08:00: a month without calls


def run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def rerate_args(root, *more):
    return ["rerate", "--store", str(root), "--version", "2", "--from", "2026-10-01", "--to", "2026-10-31",
            "--number", PAYG, *more]


def test_a_bad_out_is_refused_before_anything_is_written(root, tmp_path, capsys):
    before = credit(root, "yuehai_logistics")
    for out in (tmp_path / "nonexistent" / "x.csv", tmp_path, root / "adj.csv"):
        code, _, err = run(rerate_args(root, "--out", str(out)), capsys)
        assert code == 2 and "--out" in err, err
        assert stored_adjustments(root) == [] and credit(root, "yuehai_logistics") == before
    # The retry with a good --out still has every row.
    good = tmp_path / "adj.csv"
    code, out, _ = run(rerate_args(root, "--out", str(good)), capsys)
    assert code == 0 and pacsv.read_csv(good).column("call_id").to_pylist() == ["g1", "g2"]
    # Writing the same list again (a rerun) overwrites it: 0 rows adjusted now.
    code, _, _ = run(rerate_args(root, "--out", str(good)), capsys)
    assert code == 0 and pacsv.read_csv(good).num_rows == 0


def test_out_never_overwrites_another_file(root, tmp_path, capsys):
    cdrs = tmp_path / "cdrs.parquet"
    cdrs.write_bytes(b"PAR1 not an adjustments list")
    for dry in ([], ["--dry-run"]):
        code, _, err = run(rerate_args(root, "--out", str(cdrs), *dry), capsys)
        assert code == 2 and "not an adjustments list" in err
    assert cdrs.read_bytes() == b"PAR1 not an adjustments list" and stored_adjustments(root) == []
    # bill: --out naming its events input is refused, the events kept.
    events = tmp_path / "events.csv"
    events.write_text("account,at,kind,amount,feature,note\n", "utf-8")
    code, _, err = run(["bill", "--store", str(root), "--ledger", "--events", str(events), "--out", str(events)],
                       capsys)
    assert code == 2 and "--out" in err and events.read_text("utf-8").startswith("account,at")
    code, _, err = run(["bill", "--store", str(root), "--ledger", "--out", str(tmp_path / "no" / "s.json")], capsys)
    assert code == 2 and "--out" in err


def _bill(root, tmp_path, capsys, *more):
    out = tmp_path / "bill.json"
    code, text, err = run(["bill", "--store", str(root), "--ledger", "--account", "yuehai_logistics",
                           "--out", str(out), *more], capsys)
    assert code == 0, err
    return {s["month"]: s for s in json.loads(out.read_text("utf-8"))["statements"]}, text


def test_a_month_with_only_a_rerating_gets_its_statement(root, tmp_path, capsys):
    # Pay as you go 0.15 -> 0.20 per started minute: g1 (125 s, 3 min) 4500 -> 6000,
    # g2 (60 s) 1500 -> 2000: +2000 minor units (0.20 yuan), made on 2026-11-15.
    r = rerate(root, 2, "2026-10-01", "2026-10-31", account="yuehai_logistics", now_ms=NOV_15)
    assert sum(a.delta_minor for a in r.adjustments) == 2000
    months, text = _bill(root, tmp_path, capsys)
    # The default --ledger run goes on to the current month (newcomer N11 F5: a
    # month's minimum and rental accrue without calls); October and November first.
    current = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m")
    assert sorted(months)[:2] == ["2026-10", "2026-11"] and max(months) == max(current, "2026-11")
    nov, oct_ = months["2026-11"], months["2026-10"]
    assert oct_["calls"] == 2 and oct_["usage_minor"] == 6000 and oct_["rerating_total_minor"] == 0
    assert nov["calls"] == 0 and nov["usage_minor"] == 0
    assert nov["rerating_total_minor"] == 2000 and nov["rerating_calls"] == 2
    assert nov["amount_due_minor"] == nov["minimum_topup_minor"] + nov["rental_minor"] + nov[
        "features_total_minor"] + 2000
    assert "rerating: 2 call(s) adjusted on 1 statement(s), 0.20 yuan" in text


def test_explain_tells_the_rerating(root, capsys):
    rerate(root, 2, "2026-10-01", "2026-10-31", account="yuehai_logistics", now_ms=NOV_15,
           reason="tariff fix")
    code, text, _ = run(["explain", "g1", "--store", str(root), "--version", "1", "--lang", "en"], capsys)
    assert code == 0
    assert ("Rerated under catalog version 2 at 2026-11-15T00:00:00.000+08:00: charge 0.45 -> 0.60 yuan "
            "(adjustment +0.15 yuan") in text and "tariff fix" in text
    code, text, _ = run(["explain", "g1", "--store", str(root), "--version", "1", "--json"], capsys)
    assert json.loads(text)["reratings"] == [{"version": 2, "old_charge_minor": 4500, "new_charge_minor": 6000,
                                              "delta_minor": 1500, "rerated_at_ms": NOV_15,
                                              "reason": "tariff fix"}]
    code, text, _ = run(["explain", "g1", "--store", str(root), "--version", "1", "--lang", "en"], capsys)
    flat = " ".join(text.split())
    assert "Charged when committed: 0.45 yuan; 0.60 yuan since its rerating under catalog version 2" in flat
    # Under the version it was rerated to, the call's charge is the
    # rerating's: no "rated under another catalog version" note (newcomer).
    code, text, _ = run(["explain", "g1", "--store", str(root), "--version", "2", "--lang", "en"], capsys)
    flat = " ".join(text.split())
    assert code == 0 and "0.60 yuan since its rerating" in flat and "another catalog version" not in flat, flat
    # The credit/bill line is the committed record's, and says so (newcomer N10: "call charge" of the
    # version beside the committed "Prepaid credit paid", no word of which record each came from).
    assert "As committed, before its rerating: Pay as you go: 0.45 yuan on the month's bill." in flat, flat
    code, text, _ = run(["explain", "g1", "--store", str(root), "--version", "2", "--json"], capsys)
    assert json.loads(text)["consistent"] and json.loads(text)["note"] == "as_rerated"
    code, _, err = run(["explain", "x" * 129, "--store", str(root)], capsys)
    assert code == 2 and "call_id" in err and "129 characters" in err and "x" * 41 not in err


def test_get_statement_shows_what_bill_ledger_shows(root, tmp_path, capsys):
    import grpc

    from rating400.v1 import billing_pb2, billing_pb2_grpc
    from test_readme import serve, stop

    rerate(root, 2, "2026-10-01", "2026-10-31", account="yuehai_logistics", now_ms=NOV_15)
    months, _ = _bill(root, tmp_path, capsys)
    demo = tmp_path / "srv"
    demo.mkdir()
    shutil.copytree(root, demo / "store", ignore=shutil.ignore_patterns("live.*"))  # calls in progress stay
    proc, info = serve("rating400 serve --store store --workers 1", demo, [])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{info['port']}") as ch:
            stub = billing_pb2_grpc.BillingServiceStub(ch)
            for month, want in months.items():
                s = stub.GetStatement(billing_pb2.StatementRequest(account="yuehai_logistics", month=month),
                                      timeout=60)
                got = json.loads(s.json)
                assert got["rerating_total_minor"] == want["rerating_total_minor"]
                assert s.amount_due_minor == want["amount_due_minor"]
                assert s.closing_credit_minor == want["closing_credit_minor"]
            with pytest.raises(grpc.RpcError) as e:
                stub.ListCallers(billing_pb2.ListCallersRequest(account="a" * 100_000), timeout=30)
            # No such account (NOT_FOUND, as AccountService's reads answer), the value cut short.
            assert e.value.code() == grpc.StatusCode.NOT_FOUND and len(e.value.details()) < 200
    finally:
        stop(proc)
    assert months["2026-11"]["rerating_total_minor"] == 2000


@pytest.mark.parametrize("day", ["20261001", "2026-W40-1", "２０２６-10-01", " 2026-10-01", "2026-10-01\x00"])
def test_days_only_as_yyyy_mm_dd(day):
    with pytest.raises(InvalidInput) as e:
        day_bounds(day, "2026-10-31")
    assert e.value.field == "from"


def test_reason_bounded_and_without_control_characters(root, capsys):
    for reason, word in (("r" * 1001, "at most 1000"), ("fix\x1b[31m", "control character"),
                         ("a\nb", "control character"), ("del\x7f", "'\\x7f'"), ("c1\x85", "'\\x85'"),
                         ("\u202eesrever", "'\\u202e'"), ("zero\u200bwidth", "'\\u200b'")):
        code, _, err = run(rerate_args(root, "--reason", reason), capsys)
        assert code == 2 and "reason" in err and word in err, err
    assert stored_adjustments(root) == []
    code, _, _ = run(rerate_args(root, "--reason", "价格调整 " * 100, "--dry-run"), capsys)
    assert code == 0


def test_long_values_are_echoed_as_a_short_excerpt(root):
    for kw in ({"account": "a" * 100_000}, {"number": "4" * 100_000}):
        with pytest.raises(InvalidInput) as e:
            rerate(root, 2, "2026-10-01", "2026-10-31", dry_run=True, **kw)
        assert len(str(e.value)) < 200 and "100000 characters" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        day_bounds("2" * 100_000, "2026-10-31")
    assert len(str(e.value)) < 200


def test_get_statement_shows_the_top_ups_as_bill_ledger_does(store_dir, tmp_path, capsys):
    """The accounts layer's top-up (600 yuan on 2026-11-04) is on GetStatement as on `bill --ledger`:
    100 yuan opening + 600 top-up - 3 calls of 60 min at 0.12 yuan/min (7.20 each) = 678.40 yuan."""
    import grpc

    from rating400.v1 import billing_pb2, billing_pb2_grpc
    from test_readme import serve, stop

    store = store_dir
    out = tmp_path / "bill.json"
    code, _, err = run(["bill", "--store", str(store), "--ledger", "--account", "legacy", "--month", "2026-11",
                        "--out", str(out)], capsys)
    assert code == 0, err
    want = json.loads(out.read_text("utf-8"))["statements"][0]
    assert want["top_ups_total_minor"] == 600 * 10_000 and want["closing_credit_minor"] == 6_784_000
    proc, info = serve(f"rating400 serve --store {store}", tmp_path, [])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{info['port']}") as ch:
            s = billing_pb2_grpc.BillingServiceStub(ch).GetStatement(
                billing_pb2.StatementRequest(account="legacy", month="2026-11"), timeout=60)
    finally:
        stop(proc)
    got = json.loads(s.json)
    assert got["top_ups_total_minor"] == 600 * 10_000
    assert (s.opening_credit_minor, s.closing_credit_minor, s.amount_due_minor) == (
        want["opening_credit_minor"], 6_784_000, want["amount_due_minor"])
