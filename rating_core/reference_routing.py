"""The routing rules in plain Python, from the catalog model: the
specification ``kernels/routing.pyx`` is tested against.

For one call to a 400 number, in this order (the first that fails decides):

1. The number must be in the catalog (``unknown_number``), its account
   not suspended (``account_suspended``: suspending an account suspends its
   numbers, and the reason names the cause), its status and its account's
   status active (``number_suspended``, ``account_suspended``,
   ``pending_verification``, ``number_not_active`` for frozen or closed),
   and the call no earlier than the account's package start
   (``package_not_started``). A number without a routing plan has nowhere
   to go (``no_route``).
2. Caller lists. The most specific entry that names the caller decides:
   the exact number, else the longest listed prefix, else the caller's
   city, else its province. White beats black only on the very same entry;
   a whitelisted caller skips every block. Black on a number or prefix:
   ``caller_blocked``; on a city or province: ``region_blocked``. A
   withheld caller, or one whose region is unknown, matches no region.
3. IVR. With a menu, the keys pressed so far must be a key path of it
   (``invalid_ivr_key``); a path to a submenu (the empty path is the top
   menu) is allowed with that menu to play and no destination yet; a path
   to a leaf selects the leaf's group unless a rule says otherwise.
4. Rules, in order: the first whose conditions all hold picks its group.
   Schedule: any segment holds, each segment = weekday set AND day-kind set
   (official calendar: an adjusted working Saturday is a workday, a public
   holiday a holiday) AND a local time window [start, end), which wraps
   past midnight when start > end. Caller regions: the caller's city or
   province is listed. IVR: the keys pressed equal the rule's path. No rule
   and no IVR leaf: ``no_route`` (with the plan's closed announcement).
5. Destinations: the group's destinations, then its overflow group's, and
   so on, each group in its own order, skipping destinations at their
   concurrency cap and numbers already listed, at most ``max_hops``. None
   left: ``all_destinations_busy`` (with the plan's announcement); but when
   the groups hold no destination at all (a live number whose bound
   destinations are all unverified), ``no_route`` (with the plan's closed
   announcement): no load would ever free a line.
   Group orders: sequential (as written); round robin (from the group's
   cursor, wrapping); random (a shuffle); weighted (drawn one by one by
   weight, without replacement). With caller memory, the destination that
   last answered this caller comes first when it is available.
6. Longest call, for every account but a bundle that sells overage:
   prepaid (the available credit, zero once expired), pay-as-you-go (the
   available credit within its credit limit) or a bundle without overage
   (seconds left this month): for each listed destination (overflow
   included) the rate the rating rules would choose for its class, the
   caller's class and the band now (none for the first: ``no_rate``; none
   for a later one: not priced); the longest billable time whose charge
   (connect fee, increments, rounding) or billed seconds stay within the
   balance, at most 86400 s; the smallest of these (the dearest
   destination; the first listed on a tie) is the limit and its rate is
   reported. If that is no more than the rate's free seconds:
   ``out_of_credit``. A bundle that sells overage: 0, no limit.
   At an IVR menu only an empty balance stops the call.

Randomness comes from the call's seed through splitmix64 (``mix64``),
exactly as the kernel draws it, so a seed reproduces a decision.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .catalog.routing import WEEKDAYS, Strategy, minute_of_day
from .catalog.schema import Catalog
from .routing_layout import REASONS  # noqa: F401 - the reason names, re-exported for the reference tests
from .reference import (
    Regions,
    add_months,
    choose_rate,
    day_kind,
    local_midnight_ms,
    local_time,
    longest_prefix,
    charge_of,
    time_band,
)

CALL_SECONDS_LIMIT = 86_400
MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def call_seed(seed: int, i: int) -> int:
    """The seed of call ``i`` of a stream (as ``kernels.routing.seed_of``)."""
    return mix64((seed + (i + 1) * GAMMA) & MASK)


class Draws:
    def __init__(self, seed: int):
        self.state = seed

    def next(self) -> int:
        self.state = (self.state + GAMMA) & MASK
        return mix64(self.state)


@dataclass
class RouteCall:
    number: str
    caller: str | None  # normal form; None when withheld
    at_ms: int
    ivr_keys: str = ""
    memory: str | None = None  # destination that last answered this caller here
    credit_left: int = 0
    bundle_used: int = 0
    bundle_period: int = -1
    seed: int = 0  # this call's seed (call_seed(stream seed, i))


@dataclass
class RouteState:
    active: dict[str, int] = field(default_factory=dict)  # destination number -> live calls
    cursor: dict[tuple[str, str], int] = field(default_factory=dict)  # (plan, group) -> next start


@dataclass
class RouteOutcome:
    reason: str = "ok"
    plan: str | None = None
    rule: int | None = None  # index in the plan's rules
    group: str | None = None
    destinations: list[tuple[str, int]] = field(default_factory=list)  # (number, ring timeout)
    caller_city: str | None = None
    caller_province: str | None = None
    caller_carrier: str | None = None
    caller_class: str = "out_of_town"
    billing_start: str | None = None
    rate: str | None = None
    max_duration_seconds: int = 0
    announcement: str | None = None
    menu: str | None = None  # key path of the menu to play


def _region_entry(name: str, regions: Regions) -> tuple[str, str]:
    provinces = set(regions.province_of_city.values())
    kind, _, bare = name.partition(":")
    if bare and kind in ("city", "province"):
        return kind, bare
    return ("province", name) if name in provinces else ("city", name)


def list_verdict(plan, caller: str | None, city: str | None, province: str | None, regions: Regions) -> tuple[str | None, str]:
    """(black / white / None, the kind of entry that decided)."""
    if caller is None:
        return None, ""
    if caller in plan.whitelist.numbers:
        return "white", "number"
    if caller in plan.blacklist.numbers:
        return "black", "number"
    for length in range(len(caller), 0, -1):
        p = caller[:length]
        if p in plan.whitelist.prefixes:
            return "white", "prefix"
        if p in plan.blacklist.prefixes:
            return "black", "prefix"
    for kind, value in (("city", city), ("province", province)):
        if value is None:
            continue
        for verdict, lst in (("white", plan.whitelist), ("black", plan.blacklist)):
            if (kind, value) in [_region_entry(r, regions) for r in lst.regions]:
                return verdict, "region"
    return None, ""


def segment_holds(seg, weekday: int, kind: str, minute: int) -> bool:
    if seg.weekdays is not None and WEEKDAYS[weekday] not in seg.weekdays:
        return False
    if seg.day_kinds is not None and kind not in seg.day_kinds:
        return False
    a, b = minute_of_day(seg.start), minute_of_day(seg.end)
    return a <= minute < b if a < b else (minute >= a or minute < b)


def rule_holds(rule, weekday, kind, minute, city, province, keys, regions: Regions) -> bool:
    if rule.ivr is not None and rule.ivr != keys:
        return False
    if rule.schedule is not None and not any(segment_holds(s, weekday, kind, minute) for s in rule.schedule):
        return False
    if rule.caller_regions is not None:
        named = [_region_entry(r, regions) for r in rule.caller_regions]
        if ("city", city) not in named and ("province", province) not in named:
            return False
    return True


def order_group(plan_name, plan, gname, call: RouteCall, state: RouteState, listed: list, draws: Draws) -> list:
    g = plan.groups[gname]
    n = len(g.destinations)
    start = state.cursor.get((plan_name, gname), 0) % n if g.strategy is Strategy.round_robin and n else 0
    cands = []
    for k in range(n):
        d = g.destinations[(start + k) % n]
        cap = d.max_calls if d.max_calls is not None else float("inf")
        if state.active.get(d.number, 0) >= cap or d.number in [x.number for x in listed]:
            continue
        cands.append(d)
    head = 0
    if g.caller_memory and call.memory is not None:
        for k, d in enumerate(cands):
            if d.number == call.memory:
                cands.insert(0, cands.pop(k))
                head = 1
                break
    if g.strategy is Strategy.random:
        for k in range(len(cands) - 1, head, -1):
            j = head + draws.next() % (k - head + 1)
            cands[k], cands[j] = cands[j], cands[k]
    elif g.strategy is Strategy.weighted:
        for k in range(head, len(cands) - 1):
            r = draws.next() % sum(d.weight for d in cands[k:])
            j = k
            while r >= cands[j].weight:
                r -= cands[j].weight
                j += 1
            cands[k], cands[j] = cands[j], cands[k]
    return cands


def max_seconds(cost_of, budget: int, money: bool) -> int:
    """Longest billable seconds whose charge (money) or billed seconds stay
    within ``budget``; ``cost_of(s)`` is (billed, units, charge) or None (a
    band without a rate: beyond any budget); cost never decreases with time."""
    def cost(s):
        priced = cost_of(s)
        if priced is None:
            return float("inf")
        billed, _units, charge = priced
        return charge if money else billed

    if cost(CALL_SECONDS_LIMIT) <= budget:
        return CALL_SECONDS_LIMIT
    lo, hi = 0, CALL_SECONDS_LIMIT  # cost(lo) <= budget < cost(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cost(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


def route(catalog: Catalog, regions: Regions, call: RouteCall, state: RouteState, reserve: bool = False) -> RouteOutcome:
    """The decision for one call (see the module doc). With ``reserve``,
    ``state`` changes as if the call started at its first destination."""
    out = RouteOutcome()
    city = longest_prefix(regions.city_of_prefix, call.caller)
    out.caller_city = city
    out.caller_province = regions.province_of_city.get(city) if city else None
    out.caller_carrier = longest_prefix(regions.carrier_of_prefix, call.caller)

    owner = number = None
    for aid, acc in catalog.accounts.items():
        for num in acc.numbers:
            if num.number == call.number:
                owner, number = aid, num
    if number is None or owner is None:
        out.reason = "unknown_number"
        return out
    account = catalog.accounts[owner]
    out.billing_start = number.billing_start.value
    out.caller_class = "local" if city is not None and city == number.home_city else "out_of_town"
    if account.status.value == "suspended":  # its numbers are suspended with it: name the cause
        out.reason = "account_suspended"
        return out
    for status, suspended in ((number.status.value, "number_suspended"), (account.status.value, "account_suspended")):
        if status != "active":
            out.reason = {"suspended": suspended, "pending_verification": "pending_verification"}.get(status, "number_not_active")
            return out
    if call.at_ms < local_midnight_ms(account.package_start):
        out.reason = "package_not_started"
        return out
    if number.routing is None:
        out.reason = "no_route"
        return out
    plan = catalog.routing_plans[number.routing]
    out.plan = number.routing

    verdict, entry = list_verdict(plan, call.caller, city, out.caller_province, regions)
    if verdict == "black":
        out.reason = "region_blocked" if entry == "region" else "caller_blocked"
        return out

    when = local_time(call.at_ms)
    weekday, minute = when.weekday(), when.hour * 60 + when.minute
    kind = day_kind(when.date(), catalog)

    group = None
    keys = ""
    if plan.ivr is not None:
        paths = plan.ivr.paths()
        keys = call.ivr_keys
        if keys not in paths:
            out.reason = "invalid_ivr_key"
            return out
        option = paths[keys]
        if option is None:
            out.menu = keys
        else:
            group = option.group

    package = catalog.packages[account.package]
    pkind = package.kind.value
    limited = pkind != "bundle" or package.overage_rate is None
    if pkind == "prepaid":
        expiry = local_midnight_ms(add_months(account.package_start, package.period_months))
        budget = 0 if call.at_ms >= expiry else call.credit_left
    elif pkind == "payg":
        budget = call.credit_left  # the ledger's available: credit + credit limit - reservations
    else:
        month = when.year * 12 + when.month - 1
        budget = package.included_minutes * 60 - (call.bundle_used if call.bundle_period == month else 0)
    if out.menu is not None:
        if limited and budget <= 0:
            out.reason = "out_of_credit"
        return out

    for i, rule in enumerate(plan.rules):
        if rule_holds(rule, weekday, kind, minute, city, out.caller_province, keys, regions):
            out.rule, group = i, rule.group
            break
    if group is None:
        out.reason = "no_route"
        out.announcement = plan.closed_announcement or plan.announcement
        return out
    out.group = group

    draws = Draws(call.seed)
    listed: list = []
    hunt: str | None = group
    while hunt is not None and len(listed) < plan.max_hops:
        listed += order_group(out.plan, plan, hunt, call, state, listed, draws)
        hunt = plan.groups[hunt].overflow
    listed = listed[: plan.max_hops]
    out.destinations = [(d.number, d.ring_timeout) for d in listed]
    if not listed:
        chain, hunt = [], group
        while hunt is not None and hunt not in chain:
            chain.append(hunt)
            hunt = plan.groups[hunt].overflow
        if not any(plan.groups[g].destinations for g in chain):  # nothing to route to, busy or not
            out.reason = "no_route"
            out.announcement = plan.closed_announcement or plan.announcement
        else:
            out.reason = "all_destinations_busy"
            out.announcement = plan.announcement
        return out

    if limited:
        band = time_band(catalog, account.package, when)
        priced = []  # (seconds the budget pays for, rate name, class): listed order, distinct classes
        for k, d in enumerate(listed):
            cls = longest_prefix(catalog.destination_prefixes, d.number)
            name = choose_rate(catalog, account.package, cls, out.caller_class, band) if cls else None
            if name is None and k == 0:
                out.reason = "no_rate"
                out.destinations = []  # a refused call lists no destination
                return out
            if name is None or cls in [c for _, _, c in priced]:
                continue
            # As if billing started now (under the split rule the walk crosses
            # the bands from now on).
            seconds = max_seconds(
                lambda s, cls=cls, name=name: charge_of(catalog, account.package, cls, out.caller_class,
                                                        call.at_ms, name, s),
                max(budget, 0), pkind != "bundle")
            priced.append((seconds, name, cls))
        # The dearest destination sets the limit (the first listed on a tie).
        out.max_duration_seconds, out.rate, _cls = min(priced, key=lambda p: p[0])
        rate = catalog.rates[out.rate]
        if out.max_duration_seconds <= rate.free_seconds:
            out.reason = "out_of_credit"
            out.max_duration_seconds = 0
            out.destinations = []
            return out

    if reserve:
        first = listed[0].number
        state.active[first] = state.active.get(first, 0) + 1
        for gname, g in plan.groups.items():
            if g.strategy is Strategy.round_robin:
                for k, d in enumerate(g.destinations):
                    if d.number == first:
                        state.cursor[(out.plan, gname)] = (k + 1) % len(g.destinations)
    return out
