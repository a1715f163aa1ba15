"""rating400_switch, the switch-side logic, without a switch: SIP answers,
hunt and leg records, the dialog timeout for the granted maximum, CDRs,
settings errors, the spool, and the engine link against a real
``rating400 serve`` on loopback (fail closed with 503 when it is down)."""
from __future__ import annotations

import json
import multiprocessing
import re
import time

import grpc
import pytest

from rating400.v1 import routing_pb2
from rating400_switch import (Hunt, Leg, Settings, SettingsError, Spool, answer_for_decision,
                              answer_for_rpc_error, caller_of, cdr_of, dialog_timeout, is_400_number)
from rating400_switch.answers import DENY_ANSWERS, ENGINE_DOWN
from rating400_switch.link import EngineLink, cdr_op, event_op
from rating_core.reference_routing import REASONS
import switch_harness as h
from switch_harness import E2E_PREPAID, KAMAILIO_DIR, Engine, make_store

GW = {"gateways": [{"prefix": "", "uri": "sip:{number}@127.0.0.1:5099"}]}


class _Err(grpc.RpcError):
    def __init__(self, code, details=""):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


def test_every_engine_deny_reason_has_a_documented_sip_answer():
    # Each reason the engine can give is in the table, and the table is in the README.
    readme = (KAMAILIO_DIR / "README.md").read_text(encoding="utf-8")
    for reason in REASONS + ("monthly_spend_cap", "monthly_calls_cap"):  # the kernel's, then the router's caps
        if reason == "ok":
            continue
        assert reason in DENY_ANSWERS, reason
        code, _phrase = DENY_ANSWERS[reason]
        assert f"`{reason}` | {code}" in readme, reason
    d = routing_pb2.AuthorizeResponse(allow=False, reason="caller_blocked")
    assert answer_for_decision(d).code == 403
    assert answer_for_decision(routing_pb2.AuthorizeResponse(allow=False, reason="out_of_credit")).code == 402
    assert answer_for_decision(routing_pb2.AuthorizeResponse(allow=False, reason="all_destinations_busy")).code == 486
    assert answer_for_decision(routing_pb2.AuthorizeResponse(allow=True)) is None


def test_rpc_errors_fail_closed_with_503():
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL,
                 grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED):
        assert answer_for_rpc_error(_Err(code)) is ENGINE_DOWN
    assert answer_for_rpc_error(_Err(grpc.StatusCode.NOT_FOUND, "unknown_number")).code == 404
    a = answer_for_rpc_error(_Err(grpc.StatusCode.FAILED_PRECONDITION, "number_suspended"))
    assert (a.code, a.reason) == (403, "number_suspended")


def test_numbers_and_callers_from_sip():
    assert is_400_number("4008593431") == "4008593431"
    assert is_400_number("+864008593431") == "4008593431"
    assert is_400_number("400-859-3431") == "4008593431"
    assert is_400_number("02088886666") is None
    assert is_400_number("") is None
    assert caller_of("13812345678") == "13812345678"
    assert caller_of("+8613812345678") == "+8613812345678"
    assert caller_of("anonymous") == ""


def test_hunt_and_leg_round_trip_through_dialog_variables():
    d = routing_pb2.AuthorizeResponse(allow=True, destinations=[
        routing_pb2.Destination(number="02083001234", ring_timeout_seconds=20),
        routing_pb2.Destination(number="13902001234", ring_timeout_seconds=30)])
    h = Hunt.of(d)
    assert Hunt.parse(h.text()) == h
    first, rest = h.pop()
    assert first == ("02083001234", 20) and rest.destinations == (("13902001234", 30),)
    assert rest.pop()[1].pop()[0] is None
    leg = Leg("c-1@host", "4008593431", "13812345678", 1_000, "ivr_answer", 60, 1_000, "13902001234", 9_000)
    assert Leg.parse(leg.text()) == leg
    with pytest.raises(ValueError):
        Leg.parse("a|b")


