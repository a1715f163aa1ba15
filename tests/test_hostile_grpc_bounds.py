"""Breaker findings over gRPC, on a real server (``rating400 serve``, the demo
catalog): int64-sized amounts, absurd effective times and out-of-range
Timestamp nanos are INVALID_ARGUMENT naming the field (were INTERNAL or
accepted); a request id reused with other content is refused; ENDED for a
call the engine holds nothing for answers accepted=false."""
from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from rating400.v1 import accounts_pb2 as pb
from rating400.v1 import accounts_pb2_grpc, rating_pb2, routing_pb2
from rating400_client import Client
import test_accounts_server
from test_accounts_server import CALLER, NUMBER

server = test_accounts_server.server  # the fixture: rating400 serve --workers 2 on the demo catalog

SC = grpc.StatusCode
AT = 1_791_615_600  # 2026-10-10, seconds


def _fails(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def test_account_operations_refuse_huge_amounts_absurd_times_and_reused_ids(server):
    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as ch:
        acc = accounts_pb2_grpc.AccountServiceStub(ch)
        meta = lambda rid, **k: pb.OperationMeta(request_id=rid, actor="test", **k)  # noqa: E731
        for i, amount in enumerate((2**63 - 1, 10**15 + 1)):
            code, details = _fails(lambda: acc.TopUp(pb.AmountRequest(meta=meta(f"h{i}"), account="x",
                                                                      amount_minor=amount), timeout=10))
            assert code == SC.INVALID_ARGUMENT and details.startswith("amount_minor:") and "too large" in details
        code, details = _fails(lambda: acc.Adjust(pb.AdjustRequest(meta=meta("h3"), account="x",
                                                                   amount_minor=-(2**63), reason="x"), timeout=10))
        assert code == SC.INVALID_ARGUMENT and details.startswith("amount_minor:")
        code, details = _fails(lambda: acc.Adjust(pb.AdjustRequest(meta=meta("h4", at_ms=-(2**63)), account="x",
                                                                   amount_minor=1, reason="x"), timeout=10))
        assert code == SC.INVALID_ARGUMENT and details.startswith("at:")
        first = acc.OpenAccount(pb.OpenAccountRequest(meta=meta("reuse"), account="delta", company="D"), timeout=10)
        code, details = _fails(lambda: acc.OpenAccount(
            pb.OpenAccountRequest(meta=meta("reuse"), account="epsilon", company="E"), timeout=10))
        assert code == SC.INVALID_ARGUMENT and details.startswith("request_id: request id reused with different")
        again = acc.OpenAccount(pb.OpenAccountRequest(meta=meta("reuse"), account="delta", company="D"), timeout=10)
        assert again.replayed and again.seq == first.seq
        # breaker8 F2: a padded id was another request; refused, never trimmed (nothing stored).
        for padded in (" reuse", "reuse "):
            code, details = _fails(lambda: acc.OpenAccount(
                pb.OpenAccountRequest(meta=meta(padded), account="zeta", company="Z"), timeout=10))
            assert code == SC.INVALID_ARGUMENT and details.startswith("request_id: ") \
                and "begins or ends with a space" in details, details
        assert _fails(lambda: acc.GetAccount(pb.GetAccountRequest(account="zeta"), timeout=10))[0] == SC.NOT_FOUND
        # A credit threshold is whole fen, as a top-up: 40 minor units (0.004 yuan) was stored and read 0.00.
        code, details = _fails(lambda: acc.SetNotifications(pb.SetNotificationsRequest(
            meta=meta("h5"), account="delta", credit_below_minor=40), timeout=10))
        assert code == SC.INVALID_ARGUMENT and details.startswith("credit_below_minor: 40: a credit threshold is "
                                                                  "whole fen"), details


def test_timestamp_nanos_out_of_range_and_ended_without_a_call(server):
    with Client(f"127.0.0.1:{server['port']}", timeout=10) as c:
        c.wait_ready()
        for nanos in (-1, 1_000_000_000):
            areq = routing_pb2.AuthorizeRequest(number=NUMBER, caller=CALLER, at=Timestamp(seconds=AT, nanos=nanos))
            code, details = _fails(lambda: c.routing.Authorize(areq, timeout=10))
            assert code == SC.INVALID_ARGUMENT and details.startswith("at.nanos:"), details
            cdr = rating_pb2.Cdr(call_id="n1", number=NUMBER, caller=CALLER, forwarded_to="13700000001",
                                 start_time=Timestamp(seconds=AT, nanos=nanos), end_time=Timestamp(seconds=AT + 60))
            code, details = _fails(lambda: c.rating.RateCdr(rating_pb2.RateCdrRequest(cdr=cdr), timeout=10))
            assert code == SC.INVALID_ARGUMENT and details.startswith("cdr.start_time.nanos:"), details
        # ENDED for a call never started nor authorised: nothing held, nothing released.
        assert not c.call_event("never-started", NUMBER, "ended", at=AT * 1000).accepted
        # ENDED after STARTED releases its line slot: accepted.
        assert c.call_event("s1", NUMBER, "started", destination="13700000001", caller=CALLER,
                            at=AT * 1000).accepted
        assert c.call_event("s1", NUMBER, "ended", destination="13700000001", at=AT * 1000 + 60_000).accepted
        assert not c.call_event("s1", NUMBER, "ended", at=AT * 1000 + 61_000).accepted  # already ended


def test_an_actor_is_bounded_in_sweep_and_in_every_operation(server):
    """Hostile-input round: an ``actor`` of a megabyte was accepted by Sweep
    and by operations and written into each audit event. At most
    ``MAX_ACTOR_CHARS`` characters, none a control character:
    INVALID_ARGUMENT naming ``actor``; 64 characters (Chinese ones too) pass."""
    from rating_core.accounts.operations import MAX_ACTOR_CHARS, _actor

    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as ch:
        acc = accounts_pb2_grpc.AccountServiceStub(ch)
        for actor in ("a" * (MAX_ACTOR_CHARS + 1), "x" * 1_000_000, "ops\x1b[2J"):
            code, details = _fails(lambda: acc.Sweep(pb.SweepRequest(at_ms=AT * 1000, actor=actor), timeout=10))
            assert code == SC.INVALID_ARGUMENT and details.startswith("actor:"), (code, details)
            code, details = _fails(lambda: acc.TopUp(pb.AmountRequest(
                meta=pb.OperationMeta(request_id="actor-long", actor=actor), account="x", amount_minor=100),
                timeout=10))
            assert code == SC.INVALID_ARGUMENT and details.startswith("actor:"), (code, details)
    assert _actor("运维" * (MAX_ACTOR_CHARS // 2)) == "运维" * (MAX_ACTOR_CHARS // 2)  # no sweep run on the shared server


def test_list_events_checks_its_time_range_and_limit(server):
    """Breaker N13 F13: ListEvents answered [] for from_ms not before to_ms
    (the CLI refuses it), every event for from_ms=-1 and to_ms=-5, none for
    from_ms=2^62 and for limit=-1. Now INVALID_ARGUMENT naming from_ms,
    to_ms or limit, times in the range every at_ms is held to; 0 keeps its
    meaning (from_ms: from the start, to_ms: no end, limit: 1000)."""
    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as ch:
        acc = accounts_pb2_grpc.AccountServiceStub(ch)
        acc.OpenAccount(pb.OpenAccountRequest(meta=pb.OperationMeta(request_id="le-1", actor="test"),
                                              account="listed", company="Listed Co."), timeout=10)
        t = 1_796_200_000_000
        for req, field, words in (
                (dict(from_ms=t, to_ms=t - 100_000_000), "from_ms", "is not before to_ms"),
                (dict(from_ms=t, to_ms=t), "from_ms", "is not before to_ms"),
                # breaker N14 F8: to the second, 5 and 4 ms read alike; the values as sent come first.
                (dict(from_ms=t + 5, to_ms=t + 4), "from_ms", f"{t + 5} (2026-12-02T16:26:40+08:00) is not before "
                                                             f"to_ms {t + 4}"),
                (dict(from_ms=-1), "from_ms", "time outside 1970-01-01 .. 2199-12-31"),
                (dict(to_ms=-5), "to_ms", "time outside 1970-01-01 .. 2199-12-31"),
                (dict(from_ms=2**62), "from_ms", "time outside 1970-01-01 .. 2199-12-31"),
                (dict(limit=-1), "limit", "1 or more")):
            code, details = _fails(lambda: acc.ListEvents(pb.ListEventsRequest(account="listed", **req), timeout=10))
            assert code == SC.INVALID_ARGUMENT and details.startswith(f"{field}: ") and words in details, \
                (req, code, details)
        code, details = _fails(lambda: acc.ListEvents(pb.ListEventsRequest(account=""), timeout=10))
        assert (code, details) == (SC.INVALID_ARGUMENT, "account: required")
        every = acc.ListEvents(pb.ListEventsRequest(account="listed"), timeout=10).events  # 0s: unset
        assert [e.operation for e in every] == ["open_account"]
        assert acc.ListEvents(pb.ListEventsRequest(account="listed", from_ms=every[0].at_ms,
                                                   to_ms=every[0].at_ms + 1, limit=1), timeout=10).events == every


def test_watch_events_checks_its_request_before_it_streams(server):
    """Breaker8 F6: WatchEvents with an unknown account, a control
    character, a 5,000-character id or a seq no event has opened a stream
    that never answered (ListEvents and GetAccount answer NOT_FOUND /
    INVALID_ARGUMENT). Now the stream ends at once with NOT_FOUND naming
    account, or INVALID_ARGUMENT naming after_seq (negative, or above the
    last event's seq); after_seq = a seq an event has waits for the next
    event, which then arrives (a suspend of the watched account)."""
    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as ch:
        acc = accounts_pb2_grpc.AccountServiceStub(ch)
        acc.OpenAccount(pb.OpenAccountRequest(meta=pb.OperationMeta(request_id="we-1", actor="test"),
                                              account="watched", company="Watched Co."), timeout=10)
        for account in ("nosuch", "\x00", "x" * 5000):
            code, details = _fails(lambda: next(acc.WatchEvents(pb.WatchEventsRequest(account=account), timeout=5)))
            assert code == SC.NOT_FOUND and details.startswith("account: no account"), (account[:8], code, details)
        last = acc.ListEvents(pb.ListEventsRequest(account="watched"), timeout=10).events[-1].seq
        for account in ("watched", ""):
            for after in (-1, 2**63 - 1):
                code, details = _fails(lambda: next(acc.WatchEvents(
                    pb.WatchEventsRequest(account=account, after_seq=after), timeout=5)))
                assert code == SC.INVALID_ARGUMENT and details.startswith("after_seq:"), (account, after, details)
        # A seq an event has is a watch from there: the account's last one waits, and the next arrives.
        stream = acc.WatchEvents(pb.WatchEventsRequest(account="watched", after_seq=last), timeout=20)
        acc.AccountTransition(pb.TransitionRequest(meta=pb.OperationMeta(request_id="we-2", actor="test"),
                                                   account="watched", action="suspend",
                                                   reason="watch test"), timeout=10)
        got = next(stream)
        assert got.account == "watched" and got.seq > last
        stream.cancel()
