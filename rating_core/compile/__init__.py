"""Catalog model -> snapshot tables (see ``rating_core.layout``).

Everything here runs once per catalog version, so it favours clarity; the
only large inputs (destination prefixes, numbers) go through NumPy and the
prefix kernel.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .. import layout
from ..catalog.schema import DAY_KINDS, Catalog
from ..ledger.core import DEFAULT_POSTPAID_CREDIT_LIMIT_MINOR
from ..numbers import build_prefix_table, keys_of
from .calendar import calendar_tables
from .regions import city_aliases, region_source, region_tables

LOCAL = layout.LOCAL_TZ


def local_midnight_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL).timestamp() * 1000)


def add_months(day: dt.date, months: int) -> dt.date:
    m = day.month - 1 + months
    year, month = day.year + m // 12, m % 12 + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return dt.date(year, month, min(day.day, last))


def _rate_tables(cat: Catalog, rate_ids: dict[str, int]) -> dict[str, np.ndarray]:
    """One row per rate and one per tier. Under the split band rule one call
    sums increments of several rates, so every rate's denominator is the
    catalog-wide lcm of units (the loader bounds it)."""
    first, count, fee, free, minimum, rounding, denominator = [], [], [], [], [], [], []
    billable = []
    common = math.lcm(*(t.unit for r in cat.rates.values() for t in r.tiers)) if cat.rates else 1
    t_start, t_price, t_unit, t_incr = [], [], [], []
    for name in rate_ids:
        rate = cat.rates[name]
        first.append(len(t_start))
        count.append(len(rate.tiers))
        fee.append(rate.connect_fee)
        free.append(rate.free_seconds)
        minimum.append(rate.min_billable_seconds)
        rounding.append(layout.ROUNDING.index(rate.rounding.value))
        billable.append(layout.BILLABLE_RULE.index(cat.billable_rule(name).value))
        denominator.append(common if cat.band_rule.value == "split" else math.lcm(*(t.unit for t in rate.tiers)))
        for t in rate.tiers:
            t_start.append(t.start)
            t_price.append(t.price)
            t_unit.append(t.unit)
            t_incr.append(t.increment)
    return {
        "rate_first_tier": np.array(first, np.int32),
        "rate_n_tiers": np.array(count, np.int32),
        "rate_connect_fee": np.array(fee, np.int64),
        "rate_free_seconds": np.array(free, np.int32),
        "rate_min_billable": np.array(minimum, np.int32),
        "rate_rounding": np.array(rounding, np.int8),
        "rate_billable_rule": np.array(billable, np.int8),
        "rate_denominator": np.array(denominator, np.int64),
        "tier_start": np.array(t_start, np.int32),
        "tier_price": np.array(t_price, np.int64),
        "tier_unit": np.array(t_unit, np.int32),
        "tier_increment": np.array(t_incr, np.int32),
    }


def band_sets(cat: Catalog) -> dict[str, list]:
    """Band set name -> bands, in id order: ``time_bands`` first (set 0,
    named ``""``), then ``band_sets`` as written."""
    return {"": cat.time_bands, **cat.band_sets}


def band_ids(cat: Catalog) -> dict[tuple[str, str], int]:
    """(band set, band name) -> band id; ids run over every set in order."""
    out = {}
    for set_name, bands in band_sets(cat).items():
        for b in bands:
            out[(set_name, b.name)] = len(out)
    return out


def _rate_choice(cat: Catalog, package_ids, class_ids, bands, rate_ids) -> np.ndarray:
    """Dense (package, class, caller class, band) -> rate id; first rule wins.
    A package's rules fill only the bands of its own band set."""
    table = np.full((len(package_ids), len(class_ids), 2, len(bands)), -1, np.int32)
    for pid, p in package_ids.items():
        pkg = cat.packages[pid]
        set_name = pkg.band_set or ""
        own = [i for (s, _), i in bands.items() if s == set_name]
        for rule in reversed(pkg.rates):  # later rules first, so earlier overwrite
            cls = [class_ids[rule.destination]] if rule.destination else list(range(len(class_ids)))
            callers = [layout.CALLER_CLASS.index(rule.caller)] if rule.caller else [0, 1]
            chosen = [bands[(set_name, rule.band)]] if rule.band else own
            for c in cls:
                for k in callers:
                    table[p, c, k, chosen] = rate_ids[rule.rate]
    return table


