"""Committing with many live accounts: a batch reads the balances of the
accounts it reaches (``Rater.accounts_of``), not every account's, and
rates, debits and stores exactly what reading every balance would."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from rating_core.accounts import Accounts
from rating_core.engine import Engine, plain
from rating_core.ledger import customers as C
from rating_core.store import Ledger
from stores import compiled
from test_view_incremental import CATALOG, T0  # the same products: pre_480 and payg

N = 3_000  # live accounts, each with one active number


def make_store(root):
    """N live accounts (every third pay-as-you-go), written in one transaction."""
    root.mkdir()
    store = compiled(root, CATALOG)
    ledger = Ledger(root / "store")
    ops = Accounts(store, ledger)

    def fn(tx):
        for i in range(N):
            aid, number = f"acct{i:05d}", f"400{i:07d}"
            payg = i % 3 == 0
            acc = C.Account(id=aid, row=i, company=f"Company {i}", created_ms=T0, realname="verified",
                            package="payg" if payg else "pre_480", package_start_ms=T0 - 86_400_000,
                            period_end_ms=T0 + 300 * 86_400_000, opening_credit_minor=0 if payg else 480 * 10_000)
            tx.txn.put(aid.encode(), C.encode(acc), db=ops.db[C.ACCOUNTS_DB])
            num = C.Number(number, "standard", "active", T0, [("active", T0)], account=aid, home_city="Shenzhen",
                           destinations=[C.Destination(f"137{i:08d}", T0, True, "bill", T0)])
            tx.txn.put(C.number_key(number), C.encode(num), db=ops.db[C.NUMBERS_DB])
            tx.txn.put(C.account_number_key(aid, number), b"", db=ops.db[C.ACCOUNT_NUMBERS_DB])
        C.put_counter(tx.txn, ops.db[C.META_DB], C.NEXT_ROW, N)
        return ops._result(tx)

    ops._run("setup", "setup", "test", T0, fn)
    ledger.close()
    return root / "store"


def batch(prefix: str, rows: list[int], minutes: int = 7) -> pa.Table:
    calls = []
    for j, i in enumerate(rows):
        start = T0 + 60_000 * j
        calls.append({"call_id": f"{prefix}-{j}", "caller": "13812345678", "number": f"400{i:07d}",
                      "forwarded_to": f"137{i:08d}", "start": start, "agent_answer": start + 2_000,
                      "end": start + 2_000 + minutes * 60_000, "hangup_cause": "normal_clearing"})
    calls.append({**calls[0], "call_id": f"{prefix}-unknown", "number": "4009999999"})  # reaches no account
    return pa.Table.from_pylist(calls)


def test_a_commit_reads_only_the_accounts_it_reaches_and_rates_as_reading_all(tmp_path, monkeypatch):
    engine = Engine.open(make_store(tmp_path / "some"))
    peer = Engine.open(make_store(tmp_path / "all"))  # the same commits, reading every balance
    monkeypatch.setattr(peer.rater, "accounts_of", lambda prepared: None)
    rater, ledger = engine.rater, engine.ledger
    assert len(rater.meta["accounts"]) == N
    rng = np.random.default_rng(7)
    for k in range(4):
        rows = sorted(set(rng.integers(0, N, 20).tolist()) | {5}) + [5]  # an account twice in a batch
        table = batch(f"b{k}", rows, minutes=7 + 50 * k)  # later batches run prepaid credit out
        prepared = rater.prepare(table)
        reached = rater.accounts_of(prepared)
        assert reached.tolist() == sorted(set(rows))
        every = ledger.opening_state(rater.snapshot)
        some = ledger.opening_state(rater.snapshot, accounts=reached)
        for name in every:  # the same balances where the batch reaches
            assert np.array_equal(every[name][reached], some[name][reached]), name
        got, want = engine.rate_and_commit(table), peer.rate_and_commit(table)
        assert plain(got.rated).equals(plain(want.rated))
        assert got.summary == want.summary and got.summary.rejected == 1  # the unknown number
        assert plain(engine.rate(table).rated).equals(plain(peer.rate(table).rated))  # dry, after
    mine, theirs = ledger.opening_state(rater.snapshot), peer.ledger.opening_state(peer.rater.snapshot)
    for name in mine:  # every stored balance the same
        assert np.array_equal(mine[name], theirs[name]), name
    assert (mine["credit_left"] < 480 * 10_000).sum() > 20  # the commits did debit
    engine.close()
    peer.close()
