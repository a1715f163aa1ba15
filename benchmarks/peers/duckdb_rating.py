"""The peer: the same rating written as DuckDB SQL.

This is the job a data engineer would write instead of our kernel: load
the compiled snapshot tables and the prepared CDR columns (numbers already
as integer keys, times as epoch ms) into DuckDB, then rate in SQL:

- 400 number -> account -> package: equality joins;
- longest-prefix match (destination class, caller city, carrier): the
  snapshot's prefix tables are disjoint intervals, so the match is "the
  last interval start <= key", an ASOF join;
- billing start (a missing IVR answer falls back to the agent answer) and
  the time band at it: local day and minute by integer arithmetic, then the
  calendar (day kind, month) and the package's band set;
- rate: a join on (package, destination class, caller class, band);
- tiers: the tier walk is a recurrence (an increment may run past its
  tier's end), so it is a recursive CTE — over the distinct (rate,
  duration) pairs only, then joined back: cheaper than per call, which
  favours the peer;
- billable seconds by the rate's rule (truncate, ceil, round);
- the sequential credit / bundle pass: window functions; the seconds
  beyond a bundle are walked again under the package's overage rate. Per account in
  chronological order (start, then input order), with S = the sum of the
  earlier rated calls' charges (prepaid) or billed seconds in the month
  (bundle):
    prepaid: consumed = clamp(credit0 - S, 0, charge), 0 from expiry on;
    bundle:  consumed = clamp(room - S, 0, billed), room = included - used0.

It computes every output column of ``rating_core.kernels.rating.OUTPUT``
and the closing account state, so the benchmark can check them all.
DuckDB runs on all the threads it is given (both cores here).

Assumptions the kernel shares: times are after 1970 (integer division is
floor division) and inside the calendar table. The peer implements the
band rule ``billing_start`` (the demo's); ``load_snapshot`` refuses a
snapshot compiled with ``split``.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from rating_core import layout
from rating_core.kernels import rating as rating_kernel

NO_TIME = int(layout.NO_TIME)
OFFSET = layout.LOCAL_OFFSET_MS
DAY = layout.MS_PER_DAY
MINUTE = 60_000

# The output columns and their dtypes: the kernel's own contract.
OUTPUT = rating_kernel.OUTPUT
CDR_COLUMNS = ("number_key", "caller_key", "forwarded_key", "start_ms", "ivr_answer_ms", "agent_answer_ms", "end_ms")


def _rounded(num: str, den: str, rounding: str) -> str:
    """SQL for num / den rounded by the rate's mode (0 up, 1 half up, 2 down);
    num >= 0, den > 0, integers: ``//`` is exact integer division."""
    return (
        f"CASE {rounding} WHEN 0 THEN ({num} + {den} - 1) // {den} "
        f"WHEN 1 THEN (2 * {num} + {den}) // (2 * {den}) ELSE {num} // {den} END"
    )


