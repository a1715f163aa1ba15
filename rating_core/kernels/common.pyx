# cython: freethreading_compatible=True
"""Shared kernel declarations (see common.pxd): the snapshot's rating tables
bound once, and the rules of one call's charge that both kernels use.

The rules are stated in ``rating_core/reference.py``; this is their fast form.
"""
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t

cdef extern from *:
    """
    #ifdef RATING400_DEBUG
    #define RATING400_DEBUG_BUILD 1
    #else
    #define RATING400_DEBUG_BUILD 0
    #endif
    """
    const int RATING400_DEBUG_BUILD

DEBUG_BUILD = bool(RATING400_DEBUG_BUILD)
"""True in the debug build (``RATING400_DEBUG=1``): bounds checks on."""


cdef class Tables:
    """The rating tables of a snapshot (``layout.TABLES``) as typed views.

    ``Tables(tables)``: ``tables`` is a dict name -> C-contiguous ndarray that
    ``layout.check`` and ``layout.check_indexes`` accepted; the arrays are
    held for the object's life (they may be views of a memory map)."""

    def __init__(self, dict t):
        self.source = t
        self.number_key = t["number_key"]
        self.number_account = t["number_account"]
        self.number_status = t["number_status"]
        self.number_billing_start = t["number_billing_start"]
        self.number_home_city = t["number_home_city"]
        self.number_routing = t["number_routing"]
        self.account_package = t["account_package"]
        self.account_status = t["account_status"]
        self.account_start_ms = t["account_start_ms"]
        self.account_expiry_ms = t["account_expiry_ms"]
        self.package_kind = t["package_kind"]
        self.package_included_seconds = t["package_included_seconds"]
        self.package_overage_rate = t["package_overage_rate"]
        self.package_band_set = t["package_band_set"]
        self.rate_table = t["rate_table"]
        self.rate_first_tier = t["rate_first_tier"]
        self.rate_n_tiers = t["rate_n_tiers"]
        self.rate_connect_fee = t["rate_connect_fee"]
        self.rate_free_seconds = t["rate_free_seconds"]
        self.rate_min_billable = t["rate_min_billable"]
        self.rate_rounding = t["rate_rounding"]
        self.rate_billable_rule = t["rate_billable_rule"]
        self.rate_denominator = t["rate_denominator"]
        self.tier_start = t["tier_start"]
        self.tier_price = t["tier_price"]
        self.tier_unit = t["tier_unit"]
        self.tier_increment = t["tier_increment"]
        self.dest_starts = t["dest_starts"]
        self.dest_values = t["dest_values"]
        self.region_starts = t["region_starts"]
        self.region_values = t["region_values"]
        self.carrier_starts = t["carrier_starts"]
        self.carrier_values = t["carrier_values"]
        self.city_province = t["city_province"]
        self.first_day = t["calendar_first_day"][0]
        self.day_kind = t["day_kind"]
        self.day_month = t["day_month"]
        self.band_of = t["band_of"]
        self.band_until = t["band_until"]
        self.band_rule = t["band_rule"][0]

    cdef int64_t day_row(self, int64_t at_ms) noexcept nogil:
        # Row of the calendar tables for the local date of at_ms. The edge
        # keeps times within the calendar, so local >= 0 and C division is
        # floor division.
        return (at_ms + LOCAL_OFFSET_MS) // MS_PER_DAY - self.first_day

    cdef int8_t band_at(self, int32_t band_set, int64_t at_ms) noexcept nogil:
        # The band of `band_set` in force at at_ms (day kind, local minute).
        cdef int64_t local = at_ms + LOCAL_OFFSET_MS
        return self.band_of[band_set, self.day_kind[local // MS_PER_DAY - self.first_day],
                            (local % MS_PER_DAY) // MS_PER_MINUTE]

    cdef int64_t band_end_ms(self, int32_t band_set, int64_t at_ms) noexcept nogil:
        # When the band in force at at_ms ends: the next minute whose band
        # differs that day, else the next local midnight (the day kind may
        # change there).
        cdef int64_t local = at_ms + LOCAL_OFFSET_MS
        cdef int64_t day = local // MS_PER_DAY
        cdef int16_t until = self.band_until[band_set, self.day_kind[day - self.first_day],
                                             (local % MS_PER_DAY) // MS_PER_MINUTE]
        return day * MS_PER_DAY + <int64_t>until * MS_PER_MINUTE - LOCAL_OFFSET_MS

    cdef int64_t walk(self, int32_t rate, int64_t t, int64_t limit, int64_t den, wide_t *num,
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

    cdef int64_t charge(self, int32_t rate, int64_t billable, int32_t *billed, int32_t *units) noexcept nogil:
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
        t = self.walk(rate, 0, d, self.rate_denominator[rate], &num, units)
        billed[0] = <int32_t>t
        return round_div(num, self.rate_denominator[rate], self.rate_rounding[rate]) + self.rate_connect_fee[rate]

    cdef int64_t split_charge(self, int32_t package, int32_t dest, int8_t caller_class, int64_t bill_from,
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
            r = self.rate_table[package, dest, caller_class, self.band_at(set_, bill_from + t * 1000)]
            if r < 0:
                return -1
            # increments starting before the band's end belong to this band
            seg_end = ceil_div(self.band_end_ms(set_, bill_from + t * 1000) - bill_from, 1000)
            lim = seg_end if seg_end < d else d
            t = self.walk(r, t, lim, den, &num, units)
            n_bands[0] += 1
        billed[0] = <int32_t>t
        return round_div(num, den, self.rate_rounding[first_rate]) + self.rate_connect_fee[first_rate]
