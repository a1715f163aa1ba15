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


def _with_history(tables: dict, cdr: dict) -> dict:
    """``tables`` plus the live view's history arrays (``rating.HISTORY``):
    every account with three package periods (two before its current one,
    under its own package, so the output is the plain kernel's) and every
    number with two states (active since ever, then active again), so each
    CDR pays both searches the live view makes it pay."""
    t = dict(tables)
    n_acc, n_num = len(t["account_package"]), len(t["number_key"])
    first_call = int(np.min(cdr["start_ms"]))
    starts = np.stack([t["account_start_ms"] - 2, t["account_start_ms"] - 1, t["account_start_ms"]], 1)
    t.update(account_period_first=np.arange(0, 3 * n_acc, 3, dtype=np.int32),
             account_period_count=np.full(n_acc, 3, np.int32),
             period_start_ms=starts.reshape(-1).astype(np.int64),
             period_package=np.repeat(t["account_package"], 3).astype(np.int32),
             period_expiry_ms=np.repeat(t["account_expiry_ms"], 3).astype(np.int64),
             number_hist_first=np.arange(0, 2 * n_num, 2, dtype=np.int32),
             number_hist_count=np.full(n_num, 2, np.int32),
             hist_ms=np.tile(np.array([np.iinfo(np.int64).min, first_call], np.int64), n_num),
             hist_status=np.repeat(t["number_status"], 2).astype(np.int8))
    return t


def test_kernel_with_period_history(benchmark, sizes, demo_snapshot, demo_cdr_columns, opening_state, report):
    """The rating kernel on the demo CDRs with the live view's history arrays
    (README "Late CDRs": the period and number state at each call's start)
    beside the same kernel without them (the catalog snapshot's path), runs
    alternating (A/B) on one thread; the outputs must be identical (every
    period of an account is under its own package)."""
    import time

    plain, cdr = demo_snapshot.tables, demo_cdr_columns
    history = _with_history(plain, cdr)
    n = len(cdr["start_ms"])
    want = rating.rate(plain, cdr, _fresh(opening_state), threads=1)
    got = rating.rate(history, cdr, _fresh(opening_state), threads=1)
    for name in want:
        assert np.array_equal(want[name], got[name]), name
    times: dict[str, list[float]] = {"plain": [], "history": []}
    for _ in range(_rounds(sizes, 7)):
        for name, tables in (("plain", plain), ("history", history)):
            state = _fresh(opening_state)
            t0 = time.perf_counter()
            rating.rate(tables, cdr, state, threads=1)
            times[name].append(time.perf_counter() - t0)
    benchmark.pedantic(rating.rate, args=(history, cdr, _fresh(opening_state)), kwargs={"threads": 1},
                       rounds=1, iterations=1)
    p, h = float(np.median(times["plain"])), float(np.median(times["history"]))
    benchmark.extra_info.update(cdrs=n, plain_s=round(p, 4), history_s=round(h, 4), ratio=round(h / p, 3))
    report(f"rating kernel with period history: {n:,} CDRs, median {h:.3f} s = {n / h / 1e6:.2f}M CDR/s beside "
           f"{p:.3f} s = {n / p / 1e6:.2f}M CDR/s without (the catalog path): {h / p:.2f}x, one thread, A/B alternating")
