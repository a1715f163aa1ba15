"""The bulk rating job in bounded memory: CDR files or Parquet datasets in,
rated CDRs and rejects out, chunk by chunk.

Results are those of rating the whole input in one ``Rater.rate`` call
(tests/test_bulk.py checks it row by row); only the order of the output
rows differs (here: chronological; in memory: input order). Memory is
bounded by the chunk size, not the input size:

1. **Scan** (two columns): the 64-bit hashes of call ids that occur more
   than once in the input (8 bytes a row, sorted a sixteenth of the hash
   range at a time), and how far the starts are out of time order
   (``disorder``: the largest ``max(start of earlier rows) - start``).
   It runs on a thread of its own beside step 2's first chunks (which
   wait for it before their duplicate check), so the job does not idle
   through it.
2. **Edge**, in input order, chunk by chunk, on ``threads`` chunks at once
   (``Rater.prepare``). Duplicate call ids: only the ids whose hash repeats
   in step 1 are remembered (as strings, so a hash collision never makes a
   duplicate), so a later copy is known exactly without holding every call
   id (memory grows with the number of *repeated* ids, ~100 bytes each).
   The first valid copy (lowest input row) is rated, as in memory.
3. **Rate in chronological chunks**, the account state (prepaid credit
   left, bundle month and seconds used) carried from one chunk to the next:
   the kernel's settlement pass is one pass in (start, input row) order, so
   chunks taken in that order give the same result as one call.

   - ``disorder <= max_disorder_ms`` (a switch export is in time order, up
     to some jitter): a reorder buffer. After each chunk, the rows that
     start more than ``disorder`` before the latest start seen are settled
     (no later row can start before them); the rest wait for the next chunk.
   - otherwise: the edge's good rows are spilled to Parquet in a temporary
     directory and DuckDB sorts them out of core (``ORDER BY start, row``
     with a memory limit), streamed back in chunks.

Output: one Parquet or CSV file, or a Parquet dataset partitioned by the
call's local start day (``DIR/day=2026-11-01/part-0.parquet``, Hive style).
Inputs: CSV or Parquet files, or Parquet dataset directories (files in path
order; Hive partition columns pass through).
"""
from __future__ import annotations

import ctypes
import gc
import itertools
import shutil
import tempfile
import threading
import time
import unicodedata
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generator, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from . import cdr, cells, layout
from .errors import InvalidInput
from .rater import RATED_COLUMNS, Rater, RatingResult, RatingSummary, count_reasons, replayed_charge

# --- the rated output ---------------------------------------------------------
# What a billing system needs of a rated CDR: the call id, the 400 number and
# start it was rated under, and every rating field. Names (account, package,
# classes, band, rate, region) are dictionary-encoded. The input's other
# columns (caller, forwarded_to, answers, end, hangup cause, extra columns)
# come along with ``pass_through``.
BILLING_COLUMNS = (
    "call_id", "number", "start",
    "account", "package", "rate", "destination_class", "caller_class",
    "caller_city", "caller_province", "caller_carrier", "time_band",
    "billable_seconds", "billed_seconds", "units",
    "charge_minor", "credit_consumed_minor", "bundle_seconds_consumed", "overage_minor",  # cdr.RATED_MINOR_NAMES
    "credit_after_minor", "bundle_left_seconds",  # balances in their own units (null where the kind has none)
    "balance_after",  # deprecated: minor units for prepaid, seconds for bundle
    "answered",  # bool, an agent answered (``rating_core.answered``), made from agent_answer
)
# The default rated output leads with these (``billing_view``): the input
# file and its data row counted from 1, as the rejects file names a row.
ROW_COLUMNS = ("file", "row")
# Names an input column kept by ``pass_through`` must not have: the rated
# output's own (``file``, ``row``, the rater's columns, ``answered``, a
# commit's ``replayed``) and an earlier version's money names, which readers
# take as this version's (``cdr.RATED_MINOR_NAMES``).
OUTPUT_NAMES = frozenset((*ROW_COLUMNS, *RATED_COLUMNS, "answered", "replayed", *cdr.RATED_MINOR_NAMES))


def _folded(name: str) -> str:
    """A column name as a reader may take it: NFKC, no surrounding spaces, case folded."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


_OUTPUT_FOLDED = frozenset(map(_folded, OUTPUT_NAMES))


def _fold_twins(names: list[str]) -> list[str]:
    """The first group (in header order) of two or more names a reader takes
    as one (``_folded``: ``Call_ID``, `` start``, ``ｅｎｄ`` beside a CDR field;
    ``note`` beside ``Note``, ``ｎｏｔｅ`` or ``note\\xa0``; a name given
    twice): among ``names`` and the CDR fields, which a pass-through output
    always holds (``cdr.prepare`` adds one the input lacks, empty). [] when
    every name is one of its own."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(_folded(name), []).append(name)
    for name in cdr.CDR_COLUMNS:
        if name not in names and _folded(name) in groups:
            groups[_folded(name)].insert(0, name)
    return next((g for g in groups.values() if len(g) > 1), [])


