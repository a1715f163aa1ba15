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


# The rules of one call over the tables, inline in every kernel (see
# rating_core/reference.py for the same rules in plain Python).

@cython.cdivision(True)
cdef inline int64_t day_row(Tables self, int64_t at_ms) noexcept nogil:
    # Row of the calendar tables for the local date of at_ms. The edge
    # keeps times within the calendar, so local >= 0 and C division is
    # floor division.
    return (at_ms + LOCAL_OFFSET_MS) // MS_PER_DAY - self.first_day

@cython.cdivision(True)
cdef inline int8_t band_at(Tables self, int32_t band_set, int64_t at_ms) noexcept nogil:
    # The band of `band_set` in force at at_ms (day kind, local minute).
    cdef int64_t local = at_ms + LOCAL_OFFSET_MS
    return self.band_of[band_set, self.day_kind[local // MS_PER_DAY - self.first_day],
                        (local % MS_PER_DAY) // MS_PER_MINUTE]

@cython.cdivision(True)
cdef inline int64_t band_end_ms(Tables self, int32_t band_set, int64_t at_ms) noexcept nogil:
    # When the band in force at at_ms ends: the next minute whose band
    # differs that day, else the next local midnight (the day kind may
    # change there).
    cdef int64_t local = at_ms + LOCAL_OFFSET_MS
    cdef int64_t day = local // MS_PER_DAY
    cdef int16_t until = self.band_until[band_set, self.day_kind[day - self.first_day],
                                         (local % MS_PER_DAY) // MS_PER_MINUTE]
    return day * MS_PER_DAY + <int64_t>until * MS_PER_MINUTE - LOCAL_OFFSET_MS

@cython.cdivision(True)
cdef inline int64_t walk(Tables self, int32_t rate, int64_t t, int64_t limit, int64_t den, wide_t *num,
                  int32_t *units) noexcept nogil:
    # Increments of `rate` that start at elapsed t, t + increment, ...
    # while before `limit`, in closed form per tier segment: an increment
    # starting in tier j ([start_j, start_j+1)) is priced by tier j even
    # when it runs past the segment. Adds price * increment / unit to
    # num / den for each; returns the new t.
    cdef int32_t first = self.rate_first_tier[rate], last = first + self.rate_n_tiers[rate], j
    cdef int64_t seg_end, lim, k
    for j in range(first, last):
        seg_end = self.tier_start[j + 1] if j + 1 < last else limit
        lim = seg_end if seg_end < limit else limit
        if t < lim:
            k = ceil_div(lim - t, self.tier_increment[j])
            num[0] += <wide_t>(k * self.tier_increment[j]) * self.tier_price[j] * (den // self.tier_unit[j])
            units[0] += <int32_t>k
            t += k * self.tier_increment[j]
    return t

@cython.cdivision(True)
cdef inline int64_t charge_of(Tables self, int32_t rate, int64_t billable, int32_t *billed, int32_t *units) noexcept nogil:
    # Charge of `billable` seconds under one rate (reference rule 8):
    # nothing at or under the free seconds, else the minimum, the
    # increments, one rounding, then the connect fee.
    cdef int64_t d, t
    cdef wide_t num = 0
    units[0] = 0
    if billable == 0 or billable <= self.rate_free_seconds[rate]:
        billed[0] = 0
        return 0
    d = billable if billable > self.rate_min_billable[rate] else self.rate_min_billable[rate]
    t = walk(self, rate, 0, d, self.rate_denominator[rate], &num, units)
    billed[0] = <int32_t>t
    return round_div(num, self.rate_denominator[rate], self.rate_rounding[rate]) + self.rate_connect_fee[rate]

@cython.cdivision(True)
cdef inline int64_t split_charge(Tables self, int32_t package, int32_t dest, int8_t caller_class, int64_t bill_from,
                          int32_t first_rate, int64_t billable, int32_t *billed, int32_t *units,
                          int32_t *n_bands) noexcept nogil:
    # The split band rule (reference rule 8, "split"): each increment is
    # priced by the rate the package gives in the band in force at the
    # increment's start. The first rate (at the billing start) sets the
    # free seconds, minimum, rounding and connect fee; denominators are
    # the catalog-wide lcm (layout: every rate_denominator is it when
    # band_rule is split). Returns -1 when a band the call reaches has
    # no rate (the call is then no_rate).
    cdef int64_t d, t = 0, seg_end, lim, den = self.rate_denominator[first_rate]
    cdef int32_t r, set_ = self.package_band_set[package]
    cdef wide_t num = 0
    units[0] = 0
    n_bands[0] = 0
    if billable == 0 or billable <= self.rate_free_seconds[first_rate]:
        billed[0] = 0
        return 0
    d = billable if billable > self.rate_min_billable[first_rate] else self.rate_min_billable[first_rate]
    while t < d:
        r = self.rate_table[package, dest, caller_class, band_at(self, set_, bill_from + t * 1000)]
        if r < 0:
            return -1
        # increments starting before the band's end belong to this band
        seg_end = ceil_div(band_end_ms(self, set_, bill_from + t * 1000) - bill_from, 1000)
        lim = seg_end if seg_end < d else d
        t = walk(self, r, t, lim, den, &num, units)
        n_bands[0] += 1
    billed[0] = <int32_t>t
    return round_div(num, den, self.rate_rounding[first_rate]) + self.rate_connect_fee[first_rate]
