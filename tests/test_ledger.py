"""The ledger package: balances in their own units, credit operations,
records, the environments."""
from __future__ import annotations

import gc

import pytest

from rating_core.demo import write_demo_catalog
from rating_core.ledger import AccountTerms, InsufficientCredit, Ledger, month_of
from rating_core.store import Store

BASE = 1_791_590_400_000  # 2026-10-10 00:00 +08:00


@pytest.fixture
def store_dir(tmp_path):
    store = Store(tmp_path / "store")
    store.activate(store.compile(write_demo_catalog(tmp_path / "catalog")))
    del store
    gc.collect()
    return tmp_path / "store"


def test_top_up_debit_and_refusal(store_dir):
    snap = Store(store_dir).open()
    ledger = Ledger(store_dir)
    terms = AccountTerms.from_snapshot(snap, "jinghua_appliances")
    assert (terms.kind, terms.credit_limit_minor) == ("prepaid", 0)
    b = ledger.balance("jinghua_appliances", terms, BASE)
    assert (b.credit_minor, b.reserved_minor, b.available_minor) == (30_000_000, 0, 30_000_000)
    with ledger.write() as w:
        b = ledger.apply_credit(w, "jinghua_appliances", 6_000_000, terms, BASE)  # top-up 600 yuan
    assert b.credit_minor == 36_000_000
    with pytest.raises(InsufficientCredit) as e:
        with ledger.write() as w:
            ledger.apply_credit(w, "jinghua_appliances", -36_000_001, terms, BASE)
    assert (e.value.available_minor, e.value.debit_minor) == (36_000_000, 36_000_001)
    # The refused debit wrote nothing; a debit to exactly zero is allowed.
    with ledger.write() as w:
        assert ledger.apply_credit(w, "jinghua_appliances", -36_000_000, terms, BASE).credit_minor == 0
    ledger.close()
    ledger = Ledger(store_dir)  # durable
    assert ledger.balance("jinghua_appliances", terms, BASE).credit_minor == 0
    ledger.close()


def test_postpaid_accounts_have_a_credit_limit(store_dir):
    snap = Store(store_dir).open()
    payg = next(a for i, a in enumerate(snap.meta["accounts"])
                if AccountTerms.from_snapshot(snap, i).kind == "payg")
    terms = AccountTerms.from_snapshot(snap, payg)
    assert terms.credit_limit_minor > 0
    ledger = Ledger(store_dir)
    b = ledger.balance(payg, terms, BASE)
    assert b.available_minor == b.credit_minor + terms.credit_limit_minor
    ledger.close()


def test_prepaid_credit_expires_in_the_balance(store_dir):
    snap = Store(store_dir).open()
    terms = AccountTerms.from_snapshot(snap, "jinghua_appliances")
    ledger = Ledger(store_dir)
    assert ledger.balance("jinghua_appliances", terms, terms.expiry_ms).available_minor == 0
    ledger.close()


def test_month_of_is_local_time():
    assert month_of(BASE) == 2026 * 12 + 9  # October
    assert month_of(1_793_462_400_000 - 1) == 2026 * 12 + 9  # 2026-10-31 23:59:59.999 +08:00
    assert month_of(1_793_462_400_000) == 2026 * 12 + 10


def test_same_directory_shares_one_environment(store_dir):
    a, b = Ledger(store_dir), Ledger(store_dir)
    assert a.env is b.env and a.live is b.live
    a.close()
    with b.env.begin() as txn:  # still open for the other user
        txn.stat(b.balances)
    b.close()


def test_the_runtime_imports_neither_the_compiler_nor_the_reference():
    import subprocess
    import sys

    code = ("import sys, rating_core.router, rating_core.engine, rating_core.ledger; "
            "print(sorted(m for m in sys.modules if m.startswith(('rating_core.compile', 'rating_core.reference'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_rated_output_has_balances_in_their_own_units(store_dir):
    import pyarrow as pa

    from rating_core.engine import Engine

    engine = Engine.open(store_dir)
    start = BASE + 9 * 3_600_000
    rows = [{"call_id": f"u{n}", "caller": "13812345678", "number": number, "forwarded_to": "02088886666",
             "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 9_000, "end": start + 189_000,
             "hangup_cause": "normal"} for n, number in enumerate(("4008593431", "4000589196"))]
    rated = engine.rate_and_commit(pa.Table.from_pylist(rows)).rated
    kinds = [AccountTerms.from_snapshot(engine.rater.snapshot, a).kind for a in rated.column("account").to_pylist()]
    assert kinds == ["prepaid", "payg"]
    credit = rated.column("credit_after_minor").to_pylist()
    assert credit[0] == 30_000_000 - rated.column("credit_consumed_minor")[0].as_py() and credit[1] is None
    assert rated.column("bundle_left_seconds").to_pylist() == [None, None]
    engine.close()
