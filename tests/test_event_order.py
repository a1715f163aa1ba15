"""Call events late, replayed or out of order (README "Routing and
authorization", "Credit reservation"): an ended call stays ended -- a later
``started`` / ``answered`` / ``interim`` of it answers accepted=false and
changes nothing (no line slot, no hold, no caller memory; except the
``answered`` an ``ended`` overtook, accepted to correct the settlement) -- and an
``ended`` whose end time cannot be measured against the call's
authorization is refused (INVALID_ARGUMENT naming ``at``) with the hold
kept whole; in process on a real ledger and through a real server on
loopback."""
from __future__ import annotations

import time

import pytest

from clock import clock_at
from rating_core.errors import InvalidInput
from rating_core.ledger import reservations
from rating_core.router import CDR_GRACE_S, CLOCK_SKEW_S
from rating_core.store import Store
from test_reservation import (  # noqa: F401  (store_dir, world: fixtures)
    AT, CALLER, CATALOG, LANDLINE, MOBILE, NUMBERS, balance, cdr, commit, store_dir, world,
)

TINY = NUMBERS["tiny"]


def slots(router) -> tuple[int, int]:
    return router.active_calls(LANDLINE), router.active_calls(MOBILE)


def test_started_after_ended_takes_no_line_slot_again(world):  # noqa: F811
    engine, router = world
    router.authorize(TINY, CALLER, AT, call_id="c1")
    assert router.call_event("c1", TINY, "started", destination=LANDLINE, at_ms=AT)
    assert router.call_event("c1", TINY, "answered", destination=MOBILE, caller=CALLER, at_ms=AT + 2000)
    assert slots(router) == (0, 1)
    assert router.call_event("c1", TINY, "ended", at_ms=AT + 61_000)
    held = balance(engine, "tiny")
    assert slots(router) == (0, 0) and held.reserved_minor == 2600
    # The switch replays its events (a retry after a timeout, a spool drained late).
    assert not router.call_event("c1", TINY, "started", destination=LANDLINE, at_ms=AT)
    assert not router.call_event("c1", TINY, "answered", destination=MOBILE, caller=CALLER, at_ms=AT + 2000)
    assert router.interim("c1", AT + 30_000) is None
    assert not router.call_event("c1", TINY, "ended", at_ms=AT + 61_000)
    assert slots(router) == (0, 0)
    again = balance(engine, "tiny")
    assert (again.reserved_minor, again.open_reservations) == (held.reserved_minor, held.open_reservations)


def test_a_call_without_reservation_stays_ended_and_an_ended_that_overtook_started_counts(world):  # noqa: F811
    _engine, router = world
    assert router.call_event("plain", TINY, "started", destination=LANDLINE, at_ms=AT)
    assert router.call_event("plain", TINY, "ended", at_ms=AT + 5000)
    assert not router.call_event("plain", TINY, "started", destination=LANDLINE, at_ms=AT + 6000)
    assert not router.call_event("plain", TINY, "answered", destination=LANDLINE, at_ms=AT + 6000)
    assert slots(router) == (0, 0)
    # Out of order: the ended arrives first (it held nothing: accepted false) ...
    assert not router.call_event("swapped", TINY, "ended", at_ms=AT + 9000)
    # ... and the started that follows it takes no slot.
    assert not router.call_event("swapped", TINY, "started", destination=LANDLINE, at_ms=AT + 1000)
    assert slots(router) == (0, 0)


def test_the_end_is_remembered_for_the_cdr_grace_then_the_call_id_is_new(world):  # noqa: F811
    _engine, router = world
    assert router.call_event("reuse", TINY, "started", destination=LANDLINE, at_ms=AT)
    assert router.call_event("reuse", TINY, "ended", at_ms=AT + 1000)
    edge = AT + 1000 + CDR_GRACE_S * 1000
    assert not router.call_event("reuse", TINY, "started", destination=LANDLINE, at_ms=edge - 1)
    assert router.call_event("reuse", TINY, "started", destination=LANDLINE, at_ms=edge + 1)
    assert slots(router) == (1, 0)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from demo_server import Server

    root = tmp_path_factory.mktemp("event-order")
    (root / "catalog.yaml").write_text(CATALOG)
    Store(root / "store").compile(root / "catalog.yaml", activate=True)
    s = Server(root / "store", root).start()
    yield s
    s.stop()


def test_grpc_started_after_ended_is_not_accepted(server):
    from rating400_client import Client

    with Client(server.target, timeout=30) as c:
        d = c.authorize(TINY, CALLER, call_id="g1", at=AT)
        assert d.allow and d.reserved_minor == 5000
        assert c.call_event("g1", TINY, "started", destination=LANDLINE, at=AT).accepted
        assert c.call_event("g1", TINY, "ended", at=AT + 61_000).accepted
        late = c.call_event("g1", TINY, "started", destination=LANDLINE, at=AT)
        assert not late.accepted
        # g1 was never answered before its ended: this answered may be the one
        # the ended overtook, so it is accepted to correct the settlement
        # (README "Credit reservation": ended before answered), taking no slot;
        # sent again, it is a replay.
        assert c.call_event("g1", TINY, "answered", destination=MOBILE, caller=CALLER, at=AT + 2000).accepted
        assert not c.call_event("g1", TINY, "answered", destination=MOBILE, caller=CALLER, at=AT + 2000).accepted
        assert not c.call_event("g1", TINY, "interim", at=AT + 30_000).accepted
        assert c.call_event("g2", TINY, "started", destination=LANDLINE, at=AT + 62_000).accepted
    from rating_core.engine import Engine

    engine = Engine.open(server.store)
    try:
        assert slots(engine.router) == (1, 0)  # g2 only: g1's late started took no slot
    finally:
        engine.close()


