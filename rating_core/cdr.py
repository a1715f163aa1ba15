"""CDR columns at the edge: read, normalise, validate, hand the core arrays.

Input columns (any order, extra columns pass through to the rated output)::

    call_id, caller, number (the 400 number), forwarded_to,
    start, ivr_answer, agent_answer, end, hangup_cause

Times are ISO 8601 (``2026-11-01T09:30:05+08:00``, ``...Z``; a time
without offset is Asia/Shanghai local time), integer epoch milliseconds,
or Arrow/Parquet timestamps; a column may mix ISO strings and epoch ms.

Everything is judged here, column-wise with ``pyarrow.compute`` and NumPy
(no Python per row): a row with a bad field becomes one reject naming the
FIRST bad field in column order, every other row goes on. Below this
module nothing parses or validates again: the kernel gets int64 keys and
epoch-ms arrays.

Rules (the README states them for operators):
- call_id: required.
- caller: may be missing (withheld caller id: the caller is then of unknown
  region, so out-of-town); the words switches write for a withheld caller
  (``WITHHELD_CALLERS``: anonymous, unknown, private, ...) count as missing;
  otherwise it must normalise to a number.
- number: required, must normalise to ``400`` + 7 digits.
- forwarded_to: required, must normalise to a number.
- start, end: required; start <= end < start + 1 day. The start's local
  day must lie in the snapshot's calendar table.
- ivr_answer, agent_answer: optional; when present, within [start, end].
- duplicate call ids: the first valid occurrence is rated, later ones are
  rejects ``duplicate call id`` (field ``call_id``).
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import re
from dataclasses import dataclass, field as dataclass_field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import layout
from .errors import InvalidInput
from .numbers import (FOREIGN_DIGITS, ONE_BY_ONE, WITHHELD_CALLERS, _normal_of, foreign_digits, keys_of,
                      normalize_array, number_cells, separated_cells, string_buffers, validity_bits)
from .numbers import key as number_key

STRING_COLUMNS = ("call_id", "caller", "number", "forwarded_to")
TIME_COLUMNS = ("start", "ivr_answer", "agent_answer", "end")
CDR_COLUMNS = STRING_COLUMNS + TIME_COLUMNS + ("hangup_cause",)
# Columns an input must have; the others may be absent (all missing).
REQUIRED_COLUMNS = ("call_id", "number", "forwarded_to", "start", "end")

# The longest value of a text field, in UTF-8 bytes, at every edge: a cell of
# a CDR file (a reject naming the field and the bound), a gRPC field or batch
# column (INVALID_ARGUMENT), a routing request (``Limits``' defaults are these).
# ``number`` bounds every phone-number field (caller, number, forwarded_to,
# destination): 64 leaves room for ``+86 (755) 1234-5678``-style writing in
# full-width characters (3 UTF-8 bytes each).
TEXT_BYTES = {
    "call_id": 128,  # call ids are LMDB keys (at most 511 bytes) in the ledger
    "number": 64,
    "hangup_cause": 64,
    "ivr_keys": 16,  # 5 menu levels of one key each, with room for '#' and '*'
}
# Characters no text field holds, as inclusive code point ranges (the one
# list: ``check_text``'s pattern and ``kernels.edge.text_cells``' table are
# made from it). C0 controls (NUL, ESC, tab, newline...), DEL and the C1
# controls: terminal escapes and line breaks in a rejects file or a
# statement. Unicode's Bidi_Control characters (ALM U+061C, LRM/RLM
# U+200E-U+200F, the embeddings and overrides U+202A-U+202E, the isolates
# U+2066-U+2069): they reorder what a reader sees ("Trojan Source",
# CVE-2021-42574). The invisible ones: soft hyphen U+00AD, zero-width space,
# non-joiner and joiner U+200B-U+200D, word joiner and invisible operators
# U+2060-U+206F, zero-width no-break space U+FEFF, interlinear annotation
# U+FFF9-U+FFFB, tags U+E0000-U+E007F; and the line and paragraph
# separators U+2028-U+2029. Every field here is a machine identifier (a
# call id, a phone number, a hang-up cause) in which none of them has a
# meaning, while each makes two values that print alike differ (a call id
# ``explain`` cannot find, a duplicate nobody sees), so they are refused
# rather than stripped: the cell is rejected and shown escaped.
FORBIDDEN_TEXT = ((0x00, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x061C, 0x061C), (0x200B, 0x200F),
                  (0x2028, 0x202E), (0x2060, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0xE0000, 0xE007F))

# Field order for "the first bad field": the column order above.
FIELDS = ("call_id", "caller", "number", "forwarded_to", "start", "ivr_answer", "agent_answer", "end",
          "hangup_cause")
# Why a row is rejected: (code, reason). The reason is for people (the
# rejects file's ``reason``, gRPC ``Reject.reason``); the code, beside it, is
# for programs (``code``: stable, snake_case). The rater's own rejects give
# their status name (``layout.RATE_STATUS``, e.g. ``unknown_number``) as both.
REJECT_REASONS = (
    ("missing", "missing"),
    ("not_a_phone_number", "not a phone number"),
    ("not_a_400_number", "not a 400 number (400 + 7 digits)"),
    ("not_a_time", "not a time (ISO 8601, e.g. 2026-11-01T09:30:05+08:00; no offset means Asia/Shanghai; or epoch milliseconds)"),
    ("before_start", "before start"),
    ("after_end", "after end"),
    ("end_before_start", "end before start"),
    ("call_longer_than_a_day", "call longer than a day"),
    # The calendar's span (layout.CALENDAR_FIRST_DAY .. LAST_DAY) is narrower than the
    # edge's time range: a start of 1970-01-01T00:00Z is a time, but of no calendar day.
    ("outside_calendar", f"start outside the calendar table ({layout.CALENDAR_FIRST_DAY} .. "
                         f"{layout.CALENDAR_LAST_DAY}, Asia/Shanghai days)"),
    ("duplicate_call_id", "duplicate call id"),
    ("time_out_of_range", "time outside 1970-01-01 .. 2199-12-31 (UTC)"),
    ("leading_zero_missing",
     "leading 0 missing: a landline a spreadsheet turned into a number? (export the column as text)"),
    ("spreadsheet_number", "written as a spreadsheet number (1.38E+10, 13812345678.0): export the column as text"),
    # A committed call id sent again with other billable content (``Engine.commit_prepared``).
    ("committed_differently", "call id committed before with a different value here; the first commit stands "
                              "(correct a committed call by rerating)"),
    # A text cell (``text_cells``): bytes that are not UTF-8 (a Parquet or
    # Arrow binary column), or a character of FORBIDDEN_TEXT (NUL, ESC,
    # newline, DEL, C1, a bidi override...), which a unary RateCdr refuses
    # too (``check_text``); then one reason per length bound (TEXT_BYTES).
    ("not_utf8", "not UTF-8 text"),
    ("control_character", "contains a control character"),
    # A number cell holding a decimal digit of another script (``numbers.foreign_digits``).
    ("not_ascii_digits", FOREIGN_DIGITS),
    # A cell of a CSV read as GBK/GB18030 (``read_batches``): bytes that are
    # not GB18030, or Chinese in UTF-8 (read as GBK it would become other
    # hanzi silently: a changed call id, charged again once corrected).
    ("not_gbk", "not GBK text"),
    ("utf8_in_gbk", "UTF-8 text in a GBK file (save the file in one encoding)"),
    # A call id with a space (or tab) before or after it: a padded export
    # of a call would be another id, charged again (``prepare``).
    ("spaced_call_id",
     "space before or after the call id (a padded export? remove it; the same call without it is another id)"),
    # A call id of a CSV read as GBK whose bytes are valid UTF-8 too, with
    # no UTF-8 Chinese to tell (``_gb_cell``): café-1 in UTF-8 is caf茅-1 in
    # GBK, GBK 忙-1 is æ-1 in UTF-8. Either reading could be another call's id.
    ("ambiguous_encoding",
     "reads as UTF-8 (shown) and as GBK, as other text: which one is meant cannot be told; "
     "if the file is UTF-8, rate it with --encoding utf-8; if GBK, save it as UTF-8 (Excel: CSV UTF-8) and rate that"),
) + tuple((f"longer_than_{bound}_bytes", f"longer than {bound} bytes") for bound in sorted(set(TEXT_BYTES.values()))) + (
    # A call committed (``rate --commit``, RateCdrs committed) whose start is
    # later than now + the operations' skew (``accounts.operations.AHEAD_MS``):
    # a CDR records a call that happened (``reject_future``). Last, so the
    # kernels' codes above keep their numbers.
    ("start_in_future", "start in the future (more than 10 minutes after now): a call is committed once it "
                        "happened (a dry rating prices a future call)"),
    # Its end, the same (breaker N12 F12: a call starting 9 minutes ahead and
    # lasting a day was committed and charged 216.00).
    ("end_in_future", "end in the future (more than 10 minutes after now): a call is committed once it ended"),
)
REASONS = tuple(reason for _, reason in REJECT_REASONS)
# reason -> code, of every reject: the edge's and the rater's (its status names).
REJECT_CODES = {**{reason: code for code, reason in REJECT_REASONS},
                **{status: status for status in layout.RATE_STATUS if status != "rated"}}
(MISSING, NOT_A_NUMBER, NOT_A_400_NUMBER, NOT_A_TIME, BEFORE_START, AFTER_END,
 END_BEFORE_START, TOO_LONG, OUTSIDE_CALENDAR, DUPLICATE, TIME_OUT_OF_RANGE, LOST_ZERO,
 SPREADSHEET_NUMBER, COMMITTED_DIFFERENTLY, NOT_UTF8, CONTROL_CHARACTER, NOT_ASCII_DIGITS, NOT_GBK,
 UTF8_IN_GBK, SPACED_ID, AMBIGUOUS_ID) = range(len(REASONS) - len(set(TEXT_BYTES.values())) - 2)
START_IN_FUTURE, END_IN_FUTURE = REASONS.index(REJECT_REASONS[-2][1]), REASONS.index(REJECT_REASONS[-1][1])
# The reason of a text cell over its field's bound, by bound.
LONGER_THAN = {bound: REASONS.index(f"longer than {bound} bytes") for bound in TEXT_BYTES.values()}
# The fields a repeat of a committed call id is compared on: what rates a call
# (hangup_cause and extra columns do not; a repeat differing only there is a replay).
BILLABLE_FIELDS = ("number", "caller", "forwarded_to", "start", "ivr_answer", "agent_answer", "end")
_SPREADSHEET = r"^\s*\d+(\.\d+)?[eE]\+?\d+\s*$|^\s*\d+\.0+\s*$"
# Epoch ms the edge accepts at all: [1970-01-01, 2200-01-01) UTC. Outside it a
# value is a wrong unit or garbage (2^63 overflows every later subtraction).
MIN_TIME_MS = 0
MAX_TIME_MS = 7_258_118_400_000
# The kernel's overflow bounds assume a call shorter than a day.
MAX_CALL_MS = 86_400_000
F = {name: i for i, name in enumerate(FIELDS)}

# The rated output carries times as timestamps in China's fixed offset
# (Asia/Shanghai has had no DST since 1991), so files read naturally.
TIME_TYPE = pa.timestamp("ms", tz="+08:00")
REJECT_SCHEMA = pa.schema([
    # In memory and on the wire (RatingResult.rejects, gRPC Reject.row): the
    # 0-based index of the row in the input (all files, in order) or request.
    # A rejects *file* counts from 1 (``rejects_file``).
    ("row", pa.int64()),
    ("call_id", pa.string()),
    ("field", pa.string()),
    ("reason", pa.string()),
    ("value", pa.string()),  # the offending value as given
])



# A rejects *file* (``rate --rejects``): ``file``, the input file the row
# is in, then ``REJECT_SCHEMA`` with ``row`` counted from 1 within that file,
# then ``code``: the reason's code (``REJECT_CODES``), for programs.
REJECT_FILE_SCHEMA = pa.schema([("file", pa.string()), *REJECT_SCHEMA, ("code", pa.string())])


def reject_codes(reasons: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The machine-readable ``code`` (``REJECT_CODES``) of each reject's
    ``reason`` (strings, one a reject) -> strings; null for a reason not
    of the list (none is)."""
    known = pa.array(list(REJECT_CODES), pa.string())
    at = pc.index_in(reasons, value_set=known)
    return pa.array(list(REJECT_CODES.values()), pa.string()).take(at)


def rejects_file_table(rejects: pa.Table, inputs: InputRows) -> pa.Table:
    """Rejects (``REJECT_SCHEMA``) as a rejects file holds them
    (``REJECT_FILE_SCHEMA``): ``rejects_file`` (the input file, its row
    from 1), then each reason's ``code``."""
    t = rejects_file(rejects, inputs)
    return t.append_column("code", reject_codes(t.column("reason")))


