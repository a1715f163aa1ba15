"""The end-to-end peer of the bulk job: Parquet in, the same rating in
DuckDB SQL, Parquet out.

What a data engineer would write instead of ``rating400 rate``, over the
raw demo CDR file (number strings as written, zone-aware timestamps):

1. **Edge** in SQL: numbers normalised by regular expressions (separators
   off, ``+86``/``0086`` off, the trunk zero restored on an international
   landline), a number that is not 3-18 digits afterwards is not one; the
   400 number must be ``400`` + 7 digits; times as epoch ms; the row checks
   the demo's rejects need (call id present, start and end present, end not
   before start, a call shorter than a day, answers within [start, end],
   start inside the calendar); the first good copy of a call id is rated.
   Numbers to the snapshot's base-11 keys by arithmetic on the digits.
2. **Rating**: the SQL of ``duckdb_rating.DuckDBRater`` (lookups, band,
   tier walk, the sequential credit / bundle pass) on the edge's rows.
3. **Output**: ``COPY ... TO`` Parquet (lz4), the rated rows with call id,
   400 number, start, names (account, package, rate, destination class) and
   every charged field.

The dimension tables (snapshot, names, opening state) are loaded before
timing, as the kernel peer does. This edge is the demo's forms only, not
every rule of ``rating_core.cdr`` (spreadsheet numbers, lost trunk zeros,
full-width digits, string times): the benchmark checks that both jobs rate
the same calls with the same charges, which holds for the demo's data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from rating_core import cdr as cdr_edge
from rating_core import layout
from rating_core.numbers import MAX_DIGITS

from .duckdb_rating import NO_TIME, DuckDBRater

OFFSET = layout.LOCAL_OFFSET_MS
DAY = layout.MS_PER_DAY


def _key_sql(col: str) -> str:
    """The base-11 key of a digit string (``rating_core.numbers.key``):
    sum of (digit + 1) * 11^(17 - position); 0 for NULL."""
    terms = [f"CASE WHEN length({col}) >= {i + 1} THEN (ascii(substr({col}, {i + 1}, 1)) - 47)::BIGINT "
             f"* {11 ** (MAX_DIGITS - 1 - i)}::BIGINT ELSE 0 END" for i in range(MAX_DIGITS)]
    return f"coalesce({' + '.join(terms)}, 0)"


MACROS = r"""
CREATE OR REPLACE MACRO stripped_number(x) AS regexp_replace(trim(x), '[\s\-().]', '', 'g');
CREATE OR REPLACE MACRO intl_national(s) AS
    CASE WHEN regexp_full_match(s, '(\+|00)86(1[3-9]\d{9}|[48]00\d{7})') THEN regexp_replace(s, '^(\+|00)86', '')
         WHEN regexp_full_match(s, '(\+|00)86[1-9]\d{8,10}') THEN '0' || regexp_replace(s, '^(\+|00)86', '')
         ELSE s END;
CREATE OR REPLACE MACRO normal_number(x) AS
    CASE WHEN regexp_full_match(x, '1[3-9]\d{9}|0[1-9]\d{8,10}|[48]00\d{7}') THEN x
         WHEN regexp_full_match(intl_national(stripped_number(x)), '\d{3,18}') THEN intl_national(stripped_number(x))
         ELSE NULL END;
CREATE OR REPLACE MACRO ms(t) AS coalesce(epoch_ms(t), {NO_TIME});
""".replace("{NO_TIME}", str(NO_TIME))

EDGE = f"""
CREATE OR REPLACE TEMP TABLE edged AS
SELECT file_row_number AS row_id, call_id, start,
       normal_number(caller) AS caller_n, normal_number(number) AS number_n, normal_number(forwarded_to) AS forwarded_n,
       ms(start) AS start_ms, ms(ivr_answer) AS ivr_answer_ms, ms(agent_answer) AS agent_answer_ms,
       ms("end") AS end_ms,
       caller IS NULL OR trim(caller) = '' AS caller_missing
