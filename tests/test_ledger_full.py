"""ledger.lmdb (the committed calls, money) filling its map, or its disk
filling up, on a real small map (``RATING400_LEDGER_MAP_MB``) and a real
small filesystem (README "When the ledger or its disk fills"): the write is
aborted whole (``LedgerFull``: gRPC RESOURCE_EXHAUSTED saying what to do,
CLI one line and exit 2, never INTERNAL or a traceback), the process keeps
serving, and once there is room the same CDRs commit exactly once: the
balances equal those of one clean run."""
from __future__ import annotations

import gc
import os
import shutil
import subprocess
import uuid

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating_core.engine import Engine
from rating_core.ledger import Ledger, envs, formats
from rating_core.ledger.envs import LedgerFull
from stores import compiled_dir
from test_live_full import CATALOG, cdr, ids, run_cli, _alive


@pytest.fixture
def store_dir(tmp_path):
    return compiled_dir(tmp_path, CATALOG)


def balances(store) -> dict[bytes, bytes]:
    ledger = Ledger(store)
    try:
        with ledger.env.begin() as txn:
            return {bytes(k): bytes(v) for k, v in txn.cursor(db=ledger.db[formats.BALANCES])}
    finally:
        ledger.close()


def calls(n: int, start: int = 0) -> pa.Table:
    return pa.Table.from_pylist([cdr(k) for k in ids(n, start)])


