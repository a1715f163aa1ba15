# cython: freethreading_compatible=True
"""Rating kernel: CDR columns + snapshot tables -> rated columns.

The rules are stated once, in ``rating_core/reference.py`` (which applies
them literally, in plain Python); this module is the fast form of the same
rules and is checked against the reference by tests/test_rating_kernel.py.

Two passes:

1. ``price calls``: every CDR on its own (``prange``, no GIL): number ->
   account -> package, destination class, caller region and class, time
   band at the call's start, rate, billable seconds, units and charge.
2. ``settle accounts``: the rated calls in chronological order of start
   (ties: input order), one pass, consuming each account's prepaid credit
   or bundle seconds; overage once exhausted. The account state arrays are
   updated in place so the caller can persist the closing balances.

Overflow: the catalog bounds unit and increment to 3600 s and the edge
bounds a call to less than one day, so billed seconds < 86_400 + 3_600 +
3_600 < 1e5. A call's exact total over the rate's common denominator (the
lcm of its tiers' units) is summed in 128 bits: at most 1e5 * price * den,
exact for any price up to 1e13 minor units (1e9 yuan) per unit with any
lcm of units the int64 ``rate_denominator`` holds, and every charge then
fits int64 (< 1e5 * 1e13 = 1e18).
"""
import weakref

import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport INT64_MAX, INT64_MIN, int8_t, int32_t, int64_t

from .prefix cimport last_le

cnp.import_array()

cdef int64_t NO_TIME = INT64_MIN  # layout.NO_TIME
cdef enum:
    # Compile-time constants, so divisions by them become multiplications.
    LOCAL_OFFSET_MS = 8 * 3600 * 1000  # Asia/Shanghai, no DST
    MS_PER_DAY = 86_400_000
    MS_PER_HOUR = 3_600_000

# Ids as the kernel knows them, for the test that ties them to layout.py.
CODES = {
    "RATE_STATUS": {"rated": RATED, "unknown_number": UNKNOWN_NUMBER,
                    "number_not_active": NUMBER_NOT_ACTIVE,
                    "package_not_started": PACKAGE_NOT_STARTED,
                    "no_destination_class": NO_DESTINATION_CLASS, "no_rate": NO_RATE},
    "PACKAGE_KIND": {"payg": PAYG, "prepaid": PREPAID, "bundle": BUNDLE},
    "ROUNDING": {"up": ROUND_UP, "half_up": ROUND_HALF_UP, "down": ROUND_DOWN},
    "BILLING_START": {"ring": BILL_FROM_RING, "ivr_answer": BILL_FROM_IVR_ANSWER,
                      "agent_answer": BILL_FROM_AGENT_ANSWER},
    "CALLER_CLASS": {"local": LOCAL_CALLER, "out_of_town": OUT_OF_TOWN_CALLER},
    "STATUS": {"active": NUMBER_ACTIVE},
}

# Output columns, in the order of the rated record.
OUTPUT = (
    ("status", np.int8),
    ("account", np.int32),
    ("package", np.int32),
    ("destination_class", np.int32),
    ("caller_city", np.int32),
    ("caller_province", np.int32),
    ("caller_carrier", np.int32),
    ("caller_class", np.int8),
    ("time_band", np.int8),
    ("rate", np.int32),
    ("billable_seconds", np.int32),
    ("billed_seconds", np.int32),
    ("units", np.int32),
    ("charge", np.int64),
    ("credit_consumed", np.int64),
    ("bundle_seconds_consumed", np.int32),
    ("overage", np.int64),
    ("balance_after", np.int64),
)


# ---- sorted-key lookups, narrowed by a bucket index
#
# The same search as prefix.pxd's interval_of ("the last start <= key"),
# but before prefix.last_le it jumps to the key's bucket: buckets split
# [keys[0], keys[-1]] into up to 2**16 equal ranges of 2**shift keys, and
# first[b] is the first row whose key is in bucket b or later. The search
# then runs over one bucket's rows (a few cache lines) instead of the
# whole table; on the 95k-interval region table that halves the cost of a
# lookup, the largest cost of pricing a call. The index is derived from a
# snapshot table once and cached with it (see _bucket_index).

