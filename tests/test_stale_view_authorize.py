"""A reserving Authorize under a view of the customer layer older than the
account's stored balance (breaker 12-02, router finding).

A server worker refreshes its view of the customer layer every 0.1 s. A
package change starts a new package period; the ledger keeps one balance
per period start, written by the first money operation of the period. The
router read a stored balance of a period its view did not know yet as a
renewal and granted against its (old) package's catalog opening instead:
for up to 0.1 s after a change an account could be granted a whole fresh
opening it does not have. The router now refuses to decide on such a view
(``StaleView``, nothing held) and the engine refreshes and authorizes again
under the latest view (as ``Engine.commit_group`` commits again:
``tests/test_stale_view_commit.py``).

The story (1 yuan = 10000 minor units), on ``test_late_cdrs``' catalog:
``acme`` on ``pre_a`` from 2026-10-01 (fee 480.00, ``std`` 0.12/min); an
11-01 call of 10 minutes leaves 478.80. On 11-15 acme changes to ``pre_b``
(fee 600.00, ``cheap`` 0.10/min): 478.80 carried + 600.00 = 1078.80, and a
refund of 1077.80 leaves 1.00 -- stored for the new period's start.
"""
from __future__ import annotations

import asyncio

import pyarrow as pa
import pytest

from clock import clock_at
from test_late_cdrs import NUMBER, at, cdr, setup_store

CALLER = "13812345678"
YUAN = 10_000


