"""A CSV's encoding is guessed from its bytes as a whole, never flipped by
one bad cell (README "CSV encodings"): a UTF-8 file with a stray byte stays
UTF-8 and only that row is a reject, so a file committed once and sent again
charges nothing twice; a genuine GB18030 file is still GB18030; UTF-32 is
refused as such. And the text bounds (``cdr.TEXT_BYTES``) hold for dictionary
columns too (Parquet, gRPC Arrow batches); a reject's ``... (N characters)``
counts the value received."""
from __future__ import annotations

import json

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating400.v1 import rating_pb2, rating_pb2_grpc
from rating_core import cdr
from test_text_cells import ANSWER, CALLER, DEMO, DEST, END, NUMBER, START, _ipc, _rate, _stream
from test_text_cells import server  # noqa: F401 - the module's gRPC server fixture

HEADER = "call_id,caller,number,forwarded_to,start,agent_answer,end,hangup_cause\n"


def _row(cid: str) -> str:
    d = DEMO
    return f"{cid},{d['caller']},{d['number']},{d['forwarded_to']},{d['start']},{d['agent_answer']},{d['end']},正常\n"


def _commit(tmp_path, path) -> tuple[dict, list[dict]]:
    proc, rejects = _rate(tmp_path, path, "--commit", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), rejects


def test_a_stray_byte_in_a_committed_utf8_file_charges_nothing_twice(tmp_path):
    """The breaker's file: 20 calls with Chinese call ids committed, then the
    same file again with one more row holding a byte that is not UTF-8."""
    body = HEADER + "".join(_row(f"呼叫-{i}") for i in range(20))
    (tmp_path / "g1.csv").write_bytes(body.encode())
    first, rejects = _commit(tmp_path, tmp_path / "g1.csv")
    assert first["rated"] == 20 and first["rejected"] == 0 and first["charge_minor"] > 0, first
    (tmp_path / "g2.csv").write_bytes(body.encode() + _row("stray\x85x").encode().replace(b"\xc2\x85", b"\x85"))
    assert cdr.encoding_of(tmp_path / "g2.csv") == "utf8"
    again, rejects = _commit(tmp_path, tmp_path / "g2.csv")
    assert again["charge_minor"] == 0 and again["replayed"] == 20 and again["rejected"] == 1, again
    assert [(r["row"], r["field"], r["reason"], r["value"]) for r in rejects] == [
        ("21", "call_id", "not UTF-8 text", "stray\\x85x")]  # the 21st data row (rows count from 1)
    ids = pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist()
    assert ids == [f"呼叫-{i}" for i in range(20)]  # read as written, not as GB18030


def test_a_genuine_gb18030_file_is_still_gb18030(tmp_path):
    body = HEADER + "".join(_row(f"呼叫-{i}") for i in range(5)) + _row("€-欧元")
    (tmp_path / "gb.csv").write_bytes(body.encode("gb18030"))
    assert cdr.encoding_of(tmp_path / "gb.csv") == "gb18030"
    proc, rejects = _rate(tmp_path, tmp_path / "gb.csv")
    assert proc.returncode == 0 and rejects == [], (proc.stderr, rejects)
    assert pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist() == [
        *(f"呼叫-{i}" for i in range(5)), "€-欧元"]


def test_utf32_is_not_a_supported_encoding(tmp_path):
    body = HEADER + _row("c1")
    for codec in ("utf-32", "utf-32-le", "utf-32-be"):
        (tmp_path / "u32.csv").write_bytes(body.encode(codec))
        proc, _ = _rate(tmp_path, tmp_path / "u32.csv")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (codec, proc.stderr)
        assert "UTF-32 is not a supported text encoding" in proc.stderr, (codec, proc.stderr)


def test_parquet_dictionary_columns_keep_the_byte_bounds(tmp_path):
    n = 4
    ts = pa.timestamp("ms", tz="+08:00")
    pq.write_table(pa.table({
        "call_id": pa.array(["dict-ok", "L" * 600, "dict-2", "dict-3"]).dictionary_encode(),
        "caller": pa.array([DEMO["caller"]] * n), "number": pa.array([DEMO["number"]] * n),
        "forwarded_to": pa.array([DEMO["forwarded_to"]] * n),
        **{name: pa.array([DEMO[name]] * n, ts) for name in ("start", "agent_answer", "end")},
        "hangup_cause": pa.array(["normal", "normal", "H" * 5000, "1" * 65]).dictionary_encode(),
    }), tmp_path / "dict.parquet")
    proc, rejects = _rate(tmp_path, tmp_path / "dict.parquet")
    assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["field"], r["reason"]) for r in rejects] == [
        ("2", "call_id", "longer than 128 bytes"), ("3", "hangup_cause", "longer than 64 bytes"),
        ("4", "hangup_cause", "longer than 64 bytes")]
    assert rejects[1]["value"].endswith("... (5000 characters)")
    assert pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist() == ["dict-ok"]


def test_a_reject_counts_the_characters_received(tmp_path):
    """100 bytes that are not UTF-8 are 100 characters, not the 400 of their escapes."""
    n = 2
    ts = pa.timestamp("ms", tz="+08:00")
    pq.write_table(pa.table({
        "call_id": pa.array([b"ok", b"\x85" * 100], pa.binary()),
        "caller": pa.array([DEMO["caller"]] * n), "number": pa.array([DEMO["number"]] * n),
        "forwarded_to": pa.array([DEMO["forwarded_to"]] * n),
        **{name: pa.array([DEMO[name]] * n, ts) for name in ("start", "agent_answer", "end")},
    }), tmp_path / "bin.parquet")
    proc, rejects = _rate(tmp_path, tmp_path / "bin.parquet")
    assert proc.returncode == 0, proc.stderr
    [r] = rejects
    assert (r["row"], r["field"], r["reason"]) == ("2", "call_id", "not UTF-8 text")
    assert r["value"].endswith("... (100 characters)") and len(r["value"]) <= cdr.SHOWN_CHARS, r["value"]
    assert r["value"].startswith("\\x85\\x85")
    assert cdr._escaped_bytes(b"\x85" * 10) == "\\x85" * 10  # short: whole, nothing cut


