"""Hostile inputs found by the breaker session: each is one line on stderr
and exit status 2 naming the file, row or option (never exit 1 "internal
error", never a hang, never a silently wrong bill)."""
from __future__ import annotations

import json
import shutil

import lmdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rating_core.billing.calls import MAX_CALL_MINOR
from inprocess import cli
from demo_server import copy_store


def one_line_error(code, err, *says):
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "internal error" not in err and "Traceback" not in err, err
    for s in says:
        assert s in err, (s, err)


def rated_with(demo, tmp_path, name, column, values, dtype=None):
    t = pq.read_table(demo / "rated.parquet").slice(0, 50)
    i = t.column_names.index(column)
    path = tmp_path / f"{name}.parquet"
    pq.write_table(t.set_column(i, column, pa.array([values] * t.num_rows, dtype)), path)
    return path


@pytest.mark.parametrize("column,value", [("charge_minor", 2**62), ("charge_minor", 2**63 - 1),
                                          ("charge_minor", MAX_CALL_MINOR + 1), ("billable_seconds", -1),
                                          ("overage_minor", -5)])
def test_bill_refuses_rated_rows_out_of_bounds(demo, tmp_path, capsys, column, value):
    path = rated_with(demo, tmp_path, "bad", column, value, pa.int64())
    for command in (["bill", path, "--store", demo / "store", "--out", tmp_path / "b.csv"],
                    ["report", path, "--by", "number", "--out", tmp_path / "r.csv"],
                    ["explain", "X", "--store", demo / "store", "--rated", path]):
        code, _, err = cli(capsys, *command)
        if command[0] == "explain":  # explain reads one row as the rater wrote it; it must not crash
            assert code == 2 and "internal error" not in err, err
            continue
        one_line_error(code, err, str(path), column, "row 1", "outside")
    assert not (tmp_path / "b.csv").exists()


