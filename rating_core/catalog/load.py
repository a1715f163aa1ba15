"""Load a catalog: one YAML document plus the CSV tables it names.

Every problem is reported, not just the first, each as
``FILE: RECORD.FIELD: message`` so an operator can go straight to it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pydantic import ValidationError

from ..cdr import check_characters, excerpt, forbidden_cells, forbidden_characters
from ..errors import CatalogError, InvalidInput
from . import yamldoc
from .routing import canonical_plan_regions, check_routing, near_region
from .. import layout
from .schema import DAY_KINDS, BandRule, Catalog, TimeBand, error_message

DIGITS = re.compile(r"^[0-9]{1,18}$")


def _loc(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def _read_csv(path: Path, columns: list[str], problems: list[str]) -> pa.Table | None:
    """A catalog CSV table, every column text, in the encoding the CDR edge
    detects (UTF-8 with or without BOM, GBK, UTF-16); a problem naming the
    file, line and column when it cannot be read."""
    from ..cdr import InvalidFile, check_file

    try:
        encoding = check_file(path)  # encoding, header, columns given twice
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=encoding or "utf8"),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in columns}),
        )
        names = table.column_names
    except InvalidFile as exc:
        problems.append(str(exc))
        return None
    except (OSError, pa.ArrowInvalid, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {str(exc).splitlines()[0][:200]}")
        return None
    missing = [c for c in columns if c not in names]
    if missing:
        problems.append(f"{path}: missing column(s) {', '.join(missing)}")
        return None
    return table


def _text_problem(record: str, field: str, value: str) -> str:
    """The problem of a catalog text holding a FORBIDDEN_TEXT character, in
    the edge's words (``cdr.check_characters``: the value shown escaped)."""
    try:
        check_characters(field, value, record)
    except InvalidInput as exc:
        return str(exc)
    raise AssertionError("called for a value without a forbidden character")


# The longest name (a mapping key: a rate, package, account, group...) and
# the longest text value a catalog holds, in characters. A name is printed
# on statements, reports and every reject; a 10 MB one was accepted
# (hostile-input round). Labels are shorter still (120, ``schema.Catalog``).
MAX_NAME_CHARS = 128
MAX_TEXT_CHARS = 1024


def _text_problems(doc, path: Path, places: yamldoc.Lines) -> tuple[list[str], set[tuple]]:
    """Every name (mapping key) longer than MAX_NAME_CHARS, text value
    longer than MAX_TEXT_CHARS, and name or text value holding
    a FORBIDDEN_TEXT character (a control character, a bidi control such as
    U+202E, a zero-width or invisible character, U+2028/9): ``FILE:
    RECORD.FIELD: contains a control character: 'ac\\u202eme' (line N)``.
    Why refused: every catalog text is a name or one line of label text;
    a bidi override or zero-width character in it makes two names that
    print alike different records, and reorders statements and reports
    that show it (CVE-2021-42574). Returns (problems, the locations
    refused), so the schema's complaint about the same value is not
    repeated. Aliased subtrees are walked once."""
    problems: list[str] = []
    refused: set[tuple] = set()
    seen: set[int] = set()
    stack: list[tuple[object, tuple]] = [(doc, ())]
    while stack:
        node, parts = stack.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                continue
            seen.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            at = parts + (key,)
            if isinstance(key, str) and len(key) > MAX_NAME_CHARS:
                line = places.line(list(at))
                problems.append(f"{path}: {_loc(parts + (excerpt(key),))}: a name of {len(key):,} characters, "
                                f"more than {MAX_NAME_CHARS}" + (f" (line {line})" if line else ""))
                refused.add(at)
                continue
            if isinstance(key, str) and forbidden_characters(key):
                field = _loc(parts + (excerpt(key),))
                line = places.line(list(at))
                problems.append(_text_problem(str(path), field, key) + (f" (line {line})" if line else ""))
                refused.add(at)
                continue  # the record under a refused name is not read further
            if isinstance(value, str):
                if len(value) > MAX_TEXT_CHARS:
                    line = places.line(list(at))
                    problems.append(f"{path}: {_loc(at)}: {len(value):,} characters, more than {MAX_TEXT_CHARS}"
                                    + (f" (line {line})" if line else ""))
                    refused.add(at)
                elif forbidden_characters(value):
                    line = places.line(list(at))
                    problems.append(_text_problem(str(path), _loc(at), value) + (f" (line {line})" if line else ""))
                    refused.add(at)
            else:
                stack.append((value, at))
    return problems, refused


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
    for i in forbidden_cells(table["class"])[:20]:
        problems.append(_text_problem(f"{path}: line {i + 2}", "class", classes[i]))
    out = dict(zip(prefixes, classes))
    if len(out) != len(prefixes):
        first: dict[str, int] = {}
        shown = 0
        for i, p in enumerate(prefixes):
            if p in first and shown < 20:
                problems.append(f"{path}: line {i + 2}: prefix: duplicate prefix {p!r}, also line {first[p] + 2}")
                shown += 1
            first.setdefault(p, i)
    return out


