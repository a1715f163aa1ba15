"""Chinese province names in routing plans (README "Routing plans"): 广东,
广东省, 广西壮族自治区 name the province as region data spells it
(``PROVINCE_ALIASES``); a bare Chinese province name is the province (吉林),
its city is 吉林市; a near miss gets a "did you mean" hint as Latin names do;
``--home-city`` takes a routing plan's ``city:`` prefix."""
from __future__ import annotations

import pytest

from rating_core.catalog.routing import AUTONOMOUS_REGIONS_ZH, PROVINCE_ALIASES, PROVINCES_ZH, canonical_region
from rating_core.compile.regions import canonical_entries, city_aliases, region_source
from rating_core.errors import InvalidInput
from test_accounts import CALLER, T0, authorize, env, opened, rid  # noqa: F401 - env: the fixture

MUNICIPALITIES = {"Beijing", "Shanghai", "Tianjin", "Chongqing"}


def test_every_province_has_its_chinese_names_as_the_region_data_writes_them():
    provinces = set(region_source().provinces)
    assert set(PROVINCE_ALIASES.values()) == provinces - MUNICIPALITIES
    # Each province's zh descriptions start with its name (广东省广州市, 广西南宁市).
    starts: dict[str, set[str]] = {}
    for _, (_, province), _, full in canonical_entries():
        if full and province not in MUNICIPALITIES:
            starts.setdefault(province, set()).add(full)
    for zh, en in PROVINCES_ZH.items():
        assert sum(f.startswith(zh + "省") for f in starts[en]) > 0.8 * len(starts[en]), zh
    for zh, (en, _) in AUTONOMOUS_REGIONS_ZH.items():
        assert all(f.startswith(zh) for f in starts[en]), zh
    aliases = city_aliases()  # the municipalities are cities of their own name
    assert [aliases[m] for m in ("北京", "上海市", "天津", "重庆市")] == ["Beijing", "Shanghai", "Tianjin", "Chongqing"]


@pytest.mark.parametrize("name, canonical", [
    ("广东", "province:Guangdong"), ("广东省", "province:Guangdong"), ("province:广东", "province:Guangdong"),
    ("广西壮族自治区", "province:Guangxi"), ("内蒙古", "province:Inner Mongolia"),
    ("吉林", "province:Jilin"), ("吉林市", "city:Jilin"), ("天津", "city:Tianjin"), ("Guangdong", "Guangdong"),
    ("city:广东", "city:广东"),  # no city of that name: refused by the check, with a hint
])
def test_canonical_region_names(name, canonical):
    assert canonical_region(name, city_aliases()) == canonical


def _plan(region):
    return {"groups": {"g": {"destinations": [{"number": "13700000001"}]}},
            "rules": [{"group": "g", "caller_regions": [region]}]}


def test_a_plan_names_a_province_in_chinese_and_routes_its_callers(env):  # noqa: F811
    ops = env
    opened(ops)
    from rating_core.compile.regions import region_source as src_of
    from rating_core.numbers import normalize

    src = src_of()
    caller = normalize(CALLER)
    prefix = max((p for p in src.city_prefixes if caller.startswith(p)), key=len)
    province = src.provinces[src.city_province[src.city_prefixes[prefix]]]
    zh = next(k for k, v in PROVINCE_ALIASES.items() if v == province) if province not in MUNICIPALITIES else None
    other = "广东" if province != "Guangdong" else "广西"
    ops.set_routing(rid(), "4001234567", plan=_plan(other), at_ms=T0)
    assert f'"province:{PROVINCE_ALIASES[other]}"' in ops.get_account("acme")["numbers"][0]["plan"]
    assert authorize(ops, "4001234567").reason == "no_route"  # the caller is not in that province
    if zh is not None:
        ops.set_routing(rid(), "4001234567", plan=_plan(zh + ("省" if zh in PROVINCES_ZH else "")), at_ms=T0)
        assert authorize(ops, "4001234567").allow


@pytest.mark.parametrize("name, hint", [
    ("广东地区", "did you mean '广东'?"), ("黑龙红", "did you mean '黑龙江'?"), ("city:广东", "did you mean '广东'?"),
    ("Guangdon", "did you mean 'Guangdong'?"),
])
def test_a_near_chinese_name_gets_a_hint(env, name, hint):  # noqa: F811
    ops = env
    opened(ops)
    with pytest.raises(InvalidInput) as e:
        ops.set_routing(rid(), "4001234567", plan=_plan(name), at_ms=T0)
    assert e.value.field == "plan.rules[0].caller_regions" and hint in e.value.message, e.value.message