def _story(tmp_path, refund_to: int | None = 1 * YUAN):
    """An engine opened before the change (its view: acme on pre_a from
    10-01, 478.80), then the change to pre_b on 11-15 and a refund down to
    ``refund_to`` (None: no refund, so nothing is stored for the new period).
    Returns (engine, accounts)."""
    from rating_core.accounts import Accounts
    from rating_core.engine import Engine
    from rating_core.store import Store

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    ledger.close()
    engine = Engine.open(store)
    live = Accounts(Store(store), engine.ledger)
    engine.rate_and_commit(pa.Table.from_pylist([cdr("first", at(11, 1), 10)]))
    assert live.balance("acme")["credit_minor"] == 4788 * 1000  # 480.00 - 1.20
    with clock_at(at(11, 20)):
        live.change_package("to-pre-b", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
        if refund_to is not None:
            credit = live.balance("acme")["credit_minor"]
            assert credit == 10788 * 1000  # 478.80 carried + 600.00
            live.refund("most", "acme", credit - refund_to, "customer leaves", at_ms=at(11, 15, 1))
    return engine, live


def test_a_stale_engine_authorizes_against_the_stored_credit_of_the_new_period(tmp_path, rented_catalog):
    """Authorize at 11-16 with a call id through the engine whose view is
    from before the change. Hand: 1.00 of credit at pre_b's 0.10/min pays
    600 s, held 1.00 (10000), rate ``cheap``. Before: the stale view read the
    stored 1.00 of the 11-15 period as a renewal and granted against
    pre_a's catalog opening 480.00: the quota's 3600 s at 0.12/min, 7.20
    held (72000) against 1.00 the account has."""
    engine, live = _story(tmp_path)
    try:
        stale = engine.router
        d = engine.authorize(NUMBER, CALLER, at_ms=at(11, 16), call_id="c1")
        assert (d.allow, d.max_duration_seconds, d.reserved_minor, d.rate) == (True, 600, 1 * YUAN, "cheap")
        assert engine.router is not stale  # refreshed to the latest view
        b = live.balance("acme")
        assert (b["credit_minor"], b["reserved_minor"], b["available_minor"]) == (1 * YUAN, 1 * YUAN, 0)
        # The query answer (no call id) too: the next call finds nothing left.
        q = engine.authorize(NUMBER, CALLER, at_ms=at(11, 16, 11))
        assert (q.allow, q.reason, q.credit_minor, q.held_minor) == (False, "out_of_credit", 1 * YUAN, 1 * YUAN)
    finally:
        engine.close()


def test_a_stale_router_decides_nothing_and_holds_nothing(tmp_path, rented_catalog):
    """A Router alone (no engine to refresh it) on the view from before the
    change raises ``StaleView`` (a ``Contended``: UNAVAILABLE, nothing
    written) rather than grant 3600 s / 7.20 from pre_a's opening; nothing
    is held for acme."""
    from rating_core.errors import Contended, StaleView
    from rating_core.ledger import reservations

    engine, live = _story(tmp_path)
    try:
        router = engine.router
        with pytest.raises(StaleView) as e:
            router.authorize(NUMBER, CALLER, at_ms=at(11, 16), call_id="c1")
        assert isinstance(e.value, Contended)
        with pytest.raises(StaleView):
            router.authorize(NUMBER, CALLER, at_ms=at(11, 16))  # the query answer as well
        with engine.ledger.live.begin() as txn:
            assert reservations.hold_of(engine.ledger, txn, b"acme") == (0, 0, 0)
        assert live.balance("acme")["available_minor"] == 1 * YUAN
    finally:
        engine.close()


def test_an_interim_under_a_stale_view_extends_against_the_real_credit(tmp_path, rented_catalog):
    """A call authorized at 11-16 10:00 before the change (pre_a, 478.80):
    3600 s (the quota), 7.20 held. Then the change (credit 1078.80,
    available 1071.60) and a refund down to available 1.00 (credit 8.20 =
    7.20 held + 1.00). An interim at 10:30
    (1800 s used) through the engine of the old view. Hand: the call's own
    hold plus what is available, 7.20 + 1.00 = 8.20, pays 68 whole minutes
    at the call's 0.12/min (8.16; 69 would cost 8.28): the grant becomes
    4080 s (below 1800 + the 3600 s quota), 8.16 held, 0.04 left. Before:
    the stale view budgeted pre_a's opening 480.00 and extended to 1800 +
    3600 = 5400 s, holding 10.80 of the 8.20 the account has."""
    from rating_core.accounts import Accounts
    from rating_core.engine import Engine
    from rating_core.store import Store

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    ledger.close()
    engine = Engine.open(store)
    try:
        live = Accounts(Store(store), engine.ledger)
        engine.rate_and_commit(pa.Table.from_pylist([cdr("first", at(11, 1), 10)]))  # 478.80 left
        d = engine.authorize(NUMBER, CALLER, at_ms=at(11, 16), call_id="x")
        assert (d.max_duration_seconds, d.reserved_minor) == (3600, 72 * 1000)
        engine.call_event("x", NUMBER, "answered", destination="13700000001", caller=CALLER, at_ms=at(11, 16))
        with clock_at(at(11, 20)):
            live.change_package("to-pre-b", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
            b = live.balance("acme")
            assert (b["credit_minor"], b["available_minor"]) == (10788 * 1000, 10716 * 1000)  # 478.80 + 600; - 7.20
            live.refund("most", "acme", b["available_minor"] - 1 * YUAN, "customer leaves", at_ms=at(11, 15, 1))
        assert live.balance("acme")["credit_minor"] == 82 * 1000
        half = at(11, 16) + 1800 * 1000
        assert engine.interim("x", at_ms=half) == 4080
        b = live.balance("acme")
        assert (b["reserved_minor"], b["available_minor"]) == (816 * 100, 4 * 100)
    finally:
        engine.close()


def test_a_view_ahead_of_the_stored_balance_opens_the_new_period(tmp_path, rented_catalog):
    """The reverse: the view knows the 11-15 period and nothing is stored
    for it yet (no refund; the stored 478.80 is of 10-01). The catalog
    opening of the view's period is the truth then: 478.80 carried + 600.00
    = 1078.80, and a call is granted the quota, 3600 s at 0.10/min = 6.00
    held -- no refresh asked for."""
    engine, live = _story(tmp_path, refund_to=None)
    try:
        engine.refresh()
        fresh = engine.router
        d = engine.authorize(NUMBER, CALLER, at_ms=at(11, 16), call_id="c1")
        assert (d.allow, d.max_duration_seconds, d.reserved_minor, d.rate) == (True, 3600, 6 * YUAN, "cheap")
        assert engine.router is fresh
        assert live.balance("acme")["available_minor"] == 10788 * 1000 - 6 * YUAN
    finally:
        engine.close()


def test_the_server_refreshes_on_the_engine_thread_and_authorizes_again(tmp_path, rented_catalog):
    """The gRPC Authorize runs on the loop, which never refreshes the engine
    itself: ``EngineHost.authorize`` meets the stale view, refreshes on the
    engine thread and authorizes again: 600 s, 1.00 held (the first test's
    figures)."""
    from rating400_server.engine import EngineHost

    engine, live = _story(tmp_path)

    async def go():
        host = EngineHost(engine)
        try:
            return await host.authorize(NUMBER, CALLER, at_ms=at(11, 16), call_id="c1")
        finally:
            host.executor.shutdown(wait=True)
            host.reads.shutdown(wait=True)
            host.edge.shutdown(wait=True)

    try:
        d = asyncio.run(go())
        assert (d.allow, d.max_duration_seconds, d.reserved_minor) == (True, 600, 1 * YUAN)
    finally:
        engine.close()