# Phase 1, lookups: one row per CDR with everything but the tier walk.
# Destinations are few (each 400 number forwards to a handful), so their
# prefix match runs on the distinct forwarded-to numbers only.
PRICE_LOOKUPS = f"""
CREATE OR REPLACE TEMP TABLE looked_up AS
WITH forwarded AS (
    SELECT f.forwarded_key, d.class AS destination_class
    FROM (SELECT DISTINCT forwarded_key FROM cdr) f
    ASOF JOIN dest d ON f.forwarded_key >= d.start
), located AS (
    SELECT c.row_id, c.start_ms, c.end_ms,
           n.account, n.number_status, n.billing_start, n.home_city, n.package, n.package_start_ms,
           n.expiry_ms, n.kind, n.included_seconds, n.overage_rate, n.band_set,
           f.destination_class, r.city AS caller_city, r.province AS caller_province,
           r.carrier AS caller_carrier,
           CASE WHEN n.billing_start = 0 THEN c.start_ms
                WHEN n.billing_start = 1 AND c.ivr_answer_ms <> {NO_TIME} THEN c.ivr_answer_ms
                ELSE c.agent_answer_ms END AS bill_from
    FROM cdr c
    LEFT JOIN number_dim n ON n.number_key = c.number_key
    JOIN forwarded f ON f.forwarded_key = c.forwarded_key
    ASOF JOIN caller_region r ON c.caller_key >= r.start
), banded AS (
    SELECT l.*, CASE WHEN l.bill_from = {NO_TIME} THEN l.start_ms ELSE l.bill_from END + {OFFSET} AS local_ms
    FROM located l
), chosen AS (
    SELECT b.* EXCLUDE (local_ms), coalesce(bo.band, -1) AS time_band, d.month,
           CASE WHEN b.account IS NULL THEN NULL
                WHEN b.caller_city >= 0 AND b.caller_city = b.home_city THEN 0 ELSE 1 END AS caller_class
    FROM banded b
    JOIN days d ON d.day = b.local_ms // {DAY}
    LEFT JOIN band_of bo ON bo.band_set = b.band_set AND bo.day_kind = d.day_kind
                        AND bo.minute = (b.local_ms % {DAY}) // {MINUTE}
), rated AS (
    SELECT c.*, rt.rate AS chosen_rate,
           CASE WHEN c.account IS NULL THEN 1
                WHEN c.number_status <> 0 THEN 2
                WHEN c.start_ms < c.package_start_ms THEN 3
                WHEN c.destination_class < 0 THEN 4
                WHEN c.time_band < 0 OR rt.rate IS NULL THEN 5
                ELSE 0 END AS status
    FROM chosen c
    LEFT JOIN rate_choice rt ON rt.package = c.package AND rt.destination_class = c.destination_class
                            AND rt.caller_class = c.caller_class AND rt.band = c.time_band
)
SELECT r.* EXCLUDE (bill_from, end_ms),
       CASE WHEN r.status <> 0 OR r.bill_from = {NO_TIME} OR r.end_ms <= r.bill_from THEN 0
            WHEN ra.billable_rule = 0 THEN (r.end_ms - r.bill_from) // 1000
            WHEN ra.billable_rule = 1 THEN (r.end_ms - r.bill_from + 999) // 1000
            ELSE (r.end_ms - r.bill_from + 500) // 1000 END AS billable_seconds
FROM rated r
LEFT JOIN rates ra ON ra.rate = r.chosen_rate
"""

# Phase 1, the tier walk per distinct (rate, duration): a recursive CTE,
# one step per tier (rule 7: an increment that starts in a tier is priced
# by it even when it runs past the tier's end).
_LIMIT = "least(coalesce(ti.next_start, w.duration), w.duration)"  # end of this tier's segment
_K = f"CASE WHEN w.t < {_LIMIT} THEN ({_LIMIT} - w.t + ti.increment - 1) // ti.increment ELSE 0 END"

def _tier_walk(table: str, pairs: str) -> str:
    """SQL creating ``table`` (rate, billable, billed_seconds, units, charge)
    for the distinct (rate, billable) pairs ``pairs`` selects that are
    charged at all (beyond the rate's free seconds)."""
    return f"""
CREATE OR REPLACE TEMP TABLE {table} AS
WITH RECURSIVE calls AS (
    SELECT DISTINCT p.rate, p.billable
    FROM ({pairs}) p JOIN rates ra ON ra.rate = p.rate
    WHERE p.billable > 0 AND p.billable > ra.free_seconds
), walk(rate, billable, duration, j, t, num, units) AS (
    SELECT c.rate, c.billable, greatest(c.billable, ra.min_billable), 0, 0::BIGINT, 0::HUGEINT, 0::BIGINT
    FROM calls c JOIN rates ra USING (rate)
    UNION ALL
    SELECT w.rate, w.billable, w.duration, w.j + 1,
           w.t + ({_K}) * ti.increment,
           w.num + (({_K}) * ti.increment * ti.price)::HUGEINT * (ra.denominator // ti.unit),
           w.units + ({_K})
    FROM walk w
    JOIN tiers ti ON ti.rate = w.rate AND ti.j = w.j
    JOIN rates ra ON ra.rate = w.rate
)
SELECT w.rate, w.billable, w.t AS billed_seconds, w.units,
       ({_rounded("w.num", "ra.denominator", "ra.rounding")}) + ra.connect_fee AS charge
FROM walk w JOIN rates ra ON ra.rate = w.rate AND w.j = ra.n_tiers
"""