def test_rated_totals_cannot_wrap(demo, tmp_path):
    """Rows each within bounds whose sum would pass int64: refused, not wrapped."""
    from rating_core.billing.calls import MAX_TOTAL, combine, from_rated_table
    from rating_core.errors import InvalidInput

    t = pq.read_table(demo / "rated.parquet")
    t = t.filter(pc.greater(t.column("units"), 0)).slice(0, 10)  # calls billed: a charge beside their units
    i = t.column_names.index("charge_minor")
    t = t.set_column(i, "charge_minor", pa.array([MAX_CALL_MINOR] * 10, pa.int64()))
    for name, value in (("credit_consumed_minor", 0), ("overage_minor", MAX_CALL_MINOR)):  # the charge's parts
        t = t.set_column(t.column_names.index(name), name, pa.array([value] * 10, pa.int64()))
    one = from_rated_table(t, "f")  # read once, shared: 461k reads of it took minutes and 7 GB
    parts = [(f"f{k}", one) for k in range(MAX_TOTAL // (10 * MAX_CALL_MINOR) + 1)]
    with pytest.raises(InvalidInput, match="charge_minor: the inputs add up"):
        combine(parts)


def test_bill_names_calls_of_unknown_accounts(demo, tmp_path, capsys):
    t = pq.read_table(demo / "rated.parquet").slice(0, 50)
    i = t.column_names.index("account")
    # An account id holding a NUL is the row's error, as the rater refuses it (breaker N11 F16).
    nul = tmp_path / "nul.parquet"
    pq.write_table(t.set_column(i, "account", pa.array(["no\x00pe"] * t.num_rows)), nul)
    code, _, err = cli(capsys, "bill", nul, "--store", demo / "store", "--out", tmp_path / "b.csv",
                       "--skip-unknown-accounts")
    one_line_error(code, err, f"{nul}: account: row 1: 'no\\x00pe' holds a control character")
    path = tmp_path / "unknown.parquet"
    pq.write_table(t.set_column(i, "account", pa.array(["nope"] * t.num_rows)), path)
    code, _, err = cli(capsys, "bill", path, "--store", demo / "store", "--out", tmp_path / "b.csv")
    one_line_error(code, err, str(path), "50 call(s)", repr("nope"), "not in the catalog")
    code, out, err = cli(capsys, "bill", path, "--store", demo / "store", "--out", tmp_path / "b.csv",
                         "--skip-unknown-accounts")
    assert code == 0, err
    assert "warning:" in err and "50 call(s)" in err and "not billed" in err


def test_rate_never_writes_over_its_input(demo, tmp_path, capsys):
    src = tmp_path / "cdrs.parquet"
    shutil.copy(demo / "cdrs.parquet", src)
    before = src.read_bytes()
    link = tmp_path / "link.parquet"
    link.symlink_to(src)
    for more in (["--out", src], ["--out", tmp_path / "sub" / ".." / "cdrs.parquet"], ["--out", link],
                 ["--out", tmp_path / "o.parquet", "--rejects", src],
                 ["--out", tmp_path / "o.csv", "--rejects", tmp_path / "o.csv"]):
        code, _, err = cli(capsys, "rate", src, "--store", demo / "store", *more)
        one_line_error(code, err, "--out" if more[0] == "--out" and len(more) == 2 else "--rejects")
    assert src.read_bytes() == before


@pytest.mark.parametrize("args,says", [
    (["--threads", "0"], "'--threads'"), (["--threads", "-5"], "'--threads'"),
    (["--threads", "100000"], "'--threads'"),
    (["--memory-limit", "banana"], "'--memory-limit'"), (["--memory-limit", "1B"], "'--memory-limit'"),
])
def test_rate_option_bounds(demo, tmp_path, capsys, args, says):
    code, _, err = cli(capsys, "rate", demo / "cdrs.parquet", "--store", demo / "store",
                       "--out", tmp_path / "o.parquet", *args)
    one_line_error(code, err, says)


def test_rate_memory_limit_sizes_accepted(demo, tmp_path, capsys):
    code, out, err = cli(capsys, "rate", demo / "cdrs.parquet", "--store", demo / "store",
                         "--out", tmp_path / "o.parquet", "--memory-limit", "256MiB", "--threads", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["rows_in"] == 2000


@pytest.mark.parametrize("args,says", [
    (["explain", ""], "CALL_ID"),
    (["serve", "--port", "70000"], "'--port'"), (["serve", "--port", "-1"], "'--port'"),
    (["serve", "--workers", "0"], "'--workers'"),
])
def test_other_option_bounds(demo, capsys, args, says):
    code, _, err = cli(capsys, *args, "--store", demo / "store")
    one_line_error(code, err, says)


def test_inputs_that_were_internal_errors(demo, tmp_path, capsys):
    store = demo / "store"
    nested = tmp_path / "nested.parquet"
    t = pq.read_table(demo / "rated.parquet").slice(0, 5)
    pq.write_table(t.set_column(t.column_names.index("call_id"), "call_id",
                                pa.array([[1, 2]] * 5, pa.list_(pa.int64()))), nested)
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("call_id,caller,number,forwarded_to,start,ivr_answer,agent_answer,end,hangup_cause\n")
    not_a_dataset = tmp_path / "somedir"
    not_a_dataset.mkdir()
    (not_a_dataset / "notes.txt").write_text("hello\n")
    cases = [
        (["rate", nested, "--out", tmp_path / "o.parquet"], [str(nested), "call_id", "list"]),
        (["advise", nested, "--account", "hangzhou_tea"], [str(nested), "call_id"]),
        (["explain", "X", "--rated", nested], [str(nested), "call_id"]),
        (["bill", nested, "--out", tmp_path / "b.csv"], [str(nested), "call_id"]),
        (["bill", header_only, "--out", tmp_path / "b.csv"], [str(header_only), "no rows"]),
        (["advise", header_only, "--account", "hangzhou_tea"], [str(header_only), "no rows"]),
        (["explain", "X", "--rated", header_only], [str(header_only), "no rows"]),
        (["rate", header_only, "--out", tmp_path / "o.parquet"], [str(header_only), "no CDR rows"]),
        (["rate", not_a_dataset, "--out", tmp_path / "o.parquet"], [str(not_a_dataset), "not a Parquet dataset"]),
    ]
    for args, says in cases:
        code, _, err = cli(capsys, *args, "--store", store)
        one_line_error(code, err, *says)


def test_csv_with_a_quote_never_closed(demo, tmp_path, capsys):
    """README's bad-input table: a quote never closed is an error, also on
    the file's last field (pyarrow takes the end of file as the close)."""
    header = "call_id,caller,number,forwarded_to,start,ivr_answer,agent_answer,end,hangup_cause\r\n"
    row = ('"c1","07316017245","4007824773","07167665546",2026-10-01 00:01:15+0800,,'
           '2026-10-01 00:01:35+0800,2026-10-01 00:04:09+0800,"unterminated\r\n')
    path = tmp_path / "unclosed.csv"
    path.write_text(header + row, encoding="utf-8")
    code, _, err = cli(capsys, "rate", path, "--store", demo / "store", "--out", tmp_path / "o.parquet")
    one_line_error(code, err, str(path), "line 2", "never closed")
    path.write_text(header + row.replace('"unterminated', '"a ""quoted"" cause"'), encoding="utf-8")
    code, _, err = cli(capsys, "rate", path, "--store", demo / "store", "--out", tmp_path / "o.parquet")
    assert code == 0, err


def test_store_compiled_by_an_older_layout(demo, tmp_path, capsys):
    store = tmp_path / "store"
    copy_store(demo / "store", store)
    snap = sorted((store / "snapshots").glob("v*"))[-1]
    env = lmdb.open(str(snap), subdir=False, lock=False)
    with env.begin(write=True) as txn:  # as the layout before package_credit_limit wrote it
        meta = json.loads(bytes(txn.get(b"__meta__")))
        del meta["tables"]["package_credit_limit"]
        txn.delete(b"package_credit_limit")
        txn.put(b"__meta__", json.dumps(meta).encode())
    env.close()
    for args in (["rate", demo / "cdrs.parquet", "--out", tmp_path / "o.parquet"],
                 ["bill", demo / "rated.parquet", "--out", tmp_path / "b.csv"],
                 ["route", "4007824773", "13812345678"]):
        code, _, err = cli(capsys, *args, "--store", store)
        one_line_error(code, err, "older or different layout", "package_credit_limit", "recompile")


@pytest.mark.parametrize("month", ["9999-12", "2200-01", "1969-12", "2026-1", "202610", "2026-10x"])
def test_bill_months_outside_the_edge_range(demo, tmp_path, capsys, month):
    """A month is YYYY-MM from 1970-01 to 2199-12 (9999-12 once ended in an
    OverflowError: it has no next month)."""
    code, _, err = cli(capsys, "bill", demo / "rated.parquet", "--store", demo / "store",
                       "--out", tmp_path / "b.csv", "--month", month)
    one_line_error(code, err, "--month", "1970-01 to 2199-12")


def test_rejects_csv_neutralises_formulas(demo, tmp_path, capsys):
    """A CDR file's call id or bad value that starts like a formula is
    written to the rejects CSV (a file people open in Excel) after a single
    quote; the Parquet rejects keep them as given."""
    import csv

    src = tmp_path / "hostile.csv"
    src.write_text("call_id,caller,number,forwarded_to,start,ivr_answer,agent_answer,end,hangup_cause\n"
                   "=HYPERLINK(\"http://x\"),13812345678,4006573681,13957100001,2026-10-20T10:15:00+08:00,,,"
                   "@SUM(1+1),normal_clearing\n"
                   "-2,13812345678,4006573681,13957100001,2026-10-20T10:16:00+08:00,,,-5,normal_clearing\n",
                   encoding="utf-8")
    for rejects in ("r.csv", "r.parquet"):
        code, _, err = cli(capsys, "rate", src, "--store", demo / "store", "--out", tmp_path / "o.parquet",
                           "--rejects", tmp_path / rejects)
        assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "r.csv", encoding="utf-8")))
    assert [(r["call_id"], r["value"]) for r in rows] == [("'=HYPERLINK(\"http://x\")", "'@SUM(1+1)"), ("-2", "-5")]
    raw = pq.read_table(tmp_path / "r.parquet")
    assert raw.column("call_id").to_pylist() == ["=HYPERLINK(\"http://x\")", "-2"]


