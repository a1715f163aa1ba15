"""Fuzz harnesses (see ``fuzzing.py``): the CDR file edge, the catalog
loader, the Arrow batch decoder, and every gRPC request type against a
running server. Each runs ``RATING400_FUZZ_SECONDS`` (3 s in the plain test
run; ``.ci/run`` gives each 40 s) after replaying the inputs kept in
``tests/fuzz_corpus/``, and must end with no crash."""
from __future__ import annotations

import importlib
import pkgutil
import shutil
import struct
import tempfile
from pathlib import Path

import grpc
import pyarrow as pa
import pytest

import fuzzing
from rating_core import cdr
from rating_core.catalog import load_catalog
from rating_core.compile.regions import city_aliases
from rating_core.errors import CatalogError, InvalidInput

DEMO = Path(__file__).resolve().parents[1] / "rating_core" / "demo"
DAYS = (0, 100_000)
CSV_SEED = (
    "call_id,caller,number,forwarded_to,start,ivr_answer,agent_answer,end,hangup_cause\n"
    "c1,13812345678,4000589196,02088886666,2026-10-10T09:00:00+08:00,,2026-10-10T09:00:09+08:00,"
    "2026-10-10T09:03:14+08:00,正常挂机\n"
    "c2,+86 138 1234 5678,400-858-9196,(020) 8888-6666,2026/10/10 9:00,2026/10/10 9:00:02,,46305.38,\n"
    "c3,,4008593431,13800138000,1791615600000,1791615602000,1791615609000,1791615790000,busy\n"
)


def _assert_clean(report: fuzzing.Report) -> None:
    print(report.line())
    assert not report.crashes, report.line()


def test_fuzz_cdr_file_edge(tmp_path):
    path = tmp_path / "cdrs.csv"

    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            for batch in cdr.read_batches(path):
                cdr.dedupe(cdr.prepare(batch, DAYS))
        except InvalidInput:
            pass

    seeds = [CSV_SEED.encode("utf-8"), CSV_SEED.encode("gbk"), CSV_SEED.encode("utf-16"),
             CSV_SEED.encode("utf-8-sig")]
    _assert_clean(fuzzing.run("cdr_file", seeds, check))


def test_fuzz_catalog_loader(tmp_path):
    for f in DEMO.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / "catalog.yaml"
    regions = city_aliases()
    numbers = (DEMO / "numbers.csv").read_bytes()

    def check(data: bytes) -> None:
        # The first byte picks the file to hold the input: the YAML document or the numbers CSV.
        if data[:1] == b"N":
            (tmp_path / "numbers.csv").write_bytes(data[1:])
            path.write_bytes((DEMO / "catalog.yaml").read_bytes())
        else:
            (tmp_path / "numbers.csv").write_bytes(numbers)
            path.write_bytes(data)
        try:
            load_catalog(path, regions=regions)
        except CatalogError:
            pass

    seeds = [(DEMO / "catalog.yaml").read_bytes(), b"N" + numbers]
    _assert_clean(fuzzing.run("catalog", seeds, check))


def arrow_seeds() -> list[bytes]:
    from rating400_client import columns

    rows = [{"call_id": f"c{i}", "caller": "13812345678", "number": "4000589196", "forwarded_to": "02088886666",
             "start": 1_791_615_600_000 + i, "agent_answer": 1_791_615_609_000 + i, "end": 1_791_615_790_000 + i,
             "hangup_cause": "正常挂机"} for i in range(3)]
    plain = columns.rows_to_table(rows)
    dictionary = plain.set_column(2, "number", plain.column("number").dictionary_encode())
    large = plain.set_column(0, "call_id", plain.column("call_id").cast(pa.large_string()))
    return [columns.table_to_arrow_ipc(t) for t in (plain, dictionary, large)]


def test_fuzz_arrow_batch_decoder():
    def check(data: bytes) -> None:
        try:
            table = cdr.decode_arrow_ipc(data)
        except InvalidInput:
            return
        try:
            cdr.prepare(table, DAYS)
        except InvalidInput:
            pass

    _assert_clean(fuzzing.run("arrow", arrow_seeds(), check))


def test_regression_non_utf8_column_name():
    """Found by the Arrow harness: a column name that is not UTF-8 made
    reading the schema raise UnicodeDecodeError (INTERNAL over gRPC)."""
    data = arrow_seeds()[0]
    i = data.index(b"call_id")
    bad = data[:i] + b"cal\xe5_id" + data[i + 7:]
    with pytest.raises(InvalidInput, match="^cdrs_arrow_ipc: not an Arrow IPC stream"):
        cdr.decode_arrow_ipc(bad)