def test_grpc_arrow_batch_dictionary_columns_keep_the_byte_bounds(server):  # noqa: F811
    """As for a plain string column: a cell over its field's bound is that
    row's reject (as in a file), the other rows rate; within bounds it rates."""
    def batch(ids, causes):
        n = len(ids)
        return pa.table({"call_id": pa.array(ids).dictionary_encode(),
                         "caller": [CALLER] * n, "number": [NUMBER] * n, "forwarded_to": [DEST] * n,
                         "start_ms": [START] * n, "agent_answer_ms": [ANSWER] * n, "end_ms": [END] * n,
                         "hangup_cause": pa.array(causes).dictionary_encode()})

    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as ch:
        stub = rating_pb2_grpc.RatingServiceStub(ch)
        for t, says in ((batch(["gd-ok", "L" * 600], ["normal"] * 2), ("call_id", "longer than 128 bytes")),
                        (batch(["gd-ok", "gd-1"], ["normal", "H" * 5000]), ("hangup_cause", "longer than 64 bytes"))):
            resp = _stream(stub, rating_pb2.RateCdrBatchesRequest(batch_id=7, cdrs_arrow_ipc=_ipc(t), dry_run=True))
            with pa.ipc.open_stream(resp.rated_arrow_ipc) as r:
                assert r.read_all().column("row").to_pylist() == [0]
            assert [(r.row, r.field, r.reason) for r in resp.rejects] == [(1, *says)], resp.rejects
        t = batch(["gd-ok", "gd-1"], ["normal", "H" * 64])
        resp = _stream(stub, rating_pb2.RateCdrBatchesRequest(batch_id=8, cdrs_arrow_ipc=_ipc(t), dry_run=True))
        with pa.ipc.open_stream(resp.rated_arrow_ipc) as r:
            assert r.read_all().column("row").to_pylist() == [0, 1]


def test_a_gbk_row_past_the_sniffed_bytes_of_a_utf8_file_is_one_reject(tmp_path):
    """The guess reads the first 64 KiB; a row not UTF-8 after them is still a reject of its own."""
    rows = "".join(_row(f"呼叫-{i}") for i in range(700))
    assert len(rows.encode()) > cdr.SNIFF_BYTES
    late = _row("晚-1").replace("正常", "乱码").encode("gbk")
    (tmp_path / "late.csv").write_bytes((HEADER + rows).encode() + late)
    proc, rejects = _rate(tmp_path, tmp_path / "late.csv")
    assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["field"], r["reason"]) for r in rejects] == [("701", "call_id", "not UTF-8 text")]
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 700


def test_a_stray_byte_in_an_ascii_file_is_one_reject_and_the_fix_charges_it_once(tmp_path):
    """The breaker's second file: ASCII call ids, one with a Latin-1 byte
    before ASCII (b"\\xe9x", which GB18030 would read as a hanzi). The guess
    stays UTF-8, that row is the reject, and the corrected re-export (the
    same calls, é in UTF-8) charges that one call and nothing else again."""
    body = HEADER.encode() + b"".join(_row(f"call-{i}").encode() for i in range(20))
    bad = _row("caf\x00x").encode().replace(b"\x00", b"\xe9")
    (tmp_path / "a1.csv").write_bytes(body + bad)
    assert cdr.encoding_of(tmp_path / "a1.csv") == "utf8"
    first, rejects = _commit(tmp_path, tmp_path / "a1.csv")
    assert first["rated"] == 20 and first["rejected"] == 1, first
    assert [(r["row"], r["field"], r["reason"], r["value"]) for r in rejects] == [
        ("21", "call_id", "not UTF-8 text", "caf\\xe9x")]
    (tmp_path / "a2.csv").write_bytes(body + bad.replace(b"\xe9", "é".encode()))
    again, rejects = _commit(tmp_path, tmp_path / "a2.csv")
    assert again["replayed"] == 20 and again["rated"] == 21 and rejects == [], again
    one = again["charge_minor"]
    assert one > 0 and first["charge_minor"] == 20 * one, (first, again)


def test_a_lone_high_byte_in_an_ascii_file_is_one_reject_not_a_refused_file(tmp_path):
    """0xFF is neither UTF-8 nor GB18030: before, the whole file was `not text`."""
    (tmp_path / "ff.csv").write_bytes(HEADER.encode() + _row("ok-1").encode() + _row("x\x00").encode().replace(b"\x00", b"\xff"))
    assert cdr.encoding_of(tmp_path / "ff.csv") == "utf8"
    proc, rejects = _rate(tmp_path, tmp_path / "ff.csv")
    assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["field"], r["value"]) for r in rejects] == [("2", "call_id", "x\\xff")]


def test_a_gbk_file_with_too_few_hanzi_to_tell_is_read_as_utf8_and_named_gbk_rates(tmp_path):
    """Under GB_EVIDENCE hanzi the bytes cannot be told from a stray byte:
    those rows are rejects (never a silently changed id), and `--encoding gbk`
    rates them."""
    body = HEADER + "".join(_row(f"c-{i}").replace("正常", "ok") for i in range(5)) + _row("c-5").replace("正常", "无")
    (tmp_path / "few.csv").write_bytes(body.encode("gbk"))
    assert cdr.encoding_of(tmp_path / "few.csv") == "utf8"
    proc, rejects = _rate(tmp_path, tmp_path / "few.csv")
    assert proc.returncode == 0 and [(r["row"], r["field"]) for r in rejects] == [("6", "hangup_cause")], rejects
    proc, rejects = _rate(tmp_path, tmp_path / "few.csv", "--encoding", "gbk")
    assert proc.returncode == 0 and rejects == [], (proc.stderr, rejects)
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 6


