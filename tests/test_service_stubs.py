"""The checked-in gRPC stubs are exactly what the .proto files generate."""
import os

import pytest

pytest.importorskip("grpc_tools")

from rating400_server import _protogen  # noqa: E402

PROTO_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "proto")


def test_stubs_are_current():
    stale = _protogen.stale_files(PROTO_ROOT)
    assert not stale, (
        f"stale generated stubs {stale}: run `python -m rating400_server._protogen` "
        "and commit the result"
    )


def test_stub_imports_use_package_path():
    # Generated with -Iproto: cross-file imports must read `from rating400.v1 import`.
    src = open(os.path.join(PROTO_ROOT, "rating400", "v1", "routing_pb2.py")).read()
    assert "from rating400.v1 import common_pb2" in src


def test_contract_services():
    from rating400.v1 import catalog_pb2, rating_pb2, routing_pb2

    assert set(routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].methods_by_name) == {
        "Authorize", "CallEvent"}
    rating = rating_pb2.DESCRIPTOR.services_by_name["RatingService"].methods_by_name
    assert set(rating) == {"RateCdr", "RateCdrBatches"}
    assert rating["RateCdrBatches"].client_streaming and rating["RateCdrBatches"].server_streaming
    assert set(catalog_pb2.DESCRIPTOR.services_by_name["CatalogAdminService"].methods_by_name) == {
        "Compile", "Activate", "ListVersions"}
    # Batches carry packed scalar columns, not one message per CDR.
    cols = rating_pb2.CdrColumns.DESCRIPTOR
    assert cols.fields_by_name["start_ms"].is_packed
    assert cols.fields_by_name["call_id"].is_repeated
