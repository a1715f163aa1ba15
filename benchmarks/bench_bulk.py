"""The bulk job, Parquet to Parquet, end to end: ``rating400 rate`` on demo CDRs.

The CDRs (10M by default) are generated once per session by
``rating_core.demo.demo_cdrs`` into a temporary Parquet file. Each round is
the CLI's own function, ``rating_core.cli.rate_files``: the bounded-memory
job (``rating_core.bulk``): scan the call ids and starts, read the file in
chunks, normalise and validate at the edge, drop duplicate call ids, rate
(kernel, 2 threads, opening balances from the ledger) in chronological
chunks, name the ids, write the rated Parquet (billing columns) and the
rejects CSV. Compared in the same run with the I/O floor: pyarrow reading
the same input and writing the same output. Targets: 2M CDR/s; job / floor
<= 1.25.
"""
from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from rating_core import bulk
from rating_core.cli import rate_files
from rating_core.demo import demo_cdrs, demo_store


@pytest.fixture(scope="module")
def bulk_store(tmp_path_factory):
    """A store of its own: LMDB allows one open of a snapshot per process,
    and ``rate_files`` opens the active version itself, as the CLI does."""
    return demo_store(tmp_path_factory.mktemp("bulk-store"))


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

    # The I/O floor: pyarrow reading the same input and writing the same
    # rated output (same writer settings), timed before each round of the
    # job (pedantic's untimed setup), so both see the same machine load.
    job()
    rated = pq.read_table(out)
    names = [f.name for f in rated.schema if f.name in bulk._DICTIONARY]
    floors = []

    def floor():
        t0 = time.perf_counter()
        pq.read_table(demo_parquet)
        pq.write_table(rated, tmp_path / "floor.parquet", compression=bulk.PARQUET_OPTIONS["compression"],
                       use_dictionary=names, write_statistics=bulk.PARQUET_OPTIONS["write_statistics"],
                       row_group_size=bulk.ROW_GROUP_ROWS)
        floors.append(time.perf_counter() - t0)

    rounds = 3 if sizes.bulk_cdrs >= 1_000_000 else 2
    summary = benchmark.pedantic(job, setup=floor, rounds=rounds, iterations=1, warmup_rounds=0)
    n = summary.rows_in
    median = benchmark.stats.stats.median
    floor_median = float(np.median(floors))
    benchmark.extra_info.update(cdrs=n, rated=summary.rated, rejected=summary.rejected, cdr_per_s=round(n / median),
                                io_floor_median_s=round(floor_median, 3))
    report(f"bulk Parquet -> Parquet: {n:,} CDRs (rated {summary.rated:,}, rejected {summary.rejected:,}), "
           f"median {median:.2f} s = {n / median / 1e6:.2f}M CDR/s; I/O floor (pyarrow read + write of the same "
           f"data) median {floor_median:.2f} s; job / floor {median / floor_median:.2f}x")
    assert n == sizes.bulk_cdrs
    assert pq.read_metadata(out).num_rows == summary.rated
