"""Fixtures shared by the test files (pytest finds this file itself).

``store``, ``server`` and ``client``: the demo store and a real server on
loopback (``demo_server``), one per test module; a module defining
fixtures of the same names uses its own.

``demo``: the directory ``rating400 demo --cdrs 2000`` writes (catalog/,
store/, cdrs.parquet, rated.parquet, rejects.csv), one copy per test module
(a module may commit to its store), of one demo made once per session
(``demo_made``, with what the command printed).

``clock``: sets the accounts' now for a test dating operations ahead of
the real date (tests/clock.py)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from clock import clock_at
from demo_server import Server, copy_store, make_store
from rating400_client import Client


@pytest.fixture(scope="session")
def demo_made(tmp_path_factory):
    """(directory, stdout) of ``rating400 demo --cdrs 2000``, a real
    subprocess, made once per session. Read only: a test takes ``demo``."""
    d = tmp_path_factory.mktemp("demo-made") / "demo"
    proc = subprocess.run([sys.executable, "-m", "rating_core", "demo", "--cdrs", "2000", "--dir", str(d)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return d, proc.stdout


@pytest.fixture(scope="module")
def demo(demo_made, tmp_path_factory):
    """This module's own copy of the session's demo directory (``demo_made``)."""
    d = tmp_path_factory.mktemp("demo") / "demo"
    copy_store(demo_made[0], d)
    return d


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("svc"))


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    s = Server(store[0], tmp_path_factory.mktemp("srv")).start()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    with Client(server.target, timeout=10) as c:
        c.wait_ready()
        yield c


@pytest.fixture
def clock():
    """``clock(ms)``: the accounts' now is ``ms`` (epoch ms) for the rest of
    the test (tests/clock.py), so it may date operations up to then."""
    on = []

    def set_to(ms: int) -> None:
        on.append(clock_at(ms))
        on[-1].start()
    yield set_to
    for patcher in reversed(on):
        patcher.stop()


@pytest.fixture
def rented_catalog(monkeypatch):
    """``test_late_cdrs.setup_store`` compiles ``test_late_cdrs.RENTED``:
    packages of every kind, ``bun_a`` with a rental (the mixed-kind month
    stories)."""
    import test_late_cdrs

    monkeypatch.setattr(test_late_cdrs, "CATALOG", test_late_cdrs.RENTED)
