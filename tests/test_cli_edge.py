"""The command line's edge: arguments that are not UTF-8 text are refused
once, before any command runs (one line, exit 2); operator text the CLI
prints (tags, notes, catalog names, file names) is printed as text, never
read as Rich markup; a 400 number carrying a zero-width, soft-hyphen or bidi
character is refused by every command that takes one, as ``route`` refuses it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rating_core.engine import Engine
from rating_core.store import Store
from inprocess import cli
from test_crm import CATALOG, DESTS, table

BAD = b"\xff"  # not UTF-8: Python hands it over as the lone surrogate U+DCFF (PEP 383)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("edge")
    (d / "c.yaml").write_text(CATALOG.replace("name: crm", "name: \"crm [red]x[/red] [/]\""))
    Store(d / "s").compile(d / "c.yaml", activate=True)
    engine = Engine.open(d / "s", threads=1)
    try:
        engine.rate_and_commit(table([(1, "4001000005", "13812345678", DESTS[0], 0, 20)]))
    finally:
        engine.close()
    return d / "s"


def run_bytes(*args: str | bytes) -> subprocess.CompletedProcess:
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "rating_core", *args], capture_output=True, timeout=120, env=env)


@pytest.mark.parametrize("args, names", [
    (("crm", "tag", "--store", "{s}", "--account", "shop", "--caller", "13812345678", "--add", BAD),
     "argument 10 (the value of --add)"),
    (("crm", "note", "--store", "{s}", "--account", "shop", "--caller", "13812345678", BAD), "argument 9 (text)"),
    (("crm", "note", "--store", "{s}", "--account", "shop", "--caller", BAD, "hi"),
     "argument 8 (the value of --caller)"),
    (("accounts", "top-up", BAD, "10", "--store", "{s}"), "argument 3 (account)"),
    (("accounts", "balance", b"sh" + BAD, "--store", "{s}"), "argument 3 (account)"),
    (("report", "missing.parquet", "--by", "number", b"--account=" + BAD), "option --account"),
    (("route", b"400100000" + BAD, "13812345678", "--store", "{s}"), "argument 2 (number)"),
    (("rerate", "--store", "{s}", "--version", "1", "--from", "2026-11-01", "--to", "2026-11-30", "--number", BAD),
     "argument 11 (the value of --number)"),
    ((BAD, "--help"), "argument 1"),
])
def test_an_argument_that_is_not_utf8_is_one_line_and_exit_2(store_dir, args, names):
    args = tuple(str(store_dir) if a == "{s}" else a for a in args)
    r = run_bytes(*args)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert err.strip().splitlines() == [f"error: {names}: not UTF-8 text"]
    assert r.stdout == b""


@pytest.mark.parametrize("text", ["[red]x[/red]", "[/]", "[bold", "a [link=x]b[/link]"])
def test_tags_and_notes_are_printed_as_text_never_markup(store_dir, capsys, text):
    who = ["--store", str(store_dir), "--account", "shop", "--caller", "13812345678"]
    code, out, err = cli(capsys, "crm", "tag", *who, "--add", text)
    assert code == 0 and text in out, err
    code, out, err = cli(capsys, "crm", "note", *who, f"note {text}")
    assert code == 0, err
    code, out, err = cli(capsys, "crm", "show", "--store", str(store_dir), "--account", "shop")
    assert code == 0 and text in out, err
    code, out, err = cli(capsys, "crm", "tag", *who, "--remove", text)
    assert code == 0 and text not in out, err


def test_catalog_names_and_paths_are_printed_as_text(store_dir, tmp_path, capsys):
    odd = tmp_path / "c [red]x [bold.yaml"  # a file name cannot hold "/"
    odd.write_text(CATALOG.replace("name: crm", "name: \"[/] [red]y[/red]\""))
    code, out, err = cli(capsys, "catalog", "compile", str(odd), "--store", str(tmp_path / "s"), "--activate")
    assert code == 0 and str(odd) in out, err
    code, out, err = cli(capsys, "catalog", "show", "--store", str(tmp_path / "s"))
    assert code == 0 and "[/] [red]y[/red]" in out, err
    code, out, err = cli(capsys, "accounts", "balance", "[/]", "--store", str(store_dir))
    assert code == 2 and "[/]" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("number", ["4001000005\u200b", "\u202e4001000005", "4001000005\u00ad", "400\u20601000005"])
def test_a_number_with_an_invisible_character_is_refused_as_route_refuses_it(store_dir, capsys, number):
    s = ["--store", str(store_dir)]
    for args in (("route", number, "13812345678", *s, "--at", "2026-11-02T10:00:00+08:00"),
                 ("rerate", *s, "--version", "1", "--from", "2026-11-01", "--to", "2026-11-30", "--dry-run",
                  "--number", number),
                 ("accounts", "number", "show", number, *s)):
        code, out, err = cli(capsys, *args)
        assert code == 2 and "number" in err and "control character" in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    code, out, err = cli(capsys, "crm", "tag", *s, "--account", "shop", "--caller",
                         "1381234" + next(c for c in number if not c.isdigit()) + "5678", "--add", "x")  # a caller too
    assert code == 2 and err.startswith("error: --caller: contains a control character"), err
    code, out, err = cli(capsys, "rerate", *s, "--version", "1", "--from", "2026-11-01", "--to", "2026-11-30",
                         "--dry-run", "--number", "4001000005")  # the clean number is fine
    assert code == 0, err
    code, out, err = cli(capsys, "accounts", "number", "show", "4001000005", *s)  # past the text rule
    assert code == 2 and "no 400 number 4001000005 in the inventory" in err, err


@pytest.mark.parametrize("account", ["shop\u202e", "sh\u200bop", "shop\x1b[31m"])
def test_report_account_with_a_control_character_is_refused_naming_the_option(store_dir, capsys, tmp_path, account):
    engine = Engine.open(store_dir, threads=1)
    try:
        rated = tmp_path / "r.parquet"
        import pyarrow.parquet as pq

        pq.write_table(engine.rate(table([(1, "4001000005", "13812345678", DESTS[0], 0, 20)])).rated, rated)
    finally:
        engine.close()
    code, out, err = cli(capsys, "report", str(rated), "--by", "number", "--account", account)
    assert code == 2 and err.startswith("error: --account: contains a control character"), err
    assert len(err.strip().splitlines()) == 1 and account not in err + out, err
    code, out, err = cli(capsys, "report", str(rated), "--by", "number", "--account", "[red]shop")
    assert code == 0 and "calls by number ([red]shop)" in out, out  # printed as text, not markup


@pytest.mark.parametrize("name, value, shown", [
    ("RATING400_STORE", b"d/st\xffore", "RATING400_STORE: not UTF-8 text: 'd/st\\xffore'"),
    ("RATING400_STORE", "d/st\u202eore".encode(), "RATING400_STORE: contains a control character"),
    ("RATING400_LIVE_MAP_MB", "1\u200b".encode(), "RATING400_LIVE_MAP_MB: contains a control character"),
])
def test_an_environment_value_not_text_is_one_line_naming_the_variable(name, value, shown):
    env = {**{k: v for k, v in os.environb.items()}, b"LC_ALL": b"C.UTF-8", name.encode(): value}
    r = subprocess.run([sys.executable, "-m", "rating_core", "catalog", "list"], capture_output=True, timeout=120,
                       env=env)
    err = r.stderr.decode()
    assert r.returncode == 2 and err.strip().splitlines() == [err.strip()] and err.startswith(f"error: {shown}"), err
    assert "\u202e" not in err and "\u200b" not in err and "\udcff" not in err


@pytest.mark.parametrize("name, value", [("RATING400_SWEEP_SECONDS", "abc"), ("RATING400_SWEEP_SECONDS", "0"),
                                         ("RATING400_ENGINE_THREADS", "x"), ("RATING400_LOG_LEVEL", "LOUD")])
def test_serve_with_a_bad_server_variable_is_one_line_naming_it(store_dir, name, value):
    env = {**os.environ, "LC_ALL": "C.UTF-8", name: value}
    r = subprocess.run([sys.executable, "-m", "rating_core", "serve", "--store", str(store_dir), "--port", "0"],
                       capture_output=True, timeout=120, env=env)
    err = r.stderr.decode()
    assert r.returncode == 2 and len(err.strip().splitlines()) == 1 and err.startswith(f"error: {name}="), err
    assert "Traceback" not in err


def test_rate_summary_wraps_a_long_reason_and_states_a_rate_only_over_enough_rows(capsys, monkeypatch):
    """Newcomer N9 D: a long reject reason widened the whole summary table,
    and a 3-row run printed "(15 CDR/s)", its start-up time as a rate."""
    from rating_core.cli import RATE_MIN_ROWS, SUMMARY_LABEL_WIDTH, print_summary
    from rating_core.rater import RatingSummary

    monkeypatch.setenv("COLUMNS", "200")
    reason = "end: call id committed before with a different value here; the first commit stands"
    print_summary(RatingSummary(3, 2, 1, 0, 1200, {reason: 1}), 0.2, "out.parquet", "rejects.csv")
    small = capsys.readouterr().out
    assert "CDR/s" not in small and "│ time" in small and "0.20 s " in small
    assert max(len(line) for line in small.splitlines()) <= SUMMARY_LABEL_WIDTH + 40
    assert reason not in small and "call id committed before" in small  # wrapped, not lost
    print_summary(RatingSummary(RATE_MIN_ROWS, RATE_MIN_ROWS, 0, 0, 0), 0.5, "out.parquet", "rejects.csv")
    assert f"({2 * RATE_MIN_ROWS:,} CDR/s)" in capsys.readouterr().out