def check_inputs(inputs, pass_through: bool = False) -> None:
    """Before any row is rated, by every job (this one, ``--commit``'s,
    Dask's): each input passes ``cdr.check_file`` (a dataset directory
    ``cdr.check_dataset``) with ``cdr.REQUIRED_COLUMNS``; with
    ``pass_through`` no file (a dataset's every file) has a column without
    a name (``""``) or whose name holds a FORBIDDEN_TEXT character (NUL,
    ESC, a BOM within it: the output's header would carry it raw), nor one named
    like a column of the rated output (``OUTPUT_NAMES``): kept, it would be
    replaced by the output's (a clerk reading our charge as theirs) or
    lost; nor two named alike (``_fold_twins``: ``Call_ID`` beside
    ``call_id``, ``note`` beside ``Note``, a Parquet column given twice),
    which a spreadsheet or SQL reads as one. Names are compared as such a
    reader does (``_folded``: case, full-width letters, surrounding
    spaces). Each file's header (footer) is read once for all. Raises
    InvalidFile naming the file (and every such column, and the way out),
    InvalidInput for a dataset directory without Parquet files."""
    for raw in inputs:
        path = Path(raw)
        named = (cdr.check_dataset(path, required=cdr.REQUIRED_COLUMNS) if path.is_dir()
                 else [(path, cdr.checked_columns(path, cdr.REQUIRED_COLUMNS))])
        for f, names in named if pass_through else ():
            if "" in names:
                raise cdr.InvalidFile(
                    f, f"with --pass-through, column {names.index('') + 1} has no name: the rated output would "
                       "have a column no one can name; name it in the header or rate without --pass-through",
                    None if cdr._is_parquet(f) else 1)
            # A name holding a NUL, ESC, BOM or other FORBIDDEN_TEXT character
            # would be written raw into the rated output's header (breaker N11 F9).
            odd = [i for i, n in enumerate(names) if cdr.forbidden_characters(n)]
            if odd:
                raise cdr.InvalidFile(
                    f, f"with --pass-through, column {odd[0] + 1}'s name {cdr.excerpt(names[odd[0]])} holds a "
                       "control character: the rated output's header would carry it raw; rename it in the "
                       "header or rate without --pass-through", None if cdr._is_parquet(f) else 1)
            # Up to case, width and surrounding spaces too: a spreadsheet trims
            # a header, SQL and Excel lookups ignore case (breaker N12 F6:
            # ' charge_minor' and 'Charge_Minor' sat beside charge_minor).
            clash = [n for n in names if _folded(n) in _OUTPUT_FOLDED]
            if clash:
                raise cdr.InvalidFile(
                    f, f"with --pass-through, column(s) {', '.join(clash)} would be replaced by the rated "
                       f"output's own of that name: rename them in the file (e.g. "
                       f"{', '.join('in_' + n for n in clash[:3])}) or rate without --pass-through",
                    None if cdr._is_parquet(f) else 1)
            # Two names one to such a reader (breaker N13 F7: DuckDB read
            # Call_ID beside call_id as Call_ID_1, so `select Call_ID` gave
            # our call id; `note` beside `Note`, the other note): refused as
            # a clash with ours is, whichever of the two is the CDR's.
            twins = _fold_twins(names)
            if twins:
                parquet = cdr._is_parquet(f)
                where = "the Parquet schema" if parquet else "the header"
                what = (f"column {cdr.excerpt(twins[0])} is given {len(twins)} times in {where}"
                        if len(set(twins)) == 1 else
                        f"columns {', '.join(map(cdr.excerpt, twins))} differ only in case, full-width letters "
                        "or surrounding spaces: a spreadsheet or SQL takes them as one")
                raise cdr.InvalidFile(
                    f, f"with --pass-through, {what}, so the rated output's columns would be misread; rename "
                       "them apart in the file or rate without --pass-through", None if parquet else 1)


# Edge columns the rater needs to name rejects (status -> field value).
_RATER_COLUMNS = ("row", "call_id", "number", "forwarded_to", "start", "ivr_answer", "agent_answer", "end")
# Of those, what ``billing_view`` takes (agent_answer: for ``answered``): the
# only input columns the writer gathers without ``pass_through``.
_BILLING_SOURCE = ("row", "call_id", "number", "start", "agent_answer")
# A job that replays committed calls (``replays``) also carries what a repeat
# is compared on (``cdr.BILLABLE_FIELDS``: the caller too), and each good
# row's committed entry (null: not committed) in this column.
_REPLAY_COLUMNS = (*_RATER_COLUMNS, "caller")
_ENTRY = "committed_entry"

# Parquet writer settings, chosen by measurement (benchmarks/bench_output.py,
# figures in benchmarks/README.md, 1.8M rated rows, medians of 5 interleaved
# rounds): lz4 and snappy tie on write time and size, zstd halves the file
# for ~1.3x the write time, no codec triples it; dictionary pages on every
# column cost ~1.2x the write for 0.84x the size, none at all ~2x the write
# and 1.8x the size, so only the columns whose values repeat (names, 400
# numbers) get them; statistics on every column cost ~1.5x the write, so
# only ``start`` keeps them (row-group pruning by time is what readers of a
# rated month do); 1M-row groups.
PARQUET_OPTIONS = dict(compression="lz4", write_statistics=["start"])
ROW_GROUP_ROWS = 1 << 20
_DICTIONARY = {"number", "account", "package", "rate", "destination_class", "caller_class", "caller_city",
               "caller_province", "caller_carrier", "time_band", "status", "hangup_cause", "file"}

DEFAULT_CHUNK_ROWS = 1 << 19
DEFAULT_MAX_DISORDER_MS = 3_600_000  # beyond an hour out of order: sort out of core
DEFAULT_MEMORY_LIMIT = "1GB"  # DuckDB's, for the out-of-core sort


def billing_view(rated: pa.Table, pass_through: bool = False, inputs: cdr.InputRows | None = None) -> pa.Table:
    """The rated output's columns: ``BILLING_COLUMNS`` (default) and
    ``answered`` (bool: ``rating_core.answered``, so reports and statements
    on the file count answered calls as on the ledger), or every column of
    the rated table (input columns included) with ``pass_through``, whose
    ``row`` then counts data rows from 1 as the rejects file's does
    (``cdr.rejects_file``; with ``inputs``, a ``file`` column first and the
    row within that file), so a run's rated and rejected rows number alike.
    The default view leads with the same ``row`` (and ``file``), so a
    billing system ties a rated row to its input row when call ids repeat
    or are missing."""
    if pass_through:
        return cdr.rejects_file(rated, inputs) if "row" in rated.column_names else rated
    view = rated.select([c for c in BILLING_COLUMNS if c in rated.column_names])
    if "agent_answer" in rated.column_names and "answered" not in view.column_names:
        from .answered import answered

        view = view.append_column("answered", answered(rated))
    if "row" in rated.column_names:
        # ROW_COLUMNS (without inputs: row alone, over all rows), as the rejects file names a row.
        numbered = cdr.rejects_file(rated.select(["row"]), inputs)
        for i, name in enumerate(numbered.column_names):
            view = view.add_column(i, name, numbered.column(name))
    return view


# The columns the rater writes dictionary-encoded (the names).
NAME_COLUMNS = frozenset(("account", "package", "rate", "destination_class", "caller_class", "caller_city",
                          "caller_province", "caller_carrier", "time_band"))


def encode_names(rated: pa.Table) -> pa.Table:
    """``rated`` with the name columns (``NAME_COLUMNS``) dictionary-encoded
    as the rater writes them; a table whose names are already so (the
    usual case) is returned as is (a committed file with replayed rows
    comes back with plain strings, ``Engine._answer``)."""
    if not any(n in NAME_COLUMNS and pa.types.is_string(c.type) for n, c in zip(rated.column_names, rated.columns)):
        return rated
    cols = [c.dictionary_encode() if n in NAME_COLUMNS and pa.types.is_string(c.type) else c
            for n, c in zip(rated.column_names, rated.columns)]
    return pa.Table.from_arrays(cols, names=rated.column_names)


