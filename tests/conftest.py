"""Fixtures shared by the test files (pytest finds this file itself).

``store``, ``server`` and ``client``: the demo store and a real server on
loopback (``demo_server``), one per test module; a module defining
fixtures of the same names uses its own."""
from __future__ import annotations

import pytest

from demo_server import Server, make_store
from rating400_client import Client


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
