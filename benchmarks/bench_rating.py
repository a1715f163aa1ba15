"""Rate demo CDRs in memory: the Cython kernel against the same job in DuckDB SQL.

Both sides get the same prepared data (numbers as integer keys, times as
epoch ms, the compiled snapshot tables, the ledger's opening state) and
compute every rated column: lookups, band, tiers, the sequential credit /
bundle pass. Each kernel round gets a fresh copy of the account state
(the kernel updates it in place; the copy is outside the timing).

The DuckDB peer runs on both cores (``SET threads = 2``); its tables are
loaded before timing, and each round leaves its result in DuckDB (fetching
it back is not timed) — both favour the peer. The check that both give
identical columns and closing balances is a correctness assertion; speed
is only reported (targets: 10M CDR/s on one thread, 3x DuckDB).
"""
from __future__ import annotations

import numpy as np
import pytest

from rating_core.kernels import rating

from peers.duckdb_rating import OUTPUT, DuckDBRater

DUCKDB_THREADS = 2
_medians: dict[str, float] = {}  # test -> median seconds, for the ratios


def _fresh(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in state.items()}


def _rounds(sizes, full: int) -> int:
    return full if sizes.rating_cdrs >= 1_000_000 else 3


@pytest.fixture(scope="module")
def kernel_result(demo_snapshot, demo_cdr_columns, opening_state):
    """One kernel run (untimed): the output columns and closing state the
    DuckDB peer must reproduce exactly."""
    state = _fresh(opening_state)
    out = rating.rate(demo_snapshot.tables, demo_cdr_columns, state, threads=1)
    return out, state


@pytest.mark.parametrize("outputs", ["fresh", "reused"])
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_rating(benchmark, threads, outputs, sizes, demo_snapshot, demo_cdr_columns, opening_state, report):
    """``fresh``: the plain call, output arrays allocated inside (and timed,
    page faults included). ``reused``: output buffers passed in (``out=``),
    as a caller streaming batches would."""
    tables, cdr = demo_snapshot.tables, demo_cdr_columns
    n = len(cdr["start_ms"])
    kwargs = {"threads": threads}
    if outputs == "reused":
        kwargs["out"] = {name: np.empty(n, dtype) for name, dtype in rating.OUTPUT}

    def setup():
        return (tables, cdr, _fresh(opening_state)), kwargs

    out = benchmark.pedantic(rating.rate, setup=setup, rounds=_rounds(sizes, 15), iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    label = f"kernel-{threads}-{outputs}"
    _medians[label] = median
    benchmark.extra_info.update(cdrs=n, threads=threads, outputs=outputs, cdr_per_s=round(n / median))
    report(f"kernel, {threads} thread(s), {outputs} outputs: {n:,} CDRs, median {median * 1000:.1f} ms "
           f"= {n / median / 1e6:.2f}M CDR/s (min {benchmark.stats.stats.min * 1000:.1f} ms)")
    assert len(out["charge"]) == n


def test_duckdb_rating(benchmark, sizes, demo_snapshot, demo_cdr_columns, opening_state, kernel_result, report):
    n = len(demo_cdr_columns["start_ms"])
    peer = DuckDBRater(threads=DUCKDB_THREADS)
    peer.load_snapshot(demo_snapshot.tables)
    peer.load_cdrs(demo_cdr_columns)
    peer.load_state(opening_state)  # DuckDB copies it: state stays the opening state every round

    benchmark.pedantic(peer.rate, rounds=_rounds(sizes, 5), iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(cdrs=n, threads=DUCKDB_THREADS, cdr_per_s=round(n / median))
    report(f"DuckDB SQL, {DUCKDB_THREADS} threads: {n:,} CDRs, median {median * 1000:.1f} ms "
           f"= {n / median / 1e6:.2f}M CDR/s (min {benchmark.stats.stats.min * 1000:.1f} ms)")
    for name, kernel_median in _medians.items():
        ratio = median / kernel_median
        benchmark.extra_info[f"{name}_speedup"] = round(ratio, 2)
        report(f"{name} vs DuckDB ({DUCKDB_THREADS} threads): {ratio:.1f}x faster (medians)")

    # Identical results, every column and every account's closing state.
    expected, expected_state = kernel_result
    got, got_state = peer.result()
    rated = expected["status"] == 0
    assert rated.mean() > 0.5, "the demo should rate most calls"
    for name, _dtype in OUTPUT:
        diff = np.flatnonzero(expected[name] != got[name])
        assert len(diff) == 0, f"{name}: {len(diff)} CDRs differ, first rows {diff[:5].tolist()}"
    for name in expected_state:
        np.testing.assert_array_equal(expected_state[name], got_state[name], err_msg=name)
    report(
        f"  identical on all {len(OUTPUT)} columns; rated {int(rated.sum()):,}, "
        f"charge total {int(expected['charge'].sum()):,} minor units, "
        f"credit {int(expected['credit_consumed'].sum()):,}, bundle s {int(expected['bundle_seconds_consumed'].sum()):,}, "
        f"overage {int(expected['overage'].sum()):,}"
    )


def test_duckdb_matches_kernel_on_carried_balances(demo_snapshot, demo_cdr_columns, opening_state):
    """Not timed: the paths the demo's fresh ledger does not reach — bundle
    use carried into the month (some beyond a smaller allowance), low
    prepaid credit, and prepaid credit expiring mid-month."""
    n = min(50_000, len(demo_cdr_columns["start_ms"]))
    cdr = {k: np.ascontiguousarray(v[:n]) for k, v in demo_cdr_columns.items()}
    tables = dict(demo_snapshot.tables)
    start = cdr["start_ms"]
    mid = int(np.median(start))
    accounts = np.arange(len(tables["account_package"]))
    prepaid = tables["package_kind"][tables["account_package"]] == 1
    tables["account_expiry_ms"] = np.where(prepaid & (accounts % 2 == 0), mid, tables["account_expiry_ms"]).astype(np.int64)
    rng = np.random.default_rng(7)
    month = int(tables["day_month"][(int(start.min()) + 8 * 3_600_000) // 86_400_000 - int(tables["calendar_first_day"][0])])
    included = tables["package_included_seconds"][tables["account_package"]]
    state = _fresh(opening_state)
    state["credit_left"] = np.where(prepaid, rng.integers(0, 2_000_000, len(accounts)), state["credit_left"]).astype(np.int64)
    state["bundle_period"][:] = month
    state["bundle_used"] = (included * rng.uniform(0, 1.2, len(accounts))).astype(np.int64)

    kernel_state = _fresh(state)
    expected = rating.rate(tables, cdr, kernel_state, threads=1)
    peer = DuckDBRater(threads=DUCKDB_THREADS)
    peer.load_snapshot(tables)
    peer.load_cdrs(cdr)
    peer.load_state(state)
    peer.rate()
    got, got_state = peer.result()
    assert (expected["credit_consumed"] > 0).any() and (expected["bundle_seconds_consumed"] > 0).any()
    for name, _dtype in OUTPUT:
        diff = np.flatnonzero(expected[name] != got[name])
        assert len(diff) == 0, f"{name}: {len(diff)} CDRs differ, first rows {diff[:5].tolist()}"
    for name in kernel_state:
        np.testing.assert_array_equal(kernel_state[name], got_state[name], err_msg=name)
