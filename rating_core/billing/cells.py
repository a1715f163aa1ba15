"""Cells of the CSV files the project writes for people (opened in Excel).

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is a formula to Excel and LibreOffice: a caller tag
``=cmd|' /C calc'!A0`` planted by an agent would run when a supervisor opens
the export. Such a cell is written with a leading single quote, the OWASP
rule for CSV injection
(https://owasp.org/www-community/attacks/CSV_Injection); a plain decimal
number (``-12.50`` yuan) is not a formula and is kept as it is, so money
stays numeric in the sheet.
"""
from __future__ import annotations

import re
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def cell(value: Any) -> Any:
    """``value`` as a CSV cell: a text starting like a formula gets a leading
    ``'``; numbers, plain decimal texts and other values are returned as they
    are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def row(values) -> list:
    """``cell`` applied to every value of one CSV row."""
    return [cell(v) for v in values]
