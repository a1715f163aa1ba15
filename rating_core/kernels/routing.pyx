"""Routing decision kernel: may a call go through, where to, for how long.

One compiled core, ``RoutingCore._decide`` (nogil, typed memoryviews over
the snapshot tables), serves both ``decide_one`` (one call, scalar in,
tuple out) and ``decide_batch`` (columns in, columns out). The rules are
those of ``rating_core/reference_routing.py``; tests compare the two.

State the decision reads but does not own comes in as plain values:
per-line active call counts and per-group round-robin cursors (arrays),
and per call the caller-memory line key and the account's balance. The
kernel never writes the ledger. With ``reserve`` (batches), it updates its
working copies as if every allowed call started at its first destination,
so later calls of the batch see the earlier ones (caps, round robin).
"""
import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport INT64_MAX, int8_t, int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc

from .common cimport *
from .prefix cimport find_exact, find_in, last_le, longest_prefix

cdef uint64_t GAMMA = 0x9E3779B97F4A7C15
cdef int8_t LIST_BLACK = 1, LIST_WHITE = 2
cdef int8_t REGION_CITY = 0
cdef int64_t REGION_BUCKET_SPAN = 11 ** 13  # keys sharing their first 5 digits (numbers.py keys)
cdef Py_ssize_t REGION_BUCKETS = 11 ** 5
cdef Py_ssize_t CHUNK = 65536  # calls selected in parallel before ordering (few barriers)

OUTCOME_FIELDS = ("reason", "caller_class", "billing_start", "plan", "rule", "group", "n_destinations",
                  "caller_city", "caller_province", "caller_carrier", "rate", "max_duration_seconds",
                  "announcement", "menu_path")
MAX_DESTINATIONS = MAX_HOPS
CALL_SECONDS_LIMIT = MAX_CALL_SECONDS


def seed_of(uint64_t seed, uint64_t i):
    """The random seed of call ``i`` of a stream seeded with ``seed``."""
    return call_seed(seed, i)


cdef inline uint64_t next_random(uint64_t *state) noexcept nogil:
    state[0] += GAMMA
    return mix64(state[0])