def test_dialog_timeout_keeps_billable_time_within_the_granted_maximum():
    leg = Leg("c", "4009000001", "", start_ms=0, billing_start="agent_answer", max_duration_s=12)
    assert dialog_timeout(leg, answer_ms=5_000) == 10  # from the answer, 2 s margin (CUT_MARGIN_S)
    assert dialog_timeout(leg, answer_ms=5_000, margin_s=0) == 12
    ring = Leg("c", "n", "", start_ms=0, billing_start="ring", max_duration_s=60)
    assert dialog_timeout(ring, answer_ms=20_000) == 38  # 20 s of ringing were billable already
    assert dialog_timeout(ring, answer_ms=90_000) == 1  # nothing left: cut at once
    ivr = Leg("c", "n", "", start_ms=0, billing_start="ivr_answer", max_duration_s=60, ivr_answer_ms=2_000)
    assert dialog_timeout(ivr, answer_ms=12_000) == 48
    assert dialog_timeout(Leg("c", "n", "", 0, max_duration_s=0), 5_000) == 0  # no limit


def test_interim_is_asked_before_the_cut_and_moves_it():
    from rating400_switch import cut_at_ms, interim_due

    leg = Leg("c", "4009000001", "", start_ms=0, billing_start="agent_answer", max_duration_s=3600)
    cut = cut_at_ms(leg, 3600, answer_ms=10_000)
    assert cut == 10_000 + 3598 * 1000  # the same instant the dialog timeout gives
    assert not interim_due(cut, now_ms=cut - 31_000, lead_s=30)
    assert interim_due(cut, now_ms=cut - 30_000, lead_s=30)
    assert cut_at_ms(leg, 7200, answer_ms=10_000) == 10_000 + 7198 * 1000  # a new grant counts from billing start


def test_live_calls_registry(tmp_path):
    from rating400_switch import LiveCalls

    live = LiveCalls(tmp_path)
    live.put({"call_id": "a@h", "cut_ms": 1})
    live.put({"call_id": "a@h", "cut_ms": 2})
    live.put({"call_id": "b@h", "cut_ms": 3})
    assert sorted(r["cut_ms"] for r in live.records()) == [2, 3]
    live.drop("a@h")
    live.drop("a@h")
    assert [r["call_id"] for r in live.records()] == ["b@h"]


def test_cdr_carries_the_calls_real_timestamps():
    leg = Leg("c", "4009810838", "13812345678", 1_000, "agent_answer", 0, 0, "13902001234", 3_000)
    assert cdr_of(leg, 9_500, "normal_clearing") == {
        "call_id": "c", "caller": "13812345678", "number": "4009810838", "forwarded_to": "13902001234",
        "start": 1_000, "agent_answer": 3_000, "end": 9_500, "hangup_cause": "normal_clearing"}
    missed = cdr_of(Leg("m", "4009810838", "", 1_000, destination="13902001234"), 31_000, "no_answer")
    assert "agent_answer" not in missed and missed["end"] == 31_000


@pytest.mark.parametrize("server", ["current", "older"])
def test_the_cdr_journal_names_money_with_its_unit(tmp_path, server):
    """The journal's money fields are named as the rated files and RatedCdr
    name them (``cdr.RATED_MINOR_NAMES``: charge_minor, ...), not by the
    deprecated unitless names; from a server older than RatedCdr's
    ``*_minor`` fields (which fills only charge, ...) the values are those."""
    from rating400.v1 import rating_pb2
    from rating_core.cdr import RATED_MINOR_NAMES

    journal = tmp_path / "journal.jsonl"
    link = EngineLink(Settings.from_dict({**GW, "spool_dir": str(tmp_path / "spool"), "cdr_journal": str(journal)}))
    money = {"charge": 1200, "credit_consumed": 1000, "overage": 200}
    if server == "current":  # both names, the same values
        money |= {RATED_MINOR_NAMES[k]: v for k, v in money.items()}
    rc = rating_pb2.RatedCdr(call_id="j1", account="acme", status="rated", billable_seconds=60, **money)
    link._journal({"call_id": "j1"}, rating_pb2.RateCdrResponse(rated_cdr=rc))
    (line,) = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines()]
    assert {new: line.get(new) for new in RATED_MINOR_NAMES.values()} == {
        "charge_minor": 1200, "credit_consumed_minor": 1000, "overage_minor": 200}
    assert not set(RATED_MINOR_NAMES) & set(line)  # not the proto's names


