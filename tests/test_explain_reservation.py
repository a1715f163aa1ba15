"""`rating400 explain` and gRPC ExplainCharge name the credit reservation a
committed call settled (held amount, grant, what replaced it), or say
plainly that none was held. Real LMDB ledger, real router, real server."""
from __future__ import annotations

import json

import grpc
import pyarrow as pa
import pytest

from rating400.v1 import explain_pb2, explain_pb2_grpc
from rating_core.accounts import Accounts, open_view
from rating_core.accounts.importer import import_catalog
from rating_core.cli import main
from rating_core.engine import Engine
from rating_core.money import exact_yuan
from rating_core.ledger import Ledger, reservations
from rating_core.router import Router
from rating_core.store import Store
from test_rerate_ledger import CATALOG, at, cdr
from demo_server import Server


def live_router(tmp_path):
    """(store, ledger, router) over CATALOG at 0.12 yuan a minute, its
    accounts imported live."""
    (tmp_path / "v1.yaml").write_text(CATALOG.replace("PRICE", "0.12"))
    store = Store(tmp_path / "store")
    store.compile(tmp_path / "v1.yaml", activate=True)
    ledger = Ledger(tmp_path / "store")
    import_catalog(Accounts(store, ledger), tmp_path / "v1.yaml")
    return store, ledger, Router(open_view(store, ledger.env), ledger)


@pytest.fixture
def committed(tmp_path):
    """c1 authorised with its call id (a reservation), then committed; c2
    committed without any authorisation. Returns (store dir, c1's decision)."""
    store, ledger, router = live_router(tmp_path)
    decision = router.authorize("4001110001", "13812345678", at(2), call_id="c1")
    assert decision.allow and decision.reserved_minor > 0
    assert len(reservations.open_reservations(ledger)) == 1
    engine = Engine.open(tmp_path / "store")
    engine.rate_and_commit(pa.Table.from_pylist([cdr("c1", 2), cdr("c2", 3)]))
    assert reservations.open_reservations(ledger) == []  # the commit released it
    engine.close()
    ledger.close()
    return tmp_path / "store", decision


def explain_cli(capsys, store_dir, call_id, *extra):
    with pytest.raises(SystemExit) as e:
        main(["explain", call_id, "--store", str(store_dir), *extra])
    out = capsys.readouterr()
    assert e.value.code == 0, out.err
    return out.out


def test_explain_reads_in_one_language_with_yuan_in_2_decimals(committed, capsys):
    """Newcomer LOW F2: without --lang, `explain` printed English then
    Chinese, every amount with 4 decimals ("Charged: 7.2000 yuan"). Now
    English alone (as gRPC ExplainCharge's default), and money as people
    read it: c1, 60 minutes at 0.12/min = 7.20 yuan, prepaid. The walk's
    exact run (60 x 60 s at 0.1200 per 60 s = 7.2000) keeps 4 decimals;
    --lang both still gives both."""
    text = explain_cli(capsys, store_dir := committed[0], "c1")
    assert "Call c1" in text and "通话" not in text
    assert "Charged: 7.20 yuan." in text and "Prepaid credit paid 7.20 yuan; 0.00 yuan in arrears" in text
    assert "call charge 7.20 yuan" in text and "7.2000" not in text.split("Rounded once")[1]
    assert "0.1200 yuan per 60 s) = 7.2000 yuan" in text and "exact total 7.2000 yuan" in text
    both = explain_cli(capsys, store_dir, "c1", "--lang", "both")
    assert "Call c1" in both and "通话 c1" in both and "应收：7.20 元" in both


