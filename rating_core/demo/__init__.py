"""The demo: a realistic small reseller catalog and synthetic CDRs for it.

``write_demo_catalog(dir)`` copies the bundled catalog (``catalog.yaml``,
``destination_prefixes.csv``, ``numbers.csv``) into ``dir``;
``demo_cdrs(n, seed)`` makes ``n`` CDRs for October 2026 (it holds the
National Day week, so the holiday band shows) against those numbers.

The CDRs are shaped like a platform's export: about 75% answered; callers
from real mobile prefixes (号段) and landline area codes across the
country, drawn from ``phonenumbers``' geocoding data, a few withheld;
talk time lognormal (median about 90 s, long tail, capped at 3 hours);
more calls in working hours; rows in time order apart from small jitter;
and a sprinkle (~0.1% each) of malformed rows, unknown 400 numbers and
duplicate call ids, so every path of the rater shows. Generation is
NumPy and pyarrow compute throughout: millions of rows per second.
"""
from __future__ import annotations

import datetime as dt
import functools
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .. import layout

FILES = ("catalog.yaml", "destination_prefixes.csv", "numbers.csv", "campaigns.csv",
         "returning_caller.csv")  # two calls of 13812345678, the CRM examples in README
MONTH_START = dt.datetime(2026, 10, 1, tzinfo=layout.LOCAL_TZ)
MONTH_DAYS = 31
TIME_TYPE = pa.timestamp("ms", tz="+08:00")


def write_demo_catalog(directory: str | Path) -> Path:
    """Copy the demo catalog files into ``directory``; the YAML's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    src = resources.files(__package__)
    for name in FILES:
        with resources.as_file(src / name) as p:
            shutil.copyfile(p, directory / name)
    return directory / "catalog.yaml"


def demo_store(root: str | Path):
    """The demo catalog written to ``root/catalog``, compiled and activated
    in ``root/store`` -> (store directory, its ``Store``)."""
    from ..store import Store

    root = Path(root)
    store = Store(root / "store")
    store.activate(store.compile(write_demo_catalog(root / "catalog")))
    return root / "store", store


@functools.lru_cache(maxsize=1)
def _numbers() -> pa.Table:
    with resources.as_file(resources.files(__package__) / "numbers.csv") as p:
        return pacsv.read_csv(p, convert_options=pacsv.ConvertOptions(column_types={"number": pa.string()}))


@functools.lru_cache(maxsize=1)
def _caller_prefixes() -> tuple[np.ndarray, np.ndarray]:
    """Mobile 7-digit prefixes and landline area codes (without the trunk
    zero) from phonenumbers' China geocoding data, as integers."""
    from phonenumbers.geodata import GEOCODE_DATA

    mobile, landline = [], []
    for key, desc in GEOCODE_DATA.items():
        if not key.startswith("86") or desc.get("en") in (None, "China"):
            continue
        p = key[2:]
        if p[0] == "1" and len(p) == 7:
            mobile.append(int(p))
        elif p[0] != "1" or p == "10":
            if len(p) <= 3:  # area codes (10, 20-29, 3xx-9xx), not sub-blocks
                landline.append(int(p))
    return np.array(sorted(mobile), np.int64), np.array(sorted(set(landline)), np.int64)


