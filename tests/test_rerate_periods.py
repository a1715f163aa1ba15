"""Rerating across package periods (README "Rerating", "Package periods"):
a call of an ended bundle period is replayed on that period's own allowance,
so a rerating under the same catalog version changes nothing, whatever
package the account has moved to since; prepaid and pay-as-you-go accounts
across a change, a renewal and a suspension rerate to no change as well.

The store, ledger and customer layer of ``test_late_cdrs`` (1 yuan = 10000
minor units): ``bun_a`` (100 min included, overage 0.20/min) -> ``bun_b``
(300 min, 0.15) on 11-15. n1 (11-10, 60 min) in the bundle, n2 (11-12,
60 min) 40 in + 20 at overage = 4.00, n3 (11-20) on bun_b.
"""
from __future__ import annotations

import json

import grpc
import pytest

from rating_core.cli import main
from rating_core.ledger import Ledger
from rating_core.rerate import rerate
from test_late_cdrs import CATALOG, YUAN, at, cdr, change, engine_rows, renew, setup_store, suspend


def committed(store, ops):
    """The breaker's sequence: n1, n2 on time on bun_a, the change, n3."""
    rated, _ = engine_rows(store, [cdr("n1", at(11, 10), 60), cdr("n2", at(11, 12), 60)])
    ops.change_package("chg", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    more, _ = engine_rows(store, [cdr("n3", at(11, 20), 60)])
    return {r["call_id"]: r for r in rated + more}


def rerate_cli(store, version, capsys, tmp_path, name):
    out = tmp_path / name
    with pytest.raises(SystemExit) as e:
        main(["rerate", "--store", str(store), "--version", str(version), "--from", "2026-11-01",
              "--to", "2026-11-30", "--out", str(out)])
    text, err = capsys.readouterr()
    assert e.value.code == 0, err
    return text, out.read_text("utf-8").splitlines()


def balance(store):
    ledger = Ledger(store)
    try:
        return ledger.stored("acme").credit_minor
    finally:
        ledger.close()


def test_the_breakers_change_of_bundle_rerates_to_no_change_cli(tmp_path, capsys):
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    by = committed(store, ops)
    assert [(by[c]["package"], by[c]["bundle_seconds_consumed"], by[c]["charge_minor"]) for c in ("n1", "n2", "n3")] == [
        ("bun_a", 3600, 0), ("bun_a", 2400, 4 * YUAN), ("bun_b", 3600, 0)]
    ledger.close()
    before = balance(store)
    for i in range(2):  # and a repeated run: nothing either
        text, rows = rerate_cli(store, 1, capsys, tmp_path, f"adj{i}.csv")
        assert rows[1:] == [], text
    assert balance(store) == before
    r = rerate(store, 1, "2026-11-01", "2026-11-30", dry_run=True)
    assert (r.seen, r.unchanged, len(r.adjustments), r.not_rerated) == (3, 3, 0, 0)


def test_the_breakers_change_of_bundle_rerates_to_no_change_grpc(tmp_path):
    from rating400.v1 import rerate_pb2, rerate_pb2_grpc
    from demo_server import Server

    store, ops, ledger = setup_store(tmp_path, "bun_a")
    committed(store, ops)
    ledger.close()
    before = balance(store)
    server = Server(store, tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = rerate_pb2_grpc.RerateServiceStub(channel)
            for _ in range(2):
                resp = stub.Rerate(rerate_pb2.RerateRequest(catalog_version=1, from_day="2026-11-01",
                                                            to_day="2026-11-30"), timeout=60)
                assert list(resp.adjustments) == [] and resp.delta_total_minor == 0
    finally:
        server.stop()
    assert balance(store) == before


def test_a_price_change_reaches_the_ended_period_on_its_own_allowance(tmp_path, capsys):
    """Version 2 raises bun_a's overage to 0.30: n2's 20 overage minutes
    cost 6.00 (+2.00), n1 stays in the bundle; a second run writes nothing;
    November's statement carries the rerating the ledger booked."""
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    committed(store, ops)
    ledger.close()
    before = balance(store)
    v2 = tmp_path / "v2.yaml"
    v2.write_text(CATALOG.replace("PACKAGE", "bun_a").replace("overage_price: 0.20", "overage_price: 0.30"))
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(v2), "--store", str(store)])
    assert e.value.code == 0, capsys.readouterr().err
    r = rerate(store, 2, "2026-11-01", "2026-11-30", now_ms=at(11, 29))
    assert [(a.call_id, a.old_charge_minor, a.new_charge_minor) for a in r.adjustments] == [
        ("n2", 4 * YUAN, 6 * YUAN)]
    assert r.ledger_change_minor == {"acme": -2 * YUAN} and balance(store) == before - 2 * YUAN
    again = rerate(store, 2, "2026-11-01", "2026-11-30", now_ms=at(11, 29, 11))
    assert (again.adjustments, again.skipped) == ([], 1) and balance(store) == before - 2 * YUAN
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(tmp_path / "bills.parquet"), "--account",
              "acme", "--month", "2026-11", "--statements", str(tmp_path / "st"), "--format", "json"])
    assert e.value.code == 0, capsys.readouterr().err
    nov = json.loads((tmp_path / "st" / "acme-2026-11.json").read_text("utf-8"))["statements"][0]
    assert nov["rerating_total_minor"] == 2 * YUAN and len(nov["rerating"]) == 1


