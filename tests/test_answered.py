""""Answered" is one rule (``rating_core.answered``: an agent answered),
and every reader counts it the same on the demo: `rating400 report` on the
lean rated file, `bill --ledger` statements, the caller CRM (`crm show`),
and over gRPC GetStatement, GetReport and ListCallers. The demo has numbers
billed from ring and from the IVR answer, so calls charged but not answered
exist, and "billable seconds > 0" would count them: the test checks that
it differs from the rule."""
from __future__ import annotations

import collections
import datetime as dt
import json

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating_core.answered import answered
from rating_core.cli import main
from rating_core.errors import InvalidInput


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("answered")
    with pytest.raises(SystemExit):
        main(["demo", "--cdrs", "3000", "--dir", str(d / "demo")])
    with pytest.raises(SystemExit) as e:
        main(["rate", str(d / "demo" / "cdrs.parquet"), "--store", str(d / "demo" / "store"), "--commit",
              "--out", str(d / "committed.parquet")])
    assert e.value.code == 0
    return d


def truth(demo):
    """Per account: (calls, agent-answered calls, calls with billable seconds), from the CDRs themselves."""
    committed = pq.read_table(demo / "committed.parquet").to_pylist()
    cdrs = {r["call_id"]: r for r in pq.read_table(demo / "demo" / "cdrs.parquet").to_pylist()}
    out = collections.defaultdict(lambda: [0, 0, 0])
    for r in committed:
        c = out[r["account"]]
        c[0] += 1
        c[1] += cdrs[r["call_id"]]["agent_answer"] is not None
        c[2] += r["billable_seconds"] > 0
    return {a: tuple(v) for a, v in out.items()}, committed


def test_reports_statements_and_the_crm_agree_on_answered(demo, tmp_path, capsys):
    want, committed = truth(demo)
    assert any(v[1] != v[2] for v in want.values()), "the demo should have calls charged but not answered"
    # The lean rated file carries the rule's result.
    assert pq.read_table(demo / "committed.parquet").column("answered").to_pylist() == [
        r["answered"] for r in committed]
    account_of = {r["number"]: r["account"] for r in committed}

    _cli(capsys, "report", demo / "committed.parquet", "--by", "number", "--out", tmp_path / "r.json")
    by_account = collections.Counter()
    for row in json.loads((tmp_path / "r.json").read_text("utf-8"))["rows"]:
        by_account[account_of[row["number"]]] += row["answered"]
    assert dict(by_account) == {a: v[1] for a, v in want.items()}

    store = demo / "demo" / "store"
    _cli(capsys, "bill", "--ledger", "--store", store, "--out", tmp_path / "bills.parquet")
    statements = collections.Counter()
    for row in pq.read_table(tmp_path / "bills.parquet").to_pylist():
        statements[row["account"]] += row["answered"]
        assert row["missed"] == row["calls"] - row["answered"]
    assert dict(statements) == {a: v[1] for a, v in want.items()}

    # The CRM counts callers' calls (withheld callers have no record).
    acct = max(want, key=lambda a: want[a][2] - want[a][1])  # the account where the two readings differ most
    _cli(capsys, "crm", "show", "--store", store, "--account", acct, "--out", tmp_path / "crm.json")
    crm = sum(r["answered"] for r in json.loads((tmp_path / "crm.json").read_text("utf-8")))
    cdrs = {r["call_id"]: r for r in pq.read_table(demo / "demo" / "cdrs.parquet").to_pylist()}
    mine = [cdrs[r["call_id"]] for r in committed if r["account"] == acct and cdrs[r["call_id"]]["caller"]]
    assert crm == sum(c["agent_answer"] is not None for c in mine)


def test_grpc_statement_report_and_callers_count_the_same(demo, tmp_path):
    from rating400.v1 import billing_pb2, billing_pb2_grpc
    from demo_server import Server

    want, committed = truth(demo)
    acct = max(want, key=lambda a: want[a][2] - want[a][1])
    sh = dt.timezone(dt.timedelta(hours=8))
    months = sorted({r["start"].astimezone(sh).strftime("%Y-%m") for r in committed if r["account"] == acct})
    server = Server(demo / "demo" / "store", tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = billing_pb2_grpc.BillingServiceStub(channel)
            stated = sum(stub.GetStatement(billing_pb2.StatementRequest(account=acct, month=m),
                                           timeout=60).answered for m in months)
            report = stub.GetReport(billing_pb2.ReportRequest(by="number", account=acct), timeout=60)
            callers = stub.ListCallers(billing_pb2.ListCallersRequest(account=acct), timeout=60)
    finally:
        server.stop()
    assert stated == want[acct][1] == sum(r.answered for r in report.rows)
    cdrs = {r["call_id"]: r for r in pq.read_table(demo / "demo" / "cdrs.parquet").to_pylist()}
    mine = [cdrs[r["call_id"]] for r in committed if r["account"] == acct and cdrs[r["call_id"]]["caller"]]
    assert sum(r.answered for r in callers.callers) == sum(c["agent_answer"] is not None for c in mine)


def test_the_rule_reads_every_form_and_names_a_missing_column():
    t = pa.table({"agent_answer": pa.array([None, 1_000], pa.int64())})
    assert answered(t).to_pylist() == [False, True]
    assert answered(pa.table({"agent_answer": ["", "2026-11-01T10:00:00+08:00"]})).to_pylist() == [False, True]
    assert answered(pa.table({"answered": [True, False]})).to_pylist() == [True, False]
    with pytest.raises(InvalidInput, match=r"y.parquet: answered: row 2: missing on a rated row$"):
        answered(pa.table({"answered": [True, None]}), "y.parquet")
    with pytest.raises(InvalidInput) as e:
        answered(pa.table({"billable_seconds": [5]}), "x.parquet")
    assert e.value.field == "agent_answer" and "x.parquet" in str(e.value)


@pytest.mark.parametrize("nulls", ["all", "one"])
@pytest.mark.parametrize("command", ["bill", "report"])
def test_a_missing_answered_on_a_rated_row_is_refused(demo, tmp_path, capsys, nulls, command):
    """A lean rated file whose ``answered`` is null (all, or one row) is
    refused naming file, field and row (README: a missing value on a rated
    row), not read as "missed" (which would charge a missed-call SMS)."""
    t = pq.read_table(demo / "committed.parquet")
    col = t.column("answered").to_pylist()
    col = [None] * len(col) if nulls == "all" else col[:2] + [None] + col[3:]
    t = t.set_column(t.column_names.index("answered"), "answered", pa.array(col, pa.bool_()))
    path = tmp_path / "nullans.parquet"
    pq.write_table(t, path)
    args = ["bill", path, "--store", demo / "demo" / "store", "--out", tmp_path / "b.json"] if command == "bill" \
        else ["report", path, "--by", "number"]
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert e.value.code == 2
    row = 1 if nulls == "all" else 3
    assert err.strip() == (f"error: {path}: answered: row {row}: missing on a rated row"
                           + (f" ({len(col)} such rows)" if nulls == "all" else ""))
    assert not (tmp_path / "b.json").exists()
