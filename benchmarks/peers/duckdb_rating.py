"""The peer: the same rating written as DuckDB SQL.

This is the job a data engineer would write instead of our kernel: load
the compiled snapshot tables and the prepared CDR columns (numbers already
as integer keys, times as epoch ms) into DuckDB, then rate in SQL:

- 400 number -> account -> package: equality joins;
- longest-prefix match (destination class, caller city, carrier): the
  snapshot's prefix tables are disjoint intervals, so the match is "the
  last interval start <= key", an ASOF join;
- time band: local day and hour by integer arithmetic, then the calendar
  (day kind, month) and band tables;
- rate: a join on (package, destination class, caller class, band);
- tiers: the tier walk is a recurrence (an increment may run past its
  tier's end), so it is a recursive CTE — over the distinct (rate,
  duration) pairs only, then joined back: cheaper than per call, which
  favours the peer;
- the sequential credit / bundle pass: window functions. Per account in
  chronological order (start, then input order), with S = the sum of the
  earlier rated calls' charges (prepaid) or billed seconds in the month
  (bundle):
    prepaid: consumed = clamp(credit0 - S, 0, charge), 0 from expiry on;
    bundle:  consumed = clamp(room - S, 0, billed), room = included - used0.

It computes every output column of ``rating_core.kernels.rating.OUTPUT``
and the closing account state, so the benchmark can check them all.
DuckDB runs on all the threads it is given (both cores here).

Assumptions the kernel shares: times are after 1970 (integer division is
floor division) and inside the calendar table.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from rating_core import layout

NO_TIME = int(layout.NO_TIME)
OFFSET = layout.LOCAL_OFFSET_MS
DAY = layout.MS_PER_DAY
HOUR = 3_600_000

# The output columns and their dtypes, as the kernel returns them.
OUTPUT = (
    ("status", np.int8),
    ("account", np.int32),
    ("package", np.int32),
    ("destination_class", np.int32),
    ("caller_city", np.int32),
    ("caller_province", np.int32),
    ("caller_carrier", np.int32),
    ("caller_class", np.int8),
    ("time_band", np.int8),
    ("rate", np.int32),
    ("billable_seconds", np.int32),
    ("billed_seconds", np.int32),
    ("units", np.int32),
    ("charge", np.int64),
    ("credit_consumed", np.int64),
    ("bundle_seconds_consumed", np.int32),
    ("overage", np.int64),
    ("balance_after", np.int64),
)
CDR_COLUMNS = ("number_key", "caller_key", "forwarded_key", "start_ms", "ivr_answer_ms", "agent_answer_ms", "end_ms")


def _rounded(num: str, den: str, rounding: str) -> str:
    """SQL for num / den rounded by the rate's mode (0 up, 1 half up, 2 down);
    num >= 0, den > 0, integers: ``//`` is exact integer division."""
    return (
        f"CASE {rounding} WHEN 0 THEN ({num} + {den} - 1) // {den} "
        f"WHEN 1 THEN (2 * {num} + {den}) // (2 * {den}) ELSE {num} // {den} END"
    )


# Phase 1, lookups: one row per CDR with everything but the tier walk.
PRICE_LOOKUPS = f"""
CREATE OR REPLACE TEMP TABLE looked_up AS
WITH located AS (
    SELECT c.row_id, c.start_ms, c.ivr_answer_ms, c.agent_answer_ms, c.end_ms,
           n.account, n.status AS number_status, n.billing_start, n.home_city,
           d.class AS destination_class, r.city AS caller_city, k.carrier AS caller_carrier,
           (c.start_ms + {OFFSET}) // {DAY} - (SELECT first_day FROM calendar_first_day) AS day,
           ((c.start_ms + {OFFSET}) % {DAY}) // {HOUR} AS hour
    FROM cdr c
    LEFT JOIN numbers n ON n.number_key = c.number_key
    ASOF JOIN dest d ON c.forwarded_key >= d.start
    ASOF JOIN region r ON c.caller_key >= r.start
    ASOF JOIN carrier k ON c.caller_key >= k.start
), classified AS (
    SELECT l.*, a.package, a.start_ms AS package_start_ms, cal.month,
           b.band AS time_band, p.province AS caller_province,
           CASE WHEN l.account IS NULL THEN NULL
                WHEN l.caller_city >= 0 AND l.caller_city = l.home_city THEN 0 ELSE 1 END AS caller_class
    FROM located l
    LEFT JOIN accounts a ON a.account = l.account
    JOIN calendar cal ON cal.day = l.day
    JOIN band_of b ON b.day_kind = cal.day_kind AND b.hour = l.hour
    LEFT JOIN city_province p ON p.city = l.caller_city
), chosen AS (
    SELECT c.*, rt.rate AS chosen_rate,
           CASE WHEN c.account IS NULL THEN 1
                WHEN c.number_status <> 0 THEN 2
                WHEN c.start_ms < c.package_start_ms THEN 3
                WHEN c.destination_class < 0 THEN 4
                WHEN c.time_band < 0 OR rt.rate IS NULL THEN 5
                ELSE 0 END AS status
    FROM classified c
    LEFT JOIN rate_choice rt ON rt.package = c.package AND rt.destination_class = c.destination_class
                            AND rt.caller_class = c.caller_class AND rt.band = c.time_band
)
SELECT ch.*,
       CASE WHEN ch.status <> 0 OR ch.bill_from = {NO_TIME} OR ch.end_ms <= ch.bill_from THEN 0
            ELSE (ch.end_ms - ch.bill_from + 999) // 1000 END AS billable_seconds
FROM (SELECT c.*, CASE c.billing_start WHEN 0 THEN c.start_ms WHEN 1 THEN c.ivr_answer_ms
                                       ELSE c.agent_answer_ms END AS bill_from
      FROM chosen c) ch
"""

