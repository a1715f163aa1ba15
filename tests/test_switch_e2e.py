"""A real softswitch end to end: Kamailio (clients/kamailio) routes SIPp calls
through a real ``rating400 serve`` on loopback.

Destinations are SIPp user agents behind one gateway map: one answers, one
answers 486 busy, one rings and never answers. Over 100 calls are placed to
demo 400 numbers (plus two numbers the test catalog adds, see
``switch_harness.write_catalog``), and the test asserts on what the wire and
the engine show:

* routing order and overflow as each number's plan says (sequential hunt
  skips the busy and the silent destination after its ring timeout; round
  robin rotates; a region rule picks its group);
* refused calls get the documented SIP answer and have no CDR;
* a prepaid call is cut by the switch at the granted maximum duration while
  the caller holds on;
* every answered call is rated exactly once, with the charge the engine
  computes offline for the same CDR, and prepaid credit after the run is
  the opening credit minus those charges, with no credit left reserved;
* the engine killed (-9) and restarted mid-run: calls in progress are rated
  once, new calls get 503 while it is down and are routed again after.

Skipped only when kamailio, its Python module or sipp is not installed
(``make install`` installs them).
"""
from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections import Counter, defaultdict

import pytest

import switch_harness as h

pytestmark = pytest.mark.skipif(h.missing() is not None, reason=h.missing() or "")

HUNT = "4009810838"  # shudu_hotpot, prepaid, plan hunt: 020-83001234 (20 s) then 13902001234 (30 s)
BRANCHES = "4009404321"  # shudu_hotpot, plan branches: northern callers -> north, else weighted split
MENU = "4006431271"  # hangzhou_tea, prepaid, plan menu: key 1 sales (random), key 2 service (sequential)
DESK = "4000589196"  # yuehai_logistics, plan service_desk: blacklist prefixes 170, 171
UNKNOWN = "4008000001"

BUSY, SILENT = "02083001234", "057187002001"  # hunt's first destination; menu service's first
MUTE = "057187001002"  # one of menu sales' two (random order): unreachable
NORTH = ("01065001234", "01065001235")
SPLIT = ("02152001234", "02886001234")
SALES = ("057187001001", MUTE)
AGENTS = ("075586001001", "075586001002", "075586001003")
SILENT_RING_S = 15  # menu.service's first destination: the default ring timeout


def _kamailio_python_matches() -> str | None:
    out = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True)
    mine = "%d.%d" % sys.version_info[:2]
    if out.returncode == 0 and out.stdout.strip() != mine:
        return f"Kamailio embeds Python {out.stdout.strip()}, the project is installed for {mine}"
    return None


@pytest.fixture(scope="module")
def switch(tmp_path_factory):
    why = _kamailio_python_matches()
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("switch")
    store = h.make_store(tmp)
    engine = h.Engine(store, tmp).start()
    uas = {role: h.SippUas(tmp, role).start() for role in ("answer", "busy", "silent")}
    mute = h.MuteGateway()
    kam = None
    try:
        kam = h.Kamailio(tmp, engine.target, [(BUSY, uas["busy"].uri), (SILENT, uas["silent"].uri),
                                              (MUTE, mute.uri), ("", uas["answer"].uri)], children=4,
                         # Generous for a shared, loaded test machine; production default 300 ms.
                         authorize_timeout_ms=3000).start()
        yield {"tmp": tmp, "store": store, "engine": engine, "uas": uas, "kam": kam, "mute": mute,
               "why": lambda: h.diagnostics(tmp, {"engine": engine.proc, "kamailio": kam.proc,
                                                  **{f"uas-{r}": u.proc for r, u in uas.items()}})}
    finally:
        mute.close()
        if kam:
            kam.stop()
        for u in uas.values():
            u.stop()
        engine.stop()


def _tried(switch) -> dict[str, list[tuple[float, str, str]]]:
    """Call id -> [(time, destination, role)] of every INVITE the destinations got, in time order.
    A retransmission (the same top Via branch: the switch's transaction layer
    resends an INVITE not answered within T1, which a loaded machine can
    cause) is the attempt it repeats, counted once at its first time."""
    out = defaultdict(list)
    for role, u in switch["uas"].items():
        seen = set()
        for m in sorted(u.invites(), key=lambda m: m.at):
            if m.branch and (m.call_id, m.user, m.branch) in seen:
                continue
            seen.add((m.call_id, m.user, m.branch))
            out[m.call_id].append((m.at, m.user, role))
    return {k: sorted(set(v)) for k, v in out.items()}


