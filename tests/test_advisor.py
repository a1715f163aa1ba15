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