# Phase 1, the tier walk per distinct (rate, duration): a recursive CTE,
# one step per tier (rule 7: an increment that starts in a tier is priced
# by it even when it runs past the tier's end).
_LIMIT = "least(coalesce(ti.next_start, w.duration), w.duration)"  # end of this tier's segment
_K = f"CASE WHEN w.t < {_LIMIT} THEN ({_LIMIT} - w.t + ti.increment - 1) // ti.increment ELSE 0 END"

TIER_WALK = f"""
CREATE OR REPLACE TEMP TABLE priced AS
WITH RECURSIVE calls AS (
    SELECT DISTINCT l.chosen_rate AS rate, l.billable_seconds AS billable
    FROM looked_up l JOIN rates ra ON ra.rate = l.chosen_rate
    WHERE l.status = 0 AND l.billable_seconds > 0 AND l.billable_seconds > ra.free_seconds
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

# Phase 2: settle the rated calls per account in chronological order.
SETTLE = f"""
CREATE OR REPLACE TABLE rated AS
WITH joined AS (
    SELECT l.row_id, l.status, l.account, l.package, l.destination_class, l.caller_city,
           coalesce(l.caller_province, -1) AS caller_province, l.caller_carrier, l.caller_class, l.time_band, l.start_ms, l.month,
           CASE WHEN l.status = 0 THEN l.chosen_rate ELSE -1 END AS rate,
           l.billable_seconds,
           coalesce(p.billed_seconds, 0) AS billed_seconds,
           coalesce(p.units, 0) AS units,
           coalesce(p.charge, 0) AS rate_charge,
           pk.kind, pk.included_seconds, pk.overage_price, a.expiry_ms,
           s.credit_left AS credit0, s.bundle_period AS period0, s.bundle_used AS used0,
           ra.rounding
    FROM looked_up l
    LEFT JOIN priced p ON p.rate = l.chosen_rate AND p.billable = l.billable_seconds AND l.status = 0
    LEFT JOIN accounts a ON a.account = l.account
    LEFT JOIN packages pk ON pk.package = l.package
    LEFT JOIN state s ON s.account = l.account
    LEFT JOIN rates ra ON ra.rate = l.chosen_rate
), running AS (
    SELECT r.*,
           -- prepaid: charges of the account's earlier rated calls
           coalesce(sum(rate_charge) OVER (PARTITION BY account, status = 0 ORDER BY start_ms, row_id
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS charged_before,
           -- bundle: billed seconds of the earlier rated calls in the same month
           coalesce(sum(billed_seconds) OVER (PARTITION BY account, status = 0, month ORDER BY start_ms, row_id
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS used_before,
           min(month) OVER (PARTITION BY account, status = 0) AS first_month
    FROM joined r
), bundle AS (
    SELECT r.*,
           -- use carried from the ledger counts only in its own month, and
           -- only if no earlier call opened another month
           CASE WHEN month = period0 AND month = first_month THEN used0 ELSE 0 END AS used_open
    FROM running r
), consumed AS (
    SELECT b.*,
           CASE WHEN status <> 0 OR kind <> 1 OR start_ms >= expiry_ms THEN 0
                ELSE least(greatest(credit0 - charged_before, 0), rate_charge) END AS credit_consumed,
           CASE WHEN status <> 0 OR kind <> 2 THEN 0
                ELSE least(greatest(greatest(included_seconds - used_open, 0) - used_before, 0), billed_seconds)
           END AS bundle_seconds_consumed
    FROM bundle b
)
SELECT row_id, status, coalesce(account, -1) AS account, coalesce(package, -1) AS package,
       destination_class, caller_city, caller_province, caller_carrier,
       coalesce(caller_class, -1) AS caller_class, time_band, rate,
       billable_seconds, billed_seconds, units,
       CASE WHEN status = 0 AND kind = 2
            THEN {_rounded("(billed_seconds - bundle_seconds_consumed) * overage_price", "60", "rounding")}
            ELSE rate_charge END AS charge,
       credit_consumed, bundle_seconds_consumed,
       CASE WHEN status <> 0 THEN 0
            WHEN kind = 1 THEN rate_charge - credit_consumed
            WHEN kind = 2 THEN {_rounded("(billed_seconds - bundle_seconds_consumed) * overage_price", "60", "rounding")}
            ELSE 0 END AS overage,
       CASE WHEN status <> 0 THEN 0
            WHEN kind = 1 THEN (CASE WHEN start_ms >= expiry_ms THEN 0
                                     ELSE greatest(credit0 - charged_before, 0) - credit_consumed END)
            WHEN kind = 2 THEN included_seconds - used_open - least(greatest(included_seconds - used_open, 0),
                                                                     used_before + bundle_seconds_consumed)
            ELSE 0 END AS balance_after,
       start_ms, month, kind
FROM consumed
"""

# Closing account state: the last rated call of each account sets it.
CLOSING_STATE = """
CREATE OR REPLACE TABLE closing_state AS
WITH last AS (
    SELECT account, arg_max(balance_after, (start_ms, row_id)) AS balance,
           arg_max(month, (start_ms, row_id)) AS month, any_value(kind) AS kind
    FROM rated WHERE status = 0 GROUP BY account
)
SELECT s.account,
       CASE WHEN l.kind = 1 THEN l.balance ELSE s.credit_left END AS credit_left,
       CASE WHEN l.kind = 2 THEN l.month ELSE s.bundle_period END AS bundle_period,
       CASE WHEN l.kind = 2 THEN pk.included_seconds - l.balance ELSE s.bundle_used END AS bundle_used
FROM state s
LEFT JOIN last l ON l.account = s.account
LEFT JOIN accounts a ON a.account = s.account
LEFT JOIN packages pk ON pk.package = a.package
"""


def _ids(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int32)


def _intervals(starts: np.ndarray, values: np.ndarray, name: str) -> pa.Table:
    return pa.table({"start": starts, name: values})


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
        n_accounts = len(t["account_package"])
        self._table("numbers", pa.table({
            "number_key": t["number_key"], "account": t["number_account"], "status": t["number_status"],
            "billing_start": t["number_billing_start"], "home_city": t["number_home_city"],
        }))
        self._table("accounts", pa.table({
            "account": _ids(n_accounts), "package": t["account_package"],
            "start_ms": t["account_start_ms"], "expiry_ms": t["account_expiry_ms"],
        }))
        self._table("packages", pa.table({
            "package": _ids(len(t["package_kind"])), "kind": t["package_kind"],
            "included_seconds": t["package_included_seconds"], "overage_price": t["package_overage_price"],
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
        self._table("dest", _intervals(t["dest_starts"], t["dest_values"], "class"))
        self._table("region", _intervals(t["region_starts"], t["region_values"], "city"))
        self._table("carrier", _intervals(t["carrier_starts"], t["carrier_values"], "carrier"))
        self._table("city_province", pa.table({"city": _ids(len(t["city_province"])), "province": t["city_province"]}))
        self._table("calendar_first_day", pa.table({"first_day": t["calendar_first_day"]}))
        self._table("calendar", pa.table({
            "day": np.arange(len(t["day_kind"]), dtype=np.int64), "day_kind": t["day_kind"], "month": t["day_month"],
        }))
        kind, hour = np.meshgrid(np.arange(3), np.arange(24), indexing="ij")
        self._table("band_of", pa.table({
            "day_kind": kind.ravel().astype(np.int8), "hour": hour.ravel().astype(np.int64),
            "band": t["band_of"].ravel(),
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
            self.con.execute(sql)

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