# --- gRPC: every request type of every service, against a running server ----------
def _methods():
    import rating400.v1 as contract

    out = []
    for m in sorted(pkgutil.iter_modules(contract.__path__), key=lambda m: m.name):
        if not m.name.endswith("_pb2"):
            continue
        mod = importlib.import_module(f"rating400.v1.{m.name}")
        for svc in mod.DESCRIPTOR.services_by_name.values():
            for meth in svc.methods:
                out.append((f"/{svc.full_name}/{meth.name}", meth.client_streaming or meth.server_streaming))
    return out


def _valid_requests() -> dict[str, list[bytes]]:
    from rating400.v1 import catalog_pb2, rating_pb2, rerate_pb2
    from rating400_client import _common

    cdr_msg = _common.cdr_message({"call_id": "f1", "caller": "13812345678", "number": "4000589196",
                                   "forwarded_to": "02088886666", "start": 1_791_615_600_000,
                                   "agent_answer": 1_791_615_609_000, "end": 1_791_615_790_000})
    batch = rating_pb2.RateCdrBatchesRequest(batch_id=1, dry_run=True, cdrs_arrow_ipc=arrow_seeds()[0])
    return {
        "/rating400.v1.RoutingService/Authorize": [
            _common.authorize_request("4008593431", "13812345678", "1").SerializeToString()],
        "/rating400.v1.RoutingService/CallEvent": [
            _common.call_event_request("f1", "4000589196", "started", caller="13812345678").SerializeToString()],
        "/rating400.v1.RatingService/RateCdr": [rating_pb2.RateCdrRequest(cdr=cdr_msg).SerializeToString()],
        "/rating400.v1.RatingService/RateCdrBatches": [batch.SerializeToString()],
        "/rating400.v1.CatalogAdminService/Activate": [catalog_pb2.ActivateRequest(version=1).SerializeToString()],
        "/rating400.v1.CatalogAdminService/Compile": [catalog_pb2.CompileRequest(
            files=[catalog_pb2.CatalogFile(name="catalog.yaml", content=b"name: x\n")]).SerializeToString()],
        "/rating400.v1.RerateService/Rerate": [rerate_pb2.RerateRequest(
            catalog_version=1, from_day="2026-10-01", to_day="2026-10-31", dry_run=True).SerializeToString()],
    }


# What a client may be told for a bad request; INTERNAL, UNKNOWN and a dead
# server (UNAVAILABLE) are crashes.
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS,
           grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ABORTED,
           grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    from demo_server import Server, make_store

    store, _ = make_store(tmp_path_factory.mktemp("fuzz"))
    s = Server(store, tmp_path_factory.mktemp("fuzz-srv"), workers=1).start()
    yield s
    s.stop()


def test_fuzz_every_grpc_request_type(fuzz_server):
    from rating400_client import Client

    methods = _methods()
    valid = _valid_requests()
    seeds = []
    for k, (name, _) in enumerate(methods):
        for body in valid.get(name, [b""]):
            seeds.append(struct.pack("B", k) + body)
    with Client(fuzz_server.target, timeout=10) as client:
        calls = {}
        for name, streaming in methods:
            if streaming:
                calls[name] = client.channel.stream_stream(name, request_serializer=None, response_deserializer=None)
            else:
                calls[name] = client.channel.unary_unary(name, request_serializer=None, response_deserializer=None)

        def check(data: bytes) -> None:
            if not data:
                return
            name, streaming = methods[data[0] % len(methods)]
            if name.endswith("/Compile"):  # each valid one is a compile (seconds): fuzz its decoding only
                data = data[:1] + data[1:].replace(b"catalog.yaml", b"catalog/yaml")
            body = data[1:]
            try:
                if streaming:
                    list(calls[name](iter([body]), timeout=10))
                else:
                    calls[name](body, timeout=10)
                code = grpc.StatusCode.OK
            except grpc.RpcError as e:
                code = e.code()
            assert code in ALLOWED, (name, code)

        report = fuzzing.run("grpc", seeds, check)
        assert client.health() == "SERVING"
    _assert_clean(report)


def test_fuzzing_mutates_and_keeps_crashes(monkeypatch):
    """The fuzzer itself: inputs change, and a crashing input is kept."""
    kept = Path(tempfile.mkdtemp())
    monkeypatch.setattr(fuzzing, "CORPUS", kept)

    def check(data: bytes) -> None:
        if b"\x00" in data:
            raise RuntimeError("boom")

    report = fuzzing.run("selftest", [b"abcdef" * 10], check, seconds=0.5, seed=1)
    assert report.tried > 100 and report.crashes
    assert all(b"\x00" in p.read_bytes() for p in report.crashes)
    shutil.rmtree(kept)
