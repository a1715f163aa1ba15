"""Hypothesis strategies: random catalogs and the calls made against them.

Catalogs are small (a few classes, bands, rates, packages of every kind,
accounts, numbers) so that calls hit every branch of the rules: nested
destination prefixes, first-match bands and rate rules, tier boundaries,
free seconds and minimums, every rounding mode, prepaid credit that runs
out or expires, bundles that run out mid-call. Call times cluster around
edges: midnight, a band boundary, month ends, the National Day holiday
(2026-10-01), package starts and prepaid expiries.

``catalogs()`` draws a validated ``Catalog``; ``calls(catalog)`` a list of
``reference.Call``; ``cdr_columns(calls)`` turns calls into the kernel's
CDR columns.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from hypothesis import strategies as st

from rating_core import layout
from rating_core.catalog.schema import Catalog
from rating_core.compile.regions import region_source
from rating_core.numbers import key
from rating_core.reference import Call

LOCAL = dt.timezone(dt.timedelta(hours=8))
HOUR_MS = 3_600_000


def local_ms(y, mo, d, h=0, mi=0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=LOCAL).timestamp()) * 1000


# Times that rules turn on; calls start within a day and a half of one.
ANCHORS = [
    local_ms(2026, 9, 30, 23, 50),  # National Day starts at midnight
    local_ms(2026, 10, 31, 23, 58),  # month end: bundle period, prepaid expiry
    local_ms(2026, 3, 4, 19, 59),  # a workday evening: band boundaries
    local_ms(2026, 1, 1, 0, 0),  # package starts, New Year's Day
    local_ms(2026, 2, 28, 12, 0),  # end of a short month
    local_ms(2026, 3, 1),  # prepaid expiries (package start + months)
    local_ms(2026, 9, 30),
]
PACKAGE_STARTS = [dt.date(2025, 12, 1), dt.date(2026, 1, 1), dt.date(2026, 1, 31), dt.date(2026, 8, 31),
                  dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)]
# Few distinct override sets, so a test can cache the compiled calendar.
OVERRIDE_SETS = [
    [],
    [{"date": "2026-09-30", "kind": "holiday"}],
    [{"date": "2026-10-02", "kind": "workday"}, {"date": "2026-03-04", "kind": "weekend"}],
]
HOME_CITIES = ["Shenzhen", "Beijing", "Fuzhou, Fujian", "Shanghai", "Atlantis"]  # Atlantis: not in region data


def _caller_prefixes() -> list[str]:
    """A landline and a few mobile prefixes of some real cities, plus
    prefixes region data does not know."""
    src = region_source()
    by_city: dict[str, list[str]] = {}
    for prefix, city in sorted(src.city_prefixes.items()):
        by_city.setdefault(src.cities[city], []).append(prefix)
    out = []
    for city in HOME_CITIES[:-1] + ["Guangzhou"]:
        prefixes = by_city[city]
        out += [p for p in prefixes if p.startswith("0")][:2] + [p for p in prefixes if p.startswith("1")][:3]
    return out + ["170", "199", "0999"]


CALLER_PREFIXES = _caller_prefixes()


def yuan(minor: int) -> str:
    """Minor units as a catalog money string (exact)."""
    return str(Decimal(minor).scaleb(-4))


digits = st.text("0123456789", min_size=0, max_size=8)
prefix_digits = st.text("0136", min_size=1, max_size=4)  # a small alphabet: nested prefixes


@st.composite
def tiers(draw):
    starts = [0] + sorted(draw(st.sets(st.integers(1, 900), max_size=2)))
    return [
        {
            "start": s,
            "price": yuan(draw(st.sampled_from([1200, 707, 7, 1, 0]) | st.integers(1, 200_000))),
            "unit": draw(st.sampled_from([1, 6, 7, 30, 60, 180, 3600])),
            "increment": draw(st.sampled_from([1, 6, 7, 30, 60, 180])),
        }
        for s in starts
    ]


@st.composite
def rates(draw):
    return {
        "tiers": draw(tiers()),
        "connect_fee": yuan(draw(st.sampled_from([0, 0, 100, 1234]))),
        "free_seconds": draw(st.sampled_from([0, 0, 3, 6, 30])),
        "min_billable_seconds": draw(st.sampled_from([0, 0, 30, 60, 61])),
        "rounding": draw(st.sampled_from(["up", "half_up", "down"])),
        **draw(st.sampled_from([{}, {}, {"billable_seconds": "truncate"}, {"billable_seconds": "ceil"},
                                {"billable_seconds": "round"}])),
    }


def _clock(draw):
    """A time of day: a whole hour, or HH:MM near the anchors' minutes."""
    if draw(st.booleans()):
        return draw(st.integers(0, 24))
    h, m = draw(st.integers(0, 23)), draw(st.sampled_from([0, 1, 30, 50, 58, 59]))
    return f"{h:02d}:{m:02d}"


