"""Routing plans: where a call to a 400 number goes, as an operator writes it.

A plan has named destination groups and ordered rules. At call setup the
first rule whose conditions all hold picks a group (see
``rating_core/reference_routing.py`` for the rules in full)::

    routing_plans:
      support:
        max_hops: 3                    # destinations offered per call
        announcement: all_busy         # nothing available
        closed_announcement: closed    # no rule matches
        blacklist: {numbers: ["13800138000"], prefixes: ["170"], regions: [Hebei]}
        whitelist: {numbers: ["13800138001"]}
        groups:
          day:
            strategy: round_robin      # sequential | round_robin | random | weighted
            caller_memory: true        # last answering destination first
            overflow: night            # appended after this group's destinations
            destinations:
              - {number: "0755-12345678", ring_timeout: 20, max_calls: 4}
              - {number: "13912345678"}
          night: {destinations: [{number: "13700000000"}]}
        rules:
          - group: day
            schedule: [{day_kinds: [workday], start: "09:00", end: "18:00"}]
            caller_regions: [Guangdong, Beijing]
          - {group: night}
        ivr:                           # optional menu; keys pressed reach a group
          prompt: welcome
          options:
            - {key: "1", label: sales, group: day}
            - {key: "2", label: more, menu: {prompt: more, options: [...]}}

Region names are the region data's English names (provinces or cities, as
``rating_core/compile/regions.py`` derives them from ``phonenumbers``).
"""
from __future__ import annotations

from collections.abc import Mapping

import re
from enum import Enum
from typing import Annotated, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import InvalidInput
from ..numbers import normalize

# Domain limits (DOMAIN.md, "Routing features").
RING_TIMEOUT_DEFAULT = 15
RING_TIMEOUT_MIN, RING_TIMEOUT_MAX = 10, 30
MAX_HOPS_LIMIT = 10  # destinations offered to one call, at most
OVERFLOW_CHAIN_LIMIT = 16  # groups one call can overflow through (kernels/routing.pxd MAX_CHAIN)
IVR_DEPTH_LIMIT = 5  # menus nest up to 5 levels
IVR_KEYS = "0123456789*#"
IVR_OPTIONS_LIMIT = 10  # one level has up to 10 keys
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# An integer field of a catalog or routing plan (a count, seconds, a
# percent): a YAML integer only, never text or a float coerced. Lax pydantic
# read ``unit: 0180`` (text to YAML 1.1, whose octal has no 8) as 180, and
# ``"60"`` or ``60.0`` as 60: a problem naming the field now.
Count = Annotated[int, Field(strict=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Strategy(str, Enum):
    """How a group orders its destinations for one call."""

    sequential = "sequential"  # in the written order: hunt with overflow
    round_robin = "round_robin"  # start after the destination the last call started at
    random = "random"  # a uniformly random order
    weighted = "weighted"  # drawn by whole-percent weights summing to 100


STRATEGIES = list(Strategy)


def _number(value: str, field: str) -> str:
    try:
        return normalize(value, field)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


class Destination(_Model):
    number: str  # landline with area code, mobile, or PBX trunk number
    ring_timeout: Count = Field(RING_TIMEOUT_DEFAULT, ge=RING_TIMEOUT_MIN, le=RING_TIMEOUT_MAX)
    max_calls: Optional[Count] = Field(None, ge=1)  # concurrency cap; None: no cap
    weight: Optional[Count] = Field(None, ge=1, le=100)  # percent, weighted groups only

    @field_validator("number", mode="before")
    @classmethod
    def _normal(cls, v):
        return _number(v, "number")


class Group(_Model):
    strategy: Strategy = Strategy.sequential
    caller_memory: bool = False
    overflow: Optional[str] = None  # a group of the same plan, tried after this one
    destinations: list[Destination] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _weights(self):
        weights = [d.weight for d in self.destinations]
        if self.strategy is Strategy.weighted:
            if None in weights or sum(weights) != 100:
                raise ValueError("weighted: every destination needs a whole-percent weight, summing to 100")
        elif any(w is not None for w in weights):
            raise ValueError(f"weight: only weighted groups take weights (strategy is {self.strategy.value})")
        numbers = [d.number for d in self.destinations]
        if len(set(numbers)) != len(numbers):
            raise ValueError("destinations: a number is listed twice in the group")
        return self


_CLOCK = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")


def minute_of_day(clock: str) -> int:
    m = _CLOCK.match(clock)
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"{clock!r} is not a local time HH:MM (00:00-24:00)")
    return int(m.group(1)) * 60 + int(m.group(2))


class Segment(_Model):
    """A schedule segment; every condition given must hold (local time,
    Asia/Shanghai). ``start`` > ``end`` wraps past midnight: 22:00-06:00
    is [22:00, 24:00) and [00:00, 06:00) of any matching day."""

    weekdays: Optional[list[str]] = None  # mon..sun; by the calendar week
    day_kinds: Optional[list[str]] = None  # workday, weekend, holiday (official calendar, 调休)
    start: str = "00:00"
    end: str = "24:00"

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, v):
        if v is not None:
            bad = [d for d in v if d not in WEEKDAYS]
            if bad or not v:
                raise ValueError(f"weekdays: {bad or 'empty'}: use {', '.join(WEEKDAYS)}")
        return v

    @field_validator("day_kinds")
    @classmethod
    def _kinds(cls, v):
        if v is not None:
            bad = [d for d in v if d not in ("workday", "weekend", "holiday")]
            if bad or not v:
                raise ValueError(f"day_kinds: {bad or 'empty'}: use workday, weekend, holiday")
        return v

    @model_validator(mode="after")
    def _window(self):
        a, b = minute_of_day(self.start), minute_of_day(self.end)
        if a == b or a == 1440:
            raise ValueError(f"start {self.start} / end {self.end}: an empty window")
        return self


