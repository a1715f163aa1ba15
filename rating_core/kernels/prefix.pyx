# cython: freethreading_compatible=True
"""Number keys and prefix tables (see prefix.pxd for the key invariant)."""
import numpy as np
cimport numpy as cnp
import sys

from libc.stdint cimport int64_t, int32_t, uint8_t, uint64_t
from libc.string cimport memcpy

cnp.import_array()

cdef int64_t POW11[MAX_DIGITS + 1]
POW11[0] = 1
for _i in range(1, MAX_DIGITS + 1):
    POW11[_i] = POW11[_i - 1] * 11


# ONES11[m] = sum(11 ** (MAX_DIGITS - 1 - j) for j < m): what the "+ 1" of
# each of a key's first m digits adds.
cdef int64_t ONES11[MAX_DIGITS + 1]
ONES11[0] = 0
for _i in range(1, MAX_DIGITS + 1):
    ONES11[_i] = ONES11[_i - 1] + POW11[MAX_DIGITS - _i]
cdef bint LITTLE_ENDIAN = sys.byteorder == "little"


cdef inline bint eight_digits(uint64_t x) noexcept nogil:
    # Every byte of x in '0'..'9'. A byte below '0' sets its top bit in
    # x - 0x30.., one above '9' in x + 0x46.. (or, from 0xBA up, in x - 0x30..);
    # carries and borrows start only at a byte that is not a digit, so the
    # lowest such byte is always flagged.
    return (((x - <uint64_t>0x3030303030303030) | (x + <uint64_t>0x4646464646464646))
            & <uint64_t>0x8080808080808080) == 0


cdef inline int64_t base11_of_8(uint64_t x) noexcept nogil:
    # The 8 digits of x (first digit in the low byte) read in base 11:
    # pairs, then quads, then the whole, each step one multiply.
    x -= <uint64_t>0x3030303030303030
    x = ((x * <uint64_t>(1 + (11 << 8))) >> 8) & <uint64_t>0x00FF00FF00FF00FF
    x = ((x * <uint64_t>(1 + (121 << 16))) >> 16) & <uint64_t>0x0000FFFF0000FFFF
    return <int64_t>((x * <uint64_t>(1 + (<uint64_t>14641 << 32))) >> 32)


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
    cdef int64_t key, value
    cdef uint64_t word
    cdef bint little_endian = LITTLE_ENDIAN
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
                # The first 8 bytes at once (plain cells have 10-12): all
                # digits, and their base-11 value, by SWAR arithmetic on one
                # little-endian word; then the 2-4 bytes after them.
                memcpy(&word, &data[a], 8)
                if little_endian and eight_digits(word):
                    value = base11_of_8(word)
                    for j in range(a + 8, b):
                        if data[j] < 48 or data[j] > 57:
                            ok = 0
                            break
                        value = value * 11 + (data[j] - 48)
                    # sum((d + 1) * 11**(17 - j)) = value * 11**(18 - length) + sum(11**(17 - j))
                    key = value * POW11[MAX_DIGITS - length] + ONES11[length]
                else:
                    for j in range(a, b):
                        if data[j] < 48 or data[j] > 57:
                            ok = 0
                            break
                        key += (<int64_t>(data[j] - 48) + 1) * POW11[MAX_DIGITS - 1 - (j - a)]
            present[i] = here
            plain[i] = ok
            is_400[i] = ok and length == 10 and c0 == 52
            keys[i] = key if ok else 0



cdef inline bint is_digit(uint8_t c) noexcept nogil:
    return 48 <= c <= 57


cdef inline bint separator(uint8_t c) noexcept nogil:
    # numbers._SEPARATOR: space, dash, parentheses, dot
    return c == 32 or c == 45 or c == 40 or c == 41 or c == 46


