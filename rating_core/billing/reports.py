"""Reports on rated calls: what the console draws.

Every report is a table with one row per group and the columns
``calls, answered, answer_rate, billed_seconds, charge_minor`` (charge in
minor units, 1/10000 yuan), from calls in ``CALLS_SCHEMA`` (one row per
call id):

- ``number``: per 400 number;
- ``region``: per province and city of the caller (unknown: empty);
- ``hour``: per local hour of day (0-23); ``weekday``: per local day of
  week (1 = Monday .. 7 = Sunday);
- ``destination``: per forwarded-to number, with its answer rate;
- ``campaign``: per campaign, from campaign tags: a 400 number, or a 400
  number and an IVR key path, tagged with a campaign name (the advertising
  that number or menu key stands for). A call belongs to the tag with the
  longest key path that its own path starts with; the calls no tag takes
  (an untagged number, or a key path no tag of its number starts) are one
  row whose campaign is null (untagged), so the rows add up to the calls
  the report counts.

Campaign tags are a CSV ``campaign,number,ivr_keys`` (``ivr_keys`` may be
empty: the whole number). Calls carry their IVR key path in an ``ivr_keys``
column when the switch sends one.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..cdr import check_characters
from ..errors import InvalidInput
from ..numbers import normalize_array

KINDS = ("number", "region", "hour", "weekday", "destination", "campaign")


@dataclass(frozen=True)
class CampaignTag:
    campaign: str
    number: str
    ivr_keys: str = ""


def read_campaigns(path: str | Path) -> list[CampaignTag]:
    """Campaign tags from CSV (``campaign,number,ivr_keys``). Raises
    InvalidInput naming the file, row and field."""
    tags = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        for col in ("campaign", "number"):
            if col not in (reader.fieldnames or []):
                raise InvalidInput(col, "no such column (need campaign,number[,ivr_keys])", str(path))
        for i, row in enumerate(reader, start=1):
            where = f"{path} row {i}"
            for field in ("campaign", "number", "ivr_keys"):
                if isinstance(row.get(field), str):  # reports write the name raw
                    check_characters(field, row[field], where)
            if not (row.get("campaign") or "").strip():
                raise InvalidInput("campaign", "missing", where)
            number = normalize_array(pa.array([row.get("number") or ""]))[0].to_pylist()[0]
            if not number or not (number.startswith("400") and len(number) == 10):
                raise InvalidInput("number", f"not a 400 number: {row.get('number')!r}", where)
            keys = (row.get("ivr_keys") or "").strip()
            if keys and not all(c.isdigit() or c in "*#" for c in keys):
                raise InvalidInput("ivr_keys", f"not a key path (digits, * and #): {keys!r}", where)
            tags.append(CampaignTag(row["campaign"].strip(), number, keys))
    return tags


def _aggregate(t: pa.Table, keys: list[str]) -> pa.Table:
    g = t.group_by(keys, use_threads=True).aggregate([
        ("answered", "count"), ("answered", "sum"), ("billed_seconds", "sum"), ("charge", "sum")])
    calls = g.column("answered_count")
    answered = g.column("answered_sum")
    rate = pc.round(pc.divide(pc.cast(answered, pa.float64()), pc.cast(calls, pa.float64())), 4)
    out = pa.table({**{k: g.column(k) for k in keys}, "calls": calls, "answered": answered, "answer_rate": rate,
                    "billed_seconds": g.column("billed_seconds_sum"), "charge_minor": g.column("charge_sum")})
    return out.sort_by([(k, "ascending") for k in keys])


def _base(calls: pa.Table) -> pa.Table:
    return pa.table({"answered": pc.cast(calls.column("answered"), pa.int64()),
                     "billed_seconds": calls.column("billed_seconds"), "charge": calls.column("charge")})


def report(calls: pa.Table, kind: str, campaigns: Sequence[CampaignTag] = (), account: str | None = None) -> pa.Table:
    """One report (``KINDS``) over ``calls`` (optionally one account's)."""
    if kind not in KINDS:
        raise ValueError(f"report: {kind!r} is not one of {', '.join(KINDS)}")
    if account is not None:
        calls = calls.filter(pc.equal(calls.column("account"), account))
    base = _base(calls)
    local = calls.column("start_ms").to_numpy() + layout.LOCAL_OFFSET_MS
    if kind == "number":
        return _aggregate(base.append_column("number", calls.column("number")), ["number"])
    if kind == "region":
        t = base.append_column("province", pc.fill_null(calls.column("caller_province"), ""))
        t = t.append_column("city", pc.fill_null(calls.column("caller_city"), ""))
        return _aggregate(t, ["province", "city"])
    if kind == "hour":
        return _aggregate(base.append_column("hour", pa.array((local % layout.MS_PER_DAY) // 3_600_000)), ["hour"])
    if kind == "weekday":
        days = local // layout.MS_PER_DAY  # 1970-01-01 was a Thursday (ISO 4)
        return _aggregate(base.append_column("weekday", pa.array((days + 3) % 7 + 1)), ["weekday"])
    if kind == "destination":
        return _aggregate(base.append_column("destination", pc.fill_null(calls.column("forwarded_to"), "")),
                          ["destination"])
    return _campaigns(calls, base, campaigns)


def _campaigns(calls: pa.Table, base: pa.Table, tags: Sequence[CampaignTag]) -> pa.Table:
    numbers = calls.column("number").to_pylist()
    keys = pc.fill_null(calls.column("ivr_keys"), "").to_pylist()
    by_number: dict[str, list[CampaignTag]] = {}
    for t in tags:
        by_number.setdefault(t.number, []).append(t)
    for v in by_number.values():
        v.sort(key=lambda t: -len(t.ivr_keys))  # longest key path first
    names = []
    for number, path in zip(numbers, keys):
        found = None
        for t in by_number.get(number, ()):
            if path.startswith(t.ivr_keys):
                found = t.campaign
                break
        names.append(found)
    # A call no tag takes is counted under null (untagged), the row sorted last.
    out = _aggregate(base.append_column("campaign", pa.array(names, pa.string())), ["campaign"])
    # Campaigns without calls still appear (advertising that brought nothing).
    missing = sorted({t.campaign for t in tags} - set(out.column("campaign").to_pylist()))
    if missing:
        zeros = np.zeros(len(missing), np.int64)
        out = pa.concat_tables([out, pa.table({"campaign": missing, "calls": zeros, "answered": zeros,
                                               "answer_rate": pa.nulls(len(missing), pa.float64()),
                                               "billed_seconds": zeros, "charge_minor": zeros},
                                              schema=out.schema)]).sort_by([("campaign", "ascending")])
    return out