class Rule(_Model):
    """Selects ``group`` when all its conditions hold; omitted ones match."""

    group: str
    schedule: Optional[list[Segment]] = Field(None, min_length=1)  # any segment
    caller_regions: Optional[list[str]] = Field(None, min_length=1)  # province or city names
    ivr: Optional[str] = None  # complete key path, e.g. "12"


class IvrOption(_Model):
    key: str
    label: str = ""
    group: Optional[str] = None  # a leaf: the group the keys select ...
    menu: Optional["IvrMenu"] = None  # ... or a submenu

    @field_validator("key")
    @classmethod
    def _key(cls, v):
        if len(v) != 1 or v not in IVR_KEYS:
            raise ValueError(f"{v!r}: a key is one of {IVR_KEYS}")
        return v

    @model_validator(mode="after")
    def _leaf_or_menu(self):
        if (self.group is None) == (self.menu is None):
            raise ValueError("an option has exactly one of group or menu")
        return self


class IvrMenu(_Model):
    prompt: str = ""
    options: list[IvrOption] = Field(min_length=1, max_length=IVR_OPTIONS_LIMIT)

    @field_validator("options")
    @classmethod
    def _unique(cls, v):
        keys = [o.key for o in v]
        if len(set(keys)) != len(keys):
            raise ValueError("options: a key is used twice in one menu")
        return v

    def paths(self, prefix: str = "") -> dict[str, IvrOption | None]:
        """Every key path: '' is this menu; a menu path maps to None."""
        out: dict[str, IvrOption | None] = {prefix: None}
        for o in self.options:
            if o.menu is not None:
                out.update(o.menu.paths(prefix + o.key))
            else:
                out[prefix + o.key] = o
        return out

    def depth(self) -> int:
        return 1 + max((o.menu.depth() for o in self.options if o.menu is not None), default=0)


class CallerList(_Model):
    numbers: list[str] = Field(default_factory=list)  # exact caller numbers
    prefixes: list[str] = Field(default_factory=list)  # digit prefixes (138, 0311)
    regions: list[str] = Field(default_factory=list)  # province or city names

    @field_validator("numbers", mode="before")
    @classmethod
    def _numbers(cls, v):
        return [_number(x, "numbers") for x in (v or [])]

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, v):
        bad = [p for p in v if not re.fullmatch(r"[0-9]{1,18}", p)]
        if bad:
            raise ValueError(f"prefixes: {bad}: a prefix is 1-18 digits")
        return v


