"""Shared benchmark fixtures: sizes, the demo catalog compiled into a
temporary store, demo CDRs and the kernel's input columns.

Sizes: the issue's sizes by default; ``RATING400_BENCH_SMALL=1`` shrinks
every suite so the whole of ``benchmarks/`` runs in well under a minute
(CI runs it that way so the suites never rot). Speed is reported, never
asserted: this machine is shared and noisy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

SMALL = os.environ.get("RATING400_BENCH_SMALL", "") not in ("", "0")


@dataclass(frozen=True)
class Sizes:
    rating_cdrs: int  # in-memory kernel vs DuckDB
    bulk_cdrs: int  # Parquet -> Parquet
    compile_prefixes: int  # destination prefixes in the compiled catalog
    compile_numbers: int  # 400 numbers in the compiled catalog


FULL = Sizes(rating_cdrs=2_000_000, bulk_cdrs=10_000_000, compile_prefixes=1_000_000, compile_numbers=100_000)
TINY = Sizes(rating_cdrs=50_000, bulk_cdrs=100_000, compile_prefixes=20_000, compile_numbers=2_000)


@pytest.fixture(scope="session")
def sizes() -> Sizes:
    return TINY if SMALL else FULL


# Headline figures (CDR/s, ratios) that benchmarks record with ``report``;
# printed at the end of the run, after pytest-benchmark's table.
_REPORT: list[str] = []


@pytest.fixture(scope="session")
def report():
    return _REPORT.append


def pytest_terminal_summary(terminalreporter):
    if _REPORT:
        terminalreporter.section("rating400 benchmark figures")
        for line in _REPORT:
            terminalreporter.write_line(line)


@dataclass
class DemoStore:
    root: Path  # the store directory
    catalog: Path  # the demo catalog's YAML
    store: object  # rating_core.store.Store, open (LMDB: one environment per process)


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> DemoStore:
    """The demo catalog, compiled and activated in a temporary store."""
    from rating_core.demo import write_demo_catalog
    from rating_core.store import Store

    root = tmp_path_factory.mktemp("demo")
    catalog = write_demo_catalog(root / "catalog")
    store = Store(root / "store")
    store.activate(store.compile(catalog))
    return DemoStore(root / "store", catalog, store)


@pytest.fixture(scope="session")
def demo_snapshot(demo_store):
    return demo_store.store.open()


@pytest.fixture(scope="session")
def opening_state(demo_store, demo_snapshot):
    """The ledger's opening account state for the demo snapshot; copy it
    per round (the kernel updates state in place)."""
    from rating_core.store import Ledger

    ledger = Ledger(demo_store.root)
    state = ledger.opening_state(demo_snapshot)
    ledger.close()
    return state


@pytest.fixture(scope="session")
def demo_cdr_table(sizes):
    """``sizes.rating_cdrs`` demo CDRs (a pyarrow Table, as the demo writes them)."""
    from rating_core.demo import demo_cdrs

    return demo_cdrs(sizes.rating_cdrs, seed=400)


@pytest.fixture(scope="session")
def demo_cdr_columns(demo_cdr_table, demo_snapshot):
    """The kernel's input columns for the demo CDRs, prepared at the edge
    (numbers as keys, times as epoch ms) exactly as the bulk job does."""
    import numpy as np

    from rating_core import cdr

    prepared = cdr.dedupe(cdr.prepare(demo_cdr_table, cdr.calendar_range(demo_snapshot.tables)))
    good = np.flatnonzero(prepared.good)  # the rows the rater hands the kernel
    assert len(good) > 0.9 * demo_cdr_table.num_rows, "the demo should be mostly valid"
    return {name: np.ascontiguousarray(col[good]) for name, col in prepared.cdr.items()}
