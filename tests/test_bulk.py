"""The bounded-memory bulk job (rating_core.bulk) gives the results of
rating the whole input at once (``Rater.rate``): every rated row, every
reject, the summary and the closing balances, whether the input is in time
order (reorder buffer), jittered, or shuffled (spilled and sorted out of
core), whatever the chunk size, with Parquet datasets in and out."""
from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating_core import bulk, cdr
from rating_core.demo import demo_cdrs, write_demo_catalog
from rating_core.rater import Rater
from rating_core.store import Store

N = 20_000


@pytest.fixture(scope="module")
def rater(tmp_path_factory):
    root = tmp_path_factory.mktemp("bulk")
    store = Store(root / "store")
    store.activate(store.compile(write_demo_catalog(root / "catalog")))
    return Rater(store.open(), threads=2)


@pytest.fixture(scope="module")
def cdrs():
    t = demo_cdrs(N, seed=11)
    # Duplicates across chunks: a CDR retransmitted in the next chunk (start
    # jitter only), and a call id whose first copy is malformed.
    # (Chunks of 3,001 rows below: row 2,999 is in the first, its copy in the second.)
    dup = t.slice(2_999, 1)
    bad_first = t.slice(3_010, 1).set_column(3, "forwarded_to", pa.array(["not a number"]))
    return pa.concat_tables([t.slice(0, 3_003), dup, bad_first, t.slice(3_003)])


def plain(table: pa.Table) -> pa.Table:
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(cols, names=table.column_names)


def expected(rater, table, pass_through):
    state = rater.opening_state()
    r = rater.rate(table, state)
    rater.carry_usage(state)  # as the job does after each chunk
    return plain(bulk.billing_view(r.rated, pass_through)).sort_by("call_id"), r.rejects, r.summary, state


def check(rater, table, got_rated, got_rejects, result, state, pass_through=False, files=None):
    """``files``: the Parquet files the input is made of, in order (None:
    one file)."""
    rated, rejects, summary, closing = expected(rater, table, pass_through)
    got = plain(got_rated).sort_by("call_id")
    assert got.num_rows == rated.num_rows == summary.rated
    # The file names each reject's (and rated row's) input file and counts its rows
    # from 1 (cdr.rejects_file); in memory the row is the 0-based index over all.
    first = {}
    for f in files or []:
        first[str(f)] = sum(pq.ParquetFile(g).metadata.num_rows for g in files[:files.index(f)])
    if "file" in got.column_names:  # rows of several files: as numbered over all of them
        over_all = [first.get(f, 0) + r for f, r in zip(got.column("file").to_pylist(), got.column("row").to_pylist())]
        got = got.set_column(got.schema.get_field_index("row"), "row", pa.array(over_all, pa.int64()))
    got = got.select(rated.column_names)
    for name in rated.column_names:
        assert got.column(name).equals(rated.column(name)), name
    index = [first.get(f, 0) + r - 1 for f, r in zip(got_rejects.column("file").to_pylist(),
                                                     got_rejects.column("row").to_pylist())]
    got_rejects = got_rejects.append_column("index", pa.array(index)).sort_by("index")
    assert got_rejects.column("index").to_pylist() == rejects.column("row").to_pylist()
    for name in ("field", "reason", "value"):
        assert got_rejects.column(name).to_pylist() == rejects.column(name).to_pylist(), name
    s = result.summary
    assert (s.rows_in, s.rated, s.rejected, s.duplicates, s.charge) == \
        (summary.rows_in, summary.rated, summary.rejected, summary.duplicates, summary.charge)
    assert s.rejects_by_reason == summary.rejects_by_reason
    for k in closing:
        if not k.startswith(("missed_", "rolled_")):  # the kernel's scratch, sized per batch
            assert np.array_equal(state[k], closing[k]), k


