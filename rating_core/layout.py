"""The compiled snapshot: every table the kernels read, by name and dtype.

This is the contract between the compiler (writes), the store (maps) and
the kernels (read). A snapshot is a dict ``name -> contiguous ndarray``
plus a JSON ``meta`` (names for ids, version, provenance). Ids are row
indexes into the tables below; names for them live in ``meta``.

Times: epoch milliseconds, UTC. Local time is Asia/Shanghai, UTC+8 all
year (no DST), so ``local_ms = utc_ms + LOCAL_OFFSET_MS`` exactly.
Money: int64 minor units (1/10000 yuan). Missing timestamp: ``NO_TIME``.
"""
import datetime as _dt

import numpy as np

LOCAL_OFFSET_MS = 8 * 3600 * 1000
LOCAL_TZ = _dt.timezone(_dt.timedelta(milliseconds=LOCAL_OFFSET_MS))  # Asia/Shanghai, no DST since 1991
MS_PER_DAY = 86_400_000
NO_TIME = np.iinfo(np.int64).min  # a missing timestamp (unanswered call)
NEVER = np.iinfo(np.int64).max  # an expiry that never comes
# The calendar table every snapshot holds, local days 2000-01-01 .. 2060-12-31
# ([first, last] epoch day): the compiler builds it (compile.calendar), the
# rater refuses a start outside it (cdr.calendar_range), as does a rated
# file's reader (billing.calls). Written here, not in the compiler, because the
# runtime reads it and never imports the compiler.
CALENDAR_FIRST_DAY = _dt.date(2000, 1, 1)
CALENDAR_LAST_DAY = _dt.date(2060, 12, 31)
CALENDAR_DAYS = ((CALENDAR_FIRST_DAY - _dt.date(1970, 1, 1)).days, (CALENDAR_LAST_DAY - _dt.date(1970, 1, 1)).days)

# The largest catalog version: versions are stored as int32 (the rated and
# adjustment tables' ``version``, a reservation's ``catalog_version``), so a
# version is 1 .. 2**31 - 1; the rerate CLI and gRPC Rerate say so (breaker
# 12-02: 2**40 was refused "a catalog version is a positive integer").
MAX_CATALOG_VERSION = 2**31 - 1
CATALOG_VERSION_BOUND = f"a catalog version is a positive integer, at most {MAX_CATALOG_VERSION} (2**31 - 1)"

# Enumerations stored as small ints (order is the id).
DAY_KIND = ("workday", "weekend", "holiday")
BILLING_START = ("ring", "ivr_answer", "agent_answer")
STATUS = ("active", "suspended", "pending_verification", "frozen", "closed")
PACKAGE_KIND = ("payg", "prepaid", "bundle")
# The kinds whose customer pays a monthly bill (README "Money rules"): a top-up
# records a payment of any amount, settling the bill; a prepaid top-up buys credit.
POSTPAID_KINDS = ("payg", "bundle")
ROUNDING = ("up", "half_up", "down")
CALLER_CLASS = ("local", "out_of_town")
BILLABLE_RULE = ("truncate", "ceil", "round")  # milliseconds -> whole billable seconds
BAND_RULE = ("billing_start", "split")  # the band of a call, or of each increment
MINUTES_PER_DAY = 1440
MAX_BANDS = 127  # band ids are int8, across every band set

# Per-CDR outcome of rating (kernel output ``status``).
RATE_STATUS = (
    "rated",
    "unknown_number",  # 400 number not in the catalog
    "number_not_active",  # number suspended, pending, frozen or closed
    "package_not_started",  # call before the account's package start
    "no_destination_class",  # forwarded-to number matches no prefix
    "no_rate",  # no rate rule of the package matches
)

