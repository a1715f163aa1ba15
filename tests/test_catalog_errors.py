"""Catalog loading against mutated catalogs: every problem in one pass, on
the right file and line; duplicate keys, depth, size and numbers bounded;
Chinese city names; never a traceback."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rating_core.catalog import load_catalog
from rating_core.catalog import yamldoc
from rating_core.compile.regions import city_aliases
from rating_core.errors import CatalogError

DEMO = Path(__file__).resolve().parents[1] / "rating_core" / "demo"


@pytest.fixture
def catalog(tmp_path):
    for f in DEMO.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(DEMO / "catalog.yaml", tmp_path / "catalog.yaml")
    return tmp_path / "catalog.yaml"


def problems(path, regions=None) -> list[str]:
    with pytest.raises(CatalogError) as e:
        load_catalog(path, regions=city_aliases() if regions is None else regions)
    return e.value.problems


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_demo_loads(catalog):
    assert load_catalog(catalog, regions=city_aliases()).accounts


def test_duplicate_key_names_both_lines(catalog):
    edit(catalog, "  std_012: {tiers: [{price: 0.12}]}\n",
         "  std_012:\n    tiers: [{price: 0.12}]\n    tiers: [{price: 0.001}]\n")
    first = line_of(catalog, "tiers: [{price: 0.12}]")
    p = problems(catalog)
    assert p == [f"{catalog}: rates.std_012.tiers (line {first + 1}): duplicate name, also rates.std_012.tiers (line {first})"]


def test_every_problem_in_one_pass_on_its_file_and_line(catalog):
    edit(catalog, "  std_010: {tiers: [{price: 0.10}]}", "  std_010: {tiers: [{price: -1}]}")
    edit(catalog, "package: ", "package: nopkg_")
    numbers = catalog.parent / "numbers.csv"
    rows = numbers.read_text().splitlines()
    rows[2] = rows[2].replace("ivr_answer", "ivr_answr").replace("agent_answer", "agent_answr")
    numbers.write_text("\n".join(rows) + "\n")
    p = problems(catalog)
    price = line_of(catalog, "std_010:")
    # The schema's own words, without pydantic's "Value error, " prefix.
    assert f"{catalog}: rates.std_010.tiers[0].price: money cannot be negative (line {price})" in p
    assert not any("Value error" in x or "Assertion failed" in x for x in p), p
    assert any(x.startswith(f"{numbers}: line 3: billing_start: ") for x in p), p  # the CSV's own line
    assert any(x.startswith(f"{catalog}: accounts.") and "unknown package 'nopkg_" in x
               for x in p), p  # a cross-check, in the same pass as the schema problems


def test_chinese_city_names(catalog):
    numbers = catalog.parent / "numbers.csv"
    rows = numbers.read_text().splitlines()
    cells = rows[1].split(",")
    cells[4] = "天津"
    rows[1] = ",".join(cells)
    numbers.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cat = load_catalog(catalog, regions=city_aliases())
    homes = {n.number: n.home_city for a in cat.accounts.values() for n in a.numbers}
    assert homes[cells[0]] == "Tianjin"
    assert city_aliases()["天津市"] == "Tianjin" and city_aliases()["沈阳"] == "Shenyang"


@pytest.mark.parametrize("home", ["city:深圳", "city:Shenzhen", " city: 深圳 "])
def test_home_city_takes_the_city_prefix(catalog, home):
    """A number's ``home_city`` takes ``city:`` as ``--home-city`` and a
    routing plan do (the catalog refused ``city:深圳``); a wrong city after
    it is still the catalog's error naming the field."""
    numbers = catalog.parent / "numbers.csv"
    rows = numbers.read_text().splitlines()
    cells = rows[1].split(",")
    cells[4] = home
    rows[1] = ",".join(cells)
    numbers.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cat = load_catalog(catalog, regions=city_aliases())
    homes = {n.number: n.home_city for a in cat.accounts.values() for n in a.numbers}
    assert homes[cells[0]] == "Shenzhen"
    cells[4] = "city:Shenzen"
    rows[1] = ",".join(cells)
    numbers.write_text("\n".join(rows) + "\n", encoding="utf-8")
    p = problems(catalog)
    assert any("home_city: unknown city 'Shenzen'" in x for x in p), p


