"""The printable statement's "Package period": each period's real dates
(faces 12-02, MEDIUM: a pay-as-you-go period from 2026-12-01 changed at
14:30 the same day printed "2026-12-01 – 2026-12-01": with no end date of
its own its last day was taken as the day before the change, 11-30, then
raised to its first day; one from 10-01 changed on 12-05 at 14:30 printed
12-04 as its last day, though it ran until 14:30 on 12-05).

The rule (``render.package_periods``, ``render.period_text``): a period
ended by a change during a day runs to that day, with the change's time
("2026-10-01 – 2026-12-05 (changed 14:30)"); ended by one at midnight, to
the day before; a period of one day prints that day once; open-ended:
"since <first day>". Times are Asia/Shanghai.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest

from clock import clock_at, when_dated
from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog
from rating_core.billing.render import PackagePeriod, package_periods, period_text
from rating_core.billing.statements import Statement
from rating_core.cli import main
from rating_core.engine import Engine
from rating_core.ledger import Ledger
from stores import compiled

CATALOG = """
name: period-dates-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  payg: {kind: payg, rates: [{rate: std}]}
  bun_r: {kind: bundle, included_minutes: 100, overage_price: 0.20, rental: 99, rates: [{rate: std}]}
  pre_a: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rates: [{rate: std}]}
number_grades:
  standard: {}
customer_rules: {top_up_min: 100, top_up_min_months: 1, restore_months: 3, reclaim_months: 6, cooling_days: 90}
routing_plans:
  office:
    groups:
      desk: {destinations: [{number: "13700000001"}]}
    rules: [{group: desk}]
accounts:
  acme:
    name: Acme Co.
    package: PACKAGE
    package_start: START
    numbers:
      - {number: "4001110001", home_city: Shenzhen, routing: office}
"""
SH = dt.timezone(dt.timedelta(hours=8))


def at(month, day, hour=10, minute=0):
    return int(dt.datetime(2026, month, day, hour, minute, tzinfo=SH).timestamp() * 1000)


def world(tmp_path, package, start, steps):
    store = compiled(tmp_path, CATALOG.replace("PACKAGE", package).replace("START", start))
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(store, ledger)
    assert import_catalog(ops, tmp_path / "catalog.yaml", billing_from_ms=at(10, 1, 0))["imported"] == ["acme"]
    engine = Engine.open(tmp_path / "store")
    with clock_at(at(12, 31)):
        for step in steps:
            step(when_dated(ops))
            engine.refresh()
    engine.close()
    ledger.close()
    return tmp_path / "store"


def period_cell(store, tmp_path, capsys, month, lang):
    """The "Package period" cell of ``month``'s printable statement, as text."""
    with clock_at(at(12, 31)), pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(tmp_path / "b.parquet"), "--account", "acme",
              "--statements", str(tmp_path / "st"), "--month", month, "--lang", lang])
    assert e.value.code == 0, capsys.readouterr().err
    capsys.readouterr()
    html = (tmp_path / "st" / f"acme-{month}.html").read_text("utf-8")
    cell = re.search(r'<td class="k">(?:Package period|套餐期限)</td>\s*<td[^>]*>(.*?)</td>', html, re.S)[1]
    return re.sub(r"<[^>]+>", "", cell)


def change(ops_id, package, when):
    return lambda ops: ops.change_package(ops_id, "acme", package, effective_ms=when, at_ms=when)


def test_a_payg_period_changed_during_the_day_it_began_prints_that_day_once_with_the_time(tmp_path, capsys):
    """payg from 2026-12-01 (00:00), changed to bun_r at 12-01 14:30: the
    payg period ran 12-01 00:00 - 14:30. Before: "2026-12-01 – 2026-12-01
    (payg)"; now "2026-12-01 (changed 14:30) (payg); since 2026-12-01
    (bun_r)", in Chinese "2026-12-01（14:30 变更）"."""
    store = world(tmp_path, "payg", "2026-12-01", [change("c1", "bun_r", at(12, 1, 14, 30))])
    assert period_cell(store, tmp_path, capsys, "2026-12", "en") == \
        "2026-12-01 (changed 14:30) (payg); since 2026-12-01 (bun_r)"
    assert period_cell(store, tmp_path, capsys, "2026-12", "zh") == \
        "2026-12-01（14:30 变更） (payg)；2026-12-01 起 (bun_r)"