class RatedWriter:
    """Rated tables, in chronological order, to one file (Parquet or CSV by
    ``fmt`` or extension) or, with ``by_day``, to a Parquet dataset directory
    partitioned by local start day (one file per day; a day is closed once
    the stream has passed it)."""

    def __init__(self, path: str | Path, fmt: str | None = None, by_day: bool = False):
        self.path = Path(path)
        self.by_day = by_day
        self.fmt = "parquet" if by_day else cdr.output_format(path, fmt)
        if self.fmt not in ("parquet", "csv"):
            raise InvalidInput("--format", f"unknown output format {self.fmt!r} (parquet or csv)")
        self.rows = 0
        self.files: list[Path] = []
        self._writers: dict[str | None, Any] = {}  # by day (None: one file); pyarrow writers
        self._schema: pa.Schema | None = None
        if by_day:
            if self.path.exists() and any(self.path.iterdir()):
                raise InvalidInput("--out", f"{self.path}: dataset directory exists and is not empty")
            self.path.mkdir(parents=True, exist_ok=True)

    def _open(self, key, schema: pa.Schema):
        if self.by_day:
            d = self.path / f"day={key}"
            d.mkdir(parents=True, exist_ok=True)
            target = d / "part-0.parquet"
        else:
            target = self.path
        self.files.append(target)
        if self.fmt == "csv":
            import pyarrow.csv as pacsv

            return pacsv.CSVWriter(target, schema)
        dictionary = [f.name for f in schema if f.name in _DICTIONARY]
        stats = [c for c in PARQUET_OPTIONS["write_statistics"] if c in schema.names]
        return pq.ParquetWriter(target, schema, compression=PARQUET_OPTIONS["compression"],
                                use_dictionary=dictionary, write_statistics=stats or False)

    def write(self, table: pa.Table) -> None:
        if self.fmt == "csv":
            table = _plain(table)
        if self._schema is None:
            self._schema = table.schema
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        if not self.by_day:
            w = self._writers.get(None) or self._writers.setdefault(None, self._open(None, table.schema))
            self._write(w, table)
            return
        if "day" in table.column_names:  # the partition key lives in the path
            table = table.drop_columns(["day"])
        start = pc.cast(table.column("start"), pa.int64()).to_numpy(zero_copy_only=False)
        days = np.floor_divide(start + layout.LOCAL_OFFSET_MS, layout.MS_PER_DAY)
        # Chunks come in chronological sets (every row of a later chunk
        # starts after every row of this one), in input order within a set.
        present = np.unique(days)
        for d in present:
            day = str(np.datetime64(int(d), "D"))
            part = table if len(present) == 1 else table.filter(pa.array(days == d))
            w = self._writers.get(day) or self._writers.setdefault(day, self._open(day, table.schema))
            self._write(w, part)
        if len(present):
            last = str(np.datetime64(int(present[-1]), "D"))
            for old in [k for k in self._writers if k is not None and k < last]:  # later chunks start on or after `last`
                self._writers.pop(old).close()

    def _write(self, writer, table: pa.Table) -> None:
        if self.fmt == "parquet":
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        else:
            writer.write_table(table)
        self.rows += table.num_rows

    def close(self, empty_schema: pa.Schema | None = None) -> None:
        if not self._writers and not self.by_day and empty_schema is not None:
            self._writers[None] = self._open(None, _plain_schema(empty_schema) if self.fmt == "csv" else empty_schema)
        for w in self._writers.values():
            w.close()
        self._writers.clear()


def _csv_type(t: pa.DataType) -> pa.DataType:
    """The type a column has in CSV output (``_plain``)."""
    t = t.value_type if pa.types.is_dictionary(t) else t
    if pa.types.is_nested(t) or _bytes_type(t) or t in (pa.string_view(), pa.large_string()):
        return pa.string()
    return t


def _bytes_type(t: pa.DataType) -> bool:
    return (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
            or t == pa.binary_view())


_TEXT_TYPES = (pa.string(), pa.large_string(), pa.string_view())


def _plain(table: pa.Table) -> pa.Table:
    """A table as CSV text takes it: dictionaries decoded; bytes (a
    pass-through column of a file that was not all UTF-8, fixed-size or
    view binary) as text, a byte that is not UTF-8 written ``\\xff`` and a
    NUL or other control character ``\\x00`` as a reject shows it
    (``cdr.bytes_as_text``: never raw bytes in a text file), and so a
    pass-through text column's control characters (the CDR's own text
    columns, ``cdr.ARROW_STRINGS``, hold none: such a row is a reject); lists, structs
    and maps as JSON. pyarrow's CSV writer
    refuses the bytes and the nested types: after a commit, that was an
    internal error with the calls already charged (breakers). Every text
    cell that starts like a formula gets a leading quote (``cells``: people
    open the rated CSV in Excel; ``cdr.read_rated`` takes it off again);
    number, time and bool columns are written as they are. The header's
    names are quoted as cells are (a pass-through column named ``=cmd``)."""
    import json

    cols = []
    for name, c in zip(table.column_names, table.columns):
        if pa.types.is_dictionary(c.type) and pa.types.is_string(c.type.value_type):
            # The names: each distinct value quoted once, in the dictionary, not in every row.
            quoted = [pa.DictionaryArray.from_arrays(k.indices, cells.column(cdr.bytes_as_text(k.dictionary)))
                      for k in c.chunks]
            cols.append(pa.chunked_array(quoted, c.type).cast(pa.string()))
            continue
        if pa.types.is_dictionary(c.type):
            c = c.cast(c.type.value_type)
        t = c.type
        if _bytes_type(t) or (t in _TEXT_TYPES and name not in cdr.ARROW_STRINGS):
            # A pass-through text column as bytes are: the edge judged only the CDR's text columns
            # (a NUL there is a reject), so a NUL in a pass-through cell was written raw (hostile round).
            # The names (dictionaries, above) are few: each escaped once.
            c = cdr.bytes_as_text(c)
        elif pa.types.is_nested(t):
            c = pa.array([None if v is None else json.dumps(v, ensure_ascii=False, default=str)
                          for v in c.to_pylist()], pa.string())
        elif t != _csv_type(t):
            c = c.cast(pa.string())
        cols.append(cells.column(c) if pa.types.is_string(c.type) else c)
    return pa.Table.from_arrays(cols, names=[cells.cell(n) for n in table.column_names])


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(cells.cell(f.name), _csv_type(f.type)) for f in schema])