FROM read_parquet($input, file_row_number = true);
CREATE OR REPLACE TEMP TABLE good AS
SELECT * FROM edged e
WHERE call_id IS NOT NULL AND call_id <> ''
  AND (caller_missing OR caller_n IS NOT NULL)
  AND regexp_full_match(number_n, '400\\d{{7}}') AND forwarded_n IS NOT NULL
  AND start_ms <> {NO_TIME} AND end_ms <> {NO_TIME} AND end_ms >= start_ms
  AND end_ms - start_ms < {cdr_edge.MAX_CALL_MS}
  AND (ivr_answer_ms = {NO_TIME} OR ivr_answer_ms BETWEEN start_ms AND end_ms)
  AND (agent_answer_ms = {NO_TIME} OR agent_answer_ms BETWEEN start_ms AND end_ms)
  AND (start_ms + {OFFSET}) // {DAY} BETWEEN $first_day AND $last_day;
CREATE OR REPLACE TEMP TABLE cdr AS
SELECT g.row_id, {_key_sql("g.number_n")} AS number_key,
       CASE WHEN g.caller_n IS NULL THEN 0 ELSE {_key_sql("g.caller_n")} END AS caller_key,
       {_key_sql("g.forwarded_n")} AS forwarded_key,
       g.start_ms, g.ivr_answer_ms, g.agent_answer_ms, g.end_ms
FROM good g
SEMI JOIN (SELECT min(row_id) AS row_id FROM good GROUP BY call_id) f ON f.row_id = g.row_id
"""

OUTPUT = """
COPY (
    SELECT e.call_id, e.number_n AS number, e.start,
           an.name AS account, pn.name AS package, rn.name AS rate, dn.name AS destination_class,
           r.billable_seconds, r.billed_seconds, r.units,
           r.charge AS charge_minor, r.credit_consumed AS credit_consumed_minor, r.bundle_seconds_consumed,
           r.overage AS overage_minor, r.balance_after
    FROM rated r
    JOIN edged e ON e.row_id = r.row_id
    LEFT JOIN account_names an ON an.id = r.account
    LEFT JOIN package_names pn ON pn.id = r.package
    LEFT JOIN rate_names rn ON rn.id = r.rate
    LEFT JOIN class_names dn ON dn.id = r.destination_class
    WHERE r.status = 0
) TO '{out}' (FORMAT parquet, COMPRESSION lz4)
"""


class DuckDBBulkJob:
    """Parquet -> Parquet in DuckDB. ``load`` (snapshot tables, names,
    opening state) is set-up; ``run(input, out)`` is the timed job."""

    def __init__(self, tables: dict[str, np.ndarray], meta: dict, state: dict[str, np.ndarray], threads: int = 2):
        self.rater = DuckDBRater(threads)
        self.con = self.rater.con
        self.rater.load_snapshot(tables)
        for table, key in (("account_names", "accounts"), ("package_names", "packages"), ("rate_names", "rates"),
                           ("class_names", "destination_classes")):
            names = list(meta[key])
            self.rater._table(table, pa.table({"id": np.arange(len(names), dtype=np.int32),
                                               "name": pa.array(names, pa.string())}))
        self.rater.load_state(state)
        self.days = cdr_edge.calendar_range(tables)
        for statement in filter(str.strip, MACROS.split(";")):
            self.con.execute(statement)

    def run(self, input_path: str | Path, out: str | Path) -> int:
        """Rate ``input_path`` into ``out``; returns the rows rated."""
        params = {"input": str(input_path), "first_day": self.days[0], "last_day": self.days[1]}
        for statement in filter(str.strip, EDGE.split(";")):
            self.con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
        self.rater.rate()
        self.con.execute(OUTPUT.format(out=str(out).replace("'", "''")))
        return int(self.con.sql("SELECT count(*) FROM rated WHERE status = 0").fetchall()[0][0])