class InputRows:
    """Where each input file's rows begin in a job's row index (0-based,
    over all its inputs in order): ``begin`` as each file is reached,
    before any of its rows is rated; ``locate`` maps indexes back to (file,
    row within it). Appends and reads may come from different threads (a
    list append is atomic; a file is begun before its rows are rated)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.names: list[str] = []

    def begin(self, name: str, row: int) -> None:
        """The file ``name`` (as the user gave it; a dataset's Parquet
        file) starts at job row index ``row``. Named as a rejects file shows
        text: a byte of the name that is not UTF-8 as ``\\xff``, a
        FORBIDDEN_TEXT character (ESC, bidi controls) as Python writes it,
        so a file name never puts a terminal escape in a rejects file."""
        text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        self.starts.append(row)
        self.names.append(_escape_forbidden(text))

    def locate(self, rows: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """Job row indexes (int64) -> (the file of each, string array; the
        row within that file, 0-based int64). A file with no rows is never
        named (the next one begins at the same index)."""
        n = len(self.starts)
        starts = np.array(self.starts[:n], np.int64)
        at = np.searchsorted(starts, rows, side="right") - 1
        if len(at) and at.min() < 0:
            raise AssertionError("a reject before the first input file began")
        names = pa.DictionaryArray.from_arrays(pa.array(at.astype(np.int32)), pa.array(self.names[:n], pa.string()))
        return names.cast(pa.string()), rows - starts[at]


def rejects_file(rejects: pa.Table, inputs: InputRows | None = None) -> pa.Table:
    """Rejects as a rejects file (``rate --rejects``, CSV or Parquet) holds
    them (and a ``--pass-through`` rated file its rows): ``row`` is the data row counted from 1, the first row after a
    CSV's header (a Parquet file's first row) being row 1 -- the way every
    error of the command line names a row (``bill``, campaigns, accounts).
    With ``inputs`` (a rejects file, ``REJECT_FILE_SCHEMA``): ``file``
    names the input file of each reject and ``row`` counts within that file
    (several inputs: each from 1; a dataset directory: its Parquet file).
    In memory and on the wire ``row`` stays the 0-based index over all
    inputs (``REJECT_SCHEMA``). Earlier versions of the file held that
    index, then counted from 1 on through several inputs naming no file."""
    i = rejects.schema.get_field_index("row")
    if inputs is None:
        if rejects.num_rows == 0:
            return rejects
        return rejects.set_column(i, "row", pc.add(rejects.column(i), 1))
    rows = rejects.column(i).to_numpy().astype(np.int64, copy=False)
    names, local = inputs.locate(rows)
    out = rejects.set_column(i, "row", pa.array(local + 1))
    if "file" in out.column_names:  # a pass-through input column of that name: the output's replaces it
        out = out.drop_columns(["file"])
    return out.add_column(0, "file", names)


_ISO = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?"
_OFFSET = r"(Z|[+-]\d\d(:?\d\d)?)$"
_BATCH_ROWS = 1 << 20


# --- reading --------------------------------------------------------------
# What operators export: UTF-8 with or without a BOM (Excel's "CSV UTF-8"),
# GBK / GB18030 (Excel's plain "CSV" on Chinese Windows) and UTF-16 (Excel's
# "Unicode text"). The encoding is named (``--encoding``) or detected from the
# first SNIFF_BYTES; GBK is read as GB18030, its superset.
SNIFF_BYTES = 1 << 16
GB18030_MARK = b"\x84\x31\x95\x33"  # U+FEFF in GB18030: a byte-order mark some exporters write
CSV_BLOCK_BYTES = 64 << 20  # pyarrow's read block (no column is typed from it: CDR and rated files name their types)
BINARY_CONTROLS = 20
# A file without a mark is UTF-8 when at most 1 in UTF8_MAJORITY of its
# sniffed non-ASCII bytes fail to form valid UTF-8 sequences, or when at most
# 1 in UTF8_LINES of its sniffed lines holds bytes that are not UTF-8 (a few
# rows of another encoding in a note column: ``encoding_of``).
UTF8_MAJORITY = 2
UTF8_LINES = 20
# ... and GB18030 only on evidence: at least GB_EVIDENCE characters, and most
# of its non-ASCII characters, in GB2312's two-byte zone (both bytes 0xA1-0xFE:
# the common hanzi and punctuation a GBK export is made of). A stray Latin-1
# byte before ASCII (b"\xe9x") decodes as GB18030 too, but outside that zone.
GB_EVIDENCE = 4
# ... unless the sample is Korean as much: every byte of it decodes as EUC-KR
# and its non-ASCII characters are Hangul syllables (at least 9 in 10, at
# least KOREAN_EVIDENCE distinct). EUC-KR's Hangul are byte pairs in GB2312's
# zone, so a Korean export reads as GBK hanzi, every call id another text
# (hostile-input round): the file is refused, naming both (``encoding_of``).
# Chinese reads so only when all its hanzi are in GB2312's rows 0xB0-0xC8
# (pinyin a to r: 被叫挂机 北京 客户 is 9 such): a small Chinese sample can,
# so the bar is 16 distinct, and a refused Chinese file rates with --encoding gbk.
KOREAN_EVIDENCE = 16
GB_STRAY = 20  # at most 1 in 20 of the non-ASCII bytes may fail as GB18030 in a file guessed GBK
HEADER_BYTES_SHOWN = 8  # of a header cell not in the file's encoding, from its first bad byte (``_header``)
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # a byte not UTF-8, as surrogateescape decodes it
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # UTF-16 that is no text, as surrogatepass decodes it
_ASCII = bytes(range(128))
ENCODINGS = {"utf-8": "utf8", "utf8": "utf8", "utf-8-sig": "utf8", "gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030",
             "gb18030": "gb18030", "utf-16": "utf-16", "utf-16le": "utf-16-le", "utf-16-le": "utf-16-le",
             "utf-16be": "utf-16-be", "utf-16-be": "utf-16-be"}
# The encoding the CLI was told (``rating400 rate --encoding``); None: detect.
# A module global, not a context variable, because the bulk job's reader and
# edge threads read it too; set only through ``told_encoding``, which puts it
# back, so one command's ``--encoding`` never outlives it in a process that
# runs several (tests, a Python API caller).
DEFAULT_ENCODING: str | None = None


@contextlib.contextmanager
def told_encoding(encoding: str | None):
    """``DEFAULT_ENCODING`` is ``encoding`` (None: detect) inside the block."""
    global DEFAULT_ENCODING
    before, DEFAULT_ENCODING = DEFAULT_ENCODING, encoding
    try:
        yield
    finally:
        DEFAULT_ENCODING = before


class InvalidFile(InvalidInput):
    """A CDR file that cannot be read at all: names the file, the line (1 =
    the header) and, where there is one, the column."""

    def __init__(self, path, message: str, line: int | None = None, column: str | None = None):
        where = str(path) + (f": line {line}" if line else "")
        super().__init__(column or "file", message, where)
        self.path, self.line, self.column = str(path), line, column

    def __str__(self) -> str:  # FILE: line N: column 'x': message
        col = f"column {self.column}: " if self.column else ""
        return f"{self.record}: {col}{self.message}"


def encoding_of(path: str | Path, encoding: str | None = None) -> str:
    """The encoding to read a CSV file with (pyarrow's name for it).

    ``encoding`` (any spelling in ENCODINGS) wins; otherwise: a UTF-8 or
    UTF-16 byte-order mark; NUL bytes in every other position (UTF-16 without
    a mark); UTF-8 when its non-ASCII bytes mostly form valid UTF-8
    sequences (UTF8_MAJORITY) and it holds UTF-8 text (``_no_utf8_text``)
    or bytes not GB18030, or at most 1 in UTF8_LINES lines hold bytes
    that are not UTF-8, or GB18030 shows no evidence (GB_EVIDENCE;
    rows with bytes not UTF-8 are then rejects, ``read_batches``); else
    GB18030; either with at most
    1 in BINARY_CONTROLS characters a control (a few bad cells).
    Raises InvalidFile for an unknown encoding name, an empty file, UTF-32,
    bytes that are none of these (binary data), or GBK bytes that are as
    much Korean in EUC-KR (``_korean``): not guessed, the file names both."""
    if encoding:
        name = ENCODINGS.get(encoding.lower().replace("_", "-"))
        if name is None:
            raise InvalidFile(path, f"unknown encoding {excerpt(encoding)} (one of: utf-8, gbk, gb18030, utf-16)")
        return name
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if not head:
        raise InvalidFile(path, "empty file (no header)")
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf8"  # pyarrow skips the mark itself
    if head.startswith(GB18030_MARK):
        return "gb18030"  # the mark is dropped with the header row (``_header``, ``read_batches``)
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")) or _utf32_without_mark(head):
        # UTF-32: its mark starts like UTF-16's, and read as UTF-16 it would
        # look like a file without the columns asked for.
        raise InvalidFile(path, "UTF-32 is not a supported text encoding (save it as UTF-8, GBK or UTF-16)")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    even, odd = head[0::2], head[1::2]
    if len(head) >= 4 and odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if len(head) >= 4 and even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    final = len(head) < SNIFF_BYTES
    # Whose bytes the non-ASCII ones are. A wrong guess costs differently
    # each way: read as UTF-8, a GBK cell is its row's reject (`not UTF-8
    # text`), nothing is rated under a wrong id, and the run with `--encoding
    # gbk` rates just that row (the others' ids are the same ASCII). Read as
    # GB18030, a UTF-8 cell becomes other text silently: its call id changes,
    # and the corrected file charges that call again. So UTF-8 is the default
    # and GB18030 needs evidence: the non-ASCII bytes mostly fail as UTF-8
    # (GB18030 text almost never forms valid UTF-8 sequences) AND decode as
    # GB18030 into common hanzi (``_gb_evidence``). A stray byte in a UTF-8
    # or ASCII file is neither; it is that row's reject.
    # GBK "across the file": by bytes (most non-ASCII bytes fail as UTF-8)
    # and by lines (more than 1 in UTF8_LINES lines do). A UTF-8 file with a
    # few rows of other bytes (Windows-1251 text in a note column, whose
    # byte pairs read as GBK hanzi) is overwhelmingly UTF-8 by lines, however
    # many bad bytes those rows hold: they are its rejects (or, in a column
    # not rated, kept with the bytes escaped).
    utf8 = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(head, final=final)
    invalid = len(_ESCAPED_BYTE.findall(utf8))
    non_ascii = len(head.translate(None, _ASCII))
    # By bytes, "most fail as UTF-8" undercounts GBK: about half of a GBK
    # hanzi's byte pairs form a valid 2-byte UTF-8 character by chance, so
    # a small or repetitive export (a header ending 备注, notes 普通 or 退货)
    # can have exactly half its non-ASCII bytes valid, and was read as
    # UTF-8: its header refused, its notes garbled. So the bytes also show
    # GBK when the sample holds no UTF-8 text at all (``_no_utf8_text``:
    # no line with a non-ASCII byte is valid UTF-8, no UTF-8 CJK character)
    # and every byte of it decodes as GB18030. A UTF-8 file with a stray
    # byte has valid UTF-8 lines (or a UTF-8 CJK character) besides: still
    # UTF-8, that row its reject. A GBK sample whose bytes form a UTF-8 CJK
    # character by chance (bytes E4-E9, 80-BF, 80-BF across two hanzi) is
    # left to the byte majority, as before.
    name, text = "utf8", utf8
    if _lines_not_utf8(utf8, final) * UTF8_LINES > utf8.count("\n") + final:
        gb = codecs.getincrementaldecoder("gb18030")("surrogateescape").decode(head, final=final)
        not_gb = len(_ESCAPED_BYTE.findall(gb))
        # A few bytes that are not GB18030 (a stray 0xFF, a cell cut
        # mid-character) do not hide the evidence: at most one in
        # GB_STRAY of the non-ASCII bytes; each is its row's reject.
        if (invalid * UTF8_MAJORITY > non_ascii or (not not_gb and _no_utf8_text(head, utf8, final))) \
                and not_gb * GB_STRAY <= non_ascii and _gb_evidence(_ESCAPED_BYTE.sub("", gb)):
            name, text = "gb18030", gb
            if _korean(head, final):
                raise InvalidFile(path, "reads as GBK (Chinese) and as EUC-KR (Korean) text, each other text: "
                                        "if it is Chinese, rate it with --encoding gbk; EUC-KR is not read, "
                                        "save a Korean file as UTF-8")
    # Binary data that happens to decode (NUL padding, a tar archive of a
    # CSV): C0 controls other than tab and line ends are more than 1 in
    # BINARY_CONTROLS of the first 4096 characters. Fewer are bad cells of a
    # text file, each a reject naming its row and field.
    sample = text[:4096]
    if sum(1 for c in sample if c < " " and c not in "\t\r\n") * BINARY_CONTROLS <= len(sample):
        return name
    raise InvalidFile(path, "not text: neither UTF-8, GBK/GB18030 nor UTF-16 (binary data? name it with --encoding)")


def _korean(head: bytes, final: bool) -> bool:
    """Whether the sample ``head`` (GBK by its bytes) is EUC-KR Korean as
    well: all of it decodes as EUC-KR (a sample cut before its end may end
    inside a character), at least 9 in 10 of its non-ASCII characters so
    read are Hangul syllables, at least KOREAN_EVIDENCE distinct ones."""
    try:
        text = codecs.getincrementaldecoder("euc_kr")().decode(head, final=final)
    except UnicodeDecodeError:
        return False
    wide = [c for c in text if c >= "\x80"]
    hangul = {c for c in wide if "\uac00" <= c <= "\ud7a3"}
    return len(hangul) >= KOREAN_EVIDENCE and 10 * sum(c in hangul for c in wide) >= 9 * len(wide)


def _lines_not_utf8(utf8: str, final: bool) -> int:
    """Lines of ``utf8`` (a sample decoded with surrogateescape) holding a
    byte that is not UTF-8; a sample cut before its end leaves its last,
    partial line out."""
    lines = utf8.split("\n")
    if not final:
        lines.pop()
    return sum(1 for line in lines if _ESCAPED_BYTE.search(line))


def _no_utf8_text(head: bytes, utf8: str, final: bool) -> bool:
    """Whether the sample ``head`` (``utf8``: it decoded with surrogateescape)
    holds no UTF-8 text: every line with a non-ASCII byte holds a byte that is
    not UTF-8, and no bytes form a UTF-8 CJK character (``_UTF8_CJK``, which a
    line of UTF-8 Chinese cut by a stray byte still holds). A sample cut
    before its end leaves its last, partial line out."""
    lines = utf8.split("\n")
    if not final:
        lines.pop()
    return not _UTF8_CJK.search(head) and all(
        _ESCAPED_BYTE.search(line) for line in lines if not line.isascii())


def _gb_evidence(text: str) -> bool:
    """Whether ``text`` (a sample decoded as GB18030) reads as Chinese: at
    least GB_EVIDENCE of its non-ASCII characters, and at least half of them,
    are two-byte GB2312-zone characters (both bytes 0xA1-0xFE)."""
    wide = [c for c in text if c >= "\x80"]
    zone = 0
    for c in wide:
        b = c.encode("gb18030")
        zone += len(b) == 2 and b[0] >= 0xA1 and b[1] >= 0xA1
    return zone >= GB_EVIDENCE and 2 * zone >= len(wide)


def _utf32_without_mark(head: bytes) -> bool:
    """Text mostly below U+0100 in UTF-32 (LE or BE): in each 4-byte unit one
    end byte is the character (rarely NUL) and the other three are NUL."""
    if len(head) < 16:
        return False
    units = [head[i::4] for i in range(4)]
    zero = [u.count(0) / len(u) for u in units]
    return zero[1] > 0.9 and zero[2] > 0.9 and ((zero[0] < 0.05 and zero[3] > 0.9) or (zero[3] < 0.05 and zero[0] > 0.9))


def _header(path: Path, encoding: str) -> list[str]:
    """The header's column names (for the checks pyarrow does not make)."""
    codec = {"utf8": "utf-8-sig"}.get(encoding, encoding)
    # UTF-8 and GBK: a byte that is not, in a row below, is that row's
    # reject (the reader decodes ahead of the header), in the header it is
    # an error.
    # UTF-16: a lone surrogate below is that row's reject too (read_batches),
    # in the header an error.
    errors = "surrogateescape" if encoding in ("utf8", "gb18030") else "surrogatepass"
    with open(path, encoding=codec, errors=errors, newline="") as f:
        try:
            line = next(csv.reader(f), None)
            if line and (bad := next((c for c in line if _LONE_SURROGATE.search(c)), None)) is not None \
                    and encoding.startswith("utf-16"):
                raise InvalidFile(path, "header unreadable: not UTF-16 text (a lone surrogate: "
                                  f"{excerpt(bad.encode('utf-16-le', 'surrogatepass').decode('utf-16-le', 'backslashreplace'))})", 1)
            if line and (cut := next(filter(None, map(_ESCAPED_BYTE.search, line)), None)) is not None:
                # The bytes as they are in the file (from the first one not
                # of the encoding), in hex: a repr of them decoded would show
                # escapes doubled and the pairs that happen to decode as text.
                raw = cut.string[cut.start():].encode("utf-8" if encoding == "utf8" else encoding, "surrogateescape")
                shown = raw[:HEADER_BYTES_SHOWN].hex(" ") + (" ..." if len(raw) > HEADER_BYTES_SHOWN else "")
                hint = ("if the file is GBK, rate it with --encoding gbk" if encoding == "utf8"
                        else "name the file's encoding with --encoding")
                raise InvalidFile(path, f"header is not {'GBK' if encoding == 'gb18030' else 'UTF-8'} "
                                  f"text (bytes {shown}): {hint}", 1)
        except (UnicodeError, csv.Error) as e:  # UnicodeError: Python's utf-16 codec wants a byte-order mark
            hint = ("; a UTF-16 file without a byte-order mark: name its byte order, --encoding utf-16-le "
                    "(Windows) or utf-16-be") if encoding in ("utf-16", "utf16", "utf_16") else ""
            raise InvalidFile(path, f"header unreadable: {excerpt(e, 80)}{hint}", 1) from None
    if line and encoding == "gb18030" and line[0].startswith("\ufeff"):
        line[0] = line[0][1:]  # GB18030's byte-order mark (GB18030_MARK), decoded
    if not line or not any(c.strip() for c in line):
        raise InvalidFile(path, "no header (the first line names the columns: " + ", ".join(CDR_COLUMNS) + ")", 1)
    return line


def check_file(path: str | Path, encoding: str | None = None, required: tuple[str, ...] = ()) -> str | None:
    """Everything about a CDR file that is judged before its rows: it
    opens; Parquet is Parquet; CSV text is in a known encoding, has a
    header, names no column twice and (``required``, e.g.
    ``REQUIRED_COLUMNS`` for CDR input) has every column asked for.
    Returns the CSV encoding (None for Parquet). Raises InvalidFile."""
    return _check(Path(path), encoding, required)[0]


def checked_columns(path: str | Path, required: tuple[str, ...] = ()) -> list[str]:
    """``check_file`` (in ``DEFAULT_ENCODING``) of a CDR input, whose only
    column refused for being given twice is a CDR field, then the file's
    column names from the same read: a CSV's header, a Parquet file's
    schema (a repeated name as often as given). Raises InvalidFile."""
    return _check(Path(path), None, required, cdr_input=True)[1]


def _check(path: Path, encoding: str | None, required: tuple[str, ...] = (),
           cdr_input: bool = False) -> tuple[str | None, list[str]]:
    """``check_file``'s checks; (its result, the column names: the CSV's
    header as ``_header`` reads it, or the Parquet schema's), so
    ``read_batches`` reads a CSV's header once. ``cdr_input``: a column
    given twice is refused only when it is a CDR field (the others are not
    read; ``bulk.check_inputs`` refuses one that ``--pass-through`` keeps)."""
    encoding, names, schema = _names(path, encoding)
    if schema is None:
        assert encoding is not None  # a CSV's, always named by _names
        try:
            if not _quotes_even(path):  # pyarrow takes the end of the file as closing a quote
                problem = _diagnose(path, encoding, ValueError(""))
                if problem.message.startswith("a quote opened"):
                    raise problem
        except OSError as e:
            raise InvalidFile(path, f"cannot read: {e.strerror or e}") from None
    else:
        for f in schema:  # a nested cell is no CDR value (list, struct, map columns)
            if f.name in CDR_COLUMNS and pa.types.is_nested(f.type):
                raise InvalidFile(path, f"a {f.type} column; CDR fields are text, numbers or timestamps",
                                  column=f.name)
    seen = set()
    for name in names:
        # CDR input reads only the CDR fields (README "Pass-through columns"):
        # another column given twice is no ambiguity unless --pass-through
        # keeps it (``bulk.check_inputs``; breaker N13 F12: a Parquet file
        # with two `note` columns was refused without it).
        if name in seen and (not cdr_input or name in CDR_COLUMNS):
            raise (InvalidFile(path, "column given twice in the header", 1, excerpt(name)) if schema is None
                   else InvalidFile(path, "column given twice in the Parquet schema", None, excerpt(name)))
        seen.add(name)
    if encoding and any(c not in seen for c in required) and any("\t" in n for n in names):
        # Excel's "Unicode text" export: UTF-16 with a mark, columns separated
        # by tabs; read as CSV it is one column named "call_id\tcaller...".
        label = "UTF-16" if encoding.startswith("utf-16") else "GBK" if encoding == "gb18030" else "UTF-8"
        raise InvalidFile(path, f"{label} text whose columns are separated by tabs, not commas (Excel's "
                                f"\"Unicode text\"?): rate reads CSV; in Excel, save it as \"CSV UTF-8 (Comma "
                                f"delimited)\" and rate that file", 1)
    _require(path, seen, required, None if schema is not None else 1)
    return encoding, names  # encoding None for Parquet


def _names(path: Path, encoding: str | None) -> tuple[str | None, list[str], pa.Schema | None]:
    """(the CSV's encoding, its header's names, None) or (None, the names,
    the Parquet schema): what a file is opened for before its rows, read
    once for ``check_file``'s checks. Raises InvalidFile."""
    if _is_parquet(path):
        try:
            schema = pq.ParquetFile(path).schema_arrow
        except OSError as e:
            raise InvalidFile(path, f"cannot read: {excerpt(e, 100)}") from None
        except Exception as e:  # noqa: BLE001 - pyarrow's errors for a file that is not Parquet
            raise InvalidFile(path, f"not a Parquet file: {excerpt(e, 100)}") from None
        return None, schema.names, schema
    try:
        encoding = encoding_of(path, encoding or DEFAULT_ENCODING)
        return encoding, _header(path, encoding), None
    except OSError as e:
        raise InvalidFile(path, f"cannot read: {e.strerror or e}") from None


# UTF-8 Chinese: UTF8_CJK_RUN 3-byte UTF-8 sequences with a CJK lead byte
# (U+4E00..U+9FFF: E4-E9, then two bytes 0x80-0xBF) in a row.
UTF8_CJK_RUN = 1
_UTF8_CJK = re.compile(rb"(?:[\xe4-\xe9][\x80-\xbf][\x80-\xbf]){%d}" % UTF8_CJK_RUN)
# A text cell of a GBK file that is no GBK text, as ``read_batches`` hands it
# to the edge: a marker that is never UTF-8 (0xFF) and says why, then the
# cell's own bytes; ``text_column`` turns it into that reason.
# The marker carries a nonce drawn per process, so no input can forge it.
_GB_NONCE = os.urandom(8)
_GB_MARK = {NOT_GBK: b"\xff\x00g" + _GB_NONCE, UTF8_IN_GBK: b"\xff\x00u" + _GB_NONCE,
            AMBIGUOUS_ID: b"\xff\x00a" + _GB_NONCE}
_GB_MARK_LEN = 3 + len(_GB_NONCE)
_GB_MARKED = {mark: why for why, mark in _GB_MARK.items()}


def _utf8_cjk_runs(data: bytes) -> np.ndarray:
    """Offsets in ``data`` where a ``_UTF8_CJK`` match starts, vectorised
    (the regex scans a few MB/s slower than this over a whole column)."""
    a = np.frombuffer(data, np.uint8)
    if len(a) < 3 * UTF8_CJK_RUN:
        return np.empty(0, np.intp)
    lead = (a >= 0xE4) & (a <= 0xE9)
    trail = (a >= 0x80) & (a <= 0xBF)
    run = lead[:-2] & trail[1:-1] & trail[2:]  # a 3-byte sequence starts here
    for _ in range(1, UTF8_CJK_RUN):
        run = run[:-3] & run[3:]
    return np.flatnonzero(run)


def _one_byte_escape(e: UnicodeError) -> tuple[str | bytes, int]:
    # Escape the first byte the decoder refused and go on from the next one
    # (``backslashreplace`` escapes the whole refused sequence: 0xFF "04"
    # would show as \xff\x30\x34, not \xff04 as the UTF-8 reading shows it).
    assert isinstance(e, UnicodeDecodeError)  # registered for decoding only
    return f"\\x{e.object[e.start]:02x}", e.start + 1


codecs.register_error("rating400.one_byte", _one_byte_escape)


def _gb_cell(raw: bytes, call_id: bool = False) -> tuple[int, str]:
    """(0, text) for a cell of a GBK file that reads as GBK; (UTF8_IN_GBK,
    its UTF-8 text) for Chinese in UTF-8; (AMBIGUOUS_ID, its UTF-8 text) for
    another call id that is valid UTF-8; (NOT_GBK, text with the bad bytes
    escaped) for bytes that are not GB18030.

    Chinese in UTF-8: the cell is valid UTF-8 as a whole AND holds a 3-byte
    UTF-8 CJK sequence (UTF8_CJK_RUN = 1: one character, as in 单a-1, is
    enough; with two required, such an id was read as GBK 鍗昦-1 and charged
    again once the file came as UTF-8). Genuine GBK rarely passes: GBK
    characters are two bytes, so a run of non-ASCII bytes holding a 3-byte
    sequence is at least six bytes that must all form valid UTF-8 (a GB2312
    hanzi is two bytes 0xA1-0xFE; E4-E9,A1-BF,A1-BF then a valid
    continuation: about 5e-5 at a position if bytes were uniform), and every
    other non-ASCII byte of the cell must too (a lead D5, as in 正 D5FD,
    never does). Such a cell is a reject the operator sees, never a silently
    changed value. A GBK word whose two bytes happen to be one 2-byte UTF-8
    character (忙 C3A6) holds no 3-byte sequence and reads as GBK; so does
    Latin text in UTF-8 (café: C3A9 is GBK 茅), which no rule can tell from
    GBK -- except in a call id (``call_id``), the key that keeps a call from
    being charged twice: there any non-ASCII cell that is valid UTF-8 is
    rejected, since read as GBK it would be another id than the same call
    sent as UTF-8 (breaker: café-1 committed twice, once as caf茅-1). A GBK
    id that happens to be valid UTF-8 (忙-1, æ-1 as UTF-8) is then a visible
    reject saying the two readings differ (AMBIGUOUS_ID), never a second
    charge."""
    if call_id or _UTF8_CJK.search(raw):
        try:
            return UTF8_IN_GBK if _UTF8_CJK.search(raw) else AMBIGUOUS_ID, raw.decode("utf-8")
        except UnicodeDecodeError:
            pass  # GBK bytes that happen to look like it
    try:
        return 0, raw.decode("gb18030")
    except UnicodeDecodeError:
        return NOT_GBK, raw.decode("gb18030", "rating400.one_byte")


def _gb_cells(raws: list[bytes], cdr_col: bool, call_id: bool = False) -> list[bytes]:
    """The UTF-8 bytes of GBK cells (``_gb_cell`` for each; a CDR cell that
    is no GBK text as ``_GB_MARK`` + its bytes). Fast path: the cells
    joined by NUL decoded in one call. NUL is one byte in GB18030 and
    never part of a multi-byte character, so the join decodes iff every
    cell does alone; a cell holding NUL itself, or a UTF-8 CJK run
    somewhere, sends those cells (or all) through ``_gb_cell``."""
    joined = b"\0".join(raws)
    parts: list[str] = []
    if not call_id:  # call ids: each cell judged (``_gb_cell``), the joined decode would be thrown away
        try:
            parts = joined.decode("gb18030").split("\0")
        except UnicodeDecodeError:
            pass
    if len(parts) != len(raws):
        parts = [""] * len(raws)
        suspects = range(len(raws))
    else:
        ends = np.cumsum([len(r) + 1 for r in raws])
        suspects = np.unique(np.searchsorted(ends, _utf8_cjk_runs(joined), "right")).tolist()
    out = [t.encode("utf-8") for t in parts]
    for k in suspects:
        why, text = _gb_cell(raws[k], call_id)
        out[k] = _GB_MARK[why] + raws[k] if why and cdr_col else text.encode("utf-8")
    return out


def _from_gbk(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of a GBK CSV read as bytes (``read_batches``), every text
    column made UTF-8 text cell by cell: ASCII columns are cast as they are
    (one vectorised test of their bytes); only the cells holding a byte
    over 0x7F are decoded (``_gb_cell``). A CDR cell that is no GBK text
    stays bytes behind a ``_GB_MARK`` (the column stays binary), and the
    edge rejects that row naming its field and the reason; another
    column's such cell is its text as ``_gb_cell`` reads it (pass-through
    data, not rated)."""
    cols = list(batch.columns)
    names = batch.schema.names
    for i, col in enumerate(cols):
        if not (pa.types.is_binary(col.type) or pa.types.is_string(col.type)):
            continue
        offsets, data = string_buffers(col)
        base = int(offsets[0])
        high = np.frombuffer(data, np.uint8)[base:int(offsets[-1])] >= 0x80
        if not high.any():
            cols[i] = col.cast(pa.string())
            continue
        seen = np.concatenate([[0], np.cumsum(high, dtype=np.int64)])  # high bytes before each position
        rows = np.flatnonzero(seen[offsets[1:] - base] - seen[offsets[:-1] - base])
        cdr_col = names[i] in CDR_COLUMNS
        raws = [v if isinstance(v, bytes) else v.encode("utf-8") for v in col.take(pa.array(rows)).to_pylist()]
        fixed = _gb_cells(raws, cdr_col, names[i] == "call_id")
        mask = np.zeros(len(col), bool)
        mask[rows] = True
        out = pc.replace_with_mask(col.cast(pa.binary()), pa.array(mask), pa.array(fixed, pa.binary()))
        marked = cdr_col and any(f[:1] == b"\xff" for f in fixed)
        cols[i] = out if marked else out.cast(pa.string())
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema(
        [pa.field(n, c.type) for n, c in zip(names, cols)]))


_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060\u00a0 \t"


def _require(path, names, required: tuple[str, ...], line: int | None) -> None:
    """InvalidFile naming ``path`` and the first of ``required`` not in ``names``."""
    absent = [c for c in required if c not in names]
    if absent:
        # A name that is the column but for invisible characters (a byte-order
        # mark written twice, a zero-width space): say which (breaker: "no
        # such column" for a header that showed call_id).
        hidden = next((n for n in names if n != absent[0] and n.strip(_INVISIBLE) == absent[0]), None)
        also = (f"; the header has {ascii(hidden)}, the name with invisible characters "
                "(a byte-order mark written twice?)") if hidden is not None else ""
        raise InvalidFile(path, f"no such column (required: {', '.join(required)}; a `rating400 rate` output "
                                f"holds them with --pass-through){also}", line, absent[0])


def _quotes_even(path: Path) -> bool:
    """An even number of '"' bytes in the file. A CSV whose quotes all
    close has an even count (an escaped quote is doubled); an odd count is
    a quote left open or a stray one, which ``_diagnose`` tells apart. One
    pass at disk speed (bytes.count)."""
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b'"')
    return n % 2 == 0


def dataset_files(path: Path) -> list[Path]:
    """A file, or a dataset directory's Parquet files in path order (Hive
    directories ``day=YYYY-MM-DD`` sort chronologically): the files a job
    reads of an input. Raises InvalidInput for a directory without any,
    FileNotFoundError for a path that does not exist."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".pq"))
        if not files:
            raise InvalidInput(str(path), "no Parquet files in the dataset directory")
        return files
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return [path]


