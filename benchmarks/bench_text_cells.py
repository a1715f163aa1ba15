"""The text check of the edge (``kernels.edge.text_cells``: forbidden
characters -- C0, DEL, C1, bidi controls, zero-width -- and the length bound,
one pass over the Arrow buffers) against Arrow's own vectorised way of asking
the same question of a column: RE2 ``match_substring_regex`` over the
``cdr.FORBIDDEN_TEXT`` class plus ``binary_length`` against the bound. Same
column (the demo CDRs' call ids), timed
alternately in each round (the peer in pytest-benchmark's untimed ``setup``).
"""
from __future__ import annotations

import time

import numpy as np
import pyarrow.compute as pc

from rating_core import cdr
from rating_core.kernels import edge
from rating_core.numbers import string_buffers, validity_bits


def test_text_cells_vs_arrow_regex(benchmark, demo_cdr_table, report):
    col = cdr._one_array(demo_cdr_table.column("call_id"))
    offsets, data = string_buffers(col)
    bits = validity_bits(col)
    out = np.empty(len(col), np.uint8)
    bound = cdr.TEXT_BYTES["call_id"]
    peer_times: list[float] = []

    def ours():
        return edge.text_cells(offsets, data, bits, col.offset, False, cdr._FORBIDDEN_RANGES, bound, out)

    def arrow():
        return pc.or_(pc.match_substring_regex(col, cdr._FORBIDDEN_RE2), pc.greater(pc.binary_length(col), bound))

    def peer() -> None:  # pytest-benchmark's setup: returns no arguments
        t0 = time.perf_counter()
        arrow()
        peer_times.append(time.perf_counter() - t0)

    bad = benchmark.pedantic(ours, setup=peer, rounds=5, iterations=1, warmup_rounds=1)
    assert bad == pc.sum(pc.cast(arrow(), "int64")).as_py()  # the same cells judged
    ours_s = benchmark.stats.stats.median
    peer_s = float(np.median(peer_times[1:] or peer_times))
    benchmark.extra_info.update(cells=len(col), ours_ms=round(ours_s * 1e3, 2), arrow_ms=round(peer_s * 1e3, 2))
    report(f"text check, {len(col):,} call ids: text_cells {ours_s * 1e3:.1f} ms, Arrow RE2 + length "
           f"{peer_s * 1e3:.1f} ms ({peer_s / ours_s:.1f}x)")
