"""China region data from ``phonenumbers``: caller -> city, province, carrier.

Raw tables: ``phonenumbers.geodata.GEOCODE_DATA`` and
``phonenumbers.carrierdata.CARRIER_DATA``, keys ``'86' + national prefix``.
We turn each key into a prefix in our normal form: mobile prefixes
(``1[3-9]...``) stay as they are, landline area codes get their trunk zero
(``8610`` -> ``010``). English descriptions ``"City, Province"`` give the
city (before the comma) and province (after; a municipality is its own
province). A city name found in two provinces is qualified with its
province (``"Fuzhou, Jiangxi"``) so that names identify cities. 16x, 19x and 171-175 carry no city: they resolve to nothing.

One name per city (``canonical_entries``): the data's mobile prefixes and
its landline area codes spell some cities differently (``LuAn, Anhui`` on
339 mobile prefixes, ``Lu'an, Anhui`` on area code 0564; ``Xichang`` for
Liangshan's area code, ``Huhehaote`` for Hohhot's), which split one city
in two in every report and routing rule. The Chinese description names the
prefecture once (``安徽省六安市``), so every prefix of one Chinese description
takes the English name most of them carry; the other spellings stay
accepted as names in a catalog (``city_aliases``).
"""
from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import numpy as np
import phonenumbers

from ..numbers import build_prefix_table


def national_prefix(key: str) -> str:
    """``'86' + p`` -> our normal form of prefix p."""
    p = key[2:]
    if len(p) >= 2 and p[0] == "1" and p[1] in "3456789":
        return p  # mobile
    return "0" + p  # landline area code: national form keeps the trunk zero


def split_description(en: str) -> tuple[str, str]:
    city, _, province = en.partition(", ")
    return city, (province or city)


@dataclass(frozen=True)
class RegionSource:
    """Region data in normal number form, for the compiler and the reference."""

    cities: list[str]  # city id -> name
    provinces: list[str]  # province id -> name
    city_province: list[int]
    city_prefixes: dict[str, int]  # prefix -> city id
    carriers: list[str]
    carrier_prefixes: dict[str, int]  # prefix -> carrier id
    version: str


