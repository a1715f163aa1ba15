"""Rerating back to an earlier catalog version (v1 -> v2 -> v3 -> v2): every
run applies once, a repeated run writes nothing. Real LMDB, through the CLI
(`rating400 rerate`, `bill --ledger`) and a real gRPC server (Rerate,
GetStatement).

Hand-computed (1 yuan = 10000 minor units): account ``legacy``, prepaid,
100 yuan opening credit; two 60-minute calls on 2026-11-02 and 11-03.
v1 0.12/min: 7.20 each from credit, credit 85.60.
v2 1.00/min (rerated 11-20): c1 60.00 from credit, c2 40.00 from credit +
20.00 arrears; credit 0.
v3 0.50/min (11-21): 30.00 each from credit; credit 40.00, no arrears.
v2 again (11-22): as the first v2 run: credit 0, 20.00 of arrears.
Reratings: +105.60 - 60.00 + 60.00 = +105.60 (charges 14.40 -> 120.00);
from credit: 85.60 - 40.00 + 40.00 = 85.60; due: the 20.00 of arrears.
"""
from __future__ import annotations

import json

import grpc
import pytest

from rating_core.accounts import Accounts
from rating_core.cli import main
from rating_core.ledger import Ledger
from rating_core.ledger import adjustments as adj
from rating_core.store import Store
from test_rerate_ledger import CATALOG, YUAN, at, cdr

NUMBER = "4001110001"


@pytest.fixture
def store_dir(tmp_path):
    import pyarrow as pa

    from rating_core.accounts.importer import import_catalog
    from rating_core.engine import Engine

    for v, price in ((1, "0.12"), (2, "1.00"), (3, "0.50")):
        (tmp_path / f"v{v}.yaml").write_text(CATALOG.replace("PRICE", price))
    store = Store(tmp_path / "store")
    store.compile(tmp_path / "v1.yaml", activate=True)
    assert store.compile(tmp_path / "v2.yaml") == 2 and store.compile(tmp_path / "v3.yaml") == 3
    ledger = Ledger(tmp_path / "store")
    assert import_catalog(Accounts(store, ledger), tmp_path / "v1.yaml")["imported"] == ["legacy"]
    ledger.close()
    engine = Engine.open(tmp_path / "store")
    engine.rate_and_commit(pa.Table.from_pylist([cdr("c1", 2), cdr("c2", 3)]))
    engine.close()
    return tmp_path / "store"


def state(store_dir):
    """(credit, number's November spend and calls, each call's adjustments as (version, delta, credit part))."""
    ledger = Ledger(store_dir)
    try:
        ops = Accounts(Store(store_dir, create=False), ledger)
        use = ops.number_month_use(NUMBER, at(25))
        with ledger.env.begin() as txn:
            rows = adj.all_rows(ledger, txn)
        calls = {c: [(a.version, a.delta_minor, a.ledger_delta_minor) for a in rows if a.call_id == c]
                 for c in ("c1", "c2")}
        return ledger.stored("legacy").credit_minor, (use["spend_minor"], use["calls"]), calls
    finally:
        ledger.close()


V2 = [(2, 52_8000, 52_8000)], [(2, 52_8000, 32_8000)]  # c1, c2 under the first v2 run
V3 = (3, -30 * YUAN, -30 * YUAN), (3, -30 * YUAN, -10 * YUAN)
V2_AGAIN = (2, 30 * YUAN, 30 * YUAN), (2, 30 * YUAN, 10 * YUAN)


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    return out


def _month(ms):
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m")


def test_back_to_v2_through_the_cli_applies_once_and_the_statement_shows_three_runs(store_dir, tmp_path, capsys):
    import pyarrow.parquet as pq

    assert state(store_dir) == (85_6000, (14_4000, 2), {"c1": [], "c2": []})
    run = ("rerate", "--store", str(store_dir), "--from", "2026-11-01", "--to", "2026-11-30", "--account", "legacy")
    out = _cli(capsys, *run, "--version", "2")
    assert "adjusted 2 (+105.60 yuan)" in out and "prepaid credit -85.60, arrears +20.00" in out
    assert state(store_dir) == (0, (120 * YUAN, 2), {"c1": V2[0], "c2": V2[1]})
    out = _cli(capsys, *run, "--version", "3")
    assert "adjusted 2 (-60.00 yuan)" in out and "prepaid credit +40.00, arrears -20.00" in out
    assert state(store_dir) == (40 * YUAN, (60 * YUAN, 2), {"c1": V2[0] + [V3[0]], "c2": V2[1] + [V3[1]]})
    # Back to v2: applied (it used to be skipped as "already rerated under version 2").
    out = _cli(capsys, *run, "--version", "2")
    assert "adjusted 2 (+60.00 yuan)" in out and "0 already rerated" in out
    assert "prepaid credit -40.00, arrears +20.00" in out
    final = (0, (120 * YUAN, 2), {"c1": V2[0] + [V3[0], V2_AGAIN[0]], "c2": V2[1] + [V3[1], V2_AGAIN[1]]})
    assert state(store_dir) == final
    # The same run again (a retry): nothing written, nothing charged.
    out = _cli(capsys, *run, "--version", "2")
    assert "adjusted 0 (+0.00 yuan), 0 unchanged, 2 already rerated under version 2" in out
    assert state(store_dir) == final

    # The statements: every month from the calls' to the reratings'; the rerating month shows three runs.
    bills = tmp_path / "bills.parquet"
    _cli(capsys, "bill", "--ledger", "--store", str(store_dir), "--out", str(bills), "--statements",
         str(tmp_path / "st"), "--format", "json,html", "--lang", "en")
    rows = [r for r in pq.read_table(bills).to_pylist() if r["account"] == "legacy"]
    assert sum(r["usage_minor"] for r in rows) == 14_4000
    assert sum(r["rerating_minor"] for r in rows) == 105_6000
    assert sum(r["rerating_credit_minor"] for r in rows) == 85_6000
    assert sum(r["rerating_calls"] for r in rows) == 6
    assert sum(r["amount_due_minor"] for r in rows) == 20 * YUAN  # c2's arrears under v2
    assert rows[-1]["closing_credit_minor"] == 0 == state(store_dir)[0]
    ledger = Ledger(store_dir)
    with ledger.env.begin() as txn:
        months = {_month(a.rerated_at_ms) for a in adj.all_rows(ledger, txn)}
    ledger.close()
    runs = []
    for m in sorted(months):
        (st,) = json.loads((tmp_path / "st" / f"legacy-{m}.json").read_text("utf-8"))["statements"]
        runs += [(x["amount_minor"], x["credit_minor"]) for x in st["rerating"]]
    assert sorted(runs) == sorted([(52_8000, 52_8000), (52_8000, 32_8000), (-30 * YUAN, -30 * YUAN),
                                   (-30 * YUAN, -10 * YUAN), (30 * YUAN, 30 * YUAN), (30 * YUAN, 10 * YUAN)])
    if len(months) == 1:  # one line per run in the printable statement (unless a run fell across midnight)
        html = (tmp_path / "st" / f"legacy-{months.pop()}.html").read_text("utf-8")
        assert html.count("catalog version 2") == 2 and html.count("catalog version 3") == 1, html


