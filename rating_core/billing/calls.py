"""Rated calls as billing reads them: one table, one row per call id.

Billing reads rated CDRs from two sources and turns both into the same
table (``CALLS_SCHEMA``):

- rated files: the ``rating400 rate`` output (Parquet or CSV), any number
  of them (``read_rated``);
- the ledger's committed calls, when the ledger offers them (see
  ``billing.sources``).

A call id is counted once however many inputs hold it: the first copy (in
input order) is kept and the others are reported by ``RatedCalls.duplicates``
so the operator sees which files overlap. Only rows the rater rated
(``status == rated``) are billing's business; the rest were rejects.

Times are epoch ms (UTC instants; local time is Asia/Shanghai, UTC+8).
Money columns are int64 minor units (1/10000 yuan), as the rater wrote them
(named ``charge_minor`` ... in a rated file, ``charge`` ... here; a file
rated by an earlier version, with ``charge`` ..., is read too:
``cdr.read_rated``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import cdr, layout
from ..answered import answered, first_uncast, not_boolean
from ..errors import InvalidInput
from ..store.snapshot import package_kinds

CALLS_SCHEMA = pa.schema([
    ("call_id", pa.string()),
    ("account", pa.string()),
    ("package", pa.string()),
    ("number", pa.string()),  # the 400 number
    ("caller", pa.string()),  # normalised; null when withheld
    ("forwarded_to", pa.string()),  # the destination that took (or rang for) the call
    ("start_ms", pa.int64()),
    ("end_ms", pa.int64()),
    ("answered", pa.bool_()),  # an agent answered (``rating_core.answered``)
    ("ivr_keys", pa.string()),  # IVR key path, when the CDR has it
    ("destination_class", pa.string()),
    ("caller_class", pa.string()),
    ("time_band", pa.string()),
    ("caller_city", pa.string()),
    ("caller_province", pa.string()),
    ("caller_carrier", pa.string()),
    ("billable_seconds", pa.int64()),
    ("billed_seconds", pa.int64()),
    ("charge", pa.int64()),  # minor units
    ("credit_consumed", pa.int64()),  # minor units, prepaid
    ("bundle_seconds_consumed", pa.int64()),
    ("overage", pa.int64()),  # minor units: prepaid arrears or bundle overage
    ("balance_after", pa.int64()),  # minor units (prepaid credit) or bundle seconds left
])

# Columns a rated file must have for billing (the rater always writes them),
# by this version's names (``cdr.rated_columns``: files of earlier versions
# are read with them). The money columns come into ``CALLS_SCHEMA`` under
# the kernel's names (``charge``, ...).
REQUIRED = ("call_id", "account", "number", "start", "billable_seconds", "billed_seconds",
            "charge_minor", "credit_consumed_minor", "overage_minor")


# Bounds of a rated row, checked once where a rated file is read (every
# billing command reads through ``from_rated_table``). A call lasts less
# than a day (``cdr.MAX_CALL_MS``); billed seconds round up by at most one
# increment, so two days bounds every seconds column. One call's money is
# at most 10^12 minor units (100 million yuan): no tariff comes near it, and
# with it 9 million calls cannot overflow an int64 total; ``combine`` checks
# the sum of every file for the rest (``MAX_TOTAL``).
MAX_CALL_MINOR = 10**12
MAX_ROW_SECONDS = 2 * 86_400
MAX_BALANCE_MINOR = 10**15  # |balance_after|: credit (may be below zero, postpaid) or bundle seconds left
BOUNDS = {
    "billable_seconds": (0, MAX_ROW_SECONDS, "seconds"),
    "billed_seconds": (0, MAX_ROW_SECONDS, "seconds"),
    "bundle_seconds_consumed": (0, MAX_ROW_SECONDS, "seconds"),
    "charge": (0, MAX_CALL_MINOR, "minor units"),
    "credit_consumed": (0, MAX_CALL_MINOR, "minor units"),
    "overage": (0, MAX_CALL_MINOR, "minor units"),
    "balance_after": (-MAX_BALANCE_MINOR, MAX_BALANCE_MINOR, "minor units or seconds"),
}
# Rated columns billing does not sum, bounded as cheaply (breaker N11 F16):
# rated column -> (lo, hi, unit, may be empty). An increment is at least a
# second, so a call has at most MAX_ROW_SECONDS of them; a prepaid credit
# left is never below zero (the kernel takes arrears instead), a bundle's
# seconds left neither; both are empty where the package kind has none.
OTHER_BOUNDS = {
    "units": (0, MAX_ROW_SECONDS, "increments", False),
    "credit_after_minor": (0, MAX_BALANCE_MINOR, "minor units", True),
    "bundle_left_seconds": (0, MAX_BALANCE_MINOR, "seconds", True),
}
# Totals are int64 sums of the columns above; the sum of every summed
# column over all inputs stays below this, so no total, per account, month,
# number or class, can wrap (they are sums of non-negative parts of it).
MAX_TOTAL = 2**62
# The longest increment a tier may have (``catalog.schema``, ``increment``
# le=3600): a call's billed seconds are between its units and 3600 x units.
MAX_INCREMENT = 3600


@dataclass
class RatedCalls:
    """``table`` (``CALLS_SCHEMA``, one row per call id, sorted by
    ``start_ms``) and ``duplicates``: call id -> the inputs that repeated
    it (after the first)."""

    table: pa.Table
    duplicates: dict[str, list[str]] = field(default_factory=dict)

    @property
    def duplicate_rows(self) -> int:
        return sum(len(v) for v in self.duplicates.values())

    def warning(self, limit: int = 5) -> str | None:
        """One line naming the duplicated call ids (the first ``limit``)."""
        if not self.duplicates:
            return None
        ids = list(self.duplicates)
        named = ", ".join(f"{c} ({', '.join(self.duplicates[c])})" for c in ids[:limit])
        more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
        return (f"{len(ids)} call id(s) appear in more than one input and were counted once: "
                f"{named}{more}")


def _strings(t: pa.Table, name: str, source: str = "rated") -> pa.Array:
    if name not in t.column_names:
        return pa.nulls(t.num_rows, pa.string())
    col = t.column(name)
    try:
        if pa.types.is_dictionary(col.type):
            col = pc.cast(col, pa.string())
        return pc.cast(col, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise InvalidInput(name, f"a {col.type} column, not text", source) from None


@dataclass(frozen=True)
class Known:
    """What the rated-row check reads of the catalog view the rows are
    billed (or explained) against: its packages and, per account, the
    first instant (epoch ms) the rater rates a call of it (its earliest
    package period's start in a live view, ``accounts.view``; else the
    catalog's package start, local midnight). A call before it the rater
    refuses (``package_not_started``); on a rated row it would be on no
    statement (breaker N11 F5)."""

    packages: frozenset[str]
    starts: dict[str, int]
    # (account, epoch ms) -> why a call then is before the first month this
    # ledger bills a migrated account, or None (``Accounts.
    # money_before_cut_over``); None: no ledger, nothing checked.
    before_cut_over: Callable[[str, int], str | None] | None = None
    # package -> its kind (``layout.PACKAGE_KIND``) in this view: which parts
    # of a charge a row of it carries (``_money_parts``); empty: not checked.
    kinds: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshot, before_cut_over: Callable[[str, int], str | None] | None = None) -> "Known":
        t = snapshot.tables
        starts = np.array(t["account_start_ms"], np.int64)
        if "account_period_first" in t:  # a live view: the package periods the rater reads
            first, count, at = t["account_period_first"], t["account_period_count"], t["period_start_ms"]
            for i in np.flatnonzero(np.asarray(count) > 0):
                lo = int(first[i])
                starts[i] = min(int(starts[i]), int(np.min(at[lo:lo + int(count[i])])))
        return cls(frozenset(snapshot.meta["packages"]), dict(zip(snapshot.meta["accounts"], starts.tolist())),
                   before_cut_over, package_kinds(snapshot))


def _first(bad, name: str, rows: np.ndarray, what, source: str) -> None:
    """Raise InvalidInput naming ``source``, the first row where ``bad``
    (a boolean array, nulls false) holds, and field ``name``; ``what(i)``:
    what is wrong with row index ``i``."""
    bad = np.flatnonzero(pc.fill_null(bad, False).to_numpy(zero_copy_only=False))
    if len(bad):
        i = int(bad[0])
        more = f" ({len(bad)} such rows)" if len(bad) > 1 else ""
        raise InvalidInput(name, f"row {int(rows[i])}: {what(i)}{more}", source)


def _rated_rows(t: pa.Table, source: str, rows: np.ndarray | None = None) -> tuple[pa.Table, np.ndarray]:
    """The rated rows of a rated table (``status`` rated; every row when
    it has no ``status``: a lean rated file) and each one's 1-based data
    row in the file (``rows``: those of ``t``'s rows, default 1..n).
    Raises InvalidInput naming ``source``, the row and ``status`` for a
    status that is missing or not a rating outcome (``layout.RATE_STATUS``:
    an edited 'weird' or an emptied cell dropped a charge unseen)."""
    rows = np.arange(1, t.num_rows + 1) if rows is None else rows
    if "status" not in t.column_names:
        return t, rows
    status = _strings(t, "status", source)
    known = pc.is_in(status, value_set=pa.array(layout.RATE_STATUS))
    _first(pc.or_kleene(pc.is_null(status), pc.invert(known)), "status", rows,
           lambda i: (f"{cdr.excerpt(status[i].as_py())} is not a rating status ({', '.join(layout.RATE_STATUS)})"
                      if status[i].is_valid else "missing"), source)
    keep = pc.equal(status, "rated")
    return t.filter(keep), rows[keep.to_numpy(zero_copy_only=False)]


def _named(t: pa.Table, name: str, source: str, rows: np.ndarray) -> pa.Array:
    """Text column ``name`` of rated rows, each one present: a rated row
    always names its call, account, package and 400 number. Raises
    InvalidInput naming ``source``, the row and the field otherwise (and
    for a ``number`` that is no 400 number, as the edge reads one)."""
    col = _strings(t, name, source)
    _first(pc.or_kleene(pc.is_null(col), pc.equal(col, "")), name, rows, lambda _i: "missing on a rated row", source)
    bad = cdr.forbidden_cells(col)  # a NUL or ESC: the rater refuses such a cell (breaker N11 F16)
    if bad:
        more = f" ({len(bad)} such rows)" if len(bad) > 1 else ""
        raise InvalidInput(name, f"row {int(rows[bad[0]])}: {cdr.excerpt(col[bad[0]].as_py())} holds a control "
                                 f"character (the rater refuses one){more}", source)
    if name == "number":
        _first(pa.array(~cdr.is_400_number(col)), name, rows,
               lambda i: f"{cdr.excerpt(col[i].as_py())}: {cdr.REASONS[cdr.NOT_A_400_NUMBER]}", source)
    return col


def _ints(t: pa.Table, name: str, source: str, rows: np.ndarray) -> pa.Array:
    """``CALLS_SCHEMA`` column ``name`` as int64 within ``BOUNDS``, from
    the rated column of that name (money: ``cdr.RATED_MINOR_NAMES``);
    ``rows``: each row's 1-based data row in the file (for the error).
    Raises InvalidInput naming ``source``, the row and the rated column."""
    lo, hi, unit = BOUNDS[name]
    return _bounded(t, cdr.RATED_MINOR_NAMES.get(name, name), lo, hi, unit, source, rows)


def _bounded(t: pa.Table, name: str, lo: int, hi: int, unit: str, source: str, rows: np.ndarray,
             empty_ok: bool = False) -> pa.Array:
    """Rated column ``name`` as int64 within [lo, hi] (zeros when the file
    lacks it); ``empty_ok``: an empty cell stays null. Raises InvalidInput
    naming ``source``, the row and ``name``."""
    if name not in t.column_names:
        return pa.array(np.zeros(t.num_rows, np.int64))
    text = t.column(name)
    if pa.types.is_string(text.type) or pa.types.is_large_string(text.type):
        _first(pa.array(cdr.not_whole_numbers(text)), name, rows,
               lambda i: f"{cdr.excerpt(text[i].as_py())} is not a whole number ({unit}) on a rated row", source)
    try:
        col = pc.cast(t.column(name), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise InvalidInput(name, _not_whole(t.column(name), unit, rows), source) from None
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    nulls = col.is_null().to_numpy(zero_copy_only=False)
    values = col.fill_null(0).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero((nulls & (not empty_ok)) | (~nulls & ((values < lo) | (values > hi))))
    if len(bad):
        i = int(bad[0])
        what = "missing" if nulls[i] else f"{int(values[i])} is outside [{lo}, {hi}] {unit}"
        more = f" ({len(bad)} such rows)" if len(bad) > 1 else ""
        raise InvalidInput(name, f"row {int(rows[i])}: {what} on a rated row{more}", source)
    return col


def _not_whole(col, unit: str, rows: np.ndarray) -> str:
    """Why ``col`` does not cast to int64, naming its first such row
    (``answered.first_uncast``)."""
    i = first_uncast(col, pa.int64())
    return f"row {int(rows[i])}: {cdr.excerpt(col[i].as_py())} is not a whole number ({unit}) on a rated row"


def rated_numbers(t: pa.Table, source: str, rows: np.ndarray) -> dict[str, pa.Array]:
    """The ``BOUNDS`` columns of rated rows ``t`` as int64 arrays (zeros
    for a column the file lacks); ``rows``: each row's 1-based data row in
    the file. Raises InvalidInput naming ``source``, the row and the field
    for a value that is missing, not a whole number or out of bounds."""
    return {name: _ints(t, name, source, rows) for name in BOUNDS}


def from_rated_table(t: pa.Table, source: str = "rated", rows: np.ndarray | None = None,
                     known: Known | None = None) -> pa.Table:
    """A rated table (the rater's output columns, this version's names:
    ``cdr.read_rated`` / ``ledger.records.read_batch`` give them) ->
    ``CALLS_SCHEMA``, keeping only rated rows (``_rated_rows``). The one
    check of a rated file's rows (billing's readers and ``explain
    --rated``); ``rows``: each row's 1-based data row in the file (default
    1..n). Raises InvalidInput naming ``source``, the column and the row
    when a required column is missing or unusable, or a rated row's
    status, call id, account, package, 400 number, time or count is
    missing or not one, or a start is outside the calendar table the rater
    uses (``layout.CALENDAR_DAYS``: ``rate`` refuses those too) (``_named``, ``cdr.file_times``, ``rated_numbers``);
    or a name holds a control character, ``units``, ``credit_after_minor``
    or ``bundle_left_seconds`` is outside ``OTHER_BOUNDS``, ``replayed`` is
    not true/false; and with ``known`` (the catalog view billed against,
    ``Known.of``), a package the view lacks or a start before the
    account's package start (``_check_known``); and figures that disagree
    the way the rater never makes them: units vs billed seconds vs charge
    (``_consistent``), credit consumed, overage and bundle seconds vs the
    charge and billed seconds, by the package's kind when ``known`` gives
    it (``_money_parts``)."""
    missing = [c for c in REQUIRED if c not in t.column_names]
    if missing:
        raise InvalidInput(missing[0], "no such column (is this a `rating400 rate` output?)", source)
    t, rows = _rated_rows(t, source, rows)  # rows: 1-based data rows, for errors
    cdr.file_times(t, "agent_answer", source, rows)  # a bad answer time is an error naming it
    cols = {
        "call_id": _named(t, "call_id", source, rows),
        "account": _named(t, "account", source, rows),
        "package": _named(t, "package", source, rows),
        "number": _named(t, "number", source, rows),
        "caller": _strings(t, "caller", source),
        "forwarded_to": _strings(t, "forwarded_to", source),
        "start_ms": pa.array(cdr.file_times(t, "start", source, rows, required=True, days=layout.CALENDAR_DAYS)),
        "end_ms": pa.array(cdr.file_times(t, "end", source, rows)),  # absent from lean rated files
        "answered": answered(t, source, rows),  # the one rule (rating_core.answered)
        "ivr_keys": _strings(t, "ivr_keys", source),
        "destination_class": _strings(t, "destination_class", source),
        "caller_class": _strings(t, "caller_class", source),
        "time_band": _strings(t, "time_band", source),
        "caller_city": _strings(t, "caller_city", source),
        "caller_province": _strings(t, "caller_province", source),
        "caller_carrier": _strings(t, "caller_carrier", source),
    }
    cols.update(rated_numbers(t, source, rows))
    other = {name: _bounded(t, name, lo, hi, unit, source, rows, empty_ok)
             for name, (lo, hi, unit, empty_ok) in OTHER_BOUNDS.items()}
    replayed = pa.array(np.zeros(t.num_rows, bool))
    if "replayed" in t.column_names:  # a commit's flag: true/false, or empty
        try:
            replayed = pc.fill_null(pc.cast(t.column("replayed"), pa.bool_()), False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise InvalidInput("replayed", not_boolean(t.column("replayed"), rows), source) from None
    replayed = np.asarray(replayed.to_numpy(zero_copy_only=False), bool)  # once, for both checks
    if "units" in t.column_names:  # a lean rated file may leave it out
        _consistent(cols, other["units"], replayed, source, rows)
    if known is not None:
        _check_known(cols, known, source, rows)
    _money_parts(cols, replayed, {} if known is None else known.kinds, source, rows)
    return pa.table(cols, schema=CALLS_SCHEMA)


def _consistent(cols: dict, units: pa.Array, replayed: np.ndarray, source: str, rows: np.ndarray) -> None:
    """A rated row's figures agree the way the rater makes them
    (``reference.py``, Charge): a call billed nothing (at most its free
    seconds) has 0 units, 0 billed seconds and no charge; a call billed has
    at least one increment, and its increments cover its billable seconds
    (billed >= billable), each increment 1 to ``MAX_INCREMENT`` seconds
    (units <= billed <= 3600 x units). A row that breaks this was edited or is not a
    rater's (breaker N12 F7: units 0 beside a charge of 0.47 yuan, 15
    billed seconds of a 152-second call, billed without a word). A
    replayed row's charge is the call's charge after a rerating, beside the
    units it was committed with, so its charge is not compared. Raises
    InvalidInput naming ``source``, the row and ``units`` or
    ``billed_seconds``."""
    u = np.asarray(pc.fill_null(units, 0).to_numpy(zero_copy_only=False))
    billed = cols["billed_seconds"].to_numpy(zero_copy_only=False)
    billable = cols["billable_seconds"].to_numpy(zero_copy_only=False)
    charge = cols["charge"].to_numpy(zero_copy_only=False)
    again = replayed
    _first(pa.array((u == 0) != (billed == 0)), "units", rows,
           lambda i: f"{int(u[i])} increment(s) beside {int(billed[i])} billed seconds: a call is billed in whole "
                     "increments, and one billed nothing has none", source)
    _first(pa.array((u == 0) & (charge != 0) & ~again), "units", rows,
           lambda i: f"0 increments beside a charge of {int(charge[i])} minor units: a call billed nothing is "
                     "charged nothing", source)
    _first(pa.array((u != 0) & ((billed < u) | (billed > u * MAX_INCREMENT))), "units", rows,
           lambda i: f"{int(u[i])} increment(s) beside {int(billed[i])} billed seconds: an increment lasts 1 to "
                     f"{MAX_INCREMENT} seconds", source)
    _first(pa.array((billed != 0) & (billed < billable)), "billed_seconds", rows,
           lambda i: f"{int(billed[i])} is less than billable_seconds {int(billable[i])}: increments are added "
                     "until they cover the billable time", source)


def _money_parts(cols: dict, replayed: np.ndarray, kinds: dict[str, str], source: str, rows: np.ndarray) -> None:
    """A rated row's credit consumed, overage and bundle seconds are parts
    of its call the way the rater settles them (``reference.py``, per
    package kind): pay-as-you-go consumes nothing (credit consumed 0,
    overage 0, bundle seconds 0); prepaid splits the charge into credit
    consumed + arrears (``overage``), bundle seconds 0; a bundle covers at
    most the billed seconds and its charge is the overage (credit consumed
    0). So, for any kind: bundle seconds <= billed seconds, and credit
    consumed + overage is 0 or the charge; with ``kinds`` (package -> kind,
    ``Known.kinds``: the view billed against), each kind's own identities.
    A replayed row's charge is the call's after a rerating, beside the
    parts it was committed with, so the charge is not compared on it (its
    parts are, with each other and the kind). Raises InvalidInput naming
    ``source``, the row and the rated column (breaker N14 F3: an overage
    of 5.00 on a call charged 0 was on the statement's overage line, in no
    total; credit consumed + overage beyond the charge was billed)."""
    n = len(cols["charge"])
    if not n:
        return
    charge = cols["charge"].to_numpy(zero_copy_only=False)
    credit = cols["credit_consumed"].to_numpy(zero_copy_only=False)
    over = cols["overage"].to_numpy(zero_copy_only=False)
    bundle = cols["bundle_seconds_consumed"].to_numpy(zero_copy_only=False)
    billed = cols["billed_seconds"].to_numpy(zero_copy_only=False)
    fresh = ~replayed
    parts = credit + over
    _first(pa.array(bundle > billed), "bundle_seconds_consumed", rows,
           lambda i: f"{int(bundle[i])} is more than billed_seconds {int(billed[i])}: a bundle covers at most the "
                     "seconds billed", source)
    _first(pa.array(fresh & (parts != 0) & (parts != charge)), "overage_minor", rows,
           lambda i: f"credit_consumed_minor {int(credit[i])} + overage_minor {int(over[i])} is neither 0 nor the "
                     f"charge {int(charge[i])}: both are parts of the charge (prepaid: from credit and arrears; "
                     "bundle: all overage; pay-as-you-go: neither)", source)
    if not kinds:
        return
    # Per distinct package, not per row: a month's millions of rows name a few dozen packages.
    package = cols["package"]
    package = package.combine_chunks() if isinstance(package, pa.ChunkedArray) else package
    codes = pc.dictionary_encode(package)  # never null on a rated row (``_named``)
    kind = np.array([kinds.get(p, "") for p in codes.dictionary.to_pylist()], object)[
        codes.indices.to_numpy(zero_copy_only=False)]
    payg, prepaid, is_bundle = kind == "payg", kind == "prepaid", kind == "bundle"

    def what(name: str, why: str):
        return lambda i: (f"{int(cols[name][i].as_py())} on a call of {kind[i]} package "
                          f"{cdr.excerpt(cols['package'][i].as_py())}: {why}")

    _first(pa.array((payg | is_bundle) & (credit != 0)), "credit_consumed_minor", rows,
           what("credit_consumed", "only a prepaid package's calls consume credit"), source)
    _first(pa.array(payg & (over != 0)), "overage_minor", rows,
           what("overage", "a pay-as-you-go call has no arrears or overage"), source)
    _first(pa.array((payg | prepaid) & (bundle != 0)), "bundle_seconds_consumed", rows,
           what("bundle_seconds_consumed", "only a bundle package has included seconds"), source)
    _first(pa.array(fresh & prepaid & (parts != charge)), "overage_minor", rows,
           lambda i: f"credit_consumed_minor {int(credit[i])} + overage_minor {int(over[i])} is not the charge "
                     f"{int(charge[i])} of a prepaid call: its charge is paid from credit, the rest is arrears",
           source)
    _first(pa.array(fresh & is_bundle & (over != charge)), "overage_minor", rows,
           lambda i: f"{int(over[i])} is not the charge {int(charge[i])} of a bundle call: its charge is the "
                     "overage of the seconds beyond the bundle", source)


def _check_known(cols: dict, known: Known, source: str, rows: np.ndarray) -> None:
    """A rated row's package is one of ``known``'s, and its start is not
    before its account's first package start (an account ``known`` lacks
    is reported by the caller: ``statements.unknown_accounts``). Whether
    the package is the one the account held at the call is not checked:
    an account's package changes (a live view's periods, another catalog
    version), and a wrong one is told by ``explain --rated`` as a charge
    this version does not give. With ``known.before_cut_over``, an
    account's earliest row dated before the first month the ledger bills
    it (a migrated account's cut-over) is the file's error too: the months
    before were billed by the old platform, and a file's row must not bill
    them again (a dry-rated June call of a bundle account cut over in
    October added June..September's rentals, 297.00 due became 693.00; the
    events rows' rule, breaker N13 F9); a call the ledger is to bill then
    is committed (``rate --commit``, which warns). Raises InvalidInput
    naming ``source``, the row and ``package`` or ``start``."""
    package = cols["package"]
    _first(pc.invert(pc.is_in(package, value_set=pa.array(sorted(known.packages), pa.string()))), "package", rows,
           lambda i: f"{cdr.excerpt(package[i].as_py())} is not a package of this catalog version (bill or "
                     "explain with the --version that rated the file)", source)
    accounts = cols["account"].to_pylist()
    start = cols["start_ms"].to_numpy(zero_copy_only=False)
    first = np.array([known.starts.get(a, layout.NO_TIME) for a in accounts], np.int64)
    _first(pa.array(start < first), "start", rows,
           lambda i: (f"{_local(int(start[i]))} is before account {accounts[i]}'s package start "
                      f"{_local(int(first[i]))}: the rater refuses such a call (package_not_started), and no "
                      "statement would hold its charge"), source)
    if known.before_cut_over is None or not len(start):
        return
    account_col = cols["account"]
    account_col = account_col.combine_chunks() if isinstance(account_col, pa.ChunkedArray) else account_col
    codes = pc.dictionary_encode(account_col).indices.to_numpy(zero_copy_only=False)
    order = np.lexsort((start, codes))  # by account, then start: each account's earliest row first
    heads = order[np.r_[True, codes[order][1:] != codes[order][:-1]]]
    for i in sorted(int(h) for h in heads):
        why = known.before_cut_over(accounts[i], int(start[i]))  # the call's words
        if why:
            raise InvalidInput("start", f"row {int(rows[i])}: {why}", source)


def _local(ms: int) -> str:
    """Epoch ms as Shanghai local time, to the second (an error's time)."""
    import datetime as dt

    zone = dt.timezone(dt.timedelta(milliseconds=layout.LOCAL_OFFSET_MS))
    return dt.datetime.fromtimestamp(ms / 1000, zone).isoformat(timespec="seconds")


def combine(parts: list[tuple[str, pa.Table]]) -> RatedCalls:
    """Tables in ``CALLS_SCHEMA`` named by their source -> one call per
    call id (the first copy wins), sorted by start time."""
    if not parts:
        return RatedCalls(CALLS_SCHEMA.empty_table())
    table = pa.concat_tables([t for _, t in parts])
    for name in BOUNDS:  # no total can wrap: see MAX_TOTAL
        col = table.column(name)
        total = pc.sum(pc.abs(pc.cast(col, pa.float64()))).as_py() or 0.0
        if total >= MAX_TOTAL:
            raise InvalidInput(cdr.RATED_MINOR_NAMES.get(name, name),  # the rated files' name
                               f"the inputs add up to about {total:.3g}, beyond what an int64 total holds "
                               f"({MAX_TOTAL:.3g}); bill them in smaller sets (by month or account)",
                               ", ".join(src for src, _ in parts))
    source_of = np.repeat(np.arange(len(parts)), [t.num_rows for _, t in parts])
    first = cdr.first_occurrences(table.column("call_id"))
    duplicates: dict[str, list[str]] = {}
    if not first.all():
        dup = np.flatnonzero(~first)
        ids = table.column("call_id").take(pa.array(dup)).to_pylist()
        for cid, src in zip(ids, source_of[dup]):
            duplicates.setdefault(cid, []).append(parts[src][0])
        table = table.filter(pa.array(first))
    order = pc.sort_indices(table.column("start_ms"))
    return RatedCalls(table.take(order), duplicates)


def read_rated(paths: list[str | Path]) -> RatedCalls:
    """Rated CDR files (``rating400 rate`` output, Parquet or CSV) -> one
    call per call id. Errors name the file and column (InvalidInput)."""
    parts = []
    for path in paths:
        parts.append((str(path), from_rated_table(cdr.read_rated(path), str(path))))
    return combine(parts)