def check_dataset(path: str | Path, required: tuple[str, ...] = ()) -> list[tuple[Path, list[str]]]:
    """A directory given as input must be a Parquet dataset (every file in
    it Parquet, e.g. ``rate --by-day`` output) whose CDR columns are flat,
    and (``required``) every file of which has the columns asked for: all
    checked before any row is read, so a bad file anywhere writes nothing.
    Returns each file a job reads (``dataset_files``) with its column
    names, from the one read of its footer. Raises InvalidFile naming the
    directory, or the first file refused; InvalidInput for a directory
    without Parquet files."""
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(str(path), format="parquet", exclude_invalid_files=False)
        schema = dataset.schema
        named = [(f, pq.ParquetFile(f).schema_arrow.names) for f in dataset_files(Path(path))]  # footers: cheap
        for f, names in named:
            _require(f, names, required, None)
    except InvalidInput:
        raise
    except Exception as e:  # noqa: BLE001 - pyarrow's errors for files that are not Parquet
        raise InvalidFile(path, f"not a Parquet dataset directory: {excerpt(e, 160)}") from None
    for f in schema:
        if f.name in CDR_COLUMNS and pa.types.is_nested(f.type):
            raise InvalidFile(path, f"a {f.type} column; CDR fields are text, numbers or timestamps",
                              column=f.name)
    return named


def _diagnose(path: Path, encoding: str, error: Exception) -> InvalidFile:
    """The line and column of a CSV that pyarrow refused (it tells neither):
    re-read with Python's csv module, on this error path only."""
    codec = {"utf8": "utf-8-sig"}.get(encoding, encoding)
    # Bytes not of the encoding are rows' rejects in UTF-8 and GBK files (the
    # reader reads those as bytes), and so is a lone surrogate in UTF-16.
    errors = "surrogateescape" if encoding in ("utf8", "gb18030") else "surrogatepass"
    line = 1
    try:
        with open(path, encoding=codec, errors=errors, newline="") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader)
            line = reader.line_num
            for row in reader:
                if len(row) != len(header):
                    return InvalidFile(path, f"{len(row)} fields where the header has {len(header)}"
                                       " (a comma inside a value that is not quoted?)", line + 1)
                line = reader.line_num
    except UnicodeDecodeError as e:
        if e.reason == "truncated data":  # the codec's word for bytes left over at the end of the file
            size = Path(path).stat().st_size
            at = size - (len(e.object) - e.start)  # e.start counts from the chunk read, which ends the file
            return InvalidFile(path, f"the file ends mid-character: its last {size - at} byte(s), from byte "
                                     f"offset {at} of {size}, are part of a {encoding.upper()} character "
                                     "(a file cut short, or not in this encoding?)", line + 1)
        return InvalidFile(path, f"not {encoding} text ({excerpt(e.object[max(0, e.start - 10):e.start + 10])} "
                           "...): name the encoding with --encoding", line + 1)
    except csv.Error as e:
        if "end of data" in str(e):
            return InvalidFile(path, "a quote opened here is never closed", line + 1)
        return InvalidFile(path, f"{excerpt(e, 80)}", line + 1)
    return InvalidFile(path, excerpt(str(error).removeprefix("CSV parse error: "), 120))


