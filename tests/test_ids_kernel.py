"""kernels.ids.hash_strings against the hash written out in plain Python
(FNV-1a 64 then splitmix64's finaliser, as ids.pxd states it), on any
strings, sliced arrays and nulls included; kernels.ids.later_copies (the
edge's duplicate call ids) against the readable Arrow rule it replaced."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from rating_core import cdr
from rating_core.bulk import call_id_hashes

M = (1 << 64) - 1


def reference(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for c in data:
        h = ((h ^ c) * 0x100000001B3) & M
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & M
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & M
    return h ^ (h >> 31)


@given(st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=50), st.integers(0, 5))
def test_hashes_match_the_reference(values, skip):
    arr = pa.array(values, pa.string()).slice(min(skip, len(values)))
    hashes, present = call_id_hashes(arr)
    for v, h, p in zip(arr.to_pylist(), hashes.tolist(), present.tolist()):
        assert p == bool(v)
        if v is not None:
            assert h == reference(v.encode("utf-8", "surrogatepass"))


def first_occurrences_by_arrow(ids: pa.Array, consider: np.ndarray) -> list[int]:
    """The readable rule ``cdr.dedupe`` used before ``kernels.ids.later_copies``:
    among the considered rows, ``dictionary_encode`` numbers values in order
    of first appearance, so a row is a later copy iff its code is at most
    the largest code before it."""
    rows = np.flatnonzero(consider)
    if len(rows) == 0:
        return []
    codes = pc.dictionary_encode(ids.take(pa.array(rows))).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    seen = np.maximum.accumulate(codes)
    later = np.zeros(len(codes), bool)
    later[1:] = codes[1:] <= seen[:-1]
    return rows[later].tolist()


# Few distinct values (copies are common), any text (multi-byte, empty), some rows not considered.
_ids = st.lists(st.tuples(st.sampled_from(["", "a", "ab", "b", "é", "call-1", "call-10", "通话1", "x" * 70]) | st.text(max_size=6),
                          st.booleans()), max_size=300)


@settings(max_examples=300)
@given(_ids, st.integers(0, 5))
def test_later_copies_match_first_occurrences(rows, skip):
    values = [v for v, _ in rows]
    consider = np.array([c for _, c in rows], bool)[skip:]
    arr = pa.array(values, pa.string()).slice(min(skip, len(values)))
    assert cdr.later_copies(arr, consider).tolist() == first_occurrences_by_arrow(arr, consider)


def test_later_copies_with_many_parts_and_colliding_hashes():
    """Past a few thousand rows the kernel splits the rows into parts by
    hash; copies far apart in the input are still found, and distinct ids
    are never copies. Every row considered but every seventh."""
    n = 50_000
    rng = np.random.default_rng(7)
    values = [f"id-{v}" for v in rng.integers(0, 30_000, n)]
    consider = np.arange(n) % 7 != 3
    arr = pa.chunked_array([pa.array(values[:20_000]), pa.array(values[20_000:])])  # chunks are combined
    assert cdr.later_copies(arr, consider).tolist() == first_occurrences_by_arrow(arr.combine_chunks(), consider)


@settings(max_examples=100)
@given(_ids)
def test_colliding_hashes_never_make_a_copy(rows):
    """Hashes cut to 2 bits: nearly every pair of ids collides; only equal
    bytes are copies."""
    from rating_core.kernels import ids
    from rating_core.numbers import string_buffers

    arr = pa.array([v for v, _ in rows], pa.string())
    consider = np.array([c for _, c in rows], bool)
    later = np.empty(len(arr), np.uint8)
    ids.later_copies(*string_buffers(arr), consider.view(np.uint8), later, hash_bits=2)
    assert np.flatnonzero(later).tolist() == first_occurrences_by_arrow(arr, consider)


def test_a_null_id_is_no_copy():
    arr = pa.array(["a", None, "a", None, ""], pa.string())
    assert cdr.later_copies(arr, np.ones(5, bool)).tolist() == [2]
