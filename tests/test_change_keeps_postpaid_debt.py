"""A change between postpaid packages (pay-as-you-go, bundle) keeps the
debt against the new package's credit limit (breaker R4, MEDIUM; README
"Money rules", package change).

The carry was ``max(0, credit)``: an account 12.00 in debt past its 10.00
credit limit changed from ``pay`` to ``pay2`` (or to a bundle) and opened
its new period on 0 of credit, 10.00 available: the debt had left the
ledger's view for the limit check and the reservations while the statement
still billed it. A package change is not a payment: the ledger's credit
carries as it is, below zero too, so an account stopped at its limit stays
stopped until it pays, whatever package it moves to.

Catalog below: ``pay`` pay-as-you-go 0.12/min, ``pay2`` 0.10/min, ``bun``
bundle of 10 minutes with overage at 0.10/min; each a credit limit of
10.00. Money in minor units, 1/10000 yuan (``YUAN`` = 10000).
"""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from clock import clock_at, when_dated
from rating_core.accounts import Accounts, open_view
from rating_core.accounts.importer import import_catalog
from rating_core.engine import Engine
from rating_core.router import Router
from rating_core.store import Store
from test_late_cdrs import acme_statements

CATALOG = """
name: postpaid-debt-change
destination_classes: [mobile]
destination_prefixes: {"1": mobile}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
  cheap: {tiers: [{price: 0.10}]}
packages:
  pay: {kind: payg, credit_limit: 10, rates: [{rate: std}]}
  pay2: {kind: payg, credit_limit: 10, rates: [{rate: cheap}]}
  bun: {kind: bundle, included_minutes: 10, overage_rate: cheap, credit_limit: 10, rates: [{rate: std}]}
customer_rules: {top_up_min: 600, top_up_min_months: 3}
routing_plans:
  desk:
    groups: {desk: {destinations: [{number: "13700000001"}]}}
    rules: [{group: desk}]
accounts:
  acme:
    name: Acme Co.
    package: pay
    package_start: 2026-10-01
    numbers: [{number: "4001110001", home_city: Shenzhen, routing: desk}]
"""
SH = dt.timezone(dt.timedelta(hours=8))
NUMBER, CALLER = "4001110001", "13912345678"
YUAN = 10_000


def at(month, day, hour=10):
    return int(dt.datetime(2026, month, day, hour, tzinfo=SH).timestamp() * 1000)


@pytest.fixture
def story(tmp_path):
    """``acme`` on ``pay``: a 100-minute call on 11-02 (12.00, debited: credit
    -12.00, 2.00 past the 10.00 limit). -> (store path, Accounts)."""
    (tmp_path / "c.yaml").write_text(CATALOG)
    Store(tmp_path / "store").compile(tmp_path / "c.yaml", activate=True)
    ops = Accounts.open(tmp_path / "store")
    import_catalog(ops, tmp_path / "c.yaml")
    start = at(11, 2)
    engine = Engine.open(tmp_path / "store", threads=1)
    try:
        engine.rate_and_commit(pa.Table.from_pylist([{
            "call_id": "c1", "caller": CALLER, "number": NUMBER, "forwarded_to": "13700000001", "start": start,
            "ivr_answer": start + 2000, "agent_answer": start + 2000, "end": start + 2000 + 100 * 60_000,
            "hangup_cause": "normal"}]))
    finally:
        engine.close()
    yield tmp_path / "store", when_dated(ops)
    ops.ledger.close()


def _authorize(ops, when):
    return Router(open_view(ops.store, ops.env), ops.ledger).authorize(NUMBER, CALLER, when)


@pytest.mark.parametrize("target", ["pay2", "bun"])
def test_a_change_between_postpaid_packages_keeps_the_debt_against_the_limit(story, tmp_path, capsys, target):
    """Hand: credit -12.00, limit 10.00: available -2.00, a call is refused
    ``out_of_credit``. Changed to ``target`` on 11-15 00:00: the new period
    opens on -12.00 (carried), available still -2.00, refused (was: opened on
    0, available 10.00, a call granted). The customer pays 5.00 on 11-16:
    credit -7.00, available 3.00: granted again (``pay2``: at most the 30
    minutes 3.00 buys at 0.10/min). A fresh bundle's 10 minutes are granted
    even in debt (a debt past the limit counts as 0 money, README), at most
    those 600 s while past the limit. November's statement bills the 12.00 call, pays 5.00 of it: 7.00 due
    = the ledger's debt."""
    store, ops = story
    assert ops.balance("acme")["credit_minor"] == -12 * YUAN
    with clock_at(at(11, 14)):
        assert _authorize(ops, at(11, 14)).reason == "out_of_credit"
    with clock_at(at(11, 15, 0)):
        r = ops.change_package("chg", "acme", target, effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    assert r["detail"]["carried_minor"] == -12 * YUAN
    bal = ops.balance("acme")
    assert (bal["credit_minor"], bal["available_minor"]) == (-12 * YUAN, -2 * YUAN)
    with clock_at(at(11, 15, 1)):
        d = _authorize(ops, at(11, 15, 1))
    if target == "pay2":
        assert (d.allow, d.reason) == (False, "out_of_credit")
    else:
        assert d.allow and d.max_duration_seconds <= 600
    with clock_at(at(11, 16)):
        ops.top_up("p1", "acme", 5 * YUAN, at_ms=at(11, 16))
    bal = ops.balance("acme")
    assert (bal["credit_minor"], bal["available_minor"]) == (-7 * YUAN, 3 * YUAN)
    with clock_at(at(11, 16, 1)):
        d = _authorize(ops, at(11, 16, 1))
    assert d.allow
    if target == "pay2":
        assert d.max_duration_seconds <= 30 * 60
    nov, = acme_statements(tmp_path, store, capsys)
    assert (nov["charges_minor"], nov["paid_to_charges_minor"], nov["amount_due_minor"]) == (
        12 * YUAN, 5 * YUAN, 7 * YUAN)
