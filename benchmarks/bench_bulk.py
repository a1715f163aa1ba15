"""The bulk job, Parquet to Parquet, end to end: ``rating400 rate`` on demo CDRs.

The CDRs (10M by default) are generated once per session by
``rating_core.demo.demo_cdrs`` into a temporary Parquet file. Each round is
the CLI's own function, ``rating_core.cli.rate_files``: read the file in
batches, normalise and validate at the edge, drop duplicate call ids, rate
(kernel, 2 threads, opening balances from the ledger), name the ids, write
the rated Parquet and the rejects CSV. Target: 2M CDR/s.
"""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from rating_core.cli import rate_files
from rating_core.demo import demo_cdrs, write_demo_catalog
from rating_core.store import Store


@pytest.fixture(scope="module")
def bulk_store(tmp_path_factory):
    """A store of its own: LMDB allows one open of a snapshot per process,
    and ``rate_files`` opens the active version itself, as the CLI does."""
    root = tmp_path_factory.mktemp("bulk-store")
    store = Store(root / "store")
    store.activate(store.compile(write_demo_catalog(root / "catalog")))
    return root / "store", store


@pytest.fixture(scope="module")
def demo_parquet(tmp_path_factory, sizes):
    path = tmp_path_factory.mktemp("bulk") / "cdrs.parquet"
    pq.write_table(demo_cdrs(sizes.bulk_cdrs, seed=2026), path)
    return path


def test_bulk_parquet_to_parquet(benchmark, demo_parquet, bulk_store, sizes, report, tmp_path):
    store_dir, store = bulk_store
    out = tmp_path / "rated.parquet"
    rejects = tmp_path / "rejects.csv"

    def job():
        summary, _seconds = rate_files([demo_parquet], store_dir, out, rejects, threads=2,
                                       progress=False, store=store)
        return summary

    rounds = 3 if sizes.bulk_cdrs >= 1_000_000 else 2
    summary = benchmark.pedantic(job, rounds=rounds, iterations=1, warmup_rounds=0)
    n = summary.rows_in
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(cdrs=n, rated=summary.rated, rejected=summary.rejected, cdr_per_s=round(n / median))
    report(f"bulk Parquet -> Parquet: {n:,} CDRs (rated {summary.rated:,}, rejected {summary.rejected:,}), "
           f"median {median:.2f} s = {n / median / 1e6:.2f}M CDR/s")
    assert n == sizes.bulk_cdrs
    assert pq.read_metadata(out).num_rows == summary.rated
