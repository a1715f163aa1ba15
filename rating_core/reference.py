"""The rating rules, in plain Python: the definition the kernel is checked against.

This module is slow on purpose. It reads the catalog model (not the
compiled arrays), looks prefixes up in dicts, walks a call's increments one
at a time and sums exact fractions. ``kernels/rating.pyx`` computes the same
thing over arrays with closed forms; tests/test_rating_kernel.py checks,
with random catalogs and calls, that the two agree on every field.

Amounts are integers in minor units (1/10000 yuan). Local time is
Asia/Shanghai. Per call, independently:

1. **Number.** The 400 number must be in the catalog (else
   ``unknown_number``) and ``active`` (else ``number_not_active``). It gives
   the account and the account's package. A call that starts before the
   package start (local midnight of ``package_start``) is
   ``package_not_started``.
2. **Destination class**: the class of the longest prefix of the
   forwarded-to number (``destination_prefixes``); none is
   ``no_destination_class``.
3. **Caller region**: city and carrier by longest prefix of the caller's
   number in the region data; province from the city. The caller is
   ``local`` when the city is known and is the number's ``home_city``,
   else ``out_of_town`` (an unknown region counts as out of town).
4. **Billing start** (``billing_start_ms``): ``ring`` the call's start;
   ``ivr_answer`` the IVR answer, else the agent answer; ``agent_answer`` the
   agent answer; none: not answered.
5. **Time band** (``time_band``): in the package's band set, the first band
   whose day kinds include the kind of the local date and whose window
   (``TimeBand.covers``, wrapping midnight when from > to) holds the local
   minute, at the billing start (the CDR's start when unanswered). Day
   kinds: the catalog's ``day_overrides``, else chinese_calendar (an
   official holiday is ``holiday``, other days off ``weekend``, days worked
   ``workday``, adjusted working weekends included), else, outside
   chinese_calendar's years, Saturday and Sunday are ``weekend``.
6. **Rate**: the first of the package's rate rules whose destination,
   caller and band conditions all match; none is ``no_rate``.
7. **Billable seconds** (``billable_seconds``): milliseconds from the
   billing start to the end, made whole by the rate's rule (else the
   catalog's): truncate, ceil or round half up.
8. **Charge** (``charge_of``, ``walk``): 0 (no units, no connect fee) when
   billable is 0 or at most the rate's ``free_seconds``. Otherwise the call
   lasts d = max(billable, ``min_billable_seconds``) and is consumed in
   increments: an increment starting at elapsed t uses the tier with the
   greatest ``start`` <= t of the rate in force, lasts its ``increment`` and
   costs exactly ``price * increment / unit``. The rate in force is the
   call's rate under the ``billing_start`` band rule; under ``split`` it is
   the package's rate for the band in force at the increment's start (none:
   the call is ``no_rate``). Increments are added while t < d;
   ``billed_seconds`` is the final t, ``units`` the number of increments.
   The exact total is rounded ONCE, by the first rate's ``rounding``
   (``up``: ceiling, ``half_up``: halves up, ``down``: floor), then its
   ``connect_fee`` is added. This is the only rounding of a call.

Then per account, over the rated calls in chronological order of start
(ties keep input order), by the package kind:

- ``payg``: the charge stands; nothing is consumed.
- ``prepaid``: credit left expires (becomes 0) from local midnight of
  ``package_start + period_months`` (a day past the month's end is clamped
  to its last day). The call takes min(credit, charge) from the credit;
  the rest is ``overage`` (arrears). ``balance_after`` is the credit left.
- ``bundle``: the allowance is ``included_minutes * 60`` seconds per
  calendar month (local time, of the billing start, as the band). The call
  takes min(seconds left, billed seconds) from it; the seconds beyond are
  priced as a call of that many billable seconds under the package's
  ``overage_rate`` (none: 0). That replaces the call rate's charge;
  ``overage`` = that charge. ``balance_after`` is the seconds left in the
  month's allowance (seconds left never count below 0, should a smaller
  allowance meet a larger recorded use). A call of a month before the
  account's latest (a late CDR, or one answered before midnight rated
  after one answered past it) draws from that month's own allowance: what
  that month's calls left (``Balance.late_used``, the ledger's
  ``bundle_usage``; none recorded: all of it), never the latest month's.

Rows that are not rated carry zero amounts; ``rate`` is reported only on
rated rows; the other names are reported whenever they could be found.
"""
from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass, field
from fractions import Fraction
from zoneinfo import ZoneInfo

import chinese_calendar

