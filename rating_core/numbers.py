"""Phone numbers at the edge: normalise once, then carry integer keys.

One normaliser for every edge (CDR files, gRPC requests, routing, the CLI,
catalog files): ``normalize`` for one value, ``normalize_array`` for a
column; both give the same answer for every value.

Normal form is the national digit string: mobiles ``13812345678``,
landlines with their trunk zero ``075512345678``, service numbers
``4001234567``. Every written form of a Chinese number that the
``phonenumbers`` package parses for region CN is accepted and gives the
digits of its national format: international prefixes (``+86``, ``0086``,
``86`` before a full national number), the trunk zero written or not
(``+86 (0)755 ...``, ``755 1234 5678``), parentheses, spaces, dashes, dots
and slashes, ``tel:`` URIs and full-width digits (``１３８...``, what Chinese
input methods type: read as ASCII). A digit string that is not a valid
Chinese number (a short code, a PBX extension block, a prefix) is kept as
written, its international prefix off (``+86 95588`` is ``95588``: only a
number long enough to be a landline, 9 digits or more after 86, gets its
trunk zero back). Decimal digits of any other script (Arabic-Indic
``٠٧٩١...``, Devanagari) are refused (``FOREIGN_DIGITS``): kept, they would
make a second spelling of one caller (two CRM records, no caller city), and
no switch or platform writes them. tests/test_numbers.py checks this
against ``phonenumbers`` itself.

Keys: see ``rating_core/kernels/prefix.pxd`` (base 11, order-preserving,
exact longest-prefix match over disjoint intervals).
"""
from __future__ import annotations

import functools
import re
from typing import NamedTuple

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InvalidInput

MAX_DIGITS = 18

# What switches write in the From user part for a withheld caller id
# (Kamailio/SIP "anonymous", FreeSWITCH "unknown"/"anonymous", Asterisk
# "Anonymous"/"Restricted", carriers' "private"/"unavailable"), compared
# lower-cased and trimmed. The forwarded leg was still carried, so such a
# call is rated like one with no caller (out of town), never rejected, and
# routed like one (the router, the CDR edge and ``rating400 route`` read this).
WITHHELD_CALLERS = ("anonymous", "unknown", "private", "restricted", "withheld", "unavailable",
                    "null", "none", "na", "n/a")  # the empty-value words of database and spreadsheet exports

MIN_DIGITS = 3

# Already in normal form, and valid: the common case, which never needs
# phonenumbers (mobile, landline with trunk zero, 400/800).
NORMAL = _NORMAL = r"^(?:1[3-9]\d{9}|0[1-9]\d{8,10}|[48]00\d{7})$"
_JUNK = r"[\s\-().]"
_INTL_KEEP = r"^(?:\+|00)86(1[3-9]\d{9}|[48]00\d{7})$"  # mobile, 400/800
_INTL_TRUNK = r"^(?:\+|00)86(\d{9,})$"  # landline (area code + 7-8 digits): restore the trunk zero
_INTL_SHORT = r"^(?:\+|00)86(\d{1,8})$"  # a service or short number (95588, 10086): prefix off only
_VALID = rf"^\d{{{MIN_DIGITS},{MAX_DIGITS}}}$"
# International form of a mobile or 400/800 number with separators
# (``+86 138-1234-5678``, ``0086 4001234567``): its normal form is the digits
# after 86, whether phonenumbers calls it valid (national format: the same
# digits, none of these has a trunk zero) or not (the fallback: separators
# off, then ``_INTL_KEEP``). tests/test_numbers.py checks it against
# ``_normal_or_none`` for every mobile prefix and for generated forms.
_SEPARATOR = r"[ \-().]"
_INTL_SEPARATED = (rf"^(?:\+|00)86{_SEPARATOR}*(?:1{_SEPARATOR}*[3-9](?:{_SEPARATOR}*\d){{9}}"
                   rf"|[48]{_SEPARATOR}*0{_SEPARATOR}*0(?:{_SEPARATOR}*\d){{7}})$")
