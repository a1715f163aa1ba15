"""The files a Chinese operator actually has, through ``rating400 rate``:
UTF-8 with and without a BOM, GBK, UTF-16, Excel times and numbers; and every
malformed file a one-line error naming file and line, exit status 2, never a
traceback."""
from __future__ import annotations

import csv
import json
import os
import shutil

import pyarrow.parquet as pq
import pytest

from rating_core import cdr
from rating_core.cli import main

HEADER = "call_id,caller,number,forwarded_to,start,agent_answer,end,hangup_cause\n"
ROWS = [
    # A Beijing caller to the service desk number (billing from agent answer).
    "c1,13812345678,4000589196,02088886666,2026-10-10T09:00:00+08:00,2026-10-10T09:00:09+08:00,"
    "2026-10-10T09:03:14+08:00,正常挂机\n",
    "c2,13912345678,4000589196,13800138000,2026-10-10T10:00:00+08:00,2026-10-10T10:00:05+08:00,"
    "2026-10-10T10:01:05+08:00,用户忙\n",
]
TEXT = HEADER + "".join(ROWS)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from rating_core.demo import write_demo_catalog
    from rating_core.store import Store

    root = tmp_path_factory.mktemp("files")
    s = Store(root / "store")
    s.activate(s.compile(write_demo_catalog(root / "catalog")))
    del s
    return root / "store"