def read_batches(path: str | Path, batch_rows: int = _BATCH_ROWS, columns: list[str] | None = None,
                 encoding: str | None = None, *, cdr_input: bool = False,
                 typed: dict[str, pa.DataType] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of a CSV or Parquet CDR file (by extension).

    columns: read only these (absent ones come as null strings for CSV, are
    left out for Parquet). encoding: a CSV's encoding (default: the CLI's
    ``--encoding``, else detected; see ``encoding_of``). cdr_input: the file
    is CDR input, so a CSV's columns that are not CDR_COLUMNS (pass-through
    extras) are text too, not typed by pyarrow's inference; without it (a
    rated or rejects file read back) they are typed (int64 ``row``...).
    typed: a CSV's columns of known type (a rated file read back,
    ``read_rated``): those get these types, every other column is text as
    with cdr_input, none typed by inference.
    Raises InvalidFile naming file, line and column for a file that cannot
    be read; rows with bad values are the caller's rejects, not errors.
    """
    path = Path(path)
    encoding, columns_named = _check(path, encoding, cdr_input=cdr_input)
    if encoding is None:
        # pre_buffer off: with it, the reader keeps every column chunk it has
        # read until the file is closed, so memory grows with the file
        # (~25 bytes a CDR: 5 GB peak at 100M; bench_memory.py).
        pf = pq.ParquetFile(path, pre_buffer=False)
        names = pf.schema_arrow.names
        try:
            yield from pf.iter_batches(batch_size=batch_rows, use_threads=True,
                                       columns=None if columns is None else [c for c in columns if c in names])
        except (pa.ArrowInvalid, OSError) as e:
            raise InvalidFile(path, f"corrupt Parquet data: {excerpt(e, 100)}") from None
        return
    # Every known column as a string: numbers keep leading zeros and "+86",
    # epoch-ms times are recognised as digits below; empty cells are null.
    # UTF-8 (the encoding pyarrow reads without transcoding): CDR columns are
    # read as bytes and made text where every cell is UTF-8 (one validation
    # pass, as pyarrow's own); a column with a cell that is not stays bytes,
    # and the edge (``text_column``) rejects that row naming its field, as
    # for a Parquet binary column. The other rows rate.
    # GBK/GB18030: read as bytes too (no byte of a multi-byte GB18030
    # character is a comma, quote or newline, so rows split as in UTF-8),
    # then made UTF-8 cell by cell (``_from_gbk``): a cell that is no GBK
    # text is its row's reject, the other rows rate. The header, read by
    # ``_header`` in the file's encoding, names the columns; pyarrow reads it
    # as the first row (a quoted header cell may hold a newline), dropped.
    # Every column is bytes: a type inferred from the first block (ASCII)
    # would refuse a GBK cell of a later one.
    # UTF-16: transcoded to UTF-8 here (``_Utf16AsUtf8``), a lone surrogate
    # written as bytes that are not UTF-8, then read as UTF-8 is: that row is
    # a reject naming its field (pyarrow's own transcoding is strict: one
    # such character refused the whole file).
    # CDR input: extra columns are bytes (made text where UTF-8) as well: a
    # type inferred from the first block (64 MiB) refused the whole file at
    # a later cell that did not fit it ("conversion error to int64: invalid
    # value 'abc'", breaker).
    utf16 = encoding.startswith("utf-16")
    utf8, gbk = encoding == "utf8" or utf16, encoding == "gb18030"
    # A rated file read back (typed): its known columns by type, the rest as
    # CDR input's extras; a type inferred from the first block refused the
    # file at a later cell (credit_after_minor empty for 64 MiB of
    # pay-as-you-go calls was typed null, breaker).
    text_extras = cdr_input or typed is not None
    names = columns_named if gbk or text_extras else []
    types = {c: pa.binary() for c in names} if gbk else {c: pa.binary() if utf8 else pa.string() for c in CDR_COLUMNS}
    if text_extras and utf8:
        types.update((c, pa.binary()) for c in names if c not in types)
    if typed is not None and not gbk:
        types.update((c, t) for c, t in typed.items() if c in names)
    try:
        reader = pacsv.open_csv(
            _Utf16AsUtf8(path, encoding) if utf16 else path,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, encoding="utf8" if gbk or utf16 else encoding,
                                           **({"column_names": names} if gbk else {})),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                # Only an empty cell is null: pyarrow's default null words (NA,
                # null, nan, N/A, #N/A...) made call id "NA" a missing id and
                # caller "NULL" a withheld number (breaker).
                strings_can_be_null=True, null_values=[""],
                include_columns=columns, include_missing_columns=columns is not None,
            ),
        )
        header = gbk
        for batch in reader:
            if header:
                batch, header = batch.slice(1), False
            yield _text_where_utf8(batch, types) if utf8 else _from_gbk(batch) if gbk else batch
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise _diagnose(path, encoding, e) from None


class _Utf16AsUtf8(io.RawIOBase):
    """A UTF-16 file read as UTF-8 bytes (a binary stream for pyarrow's CSV
    reader): a lone surrogate, no character, becomes its surrogatepass bytes
    (``\\xed\\xa0\\x80``), which are not UTF-8, so its cell is its row's
    reject as a UTF-8 file's bad byte is. The byte-order mark is dropped."""

    def __init__(self, path: Path, encoding: str):
        self._raw = open(path, "rb")  # noqa: SIM115 - closed with this stream
        self._decoder = codecs.getincrementaldecoder(encoding)("surrogatepass")
        self._pending, self._at = b"", 0
        self._eof = False
        self._first = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending and not self._eof:
            chunk = self._raw.read(1 << 20)
            self._eof = not chunk
            text = self._decoder.decode(chunk, final=self._eof)
            if self._first and text:
                text, self._first = text.removeprefix("\ufeff"), False
            self._pending = text.encode("utf-8", "surrogatepass")
        n = min(len(buffer), len(self._pending) - self._at)
        buffer[:n] = self._pending[self._at:self._at + n]
        self._at += n
        if self._at == len(self._pending):
            self._pending, self._at = b"", 0
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _text_where_utf8(batch: pa.RecordBatch, types: dict[str, pa.DataType]) -> pa.RecordBatch:
    """``batch`` with each column read as binary (``types``) cast to string
    where all its cells are UTF-8 (a column with one that is not is left as
    bytes: a CDR column's rows are the edge's rejects, an extra is kept)."""
    cols = batch.columns
    for i, name in enumerate(batch.schema.names):
        if name in types and pa.types.is_binary(cols[i].type):
            try:
                cols[i] = pc.cast(cols[i], pa.string())
            except pa.ArrowInvalid:
                pass  # not UTF-8 somewhere: the edge rejects those rows
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema(
        [pa.field(n, c.type) for n, c in zip(batch.schema.names, cols)]))


def row_count(path: str | Path) -> int | None:
    """Rows in a file when cheap to know (Parquet metadata), else None."""
    path = Path(path)
    return pq.ParquetFile(path).metadata.num_rows if _is_parquet(path) else None


def read_table(path: str | Path, *, cdr_input: bool = False, typed: dict[str, pa.DataType] | None = None) -> pa.Table:
    """The whole of ``read_batches(path, cdr_input=cdr_input, typed=typed)``
    as one table (a column bytes in some batch only is bytes throughout).
    Raises InvalidFile, or InvalidInput for a file with no rows."""
    batches = list(read_batches(path, cdr_input=cdr_input, typed=typed))
    if not batches:
        raise InvalidInput("file", "no rows (empty, or a header only)", str(path))
    binary = {f.name for b in batches for f in b.schema if pa.types.is_binary(f.type)}
    if binary and len({b.schema for b in batches}) > 1:  # a UTF-8 CSV column not UTF-8 in some batch only
        batches = [pa.RecordBatch.from_arrays(
            [c.cast(pa.binary()) if n in binary else c for n, c in zip(b.schema.names, b.columns)],
            names=b.schema.names) for b in batches]
    return pa.Table.from_batches(batches)


# The rated output's money columns (int64, 1/10000 yuan) are named with their
# unit; a file or ledger batch rated by an earlier version names them as the
# rating kernel does (the keys). ``balance_after`` (deprecated: mixed units)
# keeps its name. The rater names its output by this (``Rater._rated_table``);
# every reader of a rated table takes both through ``rated_columns``.
RATED_MINOR_NAMES = {"charge": "charge_minor", "credit_consumed": "credit_consumed_minor",
                     "overage": "overage_minor"}


def rated_names(names: list[str], source: str) -> list[str]:
    """Column ``names`` of a rated table as this version writes them:
    an earlier version's money column names (``RATED_MINOR_NAMES``) become
    their ``*_minor`` names, the others stay. Raises InvalidInput naming
    ``source`` and the columns when one column is there under both names."""
    both = [(old, new) for old, new in RATED_MINOR_NAMES.items() if old in names and new in names]
    if both:
        pairs = ", ".join(f"{old} and {new}" for old, new in both)
        raise InvalidInput(both[0][1], f"both columns {pairs}: the same column named as by earlier versions "
                                       "and as now; keep one", source)
    return [RATED_MINOR_NAMES.get(n, n) for n in names]


def rated_columns(table: pa.Table, source: str) -> pa.Table:
    """A rated table (a rated file, a ledger batch) with this version's
    column names (``rated_names``; renamed, not copied). Raises InvalidInput
    naming ``source`` for a column there under both names."""
    given = table.column_names
    names = rated_names(given, source)
    return table if names == given else table.rename_columns(names)


def read_rated(path: str | Path) -> pa.Table:
    """A rated file (``rating400 rate`` output, Parquet or CSV, of this
    version or an earlier one) with this version's column names
    (``rated_columns``). A CSV's columns are read by the rated output's
    types (``rater.AMOUNTS`` and ``BALANCES`` int64 under either name, the
    input ``row`` int64, ``answered`` bool), every other column as text;
    a whole-number column with a cell not written in decimal digits
    (``0x10``), and every column when a cell is not of its column's type,
    as text, for the reader that checks it to name. A CSV's text cells and
    header names are the text as rated: the quote the rated CSV puts before
    one starting like a formula (``cells``) is taken off.
    Raises InvalidInput naming the file."""
    from .cells import original, text_columns
    from .rater import AMOUNTS, BALANCES

    # The whole-number columns are read as text and made int64 here when
    # every cell is decimal (``not_whole_numbers``): pyarrow's CSV reader
    # takes 0x10 as 16.
    ints = {*AMOUNTS, *BALANCES, "row", *(RATED_MINOR_NAMES[c] for c in AMOUNTS if c in RATED_MINOR_NAMES)}
    typed: dict[str, pa.DataType] = {c: pa.string() for c in ints}
    typed["answered"] = pa.bool_()
    try:
        table = read_table(path, typed=typed)
    except InvalidFile:
        # A cell that is not its column's type ('abc' as billable seconds):
        # every column as text, so the reader that validates the column
        # names the row and field (billing.calls, explain) as it does for a
        # Parquet file's, not pyarrow's "conversion error".
        table = read_table(path, typed={})
    if not _is_parquet(Path(path)):
        # A header cell quoted as a text cell is (``cells``: a pass-through
        # column named like a formula) reads back as named.
        table = table.rename_columns(original(pa.array(table.column_names, pa.string())).to_pylist())
        for name in ints.intersection(table.column_names):
            col = table.column(name)
            if pa.types.is_string(col.type) and not not_whole_numbers(col).any():
                with contextlib.suppress(pa.ArrowInvalid):  # beyond int64: text, which the reader names
                    table = table.set_column(table.schema.get_field_index(name), name, pc.cast(col, pa.int64()))
        for name in text_columns(table):
            table = table.set_column(table.schema.get_field_index(name), name, original(table.column(name)))
    return rated_columns(table, str(path))


def not_whole_numbers(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A bool per cell of a text column: present and not a whole number
    written in decimal (ASCII digits, a ``-`` before them at most), the
    way every count and money column of a rated file is written. Arrow's
    own casts and CSV reader read ``0x10`` as 16; a cell edited so is
    refused by the reader that names it (``billing.calls``)."""
    whole = pc.match_substring_regex(col, r"^-?[0-9]+$")
    return pc.fill_null(pc.invert(whole), False).to_numpy(zero_copy_only=False)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def output_format(path: str | Path, fmt: str | None = None) -> str:
    if fmt:
        return fmt
    return "parquet" if _is_parquet(Path(path)) else "csv"


def write_table(table: pa.Table, path: str | Path, fmt: str | None = None) -> None:
    """Rated CDRs or rejects to Parquet or CSV (by ``fmt`` or extension)."""
    write_batches([table], path, fmt)


def prefetch(iterable, depth: int = 2):
    """Iterate ``iterable`` on a helper thread, ``depth`` items ahead: the
    next piece of output is gathered while the writer encodes this one
    (both release the GIL in pyarrow)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in iterable:
                if stop.is_set():
                    return
                q.put((item, None))
            q.put((done, None))
        except BaseException as e:  # handed to the consumer
            q.put((done, e))

    t = threading.Thread(target=produce, name="prefetch", daemon=True)
    t.start()
    try:
        while True:
            item, error = q.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.01)


def write_batches(tables, path: str | Path, fmt: str | None = None) -> int:
    """Write tables of one schema, in order, as one Parquet or CSV file
    (by ``fmt`` or extension); returns the rows written."""
    fmt = output_format(path, fmt)
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown output format {fmt!r} (parquet or csv)")
    writer, rows = None, 0
    try:
        for table in prefetch(tables):
            if fmt == "csv":
                # The CSV writer takes plain strings, not dictionary columns.
                cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
                table = pa.Table.from_arrays(cols, names=table.column_names)
            if writer is None:
                if fmt == "parquet":
                    # Dictionary pages only where values repeat (names, 400
                    # numbers): on call ids and callers they cost and save nothing.
                    repeat = [f.name for f in table.schema if pa.types.is_dictionary(f.type)] + ["number", "hangup_cause"]
                    writer = pq.ParquetWriter(path, table.schema, compression="zstd",
                                              use_dictionary=[c for c in repeat if c in table.column_names])
                else:
                    writer = pacsv.CSVWriter(path, table.schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


# --- normalising ------------------------------------------------------------
def _one_array(col) -> pa.Array:
    """A column as one array: a chunked column of one chunk is that chunk
    (``combine_chunks`` would copy its buffers), so the result may be a
    slice (offset > 0); every pass here reads through the offset."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def _as_string(col) -> pa.Array:
    col = _one_array(col)
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    return col


def binary_type(t: pa.DataType) -> bool:
    """An Arrow binary type (plain, large, fixed size, or dictionary of one):
    bytes that ``text_column`` turns into text."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def text_column(col, max_bytes: int = 1 << 62) -> tuple[pa.Array, np.ndarray]:
    """(string array, judgement) of a CDR text column, in one compiled pass
    over its buffers (``kernels.edge.text_cells``): judgement is uint8 per
    cell, 0 sound, ``LONGER_THAN[max_bytes]`` where it holds more than
    ``max_bytes`` UTF-8 bytes (its bytes are not read), NOT_UTF8 where its
    bytes are not UTF-8 (binary columns only: Parquet or Arrow ``binary``),
    CONTROL_CHARACTER where it holds a FORBIDDEN_TEXT character. A binary
    cell not UTF-8 (or too long) becomes its bytes with the bad ones escaped
    (``\\xff``); nothing undecodable reaches a compute kernel (a reject shows
    its value through ``shown``). Columns of other types (numbers, times)
    are cast to text and judged sound. The rule is ``check_text``'s, so a
    file, a gRPC batch and a unary RateCdr refuse the same cells."""
    from .kernels import edge

    col = _one_array(col)
    t = col.type
    if pa.types.is_dictionary(t):
        # Judged once per dictionary value (Parquet's hangup causes: a
        # handful of values for the whole column), then spread by index.
        values, judged = text_column(col.dictionary, max_bytes)
        out = pc.fill_null(pa.array(judged, pa.uint8()).take(col.indices), 0).to_numpy(zero_copy_only=False)
        return values.take(col.indices), out
    if pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        col, t = pc.cast(col, pa.binary()), pa.binary()
    elif pa.types.is_large_string(t):
        col, t = pc.cast(col, pa.string()), pa.string()
    binary = pa.types.is_binary(t)
    if not (binary or pa.types.is_string(t)):
        s = _as_string(col)
        return s, np.zeros(len(s), np.uint8)
    out = np.empty(len(col), np.uint8)
    gb_reason: dict[int, int] = {}
    offsets, data = string_buffers(col)
    bad = edge.text_cells(offsets, data, validity_bits(col), col.offset, binary, _FORBIDDEN_RANGES, max_bytes, out)
    if binary:
        bufs = col.buffers()
        col = pa.Array.from_buffers(pa.string(), len(col), bufs, col.null_count, col.offset)
        if bad and (rows := np.flatnonzero(out >= 2)).size:
            cells = pa.Array.from_buffers(pa.binary(), len(col), bufs, col.null_count, col.offset).take(pa.array(rows))
            shown_cells = []
            for k, v in enumerate(cells.to_pylist()):
                why = _GB_MARKED.get(v[:_GB_MARK_LEN])
                if why is None:
                    shown_cells.append(_escaped_bytes(v))
                else:  # a GBK file's cell (``_from_gbk``): its reason, its text as far as it reads
                    if out[rows[k]] == 2 or len(v) - _GB_MARK_LEN <= max_bytes:
                        gb_reason[rows[k]] = why  # else: too long, whatever its bytes
                    raw = v[_GB_MARK_LEN:]
                    shown_cells.append(_escaped(raw.decode("utf-8") if why in (UTF8_IN_GBK, AMBIGUOUS_ID) else _gb_cell(raw)[1]))
            escaped = pa.array(shown_cells, pa.string())
            nulls = pc.is_null(col).to_numpy(zero_copy_only=False) if col.null_count else None
            col = _splice(col, rows, escaped)
            if nulls is not None:
                col = _with_validity(col, ~nulls)
    if bad:
        codes = np.array([0, CONTROL_CHARACTER, NOT_UTF8, LONGER_THAN.get(max_bytes, 0)], np.uint8)
        out = codes[out]
        for row, why in gb_reason.items():
            out[row] = why
    return col, out


_FORBIDDEN_RANGES = np.array(FORBIDDEN_TEXT, np.int32).ravel()
_FORBIDDEN_CLASS = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in FORBIDDEN_TEXT)
_FORBIDDEN_RE2 = "[" + "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in FORBIDDEN_TEXT) + "]"
_forbidden = re.compile(f"[{_FORBIDDEN_CLASS}]")
# A reject shows at most this many characters of a value (then its size).
SHOWN_CHARS = 200