def test_settings_errors_name_file_and_key(tmp_path):
    assert Settings.from_dict(GW).gateway_uri("02088886666") == "sip:02088886666@127.0.0.1:5099"
    s = Settings.from_dict({"gateways": [{"prefix": "0571", "uri": "sip:{number}@a"}]})
    assert s.gateway_uri("02088886666") is None
    for raw, where in (({}, "gateways"), ({**GW, "engin": "x"}, "engin: unknown"),
                       ({**GW, "authorize_timeout_ms": 0}, "authorize_timeout_ms"),
                       ({"gateways": [{"uri": "http://x"}]}, "gateways[0].uri")):
        with pytest.raises(SettingsError, match=re.escape(where)):
            Settings.from_dict(raw, "rating400.toml")
    bad = tmp_path / "r.toml"
    bad.write_text("engine = \n")
    with pytest.raises(SettingsError, match=str(bad)):
        Settings.load(bad)


def test_hostile_settings_files_are_refused_at_start(tmp_path):
    """Every bad settings file stops the switch with one SettingsError naming
    file and key: never another exception, a hang or unbounded reading."""
    import os

    gw = '[[gateways]]\nprefix = ""\nuri = "sip:{number}@h"\n'
    (tmp_path / "badtok").write_bytes(b"tok\xffen\n")
    (tmp_path / "twotok").write_text("abc def\nghi\n")
    (tmp_path / "ca.pem").write_text("not a pem\n")
    os.mkfifo(tmp_path / "fifo")
    cases = {
        b"\xff\xfe[[gateways]]\n": "not UTF-8",
        f'token_file = "{tmp_path}/badtok"\n{gw}'.encode(): "token_file",
        f'token_file = "{tmp_path}/twotok"\n{gw}'.encode(): "token_file",
        f'tls_ca = "{tmp_path}/ca.pem"\n{gw}'.encode(): "tls_ca: " + str(tmp_path / "ca.pem") + " is not a PEM",
        f'token_file = "/dev/zero"\n{gw}'.encode(): "not a regular file",
        f'token_file = "{tmp_path}/fifo"\n{gw}'.encode(): "not a regular file",
        f'engine = ""\n{gw}'.encode(): "engine: must not be empty",
        '[[gateways]]\nprefix = "\u00b2\u0663"\nuri = "sip:{number}@h"\n'.encode(): "gateways[0].prefix",
        b'[[gateways]]\nprefix = ""\nuri = "sip:{number}@h\\r\\nX-Evil: 1"\n': "gateways[0].uri",
    }
    for i, (text, where) in enumerate(cases.items()):
        path = tmp_path / f"s{i}.toml"
        path.write_bytes(text)
        with pytest.raises(SettingsError, match=re.escape(where)):
            Settings.load(path)


def test_switch_environment_is_checked(tmp_path, monkeypatch):
    """``$RATING400_SWITCH_CONFIG`` with a control character or a path that
    is not a file is one SettingsError naming it, never a ValueError."""
    monkeypatch.setenv("RATING400_SWITCH_CONFIG", "/etc/x\x01.toml")
    with pytest.raises(SettingsError, match="RATING400_SWITCH_CONFIG='/etc/x\\\\x01.toml'"):
        Settings.load()
    monkeypatch.setenv("RATING400_SWITCH_CONFIG", str(tmp_path))
    with pytest.raises(SettingsError, match="is not a regular file"):
        Settings.load()
    with pytest.raises(SettingsError, match="is not a file path"):
        Settings.load(str(tmp_path / "a\0b"))


