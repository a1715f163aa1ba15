"""Hostile text at the other edges: DEL, C1 controls, bidi controls and
zero-width characters in Authorize, CallEvent and RateCdr fields over gRPC
(a two-worker server on loopback) and in CLI arguments (``route``,
``explain``): INVALID_ARGUMENT / one line and exit 2, naming the field, the
value shown escaped (``cdr.FORBIDDEN_TEXT``, the one list; the file edge is
tests/test_text_cells.py)."""
from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from demo_server import ACTIVE, CALLER, cdr_row

# One of each kind: DEL, C1 (CSI), right-to-left override, isolate, zero-width space, BOM, tag.
HOSTILE = ["\x7f", "\x9b", "\u202e", "\u2067", "\u200b", "\ufeff", "\U000e0041"]


def refused(fn) -> str:
    with pytest.raises(grpc.RpcError) as e:
        fn()
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    return e.value.details()


@pytest.mark.parametrize("char", HOSTILE)
def test_grpc_fields_refuse_the_character_naming_the_field(client, char):
    bad_caller = CALLER[:3] + char + CALLER[3:]
    for details, field in (
            (refused(lambda: client.authorize(ACTIVE, bad_caller)), "caller"),
            (refused(lambda: client.authorize(ACTIVE + char, CALLER)), "number"),
            (refused(lambda: client.authorize(ACTIVE, CALLER, call_id="id" + char)), "call_id"),
            (refused(lambda: client.call_event("ev" + char, ACTIVE, "started")), "call_id"),
            (refused(lambda: client.rate_cdr({**cdr_row("rc-1"), "hangup_cause": "normal" + char})),
             "cdr.hangup_cause")):
        assert details.startswith(f"{field}: contains a control character: "), details
        assert char not in details  # shown escaped, as repr writes it
        assert ascii(char)[1:-1] in details, details
    # The server answers on (and the same caller without the character is routed).
    assert client.authorize(ACTIVE, CALLER).allow


def rating400(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rating_core", *args], capture_output=True, text=True, timeout=120)


def test_cli_arguments_refuse_the_characters_naming_the_field(store):
    root = str(store[0])
    for char in HOSTILE:
        for args, field in ((["route", ACTIVE, CALLER[:3] + char + CALLER[3:]], "caller"),
                            (["route", ACTIVE + char, CALLER], "number"),
                            (["explain", "call" + char], "call_id")):
            proc = rating400(*args, "--store", root)
            assert proc.returncode == 2, (args, proc.stderr)
            err = proc.stderr.strip()
            assert len(err.splitlines()) == 1 and "Traceback" not in err, err
            assert field in err and "control character" in err and char not in err, err
