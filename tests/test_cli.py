"""The rating400 command: demo end to end (a real subprocess), bulk rating
of CSV and Parquet, exactly-once commits, catalog versions, user errors
with exit code 2 and no traceback."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rating_core import cdr
from rating_core.bulk import BILLING_COLUMNS, ROW_COLUMNS
from rating_core.cli import cli
from demo_server import copy_store

# The default: the columns a billing system needs, and ``replayed`` (False unless committed before), dry or not.
RATED_COLUMNS = set(ROW_COLUMNS + BILLING_COLUMNS) | {"replayed"}
ALL_COLUMNS = {  # --pass-through: every input column too
    "row", "call_id", "caller", "number", "forwarded_to", "start", "ivr_answer", "agent_answer", "end",
    "hangup_cause", "status", "account", "package", "destination_class", "time_band", "caller_class",
    "caller_city", "caller_province", "caller_carrier", "rate", "billable_seconds", "billed_seconds", "units",
    "charge_minor", "credit_consumed_minor", "bundle_seconds_consumed", "overage_minor", "balance_after",
    "credit_after_minor", "bundle_left_seconds", "replayed",
}


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


def test_demo_into_an_earlier_demo_is_refused_and_changes_nothing(demo):
    d = demo
    before = (d / "rated.parquet").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "rating_core", "demo", "--cdrs", "500", "--dir", str(d)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "holds a demo or a catalog already" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert (d / "rated.parquet").read_bytes() == before


def test_demo_writes_rates_and_summarises(demo, demo_made):
    d, stdout = demo, demo_made[1]
    for name in ("catalog/catalog.yaml", "store/index.lmdb", "cdrs.parquet", "rated.parquet", "rejects.csv"):
        assert (d / name).exists(), name
    m = re.search(r"rows in ([\d,]+) = rated ([\d,]+) \+ rejected ([\d,]+)", stdout)
    rows_in, rated, rejected = (int(g.replace(",", "")) for g in m.groups())
    assert rows_in == 2000 == rated + rejected
    assert "total charge" in stdout and "yuan" in stdout
    table = pq.read_table(d / "rated.parquet")
    assert set(table.column_names) == RATED_COLUMNS and table.num_rows == rated
    assert cdr.read_table(d / "rejects.csv").num_rows == rejected
    # Each rated row names its input row (counted from 1, as a reject does), so a billing
    # system ties it back even when call ids repeat or are missing.
    cdrs = pq.read_table(d / "cdrs.parquet")
    assert table.column_names[:2] == ["file", "row"]
    assert {Path(f).name for f in table.column("file").to_pylist()} == {"cdrs.parquet"}  # the demo was made elsewhere, then copied
    rows = np.array(table.column("row").to_pylist())
    assert cdrs.column("call_id").take(pa.array(rows - 1)).to_pylist() == table.column("call_id").to_pylist()


def test_rate_csv_and_parquet_alike(demo, tmp_path):
    d = demo
    cdrs = pq.read_table(d / "cdrs.parquet")
    cdr.write_table(cdrs, tmp_path / "cdrs.csv")  # times become ISO text with offsets
    r1 = run("rate", d / "cdrs.parquet", "--store", d / "store", "--out", tmp_path / "a.parquet", "--json")
    r2 = run("rate", tmp_path / "cdrs.csv", "--store", d / "store", "--out", tmp_path / "b.csv",
             "--rejects", tmp_path / "b-rejects.csv", "--json")
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    s1, s2 = json.loads(r1.output), json.loads(r2.output)
    assert s1["rows_in"] == s2["rows_in"] == 2000
    assert (s1["rated"], s1["charge_minor"]) == (s2["rated"], s2["charge_minor"])
    a = pq.read_table(tmp_path / "a.parquet")
    b = cdr.read_table(tmp_path / "b.csv")
    assert set(a.column_names) == set(b.column_names) == RATED_COLUMNS
    assert a.column("charge_minor").to_pylist() == [int(x) for x in b.column("charge_minor").to_pylist()]
    assert (tmp_path / "a.rejects.csv").exists() and (tmp_path / "b-rejects.csv").exists()
    rejects = cdr.read_table(tmp_path / "b-rejects.csv")
    assert rejects.column_names == ["file", "row", "call_id", "field", "reason", "value", "code"]
    assert set(rejects.column("file").to_pylist()) == {str(tmp_path / "cdrs.csv")}


def test_several_inputs_number_rows_through(demo, tmp_path):
    """Rated (--pass-through) and rejected rows name their input file and
    count data rows from 1 within it: together they are every row of each."""
    d = demo
    cdrs = pq.read_table(d / "cdrs.parquet")
    pq.write_table(cdrs.slice(0, 1200), tmp_path / "one.parquet")
    cdr.write_table(cdrs.slice(1200), tmp_path / "two.csv")
    r = run("rate", tmp_path / "one.parquet", tmp_path / "two.csv", "--store", d / "store",
            "--out", tmp_path / "all.parquet", "--json", "--pass-through")
    assert r.exit_code == 0, r.output
    rated = pq.read_table(tmp_path / "all.parquet")
    assert set(rated.column_names) == ALL_COLUMNS | {"file"} and rated.column_names[0] == "file"
    rejects = cdr.read_table(tmp_path / "all.rejects.csv")
    sizes = {str(tmp_path / "one.parquet"): 1200, str(tmp_path / "two.csv"): 800}
    seen = {f: [] for f in sizes}
    for t in (rated, rejects):
        for f, row in zip(t.column("file").to_pylist(), t.column("row").to_pylist()):
            seen[f].append(int(row))
    assert {f: sorted(rows) for f, rows in seen.items()} == {f: list(range(1, n + 1)) for f, n in sizes.items()}


def test_commit_is_exactly_once(demo, tmp_path):
    d = demo
    args = ("rate", d / "cdrs.parquet", "--store", d / "store", "--commit", "--json")
    first = json.loads(run(*args, "--out", tmp_path / "1.parquet").stdout)  # stderr: its warnings
    second = json.loads(run(*args, "--out", tmp_path / "2.parquet").stdout)
    assert first["replayed"] == 0 and first["charge_minor"] > 0
    assert second["replayed"] == second["rated"] == first["rated"] and second["charge_minor"] == 0
    # The replayed rows keep their stored charges: the summary says how much (newcomer A11).
    assert second["replayed_charge_minor"] == first["charge_minor"] and first["replayed_charge_minor"] == 0
    shown = run("rate", d / "cdrs.parquet", "--store", d / "store", "--commit", "--out", tmp_path / "3.parquet").output
    assert "newly charged" in shown and "0.00 yuan" in shown and "total charge" not in shown
    assert (f"{first['rated']:,} calls, their charges {first['charge_yuan']} yuan (as committed, or as rerated "
            "since)") in shown
    again = pq.read_table(tmp_path / "2.parquet")
    assert set(again.column_names) == RATED_COLUMNS
    assert all(again.column("replayed").to_pylist())
    assert again.column("charge_minor").to_pylist() == pq.read_table(tmp_path / "1.parquet").column("charge_minor").to_pylist()


def test_commit_of_a_call_id_committed_with_other_content_is_a_reject(demo, tmp_path):
    import datetime as dt

    import pyarrow as pa

    d = demo
    opts = ("--store", d / "store", "--commit", "--json")
    cdrs = pq.read_table(d / "cdrs.parquet").slice(0, 50)
    pq.write_table(cdrs, tmp_path / "first.parquet")
    assert run("rate", tmp_path / "first.parquet", *opts, "--out", tmp_path / "1.parquet").exit_code == 0
    committed = pq.read_table(tmp_path / "1.parquet").column("call_id").to_pylist()
    # The switch re-sends the file with one committed call's end a minute later: not a retransmission.
    rows = cdrs.to_pylist()
    k = next(i for i, r in enumerate(rows) if r["call_id"] in committed)
    end = rows[k]["end"]
    rows[k]["end"] = end + (dt.timedelta(minutes=1) if isinstance(end, dt.datetime) else 60_000)
    pq.write_table(pa.Table.from_pylist(rows, schema=cdrs.schema), tmp_path / "again.parquet")
    r = run("rate", tmp_path / "again.parquet", *opts, "--out", tmp_path / "2.parquet")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    # The first commit stands: nothing charged, every other committed call replayed.
    assert summary["charge_minor"] == 0 and summary["replayed"] == summary["rated"] == len(committed) - 1
    reason = ("call id committed before with a different value here; the first commit stands "
              "(correct a committed call by rerating)")
    assert summary["rejects_by_reason"][f"end: {reason}"] == 1
    rejects = cdr.read_table(tmp_path / "2.rejects.csv").to_pylist()
    assert [(x["call_id"], x["field"]) for x in rejects if x["reason"] == reason] == [(rows[k]["call_id"], "end")]


def test_catalog_commands(demo, tmp_path):
    d = demo
    store = tmp_path / "store"
    r = run("catalog", "compile", d / "catalog" / "catalog.yaml", "--store", store)
    assert r.exit_code == 0 and "version 1" in r.output
    r = run("catalog", "activate", "1", "--store", store)
    assert r.exit_code == 0
    r = run("catalog", "list", "--store", store)
    assert r.exit_code == 0 and "demo-reseller" in r.output
    # The compile time in Asia/Shanghai like every time printed (newcomer N9
    # C9: +00:00); the store keeps UTC.
    import datetime as dt
    import re

    from rating_core.store import Store

    utc = Store(store).versions()[0]["compiled_at"]
    local = dt.datetime.fromisoformat(utc).astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    assert utc.endswith("+00:00") and f"compiled {local} " in r.output and "+00:00" not in r.output
    r = run("catalog", "show", "--store", store)
    assert r.exit_code == 0 and "prepaid_3000_3y" in r.output and "accounts: 28" in r.output
    assert f"compiled {local}," in r.output and re.search(r"\+08:00, region data", r.output)
    r = run("catalog", "activate", "7", "--store", store)
    assert r.exit_code == 2 and "no catalog version 7" in r.output


def test_bad_catalog_exits_2_naming_file_record_field(demo, tmp_path):
    d = demo
    text = (d / "catalog" / "catalog.yaml").read_text()
    bad = tmp_path / "catalog"
    bad.mkdir()
    for name in ("destination_prefixes.csv", "numbers.csv"):
        (bad / name).write_text((d / "catalog" / name).read_text())
    (bad / "catalog.yaml").write_text(text.replace("std_015: {tiers: [{price: 0.15}]}",
                                                   "std_015: {tiers: [{price: 0.123456}]}"))
    proc = subprocess.run([sys.executable, "-m", "rating_core", "catalog", "compile", str(bad / "catalog.yaml"),
                           "--store", str(tmp_path / "store")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert re.search(r"catalog\.yaml: rates\.std_015\.tiers\[0\]\.price: .*finer than", proc.stderr), proc.stderr
    # References are checked too, every problem listed.
    text = text.replace("package: payg_6s", "package: no_such_package").replace("band: peak}", "band: rush}")
    (bad / "catalog.yaml").write_text(text)
    r = run("catalog", "compile", bad / "catalog.yaml", "--store", tmp_path / "store2")
    assert r.exit_code == 2
    assert "catalog.yaml: accounts.xinda_insurance.package: unknown package 'no_such_package'" in r.output
    assert "catalog.yaml: packages.peak_offpeak.rates[1].band: unknown time band 'rush'" in r.output


def test_missing_store_exits_2(tmp_path, demo):
    d = demo
    r = run("rate", d / "cdrs.parquet", "--store", tmp_path / "nowhere", "--out", tmp_path / "x.parquet")
    assert r.exit_code == 2 and "not a catalog store" in r.output


def test_input_without_a_required_column_exits_2(demo, tmp_path):
    d = demo
    (tmp_path / "in.csv").write_text("call_id,caller,number,forwarded_to,start\nx,13812345678,4001234567,13912345678,0\n")
    r = run("rate", tmp_path / "in.csv", "--store", d / "store", "--out", tmp_path / "o.csv")
    assert r.exit_code == 2 and "in.csv: line 1: column end: no such column" in r.output, r.output


def test_accounts_on_a_store_whose_accounts_are_still_the_catalogs_says_how_to_import(demo, tmp_path):
    d = demo
    store = tmp_path / "store"
    copy_store(d / "store", store)
    r = run("accounts", "balance", "hangzhou_tea", "--store", store)
    assert r.exit_code == 2 and "no account 'hangzhou_tea'" in r.output and "rating400 accounts import" in r.output


def test_route_says_a_switch_is_granted_one_quota_at_a_time(demo):
    d = demo
    r = run("route", "4008593431", "13812345678", "--keys", "1", "--store", d / "store")
    assert r.exit_code == 0 and "credit allows " in r.output, r.output
    # What the switch is granted, said as such (newcomer8 F16: "credit allows 240 s; a switch's Authorize
    # grants 3600 s at a time" while Authorize granted 240 s): the credit's seconds below one quota, else a quota.
    seconds = re.search(r"credit allows (\d+) s", r.output)  # else "any length": no limit below a quota
    allows = int(seconds.group(1)) if seconds else None
    said = (f"a switch's Authorize grants {allows} s (at most 3600 s at a time, extended by interim events)"
            if allows is not None and allows < 3600 else "a switch's Authorize grants at most 3600 s at a time, extended by interim events")
    assert said in " ".join(r.output.split()), r.output
    # Before a key, the menu: no limit yet (newcomer: 'any length' there, 86400 s after a key).
    r = run("route", "4008593431", "13812345678", "--store", d / "store")
    assert r.exit_code == 0 and "the duration limit is set once a key is pressed" in r.output, r.output
    assert "86400 s;" not in r.output


def test_route_names_the_grant_when_credit_allows_less_than_a_quota():
    """newcomer8 F16: credit for 240 s; the switch's Authorize is granted
    240 s, and the line says so, the quota (3600 s) as its bound."""
    from rating_core.cli_route import render
    from rating_core.router import Decision

    d = Decision(allow=True, reason="ok", billing_start="ivr_answer", limit="credit", max_duration_seconds=240,
                 catalog_version=1)
    line = render("4006431271", "13812345678", 1_780_000_000_000, d)[-1]
    assert line == ("ALLOW  billing starts at ivr_answer; credit allows 240 s; a switch's Authorize grants 240 s "
                    "(at most 3600 s at a time, extended by interim events)"), line


def test_dataset_with_a_file_missing_a_column_names_it_and_writes_nothing(demo, tmp_path):
    """Breaker finding: the second file's missing column was found mid-job,
    named no file, and rated rows and rejects of the first were left behind."""
    import pyarrow.parquet as pq

    d = demo
    t = pq.read_table(d / "cdrs.parquet").slice(0, 50)
    (tmp_path / "ds").mkdir()
    pq.write_table(t.slice(0, 25), tmp_path / "ds" / "a.parquet")
    pq.write_table(t.slice(25).drop_columns(["end"]), tmp_path / "ds" / "b.parquet")
    r = run("rate", tmp_path / "ds", "--store", d / "store", "--out", tmp_path / "o.parquet",
            "--rejects", tmp_path / "o.csv")
    assert r.exit_code == 2 and "b.parquet: column end: no such column" in r.output, r.output
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("commit", [False, True], ids=["dry", "commit"])
def test_each_reject_names_its_input_file_and_row_within_it(demo, tmp_path, commit):
    """Two CSV inputs, a bad cell in each: the rejects file names the file
    and the data row within it (from 1), dry and committed alike."""
    d = demo
    store = tmp_path / "store"
    copy_store(d / "store", store)  # a commit writes the ledger: not the module's demo
    cdrs = pq.read_table(d / "cdrs.parquet").slice(0, 6)
    ok = cdrs.column("call_id").to_pylist()
    a, b = cdrs.slice(0, 3).to_pylist(), cdrs.slice(3, 3).to_pylist()
    a[1]["end"], b[2]["forwarded_to"] = None, "not a number"
    import pyarrow as pa

    cdr.write_table(pa.Table.from_pylist(a, cdrs.schema), tmp_path / "a.csv")
    cdr.write_table(pa.Table.from_pylist(b, cdrs.schema), tmp_path / "b.csv")
    r = run("rate", tmp_path / "a.csv", tmp_path / "b.csv", "--store", store, "--out", tmp_path / "r.parquet",
            "--rejects", tmp_path / "rejects.csv", "--json", *(["--commit"] if commit else []))
    assert r.exit_code == 0, r.output
    got = [(x["file"], int(x["row"]), x["call_id"], x["field"])
           for x in cdr.read_table(tmp_path / "rejects.csv").to_pylist() if x["reason"] != "duplicate"]
    assert (str(tmp_path / "a.csv"), 2, ok[1], "end") in got
    assert (str(tmp_path / "b.csv"), 3, ok[5], "forwarded_to") in got


def test_an_input_column_named_file_is_refused_not_replaced(demo, tmp_path):
    """A switch's ``file`` column (a recording) beside the rated output's
    ``file`` (the input file): refused before rating, naming the file and
    the column (README "Pass-through columns"); renamed, both are kept."""
    d = demo
    t = pq.read_table(d / "cdrs.parquet").slice(0, 5)
    import pyarrow as pa

    pq.write_table(t.append_column("file", pa.array(["x.wav"] * 5)), tmp_path / "in.parquet")
    r = run("rate", tmp_path / "in.parquet", "--store", d / "store", "--out", tmp_path / "o.parquet", "--json",
            "--pass-through")
    assert r.exit_code == 2 and f"{tmp_path / 'in.parquet'}: with --pass-through, column(s) file would be" in r.output
    assert not (tmp_path / "o.parquet").exists()
    pq.write_table(t.append_column("recording", pa.array(["x.wav"] * 5)), tmp_path / "in.parquet")
    r = run("rate", tmp_path / "in.parquet", "--store", d / "store", "--out", tmp_path / "o.parquet", "--json",
            "--pass-through")
    assert r.exit_code == 0, r.output
    out = pq.read_table(tmp_path / "o.parquet")
    assert set(out.column("file").to_pylist()) == {str(tmp_path / "in.parquet")}
    assert set(out.column("recording").to_pylist()) == {"x.wav"}


def test_compile_hints_a_misspelt_routing_region(demo, tmp_path):
    """Newcomer: an unknown region in a routing plan got no "did you mean"
    at compile, where the accounts operations gave one."""
    import shutil

    d = demo
    shutil.copytree(d / "catalog", tmp_path / "cat")
    y = tmp_path / "cat" / "catalog.yaml"
    y.write_text(y.read_text(encoding="utf-8").replace("Hebei,", "Hebeii,", 1), encoding="utf-8")
    r = run("catalog", "compile", y, "--store", tmp_path / "store")
    assert r.exit_code == 2 and "unknown region 'Hebeii'" in r.output and "did you mean 'Hebei'?" in r.output, r.output