NUMBER_COLUMNS = ["number", "account", "status", "billing_start", "home_city", "routing"]


def _load_numbers(path: Path, problems: list[str]) -> list[dict]:
    table = _read_csv(path, NUMBER_COLUMNS[:2], problems)
    if table is None:
        return []
    cols = {c: table[c].to_pylist() for c in NUMBER_COLUMNS if c in table.column_names}
    bad: dict[int, str] = {}  # row -> its first cell holding a forbidden character
    for c in cols:
        for i in forbidden_cells(table[c]):
            bad.setdefault(i, c)
    for i in sorted(bad)[:20]:
        problems.append(_text_problem(f"{path}: line {i + 2}", bad[i], cols[bad[i]][i]))
    rows = []
    for i in range(table.num_rows):
        if i in bad:  # reported above; the schema would refuse it again
            continue
        row = {c: v[i] for c, v in cols.items() if v[i] not in (None, "")}
        row["_line"] = i + 2
        rows.append(row)
    return rows


# Bounds on what a catalog may make the loader read: each CSV table (1M
# destination prefixes are ~20 MB; 100k numbers ~5 MB); the YAML document's
# is ``yamldoc.MAX_BYTES``.
MAX_CSV_BYTES = 512 << 20


def catalog_file(base: Path, name, key: str, path: Path, problems: list[str]) -> Path | None:
    """The file a catalog key (``numbers_csv``...) names, or None with a
    problem: it must be a plain relative name of a regular file inside the
    catalog's directory (no absolute path, no '..', no symlink out of it, no
    device), at most MAX_CSV_BYTES. The problem never quotes the file."""
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{path}: {key}: must be a file name")
        return None
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or "\x00" in name:
        problems.append(f"{path}: {key}: {name[:100]!r} must name a file beside the catalog "
                        "(no absolute path, no '..')")
        return None
    target = base / rel
    try:
        real = target.resolve()
        inside = real.is_relative_to(base.resolve())
        regular = real.is_file()
        size = real.stat().st_size if regular else 0
    except (OSError, ValueError):
        inside, regular, size = True, False, 0
    if not inside:
        problems.append(f"{path}: {key}: {name[:100]!r} leads out of the catalog's directory")
    elif not regular:
        problems.append(f"{path}: {key}: {name[:100]!r}: no such file beside the catalog")
    elif size > MAX_CSV_BYTES:
        problems.append(f"{path}: {key}: {name[:100]!r} is {size} bytes, more than {MAX_CSV_BYTES}")
    else:
        return target
    return None


