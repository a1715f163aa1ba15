"""Structured logs: one JSON object per line on stderr.

Every record carries ts (UTC, ISO 8601), level, logger, msg, pid and worker;
fields passed with ``extra={"fields": {...}}`` are merged in.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time

_WORKER = {"id": None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        if _WORKER["id"] is not None:
            out["worker"] = _WORKER["id"]
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup(level: str | int = "INFO", worker: int | None = None) -> None:
    _WORKER["id"] = worker
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(os.environ.get("RATING400_LOG_LEVEL", level))


def log(logger: logging.Logger, level: int, msg: str, **fields) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"fields": fields})
