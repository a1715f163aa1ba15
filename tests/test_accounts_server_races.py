"""AccountService under concurrency and hostile dates, against a real
``rating400 serve --workers 2`` on loopback (issue 12 breaker).

Two client processes (``race_client.py``, started together on a go file)
send their operations at once: catalog Activate racing ChangePackage /
Pay / ReversePayment / Adjust on one account, and many top-ups with
distinct and with repeated request ids. Every answer must be OK or a clear
refusal (FAILED_PRECONDITION with its reason, INVALID_ARGUMENT naming the
field), never INTERNAL; a repeated request id is answered with the first
result; the final balances are exactly the sum of the accepted operations
(integers, 1/10000 yuan) and the audit log holds each accepted operation
once. Then ``meta.at_ms`` values a hostile or careless client sends to
ActivateNumber and to ReversePayment with reopen: each is INVALID_ARGUMENT
naming ``at`` or FAILED_PRECONDITION with a reason, and the server keeps
serving.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from rating400.v1 import accounts_pb2 as pb
from rating400.v1 import accounts_pb2_grpc, catalog_pb2, catalog_pb2_grpc
from demo_server import Server, make_store

HERE = Path(__file__).parent
RACE_PACKAGE = "race_pkg"  # in version 2 (active when the server starts), not in version 1
INT64_MAX, INT64_MIN = (1 << 63) - 1, -(1 << 63)
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from rating_core.store import Store

    root = tmp_path_factory.mktemp("racesrv")
    store_dir, catalog = make_store(root)
    text = catalog.read_text("utf-8")
    more = catalog.parent / "more.yaml"  # beside the demo catalog's CSV tables
    more.write_text(text.replace("packages:\n", f"packages:\n  {RACE_PACKAGE}: {{kind: payg, name: Race, rates: "
                                                "[{rate: std_015}]}\n", 1), "utf-8")
    store = Store(store_dir)
    store.activate(store.compile(more))
    assert store.current() == 2
    s = Server(store_dir, root, env={"RATING400_SWEEP_SECONDS": "3600"}).start()
    try:
        yield s, store_dir, root
    finally:
        s.stop()


def _meta(rid, at_ms=0):
    return pb.OperationMeta(request_id=rid, actor="race", at_ms=at_ms)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _op(rpc: str, request: str, **fields) -> dict:
    return {"service": "accounts", "rpc": rpc, "request": request, "fields": fields}


def _meta_d(rid: str) -> dict:
    return {"request_id": rid, "actor": "race"}


def _run_two(server: Server, tmp: Path, name: str, plans: list[list[dict]]) -> list[list[dict]]:
    """The plans' calls from two client processes at once: each process's outcomes."""
    go = tmp / f"{name}.go"
    procs, outs = [], []
    for i, calls in enumerate(plans):
        plan, out = tmp / f"{name}-{i}.json", tmp / f"{name}-{i}.out.json"
        plan.write_text(json.dumps({"target": server.target, "go": str(go), "calls": calls}), "utf-8")
        procs.append(subprocess.Popen([sys.executable, str(HERE / "race_client.py"), str(plan), str(out)]))
        outs.append(out)
    time.sleep(1.0)  # both connected (each waits for its channel), then go
    go.write_text("go")
    for p in procs:
        assert p.wait(120) == 0
    return [json.loads(o.read_text("utf-8")) for o in outs]


def _setup_account(acc, account: str, package: str) -> None:
    acc.OpenAccount(pb.OpenAccountRequest(meta=_meta(f"{account}-open"), account=account, company=account.title()),
                    timeout=10)
    acc.Subscribe(pb.SubscribeRequest(meta=_meta(f"{account}-sub"), account=account, package=package,
                                      start_ms=_now_ms() - DAY_MS), timeout=10)


def _no_internal(rows: list[dict]) -> None:
    bad = [r for r in rows if r["code"] not in ("OK", "FAILED_PRECONDITION", "ALREADY_EXISTS", "INVALID_ARGUMENT")]
    assert not bad, bad[:3]


def _events(acc, account: str) -> list:
    return list(acc.ListEvents(pb.ListEventsRequest(account=account), timeout=10).events)


def test_top_ups_from_two_processes_with_distinct_and_repeated_request_ids(served):
    server, _store, tmp = served
    with grpc.insecure_channel(server.target) as ch:
        acc = accounts_pb2_grpc.AccountServiceStub(ch)
        _setup_account(acc, "tops", "payg_015")  # a payment of any amount: credited against what is charged

        def top_up(rid, amount):
            return _op("TopUp", "AmountRequest", meta=_meta_d(rid), account="tops", amount_minor=amount)

        shared = {f"S-{j}": 50_0000 + 100 * j for j in range(20)}  # the same request from both processes
        clash = {f"K-{j}": (7_0000 + 100 * j, 8_0000 + 100 * j) for j in range(5)}  # one id, two contents
        plans = []
        for p, name in enumerate("AB"):
            own = [top_up(f"{name}-{i}", 100 * (1000 * (p + 1) + i)) for i in range(40)]  # whole fen
            common = [top_up(rid, amount) for rid, amount in shared.items()]
            if p:
                common.reverse()
            calls = []
            for i in range(40):  # interleave own, shared and clashing ids
                calls.append(own[i])
                if i < len(common):
                    calls.append(common[i])
                if i < len(clash):
                    rid = f"K-{i}"
                    calls.append(top_up(rid, clash[rid][p]))
            calls += own[:10]  # a retry of its own, after the fact
            plans.append(calls)
        a, b = _run_two(server, tmp, "tops", plans)
        rows = a + b
        _no_internal(rows)
        by_id: dict[str, list[dict]] = {}
        for r in rows:
            by_id.setdefault(r["fields"]["meta"]["request_id"], []).append(r)
        accepted: dict[str, int] = {}
        for rid, answers in by_id.items():
            ok = [r for r in answers if r["code"] == "OK"]
            first = [r for r in ok if not r["replayed"]]
            assert len(first) == 1, (rid, answers)  # booked once
            # Every repeat is answered with the first result, or (other content) refused naming request_id.
            for r in answers:
                if r["code"] == "OK":
                    assert (r["seq"], r["detail_json"], r["credit_minor"]) == (
                        first[0]["seq"], first[0]["detail_json"], first[0]["credit_minor"]), (rid, answers)
                else:
                    assert rid.startswith("K-") and r["code"] == "INVALID_ARGUMENT", (rid, answers)
                    assert r["details"].startswith("request_id: request id reused with different content"), r
            accepted[rid] = json.loads(first[0]["detail_json"])["amount_minor"]
            assert accepted[rid] == first[0]["fields"]["amount_minor"]
        assert len(accepted) == 80 + len(shared) + len(clash)
        balance = acc.GetBalance(pb.GetAccountRequest(account="tops"), timeout=10)
        assert balance.credit_minor == sum(accepted.values())  # exact, in 1/10000 yuan
        events = [e for e in _events(acc, "tops") if e.operation == "top_up"]
        assert sorted(e.request_id for e in events) == sorted(accepted)  # each once
        assert sum(json.loads(e.detail_json)["amount_minor"] for e in events) == balance.credit_minor
        # Listed in effective-time order, then seq (``Accounts.events``): two
        # processes take their "now" before the one writer's lock, so a later
        # seq may carry an earlier instant (a flake under load asserted seq
        # order); each seq once.
        seqs = [e.seq for e in events]
        assert len(set(seqs)) == len(seqs)
        assert [(e.at_ms, e.seq) for e in events] == sorted((e.at_ms, e.seq) for e in events)
        # Each booked top-up's credit_minor is the running total in the log's order.
        running = 0
        for e in sorted(events, key=lambda e: e.seq):
            running += json.loads(e.detail_json)["amount_minor"]
            assert json.loads(e.detail_json)["credit_minor"] == running


def test_activate_racing_package_change_payments_and_adjustments_on_one_account(served):
    """One prepaid account, two processes: process A rolls the catalog
    back and forth between version 1 (without race_pkg) and 2 (with it)
    and adjusts the credit; process B pays bills, reverses payments,
    adjusts and moves the account to race_pkg. Whatever the order, the
    active version holds every package in use, and the credit is the
    package's fee plus the accepted adjustments (the change carries it,
    payments are receipts)."""
    from rating_core.store import Store

    server, store_dir, tmp = served
    with grpc.insecure_channel(server.target) as ch:
        acc = accounts_pb2_grpc.AccountServiceStub(ch)
        _setup_account(acc, "racer", "prepaid_480_1y")
        start = acc.GetBalance(pb.GetAccountRequest(account="racer"), timeout=10).credit_minor
        assert start == 480_0000

        def activate(v):
            return {"service": "catalog", "rpc": "Activate", "request": "ActivateRequest", "fields": {"version": v}}

        def adjust(rid, amount):
            return _op("Adjust", "AdjustRequest", meta=_meta_d(rid), account="racer", amount_minor=amount,
                       reason="race")

        plan_a, plan_b = [], []
        for i in range(12):
            plan_a += [activate(1), adjust(f"JA-{i}", 100 + i), activate(2), adjust(f"JA-{i}", 100 + i)]
        for i in range(16):
            plan_b += [_op("Pay", "AmountRequest", meta=_meta_d(f"P-{i}"), account="racer", amount_minor=10_0000),
                       _op("ReversePayment", "AdjustRequest", meta=_meta_d(f"R-{i}"), account="racer",
                           amount_minor=4_0000, reason="keyed twice"),
                       adjust(f"JB-{i}", 300 + i)]
            if i in (3, 7, 11):  # the move, while the catalog rolls; retried until v2 is active
                plan_b.append(_op("ChangePackage", "ChangePackageRequest", meta=_meta_d(f"C-{i}"),
                                  account="racer", package=RACE_PACKAGE))
        plan_a.append(activate(2))
        a, b = _run_two(server, tmp, "racer", [plan_a, plan_b])
        rows = a + b
        _no_internal(rows)
        for r in rows:
            if r["code"] == "OK":
                continue
            if r["rpc"] == "Activate":
                assert r["code"] == "FAILED_PRECONDITION" and r["reason"] == "package_in_use", r
                assert f"lacks package '{RACE_PACKAGE}', held by 1 account (racer" in r["details"], r
            elif r["rpc"] == "ChangePackage":  # version 1 active: no such package there; or moved already
                assert (r["code"] == "INVALID_ARGUMENT" and r["details"].startswith(
                    f"package: unknown package '{RACE_PACKAGE}'")) or r["reason"] == "same_package", r
            elif r["rpc"] in ("Pay", "ReversePayment"):  # after the move: postpaid, or nothing to reverse
                assert r["code"] == "FAILED_PRECONDITION" and r["reason"] in (
                    "not_prepaid", "insufficient_payments"), r
            else:
                raise AssertionError(r)
        # The active version has every package an account holds (or held).
        store = Store(store_dir, create=False)
        store.check_in_use(store.current())
        view = acc.GetAccount(pb.GetAccountRequest(account="racer"), timeout=10)
        moved = any(r["rpc"] == "ChangePackage" and r["code"] == "OK" for r in b)
        assert (view.account.package == RACE_PACKAGE) == moved
        if moved:
            assert RACE_PACKAGE in store.open(store.current()).meta["packages"]
        # Repeated adjust ids (process A sends each twice): booked once.
        adjusts: dict[str, int] = {}
        for r in rows:
            if r["rpc"] == "Adjust":
                assert r["code"] == "OK", r
                rid = r["fields"]["meta"]["request_id"]
                if not r["replayed"]:
                    assert rid not in adjusts
                    adjusts[rid] = r["fields"]["amount_minor"]
        assert set(adjusts) == {f"JA-{i}" for i in range(12)} | {f"JB-{i}" for i in range(16)}
        balance = acc.GetBalance(pb.GetAccountRequest(account="racer"), timeout=10)
        assert balance.credit_minor == start + sum(adjusts.values()), (balance, adjusts)
        # The audit log: each accepted operation once, and payments never reversed beyond what was paid.
        events = _events(acc, "racer")
        booked = {(r["rpc"], r["fields"]["meta"]["request_id"], r["seq"]) for r in rows
                  if r["code"] == "OK" and r["rpc"] != "Activate" and not r["replayed"]}
        names = {"Adjust": "adjust", "Pay": "pay", "ReversePayment": "reverse_payment",
                 "ChangePackage": "change_package"}
        logged = {(e.operation, e.request_id, e.seq) for e in events if e.operation in names.values()}
        assert logged == {(names[rpc], rid, seq) for rpc, rid, seq in booked}
        paid = sum(json.loads(e.detail_json)["amount_minor"] for e in events if e.operation == "pay")
        back = sum(json.loads(e.detail_json)["amount_minor"] for e in events if e.operation == "reverse_payment")
        assert 0 <= back <= paid
        # Still serving, both ways.
        cat = catalog_pb2_grpc.CatalogAdminServiceStub(ch)
        assert [v.version for v in cat.ListVersions(catalog_pb2.ListVersionsRequest(), timeout=10).versions
                if v.active] == [store.current()]
    assert "Traceback" not in server.logs()


def _code_and_reason(fn) -> tuple[str, str, str]:
    try:
        fn()
    except grpc.RpcError as e:
        return e.code().name, dict(e.trailing_metadata() or ()).get("rating400-reason", ""), e.details() or ""
    return "OK", "", ""


def test_hostile_at_ms_on_activate_number_and_reopened_reversals(served):
    """meta.at_ms of ActivateNumber and ReversePayment(reopen): negative,
    int64 extremes, beyond the 10-minute skew, far future, before the
    package start, before the payment, in an ended month. Each is
    INVALID_ARGUMENT naming at or FAILED_PRECONDITION with its reason;
    never INTERNAL; the server keeps serving, and afterwards the number
    opens and the payment is reversed with good dates. 0 is now (the
    proto's meaning). Before the fix an activation dated before the
    package start (and before the number was locked) was taken."""
    from rating_core.accounts.importer import month_start

    server, _store, _tmp = served
    number = "4007650001"
    with grpc.insecure_channel(server.target) as ch:
        acc = accounts_pb2_grpc.AccountServiceStub(ch)
        now = _now_ms()
        this_month = month_start(now)  # Asia/Shanghai
        sub_start = max(this_month, now - 2 * 3600_000)
        acc.OpenAccount(pb.OpenAccountRequest(meta=_meta("h-open"), account="hostile", company="Hostile"), timeout=10)
        acc.SubmitDocuments(pb.SubmitDocumentsRequest(meta=_meta("h-docs"), account="hostile", documents=[
            pb.DocumentRef(kind="business_licence", reference="BL-1"),
            pb.DocumentRef(kind="legal_representative_id", reference="ID-1")]), timeout=10)
        acc.ReviewRealName(pb.ReviewRealNameRequest(meta=_meta("h-rn"), account="hostile", approve=True), timeout=10)
        acc.Subscribe(pb.SubscribeRequest(meta=_meta("h-sub"), account="hostile", package="prepaid_480_1y",
                                          start_ms=sub_start), timeout=10)
        acc.AddNumbers(pb.AddNumbersRequest(meta=_meta("h-add"), numbers=[number]), timeout=10)
        acc.LockNumber(pb.LockNumberRequest(meta=_meta("h-lock"), number=number, account="hostile"), timeout=10)
        acc.SubmitNumber(pb.NumberRequest(meta=_meta("h-submit"), number=number), timeout=10)
        out_of_range = ("INVALID_ARGUMENT", "at: ")
        ahead = ("INVALID_ARGUMENT", "at: ", "is in the future")
        before_state = ("FAILED_PRECONDITION", "before_current_state")
        expected = {"negative": (-1, out_of_range), "int64 min": (INT64_MIN, out_of_range),
                    "int64 max": (INT64_MAX, out_of_range), "beyond the skew": (now + 11 * 60_000, ahead),
                    "far future": (now + 3650 * DAY_MS, ahead),
                    "before the package start": (sub_start - 20 * DAY_MS, before_state),
                    "before it was locked": (now - 60_000, before_state), "epoch 1 ms": (1, before_state)}

        def check(what, got, want):
            code, reason, details = got
            assert code == want[0], (what, got)
            if code == "INVALID_ARGUMENT":
                assert details.startswith(want[1]) and (len(want) < 3 or want[2] in details), (what, got)
            else:
                assert reason == want[1] and details.startswith(f"{reason}: "), (what, got)

        for i, (what, (at, want)) in enumerate(expected.items()):
            check(what, _code_and_reason(lambda: acc.ActivateNumber(pb.ActivateNumberRequest(
                meta=_meta(f"h-act-{i}", at), number=number, home_city="Shenzhen"), timeout=10)), want)
        r = acc.ActivateNumber(pb.ActivateNumberRequest(meta=_meta("h-act-ok", 0), number=number, home_city="Shenzhen"),
                               timeout=10)
        assert r.number.state == "active"

        # A bill payment, then reversals with reopen dated where they must not be.
        acc.Pay(pb.AmountRequest(meta=_meta("h-pay"), account="hostile", amount_minor=50_0000), timeout=10)
        paid_at = _now_ms()
        ended = ("INVALID_ARGUMENT", "at: ", "a month that has ended")
        expected = {"negative": (-1, out_of_range), "int64 min": (INT64_MIN, out_of_range),
                    "int64 max": (INT64_MAX, out_of_range), "beyond the skew": (paid_at + 11 * 60_000, ahead),
                    "far future": (paid_at + 3650 * DAY_MS, ahead), "epoch 1 ms": (1, ended),
                    "in an ended month": (this_month - 1, ended),
                    "before the package start": (sub_start - 20 * DAY_MS, ended)}
        if sub_start - 60_000 >= this_month:  # this month, before the package start
            expected["before the package start, this month"] = (sub_start - 60_000, (
                "FAILED_PRECONDITION", "before_package_start"))
        if paid_at - 30_000 >= max(sub_start, this_month):  # after the start, before the payment
            expected["before the payment"] = (paid_at - 30_000, ("FAILED_PRECONDITION", "insufficient_payments"))
        for i, (what, (at, want)) in enumerate(expected.items()):
            check(what, _code_and_reason(lambda: acc.ReversePayment(pb.AdjustRequest(
                meta=_meta(f"h-rev-{i}", at), account="hostile", amount_minor=50_0000, reason="bounced",
                reopen=True), timeout=10)), want)
        r = acc.ReversePayment(pb.AdjustRequest(meta=_meta("h-rev-ok", 0), account="hostile", amount_minor=50_0000,
                                                reason="bounced", reopen=True), timeout=10)
        assert json.loads(r.detail_json)["amount_minor"] == 50_0000
        events = [e.operation for e in _events(acc, "hostile")]
        assert events.count("reverse_payment") == 1 and events.count("pay") == 1
        assert events.count("activate_number") == 1
    assert "Traceback" not in server.logs()