def load_catalog(path: str | Path, regions=None) -> Catalog:
    """Read and validate a catalog.

    ``regions``: the city names region data knows, turning on the check
    that every number's home city exists; a set, or a mapping of every
    accepted spelling to region data's name (Chinese ``天津`` -> ``Tianjin``,
    see ``compile.regions.city_aliases``), as the compiler passes it.
    Files the document names are read only from its own directory
    (``catalog_file``). Raises CatalogError listing the problems (the first
    ``errors.MAX_PROBLEMS`` of all it finds, in one pass), each
    with the line it is on where it has one.
    """
    path = Path(path)
    base = path.parent
    doc, root, problems = yamldoc.read_file(path, "catalog")
    if doc is None:  # unreadable (its problems), or a document of only null (``~``)
        raise CatalogError(problems or [f"{path}: the catalog must be a mapping, not null"])
    if not isinstance(doc, dict):
        raise CatalogError([f"{path}: the catalog must be a mapping"])
    origin: dict[tuple[str, int], tuple[Path | None, int]] = {}  # (account, number index) -> CSV file, line
    places = yamldoc.Lines(root)
    text, refused = _text_problems(doc, path, places)  # the document's own text, before the CSVs join it

    prefix_file = doc.pop("destination_prefixes_csv", None)
    if prefix_file:
        found = catalog_file(base, prefix_file, "destination_prefixes_csv", path, problems)
        inline = doc.setdefault("destination_prefixes", {})
        if not isinstance(inline, dict):
            problems.append(f"{path}: destination_prefixes: must be a mapping of prefix to class")
        elif found is not None:
            from_csv = _load_prefixes(found, problems)
            for p in sorted(set(from_csv) & set(inline))[:20]:
                problems.append(f"{path}: destination_prefixes.{p}: duplicate prefix, also in {found}")
            inline.update(from_csv)

    numbers_file = doc.pop("numbers_csv", None)
    if numbers_file:
        accounts = doc.get("accounts") or {}
        found = catalog_file(base, numbers_file, "numbers_csv", path, problems)
        for row in _load_numbers(found, problems) if found is not None else ():
            line = row.pop("_line")
            owner = row.pop("account", None)  # an empty cell is no value (``_load_numbers``)
            if owner is None:
                problems.append(f"{found}: line {line}: account: missing (the account that holds the number)")
                continue
            acc = accounts.get(owner) if isinstance(accounts, dict) else None
            if not isinstance(acc, dict):
                problems.append(f"{found}: line {line}: account: unknown account {owner!r}")
                continue
            numbers = acc.setdefault("numbers", [])
            if not isinstance(numbers, list):
                continue  # the document's own problem, reported by the schema
            origin[(owner, len(numbers))] = (found, int(line))
            numbers.append(row)

    known = None if regions is None else set(regions.values() if isinstance(regions, Mapping) else regions)
    if isinstance(regions, Mapping):
        _canonical_cities(doc, regions)
    try:
        catalog = Catalog.model_validate(doc)
    except ValidationError as exc:
        for err in exc.errors():
            if any(tuple(err["loc"][:n]) in refused for n in range(1, len(err["loc"]) + 1)):
                continue  # its text was refused above, in the edge's words
            value = err.get("input")
            # A value holding an invisible character is shown escaped, so the
            # reader sees why ``act\u200bive`` is not ``active``.
            shown = f" (got {excerpt(value)})" if isinstance(value, str) and forbidden_characters(value) else ""
            problems.append(f"{path}: {_loc(err['loc'])}: {error_message(err)}{shown}")
        problems = _placed(problems, path, places, origin) + text
        partial = _without_bad_records(doc, exc)
        if partial is not None:  # the cross-checks too, in the same pass
            pruned = {str(e["loc"][1]) for e in exc.errors() if len(e["loc"]) >= 2}
            checks = _cross_check(partial, path, known) + check_routing(partial, path, known)
            problems += _placed([p for p in checks if pruned.isdisjoint(_names_in(p, path))], path, places, origin,
                                lines=False)
        raise CatalogError(problems) from None

    problems = _placed(problems, path, places, origin) + text
    checks = _cross_check(catalog, path, known) + check_routing(catalog, path, known)
    problems += _placed(checks, path, places, origin, lines=False)
    if problems:
        raise CatalogError(problems)
    return catalog


def _quoted(problem: str) -> set[str]:
    """Every text between two single quotes of ``problem`` (any two, so a
    name holding a quote is found too): the names a problem shows as
    ``'name'``. A set lookup per name, where a scan of every refused name
    per problem was quadratic (4,000 bad and 4,000 referring accounts: 13 s)."""
    at = [i for i, c in enumerate(problem) if c == "'"]
    return {problem[i + 1:j] for n, i in enumerate(at) for j in at[n + 1:]}


def _names_in(problem: str, path) -> set[str]:
    """The names ``problem`` (``"{path}: where: what"``) is about: those it
    quotes (``_quoted``) and each dotted run of its ``where``'s parts
    (``labels.zh.prepaid_480_1y`` -> ``zh``, ``prepaid_480_1y``,
    ``zh.prepaid_480_1y``, ...), so a label of a package the schema refused
    is no second problem (breaker N11 F8). A few parts, a few set entries."""
    names = _quoted(problem)
    where = problem.removeprefix(f"{path}: ").split(": ", 1)[0]
    parts = where.split(".")[:8]
    names.update(".".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1))
    return names


def _without_bad_records(doc: dict, exc: ValidationError) -> Catalog | None:
    """The catalog without the records the schema refused (``rates.x``,
    ``accounts.y``), so references between the others can be checked in the
    same pass; None when that still does not validate."""
    import copy

    pruned = copy.deepcopy(doc)
    for err in exc.errors():
        loc = err["loc"]
        section = pruned.get(loc[0]) if loc else None
        if len(loc) >= 2 and isinstance(section, dict):
            section.pop(loc[1], None)
        elif len(loc) >= 2 and isinstance(section, list) and isinstance(loc[1], int) and loc[1] < len(section):
            section[loc[1]] = None  # removed below, keeping the other indexes stable meanwhile
    for key, section in pruned.items():
        if isinstance(section, list):
            pruned[key] = [x for x in section if x is not None]
    try:
        return Catalog.model_validate(pruned)
    except ValidationError:
        return None


