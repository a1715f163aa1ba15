"""AccountService end to end: ``rating400 serve --workers 2`` in a
subprocess, operations over gRPC, and the next Authorize on BOTH worker
processes seeing each one within 1 s, with no catalog compile.

Both workers are reached by opening many separate connections (SO_REUSEPORT
spreads connections over the workers); the test checks in /proc that each
worker process holds at least one of them, so "every connection saw it"
means "both workers saw it".
"""
from __future__ import annotations

import json
import os
import time

import grpc
import pytest

from rating400.v1 import accounts_pb2 as pb
from rating400.v1 import accounts_pb2_grpc, catalog_pb2, catalog_pb2_grpc
from rating400_client import Client
from demo_server import Server, make_store

NUMBER = "4007654321"
CALLER = "13812345678"
DEST = "13700000001"
CONNECTIONS = 16


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("acctsrv")
    store, _ = make_store(root)
    s = Server(store, root, env={"RATING400_SWEEP_SECONDS": "3600"}).start()  # the test sweeps explicitly
    yield s.info
    s.stop()


def _sockets(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


def _established_on(port: int) -> dict[str, int]:
    """inode -> remote port of established TCP connections to ``port``."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, remote, state, inode = f[1], f[2], f[3], f[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                out[inode] = int(remote.rsplit(":", 1)[1], 16)
    return out


def _meta(rid):
    return pb.OperationMeta(request_id=rid, actor="test")


def _decision(client) -> str:
    try:
        d = client.authorize(NUMBER, CALLER)
    except grpc.RpcError as e:
        return f"{e.code().name}"
    if not d.allow:
        return f"deny {d.reason}"
    return "allow " + ",".join(x.number for x in d.destinations) + f" max={d.max_duration_seconds}"


def _all_see(clients, predicate, within=1.0) -> tuple[float, list[str]]:
    """Seconds until every connection's Authorize satisfies ``predicate``."""
    t0 = time.monotonic()
    while True:
        seen = [_decision(c) for c in clients]
        if all(predicate(s) for s in seen):
            print(f"every connection saw it after {time.monotonic() - t0:.3f} s")
            return time.monotonic() - t0, seen
        if time.monotonic() - t0 > within + 2:
            return time.monotonic() - t0, seen
        time.sleep(0.02)


def test_operations_reach_both_workers_within_a_second_without_a_compile(server):
    target = f"127.0.0.1:{server['port']}"
    admin = grpc.insecure_channel(target)
    acc = accounts_pb2_grpc.AccountServiceStub(admin)
    cat = catalog_pb2_grpc.CatalogAdminServiceStub(admin)
    versions = [v.version for v in cat.ListVersions(catalog_pb2.ListVersionsRequest()).versions]

    # One number through the whole opening, over gRPC.
    acc.OpenAccount(pb.OpenAccountRequest(meta=_meta("o1"), account="acme", company="Acme Trading Co., Ltd."))
    again = acc.OpenAccount(pb.OpenAccountRequest(meta=_meta("o1"), account="acme", company="Acme Trading Co., Ltd."))
    assert again.replayed and again.account.id == "acme"
    acc.SubmitDocuments(pb.SubmitDocumentsRequest(meta=_meta("o2"), account="acme", documents=[
        pb.DocumentRef(kind="business_licence", reference="BL-1"),
        pb.DocumentRef(kind="legal_representative_id", reference="ID-1")]))
    acc.ReviewRealName(pb.ReviewRealNameRequest(meta=_meta("o3"), account="acme", approve=True))
    acc.Subscribe(pb.SubscribeRequest(meta=_meta("o4"), account="acme", package="prepaid_480_1y",
                                      start_ms=int(time.time() * 1000) - 86_400_000))
    acc.AddNumbers(pb.AddNumbersRequest(meta=_meta("o5"), numbers=[NUMBER]))
    acc.LockNumber(pb.LockNumberRequest(meta=_meta("o6"), number=NUMBER, account="acme"))
    acc.SubmitNumber(pb.NumberRequest(meta=_meta("o7"), number=NUMBER))
    r = acc.ActivateNumber(pb.ActivateNumberRequest(meta=_meta("o8"), number=NUMBER, home_city="Shenzhen"))
    assert r.number.state == "active"

    clients = [Client(target, timeout=5, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(CONNECTIONS)]
    try:
        for c in clients:
            c.wait_ready()
        mine = _established_on(server["port"])
        per_worker = [len(_sockets(pid) & set(mine)) for pid in server["workers"]]
        assert len(per_worker) == 2 and all(n >= 1 for n in per_worker), per_worker

        secs, seen = _all_see(clients, lambda s: s == "deny no_route")  # active, nothing bound
        acc.BindDestination(pb.DestinationRequest(meta=_meta("b1"), number=NUMBER, destination=DEST))
        acc.VerifyDestination(pb.DestinationRequest(meta=_meta("b2"), number=NUMBER, destination=DEST,
                                                    proof="BILL-2026-11"))
        secs, seen = _all_see(clients, lambda s: s.startswith(f"allow {DEST}"))
        assert secs <= 1.0, (secs, seen)

        acc.AccountTransition(pb.TransitionRequest(meta=_meta("s1"), account="acme", action="suspend"))
        secs, seen = _all_see(clients, lambda s: s == "FAILED_PRECONDITION")
        assert secs <= 1.0, (secs, seen)

        acc.AccountTransition(pb.TransitionRequest(meta=_meta("s2"), account="acme", action="restore"))
        secs, seen = _all_see(clients, lambda s: s.startswith(f"allow {DEST}"))
        assert secs <= 1.0, (secs, seen)

        # Refund down to 1 yuan, then top up: the granted duration follows on every worker.
        acc.Refund(pb.AdjustRequest(meta=_meta("t0"), account="acme", amount_minor=479_0000, reason="test"))
        secs, seen = _all_see(clients, lambda s: s.startswith("allow") and int(s.rsplit("max=", 1)[1]) < 3600)
        assert secs <= 1.0, (secs, seen)
        before = int(seen[0].rsplit("max=", 1)[1])
        acc.TopUp(pb.AmountRequest(meta=_meta("t1"), account="acme", amount_minor=6000_0000))
        secs, seen = _all_see(clients, lambda s: s.startswith("allow") and int(s.rsplit("max=", 1)[1]) > before)
        assert secs <= 1.0, (secs, seen)
    finally:
        for c in clients:
            c.close()

    # No catalog was compiled or activated for any of it.
    assert [v.version for v in cat.ListVersions(catalog_pb2.ListVersionsRequest()).versions] == versions
    admin.close()


def test_status_codes(server):
    target = f"127.0.0.1:{server['port']}"
    with grpc.insecure_channel(target) as ch:
        acc = accounts_pb2_grpc.AccountServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            acc.OpenAccount(pb.OpenAccountRequest(meta=_meta("x1"), account="bad id!", company="X"))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("account:")
        with pytest.raises(grpc.RpcError) as e:
            acc.TopUp(pb.AmountRequest(meta=_meta("x2"), account="nobody", amount_minor=600_0000))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        acc.OpenAccount(pb.OpenAccountRequest(meta=_meta("x3"), account="beta", company="Beta"))
        with pytest.raises(grpc.RpcError) as e:
            acc.OpenAccount(pb.OpenAccountRequest(meta=_meta("x4"), account="beta", company="Beta"))
        assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
        with pytest.raises(grpc.RpcError) as e:
            acc.AccountTransition(pb.TransitionRequest(meta=_meta("x5"), account="beta", action="freeze"))
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert dict(e.value.trailing_metadata())["rating400-reason"] == "wrong_state"
        assert e.value.details().startswith("wrong_state:")
        with pytest.raises(grpc.RpcError) as e:
            acc.OpenAccount(pb.OpenAccountRequest(meta=_meta(""), account="gamma", company="G"))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("request_id:")
        with pytest.raises(grpc.RpcError) as e:  # dated 2062 (2026 mistyped): refused, nothing stored
            acc.TopUp(pb.AmountRequest(meta=pb.OperationMeta(request_id="x2062", at_ms=2_929_658_400_000),
                                       account="beta", amount_minor=1_0000))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details().startswith("at: 2062-11-02T10:00:00+08:00 is in the future"), e.value.details()
        # A bundle account's payment of its bill: any amount (README "Money rules"); a refund
        # only of credit above zero that the statements did not apply to a bill: of 100.00 paid
        # and 0.50 of goodwill, the month's 99.00 rental took 99.00 (newcomer N10-2 finding 6).
        acc.Subscribe(pb.SubscribeRequest(meta=_meta("x6"), account="beta", package="bundle_1000"))
        with pytest.raises(grpc.RpcError) as e:  # money received is whole fen (newcomer 12-02 F3)
            acc.TopUp(pb.AmountRequest(meta=_meta("x7f"), account="beta", amount_minor=100_0050))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details().startswith("amount_minor: 1000050: a top-up is whole fen"), e.value.details()
        r = acc.TopUp(pb.AmountRequest(meta=_meta("x7"), account="beta", amount_minor=100_0000))
        assert r.balance.credit_minor == 100_0000
        acc.Adjust(pb.AdjustRequest(meta=_meta("x8"), account="beta", amount_minor=5000, reason="goodwill"))
        with pytest.raises(grpc.RpcError) as e:
            acc.Refund(pb.AdjustRequest(meta=_meta("x9"), account="beta", amount_minor=1_5100, reason="overpaid"))
        assert dict(e.value.trailing_metadata())["rating400-reason"] == "insufficient_credit"
        assert "the statements applied 99.00 yuan" in e.value.details()
        # A refund is cash paid out: whole fen, with a reason (breaker N13 F1, newcomer N13 F1).
        for bad, field in (({"amount_minor": 1_4999, "reason": "overpaid"}, "amount_minor"),
                           ({"amount_minor": 1_5000}, "reason")):
            with pytest.raises(grpc.RpcError) as e:
                acc.Refund(pb.AdjustRequest(meta=_meta("x9b"), account="beta", **bad))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith(f"{field}:")
        assert acc.Refund(pb.AdjustRequest(meta=_meta("x10"), account="beta", amount_minor=1_5000,
                                           reason="overpaid")).balance.credit_minor == 99_0000
        # A retry under its request id: no date (0: now) replays; another explicit date is other
        # content (breaker N13 F11: it answered replayed and kept the first date).
        assert acc.Refund(pb.AdjustRequest(meta=_meta("x10"), account="beta", amount_minor=1_5000,
                                           reason="overpaid")).replayed
        with pytest.raises(grpc.RpcError) as e:
            acc.Refund(pb.AdjustRequest(meta=pb.OperationMeta(request_id="x10", actor="test", at_ms=1_790_000_000_000),
                                        account="beta", amount_minor=1_5000, reason="overpaid"))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "different content" in e.value.details()
        with pytest.raises(grpc.RpcError) as e:  # a bundle's payment is its top-up; nothing stored
            acc.Pay(pb.AmountRequest(meta=_meta("x11"), account="beta", amount_minor=1_0000))
        assert dict(e.value.trailing_metadata())["rating400-reason"] == "not_prepaid"
        # A prepaid account's bill payment: below the top-up minimum, never call credit.
        acc.OpenAccount(pb.OpenAccountRequest(meta=_meta("x12"), account="delta", company="Delta"))
        acc.Subscribe(pb.SubscribeRequest(meta=_meta("x13"), account="delta", package="prepaid_480_1y"))
        r = acc.Pay(pb.AmountRequest(meta=_meta("x14"), account="delta", amount_minor=191_6400))
        assert r.operation == "pay" and json.loads(r.detail_json)["amount_minor"] == 191_6400
        assert r.balance.credit_minor == 480_0000  # the package's credit, unchanged
        # A mistyped payment is taken back with a reason, within what no statement applied
        # (breaker N11 F11); beyond that, refused, nothing stored.
        r = acc.ReversePayment(pb.AdjustRequest(meta=_meta("x14r"), account="delta", amount_minor=100_0000,
                                                reason="keyed 191.64 for 91.64"))
        assert r.operation == "reverse_payment" and json.loads(r.detail_json)["amount_minor"] == 100_0000
        assert r.balance.credit_minor == 480_0000
        with pytest.raises(grpc.RpcError) as e:
            acc.ReversePayment(pb.AdjustRequest(meta=_meta("x14s"), account="delta", amount_minor=91_6500,
                                                reason="too much"))
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert dict(e.value.trailing_metadata())["rating400-reason"] == "insufficient_payments"
        with pytest.raises(grpc.RpcError) as e:
            acc.ReversePayment(pb.AdjustRequest(meta=_meta("x14t"), account="delta", amount_minor=100))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("reason:")
        # A bounced payment is taken back whole with reopen; reopen belongs to ReversePayment alone.
        with pytest.raises(grpc.RpcError) as e:
            acc.Adjust(pb.AdjustRequest(meta=_meta("x14u"), account="delta", amount_minor=100, reason="r", reopen=True))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("reopen:")
        # breaker N14 F2: dated in an ended month it rewrote issued statements; bad input naming at.
        from rating_core.accounts.importer import month_start
        from rating_core.accounts.operations import now_ms

        ended = pb.OperationMeta(request_id="x14w", actor="test", at_ms=month_start(now_ms()) - 86_400_000)
        with pytest.raises(grpc.RpcError) as e:
            acc.ReversePayment(pb.AdjustRequest(meta=ended, account="delta", amount_minor=100, reason="bounced",
                                                reopen=True))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("at: ")
        assert "a month that has ended" in e.value.details()
        r = acc.ReversePayment(pb.AdjustRequest(meta=_meta("x14v"), account="delta", amount_minor=91_6400,
                                                reason="bounced", reopen=True))
        assert json.loads(r.detail_json)["amount_minor"] == 91_6400 and "reopened_minor" in json.loads(r.detail_json)
        assert r.balance.credit_minor == 480_0000
        evs = acc.ListEvents(pb.ListEventsRequest(account="beta")).events
        assert [x.operation for x in evs] == ["open_account", "subscribe", "top_up", "adjust", "refund"]
        assert evs[0].actor == "test"
        # Paged by the last event listed (newcomer 12-02 F8: by time, a page repeated its last millisecond).
        paged, after = [], 0
        while page := acc.ListEvents(pb.ListEventsRequest(account="beta", limit=2, after_seq=after)).events:
            paged += page
            after = page[-1].seq
        assert [x.seq for x in paged] == [x.seq for x in evs]
        with pytest.raises(grpc.RpcError) as e:
            acc.ListEvents(pb.ListEventsRequest(account="beta", after_seq=2**62))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("after_seq:")
        stream = acc.WatchEvents(pb.WatchEventsRequest(account="beta"))
        first = next(stream)
        assert first.operation == "open_account" and json.loads(first.after_json)["company"] == "Beta"
        stream.cancel()
        # A seq no event has yet (int64 max: breaker, INTERNAL; then a silent endless stream, breaker8 F6)
        # and a negative one are bad input; 0 is every event.
        for bad in (2**63 - 1, -5):
            with pytest.raises(grpc.RpcError) as e:
                next(acc.WatchEvents(pb.WatchEventsRequest(after_seq=bad), timeout=5))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("after_seq:")
        stream = acc.WatchEvents(pb.WatchEventsRequest(after_seq=0))
        assert next(stream).seq == 1
        stream.cancel()


def test_get_balance_shows_the_statements_position(server):
    """Breaker N12 F15 / newcomer N13 F3: GetBalance had no counterpart of
    `accounts balance`'s ``statements`` (the ledger's credit never holds
    rental and fees), nor the bill payments no statement applied (what
    ReversePayment may take back). Balance.statements holds them, as
    GetStatement shows the month; an operation's balance leaves it unset."""
    from rating400.v1 import billing_pb2, billing_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as ch:
        acc = accounts_pb2_grpc.AccountServiceStub(ch)
        bill = billing_pb2_grpc.BillingServiceStub(ch)
        acc.OpenAccount(pb.OpenAccountRequest(meta=_meta("gb1"), account="gbal", company="GB Co."), timeout=10)
        acc.Subscribe(pb.SubscribeRequest(meta=_meta("gb2"), account="gbal", package="prepaid_480_1y"), timeout=10)
        paid = acc.Pay(pb.AmountRequest(meta=_meta("gb3"), account="gbal", amount_minor=500_0000), timeout=10)
        assert not paid.balance.HasField("statements")
        b = acc.GetBalance(pb.GetAccountRequest(account="gbal"), timeout=10)
        assert b.credit_minor == 480_0000 and b.HasField("statements")
        st = bill.GetStatement(billing_pb2.StatementRequest(account="gbal", month=b.statements.month), timeout=10)
        assert b.statements.month == time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))
        carried = b.statements.payments_carried_out_minor
        assert 0 < carried == st.payments_carried_out_minor <= 500_0000, (b.statements, st)
        assert (b.statements.credit_minor, b.statements.unpaid_minor) == (st.closing_credit_minor, 0)
        with pytest.raises(grpc.RpcError) as e:  # the figure is the reversal's cap
            acc.ReversePayment(pb.AdjustRequest(meta=_meta("gb4"), account="gbal", amount_minor=carried + 100,
                                                reason="typo"), timeout=10)
        assert dict(e.value.trailing_metadata())["rating400-reason"] == "insufficient_payments"
        acc.ReversePayment(pb.AdjustRequest(meta=_meta("gb5"), account="gbal", amount_minor=carried, reason="typo"),
                           timeout=10)
        assert acc.GetBalance(pb.GetAccountRequest(account="gbal"), timeout=10).statements.payments_carried_out_minor \
            == 0


