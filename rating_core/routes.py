"""Routing plans -> ``route_*`` snapshot tables (read by kernels/routing.pyx).

Built by the catalog compiler for the catalog's plans and by the live
customer layer (``accounts.view``) for a number whose routing an operation
changed; so it lives outside ``compile/``, which the runtime never imports.

Ids: plans are ``CompileIds.plans`` (meta["routing_plans"]); rules, groups
and destination entries are numbered plan by plan in catalog order; every
per-plan list is one contiguous slice ``[first, first + count)`` of a flat
table. Destination numbers become *lines* (one per distinct normalised
number, sorted by key): concurrency counts are per line, because a line is
busy whichever group offered it. Strings the decision returns (destination
numbers, announcements, names, IVR menus as JSON) live in one text pool,
``route_text_bytes`` sliced by ``route_text_offsets``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from . import layout
from .catalog.routing import STRATEGIES, WEEKDAYS, canonical_region, minute_of_day
from .catalog.schema import Catalog
from .errors import CatalogError
from .numbers import build_prefix_table, keys_of, lookup

from .routing_layout import (  # noqa: F401 - the layout the compiler writes, shared with the runtime
    DAY_KIND_BITS, IVR_BASE, LIST_BLACK, LIST_NONE, LIST_WHITE, NO_CAP, NO_IVR, NO_TEXT, REGION_CITY,
    REGION_PROVINCE, ROUTING_TABLES, ivr_path_code, text_of,
)


def resolve_region(name: str, cities: dict[str, int], provinces: dict[str, int]) -> tuple[int, int] | None:
    """``"Guangdong"``, ``"province:Jilin"``, ``"city:Jilin"`` -> (kind, id).
    A bare name is a province when one has it (municipalities such as
    Beijing are both; the province covers the city), else a city."""
    kind, _, bare = name.partition(":")
    if bare and kind == "city":
        return (REGION_CITY, cities[bare]) if bare in cities else None
    if bare and kind == "province":
        return (REGION_PROVINCE, provinces[bare]) if bare in provinces else None
    if name in provinces:
        return REGION_PROVINCE, provinces[name]
    if name in cities:
        return REGION_CITY, cities[name]
    return None


class _Text:
    def __init__(self):
        self.ids: dict[str, int] = {}

    def __call__(self, s: str | None) -> int:
        if s is None:
            return NO_TEXT
        return self.ids.setdefault(s, len(self.ids))

    def tables(self):
        blobs = [s.encode("utf-8") for s in self.ids]
        offsets = np.zeros(len(blobs) + 1, np.int64)
        offsets[1:] = np.cumsum([len(b) for b in blobs])
        data = np.frombuffer(b"".join(blobs) or b"\0", np.uint8).copy()
        return data, offsets


def _menu_json(menu) -> str:
    def node(m):
        return {"prompt": m.prompt, "options": [
            {"key": o.key, "label": o.label, "group": o.group or "",
             **({"menu": node(o.menu)} if o.menu is not None else {})} for o in m.options]}
    return json.dumps(node(menu), ensure_ascii=False, separators=(",", ":"))


def routing_tables(cat: Catalog, ids, tables: dict[str, np.ndarray],
                   unknown_regions: list[str] | None = None,
                   aliases: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
    """Compile every routing plan; ``ids`` are the compiler's id maps,
    ``tables`` the tables compiled so far (for destination classes).
    A region name no province or city has raises CatalogError naming it;
    with ``unknown_regions`` (a list, the live view's) it is appended there
    instead and matches no caller: a rule naming only it never applies and
    a list entry of it neither blocks nor exempts anyone, which is what a
    region without callers means. ``aliases``: other spellings of cities
    (``canonical_region``), for plans stored by operations."""
    cities = dict(ids.cities)
    provinces = {p: i for i, p in enumerate(ids.regions.provinces)}
    n_cities = len(cities)
    text = _Text()
    problems: list[str] = []
    col: dict[str, list] = {name: [] for name in ROUTING_TABLES}
    list_starts: list[np.ndarray] = []
    list_values: list[np.ndarray] = []
    list_len = 0
    region_rows: list[np.ndarray] = []
    dest_numbers: list[str] = []

    def region(name, where):
        r = resolve_region(canonical_region(name, aliases) if aliases else name, cities, provinces)
        if r is None:
            problems.append(f"routing_plans.{where}: unknown region {name!r}")
        return r

    for pid, plan in zip(ids.plans, (cat.routing_plans[p] for p in ids.plans)):
        memory = any(g.caller_memory for g in plan.groups.values())
        col["route_plan_name"].append(text(pid))
        col["route_plan_max_hops"].append(plan.max_hops)
        col["route_plan_announcement"].append(text(plan.announcement))
        col["route_plan_closed_announcement"].append(text(plan.closed_announcement or plan.announcement))
        col["route_plan_memory_ms"].append(plan.memory_days * 86_400_000 if memory else 0)

        # Groups and their destination entries.
        group_ids = {}
        col["route_plan_first_group"].append(len(col["route_group_name"]))
        col["route_plan_n_groups"].append(len(plan.groups))
        for gname in plan.groups:
            group_ids[gname] = len(col["route_group_name"]) + len(group_ids)
        for gname, g in plan.groups.items():
            gid = len(col["route_group_name"])
            col["route_group_name"].append(text(gname))
            col["route_group_plan"].append(len(col["route_plan_name"]) - 1)
            col["route_group_strategy"].append(STRATEGIES.index(g.strategy))
            col["route_group_memory"].append(int(g.caller_memory))
            col["route_group_overflow"].append(group_ids[g.overflow] if g.overflow else -1)
            col["route_group_first_dest"].append(len(col["route_dest_group"]))
            col["route_group_n_dest"].append(len(g.destinations))
            col["route_group_total_weight"].append(sum(d.weight or 0 for d in g.destinations))
            for d in g.destinations:
                col["route_dest_group"].append(gid)
                dest_numbers.append(d.number)
                col["route_dest_ring"].append(d.ring_timeout)
                col["route_dest_cap"].append(d.max_calls if d.max_calls is not None else NO_CAP)
                col["route_dest_weight"].append(d.weight or 0)

        # IVR menu nodes: every key path, sorted by code.
        nodes = sorted((ivr_path_code(p), group_ids[o.group] if o is not None and o.group is not None else -1)
                       for p, o in (plan.ivr.paths() if plan.ivr else {}).items())
        col["route_plan_ivr_first"].append(len(col["route_ivr_path"]))
        col["route_plan_ivr_count"].append(len(nodes))
        col["route_plan_menu"].append(text(_menu_json(plan.ivr)) if plan.ivr else NO_TEXT)
        for code, gid in nodes:
            col["route_ivr_path"].append(code)
            col["route_ivr_group"].append(gid)

        # Rules.
        col["route_plan_first_rule"].append(len(col["route_rule_group"]))
        col["route_plan_n_rules"].append(len(plan.rules))
        for i, rule in enumerate(plan.rules):
            col["route_rule_group"].append(group_ids[rule.group])
            col["route_rule_ivr"].append(ivr_path_code(rule.ivr) if rule.ivr is not None else NO_IVR)
            col["route_rule_sched_first"].append(len(col["route_sched_weekdays"]))
            col["route_rule_sched_count"].append(len(rule.schedule or ()))
            for seg in rule.schedule or ():
                days = seg.weekdays or WEEKDAYS
                kinds = seg.day_kinds or list(DAY_KIND_BITS)
                col["route_sched_weekdays"].append(sum(1 << WEEKDAYS.index(d) for d in days))
                col["route_sched_day_kinds"].append(sum(DAY_KIND_BITS[k] for k in kinds))
                col["route_sched_start_min"].append(minute_of_day(seg.start))
                col["route_sched_end_min"].append(minute_of_day(seg.end))
            col["route_rule_region_first"].append(len(col["route_region_kind"]))
            col["route_rule_region_count"].append(len(rule.caller_regions or ()))
            for name in rule.caller_regions or ():
                r = region(name, f"{pid}.rules[{i}].caller_regions")
                kind, rid = r if r else (REGION_CITY, -1)
                col["route_region_kind"].append(kind)
                col["route_region_id"].append(rid)

        # Caller lists. Most specific entry wins: exact number, then the
        # longest prefix, then city, then province; white over black only
        # when both name the very same entry.
        exact: dict[str, int] = {}
        prefixes: dict[str, int] = {}
        verdict_city = np.zeros(n_cities, np.int8)
        by_province: dict[int, int] = {}
        by_city: dict[int, int] = {}
        for lst, verdict in (("blacklist", LIST_BLACK), ("whitelist", LIST_WHITE)):
            entries = getattr(plan, lst)
            for num in entries.numbers:
                exact[num] = verdict
            for p in entries.prefixes:
                prefixes[p] = verdict
            for name in entries.regions:
                r = region(name, f"{pid}.{lst}.regions")
                if r:
                    (by_city if r[0] == REGION_CITY else by_province)[r[1]] = verdict
        ekeys = keys_of(pa.array(list(exact), pa.string())) if exact else np.zeros(0, np.int64)
        order = np.argsort(ekeys, kind="stable")
        col["route_plan_exact_first"].append(len(col["route_exact_key"]))
        col["route_plan_exact_count"].append(len(exact))
        col["route_exact_key"].extend(ekeys[order].tolist())
        col["route_exact_verdict"].extend(np.asarray(list(exact.values()), np.int8)[order].tolist())
        starts, values = build_prefix_table(list(prefixes), list(prefixes.values()))
        col["route_plan_list_first"].append(list_len)
        col["route_plan_list_count"].append(len(starts))
        list_starts.append(starts)
        list_values.append(values.astype(np.int32))
        list_len += len(starts)
        if by_province or by_city:
            city_province = tables["city_province"]
            for prov, v in by_province.items():
                verdict_city[city_province == prov] = v
            for city, v in by_city.items():
                verdict_city[city] = v
            col["route_plan_region_row"].append(len(region_rows))
            region_rows.append(verdict_city)
        else:
            col["route_plan_region_row"].append(-1)

    if problems and unknown_regions is None:
        raise CatalogError(problems)
    if unknown_regions is not None:
        unknown_regions.extend(problems)

    # Lines: distinct destination numbers, sorted by key.
    dkeys = keys_of(pa.array(dest_numbers, pa.string())) if dest_numbers else np.zeros(0, np.int64)
    line_keys, line_of = np.unique(dkeys, return_inverse=True)
    first_of_line = np.zeros(len(line_keys), np.int64)
    first_of_line[line_of[::-1]] = np.arange(len(dkeys))[::-1]
    col["route_line_number"] = [text(dest_numbers[i]) for i in first_of_line]
    col["route_dest_line"] = line_of.tolist()
    col["route_dest_class"] = lookup(tables["dest_starts"], tables["dest_values"], dkeys).tolist() if len(dkeys) else []

    out = {}
    for name, dtype in ROUTING_TABLES.items():
        if name in ("route_list_starts", "route_list_values", "route_region_verdict",
                    "route_line_key", "route_text_bytes", "route_text_offsets"):
            continue
        out[name] = np.ascontiguousarray(np.asarray(col[name], dtype))
    out["route_list_starts"] = np.ascontiguousarray(np.concatenate(list_starts) if list_starts else np.zeros(0, np.int64), np.int64)
    out["route_list_values"] = np.ascontiguousarray(np.concatenate(list_values) if list_values else np.zeros(0, np.int32), np.int32)
    out["route_region_verdict"] = np.ascontiguousarray(
        np.stack(region_rows) if region_rows else np.zeros((0, n_cities), np.int8), np.int8)
    out["route_line_key"] = np.ascontiguousarray(line_keys, np.int64)
    out["route_text_bytes"], out["route_text_offsets"] = text.tables()
    for name, arr in out.items():
        # The snapshot stores no empty values: a catalog without some part
        # gets one inert row (-1: no id, no key), which no id refers to.
        if arr.size == 0:
            shape = (1,) + arr.shape[1:]
            out[name] = np.zeros(shape, arr.dtype) if name == "route_region_verdict" else np.full(shape, -1, arr.dtype)
    layout.check(out, ROUTING_TABLES)
    return out