@st.composite
def time_bands(draw, prefix="band"):
    """Random bands (windows may wrap midnight), then a catch-all so every
    (day kind, minute) has one."""
    bands = []
    for i in range(draw(st.integers(0, 3))):
        lo, hi = _clock(draw), _clock(draw)
        as_min = [x * 60 if isinstance(x, int) else int(x[:2]) * 60 + int(x[3:]) for x in (lo, hi)]
        if as_min[0] == as_min[1] or as_min[0] == 1440:
            lo, hi = 0, 24
        kinds = draw(st.lists(st.sampled_from(["workday", "weekend", "holiday"]), min_size=1, max_size=3, unique=True))
        bands.append({"name": f"{prefix}{i}", "day_kinds": kinds, "hours": [lo, hi]})
    return bands + [{"name": "any"}]


@st.composite
def packages(draw, rate_names, classes, bands, band_sets=None):
    kind = draw(st.sampled_from(["payg", "prepaid", "bundle"]))
    band_set = draw(st.none() | st.sampled_from(sorted(band_sets))) if band_sets else None
    if band_set is not None:
        bands = band_sets[band_set]
    rules = [
        {
            "rate": draw(st.sampled_from(rate_names)),
            "destination": draw(st.none() | st.sampled_from(classes)),
            "caller": draw(st.none() | st.sampled_from(["local", "out_of_town"])),
            "band": draw(st.none() | st.sampled_from(bands)),
        }
        for _ in range(draw(st.integers(1, 3)))
    ]
    if draw(st.booleans()):
        rules.append({"rate": draw(st.sampled_from(rate_names))})  # a catch-all: fewer no_rate rejects
    pkg = {"kind": kind, "rates": [{k: v for k, v in r.items() if v is not None} for r in rules]}
    if band_set is not None:
        pkg["band_set"] = band_set
    if kind == "prepaid":
        pkg["fee"] = yuan(draw(st.integers(1000, 50_000) | st.integers(1, 999)))
        pkg["period_months"] = draw(st.sampled_from([12, 1, 2, 3]))
    if kind == "bundle":
        pkg["included_minutes"] = draw(st.integers(1, 10))
        if draw(st.booleans()):
            pkg["overage_price"] = yuan(draw(st.integers(0, 20_000)))
        elif draw(st.booleans()):
            pkg["overage_rate"] = draw(st.sampled_from(rate_names))
    return pkg


@st.composite
def catalogs(draw) -> Catalog:
    classes = [f"class{i}" for i in range(draw(st.integers(1, 3)))]
    prefixes = draw(st.dictionaries(prefix_digits, st.sampled_from(classes), min_size=1, max_size=6))
    bands = draw(time_bands())
    band_names = [b["name"] for b in bands]
    sets = {f"set{i}": draw(time_bands(f"s{i}b")) for i in range(draw(st.integers(0, 2)))}
    set_names = {k: [b["name"] for b in v] for k, v in sets.items()}
    rate_defs = {f"rate{i}": draw(rates()) for i in range(draw(st.integers(1, 3)))}
    package_defs = {f"pkg{i}": draw(packages(list(rate_defs), classes, band_names, set_names))
                    for i in range(draw(st.integers(1, 3)))}
    numbers = iter(draw(st.lists(st.integers(0, 99), min_size=6, max_size=6, unique=True)))
    accounts = {}
    for i in range(draw(st.integers(1, 3))):
        package = draw(st.sampled_from(list(package_defs)))
        account = {
            "package": package,
            "package_start": draw(st.sampled_from(PACKAGE_STARTS[:2] * 4 + PACKAGE_STARTS)).isoformat(),
            "numbers": [
                {
                    "number": f"40000000{next(numbers):02d}",
                    "status": draw(st.sampled_from(["active"] * 8 + ["suspended", "closed"])),
                    "billing_start": draw(st.sampled_from(["ring", "ivr_answer", "agent_answer"])),
                    "home_city": draw(st.sampled_from(HOME_CITIES)),
                }
                for _ in range(draw(st.integers(1, 2)))
            ],
        }
        if package_defs[package]["kind"] == "prepaid" and draw(st.booleans()):
            account["opening_credit"] = yuan(draw(st.integers(0, 50_000)))
        accounts[f"acct{i}"] = account
    return Catalog.model_validate(
        {
            "destination_classes": classes,
            "destination_prefixes": prefixes,
            "time_bands": bands,
            "band_sets": sets,
            "band_rule": draw(st.sampled_from(["billing_start", "billing_start", "split"])),
            "billable_seconds": draw(st.sampled_from(["truncate", "ceil", "round"])),
            "day_overrides": draw(st.sampled_from(OVERRIDE_SETS)),
            "rates": rate_defs,
            "packages": package_defs,
            "accounts": accounts,
        }
    )