def _band_tables(cat: Catalog, bands) -> dict[str, np.ndarray]:
    """``band_of`` (set, day kind, local minute) -> the first band of the
    set that covers it (the loader checked one always does), and
    ``band_until``: the minute of the same day that band lasts until."""
    sets = band_sets(cat)
    band_of = np.full((len(sets), 3, layout.MINUTES_PER_DAY), -1, np.int8)
    minutes = np.arange(layout.MINUTES_PER_DAY)
    for s, (set_name, set_bands) in enumerate(sets.items()):
        for band in reversed(set_bands):
            lo, hi = band.hours
            inside = (minutes >= lo) & (minutes < hi) if lo < hi else (minutes >= lo) | (minutes < hi)
            for kind in band.day_kinds:
                band_of[s, DAY_KINDS.index(kind), inside] = bands[(set_name, band.name)]
    until = np.empty(band_of.shape, np.int16)
    until[:, :, -1] = layout.MINUTES_PER_DAY
    for m in range(layout.MINUTES_PER_DAY - 2, -1, -1):
        same = band_of[:, :, m] == band_of[:, :, m + 1]
        until[:, :, m] = np.where(same, until[:, :, m + 1], m + 1)
    return {"band_of": band_of, "band_until": until,
            "band_rule": np.array([layout.BAND_RULE.index(cat.band_rule.value)], np.int8)}