def _home_prefixes(numbers: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per demo number: (offset, count) of its home city's mobile prefixes
    in one pooled array."""
    from ..compile.regions import region_source

    src = region_source()
    by_city: dict[int, list[int]] = {}
    for prefix, city in src.city_prefixes.items():
        if len(prefix) == 7 and prefix[0] == "1":
            by_city.setdefault(city, []).append(int(prefix))
    city_id = {c: i for i, c in enumerate(src.cities)}
    offsets, counts, pool = [], [], []
    for city in numbers.column("home_city").to_pylist():
        prefixes = by_city.get(city_id.get(city, -1)) or [1380000]
        offsets.append(len(pool))
        counts.append(len(prefixes))
        pool.extend(prefixes)
    return np.array(offsets, np.int64), np.array(counts, np.int64), np.array(pool, np.int64)


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _digits(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, pa.int64()), pa.string())


def demo_cdrs(n: int, seed: int = 400) -> pa.Table:
    """``n`` synthetic CDRs for the demo catalog (see the module doc)."""
    rng = np.random.default_rng(seed)
    numbers = _numbers()
    n_numbers = numbers.num_rows

    # Which 400 number: a few numbers take most calls (Zipf-like weights).
    weights = 1.0 / np.arange(1, n_numbers + 1) ** 0.8
    weights = rng.permutation(weights)
    # Suspended and pending numbers still get the odd call (rejected).
    weights *= np.where(pc.equal(numbers.column("status"), "active").to_numpy(), 1.0, 0.02)
    which = rng.choice(n_numbers, size=n, p=weights / weights.sum())
    number = numbers.column("number").combine_chunks().take(pa.array(which))
    ivr = pc.equal(numbers.column("billing_start"), "ivr_answer").to_numpy()[which]

    # Callers: 62% mobile, 35% landline, 3% withheld. Strings are built
    # for the rows that need them and scattered in (replace_with_mask).
    mobile_prefixes, area_codes = _caller_prefixes()
    kind = rng.random(n)
    styled = rng.random(n)
    mob = mobile_prefixes[rng.integers(0, len(mobile_prefixes), n)] * 10_000 + rng.integers(0, 10_000, n)
    # A quarter of mobile callers are local: a prefix of the number's home city.
    home = _home_prefixes(numbers)
    local = kind < 0.25
    offsets, counts, pool = home[0][which[local]], home[1][which[local]], home[2]
    mob[local] = pool[offsets + (rng.random(int(local.sum())) * counts).astype(np.int64)] * 10_000 + rng.integers(0, 10_000, int(local.sum()))
    caller = _digits(mob)
    is_land = kind >= 0.62
    k = int(is_land.sum())
    area = area_codes[rng.integers(0, len(area_codes), k)]
    # Subscriber numbers: 8 digits after a 2-digit area code, 7 after a 3-digit one.
    sub = np.where(area < 100, rng.integers(20_000_000, 90_000_000, k), rng.integers(2_000_000, 9_000_000, k))
    # Exports are not tidy: some landlines written with a dash, some
    # mobiles as +86 138...
    dash = styled[is_land] > 0.995
    land = _join("0", _digits(area), pc.if_else(pa.array(dash), "-", ""), _digits(sub))
    caller = pc.replace_with_mask(caller, pa.array(is_land), land)
    intl = (styled < 0.01) & ~is_land
    caller = pc.replace_with_mask(caller, pa.array(intl), _join("+86 ", _digits(mob[intl])))
    caller = pc.if_else(pa.array(kind > 0.97), pa.scalar(None, pa.string()), caller)

    # Destinations: each number forwards to one of three of its own
    # (a mobile, a landline in some city, or a PBX trunk DID block).
    dest_mob = _digits(rng.integers(13_000_000_000, 19_999_999_999, 3 * n_numbers))
    dest_area = area_codes[rng.integers(0, len(area_codes), 3 * n_numbers)]
    dest_land = _join("0", _digits(dest_area), _digits(rng.integers(2_000_000, 9_000_000, 3 * n_numbers)))
    dest_trunk = _join("0755866", _digits(rng.integers(10_000, 99_999, 3 * n_numbers)))
    pick = rng.random(3 * n_numbers)
    dests = pc.if_else(pa.array(pick < 0.5), dest_mob, pc.if_else(pa.array(pick < 0.9), dest_land, dest_trunk))
    slot = np.minimum(rng.geometric(0.6, n) - 1, 2)  # hunt order: mostly the first
    forwarded_to = dests.take(pa.array(which * 3 + slot))

    # Starts: over the month, busier in working hours, then sorted (the
    # export is in time order) with a little jitter left in.
    day = rng.integers(0, MONTH_DAYS, n)
    hour_weights = np.array([1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 18, 16, 12, 14, 18, 18, 16, 12, 8, 6, 5, 4, 2, 1], float)
    hour = rng.choice(24, size=n, p=hour_weights / hour_weights.sum())
    start = (int(MONTH_START.timestamp() * 1000) + day * 86_400_000 + hour * 3_600_000
             + rng.integers(0, 3_600_000, n))
    start.sort()
    start += np.where(rng.random(n) < 0.01, rng.integers(-30_000, 30_000, n), 0)

    # IVR answers within 1-3 s on numbers with an IVR (98% reach it); an
    # agent answers 75% of calls after 5-25 s of ringing; talk is lognormal.
    ivr_at = np.where(ivr & (rng.random(n) < 0.98), start + rng.integers(800, 3_000, n), 0)
    ring = rng.integers(5_000, 25_000, n) + np.where(ivr_at > 0, rng.integers(8_000, 30_000, n), 0)
    answered = rng.random(n) < 0.75
    agent_at = np.where(answered, start + ring, 0)
    talk = np.minimum(rng.lognormal(np.log(90_000), 1.0, n), 3 * 3_600_000).astype(np.int64)
    end = np.where(answered, agent_at + talk, start + ring + rng.integers(0, 10_000, n))

    causes = pa.array(["normal_clearing", "no_answer", "user_busy", "originator_cancel"])
    cause = np.where(answered, 0, rng.choice([1, 2, 3], size=n, p=[0.5, 0.2, 0.3]))

    call_ids = _join(f"d{seed:x}-", _digits(np.arange(1, n + 1) + 10_000_000))
    table = pa.table({
        "call_id": call_ids,
        "caller": caller,
        "number": number,
        "forwarded_to": forwarded_to,
        "start": _times(start),
        "ivr_answer": _times(ivr_at),
        "agent_answer": _times(agent_at),
        "end": _times(end),
        "hangup_cause": pa.DictionaryArray.from_arrays(pa.array(cause, pa.int8()), causes),
    })
    return _sprinkle(table, rng)


def _single(col: pa.ChunkedArray) -> pa.Array:
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def _times(ms: np.ndarray) -> pa.Array:
    return pa.array(ms, TIME_TYPE, mask=ms == 0)


def _sprinkle(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    """Damage ~0.1% of rows each way: malformed numbers, a missing start,
    end before start, unknown 400 numbers, repeated call ids."""
    n = table.num_rows
    if n < 2:
        return table
    cols = {name: _single(table.column(name)) for name in table.column_names}
    r = rng.random(n)

    def put(name, mask, value):
        if mask.any():
            cols[name] = pc.if_else(pa.array(mask), value, cols[name])

    put("caller", r < 0.0004, pa.scalar("138-0013-80O0"))  # a letter O typed for a zero
    put("forwarded_to", (r >= 0.0004) & (r < 0.0006), pa.scalar("ext. 8001"))
    put("start", (r >= 0.0006) & (r < 0.0008), pa.scalar(None, TIME_TYPE))
    put("end", (r >= 0.0008) & (r < 0.0010), pc.subtract(cols["start"].cast(pa.int64()), 60_000).cast(TIME_TYPE))
    put("number", (r >= 0.0010) & (r < 0.0025), _join("400", _digits(rng.integers(1_000_000, 9_999_999, n))))
    # A retransmitted record: the call id of an earlier row.
    dup = np.flatnonzero((r >= 0.0025) & (r < 0.0030))
    dup = dup[dup > 0]
    if len(dup):
        ids = cols["call_id"]
        mask = np.zeros(n, bool)
        mask[dup] = True
        cols["call_id"] = pc.replace_with_mask(ids, pa.array(mask), ids.take(pa.array(dup - 1 - rng.integers(0, np.minimum(dup, 50)))))
    return pa.table(cols)
