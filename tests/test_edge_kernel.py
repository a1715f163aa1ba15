"""The edge's compiled time judgement (``kernels/edge.pyx`` via
``cdr.judge_times``) against the same rules written readably in NumPy
(``judge_times_by_numpy``: the edge's code before the pass was compiled),
row for row, field and reason, on generated times around every bound."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from rating_core import cdr, layout
from rating_core.cdr import (AFTER_END, BEFORE_START, END_BEFORE_START, MAX_CALL_MS, MAX_TIME_MS, MIN_TIME_MS,
                             MISSING, NOT_A_TIME, OUTSIDE_CALENDAR, TIME_COLUMNS, TIME_OUT_OF_RANGE, TOO_LONG, F)

DAY0 = 20_400  # a local epoch day in 2025
DAYS = (DAY0, DAY0 + 400)


def judge_times_by_numpy(parsed: dict, days: tuple[int, int]):
    """The readable rule: (field, reason, times) with flags applied in reverse
    column order and, within a field, in reverse rank, so the first bad
    field in column order and its highest-ranked reason stay."""
    n = len(parsed["start"][0])
    field = np.full(n, -1, np.int8)
    reason = np.zeros(n, np.int8)

    def flag(name, bad, why):
        field[bad] = F[name]
        reason[bad] = why

    times = {}
    for name in TIME_COLUMNS:
        values, present, valid = parsed[name]
        wild = valid & ((values < MIN_TIME_MS) | (values >= MAX_TIME_MS))
        times[name] = (np.where(wild, layout.NO_TIME, values), present, valid & ~wild, wild)
    start, start_present, start_ok, start_wild = times["start"]
    end, end_present, end_ok, end_wild = times["end"]
    both = start_ok & end_ok
    flag("end", both & (end - start >= MAX_CALL_MS), TOO_LONG)
    flag("end", both & (end < start), END_BEFORE_START)
    flag("end", end_present & ~end_ok, NOT_A_TIME)
    flag("end", end_wild, TIME_OUT_OF_RANGE)
    flag("end", ~end_present, MISSING)
    sound = both & (end >= start)
    for name in ("agent_answer", "ivr_answer"):
        t, present, ok, wild = times[name]
        flag(name, sound & ok & (t > end), AFTER_END)
        flag(name, sound & ok & (t < start), BEFORE_START)
        flag(name, present & ~ok, NOT_A_TIME)
        flag(name, wild, TIME_OUT_OF_RANGE)
    local_day = np.floor_divide(start + layout.LOCAL_OFFSET_MS, layout.MS_PER_DAY)
    flag("start", start_ok & ((local_day < days[0]) | (local_day > days[1])), OUTSIDE_CALENDAR)
    flag("start", start_present & ~start_ok, NOT_A_TIME)
    flag("start", start_wild, TIME_OUT_OF_RANGE)
    flag("start", ~start_present, MISSING)
    return field, reason, {name: times[name][0] for name in TIME_COLUMNS}


BASE = DAY0 * layout.MS_PER_DAY - layout.LOCAL_OFFSET_MS
# Values at and around every bound the rule has: the time range, the
# calendar's first and last day, a day's length, and plain noise.
EDGES = [np.iinfo(np.int64).min, np.iinfo(np.int64).max, -1, 0, 1, MAX_TIME_MS - 1, MAX_TIME_MS,
         BASE - 1, BASE, BASE + 401 * layout.MS_PER_DAY - 1, BASE + 401 * layout.MS_PER_DAY]
time_value = st.one_of(st.sampled_from(EDGES), st.integers(BASE - 2 * MAX_CALL_MS, BASE + 2 * MAX_CALL_MS),
                       st.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max))
cell = st.tuples(time_value, st.booleans(), st.booleans())  # value, present, parsed


@st.composite
def rows(draw):
    """A batch's four parsed time columns: answers and end near the start
    (so every ordering happens), any cell absent, unparsed or wild."""
    n = draw(st.integers(0, 40))
    cols = {name: ([], [], []) for name in TIME_COLUMNS}
    for _ in range(n):
        start = draw(time_value)
        for name in TIME_COLUMNS:
            v = start if name == "start" else draw(st.one_of(
                time_value, st.integers(-2 * MAX_CALL_MS, 2 * MAX_CALL_MS).map(
                    lambda d, s=start: int(np.clip(s + d, np.iinfo(np.int64).min, np.iinfo(np.int64).max)))))
            present = draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else True
            valid = present and (draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else True)
            cols[name][0].append(v if valid else layout.NO_TIME)
            cols[name][1].append(present)
            cols[name][2].append(valid)
    return {name: (np.array(v, np.int64), np.array(p, bool), np.array(ok, bool)) for name, (v, p, ok) in cols.items()}


@settings(max_examples=200, deadline=None)
@given(rows())
def test_judge_times_is_the_numpy_rule(parsed):
    n = len(parsed["start"][0])
    want_field, want_reason, want_times = judge_times_by_numpy(parsed, DAYS)
    field, reason = np.full(n, 99, np.int8), np.full(n, 99, np.int8)
    times = cdr.judge_times(parsed, DAYS, field, reason)
    assert field.tolist() == want_field.tolist()
    assert reason.tolist() == want_reason.tolist()
    for name in TIME_COLUMNS:
        assert times[name].tolist() == want_times[name].tolist(), name


def test_judge_times_every_reason():
    """One row per reason the pass gives, so a generator that missed one
    still leaves it checked."""
    d = BASE + 3_600_000
    cases = [  # start, ivr, agent, end (None: absent, "x": not a time) -> (field, reason)
        ((None, None, None, d + 5), ("start", MISSING)),
        ((-1, None, None, d + 5), ("start", TIME_OUT_OF_RANGE)),
        ((np.iinfo(np.int64).min, None, None, d + 5), ("start", TIME_OUT_OF_RANGE)),
        (("x", None, None, d + 5), ("start", NOT_A_TIME)),
        ((BASE - 1, None, None, BASE + 5), ("start", OUTSIDE_CALENDAR)),
        ((d, MAX_TIME_MS, None, d + 5), ("ivr_answer", TIME_OUT_OF_RANGE)),
        ((d, "x", None, d + 5), ("ivr_answer", NOT_A_TIME)),
        ((d, d - 1, None, d + 5), ("ivr_answer", BEFORE_START)),
        ((d, None, d + 6, d + 5), ("agent_answer", AFTER_END)),
        ((d, None, None, None), ("end", MISSING)),
        ((d, None, None, MAX_TIME_MS), ("end", TIME_OUT_OF_RANGE)),
        ((d, None, None, "x"), ("end", NOT_A_TIME)),
        ((d, d - 5, None, d - 1), ("end", END_BEFORE_START)),
        ((d, None, None, d + MAX_CALL_MS), ("end", TOO_LONG)),
        ((d, d + 1, d + 2, d + MAX_CALL_MS - 1), (None, 0)),
    ]
    parsed = {}
    for i, name in enumerate(TIME_COLUMNS):
        cells = [c[0][i] for c in cases]
        parsed[name] = (np.array([layout.NO_TIME if v is None or v == "x" else v for v in cells], np.int64),
                        np.array([v is not None for v in cells]), np.array([v is not None and v != "x" for v in cells]))
    field, reason = np.empty(len(cases), np.int8), np.empty(len(cases), np.int8)
    cdr.judge_times(parsed, DAYS, field, reason)
    assert [(cdr.FIELDS[f] if f >= 0 else None, r) for f, r in zip(field, reason)] == [c[1] for c in cases]
    assert judge_times_by_numpy(parsed, DAYS)[0].tolist() == field.tolist()


# --- int64 times from their buffers, strings spliced -----------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max)), max_size=40),
       st.integers(0, 9), st.sampled_from([pa.int64(), pa.timestamp("ms", tz="+08:00"), pa.timestamp("ms")]))
def test_int64_times_are_the_compute_rule(values, cut, to):
    """``parse_times`` on int64 and timestamp[ms] columns (one compiled pass
    over the buffers) gives what pyarrow compute gives: the value (a naive
    timestamp less Shanghai's offset, wrapping as pyarrow's subtract), NO_TIME
    where null; present and valid where not null. Sliced, so offsets and
    bitmaps start mid-byte."""
    col = pa.array(values, pa.int64()).cast(to).slice(min(cut, len(values)))
    out, present, valid = cdr.parse_times(col)
    ints = col.cast(pa.int64())
    if pa.types.is_timestamp(to) and to.tz is None:
        ints = pc.subtract(ints, layout.LOCAL_OFFSET_MS)
    assert out.tolist() == pc.fill_null(ints, layout.NO_TIME).to_pylist()
    assert present.tolist() == valid.tolist() == pc.is_valid(col).to_pylist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=30), st.data())
def test_splice_is_replace_with_mask(values, data):
    """``cdr._splice`` (``kernels.edge.splice_strings``) puts the same
    strings in the same cells as pyarrow's ``replace_with_mask``."""
    cut = data.draw(st.integers(0, 3))
    s = pa.array(values, pa.string()).slice(min(cut, len(values)))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(s), max_size=len(s))), bool)
    fixed = pa.array(data.draw(st.lists(st.text(max_size=12), min_size=int(mask.sum()), max_size=int(mask.sum()))),
                     pa.string())
    got = cdr._splice(s, np.flatnonzero(mask), fixed)
    got.validate(full=True)
    want = pc.replace_with_mask(pc.fill_null(s, ""), pa.array(mask, pa.bool_()), fixed)
    assert got.to_pylist() == want.to_pylist()


