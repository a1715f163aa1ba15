"""Text cells at the edge (breaker findings): a cell that is not UTF-8 (a
Parquet or Arrow ``binary`` column) or holds a control character (NUL, ESC,
newline, tab) is a reject naming its field, in a file (``rating400 rate``)
and in a gRPC batch (Arrow IPC or packed columns) alike; a unary RateCdr
answers INVALID_ARGUMENT for the same cells (``cdr.check_text``). Before,
a binary column crashed ``rate`` (ArrowInvalid), and batches committed call
ids RateCdr and ``explain`` refuse."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating400.v1 import rating_pb2, rating_pb2_grpc
from rating400_client import Client
from rating_core import cdr
from rating_core.kernels import edge
from rating_core.numbers import string_buffers, validity_bits
import test_accounts_server
from test_accounts_server import CALLER, DEST
from demo_server import PAYG as NUMBER  # a pay-as-you-go number of the server's catalog
from test_cdr_edge import rater, row, table  # noqa: F401 - the module's rater fixture

server = test_accounts_server.server  # the fixture: rating400 serve --workers 2 on the demo catalog
RATING400 = str(Path(sys.executable).with_name("rating400"))
START = 1_791_615_600_000  # 2026-10-10T16:20:00+08:00
ANSWER, END = START + 10_000, START + 70_000
# A call the demo catalog (``rating400 demo``, deterministic) rates.
DEMO = dict(caller="09018305136", number="4007824773", forwarded_to="04745261504",
            start=1_790_795_887_276, agent_answer=1_790_795_909_863, end=1_790_796_037_896)


FORBIDDEN = cdr._FORBIDDEN_RANGES
# Characters at and around every edge of FORBIDDEN_TEXT, so hypothesis meets each.
EDGES = [chr(c) for lo, hi in cdr.FORBIDDEN_TEXT for c in (lo - 1, lo, hi, hi + 1) if 0 <= c <= 0x10FFFF
         and not 0xD800 <= c <= 0xDFFF]
TEXT = st.text(st.one_of(st.sampled_from(EDGES), st.characters(exclude_categories=("Cs",))), max_size=6)


def _expected(value: bytes | None, max_bytes: int = 1 << 62) -> int:
    """The readable rule: ``cdr.check_text`` (the gRPC fields') on the decoded cell."""
    if value is None:
        return 0
    if len(value) > max_bytes:
        return 3
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return 2
    try:
        cdr.check_text("call_id", text, cdr.Limits(call_id=1 << 30))
    except cdr.InvalidInput as e:
        assert "control character" in e.message
        return 1
    return 0


def _judge(arr: pa.Array, check_utf8: bool, max_bytes: int = 1 << 62) -> tuple[list[int], int]:
    out = np.empty(len(arr), np.uint8)
    offsets, data = string_buffers(arr)
    bad = edge.text_cells(offsets, data, validity_bits(arr), arr.offset, check_utf8, FORBIDDEN, max_bytes, out)
    return out.tolist(), bad


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.binary(max_size=8), TEXT.map(str.encode)), max_size=40),
       st.integers(0, 3), st.integers(0, 12))
def test_text_cells_judges_as_pythons_decoder_and_check_text(values, skip, max_bytes):
    arr = pa.array(values, pa.binary()).slice(min(skip, len(values)))
    expected = [_expected(v, max_bytes) for v in values[min(skip, len(values)):]]
    assert _judge(arr, True, max_bytes) == (expected, sum(1 for e in expected if e))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXT), max_size=40), st.integers(0, 3))
def test_text_cells_on_a_string_column_agrees_with_check_text(values, skip):
    """The compiled rule (a string column, as a CSV or a gRPC batch gives it)
    and the readable one (``check_text``, a unary RateCdr's) refuse the same
    cells: C0, DEL, C1, bidi controls, zero-width characters."""
    arr = pa.array(values, pa.string()).slice(min(skip, len(values)))
    expected = [_expected(v.encode() if v is not None else None) for v in values[min(skip, len(values)):]]
    assert _judge(arr, False) == (expected, sum(1 for e in expected if e))


