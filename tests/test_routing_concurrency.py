"""Concurrency caps hold when calls start at once from several threads and
several processes: the slot is taken in one LMDB write transaction, and
LMDB serialises those across threads and processes."""
import multiprocessing as mp
import threading
import time

import pytest

from rating_core.router import Router
from rating_core.store import Ledger, Store
from test_routing import CATALOG, ms

LINE = "075588880001"  # max_calls: 2 in plan "main"
CAP = 2
NUMBER = "4000000001"
AT = ms(2026, 3, 4, 10)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("routing-concurrency")
    (root / "catalog.yaml").write_text(CATALOG)
    Store(root / "store").compile(root / "catalog.yaml", activate=True)
    return root / "store"


@pytest.fixture(scope="module")
def snapshot(store_dir):
    return Store(store_dir).open()


def grab(router: Router, tag: str, tries: int, hold: float, observed: list) -> int:
    """Try to start ``tries`` calls on LINE; end each after ``hold`` s
    (never when hold < 0). Returns how many got a slot."""
    got = 0
    for i in range(tries):
        call = f"{tag}-{i}"
        if router.call_event(call, NUMBER, "started", destination=LINE, at_ms=AT):
            got += 1
            observed.append(router.active_calls(LINE))
            if hold >= 0:
                time.sleep(hold)
                router.call_event(call, NUMBER, "ended", at_ms=AT)
    return got


def test_threads_never_exceed_the_cap(snapshot, tmp_path):
    router = Router(snapshot, Ledger(tmp_path / "ledger"))
    observed: list = []
    results = []
    threads = [threading.Thread(target=lambda k=k: results.append(grab(router, f"t{k}", 10, -1, observed)))
               for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == CAP and router.active_calls(LINE) == CAP
    assert not router.authorize(NUMBER, "13912345678", AT).destinations[0].number == LINE

    # churn: calls start and end all the time, a watcher never sees more than the cap
    for k in range(6):
        for i in range(10):
            router.call_event(f"t{k}-{i}", NUMBER, "ended", at_ms=AT)
    assert router.active_calls(LINE) == 0
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(router.active_calls(LINE))

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=grab, args=(router, f"c{k}", 15, 0.001, observed)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert max(seen + observed) <= CAP and CAP in observed
    assert router.active_calls(LINE) == 0


def _process(store_dir, ledger_dir, tag, tries, hold, queue):
    # A separate process: its own snapshot map, ledger environment and router.
    router = Router(Store(store_dir).open(), Ledger(ledger_dir))
    observed: list = []
    got = grab(router, tag, tries, hold, observed)
    queue.put((got, max(observed, default=0)))


def _run(store_dir, ledger_dir, n, tries, hold):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process, args=(str(store_dir), str(ledger_dir), f"p{k}", tries, hold, queue))
             for k in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def test_processes_never_exceed_the_cap(store_dir, snapshot, tmp_path):
    ledger_dir = tmp_path / "ledger"
    Ledger(ledger_dir).close()
    results = _run(store_dir, ledger_dir, 3, 10, -1)  # nobody hangs up
    assert sum(got for got, _ in results) == CAP
    router = Router(snapshot, Ledger(ledger_dir))
    assert router.active_calls(LINE) == CAP
    # churn across processes
    router.release_stale(AT + 10 * 86_400_000)
    assert router.active_calls(LINE) == 0
    results = _run(store_dir, ledger_dir, 3, 15, 0.002)
    assert max(peak for _, peak in results) <= CAP
    assert sum(got for got, _ in results) >= CAP
    assert router.active_calls(LINE) == 0
