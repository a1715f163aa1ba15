"""`rating400 accounts list` / ``Accounts.list_accounts``: the accounts in id
order with status, suspend reason, package, package kind and credit; filters
by status and package; pages by ``--after`` / ``--limit``; bad input named
as typed, exit 2, no traceback (newcomer 2026-12-02 #14: no way to list the
accounts or see which the sweep suspended)."""
from __future__ import annotations

import json

import pytest

from rating_core.accounts import Accounts
from rating_core.accounts.importer import import_catalog
from rating_core.cli import main
from rating_core.errors import InvalidInput
from rating_core.store import Ledger
from stores import compiled

CATALOG = """
name: list-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  pre_3y: {kind: prepaid, fee: 3000, period_months: 36, rates: [{rate: std}]}
  payg: {kind: payg, rates: [{rate: std}]}
customer_rules: {top_up_min: 600, top_up_min_months: 3, restore_months: 3, reclaim_months: 6, cooling_days: 90}
accounts:
  legacy:
    name: 旧平台迁移有限公司
    package: pre_3y
    package_start: 2026-01-01
    opening_credit: 100
"""


@pytest.fixture
def store(tmp_path):
    """legacy (imported, prepaid, 100.00 opening credit), acme (payg, 50.00
    topped up, then suspended by hand), bravo (opened, no package)."""
    st = compiled(tmp_path, CATALOG)
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(st, ledger)
    assert import_catalog(ops, tmp_path / "catalog.yaml")["imported"] == ["legacy"]
    for account, company in (("acme", "深圳艾克美贸易有限公司"), ("bravo", "北京布拉沃科技有限公司")):
        ops.open_account(f"open-{account}", account, company)
    ops.submit_documents("doc", "acme", [("business_licence", "BL-1"), ("legal_representative_id", "ID-1")])
    ops.review_realname("rev", "acme", True)
    ops.subscribe("sub", "acme", "payg")
    ops.top_up("top", "acme", 500_000)  # 50.00 yuan
    ops.account_transition("sus", "acme", "suspend", "customer request")
    yield ops, tmp_path / "store"
    ledger.close()