@pytest.mark.parametrize("text, says", [
    ("name: x\naccounts: {x: null}\n", "accounts.x: Input should be a valid dictionary"),
    ("a: " + "[" * 100 + "]" * 100 + "\n", "line 1: nested more than 32 levels deep"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{k}: &{k} [{', '.join(['*' + p] * 10)}]\n" for p, k in zip("abcdefg", "bcdefgh")),
     "expands to more than 2,000,000 values"),
    ("name: x\nrates: {r: {tiers: [{price: .inf}]}}\n", "line 2: '.inf': not a finite number"),
    ("name: x\nrates: {r: {tiers: [{price: 10000000000000}]}}\n", "beyond the largest number"),
    # An exponent: 1.0e+3 compiled as 1000 yuan while 1e3 was refused (breaker 2 F5).
    ("name: x\nrates: {r: {tiers: [{price: 1.0e+3}]}}\n", "line 2: '1.0e+3': not a decimal number (YAML would read it as 1000.0)"),
    ("name: x\nrates: {r: {tiers: [{price: 1.0e+300}]}}\n", "line 2: '1.0e+300': not a decimal number"),
    # Quoted, a leading zero is text, read by the one money parser (breaker 2 F5: "012" was 12 yuan).
    ("name: x\nrates: {r: {tiers: [{price: \"012\"}]}}\n", "price: not an amount of yuan: '012' (a leading zero"),
    # YAML 1.1 numbers that are not decimal: 012 would have priced 10 yuan, not 0.12 (breaker).
    ("name: x\nrates: {r: {tiers: [{price: 012}]}}\n", "line 2: '012': not a decimal number (YAML would read it as 10)"),
    ("name: x\nrates: {r: {tiers: [{price: 0x10}]}}\n", "line 2: '0x10': not a decimal number"),
    ("name: x\nrates: {r: {tiers: [{price: 1_0}]}}\n", "line 2: '1_0': not a decimal number"),
    ("name: x\npackages: {p: {kind: prepaid, fee: 1:30}}\n", "line 2: '1:30': not a decimal number (YAML would read it as 90)"),
    # Spelled as the one money parser refuses, quoted or not (hostile-input round: .5 read as 0.5 yuan).
    *[(f"name: x\nrates: {{r: {{tiers: [{{price: {q}{t}{q}}}]}}}}\n", why) for q in ("", '"') for t, why in [
        (".5", "not .5 or 1."), ("1.", "not .5 or 1."), ("+0.15", "no + sign"), ("-0", "a negative zero")]],
    # An integer field takes a YAML integer only: 0180 (text to YAML 1.1) was 180, "60" and 60.0 were 60.
    ("name: x\nrates: {r: {tiers: [{price: 1, unit: 0180}]}}\n", "rates.r.tiers[0].unit: Input should be a valid integer"),
    ("name: x\nrates: {r: {tiers: [{price: 1, unit: \"60\"}]}}\n", "rates.r.tiers[0].unit: Input should be a valid integer"),
    ("name: x\nrates: {r: {tiers: [{price: 1, increment: 60.0}]}}\n", "tiers[0].increment: Input should be a valid integer"),
    ("name: x\ncustomer_rules: {cooling_days: \"090\"}\n", "customer_rules.cooling_days: Input should be a valid integer"),
    # Tags other than the plain ones, and names past their bound (hostile-input round: !!binary, 10 MB names).
    ("name: x\nrates: {r: {tiers: [{price: !!binary MTI=}]}}\n",
     "rates.r.tiers[0].price (line 2): the YAML tag !!binary is not allowed"),
    ("name: !!set {a, b}\n", "name (line 1): the YAML tag !!set is not allowed"),
    ("name: !custom x\n", "name (line 1): the YAML tag !custom is not allowed"),
    ("name: x\nrates: {" + "r" * 129 + ": {tiers: [{price: 1}]}}\n", "a name of 129 characters, more than 128 (line 2)"),
    ("name: " + "n" * 1025 + "\n", "name: 1,025 characters, more than 1024 (line 1)"),
    ("~\n", "the catalog must be a mapping, not null"),
    ("name: x\n[a]: 1\n", "line 2: a key must be a name, not a list"),
    ("name: [unclosed\n", "line 2, column 1: "),
    ("", "empty document"),
    ("- a\n- b\n", "the catalog must be a mapping"),
    ("name: x\ndestination_prefixes: [1, 2]\ndestination_prefixes_csv: p.csv\n", "destination_prefixes: must be a mapping"),
    ("name: x\nnumbers_csv: /etc/passwd\n", "numbers_csv: '/etc/passwd' must name a file beside the catalog"),
    ("name: x\nnumbers_csv: ../../etc/passwd\n", "must name a file beside the catalog"),
    ("name: x\nnumbers_csv: [1]\n", "numbers_csv: must be a file name"),
    ("name: x\ndestination_prefixes_csv: missing.csv\n", "'missing.csv': no such file beside the catalog"),
    ("name: x\nlabels: {fr: {a: b}}\n", "labels.fr"),
    ("name: x\nlabels: {zh: {a: ''}}\n", "labels.zh.a"),
])
def test_mutated_catalogs_are_problems_not_tracebacks(tmp_path, text, says):
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    p = problems(path)
    assert any(says in x for x in p), p


