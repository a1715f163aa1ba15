"""The catalog model: what an operator writes, validated once.

Money is written in yuan (``0.12``, ``"3000"``) with at most four decimals
and held as an integer count of 1/10000 yuan (``MINOR_UNITS_PER_YUAN``).
A value that does not convert exactly is an error, never rounded.
"""
from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .. import MINOR_UNITS_PER_YUAN
from ..cdr import MAX_TIME_MS, MIN_TIME_MS
from ..layout import LOCAL_TZ
from ..money import MAX_AMOUNT_MINOR, parse_yuan
from .routing import Count, RoutingPlan, minute_of_day


def error_message(err: Mapping[str, Any]) -> str:
    """A pydantic error's ``msg`` (one of ``ValidationError.errors()``) as a
    catalog or plan error says it: without pydantic's ``Value error, `` /
    ``Assertion failed, `` prefix, which names the exception our own
    validator raised, not the problem."""
    msg = str(err.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _yuan_to_minor(value) -> int:
    # str() first (in parse_yuan): a YAML float 0.12 becomes "0.12", exactly.
    # A float Python prints with an exponent (0.00001 -> "1e-05") is spelt
    # back in positional digits, as the author wrote it, so the problem is
    # "finer than 1/10000 yuan", not "not an amount" (breaker N12 F9).
    # At most MAX_AMOUNT_MINOR, as every amount (breaker: 10^15 + 1 compiled).
    if isinstance(value, float) and "e" in repr(value) and math.isfinite(value):
        value = format(decimal.Decimal(repr(value)), "f")
    return parse_yuan(value, most_minor=MAX_AMOUNT_MINOR)


def _yuan_to_minor_or_none(value) -> int | None:
    try:
        return _yuan_to_minor(value)
    except ValueError:
        return None  # reported where the value is validated


Money = Annotated[int, BeforeValidator(_yuan_to_minor)]
"""An amount, written in yuan, held in minor units (1/10000 yuan)."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rounding(str, Enum):
    """Applied once per call, to the exact total (see README, "Rounding")."""

    up = "up"
    half_up = "half_up"
    down = "down"


class BillableRule(str, Enum):
    """Milliseconds of a call (end - billing start) -> whole billable seconds.

    ``truncate`` (the default) drops the fraction, as switches report it
    (FreeSWITCH and Asterisk ``billsec``): a finance team reconciling with
    the switch's own CDRs sees the same seconds. ``ceil`` counts a started
    second, ``round`` counts half a second or more as a second."""

    truncate = "truncate"
    ceil = "ceil"
    round = "round"


class BandRule(str, Enum):
    """How a call meets time bands (catalog-wide; README, rule 5).

    ``billing_start`` (default): the band in force at the billing start
    prices the whole call. ``split``: each increment is priced by the band in
    force when it starts (CGRateS-style rating intervals)."""

    billing_start = "billing_start"
    split = "split"  # type: ignore[assignment]  # the member shadows str.split, as the catalog spells it


class DayKind(str, Enum):
    workday = "workday"  # includes adjusted working weekends (调休)
    weekend = "weekend"
    holiday = "holiday"


DAY_KINDS = [DayKind.workday, DayKind.weekend, DayKind.holiday]


class BillingStart(str, Enum):
    """Which timestamp starts the billed time of a call."""

    ring = "ring"  # the CDR's start (connect immediately)
    ivr_answer = "ivr_answer"  # IVR, voicemail and similar features on
    agent_answer = "agent_answer"  # plain ringback mode


BILLING_STARTS = [BillingStart.ring, BillingStart.ivr_answer, BillingStart.agent_answer]


class Status(str, Enum):
    active = "active"
    suspended = "suspended"
    pending_verification = "pending_verification"
    frozen = "frozen"
    closed = "closed"


STATUSES = list(Status)


class PackageKind(str, Enum):
    payg = "payg"  # pay as you go: every call billed at the package rate
    prepaid = "prepaid"  # prepaid credit consumed at the package rate
    bundle = "bundle"  # included minutes per month, then overage


PACKAGE_KINDS = list(PackageKind)


class Tier(Model):
    """From ``start`` elapsed seconds on, ``price`` per ``unit`` seconds,
    charged in steps of ``increment`` seconds (like CGRateS's
    GroupIntervalStart / RateUnit / RateIncrement)."""

    start: Count = Field(0, ge=0, le=86_400)
    price: Annotated[Money, Field(le=10**13)]  # 1e9 yuan per unit: the kernel's stated bound
    unit: Count = Field(60, ge=1, le=3600)
    increment: Count = Field(60, ge=1, le=3600)


class Rate(Model):
    tiers: list[Tier] = Field(min_length=1, max_length=8)
    connect_fee: Money = 0
    free_seconds: Count = Field(0, ge=0, le=3600)
    min_billable_seconds: Count = Field(0, ge=0, le=3600)
    rounding: Rounding = Rounding.up
    billable_seconds: BillableRule | None = None  # None: the catalog's billable_seconds

    @field_validator("tiers")
    @classmethod
    def _tiers_ordered(cls, tiers):
        starts = [t.start for t in tiers]
        if starts[0] != 0:
            raise ValueError("the first tier must start at 0 seconds")
        if any(b <= a for a, b in zip(starts, starts[1:])):
            raise ValueError("tier starts must strictly increase")
        if math.lcm(*(t.unit for t in tiers)) >= 2**40:
            # The exact total is kept over lcm(units); keep it well inside int64.
            raise ValueError("the tiers' units have too large a common multiple; use fewer distinct units")
        return tiers


class RateRule(Model):
    """Which rate applies; the first matching rule of a package wins.
    Omitted conditions match anything."""

    rate: str
    destination: str | None = None  # a destination class name
    caller: Literal["local", "out_of_town"] | None = None
    band: str | None = None  # a time band name


class Package(Model):
    kind: PackageKind
    name: str | None = None
    rates: list[RateRule] = Field(min_length=1)
    band_set: str | None = None  # a name in the catalog's band_sets; None: its time_bands
    fee: Money = 0  # prepaid: the prepayment, which becomes call credit
    period_months: Count = Field(12, ge=1, le=120)  # prepaid: credit expiry
    included_minutes: Count = Field(0, ge=0)  # bundle: per calendar month
    # bundle: the rate of the seconds beyond the bundle (a rate name); None:
    # no overage is sold (Authorize cuts calls at the bundle's end). The
    # YAML's ``overage_price`` is a shorthand for one (Catalog._overage_price).
    overage_rate: str | None = None
    # Only ever an ``overage_price`` that is no amount of yuan, left here by
    # Catalog._overage_price so the schema refuses it at the author's path
    # and line (breaker N11 F8); a good one is replaced by ``overage_rate``.
    overage_price: Money = 0
    monthly_minimum: Money = 0  # month charged max(usage, minimum); not the first
    rental: Money = 0  # per month
    # How far credit may go below zero (postpaid usage: payg charges, bundle
    # overage); calls are refused beyond it. None: the default by kind
    # (rating_core.ledger.DEFAULT_POSTPAID_CREDIT_LIMIT_MINOR; prepaid 0).
    credit_limit: Money | None = None

    @model_validator(mode="after")
    def _kind_fields(self):
        if self.kind is PackageKind.prepaid and self.fee <= 0:
            raise ValueError("fee: a prepaid package needs a fee > 0 (its call credit)")
        if self.kind is PackageKind.bundle and self.included_minutes <= 0:
            raise ValueError("included_minutes: a bundle package needs included_minutes > 0")
        # A field the package's kind does not use is the author's mistake, not
        # something to ignore (breaker N12 F8: an overage price on a prepaid
        # package, or beside an overage_rate, compiled and was never charged).
        if self.overage_price:
            raise ValueError("overage_price: only a bundle package sells overage" if self.kind is not PackageKind.bundle
                             else "overage_price and overage_rate: give one (both price the seconds beyond the bundle)")
        if self.kind is not PackageKind.bundle and (self.included_minutes or self.overage_rate):
            raise ValueError(f"{'included_minutes' if self.included_minutes else 'overage_rate'}: only a bundle "
                             f"package has included minutes and overage")
        # A prepaid account never goes below zero (README): a credit limit would
        # let it (breaker N13 F6: credit_limit 500 took one to -420.00).
        if self.kind is PackageKind.prepaid and self.credit_limit:
            raise ValueError("credit_limit: a prepaid package has none: its credit never goes below zero")
        if self.kind is not PackageKind.prepaid and ("fee" in self.model_fields_set and self.fee
                                                      or "period_months" in self.model_fields_set):
            raise ValueError(f"{'period_months' if 'period_months' in self.model_fields_set else 'fee'}: only a "
                             f"prepaid package has a fee and a credit period (bundle and pay-as-you-go: rental)")
        return self


class Feature(Model):
    """An add-on sold with a number (recording, CRM, missed-call SMS, ...).

    ``per``: ``month`` is billed every month; ``year`` in the month of each
    package-start anniversary; ``missed_call`` once per unanswered call
    (the missed-call SMS)."""

    name: str | None = None
    fee: Money
    per: Literal["month", "year", "missed_call"]


def _clock(value) -> int:
    """A local time as a minute of the day: a whole hour (``8``) or ``"HH:MM"``."""
    if isinstance(value, bool):
        raise ValueError("a time of day is an hour (0-24) or 'HH:MM'")
    if isinstance(value, int):
        if not 0 <= value <= 24:
            raise ValueError(f"hour {value} is not 0-24")
        return value * 60
    return minute_of_day(str(value).strip())


Clock = Annotated[int, BeforeValidator(_clock)]
"""A local time of day (Asia/Shanghai), held as minutes after midnight (0-1440)."""


class TimeBand(Model):
    """A band: its day kinds and a local time window ``hours: [from, to)``,
    each a whole hour or ``HH:MM``; ``from > to`` wraps past midnight
    (``["22:00", "08:00"]`` is 22:00-24:00 and 00:00-08:00 of every day of
    its kinds, each minute judged by its own date's kind)."""

    name: str
    day_kinds: list[DayKind] = Field(default_factory=lambda: list(DAY_KINDS))
    hours: tuple[Clock, Clock] = (0, 1440)  # minutes of the day, [from, to)

    @field_validator("hours")
    @classmethod
    def _hours(cls, hours):
        lo, hi = hours
        if lo == hi or lo == 1440:
            raise ValueError("hours must be [from, to) with from != to and from before 24:00")
        return hours

    def covers(self, minute: int) -> bool:
        """Does the window hold local minute ``minute`` (0-1439)?"""
        lo, hi = self.hours
        return lo <= minute < hi if lo < hi else (minute >= lo or minute < hi)


class DayOverride(Model):
    date: dt.date
    kind: DayKind


NUMBER_400 = re.compile(r"^400[0-9]{7}$")
# A package id: a statement joins the month's packages into one phrase
# ("prepaid_480_1y, then bundle_1000 from 2026-12-02",
# ``Statement.package_label``), the CLI takes it as a word, a path names it
# (``packages.<id>.fee``): ASCII letters, digits, '_' and '-', from a
# letter or digit (no ", then", no space, no '.', never read as an option).
PACKAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _package_id(pid: str) -> str:
    """``pid`` when it is a ``PACKAGE_ID``; else ValueError naming it."""
    if not PACKAGE_ID.fullmatch(pid):
        raise ValueError(f"package id {pid!r}: ASCII letters, digits, '_' and '-' only, from a letter or digit, "
                         "at most 64 characters (a statement joins a month's packages as 'A, then B from DATE')")
    return pid


PackageId = Annotated[str, AfterValidator(_package_id)]


class Number(Model):
    number: str
    status: Status = Status.active
    billing_start: BillingStart = BillingStart.agent_answer
    home_city: str  # the number's registered city, as region data names it
    routing: str | None = None  # a routing plan name

    @field_validator("number")
    @classmethod
    def _number(cls, number):
        if not NUMBER_400.match(number):
            raise ValueError(f"{number!r} is not 400 + 7 digits")
        return number


class Account(Model):
    name: str | None = None
    status: Status = Status.active
    package: str
    package_start: dt.date
    opening_credit: Money | None = None  # prepaid; defaults to the package fee
    features: list[str] = Field(default_factory=list)
    numbers: list[Number] = Field(default_factory=list)

    @field_validator("package_start")
    @classmethod
    def _package_start(cls, day: dt.date):
        # The edge's time range (``cdr.MIN_TIME_MS`` .. ``MAX_TIME_MS``), for
        # the start's local midnight: 9999-12-31 crashed compile (its period
        # end is year 10000) and 0001-01-01 imported a period ending 0002.
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)
        first = dt.datetime.fromtimestamp(MIN_TIME_MS / 1000, LOCAL_TZ).date() + dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(MAX_TIME_MS / 1000 - 1, LOCAL_TZ).date()
        if not MIN_TIME_MS <= midnight.timestamp() * 1000 < MAX_TIME_MS:
            raise ValueError(f"{day.isoformat()} is outside the dates the system handles "
                             f"({first.isoformat()} .. {last.isoformat()}, Asia/Shanghai)")
        return day


class NumberGrade(Model):
    """A grade of 400 number (premium numbers such as 400-888-8888 cost
    more): what opening it and renting it per month cost, in yuan.
    ``patterns``: shell-style patterns (``400?888???``) that put a number in
    this grade at intake when none is given; the first grade that matches
    wins, in catalog order."""

    opening_fee: Money = 0
    monthly_rental: Money = 0
    patterns: list[str] = Field(default_factory=list)


class CustomerRules(Model):
    """The platform's rules for customer operations (DOMAIN.md "Top-ups",
    "Arrears"). A top-up must be at least ``top_up_min_months`` months of the
    package's monthly minimum and at least ``top_up_min`` yuan. An account
    suspended for arrears is restored by a top-up within
    ``restore_months``; after that it is frozen; its numbers are reclaimed
    ``reclaim_months`` after the suspension and become available again
    ``cooling_days`` after that."""

    top_up_min: Money = 600 * MINOR_UNITS_PER_YUAN  # written in yuan; the default is already minor units
    top_up_min_months: Count = Field(3, ge=0, le=36)
    restore_months: Count = Field(3, ge=1, le=24)
    reclaim_months: Count = Field(6, ge=1, le=60)
    cooling_days: Count = Field(90, ge=0, le=3650)

    @model_validator(mode="after")
    def _order(self):
        if self.reclaim_months < self.restore_months:
            raise ValueError("reclaim_months: must be at least restore_months (a number is reclaimed after it froze)")
        return self


class Catalog(Model):
    """The whole catalog, after loading the CSV tables it names."""

    name: str = "catalog"
    destination_classes: list[str] = Field(min_length=1)
    # prefix (digits, national format: 0755, 138, 010) -> destination class
    destination_prefixes: dict[str, str] = Field(default_factory=dict)
    time_bands: list[TimeBand] = Field(default_factory=lambda: [TimeBand(name="all")])
    band_sets: dict[str, list[TimeBand]] = Field(default_factory=dict)  # per package (Package.band_set)
    band_rule: BandRule = BandRule.billing_start
    billable_seconds: BillableRule = BillableRule.truncate  # for rates that do not say
    day_overrides: list[DayOverride] = Field(default_factory=list)
    rates: dict[str, Rate]
    packages: dict[PackageId, Package]
    features: dict[str, Feature] = Field(default_factory=dict)
    routing_plans: dict[str, RoutingPlan] = Field(default_factory=dict)
    accounts: dict[str, Account] = Field(default_factory=dict)
    number_grades: dict[str, NumberGrade] = Field(default_factory=lambda: {"standard": NumberGrade()})
    customer_rules: CustomerRules = Field(default_factory=CustomerRules)
    # What a statement prints for the catalog's names, per statement language:
    # {"zh": {"mobile": "手机", "peak": "高峰", "<package id>": "...", "<feature id>": "..."}}.
    # A name without a label prints as the catalog writes it (a package or
    # feature: its ``name``).
    labels: dict[Literal["zh", "en"], dict[str, Annotated[str, Field(min_length=1, max_length=120)]]] = Field(
        default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _overage_price(cls, doc):
        """``overage_price: P`` on a bundle is short for ``overage_rate`` naming
        a rate ``<package>.overage`` of one tier: P per 60 s, charged by the
        second, rounded up once (the seconds beyond the bundle at a per-minute
        price, pro rata). 0 means no overage is sold. A price that is no
        amount of yuan stays on the package, refused there as
        ``packages.<id>.overage_price`` (``Package.overage_price``), not
        as the derived rate's tier price (breaker N11 F8)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("packages"), dict):
            return doc
        packages, rates = dict(doc["packages"]), dict(doc.get("rates") or {})
        for pid, pkg in packages.items():
            if not isinstance(pkg, dict) or "overage_price" not in pkg:
                continue
            pkg = dict(pkg)
            if _yuan_to_minor_or_none(pkg["overage_price"]) is None:
                continue  # no amount: Package refuses it where it is written
            if _yuan_to_minor_or_none(pkg["overage_price"]) != 0 and (
                    pkg.get("kind") != "bundle" or "overage_rate" in pkg):
                continue  # a price that means nothing there: Package refuses it (breaker N12 F8)
            price = pkg.pop("overage_price")
            if pkg.get("kind") == "bundle" and "overage_rate" not in pkg and _yuan_to_minor_or_none(price) != 0:
                name = f"{pid}.overage"
                if name in rates:
                    raise ValueError(f"packages.{pid}.overage_price: the rate {name!r} it stands for is taken")
                rates[name] = {"tiers": [{"price": price, "unit": 60, "increment": 1}], "rounding": "up"}
                pkg["overage_rate"] = name
            packages[pid] = pkg
        return {**doc, "packages": packages, "rates": rates}

    def bands_of(self, package: str) -> list[TimeBand]:
        """The band set a package's calls are banded by."""
        name = self.packages[package].band_set
        return self.time_bands if name is None else self.band_sets[name]

    def billable_rule(self, rate: str) -> BillableRule:
        """A rate's billable-seconds rule: its own, else the catalog's."""
        return self.rates[rate].billable_seconds or self.billable_seconds
