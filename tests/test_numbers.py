"""Number normalisation and prefix tables: vectorised == scalar, and the
interval table == a naive longest-prefix walk."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

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