def test_encoding_and_size(tmp_path, monkeypatch):
    path = tmp_path / "catalog.yaml"
    path.write_bytes("name: 中文目录\n".encode("gbk"))
    assert problems(path) == [f"{path}: line 1: not UTF-8 text (save the catalog as UTF-8; "
                              "a GBK file is Excel's or Notepad's default on Chinese Windows)"]
    monkeypatch.setattr(yamldoc, "MAX_BYTES", 1000)
    path.write_text("name: " + "x" * 2000 + "\n")
    assert problems(path) == [f"{path}: 2007 bytes, more than the limit of 1000"]
    fifo = tmp_path / "fifo.csv"
    import os

    os.mkfifo(fifo)
    path.write_text("name: x\nnumbers_csv: fifo.csv\n")
    assert any("'fifo.csv': no such file beside the catalog" in x for x in problems(path))


def test_labels_name_what_the_catalog_defines(catalog):
    edit(catalog, "    mobile: 手机\n", "    mobil: 手机\n")
    edit(catalog, "    peak: 高峰\n", "    peak: \"高峰\\t\"\n")
    p = problems(catalog)
    assert any("labels.zh.mobil: not a destination class, time band, package or feature" in x for x in p), p
    assert any("labels.zh.peak: a label is one line of printable text" in x for x in p), p


def test_a_numbers_row_without_its_account(catalog):
    numbers = catalog.parent / "numbers.csv"
    lines = numbers.read_text(encoding="utf-8").splitlines()
    head = lines[0].split(",")
    row = lines[1].split(",")
    row[head.index("account")] = ""
    numbers.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n", encoding="utf-8")
    p = problems(catalog)
    assert any(x.endswith("numbers.csv: line 2: account: missing (the account that holds the number)") for x in p), p


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1969-12-31", "2200-01-02"])
def test_a_package_start_outside_the_edge_time_range_is_a_problem_naming_the_account(catalog, day):
    """Breaker: 9999-12-31 crashed compile (`year 10000 is out of range`),
    0001-01-01 imported a period ending 0002. The bound is the edge's
    (``cdr.MIN_TIME_MS`` .. ``MAX_TIME_MS``) for the start's local midnight."""
    edit(catalog, "package_start: 2026-02-01", f"package_start: {day}")
    p = problems(catalog)
    assert any(f"accounts.hangzhou_tea.package_start: {day} is outside the dates the system handles "
               f"(1970-01-02 .. 2200-01-01, Asia/Shanghai) (line {line_of(catalog, day)})" in x for x in p), p


def test_accounts_import_into_a_store_without_a_catalog_version_says_so(catalog, tmp_path):
    """Breaker: a store left by a failed compile (an index, no version) gave
    `KeyError: 'packages'`."""
    from rating_core.accounts import Accounts
    from rating_core.accounts.importer import import_catalog
    from rating_core.errors import StoreError
    from rating_core.store import Store

    Store(tmp_path / "store")  # an index, no compiled version
    ops = Accounts.open(tmp_path / "store")
    try:
        with pytest.raises(StoreError, match="no active catalog version.*catalog compile"):
            import_catalog(ops, catalog)
    finally:
        ops.ledger.close()


