"""The bulk job against its end-to-end DuckDB peer and the I/O floor, in one run.

Each round, in turn: the I/O floor (pyarrow reading the input and writing
the job's rated output with the job's writer settings), the DuckDB peer
(``peers/duckdb_bulk.py``: Parquet in, edge and rating in SQL, Parquet
out, 2 threads), and the job (``rating_core.cli.rate_files``, as
``rating400 rate`` runs it, 2 threads). The peer and the floor are timed in
pytest-benchmark's untimed ``setup`` so all three see the same load.
Checked: both jobs rate the same calls (by call id) with identical 400
number, names and charged fields (billable, billed seconds, units, charge,
credit and bundle seconds consumed, overage, balance after).
Targets (issue 11): job / floor <= 1.25; DuckDB / job >= 3.

Size: ``sizes.bulk_cdrs`` demo CDRs, or ``RATING400_BENCH_E2E_CDRS``.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating_core import bulk
from rating_core.accounts.view import open_view
from rating_core.cli import rate_files
from rating_core.demo import demo_cdrs, demo_store
from rating_core.rater import Rater
from rating_core.store import Ledger

from peers.duckdb_bulk import DuckDBBulkJob

CHARGED = ("call_id", "number", "account", "package", "rate", "destination_class", "billable_seconds",
           "billed_seconds", "units", "charge_minor", "credit_consumed_minor", "bundle_seconds_consumed", "overage_minor",
           "balance_after")


@pytest.fixture(scope="module")
def e2e_cdrs(sizes) -> int:
    return int(os.environ.get("RATING400_BENCH_E2E_CDRS") or sizes.bulk_cdrs)


@pytest.fixture(scope="module")
def e2e_store(tmp_path_factory):
    return demo_store(tmp_path_factory.mktemp("e2e-store"))


@pytest.fixture(scope="module")
def e2e_parquet(tmp_path_factory, e2e_cdrs):
    path = tmp_path_factory.mktemp("e2e") / "cdrs.parquet"
    pq.write_table(demo_cdrs(e2e_cdrs, seed=2027), path)
    return path


def _charged(path) -> pa.Table:
    t = pq.read_table(path, columns=list(CHARGED))
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns]
    return pa.Table.from_arrays(cols, names=t.column_names).sort_by("call_id")


def test_bulk_job_vs_duckdb_end_to_end(benchmark, e2e_parquet, e2e_store, e2e_cdrs, report, tmp_path):
    store_dir, store = e2e_store
    out, rejects, peer_out = tmp_path / "rated.parquet", tmp_path / "rejects.csv", tmp_path / "peer.parquet"
    ledger = Ledger(store_dir)  # the job's own opening balances: the ledger's, on the same view
    rater = Rater(open_view(store, ledger.env, None))
    state = ledger.opening_state(rater.snapshot)
    ledger.close()
    peer = DuckDBBulkJob(rater.tables, rater.meta, state, threads=2)

    def job():
        summary, _seconds = rate_files([e2e_parquet], store_dir, out, rejects, threads=2, progress=False, store=store)
        return summary

    job()  # warm-up, and the output the floor writes
    rated = pq.read_table(out)
    names = [f.name for f in rated.schema if f.name in bulk._DICTIONARY]
    floors: list[float] = []
    peers: list[float] = []

    def setup():
        t0 = time.perf_counter()
        pq.read_table(e2e_parquet)
        pq.write_table(rated, tmp_path / "floor.parquet", compression=bulk.PARQUET_OPTIONS["compression"],
                       use_dictionary=names, write_statistics=bulk.PARQUET_OPTIONS["write_statistics"],
                       row_group_size=bulk.ROW_GROUP_ROWS)
        floors.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        peer.run(e2e_parquet, peer_out)
        peers.append(time.perf_counter() - t0)

    rounds = 3 if e2e_cdrs >= 1_000_000 else 2
    summary = benchmark.pedantic(job, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)

    mine, theirs = _charged(out), _charged(peer_out)
    assert mine.num_rows == summary.rated == theirs.num_rows
    for name in CHARGED:
        assert mine.column(name).equals(theirs.column(name).cast(mine.column(name).type)), name

    n = summary.rows_in
    median, floor_median, peer_median = benchmark.stats.stats.median, float(np.median(floors)), float(np.median(peers))
    benchmark.extra_info.update(cdrs=n, rated=summary.rated, job_median_s=round(median, 3),
                                io_floor_median_s=round(floor_median, 3), duckdb_median_s=round(peer_median, 3))
    report(f"bulk job vs DuckDB end to end: {n:,} CDRs (rated {summary.rated:,}, identical charged fields); "
           f"job median {median:.2f} s = {n / median / 1e6:.2f}M CDR/s; I/O floor {floor_median:.2f} s "
           f"(job / floor {median / floor_median:.2f}x, target <= 1.25); DuckDB {peer_median:.2f} s "
           f"(DuckDB / job {peer_median / median:.2f}x, target >= 3)")