# A landline written with a separator after the area code (``0791-5399455``,
# ``0755 1234 5678``): its normal form is its digits, valid or not (a valid
# one's national format keeps the trunk zero). Not 040x/080x/095x: there
# phonenumbers reads the trunk zero off a 400/800 or 95xxx number.
_LANDLINE_SEPARATED = r"^0(?:[2367]\d|4[1-9]|5\d|8[1-9]|9[0-46-9])\d?[ \-]\d{3,4}[ \-]?\d{4}$"

# re.ASCII: \d is 0-9 only, as in RE2 (the vectorised path) and the kernels.
_normal_re = re.compile(_NORMAL, re.ASCII)
_junk_re = re.compile(_JUNK)
_keep_re = re.compile(_INTL_KEEP, re.ASCII)
_trunk_re = re.compile(_INTL_TRUNK, re.ASCII)
_short_re = re.compile(_INTL_SHORT, re.ASCII)
_valid_re = re.compile(_VALID, re.ASCII)
# Full-width digits and plus (as on Chinese keyboards and forms) -> ASCII.
_WIDE = str.maketrans({chr(0xFF10 + d): str(d) for d in range(10)} | {"\uff0b": "+"})
# Why a cell holding a decimal digit of another script is refused (the edge's
# reject reason, ``normalize``'s message).
FOREIGN_DIGITS = "not a phone number (digits 0-9 only)"


def foreign_digits(raw: str) -> bool:
    """True where ``raw`` holds a decimal digit (Unicode category Nd) other
    than ASCII ``0-9`` and full-width ``０-９``: Arabic-Indic ``٣``,
    Devanagari ``३``, ... (refused at every edge: see the module doc)."""
    return not raw.isascii() and any(c.isdecimal() and not ("0" <= c <= "9" or "０" <= c <= "９") for c in raw)


def _normal_or_none(raw: str) -> str | None:
    """The normal form of one written number, or None if it is not one."""
    s = raw.strip().translate(_WIDE)
    if foreign_digits(s):
        return None
    if _normal_re.match(s):
        return s
    try:
        parsed = phonenumbers.parse(s, "CN")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and parsed.country_code == 86 and phonenumbers.is_valid_number(parsed):
        # The digits of the national format: the trunk zero where the
        # number has one, none for mobiles and 400/800.
        return re.sub(r"\D", "", phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL))
    # Not a valid Chinese number as a whole (a short code, an extension
    # block, a prefix): keep its digits as written, international prefix off.
    s = _junk_re.sub("", s)
    s = _keep_re.sub(r"\1", s)
    s = _trunk_re.sub(r"0\1", s)
    s = _short_re.sub(r"\1", s)
    return s if _valid_re.match(s) else None


# Values of at most CACHE_CHARS characters keep their normal form (or None)
# in a bounded cache: an export repeats its odd forms (an extension block, a
# typo'd agent number) batch after batch, and phonenumbers takes ~50 us each.
CACHE_CHARS = 64
ONE_BY_ONE = 64  # normalize_array: this many odd values or fewer go one by one


@functools.lru_cache(maxsize=1 << 14)
def _normal_cached(raw: str) -> str | None:
    return _normal_or_none(raw)


def _normal_of(raw: str) -> str | None:
    """``_normal_or_none``, remembered for short values."""
    return _normal_cached(raw) if len(raw) <= CACHE_CHARS else _normal_or_none(raw)


def normalize(raw: str | None, field: str = "number") -> str:
    """One number to normal form, or InvalidInput naming ``field``."""
    if raw is None:
        raise InvalidInput(field, "missing")
    s = _normal_or_none(str(raw))
    if s is None:
        from .cdr import excerpt  # an error never repeats a long value in full

        if foreign_digits(str(raw)):
            raise InvalidInput(field, f"{excerpt(raw)}: {FOREIGN_DIGITS}")
        raise InvalidInput(field, f"{excerpt(raw)} is not a phone number ({MIN_DIGITS}-{MAX_DIGITS} digits after "
                                  "normalising)")
    return s