def test_activate_refuses_a_version_lacking_a_package_in_use(server, tmp_path):
    """Breaker N14 F1: a version renaming a package live accounts hold was
    activated; their months were then billed and their calls rated under
    another package. Activate refuses it (the check of `catalog activate`,
    test_catalog_activation), and the active version stays."""
    from rating_core.demo import write_demo_catalog
    from rating400_client._common import compile_request

    catalog = write_demo_catalog(tmp_path / "renamed")
    catalog.write_text(catalog.read_text("utf-8").replace("prepaid_480_1y", "prepaid_480_1y_v2"), "utf-8")
    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as ch:
        cat = catalog_pb2_grpc.CatalogAdminServiceStub(ch)
        active = [v.version for v in cat.ListVersions(catalog_pb2.ListVersionsRequest()).versions if v.active]
        version = cat.Compile(compile_request(catalog), timeout=120).version
        with pytest.raises(grpc.RpcError) as e:
            cat.Activate(catalog_pb2.ActivateRequest(version=version), timeout=30)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, e.value.details()
        assert dict(e.value.trailing_metadata())["rating400-reason"] == "package_in_use"
        assert e.value.details().startswith(f"package_in_use: version {version} lacks package 'prepaid_480_1y', "
                                            "held by "), e.value.details()
        assert "accounts change-package" in e.value.details()
        assert [v.version for v in cat.ListVersions(catalog_pb2.ListVersionsRequest()).versions if v.active] == active


