"""GetStatement over real gRPC after a rerating of many calls (newcomer N9,
B1): the answer carries the totals, the lines and the rerating summarised,
and lists the rerated calls a page at a time, so it stays under a client's
default 4 MB receive limit (one rerating of 25,552 calls was 3.77 MB of
JSON; a second made the answer 6.8 MB: RESOURCE_EXHAUSTED).

Account ``shop``, pay as you go: 32,000 one-minute calls in November 2026
at 0.12 yuan (3840.00), rerated under version 2 at 0.15 (+0.03 a call:
+960.00, due 4800.00)."""
from __future__ import annotations

import datetime as dt
import json

import grpc
import pyarrow as pa
import pytest

from rating400.v1 import billing_pb2, billing_pb2_grpc
from rating_core.engine import Engine
from rating_core.rerate import rerate
from rating_core.store import Store
from demo_server import Server

CATALOG = """
name: statement-pages-test
destination_classes: [mobile]
destination_prefixes: {"1": mobile}
rates:
  std: {tiers: [{price: PRICE}]}
packages:
  payg: {kind: payg, rates: [{rate: std}]}
accounts:
  shop:
    name: Corner Shop
    package: payg
    package_start: 2026-01-01
    numbers: [{number: "4001110002", home_city: Hangzhou}]
"""
SH = dt.timezone(dt.timedelta(hours=8))
YUAN = 10_000
CALLS = 32_000
DEFAULT_LIMIT = 4 * 1024 * 1024  # grpc's default max receive message length


def at(day, hour=0):
    return int(dt.datetime(2026, 11, day, hour, tzinfo=SH).timestamp() * 1000)


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    root = tmp_path_factory.mktemp("statement-pages")
    for v, price in ((1, "0.12"), (2, "0.15")):
        (root / f"v{v}.yaml").write_text(CATALOG.replace("PRICE", price))
    store = Store(root / "store")
    store.compile(root / "v1.yaml", activate=True)
    assert store.compile(root / "v2.yaml") == 2
    del store
    start = [at(2) + i * 70_000 for i in range(CALLS)]  # to 2026-11-27
    cdrs = pa.table({"call_id": [f"c{i:05d}" for i in range(CALLS)], "caller": ["13812345678"] * CALLS,
                     "number": ["4001110002"] * CALLS, "forwarded_to": ["13700000001"] * CALLS, "start": start,
                     "agent_answer": [s + 1_000 for s in start], "end": [s + 61_000 for s in start]})
    engine = Engine.open(root / "store", threads=1)
    try:
        engine.rate_and_commit(cdrs)
    finally:
        engine.close()
    assert len(rerate(root / "store", 2, "2026-11-01", "2026-11-30", account="shop", now_ms=at(28)).adjustments) == CALLS
    server = Server(root / "store", root, workers=1).start()
    try:
        channel = grpc.insecure_channel(server.target)  # the default 4 MB receive limit
        yield billing_pb2_grpc.BillingServiceStub(channel)
        channel.close()
    finally:
        server.stop()


def test_a_statement_of_many_rerated_calls_comes_with_its_calls_in_pages(stub):
    first = stub.GetStatement(billing_pb2.StatementRequest(account="shop", month="2026-11"), timeout=120)
    assert first.ByteSize() < DEFAULT_LIMIT // 2
    assert first.rerating_calls == CALLS and first.amount_due_minor == CALLS * 1500
    doc = json.loads(first.json)
    assert doc["rerating_calls"] == CALLS and doc["rerating_total_minor"] == CALLS * 300  # +960.00
    assert doc["rerating_runs"] == [{"at_ms": at(28), "version": 2, "calls": CALLS, "amount_minor": CALLS * 300,
                                     "credit_minor": 0, "reason": ""}]
    assert doc["rerating_listed"] == {"first": 0, "count": 5000} and len(doc["rerating"]) == 5000
    # Listed whole, the calls alone would be over the limit (what the client got before).
    assert len(json.dumps(doc["rerating"], ensure_ascii=False).encode()) * CALLS // 5000 > DEFAULT_LIMIT
    # Every page: the same totals; the calls follow on, each once.
    ids, token, pages = [e["note"].split(":")[0] for e in doc["rerating"]], first.next_rerating_page_token, 1
    while token:
        page = stub.GetStatement(billing_pb2.StatementRequest(account="shop", month="2026-11",
                                                              rerating_page_token=token), timeout=120)
        d = json.loads(page.json)
        assert d["rerating_listed"]["first"] == len(ids) and d["amount_due_minor"] == first.amount_due_minor
        ids += [e["note"].split(":")[0] for e in d["rerating"]]
        token, pages = page.next_rerating_page_token, pages + 1
    assert pages == 7 and len(ids) == len(set(ids)) == CALLS
    small = stub.GetStatement(billing_pb2.StatementRequest(account="shop", month="2026-11", rerating_page_size=10),
                              timeout=120)
    assert json.loads(small.json)["rerating_listed"] == {"first": 0, "count": 10}


@pytest.mark.parametrize("fields, field", [
    ({"rerating_page_size": -1}, "rerating_page_size"),
    ({"rerating_page_token": "bm90LWEtdG9rZW4="}, "rerating_page_token"),
])
def test_bad_pages_name_the_field(stub, fields, field):
    with pytest.raises(grpc.RpcError) as e:
        stub.GetStatement(billing_pb2.StatementRequest(account="shop", month="2026-11", **fields), timeout=120)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith(field)


def test_a_token_of_another_month_is_refused(stub):
    token = stub.GetStatement(billing_pb2.StatementRequest(account="shop", month="2026-11"),
                              timeout=120).next_rerating_page_token
    with pytest.raises(grpc.RpcError) as e:
        stub.GetStatement(billing_pb2.StatementRequest(account="shop", month="2026-10", rerating_page_token=token),
                          timeout=120)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "rerating_page_token" in e.value.details()