TIER_WALK = _tier_walk("priced", "SELECT chosen_rate AS rate, billable_seconds AS billable FROM looked_up WHERE status = 0")
_OUT = """row_id, status, coalesce(account, -1) AS account, coalesce(package, -1) AS package,
       destination_class, caller_city, caller_province, caller_carrier,
       coalesce(caller_class, -1) AS caller_class, time_band,
       CASE WHEN status = 0 THEN chosen_rate ELSE -1 END AS rate,
       billable_seconds, billed_seconds, units"""

# Phase 2: settle the rated calls of prepaid and bundle accounts in
# chronological order. One running sum over all of them in the order
# (account, start, input order) — a single sort; DuckDB's partitioned
# windows are several times slower with few, large accounts — minus the
# sums of the rows before the account (charges) or before the account's
# month (billed seconds: bundles count per month). Within an account the
# months run in start order, so (account, month) blocks are contiguous in
# that order and their offsets come from a small aggregate.
SETTLE = """
CREATE OR REPLACE TEMP TABLE calls AS
    SELECT l.*, coalesce(p.billed_seconds, 0) AS billed_seconds, coalesce(p.units, 0) AS units,
           coalesce(p.charge, 0) AS rate_charge
    FROM looked_up l
    LEFT JOIN priced p ON p.rate = l.chosen_rate AND p.billable = l.billable_seconds AND l.status = 0;
CREATE OR REPLACE TEMP TABLE settled AS
WITH settling AS MATERIALIZED (
    SELECT * FROM calls WHERE status = 0 AND kind <> 0
), blocks AS (
    SELECT account, month,
           sum(billed) OVER o - billed AS billed_offset,
           sum(charged) OVER o - charged AS charged_offset,
           min(month) OVER (PARTITION BY account) AS first_month
    FROM (SELECT account, month, sum(rate_charge) AS charged, sum(billed_seconds) AS billed
          FROM settling GROUP BY account, month)
    WINDOW o AS (ORDER BY account, month ROWS UNBOUNDED PRECEDING)
), account_offsets AS (
    SELECT account, min(charged_offset) AS charged_offset FROM blocks GROUP BY account
), running AS (
    SELECT c.*, s.credit_left AS credit0, s.bundle_period AS period0, s.bundle_used AS used0,
           b.first_month, ra.rounding,
           sum(rate_charge) OVER g - rate_charge - a.charged_offset AS charged_before,
           sum(billed_seconds) OVER g - billed_seconds - b.billed_offset AS month_billed_before
    FROM settling c
    JOIN state s ON s.account = c.account
    JOIN rates ra ON ra.rate = c.chosen_rate
    JOIN blocks b ON b.account = c.account AND b.month = c.month
    JOIN account_offsets a ON a.account = c.account
    WINDOW g AS (ORDER BY c.account, c.start_ms, c.row_id ROWS UNBOUNDED PRECEDING)
), opened AS (
    SELECT r.*,
           -- prepaid: credit left before this call (0 from expiry on)
           CASE WHEN kind = 1 AND start_ms < expiry_ms THEN greatest(credit0 - charged_before, 0) ELSE 0 END
               AS credit_before,
           -- bundle: the month's allowance left after the ledger's use (which
           -- counts only in its own month, and only if no earlier call opened
           -- another month), and the seconds billed earlier in the month
           greatest(included_seconds - CASE WHEN month = period0 AND month = first_month THEN used0 ELSE 0 END, 0)
               AS room,
           CASE WHEN month = period0 AND month = first_month THEN used0 ELSE 0 END AS used_open
    FROM running r
), consumed AS (
    SELECT o.*,
           CASE WHEN kind = 1 THEN least(credit_before, rate_charge) ELSE 0 END AS credit_consumed,
           CASE WHEN kind = 2 THEN least(greatest(room - month_billed_before, 0), billed_seconds) ELSE 0 END
               AS bundle_seconds_consumed
    FROM opened o
)
SELECT *, CASE WHEN kind = 2 THEN billed_seconds - bundle_seconds_consumed ELSE 0 END AS overage_seconds
FROM consumed;
""" + _tier_walk("overage_priced", "SELECT overage_rate AS rate, overage_seconds AS billable FROM settled "
                                   "WHERE kind = 2 AND overage_rate >= 0") + f""";
CREATE OR REPLACE TABLE rated AS
SELECT {_OUT},
       CASE WHEN kind = 2 THEN coalesce(op.overage_charge, 0) ELSE rate_charge END AS charge,
       credit_consumed, bundle_seconds_consumed,
       CASE WHEN kind = 2 THEN coalesce(op.overage_charge, 0) ELSE rate_charge - credit_consumed END AS overage,
       CASE WHEN kind = 1 THEN credit_before - credit_consumed
            ELSE included_seconds - used_open - least(room, month_billed_before + billed_seconds) END AS balance_after,
       start_ms, month, kind
FROM settled s
LEFT JOIN (SELECT rate, billable, charge AS overage_charge FROM overage_priced) op
       ON op.rate = s.overage_rate AND op.billable = s.overage_seconds
UNION ALL
SELECT {_OUT}, rate_charge AS charge, 0 AS credit_consumed, 0 AS bundle_seconds_consumed,
       0 AS overage, 0 AS balance_after, start_ms, month, kind
FROM calls WHERE status <> 0 OR kind = 0
"""