cdef class RoutingCore:
    cdef Tables t  # the rating tables (common.pxd)
    # routing tables (compile/routing.py ROUTING_TABLES)
    cdef const int32_t[::1] plan_max_hops
    cdef const int32_t[::1] plan_announcement
    cdef const int32_t[::1] plan_closed_announcement
    cdef const int32_t[::1] plan_first_rule
    cdef const int32_t[::1] plan_n_rules
    cdef const int32_t[::1] plan_first_group
    cdef const int32_t[::1] plan_n_groups
    cdef const int32_t[::1] plan_ivr_first
    cdef const int32_t[::1] plan_ivr_count
    cdef const int32_t[::1] plan_exact_first
    cdef const int32_t[::1] plan_exact_count
    cdef const int32_t[::1] plan_list_first
    cdef const int32_t[::1] plan_list_count
    cdef const int32_t[::1] plan_region_row
    cdef const int64_t[::1] exact_key
    cdef const int8_t[::1] exact_verdict
    cdef const int64_t[::1] list_starts
    cdef const int32_t[::1] list_values
    cdef const int8_t[:, ::1] region_verdict
    cdef const int32_t[::1] rule_group
    cdef const int64_t[::1] rule_ivr
    cdef const int32_t[::1] rule_sched_first
    cdef const int32_t[::1] rule_sched_count
    cdef const int32_t[::1] rule_region_first
    cdef const int32_t[::1] rule_region_count
    cdef const int8_t[::1] sched_weekdays
    cdef const int8_t[::1] sched_day_kinds
    cdef const int32_t[::1] sched_start_min
    cdef const int32_t[::1] sched_end_min
    cdef const int8_t[::1] region_kind
    cdef const int32_t[::1] region_id
    cdef const int64_t[::1] ivr_path
    cdef const int32_t[::1] ivr_group
    cdef const int8_t[::1] group_strategy
    cdef const int8_t[::1] group_memory
    cdef const int32_t[::1] group_overflow
    cdef const int32_t[::1] group_first_dest
    cdef const int32_t[::1] group_n_dest
    cdef const int32_t[::1] dest_line
    cdef const int32_t[::1] dest_cap
    cdef const int32_t[::1] dest_weight
    cdef const int32_t[::1] dest_class
    cdef const int64_t[::1] line_key
    # region lookup index: callers' first 5 digits -> a narrow slice of
    # region_starts (built here from the snapshot; a lookup then touches a
    # few cache lines instead of ~17 levels of a 100k-entry search)
    cdef int32_t[::1] region_bucket
    # state for decide_one (the router's mirror of the ledger)
    cdef int32_t[::1] active
    cdef int32_t[::1] cursor
    cdef object _keep

    def __init__(self, dict t, active, cursor):
        self._keep = t  # the arrays must outlive the views (snapshot map)
        self.t = Tables(t)
        self.plan_max_hops = t["route_plan_max_hops"]
        self.plan_announcement = t["route_plan_announcement"]
        self.plan_closed_announcement = t["route_plan_closed_announcement"]
        self.plan_first_rule = t["route_plan_first_rule"]
        self.plan_n_rules = t["route_plan_n_rules"]
        self.plan_first_group = t["route_plan_first_group"]
        self.plan_n_groups = t["route_plan_n_groups"]
        self.plan_ivr_first = t["route_plan_ivr_first"]
        self.plan_ivr_count = t["route_plan_ivr_count"]
        self.plan_exact_first = t["route_plan_exact_first"]
        self.plan_exact_count = t["route_plan_exact_count"]
        self.plan_list_first = t["route_plan_list_first"]
        self.plan_list_count = t["route_plan_list_count"]
        self.plan_region_row = t["route_plan_region_row"]
        self.exact_key = t["route_exact_key"]
        self.exact_verdict = t["route_exact_verdict"]
        self.list_starts = t["route_list_starts"]
        self.list_values = t["route_list_values"]
        self.region_verdict = t["route_region_verdict"]
        self.rule_group = t["route_rule_group"]
        self.rule_ivr = t["route_rule_ivr"]
        self.rule_sched_first = t["route_rule_sched_first"]
        self.rule_sched_count = t["route_rule_sched_count"]
        self.rule_region_first = t["route_rule_region_first"]
        self.rule_region_count = t["route_rule_region_count"]
        self.sched_weekdays = t["route_sched_weekdays"]
        self.sched_day_kinds = t["route_sched_day_kinds"]
        self.sched_start_min = t["route_sched_start_min"]
        self.sched_end_min = t["route_sched_end_min"]
        self.region_kind = t["route_region_kind"]
        self.region_id = t["route_region_id"]
        self.ivr_path = t["route_ivr_path"]
        self.ivr_group = t["route_ivr_group"]
        self.group_strategy = t["route_group_strategy"]
        self.group_memory = t["route_group_memory"]
        self.group_overflow = t["route_group_overflow"]
        self.group_first_dest = t["route_group_first_dest"]
        self.group_n_dest = t["route_group_n_dest"]
        self.dest_line = t["route_dest_line"]
        self.dest_cap = t["route_dest_cap"]
        self.dest_weight = t["route_dest_weight"]
        self.dest_class = t["route_dest_class"]
        self.line_key = t["route_line_key"]
        bounds = np.arange(REGION_BUCKETS + 1, dtype=np.int64) * REGION_BUCKET_SPAN
        self.region_bucket = (np.searchsorted(t["region_starts"], bounds, side="right") - 1).astype(np.int32)
        self.set_state(active, cursor)

    def set_state(self, int32_t[::1] active, int32_t[::1] cursor):
        """The arrays ``decide_one`` reads: active calls per line, round-robin
        cursor per group. Held by reference: updating them in place is seen."""
        assert active.shape[0] == self.line_key.shape[0] and cursor.shape[0] == self.group_n_dest.shape[0]
        self.active = active
        self.cursor = cursor

    # -- the rules -------------------------------------------------------
    cdef inline int32_t _city_of(self, int64_t key) noexcept nogil:
        # longest_prefix(region_starts, region_values, key), searched only
        # between the intervals covering the key's 5-digit bucket.
        cdef Py_ssize_t b = key // REGION_BUCKET_SPAN
        return self.t.region_values[last_le(self.t.region_starts, self.region_bucket[b],
                                          self.region_bucket[b + 1] + 1, key)]

    cdef int8_t _list_verdict(self, int32_t plan, int64_t caller_key) noexcept nogil:
        # Exact number first, then the longest listed prefix.
        cdef Py_ssize_t lo = self.plan_exact_first[plan], n = self.plan_exact_count[plan], i
        cdef int32_t v
        if n > 0:
            i = find_in(self.exact_key, lo, lo + n, caller_key)
            if i >= 0:
                return self.exact_verdict[i]
        lo = self.plan_list_first[plan]
        n = self.plan_list_count[plan]
        if n > 1:
            v = self.list_values[last_le(self.list_starts, lo, lo + n, caller_key)]
            if v > 0:  # -1: no listed prefix covers the caller
                return <int8_t>v
        return 0

    cdef bint _rule_matches(self, int32_t r, int32_t weekday, int32_t kind, int32_t minute,
                            int32_t city, int32_t province, int64_t path) noexcept nogil:
        cdef int32_t s, e, a, b
        cdef bint ok
        if self.rule_ivr[r] >= 0 and self.rule_ivr[r] != path:
            return False
        if self.rule_sched_count[r] > 0:
            ok = False
            s = self.rule_sched_first[r]
            for e in range(s, s + self.rule_sched_count[r]):
                if not (self.sched_weekdays[e] >> weekday) & 1 or not (self.sched_day_kinds[e] >> kind) & 1:
                    continue
                a = self.sched_start_min[e]
                b = self.sched_end_min[e]
                if (a < b and a <= minute < b) or (a > b and (minute >= a or minute < b)):
                    ok = True
                    break
            if not ok:
                return False
        if self.rule_region_count[r] > 0:
            ok = False
            s = self.rule_region_first[r]
            for e in range(s, s + self.rule_region_count[r]):
                if self.region_id[e] >= 0 and self.region_id[e] == (city if self.region_kind[e] == REGION_CITY else province):
                    ok = True
                    break
            if not ok:
                return False
        return True

    cdef int32_t _order_group(self, int32_t g, int64_t memory_key, uint64_t *rng,
                              int32_t[::1] active, int32_t[::1] cursor,
                              int32_t *out, int32_t n_out, int32_t max_out) noexcept nogil:
        # Append group g's available destinations not already listed (by
        # line) to out[n_out:max_out] in the group's order; returns the count.
        cdef int32_t cand[MAX_GROUP]
        cdef int32_t m = 0, head = 0, first = self.group_first_dest[g], n = self.group_n_dest[g]
        cdef int32_t start = 0, k, j, e, tmp, total, line
        cdef int8_t strategy = self.group_strategy[g]
        cdef uint64_t r
        cdef bint listed
        if strategy == ROUND_ROBIN and n > 0:  # a live plan's group may be left empty (accounts.view)
            start = cursor[g] % n
        for k in range(n):
            e = first + (start + k) % n
            line = self.dest_line[e]
            if active[line] >= self.dest_cap[e]:
                continue  # at its concurrency cap
            listed = False
            for j in range(n_out):
                if self.dest_line[out[j]] == line:
                    listed = True
                    break
            if not listed:
                cand[m] = e
                m += 1
        if self.group_memory[g] and memory_key != 0:
            for k in range(m):
                if self.line_key[self.dest_line[cand[k]]] == memory_key:
                    tmp = cand[k]
                    for j in range(k, 0, -1):
                        cand[j] = cand[j - 1]
                    cand[0] = tmp
                    head = 1
                    break
        if strategy == RANDOM:
            # Fisher-Yates over cand[head:m]
            for k in range(m - 1, head, -1):
                j = head + <int32_t>(next_random(rng) % <uint64_t>(k - head + 1))
                tmp = cand[k]; cand[k] = cand[j]; cand[j] = tmp
        elif strategy == WEIGHTED:
            # Draw without replacement by weight; the drawn one swaps into place k.
            for k in range(head, m - 1):
                total = 0
                for j in range(k, m):
                    total += self.dest_weight[cand[j]]
                r = next_random(rng) % <uint64_t>total
                j = k
                while r >= <uint64_t>self.dest_weight[cand[j]]:
                    r -= self.dest_weight[cand[j]]
                    j += 1
                tmp = cand[k]; cand[k] = cand[j]; cand[j] = tmp
        for k in range(m):
            if n_out >= max_out:
                break
            out[n_out] = cand[k]
            n_out += 1
        return n_out

    cdef int64_t _cost(self, const Call *c, const Outcome *o, int32_t cls, int32_t rate, int64_t billable,
                       bint money) noexcept nogil:
        # What a call of `billable` seconds from now costs: the charge
        # (money) or the billed seconds (bundle use), by the rating rules
        # (common.pxd charge_of; under the split band rule, walked across
        # the bands from now, a band without a rate costing everything).
        cdef int32_t billed, units, n_bands
        cdef int64_t charge
        if self.t.band_rule == BAND_SPLIT:
            charge = split_charge(self.t, o.package, cls, o.caller_class, c.at_ms, rate, billable,
                                         &billed, &units, &n_bands)
            if charge < 0:
                return INT64_MAX
        else:
            charge = charge_of(self.t, rate, billable, &billed, &units)
        return charge if money else billed

    cdef int32_t _max_seconds(self, const Call *c, const Outcome *o, int32_t cls, int32_t rate, int64_t budget,
                              bint money) noexcept nogil:
        # The longest call whose cost stays within budget: cost is
        # non-decreasing in seconds, so binary search; it counts the connect
        # fee, the first increment and the rounding, so a prepaid balance
        # never goes below zero.
        cdef int64_t lo = 0, hi = MAX_CALL_SECONDS, mid
        if self._cost(c, o, cls, rate, hi, money) <= budget:
            return MAX_CALL_SECONDS
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if self._cost(c, o, cls, rate, mid, money) <= budget:
                lo = mid
            else:
                hi = mid
        return <int32_t>lo

    cdef void _decide(self, const Call *c, Outcome *o, int32_t *dests,
                      int32_t[::1] active, int32_t[::1] cursor, bint reserve) noexcept nogil:
        self._select(c, o)
        self._finish(c, o, dests, active, cursor, reserve)

    cdef void _select(self, const Call *c, Outcome *o) noexcept nogil:
        # Everything up to the destination group: reads only the snapshot
        # and the call, so batches run it in parallel.
        cdef Py_ssize_t n
        cdef int32_t acc, pkg, plan, r, g, row, weekday, kind, minute, k, first
        cdef int64_t local, day, path = 0, month
        cdef int8_t st, verdict, pkind
        o.reason = R_OK
        o.plan = -1
        o.rule = -1
        o.group = -1
        o.n_dest = 0
        o.rate = -1
        o.max_duration = 0
        o.n_classes = 0
        o.limited = False
        o.announcement = -1
        o.menu_path = -1
        o.caller_class = 1
        o.billing_start = -1
        o.city = self._city_of(c.caller_key) if c.caller_key > 0 else -1
        o.province = self.t.city_province[o.city] if o.city >= 0 else -1
        o.carrier = longest_prefix(self.t.carrier_starts, self.t.carrier_values, c.caller_key) if c.caller_key > 0 else -1

        n = c.number_row
        if n < 0:
            o.reason = R_UNKNOWN_NUMBER
            return
        o.billing_start = self.t.number_billing_start[n]
        if o.city >= 0 and o.city == self.t.number_home_city[n]:
            o.caller_class = 0
        acc = self.t.number_account[n]
        if self.t.account_status[acc] == ST_SUSPENDED:
            # Suspending an account suspends its numbers: name the cause.
            o.reason = R_ACCOUNT_SUSPENDED
            return
        st = self.t.number_status[n]
        if st != ST_ACTIVE:
            o.reason = R_NUMBER_SUSPENDED if st == ST_SUSPENDED else (
                R_PENDING_VERIFICATION if st == ST_PENDING else R_NUMBER_NOT_ACTIVE)
            return
        st = self.t.account_status[acc]
        if st != ST_ACTIVE:  # an account in arrears is suspended
            o.reason = R_ACCOUNT_SUSPENDED if st == ST_SUSPENDED else (
                R_PENDING_VERIFICATION if st == ST_PENDING else R_NUMBER_NOT_ACTIVE)
            return
        if c.at_ms < self.t.account_start_ms[acc]:
            o.reason = R_PACKAGE_NOT_STARTED
            return
        plan = self.t.number_routing[n]
        o.plan = plan
        if plan < 0:
            o.reason = R_NO_ROUTE
            return

        # Caller lists: the most specific entry wins (number, prefix, city,
        # province); a whitelisted caller skips every block.
        verdict = self._list_verdict(plan, c.caller_key) if c.caller_key > 0 else 0
        if verdict == LIST_BLACK:
            o.reason = R_CALLER_BLOCKED
            return
        if verdict == 0 and o.city >= 0 and self.plan_region_row[plan] >= 0:
            if self.region_verdict[self.plan_region_row[plan], o.city] == LIST_BLACK:
                o.reason = R_REGION_BLOCKED
                return

        local = c.at_ms + LOCAL_OFFSET_MS
        day = local // MS_PER_DAY
        weekday = <int32_t>((day + 3) % 7)  # 1970-01-01 was a Thursday; Monday is 0
        row = <int32_t>(day - self.t.first_day)
        kind = self.t.day_kind[row]
        minute = <int32_t>((local % MS_PER_DAY) // 60000)

        # IVR: keys reaching a menu node play that menu; a leaf selects.
        g = -1
        if self.plan_ivr_count[plan] > 0:
            path = c.ivr_path
            k = -1
            if path >= 0:
                k = <int32_t>find_in(self.ivr_path, self.plan_ivr_first[plan],
                                     self.plan_ivr_first[plan] + self.plan_ivr_count[plan], path)
            if k < 0:
                o.reason = R_INVALID_IVR_KEY
                return
            if self.ivr_group[k] < 0:
                o.menu_path = path
            else:
                g = self.ivr_group[k]

        pkg = self.t.account_package[acc]
        pkind = self.t.package_kind[pkg]
        o.package = pkg
        o.band = band_at(self.t, self.t.package_band_set[pkg], c.at_ms)
        # Every call is limited by what it may spend (ledger: credit
        # reservation), except a bundle that sells overage (billed after).
        o.limited = pkind != BUNDLE or self.t.package_overage_rate[pkg] < 0
        if pkind == PREPAID:
            o.budget = 0 if c.at_ms >= self.t.account_expiry_ms[acc] else c.credit_left
        elif pkind == PAYG:
            o.budget = c.credit_left  # credit + credit limit - reservations (the ledger's available)
        else:
            month = self.t.day_month[row]
            o.budget = self.t.package_included_seconds[pkg] - (c.bundle_used if c.bundle_period == month else 0)
        if o.menu_path >= 0:
            # The menu plays before any destination: only an empty balance stops it.
            if o.limited and o.budget <= 0:
                o.reason = R_OUT_OF_CREDIT
            return

        first = self.plan_first_rule[plan]
        for r in range(first, first + self.plan_n_rules[plan]):
            if self._rule_matches(r, weekday, kind, minute, o.city, o.province, path):
                o.rule = r
                g = self.rule_group[r]
                break
        if g < 0:
            o.reason = R_NO_ROUTE
            o.announcement = self.plan_closed_announcement[plan]
            return
        o.group = g

    cdef void _finish(self, const Call *c, Outcome *o, int32_t *dests,
                      int32_t[::1] active, int32_t[::1] cursor, bint reserve) noexcept nogil:
        # Destinations and the longest call: reads (and with reserve,
        # changes) the live-call counts and cursors, so calls go in order.
        cdef int32_t plan = o.plan, g = o.group, cls, rate, e, line, k, m, first
        cdef uint64_t rng = c.rand
        if o.reason != R_OK or o.menu_path >= 0:
            return

        # Destinations: the group in its order, then its overflow chain.
        m = 0
        k = 0
        while g >= 0 and k < MAX_CHAIN and m < self.plan_max_hops[plan]:
            m = self._order_group(g, c.memory_key, &rng, active, cursor, dests, m, self.plan_max_hops[plan])
            g = self.group_overflow[g]
            k += 1
        o.n_dest = m
        if m == 0:
            # Busy only when the chain has destinations: a chain with none
            # (a live number whose bound destinations are all unverified)
            # routes nowhere, whatever the load (reference_routing, rule 5).
            g = o.group
            k = 0
            e = 0
            while g >= 0 and k < MAX_CHAIN:
                e += self.group_n_dest[g]
                g = self.group_overflow[g]
                k += 1
            if e == 0:
                o.reason = R_NO_ROUTE
                o.announcement = self.plan_closed_announcement[plan]
            else:
                o.reason = R_ALL_DESTINATIONS_BUSY
                o.announcement = self.plan_announcement[plan]
            return

        # Longest call: what the budget pays for at the DEAREST listed
        # destination (overflow included), so a call cut at that limit
        # stays within the budget wherever it is answered. A destination
        # whose class has no rate is not priced (its CDR is a no_rate reject).
        if o.limited:
            for k in range(m):
                cls = self.dest_class[dests[k]]
                rate = self.t.rate_table[o.package, cls, o.caller_class, o.band] if cls >= 0 else -1
                if k == 0 and rate < 0:
                    o.rate = -1
                    o.reason = R_NO_RATE
                    o.n_dest = 0  # a refused call lists no destination
                    return
                if rate < 0:
                    continue
                for first in range(o.n_classes):
                    if o.classes[first] == cls:  # same class, same cost
                        rate = -1
                        break
                if rate < 0:
                    continue
                o.classes[o.n_classes] = cls
                o.n_classes += 1
                line = self._max_seconds(c, o, cls, rate, o.budget if o.budget > 0 else 0,
                                         self.t.package_kind[o.package] != BUNDLE)
                if o.n_classes == 1 or line < o.max_duration:
                    o.max_duration = line
                    o.rate = rate
            rate = o.rate
            if o.max_duration <= self.t.rate_free_seconds[rate]:
                o.reason = R_OUT_OF_CREDIT
                o.max_duration = 0
                o.n_dest = 0
                return

        if reserve:
            # As if the call starts at its first destination (the started
            # event's rules, see router.RouteState.started).
            line = self.dest_line[dests[0]]
            active[line] += 1
            first = self.plan_first_group[plan]
            for g in range(first, first + self.plan_n_groups[plan]):
                if self.group_strategy[g] != ROUND_ROBIN:
                    continue
                for e in range(self.group_first_dest[g], self.group_first_dest[g] + self.group_n_dest[g]):
                    if self.dest_line[e] == line:
                        cursor[g] = (e - self.group_first_dest[g] + 1) % self.group_n_dest[g]

    # -- Python faces ----------------------------------------------------
    def decide_one(self, int64_t number_key, int64_t caller_key, int64_t at_ms, int64_t ivr_path=0,
                   int64_t memory_key=0, int64_t credit_left=0, int64_t bundle_used=0,
                   int32_t bundle_period=-1, uint64_t seed=0, uint64_t index=0, bint with_classes=False):
        """One call against the state set by ``set_state`` (not changed).
        Returns (outcome tuple in OUTCOME_FIELDS order, destination entry ids),
        and with ``with_classes`` (package, distinct destination classes of
        the listed destinations that priced the limit; () when not limited)."""
        cdef Call c
        cdef Outcome o
        cdef int32_t dests[MAX_HOPS]  # on the stack: threads may call at once
        c.number_key = number_key
        c.number_row = find_exact(self.t.number_key, number_key)
        c.caller_key = caller_key
        c.at_ms = at_ms
        c.ivr_path = ivr_path
        c.memory_key = memory_key
        c.credit_left = credit_left
        c.bundle_used = bundle_used
        c.bundle_period = bundle_period
        c.rand = call_seed(seed, index)
        with nogil:
            self._decide(&c, &o, dests, self.active, self.cursor, False)
        outcome = ((o.reason, o.caller_class, o.billing_start, o.plan, o.rule, o.group, o.n_dest, o.city,
                    o.province, o.carrier, o.rate, o.max_duration, o.announcement, o.menu_path),
                   [dests[k] for k in range(o.n_dest)])
        if with_classes:
            priced = o.limited and o.reason == R_OK and o.menu_path < 0
            return outcome + ((o.package, tuple([o.classes[k] for k in range(o.n_classes)])) if priced else (),)
        return outcome

    def grant(self, int32_t package, int8_t caller_class, int64_t at_ms, classes, int64_t budget, bint money):
        """(seconds, cost): the longest billable time from ``at_ms`` that a
        call of this package and caller class, to each destination class in
        ``classes`` (the ones a decision listed), pays within ``budget``
        (minor units when ``money``, else bundle seconds), at most 86400 s;
        and the dearest class's cost of that time (charge incl. connect fee,
        or billed seconds). The reservation rule of ``rating_core.router``."""
        cdef Call c
        cdef Outcome o
        cdef int32_t cls, rate
        cdef int64_t best = MAX_CALL_SECONDS, s
        c.at_ms = at_ms
        o.package = package
        o.caller_class = caller_class
        o.band = band_at(self.t, self.t.package_band_set[package], at_ms)
        if budget < 0:
            budget = 0
        for cls in classes:
            rate = self.t.rate_table[package, cls, caller_class, o.band]
            if rate >= 0:
                s = self._max_seconds(&c, &o, cls, rate, budget, money)
                if s < best:
                    best = s
        return best, self.cost(package, caller_class, at_ms, classes, best, money)

    def cost(self, int32_t package, int8_t caller_class, int64_t at_ms, classes, int64_t seconds, bint money):
        """The dearest of ``classes``' costs of ``seconds`` billable seconds
        from ``at_ms`` (see ``grant``)."""
        cdef Call c
        cdef Outcome o
        cdef int32_t cls, rate
        cdef int64_t cost = 0, x
        c.at_ms = at_ms
        o.package = package
        o.caller_class = caller_class
        o.band = band_at(self.t, self.t.package_band_set[package], at_ms)
        for cls in classes:
            rate = self.t.rate_table[package, cls, caller_class, o.band]
            if rate >= 0:
                x = self._cost(&c, &o, cls, rate, seconds, money)
                if x > cost:
                    cost = x
        return cost

    # -- a bundle that sells overage (router: bundle overage at Authorize) --
    cdef int64_t _billed_dearest(self, Call *c, Outcome *o, classes, int64_t seconds):
        # The most billed seconds any of `classes` gives `seconds` of billable time.
        cdef int32_t cls, rate
        cdef int64_t most = 0, x
        for cls in classes:
            rate = self.t.rate_table[o.package, cls, o.caller_class, o.band]
            if rate >= 0:
                x = self._cost(c, o, cls, rate, seconds, False)
                if x > most:
                    most = x
        return most

    cdef int64_t _over_charge(self, int32_t package, int64_t seconds) noexcept nogil:
        # The overage part of a bundle call: a call of its own under the
        # package's overage rate (rating.pyx pass 2), 0 when none is sold.
        cdef int32_t r = self.t.package_overage_rate[package], billed, units
        if r < 0 or seconds <= 0:
            return 0
        if seconds > MAX_CALL_SECONDS * 4:
            return INT64_MAX  # beyond any call: never affordable
        return charge_of(self.t, r, seconds, &billed, &units)

    def overage_charge(self, int32_t package, int64_t seconds):
        """The charge (minor units) of ``seconds`` beyond a bundle under the
        package's overage rate; 0 when the package sells no overage."""
        return self._over_charge(package, seconds)

    def bundle_hold(self, int32_t package, int8_t caller_class, int64_t at_ms, classes, int64_t seconds,
                    int64_t seconds_left, int64_t slack_in, int64_t slack_over):
        """(bundle seconds, money in minor units) held for ``seconds`` of
        billable time of a call on a bundle that sells overage: the dearest
        listed class's billed seconds B; min(B, ``seconds_left``) from the
        bundle; the overage charge of the rest plus ``slack_over`` when there
        is a rest, else ``slack_in`` (the router's rule: README credit
        reservation)."""
        cdef Call c
        cdef Outcome o
        cdef int64_t b, s, left = seconds_left if seconds_left > 0 else 0, m
        c.at_ms = at_ms
        o.package = package
        o.caller_class = caller_class
        o.band = band_at(self.t, self.t.package_band_set[package], at_ms)
        b = self._billed_dearest(&c, &o, classes, seconds)
        s = b if b < left else left
        if b > s:
            m = self._over_charge(package, b - s)
            m = INT64_MAX if m > INT64_MAX - slack_over else m + slack_over
        else:
            m = slack_in
        return s, m

    def bundle_grant(self, int32_t package, int8_t caller_class, int64_t at_ms, classes, int64_t seconds_left,
                     int64_t money_left, int64_t slack_in, int64_t slack_over, int64_t limit):
        """(seconds, bundle seconds held, money held): the longest billable
        time up to ``limit`` whose ``bundle_hold`` money fits ``money_left``
        (the hold is non-decreasing in time: binary search); (0, 0, 0) when
        not even ``slack_in`` fits."""
        cdef int64_t lo = 0, hi = limit, mid
        if self.bundle_hold(package, caller_class, at_ms, classes, 0, seconds_left, slack_in, slack_over)[1] > money_left:
            return 0, 0, 0
        if self.bundle_hold(package, caller_class, at_ms, classes, hi, seconds_left, slack_in, slack_over)[1] <= money_left:
            lo = hi
        else:
            while hi - lo > 1:
                mid = (lo + hi) >> 1
                if self.bundle_hold(package, caller_class, at_ms, classes, mid, seconds_left, slack_in,
                                    slack_over)[1] <= money_left:
                    lo = mid
                else:
                    hi = mid
        s, m = self.bundle_hold(package, caller_class, at_ms, classes, lo, seconds_left, slack_in, slack_over)
        return lo, s, m

    def number_index(self, int64_t number_key):
        """Row of a 400 number in the snapshot, or -1."""
        return find_exact(self.t.number_key, number_key)

    def number_rows(self, const int64_t[::1] keys):
        """``number_index`` of every key (int64 array, -1: unknown)."""
        out = np.empty(keys.shape[0], np.int64)
        cdef int64_t[::1] o = out
        cdef Py_ssize_t i
        with nogil:
            for i in range(keys.shape[0]):
                o[i] = find_exact(self.t.number_key, keys[i])
        return out

    def decide_batch(self, dict calls, uint64_t seed=0, uint64_t index=0, bint reserve=True,
                     active=None, cursor=None, int threads=2):
        """Columns in (``number_key``, ``caller_key``, ``at_ms``, ``ivr_path``,
        ``memory_key``, ``credit_left``, ``bundle_used``, ``bundle_period``;
        optionally ``number_row``: ``number_rows(number_key)``, when the edge
        has it already),
        columns out (OUTCOME_FIELDS and ``destinations`` (n, MAX_HOPS),
        -1 padded). ``active`` / ``cursor`` are working copies, changed in
        place when ``reserve`` (default: copies of the state arrays).

        Calls go in chunks: the selection (status, lists, schedule, rules)
        runs on ``threads`` threads, then destinations are ordered call by
        call, in input order, which is what ``reserve`` needs."""
        cdef const int64_t[::1] number_key = calls["number_key"]
        # rows the edge has already found (Router.prepare_batch), else found here
        cdef bint have_rows = "number_row" in calls
        cdef const int64_t[::1] number_row = calls["number_row"] if have_rows else calls["number_key"]
        cdef const int64_t[::1] caller_key = calls["caller_key"]
        cdef const int64_t[::1] at_ms = calls["at_ms"]
        cdef const int64_t[::1] ivr_path = calls["ivr_path"]
        cdef const int64_t[::1] memory_key = calls["memory_key"]
        cdef const int64_t[::1] credit_left = calls["credit_left"]
        cdef const int64_t[::1] bundle_used = calls["bundle_used"]
        cdef const int32_t[::1] bundle_period = calls["bundle_period"]
        cdef Py_ssize_t n = number_key.shape[0], i
        cdef int32_t k
        if active is None:
            active = np.array(self.active, np.int32)
        if cursor is None:
            cursor = np.array(self.cursor, np.int32)
        cdef int32_t[::1] act = active
        cdef int32_t[::1] cur = cursor
        assert act.shape[0] == self.line_key.shape[0] and cur.shape[0] == self.group_n_dest.shape[0]
        for name in ("caller_key", "at_ms", "ivr_path", "memory_key", "credit_left", "bundle_used", "bundle_period") + (
                ("number_row",) if have_rows else ()):
            if len(calls[name]) != n:
                raise ValueError(f"call column {name}: {len(calls[name])} rows, number_key has {n}")
        out = {
            "reason": np.empty(n, np.int8), "caller_class": np.empty(n, np.int8),
            "billing_start": np.empty(n, np.int8),
            "plan": np.empty(n, np.int32), "rule": np.empty(n, np.int32), "group": np.empty(n, np.int32),
            "n_destinations": np.empty(n, np.int32), "caller_city": np.empty(n, np.int32),
            "caller_province": np.empty(n, np.int32), "caller_carrier": np.empty(n, np.int32),
            "rate": np.empty(n, np.int32), "max_duration_seconds": np.empty(n, np.int32),
            "announcement": np.empty(n, np.int32), "menu_path": np.empty(n, np.int64),
            "destinations": np.full((n, MAX_HOPS), -1, np.int32),
        }
        cdef int8_t[::1] o_reason = out["reason"], o_cc = out["caller_class"], o_bs = out["billing_start"]
        cdef int32_t[::1] o_plan = out["plan"], o_rule = out["rule"], o_group = out["group"]
        cdef int32_t[::1] o_n = out["n_destinations"], o_city = out["caller_city"]
        cdef int32_t[::1] o_prov = out["caller_province"], o_carrier = out["caller_carrier"]
        cdef int32_t[::1] o_rate = out["rate"], o_max = out["max_duration_seconds"], o_ann = out["announcement"]
        cdef int64_t[::1] o_menu = out["menu_path"]
        cdef int32_t[:, ::1] o_dest = out["destinations"]
        cdef int32_t dests[MAX_HOPS]
        cdef Py_ssize_t start, end, j
        cdef Call *cs = <Call *>malloc(CHUNK * sizeof(Call))
        cdef Outcome *os = <Outcome *>malloc(CHUNK * sizeof(Outcome))
        if cs == NULL or os == NULL:
            free(cs)
            free(os)
            raise MemoryError()
        try:
            with nogil:
                start = 0
                while start < n:
                    end = start + CHUNK if start + CHUNK < n else n
                    for i in prange(start, end, num_threads=threads, schedule="static"):
                        j = i - start
                        cs[j].number_key = number_key[i]
                        cs[j].number_row = number_row[i] if have_rows else find_exact(self.t.number_key, number_key[i])
                        cs[j].caller_key = caller_key[i]
                        cs[j].at_ms = at_ms[i]
                        cs[j].ivr_path = ivr_path[i]
                        cs[j].memory_key = memory_key[i]
                        cs[j].credit_left = credit_left[i]
                        cs[j].bundle_used = bundle_used[i]
                        cs[j].bundle_period = bundle_period[i]
                        cs[j].rand = call_seed(seed, index + i)
                        self._select(&cs[j], &os[j])
                    for i in range(start, end):
                        j = i - start
                        self._finish(&cs[j], &os[j], dests, act, cur, reserve)
                        o_reason[i] = os[j].reason
                        o_cc[i] = os[j].caller_class
                        o_bs[i] = os[j].billing_start
                        o_plan[i] = os[j].plan
                        o_rule[i] = os[j].rule
                        o_group[i] = os[j].group
                        o_n[i] = os[j].n_dest
                        o_city[i] = os[j].city
                        o_prov[i] = os[j].province
                        o_carrier[i] = os[j].carrier
                        o_rate[i] = os[j].rate
                        o_max[i] = os[j].max_duration
                        o_ann[i] = os[j].announcement
                        o_menu[i] = os[j].menu_path
                        for k in range(os[j].n_dest):
                            o_dest[i, k] = dests[k]
                    start = end
        finally:
            free(cs)
            free(os)
        return out
