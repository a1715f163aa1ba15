"""A catalog with 20,000 problems fails in one pass in seconds (N10 breaker
finding 4: placing each problem on its line scanned the whole mapping, so
20,000 unknown top-level keys took 447 s), and lists the first
``MAX_PROBLEMS`` of them with the count of all."""
from __future__ import annotations

import time

import pytest

from rating_core.catalog import load_catalog
from rating_core.demo import write_demo_catalog
from rating_core.errors import MAX_PROBLEMS, CatalogError


def test_twenty_thousand_unknown_keys(tmp_path):
    catalog = write_demo_catalog(tmp_path / "catalog")
    first = catalog.read_text(encoding="utf-8").count("\n") + 1
    with catalog.open("a", encoding="utf-8") as f:
        f.writelines(f"k{i}: {i}\n" for i in range(20_000))
    cpu = time.process_time()
    with pytest.raises(CatalogError) as e:
        load_catalog(catalog)
    cpu = time.process_time() - cpu
    assert e.value.count == 20_000 and len(e.value.problems) == MAX_PROBLEMS
    assert e.value.problems[0] == f"{catalog}: k0: Extra inputs are not permitted (line {first})"
    assert e.value.problems[-1].endswith(f"(line {first + MAX_PROBLEMS - 1})")
    assert str(e.value).endswith(f"\n... and {20_000 - MAX_PROBLEMS} more problems")
    # The one bound on time in the unit tests, as the regression guard of a
    # quadratic step: about 3 s of CPU here, 447 s (wall) before the fix.
    assert cpu < 60, f"{cpu:.1f} s of CPU"
