"""One row convention for people: a rejects file's ``row`` and every error of
the command line that names a row count data rows from 1 (the first row after
a CSV's header is row 1), in a dry run, a committed run and a Parquet file
alike; in memory and on the wire ``row`` stays the 0-based index."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating_core.cli import main
from rating_core.errors import InvalidInput
from rating_core.billing.calls import from_rated_table
from test_csv_encoding_guess import HEADER, _commit, _row
from test_text_cells import _rate


@pytest.mark.parametrize("commit", [False, True])
def test_the_second_data_row_is_row_2_in_the_rejects_file(tmp_path, commit):
    (tmp_path / "c.csv").write_text(HEADER + _row("r-ok-1") + _row("r-bad\x07") + _row("r-ok-2"), encoding="utf-8")
    if commit:
        _, rejects = _commit(tmp_path, tmp_path / "c.csv")
    else:
        proc, rejects = _rate(tmp_path, tmp_path / "c.csv")
        assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["call_id"], r["field"]) for r in rejects] == [("2", "r-bad\\x07", "call_id")]
    # A Parquet rejects file says the same.
    proc, _ = _rate(tmp_path, tmp_path / "c.csv", "--rejects", str(tmp_path / "rej.parquet"))
    assert proc.returncode == 0, proc.stderr
    assert pq.read_table(tmp_path / "rej.parquet").column("row").to_pylist() == [2]


def test_bill_names_the_data_row_of_a_bad_time_counting_from_1(tmp_path):
    """Rows the rater rejected are skipped before the check, yet the row named is the file's."""
    n = 3
    t = pa.table({"call_id": ["a", "b", "c"], "account": ["x"] * n, "package": ["p"] * n, "number": ["4001000005"] * n,
                  "status": ["unknown_number", "rated", "rated"],
                  "start": ["2026-11-01T10:00:00+08:00", "2026-11-01T10:00:00+08:00", "yesterday"],
                  **{c: [0] * n for c in ("billable_seconds", "billed_seconds", "charge_minor", "credit_consumed_minor",
                                          "bundle_seconds_consumed", "overage_minor", "balance_after")},
                  "answered": [True] * n})
    with pytest.raises(InvalidInput) as e:
        from_rated_table(t, "r.parquet")
    assert str(e.value) == ("r.parquet: start: row 3: not a time (ISO 8601, e.g. 2026-11-01T09:30:05+08:00; "
                            "no offset means Asia/Shanghai; or epoch milliseconds): 'yesterday'"), str(e.value)
    pq.write_table(t, tmp_path / "r.parquet")
    with pytest.raises(SystemExit) as s:
        main(["report", str(tmp_path / "r.parquet"), "--by", "number"])
    assert s.value.code == 2


def test_a_rated_start_outside_the_calendar_is_refused_as_rate_refuses_it():
    """Breaker 3 F1: a rated row's start edited to 2087 was billed (20,272
    statements) and explain --rated ended in an IndexError. The reader
    refuses a start outside the rater's calendar table, at its bounds
    (``compile.calendar.DAYS``, local days) and with rate's reason."""
    from rating_core import cdr
    from rating_core.compile.calendar import FIRST_DAY, LAST_DAY

    starts = [f"{FIRST_DAY}T00:00:00+08:00", f"{LAST_DAY}T23:59:59+08:00"]
    n = len(starts) + 1
    eve = FIRST_DAY - dt.timedelta(days=1)
    for bad in (f"{eve}T15:59:59+00:00", f"{LAST_DAY}T16:00:00+00:00"):  # a second outside, in local time
        t = pa.table({"call_id": list("abc"), "account": ["x"] * n, "package": ["p"] * n,
                      "number": ["4001000005"] * n, "status": ["rated"] * n, "start": starts + [bad],
                      **{c: [0] * n for c in ("billable_seconds", "billed_seconds", "charge_minor",
                                              "credit_consumed_minor", "bundle_seconds_consumed", "overage_minor",
                                              "balance_after")},
                      "answered": [True] * n})
        with pytest.raises(InvalidInput) as e:
            from_rated_table(t, "r.parquet")
        assert str(e.value) == f"r.parquet: start: row 3: {cdr.REASONS[cdr.OUTSIDE_CALENDAR]}: {bad!r}", str(e.value)
        assert from_rated_table(t.slice(0, 2), "r.parquet").num_rows == 2  # the calendar's own first and last days


def test_a_committed_runs_rejects_file_is_written_as_a_dry_runs(tmp_path):
    """``rate --commit`` writes its rejects with the same writer: Parquet when
    the name says so (it wrote CSV bytes there before), and in a CSV a call id
    that starts like a formula quoted, as a dry run does."""
    (tmp_path / "d.csv").write_text(HEADER + _row("=cmd|' /C calc'!A1\x07"), encoding="utf-8")
    for extra in ((), ("--commit",)):
        proc, rejects = _rate(tmp_path, tmp_path / "d.csv", *extra)
        assert proc.returncode == 0, proc.stderr
        assert [r["call_id"][:2] for r in rejects] == ["'="], (extra, rejects)
    (tmp_path / "c.csv").write_text(HEADER + _row("=cmd|' /C calc'!A0\x07") + _row("k-ok"), encoding="utf-8")
    proc, _ = _rate(tmp_path, tmp_path / "c.csv", "--commit", "--rejects", str(tmp_path / "rej.parquet"))
    assert proc.returncode == 0, proc.stderr
    t = pq.read_table(tmp_path / "rej.parquet")
    assert t.column("row").to_pylist() == [1] and t.column("field").to_pylist() == ["call_id"]


@pytest.mark.parametrize("cell", ["0x10", "0X1f", "1e3", "+5", "12.0"])
def test_a_rated_csv_count_written_other_than_in_decimal_is_the_row_s_error(tmp_path, cell):
    """pyarrow's CSV reader (and its cast) read ``0x10`` in an int64 column
    as 16: an edited rated CSV's hex charge or seconds was billed and
    explained as that number. ``cdr.read_rated`` reads those columns as
    text and makes them int64 only when every cell is a decimal whole
    number; billing's check names file, row and field for any other."""
    from rating_core import cdr

    n = 2
    t = pa.table({"call_id": ["a", "b"], "account": ["x"] * n, "package": ["p"] * n, "number": ["4001000005"] * n,
                  "status": ["rated"] * n, "start": ["2026-11-01T10:00:00+08:00"] * n,
                  **{c: ["0"] * n for c in ("billable_seconds", "billed_seconds", "credit_consumed_minor",
                                            "bundle_seconds_consumed", "overage_minor", "balance_after")},
                  "charge_minor": ["3000", cell], "answered": [True] * n})
    path = tmp_path / "r.csv"
    import pyarrow.csv as pacsv

    pacsv.write_csv(t, path)
    got = cdr.read_rated(path)
    assert got.column("billable_seconds").type == pa.int64()  # every cell decimal: typed as before
    with pytest.raises(InvalidInput) as e:
        from_rated_table(got, str(path))
    assert str(e.value) == f"{path}: charge_minor: row 2: {cell!r} is not a whole number (minor units) on a rated row"