def test_prepare_reads_a_slice_as_its_copy():
    """The edge's passes read columns through their offsets (a one-chunk
    column is taken as it is, not copied): a slice of a batch with bad
    cells of every kind prepares exactly as the same rows copied."""
    from rating_core.demo import demo_cdrs

    t = demo_cdrs(3000, seed=7)
    bad = {"caller": ["1.38E+10", "anonymous", "+86 138 1234 5678", "", None, "ext. 8001"],
           "number": ["4001234567.0", "40012345", None, "+86 400 123 4567", "800 123 4567", "x"],
           "forwarded_to": ["2088886666", "0791-5399455", None, "13812345678.0", "abc", "+86 (0)755 1234 5678"]}
    for name, values in bad.items():
        col = t.column(name).to_pylist()
        for i, v in enumerate(values):
            col[100 + 37 * i] = v
        t = t.set_column(t.schema.get_field_index(name), name, pa.array(col, pa.string()))
    start = pc.cast(t.column("start"), pa.int64()).to_pylist()
    start[500], start[501] = -1, 2**62
    t = t.set_column(t.schema.get_field_index("start"), "start", pa.array(start, pa.int64()))
    part = t.slice(77, 2500)
    copied = pa.Table.from_pylist(part.to_pylist(), schema=part.schema)
    days = (0, 100_000)
    a, b = cdr.prepare(part, days, 77), cdr.prepare(copied, days, 77)
    assert a.rejects.num_rows >= 6
    assert a.table.equals(b.table) and a.rejects.equals(b.rejects) and a.good.tolist() == b.good.tolist()
    for k in a.cdr:
        assert a.cdr[k].tolist() == b.cdr[k].tolist(), k
