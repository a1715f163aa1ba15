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
