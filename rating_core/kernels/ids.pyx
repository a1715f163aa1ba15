# cython: freethreading_compatible=True
"""Call-id hashes (see ids.pxd): the bulk job's scan finds the call ids that
may repeat from 8 bytes per row instead of the ids themselves."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, uint8_t, uint64_t

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
