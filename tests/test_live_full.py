"""live.lmdb (calls in progress) filling its map, on a real 1 MiB map
(README "When live.lmdb fills"): new calls are refused with
``LiveLedgerFull`` (gRPC RESOURCE_EXHAUSTED, a log line saying what to do),
nothing of a refused write is kept, and everything that settles a call --
events of known calls, interim, ended, the expiry sweep, a CDR commit, an
account operation -- still runs, in process, from the CLI and through a
two-worker server."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating_core.engine import Engine
from rating_core.ledger import AccountTerms, Ledger, envs, reservations
from rating_core.ledger.envs import LiveLedgerFull
from stores import compiled_dir

CATALOG = """
name: live-full-test
destination_classes: [mobile]
destination_prefixes: {"1": mobile}
time_bands: [{name: all}]
rates:
  dear: {tiers: [{price: 0.12}], connect_fee: 0.02}
packages:
  big: {kind: payg, credit_limit: 100000000, rates: [{rate: dear}]}
routing_plans:
  desk:
    rules: [{group: desk}]
    groups:
      desk: {destinations: [{number: "13700000001", max_calls: 100000000}]}
accounts:
  big:
    package: big
    package_start: 2026-01-01
    numbers: [{number: "4000000102", home_city: Shenzhen, routing: desk}]
