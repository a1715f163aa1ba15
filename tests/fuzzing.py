"""Mutation fuzzing of every edge: the CDR file reader, the catalog loader,
the Arrow batch decoder and each gRPC request type.

Each harness starts from valid seeds, mutates them (bit flips, byte
insertions and deletions, repeated chunks, tokens that have broken parsers
before) with a seeded ``random.Random`` for a time budget, and feeds every
input to the real code. An input is a crash when the code answers with
anything but its documented error (InvalidInput / InvalidFile,
CatalogError, an INVALID_ARGUMENT-class gRPC status) -- or kills the
process. Crashes are written to ``tests/fuzz_corpus/<harness>/`` and are
replayed by ``test_fuzz.py`` on every run from then on.

Run longer than CI does (``RATING400_FUZZ_SEED`` replays the run a report names)::

    RATING400_FUZZ_SECONDS=600 python -m pytest -s tests/test_fuzz.py
"""
from __future__ import annotations

import hashlib
import os
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

CORPUS = Path(__file__).parent / "fuzz_corpus"
TOKENS = [b",", b'"', b"\n", b"\r\n", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"2026/10/1 0:01:21", b"+86",
          b"46296.5", b"1.38E+10", b"9223372036854775807", b"-1", b".inf", b".nan", b"1e308", b"&a", b"*a",
          b"<<: *a", b"!!python/object:os.system", b"[", b"{", b": ", b"- ", b"\t", b"\xe5\xa4\xa9\xe6\xb4\xa5",
          b"\x80", b"%YAML 1.1", b"---", b"~", b"\\", b"'", b"#"]


@dataclass
class Report:
    harness: str
    tried: int = 0
    crashes: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    seed: int = 0
    errors: list[str] = field(default_factory=list)  # one per crash: the exception and where it was raised

    def line(self) -> str:
        head = (f"fuzz {self.harness} (seed {self.seed}): {self.tried} inputs in {self.seconds:.1f} s, "
                f"{len(self.crashes)} crashes" + (f" (kept in {self.crashes[0].parent})" if self.crashes else ""))
        # The CI log is often all there is of a crash found on another machine: say what it was.
        return "\n".join([head] + [f"  {p.name}: {e}" for p, e in zip(self.crashes, self.errors)])


def budget() -> float:
    """Seconds per harness: RATING400_FUZZ_SECONDS, else 3 (the plain test run)."""
    return float(os.environ.get("RATING400_FUZZ_SECONDS", "3"))


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to eight random edits of ``data``."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[pos:pos] = rng.choice(TOKENS)
        elif op == 2 and b:
            del b[pos:pos + rng.randint(1, 16)]
        elif op == 3 and b:
            start = rng.randrange(len(b))
            chunk = b[start:start + rng.randint(1, 64)]
            b[pos:pos] = chunk * rng.randint(1, 4)
        elif op == 4 and b:
            i = rng.randrange(len(b))
            b[i] = rng.randrange(256)
        elif op == 5:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(b)


def keep(harness: str, data: bytes) -> Path:
    d = CORPUS / harness
    d.mkdir(parents=True, exist_ok=True)
    path = d / (hashlib.sha256(data).hexdigest()[:16] + ".bin")
    path.write_bytes(data)
    return path


def corpus(harness: str) -> list[bytes]:
    d = CORPUS / harness
    return [p.read_bytes() for p in sorted(d.glob("*.bin"))] if d.is_dir() else []


def run(harness: str, seeds: Iterable[bytes], check: Callable[[bytes], None], seconds: float | None = None,
        seed: int = 0) -> Report:
    """Fuzz ``check`` (which raises AssertionError or anything unexpected on a
    crash) from ``seeds`` for ``seconds``; crashing inputs are kept."""
    seeds = list(seeds)
    seed = seed or int(os.environ.get("RATING400_FUZZ_SEED", "0")) or int(time.time())
    rng = random.Random(seed)
    report = Report(harness, seed=seed)
    t0 = time.monotonic()
    end = t0 + (budget() if seconds is None else seconds)
    for data in corpus(harness) + seeds:  # known inputs first: a regression fails fast
        _one(report, harness, check, data)
    while time.monotonic() < end:
        _one(report, harness, check, mutate(rng, rng.choice(seeds)))
    report.seconds = time.monotonic() - t0
    return report


def _one(report: Report, harness: str, check, data: bytes) -> None:
    report.tried += 1
    try:
        check(data)
    except Exception as e:  # noqa: BLE001 - a crash: keep the input, go on
        if len(report.crashes) < 20:
            report.crashes.append(keep(harness, data))
            where = traceback.extract_tb(e.__traceback__)[-1]
            report.errors.append(f"{type(e).__name__}: {str(e)[:200]!r} at {Path(where.filename).name}:{where.lineno}")
