# cython: freethreading_compatible=True
"""Caller CRM records merged in one pass (``rating_core.billing.crm._merge``),
from a batch grouped per caller in one pass (``group``).

A ``crm`` record (``ledger.formats.CRM_RECORD``) is fixed-size: a version
byte, flags, 8 little-endian int64 counts (``CRM_COUNTS``) and 4 uint32
name ids. ``merge`` builds the new records of a batch's callers from the
stored ones and the batch's per-caller aggregates and name ids; a stored
record of the older form (counts + JSON) is left to the caller, which
upgrades it (``ledger.callers.upgrade``) and merges again.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

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

cdef enum:
    # ``formats.CRM_RECORD``: version, flags, the 8 counts, 4 uint32 name ids
    VERSION = 2
    COUNTS_AT = 2
    IDS_AT = 66  # COUNTS_AT + HEAD
    RECORD = 82  # IDS_AT + 4 * 4


cdef inline int _key_cmp(bytes a, bytes b) noexcept:
    """memcmp order of two keys, a shorter prefix first (LMDB's order)."""
    cdef Py_ssize_t na = PyBytes_GET_SIZE(a), nb = PyBytes_GET_SIZE(b)
    cdef int c = memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), na if na < nb else nb)
    if c:
        return c
    return (na > nb) - (na < nb)


def merge(list keys, stored, const int64_t[:, ::1] agg, const uint32_t[:, ::1] ids):
    """The new records of ``n = len(keys)`` callers.

    keys: the record keys (bytes), sorted and distinct. stored: an iterable
    of stored (key, record) pairs (bytes) in key order holding every stored
    one among ``keys`` and possibly others, which are skipped (a
    ``Cursor.getmulti`` of the keys, or a cursor walk from the first).
    agg: int64 (7, n): per caller the batch's first start, last start,
    calls, answered calls, talk seconds, latest missed start, latest
    answered start (epoch ms; 0 none). ids: uint32 (4, n): per caller the
    name ids (``ledger.callers.intern``; 0 none in the batch) of the
    destination of the latest answered call, then the latest known city,
    province and carrier.

    The rules are the call-by-call ones (``tests/test_crm.py`` checks
    them): first/last min/max, counts summed, the latest answer (at or
    after the stored one) sets the destination, a known city / province /
    carrier replaces the stored one, flags (tags, notes) kept.

    Returns (values, stale): values[i] the new ``CRM_RECORD`` (bytes), None
    where the stored record is of the older form; stale: the (key, record)
    pairs of those (the caller upgrades them, ``callers.upgrade``, and
    merges again). Stops reading ``stored`` after the last key."""
    cdef Py_ssize_t n = len(keys), i, f
    cdef list values = [None] * n
    cdef list stale = []
    cdef bytes key, raw = None, value
    cdef bytes at_key = None
    cdef object at = None
    cdef bint hit, takes
    cdef int64_t c[N_COUNTS]
    cdef uint32_t name_id
    cdef char* out
    cdef const char* src
    if agg.shape[0] != N_AGG or agg.shape[1] != n or ids.shape[0] != 4 or ids.shape[1] != n:
        raise ValueError("merge: agg and ids must have one column per key")
    it = iter(stored)
    if n:
        at = next(it, None)
        at_key = None if at is None else at[0]
    for i in range(n):
        key = keys[i]
        while at_key is not None and _key_cmp(at_key, key) < 0:  # a stored record the batch does not touch
            at = next(it, None)
            at_key = None if at is None else at[0]
        hit = at_key is not None and _key_cmp(at_key, key) == 0
        if hit:
            raw = at[1]
            if i + 1 < n:
                at = next(it, None)
                at_key = None if at is None else at[0]
            else:
                at_key = None
            if PyBytes_GET_SIZE(raw) != RECORD or PyBytes_AS_STRING(raw)[0] != VERSION:
                stale.append((key, raw))
                continue
        value = PyBytes_FromStringAndSize(NULL, RECORD)
        out = PyBytes_AS_STRING(value)
        if hit:
            src = PyBytes_AS_STRING(raw)
            memcpy(out, src, RECORD)
            memcpy(c, src + COUNTS_AT, HEAD)  # little-endian int64, as stored
            c[FIRST] = min(c[FIRST], agg[A_LO, i]) if c[CALLS] > 0 else agg[A_LO, i]
        else:
            memset(out, 0, RECORD)
            out[0] = VERSION
            memset(c, 0, HEAD)
            c[FIRST] = agg[A_LO, i]
        c[LAST] = max(c[LAST], agg[A_HI, i])
        c[CALLS] += agg[A_COUNT, i]
        c[ANSWERED] += agg[A_ANSWERED, i]
        c[TALK] += agg[A_TALK, i]
        c[LAST_MISSED] = max(c[LAST_MISSED], agg[A_MISSED_AT, i])
        takes = agg[A_ANSWERED, i] > 0 and agg[A_ANSWERED_AT, i] >= c[LAST_ANSWERED]
        if takes:
            c[LAST_ANSWERED] = agg[A_ANSWERED_AT, i]
            name_id = ids[0, i]  # the answer's destination (0: unknown) replaces the stored one
            memcpy(out + IDS_AT, &name_id, 4)
        for f in range(1, 4):
            name_id = ids[f, i]
            if name_id != 0:
                memcpy(out + IDS_AT + 4 * f, &name_id, 4)
        memcpy(out + COUNTS_AT, c, HEAD)
        values[i] = value
    return values, stale


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