def _city_names(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """One unique name per (city, province): the bare city name, or
    ``"City, Province"`` where the same name exists in two provinces
    (Fuzhou, Taizhou, Suzhou, Yulin, Yichun, Tongren)."""
    seen: dict[str, int] = {}
    for city, _ in pairs:
        seen[city] = seen.get(city, 0) + 1
    return {(c, p): c if seen[c] == 1 else f"{c}, {p}" for c, p in pairs}


@functools.lru_cache(maxsize=1)
def _data() -> tuple[dict, dict]:
    """``phonenumbers``' (GEOCODE_DATA, CARRIER_DATA), imported on first use
    and together (a compile needs both): loading them costs ~0.5 s, and
    every worker (re)start imports this package (the accounts view compiles
    plans with it) without needing them."""
    from phonenumbers.carrierdata import CARRIER_DATA
    from phonenumbers.geodata import GEOCODE_DATA

    return GEOCODE_DATA, CARRIER_DATA


@functools.lru_cache(maxsize=1)
def canonical_entries() -> list[tuple[str, tuple[str, str], tuple[str, str], str]]:
    """Every China prefix with a city: (prefix in normal form, (city,
    province) as the region data's name for it, (city, province) as its own
    entry spells it, its Chinese description). The name is the English
    description most prefixes of the same Chinese description carry (ties:
    the first in sorted order), so one prefecture has one name whichever
    table (mobile prefixes, landline area codes) a caller's number is in."""
    GEOCODE_DATA = _data()[0]
    raw = []
    for key, desc in GEOCODE_DATA.items():
        en = desc.get("en")
        if not key.startswith("86") or not en or en == "China":
            continue
        raw.append((national_prefix(key), split_description(en), desc.get("zh") or ""))
    spellings: dict[str, dict[tuple[str, str], int]] = {}
    for _, pair, zh in raw:
        if zh:
            counts = spellings.setdefault(zh, {})
            counts[pair] = counts.get(pair, 0) + 1
    name = {zh: min(counts, key=lambda p: (-counts[p], p)) for zh, counts in spellings.items()}
    return [(prefix, name.get(zh, pair), pair, zh) for prefix, pair, zh in raw]


@functools.lru_cache(maxsize=1)
def region_source() -> RegionSource:
    _, CARRIER_DATA = _data()
    entries = [(prefix, pair) for prefix, pair, _, _ in canonical_entries()]
    names = _city_names({pair for _, pair in entries})
    cities: dict[str, int] = {}
    provinces: dict[str, int] = {}
    city_province: list[int] = []
    city_prefixes: dict[str, int] = {}
    for prefix, (city, province) in entries:
        name = names[(city, province)]
        if name not in cities:
            cities[name] = len(cities)
            city_province.append(provinces.setdefault(province, len(provinces)))
        city_prefixes[prefix] = cities[name]
    carriers: dict[str, int] = {}
    carrier_prefixes: dict[str, int] = {}
    for key, desc in CARRIER_DATA.items():
        if not key.startswith("86"):
            continue
        carrier = desc.get("en")
        if not carrier:
            continue
        carrier_prefixes[national_prefix(key)] = carriers.setdefault(carrier, len(carriers))
    return RegionSource(
        cities=list(cities),
        provinces=list(provinces),
        city_province=city_province,
        city_prefixes=city_prefixes,
        carriers=list(carriers),
        carrier_prefixes=carrier_prefixes,
        version=phonenumbers.__version__,
    )


@functools.lru_cache(maxsize=1)
def city_aliases() -> dict[str, str]:
    """Every way a catalog may name a city -> the region data's name: the
    name itself (``Tianjin``, ``Fuzhou, Jiangxi``) and the Chinese names of
    ``phonenumbers``' zh descriptions (``天津``, ``天津市``; ``沈阳``,
    ``沈阳市``, ``辽宁省沈阳市``). A Chinese name shared by two cities is left
    out (the region data's own name says which). The other English spellings
    of a city (``Lu'an`` for ``LuAn``, ``canonical_entries``) name it too,
    when they name no other city; so do, with less priority, a city with its
    province (``Hainan, Qinghai``), its name without tone marks (``Luliang``)
    and one city of a name for several (``Sanya``, ``三亚`` for ``Haikou/Sanya``)."""
    entries = canonical_entries()
    names = _city_names({pair for _, pair, _, _ in entries})
    out = {name: name for name in names.values()}
    other: dict[str, set[str]] = {}
    for _, pair, spelled, _ in entries:
        if spelled != pair:
            city, province = spelled
            for alias in (city, f"{city}, {province}"):
                other.setdefault(alias, set()).add(names[pair])
    for alias, found in other.items():
        if len(found) == 1 and alias not in out:
            out[alias] = next(iter(found))
    zh: dict[str, set[str]] = {}
    for _, pair, _, full in entries:
        if not full:
            continue
        name = names[pair]
        city = full
        for end in ("省", "自治区"):  # 辽宁省沈阳市 -> 沈阳市; 新疆维吾尔自治区乌鲁木齐市 -> 乌鲁木齐市
            if end in city:
                city = city.split(end, 1)[1] or city
        for region in ("广西", "内蒙古", "西藏", "宁夏", "新疆"):  # 广西南宁市 -> 南宁市
            if city.startswith(region) and len(city) > len(region):
                city = city[len(region):]
        for alias in {full, city, city.removesuffix("市")}:
            if alias:
                zh.setdefault(alias, set()).add(name)
    for alias, found in zh.items():
        if len(found) == 1 and alias not in out:
            out[alias] = next(iter(found))
    # Names a person types that the data spells otherwise, each when it
    # names no other city (csvin reviewer: Sanya, 三亚 were unknown): a
    # city and its province (``Hainan, Qinghai``: Hainan alone is also a
    # province); a name without its tone marks (``Luliang`` for
    # ``Lüliang``); one city of a description naming several (``Sanya``,
    # ``三亚`` of ``Haikou/Sanya``, 海南省海口市、三亚市).
    # A city's own name first: Luliang is Lüliang, not Jinzhong/Luliang.
    own: dict[str, set[str]] = {}
    parts: dict[str, set[str]] = {}
    for _, pair, _, full in entries:
        name = names[pair]
        toneless = "".join(c for c in unicodedata.normalize("NFD", name) if not unicodedata.combining(c))
        for alias in ("" if "," in name else f"{name}, {pair[1]}", toneless):
            own.setdefault(alias, set()).add(name)
        several = name.split("/") if "/" in name else []
        if full and "、" in full:
            several += [p for part in full.split("、") for p in (part, part.removesuffix("市"))]
        for alias in several:
            parts.setdefault(alias, set()).add(name)
    for typed in (own, parts):
        for alias, found in typed.items():
            if alias and len(found) == 1 and alias not in out:
                out[alias] = next(iter(found))
    return out


def region_tables(src: RegionSource) -> dict[str, np.ndarray]:
    rs, rv = build_prefix_table(list(src.city_prefixes), list(src.city_prefixes.values()))
    cs, cv = build_prefix_table(list(src.carrier_prefixes), list(src.carrier_prefixes.values()))
    return {
        "region_starts": rs,
        "region_values": rv,
        "carrier_starts": cs,
        "carrier_values": cv,
        "city_province": np.asarray(src.city_province, np.int32),
    }
