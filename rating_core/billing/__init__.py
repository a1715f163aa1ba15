"""The enterprise's side of billing: statements, package advice, the caller
CRM and campaign reports.

- ``calls``: rated calls from files, one row per call id; ``sources``: the
  ledger's committed calls in the same shape.
- ``events``: account events (top-ups, credit adjustments, bill
  adjustments, rerating, features) from a CSV or the accounts layer.
- ``statements``: the monthly statement per account; ``render``: CSV (BOM),
  JSON, Parquet, HTML and PDF.
- ``advisor``: an account's calls priced under every package.
- ``crm``: per-caller records kept incrementally.
- ``reports``: calls and minutes per number, region, hour, campaign.

Money is int64 minor units (1/10000 yuan) throughout; yuan with 2
decimals only where people read it.
"""
from .calls import CALLS_SCHEMA, RatedCalls, read_rated
from .events import AccountEvent, read_events
from .statements import Statement, build_statements, summary_table

__all__ = ["CALLS_SCHEMA", "RatedCalls", "read_rated", "AccountEvent", "read_events", "Statement",
           "build_statements", "summary_table"]
