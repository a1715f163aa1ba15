"""Parquet writer settings for the rated output, chosen by measurement.

The rated output of demo CDRs (``bulk.billing_view``: the billing columns,
names dictionary-encoded) is written with ``pq.write_table`` under one
setting at a time changed from the chosen one (``bulk.PARQUET_OPTIONS``,
``bulk.ROW_GROUP_ROWS``, dictionary pages on ``bulk._DICTIONARY``): codec,
dictionary pages, statistics, row-group size, and pyarrow's defaults.
Reported per setting: write time (median and min over interleaved
rounds), file size, and the time to read the file back (``pq.read_table``,
what a billing system does next), each as a ratio to the chosen setting in
the same run.
"""
from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from rating_core import bulk
from rating_core.demo import demo_cdrs
from rating_core.rater import Rater



def _settings(names):
    chosen = dict(compression=bulk.PARQUET_OPTIONS["compression"], use_dictionary=names,
                  write_statistics=bulk.PARQUET_OPTIONS["write_statistics"], row_group_size=bulk.ROW_GROUP_ROWS)
    return {
        "chosen (lz4, dictionary on names, statistics on start, 1M-row groups)": chosen,
        "codec none": {**chosen, "compression": "none"},
        "codec snappy": {**chosen, "compression": "snappy"},
        "codec zstd level 1": {**chosen, "compression": "zstd", "compression_level": 1},
        "codec zstd level 3": {**chosen, "compression": "zstd", "compression_level": 3},
        "dictionary on every column": {**chosen, "use_dictionary": True},
        "no dictionary": {**chosen, "use_dictionary": False},
        "statistics on every column": {**chosen, "write_statistics": True},
        "no statistics": {**chosen, "write_statistics": False},
        "128k-row groups": {**chosen, "row_group_size": 1 << 17},
        "pyarrow defaults (snappy, dictionary and statistics everywhere)": {},
    }


SETTINGS = list(_settings([]))


@pytest.fixture(scope="module")
def rated_output(demo_snapshot, sizes):
    rater = Rater(demo_snapshot, threads=2)
    return bulk.billing_view(rater.rate(demo_cdrs(sizes.rating_cdrs, seed=401)).rated)


def test_parquet_writer_settings(benchmark, rated_output, tmp_path, report, sizes):
    """Each round writes the output once under every setting, in turn, so
    that a shared machine's changing load falls on all settings alike."""
    names = [f.name for f in rated_output.schema if f.name in bulk._DICTIONARY]
    settings = _settings(names)
    writes: dict[str, list[float]] = {k: [] for k in settings}
    reads: dict[str, list[float]] = {k: [] for k in settings}
    sizes_: dict[str, int] = {}

    def one_round():
        for name, options in settings.items():
            path = tmp_path / "rated.parquet"
            t0 = time.perf_counter()
            pq.write_table(rated_output, path, **options)
            t1 = time.perf_counter()
            assert pq.read_table(path).num_rows == rated_output.num_rows
            writes[name].append(t1 - t0)
            reads[name].append(time.perf_counter() - t1)
            sizes_[name] = path.stat().st_size

    rounds = 5 if sizes.rating_cdrs >= 1_000_000 else 2
    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=0)
    med = {k: (float(np.median(writes[k])), min(writes[k]), float(np.median(reads[k]))) for k in settings}
    chosen = SETTINGS[0]
    w0, m0, r0 = med[chosen]
    for name in settings:
        w, m, r = med[name]
        size = sizes_[name]
        benchmark.extra_info[name] = {"write_median_s": round(w, 4), "write_min_s": round(m, 4),
                                      "read_median_s": round(r, 4), "bytes": size}
        report(f"parquet {name}: write median {w * 1e3:.0f} ms ({w / w0:.2f}x chosen; min {m / m0:.2f}x), "
               f"{size / 1e6:.1f} MB ({size / sizes_[chosen]:.2f}x), read {r * 1e3:.0f} ms ({r / r0:.2f}x)")
    report(f"parquet settings: {rated_output.num_rows:,} rated rows, {rounds} interleaved rounds")