from .catalog.schema import Account, Catalog, Number, Rate

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Call:
    """A CDR after the edge: numbers in normal form (None: missing or not
    a number), times in epoch ms (None: did not happen)."""

    number: str | None
    caller: str | None
    forwarded: str | None
    start_ms: int
    end_ms: int
    ivr_answer_ms: int | None = None
    agent_answer_ms: int | None = None


@dataclass
class Balance:
    """An account's state between calls."""

    credit_left: int = 0  # prepaid credit, minor units
    bundle_period: int = -1  # month the bundle use counts: year * 12 + month - 1
    bundle_used: int = 0  # seconds of the allowance used in that month
    # Seconds used of each earlier month's allowance (month -> seconds), kept
    # for late calls (the ledger's ``bundle_usage``; README "Late CDRs").
    late_used: dict[int, int] = field(default_factory=dict)


@dataclass
class Rated:
    status: str = "rated"
    account: str | None = None
    package: str | None = None
    destination_class: str | None = None
    caller_city: str | None = None
    caller_province: str | None = None
    caller_carrier: str | None = None
    caller_class: str | None = None
    time_band: str | None = None
    rate: str | None = None
    billable_seconds: int = 0
    billed_seconds: int = 0
    units: int = 0
    charge: int = 0
    credit_consumed: int = 0
    bundle_seconds_consumed: int = 0
    overage: int = 0
    balance_after: int = 0


@dataclass
class Regions:
    """Region data in normal number form: prefix -> city, prefix -> carrier."""

    city_of_prefix: dict[str, str]
    province_of_city: dict[str, str]
    carrier_of_prefix: dict[str, str]

    @classmethod
    def from_source(cls, src) -> Regions:
        """From ``rating_core.compile.regions.region_source()``."""
        return cls(
            city_of_prefix={p: src.cities[c] for p, c in src.city_prefixes.items()},
            province_of_city={name: src.provinces[src.city_province[c]] for c, name in enumerate(src.cities)},
            carrier_of_prefix={p: src.carriers[c] for p, c in src.carrier_prefixes.items()},
        )


def longest_prefix(table: dict[str, str], number: str | None) -> str | None:
    if number is None:
        return None
    for length in range(len(number), 0, -1):
        if number[:length] in table:
            return table[number[:length]]
    return None


def local_time(ms: int) -> dt.datetime:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)).astimezone(SHANGHAI)


def local_midnight_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).timestamp()) * 1000


def add_months(day: dt.date, months: int) -> dt.date:
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last))


def day_kind(day: dt.date, catalog: Catalog) -> str:
    for override in catalog.day_overrides:
        if override.date == day:
            return override.kind.value
    try:
        day_off, holiday_name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:  # a year chinese_calendar does not know
        return "weekend" if day.weekday() >= 5 else "workday"
    if not day_off:
        return "workday"
    return "holiday" if holiday_name is not None else "weekend"


def time_band(catalog: Catalog, package: str, at: dt.datetime) -> str | None:
    """The first band of the package's band set whose day kinds include the
    kind of ``at``'s local date and whose window holds ``at``'s minute."""
    kind = day_kind(at.date(), catalog)
    minute = at.hour * 60 + at.minute
    for band in catalog.bands_of(package):
        if kind in [k.value for k in band.day_kinds] and band.covers(minute):
            return band.name
    return None


def choose_rate(catalog: Catalog, package: str, destination: str, caller: str, band: str | None) -> str | None:
    for rule in catalog.packages[package].rates:
        if rule.destination not in (None, destination):
            continue
        if rule.caller not in (None, caller):
            continue
        if rule.band not in (None, band):
            continue
        return rule.rate
    return None


def billing_start_ms(number: Number, call: Call) -> int | None:
    """When billing starts: ``ring`` the call's start; ``ivr_answer`` the IVR
    answer, or the agent answer when the CDR has no IVR answer; ``agent_answer``
    the agent answer. None: not answered (nothing is billed)."""
    mode = number.billing_start.value
    if mode == "ring":
        return call.start_ms
    if mode == "ivr_answer" and call.ivr_answer_ms is not None:
        return call.ivr_answer_ms
    return call.agent_answer_ms


def billable_seconds(rule: str, bill_from: int | None, end_ms: int) -> int:
    """Whole seconds from the billing start to the end by the rate's rule:
    ``truncate`` drops the fraction, ``ceil`` counts a started second,
    ``round`` counts half a second or more. 0 without a billing start or
    when the end is not after it."""
    if bill_from is None or end_ms <= bill_from:
        return 0
    seconds = Fraction(end_ms - bill_from, 1000)
    if rule == "ceil":
        return math.ceil(seconds)
    if rule == "round":
        return math.floor(seconds + Fraction(1, 2))
    return math.floor(seconds)