cdef inline Py_ssize_t last_at_most(const int64_t[::1] keys, const int32_t[::1] first, int64_t base,
                                    int shift, int64_t key) noexcept nogil:
    # Row of the last key <= `key` in the ascending `keys`, or -1 if none.
    cdef Py_ssize_t n_buckets = first.shape[0] - 1, lo, hi
    cdef int64_t b
    if key < base:
        return -1
    b = (key - base) >> shift
    if b >= n_buckets:
        return keys.shape[0] - 1  # past the last bucket: past the last key
    # keys[lo] <= key < keys[hi] (or hi is the end), throughout:
    # the row before bucket b's first is below the bucket's lowest key.
    lo = first[b] - 1 if first[b] > 0 else 0
    hi = first[b + 1]
    return last_le(keys, lo, hi, key)


_bucket_indexes = {}  # id(table) -> (weak reference, fingerprint, first, base, shift)
MAX_BUCKETS_LOG2 = 16


def _bucket_index(keys):
    """(first, base, shift) for an ascending int64 table; built once per
    table object and dropped with it. Empty tables get an index that
    finds nothing. Snapshot tables are immutable; the fingerprint (length
    and end keys) still catches a table refilled in place."""
    n = len(keys)
    fingerprint = (n, int(keys[0]), int(keys[n - 1])) if n else (0,)
    hit = _bucket_indexes.get(id(keys))
    if hit is not None and hit[0]() is keys and hit[1] == fingerprint:
        return hit[2:]
    if n == 0:
        index = (np.zeros(1, np.int32), INT64_MAX, 0)
    else:
        base = int(keys[0])
        span = int(keys[n - 1]) - base
        shift = max(0, span.bit_length() - min(MAX_BUCKETS_LOG2, max(1, (n - 1).bit_length())))
        n_buckets = (span >> shift) + 1
        first = np.empty(n_buckets + 1, np.int32)
        first[:n_buckets] = np.searchsorted(keys, base + (np.arange(n_buckets, dtype=np.int64) << shift), "left")
        first[n_buckets] = n
        index = (first, base, shift)
    key = id(keys)
    _bucket_indexes[key] = (weakref.ref(keys, lambda _, key=key: _bucket_indexes.pop(key, None)), fingerprint) + index
    return index


cdef inline int64_t local_day(int64_t start_ms, int64_t first_day) noexcept nogil:
    # Row of the calendar tables for the call's local start date. The edge
    # guarantees start_ms within the calendar, so local >= 0 and C division
    # is floor division.
    return (start_ms + LOCAL_OFFSET_MS) // MS_PER_DAY - first_day


cdef inline int64_t billable_seconds_of(int8_t billing_start, int64_t start_ms,
                                        int64_t ivr_answer_ms, int64_t agent_answer_ms,
                                        int64_t end_ms) noexcept nogil:
    # Whole seconds, rounded up, from the timestamp the billing start mode
    # names to the end; 0 when that timestamp is missing (not answered) or
    # not before the end.
    cdef int64_t bill_from = start_ms
    if billing_start == BILL_FROM_IVR_ANSWER:
        bill_from = ivr_answer_ms
    elif billing_start == BILL_FROM_AGENT_ANSWER:
        bill_from = agent_answer_ms
    if bill_from == NO_TIME or end_ms <= bill_from:
        return 0
    return ceil_div(end_ms - bill_from, 1000)