def test_binary_data_is_still_not_text(tmp_path):
    import random
    rnd = random.Random(7)
    (tmp_path / "bin.csv").write_bytes(bytes(rnd.randrange(256) for _ in range(8192)))
    proc, _ = _rate(tmp_path, tmp_path / "bin.csv")
    assert proc.returncode == 2 and "not text" in proc.stderr, proc.stderr


def test_utf8_chinese_in_a_gbk_file_is_a_reject_not_a_changed_call_id(tmp_path):
    """The breaker's mixed file: ten GBK rows, then one UTF-8 row whose call
    id is 呼叫-0001. Read as GB18030 that id would be 鍛煎彨-0001, committed,
    and the corrected file would charge the call again: that row is a
    reject naming its row, field and reason, showing the id as written;
    the ten GBK rows commit; the corrected row commits once after."""
    gbk = (HEADER + "".join(_row(f"c-{i}") for i in range(10))).encode("gbk")
    (tmp_path / "mixed.csv").write_bytes(gbk + _row("呼叫-0001").encode())
    assert cdr.encoding_of(tmp_path / "mixed.csv") == "gb18030"
    proc, rejects = _rate(tmp_path, tmp_path / "mixed.csv", "--encoding", "gbk")
    assert proc.returncode == 0, proc.stderr
    first, rejects = _commit(tmp_path, tmp_path / "mixed.csv")
    assert first["rated"] == 10 and first["rejected"] == 1, first
    assert [(r["row"], r["field"], r["reason"], r["value"]) for r in rejects] == [
        ("11", "call_id", "UTF-8 text in a GBK file (save the file in one encoding)", "呼叫-0001")]
    assert "鍛煎彨-0001" not in pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist()
    (tmp_path / "fixed.csv").write_bytes((HEADER + "".join(_row(f"c-{i}") for i in range(10))
                                          + _row("呼叫-0001")).encode())
    again, rejects = _commit(tmp_path, tmp_path / "fixed.csv")
    assert again["rated"] == 11 and again["replayed"] == 10 and rejects == [], again
    assert "呼叫-0001" in pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist()


def test_a_utf8_row_deep_in_a_gbk_file_is_its_own_reject(tmp_path):
    """900 GBK rows (more than the sniffed 64 KiB), one UTF-8 row (row 901)
    whose bytes are not GB18030, 49 more: only row 901 is a reject, the
    other 949 rate, read as GBK."""
    rows = [_row(f"呼叫-{i}").replace("正常", "正常挂机") for i in range(950)]
    body = (HEADER + "".join(rows[:900])).encode("gbk") + rows[900].replace("呼叫", "呼叫甲").encode() \
        + "".join(rows[901:]).encode("gbk")
    assert len(body) > cdr.SNIFF_BYTES
    (tmp_path / "tail.csv").write_bytes(body)
    assert cdr.encoding_of(tmp_path / "tail.csv") == "gb18030"
    proc, rejects = _rate(tmp_path, tmp_path / "tail.csv", "--pass-through")
    assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["field"], r["value"]) for r in rejects] == [("901", "call_id", "呼叫甲-900")], rejects
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.num_rows == 949 and set(out.column("hangup_cause").to_pylist()) == {"正常挂机"}
    assert out.column("call_id").to_pylist()[-1] == "呼叫-949"


def test_gbk_words_that_look_like_utf8_are_still_gbk(tmp_path):
    """忙 is C3A6 in GBK, a valid 2-byte UTF-8 character (æ); GBK text whose
    bytes hold a 3-byte UTF-8 CJK sequence by chance is not UTF-8 as a line."""
    rows = [_row(f"c-{i}").replace("正常", w) for i, w in enumerate(["忙", "用户忙", "正常", "无应答", "忙音"])]
    (tmp_path / "busy.csv").write_bytes((HEADER + "".join(rows)).encode("gbk"))
    proc, rejects = _rate(tmp_path, tmp_path / "busy.csv", "--encoding", "gbk", "--pass-through")
    assert proc.returncode == 0 and rejects == [], (proc.stderr, rejects)
    assert pq.read_table(tmp_path / "out.parquet").column("hangup_cause").to_pylist() == [
        "忙", "用户忙", "正常", "无应答", "忙音"]


def test_gbk_rejects_in_a_utf8_read_get_one_hint(tmp_path):
    body = HEADER + "".join(_row(f"c-{i}").replace("正常", "ok") for i in range(5)) + _row("c-5").replace("正常", "无")
    (tmp_path / "few.csv").write_bytes(body.encode("gbk"))
    proc, _ = _rate(tmp_path, tmp_path / "few.csv")
    assert proc.returncode == 0, proc.stderr
    hint = "1 rows not UTF-8 text: the file was read as UTF-8; if it is GBK, rate it again with --encoding gbk"
    assert (proc.stdout + proc.stderr).count(hint) == 1, (proc.stdout, proc.stderr)


def test_readme_states_the_text_bounds_of_the_code():
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    b = cdr.TEXT_BYTES
    assert (f"call id {b['call_id']} bytes, numbers {b['number']}, hang-up cause {b['hangup_cause']}, "
            f"IVR keys {b['ivr_keys']}") in readme