# Closing account state: the last rated call of each account sets it.
CLOSING_STATE = """
CREATE OR REPLACE TABLE closing_state AS
WITH last AS (
    SELECT account, arg_max(balance_after, (start_ms, row_id)) AS balance,
           arg_max(month, (start_ms, row_id)) AS month, any_value(kind) AS kind
    FROM rated WHERE status = 0 AND kind <> 0 GROUP BY account
)
SELECT s.account,
       CASE WHEN l.kind = 1 THEN l.balance ELSE s.credit_left END AS credit_left,
       CASE WHEN l.kind = 2 THEN l.month ELSE s.bundle_period END AS bundle_period,
       CASE WHEN l.kind = 2 THEN n.included_seconds - l.balance ELSE s.bundle_used END AS bundle_used
FROM state s
LEFT JOIN last l ON l.account = s.account
LEFT JOIN account_dim n ON n.account = s.account
"""


def _ids(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int32)


class DuckDBRater:
    """Rate prepared CDR columns against snapshot tables in DuckDB SQL.

    ``load`` (snapshot, CDRs, opening state) is set-up, outside the timed
    part; ``rate`` runs the rating statements and leaves the result in the
    DuckDB tables ``rated`` and ``closing_state``; ``result`` fetches them.
    """

    def __init__(self, threads: int = 2):
        self.con = duckdb.connect(":memory:")
        self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute("SET preserve_insertion_order = false")

    def _table(self, name: str, data: pa.Table) -> None:
        self.con.register("_incoming", data)
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _incoming")
        self.con.unregister("_incoming")

    def load_snapshot(self, t: dict[str, np.ndarray]) -> None:
        """The snapshot as the dimension tables a data engineer would
        prepare once per catalog version (not timed): numbers joined to
        their account and package, caller region and carrier merged into
        one interval table, the calendar and bands by local hour."""
        acc = t["number_account"]
        pkg = t["account_package"][acc]
        self._table("number_dim", pa.table({
            "number_key": t["number_key"], "account": acc, "number_status": t["number_status"],
            "billing_start": t["number_billing_start"], "home_city": t["number_home_city"],
            "package": pkg, "package_start_ms": t["account_start_ms"][acc], "expiry_ms": t["account_expiry_ms"][acc],
            "kind": t["package_kind"][pkg], "included_seconds": t["package_included_seconds"][pkg],
            "overage_rate": t["package_overage_rate"][pkg], "band_set": t["package_band_set"][pkg],
        }))
        n_accounts = len(t["account_package"])
        self._table("account_dim", pa.table({
            "account": _ids(n_accounts),
            "included_seconds": t["package_included_seconds"][t["account_package"]],
        }))
        # Caller city and carrier: both prefix tables' interval starts, each
        # interval with the city and carrier that cover it.
        starts = np.union1d(t["region_starts"], t["carrier_starts"])
        city = t["region_values"][np.searchsorted(t["region_starts"], starts, side="right") - 1]
        carrier = t["carrier_values"][np.searchsorted(t["carrier_starts"], starts, side="right") - 1]
        province = np.where(city >= 0, t["city_province"][np.maximum(city, 0)], -1).astype(np.int32)
        self._table("caller_region", pa.table({"start": starts, "city": city, "province": province, "carrier": carrier}))
        self._table("dest", pa.table({"start": t["dest_starts"], "class": t["dest_values"]}))
        # The calendar by local day, and each band set's band by (day kind, local minute).
        if layout.BAND_RULE[int(t["band_rule"][0])] != "billing_start":
            raise NotImplementedError("the DuckDB peer implements the billing_start band rule only")
        n_days = len(t["day_kind"])
        self._table("days", pa.table({
            "day": t["calendar_first_day"][0] + np.arange(n_days, dtype=np.int64),
            "day_kind": t["day_kind"], "month": t["day_month"],
        }))
        sets, kinds, minutes = np.indices(t["band_of"].shape)
        self._table("band_of", pa.table({
            "band_set": sets.ravel().astype(np.int32), "day_kind": kinds.ravel().astype(np.int8),
            "minute": minutes.ravel().astype(np.int32), "band": t["band_of"].ravel(),
        }))
        rt = t["rate_table"]
        p, c, k, b = np.nonzero(rt >= 0)
        self._table("rate_choice", pa.table({
            "package": p.astype(np.int32), "destination_class": c.astype(np.int32),
            "caller_class": k.astype(np.int32), "band": b.astype(np.int8), "rate": rt[p, c, k, b],
        }))
        n_rates = len(t["rate_first_tier"])
        self._table("rates", pa.table({
            "rate": _ids(n_rates), "n_tiers": t["rate_n_tiers"], "connect_fee": t["rate_connect_fee"],
            "free_seconds": t["rate_free_seconds"], "min_billable": t["rate_min_billable"],
            "rounding": t["rate_rounding"], "denominator": t["rate_denominator"],
            "billable_rule": t["rate_billable_rule"],
        }))
        tier_rate = np.repeat(_ids(n_rates), t["rate_n_tiers"])
        tier_j = np.arange(len(tier_rate), dtype=np.int32) - np.repeat(t["rate_first_tier"], t["rate_n_tiers"])
        last = tier_j == np.repeat(t["rate_n_tiers"], t["rate_n_tiers"]) - 1
        next_start = np.append(t["tier_start"][1:], 0).astype(np.int64)
        self._table("tiers", pa.table({
            "rate": tier_rate, "j": tier_j, "price": t["tier_price"], "unit": t["tier_unit"],
            "increment": t["tier_increment"],
            "next_start": pa.array(next_start, mask=last),  # NULL: the last tier runs to the end
        }))

    def load_cdrs(self, cdr: dict[str, np.ndarray]) -> None:
        n = len(cdr["start_ms"])
        cols = {"row_id": np.arange(n, dtype=np.int64)}
        cols.update({name: cdr[name] for name in CDR_COLUMNS})
        self._table("cdr", pa.table(cols))

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self._table("state", pa.table({
            "account": _ids(len(state["credit_left"])), "credit_left": state["credit_left"],
            "bundle_period": state["bundle_period"], "bundle_used": state["bundle_used"],
        }))

    def rate(self) -> None:
        """The timed part: every rating statement, results left in DuckDB."""
        for sql in (PRICE_LOOKUPS, TIER_WALK, SETTLE, CLOSING_STATE):
            for statement in filter(str.strip, sql.split(";")):
                self.con.execute(statement)

    def result(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(per-CDR output columns in input order, closing account state)."""
        names = ", ".join(name for name, _ in OUTPUT)
        rated = self.con.sql(f"SELECT row_id, {names} FROM rated ORDER BY row_id").to_arrow_table()
        assert (np.diff(rated["row_id"].to_numpy()) == 1).all()
        out = {name: rated[name].to_numpy().astype(dtype) for name, dtype in OUTPUT}
        closing = self.con.sql(
            "SELECT credit_left, bundle_period, bundle_used FROM closing_state ORDER BY account"
        ).to_arrow_table()
        state = {
            "credit_left": closing["credit_left"].to_numpy().astype(np.int64),
            "bundle_period": closing["bundle_period"].to_numpy().astype(np.int32),
            "bundle_used": closing["bundle_used"].to_numpy().astype(np.int64),
        }
        return out, state