def round_once(amount: Fraction, rounding: str) -> int:
    if rounding == "up":
        return math.ceil(amount)
    if rounding == "half_up":
        return math.floor(amount + Fraction(1, 2))
    return math.floor(amount)


@dataclass(frozen=True)
class Step:
    """One increment of a call's walk: where it starts (elapsed s), the band
    and rate in force then, the tier, its length and exact cost (minor units)."""

    start: int
    band: str | None
    rate: str
    tier: int
    seconds: int
    cost: Fraction


def walk(rate_at, first: Rate, billable: int) -> tuple[list[Step], int] | None:
    """The increments of a call of ``billable`` seconds. ``rate_at(t)`` gives
    (band, rate name, Rate) in force for an increment starting at elapsed t,
    or None (no rate: the walk fails). ``first`` (the rate at the billing
    start) sets the free seconds and minimum. Returns (steps, duration)."""
    if billable == 0 or billable <= first.free_seconds:
        return [], 0
    duration = max(billable, first.min_billable_seconds)
    t, steps = 0, []
    while t < duration:
        found = rate_at(t)
        if found is None:
            return None
        band, name, rate = found
        j = [k for k, tier in enumerate(rate.tiers) if tier.start <= t][-1]
        tier = rate.tiers[j]
        steps.append(Step(t, band, name, j, tier.increment, Fraction(tier.price * tier.increment, tier.unit)))
        t += tier.increment
    return steps, duration


def price_call(rate: Rate, billable: int) -> tuple[int, int, int]:
    """(billed seconds, units, charge) of a call of ``billable`` seconds
    under one rate: the exact sum of its increments rounded once by the
    rate's rounding, then the connect fee (none when nothing is billed)."""
    walked = walk(lambda t: (None, "", rate), rate, billable)
    assert walked is not None  # one rate for every increment: the walk cannot fail
    steps, _ = walked
    if not steps:
        return 0, 0, 0
    total = sum((s.cost for s in steps), Fraction(0))
    return sum(s.seconds for s in steps), len(steps), round_once(total, rate.rounding.value) + rate.connect_fee


def opening_balances(catalog: Catalog) -> dict[str, Balance]:
    """Every account at its package start: prepaid credit = opening credit
    (default: the package fee), no bundle use."""
    out = {}
    for name, account in catalog.accounts.items():
        package = catalog.packages[account.package]
        credit = 0
        if package.kind.value == "prepaid":
            credit = package.fee if account.opening_credit is None else account.opening_credit
        out[name] = Balance(credit_left=credit)
    return out


def rate_reference(catalog: Catalog, calls: list[Call], balances: dict[str, Balance], regions: Regions) -> list[Rated]:
    """Rate ``calls``; ``balances`` (by account name) is updated in place."""
    owner: dict[str, tuple[str, Account, Number]] = {}
    for account_name, account in catalog.accounts.items():
        for number in account.numbers:
            owner[number.number] = (account_name, account, number)

    rated = [_price(catalog, call, owner, regions) for call in calls]

    chronological = sorted(range(len(calls)), key=lambda i: calls[i].start_ms)  # stable: ties keep input order
    for i in chronological:
        name = rated[i].account
        if rated[i].status == "rated" and name is not None:  # a rated call always has its account
            _settle(catalog, name, calls[i], rated[i], balances[name])
    return rated


def _price(catalog: Catalog, call: Call, owner, regions: Regions) -> Rated:
    out = Rated()
    out.destination_class = longest_prefix(catalog.destination_prefixes, call.forwarded)
    out.caller_city = longest_prefix(regions.city_of_prefix, call.caller)
    if out.caller_city is not None:
        out.caller_province = regions.province_of_city[out.caller_city]
    out.caller_carrier = longest_prefix(regions.carrier_of_prefix, call.caller)

    if call.number not in owner:
        out.status = "unknown_number"
        return out
    out.account, account, number = owner[call.number]
    out.package = account.package
    local = out.caller_city is not None and out.caller_city == number.home_city
    out.caller_class = "local" if local else "out_of_town"
    bill_from = billing_start_ms(number, call)
    out.time_band = time_band(catalog, out.package, local_time(banded_at(call, bill_from)))

    if number.status.value != "active":
        out.status = "number_not_active"
    elif call.start_ms < local_midnight_ms(account.package_start):
        out.status = "package_not_started"
    elif out.destination_class is None:
        out.status = "no_destination_class"
    elif out.time_band is None:
        out.status = "no_rate"
    else:
        out.rate = choose_rate(catalog, out.package, out.destination_class, out.caller_class, out.time_band)
        if out.rate is None:
            out.status = "no_rate"
    if out.status != "rated" or out.rate is None or out.destination_class is None:
        return out  # (a rated call has its rate and destination class: the branches above)

    out.billable_seconds = billable_seconds(catalog.billable_rule(out.rate).value, bill_from, call.end_ms)
    priced = charge_of(catalog, out.package, out.destination_class, out.caller_class, bill_from, out.rate,
                       out.billable_seconds)
    if priced is None:  # split rule: the call runs into a band without a rate
        out.status, out.rate, out.billable_seconds = "no_rate", None, 0
        return out
    out.billed_seconds, out.units, out.charge = priced
    return out


