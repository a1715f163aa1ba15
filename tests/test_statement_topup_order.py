"""A statement from the live ledger closes at the ledger's balance, whatever
the order of a top-up and the calls around it (newcomer finding: a top-up at
10:00, committed before a call of 09:59-10:05, was counted twice: once in the
first month's opening credit, read from the call's stored balance, and once
as a top-up; the statement closed 600 yuan above `accounts balance`).

Rule (README, "Monthly statements"): a top-up counts at its own ``at``, in
the month of that time; the first month's opening comes from the package's
period (its package credit in the month it starts), never from a call's
stored balance, so the commit order of calls and top-ups does not matter."""
import json

import pytest

from rating_core.cli import main

ACCOUNT, NUMBER = "bob", "4007654321"


def _run(capsys, *args):
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    assert e.value.code == 0, (args, out)
    return out.out


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A demo store with a live prepaid account bob (prepaid_480_1y from
    2026-11-01) and an active, routed number; copied per test."""
    root = tmp_path_factory.mktemp("topup_order")
    store = root / "d" / "store"

    def run(*args):
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in args])
        assert e.value.code == 0, args

    run("demo", "--cdrs", "200", "--dir", root / "d")
    run("accounts", "import", root / "d" / "catalog" / "catalog.yaml", "--store", store)
    s = ("--store", store)
    run("accounts", "open", ACCOUNT, "--company", "Bob Trading Co., Ltd.", *s)
    run("accounts", "documents", ACCOUNT, "--doc", "business_licence=BL-1", "--doc", "legal_representative_id=ID-1", *s)
    run("accounts", "review", ACCOUNT, "--approve", *s)
    run("accounts", "subscribe", ACCOUNT, "prepaid_480_1y", "--start", "2026-11-01T00:00:00",
        "--at", "2026-11-01T00:00:00", *s)
    run("accounts", "number", "add", NUMBER, *s)
    run("accounts", "number", "lock", NUMBER, ACCOUNT, *s)
    run("accounts", "number", "submit", NUMBER, *s)
    run("accounts", "number", "activate", NUMBER, "--home-city", "Shenzhen", *s)
    run("accounts", "bind", NUMBER, "13700000001", *s)
    run("accounts", "verify-destination", NUMBER, "13700000001", "--proof", "BILL-2026-11", *s)
    return root / "d"


def cdr_row(path, call_id, start, end):
    path.write_text("call_id,caller,number,forwarded_to,start,ivr_answer,agent_answer,end,hangup_cause\n"
                    f"{call_id},13812345678,{NUMBER},13700000001,{start},{start},{start},{end},normal\n",
                    encoding="utf-8")


CALL = ("2026-11-10T09:59:00", "2026-11-10T10:05:00")


def _setup(base, tmp_path, monkeypatch, capsys, topup_at, calls, topup_first):
    """Copy of ``base`` with the top-up and the calls committed in that
    order; -> the store's path (relative to tmp_path, the cwd)."""
    import shutil

    shutil.copytree(base, tmp_path / "d")
    monkeypatch.chdir(tmp_path)
    s = ("--store", "d/store")

    def top_up():
        _run(capsys, "accounts", "top-up", ACCOUNT, "600", "--at", topup_at, *s)

    def commit():
        for k, (start, end) in enumerate(calls):
            cdr_row(tmp_path / f"c{k}.csv", f"bob-{k}", start, end)
            _run(capsys, "rate", f"c{k}.csv", *s, "--out", f"r{k}.parquet", "--commit")

    for step in ((top_up, commit) if topup_first else (commit, top_up)):
        step()
    return "d/store"


def _identity(st: dict) -> int:
    """opening + package credit + top-ups + adjustments - consumed - expired."""
    return (st["opening_credit_minor"] + st["package_credit_minor"] + st["top_ups_total_minor"]
            + st["credit_adjustments_total_minor"] + st["refunds_total_minor"] - st["credit_consumed_minor"] - st["rerating_credit_total_minor"]
            - st["expired_credit_minor"])


@pytest.mark.parametrize("topup_at,calls", [
    ("2026-11-10T10:00:00", [CALL]),                       # during the call (the finding)
    ("2026-11-10T09:00:00", [CALL]),                       # before the call starts
    ("2026-11-10T11:00:00", [CALL]),                       # after the call ends
    ("2026-11-10T10:00:00", [CALL, ("2026-11-10T09:58:00", "2026-11-10T10:02:00")]),  # two calls straddling it
], ids=["during", "before", "after", "straddled"])
@pytest.mark.parametrize("topup_first", [True, False], ids=["topup-committed-first", "calls-committed-first"])
def test_statement_closes_at_the_ledger_balance(base, tmp_path, monkeypatch, capsys, topup_at, calls, topup_first):
    store = _setup(base, tmp_path, monkeypatch, capsys, topup_at, calls, topup_first)
    _run(capsys, "bill", "--ledger", "--store", store, "--account", ACCOUNT, "--month", "2026-11", "--out", "x.json")
    (st,) = json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))["statements"]
    balance = json.loads(_run(capsys, "accounts", "balance", ACCOUNT, "--store", store))
    assert st["calls"] == len(calls) and st["credit_consumed_minor"] > 0
    assert st["top_ups_total_minor"] == 600 * 10_000
    assert st["closing_credit_minor"] == balance["credit_minor"] == _identity(st)
    # The package's first month opens at 0 and takes the package fee as its package credit.
    assert st["opening_credit_minor"] == 0 and st["package_credit_minor"] == 480 * 10_000


def test_get_statement_closes_at_the_ledger_balance(base, tmp_path, monkeypatch, capsys):
    """gRPC GetStatement reads the same ledger events: the finding's order
    (top-up timed during the call, committed first)."""
    import grpc

    from rating400.v1 import billing_pb2, billing_pb2_grpc
    from demo_server import Server

    store = _setup(base, tmp_path, monkeypatch, capsys, "2026-11-10T10:00:00", [CALL], True)
    balance = json.loads(_run(capsys, "accounts", "balance", ACCOUNT, "--store", store))
    server = Server(tmp_path / store, tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            resp = billing_pb2_grpc.BillingServiceStub(channel).GetStatement(
                billing_pb2.StatementRequest(account=ACCOUNT, month="2026-11"), timeout=60)
    finally:
        server.stop()
    st = json.loads(resp.json)
    assert resp.closing_credit_minor == st["closing_credit_minor"] == balance["credit_minor"] == _identity(st)
    assert st["top_ups_total_minor"] == 600 * 10_000 and st["credit_consumed_minor"] > 0