def _escaped(value: str) -> str:
    """``value`` with each FORBIDDEN_TEXT character written as Python writes
    it (``\\x7f``, ``\\u202e``), cut to SHOWN_CHARS characters."""
    cut = value[:SHOWN_CHARS]
    text = _escape_forbidden(cut)
    return text if len(cut) == len(value) else f"{text}... ({len(value)} characters)"


def _escape_forbidden(text: str) -> str:
    """``text`` with each FORBIDDEN_TEXT character written as Python writes
    it (``\\x1b``, ``\\u202e``), nothing cut."""
    return _forbidden.sub(lambda m: ascii(m.group())[1:-1], text)


def _escaped_bytes(value: bytes) -> str:
    """A binary cell as a reject shows it: each byte not UTF-8 written
    ``\\x85``, each FORBIDDEN_TEXT character as ``_escaped`` writes it; when
    that is longer than SHOWN_CHARS, cut (never inside an escape) and
    followed by the size of the value given, in its characters (a byte not
    UTF-8 counts one), so ``shown`` keeps it as it is."""
    text = value.decode("utf-8", "surrogateescape")
    parts = _byte_parts(text[:SHOWN_CHARS + 1])
    if len(text) <= SHOWN_CHARS and sum(map(len, parts)) <= SHOWN_CHARS:
        return "".join(parts)
    suffix = f"... ({len(text)} characters)"
    room, cut = SHOWN_CHARS - len(suffix), 0
    for i, part in enumerate(parts):
        if room < len(part):
            cut = i
            break
        room -= len(part)
    else:
        cut = len(parts)
    return "".join(parts[:cut]) + suffix


def _byte_parts(text: str) -> list[str]:
    """The characters of a binary cell decoded with ``surrogateescape``,
    each byte that was not UTF-8 written ``\\x85`` and each FORBIDDEN_TEXT
    character as Python writes it (``\\x00``), the others as they are."""
    return [f"\\x{ord(c) - 0xDC00:02x}" if "\udc80" <= c <= "\udcff" else ascii(c)[1:-1] if _forbidden.match(c)
            else c for c in text]


def bytes_as_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A binary column (bytes of no declared encoding: a Parquet ``binary``
    pass-through column, a CSV column not UTF-8 throughout), or a text one
    (a pass-through column the edge did not judge), as text a CSV
    can hold: a column of UTF-8 cells with no FORBIDDEN_TEXT character as it
    is, else every cell as a reject shows one, whole (``_byte_parts``: a
    NUL ``\\x00``, a byte not UTF-8 ``\\xff``). Nulls stay null. The bytes as
    given are in Parquet output."""
    values = _one_array(values)
    values = values if values.type == pa.binary() else values.cast(pa.binary())
    with contextlib.suppress(pa.ArrowInvalid):  # not UTF-8 somewhere: escaped below
        text = values.cast(pa.string())
        if not pc.any(pc.fill_null(pc.match_substring_regex(text, _FORBIDDEN_RE2), False)).as_py():
            return text
    return pa.array([None if v is None else "".join(_byte_parts(v.decode("utf-8", "surrogateescape")))
                     for v in values.to_pylist()], pa.string())


def shown(values: pa.Array) -> pa.Array:
    """A string column as a rejects file shows it: the cells holding a
    FORBIDDEN_TEXT character or longer than SHOWN_CHARS are ``_escaped``
    (what was received, never a terminal escape, a reordering or a megabyte
    cell), the others kept. Nulls stay null."""
    values = _one_array(values)
    if len(values) == 0:
        return values
    need = pc.or_(pc.match_substring_regex(values, _FORBIDDEN_RE2),
                  pc.greater(pc.utf8_length(values), SHOWN_CHARS))
    mask = pc.fill_null(need, False)
    if not pc.any(mask).as_py():
        return values
    fixed = pa.array([_escaped(v) for v in values.filter(mask).to_pylist()], pa.string())
    return pc.replace_with_mask(values, mask, fixed)


def forbidden_cells(values) -> list[int]:
    """Indexes of the cells of a string column (Array or ChunkedArray)
    holding a FORBIDDEN_TEXT character, found in one vectorised pass (nulls
    are not): a large table's cells are checked without a Python call per
    cell, and only the cells found go through ``check_characters`` for
    their message. A column that is not text (a CSV column read as numbers,
    or as binary because it is not UTF-8) has none."""
    values = _one_array(values)
    if len(values) == 0 or not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return []
    found = pc.fill_null(pc.match_substring_regex(values, _FORBIDDEN_RE2), False)
    return pc.indices_nonzero(found).to_pylist()


def _spaced(col: pa.Array, present: np.ndarray) -> np.ndarray:
    """Where a present string cell starts or ends with white space: ASCII
    space or Unicode white space (NBSP, U+3000, U+2003..., what Python's
    ``str.isspace`` calls space). The first and last bytes of every cell
    are looked at in NumPy; only a cell starting with a space or a
    non-ASCII byte, or ending with a space or a non-ASCII byte, is trimmed
    by Arrow's ``utf8_trim_whitespace`` (Unicode-aware, where Arrow's regex
    ``\\s`` is ASCII only: NBSP-padded ids were taken as other calls and
    charged again) and compared with its length before (a call id is
    ASCII almost always: work on every cell cost as much as a third of
    the edge's other work). ASCII control white space (tab, newline) is
    caught too."""
    col = _one_array(col)
    offsets, data = string_buffers(col)
    if not len(col):
        return np.zeros(0, bool)
    first = data[np.minimum(offsets[:-1], len(data) - 1)]
    last = data[np.maximum(offsets[1:] - 1, 0)]
    maybe = present & ((first <= 0x20) | (first >= 0x80) | (last <= 0x20) | (last >= 0x80))  # space, controls, non-ASCII
    out = np.zeros(len(col), bool)
    if maybe.any():
        rows = np.flatnonzero(maybe)
        cells = col.take(pa.array(rows))
        trimmed = pc.not_equal(pc.binary_length(pc.utf8_trim_whitespace(cells)), pc.binary_length(cells))
        out[rows] = pc.fill_null(trimmed, False).to_numpy(zero_copy_only=False)
    return out


def _present(col: pa.Array) -> np.ndarray:
    """True where a string cell holds something (not null, not empty)."""
    return pc.fill_null(pc.greater(pc.binary_length(col), 0), False).to_numpy(zero_copy_only=False)


def normalize_numbers(col) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(normal strings, present mask, valid mask) of a phone-number column.
    See ``_normalize_numbers``."""
    return _normalize_numbers(col)[:3]


def is_400_number(col) -> np.ndarray:
    """A bool per cell of a text column: a 400 number as the edge reads a
    CDR's ``number`` (``400`` + 7 digits, in any form it normalises)."""
    return _normalize_numbers(col)[5]


def _normalize_numbers(col, withheld: tuple[str, ...] = ()) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray,
                                                                      np.ndarray, np.ndarray]:
    """(normal strings, present mask, valid mask, known mask, keys, 400 mask)
    of a phone-number column; ``known``: cells that cannot be a lost zero or a
    spreadsheet number (``lost_zero``, ``_spreadsheet``): ASCII digits only in
    a normal shape, or one of the separated forms below without a dot;
    ``keys``: the kernel's int64 key of each valid number, 0 elsewhere;
    ``400``: valid and ``400`` + 7 digits. Cells spelling one of ``withheld``
    count as missing.

    Fast paths: cells already in normal form (the common case in platform
    exports: a mobile, a landline with its trunk zero, a 400/800 number, all
    ASCII digits) are judged and keyed by one compiled pass
    (``numbers.number_cells``); of the rest, the two common irregular forms
    (``+86 138-1234-5678``, ``0791-5399455``) by a second
    (``numbers.separated_cells``, the vectorised path's rule); what is left
    goes through ``numbers.normalize_array``'s rules (at most ONE_BY_ONE ASCII
    cells one by one in Python, which costs less than its compute passes),
    and every normal form is spliced back in one copy.
    """
    s = _as_string(col)
    plain, present, is_400, keys = number_cells(s)
    valid = plain.copy()
    known = plain.copy()
    rest = np.flatnonzero(present & ~plain)
    if len(rest) == 0:
        return (s if valid.all() else _with_validity(s, valid)), present, valid, known, keys, is_400
    sep = separated_cells(s, rest)
    done, left = rest[sep.ok > 0], rest[sep.ok == 0]
    valid[done] = True
    keys[done] = sep.keys[sep.ok > 0]
    is_400[done] = sep.is_400[sep.ok > 0]
    known[rest[sep.ok == 1]] = True
    fixed = sep.normal
    if len(left):
        cells = s.take(pa.array(left))
        raw = cells.to_pylist() if len(left) <= ONE_BY_ONE else None
        if raw is not None and all(v.isascii() for v in raw):
            # A few odd cells (every batch of an export has some): the same
            # rules one cell at a time (``normalize_array``'s one-by-one path;
            # on ASCII text ``str.strip``/``lower`` are Arrow's
            # ``utf8_trim_whitespace``/``utf8_lower``), no compute pass.
            normal = [_normal_of(v) for v in raw]
            valid[left] = [v is not None for v in normal]
            keys[left] = [number_key(v) if v is not None else 0 for v in normal]
            is_400[left] = [v is not None and len(v) == 10 and v.startswith("400") for v in normal]
            present[left] = [bool(t) and t.lower() not in withheld for t in (v.strip() for v in raw)]
            odd = pa.array(normal, pa.string())
        else:
            odd, ok = normalize_array(cells)
            valid[left] = ok
            keys[left] = keys_of(odd)  # invalid (null): 0
            is_400[left] = pc.fill_null(pc.and_(pc.equal(pc.binary_length(odd), 10), pc.starts_with(odd, "400")),
                                        False).to_numpy(zero_copy_only=False)
            # Only blanks (or a withheld caller's word): missing, not malformed.
            trimmed = pc.utf8_trim_whitespace(cells)
            here = pc.greater(pc.binary_length(trimmed), 0)
            if withheld:
                here = pc.and_(here, pc.invert(pc.is_in(pc.utf8_lower(trimmed), pa.array(withheld))))
            present[left] = here.to_numpy(zero_copy_only=False)
        # The separated cells' and these normal forms, in row order, spliced in once.
        fixed = pa.concat_arrays([fixed, pc.fill_null(odd, "")])
        if len(done):
            fixed = fixed.take(pa.array(np.argsort(np.concatenate([done, left]), kind="stable")))
    s = _splice(s, rest, fixed)
    if not valid.all():
        s = _with_validity(s, valid)
    return s, present, valid, known, keys, is_400


def _splice(s: pa.Array, rows: np.ndarray, fixed: pa.Array) -> pa.Array:
    """``s`` with cell ``rows[k]`` replaced by ``fixed[k]`` (rows ascending),
    without a validity bitmap: every cell valid, the caller nulls what is
    not (``_with_validity``). One compiled copy of the buffers
    (``kernels.edge.splice_strings``)."""
    from .kernels import edge

    offsets, data = string_buffers(s)
    new_offsets, new_data = string_buffers(fixed)
    size = (int(offsets[-1] - offsets[0]) + int(new_offsets[-1] - new_offsets[0])
            - int((offsets[rows + 1] - offsets[rows]).sum()))
    if size >= 1 << 31:  # past a string array's int32 offsets: pyarrow's own (slower) way
        return pc.replace_with_mask(pc.fill_null(s, ""), pa.array(np.isin(np.arange(len(s)), rows)),
                                    pc.fill_null(fixed, ""))
    out_offsets = np.empty(len(s) + 1, np.int32)
    out_data = np.empty(size, np.uint8)
    edge.splice_strings(offsets, data, rows.astype(np.int64, copy=False), new_offsets, new_data, out_offsets, out_data)
    return pa.Array.from_buffers(pa.string(), len(s), [None, pa.py_buffer(out_offsets), pa.py_buffer(out_data)])


def _validity(mask: np.ndarray) -> pa.Buffer | None:
    """An Arrow validity bitmap for ``mask`` (None when all valid)."""
    return None if mask.all() else pa.array(mask, pa.bool_()).buffers()[1]


def _with_validity(arr: pa.Array, valid: np.ndarray) -> pa.Array:
    """``arr`` with the slots where ``valid`` is False nulled, sharing its
    data buffers (only a bitmap is built)."""
    if arr.offset != 0:  # a slice: fall back to a copy
        return pc.if_else(pa.array(valid), arr, pa.scalar(None, arr.type))
    if arr.null_count:
        valid = valid & pc.is_valid(arr).to_numpy(zero_copy_only=False)
    bufs = arr.buffers()
    return pa.Array.from_buffers(arr.type, len(arr), [_validity(valid)] + bufs[1:])


def lost_zero(raw, normal: pa.Array, among: np.ndarray | None = None) -> np.ndarray:
    """Where a number was written as bare digits without the trunk 0 that its
    normal form has (``2088886666`` for ``02088886666``): the mark of a
    spreadsheet that took a landline for a number. The normaliser would read
    it (it accepts a landline without its 0); in a CDR it is flagged instead,
    since the same digits are as likely a typo. ``86...`` (country code
    without +) is not this. With ``among`` (a mask), only those cells are
    looked at: a plain cell (``_normalize_numbers``) is its own normal form,
    so it never is this."""
    raw = _as_string(raw)
    if len(raw) == 0:
        return np.zeros(0, bool)
    if among is not None:
        out = np.zeros(len(raw), bool)
        rows = np.flatnonzero(among)
        if len(rows):
            take = pa.array(rows)
            out[rows] = lost_zero(raw.take(take), normal.take(take))
        return out
    added = pc.and_(pc.starts_with(normal, "0"),
                    pc.invert(pc.or_(pc.starts_with(raw, "0"), pc.starts_with(raw, "86"))))
    return pc.fill_null(pc.and_(added, pc.ascii_is_decimal(raw)), False).to_numpy(zero_copy_only=False)


def _foreign(col, among: np.ndarray) -> np.ndarray:
    """Where a number cell among ``among`` (a mask: the cells already refused,
    so never the common path) holds a decimal digit of another script
    (``numbers.foreign_digits``), each distinct value judged once."""
    out = np.zeros(len(among), bool)
    rows = np.flatnonzero(among)
    if len(rows):
        enc = _as_string(col).take(pa.array(rows)).dictionary_encode()
        hit = np.array([v is not None and foreign_digits(v) for v in enc.dictionary.to_pylist()] + [False], bool)
        idx = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
        out[rows] = hit[idx]
    return out


def _spreadsheet(col, among: np.ndarray | None = None) -> np.ndarray:
    """Where a number cell was written by a spreadsheet as a number (an
    exponent, or a ".0"). Only cells with a '.' or an 'e' go to the regex;
    with ``among`` (a mask), only those cells are looked at (the others are
    known to be digits only, e.g. ``_normalize_numbers``' plain cells)."""
    col = _as_string(col)
    if among is not None:
        out = np.zeros(len(col), bool)
        rows = np.flatnonzero(among)
        if len(rows):
            out[rows] = _spreadsheet(col.take(pa.array(rows)))
        return out
    if len(col) == 0 or col.null_count == len(col):
        return np.zeros(len(col), bool)
    maybe = pc.or_(pc.match_substring(col, "."), pc.match_substring(col, "e", ignore_case=True))
    if not pc.any(maybe).as_py():
        return np.zeros(len(col), bool)
    return _matches(col, _SPREADSHEET)


def _matches(col, pattern: str) -> np.ndarray:
    """Where a string column matches ``pattern`` (RE2), nulls False."""
    col = _as_string(col)
    if len(col) == 0 or col.null_count == len(col):
        return np.zeros(len(col), bool)
    return pc.fill_null(pc.match_substring_regex(col, pattern), False).to_numpy(zero_copy_only=False)


