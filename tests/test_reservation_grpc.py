"""Credit reservation through a real `rating400_server` on loopback, two
worker processes: the issue's 50 concurrent Authorize on 0.50 yuan, an
interim extension and the CDR that settles."""
from __future__ import annotations

import asyncio

import grpc
import pytest

from rating400_client import AsyncClient, Client
from rating_core.ledger import AccountTerms, Ledger
from rating_core.store import Store
from test_reservation import AT, CALLER, CATALOG, LANDLINE, MOBILE, NUMBERS
from demo_server import Server


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsv-grpc")
    (root / "catalog.yaml").write_text(CATALOG)
    Store(root / "store").compile(root / "catalog.yaml", activate=True)
    return root / "store"


@pytest.fixture(scope="module")
def server(store_dir, tmp_path_factory):
    s = Server(store_dir, tmp_path_factory.mktemp("rsv-srv")).start()
    yield s
    s.stop()


def balance(store_dir, account):
    ledger = Ledger(store_dir)
    try:
        terms = AccountTerms.from_snapshot(Store(store_dir).open(), account)
        return ledger.balance(account, terms, AT)
    finally:
        ledger.close()


def test_fifty_concurrent_authorize_over_two_workers(server, store_dir):
    async def main():
        clients = [AsyncClient(server.target, timeout=20, options=[("grpc.use_local_subchannel_pool", 1)])
                   for _ in range(4)]
        try:
            async def ask(i):
                try:
                    return await clients[i % 4].authorize(NUMBERS["tiny"], CALLER, call_id=f"g{i}", at=AT)
                except grpc.RpcError as e:
                    return e
            return await asyncio.gather(*(ask(i) for i in range(50)))
        finally:
            for c in clients:
                await c.close()

    out = asyncio.run(main())
    allowed = [r for r in out if not isinstance(r, Exception) and r.allow]
    refused = [r for r in out if not isinstance(r, Exception) and not r.allow]
    assert [(r.max_duration_seconds, r.reserved_minor, r.rate) for r in allowed] == [(240, 5000, "dear")]
    assert len(refused) == 49 and {r.reason for r in refused} == {"out_of_credit"}
    assert balance(store_dir, "tiny").reserved_minor == 5000

    with Client(server.target, timeout=10) as c:
        # Settle: answered on the dear overflow, cut at its grant, then rated.
        call = next(f"g{i}" for i, r in enumerate(out) if not isinstance(r, Exception) and r.allow)
        c.call_event(call, NUMBERS["tiny"], "answered", destination=MOBILE, caller=CALLER, at=AT)
        c.call_event(call, NUMBERS["tiny"], "ended", at=AT + 240_000)
        r = c.rate_cdr({"call_id": call, "caller": CALLER, "number": NUMBERS["tiny"], "forwarded_to": MOBILE,
                        "start": AT, "ivr_answer": AT, "agent_answer": AT, "end": AT + 240_000})
        assert (r.rated_cdr.charge_minor, r.rated_cdr.overage_minor) == (5000, 0)
        # balances in their own units: prepaid credit present, no bundle balance
        assert r.rated_cdr.HasField("credit_after_minor") and r.rated_cdr.credit_after_minor == 0
        assert not r.rated_cdr.HasField("bundle_left_seconds")
    b = balance(store_dir, "tiny")
    assert (b.credit_minor, b.reserved_minor, b.open_reservations) == (0, 0, 0)


def test_interim_extends_and_a_query_holds_nothing(server, store_dir):
    with Client(server.target, timeout=10) as c:
        q = c.authorize(NUMBERS["owes"], CALLER, at=AT)  # no call id: a query
        assert q.allow and q.reserved_minor == 0 and balance(store_dir, "owes").reserved_minor == 0
        d = c.authorize(NUMBERS["owes"], CALLER, call_id="i1", at=AT)
        assert d.allow and d.reserved_minor > 0 and balance(store_dir, "owes").reserved_minor == d.reserved_minor
        assert [x.number for x in d.destinations] == [LANDLINE, MOBILE]
        e = c.call_event("i1", NUMBERS["owes"], "interim", at=AT + 60_000)
        assert e.accepted and e.max_duration_seconds >= d.max_duration_seconds
        gone = c.call_event("never-authorised", NUMBERS["owes"], "interim", at=AT)
        assert not gone.accepted and gone.max_duration_seconds == 0