"""
NUMBER, CALLER, MOBILE = "4000000102", "13912345678", "13700000001"
AT = 1_772_589_600_000  # 2026-03-04 10:00 +08:00


@pytest.fixture
def small_map(monkeypatch):
    monkeypatch.setenv(envs.LIVE_MAP_ENV, "1")


@pytest.fixture
def store_dir(tmp_path, small_map):
    return compiled_dir(tmp_path, CATALOG)


def ids(n: int, start: int = 0) -> list[str]:
    """Call ids the way switches write them (36-character UUIDs), reproducible."""
    return [str(uuid.UUID(int=start + k)) for k in range(n)]


def fill(engine) -> list[str]:
    """Authorize new calls until live.lmdb refuses; the call ids allowed."""
    allowed = []
    for call_id in ids(100_000):
        try:
            d = engine.authorize(NUMBER, CALLER, AT, call_id=call_id)
        except LiveLedgerFull as e:
            assert e.reason == "live_ledger_full" and envs.LIVE_MAP_ENV in str(e)
            return allowed
        assert d.allow, d.reason
        allowed.append(call_id)
    raise AssertionError("a 1 MiB map never filled")


def sums_agree(ledger) -> tuple[int, int]:
    """The account's hold equals the sum of its open reservations (nothing
    half-written); returns (reserved_minor, open reservations)."""
    with ledger.live.begin() as live:
        held = reservations.hold(ledger, live, "big")
        rows = reservations.open_reservations(ledger, live)
    assert (held[0], held[2]) == (sum(r.reserved_minor for _, r in rows), len(rows))
    return held[0], held[2]


def cdr(call_id: str, seconds: int = 30) -> dict:
    return {"call_id": call_id, "caller": CALLER, "number": NUMBER, "forwarded_to": MOBILE, "start": AT,
            "ivr_answer": AT + 1000, "agent_answer": AT + 1000, "end": AT + 1000 + seconds * 1000,
            "hangup_cause": "normal"}


def test_a_full_map_refuses_new_calls_and_settles_the_rest(store_dir):
    engine = Engine.open(store_dir)
    try:
        allowed = fill(engine)
        # 1 MiB holds thousands of calls: the share is reached, not a tiny bound.
        assert len(allowed) > 3000
        assert engine.ledger.live.info()["map_size"] == 1 << 20
        reserved, n_open = sums_agree(engine.ledger)
        assert n_open == len(allowed)
        # Refused again, and the refusals kept nothing.
        new = ids(1, 10**6)[0]
        with pytest.raises(LiveLedgerFull):
            engine.authorize(NUMBER, CALLER, AT, call_id=new)
        assert sums_agree(engine.ledger) == (reserved, n_open)
        # A query holds nothing, so it is still answered.
        assert engine.authorize(NUMBER, CALLER, AT).allow
        # A call not yet known is a new call: started / answered refuse it.
        for kind in ("started", "answered"):
            with pytest.raises(LiveLedgerFull):
                engine.call_event(new, NUMBER, kind, destination=MOBILE, at_ms=AT + 500)
        assert engine.router.active_calls(MOBILE) == 0
        # Calls in progress go on: started, answered, interim, ended.
        a, b, c = allowed[:3]
        assert engine.call_event(a, NUMBER, "started", destination=MOBILE, at_ms=AT + 500)
        assert engine.call_event(a, NUMBER, "answered", destination=MOBILE, caller=CALLER, at_ms=AT + 1000)
        assert engine.interim(b, AT + 60_000) is not None
        assert engine.call_event(a, NUMBER, "ended", at_ms=AT + 31_000)
        assert engine.call_event(c, NUMBER, "ended", at_ms=AT + 2000)
        assert engine.router.active_calls(MOBILE) == 0
        # The CDRs commit, and release their holds.
        done = allowed[:500]
        rated = engine.rate_and_commit(pa.Table.from_pylist([cdr(k) for k in done])).rated
        assert rated.num_rows == 500
        assert sums_agree(engine.ledger)[1] == len(allowed) - 500
        # An account operation (a payment) moves money.
        terms = AccountTerms.from_snapshot(engine.rater.snapshot, "big")
        with engine.ledger.write() as w:
            after = engine.ledger.apply_credit(w, "big", 100_000, terms, AT)
        assert after.credit_minor == 100_000 - sum(rated.column("charge_minor").to_pylist())
        # The expiry sweep empties the rest; then new calls are served again.
        engine.router.release_stale(AT + 10 * 3600 * 1000)
        assert sums_agree(engine.ledger) == (0, 0)
        assert engine.authorize(NUMBER, CALLER, AT + 10 * 3600 * 1000, call_id=new).allow
    finally:
        engine.close()


def test_a_write_that_fills_the_map_is_refused_whole(tmp_path, small_map):
    """MDB_MAP_FULL inside any live write (here one that bypasses the share)
    is ``LiveLedgerFull``, and the transaction is gone: nothing kept."""
    ledger = Ledger(tmp_path / "store")
    try:
        db = ledger.live_db[b"route_cursor"]
        with envs.live_write(ledger) as live:
            live.put(b"kept", b"1", db=db)
        with pytest.raises(LiveLedgerFull, match=envs.LIVE_MAP_ENV):
            with envs.live_write(ledger) as live:
                for k in range(1 << 20):
                    live.put(b"x%08d" % k, b"y" * 200, db=db)
        with ledger.live.begin() as live:
            assert [bytes(k) for k, _ in live.cursor(db=db)] == [b"kept"]
        # ... and the map is usable afterwards.
        with envs.live_write(ledger) as live:
            live.put(b"after", b"1", db=db)
    finally:
        ledger.close()


def test_never_opened_smaller_than_its_file(tmp_path, monkeypatch, caplog):
    """A process configured with a smaller map than the file (an older
    setting, a CLI without the variable) maps the whole file: with writemap
    LMDB would truncate the file to its map, and the processes with the
    larger map would die of SIGBUS writing past the end."""
    monkeypatch.setenv(envs.LIVE_MAP_ENV, "2")
    Ledger(tmp_path / "store").close()
    live = tmp_path / "store" / "live.lmdb"
    assert live.stat().st_size == 2 << 20
    monkeypatch.setenv(envs.LIVE_MAP_ENV, "1")
    with caplog.at_level("WARNING", logger="rating400.ledger"):
        ledger = Ledger(tmp_path / "store")
    # The operator is told the setting did not take (newcomer finding).
    assert any(f"{envs.LIVE_MAP_ENV}=1 is smaller than" in r.getMessage() for r in caplog.records), caplog.text
    try:
        assert ledger.live.info()["map_size"] == 2 << 20
        assert live.stat().st_size == 2 << 20
    finally:
        ledger.close()


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", str(envs.MAX_LIVE_MAP_MB + 1), "\uff11", "\u0661",
                                   "\u00b2", "\u30001"])
def test_a_bad_map_size_is_refused_naming_the_variable(store_dir, monkeypatch, value):
    monkeypatch.setenv(envs.LIVE_MAP_ENV, value)
    with pytest.raises(envs.StoreError, match=envs.LIVE_MAP_ENV):
        Ledger(store_dir)
    cli = run_cli("accounts", "balance", "big", "--store", str(store_dir))
    assert cli.returncode == 2 and envs.LIVE_MAP_ENV in cli.stderr and "Traceback" not in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
    if value == "abc":  # the server refuses to start, once, instead of a worker crash loop
        serve = subprocess.run([sys.executable, "-m", "rating400_server", "--store", str(store_dir), "--port", "0"],
                               capture_output=True, text=True, timeout=120)
        assert serve.returncode == 2 and envs.LIVE_MAP_ENV in serve.stderr + serve.stdout


def test_live_map_size_takes_ascii_digits_with_spaces_around(monkeypatch):
    monkeypatch.setenv(envs.LIVE_MAP_ENV, " 2 ")
    assert envs.live_map_size() == 2 << 20


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rating_core", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_cli_settles_and_moves_money_on_a_full_map(store_dir, tmp_path):
    """From the command line, on the full map: a payment (an account
    operation), the account's balance, ``rate --commit`` releasing holds."""
    assert run_cli("accounts", "import", str(tmp_path / "catalog.yaml"), "--store", str(store_dir)).returncode == 0
    engine = Engine.open(store_dir)
    try:
        allowed = fill(engine)
    finally:
        engine.close()
    done = allowed[:100]
    pq.write_table(pa.Table.from_pylist([cdr(k) for k in done]), tmp_path / "cdrs.parquet")
    top = run_cli("accounts", "top-up", "big", "100", "--store", str(store_dir), "--request-id", "pay-1")
    assert top.returncode == 0, top.stderr
    rate = run_cli("rate", str(tmp_path / "cdrs.parquet"), "--store", str(store_dir), "--commit",
                   "--out", str(tmp_path / "rated.parquet"))
    assert rate.returncode == 0, rate.stderr
    ledger = Ledger(store_dir)
    try:
        assert sums_agree(ledger)[1] == len(allowed) - 100
    finally:
        ledger.close()