REJECT_TEXT = ("file", "call_id", "value")  # a formula in a CSV opened in Excel


def rejects_for_csv(t: pa.Table) -> pa.Table:
    """Rejects as the CSV a person opens: ``call_id`` and ``value`` cells
    that start like a formula get a leading quote (``cells``); Parquet
    keeps them as given."""
    return cells.table(t, REJECT_TEXT)


class RejectsWriter:
    """Rejects (``cdr.REJECT_SCHEMA``) to CSV or Parquet, as they come, as
    a rejects file (``cdr.REJECT_FILE_SCHEMA``): each names its input file
    and its row within it (``inputs``, filled as the job reads)."""

    def __init__(self, path: str | Path, inputs: cdr.InputRows):
        self.path = Path(path)
        self.rows = 0
        self.inputs = inputs
        fmt = cdr.output_format(self.path)
        self._csv = fmt != "parquet"
        if fmt == "parquet":
            self._w = pq.ParquetWriter(self.path, cdr.REJECT_FILE_SCHEMA, compression="lz4")
        else:
            import pyarrow.csv as pacsv

            self._w = pacsv.CSVWriter(self.path, cdr.REJECT_FILE_SCHEMA)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            table = cdr.rejects_file_table(table.cast(cdr.REJECT_SCHEMA), self.inputs)  # row from 1 in its file
            self._w.write_table(rejects_for_csv(table) if self._csv else table)
            self.rows += table.num_rows

    def close(self) -> None:
        self._w.close()


# --- answer columns absent (newcomer8 F8) --------------------------------------------
ANSWER_COLUMNS = ("ivr_answer", "agent_answer")  # optional CDR columns a number's billing start reads


def answer_columns_absent(inputs, rater: Rater | None = None) -> list[dict]:
    """Each input file (a dataset's Parquet file) whose header (schema)
    lacks an answer column, with its calls to numbers that bill from it:
    ``{"file", "columns", "calls"}`` (``RatingSummary.answer_columns_absent``).
    A missing column reads as an empty cell on every row, so such calls are
    rated unanswered (0.00): no agent_answer, numbers billing from the
    agent's answer (and from the IVR's, if ivr_answer is missing too); no
    ivr_answer, numbers billing from the IVR's answer (then billed from the
    agent's). ``calls`` counts those rows by ``rater``'s numbers (the
    file's ``number`` column read again: only for such a file); None
    without a rater. A file with no such call is left out. Rating results
    are not changed."""
    found = []
    for raw in inputs:
        path = Path(raw)
        named = cdr.check_dataset(path) if path.is_dir() else [(path, cdr.checked_columns(path))]
        for f, names in named:
            absent = [c for c in ANSWER_COLUMNS if c not in names]
            if not absent:
                continue
            calls = None
            if rater is not None:
                counts = np.zeros(len(layout.BILLING_START), np.int64)
                for batch in cdr.read_batches(f, columns=["number"], cdr_input=True):
                    _, _, ok, _, keys, _ = cdr._normalize_numbers(batch.column("number"))
                    counts += rater.billing_starts_of(np.asarray(keys, np.int64)[ok])
                calls = int(sum(counts[layout.BILLING_START.index(c)] for c in absent))
                if not calls:
                    continue
            found.append({"file": str(f) if path.is_dir() else str(raw), "columns": absent, "calls": calls})
    return found


# --- inputs ---------------------------------------------------------------------
_NO_PRE_BUFFER = ds.ParquetFragmentScanOptions(pre_buffer=False)


