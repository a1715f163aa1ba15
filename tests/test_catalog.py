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


def test_bands_must_cover_every_minute(tmp_path):
    text = GOOD.replace("  - {name: offpeak}\n", "")
    p = problems(tmp_path, text)
    assert any("time_bands: no band covers workday 00:00-08:00" in x for x in p), p
    assert any("time_bands: no band covers workday 20:00-24:00" in x for x in p), p
    text = GOOD.replace("hours: [8, 20]}", "hours: ['07:30', '22:00']}").replace(
        "  - {name: offpeak}\n", "  - {name: night, hours: ['22:00', '07:15']}\n  - {name: w, day_kinds: [weekend, holiday]}\n")
    p = problems(tmp_path, text)
    assert p == [x for x in p if "no band covers workday 07:15-07:30" in x] and p, p


def test_bands_per_package_wrap_midnight(tmp_path):
    text = GOOD.replace("rates:\n  std:", """band_sets:
  shop:
    - {name: night, hours: ['22:00', '08:00']}
    - {name: day, hours: ['08:00', '22:00']}
band_rule: split
billable_seconds: ceil
rates:
  std:""").replace("p1: {kind: prepaid, fee: 3000, period_months: 36, rates: [{rate: std}]}",
                   "p1: {kind: prepaid, fee: 3000, period_months: 36, band_set: shop, rates: [{rate: std, band: night}, {rate: intro}]}")
    cat = load_catalog(write(tmp_path, text))
    assert cat.bands_of("p1")[0].hours == (22 * 60, 8 * 60) and cat.band_rule.value == "split"
    assert cat.billable_rule("std").value == "ceil"
    # a band of another set is unknown to the package
    p = problems(tmp_path, text.replace("band: night", "band: peak"))
    assert any("packages.p1.rates[0].band: unknown time band 'peak' (not in the package's band set 'shop')" in x
               for x in p), p
    p = problems(tmp_path, text.replace("band_set: shop", "band_set: mall"))
    assert any("packages.p1.band_set: unknown band set 'mall'" in x for x in p), p


@pytest.mark.parametrize("change, expected", [
    # two bands of one name: both records named
    (("  - {name: offpeak}\n", "  - {name: offpeak}\n  - {name: peak}\n"),
     "time_bands[2].name: duplicate band name 'peak', also time_bands[0].name"),
    # two rates (YAML keys) of one name: both lines named
    (("  intro:", "  std: {tiers: [{price: 0.2}]}\n  intro:"),
     "rates.std (line 10): duplicate name, also rates.std (line 9)"),
    (("destination_classes: [mobile, landline]", "destination_classes: [mobile, landline, mobile]"),
     "destination_classes[2]: duplicate destination class 'mobile', also destination_classes[0]"),
    (("numbers: [{number: \"4001234567\", home_city: Shenzhen}]",
      "numbers: [{number: \"4001234567\", home_city: Shenzhen}, {number: \"4001234567\", home_city: Shenzhen}]"),
     "accounts.acme.numbers[1] (4001234567).number: duplicate number '4001234567', also accounts.acme.numbers[0].number"),
])
def test_duplicate_names_are_refused_naming_both_records(tmp_path, change, expected):
    p = problems(tmp_path, GOOD.replace(*change))
    assert any(x.endswith(expected) and "catalog.yaml: " in x for x in p), p


def test_duplicate_prefixes_name_both_lines(tmp_path):
    with pytest.raises(CatalogError) as exc:
        load_catalog(write(tmp_path, GOOD, prefixes="prefix,class\n13,mobile\n0,landline\n13,landline\n"))
    assert any("prefixes.csv: line 4: prefix: duplicate prefix '13', also line 2" in x for x in exc.value.problems)


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


def test_the_readme_catalog_loads(tmp_path):
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## The catalog.*?```yaml\n(.*?)```", readme, re.S).group(1)
    cat = load_catalog(write(tmp_path, block, prefixes="prefix,class\n138,mobile\n0755,landline\n010,landline\n",
                             numbers="number,account\n"))
    assert cat.packages["late_shop"].band_set == "shop" and cat.packages["bundle_1k"].overage_rate == "std_012"


def test_a_misspelt_region_gets_a_hint_at_compile(tmp_path):
    """Newcomer: catalog compile named an unknown city or region with no
    "did you mean", where `accounts` operations gave one (one function,
    ``catalog.routing.near_region``, serves both)."""
    from rating_core.compile.regions import region_source

    cities = set(region_source().cities)
    text = GOOD.replace("home_city: Shenzhen", "home_city: Shenzen")
    with pytest.raises(CatalogError) as exc:
        load_catalog(write(tmp_path, text), regions=cities)
    assert any("home_city: unknown city 'Shenzen' (not in region data); did you mean 'Shenzhen'?" in x
               for x in exc.value.problems), exc.value.problems