@pytest.mark.parametrize("chunk_rows,force_sort", [(3_001, False), (3_001, True), (1 << 19, False)])
def test_same_as_in_memory(rater, cdrs, tmp_path, chunk_rows, force_sort):
    src = tmp_path / "cdrs.parquet"
    pq.write_table(cdrs, src)
    state = rater.opening_state()
    result = bulk.rate_dataset([src], rater, state, tmp_path / "rated.parquet", tmp_path / "rejects.csv",
                               chunk_rows=chunk_rows, force_sort=force_sort)
    # The demo's export is in time order up to a little jitter: no sort needed.
    assert result.mode == ("sorted" if force_sort else "stream")
    assert result.summary.duplicates >= 1
    assert chunk_rows > N or result.chunks > 3
    check(rater, cdrs, pq.read_table(tmp_path / "rated.parquet"), cdr.read_table(tmp_path / "rejects.csv"),
          result, state)


def test_shuffled_csv_is_sorted_out_of_core_with_pass_through(rater, cdrs, tmp_path):
    order = np.random.default_rng(3).permutation(cdrs.num_rows)
    late = cdrs.slice(10, 1)  # retransmitted days later: a late row
    shuffled = pa.concat_tables([cdrs.take(pa.array(order)), late])
    src = tmp_path / "cdrs.csv"
    cdr.write_table(shuffled, src)  # times become ISO text
    table = cdr.read_table(src)
    state = rater.opening_state()
    result = bulk.rate_dataset([src], rater, state, tmp_path / "rated.parquet", tmp_path / "rejects.csv",
                               chunk_rows=4_000, pass_through=True)
    assert result.mode == "sorted"
    check(rater, table, pq.read_table(tmp_path / "rated.parquet"), cdr.read_table(tmp_path / "rejects.csv"),
          result, state, pass_through=True)


def test_datasets_in_and_out_by_day(rater, cdrs, tmp_path):
    # Input: a Hive dataset, one directory per local start day.
    day = pc.strftime(cdrs.column("start"), "%Y-%m-%d")
    src = tmp_path / "in"
    for d in sorted(set(day.to_pylist()) - {None}):
        part = cdrs.filter(pc.equal(day, d))
        (src / f"day={d}").mkdir(parents=True)
        pq.write_table(part, src / f"day={d}" / "part-0.parquet")
    nulls = cdrs.filter(pc.is_null(day))
    pq.write_table(nulls, src / "undated.parquet")
    table = pa.concat_tables([pq.read_table(f) for f in cdr.dataset_files(src)])  # the input, in path order
    state = rater.opening_state()
    out = tmp_path / "rated"
    result = bulk.rate_dataset([src], rater, state, out, tmp_path / "rejects.csv", by_day=True, chunk_rows=2_500)
    days = sorted(p.name for p in out.iterdir())
    assert days[0].startswith("day=2026-") and len(days) >= 28
    rated = pq.read_table(out, partitioning="hive")
    starts = pc.strftime(rated.column("start"), "%Y-%m-%d").to_pylist()
    assert starts == [str(d) for d in rated.column("day").to_pylist()]  # each row in its start's day
    check(rater, table, rated.drop_columns(["day"]), cdr.read_table(tmp_path / "rejects.csv"), result, state,
          files=cdr.dataset_files(src))


