"""Reports: per number, region, hour, weekday, destination and campaign."""
import datetime as dt

import pyarrow as pa
import pytest

from rating_core.billing.calls import CALLS_SCHEMA
from rating_core.billing.reports import read_campaigns, report
from rating_core.errors import InvalidInput

CST = dt.timezone(dt.timedelta(hours=8))


def at(day, hour):
    return int(dt.datetime(2026, 11, day, hour, 30, tzinfo=CST).timestamp() * 1000)


ROWS = [  # 2026-11-02 is a Monday
    dict(number="4001000005", ivr_keys="1", start_ms=at(2, 9), answered=True, billed_seconds=120, charge=2400,
         caller_province="Guangdong", caller_city="Shenzhen", forwarded_to="13700000001"),
    dict(number="4001000005", ivr_keys="12", start_ms=at(2, 9), answered=False, billed_seconds=0, charge=0,
         caller_province="Guangdong", caller_city="Shenzhen", forwarded_to="13700000001"),
    dict(number="4001000005", ivr_keys="2", start_ms=at(8, 23), answered=True, billed_seconds=60, charge=1200,
         caller_province=None, caller_city=None, forwarded_to="13700000002"),
    dict(number="4001000006", ivr_keys=None, start_ms=at(3, 14), answered=True, billed_seconds=180, charge=3600,
         caller_province="Beijing", caller_city="Beijing", forwarded_to="13700000002"),
]


def calls():
    n = len(ROWS)
    cols = {f.name: [r.get(f.name) for r in ROWS] for f in CALLS_SCHEMA}
    cols.update(call_id=[f"c{i}" for i in range(n)], account=["shop"] * n)
    for k in ("billable_seconds", "credit_consumed", "bundle_seconds_consumed", "overage", "balance_after", "end_ms"):
        cols[k] = [0] * n
    return pa.table(cols, schema=CALLS_SCHEMA)


def rows(kind, **kw):
    return report(calls(), kind, **kw).to_pylist()


def test_per_number_hour_weekday_region_destination():
    by_number = {r["number"]: r for r in rows("number")}
    assert (by_number["4001000005"]["calls"], by_number["4001000005"]["answered"],
            by_number["4001000005"]["charge_minor"]) == (3, 2, 3600)
    assert {r["hour"]: r["calls"] for r in rows("hour")} == {9: 2, 14: 1, 23: 1}
    assert {r["weekday"]: r["calls"] for r in rows("weekday")} == {1: 2, 2: 1, 7: 1}  # Mon, Tue, Sun
    region = {(r["province"], r["city"]): r["calls"] for r in rows("region")}
    assert region == {("", ""): 1, ("Beijing", "Beijing"): 1, ("Guangdong", "Shenzhen"): 2}
    dest = {r["destination"]: r["answer_rate"] for r in rows("destination")}
    assert dest == {"13700000001": 0.5, "13700000002": 1.0}


def test_campaigns_by_number_and_ivr_key_path(tmp_path):
    (tmp_path / "c.csv").write_text("campaign,number,ivr_keys\nsearch ads,400-100-0005,\n"
                                    "after-sales,4001000005,2\nradio,4001000009,\n")
    tags = read_campaigns(tmp_path / "c.csv")
    got = {r["campaign"]: r for r in rows("campaign", campaigns=tags)}
    # Key path 2 goes to after-sales (longest match); 1 and 12 to the number's tag.
    assert (got["search ads"]["calls"], got["search ads"]["answered"], got["search ads"]["charge_minor"]) == (2, 1, 2400)
    assert (got["after-sales"]["calls"], got["after-sales"]["charge_minor"]) == (1, 1200)
    assert got["radio"]["calls"] == 0  # a campaign that brought no calls still shows
    # The calls no tag takes (here the untagged 4001000006) are one untagged
    # row (campaign null), last: the rows add up to the calls (newcomer N9 C8:
    # the demo's 2,059 calls to a tagged number without key paths vanished).
    table = rows("campaign", campaigns=tags)
    assert table[-1]["campaign"] is None and (got[None]["calls"], got[None]["charge_minor"]) == (1, 3600)
    assert sum(r["calls"] for r in table) == len(ROWS) and sum(r["charge_minor"] for r in table) == 7200
    only_after_sales = [t for t in tags if t.campaign == "after-sales"]
    untagged = {r["campaign"]: r["calls"] for r in rows("campaign", campaigns=only_after_sales)}
    assert untagged == {"after-sales": 1, None: 3}  # key paths 1 and 12 start no tag of their number
    (tmp_path / "bad.csv").write_text("campaign,number\nx,12345\n")
    with pytest.raises(InvalidInput, match="bad.csv row 1: number"):
        read_campaigns(tmp_path / "bad.csv")


def test_report_by_campaign_on_the_demo_adds_up_to_the_rated_calls(demo, capsys, monkeypatch):
    """The demo's campaigns file tags 4008593431 by IVR keys its CDRs never
    carry: those calls, and every untagged number's, are the "(untagged)"
    row, and the rows add up to the rated calls (newcomer N9 C8)."""
    import pyarrow.parquet as pq

    from rating_core.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as e:
        main(["report", str(demo / "rated.parquet"), "--by", "campaign", "--campaigns",
              str(demo / "catalog" / "campaigns.csv")])
    out = capsys.readouterr().out
    assert e.value.code == 0
    cells = {line.split("│")[1].strip(): int(line.split("│")[2].strip().replace(",", ""))
             for line in out.splitlines() if line.count("│") > 5}
    assert cells["(untagged)"] > 0 and list(cells)[-1] == "(untagged)"
    assert sum(cells.values()) == pq.read_table(demo / "rated.parquet").num_rows
