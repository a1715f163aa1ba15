"""Compile without the server's filesystem: catalogs arrive as content (or
by path only under --catalog-root), compiles are bounded in time and memory
and stopped at the caller's deadline, and errors quote only the catalog's own
files."""
from __future__ import annotations

import time

import grpc
import pytest

from rating400.v1 import catalog_pb2
from rating400_client import Client
from demo_server import Server, make_store

SC = grpc.StatusCode


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("compile")
    store, catalog = make_store(root)
    s = Server(store, tmp_path_factory.mktemp("compile-srv"), workers=1)
    s.extra += ["--catalog-root", str(catalog.parent)]
    s.start()
    yield s, catalog
    s.stop()


@pytest.fixture
def client(setup):
    with Client(setup[0].target, timeout=60) as c:
        c.wait_ready()
        yield c


def _fails(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def _request(catalog, **replace):
    """The demo catalog as content, with some of its files replaced."""
    from rating400_client._common import compile_request

    req = compile_request(catalog)
    for f in req.files:
        if f.name in replace:
            f.content = replace[f.name]
    return req


def test_compile_by_content_then_activate(client, setup):
    _, catalog = setup
    version = client.compile_catalog(str(catalog))
    assert version >= 2
    assert client.activate(version) == version
    assert any(v.version == version and v.active for v in client.list_versions())


def test_catalog_cannot_read_server_files(client, setup, tmp_path):
    _, catalog = setup
    doc = catalog.read_bytes().replace(b"numbers_csv: numbers.csv", b"numbers_csv: /etc/passwd")
    assert b"/etc/passwd" in doc
    req = _request(catalog, **{catalog.name: doc})
    code, details = _fails(lambda: client.catalog.Compile(req, timeout=60))
    assert code == SC.INVALID_ARGUMENT
    assert "numbers_csv: '/etc/passwd' must name a file beside the catalog" in details
    assert "root:" not in details and "rating400-compile-" not in details
    for name in ("../numbers.csv", "/dev/zero", "a/b.csv", ".hidden", "x\x00.csv"):
        bad = catalog_pb2.CompileRequest(files=[catalog_pb2.CatalogFile(name=name, content=b"x")])
        code, details = _fails(lambda: client.catalog.Compile(bad, timeout=10))
        assert code == SC.INVALID_ARGUMENT and details.startswith("files[0].name: "), (name, details)
    # By path: only under the catalog root, only regular files.
    for path, says in (("/dev/zero", "outside the server's catalog root"),
                       ("/etc/passwd", "outside the server's catalog root"),
                       ("../../../etc/passwd", "outside the server's catalog root"),
                       ("nothing.yaml", "no such file under the catalog root"),
                       ("x\x00y", "is not a file path")):
        code, details = _fails(lambda: client.catalog.Compile(catalog_pb2.CompileRequest(path=path), timeout=10))
        assert code == SC.INVALID_ARGUMENT and details.startswith("path: ") and says in details, (path, details)
    v = client.catalog.Compile(catalog_pb2.CompileRequest(path=catalog.name), timeout=60).version
    assert v > 0
    assert client.health() == "SERVING"


def test_compile_stops_at_the_callers_deadline(client, setup):
    _, catalog = setup
    t0 = time.monotonic()
    code, details = _fails(lambda: client.catalog.Compile(_request(catalog), timeout=0.3))
    assert code == SC.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 5
    assert client.health() == "SERVING"


def test_problems_name_the_callers_files(client, setup):
    _, catalog = setup
    numbers = (catalog.parent / "numbers.csv").read_bytes() + b"4009999999,nobody_here,active,ring,Shanghai,\n"
    req = _request(catalog, **{"numbers.csv": numbers})
    code, details = _fails(lambda: client.catalog.Compile(req, timeout=60))
    assert code == SC.INVALID_ARGUMENT
    assert "\nnumbers.csv: line " in details and "account: unknown account 'nobody_here'" in details
    assert str(catalog.parent) not in details


def test_compile_child_is_capped_in_memory(setup, tmp_path):
    """The compiling child's data segment is capped: past it, a clean
    ``memory`` answer (the RPC's RESOURCE_EXHAUSTED), not a server in swap."""
    import json
    import subprocess
    import sys

    _, catalog = setup
    out = subprocess.run([sys.executable, "-m", "rating400_server._compile", str(tmp_path / "store"),
                          str(catalog), str(200 << 20)], capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    if lines:
        assert json.loads(lines[-1]) == {"memory": 200 << 20}, out.stderr[-2000:]
    else:  # met the cap in native code (an abort): the server answers RESOURCE_EXHAUSTED for it
        assert out.returncode != 0, out.stderr[-2000:]