@pytest.mark.parametrize("char", ["\x7f", "\x80", "\x85", "\x9f", "\xad", "\u061c", "\u200b", "\u200d", "\u200e",
                                  "\u200f", "\u2028", "\u202a", "\u202e", "\u2060", "\u2066", "\u2069", "\ufeff",
                                  "\U000e0041"])
def test_del_c1_bidi_and_zero_width_characters_are_refused(char):
    with pytest.raises(cdr.InvalidInput) as e:
        cdr.check_text("cdr.caller", "138" + char + "12345678")
    assert e.value.field == "cdr.caller" and "contains a control character" in e.value.message
    assert char not in e.value.message  # shown escaped
    for ok in ("13812345678", "呼叫中心-1", "１３８", "\u00a0x", "\u2010"):  # CJK, full-width, NBSP, hyphen: kept
        assert cdr.check_text("cdr.caller", ok) == ok


def test_binary_and_control_cells_are_rejects_naming_their_field(rater):  # noqa: F811
    rows = [row(call_id="good"), row(call_id="nul\x00"), row(call_id="esc\x1b[31m"),
            row(call_id="cnl", caller="0901830\n5136"), row(call_id="num", number="4001234567\x00"),
            row(call_id="tab", forwarded_to="13912345678\t"), row(call_id="hc", hangup_cause="normal\x01")]
    res = rater.rate(table(*rows))
    got = {r["row"]: (r["field"], r["reason"]) for r in res.rejects.to_pylist()}
    control = cdr.REASONS[cdr.CONTROL_CHARACTER]
    assert got == {1: ("call_id", control), 2: ("call_id", control), 3: ("caller", control),
                   4: ("number", control), 5: ("forwarded_to", control), 6: ("hangup_cause", control)}
    assert res.rated.column("call_id").to_pylist() == ["good"]
    # The same CDRs with every text column as bytes, two of them not UTF-8.
    t = table(row(call_id="good"), row(call_id="badcaller"), row(call_id="badid"))
    raw = {name: [v.encode() if v is not None else None for v in t.column(name).to_pylist()]
           for name in cdr.STRING_COLUMNS + ("hangup_cause",)}
    raw["caller"][1] = b"\xff\xfe138"
    raw["call_id"][2] = b"\xffid"
    for name, values in raw.items():
        t = t.set_column(t.schema.get_field_index(name), name, pa.array(values, pa.large_binary()
                                                                         if name == "number" else pa.binary()))
    res = rater.rate(t)
    assert res.rated.column("call_id").to_pylist() == ["good"]
    assert [(r["row"], r["call_id"], r["field"], r["reason"], r["value"]) for r in res.rejects.to_pylist()] == [
        (1, "badcaller", "caller", "not UTF-8 text", "\\xff\\xfe138"),
        (2, "\\xffid", "call_id", "not UTF-8 text", "\\xffid")]


