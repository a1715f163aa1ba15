"""Catalog loading: money exactness and errors that name file, record, field."""
import textwrap

import pytest

from rating_core.catalog import load_catalog
from rating_core.errors import CatalogError

GOOD = """
name: t
destination_classes: [mobile, landline]
destination_prefixes_csv: prefixes.csv
time_bands:
  - {name: peak, day_kinds: [workday], hours: [8, 20]}
  - {name: offpeak}
rates:
  std: {tiers: [{price: 0.12}]}
  intro: {tiers: [{price: 0.22, unit: 180, increment: 180}, {start: 180, price: 0.11}]}
packages:
  p1: {kind: prepaid, fee: 3000, period_months: 36, rates: [{rate: std}]}
accounts:
  acme:
    package: p1
    package_start: 2026-01-01
    numbers: [{number: "4001234567", home_city: Shenzhen}]
numbers_csv: numbers.csv
"""


def write(tmp_path, yaml_text, prefixes="prefix,class\n13,mobile\n0,landline\n",
          numbers="number,account,status,billing_start,home_city\n4009990001,acme,active,ring,Beijing\n"):
    (tmp_path / "prefixes.csv").write_text(prefixes)
    (tmp_path / "numbers.csv").write_text(numbers)
    path = tmp_path / "catalog.yaml"
    path.write_text(textwrap.dedent(yaml_text))
    return path


def test_good_catalog_and_exact_money(tmp_path):
    cat = load_catalog(write(tmp_path, GOOD), regions={"Shenzhen", "Beijing"})
    assert cat.rates["std"].tiers[0].price == 1200  # 0.12 yuan in 1/10000 yuan
    assert cat.packages["p1"].fee == 30_000_000
    assert cat.rates["intro"].tiers[1].start == 180
    assert cat.destination_prefixes == {"13": "mobile", "0": "landline"}
    numbers = [n.number for n in cat.accounts["acme"].numbers]
    assert numbers == ["4001234567", "4009990001"]


def problems(tmp_path, text, **kw):
    with pytest.raises(CatalogError) as exc:
        load_catalog(write(tmp_path, text, **kw), regions={"Shenzhen", "Beijing"})
    return exc.value.problems


def test_money_finer_than_minor_unit_is_an_error(tmp_path):
    p = problems(tmp_path, GOOD.replace("price: 0.12", "price: 0.12345"))
    assert any("rates.std.tiers[0].price" in x and "finer" in x for x in p), p


def test_errors_name_file_record_field(tmp_path):
    text = GOOD.replace("package: p1", "package: nope").replace("home_city: Shenzhen", "home_city: Atlantis")
    p = problems(tmp_path, text)
    assert any("catalog.yaml: accounts.acme.package: unknown package 'nope'" in x for x in p), p
    assert any("accounts.acme.numbers[0] (4001234567).home_city" in x and "Atlantis" in x for x in p), p


def test_bad_csv_rows_name_the_line(tmp_path):
    p = problems(tmp_path, GOOD, prefixes="prefix,class\n13,mobile\n1x,landline\n0,fax\n",
                 numbers="number,account,home_city\n4009990001,ghost,Beijing\n")
    assert any("prefixes.csv: line 3: prefix" in x for x in p), p
    assert any("destination_prefixes.0: unknown destination class 'fax'" in x for x in p), p
    assert any("numbers.csv: line 2: account: unknown account 'ghost'" in x for x in p), p


def test_bands_must_cover_every_hour(tmp_path):
    text = GOOD.replace("  - {name: offpeak}\n", "")
    p = problems(tmp_path, text)
    assert any("no band covers workday hour 7" in x for x in p), p


def test_bad_400_number_and_tiers(tmp_path):
    text = GOOD.replace('"4001234567"', '"4011234567"').replace("{start: 180, price: 0.11}", "{start: 0, price: 0.11}")
    p = problems(tmp_path, text)
    assert any("accounts.acme.numbers[0].number" in x and "400 + 7 digits" in x for x in p), p
    assert any("rates.intro.tiers" in x and "strictly increase" in x for x in p), p


def test_city_names_in_two_provinces_are_qualified(tmp_path):
    from rating_core.compile.regions import region_source

    cities = set(region_source().cities)
    assert {"Fuzhou, Fujian", "Fuzhou, Jiangxi"} <= cities and "Fuzhou" not in cities
    text = GOOD.replace("home_city: Shenzhen", "home_city: Fuzhou")
    with pytest.raises(CatalogError) as exc:
        load_catalog(write(tmp_path, text), regions=cities)
    assert any("home_city: unknown city 'Fuzhou'; did you mean 'Fuzhou, Fujian' or 'Fuzhou, Jiangxi'?" in x
               for x in exc.value.problems), exc.value.problems
    load_catalog(write(tmp_path, GOOD.replace("home_city: Shenzhen", "home_city: 'Fuzhou, Fujian'")), regions=cities)