def normalize_array(arr: pa.Array | pa.ChunkedArray, one_by_one: int | None = None) -> tuple[pa.Array, np.ndarray]:
    """Vectorised ``normalize``: (normal strings, valid mask). Invalid and
    null slots are null in the result and False in the mask. Values already
    in normal form are kept by one regex over the column; only the others
    go through ``normalize``'s rules one by one. When at most ``one_by_one``
    (default ONE_BY_ONE) values are not in normal form, they all go through
    the rules one by one (each distinct value once, remembered across calls:
    ``_normal_of``), which costs less than the dozen compute passes of the
    vectorised path; tests pass 0 to check that path."""
    s = pc.cast(arr, pa.string())
    if isinstance(s, pa.ChunkedArray):
        s = s.combine_chunks()
    fast = np.asarray(pc.fill_null(pc.match_substring_regex(s, _NORMAL), False).to_numpy(zero_copy_only=False), bool)
    others = np.flatnonzero(~fast)
    if len(others) == 0:
        return s, fast
    rest = s.take(pa.array(others))
    if len(others) <= (ONE_BY_ONE if one_by_one is None else one_by_one):
        fixed = pa.array([None if v is None else _normal_of(v) for v in rest.to_pylist()], pa.string())
        valid = fast.copy()
        valid[others] = pc.is_valid(fixed).to_numpy(zero_copy_only=False)
        return pc.replace_with_mask(s, pa.array(~fast), fixed), valid
    # Vectorised second path: international mobiles and 400/800 numbers
    # with separators, the common irregular form of caller numbers.
    trimmed = pc.utf8_trim_whitespace(rest)
    intl = pc.fill_null(pc.or_(pc.match_substring_regex(trimmed, _INTL_SEPARATED),
                               pc.match_substring_regex(trimmed, _LANDLINE_SEPARATED)), False)
    digits = pc.replace_substring_regex(pc.replace_substring_regex(trimmed, _SEPARATOR, ""), r"^(?:\+|00)86", "")
    fixed = pc.if_else(intl, digits, pa.scalar(None, pa.string()))
    slow = np.flatnonzero(~np.asarray(intl.to_numpy(zero_copy_only=False), bool))
    if len(slow):
        # The rest one by one through ``normalize``'s rules, each distinct value once.
        enc = rest.take(pa.array(slow)).dictionary_encode()
        uniq = [None if v is None else _normal_of(v) for v in enc.dictionary.to_pylist()]
        slow_fixed = pc.take(pa.array(uniq, pa.string()), enc.indices)
        fixed = pc.replace_with_mask(fixed, pa.array(~np.asarray(intl.to_numpy(zero_copy_only=False), bool)),
                                     slow_fixed)
    valid = fast.copy()
    valid[others] = pc.is_valid(fixed).to_numpy(zero_copy_only=False)
    return pc.replace_with_mask(s, pa.array(~fast), fixed), valid


def key(number: str) -> int:
    """Key of one normalised number (or prefix)."""
    k = 0
    for i, ch in enumerate(number):
        k += (ord(ch) - 47) * 11 ** (MAX_DIGITS - 1 - i)
    return k


def keys_of(arr: pa.Array) -> np.ndarray:
    """Keys of a string array of normalised numbers; nulls get key 0
    (which matches no prefix and no number)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = pc.cast(arr, pa.string())
    n = len(arr)
    out = np.zeros(n, np.int64)
    if n == 0:
        return out
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    offsets, data = string_buffers(arr)
    from .kernels import prefix  # here, not at import: the catalog uses normalize() without kernels

    prefix.encode_strings(offsets, data, out)
    return out


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array's buffers as NumPy views (data never empty)."""
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], np.int32, count=n + 1, offset=arr.offset * 4)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
    if len(data) == 0:
        data = np.zeros(1, np.uint8)
    return np.ascontiguousarray(offsets), data


def validity_bits(arr: pa.Array) -> np.ndarray:
    """An Arrow array's validity bitmap as uint8 (bit ``arr.offset`` is its
    first cell), or an empty array when it has no nulls: what the kernels
    take to tell nulls without a compute pass."""
    buf = arr.buffers()[0]
    return np.frombuffer(buf, np.uint8) if buf is not None and arr.null_count else np.zeros(0, np.uint8)