def test_back_to_v2_over_grpc_applies_once_and_get_statement_agrees(store_dir, tmp_path):
    from rating400.v1 import billing_pb2, billing_pb2_grpc, rerate_pb2, rerate_pb2_grpc
    from demo_server import Server

    server = Server(store_dir, tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = rerate_pb2_grpc.RerateServiceStub(channel)

            def rerate(version):
                return stub.Rerate(rerate_pb2.RerateRequest(catalog_version=version, from_day="2026-11-01",
                                                            to_day="2026-11-30", account="legacy"), timeout=60)

            deltas = []
            for version in (2, 3, 2):
                r = rerate(version)
                deltas.append((r.delta_total_minor, r.credit_change_total_minor, len(r.adjustments)))
            again = rerate(2)
            assert (len(again.adjustments), again.skipped, again.credit_change_total_minor) == (0, 2, 0)
            assert deltas == [(105_6000, -85_6000, 2), (-60 * YUAN, 40 * YUAN, 2), (60 * YUAN, -40 * YUAN, 2)]
            (c,) = r.corrections
            assert (c.charge_change_minor, c.credit_change_minor, c.billed_change_minor) == (
                60 * YUAN, -40 * YUAN, 20 * YUAN)
            month = _month(r.adjustments[0].rerated_at_ms)
            resp = billing_pb2_grpc.BillingServiceStub(channel).GetStatement(
                billing_pb2.StatementRequest(account="legacy", month=month, lang="en"), timeout=60)
    finally:
        server.stop()
    assert state(store_dir) == (0, (120 * YUAN, 2), {"c1": V2[0] + [V3[0], V2_AGAIN[0]],
                                                     "c2": V2[1] + [V3[1], V2_AGAIN[1]]})
    st = json.loads(resp.json)
    assert st["closing_credit_minor"] == resp.closing_credit_minor == 0
    if _month(deltas and r.adjustments[0].rerated_at_ms) == "2026-11":  # the calls' month: the whole story
        assert st["rerating_total_minor"] == 105_6000 and st["rerating_credit_total_minor"] == 85_6000
        assert st["amount_due_minor"] == 20 * YUAN and st["rerating_calls"] == 6
    else:  # a later month holds only the reratings (when the test runs after November 2026)
        assert st["rerating_calls"] == 6 and st["rerating_total_minor"] == 105_6000


def test_rows_keyed_by_version_before_the_sequence_are_read_and_continued(store_dir):
    """A ledger written before the sequence holds rows keyed by call + version:
    they are read in time order, and the next rerating continues after them."""
    from rating_core.ledger import call_key, formats
    from rating_core.rerate import rerate

    ledger = Ledger(store_dir)
    k = call_key("c1")
    with ledger.env.begin(write=True) as txn:  # the old layout: c1 under v2 (7.20 -> 60.00), no billable seconds
        value = formats.ADJUSTMENT.pack(7_2000, 60 * YUAN, 52_8000, 52_8000, at(20)) + b"legacy\x00old"
        txn.put(k + b"\x00" + formats.VERSION.pack(2), value, db=ledger.db[formats.ADJUSTMENTS])
    with ledger.env.begin() as txn:
        (old,) = adj.of_call(ledger, txn, k)
        assert (old.version, old.seq, old.reason, old.new_billable_seconds) == (2, 1, "old", -1)
        assert adj.latest(ledger, txn, k) == adj.Latest(60 * YUAN, 52_8000, -1, 2, 1)
    ledger.close()
    r = rerate(store_dir, 3, "2026-11-01", "2026-11-30", account="legacy", now_ms=at(21))
    c1 = [a for a in r.adjustments if a.call_id == "c1"]
    assert [(a.old_charge_minor, a.new_charge_minor, a.seq) for a in c1] == [(60 * YUAN, 30 * YUAN, 2)]
    assert [(a.version, a.seq) for a in _rows(store_dir) if a.call_id == "c1"] == [(2, 1), (3, 2)]


def _rows(store_dir):
    ledger = Ledger(store_dir)
    try:
        with ledger.env.begin() as txn:
            return adj.all_rows(ledger, txn)
    finally:
        ledger.close()