@pytest.fixture(scope="module")
def traffic(switch):
    """Three callers at once: the mixed run, the round-robin run (one call
    at a time, so the rotation is exact), and a prepaid call held past its
    granted maximum."""
    tmp, port = switch["tmp"], switch["kam"].port
    mixed = ([(f"1381234{i:04d}", HUNT, "") for i in range(25)]
             + [(f"0108888{i:04d}", BRANCHES, "") for i in range(12)]  # Beijing landlines: north
             + [(f"1381235{i:04d}", BRANCHES, "") for i in range(12)]  # Jiangsu mobiles: split
             + [(f"1381236{i:04d}", MENU, "2") for i in range(8)]
             + [(f"1381237{i:04d}", MENU, "1") for i in range(20)]
             + [("13812380000", MENU, "7"), ("13812380001", MENU, "7")]  # no such key
             + [("13812380002", MENU, ""), ("13812380003", MENU, "")]  # IVR menu not played yet
             + [(f"1701234{i:04d}", DESK, "") for i in range(4)] + [("17112345678", DESK, "")]  # blacklisted
             + [(f"1381239{i:04d}", UNKNOWN, "") for i in range(3)])
    rotation = [(f"1391234{i:04d}", h.E2E_DESK, "") for i in range(12)]
    a = h.SippUac(tmp, "mixed", port, mixed, hold_ms=1000, rate=20, limit=40).start()
    b = h.SippUac(tmp, "rotation", port, rotation, hold_ms=200, rate=10, limit=1).start()
    c = h.SippUac(tmp, "cut", port, [("13812345678", h.E2E_PREPAID, "")], scenario="uac_hold").start()
    out = {"mixed": a.wait(), "rotation": b.wait(), "cut": c.wait(), "cut_calls": c.cut_calls(), "cut_uac": c}
    # The prepaid account's credit is spent now: the next call is refused.
    out["after_cut"] = h.SippUac(tmp, "after-cut", port, [("13812345679", h.E2E_PREPAID, "")]).run()
    _drain(switch["kam"])
    answered = {o.call_id for o in out["mixed"] + out["rotation"] + out["cut"] if o.code == 200}
    missing = switch["kam"].await_journal(answered)
    assert not missing, f"no CDR from the switch for {sorted(missing)}\n{switch['why']()}"
    out["tried"] = _tried(switch)
    out["unreachable"] = switch["mute"].call_ids()
    return out


def _drain(kam, timeout=15.0):
    from rating400_switch import Spool

    deadline = time.monotonic() + timeout
    while Spool(kam.spool).pending() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Spool(kam.spool).pending() == 0, "spool did not drain"


def _by_number(outcomes, number, keys=None):
    return [o for o in outcomes if o.number == number and (keys is None or o.keys == keys)]


def test_every_call_placed_got_a_final_answer(traffic):
    assert len(traffic["mixed"]) == 89 and len(traffic["rotation"]) == 12 and len(traffic["cut"]) == 1


def test_sequential_hunt_skips_busy_and_silent_destinations(traffic):
    tried = traffic["tried"]
    for o in _by_number(traffic["mixed"], HUNT):
        assert o.code == 200
        assert [d for _, d, _ in tried[o.call_id]] == [BUSY, "13902001234"]
    for o in _by_number(traffic["mixed"], MENU, "2"):
        assert o.code == 200
        seq = tried[o.call_id]
        assert [d for _, d, _ in seq] == [SILENT, "13605711234"]
        rang = seq[1][0] - seq[0][0]  # the silent destination rang for its ring timeout
        assert SILENT_RING_S - 0.5 <= rang <= SILENT_RING_S + 2.0, rang


def test_region_rule_and_random_groups(traffic):
    tried = traffic["tried"]
    north = [o for o in _by_number(traffic["mixed"], BRANCHES) if o.caller.startswith("010")]
    split = [o for o in _by_number(traffic["mixed"], BRANCHES) if not o.caller.startswith("010")]
    assert len(north) == 12 and len(split) == 12
    firsts = Counter()
    for o in north:
        assert o.code == 200 and tried[o.call_id][0][1] in NORTH
        firsts[tried[o.call_id][0][1]] += 1
    # Sequential: the first destination takes the call unless it holds its
    # max_calls (10) live calls; then the next one does.
    assert firsts[NORTH[0]] >= 10
    for o in split:
        assert o.code == 200 and tried[o.call_id][0][1] in SPLIT
    sales = _by_number(traffic["mixed"], MENU, "1")
    for o in sales:
        # Random order over the two; the unreachable one is skipped after
        # unreachable_after_ms and the other answers.
        assert o.code == 200 and [d for _, d, _ in tried[o.call_id]] == [SALES[0]]
    # Each call picks its first at random: with 20 calls the unreachable one
    # is tried first at least once but in one run of 2**20.
    assert traffic["unreachable"] and traffic["unreachable"] <= {o.call_id for o in sales}