def _canonical_cities(doc: dict, aliases: Mapping[str, str]) -> None:
    """Numbers' home cities, and the city names routing plans use
    (``caller_regions``, black/white list ``regions``; bare or ``city:``),
    in region data's spelling (``天津`` -> ``Tianjin``, ``Lu'an`` -> ``LuAn``)
    before validation; an unknown name stays as written, for the check. A
    province's name is never an alias, so a bare province name is kept."""
    accounts = doc.get("accounts")
    for acc in accounts.values() if isinstance(accounts, dict) else ():
        numbers = acc.get("numbers") if isinstance(acc, dict) else None
        for num in numbers if isinstance(numbers, list) else ():
            if isinstance(num, dict) and isinstance(num.get("home_city"), str):
                # ``city:深圳`` as a routing plan (and ``--home-city``) names a city.
                city = num["home_city"].strip().removeprefix("city:").strip()
                num["home_city"] = aliases.get(city, city)

    plans = doc.get("routing_plans")
    for plan in plans.values() if isinstance(plans, dict) else ():
        if isinstance(plan, dict):
            canonical_plan_regions(plan, aliases)


_RECORD = re.compile(r"^(?P<loc>[^:()]+?)(?: \([^)]*\))?(?P<field>\.[\w.\[\]]+)?: (?P<msg>.*)$", re.S)


def _placed(problems: list[str], path: Path, places: yamldoc.Lines, origin: dict, lines: bool = True) -> list[str]:
    """Problems about the document get the line of the record they name
    (``catalog.yaml: rates.std.tiers[0].price: money cannot be negative
    (line 12)``; with ``lines`` false, only the CSV move below and the
    line of a ``labels`` entry);
    a problem about a number that came from the numbers CSV is told against
    that file and line instead of the YAML document."""
    prefix = f"{path}: "
    out = []
    placed = set()  # lines that already have a problem of their own (a bad number)
    for p in problems:
        m = _RECORD.match(p[len(prefix):]) if p.startswith(prefix) and "(line " not in p else None
        if m is None or m.group("loc").startswith("line "):
            if m is not None:
                placed.add(m.group("loc"))
            out.append(p)
            continue
        loc = m.group("loc") + (m.group("field") or "")
        parts = [x.group(1) if x.group(1) is not None else int(x.group(2))
                 for x in re.finditer(r"([^.\[\]]+)|\[(\d+)\]", loc)]
        if len(parts) >= 4 and parts[0] == "accounts" and parts[2] == "numbers" and (parts[1], parts[3]) in origin:
            csv_path, line = origin[(parts[1], parts[3])]
            field = ".".join(str(x) for x in parts[4:]) or "number"
            out.append(f"{csv_path}: line {line}: {field}: {m.group('msg')}")
            continue
        line = places.line(parts)
        if f"line {line}" in placed:  # the schema's view of a number already reported on its line
            continue
        # A label is a record of its own line, so its cross-check problems say where it is too.
        out.append(f"{p} (line {line})" if line and (lines or loc.startswith("labels.")) else p)
    return out




