"""What "answered" means, once, for every reader: reports, the caller CRM,
statements (from rated files and from the ledger) and the rated output.

The rule (README "Answered calls"): **a call is answered when an agent
answered it**, i.e. the CDR has an agent answer time (``agent_answer``): a
person at the enterprise (a bound phone or a PBX seat) took the call. That
is what the enterprise counts as answered (its answer rate, the callers it
missed and calls back, the missed-call SMS it pays for per unanswered call).
It is not "charged": a number billed from ring (connect immediately) or from
the IVR answer pays for calls nobody took, so billable seconds > 0 does not
mean answered, and a statement shows both (calls answered; billed minutes
and charge).

A rated file that holds no ``agent_answer`` column (``rating400 rate``'s
default billing columns) carries the rule's result as the boolean column
``answered`` (``bulk.billing_view``), so it is counted the same way.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InvalidInput


def answered(t: pa.Table, source: str = "rated", rows: np.ndarray | None = None) -> pa.ChunkedArray:
    """Per row of ``t``, whether the call was answered (module doc): True
    where ``agent_answer`` holds a time (timestamp, int64 epoch ms, or text
    that is not empty; null is no answer, by meaning), else the ``answered``
    column of a lean rated file. -> bool ChunkedArray of ``t.num_rows``.
    Raises ``InvalidInput`` naming ``source`` and the field when ``t`` has
    neither column (a rated file written before ``answered`` was kept: rate
    it again), when ``answered`` is not booleans, or when a row's
    ``answered`` is missing (README: a missing value on a rated row is
    refused; read as False it would count the call missed and charge its
    missed-call SMS). ``rows``: each row's 1-based data row in the file, for
    that error (default: 1..n)."""
    if "agent_answer" in t.column_names:
        col = t.column("agent_answer")
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            # Text times (a CSV rated file): an empty cell is no answer.
            return pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0), False)
        return pc.is_valid(col)
    if "answered" in t.column_names:
        try:
            col = pc.cast(t.column("answered"), pa.bool_())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise InvalidInput("answered", not_boolean(t.column("answered"), rows), source) from None
        if col.null_count:
            bad = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))
            row = int(rows[bad[0]]) if rows is not None else int(bad[0]) + 1
            more = f" ({len(bad)} such rows)" if len(bad) > 1 else ""
            raise InvalidInput("answered", f"row {row}: missing on a rated row{more}", source)
        return col
    raise InvalidInput("agent_answer", "no agent_answer or answered column, so which calls were answered is "
                                       "unknown (rate the CDRs again: the rated output carries `answered`)", source)


def first_uncast(col, to: pa.DataType) -> int:
    """The index of the first value of ``col`` (an Arrow array that does not
    cast to ``to`` as a whole) that does not cast: the shortest failing
    prefix, found by bisection (log2(n) casts), so a bad cell is named
    without a Python loop over the column."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    lo, hi = 0, len(col)  # col[:lo] casts; col[:hi] does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(col.slice(0, mid), to)
            lo = mid
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            hi = mid
    return lo


def not_boolean(col, rows: np.ndarray | None) -> str:
    """Why ``col`` does not cast to booleans, naming its first such row
    (``rows``: 1-based data rows, default 1..n) and value (``first_uncast``;
    breaker N11 F7)."""
    from .cdr import excerpt

    i = first_uncast(col, pa.bool_())
    row = int(rows[i]) if rows is not None else i + 1
    return f"row {row}: {excerpt(col[i].as_py())} is not true/false on a rated row"
