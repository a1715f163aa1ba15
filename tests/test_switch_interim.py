"""A prepaid call extended during the call, end to end: Kamailio, SIPp and
a real ``rating400 serve``.

The account (``e2e_prepaid``: 0.05 yuan at 0.018 yuan per 6 s, so a
granted maximum of 12 s) is moved to the customer layer and topped up
while its call is in progress. The switch's interim timer asks the engine
for more (``CallEvent interim``) as the cut nears; the new grant moves the
dialog's timeout, and the call lasts until the caller hangs up, well past
the 12 s it was first granted. The CDR is charged at the tariff and the
credit adds up: opening + top-up - charge.

Skipped like the other switch tests when kamailio or sipp is missing.
"""
from __future__ import annotations

import subprocess
import time

import pytest

import switch_harness as h

pytestmark = pytest.mark.skipif(h.missing() is not None, reason=h.missing() or "")

HOLD_S = 20  # the caller hangs up after this many seconds of talk
GRANTED_S = 12  # 0.05 yuan at 0.018 yuan per 6 s (free 3 s): two increments


def _cli(*args) -> str:
    done = subprocess.run([str(h.RATING400), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def switch(tmp_path_factory):
    from test_switch_e2e import _kamailio_python_matches

    why = _kamailio_python_matches()
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("interim")
    store = h.make_store(tmp)
    _cli("accounts", "import", str(tmp / "catalog" / "catalog.yaml"), "--store", str(store))
    engine = h.Engine(store, tmp).start()
    uas = h.SippUas(tmp, "answer").start()
    kam = None
    try:
        kam = h.Kamailio(tmp, engine.target, [("", uas.uri)], children=2, authorize_timeout_ms=3000).start()
        yield {"tmp": tmp, "store": store, "kam": kam,
               "why": lambda: h.diagnostics(tmp, {"engine": engine.proc, "kamailio": kam.proc, "uas": uas.proc})}
    finally:
        if kam:
            kam.stop()
        uas.stop()
        engine.stop()


def test_top_up_during_the_call_extends_it_past_its_first_grant(switch):
    from test_switch_e2e import _credit

    tmp, kam, store = switch["tmp"], switch["kam"], switch["store"]
    opening, before = _credit(store, "e2e_prepaid")
    assert opening == before == 500
    call = h.SippUac(tmp, "long", kam.port, [("13812345678", h.E2E_PREPAID, "")], hold_ms=HOLD_S * 1000).start()
    deadline = time.monotonic() + 20
    while not call.outcomes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [o.code for o in call.outcomes()] == [200], switch["why"]()
    answered = time.monotonic()
    _cli("accounts", "top-up", "e2e_prepaid", "600", "--store", str(store))
    assert time.monotonic() - answered < GRANTED_S - 4, "the top-up came too late to test the extension"
    (o,) = call.wait(timeout=HOLD_S + 60)
    assert o.code == 200
    missing = kam.await_journal({o.call_id})
    assert not missing, switch["why"]()
    (j,) = [j for j in kam.journal_lines() if j["cdr"]["call_id"] == o.call_id]
    talk = (j["cdr"]["end"] - j["cdr"]["agent_answer"]) / 1000
    # The caller hung up (the switch did not cut at 12 s): HOLD_S of talk.
    assert HOLD_S - 1 <= talk <= HOLD_S + 3, (talk, switch["why"]())
    assert j["billable_seconds"] > GRANTED_S
    units = -(-(j["billable_seconds"]) // 6)  # 6-second increments at 0.018 yuan each (180 minor)
    assert j["charge_minor"] == units * 180 and j["credit_consumed_minor"] == j["charge_minor"]
    _, now = _credit(store, "e2e_prepaid")
    assert now == opening + 600 * 10_000 - j["charge_minor"]
    assert kam.log_errors() == []