MANY = 50_000  # live accounts, each with one active number and a verified destination


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """A server whose customer layer holds MANY live accounts (written in one
    transaction before it starts, as a migrated platform's would be)."""
    from rating_core.accounts import Accounts
    from rating_core.ledger import customers as C
    from rating_core.store import Ledger, Store

    root = tmp_path_factory.mktemp("manysrv")
    store_dir, _ = make_store(root)
    ledger = Ledger(store_dir)
    ops = Accounts(Store(store_dir, create=False), ledger)
    now = int(time.time() * 1000)
    fee = ops.catalog()["package_rules"]["prepaid_480_1y"]["fee"]

    def fn(tx):
        for i in range(MANY):
            aid, number = f"acct{i:06d}", f"400{i:07d}"
            acc = C.Account(id=aid, row=i, company=f"Company {i}", created_ms=now, realname="verified",
                            package="prepaid_480_1y", package_start_ms=now - 86_400_000,
                            period_end_ms=now + 300 * 86_400_000, opening_credit_minor=fee)
            tx.txn.put(aid.encode(), C.encode(acc), db=ops.db[C.ACCOUNTS_DB])
            num = C.Number(number, "standard", "active", now, [("active", now)], account=aid, home_city="Shenzhen",
                           destinations=[C.Destination(f"137{i:08d}", now, True, "bill", now)])
            tx.txn.put(C.number_key(number), C.encode(num), db=ops.db[C.NUMBERS_DB])
            tx.txn.put(C.account_number_key(aid, number), b"", db=ops.db[C.ACCOUNT_NUMBERS_DB])
        C.put_counter(tx.txn, ops.db[C.META_DB], C.NEXT_ROW, MANY)
        return ops._result(tx)

    ops._run("setup", "setup", "test", now, fn)
    ledger.close()
    s = Server(store_dir, root, env={"RATING400_SWEEP_SECONDS": "3600"}).start()
    yield s.info
    s.stop()