def test_nothing_to_rate_still_writes_both_files(rater, tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text("call_id,number,forwarded_to,start,end\nc1,123,456,x,y\n")
    result = bulk.rate_dataset([src], rater, rater.opening_state(), tmp_path / "rated.parquet",
                               tmp_path / "rejects.csv")
    assert (result.summary.rows_in, result.summary.rated, result.summary.rejected) == (1, 0, 1)
    assert pq.read_table(tmp_path / "rated.parquet").column_names == [*bulk.ROW_COLUMNS, *bulk.BILLING_COLUMNS, "replayed"]
    assert cdr.read_table(tmp_path / "rejects.csv").column("field").to_pylist() == ["number"]


def test_call_ids_that_are_not_utf8_are_an_input_error(rater, tmp_path):
    """A Parquet file whose call-id strings are not UTF-8 (damaged pages):
    InvalidInput naming call_id and the input, not a DuckDB exception."""
    from rating_core.errors import InvalidInput

    path = tmp_path / "damaged.parquet"
    pq.write_table(demo_cdrs(20_000, seed=1), path, compression="none")
    data = bytearray(path.read_bytes())
    at = len(data) // 10
    data[at:at + 2000] = b"\xab" * 2000  # inside the call-id column's data page
    path.write_bytes(bytes(data))
    with pytest.raises((InvalidInput, cdr.InvalidFile)) as err:
        bulk.rate_dataset([path], rater, rater.opening_state(), tmp_path / "r.parquet", tmp_path / "r.csv")
    assert str(path) in str(err.value)


def test_hash_collisions_never_make_a_duplicate(rater, cdrs, tmp_path, monkeypatch):
    """The scan finds repeated call ids by their 64-bit hashes; a collision
    only makes a candidate, whose id the job compares as a string. With
    every call id forced into 4 hashes (every row a candidate), the results
    are still those of rating the whole input at once."""
    hashes = bulk.call_id_hashes
    monkeypatch.setattr(bulk, "call_id_hashes", lambda ids: (lambda h, p: (h % np.uint64(4), p))(*hashes(ids)))
    src = tmp_path / "cdrs.parquet"
    pq.write_table(cdrs, src)
    assert len(bulk.scan([src]).repeated) == 4
    state = rater.opening_state()
    result = bulk.rate_dataset([src], rater, state, tmp_path / "rated.parquet", tmp_path / "rejects.csv",
                               chunk_rows=3_001)
    assert result.summary.duplicates >= 2  # the demo's own and the two added above
    check(rater, cdrs, pq.read_table(tmp_path / "rated.parquet"), cdr.read_table(tmp_path / "rejects.csv"),
          result, state)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2**63) + 1, 2**63 - 1), st.integers(-(2**45), 2**45)), max_size=20),
       st.sampled_from(["s", "ms", "us", "ns"]), st.sampled_from(["+08:00", "-05:30", "+00:00", "UTC", None]))
def test_reject_values_of_timestamps_are_arrows_text(values, unit, tz):
    """A reject's value as given: the fast text of fixed-offset timestamps
    (``cdr._text``) is Arrow's own cast to string, byte for byte, inside the
    years 0001-9999 (and a day inside int64); beyond, where Arrow's text is
    no date, the raw integer ("epoch ms 1000000000000000 (out of range)")."""
    cells = pa.array(values, pa.timestamp(unit, tz=tz))
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    day = 86_400 * per_second
    lo = max(cdr._YEAR_1_S * per_second, -(2**63) + day)
    hi = min(cdr._YEAR_9999_S * per_second, 2**63 - 1 - day)
    got = cdr._text(cells).to_pylist()
    arrow = cdr._as_string(cells).to_pylist()
    for v, text, arrows in zip(values, got, arrow):
        if v is None or lo <= v <= hi:
            assert text == arrows, v
        else:
            assert text == (f"epoch {unit} {v} (out of range)" if tz else
                            f"{unit} {v} since 1970-01-01, no time zone (out of range)"), v


def test_a_parquet_time_far_out_of_range_is_a_reject_showing_its_integer(rater, tmp_path):
    """Faces 12-02 (LOW): a Parquet file (written by pyarrow) whose start is
    timestamp[ms, tz=+08:00] 10**15 (year 33658), -10**15 and 2**63 - 1:
    the rejects file showed "'-31878-09-27 09:46:40.000+0800" (the wrong
    year, behind a CSV formula guard), "'-29719-04-06 ..." and "1535-09-27
    2547115198431:12:55.807+0800". Each reject names the file, its row (from
    1), call id and field, the reason "time outside 1970-01-01 .. 2199-12-31
    (UTC)", and the value as its raw integer, "epoch ms 1000000000000000
    (out of range)"; a time inside the years (1938) keeps its date; the
    call in range rates."""
    t = demo_cdrs(5, seed=3)
    ms = t.column("start").cast(pa.int64()).to_pylist()
    ms[1:5] = [10**15, -(10**15), 2**63 - 1, -(10**12)]
    t = t.set_column(t.schema.get_field_index("start"), "start",
                     pa.array(ms, pa.int64()).cast(pa.timestamp("ms", tz="+08:00")))
    src = tmp_path / "far.parquet"
    pq.write_table(t, src)
    assert pq.read_schema(src).field("start").type == pa.timestamp("ms", tz="+08:00")
    result = bulk.rate_dataset([src], rater, rater.opening_state(), tmp_path / "rated.parquet",
                               tmp_path / "rejects.csv")
    assert (result.summary.rated, result.summary.rejected) == (1, 4)
    rows = cdr.read_table(tmp_path / "rejects.csv").to_pylist()
    ids = t.column("call_id").to_pylist()
    assert [(r["file"], r["row"], r["call_id"], r["field"], r["reason"], r["value"]) for r in rows] == [
        (str(src), k + 1, ids[k], "start", "time outside 1970-01-01 .. 2199-12-31 (UTC)", value)
        for k, value in ((1, "epoch ms 1000000000000000 (out of range)"),
                         (2, "epoch ms -1000000000000000 (out of range)"),
                         (3, "epoch ms 9223372036854775807 (out of range)"),
                         (4, "1938-04-25 06:13:20.000+0800"))]