def _cast_rows(s: pa.Array, to: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Cast, turning the rows that do not cast into nulls (bisection: one
    cast for clean data, a few more per bad row)."""
    try:
        out = pc.cast(s, to)
        return out, np.ones(len(s), bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(s) == 1:
            return pa.nulls(1, to), np.zeros(1, bool)
    half = len(s) // 2
    a, ok_a = _cast_rows(s.slice(0, half), to)
    b, ok_b = _cast_rows(s.slice(half), to)
    return pa.concat_arrays([a, b]), np.concatenate([ok_a, ok_b])


def parse_times(col) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epoch ms with NO_TIME where absent or bad, present mask, valid mask)."""
    col = _one_array(col)
    t = col.type
    n = len(col)
    if n and (pa.types.is_int64(t) or (pa.types.is_timestamp(t) and t.unit == "ms")):
        # The common forms (gRPC's int64 ms, Parquet timestamp[ms]): one
        # compiled pass over the value buffer and validity bitmap.
        from .kernels import edge

        out = np.empty(n, np.int64)
        present = np.empty(n, np.uint8)
        shift = layout.LOCAL_OFFSET_MS if pa.types.is_timestamp(t) and t.tz is None else 0  # naive: Shanghai wall time
        values = np.frombuffer(col.buffers()[1], np.int64, count=n, offset=col.offset * 8)
        edge.int64_times(values, validity_bits(col), col.offset, shift, out, present)
        mask = present.view(bool)
        return out, mask, mask.copy()
    if pa.types.is_timestamp(t):
        ms = pc.cast(col, pa.timestamp("ms", tz=t.tz), safe=False)
        values = ms.cast(pa.int64())
        if t.tz is None:  # naive: Asia/Shanghai wall time
            values = pc.subtract(values, layout.LOCAL_OFFSET_MS)
        present = pc.is_valid(col).to_numpy(zero_copy_only=False)
        return _filled(values), present, present.copy()
    if pa.types.is_integer(t):
        present = pc.is_valid(col).to_numpy(zero_copy_only=False)
        over = None
        if pa.types.is_uint64(t):  # past int64: present but no time (and no cast error)
            over = pc.fill_null(pc.greater(col, pa.scalar(np.iinfo(np.int64).max, pa.uint64())), False)
            over = over.to_numpy(zero_copy_only=False)
            if over.any():
                col = pc.if_else(pa.array(over), pa.scalar(0, t), col)
            else:
                over = None
        out = _filled(pc.cast(col, pa.int64()))
        if over is None:
            return out, present, present.copy()
        out = out.copy()  # _filled may hand back Arrow's read-only buffer
        out[over] = layout.NO_TIME
        return out, present, present & ~over
    if pa.types.is_null(t):
        return np.full(n, layout.NO_TIME, np.int64), np.zeros(n, bool), np.zeros(n, bool)
    # Bytes (a Parquet binary column, a CSV read as bytes): their text, a
    # cell that is not UTF-8 escaped, so it is a time that does not parse
    # (its row's reject), never a cast error.
    s = text_column(col)[0] if binary_type(t) else _as_string(col)
    present = _present(s)
    out = np.full(n, layout.NO_TIME, np.int64)
    valid = np.zeros(n, bool)
    # Epoch milliseconds written as digits: 11 to 15 of them (1973 onwards,
    # no int64 overflow). Fewer digits are Excel serial days (below) or nothing.
    length = pc.binary_length(s)
    digits = present & pc.fill_null(
        pc.and_(pc.ascii_is_decimal(s), pc.and_(pc.greater_equal(length, 11), pc.less_equal(length, 15))), False
    ).to_numpy(zero_copy_only=False)
    if digits.any():
        out[digits] = pc.cast(s.filter(pa.array(digits)), pa.int64()).to_numpy()
        valid |= digits
    rest = present & ~digits
    if rest.any():
        idx = np.flatnonzero(rest)
        r = s.take(pa.array(idx))
        fast = _cast_all(r)
        if fast is not None:  # clean data: one cast, no regexes
            out[idx] = fast
            valid[idx] = True
            return out, present, valid
        serial = pc.fill_null(pc.match_substring_regex(r, _EXCEL_SERIAL), False).to_numpy(zero_copy_only=False)
        if serial.any():
            days = pc.cast(r.filter(pa.array(serial)), pa.float64()).to_numpy(zero_copy_only=False)
            rows = idx[serial]
            out[rows] = _excel_ms(days)
            valid[rows] = True
        r = _excel_text(r)
        # Fractions of a second past the millisecond (``.123456``, as a
        # timestamp[us] or [ns] is written as text) are cut to it: the
        # cast to ms refuses to drop digits.
        r = pc.replace_substring_regex(r, _SUB_MS, r"\1")
        shaped = pc.fill_null(pc.match_substring_regex(r, _ISO + _OFFSET), False).to_numpy(zero_copy_only=False)
        naive = pc.fill_null(pc.match_substring_regex(r, _ISO + "$"), False).to_numpy(zero_copy_only=False)
        for mask, to, shift in ((shaped, pa.timestamp("ms", tz="UTC"), 0),
                                (naive, pa.timestamp("ms"), layout.LOCAL_OFFSET_MS)):
            if not mask.any():
                continue
            vals, ok = _cast_rows(r.filter(pa.array(mask)), to)
            ms = pc.fill_null(vals.cast(pa.int64()), 0).to_numpy(zero_copy_only=False) - shift
            rows = idx[mask][ok]
            out[rows] = ms[ok]
            valid[rows] = True
    return out, present, valid


def file_times(table: pa.Table, name: str, source: str, rows: np.ndarray, required: bool = False,
               days: tuple[int, int] | None = None) -> np.ndarray:
    """Time column ``name`` of a file a command reads back (a rated file),
    read as the edge reads a CDR file's (``parse_times``): int64 epoch ms a
    row, NO_TIME where absent (all, without the column). ``rows``: each
    row's data row in the file, from 1, for the error. Raises
    ``InvalidInput`` naming ``source``, the row and the field, with the
    edge's reason and the cell, for the first time that does not parse or
    is out of range, or is absent when ``required``, or (``days``: the
    calendar's [first, last] local epoch day, as ``judge_times`` takes it)
    whose local day is outside the calendar."""
    if name not in table.column_names:
        return np.full(table.num_rows, layout.NO_TIME, np.int64)
    ms, present, valid = parse_times(table.column(name))
    wild = valid & ((ms < MIN_TIME_MS) | (ms >= MAX_TIME_MS))
    bad = np.flatnonzero((~valid if required else present & ~valid) | wild)
    if len(bad):
        i = int(bad[0])
        why = MISSING if not present[i] else TIME_OUT_OF_RANGE if valid[i] else NOT_A_TIME
        cell = f": {excerpt(table.column(name)[i].as_py())}" if present[i] else ""
        raise InvalidInput(name, f"row {int(rows[i])}: {REASONS[why]}{cell}", source)
    if days is not None:
        day = (ms + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY
        outside = np.flatnonzero(valid & ((day < days[0]) | (day > days[1])))
        if len(outside):
            i = int(outside[0])
            raise InvalidInput(name, f"row {int(rows[i])}: {REASONS[OUTSIDE_CALENDAR]}: "
                               f"{excerpt(table.column(name)[i].as_py())}", source)
    return ms


# Excel's ways of writing a time: serial days (46296.0009375: days since
# 1899-12-30, local time, as a cell formatted "General" exports it) and
# dates with slashes or without zero padding (2026/10/1 0:01:21).
_EXCEL_SERIAL = r"^\d{1,6}(\.\d+)?$"
_SUB_MS = r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d{3})\d{1,6}"  # \1: the time to the millisecond
_EXCEL_EPOCH_DAYS = 25_569  # serial day of 1970-01-01
_EXCEL_TEXT = (
    (r"^(\d{4})/(\d{1,2})/(\d{1,2})", r"\1-\2-\3"),
    (r"^(\d{4})-(\d)-", r"\1-0\2-"),
    (r"^(\d{4}-\d\d)-(\d)([ T])", r"\1-0\2\3"),
    (r"^(\d{4}-\d\d-\d\d[ T])(\d):", r"\10\2:"),  # RE2: \1 then "0" (groups are one digit)
)


def _excel_ms(days: np.ndarray) -> np.ndarray:
    """Epoch ms of Excel serial days in Asia/Shanghai local time, rounded to
    the second (Excel keeps time as a fraction of a day; the float's last
    digits are noise, and Excel itself shows whole seconds)."""
    seconds = np.rint((days - _EXCEL_EPOCH_DAYS) * 86_400).astype(np.int64)
    return seconds * 1000 - layout.LOCAL_OFFSET_MS


def _excel_text(r: pa.Array) -> pa.Array:
    """Excel-style date-times rewritten as ISO 8601 (``2026/10/1 0:01:21`` ->
    ``2026-10-01 00:01:21``); everything else unchanged."""
    for pattern, repl in _EXCEL_TEXT:
        r = pc.replace_substring_regex(r, pattern, repl)
    return r


def _cast_all(r: pa.Array) -> np.ndarray | None:
    """Epoch ms of ISO strings when they are all alike and sound (all with
    an offset, or all Shanghai wall time), else None. The shape check keeps
    this path as strict as the regexes: date, hour and minute at least."""
    if r.null_count or not pc.all(pc.and_(
            pc.greater_equal(pc.binary_length(r), 16),
            pc.equal(pc.utf8_slice_codeunits(r, 13, 14), ":"))).as_py():
        return None
    for to, shift in ((pa.timestamp("ms", tz="UTC"), 0), (pa.timestamp("ms"), layout.LOCAL_OFFSET_MS)):
        try:
            return pc.cast(r, to).cast(pa.int64()).to_numpy(zero_copy_only=False) - shift
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None


def _filled(values: pa.Array) -> np.ndarray:
    if values.null_count:
        values = pc.fill_null(values, layout.NO_TIME)
    return np.ascontiguousarray(values.to_numpy(zero_copy_only=False), np.int64)


# --- validating -------------------------------------------------------------
@dataclass
class Prepared:
    """CDRs through the edge: normalised columns, the kernel's arrays, and
    which rows go on (``good``); the others are in ``rejects``.

    ``table`` keeps every input row (``row``: input row number; input
    columns with numbers normalised and times as timestamps; extra input
    columns), ``cdr`` the kernel's arrays for the same rows. Rows are
    selected once, at the end (``Rater``), so a clean file is never copied.
    """

    table: pa.Table
    cdr: dict[str, np.ndarray]
    good: np.ndarray
    rejects: pa.Table
    rows_in: int
    duplicates: int = 0
    deduped: bool = False  # ``dedupe`` has run (it is idempotent but not free)
    # (row, "start" or "end") -> that time as given (the text a reject shows),
    # of the good rows whose start or end is later than ``latest_call_ms``
    # when the edge read them: what ``reject_future`` writes (few rows; the
    # table holds the parsed time, its text and unit gone).
    given: dict[tuple[int, str], str] = dataclass_field(default_factory=dict)


def calendar_range(tables: dict) -> tuple[int, int]:
    """[first, last] local epoch day the snapshot's calendar covers."""
    first = int(tables["calendar_first_day"][0])
    return first, first + len(tables["day_kind"]) - 1


def judge_times(parsed: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], days: tuple[int, int],
                field: np.ndarray, reason: np.ndarray) -> dict[str, np.ndarray]:
    """The time fields' rejects, in one compiled pass (``kernels.edge.judge_times``).

    parsed: ``parse_times``' (epoch ms, present, valid) per TIME_COLUMNS name;
    days: the calendar's [first, last] local epoch day. Writes, for every row,
    the first bad time field in column order into ``field`` (int8, -1 where
    the times are sound) and its REASONS code into ``reason`` (int8):
    start/end missing; a time outside [MIN_TIME_MS, MAX_TIME_MS) out of range;
    present but unparsed, not a time; the start's local day outside the
    calendar; an answer before start or after end (against a sound
    start <= end only: otherwise end is the field at fault); end before
    start; a call of MAX_CALL_MS or more. Returns the epoch ms per name with
    NO_TIME where absent, unparsed or out of range, so everything below the
    edge may subtract two times without overflow."""
    from .kernels import edge

    present = np.stack([parsed[name][1] for name in TIME_COLUMNS]).view(np.uint8)
    valid = np.stack([parsed[name][2] for name in TIME_COLUMNS]).view(np.uint8)
    values = {name: parsed[name][0] for name in TIME_COLUMNS}
    wild = edge.judge_times(
        values["start"], values["ivr_answer"], values["agent_answer"], values["end"], present, valid, field, reason,
        min_ms=MIN_TIME_MS, max_ms=MAX_TIME_MS, max_call_ms=MAX_CALL_MS, first_day=days[0], last_day=days[1],
        f_start=F["start"], f_ivr=F["ivr_answer"], f_agent=F["agent_answer"], f_end=F["end"],
        missing=MISSING, not_a_time=NOT_A_TIME, out_of_range=TIME_OUT_OF_RANGE, before_start=BEFORE_START,
        after_end=AFTER_END, end_before_start=END_BEFORE_START, too_long=TOO_LONG,
        outside_calendar=OUTSIDE_CALENDAR)
    if wild:  # rare: times out of range become NO_TIME (a copy: the parsed array may be Arrow's)
        for name in TIME_COLUMNS:
            t, ok = values[name], parsed[name][2]
            out = ok & ((t < MIN_TIME_MS) | (t >= MAX_TIME_MS))
            if out.any():
                values[name] = np.where(out, layout.NO_TIME, t)
    return values


def prepare(batch: pa.Table | pa.RecordBatch, days: tuple[int, int], row_offset: int = 0) -> Prepared:
    """Normalise and validate one batch (no duplicate check: see ``dedupe``)."""
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    absent = [c for c in REQUIRED_COLUMNS if c not in batch.column_names]
    if absent:  # the whole input is unusable: an error, not a reject per row
        raise InvalidInput(absent[0], f"no such column (required: {', '.join(REQUIRED_COLUMNS)})")
    for name in CDR_COLUMNS:  # a nested cell is no CDR value: the whole input is unusable
        if name in batch.column_names and pa.types.is_nested(batch.schema.field(name).type):
            raise InvalidInput(name, f"a {batch.schema.field(name).type} column; CDR fields are text, "
                                     "numbers or timestamps")
    n = batch.num_rows
    cols = {name: batch.column(name) if name in batch.column_names else pa.nulls(n, pa.string())
            for name in CDR_COLUMNS}
    field = np.empty(n, np.int8)  # every row written by judge_times
    reason = np.empty(n, np.int8)
    text = {}  # the text columns' judgement (``text_column``): 0, NOT_UTF8 or CONTROL_CHARACTER
    for name in STRING_COLUMNS + ("hangup_cause",):
        cols[name], text[name] = text_column(cols[name], TEXT_BYTES[FIELD_LIMIT[name]])
    for name in TIME_COLUMNS:  # a time written as bytes: its text (a cell not UTF-8 is then not a time)
        if binary_type(cols[name].type):
            cols[name] = text_column(cols[name])[0]

    def flag(name: str, bad: np.ndarray, why: int) -> None:
        # Fields are flagged in reverse column order, so the first bad field
        # in column order is the one that stays.
        field[bad] = F[name]
        reason[bad] = why

    def flag_text(name: str) -> None:  # a field's text judgement outranks its other reasons
        bad = text[name] != 0
        if bad.any():
            field[bad] = F[name]
            reason[bad] = text[name][bad]

    call_id = _as_string(cols["call_id"])
    caller, caller_present, caller_ok, caller_known, caller_key, _ = _normalize_numbers(cols["caller"], WITHHELD_CALLERS)
    number, number_present, number_ok, number_known, number_key, is_400 = _normalize_numbers(cols["number"])
    fwd, fwd_present, fwd_ok, fwd_known, fwd_key, _ = _normalize_numbers(cols["forwarded_to"])
    number_ok &= is_400
    # The time fields, judged in one compiled pass (reasons in the order
    # of ``kernels/edge.pyx``); the number fields' flags below override them.
    times = judge_times({name: parse_times(cols[name]) for name in TIME_COLUMNS}, days, field, reason)
    start, end = times["start"], times["end"]
    keys = {"number_key": number_key, "caller_key": caller_key, "forwarded_key": fwd_key}
    hangup = (text["hangup_cause"] != 0) & (field < 0)  # the last field: only where no time is bad
    if hangup.any():
        field[hangup] = F["hangup_cause"]
        reason[hangup] = text["hangup_cause"][hangup]
    flag("forwarded_to", fwd_ok & lost_zero(cols["forwarded_to"], fwd, fwd_present & ~fwd_known), LOST_ZERO)
    flag("forwarded_to", fwd_present & ~fwd_ok, NOT_A_NUMBER)
    flag("forwarded_to", _foreign(cols["forwarded_to"], fwd_present & ~fwd_ok), NOT_ASCII_DIGITS)
    flag("forwarded_to", _spreadsheet(cols["forwarded_to"], fwd_present & ~fwd_known), SPREADSHEET_NUMBER)
    flag("forwarded_to", ~fwd_present, MISSING)
    flag_text("forwarded_to")
    flag("number", number_present & ~number_ok, NOT_A_400_NUMBER)
    flag("number", _foreign(cols["number"], number_present & ~number_ok), NOT_ASCII_DIGITS)
    flag("number", _spreadsheet(cols["number"], number_present & ~number_known), SPREADSHEET_NUMBER)
    flag("number", ~number_present, MISSING)
    flag_text("number")
    flag("caller", caller_ok & lost_zero(cols["caller"], caller, caller_present & ~caller_known), LOST_ZERO)
    flag("caller", caller_present & ~caller_ok, NOT_A_NUMBER)
    flag("caller", _foreign(cols["caller"], caller_present & ~caller_ok), NOT_ASCII_DIGITS)
    flag("caller", _spreadsheet(cols["caller"], caller_present & ~caller_known), SPREADSHEET_NUMBER)
    flag_text("caller")
    present = _present(call_id)
    flag("call_id", _spaced(call_id, present), SPACED_ID)
    flag("call_id", ~present, MISSING)
    flag_text("call_id")

    good = field < 0
    rejects = _rejects(np.flatnonzero(~good), field, reason, call_id, cols, row_offset)
    given = _given_late(cols, {"start": start, "end": end}, good, row_offset)

    out_cols = {
        "row": pa.array(np.arange(row_offset, row_offset + n, dtype=np.int64)),
        "call_id": call_id,
        "caller": caller,
        "number": number,
        "forwarded_to": fwd,
    }
    for name in TIME_COLUMNS:
        t = times[name]  # zero copy: the kernel's array, nulls where NO_TIME
        out_cols[name] = pa.Array.from_buffers(TIME_TYPE, n, [_validity(t != layout.NO_TIME), pa.py_buffer(t)])
    out_cols["hangup_cause"] = _as_string(cols["hangup_cause"])
    # The other columns by position: a name given twice is no CDR field
    # (``_check``) and each comes along (breaker N13 F12).
    extra = [i for i, name in enumerate(batch.column_names) if name not in out_cols]
    table = pa.Table.from_arrays([*out_cols.values(), *(batch.column(i) for i in extra)],
                                 names=[*out_cols, *(batch.column_names[i] for i in extra)])
    cdr = {
        **keys,
        "start_ms": start,
        "ivr_answer_ms": times["ivr_answer"],
        "agent_answer_ms": times["agent_answer"],
        "end_ms": end,
    }
    return Prepared(table, cdr, good, rejects, n, given=given)