def test_round_robin_rotates(traffic):
    tried = traffic["tried"]
    calls = traffic["rotation"]
    assert [o.code for o in calls] == [200] * 12
    firsts = [tried[o.call_id][0][1] for o in sorted(calls, key=lambda o: tried[o.call_id][0][0])]
    start = AGENTS.index(firsts[0])
    assert firsts == [AGENTS[(start + i) % 3] for i in range(12)]


def test_refused_calls_get_the_documented_answer_and_no_cdr(switch, traffic):
    codes = {(o.number, o.keys, o.caller[:3]): o.code for o in traffic["mixed"]}
    assert codes[(DESK, "", "170")] == 403 and codes[(DESK, "", "171")] == 403  # caller_blocked
    assert codes[(UNKNOWN, "", "138")] == 404  # unknown_number
    assert codes[(MENU, "7", "138")] == 404  # invalid_ivr_key
    assert codes[(MENU, "", "138")] == 484  # the IVR menu must be played first
    assert [o.code for o in traffic["after_cut"]] == [402]  # out_of_credit
    refused = {o.call_id for o in traffic["mixed"] + traffic["after_cut"] if o.code != 200}
    assert len(refused) == 13
    journal = {j["cdr"]["call_id"] for j in switch["kam"].journal_lines()}
    assert not refused & journal  # no CDR sent, so nothing charged
    assert not refused & set(traffic["tried"])  # and no destination rang


def test_prepaid_call_cut_at_the_granted_maximum(switch, traffic):
    (o,) = traffic["cut"]
    assert o.code == 200 and o.call_id in traffic["cut_calls"]  # the switch sent the BYE
    # ... and billed the call as that BYE left, not in dialog:end, which
    # Kamailio 5.6 skips when the caller's 200 OK to the BYE wins a race.
    assert f"call {o.call_id} ended by the switch (BYE)" in switch["kam"].log_path.read_text(errors="replace")
    (j,) = [j for j in switch["kam"].journal_lines() if j["cdr"]["call_id"] == o.call_id]
    granted = 12  # 0.05 yuan at 0.018 yuan per 6 s (free 3 s): two increments
    talk = (j["cdr"]["end"] - j["cdr"]["agent_answer"]) / 1000
    assert granted - 3 <= talk <= granted, talk  # the caller would have held for 60 s
    assert j["billable_seconds"] <= granted
    assert j["overage_minor"] == 0 and j["charge_minor"] == 360
    assert j["credit_after_minor"] is None or j["credit_after_minor"] >= 0


def _reserved(store, account) -> int:
    """Credit still held by open reservations, 1/10000 yuan."""
    from rating_core.ledger import AccountTerms, Ledger
    from rating_core.store import Store

    snap = Store(store, create=False).open()
    bal = Ledger(store).balance(account, AccountTerms.from_snapshot(snap, account), int(time.time() * 1000))
    return bal.reserved_minor


def _credit(store, account) -> tuple[int, int]:
    """(opening credit, credit now), 1/10000 yuan, from the ledger."""
    from rating_core.ledger import AccountTerms, Ledger
    from rating_core.store import Store

    snap = Store(store, create=False).open()
    terms = AccountTerms.from_snapshot(snap, account)
    bal = Ledger(store).balance(account, terms, int(time.time() * 1000))
    return terms.opening_credit_minor, bal.credit_minor