@st.composite
def priced_catalogs(draw) -> Catalog:
    """One account, one active number billed from ring, one package (any
    kind) whose only rule is a random rate: every answered call is rated,
    so the arithmetic of charges and settlement is exercised on every call."""
    kind_fields = draw(packages(["rate1"], ["any"], ["any"]))
    kind_fields["rates"] = [{"rate": "rate0"}]
    return Catalog.model_validate(
        {
            "destination_classes": ["any"],
            "destination_prefixes": {str(d): "any" for d in range(10)},
            "rates": {"rate0": draw(rates()), "rate1": draw(rates())},
            "billable_seconds": draw(st.sampled_from(["truncate", "ceil", "round"])),
            "packages": {"pkg0": kind_fields},
            "accounts": {
                "acct0": {
                    "package": "pkg0",
                    "package_start": draw(st.sampled_from(PACKAGE_STARTS[:2])).isoformat(),
                    "numbers": [{"number": "4000000000", "billing_start": "ring", "home_city": "Beijing"}],
                }
            },
        }
    )


def _numbers(catalog: Catalog) -> list[str]:
    return [n.number for a in catalog.accounts.values() for n in a.numbers]


@st.composite
def one_call(draw, numbers: list[str], dest_prefixes: list[str]) -> Call:
    number = draw(st.sampled_from(numbers * 8 + ["4009999999", None]))
    caller = draw(st.none() | st.builds(lambda p, rest: (p + rest)[:18], st.sampled_from(CALLER_PREFIXES), digits))
    forwarded_from = st.sampled_from(dest_prefixes) if dest_prefixes else st.just("")
    forwarded = draw(
        st.one_of(
            st.builds(lambda p, rest: (p + rest)[:18] or None, forwarded_from, digits),
            st.builds(lambda p, rest: (p + rest)[:18] or None, forwarded_from, digits),
            st.builds(lambda p, rest: (p + rest)[:18] or None, forwarded_from, digits),
            st.none(),
            st.text("0123456789", min_size=3, max_size=12),
        )
    )
    start = draw(st.sampled_from(ANCHORS)) + draw(st.just(0) | st.integers(-36 * HOUR_MS, 36 * HOUR_MS))
    length = draw(st.one_of(st.sampled_from([0, 1, 999, 1000, 1001, 60_000]), st.integers(0, 200_000),
                            st.integers(0, 400_000), st.integers(0, 2 * HOUR_MS)))
    ivr = draw(st.one_of(st.none(), st.just(0), st.integers(0, length), st.integers(0, length)))
    # The edge guarantees answers within [start, end], not their order.
    agent = draw(st.one_of(st.none(), st.integers(ivr or 0, length), st.integers(0, length)))
    return Call(
        number=number,
        caller=caller,
        forwarded=forwarded,
        start_ms=start,
        end_ms=start + length,
        ivr_answer_ms=None if ivr is None else start + ivr,
        agent_answer_ms=None if agent is None else start + agent,
    )


@st.composite
def calls(draw, catalog: Catalog, max_size: int = 25) -> list[Call]:
    """Calls against ``catalog``, in random order (often out of time
    order), sometimes sorted, sometimes with equal starts."""
    out = draw(st.lists(one_call(_numbers(catalog), list(catalog.destination_prefixes)), min_size=1, max_size=max_size))
    if out and draw(st.booleans()):
        out.sort(key=lambda c: c.start_ms)
    if len(out) > 1 and draw(st.booleans()):
        out.append(out[draw(st.integers(0, len(out) - 1))])  # the same CDR again: equal starts
    return out


def _key(number: str | None) -> int:
    return 0 if number is None else key(number)


def _time(ms: int | None) -> int:
    return int(layout.NO_TIME) if ms is None else ms


def cdr_columns(calls: list[Call]) -> dict[str, np.ndarray]:
    """The kernel's CDR columns for ``calls`` (what the edge produces)."""
    return {
        "number_key": np.array([_key(c.number) for c in calls], np.int64),
        "caller_key": np.array([_key(c.caller) for c in calls], np.int64),
        "forwarded_key": np.array([_key(c.forwarded) for c in calls], np.int64),
        "start_ms": np.array([c.start_ms for c in calls], np.int64),
        "ivr_answer_ms": np.array([_time(c.ivr_answer_ms) for c in calls], np.int64),
        "agent_answer_ms": np.array([_time(c.agent_answer_ms) for c in calls], np.int64),
        "end_ms": np.array([c.end_ms for c in calls], np.int64),
    }
