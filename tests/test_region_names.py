"""One name per region: phonenumbers' mobile prefixes and landline area codes
spell some cities differently (``LuAn`` / ``Lu'an``, ``Xichang`` for
Liangshan); the region data gives every prefix of one prefecture (one Chinese
description) one name, so ``report --by region`` and routing see one city."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rating_core.cli import main
from rating_core.compile.regions import canonical_entries, city_aliases, region_source
from rating_core.engine import Engine
from rating_core.store import Store
from test_crm import CATALOG, DESTS, table


def test_every_prefix_of_one_prefecture_has_one_city():
    src = region_source()
    city_of = {prefix: src.cities[c] for prefix, c in src.city_prefixes.items()}
    assert city_of["0564"] == city_of["1301402"] == "LuAn"  # area code 0564 and a Lu'an mobile block
    assert city_of["0834"] == "Liangshan" and city_of["0471"] == "Hohhot"  # not Xichang, Huhehaote
    by_zh: dict[str, set[str]] = {}
    for prefix, _, _, zh in canonical_entries():
        if zh:
            by_zh.setdefault(zh, set()).add(city_of[prefix])
    assert {zh: names for zh, names in by_zh.items() if len(names) > 1} == {}
    assert "Lu'an" not in src.cities and "Xichang" not in src.cities
    aliases = city_aliases()  # the other spellings still name the city in a catalog
    assert aliases["Lu'an"] == aliases["Lu'an, Anhui"] == aliases["六安"] == "LuAn"
    assert aliases["Xichang"] == "Liangshan"


def test_report_by_region_counts_one_city_whichever_table_the_caller_is_in(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(CATALOG)
    Store(tmp_path / "s").compile(tmp_path / "c.yaml", activate=True)
    engine = Engine.open(tmp_path / "s", threads=1)
    try:
        rated = engine.rate(table([(1, "4001000005", "13014020000", DESTS[0], 0, 20),  # mobile: LuAn
                                   (2, "4001000005", "05641234567", DESTS[0], 60, 20)])).rated  # landline: Lu'an
    finally:
        engine.close()
    assert rated.column("caller_city").to_pylist() == ["LuAn", "LuAn"]
    pq.write_table(rated, tmp_path / "r.parquet")
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "r.parquet"), "--by", "region", "--out", str(tmp_path / "r.json")])
    assert e.value.code == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [(r["province"], r["city"], r["calls"]) for r in rows] == [("Anhui", "LuAn", 2)]


def test_catalog_names_a_city_by_another_spelling(tmp_path):
    """A catalog's home city and a routing plan's caller region written
    ``Lu'an`` / ``Xichang`` (the area-code spelling) are the city's one name."""
    from rating_core.catalog import load_catalog
    from test_catalog import GOOD, write

    text = GOOD.replace("home_city: Shenzhen", "home_city: \"Lu'an\", routing: r").replace(
        "numbers_csv: numbers.csv", """numbers_csv: numbers.csv
routing_plans:
  r:
    groups: {a: {destinations: [{number: "13700000001"}]}}
    rules: [{group: a, caller_regions: ["Lu'an", "city:Xichang", Anhui]}]
    blacklist: {regions: [Huhehaote]}""")
    cat = load_catalog(write(tmp_path, text), regions=city_aliases())
    assert cat.accounts["acme"].numbers[0].home_city == "LuAn"
    plan = cat.routing_plans["r"]
    assert plan.rules[0].caller_regions == ["city:LuAn", "city:Liangshan", "Anhui"]
    assert plan.blacklist.regions == ["city:Hohhot"]


def test_a_city_spelling_never_names_a_province_of_the_same_name(tmp_path):
    """吉林市 is the city Jilin, Gonghe the prefecture Hainan of Qinghai: as
    bare names they resolved to the provinces Jilin and Hainan (breaker)."""
    from rating_core.catalog.routing import canonical_region

    aliases = city_aliases()
    assert canonical_region("吉林市", aliases) == "city:Jilin"
    assert canonical_region("Gonghe", aliases) == "city:Hainan"
    assert canonical_region("Jilin", aliases) == "Jilin"  # region data's own name: the province first
