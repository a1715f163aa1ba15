"""Compile a large catalog: 1M destination prefixes and 100k 400 numbers.

The catalog is written synthetically (YAML + two CSVs) into a temporary
directory once; each round is one ``Store(dir).compile(path)`` — load and
validate, compile every table, write the LMDB snapshot. Target: < 10 s.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import yaml

from rating_core.store import Store

CLASSES = ["mobile", "landline", "trunk", "premium"]
CITIES = ["Beijing", "Shanghai", "Shenzhen", "Guangzhou", "Wuhan", "Nanjing", "Tianjin", "Jinan"]
NUMBERS_PER_ACCOUNT = 100


def destination_prefixes(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """n distinct prefixes in national form, nested like a real carrier
    table: 3-digit mobile blocks and area codes, 7-digit number blocks
    (号段) inside them, and longer exceptions inside those."""
    out: set[str] = set(f"1{d}{e}" for d in "3456789" for e in "0123456789")  # 130..199
    out |= {f"0{a}" for a in range(10, 100)}  # 010..099 area codes
    out |= {f"0{a}" for a in range(310, 1000)}  # 0310..0999
    while len(out) < n:
        need = n - len(out)
        mobile = rng.integers(1_300_000, 2_000_000, size=need // 2 + 1)  # 7-digit blocks
        fixed = rng.integers(10_000_000, 100_000_000, size=need // 2 + 1)  # 0 + 8-digit blocks
        out.update(mobile.astype(str).tolist())
        out.update(("0" + s for s in fixed.astype(str).tolist()))
    prefixes = sorted(out)[:n]
    classes = [CLASSES[0] if p[0] == "1" else CLASSES[1 + (len(p) % 3)] for p in prefixes]
    return prefixes, classes


def write_catalog(root, n_prefixes: int, n_numbers: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    prefixes, classes = destination_prefixes(n_prefixes, rng)
    pacsv.write_csv(pa.table({"prefix": prefixes, "class": classes}), root / "prefixes.csv")

    n_accounts = max(1, n_numbers // NUMBERS_PER_ACCOUNT)
    numbers = rng.choice(10_000_000, size=n_numbers, replace=False)
    pacsv.write_csv(
        pa.table({
            "number": [f"400{x:07d}" for x in numbers],
            "account": [f"acct{i % n_accounts:06d}" for i in range(n_numbers)],
            "status": ["active" if i % 50 else "suspended" for i in range(n_numbers)],
            "billing_start": [("agent_answer", "ivr_answer", "ring")[i % 3] for i in range(n_numbers)],
            "home_city": [CITIES[i % len(CITIES)] for i in range(n_numbers)],
            "routing": [""] * n_numbers,
        }),
        root / "numbers.csv",
    )
    packages = ["payg", "prepaid3y", "bundle500"]
    doc = {
        "name": f"bench-{n_prefixes}-{n_numbers}",
        "destination_classes": CLASSES,
        "destination_prefixes_csv": "prefixes.csv",
        "numbers_csv": "numbers.csv",
        "time_bands": [
            {"name": "peak", "day_kinds": ["workday"], "hours": [8, 20]},
            {"name": "offpeak"},
        ],
        "rates": {
            "std": {"tiers": [{"price": "0.12"}]},
            "mobile": {"tiers": [{"price": "0.22", "unit": 180, "increment": 180}, {"start": 180, "price": "0.11"}]},
            "six": {"tiers": [{"price": "0.15", "increment": 6}], "rounding": "half_up", "free_seconds": 3},
        },
        "packages": {
            "payg": {"kind": "payg", "rates": [{"rate": "six", "band": "peak"}, {"rate": "std"}]},
            "prepaid3y": {"kind": "prepaid", "fee": 3000, "period_months": 36,
                          "rates": [{"rate": "mobile", "destination": "mobile"}, {"rate": "std"}]},
            "bundle500": {"kind": "bundle", "included_minutes": 500, "overage_price": "0.10",
                          "rates": [{"rate": "std"}]},
        },
        "accounts": {
            f"acct{i:06d}": {"package": packages[i % 3], "package_start": "2026-01-01"}
            for i in range(n_accounts)
        },
    }
    path = root / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def big_catalog(tmp_path_factory, sizes):
    root = tmp_path_factory.mktemp("compile")
    return write_catalog(root / "catalog", sizes.compile_prefixes, sizes.compile_numbers), root / "store"


def test_compile_catalog(benchmark, big_catalog, sizes):
    path, store_dir = big_catalog
    store = Store(store_dir)
    versions = []
    benchmark.extra_info.update(destination_prefixes=sizes.compile_prefixes, numbers=sizes.compile_numbers)
    benchmark.pedantic(lambda: versions.append(store.compile(path)), rounds=3, iterations=1, warmup_rounds=0)
    benchmark.extra_info["median_seconds"] = round(benchmark.stats.stats.median, 3)
    snap = store.open(versions[-1])
    assert snap.meta["counts"]["destination_prefixes"] == sizes.compile_prefixes
    assert snap.meta["counts"]["numbers"] == sizes.compile_numbers