def separated_numbers(const int32_t[::1] offsets, const uint8_t[::1] data, const int64_t[::1] rows,
                      uint8_t[::1] ok, int32_t[::1] out_offsets, uint8_t[::1] out_data, int64_t[::1] keys,
                      uint8_t[::1] is_400):
    """The two common irregular forms of a phone number, judged in one pass
    over the cells ``rows`` of an Arrow string array's buffers, as
    ``numbers.normalize_array``'s vectorised path judges them with RE2
    (tests/test_numbers.py checks it against that path):

    - ``numbers._INTL_SEPARATED``: ``+86`` or ``0086``, then a mobile
      (``1[3-9]`` + 9 digits) or a 400/800 number (``[48]00`` + 7 digits),
      separators (space, dash, parentheses, dot) anywhere after ``86`` but
      not last; normal form: the digits after ``86``;
    - ``numbers._LANDLINE_SEPARATED``: ``0`` + an area code's first two
      digits (``[2367]d``, ``4[1-9]``, ``5d``, ``8[1-9]``, ``9[0-46-9]``), an
      optional third, a space or dash, then 3-4 digits, an optional space or
      dash, 4 digits; normal form: the digits.

    Only spaces are trimmed, and a cell holding any byte but digits,
    separators and ``+`` is left to the regex path (tabs, full-width digits,
    letters...). For each k: ``ok[k]`` 0 (not one of the forms), 1 (one of
    them), 2 (one of them and it holds a dot: the caller still asks whether a
    spreadsheet wrote it); ``keys[k]`` the key of its normal form, 0 where
    ``ok[k]`` is 0; ``is_400[k]`` its normal form is 400 + 7 digits. The
    normal forms of the cells with ``ok[k] > 0``, in order, are written as an
    Arrow string array's buffers into ``out_offsets`` / ``out_data`` (sized
    by the caller: ``len(rows) + 1`` offsets, at least the cells' bytes).
    Returns how many cells are one of the forms."""
    cdef Py_ssize_t k, n = rows.shape[0], count = 0, j, w = 0, start, r, g1, g2, i
    cdef int32_t a, b
    cdef uint8_t c, c1, c2, dot, fail
    cdef int64_t key
    cdef int nd
    if ok.shape[0] != n or keys.shape[0] != n or is_400.shape[0] != n or out_offsets.shape[0] != n + 1:
        raise ValueError("separated_numbers: arrays of different lengths")
    for k in range(n):
        if not 0 <= rows[k] < offsets.shape[0] - 1:
            raise ValueError("separated_numbers: a row outside the array")
        if offsets[rows[k] + 1] - offsets[rows[k]] > out_data.shape[0]:
            raise ValueError("separated_numbers: out_data too small")
    with nogil:
        out_offsets[0] = 0
        for k in range(n):
            ok[k] = 0
            keys[k] = 0
            is_400[k] = 0
            i = rows[k]
            a = offsets[i]
            b = offsets[i + 1]
            while a < b and data[a] == 32:
                a += 1
            while b > a and data[b - 1] == 32:
                b -= 1
            if b - a < 10 or not is_digit(data[b - 1]) or w + (b - a) > out_data.shape[0]:
                continue
            dot = 0
            fail = 0
            for j in range(a, b):
                c = data[j]
                if c == 46:
                    dot = 1
                elif not (is_digit(c) or separator(c) or c == 43):
                    fail = 1
                    break
            if fail:
                continue
            nd = 0
            start = -1
            if data[a] == 43:  # '+'
                start = a + 1
            elif data[a] == 48 and data[a + 1] == 48:  # '00'
                start = a + 2
            if start >= 0:  # international: 86, then digits and separators only
                if start + 2 > b or data[start] != 56 or data[start + 1] != 54:
                    continue
                for j in range(start + 2, b):
                    c = data[j]
                    if is_digit(c):
                        if nd == 11:
                            fail = 1
                            break
                        out_data[w + nd] = c
                        nd += 1
                    elif not separator(c):
                        fail = 1
                        break
                if fail:
                    continue
                c1 = out_data[w]
                if nd == 11:
                    if not (c1 == 49 and 51 <= out_data[w + 1] <= 57):
                        continue
                elif nd == 10:
                    if not ((c1 == 52 or c1 == 56) and out_data[w + 1] == 48 and out_data[w + 2] == 48):
                        continue
                else:
                    continue
            else:  # a landline: 0, area code, separator, 3-4 digits, [separator], 4 digits
                if data[a] != 48:
                    continue
                c1 = data[a + 1]
                c2 = data[a + 2]
                if not (is_digit(c1) and is_digit(c2)):
                    continue
                if not (c1 == 50 or c1 == 51 or c1 == 54 or c1 == 55 or c1 == 53
                        or ((c1 == 52 or c1 == 56) and c2 != 48) or (c1 == 57 and c2 != 53)):
                    continue
                r = 3
                if is_digit(data[a + 3]):
                    r = 4
                c = data[a + r]
                if c != 32 and c != 45:
                    continue
                # the rest: g1 digits, at most one space or dash, g2 digits
                g1 = 0
                g2 = -1
                for j in range(a + r + 1, b):
                    c = data[j]
                    if is_digit(c):
                        if g2 < 0:
                            g1 += 1
                        else:
                            g2 += 1
                    elif (c == 32 or c == 45) and g2 < 0 and g1 > 0:
                        g2 = 0
                    else:
                        fail = 1
                        break
                if fail:
                    continue
                if g2 < 0:
                    if not (g1 == 7 or g1 == 8):
                        continue
                elif not ((g1 == 3 or g1 == 4) and g2 == 4):
                    continue
                for j in range(a, b):
                    if is_digit(data[j]):
                        out_data[w + nd] = data[j]
                        nd += 1
            key = 0
            for j in range(nd):
                key += (<int64_t>(out_data[w + j] - 48) + 1) * POW11[MAX_DIGITS - 1 - j]
            keys[k] = key
            is_400[k] = nd == 10 and out_data[w] == 52
            ok[k] = 2 if dot else 1
            w += nd
            count += 1
            out_offsets[count] = <int32_t>w
    return count


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


def exact_rows(const int64_t[::1] table, const int64_t[::1] keys, int64_t[::1] out):
    """For each key, its index in ``table`` (ascending, distinct), or -1
    where the table does not hold it: one binary search a key, the last
    answer reused for a run of equal keys (a batch's calls to one 400
    number). ``numpy.searchsorted`` with the equality test after it gives
    the same, at about three times the cost on a batch of CDRs."""
    cdef Py_ssize_t i, lo, hi, mid, n = keys.shape[0], m = table.shape[0]
    cdef int64_t key, last = 0
    cdef int64_t found = -1
    cdef bint have = False
    if out.shape[0] != n:
        raise ValueError("exact_rows: out of the wrong length")
    with nogil:
        for i in range(n):
            key = keys[i]
            if not (have and key == last):
                lo = 0
                hi = m
                while lo < hi:  # the first entry >= key
                    mid = (lo + hi) >> 1
                    if table[mid] < key:
                        lo = mid + 1
                    else:
                        hi = mid
                found = lo if lo < m and table[lo] == key else -1
                last = key
                have = True
            out[i] = found


def lookup(const int64_t[::1] starts, const int32_t[::1] values, const int64_t[::1] keys):
    """Longest-prefix values for many keys (for the Python API and tests)."""
    cdef Py_ssize_t i, n = keys.shape[0]
    out = np.empty(n, np.int32)
    cdef int32_t[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = longest_prefix(starts, values, keys[i])
    return out
