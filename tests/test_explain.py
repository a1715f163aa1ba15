"""Charge explanations: the walk they show gives the kernel's own numbers
(random catalogs and calls), and `rating400 explain` prints it in English
and Chinese from a rated file or a committed call."""
from __future__ import annotations

import json
from fractions import Fraction
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rating_core import layout
from rating_core.cdr import RATED_MINOR_NAMES
from rating_core.catalog import load_catalog
from rating_core.cli import cli
from rating_core.compile import compile_catalog
from rating_core.explain import explain
from rating_core.money import exact_yuan
from rating_core.kernels import rating

from engines import kernel_state
from rating_core.reference import opening_balances
from strategies import calls, catalogs, cdr_columns


def _name(meta, kind, v):
    return None if v < 0 else meta[kind][v]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_every_rated_call_is_explained_with_the_kernels_numbers(data):
    catalog = data.draw(catalogs(), "catalog")
    call_list = data.draw(calls(catalog), "calls")
    tables, meta = compile_catalog(catalog)
    out = rating.rate(tables, cdr_columns(call_list), kernel_state(tables, meta, opening_balances(catalog)), 1)
    snapshot = SimpleNamespace(tables=tables, meta=meta)
    for i, c in enumerate(call_list):
        cc = int(out["caller_class"][i])
        record = {
            "call_id": f"c{i}", "number": c.number, "start": c.start_ms, "ivr_answer": c.ivr_answer_ms,
            "agent_answer": c.agent_answer_ms, "end": c.end_ms, "status": layout.RATE_STATUS[out["status"][i]],
            "account": _name(meta, "accounts", out["account"][i]), "package": _name(meta, "packages", out["package"][i]),
            "destination_class": _name(meta, "destination_classes", out["destination_class"][i]),
            "caller_class": None if cc < 0 else layout.CALLER_CLASS[cc], "rate": _name(meta, "rates", out["rate"][i]),
            **{RATED_MINOR_NAMES.get(k, k): int(out[k][i])  # the rated table's names
               for k in ("billable_seconds", "billed_seconds", "units", "charge", "credit_consumed",
                         "bundle_seconds_consumed", "overage", "balance_after")},
        }
        x = explain(snapshot, record)
        if record["status"] != "rated":
            continue
        assert x.consistent, (x.note, record, x.as_dict())
        assert x.billable_seconds == record["billable_seconds"]
        assert x.rule is not None and x.rule["rate"] == record["rate"]
        for lang in ("en", "zh"):
            assert x.call_id in x.text(lang)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_explain_a_demo_call_from_a_rated_file(demo, tmp_path):
    rated = tmp_path / "rated.parquet"
    assert run("rate", demo / "cdrs.parquet", "--store", demo / "store", "--out", rated,
               "--pass-through").exit_code == 0
    table = pq.read_table(rated).to_pylist()
    call = next(r for r in table if r["billed_seconds"] > 60 and r["ivr_answer"] is None)
    result = run("explain", call["call_id"], "--store", demo / "store", "--rated", rated, "--lang", "both")
    assert result.exit_code == 0, result.output
    text = result.output
    assert f"Call {call['call_id']}" in text and f"package {call['package']}" in text
    assert "whole seconds" in text and "Rounded once" in text and "exact total" in text
    assert "计费时长" in text and "统一取整一次" in text  # and in Chinese
    # One name each (newcomer N9 C3): billable = the measured time in whole
    # seconds, billed = rounded up to whole increments; never "billed time"
    # for the measured one.
    assert "Billable seconds: " in text and "Billed time" not in text
    assert f"{call['billed_seconds']} billed seconds (the billable seconds rounded up to whole increments)" in text
    assert "可计费时长：" in text and f"计费时长 {call['billed_seconds']} 秒" in text
    assert f"Charged: {exact_yuan(call['charge_minor'])} yuan" in text  # 2 decimals (4 only for a fraction of a fen)
    js = json.loads(run("explain", call["call_id"], "--store", demo / "store", "--rated", rated, "--json").output)
    assert js["consistent"] and js["charge_minor"] == call["charge_minor"] and js["units"] == call["units"]
    # Every money field of the record says its unit, as in the rated file.
    assert {"credit_consumed_minor", "overage_minor"} <= set(js) and not {"charge", "credit_consumed", "overage"} & set(js)
    # explain only reads: a store that never had a ledger (the catalog
    # alone) explains the rated file alike and still has none after; a
    # committed call there is an error that says to give the rated file.
    bare = tmp_path / "bare"
    shutil.copytree(demo / "store", bare, ignore=shutil.ignore_patterns("ledger.lmdb*", "live.lmdb*"))
    again = json.loads(run("explain", call["call_id"], "--store", bare, "--rated", rated, "--json").output)
    assert again["charge_minor"] == call["charge_minor"] and not (bare / "ledger.lmdb").exists()
    none = run("explain", call["call_id"], "--store", bare)
    assert none.exit_code == 2 and "no ledger" in none.output and "--rated" in none.output
    assert not (bare / "ledger.lmdb").exists()