def test_home_city_takes_the_city_prefix(env):  # noqa: F811
    ops = env
    opened(ops)
    for number, city in (("4001234568", "city:Shenzhen"), ("4001234569", "city:深圳")):
        ops.add_numbers(rid(), [number], at_ms=T0)
        ops.lock_number(rid(), number, "acme", at_ms=T0)
        ops.submit_number(rid(), number, at_ms=T0)
        ops.activate_number(rid(), number, city, at_ms=T0)
        got = next(n for n in ops.get_account("acme")["numbers"] if n["number"] == number)
        assert got["home_city"] == "Shenzhen"
    ops.add_numbers(rid(), ["4001234570"], at_ms=T0)
    ops.lock_number(rid(), "4001234570", "acme", at_ms=T0)
    ops.submit_number(rid(), "4001234570", at_ms=T0)
    with pytest.raises(InvalidInput) as e:
        ops.activate_number(rid(), "4001234570", "city:Shenzen", at_ms=T0)
    assert e.value.field == "home_city" and "did you mean 'Shenzhen'?" in e.value.message


def test_a_plan_file_that_does_not_read_is_an_error_naming_it(tmp_path):
    """`accounts number routing --plan FILE`: bytes that are not UTF-8 and
    YAML that does not read are one line naming the file (exit 2), read as
    the catalog reads its document (a key written twice refused); they were
    a UnicodeDecodeError traceback (breaker)."""
    import subprocess
    import sys

    from rating_core.cli_accounts import _plan_document

    good = tmp_path / "good.yaml"
    good.write_text("groups: {a: {destinations: [{number: '13902001234'}]}}\n"
                    "rules: [{group: a, caller_regions: ['广东']}]\n", encoding="utf-8")
    assert _plan_document(good)["rules"][0]["caller_regions"] == ["广东"]
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b'groups: {a: {destinations: [{number: "13902001234"}]}}\nrules: [{group: a, caller_regions: ["\xff"]}]\n')
    twice = tmp_path / "twice.yaml"
    twice.write_text("groups: {a: {destinations: []}}\ngroups: {b: {destinations: []}}\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [{group: a\n")
    for path, said in ((bad, "line 2: not UTF-8 text (save the plan as UTF-8"), (twice, "duplicate name"),
                       (broken, "line ")):
        with pytest.raises(InvalidInput) as e:
            _plan_document(path)
        assert e.value.field == "plan" and str(path) in str(e.value) and said in str(e.value), str(e.value)
    demo = tmp_path / "demo"
    subprocess.run([sys.executable, "-m", "rating_core", "demo", "--cdrs", "10", "--dir", str(demo)], check=True,
                   capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "rating_core", "accounts", "number", "routing", "4000589196",
                           "--plan", str(bad), "--store", str(demo / "store")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "plan:" in proc.stderr and "not UTF-8" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_plan_file_is_read_as_the_catalog_reads_its_document(tmp_path, monkeypatch):
    """One reader (``yamldoc.read_file``) for both: a plan is bounded in
    size as a catalog is (it had no bound: a plan of any size was read
    whole), and each names its own file in the same words."""
    from rating_core.catalog import load_catalog, yamldoc
    from rating_core.cli_accounts import _plan_document
    from rating_core.errors import CatalogError

    plan, catalog = tmp_path / "plan.yaml", tmp_path / "catalog.yaml"
    text = "groups: {a: {destinations: [{number: '13902001234'}]}}\nrules: [{group: a}]\n" + "#" * 200 + "\n"
    plan.write_text(text)
    catalog.write_text(text)
    monkeypatch.setattr(yamldoc, "MAX_BYTES", 100)
    with pytest.raises(InvalidInput) as e:
        _plan_document(plan)
    with pytest.raises(CatalogError) as c:
        load_catalog(catalog)
    size = len(text.encode())
    assert e.value.field == "plan" and e.value.message == f"{plan}: {size} bytes, more than the limit of 100"
    assert c.value.problems == [f"{catalog}: {size} bytes, more than the limit of 100"]