def _rate(tmp_path, path, *extra: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    store = tmp_path / "demo" / "store"
    if not store.exists():
        subprocess.run([RATING400, "demo", "--cdrs", "10", "--dir", str(tmp_path / "demo")], check=True,
                       capture_output=True)
    proc = subprocess.run([RATING400, "rate", str(path), "--store", str(store), "--out", str(tmp_path / "out.parquet"),
                           "--rejects", str(tmp_path / "rejects.csv"), *extra], capture_output=True, text=True)
    rejects = list(csv.DictReader(open(tmp_path / "rejects.csv", encoding="utf-8"))) if proc.returncode == 0 else []
    return proc, rejects


LONG_ID = "x" * 129
LONG_CAUSE = "c" * 65
# (call_id, caller, hangup_cause) of hostile rows, and the reject each is: (field, reason, value shown).
HOSTILE = [
    ("del\x7f", DEMO["caller"], "", ("call_id", "contains a control character", "del\\x7f")),
    ("c1", "0901830\x855136", "", ("caller", "contains a control character", "0901830\\x855136")),
    ("bidi", "\u202e" + DEMO["caller"], "", ("caller", "contains a control character", "\\u202e" + DEMO["caller"])),
    ("zw", DEMO["caller"], "normal\u200b", ("hangup_cause", "contains a control character", "normal\\u200b")),
    ("isolate\u2066", DEMO["caller"], "", ("call_id", "contains a control character", "isolate\\u2066")),
    ("esc\x1b[31m", DEMO["caller"], "", ("call_id", "contains a control character", "esc\\x1b[31m")),
    ("nl", "0901830\n5136", "", ("caller", "contains a control character", "0901830\\n5136")),
    (LONG_ID, DEMO["caller"], "", ("call_id", "longer than 128 bytes", LONG_ID)),
    ("longcause", DEMO["caller"], LONG_CAUSE, ("hangup_cause", "longer than 64 bytes", LONG_CAUSE)),
    ("longcaller", "1" * 65, "", ("caller", "longer than 64 bytes", "1" * 65)),
]


def test_rate_a_parquet_file_with_binary_columns_and_control_characters(tmp_path):
    def cells(*values):
        return pa.array(values, pa.binary())

    ts = pa.timestamp("ms", tz="+08:00")
    n = 4 + len(HOSTILE)
    caller = DEMO["caller"].encode()
    pq.write_table(pa.table({
        "call_id": cells(b"ok", b"\xffid", b"cr", b"nul\x00", *[h[0].encode() for h in HOSTILE]),
        "caller": cells(caller, caller, b"\xff\xfe138", caller, *[h[1].encode() for h in HOSTILE]),
        "number": pa.array([DEMO["number"]] * n),
        "forwarded_to": cells(*[DEMO["forwarded_to"].encode()] * n),
        **{name: pa.array([DEMO[name]] * n, ts) for name in ("start", "agent_answer", "end")},
        "hangup_cause": pa.array(["normal"] * 4 + [h[2] for h in HOSTILE]),
    }), tmp_path / "cdrs.parquet")
    proc, rejects = _rate(tmp_path, tmp_path / "cdrs.parquet")
    assert proc.returncode == 0, proc.stderr
    # What was received, escaped (never the cell cleaned, never a raw escape sequence in the file).
    assert [(r["row"], r["field"], r["reason"], r["value"]) for r in rejects] == [
        ("2", "call_id", "not UTF-8 text", "\\xffid"), ("3", "caller", "not UTF-8 text", "\\xff\\xfe138"),
        ("4", "call_id", "contains a control character", "nul\\x00")] + [
        (str(5 + i), *h[3]) for i, h in enumerate(HOSTILE)]
    assert rejects[3]["call_id"] == "del\\x7f"
    assert pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist() == ["ok"]


def test_rate_a_csv_file_with_control_characters(tmp_path):
    """A CSV holding a few bad cells is text (each row rejected, naming the
    field): control characters in its first 4 KB no longer make it "not text"."""
    d = DEMO
    lines = ["call_id,caller,number,forwarded_to,start,agent_answer,end,hangup_cause"]
    rows = [("ok", d["caller"], "normal"), ("nul\x00", d["caller"], "")] + [h[:3] for h in HOSTILE]
    for cid, caller, cause in rows:
        caller = f'"{caller}"' if "\n" in caller else caller
        lines.append(f"{cid},{caller},{d['number']},{d['forwarded_to']},{d['start']},{d['agent_answer']},{d['end']},"
                     f"{cause}")
    (tmp_path / "cdrs.csv").write_text("\n".join(lines) + "\n")
    proc, rejects = _rate(tmp_path, tmp_path / "cdrs.csv")
    assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["field"], r["reason"], r["value"]) for r in rejects] == [
        ("2", "call_id", "contains a control character", "nul\\x00")] + [
        (str(3 + i), *h[3]) for i, h in enumerate(HOSTILE)]
    assert pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist() == ["ok"]


