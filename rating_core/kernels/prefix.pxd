# Prefix tables: numbers as base-11 keys, longest-prefix match as one
# binary search over disjoint intervals.
#
# Key of a digit string s (at most MAX_DIGITS long):
#     key(s) = sum((s[i] + 1) * 11 ** (MAX_DIGITS - 1 - i))
# Digit d is written d + 1 and "end of string" is 0, so keys order like
# the strings and a shorter string never falls inside a longer prefix's
# range. A prefix p of length m covers exactly the keys
#     [key(p), key(p) + 11 ** (MAX_DIGITS - m) - 1]
# which are the strings that start with p. Nested prefix ranges are
# flattened at compile time into disjoint intervals (starts ascending,
# starts[0] == 0), each carrying the value of its longest covering prefix
# or -1, so a lookup is "the last start <= key".
from libc.stdint cimport int64_t, int32_t

cdef enum:
    MAX_DIGITS = 18

cdef inline Py_ssize_t last_le(const int64_t[::1] a, Py_ssize_t lo, Py_ssize_t hi,
                               int64_t key) noexcept nogil:
    # Index of the last a[i] <= key in the ascending slice a[lo:hi].
    # Requires lo < hi and a[lo] <= key: then the answer always exists.
    cdef Py_ssize_t mid
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if a[mid] <= key:
            lo = mid
        else:
            hi = mid
    return lo

cdef inline Py_ssize_t find_in(const int64_t[::1] a, Py_ssize_t lo, Py_ssize_t hi,
                               int64_t key) noexcept nogil:
    # Position of key in the ascending slice a[lo:hi], or -1.
    cdef Py_ssize_t end = hi, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < end and a[lo] == key:
        return lo
    return -1

cdef inline Py_ssize_t interval_of(const int64_t[::1] starts, int64_t key) noexcept nogil:
    # Index of the last start <= key. Requires len(starts) >= 1 and
    # starts[0] == 0 <= key: then the answer always exists.
    return last_le(starts, 0, starts.shape[0], key)

cdef inline int32_t longest_prefix(const int64_t[::1] starts, const int32_t[::1] values,
                                   int64_t key) noexcept nogil:
    return values[interval_of(starts, key)]

cdef inline Py_ssize_t find_exact(const int64_t[::1] keys, int64_t key) noexcept nogil:
    # Position of key in the ascending array keys, or -1.
    return find_in(keys, 0, keys.shape[0], key)