@pytest.mark.parametrize("spelling", ["1e-1", "0o10", "~", "true", "[0.1]", "０.１０"])
def test_a_bad_overage_price_is_one_problem_at_the_author_s_path(catalog, spelling):
    """Breaker N11 F8: an ``overage_price`` that is no amount of yuan was
    reported at the rate it stands for, ``rates.bundle_1000.overage.tiers[0].price``
    on the ``rates:`` line, a path and line the author never wrote. One
    problem, at ``packages.bundle_1000.overage_price`` and its line."""
    edit(catalog, "overage_price: 0.10", f"overage_price: {spelling}")
    line = line_of(catalog, "overage_price:")
    p = problems(catalog)
    assert len(p) == 1 and "rates.bundle_1000.overage" not in p[0], p
    assert p[0].startswith(f"{catalog}: packages.bundle_1000.overage_price: ") and f"(line {line})" in p[0], p


@pytest.mark.parametrize("old, new", [("overage_price: 0.10", "overage_price: .10"),
                                      ("fee: 480\n", "fee: !!float 4.8e2\n")])
def test_a_number_the_yaml_check_refuses_is_its_one_problem(catalog, old, new):
    """Breaker N11 F8: ``.10`` also gave the derived rate's problem (value
    'None', line of ``rates:``), and a package refused for its fee made its
    ``labels.zh`` entry "not a ... package of this catalog": one problem per
    mistake, the cross-checks of a refused package dropped."""
    edit(catalog, old, new)
    line = line_of(catalog, new.strip())
    p = problems(catalog)
    assert len(p) == 1 and p[0].startswith(f"{catalog}: line {line}: "), p


@pytest.mark.parametrize("edit, problem", [
    ("prepaid_480_1y: {kind: prepaid, fee: 480, overage_price: 0.5", "overage_price: only a bundle package sells overage"),
    ("bundle_1000: {kind: bundle, included_minutes: 1000, overage_price: 0.10, overage_rate: std",
     "overage_price and overage_rate: give one"),
    ("payg_015: {kind: payg, period_months: 12", "period_months: only a prepaid package has a fee"),
    ("payg_015: {kind: payg, included_minutes: 100", "included_minutes: only a bundle package"),
    # Breaker N13 F6: a prepaid credit limit took an account to -420.00 and broke the bills.
    ("prepaid_480_1y: {kind: prepaid, fee: 480, credit_limit: 500", "credit_limit: a prepaid package has none"),
])
def test_a_package_field_its_kind_does_not_use_is_a_problem(tmp_path, edit, problem):
    """Breaker N12 F8: an overage price on a prepaid or pay-as-you-go
    package, or beside an overage_rate, compiled and was never charged; so
    did a pay-as-you-go package's period or included minutes."""
    from rating_core.catalog.load import load_catalog
    from rating_core.errors import CatalogError

    pkg = edit.split(":")[0]
    rest = edit.split("{", 1)[1]
    text = f"""
name: kinds
destination_classes: [mobile]
destination_prefixes: {{"13": mobile}}
rates:
  std: {{tiers: [{{price: 0.12}}]}}
packages:
  {pkg}: {{{rest}, rates: [{{rate: std}}]}}
"""
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as e:
        load_catalog(tmp_path / "c.yaml")
    assert problem in str(e.value), str(e.value)


def test_a_price_finer_than_the_unit_is_named_as_written(tmp_path):
    """Breaker N12 F9: `price: 0.00001` was reported as "not an amount of
    yuan: '1e-05' (digits and at most one point)", a value the author never
    wrote; it is finer than 1/10000 yuan."""
    from rating_core.catalog.load import load_catalog
    from rating_core.errors import CatalogError

    (tmp_path / "c.yaml").write_text("""
name: fine
destination_classes: [mobile]
destination_prefixes: {"13": mobile}
rates:
  std: {tiers: [{price: 0.00001}]}
packages:
  payg: {kind: payg, rates: [{rate: std}]}
""", encoding="utf-8")
    with pytest.raises(CatalogError) as e:
        load_catalog(tmp_path / "c.yaml")
    assert "0.00001 yuan is finer than 1/10000 yuan" in str(e.value) and "1e-05" not in str(e.value), str(e.value)