def test_explain_names_the_settled_reservation_or_says_none_was_held(committed, capsys):
    store_dir, d = committed
    text = explain_cli(capsys, store_dir, "c1", "--lang", "en")
    # A 60-minute call at 0.12/min: 7.20 yuan of prepaid credit replaced the hold.
    assert (f"Credit reservation settled: authorised at 2026-11-02T10:00:00.000+08:00 with a grant of "
            f"{d.max_duration_seconds} s; the hold, {exact_yuan(d.reserved_minor)} yuan, stood until its CDR was "
            f"committed; the call's 7.20 yuan replaced it.") in text
    zh = explain_cli(capsys, store_dir, "c1", "--lang", "zh")
    assert f"预留额 {exact_yuan(d.reserved_minor)} 元" in zh and "按实际的 7.20 元 结算" in zh
    none = explain_cli(capsys, store_dir, "c2", "--lang", "en")
    assert "No credit reservation was held for this call" in none and "Credit reservation settled" not in none
    js = json.loads(explain_cli(capsys, store_dir, "c1", "--json"))
    assert (js["reservation_held"], js["reserved_minor"], js["granted_seconds"], js["settled_minor"]) == (
        True, d.reserved_minor, d.max_duration_seconds, 7_2000)


def test_explain_charge_over_grpc_carries_the_reservation(committed, tmp_path):
    store_dir, d = committed
    server = Server(store_dir, tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = explain_pb2_grpc.ExplainServiceStub(channel)
            held = stub.ExplainCharge(explain_pb2.ExplainChargeRequest(call_id="c1"), timeout=60)
            assert held.HasField("reservation")
            r = held.reservation
            assert (r.reserved_minor, r.reserved_seconds, r.granted_seconds, r.authorized_ms, r.settled_minor) == (
                d.reserved_minor, 0, d.max_duration_seconds, at(2), 7_2000)
            assert "Credit reservation settled" in held.text and not r.HasField("held_seconds")
            free = stub.ExplainCharge(explain_pb2.ExplainChargeRequest(call_id="c2"), timeout=60)
            assert not free.HasField("reservation") and "No credit reservation was held" in free.text
    finally:
        server.stop()


def test_explain_after_ended_names_the_grant_and_the_shrunk_hold_apart(tmp_path, capsys):
    """Newcomer N9 C2: a call authorised with a 3600 s grant whose ``ended``
    shrank the hold to the 6 s it can have used was explained as "grant
    6 s". The grant stays the grant; the shrunk hold is named as such."""
    store, ledger, router = live_router(tmp_path)
    d = router.authorize("4001110001", "13812345678", at(2), call_id="e1")
    assert d.allow and d.max_duration_seconds > 6
    assert router.call_event("e1", "4001110001", "ended", at_ms=at(2) + 6_000)
    [(_, held)] = reservations.open_reservations(ledger)
    assert (held.ended, held.granted_seconds, held.held_seconds) == (True, d.max_duration_seconds, 6)
    assert reservations.Reservation.unpack(held.pack()) == held
    short = dict(cdr("e1", 2), end=at(2) + 6_000)
    engine = Engine.open(tmp_path / "store")
    engine.rate_and_commit(pa.Table.from_pylist([short]))
    engine.close()
    ledger.close()
    text = explain_cli(capsys, tmp_path / "store", "e1", "--lang", "en")
    assert (f"authorised at 2026-11-02T10:00:00.000+08:00 with a grant of {d.max_duration_seconds} s; at the "
            f"call's end the hold shrank to {exact_yuan(held.reserved_minor)} yuan, the cost of the 6 s it can have "
            "used, and stood so until its CDR was committed") in text
    assert "grant of 6 s" not in text
    js = json.loads(explain_cli(capsys, tmp_path / "store", "e1", "--json"))
    assert (js["granted_seconds"], js["held_seconds"]) == (d.max_duration_seconds, 6)


def test_a_hold_ended_before_held_seconds_were_recorded_reads_its_grant_as_unknown():
    """A hold ended before 2026-12-01 stored the time used over its grant:
    it reads as held_seconds with the grant not known (0), never as a grant."""
    r = reservations.Reservation("acc", 120, 0, 6, 1, 2, 0, 1, 0, True, 0, 0, (1,), 42, True, 6)
    old = r.pack()[:-8]  # the same hold without the held_seconds trailer
    assert reservations.Reservation.unpack(old) == r._replace(granted_seconds=0)
    running = r._replace(ended=False, held_seconds=None, granted_seconds=3600)
    assert reservations.Reservation.unpack(running.pack()) == running
