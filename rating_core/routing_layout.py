"""What the runtime needs to read the compiled routing tables: their layout
(``ROUTING_TABLES``), sentinels, the IVR key path code, the text pool and
the decision reasons (kernel codes, in order).

Shared by ``routes`` (which writes these tables, for the catalog compiler and the live customer layer), the
reference (``reference_routing``) and the runtime (``router``), so the
runtime imports neither the compiler nor the reference.
"""
from __future__ import annotations

import numpy as np

from .catalog.routing import IVR_KEYS

NO_CAP = np.iinfo(np.int32).max
NO_TEXT = -1
NO_IVR = -1  # route_rule_ivr: the rule has no key condition
IVR_BASE = 13  # key path code: digits of base 13, key k -> IVR_KEYS.index(k) + 1
LIST_NONE, LIST_BLACK, LIST_WHITE = 0, 1, 2
REGION_CITY, REGION_PROVINCE = 0, 1
DAY_KIND_BITS = {"workday": 1, "weekend": 2, "holiday": 4}

ROUTING_TABLES = {
    # plans
    "route_plan_name": np.int32,  # text id
    "route_plan_max_hops": np.int32,
    "route_plan_announcement": np.int32,  # text id or -1
    "route_plan_closed_announcement": np.int32,  # text id or -1
    "route_plan_memory_ms": np.int64,  # caller memory lifetime; 0: no group uses memory
    "route_plan_first_rule": np.int32,
    "route_plan_n_rules": np.int32,
    "route_plan_first_group": np.int32,
    "route_plan_n_groups": np.int32,
    "route_plan_ivr_first": np.int32,  # slice of route_ivr_*; count 0: no menu
    "route_plan_ivr_count": np.int32,
    "route_plan_menu": np.int32,  # text id of the menu JSON, or -1
    "route_plan_exact_first": np.int32,  # slice of route_exact_*
    "route_plan_exact_count": np.int32,
    "route_plan_list_first": np.int32,  # slice of route_list_* (a prefix table, starts[first] == 0)
    "route_plan_list_count": np.int32,
    "route_plan_region_row": np.int32,  # row of route_region_verdict, -1: no region list
    # caller lists: exact numbers (sorted keys per plan), prefixes, regions
    "route_exact_key": np.int64,
    "route_exact_verdict": np.int8,  # LIST_BLACK / LIST_WHITE
    "route_list_starts": np.int64,
    "route_list_values": np.int32,  # LIST_* verdict of the longest prefix
    "route_region_verdict": np.int8,  # (rows, cities): city entry over province entry
    # rules
    "route_rule_group": np.int32,
    "route_rule_ivr": np.int64,  # key path code, or NO_IVR
    "route_rule_sched_first": np.int32,
    "route_rule_sched_count": np.int32,  # 0: any time
    "route_rule_region_first": np.int32,
    "route_rule_region_count": np.int32,  # 0: any caller region
    "route_sched_weekdays": np.int8,  # bit d: weekday d (Monday 0)
    "route_sched_day_kinds": np.int8,  # bit k: layout.DAY_KIND k
    "route_sched_start_min": np.int32,  # local minute of day, [start, end)
    "route_sched_end_min": np.int32,  # start > end wraps past midnight
    "route_region_kind": np.int8,  # REGION_CITY / REGION_PROVINCE
    "route_region_id": np.int32,
    # IVR menu nodes, per plan sorted by key path code
    "route_ivr_path": np.int64,
    "route_ivr_group": np.int32,  # leaf: its group; menu node: -1
    # groups
    "route_group_name": np.int32,  # text id
    "route_group_plan": np.int32,
    "route_group_strategy": np.int8,  # catalog.routing.STRATEGIES id
    "route_group_memory": np.int8,  # 1: caller memory first
    "route_group_overflow": np.int32,  # group id or -1
    "route_group_first_dest": np.int32,
    "route_group_n_dest": np.int32,
    "route_group_total_weight": np.int32,
    # destination entries (a number as listed in one group)
    "route_dest_group": np.int32,
    "route_dest_line": np.int32,
    "route_dest_ring": np.int32,  # ring timeout, seconds
    "route_dest_cap": np.int32,  # max concurrent calls on the line, NO_CAP: none
    "route_dest_weight": np.int32,
    "route_dest_class": np.int32,  # destination class id (rate choice), -1 none
    # lines (distinct destination numbers), sorted by key
    "route_line_key": np.int64,
    "route_line_number": np.int32,  # text id of the normalised number
    # text pool
    "route_text_bytes": np.uint8,
    "route_text_offsets": np.int64,
}