@pytest.mark.parametrize("text", ["--5", "²", "١٧٩٤٢٤٠٠٠٠٠٠٠", "9999-01-01", "-5", "99999999999999999999"])
def test_a_time_option_refuses_other_digits_and_times_out_of_range(text):
    """--at / --effective / --from (cli_route.parse_time): '²'.isdigit() is
    true and int() refused it (an internal error); Arabic-Indic digits were
    read as epoch ms (breaker). Only ASCII digits or ISO 8601, 1970..2199."""
    import click

    from rating_core.cli_route import parse_time

    with pytest.raises(click.BadParameter):
        parse_time(text)
    assert parse_time("2026-11-10T00:00:00") == parse_time("1794240000000") == 1_794_240_000_000


@pytest.mark.parametrize("text,option", [("20261201", "--start"), ("20261130", "--at"), ("1794240000", "--from"),
                                         ("179424000000", "--to"), ("2026-W48-1", "--at"), ("2026W481", "--effective")])
def test_a_compact_date_or_short_number_is_not_read_as_1970(text, option):
    """Breaker N11 F3: every all-digit value was epoch ms, so ``--start
    20261201`` (ISO 8601's basic date) became 1970-01-01T13:37 and a new
    account owed 67,617 yuan of rentals since 1970. Now an all-digit value
    is epoch ms only with 13 digits (2001..2286); a shorter one is refused
    naming the option and how to write the date. An ISO week date
    (2026-W48-1, which ``fromisoformat`` reads) is refused too."""
    import click

    from rating_core.cli_route import parse_time

    with pytest.raises(click.BadParameter) as e:
        parse_time(text, option)
    assert e.value.param_hint == option
    if text == "20261201":
        assert "write 2026-12-01; epoch ms has 13 digits" in e.value.format_message()
    assert parse_time("2026-12-01") == parse_time("1796054400000")


