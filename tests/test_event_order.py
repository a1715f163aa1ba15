"""Call events late, replayed or out of order (README "Routing and
authorization", "Credit reservation"): an ended call stays ended -- a later
``started`` / ``answered`` / ``interim`` of it answers accepted=false and
changes nothing (no line slot, no hold, no caller memory) -- in process
on a real ledger and through a real server on loopback."""
from __future__ import annotations

import pytest

from rating_core.router import CDR_GRACE_S
from rating_core.store import Store
from test_reservation import (  # noqa: F401  (store_dir, world: fixtures)
    AT, CALLER, CATALOG, LANDLINE, MOBILE, NUMBERS, balance, store_dir, world,
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
    from test_service_grpc import Server

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
        assert not c.call_event("g1", TINY, "answered", destination=MOBILE, caller=CALLER, at=AT + 2000).accepted
        assert not c.call_event("g1", TINY, "interim", at=AT + 30_000).accepted
        assert c.call_event("g2", TINY, "started", destination=LANDLINE, at=AT + 62_000).accepted
    from rating_core.engine import Engine

    engine = Engine.open(server.store)
    try:
        assert slots(engine.router) == (1, 0)  # g2 only: g1's late started took no slot
    finally:
        engine.close()

