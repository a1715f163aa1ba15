"""Argument types for the command line: every bound an option has is
checked by click before a command runs, so a bad value is one line and exit
status 2 naming the option (never a hang or an internal error)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import click

from .errors import InvalidInput

class IntRange(click.IntRange):
    """click's IntRange read from ASCII digits only: Python's int() also
    takes other scripts' digits ('٣' is 3), which no other input here
    accepts (breaker 12-02 F10: `events --after-seq ٣` listed after seq 3)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip().lstrip("+-").isascii():
            self.fail(f"{value!r}: a whole number in ASCII digits (0-9)", param, ctx)
        return super().convert(value, param, ctx)


# Kernel/edge threads: at least one, at most 256 (a 400 operator's biggest
# rating host has far fewer cores; more threads than that only costs memory
# and start-up time, and 100000 threads hang the process).
MAX_THREADS = 256
THREADS = IntRange(1, MAX_THREADS)

# TCP ports (0 = pick a free one).
PORT = IntRange(0, 65535)

# DuckDB memory limits: a number and a unit; below 64 MB DuckDB cannot
# scan or sort a chunk, so the floor is stated here rather than discovered
# as an internal error mid-job.
_UNITS = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
MIN_MEMORY_BYTES = 64 * 10**6


class MemoryLimit(click.ParamType):
    """``1GB``, ``512MB``, ``2GiB``... (at least 64 MB) -> the same text, as DuckDB takes it."""

    name = "size"

    def convert(self, value, param, ctx):
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B)\s*", str(value), re.IGNORECASE)
        if not m:
            self.fail(f"{value!r} is not a size such as 512MB or 2GB", param, ctx)
        size = float(m.group(1)) * _UNITS[m.group(2).lower()]
        if size < MIN_MEMORY_BYTES:
            self.fail(f"{value!r} is below the 64MB DuckDB needs to scan and sort", param, ctx)
        return f"{m.group(1)}{m.group(2).upper().replace('IB', 'iB')}"


MEMORY_LIMIT = MemoryLimit()


def _same(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    pa_, pb = Path(a), Path(b)
    try:
        if pa_.exists() and pb.exists():
            return os.path.samefile(pa_, pb)
    except OSError:
        pass
    return pa_.resolve() == pb.resolve()


def check_outputs_apart(inputs, out_path, rejects_path) -> None:
    """Refuse an output that is one of the inputs (or the rejects file that
    is the output): writing it would destroy the CDRs before they are rated.
    Same file by path resolution or by inode (hard links, symlinks).
    Raises InvalidInput naming the option."""
    outs = [("--out", out_path)] + ([("--rejects", rejects_path)] if rejects_path else [])
    for name, target in outs:
        for src in inputs:
            if _same(src, target):
                raise InvalidInput(name, f"{target} is the input {src}; it would be overwritten (write elsewhere)")
            if Path(src).is_dir() and Path(src).resolve() in Path(target).resolve().parents:
                raise InvalidInput(name, f"{target} is inside the input directory {src}; write elsewhere")
    if rejects_path and _same(out_path, rejects_path):
        raise InvalidInput("--rejects", f"{rejects_path} is also --out; the rejects would overwrite the rated CDRs")


def check_output_path(option: str, path: str | os.PathLike) -> None:
    """Refuse, before anything is computed or written, an output file that
    could not be written: a directory, a missing or unwritable parent
    directory, an existing read-only file. A command that commits to the
    ledger checks its outputs first, so a bad path never fails after the
    money moved. Raises InvalidInput naming ``option``."""
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(option, f"{target} is a directory; give a file name")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise InvalidInput(option, f"{parent} is not an existing directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput(option, f"the directory {parent} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise InvalidInput(option, f"{target} is not writable")