def latest_call_ms() -> int:
    """The latest a committed call may start or end, epoch ms: now (the
    clock operations are dated by, ``accounts.operations.now_ms``) +
    ``accounts.operations.AHEAD_MS`` (README "Calls from the future")."""
    from .accounts import operations

    return operations.now_ms() + operations.AHEAD_MS


def _given_late(cols: dict, times: dict[str, np.ndarray], good: np.ndarray, row_offset: int) -> dict:
    """``Prepared.given``: of the ``good`` rows, each start or end (epoch ms
    in ``times``) later than ``latest_call_ms`` now, as given in ``cols``
    (shown as a rejects file shows a value), keyed (row, field). Read at the
    edge, before a commit's ``reject_future`` (whose clock is no earlier)."""
    latest = latest_call_ms()
    late = {name: np.flatnonzero(good & (ms > latest)) for name, ms in times.items()}
    if not any(len(rows) for rows in late.values()):
        return {}
    rows = np.concatenate(list(late.values()))
    names = np.array([name for name, r in late.items() for _ in r])
    text = shown(values_as_given(cols, rows, names)).to_pylist()
    return {(int(r) + row_offset, str(name)): v for r, name, v in zip(rows, names, text)}


def _rejects(bad: np.ndarray, field: np.ndarray, reason: np.ndarray, call_id: pa.Array,
             cols: dict, row_offset: int) -> pa.Table:
    if len(bad) == 0:
        return REJECT_SCHEMA.empty_table()
    f = field[bad]
    value = values_as_given(cols, bad, np.array(FIELDS)[f])
    return pa.table({
        "row": pa.array(bad.astype(np.int64) + row_offset),
        "call_id": shown(call_id.take(pa.array(bad))),
        "field": pa.DictionaryArray.from_arrays(pa.array(f, pa.int8()), pa.array(FIELDS)).cast(pa.string()),
        "reason": pa.DictionaryArray.from_arrays(pa.array(reason[bad]), pa.array(REASONS)).cast(pa.string()),
        "value": shown(value),
    }, schema=REJECT_SCHEMA)


def values_as_given(cols, rows: np.ndarray, fields: np.ndarray) -> pa.Array:
    """As strings: for each i, ``cols[fields[i]][rows[i]]`` (the offending
    value of a reject). Only the rejected cells are cast."""
    value = pa.nulls(len(rows), pa.string())
    for name in np.unique(fields):
        if not name:
            continue
        sel = fields == name
        cells = cols[name].take(pa.array(rows[sel]))
        value = pc.replace_with_mask(value, pa.array(sel), _text(cells))
    return value


_FIXED_OFFSET = re.compile(r"^([+-])([0-9]{2}):([0-9]{2})$")
_YEAR_1_S, _YEAR_9999_S = -62_135_596_800 + 86_400, 253_402_300_799 - 86_400  # a day inside, for any offset
_DAY_1, _DAY_9999 = -719_162, 2_932_896  # 0001-01-01 and 9999-12-31, days since 1970-01-01
_UNIT_PER_MINUTE = {"s": 60, "ms": 60_000, "us": 60_000_000, "ns": 60_000_000_000}


