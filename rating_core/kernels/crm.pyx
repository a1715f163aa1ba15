# cython: freethreading_compatible=True
"""Caller CRM records merged in one pass (``rating_core.billing.crm._merge``).

A ``crm`` record (``ledger.formats``) is 8 little-endian int64 counts
(``CRM_COUNTS``) followed by a msgspec JSON tail that always starts
``{"d":TOKEN,"c":TOKEN,"p":TOKEN,"k":TOKEN,"t":`` (TOKEN: ``null`` or a
JSON string). ``merge`` builds the new records of a batch's callers from
the stored ones and the batch's per-caller aggregates, copying the stored
tail's tokens as bytes, never decoding them. A row it cannot build exactly
as msgspec would (a new name JSON must escape, a stored tail of another
shape) is left to the caller (``slow``), which decodes and encodes it.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memcmp, memcpy

import numpy as np

cdef enum:
    N_COUNTS = 8
    HEAD = 64  # N_COUNTS * 8 bytes
    # indexes into the counts (formats.CRM_COUNTS)
    FIRST = 0
    LAST = 1
    CALLS = 2
    ANSWERED = 3
    TALK = 4
    LAST_ANSWERED = 5
    LAST_MISSED = 6
    # rows of ``agg``
    A_LO = 0
    A_HI = 1
    A_COUNT = 2
    A_ANSWERED = 3
    A_TALK = 4
    A_MISSED_AT = 5
    A_ANSWERED_AT = 6
    N_AGG = 7

cdef const char* NEW_REST = b'"t":[],"n":[]}'
cdef Py_ssize_t NEW_REST_LEN = 14
# The key written before each name token: index 0 the head's, then city, province, carrier.
cdef const char* LABEL[4]
LABEL[0] = b'{"d":'
LABEL[1] = b',"c":'
LABEL[2] = b',"p":'
LABEL[3] = b',"k":'


cdef inline Py_ssize_t _token(const char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """End (exclusive) of the JSON token ``null`` or ``"..."`` at ``s[i]``; -1 if none."""
    if i + 4 <= n and memcmp(s + i, b"null", 4) == 0:
        return i + 4
    if i >= n or s[i] != b'"':
        return -1
    i += 1
    while i < n:
        if s[i] == b'\\':
            i += 2
        elif s[i] == b'"':
            return i + 1
        else:
            i += 1
    return -1


cdef inline bint _expect(const char* s, Py_ssize_t i, Py_ssize_t n, const char* lit, Py_ssize_t k) noexcept nogil:
    return i + k <= n and memcmp(s + i, lit, k) == 0


cdef bint _parse(const char* s, Py_ssize_t n, Py_ssize_t* cut) noexcept nogil:
    """Split a stored tail: cut[0] end of the head ``{"d":TOKEN``, cut[1..2]
    the city token, cut[3..4] province, cut[5..6] carrier, cut[7] the start of
    the rest (``"t":...``). False when the tail has another shape."""
    cdef Py_ssize_t i
    cdef int f
    if not _expect(s, 0, n, LABEL[0], 5):
        return False
    i = _token(s, 5, n)
    if i < 0:
        return False
    cut[0] = i
    for f in range(1, 4):
        if not _expect(s, i, n, LABEL[f], 5):
            return False
        cut[2 * f - 1] = i + 5
        i = _token(s, i + 5, n)
        if i < 0:
            return False
        cut[2 * f] = i
    if not _expect(s, i, n, b',"t":', 5):
        return False
    cut[7] = i + 1
    return True


cdef inline bint _needs_escape(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    """A character JSON must escape (msgspec escapes exactly these)."""
    cdef Py_ssize_t j
    for j in range(n):
        if s[j] < 0x20 or s[j] == 34 or s[j] == 92:
            return True
    return False


cdef inline char* _put(char* out, const char* s, Py_ssize_t n) noexcept nogil:
    if n > 0:
        memcpy(out, s, n)
    return out + n


def merge(list keys, list found, const int64_t[:, ::1] agg, const int32_t[::1] offsets,
          const uint8_t[::1] data, const uint8_t[::1] valid):
    """The new records of ``n = len(keys)`` callers.

    keys: the record keys (bytes), sorted and distinct. found: the stored
    (key, record) pairs among them, in key order (``Cursor.getmulti``).
    agg: int64 (7, n): per caller the batch's first start, last start,
    calls, answered calls, talk seconds, latest missed start, latest
    answered start (epoch ms; 0 none). offsets / data / valid: one Arrow
    string array's buffers (offset 0) holding 4 n names: the destination
    of the latest answered call, then the latest known city, province and
    carrier (null: none in the batch).

    Returns (values, slow, counts, stored_at): values[i] the new record
    (bytes; None where ``slow[i]``), counts int64 (n, 8) the new counts,
    stored_at int64 (n) the index in ``found`` (-1: a new caller). Raises
    ValueError for a stored record shorter than its counts."""
    cdef Py_ssize_t n = len(keys), m = len(found), i, j = 0, f, size, tail_n = 0
    cdef int64_t[:, ::1] counts = np.zeros((n, N_COUNTS), np.int64)
    cdef int64_t[::1] at = np.full(n, -1, np.int64)
    cdef uint8_t[::1] slow = np.zeros(n, np.uint8)
    cdef list values = [None] * n
    cdef bytes key, raw, stored_key, value
    cdef const char* tail = NULL
    cdef Py_ssize_t cut[8]
    cdef bint hit, takes
    cdef int64_t* c
    cdef const uint8_t* name[4]
    cdef Py_ssize_t name_n[4]
    cdef bint known[4]
    cdef char* out
    if agg.shape[0] != N_AGG or agg.shape[1] != n or offsets.shape[0] < 4 * n + 1 or valid.shape[0] < 4 * n:
        raise ValueError("merge: agg, offsets and valid must cover 4 names per key")
    for i in range(n):
        key = keys[i]
        c = &counts[i, 0]
        raw = None
        hit = False
        if j < m:
            stored_key = found[j][0]
            if PyBytes_GET_SIZE(stored_key) == PyBytes_GET_SIZE(key) and memcmp(
                    PyBytes_AS_STRING(stored_key), PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key)) == 0:
                raw = found[j][1]
                at[i] = j
                j += 1
                hit = True
        if hit:
            if PyBytes_GET_SIZE(raw) < HEAD:
                raise ValueError("crm: a stored record shorter than its counts")
            memcpy(c, PyBytes_AS_STRING(raw), HEAD)  # little-endian int64, as stored
            c[FIRST] = min(c[FIRST], agg[A_LO, i]) if c[CALLS] > 0 else agg[A_LO, i]
        else:
            c[FIRST] = agg[A_LO, i]
        c[LAST] = max(c[LAST], agg[A_HI, i])
        c[CALLS] += agg[A_COUNT, i]
        c[ANSWERED] += agg[A_ANSWERED, i]
        c[TALK] += agg[A_TALK, i]
        c[LAST_MISSED] = max(c[LAST_MISSED], agg[A_MISSED_AT, i])
        takes = agg[A_ANSWERED, i] > 0 and agg[A_ANSWERED_AT, i] >= c[LAST_ANSWERED]
        if takes:
            c[LAST_ANSWERED] = agg[A_ANSWERED_AT, i]
        # The names this batch sets: the destination only when it takes the answer.
        for f in range(4):
            known[f] = valid[f * n + i] != 0 and (f > 0 or takes)
            name_n[f] = offsets[f * n + i + 1] - offsets[f * n + i] if known[f] else 0
            name[f] = &data[offsets[f * n + i]] if name_n[f] > 0 else NULL
            if name_n[f] > 0 and _needs_escape(name[f], name_n[f]):
                slow[i] = 1
        if hit:
            tail = PyBytes_AS_STRING(raw) + HEAD
            tail_n = PyBytes_GET_SIZE(raw) - HEAD
            if not _parse(tail, tail_n, cut):
                slow[i] = 1
        if slow[i]:
            continue
        # size: counts, head, the three names, the rest
        size = HEAD
        if takes or not hit:
            size += 5 + (name_n[0] + 2 if known[0] else 4)
        else:
            size += cut[0]
        for f in range(1, 4):
            size += 5
            if known[f]:
                size += name_n[f] + 2
            elif hit:
                size += cut[2 * f] - cut[2 * f - 1]
            else:
                size += 4
        size += 1 + (tail_n - cut[7] if hit else NEW_REST_LEN)
        value = PyBytes_FromStringAndSize(NULL, size)
        out = PyBytes_AS_STRING(value)
        out = _put(out, <const char*>c, HEAD)
        if takes or not hit:
            out = _put(out, LABEL[0], 5)
            if known[0]:
                out = _put(out, b'"', 1)
                out = _put(out, <const char*>name[0], name_n[0])
                out = _put(out, b'"', 1)
            else:
                out = _put(out, b"null", 4)
        else:
            out = _put(out, tail, cut[0])
        for f in range(1, 4):
            out = _put(out, LABEL[f], 5)
            if known[f]:
                out = _put(out, b'"', 1)
                out = _put(out, <const char*>name[f], name_n[f])
                out = _put(out, b'"', 1)
            elif hit:
                out = _put(out, tail + cut[2 * f - 1], cut[2 * f] - cut[2 * f - 1])
            else:
                out = _put(out, b"null", 4)
        out = _put(out, b",", 1)
        if hit:
            out = _put(out, tail + cut[7], tail_n - cut[7])
        else:
            out = _put(out, NEW_REST, NEW_REST_LEN)
        values[i] = value
    return values, np.asarray(slow).astype(bool), np.asarray(counts), np.asarray(at)


def split_fixed(const uint8_t[::1] data, Py_ssize_t size):
    """``data`` cut into ``len(data) // size`` bytes objects of ``size`` bytes
    (fixed-size records to hand to ``Cursor.putmulti``)."""
    cdef Py_ssize_t i, n = data.shape[0] // size if size > 0 else 0
    cdef list out = [None] * n
    for i in range(n):
        out[i] = PyBytes_FromStringAndSize(<const char*>&data[i * size], size)
    return out