def charge_of(catalog: Catalog, package: str, destination: str, caller_class: str, bill_from: int | None,
              rate_name: str, billable: int) -> tuple[int, int, int] | None:
    """(billed seconds, units, charge) of ``billable`` seconds whose first
    rate is ``rate_name``, by the catalog's band rule. ``billing_start``: that
    rate prices every increment. ``split``: each increment is priced by the
    rate the package gives in the band in force when it starts; the first
    rate keeps the free seconds, minimum, rounding and connect fee. None
    when an increment falls in a band without a rate."""
    first = catalog.rates[rate_name]
    if catalog.band_rule.value == "billing_start":
        return price_call(first, billable)

    def rate_at(t: int):
        assert bill_from is not None  # billable seconds > 0 only for an answered call
        band = time_band(catalog, package, local_time(bill_from + t * 1000))
        name = choose_rate(catalog, package, destination, caller_class, band) if band else None
        return None if name is None else (band, name, catalog.rates[name])

    walked = walk(rate_at, first, billable)
    if walked is None:
        return None
    steps, _ = walked
    if not steps:
        return 0, 0, 0
    total = sum((s.cost for s in steps), Fraction(0))
    return (sum(s.seconds for s in steps), len(steps),
            round_once(total, first.rounding.value) + first.connect_fee)


def banded_at(call: Call, bill_from: int | None) -> int:
    """The time that fixes a call's band and its bundle month: the billing
    start, or the CDR's start for a call that was never answered."""
    return call.start_ms if bill_from is None else bill_from


def _settle(catalog: Catalog, account_name: str, call: Call, out: Rated, balance: Balance) -> None:
    account = catalog.accounts[account_name]
    package = catalog.packages[account.package]
    kind = package.kind.value
    if kind == "prepaid":
        expiry = add_months(account.package_start, package.period_months)
        if call.start_ms >= local_midnight_ms(expiry):
            balance.credit_left = 0  # unused credit expires with the period
        out.credit_consumed = min(balance.credit_left, out.charge)
        balance.credit_left -= out.credit_consumed
        out.overage = out.charge - out.credit_consumed
        out.balance_after = balance.credit_left
    elif kind == "bundle":
        number = next(n for n in account.numbers if n.number == call.number)
        at = local_time(banded_at(call, billing_start_ms(number, call)))
        month = at.year * 12 + at.month - 1
        allowance = package.included_minutes * 60
        if month < balance.bundle_period:
            # A late call (README "Late CDRs"): a month before the latest one
            # draws from that month's own allowance, what its calls left
            # (none recorded: all of it) -- as if it had come on time.
            used = balance.late_used.get(month, 0)
            out.bundle_seconds_consumed = min(max(0, allowance - used), out.billed_seconds)
            balance.late_used[month] = used + out.bundle_seconds_consumed
            left_after = allowance - balance.late_used[month]
        else:
            if balance.bundle_period != month:
                if balance.bundle_period >= 0 and balance.bundle_used > 0:
                    balance.late_used[balance.bundle_period] = balance.bundle_used  # kept for its late calls
                balance.bundle_period, balance.bundle_used = month, 0
            left = max(0, allowance - balance.bundle_used)
            out.bundle_seconds_consumed = min(left, out.billed_seconds)
            balance.bundle_used += out.bundle_seconds_consumed
            left_after = allowance - balance.bundle_used
        overage_seconds = out.billed_seconds - out.bundle_seconds_consumed
        out.charge = 0
        if package.overage_rate is not None:
            out.charge = price_call(catalog.rates[package.overage_rate], overage_seconds)[2]
        out.overage = out.charge
        out.balance_after = left_after
