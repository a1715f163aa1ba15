"""The monthly bill: minimum spend (waived in the first month), rental,
add-on fees, and months without calls."""
import datetime as dt

import pyarrow as pa

from rating_core.billing import monthly_bill
from rating_core.store import Store

CATALOG = """
name: bill
destination_classes: [mobile]
destination_prefixes: {"13": mobile}
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  pre_480: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rental: 5, rates: [{rate: std}]}
features:
  sms: {fee: 0.1, per: missed_call}
  crm: {fee: 120, per: year}
  rec: {fee: 10, per: month}
accounts:
  acme:
    package: pre_480
    package_start: 2026-09-15
    features: [sms, crm, rec]
    numbers: [{number: "4001234567", home_city: Shenzhen}]
  idle:
    package: pre_480
    package_start: 2026-01-01
    numbers: [{number: "4001234568", home_city: Shenzhen}]
"""

YUAN = 10_000


def ms(y, m, d):
    return int(dt.datetime(y, m, d, 12, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)


def test_monthly_bill(tmp_path):
    (tmp_path / "c.yaml").write_text(CATALOG)
    store = Store(tmp_path / "s")
    store.compile(tmp_path / "c.yaml", activate=True)
    meta = store.open().meta
    rated = pa.table({
        "account": ["acme", "acme", "acme", "acme"],
        "start_ms": [ms(2026, 9, 20), ms(2026, 9, 21), ms(2026, 10, 2), ms(2026, 10, 3)],
        "billable_seconds": [100, 0, 60, 0],
        "billed_seconds": [120, 0, 60, 0],
        "charge": [2400, 0, 1200, 0],
        "credit_consumed": [2400, 0, 1200, 0],
        "overage": [0, 0, 0, 0],
    })
    bill = {(r["account"], r["month"]): r for r in monthly_bill(rated, meta).to_pylist()}
    sep, octo = bill[("acme", "2026-09")], bill[("acme", "2026-10")]
    # First month: actual usage, no minimum; crm's yearly fee in the start month.
    assert sep["minimum_topup"] == 0
    assert sep["features"] == 120 * YUAN + 10 * YUAN + 1000  # crm + rec + one missed call
    assert sep["amount_due"] == 5 * YUAN + sep["features"]  # usage came from credit
    # Later month: charged max(usage, minimum).
    assert octo["usage"] == 1200 and octo["minimum_topup"] == 40 * YUAN - 1200
    assert octo["features"] == 10 * YUAN + 1000
    # An account with no calls still owes its minimum and rental.
    idle = bill[("idle", "2026-10")]
    assert idle["calls"] == 0 and idle["minimum_topup"] == 40 * YUAN and idle["amount_due"] == 45 * YUAN
    assert set(bill) == {("acme", "2026-09"), ("acme", "2026-10"), ("idle", "2026-09"), ("idle", "2026-10")}
