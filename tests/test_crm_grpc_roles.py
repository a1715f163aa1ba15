"""Caller numbers over gRPC are masked by the caller's authenticated role: a
real server on loopback with TLS and bearer tokens, the demo catalog, calls
committed to the ledger first. ``billing`` and ``agent`` see 138****5678,
``supervisor`` the whole number; ListCallers, ExportCallers and UpdateCaller
agree, and a masked role cannot recover digits with a prefix search."""
from __future__ import annotations

import csv
import io

import grpc
import pytest

pytest.importorskip("cryptography")
from rating400.v1 import billing_pb2, billing_pb2_grpc  # noqa: E402
from rating400_client import credentials  # noqa: E402
from rating_core.demo import demo_cdrs  # noqa: E402
from rating_core.engine import Engine  # noqa: E402
from test_auth import _server, pki  # noqa: E402,F401  (pki: the test CA, server and client certificates)
from test_service_grpc import _make_store  # noqa: E402

ACCOUNT = "hangzhou_tea"
TOKENS = {"billing": "crm-billing-token-0123456789", "agent": "crm-agent-token-0123456789",
          "supervisor": "crm-supervisor-token-0123456789"}


@pytest.fixture(scope="module")
def crm_server(pki, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    root = tmp_path_factory.mktemp("crm-roles")
    store = _make_store(root)[0]
    engine = Engine.open(store, threads=1)
    try:
        engine.rate_and_commit(demo_cdrs(3000, 5))
        callers = engine.crm.callers(ACCOUNT)
    finally:
        engine.close()
    tokens = root / "tokens"
    tokens.write_text("".join(f"{r} {t}\n" for r, t in TOKENS.items()))
    s = _server(store, pki, root, "--tokens", str(tokens))
    yield s, callers, pki
    s.stop()


def _stub(server, certs, role):
    channel = grpc.secure_channel(f"localhost:{server.info['port']}",
                                  credentials(ca=certs["ca_file"], token=TOKENS[role]))
    return channel, billing_pb2_grpc.BillingServiceStub(channel)


def _masked(number: str) -> bool:
    return "****" in number


def test_masking_follows_the_authenticated_role(crm_server):
    server, callers, certs = crm_server
    assert callers, "the demo CDRs give the account callers"
    whole = sorted(c.caller for c in callers)
    for role, sees in (("billing", False), ("agent", False), ("supervisor", True)):
        channel, stub = _stub(server, certs, role)
        with channel:
            got = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT), timeout=30)
            numbers = sorted(c.caller for c in got.callers)
            if sees:
                assert numbers == whole, role
            else:
                assert len(numbers) == len(whole) and all(_masked(n) for n in numbers), role
                assert not set(numbers) & set(whole)
            exported = stub.ExportCallers(billing_pb2.ListCallersRequest(account=ACCOUNT), timeout=30)
            assert exported.csv.startswith("\ufeff".encode())  # UTF-8 with BOM: Excel on Chinese Windows
            rows = list(csv.DictReader(io.StringIO(exported.csv.decode("utf-8-sig"))))
            assert exported.callers == len(rows) == len(whole)
            assert sorted(r["caller"] for r in rows) == numbers, role
            one = callers[0]
            rec = stub.UpdateCaller(billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=one.caller,
                                                                    add_tags=[f"seen-by-{role}"]), timeout=30)
            assert (rec.caller == one.caller) is sees and _masked(rec.caller) is not sees


def test_a_masked_role_names_whole_numbers_only(crm_server):
    server, callers, certs = crm_server
    number = callers[0].caller
    channel, stub = _stub(server, certs, "agent")
    with channel:
        exact = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, caller=number), timeout=30)
        assert [c.calls for c in exact.callers] == [callers[0].calls] and _masked(exact.callers[0].caller)
        # The start of a number would reveal the masked digits one query at a
        # time: a masked role's ``caller`` matches whole numbers only.
        start = billing_pb2.ListCallersRequest(account=ACCOUNT, caller=number[:7])
        assert len(stub.ListCallers(start, timeout=30).callers) == 0
        assert stub.ExportCallers(start, timeout=30).callers == 0
        with pytest.raises(grpc.RpcError) as e:
            stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, caller="138-abc"), timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("caller")
    channel, stub = _stub(server, certs, "supervisor")
    with channel:
        started = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, caller=number[:7]), timeout=30)
        assert number in [c.caller for c in started.callers]
        assert all(c.caller.startswith(number[:7]) for c in started.callers)


def test_crm_roles_reach_nothing_else(crm_server):
    server, _, certs = crm_server
    channel, stub = _stub(server, certs, "supervisor")
    with channel:
        with pytest.raises(grpc.RpcError) as e:
            stub.GetReport(billing_pb2.ReportRequest(by="number", account=ACCOUNT), timeout=30)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