cdef inline void _fill_keyed(_Keyed* item, const uint8_t* k, Py_ssize_t kn, uint64_t p0, int64_t row) noexcept nogil:
    """``item`` for the key bytes ``k`` (``kn`` of them) after a part ranked ``p0``."""
    item.p0 = p0
    item.p1 = _be(k, kn) if kn > 0 else 0
    item.p2 = _be(k + 8, kn - 8) if kn > 8 else 0
    item.p3 = _be(k + 16, kn - 16) if kn > 16 else 0
    item.row = row


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
    OUTLIERS = 64  # ``call_entries`` merges at most n / OUTLIERS keys out of order into the rest


cdef _Item* _radix_sort(_Item* src, _Item* dst, Py_ssize_t m, Py_ssize_t total) noexcept nogil:
    """Stable LSD radix sort of ``src`` (m items) by the low ``total`` bits
    of their keys, RADIX_BITS a pass, a pass skipped where every key has
    the same digit; ``dst`` has room for m. Returns the buffer (``src`` or
    ``dst``) holding the sorted items."""
    cdef Py_ssize_t count[RADIX]
    cdef Py_ssize_t shift = 0, pos, cnt, r, d
    cdef _Item* swap
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
    return src


def call_entries(const int32_t[::1] offsets, const uint8_t[::1] data, uint64_t batch):
    """The ``calls`` entries of a committed batch, for ``Cursor.putmulti``:
    (call key, ``formats.COMMITTED`` value: batch id uint64 LE, row uint32
    LE) per key, in the keys' byte order (LMDB's: a shorter prefix first),
    equal keys in row order.

    offsets / data: one Arrow binary array's buffers (n + 1 int32 offsets,
    from the array's offset; data non-empty), key i being row i of the
    batch. Nearly ordered keys (a switch's sequential ids) are found in one
    pass: at most n / OUTLIERS keys below one before them are sorted and
    merged into the others, which stay in place; otherwise a radix sort on
    the 8 bytes after the keys' common prefix (``_radix_sort``), each run
    of keys equal in those bytes then sorted by the rest (``_sort_keyed``). Returns (keys,
    values): two lists of n bytes, in that order. Raises ValueError for
    offsets outside ``data`` or more than 2**32 keys."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, nd = data.shape[0], i, j, r, cp, kn, lo, hi, longest = 1
    if n < 0 or nd == 0:
        raise ValueError("call_entries: offsets need n + 1 values and data a byte")
    if n >= (1 << 32):
        raise ValueError("call_entries: at most 2**32 calls in a batch")
    if n == 0:
        return [], []
    cdef const int32_t* off = &offsets[0]
    cdef const uint8_t* dat = &data[0]
    for i in range(n):
        if off[i] < 0 or off[i] > off[i + 1] or off[i + 1] > nd:
            raise ValueError("call_entries: an offset outside the data")
    # Nearly ordered keys (ordered but for at most n / OUTLIERS): the
    # ordered ones kept in place, the others sorted and merged in.
    order = np.empty(n, np.int64)
    cdef int64_t[::1] order_v = order
    cdef Py_ssize_t n_in = 1, n_out = 0, cap = n // OUTLIERS + 1
    cdef int64_t[::1] out_v = np.empty(cap, np.int64)
    cdef bint ordered = True
    cdef int c
    with nogil:
        order_v[0] = 0
        for i in range(1, n):
            if _cmp(off, dat, order_v[n_in - 1], i) <= 0:
                order_v[n_in] = i
                n_in += 1
            elif n_out < cap:
                out_v[n_out] = i
                n_out += 1
            else:
                ordered = False
                break
    cdef _Keyed[::1] few_v
    cdef _Keyed[::1] few_tmp
    if ordered and n_out:
        few_v = np.empty(n_out, _KEYED)
        few_tmp = np.empty(n_out, _KEYED)
        with nogil:
            for j in range(n_out):
                r = out_v[j]
                _fill_keyed(&few_v[j], dat + off[r], off[r + 1] - off[r], 0, r)
            _sort_keyed(&few_v[0], &few_tmp[0], n_out, off, dat)
            i, j, lo = n_in - 1, n_out - 1, n - 1  # merged from the back: the later of equal keys first
            while j >= 0:
                r = few_v[j].row
                c = _cmp(off, dat, order_v[i], r) if i >= 0 else -1
                if c > 0 or (c == 0 and order_v[i] > r):
                    order_v[lo] = order_v[i]
                    i -= 1
                else:
                    order_v[lo] = r
                    j -= 1
                lo -= 1
    cdef _Item[::1] a_v
    cdef _Item[::1] b_v
    cdef _Item* items
    cdef _Keyed[::1] run_v
    cdef _Keyed[::1] tmp_v
    if not ordered:
        a_v = np.empty(n, _ITEM)
        b_v = np.empty(n, _ITEM)
        with nogil:
            cp = off[1] - off[0]  # the keys' common prefix: it orders nothing
            for i in range(1, n):
                kn = off[i + 1] - off[i]
                if kn < cp:
                    cp = kn
                j = 0
                while j < cp and dat[off[i] + j] == dat[off[0] + j]:
                    j += 1
                cp = j
            for i in range(n):
                kn = off[i + 1] - off[i] - cp
                a_v[i].key = _be(dat + off[i] + cp, kn) if kn > 0 else 0
                a_v[i].row = i
            items = _radix_sort(&a_v[0], &b_v[0], n, 64)
            lo = 0
            while lo < n:  # the longest run of keys equal in their first 8 bytes after the prefix
                hi = lo + 1
                while hi < n and items[hi].key == items[lo].key:
                    hi += 1
                if hi - lo > longest:
                    longest = hi - lo
                lo = hi
        if longest > 1:
            run_v = np.empty(longest, _KEYED)
            tmp_v = np.empty(longest, _KEYED)
        with nogil:
            lo = 0
            while lo < n:
                hi = lo + 1
                while hi < n and items[hi].key == items[lo].key:
                    hi += 1
                if hi - lo > 1:  # by the next 24 bytes, then the whole keys (row order kept for equal keys)
                    for j in range(lo, hi):
                        r = items[j].row
                        _fill_keyed(&run_v[j - lo], dat + off[r] + cp + 8, off[r + 1] - off[r] - cp - 8, 0, r)
                    _sort_keyed(&run_v[0], &tmp_v[0], hi - lo, off, dat)
                    for j in range(lo, hi):
                        order_v[j] = run_v[j - lo].row
                else:
                    order_v[lo] = items[lo].row
                lo = hi
    cdef list keys = [None] * n
    cdef list values = [None] * n
    cdef char entry[12]
    for j in range(8):
        entry[j] = <char>((batch >> (8 * j)) & 0xFF)
    for i in range(n):
        r = order_v[i]
        for j in range(4):
            entry[8 + j] = <char>((<uint64_t>r >> (8 * j)) & 0xFF)
        keys[i] = PyBytes_FromStringAndSize(<const char*>dat + off[r], off[r + 1] - off[r])
        values[i] = PyBytes_FromStringAndSize(entry, 12)
    return keys, values


cdef int _check_strings(const int32_t[::1] offsets, const uint8_t[::1] data, Py_ssize_t n) except -1:
    """ValueError unless ``offsets`` are n + 1 ascending offsets into ``data``."""
    cdef Py_ssize_t i, nd = data.shape[0]
    if offsets.shape[0] < n + 1:
        raise ValueError("group: every column needs one value per call")
    for i in range(n):
        if offsets[i] < 0 or offsets[i] > offsets[i + 1] or offsets[i + 1] > nd:
            raise ValueError("group: an offset outside the data")
    return 0


cdef list _record_keys(const int64_t[::1] first, const int32_t[::1] acc_offsets, const uint8_t[::1] acc_data,
                       const int32_t[::1] caller_offsets, const uint8_t[::1] caller_data):
    """The record keys (``ledger.callers.key``: account NUL caller, as
    bytes) of the rows ``first``, in that order."""
    cdef Py_ssize_t g = first.shape[0], j, r, na, nc
    cdef list keys = [None] * g
    cdef bytes key
    cdef char* out
    for j in range(g):
        r = first[j]
        na = acc_offsets[r + 1] - acc_offsets[r]
        nc = caller_offsets[r + 1] - caller_offsets[r]
        key = PyBytes_FromStringAndSize(NULL, na + 1 + nc)
        out = PyBytes_AS_STRING(key)
        if na:
            memcpy(out, &acc_data[acc_offsets[r]], na)
        out[na] = 0
        if nc:
            memcpy(out + na + 1, &caller_data[caller_offsets[r]], nc)
        keys[j] = key
    return keys


def _group_digits(const int32_t[::1] acc_offsets, const uint8_t[::1] acc_data, const int32_t[::1] caller_offsets,
                  const uint8_t[::1] caller_data, const int64_t[::1] rank, const int64_t[::1] rows,
                  const int64_t[::1] start, const uint8_t[::1] start_valid, const uint8_t[::1] answered,
                  const int64_t[::1] billable, const uint8_t[:, ::1] known):
    """``group`` when every key is (the account's rank, then a caller of
    ASCII digits) and both fit one uint64 (the usual case: a caller number
    is digits): each call's key as rank << 4 D | its digits as nibbles
    (digit + 1; 0 pads the shorter numbers on the right, so a prefix sorts
    first, as in byte order), D the longest caller's digits; a stable LSD
    radix sort of (key, row) in time order, then one pass over the runs of
    equal keys -- no hash table, no comparison sort, every step sequential
    in memory. The keys' bytes are made from the sorted integers (the
    account's by its rank, from a row holding it; the caller's digits from
    the nibbles), not gathered from the rows. Returns ``group``'s (keys,
    agg, last), or None when a key does not fit (``group`` then hashes and
    sorts the keys' bytes)."""
    cdef Py_ssize_t m = rows.shape[0], r, i, j, d, lo, kn, digits = 0, g = 0, total
    cdef const uint8_t* k
    cdef uint64_t code, max_rank = 0, rank_bits = 0
    cdef bint ok = True
    cdef const int32_t* off = &caller_offsets[0]
    cdef const uint8_t* dat = &caller_data[0] if caller_data.shape[0] else NULL
    if m == 0:
        return None
    with nogil:
        for r in range(m):
            i = rows[r]
            kn = off[i + 1] - off[i]
            k = dat + off[i]
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
    # rank -> a row holding that account (its bytes for the keys)
    rank_row = np.full(max_rank + 1, -1, np.int64)
    cdef int64_t[::1] rank_row_v = rank_row
    with nogil:
        for r in range(m):
            i = rows[r]
            if rank_row_v[rank[i]] < 0:
                rank_row_v[rank[i]] = i
    items_a = np.empty(m, _ITEM)
    items_b = np.empty(m, _ITEM)
    cdef _Item[::1] a_v = items_a
    cdef _Item[::1] b_v = items_b
    cdef _Item* src = &a_v[0]
    cdef _Item* dst = &b_v[0]
    with nogil:
        for r in range(m):
            i = rows[r]  # time order: the stable sort keeps it within a key
            kn = off[i + 1] - off[i]
            k = dat + off[i]
            code = 0
            for d in range(digits):
                code = (code << 4) | (<uint64_t>(k[d] - 47) if d < kn else 0)
            if 4 * digits < 64:
                code |= <uint64_t>rank[i] << (4 * digits)
            src[r].key = code
            src[r].row = i
        src = _radix_sort(src, dst, m, total)
        for r in range(m):
            if r == 0 or src[r].key != src[r - 1].key:
                g += 1
    codes = np.empty(g, np.uint64)
    cdef uint64_t[::1] codes_v = codes
    cdef int64_t[:, ::1] agg = np.empty((N_AGG, g), np.int64)
    cdef int64_t[:, ::1] last = np.empty((4, g), np.int64)
    cdef int64_t acc[W]
    cdef int f
    with nogil:
        lo = 0
        j = 0
        while lo < m:
            _reset(acc)
            codes_v[j] = src[lo].key
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
    # The keys from the codes: account (by rank) NUL the digits (nibble - 1, up to the first 0 nibble).
    cdef list keys = [None] * g
    cdef bytes key
    cdef char* out
    cdef char caller[16]
    cdef Py_ssize_t na, a_at, nc
    cdef uint64_t rk
    cdef int nib
    for j in range(g):
        code = codes_v[j]
        nc = 0
        for d in range(digits):
            nib = <int>((code >> (4 * (digits - 1 - d))) & 0xF)
            if nib == 0:
                break
            caller[nc] = <char>(nib + 47)
            nc += 1
        rk = code >> (4 * digits) if 4 * digits < 64 else 0
        i = rank_row_v[rk]
        a_at = acc_offsets[i]
        na = acc_offsets[i + 1] - a_at
        key = PyBytes_FromStringAndSize(NULL, na + 1 + nc)
        out = PyBytes_AS_STRING(key)
        if na:
            memcpy(out, &acc_data[a_at], na)
        out[na] = 0
        if nc:
            memcpy(out + na + 1, caller, nc)
        keys[j] = key
    return keys, np.asarray(agg), np.asarray(last)


def group(const int32_t[::1] acc_offsets, const uint8_t[::1] acc_data, const int32_t[::1] caller_offsets,
          const uint8_t[::1] caller_data, const int64_t[::1] rank, bint ranked, const int64_t[::1] rows,
          const int64_t[::1] start, const uint8_t[::1] start_valid, const uint8_t[::1] answered,
          const int64_t[::1] billable, const uint8_t[:, ::1] known):
    """A batch of calls aggregated per caller record key (account NUL
    caller, ``ledger.callers.key``; what ``CRM.record`` merges into the
    stored records): by a radix sort of the keys as integers when the
    callers are digits (``_group_digits``, the usual case), else by a hash
    on the keys' bytes, then the distinct keys sorted; the keys made here
    as bytes, from the account and caller columns (no joined column).

    rows: the m calls to group, as row numbers in time order (a call's
    columns need not be: "latest" is the later in ``rows``). acc_offsets /
    acc_data, caller_offsets / caller_data: the account and caller columns
    (Arrow string or binary buffers, int32 offsets from the array's offset;
    data non-empty), n rows each. rank, ranked: the sort's shortcut: when
    ``ranked`` (no account holds a NUL), per row the rank of its account
    among the batch's accounts in byte order, so keys of different accounts
    sort by rank; otherwise ``rank`` is not read. start: int64 epoch ms,
    start_valid 1 where known (an unknown start counts no call time).
    answered: 1 an agent answered, 0 missed, 2 unknown (neither answered
    nor missed). billable: int64 billable seconds (0 when unknown). known:
    uint8 (4, n), 1 where the call sets the name: the destination (an
    answered call's), city, province, carrier.

    The other columns have one value per row (n rows).

    Returns (keys, agg, last) for the g distinct keys sorted by their bytes
    (LMDB's order): keys a list of g bytes (account NUL caller, ready for
    ``Cursor.getmulti`` / ``putmulti``); agg int64 (7, g) the ``merge``
    aggregates (first start, last start, calls with a start, answered,
    talk seconds, latest missed start, latest answered start; 0 none); last
    int64 (4, g) the latest row setting each name (-1 none). Raises
    ValueError when the arrays disagree in length, an offset is outside its
    data or a row is out of range."""
    cdef Py_ssize_t n = start.shape[0], m = rows.shape[0], i, r, f, cap = 16, g = 0, na
    cdef uint64_t mask_, slot
    cdef int64_t gid, total = 0
    if ((ranked and rank.shape[0] != n) or start_valid.shape[0] != n or answered.shape[0] != n
            or billable.shape[0] != n or known.shape[0] != 4 or known.shape[1] != n
            or acc_data.shape[0] == 0 or caller_data.shape[0] == 0):
        raise ValueError("group: every column needs one value per call")
    _check_strings(acc_offsets, acc_data, n)
    _check_strings(caller_offsets, caller_data, n)
    for i in range(m):
        if rows[i] < 0 or rows[i] >= n:
            raise ValueError("group: a row out of range")
    if m >= (1 << 31):
        raise ValueError("group: at most 2**31 - 1 calls at once")
    fast = _group_digits(acc_offsets, acc_data, caller_offsets, caller_data, rank, rows, start, start_valid,
                         answered, billable, known) if ranked else None
    if fast is not None:
        return fast
    # The hash path works on the keys' bytes: each row's key joined here
    # (account NUL caller), ``skip`` its first bytes that ``rank`` orders.
    for i in range(n):
        total += (acc_offsets[i + 1] - acc_offsets[i]) + 1 + (caller_offsets[i + 1] - caller_offsets[i])
    if total >= (1 << 31):
        raise ValueError("group: at most 2**31 - 1 bytes of keys at once")
    joined_off = np.empty(n + 1, np.int32)
    joined = np.empty(max(total, 1), np.uint8)
    skip_a = np.zeros(n, np.int32)
    cdef int32_t[::1] joff = joined_off
    cdef uint8_t[::1] jdat = joined
    cdef int32_t[::1] skip = skip_a
    with nogil:
        joff[0] = 0
        for i in range(n):
            na = acc_offsets[i + 1] - acc_offsets[i]
            if na:
                memcpy(&jdat[joff[i]], &acc_data[acc_offsets[i]], na)
            jdat[joff[i] + na] = 0
            r = caller_offsets[i + 1] - caller_offsets[i]
            if r:
                memcpy(&jdat[joff[i] + na + 1], &caller_data[caller_offsets[i]], r)
            joff[i + 1] = joff[i] + <int32_t>(na + 1 + r)
            if ranked:
                skip[i] = <int32_t>(na + 1)
    while cap < 2 * m:
        cap *= 2
    mask_ = cap - 1
    # slot -> the key's hash (high 32 bits) and its group id + 1 (low 32 bits; 0 empty):
    # a probe compares the keys' bytes only when their hashes agree
    cdef uint64_t[::1] table = np.zeros(cap, np.uint64)
    cdef uint64_t h, entry
    cdef int64_t[::1] firsts = np.empty(max(m, 1), np.int64)  # group -> its first row
    cdef int64_t[::1] group_of = np.empty(max(n, 1), np.int64)  # row -> its group
    # per group, one row of W int64 (one or two cache lines): the 7 aggregates,
    # the 4 latest name rows, whether a start was seen
    cdef int64_t[:, ::1] acc = np.empty((max(m, 1), W), np.int64)
    cdef int64_t* a
    cdef const int32_t* off = &joff[0]
    cdef const uint8_t* dat = &jdat[0]
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
            _fill_keyed(&items[i], dat + off[r] + skip[r], off[r + 1] - off[r] - skip[r],
                        <uint64_t>rank[r] if ranked else 0, r)
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
    return _record_keys(sorted_rows, acc_offsets, acc_data, caller_offsets, caller_data), np.asarray(agg), \
        np.asarray(last)