def test_two_worker_server_answers_resource_exhausted_and_keeps_settling(store_dir, tmp_path):
    from rating400_client import Client
    from demo_server import Server

    server = Server(store_dir, tmp_path, env={envs.LIVE_MAP_ENV: "1"}).start()
    try:
        allowed, refused = [], None
        with Client(server.target, timeout=20) as c:
            for call_id in ids(100_000):
                try:
                    d = c.authorize(NUMBER, CALLER, call_id=call_id, at=AT)
                except grpc.RpcError as e:
                    refused = e
                    break
                assert d.allow
                allowed.append(call_id)
            assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert envs.LIVE_MAP_ENV in refused.details() and "calls in progress still settle" in refused.details()
            # Every connection (either worker) refuses the next new call the same way.
            for k in range(4):
                with Client(server.target, timeout=20,
                            options=[("grpc.use_local_subchannel_pool", 1)]) as other:
                    with pytest.raises(grpc.RpcError) as e:
                        other.authorize(NUMBER, CALLER, call_id=ids(1, 10**6 + k)[0], at=AT)
                    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # Calls in progress settle: events, a committed CDR.
            a = allowed[0]
            assert c.call_event(a, NUMBER, "answered", destination=MOBILE, caller=CALLER, at=AT + 1000).accepted
            assert c.call_event(a, NUMBER, "ended", at=AT + 31_000).accepted
            assert c.rate_cdr(cdr(allowed[1])).rated_cdr.charge_minor > 0
        assert all(_alive(pid) for pid in server.info["workers"])
    finally:
        server.stop()
    logs = server.logs()
    assert "live.lmdb is full" in logs and envs.LIVE_MAP_ENV in logs
    assert "Traceback" not in logs and "INTERNAL" not in logs
    ledger = Ledger(store_dir)
    try:
        assert sums_agree(ledger)[1] == len(allowed) - 1  # the ended call holds its used time until its CDR
    finally:
        ledger.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False