def test_a_late_call_of_the_ended_period_gets_the_allowance_it_left(tmp_path):
    """A late 11-12 call of bun_a committed after the change draws the 40
    minutes bun_a's period had left and pays 20 at overage (4.00), as on
    time (README "Late CDRs"); rerating November replays bun_a's period in
    order and agrees: nothing moves."""
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("n1", at(11, 10), 60)])
    ops.change_package("chg", "acme", "bun_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    (late,), _ = engine_rows(store, [cdr("late", at(11, 12), 60)])
    assert (late["bundle_seconds_consumed"], late["charge_minor"]) == (2400, 4 * YUAN)
    ledger.close()
    before = balance(store)
    r = rerate(store, 1, "2026-11-01", "2026-11-30", now_ms=at(11, 29))
    assert r.adjustments == [] and balance(store) == before


@pytest.mark.parametrize("operation", [change, renew, suspend])
def test_prepaid_across_a_change_renewal_or_suspension_rerates_to_no_change(tmp_path, operation):
    store, ops, ledger = setup_store(tmp_path, "pre_a")
    engine_rows(store, [cdr("a", at(11, 10))])
    operation(ops)
    engine_rows(store, [cdr("late", at(11, 12)), cdr("b", at(11, 21))])
    ledger.close()
    before = balance(store)
    r = rerate(store, 1, "2026-10-01", "2026-11-30", now_ms=at(11, 29))
    assert r.adjustments == [] and balance(store) == before


def test_payg_across_a_change_rerates_to_no_change(tmp_path, monkeypatch):
    """bun_a -> payg_a on 11-15; a late 11-12 call finds bun_a's allowance
    used up (6.00 at overage) in the rerating's replay too."""
    import test_late_cdrs

    monkeypatch.setattr(test_late_cdrs, "CATALOG", CATALOG.replace(
        "packages:\n", "packages:\n  payg_a: {kind: payg, rates: [{rate: cheap}]}\n"))
    store, ops, ledger = setup_store(tmp_path, "bun_a")
    engine_rows(store, [cdr("a", at(11, 10), 150)])
    ops.change_package("chg", "acme", "payg_a", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    engine_rows(store, [cdr("late", at(11, 12), 30), cdr("b", at(11, 21))])
    ledger.close()
    before = balance(store)
    r = rerate(store, 1, "2026-11-01", "2026-11-30", now_ms=at(11, 29))
    assert r.adjustments == [] and balance(store) == before


def test_a_late_payg_call_of_a_prepaid_now_account_is_corrected_on_the_bill_not_the_credit(tmp_path, monkeypatch,
                                                                                          capsys):
    """payg_a (0.10/min) -> pre_a on 11-15; a late 11-10 payg call's charge
    (10.00) is billed as due and took none of the prepaid credit at commit.
    Version 2 prices payg_a at 0.09: the rerating lowers the charge by 1.00
    and moves no credit (had it given 1.00 back to the credit, a customer
    could be refunded money never taken from it: the breaker's 63.40)."""
    import test_late_cdrs

    payg = "packages:\n  payg_a: {kind: payg, rates: [{rate: cheap}]}\n"
    monkeypatch.setattr(test_late_cdrs, "CATALOG", CATALOG.replace("packages:\n", payg))
    store, ops, ledger = setup_store(tmp_path, "payg_a")
    ops.change_package("chg", "acme", "pre_a", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
    (late,), _ = engine_rows(store, [cdr("late", at(11, 10))])
    assert (late["package"], late["charge_minor"]) == ("payg_a", 10 * YUAN)
    ledger.close()
    before = balance(store)
    v2 = tmp_path / "v2.yaml"
    v2.write_text(CATALOG.replace("packages:\n", payg.replace("cheap", "payg_rate")).replace("PACKAGE", "payg_a")
                  .replace("rates:\n", "rates:\n  payg_rate: {tiers: [{price: 0.09}]}\n", 1))
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(v2), "--store", str(store)])
    assert e.value.code == 0, capsys.readouterr().err
    r = rerate(store, 2, "2026-11-01", "2026-11-30", now_ms=at(11, 29))
    assert [(a.call_id, a.new_charge_minor, a.ledger_delta_minor) for a in r.adjustments] == [
        ("late", 9 * YUAN, 0)]
    assert balance(store) == before
    assert rerate(store, 2, "2026-11-01", "2026-11-30", now_ms=at(11, 29, 11)).adjustments == []