def input_batches(inputs: Iterable[str | Path], batch_rows: int = DEFAULT_CHUNK_ROWS,
                  columns: list[str] | None = None, parquet_only: bool = False,
                  files: cdr.InputRows | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of CSV/Parquet files and Parquet dataset directories,
    in input order (files in the given order; a directory's files in path
    order). Hive partition columns of a directory (``day=...``) are added as
    string columns, as ``pyarrow.dataset`` would. ``columns``: read only
    these (absent ones: null strings from CSV, left out from Parquet); with
    ``parquet_only``, CSV files are read whole (so a CSV missing a required
    column is refused as such, not read as empty cells). ``files``: where
    each file's rows begin is recorded there (``cdr.InputRows``)."""
    row = 0
    for raw in inputs:
        path = Path(raw)
        if not path.is_dir():
            use = columns if not parquet_only or cdr._is_parquet(path) else None
            if files is not None:
                files.begin(str(raw), row)
            for batch in cdr.read_batches(path, batch_rows, use, cdr_input=True):  # the edge: encodings, bad files
                row += batch.num_rows
                yield batch
            continue
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        for f in cdr.dataset_files(path):
            if files is not None:
                files.begin(str(f), row)
            frag = ds.dataset(f, format="parquet")
            names = frag.schema.names
            keys = {k: v for k, v in (part.split("=", 1) for part in f.relative_to(path).parts[:-1] if "=" in part)}
            for batch in frag.to_batches(batch_size=batch_rows,
                                         columns=None if columns is None else [c for c in columns if c in names],
                                         fragment_scan_options=_NO_PRE_BUFFER):  # as cdr.read_batches
                if columns is None:
                    for k, v in keys.items():
                        if k not in names:
                            batch = batch.append_column(k, pa.array([v] * batch.num_rows, pa.string()))
                row += batch.num_rows
                yield batch
        del dataset


# --- scan: repeated call ids, disorder ---------------------------------------------
@dataclass
class Scan:
    """What the bulk job's first pass learns of its input: the row count,
    the call-id hashes seen more than once, and how far out of time order
    the rows are (ms), which decides streaming vs sorting out of core."""

    rows: int
    repeated: np.ndarray  # sorted uint64 hashes (``call_id_hashes``) that occur more than once in the input
    disorder_ms: int  # max over rows of (latest start among earlier rows - start), valid starts only


_HASH_BUCKET_BITS = 4  # the scan sorts its hashes a sixteenth at a time: memory ~8 bytes a row, not 16
_HASH_BUCKETS = 1 << _HASH_BUCKET_BITS


def call_id_hashes(ids) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit hashes, present mask) of a call-id column as the edge reads it
    (``cdr._as_string``, or ``cdr.text_column`` for a binary column): equal ids get equal hashes (``kernels.ids``);
    ``present``: not null and not empty (the only ids that can repeat)."""
    from .kernels import ids as ids_kernel
    from .numbers import string_buffers

    s = cdr.text_column(ids)[0] if cdr.binary_type(ids.type) else cdr._as_string(ids)
    out = np.empty(len(s), np.uint64)
    if len(s) == 0:
        return out, np.zeros(0, bool)
    offsets, data = string_buffers(s)
    ids_kernel.hash_strings(offsets, data, out)
    present = np.diff(offsets) > 0
    if s.null_count:
        present &= pc.is_valid(s).to_numpy(zero_copy_only=False)
    return out, present


_FILTER_BITS = 20  # may_repeat's filter: one bool per value of a hash's top 20 bits (1 MB)
_FILTER_SHIFT = np.uint64(64 - _FILTER_BITS)


def repeat_filter(repeated: np.ndarray) -> np.ndarray:
    """``may_repeat``'s filter of ``repeated``: a bool per value of a hash's
    top ``_FILTER_BITS`` bits, True where some repeated hash has them."""
    f = np.zeros(1 << _FILTER_BITS, bool)
    f[(repeated >> _FILTER_SHIFT).astype(np.intp)] = True
    return f


def may_repeat(ids, repeated: np.ndarray, prefilter: np.ndarray | None = None) -> np.ndarray:
    """Where a call id's hash is one of ``repeated`` (``Scan.repeated``,
    sorted): every copy of a repeated id, and perhaps an id whose hash
    collides with one (rare; the caller compares the ids themselves).
    ``prefilter``: ``repeat_filter(repeated)``, made once for many calls.
    A row passes the filter by its hash's top bits (one table lookup; with
    the demo's ~0.05% repeated ids ~2% pass at 100M rows, ~0.1% at 2M) and
    only those are searched in ``repeated``: 2-3x faster than Arrow's
    ``is_in`` hash set (benchmarks/README.md, round 7)."""
    h, present = call_id_hashes(ids)
    hit = np.zeros(len(h), bool)
    if len(repeated) == 0 or len(h) == 0:
        return hit
    f = repeat_filter(repeated) if prefilter is None else prefilter
    cand = np.flatnonzero(f[(h >> _FILTER_SHIFT).astype(np.intp)] & present)
    if len(cand):
        hv = h[cand]
        at = np.minimum(np.searchsorted(repeated, hv), len(repeated) - 1)
        hit[cand[repeated[at] == hv]] = True
    return hit


def scan(inputs, batch_rows: int = DEFAULT_CHUNK_ROWS, threads: int = 2) -> Scan:
    """Step 1 of the job (see the module doc): reads only ``call_id`` and
    ``start`` (through the edge's reader, so a bad file gets the edge's
    error; read ahead on a thread of its own, each batch judged on one of
    ``threads``). The call ids that may repeat are found from their 64-bit
    hashes (``call_id_hashes``, 8 bytes a row, sorted a sixteenth of the
    hash range at a time); the rating pass compares the ids themselves."""
    rows, latest, disorder = 0, layout.NO_TIME, 0
    buckets: list[list[np.ndarray]] = [[] for _ in range(_HASH_BUCKETS)]

    def take(result) -> None:
        nonlocal rows, latest, disorder
        n, order, pieces = result
        rows += n
        if order is not None:  # disorder across batches: the latest start before this batch vs its earliest
            inner, first, last = order
            disorder = max(disorder, inner, latest - first if latest != layout.NO_TIME else 0)
            latest = max(latest, last)
        for b, piece in enumerate(pieces):
            if len(piece):
                buckets[b].append(piece)

    with ThreadPoolExecutor(max(1, threads)) as pool:
        pending: deque = deque()
        for batch in cdr.prefetch(input_batches(inputs, batch_rows, ["call_id", "start"]), depth=2):
            pending.append(pool.submit(_scan_batch, batch))
            if len(pending) > threads:
                take(pending.popleft().result())
        while pending:
            take(pending.popleft().result())
    repeated = []
    for b in range(_HASH_BUCKETS):
        if not buckets[b]:
            continue
        h = np.concatenate(buckets[b])
        buckets[b].clear()  # each batch's piece of this bucket goes now
        h.sort()
        repeated.append(np.unique(h[1:][h[1:] == h[:-1]]))
    values = np.concatenate(repeated) if repeated else np.zeros(0, np.uint64)
    return Scan(rows, values, disorder)


_BUCKET_BOUNDS = np.arange(1, _HASH_BUCKETS, dtype=np.uint64) << np.uint64(64 - _HASH_BUCKET_BITS)


def _scan_batch(batch: pa.RecordBatch) -> tuple[int, tuple[int, int, int] | None, list[np.ndarray]]:
    """(rows, (disorder within the batch, earliest start, latest start) or
    None, the batch's present call-id hashes sorted and cut by bucket)."""
    names = batch.schema.names
    order = None
    if "start" in names:
        start, _present, ok = cdr.parse_times(batch.column("start"))  # bytes not UTF-8: not a time
        s = start[ok]
        if len(s):
            running = np.maximum.accumulate(s)
            inner = int((running[:-1] - s[1:]).max()) if len(s) > 1 else 0  # latest earlier start - start
            order = (max(inner, 0), int(s.min()), int(running[-1]))
    pieces: list[np.ndarray] = []
    if "call_id" in names:
        h, present = call_id_hashes(batch.column("call_id"))
        h = np.sort(h[present])
        cuts = [0, *np.searchsorted(h, _BUCKET_BOUNDS).tolist(), len(h)]
        pieces = [h[cuts[b]:cuts[b + 1]].copy() for b in range(_HASH_BUCKETS)]  # copies: freed bucket by bucket
    return batch.num_rows, order, pieces


# --- duplicates ------------------------------------------------------------------
@dataclass
class _Edged:
    """One chunk through the edge: its rejects (duplicates included) and
    its good rows (``_good_rows``)."""

    rows_in: int
    rejects: pa.Table
    rows: pa.Table
    order: list[str]
    duplicates: int


class Duplicates(cdr.SeenIds):
    """Exact duplicate call ids across chunks taken in input order, holding
    only the ids whose hash repeats (``Scan.repeated``), as ``cdr.SeenIds``
    holds them (``later_copies`` of those candidates, in input order).
    ``repeated`` may come later (``resolve``), from a scan still running
    while the edge prepares the first chunks; ``wait`` blocks until then."""

    def __init__(self, repeated: np.ndarray | None = None):
        super().__init__()
        self.repeated = np.zeros(0, np.uint64)
        self.prefilter: np.ndarray | None = None  # repeat_filter(repeated), made once
        self._ready = threading.Event()
        self._failed = False
        if repeated is not None:
            self.resolve(repeated)

    def resolve(self, repeated: np.ndarray | None) -> None:
        """The scan's ``repeated`` hashes; None: the scan failed (``wait``
        then raises; the job reports the scan's own error)."""
        if repeated is None:
            self._failed = True
        else:
            self.repeated = repeated
            self.prefilter = repeat_filter(repeated) if len(repeated) else None
        self._ready.set()

    def wait(self) -> np.ndarray:
        """``repeated``, once the scan has found it."""
        self._ready.wait()
        if self._failed:
            raise _ScanFailed()
        return self.repeated


def _edge_chunk(rater: Rater, batch, offset: int, pass_through: bool, dups: Duplicates,
                my_turn: threading.Event, next_turn: threading.Event, replays=None) -> _Edged:
    """The edge on one chunk, on a pool thread: prepare and hash in parallel
    with the other chunks; the duplicate check in input order (``my_turn``
    is set once the previous chunk's check is done; this chunk's sets
    ``next_turn``); then its good rows, in parallel again, with their
    committed entries (``_ENTRY``) when the job ``replays``."""
    try:
        p = rater.prepare(batch, offset)
        ids = p.table.column("call_id")
        repeated = dups.wait()  # the scan runs beside the first chunks' edge
        cand = (np.flatnonzero(p.good & may_repeat(ids, repeated, dups.prefilter)) if len(repeated)
                else np.zeros(0, np.intp))
        my_turn.wait()
        dup = dups.later_copies(ids, cand) if len(cand) else np.zeros(0, np.int64)
    finally:
        next_turn.set()  # also on an error: the next chunk goes on, the error comes out in input order
    if len(dup):
        p = cdr.reject_copies(p, dup)
    rows = _good_rows(p, pass_through, replays)
    if replays is not None:
        rows = rows.append_column(_ENTRY, replays.lookup(rows.column("call_id")))
    return _Edged(p.rows_in, p.rejects, rows, _order(p, pass_through, replays), p.duplicates)


class _ScanFailed(Exception):
    """The scan ended in an error, which the job raises instead."""


# --- good rows as a plain table (buffer and spill) ---------------------------------
_KEYS = ("number_key", "caller_key", "forwarded_key")
_TIMES = {"start_ms": "start", "ivr_answer_ms": "ivr_answer", "agent_answer_ms": "agent_answer", "end_ms": "end"}


def _good_rows(p: cdr.Prepared, pass_through: bool, replays=None) -> pa.Table:
    """The good rows of ``p``: the edge columns the output needs (and a
    repeat is compared on, when the job ``replays``) plus the kernel's
    arrays (keys and epoch ms) as int64 columns."""
    idx = np.flatnonzero(p.good)
    everything = len(idx) == p.rows_in
    table = p.table if pass_through else p.table.select(_order(p, False, replays))
    table = table.drop_columns([c for c in _TIMES.values() if c in table.column_names])
    if not everything:
        table = table.take(pa.array(idx))
    for k in (*_KEYS, *_TIMES):
        v = np.ascontiguousarray(p.cdr[k] if everything else p.cdr[k][idx], np.int64)
        table = table.append_column(k, pa.Array.from_buffers(pa.int64(), len(v), [None, pa.py_buffer(v)]))
    return table


def _prepared_of(rows: pa.Table, column_order: list[str]) -> cdr.Prepared:
    """Rows of ``_good_rows`` back into a ``cdr.Prepared`` (all good, deduped)."""
    arrays = {k: np.ascontiguousarray(rows.column(k).to_numpy(zero_copy_only=False), np.int64)
              for k in (*_KEYS, *_TIMES)}
    n = rows.num_rows
    cols = {}
    for name in column_order:
        if name in _TIMES.values():
            t = arrays[name + "_ms"]
            cols[name] = pa.Array.from_buffers(cdr.TIME_TYPE, n, [cdr._validity(t != layout.NO_TIME), pa.py_buffer(t)])
        else:
            cols[name] = rows.column(name)
    arrays = {"number_key": arrays["number_key"], "caller_key": arrays["caller_key"],
              "forwarded_key": arrays["forwarded_key"], **{k: arrays[k] for k in _TIMES}}
    return cdr.Prepared(pa.table(cols), arrays, np.ones(n, bool), cdr.REJECT_SCHEMA.empty_table(), n, deduped=True)


# --- the job -----------------------------------------------------------------------
@dataclass
class JobResult:
    """A bulk job's outcome: its RatingSummary, wall seconds, how it ran
    (``mode``), the chunks rated and the rated files written."""

    summary: RatingSummary
    seconds: float
    mode: str  # "stream" (reorder buffer) or "sorted" (spilled and sorted out of core)
    chunks: int
    files: list[Path] = field(default_factory=list)  # rated output files written


class _Totals:
    def __init__(self):
        self.rows_in = self.rated = self.rejected = self.duplicates = self.charge = self.replayed = 0
        self.replayed_charge = 0
        self.by_reason: dict[str, int] = {}

    def rejects(self, rejects: pa.Table) -> None:
        count_reasons(rejects, self.by_reason)
        self.rejected += rejects.num_rows

    def summary(self) -> RatingSummary:
        return RatingSummary(self.rows_in, self.rated, self.rejected, self.duplicates, self.charge,
                             dict(sorted(self.by_reason.items(), key=lambda kv: -kv[1])), self.replayed,
                             replayed_charge=self.replayed_charge)


def rate_dataset(inputs, rater: Rater, state: dict, out: str | Path, rejects: str | Path,
                 fmt: str | None = None, *, pass_through: bool = False, by_day: bool = False,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, threads: int = 2,
                 max_disorder_ms: int = DEFAULT_MAX_DISORDER_MS, memory_limit: str = DEFAULT_MEMORY_LIMIT,
                 temp_dir: str | Path | None = None, force_sort: bool = False,
                 bundle_usage=None, replays=None) -> JobResult:
    """Rate ``inputs`` (CSV/Parquet files, Parquet dataset directories) in
    bounded memory; see the module doc for the steps.

    ``state``: opening balances (``Rater.opening_state()`` or the ledger's),
    updated in place to the closing balances; with a usage table (both
    give one) the bundle usage of every period-month the job meets is kept
    in it from chunk to chunk (``Rater.carry_usage``), so late bundle calls
    are settled as a commit settles them. ``bundle_usage``: the ledger's
    usage of the accounts given, read-only (``Rater.rate_prepared``; None:
    none used before the job). ``replays``: the ledger's committed calls
    (``engine.Replays``; None: none, the job reads no call id of the
    ledger): a call id it holds is not rated again but answered with its
    stored result, in its place among the rated rows, as ``rate --commit``
    replays it (a repeat whose billable content differs is the same reject
    ``committed_differently``), flagged True in the output's ``replayed``
    (bool, last, as ``--commit``'s; always there, False for a rated row),
    and the summary counts those rows in ``replayed`` (rated, charged
    nothing). ``out``: a file (Parquet or CSV
    by ``fmt`` or extension) or, with ``by_day``, a dataset directory.
    ``rejects``: CSV (or .parquet). Memory: about ``chunk_rows`` x
    (``threads`` + 2) rows at once, plus the repeated call ids, plus 8
    bytes per input row while it scans, plus DuckDB's ``memory_limit``
    while it sorts. Raises
    ``InvalidInput`` for an input that ``check_inputs`` refuses (before
    anything is written).
    """
    check_inputs(inputs, pass_through)
    # The cyclic GC is paused meanwhile: the job allocates few cycles, but
    # its many short-lived Arrow wrappers trigger full collections that walk
    # every object the process holds (~8% of the job's CPU, py-spy).
    enabled = gc.isenabled()
    gc.disable()
    keep_freed_memory()
    try:
        return _rate_dataset(inputs, rater, state, out, rejects, fmt, pass_through, by_day, chunk_rows, threads,
                             max_disorder_ms, memory_limit, temp_dir, force_sort, bundle_usage, replays)
    finally:
        if enabled:
            gc.enable()


# glibc's malloc (NumPy's arrays) by default gives a freed block of a few MB
# back to the kernel and maps fresh pages for the next: every chunk's arrays
# (keys, times, the kernel's outputs, the picked rated rows: 0.5-4 MB each)
# were page-faulted in anew, a third of the edge's, the kernel's and the
# gather's CPU (thread CPU per 524,288-row chunk: edge 65 -> 43 ms, good rows
# 25 -> 9, kernel call 73 -> 51, gather 43 -> 27; benchmarks/README.md). Blocks
# below 32 MB (glibc's largest heap threshold) now come from the heap, and up
# to 64 MB freed at a heap's top stays mapped for reuse (256 MB gained no more
# and raised the sorted job's peak RSS 12% at 10M; with 64 MB it is +2%).
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 32 << 20, 64 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for the bulk job's chunk-sized arrays (see
    above), for the rest of the process (``rating400 rate`` is one job a
    process). -> whether it applied (False off glibc, e.g. macOS, where
    nothing changes)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def _rate_dataset(inputs, rater: Rater, state: dict, out, rejects, fmt, pass_through: bool, by_day: bool,
                  chunk_rows: int, threads: int, max_disorder_ms: int, memory_limit: str, temp_dir,
                  force_sort: bool, bundle_usage=None, replays=None) -> JobResult:
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="rating400-job-", dir=temp_dir))
    scanning = ThreadPoolExecutor(1)
    edge: Generator[_Edged, None, None] | None = None
    try:
        # The scan (step 1) runs on a thread of its own while the edge reads
        # and prepares the first chunks; their duplicate check waits for its
        # repeated hashes (``Duplicates.wait``), so the results are those of
        # scanning first. Errors come out as if it had: the scan's, then "no
        # CDR rows", then the edge's.
        dups = Duplicates(None)
        found_f = scanning.submit(scan, inputs, chunk_rows, threads)
        found_f.add_done_callback(lambda f: dups.resolve(None if f.exception() else f.result().repeated))
        files = cdr.InputRows()  # filled as the edge reads
        edge = _edge(inputs, rater, chunk_rows, threads, pass_through, dups, files, replays)
        first: list[_Edged] = []
        edge_error: Exception | None = None
        try:
            first.extend(itertools.islice(edge, 1))  # returns once the scan is done (the first duplicate check)
        except Exception as e:  # raised where the edge would have raised it, after the scan's checks
            edge_error = e
        found = found_f.result()
        if found.rows == 0:
            raise InvalidInput("input", "no CDR rows", ", ".join(str(p) for p in inputs))
        sort = force_sort or found.disorder_ms > max_disorder_ms
        writer = RatedWriter(out, fmt, by_day)
        rejects_out = RejectsWriter(rejects, files)
        totals = _Totals()
        chunks = 0
        empty_schema = None
        # Gathering, naming and writing the rated rows run on a thread of
        # their own (pyarrow's take and Parquet writer release the GIL), in
        # settling order, at most two chunks behind the kernel.
        output = _Behind(depth=2)
        try:
            def gather_and_write(result: RatingResult) -> None:
                nonlocal empty_schema
                at = 0
                for t in result.rated_batches(ROW_GROUP_ROWS, None if pass_through else _BILLING_SOURCE):
                    # ``replayed`` last, as ``rate --commit`` writes it; False
                    # throughout when nothing was (one schema, ledger or not).
                    t = billing_view(t, pass_through, files)
                    flags = (np.zeros(t.num_rows, bool) if result.replayed is None
                             else result.replayed[at:at + t.num_rows])
                    t = encode_names(t).append_column("replayed", pa.array(flags))
                    at += t.num_rows
                    if t.num_rows:
                        writer.write(t)
                    elif empty_schema is None:
                        empty_schema = t.schema

            def settle(rows: pa.Table, order: list[str]) -> None:
                nonlocal chunks
                old = None
                if replays is not None and rows.column(_ENTRY).null_count < rows.num_rows:
                    committed = pc.is_valid(rows.column(_ENTRY))
                    old, rows = rows.filter(committed), rows.filter(pc.invert(committed))
                result = rater.rate_prepared(_prepared_of(rows, order), state, bundle_usage)
                rater.carry_usage(state)
                chunks += 1
                s = result.summary
                totals.rated += s.rated
                totals.charge += s.charge
                totals.rejects(result.rejects)
                rejects_out.write(result.rejects)
                if old is not None:  # committed before: the stored results, not rated again
                    rated, flags, differing = replays.answer(result.rated, _prepared_of(old, order).table,
                                                             old.column(_ENTRY))
                    totals.rated += int(flags.sum())
                    totals.replayed += int(flags.sum())
                    totals.replayed_charge += replayed_charge(rated, flags)
                    totals.rejects(differing)
                    rejects_out.write(differing)
                    result = RatingResult(rated, result.rejects, state, s, replayed=flags)
                output.submit(gather_and_write, result)

            if edge_error is not None:
                raise edge_error
            edged = itertools.chain(first, edge)
            if sort:
                _sorted(edged, settle, totals, rejects_out, pass_through, chunk_rows, memory_limit, tmp, threads)
            else:
                _stream(edged, settle, totals, rejects_out, pass_through, found.disorder_ms)
            output.drain()
            if empty_schema is None and writer.rows == 0:  # nothing rated: an empty file of the same columns
                empty = pa.table({c: pa.array([], pa.string()) for c in cdr.REQUIRED_COLUMNS})
                empty_schema = billing_view(rater.rate(empty).rated, pass_through, files).schema
                empty_schema = empty_schema.append(pa.field("replayed", pa.bool_()))
        finally:
            output.shutdown()  # on an error: let the pending writes end before closing the files
            writer.close(empty_schema)
            rejects_out.close()
        summary = totals.summary()
        if summary.rows_in != found.rows:
            raise AssertionError(f"rows read twice differ: {found.rows} then {summary.rows_in}")
        return JobResult(summary, time.perf_counter() - began, "sorted" if sort else "stream", chunks, writer.files)
    finally:
        if edge is not None:
            edge.close()  # on an error: the edge's pool ends its chunks before the temporary files go
        scanning.shutdown(wait=True)
        shutil.rmtree(tmp, ignore_errors=True)


