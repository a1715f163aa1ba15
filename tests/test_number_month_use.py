"""A number's month-to-date use, as its monthly caps read it, shown by
`accounts number show` (and gRPC GetNumber, tests/test_caps_server.py):
the month's committed calls and spend plus the open reservations now."""
from __future__ import annotations

import json
import time

import pytest

from rating_core.cli import main
from rating_core.ledger.core import month_of
from rating_core.router import ANSWER_WAIT_S
from test_caps import CALLER, NUMBER, T0, cdr, commit, ops, rid, router  # noqa: F401 (ops: a fixture)


def test_month_use_is_what_the_caps_count(ops):  # noqa: F811
    ops.set_caps(rid(), NUMBER, spend_minor=100_000, calls=5, at_ms=T0)
    held = router(ops).authorize(NUMBER, CALLER, T0, call_id="open-1")
    assert held.allow and held.reserved_minor > 0
    # Two calls committed this month (0.24 + 0.12 yuan), one nobody answered (not a call).
    commit(ops, [cdr("c1", T0 - 600_000, 115), cdr("c2", T0 - 300_000, 30),
                 cdr("c3", T0 - 200_000, 0) | {"ivr_answer": None, "agent_answer": None}])
    use = ops.get_number(NUMBER, at_ms=T0)["month_use"]
    assert use == {"month": "2026-11", "calls": 2, "spend_minor": 3600, "open_reservations": 1,
                   "reserved_minor": held.reserved_minor, "counted_calls": 3,
                   "counted_spend_minor": 3600 + held.reserved_minor}
    # Another month has no committed use; the open reservation is there now, whatever the month.
    december = ops.number_month_use(NUMBER, T0 + 31 * 86_400_000)
    assert (december["month"], december["calls"], december["spend_minor"], december["open_reservations"]) == (
        "2026-12", 0, 0, 1)
    # The call ends with no answered: its hold waits ANSWER_WAIT_S for an
    # answer still on its way (README "Ended before answered"), then is gone.
    r = router(ops)
    r.call_event("open-1", NUMBER, "ended", at_ms=T0 + 10_000)
    assert ops.get_number(NUMBER, at_ms=T0)["month_use"]["counted_calls"] == 3
    r.release_stale(T0 + 10_000 + ANSWER_WAIT_S * 1000 + 1)
    assert ops.get_number(NUMBER, at_ms=T0)["month_use"]["counted_calls"] == 2


def test_number_show_prints_the_month_use_in_minor_units_and_yuan(ops, capsys):  # noqa: F811
    now = int(time.time() * 1000)
    start = now - 180_000
    if month_of(start) != month_of(now):  # just after a local month began: keep the call in it
        start = now - 1_000
    commit(ops, [cdr("now-1", start, 115)])  # 2 started minutes at 0.12 yuan
    with pytest.raises(SystemExit) as e:
        main(["accounts", "number", "show", NUMBER, "--store", str(ops.store.root)])
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    shown = json.loads(out)
    assert shown["number"] == NUMBER and "cap_spend_minor" in shown
    m = month_of(now)
    assert shown["month_use"] == {
        "month": f"{m // 12}-{m % 12 + 1:02d}", "calls": 1, "spend_minor": 2400, "spend_yuan": "0.24",
        "open_reservations": 0, "reserved_minor": 0, "reserved_yuan": "0.00", "counted_calls": 1,
        "counted_spend_minor": 2400, "counted_spend_yuan": "0.24"}