# -- an ended without ``at`` (README "Credit reservation": the end time) ------------------

def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_ended_without_at_before_a_future_dated_authorize_is_refused_and_keeps_the_hold(world):  # noqa: F811
    engine, router = world
    future = now_ms() + 2 * 3_600_000  # the switch's clock, two hours ahead of the server's
    d = router.authorize(TINY, CALLER, future, call_id="ahead")
    assert d.allow and d.reserved_minor == 5000
    assert router.call_event("ahead", TINY, "answered", destination=MOBILE, caller=CALLER, at_ms=future)
    with pytest.raises(InvalidInput) as refused:
        router.call_event("ahead", TINY, "ended")  # no at: the server cannot tell how long it ran
    assert refused.value.field == "at" and "ahead" in refused.value.message
    # Nothing changed: the hold still covers the call, so no other call can take that credit.
    assert balance(engine, "tiny", future).reserved_minor == 5000
    assert slots(router) == (0, 1)
    assert not router.authorize(TINY, CALLER, future, call_id="other").allow
    # With the end time it settles; the CDR charges it, and the account never goes below zero.
    assert router.call_event("ahead", TINY, "ended", at_ms=future + 61_000)
    assert balance(engine, "tiny", future).reserved_minor == 2600
    # Its CDR, dated two hours after the server's now, is not committed yet
    # (start_in_future, breaker N11 F4: the hold keeps covering it); once the
    # server's clock reaches the call, the same CDR commits and settles it.
    assert commit(engine, [cdr("ahead", "tiny", future, future, future + 61_000, MOBILE)]).num_rows == 0
    assert balance(engine, "tiny", future).reserved_minor == 2600
    with clock_at(future + 61_000):
        commit(engine, [cdr("ahead", "tiny", future, future, future + 61_000, MOBILE)])
    b = balance(engine, "tiny", future)
    assert (b.credit_minor, b.reserved_minor) == (2400, 0)


def test_ended_with_an_at_before_the_authorization_is_refused(world):  # noqa: F811
    engine, router = world
    router.authorize(TINY, CALLER, AT, call_id="early")
    with pytest.raises(InvalidInput) as refused:
        router.call_event("early", TINY, "ended", at_ms=AT - (CLOCK_SKEW_S + 1) * 1000)
    assert refused.value.field == "at"
    assert balance(engine, "tiny").reserved_minor == 5000
    # Within the tolerance: the call used nothing, as an end at its authorization.
    assert router.call_event("early", TINY, "ended", at_ms=AT - CLOCK_SKEW_S * 1000)
    assert balance(engine, "tiny").reserved_minor == 0


def test_ended_without_at_counts_the_clock_tolerance_on_the_safe_side(world):  # noqa: F811
    engine, router = world
    start = now_ms() - 30_000  # authorized 30 s ago
    router.authorize(TINY, CALLER, start, call_id="now")
    router.call_event("now", TINY, "answered", destination=MOBILE, caller=CALLER, at_ms=start)
    assert router.call_event("now", TINY, "ended")
    # The server's clock says about 30 s; the Authorize's clock may be up to
    # the tolerance ahead of it, so the hold covers 30 s + CLOCK_SKEW_S.
    held = reservations.open_reservations(engine.ledger)
    assert len(held) == 1 and held[0][1].ended
    assert 30 + CLOCK_SKEW_S <= held[0][1].held_seconds <= 40 + CLOCK_SKEW_S


def test_grpc_ended_without_at_before_a_future_authorize_is_invalid_argument(server):
    import grpc

    from rating400_client import Client

    future = now_ms() + 2 * 3_600_000
    with Client(server.target, timeout=30) as c:
        d = c.authorize(NUMBERS["owes"], CALLER, call_id="gf", at=future)
        assert d.allow and d.reserved_minor > 0
        with pytest.raises(grpc.RpcError) as refused:
            c.call_event("gf", NUMBERS["owes"], "ended")
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith("at:"), refused.value.details()
        assert c.call_event("gf", NUMBERS["owes"], "ended", at=future + 10_000).accepted


def test_authorize_again_after_ended_is_refused_and_keeps_the_settled_hold(world):  # noqa: F811
    """A replayed Authorize of an ended call must not replace the hold that
    waits for its CDR (nor drop it when the new decision denies)."""
    engine, router = world
    router.authorize(TINY, CALLER, AT, call_id="once")
    router.call_event("once", TINY, "answered", destination=MOBILE, caller=CALLER, at_ms=AT)
    assert router.call_event("once", TINY, "ended", at_ms=AT + 61_000)
    assert balance(engine, "tiny").reserved_minor == 2600
    with pytest.raises(InvalidInput) as refused:
        router.authorize(TINY, CALLER, AT + 62_000, call_id="once")
    assert refused.value.field == "call_id" and "ended" in refused.value.message
    b = balance(engine, "tiny")
    assert (b.reserved_minor, b.open_reservations) == (2600, 1)
    commit(engine, [cdr("once", "tiny", AT, AT, AT + 61_000, MOBILE)])
    b = balance(engine, "tiny")
    assert (b.credit_minor, b.reserved_minor) == (2400, 0)


def test_grpc_authorize_of_an_ended_call_is_invalid_argument(server):
    import grpc

    from rating400_client import Client

    with Client(server.target, timeout=30) as c:
        assert c.authorize(NUMBERS["owes"], CALLER, call_id="ga", at=AT).allow
        assert c.call_event("ga", NUMBERS["owes"], "ended", at=AT + 10_000).accepted
        with pytest.raises(grpc.RpcError) as refused:
            c.authorize(NUMBERS["owes"], CALLER, call_id="ga", at=AT + 11_000)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith("call_id:"), refused.value.details()