class RoutingPlan(_Model):
    groups: dict[str, Group] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list)
    ivr: Optional[IvrMenu] = None
    blacklist: CallerList = Field(default_factory=CallerList)
    whitelist: CallerList = Field(default_factory=CallerList)  # wins over the blacklist
    max_hops: Count = Field(5, ge=1, le=MAX_HOPS_LIMIT)
    announcement: Optional[str] = None  # nothing available (all busy)
    closed_announcement: Optional[str] = None  # no rule matches (e.g. out of hours)
    memory_days: Count = Field(30, ge=1, le=3650)  # how long caller memory lasts

    @model_validator(mode="after")
    def _references(self):
        groups = self.groups
        for name, g in groups.items():
            if g.overflow is not None and g.overflow not in groups:
                raise ValueError(f"groups.{name}.overflow: unknown group {g.overflow!r}")
        for name in groups:  # overflow chains end, and soon
            seen, g = {name}, groups[name].overflow
            while g is not None:
                if g in seen:
                    raise ValueError(f"groups.{name}.overflow: the overflow chain loops back to {g!r}")
                seen.add(g)
                g = groups[g].overflow
            if len(seen) > OVERFLOW_CHAIN_LIMIT:
                raise ValueError(f"groups.{name}.overflow: a chain of {len(seen)} groups (at most {OVERFLOW_CHAIN_LIMIT})")
        paths = self.ivr.paths() if self.ivr is not None else {}
        if self.ivr is not None and self.ivr.depth() > IVR_DEPTH_LIMIT:
            raise ValueError(f"ivr: menus nest at most {IVR_DEPTH_LIMIT} levels")
        for path, option in paths.items():
            if option is not None and option.group not in groups:
                raise ValueError(f"ivr: key path {path!r}: unknown group {option.group!r}")
        for i, rule in enumerate(self.rules):
            if rule.group not in groups:
                raise ValueError(f"rules[{i}].group: unknown group {rule.group!r}")
            if rule.ivr is not None and paths.get(rule.ivr, None) is None:
                raise ValueError(f"rules[{i}].ivr: {rule.ivr!r} is not a complete key path of the ivr menu")
        if not self.rules and self.ivr is None:
            raise ValueError("rules: a plan without an ivr menu needs at least one rule")
        return self


IvrOption.model_rebuild()


# The Chinese names of the provinces and autonomous regions -> region data's
# (``phonenumbers``' English) province names: the short name (广东, 内蒙古)
# and the full one (广东省, 内蒙古自治区). The municipalities (北京, 上海,
# 天津, 重庆) are cities of the same name (``city_aliases``), which their
# province covers alike. tests/test_region_aliases.py checks every province
# of the region data has its names here, as its zh descriptions write them.
PROVINCES_ZH = {
    "河北": "Hebei", "山西": "Shanxi", "辽宁": "Liaoning", "吉林": "Jilin", "黑龙江": "Heilongjiang",
    "江苏": "Jiangsu", "浙江": "Zhejiang", "安徽": "Anhui", "福建": "Fujian", "江西": "Jiangxi",
    "山东": "Shandong", "河南": "Henan", "湖北": "Hubei", "湖南": "Hunan", "广东": "Guangdong",
    "海南": "Hainan", "四川": "Sichuan", "贵州": "Guizhou", "云南": "Yunnan", "陕西": "Shaanxi",
    "甘肃": "Gansu", "青海": "Qinghai",
}
AUTONOMOUS_REGIONS_ZH = {
    "内蒙古": ("Inner Mongolia", "内蒙古自治区"), "广西": ("Guangxi", "广西壮族自治区"),
    "西藏": ("Tibet", "西藏自治区"), "宁夏": ("Ningxia", "宁夏回族自治区"), "新疆": ("Xinjiang", "新疆维吾尔自治区"),
}
PROVINCE_ALIASES = {
    **PROVINCES_ZH, **{f"{zh}省": en for zh, en in PROVINCES_ZH.items()},
    **{zh: en for zh, (en, _) in AUTONOMOUS_REGIONS_ZH.items()},
    **{full: en for en, full in AUTONOMOUS_REGIONS_ZH.values()},
}


def canonical_region(name: str, aliases: Mapping[str, str]) -> str:
    """A region name of a routing plan in region data's spelling: a
    province's Chinese name bare or as ``province:NAME`` (``广东``,
    ``广东省``, ``广西壮族自治区``: ``PROVINCE_ALIASES``) -> ``province:Guangdong``;
    a city named bare or as ``city:NAME`` through ``aliases`` (``Lu'an`` ->
    ``city:LuAn``, ``天津`` -> ``city:Tianjin``, ``吉林市`` -> ``city:Jilin``;
    the compiler's ``city_aliases``, kept in the snapshot meta as
    ``city_aliases``); region data's own names and unknown names as
    written. A bare Chinese province name is the province, as Chinese
    writes it (吉林 is the province, 吉林市 the city)."""
    kind, sep, bare = name.partition(":")
    if sep:
        if kind == "province":
            return f"province:{PROVINCE_ALIASES.get(bare, bare)}"
        return f"city:{aliases.get(bare, bare)}" if kind == "city" else name
    if name in PROVINCE_ALIASES:
        return f"province:{PROVINCE_ALIASES[name]}"
    city = aliases.get(name, name)
    # Another spelling names the city, never a province of the same name
    # (吉林市 is the city Jilin, not the province; Gonghe is the prefecture
    # Hainan of Qinghai, not the province Hainan): a bare name resolves to a
    # province first, so the city is named as one.
    return f"city:{city}" if city != name else name


