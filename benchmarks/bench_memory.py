"""Peak memory (RSS) of the bounded-memory bulk job on a large input.

Synthetic CDRs are generated to disk in pieces (the demo's generator, each
piece's calls moved into its own slice of the month, so the file is in
time order up to the demo's jitter), never held whole in memory. Two
inputs of the same rows: in time order (the job streams through a reorder
buffer) and out of order (each piece spans the whole month: the job
spills and sorts out of core in DuckDB). Each job runs as ``rating400 rate``
in a child process, which reports its own peak RSS at exit
(``getrusage(RUSAGE_SELF).ru_maxrss``, what ``/usr/bin/time -v`` reports
as "Maximum resident set size").

Sizes: 20M CDRs (``RATING400_BENCH_MEMORY_CDRS`` to change, e.g. 100000000
for the issue's month), 200k with ``RATING400_BENCH_SMALL=1``. Memory is
bounded by the chunk size and DuckDB's limit, not by the input: the figures
at two sizes show it (see benchmarks/README.md).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rating_core.demo import demo_cdrs, write_demo_catalog
from rating_core.store import Store

SMALL = os.environ.get("RATING400_BENCH_SMALL", "") not in ("", "0")
CDRS = int(os.environ.get("RATING400_BENCH_MEMORY_CDRS", 200_000 if SMALL else 20_000_000))
PIECE = 500_000
TIMES = ("start", "ivr_answer", "agent_answer", "end")


def _squeeze(t: pa.Table, lo_ms: int, span_ms: int, first_ms: int, last_ms: int) -> pa.Table:
    """``t``'s calls moved into [lo_ms, lo_ms + span_ms): starts scaled from
    [first_ms, last_ms], every other time kept at the same offset from its start."""
    start = pc.fill_null(pc.cast(t.column("start"), pa.int64()), first_ms).to_numpy(zero_copy_only=False)
    new = lo_ms + (start - first_ms) * span_ms // (last_ms - first_ms + 1)
    for name in TIMES:
        col = t.column(name)
        ms = pc.cast(col, pa.int64())
        moved = pc.add(pc.subtract(ms, pa.array(start)), pa.array(new))
        t = t.set_column(t.column_names.index(name), name, pc.cast(moved, col.type))
    return t


def write_input(path: Path, n: int, in_order: bool) -> None:
    pieces = (n + PIECE - 1) // PIECE
    writer = None
    try:
        for i in range(pieces):
            k = min(PIECE, n - i * PIECE)
            t = demo_cdrs(k, seed=1000 + i)  # call ids carry the seed: unique across pieces
            if in_order:
                s = pc.min_max(pc.cast(t.column("start"), pa.int64())).as_py()
                span = (s["max"] - s["min"]) // pieces
                t = _squeeze(t, s["min"] + i * span, span, s["min"], s["max"])
            writer = writer or pq.ParquetWriter(path, t.schema, compression="lz4")
            writer.write_table(t, row_group_size=PIECE)
    finally:
        if writer is not None:
            writer.close()


# The child: the CLI, then its peak RSS (ru_maxrss, KiB on Linux) on stderr.
_CHILD = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
    "from rating_core.cli import main\n"
    "main(sys.argv[1:])\n"
)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")
    store = Store(root / "store")
    store.activate(store.compile(write_demo_catalog(root / "catalog")))
    return root / "store"


@pytest.mark.parametrize("order", ["in time order", "out of order"])
def test_peak_rss_bounded(benchmark, store_dir, tmp_path_factory, report, order):
    d = tmp_path_factory.mktemp("memory-input")
    src = d / "cdrs.parquet"
    t0 = time.perf_counter()
    write_input(src, CDRS, in_order=order == "in time order")
    generated = time.perf_counter() - t0
    out = d / "rated.parquet"

    def job():
        if out.exists():
            out.unlink()
        # `rating400 rate` in a child that reports its own peak RSS at exit.
        proc = subprocess.run([sys.executable, "-c", _CHILD, "rate", str(src), "--store", str(store_dir),
                               "--out", str(out), "--json"], capture_output=True, text=True, timeout=7200)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        summary["peak_rss_kib"] = int(proc.stderr.rsplit("PEAK_RSS_KIB", 1)[1])
        return summary

    try:
        summary = benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=0)
        rated_rows = pq.read_metadata(out).num_rows
    finally:  # at 100M the input and output are ~6 GB: not left in pytest's kept temporary directories
        for f in d.iterdir():
            f.unlink()
    peak_mb = summary["peak_rss_kib"] / 1024
    seconds = summary["seconds"]
    benchmark.extra_info.update(cdrs=summary["rows_in"], peak_rss_mb=round(peak_mb), seconds=seconds)
    report(f"bounded memory, {order}: {summary['rows_in']:,} CDRs (generated in {generated:.0f} s), "
           f"{seconds:.1f} s = {summary['rows_in'] / seconds / 1e6:.2f}M CDR/s, peak RSS {peak_mb:,.0f} MB")
    assert summary["rows_in"] == CDRS
    assert rated_rows == summary["rated"]
