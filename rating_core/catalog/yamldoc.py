"""The catalog's YAML document, read strictly and with positions.

PyYAML's ``safe_load`` lets a key written twice win silently (``tiers``
twice compiles with the second), forgets where each value was written, and
will build whatever nesting or alias expansion a file asks for. Here:

- a key written twice in one mapping is a problem naming the record and
  both lines (``rates.std (line 10): duplicate name, also rates.std (line
  9)``; YAML merge keys ``<<`` may still be overridden, as YAML intends);
- nesting deeper than MAX_DEPTH, a document that expands (through aliases)
  to more than MAX_VALUES values, a key that is not a name and a tag other
  than PLAIN_TAGS (``!!binary``) are problems
  that stop the reading; a number that is not finite or beyond MAX_NUMBER
  is a problem on its line and becomes None, so the rest is still checked;
- the composed node tree is kept, so a problem about ``accounts.acme.package``
  can say on which line that is (``Lines``).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import yaml
import yaml.reader
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..money import not_plain_decimal

# The largest YAML file read (a catalog's document, a routing plan): a
# catalog's tables of many rows are CSV files beside it.
MAX_BYTES = 16 << 20
MAX_DEPTH = 32
MAX_VALUES = 2_000_000
# No amount, duration or count in a catalog comes near this (1e12 yuan is
# 1e16 minor units, still inside int64).
MAX_NUMBER = 1e12
# The tags a catalog's values may have: those YAML gives plain text,
# numbers, true/false, null, dates, lists, mappings and merge keys. Others
# written out (``!!binary``: bytes, ``!!set``, ``!!omap``, ``!custom``) are
# problems naming the value and line: no catalog field takes them, and bytes
# reached the schema as ``b'...'`` (hostile-input round).
PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in (
    "str", "int", "float", "bool", "null", "timestamp", "seq", "map", "merge"))


class _Loader(yaml.SafeLoader):
    """SafeLoader whose numbers are bounded (see ``_bounded``)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.numbers: list[str] = []  # problems with numbers, placed

    def construct_yaml_float(self, node):
        return self._number(node, SafeConstructor.construct_yaml_float(self, node))

    def construct_yaml_int(self, node):
        return self._number(node, SafeConstructor.construct_yaml_int(self, node))

    def _number(self, node, value):
        return None if self._decimal(node, value) is None else self._bounded(node, value)

    def _decimal(self, node, value):
        """``value`` when its scalar is written in plain decimal digits, else
        None with a problem on its line. YAML 1.1 (PyYAML) reads ``012`` as
        octal 10, ``0x10`` as 16, ``1_0`` as 10 and ``1:30`` as 90: a price
        typed ``012`` for ``0.12`` would charge 83 times as much (breaker).
        Every number in a catalog is an amount, a duration or a count, which
        people write in decimal, spelled as the one money parser reads a
        typed amount (``money.not_plain_decimal``: ``.5``, ``1.``, ``+0.15``,
        ``-0`` and exponents are refused, quoted or not); ``.inf`` / ``.nan``
        go on to ``_bounded``."""
        text = node.value.strip()
        why = not_plain_decimal(text)
        if why is None or text.lower().lstrip("+-") in (".inf", ".nan"):
            return value
        advice = "quote a time of day, e.g. \"18:00\", or write a number in decimal digits" if ":" in text else why
        self.numbers.append(f"line {node.start_mark.line + 1}: {text[:40]!r}: not a decimal number (YAML would "
                            f"read it as {value!r}); {advice}")
        return None

    def construct_yaml_timestamp(self, node):
        """A date-shaped scalar that is no date (``2026-13-01``) is a problem
        on its line and becomes None, like an out-of-range number."""
        try:
            return SafeConstructor.construct_yaml_timestamp(self, node)
        except (ValueError, OverflowError) as e:
            self.numbers.append(f"line {node.start_mark.line + 1}: {node.value[:40]!r}: not a date ({e})")
            return None

    def _bounded(self, node, value):
        """A number outside a catalog's range becomes None (the schema then
        rejects it where it is required), with a problem naming its line."""
        line = node.start_mark.line + 1
        if not math.isfinite(value):
            self.numbers.append(f"line {line}: {node.value[:40]!r}: not a finite number")
            return None
        if abs(value) > MAX_NUMBER:
            self.numbers.append(f"line {line}: {node.value[:40]!r}: beyond the largest number a catalog "
                                f"may hold ({MAX_NUMBER:.0e})")
            return None
        return value


_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)



def read_file(path: Path, what: str = "file") -> tuple[object, Node | None, list[str]]:
    """``read`` of the YAML file ``path`` (a catalog's document, a routing
    plan): at most MAX_BYTES, UTF-8 (a byte order mark allowed). A file
    that cannot be read (missing, too large, not UTF-8, an OS error) comes
    back as (None, None, [one problem naming ``path``]), as a document that
    does not parse; ``what`` names the file in the advice of a file that is
    not UTF-8 ("save the catalog as UTF-8")."""
    try:
        if not path.is_file():
            return None, None, [f"{path}: no such file"]
        size = path.stat().st_size
        if size > MAX_BYTES:
            return None, None, [f"{path}: {size} bytes, more than the limit of {MAX_BYTES}"]
        raw = path.read_bytes()
    except OSError as exc:
        return None, None, [f"{path}: cannot read: {exc.strerror or exc}"]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, None, [f"{path}: line {line}: not UTF-8 text (save the {what} as UTF-8; "
                            "a GBK file is Excel's or Notepad's default on Chinese Windows)"]
    return read(path, text)


