"""Inputs the documented checks refuse (N10 breaker finding 5): a search
pattern with a character class, a search limit out of range, an unknown
grade, a month in full-width digits, a catalog amount above 10^15 minor
units. Each is refused naming its field."""
from __future__ import annotations

import pytest

from rating_core.accounts import Accounts
from rating_core.billing.statements import parse_month
from rating_core.catalog import load_catalog
from rating_core.demo import write_demo_catalog
from rating_core.errors import CatalogError, InvalidInput
from demo_server import make_store


def test_search_numbers_refuses_what_it_does_not_document(tmp_path):
    store, _ = make_store(tmp_path)
    ops = Accounts.open(store)
    ops.add_numbers("r1", ["4006888888", "4001234500"])
    assert [x["number"] for x in ops.search_numbers("400688*")] == ["4006888888"]
    assert len(ops.search_numbers("400*", limit=1)) == 1
    for args, field in (((("[0-9]",), {}), "pattern"), ((("[4]*",), {}), "pattern"),
                        ((("*",), {"limit": -1}), "limit"), ((("*",), {"limit": 0}), "limit"),
                        ((("*",), {"limit": 1001}), "limit"), ((("*",), {"grade": "<x>"}), "grade")):
        with pytest.raises(InvalidInput) as e:
            ops.search_numbers(*args[0], **args[1])
        assert e.value.field == field, (args, e.value)


def test_a_month_is_ascii_digits():
    assert parse_month("2026-10") == 2026 * 12 + 9
    with pytest.raises(ValueError):
        parse_month("２０２６-１０")


def test_a_catalog_amount_above_ten_to_the_fifteen_minor_units(tmp_path):
    catalog = write_demo_catalog(tmp_path / "catalog")
    text = catalog.read_text(encoding="utf-8")
    fee = next(line for line in text.splitlines() if line.strip().startswith("fee:"))
    for yuan, refused in (("100000000000", False), ("100000000000.0001", True)):
        catalog.write_text(text.replace(fee, fee.split("fee:")[0] + f"fee: {yuan}", 1), encoding="utf-8")
        if not refused:
            load_catalog(catalog)
            continue
        with pytest.raises(CatalogError) as e:
            load_catalog(catalog)
        assert any(".fee: " in p and "too large (at most 100000000000 yuan)" in p for p in e.value.problems), \
            e.value.problems
