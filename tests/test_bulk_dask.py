"""The Dask bulk job (rating_core.bulk_dask) on a real LocalCluster of
worker processes gives the results of rating the whole input at once:
every rated row, every reject, the summary and the closing balances."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rating_core import cdr
from rating_core.demo import demo_cdrs, demo_store, write_demo_catalog
from rating_core.rater import Rater
from rating_core.store import Store

distributed = pytest.importorskip("distributed")

N = 30_000


@pytest.fixture(scope="module")
def cluster():
    # Two single-threaded worker processes (this machine has 2 cores).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as c, distributed.Client(c) as client:
        yield client


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return demo_store(tmp_path_factory.mktemp("dask"))


def plain(table):
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(cols, names=table.column_names)


def test_dask_job_same_as_one_machine(cluster, store, tmp_path):
    from rating_core import bulk
    from rating_core.bulk_dask import ACCOUNT_STATE, rate_on_dask

    store_dir, s = store
    t = demo_cdrs(N, seed=12)
    # A call id retransmitted in a later file, first copy malformed in another.
    again = t.slice(5, 1)
    bad = t.slice(20_000, 1).set_column(3, "forwarded_to", pa.array(["x"]))
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.concat_tables([bad, t.slice(0, 12_000)]), src / "a.parquet", row_group_size=4_000)
    pq.write_table(pa.concat_tables([t.slice(12_000), again]), src / "b.parquet", row_group_size=5_000)
    whole = pa.concat_tables([pq.read_table(src / "a.parquet"), pq.read_table(src / "b.parquet")])

    rater = Rater(s.open(), threads=2)
    opening = rater.opening_state()
    state = {k: v.copy() for k, v in opening.items()}
    mem = rater.rate(whole, state)

    got_state = {k: v.copy() for k, v in opening.items()}
    result = rate_on_dask(cluster, [src], store_dir, tmp_path / "rated", tmp_path / "rejects.csv",
                          state=got_state, unit_rows=6_000)
    assert result.partitions == 8 and len(result.files) > 1
    rated = plain(pq.read_table(tmp_path / "rated")).sort_by("call_id")
    want = plain(bulk.billing_view(mem.rated)).sort_by("call_id")
    assert rated.num_rows == want.num_rows == result.summary.rated
    money = set(cdr.RATED_MINOR_NAMES.values())  # named with their unit, as the single-machine job's
    assert money <= set(rated.column_names) and not set(cdr.RATED_MINOR_NAMES) & set(rated.column_names)
    # Each reject and rated row names its Parquet file and its row within it, from 1.
    first = {str((src / "a.parquet").absolute()): 0, str((src / "b.parquet").absolute()): 12_001}
    over_all = [first[f] + r for f, r in zip(rated.column("file").to_pylist(), rated.column("row").to_pylist())]
    rated = rated.set_column(rated.schema.get_field_index("row"), "row", pa.array(over_all, pa.int64()))
    for name in want.column_names:
        assert rated.column(name).equals(want.column(name)), name
    rejects = cdr.read_table(tmp_path / "rejects.csv")
    assert set(rejects.column("file").to_pylist()) == set(first)
    index = [first[f] + r - 1 for f, r in zip(rejects.column("file").to_pylist(), rejects.column("row").to_pylist())]
    assert index == mem.rejects.column("row").to_pylist()
    assert rejects.column("reason").to_pylist() == mem.rejects.column("reason").to_pylist()
    s1, s2 = result.summary, mem.summary
    assert (s1.rows_in, s1.rated, s1.rejected, s1.duplicates, s1.charge) == \
        (s2.rows_in, s2.rated, s2.rejected, s2.duplicates, s2.charge)
    assert s1.duplicates >= 1 and s1.rejects_by_reason == s2.rejects_by_reason
    for k in ACCOUNT_STATE:  # the usage table's closing counts are not merged back (bulk_dask)
        assert np.array_equal(got_state[k], state[k]), k


def test_dask_job_with_live_accounts_same_as_one_machine(cluster, tmp_path):
    """After `accounts import` the live accounts' tables are the ones in
    force: they ship to the workers with the job, so the Dask job equals the
    single-machine job on the same live view (a number suspended in the
    live layer, an account topped up)."""
    from rating_core import bulk
    from rating_core.accounts import Accounts, open_view
    from rating_core.accounts.importer import import_catalog
    from rating_core.bulk_dask import rate_on_dask
    from rating_core.store import Ledger

    catalog = write_demo_catalog(tmp_path / "catalog")
    s = Store(tmp_path / "store")
    s.activate(s.compile(catalog))
    t = demo_cdrs(8_000, seed=5)
    numbers = pa.table({"n": t.column("number")}).group_by("n").aggregate([("n", "count")]).sort_by(
        [("n_count", "descending")]).column("n").to_pylist()
    ledger = Ledger(tmp_path / "store")
    try:
        accounts = Accounts(s, ledger)
        assert import_catalog(accounts, catalog)["imported"]
        # Suspended from before the first call (a call made before a suspension is rated: README "Late CDRs").
        first_call = pc.min(t.column("start")).as_py()
        first_ms = first_call if isinstance(first_call, int) else int(first_call.timestamp() * 1000)
        accounts.number_transition("r-suspend", numbers[0], "suspend", reason="test", at_ms=first_ms - 1)
        view = open_view(s, ledger.env, None)
        assert type(view).__name__ == "LiveSnapshot"
        rater = Rater(view, threads=2)
        state = ledger.opening_state(view)
    finally:
        ledger.close()
    src = tmp_path / "in.parquet"
    pq.write_table(t, src, row_group_size=2_000)
    one = {k: v.copy() for k, v in state.items()}
    job = bulk.rate_dataset([src], rater, one, tmp_path / "one.parquet", tmp_path / "one.csv")
    suspended = "number: number_not_active"
    by_catalog = Rater(s.open()).rate(t).summary.rejects_by_reason.get(suspended, 0)
    assert job.summary.rejects_by_reason.get(suspended, 0) > by_catalog  # the live suspension counts

    result = rate_on_dask(cluster, [src], tmp_path / "store", tmp_path / "rated", tmp_path / "rejects.csv",
                          unit_rows=3_000)
    rated = plain(pq.read_table(tmp_path / "rated")).sort_by("call_id")
    want = plain(pq.read_table(tmp_path / "one.parquet")).sort_by("call_id")
    assert rated.num_rows == want.num_rows == result.summary.rated
    for name in want.column_names:
        assert rated.column(name).equals(want.column(name)), name
    s1, s2 = result.summary, job.summary
    assert (s1.rows_in, s1.rated, s1.rejected, s1.duplicates, s1.charge) == \
        (s2.rows_in, s2.rated, s2.rejected, s2.duplicates, s2.charge)
    assert s1.rejects_by_reason == s2.rejects_by_reason
    for k in one:
        assert np.array_equal(result.state[k], one[k]), k


@pytest.mark.parametrize("pass_through", [False, True])
def test_dask_job_after_a_commit_same_as_one_machine(cluster, tmp_path, pass_through):
    """A ledger holding committed calls: the Dask job answers them with
    their stored results, flagged ``replayed``, as the single-machine dry job
    does (README "CDR input"), and rates the rest from the ledger's balances
    after them: the same rows, rejects (a committed call sent with other
    content is ``committed_differently``; a second copy of a committed call
    a duplicate), summary and closing balances. Before, the Dask job rated
    the committed calls again."""
    from rating_core import bulk
    from rating_core.accounts import open_view
    from rating_core.bulk_dask import ACCOUNT_STATE, rate_on_dask
    from rating_core.demo import demo_store
    from rating_core.engine import Engine, Replays
    from rating_core.store import Ledger

    store_dir, _ = demo_store(tmp_path / "s")
    t = demo_cdrs(12_000, seed=3)
    engine = Engine.open(store_dir)
    try:
        first = engine.rate_and_commit(t.slice(0, 5_000))
    finally:
        engine.close()
    assert first.summary.rated > 4_000
    # Row 10 (committed) sent with another destination; row 5 (committed) sent twice.
    moved = pc.if_else(pa.array(np.arange(t.num_rows) == 10), "13900000000", t.column("forwarded_to"))
    sent = pa.concat_tables([t.set_column(t.schema.get_field_index("forwarded_to"), "forwarded_to", moved),
                             t.slice(5, 1)])
    src = tmp_path / "in.parquet"
    pq.write_table(sent, src, row_group_size=2_000)

    ledger = Ledger(store_dir)
    try:
        rater = Rater(open_view(Store(store_dir, create=False), ledger.env, None), threads=2)
        state = ledger.opening_state(rater.snapshot, usage=True)
        one = bulk.rate_dataset([src], rater, state, tmp_path / "one.parquet", tmp_path / "one.csv",
                                pass_through=pass_through, chunk_rows=3_000, replays=Replays(ledger))
    finally:
        ledger.close()
    result = rate_on_dask(cluster, [src], store_dir, tmp_path / "rated", tmp_path / "rejects.csv",
                          pass_through=pass_through, unit_rows=3_000)
    assert any(f.name.endswith("-replayed.parquet") for f in result.files)
    rated = plain(pq.read_table(tmp_path / "rated")).sort_by("call_id")
    want = plain(pq.read_table(tmp_path / "one.parquet")).sort_by("call_id")
    assert rated.column_names == want.column_names and want.column_names[-1] == "replayed"
    for name in want.column_names:
        assert rated.column(name).equals(want.column(name)), name
    s1, s2 = result.summary, one.summary
    assert s2.replayed == first.summary.rated - 1 and s2.replayed_charge > 0 and s2.charge > 0
    for k in ("rows_in", "rated", "rejected", "duplicates", "charge", "replayed", "replayed_charge",
              "rejects_by_reason"):
        assert getattr(s1, k) == getattr(s2, k), k
    assert s1.rejects_by_reason["forwarded_to: " + cdr.REASONS[cdr.COMMITTED_DIFFERENTLY]] == 1
    rejects = cdr.read_table(tmp_path / "rejects.csv")  # in row order; the single-machine job's as it met them
    assert rejects.equals(cdr.read_table(tmp_path / "one.csv").sort_by([("row", "ascending"), ("field", "ascending")]))
    last = rejects.filter(pc.equal(rejects.column("row"), sent.num_rows)).to_pylist()  # rows count from 1
    assert [(r["call_id"], r["reason"]) for r in last] == [(t.column("call_id")[5].as_py(), cdr.REASONS[cdr.DUPLICATE])]
    for k in ACCOUNT_STATE:
        assert np.array_equal(result.state[k], state[k]), k


def test_a_refused_output_directory_opens_no_client(store, tmp_path):
    """``rate_on_dask`` given a scheduler's address makes its own client; a
    refusal before the job (an output directory that is not empty) comes
    before that client is made, so nothing is left open: here the address
    has no scheduler at all, and the answer is the refusal, at once."""
    from rating_core.bulk_dask import rate_on_dask
    from rating_core.errors import InvalidInput

    store_dir, _ = store
    pq.write_table(demo_cdrs(10, seed=3), tmp_path / "a.parquet")
    out = tmp_path / "out"
    out.mkdir()
    (out / "left.parquet").write_bytes(b"")
    with pytest.raises(InvalidInput) as e:
        rate_on_dask("tcp://127.0.0.1:9", [tmp_path / "a.parquet"], store_dir, out, tmp_path / "rejects.csv")
    assert e.value.field == "--out" and "not empty" in e.value.message
