"""Every command in README's billing sections runs, on a small demo."""
import re
import shlex
from pathlib import Path

import pytest

from rating_core.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
SECTIONS = ("## Monthly statements", "## Package advisor", "## Caller CRM and reports")


def section_commands() -> list[str]:
    text = README.read_text("utf-8")
    commands = []
    for title in SECTIONS:
        if title not in text:
            continue
        body = text.split(title, 1)[1].split("\n## ", 1)[0]
        for block in re.findall(r"```sh\n(.*?)```", body, re.S):
            for line in block.splitlines():
                line = line.split("  #", 1)[0].strip()
                if line.startswith("rating400 "):
                    commands.append(line)
    return commands


COMMANDS = section_commands()


def test_the_sections_have_commands():
    assert len(COMMANDS) >= 3


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)
        with pytest.raises(SystemExit) as e:
            main(["demo", "--cdrs", "3000", "--dir", "demo-out"])
        assert e.value.code == 0
    return d


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command(command, demo_dir, monkeypatch):
    monkeypatch.chdir(demo_dir)
    with pytest.raises(SystemExit) as e:
        main(shlex.split(command)[1:])
    assert e.value.code == 0, command


def test_readme_says_which_printable_formats_bill_writes(demo_dir, monkeypatch, tmp_path):
    """Faces 12-02 (LOW): README said `--statements DIR` writes "HTML, PDF
    (WeasyPrint) and JSON", but without `--format` only the HTML is
    written. Each README command with `--statements` writes exactly the
    suffixes its `--format` names, `.html` alone without one, as README
    now says ("by default HTML alone")."""
    text = " ".join(README.read_text("utf-8").split())
    assert "by default HTML alone" in text and "`--format html,pdf,json` writes all three" in text
    monkeypatch.chdir(demo_dir)
    runs = [c for c in COMMANDS if "--statements" in shlex.split(c)]
    assert any("--format" not in shlex.split(c) for c in runs) and any("--format" in shlex.split(c) for c in runs)
    for k, command in enumerate(runs):
        args = shlex.split(command)[1:]
        where = tmp_path / f"st{k}"
        args[args.index("--statements") + 1] = str(where)
        if "--out" in args:
            args[args.index("--out") + 1] = str(tmp_path / f"out{k}{Path(args[args.index('--out') + 1]).suffix}")
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0, command
        wanted = set(args[args.index("--format") + 1].split(",")) if "--format" in args else {"html"}
        written = {p.suffix.lstrip(".") for p in where.iterdir()}
        assert written == wanted, (command, written)
        assert {p.stem for p in where.iterdir()} == {"hangzhou_tea-2026-10"}