def rate(store, path, *more, capsys):
    """``rating400 rate`` in process -> (exit status, stdout, stderr)."""
    out = path.with_name(path.stem + ".rated.parquet")
    try:
        main(["rate", str(path), "--store", str(store), "--out", str(out), "--json", *map(str, more)])
        code = 0
    except SystemExit as e:
        code = e.code
    got = capsys.readouterr()
    return code, got.out, got.err


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16", "utf-16-le"])
def test_encodings_detected(store, tmp_path, capsys, encoding):
    path = tmp_path / f"cdrs-{encoding}.csv"
    path.write_bytes(TEXT.encode(encoding))
    code, out, err = rate(store, path, capsys=capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["rated"] == 2 and summary["rejected"] == 0
    rated = pq.read_table(path.with_name(path.stem + ".rated.parquet"))
    assert rated.num_rows == 2


def test_encoding_named(store, tmp_path, capsys):
    path = tmp_path / "named.csv"
    path.write_bytes(TEXT.encode("gbk"))
    code, out, err = rate(store, path, "--encoding", "gbk", capsys=capsys)
    assert code == 0 and json.loads(out)["rated"] == 2
    assert cdr.read_table(path, ).column("hangup_cause").to_pylist()[0] == "正常挂机"
    code, out, err = rate(store, path, "--encoding", "latin-9", capsys=capsys)
    assert code == 2 and err.strip().endswith("(one of: utf-8, gbk, gb18030, utf-16)")
    assert cdr.DEFAULT_ENCODING is None  # a command's --encoding does not outlive it (cdr.told_encoding)


def test_excel_times_and_numbers(store, tmp_path, capsys):
    path = tmp_path / "excel.csv"
    path.write_text(
        HEADER
        + "x1,13812345678,4000589196,02088886666,2026/10/10 9:00:00,2026/10/10 9:00:09,2026/10/10 9:03:14,\n"
        + "x2,13812345678,4000589196,02088886666,2026-10-10 10:00,2026-10-10 10:00,2026-10-10 10:03,\n"
        + "x3,13812345678,4000589196,02088886666,46305.375,46305.3751041667,46305.3772453704,\n"  # 9:00:00, :09, 9:03:14
        + "x4,13812345678,4000589196,2088886666,2026-10-10 11:00,2026-10-10 11:00,2026-10-10 11:03,\n"
        + "x5,1.38123E+10,4000589196,02088886666,2026-10-10 12:00,2026-10-10 12:00,2026-10-10 12:03,\n"
        + "x6,13812345678,4000589196.0,02088886666,2026-10-10 13:00,2026-10-10 13:00,2026-10-10 13:03,\n",
        encoding="utf-8")
    code, out, err = rate(store, path, capsys=capsys)
    assert code == 0, err
    rated = pq.read_table(path.with_name(path.stem + ".rated.parquet"))
    assert sorted(rated.column("call_id").to_pylist()) == ["x1", "x2", "x3"]
    seconds = dict(zip(rated.column("call_id").to_pylist(), rated.column("billable_seconds").to_pylist()))
    assert seconds["x3"] == seconds["x1"] == 185  # 09:00:09 -> 09:03:14, from serial days to the second
    rejects = {r["call_id"]: r for r in cdr.read_table(path.with_name(path.stem + ".rated.rejects.csv")).to_pylist()}
    assert rejects["x4"]["field"] == "forwarded_to" and rejects["x4"]["reason"].startswith("leading 0 missing")
    assert rejects["x5"]["field"] == "caller" and "spreadsheet number" in rejects["x5"]["reason"]
    assert rejects["x6"]["field"] == "number" and "spreadsheet number" in rejects["x6"]["reason"]


BAD_FILES = {
    "empty.csv": (b"", "empty.csv: empty file (no header)"),
    "blank.csv": (b"\n\n", "blank.csv: line 1: no header"),
    "random.csv": (bytes(range(256)) * 40, "random.csv: not text"),
    "twice.csv": (b"call_id,number,call_id\n1,2,3\n", "twice.csv: line 1: column 'call_id': column given twice"),
    "ragged.csv": (TEXT.encode() + b"c3,138\n", "ragged.csv: line 4: 2 fields where the header has 8"),
    "quote.csv": (TEXT.encode() + b'c3,"138,4000589196\n' + ROWS[0].encode(),
                  "quote.csv: line 4: a quote opened here is never closed"),
    "nocolumns.csv": (b"a,b\n1,2\n", "nocolumns.csv: line 1: column call_id: no such column"),
    "garbage.parquet": (b"PAR1" + os.urandom(100), "garbage.parquet: not a Parquet file"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_malformed_files_are_one_line_exit_2(store, tmp_path, capsys, name):
    content, says = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = rate(store, path, capsys=capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert says in err, err


def test_operator_mistakes_one_line(store, tmp_path, capsys):
    for args, says in ((["route", "40012345", "13812345678", "--store", str(store)],
                       "error: number: '40012345' is not a 400 number (400 + 7 digits)"),
                       (["route", "4000589196", "138\x001", "--store", str(store)], "error: caller: contains a control"),
                       (["rate", str(tmp_path / "missing.csv"), "--store", str(store), "--out", str(tmp_path / "o.csv")],
                        "does not exist"),
                       (["rate", "--store", str(store)], "error: Missing argument 'INPUTS...'")):
        try:
            main(args)
            code = 0
        except SystemExit as e:
            code = e.code
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and says in err, (args, err)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_lone_surrogate_is_that_rows_reject(store, tmp_path, capsys, encoding):
    """A lone surrogate (UTF-16 that is no character) in one row's field is
    that row's reject naming the field; the other rows rate (it refused the
    whole file: "line 1: header unreadable"). In the header: one line, exit 2."""
    path = tmp_path / f"lone-{encoding}.csv"
    bad = ROWS[1].replace("用户忙", "用户\ud800忙").replace("c2,", "c3,")
    path.write_bytes((TEXT + bad).encode(encoding, "surrogatepass"))
    code, out, err = rate(store, path, "--encoding", encoding, "--rejects", tmp_path / "rej.csv", capsys=capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["rated"] == 2 and summary["rejected"] == 1, summary
    rejects = (tmp_path / "rej.csv").read_text(encoding="utf-8")
    assert "c3" in rejects and "hangup_cause" in rejects, rejects
    path.write_bytes(TEXT.replace("end,", "e\ud800nd,").encode(encoding, "surrogatepass"))
    code, out, err = rate(store, path, "--encoding", encoding, capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "line 1: header unreadable: not UTF-16 text (a lone surrogate" in err, err


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_a_utf16_file_cut_mid_character_names_the_file_and_the_offset(store, tmp_path, capsys, encoding):
    """A UTF-16 file one byte short (a copy cut off): the error names the
    file, says it ends mid-character and at which byte offset (csvin
    reviewer: it said "not utf-16 text ('\\n' ...)")."""
    path = tmp_path / f"cut-{encoding}.csv"
    data = TEXT.encode(encoding)
    path.write_bytes(data[:-1])
    code, _, err = rate(store, path, capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err and "the file ends mid-character" in err, err
    assert f"from byte offset {len(data) - 2} of {len(data) - 1}" in err, err


def test_only_an_empty_cell_is_empty(store, tmp_path, capsys):
    """Breaker: pyarrow's default null words (NA, null, nan, N/A, #N/A)
    made call id "NA" a missing id and a caller "NULL" withheld by accident.
    Now a call id NA is that id; a caller written as an export's empty
    word (null, none, na, n/a) is a withheld caller on purpose
    (WITHHELD_CALLERS: the forwarded leg is charged, out of town); a
    forwarded_to "N/A" is that row's reject."""
    head = "call_id,caller,number,forwarded_to,start,ivr_answer,agent_answer,end\n"
    row = "{},{},4000589196,{},2026-11-02T10:00:00+08:00,,2026-11-02T10:00:05+08:00,2026-11-02T10:03:05+08:00\n"
    path = tmp_path / "nulls.csv"
    path.write_text(head + row.format("NA", "13812345678", "13700000001") + row.format("nan", "NULL", "13700000001")
                    + row.format("#N/A", "n/a", "N/A"), encoding="utf-8")
    assert cdr.read_table(path).column("call_id").to_pylist() == ["NA", "nan", "#N/A"]
    code, out, err = rate(store, path, "--rejects", tmp_path / "rej.csv", capsys=capsys)
    assert code == 0 and json.loads(out)["rated"] == 2, (out, err)
    rejects = list(csv.DictReader((tmp_path / "rej.csv").open(encoding="utf-8")))
    assert [(r["call_id"], r["field"]) for r in rejects] == [("#N/A", "forwarded_to")], rejects


@pytest.mark.parametrize("out_fmt", ["parquet", "csv"])
@pytest.mark.parametrize("more", [(), ("--pass-through",), ("--commit", "--pass-through")])
def test_a_late_odd_cell_in_an_extra_column_refuses_nothing(store, tmp_path, capsys, monkeypatch, more, out_fmt):
    """Breaker: pyarrow typed a column the CDR schema does not name by
    inference from the first block (64 MiB), so one later cell that did not
    fit ('abc' after numbers, a byte not UTF-8 after text) refused the whole
    file. A CDR file's extra columns are read as text (bytes where a batch's
    cells are not UTF-8) and passed through as written ('007' keeps its zeros);
    a rated or rejects file read back keeps its typed columns. The block is
    made small here to put the odd cells in a later one."""
    monkeypatch.setattr(cdr, "CSV_BLOCK_BYTES", 1 << 12)
    head = "call_id,caller,number,forwarded_to,start,agent_answer,end,note,ext\n"
    row = ("x-{},13812345678,4000589196,13700000001,2026-11-02T10:00:00+08:00,2026-11-02T10:00:05+08:00,"
           "2026-11-02T10:03:05+08:00,{},{}\n")
    path = tmp_path / "late.csv"
    path.write_bytes((head + "".join(row.format(i, 123, "007") for i in range(300))
                      + row.format(300, "abc", "1.5") + row.format(301, "caf\udce9", "x")
                      ).encode("utf-8", "surrogateescape"))
    out = tmp_path / f"late.rated.{out_fmt}"
    store_copy = tmp_path / "store"  # --commit writes the ledger: a store of this test's own
    shutil.copytree(store, store_copy)
    code, got, err = rate(store_copy, path, "--out", out, *more, capsys=capsys)
    assert code == 0 and "Traceback" not in err, err
    assert json.loads(got)["rated"] == 302, got
    if more:
        monkeypatch.undo()  # a rated file's extras are typed by inference (one block here)
        t = cdr.read_table(out)
        # Parquet keeps a column with a byte not UTF-8 as bytes (binary), CSV escapes it
        notes = [v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v
                 for v in t.column("note").to_pylist()]
        assert [notes[0], notes[300], notes[301]] == ["123", "abc", "caf\\xe9"], notes[299:]
        assert t.column("ext").to_pylist()[:1] + t.column("ext").to_pylist()[-2:] == ["007", "1.5", "x"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8"])
def test_a_tab_separated_export_says_so(store, tmp_path, capsys, encoding):
    """Excel's "Unicode text" export is UTF-16 with a mark and tabs between
    the columns: read as CSV it was one column named "call_id\\tcaller...",
    refused as `column call_id: no such column`. Now one line naming the
    file, its encoding, the tabs and how to convert it; exit 2."""
    path = tmp_path / f"unicode-text-{encoding}.txt"
    path.write_bytes(TEXT.replace(",", "\t").replace("\n", "\r\n").encode(encoding))
    code, out, err = rate(store, path, capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    label = "UTF-8" if encoding == "utf-8" else "UTF-16"
    assert err.startswith(f"error: {path}: line 1: {label} text whose columns are separated by tabs"), err
    assert 'save it as "CSV UTF-8 (Comma delimited)"' in err, err


def test_utf16_named_without_a_byte_order_mark_is_a_clear_error(tmp_path):
    """--encoding utf-16 on a file without a byte-order mark: Python's codec
    raised a UnicodeError the header check did not catch (an internal
    error, breaker); now the file's error, naming the byte orders."""
    p = tmp_path / "be.csv"
    p.write_bytes("call_id,number\na,4001234567\n".encode("utf-16-be"))
    with pytest.raises(cdr.InvalidFile) as e:
        cdr.check_file(p, "utf-16")
    assert "without a byte-order mark" in str(e.value) and "utf-16-be" in str(e.value)


def test_a_rated_csv_reads_back_by_the_rated_types_not_the_first_block(tmp_path, monkeypatch):
    """A rated CSV over one read block (64 MiB): credit_after_minor empty for
    the whole first block (pay-as-you-go calls) was inferred null and a
    pass-through column of digits int64, so a prepaid call's balance or an
    'abc' below refused the file in bill, explain and report (breaker).
    read_rated types the rated columns and reads the others as text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    n = 400
    table = pa.table({
        "call_id": [f"c{i}" for i in range(n)],
        "charge_minor": pa.array(range(n), pa.int64()),
        "credit_after_minor": pa.array([None] * 300 + [5] * 100, pa.int64()),
        "answered": pa.array([i % 2 == 0 for i in range(n)]),
        "note": ["007"] * (n - 1) + ["abc"],
    })
    path = tmp_path / "rated.csv"
    pacsv.write_csv(table, path)
    monkeypatch.setattr(cdr, "CSV_BLOCK_BYTES", 4096)
    got = cdr.read_rated(path)
    assert got.column("credit_after_minor").type == pa.int64()
    assert got.column("credit_after_minor").to_pylist()[299:301] == [None, 5]
    assert got.column("answered").type == pa.bool_() and got.column("charge_minor").type == pa.int64()
    assert got.column("note").to_pylist()[0] == "007" and got.column("note").to_pylist()[-1] == "abc"


def test_cp936_names_gbk(tmp_path):
    """--encoding cp936 (Windows' name for GBK) is GBK (breaker: refused as unknown)."""
    p = tmp_path / "gbk.csv"
    p.write_bytes("call_id,备注\na,普通\n".encode("gbk"))
    assert cdr.encoding_of(p, "cp936") == cdr.encoding_of(p, "gbk") == "gb18030"


def test_a_header_name_with_an_invisible_character_is_shown_escaped(tmp_path):
    """A byte-order mark written twice leaves U+FEFF in the first name: the
    error said 'no such column' for a header that showed call_id (breaker)."""
    p = tmp_path / "bom2.csv"
    p.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbfcall_id,number,forwarded_to,start,end\na,4001234567,1,0,1\n")
    with pytest.raises(cdr.InvalidFile) as e:
        cdr.check_file(p, None, cdr.REQUIRED_COLUMNS)
    assert "no such column" in str(e.value) and "'\\ufeffcall_id'" in str(e.value)