def _text(cells) -> pa.Array:
    """``_as_string(cells)``, the same text, faster for timestamps in a fixed
    offset such as the edge's own ``+08:00`` (Arrow formats those through
    its time-zone database, ~5 us a value): the wall time cast as a naive
    timestamp, then the offset as Arrow writes it (``+0800``). A timestamp
    beyond the years 0001-9999 (a Parquet file's timestamp[ms] of
    10**15: year 33658) is no date Arrow can write (it wrote
    ``-31878-09-27 09:46:40.000+0800``, and for int64's largest
    ``1535-09-27 2547115198431:12:55.807+0800``): its raw integer and unit,
    ``epoch ms 1000000000000000 (out of range)`` (``out_of_range_text``;
    faces 12-02)."""
    t = cells.type
    if (pa.types.is_date32(t) or pa.types.is_date64(t)) and len(cells):
        return _date_text(cells)
    if pa.types.is_timestamp(t) and len(cells):
        # Inside the years, and a day inside int64 (ns: int64 holds only the years 1677-2262, and
        # Arrow's own text of 2**63 - 1 ns at +08:00 wraps round to 1677-09-21).
        day = 86_400 * (_UNIT_PER_MINUTE[t.unit] // 60)
        lo = max(_YEAR_1_S * (day // 86_400), -(2**63) + day)
        hi = min(_YEAR_9999_S * (day // 86_400), 2**63 - 1 - day)
        values = pc.cast(cells, pa.int64())
        wild = pc.fill_null(pc.or_(pc.less(values, lo), pc.greater(values, hi)), False)
        if pc.any(wild).as_py():
            dated = _text_in_years(pc.if_else(wild, pa.scalar(0, t), cells))
            text = pc.if_else(wild, out_of_range_text(values, t), dated)
            return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    return _text_in_years(cells)


def out_of_range_text(values, t: pa.DataType) -> pa.Array:
    """Timestamps (their int64 ``values``, of type ``t``) a reject shows by
    their raw integer: ``epoch ms 1000000000000000 (out of range)``; a
    timestamp without a time zone is wall time, not epoch:
    ``ms 1000000000000000 since 1970-01-01, no time zone (out of range)``.
    Starts with a letter, so a CSV shows it without a formula guard."""
    head, tail = (f"epoch {t.unit} ", " (out of range)") if t.tz else (
        f"{t.unit} ", " since 1970-01-01, no time zone (out of range)")
    return pc.binary_join_element_wise(head, pc.cast(values, pa.string()), tail, "")


def _date_text(cells) -> pa.Array:
    """``_text`` of a date column (Parquet DATE, read as date32: days since
    1970-01-01; Arrow date64: ms since 1970-01-01): inside the years
    0001-9999 Arrow's text (``2026-11-02``); beyond, its raw integer and
    unit, as a timestamp's (``out_of_range_text``): ``days 2147483647 since
    1970-01-01 (out of range)``, ``ms 1000000000000000 since 1970-01-01 (out
    of range)`` (breaker 12-02 F4: Arrow wrote ``<value out of range:
    2147483647>``, and -11574074 days the year ``-29719-04-06``, behind a CSV
    formula guard). A date64 is floored to its day (Arrow truncates toward
    zero: -1 ms read 1970-01-01, not 1969-12-31)."""
    t = cells.type
    if pa.types.is_date32(t):
        values = pc.cast(cells.view(pa.int32()) if isinstance(cells, pa.Array) else
                         pa.chunked_array([c.view(pa.int32()) for c in cells.chunks], pa.int32()), pa.int64())
        per_day, unit = 1, "days"
    else:
        values = pc.cast(cells, pa.int64())
        per_day, unit = 86_400_000, "ms"
    lo, hi = _DAY_1 * per_day, (_DAY_9999 + 1) * per_day - 1  # 0001-01-01 .. 9999-12-31, to its last ms
    wild = pc.fill_null(pc.or_(pc.less(values, lo), pc.greater(values, hi)), False)
    # Floored to the day (date32 values are days already), shown as a date32.
    days = pc.cast(pc.if_else(wild, 0, values if per_day == 1 else _floor_div(values, per_day)), pa.int32())
    dated = _as_string(days.view(pa.date32()) if isinstance(days, pa.Array) else
                       pa.chunked_array([c.view(pa.date32()) for c in days.chunks], pa.date32()))
    text = pc.if_else(wild, pc.binary_join_element_wise(f"{unit} ", pc.cast(values, pa.string()),
                                                        " since 1970-01-01 (out of range)", ""), dated)
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def _floor_div(values, n: int):
    """``values // n`` (int64, floored, as Python's)."""
    q = pc.divide(values, n)  # truncates toward zero
    return pc.subtract(q, pc.cast(pc.and_(pc.less(values, 0), pc.not_equal(pc.multiply(q, n), values)), pa.int64()))


def _text_in_years(cells) -> pa.Array:
    """``_text`` of timestamps inside the years 0001-9999."""
    t = cells.type
    m = _FIXED_OFFSET.match(t.tz or "") if pa.types.is_timestamp(t) else None
    if m is None:
        return _as_string(cells)
    per_minute = _UNIT_PER_MINUTE[t.unit]
    sign = 1 if m.group(1) == "+" else -1
    shift = sign * (int(m.group(2)) * 60 + int(m.group(3))) * per_minute
    values = pc.cast(cells, pa.int64())
    bounds = pc.min_max(values).as_py()
    # Years 0001-9999 only: beyond them Arrow's text is not a date either way.
    if bounds["min"] is not None and not (_YEAR_1_S // 60 * per_minute <= bounds["min"]
                                          and bounds["max"] <= _YEAR_9999_S // 60 * per_minute):
        return _as_string(cells)
    wall = pc.add(values, shift).cast(pa.timestamp(t.unit))
    text = pc.binary_join_element_wise(pc.cast(wall, pa.string()), m.group(1) + m.group(2) + m.group(3), "")
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def _one_table(tables: list[pa.Table]) -> pa.Table:
    """``tables`` (the inputs of one run) as one: Arrow's permissive
    promotion, and a column whose types cannot be promoted (an extra
    column read as numbers from one file and as text from another, e.g.
    UTF-8 beside GBK) as text in every table (breaker: an internal error)."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        types: dict[str, set] = {}
        for t in tables:
            for f in t.schema:
                types.setdefault(f.name, set()).add(f.type)
        mixed = {name for name, ts in types.items() if len(ts) > 1}
        as_text = []
        for t in tables:
            for name in mixed & set(t.column_names):
                i = t.column_names.index(name)
                t = t.set_column(i, name, text_column(t.column(i))[0])
            as_text.append(t)
        return pa.concat_tables(as_text, promote_options="permissive")


def concat(parts: list[Prepared]) -> Prepared:
    if len(parts) == 1:
        return parts[0]
    return Prepared(
        _one_table([p.table for p in parts]),
        {k: np.concatenate([p.cdr[k] for p in parts]) for k in parts[0].cdr},
        np.concatenate([p.good for p in parts]),
        pa.concat_tables([p.rejects for p in parts]),
        sum(p.rows_in for p in parts),
        sum(p.duplicates for p in parts),
        given={k: v for p in parts for k, v in p.given.items()},
    )


def later_copies(call_id: pa.Array | pa.ChunkedArray, consider: np.ndarray) -> np.ndarray:
    """Rows (ascending) among ``consider`` (a bool mask) whose call id an
    earlier considered row holds: every copy after the first. One compiled
    pass over the ids' buffers (``kernels.ids.later_copies``: hashes, then
    exact byte comparison), no copy of a one-chunk column."""
    from .kernels import ids as ids_kernel

    s = _as_string(call_id)
    if len(s) == 0:
        return np.zeros(0, np.intp)
    if s.null_count:  # a null id is no copy of anything (a good row's id is never null)
        consider = consider & pc.is_valid(s).to_numpy(zero_copy_only=False)
    later = np.empty(len(s), np.uint8)
    offsets, data = string_buffers(s)
    if not ids_kernel.later_copies(offsets, data, np.ascontiguousarray(consider).view(np.uint8), later):
        return np.zeros(0, np.intp)
    return np.flatnonzero(later)


def first_occurrences(call_id: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True at the first occurrence of each value (and at null values):
    ``later_copies`` over every row, as a mask."""
    first = np.ones(len(call_id), bool)
    first[later_copies(call_id, first)] = False
    return first


def dedupe(prepared: Prepared) -> Prepared:
    """Among the good rows, later occurrences of a call id become rejects
    ``duplicate call id`` (so a malformed first copy does not shadow a
    good retransmission)."""
    if prepared.deduped:
        return prepared
    return reject_copies(prepared, later_copies(prepared.table.column("call_id"), prepared.good))


def reject_copies(prepared: Prepared, dup: np.ndarray) -> Prepared:
    """``prepared`` (deduped) with the rows ``dup`` (int array of row
    indices, good rows) made rejects ``duplicate call id``: copies of a call
    id seen earlier in the request (``dedupe``) or in an earlier chunk or
    request of the same job (``SeenIds``)."""
    if len(dup) == 0:
        return replace(prepared, deduped=True)
    t = prepared.table.select(["row", "call_id"]).take(pa.array(dup))
    rejects = pa.table({
        "row": t.column("row"),
        "call_id": t.column("call_id"),
        "field": pa.array(["call_id"] * len(dup)),
        "reason": pa.array([REASONS[DUPLICATE]] * len(dup)),
        "value": t.column("call_id"),
    }, schema=REJECT_SCHEMA)
    good = prepared.good.copy()
    good[dup] = False
    return replace(prepared, good=good, rejects=pa.concat_tables([prepared.rejects, rejects]),
                   duplicates=prepared.duplicates + len(dup), deduped=True)


def reject_future(prepared: Prepared, latest_ms: int) -> Prepared:
    """``prepared`` with its good rows whose start (epoch ms) is later than
    ``latest_ms`` made rejects ``start in the future`` (field ``start``),
    and those whose end is, ``end in the future`` (field ``end``); the value
    the time as given (``Prepared.given``, breaker N13 F10: it was the
    parsed time to the second, its milliseconds gone), or, for a row the
    edge did not see as late, the time in Asia/Shanghai to the millisecond.
    Every committing path applies it (``engine._keyed``) with
    ``latest_call_ms``: a call
    committed years ahead made ``bill --ledger`` bill every account every
    month to that year (breaker N11 F4: one CDR dated 2060, 205,745 yuan of
    future rentals). A dry rating keeps pricing future calls (a what-if)."""
    start, end = prepared.cdr["start_ms"], prepared.cdr["end_ms"]
    late = np.flatnonzero(prepared.good & ((start > latest_ms) | (end > latest_ms)))
    if len(late) == 0:
        return prepared
    import datetime as dt

    t = prepared.table.select(["row", "call_id"]).take(pa.array(late))
    by_start = start[late] > latest_ms  # else its end (breaker N12 F12)
    when = np.where(by_start, start[late], end[late])
    fields = np.where(by_start, "start", "end").tolist()
    rejects = pa.table({
        "row": t.column("row"),
        "call_id": t.column("call_id"),
        "field": pa.array(fields),
        "reason": pa.array([REASONS[START_IN_FUTURE if s else END_IN_FUTURE] for s in by_start]),
        "value": pa.array([prepared.given.get((r, f)) or dt.datetime.fromtimestamp(
            int(ms) / 1000, layout.LOCAL_TZ).isoformat(timespec="milliseconds")
            for r, f, ms in zip(t.column("row").to_pylist(), fields, when)], pa.string()),
    }, schema=REJECT_SCHEMA)
    good = prepared.good.copy()
    good[late] = False
    return replace(prepared, good=good, rejects=pa.concat_tables([prepared.rejects, rejects]))


class TooManyIds(Exception):
    """``SeenIds.later_copies`` refused a call that would hold more than
    ``most`` ids: ``held`` ids held, ``more`` new ones in the call. Figures
    only: the caller that set the bound says it (``engine.DryRun``)."""

    def __init__(self, held: int, more: int, most: int):
        super().__init__(held, more, most)
        self.held, self.more, self.most = held, more, most


class SeenIds:
    """The call ids of one job's earlier chunks or requests (a file job's
    chunks, ``bulk.Duplicates``; a dry stream's messages,
    ``engine.DryRun``), so a copy in a later one is rejected as
    ``duplicate call id`` as one request's copies are (``dedupe``).

    Held compactly and exactly: each id's 64-bit hash
    (``kernels.ids.hash_strings``) beside its UTF-8 bytes in an Arrow
    large_string buffer, both sorted by hash, in a few runs whose sizes at
    least halve from one to the next (a new call's ids are a run, merged into
    the one before while that one is not larger: each id is merged about
    log2(count / ids per call) times). An id's hash found is compared byte for byte
    with the ids that have it, so a hash collision never makes a copy. About
    16 bytes an id plus its length (a 36-character id: 53 bytes; as Python
    strings in a set, 120); a merge holds its two runs twice for a moment.
    ``count``: the ids held."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, pa.Array]] = []  # (hashes ascending uint64, the ids in that order)
        self.count = 0

    def later_copies(self, ids: pa.ChunkedArray | pa.Array, candidates: np.ndarray,
                     most: int | None = None) -> np.ndarray:
        """Of ``candidates`` (rows of ``ids``, ascending int array; their ids
        not null), those whose call id an earlier candidate (of this call or
        an earlier one) had; the others' ids are remembered. Call in input
        order. ``most``: the most ids held; a call that would pass it raises
        ``TooManyIds`` and remembers nothing."""
        from .kernels import ids as ids_kernel

        if len(candidates) == 0:
            return np.zeros(0, np.int64)
        s = _as_string(ids.take(pa.array(candidates, pa.int64())))
        offsets, data = string_buffers(s)
        later = np.empty(len(s), np.uint8)
        ids_kernel.later_copies(offsets, data, np.ones(len(s), np.uint8), later)
        dup = later.view(bool)
        hashes = np.empty(len(s), np.uint64)
        ids_kernel.hash_strings(offsets, data, hashes)
        s = pc.cast(s, pa.large_string())  # the runs' type
        order = np.argsort(hashes, kind="stable")  # the call's ids by hash: each run is looked up in order
        hashes = hashes[order]
        for run_hashes, run_ids in self.runs:
            at = np.searchsorted(run_hashes, hashes)
            ask = np.flatnonzero(at < len(run_hashes))
            while len(ask):  # ids of the run with an asked id's hash, the k-th on round k (rarely past 0)
                ask = ask[(run_hashes[at[ask]] == hashes[ask]) & ~dup[order[ask]]]
                if len(ask):
                    same = pc.equal(s.take(pa.array(order[ask])), run_ids.take(pa.array(at[ask])))
                    dup[order[ask[same.to_numpy(zero_copy_only=False)]]] = True
                    at[ask] += 1
                    ask = ask[at[ask] < len(run_hashes)]
        new = np.flatnonzero(~dup[order])  # in hash order
        if most is not None and self.count + len(new) > most:
            raise TooManyIds(self.count, len(new), most)
        if len(new):
            self._add(hashes[new], s.take(pa.array(order[new])))
        return candidates[dup]

    def _add(self, hashes: np.ndarray, ids: pa.Array) -> None:
        """A run (hashes ascending, ``ids`` in their order), merged into the
        runs before it while the last of them is not larger."""
        self.count += len(hashes)
        while self.runs and len(self.runs[-1][0]) <= len(hashes):
            prev_hashes, prev_ids = self.runs.pop()
            hashes = np.concatenate([prev_hashes, hashes])
            order = np.argsort(hashes, kind="stable")
            hashes = hashes[order]
            ids = pa.concat_arrays([prev_ids, ids]).take(pa.array(order))
        self.runs.append((hashes, ids))


# --- requests: limits, Arrow IPC, field lengths -------------------------------
# The same rules for a file, a gRPC batch (Arrow IPC or columns), a unary
# RateCdr and a routing request: every string field has a length bound, every
# batch a row bound, every message a size bound. A violation is InvalidInput
# naming the field (gRPC: INVALID_ARGUMENT) with the value cut to an excerpt.
@dataclass(frozen=True)
class Limits:
    """What the edge accepts from one request.

    max_message_bytes: one gRPC message (an Arrow IPC stream included).
    max_batch_rows: CDRs in one batch message.
    The rest: longest value of a string field of one request (a unary
    RateCdr, a routing request: INVALID_ARGUMENT), in UTF-8 bytes
    (TEXT_BYTES, the bounds a CDR file's cells have too; in a batch, as in a
    file, a cell over them is its row's reject).
    max_dry_stream_calls: distinct call ids one dry RateCdrBatches stream
    rates (``engine.DryRun`` holds each, ``SeenIds``: about 16 bytes plus
    the id's length; 2M 36-character ids, about 110 MB); a message that
    would pass it ends the stream, RESOURCE_EXHAUSTED (``errors.OverLimit``).
    Defaults are safe for a 2-core server (a full batch decodes in tens of ms);
    ``rating400 serve --max-message-mb/--max-batch-rows/--max-dry-stream-calls``
    change the first three.
    """

    max_message_bytes: int = 64 << 20
    max_batch_rows: int = 262_144
    max_dry_stream_calls: int = 2_000_000
    call_id: int = TEXT_BYTES["call_id"]
    number: int = TEXT_BYTES["number"]
    hangup_cause: int = TEXT_BYTES["hangup_cause"]
    ivr_keys: int = TEXT_BYTES["ivr_keys"]

    def of(self, field: str) -> int:
        """The length bound of a request field (by its last name part)."""
        name = field.rsplit(".", 1)[-1]
        return getattr(self, FIELD_LIMIT.get(name, "number"))


FIELD_LIMIT = {"call_id": "call_id", "caller": "number", "number": "number", "forwarded_to": "number",
               "destination": "number", "hangup_cause": "hangup_cause", "ivr_keys": "ivr_keys"}
DEFAULT_LIMITS = Limits()
EXCERPT_CHARS = 40


def excerpt(value, limit: int = EXCERPT_CHARS) -> str:
    """``repr`` of at most ``limit`` characters of ``value``, with its full size
    when cut: an error message never repeats a large input."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value[: limit * 4]).decode("utf-8", "replace")
        size = None
    else:
        value = str(value)
        size = len(value)
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({size} characters)" if size is not None else f"{value[:limit]!r}..."


def forbidden_characters(text: str, allowed: str = "") -> list[str]:
    """The FORBIDDEN_TEXT characters ``text`` holds, other than ``allowed``,
    each once, as ``repr`` writes it (``'\\x7f'``, ``'\\u202e'``), sorted: the
    one rule for what people type too (CRM tags and notes, rerating reasons)."""
    return sorted({repr(c) for c in _forbidden.findall(text) if c not in allowed})


def check_text(field: str, value: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """One request string field: at most its bound in UTF-8 bytes, no
    FORBIDDEN_TEXT character (NUL, ESC, DEL, C1, bidi controls, zero-width
    characters). Returns ``value``; InvalidInput otherwise."""
    bound = limits.of(field)
    if len(value) > bound or (not value.isascii() and len(value.encode("utf-8", "surrogatepass")) > bound):
        raise InvalidInput(field, f"longer than {bound} bytes: {excerpt(value)}")
    return check_characters(field, value)


def check_characters(field: str, value: str, record: str | None = None) -> str:
    """One free-text value (a note, a reason, a company name, a CSV cell):
    no FORBIDDEN_TEXT character, with no length bound of its own. Returns
    ``value``; ``InvalidInput(field, ..., record)`` showing it escaped
    otherwise (``record``: where it came from, e.g. ``FILE row N``)."""
    if _forbidden.search(value):
        raise InvalidInput(field, f"contains a control character: {excerpt(value)}", record)
    return value


def check_environment(prefix: str = "RATING400_") -> None:
    """The project's environment variables (names starting with ``prefix``)
    are text: InvalidInput naming the first variable whose value is not
    UTF-8 (``RATING400_STORE: not UTF-8 text: 'd/st\\xffore'``) or holds a
    FORBIDDEN_TEXT character, the value shown escaped. Each of them is a
    path, a number or a name; a byte that is not UTF-8 would otherwise reach
    a path or an error line as a lone surrogate, a bidi control would
    reorder the error line that shows it. Checked once, before a command
    runs (``cli.main``, ``rating400_server.main.serve``)."""
    import os

    for name in sorted(k for k in os.environ if k.startswith(prefix)):
        value = os.environ[name]
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(name, f"not UTF-8 text: '{_escaped_bytes(os.fsencode(value))}'") from None
        check_characters(name, value)


def check_time_ms(field: str, ms: int | None) -> int | None:
    """An epoch-ms request time inside [MIN_TIME_MS, MAX_TIME_MS) (or None)."""
    if ms is not None and not MIN_TIME_MS <= ms < MAX_TIME_MS:
        raise InvalidInput(field, f"{REASONS[TIME_OUT_OF_RANGE]}: {excerpt(ms)} ms")
    return ms


def check_batch(table: pa.Table, limits: Limits = DEFAULT_LIMITS, prefix: str = "cdrs") -> pa.Table:
    """The request-level bound of a CDR batch (engine column names): its row
    count (InvalidInput naming ``prefix``). A cell over its field's byte
    bound is *not* refused here: the edge rejects that row alone
    (``text_column``: ``longer than 128 bytes``, naming the field), as it
    does in a file and for every other bad cell of a batch, and rates the
    rest. What protects the server is the message size, checked before
    decoding (``max_message_bytes``), and the row count; a long cell is
    never read past its bound and a reject shows at most SHOWN_CHARS."""
    if table.num_rows > limits.max_batch_rows:
        raise InvalidInput(prefix, f"{table.num_rows} rows, more than the limit of {limits.max_batch_rows} per batch")
    return table


# Arrow IPC batches (RateCdrBatches.cdrs_arrow_ipc): the columns and types a
# client may send. Times are epoch ms under their wire (``start_ms``) or
# engine (``start``) name; null or 0 means absent (as in CdrColumns); any
# other value is a time, so one out of range (negative, past int64) is a
# reject naming its field, never a call taken as unanswered.
ARROW_STRINGS = STRING_COLUMNS + ("hangup_cause",)
ARROW_TIMES = {"start_ms": "start", "ivr_answer_ms": "ivr_answer", "agent_answer_ms": "agent_answer",
               "end_ms": "end"}
ARROW_REQUIRED = ("call_id", "number", "start_ms", "end_ms")


def _string_type(t: pa.DataType) -> bool:
    """Text or bytes (``binary_type``: judged cell by cell by ``prepare``, a
    cell that is not UTF-8 being a reject, as in a Parquet file)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or binary_type(t)


def decode_arrow_ipc(data: bytes, limits: Limits = DEFAULT_LIMITS, field: str = "cdrs_arrow_ipc") -> pa.Table:
    """An Arrow IPC stream of CDRs -> engine table (columns in CDR_COLUMNS
    order, times int64 epoch ms, null where absent), fully validated first.

    Checks, in order: message size; that it decodes; the schema (allowed
    columns and types, no column twice); rows per batch; every buffer and
    offset (``validate(full=True)``: a string offset past its data buffer,
    a dictionary index out of range, bad UTF-8). A cell over its field's
    bound is that row's reject (``check_batch``). Raises
    InvalidInput naming ``field`` or ``field.column``; nothing undecoded
    ever reaches the kernels.
    """
    if len(data) > limits.max_message_bytes:
        raise InvalidInput(field, f"{len(data)} bytes, more than the limit of {limits.max_message_bytes}")
    try:
        source = pa.BufferReader(pa.py_buffer(data))
        reader = pa.ipc.open_stream(source)
        schema = reader.schema
        names = schema.names  # column names that are not UTF-8 fail here
        types = schema.types
    except Exception as e:  # noqa: BLE001 - any decode failure is the client's
        raise InvalidInput(field, f"not an Arrow IPC stream: {excerpt(e, 120)}") from None
    for name, t in zip(names, types):
        if names.count(name) > 1:
            raise InvalidInput(f"{field}.{excerpt(name)}", "column given twice")
        if name in ARROW_STRINGS:
            if not _string_type(t):
                raise InvalidInput(f"{field}.{name}", f"must be string or binary, not {excerpt(t)}")
        elif name in ARROW_TIMES or name in ARROW_TIMES.values():
            if not pa.types.is_integer(t):
                raise InvalidInput(f"{field}.{name}", f"must be int64 epoch ms, not {excerpt(t)}")
        else:
            raise InvalidInput(f"{field}.{excerpt(name)}",
                               f"unknown column (allowed: {', '.join(ARROW_STRINGS + tuple(ARROW_TIMES))})")
    batches, rows = [], 0
    try:
        for batch in reader:
            rows += batch.num_rows
            if rows > limits.max_batch_rows:
                raise InvalidInput(field, f"more than the limit of {limits.max_batch_rows} rows per batch")
            try:
                batch.validate(full=True)
            except Exception:  # noqa: BLE001 - name the column at fault (a string column not UTF-8...)
                for name, column in zip(names, batch.columns):
                    try:
                        column.validate(full=True)
                    except Exception as e:  # noqa: BLE001
                        raise InvalidInput(f"{field}.{name}", f"corrupt Arrow data: {excerpt(e, 120)}") from None
                raise
            batches.append(batch)
    except InvalidInput:
        raise
    except Exception as e:  # noqa: BLE001 - corrupt buffers, offsets, UTF-8
        raise InvalidInput(field, f"corrupt Arrow data: {excerpt(e, 120)}") from None
    if source.tell() < len(data):
        # Bytes after the stream's end marker (two streams back to back): the
        # reader stops at the first, so the rest would vanish unrated (breaker).
        raise InvalidInput(field, f"{len(data) - source.tell()} bytes after the end of its Arrow IPC stream "
                                  f"(at byte {source.tell()} of {len(data)}): one stream per message, a stream "
                                  "may hold several record batches")
    table = pa.Table.from_batches(batches, schema=schema)
    n = table.num_rows
    cols = {}
    for name in ARROW_STRINGS:
        if name in names:
            col = table.column(name)
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            cols[name] = col.cast(pa.string()) if pa.types.is_large_string(col.type) else col  # bytes: prepare
        elif n and name in ("call_id", "number"):
            raise InvalidInput(f"{field}.{name}", "required column missing")
        else:  # as CdrColumns has it: an absent string column is empty strings
            cols[name] = pa.repeat("", n).cast(pa.string())
    for wire, name in ARROW_TIMES.items():
        src = wire if wire in names else name if name in names else None
        if src is None:
            if n and wire in ARROW_REQUIRED:
                raise InvalidInput(f"{field}.{wire}", "required column missing")
            cols[name] = pa.nulls(n, pa.int64())
            continue
        col = table.column(src)
        if pa.types.is_uint64(col.type):  # past int64: out of range, kept as a (rejected) time
            over = pc.greater(col, pa.scalar(np.iinfo(np.int64).max, pa.uint64()))
            col = pc.if_else(over, pa.scalar(-1, pa.int64()), col.cast(pa.int64(), safe=False))
        col = col.cast(pa.int64())
        cols[name] = pc.if_else(pc.equal(col, 0), pa.scalar(None, pa.int64()), col)
    out = pa.table({name: cols[name] for name in CDR_COLUMNS})
    return check_batch(out, limits, field)


def check_route(number: str, caller: str, ivr_keys: str = "", limits: Limits = DEFAULT_LIMITS) -> tuple[str, str]:
    """A routing request from an operator (``rating400 route``): NUMBER must
    be a 400 number (``400`` + 7 digits once normalised), CALLER a phone
    number, or empty or a ``WITHHELD_CALLERS`` word (withheld), the IVR keys digits, ``*`` or ``#``.
    Returns the normalised (number, caller); InvalidInput naming the field."""
    from .numbers import normalize

    for field, value in (("number", number), ("caller", caller), ("ivr_keys", ivr_keys)):
        check_text(field, value, limits)
    normal = normalize(number, "number")
    if not (len(normal) == 10 and normal.startswith("400")):
        raise InvalidInput("number", f"{excerpt(number)} is not a 400 number (400 + 7 digits)")
    withheld = not caller.strip() or caller.strip().lower() in WITHHELD_CALLERS
    caller_normal = "" if withheld else normalize(caller, "caller")
    if ivr_keys.strip("0123456789*#"):
        raise InvalidInput("ivr_keys", f"{excerpt(ivr_keys)}: only digits, '*' and '#'")
    return normal, caller_normal
