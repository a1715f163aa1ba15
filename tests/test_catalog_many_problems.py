"""A catalog with 20,000 problems fails in one pass (N10 breaker finding 4:
placing each problem on its line scanned the whole mapping, so 20,000
unknown top-level keys took 447 s; about 3 s of CPU since, and these tests
would run for minutes again if the quadratic step came back; no time is
asserted here: speed is measured in benchmarks/), and lists the first
``MAX_PROBLEMS`` of them with the count of all."""
from __future__ import annotations

import pytest

from rating_core.catalog import load_catalog
from rating_core.demo import write_demo_catalog
from rating_core.errors import MAX_PROBLEMS, CatalogError


def test_twenty_thousand_unknown_keys(tmp_path):
    catalog = write_demo_catalog(tmp_path / "catalog")
    first = catalog.read_text(encoding="utf-8").count("\n") + 1
    with catalog.open("a", encoding="utf-8") as f:
        f.writelines(f"k{i}: {i}\n" for i in range(20_000))
    with pytest.raises(CatalogError) as e:
        load_catalog(catalog)
    assert e.value.count == 20_000 and len(e.value.problems) == MAX_PROBLEMS
    assert e.value.problems[0] == f"{catalog}: k0: Extra inputs are not permitted (line {first})"
    assert e.value.problems[-1].endswith(f"(line {first + MAX_PROBLEMS - 1})")
    assert str(e.value).endswith(f"\n... and {20_000 - MAX_PROBLEMS} more problems")


def test_thousands_of_refused_and_referring_records(tmp_path):
    """Records the schema refuses are left out of the cross-checks, and a
    cross-check problem naming one of them is not repeated: that filter was
    a scan of every refused name per problem (4,000 of each: 13 s of CPU)."""
    import yaml

    catalog = write_demo_catalog(tmp_path / "catalog")
    doc = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    accounts = doc["accounts"]
    model = {k: v for k, v in next(iter(accounts.values())).items() if k != "numbers"}
    for i in range(4000):
        accounts[f"bad{i}"] = dict(model, bogus=1)  # refused by the schema
        accounts[f"ref{i}"] = dict(model, package="nope")  # a cross-check problem
    catalog.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError) as e:
        load_catalog(catalog)
    assert e.value.count == 8000
    assert f"{catalog}: accounts.bad0.bogus: Extra inputs are not permitted (line 3)" in e.value.problems
