"""The edge against the kernel, per thread, on the same demo CDRs.

Edge: ``rating_core.cdr.prepare`` (number normalisation and validation,
time parsing, every check of the hostile-input rules) on chunks of the
bulk job's size (``bulk.DEFAULT_CHUNK_ROWS``), then ``cdr.dedupe`` over the
whole input, on one thread, from the demo table as it is read from Parquet
(strings and zone-aware timestamps). Kernel: ``rating.rate`` on one thread
over the prepared good rows, a fresh copy of the account state per round
(copied outside the timing). The two are timed alternately in each round
(the kernel in pytest-benchmark's untimed ``setup``), so both see the same
load. Target (issue 11): edge throughput / kernel throughput >= 0.5.
"""
from __future__ import annotations

import time

import numpy as np

from rating_core import bulk, cdr
from rating_core.kernels import rating


def test_edge_vs_kernel_per_thread(benchmark, demo_cdr_table, demo_snapshot, demo_cdr_columns, opening_state,
                                   sizes, report):
    days = cdr.calendar_range(demo_snapshot.tables)
    batches = demo_cdr_table.to_batches(bulk.DEFAULT_CHUNK_ROWS)
    kernel_times: list[float] = []

    def edge():
        offset, parts = 0, []
        for b in batches:
            parts.append(cdr.prepare(b, days, offset))
            offset += b.num_rows
        return cdr.dedupe(cdr.concat(parts))

    def kernel():
        state = {k: v.copy() for k, v in opening_state.items()}
        t0 = time.perf_counter()
        rating.rate(demo_snapshot.tables, demo_cdr_columns, state, threads=1)
        kernel_times.append(time.perf_counter() - t0)

    rounds = 5 if sizes.rating_cdrs >= 1_000_000 else 2
    prepared = benchmark.pedantic(edge, setup=kernel, rounds=rounds, iterations=1, warmup_rounds=1)
    n_in = demo_cdr_table.num_rows
    n_kernel = len(demo_cdr_columns["start_ms"])
    assert prepared.rows_in == n_in and int(prepared.good.sum()) == n_kernel  # the same rows reach the kernel
    edge_rate = n_in / benchmark.stats.stats.median
    kernel_rate = n_kernel / float(np.median(kernel_times[1:] or kernel_times))  # the warm-up round's setup ran too
    benchmark.extra_info.update(cdrs=n_in, edge_cdr_per_s=round(edge_rate), kernel_cdr_per_s=round(kernel_rate),
                                edge_over_kernel=round(edge_rate / kernel_rate, 3))
    report(f"edge vs kernel, 1 thread each: {n_in:,} CDRs; edge {edge_rate / 1e6:.2f}M CDR/s, kernel "
           f"{kernel_rate / 1e6:.2f}M CDR/s; edge / kernel throughput {edge_rate / kernel_rate:.2f} (target >= 0.5)")
