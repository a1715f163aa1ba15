"""Structured logs: one JSON object per line on stderr, through
``python-json-logger`` (a ``logging`` formatter; the stdlib does the rest).

Every record carries ts (UTC, ISO 8601), level, logger, msg, pid and worker;
fields passed with ``log(logger, level, msg, **fields)`` are merged in at the
top level, and an exception as ``exc``.
"""
from __future__ import annotations

import logging
import sys
import time

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from . import envvars

_WORKER: dict[str, int | None] = {"id": None}


class JsonFormatter(_JsonFormatter):
    def __init__(self) -> None:
        super().__init__(json_ensure_ascii=False, json_default=str)

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        log_data["ts"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        log_data["level"] = record.levelname.lower()
        log_data["logger"] = record.name
        log_data["msg"] = record.getMessage()
        log_data["pid"] = record.process
        if _WORKER["id"] is not None:
            log_data["worker"] = _WORKER["id"]
        log_data.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            log_data["exc"] = self.formatException(record.exc_info)


def setup(level: str | int = "INFO", worker: int | None = None) -> None:
    _WORKER["id"] = worker
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(envvars.log_level(level))


def log(logger: logging.Logger, level: int, msg: str, **fields) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"fields": fields})
