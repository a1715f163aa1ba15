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


@pytest.fixture(scope="session")
def demo_snapshot(tmp_path_factory):
    """The demo catalog, compiled and activated in a temporary store."""
    from rating_core.demo import write_demo_catalog
    from rating_core.store import Store

    root = tmp_path_factory.mktemp("demo")
    catalog = write_demo_catalog(root / "catalog")
    store = Store(root / "store")
    store.activate(store.compile(catalog))
    snapshot = store.open()
    yield snapshot


@pytest.fixture(scope="session")
def demo_cdr_table(sizes):
    """``sizes.rating_cdrs`` demo CDRs (a pyarrow Table, as the demo writes them)."""
    from rating_core.demo import demo_cdrs

    return demo_cdrs(sizes.rating_cdrs, seed=400)
