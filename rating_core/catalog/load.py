"""Load a catalog: one YAML document plus the CSV tables it names.

Every problem is reported, not just the first, each as
``FILE: RECORD.FIELD: message`` so an operator can go straight to it.
"""
from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml
from pydantic import ValidationError

from ..errors import CatalogError
from .routing import check_routing
from .schema import DAY_KINDS, Catalog

DIGITS = re.compile(r"^\d{1,18}$")


def _loc(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def _read_csv(path: Path, columns: list[str], problems: list[str]) -> pa.Table | None:
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in columns}),
        )
    except (OSError, pa.ArrowInvalid) as exc:
        problems.append(f"{path}: cannot read: {exc}")
        return None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        problems.append(f"{path}: missing column(s) {', '.join(missing)}")
        return None
    return table


def _load_prefixes(path: Path, problems: list[str]) -> dict[str, str]:
    table = _read_csv(path, ["prefix", "class"], problems)
    if table is None:
        return {}
    prefix = table["prefix"]
    bad = pc.invert(pc.fill_null(pc.match_substring_regex(prefix, r"^\d{1,18}$"), False))
    for i in pc.indices_nonzero(bad).to_pylist()[:20]:
        problems.append(f"{path}: line {i + 2}: prefix: {prefix[i].as_py()!r} is not 1-18 digits")
    prefixes = prefix.to_pylist()
    classes = table["class"].to_pylist()
    out = dict(zip(prefixes, classes))
    if len(out) != len(prefixes):
        problems.append(f"{path}: prefix: {len(prefixes) - len(out)} duplicate prefix(es)")
    return out


NUMBER_COLUMNS = ["number", "account", "status", "billing_start", "home_city", "routing"]


def _load_numbers(path: Path, problems: list[str]) -> list[dict]:
    table = _read_csv(path, NUMBER_COLUMNS[:2], problems)
    if table is None:
        return []
    cols = {c: table[c].to_pylist() for c in NUMBER_COLUMNS if c in table.column_names}
    rows = []
    for i in range(table.num_rows):
        row = {c: v[i] for c, v in cols.items() if v[i] not in (None, "")}
        row["_line"] = i + 2
        rows.append(row)
    return rows


def load_catalog(path: str | Path, regions=None) -> Catalog:
    """Read and validate a catalog.

    ``regions`` (a set of known city names) turns on the check that every
    number's home city exists in region data; the compiler passes it.
    """
    path = Path(path)
    base = path.parent
    problems: list[str] = []
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError([f"{path}: {exc}"]) from None
    if not isinstance(doc, dict):
        raise CatalogError([f"{path}: the catalog must be a mapping"])

    prefix_file = doc.pop("destination_prefixes_csv", None)
    if prefix_file:
        doc.setdefault("destination_prefixes", {})
        doc["destination_prefixes"].update(_load_prefixes(base / prefix_file, problems))

    numbers_file = doc.pop("numbers_csv", None)
    if numbers_file:
        accounts = doc.get("accounts") or {}
        for row in _load_numbers(base / numbers_file, problems):
            line = row.pop("_line")
            owner = row.pop("account")
            if owner not in accounts:
                problems.append(f"{base / numbers_file}: line {line}: account: unknown account {owner!r}")
                continue
            accounts[owner].setdefault("numbers", []).append(row)

    try:
        catalog = Catalog.model_validate(doc)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(f"{path}: {_loc(err['loc'])}: {err['msg']}")
        raise CatalogError(problems) from None

    problems += _cross_check(catalog, path, regions)
    problems += check_routing(catalog, path, regions)
    if problems:
        raise CatalogError(problems)
    return catalog


def _cross_check(cat: Catalog, path: Path, regions) -> list[str]:
    """References between records: names that must exist, coverage."""
    p: list[str] = []
    classes = set(cat.destination_classes)
    bands = {b.name for b in cat.time_bands}
    for prefix, cls in cat.destination_prefixes.items():
        if not DIGITS.match(prefix):
            p.append(f"{path}: destination_prefixes.{prefix}: prefix must be 1-18 digits")
        if cls not in classes:
            p.append(f"{path}: destination_prefixes.{prefix}: unknown destination class {cls!r}")
            if len(p) > 50:
                break
    # Every (day kind, hour) must fall in some band: a call never lacks one.
    for kind in DAY_KINDS:
        for hour in range(24):
            if not any(kind in b.day_kinds and b.hours[0] <= hour < b.hours[1] for b in cat.time_bands):
                p.append(f"{path}: time_bands: no band covers {kind.value} hour {hour}")
    for pid, pkg in cat.packages.items():
        for i, rule in enumerate(pkg.rates):
            where = f"{path}: packages.{pid}.rates[{i}]"
            if rule.rate not in cat.rates:
                p.append(f"{where}.rate: unknown rate {rule.rate!r}")
            if rule.destination is not None and rule.destination not in classes:
                p.append(f"{where}.destination: unknown destination class {rule.destination!r}")
            if rule.band is not None and rule.band not in bands:
                p.append(f"{where}.band: unknown time band {rule.band!r}")
    seen: dict[str, str] = {}
    for aid, acc in cat.accounts.items():
        if acc.package not in cat.packages:
            p.append(f"{path}: accounts.{aid}.package: unknown package {acc.package!r}")
        for f in acc.features:
            if f not in cat.features:
                p.append(f"{path}: accounts.{aid}.features: unknown feature {f!r}")
        for i, num in enumerate(acc.numbers):
            where = f"{path}: accounts.{aid}.numbers[{i}] ({num.number})"
            if num.number in seen:
                p.append(f"{where}.number: already bound to account {seen[num.number]!r}")
            seen[num.number] = aid
            if regions is not None and num.home_city not in regions:
                same = sorted(r for r in regions if r.startswith(num.home_city + ", "))
                hint = f"; did you mean {' or '.join(map(repr, same))}?" if same else " (not in region data)"
                p.append(f"{where}.home_city: unknown city {num.home_city!r}{hint}")
            if num.routing is not None and num.routing not in cat.routing_plans:
                p.append(f"{where}.routing: unknown routing plan {num.routing!r}")
    return p
