# cython: freethreading_compatible=True
"""Caller CRM records merged in one pass (``rating_core.billing.crm._merge``),
from a batch grouped per caller in one pass (``group``).

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
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcmp, memcpy

import numpy as np

_KEYED = np.dtype([("p0", "<u8"), ("p1", "<u8"), ("p2", "<u8"), ("p3", "<u8"), ("row", "<i8")])

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
    # ``group``'s per-key row: the aggregates, 4 latest name rows, whether a start was seen
    HAS_START = 11
    W = 12

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


cdef inline uint64_t _hash(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    """FNV-1a over the key's bytes, then a final mix (the table's slot is the low bits)."""
    cdef uint64_t h = 14695981039346656037ULL
    cdef Py_ssize_t j
    for j in range(n):
        h = (h ^ s[j]) * 1099511628211ULL
    h ^= h >> 33
    h *= 0xff51afd7ed558ccdULL
    h ^= h >> 33
    return h


cdef inline int _cmp(const int32_t* offsets, const uint8_t* data, int64_t a, int64_t b) noexcept nogil:
    """memcmp order of keys ``a`` and ``b`` (a shorter prefix first), as LMDB and bytes sort them."""
    cdef Py_ssize_t na = offsets[a + 1] - offsets[a], nb = offsets[b + 1] - offsets[b]
    cdef int c = memcmp(data + offsets[a], data + offsets[b], na if na < nb else nb) if (na and nb) else 0
    if c:
        return c
    return (na > nb) - (na < nb)


cdef struct _Keyed:
    # p0: the rank of the key's first ``skip`` bytes; p1..p3: the next 24
    # bytes, big-endian (zero-padded): integer order = byte order
    uint64_t p0, p1, p2, p3
    int64_t row


cdef inline uint64_t _be(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    """Up to 8 bytes of ``s`` as a big-endian integer, zero-padded on the right."""
    cdef uint64_t v = 0
    cdef Py_ssize_t j
    for j in range(8):
        v = (v << 8) | (s[j] if j < n else 0)
    return v


cdef inline bint _less(const _Keyed* a, const _Keyed* b, const int32_t* offsets, const uint8_t* data) noexcept nogil:
    if a.p0 != b.p0:
        return a.p0 < b.p0
    if a.p1 != b.p1:
        return a.p1 < b.p1
    if a.p2 != b.p2:
        return a.p2 < b.p2
    if a.p3 != b.p3:
        return a.p3 < b.p3
    return _cmp(offsets, data, a.row, b.row) < 0  # the same so far: the whole keys decide


cdef void _sort_keyed(_Keyed* items, _Keyed* tmp, Py_ssize_t n, const int32_t* offsets,
                      const uint8_t* data) noexcept nogil:
    """Bottom-up merge sort of ``items`` by key (``_less``); ``tmp`` has room for n."""
    cdef Py_ssize_t width = 1, lo, mid, hi, i, j, k
    cdef _Keyed* src = items
    cdef _Keyed* dst = tmp
    cdef _Keyed* swap
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if _less(&src[j], &src[i], offsets, data):
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            while i < mid:
                dst[k] = src[i]
                i += 1
                k += 1
            while j < hi:
                dst[k] = src[j]
                j += 1
                k += 1
            lo = hi
        swap = src
        src = dst
        dst = swap
        width *= 2
    if src != items:
        memcpy(items, src, n * sizeof(_Keyed))



cdef inline void _add(int64_t* a, Py_ssize_t i, const int64_t[::1] start, const uint8_t[::1] start_valid,
                      const uint8_t[::1] answered, const int64_t[::1] billable,
                      const uint8_t[:, ::1] known) noexcept nogil:
    """Call ``i`` added to its key's row ``a`` (W int64: the aggregates, the
    4 latest name rows, whether a start was seen); calls come in time order,
    so a name's latest row is the last one seen."""
    cdef int f
    if start_valid[i]:
        if not a[HAS_START] or start[i] < a[A_LO]:
            a[A_LO] = start[i]
        if not a[HAS_START] or start[i] > a[A_HI]:
            a[A_HI] = start[i]
        a[HAS_START] = 1
        a[A_COUNT] += 1
    if answered[i] == 1:
        a[A_ANSWERED] += 1
        a[A_TALK] += billable[i]
        if start_valid[i] and start[i] > a[A_ANSWERED_AT]:
            a[A_ANSWERED_AT] = start[i]
    elif answered[i] == 0:
        if start_valid[i] and start[i] > a[A_MISSED_AT]:
            a[A_MISSED_AT] = start[i]
    for f in range(4):
        if known[f, i]:
            a[N_AGG + f] = i


