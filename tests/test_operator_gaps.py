"""Small operator-facing gaps, each through the real CLI on real files:
accounts JSON gives local times beside epoch ms; a bad `bill --events` row
is named (file, row, field); a catalog `labels` problem has its line; the
caller view (`crm show`, its CSV) shows after-sales notes; the demo's
companies have Chinese names."""
from __future__ import annotations

import csv
import json
import re
from importlib import resources

import pyarrow as pa
import pytest

from rating_core.cli import main
from test_rerate_ledger import CATALOG, cdr

SH_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+08:00")


def run(capsys, *args, code=0):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert e.value.code == code, err
    return out, err


@pytest.fixture
def live(tmp_path, capsys):
    """The rerating test's store (account ``legacy``) made live, two calls committed."""
    from rating_core.engine import Engine

    (tmp_path / "catalog.yaml").write_text(CATALOG.replace("PRICE", "0.12"))
    run(capsys, "catalog", "compile", tmp_path / "catalog.yaml", "--store", tmp_path / "store", "--activate")
    run(capsys, "accounts", "import", tmp_path / "catalog.yaml", "--store", tmp_path / "store")
    engine = Engine.open(tmp_path / "store")
    engine.rate_and_commit(pa.Table.from_pylist([cdr("c1", 2), cdr("c2", 3)]))
    engine.close()
    return tmp_path / "store"


def test_accounts_json_gives_local_times_beside_the_ms(live, capsys):
    out, _ = run(capsys, "accounts", "show", "legacy", "--store", live)
    shown = json.loads(out)
    account = shown["account"] if "account" in shown else shown
    # 2026-01-01 00:00 Asia/Shanghai: the package start, in both forms.
    assert account["package_start_ms"] == 1_767_196_800_000
    assert account["package_start_local"] == "2026-01-01T00:00:00.000+08:00"
    out, _ = run(capsys, "accounts", "events", "legacy", "--store", live)
    events = json.loads(out)
    rows = events if isinstance(events, list) else events["events"]
    assert rows and all(SH_ISO.fullmatch(e["at_local"]) for e in rows)
    assert all("at_ms" in e for e in rows)  # the ms fields stay for scripts


def test_a_bad_events_row_is_named(live, tmp_path, capsys):
    ev = tmp_path / "events.csv"
    ev.write_text("account,at,kind,amount,feature,note\n"
                  "legacy,2026-11-05T10:00:00+08:00,adjustment,-1.00,,goodwill\n"
                  "nobody,2026-11-05T10:00:00+08:00,top_up,600,,\n", encoding="utf-8")
    _, err = run(capsys, "bill", "--ledger", "--store", live, "--out", tmp_path / "b.csv", "--events", ev, code=2)
    assert err.strip() == f"error: {ev} row 2: account: no such account in the catalog: 'nobody'"
    ev.write_text("account,at,kind,amount,feature,note\n"
                  "legacy,2026-11-05T10:00:00+08:00,feature_added,,nosuch,\n", encoding="utf-8")
    _, err = run(capsys, "bill", "--ledger", "--store", live, "--out", tmp_path / "b.csv", "--events", ev, code=2)
    assert err.strip() == f"error: {ev} row 1: feature: no such feature in the catalog: 'nosuch'"


def test_a_labels_problem_names_its_line(tmp_path, capsys):
    text = CATALOG.replace("PRICE", "0.12") + "labels:\n  zh:\n    mobile: 手机\n    mobil: 手机\n"
    (tmp_path / "catalog.yaml").write_text(text, encoding="utf-8")
    line = text.splitlines().index("    mobil: 手机") + 1
    _, err = run(capsys, "catalog", "compile", tmp_path / "catalog.yaml", "--store", tmp_path / "store", code=2)
    assert f"labels.zh.mobil: not a destination class, time band, package or feature of this catalog " \
           f"(line {line})" in err


def test_crm_show_and_its_csv_show_the_notes(live, tmp_path, capsys):
    run(capsys, "crm", "note", "--store", live, "--account", "legacy", "--caller", "13812345678",
        "asked for an invoice\ncall back Monday")
    run(capsys, "crm", "note", "--store", live, "--account", "legacy", "--caller", "13812345678", "[bold]done[/]")
    out, _ = run(capsys, "crm", "show", "--store", live, "--account", "legacy", "--role", "supervisor")
    assert "notes" in out and "asked for an" in out  # the table wraps the cell
    assert "[bold]done[/]" in out  # the enterprise's text, not Rich markup
    run(capsys, "crm", "show", "--store", live, "--account", "legacy", "--role", "supervisor",
        "--out", tmp_path / "callers.csv")
    with open(tmp_path / "callers.csv", encoding="utf-8-sig") as f:
        (row,) = list(csv.DictReader(f))
    notes = row["notes"].split(" | ")
    assert [n[20:] for n in notes] == ["asked for an invoice call back Monday", "[bold]done[/]"]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", n[:19]) for n in notes)


def test_the_demo_companies_have_chinese_names(tmp_path):
    import yaml

    src = resources.files("rating_core.demo") / "catalog.yaml"
    doc = yaml.safe_load(src.read_text("utf-8"))
    names = [a["name"] for a in doc["accounts"].values()]
    assert len(names) == len(set(names)) >= 20
    for name in names:  # a registered company name: Chinese, a company form
        assert re.fullmatch(r"[\u4e00-\u9fff（）]+", name) and name.endswith(("有限公司", "事务所")), name