class _Behind:
    """Calls run in order on one thread of their own, at most ``depth``
    pending (so memory stays bounded); ``drain`` waits for them and raises
    the first error."""

    def __init__(self, depth: int):
        self.depth = depth
        self._pool = ThreadPoolExecutor(1)
        self._pending: deque = deque()

    def submit(self, fn, *args) -> None:
        self._pending.append(self._pool.submit(fn, *args))
        while len(self._pending) > self.depth:
            self._pending.popleft().result()

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
        self._pending.clear()


def _order(p: cdr.Prepared, pass_through: bool, replays=None) -> list[str]:
    return p.table.column_names if pass_through else list(_RATER_COLUMNS if replays is None else _REPLAY_COLUMNS)


def _edge(inputs, rater: Rater, chunk_rows: int, threads: int, pass_through: bool,
          dups: Duplicates, files: cdr.InputRows | None = None, replays=None) -> Generator[_Edged, None, None]:
    """The edge (``_edge_chunk``) on ``threads`` chunks at once (pyarrow,
    NumPy and the kernels release the GIL), the input read ahead on a
    thread of its own; yielded in input order."""
    with ThreadPoolExecutor(max(1, threads)) as pool:
        pending: deque = deque()
        offset = 0
        turn = threading.Event()
        turn.set()  # the first chunk's duplicate check goes first
        # Without pass-through the rated output needs the CDR fields only:
        # a Parquet file's other columns (hangup cause, extras) are not read.
        columns = None if pass_through else list(cdr.FIELDS)
        for batch in cdr.prefetch(input_batches(inputs, chunk_rows, columns, parquet_only=True, files=files),
                                  depth=2):
            # Chunks start in input order (one pool queue), so a chunk waiting
            # for its turn waits for one already started: no deadlock.
            following = threading.Event()
            pending.append(pool.submit(_edge_chunk, rater, batch, offset, pass_through, dups, turn, following,
                                       replays))
            turn = following
            offset += batch.num_rows
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _edge_rejects(e: _Edged, totals: _Totals, rejects_out: RejectsWriter) -> None:
    totals.rows_in += e.rows_in
    totals.duplicates += e.duplicates
    totals.rejects(e.rejects)
    rejects_out.write(e.rejects)


