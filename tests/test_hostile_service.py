"""Hostile input against a running server (supervisor + 2 workers on
loopback, the demo catalog): corrupt Arrow batches, over-long fields, huge
timestamps; killed workers come back; a second server on the same port is
refused.

Every request here is answered INVALID_ARGUMENT (or, for a bit-flipped batch
that still decodes and validates, OK), and the health check stays SERVING.
"""
from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time

import grpc
import pyarrow as pa
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from rating400.v1 import rating_pb2, routing_pb2
from rating400_client import Client, columns
from rating_core import cdr as edge
from rating_core.errors import InvalidInput
from demo_server import ACTIVE, CALLER, cdr_row

SC = grpc.StatusCode


def _batch_bytes(n=3) -> bytes:
    rows = [cdr_row(f"flip-{i}", minute=i) for i in range(n)]
    return columns.table_to_arrow_ipc(columns.rows_to_table(rows))


def corrupt_offsets(data: bytes) -> bytes:
    """The call_id column's last string offset pointed 1 GiB past its data
    buffer (the batch that killed a worker with SIGSEGV)."""
    ids = pa.array([f"flip-{i}" for i in range(3)])
    offsets = ids.buffers()[1].to_pybytes()
    i = data.index(offsets)
    bad = offsets[:-4] + struct.pack("<i", 1 << 30)
    return data[:i] + bad + data[i + len(offsets):]


def _stream(client, payload: bytes):
    req = rating_pb2.RateCdrBatchesRequest(batch_id=1, cdrs_arrow_ipc=payload, dry_run=True)
    try:
        list(client.rating.RateCdrBatches(iter([req]), timeout=10))
        return SC.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def _locally_valid(payload: bytes) -> bool:
    try:
        edge.decode_arrow_ipc(payload)
        return True
    except InvalidInput:
        return False


