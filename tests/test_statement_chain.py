"""A month billed alone opens where the previous month closed (newcomer
finding: November billed alone opened at the package's opening credit and
closed 700 yuan above the ledger)."""
import json

import pytest

from rating_core.cli import main


def _run(capsys, *args):
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    assert e.value.code == 0, (args, out)
    return out.out


def test_a_month_billed_alone_opens_at_the_previous_close(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _run(capsys, "demo", "--cdrs", "3000", "--dir", "d")
    _run(capsys, "rate", "d/cdrs.parquet", "--store", "d/store", "--out", "c.parquet", "--commit")
    _run(capsys, "accounts", "import", "d/catalog/catalog.yaml", "--store", "d/store")
    _run(capsys, "accounts", "top-up", "jinghua_appliances", "600", "--at", "2026-11-05T10:00:00+08:00",
         "--store", "d/store")

    def statements(*months):
        args = ["bill", "--ledger", "--store", "d/store", "--out", "s.json", "--account", "jinghua_appliances"]
        for m in months:
            args += ["--month", m]
        _run(capsys, *args)
        doc = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
        return {s["month"]: s for s in doc["statements"]}

    both = statements("2026-10", "2026-11")
    alone = statements("2026-11")
    assert set(alone) == {"2026-11"}
    for field in ("opening_credit_minor", "closing_credit_minor", "amount_due_minor"):
        assert alone["2026-11"][field] == both["2026-11"][field], field
    assert both["2026-11"]["opening_credit_minor"] == both["2026-10"]["closing_credit_minor"]
    balance = json.loads(_run(capsys, "accounts", "balance", "jinghua_appliances", "--store", "d/store"))
    assert alone["2026-11"]["closing_credit_minor"] == balance["credit_minor"]