@pytest.mark.parametrize("kind", ["date32", "date64"])
def test_a_parquet_date_start_is_a_reject_showing_its_day_or_its_integer(rater, tmp_path, kind):
    """Breaker 12-02 F4 (LOW): a Parquet DATE start (pyarrow writes date64
    as Parquet DATE too: days, read back as date32) showed its reject value
    as "<value out of range: 2147483647>" (date32 2**31 - 1), "<value out of
    range: 11574074>" (date64 10**15 ms = 11574074 days) and "'-29719-04-06"
    (-10**15 ms, a year behind a CSV formula guard). A date is no time
    (``not_a_time``); a day inside the years 0001-9999 shows as Arrow writes
    it ("1970-01-01", "2026-11-02", "0001-01-01", "9999-12-31"), one beyond
    as its raw integer, as timestamps since 23c28ea: "days 2147483647 since
    1970-01-01 (out of range)"; 2932897 days is 10000-01-01, -719163 days
    0000-12-31."""
    t = demo_cdrs(8, seed=3)
    if kind == "date32":
        days = [2**31 - 1, -(2**31), 0, 20394, -719162, 2932896, 2932897, -719163]
        col = pa.array(days, pa.date32())
    else:
        days = [11574074, -11574074, 0, 20394, -719162, 2932896, 2932897, -719163]
        col = pa.array([10**15, -(10**15), 0, 20394 * 86_400_000, -719162 * 86_400_000, 2932896 * 86_400_000,
                        2932897 * 86_400_000, -719163 * 86_400_000], pa.date64())
    t = t.set_column(t.schema.get_field_index("start"), "start", col)
    src = tmp_path / f"{kind}.parquet"
    pq.write_table(t, src)
    assert pq.read_schema(src).field("start").type == pa.date32()
    result = bulk.rate_dataset([src], rater, rater.opening_state(), tmp_path / "rated.parquet",
                               tmp_path / "rejects.csv")
    assert (result.summary.rated, result.summary.rejected) == (0, 8)
    rows = cdr.read_table(tmp_path / "rejects.csv").to_pylist()
    far = "days {} since 1970-01-01 (out of range)"
    assert [(r["row"], r["field"], r["code"], r["value"]) for r in rows] == [
        (k + 1, "start", "not_a_time", value) for k, value in enumerate(
            [far.format(days[0]), far.format(days[1]), "1970-01-01", "2025-11-02", "0001-01-01", "9999-12-31",
             far.format(2932897), far.format(-719163)])]


def test_reject_values_of_arrow_date64_are_floored_days_or_their_integer():
    """An Arrow (not Parquet) date64 column, ms since 1970-01-01: Arrow's
    text truncates toward zero (-1 ms read "1970-01-01") and wrote 10**15
    ms as "<value out of range: 1000000000000000>"; now the day it falls in,
    floored ("1969-12-31"), or "ms 1000000000000000 since 1970-01-01 (out of
    range)"; 253402300800000 ms is 10000-01-01, beyond."""
    cells = pa.array([-1, 1, 10**15, 253402300799999, 253402300800000, None], pa.date64())
    assert cdr._text(cells).to_pylist() == [
        "1969-12-31", "1970-01-01", "ms 1000000000000000 since 1970-01-01 (out of range)", "9999-12-31",
        "ms 253402300800000 since 1970-01-01 (out of range)", None]


