"""Every money column of the rated output says its unit (``charge_minor``,
``credit_consumed_minor``, ``overage_minor``: 1/10000 yuan), in Parquet and
CSV. Files and ledger batches rated by earlier versions (``charge``,
``credit_consumed``, ``overage``) are still read by every reader, with the
same result; a file holding one column under both names is refused, naming
the file and the columns."""
from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating_core import cdr
from rating_core.cdr import RATED_MINOR_NAMES
from rating_core.cli import main
from rating_core.errors import InvalidInput
from inprocess import cli
from demo_server import copy_store

from test_rerate import root  # noqa: F401 - the fixture: version 1 with calls committed, version 2 dearer

NEW = set(RATED_MINOR_NAMES.values())
OLD = set(RATED_MINOR_NAMES)
EARLIER = {new: old for old, new in RATED_MINOR_NAMES.items()}
ACCOUNT = "hangzhou_tea"


@pytest.fixture(scope="module")
def demo(demo):
    """The module's demo (conftest) with untouched copies of the store for
    the commands that write to it (crm update)."""
    for name in ("store-new", "store-old"):
        copy_store(demo / "store", demo / name)
    return demo


def as_earlier(path, out):
    """The rated file ``path`` as an earlier version wrote it: the same bytes
    of data, the money columns under their old names."""
    if out.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        rows[0] = [EARLIER.get(n, n) for n in rows[0]]
        with open(out, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
    else:
        t = pq.read_table(path)
        pq.write_table(t.rename_columns([EARLIER.get(n, n) for n in t.column_names]), out)
    return out


@pytest.fixture(scope="module")
def rated(demo, tmp_path_factory):
    """The demo's CDRs rated to Parquet and CSV, lean and --pass-through."""
    d = tmp_path_factory.mktemp("rated")
    out = {}
    for fmt in ("parquet", "csv"):
        for lean in (True, False):
            path = d / f"{'lean' if lean else 'full'}.{fmt}"
            with pytest.raises(SystemExit) as e:
                main(["rate", str(demo / "cdrs.parquet"), "--store", str(demo / "store"), "--out", str(path),
                      *([] if lean else ["--pass-through"])])
            assert e.value.code == 0
            out[fmt, lean] = path
    return out


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("lean", [True, False])
def test_the_rated_output_names_money_with_its_unit(rated, fmt, lean):
    names = cdr.read_table(rated[fmt, lean]).column_names
    assert NEW <= set(names) and not OLD & set(names), names
    assert {"credit_after_minor", "bundle_left_seconds", "balance_after", "bundle_seconds_consumed"} <= set(names)
    if fmt == "parquet":  # the money columns are int64 minor units
        schema = pq.read_schema(rated[fmt, lean])
        assert all(schema.field(n).type == pa.int64() for n in NEW)


def test_rating_a_rated_file_again_keeps_no_old_money_column(demo, rated, tmp_path, capsys):
    """An earlier version's rated file rated again: with --pass-through its
    ``charge`` (and every other rated column) would be replaced by the
    output's, so it is refused before rating, naming the file and the
    columns; without --pass-through only the CDR fields are read and the
    new file reads."""
    old = as_earlier(rated["parquet", False], tmp_path / "old.parquet")
    code, _, err = cli(capsys, "rate", old, "--store", demo / "store", "--out", tmp_path / "refused.parquet",
                       "--pass-through")
    assert code == 2 and f"{old}: with --pass-through, column(s) file, row," in err, err
    assert " charge," in err and "charge_minor" not in err and "rate without --pass-through" in err, err
    assert not (tmp_path / "refused.parquet").exists()
    code, _, err = cli(capsys, "rate", old, "--store", demo / "store", "--out", tmp_path / "again.parquet")
    assert code == 0, err
    names = pq.read_schema(tmp_path / "again.parquet").names
    assert NEW <= set(names) and not OLD & set(names), names
    a = pq.read_table(tmp_path / "again.parquet").sort_by("call_id")
    b = pq.read_table(rated["parquet", False]).sort_by("call_id")
    for n in NEW:
        assert a.column(n).to_pylist() == b.column(n).to_pylist(), n


def _readers(store, path, call_id, out):
    """Every command that reads a rated file, on ``path``: (name, argv,
    the file it writes or None: its stdout)."""
    return [
        ("bill", ["bill", path, "--store", store, "--out", out / "bills.json"], out / "bills.json"),
        ("report", ["report", path, "--by", "number", "--out", out / "report.json"], out / "report.json"),
        ("advise", ["advise", path, "--store", store, "--account", ACCOUNT, "--json"], None),
        ("explain", ["explain", call_id, "--store", store, "--rated", path, "--json"], None),
        ("crm", ["crm", "update", path, "--store", store], None),
        ("crm show", ["crm", "show", "--store", store, "--account", ACCOUNT, "--role", "owner",
                      "--out", out / "crm.json"], out / "crm.json"),
    ]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_reader_reads_an_earlier_versions_file_alike(demo, rated, tmp_path, capsys, fmt):
    """bill, report, advise, explain --rated and crm give the same answer for
    a file with the money columns under their old names as for the file
    this version writes."""
    new_path = rated[fmt, False]
    old_path = as_earlier(new_path, tmp_path / f"old.{fmt}")
    assert OLD <= set(cdr.read_table(old_path).column_names)
    call_id = next(r["call_id"] for r in cdr.read_table(new_path).to_pylist()
                   if r["account"] == ACCOUNT and r["charge_minor"] > 0 and r["billed_seconds"] > 60)
    got = {}
    for tag, path in (("new", new_path), ("old", old_path)):
        out = tmp_path / tag
        out.mkdir()
        store = tmp_path / f"store-{tag}"
        copy_store(demo / f"store-{tag}", store)  # crm update writes to its store
        for name, argv, written in _readers(store, path, call_id, out):
            code, stdout, err = cli(capsys, *argv)
            assert code == 0, (name, tag, err)
            got[tag, name] = written.read_text("utf-8") if written else stdout
    for (tag, name), value in got.items():
        if tag == "new":
            assert value == got["old", name], name
    explained = json.loads(got["new", "explain"])
    assert explained["consistent"] and explained["charge_minor"] > 0
    assert json.loads(got["new", "crm show"]) and json.loads(got["new", "advise"])["packages"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_file_with_both_names_of_a_column_is_refused(demo, rated, tmp_path, capsys, fmt):
    t = cdr.read_table(rated["parquet", False])
    both = t.append_column("charge", t.column("charge_minor")).append_column("overage", t.column("overage_minor"))
    path = tmp_path / f"both.{fmt}"
    cdr.write_table(both, path)
    call_id = t.column("call_id")[0].as_py()
    for argv in (["bill", path, "--store", demo / "store", "--out", tmp_path / "b.csv"],
                 ["report", path, "--by", "number"],
                 ["explain", call_id, "--store", demo / "store", "--rated", path],
                 ["crm", "update", path, "--store", demo / "store"]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1, (argv, err)
        assert "internal error" not in err and "Traceback" not in err, err
        for said in (str(path), "charge_minor", "both columns charge and charge_minor, overage and overage_minor"):
            assert said in err, (said, err)
    assert not (tmp_path / "b.csv").exists()


def test_rated_columns_renames_without_copying_and_names_both():
    t = pa.table({"call_id": ["a"], "charge": pa.array([1500], pa.int64()), "overage": pa.array([0], pa.int64()),
                  "balance_after": pa.array([7], pa.int64())})
    renamed = cdr.rated_columns(t, "old.csv")
    assert renamed.column_names == ["call_id", "charge_minor", "overage_minor", "balance_after"]
    assert renamed.column("charge_minor").chunk(0).buffers()[1].address == t.column("charge").chunk(0).buffers()[1].address
    now = renamed.append_column("credit_consumed_minor", pa.array([0], pa.int64()))
    assert cdr.rated_columns(now, "new.csv") is now  # this version's names: the table itself
    with pytest.raises(InvalidInput) as e:
        cdr.rated_columns(renamed.append_column("charge", pa.array([1500], pa.int64())), "x.parquet")
    assert str(e.value) == ("x.parquet: charge_minor: both columns charge and charge_minor: the same column named "
                            "as by earlier versions and as now; keep one")


# --- ledger batches committed by an earlier version ----------------------------

def _as_earlier_batches(store_dir) -> int:
    """Rewrite every committed batch of the ledger as an earlier version
    stored it (the money columns under their old names); returns how many."""
    from rating_core.ledger import Ledger, formats, records

    ledger = Ledger(store_dir)
    try:
        with ledger.write() as w:
            db = ledger.db[formats.CALL_BATCHES]
            batches = [(bytes(k), bytes(v)) for k, v in w.txn.cursor(db=db)]
            for key, blob in batches:
                t = pa.ipc.open_stream(blob).read_all()
                assert NEW <= set(t.column_names)
                old = t.rename_columns([EARLIER.get(n, n) for n in t.column_names])
                w.txn.put(key, records.encode(old).to_pybytes(), db=db)
    finally:
        ledger.close()
    return len(batches)


def _from_the_ledger(store_dir, capsys) -> dict:
    """What every reader of committed records answers: statements
    (``bill --ledger``), the billing source of GetStatement, explain, a dry
    rerating under version 2, and a replay of the committed calls."""
    from rating_core.billing.sources import committed_calls, committed_records
    from rating_core.engine import Engine
    from rating_core.ledger import Ledger
    from rating_core.rerate import rerate
    from test_rerate import PAYG, PREPAID, cdr as call

    got = {}
    code, _, err = cli(capsys, "bill", "--ledger", "--store", store_dir, "--out", store_dir.parent / "bills.json")
    assert code == 0, err
    got["bill"] = (store_dir.parent / "bills.json").read_text("utf-8")
    code, out, err = cli(capsys, "explain", "p1", "--store", store_dir, "--json")
    assert code == 0, err
    got["explain"] = out
    ledger = Ledger(store_dir)
    try:
        got["calls"] = committed_calls(ledger).to_pylist()
        got["records"] = committed_records(ledger, account="jinghua_appliances").to_pylist()
    finally:
        ledger.close()
    result = rerate(store_dir, 2, "2026-10-01", "2026-10-31", dry_run=True, now_ms=1_800_000_000_000)
    got["rerate"] = [(a.call_id, a.old_charge_minor, a.new_charge_minor, a.ledger_delta_minor) for a in result.adjustments]
    engine = Engine.open(store_dir)
    try:
        calls = [call("p1", 0, 36_000, PREPAID), call("p2", 1, 36_000, PREPAID), call("p3", 2, 36_000, PREPAID),
                 call("g1", 0, 125, PAYG), call("g2", 3, 60, PAYG)]
        again = engine.rate_and_commit(pa.Table.from_pylist(calls))
        assert again.summary.replayed == 5 and again.summary.charge == 0
        got["replay"] = again.rated.select(["call_id", *sorted(NEW), "balance_after", "credit_after_minor"]).to_pylist()
    finally:
        engine.close()
    return got


def test_ledger_batches_of_an_earlier_version_read_alike(root, capsys):  # noqa: F811 (the fixture imported above)
    """A ledger committed by an earlier version (money columns under their
    old names in ``call_batches``): statements, GetStatement's source,
    explain, rerating and the replay of its calls answer as they do for a
    ledger of this version."""
    now = _from_the_ledger(root, capsys)
    assert [r["charge_minor"] for r in now["replay"]] == [720_000] * 3 + [4500, 1500]
    assert now["rerate"] and json.loads(now["explain"])["charge_minor"] == 720_000
    assert _as_earlier_batches(root) >= 1
    assert _from_the_ledger(root, capsys) == now


def test_legacy_json_records_read_with_this_versions_names(root):  # noqa: F811 (the fixture imported above)
    """Records of the oldest format (a layout id + JSON values, the names
    under ``call_layouts``) come back with this version's money names."""
    from rating_core.ledger import Ledger, formats, records

    names = ["call_id", "account", "charge", "credit_consumed", "overage", "balance_after"]
    ledger = Ledger(root)
    try:
        with ledger.write() as w:
            w.txn.put(b"layout01", json.dumps(names).encode(), db=ledger.db[formats.CALL_LAYOUTS])
        with ledger.env.begin() as txn:
            [rec] = records.load(ledger, txn, [b"layout01" + json.dumps(["old", "acme", 1500, 1500, 0, 9]).encode()])
    finally:
        ledger.close()
    assert rec == {"call_id": "old", "account": "acme", "charge_minor": 1500, "credit_consumed_minor": 1500,
                   "overage_minor": 0, "balance_after": 9}
