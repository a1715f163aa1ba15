"""What users read (newcomer LOW findings, faces6): each message says what
is actually accepted / owed / to be typed."""
from __future__ import annotations

import pyarrow as pa


def test_not_a_time_reason_says_what_is_accepted():
    """F6: the rejects reason said times "with offset" were required while a
    naive time is accepted, read as Asia/Shanghai. 2026-11-01T09:30:05
    without offset = 01:30:05Z = 1793496605000 ms, the same as with +08:00."""
    from rating_core import cdr

    reason = dict(cdr.REJECT_REASONS)["not_a_time"]
    assert "with offset" not in reason
    assert "no offset means Asia/Shanghai" in reason and "epoch milliseconds" in reason
    ms, present, valid = cdr.parse_times(pa.array(["2026-11-01T09:30:05", "2026-11-01T09:30:05+08:00",
                                                   "yesterday"]))
    assert list(valid) == [True, True, False] and list(present) == [True, True, True]
    assert int(ms[0]) == int(ms[1]) == 1793496605000