def test_bytes_not_gb18030_deep_in_a_gbk_file_are_their_rows_reject(tmp_path):
    """0xFF is no GB18030 byte: the row holding it (901) is a reject naming
    the field, the reason and the bad byte escaped; a bad byte in a
    pass-through column rejects nothing and is shown escaped there."""
    rows = [_row(f"呼叫-{i}").replace("正常", "正常挂机") for i in range(950)]
    body = (HEADER + "".join(rows[:900])).encode("gbk") + rows[900].encode("gbk").replace(b"-", b"\xff", 1) \
        + "".join(rows[901:]).encode("gbk")
    (tmp_path / "ff.csv").write_bytes(body)
    assert cdr.encoding_of(tmp_path / "ff.csv") == "gb18030"
    proc, rejects = _rate(tmp_path, tmp_path / "ff.csv")
    assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["field"], r["reason"], r["value"]) for r in rejects] == [
        ("901", "call_id", "not GBK text", "呼叫\\xff900")], rejects
    extra = (HEADER.rstrip("\n") + ",备注\n" + "".join(r.rstrip("\n") + ",客户\n" for r in rows[:20])).encode("gbk")
    extra = extra.replace("客户".encode("gbk"), b"\xff\xff", 1)
    (tmp_path / "extra.csv").write_bytes(extra)
    proc, rejects = _rate(tmp_path, tmp_path / "extra.csv", "--pass-through", "--encoding", "gbk")
    assert proc.returncode == 0 and rejects == [], (proc.stderr, rejects)
    notes = pq.read_table(tmp_path / "out.parquet").column("备注").to_pylist()
    assert notes[0] == "\\xff\\xff" and notes[1:] == ["客户"] * 19, notes[:3]


def test_a_stray_byte_does_not_hide_a_gbk_file(tmp_path):
    """The newcomer's Excel export: GBK rows, one UTF-8 call id, one call id
    with a byte 0xFF. The file is still guessed GBK (one bad byte among many
    GBK ones); those two rows are rejects, the bad byte shown as the UTF-8
    reading shows it (``\\xff04``, not ``\\xff\\x30\\x34``), the rest rate."""
    rows = [_row(f"呼叫-{i:04d}") for i in range(6)]
    body = (HEADER + "".join(rows)).encode("gbk") + _row("呼叫-0006").encode() + _row("call-X04").encode("gbk").replace(b"X", b"\xff")
    (tmp_path / "excel.csv").write_bytes(body)
    assert cdr.encoding_of(tmp_path / "excel.csv") == "gb18030"
    proc, rejects = _rate(tmp_path, tmp_path / "excel.csv")
    assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["field"], r["reason"], r["value"]) for r in rejects] == [
        ("7", "call_id", "UTF-8 text in a GBK file (save the file in one encoding)", "呼叫-0006"),
        ("8", "call_id", "not GBK text", "call-\\xff04")], rejects
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 6


def test_gbk_breaker_files(tmp_path, monkeypatch):
    """The breaker's GBK files, read in process: Chinese in a pass-through
    column only after the first read block (the column's type was inferred
    from that block: the whole file was refused); a header cell quoted over
    two lines; one UTF-8 CJK character in a call id (read as GBK it was
    another id, charged again once sent as UTF-8); a UTF-8 file whose cell
    starts like the GBK marker (a plain `not UTF-8 text`, shown as sent)."""
    monkeypatch.setattr(cdr, "CSV_BLOCK_BYTES", 4096)
    rows = [_row(f"c-{i}").rstrip("\n") + (",ascii\n" if i < 200 else ",中文备注\n") for i in range(400)]
    (tmp_path / "late.csv").write_bytes((HEADER.rstrip("\n") + ",note\n" + "".join(rows)).encode("gbk"))
    table = pa.Table.from_batches(list(cdr.read_batches(tmp_path / "late.csv", encoding="gbk")))
    assert table.num_rows == 400 and table.column("note").to_pylist()[-1] == "中文备注"
    head = 'call_id,caller,number,forwarded_to,start,agent_answer,end,"挂机\n原因"\n'
    (tmp_path / "head.csv").write_bytes((head + _row("呼叫-1")).encode("gbk"))
    table = pa.Table.from_batches(list(cdr.read_batches(tmp_path / "head.csv", encoding="gbk")))
    assert table.num_rows == 1 and table.column("call_id").to_pylist() == ["呼叫-1"]
    (tmp_path / "one.csv").write_bytes((HEADER + _row("c-0")).encode("gbk") + _row("单a-1").encode())
    proc, rejects = _rate(tmp_path, tmp_path / "one.csv", "--encoding", "gbk")
    assert proc.returncode == 0 and [(r["row"], r["value"]) for r in rejects] == [("2", "单a-1")], rejects
    (tmp_path / "forged.csv").write_bytes((HEADER + _row("c-0")).encode() + _row("X").encode().replace(
        b"X", b"\xff\x00u\xba\xc3", 1))
    proc, rejects = _rate(tmp_path, tmp_path / "forged.csv")
    assert [(r["reason"], r["value"]) for r in rejects] == [("not UTF-8 text", "\\xff\\x00u\\xba\\xc3")], rejects


