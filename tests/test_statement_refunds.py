"""A refund on the statement (newcomer N13 F1 addenda): cash paid back to the
customer is a line and a sum of its own (退款 / Refunds), its reason the
note, never merged into the credit adjustments (the printable statement
listed `accounts refund acme 100` as `余额调整 -100.00` noted "refund", and
its summary `余额调整(元) -112.50` held it with a -12.50 debit). The JSON,
the CSV, the Parquet and gRPC GetStatement carry it as `refunds` apart
from `credit_adjustments`; the credit's sum adds both (README "Monthly
statements")."""
import csv
import json
import re

import pyarrow.parquet as pq
import pytest

from rating_core.cli import main
from rating_core.store import Store

from clock import clock_at
from test_billing import YUAN, at

CATALOG = """
name: refunds
destination_classes: [mobile]
destination_prefixes: {"13": mobile}
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  pre_480: {kind: prepaid, fee: 480, period_months: 12, rates: [{rate: std}]}
accounts:
  acme:
    name: Acme Trading
    package: pre_480
    package_start: 2026-10-01
    opening_credit: 480
    numbers: [{number: "4001000003", home_city: Shenzhen}]
"""
REASON = "customer asked for unused credit back"


@pytest.fixture(scope="module")
def billed(tmp_path_factory):
    """acme (prepaid, 480.00, billed here from October): a -12.50 debit on
    11-10 and a 100.00 refund on 11-12; November billed with printable
    statements in Chinese and English, and as CSV and Parquet."""
    from rating_core.accounts import Accounts
    from rating_core.accounts.importer import import_catalog

    d = tmp_path_factory.mktemp("refunds")
    (d / "c.yaml").write_text(CATALOG, encoding="utf-8")
    Store(d / "store").compile(d / "c.yaml", activate=True)
    ops = Accounts.open(d / "store")
    try:
        import_catalog(ops, d / "c.yaml", billing_from_ms=at(10, 1, 0))
        with clock_at(at(11, 30)):
            ops.adjust("a1", "acme", -125_000, "goodwill credit given twice", at_ms=at(11, 10))
            ops.refund("r1", "acme", 100 * YUAN, REASON, at_ms=at(11, 12))
    finally:
        ops.ledger.close()
    for lang in ("zh", "en"):
        for out in (f"bills-{lang}.csv", "bills.json", "bills.parquet"):
            with pytest.raises(SystemExit) as e:
                main(["bill", "--ledger", "--store", str(d / "store"), "--account", "acme", "--month", "2026-11",
                      "--out", str(d / out), "--statements", str(d / f"st-{lang}"), "--lang", lang])
            assert e.value.code == 0
    return d


def _rows(html: str) -> list[list[str]]:
    return [re.findall(r"<td[^>]*>(.*?)</td>", r, re.S) for r in re.findall(r"<tr>(.*?)</tr>", html, re.S)]


@pytest.mark.parametrize("lang, adjusted, refunded, adjustment, refund", [
    ("zh", "余额调整(元)", "退款(元)", "余额调整", "退款"),
    ("en", "Credit adjustments (yuan)", "Refunds (yuan)", "credit adjustment", "refund"),
])
def test_the_printable_statement_tells_a_refund_from_a_credit_adjustment(billed, lang, adjusted, refunded,
                                                                         adjustment, refund):
    rows = _rows((billed / f"st-{lang}" / "acme-2026-11.html").read_text("utf-8"))
    # The credit's sum: a line each, so 480.00 - 12.50 - 100.00 = 367.50 reads as it happened.
    assert [adjusted, "-12.50"] in rows and [refunded, "-100.00"] in rows, rows
    # The month's money: the refund under its own name, its reason the note.
    assert ["2026-11-10 10:00", adjustment, "-12.50", "goodwill credit given twice"] in rows, rows
    assert ["2026-11-12 10:00", refund, "-100.00", REASON] in rows, rows


def test_json_csv_parquet_carry_refunds_apart(billed):
    (s,) = json.loads((billed / "bills.json").read_text("utf-8"))["statements"]
    assert s["credit_adjustments_total_minor"] == -125_000 and s["refunds_total_minor"] == -100 * YUAN
    assert [(e["kind"], e["amount_minor"], e["note"]) for e in s["refunds"]] == [("refund", -100 * YUAN, REASON)]
    assert [e["kind"] for e in s["credit_adjustments"]] == ["credit_adjustment"]
    assert s["closing_credit_minor"] == 3_675_000 == (
        s["opening_credit_minor"] + s["package_credit_minor"] + s["top_ups_total_minor"]
        + s["credit_adjustments_total_minor"] + s["refunds_total_minor"] - s["credit_consumed_minor"]
        - s["expired_credit_minor"])
    with open(billed / "bills-zh.csv", encoding="utf-8-sig", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["余额调整(元)"], row["退款(元)"], row["期末余额(元)"]) == ("-12.50", "-100.00", "367.50")
    (pq_row,) = pq.read_table(billed / "bills.parquet").to_pylist()
    assert (pq_row["credit_adjustments_minor"], pq_row["refunds_minor"]) == (-125_000, -100 * YUAN)
