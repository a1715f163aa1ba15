"""Call-setup latency added by the engine in Kamailio: INVITE in to the first
INVITE out, with clients/kamailio/rating400_kemi.py (Authorize + ``started``
over gRPC to a real ``rating400 serve``) against the same Kamailio with a
static peer script (benchmarks/peers/kamailio_static_kemi.py: dialog,
record-route, one branch, no engine).

One call at a time, alternating the two switches, from a Python UDP caller
to a Python UDP gateway on loopback; the time is taken from just before the
caller's ``sendto`` to the gateway's ``recv`` of the forwarded INVITE. The
gateway answers 486 so each call ends at once (the engine's switch then
hunts the second destination; that is after the measured point).
Figures go to ``benchmark.extra_info`` and the run's summary; nothing is
asserted about speed. ``RATING400_BENCH_SMALL=1``: 30 calls per switch.

    python -m pytest benchmarks/bench_switch.py -q -s
"""
from __future__ import annotations

import os
import select
import socket
import statistics
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import switch_harness as h  # noqa: E402

pytestmark = pytest.mark.skipif(h.missing() is not None, reason=h.missing() or "")

SMALL = os.environ.get("RATING400_BENCH_SMALL", "") not in ("", "0")
CALLS = 30 if SMALL else 500
NUMBER = "4009810838"  # plan hunt: two destinations


def _invite(kam_port: int, lport: int, call_id: str, branch: str) -> bytes:
    body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    return (f"INVITE sip:{NUMBER}@127.0.0.1:{kam_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch}\r\n"
            f"From: <sip:13812345678@127.0.0.1:{lport}>;tag=f{call_id}\r\n"
            f"To: <sip:{NUMBER}@127.0.0.1:{kam_port}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:13812345678@127.0.0.1:{lport}>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()


def _headers(msg: bytes, *names: str) -> list[str]:
    keep = tuple(n.lower() + ":" for n in names)
    return [ln for ln in msg.decode(errors="replace").split("\r\n") if ln.lower().startswith(keep)]


def _busy(invite: bytes) -> bytes:
    hs = _headers(invite, "Via", "From", "Call-ID", "CSeq")
    to = _headers(invite, "To")[0] + ";tag=gw"
    return ("SIP/2.0 486 Busy Here\r\n" + "\r\n".join(hs + [to]) + "\r\nContent-Length: 0\r\n\r\n").encode()


def _ack(kam_port: int, lport: int, call_id: str, branch: str, final: bytes) -> bytes:
    to = _headers(final, "To")[0]
    return (f"ACK sip:{NUMBER}@127.0.0.1:{kam_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch}\r\n"
            f"From: <sip:13812345678@127.0.0.1:{lport}>;tag=f{call_id}\r\n{to}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def one_call(uac: socket.socket, gw: socket.socket, kam_port: int, call_id: str) -> float:
    """Place one call; seconds from INVITE sent to the first INVITE forwarded."""
    lport = uac.getsockname()[1]
    branch = "z9hG4bK-" + call_id
    msg = _invite(kam_port, lport, call_id, branch)
    t0 = time.perf_counter()
    uac.sendto(msg, ("127.0.0.1", kam_port))
    first = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ready, _, _ = select.select([uac, gw], [], [], 1.0)
        if gw in ready:
            data, addr = gw.recvfrom(65535)
            if data.startswith(b"INVITE"):
                if first is None:
                    first = time.perf_counter() - t0
                gw.sendto(_busy(data), addr)
        if uac in ready:
            data, _ = uac.recvfrom(65535)
            code = int(data.split(b" ", 2)[1]) if data.startswith(b"SIP/2.0") else 0
            if code >= 300:
                uac.sendto(_ack(kam_port, lport, call_id, branch, data), ("127.0.0.1", kam_port))
                if first is None:
                    raise AssertionError(f"call refused before any INVITE went out: {data[:40]!r}")
                return first
    raise AssertionError("no final answer within 5 s")


def _p(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


@pytest.fixture(scope="module")
def switches(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench-switch")
    store = h.make_store(tmp)
    engine = h.Engine(store, tmp, workers=1).start()
    gw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gw.bind(("127.0.0.1", 0))
    gw_addr = f"127.0.0.1:{gw.getsockname()[1]}"
    with_engine = static = None
    try:
        (tmp / "engine").mkdir()
        (tmp / "static").mkdir()
        with_engine = h.Kamailio(tmp / "engine", engine.target, [("", f"sip:{{number}}@{gw_addr}")],
                                 children=2).start()
        os.environ["RATING400_STATIC_GATEWAY"] = gw_addr
        static = h.Kamailio(tmp / "static", engine.target, [("", f"sip:{{number}}@{gw_addr}")], children=2,
                            kemi=Path(__file__).parent / "peers" / "kamailio_static_kemi.py").start()
        yield with_engine, static, gw
    finally:
        os.environ.pop("RATING400_STATIC_GATEWAY", None)
        for k in (with_engine, static):
            if k:
                k.stop()
        gw.close()
        engine.stop()


def test_call_setup_latency_with_and_without_engine(benchmark, switches, report):
    with_engine, static, gw = switches
    uac = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    uac.bind(("127.0.0.1", 0))
    times = {"engine": [], "static": []}

    def measure():
        for i in range(CALLS + 5):
            for name, kam in (("engine", with_engine), ("static", static)):
                t = one_call(uac, gw, kam.port, f"bench-{name}-{i}-{time.monotonic_ns()}")
                if i >= 5:  # the first calls open each worker's channel
                    times[name].append(t)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    uac.close()
    info = {}
    for name, ts in times.items():
        info[f"{name}_median_ms"] = round(statistics.median(ts) * 1000, 3)
        info[f"{name}_p99_ms"] = round(_p(ts, 0.99) * 1000, 3)
    info["added_median_ms"] = round(info["engine_median_ms"] - info["static_median_ms"], 3)
    info["added_p99_ms"] = round(info["engine_p99_ms"] - info["static_p99_ms"], 3)
    info["calls_each"] = CALLS
    benchmark.extra_info.update(info)
    report(f"kamailio call setup (INVITE in -> first INVITE out, {CALLS} calls each): "
           f"with engine median {info['engine_median_ms']} ms p99 {info['engine_p99_ms']} ms; "
           f"static peer median {info['static_median_ms']} ms p99 {info['static_p99_ms']} ms; "
           f"added median {info['added_median_ms']} ms, p99 {info['added_p99_ms']} ms")
