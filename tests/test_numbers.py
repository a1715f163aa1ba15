"""Number normalisation and prefix tables: vectorised == scalar, and the
interval table == a naive longest-prefix walk."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings, strategies as st

from rating_core import numbers as N
from rating_core.errors import InvalidInput


@pytest.mark.parametrize(
    "raw, normal",
    [
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("0086 13812345678", "13812345678"),
        ("+86 755 1234 5678", "075512345678"),
        ("+86 10 1234 5678", "01012345678"),  # Beijing: 10 is an area code, not a mobile
        ("(0755) 1234-5678", "075512345678"),
        ("400-123-4567", "4001234567"),
        ("+864001234567", "4001234567"),
        ("755 1234 5678", "075512345678"),  # the trunk zero not written
        ("+86 (0)755 1234 5678", "075512345678"),  # nor twice
        ("８６１３８１２３４５６７８", "13812345678"),  # full-width digits, 86 without +
        ("tel:+86-10-1234-5678", "01012345678"),
        ("010/1234 5678", "01012345678"),
    ],
)
def test_normalize(raw, normal):
    assert N.normalize(raw) == normal
    arr, valid = N.normalize_array(pa.array([raw]))
    assert valid.tolist() == [True] and arr.to_pylist() == [normal]


@pytest.mark.parametrize("raw", ["", "12", "abc", "138x1234", "1" * 19, None])
def test_normalize_rejects_with_field(raw):
    with pytest.raises(InvalidInput) as exc:
        N.normalize(raw, field="caller")
    assert exc.value.field == "caller"
    arr, valid = N.normalize_array(pa.array([raw], pa.string()))
    assert valid.tolist() == [False] and arr.to_pylist() == [None]


def test_keys_preserve_order_and_length():
    words = ["0", "00", "01", "1", "10", "0755", "075", "999999999999999999"]
    keys = [N.key(w) for w in words]
    assert sorted(words) == [w for _, w in sorted(zip(keys, words))]
    assert N.keys_of(pa.array(words)).tolist() == keys


def naive_lpm(prefixes: dict, number: str) -> int:
    for n in range(len(number), 0, -1):
        if number[:n] in prefixes:
            return prefixes[number[:n]]
    return -1


digits = st.text(alphabet="0123", min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(digits, st.integers(0, 50), max_size=40), st.lists(digits, min_size=1, max_size=40))
def test_interval_table_is_longest_prefix(prefixes, numbers):
    starts, values = N.build_prefix_table(list(prefixes), list(prefixes.values()))
    assert starts[0] == 0 and (np.diff(starts) > 0).all()
    got = N.lookup(starts, values, N.keys_of(pa.array(numbers)))
    assert got.tolist() == [naive_lpm(prefixes, x) for x in numbers]


def test_empty_table_matches_nothing():
    starts, values = N.build_prefix_table([], [])
    assert N.lookup(starts, values, N.keys_of(pa.array(["138"]))).tolist() == [-1]


# --- one normaliser, checked against phonenumbers itself --------------------

import phonenumbers as P

from rating_core.cdr import normalize_numbers
from rating_core.compile.regions import region_source

_PREFIXES = sorted(region_source().city_prefixes)
_AREA = [p for p in _PREFIXES if p.startswith("0")]
_MOBILE = [p for p in _PREFIXES if p.startswith("1")]
_WIDE = str.maketrans("0123456789+", "０１２３４５６７８９＋")


@st.composite
def chinese_numbers(draw) -> P.PhoneNumber:
    """A valid Chinese number: landline (area code + 7-8 digits), mobile or 400."""
    kind = draw(st.sampled_from(["landline", "mobile", "400"]))
    if kind == "landline":
        national = draw(st.sampled_from(_AREA))[1:] + draw(st.text("0123456789", min_size=7, max_size=8))
    elif kind == "mobile":
        p = draw(st.sampled_from(_MOBILE))
        national = p + draw(st.text("0123456789", min_size=11 - len(p), max_size=11 - len(p)))
    else:
        national = "400" + draw(st.text("0123456789", min_size=7, max_size=7))
    n = P.parse("+86" + national, None)
    assume(P.is_valid_number(n))
    return n


@st.composite
def written(draw, n: P.PhoneNumber) -> str:
    """One way a person or a switch writes ``n``."""
    F = P.PhoneNumberFormat
    national = P.format_number(n, F.NATIONAL)
    bare = str(n.national_number)
    form = draw(st.sampled_from([
        P.format_number(n, F.E164), P.format_number(n, F.INTERNATIONAL), national, P.format_number(n, F.RFC3966),
        "00" + P.format_number(n, F.E164)[1:], "0086 " + national, bare, "86" + bare if bare[0] == "1" else bare,
        "+86 (0)" + national[1:] if national.startswith("0") else national,
        "(" + national.replace(" ", ") ", 1) if national.startswith("0") else national,
        national.replace(" ", "-"), national.replace(" ", "."), national.replace(" ", "/"),
    ]))
    if draw(st.booleans()):
        form = form.translate(_WIDE)  # full-width digits, as typed on Chinese forms
    return form


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_every_form_phonenumbers_accepts_normalises_to_its_national_digits(data):
    n = data.draw(chinese_numbers(), "number")
    raw = data.draw(written(n), "written")
    parsed = P.parse(raw, "CN")  # phonenumbers accepts the form ...
    assert P.is_valid_number(parsed) and parsed.national_number == n.national_number
    want = "".join(c for c in P.format_number(n, P.PhoneNumberFormat.NATIONAL) if c.isdigit())
    assert N.normalize(raw) == want  # ... and so does every edge
    arr, valid = N.normalize_array(pa.array([raw, want]))
    assert valid.tolist() == [True, True] and arr.to_pylist() == [want, want]
    col, present, ok = normalize_numbers(pa.array([raw]))
    assert ok.tolist() == [True] and col.to_pylist() == [want]


@pytest.mark.parametrize("raw", ["\u0660\u0667\u0669\u0661\u0665\u0663\u0669\u0669\u0664\u0665\u0665",
                                 "1381234567\u0663", "+86 1381234567\u0663", "0791\u096b399455", "\u0664\u0660\u0660"])
def test_digits_of_other_scripts_are_refused_at_every_edge(raw):
    """Arabic-Indic / Devanagari digits are not read as 0-9 (a second spelling
    of one caller) nor kept: refused, naming the field; full-width digits are
    read as ASCII."""
    with pytest.raises(InvalidInput, match=r"caller: .*not a phone number \(digits 0-9 only\)"):
        N.normalize(raw, "caller")
    arr, valid = N.normalize_array(pa.array([raw] * 3), one_by_one=0)
    assert valid.tolist() == [False] * 3
    assert normalize_numbers(pa.array([raw]))[2].tolist() == [False]
    assert N.normalize("\uff10\uff17\uff19\uff11\uff15\uff13\uff19\uff19\uff14\uff15\uff15") == "07915399455"


@pytest.mark.parametrize("raw, want", [("+86 95588", "95588"), ("0086-95588", "95588"), ("+86 10086", "10086"),
                                       ("+86 755 1234 5678", "075512345678"), ("+86 10 1234 5678", "01012345678")])
def test_international_prefix_on_a_service_number_comes_off_without_a_trunk_zero(raw, want):
    """``+86 95588`` is the bank's ``95588`` (what a caller dials), not
    ``095588``: only a number long enough to be a landline gets its zero."""
    assert N.normalize(raw) == want
    assert normalize_numbers(pa.array([raw, want]))[0].to_pylist() == [want, want]


@pytest.mark.parametrize("raw", ["95588", "10086", "0999", "075512", "12345678901234"])
def test_numbers_that_are_not_valid_chinese_numbers_are_kept_as_written(raw):
    assert N.normalize(raw) == raw
    assert normalize_numbers(pa.array([raw]))[0].to_pylist() == [raw]


# --- the vectorised international path == the one-by-one rules ---------------
_SEPARATORS = ["", " ", "-", ".", "(", ")", "  "]


def _scalar(values: list) -> list:
    return [None if v is None else N._normal_or_none(v) for v in values]


def test_international_mobiles_and_400_match_the_scalar_rules_for_every_prefix():
    """Every mobile prefix 130-199 (valid and unassigned ones: phonenumbers
    and the fallback must agree with the vectorised path) and 400/800,
    written with +86/0086 and separators."""
    raws = []
    for p in range(130, 200):
        for tail in ("00000000", "12345678", "99999999"):
            digits = f"{p}{tail}"
            raws += [f"+86{digits}", f"+86 {digits[:3]}-{digits[3:7]}-{digits[7:]}", f"0086 {digits}",
                     f" +86 ({digits[:3]}) {digits[3:7]}.{digits[7:]} "]
    for p in ("400", "800"):
        raws += [f"+86{p}1234567", f"0086 {p}-123-4567", f"+86 {p} 000 0000"]
    raws += ["+86 128 1234 5678", "+86 1381234567", "+86 138123456789", "+86 755 1234 5678", None]
    arr, valid = N.normalize_array(pa.array(raws, pa.string()))
    want = _scalar(raws)
    assert arr.to_pylist() == want
    assert valid.tolist() == [w is not None for w in want]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["+86", "0086", "86", "+", "00", "", "+86 ", "0086-"]),
       st.sampled_from(["13", "15", "17", "19", "12", "1", "400", "800", "40", "0", "10", ""]),
       st.lists(st.tuples(st.sampled_from(_SEPARATORS), st.sampled_from("0123456789")), min_size=6, max_size=11),
       st.sampled_from(["", " ", "\t"]))
def test_separated_numbers_vectorised_equal_scalar(prefix, head, parts, pad):
    raw = pad + prefix + head + "".join(sep + d for sep, d in parts) + pad
    arr, valid = N.normalize_array(pa.array([raw, "13812345678", None], pa.string()), one_by_one=0)
    want = _scalar([raw, "13812345678", None])
    assert N.normalize_array(pa.array([raw, "13812345678", None], pa.string()))[0].to_pylist() == want  # one by one
    assert arr.to_pylist() == want
    assert valid.tolist() == [w is not None for w in want]


def test_separated_landlines_match_the_scalar_rules_for_every_area_prefix():
    """Every 3- and 4-digit area-code shape 020-0999 with a separator after
    it, against ``_normal_or_none`` (phonenumbers, then the fallback)."""
    raws = []
    for a in range(20, 100):
        for code in [f"0{a}"] + [f"0{a}{b}" for b in range(10)]:
            for rest in ("0000000", "1234567", "9999999", "12345678", "00000000", "99999999"):
                raws += [f"{code}-{rest}", f"{code} {rest[:-4]} {rest[-4:]}", f"{code}-{rest[:-4]}-{rest[-4:]}"]
    arr, valid = N.normalize_array(pa.array(raws, pa.string()))
    want = _scalar(raws)
    assert [(r, g) for r, g, w in zip(raws, arr.to_pylist(), want) if g != w] == []
    assert valid.tolist() == [w is not None for w in want]


def _plain_by_compute(s: pa.Array) -> list:
    """The fast-path rule in pyarrow compute: ASCII digits only, and '0' then
    not '0' with 10-12 digits, '1' with 11, '400'/'800' with 10."""
    import pyarrow.compute as pc

    length = pc.binary_length(s)
    starts = lambda p: pc.starts_with(s, p)  # noqa: E731
    shape = pc.or_(pc.or_(pc.and_(pc.and_(starts("0"), pc.invert(starts("00"))),
                                  pc.and_(pc.greater_equal(length, 10), pc.less_equal(length, 12))),
                          pc.and_(starts("1"), pc.equal(length, 11))),
                   pc.and_(pc.or_(starts("400"), starts("800")), pc.equal(length, 10)))
    return pc.fill_null(pc.and_(pc.ascii_is_decimal(s), shape), False).to_pylist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text("0123456789+- .e", max_size=14),
                          st.sampled_from(["13812345678", "075512345678", "4001234567", "8001234567", "0012345678",
                                           "4101234567", "1381234567８", "", " 13812345678"])), max_size=30),
       st.integers(0, 3))
def test_number_cells_kernel_is_the_compute_rule(values, cut):
    arr = pa.array(values, pa.string()).slice(min(cut, len(values)))  # a slice: offsets and bits start past 0
    cells = N.number_cells(arr)
    plain = _plain_by_compute(arr)
    assert cells.plain.tolist() == plain
    assert cells.present.tolist() == [v is not None and v != "" for v in arr.to_pylist()]
    assert cells.is_400.tolist() == [p and v.startswith("400") and len(v) == 10 for p, v in zip(plain, arr.to_pylist())]
    assert cells.keys.tolist() == [N.key(v) if p else 0 for p, v in zip(plain, arr.to_pylist())]


# --- the compiled separated forms == the vectorised path's RE2 rule ----------
def _separated_by_re2(values: list) -> list:
    """``normalize_array``'s vectorised rule, readably: trimmed, one of the two
    patterns, then the digits after the separators and ``+86``/``0086`` are
    taken off; None where neither pattern matches."""
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(pa.array(values, pa.string()))
    match = pc.or_(pc.match_substring_regex(trimmed, N._INTL_SEPARATED),
                   pc.match_substring_regex(trimmed, N._LANDLINE_SEPARATED))
    digits = pc.replace_substring_regex(pc.replace_substring_regex(trimmed, N._SEPARATOR, ""), r"^(?:\+|00)86", "")
    return [d if m else None for m, d in zip(match.to_pylist(), digits.to_pylist())]


_FORM_PARTS = st.sampled_from(["+86", "0086", "86", "+", "00", "0", "(", ")", ".", " ", "-", "--", "1", "13", "138",
                               "400", "800", "0755", "0791", "021", "095", "040", "1234", "5678", "12345678", "9",
                               "\t", "\uff11", "e", "\u0663", "\u0969"])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(_FORM_PARTS, max_size=9).map("".join), min_size=1, max_size=20), st.integers(0, 3))
def test_separated_cells_kernel_is_the_re2_rule(values, cut):
    arr = pa.array(values, pa.string()).slice(min(cut, len(values)))
    cells = arr.to_pylist()
    rows = np.arange(len(arr))
    got = N.separated_cells(arr, rows)
    want = _separated_by_re2(cells)
    normal = iter(got.normal.to_pylist())
    for v, ok, key, is_400, w in zip(cells, got.ok.tolist(), got.keys.tolist(), got.is_400.tolist(), want):
        simple = all(c in "0123456789 -().+" for c in v)  # the kernel leaves other bytes to the regex path
        if ok:
            assert w is not None and next(normal) == w, v
            assert (key, is_400, ok) == (N.key(w), w.startswith("400") and len(w) == 10, 2 if "." in v else 1), v
        else:
            assert key == 0 and not is_400
            assert w is None or not simple, v
    assert next(normal, None) is None


def test_separated_cells_of_the_demo_forms():
    arr = pa.array(["+86 18893988033", "0812-7158020", " 0086 400-123-4567 ", "+86 (138) 1234.5678", "0755 1234 5678",
                    "ext. 8001", "13812345678", "0791-5399455", "+86\t13812345678", "0950-1234567"])
    got = N.separated_cells(arr, np.array([0, 1, 2, 3, 4, 5, 7, 8, 9]))
    assert got.ok.tolist() == [1, 1, 1, 2, 1, 0, 1, 0, 0]
    assert got.normal.to_pylist() == ["18893988033", "08127158020", "4001234567", "13812345678", "075512345678",
                                      "07915399455"]
    assert got.is_400.tolist() == [False, False, True, False, False, False, False, False, False]


_CELLS = st.one_of(st.none(), st.sampled_from(["13812345678", "075512345678", "4001234567", "+86 138 1234 5678",
                                               "0791-5399455", "ext. 8001", "anonymous", " Unknown ", "  ", "",
                                               "\u3000", "１３８１２３４５６７８", "0950-1234567", "138-0013-80O0",
                                               "2088886666", "1.38E+10", "13812345678.0", "0086 400-123-4567",
                                               "1381234567\u0663", "\u0660\u0667\u0669\u0661\u0665\u0663\u0669\u0669"
                                               "\u0664\u0665\u0665", "+86 95588", "95588"]),
                   st.text("0123456789+-(). e\t\u0663\uff18", max_size=16))


@settings(max_examples=300, deadline=None)
@given(st.lists(_CELLS, max_size=40), st.booleans())
def test_few_odd_cells_one_by_one_equal_the_vectorised_path(values, withheld):
    """``cdr._normalize_numbers`` takes at most ONE_BY_ONE odd ASCII cells
    one by one in Python; with that path off (ONE_BY_ONE -1) the same
    column goes through ``normalize_array`` and Arrow's trimming: every
    output the same."""
    from rating_core import cdr

    arr = pa.array(values, pa.string())
    words = N.WITHHELD_CALLERS if withheld else ()
    fast = cdr._normalize_numbers(arr, words)
    saved = cdr.ONE_BY_ONE
    cdr.ONE_BY_ONE = -1
    try:
        slow = cdr._normalize_numbers(arr, words)
    finally:
        cdr.ONE_BY_ONE = saved
    assert fast[0].to_pylist() == slow[0].to_pylist()
    for got, want in zip(fast[1:], slow[1:]):
        assert got.tolist() == want.tolist()


def test_number_cells_word_at_a_time_digit_check_and_keys():
    """``number_cells`` reads a cell's first 8 bytes as one word: a byte just
    outside '0'..'9' (or a multi-byte character) anywhere in a plain shape
    makes it not plain, and every plain cell's key equals ``numbers.key``."""
    rng = np.random.default_rng(11)
    base = ["13812345678", "075512345678", "0791539945", "4001234567", "8009876543", "19999999999", "0200000000"]
    base += ["1" + "".join(rng.choice(list("0123456789"), 10)) for _ in range(200)]
    base += ["0" + str(rng.integers(1, 10)) + "".join(rng.choice(list("0123456789"), int(rng.integers(8, 11))))
             for _ in range(200)]
    bad = []
    for v in base[:7]:
        for pos in range(len(v)):
            for c in "/:\x7f\x00 é８":
                bad.append(v[:pos] + c + v[pos + 1:])
    arr = pa.array(base + bad, pa.string())
    cells = N.number_cells(arr)
    want = _plain_by_compute(arr)
    assert cells.plain.tolist() == want
    assert all(want[: len(base)]) and not any(want[len(base):])
    assert cells.keys[: len(base)].tolist() == [N.key(v) for v in base]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 60), unique=True, max_size=30), st.lists(st.integers(-5, 65), max_size=60))
def test_exact_rows_is_searchsorted_with_the_equality_test(table, keys):
    """``kernels.prefix.exact_rows`` (``Rater.accounts_of``'s lookup of a
    batch's 400 numbers) against NumPy's searchsorted and an equality test."""
    from rating_core.kernels import prefix

    t = np.array(sorted(table), np.int64)
    k = np.array(keys, np.int64)
    out = np.empty(len(k), np.int64)
    prefix.exact_rows(t, k, out)
    at = np.minimum(np.searchsorted(t, k), max(len(t) - 1, 0))
    want = np.where((len(t) > 0) & (t[at] == k), at, -1) if len(t) else np.full(len(k), -1)
    assert out.tolist() == want.tolist()
