"""The server's environment variables, read and checked in one place.

Each reader below is the one place its variable is parsed; ``check`` calls
them all before any worker starts (``rating400 serve``, ``python -m
rating400_server``), so a bad value is one line naming the variable and
exit status 2, never a worker's traceback in a crash loop.
"""
from __future__ import annotations

import logging
import math
import os
import re

from rating_core.cdr import check_environment
from rating_core.errors import InvalidInput

SWEEP_ENV = "RATING400_SWEEP_SECONDS"
THREADS_ENV = "RATING400_ENGINE_THREADS"
WORKERS_ENV = "RATING400_WORKERS"
LOG_LEVEL_ENV = "RATING400_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class EnvError(ValueError):
    """A server environment variable with a value it cannot take; the
    message names the variable and shows the value (repr, cut)."""


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip(" \t")


def _whole(name: str, default: int, low: int, high: int) -> int:
    raw = _raw(name)
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
        raise EnvError(f"{name}={raw[:40]!r}: a whole number {low}..{high}")
    return int(raw)


def sweep_seconds() -> float:
    """Seconds between lifecycle sweeps in worker 0: ``RATING400_SWEEP_SECONDS``,
    a number in (0, 86400]; unset or blank: 5."""
    raw = _raw(SWEEP_ENV)
    if not raw:
        return 5.0
    try:
        value = float(raw) if re.fullmatch(r"[0-9]*\.?[0-9]+", raw) else math.nan
    except ValueError:
        value = math.nan
    if not 0 < value <= 86400:
        raise EnvError(f"{SWEEP_ENV}={raw[:40]!r}: seconds between sweeps, a number over 0 and at most 86400")
    return value


def engine_threads() -> int:
    """Kernel threads per worker: ``RATING400_ENGINE_THREADS``, 0..1024
    (0, unset or blank: the cores left to each worker)."""
    return _whole(THREADS_ENV, 0, 0, 1024)


def workers() -> int:
    """Worker processes of this server (set by ``main.serve`` for its
    workers): ``RATING400_WORKERS``, 1..1024; unset or blank: 1."""
    return _whole(WORKERS_ENV, 1, 1, 1024)


def log_level(default: str | int = "INFO") -> str | int:
    """The log level: ``RATING400_LOG_LEVEL`` (a level name, any case), else
    ``default``."""
    raw = _raw(LOG_LEVEL_ENV)
    if not raw:
        return default
    if raw.upper() not in LEVELS:
        raise EnvError(f"{LOG_LEVEL_ENV}={raw[:40]!r}: one of {', '.join(LEVELS)}")
    return logging.getLevelName(raw.upper())


def check() -> None:
    """Every RATING400_* value is text (``cdr.check_environment``) and every
    variable the server reads parses. Raises EnvError naming the first bad one."""
    try:
        check_environment()
    except InvalidInput as e:
        raise EnvError(str(e)) from None
    sweep_seconds()
    engine_threads()
    workers()
    log_level()