@pytest.mark.skipif(h.missing() is not None, reason=h.missing() or "")
def test_kamailio_refuses_to_start_on_a_wrong_site_packages(tmp_path):
    """A wrong ``$RATING400_SITE_PACKAGES`` entry stops a real Kamailio at
    start with one line naming the variable and the entry."""
    k = h.Kamailio(tmp_path, "127.0.0.1:1", [("", "sip:{number}@127.0.0.1:5099")], children=1)
    try:
        with pytest.raises(RuntimeError, match="kamailio exited"):
            k.start(site_packages="/nonexistent/site-packages")
    finally:
        k.stop()
    log = k.log_path.read_text(errors="replace")
    assert "rating400: RATING400_SITE_PACKAGES: '/nonexistent/site-packages' is not a directory" in log


def test_spool_keeps_order_until_the_engine_takes_each_operation(tmp_path):
    spool = Spool(tmp_path)
    sent, up = [], {"ok": False}

    def send(op):
        if not up["ok"]:
            return False
        sent.append(op["kind"] if op["op"] == "event" else "cdr")
        return True

    assert not spool.add("c1", [event_op("c1", "4009810838", "answered", 1)], send)
    assert not spool.add("c1", [event_op("c1", "4009810838", "ended", 2), cdr_op({"call_id": "c1"})], send)
    assert spool.pending() == 1 and sent == []
    up["ok"] = True
    assert spool.flush(send) == 0
    assert sent == ["answered", "ended", "cdr"] and spool.pending() == 0
    # A refusal for good is set aside with its error, not retried forever.
    assert spool.add("c2", [cdr_op({"call_id": "c2"})], lambda op: "INVALID_ARGUMENT: end: before start")
    assert spool.rejected() == [{"op": {"op": "cdr", "cdr": {"call_id": "c2"}},
                                 "error": "INVALID_ARGUMENT: end: before start"}]


def _add_many(directory, n, worker):
    spool = Spool(directory)
    for i in range(n):
        spool.add("shared-call", [{"op": "event", "kind": f"{worker}-{i}"}])


def test_spool_appends_from_many_processes_lose_nothing(tmp_path):
    procs = [multiprocessing.get_context("fork").Process(target=_add_many, args=(tmp_path, 50, w)) for w in range(3)]
    for p in procs:
        p.start()
    got = []
    spool = Spool(tmp_path)
    while any(p.is_alive() for p in procs) or spool.pending():
        spool.flush(lambda op: got.append(op["kind"]) or True)
        time.sleep(0.001)
    for p in procs:
        p.join()
    spool.flush(lambda op: got.append(op["kind"]) or True)
    assert sorted(got) == sorted(f"{w}-{i}" for w in range(3) for i in range(50))
    for w in range(3):  # each process's operations stay in its order
        mine = [k for k in got if k.startswith(f"{w}-")]
        assert mine == [f"{w}-{i}" for i in range(50)]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("switch-link")
    eng = Engine(make_store(tmp), tmp).start()
    yield eng
    eng.stop()