def test_pass_through_bytes_to_csv_output_after_a_commit(tmp_path):
    """A pass-through column with a byte that is not UTF-8, written as CSV
    with --commit: it was an internal error after the calls were charged
    (breaker); now the byte is written escaped and the run succeeds."""
    import csv as csv_mod
    import subprocess

    from test_text_cells import RATING400

    body = (HEADER.rstrip("\n") + ",note\n").encode() + b"".join(
        _row(f"c-{i}").rstrip("\n").encode() + (b",ok\n" if i else b",bad\xffbyte\n") for i in range(5))
    (tmp_path / "pt.csv").write_bytes(body)
    _rate(tmp_path, tmp_path / "pt.csv")  # makes the demo store
    proc = subprocess.run([RATING400, "rate", str(tmp_path / "pt.csv"), "--store", str(tmp_path / "demo" / "store"),
                           "--out", str(tmp_path / "o.csv"), "--pass-through", "--commit"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    notes = [r["note"] for r in csv_mod.DictReader(open(tmp_path / "o.csv", encoding="utf-8"))]
    assert notes == ["bad\\xffbyte", "ok", "ok", "ok", "ok"], notes


def test_second_breaker_files(tmp_path):
    """A UTF-8 call id with a Latin letter (café-1) read as GBK is a reject,
    never caf茅-1 charged again; a UTF-8 and a GBK file whose extra column
    reads as numbers in one and text in the other commit together (an
    internal error); Parquet pass-through of fixed-size binary and list
    columns written as CSV after a commit (an internal error with the calls
    charged)."""
    import subprocess

    from test_text_cells import RATING400

    (tmp_path / "cafe.csv").write_bytes((HEADER + _row("c-0") + _row("café-1")).encode())
    first, rejects = _commit(tmp_path, tmp_path / "cafe.csv")
    assert first["rated"] == 2, first
    proc, rejects = _rate(tmp_path, tmp_path / "cafe.csv", "--encoding", "gbk", "--commit", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["charge_minor"] == 0, proc.stdout
    assert [(r["row"], r["value"]) for r in rejects if r["field"] == "call_id"] == [("2", "café-1")], rejects
    head = HEADER.rstrip("\n") + ",dur\n"
    (tmp_path / "u8.csv").write_bytes((head + _row("u-1").rstrip("\n") + ",7\n").encode())
    (tmp_path / "gb.csv").write_bytes((head + "".join(_row(f"呼叫-{i}").rstrip("\n") + f",{i}\n"
                                                      for i in range(5))).encode("gbk"))
    store = str(tmp_path / "demo" / "store")
    proc = subprocess.run([RATING400, "rate", str(tmp_path / "u8.csv"), str(tmp_path / "gb.csv"), "--store", store,
                           "--out", str(tmp_path / "two.parquet"), "--commit", "--pass-through", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)["rated"] == 6, proc.stderr
    table = pa.Table.from_pylist([{**{k: v for k, v in zip(HEADER.strip().split(","), _row(f"p-{i}").strip().split(","))},
                                   "fx": b"ab", "lst": [i, 2]} for i in range(3)])
    table = table.set_column(table.column_names.index("fx"), "fx", table.column("fx").cast(pa.binary(2)))
    pq.write_table(table, tmp_path / "nested.parquet")
    proc = subprocess.run([RATING400, "rate", str(tmp_path / "nested.parquet"), "--store", store,
                           "--out", str(tmp_path / "nested.csv"), "--commit", "--pass-through"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "nested.csv").read_text()
    assert '"ab"' in text and '"[0, 2]"' in text, text[:400]


def test_a_gb18030_byte_order_mark_is_read_as_one(tmp_path):
    """GB18030's mark (U+FEFF, 84 31 95 33) names the encoding, and the
    header's first column is still call_id (it was `no such column`)."""
    body = ("\ufeff" + HEADER + _row("呼叫-1") + _row("c-2")).encode("gb18030")
    assert body.startswith(cdr.GB18030_MARK)
    (tmp_path / "mark.csv").write_bytes(body)
    assert cdr.encoding_of(tmp_path / "mark.csv") == "gb18030"
    proc, rejects = _rate(tmp_path, tmp_path / "mark.csv")
    assert proc.returncode == 0 and rejects == [], (proc.stderr, rejects)
    assert pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist() == ["呼叫-1", "c-2"]


CYRILLIC_NOTE = "Клиент просил звонок днем"  # Windows-1251 in a note column (the breaker's)


def _ascii_row(cid: str, cause: str = "normal_clearing") -> str:
    return _row(cid).replace(",正常\n", f",{cause}\n")


def test_a_utf8_file_with_a_few_windows_1251_rows_is_utf8(tmp_path):
    """UTF-8 with a few rows of Windows-1251 text in a pass-through note
    (its byte pairs read as GBK hanzi, and they are most of the file's
    non-ASCII bytes): the file is overwhelmingly UTF-8 by lines, so it is
    read as UTF-8 (it was guessed GBK); the notes are kept with the bytes
    escaped, a hang-up cause in Windows-1251 is that row's reject naming
    the field, and every other row rates under its own call id."""
    note = CYRILLIC_NOTE.encode("cp1251")
    rows = []
    for i in range(60):
        line = _ascii_row(f"c-{i}").rstrip("\n").encode() + b","
        rows.append(line + (note if i in (3, 30) else b"ok") + b"\n")
    rows.append(_ascii_row("c-bad", "X").rstrip("\n").encode().replace(b",X", b"," + "отбой".encode("cp1251"))
                + b",ok\n")
    (tmp_path / "w1251.csv").write_bytes((HEADER.rstrip("\n") + ",note\n").encode() + b"".join(rows))
    assert cdr.encoding_of(tmp_path / "w1251.csv") == "utf8"
    proc, rejects = _rate(tmp_path, tmp_path / "w1251.csv", "--pass-through")
    assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["call_id"], r["field"], r["reason"]) for r in rejects] == [
        ("61", "c-bad", "hangup_cause", "not UTF-8 text")], rejects
    rated = pq.read_table(tmp_path / "out.parquet")
    assert rated.column("call_id").to_pylist() == [f"c-{i}" for i in range(60)]
    # Parquet keeps the note's bytes as given (a binary column); CSV output
    # writes them escaped (test_pass_through_bytes_to_csv_output_after_a_commit).
    notes = rated.column("note").to_pylist()
    assert [notes[i] for i in (3, 30)] == [note, note] and notes[0] == b"ok"


def test_gbk_across_the_file_is_still_gbk(tmp_path):
    """The other direction: a GBK export whose Chinese is in a quarter of
    its rows (hang-up causes) is still read as GBK, and rates as written."""
    rows = [_row(f"呼叫-{i}") if i % 4 == 0 else _ascii_row(f"c-{i}") for i in range(40)]
    (tmp_path / "gbk.csv").write_bytes((HEADER + "".join(rows)).encode("gbk"))
    assert cdr.encoding_of(tmp_path / "gbk.csv") == "gb18030"
    proc, rejects = _rate(tmp_path, tmp_path / "gbk.csv")
    assert proc.returncode == 0 and rejects == [], (proc.stderr, rejects)
    ids = pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist()
    assert ids == [f"呼叫-{i}" if i % 4 == 0 else f"c-{i}" for i in range(40)]


def test_a_mostly_ascii_gbk_file_with_a_few_chinese_rows_reads_as_utf8_and_says_so(tmp_path):
    """Where the rule leans: GBK in 1 row of 40 is not GBK across the
    file. The file is read as UTF-8; a pass-through note keeps its bytes
    escaped, and a Chinese call id is that row's reject with the hint to
    name the encoding (nothing is charged under another id)."""
    rows = [_ascii_row(f"c-{i}") for i in range(39)] + [_ascii_row("呼叫-1")]
    (tmp_path / "few.csv").write_bytes((HEADER + "".join(rows)).encode("gbk"))
    assert cdr.encoding_of(tmp_path / "few.csv") == "utf8"
    proc, rejects = _rate(tmp_path, tmp_path / "few.csv")
    assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["field"], r["reason"]) for r in rejects] == [("40", "call_id", "not UTF-8 text")]
    assert "--encoding gbk" in proc.stdout + proc.stderr
    proc, rejects = _rate(tmp_path, tmp_path / "few.csv", "--encoding", "gbk")
    assert proc.returncode == 0 and rejects == [], rejects


def test_a_stray_byte_in_the_start_cell_is_a_reject_in_a_dry_run(tmp_path):
    """The duplicate scan reads ``start`` before the edge judges it: a byte
    that is not UTF-8 there (UTF-8 CSV, a CSV read as GBK, a Parquet binary
    column) was an internal error in a dry run (``ArrowInvalid``) while a
    commit rejected the row. Now it is that row's reject naming ``start``,
    dry as committed, and the other rows rate."""
    bad = str(DEMO["start"]).encode() + b"\xff"
    utf8 = (HEADER + _ascii_row("s-1")).encode() + _ascii_row("s-2").encode().replace(str(DEMO["start"]).encode(), bad)
    gbk = (HEADER + "".join(_row(f"呼叫-{i}") for i in range(20))).encode("gbk") + _row("s-2").encode(
        "gbk").replace(str(DEMO["start"]).encode(), bad)
    (tmp_path / "u.csv").write_bytes(utf8)
    (tmp_path / "g.csv").write_bytes(gbk)
    assert cdr.encoding_of(tmp_path / "g.csv") == "gb18030"
    rows = [dict(zip(HEADER.strip().split(","), _ascii_row(f"p-{i}").strip().split(","))) for i in (1, 2)]
    table = pa.Table.from_pylist(rows)
    starts = pa.array([r["start"].encode() for r in rows[:1]] + [bad], pa.binary())
    pq.write_table(table.set_column(table.column_names.index("start"), "start", starts), tmp_path / "p.parquet")
    for name, rated in (("u.csv", 1), ("g.csv", 20), ("p.parquet", 1)):
        for extra in ((), ("--commit",)):
            proc, rejects = _rate(tmp_path, tmp_path / name, "--json", *extra)
            assert proc.returncode == 0, (name, extra, proc.stderr)
            assert json.loads(proc.stdout)["rated"] == rated, (name, extra, proc.stdout)
            assert [(r["call_id"], r["field"]) for r in rejects] == [("s-2" if "csv" in name else "p-2", "start")], (
                name, extra, rejects)


def test_a_file_name_in_a_rejects_file_is_shown_escaped(tmp_path):
    """The rejects file's ``file`` column is text a clerk opens: an ESC or a
    byte that is not UTF-8 in an input's name is written escaped, never a
    terminal escape (breaker), and the file still rates."""
    files = cdr.InputRows()
    files.begin("a.csv", 0)
    files.begin("bad\x1b[31m\u202e.csv", 2)
    files.begin("gbk-\udcc4\udce3.csv", 3)
    names, rows = files.locate(np.array([1, 2, 4], np.int64))
    assert names.to_pylist() == ["a.csv", "bad\\x1b[31m\\u202e.csv", "gbk-\\xc4\\xe3.csv"] and rows.tolist() == [1, 0, 1]
    name = tmp_path / "bad\x1b[31mname.csv"
    name.write_bytes((HEADER + _ascii_row("e-1") + _ascii_row("e-1")).encode())
    proc, rejects = _rate(tmp_path, name)
    assert proc.returncode == 0, proc.stderr
    assert [(r["file"], r["row"], r["reason"]) for r in rejects] == [
        (str(name).replace("\x1b", "\\x1b"), "2", "duplicate call id")]


def test_a_padded_call_id_is_a_reject_not_another_call(tmp_path):
    """`` d1 `` beside ``d1`` (a padded re-export) was rated as another call,
    charged twice, dry and committed (breaker); now it is its row's reject
    naming call_id, dry as committed, and a space inside an id is kept."""
    body = (HEADER + _ascii_row("d1") + _ascii_row(" d1 ") + _ascii_row("d1\t") + _ascii_row('"d 2"')
            + _ascii_row("d1\u00a0") + _ascii_row("\u3000d1")).encode()  # NBSP, ideographic space: Unicode padding
    (tmp_path / "pad.csv").write_bytes(body)
    for extra in ((), ("--commit",)):
        proc, rejects = _rate(tmp_path, tmp_path / "pad.csv", "--json", *extra)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["rated"] == 2
        assert [(r["row"], r["call_id"], r["field"]) for r in rejects] == [
            ("2", " d1 ", "call_id"), ("3", "d1\\t", "call_id"), ("5", "d1\u00a0", "call_id"),
            ("6", "\u3000d1", "call_id")], rejects
        assert rejects[0]["reason"].startswith("space before or after the call id")
        assert rejects[2]["reason"] == rejects[3]["reason"] == rejects[0]["reason"]
        assert rejects[1]["reason"] == "contains a control character"  # a tab: refused as a control already
    assert pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist() == ["d1", "d 2"]


def test_spaced_finds_every_white_space_at_either_end():
    """``cdr._spaced`` (a NumPy look at each cell's first and last byte,
    Arrow's Unicode trim only for the few that may): the same answer as
    Python's ``str.isspace`` at either end of every cell, for ASCII,
    Chinese and Unicode spaces (NBSP, U+3000, U+2003, U+0085, U+2028),
    nulls and slices. (Breaker: it was checked against Arrow's regex
    ``\\s``, which is ASCII only, so NBSP-padded ids passed both.)"""
    cells = ["d1", " d1", "d1 ", "d 1", "", None, "\u3000呼叫", "呼叫\u00a0", "呼叫", "é", "x\u2003", "\u2003", "1",
             "d1\u00a0", "\u00a0", "\u0085d1", "d1\u2028", "d1\t", "中\u3000文", "\u200bd1", "\ufeffd1"]
    col = pa.array(cells * 3).slice(2, 60)
    present = cdr._present(col)
    want = np.array([bool(c) and (c[0].isspace() or c[-1].isspace()) for c in col.to_pylist()])
    assert (cdr._spaced(col, present) == want).all()


@pytest.mark.parametrize("told", [(), ("--encoding", "gbk")])
def test_a_call_id_that_reads_as_gbk_and_as_utf8_says_so(tmp_path, told):
    """忙-1 in GBK is C3 A6 2D 31, valid UTF-8 too (æ-1): in a GBK file
    (guessed from its Chinese, or told) that call id is not guessed either
    way. The reject said `UTF-8 text in a GBK file (save the file in one
    encoding)` of a file in one encoding; it says now that the id reads as
    both, which is shown, and what to do for either; the other rows rate."""
    body = HEADER + _row("忙-1") + "".join(_row(f"呼叫-{i}").replace("正常", "正常挂机") for i in range(20))
    (tmp_path / "busy.csv").write_bytes(body.encode("gbk"))
    assert cdr.encoding_of(tmp_path / "busy.csv") == "gb18030"
    proc, rejects = _rate(tmp_path, tmp_path / "busy.csv", *told)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert [(r["row"], r["field"], r["value"]) for r in rejects] == [("1", "call_id", "æ-1")], rejects
    reason = rejects[0]["reason"]
    assert reason == cdr.REASONS[cdr.AMBIGUOUS_ID] and reason.startswith("reads as UTF-8 (shown) and as GBK"), reason
    assert "--encoding utf-8" in reason and "save it as UTF-8" in reason, reason
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 20


def _noted(rows: list[str], notes: list[str]) -> str:
    return "".join(r.rstrip("\n") + f",{n}\n" for r, n in zip(rows, notes))


def test_a_small_gbk_file_half_of_whose_bytes_look_utf8_is_gbk(tmp_path):
    """The newcomer's files: 4 rows under a header ending 备注,switch_id,
    each note 普通 (exactly 10 of the 20 non-ASCII bytes form valid UTF-8 by
    chance), and 200 rows noted 普通, 客户投诉 or 退货. No line of either is
    UTF-8, every byte is GB18030: both are GBK (the first was refused,
    `header unreadable`; the second's notes came out garbled)."""
    head = HEADER.rstrip("\n") + ",备注,switch_id\n"
    body = (head + _noted([_ascii_row(f"c-{i}") for i in range(4)], ["普通,sw1"] * 4)).encode("gbk")
    (tmp_path / "payg_gbk.csv").write_bytes(body)
    utf8 = body.decode("utf-8", "surrogateescape")
    assert len(cdr._ESCAPED_BYTE.findall(utf8)) * 2 == len(body.translate(None, bytes(range(128)))) == 20
    assert cdr.encoding_of(tmp_path / "payg_gbk.csv") == "gb18030"
    proc, rejects = _rate(tmp_path, tmp_path / "payg_gbk.csv", "--pass-through")
    assert proc.returncode == 0 and rejects == [], (proc.stderr, rejects)
    assert pq.read_table(tmp_path / "out.parquet").column("备注").to_pylist() == ["普通"] * 4
    notes = [("普通", "客户投诉", "退货")[i % 3] for i in range(200)]
    rows = _noted([_ascii_row(f"c-{i}") for i in range(200)], notes)
    (tmp_path / "notes.csv").write_bytes((HEADER.rstrip("\n") + ",note\n" + rows).encode("gbk"))
    assert cdr.encoding_of(tmp_path / "notes.csv") == "gb18030"
    proc, rejects = _rate(tmp_path, tmp_path / "notes.csv", "--pass-through")
    assert proc.returncode == 0 and rejects == [], (proc.stderr, rejects)
    assert pq.read_table(tmp_path / "out.parquet").column("note").to_pylist() == notes


def test_a_small_utf8_file_with_a_stray_byte_is_still_utf8(tmp_path):
    """What the rule for small GBK files must not take: UTF-8 files whose
    every byte also decodes as GB18030 into enough GB2312 hanzi, each with
    one stray byte: Chinese call ids (valid UTF-8 lines), Latin ones (café:
    valid UTF-8 lines, no CJK), and the stray byte on the one line with
    Chinese (no valid UTF-8 line, but a UTF-8 CJK character). Each stays
    UTF-8, the stray byte its row's reject, never every id changed."""
    stray = _row("x\x00x").encode().replace(b"\x00", b"\x85")
    cases = [(HEADER + "".join(_row(f"呼叫-{i}") for i in range(4))).encode() + stray,
             (HEADER + "".join(_ascii_row(f"café-{i}") for i in range(5))).encode()
             + _ascii_row("caf\x00x").encode().replace(b"\x00", b"\xe9"),
             (HEADER + _ascii_row("c-0")).encode() + _row("呼叫-\x00x").encode().replace(b"\x00", b"\x85")]
    for i, body in enumerate(cases):
        gb = body.decode("gb18030", "surrogateescape")
        assert not cdr._ESCAPED_BYTE.search(gb) and cdr._gb_evidence(gb), body  # GBK by those two alone
        assert cdr._lines_not_utf8(body.decode("utf-8", "surrogateescape"), True) == 1
        (tmp_path / f"{i}.csv").write_bytes(body)
        assert cdr.encoding_of(tmp_path / f"{i}.csv") == "utf8", body
    proc, rejects = _rate(tmp_path, tmp_path / "2.csv")
    assert proc.returncode == 0 and [(r["row"], r["field"], r["reason"]) for r in rejects] == [
        ("2", "call_id", "not UTF-8 text")], (proc.stderr, rejects)


def test_a_header_not_utf8_shows_its_bytes_and_names_the_fix(tmp_path):
    """A GBK export whose only Chinese is its header (1 line in 41: read as
    UTF-8) is refused with the header's bytes in hex (it showed
    '\\\\xb1\\\\xb8ע': escapes doubled, a pair decoded by chance) and the
    option that reads it; named GBK, it rates."""
    head = HEADER.rstrip("\n") + ",备注\n"
    body = (head + _noted([_ascii_row(f"c-{i}") for i in range(40)], ["ok"] * 40)).encode("gbk")
    (tmp_path / "head.csv").write_bytes(body)
    proc, _ = _rate(tmp_path, tmp_path / "head.csv")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"error: {tmp_path / 'head.csv'}: line 1: header is not UTF-8 text "
                                   "(bytes b1 b8 d7 a2): if the file is GBK, rate it with --encoding gbk"), proc.stderr
    proc, rejects = _rate(tmp_path, tmp_path / "head.csv", "--encoding", "gbk")
    assert proc.returncode == 0 and rejects == [], (proc.stderr, rejects)