def _cross_check(cat: Catalog, path: Path, regions) -> list[str]:
    """References between records: names that must exist, coverage."""
    p: list[str] = []
    classes = set(cat.destination_classes)
    p += _duplicates(path, "destination_classes", cat.destination_classes, "destination class")
    p += _duplicates(path, "day_overrides", [o.date.isoformat() for o in cat.day_overrides], "date", ".date")
    band_sets = {"time_bands": cat.time_bands, **{f"band_sets.{k}": v for k, v in cat.band_sets.items()}}
    for where, bands in band_sets.items():
        p += _duplicates(path, where, [b.name for b in bands], "band name", ".name")
        p += _coverage(path, where, bands)
    n_bands = sum(len(b) for b in band_sets.values())
    if n_bands > layout.MAX_BANDS:
        p.append(f"{path}: band_sets: {n_bands} bands in all; at most {layout.MAX_BANDS}")
    if cat.band_rule is BandRule.split:
        units = math.lcm(*(t.unit for r in cat.rates.values() for t in r.tiers)) if cat.rates else 1
        if units >= 2**40:
            p.append(f"{path}: band_rule: split needs one common denominator of every rate's units; "
                     f"theirs ({units}) is too large: use fewer distinct units")
    for prefix, cls in cat.destination_prefixes.items():
        if not DIGITS.match(prefix):
            p.append(f"{path}: destination_prefixes.{prefix}: prefix must be 1-18 digits")
        if cls not in classes:
            p.append(f"{path}: destination_prefixes.{prefix}: unknown destination class {cls!r}")
            if len(p) > 50:
                break
    for pid, pkg in cat.packages.items():
        if pkg.band_set is not None and pkg.band_set not in cat.band_sets:
            p.append(f"{path}: packages.{pid}.band_set: unknown band set {pkg.band_set!r}")
            names: set[str] = set()
        else:
            names = {b.name for b in cat.bands_of(pid)}
        if pkg.overage_rate is not None:
            if pkg.overage_rate not in cat.rates:
                p.append(f"{path}: packages.{pid}.overage_rate: unknown rate {pkg.overage_rate!r}")
            if pkg.kind.value != "bundle":
                p.append(f"{path}: packages.{pid}.overage_rate: only a bundle has overage")
        for i, rule in enumerate(pkg.rates):
            where = f"{path}: packages.{pid}.rates[{i}]"
            if rule.rate not in cat.rates:
                p.append(f"{where}.rate: unknown rate {rule.rate!r}")
            if rule.destination is not None and rule.destination not in classes:
                p.append(f"{where}.destination: unknown destination class {rule.destination!r}")
            if rule.band is not None and rule.band not in names:
                p.append(f"{where}.band: unknown time band {rule.band!r} (not in the package's "
                         f"{'band set ' + repr(pkg.band_set) if pkg.band_set else 'time_bands'})")
    named = classes | set(cat.packages) | set(cat.features) | {b.name for bands in band_sets.values() for b in bands}
    for lang, labels in cat.labels.items():
        for name, label in labels.items():
            if name not in named:
                p.append(f"{path}: labels.{lang}.{name}: not a destination class, time band, package or feature "
                         "of this catalog")
            elif not label.isprintable():
                p.append(f"{path}: labels.{lang}.{name}: a label is one line of printable text")
    seen: dict[str, str] = {}  # number -> its first record
    for aid, acc in cat.accounts.items():
        if acc.package not in cat.packages:
            p.append(f"{path}: accounts.{aid}.package: unknown package {acc.package!r}")
        for f in acc.features:
            if f not in cat.features:
                p.append(f"{path}: accounts.{aid}.features: unknown feature {f!r}")
        for i, num in enumerate(acc.numbers):
            where = f"{path}: accounts.{aid}.numbers[{i}] ({num.number})"
            if num.number in seen:
                p.append(f"{where}.number: duplicate number {num.number!r}, also {seen[num.number]}.number")
            else:
                seen[num.number] = f"accounts.{aid}.numbers[{i}]"
            if regions is not None and num.home_city not in regions:
                same = sorted(r for r in regions if r.startswith(num.home_city + ", "))
                hint = (f"; did you mean {' or '.join(map(repr, same))}?" if same
                        else " (not in region data)" + near_region(num.home_city, list(regions)))
                p.append(f"{where}.home_city: unknown city {num.home_city!r}{hint}")
            if num.routing is not None and num.routing not in cat.routing_plans:
                p.append(f"{where}.routing: unknown routing plan {num.routing!r}")
    return p


def _duplicates(path: Path, where: str, names: list[str], what: str, field: str = "") -> list[str]:
    """A problem for each repeated name of a list, naming both records."""
    first: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        if name in first:
            out.append(f"{path}: {where}[{i}]{field}: duplicate {what} {name!r}, also {where}[{first[name]}]{field}")
        else:
            first[name] = i
    return out


def _coverage(path: Path, where: str, bands: list[TimeBand]) -> list[str]:
    """Every (day kind, local minute) must fall in some band of the set, so a
    call never lacks one; gaps are reported as HH:MM ranges."""
    out = []
    for kind in DAY_KINDS:
        covered = [any(kind in b.day_kinds and b.covers(m) for b in bands) for m in range(1440)]
        m = 0
        while m < 1440:
            if covered[m]:
                m += 1
                continue
            end = m
            while end < 1440 and not covered[end]:
                end += 1
            out.append(f"{path}: {where}: no band covers {kind.value} {m // 60:02d}:{m % 60:02d}-"
                       f"{end // 60:02d}:{end % 60:02d}")
            m = end
    return out
