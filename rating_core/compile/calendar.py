"""Day kinds by local date: workday, weekend, holiday.

Source: ``chinese_calendar`` (official holidays and adjusted working days,
调休: a working Saturday is a workday), then the catalog's overrides.
Outside the years chinese_calendar knows, Saturday and Sunday are weekend
days and the rest workdays.
"""
from __future__ import annotations

import datetime as dt
import functools

import chinese_calendar
import numpy as np

from .. import layout

# The table's span is the runtime's fact (layout.CALENDAR_DAYS), read here.
FIRST_DAY = layout.CALENDAR_FIRST_DAY
LAST_DAY = layout.CALENDAR_LAST_DAY
EPOCH = dt.date(1970, 1, 1)
DAYS = layout.CALENDAR_DAYS

WORKDAY, WEEKEND, HOLIDAY = 0, 1, 2
_KIND_IDS = {"workday": WORKDAY, "weekend": WEEKEND, "holiday": HOLIDAY}


def day_kind_of(day: dt.date, overrides: dict[dt.date, str] | None = None) -> int:
    """The rule for one date, readable; the table below is built from it."""
    if overrides and day in overrides:
        return _KIND_IDS[overrides[day]]
    try:
        if chinese_calendar.is_holiday(day):
            is_official, _name = chinese_calendar.get_holiday_detail(day)
            if is_official and _name is not None:
                return HOLIDAY
            return WEEKEND
        return WORKDAY
    except NotImplementedError:  # a year chinese_calendar does not cover
        return WEEKEND if day.weekday() >= 5 else WORKDAY


def calendar_tables(overrides: dict[dt.date, str]) -> dict[str, np.ndarray]:
    return _calendar_tables(frozenset(overrides.items()))


@functools.lru_cache(maxsize=8)
def _calendar_tables(override_items: frozenset) -> dict[str, np.ndarray]:
    """Cached per override set (22k chinese_calendar calls cost ~0.5 s).
    Callers must not write to the arrays: the snapshot copies them out."""
    overrides = dict(override_items)
    n = (LAST_DAY - FIRST_DAY).days + 1
    kinds = np.empty(n, np.int8)
    months = np.empty(n, np.int32)
    day = FIRST_DAY
    for i in range(n):
        kinds[i] = day_kind_of(day, overrides)
        months[i] = day.year * 12 + day.month - 1
        day += dt.timedelta(days=1)
    tables: dict[str, np.ndarray] = {
        "calendar_first_day": np.array([DAYS[0]], np.int64),
        "day_kind": kinds,
        "day_month": months,
    }
    for arr in tables.values():
        arr.flags.writeable = False  # shared by every compilation that hits the cache
    return tables
