"""ledger.lmdb full on the writes OUTSIDE a CDR commit (README "When the
ledger or its disk fills"): a CRM edit, caller memory written by an
``answered`` event, the webhook cursor, account housekeeping. Each goes
through ``Ledger.durable`` / ``Ledger.write``, so a used-up map
(MDB_MAP_FULL, a real 1 MiB ``RATING400_LEDGER_MAP_MB``) or a full disk (the
EIO LMDB reports for a short page write, a real 16 MiB tmpfs) is
``LedgerFull``: gRPC RESOURCE_EXHAUSTED, CLI one line and exit 2, nothing of
the write kept, the process still serving -- never INTERNAL or a traceback."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import grpc
import pyarrow as pa
import pytest

from rating_core.billing.crm import CRM, MAX_NOTE_CHARS, MAX_NOTES
from rating_core.engine import Engine
from rating_core.ledger import Ledger, envs
from rating_core.ledger.envs import LedgerFull
from test_auth import pki  # noqa: F401  (fixture: the test CA and server certificate)
from test_ledger_full import small_disk, store_dir  # noqa: F401  (fixtures)
from test_live_full import AT, MOBILE, NUMBER, cdr, ids, run_cli

ROOT = Path(__file__).resolve().parent.parent
# The only modules that may open a write transaction: the ledger's two
# (``Ledger.durable`` / ``Ledger.write``, ``envs.live_write``) and the
# snapshot store (immutable catalog versions, not the ledger).
WRITERS = {"rating_core/ledger/core.py", "rating_core/ledger/envs.py"}


def test_every_ledger_write_transaction_is_opened_by_the_ledger_module():
    found = []
    for top in ("rating_core", "server"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in WRITERS or rel.startswith("rating_core/store/"):
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"\.begin\([^)]*write\s*=\s*True", line):
                    found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "write transactions opened outside Ledger.durable / write:\n" + "\n".join(found)


def callers(n: int, start: int = 0) -> list[str]:
    return [f"139{start + k:08d}" for k in range(n)]


def commit_callers(engine, who: list[str]) -> None:
    rows = [dict(cdr(call_id), caller=c) for call_id, c in zip(ids(len(who), 5_000_000), who)]
    engine.rate_and_commit(pa.Table.from_pylist(rows))


def test_crm_edits_and_caller_memory_on_a_full_map_are_ledger_full(store_dir, monkeypatch):  # noqa: F811
    monkeypatch.setenv(envs.LEDGER_MAP_ENV, "1")
    engine = Engine.open(store_dir)
    try:
        who = callers(20)
        commit_callers(engine, who)
        note = "n" * MAX_NOTE_CHARS
        # Notes grow each record by whole pages: the map runs out within 1 MiB.
        with pytest.raises(LedgerFull) as full:
            for k in range(20 * 50):
                engine.crm.note("big", who[k % 20], note, AT + k)
        assert not full.value.disk and envs.LEDGER_MAP_ENV in str(full.value)
        kept = {c: len(engine.crm.get("big", c).notes) for c in who}
        # Caller memory: an ``answered`` of a caller never seen inserts a record.
        refused = None
        for k, (call_id, caller) in enumerate(zip(ids(5000, 7_000_000), callers(5000, 50_000_000))):
            try:
                engine.call_event(call_id, NUMBER, "answered", destination=MOBILE, caller=caller, at_ms=AT + k)
            except LedgerFull as e:
                refused = caller, e
                break
        assert refused is not None, "5000 new callers never filled a 1 MiB map"
        assert engine.crm.get("big", refused[0]) is None  # nothing of the refused write kept
        # Nothing half-written, and the engine still answers.
        assert {c: len(engine.crm.get("big", c).notes) for c in who} == kept
        assert engine.authorize(NUMBER, who[0], AT).allow
        assert engine.rate(pa.Table.from_pylist([cdr(ids(1, 9_000_000)[0])])).rated.num_rows == 1
    finally:
        engine.close()


def test_cli_crm_note_on_a_full_map_is_one_line_and_exit_2(store_dir, monkeypatch):  # noqa: F811
    monkeypatch.setenv(envs.LEDGER_MAP_ENV, "1")
    who = callers(20)
    engine = Engine.open(store_dir)
    try:
        commit_callers(engine, who)
        with pytest.raises(LedgerFull):  # fill the map with committed calls
            for k in range(1, 100):
                engine.rate_and_commit(pa.Table.from_pylist([cdr(i) for i in ids(1000, k * 1000)]))
    finally:
        engine.close()
    for k in range(40):
        r = run_cli("crm", "note", "--store", str(store_dir), "--account", "big", "--caller", who[k % 20],
                    "n" * MAX_NOTE_CHARS)
        if r.returncode != 0:
            break
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "ledger.lmdb is full" in r.stderr and envs.LEDGER_MAP_ENV in r.stderr, r.stderr


def fill_disk(disk: Path, live: Path, leave: int) -> Path:
    """Take every byte of ``disk`` but ``leave``; ``live`` (live.lmdb's sparse
    map) is allocated first, so a live write can never find the disk full
    (with ``writemap`` that would be SIGBUS, not an error)."""
    with open(live, "r+b") as f:
        os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
    return filler


def test_cli_crm_note_on_a_full_disk_is_one_line_and_exit_2(store_dir, small_disk, monkeypatch):  # noqa: F811
    monkeypatch.setenv(envs.LIVE_MAP_ENV, "1")
    store = small_disk / "store"
    shutil.copytree(store_dir, store)
    engine = Engine.open(store)
    try:
        commit_callers(engine, callers(1))
    finally:
        engine.close()
    filler = fill_disk(small_disk, store / "live.lmdb", 64 << 10)
    args = ["crm", "note", "--store", str(store), "--account", "big", "--caller", callers(1)[0],
            "n" * MAX_NOTE_CHARS]
    for _ in range(60):
        r = run_cli(*args)
        if r.returncode != 0:
            break
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "disk holding ledger.lmdb is full" in r.stderr, r.stderr
    filler.unlink()  # room again: the same command works
    assert run_cli(*args).returncode == 0


def test_server_answers_resource_exhausted_for_crm_and_caller_memory_on_a_full_disk(
        store_dir, small_disk, tmp_path, monkeypatch, pki):  # noqa: F811
    from rating400.v1 import billing_pb2, billing_pb2_grpc
    from rating400_client import Client, credentials
    from demo_server import Server

    monkeypatch.setenv(envs.LIVE_MAP_ENV, "1")
    store = small_disk / "store"
    shutil.copytree(store_dir, store)
    who = callers(4)
    engine = Engine.open(store)
    try:
        commit_callers(engine, who)
        for k in range(MAX_NOTES - 1):  # a record of 49 pages of notes
            engine.crm.note("big", who[0], "n" * MAX_NOTE_CHARS, AT + k)
    finally:
        engine.close()
    # Compacted (no free page inside the file), so the 50th note's record,
    # 200 KiB, must go past the end of the file where 64 KiB are left:
    # LMDB's short write of its pages, reported as EIO.
    compact = Ledger(store)
    compact.env.copy(str(store / "compact.lmdb"), compact=True)
    compact.close()
    os.replace(store / "compact.lmdb", store / "ledger.lmdb")
    token = "full-disk-supervisor-token-0123456789"
    (tmp_path / "tokens").write_text(f"supervisor,softswitch {token}\n")
    server = Server(store, tmp_path, workers=1)
    server.extra = ["--tls-cert", pki["server"][0], "--tls-key", pki["server"][1], "--tokens", str(tmp_path / "tokens")]
    server.start()
    try:
        filler = fill_disk(small_disk, store / "live.lmdb", 64 << 10)
        creds = credentials(ca=pki["ca_file"], token=token)
        with grpc.secure_channel(f"localhost:{server.info['port']}", creds) as channel:
            stub = billing_pb2_grpc.BillingServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.UpdateCaller(billing_pb2.UpdateCallerRequest(
                    account="big", caller=who[0], note="n" * MAX_NOTE_CHARS), timeout=60)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value
            assert "disk holding ledger.lmdb is full" in caught.value.details(), caught.value.details()
        reader = Ledger(store)
        try:
            assert len(CRM(reader).get("big", who[0]).notes) == MAX_NOTES - 1  # nothing of it kept
        finally:
            reader.close()
        with Client(f"localhost:{server.info['port']}", timeout=60, credentials=creds) as c:
            refused = None
            for k, (call_id, caller) in enumerate(zip(ids(3000, 7_000_000), callers(3000, 50_000_000))):
                try:
                    c.call_event(call_id, NUMBER, "answered", destination=MOBILE, caller=caller, at=AT + k)
                except grpc.RpcError as e:
                    refused = e
                    break
            assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused
            assert c.authorize(NUMBER, who[0], at=AT).allow  # still serving
            filler.unlink()
            assert c.call_event(ids(1, 8_000_000)[0], NUMBER, "answered", destination=MOBILE,
                                caller=callers(1, 60_000_000)[0], at=AT).accepted
    finally:
        server.stop()
    logs = server.logs()
    assert "disk holding ledger.lmdb is full" in logs and "Traceback" not in logs and "INTERNAL" not in logs