TABLES = {
    # --- 400 numbers, sorted ascending by key (exact match by binary search)
    "number_key": np.int64,
    "number_account": np.int32,
    "number_status": np.int8,  # STATUS id
    "number_billing_start": np.int8,  # BILLING_START id
    "number_home_city": np.int32,  # city id (region table), -1 unknown
    "number_routing": np.int32,  # routing plan id, -1 none
    # --- accounts
    "account_package": np.int32,
    "account_status": np.int8,
    "account_start_ms": np.int64,  # package start, local midnight
    "account_expiry_ms": np.int64,  # prepaid credit expiry, else NEVER
    "account_opening_credit": np.int64,  # prepaid credit at package start
    # --- packages
    "package_kind": np.int8,  # PACKAGE_KIND id
    "package_included_seconds": np.int64,  # bundle, per calendar month
    "package_overage_rate": np.int32,  # bundle: rate id of the seconds beyond the bundle, -1 none
    "package_band_set": np.int32,  # band set id (first axis of band_of)
    "package_monthly_minimum": np.int64,
    "package_credit_limit": np.int64,  # how far credit may go below zero (postpaid), minor units
    # --- rate choice: rate id or -1, shape (packages, classes, 2, bands)
    "rate_table": np.int32,
    # --- rates and their tiers (a rate's tiers are contiguous, by start)
    "rate_first_tier": np.int32,
    "rate_n_tiers": np.int32,
    "rate_connect_fee": np.int64,
    "rate_free_seconds": np.int32,
    "rate_min_billable": np.int32,
    "rate_rounding": np.int8,  # ROUNDING id
    "rate_billable_rule": np.int8,  # BILLABLE_RULE id
    "rate_denominator": np.int64,  # lcm of the tiers' units (split band rule: of every rate's)
    "tier_start": np.int32,
    "tier_price": np.int64,  # per tier_unit seconds
    "tier_unit": np.int32,
    "tier_increment": np.int32,
    # --- prefix tables (see kernels/prefix.pxd): starts ascending, starts[0]==0
    "dest_starts": np.int64,
    "dest_values": np.int32,  # destination class id, -1 none
    "region_starts": np.int64,
    "region_values": np.int32,  # city id, -1 none
    "carrier_starts": np.int64,
    "carrier_values": np.int32,  # carrier id, -1 none
    "city_province": np.int32,  # city id -> province id
    # --- calendar, by local day: index = local_day - calendar_first_day[0]
    "calendar_first_day": np.int64,  # shape (1,): epoch day of row 0
    "day_kind": np.int8,  # DAY_KIND id
    "day_month": np.int32,  # year * 12 + month - 1 (bundle periods)
    "band_of": np.int8,  # shape (band sets, 3, 1440): band id by (set, day kind, local minute)
    "band_until": np.int16,  # same shape: the minute (1..1440) that band lasts until that day
    "band_rule": np.int8,  # shape (1,): BAND_RULE id
}


def check(tables: dict, spec: dict = TABLES) -> None:
    """Assert a snapshot has every table of ``spec`` (the rating tables by
    default; routing passes its own) with its dtype, C-contiguous.

    Called once when a snapshot is written and when it is opened, so the
    kernels can trust shapes and dtypes without checking per call.
    """
    for name, dtype in spec.items():
        arr = tables.get(name)
        if arr is None:
            raise ValueError(f"snapshot table {name!r} missing")
        if arr.dtype != dtype or not arr.flags.c_contiguous:
            raise ValueError(f"snapshot table {name!r}: {arr.dtype}, contiguous={arr.flags.c_contiguous}")


