"""Monthly caps on a real server: ``rating400 serve --workers 2`` on
loopback, caps set with AccountService.SetCaps, Authorize denied with the
cap's DenyReason on every connection (both worker processes), the spend
grant cut to the room under the cap, and the switch's SIP answer for it."""
from __future__ import annotations

import time

import grpc
import pytest

from rating400.v1 import accounts_pb2 as pb
from rating400.v1 import accounts_pb2_grpc, routing_pb2
from rating400_client import Client
from rating400_switch.answers import answer_for_decision
from demo_server import Server, make_store

NUMBER = "4007654300"
CALLER = "13812345678"
DEST = "13700000001"
CONNECTIONS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("capsrv")
    store, _ = make_store(root)
    s = Server(store, root, env={"RATING400_SWEEP_SECONDS": "3600"}).start()
    yield s.info
    s.stop()


def _meta(rid):
    return pb.OperationMeta(request_id=rid, actor="test")


def _until(clients, predicate, within=3.0):
    """Every connection's query Authorize (no call id: holds nothing) until
    all satisfy ``predicate``; returns their decisions."""
    t0 = time.monotonic()
    while True:
        try:
            seen = [c.authorize(NUMBER, CALLER) for c in clients]
        except grpc.RpcError:  # a worker whose view is older than the opening: unknown number
            seen = []
        if (seen and all(predicate(d) for d in seen)) or time.monotonic() - t0 > within:
            return seen
        time.sleep(0.02)


def test_caps_deny_on_every_worker_with_their_reason(server):
    target = f"127.0.0.1:{server['port']}"
    admin = grpc.insecure_channel(target)
    acc = accounts_pb2_grpc.AccountServiceStub(admin)
    now = int(time.time() * 1000)
    acc.OpenAccount(pb.OpenAccountRequest(meta=_meta("o1"), account="capped", company="Capped Co., Ltd."))
    acc.SubmitDocuments(pb.SubmitDocumentsRequest(meta=_meta("o2"), account="capped", documents=[
        pb.DocumentRef(kind="business_licence", reference="BL-1"),
        pb.DocumentRef(kind="legal_representative_id", reference="ID-1")]))
    acc.ReviewRealName(pb.ReviewRealNameRequest(meta=_meta("o3"), account="capped", approve=True))
    acc.Subscribe(pb.SubscribeRequest(meta=_meta("o4"), account="capped", package="prepaid_480_1y",
                                      start_ms=now - 86_400_000))
    acc.AddNumbers(pb.AddNumbersRequest(meta=_meta("o5"), numbers=[NUMBER]))
    acc.LockNumber(pb.LockNumberRequest(meta=_meta("o6"), number=NUMBER, account="capped"))
    acc.SubmitNumber(pb.NumberRequest(meta=_meta("o7"), number=NUMBER))
    acc.ActivateNumber(pb.ActivateNumberRequest(meta=_meta("o8"), number=NUMBER, home_city="Shenzhen"))
    acc.BindDestination(pb.DestinationRequest(meta=_meta("o9"), number=NUMBER, destination=DEST))
    acc.VerifyDestination(pb.DestinationRequest(meta=_meta("o10"), number=NUMBER, destination=DEST, proof="BILL-1"))
    # First a spend cap no call fits (every query then says so), then the
    # cap under test: a worker that allows again has seen the second change
    # (operations reach workers in order), so the test never races a worker
    # still on the view from before the cap.
    acc.SetCaps(pb.SetCapsRequest(meta=_meta("c0"), number=NUMBER, spend_minor=1))

    clients = [Client(target, timeout=5, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(CONNECTIONS)]
    try:
        for c in clients:
            c.wait_ready()
        seen = _until(clients, lambda d: d.deny_reason == routing_pb2.DENY_REASON_MONTHLY_SPEND_CAP, within=10)
        assert len(seen) == CONNECTIONS and all(not d.allow for d in seen)
        r = acc.SetCaps(pb.SetCapsRequest(meta=_meta("c1"), number=NUMBER, calls=1))
        assert r.number.cap_calls == 1
        seen = _until(clients, lambda d: d.allow, within=10)
        assert len(seen) == CONNECTIONS and all(d.allow for d in seen)
        # One call in progress takes the month's only call.
        first = clients[0].authorize(NUMBER, CALLER, call_id="call-1")
        assert first.allow
        for c in clients:
            d = c.authorize(NUMBER, CALLER, call_id=f"call-2-{id(c)}")
            assert (d.allow, d.reason, d.deny_reason) == (
                False, "monthly_calls_cap", routing_pb2.DENY_REASON_MONTHLY_CALLS_CAP)
            sip = answer_for_decision(d)
            assert (sip.code, sip.reason) == (403, "monthly_calls_cap")
        # Its CDR committed (answered, 60 s): still the month's one call.
        answered = first_ms = int(time.time() * 1000) - 70_000
        res = clients[1].rate_cdr({"call_id": "call-1", "caller": CALLER, "number": NUMBER, "forwarded_to": DEST,
                                   "start": first_ms, "agent_answer": answered, "ivr_answer": answered,
                                   "end": answered + 60_000, "hangup_cause": "normal"})
        assert (res.rated_cdr.charge_minor, res.replayed) == (1200, False)
        assert not clients[2].authorize(NUMBER, CALLER, call_id="call-3").allow

        # Spend cap instead: 0.12 yuan spent of 0.40 -> 0.28 of room = 2 started minutes.
        acc.SetCaps(pb.SetCapsRequest(meta=_meta("c2"), number=NUMBER, spend_minor=4000, calls=0))
        seen = _until(clients, lambda d: d.allow and d.max_duration_seconds == 120, within=10)
        assert [d.max_duration_seconds for d in seen] == [120] * CONNECTIONS
        assert {d.detail for d in seen} == {"the number's monthly spend cap (0.28 yuan left) allows 120 s"}
        g = clients[3].authorize(NUMBER, CALLER, call_id="call-4")
        assert g.allow and g.max_duration_seconds == 120 and g.reserved_minor == 2400
        # GetNumber shows what the caps count now: call-1 committed, call-4 held.
        use = acc.GetNumber(pb.NumberRequest(number=NUMBER)).month_use
        assert (use.calls, use.spend_minor, use.open_reservations, use.reserved_minor) == (1, 1200, 1, 2400)
        assert (use.counted_calls, use.counted_spend_minor) == (2, 3600) and len(use.month) == 7
        with pytest.raises(grpc.RpcError) as e:  # an invisible character is refused, not stripped (as route)
            acc.GetNumber(pb.NumberRequest(number=NUMBER + "\u00ad"))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("number:")
        d = clients[4].authorize(NUMBER, CALLER, call_id="call-5")  # 0.04 yuan of room: not a minute
        assert (d.allow, d.deny_reason) == (False, routing_pb2.DENY_REASON_MONTHLY_SPEND_CAP)
        assert answer_for_decision(d).code == 403
    finally:
        for c in clients:
            c.close()
        admin.close()
