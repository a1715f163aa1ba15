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