def test_routing_operations_reach_both_workers_within_a_second_at_many_accounts(many):
    """A bind + verification, a routing plan and an unbind each change a
    number's routing: with MANY live accounts each reaches the next
    Authorize on both workers within 1 s (the incremental view; a full
    rebuild of the view and router at this size takes seconds)."""
    target = f"127.0.0.1:{many['port']}"
    admin = grpc.insecure_channel(target)
    acc = accounts_pb2_grpc.AccountServiceStub(admin)
    number, old, new = f"400{MANY // 2:07d}", f"137{MANY // 2:08d}", "13900000001"

    def routed(c) -> str:
        d = c.authorize(number, CALLER)
        return ",".join(x.number for x in d.destinations) if d.allow else f"deny {d.reason}"

    def all_see(clients, want) -> float:
        t0 = time.monotonic()
        while True:
            seen = [routed(c) for c in clients]
            if all(s == want for s in seen) or time.monotonic() - t0 > 3:
                print(f"every connection saw {want} after {time.monotonic() - t0:.3f} s")
                assert all(s == want for s in seen), seen
                return time.monotonic() - t0
            time.sleep(0.02)

    clients = [Client(target, timeout=5, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(CONNECTIONS)]
    try:
        for c in clients:
            c.wait_ready()
        mine = _established_on(many["port"])
        per_worker = [len(_sockets(pid) & set(mine)) for pid in many["workers"]]
        assert len(per_worker) == 2 and all(n >= 1 for n in per_worker), per_worker
        assert all_see(clients, old) < 5  # both workers serve the MANY accounts

        acc.BindDestination(pb.DestinationRequest(meta=_meta("m1"), number=number, destination=new))
        acc.VerifyDestination(pb.DestinationRequest(meta=_meta("m2"), number=number, destination=new, proof="BILL"))
        assert all_see(clients, f"{old},{new}") <= 1.0

        plan = {"groups": {"desk": {"destinations": [{"number": new}, {"number": old}]}}, "rules": [{"group": "desk"}]}
        got = acc.SetRouting(pb.SetRoutingRequest(meta=_meta("m3"), number=number, plan_json=json.dumps(plan)))
        assert "warnings" not in json.loads(got.detail_json)  # both bound and verified
        assert all_see(clients, f"{new},{old}") <= 1.0

        acc.UnbindDestination(pb.DestinationRequest(meta=_meta("m4"), number=number, destination=new))
        assert all_see(clients, old) <= 1.0
        # The plan set again names the destination no longer bound (detail_json's warnings).
        got = acc.SetRouting(pb.SetRoutingRequest(meta=_meta("m5"), number=number, plan_json=json.dumps(plan)))
        assert json.loads(got.detail_json)["warnings"][0].startswith(f"not bound to {number}: {new};")
    finally:
        for c in clients:
            c.close()
    admin.close()