def test_a_full_map_aborts_the_commit_whole_and_the_engine_goes_on(store_dir, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    shutil.copytree(store_dir, clean)
    monkeypatch.setenv(envs.LEDGER_MAP_ENV, "1")
    engine = Engine.open(store_dir)
    done, refused = 0, None
    try:
        assert engine.ledger.env.info()["map_size"] == 1 << 20
        for k in range(100):
            before = balances_in(engine)
            try:
                engine.rate_and_commit(calls(1000, k * 1000))
            except LedgerFull as e:
                refused = e
                # Nothing of the refused batch is kept: the balances are as before it.
                assert balances_in(engine) == before
                break
            done += 1
        assert refused is not None and 0 < done < 100, done
        assert not refused.disk and envs.LEDGER_MAP_ENV in str(refused) and "nothing of this write" in str(refused)
        # The engine still answers: a dry rating, a query, and a replay of committed calls.
        assert engine.rate(calls(10)).rated.num_rows == 10
        assert engine.authorize("4000000102", "13912345678", 1_772_589_600_000).allow
        with pytest.raises(LedgerFull):
            engine.rate_and_commit(calls(1000, done * 1000))
    finally:
        engine.close()
    # With room (the default map), the refused batch and the rest commit once.
    monkeypatch.delenv(envs.LEDGER_MAP_ENV)
    for store in (store_dir, clean):
        engine = Engine.open(store)
        try:
            for k in range(done + 1):
                engine.rate_and_commit(calls(1000, k * 1000))
        finally:
            engine.close()
    assert balances(store_dir) == balances(clean)


def balances_in(engine) -> dict[bytes, bytes]:
    with engine.ledger.env.begin() as txn:
        return {bytes(k): bytes(v) for k, v in txn.cursor(db=engine.ledger.db[formats.BALANCES])}


def test_cli_rate_commit_on_a_full_map_is_one_line_and_exit_2(store_dir, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(store_dir, clean)
    pq.write_table(calls(30_000), tmp_path / "cdrs.parquet")
    args = ["rate", str(tmp_path / "cdrs.parquet"), "--commit", "--out", str(tmp_path / "rated.parquet")]
    full = run_cli(*args, "--store", str(store_dir), env={**os.environ, envs.LEDGER_MAP_ENV: "1"})
    assert full.returncode == 2, full.stderr
    assert len(full.stderr.strip().splitlines()) == 1 and "Traceback" not in full.stderr
    assert "ledger.lmdb is full" in full.stderr and envs.LEDGER_MAP_ENV in full.stderr, full.stderr
    # The same command with room: every call committed once (as one clean run).
    again = run_cli(*args, "--store", str(store_dir))
    assert again.returncode == 0, again.stderr
    assert run_cli(*args, "--store", str(clean)).returncode == 0
    assert balances(store_dir) == balances(clean)


@pytest.mark.parametrize("value", ["abc", "0", str(envs.MAX_LEDGER_MAP_MB + 1), "\uff11", "\u00b2", "1\u3000"])
def test_a_bad_ledger_map_size_is_refused_naming_the_variable(store_dir, monkeypatch, value):
    monkeypatch.setenv(envs.LEDGER_MAP_ENV, value)
    with pytest.raises(envs.StoreError, match=envs.LEDGER_MAP_ENV):
        Ledger(store_dir)
    cli = run_cli("accounts", "balance", "big", "--store", str(store_dir))
    assert cli.returncode == 2 and envs.LEDGER_MAP_ENV in cli.stderr and "Traceback" not in cli.stderr


def test_ledger_map_size_takes_ascii_digits_with_spaces_around(monkeypatch):
    monkeypatch.setenv(envs.LEDGER_MAP_ENV, " 3\t")
    assert envs.ledger_map_size() == 3 << 20


def test_server_answers_resource_exhausted_and_keeps_serving(store_dir, tmp_path):
    from rating400_client import Client
    from demo_server import Server

    server = Server(store_dir, tmp_path, env={envs.LEDGER_MAP_ENV: "1"}).start()
    try:
        refused = None
        with Client(server.target, timeout=60) as c:
            for k in range(200):
                try:
                    c.rate_cdr(cdr(str(uuid.UUID(int=k))))
                except grpc.RpcError as e:
                    refused = e
                    break
            if refused is None:  # the committed stream fills it faster than single calls
                for k in range(100):
                    try:
                        c.rate_table(calls(2000, 10_000 + k * 2000))
                    except grpc.RpcError as e:
                        refused = e
                        break
            assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused
            assert envs.LEDGER_MAP_ENV in refused.details() and "ledger.lmdb is full" in refused.details()
            # Still serving: a query and a dry rating.
            assert c.authorize("4000000102", "13912345678", at=1_772_589_600_000).allow
        assert all(_alive(pid) for pid in server.info["workers"])
    finally:
        server.stop()
    logs = server.logs()
    assert "ledger.lmdb is full" in logs and "Traceback" not in logs and "INTERNAL" not in logs


@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MiB filesystem (tmpfs), or a skip where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root with CAP_SYS_ADMIN")
    try:
        yield disk
    finally:
        gc.collect()
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_aborts_the_commit_whole_and_room_lets_it_commit_once(store_dir, tmp_path, small_disk,
                                                                          monkeypatch):
    monkeypatch.setenv(envs.LIVE_MAP_ENV, "1")  # live.lmdb's sparse file: 1 MiB of the disk at most
    clean = tmp_path / "clean"
    shutil.copytree(store_dir, clean)
    store = small_disk / "store"
    shutil.copytree(store_dir, store)
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(0, free - (1536 << 10)))  # leave 1.5 MiB: the live map and a few batches
    engine = Engine.open(store)
    done, refused = 0, None
    try:
        for k in range(100):
            before = balances_in(engine)
            try:
                engine.rate_and_commit(calls(1000, k * 1000))
            except LedgerFull as e:
                refused = e
                assert balances_in(engine) == before
                break
            done += 1
        assert refused is not None and refused.disk and "disk holding ledger.lmdb is full" in str(refused), done
        assert engine.rate(calls(10)).rated.num_rows == 10  # still serving
        filler.unlink()  # room again: the same engine commits
        for k in range(done + 1):
            engine.rate_and_commit(calls(1000, k * 1000))
    finally:
        engine.close()
    engine = Engine.open(clean)
    try:
        for k in range(done + 1):
            engine.rate_and_commit(calls(1000, k * 1000))
    finally:
        engine.close()
    assert balances(store) == balances(clean)