def test_corrupt_offsets_and_1000_bit_flipped_batches(client):
    good = _batch_bytes()
    bad = corrupt_offsets(good)
    code, details = _stream(client, bad)
    assert code == SC.INVALID_ARGUMENT, details
    # Named by the column at fault (call_id's offsets are the ones corrupted).
    assert details.startswith("cdrs_arrow_ipc.call_id: corrupt Arrow data") and len(details) < 400
    rng = random.Random(8)
    seen = {}
    for k in range(1000):
        b = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            bit = rng.randrange(len(b) * 8)
            b[bit // 8] ^= 1 << (bit % 8)
        payload = bytes(b)
        code, details = _stream(client, payload)
        # A flip that leaves a sound batch (a changed digit in a call id) is
        # rated like any batch; every other one is INVALID_ARGUMENT.
        expect = SC.OK if _locally_valid(payload) else SC.INVALID_ARGUMENT
        assert code == expect, (k, details)
        seen[code] = seen.get(code, 0) + 1
        if k % 100 == 0:
            assert client.health() == "SERVING"
    assert seen[SC.INVALID_ARGUMENT] > 500
    assert client.health() == "SERVING"
    assert client.authorize(ACTIVE, CALLER, ivr_keys="1").allow


def test_limits_name_the_field_with_an_excerpt(client):
    def fails(fn):
        with pytest.raises(grpc.RpcError) as e:
            fn()
        return e.value.code(), e.value.details()

    huge = "x" * 100_000  # repeated in full, the answer would not fit a header
    code, details = fails(lambda: client.rate_cdr({**cdr_row("lim-1"), "hangup_cause": huge}))
    assert code == SC.INVALID_ARGUMENT
    assert details.startswith("cdr.hangup_cause: longer than 64 bytes: 'xxxx") and len(details) < 200
    code, details = fails(lambda: client.authorize("4" * 5000, CALLER))
    assert code == SC.INVALID_ARGUMENT and details.startswith("number: longer than 64") and len(details) < 200
    code, details = fails(lambda: client.authorize(ACTIVE, "138\x00123"))
    assert code == SC.INVALID_ARGUMENT and details.startswith("caller: contains a control character")
    # Timestamps near 2^63 (were INTERNAL): named, not overflowed.
    req = rating_pb2.RateCdrRequest(cdr=rating_pb2.Cdr(call_id="lim-2", number=ACTIVE, forwarded_to="02088886666",
                                                       start_time=Timestamp(seconds=2**63 - 1),
                                                       end_time=Timestamp(seconds=2**62)))
    code, details = fails(lambda: client.rating.RateCdr(req, timeout=5))
    assert code == SC.INVALID_ARGUMENT and details.startswith("cdr.start_time: time outside")
    areq = routing_pb2.AuthorizeRequest(number=ACTIVE, caller=CALLER, at=Timestamp(seconds=-(2**62)))
    code, details = fails(lambda: client.routing.Authorize(areq, timeout=5))
    assert code == SC.INVALID_ARGUMENT and details.startswith("at: time outside")
    # In a batch, a wild time is a reject of that row, the others are rated.
    t = pa.table({"call_id": ["w1", "w2"], "number": [ACTIVE] * 2, "caller": [CALLER] * 2,
                  "forwarded_to": ["02088886666"] * 2,
                  "start_ms": pa.array([2**63 - 1, 1_791_615_600_000]),
                  "end_ms": pa.array([2**63 - 1, 1_791_615_660_000])})
    res = client.rate_table(t, dry_run=True)
    assert res.rated.column("call_id").to_pylist() == ["w2"]
    assert res.rejects.column("field").to_pylist() == ["start"]
    # Too many rows, an unknown column, a column of the wrong type.
    code, details = _stream(client, columns.table_to_arrow_ipc(
        pa.table({"call_id": pa.array(["r"] * (edge.DEFAULT_LIMITS.max_batch_rows + 1))})))
    assert code == SC.INVALID_ARGUMENT and "rows per batch" in details
    code, details = _stream(client, columns.table_to_arrow_ipc(pa.table({"call_id": ["a"], "evil": [1]})))
    assert code == SC.INVALID_ARGUMENT and details.startswith("cdrs_arrow_ipc.'evil': unknown column")
    code, details = _stream(client, columns.table_to_arrow_ipc(pa.table({"call_id": [1]})))
    assert code == SC.INVALID_ARGUMENT and details.startswith("cdrs_arrow_ipc.call_id: must be string")
    assert client.health() == "SERVING"


def _children(pid: int) -> set[int]:
    out = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out |= {int(x) for x in f.read().split()}
    return out


def _workers(server) -> set[int]:
    """The supervisor's worker processes (not the resource tracker)."""
    pids = set()
    for pid in _children(server.proc.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"resource_tracker" not in f.read():
                    pids.add(pid)
        except FileNotFoundError:
            pass
    return pids


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_killed_worker_under_load_comes_back_and_no_acknowledged_cdr_is_lost(server, sig):
    acked: list[str] = []
    errors: list[str] = []
    stop = threading.Event()
    tag = sig.name

    def load(k):
        with Client(server.target, timeout=10, options=[("grpc.use_local_subchannel_pool", 1)]) as c:
            i = 0
            while not stop.is_set():
                cid = f"kill-{tag}-{k}-{i}"
                try:
                    c.rate_cdr(cdr_row(cid, minute=i % 600))
                    acked.append(cid)
                except grpc.RpcError as e:  # a call on the dying worker: not acknowledged
                    errors.append(e.code().name)
                i += 1

    threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        before = _workers(server)
        assert len(before) == 2
        victim = min(before)
        n0 = len(acked)
        os.kill(victim, sig)
        t0 = time.monotonic()
        # The service answers again (the other worker, then the new one) ...
        with Client(server.target, timeout=1) as c:
            while True:
                try:
                    assert c.authorize(ACTIVE, CALLER, ivr_keys="1").allow
                    break
                except grpc.RpcError as e:
                    assert time.monotonic() - t0 < 2.0, (e.code(), e.details())
        # ... and the supervisor has started a new worker within 2 s.
        while True:
            now = _workers(server)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() - t0 < 2.0, f"workers {now} after {time.monotonic() - t0:.2f}s"
            time.sleep(0.02)
        time.sleep(1.0)
        assert len(acked) > n0  # load went on
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert "worker died; restarting" in server.logs() and f'"death": "{tag}"' in server.logs()
    # Every acknowledged CDR was committed: sent again, each one is a replay.
    with Client(server.target, timeout=10) as c:
        for cid in acked:
            i = int(cid.rsplit("-", 1)[1])
            assert c.rate_cdr(cdr_row(cid, minute=i % 600)).replayed, cid
        assert c.health() == "SERVING"


def test_second_server_on_the_same_port_is_refused(server, store, tmp_path):
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "rating400_server", "--store", str(store[0]), "--host", "127.0.0.1",
         "--port", str(server.info["port"]), "--workers", "1"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "port in use" in proc.stderr
    assert time.monotonic() - t0 < 30
