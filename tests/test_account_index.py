"""One account's committed calls are read through the ledger's (account,
month) batch index, not by decoding every committed batch, and give the
same calls as the full scan; batches committed before the index existed
are still read."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from rating_core.billing.sources import committed_calls
from rating_core.billing.statements import month_bounds, month_index
from rating_core.demo import demo_cdrs, write_demo_catalog
from rating_core.engine import Engine
from rating_core.ledger import formats, records
from rating_core.store import Store


@pytest.fixture
def engine(tmp_path):
    store = Store(tmp_path / "store")
    store.activate(store.compile(write_demo_catalog(tmp_path / "catalog")))
    del store
    e = Engine.open(tmp_path / "store", threads=1)
    yield e
    e.close()


def _by_account(cdrs: pa.Table) -> list[pa.Table]:
    """The CDRs in batches of one account's 400 numbers each (demo numbers
    belong to one account each), so the index has something to skip."""
    numbers = cdrs.column("number")
    return [cdrs.filter(pc.equal(numbers, n)) for n in pc.unique(numbers).to_pylist()]


def _months(calls: pa.Table) -> list[int]:
    m = month_index(calls.column("start_ms").to_numpy())
    return sorted(set(m.tolist()))


def _expect(every: pa.Table, account: str, lo: int | None, hi: int | None) -> list[str]:
    mask = pc.equal(every.column("account"), account)
    if lo is not None:
        start = every.column("start_ms")
        mask = pc.and_(mask, pc.and_(pc.greater_equal(start, lo), pc.less(start, hi)))
    return sorted(every.filter(mask).column("call_id").to_pylist())


def test_indexed_reads_equal_the_full_scan(engine):
    cdrs = demo_cdrs(3000, 21)
    for part in _by_account(cdrs):
        engine.rate_and_commit(part)
    every = committed_calls(engine.ledger)
    assert every.num_rows > 0
    accounts = sorted(set(every.column("account").to_pylist()))
    with engine.ledger.env.begin() as txn:
        n_batches = txn.stat(engine.ledger.db[formats.CALL_BATCHES])["entries"]
    assert len(accounts) > 1 and n_batches > len(accounts) - 1
    for account in accounts:
        assert sorted(committed_calls(engine.ledger, account=account).column("call_id").to_pylist()) == \
            _expect(every, account, None, None)
        for m in _months(every):
            _, _, lo, hi = month_bounds(m)
            got = committed_calls(engine.ledger, lo, hi, account)
            assert sorted(got.column("call_id").to_pylist()) == _expect(every, account, lo, hi)
            with engine.ledger.env.begin() as txn:
                named = records.account_batches(engine.ledger, txn, account, lo, hi)
            assert len(named) < n_batches  # the other accounts' batches are not read


def test_batches_committed_before_the_index_are_read(engine):
    parts = _by_account(demo_cdrs(2000, 22))
    engine.rate_and_commit(parts[0])
    # As a ledger written by a version without the index: no entries, no mark.
    led = engine.ledger
    with led.env.begin(write=True) as txn:
        txn.drop(led.db[formats.ACCOUNT_BATCHES], delete=False)
        txn.delete(formats.INDEXED_FROM, db=led.db[formats.META])
    for part in parts[1:]:
        engine.rate_and_commit(part)
    every = committed_calls(led)
    with led.env.begin() as txn:
        assert formats.COUNT.unpack(txn.get(formats.INDEXED_FROM, db=led.db[formats.META]))[0] == 2
    for account in sorted(set(every.column("account").to_pylist())):
        got = committed_calls(led, account=account)
        assert sorted(got.column("call_id").to_pylist()) == _expect(every, account, None, None)
        with led.env.begin() as txn:
            assert 1 in records.account_batches(led, txn, account, None, None)  # the legacy batch, read in full


def test_local_month_of_a_start():
    # 2026-10-31 23:59:59.999 and 2026-11-01 00:00 Asia/Shanghai.
    _, _, nov, _ = month_bounds(2026 * 12 + 10)
    got = records.local_months(np.array([nov - 1, nov], np.int64)).tolist()
    assert got == [2026 * 12 + 9, 2026 * 12 + 10]