def _stream(edged, settle, totals, rejects_out, pass_through: bool, disorder_ms: int) -> None:
    """Reorder buffer: settle the rows no later row can precede.

    The buffer stays in input order and a settled set is handed over in
    input order: the kernel orders a call's rows by (start, input order)
    itself, and every row of a later set starts after every row of this
    one, so the sets' concatenation is the global (start, row) order."""
    buffer: pa.Table | None = None
    order: list[str] | None = None
    latest = layout.NO_TIME
    for e in edged:
        _edge_rejects(e, totals, rejects_out)
        rows, order = e.rows, order or e.order
        if rows.num_rows == 0:
            continue
        buffer = rows if buffer is None else pa.concat_tables([buffer, rows], promote_options="permissive")
        starts = buffer.column("start_ms").to_numpy(zero_copy_only=False)
        latest = max(latest, int(starts.max()))
        ready = starts < latest - disorder_ms
        # In time order up to jitter: a long prefix is ready, the rest is
        # the last few minutes' rows. Slice the prefix (no copy), filter
        # only the tail.
        k = int(np.argmin(ready)) if not ready.all() else len(ready)
        if k == len(ready):
            settle(buffer, order)
            buffer = None
            continue
        tail = buffer.slice(k)
        tail_ready = pa.array(ready[k:])
        now = pa.concat_tables([buffer.slice(0, k), tail.filter(tail_ready)])
        if now.num_rows:
            settle(now, order)
        buffer = tail.filter(pc.invert(tail_ready))
    if buffer is not None and buffer.num_rows:
        settle(buffer, order)