def test_subscribe_start_as_a_compact_date_is_refused(demo, tmp_path, capsys):
    """Breaker N11 F3 end to end: ``accounts subscribe --start 20261201``
    stored a package start of 1970 (exit 0); ``pay --at 20261130`` was
    dated 1970; ``billing-from 20261101`` read the same spelling as
    2026-11-01. All three now refuse it (exit 2), naming the option."""
    store = tmp_path / "store"
    shutil.copytree(demo / "store", store)
    code, _out, err = cli(capsys, "accounts", "subscribe", "hangzhou_tea", "bundle_1000", "--start", "20261201",
                          "--store", store)
    one_line_error(code, err, "--start", "20261201: not a time: write 2026-12-01; epoch ms has 13 digits")
    code, _out, err = cli(capsys, "accounts", "pay", "hangzhou_tea", "10", "--at", "20261130", "--store", store)
    one_line_error(code, err, "--at", "write 2026-11-30")
    for spelled in ("20261101", "2026-W49-2"):
        code, _out, err = cli(capsys, "accounts", "billing-from", "hangzhou_tea", spelled, "--store", store)
        one_line_error(code, err, "is not a date YYYY-MM-DD")


def test_input_patterns_take_ascii_digits_only():
    """Breaker N11 F12: a pattern with ``\\d`` takes any script's digits
    (full-width '２', Arabic-Indic '٢') and ``int`` then reads them. Every
    pattern that checks input is written with [0-9]: a catalog clock and
    prefix, a 400 number (catalog, operations, the switch client), a Parquet
    column's fixed offset, a size option."""
    from rating_core.accounts.operations import _NUMBER_400
    from rating_core.catalog import load, routing, schema
    from rating_core.cdr import _FIXED_OFFSET
    from rating400_switch.calls import _NUMBER

    wide = str.maketrans("0123456789", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19")
    for pattern, good in ((_NUMBER_400, "4001234567"), (schema.NUMBER_400, "4001234567"), (_NUMBER, "4001234567"),
                          (load.DIGITS, "138"), (routing._CLOCK, "09:30"), (_FIXED_OFFSET, "+08:00")):
        assert pattern.match(good), pattern
        assert not pattern.match(good.translate(wide)), pattern


@pytest.mark.parametrize("value", ["٣", "３", "+٣"])
def test_a_whole_number_option_takes_ascii_digits_only(value, tmp_path, capsys):
    """Breaker 12-02 F10: click's IntRange reads other scripts' digits
    (`events --after-seq ٣` listed after seq 3); every whole-number option
    takes ASCII digits, as dates and amounts do."""
    from rating_core.cli import main

    for args in (["accounts", "events", "acme", "--after-seq", value, "--store", str(tmp_path)],
                 ["demo", "--cdrs", value, "--dir", str(tmp_path / "d")]):
        with pytest.raises(SystemExit) as e:
            main(args)
        err = capsys.readouterr().err
        assert e.value.code == 2 and "a whole number in ASCII digits (0-9)" in err, (args, err)
