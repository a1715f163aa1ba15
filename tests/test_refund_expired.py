"""A refund dated (`--at`) before a prepaid period ended pays back only
credit that is still there today: the period's credit expired with it
(breaker N11 F17: 60.00 of expired credit refunded when dated 11-20).
README "Money rules", refund."""
import datetime as dt

import pytest

from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog
from rating_core.errors import Refused
from rating_core.store import Store

CATALOG = """
name: expiry
destination_classes: [mobile, landline]
destination_prefixes: {"13": mobile, "0": landline}
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  pre_1m: {kind: prepaid, fee: 1, period_months: 1, rates: [{rate: std}]}
  pre_1y: {kind: prepaid, fee: 1, period_months: 12, rates: [{rate: std}]}
accounts:
  ended:
    name: Ended Ltd
    package: pre_1m
    package_start: 2026-10-20
    opening_credit: 50
    numbers: [{number: "4001000001", home_city: Shenzhen}]
  running:
    name: Running Ltd
    package: pre_1y
    package_start: 2026-10-20
    opening_credit: 50
    numbers: [{number: "4001000002", home_city: Shenzhen}]
"""

NOV_10 = int(dt.datetime(2026, 11, 10, 10, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)
OCT_1 = int(dt.datetime(2026, 10, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)


def test_a_back_dated_refund_pays_back_no_expired_credit(tmp_path):
    (tmp_path / "c.yaml").write_text(CATALOG, encoding="utf-8")
    Store(tmp_path / "store").compile(tmp_path / "c.yaml", activate=True)
    ops = Accounts.open(tmp_path / "store")
    try:
        import_catalog(ops, tmp_path / "c.yaml", billing_from_ms=OCT_1)
        assert ops.balance("ended")["credit_minor"] == 0  # the period ended on 11-20: expired
        with pytest.raises(Refused, match=r"refundable credit is 0\.00 yuan \(the package period ended "
                                          r"2026-11-20T00:00:00\+08:00: its credit expired\); cannot refund 10\.00"):
            ops.refund("r-1", "ended", 10_0000, "overpaid", at_ms=NOV_10)  # on 11-10 it was there; today it is not
        # A period still running: the back-dated refund is paid as before.
        assert ops.refund("r-2", "running", 10_0000, "overpaid", at_ms=NOV_10)["balance"]["credit_minor"] == 40_0000
    finally:
        ops.ledger.close()
