"""Phone numbers at the edge: normalise once, then carry integer keys.

Normal form is the national digit string: mobiles ``13812345678``,
landlines with their trunk zero ``075512345678``, service numbers
``4001234567``. Spaces, dashes, dots and parentheses are dropped; ``+86``
and ``0086`` are removed, and a landline written internationally gets its
trunk zero back (``+86 755 ...`` -> ``0755...``).

Keys: see ``rating_core/kernels/prefix.pxd`` (base 11, order-preserving,
exact longest-prefix match over disjoint intervals).
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InvalidInput

MAX_DIGITS = 18
MIN_DIGITS = 3

_JUNK = r"[\s\-().]"
_INTL_KEEP = r"^(?:\+|00)86(1[3-9]\d{9}|[48]00\d{7})$"  # mobile, 400/800
_INTL_TRUNK = r"^(?:\+|00)86(\d+)$"  # landline: restore the trunk zero
_VALID = rf"^\d{{{MIN_DIGITS},{MAX_DIGITS}}}$"

_junk_re = re.compile(_JUNK)
_keep_re = re.compile(_INTL_KEEP)
_trunk_re = re.compile(_INTL_TRUNK)
_valid_re = re.compile(_VALID)


def normalize(raw: str | None, field: str = "number") -> str:
    """One number to normal form, or InvalidInput naming ``field``."""
    if raw is None:
        raise InvalidInput(field, "missing")
    s = _junk_re.sub("", str(raw))
    s = _keep_re.sub(r"\1", s)
    s = _trunk_re.sub(r"0\1", s)
    if not _valid_re.match(s):
        raise InvalidInput(field, f"{raw!r} is not a phone number ({MIN_DIGITS}-{MAX_DIGITS} digits after normalising)")
    return s


def normalize_array(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Vectorised ``normalize``: (normal strings, valid mask). Invalid and
    null slots are null in the result and False in the mask."""
    s = pc.cast(arr, pa.string())
    s = pc.replace_substring_regex(s, _JUNK, "")
    s = pc.replace_substring_regex(s, _INTL_KEEP, r"\1")
    s = pc.replace_substring_regex(s, _INTL_TRUNK, r"0\1")
    valid = pc.fill_null(pc.match_substring_regex(s, _VALID), False)
    if isinstance(s, pa.ChunkedArray):
        s = s.combine_chunks()
    valid_np = valid.to_numpy(zero_copy_only=False)
    if isinstance(valid, pa.ChunkedArray):
        valid_np = np.asarray(valid_np, dtype=bool)
    return pc.if_else(valid, s, pa.scalar(None, pa.string())), valid_np


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
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], np.int32, count=n + 1, offset=arr.offset * 4)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
    if len(data) == 0:
        data = np.zeros(1, np.uint8)
    from .kernels import prefix  # here, not at import: the catalog uses normalize() without kernels

    prefix.encode_strings(np.ascontiguousarray(offsets), data, out)
    return out


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