class Cells(NamedTuple):
    """What one pass over a string column's buffers tells (``number_cells``),
    each an array of the column's length: ``plain`` (bool), a number in normal
    shape written as ASCII digits only; ``present`` (bool), not null and not
    empty; ``is_400`` (bool), plain and ``400`` + 7 digits; ``keys`` (int64),
    the key of each plain cell, 0 elsewhere."""

    plain: np.ndarray
    present: np.ndarray
    is_400: np.ndarray
    keys: np.ndarray


def number_cells(arr: pa.Array) -> Cells:
    """``Cells`` of a string array in one compiled pass over its buffers
    (``kernels.prefix.number_cells``): no compute kernel, no copy."""
    n = len(arr)
    if n == 0:
        empty = np.zeros(0, bool)
        return Cells(empty, empty, empty, np.zeros(0, np.int64))
    offsets, data = string_buffers(arr)
    flags = np.empty((3, n), np.uint8)
    keys = np.empty(n, np.int64)
    from .kernels import prefix

    prefix.number_cells(offsets, data, validity_bits(arr), arr.offset, flags[0], flags[1], flags[2], keys)
    present, plain, is_400 = flags.view(bool)
    return Cells(plain, present, is_400, keys)


class Separated(NamedTuple):
    """What ``separated_cells`` tells of some cells of a string column, each
    array one entry per cell asked about: ``ok`` (uint8) 0 not one of the
    separated forms, 1 one of them, 2 one of them holding a dot; ``keys``
    (int64) the key of its normal form (0 where ``ok`` is 0); ``is_400``
    (bool); and ``normal``, a string array of the normal forms of the cells
    with ``ok > 0``, in order."""

    ok: np.ndarray
    keys: np.ndarray
    is_400: np.ndarray
    normal: pa.Array


def separated_cells(arr: pa.Array, rows: np.ndarray) -> Separated:
    """``Separated`` of the cells ``rows`` of a string array, in one compiled
    pass (``kernels.prefix.separated_numbers``): the international form of a
    mobile or 400/800 number with separators (``_INTL_SEPARATED``) and a
    landline with a separator after its area code (``_LANDLINE_SEPARATED``),
    the two irregular forms that make up nearly all of an export's odd
    cells; the same rule as ``normalize_array``'s vectorised path, without
    its dozen compute passes. A cell with anything but ASCII digits,
    separators and ``+`` (tabs, full-width digits) is left for that path."""
    from .kernels import prefix

    rows = np.ascontiguousarray(rows, np.int64)
    k = len(rows)
    offsets, data = string_buffers(arr)
    ok = np.empty(k, np.uint8)
    keys = np.empty(k, np.int64)
    is_400 = np.empty(k, np.uint8)
    out_offsets = np.empty(k + 1, np.int32)
    out_data = np.empty(max(1, int((offsets[rows + 1] - offsets[rows]).sum())), np.uint8)
    count = prefix.separated_numbers(offsets, data, rows, ok, out_offsets, out_data, keys, is_400)
    normal = pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(out_offsets[:count + 1]),
                                                        pa.py_buffer(out_data)])
    return Separated(ok, keys, is_400.view(bool), normal)


def build_prefix_table(prefixes: list[str], values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint-interval table for longest-prefix match (starts, values)."""
    if not prefixes:
        return np.zeros(1, np.int64), np.full(1, -1, np.int32)
    arr = pa.array(prefixes, pa.string())
    keys = keys_of(arr)
    lengths = pc.utf8_length(arr).to_numpy().astype(np.int32)
    vals = np.asarray(values, np.int32)
    order = np.argsort(keys, kind="stable")
    keys, lengths, vals = keys[order], lengths[order], vals[order]
    if len(keys) > 1 and (keys[1:] == keys[:-1]).any():
        raise ValueError("duplicate prefixes")
    from .kernels import prefix

    return prefix.flatten(keys, lengths, vals)


def lookup(starts: np.ndarray, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    from .kernels import prefix

    return prefix.lookup(starts, values, np.ascontiguousarray(keys, np.int64))