def test_a_payg_period_of_several_days_runs_to_the_day_of_a_change_during_the_day(tmp_path, capsys):
    """payg from 2026-10-01; changed to bun_r on 12-05 at 14:30, back to
    payg on 12-20 at 00:00. December: payg 10-01 .. 12-05 until 14:30
    (before: "2026-10-01 – 2026-12-04", a day short); bun_r 12-05 .. 12-19
    (the change back came at midnight: its last whole day is the day
    before); payg since 12-20."""
    store = world(tmp_path, "payg", "2026-10-01", [change("c1", "bun_r", at(12, 5, 14, 30)),
                                                   change("c2", "payg", at(12, 20, 0))])
    assert period_cell(store, tmp_path, capsys, "2026-12", "en") == (
        "2026-10-01 – 2026-12-05 (changed 14:30) (payg); 2026-12-05 – 2026-12-19 (bun_r); since 2026-12-20 (payg)")
    # November: the payg period alone, no end yet in that month's view of it.
    assert period_cell(store, tmp_path, capsys, "2026-11", "en") == "since 2026-10-01"


def test_a_period_between_two_changes_of_one_day_is_that_day_once(tmp_path, capsys):
    """payg from 10-01 -> bun_r 12-05 09:00 -> payg 12-05 16:45 (both in
    the day): bun_r ran 12-05 09:00 - 16:45, "2026-12-05 (changed 16:45)";
    payg before it "2026-10-01 – 2026-12-05 (changed 09:00)"."""
    store = world(tmp_path, "payg", "2026-10-01", [change("c1", "bun_r", at(12, 5, 9)),
                                                   change("c2", "payg", at(12, 5, 16, 45))])
    assert period_cell(store, tmp_path, capsys, "2026-12", "en") == (
        "2026-10-01 – 2026-12-05 (changed 09:00) (payg); 2026-12-05 (changed 16:45) (bun_r); "
        "since 2026-12-05 (payg)")


def statement(**kw):
    base = dict(account="acme", company="Acme Co.", month="2026-12", period_start=dt.date(2026, 12, 1),
                period_end=dt.date(2026, 12, 31), package="payg", package_name="payg", package_kind="payg",
                package_start=dt.date(2026, 12, 1), package_end=None, first_month=False)
    return Statement(**(base | kw))


def test_period_text_forms():
    """Each form once: a span, one day, a day cut during it (renewal named
    so), open-ended; and a prepaid period that expired before a later
    renewal keeps its own last day, no time."""
    assert period_text(PackagePeriod(dt.date(2026, 10, 1), dt.date(2027, 9, 30), "p"), "en") == \
        "2026-10-01 – 2027-09-30"
    assert period_text(PackagePeriod(dt.date(2026, 12, 1), dt.date(2026, 12, 1), "p"), "en") == "2026-12-01"
    assert period_text(PackagePeriod(dt.date(2026, 12, 1), dt.date(2026, 12, 1), "p", at(12, 1, 14, 30), True),
                       "zh") == "2026-12-01（14:30 续费）"
    assert period_text(PackagePeriod(dt.date(2026, 12, 1), None, "p"), "zh") == "2026-12-01 起"
    # pre_m for a month from 11-10 10:00: last day 12-09 (package_end 12-10); renewed 12-20 10:00.
    s = statement(package="pre_m", package_kind="prepaid", package_start=dt.date(2026, 11, 10),
                  package_end=dt.date(2026, 12, 10), package_changes=[
                      {"at_ms": at(12, 20), "at": "2026-12-20", "from": "pre_m", "to": "pre_m", "renewal": True,
                       "package_last_day": "2027-01-19"}])
    assert [period_text(p, "en") for p in package_periods(s)] == ["2026-11-10 – 2026-12-09", "2026-12-20 – 2027-01-19"]


def test_the_statement_data_gives_a_period_cut_during_a_day_that_day_as_its_last(tmp_path, capsys):
    """The JSON (and gRPC) statement's ``package_changes[].package_last_day``
    follows the same rule (faces 12-02: payg from 10-01 -> bun_r 12-05 10:00
    -> payg 12-10 14:00 -> bun_r 12-20 00:00: bun_r's first period read last
    day 12-09, though it ran until 14:00 on 12-10); payg's second period,
    cut at midnight on 12-20, ends 12-19; the last has no end."""
    import json

    store = world(tmp_path, "payg", "2026-10-01", [change("c1", "bun_r", at(12, 5, 10)),
                                                   change("c2", "payg", at(12, 10, 14)),
                                                   change("c3", "bun_r", at(12, 20, 0))])
    with clock_at(at(12, 31)), pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(tmp_path / "b.json"), "--account", "acme"])
    assert e.value.code == 0, capsys.readouterr().err
    dec = next(s for s in json.loads((tmp_path / "b.json").read_text("utf-8"))["statements"]
               if s["month"] == "2026-12")
    assert [(c["to"], c["package_last_day"]) for c in dec["package_changes"]] == [
        ("bun_r", "2026-12-10"), ("payg", "2026-12-19"), ("bun_r", None)]
