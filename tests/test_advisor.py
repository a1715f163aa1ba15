"""Package advisor: answers worked out by hand.

Prices: pay as you go 0.12 per started minute; a bundle of 100 minutes a
month for 10 yuan rental, then 0.10 per minute; prepaid 480 yuan a year
(40 a month at least) at 0.12. Every call talks exactly 2 minutes.
"""
import datetime as dt

import pyarrow as pa
import pytest

from rating_core.billing.advisor import Advisor
from rating_core.cli import main
from rating_core.store import Store

CATALOG = """
name: advice
destination_classes: [mobile]
destination_prefixes: {"13": mobile}
rates:
  std: {tiers: [{price: 0.12}]}
  b: {tiers: [{price: 0.12}]}
packages:
  payg: {kind: payg, rates: [{rate: std}]}
  bundle_100: {kind: bundle, included_minutes: 100, overage_price: 0.10, rental: 10, rates: [{rate: b}]}
  pre_480: {kind: prepaid, fee: 480, period_months: 12, rates: [{rate: std}]}
accounts:
  shop:
    package: payg
    package_start: 2026-01-01
    numbers: [{number: "4001000005", home_city: Shenzhen}]
  other:
    package: payg
    package_start: 2026-01-01
    numbers: [{number: "4001000006", home_city: Shenzhen}]
"""
YUAN = 10_000
CST = dt.timezone(dt.timedelta(hours=8))


def cdrs(n, number="4001000005", month=11):
    rows = []
    for i in range(n):
        start = int(dt.datetime(2026, month, 1 + i % 28, 9, tzinfo=CST).timestamp() * 1000) + i * 1000
        rows.append({"call_id": f"{number}-{month}-{i}", "caller": "13812345678", "number": number,
                     "forwarded_to": "13912345678", "start": start, "agent_answer": start + 5000,
                     "end": start + 5000 + 120_000})
    return pa.table({k: [r[k] for r in rows] for k in rows[0]})


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    d = tmp_path_factory.mktemp("advice")
    (d / "c.yaml").write_text(CATALOG)
    store = Store(d / "store")
    store.compile(d / "c.yaml", activate=True)
    return store.open()


def test_few_calls_pay_as_you_go_wins(snapshot):
    advice = Advisor(snapshot).advise("shop", cdrs(3))
    costs = {p.package: p for p in advice.packages}
    assert [p.package for p in advice.packages] == ["payg", "bundle_100", "pre_480"]
    assert costs["payg"].total == 3 * 2400 and costs["payg"].current
    assert costs["bundle_100"].total == 10 * YUAN  # all in the bundle: the rental
    assert costs["pre_480"].total == 40 * YUAN  # the fee spread over 12 months
    assert costs["bundle_100"].saving_monthly == 7200 - 10 * YUAN  # dearer: a negative saving


def test_many_calls_the_bundle_wins_and_break_even(snapshot):
    advice = Advisor(snapshot).advise("shop", pa.concat_tables([cdrs(200), cdrs(5, "4001000006")]))
    assert advice.calls == 200  # the other account's calls are not this account's
    costs = {p.package: p for p in advice.packages}
    assert advice.best.package == "bundle_100"
    assert costs["payg"].total == 200 * 2400  # 48.00
    assert costs["bundle_100"].total == 10 * YUAN + 300 * 1000  # 10 + 300 minutes x 0.10 = 40.00
    assert costs["bundle_100"].saving_monthly == 8 * YUAN
    assert costs["pre_480"].total == 48 * YUAN  # usage above the 40 floor
    # 0.24 x calls = 10 (inside the bundle up to 50 calls): 41.7 calls -> the
    # bundle is cheaper from 42 calls a month on.
    assert costs["bundle_100"].break_even_calls_per_month == 42
    # prepaid costs the same as pay as you go from 167 calls on, never less.
    assert costs["pre_480"].break_even_calls_per_month is None


def test_a_year_of_calls_counts_every_month(snapshot):
    year = pa.concat_tables([cdrs(3, month=m) for m in range(1, 13)])
    advice = Advisor(snapshot).advise("shop", year)
    costs = {p.package: p for p in advice.packages}
    assert len(advice.months) == 12 and advice.calls == 36
    assert costs["bundle_100"].total == 12 * 10 * YUAN
    assert costs["pre_480"].total == 480 * YUAN and costs["pre_480"].monthly == 40 * YUAN


def test_advise_command(snapshot, tmp_path, capsys):
    import pyarrow.parquet as pq

    pq.write_table(cdrs(200), tmp_path / "calls.parquet")
    store = str(snapshot.path.parent.parent)
    with pytest.raises(SystemExit) as e:
        main(["advise", str(tmp_path / "calls.parquet"), "--store", store, "--account", "shop"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "bundle_100" in out and "8.00" in out and "42" in out
    with pytest.raises(SystemExit) as e:
        main(["advise", str(tmp_path / "calls.parquet"), "--store", store, "--account", "nobody"])
    assert e.value.code == 2 and "nobody" in capsys.readouterr().err


def test_a_late_bundle_call_draws_from_its_months_allowance(snapshot):
    """What-if on the bundle: o1 uses 95 of October's 100 minutes; x starts
    before midnight and is answered after it (November), y starts 5 s
    later and is answered before it (October, settled after x: late). y's
    10 minutes draw October's 5 left and pay 5 at 0.10 (0.50 yuan), as
    rating and a commit settle it; the advisor charged all 10 (1.00)."""
    def call(call_id, start, answer_s, minutes):
        return {"call_id": call_id, "caller": "13812345678", "number": "4001000005", "forwarded_to": "13912345678",
                "start": start, "agent_answer": start + answer_s * 1000, "end": start + answer_s * 1000 + minutes * 60_000}
    midnight = int(dt.datetime(2026, 11, 1, tzinfo=CST).timestamp() * 1000)
    o1 = int(dt.datetime(2026, 10, 20, 9, tzinfo=CST).timestamp() * 1000)
    calls = [call("o1", o1, 5, 95), call("x", midnight - 10_000, 20, 1), call("y", midnight - 5_000, 3, 10)]
    advice = Advisor(snapshot).advise("shop", pa.table({k: [c[k] for c in calls] for k in calls[0]}))
    costs = {p.package: p for p in advice.packages}
    assert costs["bundle_100"].usage == 5 * 1000
