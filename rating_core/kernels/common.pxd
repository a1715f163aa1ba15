# Everything the kernels share, declared once: time constants, the
# enumerations of rating_core/layout.py (order is the id; the test
# tests/test_rating_kernel.py::test_ids_match_the_layout ties them), the
# integer arithmetic of the one rounding point, and ``Tables``: the
# snapshot's rating tables bound to typed memoryviews (layout.TABLES), with
# the charge of a call under a rate. rating.pyx and routing.pyx both take
# their tables from here; neither binds a rating table by hand.
#
# Index invariants (proven at compile time by rating_core/layout.py
# ``check_indexes`` and re-checked when a snapshot opens): every id a table
# holds is a row of the table it names or -1 where the layout says so, so
# the kernels index without bounds checks (the debug build keeps them on).
cimport cython
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t

cdef extern from *:
    # gcc/clang 128-bit integer, for a call's exact total over its rate's
    # common denominator: seconds * price * denominator, up to
    # 1e5 * 1e13 * 2**63 < 2**127 (bounds in rating.pyx, "Overflow").
    ctypedef long long wide_t "__int128"

cdef extern from *:
    """
    #define RATING400_NO_TIME INT64_MIN
    """
    const int64_t NO_TIME "RATING400_NO_TIME"  # layout.NO_TIME: a missing timestamp

cdef enum:
    # Asia/Shanghai is UTC+8 all year (no DST since 1991): local = utc + offset.
    LOCAL_OFFSET_MS = 8 * 3600 * 1000  # layout.LOCAL_OFFSET_MS
    MS_PER_DAY = 86_400_000
    MS_PER_MINUTE = 60_000
    MINUTES_PER_DAY = 1440

# layout.RATE_STATUS
cdef enum:
    RATED = 0
    UNKNOWN_NUMBER = 1
    NUMBER_NOT_ACTIVE = 2
    PACKAGE_NOT_STARTED = 3
    NO_DESTINATION_CLASS = 4
    NO_RATE = 5

# layout.PACKAGE_KIND
cdef enum:
    PAYG = 0
    PREPAID = 1
    BUNDLE = 2

# layout.ROUNDING
cdef enum:
    ROUND_UP = 0
    ROUND_HALF_UP = 1
    ROUND_DOWN = 2

# layout.BILLING_START
cdef enum:
    BILL_FROM_RING = 0
    BILL_FROM_IVR_ANSWER = 1
    BILL_FROM_AGENT_ANSWER = 2

# layout.BILLABLE_RULE: milliseconds of a call -> whole billable seconds
cdef enum:
    BILLABLE_TRUNCATE = 0
    BILLABLE_CEIL = 1
    BILLABLE_ROUND = 2

# layout.BAND_RULE
cdef enum:
    BAND_AT_BILLING_START = 0
    BAND_SPLIT = 1

# layout.CALLER_CLASS
cdef enum:
    LOCAL_CALLER = 0
    OUT_OF_TOWN_CALLER = 1

# layout.STATUS
cdef enum:
    ST_ACTIVE = 0
    ST_SUSPENDED = 1
    ST_PENDING = 2


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


@cython.cdivision(True)
cdef inline int64_t billable_of(int64_t ms, int8_t rule) noexcept nogil:
    # Whole billable seconds of `ms` >= 0 milliseconds (layout.BILLABLE_RULE).
    if rule == BILLABLE_CEIL:
        return (ms + 999) // 1000
    if rule == BILLABLE_ROUND:
        return (ms + 500) // 1000  # half a second counts as a second
    return ms // 1000


cdef class Tables:
    # The rating tables of one snapshot (layout.TABLES), bound once.
    cdef readonly dict source  # keeps the snapshot's arrays alive
    cdef const int64_t[::1] number_key
    cdef const int32_t[::1] number_account
    cdef const int8_t[::1] number_status
    cdef const int8_t[::1] number_billing_start
    cdef const int32_t[::1] number_home_city
    cdef const int32_t[::1] number_routing
    cdef const int32_t[::1] account_package
    cdef const int8_t[::1] account_status
    cdef const int64_t[::1] account_start_ms
    cdef const int64_t[::1] account_expiry_ms
    cdef const int8_t[::1] package_kind
    cdef const int64_t[::1] package_included_seconds
    cdef const int32_t[::1] package_overage_rate
    cdef const int32_t[::1] package_band_set
    cdef const int32_t[:, :, :, ::1] rate_table
    cdef const int32_t[::1] rate_first_tier
    cdef const int32_t[::1] rate_n_tiers
    cdef const int64_t[::1] rate_connect_fee
    cdef const int32_t[::1] rate_free_seconds
    cdef const int32_t[::1] rate_min_billable
    cdef const int8_t[::1] rate_rounding
    cdef const int8_t[::1] rate_billable_rule
    cdef const int64_t[::1] rate_denominator
    cdef const int32_t[::1] tier_start
    cdef const int64_t[::1] tier_price
    cdef const int32_t[::1] tier_unit
    cdef const int32_t[::1] tier_increment
    cdef const int64_t[::1] dest_starts
    cdef const int32_t[::1] dest_values
    cdef const int64_t[::1] region_starts
    cdef const int32_t[::1] region_values
    cdef const int64_t[::1] carrier_starts
    cdef const int32_t[::1] carrier_values
    cdef const int32_t[::1] city_province
    cdef int64_t first_day
    cdef const int8_t[::1] day_kind
    cdef const int32_t[::1] day_month
    cdef const int8_t[:, :, ::1] band_of
    cdef const int16_t[:, :, ::1] band_until
    cdef int8_t band_rule

    cdef int64_t day_row(self, int64_t at_ms) noexcept nogil
    cdef int8_t band_at(self, int32_t band_set, int64_t at_ms) noexcept nogil
    cdef int64_t band_end_ms(self, int32_t band_set, int64_t at_ms) noexcept nogil
    cdef int64_t walk(self, int32_t rate, int64_t t, int64_t limit, int64_t den, wide_t *num,
                      int32_t *units) noexcept nogil
    cdef int64_t charge(self, int32_t rate, int64_t billable, int32_t *billed, int32_t *units) noexcept nogil
    cdef int64_t split_charge(self, int32_t package, int32_t dest, int8_t caller_class, int64_t bill_from,
                              int32_t first_rate, int64_t billable, int32_t *billed, int32_t *units,
                              int32_t *n_bands) noexcept nogil
