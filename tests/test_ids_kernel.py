"""kernels.ids.hash_strings against the hash written out in plain Python
(FNV-1a 64 then splitmix64's finaliser, as ids.pxd states it), on any
strings, sliced arrays and nulls included."""
from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

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