def test_a_start_at_the_epoch_is_outside_the_calendar_and_the_reject_says_its_days(rater, tmp_path):
    """Breaker 12-02 F4: a Parquet start timestamp[ns, tz=UTC] of 0
    (1970-01-01T00:00Z) is inside the edge's range (1970-01-01 .. 2199-12-31,
    not ``time_out_of_range``) but its Asia/Shanghai day, 1970-01-01, is
    outside the calendar table (layout: 2000-01-01 .. 2060-12-31): rejected
    ``outside_calendar``, whose reason said only "start outside the
    calendar table"; now it names the days, as README's rejects row does.
    1999-12-31T15:59:59.999999999Z is 1999-12-31 23:59:59 local: outside;
    1999-12-31T16:00Z is 2000-01-01 00:00 local: inside, past the edge (the
    rater then finds the demo account's package not started)."""
    t = demo_cdrs(3, seed=3)
    ns = [0, 946_655_999_999_999_999, 946_656_000_000_000_000]
    t = t.set_column(t.schema.get_field_index("start"), "start", pa.array(ns, pa.timestamp("ns", tz="UTC")))
    t = t.set_column(t.schema.get_field_index("end"), "end",
                     pa.array([v + 60 * 10**9 for v in ns], pa.timestamp("ns", tz="UTC")))
    for name in ("ivr_answer", "agent_answer"):
        t = t.set_column(t.schema.get_field_index(name), name, pa.nulls(3, pa.timestamp("ns", tz="UTC")))
    src = tmp_path / "epoch.parquet"
    pq.write_table(t, src)
    result = bulk.rate_dataset([src], rater, rater.opening_state(), tmp_path / "rated.parquet",
                               tmp_path / "rejects.csv")
    with open(tmp_path / "rejects.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))  # as text: the values all read as ns timestamps
    assert [(int(r["row"]), r["field"], r["code"], r["reason"], r["value"]) for r in rows] == [
        (k, "start", "outside_calendar",
         "start outside the calendar table (2000-01-01 .. 2060-12-31, Asia/Shanghai days)", value)
        for k, value in ((1, "1970-01-01 00:00:00.000000000Z"), (2, "1999-12-31 15:59:59.999999999Z"))] + [
        (3, "start", "package_not_started", "package_not_started", "2000-01-01 00:00:00.000+0800")]
    assert (result.summary.rated, result.summary.rejected) == (0, 3)


def test_malloc_keeps_freed_chunks_on_glibc():
    # The job's chunk-sized arrays come from the heap, not fresh mappings
    # (bulk.keep_freed_memory); elsewhere nothing changes and the job runs the same.
    import platform

    assert bulk.keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=6), max_size=60), st.integers(0, 2**32), st.booleans())
def test_may_repeat_is_membership_of_the_hash(ids, seed, narrow):
    """``may_repeat`` (a filter on the hash's top bits, then a search) marks
    exactly the present ids whose hash is in ``repeated``, as Arrow's
    ``is_in`` does; ``narrow`` puts every hash under the same top bits (all
    pass the filter)."""
    arr = pa.array([None if i == "" and seed % 3 == 0 else i for i in ids], pa.string())
    h, present = bulk.call_id_hashes(arr)
    if narrow:
        h = h % np.uint64(8)
    rng = np.random.default_rng(seed)
    some = h[rng.random(len(h)) < 0.3] if len(h) else h
    other = rng.integers(0, 2**63, 5, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    repeated = np.unique(np.concatenate([some, other % np.uint64(8) if narrow else other]))
    hashes = bulk.call_id_hashes
    want = present & pc.is_in(pa.array(h), value_set=pa.array(repeated)).to_numpy(zero_copy_only=False)
    patched = pytest.MonkeyPatch()
    if narrow:
        patched.setattr(bulk, "call_id_hashes", lambda ids: (lambda h, p: (h % np.uint64(8), p))(*hashes(ids)))
    try:
        assert (bulk.may_repeat(arr, repeated) == want).all()
        assert (bulk.may_repeat(arr, repeated, bulk.repeat_filter(repeated)) == want).all()
    finally:
        patched.undo()
