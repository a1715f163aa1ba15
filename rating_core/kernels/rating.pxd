# Rating kernel: the ids it shares with rating_core/layout.py and the
# integer arithmetic of one call's charge. The rules are stated in full in
# rating_core/reference.py; rating.pyx applies them to CDR columns.
cimport cython
from libc.stdint cimport int8_t, int32_t, int64_t

cdef extern from *:
    # gcc/clang 128-bit integer, for a call's exact total over its rate's
    # common denominator: seconds * price * denominator, up to
    # 1e5 * 1e13 * 2**63 < 2**127 (bounds in rating.pyx, "Overflow").
    ctypedef long long wide_t "__int128"

# Order is the id: layout.RATE_STATUS, PACKAGE_KIND, ROUNDING,
# BILLING_START, CALLER_CLASS, STATUS (tests/test_rating_kernel.py checks).
cdef enum:
    RATED = 0
    UNKNOWN_NUMBER = 1
    NUMBER_NOT_ACTIVE = 2
    PACKAGE_NOT_STARTED = 3
    NO_DESTINATION_CLASS = 4
    NO_RATE = 5

cdef enum:
    PAYG = 0
    PREPAID = 1
    BUNDLE = 2

cdef enum:
    ROUND_UP = 0
    ROUND_HALF_UP = 1
    ROUND_DOWN = 2

cdef enum:
    BILL_FROM_RING = 0
    BILL_FROM_IVR_ANSWER = 1
    BILL_FROM_AGENT_ANSWER = 2

cdef enum:
    LOCAL_CALLER = 0
    OUT_OF_TOWN_CALLER = 1

cdef enum:
    NUMBER_ACTIVE = 0


@cython.cdivision(True)
cdef inline int64_t ceil_div(int64_t a, int64_t b) noexcept nogil:
    # a >= 0, b > 0
    return (a + b - 1) // b


@cython.cdivision(True)
cdef inline int64_t round_div(wide_t num, int64_t den, int8_t rounding) noexcept nogil:
    # num / den to an integer by the rate's rounding mode; num >= 0, den > 0.
    # THE rounding point of a call: nothing before it is rounded.
    cdef int64_t n64
    if num < (<wide_t>1 << 61) and den < (<int64_t>1 << 61):
        n64 = <int64_t>num  # 64-bit division: the common case, cheap
        if rounding == ROUND_UP:
            return (n64 + den - 1) // den
        if rounding == ROUND_HALF_UP:
            return (2 * n64 + den) // (2 * den)
        return n64 // den
    if rounding == ROUND_UP:
        return <int64_t>((num + den - 1) // den)
    if rounding == ROUND_HALF_UP:
        return <int64_t>((2 * num + den) // (2 * <wide_t>den))
    return <int64_t>(num // den)