def test_gbk_call_ids_that_are_utf8_text_too_cannot_be_told_from_their_bytes(tmp_path):
    """A GBK export whose only Chinese is 忙 (bytes C3 A6: UTF-8 æ) holds no
    byte that is not UTF-8 text, as a UTF-8 file of café-1 ids does: the
    guess is UTF-8, by design (README "CSV encodings": the bytes are text
    both ways, and a wrong GBK guess would change every UTF-8 id). Named
    --encoding gbk, such an id is refused as reading both ways, never rated
    as another id; the ASCII rows rate either way (csvin reviewer)."""
    rows = [_row(c).replace("正常", "normal") for c in ("忙-1", "忙-2", "a-3")]
    (tmp_path / "gbk.csv").write_bytes((HEADER + "".join(rows)).encode("gbk"))
    (tmp_path / "utf8.csv").write_bytes((HEADER + "".join(rows)).replace("忙", "æ").encode("utf-8"))
    assert (tmp_path / "gbk.csv").read_bytes() == (tmp_path / "utf8.csv").read_bytes()
    assert cdr.encoding_of(tmp_path / "gbk.csv") == "utf8"
    proc, rejects = _rate(tmp_path, tmp_path / "gbk.csv", "--encoding", "gbk")
    assert proc.returncode == 0, proc.stderr
    assert [(r["row"], r["value"], r["reason"][:28]) for r in rejects] == [
        ("1", "æ-1", "reads as UTF-8 (shown) and a"), ("2", "æ-2", "reads as UTF-8 (shown) and a")], rejects
    assert pq.read_table(tmp_path / "out.parquet").column("call_id").to_pylist() == ["a-3"]


