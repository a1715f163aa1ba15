"""The CDR edge and the Rater: every reject names its row and field,
numbers and times normalise however they are written, rows in = rated +
rejected, duplicate call ids are rated once. Real store, real kernel."""
from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rating_core import cdr
from rating_core.rater import Rater, yuan
from rating_core.store import Store

CATALOG = """
name: edge
destination_classes: [mobile, landline, satellite]
destination_prefixes: {"13": mobile, "15": mobile, "0": landline, "0098": satellite}
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  p: {kind: payg, rates: [{rate: std, destination: mobile}, {rate: std, destination: landline}]}
  late: {kind: payg, rates: [{rate: std}]}
accounts:
  acme:
    package: p
    package_start: 2026-01-01
    numbers:
      - {number: "4001234567", home_city: Shenzhen, billing_start: agent_answer}
      - {number: "4001234568", home_city: Shenzhen, status: suspended}
  newco:
    package: late
    package_start: 2026-12-01
    numbers: [{number: "4007654321", home_city: Beijing}]
"""

T0 = "2026-11-02T10:00:00+08:00"  # a Monday
T0_MS = int(dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.fixture(scope="module")
def rater(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge")
    (root / "catalog.yaml").write_text(CATALOG)
    store = Store(root / "store")
    store.activate(store.compile(root / "catalog.yaml"))
    return Rater(store.open())


def row(call_id="c1", caller="13812345678", number="4001234567", forwarded_to="13912345678",
        start=T0, ivr_answer=None, agent_answer="2026-11-02T10:00:10+08:00",
        end="2026-11-02T10:01:40+08:00", hangup_cause="normal_clearing"):
    return dict(call_id=call_id, caller=caller, number=number, forwarded_to=forwarded_to, start=start,
                ivr_answer=ivr_answer, agent_answer=agent_answer, end=end, hangup_cause=hangup_cause)


def table(*rows) -> pa.Table:
    schema = pa.schema([(c, pa.string()) for c in cdr.CDR_COLUMNS])
    return pa.Table.from_pylist(list(rows), schema=schema)


def rejects_of(result) -> dict[str, tuple[str, str]]:
    return {r["call_id"]: (r["field"], r["reason"]) for r in result.rejects.to_pylist()}


def test_a_good_call_is_rated(rater):
    res = rater.rate(table(row()))
    assert res.rejects.num_rows == 0
    r = res.rated.to_pylist()[0]
    # 90 s from agent answer at 0.12 yuan per started minute: 2 minutes.
    assert (r["account"], r["package"], r["destination_class"], r["status"]) == ("acme", "p", "mobile", "rated")
    assert (r["billable_seconds"], r["units"], r["charge_minor"]) == (90, 2, 2400)
    assert r["caller_class"] == "out_of_town" and r["caller_carrier"] is not None
    assert res.summary.charge == 2400 and yuan(res.summary.charge) == "0.24"


def test_every_edge_reason_names_its_field(rater):
    cases = {
        "no-id": ("call_id", "missing"),
        "bad-caller": ("caller", "not a phone number"),
        "no-number": ("number", "missing"),
        "not-400": ("number", "not a 400 number (400 + 7 digits)"),
        "no-fwd": ("forwarded_to", "missing"),
        "bad-fwd": ("forwarded_to", "not a phone number"),
        "no-start": ("start", "missing"),
        "bad-start": ("start", "not a time (ISO 8601, e.g. 2026-11-01T09:30:05+08:00; no offset means Asia/Shanghai; or epoch milliseconds)"),
        "old-start": ("start", "start outside the calendar table (2000-01-01 .. 2060-12-31, Asia/Shanghai days)"),
        "ivr-early": ("ivr_answer", "before start"),
        "agent-late": ("agent_answer", "after end"),
        "bad-agent": ("agent_answer", "not a time (ISO 8601, e.g. 2026-11-01T09:30:05+08:00; no offset means Asia/Shanghai; or epoch milliseconds)"),
        "no-end": ("end", "missing"),
        "bad-end": ("end", "not a time (ISO 8601, e.g. 2026-11-01T09:30:05+08:00; no offset means Asia/Shanghai; or epoch milliseconds)"),
        "end-first": ("end", "end before start"),
        "too-long": ("end", "call longer than a day"),
    }
    rows = [
        row(call_id=""),
        row(call_id="bad-caller", caller="138-0013-80O0"),
        row(call_id="withheld", caller=" Anonymous "),  # a withheld caller id: rated, caller unknown
        row(call_id="no-number", number=" "),
        row(call_id="not-400", number="8001234567"),
        row(call_id="no-fwd", forwarded_to=None),
        row(call_id="bad-fwd", forwarded_to="ext. 12"),
        row(call_id="no-start", start=None),
        row(call_id="bad-start", start="yesterday"),
        row(call_id="old-start", start="1999-12-31T10:00:00+08:00", agent_answer=None),
        row(call_id="ivr-early", ivr_answer="2026-11-02T09:59:59+08:00"),
        row(call_id="agent-late", agent_answer="2026-11-02T10:05:00+08:00"),
        row(call_id="bad-agent", agent_answer="2026-11-02T25:00:00+08:00"),
        row(call_id="no-end", end=""),
        row(call_id="bad-end", end="2026-02-30T10:00:00+08:00"),
        row(call_id="end-first", end="2026-11-02T09:00:00+08:00", agent_answer=None),
        row(call_id="too-long", end="2026-11-03T10:00:00+08:00"),
        row(call_id="fine"),
    ]
    res = rater.rate(table(*rows))
    got = {(r["call_id"] or "no-id"): (r["field"], r["reason"]) for r in res.rejects.to_pylist()}
    assert got == cases
    assert res.rated.column("call_id").to_pylist() == ["withheld", "fine"]
    # Rejects carry the input row number and the offending value as given.
    by_id = {r["call_id"]: r for r in res.rejects.to_pylist()}
    assert by_id["bad-caller"]["row"] == 1 and by_id["bad-caller"]["value"] == "138-0013-80O0"
    assert by_id["bad-start"]["value"] == "yesterday"
    assert res.summary.rows_in == len(rows) == res.summary.rated + res.summary.rejected


def test_the_first_bad_field_in_column_order_is_named(rater):
    res = rater.rate(table(row(call_id="x", caller="??", number="123", end="never"),
                           # answered at 10:00:10, ended before the start: the end is at fault
                           row(call_id="y", end="2026-11-02T09:00:00+08:00")))
    assert rejects_of(res) == {"x": ("caller", "not a phone number"), "y": ("end", "end before start")}


def test_kernel_outcomes_are_rejects_naming_their_field(rater):
    res = rater.rate(table(
        row(call_id="unknown", number="4009999999"),
        row(call_id="suspended", number="4001234568"),
        row(call_id="not-started", number="4007654321"),
        row(call_id="no-class", forwarded_to="99912345"),
        row(call_id="no-rate", forwarded_to="009812345678"),
        row(call_id="ok"),
    ))
    assert rejects_of(res) == {
        "unknown": ("number", "unknown_number"),
        "suspended": ("number", "number_not_active"),
        "not-started": ("start", "package_not_started"),
        "no-class": ("forwarded_to", "no_destination_class"),
        "no-rate": ("number", "no_rate"),
    }
    assert res.rejects.column("row").to_pylist() == [0, 1, 2, 3, 4]
    assert res.rated.column("call_id").to_pylist() == ["ok"]


@pytest.mark.parametrize("written,normal", [
    ("+86 138 1234 5678", "13812345678"),
    ("0086-138-1234-5678", "13812345678"),
    ("138 1234 5678", "13812345678"),
    ("138-1234-5678", "13812345678"),
    ("(0755) 1234-5678", "075512345678"),
    ("+86 755 1234 5678", "075512345678"),
    ("0086 10 8888 6666", "01088886666"),
    ("13812345678", "13812345678"),
])
def test_number_spellings_normalise(rater, written, normal):
    res = rater.rate(table(row(caller=written, number="+86 400-123-4567", forwarded_to=written)))
    r = res.rated.to_pylist()[0]
    assert (r["caller"], r["number"], r["forwarded_to"]) == (normal, "4001234567", normal)


def test_withheld_caller_is_rated_as_out_of_town(rater):
    res = rater.rate(table(row(caller=None), row(call_id="c2", caller="")))
    assert res.rated.column("caller_class").to_pylist() == ["out_of_town"] * 2
    assert res.rated.column("caller_city").to_pylist() == [None, None]


def test_time_spellings_agree(rater):
    spellings = [T0, "2026-11-02T02:00:00Z", "2026-11-02T10:00:00.000+0800", "2026-11-02 10:00:00",
                 str(T0_MS), "2026-11-02T10:00+08:00"]
    rows = [row(call_id=f"t{i}", start=s, agent_answer=None) for i, s in enumerate(spellings)]
    res = rater.rate(table(*rows))
    assert res.rejects.num_rows == 0
    starts = res.rated.column("start").cast(pa.int64()).to_pylist()
    assert starts == [T0_MS] * len(spellings)


def test_typed_time_columns(rater):
    """Parquet-style inputs: int64 epoch ms and timestamp columns, with
    nulls for the missing answers."""
    ms = pa.array([T0_MS, T0_MS], pa.int64())
    ts = pa.array([T0_MS + 90_000, T0_MS + 30_000], pa.timestamp("ms", tz="UTC"))
    t = pa.table({
        "call_id": ["a", "b"], "caller": ["13812345678"] * 2, "number": ["4001234567"] * 2,
        "forwarded_to": ["13912345678"] * 2, "start": ms,
        "agent_answer": pa.array([T0_MS + 10_000, None], pa.int64()), "end": ts,
    })
    res = rater.rate(t)
    assert res.rejects.num_rows == 0
    assert res.rated.column("billable_seconds").to_pylist() == [80, 0]  # b: never answered


def test_duplicates_are_rated_once(rater):
    res = rater.rate(table(
        row(call_id="d1"),
        row(call_id="d2", start="garbage"),  # a malformed first copy ...
        row(call_id="d1"),
        row(call_id="d2"),  # ... does not shadow the good retransmission
        row(call_id="d1"),
    ))
    assert res.rated.column("call_id").to_pylist() == ["d1", "d2"]
    assert res.rated.column("row").to_pylist() == [0, 3]
    dups = res.rejects.filter(pc.equal(res.rejects.column("reason"), "duplicate call id"))
    assert dups.column("row").to_pylist() == [2, 4]
    assert dups.column("field").to_pylist() == ["call_id", "call_id"]
    s = res.summary
    assert (s.rows_in, s.rated, s.rejected, s.duplicates) == (5, 2, 3, 2)


def test_rows_in_equals_rated_plus_rejected_on_a_mixed_batch(rater):
    rng = np.random.default_rng(7)
    rows = []
    for i in range(300):
        r = row(call_id=f"m{i % 250}")
        k = rng.integers(0, 6)
        if k == 1:
            r["caller"] = "x"
        elif k == 2:
            r["number"] = "4009999999"
        elif k == 3:
            r["end"] = "2026-11-02T09:00:00+08:00"
            r["agent_answer"] = None
        rows.append(r)
    res = rater.rate(table(*rows))
    s = res.summary
    assert s.rows_in == 300 == s.rated + s.rejected
    assert sorted(res.rated.column("row").to_pylist() + res.rejects.column("row").to_pylist()) == list(range(300))
    assert sum(s.rejects_by_reason.values()) == s.rejected


def test_csv_and_parquet_files_read_the_same(rater, tmp_path):
    t = table(row(call_id="f1", caller="+86 138 1234 5678"), row(call_id="f2", caller="0755-12345678"),
              row(call_id="f3", number="oops"))
    csv_path, pq_path = tmp_path / "in.csv", tmp_path / "in.parquet"
    cdr.write_table(t, csv_path)
    pq.write_table(t, pq_path)
    results = [rater.rate(cdr.read_table(p)) for p in (csv_path, pq_path)]
    for res in results:
        assert res.rated.column("caller").to_pylist() == ["13812345678", "075512345678"]
        assert rejects_of(res) == {"f3": ("number", "not a 400 number (400 + 7 digits)")}
    assert results[0].rated.drop_columns(["hangup_cause"]).equals(results[1].rated.drop_columns(["hangup_cause"]))


def test_state_carries_balances_between_calls(rater):
    state = rater.opening_state()
    before = state["credit_left"].copy()
    rater.rate(table(row()), state)
    assert (state["credit_left"] == before).all()  # payg: no credit moves
    assert rater.opening_state()["bundle_period"].tolist() == [-1, -1]


@pytest.mark.parametrize("value", [2**64 - 1, 2**63])
def test_uint64_times_past_int64_are_rejects_not_errors(value):
    """Breaker finding: a uint64 time column above 2^63-1 was an internal
    error in a Parquet file and INTERNAL over gRPC (Arrow's cast)."""
    import io

    import pyarrow as pa

    from rating_core import cdr

    start = 1_790_000_000_000
    ms, present, valid = cdr.parse_times(pa.array([start, value, None], pa.uint64()))
    assert present.tolist() == [True, True, False] and valid.tolist() == [True, False, False]
    assert ms[0] == start
    t = pa.table({"call_id": ["u1"], "caller": ["13812345678"], "number": ["4007824773"],
                  "forwarded_to": ["04395708784"], "start_ms": pa.array([start], pa.uint64()),
                  "end_ms": pa.array([value], pa.uint64())})
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    decoded = cdr.decode_arrow_ipc(sink.getvalue())  # no ArrowInvalid
    assert decoded.column("end").null_count == 0  # a time out of range, rejected by the edge: never "absent"


def test_full_width_numbers_pass_every_edge():
    """Breaker finding: full-width digits were rated from a file but refused
    by gRPC and `route` (a 32-byte bound on 3-byte characters)."""
    from rating_core.cdr import DEFAULT_LIMITS, check_route, check_text

    wide = "\uff11\uff13\uff18\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18"  # 13812345678, full width
    check_text("caller", "\uff0b\uff18\uff16 " + wide, DEFAULT_LIMITS)
    assert check_route("4000000001", wide) == ("4000000001", "13812345678")


@pytest.mark.parametrize("many", [False, True])  # few odd cells (one by one) and many (the vectorised path)
def test_digits_of_other_scripts_are_rejects_naming_their_field(rater, many):
    """Breaker finding: Arabic-Indic digits were kept as written and rated
    (caller city lost, one caller two CRM records). Refused now, naming the
    field; full-width digits are read as ASCII; the same at ``route``."""
    from rating_core.cdr import check_route
    from rating_core.errors import InvalidInput

    arabic = "\u0660\u0667\u0669\u0661\u0665\u0663\u0669\u0669\u0664\u0665\u0665"  # 07915399455
    wide = "\uff10\uff17\uff19\uff11\uff15\uff13\uff19\uff19\uff14\uff15\uff15"
    rows = [row(call_id="ar-caller", caller=arabic), row(call_id="mixed-caller", caller="1381234567\u0663"),
            row(call_id="ar-number", number="400123456\u0667"), row(call_id="ar-fwd", forwarded_to="+86 " + arabic),
            row(call_id="wide", caller=wide), row(call_id="plain", caller="07915399455")]
    rows += [row(call_id=f"pad{i}", caller=f"+86 (0)791 539 {i:04d}") for i in range(100 if many else 0)]
    res = rater.rate(table(*rows))
    why = "not a phone number (digits 0-9 only)"
    assert rejects_of(res) == {"ar-caller": ("caller", why), "mixed-caller": ("caller", why),
                               "ar-number": ("number", why), "ar-fwd": ("forwarded_to", why)}
    rated = {r["call_id"]: r for r in res.rated.to_pylist()}
    assert rated["wide"]["caller"] == rated["plain"]["caller"] == "07915399455"
    assert rated["wide"]["caller_city"] == rated["plain"]["caller_city"] is not None
    with pytest.raises(InvalidInput, match=r"^caller: .*not a phone number \(digits 0-9 only\)"):
        check_route("4001234567", arabic)
    with pytest.raises(InvalidInput, match=r"^number: .*not a phone number \(digits 0-9 only\)"):
        check_route("400123456\u0667", "13812345678")


def test_two_arrow_streams_in_one_message_are_refused_not_half_rated():
    """Breaker: ``cdrs_arrow_ipc`` holding two IPC streams back to back was
    read to the first stream's end marker; the second's CDRs vanished with
    no reject and no error. It is the message's error now, naming where the
    first stream ends; one stream of several record batches is fine."""
    from rating_core.errors import InvalidInput

    def stream(ids, batches=1):
        t = pa.table({"call_id": ids, "caller": ["13812345678"] * len(ids), "number": ["4007824773"] * len(ids),
                      "forwarded_to": ["13700000001"] * len(ids), "start_ms": [1_790_000_000_000] * len(ids),
                      "end_ms": [1_790_000_060_000] * len(ids)})
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, t.schema) as w:
            for _ in range(batches):
                w.write_table(t)
        return sink.getvalue()

    one = stream(["v-1", "v-2"])
    with pytest.raises(InvalidInput) as e:
        cdr.decode_arrow_ipc(one + stream(["v-3", "v-4"]))
    assert e.value.field == "cdrs_arrow_ipc"
    assert f"bytes after the end of its Arrow IPC stream (at byte {len(one)} of" in e.value.message
    assert cdr.decode_arrow_ipc(stream(["v-1", "v-2"], batches=2)).num_rows == 4
