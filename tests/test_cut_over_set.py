"""Setting a migrated account's cut-over after its import (`rating400
accounts billing-from ACCOUNT YYYY-MM-01`, gRPC AccountService.SetBillingFrom;
README "Accounts and numbers", the migration's cut-over).

A store imported before the cut-over was stored has ``billing_from_ms = 0``
on every account, so its statements back-bill every month since the
package start (here: hangzhou_tea's minimum shortfalls since 2026-02 as
"unpaid on earlier statements" in October). The operation sets the
cut-over, audited and idempotent; refused for an account opened on this
platform, and for a cut-over after money the ledger holds.
"""
import json
from unittest import mock

import pytest

from rating_core.cli import main

ACCOUNT = "hangzhou_tea"  # prepaid_480_1y since 2026-02-01


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(list(args))
    captured = capsys.readouterr()
    return e.value.code, captured.out, captured.err


def october(capsys, store, account=ACCOUNT):
    out = store.parent / "bill.json"
    code, _, err = run(capsys, "bill", "--ledger", "--store", str(store), "--account", account,
                       "--month", "2026-10", "--out", str(out))
    assert code == 0, err
    (s,) = json.loads(out.read_text("utf-8"))["statements"]
    return s


@pytest.fixture
def old_import(demo_made, tmp_path):
    """A demo store imported the way it was before the cut-over was
    stored: every account's ``billing_from_ms`` is 0."""
    from demo_server import copy_store

    from rating_core.accounts import Accounts, importer

    d = tmp_path / "demo"
    copy_store(demo_made[0], d)
    ops = Accounts.open(d / "store")
    try:
        with mock.patch.object(importer, "month_start", lambda ms: 0):  # the import's default cut-over: none
            assert importer.import_catalog(ops, d / "catalog" / "catalog.yaml")["billing_from_ms"] == 0
    finally:
        ops.ledger.close()
    return d / "store"


def test_set_cut_over_stops_back_billing(old_import, capsys):
    store = old_import
    before = october(capsys, store)
    assert before["earlier_unpaid_minor"] == 2_800_000  # 280.00 yuan of months the old platform billed

    args = ("accounts", "billing-from", ACCOUNT, "2026-10-01", "--store", str(store), "--request-id", "cut-1")
    code, printed, err = run(capsys, *args)
    assert code == 0, err
    res = json.loads(printed)
    assert res["operation"] == "set_billing_from" and not res["replayed"]
    assert res["account"]["billing_from_local"] == "2026-10-01T00:00:00.000+08:00"
    assert res["detail"]["previous_billing_from_ms"] == 0

    after = october(capsys, store)
    assert after["earlier_unpaid_minor"] == 0
    assert after["amount_due_minor"] == before["amount_due_minor"]  # October's own bill is unchanged

    # Audited: one event with the record before and after.
    code, printed, err = run(capsys, "accounts", "events", ACCOUNT, "--store", str(store))
    assert code == 0, err
    (ev,) = [e for e in json.loads(printed) if e["operation"] == "set_billing_from"]
    assert ev["before"]["billing_from_ms"] == 0 and ev["after"]["billing_from_ms"] == res["detail"]["billing_from_ms"]

    # Idempotent: the same request replays; another request for the same month changes nothing.
    code, printed, _ = run(capsys, *args)
    assert code == 0 and json.loads(printed)["replayed"] and json.loads(printed)["seq"] == res["seq"]
    code, printed, _ = run(capsys, *args[:-1], "cut-2")
    assert code == 0 and json.loads(printed)["detail"]["unchanged"] and json.loads(printed)["seq"] == 0
    code, printed, _ = run(capsys, "accounts", "events", ACCOUNT, "--store", str(store))
    assert sum(e["operation"] == "set_billing_from" for e in json.loads(printed)) == 1
    assert october(capsys, store) == after


@pytest.mark.parametrize("month, why", [("2026-10-15", "not the 1st of a month"), ("2026-13-01", "not a date")])
def test_cut_over_is_a_month_first_day(old_import, capsys, month, why):
    code, _, err = run(capsys, "accounts", "billing-from", ACCOUNT, month, "--store", str(old_import))
    assert code == 2 and why in err


