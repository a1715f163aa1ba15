"""cdr.SeenIds (the call ids of a dry stream's earlier messages, of a file
job's earlier chunks) against the rule written as a Python set: exact, a
hash collision never makes a copy (tests keep only a few bits of each hash
to force them), and a call that would pass ``most`` remembers nothing."""
from __future__ import annotations

from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating_core import cdr
from rating_core.kernels import ids as ids_kernel


def by_set(calls: list[tuple[list[str], list[bool]]]) -> list[list[int]]:
    seen: set[str] = set()
    out = []
    for values, consider in calls:
        dup = []
        for r, (v, c) in enumerate(zip(values, consider)):
            if c:
                if v in seen:
                    dup.append(r)
                seen.add(v)
        out.append(dup)
    return out


def few_bits(bits: int):
    real = ids_kernel.hash_strings

    def hash_strings(offsets, data, out):
        real(offsets, data, out)
        out &= np.uint64((1 << bits) - 1)
    return mock.patch.object(ids_kernel, "hash_strings", hash_strings)


_values = st.sampled_from(["", "a", "ab", "b", "é", "call-1", "call-10", "通话1", "x" * 70]) | st.text(max_size=5)
_calls = st.lists(st.lists(st.tuples(_values, st.booleans()), max_size=40), max_size=12)


@settings(max_examples=300, deadline=None)
@given(_calls, st.sampled_from([64, 3, 1, 0]), st.booleans())
def test_later_copies_match_a_set(calls, bits, chunked):
    calls = [([v for v, _ in c], [k for _, k in c]) for c in calls]
    seen = cdr.SeenIds()
    with few_bits(bits):
        for (values, consider), want in zip(calls, by_set(calls)):
            arr = pa.array(values, pa.string())
            ids = pa.chunked_array([arr[:len(arr) // 2], arr[len(arr) // 2:]], pa.string()) if chunked else arr
            assert seen.later_copies(ids, np.flatnonzero(consider)).tolist() == want
    assert seen.count == len({v for values, consider in calls for v, k in zip(values, consider) if k})
    assert sum(len(h) for h, _ in seen.runs) == seen.count


def test_a_call_past_most_raises_and_remembers_nothing():
    seen = cdr.SeenIds()
    assert seen.later_copies(pa.array(["a", "b", "c"]), np.arange(3), most=4).tolist() == []
    # Repeats are not held again: two new ids of four fit.
    assert seen.later_copies(pa.array(["a", "d", "b"]), np.arange(3), most=4).tolist() == [0, 2]
    with pytest.raises(cdr.TooManyIds) as refused:  # the words: engine.DryRun's (tests/test_dry_stream.py)
        seen.later_copies(pa.array(["e", "a"]), np.arange(2), most=4)
    assert (refused.value.held, refused.value.more, refused.value.most) == (4, 1, 4)
    assert seen.count == 4
    assert seen.later_copies(pa.array(["e", "a"]), np.arange(2)).tolist() == [1]