cdef inline void _reset(int64_t* a) noexcept nogil:
    cdef int f
    for f in range(W):
        a[f] = 0
    for f in range(4):
        a[N_AGG + f] = -1


cdef struct _Item:
    uint64_t key  # (rank, caller digits) in the order of the key's bytes
    int64_t row

_ITEM = np.dtype([("key", "<u8"), ("row", "<i8")])

cdef enum:
    RADIX_BITS = 11
    RADIX = 2048  # 1 << RADIX_BITS


def _group_digits(const int32_t[::1] offsets, const uint8_t[::1] data, const int64_t[::1] rank,
                  const int32_t[::1] skip, const int64_t[::1] rows, const int64_t[::1] start,
                  const uint8_t[::1] start_valid, const uint8_t[::1] answered, const int64_t[::1] billable,
                  const uint8_t[:, ::1] known):
    """``group`` when every key is (rank, then ASCII digits after ``skip``)
    and both fit one uint64 (the usual case: a caller number is digits):
    each call's key as rank << 4 D | its digits as nibbles (digit + 1; 0
    pads the shorter numbers on the right, so a prefix sorts first, as in
    byte order), D the longest caller's digits; a stable LSD radix sort of
    (key, row) in time order, then one pass over the runs of equal keys --
    no hash table, no comparison sort, every step sequential in memory.
    Returns None when a key does not fit (``group`` then hashes and sorts
    the keys' bytes)."""
    cdef Py_ssize_t m = rows.shape[0], r, i, j, d, lo, kn, digits = 0, g = 0, shift, total, cnt
    cdef const uint8_t* k
    cdef uint64_t code, max_rank = 0, rank_bits = 0
    cdef bint ok = True
    cdef const int32_t* off = &offsets[0]
    cdef const uint8_t* dat = &data[0] if data.shape[0] else NULL
    if m == 0:
        return None
    with nogil:
        for r in range(m):
            i = rows[r]
            kn = off[i + 1] - off[i] - skip[i]
            k = dat + off[i] + skip[i]
            if kn > 16 or rank[i] < 0:
                ok = False
                break
            for d in range(kn):
                if k[d] < 48 or k[d] > 57:
                    ok = False
                    break
            if not ok:
                break
            if kn > digits:
                digits = kn
            if <uint64_t>rank[i] > max_rank:
                max_rank = <uint64_t>rank[i]
        while rank_bits < 64 and (max_rank >> rank_bits) != 0:
            rank_bits += 1
    total = 4 * digits + rank_bits
    if not ok or total > 64:
        return None
    items_a = np.empty(m, _ITEM)
    items_b = np.empty(m, _ITEM)
    cdef _Item[::1] a_v = items_a
    cdef _Item[::1] b_v = items_b
    cdef _Item* src = &a_v[0]
    cdef _Item* dst = &b_v[0]
    cdef _Item* swap
    cdef Py_ssize_t count[RADIX]
    cdef Py_ssize_t pos
    with nogil:
        for r in range(m):
            i = rows[r]  # time order: the stable sort keeps it within a key
            kn = off[i + 1] - off[i] - skip[i]
            k = dat + off[i] + skip[i]
            code = 0
            for d in range(digits):
                code = (code << 4) | (<uint64_t>(k[d] - 47) if d < kn else 0)
            if 4 * digits < 64:
                code |= <uint64_t>rank[i] << (4 * digits)
            src[r].key = code
            src[r].row = i
        shift = 0
        while shift < total:
            for d in range(RADIX):
                count[d] = 0
            for r in range(m):
                count[(src[r].key >> shift) & (RADIX - 1)] += 1
            if count[(src[0].key >> shift) & (RADIX - 1)] != m:  # else every key has this digit
                pos = 0
                for d in range(RADIX):
                    cnt = count[d]
                    count[d] = pos
                    pos += cnt
                for r in range(m):
                    d = (src[r].key >> shift) & (RADIX - 1)
                    dst[count[d]] = src[r]
                    count[d] += 1
                swap = src
                src = dst
                dst = swap
            shift += RADIX_BITS
        for r in range(m):
            if r == 0 or src[r].key != src[r - 1].key:
                g += 1
    first = np.empty(g, np.int64)
    cdef int64_t[::1] first_v = first
    cdef int64_t[:, ::1] agg = np.empty((N_AGG, g), np.int64)
    cdef int64_t[:, ::1] last = np.empty((4, g), np.int64)
    cdef int64_t acc[W]
    cdef int f
    with nogil:
        lo = 0
        j = 0
        while lo < m:
            _reset(acc)
            first_v[j] = src[lo].row
            r = lo
            while r < m and src[r].key == src[lo].key:
                _add(acc, src[r].row, start, start_valid, answered, billable, known)
                r += 1
            for f in range(N_AGG):
                agg[f, j] = acc[f]
            for f in range(4):
                last[f, j] = acc[N_AGG + f]
            j += 1
            lo = r
    return first, np.asarray(agg), np.asarray(last)


