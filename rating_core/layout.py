"""The compiled snapshot: every table the kernels read, by name and dtype.

This is the contract between the compiler (writes), the store (maps) and
the kernels (read). A snapshot is a dict ``name -> contiguous ndarray``
plus a JSON ``meta`` (names for ids, version, provenance). Ids are row
indexes into the tables below; names for them live in ``meta``.

Times: epoch milliseconds, UTC. Local time is Asia/Shanghai, UTC+8 all
year (no DST), so ``local_ms = utc_ms + LOCAL_OFFSET_MS`` exactly.
Money: int64 minor units (1/10000 yuan). Missing timestamp: ``NO_TIME``.
"""
import numpy as np

LOCAL_OFFSET_MS = 8 * 3600 * 1000
MS_PER_DAY = 86_400_000
NO_TIME = np.iinfo(np.int64).min  # a missing timestamp (unanswered call)
NEVER = np.iinfo(np.int64).max  # an expiry that never comes

# Enumerations stored as small ints (order is the id).
DAY_KIND = ("workday", "weekend", "holiday")
BILLING_START = ("ring", "ivr_answer", "agent_answer")
STATUS = ("active", "suspended", "pending_verification", "frozen", "closed")
PACKAGE_KIND = ("payg", "prepaid", "bundle")
ROUNDING = ("up", "half_up", "down")
CALLER_CLASS = ("local", "out_of_town")

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
    "package_overage_price": np.int64,  # bundle, per 60 s beyond the bundle
    "package_monthly_minimum": np.int64,
    # --- rate choice: rate id or -1, shape (packages, classes, 2, bands)
    "rate_table": np.int32,
    # --- rates and their tiers (a rate's tiers are contiguous, by start)
    "rate_first_tier": np.int32,
    "rate_n_tiers": np.int32,
    "rate_connect_fee": np.int64,
    "rate_free_seconds": np.int32,
    "rate_min_billable": np.int32,
    "rate_rounding": np.int8,  # ROUNDING id
    "rate_denominator": np.int64,  # lcm of the tiers' units (exact sums)
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
    "band_of": np.int8,  # shape (3, 24): band id by (day kind, local hour)
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