def read(path: Path, text: str) -> tuple[object, Node | None, list[str]]:
    """(document, root node, problems) of YAML ``text`` from ``path``.
    A document that cannot be parsed at all comes back as (None, None,
    [problem]); the other problems leave the document usable."""
    try:
        loader = _Loader(text)
    except yaml.YAMLError as e:  # characters YAML does not allow (control characters)
        return None, None, [f"{path}: {_yaml_error(e)}"]
    try:
        try:
            root = loader.get_single_node()
        except RecursionError:
            return None, None, [f"{path}: nesting too deep to read (more than {MAX_DEPTH} levels allowed)"]
        except yaml.YAMLError as e:
            return None, None, [f"{path}: {_yaml_error(e)}"]
        if root is None:
            return None, None, [f"{path}: empty document"]
        problems = _bounds(path, root)
        if any("duplicate name" not in p for p in problems):  # too deep, too big: not constructed
            return None, root, problems
        try:
            doc = loader.construct_document(root)
        except yaml.YAMLError as e:
            return None, root, [f"{path}: {_yaml_error(e)}"]
        except RecursionError:
            return None, root, [f"{path}: nesting too deep to read"]
        except (ValueError, OverflowError, TypeError) as e:  # a constructor PyYAML does not guard
            return None, root, [f"{path}: a value YAML cannot build: {str(e)[:80]}"]
        problems += [f"{path}: {p}" for p in loader.numbers]
        return doc, root, problems
    finally:
        loader.dispose()


def _yaml_error(e: yaml.YAMLError) -> str:
    """PyYAML's message on one line, with the line of the problem."""
    if isinstance(e, yaml.reader.ReaderError):
        return f"character {e.character:#06x} at offset {e.position} is not allowed in YAML"
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(str(problem).split())


def _bounds(path: Path, root: Node) -> list[str]:
    """Depth, expanded size, numbers and keys of the node graph, iteratively
    (aliases are shared nodes: each is walked once, its expansion counted
    through a memo)."""
    problems: list[str] = []
    size: dict[int, int] = {}
    order: list[tuple[Node, int]] = []
    stack: list[tuple[Node, int, str]] = [(root, 1, "")]
    seen: set[int] = set()
    while stack:
        node, depth, where = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        line = node.start_mark.line + 1
        if depth > MAX_DEPTH:
            return [f"{path}: line {line}: nested more than {MAX_DEPTH} levels deep"]
        order.append((node, depth))
        if node.tag not in PLAIN_TAGS:
            shown = node.tag.replace("tag:yaml.org,2002:", "!!")
            problems.append(f"{path}: {where or 'the document'} (line {line}): the YAML tag {shown[:40]} is not "
                            "allowed (write plain text, numbers, lists and mappings)")
        if isinstance(node, MappingNode):
            first: dict[str, int] = {}
            for k, v in node.value:
                if not isinstance(k, ScalarNode):
                    problems.append(f"{path}: line {k.start_mark.line + 1}: a key must be a name, not a "
                                    f"{'list' if isinstance(k, SequenceNode) else 'mapping'}")
                    continue
                at = f"{where}.{k.value}" if where else str(k.value)
                if k.tag != "tag:yaml.org,2002:merge":  # a merge key's values may be overridden
                    if k.value in first:
                        problems.append(f"{path}: {at} (line {k.start_mark.line + 1}): duplicate name, "
                                        f"also {at} (line {first[k.value]})")
                    else:
                        first[k.value] = k.start_mark.line + 1
                stack.append((v, depth + 1, at))
        elif isinstance(node, SequenceNode):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(node.value))
    for node, _ in reversed(order):  # children before parents
        if isinstance(node, MappingNode):
            n = 1 + sum(size.get(id(k), 1) + size.get(id(v), 1) for k, v in node.value)
        elif isinstance(node, SequenceNode):
            n = 1 + sum(size.get(id(v), 1) for v in node.value)
        else:
            n = 1
        size[id(node)] = n
        if n > MAX_VALUES:
            return problems + [f"{path}: line {node.start_mark.line + 1}: expands to more than {MAX_VALUES:,} "
                               "values (YAML aliases repeating each other?)"]
    return problems


_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class Lines:
    """Where values are in the document ``root`` (None: no document, no
    lines): ``line(loc)``. Each mapping's keys are indexed the first time a
    lookup passes through it, so placing every problem of a catalog with
    20,000 unknown keys is 20,000 dictionary lookups, not 20,000 scans of
    the 20,000 keys (447 s, N10 breaker finding 4)."""

    def __init__(self, root: Node | None):
        self.root = root
        self._keys: dict[int, dict[str, Node]] = {}  # id(mapping node) -> its keys' value nodes

    def _child(self, node: MappingNode, key: str) -> Node | None:
        keys = self._keys.get(id(node))
        if keys is None:
            keys = self._keys[id(node)] = {}
            for k, v in node.value:  # the first of a key written twice, as a scan finds it
                if isinstance(k, ScalarNode):
                    keys.setdefault(k.value, v)
        return keys.get(key)

    def line(self, loc) -> int | None:
        """The line of the value at ``loc`` (a pydantic loc tuple, or a
        record path ``accounts.acme.numbers[0].home_city``) in the
        document, or of its nearest ancestor that exists there."""
        if self.root is None:
            return None
        if isinstance(loc, str):
            loc = [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _PART.finditer(loc)]
        node, line = self.root, None
        for part in loc:
            if isinstance(node, MappingNode):
                nxt = self._child(node, str(part))
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                nxt = node.value[part]
            else:
                nxt = None
            if nxt is None:
                break
            node = nxt
            line = node.start_mark.line + 1
        return line