def check_indexes(t: dict) -> None:
    """Prove every index the kernels take from a table is inside the table
    it indexes (``ValueError`` naming the table otherwise).

    The kernels run without bounds checks (common.pxd): this is what makes
    that safe. Called by the compiler on every snapshot it writes and when a
    snapshot opens, after ``check``. Inputs the edge validates (CDR times
    within the calendar, number keys) are not tables and are not checked here.
    """
    def within(name, lo, hi, arr=None):
        a = t[name] if arr is None else arr
        if a.size and (int(a.min()) < lo or int(a.max()) >= hi):
            raise ValueError(f"snapshot table {name!r}: values outside [{lo}, {hi})")

    n_accounts = len(t["account_package"])
    n_packages = len(t["package_kind"])
    n_rates = len(t["rate_first_tier"])
    n_tiers = len(t["tier_start"])
    n_cities = len(t["city_province"])
    rt = t["rate_table"]
    bo = t["band_of"]
    if rt.ndim != 4 or rt.shape[0] != n_packages or rt.shape[2] != len(CALLER_CLASS):
        raise ValueError(f"snapshot table 'rate_table': shape {rt.shape}, {n_packages} packages")
    n_classes, n_bands = rt.shape[1], rt.shape[3]
    if bo.ndim != 3 or bo.shape[1:] != (len(DAY_KIND), MINUTES_PER_DAY) or bo.shape != t["band_until"].shape:
        raise ValueError(f"snapshot table 'band_of': shape {bo.shape}")
    n = len(t["number_key"])
    for name in ("number_account", "number_status", "number_billing_start", "number_home_city", "number_routing"):
        if len(t[name]) != n:
            raise ValueError(f"snapshot table {name!r}: {len(t[name])} rows, {n} numbers")
    if n > 1 and not (t["number_key"][1:] > t["number_key"][:-1]).all():
        raise ValueError("snapshot table 'number_key': not strictly ascending")
    within("number_account", 0, n_accounts)
    within("number_status", 0, len(STATUS))
    within("number_billing_start", 0, len(BILLING_START))
    within("number_home_city", -1, n_cities)
    if "route_plan_max_hops" in t:  # the routing kernel's plan ids
        within("number_routing", -1, len(t["route_plan_max_hops"]))
    for name in ("account_status", "account_start_ms", "account_expiry_ms", "account_opening_credit"):
        if len(t[name]) != n_accounts:
            raise ValueError(f"snapshot table {name!r}: {len(t[name])} rows, {n_accounts} accounts")
    within("account_package", 0, n_packages)
    within("account_status", 0, len(STATUS))
    for name in ("package_included_seconds", "package_overage_rate", "package_band_set", "package_monthly_minimum"):
        if len(t[name]) != n_packages:
            raise ValueError(f"snapshot table {name!r}: {len(t[name])} rows, {n_packages} packages")
    within("package_kind", 0, len(PACKAGE_KIND))
    within("package_overage_rate", -1, n_rates)
    within("package_band_set", 0, bo.shape[0])
    within("rate_table", -1, n_rates)
    for name in ("rate_n_tiers", "rate_connect_fee", "rate_free_seconds", "rate_min_billable", "rate_rounding",
                 "rate_billable_rule", "rate_denominator"):
        if len(t[name]) != n_rates:
            raise ValueError(f"snapshot table {name!r}: {len(t[name])} rows, {n_rates} rates")
    for name in ("tier_price", "tier_unit", "tier_increment"):
        if len(t[name]) != n_tiers:
            raise ValueError(f"snapshot table {name!r}: {len(t[name])} rows, {n_tiers} tiers")
    first, count = t["rate_first_tier"].astype(np.int64), t["rate_n_tiers"].astype(np.int64)
    if n_rates and ((first < 0).any() or (count < 1).any() or (first + count > n_tiers).any()):
        raise ValueError("snapshot table 'rate_first_tier': a rate's tiers fall outside 'tier_start'")
    within("rate_rounding", 0, len(ROUNDING))
    within("rate_billable_rule", 0, len(BILLABLE_RULE))
    within("tier_unit", 1, 3601)
    within("tier_increment", 1, 3601)
    for r in range(n_rates):
        units = t["tier_unit"][first[r]:first[r] + count[r]]
        if t["rate_denominator"][r] < 1 or (t["rate_denominator"][r] % units).any():
            raise ValueError(f"snapshot table 'rate_denominator': rate {r} is not a multiple of its units")
    for starts, values, hi in (("dest_starts", "dest_values", n_classes), ("region_starts", "region_values", n_cities),
                               ("carrier_starts", "carrier_values", 2**31 - 1)):
        s = t[starts]
        if len(s) < 1 or s[0] != 0 or len(t[values]) != len(s) or (len(s) > 1 and not (s[1:] > s[:-1]).all()):
            raise ValueError(f"snapshot table {starts!r}: must start at key 0, ascend, and match {values!r}")
        within(values, -1, hi)
    within("day_kind", 0, len(DAY_KIND))
    if len(t["day_month"]) != len(t["day_kind"]):
        raise ValueError("snapshot table 'day_month': one row per calendar day")
    within("band_of", 0, n_bands)  # every minute of every day kind has a band
    minute = np.arange(MINUTES_PER_DAY, dtype=np.int64)
    until = t["band_until"].astype(np.int64)
    if ((until <= minute) | (until > MINUTES_PER_DAY)).any():
        raise ValueError("snapshot table 'band_until': must lie in (minute, 1440]")
    within("band_rule", 0, len(BAND_RULE))
    if len(t["band_rule"]) != 1 or len(t["calendar_first_day"]) != 1:
        raise ValueError("snapshot tables 'band_rule' and 'calendar_first_day' hold one value")