def test_binary_files_are_still_not_text(tmp_path):
    """What really is binary data is refused whole, one line, exit 2: NUL-heavy
    (a tar archive of a CSV decodes as UTF-8), or neither UTF-8 nor GB18030."""
    import io
    import tarfile

    csv_bytes = b"call_id,number,forwarded_to,start,end\nx,4007824773,13812345678,1790795887276,1790796037896\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("cdrs.csv")
        info.size = len(csv_bytes)
        tar.addfile(info, io.BytesIO(csv_bytes))
    for name, data in (("tar.csv", buf.getvalue()), ("zeros.csv", bytes(5000)),
                       ("random.csv", bytes(range(256)) * 20), ("controls.csv", bytes(range(1, 32)) * 100)):
        (tmp_path / name).write_bytes(data)
        proc, _ = _rate(tmp_path, tmp_path / name)
        assert proc.returncode == 2, (name, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "not text" in proc.stderr, (name, proc.stderr)


def _ipc(t: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    return sink.getvalue().to_pybytes()


CASES = [("nul\x00", CALLER, NUMBER, "call_id"), ("esc\x1b[31m", CALLER, NUMBER, "call_id"),
         ("num", CALLER, NUMBER + "\x00", "number"), ("cnl", "0901830\n5136", NUMBER, "caller"),
         ("del\x7f", CALLER, NUMBER, "call_id"), ("c1", CALLER[:3] + "\x9b" + CALLER[3:], NUMBER, "caller"),
         ("rlo", "\u202e" + CALLER, NUMBER, "caller"), ("zw\u200b", CALLER, NUMBER, "call_id"),
         ("lri", CALLER, "\u2066" + NUMBER, "number")]


def _stream(stub, req):
    return list(stub.RateCdrBatches(iter([req]), timeout=20))[0]


def test_grpc_batches_reject_control_characters_as_rate_cdr_refuses_them(server):
    target = f"127.0.0.1:{server['port']}"
    with grpc.insecure_channel(target) as ch, Client(target, timeout=10) as client:
        stub = rating_pb2_grpc.RatingServiceStub(ch)
        for tag, encoding in (("a", "arrow"), ("c", "columns")):
            ids = [f"{tag}-ok"] + [tag + cid for cid, *_ in CASES]
            callers = [CALLER] + [c for _, c, _, _ in CASES]
            numbers = [NUMBER] + [num for _, _, num, _ in CASES]
            n = len(ids)
            if encoding == "arrow":
                t = pa.table({"call_id": ids, "caller": callers, "number": numbers, "forwarded_to": [DEST] * n,
                              "start_ms": [START] * n, "agent_answer_ms": [ANSWER] * n, "end_ms": [END] * n})
                resp = _stream(stub, rating_pb2.RateCdrBatchesRequest(batch_id=1, cdrs_arrow_ipc=_ipc(t)))
                with pa.ipc.open_stream(resp.rated_arrow_ipc) as r:
                    rated_rows = r.read_all().column("row").to_pylist()
            else:
                cols = rating_pb2.CdrColumns(call_id=ids, caller=callers, number=numbers, forwarded_to=[DEST] * n,
                                             start_ms=[START] * n, agent_answer_ms=[ANSWER] * n, end_ms=[END] * n)
                resp = _stream(stub, rating_pb2.RateCdrBatchesRequest(batch_id=2, cdrs=cols))
                rated_rows = list(resp.rated.row)
            assert rated_rows == [0], (encoding, resp.rejects)
            # The call id as received, escaped (``ascii``: these are ASCII but for the bad character).
            assert [(r.row, r.call_id, r.field, r.reason) for r in resp.rejects] == [
                (i + 1, ascii(ids[i + 1])[1:-1], field, "contains a control character")
                for i, (*_, field) in enumerate(CASES)]
        for cid, caller, number, field in CASES:
            with pytest.raises(grpc.RpcError) as e:
                client.rate_cdr({"call_id": "one" + cid, "caller": caller, "number": number, "forwarded_to": DEST,
                                 "start": START, "agent_answer": ANSWER, "end": END})
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert e.value.details().startswith(f"cdr.{field}: contains a control character"), e.value.details()


def test_grpc_arrow_batches_with_binary_columns(server):
    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as ch:
        stub = rating_pb2_grpc.RatingServiceStub(ch)
        t = pa.table({"call_id": pa.array([b"bin-ok", b"bin\xffid", b"bin-caller"], pa.binary()),
                      "caller": pa.array([CALLER.encode(), CALLER.encode(), b"\xff\xfe138"], pa.large_binary()),
                      "number": [NUMBER] * 3, "forwarded_to": [DEST] * 3,
                      "start_ms": [START] * 3, "agent_answer_ms": [ANSWER] * 3, "end_ms": [END] * 3})
        resp = _stream(stub, rating_pb2.RateCdrBatchesRequest(batch_id=3, cdrs_arrow_ipc=_ipc(t), dry_run=True))
        with pa.ipc.open_stream(resp.rated_arrow_ipc) as r:
            assert r.read_all().column("row").to_pylist() == [0]
        assert [(r.row, r.call_id, r.field, r.reason, r.value) for r in resp.rejects] == [
            (1, "bin\\xffid", "call_id", "not UTF-8 text", "bin\\xffid"),
            (2, "bin-caller", "caller", "not UTF-8 text", "\\xff\\xfe138")]
        # A column typed string whose bytes are not UTF-8 is a malformed message, named by its column.
        good = pa.array(["x"])
        bufs = good.buffers()
        bad = pa.Array.from_buffers(pa.string(), 1, [None, bufs[1], pa.py_buffer(b"\xff")])
        t = pa.table({"call_id": bad, "number": [NUMBER], "start_ms": [START], "end_ms": [END]})
        with pytest.raises(grpc.RpcError) as e:
            _stream(stub, rating_pb2.RateCdrBatchesRequest(batch_id=4, cdrs_arrow_ipc=_ipc(t)))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details().startswith("cdrs_arrow_ipc.call_id: corrupt Arrow data"), e.value.details()


def test_grpc_batch_with_an_over_long_cell_rejects_that_row_as_a_file_does(server, tmp_path):
    """An over-long cell in a gRPC batch (either encoding) is its row's reject,
    with the field and reason a file's rejects give it; the rest rate. The
    request-level bounds (rows per batch, message size) still refuse the whole
    request."""
    ids = ["long-ok", LONG_ID, "long-cause", "long-caller"]
    callers, causes = [CALLER, CALLER, CALLER, "1" * 65], ["", "", LONG_CAUSE, ""]
    n = len(ids)
    expected = [(1, "call_id", "longer than 128 bytes"), (2, "hangup_cause", "longer than 64 bytes"),
                (3, "caller", "longer than 64 bytes")]
    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as ch:
        stub = rating_pb2_grpc.RatingServiceStub(ch)
        t = pa.table({"call_id": ids, "caller": callers, "number": [NUMBER] * n, "forwarded_to": [DEST] * n,
                      "start_ms": [START] * n, "agent_answer_ms": [ANSWER] * n, "end_ms": [END] * n,
                      "hangup_cause": causes})
        resp = _stream(stub, rating_pb2.RateCdrBatchesRequest(batch_id=11, cdrs_arrow_ipc=_ipc(t), dry_run=True))
        with pa.ipc.open_stream(resp.rated_arrow_ipc) as r:
            assert r.read_all().column("row").to_pylist() == [0]
        assert [(r.row, r.field, r.reason) for r in resp.rejects] == expected, resp.rejects
        assert resp.rejects[0].value == LONG_ID and resp.rejects[0].call_id == LONG_ID
        cols = rating_pb2.CdrColumns(call_id=ids, caller=callers, number=[NUMBER] * n, forwarded_to=[DEST] * n,
                                     start_ms=[START] * n, agent_answer_ms=[ANSWER] * n, end_ms=[END] * n,
                                     hangup_cause=causes)
        resp = _stream(stub, rating_pb2.RateCdrBatchesRequest(batch_id=12, cdrs=cols, dry_run=True))
        assert list(resp.rated.row) == [0]
        assert [(r.row, r.field, r.reason) for r in resp.rejects] == expected, resp.rejects
        # A file with the same rows: the same field and reason per row.
        pq.write_table(pa.table({"call_id": ids, "caller": callers, "number": [DEMO["number"]] * n,
                                 "forwarded_to": [DEMO["forwarded_to"]] * n,
                                 **{k: [DEMO[k]] * n for k in ("start", "agent_answer", "end")},
                                 "hangup_cause": causes}), tmp_path / "long.parquet")
        proc, rejects = _rate(tmp_path, tmp_path / "long.parquet")
        assert proc.returncode == 0, proc.stderr
        assert [(r["field"], r["reason"]) for r in rejects] == [e[1:] for e in expected]
        # A cell is bounded by the message: one over max_message_bytes still refuses the request.
        big = pa.table({"call_id": ["x" * (65 << 20)], "number": [NUMBER], "start_ms": [START], "end_ms": [END]})
        with pytest.raises(grpc.RpcError) as e:
            _stream(stub, rating_pb2.RateCdrBatchesRequest(batch_id=13, cdrs_arrow_ipc=_ipc(big), dry_run=True))
        assert e.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)