def _sorted(edged, settle, totals, rejects_out, pass_through: bool, chunk_rows: int, memory_limit: str,
            tmp: Path, threads: int) -> None:
    """Spill the good rows, sort them out of core in DuckDB, settle in chunks."""
    import duckdb

    spill = tmp / "spill"
    spill.mkdir()
    order, schema, parts = None, None, 0
    for e in edged:
        _edge_rejects(e, totals, rejects_out)
        rows, order = e.rows, order or e.order
        if rows.num_rows == 0:
            continue
        if schema is None:
            schema = rows.schema
        pq.write_table(rows.cast(schema), spill / f"part-{parts:06d}.parquet", compression="lz4")
        parts += 1
    if not parts:
        return
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads,
                                 "temp_directory": str(tmp / "duckdb")})
    try:
        con.execute("SET enable_progress_bar = false")
        reader = con.sql(
            f"SELECT * FROM read_parquet('{spill}/*.parquet') ORDER BY start_ms, \"row\"").to_arrow_reader(chunk_rows)
        for batch in reader:
            rows = pa.Table.from_batches([batch])
            settle(_cast_like(rows, schema), order)
    finally:
        con.close()


def _cast_like(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """DuckDB's Arrow output back to the spilled schema (string views,
    large strings and decoded dictionaries become what they were)."""
    cols = []
    for f in schema:
        c = rows.column(f.name)
        if c.type != f.type:
            c = c.cast(f.type.value_type).dictionary_encode() if pa.types.is_dictionary(f.type) else c.cast(f.type)
        cols.append(c)
    return pa.Table.from_arrays(cols, schema=schema)
