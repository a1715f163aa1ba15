# cython: freethreading_compatible=True
"""Number keys and prefix tables (see prefix.pxd for the key invariant)."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, int32_t, uint8_t

cnp.import_array()

cdef int64_t POW11[MAX_DIGITS + 1]
POW11[0] = 1
for _i in range(1, MAX_DIGITS + 1):
    POW11[_i] = POW11[_i - 1] * 11


def pow11(int n):
    return POW11[n]


def encode_strings(const int32_t[::1] offsets, const uint8_t[::1] data, int64_t[::1] out):
    """Keys of the digit strings of an Arrow string array's buffers.

    Input must already be validated as 1..MAX_DIGITS ASCII digits (the edge
    does that); a null or invalid slot must be masked by the caller.
    ``offsets`` has one more entry than ``out``.
    """
    cdef Py_ssize_t i, j, n = out.shape[0]
    cdef int32_t a, b
    cdef int64_t key
    with nogil:
        for i in range(n):
            a = offsets[i]
            b = offsets[i + 1]
            key = 0
            if 0 < b - a <= MAX_DIGITS:
                for j in range(a, b):
                    key += (<int64_t>(data[j] - 48) + 1) * POW11[MAX_DIGITS - 1 - (j - a)]
            out[i] = key


def number_cells(const int32_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] bitmap,
                 Py_ssize_t bit_offset, uint8_t[::1] present, uint8_t[::1] plain, uint8_t[::1] is_400,
                 int64_t[::1] keys):
    """One pass over an Arrow string array's buffers: for each cell i,
    ``present[i]`` not null and not empty; ``plain[i]`` a number in normal
    shape written plainly: ASCII digits only, and ``0`` then not ``0`` with
    10-12 digits, ``1`` with 11, ``400``/``800`` with 10 (``rating_core.cdr``'s
    fast path; tests/test_numbers.py checks it against the same rule in
    pyarrow compute); ``is_400[i]`` plain and ``400`` + 7 digits; ``keys[i]``
    the key of a plain cell, 0 elsewhere. ``bitmap``: the array's validity
    bitmap (empty: no nulls) read from bit ``bit_offset``; ``offsets`` has one
    more entry than the outputs.
    """
    cdef Py_ssize_t i, j, n = present.shape[0]
    cdef bint nulls = bitmap.shape[0] > 0
    cdef Py_ssize_t bit
    cdef int32_t a, b, length
    cdef uint8_t c0, ok, here
    cdef int64_t key
    with nogil:
        for i in range(n):
            a = offsets[i]
            b = offsets[i + 1]
            length = b - a
            here = length > 0
            if nulls and here:
                bit = bit_offset + i
                here = (bitmap[bit >> 3] >> (bit & 7)) & 1
            ok = 0
            c0 = 0
            if here and 10 <= length <= 12:
                c0 = data[a]
                if c0 == 48:  # '0': a landline with its trunk zero, not '00'
                    ok = data[a + 1] != 48
                elif c0 == 49:  # '1': a mobile
                    ok = length == 11
                elif c0 == 52 or c0 == 56:  # '400' / '800'
                    ok = length == 10 and data[a + 1] == 48 and data[a + 2] == 48
            key = 0
            if ok:
                for j in range(a, b):
                    if data[j] < 48 or data[j] > 57:
                        ok = 0
                        break
                    key += (<int64_t>(data[j] - 48) + 1) * POW11[MAX_DIGITS - 1 - (j - a)]
            present[i] = here
            plain[i] = ok
            is_400[i] = ok and length == 10 and c0 == 52
            keys[i] = key if ok else 0


def flatten(const int64_t[::1] keys, const int32_t[::1] lengths, const int32_t[::1] values):
    """Disjoint intervals from prefix ranges.

    ``keys`` must be ascending and unique, ``lengths`` the prefix lengths.
    Returns ``(starts, values)``: starts ascending with starts[0] == 0, each
    interval valued by its longest covering prefix, -1 where none covers.
    """
    cdef Py_ssize_t n = keys.shape[0], i, top = -1, w = 0
    # Ranges of prefixes that contain the current one (a containment chain).
    cdef int64_t[::1] stack_end = np.empty(MAX_DIGITS + 1, np.int64)
    cdef int32_t[::1] stack_val = np.empty(MAX_DIGITS + 1, np.int32)
    cdef int64_t[::1] out_start = np.empty(2 * n + 1, np.int64)
    cdef int32_t[::1] out_val = np.empty(2 * n + 1, np.int32)
    cdef int64_t start, end, resume

    out_start[0] = 0
    out_val[0] = -1
    w = 1
    with nogil:
        for i in range(n + 1):
            if i < n:
                start = keys[i]
                end = start + POW11[MAX_DIGITS - lengths[i]] - 1
            else:
                start = POW11[MAX_DIGITS]  # past every key: close all
                end = start
            # Close the ranges that end before this one starts.
            while top >= 0 and stack_end[top] < start:
                resume = stack_end[top] + 1
                top -= 1
                if w > 0 and out_start[w - 1] == resume:
                    w -= 1
                out_start[w] = resume
                out_val[w] = stack_val[top] if top >= 0 else -1
                w += 1
            if i == n:
                break
            if out_start[w - 1] == start:
                w -= 1
            out_start[w] = start
            out_val[w] = values[i]
            w += 1
            top += 1
            stack_end[top] = end
            stack_val[top] = values[i]
    # Drop the final boundary at 11**MAX_DIGITS (never reached by a key) and
    # merge neighbours with equal values.
    starts = np.asarray(out_start[:w])
    vals = np.asarray(out_val[:w])
    keep = starts < POW11[MAX_DIGITS]
    starts, vals = starts[keep], vals[keep]
    if len(vals) > 1:
        same = np.empty(len(vals), bool)
        same[0] = False
        same[1:] = vals[1:] == vals[:-1]
        starts, vals = starts[~same], vals[~same]
    return np.ascontiguousarray(starts), np.ascontiguousarray(vals)


def lookup(const int64_t[::1] starts, const int32_t[::1] values, const int64_t[::1] keys):
    """Longest-prefix values for many keys (for the Python API and tests)."""
    cdef Py_ssize_t i, n = keys.shape[0]
    out = np.empty(n, np.int32)
    cdef int32_t[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = longest_prefix(starts, values, keys[i])
    return out
