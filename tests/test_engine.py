"""Engine: exactly-once commits against the real LMDB ledger, stateless
rating, and picking up a newly activated catalog version."""
from __future__ import annotations

import gc

import pyarrow as pa
import pytest

from rating_core.demo import write_demo_catalog
from rating_core.engine import Engine
from rating_core.store import Store

PREPAID = "4008593431"  # jinghua_appliances: prepaid 3000 yuan at 0.12/min, IVR answer
BASE = 1_791_590_400_000  # 2026-10-10 00:00 +08:00


def cdr(call_id, minute=0, talk_s=185, number=PREPAID):
    start = BASE + 9 * 3_600_000 + minute * 60_000
    return {"call_id": call_id, "caller": "13812345678", "number": number, "forwarded_to": "02088886666",
            "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 9_000,
            "end": start + 9_000 + talk_s * 1000, "hangup_cause": "normal_clearing"}


def demo_store(tmp_path):
    """The demo catalog compiled and active in ``tmp_path / "store"``."""
    catalog = write_demo_catalog(tmp_path / "catalog")
    store = Store(tmp_path / "store")
    store.activate(store.compile(catalog))
    del store  # LMDB opens an environment once per process: the Engine opens its own
    gc.collect()
    return tmp_path / "store"


@pytest.fixture
def root(tmp_path):
    return demo_store(tmp_path)


def test_rate_and_commit_is_exactly_once(root):
    engine = Engine.open(root)
    first = engine.rate_and_commit(pa.Table.from_pylist([cdr("a", 1), cdr("b", 2), cdr("bad", 3, number="4001")]))
    assert first.rated.column("call_id").to_pylist() == ["a", "b"]
    assert first.replayed.tolist() == [False, False]
    assert first.rejects.column("call_id").to_pylist() == ["bad"]
    # 185 s from IVR answer (+7 s) = 192 s -> 4 started minutes at 0.12 = 0.48 yuan.
    assert first.rated.column("charge_minor").to_pylist() == [4800, 4800]
    credit = engine.ledger.stored("jinghua_appliances").credit_minor
    assert credit == 30_000_000 - 9600

    # A retry of "a" with a new call "c" and an in-request duplicate of "c".
    again = engine.rate_and_commit(pa.Table.from_pylist([cdr("c", 4), cdr("a", 1), cdr("c", 4)]))
    assert again.rated.column("call_id").to_pylist() == ["c", "a"]
    assert again.rated.column("row").to_pylist() == [0, 1]
    assert again.replayed.tolist() == [False, True]
    assert again.summary.replayed == 1 and again.summary.duplicates == 1
    assert again.summary.rows_in == 3 == again.summary.rated + again.summary.rejected
    # The replayed row is the stored first result, field for field.
    stored = first.rated.drop_columns(["row"]).slice(0, 1).to_pylist()[0]
    replayed = again.rated.drop_columns(["row"]).slice(1, 1).to_pylist()[0]
    assert {k: str(v) for k, v in stored.items()} == {k: str(v) for k, v in replayed.items()}
    # Only "c" was debited.
    assert again.summary.charge == 4800
    assert engine.ledger.stored("jinghua_appliances").credit_minor == credit - 4800
    engine.close()
    del engine
    gc.collect()

    # Reopened (a restarted worker), the commit is still known.
    engine = Engine.open(root)
    third = engine.rate_and_commit(pa.Table.from_pylist([cdr("a", 1), cdr("b", 2)]))
    assert third.replayed.tolist() == [True, True] and third.summary.charge == 0
    engine.close()


def test_rate_is_stateless(root):
    engine = Engine.open(root)
    t = pa.Table.from_pylist([cdr("s1", 1)])
    one, two = engine.rate(t), engine.rate(t)
    assert one.rated.column("balance_after").to_pylist() == two.rated.column("balance_after").to_pylist()
    assert engine.ledger.stored("jinghua_appliances") is None  # nothing written
    engine.close()


def test_refresh_swaps_to_the_activated_version(root, tmp_path):
    engine = Engine.open(root)
    store = engine.store
    assert engine.version == 1 and engine.refresh() is False
    cheaper = tmp_path / "catalog" / "catalog.yaml"
    cheaper.write_text(cheaper.read_text().replace("std_012: {tiers: [{price: 0.12}]}", "std_012: {tiers: [{price: 0.10}]}"))
    store.activate(store.compile(cheaper))
    router = engine.router
    assert engine.authorize(PREPAID, "13812345678").catalog_version == 1
    assert engine.refresh() is True and engine.version == 2
    assert engine.rate(pa.Table.from_pylist([cdr("r1")])).rated.column("charge_minor").to_pylist() == [4000]
    # The engine owns its Router: refresh built the new version's, routing moved with rating.
    assert engine.router is not router and engine.router.version == 2 and engine.routing_error is None
    assert engine.authorize(PREPAID, "13812345678").catalog_version == 2
    store.activate(1)  # rollback
    assert engine.refresh() is True and engine.version == 1 == engine.router.version
    engine.close()
