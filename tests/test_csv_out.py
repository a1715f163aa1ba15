"""What ``rating400 rate`` writes for people and programs beside the
charges: an input column named like an output column is refused with
``--pass-through`` (never replaced or dropped silently), naming the file
and the columns (README "Pass-through columns")."""
from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from rating_core import bulk
from rating_core.cdr import InvalidFile
from rating_core.cli import main
from rating_core.rater import RATED_COLUMNS, Rater
from rating_core.store import Store

ROOT = Path(__file__).resolve().parents[1]


def cli(capsys, *args):
    """``rating400 ARGS`` in process -> (exit status, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    got = capsys.readouterr()
    return code, got.out, got.err


@pytest.fixture(scope="module")
def calls(demo):
    """The demo's first 20 CDRs that rate (those of the demo's rated file)."""
    rated = set(pq.read_table(demo / "rated.parquet").column("call_id").to_pylist())
    t = pq.read_table(demo / "cdrs.parquet")
    keep = [i for i, c in enumerate(t.column("call_id").to_pylist()) if c in rated][:20]
    return t.take(pa.array(keep))


def with_columns(t: pa.Table, **columns) -> pa.Table:
    for name, values in columns.items():
        t = t.append_column(name, pa.array(values if isinstance(values, list) else [values] * t.num_rows))
    return t


# --- 1. a pass-through column named like an output column ---------------------------------
def test_a_clashing_column_is_refused_before_rating_naming_file_and_columns(demo, calls, tmp_path, capsys):
    src = tmp_path / "clash.csv"
    pacsv.write_csv(with_columns(calls, charge_minor="999", status="ANSWERED", note="kept"), src)
    out = tmp_path / "out.csv"
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", out, "--pass-through")
    assert code == 2
    assert err.strip() == (f"error: {src}: line 1: with --pass-through, column(s) charge_minor, status would be "
                           "replaced by the rated output's own of that name: rename them in the file (e.g. "
                           "in_charge_minor, in_status) or rate without --pass-through")
    assert not out.exists()
    # The README shows this very message.
    shown = re.search(r"### Pass-through columns\n.*?```text\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert shown.group(1).strip() == err.strip().replace(str(src), "clash.csv")
    # Renamed as the message says, every column is kept, theirs beside ours.
    pacsv.write_csv(with_columns(calls, in_charge_minor="999", in_status="ANSWERED", note="kept"), src)
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", out, "--pass-through")
    assert code == 0, err
    t = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(column_types={"in_charge_minor": pa.string()}))
    assert set(t.column("in_charge_minor").to_pylist()) == {"999"} and set(t.column("status").to_pylist()) == {"rated"}
    assert t.column("charge_minor").type == pa.int64() and t.num_rows == calls.num_rows
    # Without --pass-through the extra columns are not read: nothing to refuse.
    pacsv.write_csv(with_columns(calls, charge_minor="999"), src)
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", out)
    assert code == 0, err


@pytest.mark.parametrize("name", ["file", "row", "account", "answered", "replayed", "charge", "credit_after_minor"])
def test_every_output_name_is_refused_in_parquet_and_with_commit(demo, calls, tmp_path, capsys, name):
    """Parquet input, --commit: refused before the ledger is touched (the
    same file rates and commits once renamed, nothing replayed)."""
    src = tmp_path / "in.parquet"
    pq.write_table(with_columns(calls, **{name: "x"}), src)
    out = tmp_path / "out.parquet"
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", out, "--pass-through", "--commit")
    assert code == 2 and f"{src}: with --pass-through, column(s) {name} would be replaced" in err, err
    assert not out.exists()


def test_output_names_are_the_rated_tables_own(demo, calls):
    """``bulk.OUTPUT_NAMES`` holds every column the rater adds to the input
    (``rater.RATED_COLUMNS``, checked against a rated table) and the rated
    files' ``file`` and ``row``; no CDR field."""
    store = Store(demo / "store", create=False)
    rated = Rater(store.open()).rate(calls).rated
    added = set(rated.column_names) - set(calls.column_names) - {"row"}
    assert added == set(RATED_COLUMNS) and added < bulk.OUTPUT_NAMES
    assert {"file", "row"} < bulk.OUTPUT_NAMES and not bulk.OUTPUT_NAMES & set(calls.column_names)


def test_the_bulk_api_refuses_too(demo, calls, tmp_path):
    src = tmp_path / "in.csv"
    pacsv.write_csv(with_columns(calls, account="mine"), src)
    store = Store(demo / "store", create=False)
    rater = Rater(store.open())
    with pytest.raises(InvalidFile, match="column\\(s\\) account would be replaced"):
        bulk.rate_dataset([src], rater, rater.opening_state(), tmp_path / "o.csv", tmp_path / "r.csv",
                          pass_through=True)
    assert not (tmp_path / "o.csv").exists()