def test_an_euc_kr_file_is_refused_naming_both_readings_not_read_as_gbk(tmp_path):
    """Hostile-input round: a Korean export in EUC-KR (Hangul are byte pairs
    in GB2312's zone) was read as GBK, every call id another text. Refused
    before anything is rated, naming both readings and the fix; a Chinese
    file whose few hanzi also read as Hangul is still GBK (too few to be
    Korean), and one with more rates with --encoding gbk."""
    d = DEMO
    rest = f"{d['caller']},{d['number']},{d['forwarded_to']},{d['start']},{d['agent_answer']},{d['end']}"
    korean = HEADER + "".join(f"통화-{i},{rest},정상 종료 고객 응답 서울 부산 없음\n" for i in range(20))
    src = tmp_path / "ko.csv"
    src.write_bytes(korean.encode("euc_kr"))
    with pytest.raises(cdr.InvalidFile, match=r"reads as GBK \(Chinese\) and as EUC-KR \(Korean\) text"):
        cdr.encoding_of(src)
    proc, _ = _rate(tmp_path, src)
    assert proc.returncode == 2 and f"{src}: reads as GBK (Chinese) and as EUC-KR (Korean)" in proc.stderr
    assert "--encoding gbk" in proc.stderr and not (tmp_path / "out.parquet").exists()
    assert cdr.encoding_of(src, "gbk") == "gb18030"  # told, it is read as told
    chinese = HEADER + "".join(f"呼叫-{i},{rest},被叫挂机 北京 客户\n" for i in range(20))
    src.write_bytes(chinese.encode("gbk"))
    assert cdr.encoding_of(src) == "gb18030"
