"""The README's account session runs as written, in order, on a demo store
of its own (each command exits 0), and its retry really replays the first
result; demo-out, which the other sections use, is left as it was."""
import json
import re
import shlex
from pathlib import Path

import pytest

from rating_core.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
TITLE = "## Accounts and numbers: live customer data"


def session() -> list[str]:
    body = README.read_text("utf-8").split(TITLE, 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```sh\n(.*?)```", body, re.S)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.startswith("rating400 ")]


def test_readme_account_session(tmp_path, monkeypatch, capsys):
    commands = session()
    assert len(commands) >= 15
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["demo", "--cdrs", "1000", "--dir", "demo-out"])
    assert e.value.code == 0
    outputs = []
    for command in commands:
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(shlex.split(command)[1:])
        assert e.value.code == 0, (command, capsys.readouterr())
        outputs.append(capsys.readouterr().out)
    assert commands[0].startswith("rating400 demo") and "demo-out" not in " ".join(commands)
    opens = [i for i, c in enumerate(commands) if c.startswith("rating400 accounts open")]
    first, retry = (json.loads(outputs[i]) for i in opens[:2])
    assert not first["replayed"] and retry["replayed"] and retry["seq"] == first["seq"]
    # `accounts list --status suspended,frozen` after the suspend finds acme, with the reason given.
    listed = json.loads(outputs[commands.index(next(c for c in commands if "list --status" in c))])
    assert [(r["id"], r["status"], r["suspend_reason"]) for r in listed] == [("acme", "suspended", "customer request")]
    route = outputs[commands.index(next(c for c in commands if c.startswith("rating400 route")))]
    assert "13700000001" in route