def canonical_plan_regions(plan: dict, aliases: Mapping[str, str]) -> None:
    """Every region name of a plan document (a dict, before validation:
    rules' ``caller_regions``, black/white list ``regions``) through
    ``canonical_region``, in place; values that are not lists of strings
    are left for the validator."""
    def canonical(names):
        if not isinstance(names, list):
            return names
        return [canonical_region(n, aliases) if isinstance(n, str) else n for n in names]

    rules = plan.get("rules")
    for rule in rules if isinstance(rules, list) else ():
        if isinstance(rule, dict) and "caller_regions" in rule:
            rule["caller_regions"] = canonical(rule["caller_regions"])
    for lst in ("blacklist", "whitelist"):
        if isinstance(plan.get(lst), dict) and "regions" in plan[lst]:
            plan[lst]["regions"] = canonical(plan[lst]["regions"])


def region_names(plan: RoutingPlan) -> list[tuple[str, str]]:
    """(field, name) of every region name ``plan`` uses, the field relative
    to the plan (``rules[0].caller_regions``, ``blacklist.regions``)."""
    named = [(f"rules[{i}].caller_regions", r) for i, rule in enumerate(plan.rules) for r in rule.caller_regions or ()]
    named += [(f"{lst}.regions", r) for lst in ("blacklist", "whitelist") for r in getattr(plan, lst).regions]
    return named


def near_region(name: str, known: list[str]) -> str:
    """``; did you mean 'LuAn'?`` for a region name spelled nearly like
    a known one (``nearest_region``), else ``""``."""
    found = nearest_region(name, known)
    return "" if found is None else f"; did you mean {found!r}?"


def nearest_region(name: str, known: list[str]) -> str | None:
    """The known region name ``name`` is spelled nearly like (case, an
    apostrophe, a letter, pinyin written with tone marks: ``Guǎngdōng``
    reads as ``Guangdong``), else None. A Chinese name (two or three
    characters, where one wrong character is a third or half of it) is near
    the one known name it differs from least, when no other is as near, or
    the longest known name it starts with (``广东地区`` -> ``广东``)."""
    import difflib
    import unicodedata

    bare = name.partition(":")[2] or name
    toneless = "".join(c for c in unicodedata.normalize("NFD", bare) if not unicodedata.combining(c))
    if not any("\u4e00" <= c <= "\u9fff" for c in bare):
        bare = unicodedata.normalize("NFC", toneless)  # pinyin tone marks off; CJK left as written
    folded = {k.casefold().replace("'", ""): k for k in known}
    found = difflib.get_close_matches(bare.casefold().replace("'", ""), list(folded), n=1, cutoff=0.8)
    if found:
        return folded[found[0]]
    if not any("\u4e00" <= c <= "\u9fff" for c in bare):
        return None
    starts = [k for k in known if len(k) >= 2 and bare.startswith(k)]
    if starts:
        return max(starts, key=len)
    ratio = {k: difflib.SequenceMatcher(None, bare, k).ratio() for k in known if any("\u4e00" <= c <= "\u9fff" for c in k)}
    best = max(ratio.values(), default=0.0)
    near = [k for k, r in ratio.items() if r == best]
    return near[0] if best >= 0.5 and len(near) == 1 else None


def check_routing(catalog, path, regions=None) -> list[str]:
    """Cross-checks that need region data: every region name a plan uses
    is a province or city of it (``"Guangdong"``, ``"city:Jilin"``,
    ``"province:Jilin"``). Called by the loader when it has region data
    (``regions`` is not None)."""
    if regions is None:
        return []
    from ..compile.regions import city_aliases, region_source  # region data (phonenumbers), not LMDB
    from ..routes import resolve_region

    src = region_source()
    cities = {c: i for i, c in enumerate(src.cities)}
    provinces = {p: i for i, p in enumerate(src.provinces)}
    problems = []
    for pid, plan in catalog.routing_plans.items():
        for field, name in region_names(plan):
            if resolve_region(name, cities, provinces) is None:
                near = near_region(name, [*city_aliases(), *PROVINCE_ALIASES, *cities, *provinces])
                problems.append(f"{path}: routing_plans.{pid}.{field}: unknown region {name!r} "
                                f"(not a province or city of the region data){near}")
    return problems
