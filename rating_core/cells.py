"""Cells of the CSV files the project writes for people (opened in Excel):
the caller export, statement summaries, ``report --out`` and the rejects
file (its ``call_id`` and ``value`` are what a CDR file said).

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

import pyarrow as pa
import pyarrow.compute as pc

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_FORMULA_START_RE = "^[=+\\-@\t\r]"
_PLAIN_NUMBER_RE = "^[+-]?[0-9]+(?:\\.[0-9]+)?$"


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


def column(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``cell`` applied column-wise to a string column (nulls kept)."""
    formula = pc.and_(pc.match_substring_regex(values, _FORMULA_START_RE),
                      pc.invert(pc.match_substring_regex(values, _PLAIN_NUMBER_RE)))
    quoted = pc.binary_join_element_wise("'", values, "")
    return pc.if_else(pc.fill_null(formula, False), quoted, values)


def table(t: pa.Table, names) -> pa.Table:
    """``t`` with ``column`` applied to its string columns ``names``."""
    for name in names:
        t = t.set_column(t.schema.get_field_index(name), name, column(t.column(name)))
    return t