def test_link_authorizes_and_fails_closed_when_the_engine_is_down(engine, tmp_path):
    link = EngineLink(Settings.from_dict({**GW, "engine": engine.target, "spool_dir": str(tmp_path / "spool")}))
    d, answer = link.authorize("4009810838", "13812345678", "", "link-1", int(time.time() * 1000))
    assert answer is None and [x.number for x in d.destinations] == ["02083001234", "13902001234"]
    d, answer = link.authorize("4000589196", "17012345678", "", "link-2", int(time.time() * 1000))
    assert (answer.code, answer.reason) == (403, "caller_blocked")
    d, answer = link.authorize(E2E_PREPAID, "13812345678", "", "link-3", int(time.time() * 1000))
    assert answer is None and d.max_duration_seconds == 12
    assert link.started("link-1", "4009810838", "02083001234", "13812345678", int(time.time() * 1000))

    down = EngineLink(Settings.from_dict({**GW, "engine": "127.0.0.1:1", "authorize_timeout_ms": 200,
                                          "spool_dir": str(tmp_path / "spool-down")}))
    t0 = time.monotonic()
    d, answer = down.authorize("4009810838", "13812345678", "", "link-4", int(time.time() * 1000))
    assert answer is ENGINE_DOWN and answer.code == 503
    assert time.monotonic() - t0 < 1.0  # within the deadline, never a hang
    # Post-call work waits in the spool while the engine is away.
    now = int(time.time() * 1000)
    cdr = {"call_id": "link-5", "caller": "13812345678", "number": "4009810838", "forwarded_to": "13902001234",
           "start": now - 10_000, "agent_answer": now - 8_000, "end": now, "hangup_cause": "normal_clearing"}
    assert not down.report("link-5", [event_op("link-5", "4009810838", "ended", now), cdr_op(cdr)])
    assert down.spool.pending() == 1
    # The same spool, once the engine is reachable, drains; a second send is a replay, not a charge.
    up = EngineLink(Settings.from_dict({**GW, "engine": engine.target, "spool_dir": str(tmp_path / "spool-down")}))
    assert up.flush() == 0
    first = up.client.rate_cdr(cdr)
    assert first.replayed and first.rated_cdr.charge_minor > 0


def test_readme_settings_example_is_valid():
    import tomllib

    text = (KAMAILIO_DIR / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```toml\n(.*?)```", text, re.S)
    s = Settings.from_dict(tomllib.loads(block), "README.md")
    assert s.engine == "127.0.0.1:50051" and s.gateway_uri("13902001234") == "sip:13902001234@carrier.example:5060"


def test_a_hung_engine_fails_closed_within_the_deadline(tmp_path):
    import socket

    # Accepts TCP connections (the kernel's backlog) but never speaks HTTP/2.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        link = EngineLink(Settings.from_dict({**GW, "engine": f"127.0.0.1:{hung.getsockname()[1]}",
                                              "authorize_timeout_ms": 250, "spool_dir": str(tmp_path)}))
        t0 = time.monotonic()
        d, answer = link.authorize("4009810838", "13812345678", "", "hung-1", int(time.time() * 1000))
        took = time.monotonic() - t0
    assert d is None and answer is ENGINE_DOWN
    assert took < 1.0, took  # never more than the deadline and a little


def test_one_channel_per_process(tmp_path):
    import os

    link = EngineLink(Settings.from_dict({**GW, "spool_dir": str(tmp_path)}))
    first = link.client
    assert link.client is first  # reused in this process
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked worker opens its own, never the parent's
        os.write(w, b"1" if link.client is not first else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"


def test_a_slow_engine_gets_503_at_the_deadline_and_its_hold_released_later(tmp_path):
    """An engine that answers after the switch gave up may have reserved
    credit: the switch spools an ``ended`` for the call so it is released."""
    from concurrent import futures

    from rating400.v1 import routing_pb2_grpc

    class Slow(routing_pb2_grpc.RoutingServiceServicer):
        def Authorize(self, request, context):
            time.sleep(0.6)
            return routing_pb2.AuthorizeResponse(allow=True)

    server = grpc.server(futures.ThreadPoolExecutor(2))
    routing_pb2_grpc.add_RoutingServiceServicer_to_server(Slow(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        link = EngineLink(Settings.from_dict({**GW, "engine": f"127.0.0.1:{port}", "authorize_timeout_ms": 200,
                                              "spool_dir": str(tmp_path)}))
        t0 = time.monotonic()
        d, answer = link.authorize("4009810838", "13812345678", "", "slow-1", 1_000)
        assert answer is ENGINE_DOWN and time.monotonic() - t0 < 0.5
        (path,) = (tmp_path).glob("*.json")
        assert [op["kind"] for op in json.loads(path.read_text())] == ["ended"]
    finally:
        server.stop(0)