def _offline_charges(switch, rows) -> dict[str, int]:
    """Rate the switch's CDRs again with ``rating400 rate`` (no commit)."""
    tmp = switch["tmp"]
    src = tmp / f"offline-{time.monotonic_ns()}.csv"
    cols = ["call_id", "caller", "number", "forwarded_to", "start", "ivr_answer", "agent_answer", "end",
            "hangup_cause"]
    with open(src, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    out = tmp / f"{src.stem}-rated.csv"
    subprocess.run([str(h.RATING400), "rate", str(src), "--store", str(switch["store"]), "--out", str(out)],
                   check=True, capture_output=True)
    with open(out, newline="") as f:
        return {r["call_id"]: int(r["charge_minor"]) for r in csv.DictReader(f)}


def _check_rated_once_and_credit(switch, answered: set[str]):
    missing = switch["kam"].await_journal(answered)
    assert not missing, f"no CDR from the switch for {sorted(missing)}\n{switch['why']()}"
    journal = switch["kam"].journal_lines()
    counts = Counter(j["cdr"]["call_id"] for j in journal if not j["replayed"])
    assert max(counts.values(), default=0) <= 1  # exactly once: a resend is answered replayed
    # Each call's rating is its first answer: a RateCdr whose answer missed
    # its 1 s deadline on a loaded machine was committed all the same, and
    # the spool's resend is answered replayed, with the same rating.
    by_call: dict[str, dict] = {}
    for j in journal:
        by_call.setdefault(j["cdr"]["call_id"], j)
    assert set(by_call) == answered  # every answered call rated
    for j in journal:
        assert j["charge_minor"] == by_call[j["cdr"]["call_id"]]["charge_minor"]
    first = list(by_call.values())
    offline = _offline_charges(switch, [j["cdr"] for j in first])
    assert offline == {c: j["charge_minor"] for c, j in by_call.items()}
    charged = Counter()
    for j in first:
        charged[j["account"]] += j["credit_consumed_minor"]
    for account in ("shudu_hotpot", "hangzhou_tea", "e2e_prepaid"):
        opening, now = _credit(switch["store"], account)
        assert charged[account] > 0
        assert now == opening - charged[account], account
    # Every hold Authorize made was settled by the switch's events and CDRs.
    assert {a: _reserved(switch["store"], a) for a in charged} == {a: 0 for a in charged}
    for account in ("shudu_hotpot", "hangzhou_tea", "e2e_prepaid"):
        assert sum(j["overage_minor"] for j in first if j["account"] == account) == 0
        assert sum(j["charge_minor"] for j in first if j["account"] == account) == charged[account]
    return first


def test_every_answered_call_rated_once_as_offline_and_credit_adds_up(switch, traffic):
    answered = {o.call_id for o in traffic["mixed"] + traffic["rotation"] + traffic["cut"] if o.code == 200}
    assert len(answered) == 89 - 12 + 12 + 1
    _check_rated_once_and_credit(switch, answered)
    assert switch["kam"].log_errors() == []


def test_engine_killed_and_restarted_mid_run(switch, traffic):
    from rating400_switch import Spool

    tmp, port, kam, engine = switch["tmp"], switch["kam"].port, switch["kam"], switch["engine"]
    held = h.SippUac(tmp, "held", port, [(f"1381240{i:04d}", HUNT, "") for i in range(6)],
                     hold_ms=6000, rate=20).start()
    deadline = time.monotonic() + 20
    while len(held.outcomes()) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    codes = [o.code for o in held.outcomes()]
    assert codes == [200] * 6, f"{codes}\n{switch['why']()}"  # six calls in progress
    engine.kill()
    down = h.SippUac(tmp, "down", port, [(f"1381241{i:04d}", HUNT, "") for i in range(5)], limit=5).run()
    assert [o.code for o in down] == [503] * 5  # fail closed
    assert [o.code for o in held.wait()] == [200] * 6  # they hung up while the engine was down
    assert Spool(kam.spool).pending() >= 6  # ended + CDR waiting for it
    engine.start()  # same port, same store
    # The workers' channels reconnect (backoff at most 1 s): one call a
    # second until the first is routed again (a few on a loaded machine).
    probes = []
    for i in range(15):
        time.sleep(1.0)
        probes += h.SippUac(tmp, f"probe{i}", port, [(f"1381243{i:04d}", HUNT, "")]).run()
        if probes[-1].code == 200:
            break
    assert probes[-1].code == 200 and {o.code for o in probes} <= {200, 503}
    back = h.SippUac(tmp, "back", port, [(f"1381242{i:04d}", HUNT, "") for i in range(5)]).run()
    assert [o.code for o in back] == [200] * 5
    _drain(kam)
    answered = {o.call_id for o in traffic["mixed"] + traffic["rotation"] + traffic["cut"] + held.outcomes()
                + probes + back if o.code == 200}
    _check_rated_once_and_credit(switch, answered)
    placed = sum(len(x) for x in (traffic["mixed"], traffic["rotation"], traffic["cut"], traffic["after_cut"],
                                  held.outcomes(), down, probes, back))
    assert placed >= 100
    assert kam.log_errors() == []
    print(f"\nswitch e2e: {placed} calls placed, {len(answered)} routed and answered, "
          f"{len(answered)} rated once each, {placed - len(answered)} refused")
