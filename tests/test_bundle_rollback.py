"""A catalog rollback of a bundle account's package period: the catalog's
version 2 starts ``acme`` on ``bun_b`` on 11-15 (ending ``bun_a``'s period
of 10-01), then version 1 is made active again, then version 2 again.

The period of 10-01 resumed by the rollback carries on from what it had
used (it is the same period and month: the allowance is not granted
twice), and when it ends again, the usage kept for its month is the whole
of it, so a late CDR of it draws from what the allowance really had left.

Real store and ledger (LMDB), the catalog of ``test_late_cdrs`` without a
customer layer: the account's period is the catalog version's. ``bun_a``:
100 minutes a month, then 0.20 yuan/min; each call 60 or 30 minutes.
"""
from __future__ import annotations

from rating_core.ledger import AccountTerms, Ledger
from rating_core.store import Store
from test_late_cdrs import CATALOG, at, cdr, engine_rows

YUAN = 10_000


def test_a_rolled_back_period_resumes_and_its_late_cdr_draws_what_was_left(tmp_path):
    v1 = CATALOG.replace("PACKAGE", "bun_a")
    v2 = v1.replace("package: bun_a\n    package_start: 2026-10-01", "package: bun_b\n    package_start: 2026-11-15")
    assert v2 != v1
    (tmp_path / "v1.yaml").write_text(v1)
    (tmp_path / "v2.yaml").write_text(v2)
    store = Store(tmp_path / "store")
    first = store.compile(tmp_path / "v1.yaml", activate=True)
    second = store.compile(tmp_path / "v2.yaml")
    root = tmp_path / "store"

    def rate(*calls):
        rated, rejects = engine_rows(root, list(calls))
        assert rejects == []
        return {r["call_id"]: (r["package"], r["bundle_seconds_consumed"], r["overage_minor"]) for r in rated}

    # bun_a, November: 60 of 100 minutes.
    assert rate(cdr("a1", at(11, 5), 60)) == {"a1": ("bun_a", 3600, 0)}
    store.activate(second)
    assert rate(cdr("b1", at(11, 20), 60)) == {"b1": ("bun_b", 3600, 0)}
    # Rolled back: bun_a's period of 10-01 again; 40 of its November minutes
    # are left (the balance says so, and a credit adjustment, as a rerating
    # books, keeps them): 50 minutes draw 40 and pay 10 at 0.20 yuan.
    store.activate(first)
    ledger = Ledger(root)
    try:
        terms = AccountTerms.from_snapshot(Store(root).open(), "acme")
        assert ledger.balance("acme", terms, at(11, 21)).bundle_left_seconds == 40 * 60
        with ledger.write() as w:
            assert ledger.apply_credit(w, "acme", YUAN, terms, at(11, 21)).bundle_left_seconds == 40 * 60
    finally:
        ledger.close()
    assert rate(cdr("a2", at(11, 22), 50)) == {"a2": ("bun_a", 2400, 2 * YUAN)}
    # bun_b again (its commit ends bun_a's period a second time), then bun_a
    # again: November's 100 minutes are all used, 30 minutes pay 6.00 yuan.
    store.activate(second)
    assert rate(cdr("b2", at(11, 21), 10)) == {"b2": ("bun_b", 600, 0)}
    store.activate(first)
    assert rate(cdr("a3", at(11, 23), 30)) == {"a3": ("bun_a", 0, 6 * YUAN)}
    ledger = Ledger(root)
    try:
        assert ledger.stored("acme").package_start_ms == at(10, 1, 0)
    finally:
        ledger.close()