def compile_catalog(cat: Catalog) -> tuple[dict[str, np.ndarray], dict]:
    """Build every snapshot table from a validated catalog."""
    regions = region_source()
    city_ids = {c: i for i, c in enumerate(regions.cities)}
    class_ids = {c: i for i, c in enumerate(cat.destination_classes)}
    bands = band_ids(cat)
    set_ids = {name: i for i, name in enumerate(band_sets(cat))}
    rate_ids = {r: i for i, r in enumerate(cat.rates)}
    package_ids = {p: i for i, p in enumerate(cat.packages)}
    account_ids = {a: i for i, a in enumerate(cat.accounts)}
    plan_ids = {r: i for i, r in enumerate(cat.routing_plans)}

    tables: dict[str, np.ndarray] = {}
    # 400 numbers, sorted by key.
    numbers, n_account, n_status, n_start, n_city, n_route = [], [], [], [], [], []
    for aid, acc in cat.accounts.items():
        for num in acc.numbers:
            numbers.append(num.number)
            n_account.append(account_ids[aid])
            n_status.append(layout.STATUS.index(num.status.value))
            n_start.append(layout.BILLING_START.index(num.billing_start.value))
            n_city.append(city_ids.get(num.home_city, -1))
            n_route.append(plan_ids[num.routing] if num.routing else -1)
    keys = keys_of(pa.array(numbers, pa.string()))
    order = np.argsort(keys, kind="stable")
    tables["number_key"] = np.ascontiguousarray(keys[order])
    for name, values, dtype in [
        ("number_account", n_account, np.int32),
        ("number_status", n_status, np.int8),
        ("number_billing_start", n_start, np.int8),
        ("number_home_city", n_city, np.int32),
        ("number_routing", n_route, np.int32),
    ]:
        tables[name] = np.ascontiguousarray(np.asarray(values, dtype)[order])

    # Accounts and their package subscription.
    a_pkg, a_status, a_start, a_expiry, a_credit = [], [], [], [], []
    for aid, acc in cat.accounts.items():
        pkg = cat.packages[acc.package]
        a_pkg.append(package_ids[acc.package])
        a_status.append(layout.STATUS.index(acc.status.value))
        a_start.append(local_midnight_ms(acc.package_start))
        if pkg.kind.value == "prepaid":
            a_expiry.append(local_midnight_ms(add_months(acc.package_start, pkg.period_months)))
            a_credit.append(pkg.fee if acc.opening_credit is None else acc.opening_credit)
        else:
            a_expiry.append(int(layout.NEVER))
            a_credit.append(0)
    tables["account_package"] = np.array(a_pkg, np.int32)
    tables["account_status"] = np.array(a_status, np.int8)
    tables["account_start_ms"] = np.array(a_start, np.int64)
    tables["account_expiry_ms"] = np.array(a_expiry, np.int64)
    tables["account_opening_credit"] = np.array(a_credit, np.int64)

    pkgs = [cat.packages[p] for p in package_ids]
    tables["package_kind"] = np.array([layout.PACKAGE_KIND.index(p.kind.value) for p in pkgs], np.int8)
    tables["package_included_seconds"] = np.array([p.included_minutes * 60 for p in pkgs], np.int64)
    tables["package_overage_rate"] = np.array([rate_ids[p.overage_rate] if p.overage_rate else -1 for p in pkgs],
                                              np.int32)
    tables["package_band_set"] = np.array([set_ids[p.band_set or ""] for p in pkgs], np.int32)
    tables["package_monthly_minimum"] = np.array([p.monthly_minimum for p in pkgs], np.int64)
    tables["package_credit_limit"] = np.array(
        [p.credit_limit if p.credit_limit is not None else
         0 if p.kind.value == "prepaid" else DEFAULT_POSTPAID_CREDIT_LIMIT_MINOR for p in pkgs], np.int64)

    tables["rate_table"] = _rate_choice(cat, package_ids, class_ids, bands, rate_ids)
    tables.update(_rate_tables(cat, rate_ids))

    prefixes = list(cat.destination_prefixes)
    tables["dest_starts"], tables["dest_values"] = build_prefix_table(
        prefixes, [class_ids[cat.destination_prefixes[p]] for p in prefixes]
    )
    tables.update(region_tables(regions))
    tables.update(calendar_tables({o.date: o.kind.value for o in cat.day_overrides}))
    tables.update(_band_tables(cat, bands))

    ids = CompileIds(account_ids, package_ids, class_ids, bands, rate_ids, plan_ids, city_ids, regions)
    from ..routes import routing_tables

    tables.update(routing_tables(cat, ids, tables))

    tables = {k: np.ascontiguousarray(v) for k, v in tables.items()}
    layout.check(tables)
    layout.check_indexes(tables)
    meta = {
        "catalog": cat.name,
        "accounts": list(account_ids),
        "packages": list(package_ids),
        "package_names": [cat.packages[p].name or p for p in package_ids],
        "labels": {lang: dict(labels) for lang, labels in cat.labels.items()},  # statements' names, by language
        "destination_classes": list(class_ids),
        "bands": [name for _, name in bands],  # band id -> name (names repeat across band sets)
        "band_sets": list(set_ids),  # band set id -> name ("": the catalog's time_bands)
        "band_rule": cat.band_rule.value,
        # per package, its rate rules as written (for charge explanations)
        "package_rate_rules": [[r.model_dump() for r in cat.packages[p].rates] for p in package_ids],
        "rates": list(rate_ids),
        "routing_plans": list(plan_ids),
        "cities": regions.cities,
        # Other spellings of a city -> its name (Lu'an -> LuAn, 天津 -> Tianjin):
        # routing plans and home cities given by account operations (runtime,
        # which never imports the compiler) are read through it.
        "city_aliases": {a: c for a, c in city_aliases().items() if a != c},
        "provinces": regions.provinces,
        "carriers": regions.carriers,
        "region_data": f"phonenumbers {regions.version}",
        # For the monthly bill (billing.py), not read by kernels.
        "billing": {
            "package_rental": [cat.packages[p].rental for p in package_ids],
            "package_monthly_minimum": [cat.packages[p].monthly_minimum for p in package_ids],
            "package_fee": [cat.packages[p].fee for p in package_ids],  # prepaid (advisor)
            "package_period_months": [cat.packages[p].period_months for p in package_ids],
            "account_package_index": [package_ids[cat.accounts[a].package] for a in account_ids],
            "account_package_start": [cat.accounts[a].package_start.isoformat() for a in account_ids],
            "account_features": [cat.accounts[a].features for a in account_ids],
            "account_names": [cat.accounts[a].name or a for a in account_ids],
            "features": {f: {"fee": x.fee, "per": x.per, "name": x.name or f} for f, x in cat.features.items()},
        },
        # For customer operations (rating_core.accounts), not read by kernels.
        "customer_rules": cat.customer_rules.model_dump(mode="json"),
        "number_grades": {g: x.model_dump(mode="json") for g, x in cat.number_grades.items()},
        "package_rules": {p: {"kind": x.kind.value, "fee": x.fee, "period_months": x.period_months,
                              "monthly_minimum": x.monthly_minimum, "included_minutes": x.included_minutes}
                          for p, x in cat.packages.items()},
        "routing_templates": {r: x.model_dump(mode="json", exclude_defaults=True) for r, x in cat.routing_plans.items()},
        "counts": {
            "accounts": len(account_ids),
            "numbers": len(numbers),
            "packages": len(package_ids),
            "rates": len(rate_ids),
            "destination_prefixes": len(prefixes),
        },
    }
    return tables, meta


@dataclass(frozen=True)
class CompileIds:
    """The id maps one compilation used, for the parts compiled elsewhere."""

    accounts: dict
    packages: dict
    classes: dict
    bands: dict  # (band set, band name) -> band id
    rates: dict
    plans: dict
    cities: dict
    regions: object  # RegionSource


def source_digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()[:16]