def group(const int32_t[::1] offsets, const uint8_t[::1] data, const int64_t[::1] rank,
          const int32_t[::1] skip, const int64_t[::1] rows, const int64_t[::1] start, const uint8_t[::1] start_valid, const uint8_t[::1] answered,
          const int64_t[::1] billable, const uint8_t[:, ::1] known):
    """A batch of calls aggregated per caller key (what ``CRM.record``
    merges into the stored records): by a radix sort of the keys as
    integers when the callers are digits (``_group_digits``, the usual
    case), else by a hash on the keys' bytes, then the distinct keys sorted.

    rows: the m calls to group, as row numbers in time order (a call's
    columns need not be: "latest" is the later in ``rows``). offsets /
    data: one Arrow string or binary array's buffers (int32 offsets,
    offset 0) holding each row's record key (account NUL caller). rank,
    skip: the sort's shortcut, per row: keys whose first ``skip`` bytes
    differ must be in ``rank`` order (the caller's rank of the account
    part of the key, skip = its length + 1; zeros: no shortcut). start: int64 epoch ms, start_valid 1
    where known (an unknown start counts no call time). answered: 1 an
    agent answered, 0 missed, 2 unknown (neither answered nor missed).
    billable: int64 billable seconds (0 when unknown). known: uint8 (4, n),
    1 where the call sets the name: the destination (an answered call's),
    city, province, carrier.

    The other columns have one value per row (n rows).

    Returns (first, agg, last) for the g distinct keys sorted by their bytes
    (LMDB's order): first int64 (g) a row holding the key; agg int64 (7, g)
    the ``merge`` aggregates (first start, last start, calls with a start,
    answered, talk seconds, latest missed start, latest answered start;
    0 none); last int64 (4, g) the latest row setting each name (-1 none).
    Raises ValueError when the arrays disagree in length or a row is out
    of range."""
    cdef Py_ssize_t n = start.shape[0], m = rows.shape[0], i, r, f, cap = 16, g = 0, kn
    cdef uint64_t mask_, slot
    cdef int64_t gid
    if (offsets.shape[0] < n + 1 or rank.shape[0] != n or skip.shape[0] != n or start_valid.shape[0] != n or answered.shape[0] != n
            or billable.shape[0] != n or known.shape[0] != 4 or known.shape[1] != n):
        raise ValueError("group: every column needs one value per call")
    for i in range(m):
        if rows[i] < 0 or rows[i] >= n:
            raise ValueError("group: a row out of range")
    for i in range(n):
        if skip[i] < 0 or skip[i] > offsets[i + 1] - offsets[i]:
            raise ValueError("group: a skip beyond its key")
    if m >= (1 << 31):
        raise ValueError("group: at most 2**31 - 1 calls at once")
    fast = _group_digits(offsets, data, rank, skip, rows, start, start_valid, answered, billable, known)
    if fast is not None:
        return fast
    while cap < 2 * m:
        cap *= 2
    mask_ = cap - 1
    # slot -> the key's hash (high 32 bits) and its group id + 1 (low 32 bits; 0 empty):
    # a probe compares the keys' bytes only when their hashes agree
    cdef uint64_t[::1] table = np.zeros(cap, np.uint64)
    cdef uint64_t h, entry
    cdef const uint8_t* k
    cdef int64_t[::1] firsts = np.empty(max(m, 1), np.int64)  # group -> its first row
    cdef int64_t[::1] group_of = np.empty(max(n, 1), np.int64)  # row -> its group
    # per group, one row of W int64 (one or two cache lines): the 7 aggregates,
    # the 4 latest name rows, whether a start was seen
    cdef int64_t[:, ::1] acc = np.empty((max(m, 1), W), np.int64)
    cdef int64_t* a
    cdef const int32_t* off = &offsets[0]
    cdef const uint8_t* dat = &data[0] if data.shape[0] else NULL
    with nogil:
        for r in range(m):
            i = rows[r]  # the call's row: visited in time order
            h = _hash(dat + off[i], off[i + 1] - off[i])
            slot = h & mask_
            while True:
                entry = table[slot]
                if entry == 0:
                    gid = g
                    table[slot] = (h & 0xFFFFFFFF00000000ULL) | <uint64_t>(g + 1)
                    firsts[g] = i
                    a = &acc[g, 0]
                    for f in range(W):
                        a[f] = 0
                    for f in range(4):
                        a[N_AGG + f] = -1
                    g += 1
                    break
                if (entry >> 32) == (h >> 32):
                    gid = <int64_t>(entry & 0xFFFFFFFFULL) - 1
                    if _cmp(off, dat, firsts[gid], i) == 0:
                        break
                slot = (slot + 1) & mask_
            group_of[i] = gid
            _add(&acc[gid, 0], i, start, start_valid, answered, billable, known)
    cdef _Keyed[::1] items
    cdef _Keyed[::1] tmp
    keyed = np.empty(max(g, 1), _KEYED)
    items = keyed
    tmp = np.empty(max(g, 1), _KEYED)
    with nogil:
        for i in range(g):
            r = firsts[i]
            kn = off[r + 1] - off[r] - skip[r]
            k = dat + off[r] + skip[r]
            items[i].p0 = <uint64_t>rank[r]
            items[i].p1 = _be(k, kn) if kn > 0 else 0
            items[i].p2 = _be(k + 8, kn - 8) if kn > 8 else 0
            items[i].p3 = _be(k + 16, kn - 16) if kn > 16 else 0
            items[i].row = firsts[i]
        if g > 1:
            _sort_keyed(&items[0], &tmp[0], g, off, dat)
    sorted_rows = np.empty(g, np.int64)
    cdef int64_t[::1] rows_v = sorted_rows
    cdef int64_t[:, ::1] agg = np.empty((N_AGG, g), np.int64)
    cdef int64_t[:, ::1] last = np.empty((4, g), np.int64)
    with nogil:
        for i in range(g):
            rows_v[i] = items[i].row
            a = &acc[group_of[items[i].row], 0]
            for f in range(N_AGG):
                agg[f, i] = a[f]
            for f in range(4):
                last[f, i] = a[N_AGG + f]
    return sorted_rows, np.asarray(agg), np.asarray(last)