def cli(capsys, *args) -> tuple[int, object, str]:
    """(exit code, JSON printed or None, stderr) of `rating400 accounts list ARGS`."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["accounts", "list", *args])
    out = capsys.readouterr()
    return e.value.code, (json.loads(out.out) if e.value.code == 0 else None), out.err


def test_the_operator_sees_every_account_with_its_status_package_and_credit(store, capsys):
    ops, store_dir = store
    code, rows, err = cli(capsys, "--store", str(store_dir))
    assert code == 0 and err == ""
    assert [r["id"] for r in rows] == ["acme", "bravo", "legacy"]  # id order
    acme, bravo, legacy = rows
    assert (acme["status"], acme["suspend_reason"], acme["package"], acme["package_kind"]) == \
        ("suspended", "customer request", "payg", "payg")
    assert acme["suspended_ms"] > 0 and acme["suspended_local"].endswith("+08:00")
    assert (acme["credit_minor"], acme["credit_yuan"]) == (500_000, "50.00")  # the 50.00 top-up
    assert acme["company"] == "深圳艾克美贸易有限公司" and acme["realname"] == "verified"
    # No package: no credit to read, null (not 0), as `balance` refuses it.
    assert (bravo["status"], bravo["package"], bravo["package_kind"], bravo["credit_minor"], bravo["credit_yuan"]) == \
        ("active", "", None, None, None)
    # The import's opening credit: 100.00 yuan; a prepaid account has no credit line.
    assert (legacy["package"], legacy["package_kind"], legacy["credit_minor"], legacy["available_minor"]) == \
        ("pre_3y", "prepaid", 1_000_000, 1_000_000)
    assert legacy["period_end_local"] == "2029-01-01T00:00:00.000+08:00"  # 36 months from 2026-01-01
    # `balance` names the same figures.
    assert ops.balance("acme")["credit_minor"] == acme["credit_minor"]
    assert ops.balance("legacy")["available_minor"] == legacy["available_minor"]


def test_filters_by_status_and_package(store, capsys):
    _ops, store_dir = store
    s = ("--store", str(store_dir))
    assert [r["id"] for r in cli(capsys, *s, "--status", "suspended")[1]] == ["acme"]
    assert [r["id"] for r in cli(capsys, *s, "--status", "active")[1]] == ["bravo", "legacy"]
    # Repeated and comma-separated read the same.
    both = cli(capsys, *s, "--status", "suspended,frozen")[1]
    assert both == cli(capsys, *s, "--status", "suspended", "--status", "frozen")[1]
    assert [r["id"] for r in both] == ["acme"]
    assert cli(capsys, *s, "--status", "closed")[1] == []
    assert [r["id"] for r in cli(capsys, *s, "--package", "pre_3y")[1]] == ["legacy"]
    assert cli(capsys, *s, "--package", "payg", "--status", "active")[1] == []


def test_pages_after_the_last_id_and_says_when_more_follow(store, capsys):
    _ops, store_dir = store
    s = ("--store", str(store_dir))
    code, page, err = cli(capsys, *s, "--limit", "2")
    assert code == 0 and [r["id"] for r in page] == ["acme", "bravo"]
    assert "the next page is --after bravo" in err
    code, page, err = cli(capsys, *s, "--limit", "2", "--after", "bravo")
    assert [r["id"] for r in page] == ["legacy"] and err == ""  # the last page: no note
    # A full last page: nothing follows, so no note either.
    assert cli(capsys, *s, "--limit", "3")[2] == ""
    # An id no account has lists the ones after it in id order.
    assert [r["id"] for r in cli(capsys, *s, "--after", "b")[1]] == ["bravo", "legacy"]
    assert [r["id"] for r in cli(capsys, *s, "--after", "acme0")[1]] == ["bravo", "legacy"]
    assert cli(capsys, *s, "--after", "zzz")[1] == []


@pytest.mark.parametrize("args, option, words", [
    (("--status", "bogus"), "--status", "'bogus': not an account status (one of active, suspended, frozen, closed)"),
    (("--status", "active,Suspended"), "--status", "'Suspended': not an account status"),
    (("--package", "gold"), "--package", "unknown package 'gold' (catalog has: pre_3y, payg)"),
    (("--limit", "0"), "'--limit'", "0 is not in the range 1<=x<=1000"),
    (("--limit", "1001"), "'--limit'", "1001 is not in the range"),
    (("--limit", "99999999999999999999999"), "'--limit'", "is not in the range"),
    (("--limit", "٣"), "'--limit'", "a whole number in ASCII digits (0-9)"),
    (("--limit", "１０"), "'--limit'", "a whole number in ASCII digits (0-9)"),
    (("--after", "a\x00b"), "--after", "after"),
    (("--after", "x" * 300), "--after", "longer than any account id"),
])
def test_bad_input_names_the_option(store, capsys, args, option, words):
    _ops, store_dir = store
    code, _rows, err = cli(capsys, "--store", str(store_dir), *args)
    assert code == 2, err
    assert f"Invalid value for {option}" in err and words in err, err
    assert "Traceback" not in err


def test_the_api_checks_its_arguments(store):
    ops, _dir = store
    assert [r["id"] for r in ops.list_accounts(["suspended", "frozen"])] == ["acme"]
    assert [r["id"] for r in ops.list_accounts("active", limit=1)] == ["bravo"]
    for kwargs, field in (({"status": "gone"}, "status"), ({"status": [3]}, "status"), ({"limit": 0}, "limit"),
                          ({"limit": True}, "limit"), ({"limit": 1001}, "limit"), ({"package": "x"}, "package"),
                          ({"after": 5}, "after")):
        with pytest.raises(InvalidInput) as e:
            ops.list_accounts(**kwargs)
        assert e.value.field == field


def test_a_store_whose_accounts_are_the_catalogs_says_how_to_make_them_live(tmp_path, capsys):
    compiled(tmp_path, CATALOG)
    code, rows, err = cli(capsys, "--store", str(tmp_path / "store"))
    assert code == 0 and rows == [] and "accounts import" in err


def test_an_account_the_sweep_suspended_is_listed_with_its_reason(tmp_path, capsys):
    """The finding's case: the server's sweep suspends a prepaid account
    with no credit (``arrears``); the operator finds it by status, not in a
    log line."""
    dry = CATALOG + """  dry:
    name: 干涸贸易有限公司
    package: pre_3y
    package_start: 2026-01-01
    opening_credit: 0
