# cython: freethreading_compatible=True
"""Call-id hashes (see ids.pxd): the bulk job's scan finds the call ids that
may repeat from 8 bytes per row instead of the ids themselves."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memset

cnp.import_array()


def hash_strings(const int32_t[::1] offsets, const uint8_t[::1] data, uint64_t[::1] out):
    """64-bit hashes of the strings of an Arrow string array's buffers
    (``offsets`` has one more entry than ``out``; slice offsets included).
    Equal strings get equal hashes; a null slot hashes whatever bytes its
    offsets span (the caller masks nulls)."""
    cdef Py_ssize_t i, n = out.shape[0]
    cdef int32_t a, b
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    with nogil:
        for i in range(n):
            a = offsets[i]
            b = offsets[i + 1]
            out[i] = hash_bytes(base + a, b - a) if b > a else hash_bytes(NULL, 0)



cdef struct Slot:
    uint64_t hash
    int32_t row  # -1: empty


cdef inline bint same_cell(const int32_t[::1] offsets, const uint8_t* base, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    cdef int32_t a = offsets[i], b = offsets[i + 1], c = offsets[j], d = offsets[j + 1]
    return b - a == d - c and (b == a or memcmp(base + a, base + c, b - a) == 0)


cdef enum:
    PART_ROWS = 4096  # rows per part, about: a part's table (16 bytes a slot, half full) stays in L2


def later_copies(const int32_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] consider,
                 uint8_t[::1] later, int hash_bits=64):
    """Repeated strings over an Arrow string array's buffers (``offsets``
    has one more entry than ``later``; slice offsets included):
    ``later[i]`` is 1 where ``consider[i]`` and an earlier row j with
    ``consider[j]`` holds the same bytes, else 0. Returns how many rows are
    1. So among the considered rows the first copy of each value is 0, every
    later copy 1 (``rating_core.cdr.dedupe``'s rule; tests/test_ids_kernel.py
    checks it against ``dictionary_encode``'s first occurrences).

    How: each considered row's ``hash_bytes``; the rows split into parts by
    the hash's top bits, each part keeping input order (so equal strings
    share a part, first copy first); then per part an open-addressing table
    of (hash, row), at most half full, small enough for the CPU's cache (one
    table for the whole column missed the cache on nearly every row: 2.5x
    the time at 2M rows). Rows whose hashes agree are compared byte for
    byte, so a collision never makes a copy (tests keep only ``hash_bits``
    low bits of each hash to force collisions). Raises ValueError for
    mismatched lengths, offsets outside ``data`` or 2**31 rows or more."""
    cdef Py_ssize_t i, k, n = later.shape[0], m = 0, copies = 0, size, p, parts, a, b
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    cdef uint64_t h, mask
    cdef uint64_t keep = <uint64_t>-1 if hash_bits >= 64 else (<uint64_t>1 << max(hash_bits, 0)) - 1
    cdef int bits = 0
    if offsets.shape[0] != n + 1 or consider.shape[0] != n:
        raise ValueError("later_copies: arrays of different lengths")
    if n and (offsets[0] < 0 or offsets[n] > data.shape[0] or offsets[0] > offsets[n]):
        raise ValueError("later_copies: offsets outside the data buffer")
    if n >= 1 << 31:
        raise ValueError("later_copies: 2**31 rows or more")
    for i in range(n):
        m += consider[i] != 0
    while bits < 16 and (m >> bits) > PART_ROWS:
        bits += 1
    parts = 1 << bits
    cdef uint64_t[::1] hashes = np.empty(n, np.uint64)
    cdef int64_t[::1] start = np.zeros(parts + 1, np.int64)
    cdef int64_t[::1] cursor = np.empty(parts, np.int64)
    cdef uint64_t[::1] part_hash = np.empty(m, np.uint64)
    cdef int32_t[::1] part_row = np.empty(m, np.int32)
    cdef Py_ssize_t most = 0
    with nogil:
        for i in range(n):
            later[i] = 0
            if consider[i]:
                h = hash_bytes(base + offsets[i], offsets[i + 1] - offsets[i]) if offsets[i + 1] > offsets[i] \
                    else hash_bytes(NULL, 0)
                h &= keep
                hashes[i] = h
                start[(h >> (64 - bits)) + 1 if bits else 1] += 1
        for p in range(parts):
            most = max(most, start[p + 1])
            start[p + 1] += start[p]
            cursor[p] = start[p]
        for i in range(n):  # a stable scatter: each part in input order
            if consider[i]:
                h = hashes[i]
                p = h >> (64 - bits) if bits else 0
                part_hash[cursor[p]] = h
                part_row[cursor[p]] = <int32_t>i
                cursor[p] += 1
    size = 16
    while size < 2 * most:
        size <<= 1
    cdef Slot* table = <Slot*>malloc(size * sizeof(Slot))
    cdef Slot* s
    if table == NULL:
        raise MemoryError()
    try:
        with nogil:
            for p in range(parts):
                a = start[p]
                b = start[p + 1]
                if b == a:
                    continue
                size = 16
                while size < 2 * (b - a):
                    size <<= 1
                mask = size - 1
                memset(table, 0xFF, size * sizeof(Slot))  # row -1 everywhere
                for k in range(a, b):
                    h = part_hash[k]
                    i = part_row[k]
                    s = &table[h & mask]
                    while True:
                        if s.row < 0:
                            s.hash = h
                            s.row = <int32_t>i
                            break
                        if s.hash == h and same_cell(offsets, base, s.row, i):
                            later[i] = 1
                            copies += 1
                            break
                        s = s + 1 if s != &table[mask] else table
    finally:
        free(table)
    return copies
