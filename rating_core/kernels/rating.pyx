# cython: freethreading_compatible=True
"""Rating kernel: CDR columns + snapshot tables -> rated columns.

The rules are stated once, in ``rating_core/reference.py`` (which applies
them literally, in plain Python); this module is the fast form of the same
rules and is checked against the reference by tests/test_rating_kernel.py.

Two passes:

1. ``price calls``: every CDR on its own (``prange``, no GIL): number ->
   account -> package, destination class, caller region and class,
   billing start (with its fallback), time band at the billing start,
   rate, billable seconds, units and charge (under the split band rule,
   increment by increment across band boundaries).
2. ``settle accounts``: the rated calls in chronological order of start
   (ties: input order), one pass, consuming each account's prepaid credit
   or bundle seconds; once exhausted, arrears (prepaid) or the package's
   overage rate (bundle). The account state arrays are
   updated in place so the caller can persist the closing balances.

History (a live view, ``accounts.view``): when ``tables`` holds the
``HISTORY`` arrays, each CDR is rated under the subscription period in force
at its start (the period's package, its rates, bundle and credit rules) and
the number status in force then (README "Late CDRs"):

* ``account_period_first`` / ``account_period_count`` (int32, per account
  row) locate the account's periods in ``period_start_ms`` (int64, epoch ms,
  ascending within an account), ``period_package`` (int32) and
  ``period_expiry_ms`` (int64, prepaid credit expiry, else NEVER); the last
  one is the current period (``account_*``). A call before the first start
  is ``package_not_started``.
* ``number_hist_first`` / ``number_hist_count`` (int32, per number row)
  locate the number's states in ``hist_ms`` (int64 ascending) and
  ``hist_status`` (int8 ``layout.STATUS``); the first entry is dated
  int64 min (``accounts.periods.held_history``: it holds since ever), and
  before any entry the first one's state holds all the same.

The search is ``last_le`` over the few rows of one account or number.
Settlement of a call of an earlier period: prepaid credit is the one
account balance (never taken below zero; none after that period's expiry:
the rest is arrears). A bundle allowance is tracked in ``state`` for the
account's latest month; a call of an earlier period or month (a late CDR)
draws from that period-month's own allowance when ``state`` carries the
ledger's usage per bundle period (``late_key`` ...; see ``rate``), else it
pays its package's overage rate for all its billed seconds.

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
from libc.stdint cimport INT64_MAX, int8_t, int32_t, int64_t

from .common cimport *
from . import common as _common
from .prefix cimport last_le

cnp.import_array()

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
    "STATUS": {"active": ST_ACTIVE, "suspended": ST_SUSPENDED, "pending_verification": ST_PENDING},
    "BILLABLE_RULE": {"truncate": BILLABLE_TRUNCATE, "ceil": BILLABLE_CEIL, "round": BILLABLE_ROUND},
    "BAND_RULE": {"billing_start": BAND_AT_BILLING_START, "split": BAND_SPLIT},
}
DEBUG_BUILD = _common.DEBUG_BUILD

# The optional history arrays of a live view (module doc), name -> dtype.
HISTORY = {
    "account_period_first": np.int32, "account_period_count": np.int32,
    "period_start_ms": np.int64, "period_package": np.int32, "period_expiry_ms": np.int64,
    "number_hist_first": np.int32, "number_hist_count": np.int32,
    "hist_ms": np.int64, "hist_status": np.int8,
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


cdef inline Py_ssize_t _usage_slot(const int64_t[::1] keys, const int64_t[::1] starts, int64_t key,
                                   int64_t start) noexcept nogil:
    # Row of (key, start) in the table sorted by (key, start), or -1.
    cdef Py_ssize_t lo = 0, hi = keys.shape[0], mid
    while lo < hi:  # the first row with keys[row] >= key
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    while lo < keys.shape[0] and keys[lo] == key:
        if starts[lo] == start:
            return lo
        lo += 1
    return -1


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


def bound(tables):
    """``tables`` (a snapshot's dict of arrays) as a ``common.Tables``; a
    ``Tables`` passes through, so a caller rating many batches binds once."""
    return tables if isinstance(tables, Tables) else Tables(tables)


def rate(dict tables, dict cdr, dict state, int threads=2, dict out=None):
    """Rate CDR columns against snapshot ``tables``; see the module doc.

    ``tables``: a snapshot's tables (``layout.TABLES``, checked by
    ``layout.check`` and ``layout.check_indexes``), or a ``common.Tables``
    bound from them. ``cdr``: int64 columns ``number_key caller_key
    forwarded_key start_ms ivr_answer_ms agent_answer_ms end_ms`` (validated
    at the edge; ``layout.NO_TIME`` for a missing answer).
    ``state``: ``credit_left`` int64, ``bundle_period`` int32,
    ``bundle_used`` int64, one entry per account, updated in place.
    Optional (all or none; ``Ledger.opening_state`` gives them): usage per
    bundle period and month, for late CDRs (README "Late CDRs"):
    ``late_key`` int64 ascending (account row << 16 | month id
    year*12+month-1), ``late_start`` int64 (the period's start, epoch ms;
    ascending among equal keys), ``late_used`` int64 (seconds used, updated
    in place); ``missed_key`` / ``missed_start`` int64 and ``missed_n``
    int64[1]: the period-months late calls found no row for (such a call
    pays overage for all its seconds: the caller completes the table and
    rates again); ``rolled_acc`` / ``rolled_month`` / ``rolled_used`` int64
    and ``rolled_n`` int64[1]: each month an account's current period leaves
    behind (the account row, that month, its seconds used), for the caller
    to keep. The ``missed_*`` and ``rolled_*`` buffers hold at least one
    entry per CDR.
    Returns the output columns of ``OUTPUT`` (length of the CDR columns),
    written into ``out`` when given (arrays of those dtypes and length, to
    be reused across batches: fresh output memory costs page faults worth
    a fifth of the kernel's time).
    """
    cdef Tables T = bound(tables)

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
    number_first, number_base, number_shift = _bucket_index(T.source["number_key"])
    dest_first, dest_base, dest_shift = _bucket_index(T.source["dest_starts"])
    region_first, region_base, region_shift = _bucket_index(T.source["region_starts"])
    carrier_first, carrier_base, carrier_shift = _bucket_index(T.source["carrier_starts"])

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

    # The searched tables as locals: loads the C compiler can keep in
    # registers across the loop (fields of T could alias the outputs).
    cdef const int64_t[::1] dest_starts = T.dest_starts, region_starts = T.region_starts
    cdef const int64_t[::1] carrier_starts = T.carrier_starts, number_key = T.number_key
    cdef const int32_t[::1] dest_values = T.dest_values, region_values = T.region_values
    cdef const int32_t[::1] carrier_values = T.carrier_values

    # --- history (module doc): empty views when the tables have none
    cdef bint has_history = "period_start_ms" in T.source
    cdef dict H = T.source if has_history else {k: np.zeros(0, v) for k, v in HISTORY.items()}
    cdef const int32_t[::1] ap_first = H["account_period_first"], ap_count = H["account_period_count"]
    cdef const int64_t[::1] p_start = H["period_start_ms"], p_expiry = H["period_expiry_ms"]
    cdef const int32_t[::1] p_package = H["period_package"]
    cdef const int32_t[::1] nh_first = H["number_hist_first"], nh_count = H["number_hist_count"]
    cdef const int64_t[::1] h_ms = H["hist_ms"]
    cdef const int8_t[::1] h_status = H["hist_status"]
    # Per CDR: its period row (-1: the account's only period, no history) and
    # whether it is the account's current one; read by the settlement pass.
    cdef int32_t[::1] c_period = np.empty(n if has_history else 0, np.int32)
    cdef Py_ssize_t lo, cnt, p

    cdef Py_ssize_t i, row, num_row
    cdef int32_t acc, pkg, dest, city, r, n_bands
    cdef int8_t num_status
    cdef int64_t period_start
    cdef int8_t status, caller_class, band, bs
    cdef int64_t start, bill_from, when, billable, charge
    cdef bint split = T.band_rule == BAND_SPLIT

    # ---- pass 1: price every call on its own
    with nogil:
        for i in prange(n, num_threads=threads, schedule="static"):
            start = c_start[i]
            # Prefix tables start at key 0, so the interval always exists.
            dest = dest_values[last_at_most(dest_starts, dest_first, dest_base, dest_shift, c_forwarded[i])]
            city = region_values[last_at_most(region_starts, region_first, region_base, region_shift, c_caller[i])]
            o_destination[i] = dest
            o_city[i] = city
            o_province[i] = T.city_province[city] if city >= 0 else -1
            o_carrier[i] = carrier_values[last_at_most(carrier_starts, carrier_first, carrier_base,
                                                       carrier_shift, c_caller[i])]

            num_row = last_at_most(number_key, number_first, number_base, number_shift, c_number[i])
            if num_row >= 0 and number_key[num_row] != c_number[i]:
                num_row = -1  # not a number of the catalog
            acc = -1
            pkg = -1
            caller_class = -1
            band = -1
            r = -1
            bill_from = NO_TIME
            when = start
            if num_row < 0:
                status = UNKNOWN_NUMBER
            else:
                acc = T.number_account[num_row]
                pkg = T.account_package[acc]
                num_status = T.number_status[num_row]
                period_start = T.account_start_ms[acc]
                if has_history:
                    # The period in force at the start: the last start <= it.
                    lo = ap_first[acc]
                    cnt = ap_count[acc]
                    p = -1
                    if cnt > 0 and p_start[lo] <= start:
                        p = last_le(p_start, lo, lo + cnt, start)
                        pkg = p_package[p]
                        period_start = p_start[p]
                    c_period[i] = <int32_t>p
                    # The number's state at the start (before its first entry: that entry's).
                    lo = nh_first[num_row]
                    cnt = nh_count[num_row]
                    if cnt > 0:
                        num_status = h_status[last_le(h_ms, lo, lo + cnt, start) if h_ms[lo] <= start else lo]
                # An unknown caller region counts as out of town.
                caller_class = LOCAL_CALLER if city >= 0 and city == T.number_home_city[num_row] else OUT_OF_TOWN_CALLER
                # Billing start, with its fallback: a missing IVR answer
                # falls back to the agent answer (the ring is never billed
                # for a number that bills from an answer).
                bs = T.number_billing_start[num_row]
                if bs == BILL_FROM_RING:
                    bill_from = start
                else:
                    if bs == BILL_FROM_IVR_ANSWER:
                        bill_from = c_ivr_answer[i]
                    if bill_from == NO_TIME:
                        bill_from = c_agent_answer[i]
                if bill_from != NO_TIME:
                    when = bill_from  # the band (and bundle month) at the billing start
                band = band_at(T, T.package_band_set[pkg], when)
                if num_status != ST_ACTIVE:
                    status = NUMBER_NOT_ACTIVE
                elif start < period_start:
                    status = PACKAGE_NOT_STARTED
                elif dest < 0:
                    status = NO_DESTINATION_CLASS
                else:
                    r = T.rate_table[pkg, dest, caller_class, band]
                    status = RATED if r >= 0 else NO_RATE
            o_band[i] = band
            o_account[i] = acc
            o_package[i] = pkg
            o_caller_class[i] = caller_class
            o_credit[i] = 0
            o_bundle[i] = 0
            o_overage[i] = 0
            o_balance[i] = 0
            if status == RATED:
                billable = 0
                if bill_from != NO_TIME and c_end[i] > bill_from:
                    billable = billable_of(c_end[i] - bill_from, T.rate_billable_rule[r])
                o_billable[i] = <int32_t>billable
                if split:
                    charge = split_charge(T, pkg, dest, caller_class, bill_from, r, billable,
                                            &o_billed[i], &o_units[i], &n_bands)
                    if charge < 0:  # a band the call reaches has no rate
                        status = NO_RATE
                else:
                    charge = charge_of(T, r, billable, &o_billed[i], &o_units[i])
                o_charge[i] = charge
                if T.package_kind[pkg] == BUNDLE:
                    # Scratch until pass 2: the month the call counts against.
                    o_bundle[i] = T.day_month[day_row(T, when)]
            o_status[i] = status
            if status == RATED:
                o_rate[i] = r
            else:
                o_rate[i] = -1
                o_billable[i] = 0
                o_billed[i] = 0
                o_units[i] = 0
                o_charge[i] = 0
                o_bundle[i] = 0

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

    # --- usage per bundle period-month (late CDRs), when the state has it
    cdef bint track = "late_key" in state
    cdef const int64_t[::1] l_key = state["late_key"] if track else np.zeros(0, np.int64)
    cdef const int64_t[::1] l_start = state["late_start"] if track else np.zeros(0, np.int64)
    cdef int64_t[::1] l_used = state["late_used"] if track else np.zeros(0, np.int64)
    cdef int64_t[::1] m_key = state["missed_key"] if track else np.zeros(0, np.int64)
    cdef int64_t[::1] m_start = state["missed_start"] if track else np.zeros(0, np.int64)
    cdef int64_t[::1] m_n = state["missed_n"] if track else np.zeros(1, np.int64)
    cdef int64_t[::1] r_acc = state["rolled_acc"] if track else np.zeros(0, np.int64)
    cdef int64_t[::1] r_month = state["rolled_month"] if track else np.zeros(0, np.int64)
    cdef int64_t[::1] r_used = state["rolled_used"] if track else np.zeros(0, np.int64)
    cdef int64_t[::1] r_n = state["rolled_n"] if track else np.zeros(1, np.int64)
    cdef Py_ssize_t slot
    cdef int64_t pstart
    cdef int64_t* used  # the allowance a bundle call draws from (see below)

    cdef int64_t consumed, left, month, overage_seconds
    cdef int32_t over_billed, over_units
    cdef bint earlier  # a call of a period before the account's current one
    with nogil:
        for i in range(n):
            row = i if in_order else order[i]
            if o_status[row] != RATED:
                continue
            acc = o_account[row]
            pkg = o_package[row]
            earlier = False
            if has_history and c_period[row] >= 0:
                earlier = c_period[row] != ap_first[acc] + ap_count[acc] - 1
            if T.package_kind[pkg] == PREPAID:
                charge = o_charge[row]
                if earlier:
                    # The one credit balance, never below zero; none once
                    # that period's credit had expired at the call's start.
                    consumed = 0
                    if c_start[row] < p_expiry[c_period[row]] and credit_left[acc] > 0:
                        consumed = credit_left[acc] if credit_left[acc] < charge else charge
                else:
                    if c_start[row] >= T.account_expiry_ms[acc]:
                        credit_left[acc] = 0  # unused credit expires with the period
                    consumed = credit_left[acc] if credit_left[acc] < charge else charge
                credit_left[acc] -= consumed
                o_credit[row] = consumed
                o_overage[row] = charge - consumed  # arrears
                o_balance[row] = credit_left[acc]
            elif T.package_kind[pkg] == BUNDLE:
                # The allowance the call draws from: the account's latest month
                # (``bundle_used``), or for a late call -- an earlier period,
                # or a month before the account's latest -- that
                # period-month's own (the ledger's usage of it), as it would
                # have on time; a late call whose usage is not known pays
                # overage for all its billed seconds (the caller completes
                # the table from ``missed_*`` and rates again).
                month = o_bundle[row]
                used = NULL
                if earlier or month < bundle_period[acc]:
                    if track:
                        pstart = T.account_start_ms[acc]
                        if has_history and c_period[row] >= 0:
                            pstart = p_start[c_period[row]]
                        slot = _usage_slot(l_key, l_start, ((<int64_t>acc) << 16) | month, pstart)
                        if slot >= 0:
                            used = &l_used[slot]
                        elif m_n[0] < m_key.shape[0]:
                            m_key[m_n[0]] = ((<int64_t>acc) << 16) | month
                            m_start[m_n[0]] = pstart
                            m_n[0] += 1
                else:
                    if bundle_period[acc] != month:
                        if track and bundle_period[acc] >= 0 and bundle_used[acc] > 0 and r_n[0] < r_acc.shape[0]:
                            # The month left behind, kept for its late calls.
                            r_acc[r_n[0]] = acc
                            r_month[r_n[0]] = bundle_period[acc]
                            r_used[r_n[0]] = bundle_used[acc]
                            r_n[0] += 1
                        bundle_period[acc] = <int32_t>month
                        bundle_used[acc] = 0
                    used = &bundle_used[acc]
                consumed = 0
                if used != NULL:
                    left = T.package_included_seconds[pkg] - used[0]
                    if left < 0:
                        left = 0  # used more than a smaller, newer allowance
                    consumed = left if left < o_billed[row] else o_billed[row]
                    used[0] += consumed
                overage_seconds = o_billed[row] - consumed
                # The seconds beyond the bundle are a call of their own under
                # the package's overage rate; its charge replaces the rate's.
                r = T.package_overage_rate[pkg]
                charge = 0
                if r >= 0:
                    charge = charge_of(T, r, overage_seconds, &over_billed, &over_units)
                o_charge[row] = charge
                o_overage[row] = charge
                o_bundle[row] = <int32_t>consumed
                o_balance[row] = T.package_included_seconds[pkg] - used[0] if used != NULL else 0
    return out
