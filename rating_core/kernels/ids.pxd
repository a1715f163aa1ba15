# Call-id hashes for the bulk job's duplicate scan (rating_core/bulk.py).
#
# A hash only narrows: two rows with equal hashes are *candidates* for a
# repeated call id, and the bulk job compares their strings before calling
# either a duplicate. So a collision costs one string kept in a set, never a
# wrong reject; the hash needs speed and spread, not strength.
from libc.stdint cimport uint8_t, uint64_t

cdef enum:
    # FNV-1a, 64 bits (offset basis and prime as published by Fowler, Noll, Vo).
    FNV_OFFSET = 0xcbf29ce484222325
    FNV_PRIME = 0x100000001b3

cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    # splitmix64's finaliser: every input bit reaches every output bit, so
    # the top bits (used to split the scan into buckets) spread evenly.
    z = (z ^ (z >> 30)) * <uint64_t>0xbf58476d1ce4e5b9
    z = (z ^ (z >> 27)) * <uint64_t>0x94d049bb133111eb
    return z ^ (z >> 31)

cdef inline uint64_t hash_bytes(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = <uint64_t>FNV_OFFSET
    cdef Py_ssize_t j
    for j in range(n):
        h = (h ^ p[j]) * <uint64_t>FNV_PRIME
    return mix64(h)