def ivr_path_code(keys: str) -> int:
    """Key path -> integer (0 for the empty path); -1 when not a path of at
    most 5 valid keys."""
    if len(keys) > 5:
        return -1
    code = 0
    for k in keys:
        i = IVR_KEYS.find(k)
        if i < 0 or len(k) != 1:
            return -1
        code = code * IVR_BASE + i + 1
    return code


def route_sizes(t: dict[str, np.ndarray]) -> dict[str, int]:
    """The real length of each routing index space of tables ``t`` (the
    compiler stores an empty part as one inert row, which no id refers to).
    Keys: ``plan rule group dest sched region ivr exact list region_row
    line text text_bytes``. Every row of a part belongs to a plan, so the
    lengths follow from the plan counts."""
    n_plans = len(t["route_plan_name"]) if int(t["route_plan_name"][0]) >= 0 else 0
    n_rules = int(t["route_plan_n_rules"][:n_plans].sum())
    n_groups = int(t["route_plan_n_groups"][:n_plans].sum())
    n_dests = int(t["route_group_n_dest"][:n_groups].sum())
    rows = t["route_plan_region_row"][:n_plans]
    return {
        "plan": n_plans, "rule": n_rules, "group": n_groups, "dest": n_dests,
        "sched": int(t["route_rule_sched_count"][:n_rules].sum()),
        "region": int(t["route_rule_region_count"][:n_rules].sum()),
        "ivr": int(t["route_plan_ivr_count"][:n_plans].sum()),
        "exact": int(t["route_plan_exact_count"][:n_plans].sum()),
        "list": int(t["route_plan_list_count"][:n_plans].sum()),
        "region_row": int(rows.max()) + 1 if len(rows) else 0,
        "line": len(t["route_line_key"]) if n_dests else 0,
        "text": len(t["route_text_offsets"]) - 1,
        "text_bytes": int(t["route_text_offsets"][-1]),
    }


# Which index space each routing table's rows are (``route_sizes``).
ROUTE_PARTS = {
    "route_plan_": "plan", "route_rule_": "rule", "route_group_": "group", "route_dest_": "dest",
    "route_sched_": "sched", "route_region_kind": "region", "route_region_id": "region", "route_ivr_": "ivr",
    "route_exact_": "exact", "route_list_": "list", "route_region_verdict": "region_row", "route_line_": "line",
}


def text_of(tables: dict[str, np.ndarray], i: int) -> str | None:
    """A string of the text pool (None for -1)."""
    if i < 0:
        return None
    off = tables["route_text_offsets"]
    return bytes(tables["route_text_bytes"][off[i]:off[i + 1]]).decode("utf-8")


# What a number with no verified bound destination needs (accounts'
# warning when its plan is set; the deny detail of a call to it).
NEEDS_VERIFIED_DESTINATION = ("calls get no_route until one is bound (accounts bind) and verified "
                              "(accounts verify-destination)")

# Decision reasons: the kernel's codes, in order (kernels/routing.pxd R_*).
REASONS = (
    "ok",
    "unknown_number",
    "number_not_active",
    "number_suspended",
    "pending_verification",
    "account_suspended",
    "package_not_started",
    "caller_blocked",
    "region_blocked",
    "invalid_ivr_key",
    "no_route",
    "all_destinations_busy",
    "no_rate",
    "out_of_credit",
)
