"""A commit under a view of the customer layer older than the layer
(breaker 2026-12-02 F0, HIGH).

An engine keeps a view of the live accounts (packages, periods, numbers)
and refreshes it on a tick (a server worker: every 0.1 s) or never (a long
``rate --commit`` job). An account operation between two refreshes left
the view behind: the commit read the stored balance of the account's new
period as a renewal it did not know of, and wrote the old catalog opening
back over it -- a credit refunded in full came back and could be refunded
again. The commit now reads the layer's generation inside its write
transaction and, when its view is behind, writes nothing, refreshes and
commits again under the latest view (``Engine.commit_group``).
"""
from __future__ import annotations

import pyarrow as pa

from clock import clock_at
from test_late_cdrs import at, cdr, setup_store


def test_f0_an_engine_opened_before_a_change_does_not_undo_a_refund(tmp_path, rented_catalog, capsys):
    """An engine opened before a package change (a server worker between two
    refresh ticks, a long ``rate --commit`` job) commits a late call of the old
    period after the change and a refund of the whole credit: pre_a 480.00 ->
    pre_b (+600.00) on 11-15 less an 11-01 call of 1.20 = 1078.80, refunded
    1078.80 on 11-20, then the 11-10 call of 1.20 (std). Hand: credit 0 (the call is arrears: prepaid
    credit never goes below zero). Actual: the commit writes the credit back to
    1078.80, which can be refunded a second time."""
    from rating_core.engine import Engine

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    ledger.close()
    engine = Engine.open(store)
    try:
        from rating_core.accounts import Accounts
        from rating_core.store import Store

        live = Accounts(Store(store), engine.ledger)
        engine.rate_and_commit(pa.Table.from_pylist([cdr("first", at(11, 1), 10)]))  # November billed here: 478.80
        with clock_at(at(11, 20)):
            live.change_package("to-pre", "acme", "pre_b", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
            live.refund("all", "acme", 10788 * 1000, "customer leaves", at_ms=at(11, 20))
        assert live.balance("acme")["credit_minor"] == 0
        engine.rate_and_commit(pa.Table.from_pylist([cdr("late", at(11, 10), 10)]))
        assert live.balance("acme")["credit_minor"] == 0
    finally:
        engine.close()


def test_a_stale_engine_commits_a_group_under_the_latest_view(tmp_path, rented_catalog):
    """The same through ``commit_tables`` (a stream's consecutive messages in
    one transaction): two requests, the account changed to ``pay`` since the
    engine opened. Both calls after the change are rated under ``pay`` (the
    view the commit refreshed to), not under ``pre_a``, and the engine's
    rater is the refreshed one."""
    from rating_core.accounts import Accounts
    from rating_core.engine import Engine
    from rating_core.store import Store

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    ledger.close()
    engine = Engine.open(store)
    try:
        live = Accounts(Store(store), engine.ledger)
        stale = engine.rater
        with clock_at(at(11, 20)):
            live.change_package("to-pay", "acme", "pay", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
        results, error = engine.commit_tables([pa.Table.from_pylist([cdr("a", at(11, 16), 10)]),
                                               pa.Table.from_pylist([cdr("b", at(11, 17), 10)])])
        assert error is None
        assert [r["package"] for res in results for r in res.rated.to_pylist()] == ["pay", "pay"]
        assert engine.rater is not stale
    finally:
        engine.close()


def test_a_commit_the_layer_keeps_moving_under_writes_nothing_and_says_retry(tmp_path, rented_catalog, monkeypatch):
    """breaker 12-02 #4 F3: under steady account operations on one account a
    stream's commit found the layer newer than its view on every attempt and
    the server answered INTERNAL. The commit writes nothing and raises
    ``Contended`` (a ``StoreError``), which the server answers UNAVAILABLE, a
    status clients retry (a commit is exactly once by call id). Here the
    engine's refresh is held back, so every attempt finds its view behind."""
    from rating_core.accounts import Accounts
    from rating_core.engine import Engine
    from rating_core.errors import Contended
    from rating_core.store import Store
    from rating400_server.services import _code

    store, ops, ledger = setup_store(tmp_path, "pre_a")
    ledger.close()
    engine = Engine.open(store)
    try:
        live = Accounts(Store(store), engine.ledger)
        with clock_at(at(11, 20)):
            live.change_package("to-pay", "acme", "pay", effective_ms=at(11, 15, 0), at_ms=at(11, 15, 0))
        monkeypatch.setattr(engine, "refresh", lambda: False)
        results, error = engine.commit_tables([pa.Table.from_pylist([cdr("a", at(11, 16), 10)])])
        assert results == [] and isinstance(error, Contended)
        assert engine.ledger.stored("acme") is None or live.balance("acme")["credit_minor"] == 480 * 10_000
        assert _code(error) == "UNAVAILABLE"
    finally:
        engine.close()