def test_explain_a_call_from_a_rated_csv(demo, tmp_path):
    """A rated CSV (times written as ``2026-11-02 10:00:00.000+0800``)
    explains as the same rated Parquet does (it was an internal error); a
    time that is not one is an error naming its field."""
    both = {}
    for ext in ("parquet", "csv"):
        rated = tmp_path / f"rated.{ext}"
        assert run("rate", demo / "cdrs.parquet", "--store", demo / "store", "--out", rated,
                   "--pass-through").exit_code == 0
        both[ext] = rated
    call = next(r for r in pq.read_table(both["parquet"]).to_pylist() if r["billed_seconds"] > 60)
    explained = [json.loads(run("explain", call["call_id"], "--store", demo / "store", "--rated", both[ext],
                                "--json").output) for ext in ("parquet", "csv")]
    assert explained[0] == explained[1] and explained[0]["charge_minor"] == call["charge_minor"]
    import csv

    with open(both["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    next(r for r in rows if r["call_id"] == call["call_id"])["start"] = "not-a-time"
    with open(both["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    bad = run("explain", call["call_id"], "--store", demo / "store", "--rated", both["csv"])
    assert bad.exit_code == 2 and "start: row " in bad.output and ": not a time (" in bad.output, bad.output


@pytest.fixture(scope="module")
def rated_csv(demo, tmp_path_factory):
    """The demo's CDRs rated to a CSV (``--pass-through``: with their
    times), and a call with an agent answer: (path, the call's CDR)."""
    rated = tmp_path_factory.mktemp("rated_csv") / "rated.csv"
    assert run("rate", demo / "cdrs.parquet", "--store", demo / "store", "--out", rated,
               "--pass-through").exit_code == 0
    return rated, next(r for r in pq.read_table(demo / "cdrs.parquet").to_pylist() if r["agent_answer"] is not None)


def _rated_csv_with(path, call_id, **cells):
    """The rated CSV ``path`` with ``cells`` of ``call_id``'s row replaced;
    -> that row's data row (from 1)."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    at = next(i for i, r in enumerate(rows) if r["call_id"] == call_id)
    rows[at].update(cells)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return at + 1


def test_a_rated_csv_s_times_are_read_as_the_edge_reads_a_cdr_file_s(demo, rated_csv, tmp_path):
    """explain reads a rated file's time text with the edge's parser
    (``cdr.parse_times``): a form the rater reads (an offset written
    ``+08:00``, ``+0800``, ``+08`` or ``Z``, epoch ms) explains the same
    call, and one it refuses (``20261102T100000+0800``, a space before the
    offset, a date alone) is an error naming the file, the data row and the
    field, with the edge's reason: explain had its own parser, which took
    them (and said neither file nor row for a time it refused)."""
    import datetime as dt

    import pyarrow as pa

    from rating_core.cdr import REASONS, NOT_A_TIME, parse_times

    rated, call = tmp_path / "rated.csv", rated_csv[1]
    shutil.copy(rated_csv[0], rated)
    start_ms = int(call["start"].timestamp() * 1000)
    local, utc = call["start"].astimezone(layout.LOCAL_TZ), call["start"].astimezone(dt.timezone.utc)
    explained = json.loads(run("explain", call["call_id"], "--store", demo / "store", "--rated", rated,
                               "--json").output)
    ms3 = f".{local.microsecond // 1000:03d}"
    read = {f"{local:%Y-%m-%d %H:%M:%S}{ms3}+08:00", f"{local:%Y-%m-%dT%H:%M:%S}{ms3}+0800",
            f"{local:%Y-%m-%d %H:%M:%S}{ms3}+08", f"{utc:%Y-%m-%dT%H:%M:%S}{ms3}Z", str(start_ms)}
    refused = {f"{local:%Y%m%dT%H%M%S}+0800", f"{local:%Y-%m-%d %H:%M:%S} +08:00", f"{local:%Y-%m-%d}"}
    for text in sorted(read | refused):
        ms, present, valid = parse_times(pa.array([text]))
        assert bool(valid[0]) == (text in read) and (text not in read or ms[0] == start_ms), text
        row = _rated_csv_with(rated, call["call_id"], start=text)
        out = run("explain", call["call_id"], "--store", demo / "store", "--rated", rated, "--json")
        if text in read:
            assert out.exit_code == 0 and json.loads(out.output) == explained, (text, out.output)
        else:
            assert out.exit_code == 2 and "Traceback" not in out.output, (text, out.output)
            assert out.output.strip() == f"error: {rated}: start: row {row}: {REASONS[NOT_A_TIME]}: {text!r}", \
                out.output


def test_a_bad_time_in_a_rated_file_names_file_row_and_field(demo, rated_csv, tmp_path):
    """Not a time, and a time outside the edge's range (an epoch-ms
    number past 2199: explain crashed on it, an IndexError past the
    calendar table): one error line naming the file, the data row and the
    field, with the edge's reason, exit 2."""
    from rating_core.cdr import REASONS, NOT_A_TIME, TIME_OUT_OF_RANGE

    rated, call = rated_csv
    for field, text, why in (("end", "yesterday", NOT_A_TIME), ("agent_answer", "999999999999999", TIME_OUT_OF_RANGE)):
        again = tmp_path / f"{field}.csv"
        shutil.copy(rated, again)
        row = _rated_csv_with(again, call["call_id"], **{field: text})
        out = run("explain", call["call_id"], "--store", demo / "store", "--rated", again)
        assert out.exit_code == 2 and "Traceback" not in out.output, out.output
        assert out.output.strip() == f"error: {again}: {field}: row {row}: {REASONS[why]}: {text!r}", out.output


@pytest.mark.parametrize("field, text, why", [
    ("billable_seconds", "9223372036854775807", "9223372036854775807 is outside [0, 172800] seconds"),
    ("billable_seconds", "abc", "'abc' is not a whole number (seconds)"),
    ("billable_seconds", "-1", "-1 is outside [0, 172800] seconds"),
    ("charge_minor", "", "missing"),
])
def test_a_bad_number_in_a_rated_file_is_refused_as_bill_refuses_it(demo, rated_csv, tmp_path, field, text, why):
    """explain reads a rated row's numbers through billing's check
    (``calls.rated_numbers``): one error line naming the file, the data row
    and the field, exit 2, the one bill gives. It took -1 s and an empty
    cell (as 0), 'abc' was an internal error, and 2^63-1 s looped forever
    in ``_walk`` eating memory (so: a subprocess with a timeout)."""
    rated, call = rated_csv
    again = tmp_path / "bad.csv"
    shutil.copy(rated, again)
    row = _rated_csv_with(again, call["call_id"], **{field: text})
    expected = f"error: {again}: {field}: row {row}: {why} on a rated row"
    proc = subprocess.run([sys.executable, "-m", "rating_core", "explain", call["call_id"], "--store",
                           str(demo / "store"), "--rated", str(again)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == expected, proc.stderr
    bill = run("bill", again, "--store", demo / "store", "--out", tmp_path / "bill.json")
    assert bill.exit_code == 2 and bill.output.strip() == expected, bill.output


def test_walk_refuses_seconds_beyond_a_rated_row_s_bound():
    """``_walk`` itself refuses a duration past ``MAX_ROW_SECONDS`` (no
    caller can make it loop: at 2^62 s its tiers' end stopped moving)."""
    from rating_core.billing.calls import MAX_ROW_SECONDS
    from rating_core.errors import InvalidInput
    from rating_core.explain import _walk

    for seconds in (MAX_ROW_SECONDS + 1, 1 << 62, -1):
        with pytest.raises(InvalidInput, match="billable_seconds"):
            _walk(None, None, None, seconds)


@pytest.fixture(scope="module")
def committed(demo, tmp_path_factory):
    """The demo's CDRs committed to the ledger; the rated rows."""
    out = tmp_path_factory.mktemp("committed") / "c.parquet"
    assert run("rate", demo / "cdrs.parquet", "--store", demo / "store", "--commit", "--out", out).exit_code == 0
    return pq.read_table(out).to_pylist()


def test_explain_a_committed_call_and_errors(demo, committed):
    call_id = committed[0]["call_id"]
    result = run("explain", call_id, "--store", demo / "store", "--lang", "en")
    assert result.exit_code == 0 and f"Call {call_id}" in result.output and "通话" not in result.output
    missing = run("explain", "no-such-call", "--store", demo / "store")
    assert missing.exit_code == 2 and "call_id" in missing.output and "Traceback" not in missing.output
    # A call id a shell passes as bytes that are not UTF-8, or with a control
    # character: one line naming CALL_ID, exit 2, never an internal error (breaker finding).
    for bad in (b"x\x9b31my", b"x\x1b[2Jy"):
        proc = subprocess.run([sys.executable, "-m", "rating_core", "explain", bad, "--store", str(demo / "store")],
                              capture_output=True, timeout=120)
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 2 and "call_id" in err and "internal error" not in err and "Traceback" not in err


def test_explain_charge_over_grpc_matches_the_cli(demo, committed, tmp_path):
    import grpc

    from rating400.v1 import explain_pb2, explain_pb2_grpc
    from demo_server import Server

    call = next(r for r in committed if r["units"] > 1)
    cli_json = json.loads(run("explain", call["call_id"], "--store", demo / "store", "--json").output)
    cli_zh = run("explain", call["call_id"], "--store", demo / "store", "--lang", "zh").output
    server = Server(demo / "store", tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = explain_pb2_grpc.ExplainServiceStub(channel)
            resp = stub.ExplainCharge(explain_pb2.ExplainChargeRequest(call_id=call["call_id"], lang="zh"), timeout=30)
            assert resp.text.strip() == cli_zh.strip()
            # The demo catalog's labels.zh, as on a Chinese statement: the package's and the band's Chinese names.
            labels = load_catalog(demo / "catalog" / "catalog.yaml").labels["zh"]
            assert labels[cli_json["package"]] in cli_zh and cli_json["package_name"] not in cli_zh
            assert f"时段 {labels[cli_json['bands'][0]]}" in cli_zh
            assert (resp.charge_minor, resp.units, resp.billed_seconds, resp.consistent) == (
                cli_json["charge_minor"], cli_json["units"], cli_json["billed_seconds"], True)
            # Every money field under the --json's name, 1/10000 yuan (F11),
            # and the balance after in its own unit, unset where there is none.
            for name in ("credit_consumed_minor", "overage_minor", "connect_fee_minor"):
                assert getattr(resp, name) == cli_json[name], name
            # gRPC keeps "n/d" strings (explain.proto); --json an int where whole (newcomer8 F14).
            assert Fraction(resp.exact_total_minor) == Fraction(cli_json["exact_total_minor"]
                                                                if cli_json["exact_total_minor"] is not None
                                                                else cli_json["exact_total_fraction"])
            for name in ("credit_after_minor", "bundle_left_seconds"):
                assert (getattr(resp, name) if resp.HasField(name) else None) == cli_json[name], name
            assert [(s.price_minor, Fraction(s.cost_minor)) for s in resp.steps] == [
                (r["price_minor"], Fraction(r["cost_minor"] if r["cost_minor"] is not None else r["cost_fraction"]))
                for r in cli_json["runs"]]
            # The deprecated unitless fields keep the same values for older clients.
            assert (resp.charge, resp.credit_consumed, resp.overage, resp.connect_fee, resp.exact_total) == (
                resp.charge_minor, resp.credit_consumed_minor, resp.overage_minor, resp.connect_fee_minor,
                resp.exact_total_minor)
            assert [(s.price, s.cost) for s in resp.steps] == [(s.price_minor, s.cost_minor) for s in resp.steps]
            assert resp.balance_after == (cli_json["credit_after_minor"] or cli_json["bundle_left_seconds"] or 0)
            for bad, field in [(explain_pb2.ExplainChargeRequest(), "call_id"),
                               (explain_pb2.ExplainChargeRequest(call_id="nope"), "call_id"),
                               (explain_pb2.ExplainChargeRequest(call_id=call["call_id"], lang="fr"), "lang")]:
                with pytest.raises(grpc.RpcError) as err:
                    stub.ExplainCharge(bad, timeout=30)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.value.details()
    finally:
        server.stop()


@pytest.mark.parametrize("field, text", [("destination_class", "mobile "), ("caller_class", "local "),
                                         ("rate", "no_such_rate")])
def test_a_name_the_tariff_does_not_know_is_a_note_not_an_internal_error(demo, rated_csv, tmp_path, field, text):
    """Breaker: an edited class in a rated CSV was KeyError / ValueError
    (internal errors); it is the explanation's note that the record does not
    match this catalog version, as an unknown package is, exit 0."""
    rated, call = rated_csv
    again = tmp_path / "edited.csv"
    shutil.copy(rated, again)
    _rated_csv_with(again, call["call_id"], **{field: text})
    out = run("explain", call["call_id"], "--store", demo / "store", "--rated", again, "--lang", "en")
    assert out.exit_code == 0 and "Traceback" not in out.output, out.output
    assert f"Note: {field} {text!r} is not in this catalog version" in out.output, out.output


@pytest.mark.parametrize("field, text, code", [("units", "abc", 2), ("units", "1e400", 2), ("rate", "", 0)])
def test_an_edited_count_or_an_empty_rate_is_no_internal_error(demo, rated_csv, tmp_path, field, text, code):
    """Breaker 2: ``units`` of 'abc' / 1e400 was a ValueError and an empty
    ``rate`` a KeyError, both "internal error"; the first is now the
    file's error naming row and ``units`` (checked as bill checks it,
    breaker N11 F16), the second is the missing-rate note, exit 0."""
    rated, call = rated_csv
    again = tmp_path / "edited.csv"
    shutil.copy(rated, again)
    row = _rated_csv_with(again, call["call_id"], **{field: text})
    out = run("explain", call["call_id"], "--store", demo / "store", "--rated", again, "--lang", "en")
    assert out.exit_code == code and "internal error" not in out.output and "Traceback" not in out.output, out.output
    if code:
        assert out.output.strip() == (f"error: {again}: units: row {row}: {text!r} is not a whole number "
                                      "(increments) on a rated row"), out.output


@pytest.mark.parametrize("field, text, says", [
    ("account", "", "account: row {row}: missing on a rated row"),
    ("package", "", "package: row {row}: missing on a rated row"),
    ("number", "", "number: row {row}: missing on a rated row"),
    ("number", "=1", "number: row {row}: '=1': not a 400 number (400 + 7 digits)"),
    ("status", "weird", "status: row {row}: 'weird' is not a rating status (rated, unknown_number"),
    ("status", "", "status: row {row}: missing"),
    ("start", "", "start: row {row}: missing"),
    # Breaker 3 F1: explain ended in an IndexError, bill wrote statements up to 2087
    ("start", "2087-01-01 00:00:00+0800", "start: row {row}: start outside the calendar table (2000-01-01 .. 2060-12-31, Asia/Shanghai days): '2087-01-01 00:00:00+0800'"),
    ("start", "1999-12-31 23:59:59+0800", "start: row {row}: start outside the calendar table (2000-01-01 .. 2060-12-31, Asia/Shanghai days): '1999-12-31 23:59:59+0800'"),
])
def test_an_emptied_or_edited_name_is_the_file_s_error_as_bill_says_it(demo, rated_csv, tmp_path, field, text, says):
    """Breaker 2 F3: an emptied account or package explained as "Account
    None ... not answered (no None in the CDR)", status 'weird' as "Not
    charged: weird", a missing start as an error naming neither file nor
    row. explain --rated checks the row as bill does (``calls.from_rated_table``,
    the one check): one line naming file, row and field, exit 2, and bill
    refuses the same file with the same line (an emptied status dropped
    the call's charge from the bill unseen)."""
    rated, call = rated_csv
    again = tmp_path / "edited.csv"
    shutil.copy(rated, again)
    row = _rated_csv_with(again, call["call_id"], **{field: text})
    line = f"{again}: " + says.format(row=row)
    out = run("explain", call["call_id"], "--store", demo / "store", "--rated", again, "--lang", "en")
    assert out.exit_code == 2 and line in out.output and "None" not in out.output, out.output
    billed = run("bill", again, "--store", demo / "store", "--out", tmp_path / "bill.csv")
    assert billed.exit_code == 2 and line in billed.output, billed.output


@pytest.mark.parametrize("field, text", [("number", "4000000001")])
def test_a_package_or_number_this_version_lacks_is_the_note_alone(demo, rated_csv, tmp_path, field, text):
    """Breaker 2 F3: after the note on a package the catalog version lacks,
    the explanation went on with "(None): None." and "not answered (no
    None in the CDR)" for an answered, charged call, and the note on a
    number did not say it was the number. The note names the field and
    value, and nothing that cannot be told follows it. (A rated file's
    package the version lacks is now the file's error, as bill says it:
    test_rated_rows_checked; the note remains for a committed record.)"""
    rated, call = rated_csv
    again = tmp_path / "edited.csv"
    shutil.copy(rated, again)
    _rated_csv_with(again, call["call_id"], **{field: text})
    out = run("explain", call["call_id"], "--store", demo / "store", "--rated", again, "--lang", "en")
    assert out.exit_code == 0, out.output
    assert f"Note: {field} {text!r} is not in this catalog version" in out.output, out.output
    assert "None" not in out.output and "not answered" not in out.output and "Charged" not in out.output, out.output


def test_the_credit_left_reads_as_balances_do():
    """Newcomer N9 D: explain wrote the balance as "credit left 2357.5600
    yuan"; a balance reads with 2 decimals as everywhere, 4 only when it
    holds a fraction of a fen (nothing rounded away)."""
    from rating_core.money import exact_yuan

    assert (exact_yuan(23575600), exact_yuan(0), exact_yuan(-1200)) == ("2357.56", "0.00", "-0.12")
    assert exact_yuan(23575612) == "2357.5612"


def test_the_rounding_says_it_is_to_a_whole_ten_thousandth_of_a_yuan(demo, tmp_path):
    """newcomer8 F1: "Rounded once (half up): 1.4580 yuan" read as a rounding
    to the fen that did nothing. A call's charge is rounded to a whole
    1/10000 yuan (the fen only on the statement's amount due, once), and
    the line says so, and that the exact total was whole already when it
    was (a per-second price of a whole number of minor units: 14580/1)."""
    rated = tmp_path / "rated.parquet"
    assert run("rate", demo / "cdrs.parquet", "--store", demo / "store", "--out", rated,
               "--pass-through").exit_code == 0
    call = next(r for r in pq.read_table(rated).to_pylist() if r["billed_seconds"] > 60)
    js = json.loads(run("explain", call["call_id"], "--store", demo / "store", "--rated", rated, "--json").output)
    text = run("explain", call["call_id"], "--store", demo / "store", "--rated", rated, "--lang", "both").output
    whole = " (the exact total was whole already)" if isinstance(js["exact_total_minor"], int) else ""
    assert f"to a whole 1/10000 yuan{whole}: {exact_yuan(js['rounded_minor'])} yuan;" in text, text
    assert "a statement's amount due is rounded to the fen, once" in text
    assert "到 0.0001 元" in text and "月结单的应付金额取整到分" in text


def test_explain_json_money_is_integer_where_whole(demo, tmp_path):
    """newcomer8 F14: ``exact_total_minor`` and each run's ``cost_minor``
    read "14580/1" beside ``charge_minor`` 14580. Whole: integers (a demo
    call: 6-second steps of a per-minute price in whole minor units, so
    every run's cost is whole, and the runs add up to the exact total); a
    fraction of a minor unit (2/3, hand-made): null, and the exact value
    in ``*_fraction``."""
    from rating_core.explain import _exact_minor

    rated = tmp_path / "rated.parquet"
    assert run("rate", demo / "cdrs.parquet", "--store", demo / "store", "--out", rated,
               "--pass-through").exit_code == 0
    call = next(r for r in pq.read_table(rated).to_pylist() if r["billed_seconds"] > 60)
    js = json.loads(run("explain", call["call_id"], "--store", demo / "store", "--rated", rated, "--json").output)
    assert isinstance(js["exact_total_minor"], int) and "exact_total_fraction" not in js
    assert all(isinstance(r["cost_minor"], int) and "cost_fraction" not in r for r in js["runs"])
    assert sum(r["cost_minor"] for r in js["runs"]) == js["exact_total_minor"]
    assert _exact_minor("cost", Fraction(2, 3)) == {"cost_minor": None, "cost_fraction": "2/3"}
    assert _exact_minor("exact_total", Fraction(14580)) == {"exact_total_minor": 14580}