"""
    st = compiled(tmp_path, dry)
    ledger = Ledger(tmp_path / "store")
    try:
        ops = Accounts(st, ledger)
        assert import_catalog(ops, tmp_path / "catalog.yaml")["imported"] == ["legacy", "dry"]
        s = ("--store", str(tmp_path / "store"))
        assert cli(capsys, *s, "--status", "suspended")[1] == []
        assert [(r["account"]["id"], r["operation"]) for r in ops.sweep()] == [("dry", "suspend_account")]
        rows = cli(capsys, *s, "--status", "suspended,frozen")[1]
        assert [(r["id"], r["status"], r["suspend_reason"], r["credit_minor"], r["credit_yuan"]) for r in rows] == \
            [("dry", "suspended", "arrears", 0, "0.00")]
        assert [r["id"] for r in cli(capsys, *s, "--status", "active")[1]] == ["legacy"]
    finally:
        ledger.close()


def test_grpc_list_accounts_on_a_loopback_server(store, tmp_path):
    """AccountService.ListAccounts: the CLI's rows, paged by after/limit,
    INVALID_ARGUMENT naming the field; an admin method (the AccountService
    prefix in the role table)."""
    import grpc

    from demo_server import Server
    from rating400.v1 import accounts_pb2 as pb
    from rating400.v1 import accounts_pb2_grpc
    from rating400_server.auth import roles_for

    assert roles_for("/rating400.v1.AccountService/ListAccounts") == ("admin",)
    _ops, store_dir = store
    server = Server(store_dir, tmp_path, workers=1, env={"RATING400_SWEEP_SECONDS": "3600"}).start()
    try:
        with grpc.insecure_channel(server.target) as ch:
            stub = accounts_pb2_grpc.AccountServiceStub(ch)
            rows = stub.ListAccounts(pb.ListAccountsRequest()).accounts
            assert [r.id for r in rows] == ["acme", "bravo", "legacy"]
            acme, bravo, legacy = rows
            assert (acme.status, acme.suspend_reason, acme.package_kind, acme.credit_minor) == \
                ("suspended", "customer request", "payg", 500_000)
            assert not bravo.HasField("credit_minor") and bravo.package_kind == ""  # no package: unset
            assert (legacy.package, legacy.credit_minor, legacy.available_minor) == ("pre_3y", 1_000_000, 1_000_000)
            page = stub.ListAccounts(pb.ListAccountsRequest(status=["active"], limit=1)).accounts
            assert [r.id for r in page] == ["bravo"]
            page = stub.ListAccounts(pb.ListAccountsRequest(status=["active"], limit=1, after="bravo")).accounts
            assert [r.id for r in page] == ["legacy"]
            assert [r.id for r in stub.ListAccounts(pb.ListAccountsRequest(status=["suspended,frozen"])).accounts] \
                == ["acme"]
            assert [r.id for r in stub.ListAccounts(pb.ListAccountsRequest(package="pre_3y")).accounts] == ["legacy"]
            for req, field in ((pb.ListAccountsRequest(status=["bogus"]), "status"),
                               (pb.ListAccountsRequest(package="gold"), "package"),
                               (pb.ListAccountsRequest(limit=-1), "limit"),
                               (pb.ListAccountsRequest(limit=1001), "limit"),
                               (pb.ListAccountsRequest(after="x" * 300), "after")):
                with pytest.raises(grpc.RpcError) as e:
                    stub.ListAccounts(req)
                assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert e.value.details().startswith(f"{field}: "), e.value.details()
    finally:
        server.stop()
