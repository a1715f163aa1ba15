"""Cells of the CSV files the project writes for people (opened in Excel):
the rated CSV (``rate --out x.csv``), the rejects file, the caller export,
statement summaries, ``report --out`` and the rerating adjustments.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is a formula to Excel and LibreOffice: a caller tag
``=cmd|' /C calc'!A0`` planted by an agent would run when a supervisor opens
the export. Such a cell is written with a leading single quote, the OWASP
rule for CSV injection
(https://owasp.org/www-community/attacks/CSV_Injection); a plain decimal
number (``-12.50`` yuan, ``-5``) is not a formula and is kept as it is, so
money stays numeric in the sheet. A text that already starts with quotes
before such a character (``'=x``) gets one more, so the rule can be undone
exactly (``original``): our readers of a rated CSV get the text as given.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_FORMULA = "'*[=+\\-@\t\r]"  # after any quotes already there: a formula's first character
_FORMULA_START = re.compile(_FORMULA)
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_FORMULA_START_RE = "^" + _FORMULA
_PLAIN_NUMBER_RE = "^[+-]?[0-9]+(?:\\.[0-9]+)?$"
_QUOTED_RE = "^'" + _FORMULA  # what ``cell`` wrote: one quote more before a formula's start


def cell(value: Any) -> Any:
    """``value`` as a CSV cell: a text starting like a formula (after any
    quotes) gets a leading ``'``; numbers, plain decimal texts and other
    values are returned as they are."""
    if isinstance(value, str) and _FORMULA_START.match(value) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def row(values) -> list:
    """``cell`` applied to every value of one CSV row."""
    return [cell(v) for v in values]


def column(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``cell`` applied column-wise to a string column (nulls kept); a
    column with no such cell (the usual case) is returned as it is, after
    one anchored match per cell."""
    formula = pc.fill_null(pc.match_substring_regex(values, _FORMULA_START_RE), False)
    if not pc.any(formula).as_py():
        return values
    formula = pc.and_(formula, pc.invert(pc.match_substring_regex(values, _PLAIN_NUMBER_RE)))
    quoted = pc.binary_join_element_wise("'", values, "")
    return pc.if_else(formula, quoted, values)


def original(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The inverse of ``column``: a string column as written by it back to
    the text given (one leading ``'`` off a cell that is quotes then a
    formula's first character). ``original(column(x)) == x`` for every x."""
    quoted = pc.fill_null(pc.match_substring_regex(values, _QUOTED_RE), False)
    if not pc.any(quoted).as_py():
        return values
    return pc.if_else(quoted, pc.utf8_slice_codeunits(values, 1), values)


def table(t: pa.Table, names) -> pa.Table:
    """``t`` with ``column`` applied to its string columns ``names``."""
    for name in names:
        t = t.set_column(t.schema.get_field_index(name), name, column(t.column(name)))
    return t


def text_columns(t: pa.Table) -> list[str]:
    """The names of ``t``'s string columns (those ``table`` applies to in a
    CSV of every text column: the rated CSV)."""
    return [f.name for f in t.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
