"""gRPC ``RerateService.Rerate`` against a real server on loopback: the same
rerating as the CLI (dry run, adjustments, corrections, idempotent second
run), INVALID_ARGUMENT naming the field for bad requests. Admin-only is
shown in ``test_auth`` (every role against every service)."""
from __future__ import annotations

import grpc
import pytest

from rating400.v1 import explain_pb2, explain_pb2_grpc, rerate_pb2, rerate_pb2_grpc
from test_rerate import credit, root, stored_adjustments  # noqa: F401 - ``root`` is a fixture
from demo_server import Server

SC = grpc.StatusCode


@pytest.fixture
def stub(root, tmp_path):  # noqa: F811 - the imported fixture
    server = Server(root, tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = rerate_pb2_grpc.RerateServiceStub(channel)
            stub.explain = explain_pb2_grpc.ExplainServiceStub(channel)
            yield stub
    finally:
        server.stop()


def req(**kw):
    base = dict(catalog_version=2, from_day="2026-10-01", to_day="2026-10-31")
    return rerate_pb2.RerateRequest(**{**base, **kw})


def test_rerate_over_grpc_is_the_cli_rerating_and_idempotent(root, stub):  # noqa: F811
    before = {a: credit(root, a) for a in ("jinghua_appliances", "yuehai_logistics")}
    dry = stub.Rerate(req(dry_run=True), timeout=60)
    assert dry.dry_run and len(dry.adjustments) == 5 and stored_adjustments(root) == []
    assert {a: credit(root, a) for a in before} == before

    resp = stub.Rerate(req(reason="tariff fix 2026-10"), timeout=60)
    rows = {a.call_id: (a.old_charge_minor, a.new_charge_minor, a.delta_minor, a.ledger_delta_minor)
            for a in resp.adjustments}
    # Prepaid sequence replayed (see test_rerate): 3000 yuan covers the first
    # call at 1800 and 1200 of the second; pay-as-you-go 0.15 -> 0.20/min.
    assert rows == {
        "p1": (720_000, 18_000_000, 17_280_000, 17_280_000),
        "p2": (720_000, 18_000_000, 17_280_000, 12_000_000 - 720_000),
        "p3": (720_000, 18_000_000, 17_280_000, -720_000),
        "g1": (4500, 6000, 1500, 1500),
        "g2": (1500, 2000, 500, 500),
    }
    assert all(a.reason == "tariff fix 2026-10" and a.catalog_version == 2 for a in resp.adjustments)
    assert resp.delta_total_minor == sum(r[2] for r in rows.values())
    corrections = {c.account: c.credit_change_minor for c in resp.corrections}
    after = {a: credit(root, a) for a in before}
    # The adjustments sum to the ledger change, account by account.
    assert corrections == {a: after[a] - before[a] for a in before}
    assert after["jinghua_appliances"] == 0 and corrections["yuehai_logistics"] == -2000
    assert resp.credit_change_total_minor == sum(corrections.values())
    # Each account's charge change and its split (prepaid: credit and arrears).
    split = {c.account: (c.package_kind, c.charge_change_minor, c.billed_change_minor) for c in resp.corrections}
    assert split == {"jinghua_appliances": ("prepaid", 3 * 17_280_000, 3 * 17_280_000 - 27_840_000),
                     "yuehai_logistics": ("payg", 2000, 2000)}
    assert len(stored_adjustments(root)) == 5

    again = stub.Rerate(req(reason="tariff fix 2026-10"), timeout=60)
    assert (len(again.adjustments), again.skipped, again.seen, len(again.corrections)) == (0, 5, 5, 0)
    assert {a: credit(root, a) for a in before} == after and len(stored_adjustments(root)) == 5

    one = stub.Rerate(req(catalog_version=1, number="400-058-9196", from_day="2026-10-13", to_day="2026-10-13"),
                      timeout=60)
    assert [(a.call_id, a.new_charge_minor) for a in one.adjustments] == [("g2", 1500)]
    # Rerating under the active version left the server's own rating intact.
    x = stub.explain.ExplainCharge(explain_pb2.ExplainChargeRequest(call_id="g1"), timeout=60)
    assert x.charge == 4500 and x.consistent


BAD = [
    (dict(catalog_version=0), "catalog_version"),
    (dict(catalog_version=99), "catalog_version"),
    (dict(from_day="2026-13-01"), "from_day"),
    (dict(from_day=""), "from_day"),
    (dict(to_day="2026-09-30"), "to_day"),
    (dict(account="no_such_account"), "account"),
    (dict(number="12"), "number"),
    (dict(number="4000589196\u200b"), "number"),  # a zero-width space is refused, not stripped (as route)
    (dict(number="\u202e4000589196"), "number"),
    (dict(account="yuehai_logistics", number="4000589196"), "account"),
    (dict(reason="x" * 1001), "reason"),
]


def test_a_version_beyond_int32_is_refused_naming_the_bound(root, stub):  # noqa: F811
    """Breaker 12-02: catalog_version 2**40 (1099511627776, positive) was
    refused "a catalog version is a positive integer"; the bound is int32's,
    2147483647, and the answer names it (0 and 2**31 too)."""
    for version in (2**40, 2**31, 0):
        with pytest.raises(grpc.RpcError) as e:
            stub.Rerate(req(catalog_version=version), timeout=60)
        assert e.value.code() == SC.INVALID_ARGUMENT
        assert e.value.details() == (f"catalog_version: {version}: a catalog version is a positive integer, "
                                     "at most 2147483647 (2**31 - 1)"), e.value.details()
    assert stored_adjustments(root) == []


def test_bad_requests_name_the_field(root, stub):  # noqa: F811
    for bad, field in BAD:
        with pytest.raises(grpc.RpcError) as e:
            stub.Rerate(req(**bad), timeout=60)
        assert e.value.code() == SC.INVALID_ARGUMENT, (bad, e.value.details())
        assert e.value.details().startswith(field + ":"), (bad, e.value.details())
    assert stored_adjustments(root) == []
