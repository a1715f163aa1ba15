"""``rating400`` run in this process, for tests that read what it printed."""
from __future__ import annotations

from rating_core.cli import main


def cli(capsys, *args) -> tuple[int, str, str]:
    """``rating400 ARGS`` (each ``str()``-ed) -> (exit status, stdout,
    stderr) of that command alone: output not yet read is dropped first."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    got = capsys.readouterr()
    return code, got.out, got.err