def test_refused_after_money_the_ledger_holds(old_import, capsys):
    """A payment dated 2026-09-10 is on a statement this ledger issued:
    a cut-over of October would hide it, so it is refused naming September."""
    store = old_import
    code, _, err = run(capsys, "accounts", "top-up", "yuehai_logistics", "50", "--at", "2026-09-10T10:00:00",
                       "--store", str(store))
    assert code == 0, err
    code, _, err = run(capsys, "accounts", "billing-from", "yuehai_logistics", "2026-10-01", "--store", str(store))
    assert code == 1 and "refused: ledger_holds_earlier" in err and "2026-09-01 or earlier" in err
    code, _, err = run(capsys, "accounts", "billing-from", "yuehai_logistics", "2026-09-01", "--store", str(store))
    assert code == 0, err


def test_refused_for_an_account_opened_here(old_import, capsys):
    """An account opened on this platform was billed here from its package
    start: no cut-over writes those months off (gRPC too)."""
    import grpc

    from demo_server import Server
    from rating400.v1 import accounts_pb2, accounts_pb2_grpc

    store = old_import
    code, _, err = run(capsys, "accounts", "open", "new_co", "--company", "新公司有限公司", "--store", str(store))
    assert code == 0, err
    code, _, err = run(capsys, "accounts", "billing-from", "new_co", "2026-10-01", "--store", str(store))
    assert code == 1 and "refused: not_migrated" in err

    server = Server(store, store.parent, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = accounts_pb2_grpc.AccountServiceStub(channel)
            meta = accounts_pb2.OperationMeta
            with pytest.raises(grpc.RpcError) as e:
                stub.SetBillingFrom(accounts_pb2.SetBillingFromRequest(
                    meta=meta(request_id="g1"), account="new_co", billing_from_ms=1790784000000), timeout=30)
            assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "not_migrated" in e.value.details()
            with pytest.raises(grpc.RpcError) as e:
                stub.SetBillingFrom(accounts_pb2.SetBillingFromRequest(
                    meta=meta(request_id="g2"), account=ACCOUNT, billing_from_ms=1790784000001), timeout=30)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "billing_from_ms" in e.value.details()
            res = stub.SetBillingFrom(accounts_pb2.SetBillingFromRequest(
                meta=meta(request_id="g3"), account=ACCOUNT, billing_from_ms=1790784000000), timeout=30)
            assert res.account.billing_from_ms == 1790784000000 and not res.replayed
            # Stored now: moved later past October, ended and billed, it is refused (newcomer N13 F2).
            with pytest.raises(grpc.RpcError) as e:
                stub.SetBillingFrom(accounts_pb2.SetBillingFromRequest(
                    meta=meta(request_id="g4"), account=ACCOUNT, billing_from_ms=1793462400000), timeout=30)
            assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert dict(e.value.trailing_metadata())["rating400-reason"] == "would_write_off"
            assert "would write off 2026-10," in e.value.details()
    finally:
        server.stop()


@pytest.fixture
def imported_november(demo_made, tmp_path):
    """A demo store (no call committed) imported with `--billing-from 2026-11-01`."""
    from demo_server import copy_store

    d = tmp_path / "demo"
    copy_store(demo_made[0], d)
    return d / "store"


@pytest.mark.parametrize("op, words", [
    (("pay", ACCOUNT, "10"), "a bill payment"),
    (("top-up", ACCOUNT, "600"), "a top-up"),
    (("adjust", ACCOUNT, "5", "--reason", "goodwill"), "a credit adjustment"),
    (("refund", ACCOUNT, "1", "--reason", "overpaid"), "a refund"),
])
def test_refused_after_any_money_the_statements_count(imported_november, demo_made, capsys, op, words):
    """Breaker N11 F1: `billing-from` checked top-ups, adjustments and
    refunds but not a bill payment (`pay`), which the statements count
    (``MONEY_KINDS``): a cut-over moved to December past a payment of
    2026-11-05 was accepted, and November was billed anyway (40.00 minimum
    shortfall, 30.00 due). Every money operation now holds the cut-over back."""
    store = imported_november
    code, _, err = run(capsys, "accounts", "import", str(demo_made[0] / "catalog" / "catalog.yaml"),
                       "--billing-from", "2026-11-01", "--store", str(store))
    assert code == 0, err
    code, _, err = run(capsys, "accounts", *op, "--at", "2026-11-05T10:00:00", "--store", str(store))
    assert code == 0, err
    code, _, err = run(capsys, "accounts", "billing-from", ACCOUNT, "2026-12-01", "--store", str(store))
    assert code == 1 and "refused: ledger_holds_earlier" in err and words in err and "2026-11-01 or earlier" in err
    out = store.parent / "hz.json"
    code, _, err = run(capsys, "bill", "--ledger", "--store", str(store), "--account", ACCOUNT, "--out", str(out))
    assert code == 0, err
    assert "2026-11" in {s["month"] for s in json.loads(out.read_text("utf-8"))["statements"]}
    code, printed, _ = run(capsys, "accounts", "show", ACCOUNT, "--store", str(store))
    assert json.loads(printed)["account"]["billing_from_local"].startswith("2026-11-01")

    from rating_core.billing.events import LEDGER_MONEY_OPERATIONS, MONEY_KINDS

    assert set(LEDGER_MONEY_OPERATIONS.values()) <= set(MONEY_KINDS)  # the one list, all of them statement money


def _ms(day: str) -> int:
    import datetime as dt

    from rating_core import layout

    return int(dt.datetime.fromisoformat(day).replace(tzinfo=layout.LOCAL_TZ).timestamp() * 1000)


def test_a_cut_over_years_ahead_is_bad_input(imported_november, demo_made, capsys, clock):
    """Breaker N11 F10 / newcomer N11 F7: `import --billing-from 2062-11-01`
    (2026 mistyped) and `billing-from X 2199-12-01` were accepted: no
    statement for any month until then, every top-up and payment refused
    before_cut_over. A cut-over is at most the month after the current one
    (a platform imports in late November for 1 December): later is bad
    input naming --billing-from / billing_from_ms and the cut-over, exit 2,
    nothing stored; gRPC INVALID_ARGUMENT."""
    import grpc

    from demo_server import Server
    from rating400.v1 import accounts_pb2, accounts_pb2_grpc

    clock(_ms("2026-11-20T16:00:00"))
    store = imported_november
    catalog = str(demo_made[0] / "catalog" / "catalog.yaml")
    for month in ("2062-11-01", "2027-01-01"):
        code, _, err = run(capsys, "accounts", "import", catalog, "--billing-from", month, "--store", str(store))
        assert code == 2 and "--billing-from" in err and f"cut-over {month} is after 2026-12-01" in err, err
    code, printed, err = run(capsys, "accounts", "import", catalog, "--billing-from", "2026-12-01",
                             "--store", str(store))
    assert code == 0 and json.loads(printed)["billing_from_local"].startswith("2026-12-01"), err
    code, _, err = run(capsys, "accounts", "billing-from", ACCOUNT, "2199-12-01", "--store", str(store))
    assert code == 2 and "cut-over 2199-12-01 is after 2026-12-01" in err, err

    from rating_core.accounts import Accounts
    from rating_core.errors import InvalidInput

    ops = Accounts.open(store)
    try:  # the operation itself (gRPC's path), not only the CLI's parser
        with pytest.raises(InvalidInput) as e:
            ops.set_billing_from("late-1", ACCOUNT, _ms("2027-01-01T00:00:00"))
        assert e.value.field == "billing_from_ms" and "cut-over 2027-01-01" in e.value.message
        assert ops.get_account(ACCOUNT)["account"]["billing_from_ms"] == _ms("2026-12-01T00:00:00")
    finally:
        ops.ledger.close()

    server = Server(store, store.parent, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = accounts_pb2_grpc.AccountServiceStub(channel)
            with pytest.raises(grpc.RpcError) as e:
                stub.SetBillingFrom(accounts_pb2.SetBillingFromRequest(
                    meta=accounts_pb2.OperationMeta(request_id="late-2"), account=ACCOUNT,
                    billing_from_ms=_ms("2199-12-01T00:00:00")), timeout=30)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "billing_from_ms" in e.value.details() and "cut-over 2199-12-01" in e.value.details()
    finally:
        server.stop()


def test_money_before_next_month_s_cut_over_says_where_to_record_it(imported_november, demo_made, capsys, clock):
    """Breaker N12 F5: imported on 11-20 with next month's cut-over, a
    top-up of today was refused with 'date it on or after 2026-12-01',
    which no operation may be (at most 10 minutes ahead). The refusal says
    the old platform bills the account until then."""
    clock(_ms("2026-11-20T16:00:00"))
    store = str(imported_november)
    code, _, err = run(capsys, "accounts", "import", str(demo_made[0] / "catalog" / "catalog.yaml"),
                       "--billing-from", "2026-12-01", "--store", store)
    assert code == 0, err
    code, _, err = run(capsys, "accounts", "top-up", ACCOUNT, "600", "--store", store)
    assert code == 1 and "refused: before_cut_over: " in err, err
    assert ("the old platform bills it until 2026-12-01: record this money on its books, or here from "
            "2026-12-01 on") in err, err


def test_a_bill_run_with_no_statement_says_why(demo_made, tmp_path, capsys):
    """Newcomer N12 F4: with next month's cut-over, `bill --ledger` printed an
    empty table and no word."""
    from demo_server import copy_store

    d = tmp_path / "demo"
    copy_store(demo_made[0], d)
    with mock.patch("rating_core.accounts.operations.now_ms", lambda: _ms("2026-11-20T16:00:00")):
        code, _, err = run(capsys, "accounts", "import", str(d / "catalog" / "catalog.yaml"),
                           "--billing-from", "2026-12-01", "--store", str(d / "store"))
    assert code == 0, err
    code, printed, err = run(capsys, "bill", "--ledger", "--store", str(d / "store"), "--out", str(tmp_path / "b.csv"),
                             "--month", "2026-11")
    assert code == 0, err
    assert "no statement: no account of this run is billed in its months" in printed, printed


def test_a_stored_cut_over_never_moves_later_past_ended_months(imported_november, demo_made, capsys, clock):
    """Newcomer N13 F2: imported with `--billing-from 2026-10-01`, `billing-from hangzhou_tea 2027-01-01`
    was taken (rc 0, no warning): October and November, ended and billed (40.00 minimum shortfall
    each), vanished from every statement and the refund netting that kept 80.00 was gone. A stored
    cut-over moves later only over months not ended yet (refused would_write_off, the months and what
    they charged named); never before the package start (before_package_start); earlier it is taken,
    with a warning naming the months now billed here."""
    clock(_ms("2026-12-10T10:00:00"))
    store = str(imported_november)
    code, _, err = run(capsys, "accounts", "import", str(demo_made[0] / "catalog" / "catalog.yaml"),
                       "--billing-from", "2026-10-01", "--store", store)
    assert code == 0, err
    october_on = _ms("2026-10-01T00:00:00")
    for month, span, charged in (("2027-01-01", "2026-10 .. 2026-11", "80.00"),
                                 ("2026-12-01", "2026-10 .. 2026-11", "80.00"), ("2026-11-01", "2026-10", "40.00")):
        code, _, err = run(capsys, "accounts", "billing-from", ACCOUNT, month, "--store", store)
        assert code == 1 and err.startswith("refused: would_write_off: "), err
        assert (f"from 2026-10-01 to {month} would write off {span}, month(s) that have ended and that this ledger "
                f"billed ({charged} yuan charged") in err, err
    code, printed, _ = run(capsys, "accounts", "show", ACCOUNT, "--store", store)
    assert json.loads(printed)["account"]["billing_from_ms"] == october_on
    code, _, err = run(capsys, "accounts", "refund", ACCOUNT, "450", "--reason", "x", "--store", store)
    assert code == 1 and "leave 80.00 yuan unpaid" in err, err  # the netting still holds

    # Before the package start (2026-02-01): refused, naming it; the package's month is the earliest.
    code, _, err = run(capsys, "accounts", "billing-from", ACCOUNT, "2026-01-01", "--store", store)
    assert code == 1 and err.startswith("refused: before_package_start: ") and "(2026-02-01)" in err, err
    assert "the earliest cut-over is 2026-02-01" in err
    # Earlier, from the package's month on: taken, saying which ended months are billed here now.
    code, printed, err = run(capsys, "accounts", "billing-from", ACCOUNT, "2026-08-01", "--store", store)
    assert code == 0, err
    assert ("warning: billed here now: 2026-08 .. 2026-09 of account 'hangzhou_tea' (rental, monthly minimum, "
            "fees: bill --ledger); make sure the old platform did not bill them too") in err, err
    assert "a mistake is undone with `accounts billing-from hangzhou_tea 2026-10-01` before any money" in err
    # ... and back to October undoes it (newcomer N14 F7: a typo could never be undone): no money
    # of the account was recorded since, so nothing counted on August and September.
    code, printed, err = run(capsys, "accounts", "billing-from", ACCOUNT, "2026-10-01", "--store", store)
    assert code == 0 and json.loads(printed)["account"]["billing_from_ms"] == _ms("2026-10-01T00:00:00"), err
    # Once money is recorded after a move earlier, the months it pulled in stand: refused.
    code, _, err = run(capsys, "accounts", "billing-from", ACCOUNT, "2026-08-01", "--store", store)
    assert code == 0, err
    code, _, err = run(capsys, "accounts", "pay", ACCOUNT, "10", "--store", store)
    assert code == 0, err
    code, _, err = run(capsys, "accounts", "billing-from", ACCOUNT, "2026-10-01", "--store", store)
    assert code == 1 and "would write off 2026-08 .. 2026-09," in err, err


def test_a_stored_cut_over_moves_later_over_months_not_ended(imported_november, demo_made, capsys, clock):
    """Imported on 11-20 with the month of the import as its cut-over, a platform that cuts over on
    1 December instead moves it later: November has not ended, nothing of it is billed yet. Back to
    November while it runs is taken too, with no warning (no ended month comes back into billing)."""
    clock(_ms("2026-11-20T16:00:00"))
    store = str(imported_november)
    code, _, err = run(capsys, "accounts", "import", str(demo_made[0] / "catalog" / "catalog.yaml"),
                       "--store", store)
    assert code == 0, err
    for month in ("2026-12-01", "2026-11-01"):
        code, printed, err = run(capsys, "accounts", "billing-from", ACCOUNT, month, "--store", store)
        assert code == 0 and "warning" not in err, err
        assert json.loads(printed)["account"]["billing_from_ms"] == _ms(f"{month}T00:00:00")


def test_the_ledger_holds_earlier_hint_names_a_cut_over_that_is_taken(imported_november, demo_made, capsys, clock):
    """Newcomer N14 F8: stored 2026-10-01 and a bill payment on 2026-12-05, `billing-from ... 2027-01-01`
    said "set it to 2026-12-01 or earlier", and 2026-12-01 was then refused would_write_off. The hint
    names a cut-over that is accepted."""
    clock(_ms("2026-12-10T10:00:00"))
    store = str(imported_november)
    code, _, err = run(capsys, "accounts", "import", str(demo_made[0] / "catalog" / "catalog.yaml"),
                       "--billing-from", "2026-10-01", "--store", store)
    assert code == 0, err
    code, _, err = run(capsys, "accounts", "pay", ACCOUNT, "10", "--at", "2026-12-05T10:00:00", "--store", store)
    assert code == 0, err
    code, _, err = run(capsys, "accounts", "billing-from", ACCOUNT, "2027-01-01", "--store", store)
    assert code == 1 and err.startswith("refused: ledger_holds_earlier: ") and "set it to 2026-10-01 or earlier" in err