cdef inline int64_t tier_charge(int32_t rate, int64_t billable,
                                const int32_t[::1] rate_first_tier, const int32_t[::1] rate_n_tiers,
                                const int64_t[::1] rate_connect_fee, const int32_t[::1] rate_free_seconds,
                                const int32_t[::1] rate_min_billable, const int8_t[::1] rate_rounding,
                                const int64_t[::1] rate_denominator,
                                const int32_t[::1] tier_start, const int64_t[::1] tier_price,
                                const int32_t[::1] tier_unit, const int32_t[::1] tier_increment,
                                int32_t *billed_seconds, int32_t *units) noexcept nogil:
    # Charge of a call of `billable` seconds under `rate` (rule 7 of the
    # reference), in closed form: whole increments per tier segment instead
    # of one step per increment.
    cdef int64_t d, t = 0, limit, seg_end, k, den = rate_denominator[rate]
    cdef int64_t n_units = 0
    cdef wide_t num = 0
    cdef int32_t first = rate_first_tier[rate], last = first + rate_n_tiers[rate], j
    if billable == 0 or billable <= rate_free_seconds[rate]:
        billed_seconds[0] = 0
        units[0] = 0
        return 0
    d = billable if billable > rate_min_billable[rate] else rate_min_billable[rate]
    for j in range(first, last):
        # Tier j covers [start_j, start_{j+1}); an increment that starts in
        # it is priced by it even when it runs past the segment's end.
        seg_end = tier_start[j + 1] if j + 1 < last else d
        limit = seg_end if seg_end < d else d
        if t < limit:
            k = ceil_div(limit - t, tier_increment[j])
            num += <wide_t>(k * tier_increment[j]) * tier_price[j] * (den // tier_unit[j])
            n_units += k
            t += k * tier_increment[j]
    billed_seconds[0] = <int32_t>t
    units[0] = <int32_t>n_units
    return round_div(num, den, rate_rounding[rate]) + rate_connect_fee[rate]


def rate(dict tables, dict cdr, dict state, int threads=2, dict out=None):
    """Rate CDR columns against snapshot ``tables``; see the module doc.

    ``cdr``: int64 columns ``number_key caller_key forwarded_key start_ms
    ivr_answer_ms agent_answer_ms end_ms`` (validated at the edge).
    ``state``: ``credit_left`` int64, ``bundle_period`` int32,
    ``bundle_used`` int64, one entry per account, updated in place.
    Returns the output columns of ``OUTPUT`` (length of the CDR columns),
    written into ``out`` when given (arrays of those dtypes and length, to
    be reused across batches: fresh output memory costs page faults worth
    a fifth of the kernel's time).
    """
    # --- snapshot tables (layout.TABLES; checked when the snapshot opened)
    cdef const int64_t[::1] number_key = tables["number_key"]
    cdef const int32_t[::1] number_account = tables["number_account"]
    cdef const int8_t[::1] number_status = tables["number_status"]
    cdef const int8_t[::1] number_billing_start = tables["number_billing_start"]
    cdef const int32_t[::1] number_home_city = tables["number_home_city"]
    cdef const int32_t[::1] account_package = tables["account_package"]
    cdef const int64_t[::1] account_start_ms = tables["account_start_ms"]
    cdef const int64_t[::1] account_expiry_ms = tables["account_expiry_ms"]
    cdef const int8_t[::1] package_kind = tables["package_kind"]
    cdef const int64_t[::1] package_included_seconds = tables["package_included_seconds"]
    cdef const int64_t[::1] package_overage_price = tables["package_overage_price"]
    cdef const int32_t[:, :, :, ::1] rate_table = tables["rate_table"]
    cdef const int32_t[::1] rate_first_tier = tables["rate_first_tier"]
    cdef const int32_t[::1] rate_n_tiers = tables["rate_n_tiers"]
    cdef const int64_t[::1] rate_connect_fee = tables["rate_connect_fee"]
    cdef const int32_t[::1] rate_free_seconds = tables["rate_free_seconds"]
    cdef const int32_t[::1] rate_min_billable = tables["rate_min_billable"]
    cdef const int8_t[::1] rate_rounding = tables["rate_rounding"]
    cdef const int64_t[::1] rate_denominator = tables["rate_denominator"]
    cdef const int32_t[::1] tier_start = tables["tier_start"]
    cdef const int64_t[::1] tier_price = tables["tier_price"]
    cdef const int32_t[::1] tier_unit = tables["tier_unit"]
    cdef const int32_t[::1] tier_increment = tables["tier_increment"]
    cdef const int64_t[::1] dest_starts = tables["dest_starts"]
    cdef const int32_t[::1] dest_values = tables["dest_values"]
    cdef const int64_t[::1] region_starts = tables["region_starts"]
    cdef const int32_t[::1] region_values = tables["region_values"]
    cdef const int64_t[::1] carrier_starts = tables["carrier_starts"]
    cdef const int32_t[::1] carrier_values = tables["carrier_values"]
    cdef const int32_t[::1] city_province = tables["city_province"]
    cdef int64_t first_day = tables["calendar_first_day"][0]
    cdef const int8_t[::1] day_kind = tables["day_kind"]
    cdef const int32_t[::1] day_month = tables["day_month"]
    cdef const int8_t[:, ::1] band_of = tables["band_of"]

    # --- CDR columns
    cdef const int64_t[::1] c_number = cdr["number_key"]
    cdef const int64_t[::1] c_caller = cdr["caller_key"]
    cdef const int64_t[::1] c_forwarded = cdr["forwarded_key"]
    cdef const int64_t[::1] c_start = cdr["start_ms"]
    cdef const int64_t[::1] c_ivr_answer = cdr["ivr_answer_ms"]
    cdef const int64_t[::1] c_agent_answer = cdr["agent_answer_ms"]
    cdef const int64_t[::1] c_end = cdr["end_ms"]

    # --- account state, mutated in place by the settlement pass
    cdef int64_t[::1] credit_left = state["credit_left"]
    cdef int32_t[::1] bundle_period = state["bundle_period"]
    cdef int64_t[::1] bundle_used = state["bundle_used"]

    # --- bucket indexes of the searched tables
    cdef const int32_t[::1] number_first, dest_first, region_first, carrier_first
    cdef int64_t number_base, dest_base, region_base, carrier_base
    cdef int number_shift, dest_shift, region_shift, carrier_shift
    number_first, number_base, number_shift = _bucket_index(tables["number_key"])
    dest_first, dest_base, dest_shift = _bucket_index(tables["dest_starts"])
    region_first, region_base, region_shift = _bucket_index(tables["region_starts"])
    carrier_first, carrier_base, carrier_shift = _bucket_index(tables["carrier_starts"])

    cdef Py_ssize_t n = c_start.shape[0]
    if out is None:
        out = {name: np.empty(n, dtype) for name, dtype in OUTPUT}
    elif any(len(out[name]) != n for name, _ in OUTPUT):
        raise ValueError("rate: every out column must have one row per CDR")
    cdef int8_t[::1] o_status = out["status"]
    cdef int32_t[::1] o_account = out["account"]
    cdef int32_t[::1] o_package = out["package"]
    cdef int32_t[::1] o_destination = out["destination_class"]
    cdef int32_t[::1] o_city = out["caller_city"]
    cdef int32_t[::1] o_province = out["caller_province"]
    cdef int32_t[::1] o_carrier = out["caller_carrier"]
    cdef int8_t[::1] o_caller_class = out["caller_class"]
    cdef int8_t[::1] o_band = out["time_band"]
    cdef int32_t[::1] o_rate = out["rate"]
    cdef int32_t[::1] o_billable = out["billable_seconds"]
    cdef int32_t[::1] o_billed = out["billed_seconds"]
    cdef int32_t[::1] o_units = out["units"]
    cdef int64_t[::1] o_charge = out["charge"]
    cdef int64_t[::1] o_credit = out["credit_consumed"]
    cdef int32_t[::1] o_bundle = out["bundle_seconds_consumed"]
    cdef int64_t[::1] o_overage = out["overage"]
    cdef int64_t[::1] o_balance = out["balance_after"]

    cdef Py_ssize_t i, row, num_row
    cdef int32_t acc, pkg, dest, city, r, billed, units
    cdef int8_t status, caller_class, band
    cdef int64_t start, day, local, billable, charge

    # ---- pass 1: price every call on its own
    with nogil:
        for i in prange(n, num_threads=threads, schedule="static"):
            start = c_start[i]
            local = start + LOCAL_OFFSET_MS
            day = local // MS_PER_DAY - first_day
            band = band_of[day_kind[day], (local % MS_PER_DAY) // MS_PER_HOUR]
            # Prefix tables start at key 0, so the interval always exists.
            dest = dest_values[last_at_most(dest_starts, dest_first, dest_base, dest_shift, c_forwarded[i])]
            city = region_values[last_at_most(region_starts, region_first, region_base, region_shift, c_caller[i])]
            o_band[i] = band
            o_destination[i] = dest
            o_city[i] = city
            o_province[i] = city_province[city] if city >= 0 else -1
            o_carrier[i] = carrier_values[last_at_most(carrier_starts, carrier_first, carrier_base,
                                                       carrier_shift, c_caller[i])]

            num_row = last_at_most(number_key, number_first, number_base, number_shift, c_number[i])
            if num_row >= 0 and number_key[num_row] != c_number[i]:
                num_row = -1  # not a number of the catalog
            acc = -1
            pkg = -1
            caller_class = -1
            r = -1
            if num_row < 0:
                status = UNKNOWN_NUMBER
            else:
                acc = number_account[num_row]
                pkg = account_package[acc]
                # An unknown caller region counts as out of town.
                caller_class = LOCAL_CALLER if city >= 0 and city == number_home_city[num_row] else OUT_OF_TOWN_CALLER
                if number_status[num_row] != NUMBER_ACTIVE:
                    status = NUMBER_NOT_ACTIVE
                elif start < account_start_ms[acc]:
                    status = PACKAGE_NOT_STARTED
                elif dest < 0:
                    status = NO_DESTINATION_CLASS
                elif band < 0:
                    status = NO_RATE
                else:
                    r = rate_table[pkg, dest, caller_class, band]
                    status = RATED if r >= 0 else NO_RATE
            o_status[i] = status
            o_account[i] = acc
            o_package[i] = pkg
            o_caller_class[i] = caller_class
            o_credit[i] = 0
            o_bundle[i] = 0
            o_overage[i] = 0
            o_balance[i] = 0
            if status == RATED:
                o_rate[i] = r
                billable = billable_seconds_of(number_billing_start[num_row], start, c_ivr_answer[i],
                                               c_agent_answer[i], c_end[i])
                o_billable[i] = <int32_t>billable
                o_charge[i] = tier_charge(r, billable, rate_first_tier, rate_n_tiers, rate_connect_fee,
                                          rate_free_seconds, rate_min_billable, rate_rounding,
                                          rate_denominator, tier_start, tier_price, tier_unit,
                                          tier_increment, &o_billed[i], &o_units[i])
            else:
                o_rate[i] = -1
                o_billable[i] = 0
                o_billed[i] = 0
                o_units[i] = 0
                o_charge[i] = 0

    # ---- pass 2: settle accounts in chronological order
    cdef bint in_order = True
    with nogil:
        for i in range(1, n):
            if c_start[i] < c_start[i - 1]:
                in_order = False
                break
    cdef const cnp.intp_t[::1] order
    if not in_order:
        order = np.argsort(np.asarray(c_start), kind="stable")

    cdef int64_t consumed, left, month, overage_seconds
    with nogil:
        for i in range(n):
            row = i if in_order else order[i]
            if o_status[row] != RATED:
                continue
            acc = o_account[row]
            pkg = o_package[row]
            if package_kind[pkg] == PREPAID:
                if c_start[row] >= account_expiry_ms[acc]:
                    credit_left[acc] = 0  # unused credit expires with the period
                charge = o_charge[row]
                consumed = credit_left[acc] if credit_left[acc] < charge else charge
                credit_left[acc] -= consumed
                o_credit[row] = consumed
                o_overage[row] = charge - consumed  # arrears
                o_balance[row] = credit_left[acc]
            elif package_kind[pkg] == BUNDLE:
                month = day_month[local_day(c_start[row], first_day)]
                if bundle_period[acc] != month:
                    bundle_period[acc] = <int32_t>month
                    bundle_used[acc] = 0
                left = package_included_seconds[pkg] - bundle_used[acc]
                if left < 0:
                    left = 0  # used more than a smaller, newer allowance
                consumed = left if left < o_billed[row] else o_billed[row]
                bundle_used[acc] += consumed
                overage_seconds = o_billed[row] - consumed
                # The overage price replaces the rate's charge (no connect fee).
                charge = round_div(<wide_t>overage_seconds * package_overage_price[pkg], 60,
                                   rate_rounding[o_rate[row]])
                o_charge[row] = charge
                o_overage[row] = charge
                o_bundle[row] = <int32_t>consumed
                o_balance[row] = package_included_seconds[pkg] - bundle_used[acc]
    return out
